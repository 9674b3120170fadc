//! Passkeys (WebAuthn) of holders: registered public keys and single-use challenges. The
//! protocol checks (client data, authenticator data, signature) live in
//! `carnet-server::webauthn`; this module only stores, with compare-and-set on the signature
//! counter so that a cloned authenticator is detected across servers.

use carnet_domain::HolderId;
use uuid::Uuid;

use crate::Store;
use crate::crypto::sha256_hex;
use crate::db::query::{FromValues, Query, Values};
use crate::error::StoreError;

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

/// A row of `SELECT credential_id, holder_id, public_key, sign_count, created_at,
/// last_used_at, credential`.
impl FromValues for Passkey {
    fn from_values(mut r: Values) -> Result<Self, StoreError> {
        Ok(Passkey {
            credential_id: r.take(0)?,
            holder: HolderId::from_uuid(r.take(1)?),
            public_key: r.take(2)?,
            sign_count: r.take(3)?,
            created_at: r.take(4)?,
            last_used_at: r.take(5)?,
            credential: r.take(6)?,
        })
    }
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
        tx.execute(
            Query::new(
                "INSERT INTO webauthn_challenges (challenge_hash, purpose, holder_id, expires_at, state) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .binds((
                sha256_hex(challenge.as_bytes()),
                purpose,
                holder.map(|h| *h.as_uuid()),
                expires,
                state,
            )),
            "store challenge",
        )
        .await?;
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
        let row = tx
            .fetch_optional_as::<(String, Option<Uuid>, i64, Option<String>)>(
                Query::new(
                    "DELETE FROM webauthn_challenges WHERE challenge_hash = $1 RETURNING purpose, holder_id, \
                     expires_at, state",
                )
                .bind(sha256_hex(challenge.as_bytes())),
                "take challenge",
            )
            .await?;
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
        let q = Query::new(
            "INSERT INTO passkeys (credential_id, holder_id, public_key, sign_count, created_at, credential) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .binds((
            credential_id,
            holder.as_uuid(),
            Vec::<u8>::new(),
            sign_count,
            self.now().as_micros(),
            credential,
        ));
        tx.execute(q, "store passkey").await.map_err(|e| {
            if e.is_unique_violation() {
                StoreError::Conflict
            } else {
                e
            }
        })?;
        tx.commit().await
    }

    pub async fn passkey(&self, credential_id: &str) -> Result<Option<Passkey>, StoreError> {
        self.db
            .fetch_optional_as(
                Query::new(
                    "SELECT credential_id, holder_id, public_key, sign_count, created_at, last_used_at, \
                     credential FROM passkeys WHERE credential_id = $1",
                )
                .bind(credential_id),
                "read passkey",
            )
            .await
    }

    pub async fn passkeys_of(&self, holder: HolderId) -> Result<Vec<Passkey>, StoreError> {
        self.db
            .fetch_all_as(
                Query::new(
                    "SELECT credential_id, holder_id, public_key, sign_count, created_at, last_used_at, \
                     credential FROM passkeys WHERE holder_id = $1 ORDER BY created_at",
                )
                .bind(holder.as_uuid()),
                "list passkeys",
            )
            .await
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
        let n = tx
            .execute(
                Query::new(
                    "UPDATE passkeys SET sign_count = $1, last_used_at = $2, credential = $5 WHERE \
                     credential_id = $3 AND sign_count = $4",
                )
                .binds((new, self.now().as_micros(), credential_id, seen, credential)),
                "use passkey",
            )
            .await?;
        tx.commit().await?;
        if n == 1 { Ok(()) } else { Err(StoreError::Mismatch) }
    }

    pub async fn delete_passkey(&self, holder: HolderId, credential_id: &str) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new("DELETE FROM passkeys WHERE holder_id = $1 AND credential_id = $2")
                    .binds((holder.as_uuid(), credential_id)),
                "delete passkey",
            )
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }
}
