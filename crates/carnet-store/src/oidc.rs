//! Storage side of OpenID Connect logins: pending requests (single use, 10 minutes) and the
//! links from a provider's subject to a holder, plus the identity index that finds a holder's
//! space at a first FranceConnect login (LC-4 "or through FranceConnect").

use carnet_domain::HolderId;
use carnet_domain::roster::Administrative;

use crate::Store;
use crate::crypto::sha256_hex;
use crate::db::query::Query;
use crate::error::StoreError;

const REQUEST_TTL_SECONDS: i64 = 600;

/// A pending authorisation request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OidcRequest {
    pub provider: String,
    pub pkce_verifier: String,
    pub nonce: String,
}

/// The identity traits a provider asserts and the roster holds, normalised.
pub fn identity_key(birth_name: &str, first_given: &str, birth_date: &str, sex: &str) -> String {
    let norm = |s: &str| {
        s.trim()
            .to_uppercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "{}|{}|{}|{}",
        norm(birth_name),
        norm(first_given),
        birth_date.trim(),
        sex.trim().to_lowercase()
    )
}

/// The identity key of roster data.
pub fn identity_key_of(admin: &Administrative) -> String {
    let sex = match admin.sex {
        carnet_domain::roster::Sex::Female => "female",
        carnet_domain::roster::Sex::Male => "male",
        carnet_domain::roster::Sex::Unknown => "unknown",
    };
    let date = serde_json::to_value(admin)
        .ok()
        .and_then(|v| v.get("birth_date").and_then(|d| d.as_str()).map(str::to_string))
        .unwrap_or_default();
    identity_key(
        &admin.birth_name,
        admin.given_names.first().map_or("", String::as_str),
        &date,
        sex,
    )
}

impl Store {
    pub async fn identity_index(&self, key: &str) -> Result<String, StoreError> {
        Ok(self
            .service_keys()
            .await?
            .ins_index
            .hmac_hex(format!("identity:{key}").as_bytes()))
    }

    pub(crate) async fn subject_index(&self, provider: &str, subject: &str) -> Result<String, StoreError> {
        Ok(self
            .service_keys()
            .await?
            .ins_index
            .hmac_hex(format!("oidc:{provider}:{subject}").as_bytes()))
    }

    pub async fn save_oidc_request(&self, state: &str, req: &OidcRequest) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO oidc_requests (state_hash, provider, pkce_verifier, nonce, created_at, \
                 expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            )
            .binds((
                sha256_hex(state.as_bytes()),
                &req.provider,
                &req.pkce_verifier,
                &req.nonce,
                now.as_micros(),
                now.plus_seconds(REQUEST_TTL_SECONDS).as_micros(),
            )),
            "save authorisation request",
        )
        .await?;
        // Old requests are garbage.
        tx.execute(
            Query::new("DELETE FROM oidc_requests WHERE expires_at < $1").bind(now.as_micros()),
            "expire authorisation requests",
        )
        .await?;
        tx.commit().await
    }

    /// Takes (and deletes) the request behind `state`: single use, unexpired, else Mismatch.
    pub async fn take_oidc_request(&self, state: &str) -> Result<OidcRequest, StoreError> {
        let now = self.now().as_micros();
        let mut tx = self.db.begin().await?;
        let row = tx
            .fetch_optional_as::<(String, String, String, i64)>(
                Query::new(
                    "DELETE FROM oidc_requests WHERE state_hash = $1 RETURNING provider, pkce_verifier, \
                     nonce, expires_at",
                )
                .bind(sha256_hex(state.as_bytes())),
                "take authorisation request",
            )
            .await?;
        tx.commit().await?;
        match row {
            Some((provider, pkce_verifier, nonce, expires)) if now < expires => Ok(OidcRequest {
                provider,
                pkce_verifier,
                nonce,
            }),
            _ => Err(StoreError::Mismatch),
        }
    }

    /// The holder linked to `(provider, subject)`, if any.
    pub async fn oidc_link(&self, provider: &str, subject: &str) -> Result<Option<HolderId>, StoreError> {
        let idx = self.subject_index(provider, subject).await?;
        self.db
            .fetch_optional(
                Query::new("SELECT holder_id FROM oidc_links WHERE provider = $1 AND subject_index = $2")
                    .binds((provider, &idx)),
                "read login link",
            )
            .await
            .and_then(|r| {
                r.map(|mut r| Ok(HolderId::from_uuid(r.take::<uuid::Uuid>(0)?)))
                    .transpose()
            })
    }

    pub async fn link_oidc(&self, provider: &str, subject: &str, holder: HolderId) -> Result<(), StoreError> {
        let idx = self.subject_index(provider, subject).await?;
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO oidc_links (provider, subject_index, holder_id, created_at) VALUES ($1, $2, $3, \
                 $4) ON CONFLICT (provider, subject_index) DO NOTHING",
            )
            .binds((provider, &idx, holder.as_uuid(), self.now().as_micros())),
            "link login",
        )
        .await?;
        tx.commit().await
    }

    /// The holders whose identity traits match (a first FranceConnect login). More than one is
    /// ambiguous and the caller must refuse.
    pub async fn holders_by_identity(&self, key: &str) -> Result<Vec<HolderId>, StoreError> {
        let idx = self.identity_index(key).await?;
        self.db
            .fetch_all(
                Query::new(
                    "SELECT id FROM holders WHERE identity_index = $1 AND lifecycle <> 'erased' LIMIT 2",
                )
                .bind(&idx),
                "find holder by identity",
            )
            .await
            .and_then(|rs| {
                rs.into_iter()
                    .map(|mut r| Ok(HolderId::from_uuid(r.take::<uuid::Uuid>(0)?)))
                    .collect()
            })
    }
}
