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
    /// The public origin (`https://carnet.example`): WebAuthn's relying party. Unset, the
    /// request's host is used (fine behind one name; set it in production).
    pub public_url: Option<String>,
    /// The domain of holders' secure-messaging addresses (`INS@domain`, MS-1).
    pub messaging_domain: String,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: 25 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            document_limit_bytes: 20 * 1024 * 1024,
            demo: false,
            public_url: None,
            messaging_domain: "patient.carnet.localhost".into(),
        }
    }
}

/// What every handler can reach. Cloned for every request (and by several extractors of one):
/// one reference count, its parts behind one `Arc` (BENCHMARKS.md, session 11).
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

    /// The origin people reach this server at: `public_url` when configured, else the request's
    /// `Host` (`http://` for loopback only, `https://` otherwise); `None` without a usable Host.
    pub fn public_origin(&self, headers: &axum::http::HeaderMap) -> Option<String> {
        if let Some(u) = &self.settings.public_url {
            return Some(u.trim_end_matches('/').to_string());
        }
        let host = request_host(headers)?;
        let local =
            host.starts_with("127.0.0.1") || host.starts_with("localhost") || host.starts_with("[::1]");
        Some(format!("{}://{host}", if local { "http" } else { "https" }))
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
