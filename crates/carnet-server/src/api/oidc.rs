//! `/auth/oidc/{provider}/start` and `/callback`: login through an OpenID provider
//! (FranceConnect for holders, Pro Santé Connect for professionals). See `crate::oidc` for the
//! protocol checks.

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::{Event, Lifecycle};
use carnet_store::oidc::{OidcRequest, identity_key};
use serde::Deserialize;

use super::auth::{cookie, device_of, set_cookie, set_login_cookies};
use crate::oidc::Audience;
use crate::{ApiError, AppState};

const STATE_COOKIE: &str = "carnet_oidc_state";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/auth/oidc/{provider}/start", get(start))
        .route("/auth/oidc/{provider}/callback", get(callback))
}

fn refused() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "login_refused",
        "la connexion n'a pas pu être vérifiée ou ne correspond à aucun espace / the login could not be verified or matches no space",
    )
}

async fn start(State(s): State<AppState>, Path(provider): Path<String>) -> Result<Response, ApiError> {
    let p = s.oidc.get(&provider).ok_or_else(ApiError::not_found)?;
    let st = p.start().await.map_err(|e| {
        tracing::warn!(provider = %provider, error = %e, "OpenID provider unavailable");
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "provider_unavailable",
            "le service de connexion est indisponible / the login provider is unavailable",
        )
    })?;
    s.store
        .save_oidc_request(
            &st.state,
            &OidcRequest {
                provider: provider.clone(),
                pkce_verifier: st.pkce_verifier,
                nonce: st.nonce,
            },
        )
        .await?;
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(
        LOCATION,
        HeaderValue::from_str(&st.url).map_err(|_| ApiError::internal())?,
    );
    set_cookie(&mut r, STATE_COOKIE, &st.state, "/auth/oidc", 600)?;
    Ok(r)
}

#[derive(Deserialize)]
struct CallbackParams {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

async fn callback(
    State(s): State<AppState>,
    Path(provider): Path<String>,
    Query(q): Query<CallbackParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let p = s.oidc.get(&provider).ok_or_else(ApiError::not_found)?;
    if q.error.is_some() {
        return Err(refused());
    }
    let (Some(code), Some(state)) = (q.code, q.state) else {
        return Err(ApiError::bad_request("code and state are required"));
    };
    // The state must come back to the browser that started the login (login CSRF).
    let bound = cookie(&headers, STATE_COOKIE).unwrap_or("");
    if aws_lc_rs::constant_time::verify_slices_are_equal(bound.as_bytes(), state.as_bytes()).is_err() {
        return Err(refused());
    }
    let req = s.store.take_oidc_request(&state).await?;
    if req.provider != provider {
        return Err(refused());
    }
    let identity = p
        .finish(&code, &req.pkce_verifier, &req.nonce)
        .await
        .map_err(|e| {
            tracing::warn!(provider = %provider, error = %e, "OpenID login not verified");
            refused()
        })?;
    if p.config.audience == Audience::Professionals {
        // AC-1: a professional is who the directory says the RPPS number is; no account is
        // created from the provider's claims.
        let rpps = identity.rpps.as_deref().ok_or_else(refused)?;
        let professional = s.store.professional(rpps).await?.ok_or_else(refused)?;
        let token = s.store.create_pro_session(rpps).await?;
        let mut r = super::pro::session_response(&token, &professional, Some("/"))?;
        set_cookie(&mut r, STATE_COOKIE, "", "/auth/oidc", 0)?;
        return Ok(r);
    }
    let holder = match s.store.oidc_link(&provider, &identity.subject).await? {
        Some(h) => h,
        None => {
            let key = identity_key(
                &identity.family_name,
                &identity.given_name,
                &identity.birthdate,
                &identity.gender,
            );
            let found = s.store.holders_by_identity(&key).await?;
            let [h] = found.as_slice() else {
                return Err(refused());
            };
            s.store.link_oidc(&provider, &identity.subject, *h).await?;
            *h
        }
    };
    match s.store.lifecycle(holder).await? {
        Lifecycle::Activated { .. } => {}
        // LC-4: proving identity through FranceConnect activates the space.
        Lifecycle::Informed { .. } | Lifecycle::Open { .. } => {
            s.store.transition(holder, Event::Activate).await?;
        }
        _ => return Err(refused()),
    }
    let (device_hash, new_device) = device_of(&headers)?;
    let (token, _) = s.store.create_session(holder, &device_hash).await?;
    s.wake.notify_one();
    let mut r = StatusCode::SEE_OTHER.into_response();
    r.headers_mut().insert(LOCATION, HeaderValue::from_static("/"));
    set_login_cookies(&mut r, &token, new_device.as_deref())?;
    set_cookie(&mut r, STATE_COOKIE, "", "/auth/oidc", 0)?;
    Ok(r)
}
