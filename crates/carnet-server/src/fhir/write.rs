//! Creations, updates (`If-Match`) and deletions.

#[allow(unused_imports)]
use super::*;

/// A measurement from an Observation (LOINC coding, valueQuantity in UCUM, effectiveDateTime);
/// `at` names the element in errors (`Observation`, `entry[2].Observation`).
pub(super) fn measurement_of(v: &Value, at: &str) -> Result<MeasurementInput, FhirError> {
    let coding = v["code"]["coding"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["system"] == "http://loinc.org"))
        .ok_or_else(|| FhirError::unprocessable(format!("{at}.code: a LOINC coding is required")))?;
    let q = &v["valueQuantity"];
    Ok(MeasurementInput {
        code: coding["code"].as_str().unwrap_or("").to_string(),
        value: q["value"]
            .as_f64()
            .ok_or_else(|| FhirError::unprocessable(format!("{at}.valueQuantity.value: a number")))?,
        unit: q["code"]
            .as_str()
            .or(q["unit"].as_str())
            .unwrap_or("")
            .to_string(),
        at: v["effectiveDateTime"]
            .as_str()
            .ok_or_else(|| FhirError::unprocessable(format!("{at}.effectiveDateTime: required")))?
            .to_string(),
    })
}

/// `POST /fhir/{type}`: creation through the gate, as the caller. Observation: a measurement
/// (LOINC code, valueQuantity in UCUM, effectiveDateTime); DocumentReference: a document with
/// its content inline (`content[0].attachment.data`); Condition, AllergyIntolerance,
/// MedicationStatement, Immunization, Procedure: a profile entry. The patient comes from
/// `subject` / `patient` (a holder may omit it).
pub(super) async fn create(
    State(s): State<AppState>,
    c: FhirCaller,
    Path(rtype): Path<String>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, FhirError> {
    let v: Value = serde_json::from_slice(&body).map_err(|e| FhirError::invalid(format!("not JSON: {e}")))?;
    if v["resourceType"] != rtype.as_str() {
        return Err(FhirError::invalid(format!("resourceType: {rtype} expected")));
    }
    let not_supported = || {
        FhirError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            format!("create is not supported for {rtype}"),
        )
    };
    let rtype = ResourceType::parse(&rtype).ok_or_else(not_supported)?;
    let f = Fhir::new(&s, &c, &headers);
    // Conditional create: a search as the caller (what they cannot see does not count, and is
    // not revealed); one match is returned as it is, several are an error.
    if let Some(cond) = headers.get("if-none-exist") {
        let cond = cond
            .to_str()
            .map_err(|_| FhirError::invalid("If-None-Exist: not a query string"))?;
        let query = cond.split_once('?').map_or(cond, |(_, q)| q).to_string();
        let found = matching(&f, rtype, &Params::parse(Some(query))?).await?;
        match found.as_slice() {
            [] => {}
            [one] => return Ok(respond(StatusCode::OK, one, false)),
            many => {
                return Err(FhirError::new(
                    StatusCode::PRECONDITION_FAILED,
                    "duplicate",
                    format!(
                        "If-None-Exist matches {} resources; nothing was created",
                        many.len()
                    ),
                ));
            }
        }
    }
    let subject = v["subject"]["reference"]
        .as_str()
        .or_else(|| v["patient"]["reference"].as_str())
        .and_then(holder_of_reference)
        .or(c.home());
    match rtype {
        ResourceType::Observation => {}
        ResourceType::DocumentReference => return create_document(&f, subject, &v).await,
        ResourceType::Appointment => {
            // AG-2: a professional's software or a referenced app adds an event.
            let holder = v["participant"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|p| p["actor"]["reference"].as_str())
                .find_map(|r| r.strip_prefix("Patient/"))
                .and_then(|h| h.parse::<HolderId>().ok())
                .or(c.home())
                .ok_or_else(|| {
                    FhirError::invalid("Appointment.participant: a Patient/ID actor is required")
                })?;
            let input =
                carnet_fhir::exchange::event_from_appointment(&v).map_err(FhirError::unprocessable)?;
            let e = s
                .gate
                .add_event(holder, &c.actor, input, &c.name, &Context::default())
                .await?;
            return Ok(created(&appointment_of(&s, holder, &e)));
        }
        t if t.is_writable_profile() => {
            let holder =
                subject.ok_or_else(|| FhirError::invalid(format!("{t}.subject: Patient/ID required")))?;
            let entry = r::entry_from_resource(&v).map_err(FhirError::unprocessable)?;
            let e = s
                .gate
                .add_profile_entry(holder, &c.actor, entry, &c.name, &Context::default())
                .await?;
            let out = entry_resource(holder, &e);
            return Ok(created(&out));
        }
        _ => return Err(not_supported()),
    }

    let holder = subject.ok_or_else(|| FhirError::invalid("Observation.subject: Patient/ID required"))?;
    let input = measurement_of(&v, "Observation")?;
    s.gate
        .add_measurements(
            holder,
            &c.actor,
            std::slice::from_ref(&input),
            &Context::default(),
        )
        .await?;
    // The newest point of that series at that instant is the one just written.
    let pts = s
        .gate
        .measurements(holder, &c.actor, &input.code, None, 10_000, &Context::default())
        .await?;
    let at = carnet_domain::profile::MeasurementInput::validate(&input, s.store.now())
        .map_err(|e| FhirError::unprocessable(e.to_string()))?
        .at;
    let pt = pts
        .iter()
        .rev()
        .find(|p| p.measurement.at == at)
        .ok_or_else(FhirError::not_found)?;
    let out = r::observation(holder, pt.id, &pt.measurement, &pt.author);
    Ok(created(&out))
}

pub(super) fn created(out: &Value) -> Response {
    let mut resp = respond(StatusCode::CREATED, out, false);
    let loc = format!(
        "{}/{}",
        out["resourceType"].as_str().unwrap_or(""),
        out["id"].as_str().unwrap_or("")
    );
    if let Ok(loc) = loc.parse() {
        resp.headers_mut().insert(header::LOCATION, loc);
    }
    resp
}

/// A DocumentReference with its content inline: checked, sealed and stored through the gate
/// like any deposit (DM-1: the declared type must match the bytes).
pub(super) async fn create_document(
    f: &Fhir<'_>,
    subject: Option<HolderId>,
    v: &Value,
) -> Result<Response, FhirError> {
    let (s, c, base) = (f.s, f.c, f.base.as_str());
    let holder =
        subject.ok_or_else(|| FhirError::invalid("DocumentReference.subject: Patient/ID required"))?;
    let w = document_input(c, v, holder, "DocumentReference")?;
    let view = match w.replaces {
        // DM-3 (IHE MHD "replace"): a new version of one of the author's documents.
        Some(old) => {
            s.gate
                .replace_document(holder, &c.actor, old, w.new, w.content, &Context::default())
                .await?
        }
        None => {
            s.gate
                .deposit_document(holder, &c.actor, w.new, w.content, &Context::default())
                .await?
        }
    };
    let out = r::document_reference(
        base,
        holder,
        *view.id.as_uuid(),
        *view.set_id.as_uuid(),
        view.status,
        &view.meta,
    );
    Ok(created(&out))
}

/// A new document as a DocumentReference of `holder` describes it, with its content (inline
/// base64 `attachment.data`) and the version it replaces, if any (`relatesTo` with the code
/// `replaces`, DM-3); `at` names the resource in error messages.
pub(super) fn document_input(
    c: &FhirCaller,
    v: &Value,
    holder: HolderId,
    at: &str,
) -> Result<carnet_store::documents::DocumentWrite, FhirError> {
    use base64::Engine;
    let mut replaces = None;
    for (i, rel) in v["relatesTo"].as_array().into_iter().flatten().enumerate() {
        if rel["code"] != "replaces" {
            return Err(FhirError::unprocessable(format!(
                "{at}.relatesTo[{i}].code: only 'replaces' is supported"
            )));
        }
        let target = rel["target"]["reference"]
            .as_str()
            .and_then(|r| r.strip_prefix("DocumentReference/"))
            .and_then(split_id)
            .filter(|(h, _)| *h == holder)
            .ok_or_else(|| {
                FhirError::unprocessable(format!(
                    "{at}.relatesTo[{i}].target: a DocumentReference/ID of the same patient"
                ))
            })?;
        if replaces.replace(DocumentId::from_uuid(target.1)).is_some() {
            return Err(FhirError::unprocessable(format!(
                "{at}.relatesTo: one document replaced at a time"
            )));
        }
    }
    let att = &v["content"][0]["attachment"];
    let mime = att["contentType"].as_str().ok_or_else(|| {
        FhirError::unprocessable(format!("{at}.content[0].attachment.contentType: required"))
    })?;
    let data = att["data"].as_str().ok_or_else(|| {
        FhirError::unprocessable(format!(
            "{at}.content[0].attachment.data: the content, base64 (no url)"
        ))
    })?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(data)
        .map_err(|_| FhirError::unprocessable(format!("{at}.content[0].attachment.data: not base64")))?;
    let class = v["category"][0]["coding"][0]["code"]
        .as_str()
        .map(|c| {
            carnet_domain::access::Category::parse(c)
                .ok_or_else(|| FhirError::unprocessable(format!("{at}.category: unknown class '{c}'")))
        })
        .transpose()?;
    let new = carnet_store::documents::NewDocument {
        title: v["description"]
            .as_str()
            .or(att["title"].as_str())
            .map(str::to_string),
        class,
        type_code: v["type"]["coding"][0]["code"].as_str().map(str::to_string),
        type_display: v["type"]["coding"][0]["display"].as_str().map(str::to_string),
        event_date: v["context"]["period"]["start"]
            .as_str()
            .map(|d| d.chars().take(10).collect()),
        confidentiality: v["securityLabel"][0]["coding"][0]["code"]
            .as_str()
            .map(str::to_string),
        mime: mime.to_string(),
        filename: att["title"].as_str().map(str::to_string),
        hold_from_holder: false,
        hidden_from_representatives: false,
        author_name: c.name.clone(),
        organisation: None,
        xds: xds_of(v, at)?,
    };
    Ok(carnet_store::documents::DocumentWrite {
        replaces,
        new,
        content: bytes,
    })
}

/// DM-1's XDS metadata in a DocumentReference as an IHE MHD Document Source sends it (ITI-65):
/// `masterIdentifier` (the XDS uniqueId: an OID or UUID URN), `context.facilityType`,
/// `practiceSetting`, `event`, `period.end`, `authenticator`. Checked for shape, kept as sent.
pub(super) fn xds_of(v: &Value, at: &str) -> Result<carnet_domain::document::XdsMeta, FhirError> {
    use carnet_domain::document::{XdsCode, XdsMeta};
    let code = |c: &Value, path: &str| -> Result<Option<XdsCode>, FhirError> {
        if c.is_null() {
            return Ok(None);
        }
        let coding = &c["coding"][0];
        match (coding["system"].as_str(), coding["code"].as_str()) {
            (Some(system), Some(code)) if !system.is_empty() && !code.is_empty() => Ok(Some(XdsCode {
                system: system.to_string(),
                code: code.to_string(),
                display: coding["display"].as_str().map(str::to_string),
            })),
            _ => Err(FhirError::unprocessable(format!(
                "{at}.{path}: a coding with a system and a code"
            ))),
        }
    };
    let unique_id = match v["masterIdentifier"]["value"].as_str() {
        None => None,
        Some(u) if u.starts_with("urn:oid:") || u.starts_with("urn:uuid:") => Some(u.to_string()),
        Some(_) => {
            return Err(FhirError::unprocessable(format!(
                "{at}.masterIdentifier.value: the XDS uniqueId as urn:oid:… or urn:uuid:…"
            )));
        }
    };
    let ctx = &v["context"];
    let mut event_codes = Vec::new();
    for (i, e) in ctx["event"].as_array().into_iter().flatten().enumerate() {
        event_codes.extend(code(e, &format!("context.event[{i}]"))?);
    }
    Ok(XdsMeta {
        unique_id,
        facility_type: code(&ctx["facilityType"], "context.facilityType")?,
        practice_setting: code(&ctx["practiceSetting"], "context.practiceSetting")?,
        event_codes,
        service_end: ctx["period"]["end"].as_str().map(str::to_string),
        legal_authenticator: v["authenticator"]["display"]
            .as_str()
            .or(v["authenticator"]["reference"].as_str())
            .map(str::to_string),
        submission_set: None,
    })
}

/// The holder a Patient reference names: `Patient/{id}`, or the same as an absolute URL
/// (`https://…/fhir/Patient/{id}`, as IHE MHD sources write it).
pub(super) fn holder_of_reference(reference: &str) -> Option<HolderId> {
    reference
        .rsplit_once("Patient/")
        .map(|(_, id)| id)
        .filter(|id| !id.contains('/'))
        .and_then(|id| id.parse().ok())
}

/// The version an `If-Match` header names (`W/"3"` or `"3"`).
pub(super) fn if_match(headers: &HeaderMap) -> Result<i64, FhirError> {
    let v = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            FhirError::new(
                StatusCode::PRECONDITION_REQUIRED,
                "required",
                "If-Match: the version being updated is required (W/\"n\")".into(),
            )
        })?;
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .parse()
        .map_err(|_| FhirError::invalid("If-Match: W/\"n\" expected"))
}

/// `PUT /fhir/{type}/{id}` for the profile's resources: the author only, versioned with
/// `If-Match` (a stale version is 412), same section.
pub(super) async fn update(
    State(s): State<AppState>,
    c: FhirCaller,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, FhirError> {
    if !ResourceType::parse(&rtype).is_some_and(ResourceType::is_writable_profile) {
        return Err(FhirError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "not-supported",
            format!("update is not supported for {rtype}"),
        ));
    }
    let version = if_match(&headers)?;
    let (holder, item) = split_id(&id).ok_or_else(FhirError::not_found)?;
    let v: Value = serde_json::from_slice(&body).map_err(|e| FhirError::invalid(format!("not JSON: {e}")))?;
    if v["resourceType"] != rtype.as_str() || v["id"].as_str().is_some_and(|i| i != id) {
        return Err(FhirError::invalid("resourceType and id must match the URL"));
    }
    let entry = r::entry_from_resource(&v).map_err(FhirError::unprocessable)?;
    let e = match s
        .gate
        .update_profile_entry(holder, &c.actor, item, version, entry, &Context::default())
        .await
    {
        Err(StoreError::Conflict) => {
            return Err(FhirError::new(
                StatusCode::PRECONDITION_FAILED,
                "conflict",
                "the resource is at another version".into(),
            ));
        }
        other => other?,
    };
    let out = entry_resource(holder, &e);
    let mut resp = respond(StatusCode::OK, &out, false);
    if let Ok(tag) = format!("W/\"{}\"", e.version).parse() {
        resp.headers_mut().insert(header::ETAG, tag);
    }
    Ok(resp)
}

/// `DELETE /fhir/{type}/{id}` where the domain allows it: a profile entry (its author) or a
/// document (DM-3, DM-4: its author; the trace remains).
pub(super) async fn remove(
    State(s): State<AppState>,
    c: FhirCaller,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let (holder, item) = split_id(&id).ok_or_else(FhirError::not_found)?;
    let ctx = Context::default();
    let f = Fhir::new(&s, &c, &headers);
    match ResourceType::parse(&rtype) {
        Some(ResourceType::DocumentReference) => {
            s.gate
                .delete_document(holder, &c.actor, DocumentId::from_uuid(item), &ctx)
                .await?
        }
        // A measurement (its author, PR-1), or else a profile entry exchanged as an Observation.
        Some(ResourceType::Observation) => {
            match s.gate.delete_measurement(holder, &c.actor, item, &ctx).await {
                Err(StoreError::NotFound) => {
                    profile_by_id(&f, holder, item, ResourceType::Observation).await?;
                    s.gate.delete_profile_entry(holder, &c.actor, item, &ctx).await?
                }
                other => other?,
            }
        }
        Some(t) if t.is_profile() => {
            // The entry must be of this type (no deleting a Condition through /AllergyIntolerance).
            profile_by_id(&f, holder, item, t).await?;
            s.gate.delete_profile_entry(holder, &c.actor, item, &ctx).await?
        }
        _ => {
            return Err(FhirError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "not-supported",
                format!("delete is not supported for {rtype}"),
            ));
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
