//! Documents of the space (DM-1..8) through the gate: the list with filters (POSTed, so no
//! search words in URLs), a document's page with view and download links (the JSON API's
//! content route, which takes the session cookie), masking (DM-5), adding one's own
//! document (a multipart form, no script needed), deleting it after a confirmation, and asking
//! a professional author to delete theirs, with their answer shown (DM-4).

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carnet_domain::DocumentId;
use carnet_domain::access::{Author, Category, Context};
use carnet_store::documents::{DocumentChange, DocumentFilter, DocumentView, NewDocument};
use serde::Deserialize;

use super::i18n::t as tr;
use super::i18n::{Reader, author_words};
use super::{
    Form, Holder, Nav, WebError, alert, class_label, class_options, csrf_field, esc, french, iso_day, notice,
    page, see_other,
};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/documents", get(list).post(add))
        .route("/documents/recherche", post(search))
        .route("/documents/{id}", get(show))
        .route("/documents/{id}/masquage", post(mask))
        .route("/documents/{id}/suppression", post(delete))
        .route("/documents/{id}/demande-suppression", post(request_deletion))
}

/// What the person typed, kept when a form comes back.
#[derive(Default)]
struct Typed {
    class: String,
    text: String,
    add_title: String,
    add_class: String,
    add_date: String,
    add_error: String,
    filter_error: String,
    info: String,
}

/// A category's name for this reader: "Mes documents" is the holder's word for what they
/// added; anyone else reads "Documents personnels".
pub(super) fn class_for(c: Category, reader: Reader<'_>) -> &'static str {
    match (c, reader) {
        (Category::HolderDocuments, Reader::Holder) => class_label(c),
        (Category::HolderDocuments, _) => super::i18n::fr_en("Documents personnels", "Personal documents"),
        _ => class_label(c),
    }
}

pub(super) fn doc_row(d: &DocumentView, own_link: bool, base: &str, reader: Reader<'_>) -> String {
    let m = &d.meta;
    let date = m
        .event_date
        .as_deref()
        .map(iso_day)
        .unwrap_or_else(|| super::day(m.uploaded_at));
    let author = author_words(&m.author, &m.author_name, reader);
    let masked = if m.masked {
        " <span class=\"badge\">masqué aux professionnels</span>"
    } else {
        ""
    };
    let title = if own_link {
        format!("<a href=\"/documents/{}\">{}</a>", d.id, esc(&m.title))
    } else {
        // A professional's record (`base` = `/pro/patients/{holder}`): the document's page.
        format!("<a href=\"{base}/documents/{}\">{}</a>", d.id, esc(&m.title))
    };
    format!(
        "<li class=\"doc\"><p class=\"doc-title\">{title}{masked}</p><p class=\"muted\">{} · {} · {}</p></li>",
        esc(class_for(m.class, reader)),
        esc(&date),
        esc(&author)
    )
}

/// A list of documents (used by the professional's view too).
pub fn doc_list(docs: &[DocumentView], own_link: bool, base: &str, reader: Reader<'_>) -> String {
    if docs.is_empty() {
        return "<p>Aucun document.</p>".into();
    }
    format!(
        "<ul class=\"docs\">{}</ul>",
        docs.iter()
            .map(|d| doc_row(d, own_link, base, reader))
            .collect::<String>()
    )
}

async fn render(s: &AppState, h: &Holder, t: &Typed) -> Result<String, WebError> {
    let class = if t.class.is_empty() {
        None
    } else {
        Category::parse(&t.class)
    };
    let page_docs = s
        .gate
        .list_documents(
            h.space(),
            &h.actor(),
            &DocumentFilter {
                class,
                text: Some(t.text.trim().to_string()).filter(|x| !x.is_empty()),
                limit: 100,
                ..DocumentFilter::default()
            },
            &Context::default(),
        )
        .await
        .map_err(ApiError::from)?;
    let count = match page_docs.total {
        0 => super::i18n::fr_en("Aucun document ne correspond.", "No document matches.").to_string(),
        1 => "1 document.".to_string(),
        n => format!("{n} documents."),
    };
    let csrf = csrf_field(&h.csrf);
    // MI-5: a carer reads; the page says what they were given, so that a document they are not
    // shown never looks like a missing one.
    let add = match &h.carer_grant {
        Some(g) => format!(
            "<section class=\"card\" aria-labelledby=\"aidant\"><h2 id=\"aidant\">{}</h2><p>{} {}{}. {}.</p></section>",
            tr("carer.title"),
            tr("carer.given"),
            esc(&super::carers::scope_words(&g.categories)),
            esc(&super::carers::until_words(g.until)),
            tr("carer.not_shown"),
        ),
        None => format!(
            "<section aria-labelledby=\"ajout\"><h2 id=\"ajout\">{}</h2>{}\
             <form method=\"post\" action=\"/documents\" enctype=\"multipart/form-data\" class=\"card\">{csrf}\
             <p><label for=\"fichier\">{}</label>\
             <input id=\"fichier\" name=\"fichier\" type=\"file\" required accept=\".pdf,.jpg,.jpeg,.png,.txt,application/pdf,image/jpeg,image/png,text/plain\"></p>\
             <p><label for=\"titre\">{}</label><input id=\"titre\" name=\"titre\" type=\"text\" maxlength=\"200\" value=\"{}\"></p>\
             <p><label for=\"classe-ajout\">{}</label><select id=\"classe-ajout\" name=\"classe\">{}</select></p>\
             <p><label for=\"date\">{}</label><input id=\"date\" name=\"date\" {} value=\"{}\"></p>\
             <p><button type=\"submit\">{}</button></p></form></section>",
            tr("docs.add"),
            alert(&t.add_error),
            super::i18n::fr_en(
                "Fichier (PDF, image JPEG ou PNG, texte ; 20 Mo au plus)",
                "File (PDF, JPEG or PNG image, text; 20 MB at most)"
            ),
            super::i18n::fr_en("Titre", "Title"),
            esc(&t.add_title),
            super::i18n::fr_en("Catégorie", "Category"),
            class_options(if t.add_class.is_empty() {
                "holder_documents"
            } else {
                &t.add_class
            }),
            super::i18n::fr_en("Date de l'acte (facultatif)", "Date of the act (optional)"),
            super::profile::day_field(),
            esc(&t.add_date),
            super::i18n::fr_en("Ajouter", "Add"),
        ),
    };
    let listing = doc_list(&page_docs.documents, true, "", Reader::of(&h.actor()));
    let (first, second) = if h.carer() {
        (add.as_str(), "")
    } else {
        ("", add.as_str())
    };
    Ok(format!(
        "<h1>{}</h1>{}{first}\
         <form method=\"post\" action=\"/documents/recherche\" class=\"card filters\" role=\"search\">{csrf}{}\
         <p><label for=\"classe\">{}</label><select id=\"classe\" name=\"classe\">\
         <option value=\"\">{}</option>{}</select></p>\
         <p><label for=\"q\">{}</label><input id=\"q\" name=\"q\" type=\"search\" value=\"{}\"></p>\
         <p><button type=\"submit\">{}</button> <a href=\"/documents\">{}</a></p></form>\
         <p role=\"status\">{count}</p>{listing}{second}",
        tr("nav.documents"),
        notice(&t.info),
        alert(&t.filter_error),
        super::i18n::fr_en("Catégorie", "Category"),
        super::i18n::fr_en("Toutes les catégories", "All categories"),
        class_options(&t.class),
        super::i18n::fr_en("Mots du titre", "Words of the title"),
        esc(&t.text),
        super::i18n::fr_en("Filtrer", "Filter"),
        super::i18n::fr_en("Tout afficher", "Show all"),
    ))
}

fn respond(h: &Holder, status: StatusCode, body: &str) -> Response {
    let mut r = page(
        "Documents",
        &Nav::Holder {
            h,
            current: "/documents",
        },
        body,
    )
    .into_response();
    *r.status_mut() = status;
    r
}

#[derive(Deserialize)]
struct Flash {
    ok: Option<String>,
}

async fn list(State(s): State<AppState>, h: Holder, Query(f): Query<Flash>) -> Result<Response, WebError> {
    let typed = Typed {
        info: match f.ok.as_deref() {
            Some("supprime") => "Le document a été supprimé.".into(),
            Some(_) => "Le document a été ajouté.".into(),
            None => String::new(),
        },
        ..Typed::default()
    };
    let body = render(&s, &h, &typed).await?;
    Ok(respond(&h, StatusCode::OK, &body))
}

async fn search(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let mut typed = Typed {
        class: form.get("classe").to_string(),
        text: form.get("q").to_string(),
        ..Typed::default()
    };
    let mut status = StatusCode::OK;
    if !typed.class.is_empty() && Category::parse(&typed.class).is_none() {
        typed.filter_error = "Cette catégorie n'existe pas : choisissez-en une dans la liste.".into();
        typed.class.clear();
        status = StatusCode::BAD_REQUEST;
    }
    let body = render(&s, &h, &typed).await?;
    Ok(respond(&h, status, &body))
}

/// The document as the gate shows it to this caller (a denial looks like absence).
async fn find(s: &AppState, h: &Holder, id: DocumentId) -> Result<DocumentView, WebError> {
    let versions = s
        .gate
        .document_history(h.space(), &h.actor(), id, &Context::default())
        .await
        .map_err(ApiError::from)?;
    versions
        .into_iter()
        .find(|v| v.id == id)
        .ok_or_else(|| ApiError::not_found().into())
}

async fn show(
    State(s): State<AppState>,
    h: Holder,
    Path(id): Path<String>,
    Query(f): Query<Flash>,
) -> Result<Response, WebError> {
    let id: DocumentId = id.parse().map_err(|_| WebError::from(ApiError::not_found()))?;
    let d = find(&s, &h, id).await?;
    let m = &d.meta;
    let info = match f.ok.as_deref() {
        Some("masque") => "Le document est maintenant masqué aux professionnels.",
        Some("visible") => "Le document n'est plus masqué.",
        Some("demande") => "Votre demande de suppression est envoyée à l'auteur du document.",
        Some(_) => "Le document a été ajouté.",
        None => "",
    };
    let content = format!("/api/v1/me/documents/{}/content", d.id);
    let view = if m.format.previewable() {
        format!("<li><a href=\"{content}?disposition=inline\">Afficher le document</a></li>")
    } else {
        String::new()
    };
    let (label, value, explain) = if m.masked {
        (
            "Ne plus masquer ce document",
            "0",
            "Ce document est masqué : seuls son auteur et votre médecin traitant peuvent le voir.",
        )
    } else {
        (
            "Masquer ce document aux professionnels",
            "1",
            "Un document masqué n'est plus visible des professionnels, sauf de son auteur et de votre médecin traitant.",
        )
    };
    let author = author_words(&m.author, &m.author_name, Reader::of(&h.actor()));
    // MI-5: a carer reads; masking and deletion are the holder's.
    let (masking, deletion) = if h.carer() {
        (String::new(), String::new())
    } else {
        (
            format!(
                "<section aria-labelledby=\"masque\"><h2 id=\"masque\">{}</h2><p>{explain}</p>\
                 <form method=\"post\" action=\"/documents/{}/masquage\">{}<input type=\"hidden\" name=\"masque\" value=\"{value}\">\
                 <button type=\"submit\">{label}</button></form></section>",
                tr("docs.masking"),
                d.id,
                csrf_field(&h.csrf),
            ),
            deletion_section(&h, &d, ""),
        )
    };
    let body = format!(
        "<p><a href=\"/documents\">{}</a></p>{}<h1>{}</h1>\
         <dl class=\"meta\"><dt>Catégorie</dt><dd>{}</dd><dt>Date de l'acte</dt><dd>{}</dd>\
         <dt>Auteur</dt><dd>{}</dd><dt>Établissement</dt><dd>{}</dd><dt>Ajouté</dt><dd>{}</dd>\
         <dt>Fichier</dt><dd>{} ({} Ko)</dd></dl>\
         <ul class=\"actions\">{view}<li><a href=\"{content}\">Télécharger</a></li></ul>{masking}{deletion}",
        tr("docs.all"),
        notice(info),
        esc(&m.title),
        esc(class_for(m.class, Reader::of(&h.actor()))),
        esc(&m
            .event_date
            .as_deref()
            .map(iso_day)
            .unwrap_or_else(|| "non précisée".into())),
        esc(&author),
        esc(m.organisation.as_deref().unwrap_or("—")),
        esc(&super::when(m.uploaded_at)),
        esc(&m.filename),
        m.size.div_ceil(1024),
    );
    Ok(page(
        "Document",
        &Nav::Holder {
            h: &h,
            current: "/documents",
        },
        &body,
    )
    .into_response())
}

async fn mask(
    State(s): State<AppState>,
    h: Holder,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let id: DocumentId = id.parse().map_err(|_| WebError::from(ApiError::not_found()))?;
    let masked = form.get("masque") == "1";
    s.gate
        .change_document(
            h.space(),
            &h.actor(),
            id,
            DocumentChange::Mask(masked),
            &Context::default(),
        )
        .await
        .map_err(ApiError::from)?;
    s.wake.notify_one();
    Ok(see_other(&format!(
        "/documents/{id}?ok={}",
        if masked { "masque" } else { "visible" }
    )))
}

/// DM-4: a document the space's holder side added can be deleted (after a confirmation); a
/// professional's can only be asked for, and the request's state is shown until the author
/// answers (an accepted request deletes the document).
fn deletion_section(h: &Holder, d: &DocumentView, error: &str) -> String {
    let m = &d.meta;
    let csrf = csrf_field(&h.csrf);
    if m.author == Author::Holder {
        return format!(
            "<section aria-labelledby=\"suppr\"><h2 id=\"suppr\">Supprimer</h2>{}\
             <p>Vous avez ajouté ce document : vous pouvez le supprimer. Il disparaît alors de l'espace \
             pour tout le monde ; l'historique des accès garde la trace de sa suppression.</p>\
             <form method=\"post\" action=\"/documents/{}/suppression\">{csrf}\
             <button type=\"submit\" class=\"danger\">Supprimer ce document…</button></form></section>",
            alert(error),
            d.id,
        );
    }
    let state = match &m.deletion_request {
        Some(r) if r.accepted.is_none() => format!(
            "<p>Vous avez demandé sa suppression {} (motif : « {} »). L'auteur n'a pas encore répondu.</p>",
            esc(&super::when(r.at)),
            esc(&r.reason),
        ),
        Some(r) => format!(
            "<p>Vous avez demandé sa suppression {} ; l'auteur a refusé de le supprimer. Vous pouvez \
             toujours le masquer aux professionnels (ci-dessus), ou lui écrire par la messagerie.</p>",
            esc(&super::when(r.at)),
        ),
        None => format!(
            "<p>Ce document a été déposé par un professionnel : seul son auteur peut le supprimer. \
             Vous pouvez le lui demander en donnant un motif ; sa réponse s'affichera ici.</p>\
             <form method=\"post\" action=\"/documents/{}/demande-suppression\">{csrf}\
             <p><label for=\"motif\">Motif de la demande</label>\
             <textarea id=\"motif\" name=\"motif\" rows=\"3\" maxlength=\"1000\" required></textarea></p>\
             <p><button type=\"submit\">Demander sa suppression</button></p></form>",
            d.id,
        ),
    };
    format!(
        "<section aria-labelledby=\"suppr\"><h2 id=\"suppr\">Suppression</h2>{}{state}</section>",
        alert(error),
    )
}

/// DM-4: deleting one's own document, in two POSTs: the first asks "are you sure?", the
/// second (with `confirme`) deletes.
async fn delete(
    State(s): State<AppState>,
    h: Holder,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let id: DocumentId = id.parse().map_err(|_| WebError::from(ApiError::not_found()))?;
    let d = find(&s, &h, id).await?;
    if form.get("confirme") != "1" {
        let body = format!(
            "<h1>Supprimer ce document ?</h1>\
             <p>« {} » sera supprimé de l'espace pour tout le monde, définitivement. L'historique des \
             accès en garde la trace.</p>\
             <form method=\"post\" action=\"/documents/{}/suppression\" class=\"card\">{}\
             <input type=\"hidden\" name=\"confirme\" value=\"1\">\
             <p><button type=\"submit\" class=\"danger\">Oui, supprimer le document</button></p></form>\
             <p><a href=\"/documents/{}\">Non, revenir au document</a></p>",
            esc(&d.meta.title),
            d.id,
            csrf_field(&h.csrf),
            d.id,
        );
        return Ok(respond(&h, StatusCode::OK, &body));
    }
    s.gate
        .delete_document(h.space(), &h.actor(), id, &Context::default())
        .await
        .map_err(ApiError::from)?;
    Ok(see_other("/documents?ok=supprime"))
}

/// DM-4: asking a professional author to delete their document, with a reason.
async fn request_deletion(
    State(s): State<AppState>,
    h: Holder,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let id: DocumentId = id.parse().map_err(|_| WebError::from(ApiError::not_found()))?;
    let reason = form.get("motif").trim().to_string();
    if reason.is_empty() || reason.chars().count() > 1000 {
        let d = find(&s, &h, id).await?;
        let message = "Indiquez le motif de votre demande (1 000 caractères au plus).";
        let body = format!(
            "<p><a href=\"/documents/{}\">Revenir au document</a></p><h1>{}</h1>{}",
            d.id,
            esc(&d.meta.title),
            deletion_section(&h, &d, message)
        );
        return Ok(respond(&h, StatusCode::BAD_REQUEST, &body));
    }
    s.gate
        .change_document(
            h.space(),
            &h.actor(),
            id,
            DocumentChange::RequestDeletion(reason),
            &Context::default(),
        )
        .await
        .map_err(ApiError::from)?;
    s.wake.notify_one();
    Ok(see_other(&format!("/documents/{id}?ok=demande")))
}

async fn add(
    State(s): State<AppState>,
    h: Holder,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let limit = s.settings.document_limit_bytes;
    let (form, files) = super::read_multipart(&s, &headers, body, "fichier").await?;
    let file = files.into_iter().next();
    h.check(&s, &form).await?;
    let mut typed = Typed {
        add_title: form.get("titre").to_string(),
        add_class: form.get("classe").to_string(),
        add_date: form.get("date").to_string(),
        ..Typed::default()
    };
    let result: Result<DocumentView, String> = async {
        let file = file
            .filter(|f| !f.data.is_empty())
            .ok_or("Choisissez un fichier à ajouter.")?;
        if file.data.len() > limit {
            return Err(format!(
                "Le fichier est trop volumineux ({} Mo au plus) : rien n'a été enregistré.",
                limit / (1024 * 1024)
            ));
        }
        let class = match form.opt("classe") {
            Some(c) => Some(Category::parse(c).ok_or("Choisissez une catégorie dans la liste.")?),
            None => None,
        };
        let mime = file
            .content_type
            .clone()
            .filter(|m| !m.is_empty() && m != "application/octet-stream")
            .or_else(|| guess_mime(file.filename.as_deref().unwrap_or_default()).map(str::to_string))
            .ok_or("Format de fichier non reconnu : ajoutez un PDF, une image JPEG ou PNG, ou un texte.")?;
        let new = NewDocument {
            title: form.opt("titre").map(str::to_string),
            class,
            event_date: super::profile::typed_day(form.get("date"))
                .map_err(|()| {
                    "La date de l'acte n'est pas une date : saisissez-la sous la forme JJ/MM/AAAA, par exemple 12/05/2019."
                })?
                .map(|d| d.to_string()),
            mime,
            filename: file.filename.clone().filter(|f| !f.is_empty()),
            author_name: h.author_name(),
            ..NewDocument::default()
        };
        s.gate
            .deposit_document(h.space(), &h.actor(), new, file.data, &Context::default())
            .await
            .map_err(|e| french(&ApiError::from(e)))
    }
    .await;
    match result {
        Ok(v) => {
            s.wake.notify_one();
            Ok(see_other(&format!("/documents/{}?ok=ajoute", v.id)))
        }
        Err(message) => {
            typed.add_error = format!("{message} Choisissez à nouveau le fichier.");
            let body = render(&s, &h, &typed).await?;
            Ok(respond(&h, StatusCode::BAD_REQUEST, &body))
        }
    }
}

/// The type of a file whose browser sent none, from its extension.
fn guess_mime(filename: &str) -> Option<&'static str> {
    let ext = filename.rsplit('.').next()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "pdf" => "application/pdf",
        "jpg" | "jpeg" => "image/jpeg",
        "png" => "image/png",
        "txt" => "text/plain",
        _ => return None,
    })
}
