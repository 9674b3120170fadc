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
        /// IHE MHD: a Binary carrying a document's content (index in `binary_urls`).
        Binary(usize),
        /// IHE MHD: the SubmissionSet (a List), not kept as a resource of its own.
        SubmissionSet,
    }
    let entries = v["entry"].as_array().cloned().unwrap_or_default();
    if entries.is_empty() || entries.len() > 500 {
        return Err(FhirError::invalid("a transaction holds 1 to 500 entries"));
    }
    let mhd = Mhd::of(&entries)?;
    let mut binary_urls: Vec<String> = Vec::new();
    // A Binary's fullUrl → the document its content went into (index in `documents`).
    let mut binary_doc: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    let mut document_urls: Vec<String> = Vec::new();
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
        // CA-3: an app's scopes cover every entry, or nothing happens (an MHD Binary or
        // SubmissionSet is part of depositing the DocumentReference it comes with).
        let conditional = e["request"]["ifNoneExist"].is_string();
        let scoped = match rt {
            "Binary" | "List" if method == "POST" => "DocumentReference",
            _ => url.split('?').next().unwrap_or(""),
        };
        c.scope_allows(method, scoped, url.split_once('?').map(|x| x.1), conditional)
            .map_err(|e| FhirError {
                diagnostics: format!("entry[{i}]: {}", e.diagnostics),
                ..e
            })?;
        let rtype = ResourceType::parse(rt);
        let writable = rtype.is_some_and(ResourceType::is_writable_profile);
        match (method, target) {
            ("POST", None) if rt == "Binary" && r["resourceType"] == "Binary" => {
                let full = e["fullUrl"].as_str().unwrap_or("").to_string();
                binary_urls.push(full);
                order.push((Slot::Binary(binary_urls.len() - 1), "201 Created"));
            }
            ("POST", None) if rt == r["resourceType"].as_str().unwrap_or("") => {
                let subject = r["subject"]["reference"]
                    .as_str()
                    .or_else(|| r["patient"]["reference"].as_str())
                    .and_then(holder_of_reference)
                    .or(c.home())
                    .ok_or_else(|| FhirError::invalid(format!("entry[{i}]: subject Patient/ID required")))?;
                same_patient(subject)?;
                if rt == "List" {
                    // Checked by `Mhd::of`: the one SubmissionSet of the bundle.
                    order.push((Slot::SubmissionSet, "201 Created"));
                } else if rtype == Some(ResourceType::Observation) {
                    measures.push(measurement_of(r, &format!("entry[{i}].Observation"))?);
                    order.push((Slot::Measure(measures.len() - 1), "201 Created"));
                } else if rtype == Some(ResourceType::DocumentReference) {
                    let at = format!("entry[{i}].DocumentReference");
                    // IHE MHD: the content is the Binary the attachment's url names.
                    let (resolved, binary) = mhd.with_content(r, &at)?;
                    let mut w = document_input(c, resolved.as_ref().unwrap_or(r), subject, &at)?;
                    w.new.xds.submission_set = mhd.submission_set.clone();
                    documents.push(w);
                    if let Some(url) = binary
                        && binary_doc.insert(url.clone(), documents.len() - 1).is_some()
                    {
                        return Err(FhirError::unprocessable(format!(
                            "{at}: the Binary {url} is the content of another DocumentReference"
                        )));
                    }
                    document_urls.push(e["fullUrl"].as_str().unwrap_or("").to_string());
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
    mhd.check_complete(&binary_urls, &binary_doc, &document_urls)?;
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
                Slot::Binary(b) => {
                    // The Binary is read at the document's id (ITI-68 retrieves it there).
                    let doc = binary_urls
                        .get(b)
                        .and_then(|u| binary_doc.get(u))
                        .and_then(|i| done.documents.get(*i));
                    return match doc {
                        Some(d) => json!({ "response": { "status": status, "location":
                            format!("Binary/{}", r::item_id(holder, *d.id.as_uuid())) } }),
                        None => json!({ "response": { "status": status } }),
                    };
                }
                Slot::SubmissionSet => None,
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

/// What an IHE MHD Provide Document Bundle (ITI-65) adds to a transaction: `Binary` entries
/// carrying the documents' content (a DocumentReference's `attachment.url` names one by its
/// `fullUrl`), and one `List` SubmissionSet listing every DocumentReference, whose `uniqueId`
/// is kept with each document. Without them, a transaction is what it was.
struct Mhd<'a> {
    /// Binary entries by fullUrl: (entry index, resource).
    binaries: std::collections::HashMap<&'a str, (usize, &'a Value)>,
    /// The SubmissionSet's items (DocumentReference fullUrls) and its entry index.
    listed: Option<(usize, Vec<String>)>,
    submission_set: Option<String>,
}

impl<'a> Mhd<'a> {
    fn of(entries: &'a [Value]) -> Result<Self, FhirError> {
        let mut m = Mhd {
            binaries: Default::default(),
            listed: None,
            submission_set: None,
        };
        for (i, e) in entries.iter().enumerate() {
            let r = &e["resource"];
            match r["resourceType"].as_str() {
                Some("Binary") => {
                    let full = e["fullUrl"].as_str().filter(|u| !u.is_empty()).ok_or_else(|| {
                        FhirError::unprocessable(format!(
                            "entry[{i}].fullUrl: a Binary is named by its fullUrl"
                        ))
                    })?;
                    if r["contentType"].as_str().is_none() || r["data"].as_str().is_none() {
                        return Err(FhirError::unprocessable(format!(
                            "entry[{i}].Binary: contentType and data (base64) are required"
                        )));
                    }
                    if m.binaries.insert(full, (i, r)).is_some() {
                        return Err(FhirError::unprocessable(format!(
                            "entry[{i}].fullUrl: {full} twice"
                        )));
                    }
                }
                Some("List") => {
                    let is_submission = r["code"]["coding"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .any(|c| c["code"] == "submissionset");
                    if !is_submission {
                        return Err(FhirError::unprocessable(format!(
                            "entry[{i}].List: only an IHE MHD SubmissionSet (code 'submissionset') is accepted"
                        )));
                    }
                    if m.listed.is_some() {
                        return Err(FhirError::unprocessable(format!(
                            "entry[{i}]: one SubmissionSet per bundle"
                        )));
                    }
                    let ids = r["identifier"].as_array().cloned().unwrap_or_default();
                    let unique = ids
                        .iter()
                        .find(|x| x["use"] == "usual")
                        .or(ids.first())
                        .and_then(|x| x["value"].as_str())
                        .ok_or_else(|| {
                            FhirError::unprocessable(format!(
                                "entry[{i}].List.identifier: the SubmissionSet's uniqueId"
                            ))
                        })?;
                    let items = r["entry"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|x| x["item"]["reference"].as_str().unwrap_or("").to_string())
                        .collect();
                    m.submission_set = Some(unique.to_string());
                    m.listed = Some((i, items));
                }
                _ => {}
            }
        }
        if !m.binaries.is_empty() && m.listed.is_none() {
            return Err(FhirError::unprocessable(
                "Binary entries come in an IHE MHD bundle with its SubmissionSet (a List)",
            ));
        }
        Ok(m)
    }

    /// The DocumentReference `r` with its content taken from the Binary its attachment's url
    /// names (a copy), and that url; `(None, None)` when the content is inline.
    fn with_content(&self, r: &Value, at: &str) -> Result<(Option<Value>, Option<String>), FhirError> {
        let att = &r["content"][0]["attachment"];
        let Some(url) = att["url"].as_str().filter(|_| att["data"].is_null()) else {
            return Ok((None, None));
        };
        let Some((_, binary)) = self.binaries.get(url) else {
            return Err(FhirError::unprocessable(format!(
                "{at}.content[0].attachment.url: {url} is not a Binary of this bundle"
            )));
        };
        if let (Some(declared), Some(sent)) = (att["contentType"].as_str(), binary["contentType"].as_str())
            && declared != sent
        {
            return Err(FhirError::unprocessable(format!(
                "{at}.content[0].attachment.contentType: {declared}, but the Binary is {sent}"
            )));
        }
        let mut copy = r.clone();
        copy["content"][0]["attachment"]["data"] = binary["data"].clone();
        copy["content"][0]["attachment"]["contentType"] = binary["contentType"].clone();
        Ok((Some(copy), Some(url.to_string())))
    }

    /// Every Binary is some DocumentReference's content; the SubmissionSet lists exactly the
    /// bundle's DocumentReferences.
    fn check_complete(
        &self,
        binary_urls: &[String],
        binary_doc: &std::collections::HashMap<String, usize>,
        document_urls: &[String],
    ) -> Result<(), FhirError> {
        for url in binary_urls {
            if !binary_doc.contains_key(url) {
                let i = self.binaries.get(url.as_str()).map_or(0, |b| b.0);
                return Err(FhirError::unprocessable(format!(
                    "entry[{i}]: no DocumentReference of this bundle has the Binary {url} as content"
                )));
            }
        }
        if let Some((i, items)) = &self.listed {
            let mut listed: Vec<&str> = items.iter().map(String::as_str).collect();
            let mut sent: Vec<&str> = document_urls.iter().map(String::as_str).collect();
            listed.sort_unstable();
            sent.sort_unstable();
            if listed != sent || sent.is_empty() {
                return Err(FhirError::unprocessable(format!(
                    "entry[{i}].List.entry: the SubmissionSet lists every DocumentReference of the bundle by its fullUrl, and nothing else"
                )));
            }
        }
        Ok(())
    }
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
