//! The operators' page (issue 7, point 3): roster and directory imports (spaces by state, the
//! directory's size), the jobs (lifecycle backlog, outbox, agenda reminders), the trace log's
//! checkpoints and an on-demand verification of every chain (AC-7). Aggregates only: operators
//! see nothing about a holder (AC-1). The operator token opens it; it is kept in a `__Host-`
//! cookie (HttpOnly, Secure, SameSite) for the visit, compared in constant time.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::i18n::fr_en as tr;
use super::{
    Form, Nav, WebError, alert, check_csrf, check_pre_session, csrf_field, csrf_token, esc, notice, page,
    pre_session, see_other, set_pre_session, when,
};
use crate::api::auth::{cookie, set_cookie};
use crate::{ApiError, AppState};

const OPERATOR_COOKIE: &str = "__Host-carnet_operator";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/operateur", get(show))
        .route("/operateur/connexion", post(login))
        .route("/operateur/verification", post(verify))
        .route("/operateur/deconnexion", post(logout))
}

/// An operator with the token in their cookie.
pub struct OperatorSession {
    token: String,
}

impl OperatorSession {
    /// What the operator's forms are bound to (anti-CSRF).
    pub(super) fn token(&self) -> &str {
        &self.token
    }
}

impl FromRequestParts<AppState> for OperatorSession {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, WebError> {
        match cookie(&parts.headers, OPERATOR_COOKIE) {
            Some(t) if s.is_operator_token(t) => Ok(OperatorSession { token: t.to_string() }),
            _ => Err(WebError::new(
                StatusCode::UNAUTHORIZED,
                "Connectez-vous avec le jeton d'opérateur.",
            )),
        }
    }
}

fn login_body(csrf: &str, message: &str) -> String {
    let o0 = tr("Espace opérateur", "Operators");
    let o1 = tr("Jeton d'opérateur", "Operator token");
    let o2 = tr("Se connecter", "Log in");
    let o3 = tr("Le jeton est dans", "The token is in");
    let o4 = tr(
        "du répertoire de données, ou dans la configuration :",
        "in the data directory, or in the configuration:",
    );
    format!(
        "<h1>{o0}</h1>{}<form method=\"post\" action=\"/operateur/connexion\" class=\"card\">{}\
         <p><label for=\"jeton\">{o1}</label><br><input id=\"jeton\" name=\"jeton\" type=\"password\" autocomplete=\"off\" required></p>\
         <p><button type=\"submit\">{o2}</button></p></form>\
         <p class=\"hint\">{o3} <code>operator.token</code> {o4} <code>operator_token</code>.</p>",
        alert(message),
        csrf_field(csrf),
    )
}

async fn show(
    State(s): State<AppState>,
    headers: HeaderMap,
    op: Result<OperatorSession, WebError>,
) -> Result<Response, WebError> {
    match op {
        Ok(op) => status_page(&s, &op, "", "").await,
        Err(_) => {
            let (secret, fresh) = pre_session(&headers)?;
            let csrf = csrf_token(&s, &secret).await?;
            let mut r = page("Espace opérateur", &Nav::Anonymous, &login_body(&csrf, "")).into_response();
            set_pre_session(&mut r, fresh)?;
            Ok(r)
        }
    }
}

async fn login(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    let secret = check_pre_session(&s, &headers, &form).await?;
    let token = form.get("jeton").trim().to_string();
    if !s.is_operator_token(&token) {
        let csrf = csrf_token(&s, &secret).await?;
        let mut r = page(
            "Espace opérateur",
            &Nav::Anonymous,
            &login_body(
                &csrf,
                tr(
                    "Ce jeton n'est pas celui de ce service.",
                    "This is not this service's token.",
                ),
            ),
        )
        .into_response();
        *r.status_mut() = StatusCode::UNAUTHORIZED;
        return Ok(r);
    }
    let mut r = see_other("/operateur");
    set_cookie(&mut r, OPERATOR_COOKIE, &token, "/", 8 * 3600)?;
    Ok(r)
}

async fn logout(State(s): State<AppState>, op: OperatorSession, body: Bytes) -> Result<Response, WebError> {
    check_csrf(&s, &op.token, &Form::parse(&body)).await?;
    let mut r = see_other("/operateur");
    set_cookie(&mut r, OPERATOR_COOKIE, "", "/", 0)?;
    Ok(r)
}

/// AC-7: verifies every chain and the checkpoints now, and shows the outcome.
async fn verify(State(s): State<AppState>, op: OperatorSession, body: Bytes) -> Result<Response, WebError> {
    check_csrf(&s, &op.token, &Form::parse(&body)).await?;
    let r = s.store.verify_traces().await.map_err(ApiError::from)?;
    if r.problems.is_empty() {
        let ok = if super::i18n::locale() == super::i18n::Locale::En {
            format!(
                "Access log verified: {} chains, {} traces, {} signed checkpoints, no anomaly.",
                r.holders, r.entries, r.checkpoints
            )
        } else {
            format!(
                "Journal des accès vérifié : {} chaînes, {} traces, {} points de contrôle signés, aucune anomalie.",
                r.holders, r.entries, r.checkpoints
            )
        };
        status_page(&s, &op, "", &ok).await
    } else {
        let bad = format!(
            "Le journal des accès présente {} anomalie(s) : {}",
            r.problems.len(),
            r.problems.iter().take(5).cloned().collect::<Vec<_>>().join(" ; ")
        );
        status_page(&s, &op, &bad, "").await
    }
}

fn state_label(state: &str) -> &'static str {
    match state {
        "informed" => tr(
            "informés (fenêtre d'opposition en cours)",
            "informed (objection window open)",
        ),
        "opposed" => tr("opposition enregistrée", "objected"),
        "open" => tr("ouverts, non activés", "open, not activated"),
        "activated" => tr("activés", "activated"),
        "closed" => tr("clos (archivés)", "closed (archived)"),
        "deceased" => tr("décès (archivés)", "deceased (archived)"),
        "erased" => tr("effacés (pierre tombale)", "erased (tombstone)"),
        "suspended" => tr(
            "suspendus (fermeture dans 6 semaines sans opposition)",
            "suspended (closed after 6 weeks without objection)",
        ),
        "suspension_contested" => tr(
            "suspendus, fermeture contestée (à décider)",
            "suspended, closure contested (to decide)",
        ),
        _ => tr("autre", "other"),
    }
}

pub(super) async fn status_page(
    s: &AppState,
    op: &OperatorSession,
    error: &str,
    info: &str,
) -> Result<Response, WebError> {
    let st = s.store.operations_status().await.map_err(ApiError::from)?;
    let csrf = csrf_token(s, &op.token).await?;
    let total: i64 = st.spaces_by_state.iter().map(|(_, n)| n).sum();
    let states: String = st
        .spaces_by_state
        .iter()
        .map(|(state, n)| {
            format!(
                "<tr><th scope=\"row\">{}</th><td>{n}</td></tr>",
                state_label(state)
            )
        })
        .collect();
    let checkpoint = match &st.latest_checkpoint {
        Some(c) => format!(
            "{} {} ({} {}), {}. {} <code>{}</code>.",
            tr(
                "Dernier point de contrôle signé : n°",
                "Newest signed checkpoint: no."
            ),
            c.number,
            c.size,
            tr("chaînes", "chains"),
            esc(&when(c.at)),
            tr("Racine", "Root"),
            esc(&c.root)
        ),
        None => tr("Aucun point de contrôle encore.", "No checkpoint yet.").to_string(),
    };
    let english = super::i18n::locale() == super::i18n::Locale::En;
    let body = if english {
        format!(
            "<h1>Operators</h1>{}{}\
         <section aria-labelledby=\"imports\"><h2 id=\"imports\">Imports</h2>\
         <table><caption>Spaces ({total} in all; {} created in the last 7 days by the roster import)</caption>\
         <thead><tr><th scope=\"col\">State</th><th scope=\"col\">Number</th></tr></thead><tbody>{states}</tbody></table>\
         <p>Directory: {} professionals, {} establishments.</p></section>\
         <section aria-labelledby=\"jobs\"><h2 id=\"jobs\">Background jobs</h2><ul>\
         <li>Lifecycle: {} automatic transition(s) due and waiting (0 in normal operation).</li>\
         <li>Outgoing messages: {} waiting, {} being retried after a failure, {} sent in the last 24 hours.</li>\
         <li>Agenda reminders: {} due, not yet queued.</li></ul></section>\
         <section aria-labelledby=\"traces\"><h2 id=\"traces\">Access log</h2>\
         <p>{} traces; {checkpoint} {} chain(s) moved since.</p>\
         <form method=\"post\" action=\"/operateur/verification\">{}<button type=\"submit\">Verify the whole log now</button></form></section>{}\
         <form method=\"post\" action=\"/operateur/deconnexion\">{}<button type=\"submit\" class=\"secondary\">Log out</button></form>",
            alert(error),
            notice(info),
            st.spaces_created_7d,
            st.professionals,
            st.organisations,
            st.lifecycle_due,
            st.outbox_waiting,
            st.outbox_retrying,
            st.outbox_sent_24h,
            st.reminders_due,
            st.traces,
            st.chains_pending,
            csrf_field(&csrf),
            super::operator_space::find_form(&csrf),
            csrf_field(&csrf),
        )
    } else {
        format!(
            "<h1>Espace opérateur</h1>{}{}\
         <section aria-labelledby=\"imports\"><h2 id=\"imports\">Imports</h2>\
         <table><caption>Espaces ({total} au total ; {} créés ces 7 derniers jours par l'import du référentiel)</caption>\
         <thead><tr><th scope=\"col\">État</th><th scope=\"col\">Nombre</th></tr></thead><tbody>{states}</tbody></table>\
         <p>Annuaire : {} professionnels, {} établissements.</p></section>\
         <section aria-labelledby=\"jobs\"><h2 id=\"jobs\">Tâches de fond</h2><ul>\
         <li>Cycle de vie : {} transition(s) automatique(s) échue(s) en attente (0 en régime normal).</li>\
         <li>Messages sortants : {} en attente, {} en nouvelle tentative après échec, {} envoyés ces 24 heures.</li>\
         <li>Rappels de l'agenda : {} échu(s) non encore mis en file.</li></ul></section>\
         <section aria-labelledby=\"traces\"><h2 id=\"traces\">Journal des accès</h2>\
         <p>{} traces ; {checkpoint} {} chaîne(s) modifiée(s) depuis.</p>\
         <form method=\"post\" action=\"/operateur/verification\">{}<button type=\"submit\">Vérifier tout le journal maintenant</button></form></section>{}\
         <form method=\"post\" action=\"/operateur/deconnexion\">{}<button type=\"submit\" class=\"secondary\">Se déconnecter</button></form>",
            alert(error),
            notice(info),
            st.spaces_created_7d,
            st.professionals,
            st.organisations,
            st.lifecycle_due,
            st.outbox_waiting,
            st.outbox_retrying,
            st.outbox_sent_24h,
            st.reminders_due,
            st.traces,
            st.chains_pending,
            csrf_field(&csrf),
            super::operator_space::find_form(&csrf),
            csrf_field(&csrf),
        )
    };
    Ok(page("Espace opérateur", &Nav::Anonymous, &body).into_response())
}
