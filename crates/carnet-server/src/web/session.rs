//! Who the page is for: a holder (or representative) or a professional with a live session.

use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use carnet_domain::HolderId;
use carnet_domain::access::Actor;
use carnet_store::auth::Session;

use crate::api::auth::{SESSION_COOKIE, cookie};
use crate::api::extract::Authenticated;
use crate::api::extract::ProAuthenticated;
use crate::{ApiError, AppState};

use super::*;

/// A holder (or a representative) with a live session, as seen by the pages.
pub struct Holder {
    pub token: String,
    pub session: Session,
    pub csrf: String,
    /// Given name + family name of the person logged in, and of the space open.
    pub self_name: String,
    pub space_name: String,
    /// Whether this person represents or helps anybody (the space switcher is shown).
    pub represents_others: bool,
    /// MI-5: in a space this person helps as a carer, their grant there (reads only).
    pub carer_grant: Option<carnet_domain::access::Grant>,
}

impl Holder {
    /// Who the gate sees (S-6: a representative is recorded as themselves).
    pub fn actor(&self) -> Actor {
        crate::api::extract::session_actor(&self.session)
    }

    /// The name recorded with what this person writes (S-6, issue 33): none in their own space
    /// (the holder wrote it), theirs in a space they represent.
    pub fn author_name(&self) -> String {
        if self.space() == self.session.holder {
            String::new()
        } else {
            self.self_name.clone()
        }
    }

    /// The open space as its holder or representative may change it (S-1: the gate's binding).
    pub async fn holder_side(&self, s: &AppState) -> Result<carnet_store::space::HolderSide, ApiError> {
        s.gate
            .holder_side(self.space(), &self.actor())
            .await?
            .ok_or_else(ApiError::not_found)
    }

    pub fn own_space(&self) -> bool {
        self.session.holder == self.session.acting_for
    }

    /// MI-5: the open space is one this person helps as a carer (they read; they change nothing).
    pub fn carer(&self) -> bool {
        self.carer_grant.is_some()
    }

    pub fn space(&self) -> HolderId {
        self.session.acting_for
    }

    /// Checks a POSTed form's anti-CSRF token.
    pub async fn check(&self, s: &AppState, form: &Form) -> Result<(), WebError> {
        check_csrf(s, &self.token, form).await
    }
}

/// Whether French elides before `word` ("d'Inès", "l'agenda"): a vowel or a mute h.
pub(crate) fn elides(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| "aeiouyhàâäéèêëîïôöùûüAEIOUYHÀÂÄÉÈÊËÎÏÔÖÙÛÜ".contains(c))
}

/// "de Camille", "d'Inès".
pub(crate) fn de(name: &str) -> String {
    if elides(name) {
        format!("d'{name}")
    } else {
        format!("de {name}")
    }
}

/// "Camille MARTIN" from a space's administrative data (names are not health data).
pub async fn display_name(s: &AppState, id: HolderId) -> Result<String, ApiError> {
    let carnet_store::PersonName { given, family } = s.store.person_name(id).await?;
    let name = format!("{given} {family}").trim().to_string();
    Ok(if name.is_empty() {
        "Espace sans nom".into()
    } else {
        name
    })
}

impl FromRequestParts<AppState> for Holder {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, WebError> {
        if cookie(&parts.headers, SESSION_COOKIE).is_none() {
            return Err(WebError::login("/connexion"));
        }
        let a = match Authenticated::from_request_parts(parts, s).await {
            Ok(a) => a,
            Err(e) if e.status == StatusCode::UNAUTHORIZED => return Err(WebError::login("/connexion")),
            Err(e) => return Err(e.into()),
        };
        let mut a = a;
        let carer_grant = if a.session.as_carer {
            let grant = s.gate.carer_grant(a.session.acting_for, a.session.holder).await?;
            if grant.is_none() {
                // The grant ended between two requests: back to the person's own space.
                s.store.set_acting_for(&a.token, a.session.holder, false).await?;
                a.session.acting_for = a.session.holder;
                a.session.as_carer = false;
            }
            grant
        } else {
            None
        };
        // MI-5: a carer reads the documents they were given; every other page of the space
        // is its holder's (the gate refuses them anyway: this leads the carer where they can go).
        if carer_grant.is_some() && !carer_page(parts.method == axum::http::Method::GET, parts.uri.path()) {
            return Err(WebError::redirect("/documents"));
        }
        let csrf = csrf_token(s, &a.token).await?;
        let self_name = display_name(s, a.session.holder).await?;
        let space_name = if a.session.acting_for == a.session.holder {
            self_name.clone()
        } else {
            display_name(s, a.session.acting_for).await?
        };
        let represents_others = !s.store.represented_by(a.session.holder).await?.is_empty()
            || !s.store.helped_by(a.session.holder).await?.is_empty();
        Ok(Holder {
            token: a.token,
            session: a.session,
            csrf,
            self_name,
            space_name,
            represents_others,
            carer_grant,
        })
    }
}

/// The pages a carer reaches in a space they help (MI-5): its documents (list, filter, one
/// document), the space switcher, the page of the spaces they help, logging out.
fn carer_page(get: bool, path: &str) -> bool {
    let document = path
        .strip_prefix("/documents/")
        .is_some_and(|rest| !rest.is_empty() && !rest.contains('/'));
    match path {
        "/espace" | "/deconnexion" | "/aider" | "/aider/arreter" => true,
        "/documents" => get,
        "/documents/recherche" => !get,
        _ => get && document && path != "/documents/recherche",
    }
}

/// A professional with a live session, as seen by the pages.
pub struct Pro {
    pub token: String,
    pub professional: carnet_store::directory::Professional,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Pro {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, WebError> {
        if cookie(&parts.headers, crate::api::pro::PRO_SESSION_COOKIE).is_none() {
            return Err(WebError::login("/pro"));
        }
        let a = match ProAuthenticated::from_request_parts(parts, s).await {
            Ok(a) => a,
            Err(e) if e.status == StatusCode::UNAUTHORIZED => return Err(WebError::login("/pro")),
            Err(e) => return Err(e.into()),
        };
        let csrf = csrf_token(s, &a.token).await?;
        Ok(Pro {
            token: a.token,
            professional: a.professional,
            csrf,
        })
    }
}
