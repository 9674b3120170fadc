//! A professional files a document in a patient's record from the web (issue 7, point 2; SPEC
//! DM-1, DM-6, MI-2), under the patient's identity banner (issue 33): a title, its category, the file, and two choices — keep it from the patient
//! until an announcement consultation (DM-6) and hide it from the legal representatives (MI-2);
//! the date of the act (JJ/MM/AAAA); and, from one's own document's page, a new version of it
//! (DM-3: the former one is kept in its history).
//! The same gate call as the JSON API (`deposit_document`): the habilitations and the grant
//! decide, the deposit is traced and the holder told.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
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

/// What the form was given back with: title, category, date of the act, the document it
/// replaces (a new version, DM-3).
#[derive(Default, serde::Deserialize)]
struct Typed {
    #[serde(default)]
    titre: String,
    #[serde(default)]
    classe: String,
    #[serde(default)]
    date: String,
    #[serde(default)]
    remplace: String,
}

fn form_body(p: &Pro, holder: HolderId, who: &PatientHeader, typed: &Typed, message: &str) -> String {
    let (title, class) = (typed.titre.as_str(), typed.classe.as_str());
    let w_back = tr("← Dossier du patient", "← Patient record");
    let w_h1 = if typed.remplace.is_empty() {
        tr("Ajouter un document au dossier", "Add a document to the record")
    } else {
        tr(
            "Déposer une nouvelle version du document",
            "File a new version of the document",
        )
    };
    let replaces = if typed.remplace.is_empty() {
        String::new()
    } else {
        format!(
            "<input type=\"hidden\" name=\"remplace\" value=\"{}\"><p class=\"hint\">{}</p>",
            esc(&typed.remplace),
            tr(
                "La version actuelle reste dans l'historique du document ; celle-ci la remplace dans le dossier.",
                "The current version stays in the document's history; this one replaces it in the record.",
            )
        )
    };
    let w_date = tr(
        "Date de l'acte (JJ/MM/AAAA, facultatif)",
        "Date of the act (DD/MM/YYYY, optional)",
    );
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
         <form method=\"post\" action=\"/pro/patients/{holder}/documents/ajout\" enctype=\"multipart/form-data\" class=\"card\">{}{replaces}\
         <p><label for=\"titre\">{w_title}</label><br><input id=\"titre\" name=\"titre\" type=\"text\" maxlength=\"200\" required value=\"{}\"></p>\
         <p><label for=\"classe\">{w_class}</label><br><select id=\"classe\" name=\"classe\">{}</select></p>\
         <p><label for=\"date\">{w_date}</label><br><input id=\"date\" name=\"date\" {} value=\"{}\"></p>\
         <p><label for=\"fichier\">{w_file}</label><br><input id=\"fichier\" name=\"fichier\" type=\"file\" required></p>\
         <p><input id=\"attente\" name=\"attente\" type=\"checkbox\" value=\"1\"> <label for=\"attente\">{w_hold}</label></p>\
         <p><input id=\"confidentiel\" name=\"confidentiel\" type=\"checkbox\" value=\"1\"> <label for=\"confidentiel\">{w_hide}</label></p>\
         <p><button type=\"submit\">{w_send}</button></p></form>",
        who.banner,
        alert(message),
        csrf_field(&p.csrf),
        esc(title),
        class_options(if class.is_empty() { "reports" } else { class }),
        super::profile::day_field(),
        esc(&typed.date),
    )
}

async fn form(
    State(s): State<AppState>,
    p: Pro,
    Path(holder): Path<String>,
    Query(typed): Query<Typed>,
) -> Result<Response, WebError> {
    let holder = holder_of(&holder)?;
    let who = patient_header(&s, &p, holder).await?;
    Ok(page_named(
        &who.title(),
        &Nav::Pro { p: &p },
        &form_body(&p, holder, &who, &typed, ""),
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
    let typed = Typed {
        titre: form.get("titre").trim().to_string(),
        classe: form.get("classe").to_string(),
        date: form.get("date").trim().to_string(),
        remplace: form.get("remplace").trim().to_string(),
    };
    let (title, class) = (typed.titre.clone(), typed.classe.clone());
    let again = |message: String| {
        let body = form_body(&p, holder, &who, &typed, &message);
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
    let Ok(event_date) = super::profile::typed_day(&typed.date) else {
        return Ok(again(
            tr(
                "La date de l'acte n'est pas une date : saisissez-la sous la forme JJ/MM/AAAA, par exemple 12/05/2026.",
                "The date of the act is not a date: type it as DD/MM/YYYY, for example 12/05/2026.",
            )
            .to_string(),
        ));
    };
    let replaces = match typed.remplace.as_str() {
        "" => None,
        id => Some(
            id.parse::<carnet_domain::DocumentId>()
                .map_err(|_| WebError::from(ApiError::not_found()))?,
        ),
    };
    let new = NewDocument {
        title: Some(title.clone()),
        class: Some(category),
        event_date: event_date.map(|d| d.to_string()),
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
    let actor = p.professional.actor();
    let filed = match replaces {
        None => {
            s.gate
                .deposit_document(holder, &actor, new, file.data, &Context::default())
                .await
        }
        Some(old) => {
            s.gate
                .replace_document(holder, &actor, old, new, file.data, &Context::default())
                .await
        }
    };
    match filed {
        Ok(d) => {
            s.wake.notify_one();
            Ok(see_other(&if replaces.is_some() {
                format!("/pro/patients/{holder}/documents/{}?ok=version", d.id)
            } else {
                format!("/pro/patients/{holder}?depose=1")
            }))
        }
        Err(carnet_store::StoreError::Invalid(m)) => Ok(again(m)),
        Err(e) => Err(ApiError::from(e).into()),
    }
}
