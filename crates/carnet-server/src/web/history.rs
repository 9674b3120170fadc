//! The access history in plain words (AC-6): every trace of a space as a sentence a holder
//! understands, for the history page, the home page, the notifications and the export.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::access::{Action, Actor, INSURER_FEED_OPERATOR};
use carnet_store::traces::Trace;
use serde::Deserialize;

use super::i18n::t;
use super::{
    Holder, Nav, WebError, class_label, de, display_name, elides, esc, page, profession_label,
    professional_name, when,
};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/historique", get(history))
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
