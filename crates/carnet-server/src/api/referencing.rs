//! The referencing workflow over HTTP (CA-2, CA-4) and the public catalogue (CA-1).
//!
//! Accounts (publisher, commission member, decision-maker) are created by the operators and
//! sign in with a bearer token. A publisher submits and amends its applications and reads every
//! step of them; the commission reviews each criterion and gives its opinion; the
//! decision-maker approves (recording the convention) or refuses, and withdraws. Every step is
//! recorded (`service_steps`) and shown to the publisher.

use std::sync::LazyLock;

use axum::extract::{FromRequestParts, Path, State};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::routing::{get, post};
use axum::{Json, Router};
use carnet_domain::Timestamp;
use carnet_domain::access::Category;
use carnet_domain::catalogue::{Application, Convention, Criterion, ReferencingRole, Step};
use carnet_store::catalogue::{ReferencingAccount, Service};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Operator, ValidJson};
use crate::{ApiError, AppState};

/// The criteria applications are checked against (`carnet-domain/data/referencing-criteria.csv`).
pub static CRITERIA: LazyLock<Vec<Criterion>> = LazyLock::new(carnet_domain::catalogue::default_criteria);

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/operator/referencing-accounts", post(create_account))
        .route("/api/v1/referencing/criteria", get(criteria))
        .route("/api/v1/referencing/services", get(list).post(submit))
        .route("/api/v1/referencing/services/{client_id}", get(show))
        .route("/api/v1/referencing/services/{client_id}/steps", post(step))
        .route("/api/v1/catalogue", get(catalogue))
}

/// A signed-in account of the referencing workflow.
pub struct Account(pub ReferencingAccount);

impl FromRequestParts<AppState> for Account {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(ApiError::unauthorized)?;
        s.store
            .referencing_account(token.trim())
            .await?
            .map(Account)
            .ok_or_else(ApiError::unauthorized)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAccount {
    role: String,
    name: String,
}

async fn create_account(
    State(s): State<AppState>,
    _op: Operator,
    ValidJson(a): ValidJson<NewAccount>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let role = ReferencingRole::parse(&a.role)
        .ok_or_else(|| ApiError::bad_request("role: publisher, commission or decision_maker"))?;
    let name = a.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(ApiError::bad_request("name: 1 to 200 characters"));
    }
    let (account, token) = s.store.create_referencing_account(role, name).await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({ "id": account.id, "role": role.tag(), "name": account.name, "token": token })),
    ))
}

async fn criteria() -> Json<Value> {
    Json(json!({ "criteria": *CRITERIA }))
}

fn convention_view(c: &Convention) -> Value {
    json!({
        "categories": c.categories,
        "starts": c.starts.to_rfc3339(),
        "ends": c.ends.to_rfc3339(),
        "withdrawal_terms": c.withdrawal_terms,
    })
}

/// What the public (and holders) see of a listed service.
pub fn public_view(svc: &Service) -> Value {
    let a = &svc.record.application;
    json!({
        "client_id": svc.client_id,
        "name": a.name,
        "description": a.description,
        "category": a.category,
        "redirect_uris": a.redirect_uris,
        "convention": svc.record.convention.as_ref().map(convention_view),
    })
}

fn view(s: &AppState, svc: &Service) -> Value {
    json!({
        "client_id": svc.client_id,
        "publisher_id": svc.publisher_id,
        "state": svc.record.state.tag(),
        "listed": svc.record.listed(s.store.now()),
        "submitted_at": svc.created_at.to_rfc3339(),
        "application": svc.record.application,
        "reviews": svc.record.reviews.iter().map(|(c, ok)| json!({"criterion": c, "satisfied": ok})).collect::<Vec<_>>(),
        "convention": svc.record.convention.as_ref().map(convention_view),
    })
}

async fn list(State(s): State<AppState>, Account(a): Account) -> Result<Json<Value>, ApiError> {
    let mine = (a.role == ReferencingRole::Publisher).then_some(a.id.as_str());
    let all = s.store.services(mine).await?;
    Ok(Json(
        json!({ "services": all.iter().map(|svc| view(&s, svc)).collect::<Vec<_>>() }),
    ))
}

async fn submit(
    State(s): State<AppState>,
    Account(a): Account,
    ValidJson(app): ValidJson<Application>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    if a.role != ReferencingRole::Publisher {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "only a publisher submits an application",
        ));
    }
    let svc = s.store.submit_service(&a, app, &CRITERIA).await?;
    Ok((StatusCode::CREATED, Json(view(&s, &svc))))
}

async fn show(
    State(s): State<AppState>,
    Account(a): Account,
    Path(client_id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let svc = s
        .store
        .service(&client_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    if a.role == ReferencingRole::Publisher && svc.publisher_id != a.id {
        return Err(ApiError::not_found());
    }
    let steps = s.store.service_steps(&client_id).await?;
    let mut v = view(&s, &svc);
    v["steps"] = steps
        .iter()
        .map(|st| {
            json!({
                "seq": st.seq,
                "at": st.at.to_rfc3339(),
                "account_id": st.account_id,
                "role": st.role.tag(),
                "step": step_view(&st.step),
            })
        })
        .collect();
    Ok(Json(v))
}

fn step_view(step: &Step) -> Value {
    match step {
        Step::Approved { convention } => {
            json!({"step": "approved", "convention": convention_view(convention)})
        }
        other => serde_json::to_value(other).unwrap_or(Value::Null),
    }
}

/// A step as sent over HTTP (dates as RFC 3339 or `YYYY-MM-DD`, UTC midnight).
#[derive(Deserialize)]
#[serde(tag = "step", rename_all = "snake_case", deny_unknown_fields)]
enum StepInput {
    Amended {
        application: Application,
    },
    CriterionReviewed {
        criterion: String,
        satisfied: bool,
        #[serde(default)]
        comment: String,
    },
    Opinion {
        favourable: bool,
        comment: String,
    },
    Approved {
        categories: Vec<Category>,
        starts: String,
        ends: String,
        withdrawal_terms: String,
    },
    Refused {
        reason: String,
    },
    Withdrawn {
        reason: String,
    },
}

fn instant(field: &str, v: &str) -> Result<Timestamp, ApiError> {
    let bad = || ApiError::bad_request(format!("{field}: a date (YYYY-MM-DD) or an RFC 3339 instant"));
    if let Ok(t) = time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339) {
        return Ok(Timestamp::from_offset_date_time(t));
    }
    let d = carnet_domain::document::parse_iso_date(v).ok_or_else(bad)?;
    Ok(Timestamp::from_offset_date_time(d.midnight().assume_utc()))
}

async fn step(
    State(s): State<AppState>,
    Account(a): Account,
    Path(client_id): Path<String>,
    ValidJson(input): ValidJson<StepInput>,
) -> Result<Json<Value>, ApiError> {
    let step = match input {
        StepInput::Amended { application } => Step::Amended { application },
        StepInput::CriterionReviewed {
            criterion,
            satisfied,
            comment,
        } => Step::CriterionReviewed {
            criterion,
            satisfied,
            comment,
        },
        StepInput::Opinion { favourable, comment } => Step::Opinion { favourable, comment },
        StepInput::Approved {
            categories,
            starts,
            ends,
            withdrawal_terms,
        } => Step::Approved {
            convention: Convention {
                categories,
                starts: instant("starts", &starts)?,
                ends: instant("ends", &ends)?,
                withdrawal_terms,
            },
        },
        StepInput::Refused { reason } => Step::Refused { reason },
        StepInput::Withdrawn { reason } => Step::Withdrawn { reason },
    };
    let svc = s
        .store
        .apply_service_step(&a, &client_id, &step, &CRITERIA)
        .await?;
    Ok(Json(view(&s, &svc)))
}

/// CA-1: the catalogue, public: the services listed now.
async fn catalogue(State(s): State<AppState>) -> Result<Json<Value>, ApiError> {
    let listed = s.store.listed_services().await?;
    Ok(Json(
        json!({ "services": listed.iter().map(public_view).collect::<Vec<_>>() }),
    ))
}
