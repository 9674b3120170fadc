//! Listing and reading documents (DM-4, DM-8, AC-6): decided per item, traced once.

use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use carnet_domain::access::{Action, Actor, Context, Decision};
use carnet_domain::document::{self, DocumentMeta};
use carnet_domain::{DocumentId, HolderId, Timestamp};

use crate::error::StoreError;
use crate::gate::{Access, Gate};
use crate::traces::Withheld;

use super::*;

impl Gate {
    /// Lists what `actor` may see of `holder`'s documents, filtered and paged (DM-8). Items the
    /// caller may not see are left out before filtering, counting and paging (S-1, S-2). The
    /// listing is traced once.
    pub async fn list_documents(
        &self,
        holder: HolderId,
        actor: &Actor,
        filter: &DocumentFilter,
        ctx: &Context,
    ) -> Result<DocumentPage, StoreError> {
        let set = self.document_set(holder, actor, filter, ctx).await?;
        let total = set.len();
        let limit = filter.limit.clamp(1, 500);
        let page: Vec<usize> = (0..total)
            .filter(|i| {
                filter.first_view || filter.before.is_none_or(|b| set.id(*i).is_some_and(|id| id < b))
            })
            .take(limit)
            .collect();
        set.open(&page).await?;
        let next_before = (!filter.first_view && page.len() == limit)
            .then(|| page.last().and_then(|i| set.id(*i)))
            .flatten()
            .filter(|last| (0..total).any(|i| set.id(i).is_some_and(|id| id < *last)));
        Ok(DocumentPage {
            // A row that changed since it was decided on is left out of this page.
            documents: page
                .iter()
                .filter_map(|i| set.get(*i))
                .map(|d| d.view())
                .collect(),
            total,
            next_before,
        })
    }

    /// Everything `actor` may see of `holder`'s documents under `filter` (its `limit` and
    /// `before` aside), in listing order: decided and traced as [`Gate::list_documents`], each
    /// document's view made only when asked for (a FHIR search maps only its page).
    pub async fn document_set(
        &self,
        holder: HolderId,
        actor: &Actor,
        filter: &DocumentFilter,
        ctx: &Context,
    ) -> Result<DocumentSet, StoreError> {
        let Some(space) = self.space(holder, actor).await? else {
            return Err(StoreError::NotFound);
        };
        let record = self.store.document_rows(holder).await?;
        let decider = self.decider(&space, actor, ctx);
        let now = decider.now();
        let mut first_allowed: Option<Decision> = None;
        let mut visible: Vec<(usize, Option<(u8, Timestamp)>)> = Vec::new();
        for (i, head) in record.heads.iter().enumerate() {
            let d = decider.decide(Action::Read, &head.facts(now));
            if !d.allowed {
                continue;
            }
            first_allowed.get_or_insert(d);
            if !matches(head, filter) {
                continue;
            }
            let rank = if filter.first_view {
                match document::first_view_rank_of(
                    head.facts.category,
                    head.type_code.as_deref(),
                    head.uploaded_at,
                    head.status,
                    now,
                ) {
                    Some(r) => Some(r),
                    None => continue,
                }
            } else {
                None
            };
            visible.push((i, rank));
        }
        // The listing itself is one access: allowed if anything could be shown, else decided
        // as a read of the record (so a professional without any right leaves a denial).
        let d = match first_allowed {
            Some(d) => d,
            None => self.decide_in(&space, actor, Action::Read, &record_facts(), ctx),
        };
        self.record(
            Access {
                holder,
                actor,
                action: Action::Read,
                item: "documents",
                category: None,
                withheld: Withheld::default(),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        // Refused (nothing could be shown): the same answer as an empty record (AC-8).
        if filter.first_view {
            let id = |i: usize| record.heads.get(i).map(|r| r.id);
            visible.sort_by(|a, b| b.1.cmp(&a.1).then(id(b.0).cmp(&id(a.0))));
        }
        let mut shown: Vec<usize> = visible.into_iter().map(|(i, _)| i).collect();
        let mut opened: Vec<OnceLock<Arc<DocumentMeta>>> = Vec::new();
        if let Some(text) = &filter.text {
            // The titles are in the sealed metadata: open what is left, keep what matches.
            let heads: Vec<&DocHead> = shown.iter().filter_map(|i| record.heads.get(*i)).collect();
            let metas = self.store.open_heads(holder, &record.metas, &heads).await?;
            let (kept, metas): (Vec<usize>, Vec<Arc<DocumentMeta>>) = shown
                .iter()
                .zip(metas)
                .filter_map(|(i, m)| m.filter(|m| m.title_matches(text)).map(|m| (*i, m)))
                .unzip();
            shown = kept;
            opened = metas.into_iter().map(OnceLock::from).collect();
        }
        opened.resize_with(shown.len(), OnceLock::new);
        Ok(DocumentSet {
            store: self.store.clone(),
            holder,
            record,
            shown,
            opened,
        })
    }

    /// Reads one document version and its content (download, preview). Traced; a denial and a
    /// missing document are the same `NotFound` (AC-8).
    pub async fn read_document(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        ctx: &Context,
    ) -> Result<(DocumentView, Bytes), StoreError> {
        let (row, _) = self
            .decide_on(holder, actor, id, Action::Read, format!("document/{id}"), ctx)
            .await?;
        let (_, content) = self.store.attachment(holder, row.attachment).await?;
        if crate::crypto::sha256_hex(&content) != row.meta.sha256 {
            return Err(StoreError::Integrity(
                "document content does not match its recorded hash".into(),
            ));
        }
        Ok((row.view(), content))
    }

    /// Reads one document version's metadata, without its content (a FHIR DocumentReference):
    /// decided and traced exactly as [`Gate::read_document`].
    pub async fn read_document_metadata(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        ctx: &Context,
    ) -> Result<DocumentView, StoreError> {
        let (row, _) = self
            .decide_on(holder, actor, id, Action::Read, format!("document/{id}"), ctx)
            .await?;
        Ok(row.view())
    }

    /// Every version of a document the caller may see (DM-3 history), newest first.
    pub async fn document_history(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        ctx: &Context,
    ) -> Result<Vec<DocumentView>, StoreError> {
        let (row, space) = self
            .decide_on(
                holder,
                actor,
                id,
                Action::Read,
                format!("document/{id}/history"),
                ctx,
            )
            .await?;
        let decider = self.decider(&space, actor, ctx);
        let now = decider.now();
        let record = self.store.document_rows(holder).await?;
        let heads: Vec<&DocHead> = record
            .heads
            .iter()
            .filter(|r| r.set_id == row.set_id)
            .filter(|r| decider.decide(Action::Read, &r.facts(now)).allowed)
            .collect();
        let metas = self.store.open_heads(holder, &record.metas, &heads).await?;
        Ok(heads
            .iter()
            .zip(metas)
            .filter_map(|(h, meta)| {
                meta.map(|meta| DocumentView {
                    id: h.id,
                    set_id: h.set_id,
                    status: h.status,
                    meta: (*meta).clone(),
                })
            })
            .collect())
    }
}
