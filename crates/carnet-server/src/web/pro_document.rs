//! One document of a patient's record as a professional reads and works on it (issue 33,
//! DM-3, DM-4, DM-6): under the identity banner, its metadata, the document itself in the page
//! (an image shown, a text or a CDA's narrative as readable text, a PDF in the browser's
//! viewer beside its download), and, for its author, what they may do with it: make a held
//! document visible (DM-6), archive or restore it, answer the holder's deletion request
//! (DM-4), delete it after a confirmation. Every read and change goes through the gate as the
//! professional; a document they may not see is a missing page (AC-8).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::access::Context;
use carnet_domain::document::{Format, Status, read_cda_sections};
use carnet_domain::{DocumentId, HolderId};
use carnet_store::documents::{DocumentChange, DocumentView};
use std::collections::HashMap;

use super::i18n::{Reader, author_words, fr_en as w};
use super::pro::{PatientHeader, patient_header};
use super::{
    Form, Nav, Pro, WebError, alert, check_csrf, csrf_field, esc, iso_day, notice, page_named, see_other,
};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/pro/patients/{holder}/documents/{id}", get(show).post(act))
}

/// Text shown in the page at most (a longer text is cut, the download has it all).
const SHOWN_TEXT_BYTES: usize = 200 * 1024;

fn ids(holder: &str, id: &str) -> Result<(HolderId, DocumentId), WebError> {
    match (holder.parse(), id.parse()) {
        (Ok(h), Ok(d)) => Ok((h, d)),
        _ => Err(ApiError::not_found().into()),
    }
}

async fn show(
    State(s): State<AppState>,
    p: Pro,
    Path((holder, id)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, WebError> {
    let (holder, id) = ids(&holder, &id)?;
    let who = patient_header(&s, &p, holder).await?;
    let done = match q.get("fait").map(String::as_str) {
        Some("visible") => w(
            "Le document est maintenant visible du patient.",
            "The document is now visible to the patient.",
        ),
        Some("archive") => w("Le document est archivé.", "The document is archived."),
        Some("restaure") => w(
            "Le document n'est plus archivé.",
            "The document is no longer archived.",
        ),
        Some("refus") => w(
            "Votre refus est enregistré ; le patient en est informé.",
            "Your refusal is recorded; the patient is told.",
        ),
        _ if q.get("ok").is_some_and(|v| v == "version") => w(
            "La nouvelle version est déposée ; la précédente reste dans l'historique du document.",
            "The new version is filed; the former one stays in the document's history.",
        ),
        _ => "",
    };
    let confirm = q.get("confirmer").is_some_and(|v| v == "suppression");
    let body = document_page(&s, &p, holder, id, &who, (done, ""), confirm).await?;
    Ok(page_named(&who.title(), &Nav::Pro { p: &p }, &body).into_response())
}

async fn document_page(
    s: &AppState,
    p: &Pro,
    holder: HolderId,
    id: DocumentId,
    who: &PatientHeader,
    said: (&str, &str),
    confirm_delete: bool,
) -> Result<String, WebError> {
    let actor = p.professional.actor();
    let (v, content) = s
        .gate
        .read_document(holder, &actor, id, &Context::default())
        .await
        .map_err(ApiError::from)?;
    let m = &v.meta;
    let content_url = format!("/api/v1/pro/patients/{holder}/documents/{id}/content");
    let mine = m.author
        == (carnet_domain::access::Author::Professional {
            id: carnet_domain::access::ProfessionalId(p.professional.rpps.clone()),
        });
    let now = s.store.now();
    let date = m
        .event_date
        .as_deref()
        .map(iso_day)
        .unwrap_or_else(|| w("non renseignée", "not given").into());
    let status = match v.status {
        Status::Approved if m.visible_from > now => format!(
            "{} {}",
            w(
                "En attente de la consultation d'annonce : visible du patient au plus tard le",
                "Held for the announcement consultation: visible to the patient by"
            ),
            super::day(m.visible_from)
        ),
        Status::Approved => w("En vigueur", "Current").into(),
        Status::Deprecated => w(
            "Remplacé par une version plus récente",
            "Replaced by a newer version",
        )
        .into(),
        Status::Archived => w("Archivé", "Archived").into(),
    };
    let dd = |k: &str, v: &str| format!("<dt>{k}</dt><dd>{}</dd>", esc(v));
    let mut meta = String::new();
    meta.push_str(&dd(
        w("Catégorie", "Category"),
        super::documents::class_for(m.class, super::i18n::Reader::Other),
    ));
    // The depositor's display name, else the common type's French name, else the code.
    let known = m
        .type_code
        .as_deref()
        .and_then(carnet_domain::document::type_label);
    if let Some(t) = m.type_display.as_deref().or(known).or(m.type_code.as_deref()) {
        meta.push_str(&dd(w("Type", "Type"), t));
    }
    meta.push_str(&dd(w("Date de l'acte", "Date of the act"), &date));
    meta.push_str(&dd(
        w("Auteur", "Author"),
        &author_words(&m.author, &m.author_name, Reader::of(&actor)),
    ));
    if let Some(o) = &m.organisation {
        meta.push_str(&dd(w("Établissement", "Organisation"), o));
    }
    meta.push_str(&dd(w("Ajouté le", "Added on"), &super::day(m.uploaded_at)));
    meta.push_str(&dd(w("Statut", "Status"), &status));
    meta.push_str(&dd(
        w("Fichier", "File"),
        &format!("{} ({} Ko)", m.filename, m.size.div_ceil(1024)),
    ));
    let viewer = viewer(&v, &content, &content_url);
    let request = match &m.deletion_request {
        Some(r) if r.accepted.is_none() => format!(
            "<div class=\"card refusal\"><h2>{}</h2><p>{} « {} » ({}).</p>{}</div>",
            w(
                "Le patient demande la suppression de ce document",
                "The patient asks for this document to be deleted"
            ),
            w("Motif :", "Reason:"),
            esc(&r.reason),
            super::day(r.at),
            if mine {
                format!(
                    "<form method=\"post\" class=\"inline\">{}<input type=\"hidden\" name=\"action\" value=\"accepter-suppression\">\
                     <button type=\"submit\">{}</button></form> \
                     <form method=\"post\" class=\"inline\">{}<input type=\"hidden\" name=\"action\" value=\"refuser-suppression\">\
                     <button type=\"submit\" class=\"secondary\">{}</button></form>",
                    csrf_field(&p.csrf),
                    w("Accepter et supprimer", "Accept and delete"),
                    csrf_field(&p.csrf),
                    w("Refuser (motif légitime)", "Refuse (legitimate reason)"),
                )
            } else {
                String::new()
            }
        ),
        _ => String::new(),
    };
    let actions = if mine {
        author_actions(p, &v, now, confirm_delete)
    } else {
        String::new()
    };
    let (done, error) = said;
    Ok(format!(
        "<p><a href=\"/pro/patients/{holder}#pro-docs\">{}</a></p>{}<h1>{}</h1>{}{}\
         <dl class=\"meta\">{meta}</dl><ul class=\"actions\"><li><a href=\"{content_url}\">{}</a></li></ul>\
         {request}{viewer}{actions}",
        w("← Dossier du patient", "← Patient record"),
        who.banner,
        esc(&m.title),
        notice(done),
        alert(error),
        w("Télécharger", "Download"),
    ))
}

/// The document in the page: an image, a text or a CDA narrative as text, a PDF in the
/// browser's own viewer (the content's address, same origin, sandboxed by its own policy).
fn viewer(v: &DocumentView, content: &Bytes, url: &str) -> String {
    let title = w("Le document", "The document");
    let inner = match v.meta.format {
        Format::Jpeg | Format::Png => format!(
            "<img src=\"{url}?disposition=inline\" alt=\"{}\" class=\"document\">",
            esc(&v.meta.title)
        ),
        Format::Pdf => format!(
            "<p><a href=\"{url}?disposition=inline\" target=\"_blank\" rel=\"noopener\">{}</a></p>",
            w(
                "Ouvrir le PDF dans le lecteur du navigateur",
                "Open the PDF in the browser's viewer"
            )
        ),
        Format::Text => {
            let cut = content.len() > SHOWN_TEXT_BYTES;
            let text = String::from_utf8_lossy(&content[..content.len().min(SHOWN_TEXT_BYTES)]);
            format!(
                "<pre class=\"document\">{}</pre>{}",
                esc(&text),
                if cut {
                    format!(
                        "<p class=\"hint\">{}</p>",
                        w(
                            "Texte tronqué : téléchargez le document pour le lire en entier.",
                            "Text cut: download the document to read it all."
                        )
                    )
                } else {
                    String::new()
                }
            )
        }
        Format::Cda => match read_cda_sections(content) {
            Ok(sections) if !sections.is_empty() => sections
                .iter()
                .map(|s| {
                    format!(
                        "<h3>{}</h3><pre class=\"document\">{}</pre>",
                        esc(&s.title),
                        esc(&s.text)
                    )
                })
                .collect(),
            _ => format!(
                "<p>{}</p>",
                w(
                    "Ce document CDA n'a pas de partie lisible en texte : téléchargez-le.",
                    "This CDA document has no part readable as text: download it."
                )
            ),
        },
    };
    format!(
        "<section class=\"card\" aria-labelledby=\"contenu-doc\"><h2 id=\"contenu-doc\">{title}</h2>{inner}</section>"
    )
}

/// What the author may do with their document (DM-3, DM-6), each a form of its own.
fn author_actions(p: &Pro, v: &DocumentView, now: carnet_domain::Timestamp, confirm_delete: bool) -> String {
    let button = |action: &str, label: &str, class: &str| {
        format!(
            "<form method=\"post\" class=\"inline\">{}<input type=\"hidden\" name=\"action\" value=\"{action}\">\
             <button type=\"submit\"{class}>{label}</button></form>",
            csrf_field(&p.csrf)
        )
    };
    let mut out = Vec::new();
    if v.status == Status::Approved && v.meta.visible_from > now {
        out.push(button(
            "rendre-visible",
            w(
                "Rendre visible au patient (annonce faite)",
                "Make it visible to the patient (announcement done)",
            ),
            "",
        ));
    }
    if v.status == Status::Approved {
        // DM-3: a new version from the filing form, prefilled (a relative link: the form
        // lives beside this page, under the same patient).
        let query: String = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("remplace", &v.id.to_string())
            .append_pair("titre", &v.meta.title)
            .append_pair("classe", v.meta.class.tag())
            .finish();
        out.push(format!(
            "<a class=\"button secondary\" href=\"ajout?{}\">{}</a>",
            esc(&query),
            w("Déposer une nouvelle version", "File a new version")
        ));
    }
    match v.status {
        Status::Approved => out.push(button(
            "archiver",
            w("Archiver", "Archive"),
            " class=\"secondary\"",
        )),
        Status::Archived => out.push(button(
            "desarchiver",
            w("Ne plus archiver", "Unarchive"),
            " class=\"secondary\"",
        )),
        Status::Deprecated => {}
    }
    let delete = if confirm_delete {
        format!(
            "<div class=\"alert\" role=\"alert\"><p>{}</p>{} <a href=\"?\">{}</a></div>",
            w(
                "Supprimer ce document du dossier ? Le patient et les professionnels ne le verront plus ; la trace de sa suppression reste.",
                "Delete this document from the record? Nobody will see it any more; the trace of its deletion stays."
            ),
            button("supprimer", w("Oui, supprimer", "Yes, delete"), ""),
            w("Annuler", "Cancel"),
        )
    } else {
        format!(
            "<p><a href=\"?confirmer=suppression\">{}</a></p>",
            w("Supprimer ce document…", "Delete this document…")
        )
    };
    format!(
        "<section aria-labelledby=\"auteur\"><h2 id=\"auteur\">{}</h2><div class=\"actions\">{}</div>{delete}</section>",
        w("Vous en êtes l'auteur", "You are its author"),
        out.join(" ")
    )
}

async fn act(
    State(s): State<AppState>,
    p: Pro,
    Path((holder_s, id_s)): Path<(String, String)>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    check_csrf(&s, &p.token, &form).await?;
    let (holder, id) = ids(&holder_s, &id_s)?;
    let actor = p.professional.actor();
    let ctx = Context::default();
    let here = format!("/pro/patients/{holder}/documents/{id}");
    let change = match form.get("action") {
        "rendre-visible" => Some((DocumentChange::MakeVisible, "visible")),
        "archiver" => Some((DocumentChange::Archive, "archive")),
        "desarchiver" => Some((DocumentChange::Unarchive, "restaure")),
        "refuser-suppression" => Some((DocumentChange::AnswerDeletion(false), "refus")),
        "accepter-suppression" => Some((DocumentChange::AnswerDeletion(true), "")),
        "supprimer" => None,
        _ => return Err(ApiError::bad_request("action inconnue / unknown action").into()),
    };
    let done = change.as_ref().map_or("", |(_, d)| *d);
    let result = match change {
        Some((c, _)) => s
            .gate
            .change_document(holder, &actor, id, c, &ctx)
            .await
            .map(|_| ()),
        None => s.gate.delete_document(holder, &actor, id, &ctx).await,
    };
    match result {
        Ok(()) if !done.is_empty() => {
            s.wake.notify_one();
            Ok(see_other(&format!("{here}?fait={done}")))
        }
        Ok(()) => {
            s.wake.notify_one();
            Ok(see_other(&format!("/pro/patients/{holder}?supprime=1#pro-docs")))
        }
        Err(carnet_store::StoreError::Invalid(m)) => {
            let who = patient_header(&s, &p, holder).await?;
            let body = document_page(&s, &p, holder, id, &who, ("", &m), false).await?;
            let mut r = page_named(&who.title(), &Nav::Pro { p: &p }, &body).into_response();
            *r.status_mut() = axum::http::StatusCode::UNPROCESSABLE_ENTITY;
            Ok(r)
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}
