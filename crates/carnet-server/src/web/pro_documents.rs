//! A professional files a document in a patient's record from the web (issue 7, point 2; SPEC
//! DM-1, DM-6, MI-2), under the patient's identity banner (issue 33): a title, its category, the file, and two choices — keep it from the patient
//! until an announcement consultation (DM-6) and hide it from the legal representatives (MI-2).
//! The same gate call as the JSON API (`deposit_document`): the habilitations and the grant
//! decide, the deposit is traced and the holder told.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::HolderId;
use carnet_domain::access::{Category, Context};
use carnet_store::documents::NewDocument;

use super::i18n::fr_en as tr;
use super::pro::{PatientHeader, patient_header};
use super::{Nav, Pro, WebError, alert, check_csrf, class_options, csrf_field, esc, page_named, see_other};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/pro/patients/{holder}/documents/ajout", get(form).post(add))
}

fn holder_of(s: &str) -> Result<HolderId, WebError> {
    s.parse().map_err(|_| WebError::from(ApiError::not_found()))
}

fn form_body(p: &Pro, holder: HolderId, who: &PatientHeader, typed: (&str, &str), message: &str) -> String {
    let (title, class) = typed;
    let w_back = tr("← Dossier du patient", "← Patient record");
    let w_h1 = tr("Ajouter un document au dossier", "Add a document to the record");
    let w_title = tr("Titre", "Title");
    let w_class = tr("Catégorie", "Category");
    let w_file = tr(
        "Fichier (PDF, CDA XML, JPEG, PNG, texte ; 20 Mo au plus)",
        "File (PDF, CDA XML, JPEG, PNG, text; 20 MB at most)",
    );
    let w_hold = tr(
        "Ne pas le montrer au patient avant une consultation d'annonce (il lui sera visible au plus tard dans un mois)",
        "Keep it from the patient until an announcement consultation (visible to them within a month at the latest)",
    );
    let w_hide = tr(
        "Le masquer aux représentants légaux (mineur ou majeur protégé qui le demande)",
        "Hide it from the legal representatives (a minor or protected adult who asks for it)",
    );
    let w_send = tr("Déposer le document", "File the document");
    format!(
        "<p><a href=\"/pro/patients/{holder}\">{w_back}</a></p>{}<h1>{w_h1}</h1>{}\
         <form method=\"post\" action=\"/pro/patients/{holder}/documents/ajout\" enctype=\"multipart/form-data\" class=\"card\">{}\
         <p><label for=\"titre\">{w_title}</label><br><input id=\"titre\" name=\"titre\" maxlength=\"200\" required value=\"{}\"></p>\
         <p><label for=\"classe\">{w_class}</label><br><select id=\"classe\" name=\"classe\">{}</select></p>\
         <p><label for=\"fichier\">{w_file}</label><br><input id=\"fichier\" name=\"fichier\" type=\"file\" required></p>\
         <p><input id=\"attente\" name=\"attente\" type=\"checkbox\" value=\"1\"> <label for=\"attente\">{w_hold}</label></p>\
         <p><input id=\"confidentiel\" name=\"confidentiel\" type=\"checkbox\" value=\"1\"> <label for=\"confidentiel\">{w_hide}</label></p>\
         <p><button type=\"submit\">{w_send}</button></p></form>",
        who.banner,
        alert(message),
        csrf_field(&p.csrf),
        esc(title),
        class_options(if class.is_empty() { "reports" } else { class }),
    )
}

async fn form(State(s): State<AppState>, p: Pro, Path(holder): Path<String>) -> Result<Response, WebError> {
    let holder = holder_of(&holder)?;
    let who = patient_header(&s, &p, holder).await?;
    Ok(page_named(
        &who.title(),
        &Nav::Pro { p: &p },
        &form_body(&p, holder, &who, ("", ""), ""),
    )
    .into_response())
}

async fn add(
    State(s): State<AppState>,
    p: Pro,
    Path(holder): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let holder = holder_of(&holder)?;
    let (form, files) = super::read_multipart(&s, &headers, body, "fichier").await?;
    let file = files.into_iter().next();
    check_csrf(&s, &p.token, &form).await?;
    let who = patient_header(&s, &p, holder).await?;
    let (title, class) = (
        form.get("titre").trim().to_string(),
        form.get("classe").to_string(),
    );
    let again = |message: String| {
        let body = form_body(&p, holder, &who, (&title, &class), &message);
        let mut r = page_named(&who.title(), &Nav::Pro { p: &p }, &body).into_response();
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
        r
    };
    let Some(file) = file.filter(|f| !f.data.is_empty()) else {
        return Ok(again(
            tr("Choisissez un fichier à déposer.", "Choose a file to file.").to_string(),
        ));
    };
    let Some(category) = Category::parse(&class) else {
        return Ok(again(
            tr("Choisissez une catégorie.", "Choose a category.").to_string(),
        ));
    };
    let new = NewDocument {
        title: Some(title.clone()),
        class: Some(category),
        mime: file
            .content_type
            .clone()
            .unwrap_or_else(|| "application/octet-stream".into()),
        filename: file.filename.clone(),
        hold_from_holder: form.get("attente") == "1",
        hidden_from_representatives: form.get("confidentiel") == "1",
        author_name: p.professional.display_name(),
        organisation: p.professional.organisation_name.clone(),
        ..NewDocument::default()
    };
    match s
        .gate
        .deposit_document(
            holder,
            &p.professional.actor(),
            new,
            file.data,
            &Context::default(),
        )
        .await
    {
        Ok(_) => {
            s.wake.notify_one();
            Ok(see_other(&format!("/pro/patients/{holder}?depose=1")))
        }
        Err(carnet_store::StoreError::Invalid(m)) => Ok(again(m)),
        Err(e) => Err(ApiError::from(e).into()),
    }
}
