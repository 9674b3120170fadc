//! Patient-scoped searches, filtered by the gate before counting and paging; a result is a
//! `Hit`, its FHIR JSON made only if it lands in the page asked for.

#[allow(unused_imports)]
use super::*;

/// A search result the gate let through: counted, and shown if it falls in the page asked.
/// A document's FHIR JSON is made only then, so a search over a long record maps one page of
/// DocumentReferences, not the whole record.
pub(super) enum Hit {
    Ready(Value),
    Document(Box<DocumentHit>),
}

pub(super) struct DocumentHit {
    base: Arc<str>,
    holder: HolderId,
    set: Arc<carnet_store::documents::DocumentSet>,
    index: usize,
}

impl Hit {
    /// As a searchset entry (`match`) written straight to text: the same bytes as
    /// `into_value` printed in the entry.
    pub(super) fn write_entry(&self, w: &mut r::SearchsetWriter) {
        match self {
            Hit::Ready(v) => w.value_entry(v, "match"),
            Hit::Document(d) => {
                if let Some(v) = d.set.get(d.index) {
                    w.document_entry(d.holder, *v.id.as_uuid(), *v.set_id.as_uuid(), v.status, v.meta);
                }
            }
        }
    }

    /// As a resource; `None` for a document not opened ([`open_hits`]) or changed since the
    /// gate decided on it.
    pub(super) fn into_value(self) -> Option<Value> {
        match self {
            Hit::Ready(v) => Some(v),
            Hit::Document(d) => d.set.get(d.index).map(|v| {
                r::document_reference(
                    &d.base,
                    d.holder,
                    *v.id.as_uuid(),
                    *v.set_id.as_uuid(),
                    v.status,
                    v.meta,
                )
            }),
        }
    }
}

/// Opens the documents among `hits` (their metadata is sealed; a search decides and counts
/// without it): only a page's, unless every resource is needed.
pub(super) async fn open_hits(hits: &[Hit]) -> Result<(), FhirError> {
    let mut sets: Vec<(&Arc<carnet_store::documents::DocumentSet>, Vec<usize>)> = Vec::new();
    for hit in hits {
        if let Hit::Document(d) = hit {
            match sets.iter_mut().find(|(s, _)| Arc::ptr_eq(s, &d.set)) {
                Some((_, indexes)) => indexes.push(d.index),
                None => sets.push((&d.set, vec![d.index])),
            }
        }
    }
    for (set, indexes) in sets {
        set.open(&indexes).await?;
    }
    Ok(())
}

/// Every hit as a resource (documents opened first).
pub(super) async fn hit_values(hits: Vec<Hit>) -> Result<Vec<Value>, FhirError> {
    open_hits(&hits).await?;
    Ok(hits.into_iter().filter_map(Hit::into_value).collect())
}

/// Every DocumentReference of `holder` the caller may see under `filter`, page after page
/// (the gate decides per document; a refused record is an empty list).
pub(super) async fn documents(
    f: &Fhir<'_>,
    holder: HolderId,
    filter: DocumentFilter,
) -> Result<Vec<Value>, FhirError> {
    hit_values(document_hits(f, holder, filter).await?).await
}

pub(super) async fn document_hits(
    f: &Fhir<'_>,
    holder: HolderId,
    filter: DocumentFilter,
) -> Result<Vec<Hit>, FhirError> {
    let (s, c) = (f.s, f.c);
    let set = match s
        .gate
        .document_set(holder, &c.actor, &filter, &Context::default())
        .await
    {
        Ok(set) => Arc::new(set),
        Err(StoreError::NotFound) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let base: Arc<str> = Arc::from(f.base.as_str());
    Ok((0..set.len())
        .map(|index| {
            Hit::Document(Box::new(DocumentHit {
                base: base.clone(),
                holder,
                set: set.clone(),
                index,
            }))
        })
        .collect())
}

/// The resources of type `rtype` that match `p`, as the caller may see them (every one read
/// through the gate; hidden ones never counted). Shared by searches, `_revinclude` and
/// conditional creates.
pub(super) async fn matching(f: &Fhir<'_>, rtype: ResourceType, p: &Params) -> Result<Vec<Value>, FhirError> {
    hit_values(matching_hits(f, rtype, p).await?).await
}

/// [`matching`], each resource's JSON made only when asked for.
pub(super) async fn matching_hits(
    f: &Fhir<'_>,
    rtype: ResourceType,
    p: &Params,
) -> Result<Vec<Hit>, FhirError> {
    let (s, c) = (f.s, f.c);
    let ctx = Context::default();
    if !rtype.search_params().is_empty() {
        p.only(&rtype.search_names())?;
    }
    let values = match rtype {
        ResourceType::Patient => {
            let holder = if let Some(idf) = p.one("identifier") {
                let ins = idf.rsplit('|').next().unwrap_or("");
                let ins = carnet_domain::Ins::parse(ins)
                    .map_err(|e| FhirError::invalid(format!("identifier: {e}")))?;
                s.store.find_by_ins(&ins).await?
            } else if let Some(id) = p.one("_id") {
                id.parse().ok()
            } else {
                c.home()
            };
            match holder {
                Some(h) => match patient(f, h).await {
                    Ok(v) => vec![v],
                    Err(FhirError {
                        status: StatusCode::NOT_FOUND,
                        ..
                    }) => Vec::new(),
                    Err(e) => return Err(e),
                },
                None => Vec::new(),
            }
        }
        ResourceType::DocumentReference => {
            // IHE MHD ITI-67 also names the patient by identifier (`patient.identifier=…|INS`):
            // the same lookup as `Patient?identifier=`; the gate then decides every document.
            let holder = match p.one("patient.identifier").filter(|_| p.one("patient").is_none()) {
                Some(idf) => {
                    let ins = carnet_domain::Ins::parse(idf.rsplit('|').next().unwrap_or(""))
                        .map_err(|e| FhirError::invalid(format!("patient.identifier: {e}")))?;
                    match s.store.find_by_ins(&ins).await? {
                        Some(h) => h,
                        None => return Ok(Vec::new()),
                    }
                }
                None => patient_of(p, c)?,
            };
            let class = p
                .one("category")
                .map(|v| {
                    carnet_domain::access::Category::parse(v.rsplit('|').next().unwrap_or(v))
                        .ok_or_else(|| FhirError::invalid(format!("category: unknown class '{v}'")))
                })
                .transpose()?;
            let period = date_range(p.0.get("date"))?;
            // IHE MHD ITI-67: `status` (current by default; superseded versions on request)
            // and `identifier` (the document's uniqueId, or its set's).
            let statuses: Vec<&str> = p
                .one("status")
                .map_or(vec!["current"], |v| v.split(',').collect());
            if let Some(bad) = statuses.iter().find(|x| !matches!(**x, "current" | "superseded")) {
                return Err(FhirError::invalid(format!(
                    "status: '{bad}' (a DocumentReference is current or superseded)"
                )));
            }
            let filter = DocumentFilter {
                class,
                type_code: p
                    .one("type")
                    .map(|t| t.rsplit('|').next().unwrap_or(t).to_string()),
                from: period.map(|x| x.0),
                to: period.map(|x| x.1),
                include_history: statuses.contains(&"superseded"),
                limit: 500,
                ..DocumentFilter::default()
            };
            let identifier = p.one("identifier").map(|v| v.rsplit('|').next().unwrap_or(v));
            let hits = document_hits(f, holder, filter).await?;
            if identifier.is_none() && statuses.contains(&"current") {
                return Ok(hits);
            }
            hit_values(hits)
                .await?
                .into_iter()
                .filter(|d| statuses.iter().any(|x| d["status"] == *x))
                .filter(|d| {
                    identifier.is_none_or(|id| {
                        d["masterIdentifier"]["value"] == id
                            || d["identifier"]
                                .as_array()
                                .is_some_and(|ids| ids.iter().any(|x| x["value"] == id))
                    })
                })
                .collect()
        }
        ResourceType::Observation => {
            let holder = patient_of(p, c)?;
            let period = date_range(p.0.get("date"))?;
            let codes: Vec<&str> = match p.one("code") {
                Some(v) => {
                    let code = v.rsplit('|').next().unwrap_or(v);
                    if carnet_domain::profile::measure(code).is_none() {
                        return Err(FhirError::invalid(format!(
                            "code: '{code}' is not a supported measure"
                        )));
                    }
                    vec![code]
                }
                None => MEASURES.iter().map(|m| m.loinc).collect(),
            };
            let mut out = Vec::new();
            for code in codes {
                match s
                    .gate
                    .measurements(holder, &c.actor, code, period, 10_000, &ctx)
                    .await
                {
                    Ok(pts) => out.extend(
                        pts.iter()
                            .rev()
                            .map(|pt| r::observation(holder, pt.id, &pt.measurement, &pt.author)),
                    ),
                    Err(StoreError::NotFound) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            out
        }
        ResourceType::AuditEvent => {
            let holder = patient_of(p, c)?;
            let period = date_range(p.0.get("date"))?;
            // AC-6: the traces are the holder's (and their representative's) to read, as
            // the gate shows them (MI-2, DM-6); anyone else finds no such space.
            let page = s
                .gate
                .history(holder, &c.actor, None, period, 1000)
                .await?
                .ok_or_else(FhirError::not_found)?;
            page.traces
                .iter()
                .map(|t| {
                    let actor = serde_json::to_value(&t.entry.actor).unwrap_or(Value::Null);
                    let reason = serde_json::to_value(t.entry.reason)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_string))
                        .unwrap_or_default();
                    let what = r::Audited {
                        action: t.entry.action,
                        item: &t.entry.item,
                        allowed: t.entry.allowed,
                        reason: &reason,
                        emergency: t.entry.emergency,
                    };
                    r::audit_event(holder, t.seq, t.at, &actor, what)
                })
                .collect()
        }
        ResourceType::Provenance => {
            // Who filed each document the caller may see, and when (IO-1).
            let holder = patient_of(p, c)?;
            documents(
                f,
                holder,
                DocumentFilter {
                    limit: 500,
                    ..DocumentFilter::default()
                },
            )
            .await?
            .iter()
            .map(carnet_fhir::exchange::provenance_of_document)
            .collect()
        }
        ResourceType::Communication => {
            let holder = patient_of(p, c)?;
            communications(f, holder).await?
        }
        ResourceType::Appointment => {
            let holder = patient_of(p, c)?;
            let period = date_range(p.0.get("date"))?;
            match s.gate.list_events(holder, &c.actor, &ctx).await {
                Ok(events) => events
                    .iter()
                    .filter(|e| period.is_none_or(|(from, to)| e.event.start >= from && e.event.start < to))
                    .map(|e| appointment_of(s, holder, e))
                    .collect(),
                Err(StoreError::NotFound) => Vec::new(),
                Err(e) => return Err(e.into()),
            }
        }
        ResourceType::ExplanationOfBenefit => {
            // RB-1: the category `reimbursements`, one gate decision for the space, before
            // anything is counted or paged; `date` is the date of care.
            let holder = patient_of(p, c)?;
            let period = date_range(p.0.get("date"))?;
            let filter = carnet_domain::reimbursement::Filter::default();
            match s.gate.list_reimbursements(holder, &c.actor, &filter, &ctx).await {
                Ok(lines) => lines
                    .iter()
                    .filter(|rb| {
                        period.is_none_or(|(lo, hi)| {
                            let day = Timestamp::from_offset_date_time(
                                rb.line.date_of_care.midnight().assume_utc(),
                            );
                            day >= lo && day < hi
                        })
                    })
                    .map(|rb| {
                        carnet_fhir::eob::explanation_of_benefit(holder, rb.id, &rb.line, rb.imported_at)
                    })
                    .collect(),
                Err(StoreError::NotFound) => Vec::new(),
                Err(e) => return Err(e.into()),
            }
        }
        t @ (ResourceType::Condition
        | ResourceType::AllergyIntolerance
        | ResourceType::MedicationStatement
        | ResourceType::Immunization
        | ResourceType::Procedure
        | ResourceType::FamilyMemberHistory
        | ResourceType::QuestionnaireResponse
        | ResourceType::RelatedPerson
        | ResourceType::Consent) => {
            let holder = patient_of(p, c)?;
            match profile_resources(f, holder, t).await {
                Ok(v) => v,
                Err(FhirError {
                    status: StatusCode::NOT_FOUND,
                    ..
                }) => Vec::new(),
                Err(e) => return Err(e),
            }
        }
        ResourceType::Binary | ResourceType::Practitioner | ResourceType::PractitionerRole => {
            return Err(FhirError::new(
                StatusCode::NOT_FOUND,
                "not-supported",
                format!("resource type {rtype} is not supported"),
            ));
        }
    };
    Ok(values.into_iter().map(Hit::Ready).collect())
}

/// `Prefer: handling=strict` (FHIR search, 3.2.1.5.2): unknown parameters are refused rather
/// than ignored.
fn strict_handling(headers: &HeaderMap) -> bool {
    headers.get_all("prefer").iter().any(|v| {
        v.to_str().is_ok_and(|v| {
            v.split([',', ';'])
                .any(|p| p.trim().eq_ignore_ascii_case("handling=strict"))
        })
    })
}

pub(super) async fn search(
    State(s): State<AppState>,
    c: FhirCaller,
    Path(rtype): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let rtype = ResourceType::of_path(&rtype)?;
    // FHIR search: what is not supported is ignored (and left out of the Bundle's links,
    // which show what was used), unless the client asked `Prefer: handling=strict`.
    let p = Params::parse(q)?.supported_by(rtype, strict_handling(&headers))?;
    let f = Fhir::new(&s, &c, &headers);
    if p.0.contains_key("_revinclude") && rtype != ResourceType::Patient {
        return Err(FhirError::invalid(
            "_revinclude is supported on Patient searches (e.g. Patient?_id=…&_revinclude=Observation:patient)",
        ));
    }
    let all = matching_hits(&f, rtype, &p).await?;
    // `_include` of the patient the results point to: added only if the caller may read it
    // (through the gate), never counted, never the only thing in a page.
    let mut included = Vec::new();
    if let Some(inc) = p.0.get("_include") {
        for v in inc {
            let (src, param) = v.split_once(':').unwrap_or((v.as_str(), ""));
            let refers = matches!(param, "patient" | "subject") && (src == rtype.as_str() || src == "*");
            if !refers || rtype == ResourceType::Patient {
                return Err(FhirError::invalid(format!(
                    "_include={v}: only {rtype}:patient (or :subject) is supported"
                )));
            }
        }
        let holder = patient_of(&p, &c)?;
        if !all.is_empty() {
            match patient(&f, holder).await {
                Ok(v) => included.push(v),
                Err(FhirError {
                    status: StatusCode::NOT_FOUND,
                    ..
                }) => {}
                Err(e) => return Err(e),
            }
        }
    }
    // `_revinclude` of what points to the patients found (Patient searches): each type searched
    // as the caller for that patient, so only what the gate lets them see comes back, never
    // counted, never the only thing in a page.
    if let Some(rev) = p.0.get("_revinclude") {
        for v in rev {
            let (src, param) = v.split_once(':').unwrap_or((v.as_str(), ""));
            let src = ResourceType::parse(src).filter(|t| ResourceType::REVINCLUDABLE.contains(t));
            let Some(src) = src.filter(|_| matches!(param, "patient" | "subject")) else {
                let names: Vec<&str> = ResourceType::REVINCLUDABLE.iter().map(|t| t.as_str()).collect();
                return Err(FhirError::invalid(format!(
                    "_revinclude={v}: supported are T:patient (or :subject) for T in {}",
                    names.join(", ")
                )));
            };
            for pat in &all {
                let Hit::Ready(pat) = pat else { continue };
                let Some(id) = pat["id"].as_str() else { continue };
                let mut q = BTreeMap::new();
                q.insert("patient".to_string(), vec![id.to_string()]);
                match matching(&f, src, &Params(q)).await {
                    Ok(found) => included.extend(found),
                    Err(FhirError {
                        status: StatusCode::NOT_FOUND,
                        ..
                    }) => {}
                    Err(e) => return Err(e),
                }
            }
        }
    }
    // Filtering and sorting on resource elements need every resource's JSON; otherwise only
    // the page's resources are made (in `page`).
    let all = if p.0.contains_key("_lastUpdated") || p.0.contains_key("_sort") {
        let all = hit_values(all).await?;
        let all = last_updated(&p, all)?;
        sort(&p, rtype.as_str(), all)?
            .into_iter()
            .map(Hit::Ready)
            .collect()
    } else {
        all
    };
    if summary_count(&p)? {
        let v = json!({ "resourceType": "Bundle", "type": "searchset", "total": all.len() });
        return Ok(respond(StatusCode::OK, &v, p.pretty()));
    }
    // Only the page's documents are opened.
    let (count, _, start) = page_bounds(&p, all.len())?;
    open_hits(&all[start..(start + count).min(all.len())]).await?;
    let body = page(&p, &f.base, rtype.as_str(), all, included)?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, FHIR_JSON)], body).into_response())
}
