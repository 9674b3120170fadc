//! Search parameters: parsing, dates, sorting, `_lastUpdated`, `_summary`, `_elements`, paging.

#[allow(unused_imports)]
use super::*;

/// Query parameters, repeated ones kept in order.
pub(super) struct Params(pub(super) BTreeMap<String, Vec<String>>);

impl Params {
    pub(super) fn parse(raw: Option<String>) -> Result<Self, FhirError> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            m.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        if let Some(f) = m.get("_format").and_then(|v| v.first())
            && !matches!(f.as_str(), "json" | "application/json" | "application/fhir+json")
        {
            return Err(FhirError::new(
                StatusCode::NOT_ACCEPTABLE,
                "not-supported",
                format!("_format {f}: only JSON is served"),
            ));
        }
        Ok(Params(m))
    }
    pub(super) fn one(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.first()).map(String::as_str)
    }
    pub(super) fn pretty(&self) -> bool {
        self.one("_pretty") == Some("true")
    }
    /// Parameters every search supports.
    pub(super) const COMMON: [&'static str; 8] = [
        "_revinclude",
        "_format",
        "_pretty",
        "_count",
        "_page",
        "_summary",
        "_include",
        "_elements",
    ];

    /// The parameters a search of `rtype` supports: the others are dropped (the FHIR default,
    /// lenient handling), or refused with `strict` (`Prefer: handling=strict`).
    pub(super) fn supported_by(mut self, rtype: ResourceType, strict: bool) -> Result<Self, FhirError> {
        let names = rtype.search_names();
        if strict || names.is_empty() {
            if !names.is_empty() {
                self.only(&names)?;
            }
            return Ok(self);
        }
        self.0
            .retain(|k, _| names.contains(&k.as_str()) || Self::COMMON.contains(&k.as_str()));
        Ok(self)
    }

    /// Refuses parameters this search does not support (strict handling: no silent ignore).
    pub(super) fn only(&self, allowed: &[&str]) -> Result<(), FhirError> {
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) && !Self::COMMON.contains(&k.as_str()) {
                return Err(FhirError::invalid(format!(
                    "search parameter '{k}' is not supported here (supported: {})",
                    allowed.join(", ")
                )));
            }
        }
        Ok(())
    }
}

/// The space a search is about: `patient` / `subject` (`Patient/ID` or `ID`); a holder-side
/// caller may omit it (their own space).
pub(super) fn patient_of(p: &Params, c: &FhirCaller) -> Result<HolderId, FhirError> {
    let given = p.one("patient").or_else(|| p.one("subject"));
    match (given, c.home()) {
        (Some(v), _) => v
            .trim_start_matches("Patient/")
            .parse()
            .map_err(|_| FhirError::invalid("patient: a Patient id is expected")),
        (None, Some(h)) => Ok(h),
        (None, None) => Err(FhirError::invalid(
            "patient: required (searches are patient-scoped)",
        )),
    }
}

/// `date`-style parameters: `ge2025-01-01`, `lt2025-02`, `2025-01-01` (that day).
pub(super) fn date_range(values: Option<&Vec<String>>) -> Result<Option<(Timestamp, Timestamp)>, FhirError> {
    let Some(values) = values else { return Ok(None) };
    let (mut lo, mut hi) = (i64::MIN, i64::MAX);
    for v in values {
        let (prefix, d) = match v.get(..2) {
            Some(p @ ("ge" | "gt" | "le" | "lt" | "eq")) => (p, &v[2..]),
            _ => ("eq", v.as_str()),
        };
        let start =
            parse_instant(d).ok_or_else(|| FhirError::invalid(format!("date: '{v}' is not a date")))?;
        let end = next_unit(d, start);
        match prefix {
            "ge" => lo = lo.max(start),
            "gt" => lo = lo.max(end),
            "le" => hi = hi.min(end),
            "lt" => hi = hi.min(start),
            _ => {
                lo = lo.max(start);
                hi = hi.min(end);
            }
        }
    }
    Ok(Some((Timestamp::from_micros(lo), Timestamp::from_micros(hi))))
}

pub(super) fn parse_instant(d: &str) -> Option<i64> {
    let full = match d.len() {
        4 => format!("{d}-01-01T00:00:00Z"),
        7 => format!("{d}-01T00:00:00Z"),
        10 => format!("{d}T00:00:00Z"),
        _ => d.to_string(),
    };
    time::OffsetDateTime::parse(&full, &time::format_description::well_known::Rfc3339)
        .ok()
        .map(|t| Timestamp::from_offset_date_time(t).as_micros())
}

/// The end of the period a partial date names (a year, a month, a day; an instant: itself).
pub(super) fn next_unit(d: &str, start: i64) -> i64 {
    const DAY: i64 = 86_400_000_000;
    match d.len() {
        4 => parse_instant(&format!("{}", d.parse::<i32>().unwrap_or(0) + 1)).unwrap_or(i64::MAX),
        7 => {
            let (y, m) = (
                d[..4].parse::<i32>().unwrap_or(0),
                d[5..].parse::<u32>().unwrap_or(1),
            );
            let (y, m) = if m == 12 { (y + 1, 1) } else { (y, m + 1) };
            parse_instant(&format!("{y:04}-{m:02}")).unwrap_or(i64::MAX)
        }
        10 => start + DAY,
        _ => start + 1,
    }
}

/// The instant a resource is about, for `_sort=date`: its clinical date, else its last update.
pub(super) fn date_of(r: &Value) -> String {
    ["effectiveDateTime", "date", "recordedDate", "recorded"]
        .iter()
        .find_map(|k| r[*k].as_str())
        .or_else(|| r["billablePeriod"]["start"].as_str())
        .or_else(|| r["meta"]["lastUpdated"].as_str())
        .unwrap_or("")
        .to_string()
}

/// `_sort`: `date` / `-date` and `_lastUpdated` / `-_lastUpdated` (stable; ties keep the store's
/// order). Applied after the gate's filtering, before paging.
pub(super) fn sort(p: &Params, rtype: &str, mut all: Vec<Value>) -> Result<Vec<Value>, FhirError> {
    let Some(spec) = p.one("_sort") else {
        return Ok(all);
    };
    let (desc, key) = match spec.strip_prefix('-') {
        Some(k) => (true, k),
        None => (false, spec),
    };
    let f: fn(&Value) -> String = match key {
        "date" => date_of,
        "_lastUpdated" => |r| r["meta"]["lastUpdated"].as_str().unwrap_or("").to_string(),
        other => {
            return Err(FhirError::invalid(format!(
                "_sort={other}: {rtype} sorts by date or _lastUpdated"
            )));
        }
    };
    all.sort_by_key(f);
    if desc {
        all.reverse();
    }
    Ok(all)
}

/// `_lastUpdated` with prefixes, on `meta.lastUpdated`.
pub(super) fn last_updated(p: &Params, all: Vec<Value>) -> Result<Vec<Value>, FhirError> {
    let Some((lo, hi)) = date_range(p.0.get("_lastUpdated"))? else {
        return Ok(all);
    };
    Ok(all
        .into_iter()
        .filter(|r| {
            r["meta"]["lastUpdated"]
                .as_str()
                .and_then(parse_instant)
                .is_some_and(|t| t >= lo.as_micros() && t < hi.as_micros())
        })
        .collect())
}

/// `_summary`: `count` (the total only) or `false` (everything, the default).
pub(super) fn summary_count(p: &Params) -> Result<bool, FhirError> {
    match p.one("_summary") {
        None | Some("false") => Ok(false),
        Some("count") => Ok(true),
        Some(other) => Err(FhirError::invalid(format!(
            "_summary={other}: only count and false are supported"
        ))),
    }
}

/// `_elements`: keeps the listed top-level elements (plus `resourceType`, `id`, `meta`) and
/// marks each resource SUBSETTED, as FHIR asks.
pub(super) fn elements(p: &Params, all: Vec<Value>) -> Result<Vec<Value>, FhirError> {
    let Some(list) = p.one("_elements") else {
        return Ok(all);
    };
    let keep: Vec<&str> = list.split(',').map(str::trim).filter(|e| !e.is_empty()).collect();
    if keep
        .iter()
        .any(|e| !e.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'))
    {
        return Err(FhirError::invalid(
            "_elements: a comma-separated list of element names",
        ));
    }
    Ok(all
        .into_iter()
        .map(|mut r| {
            if let Some(m) = r.as_object_mut() {
                m.retain(|k, _| {
                    ["resourceType", "id", "meta"].contains(&k.as_str()) || keep.contains(&k.as_str())
                });
                let meta = m.entry("meta").or_insert_with(|| json!({}));
                meta["tag"] = json!([{
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                    "code": "SUBSETTED",
                }]);
            }
            r
        })
        .collect())
}

/// The page asked for by `_count` (default 50, at most 200) and `_page`, of `total` results:
/// its size, number and first index.
pub(super) fn page_bounds(p: &Params, total: usize) -> Result<(usize, usize, usize), FhirError> {
    let count: usize = p
        .one("_count")
        .map(|c| c.parse().map_err(|_| FhirError::invalid("_count: a number")))
        .transpose()?
        .unwrap_or(50)
        .clamp(1, 200);
    let page_no: usize = p
        .one("_page")
        .map(|c| c.parse().map_err(|_| FhirError::invalid("_page: a number")))
        .transpose()?
        .unwrap_or(0);
    Ok((count, page_no, page_no.saturating_mul(count).min(total)))
}

/// Pages a filtered result: `_count` (default 50, at most 200) and `_page`; `_elements` is
/// applied to the page's resources. Gives the Bundle's JSON text: written straight to text
/// (`SearchsetWriter`, documents by `document_reference_json`) unless `_elements` or
/// `_pretty` ask for the `Value` tree; both give the same bytes when compact.
pub(super) fn page(
    p: &Params,
    base: &str,
    path: &str,
    all: Vec<Hit>,
    included: Vec<Value>,
) -> Result<String, FhirError> {
    let total = all.len();
    let (count, page_no, start) = page_bounds(p, total)?;
    // Links repeat the caller's own parameters, nothing else.
    let mut q: Vec<(String, String)> = Vec::new();
    for (k, vs) in &p.0 {
        if k != "_page" {
            for v in vs {
                q.push((k.clone(), v.clone()));
            }
        }
    }
    let link = |n: usize| {
        let mut s = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &q {
            s.append_pair(k, v);
        }
        s.append_pair("_page", &n.to_string());
        format!("{base}/{path}?{}", s.finish())
    };
    let next = (start + count < total).then(|| link(page_no + 1));
    let hits = all.into_iter().skip(start).take(count);
    if p.one("_elements").is_none() && !p.pretty() {
        let mut w = r::SearchsetWriter::new(base, &link(page_no), next.as_deref(), total);
        let mut any = false;
        for hit in hits {
            any = true;
            hit.write_entry(&mut w);
        }
        if any {
            for v in &included {
                w.value_entry(v, "include");
            }
        }
        return Ok(w.finish());
    }
    let items = elements(p, hits.filter_map(Hit::into_value).collect())?;
    let included = if items.is_empty() { Vec::new() } else { included };
    let v = r::searchset_with(base, &link(page_no), next.as_deref(), total, items, included);
    Ok(if p.pretty() {
        serde_json::to_string_pretty(&v).unwrap_or_default()
    } else {
        v.to_string()
    })
}
