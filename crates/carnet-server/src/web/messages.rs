//! Secure messaging pages (SPEC MS-1..4) for holders and representatives: the conversations
//! with unread counts, a conversation with its messages, read receipts and attachments
//! (download, or file in the record in one step: MS-3), an answer with attachments (a
//! multipart form, no script), and a new thread to a professional who already wrote (MS-2).
//! Every action is the same gate call as the JSON API's.

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carnet_domain::AttachmentId;
use carnet_domain::access::Context;
use carnet_domain::messaging::Counterpart;
use carnet_store::messaging::{NewAttachment, Outgoing, Thread};
use serde::Deserialize;

use super::i18n::fr_en as tr;
use super::{Form, Holder, Nav, WebError, alert, csrf_field, esc, notice, page, see_other, when};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/messages", get(list).post(start))
        .route("/messages/{id}", get(show).post(reply))
        .route("/messages/{id}/classer/{attachment}", post(file_in_record))
}

#[derive(Deserialize)]
struct Flash {
    ok: Option<String>,
}

/// Reads a multipart form: its fields, and its files (named `pieces`) as attachments.
pub(super) async fn multipart(
    s: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Form, Vec<NewAttachment>), WebError> {
    let (form, parts) = super::read_multipart(s, headers, body, "pieces").await?;
    let files = parts
        .into_iter()
        .filter(|p| !p.data.is_empty())
        .map(|p| NewAttachment {
            filename: p.filename.unwrap_or_else(|| "piece-jointe".into()),
            content_type: p
                .content_type
                .unwrap_or_else(|| "application/octet-stream".into()),
            content: p.data,
        })
        .collect();
    Ok((form, files))
}

async fn list(State(s): State<AppState>, h: Holder, Query(f): Query<Flash>) -> Result<Response, WebError> {
    list_page(
        &s,
        &h,
        "",
        if f.ok.is_some() {
            tr("Votre message a été envoyé.", "Your message was sent.")
        } else {
            ""
        },
    )
    .await
}

async fn list_page(s: &AppState, h: &Holder, error: &str, info: &str) -> Result<Response, WebError> {
    let convs = s
        .gate
        .list_conversations(h.space(), &h.actor(), &Context::default())
        .await
        .map_err(ApiError::from)?;
    let rows: String = convs
        .iter()
        .map(|c| {
            let unread = if c.unread > 0 {
                format!(
                    " <span class=\"badge\">{} {}</span>",
                    c.unread,
                    if c.unread > 1 { tr("non lus", "unread") } else { tr("non lu", "unread") }
                )
            } else {
                String::new()
            };
            let ended = if c.ended {
                format!(" <span class=\"muted\">({})</span>", tr("close", "ended"))
            } else {
                String::new()
            };
            format!(
                "<li><a href=\"/messages/{}\">{}</a>{unread}{ended}<br><span class=\"muted\">{} — {}</span></li>",
                c.id,
                esc(&c.subject),
                esc(&c.counterpart_name),
                esc(&when(c.updated_at)),
            )
        })
        .collect();
    let list = if convs.is_empty() {
        format!(
            "<p>{}</p>",
            tr(
                "Aucun message pour l'instant. Les professionnels de santé qui vous suivent peuvent vous écrire ici.",
                "No message yet. The health professionals who follow you can write to you here."
            )
        )
    } else {
        format!("<ul class=\"events\">{rows}</ul>")
    };
    // MS-2: a new thread only to someone who already wrote.
    let mut known: Vec<(String, String)> = Vec::new();
    for c in &convs {
        if let Counterpart::Professional { .. } = c.counterpart {
            let k = c.counterpart.key();
            if !known.iter().any(|(x, _)| *x == k) {
                known.push((k, c.counterpart_name.clone()));
            }
        }
    }
    let new_form = if known.is_empty() {
        String::new()
    } else {
        let options: String = known
            .iter()
            .map(|(k, n)| format!("<option value=\"{}\">{}</option>", esc(k), esc(n)))
            .collect();
        let w_new = tr("Nouveau message", "New message");
        let w_to = tr("À", "To");
        let w_subject = tr("Objet", "Subject");
        let w_files = tr(
            "Pièces jointes (PDF, JPEG, PNG, texte)",
            "Attachments (PDF, JPEG, PNG, text)",
        );
        let w_send = tr("Envoyer", "Send");
        let w_hint = tr(
            "Vous pouvez écrire aux professionnels qui vous ont déjà écrit.",
            "You can write to the professionals who already wrote to you.",
        );
        format!(
            "<section aria-labelledby=\"nouveau\" class=\"card\"><h2 id=\"nouveau\">{w_new}</h2>\
             <form method=\"post\" action=\"/messages\" enctype=\"multipart/form-data\">{}\
             <p><label for=\"a\">{w_to}</label><br><select id=\"a\" name=\"a\">{options}</select></p>\
             <p><label for=\"objet\">{w_subject}</label><br><input id=\"objet\" name=\"objet\" maxlength=\"200\" required></p>\
             <p><label for=\"texte\">Message</label><br><textarea id=\"texte\" name=\"texte\" rows=\"5\" maxlength=\"20000\"></textarea></p>\
             <p><label for=\"pieces\">{w_files}</label><br><input id=\"pieces\" name=\"pieces\" type=\"file\" multiple></p>\
             <p><button type=\"submit\">{w_send}</button></p></form>\
             <p class=\"hint\">{w_hint}</p></section>",
            csrf_field(&h.csrf)
        )
    };
    let w_title = tr("Messagerie", "Messages");
    let w_address = tr(
        "Votre adresse de messagerie sécurisée :",
        "Your secure messaging address:",
    );
    let body = format!(
        "<h1>{w_title}</h1>{}{}<p class=\"hint\">{w_address} <strong>{}</strong></p>\
         <section aria-labelledby=\"fils\"><h2 id=\"fils\">Conversations</h2>{list}</section>{new_form}",
        alert(error),
        notice(info),
        esc(&address(s, h).await.unwrap_or_default()),
    );
    Ok(page(
        "Messagerie",
        &Nav::Holder {
            h,
            current: "/messages",
        },
        &body,
    )
    .into_response())
}

/// MS-1: the holder's address, derived from their INS.
async fn address(s: &AppState, h: &Holder) -> Option<String> {
    let rec = s
        .gate
        .read_administrative(h.space(), &h.actor(), &Context::default())
        .await
        .ok()?;
    let admin: carnet_domain::roster::Administrative = serde_json::from_slice(&rec.administrative).ok()?;
    Some(carnet_domain::messaging::holder_address(
        &admin.ins,
        &s.settings.messaging_domain,
    ))
}

async fn start(
    State(s): State<AppState>,
    h: Holder,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let (form, files) = multipart(&s, &headers, body).await?;
    h.check(&s, &form).await?;
    let caller = crate::api::extract::Caller {
        actor: h.actor(),
        holder: h.space(),
        author_name: String::new(),
        organisation: None,
    };
    let to = match crate::api::messages::counterpart_for(&s, &caller, Some(form.get("a"))).await {
        Ok(to) => to,
        Err(e) => return list_page(&s, &h, &e.message, "").await,
    };
    match s
        .gate
        .start_conversation(
            h.space(),
            &h.actor(),
            to,
            form.get("objet"),
            Outgoing {
                text: form.get("texte"),
                attachments: files,
                sender_name: "",
            },
            &Context::default(),
        )
        .await
    {
        Ok(t) => Ok(see_other(&format!("/messages/{}?ok=1", t.conversation.id))),
        Err(carnet_store::StoreError::Invalid(m)) => list_page(&s, &h, &m, "").await,
        Err(e) => Err(ApiError::from(e).into()),
    }
}

fn thread_html(t: &Thread, h: &Holder) -> String {
    let (w_you, w_read, w_unread, w_file) = (
        tr("Vous", "You"),
        tr("lu", "read"),
        tr("pas encore lu", "not read yet"),
        tr("Classer dans mes documents", "File in my documents"),
    );
    t.messages
        .iter()
        .map(|m| {
            let who = if m.from_holder_side {
                if m.sender_name.is_empty() { w_you.to_string() } else { m.sender_name.clone() }
            } else {
                t.conversation.counterpart_name.clone()
            };
            let receipt = match (m.from_holder_side, m.read_at) {
                (true, Some(r)) => format!(" <span class=\"muted\">— {w_read} {}</span>", esc(&when(r))),
                (true, None) => format!(" <span class=\"muted\">— {w_unread}</span>"),
                _ => String::new(),
            };
            let files: String = m
                .attachments
                .iter()
                .map(|a| {
                    format!(
                        "<li><a href=\"/api/v1/me/conversations/{c}/attachments/{id}\">{name}</a> \
                         <span class=\"muted\">({size} Ko)</span> \
                         <form method=\"post\" action=\"/messages/{c}/classer/{id}\" class=\"inline\">{csrf}\
                         <button type=\"submit\" class=\"link\">{w_file}</button></form></li>",
                        c = t.conversation.id,
                        id = a.attachment_id,
                        name = esc(&a.filename),
                        size = a.size.div_ceil(1024),
                        csrf = csrf_field(&h.csrf),
                    )
                })
                .collect();
            let files = if files.is_empty() { String::new() } else { format!("<ul>{files}</ul>") };
            format!(
                "<article class=\"card\"><h2 class=\"message-from\">{} <span class=\"muted\">{}</span>{receipt}</h2><p class=\"message\">{}</p>{files}</article>",
                esc(&who),
                esc(&when(m.sent_at)),
                esc(&m.text).replace('\n', "<br>"),
            )
        })
        .collect()
}

async fn show(
    State(s): State<AppState>,
    h: Holder,
    Path(id): Path<uuid::Uuid>,
    Query(f): Query<Flash>,
) -> Result<Response, WebError> {
    let info = match f.ok.as_deref() {
        Some("classe") => tr(
            "La pièce jointe a été classée dans vos documents.",
            "The attachment was filed in your documents.",
        ),
        Some(_) => tr("Votre message a été envoyé.", "Your message was sent."),
        None => "",
    };
    show_page(&s, &h, id, "", info).await
}

async fn show_page(
    s: &AppState,
    h: &Holder,
    id: uuid::Uuid,
    error: &str,
    info: &str,
) -> Result<Response, WebError> {
    let t = s
        .gate
        .read_conversation(h.space(), &h.actor(), id, &Context::default())
        .await
        .map_err(ApiError::from)?;
    let answer = if t.conversation.ended {
        format!(
            "<p class=\"notice\">{}</p>",
            tr(
                "Le professionnel a clos cette conversation : vous pourrez répondre quand il vous écrira à nouveau.",
                "The professional ended this conversation: you can answer when they write to you again."
            )
        )
    } else {
        let (w_answer, w_files, w_send) = (
            tr("Répondre", "Answer"),
            tr("Pièces jointes", "Attachments"),
            tr("Envoyer", "Send"),
        );
        format!(
            "<form method=\"post\" action=\"/messages/{}\" enctype=\"multipart/form-data\" class=\"card\">{}\
             <h2>{w_answer}</h2>\
             <p><label for=\"texte\">Message</label><br><textarea id=\"texte\" name=\"texte\" rows=\"5\" maxlength=\"20000\"></textarea></p>\
             <p><label for=\"pieces\">{w_files}</label><br><input id=\"pieces\" name=\"pieces\" type=\"file\" multiple></p>\
             <p><button type=\"submit\">{w_send}</button></p></form>",
            t.conversation.id,
            csrf_field(&h.csrf)
        )
    };
    let (w_back, w_with) = (tr("← Messagerie", "← Messages"), tr("Avec", "With"));
    let body = format!(
        "<p><a href=\"/messages\">{w_back}</a></p><h1>{}</h1><p class=\"muted\">{w_with} {}</p>{}{}{}{answer}",
        esc(&t.conversation.subject),
        esc(&t.conversation.counterpart_name),
        alert(error),
        notice(info),
        thread_html(&t, h),
    );
    Ok(page(
        "Conversation",
        &Nav::Holder {
            h,
            current: "/messages",
        },
        &body,
    )
    .into_response())
}

async fn reply(
    State(s): State<AppState>,
    h: Holder,
    Path(id): Path<uuid::Uuid>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let (form, files) = multipart(&s, &headers, body).await?;
    h.check(&s, &form).await?;
    match s
        .gate
        .post_message(
            h.space(),
            &h.actor(),
            id,
            Outgoing {
                text: form.get("texte"),
                attachments: files,
                sender_name: "",
            },
            &Context::default(),
        )
        .await
    {
        Ok(_) => Ok(see_other(&format!("/messages/{id}?ok=1"))),
        Err(carnet_store::StoreError::Invalid(m)) => show_page(&s, &h, id, &m, "").await,
        Err(e) => Err(ApiError::from(e).into()),
    }
}

/// MS-3: files an attachment in the record.
async fn file_in_record(
    State(s): State<AppState>,
    h: Holder,
    Path((id, attachment)): Path<(uuid::Uuid, AttachmentId)>,
    body: axum::body::Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    match s
        .gate
        .save_attachment_to_record(h.space(), &h.actor(), id, attachment, &Context::default())
        .await
    {
        Ok(_) => Ok(see_other(&format!("/messages/{id}?ok=classe"))),
        Err(carnet_store::StoreError::Invalid(m)) => show_page(&s, &h, id, &m, "").await,
        Err(e) => Err(ApiError::from(e).into()),
    }
}
