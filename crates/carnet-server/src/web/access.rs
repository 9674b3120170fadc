//! The access history in plain words (AC-6) and the authorisation directory (AC-3, AC-4,
//! AC-5): grant, revoke, block, médecin traitant, consent of the emergency regulation, hide
//! everything, through `Store::update_access_policy` as `api::directory` does.

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::access::{
    AccessPolicy, Action, Actor, CareTeam, Category, ConsentForm, Grant, GrantBasis, Grantee,
    INSURER_FEED_OPERATOR, ProfessionalId,
};
use carnet_store::traces::Trace;
use serde::Deserialize;

use super::i18n::t;
use super::{
    Form, Holder, Nav, WebError, alert, class_label, csrf_field, de, display_name, elides, esc, notice, page,
    profession_label, professional_name, see_other, when,
};
use crate::api::directory::{check_grantee, check_rpps};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/historique", get(history))
        .route("/autorisations", get(directory).post(change))
}

/// Whose space the sentences speak of: "vos documents" or "les documents de Inès".
pub struct Whose {
    own: bool,
    given: String,
}

impl Whose {
    pub fn of(h: &Holder) -> Self {
        Self::new(h.own_space(), &h.space_name)
    }
    /// For the holder's own space (`own`) or the space of `space_name` (given name first).
    pub fn new(own: bool, space_name: &str) -> Self {
        Whose {
            own,
            given: space_name.split(' ').next().unwrap_or_default().to_string(),
        }
    }
    fn plural(&self, noun: &str) -> String {
        if self.own {
            format!("vos {noun}")
        } else {
            format!("les {noun} {}", de(&self.given))
        }
    }
    fn singular(&self, noun: &str) -> String {
        let article = if elides(noun) {
            "l'".to_string()
        } else {
            "le ".to_string()
        };
        if self.own {
            format!("votre {noun}")
        } else {
            format!("{article}{noun} {}", de(&self.given))
        }
    }
    fn one_of_feminine(&self, noun: &str) -> String {
        if self.own {
            format!("une de vos {noun}")
        } else {
            format!("une des {noun} {}", de(&self.given))
        }
    }
    fn one_of(&self, noun: &str) -> String {
        if self.own {
            format!("un de vos {noun}")
        } else {
            format!("un des {noun} {}", de(&self.given))
        }
    }
}

/// The second segment of a trace's item (`care_team/consent` → `consent`).
fn sub_of(item: &str) -> Option<&str> {
    item.split('/').nth(1)
}

/// What was done, as (past tense, infinitive, object).
fn phrase(action: Action, item: &str, w: &Whose) -> (&'static str, &'static str, String) {
    let head = item.split('/').next().unwrap_or_default();
    let sub = item.split('/').nth(2);
    match (action, head) {
        (Action::Read, "documents") => ("a consulté", "consulter", w.plural("documents")),
        // LC-5b: the operator's suspension and its lifting, with their reason.
        (_, "suspension") => ("a suspendu", "suspendre", w.singular("espace")),
        (_, "suspension-lifted") => (
            "a levé la suspension de",
            "lever la suspension de",
            w.singular("espace"),
        ),
        (Action::Read, "document") if sub == Some("history") => (
            "a consulté",
            "consulter",
            format!("l'historique d'{}", w.one_of("documents")),
        ),
        (Action::Read, "document") => ("a ouvert", "ouvrir", w.one_of("documents")),
        (Action::Create, "document") => (
            "a ajouté",
            "ajouter",
            if w.own {
                "un document à votre dossier".into()
            } else {
                format!("un document au dossier {}", de(&w.given))
            },
        ),
        (Action::Update, "document") => ("a modifié", "modifier", w.one_of("documents")),
        (Action::Delete, "document") => ("a supprimé", "supprimer", w.one_of("documents")),
        (Action::Read, "profile") => ("a consulté", "consulter", w.singular("profil médical")),
        (Action::Create, "profile") => (
            "a ajouté",
            "ajouter",
            format!("une information à {}", w.singular("profil médical")),
        ),
        (Action::Update, "profile") => (
            "a modifié",
            "modifier",
            format!("une information de {}", w.singular("profil médical")),
        ),
        (Action::Delete, "profile") => (
            "a supprimé",
            "supprimer",
            format!("une information de {}", w.singular("profil médical")),
        ),
        (Action::Read, "measurements" | "measurement") => ("a consulté", "consulter", w.plural("mesures")),
        (Action::Create, "measurements" | "measurement") => ("a ajouté", "ajouter", w.plural("mesures")),
        (Action::Delete, "measurements" | "measurement") => ("a supprimé", "supprimer", w.one_of("mesures")),
        (Action::Read, "conversations") => ("a consulté", "consulter", w.plural("conversations")),
        (Action::Read, "conversation") => ("a lu", "lire", w.one_of_feminine("conversations")),
        (Action::Create, "conversation") => (
            "a écrit",
            "écrire",
            if w.own {
                "un message dans votre messagerie".into()
            } else {
                format!("un message dans la messagerie {}", de(&w.given))
            },
        ),
        (Action::Update, "conversation") => ("a clos", "clore", w.one_of_feminine("conversations")),
        (Action::Read, "agenda") => ("a consulté", "consulter", w.singular("agenda")),
        (Action::Create, "agenda") => (
            "a ajouté",
            "ajouter",
            format!("un événement à {}", w.singular("agenda")),
        ),
        (Action::Update, "agenda") => (
            "a modifié",
            "modifier",
            format!("un événement de {}", w.singular("agenda")),
        ),
        (Action::Delete, "agenda") => (
            "a supprimé",
            "supprimer",
            format!("un événement de {}", w.singular("agenda")),
        ),
        (Action::Read, "reimbursements" | "reimbursement") => {
            ("a consulté", "consulter", w.plural("remboursements"))
        }
        (Action::Create, "reimbursements") => ("a ajouté", "ajouter", w.plural("remboursements")),
        (Action::Update, "access_policy") => ("a modifié", "modifier", w.plural("autorisations")),
        (Action::Read, "patient") if sub_of(item) == Some("lookup") => (
            "a recherché",
            "rechercher",
            format!(
                "{} par le numéro de sécurité sociale (INS)",
                w.singular("dossier")
            ),
        ),
        (Action::Read, "patient") => (
            "a vérifié",
            "vérifier",
            format!("{} (nom, date de naissance, INS)", w.singular("identité")),
        ),
        (Action::Create, "care_team") if sub_of(item) == Some("consent") => (
            "a enregistré",
            "enregistrer",
            if w.own {
                "votre consentement à l'accès d'un professionnel".into()
            } else {
                format!("le consentement {} à l'accès d'un professionnel", de(&w.given))
            },
        ),
        (Action::Create, "care_team") => (
            "a déclaré",
            "déclarer",
            if w.own {
                "vous prendre en charge (équipe de soins), ce qui lui ouvre votre dossier".into()
            } else {
                format!("prendre en charge {} (équipe de soins)", w.given)
            },
        ),
        (Action::Update, "administrative") => ("a modifié", "modifier", w.plural("coordonnées")),
        (Action::Update, "notification_preferences") => {
            ("a modifié", "modifier", w.plural("préférences de notification"))
        }
        (Action::Update, "agenda_feed") => ("a modifié", "modifier", w.plural("abonnements à l'agenda")),
        // MI-5: a carer's acceptance, and invitations made or cancelled by a representative.
        (Action::Create, "carer") => ("a accepté", "accepter", w.one_of_feminine("invitations d'aidant")),
        (_, "carer_invitation") => ("a modifié", "modifier", w.plural("invitations d'aidant")),
        (Action::Read, "administrative") => (
            "a consulté",
            "consulter",
            format!("{} (identité, coordonnées)", w.plural("données administratives")),
        ),
        (Action::Read, _) => ("a consulté", "consulter", w.singular("espace")),
        (Action::Create, _) => (
            "a ajouté",
            "ajouter",
            format!("une information à {}", w.singular("espace")),
        ),
        (Action::Update, _) => ("a modifié", "modifier", w.singular("espace")),
        (Action::Delete, _) => (
            "a supprimé",
            "supprimer",
            format!("une information de {}", w.singular("espace")),
        ),
    }
}

/// What was done, in English, as (past tense, infinitive, object).
fn phrase_en(action: Action, item: &str, w: &Whose) -> (&'static str, &'static str, String) {
    let head = item.split('/').next().unwrap_or_default();
    let whose = |noun: &str| {
        if w.own {
            format!("your {noun}")
        } else {
            format!("{}'s {noun}", w.given)
        }
    };
    let one_of = |noun: &str| {
        if w.own {
            format!("one of your {noun}")
        } else {
            format!("one of {}'s {noun}", w.given)
        }
    };
    match head {
        "suspension" => return ("suspended", "suspend", whose("space")),
        "suspension-lifted" => {
            return (
                "lifted the suspension of",
                "lift the suspension of",
                whose("space"),
            );
        }
        _ => {}
    }
    if action == Action::Read && head == "patient" {
        let whose = if w.own {
            "your".to_string()
        } else {
            format!("{}'s", w.given)
        };
        return if sub_of(item) == Some("lookup") {
            (
                "looked up",
                "look up",
                format!("{whose} record by social security number"),
            )
        } else {
            (
                "checked",
                "check",
                format!("{whose} identity (name, birth date, INS)"),
            )
        };
    }
    if action == Action::Create && head == "care_team" {
        let whose = if w.own {
            "your".to_string()
        } else {
            format!("{}'s", w.given)
        };
        return if sub_of(item) == Some("consent") {
            (
                "recorded",
                "record",
                format!("{whose} consent to a professional's access"),
            )
        } else {
            ("declared", "declare", format!("being in {whose} care team"))
        };
    }
    let (past, infinitive) = match action {
        Action::Create if head == "carer" => ("accepted", "accept"),
        Action::Read if head == "document" => ("opened", "open"),
        Action::Read => ("read", "read"),
        Action::Create => ("added", "add"),
        Action::Update => ("changed", "change"),
        Action::Delete => ("deleted", "delete"),
    };
    let object = match (action, head) {
        (Action::Read, "documents") => whose("documents"),
        (Action::Create, "document") => format!("a document to {}", whose("record")),
        (_, "document") => one_of("documents"),
        (Action::Read, "conversations") => whose("conversations"),
        (Action::Create, "conversation") => format!("a message in {}", whose("secure messaging")),
        (_, "conversation") => one_of("conversations"),
        (Action::Read, "agenda") => whose("health agenda"),
        (_, "agenda") => format!("an event of {}", whose("health agenda")),
        (Action::Read, "profile") => whose("medical profile"),
        (_, "profile") => format!("an entry of {}", whose("medical profile")),
        (_, "reimbursements" | "reimbursement") => whose("reimbursements"),
        (Action::Update, "access_policy") => whose("authorisations"),
        (Action::Update, "administrative") => whose("contact details"),
        (Action::Update, "notification_preferences") => whose("notification preferences"),
        (Action::Update, "agenda_feed") => whose("calendar subscriptions"),
        (Action::Create, "carer") => format!(
            "an invitation to be {} carer",
            if w.own {
                "your".to_string()
            } else {
                format!("{}'s", w.given)
            }
        ),
        (_, "carer_invitation") => whose("carer invitations"),
        (_, "administrative") => format!("{} (identity, contact details)", whose("administrative data")),
        (Action::Delete, "measurements" | "measurement") => one_of("measurements"),
        (_, "measurements" | "measurement") => whose("measurements"),
        (Action::Read | Action::Update, _) => whose("space"),
        (_, _) => format!("an entry of {}", whose("space")),
    };
    (past, infinitive, object)
}

fn profession_en(p: &str) -> String {
    match p {
        "medecin" => "doctor".into(),
        "infirmier" => "nurse".into(),
        "pharmacien" => "pharmacist".into(),
        "sage_femme" => "midwife".into(),
        "chirurgien_dentiste" => "dental surgeon".into(),
        "masseur_kinesitherapeute" => "physiotherapist".into(),
        other => other.replace('_', " "),
    }
}

/// "on 24/11/2026 at 10:42" (French legal time).
fn when_en(t: carnet_domain::Timestamp) -> String {
    super::paris(t).map_or_else(String::new, |d| {
        format!(
            "on {:02}/{:02}/{} at {:02}:{:02}",
            d.day(),
            u8::from(d.month()),
            d.year(),
            d.hour(),
            d.minute()
        )
    })
}

/// Sentences of [`describe`] as a list (`ol` or `ul`), or `empty` when there are none.
pub fn events_list(tag: &str, lines: &[String], empty: &str) -> String {
    if lines.is_empty() {
        return empty.to_string();
    }
    format!(
        "<{tag} class=\"events\">{}</{tag}>",
        lines
            .iter()
            .map(|l| format!("<li>{}</li>", esc(l)))
            .collect::<String>()
    )
}

/// Plain French sentences for traces: "Dr Claire LEROY (médecin) a consulté vos documents le
/// 24/11/2026 à 10:42." Names come from the public directory and the spaces' administrative data.
pub async fn describe(s: &AppState, traces: &[Trace], w: &Whose) -> Result<Vec<String>, WebError> {
    let mut pros: HashMap<String, Option<String>> = HashMap::new();
    let mut people: HashMap<carnet_domain::HolderId, String> = HashMap::new();
    let mut out = Vec::new();
    let english = super::i18n::locale() == super::i18n::Locale::En;
    for t in traces {
        let who = match &t.entry.actor {
            Actor::Professional { id, profession, .. } => {
                if !pros.contains_key(&id.0) {
                    let name = s
                        .store
                        .professional(&id.0)
                        .await
                        .map_err(ApiError::from)?
                        .map(|p| professional_name(&p));
                    pros.insert(id.0.clone(), name);
                }
                let name = pros
                    .get(&id.0)
                    .cloned()
                    .flatten()
                    .unwrap_or_else(|| format!("RPPS {}", id.0));
                if english {
                    format!("{name} ({})", profession_en(profession))
                } else {
                    format!("{name} ({})", profession_label(profession))
                }
            }
            Actor::Holder { id } | Actor::Representative { id } => {
                if !people.contains_key(id) {
                    people.insert(*id, display_name(s, *id).await?);
                }
                let name = people.get(id).cloned().unwrap_or_default();
                if matches!(t.entry.actor, Actor::Representative { .. }) {
                    if english {
                        format!("{name} (legal representative)")
                    } else {
                        format!("{name} (représentant·e légal·e)")
                    }
                } else if w.own {
                    if english { "You".into() } else { "Vous".into() }
                } else {
                    name
                }
            }
            Actor::Carer { id } => {
                if !people.contains_key(id) {
                    people.insert(*id, display_name(s, *id).await.unwrap_or_default());
                }
                let name = people.get(id).cloned().unwrap_or_default();
                if english {
                    format!("{name} (carer)")
                } else {
                    format!("{name} (aidant)")
                }
            }
            Actor::Establishment { id } if english => format!("The establishment FINESS {}", id.0),
            Actor::App { id, .. } if english => format!("The application {}", id.0),
            Actor::Operator { id } if english && id == INSURER_FEED_OPERATOR => {
                "The health insurance (Assurance Maladie)".into()
            }
            Actor::Operator { .. } if english => "The service's operator".into(),
            Actor::Establishment { id } => format!("L'établissement FINESS {}", id.0),
            Actor::App { id, .. } => format!("L'application {}", id.0),
            Actor::Operator { id } if id == INSURER_FEED_OPERATOR => "L'Assurance Maladie".into(),
            Actor::Operator { .. } => "L'opérateur du service".into(),
        };
        if english {
            let (past, infinitive, object) = phrase_en(t.entry.action, &t.entry.item, w);
            let emergency = match (&t.entry.purpose, t.entry.emergency) {
                (Some(r), true) => format!(", in an emergency (reason: “{r}”)"),
                (None, true) => ", in an emergency".into(),
                (Some(r), false) if t.entry.reason == carnet_domain::access::Reason::Support => {
                    format!(" (reason: “{r}”)")
                }
                _ => String::new(),
            };
            out.push(if t.entry.allowed {
                format!("{who} {past} {object}{emergency} {}.", when_en(t.at))
            } else {
                format!(
                    "{who} tried to {infinitive} {object} {}: access refused.",
                    when_en(t.at)
                )
            });
            continue;
        }
        let (past, infinitive, object) = phrase(t.entry.action, &t.entry.item, w);
        // The identity and the lookup say what they read in their own words.
        let category = t
            .entry
            .category
            .filter(|_| !t.entry.item.starts_with("patient/"))
            .map(|c| format!(" ({})", class_label(c).to_lowercase()))
            .unwrap_or_default();
        let emergency = match (&t.entry.purpose, t.entry.emergency) {
            (Some(r), true) => format!(", en urgence (motif : « {r} »)"),
            (None, true) => ", en urgence".into(),
            // S-5: an operator's support access says why.
            (Some(r), false) if t.entry.reason == carnet_domain::access::Reason::Support => {
                format!(" (motif : « {r} »)")
            }
            _ => String::new(),
        };
        let line = if t.entry.allowed {
            format!("{who} {past} {object}{category}{emergency} {}.", when(t.at))
        } else {
            format!(
                "{who} a tenté de {infinitive} {object}{category} {} : accès refusé.",
                when(t.at)
            )
        };
        out.push(line);
    }
    Ok(out)
}

#[derive(Deserialize)]
struct HistoryQuery {
    avant: Option<i64>,
}

const PAGE: i64 = 50;

async fn history(
    State(s): State<AppState>,
    h: Holder,
    Query(q): Query<HistoryQuery>,
) -> Result<Response, WebError> {
    // AC-6, MI-2, DM-6: the history as this reader may see it, decided by the gate.
    let page_of = s
        .gate
        .history(h.space(), &h.actor(), q.avant, None, PAGE)
        .await
        .map_err(ApiError::from)?
        .ok_or_else(ApiError::not_found)?;
    let lines = describe(&s, &page_of.traces, &Whose::of(&h)).await?;
    let list = events_list("ol", &lines, "<p>Aucun accès enregistré.</p>");
    let more = match page_of.next_before {
        Some(seq) => format!("<p><a href=\"/historique?avant={seq}\">Accès plus anciens</a></p>"),
        None => String::new(),
    };
    let body = format!(
        "<h1>{}</h1><p>{}</p>{list}{more}",
        t("history.title"),
        t("history.intro")
    );
    Ok(page(
        "Historique des accès",
        &Nav::Holder {
            h: &h,
            current: "/historique",
        },
        &body,
    )
    .into_response())
}

pub(super) async fn pro_label(s: &AppState, id: &ProfessionalId) -> Result<String, WebError> {
    Ok(match s.store.professional(&id.0).await.map_err(ApiError::from)? {
        Some(p) => format!(
            "{} ({}) — RPPS {}",
            professional_name(&p),
            profession_label(&p.profession),
            p.rpps
        ),
        None => format!("Professionnel RPPS {}", id.0),
    })
}

/// Why a grant exists, for the holder (AC-1b): ", équipe de soins (cabinet…) pour « suivi »,
/// déclarée le 7 décembre 2026", ", consentement oral recueilli par Dr Claire LEROY le …".
pub(super) async fn basis_words(s: &AppState, basis: &GrantBasis) -> Result<String, WebError> {
    Ok(match basis {
        GrantBasis::Holder => String::new(),
        GrantBasis::CareTeam {
            team,
            episode,
            declared_at,
        } => format!(
            " — équipe de soins ({}) pour « {episode} », déclarée le {}",
            care_team_label(*team),
            super::day(*declared_at)
        ),
        GrantBasis::Consent {
            recorded_by,
            form,
            given_at,
        } => {
            let by = match s
                .store
                .professional(&recorded_by.0)
                .await
                .map_err(ApiError::from)?
            {
                Some(p) => professional_name(&p),
                None => format!("le professionnel RPPS {}", recorded_by.0),
            };
            format!(
                " — votre consentement {}, recueilli par {by} le {}",
                match form {
                    ConsentForm::Oral => "oral",
                    ConsentForm::Written => "écrit",
                },
                super::day(*given_at)
            )
        }
    })
}

/// A care team as professionals and patients name it (AC-1b).
pub(super) fn care_team_label(team: CareTeam) -> &'static str {
    match team {
        CareTeam::Practice => "cabinet, maison ou centre de santé",
        CareTeam::Establishment => "service d'un établissement de santé",
        CareTeam::Coordination => "parcours de soins coordonné",
        CareTeam::MedicoSocial => "service médico-social",
    }
}

fn action_form(csrf: &str, action: &str, hidden: &[(&str, &str)], label: &str, class: &str) -> String {
    let fields: String = hidden
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v)))
        .collect();
    format!(
        "<form method=\"post\" action=\"/autorisations\" class=\"inline\">{}<input type=\"hidden\" name=\"action\" value=\"{action}\">\
         {fields}<button type=\"submit\" class=\"{class}\">{}</button></form>",
        csrf_field(csrf),
        esc(label)
    )
}

/// Typed values kept when a form comes back with an error.
#[derive(Default)]
struct Typed {
    form: &'static str,
    rpps: String,
    message: String,
}

async fn render(s: &AppState, h: &Holder, typed: &Typed, info: &str) -> Result<String, WebError> {
    let (p, _): (AccessPolicy, i64) = h
        .holder_side(s)
        .await?
        .access_policy()
        .await
        .map_err(ApiError::from)?;
    let csrf = &h.csrf;
    let err = |f: &str| {
        if typed.form == f {
            alert(&typed.message)
        } else {
            String::new()
        }
    };
    let val = |f: &str| {
        if typed.form == f {
            esc(&typed.rpps)
        } else {
            String::new()
        }
    };
    // Médecin traitant.
    let mt = match &p.medecin_traitant {
        Some(id) => format!(
            "<p>{}</p>{}",
            esc(&pro_label(s, id).await?),
            action_form(
                csrf,
                "medecin_retirer",
                &[],
                super::i18n::fr_en(
                    "Ne plus déclarer de médecin traitant",
                    "Stop declaring a regular doctor"
                ),
                "secondary"
            )
        ),
        None => format!(
            "<p>{}</p>",
            super::i18n::fr_en("Aucun médecin traitant déclaré.", "No regular doctor declared.")
        ),
    };
    // Grants.
    let mut grants = String::new();
    for g in &p.grants {
        // AC-4: a blocked professional has no access, whatever their grant says; they are
        // listed under "bloqués" only (the grant comes back into force if unblocked).
        if matches!(&g.grantee, Grantee::Professional { id } if p.blocked.contains(id)) {
            continue;
        }
        let (kind, id, label) = match &g.grantee {
            Grantee::Professional { id } => ("professional", id.0.clone(), pro_label(s, id).await?),
            Grantee::Establishment { id } => (
                "establishment",
                id.0.clone(),
                match s.store.organisation_name(&id.0).await.map_err(ApiError::from)? {
                    Some(name) => format!(
                        "{name} ({}) — FINESS {}",
                        super::i18n::fr_en("établissement", "establishment"),
                        id.0
                    ),
                    None => format!(
                        "{} FINESS {}",
                        super::i18n::fr_en("Établissement", "Establishment"),
                        id.0
                    ),
                },
            ),
            Grantee::App { id } => ("app", id.0.clone(), format!("Application {}", id.0)),
            // MI-5: carers have a page of their own (`/aidants`), with their invitations.
            Grantee::Carer { .. } => continue,
        };
        let scope = match &g.categories {
            None => super::i18n::fr_en("tout le dossier", "the whole record").to_string(),
            Some(cs) => cs
                .iter()
                .map(|c| class_label(*c).to_lowercase())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let until = g
            .until
            .map(|u| {
                format!(
                    ", {} {}",
                    super::i18n::fr_en("jusqu'au", "until"),
                    super::day(u.plus_seconds(-1))
                )
            })
            .unwrap_or_default();
        let mut basis = basis_words(s, &g.basis).await?;
        if p.care_team_objection && matches!(g.basis, GrantBasis::CareTeam { .. }) {
            basis.push_str(super::i18n::fr_en(
                " (sans effet : vous vous opposez à l'accès des équipes de soins)",
                " (no effect: you object to care teams' access)",
            ));
        }
        grants.push_str(&format!(
            "<li>{}{} {}{until}{} {}</li>",
            esc(&label),
            super::i18n::fr_en(" :", ":"),
            esc(&scope),
            esc(&basis),
            action_form(
                csrf,
                "revoke",
                &[("kind", kind), ("id", &id)],
                super::i18n::fr_en("Retirer l'autorisation", "Withdraw the authorisation"),
                "secondary"
            )
        ));
    }
    if grants.is_empty() {
        grants = format!(
            "<li>{}</li>",
            super::i18n::fr_en(
                "Aucune autorisation particulière.",
                "No particular authorisation."
            )
        );
    }
    // Blocked.
    let mut blocked = String::new();
    for id in &p.blocked {
        blocked.push_str(&format!(
            "<li>{} {}</li>",
            esc(&pro_label(s, id).await?),
            action_form(
                csrf,
                "unblock",
                &[("rpps", &id.0)],
                super::i18n::fr_en("Débloquer", "Unblock"),
                "secondary"
            )
        ));
    }
    if blocked.is_empty() {
        blocked = format!(
            "<li>{}</li>",
            super::i18n::fr_en("Personne n'est bloqué.", "Nobody is blocked.")
        );
    }
    let rpps_form = |form: &'static str, action: &str, legend: &str, button: &str| {
        format!(
            "<form method=\"post\" action=\"/autorisations\" class=\"card\">{}{}<input type=\"hidden\" name=\"action\" value=\"{action}\">\
             <p><label for=\"rpps-{form}\">{legend}</label>\
             <input id=\"rpps-{form}\" name=\"rpps\" type=\"text\" inputmode=\"numeric\" maxlength=\"11\" \
             aria-describedby=\"rpps-help-{form}\" value=\"{}\"></p><p id=\"rpps-help-{form}\" class=\"hint\">{}</p>\
             <p><button type=\"submit\">{button}</button></p></form>",
            err(form),
            csrf_field(csrf),
            val(form),
            super::i18n::fr_en(
                "11 chiffres, sur la carte ou l'ordonnance du professionnel.",
                "11 digits, on the professional's card or prescription."
            ),
        )
    };
    let regulation = if p.regulation_consent {
        format!(
            "<p>{}</p>{}",
            super::i18n::fr_en(
                "Vous acceptez que le médecin régulateur du SAMU consulte cet espace lors d'un appel d'urgence.",
                "You agree that the SAMU's regulating doctor reads this space during an emergency call."
            ),
            action_form(
                csrf,
                "regulation",
                &[("value", "0")],
                super::i18n::fr_en("Retirer mon accord", "Withdraw my agreement"),
                "secondary"
            )
        )
    } else {
        format!(
            "<p>{}</p>{}",
            super::i18n::fr_en(
                "Le médecin régulateur du SAMU ne peut pas consulter cet espace.",
                "The SAMU's regulating doctor cannot read this space."
            ),
            action_form(
                csrf,
                "regulation",
                &[("value", "1")],
                super::i18n::fr_en("Donner mon accord", "Give my agreement"),
                ""
            )
        )
    };
    // AC-1b: presumed authorisation of care teams, and the holder's objection to it.
    let care_team = if p.care_team_objection {
        format!(
            "<p><strong>{}</strong> {}</p>{}",
            super::i18n::fr_en(
                "Vous vous opposez à l'accès des équipes de soins.",
                "You object to care teams' access."
            ),
            super::i18n::fr_en(
                "Seuls les professionnels que vous autorisez vous-même, ou dont un professionnel a recueilli \
                 votre consentement, voient votre dossier.",
                "Only the professionals you authorise yourself, or for whom a professional recorded your \
                 consent, see your record."
            ),
            action_form(
                csrf,
                "care_team",
                &[("value", "0")],
                super::i18n::fr_en("Ne plus m'y opposer", "Stop objecting"),
                "secondary"
            )
        )
    } else {
        format!(
            "<p>{}</p>{}",
            super::i18n::fr_en(
                "Un professionnel qui vous prend en charge (votre cabinet, un service hospitalier, un \
                 parcours de soins coordonné) peut consulter votre dossier après vous en avoir informé, en \
                 déclarant cette prise en charge : il apparaît alors ci-dessus, et vous en êtes prévenu. Les \
                 médecins du travail et de sapeurs-pompiers n'y ont jamais accès sans votre accord exprès.",
                "A professional who cares for you (your practice, a hospital department, a coordinated care \
                 pathway) may read your record after telling you, by declaring that care: they then appear \
                 above, and you are told. Occupational and fire-brigade doctors never have access without \
                 your express agreement."
            ),
            action_form(
                csrf,
                "care_team",
                &[("value", "1")],
                super::i18n::fr_en(
                    "M'opposer à l'accès des équipes de soins",
                    "Object to care teams' access"
                ),
                "secondary"
            )
        )
    };
    let hide_all = if p.hide_all {
        format!(
            "<p><strong>{}</strong> {}</p>{}",
            super::i18n::fr_en(
                "Tout le dossier est masqué aux professionnels",
                "The whole record is hidden from professionals"
            ),
            super::i18n::fr_en(
                "(sauf votre médecin traitant et les auteurs de leurs propres documents).",
                "(except your regular doctor and the authors of their own documents)."
            ),
            action_form(
                csrf,
                "hide_all",
                &[("value", "0")],
                super::i18n::fr_en("Ne plus tout masquer", "Stop hiding everything"),
                "secondary"
            )
        )
    } else {
        format!(
            "<p>{}</p>{}",
            super::i18n::fr_en(
                "Les professionnels autorisés voient les documents que vous n'avez pas masqués.",
                "Authorised professionals see the documents you have not hidden."
            ),
            action_form(
                csrf,
                "hide_all",
                &[("value", "1")],
                super::i18n::fr_en("Masquer tout le dossier", "Hide the whole record"),
                "secondary"
            )
        )
    };
    let grant_forms = format!(
        "<h3>{}</h3>{}{}<details class=\"card\"{}><summary>{}</summary>\
             <form method=\"get\" action=\"/autorisations/autoriser\">\
             <p><label for=\"rpps-grant\">{}</label><input id=\"rpps-grant\" name=\"pro\" type=\"text\" inputmode=\"numeric\" maxlength=\"11\" value=\"{}\"></p>\
             <p><button type=\"submit\" class=\"secondary\">{}</button></p></form>\
             <form method=\"get\" action=\"/autorisations/autoriser\">\
             <p><label for=\"finess\">{}</label><input id=\"finess\" name=\"etablissement\" type=\"text\" maxlength=\"9\" aria-describedby=\"finess-aide\"></p>\
             <p id=\"finess-aide\" class=\"hint\">{}</p>\
             <p><button type=\"submit\" class=\"secondary\">{}</button></p></form></details>",
        super::i18n::fr_en("Autoriser un professionnel", "Authorise a professional"),
        err("grant"),
        super::grant::find_form(s, &Default::default()),
        if typed.form == "grant" { " open" } else { "" },
        super::i18n::fr_en(
            "Par son numéro RPPS, ou un établissement",
            "By RPPS number, or an establishment"
        ),
        super::i18n::fr_en("Numéro RPPS (11 chiffres)", "RPPS number (11 digits)"),
        val("grant"),
        super::i18n::fr_en("Continuer", "Continue"),
        super::i18n::fr_en(
            "Numéro FINESS de l'établissement",
            "The establishment's FINESS number"
        ),
        super::i18n::fr_en(
            "9 caractères, sur les documents de l'établissement.",
            "9 characters, on the establishment's documents."
        ),
        super::i18n::fr_en("Continuer", "Continue"),
    );
    Ok(format!(
        "<h1>{}</h1>{}{}\
         <section aria-labelledby=\"mt\"><h2 id=\"mt\">{}</h2>\
         <p class=\"hint\">{}</p>{mt}{}</section>\
         <section aria-labelledby=\"gr\"><h2 id=\"gr\">{}</h2><ul>{grants}</ul>{}</section>\
         <section aria-labelledby=\"bl\"><h2 id=\"bl\">{}</h2>\
         <p class=\"hint\">{}</p><ul>{blocked}</ul>{}</section>\
         <section aria-labelledby=\"ct\"><h2 id=\"ct\">{}</h2>{care_team}</section>\
         <section aria-labelledby=\"rg\"><h2 id=\"rg\">{}</h2>{regulation}</section>\
         <section aria-labelledby=\"ha\"><h2 id=\"ha\">{}</h2>{hide_all}</section>\
         <section aria-labelledby=\"ai\"><h2 id=\"ai\">{}</h2><p>{}</p><p><a href=\"/aidants\">{}</a></p></section>",
        t("access.title"),
        notice(info),
        if typed.form.is_empty() {
            alert(&typed.message)
        } else {
            String::new()
        },
        t("access.mt"),
        super::i18n::fr_en(
            "Votre médecin traitant voit tout le dossier, documents masqués compris.",
            "Your regular doctor sees the whole record, hidden documents included."
        ),
        rpps_form(
            "medecin",
            "medecin",
            super::i18n::fr_en(
                "Numéro RPPS du médecin traitant",
                "Your regular doctor's RPPS number"
            ),
            super::i18n::fr_en("Déclarer ce médecin traitant", "Declare this regular doctor")
        ),
        t("access.granted"),
        grant_forms,
        t("access.blocked"),
        super::i18n::fr_en(
            "Un professionnel bloqué n'a aucun accès, quoi que disent les autres réglages.",
            "A blocked professional has no access, whatever the other settings say."
        ),
        rpps_form(
            "block",
            "block",
            super::i18n::fr_en(
                "Numéro RPPS du professionnel à bloquer",
                "RPPS number of the professional to block"
            ),
            super::i18n::fr_en("Bloquer ce professionnel", "Block this professional")
        ),
        super::i18n::fr_en("Équipes de soins", "Care teams"),
        t("access.regulation"),
        t("access.hide_all"),
        super::i18n::fr_en("Vos aidants", "Your carers"),
        super::i18n::fr_en(
            "Un proche qui a son propre espace peut consulter les documents que vous choisissez, sans rien pouvoir modifier.",
            "Someone close to you with a space of their own may read the documents you choose, without changing anything.",
        ),
        super::i18n::fr_en("Gérer vos aidants", "Manage your carers"),
    ))
}

#[derive(Deserialize)]
struct Flash {
    ok: Option<String>,
}

async fn directory(
    State(s): State<AppState>,
    h: Holder,
    Query(f): Query<Flash>,
) -> Result<Response, WebError> {
    let info = match f.ok.as_deref() {
        Some(_) => "Vos autorisations ont été enregistrées. Elles s'appliquent dès maintenant.",
        None => "",
    };
    let body = render(&s, &h, &Typed::default(), info).await?;
    Ok(page(
        "Autorisations",
        &Nav::Holder {
            h: &h,
            current: "/autorisations",
        },
        &body,
    )
    .into_response())
}

/// An RPPS number typed in a form, checked as the API does and known to the directory.
async fn known_rpps(s: &AppState, typed: &str) -> Result<ProfessionalId, ApiError> {
    let id = check_rpps(typed.trim())?;
    if s.store.professional(&id.0).await?.is_none() {
        return Err(ApiError::bad_request(
            "aucun professionnel de l'annuaire n'a ce numéro RPPS : vérifiez-le",
        ));
    }
    Ok(id)
}

async fn apply(s: &AppState, h: &Holder, form: &Form) -> Result<(), ApiError> {
    let space = h.holder_side(s).await?;
    let on = form.get("value") == "1";
    match form.get("action") {
        "grant" => {
            let new = grant_of(s, form).await?;
            space
                .update_access_policy(|p| {
                    p.grants.retain(|g| g.grantee != new.grantee);
                    p.grants.push(new.clone());
                })
                .await?;
        }
        "revoke" => {
            let grantee = check_grantee(form.get("kind"), form.get("id"))?;
            if let Grantee::App { id } = &grantee {
                // CA-3: the app's tokens for this space die with its grant.
                space.disconnect_app(&id.0).await?;
            } else {
                space
                    .update_access_policy(|p| p.grants.retain(|g| g.grantee != grantee))
                    .await?;
            }
        }
        "block" => {
            let id = known_rpps(s, form.get("rpps")).await?;
            space
                .update_access_policy(|p| {
                    if !p.blocked.contains(&id) {
                        p.blocked.push(id.clone());
                    }
                })
                .await?;
        }
        "unblock" => {
            let id = check_rpps(form.get("rpps"))?;
            space
                .update_access_policy(|p| p.blocked.retain(|b| *b != id))
                .await?;
        }
        "medecin" => {
            let id = known_rpps(s, form.get("rpps")).await?;
            space
                .update_access_policy(|p| p.medecin_traitant = Some(id.clone()))
                .await?;
        }
        "medecin_retirer" => {
            space.update_access_policy(|p| p.medecin_traitant = None).await?;
        }
        "regulation" => {
            space.update_access_policy(|p| p.regulation_consent = on).await?;
        }
        "hide_all" => {
            space.update_access_policy(|p| p.hide_all = on).await?;
        }
        "care_team" => {
            space.update_access_policy(|p| p.care_team_objection = on).await?;
        }
        _ => return Err(ApiError::bad_request("action inconnue")),
    }
    Ok(())
}

/// The grant a form asks for (AC-3): a professional (by RPPS, known to the directory) or an
/// establishment (FINESS); the whole record or the categories ticked; until the end of a day
/// (in France's legal time) or until revoked.
async fn grant_of(s: &AppState, form: &Form) -> Result<Grant, ApiError> {
    let grantee = match form.get("kind") {
        "" | "professional" => {
            let typed = form.opt("id").unwrap_or(form.get("rpps"));
            Grantee::Professional {
                id: known_rpps(s, typed).await?,
            }
        }
        "establishment" => check_grantee("establishment", &form.get("id").trim().to_uppercase())?,
        _ => return Err(ApiError::bad_request("type d'autorisation inconnu")),
    };
    let (categories, until) = scope_of(s, form)?;
    Ok(Grant {
        grantee,
        categories,
        until,
        express: false,
        basis: GrantBasis::Holder,
    })
}

/// What a grant covers, from its form's fields (`portee`, `categories`, `jusquau`): every
/// category or those ticked, until the end of a day (in France's legal time) or until revoked.
pub(super) fn scope_of(
    s: &AppState,
    form: &Form,
) -> Result<(Option<Vec<Category>>, Option<carnet_domain::Timestamp>), ApiError> {
    let categories = match form.get("portee") {
        "categories" => {
            let cs: Vec<Category> = form.all("categories").filter_map(Category::parse).collect();
            if cs.is_empty() {
                return Err(ApiError::bad_request(
                    "cochez au moins une catégorie, ou choisissez « Tout le dossier »",
                ));
            }
            Some(cs)
        }
        _ => None,
    };
    let until = match super::profile::typed_day(form.get("jusquau")) {
        Err(()) => {
            return Err(ApiError::bad_request(
                "la date de fin n'est pas une date : saisissez-la sous la forme JJ/MM/AAAA",
            ));
        }
        Ok(None) => None,
        Ok(Some(day)) => {
            let end = end_of_day_in_france(day)
                .ok_or_else(|| ApiError::bad_request("la date de fin n'est pas une date"))?;
            if end <= s.store.now() {
                return Err(ApiError::bad_request(
                    "la date de fin est passée : choisissez aujourd'hui ou un jour à venir",
                ));
            }
            Some(end)
        }
    };
    Ok((categories, until))
}

/// The instant a day ends in France (midnight after it, legal time).
fn end_of_day_in_france(day: time::Date) -> Option<carnet_domain::Timestamp> {
    let next = day.next_day()?;
    let noon = carnet_domain::Timestamp::from_offset_date_time(next.with_hms(12, 0, 0).ok()?.assume_utc());
    let offset =
        time::UtcOffset::from_whole_seconds(carnet_domain::agenda::paris_offset_seconds(noon)).ok()?;
    Some(carnet_domain::Timestamp::from_offset_date_time(
        next.midnight().assume_offset(offset),
    ))
}

/// What asks "are you sure?" before it is done: hiding the whole record from professionals,
/// and no longer declaring a médecin traitant (who sees everything, masked documents included).
fn confirmation(h: &Holder, form: &Form) -> Option<String> {
    if form.get("confirme") == "1" {
        return None;
    }
    let (title, explain, yes) = match (form.get("action"), form.get("value")) {
        ("hide_all", "1") => (
            "Masquer tout le dossier ?",
            "Aucun professionnel ne verra plus vos documents, sauf votre médecin traitant et les auteurs de \
             leurs propres documents — y compris en cas de besoin, par exemple un médecin qui vous soigne \
             aux urgences. Vous pourrez revenir sur ce choix à tout moment.",
            "Oui, masquer tout le dossier",
        ),
        ("medecin_retirer", _) => (
            "Ne plus déclarer de médecin traitant ?",
            "Votre médecin traitant voit tout votre dossier, documents masqués compris, et il est prévenu \
             quand quelqu'un y accède en urgence. Sans médecin traitant déclaré, il n'aura plus que les \
             autorisations que vous lui donnez.",
            "Oui, ne plus le déclarer",
        ),
        _ => return None,
    };
    Some(format!(
        "<h1>{title}</h1><p>{explain}</p>\
         <form method=\"post\" action=\"/autorisations\" class=\"card\">{}\
         <input type=\"hidden\" name=\"action\" value=\"{}\"><input type=\"hidden\" name=\"value\" value=\"{}\">\
         <input type=\"hidden\" name=\"confirme\" value=\"1\">\
         <p><button type=\"submit\" class=\"danger\">{yes}</button></p></form>\
         <p><a href=\"/autorisations\">Non, revenir sans rien changer</a></p>",
        csrf_field(&h.csrf),
        esc(form.get("action")),
        esc(form.get("value")),
    ))
}

async fn change(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    if let Some(body) = confirmation(&h, &form) {
        let r = page(
            "Autorisations",
            &Nav::Holder {
                h: &h,
                current: "/autorisations",
            },
            &body,
        );
        return Ok(r.into_response());
    }
    match apply(&s, &h, &form).await {
        Ok(()) => Ok(see_other("/autorisations?ok=1")),
        // A grant chosen on the chooser page comes back there, with its error.
        Err(e) if form.get("action") == "grant" && !form.get("kind").is_empty() => {
            super::grant::chooser(&s, &h, form.get("kind"), form.get("id"), &super::french(&e)).await
        }
        Err(e) => {
            let typed = Typed {
                form: match form.get("action") {
                    "grant" => "grant",
                    "block" => "block",
                    "medecin" => "medecin",
                    _ => "",
                },
                rpps: form.get("rpps").to_string(),
                message: super::french(&e),
            };
            let body = render(&s, &h, &typed, "").await?;
            let mut r = page(
                "Autorisations",
                &Nav::Holder {
                    h: &h,
                    current: "/autorisations",
                },
                &body,
            )
            .into_response();
            *r.status_mut() = if e.status.is_client_error() {
                e.status
            } else {
                StatusCode::BAD_REQUEST
            };
            Ok(r)
        }
    }
}
