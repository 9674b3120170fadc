//! Errors shown to a person: a readable French message on a page, or a redirect to a login.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::ApiError;
use i18n::t;

use super::*;

/// An error shown to a person: a readable French message on a page, or a redirect to a login.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
    pub redirect: Option<&'static str>,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            redirect: None,
        }
    }

    pub(super) fn login(to: &'static str) -> Self {
        Self {
            status: StatusCode::SEE_OTHER,
            message: String::new(),
            redirect: Some(to),
        }
    }

    /// A 303 to `to`: where this person can go instead.
    pub(super) fn redirect(to: &'static str) -> Self {
        Self::login(to)
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Ce formulaire a expiré ou ne vient pas de Carnet : rien n'a été enregistré. \
             Revenez à la page, rechargez-la et recommencez.",
        )
    }
}

/// The French words for an error of the layers below (their messages are "français / English").
pub fn french(e: &ApiError) -> String {
    match e.code {
        "not_found" => "Introuvable : cet élément n'existe pas, ou vous n'y avez pas accès.".into(),
        "unauthorized" => "Votre session a pris fin : reconnectez-vous.".into(),
        "internal" => {
            "Une erreur inattendue s'est produite ; elle a été enregistrée. Réessayez plus tard.".into()
        }
        "unavailable" => {
            "Le service est momentanément indisponible : rien n'a été enregistré. Réessayez dans un instant."
                .into()
        }
        "storage_full" => "Le stockage du service est plein : rien n'a été enregistré.".into(),
        "conflict" => "Votre espace a été modifié en même temps par une autre action : réessayez.".into(),
        "too_large" => "Le document est trop volumineux : rien n'a été enregistré.".into(),
        _ => {
            let fr = e.message.split(" / ").next().unwrap_or_default().trim();
            let mut chars = fr.chars();
            match chars.next() {
                Some(first) => format!("{}{}", first.to_uppercase(), chars.as_str()),
                None => "La demande n'a pas pu aboutir.".into(),
            }
        }
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        Self::new(e.status, french(&e))
    }
}

impl From<carnet_store::StoreError> for WebError {
    fn from(e: carnet_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let Some(to) = self.redirect {
            return see_other(to);
        }
        let body = format!(
            "<h1>{}</h1>{}<p><a href=\"/\">{}</a></p>",
            t("error.title"),
            alert(&self.message),
            t("error.back")
        );
        let mut r = page("Erreur", &Nav::Anonymous, &body).into_response();
        *r.status_mut() = self.status;
        crate::error::set_retry_after(&mut r, None);
        r
    }
}

/// A template's HTML, or the error page (a template that cannot render is a bug, logged).
pub fn rendered(t: &impl askama::Template) -> Result<String, WebError> {
    t.render().map_err(|e| {
        tracing::error!(error = %e, "page template");
        WebError::from(ApiError::internal())
    })
}

/// `303 See Other` to a path of this site.
pub fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// An error message, announced to screen readers.
pub fn alert(message: &str) -> String {
    if message.is_empty() {
        return String::new();
    }
    format!(
        "<div class=\"alert\" role=\"alert\"><p>{}</p></div>",
        esc(message)
    )
}

/// A confirmation message.
pub fn notice(message: &str) -> String {
    if message.is_empty() {
        return String::new();
    }
    format!(
        "<div class=\"notice\" role=\"status\"><p>{}</p></div>",
        esc(message)
    )
}
