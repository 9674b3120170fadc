//! The medical profile over HTTP (SPEC PR-1..4): entries, measurements (one or a batch),
//! SVG charts and an International-Patient-Summary-style page. Like documents, one handler
//! set serves `/api/v1/me/…` (holder, representative) and `/api/v1/pro/patients/{holder}/…`
//! (professionals); every call goes through the gate (decided, traced, notified) and a denial
//! answers like absence (404, AC-8). Bad input is a 422 naming the field; nothing is written.

use std::collections::HashMap;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use carnet_domain::Timestamp;
use carnet_domain::access::Context;
use carnet_domain::profile::{EntryInput, MEASURES, MeasurementInput, QUESTIONS, Section, measure};
use carnet_store::documents::DocumentFilter;
use carnet_store::profile::{Point, ProfileEntry};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::Caller;
use super::extract::ValidJson;
use crate::chart::{esc, line_chart};
use crate::web::i18n::{measure_label, measure_unit};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/profile", get(list).post(add))
        .route("/profile/{id}", axum::routing::put(update).delete(remove))
        .route("/measurements", get(series).post(add_measurements))
        .route("/measurements/{id}", axum::routing::delete(remove_measurement))
        // An image of a page: it speaks the page's language (the `lang` cookie).
        .route(
            "/measurements/{code}/chart.svg",
            get(chart).layer(axum::middleware::from_fn(crate::web::i18n::layer)),
        )
        .route("/summary.html", get(summary))
}

fn entry_json(e: &ProfileEntry) -> Value {
    let mut v = serde_json::to_value(&e.entry).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert("id".into(), json!(e.id));
        m.insert("version".into(), json!(e.version));
        m.insert("author".into(), json!(e.author));
        m.insert("author_name".into(), json!(e.author_name));
        m.insert("created_at".into(), json!(e.created_at.to_rfc3339()));
        m.insert("updated_at".into(), json!(e.updated_at.to_rfc3339()));
    }
    v
}

fn point_json(p: &Point) -> Value {
    json!({
        "id": p.id,
        "code": p.measurement.code,
        "value": p.measurement.value,
        "unit": p.measurement.unit,
        "at": p.measurement.at.to_rfc3339(),
        "author": p.author,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    section: Option<String>,
}

fn section_of(s: &Option<String>) -> Result<Option<Section>, ApiError> {
    s.as_deref()
        .map(|t| {
            Section::parse(t).ok_or_else(|| {
                let all: Vec<&str> = Section::ALL.iter().map(|s| s.tag()).collect();
                ApiError::bad_request(format!("section: one of {}", all.join(", ")))
            })
        })
        .transpose()
}

async fn list(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Value>, ApiError> {
    let section = section_of(&q.section)?;
    let entries = s
        .gate
        .list_profile(c.holder, &c.actor, section, &Context::default())
        .await?;
    let sections: Vec<Value> = Section::ALL
        .iter()
        .map(|s| json!({"section": s.tag(), "label": s.label_fr(), "code_systems": s.code_systems().iter().map(|c| c.uri()).collect::<Vec<_>>()}))
        .collect();
    let questions: Vec<Value> = QUESTIONS
        .iter()
        .map(|(id, q)| json!({"id": id, "text": q}))
        .collect();
    Ok(Json(json!({
        "entries": entries.iter().map(entry_json).collect::<Vec<_>>(),
        "sections": sections,
        "questionnaire": questions,
    })))
}

async fn add(
    State(s): State<AppState>,
    c: Caller,
    ValidJson(input): ValidJson<EntryInput>,
) -> Result<Response, ApiError> {
    let e = s
        .gate
        .add_profile_entry(c.holder, &c.actor, input, &c.author_name, &Context::default())
        .await?;
    Ok((StatusCode::CREATED, Json(entry_json(&e))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct VersionQuery {
    version: i64,
}

fn entry_id(params: &HashMap<String, String>) -> Result<uuid::Uuid, ApiError> {
    params
        .get("id")
        .and_then(|i| i.parse().ok())
        .ok_or_else(ApiError::not_found)
}

async fn update(
    State(s): State<AppState>,
    c: Caller,
    Path(params): Path<HashMap<String, String>>,
    Query(v): Query<VersionQuery>,
    ValidJson(input): ValidJson<EntryInput>,
) -> Result<Json<Value>, ApiError> {
    let id = entry_id(&params)?;
    let e = s
        .gate
        .update_profile_entry(c.holder, &c.actor, id, v.version, input, &Context::default())
        .await?;
    Ok(Json(entry_json(&e)))
}

async fn remove(
    State(s): State<AppState>,
    c: Caller,
    Path(params): Path<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let id = entry_id(&params)?;
    s.gate
        .delete_profile_entry(c.holder, &c.actor, id, &Context::default())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// A mistyped measurement deleted by its author (PR-1); a correction is a new one.
async fn remove_measurement(
    State(s): State<AppState>,
    c: Caller,
    Path(params): Path<HashMap<String, String>>,
) -> Result<StatusCode, ApiError> {
    let id = entry_id(&params)?;
    s.gate
        .delete_measurement(c.holder, &c.actor, id, &Context::default())
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// One measurement (an object) or a batch (an array, or `{"measurements": [...]}`).
async fn add_measurements(
    State(s): State<AppState>,
    c: Caller,
    ValidJson(body): ValidJson<Value>,
) -> Result<Response, ApiError> {
    let list = match body {
        Value::Array(a) => a,
        Value::Object(mut o) if o.contains_key("measurements") => match o.remove("measurements") {
            Some(Value::Array(a)) => a,
            _ => return Err(ApiError::bad_request("measurements: an array is expected")),
        },
        other => vec![other],
    };
    let batch: Vec<MeasurementInput> = list
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            serde_json::from_value(v).map_err(|e| {
                ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    format!("measurements[{i}]: {e}"),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    let n = s
        .gate
        .add_measurements(c.holder, &c.actor, &batch, &Context::default())
        .await?;
    Ok((StatusCode::CREATED, Json(json!({ "stored": n }))).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SeriesQuery {
    code: Option<String>,
    from: Option<String>,
    to: Option<String>,
    limit: Option<i64>,
}

fn instant(s: &Option<String>, name: &str) -> Result<Option<Timestamp>, ApiError> {
    s.as_deref()
        .map(|v| {
            let v = if v.len() == 10 {
                format!("{v}T00:00:00Z")
            } else {
                v.to_string()
            };
            time::OffsetDateTime::parse(&v, &time::format_description::well_known::Rfc3339)
                .map(Timestamp::from_offset_date_time)
                .map_err(|_| {
                    ApiError::bad_request(format!("{name}: a date (YYYY-MM-DD) or an RFC 3339 instant"))
                })
        })
        .transpose()
}

fn period(q: &SeriesQuery) -> Result<Option<(Timestamp, Timestamp)>, ApiError> {
    Ok(match (instant(&q.from, "from")?, instant(&q.to, "to")?) {
        (None, None) => None,
        (f, t) => Some((
            f.unwrap_or(Timestamp::from_micros(i64::MIN)),
            t.unwrap_or(Timestamp::from_micros(i64::MAX)),
        )),
    })
}

fn known_measure(code: &str) -> Result<&'static carnet_domain::profile::Measure, ApiError> {
    measure(code).ok_or_else(|| {
        let known: Vec<&str> = MEASURES.iter().map(|m| m.loinc).collect();
        ApiError::bad_request(format!("code: one of {}", known.join(", ")))
    })
}

async fn series(
    State(s): State<AppState>,
    c: Caller,
    Query(q): Query<SeriesQuery>,
) -> Result<Json<Value>, ApiError> {
    let code = q
        .code
        .clone()
        .ok_or_else(|| ApiError::bad_request("code: the LOINC code of the measure"))?;
    let m = known_measure(&code)?;
    let points = s
        .gate
        .measurements(
            c.holder,
            &c.actor,
            &code,
            period(&q)?,
            q.limit.unwrap_or(1000).clamp(1, 10_000),
            &Context::default(),
        )
        .await?;
    Ok(Json(json!({
        "code": m.loinc,
        "label": m.label_fr,
        "unit": m.unit(),
        "points": points.iter().map(point_json).collect::<Vec<_>>(),
    })))
}

async fn chart(
    State(s): State<AppState>,
    c: Caller,
    Path(params): Path<HashMap<String, String>>,
    Query(q): Query<SeriesQuery>,
) -> Result<Response, ApiError> {
    let code = params.get("code").cloned().unwrap_or_default();
    let m = known_measure(&code)?;
    let points = s
        .gate
        .measurements(c.holder, &c.actor, &code, period(&q)?, 2000, &Context::default())
        .await?;
    let pts: Vec<(Timestamp, f64)> = points
        .iter()
        .map(|p| (p.measurement.at, p.measurement.value))
        .collect();
    let svg = line_chart(measure_label(m), measure_unit(m), &pts);
    Ok((
        [
            (header::CONTENT_TYPE, "image/svg+xml; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        svg,
    )
        .into_response())
}

fn author_label(e: &ProfileEntry, reader: crate::web::i18n::Reader<'_>) -> String {
    crate::web::i18n::author_words(&e.author, &e.author_name, reader)
}

/// An International Patient Summary in the space's words (issue 5): allergies, problems,
/// medication, immunisations, procedures, vital signs (latest of each measure), advance
/// directives, trusted people, blood group, organ donation, recent documents. Everything is
/// read through the gate, as the caller.
async fn summary(State(s): State<AppState>, c: Caller) -> Result<Html<String>, ApiError> {
    let body = summary_body(&s, c.holder, &c.actor).await?;
    Ok(Html(format!(
        "<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>Synthèse médicale</title><style>body{{font-family:sans-serif;max-width:50rem;margin:auto;padding:1rem}}\
         .empty{{color:#666}}small{{color:#555}}table{{border-collapse:collapse}}td,th{{padding:.2rem .6rem;text-align:left}}</style></head>\
         <body><main>{body}</main></body></html>"
    )))
}

/// The medical summary (PR-2, in the spirit of the International Patient Summary): the
/// profile by section, the last value of each measure, the recent documents — in French
/// formats (dates JJ/MM/AAAA, decimal commas, units in words), as `actor` may read them. Shared
/// by the standalone page of the API and the holder's page in the site's frame.
pub(crate) async fn summary_body(
    s: &AppState,
    holder: carnet_domain::HolderId,
    actor: &carnet_domain::access::Actor,
) -> Result<String, ApiError> {
    use crate::web::{day, i18n::decimal, iso_day};
    let ctx = Context::default();
    let entries = s.gate.list_profile(holder, actor, None, &ctx).await?;
    let mut body = String::new();
    let order = [
        (Section::Allergies, "Allergies et intolérances"),
        (Section::Conditions, "Problèmes de santé"),
        (Section::Treatments, "Traitements"),
        (Section::Vaccinations, "Vaccinations"),
        (Section::Hospitalisations, "Hospitalisations et interventions"),
        (Section::FamilyHistory, "Antécédents familiaux"),
        (Section::Disabilities, "Handicaps"),
        (Section::Lifestyle, "Mode de vie"),
        (Section::BloodGroup, "Groupe sanguin"),
        (Section::AdvanceDirectives, "Directives anticipées"),
        (
            Section::TrustedPeople,
            "Personne de confiance et personnes à prévenir",
        ),
        (Section::OrganDonation, "Don d'organes"),
    ];
    for (section, title) in order {
        let items: Vec<&ProfileEntry> = entries.iter().filter(|e| e.entry.section == section).collect();
        body.push_str(&format!("<section><h2>{}</h2>", esc(title)));
        if items.is_empty() {
            body.push_str("<p class=\"empty\">Aucune information renseignée.</p></section>");
            continue;
        }
        body.push_str("<ul>");
        for e in items {
            let x = &e.entry;
            let mut label = x.text.clone();
            if let Some(c) = &x.contact {
                label = format!(
                    "{} ({}{})",
                    c.name,
                    if c.role == "trusted" {
                        "personne de confiance"
                    } else {
                        "à prévenir"
                    },
                    c.phone.as_ref().map(|p| format!(", {p}")).unwrap_or_default()
                );
            }
            if let Some(v) = &x.value {
                label = if label.is_empty() {
                    v.clone()
                } else {
                    format!("{label} : {v}")
                };
            }
            if label.is_empty()
                && let Some(code) = &x.code
            {
                label = code.display.clone().unwrap_or_else(|| code.code.clone());
            }
            let code = x
                .code
                .as_ref()
                .map(|c| format!(" <small>[{} {}]</small>", esc(c.system.name()), esc(&c.code)))
                .unwrap_or_default();
            let date = x
                .date
                .as_ref()
                .map(|d| format!(" — {}", esc(&iso_day(d))))
                .unwrap_or_default();
            body.push_str(&format!(
                "<li>{}{code}{date} <small>(par {}, le {})</small></li>",
                esc(&label),
                esc(&author_label(e, crate::web::i18n::Reader::of(actor))),
                esc(&day(e.created_at))
            ));
        }
        body.push_str("</ul></section>");
    }
    // Vital signs: the newest value of each measure.
    body.push_str("<section><h2>Constantes et mesures</h2>");
    let mut rows = String::new();
    for m in MEASURES.iter() {
        let pts = match s
            .gate
            .measurements(holder, actor, m.loinc, None, 100_000, &ctx)
            .await
        {
            Ok(p) => p,
            Err(carnet_store::StoreError::NotFound) => Vec::new(),
            Err(e) => return Err(e.into()),
        };
        if let Some(p) = pts.last() {
            rows.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td>{} {}</td><td>{}</td></tr>",
                esc(m.label_fr),
                esc(&decimal(p.measurement.value)),
                esc(m.unit_words()),
                esc(&day(p.measurement.at))
            ));
        }
    }
    if rows.is_empty() {
        body.push_str("<p class=\"empty\">Aucune mesure.</p></section>");
    } else {
        body.push_str(&format!(
            "<table><thead><tr><th>Mesure</th><th>Dernière valeur</th><th>Date</th></tr></thead><tbody>{rows}</tbody></table></section>"
        ));
    }
    // Recent documents (titles only).
    let docs = s
        .gate
        .list_documents(
            holder,
            actor,
            &DocumentFilter {
                limit: 10,
                ..DocumentFilter::default()
            },
            &ctx,
        )
        .await?;
    body.push_str("<section><h2>Documents récents</h2><ul>");
    for d in &docs.documents {
        body.push_str(&format!(
            "<li>{}{}</li>",
            esc(&d.meta.title),
            d.meta
                .event_date
                .as_deref()
                .map(|e| format!(" <small>({})</small>", esc(&iso_day(e))))
                .unwrap_or_default()
        ));
    }
    if docs.documents.is_empty() {
        body.push_str("<li class=\"empty\">Aucun document.</li>");
    }
    body.push_str("</ul></section>");
    Ok(format!(
        "<h1>Synthèse médicale</h1><p>Établie le {} à partir de l'espace de santé (format de type « International \
         Patient Summary »). Chaque information indique qui l'a écrite et quand.</p>{body}",
        esc(&day(s.store.now()))
    ))
}
