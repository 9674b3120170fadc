//! Routes of the JSON API and the probes.

mod home;
mod operator;
mod probes;

use axum::Router;

use crate::AppState;

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(probes::routes())
        .merge(home::routes())
        .nest("/api/v1/operator", operator::routes())
}
