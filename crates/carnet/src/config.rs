//! Configuration: defaults < TOML file < `CARNET_*` environment < command-line flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use carnet_store::datadir::StoreSettings;
use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::GlobalArgs;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub listen: String,
    #[serde(flatten)]
    pub store: StoreSettings,
    /// The operator API token; default: read from (or created in) DATA_DIR/operator.token.
    pub operator_token: Option<String>,
    pub log_format: String,
    pub body_limit_mib: usize,
    /// Largest document accepted, in MiB (DM-1).
    pub document_limit_mib: usize,
    pub request_timeout_seconds: u64,
    /// The public origin people use, e.g. `https://carnet.example`: every link, the SMART
    /// issuer, the passkeys' relying party (S-21). Required unless listening on loopback.
    pub public_url: Option<String>,
    /// Reverse proxies (addresses or networks) whose forwarded client address is believed for
    /// rate limits and lockouts (RFC 7239 `Forwarded`, `X-Forwarded-For`). Empty: none.
    pub trusted_proxies: Vec<String>,
    /// The domain of holders' secure-messaging addresses (`INS@domain`, MS-1).
    pub messaging_domain: String,
    pub shutdown_grace_seconds: u64,
    /// How often the background lifecycle job runs.
    pub job_interval_seconds: u64,
    /// How long a server's claim on an outgoing message lasts before another may send it (a
    /// server that dies mid-delivery delays its messages by at most this).
    pub outbox_lease_seconds: i64,
    /// SMTP relay for e-mails (codes, information letters, notices), e.g.
    /// `smtp://127.0.0.1:25`, `smtp://user:pass@relay:587?tls=required`, `smtps://relay:465`.
    pub smtp_url: Option<String>,
    /// Sender of e-mails.
    pub mail_from: String,
    /// SMS gateway: `POST {url}` with JSON `{"to", "text"}` (and `sms_gateway_token` as bearer).
    pub sms_gateway_url: Option<String>,
    pub sms_gateway_token: Option<String>,
    /// OpenID Connect providers by name: `[oidc.franceconnect] issuer = …, client_id = …,
    /// client_secret = …, redirect_uri = "https://HOST/auth/oidc/franceconnect/callback"`.
    #[serde(default)]
    pub oidc: std::collections::BTreeMap<String, carnet_server::oidc::OidcProviderConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            store: StoreSettings::new("./carnet-data"),
            operator_token: None,
            log_format: "pretty".into(),
            body_limit_mib: 25,
            document_limit_mib: 20,
            request_timeout_seconds: 30,
            public_url: None,
            trusted_proxies: Vec::new(),
            messaging_domain: "patient.carnet.localhost".into(),
            shutdown_grace_seconds: 20,
            job_interval_seconds: 30,
            outbox_lease_seconds: 120,
            smtp_url: None,
            mail_from: "Carnet <ne-pas-repondre@carnet.invalid>".into(),
            sms_gateway_url: None,
            sms_gateway_token: None,
            oidc: Default::default(),
        }
    }
}

/// Only the flags that were given, so they override without erasing the layers below.
#[derive(Serialize, Default)]
struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    listen: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    keys_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
}

impl Config {
    pub fn load(args: &GlobalArgs, listen: Option<String>) -> Result<Config> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(file) = &args.config {
            if !file.exists() {
                anyhow::bail!("configuration file {} does not exist", file.display());
            }
            fig = fig.merge(Toml::file(file));
        }
        fig = fig
            .merge(
                Env::prefixed("CARNET_")
                    .split("__")
                    .ignore(&["config", "master_key"]),
            )
            .merge(Serialized::defaults(Overrides {
                listen,
                data_dir: args.data_dir.clone(),
                database_url: args.database_url.clone(),
                keys_url: args.keys_url.clone(),
                log_format: args.log_format.clone(),
            }));
        fig.extract().context("invalid configuration")
    }
}

/// The operator token: configured, or kept in DATA_DIR/operator.token (created 0600 once).
pub fn operator_token(cfg: &Config) -> Result<String> {
    if let Some(t) = cfg.operator_token.as_ref().filter(|t| !t.trim().is_empty()) {
        if t.len() < 24 {
            anyhow::bail!("operator_token must be at least 24 characters");
        }
        return Ok(t.trim().to_string());
    }
    let path = cfg.store.data_dir.join("operator.token");
    read_or_create_token(&path)
}

/// Several servers sharing a data directory may start at once: the token is written under a
/// name of its own, then linked into place, which fails if another got there first —
/// then theirs is the token (a plain rename would let each server keep a different one).
fn read_or_create_token(path: &Path) -> Result<String> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map(|t| t.trim().to_string())
            .with_context(|| format!("reading {}", path.display()))
    };
    if path.exists() {
        return read(path);
    }
    let t = carnet_store::crypto::random_token()?;
    let nonce = carnet_store::crypto::random_token()?;
    let mine = path.with_extension(format!("token.{}", nonce.get(..12).unwrap_or("new")));
    carnet_store::datadir::write_file_durably(&mine, format!("{t}\n").as_bytes(), 0o600)
        .with_context(|| format!("writing {}", mine.display()))?;
    let linked = std::fs::hard_link(&mine, path);
    let _ = std::fs::remove_file(&mine);
    match linked {
        Ok(()) => {
            if let Some(dir) = path.parent() {
                std::fs::File::open(dir)
                    .and_then(|d| d.sync_all())
                    .with_context(|| format!("syncing {}", dir.display()))?;
            }
            Ok(t)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
        Err(e) => Err(e).with_context(|| format!("writing {}", path.display())),
    }
}

#[cfg(test)]
mod tests {
    /// Three servers sharing a data directory start at once (the deployment drill): they must
    /// agree on the operator token, or the metrics of all but one refuse the operator.
    #[test]
    fn servers_starting_together_share_one_operator_token() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("operator.token");
        let tokens: Vec<String> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| s.spawn(|| super::read_or_create_token(&path).expect("token")))
                .collect();
            handles.into_iter().map(|h| h.join().expect("thread")).collect()
        });
        assert!(
            tokens.iter().all(|t| t == &tokens[0] && t.len() >= 24),
            "{tokens:?}"
        );
        assert_eq!(std::fs::read_to_string(&path).expect("file").trim(), tokens[0]);
        let left: Vec<_> = std::fs::read_dir(dir.path()).expect("dir").collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
    }
}
