//! Routes of the JSON API and the probes.

mod auth;
mod demo;
mod directory;
mod documents;
mod home;
mod me;
mod notifications;
mod oidc;
mod operator;
mod pro;
mod probes;
mod profile;
mod transparency;

use axum::Router;

use crate::AppState;

/// The holder's session token from its cookie (for the FHIR endpoint's caller).
pub(crate) fn auth_cookie_session(headers: &axum::http::HeaderMap) -> Option<String> {
    auth::cookie(headers, auth::SESSION_COOKIE).map(str::to_string)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(probes::routes())
        .merge(home::routes())
        .nest("/api/v1/operator", operator::routes())
        .nest("/api/v1", auth::routes())
        .nest(
            "/api/v1/me",
            me::routes()
                .merge(directory::routes())
                .merge(documents::routes())
                .merge(notifications::routes())
                .merge(profile::routes()),
        )
        .nest("/api/v1/pro", pro::routes())
        .nest("/api/v1/transparency", transparency::routes())
        .merge(crate::fhir::routes())
        .merge(demo::routes())
        .merge(oidc::routes())
}
