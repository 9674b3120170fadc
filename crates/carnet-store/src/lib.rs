//! Carnet's persistence layer.
//!
//! * [`db`]: one code path over SQLite (embedded default, WAL, `synchronous=FULL`) and
//!   PostgreSQL, with versioned migrations applied at start.
//! * [`blob`]: content-addressed, hash-verified blob store (local directory or S3).
//! * [`crypto`] and [`vault`]: per-holder data keys, wrapped by a master key, kept apart.
//! * [`datadir`]: opening a data directory safely (never re-creating over existing data).
//! * [`Store`]: the holder-data operations the service layer builds on. Everything a
//!   `Store` writes about a holder is sealed with that holder's key.
//!
//! This crate knows nothing of HTTP or of who is asking: authorisation happens above it, in
//! the gate. Nothing here logs health data.

/// The SQL condition of a current representation (MI-1) of `representatives r` joined with the
/// represented `holders h`, at the instant bound as `$now`: not ended, and a parent's ended at
/// the child's majority even before the majority job recorded it (MI-3). One text for the
/// gate's facts and every listing of representations.
macro_rules! current_representation {
    ($now:literal) => {
        concat!(
            "(r.until_at IS NULL OR r.until_at > ",
            $now,
            ") AND (r.kind <> 'parent' OR h.majority_at IS NULL OR h.majority_at > ",
            $now,
            ")"
        )
    };
}

pub mod agenda;
pub mod auth;
pub mod blob;
pub mod carers;
pub mod catalogue;

pub mod clients;
mod combiner;
pub mod crypto;
pub mod datadir;
pub mod db;
pub mod directory;
pub mod documents;
pub mod error;
pub mod gate;
pub mod history;
pub mod holders;
pub mod identity;
pub mod messaging;
pub mod oidc;
pub mod outbox;
pub mod passkeys;
pub mod password;
pub mod profile;
pub mod reimbursements;
pub mod roster;
pub mod space;
pub mod status;
pub mod traces;
pub mod vault;

use crate::db::query::Query;
use std::sync::Arc;

use bytes::Bytes;
use carnet_domain::{AttachmentId, Clock, HolderId, ItemKind, Timestamp};
use serde::{Deserialize, Serialize};

pub use blob::{BlobHash, BlobStore};
pub use crypto::{MasterKey, MasterKeyRing};
pub use db::{Db, DbOptions, Engine};
pub use error::StoreError;
pub(crate) use error::not_found_if_foreign_key;
pub use vault::KeyVault;

use crypto::item_aad;
use db::MAIN_MIGRATIONS;

/// Where the system's messages to a holder go ([`Store::contact`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Contact {
    pub email: Option<String>,
    pub phone: Option<String>,
    pub address: Option<String>,
}

/// How a person is named to those who share their spaces ([`Store::person_name`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PersonName {
    pub given: String,
    pub family: String,
}

impl PersonName {
    /// "Camille MARTIN" (the family name as the roster writes it).
    pub fn full(&self) -> String {
        format!("{} {}", self.given, self.family).trim().to_string()
    }
}

/// Whom a letter by post goes to ([`Store::postal_recipient`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PostalRecipient {
    pub name: PersonName,
    pub address: Option<String>,
    /// A minor's letters are for their legal representatives (LC-2).
    pub minor: bool,
}

/// A holder's space as stored, with its administrative data opened.
#[derive(Clone, Debug)]
pub struct HolderRecord {
    pub id: HolderId,
    pub lifecycle: carnet_domain::Lifecycle,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// The opened administrative data (a JSON document defined by the domain).
    pub administrative: Vec<u8>,
}

/// What is known of an attachment besides its bytes; sealed in its row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentMeta {
    pub content_type: String,
    pub size: u64,
    /// SHA-256 of the plaintext (the XDS `hash`), hex.
    pub sha256: String,
}

#[derive(Clone, Debug)]
pub struct AttachmentRecord {
    pub holder: HolderId,
    pub id: AttachmentId,
    pub created_at: Timestamp,
    pub meta: AttachmentMeta,
}

/// What an orphan-blob collection did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GcReport {
    pub examined: u64,
    pub deleted: u64,
}

/// What a full verification of the blob store found.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    pub checked: u64,
    pub problems: Vec<String>,
}

/// The holder-data store: main database + key vault + blob store + clock. Cloned for every
/// request (with the server's state), so a clone is one reference count: the parts sit
/// behind one `Arc` (cloning them one by one took a dozen atomic operations per clone, ~2 % of
/// the server's CPU under the FHIR read bench).
#[derive(Clone, Debug)]
pub struct Store(Arc<StoreParts>);

impl std::ops::Deref for Store {
    type Target = StoreParts;
    fn deref(&self) -> &StoreParts {
        &self.0
    }
}

/// What a [`Store`] holds; reached through it only.
#[derive(Debug)]
pub struct StoreParts {
    db: Db,
    vault: Arc<KeyVault>,
    blobs: BlobStore,
    clock: Arc<dyn Clock>,
    /// Service keys, loaded once from the vault.
    service_keys: Arc<tokio::sync::OnceCell<ServiceKeys>>,
    /// Holders whose trace chain just grew on this server: wakes their live notification
    /// streams at once (other servers' appends are found by polling).
    trace_events: tokio::sync::broadcast::Sender<HolderId>,
    /// Wakes this server's outbox delivery after a message was committed (notices go at once).
    delivery_wake: Arc<tokio::sync::Notify>,
    /// How long a server's claim on an outbox message lasts (`outbox::DEFAULT_LEASE_SECONDS`).
    outbox_lease_seconds: Arc<std::sync::atomic::AtomicI64>,
    /// Group commit of small writes (SQLite: one transaction for the writes that arrive
    /// while a commit is under way; see `combiner`).
    combiner: combiner::Combiner,
    /// The heads of the trace chains this server appended to lately (`traces::HeadCache`).
    trace_heads: Arc<traces::HeadCache>,
    /// The document rows this server opened lately, valid under their holder's document
    /// stamp (`doccache`).
    doc_cache: documents::cache::DocCache,
}

#[derive(Debug)]
struct ServiceKeys {
    ins_index: crypto::SecretKey,
    activation_code: crypto::SecretKey,
    login_index: crypto::SecretKey,
    login_code: crypto::SecretKey,
    /// Ed25519 seed of the trace checkpoints' signing key (`checkpoint`).
    trace_checkpoint: crypto::SecretKey,
    /// MAC key of the web interface's anti-CSRF tokens (`csrf_mac`).
    web_csrf: crypto::SecretKey,
    /// HMAC key of the legacy documents' uniqueIds (LC-8, `documents`).
    legacy_index: crypto::SecretKey,
    /// Ed25519 seed of the OpenID ID tokens' signing key (`catalogue`, SMART apps).
    id_token: crypto::SecretKey,
    /// Seals the one message that outlives a holder's key: the notice that their space was
    /// erased on request (LC-5, `outbox::ERASURE_DONE`), deleted once sent.
    after_erasure: crypto::SecretKey,
}

impl Store {
    /// Assembles a store from opened parts, applying the main database's migrations.
    pub async fn new(
        db: Db,
        vault: KeyVault,
        blobs: BlobStore,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        db.migrate(&MAIN_MIGRATIONS).await?;
        db.move_traces_to_audit().await?;
        db.drop_retired_tables().await?;
        Ok(Self(Arc::new(StoreParts {
            db,
            vault: Arc::new(vault),
            blobs,
            clock,
            service_keys: Arc::default(),
            trace_events: tokio::sync::broadcast::channel(1024).0,
            delivery_wake: Arc::default(),
            outbox_lease_seconds: Arc::new(std::sync::atomic::AtomicI64::new(outbox::DEFAULT_LEASE_SECONDS)),
            combiner: combiner::Combiner::default(),
            trace_heads: Arc::default(),
            doc_cache: documents::cache::DocCache::default(),
        })))
    }

    /// Bounds this server's cache of document heads and opened metadata (`doccache`) at `bytes` (default
    /// `DOC_CACHE_BYTES`); entries beyond it go, oldest first, at the next insertion.
    pub fn set_document_cache_bytes(&self, bytes: usize) {
        self.doc_cache.set_capacity(bytes);
    }

    /// Runs `f` in a write transaction that may be shared with concurrent writes (group
    /// commit, see `combiner`); returns once it is durably committed. `f` must neither
    /// commit nor roll back; its error undoes its own writes only.
    pub(crate) async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut db::Tx) -> futures::future::BoxFuture<'t, Result<T, StoreError>>
            + Send
            + 'static,
    {
        self.combiner.write(&self.db, f).await
    }

    /// What the outbox delivery loop waits on besides its timer; the store notifies it after
    /// committing a message, handlers may too.
    pub fn delivery_wake(&self) -> Arc<tokio::sync::Notify> {
        self.delivery_wake.clone()
    }

    pub(crate) fn wake_delivery(&self) {
        self.delivery_wake.notify_one();
    }

    /// Holders whose traces grew on this server, as they are committed (see `trace_events`).
    /// A slow receiver may miss some (`Lagged`); it must then look at the database.
    pub fn subscribe_traces(&self) -> tokio::sync::broadcast::Receiver<HolderId> {
        self.trace_events.subscribe()
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn vault(&self) -> &KeyVault {
        &self.vault
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    async fn service_keys(&self) -> Result<&ServiceKeys, StoreError> {
        self.service_keys
            .get_or_try_init(|| async {
                let now = self.now();
                Ok(ServiceKeys {
                    ins_index: self.vault.service_key("ins-index", now).await?,
                    activation_code: self.vault.service_key("activation-code", now).await?,
                    login_index: self.vault.service_key("login-index", now).await?,
                    login_code: self.vault.service_key("login-code", now).await?,
                    trace_checkpoint: self
                        .vault
                        .service_key(traces::checkpoint::SERVICE_KEY, now)
                        .await?,
                    web_csrf: self.vault.service_key("web-csrf", now).await?,
                    legacy_index: self.vault.service_key("legacy-index", now).await?,
                    id_token: self.vault.service_key("oauth-id-token", now).await?,
                    after_erasure: self.vault.service_key("after-erasure", now).await?,
                })
            })
            .await
    }

    /// HMAC (hex) of `data` under the service key of the web interface's anti-CSRF tokens:
    /// the same on every server of a deployment, never stored.
    pub async fn csrf_mac(&self, data: &[u8]) -> Result<String, StoreError> {
        Ok(self.service_keys().await?.web_csrf.hmac_hex(data))
    }

    /// Readiness: both databases answer and the blob store takes writes.
    pub async fn ready(&self) -> Result<(), StoreError> {
        self.db.ping().await?;
        self.vault.db().ping().await?;
        self.blobs.check().await
    }

    /// Stores an attachment of `holder`. Acknowledged (returns) only once the sealed blob is
    /// durable and the row that references it is committed (S-30); on any failure before the
    /// commit, the blob is an orphan that [`Store::collect_orphan_blobs`] removes.
    pub async fn put_attachment(
        &self,
        holder: HolderId,
        content_type: &str,
        content: Bytes,
    ) -> Result<AttachmentRecord, StoreError> {
        let now = self.now();
        let id = AttachmentId::new(now);
        let key = self.vault.get(holder).await?;
        let meta = AttachmentMeta {
            content_type: content_type.to_string(),
            size: content.len() as u64,
            sha256: crypto::sha256_hex(&content),
        };
        let (hash, sealed_size, sealed_meta) = self
            .write_attachment_blob(&key, holder, id, content_type, &meta.sha256, content.to_vec())
            .await?;
        let mut tx = self.db.begin().await?;
        insert_attachment_row(&mut tx, holder, id, now, &hash, sealed_size, &sealed_meta)
            .await
            .map_err(not_found_if_foreign_key)?;
        tx.commit().await?;
        Ok(AttachmentRecord {
            holder,
            id,
            created_at: now,
            meta,
        })
    }

    /// Reads an attachment: checks the blob's hash, opens it, and checks the plaintext hash.
    pub async fn attachment(
        &self,
        holder: HolderId,
        id: AttachmentId,
    ) -> Result<(AttachmentRecord, Bytes), StoreError> {
        let mut row = self
            .db
            .fetch_optional(
                db::query::Query::new(
                    "SELECT created_at, blob_hash, meta_sealed FROM attachments WHERE holder_id = $1 AND id \
                     = $2",
                )
                .bind(*holder.as_uuid())
                .bind(*id.as_uuid()),
                "read attachment",
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let (created, hash, sealed_meta): (i64, String, Vec<u8>) = (row.take(0)?, row.take(1)?, row.take(2)?);
        let hash = BlobHash::parse(&hash)
            .ok_or_else(|| StoreError::Integrity("bad blob hash in database".into()))?;
        let key = self.vault.get(holder).await?;
        let meta: AttachmentMeta = serde_json::from_slice(&key.open(
            &item_aad(holder, ItemKind::AttachmentMeta, id.as_bytes()),
            &sealed_meta,
        )?)
        .map_err(|e| StoreError::Integrity(format!("attachment metadata: {e}")))?;
        let sealed = self.blobs.get(&hash).await?;
        let content = key.open(
            &item_aad(holder, ItemKind::AttachmentContent, id.as_bytes()),
            &sealed,
        )?;
        if crypto::sha256_hex(&content) != meta.sha256 {
            return Err(StoreError::Integrity(
                "attachment content does not match its recorded hash".into(),
            ));
        }
        Ok((
            AttachmentRecord {
                holder,
                id,
                created_at: Timestamp::from_micros(created),
                meta,
            },
            Bytes::from(content),
        ))
    }

    /// Ids of a holder's attachments, oldest first.
    pub async fn attachment_ids(&self, holder: HolderId) -> Result<Vec<AttachmentId>, StoreError> {
        self.db
            .fetch_all(
                Query::new("SELECT id FROM attachments WHERE holder_id = $1 ORDER BY id")
                    .bind(holder.as_uuid()),
                "list attachments",
            )
            .await
            .and_then(|rs| {
                rs.into_iter()
                    .map(|mut r| Ok(AttachmentId::from_uuid(r.take::<uuid::Uuid>(0)?)))
                    .collect()
            })
    }

    /// Deletes blobs that no row references and that are older than `min_age_seconds` (younger
    /// ones may belong to a write in flight: blob first, row second).
    pub async fn collect_orphan_blobs(&self, min_age_seconds: i64) -> Result<GcReport, StoreError> {
        let cutoff = self.now().plus_seconds(-min_age_seconds).as_micros();
        let mut report = GcReport::default();
        for b in self.blobs.list().await? {
            report.examined += 1;
            if b.modified_micros > cutoff {
                continue;
            }
            let referenced: i64 = self
                .db
                .writer()
                .fetch_one(
                    Query::new("SELECT COUNT(*) FROM attachments WHERE blob_hash = $1").bind(b.hash.as_str()),
                    "check blob reference",
                )
                .await
                .and_then(|mut r| r.take::<i64>(0))?;
            if referenced == 0 {
                self.blobs.delete(&b.hash).await?;
                report.deleted += 1;
            }
        }
        Ok(report)
    }

    /// Reads every referenced blob and checks its hash (`carnet admin verify-blobs`).
    pub async fn verify_blobs(&self) -> Result<VerifyReport, StoreError> {
        let rows: Vec<(uuid::Uuid, uuid::Uuid, String)> = self
            .db
            .fetch_all_as(
                Query::new("SELECT holder_id, id, blob_hash FROM attachments ORDER BY holder_id, id"),
                "list attachments",
            )
            .await?;
        let mut report = VerifyReport::default();
        for (holder, id, hash) in rows {
            report.checked += 1;
            let result = match BlobHash::parse(&hash) {
                Some(h) => self.blobs.get(&h).await.map(|_| ()),
                None => Err(StoreError::Integrity("bad blob hash in database".into())),
            };
            if let Err(e) = result {
                report
                    .problems
                    .push(format!("attachment {id} of holder {holder}: {e}"));
            }
        }
        Ok(report)
    }
}

/// An attachment's row (its content is in the blob store under `hash`, its metadata sealed):
/// a holder's upload, a document's file, a message's attachment.
pub(crate) async fn insert_attachment_row(
    tx: &mut db::Tx,
    holder: HolderId,
    id: AttachmentId,
    now: Timestamp,
    hash: &BlobHash,
    sealed_size: i64,
    meta_sealed: &[u8],
) -> Result<u64, StoreError> {
    let q = Query::new(
        "INSERT INTO attachments (holder_id, id, created_at, blob_hash, sealed_size, meta_sealed) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .binds((
        holder.as_uuid(),
        id.as_uuid(),
        now.as_micros(),
        hash.as_str(),
        sealed_size,
        meta_sealed,
    ));
    tx.execute(q, "insert attachment").await
}
