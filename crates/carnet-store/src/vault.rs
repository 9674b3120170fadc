//! The key vault: one wrapped data key per holder, in a database of its own.
//!
//! The vault is deliberately *not* the main database: backups of the main database and of
//! the blob store then never contain the keys that open them, and destroying a holder's row
//! here is enough to erase the holder from every copy (LC-7). By default it is the SQLite
//! file `DATA_DIR/keys.db`; a deployment on PostgreSQL points it at a separate database
//! (`keys_url`), or replaces it with a KMS behind the same API.

use std::collections::BTreeSet;

use carnet_domain::{HolderId, Timestamp};

use crate::crypto::{CANARY_AAD, CANARY_PLAINTEXT, MasterKeyRing, SecretKey, wrap_aad};
use crate::db::query::Query;
use crate::db::{Db, VAULT_MIGRATIONS};
use crate::error::StoreError;

fn service_aad(name: &str) -> Vec<u8> {
    let mut aad = b"carnet/service-key/v1\0".to_vec();
    aad.extend_from_slice(name.as_bytes());
    aad
}

/// How long an unwrapped data key stays in this server's memory. Destroying a key on this
/// server drops it at once; another server may keep using its copy for at most this long,
/// which can only open rows that erasure deletes in the same step (LC-7 still holds: no copy
/// of the data outlives the key anywhere but in memory for a minute).
const KEY_CACHE_SECONDS: u64 = 60;
/// Bound on cached keys (32 bytes each plus bookkeeping); the cache is emptied when full.
const KEY_CACHE_MAX: usize = 100_000;

#[derive(Debug)]
pub struct KeyVault {
    db: Db,
    ring: MasterKeyRing,
    /// Unwrapped data keys read recently (the gate reads the same few holders' keys several
    /// times per request: directory, trace, notice).
    cache: std::sync::Mutex<std::collections::HashMap<HolderId, (SecretKey, std::time::Instant)>>,
}

impl KeyVault {
    /// Opens the vault: applies its migrations, then proves the configured master keys are the
    /// ones that wrapped the stored data keys (a wrong key is refused here, at start, with a
    /// clear message, instead of failing on each read later).
    pub async fn open(db: Db, ring: MasterKeyRing, now: Timestamp) -> Result<Self, StoreError> {
        db.migrate(&VAULT_MIGRATIONS).await?;
        let vault = Self {
            db,
            ring,
            cache: std::sync::Mutex::default(),
        };
        vault.check_master_keys(now).await?;
        Ok(vault)
    }

    async fn check_master_keys(&self, now: Timestamp) -> Result<(), StoreError> {
        let rows: Vec<(String, Vec<u8>)> = self
            .db
            .writer()
            .fetch_all_as::<(String, Vec<u8>)>(
                Query::new("SELECT kid, canary FROM master_keys"),
                "read master key canaries",
            )
            .await?;
        let known: BTreeSet<&str> = rows.iter().map(|(k, _)| k.as_str()).collect();
        for (kid, canary) in &rows {
            if let Some(mk) = self.ring.get(kid) {
                let plain = mk
                    .key
                    .open(CANARY_AAD, canary)
                    .map_err(|_| StoreError::MasterKey(format!("master key {kid} fails its check value")))?;
                if plain != CANARY_PLAINTEXT {
                    return Err(StoreError::MasterKey(format!(
                        "master key {kid} fails its check value"
                    )));
                }
            }
        }
        // Every data key must be unwrappable by a configured master key.
        let used: Vec<String> = self
            .db
            .writer()
            .fetch_all_as::<String>(
                Query::new(
                    "SELECT DISTINCT kid FROM holder_keys UNION SELECT DISTINCT kid FROM service_keys",
                ),
                "read data key ids",
            )
            .await?;
        let missing: Vec<&String> = used.iter().filter(|k| self.ring.get(k).is_none()).collect();
        let none_known = !known.is_empty() && !self.ring.kids().iter().any(|k| known.contains(k.as_str()));
        if none_known || !missing.is_empty() {
            let known_list = if missing.is_empty() {
                known.iter().copied().collect::<Vec<_>>().join(", ")
            } else {
                missing.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            };
            return Err(StoreError::WrongMasterKey {
                known: known_list,
                configured: self.ring.kids().join(", "),
            });
        }
        // Register the active key (first start, or the first start after a rotation began).
        let active = self.ring.active();
        if !known.contains(active.kid.as_str()) {
            let canary = active.key.seal(CANARY_AAD, CANARY_PLAINTEXT)?;
            let mut tx = self.db.begin().await?;
            let q = Query::new("INSERT INTO master_keys (kid, canary, created_at) VALUES ($1, $2, $3)")
                .binds((&active.kid, &canary, now.as_micros()));
            match tx.execute(q, "register master key").await {
                Ok(_) => tx.commit().await?,
                Err(e) if e.is_unique_violation() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Creates the data key of a new holder.
    pub async fn create(&self, holder: HolderId, now: Timestamp) -> Result<SecretKey, StoreError> {
        let key = SecretKey::generate()?;
        let active = self.ring.active();
        let wrapped = active.key.seal(&wrap_aad(holder), key.expose())?;
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO holder_keys (holder_id, kid, wrapped, created_at) VALUES ($1, $2, $3, $4)",
            )
            .binds((holder.as_uuid(), &active.kid, &wrapped, now.as_micros())),
            "store data key",
        )
        .await?;
        tx.commit().await?;
        Ok(key)
    }

    /// The data key of `holder`; [`StoreError::Shredded`] once it was destroyed.
    pub async fn get(&self, holder: HolderId) -> Result<SecretKey, StoreError> {
        if let Some(key) = self.cached(holder) {
            return Ok(key);
        }
        let row: Option<(String, Vec<u8>)> = self
            .db
            .fetch_optional_as::<(String, Vec<u8>)>(
                Query::new("SELECT kid, wrapped FROM holder_keys WHERE holder_id = $1")
                    .bind(holder.as_uuid()),
                "read data key",
            )
            .await?;
        let (kid, wrapped) = row.ok_or(StoreError::Shredded(holder))?;
        let key = self.unwrap_key(holder, &kid, &wrapped)?;
        self.remember(holder, &key);
        Ok(key)
    }

    /// The data keys of many holders (a bulk import): cached ones from memory, the others in one
    /// query per 500. Erased holders (their key destroyed) are absent from the answer.
    pub async fn get_many(
        &self,
        holders: &[HolderId],
    ) -> Result<std::collections::HashMap<HolderId, SecretKey>, StoreError> {
        let mut out = std::collections::HashMap::new();
        let mut missing = Vec::new();
        for h in holders {
            match self.cached(*h) {
                Some(k) => {
                    out.insert(*h, k);
                }
                None => missing.push(*h),
            }
        }
        for chunk in missing.chunks(500) {
            let q = Query::any_of(
                self.db.engine(),
                "SELECT holder_id, kid, wrapped FROM holder_keys WHERE holder_id {in}",
                chunk.iter().map(|h| *h.as_uuid()),
            );
            for mut r in self.db.fetch_all(q, "read data keys").await? {
                let (id, kid, wrapped): (uuid::Uuid, String, Vec<u8>) = (r.take(0)?, r.take(1)?, r.take(2)?);
                let holder = HolderId::from_uuid(id);
                let key = self.unwrap_key(holder, &kid, &wrapped)?;
                self.remember(holder, &key);
                out.insert(holder, key);
            }
        }
        Ok(out)
    }

    fn cached(&self, holder: HolderId) -> Option<SecretKey> {
        let cache = self.cache.lock().ok()?;
        let (key, at) = cache.get(&holder)?;
        (at.elapsed().as_secs() < KEY_CACHE_SECONDS).then(|| key.clone())
    }

    fn remember(&self, holder: HolderId, key: &SecretKey) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= KEY_CACHE_MAX {
                cache.clear();
            }
            cache.insert(holder, (key.clone(), std::time::Instant::now()));
        }
    }

    fn forget(&self, holder: HolderId) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&holder);
        }
    }

    fn unwrap_key(&self, holder: HolderId, kid: &str, wrapped: &[u8]) -> Result<SecretKey, StoreError> {
        let mk = self.ring.get(kid).ok_or_else(|| StoreError::WrongMasterKey {
            known: kid.to_string(),
            configured: self.ring.kids().join(", "),
        })?;
        let raw = zeroize::Zeroizing::new(mk.key.open(&wrap_aad(holder), wrapped)?);
        SecretKey::from_bytes(&raw)
            .ok_or_else(|| StoreError::Integrity("unwrapped data key has a bad length".into()))
    }

    /// Creates the data keys of many new holders in one transaction (roster import).
    pub async fn create_many(
        &self,
        holders: &[HolderId],
        now: Timestamp,
    ) -> Result<Vec<SecretKey>, StoreError> {
        let active = self.ring.active();
        let mut keys = Vec::with_capacity(holders.len());
        let mut tx = self.db.begin().await?;
        for h in holders {
            let key = SecretKey::generate()?;
            let wrapped = active.key.seal(&wrap_aad(*h), key.expose())?;
            tx.execute(
                Query::new(
                    "INSERT INTO holder_keys (holder_id, kid, wrapped, created_at) VALUES ($1, $2, $3, $4)",
                )
                .binds((h.as_uuid(), &active.kid, &wrapped, now.as_micros())),
                "store data key",
            )
            .await?;
            keys.push(key);
        }
        tx.commit().await?;
        Ok(keys)
    }

    /// A service-wide secret key (for blind indexes and code HMACs), created on first use.
    pub async fn service_key(&self, name: &str, now: Timestamp) -> Result<SecretKey, StoreError> {
        let aad = service_aad(name);
        for _ in 0..2 {
            let row: Option<(String, Vec<u8>)> = self
                .db
                .writer()
                .fetch_optional_as::<(String, Vec<u8>)>(
                    Query::new("SELECT kid, wrapped FROM service_keys WHERE name = $1").bind(name),
                    "read service key",
                )
                .await?;
            if let Some((kid, wrapped)) = row {
                let mk = self.ring.get(&kid).ok_or_else(|| StoreError::WrongMasterKey {
                    known: kid.clone(),
                    configured: self.ring.kids().join(", "),
                })?;
                let raw = zeroize::Zeroizing::new(mk.key.open(&aad, &wrapped)?);
                return SecretKey::from_bytes(&raw)
                    .ok_or_else(|| StoreError::Integrity("service key has a bad length".into()));
            }
            let key = SecretKey::generate()?;
            let active = self.ring.active();
            let wrapped = active.key.seal(&aad, key.expose())?;
            let mut tx = self.db.begin().await?;
            let q = Query::new(
                "INSERT INTO service_keys (name, kid, wrapped, created_at) VALUES ($1, $2, $3, $4)",
            )
            .binds((name, &active.kid, &wrapped, now.as_micros()));
            match tx.execute(q, "create service key").await {
                Ok(_) => {
                    tx.commit().await?;
                    return Ok(key);
                }
                Err(e) if e.is_unique_violation() => continue, // another server created it: read it
                Err(e) => return Err(e),
            }
        }
        Err(StoreError::Integrity(format!(
            "service key {name} could not be created"
        )))
    }

    /// Destroys the data key of `holder` (crypto-shredding). Irreversible.
    pub async fn destroy(&self, holder: HolderId) -> Result<bool, StoreError> {
        self.forget(holder);
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new("DELETE FROM holder_keys WHERE holder_id = $1").bind(holder.as_uuid()),
                "destroy data key",
            )
            .await?;
        tx.commit().await?;
        // Also after the commit: a concurrent `get` may have cached it in between.
        self.forget(holder);
        // LC-7: the wrapped key must not survive in the files either. On SQLite the vault
        // zeroes deleted content (`secure_delete`, `DbOptions`), and the WAL, which still
        // holds the page as it was, is copied back and emptied now. On PostgreSQL the dead
        // row stays in its page until a vacuum reuses it, and in the WAL and base backups
        // until they expire: the vault gets a database of its own, vacuumed here, with
        // backups that expire (README, "PostgreSQL and S3").
        if n > 0 {
            match self.db.engine() {
                crate::Engine::Sqlite => {
                    self.db
                        .writer()
                        .fetch_optional(
                            Query::new("PRAGMA wal_checkpoint(TRUNCATE)"),
                            "checkpoint key vault",
                        )
                        .await
                        .map(|_| ())?;
                }
                crate::Engine::Postgres => {
                    self.db
                        .writer()
                        .execute(Query::new("VACUUM holder_keys"), "vacuum key vault")
                        .await
                        .map(|_| ())?;
                }
            }
        }
        Ok(n > 0)
    }

    /// Re-wraps every data key not wrapped by the active master key, in batches; data is not
    /// touched. Resumable: a crash leaves keys wrapped by either key, both in the ring.
    pub async fn rewrap_all(&self) -> Result<u64, StoreError> {
        let active = self.ring.active();
        let mut total = 0u64;
        let services: Vec<(String, String, Vec<u8>)> = self
            .db
            .writer()
            .fetch_all_as(
                Query::new("SELECT name, kid, wrapped FROM service_keys WHERE kid <> $1").bind(&active.kid),
                "read service keys to rewrap",
            )
            .await?;
        for (name, kid, wrapped) in services {
            let aad = service_aad(&name);
            let mk = self.ring.get(&kid).ok_or_else(|| StoreError::WrongMasterKey {
                known: kid.clone(),
                configured: self.ring.kids().join(", "),
            })?;
            let raw = zeroize::Zeroizing::new(mk.key.open(&aad, &wrapped)?);
            let rewrapped = active.key.seal(&aad, &raw)?;
            let mut tx = self.db.begin().await?;
            tx.execute(
                Query::new("UPDATE service_keys SET kid = $1, wrapped = $2 WHERE name = $3 AND kid = $4")
                    .binds((&active.kid, &rewrapped, &name, &kid)),
                "rewrap service key",
            )
            .await?;
            tx.commit().await?;
        }
        loop {
            let batch: Vec<(uuid::Uuid, String, Vec<u8>)> = self
                .db
                .writer()
                .fetch_all_as(
                    Query::new("SELECT holder_id, kid, wrapped FROM holder_keys WHERE kid <> $1 LIMIT 500")
                        .bind(&active.kid),
                    "read data keys to rewrap",
                )
                .await?;
            if batch.is_empty() {
                return Ok(total);
            }
            let mut tx = self.db.begin().await?;
            for (id, kid, wrapped) in &batch {
                let holder = HolderId::from_uuid(*id);
                let key = self.unwrap_key(holder, kid, wrapped)?;
                let rewrapped = active.key.seal(&wrap_aad(holder), key.expose())?;
                tx.execute(
                    Query::new(
                        "UPDATE holder_keys SET kid = $1, wrapped = $2 WHERE holder_id = $3 AND kid = $4",
                    )
                    .binds((&active.kid, &rewrapped, id, kid)),
                    "rewrap data key",
                )
                .await?;
            }
            tx.commit().await?;
            total += batch.len() as u64;
        }
    }

    /// Forgets the check values of master keys no longer in the ring (after a rotation), once
    /// no data key depends on them.
    pub async fn retire_old_master_keys(&self) -> Result<(), StoreError> {
        let kids = self.ring.kids();
        let mut tx = self.db.begin().await?;
        let rows: Vec<String> = tx
            .fetch_all_as::<String>(Query::new("SELECT kid FROM master_keys"), "read master keys")
            .await?;
        for kid in rows.iter().filter(|k| !kids.contains(k)) {
            tx.execute(
                Query::new("DELETE FROM master_keys WHERE kid = $1").bind(kid),
                "retire master key",
            )
            .await?;
        }
        tx.commit().await
    }

    pub fn ring(&self) -> &MasterKeyRing {
        &self.ring
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    /// How many data keys each master key wraps (for `carnet admin` and tests).
    pub async fn key_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.db
            .writer()
            .fetch_all_as::<(String, i64)>(
                Query::new("SELECT kid, COUNT(*) FROM holder_keys GROUP BY kid ORDER BY kid"),
                "count data keys",
            )
            .await
    }
}
