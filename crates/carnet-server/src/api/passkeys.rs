//! Passkeys for holders (AU-1, our choice): register one from a logged-in session, list and
//! remove them, and log in with one instead of password + code (a passkey with user
//! verification is both factors). The checks are in `crate::webauthn`.
//!
//! The relying party is `public_url` when configured (production), else the request's host
//! (`http://` for loopback only, `https://` otherwise).

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{device_of, limit, set_login_cookies};
use super::me::Authenticated;
use super::operator::ValidJson;
use crate::webauthn::{self, WebauthnError};
use crate::{ApiError, AppState};

/// Routes under `/api/v1/me`.
pub fn me_routes() -> Router<AppState> {
    Router::new()
        .route("/passkeys", get(list))
        .route("/passkeys/register/begin", post(register_begin))
        .route("/passkeys/register/finish", post(register_finish))
        .route("/passkeys/{id}", delete(remove))
}

/// Routes under `/api/v1`.
pub fn auth_routes() -> Router<AppState> {
    Router::new()
        .route("/auth/passkey/begin", post(login_begin))
        .route("/auth/passkey/finish", post(login_finish))
}

/// The relying party: (RP id, origin).
fn relying_party(s: &AppState, headers: &HeaderMap) -> Result<(String, String), ApiError> {
    let origin = s
        .public_origin(headers)
        .ok_or_else(|| ApiError::bad_request("Host header required"))?;
    let host = origin.split("://").nth(1).unwrap_or("");
    let rp_id = if host.starts_with('[') {
        host.split(']')
            .next()
            .unwrap_or("")
            .trim_start_matches('[')
            .to_string()
    } else {
        host.split(':').next().unwrap_or("").to_string()
    };
    Ok((rp_id, origin))
}

fn refused() -> ApiError {
    ApiError::new(
        StatusCode::UNAUTHORIZED,
        "passkey_refused",
        "la clé d'accès n'a pas pu être vérifiée / the passkey could not be verified",
    )
}

fn invalid(e: WebauthnError) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, "invalid_passkey", e.to_string())
}

async fn list(State(s): State<AppState>, a: Authenticated) -> Result<Json<Value>, ApiError> {
    let keys = s.store.passkeys_of(a.session.holder).await?;
    let items: Vec<Value> = keys
        .iter()
        .map(|k| {
            json!({
                "id": k.credential_id,
                "created_at": carnet_domain::Timestamp::from_micros(k.created_at).to_rfc3339(),
                "last_used_at": k.last_used_at.map(|t| carnet_domain::Timestamp::from_micros(t).to_rfc3339()),
            })
        })
        .collect();
    Ok(Json(json!({ "passkeys": items })))
}

/// PublicKeyCredentialCreationOptions for the logged-in holder (their own login, never a
/// represented person's: S-6).
async fn register_begin(
    State(s): State<AppState>,
    a: Authenticated,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let (rp_id, _) = relying_party(&s, &headers)?;
    let holder = a.session.holder;
    let challenge = s
        .store
        .create_webauthn_challenge("register", Some(holder))
        .await?;
    let exclude: Vec<Value> = s
        .store
        .passkeys_of(holder)
        .await?
        .iter()
        .map(|k| json!({ "type": "public-key", "id": k.credential_id }))
        .collect();
    Ok(Json(json!({
        "publicKey": {
            "challenge": challenge,
            "rp": { "id": rp_id, "name": "Carnet" },
            "user": { "id": webauthn::encode(holder.as_uuid().as_bytes()), "name": holder.to_string(), "displayName": "Carnet" },
            "pubKeyCredParams": [{ "type": "public-key", "alg": -7 }],
            "authenticatorSelection": { "residentKey": "required", "userVerification": "required" },
            "attestation": "none",
            "timeout": carnet_store::passkeys::CHALLENGE_SECONDS * 1000,
            "excludeCredentials": exclude,
        }
    })))
}

#[derive(Deserialize)]
struct AttestationResponse {
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    #[serde(rename = "attestationObject")]
    attestation_object: String,
}

#[derive(Deserialize)]
struct Registration {
    response: AttestationResponse,
}

async fn register_finish(
    State(s): State<AppState>,
    a: Authenticated,
    headers: HeaderMap,
    ValidJson(r): ValidJson<Registration>,
) -> Result<Response, ApiError> {
    let (rp_id, origin) = relying_party(&s, &headers)?;
    let cd = webauthn::b64(&r.response.client_data_json).map_err(invalid)?;
    let challenge = webauthn::client_data(&cd, "webauthn.create", &origin).map_err(invalid)?;
    let bound = s
        .store
        .take_webauthn_challenge(&challenge, "register")
        .await
        .map_err(|_| refused())?;
    if bound != Some(a.session.holder) {
        return Err(refused());
    }
    let att = webauthn::b64(&r.response.attestation_object).map_err(invalid)?;
    let ad = webauthn::attestation_auth_data(&att).map_err(invalid)?;
    let parsed = webauthn::auth_data(&ad, &rp_id, true).map_err(invalid)?;
    let (id, key) = parsed
        .credential
        .ok_or_else(|| invalid(WebauthnError::Malformed("credential")))?;
    let id = webauthn::encode(&id);
    s.store
        .add_passkey(a.session.holder, &id, &key, i64::from(parsed.sign_count))
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id }))).into_response())
}

async fn remove(
    State(s): State<AppState>,
    a: Authenticated,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if s.store.delete_passkey(a.session.holder, &id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

/// PublicKeyCredentialRequestOptions for a login with a discoverable passkey.
async fn login_begin(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    limit(&s, &format!("passkey:ip:{}", peer.ip()), 900, 60).await?;
    let (rp_id, _) = relying_party(&s, &headers)?;
    let challenge = s.store.create_webauthn_challenge("login", None).await?;
    Ok(Json(json!({
        "publicKey": {
            "challenge": challenge,
            "rpId": rp_id,
            "userVerification": "required",
            "timeout": carnet_store::passkeys::CHALLENGE_SECONDS * 1000,
            "allowCredentials": [],
        }
    })))
}

#[derive(Deserialize)]
struct AssertionResponse {
    #[serde(rename = "clientDataJSON")]
    client_data_json: String,
    #[serde(rename = "authenticatorData")]
    authenticator_data: String,
    signature: String,
}

#[derive(Deserialize)]
struct Assertion {
    id: String,
    response: AssertionResponse,
}

async fn login_finish(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    headers: HeaderMap,
    ValidJson(a): ValidJson<Assertion>,
) -> Result<Response, ApiError> {
    limit(&s, &format!("passkey:ip:{}", peer.ip()), 900, 60).await?;
    let (rp_id, origin) = relying_party(&s, &headers)?;
    let cd = webauthn::b64(&a.response.client_data_json).map_err(|_| refused())?;
    let challenge = webauthn::client_data(&cd, "webauthn.get", &origin).map_err(|_| refused())?;
    s.store
        .take_webauthn_challenge(&challenge, "login")
        .await
        .map_err(|_| refused())?;
    let key = s.store.passkey(&a.id).await?.ok_or_else(refused)?;
    let ad = webauthn::b64(&a.response.authenticator_data).map_err(|_| refused())?;
    let parsed = webauthn::auth_data(&ad, &rp_id, false).map_err(|_| refused())?;
    let sig = webauthn::b64(&a.response.signature).map_err(|_| refused())?;
    webauthn::verify_signature(&key.public_key, &ad, &cd, &sig).map_err(|_| refused())?;
    s.store
        .use_passkey(&key.credential_id, key.sign_count, i64::from(parsed.sign_count))
        .await
        .map_err(|_| refused())?;
    // Nobody logs into a space that is not open (LC-5, LC-6...).
    if !s.store.lifecycle(key.holder).await?.allows_login() {
        return Err(refused());
    }
    let (device_hash, new_device) = device_of(&headers)?;
    let (token, session) = s.store.create_session(key.holder, &device_hash).await?;
    s.wake.notify_one();
    let mut r =
        Json(json!({ "holder": key.holder, "expires_at": session.expires_at.to_rfc3339() })).into_response();
    set_login_cookies(&mut r, &token, new_device.as_deref())?;
    Ok(r)
}
