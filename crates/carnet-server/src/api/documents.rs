//! Documents of the shared medical record over HTTP (SPEC DM-1..8, MI-2). One set of handlers
//! serves two mount points: the holder's own space (`/api/v1/me/documents`, the session's
//! space, as holder or representative) and a professional's view of a patient
//! (`/api/v1/pro/patients/{holder}/documents`). Every operation is a call on the gate, which
//! decides, traces and notifies; a denial answers exactly like a missing document (404, AC-8).
//!
//! Upload: the raw bytes as the body with their `Content-Type`, the metadata as query
//! parameters. The body is read chunk by chunk into one buffer, refused with 413 as soon as it
//! passes the configured limit (20 MiB by default); the same buffer is then sealed in place.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use carnet_domain::access::{Author, Category, Context};
use carnet_domain::document::{Format, Status};
use carnet_domain::{DocumentId, Timestamp};
use carnet_store::documents::{DocumentChange, DocumentFilter, DocumentView, NewDocument};
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::extract::Caller;
use super::extract::ValidJson;
use crate::{ApiError, AppState};

/// Routes relative to the space (mounted under `/api/v1/me` and `/api/v1/pro/patients/{holder}`).
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/documents", get(list).post(deposit))
        .route("/documents/{id}", get(show).patch(change).delete(remove))
        .route("/documents/{id}/content", get(content))
        .route("/documents/{id}/versions", post(replace))
        .route("/documents/{id}/history", get(history))
}

fn doc_id(params: &HashMap<String, String>) -> Result<DocumentId, ApiError> {
    params
        .get("id")
        .and_then(|i| i.parse().ok())
        .ok_or_else(ApiError::not_found)
}

/// The JSON of a document (XDS-shaped metadata, DM-1).
pub fn view_json(v: &DocumentView, now: Timestamp) -> Value {
    serde_json::to_value(DocumentJson::of(v, now)).unwrap_or_default()
}

/// A document as the JSON API shows it, serialised straight from the view (a listing makes no
/// `Value` tree); the fields in the order clients have always read them.
#[derive(Serialize)]
pub struct DocumentJson<'a> {
    id: DocumentId,
    set_id: DocumentId,
    status: Status,
    title: &'a str,
    class: Category,
    type_code: &'a Option<String>,
    type_display: &'a Option<String>,
    event_date: &'a Option<String>,
    author: &'a Author,
    author_name: &'a str,
    organisation: &'a Option<String>,
    uploaded_at: String,
    confidentiality: &'a str,
    format: Format,
    mime: &'a str,
    size: u64,
    sha256: &'a str,
    filename: &'a str,
    masked: bool,
    hidden_from_representatives: bool,
    visible_to_holder: bool,
    visible_from: String,
    replaces: &'a Option<String>,
    deletion_request: Option<DeletionJson<'a>>,
}

#[derive(Serialize)]
struct DeletionJson<'a> {
    reason: &'a str,
    at: String,
    accepted: Option<bool>,
}

impl<'a> DocumentJson<'a> {
    pub fn of(v: &'a DocumentView, now: Timestamp) -> Self {
        let m = &v.meta;
        Self {
            id: v.id,
            set_id: v.set_id,
            status: v.status,
            title: &m.title,
            class: m.class,
            type_code: &m.type_code,
            type_display: &m.type_display,
            event_date: &m.event_date,
            author: &m.author,
            author_name: &m.author_name,
            organisation: &m.organisation,
            uploaded_at: m.uploaded_at.to_rfc3339(),
            confidentiality: &m.confidentiality,
            format: m.format,
            mime: &m.mime,
            size: m.size,
            sha256: &m.sha256,
            filename: &m.filename,
            masked: m.masked,
            hidden_from_representatives: m.hidden_from_representatives,
            visible_to_holder: m.visible_to_holder(now),
            visible_from: m.visible_from.to_rfc3339(),
            replaces: &m.replaces,
            deletion_request: m.deletion_request.as_ref().map(|r| DeletionJson {
                reason: &r.reason,
                at: r.at.to_rfc3339(),
                accepted: r.accepted,
            }),
        }
    }
}

/// A page of documents as the JSON API shows it.
#[derive(Serialize)]
struct DocumentPageJson<'a> {
    documents: Vec<DocumentJson<'a>>,
    total: usize,
    next_before: Option<DocumentId>,
}

fn parse_time(field: &str, v: &str) -> Result<Timestamp, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "{field} : date AAAA-MM-JJ ou RFC 3339 attendue / {field}: YYYY-MM-DD or RFC 3339 expected"
        ))
    };
    if let Ok(t) = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
        return Ok(Timestamp::from_offset_date_time(t));
    }
    let d =
        time::Date::parse(v, time::macros::format_description!("[year]-[month]-[day]")).map_err(|_| bad())?;
    Ok(Timestamp::from_offset_date_time(d.midnight().assume_utc()))
}

fn parse_class(v: &str) -> Result<Category, ApiError> {
    Category::parse(v).ok_or_else(|| {
        ApiError::bad_request(format!(
            "classe inconnue '{v}' / unknown class; one of: {}",
            Category::ALL.map(|c| c.tag()).join(", ")
        ))
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    class: Option<String>,
    type_code: Option<String>,
    author: Option<String>,
    from: Option<String>,
    to: Option<String>,
    q: Option<String>,
    #[serde(default)]
    history: bool,
    /// `first`: DM-8 first view (current documents of the last two years, ranked).
    view: Option<String>,
    before: Option<String>,
    limit: Option<usize>,
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Response, ApiError> {
    let filter = DocumentFilter {
        class: q.class.as_deref().map(parse_class).transpose()?,
        type_code: q.type_code,
        author: q.author,
        from: q.from.as_deref().map(|v| parse_time("from", v)).transpose()?,
        to: q.to.as_deref().map(|v| parse_time("to", v)).transpose()?,
        text: q.q.filter(|t| !t.trim().is_empty()),
        include_history: q.history,
        first_view: match q.view.as_deref() {
            None | Some("all") => false,
            Some("first") => true,
            Some(_) => return Err(ApiError::bad_request("view: first or all")),
        },
        before: q
            .before
            .as_deref()
            .map(|b| {
                b.parse()
                    .map_err(|_| ApiError::bad_request("before: a document id"))
            })
            .transpose()?,
        limit: q.limit.unwrap_or(50).clamp(1, 200),
    };
    let page = s
        .gate
        .list_documents(c.holder, &c.actor, &filter, &Context::default())
        .await?;
    let now = s.store.now();
    Ok(Json(DocumentPageJson {
        documents: page.documents.iter().map(|v| DocumentJson::of(v, now)).collect(),
        total: page.total,
        next_before: page.next_before,
    })
    .into_response())
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct DepositQuery {
    title: Option<String>,
    class: Option<String>,
    type_code: Option<String>,
    type_display: Option<String>,
    event_date: Option<String>,
    confidentiality: Option<String>,
    filename: Option<String>,
    /// DM-6: keep it from the holder until an announcement consultation (professionals).
    #[serde(default)]
    hold: bool,
    /// MI-2: hidden from the legal representatives.
    #[serde(default)]
    hidden_from_representatives: bool,
}

/// Reads the body into one buffer, refusing it (413) past `limit` without reading further.
pub(crate) async fn read_limited(headers: &HeaderMap, body: Body, limit: usize) -> Result<Vec<u8>, ApiError> {
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            format!(
                "document trop volumineux (au plus {} Mio) / document too large (at most {} MiB)",
                limit / (1024 * 1024),
                limit / (1024 * 1024)
            ),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let mut buf = Vec::with_capacity(declared.unwrap_or(64 * 1024).min(limit) + 64);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|_| {
            ApiError::bad_request("envoi interrompu ou trop volumineux : rien n'a été enregistré / upload interrupted or too large: nothing was saved")
        })?;
        if buf.len() + chunk.len() > limit {
            return Err(too_large());
        }
        buf.extend_from_slice(&chunk);
    }
    if declared.is_some_and(|n| n != buf.len()) {
        return Err(ApiError::bad_request(
            "envoi tronqué : rien n'a été enregistré / truncated upload: nothing was saved",
        ));
    }
    Ok(buf)
}

fn new_document(c: &Caller, headers: &HeaderMap, q: DepositQuery) -> Result<NewDocument, ApiError> {
    let mime = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_type",
                "Content-Type requis / Content-Type required",
            )
        })?
        .to_string();
    Ok(NewDocument {
        title: q.title,
        class: q.class.as_deref().map(parse_class).transpose()?,
        type_code: q.type_code,
        type_display: q.type_display,
        event_date: q.event_date,
        confidentiality: q.confidentiality,
        mime,
        filename: q.filename,
        hold_from_holder: q.hold,
        hidden_from_representatives: q.hidden_from_representatives,
        author_name: c.author_name.clone(),
        organisation: c.organisation.clone(),
        xds: Default::default(),
    })
}

async fn deposit(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<DepositQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let new = new_document(&c, &headers, q)?;
    let bytes = read_limited(&headers, body, s.settings.document_limit_bytes).await?;
    let v = s
        .gate
        .deposit_document(c.holder, &c.actor, new, bytes, &Context::default())
        .await?;
    s.wake.notify_one();
    Ok((StatusCode::CREATED, Json(view_json(&v, s.store.now()))))
}

async fn replace(
    State(s): State<AppState>,
    c: Caller,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Query<DepositQuery>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = doc_id(&params)?;
    let new = new_document(&c, &headers, q)?;
    let bytes = read_limited(&headers, body, s.settings.document_limit_bytes).await?;
    let v = s
        .gate
        .replace_document(c.holder, &c.actor, id, new, bytes, &Context::default())
        .await?;
    Ok((StatusCode::CREATED, Json(view_json(&v, s.store.now()))))
}

async fn show(
    State(s): State<AppState>,
    c: Caller,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let id = doc_id(&params)?;
    let versions = s
        .gate
        .document_history(c.holder, &c.actor, id, &Context::default())
        .await?;
    let now = s.store.now();
    let this = versions
        .iter()
        .find(|v| v.id == id)
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(view_json(this, now)))
}

async fn history(
    State(s): State<AppState>,
    c: Caller,
    Path(params): Path<HashMap<String, String>>,
) -> Result<Json<Value>, ApiError> {
    let id = doc_id(&params)?;
    let versions = s
        .gate
        .document_history(c.holder, &c.actor, id, &Context::default())
        .await?;
    let now = s.store.now();
    Ok(Json(
        json!({ "versions": versions.iter().map(|v| view_json(v, now)).collect::<Vec<_>>() }),
    ))
}

#[derive(Deserialize)]
struct ContentQuery {
    /// `download` (default) or `inline` (in-browser preview of PDF, text, images).
    disposition: Option<String>,
}

/// RFC 6266 / 5987 filename parameter (ASCII fallback plus UTF-8).
fn content_disposition(kind: &str, filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || ".-_ ".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    let mut encoded = String::new();
    for b in filename.bytes() {
        if b.is_ascii_alphanumeric() || b".-_".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    format!("{kind}; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

async fn content(
    State(s): State<AppState>,
    c: Caller,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Query<ContentQuery>,
) -> Result<Response, ApiError> {
    let id = doc_id(&params)?;
    let (v, bytes) = s
        .gate
        .read_document(c.holder, &c.actor, id, &Context::default())
        .await?;
    let inline = q.disposition.as_deref() == Some("inline") && v.meta.format.previewable();
    let mut r = (StatusCode::OK, bytes).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_str(&v.meta.mime).map_err(|_| ApiError::internal())?,
    );
    h.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_str(&content_disposition(
            if inline { "inline" } else { "attachment" },
            &v.meta.filename,
        ))
        .map_err(|_| ApiError::internal())?,
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    // A preview runs no script and loads nothing (PDFs keep the browser's own viewer).
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; object-src 'self'",
        ),
    );
    h.insert(
        "x-document-sha256",
        HeaderValue::from_str(&v.meta.sha256).map_err(|_| ApiError::internal())?,
    );
    Ok(r)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ChangeBody {
    masked: Option<bool>,
    hidden_from_representatives: Option<bool>,
    /// DM-6: `true` makes a held document visible (there is no way back).
    visible_to_holder: Option<bool>,
    archived: Option<bool>,
    /// DM-4: the holder asks the author to delete it, with a reason.
    deletion_request: Option<String>,
    /// DM-4: the author's answer.
    deletion_accepted: Option<bool>,
}

async fn change(
    State(s): State<AppState>,
    c: Caller,
    Path(params): Path<HashMap<String, String>>,
    ValidJson(b): ValidJson<ChangeBody>,
) -> Result<Response, ApiError> {
    let id = doc_id(&params)?;
    let mut changes = Vec::new();
    if let Some(m) = b.masked {
        changes.push(DocumentChange::Mask(m));
    }
    if let Some(h) = b.hidden_from_representatives {
        changes.push(DocumentChange::HideFromRepresentatives(h));
    }
    match b.visible_to_holder {
        Some(true) => changes.push(DocumentChange::MakeVisible),
        Some(false) => {
            return Err(ApiError::bad_request(
                "un document visible ne peut pas redevenir invisible / a visible document cannot become invisible again",
            ));
        }
        None => {}
    }
    if let Some(a) = b.archived {
        changes.push(if a {
            DocumentChange::Archive
        } else {
            DocumentChange::Unarchive
        });
    }
    if let Some(r) = b.deletion_request {
        changes.push(DocumentChange::RequestDeletion(r));
    }
    if let Some(a) = b.deletion_accepted {
        changes.push(DocumentChange::AnswerDeletion(a));
    }
    if changes.len() != 1 {
        return Err(ApiError::bad_request("exactly one change per request"));
    }
    let Some(ch) = changes.pop() else {
        return Err(ApiError::bad_request("exactly one change per request"));
    };
    let last = s
        .gate
        .change_document(c.holder, &c.actor, id, ch, &Context::default())
        .await?;
    s.wake.notify_one();
    Ok(match last {
        Some(v) => Json(view_json(&v, s.store.now())).into_response(),
        None => StatusCode::NO_CONTENT.into_response(),
    })
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(params): Path<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let id = doc_id(&params)?;
    s.gate
        .delete_document(c.holder, &c.actor, id, &Context::default())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(n: usize, size: usize) -> Body {
        let it = (0..n).map(move |_| Ok::<_, std::io::Error>(bytes::Bytes::from(vec![b'x'; size])));
        Body::from_stream(futures::stream::iter(it))
    }

    /// DM-1: a streamed body (no declared length) is refused as soon as it passes the limit.
    #[tokio::test]
    async fn streamed_upload_over_the_limit_is_413() {
        let h = HeaderMap::new();
        let ok = read_limited(&h, chunks(4, 1000), 4000).await.unwrap();
        assert_eq!(ok.len(), 4000);
        let e = read_limited(&h, chunks(5, 1000), 4000).await.unwrap_err();
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
        // A declared length that the body does not reach: a truncated upload.
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_LENGTH, HeaderValue::from_static("3000"));
        let e = read_limited(&h, chunks(1, 1000), 4000).await.unwrap_err();
        assert_eq!(e.status, StatusCode::BAD_REQUEST);
    }

    #[test]
    fn filenames_are_safe_in_headers() {
        let v = content_disposition("attachment", "compte rendu é\"x.pdf");
        assert_eq!(
            v,
            "attachment; filename=\"compte rendu __x.pdf\"; filename*=UTF-8''compte%20rendu%20%C3%A9%22x.pdf"
        );
    }
}
