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
pub fn appointment(stored: crate::resources::Stored<'_>, e: &EventInput, now: Timestamp) -> Value {
    let crate::resources::Stored {
        holder,
        id,
        version,
        updated,
        author,
        author_name,
        ..
    } = stored;
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

/// A stable item id for an entry of the authorisation directory (its kind and grantee).
fn directory_item(holder: HolderId, key: &str) -> Uuid {
    let mut b = [0u8; 16];
    let h = {
        // FNV-1a 128 would do; two 64-bit FNV-1a halves keep it dependency-free and stable.
        let fnv = |seed: u64| {
            key.bytes()
                .chain(holder.as_uuid().as_bytes().iter().copied())
                .fold(seed, |h, x| {
                    (h ^ u64::from(x)).wrapping_mul(0x0000_0100_0000_01b3)
                })
        };
        (fnv(0xcbf2_9ce4_8422_2325), fnv(0x8422_2325_cbf2_9ce4))
    };
    b[..8].copy_from_slice(&h.0.to_be_bytes());
    b[8..].copy_from_slice(&h.1.to_be_bytes());
    // RFC 9562 version 8 (custom), variant 10.
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    Uuid::from_bytes(b)
}

fn grantee_ref(g: &carnet_domain::access::Grantee) -> Value {
    use carnet_domain::access::Grantee;
    match g {
        Grantee::Professional { id } => json!({ "reference": format!("Practitioner/{}", id.0) }),
        Grantee::Establishment { id } => json!({
            "identifier": { "system": "urn:oid:1.2.250.1.71.4.2.2", "value": id.0 },
            "display": format!("FINESS {}", id.0),
        }),
        Grantee::App { id } => json!({ "display": format!("Application {}", id.0) }),
        // MI-5: a carer is a person close to the holder (FHIR's RelatedPerson), not a resource here.
        Grantee::Carer { .. } => json!({ "type": "RelatedPerson", "display": "Aidant" }),
    }
}

fn grantee_key(g: &carnet_domain::access::Grantee) -> String {
    use carnet_domain::access::Grantee;
    match g {
        Grantee::Professional { id } => format!("rpps:{}", id.0),
        Grantee::Establishment { id } => format!("finess:{}", id.0),
        Grantee::App { id } => format!("app:{}", id.0),
        Grantee::Carer { id } => format!("carer:{id}"),
    }
}

/// The authorisation directory (AC-3, AC-4) as FHIR Consents: one per grant (permit, with its
/// categories and end), one per blocked professional (deny), one for the médecin traitant
/// (permit, everything). Read-only: the directory changes through its own API.
pub fn directory_consents(
    holder: HolderId,
    policy: &carnet_domain::access::AccessPolicy,
    version: i64,
    now: Timestamp,
) -> Vec<Value> {
    let consent = |key: &str,
                   permit: bool,
                   actor: Value,
                   classes: Option<Vec<String>>,
                   end: Option<Timestamp>| {
        let mut provision = json!({
            "type": if permit { "permit" } else { "deny" },
            "actor": [{
                "role": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "IRCP" }] },
                "reference": actor,
            }],
        });
        if let Some(cs) = classes {
            provision["class"] = json!(
                cs.iter()
                    .map(|c| json!({ "system": "urn:carnet:category", "code": c }))
                    .collect::<Vec<_>>()
            );
        }
        if let Some(e) = end {
            provision["period"] = json!({ "end": e.to_rfc3339() });
        }
        json!({
            "resourceType": "Consent",
            "id": item_id(holder, directory_item(holder, key)),
            "meta": { "versionId": version.to_string() },
            "status": if end.is_some_and(|e| e <= now) { "inactive" } else { "active" },
            "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": "patient-privacy" }] },
            "category": [{ "coding": [{ "system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent" }] }],
            "patient": { "reference": format!("Patient/{holder}") },
            "policyRule": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": if permit { "OPTIN" } else { "OPTOUT" } }] },
            "provision": provision,
        })
    };
    let mut out = Vec::new();
    if let Some(mt) = &policy.medecin_traitant {
        out.push(consent(
            &format!("mt:{}", mt.0),
            true,
            json!({ "reference": format!("Practitioner/{}", mt.0), "display": "Médecin traitant" }),
            None,
            None,
        ));
    }
    for g in &policy.grants {
        out.push(consent(
            &format!("grant:{}", grantee_key(&g.grantee)),
            true,
            grantee_ref(&g.grantee),
            g.categories
                .as_ref()
                .map(|cs| cs.iter().map(|c| c.tag().to_string()).collect()),
            g.until,
        ));
    }
    for b in &policy.blocked {
        out.push(consent(
            &format!("blocked:{}", b.0),
            false,
            json!({ "reference": format!("Practitioner/{}", b.0) }),
            None,
            None,
        ));
    }
    out
}

/// Who filed a document and when, as a FHIR Provenance (IO-1): its target is the
/// DocumentReference (same logical id), the agent its author (and organisation), `recorded` the
/// instant it was filed. Derived from the DocumentReference this module's sibling emits.
pub fn provenance_of_document(doc: &Value) -> Value {
    let id = doc["id"].as_str().unwrap_or_default();
    let mut agent = json!({
        "type": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/provenance-participant-type",
            "code": "author",
        }]},
        "who": doc["author"][0].clone(),
    });
    if let Some(org) = doc["custodian"]["display"].as_str() {
        agent["onBehalfOf"] = json!({ "display": org });
    }
    json!({
        "resourceType": "Provenance",
        "id": id,
        "target": [{ "reference": format!("DocumentReference/{id}") }],
        "recorded": doc["date"].clone(),
        "activity": { "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-DataOperation",
            "code": "CREATE",
        }]},
        "agent": [agent],
    })
}
