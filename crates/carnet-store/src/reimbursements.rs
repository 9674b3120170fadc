//! Reimbursements (SPEC RB-1, RB-2) through the gate. The insurer's feed files lines in the
//! holders' spaces ([`Gate::import_reimbursements`], decided by
//! [`carnet_domain::access::decide_insurer_feed`] and traced as the operator
//! [`insurer_feed_actor`]); the holder, their representative and professionals read them only
//! through [`Gate::list_reimbursements`] / [`Gate::reimbursement`], decided by the access policy
//! on the category `reimbursements` of the habilitation matrix (AC-1), traced (AC-6) and, for
//! professionals, notified. A denial is `NotFound` (AC-8).
//!
//! Rows are sealed with the holder's key; in clear only the holder, the row id, the date of
//! care and an HMAC of the insurer's line id under the holder's key, unique per holder, which
//! makes a re-import of the same feed add nothing (see migration 17).
//!
//! An import is fast by construction: one blind-index query per 500 INS, one gate read and one
//! vault key per holder, the traces of every holder in one group commit, and the rows in one
//! transaction of multi-row inserts.

use std::collections::{HashMap, HashSet};

use carnet_domain::access::{
    AccessPolicy, Action, Actor, Author, Category, Context, Decision, ItemFacts, Reason, decide_insurer_feed,
    insurer_feed_actor,
};
use carnet_domain::reimbursement::{FeedLine, Filter, ReimbursementLine};
use carnet_domain::{HolderId, ItemKind, Lifecycle, Timestamp};
use serde::{Deserialize, Serialize};

use time::Date;
use uuid::Uuid;

use crate::crypto::{SecretKey, item_aad};
use crate::db::query::Query;
use crate::error::StoreError;
use crate::gate::{Access, Gate};
use crate::traces::TraceEntry;
use crate::traces::Withheld;

/// Rows per multi-row insert (6 parameters each) and values per `IN` list: within both
/// engines' parameter limits.
const CHUNK: usize = 500;

/// A reimbursement line as stored and shown.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reimbursement {
    pub id: Uuid,
    #[serde(flatten)]
    pub line: ReimbursementLine,
    pub imported_at: Timestamp,
}

/// What an import of (a batch of) the feed did. Every line is counted once: imported, already
/// present (an earlier import, or an earlier line of the same feed, had its line id), or
/// rejected with its line number and reason.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FeedReport {
    pub imported: u64,
    pub present: u64,
    pub rejected: Vec<(u64, String)>,
    /// Spaces that received at least one new line.
    pub holders: u64,
}

/// Why a line of the feed did not go to a space (the insurer reads it in the rejects file).
pub const NO_SPACE: &str = "ins: no space has this INS";
pub const NOT_RECEIVING: &str =
    "ins: the holder objected, or the space is closed or erased: nothing imported (RB-1)";

fn line_aad(holder: HolderId, id: Uuid) -> Vec<u8> {
    item_aad(holder, ItemKind::Reimbursement, id.as_bytes())
}

/// The per-holder idempotency tag of an insurer's line id.
fn line_tag(key: &SecretKey, line_id: &str) -> String {
    key.hmac_hex(format!("carnet/reimbursement-line/v1|{line_id}").as_bytes())[..32].to_string()
}

/// Midnight UTC of a date, in microseconds (how the date of care is stored).
fn day_micros(d: Date) -> i64 {
    Timestamp::from_offset_date_time(d.midnight().assume_utc()).as_micros()
}

/// What the policy decides a reading on: the whole category, one decision for the listing.
fn read_facts() -> ItemFacts {
    ItemFacts {
        category: Category::Reimbursements,
        // The insurer's lines have no author among the policy's; nobody may change them.
        author: Author::Holder,
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    }
}

fn trace_entry(item: String, d: Decision) -> TraceEntry {
    TraceEntry {
        actor: insurer_feed_actor(),
        action: Action::Create,
        item,
        category: Some(Category::Reimbursements),
        allowed: d.allowed,
        reason: d.reason,
        emergency: false,
        purpose: None,
        hidden_from_representatives: false,
        withheld_until: None,
    }
}

/// A sealed row ready to insert: holder, id, tag, date of care, sealed line.
type Row6 = (HolderId, Uuid, String, i64, Vec<u8>);

impl Gate {
    /// RB-1: files validated lines of the insurer's feed (each with its line number in the
    /// file) in their holders' spaces. Per space, one decision by
    /// [`decide_insurer_feed`] (informed, open or activated spaces receive; others are
    /// reported as rejects and their denial traced), one trace of the lines it receives (AC-6,
    /// not notified: the insurer is an operator); lines whose INS has no space are rejected.
    /// A line whose id this space already holds is counted `present` and changes nothing, so
    /// importing a feed again adds nothing (no row, no trace). Every trace is durable before
    /// a row is written; the rows go in one transaction that first checks, under a row lock,
    /// that no space changed state since the decision (otherwise `Conflict`, nothing written).
    pub async fn import_reimbursements(&self, lines: Vec<(u64, FeedLine)>) -> Result<FeedReport, StoreError> {
        let mut report = FeedReport::default();
        if lines.is_empty() {
            return Ok(report);
        }
        let store = &self.store;
        // 1. INS -> space, by blind index, in chunks.
        let mut index_of: HashMap<String, String> = HashMap::new();
        for (_, l) in &lines {
            if !index_of.contains_key(l.ins.as_str()) {
                index_of.insert(l.ins.as_str().to_string(), store.ins_index(&l.ins).await?);
            }
        }
        let indexes: Vec<&String> = index_of.values().collect();
        let mut holder_of_index: HashMap<String, HolderId> = HashMap::new();
        for chunk in indexes.chunks(CHUNK) {
            let q = Query::any_of(
                store.db.engine(),
                "SELECT ins_index, id FROM holders WHERE ins_index {in}",
                chunk.iter().copied(),
            );
            for mut r in store.db.fetch_all(q, "find holders by INS").await? {
                holder_of_index.insert(r.take(0)?, HolderId::from_uuid(r.take(1)?));
            }
        }
        // 2. Lines by space, in the order spaces first appear.
        let mut order: Vec<HolderId> = Vec::new();
        let mut by_holder: HashMap<HolderId, Vec<(u64, ReimbursementLine)>> = HashMap::new();
        for (n, l) in lines {
            let holder = index_of
                .get(l.ins.as_str())
                .and_then(|i| holder_of_index.get(i))
                .copied();
            let Some(holder) = holder else {
                report.rejected.push((n, NO_SPACE.into()));
                continue;
            };
            by_holder
                .entry(holder)
                .or_insert_with(|| {
                    order.push(holder);
                    Vec::new()
                })
                .push((n, l.line));
        }
        // 3. One decision and one key per space, read in bulk (round trips dominate on
        // PostgreSQL: the decision needs only the lifecycle); then tags, and duplicates within
        // the feed.
        let lifecycles = store.lifecycles(&order).await?;
        let decisions: Vec<(HolderId, Option<Lifecycle>, Decision)> = order
            .iter()
            .map(|h| {
                let lc = lifecycles.get(h).copied();
                let d = match lc {
                    Some(lc) => decide_insurer_feed(&AccessPolicy::default().facts(lc)),
                    None => Decision {
                        allowed: false,
                        reason: Reason::NoSpace,
                        emergency: false,
                    },
                };
                (*h, lc, d)
            })
            .collect();
        let allowed_holders: Vec<HolderId> = decisions
            .iter()
            .filter(|(_, _, d)| d.allowed)
            .map(|(h, _, _)| *h)
            .collect();
        let mut fetched_keys = store.vault.get_many(&allowed_holders).await?;
        let fetched: Vec<(HolderId, Option<Lifecycle>, Decision, Option<SecretKey>)> = decisions
            .into_iter()
            .map(|(h, lc, d)| (h, lc, d, if d.allowed { fetched_keys.remove(&h) } else { None }))
            .collect();
        let mut traces: Vec<(HolderId, TraceEntry)> = Vec::new();
        let mut candidates: Vec<(HolderId, String, u64, ReimbursementLine)> = Vec::new();
        let mut keys: HashMap<HolderId, SecretKey> = HashMap::new();
        let mut decided: Vec<(HolderId, &'static str)> = Vec::new();
        for (holder, space, d, key) in fetched {
            let Some(mut held) = by_holder.remove(&holder) else {
                continue;
            };
            let (Some(space), Some(key)) = (space, key) else {
                if !matches!(d.reason, Reason::NoSpace) {
                    traces.push((holder, trace_entry("reimbursements".into(), d)));
                }
                report
                    .rejected
                    .extend(held.drain(..).map(|(n, _)| (n, NOT_RECEIVING.to_string())));
                continue;
            };
            decided.push((holder, space.name()));
            let mut seen = HashSet::new();
            for (n, l) in held {
                let tag = line_tag(&key, &l.line_id);
                if seen.insert(tag.clone()) {
                    candidates.push((holder, tag, n, l));
                } else {
                    report.present += 1;
                }
            }
            keys.insert(holder, key);
        }
        // 4. What the spaces already hold.
        let mut existing: HashSet<(HolderId, String)> = HashSet::new();
        let tags: Vec<&str> = candidates.iter().map(|(_, t, _, _)| t.as_str()).collect();
        for chunk in tags.chunks(CHUNK) {
            let q = Query::any_of(
                store.db.engine(),
                "SELECT holder_id, line_tag FROM reimbursements WHERE line_tag {in}",
                chunk.iter().copied(),
            );
            for mut r in store.db.writer().fetch_all(q, "read reimbursement tags").await? {
                existing.insert((HolderId::from_uuid(r.take(0)?), r.take(1)?));
            }
        }
        let now = store.now();
        let mut rows: Vec<Row6> = Vec::new();
        let mut new_per_holder: HashMap<HolderId, u64> = HashMap::new();
        for (holder, tag, _, l) in candidates {
            if existing.contains(&(holder, tag.clone())) {
                report.present += 1;
                continue;
            }
            let key = keys.get(&holder).ok_or(StoreError::Conflict)?;
            let id = carnet_domain::id::new_v7(now);
            let bytes = serde_json::to_vec(&l).map_err(|e| StoreError::Integrity(e.to_string()))?;
            let sealed = key.seal_owned(&line_aad(holder, id), bytes)?;
            rows.push((holder, id, tag, day_micros(l.date_of_care), sealed));
            *new_per_holder.entry(holder).or_default() += 1;
        }
        // 5. The traces (allowed writes and denials), durable before any row (AC-6).
        let allowed = Decision {
            allowed: true,
            reason: Reason::InsurerFeed,
            emergency: false,
        };
        for (holder, _) in &decided {
            if let Some(n) = new_per_holder.get(holder) {
                traces.push((*holder, trace_entry(format!("reimbursements/{n}"), allowed)));
            }
        }
        if !traces.is_empty() {
            store.append_traces(&traces).await?;
        }
        if rows.is_empty() {
            return Ok(report);
        }
        // 6. The rows, in one transaction, if no receiving space changed state meanwhile.
        let receiving: Vec<(HolderId, &'static str)> = decided
            .into_iter()
            .filter(|(h, _)| new_per_holder.contains_key(h))
            .collect();
        let mut tx = store.db.begin().await?;
        for chunk in receiving.chunks(CHUNK) {
            // A no-op update: takes the rows' locks (PostgreSQL) so an opposition or erasure
            // waits for this transaction, and counts the spaces still in the decided state.
            let mut sql = String::from("UPDATE holders SET updated_at = updated_at WHERE ");
            let conds: Vec<String> = (0..chunk.len())
                .map(|i| format!("(id = ${} AND lifecycle = ${})", 2 * i + 1, 2 * i + 2))
                .collect();
            sql.push_str(&conds.join(" OR "));
            let mut q = Query::built(sql);
            for (h, state) in chunk {
                q = q.binds((h.as_uuid(), *state));
            }
            let n = tx.execute(q, "check spaces before import").await?;
            if n != chunk.len() as u64 {
                return Err(StoreError::Conflict);
            }
        }
        let mut inserted = 0u64;
        for chunk in rows.chunks(CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 6;
                    format!(
                        "(${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1,
                        b + 2,
                        b + 3,
                        b + 4,
                        b + 5,
                        b + 6
                    )
                })
                .collect();
            let sql = format!(
                "INSERT INTO reimbursements (holder_id, id, line_tag, date_of_care, imported_at, line_sealed) VALUES {} \
                 ON CONFLICT (line_tag, holder_id) DO NOTHING",
                values.join(", ")
            );
            let mut q = Query::built(sql);
            for (holder, id, tag, day, sealed) in chunk {
                q = q.binds((
                    holder.as_uuid(),
                    *id,
                    tag.as_str(),
                    *day,
                    now.as_micros(),
                    sealed.as_slice(),
                ));
            }
            inserted += tx.execute(q, "write reimbursements").await?;
        }
        tx.commit().await?;
        // Lines another import filed meanwhile are present, not imported.
        report.imported += inserted;
        report.present += rows.len() as u64 - inserted;
        report.holders += receiving.len() as u64;
        Ok(report)
    }

    /// RB-1, RB-2: the reimbursement lines `actor` may read in `holder`'s space, filtered,
    /// newest care first. One decision on the category `reimbursements` (the holder and their
    /// representatives; a professional with a grant covering it and the habilitation, AC-1,
    /// AC-3), one trace (AC-6); a denial is `NotFound`, traced (AC-8).
    pub async fn list_reimbursements(
        &self,
        holder: HolderId,
        actor: &Actor,
        filter: &Filter,
        ctx: &Context,
    ) -> Result<Vec<Reimbursement>, StoreError> {
        self.decide_read(holder, actor, "reimbursements", ctx).await?;
        let from = filter.from.map_or(i64::MIN, day_micros);
        let to = filter.to.map_or(i64::MAX, day_micros);
        let rows: Vec<(Uuid, i64, Vec<u8>)> = self
            .store
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT id, imported_at, line_sealed FROM reimbursements WHERE holder_id = $1 AND \
                     date_of_care >= $2 AND date_of_care <= $3",
                )
                .binds((holder.as_uuid(), from, to)),
                "read reimbursements",
            )
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.store.vault.get(holder).await?;
        let mut out = Vec::with_capacity(rows.len());
        for (id, at, sealed) in rows {
            let r = open_row(&key, holder, id, at, &sealed)?;
            if filter.matches(&r.line) {
                out.push(r);
            }
        }
        out.sort_by(|a, b| {
            b.line
                .date_of_care
                .cmp(&a.line.date_of_care)
                .then(b.id.cmp(&a.id))
        });
        Ok(out)
    }

    /// One line by id (a FHIR read), decided and traced like the listing.
    pub async fn reimbursement(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: Uuid,
        ctx: &Context,
    ) -> Result<Reimbursement, StoreError> {
        self.decide_read(holder, actor, &format!("reimbursement/{id}"), ctx)
            .await?;
        let row: Option<(i64, Vec<u8>)> = self
            .store
            .db
            .fetch_optional_as(
                Query::new(
                    "SELECT imported_at, line_sealed FROM reimbursements WHERE holder_id = $1 AND id = $2",
                )
                .binds((holder.as_uuid(), id)),
                "read reimbursement",
            )
            .await?;
        let (at, sealed) = row.ok_or(StoreError::NotFound)?;
        let key = self.store.vault.get(holder).await?;
        open_row(&key, holder, id, at, &sealed)
    }

    async fn decide_read(
        &self,
        holder: HolderId,
        actor: &Actor,
        item: &str,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        let facts = read_facts();
        let access = Access {
            holder,
            actor,
            action: Action::Read,
            item,
            category: Some(facts.category),
            withheld: Withheld::default(),
        };
        self.admit(access, &facts, ctx).await
    }
}

fn open_row(
    key: &SecretKey,
    holder: HolderId,
    id: Uuid,
    imported_at: i64,
    sealed: &[u8],
) -> Result<Reimbursement, StoreError> {
    let line = serde_json::from_slice(&key.open(&line_aad(holder, id), sealed)?)
        .map_err(|e| StoreError::Integrity(format!("reimbursement: {e}")))?;
    Ok(Reimbursement {
        id,
        line,
        imported_at: Timestamp::from_micros(imported_at),
    })
}

impl crate::Store {
    /// The lifecycle of many spaces at once (a bulk import's decisions); unknown ids are absent.
    pub(crate) async fn lifecycles(
        &self,
        holders: &[HolderId],
    ) -> Result<HashMap<HolderId, Lifecycle>, StoreError> {
        let mut out = HashMap::new();
        for chunk in holders.chunks(CHUNK) {
            let q = Query::any_of(
                self.db.engine(),
                "SELECT id, lifecycle, state_since FROM holders WHERE id {in}",
                chunk.iter().map(|h| *h.as_uuid()),
            );
            for mut r in self.db.fetch_all(q, "read lifecycles").await? {
                let (id, name, since): (Uuid, String, i64) = (r.take(0)?, r.take(1)?, r.take(2)?);
                let lc = Lifecycle::from_parts(&name, Timestamp::from_micros(since))
                    .ok_or_else(|| StoreError::Integrity(format!("unknown lifecycle state {name}")))?;
                out.insert(HolderId::from_uuid(id), lc);
            }
        }
        Ok(out)
    }
}
