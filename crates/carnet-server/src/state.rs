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
}

impl Default for ServerSettings {
    fn default() -> Self {
        Self {
            body_limit_bytes: 25 * 1024 * 1024,
            request_timeout: Duration::from_secs(30),
            document_limit_bytes: 20 * 1024 * 1024,
            demo: false,
            public_url: None,
        }
    }
}

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
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
        Self {
            gate: Gate::new(store.clone(), HabilitationMatrix::default_matrix()),
            wake: store.delivery_wake(),
            store,
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
