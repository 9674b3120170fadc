//! Establishment systems (SMART Backend Services, issue 6): registered clients, the JWT
//! assertions they used (each `jti` once), and their short-lived access tokens. The JWT checks
//! live in `carnet-server::smart`. Nothing here is health data.

use crate::Store;
use crate::crypto::sha256_hex;
use crate::db::query::Query;
use crate::error::StoreError;

/// Lifetime of an access token.
pub const SYSTEM_TOKEN_SECONDS: i64 = 300;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SystemClient {
    pub client_id: String,
    pub finess: String,
    pub name: String,
    /// The client's public key, a JWK (JSON text).
    pub jwk: String,
}

impl Store {
    /// Registers (or replaces the key of) an establishment's system.
    pub async fn register_system_client(&self, c: &SystemClient) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO system_clients (client_id, finess, name, jwk, created_at) VALUES ($1, $2, $3, \
                 $4, $5) ON CONFLICT (client_id) DO UPDATE SET finess = excluded.finess, name = \
                 excluded.name, jwk = excluded.jwk, revoked_at = NULL",
            )
            .binds((&c.client_id, &c.finess, &c.name, &c.jwk, self.now().as_micros())),
            "register system client",
        )
        .await?;
        tx.commit().await
    }

    pub async fn system_client(&self, client_id: &str) -> Result<Option<SystemClient>, StoreError> {
        self.db
            .fetch_optional(
                Query::new(
                    "SELECT client_id, finess, name, jwk FROM system_clients WHERE client_id = $1 AND \
                     revoked_at IS NULL",
                )
                .bind(client_id),
                "read system client",
            )
            .await
            .and_then(|r| {
                r.map(|mut r| {
                    Ok(SystemClient {
                        client_id: r.take(0)?,
                        finess: r.take(1)?,
                        name: r.take(2)?,
                        jwk: r.take(3)?,
                    })
                })
                .transpose()
            })
    }

    /// Records an assertion's `jti`; `false` if that client already used it (a replay).
    pub async fn use_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let q = Query::new("INSERT INTO system_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)")
            .binds((client_id, jti, expires_at));
        match tx.execute(q, "record assertion").await {
            Ok(_) => {
                tx.commit().await?;
                Ok(true)
            }
            Err(e) if e.is_unique_violation() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Issues an access token for a client (shown once).
    pub async fn issue_system_token(&self, c: &SystemClient) -> Result<String, StoreError> {
        use base64::Engine;
        let token =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<32>()?);
        let expires = self.now().plus_seconds(SYSTEM_TOKEN_SECONDS).as_micros();
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO system_tokens (token_hash, client_id, finess, expires_at) VALUES ($1, $2, $3, \
                 $4)",
            )
            .binds((sha256_hex(token.as_bytes()), &c.client_id, &c.finess, expires)),
            "issue system token",
        )
        .await?;
        tx.commit().await?;
        Ok(token)
    }

    /// The client (id, FINESS, name) a live token belongs to.
    pub async fn system_token(&self, token: &str) -> Result<Option<SystemClient>, StoreError> {
        let now = self.now().as_micros();
        let hash = sha256_hex(token.as_bytes());
        let row = self
            .db
            .fetch_optional(
                Query::new(
                    "SELECT c.client_id, c.finess, c.name, c.jwk FROM system_tokens t JOIN system_clients c \
                     ON c.client_id = t.client_id WHERE t.token_hash = $1 AND t.expires_at > $2 AND \
                     c.revoked_at IS NULL",
                )
                .bind(&hash)
                .bind(now),
                "read system token",
            )
            .await?;
        match row {
            Some(mut r) => Ok(Some(SystemClient {
                client_id: r.take(0)?,
                finess: r.take(1)?,
                name: r.take(2)?,
                jwk: r.take(3)?,
            })),
            None => Ok(None),
        }
    }
}
