//! Appending traces: one batch of many holders' traces in one transaction (group commit),
//! chained on the heads this server remembers ([`HeadCache`]) or reads back.

use carnet_domain::HolderId;

use crate::Store;
use crate::db::query::{Arg, Query, Values};
use crate::error::StoreError;

use super::{GENESIS, TraceEntry, chain_hash, trace_aad};

/// Holders per head query, rows per insert (8 parameters each): within both engines' limits.
const HEAD_CHUNK: usize = 200;
const INSERT_CHUNK: usize = 500;

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
            Arg::Blob(self.sealed.as_slice().into()),
            Arg::Text(self.prev.as_str().into()),
            Arg::Text(self.hash.as_str().into()),
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
        let (mut known, missing) = cache.known(&self.holders);
        if missing.is_empty()
            && db.engine() == crate::db::Engine::Postgres
            && self.items.len() <= INSERT_CHUNK
            && self.holders.len() <= crate::traces::checkpoint::PENDING_CHUNK
        {
            return self.write_in_one_statement(db, known, at).await;
        }
        let mut tx = db.begin().await?;
        let mut found = Vec::new();
        for chunk in missing.chunks(HEAD_CHUNK) {
            let args = Self::head_args(chunk);
            let rows = tx
                .fetch_all(
                    Query::built(heads_sql(chunk.len())).bind_all(args),
                    "read trace heads",
                )
                .await?;
            found.extend(rows);
        }
        known.extend(Self::heads_of(found)?);
        let chained = self.chain(known, at)?;
        for chunk in chained.rows.chunks(INSERT_CHUNK) {
            let args: Vec<Arg<'_>> = chunk.iter().flat_map(|r| r.args(at)).collect();
            let q = Query::built(insert_sql(chunk.len())).bind_all(args);
            match tx.execute(q, "append trace").await {
                Ok(_) => {}
                Err(e) if e.is_unique_violation() => return Ok(None),
                Err(e) => return Err(e),
            }
        }
        crate::traces::checkpoint::mark_heads_moved(&mut tx, &chained.moved).await?;
        tx.commit().await?;
        Ok(Some(chained))
    }

    /// PostgreSQL, every chain's head known ([`HeadCache`]): the rows and the moved heads in
    /// one statement, a data-modifying `WITH` — one round trip where the transaction takes
    /// four (BEGIN, two inserts, COMMIT). A statement is its own transaction: both inserts
    /// commit together or not at all, durably (`synchronous_commit`) before it returns; a taken
    /// `(holder, seq)` undoes both, as in [`TraceBatch::write_with`].
    async fn write_in_one_statement(
        &self,
        db: &crate::db::Db,
        known: std::collections::HashMap<HolderId, (i64, String)>,
        at: i64,
    ) -> Result<Option<Chained>, StoreError> {
        let chained = self.chain(known, at)?;
        let n = chained.rows.len();
        let sql = format!(
            "WITH appended AS ({}) {}",
            insert_sql(n),
            crate::traces::checkpoint::pending_sql_from(chained.moved.len(), 8 * n + 1)
        );
        let r = {
            let q = Query::built(sql)
                .bind_all(chained.rows.iter().flat_map(|r| r.args(at)))
                .bind_all(crate::traces::checkpoint::pending_args(&chained.moved));
            db.execute(q, "append trace").await
        };
        match r {
            Ok(_) => Ok(Some(chained)),
            Err(e) if e.is_unique_violation() => Ok(None),
            Err(e) => Err(e),
        }
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
        let pending = crate::traces::checkpoint::pending_sql(1);
        for (holder, seq) in &chained.moved {
            execute_on(c, &pending, &[Arg::Uuid(*holder.as_uuid()), Arg::Int(*seq)])
                .map_err(|e| sqlite_error("mark trace heads", e))?;
        }
        c.execute_batch("COMMIT")
            .map_err(|e| sqlite_error("commit traces", e))?;
        Ok(Some(chained))
    }
}

impl Store {
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
        let started = std::time::Instant::now();
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
            // What operators watch (issue 34): the group commits, their size and duration.
            metrics::histogram!("carnet_trace_batch_seconds").record(started.elapsed().as_secs_f64());
            metrics::counter!("carnet_traces_appended_total").increment(items.len() as u64);
            heads.learn(std::mem::take(&mut chained.heads));
            for (h, _) in &chained.moved {
                // No receiver is fine: nobody is watching that space live.
                let _ = self.trace_events.send(*h);
            }
            return Ok(chained.seqs);
        }
        Err(StoreError::Conflict)
    }
}

/// A trace waiting for the next group commit, and who to tell when it is durable.
pub(crate) type Pending = (
    HolderId,
    TraceEntry,
    // `Err(None)`: the disk is full (507, not 503); `Err(Some(why))`: any other failure.
    tokio::sync::oneshot::Sender<Result<i64, Option<String>>>,
);

/// Starts the trace appender (`db::spawn_pipeline`), which group-commits the traces of
/// concurrent accesses: each caller still waits until its trace is durable, but one commit
/// serves every access that arrived meanwhile.
pub(crate) fn spawn_appender(store: &Store) -> tokio::sync::mpsc::Sender<Pending> {
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
            let items: Vec<(HolderId, TraceEntry)> = batch.iter().map(|(h, e, _)| (*h, e.clone())).collect();
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
    tx
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use carnet_domain::access::{Action, Actor, HabilitationMatrix, Reason};

    use crate::datadir::{StoreSettings, open_store};
    use crate::gate::Gate;
    use carnet_domain::SystemClock;

    /// The trace file's WAL is checkpointed by the trace appender, on its own connection,
    /// once a commit saw it reach `db::AUDIT_CHECKPOINT_FRAMES` (64 frames in this crate's
    /// tests; the writer's own checkpoint is out of reach here): 1,200 commits of one trace
    /// each (~2 pages each) leave a WAL of a few hundred frames at most, not of 2,400, and
    /// every trace is there and chained (S-30, AC-7). The checkpoint runs on a thread of its
    /// own, so how often it runs depends on the scheduler: on a loaded 2-core CI machine it
    /// fell behind by ~300 frames once, hence the long run and the margin of the bound.
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
        for n in 0..1200 {
            // One at a time: each waits for its own commit.
            let seq = gate.trace(holders[n % 2], entry(n)).await.unwrap();
            assert_eq!(seq, (n / 2) as i64 + 1);
        }
        let frame = 4096 + 24;
        let wal = std::fs::metadata(dir.path().join("carnet-audit.db-wal"))
            .unwrap()
            .len();
        assert!(
            wal < 800 * frame,
            "the trace file's WAL holds {} frames",
            wal / frame
        );
        let report = store.verify_traces().await.unwrap();
        assert!(report.problems.is_empty(), "{:?}", report.problems);
        for h in holders {
            assert_eq!(store.traces_of(h, None, 1000).await.unwrap().len(), 600);
        }
    }
}
