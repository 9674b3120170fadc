//! Holders' activation and login (SPEC LC-4, AU-1, AU-3).
//!
//! Login is two steps: login + password, then a 6-digit code sent by e-mail (or SMS). Wrong
//! login and wrong password get the same answer after the same work (Argon2id against a dummy
//! hash), so the answers do not tell whether an account exists. Attempts are limited per
//! account and per address, in the database (shared by all servers).

use std::net::SocketAddr;

use axum::extract::State;
use axum::http::header::{COOKIE, SET_COOKIE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use carnet_domain::Ins;
use carnet_store::auth::{RateDecision, SESSION_ABSOLUTE_SECONDS};
use carnet_store::crypto::{random_token, sha256_hex};
use carnet_store::outbox::Channel;
use serde::Deserialize;
use serde_json::json;

use super::extract::ValidJson;
use crate::{ApiError, AppState};

pub const SESSION_COOKIE: &str = "__Host-carnet_session";
pub const DEVICE_COOKIE: &str = "carnet_device";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/activation", post(activate))
        .route("/auth/login", post(login))
        .route("/auth/verify", post(verify))
        .route("/auth/logout", post(logout))
        .route("/auth/logout-everywhere", post(logout_everywhere))
        .route("/opposition", post(opposition_request))
        .route("/opposition/confirm", post(opposition_confirm))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Opposition {
    ins: String,
    activation_code: String,
    #[serde(default)]
    confirmation: Option<String>,
}

async fn opposition_guard(s: &AppState, peer: SocketAddr, body: &Opposition) -> Result<Ins, ApiError> {
    limit(s, &format!("opposition:ip:{}", peer.ip()), 900, 20).await?;
    let ins = Ins::parse(&body.ins).map_err(|e| ApiError::bad_request(format!("INS : {e}")))?;
    opposition_limit(s, &ins).await?;
    Ok(ins)
}

/// The web page's and the API's common limit on objecting: a few tries an INS (the code has
/// 12 characters, but a person's INS is not secret).
pub(crate) async fn opposition_limit(s: &AppState, ins: &Ins) -> Result<(), ApiError> {
    limit(
        s,
        &format!("opposition:ins:{}", s.store.ins_index(ins).await?),
        900,
        5,
    )
    .await
}

/// What an opposition confirmation is bound to: this INS and this code.
pub(crate) async fn opposition_binding(s: &AppState, ins: &Ins, code: &str) -> Result<String, ApiError> {
    Ok(format!(
        "{}:{}",
        s.store.ins_index(ins).await?,
        sha256_hex(code.trim().to_uppercase().as_bytes())
    ))
}

/// LC-3: objecting online, step 1: checks the code and explains the consequences.
async fn opposition_request(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    ValidJson(body): ValidJson<Opposition>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ins = opposition_guard(&s, peer, &body).await?;
    let id = s
        .store
        .find_by_ins(&ins)
        .await?
        .ok_or(carnet_store::StoreError::Mismatch)?;
    if !s.store.check_activation_code(id, &body.activation_code).await? {
        return Err(carnet_store::StoreError::Mismatch.into());
    }
    s.store
        .lifecycle(id)
        .await?
        .apply(carnet_domain::Event::Oppose, s.store.now())
        .map_err(carnet_store::StoreError::from)?;
    let binding = opposition_binding(&s, &ins, &body.activation_code).await?;
    Ok(Json(json!({
        "confirmation": s.store.issue_confirmation("oppose", &binding).await?,
        "message": "En vous opposant, aucun espace numérique de santé ne sera ouvert pour vous et les \
                    professionnels ne pourront pas y déposer vos documents. Vous pourrez en demander un plus tard. \
                    / If you object, no space will be opened; you may ask for one later.",
    })))
}

/// Step 2: records the opposition and sends the proof of refusal (LC-2).
async fn opposition_confirm(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    ValidJson(body): ValidJson<Opposition>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ins = opposition_guard(&s, peer, &body).await?;
    let presented = body.confirmation.clone().unwrap_or_default();
    let binding = opposition_binding(&s, &ins, &body.activation_code).await?;
    let valid = s.store.check_confirmation("oppose", &binding, &presented).await?;
    if !valid {
        return Err(ApiError::bad_request(
            "confirmation invalide ou expirée / invalid or expired confirmation",
        ));
    }
    let (_, reference, _) = s.store.oppose_with_code(&ins, &body.activation_code).await?;
    s.wake.notify_one();
    Ok(Json(json!({ "status": "opposed", "reference": reference })))
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

pub async fn limit(state: &AppState, bucket: &str, window: i64, max: i64) -> Result<(), ApiError> {
    match state.store.hit_rate_limit(bucket, window, max).await? {
        RateDecision::Allowed => Ok(()),
        RateDecision::Limited { retry_after_seconds } => Err(ApiError::too_many(retry_after_seconds)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Activation {
    ins: String,
    activation_code: String,
    #[serde(default)]
    card_serial: String,
    login: String,
    password: String,
}

async fn activate(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    ValidJson(body): ValidJson<Activation>,
) -> Result<(StatusCode, Json<serde_json::Value>), ApiError> {
    activate_space(
        &s,
        peer.ip(),
        &body.ins,
        &body.activation_code,
        &body.card_serial,
        &body.login,
        body.password,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({ "status": "activated" }))))
}

/// LC-4: activates a space with the letter's provisional code, the Carte Vitale serial when
/// the roster has one, and the chosen login and password (the API and the web page).
pub(crate) async fn activate_space(
    s: &AppState,
    ip: std::net::IpAddr,
    ins: &str,
    activation_code: &str,
    card_serial: &str,
    login: &str,
    password: String,
) -> Result<(), ApiError> {
    limit(s, &format!("activation:ip:{ip}"), 900, 20).await?;
    let ins = Ins::parse(ins.trim()).map_err(|e| ApiError::bad_request(format!("INS : {e}")))?;
    limit(
        s,
        &format!("activation:ins:{}", s.store.ins_index(&ins).await?),
        900,
        5,
    )
    .await?;
    carnet_store::password::check_policy(&password).map_err(|e| ApiError::bad_request(e.to_string()))?;
    if login.trim().len() < 3 {
        return Err(ApiError::bad_request(
            "l'identifiant doit compter au moins 3 caractères / the login must have at least 3 characters",
        ));
    }
    let hash = tokio::task::spawn_blocking(move || carnet_store::password::hash(&password))
        .await
        .map_err(|_| ApiError::internal())??;
    s.store
        .activate(
            &ins,
            activation_code.trim(),
            card_serial.trim(),
            login.trim(),
            &hash,
        )
        .await?;
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Login {
    login: String,
    password: String,
    /// LC-5: the holder of a closed space logs in to reopen it (within 10 years).
    #[serde(default)]
    reopen: bool,
    /// LC-5b: the holder of a suspended space proves who they are to object to its closure.
    #[serde(default)]
    contest: bool,
}

/// What a holder logs in for: their space, reopening a closed one (LC-5), or objecting to the
/// closure of a suspended one (LC-5b: no session then, the space stays suspended).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoginIntent {
    Open,
    Reopen,
    ContestSuspension,
}

impl LoginIntent {
    pub(crate) fn of(reopen: bool, contest: bool) -> Self {
        match (reopen, contest) {
            (_, true) => LoginIntent::ContestSuspension,
            (true, false) => LoginIntent::Reopen,
            (false, false) => LoginIntent::Open,
        }
    }

    /// The lifecycle event this login carries out on success, if any.
    const fn event(self) -> Option<carnet_domain::Event> {
        match self {
            LoginIntent::Open => None,
            LoginIntent::Reopen => Some(carnet_domain::Event::Reopen),
            LoginIntent::ContestSuspension => Some(carnet_domain::Event::ContestSuspension),
        }
    }
}

/// What the second login step gives: a session, or (LC-5b) the recorded objection.
pub(crate) enum LoginOutcome {
    Session(String, carnet_store::auth::Session),
    SuspensionContested(carnet_domain::Timestamp),
}

/// LC-5b: why the right password does not open a suspended space, with its dates in words;
/// `suspended` while the holder may still object, `suspension_contested` once they did or the
/// time to do so is over.
fn suspended_refusal(lifecycle: carnet_domain::Lifecycle, now: carnet_domain::Timestamp) -> Option<ApiError> {
    use carnet_domain::Lifecycle as L;
    let fr = |t: carnet_domain::Timestamp| crate::mail::long_date(&t.to_rfc3339());
    let en = |t: carnet_domain::Timestamp| crate::mail::long_date_en(&t.to_rfc3339());
    match lifecycle {
        L::Suspended { at }
            if lifecycle
                .apply(carnet_domain::Event::ContestSuspension, now)
                .is_ok() =>
        {
            let end = carnet_domain::lifecycle::suspension_end(at);
            Some(ApiError::new(
                StatusCode::CONFLICT,
                "suspended",
                format!(
                    "votre espace est suspendu depuis le {} par le service, sur un dysfonctionnement grave ou une \
                     fraude : personne n'y a accès. Sans opposition de votre part avant le {}, il sera fermé. \
                     / this space was suspended on {}; without objection before {}, it will be closed (log in \
                     with contest to object)",
                    fr(at),
                    fr(end),
                    en(at),
                    en(end)
                ),
            ))
        }
        L::Suspended { at } | L::SuspensionContested { at } => Some(ApiError::new(
            StatusCode::CONFLICT,
            "suspension_contested",
            format!(
                "votre espace est suspendu par le service ; votre opposition à sa fermeture est enregistrée \
                 depuis le {} : le service vous écrira sa décision / this space is suspended; your objection \
                 is recorded since {}, the service will write to you",
                fr(at),
                en(at)
            ),
        )),
        _ => None,
    }
}

/// The hash of the browser's device cookie (AU-3), and a fresh cookie value to set when the
/// browser has none yet.
pub fn device_of(headers: &HeaderMap) -> Result<(String, Option<String>), ApiError> {
    Ok(
        match cookie(headers, DEVICE_COOKIE).filter(|v| v.len() >= 20 && v.len() <= 100) {
            Some(v) => (sha256_hex(v.as_bytes()), None),
            None => {
                let fresh = random_token()?;
                (sha256_hex(fresh.as_bytes()), Some(fresh))
            }
        },
    )
}

/// Appends `Set-Cookie: name=value; …` with the attributes every Carnet cookie has.
pub fn set_cookie(
    r: &mut Response,
    name: &str,
    value: &str,
    path: &str,
    max_age: i64,
) -> Result<(), ApiError> {
    let c = format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite=Lax");
    r.headers_mut().append(
        SET_COOKIE,
        HeaderValue::from_str(&c).map_err(|_| ApiError::internal())?,
    );
    Ok(())
}

/// Sets the session cookie and, for a browser seen for the first time, the device cookie.
pub fn set_login_cookies(r: &mut Response, token: &str, new_device: Option<&str>) -> Result<(), ApiError> {
    set_cookie(r, SESSION_COOKIE, token, "/", SESSION_ABSOLUTE_SECONDS)?;
    if let Some(d) = new_device {
        set_cookie(r, DEVICE_COOKIE, d, "/", 365 * 24 * 3600)?;
    }
    Ok(())
}

/// What the first login step (login + password) gives: the challenge the code answers, the
/// channel the code went by (`email`, `sms`, `totp`), and a device cookie to set for a
/// browser seen for the first time.
pub(crate) struct LoginStarted {
    pub challenge: uuid::Uuid,
    pub channel: &'static str,
    pub new_device_cookie: Option<String>,
}

/// Login step 1, shared by the JSON API and the web interface: rate limits, password check
/// (same work and same answer for an unknown login), lifecycle, then a code sent (or an
/// authenticator-app challenge).
pub(crate) async fn start_login(
    s: &AppState,
    peer: std::net::IpAddr,
    headers: &HeaderMap,
    login: &str,
    password: String,
    intent: LoginIntent,
) -> Result<LoginStarted, ApiError> {
    limit(s, &format!("login:ip:{peer}"), 900, 30).await?;
    let found = s.store.credentials_by_login(login).await?;
    // An account's wrong passwords lock out the clients it does not know, never the devices
    // it already logged in from: each of those keeps a budget of its own (OWASP's device
    // cookies), so an attacker anywhere cannot lock the owner out of their own phone.
    let (device_hash, new_device_cookie) = device_of(headers)?;
    let known = match &found {
        Some((holder, _)) if new_device_cookie.is_none() => {
            s.store.is_known_device(*holder, &device_hash).await?
        }
        _ => false,
    };
    let account = s.store.login_index(login).await?;
    let bucket = if known {
        format!("login:acct:{account}:device:{device_hash}")
    } else {
        format!("login:acct:{account}:unknown")
    };
    limit(s, &bucket, 900, 10).await?;
    let stored = found.as_ref().map(|(_, h)| h.clone());
    let ok =
        tokio::task::spawn_blocking(move || carnet_store::password::verify(&password, stored.as_deref()))
            .await
            .map_err(|_| ApiError::internal())?;
    let refused = || {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "bad_credentials",
            "identifiant ou mot de passe incorrect / wrong login or password",
        )
    };
    let Some((holder, _)) = found.filter(|_| ok) else {
        return Err(refused());
    };
    // Nobody logs into a space that is not open (closed, opposed, erased...), except the
    // holder of a closed space who asks to reopen it while it is still archived (LC-5), and
    // the holder of a suspended space who objects to its closure (LC-5b).
    let lifecycle = s.store.lifecycle(holder).await?;
    let now = s.store.now();
    let permitted = intent.event().is_some_and(|e| lifecycle.apply(e, now).is_ok());
    if !lifecycle.allows_login() && !permitted {
        // The right password to a suspended space: its holder is told, so that the login
        // page offers to object (LC-5b).
        if let Some(refusal) = suspended_refusal(lifecycle, now) {
            return Err(refusal);
        }
        // The right password to a closed space that may still reopen: only its holder gets
        // this far, and is told, so that the login page offers to reopen it (LC-5).
        if intent != LoginIntent::Reopen && lifecycle.apply(carnet_domain::Event::Reopen, now).is_ok() {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "closed",
                "cet espace est fermé ; il peut être rouvert (reopen) / this space is closed; it can be reopened (reopen)",
            ));
        }
        return Err(refused());
    }
    let (challenge, channel) = if s.store.totp_enabled(holder).await? {
        (s.store.create_totp_challenge(holder, &device_hash).await?, "totp")
    } else {
        let channel = if s.store.contact(holder).await?.email.is_some() {
            Channel::Email
        } else {
            Channel::Sms
        };
        let c = s
            .store
            .create_login_challenge(holder, &device_hash, channel)
            .await?;
        s.wake.notify_one();
        (c, channel.tag())
    };
    Ok(LoginStarted {
        challenge,
        channel,
        new_device_cookie,
    })
}

async fn login(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    headers: HeaderMap,
    ValidJson(body): ValidJson<Login>,
) -> Result<Response, ApiError> {
    let intent = LoginIntent::of(body.reopen, body.contest);
    let started = start_login(&s, peer.ip(), &headers, &body.login, body.password, intent).await?;
    let mut r = Json(json!({ "challenge": started.challenge, "channel": started.channel })).into_response();
    if let Some(d) = started.new_device_cookie {
        set_cookie(&mut r, DEVICE_COOKIE, &d, "/", 365 * 24 * 3600)?;
    }
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Verify {
    challenge: uuid::Uuid,
    code: String,
    /// Reopen the closed space on success (LC-5), as asked at the first step.
    #[serde(default)]
    reopen: bool,
    /// Object to the closure of the suspended space (LC-5b), as asked at the first step.
    #[serde(default)]
    contest: bool,
}

/// Login step 2, shared by the JSON API and the web interface: checks the code and opens a
/// session (reopening a closed space when asked, LC-5), or records the holder's objection to
/// the closure of their suspended space (LC-5b; no session: it stays suspended).
pub(crate) async fn finish_login(
    s: &AppState,
    peer: std::net::IpAddr,
    challenge: uuid::Uuid,
    code: &str,
    intent: LoginIntent,
) -> Result<LoginOutcome, ApiError> {
    limit(s, &format!("verify:ip:{peer}"), 900, 60).await?;
    let (holder, device) = s.store.verify_login_challenge(challenge, code).await?;
    let lifecycle = s.store.lifecycle(holder).await?;
    match (intent, lifecycle) {
        // Password and code proved who this is: the space reopens with all its content.
        (LoginIntent::Reopen, carnet_domain::Lifecycle::Closed { .. }) => {
            s.store.transition(holder, carnet_domain::Event::Reopen).await?;
        }
        (LoginIntent::ContestSuspension, carnet_domain::Lifecycle::Suspended { .. }) => {
            let at = s.store.contest_suspension(holder).await?;
            s.wake.notify_one(); // the receipt
            return Ok(LoginOutcome::SuspensionContested(at));
        }
        _ if lifecycle.allows_login() => {}
        _ => return Err(carnet_store::StoreError::Mismatch.into()),
    }
    let (token, session) = s.store.create_session(holder, &device).await?;
    s.wake.notify_one(); // a new-device notice may have been queued
    Ok(LoginOutcome::Session(token, session))
}

async fn verify(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    ValidJson(body): ValidJson<Verify>,
) -> Result<Response, ApiError> {
    let intent = LoginIntent::of(body.reopen, body.contest);
    let (token, session) = match finish_login(&s, peer.ip(), body.challenge, &body.code, intent).await? {
        LoginOutcome::Session(token, session) => (token, session),
        LoginOutcome::SuspensionContested(at) => {
            return Ok(Json(json!({ "suspension_contested_at": at.to_rfc3339() })).into_response());
        }
    };
    let holder = session.holder;
    let mut r =
        Json(json!({ "holder": holder, "expires_at": session.expires_at.to_rfc3339() })).into_response();
    set_login_cookies(&mut r, &token, None)?;
    Ok(r)
}

pub(crate) fn clear_session_cookie() -> HeaderValue {
    HeaderValue::from_static("__Host-carnet_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

async fn logout(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, ApiError> {
    if let Some(t) = cookie(&headers, SESSION_COOKIE) {
        s.store.revoke_session(t).await?;
    }
    let mut r = StatusCode::NO_CONTENT.into_response();
    r.headers_mut().append(SET_COOKIE, clear_session_cookie());
    Ok(r)
}

async fn logout_everywhere(
    State(s): State<AppState>,
    me: super::extract::Authenticated,
) -> Result<Response, ApiError> {
    let n = s.store.revoke_all_sessions(me.session.holder).await?;
    let mut r = Json(json!({ "revoked_sessions": n })).into_response();
    r.headers_mut().append(SET_COOKIE, clear_session_cookie());
    Ok(r)
}
