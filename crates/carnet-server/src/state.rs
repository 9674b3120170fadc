use std::sync::Arc;
use std::time::Duration;

use carnet_domain::access::HabilitationMatrix;
use carnet_store::Store;
use carnet_store::gate::Gate;

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// Largest document accepted (DM-1; 20 MiB by default).
    pub document_limit_bytes: usize,
    /// Whether this instance runs the demo (shown on the home page).
    pub demo: bool,
    /// The public origin (`https://carnet.example`): every link, the SMART issuer, the
    /// audience of client assertions, WebAuthn's relying party (S-21). Required unless the
    /// server listens on loopback only ([`local_origins`]); never taken from a request.
    pub public_url: Option<String>,
    /// Other origins of this same server a request may name by its `Host` (a loopback
    /// server's `localhost` twin, for WebAuthn); anything else gets `public_url`.
    pub aliases: Vec<String>,
    /// The reverse proxies whose forwarded client address is believed (`client`); none by
    /// default: the socket's peer is the client.
    pub trusted_proxies: Vec<ipnet::IpNet>,
    /// The domain of holders' secure-messaging addresses (`INS@domain`, MS-1).
    pub messaging_domain: String,
}

impl ServerSettings {
    /// The origin a request is answered with (S-21): `public_url`, or the configured alias its
    /// `Host` names; never an origin made up from the request.
    pub fn origin_for(&self, headers: &axum::http::HeaderMap) -> String {
        let canonical = self
            .public_url
            .as_deref()
            .unwrap_or("http://localhost")
            .trim_end_matches('/');
        let named = request_host(headers).and_then(|host| {
            self.aliases
                .iter()
                .map(|a| a.trim_end_matches('/'))
                .find(|a| a.split("://").nth(1) == Some(host))
        });
        named.unwrap_or(canonical).to_string()
    }
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: 25 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            document_limit_bytes: 20 * 1024 * 1024,
            demo: false,
            public_url: None,
            aliases: Vec::new(),
            trusted_proxies: Vec::new(),
            messaging_domain: "patient.carnet.localhost".into(),
        }
    }
}

/// What every handler can reach. Cloned for every request (and by several extractors of one):
/// one reference count, its parts behind one `Arc` (cheap to clone per extractor).
#[derive(Clone, Debug)]
pub struct AppState(Arc<AppStateParts>);

impl std::ops::Deref for AppState {
    type Target = AppStateParts;
    fn deref(&self) -> &AppStateParts {
        &self.0
    }
}

/// What an [`AppState`] holds.
#[derive(Clone, Debug)]
pub struct AppStateParts {
    pub store: Store,
    /// The one way to holder health data (decides, traces, notifies).
    pub gate: Gate,
    /// Wakes the delivery loop after a handler queued a message (a login code).
    pub wake: Arc<tokio::sync::Notify>,
    /// Configured OpenID providers, by name (e.g. "franceconnect").
    pub oidc: Arc<std::collections::BTreeMap<String, Arc<crate::oidc::OidcProvider>>>,
    /// The demo mailbox shown at /demo/outbox (demo mode only).
    pub mailbox: Option<crate::mail::DemoMailbox>,
    /// SHA-256 of the operator API token; compared in constant time.
    pub operator_token_sha256: Arc<[u8; 32]>,
    pub settings: Arc<ServerSettings>,
}

impl AppState {
    /// Must be called inside a Tokio runtime (the gate's trace appender is a task).
    pub fn new(store: Store, operator_token: &str, settings: ServerSettings) -> Self {
        Self(Arc::new(AppStateParts {
            gate: Gate::new(store.clone(), HabilitationMatrix::default_matrix()),
            wake: store.delivery_wake(),
            store,
            oidc: Arc::default(),
            mailbox: None,
            operator_token_sha256: Arc::new(carnet_store::crypto::sha256(operator_token.as_bytes())),
            settings: Arc::new(settings),
        }))
    }

    /// The parts, to set up before the server starts (copied if the state was cloned already).
    pub fn parts_mut(&mut self) -> &mut AppStateParts {
        Arc::make_mut(&mut self.0)
    }

    /// The origin people reach this server at (S-21): the configured `public_url`, or one of
    /// its configured aliases when the request's `Host` names it. A request never makes up an
    /// origin: any other `Host` gets `public_url`.
    pub fn public_origin(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        Some(self.settings.origin_for(headers))
    }

    /// Whether `presented` is the operator token (constant time in the token's content).
    pub fn is_operator_token(&self, presented: &str) -> bool {
        let h = carnet_store::crypto::sha256(presented.as_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(&h, self.operator_token_sha256.as_ref()).is_ok()
    }
}

/// The request's `Host`, if it is a plain host name or address with an optional port.
pub fn request_host(headers: &axum::http::HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            !h.is_empty()
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b".:-[]".contains(&b))
        })
}

/// S-21: the origins of a server listening on `addr` without a configured `public_url`: its
/// own address and, on loopback, the `localhost` twin (WebAuthn needs a domain). `None` when
/// `addr` is not loopback: such a server must be told its public URL.
pub fn local_origins(addr: std::net::SocketAddr) -> Option<(String, Vec<String>)> {
    if !addr.ip().is_loopback() {
        return None;
    }
    let port = addr.port();
    Some((format!("http://{addr}"), vec![format!("http://localhost:{port}")]))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(host: &str) -> axum::http::HeaderMap {
        let mut h = axum::http::HeaderMap::new();
        h.insert(axum::http::header::HOST, host.parse().unwrap());
        h
    }

    /// S-21: links follow the configured origins, whatever `Host` a client sends.
    #[test]
    fn no_origin_is_taken_from_a_request_s21() {
        let (public_url, aliases) = local_origins("127.0.0.1:8080".parse().unwrap()).unwrap();
        assert!(local_origins("0.0.0.0:8080".parse().unwrap()).is_none());
        assert!(local_origins("192.0.2.1:8080".parse().unwrap()).is_none());
        let settings = ServerSettings {
            public_url: Some(public_url),
            aliases,
            ..ServerSettings::default()
        };
        let origin = |host: &str| settings.origin_for(&headers(host));
        assert_eq!(origin("127.0.0.1:8080"), "http://127.0.0.1:8080");
        assert_eq!(origin("localhost:8080"), "http://localhost:8080");
        assert_eq!(origin("evil.example"), "http://127.0.0.1:8080");
        assert_eq!(origin("localhost:9999"), "http://127.0.0.1:8080");
    }
}
