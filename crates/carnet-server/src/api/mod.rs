//! Routes of the JSON API and the probes (the web interface is `crate::web`).

pub(crate) mod agenda;
pub(crate) mod auth;
mod demo;
pub(crate) mod directory;
pub(crate) mod documents;
pub(crate) mod export;
pub(crate) mod extract;
pub(crate) mod me;
pub(crate) mod messages;
mod notifications;
mod oidc;
pub(crate) mod operator;
mod passkeys;
pub(crate) mod pro;
mod probes;
pub(crate) mod profile;
pub(crate) mod referencing;
pub(crate) mod reimbursements;
mod transparency;

use axum::Router;

use crate::AppState;

pub(crate) use extract::ValidJson;
pub(crate) use operator::Operator;

/// The holder's session token from its cookie (for the FHIR endpoint's caller).
pub(crate) fn auth_cookie_session(headers: &axum::http::HeaderMap) -> Option<String> {
    auth::cookie(headers, auth::SESSION_COOKIE).map(str::to_string)
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(probes::routes())
        .nest("/api/v1/operator", operator::routes())
        .nest("/api/v1", auth::routes().merge(passkeys::auth_routes()))
        .nest(
            "/api/v1/me",
            me::routes()
                .merge(export::routes())
                .merge(directory::routes())
                .merge(documents::routes())
                .merge(messages::routes())
                .merge(agenda::routes())
                .merge(agenda::me_routes())
                .merge(notifications::routes())
                .merge(profile::routes())
                .merge(reimbursements::routes())
                .merge(passkeys::me_routes()),
        )
        .nest("/api/v1/pro", pro::routes())
        .nest("/api/v1/transparency", transparency::routes())
        .merge(agenda::feed_routes())
        .merge(crate::fhir::routes())
        .merge(crate::smart::routes())
        .merge(crate::oauth::routes())
        .merge(referencing::routes())
        .merge(demo::routes())
        .merge(oidc::routes())
}
