//! Secure messaging over HTTP (SPEC MS-1..4). Like documents, one handler set serves the
//! holder's space (`/api/v1/me/conversations…`, holder or representative) and a
//! professional's view of a patient (`/api/v1/pro/patients/{holder}/conversations…`); every
//! call is a gate operation (decided, traced, notified). A professional's refusal answers like
//! absence (404, AC-8); the holder's own refusals (MS-2) are a 422 saying why.
//!
//! Messages are JSON: `{"to"?, "subject"?, "text", "attachments": [{"filename",
//! "content_type", "content_base64"}]}`; attachments pass the same checks as documents.

use std::collections::HashMap;

use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine;
use carnet_domain::AttachmentId;
use carnet_domain::access::{Actor, Context, ProfessionalId};
use carnet_domain::messaging::Counterpart;
use carnet_store::messaging::{
    Conversation, CounterpartInfo, Message, NewAttachment, Outgoing, Sender, Thread,
};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::Caller;
use super::extract::ProAuthenticated;
use super::extract::ValidJson;
use crate::{ApiError, AppState};

/// The largest message body accepted (base64 attachments included).
const MAX_BODY: usize = 30 * 1024 * 1024;

/// Routes relative to the space.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/conversations", get(list).post(start))
        .route("/conversations/{id}", get(show))
        .route("/conversations/{id}/messages", post(reply))
        .route("/conversations/{id}/end", post(end))
        .route("/conversations/{id}/attachments/{attachment}", get(attachment))
        .route("/conversations/{id}/attachments/{attachment}/save", post(save))
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// A professional's inbox across patients (`/api/v1/pro/inbox`).
pub fn pro_routes() -> Router<AppState> {
    Router::new().route("/inbox", get(inbox))
}

pub(crate) fn sender_json(s: &Sender) -> Value {
    match s {
        Sender::Holder => json!({"kind": "holder"}),
        Sender::Representative { id } => json!({"kind": "representative", "id": id}),
        Sender::Counterpart { counterpart } => json!({"kind": "counterpart", "id": counterpart.key()}),
    }
}

pub(crate) fn message_json(m: &Message) -> Value {
    json!({
        "id": m.id,
        "sender": sender_json(&m.sender),
        "sender_name": m.sender_name,
        "text": m.text,
        "attachments": m.attachments.iter().map(|a| json!({
            "id": a.attachment_id, "filename": a.filename, "content_type": a.content_type, "size": a.size,
        })).collect::<Vec<_>>(),
        "sent_at": m.sent_at.to_rfc3339(),
        "read_at": m.read_at.map(|t| t.to_rfc3339()),
        "from_holder_side": m.from_holder_side,
    })
}

pub(crate) fn conversation_json(c: &Conversation) -> Value {
    json!({
        "id": c.id,
        "subject": c.subject,
        "counterpart": c.counterpart.key(),
        "counterpart_name": c.counterpart_name,
        "ended": c.ended,
        "created_at": c.created_at.to_rfc3339(),
        "updated_at": c.updated_at.to_rfc3339(),
        "unread": c.unread,
    })
}

fn thread_json(t: &Thread) -> Value {
    let mut v = conversation_json(&t.conversation);
    if let Some(o) = v.as_object_mut() {
        o.insert("messages".into(), t.messages.iter().map(message_json).collect());
    }
    v
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AttachmentInput {
    filename: String,
    content_type: String,
    content_base64: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MessageInput {
    /// For a new conversation started by the holder's side: `rpps:…`.
    to: Option<String>,
    subject: Option<String>,
    #[serde(default)]
    text: String,
    #[serde(default)]
    attachments: Vec<AttachmentInput>,
}

pub(crate) fn decode_attachments(list: Vec<AttachmentInput>) -> Result<Vec<NewAttachment>, ApiError> {
    list.into_iter()
        .map(|a| {
            let content = base64::engine::general_purpose::STANDARD
                .decode(a.content_base64.trim())
                .map_err(|_| {
                    ApiError::bad_request(format!("attachment {}: content_base64 is not base64", a.filename))
                })?;
            Ok(NewAttachment {
                filename: a.filename,
                content_type: a.content_type,
                content,
            })
        })
        .collect()
}

/// Who a new conversation is with: the professional themselves, or (holder's side) the
/// professional named by `to`, from the directory.
pub(crate) async fn counterpart_for(
    s: &AppState,
    c: &Caller,
    to: Option<&str>,
) -> Result<CounterpartInfo, ApiError> {
    if let Some(me) = Counterpart::of(&c.actor) {
        return Ok(CounterpartInfo {
            counterpart: me,
            name: c.author_name.clone(),
            is_pharmacy: false,
        });
    }
    let to =
        to.ok_or_else(|| ApiError::bad_request("to: the professional to write to (rpps:…) is required"))?;
    let Some(Counterpart::Professional { id }) = Counterpart::parse_key(to.trim()) else {
        return Err(ApiError::bad_request("to: expected rpps:<number>"));
    };
    let pro = s.store.professional(&id.0).await?.ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "to: unknown professional",
        )
    })?;
    Ok(CounterpartInfo {
        counterpart: Counterpart::Professional {
            id: ProfessionalId(pro.rpps.clone()),
        },
        name: pro.display_name(),
        // MS-2: the holder may send a prescription to a pharmacist first.
        is_pharmacy: carnet_domain::Profession::parse(&pro.profession)
            == Some(carnet_domain::Profession::Pharmacien),
    })
}

fn sender_name(c: &Caller) -> String {
    match &c.actor {
        Actor::Holder { .. } | Actor::Representative { .. } => String::new(),
        _ => c.author_name.clone(),
    }
}

async fn list(State(s): State<AppState>, c: Caller) -> Result<Json<Value>, ApiError> {
    let list = s
        .gate
        .list_conversations(c.holder, &c.actor, &Context::default())
        .await?;
    Ok(Json(json!({
        "conversations": list.iter().map(conversation_json).collect::<Vec<_>>(),
    })))
}

async fn start(
    State(s): State<AppState>,
    c: Caller,
    ValidJson(m): ValidJson<MessageInput>,
) -> Result<Response, ApiError> {
    let to = counterpart_for(&s, &c, m.to.as_deref()).await?;
    let attachments = decode_attachments(m.attachments)?;
    let t = s
        .gate
        .start_conversation(
            c.holder,
            &c.actor,
            to,
            m.subject.as_deref().unwrap_or(""),
            Outgoing {
                text: &m.text,
                attachments,
                sender_name: &sender_name(&c),
            },
            &Context::default(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(thread_json(&t))).into_response())
}

fn id_param(params: &HashMap<String, String>, name: &str) -> Result<uuid::Uuid, ApiError> {
    params
        .get(name)
        .and_then(|i| i.parse().ok())
        .ok_or_else(ApiError::not_found)
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let t = s
        .gate
        .read_conversation(c.holder, &c.actor, id_param(&p, "id")?, &Context::default())
        .await?;
    Ok(Json(thread_json(&t)))
}

async fn reply(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<HashMap<String, String>>,
    ValidJson(m): ValidJson<MessageInput>,
) -> Result<Response, ApiError> {
    if m.to.is_some() || m.subject.is_some() {
        return Err(ApiError::bad_request(
            "to and subject belong to a new conversation",
        ));
    }
    let attachments = decode_attachments(m.attachments)?;
    let msg = s
        .gate
        .post_message(
            c.holder,
            &c.actor,
            id_param(&p, "id")?,
            Outgoing {
                text: &m.text,
                attachments,
                sender_name: &sender_name(&c),
            },
            &Context::default(),
        )
        .await?;
    Ok((StatusCode::CREATED, Json(message_json(&msg))).into_response())
}

async fn end(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    s.gate
        .end_conversation(c.holder, &c.actor, id_param(&p, "id")?, &Context::default())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

fn attachment_param(p: &HashMap<String, String>) -> Result<AttachmentId, ApiError> {
    p.get("attachment")
        .and_then(|i| i.parse().ok())
        .ok_or_else(ApiError::not_found)
}

async fn attachment(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (a, bytes) = s
        .gate
        .message_attachment(
            c.holder,
            &c.actor,
            id_param(&p, "id")?,
            attachment_param(&p)?,
            &Context::default(),
        )
        .await?;
    let disposition = format!(
        "attachment; filename=\"{}\"",
        a.filename.replace(
            |ch: char| !ch.is_ascii_alphanumeric() && ch != '.' && ch != '-',
            "_"
        )
    );
    Ok((
        [
            (header::CONTENT_TYPE, a.content_type),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        bytes,
    )
        .into_response())
}

/// MS-3: files an attachment in the record in one step.
async fn save(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let d = s
        .gate
        .save_attachment_to_record(
            c.holder,
            &c.actor,
            id_param(&p, "id")?,
            attachment_param(&p)?,
            &Context::default(),
        )
        .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "document": d.id, "title": d.meta.title })),
    )
        .into_response())
}

async fn inbox(State(s): State<AppState>, pro: ProAuthenticated) -> Result<Json<Value>, ApiError> {
    let entries = s.gate.inbox(&pro.professional.actor(), 200).await?;
    Ok(Json(json!({
        "conversations": entries.iter().map(|e| json!({
            "patient": e.holder,
            "conversation": e.conversation,
            "updated_at": e.updated_at.to_rfc3339(),
            "ended": e.ended,
            "unread": e.unread,
        })).collect::<Vec<_>>(),
    })))
}
