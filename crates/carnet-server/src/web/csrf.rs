//! Anti-CSRF tokens: every POST form carries one, checked before anything else.

use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use carnet_store::crypto::{random_token, sha256_hex};

use crate::api::auth::{cookie, set_cookie};
use crate::{ApiError, AppState};

use super::*;

/// A form posted by someone not logged in (login, activation, recovery, renewal): its body
/// parsed and its pre-session token checked before the handler runs (a refusal is the page's
/// 403 in words); `csrf` is the token for the page when it is shown again.
pub struct PreSessionForm {
    pub form: Form,
    pub secret: String,
    pub csrf: String,
}

impl axum::extract::FromRequest<AppState> for PreSessionForm {
    type Rejection = WebError;

    async fn from_request(req: axum::extract::Request, s: &AppState) -> Result<Self, WebError> {
        let headers = req.headers().clone();
        let body = axum::body::Bytes::from_request(req, s).await.map_err(|e| {
            WebError::new(
                e.status(),
                "Le formulaire n'a pas pu être lu : rechargez la page et recommencez.",
            )
        })?;
        let form = Form::parse(&body);
        let secret = check_pre_session(s, &headers, &form).await?;
        let csrf = csrf_token(s, &secret).await?;
        Ok(Self { form, secret, csrf })
    }
}

/// The anti-CSRF token of a session (or pre-session) secret: HMAC under the vault's `web-csrf`
/// service key of the secret's SHA-256 (so the token never reveals the secret).
pub async fn csrf_token(s: &AppState, secret: &str) -> Result<String, ApiError> {
    let input = format!("carnet-web-csrf/1\n{}", sha256_hex(secret.as_bytes()));
    Ok(s.store.csrf_mac(input.as_bytes()).await?)
}

/// Checks the token of a POSTed form against `secret`, in constant time.
pub async fn check_csrf(s: &AppState, secret: &str, form: &Form) -> Result<(), WebError> {
    let expected = csrf_token(s, secret).await?;
    let presented = form.get(CSRF_FIELD);
    if aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), expected.as_bytes()).is_ok() {
        Ok(())
    } else {
        Err(WebError::csrf())
    }
}

/// The hidden field of a form.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{}\">",
        esc(token)
    )
}

/// The pre-session secret of an anonymous browser, and a fresh cookie value when it has none.
pub fn pre_session(headers: &HeaderMap) -> Result<(String, Option<String>), ApiError> {
    match cookie(headers, PRE_SESSION_COOKIE).filter(|v| v.len() >= 20 && v.len() <= 100) {
        Some(v) => Ok((v.to_string(), None)),
        None => {
            let fresh = random_token()?;
            Ok((fresh.clone(), Some(fresh)))
        }
    }
}

/// Checks an anonymous form: the pre-session cookie must be there and match the token.
pub async fn check_pre_session(s: &AppState, headers: &HeaderMap, form: &Form) -> Result<String, WebError> {
    let secret = cookie(headers, PRE_SESSION_COOKIE)
        .filter(|v| v.len() >= 20 && v.len() <= 100)
        .ok_or_else(|| {
            WebError::new(
                StatusCode::FORBIDDEN,
                "Votre navigateur n'a pas renvoyé le cookie de sécurité de ce formulaire : \
                 autorisez les cookies de ce site, rechargez la page et recommencez.",
            )
        })?
        .to_string();
    check_csrf(s, &secret, form).await?;
    Ok(secret)
}

/// Sets the pre-session cookie on a response when the browser had none.
pub fn set_pre_session(r: &mut Response, fresh: Option<String>) -> Result<(), ApiError> {
    if let Some(v) = fresh {
        set_cookie(r, PRE_SESSION_COOKIE, &v, "/", 3600)?;
    }
    Ok(())
}
