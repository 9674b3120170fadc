//! The health agenda over HTTP (SPEC AG-1..3). One handler set for the holder's space
//! (`/api/v1/me/agenda…`) and a professional's view of a patient
//! (`/api/v1/pro/patients/{holder}/agenda…`), all through the gate. The `.ics` export and the
//! private calendar feed (`/ical/{token}`, for calendar applications: the secret URL stands
//! for the session) speak iCalendar (RFC 5545).
//!
//! Times in requests are RFC 3339 instants or Paris wall-clock times (`2026-03-12T09:00`).

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use carnet_domain::Timestamp;
use carnet_domain::access::Context;
use carnet_domain::agenda::{
    EventInput, EventKind, Frequency, Recurrence, default_schedule, morning_of, parse_instant,
};
use carnet_fhir::ical::{CalendarEvent, calendar};
use carnet_store::agenda::AgendaEvent;
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::Authenticated;
use super::extract::Caller;
use super::extract::ValidJson;
use crate::{ApiError, AppState};

/// Routes relative to the space.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/agenda", get(list).post(add))
        .route("/agenda.ics", get(export))
        .route("/agenda/vaccine-proposals", get(proposals).post(accept_proposal))
        .route("/agenda/events/{id}", get(show).put(update).delete(remove))
}

/// The holder's calendar feeds (`/api/v1/me/agenda/feeds`).
pub fn me_routes() -> Router<AppState> {
    Router::new()
        .route("/agenda/feeds", get(feeds).post(new_feed))
        .route("/agenda/feeds/{id}", delete(revoke_feed))
}

/// The public feed URL.
pub fn feed_routes() -> Router<AppState> {
    Router::new().route("/ical/{token}", get(feed))
}

pub(crate) fn event_json(e: &AgendaEvent, now: Timestamp) -> Value {
    let horizon = now.plus_seconds(366 * 86_400);
    json!({
        "id": e.id,
        "version": e.version,
        "kind": e.event.kind.tag(),
        "title": e.event.title,
        "start": e.event.start.to_rfc3339(),
        "end": e.event.end.map(|t| t.to_rfc3339()),
        "location": e.event.location,
        "notes": e.event.notes,
        "recurrence": e.event.recurrence.as_ref().map(|r| json!({
            "frequency": r.frequency.rrule().to_ascii_lowercase(),
            "interval": r.interval,
            "count": r.count,
            "until": r.until.map(|t| t.to_rfc3339()),
        })),
        "reminders": e.event.reminders,
        "next_reminder_at": e.next_reminder_at.map(|t| t.to_rfc3339()),
        "upcoming": e.event.occurrences(now, horizon, 10).iter().map(|t| t.to_rfc3339()).collect::<Vec<_>>(),
        "author": e.author,
        "author_name": e.author_name,
        "created_at": e.created_at.to_rfc3339(),
        "updated_at": e.updated_at.to_rfc3339(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecurrenceIn {
    frequency: String,
    #[serde(default)]
    interval: Option<u32>,
    count: Option<u32>,
    until: Option<String>,
}

/// An event as a request gives it.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventIn {
    pub kind: String,
    pub title: String,
    pub start: String,
    pub end: Option<String>,
    pub location: Option<String>,
    pub notes: Option<String>,
    pub recurrence: Option<RecurrenceIn>,
    #[serde(default)]
    pub reminders: Vec<u32>,
}

fn instant(field: &str, s: &str) -> Result<Timestamp, ApiError> {
    parse_instant(s).ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            format!("{field}: expected a date and time such as 2026-03-12T09:00 or an RFC 3339 instant"),
        )
    })
}

impl EventIn {
    pub(crate) fn into_input(self) -> Result<EventInput, ApiError> {
        let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", m);
        let kind = EventKind::parse(&self.kind).ok_or_else(|| {
            invalid("kind: one of appointment, vaccine, screening, treatment, other".into())
        })?;
        let recurrence = match self.recurrence {
            None => None,
            Some(r) => Some(Recurrence {
                frequency: match r.frequency.as_str() {
                    "daily" => Frequency::Daily,
                    "weekly" => Frequency::Weekly,
                    "monthly" => Frequency::Monthly,
                    "yearly" => Frequency::Yearly,
                    _ => {
                        return Err(invalid(
                            "recurrence.frequency: daily, weekly, monthly or yearly".into(),
                        ));
                    }
                },
                interval: r.interval.unwrap_or(1),
                count: r.count,
                until: r
                    .until
                    .as_deref()
                    .map(|u| instant("recurrence.until", u))
                    .transpose()?,
            }),
        };
        Ok(EventInput {
            kind,
            title: self.title,
            start: instant("start", &self.start)?,
            end: self.end.as_deref().map(|e| instant("end", e)).transpose()?,
            location: self.location,
            notes: self.notes,
            recurrence,
            reminders: self.reminders,
        })
    }
}

async fn list(State(s): State<AppState>, c: Caller) -> Result<Json<Value>, ApiError> {
    let now = s.store.now();
    let events = s
        .gate
        .list_events(c.holder, &c.actor, &Context::default())
        .await?;
    Ok(Json(json!({
        "events": events.iter().map(|e| event_json(e, now)).collect::<Vec<_>>(),
    })))
}

async fn add(
    State(s): State<AppState>,
    c: Caller,
    ValidJson(e): ValidJson<EventIn>,
) -> Result<Response, ApiError> {
    let input = e.into_input()?;
    let ev = s
        .gate
        .add_event(c.holder, &c.actor, input, &c.author_name, &Context::default())
        .await?;
    Ok((StatusCode::CREATED, Json(event_json(&ev, s.store.now()))).into_response())
}

fn id_of(p: &HashMap<String, String>) -> Result<uuid::Uuid, ApiError> {
    p.get("id")
        .and_then(|i| i.parse().ok())
        .ok_or_else(ApiError::not_found)
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let e = s
        .gate
        .read_event(c.holder, &c.actor, id_of(&p)?, &Context::default())
        .await?;
    Ok(Json(event_json(&e, s.store.now())))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionQuery {
    version: Option<i64>,
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<HashMap<String, String>>,
    Query(v): Query<VersionQuery>,
    ValidJson(e): ValidJson<EventIn>,
) -> Result<Json<Value>, ApiError> {
    let input = e.into_input()?;
    let ev = s
        .gate
        .update_event(
            c.holder,
            &c.actor,
            id_of(&p)?,
            input,
            v.version,
            &Context::default(),
        )
        .await?;
    Ok(Json(event_json(&ev, s.store.now())))
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(p): Path<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    s.gate
        .delete_event(c.holder, &c.actor, id_of(&p)?, &Context::default())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

pub(crate) fn ics_response(events: &[AgendaEvent], download: bool) -> Response {
    let cal: Vec<CalendarEvent<'_>> = events
        .iter()
        .map(|e| CalendarEvent {
            uid: format!("{}@carnet", e.id),
            event: &e.event,
            updated_at: e.updated_at,
        })
        .collect();
    let text = calendar("Agenda santé (Carnet)", &cal);
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/calendar; charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if download {
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_static("attachment; filename=\"agenda-sante.ics\""),
        );
    }
    (headers, text).into_response()
}

/// AG-3: the agenda as an `.ics` file.
async fn export(State(s): State<AppState>, c: Caller) -> Result<Response, ApiError> {
    let events = s
        .gate
        .list_events(c.holder, &c.actor, &Context::default())
        .await?;
    Ok(ics_response(&events, true))
}

/// AG-1: vaccine reminders to propose from the vaccination record and the national schedule.
async fn proposals(State(s): State<AppState>, c: Caller) -> Result<Json<Value>, ApiError> {
    let p = s
        .gate
        .vaccine_proposals(c.holder, &c.actor, default_schedule(), &Context::default())
        .await?;
    Ok(Json(json!({ "proposals": p })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Accept {
    vaccine: String,
    dose: u32,
}

/// Accepts a proposal: a vaccine reminder at 9:00 on the due date (or in a week when already
/// overdue), reminded a week and a day before.
async fn accept_proposal(
    State(s): State<AppState>,
    c: Caller,
    ValidJson(a): ValidJson<Accept>,
) -> Result<Response, ApiError> {
    let ctx = Context::default();
    let p = s
        .gate
        .vaccine_proposals(c.holder, &c.actor, default_schedule(), &ctx)
        .await?
        .into_iter()
        .find(|p| p.vaccine == a.vaccine && p.dose == a.dose)
        .ok_or_else(|| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "no such proposal"))?;
    let now = s.store.now();
    let day = if p.overdue {
        carnet_domain::agenda::paris_date(now.plus_seconds(7 * 86_400))
    } else {
        Some(p.due)
    };
    let start = day.and_then(morning_of).ok_or_else(ApiError::internal)?;
    let ev = s
        .gate
        .add_event(
            c.holder,
            &c.actor,
            EventInput {
                kind: EventKind::Vaccine,
                title: p.label_fr.clone(),
                start,
                end: None,
                location: None,
                notes: None,
                recurrence: None,
                reminders: vec![7 * 24 * 60, 24 * 60],
            },
            &c.author_name,
            &ctx,
        )
        .await?;
    Ok((StatusCode::CREATED, Json(event_json(&ev, now))).into_response())
}

async fn feeds(State(s): State<AppState>, a: Authenticated) -> Result<Json<Value>, ApiError> {
    let list = a.holder_side(&s).await?.agenda_feeds().await?;
    Ok(Json(json!({
        "feeds": list.iter().map(|f| json!({
            "id": f.id,
            "created_at": f.created_at.to_rfc3339(),
            "last_used_at": f.last_used_at.map(|t| t.to_rfc3339()),
        })).collect::<Vec<_>>(),
    })))
}

/// AG-3: a private feed URL for calendar applications (shown once; revocable).
async fn new_feed(
    State(s): State<AppState>,
    headers: HeaderMap,
    a: Authenticated,
) -> Result<Response, ApiError> {
    let (f, token) = a
        .holder_side(&s)
        .await?
        .create_agenda_feed(a.session.holder)
        .await?;
    let origin = s.public_origin(&headers).unwrap_or_default();
    let url = format!("{origin}/ical/{token}.ics");
    Ok((
        StatusCode::CREATED,
        Json(json!({
            "id": f.id,
            "url": url,
            "webcal": url.replacen("https://", "webcal://", 1).replacen("http://", "webcal://", 1),
        })),
    )
        .into_response())
}

async fn revoke_feed(
    State(s): State<AppState>,
    a: Authenticated,
    Path(id): Path<uuid::Uuid>,
) -> Result<StatusCode, ApiError> {
    a.holder_side(&s).await?.revoke_agenda_feed(id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// The feed itself: the token stands for the holder (or a representative while they still
/// represent them); unknown, revoked or expired tokens are a plain 404.
async fn feed(State(s): State<AppState>, Path(token): Path<String>) -> Result<Response, ApiError> {
    let token = token.strip_suffix(".ics").unwrap_or(&token);
    let (holder, actor) = s
        .store
        .agenda_feed_actor(token)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let events = s.gate.list_events(holder, &actor, &Context::default()).await?;
    Ok(ics_response(&events, false))
}
