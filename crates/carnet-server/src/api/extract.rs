//! The request extractors every handler set shares: who is asking (a holder-side session, a
//! professional, either in whose space) and a JSON body whose rejection is a readable
//! [`ApiError`]. They establish identity only; what the caller may do is the gate's to decide
//! (S-1: `live_session` ends a stale switch, it is not the guard).

use std::collections::HashMap;

use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::header;
use axum::http::request::Parts;
use carnet_domain::HolderId;
use carnet_domain::access::Actor;
use carnet_store::StoreError;
use carnet_store::auth::Session;
use carnet_store::directory::Professional;
use serde::de::DeserializeOwned;

use super::auth::{SESSION_COOKIE, cookie};
use super::pro::PRO_SESSION_COOKIE;
use crate::{ApiError, AppState};

/// A request with a live session whose holder may still log in.
pub struct Authenticated {
    pub token: String,
    pub session: Session,
}

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let token = cookie(&parts.headers, SESSION_COOKIE)
            .ok_or_else(ApiError::unauthorized)?
            .to_string();
        let session = live_session(s, &token)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(Authenticated { token, session })
    }
}

impl Authenticated {
    /// Who the gate sees (S-6: a representative is recorded as themselves).
    pub fn actor(&self) -> carnet_domain::access::Actor {
        session_actor(&self.session)
    }

    /// The open space as its holder or representative may change it (S-1: the gate's binding).
    pub async fn holder_side(&self, s: &AppState) -> Result<carnet_store::space::HolderSide, ApiError> {
        s.gate
            .holder_side(self.session.acting_for, &self.actor())
            .await?
            .ok_or_else(ApiError::not_found)
    }
}

/// Who the gate sees for a holder-side session: the holder in their own space, the person
/// logged in as a legal representative in another's, or as a carer in a space they help (MI-5).
pub(crate) fn session_actor(session: &Session) -> carnet_domain::access::Actor {
    use carnet_domain::access::Actor;
    if session.holder == session.acting_for {
        Actor::Holder { id: session.holder }
    } else if session.as_carer {
        Actor::Carer { id: session.holder }
    } else {
        Actor::Representative { id: session.holder }
    }
}

/// The live session behind `token` of a holder who may still log in, whatever the surface
/// (JSON API, pages, FHIR): a representation that ended (majority, MI-3) ends the switch into
/// that space at once. The gate makes the same test again on every access (S-1).
pub(crate) async fn live_session(s: &AppState, token: &str) -> Result<Option<Session>, StoreError> {
    let Some(mut session) = s.store.session(token).await? else {
        return Ok(None);
    };
    if !s.store.lifecycle(session.holder).await?.allows_login() {
        return Ok(None);
    }
    // A representative goes back to their own space when the representation ended, a carer
    // when their grant ended (MI-5), either when the space they act in was suspended (LC-5b).
    if session.acting_for != session.holder {
        let tie = if session.as_carer {
            s.store.helps(session.holder, session.acting_for).await?
        } else {
            s.store.represents(session.holder, session.acting_for).await?
        };
        if !tie || s.store.lifecycle(session.acting_for).await?.is_suspended() {
            s.store.set_acting_for(token, session.holder, false).await?;
            session.acting_for = session.holder;
            session.as_carer = false;
        }
    }
    Ok(Some(session))
}

/// Who is asking, in whose space.
pub struct Caller {
    pub actor: Actor,
    pub holder: HolderId,
    pub author_name: String,
    pub organisation: Option<String>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let Path(params) = Path::<HashMap<String, String>>::from_request_parts(parts, s)
            .await
            .map_err(|_| ApiError::not_found())?;
        if let Some(holder) = params.get("holder") {
            // A professional's request about a patient.
            let pro = ProAuthenticated::from_request_parts(parts, s).await?;
            let holder: HolderId = holder.parse().map_err(|_| ApiError::not_found())?;
            return Ok(Caller {
                actor: pro.professional.actor(),
                holder,
                author_name: pro.professional.display_name(),
                organisation: pro.professional.organisation_name.clone(),
            });
        }
        let a = Authenticated::from_request_parts(parts, s).await?;
        // S-6: a representative is recorded as themselves, never as the represented person,
        // and named so on what they write (issue 33).
        let author_name = if a.session.acting_for == a.session.holder {
            String::new()
        } else {
            crate::web::display_name(s, a.session.holder).await?
        };
        Ok(Caller {
            actor: a.actor(),
            holder: a.session.acting_for,
            author_name,
            organisation: None,
        })
    }
}

/// A request from a professional with a live session (cookie or `Authorization: Bearer`).
pub struct ProAuthenticated {
    pub token: String,
    pub professional: Professional,
}

fn bearer(parts: &Parts) -> Option<&str> {
    parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
}

impl FromRequestParts<AppState> for ProAuthenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let token = cookie(&parts.headers, PRO_SESSION_COOKIE)
            .or_else(|| bearer(parts))
            .ok_or_else(ApiError::unauthorized)?
            .to_string();
        let professional = s
            .store
            .pro_session(&token)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        Ok(ProAuthenticated { token, professional })
    }
}

/// `Json` whose rejection is our [`ApiError`] (a readable 400/415 instead of axum's text).
pub struct ValidJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ValidJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = axum::Json::<T>::from_request(req, state).await?;
        Ok(ValidJson(v))
    }
}
