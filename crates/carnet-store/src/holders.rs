//! Holders' spaces: creation, lifecycle transitions (LC-1..7) with compare-and-set, the
//! background transitions (end of the opposition window, end of the archive period,
//! majority), the INS blind index, and erasure by crypto-shredding.

use carnet_domain::lifecycle::{ERASURE_GRACE_SECONDS, Event, Lifecycle};
use carnet_domain::{HolderId, Ins, ItemKind, Timestamp};

use crate::crypto::item_aad;
use crate::db::query::Query;
use crate::error::StoreError;
use crate::outbox::{Channel, OutboxMessage, SUSPENSION_CLOSED};
use crate::{BlobHash, HolderRecord, Store};
use crate::{Contact, PersonName};

/// How many times a transition is retried when another request changed the space meanwhile.
const CAS_RETRIES: usize = 5;

/// What the background lifecycle job did in one pass.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JobReport {
    pub opened: u64,
    /// LC-5b: suspended spaces closed after six weeks without objection.
    pub closed: u64,
    pub erased: u64,
    pub came_of_age: u64,
}

fn due_at(l: &Lifecycle) -> Option<i64> {
    match l {
        // An erased row is due until its erasure has been carried out (then set to NULL).
        Lifecycle::Erased { at } => Some(at.as_micros()),
        other => other.deadline().map(|(t, _)| t.as_micros()),
    }
}

/// Every way of logging in as a holder, and every session open in their space (LC-7, MI-3):
/// statements on `$1`, the holder, run in one transaction. A representative's session that
/// had switched into the space goes back to their own.
pub(crate) const CREDENTIALS_OF_HOLDER: [&str; 8] = [
    "DELETE FROM credentials WHERE holder_id = $1",
    "DELETE FROM sessions WHERE holder_id = $1",
    "UPDATE sessions SET acting_for = holder_id WHERE acting_for = $1",
    "DELETE FROM known_devices WHERE holder_id = $1",
    "DELETE FROM login_challenges WHERE holder_id = $1",
    "DELETE FROM oidc_links WHERE holder_id = $1",
    "DELETE FROM passkeys WHERE holder_id = $1",
    "DELETE FROM webauthn_challenges WHERE holder_id = $1",
];

impl Store {
    /// HMAC of an INS under the vault's index key: equal INS, equal index; no INS in clear.
    pub async fn ins_index(&self, ins: &Ins) -> Result<String, StoreError> {
        Ok(self
            .service_keys()
            .await?
            .ins_index
            .hmac_hex(ins.as_str().as_bytes()))
    }

    pub(crate) async fn activation_code_hmac(&self, code: &str) -> Result<String, StoreError> {
        Ok(self
            .service_keys()
            .await?
            .activation_code
            .hmac_hex(code.as_bytes()))
    }

    /// Creates a holder's space in state `lifecycle` (started now) with administrative data.
    /// (Key first: a crash in between leaves an unused key, never an unreadable row.)
    pub async fn create_holder(
        &self,
        lifecycle: &str,
        administrative: &[u8],
    ) -> Result<HolderId, StoreError> {
        let now = self.now();
        let state = Lifecycle::from_parts(lifecycle, now)
            .ok_or_else(|| StoreError::Config(format!("unknown lifecycle state {lifecycle}")))?;
        let id = HolderId::new(now);
        let key = self.vault.create(id, now).await?;
        let sealed = key.seal(
            &item_aad(id, ItemKind::Administrative, id.as_bytes()),
            administrative,
        )?;
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO holders (id, lifecycle, created_at, updated_at, admin_sealed, state_since, \
                 due_at) VALUES ($1, $2, $3, $3, $4, $3, $5)",
            )
            .binds((
                id.as_uuid(),
                state.name(),
                now.as_micros(),
                &sealed,
                due_at(&state),
            )),
            "insert holder",
        )
        .await?;
        tx.commit().await?;
        Ok(id)
    }

    /// The lifecycle state of a space, without opening anything.
    pub async fn lifecycle(&self, id: HolderId) -> Result<Lifecycle, StoreError> {
        // On every holder's request (the session check): a point read.
        let mut row = self
            .db
            .fetch_optional(
                Query::new("SELECT lifecycle, state_since FROM holders WHERE id = $1").bind(*id.as_uuid()),
                "read lifecycle",
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let (name, since): (String, i64) = (row.take(0)?, row.take(1)?);
        Lifecycle::from_parts(&name, Timestamp::from_micros(since))
            .ok_or_else(|| StoreError::Integrity(format!("unknown lifecycle state {name}")))
    }

    /// Where the system's own messages to the holder go (login codes, letters, notices): the
    /// e-mail, phone and postal address of their administrative data. Not a read of the
    /// space: nothing else of it leaves.
    pub async fn contact(&self, id: HolderId) -> Result<Contact, StoreError> {
        #[allow(clippy::disallowed_methods)]
        let h = self.holder(id).await?;
        let admin: serde_json::Value = serde_json::from_slice(&h.administrative).unwrap_or_default();
        let field = |k: &str| admin.get(k).and_then(|v| v.as_str()).map(str::to_string);
        Ok(Contact {
            email: field("email"),
            phone: field("phone"),
            address: field("address"),
        })
    }

    /// Whom a letter by post goes to (LC-2): the holder's name and postal address, and whether
    /// they are a minor today — then the letter is for their legal representatives. Not a read
    /// of the space: nothing else of it leaves.
    pub async fn postal_recipient(&self, id: HolderId) -> Result<crate::PostalRecipient, StoreError> {
        #[allow(clippy::disallowed_methods)]
        let h = self.holder(id).await?;
        let admin: serde_json::Value = serde_json::from_slice(&h.administrative).unwrap_or_default();
        let minor = admin
            .get("birth_date")
            .and_then(|v| v.as_str())
            .and_then(|d| {
                time::Date::parse(d, time::macros::format_description!("[year]-[month]-[day]")).ok()
            })
            .is_some_and(|d| carnet_domain::lifecycle::is_minor(d, self.now()));
        Ok(crate::PostalRecipient {
            name: name_of(&admin),
            address: admin.get("address").and_then(|v| v.as_str()).map(str::to_string),
            minor,
        })
    }

    /// A second proof of identity (AU-1: a forgotten password): whether `date` is the
    /// holder's birth date. Answers yes or no; nothing of the space leaves.
    pub async fn birth_date_is(&self, id: HolderId, date: time::Date) -> Result<bool, StoreError> {
        #[allow(clippy::disallowed_methods)]
        let h = self.holder(id).await?;
        let admin: serde_json::Value = serde_json::from_slice(&h.administrative).unwrap_or_default();
        let wanted = format!(
            "{:04}-{:02}-{:02}",
            date.year(),
            u8::from(date.month()),
            date.day()
        );
        Ok(admin.get("birth_date").and_then(|v| v.as_str()) == Some(wanted.as_str()))
    }

    /// How a person is named to those who share their spaces (a representative's name in
    /// the represented person's history, a child's name in the parent's list of spaces):
    /// the first given name and the used (else birth) name.
    pub async fn person_name(&self, id: HolderId) -> Result<PersonName, StoreError> {
        #[allow(clippy::disallowed_methods)]
        let h = self.holder(id).await?;
        let admin: serde_json::Value = serde_json::from_slice(&h.administrative).unwrap_or_default();
        Ok(name_of(&admin))
    }

    /// Reads a holder's space, administrative data opened; [`StoreError::NotFound`] if there
    /// is none or it was erased. Outside this crate, holder data goes through the gate
    /// (`Gate::read_administrative`, `Gate::operator_support_read`): `clippy.toml` refuses
    /// this method to every other crate's code (S-1), the storage tests aside.
    pub async fn holder(&self, id: HolderId) -> Result<HolderRecord, StoreError> {
        let mut row = self
            .db
            .fetch_optional(
                Query::new(
                    "SELECT lifecycle, created_at, updated_at, admin_sealed, state_since FROM holders WHERE \
                     id = $1",
                )
                .bind(*id.as_uuid()),
                "read holder",
            )
            .await?
            .ok_or(StoreError::NotFound)?;
        let (name, created, updated, sealed, since): (String, i64, i64, Vec<u8>, i64) = (
            row.take(0)?,
            row.take(1)?,
            row.take(2)?,
            row.take(3)?,
            row.take(4)?,
        );
        let lifecycle = Lifecycle::from_parts(&name, Timestamp::from_micros(since))
            .ok_or_else(|| StoreError::Integrity(format!("unknown lifecycle state {name}")))?;
        if matches!(lifecycle, Lifecycle::Erased { .. }) {
            return Err(StoreError::NotFound);
        }
        let key = self.vault.get(id).await?;
        let administrative = key.open(&item_aad(id, ItemKind::Administrative, id.as_bytes()), &sealed)?;
        Ok(HolderRecord {
            id,
            lifecycle,
            created_at: Timestamp::from_micros(created),
            updated_at: Timestamp::from_micros(updated),
            administrative,
        })
    }

    /// Replaces a holder's administrative data (contact rectification, ID-2).
    pub(crate) async fn update_administrative(
        &self,
        id: HolderId,
        administrative: &[u8],
    ) -> Result<(), StoreError> {
        let key = self.vault.get(id).await?;
        let sealed = key.seal(
            &item_aad(id, ItemKind::Administrative, id.as_bytes()),
            administrative,
        )?;
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new(
                    "UPDATE holders SET admin_sealed = $1, updated_at = $2 WHERE id = $3 AND lifecycle <> \
                     'erased'",
                )
                .binds((&sealed, self.now().as_micros(), id.as_uuid())),
                "update administrative data",
            )
            .await?;
        tx.commit().await?;
        if n == 1 { Ok(()) } else { Err(StoreError::NotFound) }
    }

    /// The holder whose INS this is, if any (erased tombstones included).
    pub async fn find_by_ins(&self, ins: &Ins) -> Result<Option<HolderId>, StoreError> {
        let idx = self.ins_index(ins).await?;
        self.db
            .fetch_optional(
                Query::new("SELECT id FROM holders WHERE ins_index = $1").bind(&idx),
                "find holder by INS",
            )
            .await
            .and_then(|r| {
                r.map(|mut r| Ok(HolderId::from_uuid(r.take::<uuid::Uuid>(0)?)))
                    .transpose()
            })
    }

    /// Applies a lifecycle event now. Compare-and-set on (state, since): a concurrent change
    /// makes this re-read and re-decide, so two servers never apply one event twice. Reaching
    /// `Erased` destroys the holder's key at once (LC-7).
    pub async fn transition(&self, id: HolderId, event: Event) -> Result<Lifecycle, StoreError> {
        for _ in 0..CAS_RETRIES {
            let current = self.lifecycle(id).await?;
            let next = current.apply(event, self.now())?;
            if self.compare_and_set(id, current, next).await? {
                if matches!(next, Lifecycle::Erased { .. }) {
                    self.finish_erasure(id).await?;
                }
                return Ok(next);
            }
        }
        Err(StoreError::Conflict)
    }

    /// Applies a lifecycle event now and queues the message telling the holder, in one
    /// transaction: the change is never made without its notice, nor the notice sent without
    /// the change (LC-5b). `message` builds the notice from the new state.
    pub async fn transition_notified(
        &self,
        id: HolderId,
        event: Event,
        message: impl Fn(Lifecycle) -> OutboxMessage,
    ) -> Result<Lifecycle, StoreError> {
        let key = self.vault.get(id).await?;
        for _ in 0..CAS_RETRIES {
            let current = self.lifecycle(id).await?;
            let next = current.apply(event, self.now())?;
            let mut tx = self.db.begin().await?;
            if !self.compare_and_set_in_tx(&mut tx, id, current, next).await? {
                continue;
            }
            if let Lifecycle::Suspended { at } = next {
                // LC-5b: the sessions open now end for good; lifting the suspension later
                // does not bring them back (they may be the fraud's).
                tx.execute(
                    Query::new(crate::auth::REVOKE_SESSIONS_OF_HOLDER).binds((at.as_micros(), id.as_uuid())),
                    "end the sessions of a suspended space",
                )
                .await?;
            }
            self.enqueue_in_tx(&mut tx, &key, &message(next), self.now())
                .await?;
            tx.commit().await?;
            self.wake_delivery();
            return Ok(next);
        }
        Err(StoreError::Conflict)
    }

    async fn compare_and_set(
        &self,
        id: HolderId,
        from: Lifecycle,
        to: Lifecycle,
    ) -> Result<bool, StoreError> {
        let mut tx = self.db.begin().await?;
        let changed = self.compare_and_set_in_tx(&mut tx, id, from, to).await?;
        tx.commit().await?;
        Ok(changed)
    }

    async fn compare_and_set_in_tx(
        &self,
        tx: &mut crate::db::Tx,
        id: HolderId,
        from: Lifecycle,
        to: Lifecycle,
    ) -> Result<bool, StoreError> {
        let n = tx
            .execute(
                Query::new(
                    "UPDATE holders SET lifecycle = $1, state_since = $2, due_at = $3, updated_at = $2, \
                     erase_requested_at = NULL WHERE id = $4 AND lifecycle = $5 AND state_since = $6",
                )
                .binds((
                    to.name(),
                    to.since().as_micros(),
                    due_at(&to),
                    id.as_uuid(),
                    from.name(),
                    from.since().as_micros(),
                )),
                "update lifecycle",
            )
            .await?;
        Ok(n == 1)
    }

    /// Erases a holder for good (LC-7): the data key is destroyed first (from then on nothing
    /// of theirs can be opened, in this database, its blobs or any backup of them), then rows
    /// and blobs are deleted. A tombstone keeps only the state and the INS blind index, so a
    /// later roster import does not silently re-create the space. Idempotent.
    pub async fn erase_holder(&self, holder: HolderId) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "UPDATE holders SET lifecycle = 'erased', state_since = $1, due_at = $1, updated_at = $1 \
                 WHERE id = $2 AND lifecycle <> 'erased'",
            )
            .binds((now.as_micros(), holder.as_uuid())),
            "mark erased",
        )
        .await?;
        tx.commit().await?;
        self.finish_erasure(holder).await
    }

    /// Carries out the erasure of a space already marked erased. Safe to repeat.
    async fn finish_erasure(&self, holder: HolderId) -> Result<(), StoreError> {
        self.vault.destroy(holder).await?;
        let hashes: Vec<String> = self
            .db
            .writer()
            .fetch_all_as::<String>(
                Query::new("SELECT blob_hash FROM attachments WHERE holder_id = $1").bind(holder.as_uuid()),
                "list blobs to erase",
            )
            .await?;
        // The traces first, in a transaction of their own: on SQLite they live in a file of
        // their own (`db::AUDIT_SCHEMA`), and a transaction over two WAL files is not atomic
        // across a crash. Interrupted after this one, the space is still due (`due_at`), so the
        // lifecycle job finishes the rest.
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new("DELETE FROM traces WHERE holder_id = $1").bind(holder.as_uuid()),
            "erase holder traces",
        )
        .await?;
        tx.commit().await?;
        self.trace_heads.forget(&[holder]);
        let mut tx = self.db.begin().await?;
        for sql in [
            "DELETE FROM documents WHERE holder_id = $1",
            "DELETE FROM profile_entries WHERE holder_id = $1",
            "DELETE FROM measurements WHERE holder_id = $1",
            "DELETE FROM messages WHERE holder_id = $1",
            "DELETE FROM conversations WHERE holder_id = $1",
            "DELETE FROM agenda_events WHERE holder_id = $1",
            "DELETE FROM agenda_feeds WHERE holder_id = $1 OR created_by = $1",
            "DELETE FROM attachments WHERE holder_id = $1",
            "DELETE FROM legacy_documents WHERE holder_id = $1",
            "DELETE FROM reimbursements WHERE holder_id = $1",
            "DELETE FROM oauth_codes WHERE holder_id = $1 OR subject_id = $1",
            "DELETE FROM oauth_tokens WHERE holder_id = $1 OR subject_id = $1",
            "DELETE FROM emergency_accesses WHERE holder_id = $1",
            "DELETE FROM pro_notices WHERE holder_id = $1",
            "DELETE FROM pro_patients WHERE holder_id = $1",
            "DELETE FROM pro_grants WHERE holder_id = $1",
            "DELETE FROM outbox WHERE holder_id = $1 AND kind <> 'erasure_done'",
            "DELETE FROM notification_preferences WHERE holder_id = $1",
            "DELETE FROM representatives WHERE holder_id = $1 OR representative_id = $1",
            "DELETE FROM carers WHERE holder_id = $1 OR carer_id = $1",
            "DELETE FROM carer_invitations WHERE holder_id = $1",
            "DELETE FROM access_policies WHERE holder_id = $1",
            // Moved, not deleted: a server's rows cached under the stamp before are stale.
            "INSERT INTO document_stamps (holder_id, stamp) VALUES ($1, 1) \
             ON CONFLICT (holder_id) DO UPDATE SET stamp = document_stamps.stamp + 1",
            "UPDATE holders SET admin_sealed = $2, majority_at = NULL, activation_code_hmac = NULL, \
             activation_code_expires_at = NULL, due_at = NULL WHERE id = $1",
        ]
        .into_iter()
        .chain(CREDENTIALS_OF_HOLDER)
        {
            let q = Query::new(sql).bind(holder.as_uuid());
            let q = if sql.contains("$2") {
                q.bind(Vec::<u8>::new())
            } else {
                q
            };
            tx.execute(q, "erase holder rows").await?;
        }
        tx.commit().await?;
        self.trace_heads.forget(&[holder]);
        self.doc_cache.forget(holder);
        for h in hashes.iter().filter_map(|h| BlobHash::parse(h)) {
            self.blobs.delete(&h).await?;
        }
        Ok(())
    }

    /// One pass of the lifecycle job: applies every automatic transition that is due (opens
    /// spaces whose opposition window ended, erases archives older than 10 years, finishes
    /// interrupted erasures) and handles majority. Safe on several servers at once: each
    /// change is a compare-and-set, the loser skips.
    pub async fn run_lifecycle_job(&self, batch: i64) -> Result<JobReport, StoreError> {
        let mut report = JobReport::default();
        let now = self.now();
        let due: Vec<(uuid::Uuid, String, i64, Option<i64>)> = self
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT id, lifecycle, state_since, erase_requested_at FROM holders WHERE due_at IS NOT \
                     NULL AND due_at <= $1 ORDER BY due_at LIMIT $2",
                )
                .binds((now.as_micros(), batch)),
                "read due transitions",
            )
            .await?;
        for (id, name, since, erase_requested) in due {
            let id = HolderId::from_uuid(id);
            let Some(state) = Lifecycle::from_parts(&name, Timestamp::from_micros(since)) else {
                continue;
            };
            if let Lifecycle::Erased { .. } = state {
                self.finish_erasure(id).await?;
                report.erased += 1;
                continue;
            }
            // LC-5: erased on the holder's express request, once its grace period is over.
            if let (Lifecycle::Closed { .. }, Some(asked)) = (state, erase_requested)
                && now.as_micros() >= asked.saturating_add(ERASURE_GRACE_SECONDS * 1_000_000)
            {
                if self.erase_on_request(id, state, now).await? {
                    report.erased += 1;
                }
                continue;
            }
            let Some((_, event)) = state.deadline() else {
                continue;
            };
            let Ok(next) = state.apply(event, now) else {
                continue;
            };
            // The holder is told in the transaction that changes the state: the opening
            // (LC-4), or the closure of a suspension nobody objected to (LC-5b).
            let notice = match next {
                Lifecycle::Open { .. } => Some(OutboxMessage::new(
                    id,
                    "space_opened",
                    Channel::Email,
                    b"{}".to_vec(),
                )),
                Lifecycle::Closed { .. } => {
                    let channel = self.letter_channel(id).await?;
                    Some(OutboxMessage::new(id, SUSPENSION_CLOSED, channel, b"{}".to_vec()))
                }
                _ => None,
            };
            let mut tx = self.db.begin().await?;
            if !self.compare_and_set_in_tx(&mut tx, id, state, next).await? {
                continue; // another server did it
            }
            if let Some(msg) = &notice {
                let key = self.vault.get(id).await?;
                self.enqueue_in_tx(&mut tx, &key, msg, now).await?;
            }
            tx.commit().await?;
            match next {
                Lifecycle::Open { .. } => report.opened += 1,
                Lifecycle::Closed { .. } => report.closed += 1,
                Lifecycle::Erased { .. } => {
                    self.finish_erasure(id).await?;
                    report.erased += 1;
                }
                _ => {}
            }
        }
        report.came_of_age = self.run_majority(now, batch).await?;
        Ok(report)
    }

    /// LC-5b: the holder objects to the closure of their suspended space, having proved who
    /// they are (password and code): the closure is off, the space stays suspended until the
    /// operator decides, and a receipt is queued with the change.
    pub async fn contest_suspension(&self, holder: HolderId) -> Result<Timestamp, StoreError> {
        let channel = self.letter_channel(holder).await?;
        let next = self
            .transition_notified(holder, Event::ContestSuspension, |next| {
                let payload = serde_json::json!({ "recorded_at": next.since().to_rfc3339() });
                OutboxMessage::new(
                    holder,
                    crate::outbox::SUSPENSION_CONTESTED,
                    channel,
                    payload.to_string().into_bytes(),
                )
            })
            .await?;
        Ok(next.since())
    }

    /// LC-5: the holder (or a representative) of a closed space asks for its deletion: it is
    /// erased [`ERASURE_GRACE_SECONDS`] later by the lifecycle job, unless reopened meanwhile
    /// (any change of state cancels the request). The holder is told by the channel on file.
    /// When. [`StoreError::Invalid`] if the space is not closed.
    pub async fn request_erasure(&self, holder: HolderId) -> Result<Timestamp, StoreError> {
        let now = self.now();
        let when = now.plus_seconds(ERASURE_GRACE_SECONDS);
        let key = self.vault.get(holder).await?;
        let channel = self.letter_channel(holder).await?;
        let payload = serde_json::json!({ "erased_on": when.to_rfc3339() });
        let msg = OutboxMessage::new(
            holder,
            "erasure_requested",
            channel,
            payload.to_string().into_bytes(),
        );
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new(
                    "UPDATE holders SET erase_requested_at = $1, due_at = $2, updated_at = $1 WHERE id = $3 \
                     AND lifecycle = 'closed'",
                )
                .binds((now.as_micros(), when.as_micros(), holder.as_uuid())),
                "request erasure",
            )
            .await?;
        if n != 1 {
            return Err(StoreError::Invalid(
                "seul un espace fermé peut être supprimé / only a closed space can be erased".into(),
            ));
        }
        self.enqueue_in_tx(&mut tx, &key, &msg, now).await?;
        tx.commit().await?;
        Ok(when)
    }

    /// Erases a closed space on request (LC-5): the notice that it is done is queued with the
    /// change of state (sealed with a service key: the holder's is about to go), then the
    /// erasure is carried out. Whether this server did it.
    async fn erase_on_request(
        &self,
        id: HolderId,
        closed: Lifecycle,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let Ok(erased) = closed.apply(Event::EraseOnRequest, now) else {
            return Ok(false);
        };
        let channel = self.letter_channel(id).await?;
        let contact = self.contact(id).await?;
        let payload = serde_json::json!({ "email": contact.email, "address": contact.address });
        let msg = OutboxMessage::new(
            id,
            crate::outbox::ERASURE_DONE,
            channel,
            payload.to_string().into_bytes(),
        );
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new(
                    "UPDATE holders SET lifecycle = $1, state_since = $2, due_at = $2, updated_at = $2, \
                     erase_requested_at = NULL WHERE id = $3 AND lifecycle = $4 AND state_since = $5 AND \
                     erase_requested_at IS NOT NULL",
                )
                .binds((
                    erased.name(),
                    now.as_micros(),
                    id.as_uuid(),
                    closed.name(),
                    closed.since().as_micros(),
                )),
                "erase on request",
            )
            .await?;
        if n != 1 {
            return Ok(false); // another server did it, or the space was reopened
        }
        self.enqueue_after_erasure_in_tx(&mut tx, &msg, now).await?;
        tx.commit().await?;
        self.finish_erasure(id).await?;
        Ok(true)
    }

    /// MI-3: at 18 the representatives' access ends and the new adult is informed and asked
    /// to set their own credentials.
    async fn run_majority(&self, now: Timestamp, batch: i64) -> Result<u64, StoreError> {
        let due: Vec<(uuid::Uuid, i64)> = self
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT id, majority_at FROM holders WHERE majority_at IS NOT NULL AND majority_at <= $1 \
                     ORDER BY majority_at LIMIT $2",
                )
                .binds((now.as_micros(), batch)),
                "read majorities",
            )
            .await?;
        let mut n = 0;
        for (id, at) in due {
            let holder = HolderId::from_uuid(id);
            let key = match self.vault.get(holder).await {
                Ok(k) => k,
                Err(StoreError::Shredded(_)) => continue,
                Err(e) => return Err(e),
            };
            // The new adult sets their own credentials with a fresh provisional code (MI-3).
            let code = crate::roster::new_activation_code()?;
            let code_hmac = self.activation_code_hmac(&code).await?;
            let expires = carnet_domain::lifecycle::opposition_window_end(now);
            let channel = self.letter_channel(holder).await?;
            let payload = serde_json::json!({ "activation_code": code, "valid_until": expires.to_rfc3339() });
            let msg = OutboxMessage::new(holder, "majority", channel, payload.to_string().into_bytes());
            let mut tx = self.db.begin().await?;
            let won = tx
                .execute(
                    Query::new(
                        "UPDATE holders SET majority_at = NULL, activation_code_hmac = $3, \
                         activation_code_expires_at = $4 WHERE id = $1 AND majority_at = $2",
                    )
                    .binds((id, at, &code_hmac, expires.as_micros())),
                    "record majority",
                )
                .await?;
            if won != 1 {
                continue;
            }
            tx.execute(
                Query::new(
                    "UPDATE representatives SET until_at = $1 WHERE holder_id = $2 AND kind = 'parent' AND \
                     (until_at IS NULL OR until_at > $1)",
                )
                .binds((now.as_micros(), id)),
                "end representation",
            )
            .await?;
            // The space is the new adult's alone: whatever was set up on it while a minor
            // (credentials, sessions, devices, apps connected by a parent) ends here; they take
            // it over with the fresh code (`Store::activate`).
            for sql in CREDENTIALS_OF_HOLDER.into_iter().chain([
                "DELETE FROM oauth_tokens WHERE holder_id = $1 AND subject_id <> $1",
                "DELETE FROM oauth_codes WHERE holder_id = $1 AND subject_id <> $1",
            ]) {
                tx.execute(Query::new(sql).bind(id), "end a minor's credentials")
                    .await?;
            }
            self.enqueue_in_tx(&mut tx, &key, &msg, now).await?;
            tx.commit().await?;
            n += 1;
        }
        Ok(n)
    }

    /// How a letter reaches the holder (LC-2): by e-mail when one is on file, else by post.
    pub(crate) async fn letter_channel(&self, holder: HolderId) -> Result<Channel, StoreError> {
        Ok(if self.contact(holder).await?.email.is_some() {
            Channel::Email
        } else {
            Channel::Post
        })
    }

    /// Links a legal representative (MI-1, MI-4) or a carer (MI-5) to a holder.
    pub async fn link_representative(
        &self,
        holder: HolderId,
        representative: HolderId,
        kind: &str,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        let q = Query::new(
            "INSERT INTO representatives (holder_id, representative_id, kind, since) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (holder_id, representative_id) DO NOTHING",
        )
        .binds((holder.as_uuid(), representative.as_uuid(), kind, now.as_micros()));
        tx.execute(q, "link representative")
            .await
            .map_err(crate::not_found_if_foreign_key)?;
        tx.commit().await
    }

    /// Whether `who` currently represents `whom` (MI-1; ended at majority, MI-3): the same
    /// test the gate makes with its facts (`gate::GATE_FACTS`).
    pub async fn represents(&self, who: HolderId, whom: HolderId) -> Result<bool, StoreError> {
        Ok(who != whom && self.representatives(whom).await?.iter().any(|(r, _)| *r == who))
    }

    /// The people `representative` currently represents, with the kind of representation.
    pub async fn represented_by(
        &self,
        representative: HolderId,
    ) -> Result<Vec<(HolderId, String)>, StoreError> {
        let now = self.now().as_micros();
        self.db
            .fetch_all(
                Query::new(concat!(
                    "SELECT r.holder_id, r.kind FROM representatives r JOIN holders h ON h.id = r.holder_id \
                     WHERE r.representative_id = $1 AND ",
                    current_representation!("$2"),
                    " ORDER BY r.holder_id"
                ))
                .binds((representative.as_uuid(), now)),
                "list represented people",
            )
            .await
            .and_then(|rs| {
                rs.into_iter()
                    .map(|mut r| {
                        Ok((
                            HolderId::from_uuid(r.take::<uuid::Uuid>(0)?),
                            r.take::<String>(1)?,
                        ))
                    })
                    .collect()
            })
    }

    /// The representatives of `holder` whose representation is current at `now`.
    pub async fn representatives(&self, holder: HolderId) -> Result<Vec<(HolderId, String)>, StoreError> {
        let now = self.now().as_micros();
        let q = Query::new(concat!(
            "SELECT r.representative_id, r.kind FROM representatives r JOIN holders h ON h.id = r.holder_id \
             WHERE r.holder_id = $1 AND ",
            current_representation!("$2"),
            " ORDER BY r.representative_id"
        ))
        .binds((holder.as_uuid(), now));
        let rows = self.db.fetch_all(q, "list representatives").await?;
        rows.into_iter()
            .map(|mut r| Ok((HolderId::from_uuid(r.take(0)?), r.take(1)?)))
            .collect()
    }
}

/// The first given name and the used (else birth) name of administrative data.
fn name_of(admin: &serde_json::Value) -> PersonName {
    let text = |v: Option<&serde_json::Value>| v.and_then(|v| v.as_str()).unwrap_or("").to_string();
    PersonName {
        given: text(admin["given_names"].as_array().and_then(|g| g.first())),
        family: text(
            admin
                .get("used_name")
                .filter(|v| v.is_string())
                .or(admin.get("birth_name")),
        ),
    }
}
