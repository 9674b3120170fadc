//! API errors: every error a caller can cause is a 4xx with a readable message; failures of
//! the infrastructure are 503 (retry later) or 507 (storage full); anything else is a 500
//! whose details go to the log (without health data), never to the caller.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use carnet_store::StoreError;
use serde::Serialize;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    /// `Retry-After` in seconds: a rate limit's wait; every 503 gets [`RETRY_AFTER_SECONDS`].
    pub retry_after: Option<i64>,
}

/// What a 503 (storage unavailable: a database failover, an outage) tells the caller to wait
/// before trying again: about the time a replicated database takes to promote a standby.
pub const RETRY_AFTER_SECONDS: i64 = 5;

/// `Retry-After` on a response: `seconds`, or [`RETRY_AFTER_SECONDS`] on a 503 without one.
pub fn set_retry_after(r: &mut Response, seconds: Option<i64>) {
    let seconds = match seconds {
        Some(s) => s.max(1),
        None if r.status() == StatusCode::SERVICE_UNAVAILABLE => RETRY_AFTER_SECONDS,
        None => return,
    };
    r.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from(seconds),
    );
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    message: &'a str,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or invalid credentials",
        )
    }

    /// The same answer for "does not exist" and "not yours" (AC-8, S-2).
    pub fn not_found() -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "no such resource")
    }

    pub fn too_many(retry_after_seconds: i64) -> Self {
        let e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "trop de tentatives ; réessayez dans {retry_after_seconds} s / too many attempts; retry in {retry_after_seconds} s"
            ),
        );
        Self {
            retry_after: Some(retry_after_seconds),
            ..e
        }
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; it has been logged",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(Body {
                error: self.code,
                message: &self.message,
            }),
        )
            .into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        set_retry_after(&mut r, self.retry_after);
        r
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound | StoreError::Shredded(_) => ApiError::not_found(),
            StoreError::Invalid(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m),
            e @ StoreError::Profile { .. } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", e.to_string())
            }
            StoreError::Mismatch => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "mismatch",
                "les informations saisies ne correspondent pas / the information given does not match",
            ),
            StoreError::LoginTaken => ApiError::new(
                StatusCode::CONFLICT,
                "login_taken",
                "cet identifiant est déjà pris / this login is already taken",
            ),
            StoreError::Minor => ApiError::new(
                StatusCode::FORBIDDEN,
                "minor",
                "l'espace d'un mineur est accessible à ses représentants légaux depuis leur propre espace \
                 jusqu'à ses 18 ans / a minor's space is reached by their legal representatives until 18",
            ),
            StoreError::Transition(t) => ApiError::new(StatusCode::CONFLICT, "not_allowed", t.to_string()),
            StoreError::Conflict => ApiError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the space was changed by another request; try again",
            ),
            StoreError::DiskFull => ApiError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "storage_full",
                "the server's storage is full; nothing was saved, try again later",
            ),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "storage unavailable");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "storage is temporarily unavailable; nothing was saved, try again later",
                )
            }
            e => {
                tracing::error!(error = %e, "storage failure");
                ApiError::internal()
            }
        }
    }
}

/// JSON body extraction errors as 400/415 with the parser's message.
impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        ApiError::new(r.status(), "bad_request", r.body_text())
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        ApiError::bad_request(r.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retry_after(r: &Response) -> Option<&str> {
        r.headers()
            .get(axum::http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
    }

    /// Issue 34: during a database failover a caller is told to come back, never given a 500.
    #[test]
    fn an_outage_is_a_503_that_says_when_to_retry() {
        for e in [
            StoreError::Database {
                op: "read",
                source: sqlx::Error::PoolTimedOut,
            },
            StoreError::Database {
                op: "write",
                source: sqlx::Error::Io(std::io::ErrorKind::ConnectionReset.into()),
            },
            StoreError::Unreachable {
                url: "postgres://db".into(),
                reason: "refused".into(),
            },
            StoreError::Commit("connection closed".into()),
        ] {
            let r = ApiError::from(e).into_response();
            assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(retry_after(&r), Some("5"));
        }
        let r = ApiError::from(StoreError::Database {
            op: "decode",
            source: sqlx::Error::RowNotFound,
        })
        .into_response();
        assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(retry_after(&r), None);
    }

    #[test]
    fn a_rate_limit_says_its_wait_in_the_header() {
        let r = ApiError::too_many(42).into_response();
        assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(retry_after(&r), Some("42"));
        assert_eq!(retry_after(&ApiError::not_found().into_response()), None);
    }
}
