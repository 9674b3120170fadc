//! `carnet verify-traces`: every chain recomputed, then the signed checkpoints (AC-7, S-5).

use carnet_domain::HolderId;

use crate::Store;
use crate::db::query::Query;
use crate::error::StoreError;

use super::{GENESIS, TraceReport, chain_hash};

type TraceRow = (i64, i64, i64, i64, Vec<u8>, String, String);

impl Store {
    /// Checks every holder's chain: contiguous sequence from 1, each `prev_hash` equal to the
    /// previous `hash`, each `hash` recomputed from the row. Any edit, removal or reordering is
    /// reported. Then checks the signed checkpoints and that every chain still holds the
    /// heads they cover, which catches a truncated tail or a chain rewritten with fresh
    /// hashes (AC-7, S-5; see `checkpoint`).
    pub async fn verify_traces(&self) -> Result<TraceReport, StoreError> {
        let holders: Vec<uuid::Uuid> = self
            .db
            .fetch_all_as::<uuid::Uuid>(
                Query::new("SELECT DISTINCT holder_id FROM traces ORDER BY holder_id"),
                "list traced holders",
            )
            .await?;
        let mut report = TraceReport::default();
        for h in holders {
            report.holders += 1;
            let holder = HolderId::from_uuid(h);
            let rows: Vec<TraceRow> = self
                .db
                .fetch_all_as(
                    Query::new(
                        "SELECT seq, at, allowed, emergency, entry_sealed, prev_hash, hash FROM traces WHERE \
                         holder_id = $1 ORDER BY seq",
                    )
                    .bind(h),
                    "read traces",
                )
                .await?;
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
