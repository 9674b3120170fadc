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

use carnet_domain::access::{Actor, Author, Category, Decision, ItemFacts};
use carnet_domain::document::{DocumentMeta, Status};
use carnet_domain::{AttachmentId, DocumentId, HolderId, ItemKind, Lifecycle, Timestamp};
use serde::Serialize;

use crate::crypto::{SecretKey, item_aad};
use crate::documents::cache::DocRecord;
use crate::error::StoreError;
use crate::traces::Withheld;
use crate::{BlobHash, Store};

mod read;
mod rows;
mod write;

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
    /// DM-1's XDS metadata an IHE MHD Document Source sent, kept as sent.
    pub xds: carnet_domain::document::XdsMeta,
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

/// Where a new version's rows go and what they replace (crate-private): one value for the
/// write's two halves ([`Store::stage_document`], [`Store::commit_document`]) and its rows.
#[derive(Clone, Copy)]
struct NewVersion<'a> {
    holder: HolderId,
    id: DocumentId,
    set_id: DocumentId,
    meta: &'a DocumentMeta,
    /// DM-3: the version it replaces (deprecated in the same commit, compare-and-set).
    replaces: Option<&'a DocRow>,
    /// DM-6: when the holder is to be told of a document kept from them for now.
    notice_due_at: Option<Timestamp>,
    /// LC-8: a document of the former DMP.
    legacy: Option<&'a LegacyWrite<'a>>,
}

/// A version's content and metadata as sealed for their rows.
#[derive(Clone, Copy)]
struct SealedVersion<'a> {
    attachment: AttachmentId,
    hash: &'a BlobHash,
    sealed_size: i64,
    sealed_att_meta: &'a [u8],
    sealed_meta: &'a [u8],
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
            format: carnet_domain::document::Format::Text,
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
            xds: Default::default(),
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
        Actor::Operator { .. } | Actor::Carer { .. } => None,
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

/// A document row as read, its metadata still sealed: with the gate's facts (a read by id,
/// `Gate::space_with`) or alone.
pub(crate) struct RawDocument {
    pub(crate) set_id: uuid::Uuid,
    pub(crate) status: String,
    pub(crate) attachment: uuid::Uuid,
    pub(crate) version: i64,
    pub(crate) meta_sealed: Vec<u8>,
}

impl RawDocument {
    /// The row of document `id` of `holder`, its metadata opened with the holder's key.
    fn open(
        self,
        key: &crate::crypto::Opener,
        holder: HolderId,
        id: DocumentId,
    ) -> Result<DocRow, StoreError> {
        let meta = open_meta(key, holder, id, &self.meta_sealed)?;
        let status = Status::parse(&self.status)
            .ok_or_else(|| StoreError::Integrity(format!("unknown document status {}", self.status)))?;
        Ok(DocRow {
            id,
            set_id: DocumentId::from_uuid(self.set_id),
            status,
            attachment: AttachmentId::from_uuid(self.attachment),
            version: self.version,
            meta,
        })
    }

    /// The five columns `set_id, status, attachment_id, version, meta_sealed` from `first` on.
    fn take(r: &mut crate::db::query::Values, first: usize) -> Result<Self, StoreError> {
        Ok(Self {
            set_id: r.take(first)?,
            status: r.take(first + 1)?,
            attachment: r.take(first + 2)?,
            version: r.take(first + 3)?,
            meta_sealed: r.take(first + 4)?,
        })
    }
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
