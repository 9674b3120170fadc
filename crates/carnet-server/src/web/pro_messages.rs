//! Secure messaging pages for professionals (SPEC MS-1, MS-2): their inbox across patients
//! (each named, with the subjects, through traced reads of the gate: `Gate::named_inbox`), their
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
use carnet_domain::agenda::{EventInput, EventKind};
use carnet_domain::messaging::Counterpart;
use carnet_store::messaging::{CounterpartInfo, Outgoing, Thread};

use super::i18n::fr_en as tr;
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
    p.professional.display_name()
}

async fn inbox(State(s): State<AppState>, p: Pro) -> Result<Response, WebError> {
    let entries = s
        .gate
        .named_inbox(&p.professional.actor(), 200)
        .await
        .map_err(ApiError::from)?;
    let rows: String = entries
        .iter()
        .map(|n| {
            let e = &n.entry;
            let unread = if e.unread > 0 {
                format!(
                    " <span class=\"badge\">{} {}</span>",
                    e.unread,
                    if e.unread > 1 {
                        tr("non lus", "unread")
                    } else {
                        tr("non lu", "unread")
                    }
                )
            } else {
                String::new()
            };
            let ended = if e.ended {
                format!(" <span class=\"muted\">({})</span>", tr("close", "ended"))
            } else {
                String::new()
            };
            let updated = format!("{} {}", tr("mise à jour", "updated"), esc(&when(e.updated_at)));
            // Whose conversation and about what, when the gate let the professional know.
            let link = match &n.patient {
                Some(who) => format!(
                    "<strong>{}</strong> {}",
                    esc(&who.used_name.clone().unwrap_or_else(|| who.birth_name.clone())),
                    esc(&who.given_names.first().cloned().unwrap_or_default()),
                ),
                None => tr("Conversation", "Conversation").to_string(),
            };
            let born = n
                .patient
                .as_ref()
                .and_then(|who| {
                    who.birth_date
                        .format(time::macros::format_description!("[day]/[month]/[year]"))
                        .ok()
                })
                .map(|d| {
                    let born = match n.patient.as_ref().map(|who| &who.sex) {
                        Some(carnet_domain::roster::Sex::Female) => tr("née le", "born on"),
                        Some(carnet_domain::roster::Sex::Male) => tr("né le", "born on"),
                        _ => tr("né(e) le", "born on"),
                    };
                    format!(" — {born} {d}")
                })
                .unwrap_or_default();
            let subject = n
                .subject
                .as_deref()
                .filter(|t| !t.trim().is_empty())
                .map(|t| format!("« {} » · ", esc(t)))
                .unwrap_or_default();
            format!(
                "<li><a href=\"/pro/patients/{}/messages/{}\">{link}</a>{born}{unread}{ended}<br>\
                 <span class=\"muted\">{subject}{updated}</span></li>",
                e.holder, e.conversation,
            )
        })
        .collect();
    let list = if entries.is_empty() {
        format!(
            "<p>{}</p>",
            tr(
                "Aucune conversation. Pour écrire à un patient, ouvrez son dossier.",
                "No conversation. To write to a patient, open their record."
            )
        )
    } else {
        format!("<ul class=\"events\">{rows}</ul>")
    };
    let (w_back, w_title, w_hint) = (
        tr("← Rechercher un patient", "← Find a patient"),
        tr("Messagerie", "Messages"),
        tr(
            "Le nom de chaque patient et l'objet de vos échanges sont lus dans son espace : cette lecture \
             est tracée dans son historique, comme l'ouverture d'une conversation.",
            "Each patient's name and your conversations' subjects are read in their space: the reading is \
             traced in their history, like opening a conversation.",
        ),
    );
    let body =
        format!("<p><a href=\"/pro\">{w_back}</a></p><h1>{w_title}</h1><p class=\"hint\">{w_hint}</p>{list}");
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
    let who = super::pro::patient_header(s, p, holder).await?;
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
                if c.unread > 0 {
                    format!(" <span class=\"badge\">{} {}</span>", c.unread, tr("non lu(s)", "unread"))
                } else {
                    String::new()
                },
                esc(&when(c.updated_at)),
            )
        })
        .collect();
    let list = if convs.is_empty() {
        format!(
            "<p>{}</p>",
            tr(
                "Aucune conversation avec ce patient.",
                "No conversation with this patient."
            )
        )
    } else {
        format!("<ul class=\"events\">{rows}</ul>")
    };
    let w_back = tr("← Dossier du patient", "← Patient record");
    let w_title = tr("Messagerie avec le patient", "Messages with the patient");
    let w_new = tr("Nouveau message", "New message");
    let w_subject = tr("Objet", "Subject");
    let w_files = tr(
        "Pièces jointes (PDF, CDA, JPEG, PNG, texte)",
        "Attachments (PDF, CDA, JPEG, PNG, text)",
    );
    let w_send = tr("Envoyer", "Send");
    let w_hint = tr(
        "Le patient est prévenu d'un nouveau message, sans son contenu.",
        "The patient is told of a new message, without its content.",
    );
    let (w_rdv, w_rdv_hint, w_rdv_when, w_rdv_where) = (
        tr(
            "Rendez-vous ou rappel (facultatif)",
            "Appointment or reminder (optional)",
        ),
        tr(
            "Une date donnée ici est écrite dans le message et ajoutée à l'agenda du patient, avec un rappel la veille.",
            "A date given here is written in the message and added to the patient's agenda, with a reminder the day before.",
        ),
        tr("Date et heure", "Date and time"),
        tr("Lieu", "Place"),
    );
    let body = format!(
        "<p><a href=\"/pro/patients/{holder}\">{w_back}</a></p>{}<h1>{w_title}</h1>{}{list}\
         <section aria-labelledby=\"nouveau\" class=\"card\"><h2 id=\"nouveau\">{w_new}</h2>\
         <form method=\"post\" action=\"/pro/patients/{holder}/messages\" enctype=\"multipart/form-data\">{}\
         <p><label for=\"objet\">{w_subject}</label><br><input id=\"objet\" name=\"objet\" maxlength=\"200\" required></p>\
         <p><label for=\"texte\">Message</label><br><textarea id=\"texte\" name=\"texte\" rows=\"6\" maxlength=\"20000\">{}</textarea></p>\
         <p><label for=\"pieces\">{w_files}</label><br><input id=\"pieces\" name=\"pieces\" type=\"file\" multiple></p>\
         <fieldset><legend>{w_rdv}</legend><p class=\"hint\">{w_rdv_hint}</p>\
         <p><label for=\"rdv\">{w_rdv_when}</label><br><input id=\"rdv\" name=\"rdv\" type=\"datetime-local\"></p>\
         <p><label for=\"rdv_lieu\">{w_rdv_where}</label><br><input id=\"rdv_lieu\" name=\"rdv_lieu\" type=\"text\" maxlength=\"200\"></p>\
         </fieldset>\
         <p><button type=\"submit\">{w_send}</button></p></form>\
         <p class=\"hint\">{w_hint}</p></section>",
        who.banner,
        alert(error),
        csrf_field(&p.csrf),
        esc(typed),
    );
    Ok(super::page_named(&who.title(), &Nav::Pro { p }, &body).into_response())
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
    // An appointment or a reminder sent through messaging (seeds): checked before anything is
    // sent, added to the patient's agenda through the gate, and written in the message.
    let appointment = match appointment_of(&form) {
        Ok(a) => a,
        Err(m) => return list_page(&s, &p, holder, m, form.get("texte")).await,
    };
    let mut text = form.get("texte").to_string();
    let mut added = "";
    if let Some(input) = appointment {
        let place = input.location.clone();
        let at = input.start;
        let written = match s
            .gate
            .add_event(holder, &actor, input, &name(&p), &Context::default())
            .await
        {
            Ok(_) => {
                added = "agenda";
                tr("ajouté à votre agenda", "added to your agenda")
            }
            // Not authorised to write in the agenda: the date is in the message only.
            Err(carnet_store::StoreError::NotFound) => {
                added = "message";
                tr("à noter dans votre agenda", "to note in your agenda")
            }
            Err(carnet_store::StoreError::Invalid(m)) => {
                return list_page(&s, &p, holder, &m, form.get("texte")).await;
            }
            Err(e) => return Err(ApiError::from(e).into()),
        };
        text = format!(
            "{}{}{} {}{} ({written}).",
            text.trim_end(),
            if text.trim().is_empty() { "" } else { "\n\n" },
            tr("Rendez-vous :", "Appointment:"),
            when(at),
            place.map(|l| format!(", {l}")).unwrap_or_default(),
        );
    }
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
            Outgoing {
                text: &text,
                attachments: files,
                sender_name: &name(&p),
            },
            &Context::default(),
        )
        .await
    {
        Ok(t) => {
            s.wake.notify_one();
            let info = if added.is_empty() {
                String::new()
            } else {
                format!("?rdv={added}")
            };
            Ok(see_other(&format!(
                "/pro/patients/{holder}/messages/{}{info}",
                t.conversation.id
            )))
        }
        Err(carnet_store::StoreError::Invalid(m)) => list_page(&s, &p, holder, &m, form.get("texte")).await,
        Err(e) => Err(ApiError::from(e).into()),
    }
}

/// The appointment of the new-message form, if a date was given: the subject as its title,
/// the place, a reminder the day before (AG-3). A French message when the date is unreadable.
fn appointment_of(form: &Form) -> Result<Option<EventInput>, &'static str> {
    let start = form.get("rdv").trim();
    if start.is_empty() {
        return Ok(None);
    }
    let Some(start) = carnet_domain::agenda::parse_instant(start) else {
        return Err("La date du rendez-vous est illisible : choisissez un jour et une heure.");
    };
    let title = match form.get("objet").trim() {
        "" => "Rendez-vous",
        t => t,
    };
    Ok(Some(EventInput {
        kind: EventKind::Appointment,
        title: title.to_string(),
        start,
        end: None,
        location: Some(form.get("rdv_lieu").trim().to_string()).filter(|l| !l.is_empty()),
        notes: None,
        recurrence: None,
        reminders: vec![24 * 60],
    }))
}

fn thread_html(t: &Thread, holder: HolderId) -> String {
    let (w_patient, w_read, w_unread) = (
        tr("Le patient", "The patient"),
        tr("lu", "read"),
        tr("pas encore lu", "not read yet"),
    );
    t.messages
        .iter()
        .map(|m| {
            let who = if m.from_holder_side { w_patient.to_string() } else { m.sender_name.clone() };
            let receipt = match (m.from_holder_side, m.read_at) {
                (false, Some(r)) => format!(" <span class=\"muted\">— {w_read} {}</span>", esc(&when(r))),
                (false, None) => format!(" <span class=\"muted\">— {w_unread}</span>"),
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
                "<article class=\"card\"><h2 class=\"message-from\">{} <span class=\"muted\">{}</span>{receipt}</h2><p class=\"message\">{}</p>{files}</article>",
                esc(&who),
                esc(&when(m.sent_at)),
                esc(&m.text).replace('\n', "<br>"),
            )
        })
        .collect()
}

#[derive(serde::Deserialize)]
struct Shown {
    rdv: Option<String>,
}

async fn show(
    State(s): State<AppState>,
    p: Pro,
    Path((holder, id)): Path<(String, uuid::Uuid)>,
    axum::extract::Query(q): axum::extract::Query<Shown>,
) -> Result<Response, WebError> {
    let info = match q.rdv.as_deref() {
        Some("agenda") => tr(
            "Message envoyé ; le rendez-vous est ajouté à l'agenda du patient.",
            "Message sent; the appointment is added to the patient's agenda.",
        ),
        Some("message") => tr(
            "Message envoyé avec le rendez-vous. Vous n'êtes pas autorisé à écrire dans l'agenda de ce \
             patient : il le notera lui-même.",
            "Message sent with the appointment. You may not write in this patient's agenda: they will note it.",
        ),
        _ => "",
    };
    show_page(&s, &p, holder_of(&holder)?, id, "", info).await
}

async fn show_page(
    s: &AppState,
    p: &Pro,
    holder: HolderId,
    id: uuid::Uuid,
    error: &str,
    info: &str,
) -> Result<Response, WebError> {
    let who = super::pro::patient_header(s, p, holder).await?;
    let t = s
        .gate
        .read_conversation(holder, &p.professional.actor(), id, &Context::default())
        .await
        .map_err(ApiError::from)?;
    let end = if t.conversation.ended {
        format!(
            "<p class=\"muted\">{}</p>",
            tr(
                "Conversation close : le patient ne peut plus répondre. Écrire à nouveau la rouvre.",
                "Conversation ended: the patient cannot answer. Writing again reopens it."
            )
        )
    } else {
        format!(
            "<form method=\"post\" action=\"/pro/patients/{holder}/messages/{id}/clore\">{}\
             <button type=\"submit\" class=\"secondary\">{}</button></form>",
            csrf_field(&p.csrf),
            tr("Clore la conversation", "End the conversation"),
        )
    };
    let w_back = tr("← Messagerie avec le patient", "← Messages with the patient");
    let w_answer = tr("Répondre", "Answer");
    let w_files = tr("Pièces jointes", "Attachments");
    let w_send = tr("Envoyer", "Send");
    let body = format!(
        "<p><a href=\"/pro/patients/{holder}/messages\">{w_back}</a></p>{}<h1>{}</h1>{}{}{}\
         <form method=\"post\" action=\"/pro/patients/{holder}/messages/{id}\" enctype=\"multipart/form-data\" class=\"card\">{}\
         <h2>{w_answer}</h2>\
         <p><label for=\"texte\">Message</label><br><textarea id=\"texte\" name=\"texte\" rows=\"5\" maxlength=\"20000\"></textarea></p>\
         <p><label for=\"pieces\">{w_files}</label><br><input id=\"pieces\" name=\"pieces\" type=\"file\" multiple></p>\
         <p><button type=\"submit\">{w_send}</button></p></form>{end}",
        who.banner,
        esc(&t.conversation.subject),
        alert(error),
        notice(info),
        thread_html(&t, holder),
        csrf_field(&p.csrf),
    );
    Ok(super::page_named(&who.title(), &Nav::Pro { p }, &body).into_response())
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
            Outgoing {
                text: form.get("texte"),
                attachments: files,
                sender_name: &name(&p),
            },
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
