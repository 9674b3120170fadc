//! FHIR R4 Communication (secure messages, MS-1) and Appointment (agenda events, AG-1) from
//! the domain, and an Appointment read back as an agenda event (AG-2: a referenced app or a
//! professional's software adds an event). Pure.

use carnet_domain::access::Author;
use carnet_domain::agenda::{EventInput, EventKind};
use carnet_domain::{HolderId, Timestamp};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::resources::item_id;

/// A party of a message.
pub enum Party<'a> {
    Patient,
    /// The holder's legal representative.
    Representative,
    Practitioner {
        rpps: &'a str,
        name: &'a str,
    },
    Organization {
        finess: &'a str,
        name: &'a str,
    },
}

fn party_ref(holder: HolderId, p: &Party<'_>) -> Value {
    match p {
        Party::Patient => json!({ "reference": format!("Patient/{holder}") }),
        Party::Representative => json!({ "display": "Représentant légal / legal representative" }),
        Party::Practitioner { rpps, name } => {
            json!({ "reference": format!("Practitioner/{rpps}"), "display": name })
        }
        Party::Organization { finess, name } => json!({
            "identifier": { "system": "urn:oid:1.2.250.1.71.4.2.2", "value": finess },
            "display": name,
        }),
    }
}

/// An attachment of a message.
pub struct AttachmentFacts<'a> {
    pub filename: &'a str,
    pub content_type: &'a str,
    pub size: u64,
}

/// What a Communication says of one message.
pub struct MessageFacts<'a> {
    pub holder: HolderId,
    pub id: Uuid,
    pub conversation: Uuid,
    pub subject: &'a str,
    pub sender: Party<'a>,
    pub recipient: Party<'a>,
    pub text: &'a str,
    pub attachments: Vec<AttachmentFacts<'a>>,
    pub sent: Timestamp,
    pub received: Option<Timestamp>,
}

/// A message as a FHIR Communication (the conversation is its `topic`, with the subject).
pub fn communication(m: &MessageFacts<'_>) -> Value {
    let mut payload: Vec<Value> = Vec::new();
    if !m.text.is_empty() {
        payload.push(json!({ "contentString": m.text }));
    }
    for a in &m.attachments {
        payload.push(json!({ "contentAttachment": {
            "contentType": a.content_type, "title": a.filename, "size": a.size,
        }}));
    }
    let mut v = json!({
        "resourceType": "Communication",
        "id": item_id(m.holder, m.id),
        "meta": { "lastUpdated": m.received.unwrap_or(m.sent).to_rfc3339() },
        "status": "completed",
        "subject": { "reference": format!("Patient/{}", m.holder) },
        "topic": {
            "coding": [{ "system": "urn:carnet:conversation", "code": m.conversation.to_string() }],
            "text": m.subject,
        },
        "sent": m.sent.to_rfc3339(),
        "sender": party_ref(m.holder, &m.sender),
        "recipient": [party_ref(m.holder, &m.recipient)],
        "payload": payload,
    });
    if let Some(r) = m.received {
        v["received"] = json!(r.to_rfc3339());
    }
    v
}

fn kind_code(k: EventKind) -> (&'static str, &'static str) {
    // HL7 v2 table 0276 (appointment reason codes) where one fits.
    match k {
        EventKind::Appointment => ("ROUTINE", "Routine appointment"),
        EventKind::Vaccine => ("CHECKUP", "A routine check-up, such as an annual physical"),
        EventKind::Screening => ("CHECKUP", "A routine check-up, such as an annual physical"),
        EventKind::Treatment => ("FOLLOWUP", "A follow up visit from a previous appointment"),
        EventKind::Other => ("ROUTINE", "Routine appointment"),
    }
}

/// An agenda event as a FHIR Appointment (its next occurrence when recurring is in the
/// agenda's own API and iCalendar; FHIR shows the first).
#[allow(clippy::too_many_arguments)]
pub fn appointment(
    holder: HolderId,
    id: Uuid,
    version: i64,
    updated: Timestamp,
    e: &EventInput,
    author: &Author,
    author_name: &str,
    now: Timestamp,
) -> Value {
    let (code, display) = kind_code(e.kind);
    let end = e.end.unwrap_or(e.start.plus_seconds(30 * 60));
    let mut participants = vec![json!({
        "actor": { "reference": format!("Patient/{holder}") },
        "status": "accepted",
    })];
    if let Author::Professional { id } = author {
        participants.push(json!({
            "actor": { "reference": format!("Practitioner/{}", id.0), "display": author_name },
            "status": "accepted",
        }));
    }
    if let Some(l) = &e.location {
        participants.push(json!({ "actor": { "display": l }, "status": "accepted" }));
    }
    let mut v = json!({
        "resourceType": "Appointment",
        "id": item_id(holder, id),
        "meta": { "versionId": version.to_string(), "lastUpdated": updated.to_rfc3339() },
        "status": if end < now { "fulfilled" } else { "booked" },
        "appointmentType": {
            "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": code, "display": display }],
            "text": e.kind.tag(),
        },
        "description": e.title,
        "start": e.start.to_rfc3339(),
        "end": end.to_rfc3339(),
        "participant": participants,
    });
    if let Some(n) = &e.notes {
        v["comment"] = json!(n);
    }
    if let Some(r) = &e.recurrence {
        let mut rule = format!("FREQ={};INTERVAL={}", r.frequency.rrule(), r.interval);
        if let Some(c) = r.count {
            rule.push_str(&format!(";COUNT={c}"));
        }
        v["patientInstruction"] = json!(format!("RRULE:{rule}"));
    }
    v
}

/// An Appointment as an agenda event (AG-2). Recurrence is not read from FHIR (R4 has no
/// element for it); reminders default to a day before.
pub fn event_from_appointment(v: &Value) -> Result<EventInput, String> {
    if v["resourceType"] != "Appointment" {
        return Err("resourceType must be Appointment".into());
    }
    let instant = |k: &str| -> Result<Option<Timestamp>, String> {
        match v.get(k).and_then(Value::as_str) {
            None => Ok(None),
            Some(s) => carnet_domain::agenda::parse_instant(s)
                .map(Some)
                .ok_or_else(|| format!("{k}: not an instant")),
        }
    };
    let start = instant("start")?.ok_or("start is required")?;
    let kind = v["appointmentType"]["text"]
        .as_str()
        .and_then(EventKind::parse)
        .unwrap_or(EventKind::Appointment);
    Ok(EventInput {
        kind,
        title: v["description"].as_str().unwrap_or("").to_string(),
        start,
        end: instant("end")?,
        location: None,
        notes: v["comment"].as_str().map(str::to_string),
        recurrence: None,
        reminders: vec![24 * 60],
    })
}
