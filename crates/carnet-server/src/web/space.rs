//! Managing the space (ID-3, LC-5): links to the exports of the JSON API (`/api/v1/me/export`,
//! `/api/v1/me/export.html`), and closing the space in two POSTs, as `api::me` does: the first
//! checks the closing is possible and issues a confirmation bound to this session and space,
//! the second checks it and closes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::i18n::t;
use super::{Form, Holder, Nav, WebError, alert, csrf_field, esc, page, see_other};
use crate::api::auth::{SESSION_COOKIE, set_cookie};
use crate::api::me::close_binding_of;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mon-espace", get(show))
        .route("/mon-espace/fermer", post(close_request))
        .route("/mon-espace/fermer/confirmer", post(close_confirm))
}

fn respond(h: &Holder, status: StatusCode, body: &str) -> Response {
    let mut r = page(
        "Mon espace",
        &Nav::Holder {
            h,
            current: "/mon-espace",
        },
        body,
    )
    .into_response();
    *r.status_mut() = status;
    r
}

fn body(h: &Holder, error: &str) -> String {
    let csrf = csrf_field(&h.csrf);
    format!(
        "<h1>{}</h1>\
         <section aria-labelledby=\"export\"><h2 id=\"export\">{}</h2>\
         <p>Une copie de tout ce que contient l'espace de {} : documents, profil médical, mesures, \
         autorisations et historique des accès.</p><ul>\
         <li><a href=\"/api/v1/me/export.html\">Version lisible (page à imprimer ou enregistrer)</a></li>\
         <li><a href=\"/api/v1/me/export\" download>Fichier complet au format JSON (avec le contenu des documents)</a></li></ul></section>\
         <section aria-labelledby=\"close\"><h2 id=\"close\">{}</h2>{}\
         <p>Si vous fermez cet espace, les professionnels n'y auront plus accès. Les données sont conservées \
         10 ans, pendant lesquels l'espace peut être rouvert, puis supprimées.</p>\
         <form method=\"post\" action=\"/mon-espace/fermer\" class=\"card\">{csrf}\
         <p><button type=\"submit\" class=\"danger\">Fermer cet espace…</button></p></form></section>",
        t("space.title"),
        t("space.export"),
        esc(&h.space_name),
        t("space.close"),
        alert(error),
    )
}

async fn show(h: Holder) -> Result<Response, WebError> {
    Ok(respond(&h, StatusCode::OK, &body(&h, "")))
}

/// First step: the same checks as `api::me::close_request`, then the confirmation page.
async fn close_request(State(s): State<AppState>, h: Holder, b: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&b);
    h.check(&s, &form).await?;
    let l = s.store.lifecycle(h.space()).await.map_err(ApiError::from)?;
    if l.apply(carnet_domain::Event::Close, s.store.now()).is_err() {
        let message = "Cet espace ne peut pas être fermé dans son état actuel.";
        return Ok(respond(&h, StatusCode::CONFLICT, &body(&h, message)));
    }
    let confirmation = s
        .store
        .issue_confirmation("close", &close_binding_of(&h.token, h.space()))
        .await
        .map_err(ApiError::from)?;
    let page_body = format!(
        "<h1>Fermer l'espace de {}</h1>\
         <div class=\"alert\" role=\"alert\"><p>Confirmez-vous la fermeture ? Les professionnels n'auront plus accès \
         à cet espace. Les données seront conservées 10 ans, pendant lesquels l'espace peut être rouvert, puis supprimées.</p></div>\
         <form method=\"post\" action=\"/mon-espace/fermer/confirmer\" class=\"card\">{}\
         <input type=\"hidden\" name=\"confirmation\" value=\"{}\">\
         <p><button type=\"submit\" class=\"danger\">Oui, fermer définitivement cet espace</button></p></form>\
         <p><a href=\"/mon-espace\">Non, revenir sans rien changer</a></p>",
        esc(&h.space_name),
        csrf_field(&h.csrf),
        esc(&confirmation)
    );
    Ok(respond(&h, StatusCode::OK, &page_body))
}

/// Second step: the same as `api::me::close_confirm`.
async fn close_confirm(State(s): State<AppState>, h: Holder, b: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&b);
    h.check(&s, &form).await?;
    let valid = s
        .store
        .check_confirmation(
            "close",
            &close_binding_of(&h.token, h.space()),
            form.get("confirmation"),
        )
        .await
        .map_err(ApiError::from)?;
    if !valid {
        let message =
            "La confirmation a expiré ou n'est pas valide : l'espace n'a pas été fermé. Recommencez.";
        return Ok(respond(&h, StatusCode::BAD_REQUEST, &body(&h, message)));
    }
    s.store
        .transition(h.space(), carnet_domain::Event::Close)
        .await
        .map_err(ApiError::from)?;
    if h.own_space() {
        s.store
            .revoke_all_sessions(h.session.holder)
            .await
            .map_err(ApiError::from)?;
        let mut r = see_other("/connexion?ok=ferme");
        set_cookie(&mut r, SESSION_COOKIE, "", "/", 0)?;
        Ok(r)
    } else {
        s.store
            .set_acting_for(&h.token, h.session.holder)
            .await
            .map_err(ApiError::from)?;
        Ok(see_other("/"))
    }
}
