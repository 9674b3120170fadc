//! The space's history as its readers see it (AC-6): the access traces and the notices the
//! holder is told of, read by the holder or a current legal representative only, each trace
//! shown or not by [`TraceEntry::shown_to`] (MI-2: hidden from representatives; DM-6: kept
//! from the holder until the document shows). The one place the holder-side views (the JSON
//! API, the live stream, FHIR AuditEvents, the pages) read traces from.

use carnet_domain::access::Actor;
use carnet_domain::{HolderId, Timestamp};

use crate::error::StoreError;
use crate::gate::Gate;
use crate::traces::Trace;

/// One page of a space's history as its reader sees it, and the cursor of the next page.
#[derive(Clone, Debug, Default)]
pub struct HistoryPage {
    pub traces: Vec<Trace>,
    /// `before` for the next page (`None`: this was the last).
    pub next_before: Option<i64>,
}

impl Gate {
    /// Whether `reader` (the holder, or a legal representative acting in the space) reads
    /// `holder`'s history as a representative; `None`: they may not read it at all (anyone
    /// else, or a representation that ended: no such space, AC-8).
    async fn history_reader(&self, holder: HolderId, reader: &Actor) -> Result<Option<bool>, StoreError> {
        match reader {
            Actor::Holder { .. } | Actor::Representative { .. } => {}
            _ => return Ok(None),
        }
        Ok(self
            .space(holder, reader)
            .await?
            .map(|_| matches!(reader, Actor::Representative { .. })))
    }

    fn page_for(&self, page: Vec<Trace>, limit: i64, representative: bool) -> HistoryPage {
        let next_before = page.last().map(|t| t.seq).filter(|_| page.len() as i64 == limit);
        let now = self.store.now();
        HistoryPage {
            traces: page
                .into_iter()
                .filter(|t| t.entry.shown_to(representative, now))
                .collect(),
            next_before,
        }
    }

    /// AC-6: the traces of `holder`'s space, newest first, as `reader` may see them (MI-2,
    /// DM-6: [`crate::traces::TraceEntry::shown_to`]); `None` for anyone who may not read that history.
    pub async fn history(
        &self,
        holder: HolderId,
        reader: &Actor,
        before: Option<i64>,
        period: Option<(Timestamp, Timestamp)>,
        limit: i64,
    ) -> Result<Option<HistoryPage>, StoreError> {
        let Some(representative) = self.history_reader(holder, reader).await? else {
            return Ok(None);
        };
        let page = self.store.traces_in(holder, before, period, limit).await?;
        Ok(Some(self.page_for(page, limit, representative)))
    }

    /// AC-6: the notices of `holder`'s space (accesses the holder is told of), newest first,
    /// as `reader` may see them; `None` for anyone who may not read them.
    pub async fn notices(
        &self,
        holder: HolderId,
        reader: &Actor,
        before: Option<i64>,
        limit: i64,
    ) -> Result<Option<HistoryPage>, StoreError> {
        let Some(representative) = self.history_reader(holder, reader).await? else {
            return Ok(None);
        };
        let page = self.store.notices_before(holder, before, limit).await?;
        Ok(Some(self.page_for(page, limit, representative)))
    }

    /// The notices after `after` (oldest first), for a live stream: the page as `reader` sees
    /// it, and the newest sequence number read (shown or not), to resume from.
    pub async fn notices_after(
        &self,
        holder: HolderId,
        reader: &Actor,
        after: i64,
        limit: i64,
    ) -> Result<Option<(Vec<Trace>, i64)>, StoreError> {
        let Some(representative) = self.history_reader(holder, reader).await? else {
            return Ok(None);
        };
        let batch = self.store.notices_after(holder, after, limit).await?;
        let last = batch.iter().map(|t| t.seq).max().unwrap_or(after);
        let now = self.store.now();
        Ok(Some((
            batch
                .into_iter()
                .filter(|t| t.entry.shown_to(representative, now))
                .collect(),
            last,
        )))
    }
}
