//! The gate's storage side (SPEC AC-3..8): the authorisation directory of each space (sealed,
//! compare-and-set), the access traces (a hash chain per holder over sealed entries), and
//! [`Gate::check`], which decides with the domain policy, traces and notifies in one place.
//!
//! Trace hash: `sha256(prev | holder | seq | at | allowed | emergency | sha256(sealed entry))`.
//! Hashing the *sealed* entry keeps the chain verifiable after crypto-shredding; editing,
//! removing or reordering any row breaks it (`carnet verify-traces`). Removing a chain's
//! newest rows is caught by the signed checkpoints (`checkpoint`).

use std::sync::Arc;

use carnet_domain::access::{
    AccessPolicy, Action, Actor, Author, Category, Context, Decision, HabilitationMatrix, ItemFacts, Reason,
    SpaceFacts, decide, traced_and_notified,
};
use carnet_domain::{HolderId, ItemKind, Timestamp};
use serde::{Deserialize, Serialize};
use sqlx::{AssertSqlSafe, Row};

use crate::crypto::{item_aad, sha256_hex};
use crate::db::is_unique_violation;
use crate::db::reader::{Arg, IntoValues, Read, Values, bind_all};
use crate::error::StoreError;
use crate::{Store, on_db, on_tx};

/// Holders per head query, rows per insert (8 parameters each): within both engines' limits.
const HEAD_CHUNK: usize = 200;
const INSERT_CHUNK: usize = 500;

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

/// seq, at, allowed, emergency, sealed entry, previous hash, hash.
type TraceRow = (i64, i64, i64, i64, Vec<u8>, String, String);

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

fn policy_aad(holder: HolderId) -> Vec<u8> {
    item_aad(holder, ItemKind::AccessPolicy, holder.as_bytes())
}

fn emergency_aad(holder: HolderId, rpps: &str) -> Vec<u8> {
    let mut id = [0u8; 16];
    let h = crate::crypto::sha256(rpps.as_bytes());
    id.copy_from_slice(&h[..16]);
    item_aad(holder, ItemKind::EmergencyReason, &id)
}

/// What the gate reads of a space before deciding.
#[derive(Clone, Debug)]
pub struct GateFacts {
    pub lifecycle: carnet_domain::Lifecycle,
    pub policy: AccessPolicy,
    /// The reason of the asking professional's emergency access still running (AC-5).
    pub emergency: Option<String>,
    /// An access notice already waits to be sent on every channel the holder chose (read in
    /// the same query, so that most accesses queue nothing and write nothing but the trace).
    pub notice_waiting: bool,
}

/// How long a declared emergency opens the record (AC-5, our choice).
pub const EMERGENCY_ACCESS_SECONDS: i64 = 4 * 3600;

fn trace_aad(holder: HolderId, seq: i64) -> Vec<u8> {
    let mut id = [0u8; 16];
    id[8..].copy_from_slice(&seq.to_be_bytes());
    item_aad(holder, ItemKind::Trace, &id)
}

/// One batch of traces to append: sealed bodies, keys, the order its chains are written in.
struct TraceBatch<'a> {
    items: &'a [(HolderId, TraceEntry)],
    bodies: Vec<Vec<u8>>,
    keys: std::collections::HashMap<HolderId, crate::crypto::SecretKey>,
    /// Item indexes sorted by holder: every batch writes the chains in the same order, so that
    /// two servers' batches wait for each other instead of deadlocking (PostgreSQL row locks).
    order: Vec<usize>,
    /// The batch's holders, sorted, once each.
    holders: Vec<HolderId>,
}

/// A batch chained on the heads read in its transaction.
struct Chained {
    rows: Vec<NewTrace>,
    seqs: Vec<i64>,
    moved: Vec<(HolderId, i64)>,
    /// The batch's chains' new heads, for [`HeadCache::learn`] once committed.
    heads: std::collections::HashMap<HolderId, (i64, String)>,
}

/// Decides items of one space for one actor ([`Gate::decider`]).
pub(crate) struct Decider<'a> {
    gate: &'a Gate,
    actor: &'a Actor,
    space: SpaceFacts,
    ctx: Context,
    now: Timestamp,
}

impl Decider<'_> {
    pub(crate) fn decide(&self, action: Action, facts: &ItemFacts) -> Decision {
        decide(
            self.actor,
            action,
            facts,
            &self.space,
            &self.gate.matrix,
            &self.ctx,
            self.now,
        )
    }

    /// The instant every item is decided at.
    pub(crate) fn now(&self) -> Timestamp {
        self.now
    }
}

/// Chains kept in [`HeadCache`] at most; past that it starts again empty.
const HEAD_CACHE_MAX: usize = 65_536;

/// The newest entry `(seq, hash)` of the chains this server appended to lately, so that a
/// batch need not read them back (an index probe and a table row per chain, in the appender's
/// transaction). Only a hint, never trusted for integrity: if another server or process moved
/// a chain since, the batch's insert of `(holder, seq)` collides with the row it wrote, the
/// batch is undone, those chains are forgotten and the batch starts again from the heads in
/// the database. Learned only after a commit succeeded.
#[derive(Debug, Default)]
pub(crate) struct HeadCache(std::sync::Mutex<std::collections::HashMap<HolderId, (i64, String)>>);

impl HeadCache {
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<HolderId, (i64, String)>> {
        // A panic while holding it cannot leave a wrong head (one insert or removal at a time).
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The known heads among `holders`, and the holders whose head must be read.
    fn known(
        &self,
        holders: &[HolderId],
    ) -> (std::collections::HashMap<HolderId, (i64, String)>, Vec<HolderId>) {
        let cache = self.lock();
        let mut found = std::collections::HashMap::with_capacity(holders.len());
        let mut missing = Vec::new();
        for h in holders {
            match cache.get(h) {
                Some(head) => {
                    found.insert(*h, head.clone());
                }
                None => missing.push(*h),
            }
        }
        (found, missing)
    }

    fn learn(&self, heads: std::collections::HashMap<HolderId, (i64, String)>) {
        let mut cache = self.lock();
        if cache.len() + heads.len() > HEAD_CACHE_MAX {
            cache.clear();
        }
        cache.extend(heads);
    }

    pub(crate) fn forget(&self, holders: &[HolderId]) {
        let mut cache = self.lock();
        for h in holders {
            cache.remove(h);
        }
    }
}

struct NewTrace {
    holder: HolderId,
    seq: i64,
    allowed: i64,
    emergency: i64,
    sealed: Vec<u8>,
    prev: String,
    hash: String,
}

/// The newest entry of each of `n` chains: one index probe per chain, whatever its length.
fn heads_sql(n: usize) -> String {
    (1..=n)
        .map(|n| {
            format!(
                "SELECT * FROM (SELECT holder_id, seq, hash FROM traces WHERE holder_id = ${n} \
                 ORDER BY seq DESC LIMIT 1) AS h{n}"
            )
        })
        .collect::<Vec<_>>()
        .join(" UNION ALL ")
}

/// A multi-row insert of `n` traces (8 arguments each, [`NewTrace::args`]).
fn insert_sql(n: usize) -> String {
    let values: Vec<String> = (0..n)
        .map(|r| {
            let b = r * 8;
            format!(
                "(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                b + 1,
                b + 2,
                b + 3,
                b + 4,
                b + 5,
                b + 6,
                b + 7,
                b + 8
            )
        })
        .collect();
    format!(
        "INSERT INTO traces (holder_id, seq, at, allowed, emergency, entry_sealed, prev_hash, hash) VALUES {}",
        values.join(", ")
    )
}

impl NewTrace {
    fn args(&self, at: i64) -> [Arg<'_>; 8] {
        [
            Arg::Uuid(*self.holder.as_uuid()),
            Arg::Int(self.seq),
            Arg::Int(at),
            Arg::Int(self.allowed),
            Arg::Int(self.emergency),
            Arg::Blob(&self.sealed),
            Arg::Text(&self.prev),
            Arg::Text(&self.hash),
        ]
    }
}

impl<'a> TraceBatch<'a> {
    async fn new(store: &Store, items: &'a [(HolderId, TraceEntry)]) -> Result<Self, StoreError> {
        let mut keys = std::collections::HashMap::new();
        let mut bodies = Vec::with_capacity(items.len());
        for (holder, entry) in items {
            if !keys.contains_key(holder) {
                keys.insert(*holder, store.vault.get(*holder).await?);
            }
            bodies.push(serde_json::to_vec(entry).map_err(|e| StoreError::Integrity(e.to_string()))?);
        }
        let mut order: Vec<usize> = (0..items.len()).collect();
        order.sort_by_key(|&i| *items[i].0.as_uuid());
        let mut holders: Vec<HolderId> = order.iter().map(|&i| items[i].0).collect();
        holders.dedup();
        Ok(Self {
            items,
            bodies,
            keys,
            order,
            holders,
        })
    }

    fn head_args(chunk: &[HolderId]) -> Vec<Arg<'static>> {
        chunk.iter().map(|h| Arg::Uuid(*h.as_uuid())).collect()
    }

    /// The new rows, chained in order on `heads` (the chains' newest entries) and sealed.
    fn chain(
        &self,
        mut heads: std::collections::HashMap<HolderId, (i64, String)>,
        at: i64,
    ) -> Result<Chained, StoreError> {
        let mut rows = Vec::with_capacity(self.items.len());
        let mut seqs = vec![0; self.items.len()];
        for &i in &self.order {
            let ((holder, entry), bytes) = (&self.items[i], &self.bodies[i]);
            let (last_seq, prev) = heads.get(holder).cloned().unwrap_or((0, GENESIS.to_string()));
            let seq = last_seq + 1;
            let key = self.keys.get(holder).ok_or(StoreError::Conflict)?;
            let sealed = key.seal(&trace_aad(*holder, seq), bytes)?;
            let hash = chain_hash(&prev, *holder, seq, at, entry.allowed, entry.emergency, &sealed);
            heads.insert(*holder, (seq, hash.clone()));
            seqs[i] = seq;
            rows.push(NewTrace {
                holder: *holder,
                seq,
                allowed: i64::from(entry.allowed),
                emergency: i64::from(entry.emergency),
                sealed,
                prev,
                hash,
            });
        }
        // The next signed checkpoint covers these chains' new heads (AC-7).
        let mut moved: Vec<(HolderId, i64)> = heads.iter().map(|(h, (seq, _))| (*h, *seq)).collect();
        moved.sort_by_key(|(h, _)| *h.as_uuid());
        Ok(Chained {
            rows,
            seqs,
            moved,
            heads,
        })
    }

    fn heads_of(rows: Vec<Values>) -> Result<std::collections::HashMap<HolderId, (i64, String)>, StoreError> {
        let mut heads = std::collections::HashMap::new();
        for mut r in rows {
            heads.insert(HolderId::from_uuid(r.take(0)?), (r.take(1)?, r.take(2)?));
        }
        Ok(heads)
    }

    /// The batch in one transaction through sqlx (PostgreSQL; SQLite outside the appender).
    /// `None` if another server appended to one of the chains first.
    async fn write_with(
        &self,
        db: &crate::db::Db,
        cache: &HeadCache,
        at: i64,
    ) -> Result<Option<Chained>, StoreError> {
        let mut tx = db.begin().await?;
        let (mut known, missing) = cache.known(&self.holders);
        let mut found = Vec::new();
        for chunk in missing.chunks(HEAD_CHUNK) {
            let args = Self::head_args(chunk);
            let rows =
                on_tx!(&mut tx, t => bind_all!(sqlx::query(AssertSqlSafe(heads_sql(chunk.len()))), &args)
                .fetch_all(&mut **t).await
                .and_then(|rs| rs.iter().map(IntoValues::values).collect::<Result<Vec<_>, _>>()))
                .map_err(StoreError::db("read trace heads"))?;
            found.extend(rows);
        }
        known.extend(Self::heads_of(found)?);
        let chained = self.chain(known, at)?;
        for chunk in chained.rows.chunks(INSERT_CHUNK) {
            let args: Vec<Arg<'_>> = chunk.iter().flat_map(|r| r.args(at)).collect();
            let r = on_tx!(&mut tx, t => bind_all!(sqlx::query(AssertSqlSafe(insert_sql(chunk.len()))), &args)
                .execute(&mut **t).await.map(|r| r.rows_affected()));
            match r {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => return Ok(None),
                Err(e) => return Err(StoreError::db("append trace")(e)),
            }
        }
        crate::checkpoint::mark_heads_moved(&mut tx, &chained.moved).await?;
        tx.commit().await?;
        Ok(Some(chained))
    }

    /// The batch on SQLite's writer handle, on this thread (`reader::with_writer`). Here a
    /// statement costs no round trip, so each row has its own small statement, prepared once
    /// per batch, where [`TraceBatch::write_with`] sends a few big ones (same tables, same
    /// values, same checks: a taken `(holder, seq)` means another server appended first).
    fn write_on(
        &self,
        c: &rusqlite::Connection,
        cache: &HeadCache,
        at: i64,
    ) -> Result<Option<Chained>, StoreError> {
        use crate::db::reader::{execute_on, is_sqlite_unique_violation, query_on, sqlite_error};
        c.execute_batch("BEGIN IMMEDIATE")
            .map_err(|e| sqlite_error("begin", e))?;
        let head = heads_sql(1);
        let (mut known, missing) = cache.known(&self.holders);
        let mut found = Vec::with_capacity(missing.len());
        for h in &missing {
            let rows = query_on(c, &head, &[Arg::Uuid(*h.as_uuid())], 1)
                .map_err(|e| sqlite_error("read trace heads", e))?;
            found.extend(rows);
        }
        known.extend(Self::heads_of(found)?);
        let chained = self.chain(known, at)?;
        let insert = insert_sql(1);
        for row in &chained.rows {
            match execute_on(c, &insert, &row.args(at)) {
                Ok(_) => {}
                Err(e) if is_sqlite_unique_violation(&e) => return Ok(None),
                Err(e) => return Err(sqlite_error("append trace", e)),
            }
        }
        let pending = crate::checkpoint::pending_sql(1);
        for (holder, seq) in &chained.moved {
            execute_on(c, &pending, &[Arg::Uuid(*holder.as_uuid()), Arg::Int(*seq)])
                .map_err(|e| sqlite_error("mark trace heads", e))?;
        }
        c.execute_batch("COMMIT")
            .map_err(|e| sqlite_error("commit traces", e))?;
        Ok(Some(chained))
    }
}

/// The gate's facts of a space ($1 holder, $2 the asking professional's RPPS or "", $3 now,
/// $4 a document id or the nil UUID) and that document's row, in one statement.
const GATE_FACTS: &str = concat!(
    "SELECT h.lifecycle, h.state_since, a.policy_sealed, \
     (SELECT e.reason_sealed FROM emergency_accesses e WHERE e.holder_id = h.id AND e.rpps = $2 \
      AND e.until_at > $3 ORDER BY e.until_at DESC LIMIT 1), \
     CAST(CASE WHEN (COALESCE(np.email, 1) = 0 OR EXISTS (SELECT 1 FROM outbox o WHERE o.holder_id = h.id \
                  AND o.kind = 'access' AND o.channel = 'email' AND o.sent_at IS NULL)) \
           AND (COALESCE(np.sms, 0) = 0 OR EXISTS (SELECT 1 FROM outbox o WHERE o.holder_id = h.id \
                  AND o.kind = 'access' AND o.channel = 'sms' AND o.sent_at IS NULL)) \
          THEN 1 ELSE 0 END AS BIGINT), \
     d.set_id, d.status, d.attachment_id, d.version, d.meta_sealed, \
     CAST(CASE WHEN EXISTS (SELECT 1 FROM representatives r WHERE r.holder_id = h.id \
                  AND r.representative_id = $5 AND ",
    current_representation!("$3"),
    ") \
          THEN 1 ELSE 0 END AS BIGINT) \
     FROM holders h LEFT JOIN access_policies a ON a.holder_id = h.id \
     LEFT JOIN notification_preferences np ON np.holder_id = h.id \
     LEFT JOIN documents d ON d.holder_id = h.id AND d.id = $4 WHERE h.id = $1"
);

impl Store {
    /// The holder's authorisation directory and its version (empty, version 0, if never set).
    pub(crate) async fn access_policy(&self, holder: HolderId) -> Result<(AccessPolicy, i64), StoreError> {
        let row = on_db!(&self.db, p => sqlx::query("SELECT policy_sealed, version FROM access_policies WHERE holder_id = $1")
            .bind(holder.as_uuid()).fetch_optional(p).await
            .map(|r| r.map(|r| (r.get::<Vec<u8>, _>(0), r.get::<i64, _>(1)))))
            .map_err(StoreError::db("read access policy"))?;
        let Some((sealed, version)) = row else {
            return Ok((AccessPolicy::default(), 0));
        };
        let key = self.vault.get(holder).await?;
        let policy = serde_json::from_slice(&key.open(&policy_aad(holder), &sealed)?)
            .map_err(|e| StoreError::Integrity(format!("access policy: {e}")))?;
        Ok((policy, version))
    }

    /// The lifecycle, the directory, for a professional their active emergency access (AC-5),
    /// for a representative whether they currently represent the holder (MI-1, MI-3), and
    /// optionally the raw row of one of the holder's documents (a read by id), in one query
    /// (the gate's hot path); `None` if there is no such space.
    pub(crate) async fn gate_facts_with(
        &self,
        holder: HolderId,
        actor: &Actor,
        document: Option<uuid::Uuid>,
    ) -> Result<(Option<GateFacts>, Option<RawDocument>), StoreError> {
        let rpps = match actor {
            Actor::Professional { id, .. } => id.0.as_str(),
            _ => "",
        };
        let representative = match actor {
            Actor::Representative { id } => *id.as_uuid(),
            _ => uuid::Uuid::nil(),
        };
        let now = self.now().as_micros();
        let row = self
            .db
            .read_one(
                Read::new(GATE_FACTS)
                    .uuid(*holder.as_uuid())
                    .text(rpps)
                    .int(now)
                    .uuid(document.unwrap_or(uuid::Uuid::nil()))
                    .uuid(representative),
                "read gate facts",
            )
            .await?;
        let row = match row {
            None => None,
            Some(mut r) => {
                let doc = match (
                    r.take::<Option<uuid::Uuid>>(5)?,
                    r.take::<Option<String>>(6)?,
                    r.take::<Option<uuid::Uuid>>(7)?,
                    r.take::<Option<i64>>(8)?,
                    r.take::<Option<Vec<u8>>>(9)?,
                ) {
                    (Some(set), Some(status), Some(att), Some(version), Some(sealed)) => {
                        Some((set, status, att, version, sealed))
                    }
                    _ => None,
                };
                Some((
                    (
                        r.take::<String>(0)?,
                        r.take::<i64>(1)?,
                        r.take::<Option<Vec<u8>>>(2)?,
                        r.take::<Option<Vec<u8>>>(3)?,
                        r.take::<i64>(4)?,
                    ),
                    doc,
                    r.take::<i64>(10)? != 0,
                ))
            }
        };
        let Some(((name, since, sealed, emergency, notice_waiting), doc, represents)) = row else {
            return Ok((None, None));
        };
        // S-1: who may act in this space at all is decided here, before anything is opened.
        if !carnet_domain::access::enters(actor, holder, represents) {
            return Ok((None, None));
        }
        let lifecycle = carnet_domain::Lifecycle::from_parts(&name, Timestamp::from_micros(since))
            .ok_or_else(|| StoreError::Integrity(format!("unknown lifecycle state {name}")))?;
        let key = if sealed.is_some() || emergency.is_some() {
            Some(self.vault.get(holder).await?)
        } else {
            None
        };
        let policy = match (sealed, &key) {
            (Some(sealed), Some(key)) => serde_json::from_slice(&key.open(&policy_aad(holder), &sealed)?)
                .map_err(|e| StoreError::Integrity(format!("access policy: {e}")))?,
            _ => AccessPolicy::default(),
        };
        let emergency = match (emergency, &key) {
            (Some(sealed), Some(key)) => Some(
                String::from_utf8(key.open(&emergency_aad(holder, rpps), &sealed)?)
                    .map_err(|e| StoreError::Integrity(format!("emergency reason: {e}")))?,
            ),
            _ => None,
        };
        Ok((
            Some(GateFacts {
                lifecycle,
                policy,
                emergency,
                notice_waiting: notice_waiting != 0,
            }),
            doc,
        ))
    }

    /// AC-5: records an emergency access of `rpps` to `holder`'s record until `until`.
    async fn open_emergency(
        &self,
        holder: HolderId,
        rpps: &str,
        reason: &str,
        until: Timestamp,
    ) -> Result<(), StoreError> {
        let key = self.vault.get(holder).await?;
        let sealed = key.seal(&emergency_aad(holder, rpps), reason.as_bytes())?;
        let mut tx = self.db.begin().await?;
        on_tx!(&mut tx, t => sqlx::query(
            "INSERT INTO emergency_accesses (holder_id, rpps, started_at, until_at, reason_sealed) VALUES ($1, $2, $3, $4, $5)")
            .bind(holder.as_uuid()).bind(rpps).bind(self.now().as_micros()).bind(until.as_micros()).bind(&sealed)
            .execute(&mut **t).await.map(|r| r.rows_affected()))
        .map_err(StoreError::db("record emergency access"))?;
        tx.commit().await
    }

    /// Changes the directory (AC-3): applied with compare-and-set, effective on the very next
    /// request (S-4: nothing caches it).
    pub(crate) async fn update_access_policy(
        &self,
        holder: HolderId,
        change: impl Fn(&mut AccessPolicy),
    ) -> Result<AccessPolicy, StoreError> {
        let key = self.vault.get(holder).await?;
        for _ in 0..5 {
            let (mut policy, version) = self.access_policy(holder).await?;
            change(&mut policy);
            let bytes = serde_json::to_vec(&policy).map_err(|e| StoreError::Integrity(e.to_string()))?;
            let sealed = key.seal(&policy_aad(holder), &bytes)?;
            let now = self.now().as_micros();
            let mut tx = self.db.begin().await?;
            let r = if version == 0 {
                on_tx!(&mut tx, t => sqlx::query("INSERT INTO access_policies (holder_id, policy_sealed, version, updated_at) VALUES ($1, $2, 1, $3)")
                    .bind(holder.as_uuid()).bind(&sealed).bind(now).execute(&mut **t).await.map(|r| r.rows_affected()))
            } else {
                on_tx!(&mut tx, t => sqlx::query("UPDATE access_policies SET policy_sealed = $1, version = version + 1, updated_at = $2 WHERE holder_id = $3 AND version = $4")
                    .bind(&sealed).bind(now).bind(holder.as_uuid()).bind(version).execute(&mut **t).await.map(|r| r.rows_affected()))
            };
            match r {
                Ok(1) => {
                    tx.commit().await?;
                    return Ok(policy);
                }
                Ok(_) => continue,
                Err(e) if is_unique_violation(&e) => continue,
                Err(e) => return Err(StoreError::db("write access policy")(e)),
            }
        }
        Err(StoreError::Conflict)
    }

    /// Appends a trace to the holder's chain; returns its sequence number.
    pub async fn append_trace(&self, holder: HolderId, entry: &TraceEntry) -> Result<i64, StoreError> {
        let seqs = self.append_traces(&[(holder, entry.clone())]).await?;
        seqs.first().copied().ok_or(StoreError::Conflict)
    }

    /// Appends several traces (of one or many holders) in one transaction: one durable commit
    /// for all (group commit). Returns their sequence numbers, in order. A concurrent append by
    /// another server makes the whole batch retry.
    pub async fn append_traces(&self, items: &[(HolderId, TraceEntry)]) -> Result<Vec<i64>, StoreError> {
        self.append_batch(items, false).await
    }

    /// [`Store::append_traces`] for the trace appender: on SQLite its statements run on the
    /// writer's handle on the appender's own thread (`db::spawn_pipeline`), without handing
    /// each one to sqlx's worker thread and waiting to be scheduled again (the same statements,
    /// `reader::with_writer`); elsewhere as [`Store::append_traces`].
    async fn append_batch(
        &self,
        items: &[(HolderId, TraceEntry)],
        inline: bool,
    ) -> Result<Vec<i64>, StoreError> {
        let batch = TraceBatch::new(self, items).await?;
        for _ in 0..10 {
            let at = self.now().as_micros();
            let heads = &self.trace_heads;
            let done = match (&self.db, inline) {
                (crate::db::Db::Sqlite { write, .. }, true) => {
                    crate::db::reader::with_writer(write, |c| batch.write_on(c, heads, at)).await
                }
                _ => batch.write_with(&self.db, heads, at).await,
            };
            let done = done.inspect_err(|_| heads.forget(&batch.holders))?;
            // `None`: another server appended to one of these chains meanwhile (or this
            // server's cached heads were stale); start again from the database's heads.
            let Some(mut chained) = done else {
                heads.forget(&batch.holders);
                continue;
            };
            heads.learn(std::mem::take(&mut chained.heads));
            for (h, _) in &chained.moved {
                // No receiver is fine: nobody is watching that space live.
                let _ = self.trace_events.send(*h);
            }
            return Ok(chained.seqs);
        }
        Err(StoreError::Conflict)
    }

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
            .read_all(
                Read::new(
                    "SELECT seq, at, entry_sealed FROM traces WHERE holder_id = $1 AND seq < $2 \
                     AND at >= $3 AND at < $4 ORDER BY seq DESC LIMIT $5",
                )
                .uuid(*holder.as_uuid())
                .int(before_seq.unwrap_or(i64::MAX))
                .int(from)
                .int(to)
                .int(limit),
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
        on_db!(&self.db, p => sqlx::query("SELECT COALESCE(MAX(seq), 0) FROM traces WHERE holder_id = $1")
            .bind(holder.as_uuid()).fetch_one(p).await.map(|r| r.get::<i64, _>(0)))
        .map_err(StoreError::db("read trace head"))
    }

    /// The holder's notices, newest first, before `before_seq` (paging); see `notices_after`.
    pub async fn notices_before(
        &self,
        holder: HolderId,
        before_seq: Option<i64>,
        limit: i64,
    ) -> Result<Vec<Trace>, StoreError> {
        let rows: Vec<(i64, i64, Vec<u8>)> = on_db!(&self.db, p => sqlx::query(
            "SELECT seq, at, entry_sealed FROM traces WHERE holder_id = $1 AND seq < $2 AND (allowed = 1 OR emergency = 1) \
             ORDER BY seq DESC LIMIT $3")
            .bind(holder.as_uuid()).bind(before_seq.unwrap_or(i64::MAX)).bind(limit).fetch_all(p).await
            .map(|rs| rs.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()))
            .map_err(StoreError::db("list notices"))?;
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
        let rows: Vec<(i64, i64, Vec<u8>)> = on_db!(&self.db, p => sqlx::query(
            "SELECT seq, at, entry_sealed FROM traces WHERE holder_id = $1 AND seq > $2 AND (allowed = 1 OR emergency = 1) \
             ORDER BY seq LIMIT $3")
            .bind(holder.as_uuid()).bind(after_seq).bind(limit).fetch_all(p).await
            .map(|rs| rs.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect()))
            .map_err(StoreError::db("list notices"))?;
        Ok(self
            .open_traces(holder, rows)
            .await?
            .into_iter()
            .filter(is_notice)
            .collect())
    }

    /// Checks every holder's chain: contiguous sequence from 1, each `prev_hash` equal to the
    /// previous `hash`, each `hash` recomputed from the row. Any edit, removal or reordering is
    /// reported. Then checks the signed checkpoints and that every chain still holds the
    /// heads they cover, which catches a truncated tail or a chain rewritten with fresh
    /// hashes (AC-7, S-5; see `checkpoint`).
    pub async fn verify_traces(&self) -> Result<TraceReport, StoreError> {
        let holders: Vec<uuid::Uuid> =
            on_db!(&self.db, p => sqlx::query("SELECT DISTINCT holder_id FROM traces ORDER BY holder_id")
            .fetch_all(p).await.map(|rs| rs.into_iter().map(|r| r.get::<uuid::Uuid, _>(0)).collect()))
            .map_err(StoreError::db("list traced holders"))?;
        let mut report = TraceReport::default();
        for h in holders {
            report.holders += 1;
            let holder = HolderId::from_uuid(h);
            let rows: Vec<TraceRow> = on_db!(&self.db, p => sqlx::query(
                "SELECT seq, at, allowed, emergency, entry_sealed, prev_hash, hash FROM traces WHERE holder_id = $1 ORDER BY seq")
                .bind(h).fetch_all(p).await
                .map(|rs| rs.into_iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4), r.get(5), r.get(6))).collect()))
                .map_err(StoreError::db("read traces"))?;
            let mut prev = GENESIS.to_string();
            for (i, (seq, at, allowed, emergency, sealed, prev_hash, hash)) in rows.into_iter().enumerate() {
                report.entries += 1;
                let expected_seq = i as i64 + 1;
                if seq != expected_seq {
                    report.problems.push(format!(
                        "holder {holder}: trace {expected_seq} is missing (found {seq})"
                    ));
                }
                if prev_hash != prev {
                    report.problems.push(format!(
                        "holder {holder}: trace {seq} does not follow the previous one"
                    ));
                }
                if chain_hash(&prev_hash, holder, seq, at, allowed != 0, emergency != 0, &sealed) != hash {
                    report
                        .problems
                        .push(format!("holder {holder}: trace {seq} was altered"));
                }
                prev = hash;
            }
        }
        self.verify_checkpoints(&mut report).await?;
        Ok(report)
    }
}

/// A document row as read with the gate's facts (set id, status, attachment, version, sealed
/// metadata), opened by `documents`.
pub(crate) type RawDocument = (uuid::Uuid, String, uuid::Uuid, i64, Vec<u8>);

/// A trace waiting for the next group commit, and who to tell when it is durable.
type Pending = (
    HolderId,
    TraceEntry,
    // `Err(None)`: the disk is full (507, not 503); `Err(Some(why))`: any other failure.
    tokio::sync::oneshot::Sender<Result<i64, Option<String>>>,
);

/// The one place that decides on access to holder data, traces it and notifies the holder.
#[derive(Clone, Debug)]
pub struct Gate {
    pub(crate) store: Store,
    matrix: Arc<HabilitationMatrix>,
    appender: tokio::sync::mpsc::Sender<Pending>,
}

impl Gate {
    /// Creates the gate and its trace appender (`db::spawn_pipeline`) which
    /// group-commits the traces of concurrent accesses: each caller still waits until its trace
    /// is durable, but one commit serves every access that arrived meanwhile.
    pub fn new(store: Store, matrix: HabilitationMatrix) -> Self {
        let (tx, mut rx) = tokio::sync::mpsc::channel::<Pending>(4096);
        let appender_store = store.clone();
        crate::db::spawn_pipeline(&store.db, "carnet-traces", async move {
            let checkpointer = match crate::db::AuditCheckpointer::open(&appender_store.db).await {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "the trace file is checkpointed by the writer");
                    None
                }
            };
            while let Some(first) = rx.recv().await {
                let mut batch = vec![first];
                while batch.len() < 512 {
                    match rx.try_recv() {
                        Ok(p) => batch.push(p),
                        Err(_) => break,
                    }
                }
                let items: Vec<(HolderId, TraceEntry)> =
                    batch.iter().map(|(h, e, _)| (*h, e.clone())).collect();
                match appender_store.append_batch(&items, true).await {
                    Ok(seqs) => {
                        for ((_, _, reply), seq) in batch.into_iter().zip(seqs) {
                            let _ = reply.send(Ok(seq));
                        }
                    }
                    Err(e) => {
                        let msg = (!matches!(e, StoreError::DiskFull)).then(|| e.to_string());
                        for (_, _, reply) in batch {
                            let _ = reply.send(Err(msg.clone()));
                        }
                    }
                }
                // After the callers were answered; the bulk of a copy runs beside the next
                // batches, on the checkpointer's thread.
                if let Some(c) = &checkpointer {
                    c.after_commit();
                }
            }
        });
        Self {
            store,
            matrix: Arc::new(matrix),
            appender: tx,
        }
    }

    /// Appends a trace through the group-commit appender; returns once it is durable.
    async fn trace(&self, holder: HolderId, entry: TraceEntry) -> Result<i64, StoreError> {
        let (reply, wait) = tokio::sync::oneshot::channel();
        self.appender
            .send((holder, entry, reply))
            .await
            .map_err(|_| StoreError::Integrity("the trace appender stopped".into()))?;
        match wait.await {
            Ok(Ok(seq)) => Ok(seq),
            Ok(Err(None)) => Err(StoreError::DiskFull),
            Ok(Err(Some(msg))) => Err(StoreError::TraceAppend(msg)),
            Err(_) => Err(StoreError::Integrity("the trace appender stopped".into())),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub(crate) fn matrix(&self) -> &HabilitationMatrix {
        &self.matrix
    }

    /// Decides whether `actor` may do `action` on `item` (described by `facts`) of `holder`'s
    /// space; traces every access by someone other than the holder and every denial (AC-6,
    /// AC-8); notifies the holder at once of accesses by professionals, establishments and apps,
    /// and of every emergency access (AC-5, AC-6), collapsing notices not yet sent.
    pub async fn check(
        &self,
        holder: HolderId,
        actor: &Actor,
        action: Action,
        item: &str,
        facts: &ItemFacts,
        ctx: &Context,
    ) -> Result<Decision, StoreError> {
        let Some(space) = self.space(holder, actor).await? else {
            return Ok(NO_SPACE);
        };
        let d = self.decide_in(&space, actor, action, facts, ctx);
        self.record(holder, actor, action, item, Some(facts.category), d, &space, ctx)
            .await?;
        Ok(d)
    }

    /// The facts of a space the gate decides on (`None`: no such space, or erased).
    pub(crate) async fn space(
        &self,
        holder: HolderId,
        actor: &Actor,
    ) -> Result<Option<GateFacts>, StoreError> {
        Ok(self.space_with(holder, actor, None).await?.0)
    }

    /// [`Gate::space`] and the raw row of one document of the space, in one round trip.
    pub(crate) async fn space_with(
        &self,
        holder: HolderId,
        actor: &Actor,
        document: Option<uuid::Uuid>,
    ) -> Result<(Option<GateFacts>, Option<RawDocument>), StoreError> {
        // Decided without a read where the actor alone says no (a holder in another's space,
        // an app outside the space that connected it); a representative's tie is read with
        // the space's facts (`Store::gate_facts_with`).
        if !carnet_domain::access::enters(actor, holder, true) {
            return Ok((None, None));
        }
        match self.store.gate_facts_with(holder, actor, document).await {
            Ok(f) => Ok(f),
            // An unknown or erased space is decided like an existing one that refuses (AC-8).
            Err(StoreError::Shredded(_)) => Ok((None, None)),
            Err(e) => Err(e),
        }
    }

    /// The pure decision (no trace): for one item of a listing whose access is traced once.
    pub(crate) fn decide_in(
        &self,
        space: &GateFacts,
        actor: &Actor,
        action: Action,
        facts: &ItemFacts,
        ctx: &Context,
    ) -> Decision {
        self.decider(space, actor, ctx).decide(action, facts)
    }

    /// [`Gate::decide_in`] for many items of one listing: the space's facts (grants, blocks)
    /// and the context are made once, and every item is decided at the same instant.
    pub(crate) fn decider<'a>(&'a self, space: &GateFacts, actor: &'a Actor, ctx: &Context) -> Decider<'a> {
        // A running emergency access (AC-5) stands for a reason stated with every request.
        let ctx = match (&ctx.emergency, &space.emergency) {
            (None, Some(reason)) => Context {
                emergency: Some(reason.clone()),
            },
            _ => ctx.clone(),
        };
        Decider {
            gate: self,
            actor,
            space: space.policy.facts(space.lifecycle),
            ctx,
            now: self.store.now(),
        }
    }

    /// Traces a decision (every access by someone other than the holder, and every denial:
    /// AC-6, AC-8) and notifies the holder (AC-6, AC-5). Returns once the trace is durable.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn record(
        &self,
        holder: HolderId,
        actor: &Actor,
        action: Action,
        item: &str,
        category: Option<Category>,
        d: Decision,
        space: &GateFacts,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        self.record_item(
            holder,
            actor,
            action,
            item,
            category,
            Withheld::default(),
            d,
            space,
            ctx,
        )
        .await
    }

    /// [`Gate::record`] for an item that may be kept from the legal representatives (MI-2) or,
    /// for now, from the holder (DM-6: then nobody is told of the access yet).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn record_item(
        &self,
        holder: HolderId,
        actor: &Actor,
        action: Action,
        item: &str,
        category: Option<Category>,
        withheld: Withheld,
        d: Decision,
        space: &GateFacts,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        self.trace_decision(holder, actor, action, item, category, withheld, d, space, ctx)
            .await?;
        let (_, notified) = traced_and_notified(actor);
        let told_now = withheld.from_holder_until.is_none();
        if d.allowed && d.emergency {
            self.store.notify_access(holder, true).await?;
        } else if d.allowed && notified && told_now && !space.notice_waiting {
            self.store.notify_access(holder, false).await?;
        }
        Ok(())
    }

    /// The trace part of [`Gate::record_item`], for an operation that tells the holder in its
    /// own words and in its own transaction (a new message, MS-4).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn trace_decision(
        &self,
        holder: HolderId,
        actor: &Actor,
        action: Action,
        item: &str,
        category: Option<Category>,
        withheld: Withheld,
        d: Decision,
        space: &GateFacts,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        let (traced, _) = traced_and_notified(actor);
        if (traced || !d.allowed) && !matches!(d.reason, Reason::NoSpace) {
            let entry = TraceEntry {
                actor: actor.clone(),
                action,
                item: item.to_string(),
                category,
                allowed: d.allowed,
                reason: d.reason,
                emergency: d.emergency,
                purpose: if d.emergency {
                    ctx.emergency.clone().or_else(|| space.emergency.clone())
                } else {
                    ctx.emergency.clone()
                },
                hidden_from_representatives: withheld.from_representatives,
                withheld_until: withheld.from_holder_until,
            };
            self.trace(holder, entry).await?;
        }
        Ok(())
    }

    /// AC-5, S-7: a professional who is not authorised declares an emergency, with a reason.
    /// If the policy allows it (not blocked, not everything hidden, habilitated), the record
    /// opens to them for [`EMERGENCY_ACCESS_SECONDS`]; the declaration is traced as an
    /// emergency and told at once to the holder and to the médecin traitant. Returns the
    /// decision and, when opened, the end of the access.
    pub async fn declare_emergency(
        &self,
        holder: HolderId,
        actor: &Actor,
        reason: &str,
    ) -> Result<(Decision, Option<Timestamp>), StoreError> {
        let Actor::Professional { id, .. } = actor else {
            return Ok((NO_SPACE, None));
        };
        let Some(space) = self.space(holder, actor).await? else {
            return Ok((NO_SPACE, None));
        };
        let ctx = Context {
            emergency: Some(reason.trim().to_string()),
        };
        // The declaration is decided as reading the record's summary under the emergency.
        let facts = ItemFacts {
            category: Category::Summaries,
            author: Author::Holder,
            masked: false,
            hidden_from_representatives: false,
            visible_to_holder: true,
        };
        let d = decide(
            actor,
            Action::Read,
            &facts,
            &space.policy.facts(space.lifecycle),
            &self.matrix,
            &ctx,
            self.store.now(),
        );
        let until = self.store.now().plus_seconds(EMERGENCY_ACCESS_SECONDS);
        if d.allowed && d.emergency {
            self.store
                .open_emergency(holder, &id.0, reason.trim(), until)
                .await?;
        }
        self.record(
            holder,
            actor,
            Action::Read,
            "record/emergency",
            None,
            d,
            &space,
            &ctx,
        )
        .await?;
        if d.allowed && d.emergency {
            if let Some(mt) = space.policy.medecin_traitant.as_ref().filter(|mt| *mt != id) {
                self.store
                    .notify_professional(&mt.0, "emergency_access", holder)
                    .await?;
            }
            return Ok((d, Some(until)));
        }
        Ok((d, None))
    }
}

impl Gate {
    /// AC-6, S-5: an operator opens one holder's administrative data (identity, contact) for
    /// a support action, with a stated reason; the access, or its refusal, is traced with that
    /// reason. `Ok(None)`: no such space (or erased), exactly like an unknown id.
    pub async fn operator_support_read(
        &self,
        holder: HolderId,
        operator: &str,
        reason: &str,
    ) -> Result<Option<crate::HolderRecord>, StoreError> {
        let actor = Actor::Operator {
            id: operator.to_string(),
        };
        let Some(space) = self.space(holder, &actor).await? else {
            return Ok(None);
        };
        let d = carnet_domain::access::decide_operator_support(&space.policy.facts(space.lifecycle), reason);
        if matches!(d.reason, Reason::NoSpace) {
            return Ok(None);
        }
        let entry = TraceEntry {
            actor,
            action: Action::Read,
            item: "administrative".into(),
            category: None,
            allowed: d.allowed,
            reason: d.reason,
            emergency: false,
            purpose: Some(reason.trim().to_string()).filter(|r| !r.is_empty()),
            hidden_from_representatives: false,
            withheld_until: None,
        };
        self.trace(holder, entry).await?;
        if !d.allowed {
            return Err(StoreError::Invalid(
                "a support access needs its reason (reason=…)".into(),
            ));
        }
        #[allow(clippy::disallowed_methods)] // decided and traced above (S-1, S-5)
        let record = self.store.holder(holder).await;
        match record {
            Ok(h) => Ok(Some(h)),
            Err(StoreError::NotFound | StoreError::Shredded(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Whether the holder is told of this trace (AC-6): allowed and by someone notified, or an
/// emergency.
pub fn is_notice(t: &Trace) -> bool {
    t.entry.emergency || (t.entry.allowed && traced_and_notified(&t.entry.actor).1)
}

const NO_SPACE: Decision = Decision {
    allowed: false,
    reason: Reason::NoSpace,
    emergency: false,
};

impl Store {
    /// Queues "someone accessed your space" (no content: AC-6, MS-4). Ordinary notices collapse
    /// while one is still waiting to be sent; emergency notices never do.
    pub(crate) async fn notify_access(&self, holder: HolderId, emergency: bool) -> Result<(), StoreError> {
        let kind = if emergency { "emergency_access" } else { "access" };
        // Most accesses find a notice already waiting on every channel: check on a reader
        // first, without taking the writer.
        if !emergency && self.notice_waiting_everywhere(holder, kind).await? {
            return Ok(());
        }
        let key = self.vault.get(holder).await?;
        let now = self.now();
        let mut tx = self.db.begin().await?;
        self.enqueue_notice_in_tx(&mut tx, &key, holder, kind, now, !emergency)
            .await?;
        tx.commit().await?;
        self.wake_delivery();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::datadir::{StoreSettings, open_store};
    use carnet_domain::SystemClock;

    /// The trace file's WAL is checkpointed by the trace appender, on its own connection,
    /// once a commit saw it reach `db::AUDIT_CHECKPOINT_FRAMES` (64 frames in this crate's
    /// tests; the writer's own checkpoint is out of reach here): 300 commits of one trace
    /// each (~2 pages each) leave a WAL of a few dozen frames, not of 600, and every trace
    /// is there and chained (S-30, AC-7).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_trace_appender_checkpoints_the_trace_file_s30() {
        let dir = tempfile::tempdir().unwrap();
        let store = open_store(&StoreSettings::new(dir.path()), Arc::new(SystemClock))
            .await
            .unwrap();
        let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
        let holders = [
            store.create_holder("activated", b"{}").await.unwrap(),
            store.create_holder("activated", b"{}").await.unwrap(),
        ];
        let entry = |n: usize| TraceEntry {
            actor: Actor::Operator {
                id: format!("op-{n}"),
            },
            action: Action::Read,
            item: format!("record/{n}"),
            category: None,
            allowed: true,
            reason: Reason::Regulation,
            emergency: false,
            purpose: None,
            hidden_from_representatives: false,
            withheld_until: None,
        };
        for n in 0..300 {
            // One at a time: each waits for its own commit.
            let seq = gate.trace(holders[n % 2], entry(n)).await.unwrap();
            assert_eq!(seq, (n / 2) as i64 + 1);
        }
        let frame = 4096 + 24;
        let wal = std::fs::metadata(dir.path().join("carnet-audit.db-wal"))
            .unwrap()
            .len();
        assert!(
            wal < 200 * frame,
            "the trace file's WAL holds {} frames",
            wal / frame
        );
        let report = store.verify_traces().await.unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        for h in holders {
            assert_eq!(store.traces_of(h, None, 1000).await.unwrap().len(), 150);
        }
    }
}
