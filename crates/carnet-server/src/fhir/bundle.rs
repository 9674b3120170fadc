//! `batch` and `transaction` Bundles (a transaction: one patient, all or nothing).

#[allow(unused_imports)]
use super::*;

/// A `transaction` Bundle for one patient (IO-2) — creations of Observations (measurements),
/// DocumentReferences (with their content inline) and profile resources (Condition,
/// AllergyIntolerance, MedicationStatement, Immunization, Procedure), updates and deletions of
/// the profile resources — all or nothing: every entry is checked and decided first, one
/// refusal or error refuses the whole Bundle with nothing written, then the documents'
/// contents go to the blob store and every row commits at once. Reads are refused in a
/// transaction (use a batch).
pub(super) async fn transaction(f: &Fhir<'_>, v: &Value) -> Result<Response, FhirError> {
    let (s, c, base) = (f.s, f.c, f.base.as_str());
    use carnet_store::profile::ProfileOp;
    #[derive(Clone, Copy)]
    enum Slot {
        Measure(usize),
        Profile(usize),
        Document(usize),
    }
    let entries = v["entry"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() || entries.len() > 500 {
        return Err(FhirError::invalid("a transaction holds 1 to 500 entries"));
    }
    let mut holder: Option<HolderId> = None;
    let mut same_patient = |h: HolderId| -> Result<(), FhirError> {
        if holder.is_some_and(|x| x != h) {
            return Err(FhirError::unprocessable("a transaction concerns one patient"));
        }
        holder = Some(h);
        Ok(())
    };
    let mut ops = Vec::new();
    let mut measures = Vec::new();
    let mut documents = Vec::new();
    // Where each entry's result goes (index in its list).
    let mut order: Vec<(Slot, &'static str)> = Vec::new();
    const TYPES: &str = "Observation, DocumentReference (create), Condition, AllergyIntolerance, \
                         MedicationStatement, Immunization or Procedure";
    for (i, e) in entries.iter().enumerate() {
        let r = &e["resource"];
        let method = e["request"]["method"].as_str().unwrap_or("");
        let url = e["request"]["url"].as_str().unwrap_or("");
        let (rt, target) = url.split_once('/').map_or((url, None), |(t, id)| (t, Some(id)));
        // CA-3: an app's scopes cover every entry, or nothing happens.
        let conditional = e["request"]["ifNoneExist"].is_string();
        c.scope_allows(
            method,
            url.split('?').next().unwrap_or(""),
            url.split_once('?').map(|x| x.1),
            conditional,
        )
        .map_err(|e| FhirError {
            diagnostics: format!("entry[{i}]: {}", e.diagnostics),
            ..e
        })?;
        let rtype = ResourceType::parse(rt);
        let writable = rtype.is_some_and(ResourceType::is_writable_profile);
        match (method, target) {
            ("POST", None) if rt == r["resourceType"].as_str().unwrap_or("") => {
                let subject = r["subject"]["reference"]
                    .as_str()
                    .or_else(|| r["patient"]["reference"].as_str())
                    .and_then(|x| x.strip_prefix("Patient/"))
                    .and_then(|h| h.parse::<HolderId>().ok())
                    .or(c.home())
                    .ok_or_else(|| FhirError::invalid(format!("entry[{i}]: subject Patient/ID required")))?;
                same_patient(subject)?;
                if rtype == Some(ResourceType::Observation) {
                    measures.push(measurement_of(r, &format!("entry[{i}].Observation"))?);
                    order.push((Slot::Measure(measures.len() - 1), "201 Created"));
                } else if rtype == Some(ResourceType::DocumentReference) {
                    documents.push(document_input(
                        c,
                        r,
                        subject,
                        &format!("entry[{i}].DocumentReference"),
                    )?);
                    order.push((Slot::Document(documents.len() - 1), "201 Created"));
                } else if writable {
                    let e = r::entry_from_resource(r)
                        .map_err(|m| FhirError::unprocessable(format!("entry[{i}]: {m}")))?;
                    ops.push(ProfileOp::Create(e));
                    order.push((Slot::Profile(ops.len() - 1), "201 Created"));
                } else {
                    return Err(FhirError::unprocessable(format!(
                        "entry[{i}]: a transaction writes {TYPES}"
                    )));
                }
            }
            ("PUT" | "DELETE", Some(id)) if writable => {
                let (h, item) = split_id(id)
                    .ok_or_else(|| FhirError::unprocessable(format!("entry[{i}]: unknown {url}")))?;
                same_patient(h)?;
                if method == "PUT" {
                    if r["resourceType"] != rt || r["id"].as_str().is_some_and(|x| x != id) {
                        return Err(FhirError::unprocessable(format!(
                            "entry[{i}]: the resource must be the {url} it replaces"
                        )));
                    }
                    let version = match e["request"]["ifMatch"].as_str() {
                        Some(m) => Some(
                            m.trim_start_matches("W/")
                                .trim_matches('"')
                                .parse::<i64>()
                                .map_err(|_| {
                                    FhirError::invalid(format!(
                                        "entry[{i}].request.ifMatch: W/\"<version>\" expected"
                                    ))
                                })?,
                        ),
                        None => None,
                    };
                    let input = r::entry_from_resource(r)
                        .map_err(|m| FhirError::unprocessable(format!("entry[{i}]: {m}")))?;
                    ops.push(ProfileOp::Update {
                        id: item,
                        version,
                        input,
                    });
                    order.push((Slot::Profile(ops.len() - 1), "200 OK"));
                } else {
                    ops.push(ProfileOp::Delete { id: item });
                    order.push((Slot::Profile(ops.len() - 1), "204 No Content"));
                }
            }
            _ => {
                return Err(FhirError::unprocessable(format!(
                    "entry[{i}]: a transaction holds POST creations of {TYPES}, and PUT or DELETE of the profile resources"
                )));
            }
        }
    }
    let holder = holder.ok_or_else(|| FhirError::invalid("empty transaction"))?;
    let writes = carnet_store::profile::TransactionWrites {
        ops,
        measurements: measures,
        documents,
    };
    let done = s
        .gate
        .profile_transaction(holder, &c.actor, writes, &c.name, &Context::default())
        .await?;
    let out: Vec<Value> = order
        .into_iter()
        .map(|(slot, status)| {
            let res = match slot {
                Slot::Measure(i) => done
                    .points
                    .get(i)
                    .map(|p| r::observation(holder, p.id, &p.measurement, &p.author)),
                Slot::Profile(i) => done
                    .entries
                    .get(i)
                    .and_then(|e| e.as_ref())
                    .map(|e| entry_resource(holder, e)),
                Slot::Document(i) => done.documents.get(i).map(|d| {
                    r::document_reference(
                        base,
                        holder,
                        *d.id.as_uuid(),
                        *d.set_id.as_uuid(),
                        d.status,
                        &d.meta,
                    )
                }),
            };
            match res {
                Some(res) => {
                    let loc = format!(
                        "{}/{}",
                        res["resourceType"].as_str().unwrap_or(""),
                        res["id"].as_str().unwrap_or("")
                    );
                    json!({ "resource": res, "response": { "status": status, "location": loc } })
                }
                None => json!({ "response": { "status": status } }),
            }
        })
        .collect();
    let v = json!({ "resourceType": "Bundle", "type": "transaction-response", "entry": out });
    Ok(respond(StatusCode::OK, &v, false))
}

/// `POST /fhir` with a `batch` Bundle: each entry (GET read or search, POST create, DELETE) is
/// run on its own, through the same handlers and the gate, and answered in a `batch-response`
/// in the same order. `transaction` Bundles: see [`transaction`].
pub(super) async fn batch(
    State(s): State<AppState>,
    c: FhirCaller,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, FhirError> {
    const MAX_ENTRIES: usize = 500;
    let v: Value = serde_json::from_slice(&body).map_err(|e| FhirError::invalid(format!("not JSON: {e}")))?;
    if v["resourceType"] != "Bundle" {
        return Err(FhirError::invalid("resourceType: Bundle expected"));
    }
    match v["type"].as_str() {
        Some("batch") => {}
        Some("transaction") => return transaction(&Fhir::new(&s, &c, &headers), &v).await,
        _ => return Err(FhirError::invalid("Bundle.type: batch expected")),
    }
    let entries = v["entry"].as_array().cloned().unwrap_or_default();
    if entries.len() > MAX_ENTRIES {
        return Err(FhirError::invalid(format!(
            "at most {MAX_ENTRIES} entries per batch"
        )));
    }
    let mut out = Vec::with_capacity(entries.len());
    for (i, e) in entries.iter().enumerate() {
        let method = e["request"]["method"].as_str().unwrap_or("");
        let url = e["request"]["url"].as_str().unwrap_or("").trim_start_matches('/');
        let (path, query) = match url.split_once('?') {
            Some((p, q)) => (p, Some(q.to_string())),
            None => (url, None),
        };
        let parts: Vec<&str> = path.split('/').collect();
        // CA-3: an app's scopes, entry by entry.
        let refused = c.scope_allows(
            method,
            path,
            query.as_deref(),
            e["request"]["ifNoneExist"].is_string(),
        );
        let resp = match (method, parts.as_slice()) {
            _ if refused.is_err() => refused.map(|()| StatusCode::OK.into_response()),
            ("GET", [t]) => {
                search(
                    State(s.clone()),
                    c.clone(),
                    Path(t.to_string()),
                    RawQuery(query),
                    headers.clone(),
                )
                .await
            }
            ("GET", [t, id]) => {
                read(
                    State(s.clone()),
                    c.clone(),
                    Path((t.to_string(), id.to_string())),
                    RawQuery(query),
                    headers.clone(),
                )
                .await
            }
            ("POST", [t]) => {
                let body = axum::body::Bytes::from(e["resource"].to_string());
                create(
                    State(s.clone()),
                    c.clone(),
                    Path(t.to_string()),
                    headers.clone(),
                    body,
                )
                .await
            }
            ("DELETE", [t, id]) => {
                remove(
                    State(s.clone()),
                    c.clone(),
                    Path((t.to_string(), id.to_string())),
                    headers.clone(),
                )
                .await
            }
            _ => Err(FhirError::invalid(format!(
                "entry[{i}].request: {method} {url} is not supported in a batch"
            ))),
        };
        let resp = resp.unwrap_or_else(IntoResponse::into_response);
        let status = resp.status();
        let location = resp
            .headers()
            .get(header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .map(str::to_string);
        let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024 * 1024)
            .await
            .map_err(|_| {
                FhirError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    "batch entry body".into(),
                )
            })?;
        let body: Value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        let mut response = json!({ "status": format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")).trim().to_string() });
        if let Some(l) = location {
            response["location"] = json!(l);
        }
        let mut entry = json!({ "response": response });
        if body["resourceType"] == "OperationOutcome" {
            entry["response"]["outcome"] = body;
        } else if !body.is_null() {
            entry["resource"] = body;
        }
        out.push(entry);
    }
    let v = json!({ "resourceType": "Bundle", "type": "batch-response", "entry": out });
    Ok(respond(StatusCode::OK, &v, false))
}
