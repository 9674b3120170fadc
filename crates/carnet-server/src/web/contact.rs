//! The holder's contact data in "Mon espace" (ID-2, issue 32 journey 5): the e-mail address,
//! phone number and postal address on file, seen and corrected. A new e-mail address or phone
//! number takes effect only with the code sent to it (login codes and access notices must
//! never go where the holder cannot read them), and the former one is told; the postal
//! address is corrected at once. Identity traits come from the insurer and are not edited.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use carnet_store::outbox::Channel;
use serde_json::Value;

use super::i18n::fr_en as tr;
use super::{Form, Holder, WebError, alert, csrf_field, esc, french, notice, see_other};
use crate::api::auth::limit;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mon-espace/coordonnees", post(start))
        .route("/mon-espace/coordonnees/code", post(confirm))
        .route("/mon-espace/coordonnees/adresse", post(address))
}

/// The contact fields of the space's administrative data.
async fn on_file(s: &AppState, h: &Holder) -> Result<serde_json::Map<String, Value>, WebError> {
    let record = h.holder_side(s).await?.record().await.map_err(ApiError::from)?;
    Ok(serde_json::from_slice(&record.administrative).unwrap_or_default())
}

/// The section of "Mon espace": what is on file, and the forms to change it.
pub(super) async fn section(s: &AppState, h: &Holder, info: &str, error: &str) -> Result<String, WebError> {
    let admin = on_file(s, h).await?;
    let field = |k: &str| {
        admin
            .get(k)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string()
    };
    let none = tr("non renseigné", "not given");
    let shown = |v: String| if v.is_empty() { none.to_string() } else { v };
    let csrf = csrf_field(&h.csrf);
    Ok(format!(
        "<section aria-labelledby=\"coordonnees\"><h2 id=\"coordonnees\">{}</h2>{}{}\
         <dl class=\"meta\"><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl>\
         <form method=\"post\" action=\"/mon-espace/coordonnees\" class=\"card\">{csrf}\
         <p><label for=\"quoi\">{}</label><select id=\"quoi\" name=\"quoi\">\
         <option value=\"email\">{}</option><option value=\"telephone\">{}</option></select></p>\
         <p><label for=\"valeur\">{}</label><input id=\"valeur\" name=\"valeur\" type=\"text\" maxlength=\"200\" required></p>\
         <p class=\"hint\">{}</p>\
         <p><button type=\"submit\">{}</button></p></form>\
         <form method=\"post\" action=\"/mon-espace/coordonnees/adresse\" class=\"card\">{csrf}\
         <p><label for=\"adresse\">{}</label><textarea id=\"adresse\" name=\"adresse\" rows=\"3\" maxlength=\"300\">{}</textarea></p>\
         <p><button type=\"submit\" class=\"secondary\">{}</button></p></form></section>",
        tr("Vos coordonnées", "Your contact details"),
        notice(info),
        alert(error),
        tr("Adresse e-mail", "E-mail address"),
        esc(&shown(field("email"))),
        tr("Téléphone mobile", "Mobile phone"),
        esc(&shown(field("phone"))),
        tr("Adresse postale", "Postal address"),
        esc(&shown(field("address"))),
        tr("Changer", "Change"),
        tr("l'adresse e-mail", "the e-mail address"),
        tr("le numéro de téléphone mobile", "the mobile phone number"),
        tr("Nouvelle valeur", "New value"),
        tr(
            "Un code vous est envoyé à cette nouvelle adresse (ou par SMS à ce numéro) : elle ne remplace l'ancienne qu'une fois le code saisi.",
            "A code is sent to this new address (or by text message to this number): it replaces the former one only once the code is entered.",
        ),
        tr("Recevoir un code de confirmation", "Send me a confirmation code"),
        tr(
            "Adresse postale (pour les courriers)",
            "Postal address (for letters)"
        ),
        esc(&field("address")),
        tr("Enregistrer l'adresse postale", "Save the postal address"),
    ))
}

/// What is changed: its channel and its administrative field.
fn what(quoi: &str) -> Option<(Channel, &'static str)> {
    match quoi {
        "email" => Some((Channel::Email, "email")),
        "telephone" => Some((Channel::Sms, "phone")),
        _ => None,
    }
}

/// A new value as people type it, or what is wrong with it.
pub(crate) fn checked(channel: Channel, typed: &str) -> Result<String, &'static str> {
    let v = typed.trim();
    match channel {
        Channel::Email => {
            let ok = v.len() <= 200
                && !v.contains(char::is_whitespace)
                && v.split_once('@')
                    .is_some_and(|(a, d)| !a.is_empty() && d.contains('.') && !d.ends_with('.'));
            if ok {
                Ok(v.to_string())
            } else {
                Err(
                    "Cette adresse e-mail n'est pas valide : vérifiez-la (par exemple prenom.nom@exemple.fr).",
                )
            }
        }
        _ => {
            let digits: String = v.chars().filter(char::is_ascii_digit).collect();
            let allowed = v
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '.' | '-' | '+'));
            if allowed && (10..=15).contains(&digits.len()) && (v.starts_with('0') || v.starts_with('+')) {
                Ok(v.to_string())
            } else {
                Err("Ce numéro n'est pas valide : saisissez un numéro de mobile, par exemple 06 12 34 56 78.")
            }
        }
    }
}

fn code_page(h: &Holder, quoi: &str, value: &str, challenge: &str, error: &str) -> String {
    format!(
        "<h1>{}</h1>{}<p>{} <strong>{}</strong>. {}</p>\
         <form method=\"post\" action=\"/mon-espace/coordonnees/code\" class=\"card\">{}\
         <input type=\"hidden\" name=\"quoi\" value=\"{}\"><input type=\"hidden\" name=\"valeur\" value=\"{}\">\
         <input type=\"hidden\" name=\"challenge\" value=\"{}\">\
         <p><label for=\"code\">{}</label><input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" maxlength=\"6\" required></p>\
         <p><button type=\"submit\">{}</button></p></form>\
         <p><a href=\"/mon-espace#coordonnees\">{}</a></p>",
        tr("Confirmer vos coordonnées", "Confirm your contact details"),
        alert(error),
        tr("Un code vient d'être envoyé à", "A code has just been sent to"),
        esc(value),
        tr("Il est valable 10 minutes.", "It is valid for 10 minutes.",),
        csrf_field(&h.csrf),
        esc(quoi),
        esc(value),
        esc(challenge),
        tr("Code reçu", "Code received"),
        tr("Confirmer", "Confirm"),
        tr(
            "Annuler : garder les coordonnées actuelles",
            "Cancel: keep the current details"
        ),
    )
}

async fn again(s: &AppState, h: &Holder, status: StatusCode, error: &str) -> Result<Response, WebError> {
    super::space::render(
        s,
        h,
        status,
        super::space::Messages {
            contact_error: error,
            ..Default::default()
        },
    )
    .await
}

/// Sends the code to the new e-mail address or phone number.
async fn start(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let Some((channel, _)) = what(form.get("quoi")) else {
        return again(
            &s,
            &h,
            StatusCode::BAD_REQUEST,
            tr("Choisissez quoi changer.", "Choose what to change."),
        )
        .await;
    };
    let value = match checked(channel, form.get("valeur")) {
        Ok(v) => v,
        Err(e) => return again(&s, &h, StatusCode::BAD_REQUEST, e).await,
    };
    if let Err(e) = limit(&s, &format!("contact:{}", h.space()), 3600, 5).await {
        return again(&s, &h, e.status, &french(&e)).await;
    }
    let challenge = s
        .store
        .create_contact_challenge(h.space(), channel, &value)
        .await
        .map_err(ApiError::from)?;
    s.wake.notify_one();
    let html = code_page(&h, form.get("quoi"), &value, &challenge.to_string(), "");
    Ok(super::space::respond(&h, StatusCode::OK, &html))
}

/// The code: the new value replaces the former one, which is told.
async fn confirm(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let (quoi, typed) = (form.get("quoi"), form.get("valeur"));
    let Some((channel, key)) = what(quoi) else {
        return Err(ApiError::bad_request("quoi").into());
    };
    let value = checked(channel, typed).map_err(ApiError::bad_request)?;
    let wrong = tr(
        "Ce code n'est pas le bon, ou il a expiré : vérifiez-le, ou recommencez pour en recevoir un nouveau.",
        "This code is wrong or expired: check it, or start again to get a new one.",
    );
    let Ok(challenge) = form.get("challenge").parse::<uuid::Uuid>() else {
        let html = code_page(&h, quoi, &value, form.get("challenge"), wrong);
        return Ok(super::space::respond(&h, StatusCode::BAD_REQUEST, &html));
    };
    let side = h.holder_side(&s).await?;
    match confirm_new_value(&s, &side, challenge, form.get("code"), channel, key, &value).await {
        Ok(_) => {}
        Err(carnet_store::StoreError::Mismatch) => {
            let html = code_page(&h, quoi, &value, &challenge.to_string(), wrong);
            return Ok(super::space::respond(&h, StatusCode::BAD_REQUEST, &html));
        }
        Err(e) => return Err(ApiError::from(e).into()),
    }
    Ok(see_other("/mon-espace?ok=coordonnees#coordonnees"))
}

/// ID-2, for the pages and the JSON API: `value` replaces the `key` (`email`, `phone`) of the
/// space's contact data once `code` proves it was received there; the former one is told.
/// [`StoreError::Mismatch`](carnet_store::StoreError::Mismatch) for a wrong or expired code.
/// The contact data as now on file.
pub(crate) async fn confirm_new_value(
    s: &AppState,
    side: &carnet_store::space::HolderSide,
    challenge: uuid::Uuid,
    code: &str,
    channel: Channel,
    key: &str,
    value: &str,
) -> Result<serde_json::Map<String, Value>, carnet_store::StoreError> {
    let record = side.record().await?;
    let mut admin: serde_json::Map<String, Value> =
        serde_json::from_slice(&record.administrative).unwrap_or_default();
    let former = admin.get(key).and_then(Value::as_str).map(str::to_string);
    s.store
        .check_contact_code(
            side.holder(),
            challenge,
            code.trim(),
            channel,
            value,
            former.as_deref(),
        )
        .await?;
    admin.insert(key.to_string(), Value::String(value.to_string()));
    let bytes = serde_json::to_vec(&admin).map_err(|e| carnet_store::StoreError::Integrity(e.to_string()))?;
    side.update_administrative(&bytes).await?;
    s.wake.notify_one(); // the former address's notice
    Ok(admin)
}

/// The postal address, corrected at once (letters go there; nothing is sent to check it).
async fn address(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let typed = form.get("adresse").trim();
    if typed.chars().count() > 300 {
        return again(
            &s,
            &h,
            StatusCode::BAD_REQUEST,
            tr("Cette adresse est trop longue.", "This address is too long."),
        )
        .await;
    }
    let mut admin = on_file(&s, &h).await?;
    if typed.is_empty() {
        admin.remove("address");
    } else {
        admin.insert("address".into(), Value::String(typed.to_string()));
    }
    save(&s, &h, &admin).await?;
    Ok(see_other("/mon-espace?ok=coordonnees#coordonnees"))
}

/// Writes the corrected contact fields through the holder's side of the gate (S-1, traced).
async fn save(s: &AppState, h: &Holder, admin: &serde_json::Map<String, Value>) -> Result<(), WebError> {
    let bytes = serde_json::to_vec(admin).map_err(|_| ApiError::internal())?;
    h.holder_side(s)
        .await?
        .update_administrative(&bytes)
        .await
        .map_err(ApiError::from)?;
    Ok(())
}
