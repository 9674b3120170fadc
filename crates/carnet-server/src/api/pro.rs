//! The professionals' side (SPEC AU-2, AC-1..5, S-7): sessions of professionals who
//! authenticated strongly (Pro Santé Connect through `/auth/oidc/{provider}`, configured with
//! `audience = "professionals"`; in demo mode only, a demo login by RPPS number), finding a
//! patient's record by INS, declaring an emergency (bris de glace), notices, and the patient's
//! documents (`documents.rs`, mounted under `/api/v1/pro/patients/{holder}`).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use carnet_domain::{HolderId, Ins};
use carnet_store::directory::Professional;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::set_cookie;
use super::extract::ProAuthenticated;
use super::extract::ValidJson;
use crate::{ApiError, AppState};

pub const PRO_SESSION_COOKIE: &str = "__Host-carnet_pro";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/demo-login", post(demo_login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/patients/lookup", post(lookup))
        .route("/patients/{holder}/emergency", post(emergency))
        .nest(
            "/patients/{holder}",
            super::documents::routes()
                .merge(super::profile::routes())
                .merge(super::messages::routes())
                .merge(super::agenda::routes())
                .merge(super::reimbursements::routes()),
        )
        .merge(super::messages::pro_routes())
}

/// Opens a professional session and answers with the cookie and the bearer token.
pub fn session_response(token: &str, p: &Professional, redirect: Option<&str>) -> Result<Response, ApiError> {
    let mut r = match redirect {
        Some(to) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(
                header::LOCATION,
                header::HeaderValue::from_str(to).map_err(|_| ApiError::internal())?,
            );
            r
        }
        None => Json(json!({ "token": token, "professional": professional_json(p) })).into_response(),
    };
    set_cookie(
        &mut r,
        PRO_SESSION_COOKIE,
        token,
        "/",
        carnet_store::auth::SESSION_ABSOLUTE_SECONDS,
    )?;
    Ok(r)
}

fn professional_json(p: &Professional) -> Value {
    json!({
        "rpps": p.rpps,
        "family_name": p.family_name,
        "given_name": p.given_name,
        "profession": p.profession,
        "specialty": p.specialty,
        "role": p.role,
        "finess": p.finess,
        "organisation": p.organisation_name,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoLogin {
    rpps: String,
}

/// Demo mode only: log in as a professional of the demo directory without a card or Pro Santé
/// Connect. Outside demo mode this route does not exist (404).
async fn demo_login(
    State(s): State<AppState>,
    ValidJson(b): ValidJson<DemoLogin>,
) -> Result<Response, ApiError> {
    let (token, p) = demo_session(&s, &b.rpps).await?;
    session_response(&token, &p, None)
}

/// Demo mode only: a professional session for a professional of the directory (shared by the
/// JSON API and the web interface); 404 outside demo mode, 401 for an unknown RPPS.
pub(crate) async fn demo_session(s: &AppState, rpps: &str) -> Result<(String, Professional), ApiError> {
    if !s.settings.demo {
        return Err(ApiError::not_found());
    }
    let p = s
        .store
        .professional(rpps)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let token = s.store.create_pro_session(&p.rpps).await?;
    Ok((token, p))
}

async fn logout(State(s): State<AppState>, a: ProAuthenticated) -> Result<Response, ApiError> {
    s.store.revoke_pro_session(&a.token).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut r, PRO_SESSION_COOKIE, "", "/", 0)?;
    Ok(r)
}

async fn me(State(s): State<AppState>, a: ProAuthenticated) -> Result<Json<Value>, ApiError> {
    let notices = s.store.pro_notices(&a.professional.rpps, 50).await?;
    Ok(Json(json!({
        "professional": professional_json(&a.professional),
        "notices": notices.iter().map(|n| json!({
            "at": n.at.to_rfc3339(), "kind": n.kind, "patient": n.holder,
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lookup {
    ins: String,
}

/// Finds a patient's record by INS (read from the Carte Vitale or the INSi service). Only an
/// open record is found; what it holds is decided per request by the gate.
async fn lookup(
    State(s): State<AppState>,
    a: ProAuthenticated,
    ValidJson(b): ValidJson<Lookup>,
) -> Result<Json<Value>, ApiError> {
    let holder = find_patient(&s, &a.professional, &b.ins).await?;
    Ok(Json(json!({ "patient": holder })))
}

/// The open record of the patient with this INS (shared with the web interface); 404 for no
/// record or one that is not open. The lookup is traced and shows this professional whose
/// record it is for a day (`Gate::find_patient`, issue 33).
pub(crate) async fn find_patient(s: &AppState, p: &Professional, ins: &str) -> Result<HolderId, ApiError> {
    let ins = Ins::parse(ins).map_err(|e| ApiError::bad_request(e.to_string()))?;
    s.gate
        .find_patient(&p.actor(), &ins)
        .await?
        .ok_or_else(ApiError::not_found)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Emergency {
    reason: String,
}

/// AC-5, S-7: bris de glace. A reason is required; the access is bounded in time, traced as an
/// emergency and told at once to the holder and the médecin traitant.
async fn emergency(
    State(s): State<AppState>,
    a: ProAuthenticated,
    Path(holder): Path<String>,
    ValidJson(b): ValidJson<Emergency>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let holder: HolderId = holder.parse().map_err(|_| ApiError::not_found())?;
    let reason = b.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::bad_request(
            "le motif de l'urgence est obligatoire / the reason of the emergency is required",
        ));
    }
    if reason.chars().count() > 500 {
        return Err(ApiError::bad_request(
            "motif trop long (500 caractères au plus) / reason too long",
        ));
    }
    let (d, until) = s
        .gate
        .declare_emergency(holder, &a.professional.actor(), reason)
        .await?;
    s.wake.notify_one();
    match until {
        Some(until) => Ok((
            StatusCode::CREATED,
            Json(json!({ "emergency": true, "until": until.to_rfc3339(), "reason": d.reason })),
        )),
        // Already authorised: nothing to open.
        None if d.allowed => Ok((
            StatusCode::OK,
            Json(json!({ "emergency": false, "reason": d.reason })),
        )),
        None => Err(ApiError::not_found()),
    }
}
