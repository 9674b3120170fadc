use std::sync::Arc;
use std::time::Duration;

use carnet_store::Store;

/// Settings of the HTTP layer.
#[derive(Clone, Debug)]
pub struct ServerSettings {
    pub body_limit_bytes: usize,
    pub request_timeout: Duration,
    /// Whether this instance runs the demo (shown on the home page).
    pub demo: bool,
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: 25 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            demo: false,
        }
    }
}

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub store: Store,
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
    pub fn new(store: Store, operator_token: &str, settings: ServerSettings) -> Self {
        Self {
            store,
            wake: Arc::default(),
            oidc: Arc::default(),
            mailbox: None,
            operator_token_sha256: Arc::new(carnet_store::crypto::sha256(operator_token.as_bytes())),
            settings: Arc::new(settings),
        }
    }

    /// Whether `presented` is the operator token (constant time in the token's content).
    pub fn is_operator_token(&self, presented: &str) -> bool {
        let h = carnet_store::crypto::sha256(presented.as_bytes());
        aws_lc_rs::constant_time::verify_slices_are_equal(&h, self.operator_token_sha256.as_ref()).is_ok()
    }
}
