//! Notification preferences (e-mail and/or SMS; the messages carry no health data) and the
//! recent notices of the space in plain words.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_store::outbox::{MessageLanguage, NotificationPreferences};
use serde::Deserialize;

use super::history::{Whose, describe, events_list};
use super::i18n::{fr_en, t};
use super::{Form, Holder, Nav, WebError, csrf_field, notice, page, see_other};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/notifications", get(show).post(save))
}

#[derive(Deserialize)]
struct Flash {
    ok: Option<String>,
}

fn checked(on: bool) -> &'static str {
    if on { " checked" } else { "" }
}

async fn show(State(s): State<AppState>, h: Holder, Query(f): Query<Flash>) -> Result<Response, WebError> {
    let p = h
        .holder_side(&s)
        .await?
        .notification_preferences()
        .await
        .map_err(ApiError::from)?;
    // AC-6, MI-2, DM-6: the notices as this reader may see them (the gate decides).
    let notices = s
        .gate
        .notices(h.space(), &h.actor(), None, 20)
        .await
        .map_err(ApiError::from)?
        .map(|p| p.traces)
        .unwrap_or_default();
    let lines = describe(&s, &notices, &Whose::of(&h)).await?;
    let none = format!("<p>{}</p>", fr_en("Aucune notification.", "No notification."));
    let list = events_list("ul", &lines, &none);
    let body = format!(
        "<h1>{}</h1>{}\
         <form method=\"post\" action=\"/notifications\" class=\"card\">{}\
         <fieldset><legend>{}</legend>\
         <p><input id=\"email\" name=\"email\" type=\"checkbox\" value=\"1\"{}> <label for=\"email\">{}</label></p>\
         <p><input id=\"sms\" name=\"sms\" type=\"checkbox\" value=\"1\"{}> <label for=\"sms\">{}</label></p>\
         </fieldset><p class=\"hint\">{}</p>\
         <fieldset><legend>{}</legend>\
         <p><input id=\"langue-fr\" name=\"langue\" type=\"radio\" value=\"fr\"{}> <label for=\"langue-fr\" lang=\"fr\">français</label></p>\
         <p><input id=\"langue-en\" name=\"langue\" type=\"radio\" value=\"en\"{}> <label for=\"langue-en\" lang=\"en\">English</label></p>\
         </fieldset><p class=\"hint\">{}</p>\
         <p><button type=\"submit\">{}</button></p></form>\
         <section aria-labelledby=\"recent\"><h2 id=\"recent\">{}</h2>{list}</section>",
        t("notif.title"),
        notice(if f.ok.is_some() {
            fr_en(
                "Vos préférences ont été enregistrées.",
                "Your preferences are saved.",
            )
        } else {
            ""
        }),
        csrf_field(&h.csrf),
        fr_en(
            "Être prévenu·e de chaque accès et de chaque nouveau document",
            "Be told of every access and every new document"
        ),
        checked(p.email),
        fr_en("par e-mail", "by e-mail"),
        checked(p.sms),
        fr_en("par SMS", "by text message"),
        fr_en(
            "Ces messages ne contiennent aucune donnée de santé : ils vous invitent à ouvrir votre espace. \
             Les notifications restent toujours visibles ici.",
            "These messages hold no health data: they invite you to open your space. Notifications \
             always stay visible here."
        ),
        fr_en(
            "Langue de vos e-mails et SMS",
            "Language of your e-mails and text messages"
        ),
        checked(p.language == MessageLanguage::Fr),
        checked(p.language == MessageLanguage::En),
        fr_en(
            "Les courriers postaux restent en français.",
            "Letters sent by post stay in French."
        ),
        fr_en("Enregistrer", "Save"),
        t("notif.recent"),
    );
    Ok(page(
        "Notifications",
        &Nav::Holder {
            h: &h,
            current: "/notifications",
        },
        &body,
    )
    .into_response())
}

async fn save(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let prefs = NotificationPreferences {
        email: form.get("email") == "1",
        sms: form.get("sms") == "1",
        language: MessageLanguage::from_tag(form.get("langue")),
    };
    h.holder_side(&s)
        .await?
        .set_notification_preferences(prefs)
        .await
        .map_err(ApiError::from)?;
    Ok(see_other("/notifications?ok=1"))
}
