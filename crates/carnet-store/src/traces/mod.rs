//! The access traces (SPEC AC-6..8, SECURITY S-5): a hash chain per holder over sealed
//! entries, appended in group commits ([`append`]), anchored by signed Merkle checkpoints
//! ([`checkpoint`]) and checked end to end by [`verify`] (`carnet verify-traces`).
//!
//! Trace hash: `sha256(prev | holder | seq | at | allowed | emergency | sha256(sealed entry))`.
//! Hashing the *sealed* entry keeps the chain verifiable after crypto-shredding; editing,
//! removing or reordering any row breaks it. Removing a chain's newest rows is caught by the
//! signed checkpoints.
//!
//! Invariant: traces are only ever appended, by the appender; none is updated, and a chain
//! is removed only with its holder's erasure (LC-7), which the checkpoints then accept.

pub(crate) mod append;
pub mod checkpoint;
mod verify;

use carnet_domain::access::{Action, Actor, Category, Reason, traced_and_notified};
use carnet_domain::{HolderId, ItemKind, Timestamp};
use serde::{Deserialize, Serialize};

use crate::Store;
use crate::crypto::{item_aad, sha256_hex};
use crate::db::query::Query;
use crate::error::StoreError;

pub(crate) use append::{HeadCache, Pending, spawn_appender};

const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// What a trace says (sealed in the row).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceEntry {
    pub actor: Actor,
    pub action: Action,
    /// Which item, e.g. `document/0190…` (never its content).
    pub item: String,
    pub category: Option<Category>,
    pub allowed: bool,
    pub reason: Reason,
    pub emergency: bool,
    /// The emergency's stated reason (AC-5).
    pub purpose: Option<String>,
    /// MI-2: the item is hidden from the legal representatives, so is this trace of it (in the
    /// history, the notices and the FHIR AuditEvents a representative reads).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub hidden_from_representatives: bool,
    /// DM-6: the item is kept from the holder until the announcement consultation; so is this
    /// trace of it, until this instant (when the document shows on its own), and nobody is
    /// told of it meanwhile (the "a document awaits you" notice comes within 2 weeks).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withheld_until: Option<Timestamp>,
}

/// Whom a trace's item is kept from (MI-2, DM-6), as the trace records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Withheld {
    /// MI-2: hidden from the legal representatives.
    pub from_representatives: bool,
    /// DM-6: kept from the holder until this instant.
    pub from_holder_until: Option<Timestamp>,
}

impl TraceEntry {
    /// AC-6, MI-2, DM-6: whether someone reading the space's history sees this trace at `now`:
    /// the holder sees every trace but those of an item still kept from them; a legal
    /// representative, also none of an item hidden from representatives.
    pub fn shown_to(&self, representative: bool, now: Timestamp) -> bool {
        !(representative && self.hidden_from_representatives) && self.withheld_until.is_none_or(|u| now >= u)
    }
}

/// A trace as read back, with its place in the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    pub seq: i64,
    pub at: Timestamp,
    pub entry: TraceEntry,
}

/// What `verify_traces` found.
#[derive(Clone, Debug, Default)]
pub struct TraceReport {
    pub holders: u64,
    pub entries: u64,
    /// Signed checkpoints checked (`checkpoint`).
    pub checkpoints: u64,
    pub problems: Vec<String>,
}

fn chain_hash(
    prev: &str,
    holder: HolderId,
    seq: i64,
    at: i64,
    allowed: bool,
    emergency: bool,
    sealed: &[u8],
) -> String {
    sha256_hex(
        format!(
            "{prev}|{holder}|{seq}|{at}|{}|{}|{}",
            u8::from(allowed),
            u8::from(emergency),
            sha256_hex(sealed)
        )
        .as_bytes(),
    )
}

fn trace_aad(holder: HolderId, seq: i64) -> Vec<u8> {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&seq.to_be_bytes());
    item_aad(holder, ItemKind::Trace, &id)
}

impl Store {
    /// The holder's traces, newest first, before `before_seq` (paging), at most `limit`.
    pub async fn traces_of(
        &self,
        holder: HolderId,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Trace>, StoreError> {
        self.traces_in(holder, before_seq, None, limit).await
    }

    /// The holder's traces, newest first, before `before_seq` (paging), made within `period`
    /// (from inclusive, to exclusive) when given, at most `limit`. The primary key (holder,
    /// seq) serves every page, however long the chain.
    pub async fn traces_in(
        &self,
        holder: HolderId,
        before_seq: Option<i64>,
        period: Option<(Timestamp, Timestamp)>,
        limit: i64,
    ) -> Result<Vec<Trace>, StoreError> {
        let (from, to) = period.map_or((i64::MIN, i64::MAX), |(f, t)| (f.as_micros(), t.as_micros()));
        let rows = self
            .db
            .fetch_all(
                Query::new(
                    "SELECT seq, at, entry_sealed FROM traces WHERE holder_id = $1 AND seq < $2 AND at >= $3 \
                     AND at < $4 ORDER BY seq DESC LIMIT $5",
                )
                .bind(*holder.as_uuid())
                .bind(before_seq.unwrap_or(i64::MAX))
                .bind(from)
                .bind(to)
                .bind(limit),
                "list traces",
            )
            .await?
            .into_iter()
            .map(|mut r| Ok((r.take(0)?, r.take(1)?, r.take(2)?)))
            .collect::<Result<Vec<(i64, i64, Vec<u8>)>, StoreError>>()?;
        self.open_traces(holder, rows).await
    }

    async fn open_traces(
        &self,
        holder: HolderId,
        rows: Vec<(i64, i64, Vec<u8>)>,
    ) -> Result<Vec<Trace>, StoreError> {
        let key = self.vault.get(holder).await?.opener();
        rows.into_iter()
            .map(|(seq, at, sealed)| {
                let entry = serde_json::from_slice(&key.open(&trace_aad(holder, seq), &sealed)?)
                    .map_err(|e| StoreError::Integrity(format!("trace: {e}")))?;
                Ok(Trace {
                    seq,
                    at: Timestamp::from_micros(at),
                    entry,
                })
            })
            .collect()
    }

    /// The sequence number of the newest trace of the holder (0 for none).
    pub async fn trace_head(&self, holder: HolderId) -> Result<i64, StoreError> {
        self.db
            .fetch_one(
                Query::new("SELECT COALESCE(MAX(seq), 0) FROM traces WHERE holder_id = $1")
                    .bind(holder.as_uuid()),
                "read trace head",
            )
            .await
            .and_then(|mut r| r.take::<i64>(0))
    }

    /// The holder's notices, newest first, before `before_seq` (paging); see `notices_after`.
    pub async fn notices_before(
        &self,
        holder: HolderId,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Trace>, StoreError> {
        let rows: Vec<(i64, i64, Vec<u8>)> = self
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT seq, at, entry_sealed FROM traces WHERE holder_id = $1 AND seq < $2 AND (allowed \
                     = 1 OR emergency = 1) ORDER BY seq DESC LIMIT $3",
                )
                .binds((holder.as_uuid(), before_seq.unwrap_or(i64::MAX), limit)),
                "list notices",
            )
            .await?;
        Ok(self
            .open_traces(holder, rows)
            .await?
            .into_iter()
            .filter(is_notice)
            .collect())
    }

    /// What the holder is told of (AC-6, AC-5, DM-7), oldest first, after `after_seq`: allowed
    /// accesses by professionals, establishments and apps (a deposit is a new document) and
    /// every emergency access. Derived from the traces, so a notice can never be missing for
    /// a traced access, and nothing more is written on the access path.
    pub async fn notices_after(
        &self,
        holder: HolderId,
        after_seq: i64,
        limit: i64,
    ) -> Result<Vec<Trace>, StoreError> {
        let rows: Vec<(i64, i64, Vec<u8>)> = self
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT seq, at, entry_sealed FROM traces WHERE holder_id = $1 AND seq > $2 AND (allowed \
                     = 1 OR emergency = 1) ORDER BY seq LIMIT $3",
                )
                .binds((holder.as_uuid(), after_seq, limit)),
                "list notices",
            )
            .await?;
        Ok(self
            .open_traces(holder, rows)
            .await?
            .into_iter()
            .filter(is_notice)
            .collect())
    }
}

/// Whether the holder is told of this trace (AC-6): allowed and by someone notified, or an
/// emergency.
pub fn is_notice(t: &Trace) -> bool {
    t.entry.emergency || (t.entry.allowed && traced_and_notified(&t.entry.actor).1)
}
