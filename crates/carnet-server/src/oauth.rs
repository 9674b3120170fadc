//! The authorisation server for referenced apps (issue 9, CA-3): OAuth 2.0 authorisation code
//! with PKCE (S256 only) for public clients, SMART on FHIR v2 scopes, rotating refresh tokens,
//! revocation (RFC 7009), introspection (RFC 7662), discovery (SMART configuration, RFC 8414)
//! and ID tokens (EdDSA, keys at `/oauth/jwks`).
//!
//! The consent screen lives in `web::catalogue` (it is a page of the holder's space); this
//! module holds the protocol: the checks of an authorisation request (`check_authorize`), the
//! `authorization_code` and `refresh_token` grants of `/oauth/token` (the endpoint is shared
//! with SMART Backend Services in `smart.rs`), and the endpoints above.
//!
//! RFC 9700 defences, each tested in `carnet/tests/e2e/catalogue.rs`: exact redirect URI matching
//! (a wrong one is an error page, never a redirect); PKCE required, `plain` refused; a code is
//! single-use, bound to its client, redirect URI and verifier, and a replay revokes what it
//! gave; refresh tokens rotate and a reused one revokes its family; tokens are bound to their
//! client; the `iss` parameter in every authorisation response (RFC 9207, mix-up); `aud` must
//! name our FHIR base.

use std::collections::HashMap;

use axum::Router;
use axum::extract::{RawForm, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use base64::Engine;
use carnet_domain::access::Category;
use carnet_domain::catalogue::{self, Scope};
use carnet_store::catalogue::{CodeGrant, Redeem, Service, TokenKind};
use serde_json::{Value, json};

use crate::AppState;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/.well-known/smart-configuration", get(smart_configuration))
        .route("/.well-known/oauth-authorization-server", get(server_metadata))
        .route("/oauth/jwks", get(jwks))
        .route("/oauth/revoke", post(revoke))
        .route("/oauth/introspect", post(introspect))
}

/// This server's origin (issuer), from `public_url` or the request.
pub fn issuer(s: &AppState, headers: &HeaderMap) -> String {
    s.public_origin(headers)
        .unwrap_or_else(|| "http://localhost".to_string())
}

fn no_store(mut r: Response) -> Response {
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r.headers_mut()
        .insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    r
}

pub fn oauth_error(status: StatusCode, error: &str, description: &str) -> Response {
    no_store(
        (
            status,
            axum::Json(json!({ "error": error, "error_description": description })),
        )
            .into_response(),
    )
}

fn unavailable() -> Response {
    oauth_error(
        StatusCode::SERVICE_UNAVAILABLE,
        "temporarily_unavailable",
        "try again",
    )
}

const SCOPES_SUPPORTED: [&str; 8] = [
    "launch/patient",
    "openid",
    "fhirUser",
    "offline_access",
    "patient/*.cruds",
    "patient/DocumentReference.rs",
    "patient/Observation.cru",
    "patient/*.rs",
];

fn metadata(s: &AppState, headers: &HeaderMap) -> Value {
    let iss = issuer(s, headers);
    json!({
        "issuer": iss,
        "authorization_endpoint": format!("{iss}/oauth/authorize"),
        "token_endpoint": format!("{iss}/oauth/token"),
        "revocation_endpoint": format!("{iss}/oauth/revoke"),
        "introspection_endpoint": format!("{iss}/oauth/introspect"),
        "jwks_uri": format!("{iss}/oauth/jwks"),
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials"],
        "code_challenge_methods_supported": ["S256"],
        "token_endpoint_auth_methods_supported": ["none", "private_key_jwt"],
        "token_endpoint_auth_signing_alg_values_supported": ["ES256", "ES384"],
        "id_token_signing_alg_values_supported": ["EdDSA"],
        "authorization_response_iss_parameter_supported": true,
        "scopes_supported": SCOPES_SUPPORTED,
    })
}

async fn server_metadata(State(s): State<AppState>, headers: HeaderMap) -> Response {
    axum::Json(metadata(&s, &headers)).into_response()
}

async fn smart_configuration(State(s): State<AppState>, headers: HeaderMap) -> Response {
    let mut v = metadata(&s, &headers);
    v["capabilities"] = json!([
        "launch-standalone",
        "client-public",
        "client-confidential-asymmetric",
        "context-standalone-patient",
        "permission-patient",
        "permission-v1",
        "permission-v2",
        "permission-offline",
        "sso-openid-connect",
    ]);
    axum::Json(v).into_response()
}

async fn jwks(State(s): State<AppState>) -> Response {
    match s.store.id_token_jwk().await {
        Ok(k) => axum::Json(json!({ "keys": [k] })).into_response(),
        Err(_) => unavailable(),
    }
}

/// An authorisation request that passed every check.
#[derive(Clone, Debug)]
pub struct AuthRequest {
    pub service: Service,
    pub redirect_uri: String,
    pub state: Option<String>,
    pub challenge: String,
    /// The scopes asked, narrowed to the convention's categories.
    pub requested: Vec<Scope>,
    /// The categories the holder may tick: the convention's that the scopes can reach.
    pub offered: Vec<Category>,
    /// The raw `scope` as sent (kept in the consent form).
    pub scope: String,
    pub aud: Option<String>,
}

/// Why an authorisation request fails.
#[derive(Debug)]
pub enum AuthorizeError {
    /// Unknown client or a redirect URI not registered: shown on our page, never redirected.
    Page(&'static str, &'static str),
    /// Anything else: sent back to the client's redirect URI.
    Redirect(String),
}

/// `uri` with query parameters added (RFC 6749 3.1.2: keep the registered query).
pub fn redirect_with(uri: &str, pairs: &[(&str, &str)]) -> String {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        q.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", q.finish())
}

/// An error sent to the client's redirect URI, with `state` and `iss`.
pub fn error_redirect(iss: &str, uri: &str, state: Option<&str>, error: &str, description: &str) -> String {
    let mut pairs = vec![("error", error), ("error_description", description), ("iss", iss)];
    if let Some(st) = state {
        pairs.push(("state", st));
    }
    redirect_with(uri, &pairs)
}

fn pkce_value_ok(v: &str) -> bool {
    (43..=128).contains(&v.len())
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b))
}

/// Checks an authorisation request (`GET` query or the consent form's hidden fields).
pub async fn check_authorize(
    s: &AppState,
    headers: &HeaderMap,
    p: &HashMap<String, String>,
) -> Result<AuthRequest, AuthorizeError> {
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let client_id = get("client_id").ok_or(AuthorizeError::Page(
        "La demande ne nomme pas d'application (client_id).",
        "The request names no application (client_id).",
    ))?;
    let service = match s.store.service(client_id).await {
        Ok(Some(svc)) if svc.record.listed(s.store.now()) => svc,
        Ok(_) => {
            return Err(AuthorizeError::Page(
                "Cette application n'est pas référencée dans le catalogue (ou ne l'est plus).",
                "This application is not (or no longer) listed in the catalogue.",
            ));
        }
        Err(_) => {
            return Err(AuthorizeError::Page(
                "Le service est momentanément indisponible : réessayez.",
                "The service is unavailable for a moment: try again.",
            ));
        }
    };
    // RFC 9700 4.1.1: the redirect URI is compared exactly with a registered one, and a wrong
    // one is never redirected to.
    let redirect_uri = get("redirect_uri")
        .filter(|u| service.record.application.redirect_uris.iter().any(|r| r == u))
        .ok_or(AuthorizeError::Page(
            "L'adresse de retour de l'application ne correspond pas à celle enregistrée : la demande est refusée.",
            "The application's return address does not match the registered one: the request is refused.",
        ))?
        .to_string();
    let state = get("state").map(str::to_string);
    let iss = issuer(s, headers);
    let fail = |error: &str, description: &str| {
        AuthorizeError::Redirect(error_redirect(
            &iss,
            &redirect_uri,
            state.as_deref(),
            error,
            description,
        ))
    };
    if get("response_type") != Some("code") {
        return Err(fail("unsupported_response_type", "response_type must be code"));
    }
    if get("code_challenge_method") != Some("S256") {
        return Err(fail(
            "invalid_request",
            "PKCE is required with code_challenge_method S256",
        ));
    }
    let challenge = get("code_challenge")
        .filter(|c| c.len() == 43 && pkce_value_ok(c))
        .ok_or_else(|| {
            fail(
                "invalid_request",
                "code_challenge: the base64url SHA-256 of the verifier",
            )
        })?
        .to_string();
    let aud = get("aud").map(str::to_string);
    if let Some(a) = &aud
        && a.trim_end_matches('/') != format!("{iss}/fhir")
    {
        return Err(fail("invalid_request", "aud must be this server's FHIR base URL"));
    }
    let scope = get("scope").unwrap_or("").to_string();
    let convention = service
        .record
        .convention
        .clone()
        .map(|c| c.categories)
        .unwrap_or_default();
    let requested = catalogue::narrow(&catalogue::parse_scopes(&scope), &convention);
    let offered: Vec<Category> = convention
        .iter()
        .copied()
        .filter(|c| {
            requested.iter().any(|sc| match sc {
                Scope::Patient { resource, .. } => catalogue::resource_categories(resource).contains(c),
                _ => false,
            })
        })
        .collect();
    if offered.is_empty() {
        return Err(fail(
            "invalid_scope",
            "no requested scope falls within the service's convention",
        ));
    }
    Ok(AuthRequest {
        service,
        redirect_uri,
        state,
        challenge,
        requested,
        offered,
        scope,
        aud,
    })
}

/// After consent: the app's grant in the holder's directory, then a code sent back.
pub async fn approve(
    s: &AppState,
    headers: &HeaderMap,
    req: &AuthRequest,
    side: &carnet_store::space::HolderSide,
    subject: carnet_domain::HolderId,
    ticked: &[Category],
) -> Result<String, carnet_store::StoreError> {
    let holder = side.holder();
    let granted = side.connect_app(&req.service, ticked).await?;
    let scopes = catalogue::narrow(&req.requested, &granted);
    let code = s
        .store
        .issue_code(&CodeGrant {
            client_id: req.service.client_id.clone(),
            holder,
            subject,
            redirect_uri: req.redirect_uri.clone(),
            challenge: req.challenge.clone(),
            scope: catalogue::scope_text(&scopes),
        })
        .await?;
    let iss = issuer(s, headers);
    let mut pairs = vec![("code", code.as_str()), ("iss", iss.as_str())];
    if let Some(st) = &req.state {
        pairs.push(("state", st));
    }
    Ok(redirect_with(&req.redirect_uri, &pairs))
}

fn token_response(iss: &str, t: carnet_store::catalogue::IssuedTokens, client_id: &str) -> Response {
    token_response_with(iss, t, client_id, None)
}

fn token_response_with(
    iss: &str,
    t: carnet_store::catalogue::IssuedTokens,
    client_id: &str,
    id_token: Option<String>,
) -> Response {
    let mut v = json!({
        "access_token": t.access_token,
        "token_type": "Bearer",
        "expires_in": t.expires_in,
        "scope": t.scope,
        "patient": t.holder.to_string(),
        "client_id": client_id,
        "aud": format!("{iss}/fhir"),
    });
    if let Some(r) = t.refresh_token {
        v["refresh_token"] = json!(r);
    }
    if let Some(i) = id_token {
        v["id_token"] = json!(i);
    }
    no_store(axum::Json(v).into_response())
}

/// `grant_type=authorization_code` (public client + PKCE).
pub async fn token_code(s: &AppState, headers: &HeaderMap, p: &HashMap<String, String>) -> Response {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let (client_id, code, redirect_uri, verifier) = (
        get("client_id"),
        get("code"),
        get("redirect_uri"),
        get("code_verifier"),
    );
    if client_id.is_empty() || code.is_empty() || redirect_uri.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id, code and redirect_uri are required",
        );
    }
    if !pkce_value_ok(verifier) {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "code_verifier: 43 to 128 unreserved characters (PKCE)",
        );
    }
    let invalid = |why: &str| oauth_error(StatusCode::BAD_REQUEST, "invalid_grant", why);
    // The code is used up by this attempt whatever follows (single use).
    let (grant, family) = match s.store.redeem_code(code).await {
        Ok(Ok(g)) => g,
        Ok(Err(Redeem::Replayed)) => {
            return invalid("this code was already used: the tokens it gave are revoked");
        }
        Ok(Err(Redeem::Invalid)) => return invalid("unknown or expired code"),
        Err(_) => return unavailable(),
    };
    if grant.client_id != client_id {
        return invalid("this code was issued to another client");
    }
    if grant.redirect_uri != redirect_uri {
        return invalid("redirect_uri differs from the authorisation request's");
    }
    let computed = B64.encode(carnet_store::crypto::sha256(verifier.as_bytes()));
    if aws_lc_rs::constant_time::verify_slices_are_equal(computed.as_bytes(), grant.challenge.as_bytes())
        .is_err()
    {
        return invalid("code_verifier does not match the code_challenge (PKCE)");
    }
    match s.store.service(client_id).await {
        Ok(Some(svc)) if svc.record.listed(s.store.now()) => {}
        Ok(_) => return invalid("the service is no longer listed"),
        Err(_) => return unavailable(),
    }
    let scopes = catalogue::parse_scopes(&grant.scope);
    let offline = scopes.contains(&Scope::OfflineAccess);
    let issued = match s
        .store
        .issue_app_tokens(
            client_id,
            grant.holder,
            grant.subject,
            &grant.scope,
            &family,
            offline,
        )
        .await
    {
        Ok(t) => t,
        Err(_) => return unavailable(),
    };
    let iss = issuer(s, headers);
    let id_token = if scopes.contains(&Scope::OpenId) {
        let now = s.store.now().unix_seconds();
        let mut claims = json!({
            "iss": iss, "sub": grant.subject.to_string(), "aud": client_id,
            "iat": now, "exp": now + carnet_store::catalogue::ACCESS_TOKEN_SECONDS,
        });
        if scopes.contains(&Scope::FhirUser) {
            claims["fhirUser"] = json!(format!("{iss}/fhir/Patient/{}", grant.subject));
        }
        match s.store.sign_id_token(&claims).await {
            Ok(t) => Some(t),
            Err(_) => return unavailable(),
        }
    } else {
        None
    };
    token_response_with(&iss, issued, client_id, id_token)
}

/// `grant_type=refresh_token`: rotation; a reused refresh token revokes its family.
pub async fn token_refresh(s: &AppState, headers: &HeaderMap, p: &HashMap<String, String>) -> Response {
    let get = |k: &str| p.get(k).map(String::as_str).unwrap_or("");
    let (client_id, refresh) = (get("client_id"), get("refresh_token"));
    if client_id.is_empty() || refresh.is_empty() {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_id and refresh_token are required",
        );
    }
    match s.store.rotate_refresh_token(refresh, client_id).await {
        Ok(Ok(t)) => token_response(&issuer(s, headers), t, client_id),
        Ok(Err(Redeem::Replayed)) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "this refresh token was already used: every token of this authorisation is revoked",
        ),
        Ok(Err(Redeem::Invalid)) => oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_grant",
            "refresh token not valid",
        ),
        Err(_) => unavailable(),
    }
}

fn form(raw: &[u8]) -> HashMap<String, String> {
    url::form_urlencoded::parse(raw).into_owned().collect()
}

/// RFC 7009: a client revokes one of its tokens. Always 200 (unknown tokens included).
async fn revoke(State(s): State<AppState>, RawForm(raw): RawForm) -> Response {
    let p = form(&raw);
    let (Some(token), Some(client_id)) = (p.get("token"), p.get("client_id")) else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "token and client_id are required",
        );
    };
    match s.store.revoke_app_token(token, client_id).await {
        Ok(()) => no_store(StatusCode::OK.into_response()),
        Err(_) => unavailable(),
    }
}

/// RFC 7662: whether a token is live, for the client it was issued to (form `client_id`) or
/// for the operators (operator bearer token). Anyone else learns only `active: false`.
async fn introspect(State(s): State<AppState>, headers: HeaderMap, RawForm(raw): RawForm) -> Response {
    let p = form(&raw);
    let Some(token) = p.get("token") else {
        return oauth_error(StatusCode::BAD_REQUEST, "invalid_request", "token is required");
    };
    let operator = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .is_some_and(|t| s.is_operator_token(t.trim()));
    let inactive = || no_store(axum::Json(json!({ "active": false })).into_response());
    let live = match s.store.live_app_token(token).await {
        Ok(Some(t)) => t,
        Ok(None) => return inactive(),
        Err(_) => return unavailable(),
    };
    if !operator && p.get("client_id") != Some(&live.client_id) {
        return inactive();
    }
    // The grant must still be in the holder's directory (CA-3: revoked there, the token dies).
    match s.gate.app_granted(live.holder, &live.client_id).await {
        Ok(true) => {}
        Ok(false) => return inactive(),
        Err(_) => return unavailable(),
    }
    let iss = issuer(&s, &headers);
    no_store(
        axum::Json(json!({
            "active": true,
            "scope": live.scope,
            "client_id": live.client_id,
            "sub": live.subject.to_string(),
            "patient": live.holder.to_string(),
            "token_type": if live.kind == TokenKind::Refresh { "refresh_token" } else { "access_token" },
            "iat": live.issued_at / 1_000_000,
            "exp": live.expires_at / 1_000_000,
            "iss": iss,
            "aud": format!("{iss}/fhir"),
        }))
        .into_response(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_keep_the_registered_query() {
        assert_eq!(
            redirect_with("https://a.example/cb?x=1", &[("code", "a b"), ("state", "s&t")]),
            "https://a.example/cb?x=1&code=a+b&state=s%26t"
        );
        assert_eq!(
            error_redirect(
                "https://carnet",
                "https://a.example/cb",
                None,
                "access_denied",
                "no"
            ),
            "https://a.example/cb?error=access_denied&error_description=no&iss=https%3A%2F%2Fcarnet"
        );
    }

    #[test]
    fn pkce_values_are_unreserved_43_to_128() {
        assert!(pkce_value_ok(&"a".repeat(43)));
        assert!(!pkce_value_ok(&"a".repeat(42)));
        assert!(!pkce_value_ok(&"a".repeat(129)));
        assert!(!pkce_value_ok(&format!("{}+", "a".repeat(43))));
    }
}
