//! Notifications of the holder (SPEC AC-6, AC-5, DM-7): what happened in their space, in the
//! space (a list, and live through server-sent events), and how they want to be told outside
//! it (e-mail and/or SMS preferences; those messages carry no health content, see `mail`).
//!
//! Notices are the traces the holder is told of (`carnet_store::traces::is_notice`), so the live
//! stream cannot miss an access that was traced, and a reconnecting browser resumes from
//! `Last-Event-ID` (the trace's sequence number). This server's own appends wake the streams
//! at once; other servers' appends are found by polling every `POLL`.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::get;
use axum::{Json, Router};
use carnet_domain::HolderId;
use carnet_domain::access::{Action, Actor};
use carnet_store::outbox::NotificationPreferences;
use carnet_store::traces::Trace;
use futures::Stream;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::extract::Authenticated;
use super::extract::ValidJson;
use crate::{ApiError, AppState};

/// How often a live stream looks for notices written by other servers.
const POLL: Duration = Duration::from_secs(2);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/notifications", get(list))
        .route("/notifications/stream", get(stream))
        .route(
            "/notifications/preferences",
            get(preferences).put(set_preferences),
        )
}

/// What kind of notice a trace is, for the holder.
fn kind_of(t: &Trace) -> &'static str {
    if t.entry.emergency {
        "emergency_access"
    } else if t.entry.action == Action::Create && t.entry.item.starts_with("document/") {
        "new_document"
    } else {
        "access"
    }
}

/// Names of the professionals in a batch of notices (the directory is public data).
async fn names(s: &AppState, notices: &[Trace], cache: &mut HashMap<String, Value>) -> Result<(), ApiError> {
    for t in notices {
        if let Actor::Professional { id, .. } = &t.entry.actor
            && !cache.contains_key(&id.0)
        {
            let v = match s.store.professional(&id.0).await? {
                Some(p) => json!({
                    "family_name": p.family_name,
                    "given_name": p.given_name,
                    "organisation": p.organisation_name,
                }),
                None => Value::Null,
            };
            cache.insert(id.0.clone(), v);
        }
    }
    Ok(())
}

fn notice_json(t: &Trace, cache: &HashMap<String, Value>) -> Value {
    let who = match &t.entry.actor {
        Actor::Professional { id, .. } => cache.get(&id.0).cloned().unwrap_or(Value::Null),
        _ => Value::Null,
    };
    json!({
        "seq": t.seq,
        "at": t.at.to_rfc3339(),
        "kind": kind_of(t),
        "actor": t.entry.actor,
        "who": who,
        "action": t.entry.action,
        "item": t.entry.item,
        "emergency_reason": t.entry.purpose,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    before: Option<i64>,
    limit: Option<i64>,
}

/// The newest notices first, by pages (`next_before`).
async fn list(
    State(s): State<AppState>,
    a: Authenticated,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    // AC-6, MI-2, DM-6: the notices as this reader may see them, decided by the gate.
    let carnet_store::history::HistoryPage {
        traces: page,
        next_before: next,
    } = s
        .gate
        .notices(a.session.acting_for, &a.actor(), q.before, limit)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let mut cache = HashMap::new();
    names(&s, &page, &mut cache).await?;
    let items: Vec<Value> = page.iter().map(|t| notice_json(t, &cache)).collect();
    Ok(Json(json!({ "notifications": items, "next_before": next })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StreamQuery {
    /// Resume after this notice (as `Last-Event-ID` does); default: from now on.
    after: Option<i64>,
}

struct Live {
    s: AppState,
    token: String,
    holder: HolderId,
    /// Who reads (the gate decides what of each notice they may see: MI-2, DM-6).
    reader: carnet_domain::access::Actor,
    last: i64,
    rx: tokio::sync::broadcast::Receiver<HolderId>,
    queue: VecDeque<Event>,
    names: HashMap<String, Value>,
}

impl Live {
    /// The next event, or `None` once the session has ended (logout, expiry, revocation).
    async fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(e) = self.queue.pop_front() {
                return Some(e);
            }
            match self.s.store.session_alive(&self.token).await {
                Ok(true) => {}
                Ok(false) => return None,
                // The database is away for a moment: try again later, keep the stream.
                Err(_) => {
                    tokio::time::sleep(POLL).await;
                    continue;
                }
            }
            match self
                .s
                .gate
                .notices_after(self.holder, &self.reader, self.last, 100)
                .await
            {
                // The reader may no longer read this space (a representation that ended).
                Ok(None) => return None,
                Ok(Some((batch, last))) => {
                    if names(&self.s, &batch, &mut self.names).await.is_ok() {
                        self.last = self.last.max(last);
                        for t in &batch {
                            let data = notice_json(t, &self.names).to_string();
                            self.queue.push_back(
                                Event::default()
                                    .id(t.seq.to_string())
                                    .event(kind_of(t))
                                    .data(data),
                            );
                        }
                    }
                    if !self.queue.is_empty() {
                        continue;
                    }
                }
                // The database is away for a moment: the next poll tries again.
                Err(_) => {}
            }
            let wait = tokio::time::sleep(POLL);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    _ = &mut wait => break,
                    r = self.rx.recv() => match r {
                        Ok(h) if h == self.holder => break,
                        Ok(_) => continue,
                        Err(RecvError::Lagged(_)) => break,
                        Err(RecvError::Closed) => { (&mut wait).await; break }
                    },
                }
            }
        }
    }
}

/// `GET /api/v1/me/notifications/stream`: server-sent events, one per notice, `id` = its
/// sequence number, `event` = its kind; ends when the session ends.
async fn stream(
    State(s): State<AppState>,
    a: Authenticated,
    headers: HeaderMap,
    Query(q): Query<StreamQuery>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let resume = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<i64>().ok())
        .or(q.after);
    let holder = a.session.acting_for;
    // Subscribe before reading the head: nothing committed in between is missed.
    let rx = s.store.subscribe_traces();
    let last = match resume {
        Some(n) => n.max(0),
        None => s.store.trace_head(holder).await?,
    };
    let live = Live {
        s,
        reader: a.actor(),
        token: a.token,
        holder,
        last,
        rx,
        queue: VecDeque::new(),
        names: HashMap::new(),
    };
    let events = futures::stream::unfold(live, |mut live| async move {
        live.next().await.map(|e| (Ok(e), live))
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

async fn preferences(State(s): State<AppState>, a: Authenticated) -> Result<Json<Value>, ApiError> {
    let p = a.holder_side(&s).await?.notification_preferences().await?;
    Ok(Json(json!(p)))
}

/// The holder (or their representative) chooses e-mail and/or SMS; it applies to the next
/// notice.
async fn set_preferences(
    State(s): State<AppState>,
    a: Authenticated,
    ValidJson(p): ValidJson<NotificationPreferences>,
) -> Result<Json<Value>, ApiError> {
    a.holder_side(&s).await?.set_notification_preferences(p).await?;
    Ok(Json(json!(p)))
}
