//! Carnet's HTTP layer: the JSON API, the FHIR endpoint and the web interface (`web`).
//!
//! Handlers translate HTTP to calls on the layers below and back; they hold no business rule
//! and never open health data themselves. Errors become a status and a readable message
//! (`error.rs`); a panic becomes a bare 500 (S-23); `Authorization` and `Cookie` headers are
//! marked sensitive so they never reach logs.

pub mod api;
pub mod chart;
pub mod client;
pub mod error;
pub mod fhir;
pub mod letter;
pub mod mail;
pub mod metrics;
pub mod oauth;
pub mod oidc;
pub mod print;
pub mod smart;
pub mod state;
pub mod web;
pub mod webauthn;

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::sensitive_headers::SetSensitiveRequestHeadersLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use error::ApiError;
pub use state::{AppState, ServerSettings};

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The whole application as one router.
pub fn router(state: AppState) -> Router {
    let limit = state.settings.body_limit_bytes;
    let timeout = state.settings.request_timeout;
    metrics::handle(); // the recorder, before anything is counted
    Router::new()
        .merge(api::routes())
        .merge(web::routes())
        .route("/metrics", axum::routing::get(metrics::render))
        .with_state(state)
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(RequestBodyLimitLayer::new(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(CatchPanicLayer::custom(on_panic))
        .layer(
            TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
                // Method and route template only: never query strings or bodies.
                let route = req
                    .extensions()
                    .get::<axum::extract::MatchedPath>()
                    .map_or("-", |m| m.as_str())
                    .to_string();
                let id = req
                    .headers()
                    .get(&REQUEST_ID)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("-")
                    .to_string();
                tracing::info_span!("http", method = %req.method(), route, request_id = id)
            }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID))
        .layer(SetRequestIdLayer::new(REQUEST_ID, MakeRequestUuid))
        .layer(SetSensitiveRequestHeadersLayer::new([
            header::AUTHORIZATION,
            header::COOKIE,
        ]))
}

fn on_panic(_: Box<dyn std::any::Any + Send + 'static>) -> Response {
    tracing::error!("a request handler panicked; answered 500");
    ApiError::internal().into_response()
}

/// Serves `state` on `listener` until `shutdown` resolves, then finishes in-flight requests
/// (bounded by `grace`) and closes the databases.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> std::io::Result<()> {
    let store = state.store.clone();
    let app = router(state);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let app = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = tx.send(());
    });
    let drained = async {
        // Once shutdown starts, in-flight requests get `grace` to finish.
        let _ = rx.await;
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = server => r?,
        () = drained => tracing::warn!("shutdown grace period over; dropping remaining connections"),
    }
    store.db().close().await;
    store.vault().db().close().await;
    Ok(())
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C).
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
