//! Passkeys (WebAuthn) of holders: registered public keys and single-use challenges. The
//! protocol checks (client data, authenticator data, signature) live in
//! `carnet-server::webauthn`; this module only stores, with compare-and-set on the signature
//! counter so that a cloned authenticator is detected across servers.

use carnet_domain::HolderId;
use sqlx::Row;
use uuid::Uuid;

use crate::crypto::sha256_hex;
use crate::error::StoreError;
use crate::{Store, on_db, on_tx};

/// How long a registration or login challenge stays valid.
pub const CHALLENGE_SECONDS: i64 = 300;

/// A registered passkey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Passkey {
    pub credential_id: String,
    pub holder: HolderId,
    /// The WebAuthn library's credential (JSON), for passkeys registered since version 24.
    pub credential: Option<String>,
    /// Uncompressed P-256 point (passkeys registered before; empty since).
    pub public_key: Vec<u8>,
    pub sign_count: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl Store {
    /// Keeps a ceremony's state (the WebAuthn library's, JSON) under its challenge until the
    /// second step, for `purpose`, bound to `holder` when the caller is known (registration).
    pub async fn save_webauthn_state(
        &self,
        challenge: &str,
        purpose: &str,
        holder: Option<HolderId>,
        state: &str,
    ) -> Result<(), StoreError> {
        let expires = self.now().plus_seconds(CHALLENGE_SECONDS).as_micros();
        let mut tx = self.db.begin().await?;
        on_tx!(&mut tx, t => sqlx::query(
            "INSERT INTO webauthn_challenges (challenge_hash, purpose, holder_id, expires_at, state) VALUES ($1, $2, $3, $4, $5)")
            .bind(sha256_hex(challenge.as_bytes())).bind(purpose).bind(holder.map(|h| *h.as_uuid())).bind(expires).bind(state)
            .execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("store challenge"))?;
        tx.commit().await
    }

    /// Consumes a ceremony's state: once, for its purpose, before it expires. Returns the
    /// holder it was bound to and the state. Anything else is [`StoreError::Mismatch`].
    pub async fn take_webauthn_state(
        &self,
        challenge: &str,
        purpose: &str,
    ) -> Result<(Option<HolderId>, String), StoreError> {
        let now = self.now().as_micros();
        let mut tx = self.db.begin().await?;
        let row = on_tx!(&mut tx, t => sqlx::query(
            "DELETE FROM webauthn_challenges WHERE challenge_hash = $1 RETURNING purpose, holder_id, expires_at, state")
            .bind(sha256_hex(challenge.as_bytes())).fetch_optional(&mut **t).await
            .map(|r| r.map(|r| (r.get::<String, _>(0), r.get::<Option<Uuid>, _>(1), r.get::<i64, _>(2), r.get::<Option<String>, _>(3)))))
        .map_err(StoreError::db("take challenge"))?;
        tx.commit().await?;
        match row {
            Some((p, holder, expires, Some(state))) if p == purpose && expires > now => {
                Ok((holder.map(HolderId::from_uuid), state))
            }
            _ => Err(StoreError::Mismatch),
        }
    }

    /// Registers a passkey: the library's credential (JSON) and its counter.
    pub async fn add_passkey(
        &self,
        holder: HolderId,
        credential_id: &str,
        credential: &str,
        sign_count: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        on_tx!(&mut tx, t => sqlx::query(
            "INSERT INTO passkeys (credential_id, holder_id, public_key, sign_count, created_at, credential) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(credential_id).bind(holder.as_uuid()).bind(Vec::<u8>::new()).bind(sign_count).bind(self.now().as_micros()).bind(credential)
            .execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(|e| {
            if crate::db::is_unique_violation(&e) {
                StoreError::Conflict
            } else {
                StoreError::db("store passkey")(e)
            }
        })?;
        tx.commit().await
    }

    pub async fn passkey(&self, credential_id: &str) -> Result<Option<Passkey>, StoreError> {
        on_db!(&self.db, p => sqlx::query(
            "SELECT credential_id, holder_id, public_key, sign_count, created_at, last_used_at, credential FROM passkeys WHERE credential_id = $1")
            .bind(credential_id).fetch_optional(p).await
            .map(|r| r.map(|r| Passkey {
                credential_id: r.get(0),
                holder: HolderId::from_uuid(r.get::<Uuid, _>(1)),
                public_key: r.get(2),
                sign_count: r.get(3),
                created_at: r.get(4),
                last_used_at: r.get(5),
                credential: r.get(6),
            })))
        .map_err(StoreError::db("read passkey"))
    }

    pub async fn passkeys_of(&self, holder: HolderId) -> Result<Vec<Passkey>, StoreError> {
        on_db!(&self.db, p => sqlx::query(
            "SELECT credential_id, holder_id, public_key, sign_count, created_at, last_used_at, credential FROM passkeys WHERE holder_id = $1 ORDER BY created_at")
            .bind(holder.as_uuid()).fetch_all(p).await
            .map(|rs| rs.into_iter().map(|r| Passkey {
                credential_id: r.get(0),
                holder: HolderId::from_uuid(r.get::<Uuid, _>(1)),
                public_key: r.get(2),
                sign_count: r.get(3),
                created_at: r.get(4),
                last_used_at: r.get(5),
                credential: r.get(6),
            }).collect()))
        .map_err(StoreError::db("list passkeys"))
    }

    /// Records a use: the counter moves from `seen` to `new` (compare-and-set) and the
    /// credential as the library updated it is kept; a lost race or a counter that did not
    /// grow is `Mismatch` (a cloned authenticator, WebAuthn §6.1.1).
    pub async fn use_passkey(
        &self,
        credential_id: &str,
        seen: i64,
        new: i64,
        credential: &str,
    ) -> Result<(), StoreError> {
        if (new != 0 || seen != 0) && new <= seen {
            return Err(StoreError::Mismatch);
        }
        let mut tx = self.db.begin().await?;
        let n = on_tx!(&mut tx, t => sqlx::query(
            "UPDATE passkeys SET sign_count = $1, last_used_at = $2, credential = $5 WHERE credential_id = $3 AND sign_count = $4")
            .bind(new).bind(self.now().as_micros()).bind(credential_id).bind(seen).bind(credential)
            .execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("use passkey"))?;
        tx.commit().await?;
        if n == 1 { Ok(()) } else { Err(StoreError::Mismatch) }
    }

    pub async fn delete_passkey(&self, holder: HolderId, credential_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let n = on_tx!(&mut tx, t => sqlx::query("DELETE FROM passkeys WHERE holder_id = $1 AND credential_id = $2")
            .bind(holder.as_uuid()).bind(credential_id).execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("delete passkey"))?;
        tx.commit().await?;
        Ok(n == 1)
    }
}
