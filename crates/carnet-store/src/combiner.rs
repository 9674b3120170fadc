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

use crate::db::{Db, Tx};
use crate::error::StoreError;
use crate::on_tx;

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

/// The combiner of one store; its task starts with the first write (in the caller's runtime).
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
    tokio::spawn(async move {
        while let Some(first) = rx.recv().await {
            let mut batch = vec![first];
            while batch.len() < MAX_BATCH {
                match rx.try_recv() {
                    Ok(u) => batch.push(u),
                    Err(_) => break,
                }
            }
            run_batch(&db, batch).await;
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
    on_tx!(tx, t => sqlx::query(sql).execute(&mut **t).await.map(|_| ()))
        .map_err(StoreError::db("savepoint of a combined write"))
}

/// The same failure, for each writer of a batch (errors are not `Clone`).
fn echo(e: &StoreError) -> StoreError {
    match e {
        StoreError::DiskFull => StoreError::DiskFull,
        StoreError::Conflict => StoreError::Conflict,
        other => StoreError::Commit(other.to_string()),
    }
}
