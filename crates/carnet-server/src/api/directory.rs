//! The authorisation directory (SPEC AC-3, AC-4, AC-5) and the access history (AC-6), for the
//! holder or a representative acting in the space: grant, narrow, extend and revoke access,
//! block a professional, declare the médecin traitant and the emergency-regulation consent,
//! hide everything; read who accessed what. Changes apply on the very next request (S-4).

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use carnet_domain::Timestamp;
use carnet_domain::access::{AccessPolicy, AppId, Category, Grant, Grantee, OrganisationId, ProfessionalId};
use serde::Deserialize;
use serde_json::{Value, json};

use super::extract::Authenticated;
use super::extract::ValidJson;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/access", get(show))
        .route("/access/grants", post(grant))
        .route("/access/grants/{kind}/{id}", delete(revoke))
        .route("/access/settings", put(settings))
        .route("/access/blocked", post(block))
        .route("/access/blocked/{id}", delete(unblock))
        .route("/traces", get(traces))
}

pub(crate) fn check_rpps(id: &str) -> Result<ProfessionalId, ApiError> {
    if id.len() == 11 && id.bytes().all(|b| b.is_ascii_digit()) {
        Ok(ProfessionalId(id.to_string()))
    } else {
        Err(ApiError::bad_request(
            "un numéro RPPS a 11 chiffres / an RPPS number has 11 digits",
        ))
    }
}

pub(crate) fn check_grantee(kind: &str, id: &str) -> Result<Grantee, ApiError> {
    match kind {
        "professional" => Ok(Grantee::Professional { id: check_rpps(id)? }),
        "establishment" if id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            Ok(Grantee::Establishment {
                id: OrganisationId(id.to_string()),
            })
        }
        "establishment" => Err(ApiError::bad_request(
            "un numéro FINESS a 9 caractères / a FINESS number has 9 characters",
        )),
        "app" if !id.is_empty() && id.len() <= 100 => Ok(Grantee::App {
            id: AppId(id.to_string()),
        }),
        _ => Err(ApiError::bad_request(
            "grantee kind must be professional, establishment or app",
        )),
    }
}

fn policy_json(p: &AccessPolicy) -> Value {
    json!({
        "medecin_traitant": p.medecin_traitant,
        "blocked": p.blocked,
        "grants": p.grants.iter().map(|g| json!({
            "grantee": g.grantee,
            "categories": g.categories,
            "until": g.until.map(|t| t.to_rfc3339()),
            "express": g.express,
            "basis": g.basis,
        })).collect::<Vec<_>>(),
        "regulation_consent": p.regulation_consent,
        "hide_all": p.hide_all,
        "care_team_objection": p.care_team_objection,
    })
}

async fn show(State(s): State<AppState>, a: Authenticated) -> Result<Json<Value>, ApiError> {
    let (p, _) = a.holder_side(&s).await?.access_policy().await?;
    Ok(Json(policy_json(&p)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GrantBody {
    kind: String,
    id: String,
    /// Omitted: the whole space.
    categories: Option<Vec<Category>>,
    /// RFC 3339; omitted: until revoked.
    until: Option<String>,
    /// Express consent (needed for occupational and fire-brigade doctors, AC-1b).
    #[serde(default)]
    express: bool,
}

/// Grants, or changes (narrows, extends) an existing grant of the same grantee.
async fn grant(
    State(s): State<AppState>,
    a: Authenticated,
    ValidJson(b): ValidJson<GrantBody>,
) -> Result<Json<Value>, ApiError> {
    let grantee = check_grantee(&b.kind, &b.id)?;
    if matches!(grantee, Grantee::App { .. }) {
        // CA-3: an app's grant stays within its convention: it is made only by connecting it
        // (the catalogue or the app's consent screen), never written by hand.
        return Err(ApiError::new(
            axum::http::StatusCode::UNPROCESSABLE_ENTITY,
            "invalid",
            "les applications se connectent depuis le catalogue / apps are connected from the catalogue",
        ));
    }
    let until = match &b.until {
        Some(u) => {
            let t = time::OffsetDateTime::parse(u, &time::format_description::well_known::Rfc3339).map_err(
                |_| {
                    ApiError::bad_request(
                        "until: date et heure RFC 3339 attendues / RFC 3339 date-time expected",
                    )
                },
            )?;
            let t = Timestamp::from_offset_date_time(t);
            if t <= s.store.now() {
                return Err(ApiError::bad_request(
                    "until: doit être dans le futur / must be in the future",
                ));
            }
            Some(t)
        }
        None => None,
    };
    let new = Grant {
        grantee: grantee.clone(),
        categories: b.categories,
        until,
        express: b.express,
        basis: Default::default(),
    };
    let p = a
        .holder_side(&s)
        .await?
        .update_access_policy(|p| {
            p.grants.retain(|g| g.grantee != grantee);
            p.grants.push(new.clone());
        })
        .await?;
    Ok(Json(policy_json(&p)))
}

async fn revoke(
    State(s): State<AppState>,
    a: Authenticated,
    Path((kind, id)): Path<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let grantee = check_grantee(&kind, &id)?;
    if let Grantee::App { id } = &grantee {
        // CA-3: the grant goes and every token of the app for this space dies with it.
        let side = a.holder_side(&s).await?;
        side.disconnect_app(&id.0).await?;
        let (p, _) = side.access_policy().await?;
        return Ok(Json(policy_json(&p)));
    }
    let p = a
        .holder_side(&s)
        .await?
        .update_access_policy(|p| p.grants.retain(|g| g.grantee != grantee))
        .await?;
    Ok(Json(policy_json(&p)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// RPPS of the médecin traitant; `null` to remove; omitted: unchanged.
    #[serde(default, with = "double_option")]
    medecin_traitant: Option<Option<String>>,
    regulation_consent: Option<bool>,
    hide_all: Option<bool>,
    /// AC-1b: object to the presumed authorisation of care teams.
    care_team_objection: Option<bool>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
        Ok(Some(Option::<String>::deserialize(d)?))
    }
}

async fn settings(
    State(s): State<AppState>,
    a: Authenticated,
    ValidJson(b): ValidJson<Settings>,
) -> Result<Json<Value>, ApiError> {
    let mt = match b.medecin_traitant {
        Some(Some(id)) => Some(Some(check_rpps(&id)?)),
        Some(None) => Some(None),
        None => None,
    };
    let p = a
        .holder_side(&s)
        .await?
        .update_access_policy(|p| {
            if let Some(m) = &mt {
                p.medecin_traitant = m.clone();
            }
            if let Some(c) = b.regulation_consent {
                p.regulation_consent = c;
            }
            if let Some(h) = b.hide_all {
                p.hide_all = h;
            }
            if let Some(o) = b.care_team_objection {
                p.care_team_objection = o;
            }
        })
        .await?;
    Ok(Json(policy_json(&p)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Block {
    professional: String,
}

/// AC-4: a blocked professional has no access whatever else says.
async fn block(
    State(s): State<AppState>,
    a: Authenticated,
    ValidJson(b): ValidJson<Block>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = check_rpps(&b.professional)?;
    let p = a
        .holder_side(&s)
        .await?
        .update_access_policy(|p| {
            if !p.blocked.contains(&id) {
                p.blocked.push(id.clone());
            }
        })
        .await?;
    Ok((StatusCode::CREATED, Json(policy_json(&p))))
}

async fn unblock(
    State(s): State<AppState>,
    a: Authenticated,
    Path(id): Path<String>,
) -> Result<Json<Value>, ApiError> {
    let id = check_rpps(&id)?;
    let p = a
        .holder_side(&s)
        .await?
        .update_access_policy(|p| p.blocked.retain(|b| *b != id))
        .await?;
    Ok(Json(policy_json(&p)))
}

#[derive(Deserialize)]
struct TraceQuery {
    before: Option<i64>,
    limit: Option<i64>,
    /// Only entries whose actor is of this kind (professional, establishment, app, ...).
    actor: Option<String>,
    /// Only allowed (true) or denied (false) attempts.
    allowed: Option<bool>,
    /// Only entries of this actor (an RPPS number, a FINESS, an app id...).
    who: Option<String>,
    /// Only entries made at or after this instant (RFC 3339), and before `to`.
    from: Option<String>,
    to: Option<String>,
}

fn instant(s: &Option<String>, name: &str) -> Result<Option<carnet_domain::Timestamp>, ApiError> {
    s.as_deref()
        .map(|v| {
            time::OffsetDateTime::parse(v, &time::format_description::well_known::Rfc3339)
                .map(carnet_domain::Timestamp::from_offset_date_time)
                .map_err(|_| {
                    ApiError::bad_request(format!(
                        "{name}: an RFC 3339 instant is expected, e.g. 2026-11-24T00:00:00Z"
                    ))
                })
        })
        .transpose()
}

/// AC-6: the holder sees every trace of their space, newest first.
async fn traces(
    State(s): State<AppState>,
    a: Authenticated,
    Query(q): Query<TraceQuery>,
) -> Result<axum::response::Response, ApiError> {
    let limit = q.limit.unwrap_or(50).clamp(1, 200);
    let period = match (instant(&q.from, "from")?, instant(&q.to, "to")?) {
        (None, None) => None,
        (f, t) => Some((
            f.unwrap_or(carnet_domain::Timestamp::from_micros(i64::MIN)),
            t.unwrap_or(carnet_domain::Timestamp::from_micros(i64::MAX)),
        )),
    };
    // AC-6, MI-2, DM-6: the history as this reader may see it, decided by the gate.
    let page = s
        .gate
        .history(a.session.acting_for, &a.actor(), q.before, period, limit)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let next = page.next_before;
    // The actor's kind and id as its JSON form has them, worked out only when filtered on.
    let actor_matches = |actor: &carnet_domain::access::Actor| {
        if q.actor.is_none() && q.who.is_none() {
            return true;
        }
        let v = serde_json::to_value(actor).unwrap_or_default();
        let kind = v.get("kind").and_then(|k| k.as_str());
        let id = v
            .get("id")
            .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_string));
        q.actor.as_deref().is_none_or(|want| kind == Some(want))
            && q.who.as_deref().is_none_or(|want| id.as_deref() == Some(want))
    };
    let items: Vec<TraceJson> = page
        .traces
        .iter()
        .filter(|t| actor_matches(&t.entry.actor) && q.allowed.is_none_or(|want| t.entry.allowed == want))
        .map(|t| TraceJson {
            seq: t.seq,
            at: t.at.to_rfc3339(),
            actor: &t.entry.actor,
            action: &t.entry.action,
            item: &t.entry.item,
            category: &t.entry.category,
            allowed: t.entry.allowed,
            reason: &t.entry.reason,
            emergency: t.entry.emergency,
            emergency_reason: &t.entry.purpose,
        })
        .collect();
    // Serialised from typed rows (no `Value` tree per trace), the members in the same order.
    let body = serde_json::to_string(&TracePage {
        traces: items,
        next_before: next,
    })
    .map_err(|_| ApiError::internal())?;
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )))
}

/// One trace as the history shows it (AC-6).
#[derive(serde::Serialize)]
struct TraceJson<'a> {
    seq: i64,
    at: String,
    actor: &'a carnet_domain::access::Actor,
    action: &'a carnet_domain::access::Action,
    item: &'a str,
    category: &'a Option<Category>,
    allowed: bool,
    reason: &'a carnet_domain::access::Reason,
    emergency: bool,
    emergency_reason: &'a Option<String>,
}

#[derive(serde::Serialize)]
struct TracePage<'a> {
    traces: Vec<TraceJson<'a>>,
    next_before: Option<i64>,
}
