//! The documents' rows: reading a holder's versions (through the cache), staging blobs,
//! writing a version's rows in one transaction, deprecating and deleting. Reached only by
//! the gate's operations in this module's siblings.

use std::sync::Arc;

use bytes::Bytes;
use carnet_domain::document::{self, DocumentMeta, Status};
use carnet_domain::{AttachmentId, DocumentId, HolderId, ItemKind};

use crate::crypto::{SecretKey, item_aad};
use crate::db::query::Query;
use crate::documents::cache::{DocRecord, Metas};
use crate::error::StoreError;
use crate::{AttachmentMeta, BlobHash, Store};

use super::*;

impl Store {
    /// What listings use of `holder`'s documents (`doccache`): every row's head, newest
    /// first, and the opened metadata of the few lately shown; from this server's cache while
    /// the holder's document stamp has not moved, else every row read and opened (crate-private).
    pub(crate) async fn document_rows(&self, holder: HolderId) -> Result<DocRecord, StoreError> {
        // The stamp first: rows read after it are at least as new as it.
        let stamp = self.document_stamp(holder).await?;
        if let Some(record) = self.doc_cache.get(holder, stamp) {
            return Ok(record);
        }
        let rows = self.open_document_rows(holder).await?;
        // Versions never change: what was opened under an older stamp still holds, and the
        // newest rows, just opened, are the ones the first pages show.
        let metas = self.doc_cache.metas(holder).unwrap_or_default();
        for r in rows.iter().take(Metas::KEEP).rev() {
            if metas.get(r.id, r.version).is_none() {
                metas.put(r.id, r.version, Arc::new(r.meta.clone()));
            }
        }
        let record = DocRecord {
            heads: Arc::new(rows.iter().map(DocRow::head).collect()),
            metas,
        };
        self.doc_cache.put(holder, stamp, record.clone());
        Ok(record)
    }

    /// The opened metadata of `heads` (of `holder`'s record), in order: from `metas`, else read
    /// and opened (and kept in `metas` when they are a page's few). `None` for a row whose
    /// version is no longer the head's, or that is gone: it changed after the heads were read.
    pub(crate) async fn open_heads(
        &self,
        holder: HolderId,
        metas: &Metas,
        heads: &[&DocHead],
    ) -> Result<Vec<Option<Arc<DocumentMeta>>>, StoreError> {
        let mut out = metas.get_many(heads.iter().map(|h| (h.id, h.version)));
        let missing = out.iter().filter(|m| m.is_none()).count();
        if missing == 0 {
            return Ok(out);
        }
        let key = self.vault.get(holder).await?.opener();
        let open = |id: DocumentId, sealed: &[u8]| open_meta(&key, holder, id, sealed).map(Arc::new);
        if missing <= Metas::KEEP {
            // A page's few: one point read each, kept for the next listing.
            for (slot, h) in out.iter_mut().zip(heads) {
                if slot.is_some() {
                    continue;
                }
                let row = self
                    .db
                    .fetch_optional(
                        Query::new(
                            "SELECT version, meta_sealed FROM documents WHERE holder_id = $1 AND id = $2",
                        )
                        .bind(*holder.as_uuid())
                        .bind(*h.id.as_uuid()),
                        "read document metadata",
                    )
                    .await?;
                let Some(mut r) = row else { continue };
                if r.take::<i64>(0)? != h.version {
                    continue;
                }
                let meta = open(h.id, &r.take::<Vec<u8>>(1)?)?;
                metas.put(h.id, h.version, meta.clone());
                *slot = Some(meta);
            }
            return Ok(out);
        }
        // Many (a search in the titles, a sort on every resource): the record in one read.
        let rows = self
            .db
            .fetch_all(
                Query::new("SELECT id, version, meta_sealed FROM documents WHERE holder_id = $1")
                    .bind(*holder.as_uuid()),
                "list documents",
            )
            .await?;
        let mut sealed: std::collections::HashMap<DocumentId, (i64, Vec<u8>)> =
            std::collections::HashMap::with_capacity(rows.len());
        for mut r in rows {
            let id = DocumentId::from_uuid(r.take(0)?);
            sealed.insert(id, (r.take(1)?, r.take(2)?));
        }
        for (slot, h) in out.iter_mut().zip(heads) {
            if slot.is_none()
                && let Some((version, bytes)) = sealed.get(&h.id)
                && *version == h.version
            {
                *slot = Some(open(h.id, bytes)?);
            }
        }
        Ok(out)
    }

    /// The holder's document stamp (migration 22): 0 until their documents first change.
    pub(super) async fn document_stamp(&self, holder: HolderId) -> Result<i64, StoreError> {
        let row = self
            .db
            .fetch_optional(
                Query::new("SELECT stamp FROM document_stamps WHERE holder_id = $1").bind(*holder.as_uuid()),
                "read document stamp",
            )
            .await?;
        match row {
            Some(mut r) => r.take(0),
            None => Ok(0),
        }
    }

    /// Moves the holder's document stamp, in the transaction that changes their document
    /// rows; gives the new stamp.
    pub(crate) async fn bump_document_stamp(
        &self,
        tx: &mut crate::db::Tx,
        holder: HolderId,
    ) -> Result<i64, StoreError> {
        tx.fetch_one(
            Query::new(
                "INSERT INTO document_stamps (holder_id, stamp) VALUES ($1, 1) ON CONFLICT (holder_id) DO \
                 UPDATE SET stamp = document_stamps.stamp + 1 RETURNING stamp",
            )
            .bind(holder.as_uuid()),
            "move document stamp",
        )
        .await
        .and_then(|mut r| r.take::<i64>(0))
    }

    pub(super) async fn open_document_rows(&self, holder: HolderId) -> Result<Vec<DocRow>, StoreError> {
        let rows = self
            .db
            .fetch_all(
                Query::new(
                    "SELECT id, set_id, status, attachment_id, version, meta_sealed FROM documents WHERE \
                     holder_id = $1 ORDER BY id DESC",
                )
                .bind(*holder.as_uuid()),
                "list documents",
            )
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.vault.get(holder).await?.opener();
        rows.into_iter()
            .map(|mut r| {
                let id = DocumentId::from_uuid(r.take(0)?);
                RawDocument::take(&mut r, 1)?.open(&key, holder, id)
            })
            .collect()
    }

    pub(crate) async fn document_row(
        &self,
        holder: HolderId,
        id: DocumentId,
    ) -> Result<Option<DocRow>, StoreError> {
        let row = self
            .db
            .fetch_optional(
                Query::new(
                    "SELECT set_id, status, attachment_id, version, meta_sealed FROM documents WHERE \
                     holder_id = $1 AND id = $2",
                )
                .bind(*holder.as_uuid())
                .bind(*id.as_uuid()),
                "read document",
            )
            .await?;
        let Some(mut r) = row else {
            return Ok(None);
        };
        let raw = RawDocument::take(&mut r, 0)?;
        self.open_document(holder, id, raw).await.map(Some)
    }

    /// One document row as read (`RawDocument`), its metadata opened with the holder's key.
    pub(crate) async fn open_document(
        &self,
        holder: HolderId,
        id: DocumentId,
        raw: RawDocument,
    ) -> Result<DocRow, StoreError> {
        let key = self.vault.get(holder).await?.opener();
        raw.open(&key, holder, id)
    }

    /// Writes a new document version: blob (durable) first, then in one transaction the
    /// attachment row, the document row, the previous version's deprecation (compare-and-set)
    /// and the holder's notice. Acknowledged only once committed (S-30). If the transaction
    /// fails before its commit (it rolled back), the blob just written is deleted at once.
    ///
    /// A legacy import (LC-8, `legacy`) also records the uniqueId's index (a second import of
    /// it is a [`StoreError::Conflict`]), writes only if the space is still in the state the
    /// decision was made on, and queues no notice.
    pub(super) async fn insert_document(
        &self,
        v: NewVersion<'_>,
        content: Vec<u8>,
    ) -> Result<(), StoreError> {
        let staged = self.stage_document(v.holder, v.id, v.meta, content).await?;
        self.commit_document(v, staged).await
    }

    /// The first half of [`Store::insert_document`]: the metadata sealed and the content sealed
    /// into the blob store (durable on return). Nothing references the blob until
    /// [`Store::commit_document`].
    pub(super) async fn stage_document(
        &self,
        holder: HolderId,
        id: DocumentId,
        meta: &DocumentMeta,
        content: Vec<u8>,
    ) -> Result<StagedBlob, StoreError> {
        let key = self.vault.get(holder).await?;
        let attachment = AttachmentId::new(self.now());
        let sealed_meta = seal_meta(&key, holder, id, meta)?;
        let (hash, sealed_size, sealed_att_meta) = self
            .write_attachment_blob(&key, holder, attachment, &meta.mime, &meta.sha256, content)
            .await?;
        Ok(StagedBlob {
            key,
            attachment,
            sealed_meta,
            hash,
            sealed_size,
            sealed_att_meta,
        })
    }

    /// The second half of [`Store::insert_document`]: the rows and the notice in one group
    /// commit; the staged blob is deleted if they are refused.
    pub(super) async fn commit_document(
        &self,
        v: NewVersion<'_>,
        staged: StagedBlob,
    ) -> Result<(), StoreError> {
        let NewVersion {
            holder,
            id,
            set_id,
            meta,
            replaces,
            notice_due_at,
            legacy,
        } = v;
        let now = self.now();
        let StagedBlob {
            key,
            attachment,
            sealed_meta,
            hash,
            sealed_size,
            sealed_att_meta,
        } = staged;
        // DM-7: the holder is told of a new document (no content in the message); not of each
        // document of their former DMP (LC-8).
        let notify = meta.visible_to_holder(now) && legacy.is_none();
        // The rows and the notice, group-committed with concurrent writes (`combiner`): the
        // closure owns what it writes.
        let (store, meta, replaces) = (self.clone(), meta.clone(), replaces.cloned());
        let legacy = legacy.map(|l| (l.index.to_string(), l.decided_on));
        let blob = hash.clone();
        let written = self
            .write(move |tx| {
                Box::pin(async move {
                    let legacy = legacy.as_ref().map(|(index, decided_on)| LegacyWrite {
                        index,
                        decided_on: *decided_on,
                    });
                    let version = NewVersion {
                        holder,
                        id,
                        set_id,
                        meta: &meta,
                        replaces: replaces.as_ref(),
                        notice_due_at,
                        legacy: legacy.as_ref(),
                    };
                    let sealed = SealedVersion {
                        attachment,
                        hash: &blob,
                        sealed_size,
                        sealed_att_meta: &sealed_att_meta,
                        sealed_meta: &sealed_meta,
                    };
                    let stamp = store.insert_document_rows(tx, version, sealed).await?;
                    if notify {
                        store
                            .enqueue_notice_in_tx(tx, &key, holder, "new_document", now, false)
                            .await?;
                    }
                    Ok((stamp, meta, replaces))
                })
            })
            .await;
        let (stamp, meta, replaces) = match written {
            Ok(w) => w,
            Err(e) => {
                // Refused for what it is (nothing references the blob, sealed with a fresh nonce):
                // the blob goes. After a failed commit it stays (the commit may have happened;
                // gc-blobs collects it if not).
                if matches!(
                    e,
                    StoreError::Conflict | StoreError::NotFound | StoreError::Invalid(_)
                ) {
                    let _ = self.blobs.delete(&hash).await;
                }
                return Err(e);
            }
        };
        // Committed: this server's cached rows of the record, if they were the record just
        // before, become the record now (`doccache`).
        let row = DocRow {
            id,
            set_id,
            status: Status::Approved,
            attachment,
            version: 1,
            meta,
        };
        self.doc_cache.extend(
            holder,
            stamp,
            row.head(),
            Arc::new(row.meta),
            replaces.map(|r| (r.id, r.version)),
        );
        if notify {
            self.wake_delivery();
        }
        Ok(())
    }

    /// Writes the sealed contents of a transaction's documents to the blob store (durable on
    /// return), before its database transaction begins; on an error, the blobs already
    /// written are deleted.
    pub(crate) async fn write_staged_documents(
        &self,
        key: &SecretKey,
        holder: HolderId,
        staged: Vec<StagedDocument>,
    ) -> Result<Vec<WrittenDocument>, StoreError> {
        let now = self.now();
        let mut written = Vec::with_capacity(staged.len());
        for d in staged {
            let attachment = AttachmentId::new(now);
            let one = async {
                let sealed_meta = seal_meta(key, holder, d.id, &d.meta)?;
                let (hash, sealed_size, sealed_att_meta) = self
                    .write_attachment_blob(key, holder, attachment, &d.meta.mime, &d.meta.sha256, d.content)
                    .await?;
                let notice_due = (!d.meta.visible_to_holder(now))
                    .then(|| now.plus_seconds(document::WAITING_NOTICE_SECONDS));
                Ok::<_, StoreError>(WrittenDocument {
                    id: d.id,
                    set_id: d.set_id,
                    replaces: d.replaces,
                    meta: d.meta,
                    attachment,
                    hash,
                    sealed_size,
                    sealed_att_meta,
                    sealed_meta,
                    notice_due,
                })
            }
            .await;
            match one {
                Ok(w) => written.push(w),
                Err(e) => {
                    self.forget_written_documents(&written).await;
                    return Err(e);
                }
            }
        }
        Ok(written)
    }

    /// The rows of a transaction's documents, in its database transaction; gives whether the
    /// holder is to be told (DM-7: one "new document" notice for the lot).
    pub(crate) async fn insert_written_documents(
        &self,
        tx: &mut crate::db::Tx,
        holder: HolderId,
        written: &[WrittenDocument],
    ) -> Result<bool, StoreError> {
        let now = self.now();
        let mut notify = false;
        for d in written {
            let version = NewVersion {
                holder,
                id: d.id,
                set_id: d.set_id,
                meta: &d.meta,
                replaces: d.replaces.as_ref(),
                notice_due_at: d.notice_due,
                legacy: None,
            };
            let sealed = SealedVersion {
                attachment: d.attachment,
                hash: &d.hash,
                sealed_size: d.sealed_size,
                sealed_att_meta: &d.sealed_att_meta,
                sealed_meta: &d.sealed_meta,
            };
            self.insert_document_rows(tx, version, sealed).await?;
            notify |= d.meta.visible_to_holder(now);
        }
        Ok(notify)
    }

    /// Deletes a staged blob no row will reference.
    pub(super) async fn forget_staged(&self, staged: StagedBlob) {
        let _ = self.blobs.delete(&staged.hash).await;
    }

    /// Deletes the blobs of documents whose rows were not committed (sealed with fresh nonces,
    /// nothing else references them); a blob left behind is collected by `gc-blobs`.
    pub(crate) async fn forget_written_documents(&self, written: &[WrittenDocument]) {
        for d in written {
            let _ = self.blobs.delete(&d.hash).await;
        }
    }

    /// The rows of [`Store::insert_document`], in its transaction.
    pub(super) async fn insert_document_rows(
        &self,
        tx: &mut crate::db::Tx,
        v: NewVersion<'_>,
        sealed: SealedVersion<'_>,
    ) -> Result<i64, StoreError> {
        let NewVersion {
            holder,
            id,
            set_id,
            meta,
            replaces,
            notice_due_at,
            legacy,
        } = v;
        let SealedVersion {
            attachment,
            hash,
            sealed_size,
            sealed_att_meta,
            sealed_meta,
        } = sealed;
        let now = self.now();
        if let Some(l) = legacy {
            // Decided and written on the same state: an opposition or a closure that came in
            // between wins (the holder's row is locked until the commit).
            let n = tx
                .execute(
                    Query::new(
                        "UPDATE holders SET updated_at = updated_at WHERE id = $1 AND lifecycle = $2 AND \
                         state_since = $3",
                    )
                    .binds((
                        holder.as_uuid(),
                        l.decided_on.name(),
                        l.decided_on.since().as_micros(),
                    )),
                    "check the space of a legacy document",
                )
                .await?;
            if n != 1 {
                return Err(StoreError::Conflict);
            }
        }
        crate::insert_attachment_row(tx, holder, attachment, now, hash, sealed_size, sealed_att_meta).await?;
        let q = Query::new(
            "INSERT INTO documents (holder_id, id, set_id, status, created_at, visible_from, notice_due_at, \
             attachment_id, meta_sealed, version) VALUES ($1, $2, $3, 'approved', $4, $5, $6, $7, $8, 1)",
        )
        .binds((
            holder.as_uuid(),
            id.as_uuid(),
            set_id.as_uuid(),
            now.as_micros(),
            meta.visible_from.as_micros(),
            notice_due_at.map(|t| t.as_micros()),
            attachment.as_uuid(),
            sealed_meta,
        ));
        tx.execute(q, "insert document")
            .await
            .map_err(crate::not_found_if_foreign_key)?;
        if let Some(old) = replaces {
            let n = tx
                .execute(
                    Query::new(
                        "UPDATE documents SET status = 'deprecated', version = version + 1 WHERE holder_id = \
                         $1 AND id = $2 AND version = $3",
                    )
                    .binds((holder.as_uuid(), old.id.as_uuid(), old.version)),
                    "deprecate document",
                )
                .await?;
            if n != 1 {
                return Err(StoreError::Conflict);
            }
        }
        if let Some(l) = legacy {
            let q = Query::new(
                "INSERT INTO legacy_documents (holder_id, unique_id_index, document_id, imported_at) VALUES \
                 ($1, $2, $3, $4)",
            )
            .binds((holder.as_uuid(), l.index, id.as_uuid(), now.as_micros()));
            tx.execute(q, "record legacy document").await.map_err(|e| {
                if e.is_unique_violation() {
                    StoreError::Conflict // imported meanwhile by another run
                } else {
                    e
                }
            })?;
        }
        self.bump_document_stamp(tx, holder).await
    }

    /// LC-8: the index of a legacy document's uniqueId (HMAC under a vault service key).
    pub(super) async fn legacy_index(&self, unique_id: &str) -> Result<String, StoreError> {
        Ok(self
            .service_keys()
            .await?
            .legacy_index
            .hmac_hex(unique_id.as_bytes()))
    }

    /// LC-8: the document imported for `holder` under this uniqueId index, if any.
    pub(super) async fn legacy_document(
        &self,
        holder: HolderId,
        index: &str,
    ) -> Result<Option<DocumentId>, StoreError> {
        self.db
            .writer()
            .fetch_optional(
                Query::new(
                    "SELECT document_id FROM legacy_documents WHERE holder_id = $1 AND unique_id_index = $2",
                )
                .binds((holder.as_uuid(), index)),
                "find legacy document",
            )
            .await
            .and_then(|r| {
                r.map(|mut r| Ok(DocumentId::from_uuid(r.take::<uuid::Uuid>(0)?)))
                    .transpose()
            })
    }

    /// Rewrites a document's metadata and status, compare-and-set on its version.
    pub(super) async fn update_document(
        &self,
        holder: HolderId,
        row: &DocRow,
        status: Status,
        meta: &DocumentMeta,
        notice: Option<&str>,
    ) -> Result<(), StoreError> {
        let key = self.vault.get(holder).await?;
        let sealed = seal_meta(&key, holder, row.id, meta)?;
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new(
                    "UPDATE documents SET status = $1, meta_sealed = $2, visible_from = $3, notice_due_at = \
                     CASE WHEN $3 <= $4 THEN NULL ELSE notice_due_at END, version = version + 1 WHERE \
                     holder_id = $5 AND id = $6 AND version = $7",
                )
                .binds((
                    status.tag(),
                    &sealed,
                    meta.visible_from.as_micros(),
                    now.as_micros(),
                    holder.as_uuid(),
                    row.id.as_uuid(),
                    row.version,
                )),
                "update document",
            )
            .await?;
        if n != 1 {
            return Err(StoreError::Conflict);
        }
        self.bump_document_stamp(&mut tx, holder).await?;
        if let Some(kind) = notice {
            self.enqueue_notice_in_tx(&mut tx, &key, holder, kind, now, false)
                .await?;
        }
        tx.commit().await?;
        if notice.is_some() {
            self.wake_delivery();
        }
        Ok(())
    }

    /// Deletes a document for everyone (DM-3, DM-4); its traces remain. The blob goes at once
    /// (or with the next orphan collection if that fails).
    pub(super) async fn delete_document(&self, holder: HolderId, row: &DocRow) -> Result<(), StoreError> {
        let hash: Option<String> = self
            .db
            .writer()
            .fetch_optional_as::<String>(
                Query::new("SELECT blob_hash FROM attachments WHERE holder_id = $1 AND id = $2")
                    .binds((holder.as_uuid(), row.attachment.as_uuid())),
                "find document blob",
            )
            .await?;
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new("DELETE FROM documents WHERE holder_id = $1 AND id = $2 AND version = $3")
                    .binds((holder.as_uuid(), row.id.as_uuid(), row.version)),
                "delete document",
            )
            .await?;
        if n != 1 {
            return Err(StoreError::Conflict);
        }
        tx.execute(
            Query::new("DELETE FROM attachments WHERE holder_id = $1 AND id = $2")
                .binds((holder.as_uuid(), row.attachment.as_uuid())),
            "delete document content",
        )
        .await?;
        self.bump_document_stamp(&mut tx, holder).await?;
        tx.commit().await?;
        if let Some(h) = hash.as_deref().and_then(BlobHash::parse) {
            let _ = self.blobs.delete(&h).await;
        }
        Ok(())
    }

    /// DM-6 job: tells holders that a document awaits them (within two weeks of its deposit),
    /// without saying what. Safe on several servers: each notice is claimed by compare-and-set.
    pub async fn run_document_notices(&self, batch: i64) -> Result<u64, StoreError> {
        let now = self.now().as_micros();
        let due: Vec<(uuid::Uuid, uuid::Uuid)> = self
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT holder_id, id FROM documents WHERE notice_due_at IS NOT NULL AND notice_due_at \
                     <= $1 LIMIT $2",
                )
                .binds((now, batch)),
                "find waiting documents",
            )
            .await?;
        let mut sent = 0;
        for (h, id) in due {
            let holder = HolderId::from_uuid(h);
            let key = match self.vault.get(holder).await {
                Ok(k) => k,
                Err(StoreError::Shredded(_)) => continue,
                Err(e) => return Err(e),
            };
            let mut tx = self.db.begin().await?;
            let n = tx
                .execute(
                    Query::new(
                        "UPDATE documents SET notice_due_at = NULL WHERE holder_id = $1 AND id = $2 AND \
                         notice_due_at IS NOT NULL",
                    )
                    .binds((h, id)),
                    "claim waiting-document notice",
                )
                .await?;
            if n == 1 {
                self.enqueue_notice_in_tx(&mut tx, &key, holder, "document_waiting", self.now(), false)
                    .await?;
                sent += 1;
            }
            tx.commit().await?;
        }
        if sent > 0 {
            self.wake_delivery();
        }
        Ok(sent)
    }

    /// Seals and writes an attachment's content to the blob store (durable on return); gives
    /// the blob hash, its size and the sealed attachment metadata for the row.
    pub(crate) async fn write_attachment_blob(
        &self,
        key: &SecretKey,
        holder: HolderId,
        id: AttachmentId,
        content_type: &str,
        sha256: &str,
        content: Vec<u8>,
    ) -> Result<(BlobHash, i64, Vec<u8>), StoreError> {
        let meta = AttachmentMeta {
            content_type: content_type.to_string(),
            size: content.len() as u64,
            sha256: sha256.to_string(),
        };
        let sealed_content = key.seal_owned(
            &item_aad(holder, ItemKind::AttachmentContent, id.as_bytes()),
            content,
        )?;
        let meta_json = serde_json::to_vec(&meta).map_err(|e| StoreError::Integrity(e.to_string()))?;
        let sealed_meta = key.seal(
            &item_aad(holder, ItemKind::AttachmentMeta, id.as_bytes()),
            &meta_json,
        )?;
        let sealed_size = sealed_content.len() as i64;
        let hash = self.blobs.put(Bytes::from(sealed_content)).await?;
        Ok((hash, sealed_size, sealed_meta))
    }
}
