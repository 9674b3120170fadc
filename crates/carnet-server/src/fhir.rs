//! The FHIR R4 endpoint (issue 6, IO-1), first slice: `/fhir/metadata`, reads and
//! patient-scoped searches of Patient, DocumentReference + Binary, Observation (measurements),
//! the profile's resources (Condition, AllergyIntolerance, MedicationStatement, Immunization,
//! Procedure, FamilyMemberHistory, QuestionnaireResponse, RelatedPerson, Consent), AuditEvent
//! (the holder's traces), ExplanationOfBenefit (reimbursements, RB-1), and creation of Observations. A view over the domain: every request
//! goes through the gate as the caller (bearer token of a professional's session, or a
//! holder's session), and every error is an `OperationOutcome` with its status. A resource
//! the caller may not see answers exactly like one that does not exist (404, AC-8), in reads,
//! searches and paging alike: results are filtered by the gate before counting and paging.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, RawQuery, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::access::{Actor, Context};
use carnet_domain::profile::{MEASURES, MeasurementInput};
use carnet_domain::{DocumentId, HolderId, Timestamp};
use carnet_fhir::resources::{self as r, item_id, split_id};
use carnet_store::StoreError;
use carnet_store::documents::DocumentFilter;
use serde_json::{Value, json};

use crate::AppState;
use crate::api::auth_cookie_session;

const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";

/// A FHIR error: status + OperationOutcome.
pub struct FhirError(StatusCode, &'static str, String);

impl FhirError {
    fn not_found() -> Self {
        FhirError(StatusCode::NOT_FOUND, "not-found", "no such resource".into())
    }
    fn invalid(msg: impl Into<String>) -> Self {
        FhirError(StatusCode::BAD_REQUEST, "invalid", msg.into())
    }
    fn unprocessable(msg: impl Into<String>) -> Self {
        FhirError(StatusCode::UNPROCESSABLE_ENTITY, "processing", msg.into())
    }
}

impl IntoResponse for FhirError {
    fn into_response(self) -> Response {
        let body = r::operation_outcome("error", self.1, &self.2);
        (self.0, [(header::CONTENT_TYPE, FHIR_JSON)], body.to_string()).into_response()
    }
}

impl From<StoreError> for FhirError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound => FhirError::not_found(),
            StoreError::Invalid(m) => FhirError::unprocessable(m),
            StoreError::Conflict => FhirError(
                StatusCode::CONFLICT,
                "conflict",
                "the resource changed meanwhile".into(),
            ),
            other => {
                tracing::error!(error = %other, "FHIR request failed");
                FhirError(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "exception",
                    "internal error".into(),
                )
            }
        }
    }
}

/// Who is calling: a professional (bearer token of a Pro Santé Connect session) or a holder /
/// representative (their session, as a bearer token or the cookie).
#[derive(Clone)]
pub struct FhirCaller {
    pub actor: Actor,
    /// Display name for what the caller writes (professionals).
    pub name: String,
    /// The space a holder-side caller acts in (None for professionals and apps).
    pub own: Option<HolderId>,
    /// An app (CA-3): the space it acts for and its granted SMART scopes, checked on every
    /// interaction before the gate is asked (the gate checks the grant's categories).
    pub app: Option<(HolderId, Vec<carnet_domain::catalogue::Scope>)>,
}

impl FhirCaller {
    /// The space a search is about when none is named: the holder's own, or an app's.
    pub fn home(&self) -> Option<HolderId> {
        self.own.or(self.app.as_ref().map(|(h, _)| *h))
    }

    /// CA-3: refuses what an app's scopes do not allow (403, `forbidden`); others pass.
    fn scope_allows(
        &self,
        method: &str,
        path: &str,
        query: Option<&str>,
        conditional: bool,
    ) -> Result<(), FhirError> {
        let Some((_, scopes)) = &self.app else {
            return Ok(());
        };
        let segments: Vec<&str> = path
            .trim_matches('/')
            .split('/')
            .filter(|x| !x.is_empty())
            .collect();
        match app_refusal(scopes, method, &segments, query, conditional) {
            None => Ok(()),
            Some(why) => Err(FhirError(StatusCode::FORBIDDEN, "forbidden", why)),
        }
    }
}

/// What an app's SMART scopes refuse of one interaction (`None`: allowed). `segments` are
/// the path after `/fhir`. A Bundle (`POST /fhir`) is checked entry by entry by its handler.
fn app_refusal(
    scopes: &[carnet_domain::catalogue::Scope],
    method: &str,
    segments: &[&str],
    query: Option<&str>,
    conditional: bool,
) -> Option<String> {
    let need = |t: &str, what: char| -> Option<String> {
        let r = carnet_domain::catalogue::rights_on(scopes, t);
        let ok = match what {
            'c' => r.create,
            'r' => r.read,
            'u' => r.update,
            'd' => r.delete,
            _ => r.search,
        };
        (!ok).then(|| {
            format!("insufficient scope: the app may not '{what}' {t} (SMART scopes granted by the holder)")
        })
    };
    let includes = || -> Option<String> {
        for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
            match k.as_ref() {
                "_include" => {
                    if let Some(why) = need("Patient", 'r') {
                        return Some(why);
                    }
                }
                "_revinclude" => {
                    let t = v.split(':').next().unwrap_or("");
                    if let Some(why) = need(t, 's') {
                        return Some(why);
                    }
                }
                _ => {}
            }
        }
        None
    };
    match (method, segments) {
        (_, []) | ("GET", ["metadata"]) => None,
        ("GET", [t]) => need(t, 's').or_else(includes),
        ("POST", [t]) => need(t, 'c').or_else(|| if conditional { need(t, 's') } else { None }),
        ("GET", [t, "_history"]) => need(t, 's'),
        ("GET", [t, _]) | ("GET", [t, _, "_history"]) | ("GET", [t, _, "_history", _]) => need(t, 'r'),
        ("PUT", [t, _]) => need(t, 'u'),
        ("DELETE", [t, _]) => need(t, 'd'),
        _ => Some("this operation is not available to apps".into()),
    }
}

impl FromRequestParts<AppState> for FhirCaller {
    type Rejection = FhirError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, FhirError> {
        let unauthorized = || {
            FhirError(
                StatusCode::UNAUTHORIZED,
                "login",
                "a bearer token is required".into(),
            )
        };
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::to_string);
        if let Some(t) = &bearer
            && let Some(p) = s.store.pro_session(t).await?
        {
            return Ok(FhirCaller {
                actor: p.actor(),
                name: format!("{} {}", p.given_name, p.family_name),
                own: None,
                app: None,
            });
        }
        // An establishment's system (SMART Backend Services token).
        if let Some(t) = &bearer
            && let Some(sys) = s.store.system_token(t).await?
        {
            return Ok(FhirCaller {
                actor: Actor::Establishment {
                    id: carnet_domain::access::OrganisationId(sys.finess),
                },
                name: sys.name,
                own: None,
                app: None,
            });
        }
        // A referenced app (CA-3): a live access token (service listed, space open, not
        // revoked), bound to one space, within its scopes.
        if let Some(t) = &bearer
            && let Some(tok) = s.store.live_app_token(t).await?
            && tok.kind == carnet_store::catalogue::TokenKind::Access
        {
            let caller = FhirCaller {
                actor: Actor::App {
                    id: carnet_domain::access::AppId(tok.client_id.clone()),
                    space: Some(tok.holder),
                    // Connected by someone other than the holder: a legal representative.
                    by_representative: tok.subject != tok.holder,
                },
                name: tok.client_id,
                own: None,
                app: Some((tok.holder, carnet_domain::catalogue::parse_scopes(&tok.scope))),
            };
            let path = parts.uri.path().strip_prefix("/fhir").unwrap_or("");
            let conditional = parts.headers.contains_key("if-none-exist");
            caller.scope_allows(parts.method.as_str(), path, parts.uri.query(), conditional)?;
            return Ok(caller);
        }
        let token = bearer
            .or_else(|| auth_cookie_session(&parts.headers))
            .ok_or_else(unauthorized)?;
        let session = crate::api::extract::live_session(s, &token)
            .await?
            .ok_or_else(unauthorized)?;
        Ok(FhirCaller {
            actor: crate::api::extract::session_actor(&session),
            name: String::new(),
            own: Some(session.acting_for),
            app: None,
        })
    }
}

fn respond(status: StatusCode, v: &Value, pretty: bool) -> Response {
    let body = if pretty {
        serde_json::to_string_pretty(v).unwrap_or_default()
    } else {
        v.to_string()
    };
    (status, [(header::CONTENT_TYPE, FHIR_JSON)], body).into_response()
}

/// Query parameters, repeated ones kept in order.
struct Params(BTreeMap<String, Vec<String>>);

impl Params {
    fn parse(raw: Option<String>) -> Result<Self, FhirError> {
        let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in url::form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            m.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        if let Some(f) = m.get("_format").and_then(|v| v.first())
            && !matches!(f.as_str(), "json" | "application/json" | "application/fhir+json")
        {
            return Err(FhirError(
                StatusCode::NOT_ACCEPTABLE,
                "not-supported",
                format!("_format {f}: only JSON is served"),
            ));
        }
        Ok(Params(m))
    }
    fn one(&self, k: &str) -> Option<&str> {
        self.0.get(k).and_then(|v| v.first()).map(String::as_str)
    }
    fn pretty(&self) -> bool {
        self.one("_pretty") == Some("true")
    }
    /// Refuses parameters this search does not support (strict handling: no silent ignore).
    fn only(&self, allowed: &[&str]) -> Result<(), FhirError> {
        const COMMON: [&str; 8] = [
            "_revinclude",
            "_format",
            "_pretty",
            "_count",
            "_page",
            "_summary",
            "_include",
            "_elements",
        ];
        for k in self.0.keys() {
            if !allowed.contains(&k.as_str()) && !COMMON.contains(&k.as_str()) {
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
fn patient_of(p: &Params, c: &FhirCaller) -> Result<HolderId, FhirError> {
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
fn date_range(values: Option<&Vec<String>>) -> Result<Option<(Timestamp, Timestamp)>, FhirError> {
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

fn parse_instant(d: &str) -> Option<i64> {
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
fn next_unit(d: &str, start: i64) -> i64 {
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
fn date_of(r: &Value) -> String {
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
fn sort(p: &Params, rtype: &str, mut all: Vec<Value>) -> Result<Vec<Value>, FhirError> {
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
fn last_updated(p: &Params, all: Vec<Value>) -> Result<Vec<Value>, FhirError> {
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
fn summary_count(p: &Params) -> Result<bool, FhirError> {
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
fn elements(p: &Params, all: Vec<Value>) -> Result<Vec<Value>, FhirError> {
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
fn page_bounds(p: &Params, total: usize) -> Result<(usize, usize, usize), FhirError> {
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
fn page(
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

/// This server's FHIR base (S-21: the configured origin, never one a request made up).
fn base_url(s: &AppState, headers: &HeaderMap) -> String {
    format!("{}/fhir", s.settings.origin_for(headers))
}

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/fhir", axum::routing::post(batch))
        // Clients that join the base and an empty path post to `/fhir/`.
        .route("/fhir/", axum::routing::post(batch))
        .route("/fhir/metadata", get(metadata))
        .route("/fhir/{rtype}", get(search).post(create))
        .route("/fhir/{rtype}/{id}", get(read).put(update).delete(remove))
        .route("/fhir/{rtype}/{id}/{op}", get(instance_op))
        .route("/fhir/{rtype}/{id}/_history/{vid}", get(vread))
}

/// What `_revinclude=T:patient` may bring along a Patient search.
const REVINCLUDABLE: [&str; 16] = [
    "DocumentReference",
    "Provenance",
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "MedicationStatement",
    "Immunization",
    "Procedure",
    "FamilyMemberHistory",
    "QuestionnaireResponse",
    "RelatedPerson",
    "Consent",
    "Communication",
    "Appointment",
    "ExplanationOfBenefit",
    "AuditEvent",
];

const PROFILE_TYPES: [&str; 9] = [
    "Condition",
    "AllergyIntolerance",
    "MedicationStatement",
    "Immunization",
    "Procedure",
    "FamilyMemberHistory",
    "QuestionnaireResponse",
    "RelatedPerson",
    "Consent",
];

async fn metadata(
    State(s): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let p = Params::parse(q)?;
    let iss = crate::oauth::issuer(&s, &headers);
    let search = |params: &[(&str, &str)]| -> Value {
        json!(
            params
                .iter()
                .map(|(n, t)| json!({"name": n, "type": t}))
                .collect::<Vec<_>>()
        )
    };
    let mut resources = vec![
        json!({"type": "Patient", "interaction": [{"code": "read"}], "searchParam": search(&[("identifier", "token")])}),
        json!({"type": "DocumentReference", "interaction": [{"code": "read"}, {"code": "search-type"}],
               "searchParam": search(&[("patient", "reference"), ("category", "token"), ("type", "token"), ("date", "date")])}),
        json!({"type": "Binary", "interaction": [{"code": "read"}]}),
        json!({"type": "Practitioner", "interaction": [{"code": "read"}]}),
        json!({"type": "PractitionerRole", "interaction": [{"code": "read"}]}),
        json!({"type": "Observation", "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}],
               "searchParam": search(&[("patient", "reference"), ("code", "token"), ("date", "date")])}),
        json!({"type": "AuditEvent", "interaction": [{"code": "search-type"}],
               "searchParam": search(&[("patient", "reference"), ("date", "date")])}),
        json!({"type": "Provenance", "interaction": [{"code": "read"}, {"code": "search-type"}],
               "searchParam": search(&[("patient", "reference")])}),
        json!({"type": "Communication", "interaction": [{"code": "read"}, {"code": "search-type"}],
               "searchParam": search(&[("patient", "reference")])}),
        json!({"type": "Appointment", "interaction": [{"code": "read"}, {"code": "search-type"}, {"code": "create"}],
               "searchParam": search(&[("patient", "reference"), ("date", "date")])}),
        json!({"type": "ExplanationOfBenefit", "interaction": [{"code": "read"}, {"code": "search-type"}],
               "documentation": "Reimbursements of the compulsory health insurance (last 24 months); date is the date of care.",
               "searchParam": search(&[("patient", "reference"), ("date", "date")])}),
    ];
    for t in PROFILE_TYPES {
        let mut interaction = vec![json!({"code": "read"}), json!({"code": "search-type"})];
        if [
            "Condition",
            "AllergyIntolerance",
            "MedicationStatement",
            "Immunization",
            "Procedure",
        ]
        .contains(&t)
        {
            interaction.push(json!({"code": "create"}));
            interaction.push(json!({"code": "update"}));
        }
        interaction.push(json!({"code": "delete"}));
        resources.push(json!({"type": t, "interaction": interaction,
                              "searchParam": search(&[("patient", "reference")])}));
    }
    for r in resources.iter_mut() {
        let is_patient = r["type"] == "Patient";
        let Some(list) = r["interaction"].as_array_mut() else {
            continue;
        };
        let creates = list.iter().any(|i| i["code"] == "create");
        let reads = list.iter().any(|i| i["code"] == "read");
        let searches = list.iter().any(|i| i["code"] == "search-type");
        if reads {
            list.push(json!({"code": "vread"}));
            list.push(json!({"code": "history-instance"}));
        }
        if searches && !is_patient {
            list.push(json!({"code": "history-type"}));
        }
        if creates {
            r["conditionalCreate"] = json!(true);
        }
    }
    resources[0]["searchRevInclude"] = json!(
        REVINCLUDABLE
            .iter()
            .map(|t| format!("{t}:patient"))
            .collect::<Vec<_>>()
    );
    resources[0]["operation"] = json!([
        {"name": "everything", "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything"},
        {"name": "summary", "definition": "http://hl7.org/fhir/uv/ips/OperationDefinition/summary"}
    ]);
    resources[1]["interaction"] = json!([{"code": "read"}, {"code": "vread"}, {"code": "history-instance"}, {"code": "history-type"}, {"code": "search-type"}, {"code": "create"}, {"code": "delete"}]);
    let v = json!({
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": s.store.now().to_rfc3339(),
        "kind": "instance",
        "software": { "name": "Carnet", "version": env!("CARGO_PKG_VERSION") },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json"],
        "rest": [{
            "mode": "server",
            "interaction": [{"code": "batch"}, {"code": "transaction"}],
            "documentation": "Every request is decided, traced and notified by Carnet's gate as the caller. Searches are patient-scoped; unsupported parameters are refused.",
            "security": {
                "extension": [{
                    "url": "http://fhir-registry.smarthealthit.org/StructureDefinition/oauth-uris",
                    "extension": [
                        {"url": "authorize", "valueUri": format!("{iss}/oauth/authorize")},
                        {"url": "token", "valueUri": format!("{iss}/oauth/token")},
                        {"url": "revoke", "valueUri": format!("{iss}/oauth/revoke")},
                        {"url": "introspect", "valueUri": format!("{iss}/oauth/introspect")},
                    ],
                }],
                "service": [{
                    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/restful-security-service", "code": "SMART-on-FHIR"}],
                    "text": "Bearer token: a referenced app's (SMART on FHIR, authorisation code + PKCE), an establishment's system (SMART Backend Services), a professional's or a holder's session",
                }],
            },
            "resource": resources,
        }],
    });
    Ok(respond(StatusCode::OK, &v, p.pretty()))
}

/// A resource by type and id, read through the gate as the caller.
async fn read_value(
    s: &AppState,
    c: &FhirCaller,
    rtype: &str,
    id: &str,
    headers: &HeaderMap,
) -> Result<Value, FhirError> {
    let ctx = Context::default();
    if rtype == "Patient" {
        let holder: HolderId = id.parse().map_err(|_| FhirError::not_found())?;
        return patient(s, c, holder).await;
    }
    if let Some(v) = directory_read(s, rtype, id).await? {
        return Ok(v);
    }
    let (holder, item) = split_id(id).ok_or_else(FhirError::not_found)?;
    let v = match rtype {
        "DocumentReference" => {
            let view = s
                .gate
                .read_document_metadata(holder, &c.actor, DocumentId::from_uuid(item), &ctx)
                .await?;
            r::document_reference(
                &base_url(s, headers),
                holder,
                *view.id.as_uuid(),
                *view.set_id.as_uuid(),
                view.status,
                &view.meta,
            )
        }
        "Binary" => {
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
        "Observation" => match s.gate.measurement(holder, &c.actor, item, &ctx).await {
            Ok(pt) => r::observation(holder, pt.id, &pt.measurement, &pt.author),
            Err(StoreError::NotFound) => profile_by_id(s, c, holder, item, "Observation").await?,
            Err(e) => return Err(e.into()),
        },
        t if PROFILE_TYPES.contains(&t) => profile_by_id(s, c, holder, item, t).await?,
        "Provenance" => {
            let doc = Box::pin(read_value(s, c, "DocumentReference", id, headers)).await?;
            carnet_fhir::exchange::provenance_of_document(&doc)
        }
        "Communication" => {
            let (conv, m) = s.gate.read_message(holder, &c.actor, item, &ctx).await?;
            communication_of(holder, &conv, &m)
        }
        "Appointment" => {
            let e = s.gate.read_event(holder, &c.actor, item, &ctx).await?;
            appointment_of(s, holder, &e)
        }
        "ExplanationOfBenefit" => {
            let rb = s.gate.reimbursement(holder, &c.actor, item, &ctx).await?;
            carnet_fhir::eob::explanation_of_benefit(holder, rb.id, &rb.line, rb.imported_at)
        }
        _ => return Err(FhirError::not_found()),
    };
    Ok(v)
}

async fn read(
    State(s): State<AppState>,
    c: FhirCaller,
    Path((rtype, id)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let p = Params::parse(q)?;
    if id == "_history" {
        return type_history(&s, &c, &rtype, &p, &headers).await;
    }
    // The hot path (IO-1): a DocumentReference written straight to JSON text (the same bytes
    // as `read_value`'s, `document_reference_json`'s test holds them equal).
    if rtype == "DocumentReference" && !p.pretty() {
        let (holder, item) = split_id(&id).ok_or_else(FhirError::not_found)?;
        let view = s
            .gate
            .read_document_metadata(holder, &c.actor, DocumentId::from_uuid(item), &Context::default())
            .await?;
        let body = r::document_reference_json(
            &base_url(&s, &headers),
            holder,
            *view.id.as_uuid(),
            *view.set_id.as_uuid(),
            view.status,
            &view.meta,
        );
        return Ok((StatusCode::OK, [(header::CONTENT_TYPE, FHIR_JSON)], body).into_response());
    }
    let v = read_value(&s, &c, &rtype, &id, &headers).await?;
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
async fn type_history(
    s: &AppState,
    c: &FhirCaller,
    rtype: &str,
    p: &Params,
    headers: &HeaderMap,
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
    let mut all: Vec<Value> = matching(s, c, rtype, &Params(q), headers)
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
    let base = base_url(s, headers);
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
async fn directory_read(s: &AppState, rtype: &str, id: &str) -> Result<Option<Value>, FhirError> {
    let found = |o: Option<Value>| o.map(Some).ok_or_else(FhirError::not_found);
    match rtype {
        "Practitioner" => found(
            s.store
                .professional(id)
                .await?
                .map(|p| r::practitioner(&p.rpps, &p.family_name, &p.given_name)),
        ),
        "PractitionerRole" => {
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

/// A search result the gate let through: counted, and shown if it falls in the page asked.
/// A document's FHIR JSON is made only then, so a search over a long record maps one page of
/// DocumentReferences, not the whole record.
enum Hit {
    Ready(Value),
    Document(Box<DocumentHit>),
}

struct DocumentHit {
    base: Arc<str>,
    holder: HolderId,
    set: Arc<carnet_store::documents::DocumentSet>,
    index: usize,
}

impl Hit {
    /// As a searchset entry (`match`) written straight to text: the same bytes as
    /// `into_value` printed in the entry.
    fn write_entry(&self, w: &mut r::SearchsetWriter) {
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
    fn into_value(self) -> Option<Value> {
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
async fn open_hits(hits: &[Hit]) -> Result<(), FhirError> {
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
async fn hit_values(hits: Vec<Hit>) -> Result<Vec<Value>, FhirError> {
    open_hits(&hits).await?;
    Ok(hits.into_iter().filter_map(Hit::into_value).collect())
}

/// Every DocumentReference of `holder` the caller may see under `filter`, page after page
/// (the gate decides per document; a refused record is an empty list).
async fn documents(
    s: &AppState,
    c: &FhirCaller,
    holder: HolderId,
    filter: DocumentFilter,
    base: &str,
) -> Result<Vec<Value>, FhirError> {
    hit_values(document_hits(s, c, holder, filter, base).await?).await
}

async fn document_hits(
    s: &AppState,
    c: &FhirCaller,
    holder: HolderId,
    filter: DocumentFilter,
    base: &str,
) -> Result<Vec<Hit>, FhirError> {
    let set = match s
        .gate
        .document_set(holder, &c.actor, &filter, &Context::default())
        .await
    {
        Ok(set) => Arc::new(set),
        Err(StoreError::NotFound) => return Ok(Vec::new()),
        Err(e) => return Err(e.into()),
    };
    let base: Arc<str> = Arc::from(base);
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

/// A measurement from an Observation (LOINC coding, valueQuantity in UCUM, effectiveDateTime);
/// `at` names the element in errors (`Observation`, `entry[2].Observation`).
fn measurement_of(v: &Value, at: &str) -> Result<MeasurementInput, FhirError> {
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

/// A profile entry as its FHIR resource.
fn entry_resource(holder: HolderId, e: &carnet_store::profile::ProfileEntry) -> Value {
    r::profile_resource(
        holder,
        e.id,
        &e.entry,
        &e.author,
        &e.author_name,
        e.created_at,
        e.updated_at,
        e.version,
    )
}

async fn patient(s: &AppState, c: &FhirCaller, holder: HolderId) -> Result<Value, FhirError> {
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

async fn profile_resources(
    s: &AppState,
    c: &FhirCaller,
    holder: HolderId,
    rtype: &str,
) -> Result<Vec<Value>, FhirError> {
    let entries = s
        .gate
        .list_profile(holder, &c.actor, None, &Context::default())
        .await?;
    let mut out: Vec<Value> = entries
        .iter()
        .filter(|e| r::resource_type(e.entry.section) == rtype)
        .map(|e| entry_resource(holder, e))
        .collect();
    if rtype == "Consent" {
        out.extend(directory(s, c, holder).await?);
    }
    Ok(out)
}

/// AC-3: the authorisation directory as Consents, for the holder's side only (it is theirs to
/// read; a professional sees none of it, as if there were none).
async fn directory(s: &AppState, c: &FhirCaller, holder: HolderId) -> Result<Vec<Value>, FhirError> {
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

async fn profile_by_id(
    s: &AppState,
    c: &FhirCaller,
    holder: HolderId,
    item: uuid::Uuid,
    rtype: &str,
) -> Result<Value, FhirError> {
    let want = item_id(holder, item);
    profile_resources(s, c, holder, rtype)
        .await?
        .into_iter()
        .find(|v| v["id"] == want.as_str())
        .ok_or_else(FhirError::not_found)
}

/// The resources of type `rtype` that match `p`, as the caller may see them (every one read
/// through the gate; hidden ones never counted). Shared by searches, `_revinclude` and
/// conditional creates.
async fn matching(
    s: &AppState,
    c: &FhirCaller,
    rtype: &str,
    p: &Params,
    headers: &HeaderMap,
) -> Result<Vec<Value>, FhirError> {
    hit_values(matching_hits(s, c, rtype, p, headers).await?).await
}

/// [`matching`], each resource's JSON made only when asked for.
async fn matching_hits(
    s: &AppState,
    c: &FhirCaller,
    rtype: &str,
    p: &Params,
    headers: &HeaderMap,
) -> Result<Vec<Hit>, FhirError> {
    let ctx = Context::default();
    let values = match rtype {
        "Patient" => {
            p.only(&["identifier", "_id"])?;
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
                Some(h) => match patient(s, c, h).await {
                    Ok(v) => vec![v],
                    Err(FhirError(StatusCode::NOT_FOUND, ..)) => Vec::new(),
                    Err(e) => return Err(e),
                },
                None => Vec::new(),
            }
        }
        "DocumentReference" => {
            p.only(&[
                "patient",
                "subject",
                "category",
                "type",
                "date",
                "_sort",
                "_lastUpdated",
            ])?;
            let holder = patient_of(p, c)?;
            let class = p
                .one("category")
                .map(|v| {
                    carnet_domain::access::Category::parse(v.rsplit('|').next().unwrap_or(v))
                        .ok_or_else(|| FhirError::invalid(format!("category: unknown class '{v}'")))
                })
                .transpose()?;
            let period = date_range(p.0.get("date"))?;
            let filter = DocumentFilter {
                class,
                type_code: p
                    .one("type")
                    .map(|t| t.rsplit('|').next().unwrap_or(t).to_string()),
                from: period.map(|x| x.0),
                to: period.map(|x| x.1),
                limit: 500,
                ..DocumentFilter::default()
            };
            return document_hits(s, c, holder, filter, &base_url(s, headers)).await;
        }
        "Observation" => {
            p.only(&["patient", "subject", "code", "date", "_sort"])?;
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
        "AuditEvent" => {
            p.only(&["patient", "subject", "date"])?;
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
                    r::audit_event(
                        holder,
                        t.seq,
                        t.at,
                        &actor,
                        t.entry.action,
                        &t.entry.item,
                        t.entry.allowed,
                        &reason,
                        t.entry.emergency,
                    )
                })
                .collect()
        }
        "Provenance" => {
            // Who filed each document the caller may see, and when (IO-1).
            p.only(&["patient", "subject"])?;
            let holder = patient_of(p, c)?;
            documents(
                s,
                c,
                holder,
                DocumentFilter {
                    limit: 500,
                    ..DocumentFilter::default()
                },
                &base_url(s, headers),
            )
            .await?
            .iter()
            .map(carnet_fhir::exchange::provenance_of_document)
            .collect()
        }
        "Communication" => {
            p.only(&["patient", "subject"])?;
            let holder = patient_of(p, c)?;
            communications(s, c, holder).await?
        }
        "Appointment" => {
            p.only(&["patient", "subject", "actor", "date", "_sort"])?;
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
        "ExplanationOfBenefit" => {
            // RB-1: the category `reimbursements`, one gate decision for the space, before
            // anything is counted or paged; `date` is the date of care.
            p.only(&["patient", "subject", "date", "_sort", "_lastUpdated"])?;
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
        t if PROFILE_TYPES.contains(&t) => {
            p.only(&["patient", "subject"])?;
            let holder = patient_of(p, c)?;
            match profile_resources(s, c, holder, t).await {
                Ok(v) => v,
                Err(FhirError(StatusCode::NOT_FOUND, ..)) => Vec::new(),
                Err(e) => return Err(e),
            }
        }
        other => {
            return Err(FhirError(
                StatusCode::NOT_FOUND,
                "not-supported",
                format!("resource type {other} is not supported"),
            ));
        }
    };
    Ok(values.into_iter().map(Hit::Ready).collect())
}

async fn search(
    State(s): State<AppState>,
    c: FhirCaller,
    Path(rtype): Path<String>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let p = Params::parse(q)?;
    let base = base_url(&s, &headers);
    if p.0.contains_key("_revinclude") && rtype != "Patient" {
        return Err(FhirError::invalid(
            "_revinclude is supported on Patient searches (e.g. Patient?_id=…&_revinclude=Observation:patient)",
        ));
    }
    let all = matching_hits(&s, &c, &rtype, &p, &headers).await?;
    // `_include` of the patient the results point to: added only if the caller may read it
    // (through the gate), never counted, never the only thing in a page.
    let mut included = Vec::new();
    if let Some(inc) = p.0.get("_include") {
        for v in inc {
            let (src, param) = v.split_once(':').unwrap_or((v.as_str(), ""));
            let refers = matches!(param, "patient" | "subject") && (src == rtype || src == "*");
            if !refers || rtype == "Patient" {
                return Err(FhirError::invalid(format!(
                    "_include={v}: only {rtype}:patient (or :subject) is supported"
                )));
            }
        }
        let holder = patient_of(&p, &c)?;
        if !all.is_empty() {
            match patient(&s, &c, holder).await {
                Ok(v) => included.push(v),
                Err(FhirError(StatusCode::NOT_FOUND, ..)) => {}
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
            if !matches!(param, "patient" | "subject") || !REVINCLUDABLE.contains(&src) {
                return Err(FhirError::invalid(format!(
                    "_revinclude={v}: supported are T:patient (or :subject) for T in {}",
                    REVINCLUDABLE.join(", ")
                )));
            }
            for pat in &all {
                let Hit::Ready(pat) = pat else { continue };
                let Some(id) = pat["id"].as_str() else { continue };
                let mut q = BTreeMap::new();
                q.insert("patient".to_string(), vec![id.to_string()]);
                match matching(&s, &c, src, &Params(q), &headers).await {
                    Ok(found) => included.extend(found),
                    Err(FhirError(StatusCode::NOT_FOUND, ..)) => {}
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
        sort(&p, &rtype, all)?.into_iter().map(Hit::Ready).collect()
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
    let body = page(&p, &base, &rtype, all, included)?;
    Ok((StatusCode::OK, [(header::CONTENT_TYPE, FHIR_JSON)], body).into_response())
}

/// `POST /fhir/{type}`: creation through the gate, as the caller. Observation: a measurement
/// (LOINC code, valueQuantity in UCUM, effectiveDateTime); DocumentReference: a document with
/// its content inline (`content[0].attachment.data`); Condition, AllergyIntolerance,
/// MedicationStatement, Immunization, Procedure: a profile entry. The patient comes from
/// `subject` / `patient` (a holder may omit it).
async fn create(
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
    // Conditional create: a search as the caller (what they cannot see does not count, and is
    // not revealed); one match is returned as it is, several are an error.
    if let Some(cond) = headers.get("if-none-exist") {
        let cond = cond
            .to_str()
            .map_err(|_| FhirError::invalid("If-None-Exist: not a query string"))?;
        let query = cond.split_once('?').map_or(cond, |(_, q)| q).to_string();
        let found = matching(&s, &c, &rtype, &Params::parse(Some(query))?, &headers).await?;
        match found.as_slice() {
            [] => {}
            [one] => return Ok(respond(StatusCode::OK, one, false)),
            many => {
                return Err(FhirError(
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
        .and_then(|r| r.strip_prefix("Patient/"))
        .and_then(|h| h.parse::<HolderId>().ok())
        .or(c.home());
    match rtype.as_str() {
        "Observation" => {}
        "DocumentReference" => return create_document(&s, &c, &base_url(&s, &headers), subject, &v).await,
        "Appointment" => {
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
        t if [
            "Condition",
            "AllergyIntolerance",
            "MedicationStatement",
            "Immunization",
            "Procedure",
        ]
        .contains(&t) =>
        {
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
        _ => {
            return Err(FhirError(
                StatusCode::METHOD_NOT_ALLOWED,
                "not-supported",
                format!("create is not supported for {rtype}"),
            ));
        }
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
        .map_err(FhirError::unprocessable)?
        .at;
    let pt = pts
        .iter()
        .rev()
        .find(|p| p.measurement.at == at)
        .ok_or_else(FhirError::not_found)?;
    let out = r::observation(holder, pt.id, &pt.measurement, &pt.author);
    Ok(created(&out))
}

fn created(out: &Value) -> Response {
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
async fn create_document(
    s: &AppState,
    c: &FhirCaller,
    base: &str,
    subject: Option<HolderId>,
    v: &Value,
) -> Result<Response, FhirError> {
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
fn document_input(
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
    };
    Ok(carnet_store::documents::DocumentWrite {
        replaces,
        new,
        content: bytes,
    })
}

/// A `transaction` Bundle for one patient (IO-2) — creations of Observations (measurements),
/// DocumentReferences (with their content inline) and profile resources (Condition,
/// AllergyIntolerance, MedicationStatement, Immunization, Procedure), updates and deletions of
/// the profile resources — all or nothing: every entry is checked and decided first, one
/// refusal or error refuses the whole Bundle with nothing written, then the documents'
/// contents go to the blob store and every row commits at once. Reads are refused in a
/// transaction (use a batch).
async fn transaction(s: &AppState, c: &FhirCaller, base: &str, v: &Value) -> Result<Response, FhirError> {
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
        .map_err(|FhirError(st, code, m)| FhirError(st, code, format!("entry[{i}]: {m}")))?;
        let writable = [
            "Condition",
            "AllergyIntolerance",
            "MedicationStatement",
            "Immunization",
            "Procedure",
        ];
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
                if rt == "Observation" {
                    measures.push(measurement_of(r, &format!("entry[{i}].Observation"))?);
                    order.push((Slot::Measure(measures.len() - 1), "201 Created"));
                } else if rt == "DocumentReference" {
                    documents.push(document_input(
                        c,
                        r,
                        subject,
                        &format!("entry[{i}].DocumentReference"),
                    )?);
                    order.push((Slot::Document(documents.len() - 1), "201 Created"));
                } else if writable.contains(&rt) {
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
            ("PUT" | "DELETE", Some(id)) if writable.contains(&rt) => {
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
async fn batch(
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
        Some("transaction") => return transaction(&s, &c, &base_url(&s, &headers), &v).await,
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
                remove(State(s.clone()), c.clone(), Path((t.to_string(), id.to_string()))).await
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
                FhirError(
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

/// The version an `If-Match` header names (`W/"3"` or `"3"`).
fn if_match(headers: &HeaderMap) -> Result<i64, FhirError> {
    let v = headers
        .get(header::IF_MATCH)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            FhirError(
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
async fn update(
    State(s): State<AppState>,
    c: FhirCaller,
    Path((rtype, id)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, FhirError> {
    if ![
        "Condition",
        "AllergyIntolerance",
        "MedicationStatement",
        "Immunization",
        "Procedure",
    ]
    .contains(&rtype.as_str())
    {
        return Err(FhirError(
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
            return Err(FhirError(
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
async fn remove(
    State(s): State<AppState>,
    c: FhirCaller,
    Path((rtype, id)): Path<(String, String)>,
) -> Result<Response, FhirError> {
    let (holder, item) = split_id(&id).ok_or_else(FhirError::not_found)?;
    let ctx = Context::default();
    match rtype.as_str() {
        "DocumentReference" => {
            s.gate
                .delete_document(holder, &c.actor, DocumentId::from_uuid(item), &ctx)
                .await?
        }
        t if PROFILE_TYPES.contains(&t) => {
            // The entry must be of this type (no deleting a Condition through /AllergyIntolerance).
            profile_by_id(&s, &c, holder, item, t).await?;
            s.gate.delete_profile_entry(holder, &c.actor, item, &ctx).await?
        }
        _ => {
            return Err(FhirError(
                StatusCode::METHOD_NOT_ALLOWED,
                "not-supported",
                format!("delete is not supported for {rtype}"),
            ));
        }
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// `GET /fhir/Patient/{id}/$everything`: what the caller may see of the record, in one Bundle;
/// `GET /fhir/Patient/{id}/$summary`: the same as an International Patient Summary document.
/// `GET /fhir/{type}/{id}/{op}`: `_history` of any resource, `$everything` and `$summary` of a
/// Patient.
async fn instance_op(
    State(s): State<AppState>,
    c: FhirCaller,
    Path((rtype, id, op)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    if op == "_history" {
        let p = Params::parse(q)?;
        p.only(&[])?;
        let v = read_value(&s, &c, &rtype, &id, &headers).await?;
        let version = v["meta"]["versionId"].as_str().unwrap_or("1").to_string();
        let base = base_url(&s, &headers);
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
    if rtype != "Patient" {
        return Err(FhirError(
            StatusCode::NOT_FOUND,
            "not-supported",
            format!("{rtype}/{{id}}/{op} is not supported"),
        ));
    }
    everything(State(s), c, Path((id, op)), RawQuery(q), headers).await
}

/// `GET /fhir/{type}/{id}/_history/{vid}`: the current version when `vid` names it; an earlier
/// one is not kept (404 with a message saying so).
async fn vread(
    State(s): State<AppState>,
    c: FhirCaller,
    Path((rtype, id, vid)): Path<(String, String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    let p = Params::parse(q)?;
    let v = read_value(&s, &c, &rtype, &id, &headers).await?;
    let current = v["meta"]["versionId"].as_str().unwrap_or("1");
    if current != vid {
        return Err(FhirError(
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

async fn everything(
    State(s): State<AppState>,
    c: FhirCaller,
    Path((id, op)): Path<(String, String)>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> Result<Response, FhirError> {
    if op != "$everything" && op != "$summary" {
        return Err(FhirError(
            StatusCode::NOT_FOUND,
            "not-supported",
            format!("operation {op} is not supported"),
        ));
    }
    let p = Params::parse(q)?;
    p.only(&[])?;
    let holder: HolderId = id.parse().map_err(|_| FhirError::not_found())?;
    let ctx = Context::default();
    let mut all = Vec::new();
    match patient(&s, &c, holder).await {
        Ok(v) => all.push(v),
        Err(FhirError(StatusCode::NOT_FOUND, ..)) => {}
        Err(e) => return Err(e),
    }
    let every_document = DocumentFilter {
        limit: 500,
        ..DocumentFilter::default()
    };
    all.extend(documents(&s, &c, holder, every_document, &base_url(&s, &headers)).await?);
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
        let v = r::ips_document(&base_url(&s, &headers), holder, s.store.now(), all)
            .ok_or_else(FhirError::not_found)?;
        return Ok(respond(StatusCode::OK, &v, p.pretty()));
    }
    // Messages, agenda events and reimbursements, each as the caller may see them.
    for t in ["Communication", "Appointment", "ExplanationOfBenefit"] {
        let mut q = BTreeMap::new();
        q.insert("patient".to_string(), vec![holder.to_string()]);
        match matching(&s, &c, t, &Params(q), &headers).await {
            Ok(found) => all.extend(found),
            Err(FhirError(StatusCode::NOT_FOUND, ..)) => {}
            Err(e) => return Err(e),
        }
    }
    let base = base_url(&s, &headers);
    let total = all.len();
    let v = r::searchset(
        &base,
        &format!("{base}/Patient/{holder}/$everything"),
        None,
        total,
        all,
    );
    Ok(respond(StatusCode::OK, &v, p.pretty()))
}

fn party<'a>(
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
fn communication_of(
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
async fn communications(s: &AppState, c: &FhirCaller, holder: HolderId) -> Result<Vec<Value>, FhirError> {
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
fn appointment_of(s: &AppState, holder: HolderId, e: &carnet_store::agenda::AgendaEvent) -> Value {
    carnet_fhir::exchange::appointment(
        holder,
        e.id,
        e.version,
        e.updated_at,
        &e.event,
        &e.author,
        &e.author_name,
        s.store.now(),
    )
}

#[cfg(test)]
mod fuzz {
    //! Search parameters from any client (issue 10, item 5): parsing never panics, date
    //! ranges are well ordered, scope checks answer for any path.
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn search_parameters_never_panic(
            q in proptest::collection::vec(
                (proptest::sample::select(vec!["patient", "date", "_count", "_page", "_sort", "_format",
                    "_elements", "_summary", "_include", "_revinclude", "code", "category", "_lastUpdated", "x"]),
                 "[0-9a-zA-Z:|=&%\\-+.TZ ]{0,30}"), 0..6),
            dates in proptest::collection::vec("(eq|ne|lt|gt|le|ge|sa|eb|ap)?[0-9]{0,4}(-[0-9]{1,2}){0,2}(T[0-9:]{0,8}(Z|[+-][0-9:]{0,5})?)?", 0..3),
        ) {
            let raw: String = q.iter().map(|(k, v)| format!("{k}={}", url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>())).collect::<Vec<_>>().join("&");
            if let Ok(p) = Params::parse(Some(raw)) {
                let _ = p.pretty();
                let _ = p.only(&["patient", "date"]);
                let _ = summary_count(&p);
            }
            // One date gives an ordered range; several are ANDed (FHIR), and disjoint ones give
            // an empty (inverted) range that matches nothing.
            if let Ok(Some((from, to))) = date_range(Some(&dates)) {
                prop_assert!(from <= to || dates.len() > 1, "{:?} gave {:?}..{:?}", dates, from, to);
            }
            for d in &dates {
                let _ = parse_instant(d);
            }
        }

        #[test]
        fn app_scope_checks_never_panic(
            path in proptest::collection::vec("[A-Za-z$_*]{0,14}", 0..5),
            method in proptest::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]),
            scope in "(patient/[A-Za-z*]{1,12}\\.[cruds]{1,5} ?){0,4}",
        ) {
            let scopes = carnet_domain::catalogue::parse_scopes(&scope);
            let segments: Vec<&str> = path.iter().map(String::as_str).collect();
            let _ = app_refusal(&scopes, method, &segments, Some("_include=x&_revinclude=Observation:patient"), true);
            if scopes.is_empty() && !segments.is_empty() && segments != ["metadata"] {
                prop_assert!(app_refusal(&scopes, method, &segments, None, false).is_some());
            }
        }
    }
}
