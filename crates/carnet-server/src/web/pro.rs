//! The professionals' pages: demo login by RPPS (demo mode only, `api::pro::demo_session`),
//! finding a patient by INS (`api::pro::find_patient`; the INS is POSTed, never in a URL), and
//! the patient's documents as the gate lets this professional see them (a denial looks like an
//! empty record, AC-8).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carnet_domain::HolderId;
use carnet_domain::access::Context;
use carnet_store::documents::DocumentFilter;

use super::documents::doc_list;
use super::{
    Form, Nav, Pro, WebError, alert, check_pre_session, csrf_field, csrf_token, esc, french, page,
    pre_session, profession_label, professional_name, see_other, set_pre_session,
};
use crate::api::auth::set_cookie;
use crate::api::pro::{PRO_SESSION_COOKIE, demo_session, find_patient};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/pro", get(home).post(lookup))
        .route("/pro/connexion", post(login))
        .route("/pro/deconnexion", post(logout))
        .route("/pro/patients/{holder}", get(patient))
}

fn login_body(s: &AppState, csrf: &str, rpps: &str, message: &str) -> String {
    let how = if s.settings.demo {
        format!(
            "<p>Instance de démonstration : connectez-vous avec le numéro RPPS d'un professionnel de l'annuaire de démonstration \
             (10000000001 Dr Claire LEROY, 10000000002 Dr Julien PETIT, 10000000003 Sophie MOREAU).</p>\
             <form method=\"post\" action=\"/pro/connexion\" class=\"card\">{}{}\
             <p><label for=\"rpps\">Numéro RPPS</label><input id=\"rpps\" name=\"rpps\" type=\"text\" inputmode=\"numeric\" \
             maxlength=\"11\" autocomplete=\"username\" required value=\"{}\"></p>\
             <p><button type=\"submit\">Se connecter</button></p></form>",
            alert(message),
            csrf_field(csrf),
            esc(rpps)
        )
    } else {
        let links = super::oidc_links(s, crate::oidc::Audience::Professionals);
        if links.is_empty() {
            "<p>Aucun moyen de connexion des professionnels n'est configuré sur ce service.</p>".to_string()
        } else {
            format!("<p>Les professionnels se connectent avec leur carte CPS ou e-CPS.</p>{links}")
        }
    };
    format!(
        "<h1>Espace professionnel</h1>{how}<p><a href=\"/connexion\">Vous êtes patient ? Connexion à votre espace</a></p>"
    )
}

fn search_body(p: &Pro, ins: &str, message: &str) -> String {
    format!(
        "<h1>Rechercher un patient</h1><p>Connecté·e : {} ({}).</p>\
         <form method=\"post\" action=\"/pro\" class=\"card\" role=\"search\">{}{}\
         <p><label for=\"ins\">INS du patient (15 chiffres, lu sur la carte Vitale ou par le téléservice INSi)</label>\
         <input id=\"ins\" name=\"ins\" type=\"text\" inputmode=\"numeric\" maxlength=\"21\" autocomplete=\"off\" required value=\"{}\"></p>\
         <p><button type=\"submit\">Ouvrir le dossier</button></p></form>\
         <p class=\"hint\">Chaque consultation est enregistrée et le patient en est informé.</p>",
        esc(&professional_name(&p.professional)),
        esc(&profession_label(&p.professional.profession)),
        alert(message),
        csrf_field(&p.csrf),
        esc(ins)
    )
}

async fn home(
    State(s): State<AppState>,
    headers: HeaderMap,
    pro: Result<Pro, WebError>,
) -> Result<Response, WebError> {
    match pro {
        Ok(p) => Ok(page(
            "Espace professionnel",
            &Nav::Pro { p: &p },
            &search_body(&p, "", ""),
        )
        .into_response()),
        Err(e) if e.redirect.is_some() => {
            let (secret, fresh) = pre_session(&headers)?;
            let csrf = csrf_token(&s, &secret).await?;
            let mut r = page(
                "Espace professionnel",
                &Nav::Anonymous,
                &login_body(&s, &csrf, "", ""),
            )
            .into_response();
            set_pre_session(&mut r, fresh)?;
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

async fn login(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    let secret = check_pre_session(&s, &headers, &form).await?;
    let rpps = form.get("rpps").trim().to_string();
    match demo_session(&s, &rpps).await {
        Ok((token, _)) => {
            let mut r = see_other("/pro");
            set_cookie(
                &mut r,
                PRO_SESSION_COOKIE,
                &token,
                "/",
                carnet_store::auth::SESSION_ABSOLUTE_SECONDS,
            )?;
            Ok(r)
        }
        Err(e) => {
            let message = if e.status == StatusCode::UNAUTHORIZED {
                "Aucun professionnel de l'annuaire n'a ce numéro RPPS : vérifiez-le.".to_string()
            } else {
                french(&e)
            };
            let csrf = csrf_token(&s, &secret).await?;
            let mut r = page(
                "Espace professionnel",
                &Nav::Anonymous,
                &login_body(&s, &csrf, &rpps, &message),
            )
            .into_response();
            *r.status_mut() = e.status;
            Ok(r)
        }
    }
}

async fn logout(State(s): State<AppState>, p: Pro, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    super::check_csrf(&s, &p.token, &form).await?;
    s.store
        .revoke_pro_session(&p.token)
        .await
        .map_err(ApiError::from)?;
    let mut r = see_other("/pro");
    set_cookie(&mut r, PRO_SESSION_COOKIE, "", "/", 0)?;
    Ok(r)
}

async fn lookup(State(s): State<AppState>, p: Pro, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    super::check_csrf(&s, &p.token, &form).await?;
    let ins = form.get("ins").to_string();
    let compact: String = ins.chars().filter(|c| !c.is_whitespace()).collect();
    match find_patient(&s, &compact).await {
        Ok(holder) => Ok(see_other(&format!("/pro/patients/{holder}"))),
        Err(e) => {
            let message = match e.status {
                StatusCode::NOT_FOUND => "Aucun dossier ouvert ne correspond à cet INS.".to_string(),
                StatusCode::BAD_REQUEST => {
                    "Cet INS n'est pas valide : il compte 15 chiffres, clé comprise.".to_string()
                }
                _ => french(&e),
            };
            let mut r = page(
                "Espace professionnel",
                &Nav::Pro { p: &p },
                &search_body(&p, &ins, &message),
            )
            .into_response();
            *r.status_mut() = e.status;
            Ok(r)
        }
    }
}

async fn patient(
    State(s): State<AppState>,
    p: Pro,
    Path(holder): Path<String>,
) -> Result<Response, WebError> {
    let holder: HolderId = holder
        .parse()
        .map_err(|_| WebError::from(ApiError::not_found()))?;
    let docs = match s
        .gate
        .list_documents(
            holder,
            &p.professional.actor(),
            &DocumentFilter {
                limit: 100,
                ..DocumentFilter::default()
            },
            &Context::default(),
        )
        .await
    {
        Ok(page) => page.documents,
        // A denial looks like an empty record (AC-8).
        Err(carnet_store::StoreError::NotFound) => Vec::new(),
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let base = format!("/api/v1/pro/patients/{holder}");
    let body = format!(
        "<p><a href=\"/pro\">← Rechercher un autre patient</a></p><h1>Dossier du patient</h1>\
         <p>Les documents que vous pouvez consulter, selon les autorisations du patient et votre profession.</p>{}",
        doc_list(&docs, false, &base)
    );
    Ok(page("Dossier patient", &Nav::Pro { p: &p }, &body).into_response())
}
