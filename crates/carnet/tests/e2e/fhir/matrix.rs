//! Issue 30 §3: the authorization matrix (a module of the `fhir` test binary).
//!
//! On the demo world — Camille, her children Inès and Hugo whom she represents, Lucas a
//! stranger to them; Dr LEROY médecin traitant of Camille and Inès, Dr PETIT granted by
//! Camille, a nurse who declares an emergency in Camille's space, a pharmacist without grant, a
//! SAMU regulator and an occupational doctor whose emergencies are refused (AC-5, AC-1b), an
//! establishment's system Camille granted some categories, the referenced app Tensio connected
//! by Camille for herself and for Inès — plus a document held from Camille (DM-6), one she
//! masked (DM-5), Inès's document hidden from her parents (MI-2) and the holders' own
//! documents, profile entries, measurements, messages, agenda events and reimbursements.
//!
//! Every caller × every space × every item × every surface is compared with a model: its own
//! rule of who enters which space, then `access::decide` (`decide_message` for messages) on the
//! item's facts and the space's directory, and, for an app, the SMART scopes it was granted.
//! Surfaces: FHIR read, vread, instance history, search, count, `_include`, `_revinclude`,
//! `$everything`, Binary, reimbursements, AuditEvent; the JSON API's listing, read and content;
//! the two document pages; the export; refused creations, updates, deletions and maskings, and
//! the creations the model allows. Then the lifecycle: a space closed by its representative, a
//! holder's death, a space never activated and one objected to. A refusal must answer exactly
//! like an item or patient that does not exist (same status, same body), and nothing refused is
//! written.

use std::collections::{BTreeMap, BTreeSet};

use super::*;
use crate::common::browser::app_token;
use carnet_domain::access::{
    AccessPolicy, Action, Actor, AppId, Author, Category, Context, Grant, Grantee, HabilitationMatrix,
    ItemFacts, OrganisationId, PracticeRole, ProfessionalId, SpaceFacts, decide,
};
use carnet_domain::catalogue::{Scope, parse_scopes, rights_on};
use carnet_domain::messaging::{ConversationFacts, Counterpart, MessageAction, decide_message};
use carnet_domain::profile::Section;
use carnet_domain::{HolderId, Lifecycle, Timestamp};

/// The types of the medical profile on FHIR, and the measurements' Observation.
const ITEM_TYPES: [&str; 13] = [
    "Condition",
    "AllergyIntolerance",
    "MedicationStatement",
    "Immunization",
    "Procedure",
    "FamilyMemberHistory",
    "QuestionnaireResponse",
    "RelatedPerson",
    "Consent",
    "Observation",
    "Communication",
    "Appointment",
    "ExplanationOfBenefit",
];

/// A caller of the matrix: who the gate sees, and how they authenticate.
struct Caller {
    name: String,
    actor: Actor,
    /// Holder-side session cookie (the space it acts for), or a professional's token.
    cookie: Option<(String, HolderId)>,
    bearer: Option<String>,
    /// A professional: the professional's JSON API and pages.
    pro: bool,
    /// An app's granted SMART scopes.
    scopes: Option<Vec<Scope>>,
}

impl Caller {
    /// What the caller's scopes allow on a resource type (`r`ead, `s`earch, `c`reate,
    /// `u`pdate, `d`elete); everything for callers without scopes.
    fn scoped(&self, rtype: &str, what: char) -> bool {
        let Some(s) = &self.scopes else { return true };
        let r = rights_on(s, rtype);
        match what {
            'r' => r.read,
            's' => r.search,
            'c' => r.create,
            'u' => r.update,
            _ => r.delete,
        }
    }

    fn author(&self) -> Author {
        match &self.actor {
            Actor::Professional { id, .. } => Author::Professional { id: id.clone() },
            Actor::Establishment { id } => Author::Establishment { id: id.clone() },
            Actor::App { id, .. } => Author::App { id: id.clone() },
            _ => Author::Holder,
        }
    }

    /// A request with the caller's credentials (session cookie, bearer token).
    fn request(&self, c: &reqwest::Client, method: reqwest::Method, url: &str) -> reqwest::RequestBuilder {
        let mut rq = c.request(method, url);
        if let Some((cookie, _)) = &self.cookie {
            rq = rq.header("cookie", cookie);
        }
        if let Some(t) = &self.bearer {
            rq = rq.bearer_auth(t);
        }
        rq
    }

    fn anonymous(&self) -> bool {
        self.cookie.is_none() && self.bearer.is_none()
    }
}

/// One document as the model knows it.
struct Doc {
    space: HolderId,
    id: String,
    fhir_id: String,
    facts: ItemFacts,
}

/// What the policy decides an item on.
#[derive(Clone, Debug)]
enum Facts {
    Item(ItemFacts),
    Conversation(ConversationFacts),
}

/// Any other item (profile entry, measurement, message, agenda event, reimbursement).
#[derive(Clone, Debug)]
struct Item {
    space: HolderId,
    rtype: String,
    fhir_id: String,
    facts: Facts,
    /// The resource as the holder's side reads it (the body of a refused update).
    resource: Option<Value>,
}

/// The cells counted and the differences found.
#[derive(Default)]
struct Tally {
    cells: usize,
    /// Of which refusals (compared with what does not exist).
    refusals: usize,
    differences: Vec<String>,
}

impl Tally {
    fn cell(&mut self, ok: bool, why: impl FnOnce() -> String) {
        self.cells += 1;
        if !ok {
            self.differences.push(why());
        }
    }
}

fn holder_facts(category: Category) -> ItemFacts {
    ItemFacts {
        category,
        author: Author::Holder,
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    }
}

fn fhir_id(space: HolderId, doc: &str) -> String {
    format!(
        "{}{}",
        space.as_uuid().simple(),
        uuid::Uuid::parse_str(doc).unwrap().simple()
    )
}

fn category(v: &Value) -> Category {
    serde_json::from_value(v.clone()).unwrap()
}

fn author(v: &Value) -> Author {
    serde_json::from_value(v.clone()).unwrap()
}

/// The directory as the holder's side reads it (`/api/v1/me/access`), back into the
/// domain's type.
fn policy(v: &Value) -> AccessPolicy {
    let pro = |s: &Value| ProfessionalId(s.as_str().unwrap().to_string());
    AccessPolicy {
        medecin_traitant: v["medecin_traitant"].as_str().map(|s| ProfessionalId(s.into())),
        blocked: v["blocked"].as_array().unwrap().iter().map(pro).collect(),
        grants: v["grants"]
            .as_array()
            .unwrap()
            .iter()
            .map(|g| Grant {
                grantee: serde_json::from_value::<Grantee>(g["grantee"].clone()).unwrap(),
                categories: g["categories"]
                    .as_array()
                    .map(|cs| cs.iter().map(category).collect()),
                until: g["until"].as_str().map(|u| {
                    Timestamp::from_offset_date_time(
                        time::OffsetDateTime::parse(u, &time::format_description::well_known::Rfc3339)
                            .unwrap(),
                    )
                }),
                express: g["express"].as_bool().unwrap_or(false),
                basis: Default::default(),
            })
            .collect(),
        regulation_consent: v["regulation_consent"].as_bool().unwrap_or(false),
        hide_all: v["hide_all"].as_bool().unwrap_or(false),
        care_team_objection: false,
    }
}

/// The FHIR ids of the documents a JSON API list (or the export) holds.
fn ids_in(space: HolderId, documents: &Value) -> std::collections::BTreeSet<String> {
    documents
        .as_array()
        .map(|a| {
            a.iter()
                .map(|d| fhir_id(space, d["id"].as_str().unwrap()))
                .collect()
        })
        .unwrap_or_default()
}

/// Files a text document with the request's credentials; it must be accepted.
async fn file(rq: reqwest::RequestBuilder, text: &'static str) {
    let r = rq
        .header("content-type", "text/plain")
        .body(text)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

/// (status, body) with what legitimately differs between two answers taken out.
async fn answer(c: &reqwest::Client, caller: &Caller, url: &str) -> (u16, Value) {
    send(c, caller, reqwest::Method::GET, url, None).await
}

/// Like [`answer`], for any method and an optional JSON body.
async fn send(
    c: &reqwest::Client,
    caller: &Caller,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut rq = caller.request(c, method, url);
    if let Some(b) = body {
        rq = rq.json(&b);
    }
    let r = rq.send().await.unwrap();
    let status = r.status().as_u16();
    let text = r.text().await.unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap_or(Value::String(format!("{} bytes", text.len())));
    if let Some(o) = v.as_object_mut() {
        for k in ["id", "meta", "link", "timestamp"] {
            o.remove(k);
        }
    }
    (status, v)
}

/// The answer to a GET as it came (ids and meta kept).
async fn raw(c: &reqwest::Client, caller: &Caller, url: &str) -> (u16, Value) {
    let r = caller.request(c, reqwest::Method::GET, url).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// The world the matrix runs in: the model's facts and the means to ask the server.
struct World {
    c: reqwest::Client,
    base: String,
    fhir: String,
    matrix: HabilitationMatrix,
    now: Timestamp,
    /// An id no space or item has.
    nobody: String,
    docs: Vec<Doc>,
    items: Vec<Item>,
    /// The spaces Camille represents (her children).
    represented: Vec<HolderId>,
    /// The space the nurse's emergency access stands in (AC-5).
    emergency_in: Option<HolderId>,
    /// Holders whose sessions ended with their death (LC-6).
    deceased: Vec<HolderId>,
}

impl World {
    /// The model's own rule of who enters which space (not the domain's `enters`): a holder
    /// their own, Camille her children's as their representative, an app the space that
    /// connected it, professionals and establishments any (then `decide`), nobody else.
    fn enters(&self, caller: &Caller, space: HolderId) -> bool {
        !caller.anonymous()
            && match &caller.actor {
                Actor::Holder { id } => *id == space && !self.deceased.contains(id),
                Actor::Representative { .. } => self.represented.contains(&space),
                Actor::App { space: s, .. } => *s == Some(space),
                Actor::Professional { .. } | Actor::Establishment { .. } => true,
                // No carer among the matrix's callers; a carer is decided by their grant.
                Actor::Carer { id } => *id != space,
                Actor::Operator { .. } => false,
            }
    }

    fn ctx(&self, caller: &Caller, space: HolderId) -> Context {
        if caller.name == "Sophie MOREAU" && self.emergency_in == Some(space) {
            Context {
                emergency: Some("patiente inconsciente aux urgences".into()),
            }
        } else {
            Context::default()
        }
    }

    /// May `caller` do `action` on an item of these facts in `space`?
    fn may(&self, caller: &Caller, space: HolderId, sf: &SpaceFacts, action: Action, f: &Facts) -> bool {
        self.enters(caller, space)
            && match f {
                Facts::Item(f) => {
                    decide(
                        &caller.actor,
                        action,
                        f,
                        sf,
                        &self.matrix,
                        &self.ctx(caller, space),
                        self.now,
                    )
                    .allowed
                }
                Facts::Conversation(cf) => {
                    let a = match action {
                        Action::Read => MessageAction::Read,
                        _ => MessageAction::Reply,
                    };
                    decide_message(&caller.actor, a, cf, sf).allowed
                }
            }
    }

    fn may_read_doc(&self, caller: &Caller, space: HolderId, sf: &SpaceFacts, d: &Doc) -> bool {
        self.may(caller, space, sf, Action::Read, &Facts::Item(d.facts.clone()))
    }

    /// The administrative data (the FHIR Patient).
    fn may_patient(&self, caller: &Caller, space: HolderId, sf: &SpaceFacts) -> bool {
        caller.scoped("Patient", 'r')
            && self.may(
                caller,
                space,
                sf,
                Action::Read,
                &Facts::Item(holder_facts(Category::Administrative)),
            )
    }

    fn missing(&self, space: HolderId) -> String {
        fhir_id(space, &self.nobody)
    }

    /// The answer to `url`, and to `absent` (the same request on something that does not
    /// exist): one cell, which must find them equal.
    async fn like_missing(
        &self,
        t: &mut Tally,
        caller: &Caller,
        method: reqwest::Method,
        url: &str,
        absent: &str,
        body: Option<Value>,
    ) {
        self.like_missing_with(t, caller, method, (url, body.clone()), (absent, body))
            .await;
    }

    /// [`World::like_missing`] where the request on what does not exist carries a body of its
    /// own (an update naming the missing id, a creation for a patient that does not exist).
    async fn like_missing_with(
        &self,
        t: &mut Tally,
        caller: &Caller,
        method: reqwest::Method,
        (url, body): (&str, Option<Value>),
        (absent, absent_body): (&str, Option<Value>),
    ) {
        let got = send(&self.c, caller, method.clone(), url, body).await;
        let none = send(&self.c, caller, method.clone(), absent, absent_body).await;
        t.refusals += 1;
        t.cell(got == none, || {
            format!(
                "{} {method} {url}: {got:?}, unlike what does not exist {none:?}",
                caller.name
            )
        });
    }
}

/// The ids of the resources of a FHIR search set (or `$everything`), with their types.
fn bundle_ids(bundle: &Value) -> BTreeMap<String, String> {
    bundle["entry"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|e| {
                    (
                        e["resource"]["id"].as_str().unwrap_or("").to_string(),
                        e["resource"]["resourceType"].as_str().unwrap_or("").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Every document of `space`, as `who` lists them (an omniscient reader of that space).
async fn list_documents(c: &reqwest::Client, url: &str, who: &Caller, space: HolderId) -> Vec<Doc> {
    let (status, list) = answer(c, who, url).await;
    assert_eq!(status, 200, "{url}: {list}");
    list["documents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let id = d["id"].as_str().unwrap().to_string();
            Doc {
                space,
                fhir_id: fhir_id(space, &id),
                id,
                facts: ItemFacts {
                    category: category(&d["class"]),
                    author: author(&d["author"]),
                    masked: d["masked"].as_bool().unwrap(),
                    hidden_from_representatives: d["hidden_from_representatives"].as_bool().unwrap(),
                    visible_to_holder: d["visible_to_holder"].as_bool().unwrap(),
                },
            }
        })
        .collect()
}

/// Every other item of `space`, as its holder's side (`who`) sees them: the JSON API gives the
/// facts (section, author, counterpart), the FHIR searches the resource types and ids.
async fn list_items(w: &World, who: &Caller, space: HolderId) -> Vec<Item> {
    let base = &w.base;
    let tail = |fhir_id: &str| fhir_id[fhir_id.len() - 32..].to_string();
    let mut facts: BTreeMap<String, Facts> = BTreeMap::new();
    let (_, profile) = answer(&w.c, who, &format!("{base}/api/v1/me/profile")).await;
    for e in profile["entries"].as_array().unwrap() {
        let section = Section::parse(e["section"].as_str().unwrap()).unwrap();
        facts.insert(
            e["id"].as_str().unwrap().replace('-', ""),
            Facts::Item(ItemFacts {
                category: section.category(),
                author: author(&e["author"]),
                ..holder_facts(section.category())
            }),
        );
    }
    let (_, agenda) = answer(&w.c, who, &format!("{base}/api/v1/me/agenda")).await;
    for e in agenda["events"].as_array().unwrap() {
        facts.insert(
            e["id"].as_str().unwrap().replace('-', ""),
            Facts::Item(ItemFacts {
                author: author(&e["author"]),
                ..holder_facts(Category::CarePlans)
            }),
        );
    }
    let (_, convs) = answer(&w.c, who, &format!("{base}/api/v1/me/conversations")).await;
    for conv in convs["conversations"].as_array().unwrap() {
        let key = conv["counterpart"].as_str().unwrap();
        let counterpart = match key.split_once(':').unwrap() {
            ("rpps", id) => Counterpart::Professional {
                id: ProfessionalId(id.into()),
            },
            (_, id) => Counterpart::Establishment {
                id: OrganisationId(id.into()),
            },
        };
        let cf = ConversationFacts {
            counterpart,
            ended: conv["ended"].as_bool().unwrap_or(false),
            counterpart_wrote_before: true,
            counterpart_is_pharmacy: false,
        };
        let url = format!("{base}/api/v1/me/conversations/{}", conv["id"].as_str().unwrap());
        let (_, thread) = answer(&w.c, who, &url).await;
        for m in thread["messages"].as_array().unwrap() {
            facts.insert(
                m["id"].as_str().unwrap().replace('-', ""),
                Facts::Conversation(cf.clone()),
            );
        }
    }
    let mut items = Vec::new();
    for rtype in ITEM_TYPES {
        let url = format!("{}/{rtype}?patient={space}&_count=200", w.fhir);
        let (status, bundle) = answer(&w.c, who, &url).await;
        assert_eq!(status, 200, "{url}: {bundle}");
        let resources: BTreeMap<String, Value> = bundle["entry"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                (
                    e["resource"]["id"].as_str().unwrap_or("").to_string(),
                    e["resource"].clone(),
                )
            })
            .collect();
        for (id, _) in bundle_ids(&bundle) {
            let f = match facts.get(&tail(&id)) {
                Some(f) => f.clone(),
                // The reimbursements (RB-2), and the measurements (read as the holder's).
                None if rtype == "ExplanationOfBenefit" => {
                    Facts::Item(holder_facts(Category::Reimbursements))
                }
                None if rtype == "Observation" => Facts::Item(holder_facts(Category::Summaries)),
                // The directory's grants as Consent: not an item of the matrix.
                None if rtype == "Consent" => continue,
                None => panic!("{rtype}/{id}: an item the holder's side does not list"),
            };
            items.push(Item {
                space,
                rtype: rtype.to_string(),
                resource: resources.get(&id).cloned(),
                fhir_id: id,
                facts: f,
            });
        }
    }
    items
}

/// Documents: search, count, reimbursements, history, the JSON API, the pages, the export,
/// each document by id on every surface, and refused deletions and maskings.
async fn document_cells(w: &World, t: &mut Tally, caller: &Caller, space: HolderId, sf: &SpaceFacts) {
    let (c, base, fhir, nobody) = (&w.c, &w.base, &w.fhir, &w.nobody);
    let enters = w.enters(caller, space);
    let ctx = w.ctx(caller, space);
    let may = |d: &Doc| caller.scoped("DocumentReference", 's') && w.may_read_doc(caller, space, sf, d);
    let in_space: Vec<&Doc> = w.docs.iter().filter(|d| d.space == space).collect();
    if ctx.emergency.is_some() && sf.lifecycle.name() == "activated" {
        // The emergency is exercised: it opens something the nurse could not read.
        assert!(in_space.iter().any(|d| may(d)), "the emergency opens nothing");
    }
    let expected: BTreeSet<String> = in_space
        .iter()
        .filter(|d| may(d))
        .map(|d| d.fhir_id.clone())
        .collect();
    // FHIR search and count; refused outright like a space that does not exist.
    let search = format!("{fhir}/DocumentReference?patient={space}&_count=100");
    let (status, bundle) = answer(c, caller, &search).await;
    let got: BTreeSet<String> = bundle_ids(&bundle).into_keys().collect();
    t.cell(got == expected, || {
        format!(
            "{} search in {space}: {status} got {got:?} expected {expected:?}",
            caller.name
        )
    });
    if !enters {
        let absent = format!("{fhir}/DocumentReference?patient={nobody}&_count=100");
        w.like_missing(t, caller, reqwest::Method::GET, &search, &absent, None)
            .await;
    }
    let (_, count) = answer(
        c,
        caller,
        &format!("{fhir}/DocumentReference?patient={space}&_summary=count"),
    )
    .await;
    t.cell(
        expected.is_empty() || count["total"].as_u64() == Some(expected.len() as u64),
        || {
            format!(
                "{} count in {space}: {count} expected {}",
                caller.name,
                expected.len()
            )
        },
    );
    // Reimbursements (RB-2): counted as the model allows their category, else answered like
    // a patient that does not exist.
    let may_eob = caller.scoped("ExplanationOfBenefit", 's')
        && w.may(
            caller,
            space,
            sf,
            Action::Read,
            &Facts::Item(holder_facts(Category::Reimbursements)),
        );
    let eob_url = format!("{fhir}/ExplanationOfBenefit?patient={space}&_summary=count");
    let has_eob = w
        .items
        .iter()
        .any(|i| i.space == space && i.rtype == "ExplanationOfBenefit");
    if may_eob {
        let eob = answer(c, caller, &eob_url).await;
        t.cell(
            eob.0 == 200 && (eob.1["total"].as_u64().unwrap_or(0) > 0) == has_eob,
            || format!("{} reimbursements in {space}: {eob:?}", caller.name),
        );
    } else {
        let absent = format!("{fhir}/ExplanationOfBenefit?patient={nobody}&_summary=count");
        w.like_missing(t, caller, reqwest::Method::GET, &eob_url, &absent, None)
            .await;
    }
    // The access history (AC-6): the holder's and their current representative's.
    let may_history = enters
        && caller.scopes.is_none()
        && matches!(caller.actor, Actor::Holder { .. } | Actor::Representative { .. });
    let history_url = format!("{fhir}/AuditEvent?patient={space}");
    if may_history {
        let history = answer(c, caller, &history_url).await;
        t.cell(history.0 == 200, || {
            format!("{} history of {space}: {history:?}", caller.name)
        });
    } else {
        let absent = format!("{fhir}/AuditEvent?patient={nobody}");
        w.like_missing(t, caller, reqwest::Method::GET, &history_url, &absent, None)
            .await;
    }
    // The JSON API's listing of this space (the caller's own route to it).
    let list_url = match (&caller.cookie, caller.pro) {
        (Some((_, acting)), _) if *acting == space => Some(format!("{base}/api/v1/me/documents")),
        (_, true) => Some(format!("{base}/api/v1/pro/patients/{space}/documents")),
        _ => None,
    };
    if let Some(url) = &list_url {
        let (status, list) = answer(c, caller, url).await;
        let got = ids_in(space, &list["documents"]);
        t.cell(
            got == expected && (status != 200 || list["total"].as_u64() == Some(expected.len() as u64)),
            || {
                format!(
                    "{} API list in {space}: {status} got {got:?} expected {expected:?}",
                    caller.name
                )
            },
        );
    }
    // The web pages (the holder's /documents, the professional's record page) link exactly the
    // documents the model lets the caller read; so does the export.
    let page = match (&caller.cookie, &caller.bearer) {
        (Some((cookie, acting)), _) if *acting == space => {
            Some((format!("{base}/documents"), cookie.clone()))
        }
        (_, Some(tok)) if caller.pro => Some((
            format!("{base}/pro/patients/{space}"),
            format!("__Host-carnet_pro={tok}"),
        )),
        _ => None,
    };
    if let Some((url, cookie)) = page {
        let html = crate::common::get(c, &url, As::Cookie(&cookie))
            .await
            .text()
            .await
            .unwrap();
        for d in &in_space {
            t.cell(html.contains(&d.id) == may(d), || {
                format!(
                    "{} page {url}: document {} shown {}, the model says {}",
                    caller.name,
                    d.id,
                    html.contains(&d.id),
                    may(d)
                )
            });
        }
    }
    if let Some((_, acting)) = &caller.cookie
        && *acting == space
    {
        let (status, export) = answer(c, caller, &format!("{base}/api/v1/me/export")).await;
        let got = ids_in(space, &export["documents"]);
        // A space that no longer opens (closed, after a death) exports nothing.
        t.cell(got == expected, || {
            format!(
                "{} export of {space}: {status} got {got:?} expected {expected:?}",
                caller.name
            )
        });
    }
    // Each document by id, on every surface; a refusal like a missing document.
    let missing = w.missing(space);
    for d in &in_space {
        let want = caller.scoped("DocumentReference", 'r') && w.may_read_doc(caller, space, sf, d);
        let mut urls = vec![
            (
                format!("{fhir}/DocumentReference/{}", d.fhir_id),
                format!("{fhir}/DocumentReference/{missing}"),
            ),
            (
                format!("{fhir}/DocumentReference/{}/_history/1", d.fhir_id),
                format!("{fhir}/DocumentReference/{missing}/_history/1"),
            ),
            (
                format!("{fhir}/DocumentReference/{}/_history", d.fhir_id),
                format!("{fhir}/DocumentReference/{missing}/_history"),
            ),
            (
                format!("{fhir}/Binary/{}", d.fhir_id),
                format!("{fhir}/Binary/{missing}"),
            ),
        ];
        if let Some(url) = &list_url {
            urls.push((format!("{url}/{}", d.id), format!("{url}/{nobody}")));
            urls.push((
                format!("{url}/{}/content", d.id),
                format!("{url}/{nobody}/content"),
            ));
        }
        for (url, absent) in urls {
            let want = want && (!url.contains("/Binary/") || caller.scoped("Binary", 'r'));
            if want {
                let got = answer(c, caller, &url).await;
                t.cell(got.0 == 200, || {
                    format!("{} {url}: {} but the model allows it", caller.name, got.0)
                });
            } else {
                w.like_missing(t, caller, reqwest::Method::GET, &url, &absent, None)
                    .await;
            }
        }
        // Writes the model refuses to a caller who may not even read the document (deleting,
        // masking: DM-4, DM-5) answer like a missing document (AC-8) and change nothing.
        let may_delete = caller.scoped("DocumentReference", 'd')
            && w.may(caller, space, sf, Action::Delete, &Facts::Item(d.facts.clone()));
        let may_mask = caller.scopes.is_none()
            && matches!(caller.actor, Actor::Holder { .. } | Actor::Representative { .. })
            && w.may_read_doc(caller, space, sf, d);
        if !may_delete && !want {
            let (url, absent) = (
                format!("{fhir}/DocumentReference/{}", d.fhir_id),
                format!("{fhir}/DocumentReference/{missing}"),
            );
            w.like_missing(t, caller, reqwest::Method::DELETE, &url, &absent, None)
                .await;
            if let Some(list) = &list_url {
                let (url, absent) = (format!("{list}/{}", d.id), format!("{list}/{nobody}"));
                w.like_missing(t, caller, reqwest::Method::DELETE, &url, &absent, None)
                    .await;
            }
        }
        if !may_mask
            && !want
            && let Some(list) = &list_url
        {
            let (url, absent) = (format!("{list}/{}", d.id), format!("{list}/{nobody}"));
            let body = Some(json!({"masked": true}));
            w.like_missing(t, caller, reqwest::Method::PATCH, &url, &absent, body)
                .await;
        }
    }
}

/// Profile entries, measurements, messages, agenda events, reimbursements: search by type,
/// read, vread and instance history by id; refused updates and deletions like missing items.
async fn item_cells(w: &World, t: &mut Tally, caller: &Caller, space: HolderId, sf: &SpaceFacts) {
    let (c, fhir, nobody) = (&w.c, &w.fhir, &w.nobody);
    let enters = w.enters(caller, space);
    let missing = w.missing(space);
    let in_space: Vec<&Item> = w.items.iter().filter(|i| i.space == space).collect();
    let known: BTreeSet<&str> = in_space.iter().map(|i| i.fhir_id.as_str()).collect();
    for rtype in ITEM_TYPES {
        let of_type: Vec<&&Item> = in_space.iter().filter(|i| i.rtype == rtype).collect();
        let expected: BTreeSet<String> = of_type
            .iter()
            .filter(|i| caller.scoped(rtype, 's') && w.may(caller, space, sf, Action::Read, &i.facts))
            .map(|i| i.fhir_id.clone())
            .collect();
        let search = format!("{fhir}/{rtype}?patient={space}&_count=200");
        let (status, bundle) = answer(c, caller, &search).await;
        let got: BTreeSet<String> = bundle_ids(&bundle)
            .into_keys()
            .filter(|id| rtype != "Consent" || known.contains(id.as_str()))
            .collect();
        t.cell(got == expected, || {
            format!(
                "{} {rtype} search in {space}: {status} got {got:?} expected {expected:?}",
                caller.name
            )
        });
        if rtype == "Consent" {
            // The directory's grants, as Consent: the holder's side only (AC-3).
            let directory = bundle_ids(&bundle)
                .into_keys()
                .filter(|id| !known.contains(id.as_str()))
                .count();
            let holder_side = caller.scopes.is_none()
                && matches!(caller.actor, Actor::Holder { .. } | Actor::Representative { .. })
                && w.may(
                    caller,
                    space,
                    sf,
                    Action::Read,
                    &Facts::Item(holder_facts(Category::Summaries)),
                );
            t.cell((directory > 0) == (holder_side && !sf.grants.is_empty()), || {
                format!("{} the directory of {space}: {directory} Consent", caller.name)
            });
        }
        if !enters {
            let absent = format!("{fhir}/{rtype}?patient={nobody}&_count=200");
            w.like_missing(t, caller, reqwest::Method::GET, &search, &absent, None)
                .await;
        }
        for i in of_type {
            let want = caller.scoped(rtype, 'r') && w.may(caller, space, sf, Action::Read, &i.facts);
            let read = format!("{fhir}/{rtype}/{}", i.fhir_id);
            let absent = format!("{fhir}/{rtype}/{missing}");
            if want {
                let (status, v) = raw(c, caller, &read).await;
                t.cell(status == 200, || {
                    format!("{} {read}: {status} but the model allows it", caller.name)
                });
                // Its current version by vread, and its instance history.
                let version = v["meta"]["versionId"].as_str().unwrap_or("1").to_string();
                for url in [format!("{read}/_history/{version}"), format!("{read}/_history")] {
                    let (status, _) = answer(c, caller, &url).await;
                    t.cell(status == 200, || {
                        format!("{} {url}: {status} but the model allows it", caller.name)
                    });
                }
            } else {
                for (url, absent) in [
                    (read.clone(), absent.clone()),
                    (format!("{read}/_history/1"), format!("{absent}/_history/1")),
                    (format!("{read}/_history"), format!("{absent}/_history")),
                ] {
                    w.like_missing(t, caller, reqwest::Method::GET, &url, &absent, None)
                        .await;
                }
            }
            // Deleting what one may not delete, updating what one may not update (profile
            // entries, agenda events): like a missing item.
            if matches!(rtype, "Communication" | "ExplanationOfBenefit" | "Observation") {
                continue;
            }
            let may_delete = caller.scoped(rtype, 'd') && w.may(caller, space, sf, Action::Delete, &i.facts);
            if !may_delete && !want {
                w.like_missing(t, caller, reqwest::Method::DELETE, &read, &absent, None)
                    .await;
            }
            if rtype != "Appointment"
                && !want
                && let Some(body) = &i.resource
            {
                let mut elsewhere = body.clone();
                elsewhere["id"] = json!(missing);
                w.like_missing_with(
                    t,
                    caller,
                    reqwest::Method::PUT,
                    (&read, Some(body.clone())),
                    (&absent, Some(elsewhere)),
                )
                .await;
            }
        }
    }
}

/// The space as a whole: the Patient, `$everything`, `_include` and `_revinclude`.
async fn space_cells(w: &World, t: &mut Tally, caller: &Caller, space: HolderId, sf: &SpaceFacts) {
    let (c, fhir, nobody) = (&w.c, &w.fhir, &w.nobody);
    let may_patient = w.may_patient(caller, space, sf);
    let patient = format!("{fhir}/Patient/{space}");
    let absent = format!("{fhir}/Patient/{nobody}");
    if may_patient {
        let (status, v) = answer(c, caller, &patient).await;
        t.cell(status == 200 && v["resourceType"] == "Patient", || {
            format!("{} {patient}: {status} but the model allows it", caller.name)
        });
    } else {
        w.like_missing(t, caller, reqwest::Method::GET, &patient, &absent, None)
            .await;
    }
    // `$everything`: exactly what the model allows of every kind, or, when it allows nothing
    // (or the caller is an app), like a patient that does not exist.
    let docs: Vec<(&str, bool)> = w
        .docs
        .iter()
        .filter(|d| d.space == space)
        .map(|d| (d.fhir_id.as_str(), w.may_read_doc(caller, space, sf, d)))
        .collect();
    let items: Vec<(&str, bool)> = w
        .items
        .iter()
        .filter(|i| i.space == space)
        .map(|i| {
            (
                i.fhir_id.as_str(),
                w.may(caller, space, sf, Action::Read, &i.facts),
            )
        })
        .collect();
    let mut expected: BTreeSet<String> = docs
        .iter()
        .chain(&items)
        .filter(|(_, may)| *may)
        .map(|(id, _)| id.to_string())
        .collect();
    if w.may(
        caller,
        space,
        sf,
        Action::Read,
        &Facts::Item(holder_facts(Category::Administrative)),
    ) {
        expected.insert(space.to_string());
    }
    let everything = format!("{patient}/$everything");
    if caller.scopes.is_some() || expected.is_empty() {
        let absent = format!("{absent}/$everything");
        w.like_missing(t, caller, reqwest::Method::GET, &everything, &absent, None)
            .await;
    } else {
        let (status, bundle) = answer(c, caller, &everything).await;
        let known: BTreeSet<&str> = docs.iter().chain(&items).map(|(id, _)| *id).collect();
        let got: BTreeSet<String> = bundle_ids(&bundle)
            .into_keys()
            .filter(|id| known.contains(id.as_str()) || *id == space.to_string())
            .collect();
        t.cell(got == expected, || {
            format!(
                "{} $everything of {space}: {status}, extra {:?}, lacking {:?}",
                caller.name,
                got.difference(&expected).collect::<Vec<_>>(),
                expected.difference(&got).collect::<Vec<_>>()
            )
        });
    }
    // `_include` of the patient along a document search; `_revinclude` of the documents
    // along a Patient search.
    let readable_docs: BTreeSet<String> = docs
        .iter()
        .filter(|(_, may)| *may && caller.scoped("DocumentReference", 's'))
        .map(|(id, _)| id.to_string())
        .collect();
    let include = format!("{fhir}/DocumentReference?patient={space}&_include=DocumentReference:patient");
    if caller.scoped("Patient", 'r') && caller.scoped("DocumentReference", 's') && w.enters(caller, space) {
        let (status, bundle) = answer(c, caller, &include).await;
        let ids = bundle_ids(&bundle);
        let with_patient = ids.contains_key(&space.to_string());
        let got: BTreeSet<String> = ids.into_keys().filter(|id| *id != space.to_string()).collect();
        t.cell(
            got == readable_docs && with_patient == (may_patient && !readable_docs.is_empty()),
            || {
                format!(
                    "{} {include}: {status} patient {with_patient}, got {got:?}",
                    caller.name
                )
            },
        );
    } else {
        let absent = format!("{fhir}/DocumentReference?patient={nobody}&_include=DocumentReference:patient");
        w.like_missing(t, caller, reqwest::Method::GET, &include, &absent, None)
            .await;
    }
    let rev = format!("{fhir}/Patient?_id={space}&_revinclude=DocumentReference:patient");
    if may_patient && caller.scoped("Patient", 's') && caller.scoped("DocumentReference", 's') {
        let (status, bundle) = answer(c, caller, &rev).await;
        let ids = bundle_ids(&bundle);
        let got: BTreeSet<String> = ids.into_keys().filter(|id| *id != space.to_string()).collect();
        t.cell(got == readable_docs, || {
            format!("{} {rev}: {status} got {got:?}", caller.name)
        });
    } else {
        let absent = format!("{fhir}/Patient?_id={nobody}&_revinclude=DocumentReference:patient");
        w.like_missing(t, caller, reqwest::Method::GET, &rev, &absent, None)
            .await;
    }
}

/// A profile entry (a Condition) written into the space: created where the model allows it,
/// else answered like a patient that does not exist. Returns whether one was created.
async fn create_cell(w: &World, t: &mut Tally, caller: &Caller, space: HolderId, sf: &SpaceFacts) -> bool {
    let condition = |patient: &str| {
        json!({
            "resourceType": "Condition",
            "subject": {"reference": format!("Patient/{patient}")},
            "code": {"text": "Asthme (cellule de la matrice)"},
            "clinicalStatus": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}]},
        })
    };
    let facts = ItemFacts {
        author: caller.author(),
        ..holder_facts(Category::Summaries)
    };
    let may =
        caller.scoped("Condition", 'c') && w.may(caller, space, sf, Action::Create, &Facts::Item(facts));
    let url = format!("{}/Condition", w.fhir);
    if may {
        let (status, v) = send(
            &w.c,
            caller,
            reqwest::Method::POST,
            &url,
            Some(condition(&space.to_string())),
        )
        .await;
        t.cell(status == 201, || {
            format!("{} creates a Condition in {space}: {status} {v}", caller.name)
        });
    } else {
        let (here, nowhere) = (condition(&space.to_string()), condition(&w.nobody));
        w.like_missing_with(
            t,
            caller,
            reqwest::Method::POST,
            (&url, Some(here)),
            (&url, Some(nowhere)),
        )
        .await;
    }
    may
}

/// Adds a profile entry through the JSON API (`url`: the holder's or the professional's
/// route); it must be accepted.
async fn add_entry(rq: reqwest::RequestBuilder, entry: Value) {
    let r = rq.json(&entry).send().await.unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
}

/// Camille's session switched into her child's space named `given`.
async fn switch_into(
    c: &reqwest::Client,
    base: &str,
    cookie: &str,
    children: &[Value],
    given: &str,
) -> HolderId {
    for child in children {
        let r = crate::common::post(
            c,
            &format!("{base}/api/v1/me/act-for"),
            As::Cookie(cookie),
            &json!({ "holder": child["id"] }),
        )
        .await;
        assert_eq!(r.status(), 200);
        let me = get_as(c, &format!("{base}/api/v1/me"), cookie).await;
        if me["administrative"]["given_names"][0] == given {
            return child["id"].as_str().unwrap().parse().unwrap();
        }
    }
    panic!("no child named {given}")
}

/// The space's directory and state as its holder's side reads them.
async fn space_facts(c: &reqwest::Client, base: &str, cookie: &str) -> SpaceFacts {
    let dir = get_as(c, &format!("{base}/api/v1/me/access"), cookie).await;
    let me = get_as(c, &format!("{base}/api/v1/me"), cookie).await;
    let lifecycle =
        Lifecycle::from_parts(me["lifecycle"].as_str().unwrap(), Timestamp::from_unix_seconds(0)).unwrap();
    policy(&dir).facts(lifecycle)
}

pub async fn run(base: &str, data: &std::path::Path) -> usize {
    let c = client();
    let fhir = format!("{base}/fhir");
    // The people and their spaces: Camille in hers, and in each child's; Lucas.
    let camille = demo_login(&c, base, CAMILLE).await;
    let camille_rep = demo_login(&c, base, CAMILLE).await;
    let camille_hugo = demo_login(&c, base, CAMILLE).await;
    let lucas = demo_login(&c, base, "lucas.bernard@demo.carnet.invalid").await;
    let m = get_as(&c, &format!("{base}/api/v1/me"), &camille).await;
    let camille_id: HolderId = m["acting_for"].as_str().unwrap().parse().unwrap();
    let children: Vec<Value> = m["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["relation"] == "parent")
        .cloned()
        .collect();
    let ines_id = switch_into(&c, base, &camille_rep, &children, "Inès").await;
    let hugo_id = switch_into(&c, base, &camille_hugo, &children, "Hugo").await;
    let lucas_id: HolderId = get_as(&c, &format!("{base}/api/v1/me"), &lucas).await["acting_for"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let leroy = pro_token(&c, base, "10000000001").await;
    let petit = pro_token(&c, base, "10000000002").await;
    let moreau = pro_token(&c, base, "10000000003").await;
    let girard = pro_token(&c, base, "10000000004").await;
    let blanc = pro_token(&c, base, "10000000005").await; // SAMU regulator
    let noir = pro_token(&c, base, "10000000006").await; // occupational doctor

    // The cases the demo lacks: a document Dr LEROY holds from Camille (DM-6), one Camille
    // masks (DM-5), documents Lucas and Hugo's mother added; profile entries by holders and
    // by a doctor.
    file(c.post(format!(
            "{base}/api/v1/pro/patients/{camille_id}/documents?title=Résultat%20à%20annoncer&class=reports&hold=true"
        )).bearer_auth(&leroy), "résultat").await;
    for (cookie, title) in [
        (&camille, "Mon%20carnet%20de%20vaccination"),
        (&lucas, "Mes%20analyses"),
        (&camille_hugo, "Carnet%20de%20sant%C3%A9%20de%20Hugo"),
    ] {
        let url = format!("{base}/api/v1/me/documents?title={title}&class=holder_documents");
        file(c.post(url).header("cookie", cookie), "contenu").await;
    }
    for cookie in [&camille, &lucas, &camille_rep, &camille_hugo] {
        add_entry(
            c.post(format!("{base}/api/v1/me/profile"))
                .header("cookie", cookie),
            json!({"section": "conditions", "text": "Asthme", "code": {"system": "icd10", "code": "J45"}}),
        )
        .await;
        add_entry(
            c.post(format!("{base}/api/v1/me/profile"))
                .header("cookie", cookie),
            json!({"section": "vaccinations", "text": "Grippe", "date": "2025-10-01"}),
        )
        .await;
        add_entry(
            c.post(format!("{base}/api/v1/me/measurements"))
                .header("cookie", cookie),
            json!({"code": "8480-6", "value": 128, "unit": "mm[Hg]", "at": "2025-11-20T08:00:00Z"}),
        )
        .await;
    }
    for space in [camille_id, ines_id] {
        add_entry(
            c.post(format!("{base}/api/v1/pro/patients/{space}/profile"))
                .bearer_auth(&leroy),
            json!({"section": "allergies", "text": "Pénicilline"}),
        )
        .await;
    }
    let own = get_as(&c, &format!("{base}/api/v1/me/documents"), &camille).await;
    let to_mask = own["documents"][0]["id"].as_str().unwrap().to_string();
    let r = c
        .patch(format!("{base}/api/v1/me/documents/{to_mask}"))
        .header("cookie", &camille)
        .json(&json!({"masked": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Camille grants an establishment two categories (AC-3), and connects Tensio for herself
    // and for Inès (CA-3), ticking what its convention allows.
    let system = system_token(&c, base, &operator_token(data), "clinique-matrice", "750000777").await;
    let r = crate::common::post(
        &c,
        &format!("{base}/api/v1/me/access/grants"),
        As::Cookie(&camille),
        &json!({"kind": "establishment", "id": "750000777", "categories": ["reports", "summaries"]}),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Lucas grants Dr PETIT two categories, the occupational doctor his express consent
    // (AC-1b), the nurse his whole space, and then blocks her (AC-4: the block wins).
    for (path, body) in [
        (
            "grants",
            json!({"kind": "professional", "id": "10000000002", "categories": ["reports", "summaries"]}),
        ),
        (
            "grants",
            json!({"kind": "professional", "id": "10000000006", "express": true}),
        ),
        ("grants", json!({"kind": "professional", "id": "10000000003"})),
        ("blocked", json!({"professional": "10000000003"})),
    ] {
        let r = crate::common::post(
            &c,
            &format!("{base}/api/v1/me/access/{path}"),
            As::Cookie(&lucas),
            &body,
        )
        .await;
        assert!(r.status().is_success(), "{body}: {}", r.text().await.unwrap());
    }
    let catalogue: Value = crate::common::get(&c, &format!("{base}/api/v1/catalogue"), As::Anonymous)
        .await
        .json()
        .await
        .unwrap();
    let tensio = catalogue["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"].as_str().unwrap_or("").starts_with("Tensio"))
        .expect("Tensio in the catalogue")["client_id"]
        .as_str()
        .unwrap()
        .to_string();
    let redirect = "http://127.0.0.1:8765/callback";
    let scope = "launch/patient patient/*.rs";
    let app_for_camille = app_token(base, &camille, &tensio, redirect, scope, &["summaries"]).await;
    let app_for_ines = app_token(
        base,
        &camille_rep,
        &tensio,
        redirect,
        scope,
        &["summaries", "care_plans"],
    )
    .await;

    // AC-5: the nurse, the regulator and the occupational doctor declare an emergency in
    // Camille's space. Only the nurse's opens it: Camille gave the SAMU no consent, and an
    // occupational doctor never gets in that way (AC-1b).
    let mut emergency_in = None;
    for (who, token, opens) in [
        ("moreau", &moreau, true),
        ("blanc", &blanc, false),
        ("noir", &noir, false),
    ] {
        let r = crate::common::post(
            &c,
            &format!("{base}/api/v1/pro/patients/{camille_id}/emergency"),
            As::Bearer(token),
            &json!({"reason": "patiente inconsciente aux urgences"}),
        )
        .await;
        assert_eq!(r.status() == 201, opens, "{who}: {}", r.text().await.unwrap());
        if opens {
            emergency_in = Some(camille_id);
        }
    }

    let holder = |name: &str, actor: Actor, cookie: &str, space: HolderId| Caller {
        name: name.into(),
        actor,
        cookie: Some((cookie.to_string(), space)),
        bearer: None,
        pro: false,
        scopes: None,
    };
    let pro = |name: &str, rpps: &str, profession: &str, role: PracticeRole, token: &str| Caller {
        name: name.into(),
        actor: Actor::Professional {
            id: ProfessionalId(rpps.into()),
            profession: profession.into(),
            role,
        },
        cookie: None,
        bearer: Some(token.to_string()),
        pro: true,
        scopes: None,
    };
    let app = |name: &str, token: &Value, space: HolderId, by_representative: bool| Caller {
        name: name.into(),
        actor: Actor::App {
            id: AppId(tensio.clone()),
            space: Some(space),
            by_representative,
        },
        cookie: None,
        bearer: Some(token["access_token"].as_str().unwrap().to_string()),
        pro: false,
        scopes: Some(parse_scopes(token["scope"].as_str().unwrap())),
    };
    let callers = vec![
        holder(
            "Camille in her space",
            Actor::Holder { id: camille_id },
            &camille,
            camille_id,
        ),
        holder(
            "Camille for Inès",
            Actor::Representative { id: camille_id },
            &camille_rep,
            ines_id,
        ),
        holder(
            "Camille for Hugo",
            Actor::Representative { id: camille_id },
            &camille_hugo,
            hugo_id,
        ),
        holder("Lucas", Actor::Holder { id: lucas_id }, &lucas, lucas_id),
        pro("Dr LEROY", "10000000001", "medecin", PracticeRole::Care, &leroy),
        pro("Dr PETIT", "10000000002", "medecin", PracticeRole::Care, &petit),
        pro(
            "Sophie MOREAU",
            "10000000003",
            "infirmier",
            PracticeRole::Care,
            &moreau,
        ),
        pro(
            "Paul GIRARD",
            "10000000004",
            "pharmacien",
            PracticeRole::Care,
            &girard,
        ),
        pro(
            "Dr BLANC (SAMU)",
            "10000000005",
            "medecin",
            PracticeRole::Regulation,
            &blanc,
        ),
        pro(
            "Dr NOIR (travail)",
            "10000000006",
            "medecin",
            PracticeRole::Occupational,
            &noir,
        ),
        Caller {
            name: "the clinic's system".into(),
            actor: Actor::Establishment {
                id: OrganisationId("750000777".into()),
            },
            cookie: None,
            bearer: Some(system),
            pro: false,
            scopes: None,
        },
        app("Tensio for Camille", &app_for_camille, camille_id, false),
        app("Tensio for Inès (by her mother)", &app_for_ines, ines_id, true),
        Caller {
            name: "anonymous".into(),
            actor: Actor::Operator {
                id: "anonymous".into(),
            },
            cookie: None,
            bearer: None,
            pro: false,
            scopes: None,
        },
    ];
    let by_name = |n: &str| callers.iter().find(|c| c.name == n).unwrap();

    // The model's facts: every document, as an omniscient reader lists it (the médecin
    // traitant for Camille and Inès: AC-2; the holder's side for the others), every other item
    // as the holder's side sees it, and each space's directory and state.
    let mut w = World {
        c: c.clone(),
        base: base.to_string(),
        fhir: fhir.clone(),
        matrix: HabilitationMatrix::default_matrix(),
        now: Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc()),
        nobody: uuid::Uuid::new_v4().to_string(),
        docs: Vec::new(),
        items: Vec::new(),
        represented: vec![ines_id, hugo_id],
        emergency_in,
        deceased: Vec::new(),
    };
    let leroy_caller = by_name("Dr LEROY");
    for (space, who, url) in [
        (
            camille_id,
            leroy_caller,
            format!("{base}/api/v1/pro/patients/{camille_id}/documents"),
        ),
        (
            ines_id,
            leroy_caller,
            format!("{base}/api/v1/pro/patients/{ines_id}/documents"),
        ),
        (lucas_id, by_name("Lucas"), format!("{base}/api/v1/me/documents")),
        (
            hugo_id,
            by_name("Camille for Hugo"),
            format!("{base}/api/v1/me/documents"),
        ),
    ] {
        w.docs.extend(list_documents(&c, &url, who, space).await);
    }
    assert!(
        w.docs.iter().any(|d| !d.facts.visible_to_holder),
        "a held document"
    );
    assert!(w.docs.iter().any(|d| d.facts.masked), "a masked document");
    assert!(
        w.docs.iter().any(|d| d.facts.hidden_from_representatives),
        "a document hidden from representatives"
    );
    let sides = [
        (camille_id, "Camille in her space", &camille),
        (ines_id, "Camille for Inès", &camille_rep),
        (lucas_id, "Lucas", &lucas),
        (hugo_id, "Camille for Hugo", &camille_hugo),
    ];
    let mut spaces = Vec::new();
    for (space, side, cookie) in sides {
        let items = list_items(&w, by_name(side), space).await;
        w.items.extend(items);
        spaces.push((space, space_facts(&c, base, cookie).await));
    }
    for kind in [
        "Condition",
        "Immunization",
        "AllergyIntolerance",
        "Observation",
        "Communication",
        "Appointment",
        "ExplanationOfBenefit",
    ] {
        assert!(w.items.iter().any(|i| i.rtype == kind), "a {kind} in the world");
    }

    // The world exercises what it should: in Lucas's space the occupational doctor reads with
    // his express consent, the blocked nurse reads nothing, Dr PETIT only his categories.
    let lucas_sf = &spaces[2].1;
    let reads = |who: &str, category: Category| {
        w.may(
            by_name(who),
            lucas_id,
            lucas_sf,
            Action::Read,
            &Facts::Item(holder_facts(category)),
        )
    };
    assert!(reads("Dr NOIR (travail)", Category::HolderDocuments));
    assert!(!reads("Sophie MOREAU", Category::HolderDocuments));
    assert!(reads("Dr PETIT", Category::Summaries) && !reads("Dr PETIT", Category::HolderDocuments));

    // Phase 1: reads, and refused writes, in the activated spaces.
    let mut t = Tally::default();
    for caller in &callers {
        for (space, sf) in &spaces {
            document_cells(&w, &mut t, caller, *space, sf).await;
            item_cells(&w, &mut t, caller, *space, sf).await;
            space_cells(&w, &mut t, caller, *space, sf).await;
        }
    }
    // Nothing refused was written: every document is still there, masked as it was, and
    // every item still there at its version.
    unchanged(&w, &mut t, &spaces, &sides, &callers).await;

    // Phase 2: creations, where the model allows them; counted in the profile after.
    let mut created: BTreeMap<HolderId, usize> = BTreeMap::new();
    for caller in &callers {
        for (space, sf) in &spaces {
            if create_cell(&w, &mut t, caller, *space, sf).await {
                *created.entry(*space).or_default() += 1;
            }
        }
    }
    for (space, side, _) in sides {
        let before = w
            .items
            .iter()
            .filter(|i| i.space == space && i.rtype == "Condition")
            .count();
        let (_, now) = answer(
            &c,
            by_name(side),
            &format!("{fhir}/Condition?patient={space}&_count=200"),
        )
        .await;
        let after = bundle_ids(&now).len();
        let made = created.get(&space).copied().unwrap_or(0);
        t.cell(after == before + made, || {
            format!("Conditions in {space}: {after}, expected {before} + {made} created")
        });
    }

    // Phase 3: the lifecycle. Hugo's space closed by his mother (LC-5), Lucas's death
    // reported (LC-6), a space never activated and one objected to (LC-2, LC-3).
    for space in [lucas_id, hugo_id] {
        w.items.retain(|i| i.space != space);
        let side = sides.iter().find(|s| s.0 == space).unwrap().1;
        let items = list_items(&w, by_name(side), space).await;
        w.items.extend(items);
    }
    let r = c
        .post(format!("{base}/api/v1/me/close"))
        .header("cookie", &camille_hugo)
        .send()
        .await
        .unwrap();
    let confirmation: Value = r.json().await.unwrap();
    let r = crate::common::post(
        &c,
        &format!("{base}/api/v1/me/close/confirm"),
        As::Cookie(&camille_hugo),
        &json!({"confirmation": confirmation["confirmation"]}),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    // Closing sends the session back to Camille's own space; she comes back to reopen it.
    let r = crate::common::post(
        &c,
        &format!("{base}/api/v1/me/act-for"),
        As::Cookie(&camille_hugo),
        &json!({ "holder": hugo_id }),
    )
    .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let operator = operator_token(data);
    let event = |id: HolderId, event: &'static str| {
        let (c, base, operator) = (c.clone(), base.to_string(), operator.clone());
        async move {
            let r = crate::common::post(
                &c,
                &format!("{base}/api/v1/operator/holders/{id}/events"),
                As::Bearer(&operator),
                &json!({ "event": event }),
            )
            .await;
            assert_eq!(r.status(), 200, "{event}: {}", r.text().await.unwrap());
        }
    };
    event(lucas_id, "death").await;
    w.deceased.push(lucas_id);
    let r = crate::common::post(
        &c,
        &format!("{base}/api/v1/operator/holders"),
        As::Bearer(&operator),
        &json!({"administrative": {"ins": ins_for(424_242), "given_names": ["Léon"], "birth_name": "ROUX",
                                          "sex": "male", "birth_date": "1990-04-02"}}),
    )
    .await;
    assert_eq!(r.status(), 201);
    let newcomer: Value = r.json().await.unwrap();
    let newcomer_id: HolderId = newcomer["id"].as_str().unwrap().parse().unwrap();
    let at = Timestamp::from_unix_seconds(0);
    let mut later = vec![
        (hugo_id, Lifecycle::Closed { at }),
        (lucas_id, Lifecycle::Deceased { at }),
        (
            newcomer_id,
            Lifecycle::from_parts(newcomer["lifecycle"].as_str().unwrap(), at).unwrap(),
        ),
    ];
    for (space, lifecycle) in &mut later {
        let old = spaces.iter().find(|s| s.0 == *space).map(|s| s.1.clone());
        let sf = match old {
            Some(mut sf) => {
                sf.lifecycle = *lifecycle;
                sf
            }
            None => AccessPolicy::default().facts(*lifecycle),
        };
        for caller in &callers {
            document_cells(&w, &mut t, caller, *space, &sf).await;
            item_cells(&w, &mut t, caller, *space, &sf).await;
            space_cells(&w, &mut t, caller, *space, &sf).await;
        }
    }
    event(newcomer_id, "oppose").await;
    let sf = AccessPolicy::default().facts(Lifecycle::Opposed { at });
    for caller in &callers {
        space_cells(&w, &mut t, caller, newcomer_id, &sf).await;
        document_cells(&w, &mut t, caller, newcomer_id, &sf).await;
    }
    assert!(
        t.differences.is_empty(),
        "{} of {} cells differ from the model:\n{}",
        t.differences.len(),
        t.cells,
        t.differences.join("\n")
    );
    eprintln!(
        "authorization matrix: {} cells of which {} refusals",
        t.cells, t.refusals
    );
    t.cells
}

/// After the refused writes: each space's documents (masked as they were) and items (at
/// their version) as they were.
async fn unchanged(
    w: &World,
    t: &mut Tally,
    spaces: &[(HolderId, SpaceFacts)],
    sides: &[(HolderId, &str, &String)],
    callers: &[Caller],
) {
    let by_name = |n: &str| callers.iter().find(|c| c.name == n).unwrap();
    for (space, _) in spaces {
        let side = sides.iter().find(|s| s.0 == *space).unwrap().1;
        let now = list_items(w, by_name(side), *space).await;
        let before: BTreeSet<&str> = w
            .items
            .iter()
            .filter(|i| i.space == *space)
            .map(|i| i.fhir_id.as_str())
            .collect();
        let after: BTreeSet<&str> = now.iter().map(|i| i.fhir_id.as_str()).collect();
        t.cell(before == after, || {
            format!("the items of {space} changed: {before:?} → {after:?}")
        });
    }
    for space in [spaces[0].0, spaces[1].0] {
        let url = format!("{}/api/v1/pro/patients/{space}/documents", w.base);
        let list = list_documents(&w.c, &url, by_name("Dr LEROY"), space).await;
        let before: Vec<&Doc> = w.docs.iter().filter(|d| d.space == space).collect();
        t.cell(
            list.len() == before.len()
                && list.iter().filter(|d| d.facts.masked).count()
                    == before.iter().filter(|d| d.facts.masked).count(),
            || format!("the documents of {space} changed"),
        );
    }
}
