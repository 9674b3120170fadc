//! Depositing, replacing, importing, changing and deleting documents (DM-1..7, MI-2): each
//! decided and traced by the gate before a row is written.

use carnet_domain::access::{
    Action, Actor, Author, Category, Context, ProfessionalId, decide_legacy_import, legacy_import_actor,
};
use carnet_domain::document::{self, DeletionRequest, DocumentMeta, Format, Status};
use carnet_domain::{DocumentId, HolderId};

use crate::error::StoreError;
use crate::gate::{Access, Gate, GateFacts};
use crate::traces::Withheld;

use super::*;

impl Gate {
    /// Loads a document and its space, decides `action` on it, and traces the decision; a
    /// denial (or a missing document) is `NotFound` (AC-8).
    pub(super) async fn decide_on(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        action: Action,
        item: String,
        ctx: &Context,
    ) -> Result<(DocRow, GateFacts), StoreError> {
        // The document and the gate's facts in one statement.
        let (space, raw) = self.space_with(holder, actor, Some(*id.as_uuid())).await?;
        let (space, raw) = (
            space.ok_or(StoreError::NotFound)?,
            raw.ok_or(StoreError::NotFound)?,
        );
        let row = self.store.open_document(holder, id, raw).await?;
        let d = self.decide_in(&space, actor, action, &row.meta.facts(self.store.now()), ctx);
        self.record(
            Access {
                holder,
                actor,
                action,
                item: &item,
                category: Some(row.meta.class),
                withheld: withheld(&row.meta, self.store.now()),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        if !d.allowed {
            return Err(StoreError::NotFound);
        }
        Ok((row, space))
    }

    /// A new document of a transaction (IO-2): its content checked (DM-1), the creation
    /// decided and traced like a deposit; gives it staged, and whether it was allowed.
    pub(crate) async fn stage_document(
        &self,
        holder: HolderId,
        actor: &Actor,
        new: NewDocument,
        content: Vec<u8>,
        space: &GateFacts,
        ctx: &Context,
    ) -> Result<(StagedDocument, bool), StoreError> {
        let (meta, _) = self.prepare(holder, actor, new, &content, None).await?;
        let id = DocumentId::new(self.store.now());
        let allowed = self.decide_creation(holder, actor, id, &meta, space, ctx).await?;
        Ok((
            StagedDocument {
                id,
                set_id: id,
                meta,
                content,
                replaces: None,
            },
            allowed,
        ))
    }

    /// Decides and traces the creation of document `id` described by `meta` (DM-1, AC-6);
    /// gives whether it is allowed.
    pub(super) async fn decide_creation(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        meta: &DocumentMeta,
        space: &GateFacts,
        ctx: &Context,
    ) -> Result<bool, StoreError> {
        let d = self.decide_in(space, actor, Action::Create, &meta.facts(self.store.now()), ctx);
        let item = format!("document/{id}");
        self.record(
            creation(holder, actor, &item, meta, self.store.now()),
            d,
            space,
            ctx,
        )
        .await?;
        Ok(d.allowed)
    }

    /// A new version of a transaction (IO-2, DM-3): decided and traced like
    /// [`Gate::replace_document`] (a refusal is `NotFound`), staged with the version it replaces.
    pub(crate) async fn stage_replacement(
        &self,
        holder: HolderId,
        actor: &Actor,
        old: DocumentId,
        new: NewDocument,
        content: Vec<u8>,
        ctx: &Context,
    ) -> Result<StagedDocument, StoreError> {
        let (row, _) = self
            .decide_on(holder, actor, old, Action::Update, format!("document/{old}"), ctx)
            .await?;
        let (meta, id) = self.replacement_meta(holder, actor, &row, new, &content).await?;
        Ok(StagedDocument {
            id,
            set_id: row.set_id,
            meta,
            content,
            replaces: Some(row),
        })
    }

    /// The metadata and id of a new version replacing `row` (DM-3): flags carry over, and a
    /// version the holder could see never becomes invisible again (DM-6).
    pub(super) async fn replacement_meta(
        &self,
        holder: HolderId,
        actor: &Actor,
        row: &DocRow,
        new: NewDocument,
        content: &[u8],
    ) -> Result<(DocumentMeta, DocumentId), StoreError> {
        if row.status == Status::Deprecated {
            return Err(StoreError::NotFound);
        }
        let now = self.store.now();
        let (mut meta, _) = self.prepare(holder, actor, new, content, Some(&row.meta)).await?;
        meta.replaces = Some(row.id.to_string());
        meta.masked = row.meta.masked;
        meta.hidden_from_representatives |= row.meta.hidden_from_representatives;
        if row.meta.visible_to_holder(now) {
            meta.visible_from = now; // DM-6: never invisible again
        }
        Ok((meta, DocumentId::new(now)))
    }

    /// Deposits a document in `holder`'s record (DM-1, DM-2): checks the content against its
    /// declared type (and reads a CDA header), asks the policy (Create), traces, stores, and
    /// tells the holder (DM-7) unless a professional holds it for an announcement (DM-6).
    /// Bad input is refused before anything is written.
    pub async fn deposit_document(
        &self,
        holder: HolderId,
        actor: &Actor,
        new: NewDocument,
        content: Vec<u8>,
        ctx: &Context,
    ) -> Result<DocumentView, StoreError> {
        let (meta, _) = self.prepare(holder, actor, new, &content, None).await?;
        let id = DocumentId::new(self.store.now());
        let doc = StagedDocument {
            id,
            set_id: id,
            meta,
            content,
            replaces: None,
        };
        self.write_version(holder, actor, doc, ctx).await
    }

    /// DM-3: replaces a document by a new version (author only); the old one becomes
    /// deprecated and stays in the history. Flags of the old version carry over.
    pub async fn replace_document(
        &self,
        holder: HolderId,
        actor: &Actor,
        old: DocumentId,
        new: NewDocument,
        content: Vec<u8>,
        ctx: &Context,
    ) -> Result<DocumentView, StoreError> {
        let d = self
            .stage_replacement(holder, actor, old, new, content, ctx)
            .await?;
        self.write_version(holder, actor, d, ctx).await
    }

    /// Builds the metadata of a new version from what the depositor said and the bytes.
    pub(super) async fn prepare(
        &self,
        holder: HolderId,
        actor: &Actor,
        new: NewDocument,
        content: &[u8],
        previous: Option<&DocumentMeta>,
    ) -> Result<(DocumentMeta, Option<document::CdaHeader>), StoreError> {
        let author = author_of(actor).ok_or(StoreError::NotFound)?;
        // DM-6: only a professional holds a document back from the holder.
        let may_hold = matches!(actor, Actor::Professional { .. });
        // MI-2: set by a professional, or by the holder (not by a representative).
        let may_hide = !matches!(actor, Actor::Representative { .. });
        let depositor = Depositor {
            author,
            may_hold,
            may_hide_from_representatives: may_hide,
        };
        self.build_meta(holder, depositor, new, content, previous).await
    }

    /// The metadata of a new version by `author`: the content checked against its declared
    /// type (DM-1), a CDA header read safely (S-20) and its patient compared with the holder
    /// (AU-2), the declared fields checked. Writes nothing.
    pub(super) async fn build_meta(
        &self,
        holder: HolderId,
        depositor: Depositor,
        new: NewDocument,
        content: &[u8],
        previous: Option<&DocumentMeta>,
    ) -> Result<(DocumentMeta, Option<document::CdaHeader>), StoreError> {
        let Depositor {
            author,
            may_hold,
            may_hide_from_representatives,
        } = depositor;
        let now = self.store.now();
        let format = Format::from_mime(&new.mime)
            .ok_or_else(|| invalid(document::ContentError::Unsupported(new.mime.clone())))?;
        document::check_content(format, content).map_err(invalid)?;
        let cda = if format == Format::Cda {
            let h = document::read_cda_header(content).map_err(invalid)?;
            // AU-2: a document is filed only under the holder's own (qualified) INS.
            if let Some(ins) = &h.patient_ins {
                #[allow(clippy::disallowed_methods)] // the filing's own check (AU-2)
                let record = self.store.holder(holder).await?;
                let admin: serde_json::Value =
                    serde_json::from_slice(&record.administrative).unwrap_or_default();
                if admin.get("ins").and_then(|v| v.as_str()) != Some(ins.as_str()) {
                    return Err(invalid(
                        "le document CDA concerne un autre patient (INS) / the CDA document is about another patient (INS)",
                    ));
                }
            }
            Some(h)
        } else {
            None
        };
        let title = new
            .title
            .filter(|t| !t.trim().is_empty())
            .or_else(|| cda.as_ref().and_then(|h| h.title.clone()))
            .or_else(|| previous.map(|p| p.title.clone()))
            .ok_or_else(|| invalid("un titre est requis / a title is required"))?;
        if title.chars().count() > 300 {
            return Err(invalid(
                "titre trop long (300 caractères au plus) / title too long (300 characters at most)",
            ));
        }
        let class = new
            .class
            .or_else(|| previous.map(|p| p.class))
            .unwrap_or(if author == Author::Holder {
                Category::HolderDocuments
            } else {
                Category::Reports
            });
        // S-3: holders file their own documents under their own class only.
        let class = if author == Author::Holder {
            Category::HolderDocuments
        } else {
            class
        };
        let confidentiality = new
            .confidentiality
            .or_else(|| cda.as_ref().and_then(|h| h.confidentiality.clone()))
            .unwrap_or_else(|| "N".into());
        if !matches!(confidentiality.as_str(), "N" | "R" | "V") {
            return Err(invalid(
                "confidentialité : N, R ou V / confidentiality: N, R or V",
            ));
        }
        let event_date = match new
            .event_date
            .or_else(|| cda.as_ref().and_then(|h| h.effective_time.clone()))
        {
            Some(d) => Some(
                iso_date(&d).ok_or_else(|| invalid("date de l'acte invalide / invalid date of the act"))?,
            ),
            None => None,
        };
        let filename = new
            .filename
            .map(|f| {
                f.rsplit(['/', '\\'])
                    .next()
                    .unwrap_or("")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(200)
                    .collect::<String>()
            })
            .filter(|f| !f.is_empty())
            .unwrap_or_else(|| {
                let ext = match format {
                    Format::Pdf => "pdf",
                    Format::Cda => "xml",
                    Format::Jpeg => "jpg",
                    Format::Png => "png",
                    Format::Text => "txt",
                };
                format!("document.{ext}")
            });
        let hold = new.hold_from_holder && may_hold;
        let meta = DocumentMeta {
            title: title.trim().to_string(),
            class,
            type_code: new
                .type_code
                .or_else(|| cda.as_ref().and_then(|h| h.type_code.clone())),
            type_display: new
                .type_display
                .or_else(|| cda.as_ref().and_then(|h| h.type_display.clone())),
            event_date,
            author,
            author_name: new.author_name,
            organisation: new.organisation,
            uploaded_at: now,
            confidentiality,
            format,
            mime: format.mime().to_string(),
            size: content.len() as u64,
            sha256: crate::crypto::sha256_hex(content),
            filename,
            masked: false,
            hidden_from_representatives: new.hidden_from_representatives && may_hide_from_representatives,
            visible_from: document::visible_from(now, hold),
            replaces: None,
            deletion_request: None,
            legacy_unique_id: None,
            xds: new.xds,
        };
        Ok((meta, cda))
    }

    /// LC-8: files a document of the holder's former DMP in their record, on behalf of the
    /// migration (traced as the operator [`legacy_import_actor`], reason `legacy_import`, AC-6).
    ///
    /// Decided by [`decide_legacy_import`]: only a space that exists and whose holder did not
    /// object receives it; a refusal is [`StoreError::NotFound`], as for any deposit (AC-8).
    /// Then, unless this uniqueId was already imported for this holder (`AlreadyPresent`:
    /// running a manifest again imports nothing twice), the content goes through the same
    /// checks, sealing, durable write and rows as a deposit (DM-1). The document is its
    /// original author's (RPPS and name from the manifest), visible to the holder at once (no
    /// DM-6 hold) and told to nobody: no notice per document. Bad input is refused before
    /// anything is written.
    pub async fn import_legacy_document(
        &self,
        holder: HolderId,
        legacy: LegacyDocument,
        content: Vec<u8>,
    ) -> Result<LegacyOutcome, StoreError> {
        let actor = legacy_import_actor();
        let ctx = Context::default();
        let unique_id = legacy.unique_id.trim().to_string();
        if unique_id.is_empty() || unique_id.len() > 256 || unique_id.chars().any(char::is_control) {
            return Err(invalid("unique_id: 1 to 256 characters, no control character"));
        }
        let rpps = ProfessionalId::from_national_id(&legacy.author_rpps).ok_or_else(|| {
            invalid("author_rpps: an RPPS number has 11 digits (or 12 as a national id starting with 8)")
        })?;
        if legacy.document.author_name.trim().is_empty() {
            return Err(invalid("author_name: the author's name is required"));
        }
        let space = self.space(holder, &actor).await?.ok_or(StoreError::NotFound)?;
        let d = decide_legacy_import(&space.policy.facts(space.lifecycle));
        if !d.allowed {
            self.record(
                Access {
                    holder,
                    actor: &actor,
                    action: Action::Create,
                    item: "document/legacy",
                    category: legacy.document.class,
                    withheld: Withheld::default(),
                },
                d,
                &space,
                &ctx,
            )
            .await?;
            return Err(StoreError::NotFound);
        }
        let index = self.store.legacy_index(&unique_id).await?;
        if let Some(existing) = self.store.legacy_document(holder, &index).await? {
            return Ok(LegacyOutcome::AlreadyPresent(existing));
        }
        let author = Author::Professional { id: rpps };
        let (mut meta, _) = self
            .build_meta(
                holder,
                Depositor {
                    author,
                    may_hold: false,
                    may_hide_from_representatives: false,
                },
                legacy.document,
                &content,
                None,
            )
            .await?;
        let now = self.store.now();
        if let Some(t) = legacy.creation_time {
            meta.uploaded_at = t.min(now);
        }
        meta.legacy_unique_id = Some(unique_id);
        let id = DocumentId::new(now);
        self.record(
            Access {
                holder,
                actor: &actor,
                action: Action::Create,
                item: &format!("document/{id}"),
                category: Some(meta.class),
                withheld: Withheld::default(),
            },
            d,
            &space,
            &ctx,
        )
        .await?;
        let write = LegacyWrite {
            index: &index,
            decided_on: space.lifecycle,
        };
        match self
            .store
            .insert_document(
                NewVersion {
                    holder,
                    id,
                    set_id: id,
                    meta: &meta,
                    replaces: None,
                    notice_due_at: None,
                    legacy: Some(&write),
                },
                content,
            )
            .await
        {
            Ok(()) => Ok(LegacyOutcome::Imported(Box::new(DocumentView {
                id,
                set_id: id,
                status: Status::Approved,
                meta,
            }))),
            // Imported meanwhile by another run, or the space changed since the decision.
            Err(StoreError::Conflict) => match self.store.legacy_document(holder, &index).await? {
                Some(existing) => Ok(LegacyOutcome::AlreadyPresent(existing)),
                None => Err(StoreError::Conflict),
            },
            Err(e) => Err(e),
        }
    }

    pub(super) async fn write_version(
        &self,
        holder: HolderId,
        actor: &Actor,
        doc: StagedDocument,
        ctx: &Context,
    ) -> Result<DocumentView, StoreError> {
        let StagedDocument {
            id,
            set_id,
            meta,
            content,
            replaces,
        } = doc;
        let replaces = replaces.as_ref();
        let now = self.store.now();
        let notice_due =
            (!meta.visible_to_holder(now)).then(|| now.plus_seconds(document::WAITING_NOTICE_SECONDS));
        if replaces.is_some() {
            // A new version was decided and traced as an update of the one it replaces
            // (`decide_on`).
            self.store
                .insert_document(
                    NewVersion {
                        holder,
                        id,
                        set_id,
                        meta: &meta,
                        replaces,
                        notice_due_at: notice_due,
                        legacy: None,
                    },
                    content,
                )
                .await?;
        } else {
            let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
            let d = self.decide_in(&space, actor, Action::Create, &meta.facts(now), ctx);
            let item = format!("document/{id}");
            if !d.allowed {
                self.record(creation(holder, actor, &item, &meta, now), d, &space, ctx)
                    .await?;
                return Err(StoreError::NotFound);
            }
            // Allowed: the trace and the sealed content are made durable at once (the trace
            // appender's commit and the blob's fsyncs overlap); the rows commit only once both
            // are, so no document exists without the trace of its creation.
            let (traced, staged) = tokio::join!(
                self.record(creation(holder, actor, &item, &meta, now), d, &space, ctx),
                self.store.stage_document(holder, id, &meta, content)
            );
            let staged = match (traced, staged) {
                (Ok(()), Ok(staged)) => staged,
                (Err(e), Ok(staged)) => {
                    self.store.forget_staged(staged).await;
                    return Err(e);
                }
                (_, Err(e)) => return Err(e),
            };
            self.store
                .commit_document(
                    NewVersion {
                        holder,
                        id,
                        set_id,
                        meta: &meta,
                        replaces: None,
                        notice_due_at: notice_due,
                        legacy: None,
                    },
                    staged,
                )
                .await?;
        }
        Ok(DocumentView {
            id,
            set_id,
            status: Status::Approved,
            meta,
        })
    }

    /// Applies a change to a document, if the caller may make it (see [`DocumentChange`]).
    pub async fn change_document(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        change: DocumentChange,
        ctx: &Context,
    ) -> Result<Option<DocumentView>, StoreError> {
        let row = self
            .store
            .document_row(holder, id)
            .await?
            .ok_or(StoreError::NotFound)?;
        let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
        let now = self.store.now();
        let facts = row.meta.facts(now);
        let read = self.decide_in(&space, actor, Action::Read, &facts, ctx);
        let holder_itself = matches!(actor, Actor::Holder { .. });
        // Holder-side rights on any document they see (DM-4, DM-5, MI-2) are decided as a read
        // plus who they are; the author's rights (DM-3, DM-6) as an update or a deletion.
        let (action, d) = match &change {
            DocumentChange::Mask(_) | DocumentChange::RequestDeletion(_) if is_holder_side(actor) => {
                (Action::Update, read)
            }
            DocumentChange::HideFromRepresentatives(_) if holder_itself => (Action::Update, read),
            DocumentChange::AnswerDeletion(true) => (
                Action::Delete,
                self.decide_in(&space, actor, Action::Delete, &facts, ctx),
            ),
            DocumentChange::Mask(_) | DocumentChange::RequestDeletion(_) => {
                (Action::Update, deny_not_author())
            }
            _ if row.meta.author == Author::Holder => (Action::Update, deny_not_author()),
            _ => (
                Action::Update,
                self.decide_in(&space, actor, Action::Update, &facts, ctx),
            ),
        };
        self.record(
            Access {
                holder,
                actor,
                action,
                item: &format!("document/{id}"),
                category: Some(row.meta.class),
                withheld: withheld(&row.meta, self.store.now()),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        if !d.allowed || row.status == Status::Deprecated {
            return Err(StoreError::NotFound);
        }
        let mut meta = row.meta.clone();
        let mut status = row.status;
        let mut notice = None;
        match change {
            DocumentChange::Mask(m) => meta.masked = m,
            DocumentChange::HideFromRepresentatives(h) => meta.hidden_from_representatives = h,
            DocumentChange::MakeVisible => {
                if meta.visible_to_holder(now) {
                    return Ok(Some(row.view()));
                }
                meta.visible_from = now;
                notice = Some("new_document");
            }
            DocumentChange::Archive => status = Status::Archived,
            DocumentChange::Unarchive => status = Status::Approved,
            DocumentChange::RequestDeletion(reason) => {
                if row.meta.author == Author::Holder {
                    return Err(invalid(
                        "supprimez directement vos propres documents / delete your own documents directly",
                    ));
                }
                let reason = reason.trim().to_string();
                if reason.is_empty() || reason.chars().count() > 1000 {
                    return Err(invalid(
                        "un motif (1000 caractères au plus) est requis / a reason (at most 1000 characters) is required",
                    ));
                }
                meta.deletion_request = Some(DeletionRequest {
                    reason,
                    at: now,
                    accepted: None,
                });
                if let Author::Professional { id: rpps } = &row.meta.author {
                    self.store
                        .notify_professional(&rpps.0, "deletion_request", holder, None)
                        .await?;
                }
            }
            DocumentChange::AnswerDeletion(accept) => {
                if meta
                    .deletion_request
                    .as_ref()
                    .is_none_or(|r| r.accepted.is_some())
                {
                    return Err(invalid(
                        "aucune demande de suppression en attente / no pending deletion request",
                    ));
                }
                if accept {
                    self.store.delete_document(holder, &row).await?;
                    return Ok(None);
                }
                if let Some(r) = &mut meta.deletion_request {
                    r.accepted = Some(false);
                }
                notice = Some("deletion_refused");
            }
        }
        self.store
            .update_document(holder, &row, status, &meta, notice)
            .await?;
        Ok(Some(DocumentView {
            id: row.id,
            set_id: row.set_id,
            status,
            meta,
        }))
    }

    /// Deletes a document for everyone (its author, or the holder for what they added: DM-3,
    /// DM-4). The trace of the deletion remains.
    pub async fn delete_document(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: DocumentId,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        let (row, _) = self
            .decide_on(holder, actor, id, Action::Delete, format!("document/{id}"), ctx)
            .await?;
        self.store.delete_document(holder, &row).await
    }
}

/// Who deposits a version, and what they may ask of it.
pub(super) struct Depositor {
    pub(super) author: Author,
    /// DM-6: a professional may keep a document from the holder until an announcement.
    pub(super) may_hold: bool,
    /// MI-2: the holder or a professional may hide it from the legal representatives.
    pub(super) may_hide_from_representatives: bool,
}

/// What is traced of creating document `item` described by `meta` (DM-1, AC-6).
fn creation<'a>(
    holder: HolderId,
    actor: &'a Actor,
    item: &'a str,
    meta: &DocumentMeta,
    now: Timestamp,
) -> Access<'a> {
    Access {
        holder,
        actor,
        action: Action::Create,
        item,
        category: Some(meta.class),
        withheld: withheld(meta, now),
    }
}
