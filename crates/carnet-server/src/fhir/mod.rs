//! The FHIR R4 endpoint (issue 6, IO-1), first slice: `/fhir/metadata`, reads and
//! patient-scoped searches of Patient, DocumentReference + Binary, Observation (measurements),
//! the profile's resources (Condition, AllergyIntolerance, MedicationStatement, Immunization,
//! Procedure, FamilyMemberHistory, QuestionnaireResponse, RelatedPerson, Consent), AuditEvent
//! (the holder's traces), ExplanationOfBenefit (reimbursements, RB-1), and creation of Observations. A view over the domain: every request
//! goes through the gate as the caller (bearer token of a professional's session, or a
//! holder's session), and every error is an `OperationOutcome` with its status. A resource
//! the caller may not see answers exactly like one that does not exist (404, AC-8), in reads,
//! searches and paging alike: results are filtered by the gate before counting and paging.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::access::{Actor, Context};
use carnet_domain::profile::{MEASURES, MeasurementInput};
use carnet_domain::{DocumentId, HolderId, Timestamp};
use carnet_fhir::resources::{self as r, item_id, split_id};
use carnet_store::StoreError;
use carnet_store::documents::DocumentFilter;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::auth_cookie_session;

mod bundle;
mod caller;
mod capability;
mod params;
mod read;
mod rtype;
mod search;
mod write;

use bundle::*;
use caller::*;
use capability::*;
use params::*;
use read::*;
use rtype::*;
use search::*;
use write::*;

const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// A FHIR error: its HTTP status and the OperationOutcome's issue (code, diagnostics).
pub struct FhirError {
    status: StatusCode,
    /// The code (`not-found`, `invalid`, `forbidden`…).
    code: &'static str,
    diagnostics: String,
}

impl FhirError {
    fn new(status: StatusCode, code: &'static str, diagnostics: String) -> Self {
        FhirError {
            status,
            code,
            diagnostics,
        }
    }
    fn not_found() -> Self {
        FhirError::new(StatusCode::NOT_FOUND, "not-found", "no such resource".into())
    }
    fn invalid(msg: impl Into<String>) -> Self {
        FhirError::new(StatusCode::BAD_REQUEST, "invalid", msg.into())
    }
    fn unprocessable(msg: impl Into<String>) -> Self {
        FhirError::new(StatusCode::UNPROCESSABLE_ENTITY, "processing", msg.into())
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let body = r::operation_outcome("error", self.code, &self.diagnostics);
        let mut r = (self.status, [(header::CONTENT_TYPE, FHIR_JSON)], body.to_string()).into_response();
        crate::error::set_retry_after(&mut r, None);
        r
    }
}

impl From<StoreError> for FhirError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => FhirError::not_found(),
            StoreError::Invalid(m) => FhirError::unprocessable(m),
            e @ StoreError::Profile { .. } => FhirError::unprocessable(e.to_string()),
            StoreError::Conflict => FhirError::new(
                StatusCode::CONFLICT,
                "conflict",
                "the resource changed meanwhile".into(),
            ),
            StoreError::DiskFull => FhirError::new(
                StatusCode::INSUFFICIENT_STORAGE,
                "transient",
                "the server's storage is full; nothing was saved, try again later".into(),
            ),
            e if e.is_unavailable() => {
                tracing::warn!(error = %e, "storage unavailable");
                FhirError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "transient",
                    "storage is temporarily unavailable; nothing was saved, try again later".into(),
                )
            }
            other => {
                tracing::error!(error = %other, "FHIR request failed");
                FhirError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    "internal error".into(),
                )
            }
        }
    }
}

fn respond(status: StatusCode, v: &Value, pretty: bool) -> Response {
    let body = if pretty {
        serde_json::to_string_pretty(v).unwrap_or_default()
    } else {
        v.to_string()
    };
    (status, [(header::CONTENT_TYPE, FHIR_JSON)], body).into_response()
}

/// This server's FHIR base (S-21: the configured origin, never one a request made up).
fn base_url(s: &AppState, headers: &HeaderMap) -> String {
    format!("{}/fhir", s.settings.origin_for(headers))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/fhir", axum::routing::post(batch))
        // Clients that join the base and an empty path post to `/fhir/`.
        .route("/fhir/", axum::routing::post(batch))
        .route("/fhir/metadata", get(metadata))
        .route("/fhir/{rtype}", get(search).post(create))
        .route("/fhir/{rtype}/{id}", get(read).put(update).delete(remove))
        .route("/fhir/{rtype}/{id}/{op}", get(instance_op))
        .route("/fhir/{rtype}/{id}/_history/{vid}", get(vread))
}

/// What every operation of one FHIR request works with: the server, the authenticated
/// caller and the base URL the client used (for `fullUrl`s and references).
pub(super) struct Fhir<'a> {
    pub(super) s: &'a AppState,
    pub(super) c: &'a FhirCaller,
    pub(super) base: String,
}

impl<'a> Fhir<'a> {
    fn new(s: &'a AppState, c: &'a FhirCaller, headers: &HeaderMap) -> Self {
        Self {
            s,
            c,
            base: base_url(s, headers),
        }
    }
}

#[cfg(test)]
mod fuzz {
    //! Search parameters from any client (issue 10, item 5): parsing never panics, date
    //! ranges are well ordered, scope checks answer for any path.
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn search_parameters_never_panic(
            q in proptest::collection::vec(
                (proptest::sample::select(vec!["patient", "date", "_count", "_page", "_sort", "_format",
                    "_elements", "_summary", "_include", "_revinclude", "code", "category", "_lastUpdated", "x"]),
                 "[0-9a-zA-Z:|=&%\\-+.TZ ]{0,30}"), 0..6),
            dates in proptest::collection::vec("(eq|ne|lt|gt|le|ge|sa|eb|ap)?[0-9]{0,4}(-[0-9]{1,2}){0,2}(T[0-9:]{0,8}(Z|[+-][0-9:]{0,5})?)?", 0..3),
        ) {
            let raw: String = q.iter().map(|(k, v)| format!("{k}={}", url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>())).collect::<Vec<_>>().join("&");
            if let Ok(p) = Params::parse(Some(raw)) {
                let _ = p.pretty();
                let _ = p.only(&["patient", "date"]);
                let _ = summary_count(&p);
            }
            // One date gives an ordered range; several are ANDed (FHIR), and disjoint ones give
            // an empty (inverted) range that matches nothing.
            if let Ok(Some((from, to))) = date_range(Some(&dates)) {
                prop_assert!(from <= to || dates.len() > 1, "{:?} gave {:?}..{:?}", dates, from, to);
            }
            for d in &dates {
                let _ = parse_instant(d);
            }
        }

        #[test]
        fn app_scope_checks_never_panic(
            path in proptest::collection::vec("[A-Za-z$_*]{0,14}", 0..5),
            method in proptest::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]),
            scope in "(patient/[A-Za-z*]{1,12}\\.[cruds]{1,5} ?){0,4}",
        ) {
            let scopes = carnet_domain::catalogue::parse_scopes(&scope);
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            let _ = app_refusal(&scopes, method, &segments, Some("_include=x&_revinclude=Observation:patient"), true);
            if scopes.is_empty() && !segments.is_empty() && segments != ["metadata"] {
                prop_assert!(app_refusal(&scopes, method, &segments, None, false).is_some());
            }
        }
    }
}

#[cfg(test)]
mod errors {
    use super::*;

    /// Issue 34: a FHIR client meeting a database failover gets a 503 `transient`
    /// OperationOutcome with `Retry-After`, never a 500.
    #[test]
    fn an_outage_is_a_transient_503() {
        let e = FhirError::from(StoreError::Database {
            op: "read",
            source: sqlx::Error::PoolTimedOut,
        });
        assert_eq!((e.status, e.code), (StatusCode::SERVICE_UNAVAILABLE, "transient"));
        let r = e.into_response();
        assert_eq!(
            r.headers().get(header::RETRY_AFTER).and_then(|v| v.to_str().ok()),
            Some("5")
        );
        let e = FhirError::from(StoreError::Integrity("a broken chain".into()));
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
