//! Exporting everything a space holds (ID-3): administrative data, documents, the medical
//! profile with measurements and vaccinations, secure messages with their attachments, the
//! agenda, reimbursements, the authorisations and the whole access history — all read through
//! the gate as the holder (or representative) whose session it is.
//!
//! Three forms: `GET /api/v1/me/export` one JSON document (documents' contents in base64),
//! `GET /api/v1/me/export.zip` an archive streamed as it is written — `carnet-export.json`
//! without the contents, each document and attachment as its own file, and `lisez-moi.html`,
//! the readable copy — so that a record of thousands of documents never sits whole in memory;
//! and the readable page `/mon-espace/export` (web). Nothing is marked read by exporting.

use std::io::Write;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine as _;
use bytes::Bytes;
use carnet_domain::access::{AccessPolicy, Actor, Context};
use carnet_domain::{HolderId, Timestamp};
use carnet_store::HolderRecord;
use carnet_store::agenda::AgendaEvent;
use carnet_store::documents::{DocumentFilter, DocumentView};
use carnet_store::messaging::Thread;
use carnet_store::space::HolderSide;
use carnet_store::traces::Trace;
use serde_json::{Value, json};

use super::extract::Authenticated;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/export", get(export_json))
        .route("/export.zip", get(export_zip))
        .route(
            "/export.html",
            get(|| async { Redirect::to("/mon-espace/export") }),
        )
}

/// Everything a space holds, as its holder-side reader may see it (contents apart).
pub struct SpaceCopy {
    pub space: HolderId,
    pub exported_at: Timestamp,
    pub record: HolderRecord,
    pub representatives: Vec<(HolderId, String)>,
    pub documents: Vec<DocumentView>,
    pub profile: Vec<carnet_store::profile::ProfileEntry>,
    pub measurements: Vec<(
        &'static carnet_domain::profile::Measure,
        carnet_store::profile::Point,
    )>,
    pub reimbursements: Vec<carnet_store::reimbursements::Reimbursement>,
    pub conversations: Vec<Thread>,
    pub agenda: Vec<AgendaEvent>,
    pub policy: AccessPolicy,
    /// The access history, newest first.
    pub history: Vec<Trace>,
    /// The system's messages to the holder: (kind, channel, created, sent).
    pub sent_to_holder: Vec<(String, String, i64, Option<i64>)>,
}

/// Reads everything through the gate as `actor`, in `space` (the caller made `side`).
pub async fn collect(
    s: &AppState,
    space: HolderId,
    actor: &Actor,
    side: &HolderSide,
) -> Result<SpaceCopy, ApiError> {
    let ctx = Context::default();
    let record = side.record().await?;
    let mut documents = Vec::new();
    let mut before = None;
    loop {
        let filter = DocumentFilter {
            include_history: true,
            before,
            limit: 200,
            ..Default::default()
        };
        let page = s.gate.list_documents(space, actor, &filter, &ctx).await?;
        documents.extend(page.documents);
        match page.next_before {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    let profile = s.gate.list_profile(space, actor, None, &ctx).await?;
    let mut measurements = Vec::new();
    for m in carnet_domain::profile::MEASURES.iter() {
        for p in s
            .gate
            .measurements(space, actor, m.loinc, None, i64::MAX, &ctx)
            .await?
        {
            measurements.push((m, p));
        }
    }
    let reimbursements = s
        .gate
        .list_reimbursements(
            space,
            actor,
            &carnet_domain::reimbursement::Filter::default(),
            &ctx,
        )
        .await?;
    let mut conversations = Vec::new();
    for c in s.gate.list_conversations(space, actor, &ctx).await? {
        conversations.push(
            s.gate
                .conversation_thread(space, actor, c.id, false, &ctx)
                .await?,
        );
    }
    let agenda = s.gate.list_events(space, actor, &ctx).await?;
    let (policy, _) = side.access_policy().await?;
    let mut history = Vec::new();
    let mut before = None;
    loop {
        let Some(page) = s.gate.history(space, actor, before, None, 500).await? else {
            break;
        };
        history.extend(page.traces);
        match page.next_before {
            Some(b) => before = Some(b),
            None => break,
        }
    }
    Ok(SpaceCopy {
        space,
        exported_at: s.store.now(),
        record,
        representatives: s.store.representatives(space).await?,
        documents,
        profile,
        measurements,
        reimbursements,
        conversations,
        agenda,
        policy,
        history,
        sent_to_holder: s.store.outbox_of(space).await?,
    })
}

/// The archive's path of a document: `documents/0001-compte-rendu.pdf`.
fn document_path(i: usize, d: &DocumentView) -> String {
    format!(
        "documents/{:04}-{}",
        i + 1,
        file_name(&d.meta.title, &d.meta.mime)
    )
}

/// The archive's path of a message's attachment.
fn attachment_path(c: usize, a: &carnet_store::messaging::AttachmentRef) -> String {
    let stem = a
        .filename
        .rsplit_once('.')
        .map_or(a.filename.as_str(), |(s, _)| s);
    format!(
        "messages/{:03}-{}-{}",
        c + 1,
        &a.attachment_id.to_string()[..8],
        file_name(stem, &a.content_type)
    )
}

/// A portable file name from a title: letters and digits, accents folded, dashes between.
fn file_name(title: &str, mime: &str) -> String {
    let folded = carnet_domain::document::fold(title);
    let mut stem: String = folded
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    while stem.contains("--") {
        stem = stem.replace("--", "-");
    }
    let stem = stem.trim_matches('-');
    let stem: String = stem.chars().take(60).collect();
    let ext = match mime {
        "application/pdf" => "pdf",
        "image/jpeg" => "jpg",
        "image/png" => "png",
        "text/plain" => "txt",
        "text/xml" | "application/xml" | "application/hl7-v3+xml" => "xml",
        "application/json" | "application/fhir+json" => "json",
        _ => "bin",
    };
    format!(
        "{}.{ext}",
        if stem.is_empty() {
            "document"
        } else {
            stem.as_str()
        }
    )
}

/// The copy as one JSON document; `contents` maps each document (by index) to what stands
/// for its bytes: base64 in the JSON export, a path in the archive.
pub fn to_json(c: &SpaceCopy, contents: impl Fn(usize, &DocumentView) -> (String, Value)) -> Value {
    let admin: Value = serde_json::from_slice(&c.record.administrative).unwrap_or_default();
    let documents: Vec<Value> = c
        .documents
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let mut v = super::documents::view_json(d, c.exported_at);
            let (key, value) = contents(i, d);
            if let Some(m) = v.as_object_mut() {
                m.insert(key, value);
            }
            v
        })
        .collect();
    let conversations: Vec<Value> = c
        .conversations
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let mut v = serde_json::to_value(t).unwrap_or(Value::Null);
            // In the archive, each attachment's file.
            if let Some(msgs) = v["messages"].as_array_mut() {
                for (m, msg) in msgs.iter_mut().zip(&t.messages) {
                    if let Some(atts) = m["attachments"].as_array_mut() {
                        for (a, att) in atts.iter_mut().zip(&msg.attachments) {
                            a["file"] = json!(attachment_path(i, att));
                        }
                    }
                }
            }
            v
        })
        .collect();
    let history: Vec<Value> = c
        .history
        .iter()
        .map(|t| json!({ "seq": t.seq, "at": t.at.to_rfc3339(), "entry": t.entry }))
        .collect();
    // ID-3 portability: the same data as a FHIR R4 Bundle (FR Core Patient).
    let fhir = match serde_json::from_slice::<carnet_domain::roster::Administrative>(&c.record.administrative)
    {
        Ok(a) => json!({
            "resourceType": "Bundle",
            "type": "collection",
            "timestamp": c.exported_at.to_rfc3339(),
            "entry": [{ "fullUrl": format!("urn:uuid:{}", c.space), "resource": carnet_fhir::patient::patient_from_admin(&c.space.to_string(), &a) }],
        }),
        Err(_) => Value::Null,
    };
    json!({
        "format": "carnet-export/2",
        "fhir": fhir,
        "exported_at": c.exported_at.to_rfc3339(),
        "space": { "id": c.space, "lifecycle": c.record.lifecycle.name(), "created_at": c.record.created_at.to_rfc3339() },
        "administrative": admin,
        "representatives": c.representatives.iter().map(|(r, kind)| json!({ "id": r, "kind": kind })).collect::<Vec<_>>(),
        "documents": documents,
        "profile": c.profile,
        "measurements": c.measurements.iter().map(|(m, p)| {
            let mut v = serde_json::to_value(p).unwrap_or(Value::Null);
            if let Some(o) = v.as_object_mut() {
                o.insert("name".into(), json!(m.label_fr));
            }
            v
        }).collect::<Vec<_>>(),
        "reimbursements": c.reimbursements,
        "conversations": conversations,
        "agenda": c.agenda,
        "authorisations": c.policy,
        "access_history": history,
        "messages_sent_to_you": c.sent_to_holder.iter().map(|(kind, channel, created, sent)| json!({
            "kind": kind, "channel": channel,
            "created_at": Timestamp::from_micros(*created).to_rfc3339(),
            "sent_at": sent.map(|t| Timestamp::from_micros(t).to_rfc3339()),
        })).collect::<Vec<_>>(),
    })
}

async fn export_json(State(s): State<AppState>, a: Authenticated) -> Result<Response, ApiError> {
    let side = a.holder_side(&s).await?;
    let actor = a.actor();
    let space = a.session.acting_for;
    let copy = collect(&s, space, &actor, &side).await?;
    let ctx = Context::default();
    let mut contents = Vec::with_capacity(copy.documents.len());
    for d in &copy.documents {
        let (_, bytes) = s.gate.read_document(space, &actor, d.id, &ctx).await?;
        contents.push(base64::engine::general_purpose::STANDARD.encode(&bytes));
    }
    let v = to_json(&copy, |i, _| {
        (
            "content_base64".into(),
            json!(contents.get(i).cloned().unwrap_or_default()),
        )
    });
    Ok((
        [(
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"carnet-export.json\"",
        )],
        Json(v),
    )
        .into_response())
}

/// A `Write` into a buffer the archive's task drains after each file.
#[derive(Clone, Default)]
struct Chunks(Arc<Mutex<Vec<u8>>>);

impl Write for Chunks {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("poisoned"))?
            .extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Chunks {
    fn take(&self) -> Bytes {
        self.0
            .lock()
            .map(|mut b| Bytes::from(std::mem::take(&mut *b)))
            .unwrap_or_default()
    }
}

async fn export_zip(State(s): State<AppState>, a: Authenticated) -> Result<Response, ApiError> {
    let side = a.holder_side(&s).await?;
    let actor = a.actor();
    let space = a.session.acting_for;
    let copy = collect(&s, space, &actor, &side).await?;
    let own = a.session.holder == space;
    let name = s.store.person_name(space).await?;
    let readable =
        crate::web::export::readable_document(&s, &copy, own, &format!("{} {}", name.given, name.family))
            .await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, std::io::Error>>(2);
    tokio::spawn(async move {
        if let Err(e) = write_zip(&s, &copy, &actor, readable, &tx).await {
            tracing::warn!(error = %e, "export archive interrupted");
            let _ = tx.send(Err(std::io::Error::other(e.to_string()))).await;
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|c| (c, rx)) });
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"carnet-export.zip\"",
            ),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Debug, thiserror::Error)]
enum ZipError {
    #[error("archive: {0}")]
    Zip(#[from] zip::result::ZipError),
    #[error("archive: {0}")]
    Io(#[from] std::io::Error),
    #[error("reading the space: {0}")]
    Store(#[from] carnet_store::StoreError),
    #[error("the client went away")]
    Gone,
}

/// Writes the archive file by file, each chunk sent as soon as it is written.
async fn write_zip(
    s: &AppState,
    copy: &SpaceCopy,
    actor: &Actor,
    readable: String,
    tx: &tokio::sync::mpsc::Sender<Result<Bytes, std::io::Error>>,
) -> Result<(), ZipError> {
    let sink = Chunks::default();
    let mut zip = zip::ZipWriter::new_stream(sink.clone());
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Stored)
        .unix_permissions(0o644);
    let send = |bytes: Bytes| async move {
        if bytes.is_empty() {
            return Ok(());
        }
        tx.send(Ok(bytes)).await.map_err(|_| ZipError::Gone)
    };
    let json = to_json(copy, |i, d| ("file".into(), json!(document_path(i, d))));
    zip.start_file("carnet-export.json", options)?;
    zip.write_all(&serde_json::to_vec_pretty(&json).unwrap_or_default())?;
    zip.start_file("lisez-moi.html", options)?;
    zip.write_all(readable.as_bytes())?;
    send(sink.take()).await?;
    let ctx = Context::default();
    for (i, d) in copy.documents.iter().enumerate() {
        let (_, bytes) = s.gate.read_document(copy.space, actor, d.id, &ctx).await?;
        zip.start_file(document_path(i, d), options)?;
        zip.write_all(&bytes)?;
        send(sink.take()).await?;
    }
    for (c, t) in copy.conversations.iter().enumerate() {
        for m in &t.messages {
            for att in &m.attachments {
                let (_, bytes) = s
                    .gate
                    .message_attachment(copy.space, actor, t.conversation.id, att.attachment_id, &ctx)
                    .await?;
                zip.start_file(attachment_path(c, att), options)?;
                zip.write_all(&bytes)?;
                send(sink.take()).await?;
            }
        }
    }
    zip.finish()?;
    send(sink.take()).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_are_portable() {
        assert_eq!(
            file_name("Compte rendu d'hospitalisation (été 2026)", "application/pdf"),
            "compte-rendu-d-hospitalisation-ete-2026.pdf"
        );
        assert_eq!(file_name("///", "image/png"), "document.png");
        assert_eq!(file_name("x", "application/octet-stream"), "x.bin");
    }
}
