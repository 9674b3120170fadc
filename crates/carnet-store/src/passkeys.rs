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
    /// Uncompressed P-256 point.
    pub public_key: Vec<u8>,
    pub sign_count: i64,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
}

impl Store {
    /// A fresh challenge (base64url, 32 random bytes) for `purpose`, bound to `holder` when the
    /// caller is known (registration).
    pub async fn create_webauthn_challenge(
        &self,
        purpose: &str,
        holder: Option<HolderId>,
    ) -> Result<String, StoreError> {
        use base64::Engine;
        let bytes = crate::crypto::random_bytes::<32>()?;
        let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let expires = self.now().plus_seconds(CHALLENGE_SECONDS).as_micros();
        let mut tx = self.db.begin().await?;
        on_tx!(&mut tx, t => sqlx::query(
            "INSERT INTO webauthn_challenges (challenge_hash, purpose, holder_id, expires_at) VALUES ($1, $2, $3, $4)")
            .bind(sha256_hex(challenge.as_bytes())).bind(purpose).bind(holder.map(|h| *h.as_uuid())).bind(expires)
            .execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("store challenge"))?;
        tx.commit().await?;
        Ok(challenge)
    }

    /// Consumes a challenge: valid once, for its purpose, before it expires. Returns the holder
    /// it was bound to. Anything else is [`StoreError::Mismatch`].
    pub async fn take_webauthn_challenge(
        &self,
        challenge: &str,
        purpose: &str,
    ) -> Result<Option<HolderId>, StoreError> {
        let now = self.now().as_micros();
        let mut tx = self.db.begin().await?;
        let row = on_tx!(&mut tx, t => sqlx::query(
            "DELETE FROM webauthn_challenges WHERE challenge_hash = $1 RETURNING purpose, holder_id, expires_at")
            .bind(sha256_hex(challenge.as_bytes())).fetch_optional(&mut **t).await
            .map(|r| r.map(|r| (r.get::<String, _>(0), r.get::<Option<Uuid>, _>(1), r.get::<i64, _>(2)))))
        .map_err(StoreError::db("take challenge"))?;
        tx.commit().await?;
        match row {
            Some((p, holder, expires)) if p == purpose && expires > now => {
                Ok(holder.map(HolderId::from_uuid))
            }
            _ => Err(StoreError::Mismatch),
        }
    }

    pub async fn add_passkey(
        &self,
        holder: HolderId,
        credential_id: &str,
        public_key: &[u8],
        sign_count: i64,
    ) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        on_tx!(&mut tx, t => sqlx::query(
            "INSERT INTO passkeys (credential_id, holder_id, public_key, sign_count, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(credential_id).bind(holder.as_uuid()).bind(public_key).bind(sign_count).bind(self.now().as_micros())
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
            "SELECT credential_id, holder_id, public_key, sign_count, created_at, last_used_at FROM passkeys WHERE credential_id = $1")
            .bind(credential_id).fetch_optional(p).await
            .map(|r| r.map(|r| Passkey {
                credential_id: r.get(0),
                holder: HolderId::from_uuid(r.get::<Uuid, _>(1)),
                public_key: r.get(2),
                sign_count: r.get(3),
                created_at: r.get(4),
                last_used_at: r.get(5),
            })))
        .map_err(StoreError::db("read passkey"))
    }

    pub async fn passkeys_of(&self, holder: HolderId) -> Result<Vec<Passkey>, StoreError> {
        on_db!(&self.db, p => sqlx::query(
            "SELECT credential_id, holder_id, public_key, sign_count, created_at, last_used_at FROM passkeys WHERE holder_id = $1 ORDER BY created_at")
            .bind(holder.as_uuid()).fetch_all(p).await
            .map(|rs| rs.into_iter().map(|r| Passkey {
                credential_id: r.get(0),
                holder: HolderId::from_uuid(r.get::<Uuid, _>(1)),
                public_key: r.get(2),
                sign_count: r.get(3),
                created_at: r.get(4),
                last_used_at: r.get(5),
            }).collect()))
        .map_err(StoreError::db("list passkeys"))
    }

    /// Records a use: the counter moves from `seen` to `new` (compare-and-set); a lost race or
    /// a counter that did not grow is `Mismatch` (a cloned authenticator, WebAuthn §6.1.1).
    pub async fn use_passkey(&self, credential_id: &str, seen: i64, new: i64) -> Result<(), StoreError> {
        if (new != 0 || seen != 0) && new <= seen {
            return Err(StoreError::Mismatch);
        }
        let mut tx = self.db.begin().await?;
        let n = on_tx!(&mut tx, t => sqlx::query(
            "UPDATE passkeys SET sign_count = $1, last_used_at = $2 WHERE credential_id = $3 AND sign_count = $4")
            .bind(new).bind(self.now().as_micros()).bind(credential_id).bind(seen)
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
