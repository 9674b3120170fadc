//! What operators see of the service's state (issue 7, operators' page): counts and backlogs,
//! never anything about a holder. Every figure is an aggregate over clear columns (lifecycle
//! states, due times, outbox bookkeeping, checkpoint numbers).

use crate::Store;
use crate::db::query::Query;
use crate::error::StoreError;
use crate::traces::checkpoint::Checkpoint;

/// The service's state at a glance.
#[derive(Clone, Debug, Default)]
pub struct OperationsStatus {
    /// Spaces by lifecycle state (roster imports create them `informed`).
    pub spaces_by_state: Vec<(String, i64)>,
    /// Spaces created in the last 7 days (the recent roster imports).
    pub spaces_created_7d: i64,
    /// Automatic transitions due now that the lifecycle job has not applied yet (its backlog).
    pub lifecycle_due: i64,
    /// The directory: professionals and establishments.
    pub professionals: i64,
    pub organisations: i64,
    /// Outgoing messages waiting, being retried after a failure, sent in the last 24 hours.
    pub outbox_waiting: i64,
    pub outbox_retrying: i64,
    pub outbox_sent_24h: i64,
    /// Agenda reminders due and not yet queued (the reminder job's backlog).
    pub reminders_due: i64,
    /// The newest signed checkpoint over the traces, and the chains moved since (AC-7).
    pub latest_checkpoint: Option<Checkpoint>,
    pub chains_pending: i64,
    pub traces: i64,
}

impl Store {
    /// The operators' view of the service (aggregates only).
    pub async fn operations_status(&self) -> Result<OperationsStatus, StoreError> {
        let now = self.now().as_micros();
        let day = 86_400 * 1_000_000;
        let spaces_by_state: Vec<(String, i64)> = self
            .db
            .fetch_all_as(
                Query::new("SELECT lifecycle, COUNT(*) FROM holders GROUP BY lifecycle ORDER BY lifecycle"),
                "count spaces",
            )
            .await?;
        // A count, with the instant it is relative to (`$1`) when the query has one.
        let one = |sql: &'static str, at: Option<i64>| async move {
            let q = Query::new(sql);
            let q = match at {
                Some(a) => q.bind(a),
                None => q,
            };
            self.db.fetch_one_as::<i64>(q, "operations status").await
        };
        Ok(OperationsStatus {
            spaces_by_state,
            spaces_created_7d: one(
                "SELECT COUNT(*) FROM holders WHERE created_at >= $1",
                Some(now - 7 * day),
            )
            .await?,
            lifecycle_due: one(
                "SELECT COUNT(*) FROM holders WHERE due_at IS NOT NULL AND due_at <= $1",
                Some(now),
            )
            .await?,
            professionals: one("SELECT COUNT(*) FROM professionals", None).await?,
            organisations: one("SELECT COUNT(*) FROM organisations", None).await?,
            outbox_waiting: one(
                "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND attempts = 0",
                None,
            )
            .await?,
            outbox_retrying: one(
                "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND attempts > 0",
                None,
            )
            .await?,
            outbox_sent_24h: one("SELECT COUNT(*) FROM outbox WHERE sent_at >= $1", Some(now - day)).await?,
            reminders_due: one(
                "SELECT COUNT(*) FROM agenda_events WHERE next_reminder_at <= $1",
                Some(now),
            )
            .await?,
            latest_checkpoint: self.latest_checkpoint().await?,
            chains_pending: one("SELECT COUNT(DISTINCT holder_id) FROM trace_heads_moved", None).await?,
            traces: one("SELECT COUNT(*) FROM traces", None).await?,
        })
    }
}
