//! Issue 30 §3: the authorization matrix (a module of the `fhir` test binary).
//!
//! On the demo world — Camille, her daughter Inès whom she represents, Lucas a stranger to
//! both; Dr LEROY médecin traitant of both, Dr PETIT granted by Camille, a nurse who declares an
//! emergency in Camille's space, a pharmacist without grant, a SAMU regulator and an
//! occupational doctor whose emergencies are refused (AC-5, AC-1b) — plus a document held from
//! Camille (DM-6), one she masked (DM-5), Inès's document hidden from her parents (MI-2) and the
//! holders' own documents: every caller × every space × every document × every surface (FHIR
//! search, count, read, Binary, reimbursements, AuditEvent; the JSON API's listing, read and
//! content; the two document pages; the export; refused deletions and maskings) is compared
//! with a model: its own rule of who enters which space, then `access::decide` on the
//! document's facts and the space's directory. A refusal must answer exactly like a document or
//! patient that does not exist (same status, same body), and nothing refused is written.

use super::*;
use carnet_domain::access::{
    AccessPolicy, Action, Actor, Author, Category, Context, Grant, Grantee, HabilitationMatrix, ItemFacts,
    PracticeRole, ProfessionalId, decide,
};
use carnet_domain::{HolderId, Lifecycle, Timestamp};

/// A caller of the matrix: who the gate sees, and how they authenticate.
struct Caller {
    name: &'static str,
    actor: Actor,
    /// Holder-side session cookie (the space it acts for), or a professional's token.
    cookie: Option<(String, HolderId)>,
    bearer: Option<String>,
}

/// One document as the model knows it.
struct Doc {
    space: HolderId,
    id: String,
    fhir_id: String,
    facts: ItemFacts,
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
            })
            .collect(),
        regulation_consent: v["regulation_consent"].as_bool().unwrap_or(false),
        hide_all: v["hide_all"].as_bool().unwrap_or(false),
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
    let mut rq = c.request(method, url);
    if let Some(b) = body {
        rq = rq.json(&b);
    }
    if let Some((cookie, _)) = &caller.cookie {
        rq = rq.header("cookie", cookie);
    }
    if let Some(t) = &caller.bearer {
        rq = rq.bearer_auth(t);
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

pub async fn run(base: &str) -> usize {
    let c = client();
    let fhir = format!("{base}/fhir");
    // The people and their spaces.
    let camille = demo_login(&c, base, CAMILLE).await;
    let camille_rep = demo_login(&c, base, CAMILLE).await;
    let lucas = demo_login(&c, base, "lucas.bernard@demo.carnet.invalid").await;
    let me = |cookie: String| {
        let c = c.clone();
        let base = base.to_string();
        async move {
            c.get(format!("{base}/api/v1/me"))
                .header("cookie", cookie)
                .send()
                .await
                .unwrap()
                .json::<Value>()
                .await
                .unwrap()
        }
    };
    let m = me(camille.clone()).await;
    let camille_id: HolderId = m["acting_for"].as_str().unwrap().parse().unwrap();
    // Camille's second session switches into Inès's space (her children: Inès and Hugo).
    let mut ines_id = None;
    for child in m["spaces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["relation"] == "parent")
    {
        let r = c
            .post(format!("{base}/api/v1/me/act-for"))
            .header("cookie", &camille_rep)
            .json(&json!({ "holder": child["id"] }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        if me(camille_rep.clone()).await["administrative"]["given_names"][0] == "Inès" {
            ines_id = child["id"].as_str().map(|i| i.parse::<HolderId>().unwrap());
            break;
        }
    }
    let ines_id = ines_id.expect("Inès's space");
    let lucas_id: HolderId = me(lucas.clone()).await["acting_for"]
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
    // masks (DM-5), a document Lucas added himself.
    file(c.post(format!(
            "{base}/api/v1/pro/patients/{camille_id}/documents?title=Résultat%20à%20annoncer&class=reports&hold=true"
        )).bearer_auth(&leroy), "résultat").await;
    file(
        c.post(format!(
            "{base}/api/v1/me/documents?title=Mon%20carnet%20de%20vaccination&class=holder_documents"
        ))
        .header("cookie", &camille),
        "carnet",
    )
    .await;
    file(
        c.post(format!(
            "{base}/api/v1/me/documents?title=Mes%20analyses&class=holder_documents"
        ))
        .header("cookie", &lucas),
        "analyses",
    )
    .await;
    let own: Value = get_as(&c, &format!("{base}/api/v1/me/documents"), &camille).await;
    let to_mask = own["documents"][0]["id"].as_str().unwrap().to_string();
    let r = c
        .patch(format!("{base}/api/v1/me/documents/{to_mask}"))
        .header("cookie", &camille)
        .json(&json!({"masked": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // AC-5: the nurse, the regulator and the occupational doctor declare an emergency in
    // Camille's space. Only the nurse's opens it: Camille gave the SAMU no consent, and an
    // occupational doctor never gets in that way (AC-1b).
    let mut declared = Vec::new();
    for (who, token, opens) in [
        ("moreau", &moreau, true),
        ("blanc", &blanc, false),
        ("noir", &noir, false),
    ] {
        let r = c
            .post(format!("{base}/api/v1/pro/patients/{camille_id}/emergency"))
            .bearer_auth(token)
            .json(&json!({"reason": "patiente inconsciente aux urgences"}))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status() == 201, opens, "{who}: {}", r.text().await.unwrap());
        if opens {
            declared.push(who);
        }
    }

    // The model's facts: every document, as an omniscient reader lists it (the médecin
    // traitant for Camille and Inès: AC-2; Lucas himself for his own space), and each
    // space's directory and state as its holder's side reads them.
    let mut docs = Vec::new();
    for (space, who, url) in [
        (
            camille_id,
            Some(leroy.clone()),
            format!("{base}/api/v1/pro/patients/{camille_id}/documents"),
        ),
        (
            ines_id,
            Some(leroy.clone()),
            format!("{base}/api/v1/pro/patients/{ines_id}/documents"),
        ),
        (lucas_id, None, format!("{base}/api/v1/me/documents")),
    ] {
        let mut rq = c.get(&url);
        rq = match &who {
            Some(t) => rq.bearer_auth(t),
            None => rq.header("cookie", &lucas),
        };
        let list: Value = rq.send().await.unwrap().json().await.unwrap();
        for d in list["documents"].as_array().unwrap() {
            let id = d["id"].as_str().unwrap().to_string();
            docs.push(Doc {
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
            });
        }
    }
    assert!(docs.iter().any(|d| !d.facts.visible_to_holder), "a held document");
    assert!(docs.iter().any(|d| d.facts.masked), "a masked document");
    assert!(
        docs.iter().any(|d| d.facts.hidden_from_representatives),
        "a document hidden from representatives: {}",
        docs.iter()
            .map(|d| format!("{:?}", d.facts))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let mut spaces = Vec::new();
    for (space, cookie) in [
        (camille_id, &camille),
        (ines_id, &camille_rep),
        (lucas_id, &lucas),
    ] {
        let dir: Value = get_as(&c, &format!("{base}/api/v1/me/access"), cookie).await;
        let state = me(cookie.clone()).await["lifecycle"]
            .as_str()
            .unwrap()
            .to_string();
        let t = Timestamp::from_unix_seconds(0);
        let lifecycle = Lifecycle::from_parts(&state, t).unwrap();
        spaces.push((space, policy(&dir).facts(lifecycle)));
    }

    let pro = |name: &'static str, rpps: &str, profession: &str, role: PracticeRole, token: &str| Caller {
        name,
        actor: Actor::Professional {
            id: ProfessionalId(rpps.into()),
            profession: profession.into(),
            role,
        },
        cookie: None,
        bearer: Some(token.to_string()),
    };
    let callers = vec![
        Caller {
            name: "Camille in her space",
            actor: Actor::Holder { id: camille_id },
            cookie: Some((camille.clone(), camille_id)),
            bearer: None,
        },
        Caller {
            name: "Camille for Inès",
            actor: Actor::Representative { id: camille_id },
            cookie: Some((camille_rep.clone(), ines_id)),
            bearer: None,
        },
        Caller {
            name: "Lucas",
            actor: Actor::Holder { id: lucas_id },
            cookie: Some((lucas.clone(), lucas_id)),
            bearer: None,
        },
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
            name: "anonymous",
            actor: Actor::Operator {
                id: "anonymous".into(),
            },
            cookie: None,
            bearer: None,
        },
    ];
    let matrix = HabilitationMatrix::default_matrix();
    let now = Timestamp::from_offset_date_time(time::OffsetDateTime::now_utc());
    let mut cells = 0;
    let mut differences = Vec::new();
    let nobody = uuid::Uuid::new_v4().to_string();
    for caller in &callers {
        let anonymous = caller.cookie.is_none() && caller.bearer.is_none();
        for (space, facts) in &spaces {
            // The model's own rule of who enters which space (not the domain's `enters`):
            // a holder their own, Camille her daughter's as her representative, the
            // professionals any (then `decide`), nobody else.
            let enters = !anonymous
                && match &caller.actor {
                    Actor::Holder { id } => id == space,
                    Actor::Representative { id } => *id == camille_id && *space == ines_id,
                    Actor::Professional { .. } => true,
                    _ => false,
                };
            // A running emergency access stands for a stated reason in that space (AC-5).
            let ctx =
                if caller.name == "Sophie MOREAU" && *space == camille_id && declared.contains(&"moreau") {
                    Context {
                        emergency: Some("patiente inconsciente aux urgences".into()),
                    }
                } else {
                    Context::default()
                };
            let may = |d: &Doc| {
                enters && decide(&caller.actor, Action::Read, &d.facts, facts, &matrix, &ctx, now).allowed
            };
            let in_space: Vec<&Doc> = docs.iter().filter(|d| d.space == *space).collect();
            if ctx.emergency.is_some() {
                // The emergency is exercised: it opens something the nurse could not read.
                assert!(in_space.iter().any(|d| may(d)), "the emergency opens nothing");
            }
            let expected: std::collections::BTreeSet<String> = in_space
                .iter()
                .filter(|d| may(d))
                .map(|d| d.fhir_id.clone())
                .collect();
            // FHIR search and count.
            let (status, bundle) = answer(
                &c,
                caller,
                &format!("{fhir}/DocumentReference?patient={space}&_count=100"),
            )
            .await;
            let got: std::collections::BTreeSet<String> = bundle["entry"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|e| e["resource"]["id"].as_str().unwrap().to_string())
                        .collect()
                })
                .unwrap_or_default();
            cells += 1;
            if got != expected {
                differences.push(format!(
                    "{} search in {space}: {status} got {got:?} expected {expected:?}",
                    caller.name
                ));
            }
            let (_, count) = answer(
                &c,
                caller,
                &format!("{fhir}/DocumentReference?patient={space}&_summary=count"),
            )
            .await;
            cells += 1;
            if !expected.is_empty() && count["total"].as_u64() != Some(expected.len() as u64) {
                differences.push(format!(
                    "{} count in {space}: {count} expected {}",
                    caller.name,
                    expected.len()
                ));
            }
            // Reimbursements (RB-2): counted as the model allows their category, else
            // answered like a patient that does not exist.
            let reimbursements = ItemFacts {
                category: Category::Reimbursements,
                author: Author::Holder,
                masked: false,
                hidden_from_representatives: false,
                visible_to_holder: true,
            };
            let may_eob = enters
                && decide(
                    &caller.actor,
                    Action::Read,
                    &reimbursements,
                    facts,
                    &matrix,
                    &ctx,
                    now,
                )
                .allowed;
            let eob = answer(
                &c,
                caller,
                &format!("{fhir}/ExplanationOfBenefit?patient={space}&_summary=count"),
            )
            .await;
            cells += 1;
            if may_eob {
                if eob.0 != 200 || eob.1["total"].as_u64().unwrap_or(0) == 0 {
                    differences.push(format!("{} reimbursements in {space}: {eob:?}", caller.name));
                }
            } else {
                let none = answer(
                    &c,
                    caller,
                    &format!("{fhir}/ExplanationOfBenefit?patient={nobody}&_summary=count"),
                )
                .await;
                if eob != none {
                    differences.push(format!(
                        "{} reimbursements in {space}: {eob:?}, unlike no space {none:?}",
                        caller.name
                    ));
                }
            }
            // The access history (AC-6): the holder's and their current representative's.
            let may_history =
                enters && matches!(caller.actor, Actor::Holder { .. } | Actor::Representative { .. });
            let history = answer(&c, caller, &format!("{fhir}/AuditEvent?patient={space}")).await;
            cells += 1;
            if may_history {
                if history.0 != 200 {
                    differences.push(format!("{} history of {space}: {history:?}", caller.name));
                }
            } else {
                let none = answer(&c, caller, &format!("{fhir}/AuditEvent?patient={nobody}")).await;
                if history != none {
                    differences.push(format!(
                        "{} history of {space}: {history:?}, unlike no space {none:?}",
                        caller.name
                    ));
                }
            }
            // The JSON API's listing of this space (the caller's own route to it).
            let list_url = match (&caller.cookie, &caller.bearer) {
                (Some((_, acting)), _) if acting == space => Some(format!("{base}/api/v1/me/documents")),
                (_, Some(_)) => Some(format!("{base}/api/v1/pro/patients/{space}/documents")),
                _ => None,
            };
            if let Some(url) = &list_url {
                let (status, list) = answer(&c, caller, url).await;
                let got = ids_in(*space, &list["documents"]);
                cells += 1;
                if got != expected || (status == 200 && list["total"].as_u64() != Some(expected.len() as u64))
                {
                    differences.push(format!(
                        "{} API list in {space}: {status} got {got:?} expected {expected:?}",
                        caller.name
                    ));
                }
            }
            // The web pages (the holder's /documents, the professional's record page) link
            // exactly the documents the model lets the caller read; so does the export.
            let page = match (&caller.cookie, &caller.bearer) {
                (Some((cookie, acting)), _) if acting == space => {
                    Some((format!("{base}/documents"), cookie.clone()))
                }
                (_, Some(t)) => Some((
                    format!("{base}/pro/patients/{space}"),
                    format!("__Host-carnet_pro={t}"),
                )),
                _ => None,
            };
            if let Some((url, cookie)) = page {
                let html = c
                    .get(&url)
                    .header("cookie", cookie)
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                for d in &in_space {
                    cells += 1;
                    if html.contains(&d.id) != may(d) {
                        differences.push(format!(
                            "{} page {url}: document {} shown {}, the model says {}",
                            caller.name,
                            d.id,
                            html.contains(&d.id),
                            may(d)
                        ));
                    }
                }
            }
            if let Some((cookie, acting)) = &caller.cookie
                && acting == space
            {
                let export = get_as(&c, &format!("{base}/api/v1/me/export"), cookie).await;
                let got = ids_in(*space, &export["documents"]);
                cells += 1;
                if got != expected {
                    differences.push(format!(
                        "{} export of {space}: got {got:?} expected {expected:?}",
                        caller.name
                    ));
                }
            }
            // Each document by id, on every surface; a refusal like a missing document.
            for d in &in_space {
                let want = may(d);
                let missing = fhir_id(*space, &nobody);
                let mut urls = vec![
                    (
                        format!("{fhir}/DocumentReference/{}", d.fhir_id),
                        format!("{fhir}/DocumentReference/{missing}"),
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
                    let got = answer(&c, caller, &url).await;
                    cells += 1;
                    if want {
                        if got.0 != 200 {
                            differences.push(format!(
                                "{} {url}: {} but the model allows it",
                                caller.name, got.0
                            ));
                        }
                    } else {
                        let none = answer(&c, caller, &absent).await;
                        if got != none {
                            differences.push(format!(
                                "{} {url}: {got:?}, unlike a missing document {none:?}",
                                caller.name
                            ));
                        }
                    }
                }
                // Writes the model refuses to a caller who may not even read the document
                // (deleting, masking: DM-4, DM-5) answer like a missing document (AC-8) and
                // change nothing (the later cells would see it).
                let may_delete = enters
                    && decide(&caller.actor, Action::Delete, &d.facts, facts, &matrix, &ctx, now).allowed;
                let may_mask = enters
                    && matches!(caller.actor, Actor::Holder { .. } | Actor::Representative { .. })
                    && decide(&caller.actor, Action::Read, &d.facts, facts, &matrix, &ctx, now).allowed;
                let missing = fhir_id(*space, &nobody);
                let mut writes = Vec::new();
                if !may_delete && !want {
                    writes.push((
                        reqwest::Method::DELETE,
                        format!("{fhir}/DocumentReference/{}", d.fhir_id),
                        format!("{fhir}/DocumentReference/{missing}"),
                        None,
                    ));
                    if let Some(url) = &list_url {
                        writes.push((
                            reqwest::Method::DELETE,
                            format!("{url}/{}", d.id),
                            format!("{url}/{nobody}"),
                            None,
                        ));
                    }
                }
                if !may_mask
                    && !want
                    && let Some(url) = &list_url
                {
                    writes.push((
                        reqwest::Method::PATCH,
                        format!("{url}/{}", d.id),
                        format!("{url}/{nobody}"),
                        Some(json!({"masked": true})),
                    ));
                }
                for (method, url, absent, body) in writes {
                    let got = send(&c, caller, method.clone(), &url, body.clone()).await;
                    let none = send(&c, caller, method.clone(), &absent, body).await;
                    cells += 1;
                    if got != none {
                        differences.push(format!(
                            "{} {method} {url}: {got:?}, unlike a missing document {none:?}",
                            caller.name
                        ));
                    }
                }
            }
        }
    }
    // Nothing the model refused was written: every document is still there, unmasked
    // where it was.
    for (space, who) in [(camille_id, &leroy), (ines_id, &leroy)] {
        let list: Value = c
            .get(format!("{base}/api/v1/pro/patients/{space}/documents"))
            .bearer_auth(who)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let masked = list["documents"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|d| d["masked"] == true)
            .count();
        let before: Vec<&Doc> = docs.iter().filter(|d| d.space == space).collect();
        cells += 1;
        if list["total"].as_u64() != Some(before.len() as u64)
            || masked != before.iter().filter(|d| d.facts.masked).count()
        {
            differences.push(format!("the documents of {space} changed: {list}"));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {cells} cells differ from the model:\n{}",
        differences.len(),
        differences.join("\n")
    );
    cells
}
