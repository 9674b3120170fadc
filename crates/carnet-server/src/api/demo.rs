//! `/demo/outbox`: in demo mode, the e-mails, SMS and letters Carnet "sent", so a person can
//! read a login code without a mail server. Absent (404) outside demo mode.

use axum::Router;
use axum::extract::State;
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/demo/outbox", get(outbox))
        .route("/demo/outbox.json", get(outbox_json))
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

async fn outbox(State(s): State<AppState>) -> Result<Response, ApiError> {
    let mailbox = s.mailbox.as_ref().ok_or_else(ApiError::not_found)?;
    let mut items = String::new();
    for m in mailbox.list() {
        items.push_str(&format!(
            "<article><h2>{}</h2><p><strong>{}</strong> à {} — {}</p><pre>{}</pre></article>\n",
            esc(&m.subject),
            esc(m.channel),
            esc(&m.to),
            esc(&m.at),
            esc(&m.body)
        ));
    }
    if items.is_empty() {
        items = "<p>Aucun message pour l'instant.</p>".into();
    }
    Ok(Html(format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"5\">\
         <title>Boîte d'envoi de démonstration</title></head><body><main><h1>Messages envoyés (démonstration)</h1>\
         <p>En démonstration, les e-mails, SMS et courriers ne partent pas : ils s'affichent ici.</p>{items}</main></body></html>"
    ))
    .into_response())
}

async fn outbox_json(State(s): State<AppState>) -> Result<Response, ApiError> {
    let mailbox = s.mailbox.as_ref().ok_or_else(ApiError::not_found)?;
    Ok(axum::Json(mailbox.list()).into_response())
}
