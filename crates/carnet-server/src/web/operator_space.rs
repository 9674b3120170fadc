//! The operators' acts on one space, from the web (issue 32 journey 4, LC-2, LC-3, LC-5b,
//! LC-6): found by its INS, the space shows its state and since when — administrative facts,
//! never health data (AC-1) — and the acts its state allows: an objection or a request for a
//! space made by phone, a reported death, a suspension on serious malfunction or fraud and its
//! lifting, each suspension with the reason the holder is told (traced by the gate).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use carnet_domain::{Event, HolderId, Lifecycle};
use carnet_store::gate::Suspension;

use super::i18n::fr_en as tr;
use super::operator::OperatorSession;
use super::{
    Form, Nav, WebError, alert, check_csrf, csrf_field, csrf_token, esc, french, notice, page, when,
};
use crate::api::operator::OPERATOR_ID;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/operateur/espace", post(find))
        .route("/operateur/espace/acte", post(act))
}

/// The INS form of the operators' page.
pub(super) fn find_form(csrf: &str) -> String {
    format!(
        "<section aria-labelledby=\"espace\"><h2 id=\"espace\">{}</h2>\
         <form method=\"post\" action=\"/operateur/espace\" class=\"card\">{}\
         <p><label for=\"ins\">{}</label><input id=\"ins\" name=\"ins\" type=\"text\" inputmode=\"numeric\" \
         autocomplete=\"off\" maxlength=\"21\" aria-describedby=\"ins-aide\"></p>\
         <p id=\"ins-aide\" class=\"hint\">{}</p><p><button type=\"submit\">{}</button></p></form></section>",
        tr("Agir sur un espace", "Act on a space"),
        csrf_field(csrf),
        tr(
            "INS de la personne (NIR, 15 chiffres)",
            "The person's INS (NIR, 15 digits)"
        ),
        tr(
            "Pour une opposition ou une demande reçue par téléphone, un décès signalé, une suspension.",
            "For an objection or a request received by phone, a reported death, a suspension.",
        ),
        tr("Chercher l'espace", "Find the space"),
    )
}

/// The state of one space, in words.
fn state_words(l: &Lifecycle) -> String {
    let since = when(l.since());
    match l {
        Lifecycle::Informed { .. } => format!(
            "{} {since}",
            tr(
                "Informée, fenêtre d'opposition ouverte depuis",
                "Informed, objection window open since"
            )
        ),
        Lifecycle::Opposed { .. } => {
            format!(
                "{} {since}",
                tr("Opposition enregistrée", "Objection recorded on")
            )
        }
        Lifecycle::Open { .. } => format!(
            "{} {since}",
            tr("Ouvert, non activé, depuis", "Open, not activated, since")
        ),
        Lifecycle::Activated { .. } => format!("{} {since}", tr("Activé depuis", "Activated since")),
        Lifecycle::Closed { .. } => format!(
            "{} {since}",
            tr("Clos (archivé) depuis", "Closed (archived) since")
        ),
        Lifecycle::Deceased { .. } => format!("{} {since}", tr("Décès enregistré", "Death recorded on")),
        Lifecycle::Erased { .. } => format!("{} {since}", tr("Effacé", "Erased on")),
        Lifecycle::Suspended { at } => format!(
            "{} {since} ; {} {}",
            tr("Suspendu depuis", "Suspended since"),
            tr("fermeture prévue", "closing"),
            when(carnet_domain::lifecycle::suspension_end(*at)),
            // The holder may still object until then (LC-5b).
        ),
        Lifecycle::SuspensionContested { .. } => format!(
            "{} {since} : {}",
            tr(
                "Suspendu, fermeture contestée par la personne",
                "Suspended, closure contested by the person on"
            ),
            tr(
                "à vous de lever la suspension ou non",
                "yours to lift the suspension or not"
            ),
        ),
    }
}

/// One act's form: `event` with a reason field when it takes one; a death is confirmed first.
fn act_form(csrf: &str, holder: HolderId, event: &str, label: &str, reason: bool) -> String {
    let reason = if event == "death" {
        format!(
            "<p><input id=\"confirme-deces\" name=\"confirme\" type=\"checkbox\" value=\"1\" required> \
             <label for=\"confirme-deces\">{}</label></p>",
            tr(
                "Le décès est attesté (avis de l'Assurance Maladie ou acte de décès) : l'espace sera archivé.",
                "The death is attested (insurer's notice or death certificate): the space will be archived.",
            )
        )
    } else if reason {
        format!(
            "<p><label for=\"motif-{event}\">{}</label><textarea id=\"motif-{event}\" name=\"motif\" rows=\"2\" maxlength=\"500\" required></textarea></p>",
            tr("Motif (communiqué à la personne)", "Reason (told to the person)")
        )
    } else {
        String::new()
    };
    format!(
        "<form method=\"post\" action=\"/operateur/espace/acte\" class=\"card\">{}\
         <input type=\"hidden\" name=\"espace\" value=\"{holder}\"><input type=\"hidden\" name=\"acte\" value=\"{event}\">\
         {reason}<p><button type=\"submit\">{}</button></p></form>",
        csrf_field(csrf),
        esc(label)
    )
}

async fn space_page(
    s: &AppState,
    op: &OperatorSession,
    holder: HolderId,
    info: &str,
    error: &str,
) -> Result<Response, WebError> {
    let l = s.store.lifecycle(holder).await.map_err(ApiError::from)?;
    let csrf = csrf_token(s, op.token()).await?;
    let mut acts = String::new();
    let mut add = |event: &str, label: &str, reason: bool| {
        acts.push_str(&act_form(&csrf, holder, event, label, reason))
    };
    match l {
        Lifecycle::Informed { .. } => {
            add(
                "oppose",
                tr(
                    "Enregistrer son opposition (reçue par téléphone ou courrier)",
                    "Record their objection (by phone or letter)",
                ),
                false,
            );
            add("death", tr("Enregistrer son décès", "Record their death"), false);
        }
        Lifecycle::Opposed { .. } => {
            add(
                "request_space",
                tr(
                    "La personne demande finalement un espace",
                    "The person now asks for a space",
                ),
                false,
            );
        }
        Lifecycle::Open { .. } | Lifecycle::Activated { .. } => {
            add(
                "suspend",
                tr(
                    "Suspendre l'espace (dysfonctionnement grave ou fraude)",
                    "Suspend the space (serious malfunction or fraud)",
                ),
                true,
            );
            add("death", tr("Enregistrer son décès", "Record their death"), false);
        }
        Lifecycle::Suspended { .. } | Lifecycle::SuspensionContested { .. } => {
            add(
                "lift_suspension",
                tr("Lever la suspension", "Lift the suspension"),
                true,
            );
        }
        Lifecycle::Closed { .. } => {
            add("death", tr("Enregistrer son décès", "Record their death"), false);
        }
        Lifecycle::Deceased { .. } | Lifecycle::Erased { .. } => {}
    }
    if acts.is_empty() {
        acts = format!(
            "<p>{}</p>",
            tr(
                "Aucun acte possible dans cet état.",
                "No act is possible in this state."
            )
        );
    }
    let body = format!(
        "<p><a href=\"/operateur\">{}</a></p><h1>{}</h1>{}{}<p><strong>{}</strong></p>\
         <p class=\"hint\">{}</p><section aria-labelledby=\"actes\"><h2 id=\"actes\">{}</h2>{acts}</section>",
        tr("← Espace opérateur", "← Operators"),
        tr("Un espace", "A space"),
        notice(info),
        alert(error),
        esc(&state_words(&l)),
        tr(
            "Vous voyez l'état de l'espace, jamais son contenu. Une suspension et sa levée figurent dans l'historique de la personne, avec leur motif, et lui sont écrites.",
            "You see the space's state, never its content. A suspension and its lifting are in the person's history, with their reason, and written to them.",
        ),
        tr("Actes possibles", "Possible acts"),
    );
    let mut r = page("Espace opérateur", &Nav::Anonymous, &body).into_response();
    if !error.is_empty() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

async fn find(State(s): State<AppState>, op: OperatorSession, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    check_csrf(&s, op.token(), &form).await?;
    let typed: String = form.get("ins").chars().filter(|c| !c.is_whitespace()).collect();
    let ins = match carnet_domain::Ins::parse(&typed) {
        Ok(ins) => ins,
        Err(_) => {
            return super::operator::status_page(
                &s,
                &op,
                tr(
                    "Ce numéro n'est pas un INS valable : vérifiez les 15 chiffres (la clé comprise).",
                    "This is not a valid INS: check the 15 digits (key included).",
                ),
                "",
            )
            .await;
        }
    };
    match s.store.find_by_ins(&ins).await.map_err(ApiError::from)? {
        Some(holder) => space_page(&s, &op, holder, "", "").await,
        None => {
            super::operator::status_page(
                &s,
                &op,
                tr(
                    "Aucun espace n'a été créé pour cet INS.",
                    "No space was created for this INS.",
                ),
                "",
            )
            .await
        }
    }
}

async fn act(State(s): State<AppState>, op: OperatorSession, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    check_csrf(&s, op.token(), &form).await?;
    let holder: HolderId = form
        .get("espace")
        .parse()
        .map_err(|_| WebError::from(ApiError::not_found()))?;
    let reason = form.get("motif").trim();
    let done = match form.get("acte") {
        "oppose" => s.store.transition(holder, Event::Oppose).await.map(|_| ()),
        "request_space" => s.store.transition(holder, Event::RequestSpace).await.map(|_| ()),
        "death" if form.get("confirme") != "1" => {
            return space_page(
                &s,
                &op,
                holder,
                "",
                tr(
                    "Cochez la case qui atteste le décès : rien n'a été enregistré.",
                    "Tick the box attesting the death: nothing was recorded.",
                ),
            )
            .await;
        }
        "death" => s.store.transition(holder, Event::Death).await.map(|_| ()),
        act @ ("suspend" | "lift_suspension") => {
            if reason.is_empty() {
                return space_page(
                    &s,
                    &op,
                    holder,
                    "",
                    tr(
                        "Indiquez le motif : il est écrit à la personne.",
                        "Give the reason: it is written to the person.",
                    ),
                )
                .await;
            }
            let decision = if act == "suspend" {
                Suspension::Suspend
            } else {
                Suspension::Lift
            };
            s.gate
                .operator_suspension(holder, OPERATOR_ID, decision, reason)
                .await
                .map(|_| ())
        }
        _ => return Err(ApiError::not_found().into()),
    };
    match done {
        Ok(()) => {
            s.wake.notify_one();
            space_page(&s, &op, holder, tr("C'est fait.", "Done."), "").await
        }
        Err(carnet_store::StoreError::Transition(_)) => {
            space_page(
                &s,
                &op,
                holder,
                "",
                tr(
                    "Cet acte n'est pas possible dans l'état où est l'espace (il a peut-être changé entre-temps).",
                    "This act is not possible in the space's state (it may have changed meanwhile).",
                ),
            )
            .await
        }
        Err(e @ carnet_store::StoreError::Invalid(_)) => {
            space_page(&s, &op, holder, "", &french(&ApiError::from(e))).await
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}
