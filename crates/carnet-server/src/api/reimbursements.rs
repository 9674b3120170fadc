//! Reimbursements over HTTP (SPEC RB-1, RB-2): the lines, their totals (paid, reimbursed,
//! remaining) and sums by month, filtered by period, professional and type of care; and the
//! same selection as CSV. One handler set serves `/api/v1/me/…` (holder, representative) and
//! `/api/v1/pro/patients/{holder}/…` (professionals, when a grant and the habilitation matrix
//! allow the category `reimbursements`); every call goes through the gate (decided, traced,
//! notified) and a denial answers like absence (404, AC-8). A bad filter is a 400 naming it.

use std::collections::HashMap;

use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use carnet_domain::access::Context;
use carnet_domain::reimbursement::{Filter, by_month, export_csv, totals};
use carnet_store::reimbursements::Reimbursement;
use serde_json::{Value, json};

use super::extract::Caller;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/reimbursements", get(list))
        .route("/reimbursements.csv", get(export))
}

/// The filter of a query string: `from`, `to` (`YYYY-MM-DD`, inclusive), `professional`,
/// `type`; anything else is refused.
pub(crate) fn filter_of(q: &HashMap<String, String>) -> Result<Filter, ApiError> {
    if let Some(k) = q
        .keys()
        .find(|k| !["from", "to", "professional", "type"].contains(&k.as_str()))
    {
        return Err(ApiError::bad_request(format!(
            "{k}: unknown parameter (from, to, professional, type)"
        )));
    }
    let get = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    Filter::parse(get("from"), get("to"), get("professional"), get("type")).map_err(ApiError::bad_request)
}

fn line_json(r: &Reimbursement) -> Value {
    let mut v = serde_json::to_value(&r.line).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert("id".into(), json!(r.id));
        m.insert("remaining_cents".into(), json!(r.line.remaining_cents()));
        m.insert("imported_at".into(), json!(r.imported_at.to_rfc3339()));
    }
    v
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let filter = filter_of(&q)?;
    let lines = s
        .gate
        .list_reimbursements(c.holder, &c.actor, &filter, &Context::default())
        .await?;
    let t = totals(lines.iter().map(|r| &r.line));
    let months = by_month(lines.iter().map(|r| &r.line));
    Ok(Json(json!({
        "lines": lines.iter().map(line_json).collect::<Vec<_>>(),
        "totals": t,
        "by_month": months,
    })))
}

/// RB-2: the selection as CSV (`EXPORT_COLUMNS`), a download.
async fn export(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let filter = filter_of(&q)?;
    let lines = s
        .gate
        .list_reimbursements(c.holder, &c.actor, &filter, &Context::default())
        .await?;
    Ok(csv_response(export_csv(lines.iter().map(|r| &r.line))))
}

/// A CSV download (also for the web page's export link).
pub(crate) fn csv_response(body: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"remboursements.csv\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body,
    )
        .into_response()
}
