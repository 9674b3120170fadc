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
use carnet_domain::profile::Section;
use carnet_store::documents::DocumentFilter;

use super::documents::doc_list;
use super::i18n::{section_label, t};
use super::profile::entry_label;
use super::{
    Form, Nav, Pro, WebError, alert, check_pre_session, csrf_field, csrf_token, esc, french, notice, page,
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
        // GET too: the language switch of the page shown after the POST reloads this path.
        .route("/pro/patients/{holder}/urgence", get(patient).post(emergency))
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
    let holder = parse_holder(&holder)?;
    let body = record(&s, &p, holder, "", "", "").await?;
    Ok(page("Dossier patient", &Nav::Pro { p: &p }, &body).into_response())
}

fn parse_holder(holder: &str) -> Result<HolderId, WebError> {
    holder.parse().map_err(|_| WebError::from(ApiError::not_found()))
}

/// The patient's record as the gate lets this professional see it: the medical profile beside
/// the documents, and the emergency form (AC-5).
async fn record(
    s: &AppState,
    p: &Pro,
    holder: HolderId,
    banner: &str,
    error: &str,
    reason: &str,
) -> Result<String, WebError> {
    let actor = p.professional.actor();
    let docs = match s
        .gate
        .list_documents(
            holder,
            &actor,
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
    let entries = match s
        .gate
        .list_profile(holder, &actor, None, &Context::default())
        .await
    {
        Ok(entries) => entries,
        Err(carnet_store::StoreError::NotFound) => Vec::new(),
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let profile = if entries.is_empty() {
        format!("<p>{}</p>", t("pro.profile.none"))
    } else {
        let mut out = String::new();
        for section in Section::ALL {
            let items: String = entries
                .iter()
                .filter(|e| e.entry.section == section)
                .map(|e| format!("<li>{}</li>", esc(&entry_label(e))))
                .collect();
            if !items.is_empty() {
                out.push_str(&format!(
                    "<h3>{}</h3><ul>{items}</ul>",
                    esc(section_label(section))
                ));
            }
        }
        out
    };
    let base = format!("/api/v1/pro/patients/{holder}");
    let w_add = super::i18n::fr_en("Ajouter un document au dossier", "Add a document to the record");
    let w_msg = super::i18n::fr_en("Messagerie avec ce patient", "Messages with this patient");
    Ok(format!(
        "<p><a href=\"/pro\">{}</a></p><h1>{}</h1>{}\
         <div class=\"grid\"><section class=\"card\" aria-labelledby=\"pro-docs\"><h2 id=\"pro-docs\">{}</h2><p>{}</p>{}</section>\
         <section class=\"card\" aria-labelledby=\"pro-profile\"><h2 id=\"pro-profile\">{}</h2>{profile}</section></div>\
         <p><a href=\"/pro/patients/{holder}/documents/ajout\">{w_add}</a> · \
         <a href=\"/pro/patients/{holder}/messages\">{w_msg}</a></p>\
         <section aria-labelledby=\"urgence\"><h2 id=\"urgence\">{}</h2><p>{}</p>\
         <form method=\"post\" action=\"/pro/patients/{holder}/urgence\" class=\"card\">{}{}\
         <p><label for=\"motif\">{}</label><textarea id=\"motif\" name=\"motif\" rows=\"3\" maxlength=\"500\" required>{}</textarea></p>\
         <p><button type=\"submit\">{}</button></p></form></section>",
        t("pro.back"),
        t("pro.record.title"),
        notice(banner),
        t("nav.documents"),
        t("pro.record.intro"),
        doc_list(&docs, false, &base),
        t("nav.profile"),
        t("pro.emergency.title"),
        t("pro.emergency.intro"),
        alert(error),
        csrf_field(&p.csrf),
        t("pro.emergency.reason"),
        esc(reason),
        t("pro.emergency.submit"),
    ))
}

/// AC-5, bris de glace: the same call as `api::pro::emergency` (`gate.declare_emergency`).
async fn emergency(
    State(s): State<AppState>,
    p: Pro,
    Path(holder): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    super::check_csrf(&s, &p.token, &form).await?;
    let holder = parse_holder(&holder)?;
    let reason = form.get("motif").trim().to_string();
    let outcome: Result<String, String> = if reason.is_empty() {
        Err(t("pro.emergency.required").to_string())
    } else if reason.chars().count() > 500 {
        Err(t("pro.emergency.long").to_string())
    } else {
        let (d, until) = s
            .gate
            .declare_emergency(holder, &p.professional.actor(), &reason)
            .await
            .map_err(ApiError::from)?;
        s.wake.notify_one();
        match until {
            Some(until) => Ok(format!("{} {}.", t("pro.emergency.open"), until_words(until))),
            None if d.allowed => Ok(t("pro.emergency.already").to_string()),
            None => return Err(ApiError::not_found().into()),
        }
    };
    let (status, body) = match outcome {
        Ok(banner) => (StatusCode::OK, record(&s, &p, holder, &banner, "", "").await?),
        Err(e) => (
            StatusCode::BAD_REQUEST,
            record(&s, &p, holder, "", &e, &reason).await?,
        ),
    };
    let mut r = page("Dossier patient", &Nav::Pro { p: &p }, &body).into_response();
    *r.status_mut() = status;
    Ok(r)
}

/// "24/11/2026 à 18:42" (or "at" in English), French legal time.
fn until_words(t: carnet_domain::Timestamp) -> String {
    super::paris(t).map_or_else(String::new, |d| {
        let at = if super::i18n::locale() == super::i18n::Locale::En {
            "at"
        } else {
            "à"
        };
        format!(
            "{:02}/{:02}/{} {at} {:02}:{:02}",
            d.day(),
            u8::from(d.month()),
            d.year(),
            d.hour(),
            d.minute()
        )
    })
}
