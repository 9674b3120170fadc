//! Secure messaging (SPEC MS-1..4) through the gate. Conversations live in the holder's space:
//! their rows are sealed with the holder's key, attachments are sealed attachments checked like
//! documents, and every operation is decided by `carnet_domain::messaging::decide_message`,
//! traced (AC-6) and, for a new message, told to the other side without its content (MS-4):
//! the holder through the outbox (in the message's own transaction), a professional through
//! their notices. As for documents, the only public operations are methods of [`Gate`].

use std::collections::HashMap;

use bytes::Bytes;
use carnet_domain::access::{Action, Actor, Category, Context, Reason};
use carnet_domain::document::{self, Format};
use carnet_domain::messaging::{self, ConversationFacts, Counterpart, MessageAction, decide_message};
use carnet_domain::{AttachmentId, HolderId, ItemKind, Timestamp};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::Store;
use crate::crypto::{SecretKey, item_aad};
use crate::db::query::Query;
use crate::documents::{DocumentView, NewDocument, is_holder_side};
use crate::error::StoreError;
use crate::gate::{Access, Gate, GateFacts};
use crate::traces::Withheld;

/// Who wrote a message.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Sender {
    Holder,
    /// S-6: a representative is recorded as themselves.
    Representative {
        id: HolderId,
    },
    Counterpart {
        counterpart: Counterpart,
    },
}

/// An attachment of a message, as listed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRef {
    pub attachment_id: AttachmentId,
    pub filename: String,
    pub content_type: String,
    pub size: u64,
}

/// An attachment to send.
#[derive(Clone, Debug)]
pub struct NewAttachment {
    pub filename: String,
    pub content_type: String,
    pub content: Vec<u8>,
}

/// A message as its writer sends it (MS-2).
#[derive(Clone, Debug)]
pub struct Outgoing<'a> {
    pub text: &'a str,
    pub attachments: Vec<NewAttachment>,
    /// The writer as the other side reads them ("Dr Claire LEROY", the holder's name).
    pub sender_name: &'a str,
}

/// A checked message on its way to the tables.
struct Letter<'a> {
    sender: Sender,
    sender_name: &'a str,
    text: String,
    attachments: Vec<NewAttachment>,
}

/// The counterpart of a new conversation, as the directory describes it.
#[derive(Clone, Debug)]
pub struct CounterpartInfo {
    pub counterpart: Counterpart,
    pub name: String,
    /// A pharmacy may receive the holder's first message (a prescription, MS-2).
    pub is_pharmacy: bool,
}

#[derive(Serialize, Deserialize)]
struct ConversationSealed {
    subject: String,
    counterpart: Counterpart,
    counterpart_name: String,
}

#[derive(Serialize, Deserialize)]
struct MessageSealed {
    sender: Sender,
    sender_name: String,
    text: String,
    attachments: Vec<AttachmentRef>,
}

/// A conversation as listed.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: Uuid,
    pub subject: String,
    pub counterpart: Counterpart,
    pub counterpart_name: String,
    /// The counterpart ended it (MS-2): the holder's side cannot answer until they write.
    pub ended: bool,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Messages of the other side the viewer has not read yet.
    pub unread: i64,
}

/// A message as shown.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub id: Uuid,
    pub sender: Sender,
    pub sender_name: String,
    pub text: String,
    pub attachments: Vec<AttachmentRef>,
    pub sent_at: Timestamp,
    /// Read receipt: when the other side first opened it.
    pub read_at: Option<Timestamp>,
    pub from_holder_side: bool,
}

/// A conversation with its messages, oldest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Thread {
    pub conversation: Conversation,
    pub messages: Vec<Message>,
}

/// A line of a professional's or an establishment's inbox: ids and times only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboxEntry {
    pub holder: HolderId,
    pub conversation: Uuid,
    pub updated_at: Timestamp,
    pub ended: bool,
    pub unread: i64,
}

/// An inbox line with whose conversation it is and what it is about (issue 33), when the
/// gate let the professional know them.
#[derive(Clone, Debug)]
pub struct NamedInboxEntry {
    pub entry: InboxEntry,
    /// The patient, from an identity read [`decide_identity`](carnet_domain::access::decide_identity)
    /// allowed (a correspondent knows whom they write to, MS-2); `None` past
    /// [`NAMED_INBOX_PATIENTS`] or when refused.
    pub patient: Option<crate::identity::Identity>,
    /// The conversation's subject, read through the gate with the space's conversations.
    pub subject: Option<String>,
}

/// How many patients an inbox page names: each is two traced reads (identity, conversations).
pub const NAMED_INBOX_PATIENTS: usize = 30;

fn conversation_aad(holder: HolderId, id: Uuid) -> Vec<u8> {
    item_aad(holder, ItemKind::Conversation, id.as_bytes())
}

fn message_aad(holder: HolderId, id: Uuid) -> Vec<u8> {
    item_aad(holder, ItemKind::Message, id.as_bytes())
}

fn json<T: Serialize>(v: &T) -> Result<Vec<u8>, StoreError> {
    serde_json::to_vec(v).map_err(|e| StoreError::Integrity(e.to_string()))
}

fn sender_of(actor: &Actor) -> Option<Sender> {
    match actor {
        Actor::Holder { .. } => Some(Sender::Holder),
        Actor::Representative { id } => Some(Sender::Representative { id: *id }),
        _ => Counterpart::of(actor).map(|counterpart| Sender::Counterpart { counterpart }),
    }
}

/// The readable refusal a holder gets (their own space: nothing to hide, MS-2).
fn holder_refusal(reason: Reason) -> StoreError {
    match reason {
        Reason::NoPriorExchange => StoreError::Invalid(
            "vous ne pouvez écrire qu'à un professionnel qui vous a déjà écrit, ou à une pharmacie / \
             you can only write to a professional who already wrote to you, or to a pharmacy"
                .into(),
        ),
        Reason::ConversationEnded => StoreError::Invalid(
            "le professionnel a clos cette conversation : vous pourrez répondre quand il vous écrira / \
             the professional ended this conversation"
                .into(),
        ),
        _ => StoreError::NotFound,
    }
}

/// A conversation row, its sealed part opened.
struct ConversationRow {
    id: Uuid,
    ended: bool,
    created_at: Timestamp,
    updated_at: Timestamp,
    sealed: ConversationSealed,
}

type RawMessage = (Uuid, i64, bool, Option<i64>, Vec<u8>);

impl Store {
    async fn conversation_rows(
        &self,
        holder: HolderId,
        only: Option<Uuid>,
    ) -> Result<Vec<ConversationRow>, StoreError> {
        let rows: Vec<(Uuid, i64, i64, i64, Vec<u8>)> = self
            .db
            .fetch_all_as(
                Query::new(
                    "SELECT id, ended, created_at, updated_at, meta_sealed FROM conversations WHERE \
                     holder_id = $1 AND ($2 OR id = $3) ORDER BY updated_at DESC, id DESC",
                )
                .binds((holder.as_uuid(), only.is_none(), only.unwrap_or(Uuid::nil()))),
                "read conversations",
            )
            .await?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.vault.get(holder).await?;
        rows.into_iter()
            .map(|(id, ended, created, updated, sealed)| {
                let sealed: ConversationSealed =
                    serde_json::from_slice(&key.open(&conversation_aad(holder, id), &sealed)?)
                        .map_err(|e| StoreError::Integrity(format!("conversation: {e}")))?;
                Ok(ConversationRow {
                    id,
                    ended: ended != 0,
                    created_at: Timestamp::from_micros(created),
                    updated_at: Timestamp::from_micros(updated),
                    sealed,
                })
            })
            .collect()
    }

    /// Unread counts per conversation of messages written by one side.
    async fn unread_counts(
        &self,
        holder: HolderId,
        from_holder_side: bool,
    ) -> Result<HashMap<Uuid, i64>, StoreError> {
        self.db
            .fetch_all_as::<(Uuid, i64)>(
                Query::new(
                    "SELECT conversation_id, COUNT(*) FROM messages WHERE holder_id = $1 AND \
                     from_holder_side = $2 AND read_at IS NULL GROUP BY conversation_id",
                )
                .binds((holder.as_uuid(), i64::from(from_holder_side))),
                "count unread messages",
            )
            .await
            .map(|rows| rows.into_iter().collect())
    }

    /// Whether `counterpart` already has a conversation in this space (they wrote first, MS-2).
    async fn counterpart_wrote(
        &self,
        holder: HolderId,
        counterpart: &Counterpart,
    ) -> Result<bool, StoreError> {
        let n: i64 = self
            .db
            .fetch_one(
                Query::new("SELECT COUNT(*) FROM conversations WHERE holder_id = $1 AND counterpart = $2")
                    .binds((holder.as_uuid(), counterpart.key())),
                "find earlier conversation",
            )
            .await
            .and_then(|mut r| r.take(0))?;
        Ok(n > 0)
    }

    async fn message_rows(&self, holder: HolderId, conversation: Uuid) -> Result<Vec<Message>, StoreError> {
        let rows: Vec<RawMessage> = self
            .db
            .fetch_all(
                Query::new(
                    "SELECT id, sent_at, from_holder_side, read_at, body_sealed FROM messages WHERE \
                     holder_id = $1 AND conversation_id = $2 ORDER BY id",
                )
                .binds((holder.as_uuid(), conversation)),
                "read messages",
            )
            .await
            .and_then(|rs| {
                rs.into_iter()
                    .map(|mut r| {
                        Ok((
                            r.take(0)?,
                            r.take(1)?,
                            r.take::<i64>(2)? != 0,
                            r.take(3)?,
                            r.take(4)?,
                        ))
                    })
                    .collect()
            })?;
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let key = self.vault.get(holder).await?;
        rows.into_iter()
            .map(|(id, sent, holder_side, read, sealed)| {
                let m: MessageSealed = serde_json::from_slice(&key.open(&message_aad(holder, id), &sealed)?)
                    .map_err(|e| StoreError::Integrity(format!("message: {e}")))?;
                Ok(Message {
                    id,
                    sender: m.sender,
                    sender_name: m.sender_name,
                    text: m.text,
                    attachments: m.attachments,
                    sent_at: Timestamp::from_micros(sent),
                    read_at: read.map(Timestamp::from_micros),
                    from_holder_side: holder_side,
                })
            })
            .collect()
    }

    /// Writes a message (its attachments' blobs first, durable), and in one transaction the
    /// attachment rows, the message, the conversation's new state (created when `new_subject`
    /// is given) and the holder's notice (MS-4) when the counterpart wrote.
    async fn write_message(
        &self,
        key: &SecretKey,
        holder: HolderId,
        conversation: Uuid,
        new_conversation: Option<&ConversationSealed>,
        letter: Letter<'_>,
    ) -> Result<Message, StoreError> {
        let Letter {
            sender,
            sender_name,
            text,
            attachments,
        } = letter;
        let now = self.now();
        let from_holder_side = !matches!(sender, Sender::Counterpart { .. });
        let mut refs = Vec::with_capacity(attachments.len());
        let mut rows = Vec::with_capacity(attachments.len());
        for a in attachments {
            let id = AttachmentId::new(now);
            let sha = crate::crypto::sha256_hex(&a.content);
            let size = a.content.len() as u64;
            let (hash, sealed_size, sealed_meta) = self
                .write_attachment_blob(key, holder, id, &a.content_type, &sha, a.content)
                .await?;
            refs.push(AttachmentRef {
                attachment_id: id,
                filename: a.filename,
                content_type: a.content_type,
                size,
            });
            rows.push((id, hash, sealed_size, sealed_meta));
        }
        let id = carnet_domain::id::new_v7(now);
        let msg = MessageSealed {
            sender,
            sender_name: sender_name.to_string(),
            text,
            attachments: refs,
        };
        let sealed = key.seal(&message_aad(holder, id), &json(&msg)?)?;
        let mut tx = self.db.begin().await?;
        for (aid, hash, size, meta) in &rows {
            crate::insert_attachment_row(&mut tx, holder, *aid, now, hash, *size, meta).await?;
        }
        if let Some(c) = new_conversation {
            let sealed_c = key.seal(&conversation_aad(holder, conversation), &json(c)?)?;
            tx.execute(
                Query::new(
                    "INSERT INTO conversations (holder_id, id, counterpart, ended, created_at, updated_at, \
                     meta_sealed) VALUES ($1, $2, $3, 0, $4, $4, $5)",
                )
                .binds((
                    holder.as_uuid(),
                    conversation,
                    c.counterpart.key(),
                    now.as_micros(),
                    &sealed_c,
                )),
                "insert conversation",
            )
            .await?;
        } else {
            // A message of the counterpart reopens an ended conversation (MS-2).
            let reopen = !from_holder_side;
            tx.execute(
                Query::new(
                    "UPDATE conversations SET updated_at = $3, ended = CASE WHEN $4 THEN 0 ELSE ended END \
                     WHERE holder_id = $1 AND id = $2",
                )
                .binds((holder.as_uuid(), conversation, now.as_micros(), reopen)),
                "update conversation",
            )
            .await?;
        }
        tx.execute(
            Query::new(
                "INSERT INTO messages (holder_id, conversation_id, id, sent_at, from_holder_side, read_at, \
                 body_sealed) VALUES ($1, $2, $3, $4, $5, NULL, $6)",
            )
            .binds((
                holder.as_uuid(),
                conversation,
                id,
                now.as_micros(),
                i64::from(from_holder_side),
                &sealed,
            )),
            "insert message",
        )
        .await?;
        if !from_holder_side {
            // MS-4: "you have a new message", never its content; collapsed while one waits.
            self.enqueue_notice_in_tx(&mut tx, key, holder, "new_message", now, true)
                .await?;
        }
        tx.commit().await?;
        if !from_holder_side {
            self.wake_delivery();
        }
        Ok(Message {
            id,
            sender: msg.sender,
            sender_name: msg.sender_name,
            text: msg.text,
            attachments: msg.attachments,
            sent_at: now,
            read_at: None,
            from_holder_side,
        })
    }

    /// Read receipts: marks read the messages of the other side.
    async fn mark_read(
        &self,
        holder: HolderId,
        conversation: Uuid,
        written_by_holder_side: bool,
    ) -> Result<(), StoreError> {
        let now = self.now();
        let mut tx = self.db.begin().await?;
        tx.execute(
            Query::new(
                "UPDATE messages SET read_at = $4 WHERE holder_id = $1 AND conversation_id = $2 AND \
                 from_holder_side = $3 AND read_at IS NULL",
            )
            .binds((
                holder.as_uuid(),
                conversation,
                i64::from(written_by_holder_side),
                now.as_micros(),
            )),
            "mark messages read",
        )
        .await?;
        tx.commit().await
    }
}

/// Checks attachments like documents (DM-1: the bytes are what the type says).
fn check_attachments(attachments: &[NewAttachment]) -> Result<(), StoreError> {
    for a in attachments {
        let format = Format::from_mime(&a.content_type).ok_or_else(|| {
            StoreError::Invalid(document::ContentError::Unsupported(a.content_type.clone()).to_string())
        })?;
        document::check_content(format, &a.content).map_err(|e| StoreError::Invalid(e.to_string()))?;
    }
    Ok(())
}

impl Gate {
    /// Decides and traces `action` on one conversation of the space (MS-2, AC-6); the
    /// space's facts and the conversation's row when allowed. An unknown conversation is refused like someone
    /// else's (AC-8).
    async fn open_conversation(
        &self,
        holder: HolderId,
        actor: &Actor,
        action: MessageAction,
        conversation: Uuid,
        item: &str,
        ctx: &Context,
    ) -> Result<(GateFacts, ConversationRow), StoreError> {
        let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
        let row = self.one_conversation(holder, conversation).await?;
        let d = match &row {
            Some(r) => decide_message(
                actor,
                action,
                &ConversationFacts {
                    counterpart: r.sealed.counterpart.clone(),
                    ended: r.ended,
                    counterpart_wrote_before: true,
                    counterpart_is_pharmacy: false,
                },
                &space.policy.facts(space.lifecycle),
            ),
            // No such conversation: answered like one of someone else's (AC-8).
            None => carnet_domain::access::Decision {
                allowed: false,
                reason: Reason::NotAParticipant,
                emergency: false,
            },
        };
        self.trace_decision(
            Access {
                holder,
                actor,
                action: action.access_action(),
                item,
                category: None,
                withheld: Withheld::default(),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        match row {
            Some(r) if d.allowed => Ok((space, r)),
            Some(_) if is_holder_side(actor) => Err(holder_refusal(d.reason)),
            _ => Err(StoreError::NotFound),
        }
    }

    async fn one_conversation(
        &self,
        holder: HolderId,
        id: Uuid,
    ) -> Result<Option<ConversationRow>, StoreError> {
        Ok(self
            .store
            .conversation_rows(holder, Some(id))
            .await?
            .into_iter()
            .next())
    }

    /// MS-2: starts a conversation. A professional or an establishment writes to a holder (the
    /// counterpart is then themselves); the holder's side writes to someone who already wrote
    /// to them, or to a pharmacy.
    pub async fn start_conversation(
        &self,
        holder: HolderId,
        actor: &Actor,
        to: CounterpartInfo,
        subject: &str,
        message: Outgoing<'_>,
        ctx: &Context,
    ) -> Result<Thread, StoreError> {
        let names: Vec<&str> = message.attachments.iter().map(|a| a.filename.as_str()).collect();
        let text = messaging::check_message(Some(subject), message.text, &names)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        let subject = subject.trim();
        if subject.is_empty() {
            return Err(StoreError::Invalid(
                "l'objet est obligatoire / a subject is required".into(),
            ));
        }
        check_attachments(&message.attachments)?;
        let sender = sender_of(actor).ok_or(StoreError::NotFound)?;
        let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
        let wrote = self.store.counterpart_wrote(holder, &to.counterpart).await?;
        let d = decide_message(
            actor,
            MessageAction::Start,
            &ConversationFacts {
                counterpart: to.counterpart.clone(),
                ended: false,
                counterpart_wrote_before: wrote,
                counterpart_is_pharmacy: to.is_pharmacy,
            },
            &space.policy.facts(space.lifecycle),
        );
        let id = carnet_domain::id::new_v7(self.store.now());
        self.trace_decision(
            Access {
                holder,
                actor,
                action: Action::Create,
                item: &format!("conversation/{id}"),
                category: None,
                withheld: Withheld::default(),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        if !d.allowed {
            return Err(if is_holder_side(actor) {
                holder_refusal(d.reason)
            } else {
                StoreError::NotFound
            });
        }
        let key = self.store.vault.get(holder).await?;
        let sealed = ConversationSealed {
            subject: subject.to_string(),
            counterpart: to.counterpart.clone(),
            counterpart_name: to.name.clone(),
        };
        let msg = self
            .store
            .write_message(
                &key,
                holder,
                id,
                Some(&sealed),
                Letter {
                    sender,
                    sender_name: message.sender_name,
                    text,
                    attachments: message.attachments,
                },
            )
            .await?;
        self.tell_counterpart(holder, &to.counterpart, actor).await?;
        let now = msg.sent_at;
        Ok(Thread {
            conversation: Conversation {
                id,
                subject: sealed.subject,
                counterpart: sealed.counterpart,
                counterpart_name: sealed.counterpart_name,
                ended: false,
                created_at: now,
                updated_at: now,
                unread: 0,
            },
            messages: vec![msg],
        })
    }

    /// A professional is told of a new message from the holder's side (their notices).
    async fn tell_counterpart(
        &self,
        holder: HolderId,
        c: &Counterpart,
        actor: &Actor,
    ) -> Result<(), StoreError> {
        if let (true, Counterpart::Professional { id }) = (is_holder_side(actor), c) {
            self.store
                .notify_professional(&id.0, "new_message", holder, None)
                .await?;
        }
        Ok(())
    }

    /// MS-2: writes in an existing conversation (the holder's side while it is not ended; its
    /// counterpart at any time, which reopens it).
    pub async fn post_message(
        &self,
        holder: HolderId,
        actor: &Actor,
        conversation: Uuid,
        message: Outgoing<'_>,
        ctx: &Context,
    ) -> Result<Message, StoreError> {
        let names: Vec<&str> = message.attachments.iter().map(|a| a.filename.as_str()).collect();
        let text = messaging::check_message(None, message.text, &names)
            .map_err(|e| StoreError::Invalid(e.to_string()))?;
        check_attachments(&message.attachments)?;
        let sender = sender_of(actor).ok_or(StoreError::NotFound)?;
        let (_, row) = self
            .open_conversation(
                holder,
                actor,
                MessageAction::Reply,
                conversation,
                &format!("conversation/{conversation}"),
                ctx,
            )
            .await?;
        let key = self.store.vault.get(holder).await?;
        let msg = self
            .store
            .write_message(
                &key,
                holder,
                conversation,
                None,
                Letter {
                    sender,
                    sender_name: message.sender_name,
                    text,
                    attachments: message.attachments,
                },
            )
            .await?;
        self.tell_counterpart(holder, &row.sealed.counterpart, actor)
            .await?;
        Ok(msg)
    }

    /// The conversations the caller may see in a space, most recent first: all of them for the
    /// holder's side, their own for a counterpart. Traced once (AC-6).
    pub async fn list_conversations(
        &self,
        holder: HolderId,
        actor: &Actor,
        ctx: &Context,
    ) -> Result<Vec<Conversation>, StoreError> {
        let space = self.space(holder, actor).await?.ok_or(StoreError::NotFound)?;
        let rows = self.store.conversation_rows(holder, None).await?;
        let facts = space.policy.facts(space.lifecycle);
        let holder_side = is_holder_side(actor);
        // Decided once for the listing (as reading a conversation of the caller's own).
        let probe = ConversationFacts {
            counterpart: Counterpart::of(actor).unwrap_or(Counterpart::Professional {
                id: carnet_domain::access::ProfessionalId(String::new()),
            }),
            ended: false,
            counterpart_wrote_before: true,
            counterpart_is_pharmacy: false,
        };
        let d = decide_message(actor, MessageAction::Read, &probe, &facts);
        self.trace_decision(
            Access {
                holder,
                actor,
                action: Action::Read,
                item: "conversations",
                category: None,
                withheld: Withheld::default(),
            },
            d,
            &space,
            ctx,
        )
        .await?;
        if !d.allowed {
            return Err(StoreError::NotFound);
        }
        let unread = self.store.unread_counts(holder, !holder_side).await?;
        Ok(rows
            .into_iter()
            .filter(|r| holder_side || Counterpart::of(actor).as_ref() == Some(&r.sealed.counterpart))
            .map(|r| Conversation {
                unread: unread.get(&r.id).copied().unwrap_or(0),
                id: r.id,
                subject: r.sealed.subject,
                counterpart: r.sealed.counterpart,
                counterpart_name: r.sealed.counterpart_name,
                ended: r.ended,
                created_at: r.created_at,
                updated_at: r.updated_at,
            })
            .collect())
    }

    /// Opens a conversation and marks the other side's messages read (read receipts).
    pub async fn read_conversation(
        &self,
        holder: HolderId,
        actor: &Actor,
        conversation: Uuid,
        ctx: &Context,
    ) -> Result<Thread, StoreError> {
        self.conversation_thread(holder, actor, conversation, true, ctx)
            .await
    }

    /// The message `message` and its conversation, without read receipts (FHIR reads).
    pub async fn read_message(
        &self,
        holder: HolderId,
        actor: &Actor,
        message: Uuid,
        ctx: &Context,
    ) -> Result<(Conversation, Message), StoreError> {
        let conv: Option<Uuid> = self
            .store
            .db
            .fetch_optional_as(
                Query::new("SELECT conversation_id FROM messages WHERE holder_id = $1 AND id = $2")
                    .binds((holder.as_uuid(), message)),
                "find message",
            )
            .await?;
        let t = self
            .conversation_thread(holder, actor, conv.unwrap_or(Uuid::nil()), false, ctx)
            .await?;
        let m = t
            .messages
            .into_iter()
            .find(|m| m.id == message)
            .ok_or(StoreError::NotFound)?;
        Ok((t.conversation, m))
    }

    /// A conversation with its messages; `mark_read` sends the read receipts.
    pub async fn conversation_thread(
        &self,
        holder: HolderId,
        actor: &Actor,
        conversation: Uuid,
        mark_read: bool,
        ctx: &Context,
    ) -> Result<Thread, StoreError> {
        let (space, row) = self
            .open_conversation(
                holder,
                actor,
                MessageAction::Read,
                conversation,
                &format!("conversation/{conversation}"),
                ctx,
            )
            .await?;
        let holder_side = is_holder_side(actor);
        let messages = self.store.message_rows(holder, conversation).await?;
        let unread = messages
            .iter()
            .filter(|m| m.from_holder_side != holder_side && m.read_at.is_none())
            .count() as i64;
        // A deceased holder's archive is read by representatives without receipts.
        if mark_read && unread > 0 && !matches!(space.lifecycle, carnet_domain::Lifecycle::Deceased { .. }) {
            self.store.mark_read(holder, conversation, !holder_side).await?;
        }
        Ok(Thread {
            conversation: Conversation {
                id: row.id,
                subject: row.sealed.subject,
                counterpart: row.sealed.counterpart,
                counterpart_name: row.sealed.counterpart_name,
                ended: row.ended,
                created_at: row.created_at,
                updated_at: row.updated_at,
                unread,
            },
            messages,
        })
    }

    /// MS-2: the counterpart ends a conversation; the holder cannot answer until they write.
    pub async fn end_conversation(
        &self,
        holder: HolderId,
        actor: &Actor,
        conversation: Uuid,
        ctx: &Context,
    ) -> Result<(), StoreError> {
        self.open_conversation(
            holder,
            actor,
            MessageAction::End,
            conversation,
            &format!("conversation/{conversation}"),
            ctx,
        )
        .await?;
        let now = self.store.now();
        let mut tx = self.store.db.begin().await?;
        tx.execute(
            Query::new(
                "UPDATE conversations SET ended = 1, updated_at = $3 WHERE holder_id = $1 AND id = $2",
            )
            .binds((holder.as_uuid(), conversation, now.as_micros())),
            "end conversation",
        )
        .await?;
        tx.commit().await
    }

    /// An attachment of a message the caller may read: its description and bytes.
    pub async fn message_attachment(
        &self,
        holder: HolderId,
        actor: &Actor,
        conversation: Uuid,
        attachment: AttachmentId,
        ctx: &Context,
    ) -> Result<(AttachmentRef, Bytes), StoreError> {
        self.open_conversation(
            holder,
            actor,
            MessageAction::Read,
            conversation,
            &format!("conversation/{conversation}/attachment/{attachment}"),
            ctx,
        )
        .await?;
        let found = self
            .store
            .message_rows(holder, conversation)
            .await?
            .into_iter()
            .flat_map(|m| m.attachments)
            .find(|a| a.attachment_id == attachment)
            .ok_or(StoreError::NotFound)?;
        let (_, bytes) = self.store.attachment(holder, attachment).await?;
        Ok((found, bytes))
    }

    /// MS-3: the holder files an attachment of a message in their record, in one step (a
    /// document of theirs, with the same checks as any deposit).
    pub async fn save_attachment_to_record(
        &self,
        holder: HolderId,
        actor: &Actor,
        conversation: Uuid,
        attachment: AttachmentId,
        ctx: &Context,
    ) -> Result<DocumentView, StoreError> {
        if !is_holder_side(actor) {
            return Err(StoreError::NotFound);
        }
        let (found, bytes) = self
            .message_attachment(holder, actor, conversation, attachment, ctx)
            .await?;
        let title = found
            .filename
            .rsplit_once('.')
            .map_or(found.filename.as_str(), |(stem, _)| stem)
            .to_string();
        self.deposit_document(
            holder,
            actor,
            NewDocument {
                title: Some(title),
                class: Some(Category::HolderDocuments),
                type_code: None,
                type_display: None,
                event_date: None,
                confidentiality: None,
                mime: found.content_type.clone(),
                filename: Some(found.filename.clone()),
                hold_from_holder: false,
                hidden_from_representatives: false,
                author_name: String::new(),
                organisation: None,
                xds: Default::default(),
            },
            bytes.to_vec(),
            ctx,
        )
        .await
    }

    /// The inbox with the patients' names and the subjects (issue 33: a clinician sees whose
    /// conversation it is before opening it). For each of the first [`NAMED_INBOX_PATIENTS`]
    /// patients, in the inbox's order, one identity read and one reading of the space's
    /// conversations, both through the gate and traced in that patient's history (AC-6); a
    /// refusal leaves the line unnamed, exactly like a patient past the limit.
    pub async fn named_inbox(&self, actor: &Actor, limit: i64) -> Result<Vec<NamedInboxEntry>, StoreError> {
        let entries = self.inbox(actor, limit).await?;
        type Named = (Option<crate::identity::Identity>, HashMap<Uuid, String>);
        let mut named: HashMap<HolderId, Named> = HashMap::new();
        for e in &entries {
            if named.contains_key(&e.holder) || named.len() >= NAMED_INBOX_PATIENTS {
                continue;
            }
            let patient = match self.identify(e.holder, actor).await {
                Ok(who) => Some(who),
                Err(StoreError::NotFound | StoreError::Shredded(_)) => None,
                Err(err) => return Err(err),
            };
            let subjects = match self
                .list_conversations(e.holder, actor, &Context::default())
                .await
            {
                Ok(convs) => convs.into_iter().map(|c| (c.id, c.subject)).collect(),
                Err(StoreError::NotFound | StoreError::Shredded(_)) => HashMap::new(),
                Err(err) => return Err(err),
            };
            named.insert(e.holder, (patient, subjects));
        }
        Ok(entries
            .into_iter()
            .map(|entry| {
                let (patient, subject) = match named.get(&entry.holder) {
                    Some((who, subjects)) => (who.clone(), subjects.get(&entry.conversation).cloned()),
                    None => (None, None),
                };
                NamedInboxEntry {
                    entry,
                    patient,
                    subject,
                }
            })
            .collect())
    }

    /// A professional's or an establishment's inbox across spaces: ids, times and unread
    /// counts only (no subject, no name: opening a conversation goes through the gate).
    pub async fn inbox(&self, actor: &Actor, limit: i64) -> Result<Vec<InboxEntry>, StoreError> {
        let Some(c) = Counterpart::of(actor) else {
            return Ok(Vec::new());
        };
        self.store
            .db
            .fetch_all(
                Query::new(
                    "SELECT c.holder_id, c.id, c.updated_at, c.ended, (SELECT COUNT(*) FROM messages m WHERE \
                     m.holder_id = c.holder_id AND m.conversation_id = c.id AND m.from_holder_side = 1 AND \
                     m.read_at IS NULL) FROM conversations c JOIN holders h ON h.id = c.holder_id WHERE \
                     c.counterpart = $1 AND h.lifecycle IN ('open', 'activated') ORDER BY c.updated_at DESC, \
                     c.id DESC LIMIT $2",
                )
                .binds((c.key(), limit)),
                "read inbox",
            )
            .await
            .and_then(|rs| {
                rs.into_iter()
                    .map(|mut r| {
                        Ok(InboxEntry {
                            holder: HolderId::from_uuid(r.take::<Uuid>(0)?),
                            conversation: r.take(1)?,
                            updated_at: Timestamp::from_micros(r.take(2)?),
                            ended: r.take::<i64>(3)? != 0,
                            unread: r.take(4)?,
                        })
                    })
                    .collect()
            })
    }
}
