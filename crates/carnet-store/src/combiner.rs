//! Group commit of small writes (the write combiner).
//!
//! SQLite has one writer connection and every transaction ends in an fsync, so a server whose
//! clients each create, update or delete one resource is bounded by one fsync per request.
//! The combiner gathers the writes that arrive while a commit is under way and runs them in
//! one transaction, each in its own savepoint: a unit that fails is rolled back to its
//! savepoint alone and answered with its own error; the others commit together, once, and
//! each caller is answered only after that commit is durable (an acknowledged write survives
//! `kill -9`, as before). The trace appender (`gate`) does the same for traces.
//!
//! On PostgreSQL every unit runs in its own transaction (concurrent connections, the server's
//! own group commit): the unit's SQL is the same on both engines.

use std::sync::{Arc, Mutex, OnceLock};

use futures::future::BoxFuture;
use tokio::sync::{mpsc, oneshot};

use crate::db::query::Query;
use crate::db::{Db, Tx};
use crate::error::StoreError;

/// Most units in one commit.
const MAX_BATCH: usize = 256;

/// The work of one write, run inside a transaction it must neither commit nor roll back.
type UnitFn = Box<dyn for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<(), StoreError>> + Send>;

/// Where a unit's caller waits for the outcome (after the commit).
type Reply = oneshot::Sender<Result<(), StoreError>>;

struct Unit {
    run: UnitFn,
    done: Reply,
}

/// The combiner of one store; its pipeline (`db::spawn_pipeline`) starts with the first write.
#[derive(Clone, Default)]
pub(crate) struct Combiner {
    queue: Arc<OnceLock<mpsc::Sender<Unit>>>,
}

impl std::fmt::Debug for Combiner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Combiner")
    }
}

impl Combiner {
    /// Runs `f` in a write transaction, possibly shared with other writes (SQLite), and
    /// returns its value once the transaction is durably committed. `f`'s error rolls back
    /// its own writes only.
    pub(crate) async fn write<T, F>(&self, db: &Db, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t mut Tx) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
    {
        if matches!(db, Db::Postgres(_)) {
            let mut tx = db.begin().await?;
            let v = f(&mut tx).await?;
            tx.commit().await?;
            return Ok(v);
        }
        let slot: Arc<Mutex<Option<T>>> = Arc::new(Mutex::new(None));
        let out = slot.clone();
        let run: UnitFn = Box::new(move |tx| {
            Box::pin(async move {
                let v = f(tx).await?;
                if let Ok(mut s) = out.lock() {
                    *s = Some(v);
                }
                Ok(())
            })
        });
        let (done, wait) = oneshot::channel();
        let stopped = || StoreError::Commit("the write combiner stopped".into());
        self.queue
            .get_or_init(|| start(db.clone()))
            .send(Unit { run, done })
            .await
            .map_err(|_| stopped())?;
        wait.await.map_err(|_| stopped())??;
        slot.lock().ok().and_then(|mut s| s.take()).ok_or_else(stopped)
    }
}

fn start(db: Db) -> mpsc::Sender<Unit> {
    let (queue, mut rx) = mpsc::channel::<Unit>(4096);
    let pipeline_db = db.clone();
    crate::db::spawn_pipeline(&pipeline_db, "carnet-writes", async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(u) => batch.push(u),
                    Err(_) => break,
                }
            }
            // A panic in a unit fails its batch (the callers get "stopped", nothing of the
            // batch commits), never the combiner: later writes go on.
            let run = std::panic::AssertUnwindSafe(run_batch(&db, batch));
            if futures::FutureExt::catch_unwind(run).await.is_err() {
                tracing::error!("a combined write panicked; its batch was not committed");
            }
        }
    });
    queue
}

/// One transaction for the whole batch; a savepoint per unit when there are several.
async fn run_batch(db: &Db, batch: Vec<Unit>) {
    let mut tx = match db.begin().await {
        Ok(tx) => tx,
        Err(e) => {
            for u in batch {
                let _ = u.done.send(Err(echo(&e)));
            }
            return;
        }
    };
    if batch.len() == 1 {
        // Alone: no savepoint; its error rolls back the transaction (dropped).
        let Some(u) = batch.into_iter().next() else {
            return;
        };
        let result = match (u.run)(&mut tx).await {
            Ok(()) => tx.commit().await,
            Err(e) => Err(e),
        };
        let _ = u.done.send(result);
        return;
    }
    let mut outcomes: Vec<(Reply, Result<(), StoreError>)> = Vec::with_capacity(batch.len());
    for u in batch {
        let r = async {
            savepoint(&mut tx, "SAVEPOINT unit").await?;
            match (u.run)(&mut tx).await {
                Ok(()) => {
                    savepoint(&mut tx, "RELEASE unit").await?;
                    Ok(Ok(()))
                }
                Err(e) => {
                    savepoint(&mut tx, "ROLLBACK TO unit").await?;
                    savepoint(&mut tx, "RELEASE unit").await?;
                    Ok(Err(e))
                }
            }
        }
        .await;
        match r {
            Ok(own) => outcomes.push((u.done, own)),
            // The transaction itself failed (savepoints refused): nothing of it can commit.
            Err(e) => {
                let _ = u.done.send(Err(echo(&e)));
                for (done, _) in outcomes.drain(..) {
                    let _ = done.send(Err(echo(&e)));
                }
                // The units not yet run are dropped: their callers get "stopped" (503).
                return;
            }
        }
    }
    match tx.commit().await {
        Ok(()) => {
            for (done, own) in outcomes {
                let _ = done.send(own);
            }
        }
        Err(e) => {
            for (done, own) in outcomes {
                let _ = done.send(own.and(Err(echo(&e))));
            }
        }
    }
}

async fn savepoint(tx: &mut Tx, sql: &'static str) -> Result<(), StoreError> {
    tx.execute(Query::new(sql), "savepoint of a combined write")
        .await
        .map(|_| ())
}

/// The same failure, for each writer of a batch (errors are not `Clone`).
fn echo(e: &StoreError) -> StoreError {
    match e {
        StoreError::DiskFull => StoreError::DiskFull,
        StoreError::Conflict => StoreError::Conflict,
        other => StoreError::Commit(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::DbOptions;

    async fn count(db: &Db) -> i64 {
        match db
            .writer()
            .fetch_one(Query::new("SELECT COUNT(*) FROM t"), "count")
            .await
        {
            Ok(mut r) => r.take(0).unwrap_or(-1),
            Err(_) => -1,
        }
    }

    /// A unit that panics fails its batch, not the combiner: the writes after it land.
    #[tokio::test]
    async fn a_panicking_write_fails_alone_and_the_combiner_goes_on() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("c.db").display());
        let opts = DbOptions {
            create_if_missing: true,
            ..DbOptions::default()
        };
        let db = Db::connect(&url, &opts).await.unwrap();
        let c = Combiner::default();
        c.write(&db, |tx| {
            Box::pin(async move {
                tx.execute(Query::new("CREATE TABLE t (n INTEGER NOT NULL)"), "create")
                    .await
                    .map(|_| ())
            })
        })
        .await
        .unwrap();
        let boom = c
            .write(&db, |tx| {
                Box::pin(async move {
                    tx.execute(Query::new("INSERT INTO t VALUES (1)"), "insert")
                        .await
                        .map(|_| ())?;
                    if tx_is_sqlite(tx) {
                        panic!("a bug in a unit");
                    }
                    Ok(())
                })
            })
            .await;
        assert!(matches!(boom, Err(StoreError::Commit(_))), "{boom:?}");
        for n in 2..=3 {
            c.write(&db, move |tx| {
                Box::pin(async move {
                    tx.execute(Query::new("INSERT INTO t VALUES ($1)").bind(n), "insert")
                        .await
                        .map(|_| ())
                })
            })
            .await
            .unwrap();
        }
        assert_eq!(count(&db).await, 2, "the panicked unit's row did not commit");
    }

    fn tx_is_sqlite(tx: &Tx) -> bool {
        matches!(tx, Tx::Sqlite(_))
    }
}
