//! Documents of the shared medical record (SPEC DM-1..8, MI-2, AC-6).
//!
//! **Only through the gate.** The public operations are methods of [`Gate`]: each decides with
//! the access policy, traces, notifies, and only then touches storage. The raw row accessors
//! below are private to this crate, so no handler can read or write a document around the gate
//! (ARCHITECTURE.md invariant 2). A denial and a missing document give the same
//! [`StoreError::NotFound`] (AC-8).
//!
//! Storage: one row per version in `documents` (metadata sealed with the holder's key; status,
//! dates and version in clear), content in `attachments` + the blob store (sealed, fsync'd,
//! hash-checked on read). A deposit writes the blob first, then the attachment row, the
//! document row and the holder's notice in one transaction (S-30, DM-7).
//!
//! ```compile_fail
//! // The raw accessors are not reachable from outside the store (invariant 2):
//! async fn around_the_gate(store: &carnet_store::Store, h: carnet_domain::HolderId) {
//!     let _ = store.document_rows(h).await;
//! }
//! ```

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use carnet_domain::access::{
    Action, Actor, Author, Category, Context, Decision, ItemFacts, ProfessionalId, decide_legacy_import,
    legacy_import_actor,
};
use carnet_domain::document::{self, DeletionRequest, DocumentMeta, Format, Status};
use carnet_domain::{AttachmentId, DocumentId, HolderId, ItemKind, Lifecycle, Timestamp};
use serde::Serialize;
use sqlx::Row;

use crate::crypto::{SecretKey, item_aad};
use crate::db::reader::Read;
use crate::documents::cache::{DocRecord, Metas};
use crate::error::StoreError;
use crate::gate::{Access, Gate, GateFacts};
use crate::traces::Withheld;
use crate::{AttachmentMeta, BlobHash, Store, on_db, on_tx};

pub(crate) mod cache;

/// What the depositor says of a new document; the rest is measured or read from a CDA header.
#[derive(Clone, Debug, Default)]
pub struct NewDocument {
    pub title: Option<String>,
    pub class: Option<Category>,
    pub type_code: Option<String>,
    pub type_display: Option<String>,
    pub event_date: Option<String>,
    pub confidentiality: Option<String>,
    /// The declared content type (checked against the bytes).
    pub mime: String,
    pub filename: Option<String>,
    /// DM-6: kept from the holder for an announcement consultation (professionals only).
    pub hold_from_holder: bool,
    /// MI-2: hidden from the legal representatives.
    pub hidden_from_representatives: bool,
    /// Display names at deposit time.
    pub author_name: String,
    pub organisation: Option<String>,
}

/// LC-8: one document of a holder's former DMP, as the migration manifest describes it.
#[derive(Clone, Debug, Default)]
pub struct LegacyDocument {
    /// Its XDS uniqueId in the former DMP: never imported twice for the same holder.
    pub unique_id: String,
    /// RPPS number of its original author (11 digits, or the national id `8` + RPPS): the
    /// document shows as theirs, and they keep an author's rights on it.
    pub author_rpps: String,
    /// XDS creationTime in the former DMP: becomes the document's `uploaded_at`, so that the
    /// professionals' first view (DM-8) ranks it by its real age (never later than now).
    pub creation_time: Option<Timestamp>,
    /// Title, class, type, date of the act, confidentiality, declared MIME type, author's and
    /// organisation's names. Its `hold_from_holder` and `hidden_from_representatives` are
    /// ignored: an imported document is visible to the holder at once.
    pub document: NewDocument,
}

/// What [`Gate::import_legacy_document`] did.
#[derive(Clone, Debug)]
pub enum LegacyOutcome {
    /// Filed now in the holder's record.
    Imported(Box<DocumentView>),
    /// A document of this uniqueId was imported for this holder before (kept as it was).
    AlreadyPresent(DocumentId),
}

/// What a legacy import adds to the write of a document (crate-private).
struct LegacyWrite<'a> {
    /// HMAC of the uniqueId (`legacy_documents.unique_id_index`).
    index: &'a str,
    /// The state the decision was made on: the write happens only if the space is still in it.
    decided_on: Lifecycle,
}

/// A document of a transaction (IO-2), checked and decided, not yet written (crate-private).
pub(crate) struct StagedDocument {
    id: DocumentId,
    set_id: DocumentId,
    meta: DocumentMeta,
    content: Vec<u8>,
    /// DM-3: the version it replaces (deprecated in the same commit, compare-and-set).
    replaces: Option<DocRow>,
}

/// A document written by a FHIR transaction (IO-2): new, or a new version replacing one
/// (DM-3: its author only; `DocumentReference.relatesTo` `replaces`).
#[derive(Clone, Debug)]
pub struct DocumentWrite {
    pub replaces: Option<DocumentId>,
    pub new: NewDocument,
    pub content: Vec<u8>,
}

/// A document of a transaction whose sealed content is in the blob store, its rows not yet
/// committed (crate-private).
pub(crate) struct WrittenDocument {
    id: DocumentId,
    set_id: DocumentId,
    replaces: Option<DocRow>,
    meta: DocumentMeta,
    attachment: AttachmentId,
    hash: BlobHash,
    sealed_size: i64,
    sealed_att_meta: Vec<u8>,
    sealed_meta: Vec<u8>,
    notice_due: Option<Timestamp>,
}

impl WrittenDocument {
    pub(crate) fn view(&self) -> DocumentView {
        DocumentView {
            id: self.id,
            set_id: self.set_id,
            status: Status::Approved,
            meta: self.meta.clone(),
        }
    }
}

/// A document version as the caller may see it.
#[derive(Clone, Debug, Serialize)]
pub struct DocumentView {
    pub id: DocumentId,
    pub set_id: DocumentId,
    pub status: Status,
    pub meta: DocumentMeta,
}

/// Filters of a listing (DM-8). Paging is by id (ids are time-ordered, so pages are stable).
#[derive(Clone, Debug, Default)]
pub struct DocumentFilter {
    pub class: Option<Category>,
    pub type_code: Option<String>,
    /// Author: `holder`, or an RPPS / FINESS / app id.
    pub author: Option<String>,
    /// Upload date range (inclusive from, exclusive to).
    pub from: Option<Timestamp>,
    pub to: Option<Timestamp>,
    /// Text in the title (case- and accent-insensitive).
    pub text: Option<String>,
    /// Include deprecated versions (history).
    pub include_history: bool,
    /// DM-8: current documents of the last two years (vaccinations always), ranked.
    pub first_view: bool,
    /// Only documents whose id is below this one (next page).
    pub before: Option<DocumentId>,
    pub limit: usize,
}

/// A page of a listing: only what the caller may see; `total` counts nothing else (S-2).
#[derive(Clone, Debug, Serialize)]
pub struct DocumentPage {
    pub documents: Vec<DocumentView>,
    pub total: usize,
    pub next_before: Option<DocumentId>,
}

/// What a caller may see of a holder's documents, in listing order ([`Gate::document_set`]):
/// decided, counted and ordered on each row's head; a document's metadata is opened only when
/// asked for ([`DocumentSet::open`]), so a page of a long record opens that page, not the record.
#[derive(Debug)]
pub struct DocumentSet {
    store: Store,
    holder: HolderId,
    record: DocRecord,
    /// Indexes in `record.heads` of the documents shown, in order.
    shown: Vec<usize>,
    /// The metadata of each document shown, once opened.
    opened: Vec<OnceLock<Arc<DocumentMeta>>>,
}

/// One document of a [`DocumentSet`], borrowed from it.
#[derive(Clone, Copy, Debug)]
pub struct DocumentRef<'a> {
    pub id: DocumentId,
    pub set_id: DocumentId,
    pub status: Status,
    pub meta: &'a DocumentMeta,
}

impl DocumentRef<'_> {
    pub fn view(&self) -> DocumentView {
        DocumentView {
            id: self.id,
            set_id: self.set_id,
            status: self.status,
            meta: self.meta.clone(),
        }
    }
}

impl DocumentSet {
    pub fn len(&self) -> usize {
        self.shown.len()
    }

    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }

    /// The id of the `i`-th document shown.
    pub fn id(&self, i: usize) -> Option<DocumentId> {
        self.head(i).map(DocHead::id)
    }

    fn head(&self, i: usize) -> Option<&DocHead> {
        self.record.heads.get(*self.shown.get(i)?)
    }

    /// Opens the metadata of the documents shown at `indexes` (kept in the set; those opened
    /// already are skipped). A document whose row changed or went since the set was decided is
    /// left unopened: [`DocumentSet::get`] gives `None` for it, never metadata it was not
    /// decided on.
    pub async fn open(&self, indexes: &[usize]) -> Result<(), StoreError> {
        let want: Vec<usize> = indexes
            .iter()
            .copied()
            .filter(|i| self.opened.get(*i).is_some_and(|o| o.get().is_none()))
            .collect();
        let heads: Vec<&DocHead> = want.iter().filter_map(|i| self.head(*i)).collect();
        let metas = self
            .store
            .open_heads(self.holder, &self.record.metas, &heads)
            .await?;
        for (i, meta) in want.into_iter().zip(metas) {
            if let (Some(slot), Some(meta)) = (self.opened.get(i), meta) {
                let _ = slot.set(meta);
            }
        }
        Ok(())
    }

    /// Opens every document shown ([`DocumentSet::open`]).
    pub async fn open_all(&self) -> Result<(), StoreError> {
        let all: Vec<usize> = (0..self.len()).collect();
        self.open(&all).await
    }

    /// The `i`-th document shown, if its metadata was opened ([`DocumentSet::open`]).
    pub fn get(&self, i: usize) -> Option<DocumentRef<'_>> {
        let r = self.head(i)?;
        let meta = self.opened.get(i)?.get()?;
        Some(DocumentRef {
            id: r.id,
            set_id: r.set_id,
            status: r.status,
            meta,
        })
    }
}

/// Changes to a document after its deposit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DocumentChange {
    /// DM-5: the holder masks (or unmasks) a document from professionals.
    Mask(bool),
    /// MI-2: hidden from the legal representatives (author, or the holder themselves).
    HideFromRepresentatives(bool),
    /// DM-6: the author makes a held document visible to the holder (never the reverse).
    MakeVisible,
    /// DM-3: archive / unarchive (author).
    Archive,
    Unarchive,
    /// DM-4: the holder asks the author to delete their document.
    RequestDeletion(String),
    /// DM-4: the author answers (accepting deletes the document).
    AnswerDeletion(bool),
}

/// A document row with its metadata opened (crate-private: reached only through the gate).
#[derive(Clone, Debug)]
pub(crate) struct DocRow {
    id: DocumentId,
    set_id: DocumentId,
    status: Status,
    attachment: AttachmentId,
    version: i64,
    meta: DocumentMeta,
}

impl DocRow {
    fn view(&self) -> DocumentView {
        DocumentView {
            id: self.id,
            set_id: self.set_id,
            status: self.status,
            meta: self.meta.clone(),
        }
    }

    #[cfg(test)]
    pub(crate) fn meta(&self) -> &DocumentMeta {
        &self.meta
    }

    /// What a listing keeps of this row ([`DocHead`]).
    pub(crate) fn head(&self) -> DocHead {
        let m = &self.meta;
        DocHead {
            id: self.id,
            set_id: self.set_id,
            status: self.status,
            version: self.version,
            facts: ItemFacts {
                visible_to_holder: true,
                ..m.facts(m.visible_from)
            },
            visible_from: m.visible_from,
            uploaded_at: m.uploaded_at,
            type_code: m.type_code.as_deref().map(Box::from),
        }
    }
}

/// What a listing decides, filters, ranks and pages on, of one document row: no title, names
/// or file details (crate-private; kept per holder by `doccache`, ~150 bytes against ~650 for
/// an opened row). Made from the opened row ([`DocRow::head`]), so it says what the row says.
#[derive(Clone, Debug)]
pub(crate) struct DocHead {
    id: DocumentId,
    set_id: DocumentId,
    status: Status,
    version: i64,
    /// The access policy's facts, `visible_to_holder` as once `visible_from` is past.
    facts: ItemFacts,
    visible_from: Timestamp,
    uploaded_at: Timestamp,
    type_code: Option<Box<str>>,
}

impl DocHead {
    pub(crate) fn id(&self) -> DocumentId {
        self.id
    }

    pub(crate) fn version(&self) -> i64 {
        self.version
    }

    pub(crate) fn is_deprecated(&self) -> bool {
        self.status == Status::Deprecated
    }

    /// As `UPDATE documents SET status = 'deprecated', version = version + 1` leaves it.
    pub(crate) fn deprecate(&mut self) {
        self.status = Status::Deprecated;
        self.version += 1;
    }

    /// The access policy's facts of this document at `now` (as `DocumentMeta::facts`):
    /// borrowed, unless a professional still holds it back from the holder (DM-6).
    fn facts(&self, now: Timestamp) -> std::borrow::Cow<'_, ItemFacts> {
        if now >= self.visible_from {
            std::borrow::Cow::Borrowed(&self.facts)
        } else {
            std::borrow::Cow::Owned(ItemFacts {
                visible_to_holder: false,
                ..self.facts.clone()
            })
        }
    }

    /// An estimate of the memory this head holds (`doccache`'s bound).
    pub(crate) fn approx_bytes(&self) -> usize {
        let author = match &self.facts.author {
            Author::Holder => 0,
            Author::Professional { id } => id.0.len(),
            Author::Establishment { id } => id.0.len(),
            Author::App { id } => id.0.len(),
        };
        std::mem::size_of::<Self>() + author + self.type_code.as_deref().map_or(0, str::len) + 32 // allocator overhead
    }
}

/// A row for `doccache`'s tests: document `n` (ids ordered as `n`), at `version`.
#[cfg(test)]
pub(crate) fn test_row(n: u8, version: i64) -> DocRow {
    let at = Timestamp::from_unix_seconds(1_700_000_000);
    DocRow {
        id: DocumentId::from_uuid(uuid::Uuid::from_bytes([n; 16])),
        set_id: DocumentId::from_uuid(uuid::Uuid::from_bytes([n; 16])),
        status: Status::Approved,
        attachment: AttachmentId::from_uuid(uuid::Uuid::from_bytes([n; 16])),
        version,
        meta: DocumentMeta {
            title: "Compte rendu".into(),
            class: carnet_domain::access::Category::Reports,
            type_code: None,
            type_display: None,
            event_date: None,
            author: carnet_domain::access::Author::Holder,
            author_name: String::new(),
            organisation: None,
            uploaded_at: at,
            confidentiality: "N".into(),
            format: document::Format::Text,
            mime: "text/plain".into(),
            size: 1,
            sha256: String::new(),
            filename: "cr.txt".into(),
            masked: false,
            hidden_from_representatives: false,
            visible_from: at,
            replaces: None,
            deletion_request: None,
            legacy_unique_id: None,
        },
    }
}

/// A new version's sealed metadata and its content already durable in the blob store, not yet
/// referenced by any row (crate-private).
pub(crate) struct StagedBlob {
    key: SecretKey,
    attachment: AttachmentId,
    sealed_meta: Vec<u8>,
    hash: BlobHash,
    sealed_size: i64,
    sealed_att_meta: Vec<u8>,
}

fn meta_aad(holder: HolderId, id: DocumentId) -> Vec<u8> {
    item_aad(holder, ItemKind::DocumentMeta, id.as_bytes())
}

pub(crate) fn author_of(actor: &Actor) -> Option<Author> {
    match actor {
        Actor::Holder { .. } | Actor::Representative { .. } => Some(Author::Holder),
        Actor::Professional { id, .. } => Some(Author::Professional { id: id.clone() }),
        Actor::Establishment { id } => Some(Author::Establishment { id: id.clone() }),
        Actor::App { id, .. } => Some(Author::App { id: id.clone() }),
        Actor::Operator { .. } => None,
    }
}

pub(crate) fn author_key(a: &Author) -> String {
    match a {
        Author::Holder => "holder".into(),
        Author::Professional { id } => id.0.clone(),
        Author::Establishment { id } => id.0.clone(),
        Author::App { id } => id.0.clone(),
    }
}

pub(crate) fn is_holder_side(actor: &Actor) -> bool {
    matches!(actor, Actor::Holder { .. } | Actor::Representative { .. })
}

/// Parses an HL7 TS (`20250312…`) or ISO date into `YYYY-MM-DD`.
fn iso_date(ts: &str) -> Option<String> {
    let d: String = ts.chars().filter(char::is_ascii_digit).take(8).collect();
    (d.len() == 8).then(|| format!("{}-{}-{}", &d[0..4], &d[4..6], &d[6..8]))
}

impl Store {
    /// What listings use of `holder`'s documents (`doccache`): every row's head, newest
    /// first, and the opened metadata of the few lately shown; from this server's cache while
    /// the holder's document stamp has not moved, else every row read and opened (crate-private).
    pub(crate) async fn document_rows(&self, holder: HolderId) -> Result<DocRecord, StoreError> {
        // The stamp first: rows read after it are at least as new as it.
        let stamp = self.document_stamp(holder).await?;
        if let Some(record) = self.doc_cache.get(holder, stamp) {
            return Ok(record);
        }
        let rows = self.open_document_rows(holder).await?;
        // Versions never change: what was opened under an older stamp still holds, and the
        // newest rows, just opened, are the ones the first pages show.
        let metas = self.doc_cache.metas(holder).unwrap_or_default();
        for r in rows.iter().take(Metas::KEEP).rev() {
            if metas.get(r.id, r.version).is_none() {
                metas.put(r.id, r.version, Arc::new(r.meta.clone()));
            }
        }
        let record = DocRecord {
            heads: Arc::new(rows.iter().map(DocRow::head).collect()),
            metas,
        };
        self.doc_cache.put(holder, stamp, record.clone());
        Ok(record)
    }

    /// The opened metadata of `heads` (of `holder`'s record), in order: from `metas`, else read
    /// and opened (and kept in `metas` when they are a page's few). `None` for a row whose
    /// version is no longer the head's, or that is gone: it changed after the heads were read.
    pub(crate) async fn open_heads(
        &self,
        holder: HolderId,
        metas: &Metas,
        heads: &[&DocHead],
    ) -> Result<Vec<Option<Arc<DocumentMeta>>>, StoreError> {
        let mut out = metas.get_many(heads.iter().map(|h| (h.id, h.version)));
        let missing = out.iter().filter(|m| m.is_none()).count();
        if missing == 0 {
            return Ok(out);
        }
        let key = self.vault.get(holder).await?.opener();
        let open = |id: DocumentId, sealed: &[u8]| open_meta(&key, holder, id, sealed).map(Arc::new);
        if missing <= Metas::KEEP {
            // A page's few: one point read each, kept for the next listing.
            for (slot, h) in out.iter_mut().zip(heads) {
                if slot.is_some() {
                    continue;
                }
                let row = self
                    .db
                    .read_one(
                        Read::new(
                            "SELECT version, meta_sealed FROM documents WHERE holder_id = $1 AND id = $2",
                        )
                        .uuid(*holder.as_uuid())
                        .uuid(*h.id.as_uuid()),
                        "read document metadata",
                    )
                    .await?;
                let Some(mut r) = row else { continue };
                if r.take::<i64>(0)? != h.version {
                    continue;
                }
                let meta = open(h.id, &r.take::<Vec<u8>>(1)?)?;
                metas.put(h.id, h.version, meta.clone());
                *slot = Some(meta);
            }
            return Ok(out);
        }
        // Many (a search in the titles, a sort on every resource): the record in one read.
        let rows = self
            .db
            .read_all(
                Read::new("SELECT id, version, meta_sealed FROM documents WHERE holder_id = $1")
                    .uuid(*holder.as_uuid()),
                "list documents",
            )
            .await?;
        let mut sealed: std::collections::HashMap<DocumentId, (i64, Vec<u8>)> =
            std::collections::HashMap::with_capacity(rows.len());
        for mut r in rows {
            let id = DocumentId::from_uuid(r.take(0)?);
            sealed.insert(id, (r.take(1)?, r.take(2)?));
        }
        for (slot, h) in out.iter_mut().zip(heads) {
            if slot.is_none()
                && let Some((version, bytes)) = sealed.get(&h.id)
                && *version == h.version
            {
                *slot = Some(open(h.id, bytes)?);
            }
        }
        Ok(out)
    }

    /// The holder's document stamp (migration 22): 0 until their documents first change.
    async fn document_stamp(&self, holder: HolderId) -> Result<i64, StoreError> {
        let row = self
            .db
            .read_one(
                Read::new("SELECT stamp FROM document_stamps WHERE holder_id = $1").uuid(*holder.as_uuid()),
                "read document stamp",
            )
            .await?;
        match row {
            Some(mut r) => r.take(0),
            None => Ok(0),
        }
    }

    /// Moves the holder's document stamp, in the transaction that changes their document
    /// rows; gives the new stamp.
    pub(crate) async fn bump_document_stamp(
        &self,
        tx: &mut crate::db::Tx,
        holder: HolderId,
    ) -> Result<i64, StoreError> {
        on_tx!(&mut *tx, t => sqlx::query(
            "INSERT INTO document_stamps (holder_id, stamp) VALUES ($1, 1) \
             ON CONFLICT (holder_id) DO UPDATE SET stamp = document_stamps.stamp + 1 RETURNING stamp")
            .bind(holder.as_uuid()).fetch_one(&mut **t).await.map(|r| r.get::<i64, _>(0)))
        .map_err(StoreError::db("move document stamp"))
    }

    async fn open_document_rows(&self, holder: HolderId) -> Result<Vec<DocRow>, StoreError> {
        let rows = self
            .db
            .read_all(
                Read::new(
                    "SELECT id, set_id, status, attachment_id, version, meta_sealed FROM documents \
                     WHERE holder_id = $1 ORDER BY id DESC",
                )
                .uuid(*holder.as_uuid()),
                "list documents",
            )
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.vault.get(holder).await?.opener();
        rows.into_iter()
            .map(|mut r| {
                let status: String = r.take(2)?;
                let sealed: Vec<u8> = r.take(5)?;
                open_row(
                    &key,
                    holder,
                    r.take(0)?,
                    r.take(1)?,
                    &status,
                    r.take(3)?,
                    r.take(4)?,
                    &sealed,
                )
            })
            .collect()
    }

    pub(crate) async fn document_row(
        &self,
        holder: HolderId,
        id: DocumentId,
    ) -> Result<Option<DocRow>, StoreError> {
        let row = self
            .db
            .read_one(
                Read::new(
                    "SELECT set_id, status, attachment_id, version, meta_sealed FROM documents \
                     WHERE holder_id = $1 AND id = $2",
                )
                .uuid(*holder.as_uuid())
                .uuid(*id.as_uuid()),
                "read document",
            )
            .await?;
        let Some(mut r) = row else {
            return Ok(None);
        };
        let raw = (r.take(0)?, r.take(1)?, r.take(2)?, r.take(3)?, r.take(4)?);
        self.open_document(holder, id, raw).await.map(Some)
    }

    /// One document row as read (`RawDocument`), its metadata opened with the holder's key.
    pub(crate) async fn open_document(
        &self,
        holder: HolderId,
        id: DocumentId,
        (set, status, att, version, sealed): crate::gate::RawDocument,
    ) -> Result<DocRow, StoreError> {
        let key = self.vault.get(holder).await?.opener();
        open_row(&key, holder, *id.as_uuid(), set, &status, att, version, &sealed)
    }

    /// Writes a new document version: blob (durable) first, then in one transaction the
    /// attachment row, the document row, the previous version's deprecation (compare-and-set)
    /// and the holder's notice. Acknowledged only once committed (S-30). If the transaction
    /// fails before its commit (it rolled back), the blob just written is deleted at once.
    ///
    /// A legacy import (LC-8, `legacy`) also records the uniqueId's index (a second import of
    /// it is a [`StoreError::Conflict`]), writes only if the space is still in the state the
    /// decision was made on, and queues no notice.
    #[allow(clippy::too_many_arguments)]
    async fn insert_document(
        &self,
        holder: HolderId,
        id: DocumentId,
        set_id: DocumentId,
        meta: &DocumentMeta,
        content: Vec<u8>,
        replaces: Option<&DocRow>,
        notice_due_at: Option<Timestamp>,
        legacy: Option<&LegacyWrite<'_>>,
    ) -> Result<(), StoreError> {
        let staged = self.stage_document(holder, id, meta, content).await?;
        self.commit_document(holder, id, set_id, meta, staged, replaces, notice_due_at, legacy)
            .await
    }

    /// The first half of [`Store::insert_document`]: the metadata sealed and the content sealed
    /// into the blob store (durable on return). Nothing references the blob until
    /// [`Store::commit_document`].
    async fn stage_document(
        &self,
        holder: HolderId,
        id: DocumentId,
        meta: &DocumentMeta,
        content: Vec<u8>,
    ) -> Result<StagedBlob, StoreError> {
        let key = self.vault.get(holder).await?;
        let attachment = AttachmentId::new(self.now());
        let sealed_meta = seal_meta(&key, holder, id, meta)?;
        let (hash, sealed_size, sealed_att_meta) = self
            .write_attachment_blob(&key, holder, attachment, &meta.mime, &meta.sha256, content)
            .await?;
        Ok(StagedBlob {
            key,
            attachment,
            sealed_meta,
            hash,
            sealed_size,
            sealed_att_meta,
        })
    }

    /// The second half of [`Store::insert_document`]: the rows and the notice in one group
    /// commit; the staged blob is deleted if they are refused.
    #[allow(clippy::too_many_arguments)]
    async fn commit_document(
        &self,
        holder: HolderId,
        id: DocumentId,
        set_id: DocumentId,
        meta: &DocumentMeta,
        staged: StagedBlob,
        replaces: Option<&DocRow>,
        notice_due_at: Option<Timestamp>,
        legacy: Option<&LegacyWrite<'_>>,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let StagedBlob {
            key,
            attachment,
            sealed_meta,
            hash,
            sealed_size,
            sealed_att_meta,
        } = staged;
        // DM-7: the holder is told of a new document (no content in the message); not of each
        // document of their former DMP (LC-8).
        let notify = meta.visible_to_holder(now) && legacy.is_none();
        // The rows and the notice, group-committed with concurrent writes (`combiner`): the
        // closure owns what it writes.
        let (store, meta, replaces) = (self.clone(), meta.clone(), replaces.cloned());
        let legacy = legacy.map(|l| (l.index.to_string(), l.decided_on));
        let blob = hash.clone();
        let written = self
            .write(move |tx| {
                Box::pin(async move {
                    let legacy = legacy.as_ref().map(|(index, decided_on)| LegacyWrite {
                        index,
                        decided_on: *decided_on,
                    });
                    let stamp = store
                        .insert_document_rows(
                            tx,
                            holder,
                            id,
                            set_id,
                            &meta,
                            (attachment, &blob, sealed_size, &sealed_att_meta, &sealed_meta),
                            replaces.as_ref(),
                            notice_due_at,
                            legacy.as_ref(),
                        )
                        .await?;
                    if notify {
                        store
                            .enqueue_notice_in_tx(tx, &key, holder, "new_document", now, false)
                            .await?;
                    }
                    Ok((stamp, meta, replaces))
                })
            })
            .await;
        let (stamp, meta, replaces) = match written {
            Ok(w) => w,
            Err(e) => {
                // Refused for what it is (nothing references the blob, sealed with a fresh nonce):
                // the blob goes. After a failed commit it stays (the commit may have happened;
                // gc-blobs collects it if not).
                if matches!(
                    e,
                    StoreError::Conflict | StoreError::NotFound | StoreError::Invalid(_)
                ) {
                    let _ = self.blobs.delete(&hash).await;
                }
                return Err(e);
            }
        };
        // Committed: this server's cached rows of the record, if they were the record just
        // before, become the record now (`doccache`).
        let row = DocRow {
            id,
            set_id,
            status: Status::Approved,
            attachment,
            version: 1,
            meta,
        };
        self.doc_cache.extend(
            holder,
            stamp,
            row.head(),
            Arc::new(row.meta),
            replaces.map(|r| (r.id, r.version)),
        );
        if notify {
            self.wake_delivery();
        }
        Ok(())
    }

    /// Writes the sealed contents of a transaction's documents to the blob store (durable on
    /// return), before its database transaction begins; on an error, the blobs already
    /// written are deleted.
    pub(crate) async fn write_staged_documents(
        &self,
        key: &SecretKey,
        holder: HolderId,
        staged: Vec<StagedDocument>,
    ) -> Result<Vec<WrittenDocument>, StoreError> {
        let now = self.now();
        let mut written = Vec::with_capacity(staged.len());
        for d in staged {
            let attachment = AttachmentId::new(now);
            let one = async {
                let sealed_meta = seal_meta(key, holder, d.id, &d.meta)?;
                let (hash, sealed_size, sealed_att_meta) = self
                    .write_attachment_blob(key, holder, attachment, &d.meta.mime, &d.meta.sha256, d.content)
                    .await?;
                let notice_due = (!d.meta.visible_to_holder(now))
                    .then(|| now.plus_seconds(document::WAITING_NOTICE_SECONDS));
                Ok::<_, StoreError>(WrittenDocument {
                    id: d.id,
                    set_id: d.set_id,
                    replaces: d.replaces,
                    meta: d.meta,
                    attachment,
                    hash,
                    sealed_size,
                    sealed_att_meta,
                    sealed_meta,
                    notice_due,
                })
            }
            .await;
            match one {
                Ok(w) => written.push(w),
                Err(e) => {
                    self.forget_written_documents(&written).await;
                    return Err(e);
                }
            }
        }
        Ok(written)
    }

    /// The rows of a transaction's documents, in its database transaction; gives whether the
    /// holder is to be told (DM-7: one "new document" notice for the lot).
    pub(crate) async fn insert_written_documents(
        &self,
        tx: &mut crate::db::Tx,
        holder: HolderId,
        written: &[WrittenDocument],
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut notify = false;
        for d in written {
            self.insert_document_rows(
                tx,
                holder,
                d.id,
                d.set_id,
                &d.meta,
                (
                    d.attachment,
                    &d.hash,
                    d.sealed_size,
                    &d.sealed_att_meta,
                    &d.sealed_meta,
                ),
                d.replaces.as_ref(),
                d.notice_due,
                None,
            )
            .await?;
            notify |= d.meta.visible_to_holder(now);
        }
        Ok(notify)
    }

    /// Deletes a staged blob no row will reference.
    async fn forget_staged(&self, staged: StagedBlob) {
        let _ = self.blobs.delete(&staged.hash).await;
    }

    /// Deletes the blobs of documents whose rows were not committed (sealed with fresh nonces,
    /// nothing else references them); a blob left behind is collected by `gc-blobs`.
    pub(crate) async fn forget_written_documents(&self, written: &[WrittenDocument]) {
        for d in written {
            let _ = self.blobs.delete(&d.hash).await;
        }
    }

    /// The rows of [`Store::insert_document`], in its transaction.
    #[allow(clippy::too_many_arguments)]
    async fn insert_document_rows(
        &self,
        tx: &mut crate::db::Tx,
        holder: HolderId,
        id: DocumentId,
        set_id: DocumentId,
        meta: &DocumentMeta,
        (attachment, hash, sealed_size, sealed_att_meta, sealed_meta): (
            AttachmentId,
            &BlobHash,
            i64,
            &[u8],
            &[u8],
        ),
        replaces: Option<&DocRow>,
        notice_due_at: Option<Timestamp>,
        legacy: Option<&LegacyWrite<'_>>,
    ) -> Result<i64, StoreError> {
        let now = self.now();
        if let Some(l) = legacy {
            // Decided and written on the same state: an opposition or a closure that came in
            // between wins (the holder's row is locked until the commit).
            let n = on_tx!(&mut *tx, t => sqlx::query(
                "UPDATE holders SET updated_at = updated_at WHERE id = $1 AND lifecycle = $2 AND state_since = $3")
                .bind(holder.as_uuid()).bind(l.decided_on.name()).bind(l.decided_on.since().as_micros())
                .execute(&mut **t).await.map(|r| r.rows_affected()))
            .map_err(StoreError::db("check the space of a legacy document"))?;
            if n != 1 {
                return Err(StoreError::Conflict);
            }
        }
        on_tx!(&mut *tx, t => sqlx::query(
            "INSERT INTO attachments (holder_id, id, created_at, blob_hash, sealed_size, meta_sealed) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(holder.as_uuid()).bind(attachment.as_uuid()).bind(now.as_micros()).bind(hash.as_str()).bind(sealed_size).bind(sealed_att_meta)
            .execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("insert attachment"))?;
        on_tx!(&mut *tx, t => sqlx::query(
            "INSERT INTO documents (holder_id, id, set_id, status, created_at, visible_from, notice_due_at, attachment_id, meta_sealed, version) \
             VALUES ($1, $2, $3, 'approved', $4, $5, $6, $7, $8, 1)")
            .bind(holder.as_uuid()).bind(id.as_uuid()).bind(set_id.as_uuid()).bind(now.as_micros())
            .bind(meta.visible_from.as_micros()).bind(notice_due_at.map(|t| t.as_micros()))
            .bind(attachment.as_uuid()).bind(sealed_meta)
            .execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(|e| match &e {
            sqlx::Error::Database(d) if d.is_foreign_key_violation() => StoreError::NotFound,
            _ => StoreError::db("insert document")(e),
        })?;
        if let Some(old) = replaces {
            let n = on_tx!(&mut *tx, t => sqlx::query(
                "UPDATE documents SET status = 'deprecated', version = version + 1 WHERE holder_id = $1 AND id = $2 AND version = $3")
                .bind(holder.as_uuid()).bind(old.id.as_uuid()).bind(old.version)
                .execute(&mut **t).await.map(|r| r.rows_affected()))
            .map_err(StoreError::db("deprecate document"))?;
            if n != 1 {
                return Err(StoreError::Conflict);
            }
        }
        if let Some(l) = legacy {
            on_tx!(&mut *tx, t => sqlx::query(
                "INSERT INTO legacy_documents (holder_id, unique_id_index, document_id, imported_at) VALUES ($1, $2, $3, $4)")
                .bind(holder.as_uuid()).bind(l.index).bind(id.as_uuid()).bind(now.as_micros())
                .execute(&mut **t).await.map(|r| r.rows_affected()))
            .map_err(|e| {
                if crate::db::is_unique_violation(&e) {
                    StoreError::Conflict // imported meanwhile by another run
                } else {
                    StoreError::db("record legacy document")(e)
                }
            })?;
        }
        self.bump_document_stamp(tx, holder).await
    }

    /// LC-8: the index of a legacy document's uniqueId (HMAC under a vault service key).
    async fn legacy_index(&self, unique_id: &str) -> Result<String, StoreError> {
        Ok(self
            .service_keys()
            .await?
            .legacy_index
            .hmac_hex(unique_id.as_bytes()))
    }

    /// LC-8: the document imported for `holder` under this uniqueId index, if any.
    async fn legacy_document(&self, holder: HolderId, index: &str) -> Result<Option<DocumentId>, StoreError> {
        on_db!(&self.db.writer(), p => sqlx::query(
            "SELECT document_id FROM legacy_documents WHERE holder_id = $1 AND unique_id_index = $2")
            .bind(holder.as_uuid()).bind(index).fetch_optional(p).await
            .map(|r| r.map(|r| DocumentId::from_uuid(r.get::<uuid::Uuid, _>(0)))))
        .map_err(StoreError::db("find legacy document"))
    }

    /// Rewrites a document's metadata and status, compare-and-set on its version.
    async fn update_document(
        &self,
        holder: HolderId,
        row: &DocRow,
        status: Status,
        meta: &DocumentMeta,
        notice: Option<&str>,
    ) -> Result<(), StoreError> {
        let key = self.vault.get(holder).await?;
        let sealed = seal_meta(&key, holder, row.id, meta)?;
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let n = on_tx!(&mut tx, t => sqlx::query(
            "UPDATE documents SET status = $1, meta_sealed = $2, visible_from = $3, \
             notice_due_at = CASE WHEN $3 <= $4 THEN NULL ELSE notice_due_at END, version = version + 1 \
             WHERE holder_id = $5 AND id = $6 AND version = $7")
            .bind(status.tag()).bind(&sealed).bind(meta.visible_from.as_micros()).bind(now.as_micros())
            .bind(holder.as_uuid()).bind(row.id.as_uuid()).bind(row.version)
            .execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("update document"))?;
        if n != 1 {
            return Err(StoreError::Conflict);
        }
        self.bump_document_stamp(&mut tx, holder).await?;
        if let Some(kind) = notice {
            self.enqueue_notice_in_tx(&mut tx, &key, holder, kind, now, false)
                .await?;
        }
        tx.commit().await?;
        if notice.is_some() {
            self.wake_delivery();
        }
        Ok(())
    }

    /// Deletes a document for everyone (DM-3, DM-4); its traces remain. The blob goes at once
    /// (or with the next orphan collection if that fails).
    async fn delete_document(&self, holder: HolderId, row: &DocRow) -> Result<(), StoreError> {
        let hash: Option<String> = on_db!(&self.db.writer(), p => sqlx::query("SELECT blob_hash FROM attachments WHERE holder_id = $1 AND id = $2")
            .bind(holder.as_uuid()).bind(row.attachment.as_uuid()).fetch_optional(p).await
            .map(|r| r.map(|r| r.get::<String, _>(0))))
        .map_err(StoreError::db("find document blob"))?;
        let mut tx = self.db.begin().await?;
        let n = on_tx!(&mut tx, t => sqlx::query("DELETE FROM documents WHERE holder_id = $1 AND id = $2 AND version = $3")
            .bind(holder.as_uuid()).bind(row.id.as_uuid()).bind(row.version)
            .execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("delete document"))?;
        if n != 1 {
            return Err(StoreError::Conflict);
        }
        on_tx!(&mut tx, t => sqlx::query("DELETE FROM attachments WHERE holder_id = $1 AND id = $2")
            .bind(holder.as_uuid()).bind(row.attachment.as_uuid())
            .execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("delete document content"))?;
        self.bump_document_stamp(&mut tx, holder).await?;
        tx.commit().await?;
        if let Some(h) = hash.as_deref().and_then(BlobHash::parse) {
            let _ = self.blobs.delete(&h).await;
        }
        Ok(())
    }

    /// DM-6 job: tells holders that a document awaits them (within two weeks of its deposit),
    /// without saying what. Safe on several servers: each notice is claimed by compare-and-set.
    pub async fn run_document_notices(&self, batch: i64) -> Result<u64, StoreError> {
        let now = self.now().as_micros();
        let due: Vec<(uuid::Uuid, uuid::Uuid)> = on_db!(&self.db, p => sqlx::query(
            "SELECT holder_id, id FROM documents WHERE notice_due_at IS NOT NULL AND notice_due_at <= $1 LIMIT $2")
            .bind(now).bind(batch).fetch_all(p).await
            .map(|rs| rs.into_iter().map(|r| (r.get(0), r.get(1))).collect()))
        .map_err(StoreError::db("find waiting documents"))?;
        let mut sent = 0;
        for (h, id) in due {
            let holder = HolderId::from_uuid(h);
            let key = match self.vault.get(holder).await {
                Ok(k) => k,
                Err(StoreError::Shredded(_)) => continue,
                Err(e) => return Err(e),
            };
            let mut tx = self.db.begin().await?;
            let n = on_tx!(&mut tx, t => sqlx::query(
                "UPDATE documents SET notice_due_at = NULL WHERE holder_id = $1 AND id = $2 AND notice_due_at IS NOT NULL")
                .bind(h).bind(id).execute(&mut **t).await.map(|r| r.rows_affected()))
            .map_err(StoreError::db("claim waiting-document notice"))?;
            if n == 1 {
                self.enqueue_notice_in_tx(&mut tx, &key, holder, "document_waiting", self.now(), false)
                    .await?;
                sent += 1;
            }
            tx.commit().await?;
        }
        if sent > 0 {
            self.wake_delivery();
        }
        Ok(sent)
    }

    /// Seals and writes an attachment's content to the blob store (durable on return); gives
    /// the blob hash, its size and the sealed attachment metadata for the row.
    pub(crate) async fn write_attachment_blob(
        &self,
        key: &SecretKey,
        holder: HolderId,
        id: AttachmentId,
        content_type: &str,
        sha256: &str,
        content: Vec<u8>,
    ) -> Result<(BlobHash, i64, Vec<u8>), StoreError> {
        let meta = AttachmentMeta {
            content_type: content_type.to_string(),
            size: content.len() as u64,
            sha256: sha256.to_string(),
        };
        let sealed_content = key.seal_owned(
            &item_aad(holder, ItemKind::AttachmentContent, id.as_bytes()),
            content,
        )?;
        let meta_json = serde_json::to_vec(&meta).map_err(|e| StoreError::Integrity(e.to_string()))?;
        let sealed_meta = key.seal(
            &item_aad(holder, ItemKind::AttachmentMeta, id.as_bytes()),
            &meta_json,
        )?;
        let sealed_size = sealed_content.len() as i64;
        let hash = self.blobs.put(Bytes::from(sealed_content)).await?;
        Ok((hash, sealed_size, sealed_meta))
    }
}

fn seal_meta(
    key: &SecretKey,
    holder: HolderId,
    id: DocumentId,
    meta: &DocumentMeta,
) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(meta).map_err(|e| StoreError::Integrity(e.to_string()))?;
    key.seal(&meta_aad(holder, id), &json)
}

/// A document version's metadata opened with the holder's key (bound to the holder and the id).
fn open_meta(
    key: &crate::crypto::Opener,
    holder: HolderId,
    id: DocumentId,
    sealed: &[u8],
) -> Result<DocumentMeta, StoreError> {
    serde_json::from_slice(&key.open(&meta_aad(holder, id), sealed)?)
        .map_err(|e| StoreError::Integrity(format!("document metadata: {e}")))
}

#[allow(clippy::too_many_arguments)]
fn open_row(
    key: &crate::crypto::Opener,
    holder: HolderId,
    id: uuid::Uuid,
    set: uuid::Uuid,
    status: &str,
    att: uuid::Uuid,
    version: i64,
    sealed: &[u8],
) -> Result<DocRow, StoreError> {
    let id = DocumentId::from_uuid(id);
    let meta = open_meta(key, holder, id, sealed)?;
    Ok(DocRow {
        id,
        set_id: DocumentId::from_uuid(set),
        status: Status::parse(status)
            .ok_or_else(|| StoreError::Integrity(format!("unknown document status {status}")))?,
        attachment: AttachmentId::from_uuid(att),
        version,
        meta,
    })
}

fn invalid(e: impl std::fmt::Display) -> StoreError {
    StoreError::Invalid(e.to_string())
}

/// Whom a document's traces are kept from (MI-2, DM-6): a held document's until it shows.
fn withheld(meta: &DocumentMeta, now: Timestamp) -> Withheld {
    Withheld {
        from_representatives: meta.hidden_from_representatives,
        from_holder_until: (!meta.visible_to_holder(now)).then_some(meta.visible_from),
    }
}

impl Gate {
    /// Loads a document and its space, decides `action` on it, and traces the decision; a
    /// denial (or a missing document) is `NotFound` (AC-8).
    async fn decide_on(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        action: Action,
        item: String,
        ctx: &Context,
    ) -> Result<(DocRow, GateFacts), StoreError> {
        // The document and the gate's facts in one statement.
        let (space, raw) = self.space_with(holder, actor, Some(*id.as_uuid())).await?;
        let (space, raw) = (
            space.ok_or(StoreError::NotFound)?,
            raw.ok_or(StoreError::NotFound)?,
        );
        let row = self.store.open_document(holder, id, raw).await?;
        let d = self.decide_in(&space, actor, action, &row.meta.facts(self.store.now()), ctx);
        self.record(
            Access {
                holder,
                actor,
                action,
                item: &item,
                category: Some(row.meta.class),
                withheld: withheld(&row.meta, self.store.now()),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        if !d.allowed {
            return Err(StoreError::NotFound);
        }
        Ok((row, space))
    }

    /// A new document of a transaction (IO-2): its content checked (DM-1), the creation
    /// decided and traced like a deposit; gives it staged, and whether it was allowed.
    pub(crate) async fn stage_document(
        &self,
        holder: HolderId,
        actor: &Actor,
        new: NewDocument,
        content: Vec<u8>,
        space: &GateFacts,
        ctx: &Context,
    ) -> Result<(StagedDocument, bool), StoreError> {
        let (meta, _) = self.prepare(holder, actor, new, &content, None).await?;
        let id = DocumentId::new(self.store.now());
        let allowed = self.decide_creation(holder, actor, id, &meta, space, ctx).await?;
        Ok((
            StagedDocument {
                id,
                set_id: id,
                meta,
                content,
                replaces: None,
            },
            allowed,
        ))
    }

    /// Decides and traces the creation of document `id` described by `meta` (DM-1, AC-6);
    /// gives whether it is allowed.
    async fn decide_creation(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        meta: &DocumentMeta,
        space: &GateFacts,
        ctx: &Context,
    ) -> Result<bool, StoreError> {
        let d = self.decide_in(space, actor, Action::Create, &meta.facts(self.store.now()), ctx);
        self.trace_creation(holder, actor, id, meta, d, space, ctx)
            .await?;
        Ok(d.allowed)
    }

    /// The trace of a decision on creating document `id`.
    #[allow(clippy::too_many_arguments)]
    async fn trace_creation(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        meta: &DocumentMeta,
        d: Decision,
        space: &GateFacts,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        self.record(
            Access {
                holder,
                actor,
                action: Action::Create,
                item: &format!("document/{id}"),
                category: Some(meta.class),
                withheld: withheld(meta, self.store.now()),
            },
            d,
            space,
            ctx,
        )
        .await
    }

    /// A new version of a transaction (IO-2, DM-3): decided and traced like
    /// [`Gate::replace_document`] (a refusal is `NotFound`), staged with the version it replaces.
    pub(crate) async fn stage_replacement(
        &self,
        holder: HolderId,
        actor: &Actor,
        old: DocumentId,
        new: NewDocument,
        content: Vec<u8>,
        ctx: &Context,
    ) -> Result<StagedDocument, StoreError> {
        let (row, _) = self
            .decide_on(holder, actor, old, Action::Update, format!("document/{old}"), ctx)
            .await?;
        let (meta, id) = self.replacement_meta(holder, actor, &row, new, &content).await?;
        Ok(StagedDocument {
            id,
            set_id: row.set_id,
            meta,
            content,
            replaces: Some(row),
        })
    }

    /// The metadata and id of a new version replacing `row` (DM-3): flags carry over, and a
    /// version the holder could see never becomes invisible again (DM-6).
    async fn replacement_meta(
        &self,
        holder: HolderId,
        actor: &Actor,
        row: &DocRow,
        new: NewDocument,
        content: &[u8],
    ) -> Result<(DocumentMeta, DocumentId), StoreError> {
        if row.status == Status::Deprecated {
            return Err(StoreError::NotFound);
        }
        let now = self.store.now();
        let (mut meta, _) = self.prepare(holder, actor, new, content, Some(&row.meta)).await?;
        meta.replaces = Some(row.id.to_string());
        meta.masked = row.meta.masked;
        meta.hidden_from_representatives |= row.meta.hidden_from_representatives;
        if row.meta.visible_to_holder(now) {
            meta.visible_from = now; // DM-6: never invisible again
        }
        Ok((meta, DocumentId::new(now)))
    }

    /// Deposits a document in `holder`'s record (DM-1, DM-2): checks the content against its
    /// declared type (and reads a CDA header), asks the policy (Create), traces, stores, and
    /// tells the holder (DM-7) unless a professional holds it for an announcement (DM-6).
    /// Bad input is refused before anything is written.
    pub async fn deposit_document(
        &self,
        holder: HolderId,
        actor: &Actor,
        new: NewDocument,
        content: Vec<u8>,
        ctx: &Context,
    ) -> Result<DocumentView, StoreError> {
        let (meta, _) = self.prepare(holder, actor, new, &content, None).await?;
        let id = DocumentId::new(self.store.now());
        self.write_version(holder, actor, id, id, meta, content, None, ctx)
            .await
    }

    /// DM-3: replaces a document by a new version (author only); the old one becomes
    /// deprecated and stays in the history. Flags of the old version carry over.
    pub async fn replace_document(
        &self,
        holder: HolderId,
        actor: &Actor,
        old: DocumentId,
        new: NewDocument,
        content: Vec<u8>,
        ctx: &Context,
    ) -> Result<DocumentView, StoreError> {
        let d = self
            .stage_replacement(holder, actor, old, new, content, ctx)
            .await?;
        let replaces = d.replaces;
        self.write_version(
            holder,
            actor,
            d.id,
            d.set_id,
            d.meta,
            d.content,
            replaces.as_ref(),
            ctx,
        )
        .await
    }

    /// Builds the metadata of a new version from what the depositor said and the bytes.
    async fn prepare(
        &self,
        holder: HolderId,
        actor: &Actor,
        new: NewDocument,
        content: &[u8],
        previous: Option<&DocumentMeta>,
    ) -> Result<(DocumentMeta, Option<document::CdaHeader>), StoreError> {
        let author = author_of(actor).ok_or(StoreError::NotFound)?;
        // DM-6: only a professional holds a document back from the holder.
        let may_hold = matches!(actor, Actor::Professional { .. });
        // MI-2: set by a professional, or by the holder (not by a representative).
        let may_hide = !matches!(actor, Actor::Representative { .. });
        self.build_meta(holder, author, may_hold, may_hide, new, content, previous)
            .await
    }

    /// The metadata of a new version by `author`: the content checked against its declared
    /// type (DM-1), a CDA header read safely (S-20) and its patient compared with the holder
    /// (AU-2), the declared fields checked. Writes nothing.
    #[allow(clippy::too_many_arguments)]
    async fn build_meta(
        &self,
        holder: HolderId,
        author: Author,
        may_hold: bool,
        may_hide_from_representatives: bool,
        new: NewDocument,
        content: &[u8],
        previous: Option<&DocumentMeta>,
    ) -> Result<(DocumentMeta, Option<document::CdaHeader>), StoreError> {
        let now = self.store.now();
        let format = Format::from_mime(&new.mime)
            .ok_or_else(|| invalid(document::ContentError::Unsupported(new.mime.clone())))?;
        document::check_content(format, content).map_err(invalid)?;
        let cda = if format == Format::Cda {
            let h = document::read_cda_header(content).map_err(invalid)?;
            // AU-2: a document is filed only under the holder's own (qualified) INS.
            if let Some(ins) = &h.patient_ins {
                #[allow(clippy::disallowed_methods)] // the filing's own check (AU-2)
                let record = self.store.holder(holder).await?;
                let admin: serde_json::Value =
                    serde_json::from_slice(&record.administrative).unwrap_or_default();
                if admin.get("ins").and_then(|v| v.as_str()) != Some(ins.as_str()) {
                    return Err(invalid(
                        "le document CDA concerne un autre patient (INS) / the CDA document is about another patient (INS)",
                    ));
                }
            }
            Some(h)
        } else {
            None
        };
        let title = new
            .title
            .filter(|t| !t.trim().is_empty())
            .or_else(|| cda.as_ref().and_then(|h| h.title.clone()))
            .or_else(|| previous.map(|p| p.title.clone()))
            .ok_or_else(|| invalid("un titre est requis / a title is required"))?;
        if title.chars().count() > 300 {
            return Err(invalid(
                "titre trop long (300 caractères au plus) / title too long (300 characters at most)",
            ));
        }
        let class = new
            .class
            .or_else(|| previous.map(|p| p.class))
            .unwrap_or(if author == Author::Holder {
                Category::HolderDocuments
            } else {
                Category::Reports
            });
        // S-3: holders file their own documents under their own class only.
        let class = if author == Author::Holder {
            Category::HolderDocuments
        } else {
            class
        };
        let confidentiality = new
            .confidentiality
            .or_else(|| cda.as_ref().and_then(|h| h.confidentiality.clone()))
            .unwrap_or_else(|| "N".into());
        if !matches!(confidentiality.as_str(), "N" | "R" | "V") {
            return Err(invalid(
                "confidentialité : N, R ou V / confidentiality: N, R or V",
            ));
        }
        let event_date = match new
            .event_date
            .or_else(|| cda.as_ref().and_then(|h| h.effective_time.clone()))
        {
            Some(d) => Some(
                iso_date(&d).ok_or_else(|| invalid("date de l'acte invalide / invalid date of the act"))?,
            ),
            None => None,
        };
        let filename = new
            .filename
            .map(|f| {
                f.rsplit(['/', '\\'])
                    .next()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| {
                let ext = match format {
                    Format::Pdf => "pdf",
                    Format::Cda => "xml",
                    Format::Jpeg => "jpg",
                    Format::Png => "png",
                    Format::Text => "txt",
                };
                format!("document.{ext}")
            });
        let hold = new.hold_from_holder && may_hold;
        let meta = DocumentMeta {
            title: title.trim().to_string(),
            class,
            type_code: new
                .type_code
                .or_else(|| cda.as_ref().and_then(|h| h.type_code.clone())),
            type_display: new
                .type_display
                .or_else(|| cda.as_ref().and_then(|h| h.type_display.clone())),
            event_date,
            author,
            author_name: new.author_name,
            organisation: new.organisation,
            uploaded_at: now,
            confidentiality,
            format,
            mime: format.mime().to_string(),
            size: content.len() as u64,
            sha256: crate::crypto::sha256_hex(content),
            filename,
            masked: false,
            hidden_from_representatives: new.hidden_from_representatives && may_hide_from_representatives,
            visible_from: document::visible_from(now, hold),
            replaces: None,
            deletion_request: None,
            legacy_unique_id: None,
        };
        Ok((meta, cda))
    }

    /// LC-8: files a document of the holder's former DMP in their record, on behalf of the
    /// migration (traced as the operator [`legacy_import_actor`], reason `legacy_import`, AC-6).
    ///
    /// Decided by [`decide_legacy_import`]: only a space that exists and whose holder did not
    /// object receives it; a refusal is [`StoreError::NotFound`], as for any deposit (AC-8).
    /// Then, unless this uniqueId was already imported for this holder (`AlreadyPresent`:
    /// running a manifest again imports nothing twice), the content goes through the same
    /// checks, sealing, durable write and rows as a deposit (DM-1). The document is its
    /// original author's (RPPS and name from the manifest), visible to the holder at once (no
    /// DM-6 hold) and told to nobody: no notice per document. Bad input is refused before
    /// anything is written.
    pub async fn import_legacy_document(
        &self,
        holder: HolderId,
        legacy: LegacyDocument,
        content: Vec<u8>,
    ) -> Result<LegacyOutcome, StoreError> {
        let actor = legacy_import_actor();
        let ctx = Context::default();
        let unique_id = legacy.unique_id.trim().to_string();
        if unique_id.is_empty() || unique_id.len() > 256 || unique_id.chars().any(char::is_control) {
            return Err(invalid("unique_id: 1 to 256 characters, no control character"));
        }
        let rpps = ProfessionalId::from_national_id(&legacy.author_rpps).ok_or_else(|| {
            invalid("author_rpps: an RPPS number has 11 digits (or 12 as a national id starting with 8)")
        })?;
        if legacy.document.author_name.trim().is_empty() {
            return Err(invalid("author_name: the author's name is required"));
        }
        let space = self.space(holder, &actor).await?.ok_or(StoreError::NotFound)?;
        let d = decide_legacy_import(&space.policy.facts(space.lifecycle));
        if !d.allowed {
            self.record(
                Access {
                    holder,
                    actor: &actor,
                    action: Action::Create,
                    item: "document/legacy",
                    category: legacy.document.class,
                    withheld: Withheld::default(),
                },
                d,
                &space,
                &ctx,
            )
            .await?;
            return Err(StoreError::NotFound);
        }
        let index = self.store.legacy_index(&unique_id).await?;
        if let Some(existing) = self.store.legacy_document(holder, &index).await? {
            return Ok(LegacyOutcome::AlreadyPresent(existing));
        }
        let author = Author::Professional { id: rpps };
        let (mut meta, _) = self
            .build_meta(holder, author, false, false, legacy.document, &content, None)
            .await?;
        let now = self.store.now();
        if let Some(t) = legacy.creation_time {
            meta.uploaded_at = t.min(now);
        }
        meta.legacy_unique_id = Some(unique_id);
        let id = DocumentId::new(now);
        self.record(
            Access {
                holder,
                actor: &actor,
                action: Action::Create,
                item: &format!("document/{id}"),
                category: Some(meta.class),
                withheld: Withheld::default(),
            },
            d,
            &space,
            &ctx,
        )
        .await?;
        let write = LegacyWrite {
            index: &index,
            decided_on: space.lifecycle,
        };
        match self
            .store
            .insert_document(holder, id, id, &meta, content, None, None, Some(&write))
            .await
        {
            Ok(()) => Ok(LegacyOutcome::Imported(Box::new(DocumentView {
                id,
                set_id: id,
                status: Status::Approved,
                meta,
            }))),
            // Imported meanwhile by another run, or the space changed since the decision.
            Err(StoreError::Conflict) => match self.store.legacy_document(holder, &index).await? {
                Some(existing) => Ok(LegacyOutcome::AlreadyPresent(existing)),
                None => Err(StoreError::Conflict),
            },
            Err(e) => Err(e),
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn write_version(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        set_id: DocumentId,
        meta: DocumentMeta,
        content: Vec<u8>,
        replaces: Option<&DocRow>,
        ctx: &Context,
    ) -> Result<DocumentView, StoreError> {
        let now = self.store.now();
        let notice_due =
            (!meta.visible_to_holder(now)).then(|| now.plus_seconds(document::WAITING_NOTICE_SECONDS));
        if replaces.is_some() {
            // A new version was decided and traced as an update of the one it replaces
            // (`decide_on`).
            self.store
                .insert_document(holder, id, set_id, &meta, content, replaces, notice_due, None)
                .await?;
        } else {
            let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
            let d = self.decide_in(&space, actor, Action::Create, &meta.facts(now), ctx);
            if !d.allowed {
                self.trace_creation(holder, actor, id, &meta, d, &space, ctx)
                    .await?;
                return Err(StoreError::NotFound);
            }
            // Allowed: the trace and the sealed content are made durable at once (the trace
            // appender's commit and the blob's fsyncs overlap); the rows commit only once both
            // are, so no document exists without the trace of its creation.
            let (traced, staged) = tokio::join!(
                self.trace_creation(holder, actor, id, &meta, d, &space, ctx),
                self.store.stage_document(holder, id, &meta, content)
            );
            let staged = match (traced, staged) {
                (Ok(()), Ok(staged)) => staged,
                (Err(e), Ok(staged)) => {
                    self.store.forget_staged(staged).await;
                    return Err(e);
                }
                (_, Err(e)) => return Err(e),
            };
            self.store
                .commit_document(holder, id, set_id, &meta, staged, None, notice_due, None)
                .await?;
        }
        Ok(DocumentView {
            id,
            set_id,
            status: Status::Approved,
            meta,
        })
    }

    /// Lists what `actor` may see of `holder`'s documents, filtered and paged (DM-8). Items the
    /// caller may not see are left out before filtering, counting and paging (S-1, S-2). The
    /// listing is traced once.
    pub async fn list_documents(
        &self,
        holder: HolderId,
        actor: &Actor,
        filter: &DocumentFilter,
        ctx: &Context,
    ) -> Result<DocumentPage, StoreError> {
        let set = self.document_set(holder, actor, filter, ctx).await?;
        let total = set.len();
        let limit = filter.limit.clamp(1, 500);
        let page: Vec<usize> = (0..total)
            .filter(|i| {
                filter.first_view || filter.before.is_none_or(|b| set.id(*i).is_some_and(|id| id < b))
            })
            .take(limit)
            .collect();
        set.open(&page).await?;
        let next_before = (!filter.first_view && page.len() == limit)
            .then(|| page.last().and_then(|i| set.id(*i)))
            .flatten()
            .filter(|last| (0..total).any(|i| set.id(i).is_some_and(|id| id < *last)));
        Ok(DocumentPage {
            // A row that changed since it was decided on is left out of this page.
            documents: page
                .iter()
                .filter_map(|i| set.get(*i))
                .map(|d| d.view())
                .collect(),
            total,
            next_before,
        })
    }

    /// Everything `actor` may see of `holder`'s documents under `filter` (its `limit` and
    /// `before` aside), in listing order: decided and traced as [`Gate::list_documents`], each
    /// document's view made only when asked for (a FHIR search maps only its page).
    pub async fn document_set(
        &self,
        holder: HolderId,
        actor: &Actor,
        filter: &DocumentFilter,
        ctx: &Context,
    ) -> Result<DocumentSet, StoreError> {
        let Some(space) = self.space(holder, actor).await? else {
            return Err(StoreError::NotFound);
        };
        let record = self.store.document_rows(holder).await?;
        let decider = self.decider(&space, actor, ctx);
        let now = decider.now();
        let mut first_allowed: Option<Decision> = None;
        let mut visible: Vec<(usize, Option<(u8, Timestamp)>)> = Vec::new();
        for (i, head) in record.heads.iter().enumerate() {
            let d = decider.decide(Action::Read, &head.facts(now));
            if !d.allowed {
                continue;
            }
            first_allowed.get_or_insert(d);
            if !matches(head, filter) {
                continue;
            }
            let rank = if filter.first_view {
                match document::first_view_rank_of(
                    head.facts.category,
                    head.type_code.as_deref(),
                    head.uploaded_at,
                    head.status,
                    now,
                ) {
                    Some(r) => Some(r),
                    None => continue,
                }
            } else {
                None
            };
            visible.push((i, rank));
        }
        // The listing itself is one access: allowed if anything could be shown, else decided
        // as a read of the record (so a professional without any right leaves a denial).
        let d = match first_allowed {
            Some(d) => d,
            None => self.decide_in(&space, actor, Action::Read, &record_facts(), ctx),
        };
        self.record(
            Access {
                holder,
                actor,
                action: Action::Read,
                item: "documents",
                category: None,
                withheld: Withheld::default(),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        // Refused (nothing could be shown): the same answer as an empty record (AC-8).
        if filter.first_view {
            let id = |i: usize| record.heads.get(i).map(|r| r.id);
            visible.sort_by(|a, b| b.1.cmp(&a.1).then(id(b.0).cmp(&id(a.0))));
        }
        let mut shown: Vec<usize> = visible.into_iter().map(|(i, _)| i).collect();
        let mut opened: Vec<OnceLock<Arc<DocumentMeta>>> = Vec::new();
        if let Some(text) = &filter.text {
            // The titles are in the sealed metadata: open what is left, keep what matches.
            let heads: Vec<&DocHead> = shown.iter().filter_map(|i| record.heads.get(*i)).collect();
            let metas = self.store.open_heads(holder, &record.metas, &heads).await?;
            let (kept, metas): (Vec<usize>, Vec<Arc<DocumentMeta>>) = shown
                .iter()
                .zip(metas)
                .filter_map(|(i, m)| m.filter(|m| m.title_matches(text)).map(|m| (*i, m)))
                .unzip();
            shown = kept;
            opened = metas.into_iter().map(OnceLock::from).collect();
        }
        opened.resize_with(shown.len(), OnceLock::new);
        Ok(DocumentSet {
            store: self.store.clone(),
            holder,
            record,
            shown,
            opened,
        })
    }

    /// Reads one document version and its content (download, preview). Traced; a denial and a
    /// missing document are the same `NotFound` (AC-8).
    pub async fn read_document(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        ctx: &Context,
    ) -> Result<(DocumentView, Bytes), StoreError> {
        let (row, _) = self
            .decide_on(holder, actor, id, Action::Read, format!("document/{id}"), ctx)
            .await?;
        let (_, content) = self.store.attachment(holder, row.attachment).await?;
        if crate::crypto::sha256_hex(&content) != row.meta.sha256 {
            return Err(StoreError::Integrity(
                "document content does not match its recorded hash".into(),
            ));
        }
        Ok((row.view(), content))
    }

    /// Reads one document version's metadata, without its content (a FHIR DocumentReference):
    /// decided and traced exactly as [`Gate::read_document`].
    pub async fn read_document_metadata(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        ctx: &Context,
    ) -> Result<DocumentView, StoreError> {
        let (row, _) = self
            .decide_on(holder, actor, id, Action::Read, format!("document/{id}"), ctx)
            .await?;
        Ok(row.view())
    }

    /// Every version of a document the caller may see (DM-3 history), newest first.
    pub async fn document_history(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        ctx: &Context,
    ) -> Result<Vec<DocumentView>, StoreError> {
        let (row, space) = self
            .decide_on(
                holder,
                actor,
                id,
                Action::Read,
                format!("document/{id}/history"),
                ctx,
            )
            .await?;
        let decider = self.decider(&space, actor, ctx);
        let now = decider.now();
        let record = self.store.document_rows(holder).await?;
        let heads: Vec<&DocHead> = record
            .heads
            .iter()
            .filter(|r| r.set_id == row.set_id)
            .filter(|r| decider.decide(Action::Read, &r.facts(now)).allowed)
            .collect();
        let metas = self.store.open_heads(holder, &record.metas, &heads).await?;
        Ok(heads
            .iter()
            .zip(metas)
            .filter_map(|(h, meta)| {
                meta.map(|meta| DocumentView {
                    id: h.id,
                    set_id: h.set_id,
                    status: h.status,
                    meta: (*meta).clone(),
                })
            })
            .collect())
    }

    /// Applies a change to a document, if the caller may make it (see [`DocumentChange`]).
    pub async fn change_document(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        change: DocumentChange,
        ctx: &Context,
    ) -> Result<Option<DocumentView>, StoreError> {
        let row = self
            .store
            .document_row(holder, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
        let now = self.store.now();
        let facts = row.meta.facts(now);
        let read = self.decide_in(&space, actor, Action::Read, &facts, ctx);
        let holder_itself = matches!(actor, Actor::Holder { .. });
        // Holder-side rights on any document they see (DM-4, DM-5, MI-2) are decided as a read
        // plus who they are; the author's rights (DM-3, DM-6) as an update or a deletion.
        let (action, d) = match &change {
            DocumentChange::Mask(_) | DocumentChange::RequestDeletion(_) if is_holder_side(actor) => {
                (Action::Update, read)
            }
            DocumentChange::HideFromRepresentatives(_) if holder_itself => (Action::Update, read),
            DocumentChange::AnswerDeletion(true) => (
                Action::Delete,
                self.decide_in(&space, actor, Action::Delete, &facts, ctx),
            ),
            DocumentChange::Mask(_) | DocumentChange::RequestDeletion(_) => {
                (Action::Update, deny_not_author())
            }
            _ if row.meta.author == Author::Holder => (Action::Update, deny_not_author()),
            _ => (
                Action::Update,
                self.decide_in(&space, actor, Action::Update, &facts, ctx),
            ),
        };
        self.record(
            Access {
                holder,
                actor,
                action,
                item: &format!("document/{id}"),
                category: Some(row.meta.class),
                withheld: withheld(&row.meta, self.store.now()),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        if !d.allowed || row.status == Status::Deprecated {
            return Err(StoreError::NotFound);
        }
        let mut meta = row.meta.clone();
        let mut status = row.status;
        let mut notice = None;
        match change {
            DocumentChange::Mask(m) => meta.masked = m,
            DocumentChange::HideFromRepresentatives(h) => meta.hidden_from_representatives = h,
            DocumentChange::MakeVisible => {
                if meta.visible_to_holder(now) {
                    return Ok(Some(row.view()));
                }
                meta.visible_from = now;
                notice = Some("new_document");
            }
            DocumentChange::Archive => status = Status::Archived,
            DocumentChange::Unarchive => status = Status::Approved,
            DocumentChange::RequestDeletion(reason) => {
                if row.meta.author == Author::Holder {
                    return Err(invalid(
                        "supprimez directement vos propres documents / delete your own documents directly",
                    ));
                }
                let reason = reason.trim().to_string();
                if reason.is_empty() || reason.chars().count() > 1000 {
                    return Err(invalid(
                        "un motif (1000 caractères au plus) est requis / a reason (at most 1000 characters) is required",
                    ));
                }
                meta.deletion_request = Some(DeletionRequest {
                    reason,
                    at: now,
                    accepted: None,
                });
                if let Author::Professional { id: rpps } = &row.meta.author {
                    self.store
                        .notify_professional(&rpps.0, "deletion_request", holder)
                        .await?;
                }
            }
            DocumentChange::AnswerDeletion(accept) => {
                if meta
                    .deletion_request
                    .as_ref()
                    .is_none_or(|r| r.accepted.is_some())
                {
                    return Err(invalid(
                        "aucune demande de suppression en attente / no pending deletion request",
                    ));
                }
                if accept {
                    self.store.delete_document(holder, &row).await?;
                    return Ok(None);
                }
                if let Some(r) = &mut meta.deletion_request {
                    r.accepted = Some(false);
                }
                notice = Some("deletion_refused");
            }
        }
        self.store
            .update_document(holder, &row, status, &meta, notice)
            .await?;
        Ok(Some(DocumentView {
            id: row.id,
            set_id: row.set_id,
            status,
            meta,
        }))
    }

    /// Deletes a document for everyone (its author, or the holder for what they added: DM-3,
    /// DM-4). The trace of the deletion remains.
    pub async fn delete_document(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        let (row, _) = self
            .decide_on(holder, actor, id, Action::Delete, format!("document/{id}"), ctx)
            .await?;
        self.store.delete_document(holder, &row).await
    }
}

fn deny_not_author() -> Decision {
    Decision {
        allowed: false,
        reason: carnet_domain::access::Reason::NotTheAuthor,
        emergency: false,
    }
}

/// The facts of "the record as a whole" (a listing with nothing to show).
pub(crate) fn record_facts() -> ItemFacts {
    ItemFacts {
        category: Category::Summaries,
        author: Author::Holder,
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    }
}

/// Whether a head passes the filter's criteria, its text aside (the title is in the sealed
/// metadata: [`Gate::document_set`] checks it on the opened rows).
fn matches(row: &DocHead, f: &DocumentFilter) -> bool {
    (f.include_history || row.status != Status::Deprecated)
        && f.class.is_none_or(|c| row.facts.category == c)
        && f.type_code
            .as_deref()
            .is_none_or(|t| row.type_code.as_deref() == Some(t))
        && f.author
            .as_ref()
            .is_none_or(|a| author_key(&row.facts.author) == *a)
        && f.from.is_none_or(|t| row.uploaded_at >= t)
        && f.to.is_none_or(|t| row.uploaded_at < t)
}
