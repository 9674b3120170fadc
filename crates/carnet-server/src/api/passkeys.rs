//! Passkeys for holders (AU-1, our choice): register one from a logged-in session, list and
//! remove them, and log in with one instead of password + code (a passkey with user
//! verification is both factors). The ceremonies are checked by `webauthn-rs`
//! (`crate::webauthn`); a ceremony's state waits in the store under its challenge, once.
//!
//! The relying party is the configured origin (`public_url`; a loopback server also answers
//! as `localhost`, S-21), never one a request makes up.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, PasskeyRegistration, PublicKeyCredential, RegisterPublicKeyCredential,
    Webauthn,
};

use super::auth::{device_of, limit, set_login_cookies};
use super::extract::Authenticated;
use super::extract::ValidJson;
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

/// The relying party of this request's configured origin.
fn relying_party(s: &AppState, headers: &HeaderMap) -> Result<Webauthn, ApiError> {
    let origin = s.settings.origin_for(headers);
    // WebAuthn needs a domain name: a loopback server reached by its address offers none.
    webauthn::relying_party(&origin).map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "no_relying_party",
            "les clés d'accès demandent le nom de domaine du service (ouvrez-le par son nom, p. ex. localhost) \
             / passkeys need the service's domain name (open it by name, e.g. localhost)",
        )
    })
}

/// A browser's credential as the library reads it (`rawId` and `type` filled in when a client
/// sent only `id`).
fn credential_json(mut v: Value) -> Value {
    if v.get("rawId").is_none_or(Value::is_null) {
        v["rawId"] = v["id"].clone();
    }
    if v.get("type").is_none_or(Value::is_null) {
        v["type"] = json!("public-key");
    }
    v
}

/// The challenge of the options the library made (base64url, as the client echoes it).
fn challenge_of(options: &Value) -> Result<String, ApiError> {
    options["publicKey"]["challenge"]
        .as_str()
        .map(|c| c.trim_end_matches('=').to_string())
        .ok_or_else(ApiError::internal)
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
/// represented person's: S-6): a discoverable credential, user verification required.
async fn register_begin(
    State(s): State<AppState>,
    a: Authenticated,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let wa = relying_party(&s, &headers)?;
    let holder = a.session.holder;
    let exclude = s
        .store
        .passkeys_of(holder)
        .await?
        .iter()
        .filter_map(|k| webauthn::decode(&k.credential_id))
        .collect();
    let (ccr, state) = wa
        .start_passkey_registration(*holder.as_uuid(), &holder.to_string(), "Carnet", Some(exclude))
        .map_err(|e| invalid(e.into()))?;
    let mut options = serde_json::to_value(&ccr).map_err(|_| ApiError::internal())?;
    // A passkey that logs in alone must be discoverable (a "resident" credential).
    let selection = &mut options["publicKey"]["authenticatorSelection"];
    selection["residentKey"] = json!("required");
    selection["requireResidentKey"] = json!(true);
    let state = serde_json::to_string(&state).map_err(|_| ApiError::internal())?;
    s.store
        .save_webauthn_state(&challenge_of(&options)?, "register", Some(holder), &state)
        .await?;
    Ok(Json(options))
}

async fn register_finish(
    State(s): State<AppState>,
    a: Authenticated,
    headers: HeaderMap,
    ValidJson(body): ValidJson<Value>,
) -> Result<Response, ApiError> {
    let wa = relying_party(&s, &headers)?;
    let body = credential_json(body);
    let challenge = webauthn::challenge_in(
        body["response"]["clientDataJSON"].as_str().unwrap_or(""),
        &s.settings.origin_for(&headers),
    )
    .map_err(invalid)?;
    let (bound, state) = s
        .store
        .take_webauthn_state(&challenge, "register")
        .await
        .map_err(|_| refused())?;
    if bound != Some(a.session.holder) {
        return Err(refused());
    }
    let state: PasskeyRegistration = serde_json::from_str(&state).map_err(|_| refused())?;
    let reg: RegisterPublicKeyCredential =
        serde_json::from_value(body).map_err(|_| invalid(WebauthnError::Malformed("credential")))?;
    let passkey = wa
        .finish_passkey_registration(&reg, &state)
        .map_err(|e| invalid(e.into()))?;
    let id = webauthn::encode(passkey.cred_id().as_ref());
    let stored = serde_json::to_value(&passkey).map_err(|_| ApiError::internal())?;
    let counter = stored["cred"]["counter"].as_i64().unwrap_or(0);
    s.store
        .add_passkey(a.session.holder, &id, &stored.to_string(), counter)
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
    let wa = relying_party(&s, &headers)?;
    let (mut rcr, state) = wa
        .start_discoverable_authentication()
        .map_err(|e| invalid(e.into()))?;
    // A button asks for the passkey; the browser's autofill (conditional UI) is not used.
    rcr.mediation = None;
    let options = serde_json::to_value(&rcr).map_err(|_| ApiError::internal())?;
    let state = serde_json::to_string(&state).map_err(|_| ApiError::internal())?;
    s.store
        .save_webauthn_state(&challenge_of(&options)?, "login", None, &state)
        .await?;
    Ok(Json(options))
}

async fn login_finish(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    headers: HeaderMap,
    ValidJson(body): ValidJson<Value>,
) -> Result<Response, ApiError> {
    limit(&s, &format!("passkey:ip:{}", peer.ip()), 900, 60).await?;
    let wa = relying_party(&s, &headers)?;
    let body = credential_json(body);
    let challenge = webauthn::challenge_in(
        body["response"]["clientDataJSON"].as_str().unwrap_or(""),
        &s.settings.origin_for(&headers),
    )
    .map_err(|_| refused())?;
    let (_, state) = s
        .store
        .take_webauthn_state(&challenge, "login")
        .await
        .map_err(|_| refused())?;
    let state: DiscoverableAuthentication = serde_json::from_str(&state).map_err(|_| refused())?;
    let cred: PublicKeyCredential = serde_json::from_value(body).map_err(|_| refused())?;
    let key = s
        .store
        .passkey(&webauthn::encode(cred.get_credential_id()))
        .await?
        .ok_or_else(refused)?;
    // The user handle, when the authenticator gives one, is the holder the passkey was made for.
    if cred
        .get_user_unique_id()
        .is_some_and(|u| u != key.holder.as_uuid().as_bytes())
    {
        return Err(refused());
    }
    let mut passkey = webauthn::stored_passkey(&key).map_err(|_| refused())?;
    let result = wa
        .finish_discoverable_authentication_v2(&cred, state, &passkey)
        .map_err(|_| refused())?;
    passkey.update_credential(&result);
    let updated = serde_json::to_string(&passkey).map_err(|_| ApiError::internal())?;
    s.store
        .use_passkey(
            &key.credential_id,
            key.sign_count,
            i64::from(result.counter()),
            &updated,
        )
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
