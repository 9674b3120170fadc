//! Background jobs of a server: the lifecycle job (SPEC LC-3, LC-5..7, MI-3) every few
//! seconds, the agenda's reminders (AG-3), then a signed checkpoint over the access traces that moved (AC-7, S-5). Every
//! server of a deployment runs them; the store makes each change a compare-and-set, so
//! running them on several servers at once applies each transition once and makes each
//! checkpoint once.

use std::time::Duration;

use carnet_store::Store;
use carnet_store::holders::JobReport;
use carnet_store::traces::checkpoint::{Checkpoint, MAX_LEAVES};

const BATCH: i64 = 1000;

/// One full pass: repeats batches until nothing is due.
pub async fn run_once(store: &Store) -> Result<JobReport, carnet_store::StoreError> {
    let mut total = JobReport::default();
    loop {
        let r = store.run_lifecycle_job(BATCH).await?;
        let done = r.opened + r.erased + r.came_of_age;
        total.opened += r.opened;
        total.erased += r.erased;
        total.came_of_age += r.came_of_age;
        if done < BATCH as u64 {
            return Ok(total);
        }
    }
}

/// Publishes the traces' new chain heads (AC-7): makes checkpoints until every moved chain
/// is covered (one, unless a backlog exceeds [`MAX_LEAVES`]). Empty when nothing moved or
/// another server made the checkpoint.
pub async fn checkpoint_traces(store: &Store) -> Result<Vec<Checkpoint>, carnet_store::StoreError> {
    let mut made = Vec::new();
    while let Some(c) = store.make_checkpoint().await? {
        let full = c.size >= MAX_LEAVES as i64;
        made.push(c);
        if !full {
            break;
        }
    }
    Ok(made)
}

pub fn spawn(store: Store, every: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match run_once(&store).await {
                Ok(r) if r != JobReport::default() => {
                    tracing::info!(
                        opened = r.opened,
                        erased = r.erased,
                        came_of_age = r.came_of_age,
                        "lifecycle job"
                    );
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "lifecycle job failed; will retry"),
            }
            // DM-6: tell holders that a document awaits them.
            match store.run_document_notices(BATCH).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(notices = n, "waiting-document notices"),
                Err(e) => tracing::warn!(error = %e, "document notice job failed; will retry"),
            }
            // AG-3: agenda reminders that fell due (queued once each, even across restarts).
            loop {
                match store.send_due_reminders(BATCH).await {
                    Ok(r) => {
                        if r.queued + r.late > 0 {
                            tracing::info!(queued = r.queued, late = r.late, "agenda reminders");
                        }
                        if r.queued + r.late < BATCH as u64 {
                            break;
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "agenda reminder job failed; will retry");
                        break;
                    }
                }
            }
            match checkpoint_traces(&store).await {
                Ok(made) => {
                    for c in made {
                        tracing::info!(number = c.number, size = c.size, root = %c.root, "trace checkpoint signed");
                    }
                }
                Err(e) => tracing::warn!(error = %e, "trace checkpoint failed; will retry"),
            }
        }
    })
}
