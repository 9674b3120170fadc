//! Who is calling the FHIR endpoint: a professional, an establishment's system, a referenced
//! app (with its SMART scopes, checked here before the gate) or a holder's session.

#[allow(unused_imports)]
use super::*;

/// Who is calling: a professional (bearer token of a Pro Santé Connect session) or a holder /
/// representative (their session, as a bearer token or the cookie).
#[derive(Clone)]
pub struct FhirCaller {
    pub actor: Actor,
    /// Display name for what the caller writes (professionals).
    pub name: String,
    /// The space a holder-side caller acts in (None for professionals and apps).
    pub own: Option<HolderId>,
    /// An app (CA-3): the space it acts for and its granted SMART scopes, checked on every
    /// interaction before the gate is asked (the gate checks the grant's categories).
    pub app: Option<(HolderId, Vec<carnet_domain::catalogue::Scope>)>,
}

impl FhirCaller {
    /// The space a search is about when none is named: the holder's own, or an app's.
    pub fn home(&self) -> Option<HolderId> {
        self.own.or(self.app.as_ref().map(|(h, _)| *h))
    }

    /// CA-3: refuses what an app's scopes do not allow (403, `forbidden`); others pass.
    pub(super) fn scope_allows(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        conditional: bool,
    ) -> Result<(), FhirError> {
        let Some((_, scopes)) = &self.app else {
            return Ok(());
        };
        let segments: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|x| !x.is_empty())
            .collect();
        match app_refusal(scopes, method, &segments, query, conditional) {
            None => Ok(()),
            Some(why) => Err(FhirError::new(StatusCode::FORBIDDEN, "forbidden", why)),
        }
    }
}

/// What an app's SMART scopes refuse of one interaction (`None`: allowed). `segments` are
/// the path after `/fhir`. A Bundle (`POST /fhir`) is checked entry by entry by its handler.
pub(super) fn app_refusal(
    scopes: &[carnet_domain::catalogue::Scope],
    method: &str,
    segments: &[&str],
    query: Option<&str>,
    conditional: bool,
) -> Option<String> {
    let need = |t: &str, what: char| -> Option<String> {
        let r = carnet_domain::catalogue::rights_on(scopes, t);
        let ok = match what {
            'c' => r.create,
            'r' => r.read,
            'u' => r.update,
            'd' => r.delete,
            _ => r.search,
        };
        (!ok).then(|| {
            format!("insufficient scope: the app may not '{what}' {t} (SMART scopes granted by the holder)")
        })
    };
    let includes = || -> Option<String> {
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "_include" => {
                    if let Some(why) = need("Patient", 'r') {
                        return Some(why);
                    }
                }
                "_revinclude" => {
                    let t = v.split(':').next().unwrap_or("");
                    if let Some(why) = need(t, 's') {
                        return Some(why);
                    }
                }
                _ => {}
            }
        }
        None
    };
    match (method, segments) {
        (_, []) | ("GET", ["metadata"]) => None,
        ("GET", [t]) => need(t, 's').or_else(includes),
        ("POST", [t]) => need(t, 'c').or_else(|| if conditional { need(t, 's') } else { None }),
        ("GET", [t, "_history"]) => need(t, 's'),
        ("GET", [t, _]) | ("GET", [t, _, "_history"]) | ("GET", [t, _, "_history", _]) => need(t, 'r'),
        ("PUT", [t, _]) => need(t, 'u'),
        ("DELETE", [t, _]) => need(t, 'd'),
        _ => Some("this operation is not available to apps".into()),
    }
}

impl FromRequestParts<AppState> for FhirCaller {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, FhirError> {
        let unauthorized = || {
            FhirError::new(
                StatusCode::UNAUTHORIZED,
                "login",
                "a bearer token is required".into(),
            )
        };
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        if let Some(t) = &bearer
            && let Some(p) = s.store.pro_session(t).await?
        {
            return Ok(FhirCaller {
                actor: p.actor(),
                name: p.display_name(),
                own: None,
                app: None,
            });
        }
        // An establishment's system (SMART Backend Services token).
        if let Some(t) = &bearer
            && let Some(sys) = s.store.system_token(t).await?
        {
            return Ok(FhirCaller {
                actor: Actor::Establishment {
                    id: carnet_domain::access::OrganisationId(sys.finess),
                },
                name: sys.name,
                own: None,
                app: None,
            });
        }
        // A referenced app (CA-3): a live access token (service listed, space open, not
        // revoked), bound to one space, within its scopes.
        if let Some(t) = &bearer
            && let Some(tok) = s.store.live_app_token(t).await?
            && tok.kind == carnet_store::catalogue::TokenKind::Access
        {
            let caller = FhirCaller {
                actor: Actor::App {
                    id: carnet_domain::access::AppId(tok.client_id.clone()),
                    space: Some(tok.holder),
                    // Connected by someone other than the holder: a legal representative.
                    by_representative: tok.subject != tok.holder,
                },
                name: tok.client_id,
                own: None,
                app: Some((tok.holder, carnet_domain::catalogue::parse_scopes(&tok.scope))),
            };
            let path = parts.uri.path().strip_prefix("/fhir").unwrap_or("");
            let conditional = parts.headers.contains_key("if-none-exist");
            caller.scope_allows(parts.method.as_str(), path, parts.uri.query(), conditional)?;
            return Ok(caller);
        }
        let token = bearer
            .or_else(|| auth_cookie_session(&parts.headers))
            .ok_or_else(unauthorized)?;
        let session = crate::api::extract::live_session(s, &token)
            .await?
            .ok_or_else(unauthorized)?;
        Ok(FhirCaller {
            actor: crate::api::extract::session_actor(&session),
            name: String::new(),
            own: Some(session.acting_for),
            app: None,
        })
    }
}
