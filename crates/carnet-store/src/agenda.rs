//! The health agenda (SPEC AG-1..3) through the gate: events added by the holder (or their
//! representative), a professional, an establishment or an app (AG-2), decided by the access
//! policy as care-plan items (a professional adds with a grant and edits only their own
//! events; the holder edits only theirs), traced and notified like any access (AC-6).
//!
//! Reminders (AG-3) are sent by [`Store::send_due_reminders`], safe on several servers and
//! across restarts: an event row holds when its next reminder is due; the job moves that
//! instant on by compare-and-set and queues the reminder in the same transaction, so a
//! reminder is queued exactly once (and the outbox delivers it at least once). Calendar feeds
//! are secret URLs whose token is stored hashed; revoking one deletes it.

use carnet_domain::access::{Action, Actor, Author, Category, Context, ItemFacts};
use carnet_domain::agenda::{EventInput, GivenDose, ScheduledDose, VaccineProposal};
use carnet_domain::profile::{CodeSystem, Section};
use carnet_domain::{HolderId, ItemKind, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Store;
use crate::crypto::{SecretKey, item_aad, random_token, sha256_hex};
use crate::db::query::Query;
use crate::documents::author_of;
use crate::error::StoreError;
use crate::gate::{Access, Gate};
use crate::outbox::{Channel, OutboxMessage};
use crate::traces::Withheld;

/// An event as stored and shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgendaEvent {
    pub id: Uuid,
    #[serde(flatten)]
    pub event: EventInput,
    pub author: Author,
    pub author_name: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub version: i64,
    /// When its next reminder falls due, if any.
    pub next_reminder_at: Option<Timestamp>,
}

#[derive(Serialize, Deserialize)]
struct Sealed {
    event: EventInput,
    author: Author,
    author_name: String,
}

/// A calendar feed (its token is shown once, at creation).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feed {
    pub id: Uuid,
    pub created_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
}

/// What one pass of the reminder job did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReminderReport {
    pub queued: u64,
    /// Reminders found due after their occurrence had begun (the server was down): dropped.
    pub late: u64,
}

fn event_aad(holder: HolderId, id: Uuid) -> Vec<u8> {
    item_aad(holder, ItemKind::AgendaEvent, id.as_bytes())
}

fn facts(author: &Author) -> ItemFacts {
    ItemFacts {
        category: Category::CarePlans,
        author: author.clone(),
        masked: false,
        hidden_from_representatives: false,
        visible_to_holder: true,
    }
}

fn author_name(actor: &Actor, given: &str) -> String {
    match actor {
        Actor::Holder { .. } | Actor::Representative { .. } => String::new(),
        _ => given.to_string(),
    }
}

fn open_event(key: &SecretKey, holder: HolderId, row: EventRow) -> Result<AgendaEvent, StoreError> {
    let (id, version, created, updated, next, sealed) = row;
    let s: Sealed = serde_json::from_slice(&key.open(&event_aad(holder, id), &sealed)?)
        .map_err(|e| StoreError::Integrity(format!("agenda event: {e}")))?;
    Ok(AgendaEvent {
        id,
        event: s.event,
        author: s.author,
        author_name: s.author_name,
        created_at: Timestamp::from_micros(created),
        updated_at: Timestamp::from_micros(updated),
        version,
        next_reminder_at: next.map(Timestamp::from_micros),
    })
}

type EventRow = (Uuid, i64, i64, i64, Option<i64>, Vec<u8>);

impl Store {
    async fn event_rows(&self, holder: HolderId) -> Result<Vec<AgendaEvent>, StoreError> {
        let rows: Vec<EventRow> = self
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT id, version, created_at, updated_at, next_reminder_at, event_sealed FROM \
                     agenda_events WHERE holder_id = $1 ORDER BY id",
                )
                .bind(holder.as_uuid()),
                "read agenda",
            )
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.vault.get(holder).await?;
        rows.into_iter().map(|r| open_event(&key, holder, r)).collect()
    }

    async fn write_event(
        &self,
        holder: HolderId,
        e: &AgendaEvent,
        expected: Option<i64>,
    ) -> Result<(), StoreError> {
        let key = self.vault.get(holder).await?;
        let sealed = key.seal(
            &event_aad(holder, e.id),
            &serde_json::to_vec(&Sealed {
                event: e.event.clone(),
                author: e.author.clone(),
                author_name: e.author_name.clone(),
            })
            .map_err(|x| StoreError::Integrity(x.to_string()))?,
        )?;
        let next = e.next_reminder_at.map(Timestamp::as_micros);
        let mut tx = self.db.begin().await?;
        let q = match expected {
            None => Query::new(
                "INSERT INTO agenda_events (holder_id, id, version, created_at, updated_at, \
                 next_reminder_at, event_sealed) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .binds((
                holder.as_uuid(),
                e.id,
                e.version,
                e.created_at.as_micros(),
                e.updated_at.as_micros(),
                next,
                &sealed,
            )),
            Some(v) => Query::new(
                "UPDATE agenda_events SET version = $3, updated_at = $4, next_reminder_at = $5, event_sealed \
                 = $6 WHERE holder_id = $1 AND id = $2 AND version = $7",
            )
            .binds((
                holder.as_uuid(),
                e.id,
                e.version,
                e.updated_at.as_micros(),
                next,
                &sealed,
                v,
            )),
        };
        let n = tx.execute(q, "write agenda event").await?;
        if n != 1 {
            return Err(StoreError::Conflict);
        }
        tx.commit().await
    }

    /// One pass of the reminder job (AG-3): queues the reminders due at `now` (at most
    /// `limit`), each exactly once even with several servers or a crash in the middle.
    pub async fn send_due_reminders(&self, limit: i64) -> Result<ReminderReport, StoreError> {
        let now = self.now();
        let due: Vec<(Uuid, Uuid, i64)> = self
            .db
            .writer()
            .fetch_all_as(
                Query::new(
                    "SELECT e.holder_id, e.id, e.next_reminder_at FROM agenda_events e JOIN holders h ON \
                     h.id = e.holder_id WHERE e.next_reminder_at <= $1 AND h.lifecycle IN ('open', \
                     'activated') ORDER BY e.next_reminder_at LIMIT $2",
                )
                .binds((now.as_micros(), limit)),
                "find due reminders",
            )
            .await?;
        let mut report = ReminderReport::default();
        for (holder, id, at) in due {
            let holder = HolderId::from_uuid(holder);
            let key = match self.vault.get(holder).await {
                Ok(k) => k,
                Err(StoreError::Shredded(_)) => continue,
                Err(e) => return Err(e),
            };
            let rows: Vec<EventRow> = self
                .db
                .writer()
                .fetch_all_as(
                    Query::new(
                        "SELECT id, version, created_at, updated_at, next_reminder_at, event_sealed FROM \
                         agenda_events WHERE holder_id = $1 AND id = $2",
                    )
                    .binds((holder.as_uuid(), id)),
                    "read due event",
                )
                .await?;
            let Some(row) = rows.into_iter().next() else {
                continue;
            };
            let ev = open_event(&key, holder, row)?;
            let due_at = Timestamp::from_micros(at);
            // The occurrence this reminder announces: the one whose reminder falls at `due_at`.
            let occurrence = ev
                .event
                .next_reminder(due_at.plus_seconds(-1))
                .filter(|(d, _)| *d == due_at)
                .map(|(_, o)| o);
            let next = ev.event.next_reminder(due_at).map(|(d, _)| d.as_micros());
            let mut tx = self.db.begin().await?;
            let moved = tx
                .execute(
                    Query::new(
                        "UPDATE agenda_events SET next_reminder_at = $3 WHERE holder_id = $1 AND id = $2 AND \
                         next_reminder_at = $4",
                    )
                    .binds((holder.as_uuid(), id, next, at)),
                    "move reminder",
                )
                .await?;
            if moved != 1 {
                // Another server took it (or the event changed): nothing to do.
                continue;
            }
            match occurrence {
                Some(o) if o > now => {
                    let channels = self.reminder_channels(&mut tx, holder).await?;
                    let payload = serde_json::json!({ "at": o.as_micros(), "event": id });
                    for channel in channels {
                        let msg = OutboxMessage::new(
                            holder,
                            "agenda_reminder",
                            channel,
                            payload.to_string().into_bytes(),
                        );
                        self.enqueue_in_tx(&mut tx, &key, &msg, now).await?;
                    }
                    report.queued += 1;
                }
                _ => report.late += 1,
            }
            tx.commit().await?;
        }
        if report.queued > 0 {
            self.wake_delivery();
        }
        Ok(report)
    }

    /// The channels the holder chose for notices (e-mail by default).
    async fn reminder_channels(
        &self,
        tx: &mut crate::db::Tx,
        holder: HolderId,
    ) -> Result<Vec<Channel>, StoreError> {
        let row: Option<(i64, i64)> = tx
            .fetch_optional_as(
                Query::new("SELECT email, sms FROM notification_preferences WHERE holder_id = $1")
                    .bind(holder.as_uuid()),
                "read notification preferences",
            )
            .await?;
        let (email, sms) = row.unwrap_or((1, 0));
        let mut out = Vec::new();
        if email != 0 {
            out.push(Channel::Email);
        }
        if sms != 0 {
            out.push(Channel::Sms);
        }
        Ok(out)
    }

    /// AG-3: a new secret calendar-feed token for `holder`, created by `by` (the holder or a
    /// representative). Returns the feed and the token (shown once).
    pub(crate) async fn create_agenda_feed(
        &self,
        holder: HolderId,
        by: HolderId,
    ) -> Result<(Feed, String), StoreError> {
        let token = random_token()?;
        let now = self.now();
        let id = carnet_domain::id::new_v7(now);
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO agenda_feeds (token_hash, id, holder_id, created_by, created_at) VALUES ($1, \
                 $2, $3, $4, $5)",
            )
            .binds((
                sha256_hex(token.as_bytes()),
                id,
                holder.as_uuid(),
                by.as_uuid(),
                now.as_micros(),
            )),
            "create calendar feed",
        )
        .await?;
        tx.commit().await?;
        Ok((
            Feed {
                id,
                created_at: now,
                last_used_at: None,
            },
            token,
        ))
    }

    pub(crate) async fn agenda_feeds(&self, holder: HolderId) -> Result<Vec<Feed>, StoreError> {
        self.db
            .fetch_all(
                Query::new(
                    "SELECT id, created_at, last_used_at FROM agenda_feeds WHERE holder_id = $1 ORDER BY \
                     created_at",
                )
                .bind(holder.as_uuid()),
                "list calendar feeds",
            )
            .await
            .and_then(|rs| {
                rs.into_iter()
                    .map(|mut r| {
                        Ok(Feed {
                            id: r.take(0)?,
                            created_at: Timestamp::from_micros(r.take(1)?),
                            last_used_at: r.take::<Option<i64>>(2)?.map(Timestamp::from_micros),
                        })
                    })
                    .collect()
            })
    }

    /// Revokes a feed: its URL stops working at once.
    pub(crate) async fn revoke_agenda_feed(&self, holder: HolderId, id: Uuid) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        let n = tx
            .execute(
                Query::new("DELETE FROM agenda_feeds WHERE holder_id = $1 AND id = $2")
                    .binds((holder.as_uuid(), id)),
                "revoke calendar feed",
            )
            .await?;
        tx.commit().await?;
        if n == 0 {
            return Err(StoreError::NotFound);
        }
        Ok(())
    }

    /// Who a feed token reads as: the holder, or their representative while they still
    /// represent them. `None`: unknown or revoked token, or a representation that ended.
    pub async fn agenda_feed_actor(&self, token: &str) -> Result<Option<(HolderId, Actor)>, StoreError> {
        let row: Option<(Uuid, Uuid)> = self
            .db
            .fetch_optional_as(
                Query::new("SELECT holder_id, created_by FROM agenda_feeds WHERE token_hash = $1")
                    .bind(sha256_hex(token.as_bytes())),
                "read calendar feed",
            )
            .await?;
        let Some((holder, by)) = row else { return Ok(None) };
        let (holder, by) = (HolderId::from_uuid(holder), HolderId::from_uuid(by));
        let actor = if holder == by {
            Actor::Holder { id: holder }
        } else if self.representatives(holder).await?.iter().any(|(r, _)| *r == by) {
            Actor::Representative { id: by }
        } else {
            return Ok(None);
        };
        let now = self.now();
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new("UPDATE agenda_feeds SET last_used_at = $2 WHERE token_hash = $1")
                .binds((sha256_hex(token.as_bytes()), now.as_micros())),
            "touch calendar feed",
        )
        .await?;
        tx.commit().await?;
        Ok(Some((holder, actor)))
    }
}

impl Gate {
    /// AG-2: adds an event to a holder's agenda (the holder's side, or a professional,
    /// establishment or app with a grant).
    pub async fn add_event(
        &self,
        holder: HolderId,
        actor: &Actor,
        input: EventInput,
        author_display: &str,
        ctx: &Context,
    ) -> Result<AgendaEvent, StoreError> {
        let event = input.validate().map_err(|e| StoreError::Invalid(e.to_string()))?;
        let author = author_of(actor).ok_or(StoreError::NotFound)?;
        let now = self.store.now();
        let id = carnet_domain::id::new_v7(now);
        self.admit(
            Access {
                holder,
                actor,
                action: Action::Create,
                item: &format!("agenda/{id}"),
                category: Some(Category::CarePlans),
                withheld: Withheld::default(),
            },
            &facts(&author),
            ctx,
        )
        .await?;
        let e = AgendaEvent {
            id,
            next_reminder_at: event.next_reminder(now).map(|(due, _)| due),
            event,
            author,
            author_name: author_name(actor, author_display),
            created_at: now,
            updated_at: now,
            version: 1,
        };
        self.store.write_event(holder, &e, None).await?;
        Ok(e)
    }

    /// The events the caller may see (decided one by one, traced once), by start.
    pub async fn list_events(
        &self,
        holder: HolderId,
        actor: &Actor,
        ctx: &Context,
    ) -> Result<Vec<AgendaEvent>, StoreError> {
        let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
        let mut out = Vec::new();
        let mut decision = None;
        let decider = self.decider(&space, actor, ctx);
        for e in self.store.event_rows(holder).await? {
            let d = decider.decide(Action::Read, &facts(&e.author));
            if decision.is_none() || d.allowed {
                decision = Some(d);
            }
            if d.allowed {
                out.push(e);
            }
        }
        let d = decision
            .unwrap_or_else(|| self.decide_in(&space, actor, Action::Read, &facts(&Author::Holder), ctx));
        self.record(
            Access {
                holder,
                actor,
                action: Action::Read,
                item: "agenda",
                category: Some(Category::CarePlans),
                withheld: Withheld::default(),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        if !d.allowed && out.is_empty() {
            return Err(StoreError::NotFound);
        }
        out.sort_by_key(|e| (e.event.start, e.id));
        Ok(out)
    }

    async fn decide_event(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: Uuid,
        action: Action,
        ctx: &Context,
    ) -> Result<AgendaEvent, StoreError> {
        let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
        let found = self
            .store
            .event_rows(holder)
            .await?
            .into_iter()
            .find(|e| e.id == id);
        let author = found.as_ref().map_or(Author::Holder, |e| e.author.clone());
        let mut d = self.decide_in(&space, actor, action, &facts(&author), ctx);
        if found.is_none() {
            d.allowed = false;
        }
        self.record(
            Access {
                holder,
                actor,
                action,
                item: &format!("agenda/{id}"),
                category: Some(Category::CarePlans),
                withheld: Withheld::default(),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        match found {
            Some(e) if d.allowed => Ok(e),
            _ => Err(StoreError::NotFound),
        }
    }

    pub async fn read_event(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: Uuid,
        ctx: &Context,
    ) -> Result<AgendaEvent, StoreError> {
        self.decide_event(holder, actor, id, Action::Read, ctx).await
    }

    /// Changes an event (its author only); `expected` is the version the caller saw.
    pub async fn update_event(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: Uuid,
        input: EventInput,
        expected: Option<i64>,
        ctx: &Context,
    ) -> Result<AgendaEvent, StoreError> {
        let event = input.validate().map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut e = self.decide_event(holder, actor, id, Action::Update, ctx).await?;
        if expected.is_some_and(|v| v != e.version) {
            return Err(StoreError::Conflict);
        }
        let now = self.store.now();
        let seen = e.version;
        e.next_reminder_at = event.next_reminder(now).map(|(due, _)| due);
        e.event = event;
        e.updated_at = now;
        e.version += 1;
        self.store.write_event(holder, &e, Some(seen)).await?;
        Ok(e)
    }

    pub async fn delete_event(
        &self,
        holder: HolderId,
        actor: &Actor,
        id: Uuid,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        self.decide_event(holder, actor, id, Action::Delete, ctx).await?;
        let mut tx = self.store.db.begin().await?;
        tx.execute(
            Query::new("DELETE FROM agenda_events WHERE holder_id = $1 AND id = $2")
                .binds((holder.as_uuid(), id)),
            "delete agenda event",
        )
        .await?;
        tx.commit().await
    }

    /// AG-1: vaccine reminders to propose, from the vaccination record (read through the gate
    /// as the caller) and the national schedule.
    pub async fn vaccine_proposals(
        &self,
        holder: HolderId,
        actor: &Actor,
        schedule: &[ScheduledDose],
        ctx: &Context,
    ) -> Result<Vec<VaccineProposal>, StoreError> {
        let admin = self.read_administrative(holder, actor, ctx).await?;
        let admin: serde_json::Value = serde_json::from_slice(&admin.administrative)
            .map_err(|e| StoreError::Integrity(format!("administrative data: {e}")))?;
        let Some(birth) = admin
            .get("birth_date")
            .and_then(serde_json::Value::as_str)
            .and_then(|s| {
                time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]")).ok()
            })
        else {
            return Ok(Vec::new());
        };
        let given: Vec<GivenDose> = self
            .list_profile(holder, actor, Some(Section::Vaccinations), ctx)
            .await?
            .into_iter()
            .filter_map(|e| {
                let date = e
                    .entry
                    .date
                    .as_deref()
                    .and_then(carnet_domain::agenda::partial_date);
                e.entry
                    .code
                    .filter(|c| c.system == CodeSystem::Atc)
                    .map(|c| GivenDose { atc: c.code, date })
            })
            .collect();
        let today = carnet_domain::agenda::paris_date(self.store.now())
            .ok_or(StoreError::Integrity("clock".into()))?;
        Ok(carnet_domain::agenda::vaccine_proposals(
            schedule, birth, &given, today,
        ))
    }
}
