//! The readable copy of a space (ID-3): everything it holds, in French a person reads without
//! help — no field names, no state codes, no ISO dates — as a page of the site to print or
//! save (`/mon-espace/export`), and as `lisez-moi.html` in the export archive
//! (`api::export`). The same words as the space's own pages: documents' rows, profile
//! entries, reimbursements' table, the history's sentences.

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::access::Grantee;
use serde_json::Value;

use super::access::{basis_words, pro_label};
use super::history::{Whose, describe};
use super::i18n::{Locale, Reader, author_words, decimal, fr_en as tr, locale, section_label};
use super::{Holder, Nav, WebError, bare_when, class_label, day, iso_day, page, rendered, when};
use crate::api::export::{SpaceCopy, collect};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/mon-espace/export", get(show))
}

async fn show(State(s): State<AppState>, h: Holder) -> Result<Response, WebError> {
    let side = h.holder_side(&s).await?;
    let copy = collect(&s, h.space(), &h.actor(), &side).await?;
    let links = Links {
        intro: tr(
            "Cette page est la copie lisible de l'espace : imprimez-la ou enregistrez-la en PDF depuis votre \
             navigateur (menu Imprimer). Pour garder aussi les fichiers :",
            "This page is the readable copy of the space: print it or save it as a PDF from your browser \
             (Print menu). To keep the files as well:",
        ),
        zip: tr(
            "Archive complète (ZIP) : cette page, les documents et les pièces jointes en fichiers, et les données \
             au format JSON",
            "Complete archive (ZIP): this page, the documents and attachments as files, and the data as JSON",
        ),
        json: tr(
            "Données seules au format JSON (documents inclus, pour un autre service ou une application)",
            "The data alone as JSON (documents included, for another service or an app)",
        ),
        keep_safe: tr(
            "Ces fichiers contiennent des données de santé : gardez-les en lieu sûr.",
            "These files hold health data: keep them somewhere safe.",
        ),
    };
    let body = render(&s, &copy, h.own_space(), &h.space_name, Some(links)).await?;
    Ok(page(
        tr("Copie de l'espace", "Copy of the space"),
        &Nav::Holder {
            h: &h,
            current: "/mon-espace",
        },
        &body,
    )
    .into_response())
}

/// The archive's `lisez-moi.html`: the readable copy as a page of its own.
pub async fn readable_document(
    s: &AppState,
    copy: &SpaceCopy,
    own: bool,
    space_name: &str,
) -> Result<String, ApiError> {
    let body = readable_body(s, copy, own, space_name)
        .await
        .map_err(|e| ApiError::new(e.status, "export", e.message))?;
    Ok(format!(
        "<!doctype html><html lang=\"{}\"><head><meta charset=\"utf-8\">\
         <title>{}</title><style>\
         body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}\
         table{{border-collapse:collapse}}td,th{{border:1px solid #bbb;padding:.25rem .5rem;text-align:left}}\
         .num{{text-align:right}}.muted{{color:#555}}</style></head><body><main>{body}\
         <p class=\"muted\">{}</p></main></body></html>",
        tr("fr", "en"),
        tr("Copie de l'espace Carnet", "Copy of the Carnet space"),
        tr(
            "Les fichiers des documents sont dans le dossier <code>documents</code> de cette archive, \
             les pièces jointes des messages dans <code>messages</code>, et toutes les données au format JSON dans \
             <code>carnet-export.json</code>.",
            "The documents' files are in this archive's <code>documents</code> folder, the messages' attachments \
             in <code>messages</code>, and all the data as JSON in <code>carnet-export.json</code>.",
        ),
    ))
}

/// What the page offers beside the copy itself (not in the archive's copy).
struct Links {
    intro: &'static str,
    zip: &'static str,
    json: &'static str,
    keep_safe: &'static str,
}

/// The copy's words, in the page's language.
struct Words {
    contents: &'static str,
    identity: &'static str,
    documents: &'static str,
    no_documents: &'static str,
    doc_title: &'static str,
    category: &'static str,
    act_date: &'static str,
    author: &'static str,
    deposited: &'static str,
    size: &'static str,
    profile: &'static str,
    no_profile: &'static str,
    measures: &'static str,
    no_measures: &'static str,
    measure: &'static str,
    value: &'static str,
    date: &'static str,
    noted_by: &'static str,
    messages: &'static str,
    no_messages: &'static str,
    with: &'static str,
    attachments: &'static str,
    agenda: &'static str,
    no_agenda: &'static str,
    reimbursements: &'static str,
    no_reimbursements: &'static str,
    care_date: &'static str,
    care_type: &'static str,
    act: &'static str,
    professional: &'static str,
    paid: &'static str,
    reimbursed: &'static str,
    remaining: &'static str,
    authorisations: &'static str,
    history: &'static str,
    no_history: &'static str,
}

impl Words {
    fn new() -> Self {
        Words {
            contents: tr("Sommaire", "Contents"),
            identity: tr("Identité", "Identity"),
            documents: tr("Documents", "Documents"),
            no_documents: tr("Aucun document.", "No document."),
            doc_title: tr("Titre", "Title"),
            category: tr("Catégorie", "Category"),
            act_date: tr("Date de l'acte", "Date of care"),
            author: tr("Auteur", "Author"),
            deposited: tr("Déposé le", "Added on"),
            size: tr("Taille", "Size"),
            profile: tr("Profil médical", "Medical profile"),
            no_profile: tr(
                "Aucune information dans le profil médical.",
                "Nothing in the medical profile.",
            ),
            measures: tr("Mesures", "Measurements"),
            no_measures: tr("Aucune mesure.", "No measurement."),
            measure: tr("Mesure", "Measurement"),
            value: tr("Valeur", "Value"),
            date: tr("Date", "Date"),
            noted_by: tr("Notée par", "Recorded by"),
            messages: tr("Messages", "Messages"),
            no_messages: tr("Aucune conversation.", "No conversation."),
            with: tr("avec", "with"),
            attachments: tr("Pièces jointes :", "Attachments:"),
            agenda: tr("Agenda", "Agenda"),
            no_agenda: tr("Aucun événement.", "No event."),
            reimbursements: tr("Remboursements", "Reimbursements"),
            no_reimbursements: tr("Aucun remboursement.", "No reimbursement."),
            care_date: tr("Date des soins", "Date of care"),
            care_type: tr("Type", "Type"),
            act: tr("Acte", "Procedure"),
            professional: tr("Professionnel", "Professional"),
            paid: tr("Payé", "Paid"),
            reimbursed: tr("Remboursé", "Reimbursed"),
            remaining: tr("Reste à charge", "Left to pay"),
            authorisations: tr("Autorisations", "Authorisations"),
            history: tr("Historique des accès", "Access history"),
            no_history: tr("Aucun accès enregistré.", "No access recorded."),
        }
    }
}

struct DocumentRow {
    title: String,
    category: &'static str,
    date: String,
    author: String,
    deposited: String,
    size: String,
}

struct MessageLine {
    sender: String,
    when: String,
    lines: Vec<String>,
    attachments: String,
}

struct Conversation {
    subject: String,
    counterpart: String,
    messages: Vec<MessageLine>,
}

struct ReimbursementRow {
    date: String,
    care: &'static str,
    act: String,
    code: Option<String>,
    professional: String,
    paid: String,
    reimbursed: String,
    remaining: String,
}

/// The readable copy, escaped by the template engine.
#[derive(askama::Template)]
#[template(path = "export/copy.html")]
struct Copy {
    w: Words,
    title: String,
    /// "Faite le … Espace ouvert et activé depuis le …"
    made: String,
    links: Option<Links>,
    sections: Vec<(&'static str, &'static str)>,
    identity: Vec<(&'static str, String)>,
    documents: Vec<DocumentRow>,
    profile: Vec<(&'static str, Vec<String>)>,
    /// Measure, value with its unit, when, who noted it.
    measures: Vec<(&'static str, String, String, String)>,
    conversations: Vec<Conversation>,
    agenda: Vec<String>,
    reimbursements: Vec<ReimbursementRow>,
    authorisations: Vec<String>,
    history: Vec<String>,
}

/// The copy's sections, under its title (the archive's `lisez-moi.html` and the page).
pub async fn readable_body(
    s: &AppState,
    c: &SpaceCopy,
    own: bool,
    space_name: &str,
) -> Result<String, WebError> {
    render(s, c, own, space_name, None).await
}

async fn render(
    s: &AppState,
    c: &SpaceCopy,
    own: bool,
    space_name: &str,
    links: Option<Links>,
) -> Result<String, WebError> {
    let reader = if own {
        Reader::Holder
    } else {
        Reader::Representative
    };
    let whose = Whose::new(own, space_name);
    let title = match (own, locale()) {
        (true, _) => tr("Copie de votre espace", "Copy of your space").to_string(),
        (false, Locale::Fr) => format!("Copie de l'espace {}", super::de(space_name)),
        (false, Locale::En) => format!("Copy of {space_name}'s space"),
    };
    let w = Words::new();
    let sections = vec![
        ("identite", w.identity),
        ("documents", w.documents),
        ("profil", w.profile),
        ("mesures", w.measures),
        ("messages", w.messages),
        ("agenda", w.agenda),
        ("remboursements", w.reimbursements),
        ("autorisations", w.authorisations),
        ("historique", w.history),
    ];
    let documents = c
        .documents
        .iter()
        .map(|d| {
            let m = &d.meta;
            DocumentRow {
                title: m.title.clone(),
                category: class_label(m.class),
                date: m.event_date.as_deref().map(iso_day).unwrap_or_default(),
                author: author_words(&m.author, &m.author_name, reader),
                deposited: day(m.uploaded_at),
                size: size_words(m.size),
            }
        })
        .collect();
    let mut profile: Vec<(&'static str, Vec<String>)> = Vec::new();
    for e in &c.profile {
        let label = section_label(e.entry.section);
        let line = super::profile::entry_label(e, reader);
        match profile.iter_mut().find(|(l, _)| *l == label) {
            Some((_, v)) => v.push(line),
            None => profile.push((label, vec![line])),
        }
    }
    let measures = c
        .measurements
        .iter()
        .map(|(m, p)| {
            (
                crate::web::i18n::measure_label(m),
                format!(
                    "{} {}",
                    decimal(p.measurement.value),
                    crate::web::i18n::measure_unit(m)
                ),
                bare_when(p.measurement.at),
                author_words(&p.author, "", reader),
            )
        })
        .collect();
    let conversations = c
        .conversations
        .iter()
        .map(|t| Conversation {
            subject: t.conversation.subject.clone(),
            counterpart: t.conversation.counterpart_name.clone(),
            messages: t
                .messages
                .iter()
                .map(|m| MessageLine {
                    // The holder's own messages carry no name: "Vous", or whose space it is.
                    sender: match (m.sender_name.is_empty(), own) {
                        (false, _) => m.sender_name.clone(),
                        (true, true) => tr("Vous", "You").into(),
                        (true, false) => space_name.to_string(),
                    },
                    when: when(m.sent_at),
                    lines: m.text.lines().map(str::to_string).collect(),
                    attachments: m
                        .attachments
                        .iter()
                        .map(|a| a.filename.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                })
                .collect(),
        })
        .collect();
    let agenda = c
        .agenda
        .iter()
        .map(|e| {
            format!(
                "{}{} {} — {}{}",
                super::agenda::kind_label(e.event.kind),
                tr(" :", ":"),
                e.event.title,
                when(e.event.start),
                e.event
                    .location
                    .as_deref()
                    .map(|l| format!(", {l}"))
                    .unwrap_or_default()
            )
        })
        .collect();
    let reimbursements = c
        .reimbursements
        .iter()
        .map(|r| {
            let l = &r.line;
            ReimbursementRow {
                date: iso_day(&carnet_domain::reimbursement::format_date(l.date_of_care)),
                care: super::reimbursements::care_label(l.care_type),
                act: l.act_label.clone(),
                code: l.act_code.clone(),
                professional: if l.professional.name.is_empty() {
                    "—".into()
                } else {
                    l.professional.name.clone()
                },
                paid: crate::chart::amount(l.paid_cents),
                reimbursed: crate::chart::amount(l.reimbursed_cents),
                remaining: crate::chart::amount(l.remaining_cents()),
            }
        })
        .collect();
    let copy = Copy {
        title,
        made: format!(
            "{} {}. {}",
            tr("Faite", "Made"),
            when(c.exported_at),
            lifecycle_words(&c.record.lifecycle)
        ),
        links,
        sections,
        identity: identity(&c.record.administrative),
        documents,
        profile,
        measures,
        conversations,
        agenda,
        reimbursements,
        authorisations: authorisations(s, c).await?,
        history: describe(s, &c.history, &whose).await?,
        w,
    };
    rendered(&copy)
}

async fn authorisations(s: &AppState, c: &SpaceCopy) -> Result<Vec<String>, WebError> {
    let p = &c.policy;
    let mut items = Vec::new();
    match &p.medecin_traitant {
        Some(id) => items.push(format!(
            "{} {}",
            tr("Médecin traitant :", "Regular doctor:"),
            pro_label(s, id).await?
        )),
        None => items.push(tr("Aucun médecin traitant déclaré.", "No regular doctor declared.").into()),
    }
    for g in &p.grants {
        let who = match &g.grantee {
            Grantee::Professional { id } => pro_label(s, id).await?,
            Grantee::Establishment { id } => match s.store.organisation_name(&id.0).await {
                Ok(Some(name)) => format!("{name} (FINESS {})", id.0),
                _ => format!("{} FINESS {}", tr("Établissement", "Establishment"), id.0),
            },
            Grantee::App { id } => format!("{} {}", tr("Application", "App"), id.0),
            Grantee::Carer { id } => match super::display_name(s, *id).await {
                Ok(name) => format!("{name} ({})", tr("aidant", "carer")),
                Err(_) => tr(
                    "Un aidant dont l'espace a été supprimé",
                    "A carer whose space was erased",
                )
                .into(),
            },
        };
        let what = match &g.categories {
            None => tr("tout le dossier", "the whole record").to_string(),
            Some(cats) => cats
                .iter()
                .map(|c| class_label(*c))
                .collect::<Vec<_>>()
                .join(", "),
        };
        let until = g
            .until
            .map(|t| format!(", {} {}", tr("jusqu'au", "until"), day(t)))
            .unwrap_or_default();
        items.push(format!(
            "{who}{} {what}{until}{}",
            tr(" :", ":"),
            basis_words(s, &g.basis).await?
        ));
    }
    for b in &p.blocked {
        items.push(format!(
            "{} {}",
            tr("Bloqué :", "Blocked:"),
            pro_label(s, b).await?
        ));
    }
    let settings = [
        (
            p.hide_all,
            tr(
                "Tout le dossier est masqué aux professionnels.",
                "The whole record is hidden from professionals.",
            ),
        ),
        (
            p.care_team_objection,
            tr(
                "Vous vous opposez à l'accès présumé des équipes de soins.",
                "You object to care teams' presumed access.",
            ),
        ),
        (
            p.regulation_consent,
            tr(
                "Les médecins régulateurs du SAMU peuvent consulter l'espace en cas d'appel.",
                "SAMU regulating doctors may read the space when you call.",
            ),
        ),
    ];
    items.extend(settings.iter().filter(|(on, _)| *on).map(|(_, t)| t.to_string()));
    Ok(items)
}

/// "Espace ouvert depuis le 3 mars 2026." — the lifecycle in words.
fn lifecycle_words(l: &carnet_domain::Lifecycle) -> String {
    use carnet_domain::Lifecycle as L;
    let rfc = l.since().to_rfc3339();
    if locale() == Locale::En {
        let since = crate::mail::long_date_en(&rfc);
        return match l {
            L::Informed { .. } => format!("Space announced on {since}, not open yet."),
            L::Open { .. } => format!("Space open since {since}, not activated yet."),
            L::Activated { .. } => format!("Space open and activated since {since}."),
            L::Closed { .. } => format!("Space closed since {since}."),
            _ => format!("Last change of state on {since}."),
        };
    }
    let since = crate::mail::long_date(&rfc);
    match l {
        L::Informed { .. } => format!("Espace annoncé le {since}, pas encore ouvert."),
        L::Open { .. } => format!("Espace ouvert depuis le {since}, pas encore activé."),
        L::Activated { .. } => format!("Espace ouvert et activé depuis le {since}."),
        L::Closed { .. } => format!("Espace fermé depuis le {since}."),
        _ => format!("Dernier changement d'état le {since}."),
    }
}

/// "1,2 Mo", "350 Ko" ("1.2 MB", "350 kB").
fn size_words(bytes: u64) -> String {
    if bytes >= 1_000_000 {
        format!(
            "{} {}",
            decimal((bytes as f64 / 100_000.0).round() / 10.0),
            tr("Mo", "MB")
        )
    } else {
        format!("{} {}", (bytes as f64 / 1000.0).ceil() as u64, tr("Ko", "kB"))
    }
}

/// The identity's lines that are filled in, in words.
fn identity(admin: &[u8]) -> Vec<(&'static str, String)> {
    let v: Value = serde_json::from_slice(admin).unwrap_or_default();
    let text = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let rows = [
        (tr("Nom de naissance", "Birth name"), text("birth_name")),
        (tr("Nom d'usage", "Used name"), text("used_name")),
        (
            tr("Prénoms", "Given names"),
            v.get("given_names")
                .and_then(Value::as_array)
                .map(|g| g.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")),
        ),
        (
            tr("Sexe", "Sex"),
            text("sex").map(|s| {
                match s.as_str() {
                    "F" | "female" => tr("féminin", "female"),
                    "M" | "male" => tr("masculin", "male"),
                    _ => tr("non précisé", "not stated"),
                }
                .to_string()
            }),
        ),
        (
            tr("Date de naissance", "Date of birth"),
            text("birth_date").map(|d| iso_day(&d)),
        ),
        (tr("Lieu de naissance", "Place of birth"), text("birth_place")),
        (
            tr(
                "Identifiant national de santé (INS)",
                "National health identifier (INS)",
            ),
            text("ins"),
        ),
        (tr("Adresse postale", "Postal address"), text("address")),
        (tr("Adresse e-mail", "E-mail address"), text("email")),
        (tr("Téléphone", "Phone"), text("phone")),
    ];
    rows.into_iter()
        .filter_map(|(label, value)| value.map(|v| (label, v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_identity_read_as_words() {
        assert_eq!(size_words(350_000), "350 Ko");
        assert_eq!(size_words(1_234_567), "1,2 Mo");
        let lines = identity(br#"{"birth_name":"MARTIN","given_names":["Camille","Marie"],"sex":"F","birth_date":"1984-03-12"}"#);
        assert!(lines.contains(&("Prénoms", "Camille, Marie".into())), "{lines:?}");
        assert!(lines.contains(&("Sexe", "féminin".into())), "{lines:?}");
        assert!(
            lines.contains(&("Date de naissance", "12/03/1984".into())),
            "{lines:?}"
        );
        assert!(
            !lines.iter().any(|(l, _)| *l == "Nom d'usage"),
            "empty lines left out"
        );
    }
}
