//! Transactional outbox: messages to holders (information letter, codes, notifications) are
//! written in the same transaction as the change that causes them, sealed with the holder's
//! key, and delivered at least once by a job that claims them with a lease (safe on several
//! servers; a crash between commit and send loses nothing, the lease expires and another
//! attempt follows).

use carnet_domain::{HolderId, ItemKind, Timestamp};
use uuid::Uuid;

use crate::Store;
use crate::crypto::{SecretKey, item_aad};
use crate::db::Tx;
use crate::db::query::Query;
use crate::error::StoreError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
    /// LC-2: by post when there is no e-mail address or the e-mail failed.
    Post,
}

impl Channel {
    pub const fn tag(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Post => "post",
        }
    }

    pub fn from_tag(s: &str) -> Option<Self> {
        Some(match s {
            "email" => Channel::Email,
            "sms" => Channel::Sms,
            "post" => Channel::Post,
            _ => return None,
        })
    }
}

/// A message waiting to be sent, payload in clear (only in memory).
#[derive(Clone, Debug)]
pub struct OutboxMessage {
    pub id: Uuid,
    pub holder: HolderId,
    pub kind: String,
    pub channel: Channel,
    /// JSON, defined by the kind (e.g. the activation code of an information letter).
    pub payload: Vec<u8>,
    pub attempts: i64,
}

impl OutboxMessage {
    pub fn new(holder: HolderId, kind: &str, channel: Channel, payload: Vec<u8>) -> Self {
        Self {
            id: Uuid::new_v4(),
            holder,
            kind: kind.to_string(),
            channel,
            payload,
            attempts: 0,
        }
    }
}

/// How the holder wants to be told of accesses and documents (AC-6, DM-7): by e-mail and/or
/// SMS. The space always shows the notices, whatever these say.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotificationPreferences {
    pub email: bool,
    pub sms: bool,
    /// The language of the holder's mails (French until they choose).
    #[serde(default)]
    pub language: MessageLanguage,
}

impl Default for NotificationPreferences {
    fn default() -> Self {
        Self {
            email: true,
            sms: false,
            language: MessageLanguage::Fr,
        }
    }
}

/// The language of the messages a holder receives: one, not both (issue 32). Letters by
/// post are in French whatever it says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MessageLanguage {
    #[default]
    Fr,
    En,
}

impl MessageLanguage {
    pub const fn tag(self) -> &'static str {
        match self {
            MessageLanguage::Fr => "fr",
            MessageLanguage::En => "en",
        }
    }

    /// French for anything but "en".
    pub fn from_tag(s: &str) -> Self {
        if s == "en" {
            MessageLanguage::En
        } else {
            MessageLanguage::Fr
        }
    }
}

/// The holder's channels (e-mail on, SMS off by default) and, per channel, how many notices of
/// a kind wait to be sent.
const NOTICE_STATE_SQL: &str = "SELECT \
     COALESCE((SELECT email FROM notification_preferences WHERE holder_id = $1), 1), \
     COALESCE((SELECT sms FROM notification_preferences WHERE holder_id = $1), 0), \
     (SELECT COUNT(*) FROM outbox WHERE holder_id = $1 AND kind = $2 AND channel = 'email' AND sent_at IS NULL), \
     (SELECT COUNT(*) FROM outbox WHERE holder_id = $1 AND kind = $2 AND channel = 'sms' AND sent_at IS NULL)";

/// Lease of a claimed message: another server may retry it after this long.
/// How long a claim lasts by default: a message claimed by a server that died is delivered by
/// another (or the same, restarted) once its lease has run out.
pub const DEFAULT_LEASE_SECONDS: i64 = 120;

/// Kinds that go by post when the e-mail fails (LC-2): what still makes sense days later.
pub const LETTER_KINDS: &[&str] = &[
    "information",
    "space_opened",
    "activation_code",
    "majority",
    "opposition_proof",
    "erasure_requested",
    ERASURE_DONE,
    SPACE_SUSPENDED,
    SUSPENSION_LIFTED,
    SUSPENSION_CLOSED,
    SUSPENSION_CONTESTED,
];

/// LC-5b: the operator suspended the space (payload: `reason`, `closes_on`).
pub const SPACE_SUSPENDED: &str = "space_suspended";
/// LC-5b: the operator lifted the suspension.
pub const SUSPENSION_LIFTED: &str = "suspension_lifted";
/// LC-5b: the suspended space was closed, six weeks having passed without objection.
pub const SUSPENSION_CLOSED: &str = "suspension_closed";
/// LC-5b: the holder's objection to the closure is recorded (payload: `recorded_at`).
pub const SUSPENSION_CONTESTED: &str = "suspension_contested";

/// The kind of the notice sent once a space was erased on request (LC-5).
pub const ERASURE_DONE: &str = "erasure_done";

impl Store {
    /// The holder's notification preferences (e-mail only until they choose).
    pub(crate) async fn notification_preferences(
        &self,
        holder: HolderId,
    ) -> Result<NotificationPreferences, StoreError> {
        let row: Option<(i64, i64, String)> = self
            .db
            .fetch_optional_as(
                Query::new("SELECT email, sms, language FROM notification_preferences WHERE holder_id = $1")
                    .bind(holder.as_uuid()),
                "read notification preferences",
            )
            .await?;
        Ok(
            row.map_or_else(NotificationPreferences::default, |(email, sms, language)| {
                NotificationPreferences {
                    email: email != 0,
                    sms: sms != 0,
                    language: MessageLanguage::from_tag(&language),
                }
            }),
        )
    }

    /// The language of the holder's messages, for the delivery of the system's own mails
    /// (like [`Store::contact`], not a read of the space).
    pub async fn message_language(&self, holder: HolderId) -> Result<MessageLanguage, StoreError> {
        Ok(self.notification_preferences(holder).await?.language)
    }

    /// Records the holder's choice; it applies to the next notice.
    pub(crate) async fn set_notification_preferences(
        &self,
        holder: HolderId,
        prefs: NotificationPreferences,
    ) -> Result<(), StoreError> {
        let now = self.now().as_micros();
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "INSERT INTO notification_preferences (holder_id, email, sms, updated_at, language) VALUES \
                 ($1, $2, $3, $4, $5) ON CONFLICT (holder_id) DO UPDATE SET email = excluded.email, sms = \
                 excluded.sms, updated_at = excluded.updated_at, language = excluded.language",
            )
            .binds((
                holder.as_uuid(),
                i64::from(prefs.email),
                i64::from(prefs.sms),
                now,
                prefs.language.tag(),
            )),
            "save notification preferences",
        )
        .await?;
        tx.commit().await
    }

    /// Queues a notice (no content: AC-6, MS-4) of `kind` on each channel the holder chose, in
    /// the transaction of its cause. With `collapse`, a channel that already has one such
    /// notice waiting to be sent gets no second one.
    pub(crate) async fn enqueue_notice_in_tx(
        &self,
        tx: &mut Tx,
        key: &SecretKey,
        holder: HolderId,
        kind: &str,
        now: Timestamp,
        collapse: bool,
    ) -> Result<(), StoreError> {
        let (email, sms, email_waiting, sms_waiting): (i64, i64, i64, i64) = tx
            .fetch_one_as(
                Query::new(NOTICE_STATE_SQL).binds((holder.as_uuid(), kind)),
                "read notification preferences",
            )
            .await?;
        for (on, waiting, channel) in [
            (email, email_waiting, Channel::Email),
            (sms, sms_waiting, Channel::Sms),
        ] {
            if on != 0 && !(collapse && waiting > 0) {
                let msg = OutboxMessage::new(holder, kind, channel, b"{}".to_vec());
                self.enqueue_in_tx(tx, key, &msg, now).await?;
            }
        }
        Ok(())
    }

    /// Whether every channel the holder chose already has a notice of `kind` waiting (read on
    /// a reader, so that most accesses need not take the writer).
    pub(crate) async fn notice_waiting_everywhere(
        &self,
        holder: HolderId,
        kind: &str,
    ) -> Result<bool, StoreError> {
        let (email, sms, email_waiting, sms_waiting): (i64, i64, i64, i64) = self
            .db
            .fetch_one_as(
                Query::new(NOTICE_STATE_SQL).binds((holder.as_uuid(), kind)),
                "read notification preferences",
            )
            .await?;
        Ok((email == 0 || email_waiting > 0) && (sms == 0 || sms_waiting > 0))
    }

    pub(crate) async fn enqueue_in_tx(
        &self,
        tx: &mut Tx,
        key: &SecretKey,
        msg: &OutboxMessage,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let sealed = key.seal(
            &item_aad(msg.holder, ItemKind::OutboxPayload, msg.id.as_bytes()),
            &msg.payload,
        )?;
        tx.execute(
            Query::new(
                "INSERT INTO outbox (id, holder_id, kind, channel, payload_sealed, created_at, \
                 next_attempt_at) VALUES ($1, $2, $3, $4, $5, $6, $6)",
            )
            .binds((
                msg.id,
                msg.holder.as_uuid(),
                &msg.kind,
                msg.channel.tag(),
                &sealed,
                now.as_micros(),
            )),
            "enqueue message",
        )
        .await?;
        Ok(())
    }

    /// Queues the notice that a space was erased on request (LC-5): sealed with a service key,
    /// since the holder's is destroyed, and deleted once sent ([`Store::mark_sent`]).
    pub(crate) async fn enqueue_after_erasure_in_tx(
        &self,
        tx: &mut Tx,
        msg: &OutboxMessage,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        let key = &self.service_keys().await?.after_erasure;
        self.enqueue_in_tx(tx, key, msg, now).await
    }

    /// Sets how long a claim lasts (longer than a delivery takes; the configuration's
    /// `outbox_lease_seconds`).
    pub fn set_outbox_lease_seconds(&self, seconds: i64) {
        self.outbox_lease_seconds
            .store(seconds.max(1), std::sync::atomic::Ordering::Relaxed);
    }

    /// Claims up to `limit` messages due now, for the lease (`DEFAULT_LEASE_SECONDS`), and opens them.
    pub async fn claim_messages(&self, limit: i64) -> Result<Vec<OutboxMessage>, StoreError> {
        self.claim_messages_on(limit, &[Channel::Email, Channel::Sms, Channel::Post])
            .await
    }

    /// Like [`Store::claim_messages`], for the channels a sender can deliver.
    pub async fn claim_messages_on(
        &self,
        limit: i64,
        channels: &[Channel],
    ) -> Result<Vec<OutboxMessage>, StoreError> {
        let now = self.now().as_micros();
        let lease = self
            .outbox_lease_seconds
            .load(std::sync::atomic::Ordering::Relaxed);
        let until = self.now().plus_seconds(lease).as_micros();
        let has = |c: Channel| channels.contains(&c);
        let candidates: Vec<Uuid> = self
            .db
            .fetch_all_as::<Uuid>(
                Query::new(
                    "SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $1 AND \
                     (claimed_until IS NULL OR claimed_until <= $1) AND ((channel = 'email' AND $3) OR \
                     (channel = 'sms' AND $4) OR (channel = 'post' AND $5)) ORDER BY next_attempt_at LIMIT \
                     $2",
                )
                .binds((
                    now,
                    limit,
                    has(Channel::Email),
                    has(Channel::Sms),
                    has(Channel::Post),
                )),
                "read outbox",
            )
            .await?;
        let mut out = Vec::new();
        for id in candidates {
            let mut tx = self.db.begin().await?;
            // Compare-and-set claim: only one server wins each message.
            let row = tx
                .fetch_optional_as::<(Uuid, String, String, Vec<u8>, i64)>(
                    Query::new(
                        "UPDATE outbox SET claimed_until = $1, attempts = attempts + 1 WHERE id = $2 AND \
                         sent_at IS NULL AND (claimed_until IS NULL OR claimed_until <= $3) RETURNING \
                         holder_id, kind, channel, payload_sealed, attempts",
                    )
                    .binds((until, id, now)),
                    "claim message",
                )
                .await?;
            tx.commit().await?;
            let Some((holder, kind, channel, sealed, attempts)) = row else {
                continue;
            };
            let holder = HolderId::from_uuid(holder);
            let key = if kind == ERASURE_DONE {
                self.service_keys().await?.after_erasure.clone()
            } else {
                match self.vault.get(holder).await {
                    Ok(k) => k,
                    Err(StoreError::Shredded(_)) => continue,
                    Err(e) => return Err(e),
                }
            };
            let payload = key.open(&item_aad(holder, ItemKind::OutboxPayload, id.as_bytes()), &sealed)?;
            out.push(OutboxMessage {
                id,
                holder,
                kind,
                channel: Channel::from_tag(&channel).unwrap_or(Channel::Post),
                payload,
                attempts,
            });
        }
        Ok(out)
    }

    /// Records a delivered message (idempotent). The notice of an erasure, the last trace of
    /// an erased holder (their address), goes once sent (LC-7).
    pub async fn mark_sent(&self, id: Uuid) -> Result<(), StoreError> {
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "UPDATE outbox SET sent_at = $1, claimed_until = NULL WHERE id = $2 AND sent_at IS NULL",
            )
            .binds((self.now().as_micros(), id)),
            "mark message sent",
        )
        .await?;
        tx.execute(
            Query::new("DELETE FROM outbox WHERE id = $1 AND kind = $2").binds((id, ERASURE_DONE)),
            "forget an erasure notice",
        )
        .await?;
        tx.commit().await
    }

    /// LC-2: an e-mail that failed for good goes by post instead — only letters that still
    /// make sense days later (the information, a new code, the proofs and notices of the
    /// space's life), never a 10-minute login code. Starts afresh on the post channel; false
    /// when the message is of another kind, not an e-mail, or already sent.
    pub async fn send_by_post_instead(&self, id: Uuid) -> Result<bool, StoreError> {
        let kinds = LETTER_KINDS;
        let mut tx = self.db.begin().await?;
        let kind: Option<String> = tx
            .fetch_optional_as::<String>(
                Query::new("SELECT kind FROM outbox WHERE id = $1 AND channel = 'email' AND sent_at IS NULL")
                    .bind(id),
                "read message",
            )
            .await?;
        if !kind.is_some_and(|k| kinds.contains(&k.as_str())) {
            return Ok(false);
        }
        tx.execute(
            Query::new(
                "UPDATE outbox SET channel = 'post', attempts = 0, next_attempt_at = $1, claimed_until = \
                 NULL WHERE id = $2 AND sent_at IS NULL",
            )
            .binds((self.now().as_micros(), id)),
            "send by post instead",
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records a failed attempt: retried after an exponential delay (1 min, 2, 4 … 6 h).
    pub async fn mark_failed(&self, id: Uuid, attempts: i64) -> Result<(), StoreError> {
        let delay = 60i64.saturating_mul(1 << attempts.clamp(0, 9)).min(6 * 3600);
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "UPDATE outbox SET next_attempt_at = $1, claimed_until = NULL WHERE id = $2 AND sent_at IS \
                 NULL",
            )
            .binds((self.now().plus_seconds(delay).as_micros(), id)),
            "mark message failed",
        )
        .await?;
        tx.commit().await
    }

    /// Messages of a holder, newest first: (kind, channel, created, sent) — for the demo
    /// outbox page and tests. Payloads stay sealed.
    pub async fn outbox_of(
        &self,
        holder: HolderId,
    ) -> Result<Vec<(String, String, i64, Option<i64>)>, StoreError> {
        self.db
            .fetch_all_as(
                Query::new(
                    "SELECT kind, channel, created_at, sent_at FROM outbox WHERE holder_id = $1 ORDER BY \
                     created_at DESC, id",
                )
                .bind(holder.as_uuid()),
                "list outbox",
            )
            .await
    }
}
