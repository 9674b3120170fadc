//! OpenID Connect login (SPEC AU-1, LC-4): FranceConnect for holders and Pro Santé Connect for
//! professionals (AC-1), as configurable providers with one code path. A provider's `audience`
//! says whom it logs in: holders are matched on identity traits, professionals on their RPPS
//! number read from a configurable claim (PSC's `SubjectNameID`, the national id "8" + RPPS).
//!
//! Authorisation code flow with PKCE (S256), `state` bound to the browser by a cookie and
//! single use, `nonce` checked in the ID token, whose signature, issuer, audience and expiry
//! are verified by the `openidconnect` crate against the provider's discovered keys. The
//! provider's subject is linked to a space on first use, found by the identity traits the
//! insurer gave (birth name, first given name, birth date, sex) through a blind index.

use std::sync::Arc;
use std::time::Duration;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreGenderClaim, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, HttpRequest, HttpResponse, IssuerUrl, Nonce,
    OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, RedirectUrl, Scope, TokenResponse,
};
use serde::{Deserialize, Serialize};
use tokio::sync::OnceCell;

async fn call(client: reqwest::Client, req: HttpRequest) -> Result<HttpResponse, reqwest::Error> {
    let (parts, body) = req.into_parts();
    let mut rb = client.request(parts.method, parts.uri.to_string()).body(body);
    for (k, v) in &parts.headers {
        rb = rb.header(k, v);
    }
    let resp = rb.send().await?;
    let mut out = http::Response::builder().status(resp.status());
    for (k, v) in resp.headers() {
        out = out.header(k, v);
    }
    let bytes = resp.bytes().await?.to_vec();
    Ok(out.body(bytes).unwrap_or_default())
}

/// The first value of a localised claim (any language).
fn first<T: std::ops::Deref<Target = String>>(
    v: Option<&openidconnect::LocalizedClaim<T>>,
) -> Option<String> {
    v.and_then(|c| c.iter().next().map(|(_, n)| n.as_str().to_string()))
}

/// One configured provider.
#[derive(Clone, Debug, Deserialize, Serialize)]
pub struct OidcProviderConfig {
    /// The issuer, e.g. `https://app.franceconnect.gouv.fr/api/v2` (discovery is read from it).
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Our callback, registered with the provider: `https://HOST/auth/oidc/NAME/callback`.
    pub redirect_uri: String,
    /// Scopes besides `openid`.
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// Whom this provider logs in: `holders` (FranceConnect, the default) or `professionals`
    /// (Pro Santé Connect).
    #[serde(default)]
    pub audience: Audience,
    /// For professionals: the user-info claim carrying the national id (PSC: `SubjectNameID`).
    #[serde(default = "default_rpps_claim")]
    pub rpps_claim: String,
    /// Required authentication context (`acr`) in the ID token, when set: e.g. PSC's `eidas2`
    /// for card or e-CPS logins. Requested with `acr_values` and checked on return.
    #[serde(default)]
    pub acr: Option<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Audience {
    #[default]
    Holders,
    Professionals,
}

fn default_rpps_claim() -> String {
    "SubjectNameID".into()
}

/// The RPPS number in a national id (see `ProfessionalId::from_national_id`).
pub fn rpps_of(national_id: &str) -> Option<String> {
    carnet_domain::access::ProfessionalId::from_national_id(national_id).map(|p| p.0)
}

/// User-info claims beyond the standard ones (PSC's `SubjectNameID`, `SubjectRefPro`, …).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
struct ExtraClaims {
    #[serde(flatten)]
    other: serde_json::Map<String, serde_json::Value>,
}
impl openidconnect::AdditionalClaims for ExtraClaims {}
type UserInfo = openidconnect::UserInfoClaims<ExtraClaims, CoreGenderClaim>;

fn default_scopes() -> Vec<String> {
    ["profile", "email", "birth"]
        .iter()
        .map(|s| s.to_string())
        .collect()
}

#[derive(Debug)]
pub struct OidcProvider {
    pub name: String,
    pub config: OidcProviderConfig,
    metadata: OnceCell<CoreProviderMetadata>,
    http: reqwest::Client,
}

#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    #[error("OpenID provider {0}: {1}")]
    Provider(String, String),
    #[error("the login could not be verified")]
    Verification(String),
}

/// What we learn from the provider about the person.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Identity {
    pub subject: String,
    pub family_name: String,
    pub given_name: String,
    pub birthdate: String,
    pub gender: String,
    pub email: Option<String>,
    /// For a professionals' provider: the RPPS number read from the configured claim.
    pub rpps: Option<String>,
}

/// An authorisation request to send the browser to, and what to remember until the callback.
pub struct Start {
    pub url: String,
    pub state: String,
    pub pkce_verifier: String,
    pub nonce: String,
}

impl OidcProvider {
    pub fn new(name: &str, config: OidcProviderConfig) -> Result<Arc<Self>, OidcError> {
        let http = reqwest::Client::builder()
            // Never follow redirects from the provider's endpoints (SSRF, S-21).
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| OidcError::Provider(name.into(), e.to_string()))?;
        Ok(Arc::new(Self {
            name: name.to_string(),
            config,
            metadata: OnceCell::new(),
            http,
        }))
    }

    /// An HTTP client for `openidconnect` that owns what it uses (its futures are `'static`).
    fn client(
        &self,
    ) -> impl Fn(
        HttpRequest,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<HttpResponse, reqwest::Error>> + Send>,
    > {
        let http = self.http.clone();
        move |req| Box::pin(call(http.clone(), req))
    }

    fn err(&self, e: impl std::fmt::Display) -> OidcError {
        OidcError::Provider(self.name.clone(), e.to_string())
    }

    async fn metadata(&self) -> Result<&CoreProviderMetadata, OidcError> {
        self.metadata
            .get_or_try_init(|| async {
                let issuer = IssuerUrl::new(self.config.issuer.clone()).map_err(|e| self.err(e))?;
                let http = self.client();
                CoreProviderMetadata::discover_async(issuer, &http)
                    .await
                    .map_err(|e| self.err(e))
            })
            .await
    }

    /// Builds the authorisation request.
    pub async fn start(&self) -> Result<Start, OidcError> {
        let md = self.metadata().await?.clone();
        let client = CoreClient::from_provider_metadata(
            md,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::new(self.config.redirect_uri.clone()).map_err(|e| self.err(e))?);
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let mut req = client.authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        );
        for s in &self.config.scopes {
            req = req.add_scope(Scope::new(s.clone()));
        }
        if let Some(acr) = &self.config.acr {
            req = req.add_auth_context_value(openidconnect::AuthenticationContextClass::new(acr.clone()));
        }
        let (url, state, nonce) = req.set_pkce_challenge(challenge).url();
        Ok(Start {
            url: url.to_string(),
            state: state.secret().clone(),
            pkce_verifier: verifier.secret().clone(),
            nonce: nonce.secret().clone(),
        })
    }

    /// Exchanges the code, verifies the ID token, reads the user info.
    pub async fn finish(&self, code: &str, pkce_verifier: &str, nonce: &str) -> Result<Identity, OidcError> {
        let md = self.metadata().await?.clone();
        let client = CoreClient::from_provider_metadata(
            md,
            ClientId::new(self.config.client_id.clone()),
            Some(ClientSecret::new(self.config.client_secret.clone())),
        )
        .set_redirect_uri(RedirectUrl::new(self.config.redirect_uri.clone()).map_err(|e| self.err(e))?);
        let http = self.client();
        let token = client
            .exchange_code(AuthorizationCode::new(code.to_string()))
            .map_err(|e| self.err(e))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_string()))
            .request_async(&http)
            .await
            .map_err(|e| OidcError::Verification(format!("token request: {e}")))?;
        let id_token = token
            .id_token()
            .ok_or_else(|| OidcError::Verification("no ID token".into()))?;
        let claims = id_token
            .claims(&client.id_token_verifier(), &Nonce::new(nonce.to_string()))
            .map_err(|e| OidcError::Verification(format!("ID token: {e}")))?;
        if let Some(want) = &self.config.acr
            && claims.auth_context_ref().map(|a| a.as_str()) != Some(want.as_str())
        {
            return Err(OidcError::Verification(format!(
                "authentication context is not {want}"
            )));
        }
        let subject = claims.subject().clone();
        let info: UserInfo = client
            .user_info(token.access_token().clone(), Some(subject.clone()))
            .map_err(|e| self.err(e))?
            .request_async(&http)
            .await
            .map_err(|e| OidcError::Verification(format!("user info: {e}")))?;
        let gender = info
            .gender()
            .map(|g: &CoreGenderClaim| g.as_str().to_string())
            .unwrap_or_default();
        Ok(Identity {
            subject: subject.as_str().to_string(),
            family_name: first(info.family_name())
                .or_else(|| first(claims.family_name()))
                .unwrap_or_default(),
            given_name: first(info.given_name())
                .or_else(|| first(claims.given_name()))
                .unwrap_or_default()
                .split_whitespace()
                .next()
                .unwrap_or("")
                .to_string(),
            birthdate: info
                .birthdate()
                .or(claims.birthdate())
                .map(|b| b.as_str().to_string())
                .unwrap_or_default(),
            gender,
            email: info.email().map(|e| e.as_str().to_string()),
            rpps: match self.config.audience {
                Audience::Holders => None,
                Audience::Professionals => info
                    .additional_claims()
                    .other
                    .get(&self.config.rpps_claim)
                    .and_then(|v| v.as_str())
                    .and_then(rpps_of),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rpps_from_national_ids() {
        assert_eq!(rpps_of("810000000001").as_deref(), Some("10000000001"));
        assert_eq!(rpps_of("10000000001").as_deref(), Some("10000000001"));
        // Type 0 (ADELI) or malformed ids are no RPPS.
        assert_eq!(rpps_of("012345678"), None);
        assert_eq!(rpps_of("910000000001"), None);
        assert_eq!(rpps_of("8100000000a1"), None);
        assert_eq!(rpps_of(""), None);
    }

    #[test]
    fn audience_defaults_to_holders() {
        let c: OidcProviderConfig = serde_json::from_value(serde_json::json!({
            "issuer": "https://x", "client_id": "a", "client_secret": "b", "redirect_uri": "https://y"
        }))
        .unwrap();
        assert_eq!(c.audience, Audience::Holders);
        assert_eq!(c.rpps_claim, "SubjectNameID");
    }
}
