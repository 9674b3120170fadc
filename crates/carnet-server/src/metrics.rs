//! What operators watch (issue 34): `/metrics` in Prometheus' text format, for the operator
//! token only (a bearer, as Prometheus' `authorization` sends it). Requests by route template
//! and status with their latency, gate decisions by outcome and reason, trace group commits,
//! document cache lookups (recorded where they happen, through the `metrics` facade), and the
//! backlogs read at scrape time (outbox, lifecycle job, reminders, chains awaiting a checkpoint,
//! the database pool). Labels are route templates and fixed words: never an id, a query
//! string or anything about a holder.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::api::operator::Operator;
use crate::{ApiError, AppState};

/// Latency buckets (seconds): a read by id is a millisecond, a page a few, a timeout 30 s.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// The process's recorder, installed on first use; `None` if another recorder was installed
/// first (then nothing is rendered).
pub fn handle() -> Option<&'static PrometheusHandle> {
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
                .ok()?
                .build_recorder();
            let handle = recorder.handle();
            metrics::set_global_recorder(recorder).ok()?;
            Some(handle)
        })
        .as_ref()
}

/// Counts every request by method, route template and status, and records its duration.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_string();
    let method = req.method().as_str().to_string();
    let r = next.run(req).await;
    let status = r.status().as_u16().to_string();
    metrics::histogram!(
        "carnet_http_request_duration_seconds",
        "method" => method.clone(),
        "route" => route.clone(),
    )
    .record(started.elapsed().as_secs_f64());
    metrics::counter!("carnet_http_requests_total", "method" => method, "route" => route, "status" => status)
        .increment(1);
    r
}

/// `GET /metrics`: the operator token only; the backlogs are read now.
pub async fn render(_op: Operator, State(s): State<AppState>) -> Result<Response, ApiError> {
    let st = s.store.operations_status().await?;
    let gauge = |name: &'static str, v: i64| metrics::gauge!(name).set(v as f64);
    gauge("carnet_outbox_waiting", st.outbox_waiting);
    gauge("carnet_outbox_retrying", st.outbox_retrying);
    gauge("carnet_lifecycle_due", st.lifecycle_due);
    gauge("carnet_reminders_due", st.reminders_due);
    gauge("carnet_trace_chains_pending_checkpoint", st.chains_pending);
    let (size, idle) = s.store.db().pool_counts();
    metrics::gauge!("carnet_db_pool_connections", "state" => "open").set(size as f64);
    metrics::gauge!("carnet_db_pool_connections", "state" => "idle").set(idle as f64);
    let body = handle().map(PrometheusHandle::render).unwrap_or_default();
    Ok(([(CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], body).into_response())
}
