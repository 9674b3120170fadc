//! Background jobs of a server: the lifecycle job (SPEC LC-3, LC-5..7, MI-3) every few
//! seconds. Every server of a deployment runs it; the store makes each change a
//! compare-and-set, so running it on several servers at once applies each transition once.

use std::time::Duration;

use carnet_store::Store;
use carnet_store::holders::JobReport;

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
        }
    })
}
