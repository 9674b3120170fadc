//! The holder's own space (and the spaces they represent): who am I, switching space (MI-1),
//! rectifying contact data (ID-2), exporting everything (ID-3), closing with a confirmation
//! step (LC-5). A representative acts under their own session: the session keeps who logged
//! in (`holder`) apart from whose space is open (`acting_for`), S-6.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use carnet_domain::{HolderId, Lifecycle};
use serde::Deserialize;
use serde_json::{Value, json};

use carnet_store::outbox::Channel;

use super::extract::{Authenticated, ValidJson};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(me))
        .route("/act-for", post(act_for))
        .route("/contact", patch(rectify_contact))
        .route("/contact/confirm", post(confirm_contact))
        .route("/close", post(close_request))
        .route("/close/confirm", post(close_confirm))
        .route("/totp", post(totp_begin).delete(totp_disable))
        .route("/totp/confirm", post(totp_confirm))
}

/// AU-1 (our choice): an authenticator app instead of codes sent by e-mail or SMS. Step 1:
/// a new secret to scan or type; it becomes active once a code from it is confirmed.
async fn totp_begin(State(s): State<AppState>, a: Authenticated) -> Result<Json<Value>, ApiError> {
    let secret = s.store.begin_totp(a.session.holder).await?;
    let b32 = carnet_store::auth::base32(&secret);
    Ok(Json(json!({
        "secret_base32": b32,
        "otpauth_uri": format!("otpauth://totp/Carnet:{}?secret={b32}&issuer=Carnet&algorithm=SHA1&digits=6&period=30", a.session.holder),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TotpCode {
    code: String,
}

async fn totp_confirm(
    State(s): State<AppState>,
    a: Authenticated,
    ValidJson(c): ValidJson<TotpCode>,
) -> Result<Json<Value>, ApiError> {
    s.store.verify_totp(a.session.holder, &c.code).await?;
    Ok(Json(json!({ "totp": "enabled" })))
}

async fn totp_disable(State(s): State<AppState>, a: Authenticated) -> Result<StatusCode, ApiError> {
    s.store.disable_totp(a.session.holder).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The spaces `holder` may act in: their own, those they currently represent, and those they
/// help as a carer (MI-5, relation `carer`: reads only).
async fn spaces(s: &AppState, holder: HolderId) -> Result<Vec<Value>, ApiError> {
    let mut out = vec![json!({ "id": holder, "relation": "self" })];
    for (whom, kind) in s.store.represented_by(holder).await? {
        out.push(json!({ "id": whom, "relation": kind }));
    }
    for helped in s.store.helped_by(holder).await? {
        out.push(json!({
            "id": helped.holder,
            "relation": "carer",
            "until": helped.until.map(|u| u.to_rfc3339()),
        }));
    }
    Ok(out)
}

async fn me(State(s): State<AppState>, a: Authenticated) -> Result<Json<Value>, ApiError> {
    if a.session.as_carer {
        // MI-5: a carer reads documents by their grant, never the space's administrative data.
        return Ok(Json(json!({
            "logged_in_as": a.session.holder,
            "acting_for": a.session.acting_for,
            "acting_as": "carer",
            "spaces": spaces(&s, a.session.holder).await?,
            "session_expires_at": a.session.expires_at.to_rfc3339(),
        })));
    }
    let h = a.holder_side(&s).await?.record().await?;
    let admin: Value = serde_json::from_slice(&h.administrative).unwrap_or_default();
    Ok(Json(json!({
        "logged_in_as": a.session.holder,
        "acting_for": a.session.acting_for,
        "lifecycle": h.lifecycle.name(),
        "administrative": admin,
        "spaces": spaces(&s, a.session.holder).await?,
        "session_expires_at": a.session.expires_at.to_rfc3339(),
    })))
}

/// How `who` may act in `target`'s space: `Some(false)` their own or one they represent,
/// `Some(true)` one they help as a carer (MI-5), `None` not at all. Representation comes first.
pub(crate) async fn acting_as(
    s: &AppState,
    who: HolderId,
    target: HolderId,
) -> Result<Option<bool>, ApiError> {
    if target == who || s.store.represents(who, target).await? {
        Ok(Some(false))
    } else if s.store.helps(who, target).await? {
        Ok(Some(true))
    } else {
        Ok(None)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActFor {
    holder: HolderId,
}

async fn act_for(
    State(s): State<AppState>,
    a: Authenticated,
    ValidJson(b): ValidJson<ActFor>,
) -> Result<Json<Value>, ApiError> {
    let as_carer = match acting_as(&s, a.session.holder, b.holder).await? {
        Some(as_carer) => as_carer,
        None => return Err(ApiError::not_found()),
    };
    s.store.set_acting_for(&a.token, b.holder, as_carer).await?;
    Ok(Json(
        json!({ "acting_for": b.holder, "acting_as": if as_carer { "carer" } else if b.holder == a.session.holder { "self" } else { "representative" } }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Contact {
    email: Option<String>,
    phone: Option<String>,
    address: Option<String>,
}

/// ID-2: contact data can be corrected by the holder; identity traits come from the insurer.
/// The postal address changes at once. A new e-mail address or phone number takes effect only
/// with the code sent to it (`POST /me/contact/confirm`): login codes and access notices never
/// go where the holder cannot read them, and a stolen session cannot send them elsewhere.
/// Either may be removed while the other stays on file. Answers 202 with the challenge when a
/// code was sent, 200 otherwise.
async fn rectify_contact(
    State(s): State<AppState>,
    a: Authenticated,
    ValidJson(c): ValidJson<Contact>,
) -> Result<Response, ApiError> {
    let side = a.holder_side(&s).await?;
    let h = side.record().await?;
    let mut admin: serde_json::Map<String, Value> =
        serde_json::from_slice(&h.administrative).unwrap_or_default();
    let on_file = |admin: &serde_json::Map<String, Value>, k: &str| {
        admin
            .get(k)
            .and_then(Value::as_str)
            .is_some_and(|v| !v.is_empty())
    };
    let mut new_value = None;
    for (key, channel, typed) in [
        ("email", Channel::Email, c.email.as_deref()),
        ("phone", Channel::Sms, c.phone.as_deref()),
    ] {
        match typed.map(str::trim) {
            None => {}
            Some("") => {
                let other = if key == "email" { "phone" } else { "email" };
                if !on_file(&admin, other) {
                    return Err(ApiError::bad_request(
                        "gardez au moins une adresse e-mail ou un numéro de mobile pour recevoir vos codes \
                         / keep an e-mail address or a mobile number for your codes",
                    ));
                }
                admin.remove(key);
            }
            Some(v) => {
                let v = crate::web::contact::checked(channel, v)
                    .map_err(|fr| ApiError::bad_request(format!("{fr} / invalid {key}")))?;
                if new_value.replace((key, channel, v)).is_some() {
                    return Err(ApiError::bad_request(
                        "une nouvelle adresse e-mail ou un nouveau numéro à la fois / one new e-mail or phone at a time",
                    ));
                }
            }
        }
    }
    if let Some(address) = c.address.map(|v| v.trim().to_string()) {
        if address.chars().count() > 300 {
            return Err(ApiError::bad_request("adresse trop longue / address too long"));
        }
        if address.is_empty() {
            admin.remove("address");
        } else {
            admin.insert("address".into(), Value::String(address));
        }
    }
    let bytes = serde_json::to_vec(&admin).map_err(|_| ApiError::internal())?;
    side.update_administrative(&bytes).await?;
    let Some((key, channel, value)) = new_value else {
        return Ok(Json(Value::Object(admin)).into_response());
    };
    super::auth::limit(&s, &format!("contact:{}", a.session.acting_for), 3600, 5).await?;
    let challenge = s
        .store
        .create_contact_challenge(a.session.acting_for, channel, &value)
        .await?;
    s.wake.notify_one();
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "pending": { "field": key, "value": value, "challenge": challenge }, "administrative": admin })),
    )
        .into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ContactCode {
    field: String,
    value: String,
    challenge: uuid::Uuid,
    code: String,
}

/// ID-2: the code sent to the new e-mail address or phone number: it replaces the former one,
/// which is told.
async fn confirm_contact(
    State(s): State<AppState>,
    a: Authenticated,
    ValidJson(c): ValidJson<ContactCode>,
) -> Result<Json<Value>, ApiError> {
    let channel = match c.field.as_str() {
        "email" => Channel::Email,
        "phone" => Channel::Sms,
        _ => return Err(ApiError::bad_request("field: email or phone")),
    };
    let value = crate::web::contact::checked(channel, &c.value)
        .map_err(|fr| ApiError::bad_request(format!("{fr} / invalid {}", c.field)))?;
    let side = a.holder_side(&s).await?;
    let admin =
        crate::web::contact::confirm_new_value(&s, &side, c.challenge, &c.code, channel, &c.field, &value)
            .await?;
    Ok(Json(Value::Object(admin)))
}

/// LC-5: closing is a two-step action. The first step explains the consequences and returns
/// a confirmation valid 10 minutes, bound to this session and space.
async fn close_request(State(s): State<AppState>, a: Authenticated) -> Result<Json<Value>, ApiError> {
    // S-1: the holder or a representative only (a carer reads; they close nothing, MI-5).
    a.holder_side(&s).await?;
    let l = s.store.lifecycle(a.session.acting_for).await?;
    l.apply(carnet_domain::Event::Close, s.store.now())
        .map_err(carnet_store::StoreError::from)?;
    let confirmation = s.store.issue_confirmation("close", &close_binding(&a)).await?;
    Ok(Json(json!({
        "confirmation": confirmation,
        "message": "Fermer votre espace : les professionnels n'y auront plus accès. Vos données sont \
                    conservées 10 ans, pendant lesquels vous pouvez le rouvrir, puis supprimées. \
                    / Closing: professionals lose access; data is kept 10 years, then erased.",
    })))
}

/// What a closing confirmation is bound to: this session and this space.
fn close_binding(a: &Authenticated) -> String {
    close_binding_of(&a.token, a.session.acting_for)
}

/// The same binding from a session token and the space open (the web pages' closing form).
pub(crate) fn close_binding_of(token: &str, space: HolderId) -> String {
    format!("{}:{space}", carnet_store::crypto::sha256_hex(token.as_bytes()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Confirm {
    confirmation: String,
    /// LC-5: also ask for the space's deletion (erased `ERASURE_GRACE_SECONDS` later unless
    /// reopened meanwhile).
    #[serde(default)]
    erase: bool,
}

async fn close_confirm(
    State(s): State<AppState>,
    a: Authenticated,
    ValidJson(c): ValidJson<Confirm>,
) -> Result<Response, ApiError> {
    a.holder_side(&s).await?;
    let valid = s
        .store
        .check_confirmation("close", &close_binding(&a), &c.confirmation)
        .await?;
    if !valid {
        return Err(ApiError::bad_request(
            "confirmation invalide ou expirée / invalid or expired confirmation",
        ));
    }
    let l: Lifecycle = s
        .store
        .transition(a.session.acting_for, carnet_domain::Event::Close)
        .await?;
    let erased_on = if c.erase {
        let when = s.store.request_erasure(a.session.acting_for).await?;
        s.wake.notify_one();
        Some(when.to_rfc3339())
    } else {
        None
    };
    if a.session.acting_for == a.session.holder {
        s.store.revoke_all_sessions(a.session.holder).await?;
    } else {
        s.store.set_acting_for(&a.token, a.session.holder, false).await?;
    }
    Ok((
        StatusCode::OK,
        Json(json!({ "lifecycle": l.name(), "since": l.since().to_rfc3339(), "erased_on": erased_on })),
    )
        .into_response())
}
