//! The health agenda page (SPEC AG-1..3): upcoming occurrences over the next twelve months,
//! adding an event (appointment, vaccine, screening, treatment; recurrence; reminders),
//! deleting one's own, vaccine reminders proposed from the vaccination record, the `.ics`
//! export and the private calendar feeds (created, shown once, revoked). Same gate calls as
//! the JSON API.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carnet_domain::access::{Author, Context};
use carnet_domain::agenda::{EventKind, default_schedule, morning_of, paris_date};
use serde::Deserialize;

use super::i18n::fr_en as tr;
use super::{Form, Holder, Nav, WebError, alert, csrf_field, esc, notice, page, see_other, when};
use crate::api::agenda::EventIn;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/agenda", get(show).post(add))
        .route("/agenda/vaccin", post(accept_vaccine))
        .route("/agenda/flux", post(new_feed))
        .route("/agenda/flux/{id}/revoquer", post(revoke_feed))
        .route("/agenda/{id}/supprimer", post(remove))
}

#[derive(Deserialize)]
struct Flash {
    ok: Option<String>,
}

pub(super) fn kind_label(k: EventKind) -> &'static str {
    match k {
        EventKind::Appointment => tr("Rendez-vous", "Appointment"),
        EventKind::Vaccine => tr("Vaccin", "Vaccine"),
        EventKind::Screening => tr("Dépistage", "Screening"),
        EventKind::Treatment => tr("Traitement", "Treatment"),
        EventKind::Other => tr("Autre", "Other"),
    }
}

async fn show(State(s): State<AppState>, h: Holder, Query(f): Query<Flash>) -> Result<Response, WebError> {
    let info = match f.ok.as_deref() {
        Some("ajoute") => tr(
            "L'événement a été ajouté à votre agenda.",
            "The event was added to your agenda.",
        ),
        Some("supprime") => tr("L'événement a été supprimé.", "The event was deleted."),
        Some("revoque") => tr(
            "Le lien d'abonnement a été révoqué : il ne fonctionne plus.",
            "The subscription link was revoked: it no longer works.",
        ),
        _ => "",
    };
    render(&s, &h, "", info, None).await
}

async fn render(
    s: &AppState,
    h: &Holder,
    error: &str,
    info: &str,
    new_feed: Option<String>,
) -> Result<Response, WebError> {
    let english = super::i18n::locale() == super::i18n::Locale::En;
    let ctx = Context::default();
    let now = s.store.now();
    let events = s
        .gate
        .list_events(h.space(), &h.actor(), &ctx)
        .await
        .map_err(ApiError::from)?;
    let horizon = now.plus_seconds(366 * 86_400);
    let mut upcoming: Vec<(carnet_domain::Timestamp, &carnet_store::agenda::AgendaEvent)> = events
        .iter()
        .flat_map(|e| {
            e.event
                .occurrences(now, horizon, 20)
                .into_iter()
                .map(move |t| (t, e))
        })
        .collect();
    upcoming.sort_by_key(|(t, e)| (*t, e.id));
    upcoming.truncate(50);
    let rows: String = upcoming
        .iter()
        .map(|(t, e)| {
            let by = match &e.author {
                Author::Holder => String::new(),
                _ => format!(
                    " <span class=\"muted\">({} {})</span>",
                    tr("ajouté par", "added by"),
                    esc(&e.author_name)
                ),
            };
            let delete = if e.author == Author::Holder {
                format!(
                    "<form method=\"post\" action=\"/agenda/{}/supprimer\" class=\"inline\">{}\
                     <button type=\"submit\" class=\"link\">{}</button></form>",
                    e.id,
                    csrf_field(&h.csrf),
                    tr("Supprimer", "Delete"),
                )
            } else {
                String::new()
            };
            let place = e
                .event
                .location
                .as_deref()
                .map(|l| format!(" — {}", esc(l)))
                .unwrap_or_default();
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}{place}{by}</td><td>{delete}</td></tr>",
                esc(&when(*t)),
                kind_label(e.event.kind),
                esc(&e.event.title),
            )
        })
        .collect();
    let table = if upcoming.is_empty() {
        format!(
            "<p>{}</p>",
            tr(
                "Aucun événement dans les douze prochains mois.",
                "No event in the next twelve months."
            )
        )
    } else {
        format!(
            "<div class=\"table\"><table><caption>{}</caption><thead><tr><th scope=\"col\">{}</th>\
             <th scope=\"col\">Type</th><th scope=\"col\">{}</th><th scope=\"col\"><span class=\"sr-only\">Actions</span></th></tr></thead>\
             <tbody>{rows}</tbody></table></div>",
            tr("Les douze prochains mois", "The next twelve months"),
            tr("Quand", "When"),
            tr("Événement", "Event"),
        )
    };
    let proposals = s
        .gate
        .vaccine_proposals(h.space(), &h.actor(), default_schedule(), &ctx)
        .await
        .unwrap_or_default();
    let vaccines = if proposals.is_empty() {
        format!(
            "<p>{}</p>",
            tr(
                "Aucun rappel de vaccin à proposer d'après votre carnet de vaccination.",
                "No vaccine reminder to propose from your vaccination record."
            )
        )
    } else {
        let items: String = proposals
            .iter()
            .map(|p| {
                // A dose past due is not announced as "late since 1985" (an empty record says
                // nothing of what was given): the holder checks it with their doctor.
                let due = if p.overdue {
                    tr("à vérifier avec votre médecin", "to check with your doctor").to_string()
                } else {
                    format!(
                        "{} {:02}/{:02}/{}",
                        tr("prévu le", "due on"),
                        p.due.day(),
                        u8::from(p.due.month()),
                        p.due.year()
                    )
                };
                format!(
                    "<li>{} — {due} <form method=\"post\" action=\"/agenda/vaccin\" class=\"inline\">{}\
                     <input type=\"hidden\" name=\"vaccin\" value=\"{}\"><input type=\"hidden\" name=\"dose\" value=\"{}\">\
                     <button type=\"submit\" class=\"link\">{}</button></form></li>",
                    esc(if english { &p.label_en } else { &p.label_fr }),
                    csrf_field(&h.csrf),
                    esc(&p.vaccine),
                    p.dose,
                    tr("Ajouter à mon agenda", "Add to my agenda"),
                )
            })
            .collect();
        format!("<ul class=\"events\">{items}</ul>")
    };
    let feeds = h
        .holder_side(s)
        .await?
        .agenda_feeds()
        .await
        .map_err(ApiError::from)?;
    let feed_items: String = feeds
        .iter()
        .map(|f| {
            format!(
                "<li>{} {} — {} <form method=\"post\" action=\"/agenda/flux/{}/revoquer\" class=\"inline\">{}\
                 <button type=\"submit\" class=\"link\">{}</button></form></li>",
                tr("Lien créé", "Link created"),
                esc(&when(f.created_at)),
                f.last_used_at
                    .map(|t| format!("{} {}", tr("lu", "read"), esc(&when(t))))
                    .unwrap_or_else(|| tr("jamais lu", "never read").into()),
                f.id,
                csrf_field(&h.csrf),
                tr("Révoquer", "Revoke"),
            )
        })
        .collect();
    let shown = new_feed
        .map(|u| {
            format!(
                "<div class=\"notice\" role=\"status\"><p>{}</p>\
                 <p><label for=\"lien\">{}</label><br>\
                 <input id=\"lien\" readonly value=\"{}\" size=\"60\"></p></div>",
                tr(
                    "Votre lien d'abonnement (il ne sera plus affiché) :",
                    "Your subscription link (it will not be shown again):"
                ),
                tr(
                    "Adresse à copier dans votre application d'agenda",
                    "Address to copy into your calendar application"
                ),
                esc(&u)
            )
        })
        .unwrap_or_default();
    let kinds: String = EventKind::ALL
        .iter()
        .map(|k| format!("<option value=\"{}\">{}</option>", k.tag(), kind_label(*k)))
        .collect();
    let w0 = tr("Agenda de santé", "Health agenda");
    let w1 = tr("Prochains événements", "Coming events");
    let w2 = tr(
        "Exporter l'agenda (iCalendar, .ics)",
        "Export the agenda (iCalendar, .ics)",
    );
    let w3 = tr("Ajouter un événement", "Add an event");
    let w4 = tr("Titre", "Title");
    let w5 = tr("Date et heure", "Date and time");
    let w6 = tr("Lieu (facultatif)", "Place (optional)");
    let w7 = tr("Répétition", "Repeat");
    let w8 = tr("Aucune", "None");
    let w9 = tr("Chaque jour", "Every day");
    let w10 = tr("Chaque semaine", "Every week");
    let w11 = tr("Chaque mois", "Every month");
    let w12 = tr("Chaque année", "Every year");
    let w13 = tr("Nombre de fois (si répété)", "How many times (if repeated)");
    let w14 = tr("Rappel", "Reminder");
    let w15 = tr("Aucun", "None");
    let w16 = tr("1 heure avant", "1 hour before");
    let w17 = tr("1 jour avant", "1 day before");
    let w18 = tr("1 semaine avant", "1 week before");
    let w19 = tr("Ajouter", "Add");
    let w20 = tr("Rappels de vaccins proposés", "Proposed vaccine reminders");
    let w21 = tr(
        "D'après le calendrier des vaccinations et les vaccins inscrits dans votre profil médical.",
        "From the vaccination schedule and the vaccines in your medical profile.",
    );
    let w22 = tr(
        "S'abonner depuis une application d'agenda",
        "Subscribe from a calendar application",
    );
    let w23 = tr(
        "Créer un lien d'abonnement privé",
        "Create a private subscription link",
    );
    let w24 = tr(
        "Toute personne qui a ce lien voit les titres et les heures de vos événements : ne le partagez pas, révoquez-le s'il a fuité.",
        "Anyone with this link sees the titles and times of your events: do not share it; revoke it if it leaked.",
    );
    let body = format!(
        "<h1>{w0}</h1>{}{}\
         <section aria-labelledby=\"prochains\"><h2 id=\"prochains\">{w1}</h2>{table}\
         <p><a href=\"/api/v1/me/agenda.ics\">{w2}</a></p></section>\
         <section aria-labelledby=\"ajout\" class=\"card\"><h2 id=\"ajout\">{w3}</h2>\
         <form method=\"post\" action=\"/agenda\">{csrf}\
         <p><label for=\"type\">Type</label><br><select id=\"type\" name=\"type\">{kinds}</select></p>\
         <p><label for=\"titre\">{w4}</label><br><input id=\"titre\" name=\"titre\" maxlength=\"200\" required></p>\
         <p><label for=\"debut\">{w5}</label><br><input id=\"debut\" name=\"debut\" type=\"datetime-local\" required></p>\
         <p><label for=\"lieu\">{w6}</label><br><input id=\"lieu\" name=\"lieu\" maxlength=\"300\"></p>\
         <p><label for=\"repetition\">{w7}</label><br><select id=\"repetition\" name=\"repetition\">\
         <option value=\"\">{w8}</option><option value=\"daily\">{w9}</option><option value=\"weekly\">{w10}</option>\
         <option value=\"monthly\">{w11}</option><option value=\"yearly\">{w12}</option></select></p>\
         <p><label for=\"fois\">{w13}</label><br><input id=\"fois\" name=\"fois\" type=\"number\" min=\"1\" max=\"1000\" value=\"10\"></p>\
         <p><label for=\"rappel\">{w14}</label><br><select id=\"rappel\" name=\"rappel\">\
         <option value=\"\">{w15}</option><option value=\"60\">{w16}</option><option value=\"1440\" selected>{w17}</option>\
         <option value=\"10080\">{w18}</option></select></p>\
         <p><button type=\"submit\">{w19}</button></p></form></section>\
         <section aria-labelledby=\"vaccins\"><h2 id=\"vaccins\">{w20}</h2>{vaccines}\
         <p class=\"hint\">{w21}</p></section>\
         <section aria-labelledby=\"abonnement\"><h2 id=\"abonnement\">{w22}</h2>{shown}\
         <ul class=\"events\">{feed_items}</ul>\
         <form method=\"post\" action=\"/agenda/flux\">{csrf}<button type=\"submit\">{w23}</button></form>\
         <p class=\"hint\">{w24}</p></section>",
        alert(error),
        notice(info),
        csrf = csrf_field(&h.csrf),
    );
    Ok(page(
        "Agenda",
        &Nav::Holder {
            h,
            current: "/agenda",
        },
        &body,
    )
    .into_response())
}

async fn add(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let recurrence = match form.get("repetition") {
        "" => None,
        f => {
            Some(serde_json::json!({"frequency": f, "count": form.get("fois").parse::<u32>().unwrap_or(10)}))
        }
    };
    let reminders: Vec<u32> = form.get("rappel").parse().ok().into_iter().collect();
    let input = serde_json::from_value::<EventIn>(serde_json::json!({
        "kind": form.get("type"),
        "title": form.get("titre"),
        "start": form.get("debut"),
        "location": Some(form.get("lieu")).filter(|l| !l.is_empty()),
        "recurrence": recurrence,
        "reminders": reminders,
    }))
    .map_err(|_| ApiError::bad_request("formulaire incomplet"))
    .and_then(EventIn::into_input);
    let input = match input {
        Ok(i) => i,
        Err(e) => return render(&s, &h, &e.message, "", None).await,
    };
    match s
        .gate
        .add_event(h.space(), &h.actor(), input, "", &Context::default())
        .await
    {
        Ok(_) => Ok(see_other("/agenda?ok=ajoute")),
        Err(carnet_store::StoreError::Invalid(m)) => render(&s, &h, &m, "", None).await,
        Err(e) => Err(ApiError::from(e).into()),
    }
}

async fn accept_vaccine(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let ctx = Context::default();
    let dose: u32 = form.get("dose").parse().unwrap_or(0);
    let Some(p) = s
        .gate
        .vaccine_proposals(h.space(), &h.actor(), default_schedule(), &ctx)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .find(|p| p.vaccine == form.get("vaccin") && p.dose == dose)
    else {
        return render(&s, &h, "Ce rappel n'est plus proposé.", "", None).await;
    };
    let now = s.store.now();
    let day = if p.overdue {
        paris_date(now.plus_seconds(7 * 86_400))
    } else {
        Some(p.due)
    };
    let start = day.and_then(morning_of).ok_or_else(ApiError::internal)?;
    s.gate
        .add_event(
            h.space(),
            &h.actor(),
            carnet_domain::agenda::EventInput {
                kind: EventKind::Vaccine,
                title: p.label_fr,
                start,
                end: None,
                location: None,
                notes: None,
                recurrence: None,
                reminders: vec![7 * 24 * 60, 24 * 60],
            },
            "",
            &ctx,
        )
        .await
        .map_err(ApiError::from)?;
    Ok(see_other("/agenda?ok=ajoute"))
}

async fn remove(
    State(s): State<AppState>,
    h: Holder,
    Path(id): Path<uuid::Uuid>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    s.gate
        .delete_event(h.space(), &h.actor(), id, &Context::default())
        .await
        .map_err(ApiError::from)?;
    Ok(see_other("/agenda?ok=supprime"))
}

async fn new_feed(
    State(s): State<AppState>,
    h: Holder,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let (_, token) = h
        .holder_side(&s)
        .await?
        .create_agenda_feed(h.session.holder)
        .await
        .map_err(ApiError::from)?;
    let origin = s.public_origin(&headers).unwrap_or_default();
    render(&s, &h, "", "", Some(format!("{origin}/ical/{token}.ics"))).await
}

async fn revoke_feed(
    State(s): State<AppState>,
    h: Holder,
    Path(id): Path<uuid::Uuid>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    h.holder_side(&s)
        .await?
        .revoke_agenda_feed(id)
        .await
        .map_err(ApiError::from)?;
    Ok(see_other("/agenda?ok=revoque"))
}
