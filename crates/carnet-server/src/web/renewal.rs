//! A new provisional activation code (LC-2: "valid 6 weeks and renewable online"), so that a
//! letter's code that expired — at the latest when the space opens on its own (LC-3) — is
//! never a dead end. The person gives the INS and the birth date; a new code goes by the
//! channel on file (e-mail, else a letter), never to the screen, and the page says the same
//! whether or not anything matched (AC-8). Rate-limited like the login.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::Ins;

use super::auth::{anonymous_form_page, with_status};
use super::csrf::PreSessionForm;
use super::i18n::fr_en as tr;
use super::password::birth_date;
use super::{Nav, WebError, alert, csrf_field, esc, french, notice, page};
use crate::api::auth::limit;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/activation/nouveau-code", get(renewal_page).post(renew))
}

const TITLE: &str = "Recevoir un nouveau code d'activation";

fn renewal_form(csrf: &str, ins: &str, birth: &str, message: &str) -> String {
    format!(
        "<h1>{}</h1>{}<p>{}</p>\
         <form method=\"post\" action=\"/activation/nouveau-code\" class=\"card\">{}\
         <p><label for=\"ins\">{}</label>\
         <input id=\"ins\" name=\"ins\" type=\"text\" inputmode=\"numeric\" autocomplete=\"off\" required value=\"{}\"></p>\
         <p><label for=\"naissance\">{}</label>\
         <input id=\"naissance\" name=\"naissance\" type=\"text\" inputmode=\"numeric\" autocomplete=\"bday\" \
         placeholder=\"JJ/MM/AAAA\" required value=\"{}\"></p>\
         <p><button type=\"submit\">{}</button></p></form>\
         <p><a href=\"/activation\">{}</a></p>",
        tr(TITLE, "Get a new activation code"),
        alert(message),
        tr(
            "Votre code provisoire est valable six semaines. S'il a expiré ou si vous l'avez perdu, indiquez \
             votre numéro de sécurité sociale et votre date de naissance : un nouveau code vous est envoyé \
             par e-mail, ou par courrier si nous n'avons pas d'adresse e-mail. Vous vous étiez opposé(e) à la \
             création de votre espace et vous le souhaitez maintenant ? Faites de même : l'espace ne s'ouvrira \
             que lorsque vous l'activerez avec ce code.",
            "Your provisional code is valid for six weeks. If it expired or you lost it, give your social \
             security number and birth date: a new code is sent to you by e-mail, or by post if we have no \
             e-mail address. You objected to your space and now want one? Do the same: the space opens only \
             when you activate it with this code.",
        ),
        csrf_field(csrf),
        tr(
            "Numéro de sécurité sociale (15 chiffres, INS)",
            "Social security number (15 digits, INS)"
        ),
        esc(ins),
        tr("Date de naissance (JJ/MM/AAAA)", "Birth date (DD/MM/YYYY)"),
        esc(birth),
        tr("Recevoir un nouveau code", "Send me a new code"),
        tr("Retour à l'activation", "Back to activation"),
    )
}

async fn renewal_page(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    anonymous_form_page(&s, &headers, TITLE, |csrf| renewal_form(csrf, "", "", "")).await
}

async fn renew(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    PreSessionForm { form, csrf, .. }: PreSessionForm,
) -> Result<Response, WebError> {
    let (typed_ins, typed_birth) = (form.get("ins"), form.get("naissance"));
    let again = |status: StatusCode, message: &str| {
        with_status(
            status,
            page(
                TITLE,
                &Nav::Anonymous,
                &renewal_form(&csrf, typed_ins, typed_birth, message),
            ),
        )
    };
    let compact: String = typed_ins.chars().filter(|c| !c.is_whitespace()).collect();
    let Ok(ins) = Ins::parse(&compact) else {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            tr(
                "Ce numéro n'est pas valide : il compte 15 chiffres, clé comprise, comme sur votre carte Vitale.",
                "This number is not valid: it has 15 digits, key included, as on your Carte Vitale.",
            ),
        ));
    };
    let Some(birth) = birth_date(typed_birth) else {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            tr(
                "Saisissez votre date de naissance sous la forme JJ/MM/AAAA, par exemple 12/05/1984.",
                "Enter your birth date as DD/MM/YYYY, for example 12/05/1984.",
            ),
        ));
    };
    let limited = async {
        limit(&s, &format!("renew:ip:{}", peer.ip()), 900, 10).await?;
        limit(&s, &format!("renew:ins:{compact}"), 86_400, 3).await
    };
    if let Err(e) = limited.await {
        return Ok(again(e.status, &french(&e)));
    }
    // The same answer whether or not anything matched (AC-8).
    if s.store
        .renew_activation_code(&ins, birth)
        .await
        .map_err(ApiError::from)?
        .is_some()
    {
        s.wake.notify_one();
    }
    Ok(page(
        TITLE,
        &Nav::Anonymous,
        &format!(
            "<h1>{}</h1>{}<p><a class=\"button\" href=\"/activation\">{}</a></p>",
            tr(TITLE, "Get a new activation code"),
            notice(tr(
                "Si ces informations correspondent à un espace à activer, un nouveau code vient de vous être \
                 envoyé : par e-mail dans quelques minutes, ou par courrier sous quelques jours si nous n'avons \
                 pas d'adresse e-mail. Il remplace le précédent et vaut six semaines.",
                "If this matches a space to activate, a new code has just been sent to you: by e-mail within \
                 minutes, or by post within days if we have no e-mail address. It replaces the previous one \
                 and is valid for six weeks.",
            )),
            tr("Activer mon espace", "Activate my space"),
        ),
    )
    .into_response())
}
