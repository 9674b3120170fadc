//! Publication of the signed checkpoints over the access traces (SPEC AC-7, SECURITY S-5):
//! anyone may fetch the newest checkpoint and keep it; `carnet verify-traces` later proves the
//! traces it covers were neither edited nor removed. Public, and free of holder data: the
//! number, time, size, Merkle root, link to the previous checkpoint, the signed note and the
//! Ed25519 public key. The leaves (holder ids) stay in the database.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use carnet_store::traces::checkpoint::PublishedCheckpoint;

use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/checkpoint", get(latest))
}

/// `GET /api/v1/transparency/checkpoint`: `{number, at, size, root, prev, signed_note,
/// public_key}`; 404 until the first checkpoint is made.
async fn latest(State(s): State<AppState>) -> Result<Json<PublishedCheckpoint>, ApiError> {
    match s.store.published_checkpoint().await? {
        Some(c) => Ok(Json(c)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "aucun point de contrôle publié pour l'instant / no checkpoint has been published yet",
        )),
    }
}
