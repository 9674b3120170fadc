//! Operator API (the insurer's back office): creating holders' spaces from the roster and
//! reading their administrative data (SPEC LC-1, ID-1). Authenticated by the operator token.
//!
//! Operators never read health data: this API exposes administrative data only. Every access
//! will go through the gate and be traced when the gate lands (issue 4).

pub use super::extract::ValidJson;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use carnet_domain::HolderId;
use carnet_store::gate::Suspension;
use serde::{Deserialize, Serialize};

use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/holders", post(create_holder))
        .route("/holders/{id}", get(get_holder))
        .route("/holders/{id}/events", post(lifecycle_event))
}

/// Lifecycle events an operator records for a person: an opposition or a request for a space
/// made by phone (LC-2, LC-3), a death reported by the insurer (LC-6), a suspension on serious
/// malfunction or fraud and its lifting (LC-5b, with the `reason` the holder is told).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LifecycleEventBody {
    pub event: OperatorEvent,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
pub enum OperatorEvent {
    Oppose,
    RequestSpace,
    Death,
    Suspend,
    LiftSuspension,
}

#[derive(Debug, Serialize)]
pub struct LifecycleView {
    pub id: HolderId,
    pub lifecycle: &'static str,
    pub since: String,
}

async fn lifecycle_event(
    _op: Operator,
    State(s): State<AppState>,
    path: Result<Path<HolderId>, axum::extract::rejection::PathRejection>,
    ValidJson(body): ValidJson<LifecycleEventBody>,
) -> Result<Json<LifecycleView>, ApiError> {
    let Path(id) = path.map_err(|_| ApiError::bad_request("the holder id must be a UUID"))?;
    let plain = match body.event {
        OperatorEvent::Suspend | OperatorEvent::LiftSuspension => None,
        OperatorEvent::Oppose => Some(carnet_domain::Event::Oppose),
        OperatorEvent::RequestSpace => Some(carnet_domain::Event::RequestSpace),
        OperatorEvent::Death => Some(carnet_domain::Event::Death),
    };
    if let Some(event) = plain {
        return view(id, s.store.transition(id, event).await?);
    }
    let decision = if matches!(body.event, OperatorEvent::Suspend) {
        Suspension::Suspend
    } else {
        Suspension::Lift
    };
    let l = s
        .gate
        .operator_suspension(id, OPERATOR_ID, decision, &body.reason)
        .await?
        .ok_or_else(ApiError::not_found)?;
    s.wake.notify_one();
    view(id, l)
}

fn view(id: HolderId, l: carnet_domain::Lifecycle) -> Result<Json<LifecycleView>, ApiError> {
    Ok(Json(LifecycleView {
        id,
        lifecycle: l.name(),
        since: l.since().to_rfc3339(),
    }))
}

/// Proof that the request carried the operator token.
pub struct Operator;

/// Who the operator's token is in traces (one shared token today; named accounts would give
/// each operator their own id).
pub const OPERATOR_ID: &str = "support";

impl FromRequestParts<AppState> for Operator {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthorized)?;
        if state.is_operator_token(token.trim()) {
            Ok(Operator)
        } else {
            Err(ApiError::unauthorized())
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewHolder {
    /// Administrative data (SPEC ID-1) as a JSON object; sealed with the holder's key.
    pub administrative: serde_json::Map<String, serde_json::Value>,
}

#[derive(Debug, Serialize)]
pub struct HolderView {
    pub id: HolderId,
    pub lifecycle: String,
    pub created_at: String,
    pub administrative: serde_json::Value,
}

/// Lifecycle state of a space created from the roster: the holder is to be informed (LC-2).
const INITIAL_LIFECYCLE: &str = "informed";

async fn create_holder(
    _op: Operator,
    State(s): State<AppState>,
    ValidJson(body): ValidJson<NewHolder>,
) -> Result<(StatusCode, Json<HolderView>), ApiError> {
    let admin = serde_json::Value::Object(body.administrative);
    let bytes = serde_json::to_vec(&admin).map_err(|_| ApiError::internal())?;
    let id = s.store.create_holder(INITIAL_LIFECYCLE, &bytes).await?;
    let lifecycle = s.store.lifecycle(id).await?;
    Ok((
        StatusCode::CREATED,
        Json(HolderView {
            id,
            lifecycle: lifecycle.name().to_string(),
            created_at: lifecycle.since().to_rfc3339(),
            administrative: admin,
        }),
    ))
}

/// Why an operator opens one holder's administrative data (S-5): traced with the access.
#[derive(Debug, Deserialize)]
struct SupportReason {
    #[serde(default)]
    reason: String,
}

/// AC-6, S-5: one holder's administrative data for a support action, through the gate: the
/// access is traced in the holder's history with its stated reason (`?reason=`); without a
/// reason it is refused (422) and that refusal is traced too.
async fn get_holder(
    _op: Operator,
    State(s): State<AppState>,
    path: Result<Path<HolderId>, axum::extract::rejection::PathRejection>,
    query: Result<Query<SupportReason>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<HolderView>, ApiError> {
    let Path(id) = path.map_err(|_| ApiError::bad_request("the holder id must be a UUID"))?;
    let Query(q) = query.map_err(|_| ApiError::bad_request("reason: a text is expected"))?;
    let h = s
        .gate
        .operator_support_read(id, OPERATOR_ID, &q.reason)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let administrative = serde_json::from_slice(&h.administrative).map_err(|_| ApiError::internal())?;
    Ok(Json(HolderView {
        id,
        lifecycle: h.lifecycle.name().to_string(),
        created_at: h.created_at.to_rfc3339(),
        administrative,
    }))
}
