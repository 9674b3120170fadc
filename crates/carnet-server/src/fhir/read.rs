//! Reads: by id, vread, instance and type history, the Patient, profile resources, messages
//! and events, `$everything` and `$summary`.

#[allow(unused_imports)]
use super::*;

/// A resource by type and id, read through the gate as the caller.
pub(super) async fn read_value(f: &Fhir<'_>, rtype: ResourceType, id: &str) -> Result<Value, FhirError> {
    let (s, c) = (f.s, f.c);
    let ctx = Context::default();
    if rtype == ResourceType::Patient {
        let holder: HolderId = id.parse().map_err(|_| FhirError::not_found())?;
        return patient(f, holder).await;
    }
    if let Some(v) = directory_read(s, rtype, id).await? {
        return Ok(v);
    }
    let (holder, item) = split_id(id).ok_or_else(FhirError::not_found)?;
    let v = match rtype {
        ResourceType::DocumentReference => {
            let view = s
                .gate
                .read_document_metadata(holder, &c.actor, DocumentId::from_uuid(item), &ctx)
                .await?;
            r::document_reference(
                &f.base,
                holder,
                *view.id.as_uuid(),
                *view.set_id.as_uuid(),
                view.status,
                &view.meta,
            )
        }
        ResourceType::Binary => {
            let (view, bytes) = s
                .gate
                .read_document(holder, &c.actor, DocumentId::from_uuid(item), &ctx)
                .await?;
            use base64::Engine;
            json!({
                "resourceType": "Binary",
                "id": id,
                "contentType": view.meta.mime,
                "securityContext": { "reference": format!("DocumentReference/{id}") },
                "data": base64::engine::general_purpose::STANDARD.encode(&bytes),
            })
        }
        ResourceType::Observation => match s.gate.measurement(holder, &c.actor, item, &ctx).await {
            Ok(pt) => r::observation(holder, pt.id, &pt.measurement, &pt.author),
            Err(StoreError::NotFound) => profile_by_id(f, holder, item, rtype).await?,
            Err(e) => return Err(e.into()),
        },
        t @ (ResourceType::Condition
        | ResourceType::AllergyIntolerance
        | ResourceType::MedicationStatement
        | ResourceType::Immunization
        | ResourceType::Procedure
        | ResourceType::FamilyMemberHistory
        | ResourceType::QuestionnaireResponse
        | ResourceType::RelatedPerson
        | ResourceType::Consent) => profile_by_id(f, holder, item, t).await?,
        ResourceType::Provenance => {
            let doc = Box::pin(read_value(f, ResourceType::DocumentReference, id)).await?;
            carnet_fhir::exchange::provenance_of_document(&doc)
        }
        ResourceType::Communication => {
            let (conv, m) = s.gate.read_message(holder, &c.actor, item, &ctx).await?;
            communication_of(holder, &conv, &m)
        }
        ResourceType::Appointment => {
            let e = s.gate.read_event(holder, &c.actor, item, &ctx).await?;
            appointment_of(s, holder, &e)
        }
        ResourceType::ExplanationOfBenefit => {
            let rb = s.gate.reimbursement(holder, &c.actor, item, &ctx).await?;
            carnet_fhir::eob::explanation_of_benefit(holder, rb.id, &rb.line, rb.imported_at)
        }
        ResourceType::Patient
        | ResourceType::AuditEvent
        | ResourceType::Practitioner
        | ResourceType::PractitionerRole => return Err(FhirError::not_found()),
    };
    Ok(v)
}

/// Whether an `Accept` header names a type other than FHIR's (the document's own: a PDF, an
/// image) and no FHIR format. No header or `*/*` alone: FHIR JSON, as for every read.
fn wants_native(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    let fhir = types.iter().any(|t| t.contains("fhir") || t.contains("json"));
    !fhir && types.iter().any(|t| !t.is_empty() && *t != "*/*")
}

pub(super) async fn read(
    State(s): State<AppState>,
    c: FhirCaller,
    Path((rtype, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let p = Params::parse(q)?;
    let rtype = ResourceType::of_path(&rtype)?;
    let f = Fhir::new(&s, &c, &headers);
    if id == "_history" {
        return type_history(&f, rtype, &p).await;
    }
    // IHE MHD ITI-68 (and FHIR's Binary read): asked for anything but a FHIR format, a
    // Binary answers with the document itself, in its own content type.
    if rtype == ResourceType::Binary && wants_native(&headers) {
        let (holder, item) = split_id(&id).ok_or_else(FhirError::not_found)?;
        let (view, bytes) = s
            .gate
            .read_document(holder, &c.actor, DocumentId::from_uuid(item), &Context::default())
            .await?;
        return Ok((
            StatusCode::OK,
            [
                (header::CONTENT_TYPE, view.meta.mime.clone()),
                (header::CACHE_CONTROL, "no-store".to_string()),
                (
                    header::HeaderName::from_static("x-content-type-options"),
                    "nosniff".to_string(),
                ),
                // Never run as a page of this origin, whatever a browser makes of it.
                (
                    header::CONTENT_SECURITY_POLICY,
                    "sandbox; default-src 'none'".to_string(),
                ),
            ],
            bytes,
        )
            .into_response());
    }
    // The hot path (IO-1): a DocumentReference written straight to JSON text (the same bytes
    // as `read_value`'s, `document_reference_json`'s test holds them equal).
    if rtype == ResourceType::DocumentReference && !p.pretty() {
        let (holder, item) = split_id(&id).ok_or_else(FhirError::not_found)?;
        let view = s
            .gate
            .read_document_metadata(holder, &c.actor, DocumentId::from_uuid(item), &Context::default())
            .await?;
        let body = r::document_reference_json(
            &f.base,
            holder,
            *view.id.as_uuid(),
            *view.set_id.as_uuid(),
            view.status,
            &view.meta,
        );
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, FHIR_JSON)], body).into_response());
    }
    let v = read_value(&f, rtype, &id).await?;
    let mut resp = respond(StatusCode::OK, &v, p.pretty());
    if let Some(vid) = v["meta"]["versionId"].as_str()
        && let Ok(tag) = format!("W/\"{vid}\"").parse()
    {
        resp.headers_mut().insert(header::ETAG, tag);
    }
    Ok(resp)
}

/// `GET /fhir/{type}/_history?patient=&_since=&_count=`: the type's history in one space, as the
/// caller may see it (found by the same `matching` as a search: the gate decides each item
/// before anything is counted). The store keeps each item's current version, so the history
/// holds one entry per item, newest change first; `_since` keeps those changed at or after it.
pub(super) async fn type_history(
    f: &Fhir<'_>,
    rtype: ResourceType,
    p: &Params,
) -> Result<Response, FhirError> {
    for k in p.0.keys() {
        if !matches!(
            k.as_str(),
            "patient" | "subject" | "_since" | "_count" | "_format" | "_pretty"
        ) {
            return Err(FhirError::invalid(format!(
                "history parameter '{k}' is not supported (supported: patient, _since, _count)"
            )));
        }
    }
    let since = match p.one("_since") {
        Some(v) => Some(
            parse_instant(v)
                .ok_or_else(|| FhirError::invalid("_since: an instant (RFC 3339) is expected"))?,
        ),
        None => None,
    };
    let count: usize = match p.one("_count") {
        Some(v) => v
            .parse()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| FhirError::invalid("_count: 1 to 1000"))?,
        None => 100,
    };
    let mut q = BTreeMap::new();
    if let Some(h) = p.one("patient").or_else(|| p.one("subject")) {
        q.insert("patient".to_string(), vec![h.to_string()]);
    }
    let mut all: Vec<Value> = matching(f, rtype, &Params(q))
        .await?
        .into_iter()
        .filter(|r| {
            since.is_none_or(|t| {
                r["meta"]["lastUpdated"]
                    .as_str()
                    .and_then(parse_instant)
                    .is_some_and(|u| u >= t)
            })
        })
        .collect();
    all.sort_by(|a, b| {
        let at = |r: &Value| {
            r["meta"]["lastUpdated"]
                .as_str()
                .and_then(parse_instant)
                .unwrap_or(0)
        };
        at(b).cmp(&at(a))
    });
    let total = all.len();
    let base = &f.base;
    let entries: Vec<Value> = all
        .into_iter()
        .take(count)
        .map(|r| {
            let id = r["id"].as_str().unwrap_or("").to_string();
            let version = r["meta"]["versionId"].as_str().unwrap_or("1").to_string();
            json!({
                "fullUrl": format!("{base}/{rtype}/{id}"),
                "resource": r,
                "request": {"method": if version == "1" { "POST" } else { "PUT" },
                            "url": if version == "1" { rtype.to_string() } else { format!("{rtype}/{id}") }},
                "response": {"status": if version == "1" { "201" } else { "200" }, "etag": format!("W/\"{version}\"")},
            })
        })
        .collect();
    let bundle = json!({
        "resourceType": "Bundle",
        "type": "history",
        "total": total,
        "link": [{"relation": "self", "url": format!("{base}/{rtype}/_history")}],
        "entry": entries,
    });
    Ok(respond(StatusCode::OK, &bundle, p.pretty()))
}

/// Practitioner and PractitionerRole from the directory (public data: any authenticated caller
/// reads them; nothing about a holder).
pub(super) async fn directory_read(
    s: &AppState,
    rtype: ResourceType,
    id: &str,
) -> Result<Option<Value>, FhirError> {
    let found = |o: Option<Value>| o.map(Some).ok_or_else(FhirError::not_found);
    match rtype {
        ResourceType::Practitioner => found(
            s.store
                .professional(id)
                .await?
                .map(|p| r::practitioner(&p.rpps, &p.family_name, &p.given_name)),
        ),
        ResourceType::PractitionerRole => {
            let rpps = id.strip_suffix("-role").ok_or_else(FhirError::not_found)?;
            found(s.store.professional(rpps).await?.map(|p| {
                r::practitioner_role(
                    &p.rpps,
                    &p.profession,
                    p.specialty.as_deref(),
                    p.finess.as_deref(),
                    p.organisation_name.as_deref(),
                )
            }))
        }
        _ => Ok(None),
    }
}

/// A profile entry as its FHIR resource.
pub(super) fn entry_resource(holder: HolderId, e: &carnet_store::profile::ProfileEntry) -> Value {
    let stored = r::Stored {
        holder,
        id: e.id,
        version: e.version,
        created: e.created_at,
        updated: e.updated_at,
        author: &e.author,
        author_name: &e.author_name,
    };
    r::profile_resource(stored, &e.entry)
}

pub(super) async fn patient(f: &Fhir<'_>, holder: HolderId) -> Result<Value, FhirError> {
    let (s, c) = (f.s, f.c);
    let rec = s
        .gate
        .read_administrative(holder, &c.actor, &Context::default())
        .await?;
    let admin: carnet_domain::roster::Administrative =
        serde_json::from_slice(&rec.administrative).map_err(|_| FhirError::not_found())?;
    Ok(carnet_fhir::patient::patient_from_admin(
        &holder.to_string(),
        &admin,
    ))
}

pub(super) async fn profile_resources(
    f: &Fhir<'_>,
    holder: HolderId,
    rtype: ResourceType,
) -> Result<Vec<Value>, FhirError> {
    let (s, c) = (f.s, f.c);
    let entries = s
        .gate
        .list_profile(holder, &c.actor, None, &Context::default())
        .await?;
    let mut out: Vec<Value> = entries
        .iter()
        .filter(|e| r::resource_type(e.entry.section) == rtype.as_str())
        .map(|e| entry_resource(holder, e))
        .collect();
    if rtype == ResourceType::Consent {
        out.extend(directory(f, holder).await?);
    }
    Ok(out)
}

/// AC-3: the authorisation directory as Consents, for the holder's side only (it is theirs to
/// read; a professional sees none of it, as if there were none).
pub(super) async fn directory(f: &Fhir<'_>, holder: HolderId) -> Result<Vec<Value>, FhirError> {
    let (s, c) = (f.s, f.c);
    // The holder's side only: the gate hands the directory to the holder and their current
    // representatives, to nobody else.
    let Some(side) = s.gate.holder_side(holder, &c.actor).await? else {
        return Ok(Vec::new());
    };
    let (policy, version) = side.access_policy().await?;
    Ok(carnet_fhir::exchange::directory_consents(
        holder,
        &policy,
        version,
        s.store.now(),
    ))
}

pub(super) async fn profile_by_id(
    f: &Fhir<'_>,
    holder: HolderId,
    item: uuid::Uuid,
    rtype: ResourceType,
) -> Result<Value, FhirError> {
    let want = item_id(holder, item);
    profile_resources(f, holder, rtype)
        .await?
        .into_iter()
        .find(|v| v["id"] == want.as_str())
        .ok_or_else(FhirError::not_found)
}

/// `GET /fhir/Patient/{id}/$everything`: what the caller may see of the record, in one Bundle;
/// `GET /fhir/Patient/{id}/$summary`: the same as an International Patient Summary document.
/// `GET /fhir/{type}/{id}/{op}`: `_history` of any resource, `$everything` and `$summary` of a
/// Patient.
pub(super) async fn instance_op(
    State(s): State<AppState>,
    c: FhirCaller,
    Path((rtype, id, op)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let rtype = ResourceType::of_path(&rtype)?;
    if op == "_history" {
        let p = Params::parse(q)?;
        p.only(&[])?;
        let f = Fhir::new(&s, &c, &headers);
        let v = read_value(&f, rtype, &id).await?;
        let version = v["meta"]["versionId"].as_str().unwrap_or("1").to_string();
        let base = &f.base;
        // The store keeps the current version of an item (a document's earlier versions are
        // resources of their own, linked by `relatesTo`): the history is that one version.
        let bundle = json!({
            "resourceType": "Bundle",
            "type": "history",
            "total": 1,
            "link": [{"relation": "self", "url": format!("{base}/{rtype}/{id}/_history")}],
            "entry": [{
                "fullUrl": format!("{base}/{rtype}/{id}"),
                "resource": v,
                "request": {"method": "PUT", "url": format!("{rtype}/{id}")},
                "response": {"status": "200", "etag": format!("W/\"{version}\"")},
            }],
        });
        return Ok(respond(StatusCode::OK, &bundle, p.pretty()));
    }
    if rtype != ResourceType::Patient {
        return Err(FhirError::new(
            StatusCode::NOT_FOUND,
            "not-supported",
            format!("{rtype}/{{id}}/{op} is not supported"),
        ));
    }
    everything(State(s), c, Path((id, op)), RawQuery(q), headers).await
}

/// `GET /fhir/{type}/{id}/_history/{vid}`: the current version when `vid` names it; an earlier
/// one is not kept (404 with a message saying so).
pub(super) async fn vread(
    State(s): State<AppState>,
    c: FhirCaller,
    Path((rtype, id, vid)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let p = Params::parse(q)?;
    let rtype = ResourceType::of_path(&rtype)?;
    let v = read_value(&Fhir::new(&s, &c, &headers), rtype, &id).await?;
    let current = v["meta"]["versionId"].as_str().unwrap_or("1");
    if current != vid {
        return Err(FhirError::new(
            StatusCode::NOT_FOUND,
            "not-found",
            format!("version {vid} of {rtype}/{id} is not kept (current: {current})"),
        ));
    }
    let mut resp = respond(StatusCode::OK, &v, p.pretty());
    if let Ok(tag) = format!("W/\"{current}\"").parse() {
        resp.headers_mut().insert(header::ETAG, tag);
    }
    Ok(resp)
}

pub(super) async fn everything(
    State(s): State<AppState>,
    c: FhirCaller,
    Path((id, op)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    if op != "$everything" && op != "$summary" {
        return Err(FhirError::new(
            StatusCode::NOT_FOUND,
            "not-supported",
            format!("operation {op} is not supported"),
        ));
    }
    let p = Params::parse(q)?;
    p.only(&[])?;
    let holder: HolderId = id.parse().map_err(|_| FhirError::not_found())?;
    let f = Fhir::new(&s, &c, &headers);
    let ctx = Context::default();
    let mut all = Vec::new();
    match patient(&f, holder).await {
        Ok(v) => all.push(v),
        Err(FhirError {
            status: StatusCode::NOT_FOUND,
            ..
        }) => {}
        Err(e) => return Err(e),
    }
    let every_document = DocumentFilter {
        limit: 500,
        ..DocumentFilter::default()
    };
    all.extend(documents(&f, holder, every_document).await?);
    for m in MEASURES.iter() {
        match s
            .gate
            .measurements(holder, &c.actor, m.loinc, None, 10_000, &ctx)
            .await
        {
            Ok(pts) => all.extend(
                pts.iter()
                    .map(|pt| r::observation(holder, pt.id, &pt.measurement, &pt.author)),
            ),
            Err(StoreError::NotFound) => {}
            Err(e) => return Err(e.into()),
        }
    }
    match s.gate.list_profile(holder, &c.actor, None, &ctx).await {
        Ok(entries) => all.extend(entries.iter().map(|e| entry_resource(holder, e))),
        Err(StoreError::NotFound) => {}
        Err(e) => return Err(e.into()),
    }
    // Nothing at all: like an unknown patient (AC-8).
    if all.is_empty() {
        return Err(FhirError::not_found());
    }
    if op == "$summary" {
        let v = r::ips_document(&f.base, holder, s.store.now(), all).ok_or_else(FhirError::not_found)?;
        return Ok(respond(StatusCode::OK, &v, p.pretty()));
    }
    // Messages, agenda events and reimbursements, each as the caller may see them.
    for t in [
        ResourceType::Communication,
        ResourceType::Appointment,
        ResourceType::ExplanationOfBenefit,
    ] {
        let mut q = BTreeMap::new();
        q.insert("patient".to_string(), vec![holder.to_string()]);
        match matching(&f, t, &Params(q)).await {
            Ok(found) => all.extend(found),
            Err(FhirError {
                status: StatusCode::NOT_FOUND,
                ..
            }) => {}
            Err(e) => return Err(e),
        }
    }
    let base = &f.base;
    let total = all.len();
    let v = r::searchset(
        base,
        &format!("{base}/Patient/{holder}/$everything"),
        None,
        total,
        all,
    );
    Ok(respond(StatusCode::OK, &v, p.pretty()))
}

pub(super) fn party<'a>(
    holder_side: &carnet_store::messaging::Sender,
    conv: &'a carnet_store::messaging::Conversation,
) -> carnet_fhir::exchange::Party<'a> {
    use carnet_domain::messaging::Counterpart;
    use carnet_fhir::exchange::Party;
    use carnet_store::messaging::Sender;
    match holder_side {
        Sender::Holder => Party::Patient,
        Sender::Representative { .. } => Party::Representative,
        Sender::Counterpart { .. } => match &conv.counterpart {
            Counterpart::Professional { id } => Party::Practitioner {
                rpps: &id.0,
                name: &conv.counterpart_name,
            },
            Counterpart::Establishment { id } => Party::Organization {
                finess: &id.0,
                name: &conv.counterpart_name,
            },
        },
    }
}

/// A message as a FHIR Communication (MS-1).
pub(super) fn communication_of(
    holder: HolderId,
    conv: &carnet_store::messaging::Conversation,
    m: &carnet_store::messaging::Message,
) -> Value {
    use carnet_fhir::exchange::{AttachmentFacts, MessageFacts};
    use carnet_store::messaging::Sender;
    let counterpart = Sender::Counterpart {
        counterpart: conv.counterpart.clone(),
    };
    let (sender, recipient) = if m.from_holder_side {
        (party(&m.sender, conv), party(&counterpart, conv))
    } else {
        (party(&counterpart, conv), party(&Sender::Holder, conv))
    };
    carnet_fhir::exchange::communication(&MessageFacts {
        holder,
        id: m.id,
        conversation: conv.id,
        subject: &conv.subject,
        sender,
        recipient,
        text: &m.text,
        attachments: m
            .attachments
            .iter()
            .map(|a| AttachmentFacts {
                filename: &a.filename,
                content_type: &a.content_type,
                size: a.size,
            })
            .collect(),
        sent: m.sent_at,
        received: m.read_at,
    })
}

/// Every message of the conversations the caller may read, newest first (no read receipts).
pub(super) async fn communications(f: &Fhir<'_>, holder: HolderId) -> Result<Vec<Value>, FhirError> {
    let (s, c) = (f.s, f.c);
    let ctx = Context::default();
    let convs = match s.gate.list_conversations(holder, &c.actor, &ctx).await {
        Ok(v) => v,
        Err(StoreError::NotFound) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let mut out = Vec::new();
    for conv in convs {
        let t = s
            .gate
            .conversation_thread(holder, &c.actor, conv.id, false, &ctx)
            .await?;
        out.extend(
            t.messages
                .iter()
                .rev()
                .map(|m| communication_of(holder, &t.conversation, m)),
        );
    }
    Ok(out)
}

/// An agenda event as a FHIR Appointment (AG-1).
pub(super) fn appointment_of(s: &AppState, holder: HolderId, e: &carnet_store::agenda::AgendaEvent) -> Value {
    let stored = r::Stored {
        holder,
        id: e.id,
        version: e.version,
        created: e.created_at,
        updated: e.updated_at,
        author: &e.author,
        author_name: &e.author_name,
    };
    carnet_fhir::exchange::appointment(stored, &e.event, s.store.now())
}
