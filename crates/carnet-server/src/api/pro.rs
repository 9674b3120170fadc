//! The professionals' side (SPEC AU-2, AC-1..5, S-7): sessions of professionals who
//! authenticated strongly (Pro Santé Connect through `/auth/oidc/{provider}`, configured with
//! `audience = "professionals"`; in demo mode only, a demo login by RPPS number), finding a
//! patient's record by INS, declaring an emergency (bris de glace), notices, and the patient's
//! documents (`documents.rs`, mounted under `/api/v1/pro/patients/{holder}`).

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use carnet_domain::access::{CareTeam, ConsentForm, Reason};
use carnet_domain::{HolderId, Ins};
use carnet_store::directory::Professional;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::set_cookie;
use super::extract::ProAuthenticated;
use super::extract::ValidJson;
use crate::{ApiError, AppState};

pub const PRO_SESSION_COOKIE: &str = "__Host-carnet_pro";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/demo-login", post(demo_login))
        .route("/logout", post(logout))
        .route("/me", get(me))
        .route("/patients/lookup", post(lookup))
        .route("/patients/{holder}/emergency", post(emergency))
        .route("/patients/{holder}/care-team", post(care_team))
        .route("/patients/{holder}/consents", post(consent))
        .nest(
            "/patients/{holder}",
            super::documents::routes()
                .merge(super::profile::routes())
                .merge(super::messages::routes())
                .merge(super::agenda::routes())
                .merge(super::reimbursements::routes()),
        )
        .merge(super::messages::pro_routes())
}

/// Opens a professional session and answers with the cookie and the bearer token.
pub fn session_response(token: &str, p: &Professional, redirect: Option<&str>) -> Result<Response, ApiError> {
    let mut r = match redirect {
        Some(to) => {
            let mut r = StatusCode::SEE_OTHER.into_response();
            r.headers_mut().insert(
                header::LOCATION,
                header::HeaderValue::from_str(to).map_err(|_| ApiError::internal())?,
            );
            r
        }
        None => Json(json!({ "token": token, "professional": professional_json(p) })).into_response(),
    };
    set_cookie(
        &mut r,
        PRO_SESSION_COOKIE,
        token,
        "/",
        carnet_store::auth::SESSION_ABSOLUTE_SECONDS,
    )?;
    Ok(r)
}

fn professional_json(p: &Professional) -> Value {
    json!({
        "rpps": p.rpps,
        "family_name": p.family_name,
        "given_name": p.given_name,
        "profession": p.profession,
        "specialty": p.specialty,
        "role": p.role,
        "finess": p.finess,
        "organisation": p.organisation_name,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DemoLogin {
    rpps: String,
}

/// Demo mode only: log in as a professional of the demo directory without a card or Pro Santé
/// Connect. Outside demo mode this route does not exist (404).
async fn demo_login(
    State(s): State<AppState>,
    ValidJson(b): ValidJson<DemoLogin>,
) -> Result<Response, ApiError> {
    let (token, p) = demo_session(&s, &b.rpps).await?;
    session_response(&token, &p, None)
}

/// Demo mode only: a professional session for a professional of the directory (shared by the
/// JSON API and the web interface); 404 outside demo mode, 401 for an unknown RPPS.
pub(crate) async fn demo_session(s: &AppState, rpps: &str) -> Result<(String, Professional), ApiError> {
    if !s.settings.demo {
        return Err(ApiError::not_found());
    }
    let p = s
        .store
        .professional(rpps)
        .await?
        .ok_or_else(ApiError::unauthorized)?;
    let token = s.store.create_pro_session(&p.rpps).await?;
    Ok((token, p))
}

async fn logout(State(s): State<AppState>, a: ProAuthenticated) -> Result<Response, ApiError> {
    s.store.revoke_pro_session(&a.token).await?;
    let mut r = StatusCode::NO_CONTENT.into_response();
    set_cookie(&mut r, PRO_SESSION_COOKIE, "", "/", 0)?;
    Ok(r)
}

async fn me(State(s): State<AppState>, a: ProAuthenticated) -> Result<Json<Value>, ApiError> {
    let notices = s.store.pro_notices(&a.professional.rpps, 50).await?;
    Ok(Json(json!({
        "professional": professional_json(&a.professional),
        "notices": notices.iter().map(|n| json!({
            "at": n.at.to_rfc3339(), "kind": n.kind, "patient": n.holder,
        })).collect::<Vec<_>>(),
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Lookup {
    #[serde(default)]
    ins: Option<String>,
    /// Or the identity traits (issue 33), all four.
    #[serde(default)]
    birth_name: Option<String>,
    #[serde(default)]
    given_name: Option<String>,
    /// `YYYY-MM-DD`.
    #[serde(default)]
    birth_date: Option<String>,
    /// `female`, `male` or `unknown`.
    #[serde(default)]
    sex: Option<String>,
}

/// Finds a patient's record by INS (read from the Carte Vitale or the INSi service), or by
/// identity traits when the INS is not at hand. Only an open record is found; what it holds
/// is decided per request by the gate.
async fn lookup(
    State(s): State<AppState>,
    a: ProAuthenticated,
    ValidJson(b): ValidJson<Lookup>,
) -> Result<Json<Value>, ApiError> {
    let holder = match (b.ins, b.birth_name, b.given_name, b.birth_date, b.sex) {
        (Some(ins), None, None, None, None) => find_patient(&s, &a.professional, &ins).await?,
        (None, Some(birth_name), Some(first_given_name), Some(birth_date), Some(sex)) => {
            let traits = carnet_store::identity::Traits {
                birth_name,
                first_given_name,
                birth_date,
                sex,
            };
            find_patient_by_traits(&s, &a.professional, &traits).await?
        }
        _ => {
            return Err(ApiError::bad_request(
                "l'INS, ou les quatre traits : birth_name, given_name, birth_date, sex / the INS, or the \
                 four traits",
            ));
        }
    };
    Ok(Json(json!({ "patient": holder })))
}

/// The open record of the patient with these identity traits (shared with the web
/// interface): 404 for none, 409 when several people share them (the INS is needed).
pub(crate) async fn find_patient_by_traits(
    s: &AppState,
    p: &Professional,
    traits: &carnet_store::identity::Traits,
) -> Result<HolderId, ApiError> {
    use carnet_store::identity::TraitsLookup;
    if time::Date::parse(
        &traits.birth_date,
        &time::format_description::well_known::Iso8601::DATE,
    )
    .is_err()
        || !matches!(traits.sex.as_str(), "female" | "male" | "unknown")
        || traits.birth_name.trim().is_empty()
        || traits.first_given_name.trim().is_empty()
    {
        return Err(ApiError::bad_request(
            "traits incomplets : nom de naissance, premier prénom, date de naissance (AAAA-MM-JJ) et sexe \
             (female, male, unknown) / incomplete traits",
        ));
    }
    match s.gate.find_patient_by_traits(&p.actor(), traits).await? {
        TraitsLookup::Found(holder) => Ok(holder),
        TraitsLookup::Several => Err(ApiError::new(
            StatusCode::CONFLICT,
            "several",
            "plusieurs personnes ont ces traits : utilisez l'INS / several people share these traits: use the INS",
        )),
        TraitsLookup::None => Err(ApiError::not_found()),
    }
}

/// The open record of the patient with this INS (shared with the web interface); 404 for no
/// record or one that is not open. The lookup is traced and shows this professional whose
/// record it is for a day (`Gate::find_patient`, issue 33).
pub(crate) async fn find_patient(s: &AppState, p: &Professional, ins: &str) -> Result<HolderId, ApiError> {
    let ins = Ins::parse(ins).map_err(|e| ApiError::bad_request(e.to_string()))?;
    s.gate
        .find_patient(&p.actor(), &ins)
        .await?
        .ok_or_else(ApiError::not_found)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Emergency {
    reason: String,
}

/// AC-5, S-7: bris de glace. A reason is required; the access is bounded in time, traced as an
/// emergency and told at once to the holder and the médecin traitant.
async fn emergency(
    State(s): State<AppState>,
    a: ProAuthenticated,
    Path(holder): Path<String>,
    ValidJson(b): ValidJson<Emergency>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let holder: HolderId = holder.parse().map_err(|_| ApiError::not_found())?;
    let reason = b.reason.trim();
    if reason.is_empty() {
        return Err(ApiError::bad_request(
            "le motif de l'urgence est obligatoire / the reason of the emergency is required",
        ));
    }
    if reason.chars().count() > 500 {
        return Err(ApiError::bad_request(
            "motif trop long (500 caractères au plus) / reason too long",
        ));
    }
    let (d, until) = s
        .gate
        .declare_emergency(holder, &a.professional.actor(), reason)
        .await?;
    s.wake.notify_one();
    match until {
        Some(until) => Ok((
            StatusCode::CREATED,
            Json(json!({ "emergency": true, "until": until.to_rfc3339(), "reason": d.reason })),
        )),
        // Already authorised: nothing to open.
        None if d.allowed => Ok((
            StatusCode::OK,
            Json(json!({ "emergency": false, "reason": d.reason })),
        )),
        None => Err(ApiError::not_found()),
    }
}

/// A care team named in a request (AC-1b): `practice`, `establishment`, `coordination`,
/// `medico_social`.
pub(crate) fn parse_care_team(team: &str) -> Result<CareTeam, ApiError> {
    serde_json::from_value(Value::String(team.to_string())).map_err(|_| {
        ApiError::bad_request(
            "choisissez l'équipe de soins / team must be practice, establishment, coordination or medico_social",
        )
    })
}

/// Why an AC-1b declaration or consent was refused, in words a professional acts on: the
/// holder's objection and a block read alike (AC-8).
fn care_refusal(r: Reason, consent: bool) -> ApiError {
    let forbidden = |m: &str| ApiError::new(StatusCode::FORBIDDEN, "refused", m);
    match r {
        Reason::Blocked | Reason::CareTeamObjected => forbidden(
            "le patient s'oppose à cet accès : seul le patient peut vous autoriser, depuis son espace Carnet \
             / the patient objects to this access: only they can authorise you, from their Carnet space",
        ),
        Reason::ExpressConsentRequired => forbidden(
            "les médecins du travail et de sapeurs-pompiers n'accèdent au dossier qu'avec le consentement exprès \
             du patient, qu'il donne depuis son espace Carnet / occupational and fire-brigade doctors need the \
             patient's express consent, given from their space",
        ),
        Reason::NoGrant if consent => forbidden(
            "aucun professionnel de soins de l'annuaire n'a ce numéro RPPS : vérifiez-le \
             / no care professional of the directory has this RPPS",
        ),
        Reason::NoGrant => forbidden(
            "le médecin régulateur consulte le dossier par l'accès en urgence, si le patient l'a accepté \
             / the regulating doctor reads the record through the emergency access, if the patient agreed",
        ),
        _ => ApiError::not_found(),
    }
}

/// AC-1b: the declaration of a care relationship, shared by the API and the pages.
pub(crate) async fn declare_care_team(
    s: &AppState,
    p: &Professional,
    holder: HolderId,
    team: &str,
    episode: &str,
) -> Result<bool, ApiError> {
    let team = parse_care_team(team)?;
    let episode = episode.trim();
    if episode.is_empty() {
        return Err(ApiError::bad_request(
            "dites pour quelle prise en charge (l'épisode de soins) / the episode of care is required",
        ));
    }
    if episode.chars().count() > 200 {
        return Err(ApiError::bad_request(
            "épisode de soins trop long (200 caractères au plus) / episode too long",
        ));
    }
    let r = s
        .gate
        .declare_care_team(holder, &p.actor(), team, episode)
        .await?;
    s.wake.notify_one();
    r.map_err(|r| care_refusal(r, false))
}

/// AC-1b: a consent recorded for a professional (`rpps`, maybe oneself), shared by the API
/// and the pages.
pub(crate) async fn record_consent(
    s: &AppState,
    p: &Professional,
    holder: HolderId,
    rpps: &str,
    form: &str,
) -> Result<bool, ApiError> {
    let rpps = super::directory::check_rpps(rpps.trim())?;
    let form = match form {
        "oral" => ConsentForm::Oral,
        "written" | "ecrit" => ConsentForm::Written,
        _ => {
            return Err(ApiError::bad_request(
                "dites comment le patient a consenti (oral ou écrit) / form must be oral or written",
            ));
        }
    };
    let r = s.gate.record_consent(holder, &p.actor(), &rpps.0, form).await?;
    s.wake.notify_one();
    r.map_err(|r| care_refusal(r, true))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CareTeamBody {
    team: String,
    episode: String,
}

/// AC-1b: `POST /api/v1/pro/patients/{holder}/care-team` — 201 when the record opens, 200
/// when a grant was already in force (left as it was).
async fn care_team(
    State(s): State<AppState>,
    a: ProAuthenticated,
    Path(holder): Path<String>,
    ValidJson(b): ValidJson<CareTeamBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let holder: HolderId = holder.parse().map_err(|_| ApiError::not_found())?;
    let changed = declare_care_team(&s, &a.professional, holder, &b.team, &b.episode).await?;
    Ok(granted(changed))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConsentBody {
    rpps: String,
    form: String,
}

/// AC-1b: `POST /api/v1/pro/patients/{holder}/consents`.
async fn consent(
    State(s): State<AppState>,
    a: ProAuthenticated,
    Path(holder): Path<String>,
    ValidJson(b): ValidJson<ConsentBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let holder: HolderId = holder.parse().map_err(|_| ApiError::not_found())?;
    let changed = record_consent(&s, &a.professional, holder, &b.rpps, &b.form).await?;
    Ok(granted(changed))
}

fn granted(changed: bool) -> (StatusCode, Json<Value>) {
    if changed {
        (StatusCode::CREATED, Json(json!({ "granted": true })))
    } else {
        (
            StatusCode::OK,
            Json(json!({ "granted": false, "already_authorised": true })),
        )
    }
}
