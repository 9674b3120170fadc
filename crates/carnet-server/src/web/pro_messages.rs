//! Secure messaging pages for professionals (SPEC MS-1, MS-2): their inbox across patients
//! (ids, times and unread counts only: opening a conversation goes through the gate), their
//! conversations with one patient, a new message (a professional starts conversations), an
//! answer with attachments, and ending a conversation. Same gate calls as the JSON API.

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carnet_domain::HolderId;
use carnet_domain::access::Context;
use carnet_domain::messaging::Counterpart;
use carnet_store::messaging::{CounterpartInfo, Thread};

use super::messages::multipart;
use super::{Form, Nav, Pro, WebError, alert, check_csrf, csrf_field, esc, notice, page, see_other, when};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/pro/messages", get(inbox))
        .route("/pro/patients/{holder}/messages", get(list).post(start))
        .route("/pro/patients/{holder}/messages/{id}", get(show).post(reply))
        .route("/pro/patients/{holder}/messages/{id}/clore", post(end))
}

fn holder_of(s: &str) -> Result<HolderId, WebError> {
    s.parse().map_err(|_| WebError::from(ApiError::not_found()))
}

fn name(p: &Pro) -> String {
    format!("{} {}", p.professional.given_name, p.professional.family_name)
}

async fn inbox(State(s): State<AppState>, p: Pro) -> Result<Response, WebError> {
    let entries = s
        .gate
        .inbox(&p.professional.actor(), 200)
        .await
        .map_err(ApiError::from)?;
    let rows: String = entries
        .iter()
        .map(|e| {
            let unread = if e.unread > 0 {
                format!(
                    " <span class=\"badge\">{} non lu{}</span>",
                    e.unread,
                    if e.unread > 1 { "s" } else { "" }
                )
            } else {
                String::new()
            };
            format!(
                "<li><a href=\"/pro/patients/{}/messages/{}\">Conversation mise à jour {}</a>{unread}{}</li>",
                e.holder,
                e.conversation,
                esc(&when(e.updated_at)),
                if e.ended {
                    " <span class=\"muted\">(close)</span>"
                } else {
                    ""
                },
            )
        })
        .collect();
    let list = if entries.is_empty() {
        "<p>Aucune conversation. Pour écrire à un patient, ouvrez son dossier.</p>".to_string()
    } else {
        format!("<ul class=\"events\">{rows}</ul>")
    };
    let body = format!(
        "<p><a href=\"/pro\">← Rechercher un patient</a></p><h1>Messagerie</h1>\
         <p class=\"hint\">Le nom du patient et l'objet s'affichent en ouvrant la conversation (accès tracé).</p>{list}"
    );
    Ok(page("Messagerie", &Nav::Pro { p: &p }, &body).into_response())
}

async fn list(State(s): State<AppState>, p: Pro, Path(holder): Path<String>) -> Result<Response, WebError> {
    let holder = holder_of(&holder)?;
    list_page(&s, &p, holder, "", "").await
}

async fn list_page(
    s: &AppState,
    p: &Pro,
    holder: HolderId,
    error: &str,
    typed: &str,
) -> Result<Response, WebError> {
    let convs = s
        .gate
        .list_conversations(holder, &p.professional.actor(), &Context::default())
        .await
        .map_err(ApiError::from)?;
    let rows: String = convs
        .iter()
        .map(|c| {
            format!(
                "<li><a href=\"/pro/patients/{holder}/messages/{}\">{}</a>{}<br><span class=\"muted\">{}</span></li>",
                c.id,
                esc(&c.subject),
                if c.unread > 0 { format!(" <span class=\"badge\">{} non lu(s)</span>", c.unread) } else { String::new() },
                esc(&when(c.updated_at)),
            )
        })
        .collect();
    let list = if convs.is_empty() {
        "<p>Aucune conversation avec ce patient.</p>".to_string()
    } else {
        format!("<ul class=\"events\">{rows}</ul>")
    };
    let body = format!(
        "<p><a href=\"/pro/patients/{holder}\">← Dossier du patient</a></p><h1>Messagerie avec le patient</h1>{}{list}\
         <section aria-labelledby=\"nouveau\" class=\"card\"><h2 id=\"nouveau\">Nouveau message</h2>\
         <form method=\"post\" action=\"/pro/patients/{holder}/messages\" enctype=\"multipart/form-data\">{}\
         <p><label for=\"objet\">Objet</label><br><input id=\"objet\" name=\"objet\" maxlength=\"200\" required></p>\
         <p><label for=\"texte\">Message</label><br><textarea id=\"texte\" name=\"texte\" rows=\"6\" maxlength=\"20000\">{}</textarea></p>\
         <p><label for=\"pieces\">Pièces jointes (PDF, CDA, JPEG, PNG, texte)</label><br><input id=\"pieces\" name=\"pieces\" type=\"file\" multiple></p>\
         <p><button type=\"submit\">Envoyer</button></p></form>\
         <p class=\"hint\">Le patient est prévenu d'un nouveau message, sans son contenu.</p></section>",
        alert(error),
        csrf_field(&p.csrf),
        esc(typed),
    );
    Ok(page("Messagerie", &Nav::Pro { p }, &body).into_response())
}

async fn start(
    State(s): State<AppState>,
    p: Pro,
    Path(holder): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let holder = holder_of(&holder)?;
    let (form, files) = multipart(&s, &headers, body).await?;
    check_csrf(&s, &p.token, &form).await?;
    let actor = p.professional.actor();
    let Some(counterpart) = Counterpart::of(&actor) else {
        return Err(ApiError::not_found().into());
    };
    match s
        .gate
        .start_conversation(
            holder,
            &actor,
            CounterpartInfo {
                counterpart,
                name: name(&p),
                is_pharmacy: false,
            },
            form.get("objet"),
            form.get("texte"),
            files,
            &name(&p),
            &Context::default(),
        )
        .await
    {
        Ok(t) => {
            s.wake.notify_one();
            Ok(see_other(&format!(
                "/pro/patients/{holder}/messages/{}",
                t.conversation.id
            )))
        }
        Err(carnet_store::StoreError::Invalid(m)) => list_page(&s, &p, holder, &m, form.get("texte")).await,
        Err(e) => Err(ApiError::from(e).into()),
    }
}

fn thread_html(t: &Thread, holder: HolderId) -> String {
    t.messages
        .iter()
        .map(|m| {
            let who = if m.from_holder_side { "Le patient".to_string() } else { m.sender_name.clone() };
            let receipt = match (m.from_holder_side, m.read_at) {
                (false, Some(r)) => format!(" <span class=\"muted\">— lu {}</span>", esc(&when(r))),
                (false, None) => " <span class=\"muted\">— pas encore lu</span>".into(),
                _ => String::new(),
            };
            let files: String = m
                .attachments
                .iter()
                .map(|a| {
                    format!(
                        "<li><a href=\"/api/v1/pro/patients/{holder}/conversations/{}/attachments/{}\">{}</a></li>",
                        t.conversation.id,
                        a.attachment_id,
                        esc(&a.filename)
                    )
                })
                .collect();
            let files = if files.is_empty() { String::new() } else { format!("<ul>{files}</ul>") };
            format!(
                "<article class=\"card\"><h3>{} <span class=\"muted\">{}</span>{receipt}</h3><p class=\"message\">{}</p>{files}</article>",
                esc(&who),
                esc(&when(m.sent_at)),
                esc(&m.text).replace('\n', "<br>"),
            )
        })
        .collect()
}

async fn show(
    State(s): State<AppState>,
    p: Pro,
    Path((holder, id)): Path<(String, uuid::Uuid)>,
) -> Result<Response, WebError> {
    show_page(&s, &p, holder_of(&holder)?, id, "", "").await
}

async fn show_page(
    s: &AppState,
    p: &Pro,
    holder: HolderId,
    id: uuid::Uuid,
    error: &str,
    info: &str,
) -> Result<Response, WebError> {
    let t = s
        .gate
        .read_conversation(holder, &p.professional.actor(), id, &Context::default())
        .await
        .map_err(ApiError::from)?;
    let end = if t.conversation.ended {
        "<p class=\"muted\">Conversation close : le patient ne peut plus répondre. Écrire à nouveau la rouvre.</p>".to_string()
    } else {
        format!(
            "<form method=\"post\" action=\"/pro/patients/{holder}/messages/{id}/clore\">{}\
             <button type=\"submit\" class=\"secondary\">Clore la conversation</button></form>",
            csrf_field(&p.csrf)
        )
    };
    let body = format!(
        "<p><a href=\"/pro/patients/{holder}/messages\">← Messagerie avec le patient</a></p><h1>{}</h1>{}{}{}\
         <form method=\"post\" action=\"/pro/patients/{holder}/messages/{id}\" enctype=\"multipart/form-data\" class=\"card\">{}\
         <h2>Répondre</h2>\
         <p><label for=\"texte\">Message</label><br><textarea id=\"texte\" name=\"texte\" rows=\"5\" maxlength=\"20000\"></textarea></p>\
         <p><label for=\"pieces\">Pièces jointes</label><br><input id=\"pieces\" name=\"pieces\" type=\"file\" multiple></p>\
         <p><button type=\"submit\">Envoyer</button></p></form>{end}",
        esc(&t.conversation.subject),
        alert(error),
        notice(info),
        thread_html(&t, holder),
        csrf_field(&p.csrf),
    );
    Ok(page("Conversation", &Nav::Pro { p }, &body).into_response())
}

async fn reply(
    State(s): State<AppState>,
    p: Pro,
    Path((holder, id)): Path<(String, uuid::Uuid)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, WebError> {
    let holder = holder_of(&holder)?;
    let (form, files) = multipart(&s, &headers, body).await?;
    check_csrf(&s, &p.token, &form).await?;
    match s
        .gate
        .post_message(
            holder,
            &p.professional.actor(),
            id,
            form.get("texte"),
            files,
            &name(&p),
            &Context::default(),
        )
        .await
    {
        Ok(_) => {
            s.wake.notify_one();
            Ok(see_other(&format!("/pro/patients/{holder}/messages/{id}")))
        }
        Err(carnet_store::StoreError::Invalid(m)) => show_page(&s, &p, holder, id, &m, "").await,
        Err(e) => Err(ApiError::from(e).into()),
    }
}

async fn end(
    State(s): State<AppState>,
    p: Pro,
    Path((holder, id)): Path<(String, uuid::Uuid)>,
    body: Bytes,
) -> Result<Response, WebError> {
    let holder = holder_of(&holder)?;
    let form = Form::parse(&body);
    check_csrf(&s, &p.token, &form).await?;
    s.gate
        .end_conversation(holder, &p.professional.actor(), id, &Context::default())
        .await
        .map_err(ApiError::from)?;
    Ok(see_other(&format!("/pro/patients/{holder}/messages/{id}")))
}
