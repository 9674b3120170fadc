//! FHIR R4 resources from the domain (issue 6, IO-1): DocumentReference, Observation,
//! Condition, AllergyIntolerance, MedicationStatement, Immunization, Procedure,
//! FamilyMemberHistory, QuestionnaireResponse, AuditEvent, OperationOutcome and Bundles. Pure:
//! the server reads through the gate and hands the values here.
//!
//! Logical ids of a holder's items are `HOLDER` + `ITEM` as 64 lowercase hex digits (the longest
//! id FHIR allows), so a read by id finds its space without an index over all spaces, and an id
//! never names an item of another space.

use carnet_domain::access::{Action, Author};
use carnet_domain::document::{DocumentMeta, Status};
use carnet_domain::profile::{CodeSystem, Coding, EntryInput, Measurement, Section, measure};
use carnet_domain::{HolderId, Timestamp};
use serde_json::{Value, json};
use uuid::Uuid;

/// The logical id of an item of a space.
pub fn item_id(holder: HolderId, item: Uuid) -> String {
    format!("{}{}", holder.as_uuid().simple(), item.simple())
}

/// Splits a logical id made by [`item_id`].
pub fn split_id(id: &str) -> Option<(HolderId, Uuid)> {
    if id.len() != 64 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    let h = Uuid::parse_str(&id[..32]).ok()?;
    let i = Uuid::parse_str(&id[32..]).ok()?;
    Some((HolderId::from_uuid(h), i))
}

fn patient_ref(holder: HolderId) -> Value {
    json!({ "reference": format!("Patient/{holder}") })
}

fn author_ref(a: &Author, name: &str) -> Value {
    match a {
        Author::Holder => {
            json!({ "display": if name.is_empty() || name == "holder" { "le titulaire" } else { name } })
        }
        Author::Professional { id } => json!({
            "reference": format!("Practitioner/{}", id.0),
            "identifier": { "system": "urn:oid:1.2.250.1.71.4.2.1", "value": format!("8{}", id.0) },
            "display": name,
        }),
        Author::Establishment { id } => json!({
            "reference": format!("Organization/{}", id.0),
            "display": name,
        }),
        Author::App { id } => json!({ "reference": format!("Device/{}", id.0), "display": name }),
    }
}

fn meta(version: i64, updated: Timestamp) -> Value {
    json!({ "versionId": version.to_string(), "lastUpdated": updated.to_rfc3339() })
}

/// DocumentReference (FR Core / IHE MHD shape) for a document version; its content is the
/// `Binary` of the same id under `base` (the absolute FHIR base URL), read through the gate.
pub fn document_reference(
    base: &str,
    holder: HolderId,
    id: Uuid,
    set_id: Uuid,
    status: Status,
    m: &DocumentMeta,
) -> Value {
    let rid = item_id(holder, id);
    let mut v = json!({
        "resourceType": "DocumentReference",
        "id": rid,
        "meta": { "lastUpdated": m.uploaded_at.to_rfc3339() },
        "masterIdentifier": { "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{id}") },
        "identifier": [{ "system": "urn:carnet:document-set", "value": format!("urn:uuid:{set_id}") }],
        "status": if status == Status::Deprecated { "superseded" } else { "current" },
        "docStatus": "final",
        "category": [{ "coding": [{ "system": "urn:carnet:document-class", "code": m.class.tag() }] }],
        "subject": patient_ref(holder),
        "date": m.uploaded_at.to_rfc3339(),
        "author": [author_ref(&m.author, &m.author_name)],
        "description": m.title,
        "securityLabel": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
            "code": m.confidentiality,
        }] }],
        "content": [{ "attachment": {
            "contentType": m.mime,
            "url": format!("{base}/Binary/{rid}"),
            "size": m.size,
            "hash": hex_to_base64(&m.sha256),
            "title": m.filename,
            "creation": m.uploaded_at.to_rfc3339(),
        } }],
    });
    if let Some(code) = &m.type_code {
        v["type"] =
            json!({ "coding": [{ "system": "http://loinc.org", "code": code, "display": m.type_display }] });
        strip_nulls(&mut v["type"]);
    }
    if let Some(d) = &m.event_date {
        v["context"] = json!({ "period": { "start": d } });
    }
    if let Some(org) = &m.organisation {
        v["custodian"] = json!({ "display": org });
    }
    xds_members(&mut v, &m.xds);
    strip_nulls(&mut v);
    if let Some(old) = &m.replaces {
        v["relatesTo"] = json!([{ "code": "replaces", "target": { "reference": format!("DocumentReference/{}", item_id(holder, Uuid::parse_str(old).unwrap_or_default())) } }]);
    }
    v
}

/// DM-1's XDS metadata sent through IHE MHD (ITI-65), shown back where MHD puts it: the
/// depositor's `uniqueId` as `masterIdentifier`, the context's facility type, practice setting,
/// event codes and service end, the legal authenticator.
fn xds_members(v: &mut Value, x: &carnet_domain::document::XdsMeta) {
    let code = |c: &carnet_domain::document::XdsCode| {
        let mut coding = json!({ "system": c.system, "code": c.code, "display": c.display });
        strip_nulls(&mut coding);
        json!({ "coding": [coding] })
    };
    if let Some(uid) = &x.unique_id {
        v["masterIdentifier"] = json!({ "system": "urn:ietf:rfc:3986", "value": uid });
    }
    if let Some(c) = &x.facility_type {
        v["context"]["facilityType"] = code(c);
    }
    if let Some(c) = &x.practice_setting {
        v["context"]["practiceSetting"] = code(c);
    }
    if !x.event_codes.is_empty() {
        v["context"]["event"] = Value::Array(x.event_codes.iter().map(code).collect());
    }
    if let Some(end) = &x.service_end {
        v["context"]["period"]["end"] = json!(end);
    }
    if let Some(who) = &x.legal_authenticator {
        v["authenticator"] = json!({ "display": who });
    }
}

/// [`document_reference`] written straight to JSON text, without building a `Value` (a FHIR
/// read by id, the hot path: a tree of maps with hashed keys cost more than the rest of the
/// mapping). The same members in the same order, nulls and empty strings left out as
/// [`strip_nulls`] does; a test holds the two to the same bytes.
pub fn document_reference_json(
    base: &str,
    holder: HolderId,
    id: Uuid,
    set_id: Uuid,
    status: Status,
    m: &DocumentMeta,
) -> String {
    let mut w = JsonWriter::with_capacity(1024);
    let doc = DocumentFields {
        id,
        set_id,
        status,
        m,
    };
    write_document_reference(&mut w, base, &item_id(holder, id), holder, doc);
    w.finish()
}

/// [`document_reference_json`] into a writer (alone, or as a searchset entry's resource);
/// `rid` is the resource's id, `item_id(holder, id)`.
fn write_document_reference(
    w: &mut JsonWriter,
    base: &str,
    rid: &str,
    holder: HolderId,
    doc: DocumentFields<'_>,
) {
    let DocumentFields {
        id,
        set_id,
        status,
        m,
    } = doc;
    if !m.xds.is_empty() {
        // A deposit through IHE MHD, with XDS metadata of its own: the `Value` mapping, the one
        // place that knows where each goes (rare beside the hot path of plain deposits).
        let v = document_reference(base, holder, id, set_id, status, m);
        w.element();
        w.out
            .extend_from_slice(serde_json::to_string(&v).unwrap_or_default().as_bytes());
        return;
    }
    let at = m.uploaded_at.to_rfc3339();
    w.open(b'{');
    w.str("resourceType", "DocumentReference");
    w.str("id", rid);
    w.key("meta");
    w.open(b'{');
    w.str("lastUpdated", &at);
    w.close(b'}');
    w.key("masterIdentifier");
    w.open(b'{');
    w.str("system", "urn:ietf:rfc:3986");
    w.str("value", &format!("urn:uuid:{id}"));
    w.close(b'}');
    w.key("identifier");
    w.open(b'[');
    w.open(b'{');
    w.str("system", "urn:carnet:document-set");
    w.str("value", &format!("urn:uuid:{set_id}"));
    w.close(b'}');
    w.close(b']');
    w.str(
        "status",
        if status == Status::Deprecated {
            "superseded"
        } else {
            "current"
        },
    );
    w.str("docStatus", "final");
    w.key("category");
    w.open(b'[');
    w.open(b'{');
    w.coding("urn:carnet:document-class", m.class.tag(), None);
    w.close(b'}');
    w.close(b']');
    w.key("subject");
    w.open(b'{');
    w.str("reference", &format!("Patient/{holder}"));
    w.close(b'}');
    w.str("date", &at);
    w.key("author");
    w.open(b'[');
    w.open(b'{');
    let name = m.author_name.as_str();
    match &m.author {
        Author::Holder => w.str(
            "display",
            if name.is_empty() || name == "holder" {
                "le titulaire"
            } else {
                name
            },
        ),
        Author::Professional { id } => {
            w.str("reference", &format!("Practitioner/{}", id.0));
            w.key("identifier");
            w.open(b'{');
            w.str("system", "urn:oid:1.2.250.1.71.4.2.1");
            w.str("value", &format!("8{}", id.0));
            w.close(b'}');
            w.str("display", name);
        }
        Author::Establishment { id } => {
            w.str("reference", &format!("Organization/{}", id.0));
            w.str("display", name);
        }
        Author::App { id } => {
            w.str("reference", &format!("Device/{}", id.0));
            w.str("display", name);
        }
    }
    w.close(b'}');
    w.close(b']');
    w.str("description", &m.title);
    w.key("securityLabel");
    w.open(b'[');
    w.open(b'{');
    w.coding(
        "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
        &m.confidentiality,
        None,
    );
    w.close(b'}');
    w.close(b']');
    w.key("content");
    w.open(b'[');
    w.open(b'{');
    w.key("attachment");
    w.open(b'{');
    w.str("contentType", &m.mime);
    w.str("url", &format!("{base}/Binary/{rid}"));
    w.key("size");
    w.raw(&m.size.to_string());
    w.str("hash", &hex_to_base64(&m.sha256));
    w.str("title", &m.filename);
    w.str("creation", &at);
    w.close(b'}');
    w.close(b'}');
    w.close(b']');
    if let Some(code) = &m.type_code {
        w.key("type");
        w.open(b'{');
        w.coding("http://loinc.org", code, m.type_display.as_deref());
        w.close(b'}');
    }
    if let Some(d) = &m.event_date {
        w.key("context");
        w.open(b'{');
        w.key("period");
        w.open(b'{');
        w.str("start", d);
        w.close(b'}');
        w.close(b'}');
    }
    if let Some(org) = &m.organisation {
        w.key("custodian");
        w.open(b'{');
        w.str("display", org);
        w.close(b'}');
    }
    if let Some(old) = &m.replaces {
        w.key("relatesTo");
        w.open(b'[');
        w.open(b'{');
        w.str("code", "replaces");
        w.key("target");
        w.open(b'{');
        let target = item_id(holder, Uuid::parse_str(old).unwrap_or_default());
        w.str("reference", &format!("DocumentReference/{target}"));
        w.close(b'}');
        w.close(b'}');
        w.close(b']');
    }
    w.close(b'}');
}

/// One version of a document as [`write_document_reference`] writes it.
#[derive(Clone, Copy)]
struct DocumentFields<'a> {
    id: Uuid,
    set_id: Uuid,
    status: Status,
    m: &'a DocumentMeta,
}

/// Compact JSON text written member by member: commas where they belong, strings escaped by
/// serde_json, a member whose string is empty left out (FHIR allows no empty string).
struct JsonWriter {
    /// The text so far.
    out: Vec<u8>,
    /// One flag per object or array still open: whether it has no element yet.
    first: Vec<bool>,
}

impl JsonWriter {
    fn with_capacity(n: usize) -> Self {
        Self {
            out: Vec::with_capacity(n),
            first: Vec::with_capacity(8),
        }
    }

    /// The text (only ever UTF-8: made of `&str`s and ASCII).
    fn finish(self) -> String {
        String::from_utf8(self.out).unwrap_or_default()
    }

    /// A comma before every element of an object or array but its first.
    fn element(&mut self) {
        if let Some(first) = self.first.last_mut() {
            if *first {
                *first = false;
            } else {
                self.out.push(b',');
            }
        }
    }

    fn open(&mut self, c: u8) {
        self.element();
        self.out.push(c);
        self.first.push(true);
    }

    /// Closes an object or array; the value that follows a key is not an element of its own.
    fn close(&mut self, c: u8) {
        self.out.push(c);
        self.first.pop();
    }

    /// A member's key; its value follows (`open`, `raw`), not counted as another element.
    fn key(&mut self, k: &str) {
        self.element();
        // Keys are this module's own ASCII names: nothing to escape (checked in tests).
        debug_assert!(k.bytes().all(|b| b.is_ascii_alphanumeric()), "key {k:?}");
        self.out.push(b'"');
        self.out.extend_from_slice(k.as_bytes());
        self.out.push(b'"');
        self.out.push(b':');
        if let Some(first) = self.first.last_mut() {
            // The value is this member's, not a new element.
            *first = true;
        }
    }

    /// `"coding": [{"system", "code", "display"}]`, the display only when given.
    fn coding(&mut self, system: &str, code: &str, display: Option<&str>) {
        self.key("coding");
        self.open(b'[');
        self.open(b'{');
        self.str("system", system);
        self.str("code", code);
        if let Some(d) = display {
            self.str("display", d);
        }
        self.close(b'}');
        self.close(b']');
    }

    fn raw(&mut self, v: &str) {
        self.out.extend_from_slice(v.as_bytes());
        self.after_value();
    }

    fn str(&mut self, k: &str, v: &str) {
        if v.is_empty() {
            return;
        }
        self.key(k);
        self.escaped(v);
        self.after_value();
    }

    /// After a member's value: the next member needs a comma.
    fn after_value(&mut self) {
        if let Some(first) = self.first.last_mut() {
            *first = false;
        }
    }

    fn escaped(&mut self, s: &str) {
        // Most strings need no escape (serde_json escapes only `"`, `\` and controls): copied
        // as they are after one branch-free scan that the compiler can vectorise.
        let plain = !s
            .bytes()
            .fold(false, |any, b| any | (b < 0x20) | (b == b'"') | (b == b'\\'));
        if plain {
            self.out.reserve(s.len() + 2);
            self.out.push(b'"');
            self.out.extend_from_slice(s.as_bytes());
            self.out.push(b'"');
        } else {
            // Writing into a Vec cannot fail; serde_json escapes as its `Value` printer does.
            let _ = serde_json::to_writer(&mut self.out, s);
        }
    }
}

/// `Attachment.hash` in base64. R4 says SHA-1; we give the SHA-256 Carnet keeps (as R5 allows),
/// since a SHA-1 would mean hashing every document a second time for a weaker digest.
fn hex_to_base64(hex: &str) -> String {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .filter_map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).ok())
        .collect();
    base64_encode(&bytes)
}

fn base64_encode(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if c.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if c.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

/// Drops nulls and empty strings (FHIR allows neither) all the way down.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null() && x.as_str() != Some(""));
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

/// Observation of a measurement; the vital-signs profile where the measure is one.
pub fn observation(holder: HolderId, id: Uuid, m: &Measurement, author: &Author) -> Value {
    let def = measure(&m.code);
    let vital = matches!(
        m.code.as_str(),
        "29463-7" | "8302-2" | "39156-5" | "8867-4" | "8310-5" | "59408-5" | "9279-1" | "8480-6" | "8462-4"
    );
    let mut v = json!({
        "resourceType": "Observation",
        "id": item_id(holder, id),
        "status": "final",
        "category": [{ "coding": [{
            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
            "code": if vital { "vital-signs" } else { "activity" },
        }] }],
        "code": { "coding": [{ "system": "http://loinc.org", "code": m.code, "display": def.map(|d| d.label_fr) }] },
        "subject": patient_ref(holder),
        "effectiveDateTime": m.at.to_rfc3339(),
        "performer": [author_ref(author, "")],
        "valueQuantity": { "value": m.value, "unit": m.unit, "system": "http://unitsofmeasure.org", "code": m.unit },
    });
    strip_nulls(&mut v);
    v
}

/// The FHIR resource type a profile section maps to.
pub fn resource_type(section: Section) -> &'static str {
    match section {
        Section::Conditions | Section::Disabilities => "Condition",
        Section::Allergies => "AllergyIntolerance",
        Section::Treatments => "MedicationStatement",
        Section::Vaccinations => "Immunization",
        Section::Hospitalisations => "Procedure",
        Section::FamilyHistory => "FamilyMemberHistory",
        Section::Questionnaire => "QuestionnaireResponse",
        Section::BloodGroup | Section::Lifestyle => "Observation",
        Section::AdvanceDirectives | Section::OrganDonation => "Consent",
        Section::TrustedPeople => "RelatedPerson",
    }
}

fn concept(e: &EntryInput) -> Value {
    let mut c = json!({});
    if let Some(Coding {
        system,
        code,
        display,
    }) = &e.code
    {
        c["coding"] = json!([{ "system": system.uri(), "code": code, "display": display }]);
        strip_nulls(&mut c);
    }
    if !e.text.is_empty() {
        c["text"] = json!(e.text);
    }
    c
}

/// What a stored item's resource says of where it comes from: its id in the holder's space,
/// `meta.versionId` and `meta.lastUpdated`, when it was recorded and by whom.
#[derive(Clone, Copy, Debug)]
pub struct Stored<'a> {
    pub holder: HolderId,
    pub id: Uuid,
    pub version: i64,
    pub created: Timestamp,
    pub updated: Timestamp,
    pub author: &'a Author,
    /// The author as named when they wrote it ("Dr Claire LEROY").
    pub author_name: &'a str,
}

/// A profile entry as its FHIR resource (see [`resource_type`]).
pub fn profile_resource(stored: Stored<'_>, e: &EntryInput) -> Value {
    let Stored {
        holder,
        id,
        version,
        created,
        updated,
        author,
        author_name,
    } = stored;
    let rid = item_id(holder, id);
    let who = author_ref(author, author_name);
    let note = e.note.as_ref().map(|n| json!([{ "text": n }]));
    let mut v = match e.section {
        Section::Conditions | Section::Disabilities => json!({
            "resourceType": "Condition",
            "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": if e.end_date.is_some() { "resolved" } else { "active" } }] },
            "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/condition-category", "code": "problem-list-item" }], "text": e.section.label_fr() }],
            "code": concept(e),
            "subject": patient_ref(holder),
            "onsetString": e.date,
            "abatementString": e.end_date,
            "recordedDate": created.to_rfc3339(),
            "recorder": who,
            "note": note,
        }),
        Section::Allergies => json!({
            "resourceType": "AllergyIntolerance",
            "clinicalStatus": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/allergyintolerance-clinical", "code": "active" }] },
            "code": concept(e),
            "patient": patient_ref(holder),
            "onsetString": e.date,
            "recordedDate": created.to_rfc3339(),
            "recorder": who,
            "note": note,
        }),
        Section::Treatments => json!({
            "resourceType": "MedicationStatement",
            "status": if e.end_date.is_some() { "completed" } else { "active" },
            "medicationCodeableConcept": concept(e),
            "subject": patient_ref(holder),
            "effectivePeriod": { "start": e.date, "end": e.end_date },
            "dateAsserted": created.to_rfc3339(),
            "informationSource": who,
            "note": note,
        }),
        Section::Vaccinations => json!({
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": concept(e),
            "patient": patient_ref(holder),
            "occurrenceString": e.date.clone().unwrap_or_else(|| "inconnue".into()),
            "recorded": created.to_rfc3339(),
            "primarySource": matches!(author, Author::Professional { .. }),
            "note": note,
        }),
        Section::Hospitalisations => json!({
            "resourceType": "Procedure",
            "status": "completed",
            "code": concept(e),
            "subject": patient_ref(holder),
            "performedString": e.date,
            "recorder": who,
            "note": note,
        }),
        Section::FamilyHistory => json!({
            "resourceType": "FamilyMemberHistory",
            "status": "completed",
            "patient": patient_ref(holder),
            "date": created.to_rfc3339(),
            "relationship": { "text": e.value.clone().unwrap_or_else(|| "famille".into()) },
            "condition": [{ "code": concept(e) }],
            "note": note,
        }),
        Section::Questionnaire => json!({
            "resourceType": "QuestionnaireResponse",
            "status": "completed",
            "subject": patient_ref(holder),
            "authored": updated.to_rfc3339(),
            "author": who,
            "item": [{
                "linkId": e.code.as_ref().map(|c| c.code.clone()).unwrap_or_default(),
                "text": carnet_domain::profile::QUESTIONS.iter().find(|(q, _)| Some(*q) == e.code.as_ref().map(|c| c.code.as_str())).map(|(_, t)| *t),
                "answer": [{ "valueString": e.value }],
            }],
        }),
        Section::BloodGroup | Section::Lifestyle => json!({
            "resourceType": "Observation",
            "status": "final",
            "category": [{ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": if e.section == Section::BloodGroup { "laboratory" } else { "social-history" } }] }],
            "code": if e.section == Section::BloodGroup { json!({ "coding": [{ "system": "http://loinc.org", "code": "882-1", "display": "ABO and Rh group" }] }) } else { concept(e) },
            "subject": patient_ref(holder),
            "issued": created.to_rfc3339(),
            "performer": [who],
            "valueString": e.value.clone().unwrap_or_else(|| e.text.clone()),
        }),
        Section::AdvanceDirectives | Section::OrganDonation => json!({
            "resourceType": "Consent",
            "status": "active",
            "scope": { "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/consentscope", "code": if e.section == Section::AdvanceDirectives { "adr" } else { "treatment" } }] },
            "category": [{ "text": e.section.label_fr() }],
            "patient": patient_ref(holder),
            "dateTime": created.to_rfc3339(),
            "policyRule": { "text": e.value.clone().unwrap_or_else(|| e.text.clone()) },
        }),
        Section::TrustedPeople => {
            let c = e.contact.clone();
            json!({
                "resourceType": "RelatedPerson",
                "patient": patient_ref(holder),
                "relationship": [{ "text": c.as_ref().map_or("", |c| if c.role == "trusted" { "personne de confiance" } else { "personne à prévenir" }) }],
                "name": [{ "text": c.as_ref().map(|c| c.name.clone()) }],
                "telecom": c.as_ref().and_then(|c| c.phone.clone()).map(|p| json!([{ "system": "phone", "value": p }])),
            })
        }
    };
    v["id"] = json!(rid);
    v["meta"] = meta(version, updated);
    strip_nulls(&mut v);
    // Empty objects left by absent dates are not valid FHIR.
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !matches!(x, Value::Object(o) if o.is_empty()));
    }
    v
}

/// The profile entry a Condition, AllergyIntolerance, MedicationStatement, Immunization or
/// Procedure carries (the reverse of [`profile_resource`] for what people write). The error
/// names the element (`Condition.code`…); the domain then checks codes and dates.
pub fn entry_from_resource(v: &Value) -> Result<EntryInput, String> {
    let rt = v["resourceType"].as_str().unwrap_or("");
    let (section, concept_key, date_key) = match rt {
        "Condition" => (Section::Conditions, "code", "onsetDateTime"),
        "AllergyIntolerance" => (Section::Allergies, "code", "onsetDateTime"),
        "MedicationStatement" => (
            Section::Treatments,
            "medicationCodeableConcept",
            "effectiveDateTime",
        ),
        "Immunization" => (Section::Vaccinations, "vaccineCode", "occurrenceDateTime"),
        "Procedure" => (Section::Hospitalisations, "code", "performedDateTime"),
        other => return Err(format!("resourceType: {other} cannot be written here")),
    };
    let concept = &v[concept_key];
    if !concept.is_object() {
        return Err(format!("{rt}.{concept_key}: required"));
    }
    let code = match concept["coding"].as_array().and_then(|a| a.first()) {
        Some(c) => {
            let uri = c["system"].as_str().unwrap_or("");
            let system = [
                CodeSystem::Icd10,
                CodeSystem::SnomedCt,
                CodeSystem::Atc,
                CodeSystem::Cis,
                CodeSystem::Ccam,
                CodeSystem::Loinc,
            ]
            .into_iter()
            .find(|s| s.uri() == uri)
            .ok_or_else(|| {
                format!("{rt}.{concept_key}.coding[0].system: '{uri}' is not a known code system")
            })?;
            Some(Coding {
                system,
                code: c["code"].as_str().unwrap_or("").to_string(),
                display: c["display"].as_str().map(str::to_string),
            })
        }
        None => None,
    };
    let date = v[date_key]
        .as_str()
        .or_else(|| v["onsetString"].as_str())
        .or_else(|| v["occurrenceString"].as_str())
        .map(|d| d.chars().take(10).collect::<String>());
    let note = v["note"]
        .as_array()
        .and_then(|a| a.first())
        .and_then(|n| n["text"].as_str())
        .map(str::to_string);
    Ok(EntryInput {
        section,
        text: concept["text"]
            .as_str()
            .or_else(|| code.as_ref().and_then(|c| c.display.as_deref()))
            .unwrap_or("")
            .to_string(),
        code,
        date,
        end_date: None,
        value: None,
        contact: None,
        note,
    })
}

/// What an access trace records, as its AuditEvent says it.
#[derive(Clone, Copy, Debug)]
pub struct Audited<'a> {
    pub action: Action,
    /// Which item, e.g. `document/0190…`.
    pub item: &'a str,
    pub allowed: bool,
    /// Why it was allowed or refused, in words.
    pub reason: &'a str,
    pub emergency: bool,
}

/// An access trace (`seq` of `holder`'s chain, made `at` by `actor`) as an AuditEvent (IHE
/// BALP shape where it fits).
pub fn audit_event(holder: HolderId, seq: i64, at: Timestamp, actor: &Value, what: Audited<'_>) -> Value {
    let Audited {
        action,
        item,
        allowed,
        reason,
        emergency,
    } = what;
    let (code, display) = match action {
        Action::Read => ("R", "read"),
        Action::Create => ("C", "create"),
        Action::Update => ("U", "update"),
        Action::Delete => ("D", "delete"),
    };
    let who = match (actor.get("kind").and_then(Value::as_str), actor.get("id")) {
        (Some("professional"), Some(id)) => {
            json!({ "reference": format!("Practitioner/{}", id.as_str().unwrap_or("")) })
        }
        (Some("establishment"), Some(id)) => {
            json!({ "reference": format!("Organization/{}", id.as_str().unwrap_or("")) })
        }
        (Some(kind), Some(id)) => {
            json!({ "display": format!("{kind} {}", id.as_str().map_or_else(|| id.to_string(), str::to_string)) })
        }
        _ => json!({ "display": "inconnu" }),
    };
    let mut purpose = Vec::new();
    if emergency {
        purpose.push(json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": "ETREAT", "display": "emergency treatment" }] }));
    }
    let mut v = json!({
        "resourceType": "AuditEvent",
        "id": format!("{}-{seq}", holder.as_uuid().simple()),
        "type": { "system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "RESTful Operation" },
        "action": code,
        "recorded": at.to_rfc3339(),
        "outcome": if allowed { "0" } else { "4" },
        "outcomeDesc": reason,
        "purposeOfEvent": purpose,
        "agent": [{ "who": who, "requestor": true, "type": { "text": display } }],
        "source": { "observer": { "display": "Carnet" } },
        "entity": [
            { "what": patient_ref(holder), "role": { "system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1", "display": "Patient" } },
            { "what": { "display": item } }
        ],
    });
    if !emergency && let Some(m) = v.as_object_mut() {
        m.remove("purposeOfEvent");
    }
    v
}

fn xhtml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}

/// A human label for a resource in a summary's narrative.
fn label_of(r: &Value) -> String {
    let concept = ["code", "medicationCodeableConcept", "vaccineCode"]
        .iter()
        .map(|k| &r[*k])
        .find(|c| c.is_object())
        .cloned()
        .unwrap_or(Value::Null);
    let text = concept["text"]
        .as_str()
        .or_else(|| concept["coding"][0]["display"].as_str())
        .or_else(|| concept["coding"][0]["code"].as_str())
        .unwrap_or("");
    match &r["valueQuantity"] {
        Value::Object(q) => format!(
            "{text} : {} {} ({})",
            q.get("value").map(|v| v.to_string()).unwrap_or_default(),
            q.get("unit").and_then(Value::as_str).unwrap_or(""),
            r["effectiveDateTime"]
                .as_str()
                .unwrap_or("")
                .chars()
                .take(10)
                .collect::<String>()
        ),
        _ => text.to_string(),
    }
}

/// An International Patient Summary (IPS) document Bundle from what the caller may see of a
/// record (`everything`: the Patient first when readable). `None` without a readable Patient
/// (a document must contain its subject). Sections: allergies, problems, medication,
/// immunisations, procedures, vital signs (the newest value of each measure), advance directives.
pub fn ips_document(base: &str, holder: HolderId, now: Timestamp, everything: Vec<Value>) -> Option<Value> {
    let patient = everything
        .iter()
        .find(|r| r["resourceType"] == "Patient")?
        .clone();
    let url = |r: &Value| {
        format!(
            "{base}/{}/{}",
            r["resourceType"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or("")
        )
    };
    // Vital signs: only the newest Observation of each code.
    let mut newest: std::collections::BTreeMap<String, Value> = std::collections::BTreeMap::new();
    for o in everything
        .iter()
        .filter(|r| r["resourceType"] == "Observation" && r.get("valueQuantity").is_some())
    {
        let code = o["code"]["coding"][0]["code"].as_str().unwrap_or("").to_string();
        let at = o["effectiveDateTime"].as_str().unwrap_or("");
        if newest
            .get(&code)
            .is_none_or(|n| n["effectiveDateTime"].as_str().unwrap_or("") < at)
        {
            newest.insert(code, o.clone());
        }
    }
    let sections: [(&str, &str, &str, Vec<&Value>); 7] = [
        (
            "Allergies et intolérances",
            "48765-2",
            "AllergyIntolerance",
            vec![],
        ),
        ("Problèmes de santé", "11450-4", "Condition", vec![]),
        ("Traitements", "10160-0", "MedicationStatement", vec![]),
        ("Vaccinations", "11369-6", "Immunization", vec![]),
        ("Interventions", "47519-4", "Procedure", vec![]),
        ("Constantes", "8716-3", "Observation", vec![]),
        ("Directives anticipées", "42348-3", "Consent", vec![]),
    ];
    let mut included: Vec<Value> = Vec::new();
    let mut out_sections = Vec::new();
    for (title, loinc, rtype, _) in sections {
        let members: Vec<Value> = if rtype == "Observation" {
            newest.values().cloned().collect()
        } else {
            everything
                .iter()
                .filter(|r| r["resourceType"] == rtype)
                .cloned()
                .collect()
        };
        let items: String = if members.is_empty() {
            "<p>Aucune information.</p>".to_string()
        } else {
            format!(
                "<ul>{}</ul>",
                members
                    .iter()
                    .map(|m| format!("<li>{}</li>", xhtml_escape(&label_of(m))))
                    .collect::<String>()
            )
        };
        let mut section = json!({
            "title": title,
            "code": { "coding": [{ "system": "http://loinc.org", "code": loinc }] },
            "text": { "status": "generated", "div": format!("<div xmlns=\"http://www.w3.org/1999/xhtml\">{items}</div>") },
        });
        if members.is_empty() {
            section["emptyReason"] = json!({ "coding": [{ "system": "http://terminology.hl7.org/CodeSystem/list-empty-reason", "code": "unavailable" }] });
        } else {
            section["entry"] = json!(
                members
                    .iter()
                    .map(|m| json!({ "reference": url(m) }))
                    .collect::<Vec<_>>()
            );
        }
        out_sections.push(section);
        included.extend(members);
    }
    let composition = json!({
        "resourceType": "Composition",
        "id": format!("ips-{}", holder.as_uuid().simple()),
        "status": "final",
        "type": { "coding": [{ "system": "http://loinc.org", "code": "60591-5", "display": "Patient summary Document" }] },
        "subject": { "reference": url(&patient) },
        "date": now.to_rfc3339(),
        "author": [{ "display": "Carnet" }],
        "title": "Synthèse médicale (Patient Summary)",
        "section": out_sections,
    });
    let mut entries = vec![
        json!({ "fullUrl": format!("{base}/Composition/{}", composition["id"].as_str().unwrap_or("")), "resource": composition }),
        json!({ "fullUrl": url(&patient), "resource": patient }),
    ];
    entries.extend(
        included
            .into_iter()
            .map(|r| json!({ "fullUrl": url(&r), "resource": r })),
    );
    Some(json!({
        "resourceType": "Bundle",
        "identifier": { "system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{}", Uuid::new_v4()) },
        "type": "document",
        "timestamp": now.to_rfc3339(),
        "entry": entries,
    }))
}

/// A professional of the directory as a Practitioner (FR Core: the RPPS number as IDNPS `8` +
/// RPPS). The directory is public data.
pub fn practitioner(rpps: &str, family: &str, given: &str) -> Value {
    let mut v = json!({
        "resourceType": "Practitioner",
        "id": rpps,
        "identifier": [{
            "system": "urn:oid:1.2.250.1.71.4.2.1",
            "value": format!("8{rpps}"),
            "type": { "coding": [{ "system": "http://interopsante.org/fhir/CodeSystem/fr-v2-0203", "code": "IDNPS" }] },
        }],
        "name": [{ "family": family, "given": [given] }],
    });
    strip_nulls(&mut v);
    if given.is_empty() {
        v["name"][0].as_object_mut().map(|m| m.remove("given"));
    }
    v
}

/// A professional's practice: profession (Carnet's habilitation-matrix name), specialty,
/// organisation (FINESS).
pub fn practitioner_role(
    rpps: &str,
    profession: &str,
    specialty: Option<&str>,
    finess: Option<&str>,
    org: Option<&str>,
) -> Value {
    let mut v = json!({
        "resourceType": "PractitionerRole",
        "id": format!("{rpps}-role"),
        "practitioner": { "reference": format!("Practitioner/{rpps}") },
        "code": [{ "coding": [{ "system": "urn:carnet:profession", "code": profession }] }],
        "specialty": specialty.map(|s| json!([{ "text": s }])),
        "organization": finess.map(|f| json!({ "reference": format!("Organization/{f}"), "display": org })),
    });
    strip_nulls(&mut v);
    v
}

/// An OperationOutcome with one issue.
pub fn operation_outcome(severity: &str, code: &str, diagnostics: &str) -> Value {
    json!({
        "resourceType": "OperationOutcome",
        "issue": [{ "severity": severity, "code": code, "diagnostics": diagnostics }],
    })
}

/// A searchset Bundle.
pub fn searchset(
    base: &str,
    self_link: &str,
    next: Option<&str>,
    total: usize,
    resources: Vec<Value>,
) -> Value {
    searchset_with(base, self_link, next, total, resources, Vec::new())
}

/// A searchset Bundle with `_include`d resources (search mode `include`, not counted).
pub fn searchset_with(
    base: &str,
    self_link: &str,
    next: Option<&str>,
    total: usize,
    resources: Vec<Value>,
    included: Vec<Value>,
) -> Value {
    let mut links = vec![json!({ "relation": "self", "url": self_link })];
    if let Some(n) = next {
        links.push(json!({ "relation": "next", "url": n }));
    }
    // Built by moving each resource into its entry (`json!` would copy every resource, then
    // every entry, once more).
    let entry = |r: Value, mode: &str| {
        let url = format!(
            "{base}/{}/{}",
            r["resourceType"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or("")
        );
        let mut e = serde_json::Map::with_capacity(3);
        e.insert("fullUrl".into(), Value::String(url));
        e.insert("resource".into(), r);
        e.insert("search".into(), json!({ "mode": mode }));
        Value::Object(e)
    };
    let mut entries: Vec<Value> = resources.into_iter().map(|r| entry(r, "match")).collect();
    entries.extend(included.into_iter().map(|r| entry(r, "include")));
    let mut b = serde_json::Map::with_capacity(5);
    b.insert("resourceType".into(), json!("Bundle"));
    b.insert("type".into(), json!("searchset"));
    b.insert("total".into(), json!(total));
    b.insert("link".into(), Value::Array(links));
    b.insert("entry".into(), Value::Array(entries));
    Value::Object(b)
}

/// [`searchset_with`] written straight to JSON text (a search's page, the hot path: building
/// a `Value` of each resource, moving it into a tree and printing the tree cost more than the
/// search itself). Entries are given as their resources' JSON text, matches first, then
/// `_include`d ones; the same bytes as `searchset_with`'s `Value` printed compactly (a test
/// holds them equal).
pub struct SearchsetWriter {
    w: JsonWriter,
    base: String,
}

impl SearchsetWriter {
    pub fn new(base: &str, self_link: &str, next: Option<&str>, total: usize) -> Self {
        let mut w = JsonWriter::with_capacity(16 * 1024);
        w.open(b'{');
        w.str("resourceType", "Bundle");
        w.str("type", "searchset");
        w.key("total");
        w.raw(&total.to_string());
        w.key("link");
        w.open(b'[');
        for (relation, url) in std::iter::once(("self", self_link)).chain(next.map(|n| ("next", n))) {
            w.open(b'{');
            w.str("relation", relation);
            w.str("url", url);
            w.close(b'}');
        }
        w.close(b']');
        w.key("entry");
        w.open(b'[');
        Self {
            w,
            base: base.to_string(),
        }
    }

    /// One entry: `fullUrl` from the resource's type and id, the resource written by `write`,
    /// and its search mode (`match` or `include`).
    fn entry_with(
        w: &mut JsonWriter,
        base: &str,
        resource_type: &str,
        id: &str,
        mode: &str,
        write: impl FnOnce(&mut JsonWriter),
    ) {
        let url = format!("{base}/{resource_type}/{id}");
        w.open(b'{');
        w.str("fullUrl", &url);
        w.key("resource");
        write(w);
        w.key("search");
        w.open(b'{');
        w.str("mode", mode);
        w.close(b'}');
        w.close(b'}');
    }

    /// A DocumentReference found, written as [`document_reference_json`] writes it.
    pub fn document_entry(
        &mut self,
        holder: HolderId,
        id: Uuid,
        set_id: Uuid,
        status: Status,
        m: &DocumentMeta,
    ) {
        let rid = item_id(holder, id);
        let base = &self.base;
        Self::entry_with(&mut self.w, base, "DocumentReference", &rid, "match", |w| {
            write_document_reference(
                w,
                base,
                &rid,
                holder,
                DocumentFields {
                    id,
                    set_id,
                    status,
                    m,
                },
            );
        });
    }

    /// A resource made as a `Value` (any other type, or an `_include`d one).
    pub fn value_entry(&mut self, r: &Value, mode: &str) {
        let (rtype, id) = (
            r["resourceType"].as_str().unwrap_or(""),
            r["id"].as_str().unwrap_or(""),
        );
        Self::entry_with(&mut self.w, &self.base, rtype, id, mode, |w| {
            // Writing into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut w.out, r);
            w.after_value();
        });
    }

    pub fn finish(mut self) -> String {
        self.w.close(b']');
        self.w.close(b'}');
        self.w.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use carnet_domain::access::{Category, ProfessionalId};
    use carnet_domain::document::Format;

    #[test]
    fn ids_carry_their_space() {
        let h = HolderId::from_uuid(Uuid::now_v7());
        let i = Uuid::now_v7();
        let id = item_id(h, i);
        assert_eq!(id.len(), 64);
        assert_eq!(split_id(&id), Some((h, i)));
        assert_eq!(split_id("abc"), None);
        assert_eq!(split_id(&"g".repeat(64)), None);
    }

    #[test]
    fn base64_matches_the_standard() {
        assert_eq!(base64_encode(b""), "");
        assert_eq!(base64_encode(b"f"), "Zg==");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
        assert_eq!(base64_encode(b"foobar"), "Zm9vYmFy");
    }

    /// A professional's PDF report.
    fn sample_meta() -> DocumentMeta {
        DocumentMeta {
            title: "Compte rendu".into(),
            class: Category::Reports,
            type_code: Some("11488-4".into()),
            type_display: None,
            event_date: Some("2025-11-02".into()),
            author: Author::Professional {
                id: ProfessionalId("10000000001".into()),
            },
            author_name: "Dr LEROY".into(),
            organisation: None,
            uploaded_at: Timestamp::from_unix_seconds(1_767_603_600),
            confidentiality: "N".into(),
            format: Format::Pdf,
            mime: "application/pdf".into(),
            size: 12,
            sha256: "00ff".into(),
            filename: "cr.pdf".into(),
            masked: false,
            hidden_from_representatives: false,
            visible_from: Timestamp::from_unix_seconds(1_767_603_600),
            replaces: None,
            deletion_request: None,
            legacy_unique_id: None,
            xds: Default::default(),
        }
    }

    #[test]
    fn a_document_reference_points_its_binary_and_subject() {
        let h = HolderId::from_uuid(Uuid::now_v7());
        let id = Uuid::now_v7();
        let m = sample_meta();
        let v = document_reference("http://x/fhir", h, id, id, Status::Approved, &m);
        assert_eq!(
            v["content"][0]["attachment"]["url"],
            format!("http://x/fhir/Binary/{}", item_id(h, id))
        );
        assert_eq!(v["subject"]["reference"], format!("Patient/{h}"));
        assert_eq!(v["type"]["coding"][0]["code"], "11488-4");
        assert!(v["type"]["coding"][0].get("display").is_none(), "no nulls: {v}");
        assert_eq!(v["content"][0]["attachment"]["hash"], "AP8=");
    }

    #[test]
    fn the_searchset_writer_matches_the_value_bundle() {
        let h = HolderId::from_uuid(Uuid::now_v7());
        let (id, set) = (Uuid::now_v7(), Uuid::now_v7());
        let at = Timestamp::from_unix_seconds(1_767_603_600);
        let m = DocumentMeta {
            title: "Compte rendu \"é\"".into(),
            author: Author::Holder,
            author_name: String::new(),
            organisation: Some("CHU".into()),
            uploaded_at: at,
            visible_from: at,
            ..sample_meta()
        };
        let doc = document_reference("http://x/fhir", h, id, set, Status::Approved, &m);
        let obs = json!({ "resourceType": "Observation", "id": "o1", "status": "final" });
        let pat = json!({ "resourceType": "Patient", "id": "p\"1" });
        for (next, total, matches, included) in [
            (None, 0, vec![], vec![]),
            (
                Some("http://x/fhir/DocumentReference?_page=1"),
                7,
                vec![doc.clone(), obs.clone()],
                vec![pat.clone()],
            ),
            (None, 1, vec![obs.clone()], vec![]),
        ] {
            let tree = searchset_with(
                "http://x/fhir",
                "http://x/fhir/S?a=b&_page=0",
                next,
                total,
                matches.clone(),
                included.clone(),
            )
            .to_string();
            let mut w = SearchsetWriter::new("http://x/fhir", "http://x/fhir/S?a=b&_page=0", next, total);
            for r in &matches {
                if r["resourceType"] == "DocumentReference" {
                    w.document_entry(h, id, set, Status::Approved, &m);
                } else {
                    w.value_entry(r, "match");
                }
            }
            for r in &included {
                w.value_entry(r, "include");
            }
            assert_eq!(w.finish(), tree);
        }
    }

    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        prop_oneof![
            Just(String::new()),
            Just("holder".to_string()),
            Just("Compte rendu d'hospitalisation".to_string()),
            Just("é\"\\\n\t<>&\u{1}\u{7f}\u{2028}💊".to_string()),
            "[ -~éà]{0,12}",
        ]
    }

    proptest::proptest! {
        /// The hot path's writer and the `Value` mapping give the same bytes (IO-1), whatever
        /// is present, empty or in need of escaping.
        #[test]
        fn the_direct_writer_matches_the_value_mapping(
            title in text(), type_code in proptest::option::of(text()),
            type_display in proptest::option::of(text()), event_date in proptest::option::of(text()),
            author_kind in 0u8..4, author_id in text(), author_name in text(),
            organisation in proptest::option::of(text()), confidentiality in text(), mime in text(),
            size in proptest::prelude::any::<u64>(), sha256 in "[0-9a-f]{0,64}", filename in text(),
            replaces in proptest::option::of(proptest::prop_oneof![
                proptest::strategy::Just(Uuid::now_v7().to_string()), text()]),
            deprecated in proptest::prelude::any::<bool>(), seconds in 0i64..4_000_000_000,
            xds_uid in proptest::option::of(text()), xds_end in proptest::option::of(text()),
        ) {
            let author = match author_kind {
                0 => Author::Holder,
                1 => Author::Professional { id: ProfessionalId(author_id) },
                2 => Author::Establishment { id: carnet_domain::access::OrganisationId(author_id) },
                _ => Author::App { id: carnet_domain::access::AppId(author_id) },
            };
            let at = Timestamp::from_unix_seconds(seconds);
            let m = DocumentMeta {
                title, class: Category::Reports, type_code, type_display, event_date, author,
                author_name, organisation, uploaded_at: at, confidentiality, format: Format::Pdf,
                mime, size, sha256, filename, masked: false, hidden_from_representatives: false,
                visible_from: at, replaces, deletion_request: None, legacy_unique_id: None,
                // IHE MHD's metadata, sometimes (the writer then takes the `Value` mapping).
                xds: carnet_domain::document::XdsMeta {
                    unique_id: xds_uid,
                    service_end: xds_end,
                    ..Default::default()
                },
            };
            let (h, id, set) = (HolderId::from_uuid(Uuid::now_v7()), Uuid::now_v7(), Uuid::now_v7());
            let status = if deprecated { Status::Deprecated } else { Status::Approved };
            let direct = document_reference_json("http://x/fhir", h, id, set, status, &m);
            let tree = document_reference("http://x/fhir", h, id, set, status, &m).to_string();
            proptest::prop_assert_eq!(&direct, &tree);
            // In a searchset too (the entry's resource).
            let v: serde_json::Value = serde_json::from_str(&direct).unwrap();
            proptest::prop_assert_eq!(v["resourceType"].as_str(), Some("DocumentReference"));
        }
    }
}
