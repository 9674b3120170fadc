//! Establishment systems (SMART Backend Services, issue 6): registered clients, the JWT
//! assertions they used (each `jti` once), and their short-lived access tokens. The JWT checks
//! live in `carnet-server::smart`. Nothing here is health data.

use sqlx::Row;

use crate::crypto::sha256_hex;
use crate::db::reader::Read;
use crate::error::StoreError;
use crate::{Store, on_db, on_tx};

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
        on_tx!(&mut tx, t => sqlx::query(
            "INSERT INTO system_clients (client_id, finess, name, jwk, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (client_id) DO UPDATE SET finess = excluded.finess, name = excluded.name, jwk = excluded.jwk, revoked_at = NULL")
            .bind(&c.client_id).bind(&c.finess).bind(&c.name).bind(&c.jwk).bind(self.now().as_micros())
            .execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("register system client"))?;
        tx.commit().await
    }

    pub async fn system_client(&self, client_id: &str) -> Result<Option<SystemClient>, StoreError> {
        on_db!(&self.db, p => sqlx::query(
            "SELECT client_id, finess, name, jwk FROM system_clients WHERE client_id = $1 AND revoked_at IS NULL")
            .bind(client_id).fetch_optional(p).await
            .map(|r| r.map(|r| SystemClient { client_id: r.get(0), finess: r.get(1), name: r.get(2), jwk: r.get(3) })))
        .map_err(StoreError::db("read system client"))
    }

    /// Records an assertion's `jti`; `false` if that client already used it (a replay).
    pub async fn use_assertion(
        &self,
        client_id: &str,
        jti: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let r = on_tx!(&mut tx, t => sqlx::query(
            "INSERT INTO system_assertions (client_id, jti, expires_at) VALUES ($1, $2, $3)")
            .bind(client_id).bind(jti).bind(expires_at).execute(&mut **t).await.map(|r| r.rows_affected()));
        match r {
            Ok(_) => {
                tx.commit().await?;
                Ok(true)
            }
            Err(e) if crate::db::is_unique_violation(&e) => Ok(false),
            Err(e) => Err(StoreError::db("record assertion")(e)),
        }
    }

    /// Issues an access token for a client (shown once).
    pub async fn issue_system_token(&self, c: &SystemClient) -> Result<String, StoreError> {
        use base64::Engine;
        let token =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::random_bytes::<32>()?);
        let expires = self.now().plus_seconds(SYSTEM_TOKEN_SECONDS).as_micros();
        let mut tx = self.db.begin().await?;
        on_tx!(&mut tx, t => sqlx::query(
            "INSERT INTO system_tokens (token_hash, client_id, finess, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(sha256_hex(token.as_bytes())).bind(&c.client_id).bind(&c.finess).bind(expires)
            .execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("issue system token"))?;
        tx.commit().await?;
        Ok(token)
    }

    /// The client (id, FINESS, name) a live token belongs to.
    pub async fn system_token(&self, token: &str) -> Result<Option<SystemClient>, StoreError> {
        let now = self.now().as_micros();
        let hash = sha256_hex(token.as_bytes());
        let row = self
            .db
            .read_one(
                Read::new(
                    "SELECT c.client_id, c.finess, c.name, c.jwk FROM system_tokens t \
                     JOIN system_clients c ON c.client_id = t.client_id \
                     WHERE t.token_hash = $1 AND t.expires_at > $2 AND c.revoked_at IS NULL",
                )
                .text(&hash)
                .int(now),
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
