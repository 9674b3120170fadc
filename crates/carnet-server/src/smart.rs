//! SMART Backend Services for establishment systems (issue 6, item 4): a registered client
//! authenticates with a JWT signed by its private key (`client_assertion`, RFC 7523) and gets
//! a short-lived bearer token that acts as `Actor::Establishment` (its FINESS) at the gate.
//!
//! The assertion's checks: header `alg` ES256 or ES384 matching the client's JWK (EC P-256 /
//! P-384), signature over `header.payload` (JWS raw r‖s), `iss` = `sub` = the client id, `aud`
//! = our token URL, `exp` in the future and at most 5 minutes away, a `jti` never used before.

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED, ECDSA_P384_SHA384_FIXED, UnparsedPublicKey};
use base64::Engine;
use serde_json::Value;

const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AssertionError {
    #[error("malformed assertion: {0}")]
    Malformed(&'static str),
    #[error("the assertion's {0} is not accepted")]
    Refused(&'static str),
}

/// What a verified assertion says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    pub client_id: String,
    pub jti: String,
    /// Unix seconds.
    pub exp: i64,
}

fn part(s: &str) -> Result<Vec<u8>, AssertionError> {
    B64.decode(s).map_err(|_| AssertionError::Malformed("base64url"))
}

/// The client id an assertion claims (`iss`), read before the key is known.
pub fn claimed_client(jwt: &str) -> Result<String, AssertionError> {
    let payload = jwt
        .split('.')
        .nth(1)
        .ok_or(AssertionError::Malformed("three parts"))?;
    let v: Value =
        serde_json::from_slice(&part(payload)?).map_err(|_| AssertionError::Malformed("payload"))?;
    v["iss"]
        .as_str()
        .map(str::to_string)
        .ok_or(AssertionError::Malformed("iss"))
}

/// A JWK (EC) as (JWS alg, uncompressed point).
pub fn ec_key(jwk: &Value) -> Result<(&'static str, Vec<u8>), AssertionError> {
    if jwk["kty"] != "EC" {
        return Err(AssertionError::Refused("key type (EC only)"));
    }
    let (alg, len) = match jwk["crv"].as_str() {
        Some("P-256") => ("ES256", 32),
        Some("P-384") => ("ES384", 48),
        _ => return Err(AssertionError::Refused("curve (P-256 or P-384)")),
    };
    let x = part(jwk["x"].as_str().ok_or(AssertionError::Malformed("x"))?)?;
    let y = part(jwk["y"].as_str().ok_or(AssertionError::Malformed("y"))?)?;
    if x.len() != len || y.len() != len {
        return Err(AssertionError::Malformed("point"));
    }
    let mut p = vec![0x04];
    p.extend(x);
    p.extend(y);
    Ok((alg, p))
}

/// Verifies an assertion with the client's JWK, for `client_id`, `audience` (our token URL),
/// at `now` (Unix seconds).
pub fn verify(
    jwt: &str,
    jwk: &Value,
    client_id: &str,
    audience: &str,
    now: i64,
) -> Result<Claims, AssertionError> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(AssertionError::Malformed("three parts"));
    };
    let header: Value = serde_json::from_slice(&part(h)?).map_err(|_| AssertionError::Malformed("header"))?;
    let (alg, point) = ec_key(jwk)?;
    if header["alg"] != alg {
        return Err(AssertionError::Refused("alg"));
    }
    let algorithm = if alg == "ES256" {
        &ECDSA_P256_SHA256_FIXED
    } else {
        &ECDSA_P384_SHA384_FIXED
    };
    UnparsedPublicKey::new(algorithm, &point)
        .verify(format!("{h}.{p}").as_bytes(), &part(sig)?)
        .map_err(|_| AssertionError::Refused("signature"))?;
    let claims: Value =
        serde_json::from_slice(&part(p)?).map_err(|_| AssertionError::Malformed("payload"))?;
    if claims["iss"] != client_id || claims["sub"] != client_id {
        return Err(AssertionError::Refused("iss/sub"));
    }
    let aud_ok = match &claims["aud"] {
        Value::String(a) => a == audience,
        Value::Array(a) => a.iter().any(|x| x == audience),
        _ => false,
    };
    if !aud_ok {
        return Err(AssertionError::Refused("aud"));
    }
    let exp = claims["exp"].as_i64().ok_or(AssertionError::Malformed("exp"))?;
    if exp <= now || exp > now + 300 {
        return Err(AssertionError::Refused("exp (in the future, at most 5 minutes)"));
    }
    let jti = claims["jti"]
        .as_str()
        .filter(|j| !j.is_empty() && j.len() <= 200)
        .ok_or(AssertionError::Malformed("jti"))?;
    Ok(Claims {
        client_id: client_id.to_string(),
        jti: jti.to_string(),
        exp,
    })
}

/// `POST /oauth/token` (client credentials with a JWT assertion) and the operator's client
/// registration `POST /api/v1/operator/system-clients`.
pub fn routes() -> axum::Router<crate::AppState> {
    axum::Router::new()
        .route("/oauth/token", axum::routing::post(token))
        .route("/api/v1/operator/system-clients", axum::routing::post(register))
}

/// Our token URL (the assertions' audience): `public_url` or the request's host.
fn token_url(s: &crate::AppState, headers: &axum::http::HeaderMap) -> String {
    let origin = s
        .public_origin(headers)
        .unwrap_or_else(|| "http://localhost".to_string());
    format!("{origin}/oauth/token")
}

fn oauth_error(status: axum::http::StatusCode, error: &str, description: &str) -> axum::response::Response {
    use axum::response::IntoResponse;
    (
        status,
        axum::Json(serde_json::json!({ "error": error, "error_description": description })),
    )
        .into_response()
}

async fn token(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
    headers: axum::http::HeaderMap,
    axum::extract::RawForm(form): axum::extract::RawForm,
) -> axum::response::Response {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    let params: std::collections::HashMap<String, String> =
        url::form_urlencoded::parse(&form).into_owned().collect();
    match params.get("grant_type").map(String::as_str) {
        Some("client_credentials") => {}
        // Apps (issue 9): authorisation code with PKCE, refresh-token rotation.
        Some("authorization_code") => return crate::oauth::token_code(&s, &headers, &params).await,
        Some("refresh_token") => return crate::oauth::token_refresh(&s, &headers, &params).await,
        _ => {
            return oauth_error(
                StatusCode::BAD_REQUEST,
                "unsupported_grant_type",
                "client_credentials, authorization_code or refresh_token",
            );
        }
    }
    if params.get("client_assertion_type").map(String::as_str)
        != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "a JWT client assertion is required",
        );
    }
    let Some(jwt) = params.get("client_assertion") else {
        return oauth_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            "client_assertion is missing",
        );
    };
    let refused = |why: &str| oauth_error(StatusCode::UNAUTHORIZED, "invalid_client", why);
    let Ok(client_id) = claimed_client(jwt) else {
        return refused("the assertion could not be read");
    };
    let client = match s.store.system_client(&client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return refused("unknown client"),
        Err(_) => {
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again",
            );
        }
    };
    let Ok(jwk) = serde_json::from_str::<Value>(&client.jwk) else {
        return refused("the client's key is unusable");
    };
    let now = s.store.now().unix_seconds();
    let claims = match verify(jwt, &jwk, &client.client_id, &token_url(&s, &headers), now) {
        Ok(c) => c,
        Err(e) => return refused(&e.to_string()),
    };
    match s
        .store
        .use_assertion(&claims.client_id, &claims.jti, claims.exp)
        .await
    {
        Ok(true) => {}
        Ok(false) => return refused("this assertion was already used (jti)"),
        Err(_) => {
            return oauth_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "temporarily_unavailable",
                "try again",
            );
        }
    }
    match s.store.issue_system_token(&client).await {
        Ok(t) => axum::Json(serde_json::json!({
            "access_token": t,
            "token_type": "bearer",
            "expires_in": carnet_store::clients::SYSTEM_TOKEN_SECONDS,
            "scope": params.get("scope").cloned().unwrap_or_else(|| "system/*.read".into()),
        }))
        .into_response(),
        Err(_) => oauth_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "try again",
        ),
    }
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct Registration {
    client_id: String,
    finess: String,
    name: String,
    jwk: Value,
}

/// Operators register an establishment's system with its public key (JWK, EC P-256/P-384).
async fn register(
    axum::extract::State(s): axum::extract::State<crate::AppState>,
    _op: crate::api::Operator,
    crate::api::ValidJson(r): crate::api::ValidJson<Registration>,
) -> Result<axum::http::StatusCode, crate::ApiError> {
    if r.client_id.is_empty() || r.client_id.len() > 100 || r.name.trim().is_empty() {
        return Err(crate::ApiError::bad_request(
            "client_id (1..100 characters) and name are required",
        ));
    }
    if r.finess.len() != 9 || !r.finess.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(crate::ApiError::bad_request("finess: 9 characters"));
    }
    ec_key(&r.jwk).map_err(|e| crate::ApiError::bad_request(format!("jwk: {e}")))?;
    s.store
        .register_system_client(&carnet_store::clients::SystemClient {
            client_id: r.client_id,
            finess: r.finess,
            name: r.name,
            jwk: r.jwk.to_string(),
        })
        .await?;
    Ok(axum::http::StatusCode::CREATED)
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use serde_json::json;

    fn signed(kp: &EcdsaKeyPair, header: Value, claims: Value) -> String {
        let h = B64.encode(header.to_string());
        let p = B64.encode(claims.to_string());
        let sig = kp
            .sign(&SystemRandom::new(), format!("{h}.{p}").as_bytes())
            .unwrap();
        format!("{h}.{p}.{}", B64.encode(sig.as_ref()))
    }

    #[test]
    fn assertions_are_checked() {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        let kp = EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
        let pt = kp.public_key().as_ref();
        let jwk =
            json!({"kty": "EC", "crv": "P-384", "x": B64.encode(&pt[1..49]), "y": B64.encode(&pt[49..])});
        let aud = "https://carnet.example/oauth/token";
        let ok = json!({"iss": "lab", "sub": "lab", "aud": aud, "exp": 1_000_100, "jti": "a1"});
        let jwt = signed(&kp, json!({"alg": "ES384", "typ": "JWT"}), ok.clone());
        assert_eq!(claimed_client(&jwt).unwrap(), "lab");
        assert_eq!(verify(&jwt, &jwk, "lab", aud, 1_000_000).unwrap().jti, "a1");
        assert_eq!(
            verify(&jwt, &jwk, "lab", "https://other/oauth/token", 1_000_000),
            Err(AssertionError::Refused("aud"))
        );
        assert!(verify(&jwt, &jwk, "lab", aud, 1_000_200).is_err(), "expired");
        assert!(verify(&jwt, &jwk, "other", aud, 1_000_000).is_err());
        let far = json!({"iss": "lab", "sub": "lab", "aud": aud, "exp": 1_009_000, "jti": "a2"});
        assert!(
            verify(
                &signed(&kp, json!({"alg": "ES384"}), far),
                &jwk,
                "lab",
                aud,
                1_000_000
            )
            .is_err(),
            "too long-lived"
        );
        let wrong_alg = signed(&kp, json!({"alg": "ES256"}), ok.clone());
        assert_eq!(
            verify(&wrong_alg, &jwk, "lab", aud, 1_000_000),
            Err(AssertionError::Refused("alg"))
        );
        let mut tampered = jwt.clone();
        tampered.insert(tampered.find('.').unwrap() + 2, 'A');
        assert!(verify(&tampered, &jwk, "lab", aud, 1_000_000).is_err());
    }
}
