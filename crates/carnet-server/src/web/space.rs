//! Managing the space (ID-3, LC-5): links to the exports of the JSON API (`/api/v1/me/export`,
//! `/api/v1/me/export.html`), and closing the space in two POSTs, as `api::me` does: the first
//! checks the closing is possible and issues a confirmation bound to this session and space,
//! the second checks it and closes.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::i18n::t;
use super::{Form, Holder, Nav, WebError, alert, csrf_field, esc, page, see_other};
use crate::api::auth::{SESSION_COOKIE, set_cookie};
use crate::api::me::close_binding_of;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/mon-espace", get(show))
        .route("/mon-espace/cles/supprimer", post(remove_passkey))
        .route("/mon-espace/fermer", post(close_request))
        .route("/mon-espace/fermer/confirmer", post(close_confirm))
}

pub(super) fn respond(h: &Holder, status: StatusCode, body: &str) -> Response {
    let mut r = page(
        if h.own_space() {
            "Mon espace"
        } else {
            "Gérer cet espace"
        },
        &Nav::Holder {
            h,
            current: "/mon-espace",
        },
        body,
    )
    .into_response();
    *r.status_mut() = status;
    r
}

/// The person's passkeys (theirs, whatever space they act in), each removable; the button that
/// creates one is shown by `static/passkey.js` only where WebAuthn works.
fn passkeys_section(h: &Holder, keys: &[carnet_store::passkeys::Passkey], info: &str) -> String {
    use super::i18n::fr_en as tr;
    let day = |micros: i64| super::iso_day(&carnet_domain::Timestamp::from_micros(micros).to_rfc3339());
    let items: String = keys
        .iter()
        .map(|k| {
            let used = k
                .last_used_at
                .map(|u| format!(", {} {}", tr("utilisée le", "last used"), day(u)))
                .unwrap_or_default();
            format!(
                "<li>{} {}{used} <form method=\"post\" action=\"/mon-espace/cles/supprimer\" class=\"inline\">{}\
                 <input type=\"hidden\" name=\"id\" value=\"{}\"><button type=\"submit\" class=\"link\">{}</button></form></li>",
                tr("Clé créée le", "Key created"),
                day(k.created_at),
                csrf_field(&h.csrf),
                esc(&k.credential_id),
                tr("Supprimer", "Remove"),
            )
        })
        .collect();
    let list = if keys.is_empty() {
        format!(
            "<p>{}</p>",
            tr("Aucune clé d'accès pour l'instant.", "No passkey yet.")
        )
    } else {
        format!("<ul>{items}</ul>")
    };
    format!(
        "<section aria-labelledby=\"keys\"><h2 id=\"keys\">{}</h2>{}<p>{}</p>{list}\
         <div hidden><p><button type=\"button\" id=\"passkey-register\">{}</button></p></div>\
         <p id=\"passkey-status\" role=\"status\"></p></section>",
        tr("Clés d'accès", "Passkeys"),
        super::notice(info),
        tr(
            "Une clé d'accès, enregistrée sur votre téléphone ou votre ordinateur et déverrouillée par votre \
             empreinte, votre visage ou votre code, remplace le mot de passe et le code reçu.",
            "A passkey, kept on your phone or computer and unlocked by your fingerprint, face or PIN, \
             replaces the password and the code you receive.",
        ),
        tr(
            "Créer une clé d'accès sur cet appareil",
            "Create a passkey on this device"
        ),
    )
}

fn export_section(h: &Holder) -> String {
    format!(
        "<h1>{}</h1>\
         <section aria-labelledby=\"export\"><h2 id=\"export\">{}</h2>\
         <p>{}</p><ul>\
         <li><a href=\"/mon-espace/export\">{}</a></li>\
         <li><a href=\"/api/v1/me/export.zip\" download>{}</a></li>\
         <li><a href=\"/api/v1/me/export\" download>{}</a></li></ul></section>{}",
        if h.own_space() {
            t("space.title")
        } else {
            t("space.title_other")
        },
        if h.own_space() {
            t("space.export")
        } else {
            t("space.export_other")
        },
        match super::i18n::locale() {
            super::i18n::Locale::Fr => format!(
                "Une copie de tout ce que contient l'espace {} : identité, documents, profil médical, \
                 mesures, messages, agenda, remboursements, autorisations et historique des accès.",
                esc(&super::de(&h.space_name))
            ),
            super::i18n::Locale::En => format!(
                "A copy of everything in the space of {}: identity, documents, medical profile, \
                 measurements, messages, agenda, reimbursements, authorisations and access history.",
                esc(&h.space_name)
            ),
        },
        super::i18n::fr_en(
            "Copie lisible (page à imprimer ou enregistrer en PDF)",
            "Readable copy (a page to print or save as PDF)"
        ),
        super::i18n::fr_en(
            "Archive complète (ZIP) : la copie lisible, les documents et pièces jointes en fichiers, les \
             données en JSON",
            "Full archive (ZIP): the readable copy, the documents and attachments as files, the data in \
             JSON"
        ),
        super::i18n::fr_en(
            "Données seules au format JSON (documents inclus)",
            "The data alone, as JSON (documents included)"
        ),
        // MI-5: the person's own carer page (the code they were given).
        if h.own_space() {
            format!(
                "<section aria-labelledby=\"aider\"><h2 id=\"aider\">{}</h2><p>{}</p><p><a href=\"/aider\">{}</a></p></section>",
                super::i18n::fr_en("Aider un proche", "Help someone close"),
                super::i18n::fr_en(
                    "Un proche vous a donné un code d'invitation pour consulter ses documents ? Saisissez-le ici.",
                    "Someone close gave you an invitation code to read their documents? Type it here.",
                ),
                super::i18n::fr_en("Aider un proche", "Help someone close"),
            )
        } else {
            String::new()
        },
    )
}

fn close_section(h: &Holder, error: &str) -> String {
    let csrf = csrf_field(&h.csrf);
    format!(
        "<section aria-labelledby=\"close\"><h2 id=\"close\">{}</h2>{}\
         <p>{}</p>\
         <form method=\"post\" action=\"/mon-espace/fermer\" class=\"card\">{csrf}\
         <p><button type=\"submit\" class=\"danger\">{}</button></p></form></section>",
        if h.own_space() {
            t("space.close")
        } else {
            t("space.close_other")
        },
        alert(error),
        super::i18n::fr_en(
            "Si vous fermez cet espace, les professionnels n'y auront plus accès. Les données sont \
             conservées 10 ans, pendant lesquels l'espace peut être rouvert avec tout ce qu'il contient, \
             puis supprimées. Vous pouvez aussi demander leur suppression définitive : elle est faite \
             30 jours après, le temps de changer d'avis.",
            "If you close this space, professionals will no longer have access to it. The data is kept \
             for 10 years, during which the space can be reopened with everything it holds, then \
             deleted. You can also ask for it to be deleted for good: it is done 30 days later, time to \
             change your mind."
        ),
        super::i18n::fr_en("Fermer cet espace…", "Close this space…"),
    )
}

fn body(h: &Holder, error: &str) -> String {
    format!("{}{}", export_section(h), close_section(h, error))
}

async fn show(
    State(s): State<AppState>,
    h: Holder,
    axum::extract::RawQuery(q): axum::extract::RawQuery,
) -> Result<Response, WebError> {
    use super::i18n::fr_en as tr;
    let m = match q.as_deref() {
        Some("ok=cle") => Messages {
            keys: tr("La clé d'accès est créée.", "The passkey is created."),
            ..Messages::default()
        },
        Some("ok=cle-supprimee") => Messages {
            keys: tr("La clé d'accès est supprimée.", "The passkey is removed."),
            ..Messages::default()
        },
        Some("ok=motdepasse") => Messages {
            password: tr(
                "Votre mot de passe est changé. Vos autres appareils sont déconnectés ; un message vous le confirme.",
                "Your password is changed. Your other devices are logged out; a message confirms it.",
            ),
            ..Messages::default()
        },
        Some("ok=totp") => Messages {
            totp: tr(
                "L'application d'authentification est en place : vos prochains codes de connexion viendront d'elle.",
                "The authenticator app is set up: your next login codes will come from it.",
            ),
            ..Messages::default()
        },
        Some("ok=coordonnees") => Messages {
            contact: tr(
                "Vos coordonnées sont enregistrées.",
                "Your contact details are saved.",
            ),
            ..Messages::default()
        },
        Some("ok=totp-retire") => Messages {
            totp: tr(
                "Vos codes de connexion vous seront de nouveau envoyés par e-mail ou SMS.",
                "Your login codes will be sent to you by e-mail or text message again.",
            ),
            ..Messages::default()
        },
        _ => Messages::default(),
    };
    render(&s, &h, StatusCode::OK, m).await
}

/// What the page says after an action, section by section (notices and errors).
#[derive(Default)]
pub(super) struct Messages<'a> {
    pub keys: &'a str,
    pub password: &'a str,
    pub password_error: &'a str,
    pub totp: &'a str,
    pub totp_error: &'a str,
    pub contact: &'a str,
    pub contact_error: &'a str,
}

/// The page, with the messages of its sections.
pub(super) async fn render(
    s: &AppState,
    h: &Holder,
    status: StatusCode,
    m: Messages<'_>,
) -> Result<Response, WebError> {
    let keys = s.store.passkeys_of(h.session.holder).await?;
    // The password and passkeys are the person's own: shown in their own space only.
    let own = if h.own_space() {
        let totp = s
            .store
            .totp_enabled(h.session.holder)
            .await
            .map_err(ApiError::from)?;
        format!(
            "{}{}{}",
            super::password::password_section(h, m.password, m.password_error),
            super::password::totp_section(h, totp, m.totp, m.totp_error),
            passkeys_section(h, &keys, m.keys)
        )
    } else {
        String::new()
    };
    let contact = super::contact::section(s, h, m.contact, m.contact_error).await?;
    let html = format!("{}{contact}{own}{}", export_section(h), close_section(h, ""));
    Ok(respond(h, status, &html))
}

async fn remove_passkey(State(s): State<AppState>, h: Holder, b: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&b);
    h.check(&s, &form).await?;
    if !s.store.delete_passkey(h.session.holder, form.get("id")).await? {
        return Err(ApiError::not_found().into());
    }
    Ok(see_other("/mon-espace?ok=cle-supprimee"))
}

/// First step: the same checks as `api::me::close_request`, then the confirmation page.
async fn close_request(State(s): State<AppState>, h: Holder, b: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&b);
    h.check(&s, &form).await?;
    let l = s.store.lifecycle(h.space()).await.map_err(ApiError::from)?;
    if l.apply(carnet_domain::Event::Close, s.store.now()).is_err() {
        let message = "Cet espace ne peut pas être fermé dans son état actuel.";
        return Ok(respond(&h, StatusCode::CONFLICT, &body(&h, message)));
    }
    let confirmation = s
        .store
        .issue_confirmation("close", &close_binding_of(&h.token, h.space()))
        .await
        .map_err(ApiError::from)?;
    let page_body = format!(
        "<h1>Fermer l'espace {}</h1>\
         <div class=\"alert\" role=\"alert\"><p>Confirmez-vous la fermeture ? Les professionnels n'auront plus accès \
         à cet espace. Les données seront conservées 10 ans, pendant lesquels l'espace peut être rouvert, puis supprimées, \
         sauf si vous demandez ci-dessous leur suppression définitive.</p></div>\
         <form method=\"post\" action=\"/mon-espace/fermer/confirmer\" class=\"card\">{}\
         <input type=\"hidden\" name=\"confirmation\" value=\"{}\">\
         <p><input id=\"supprimer\" name=\"supprimer\" type=\"checkbox\" value=\"1\"> \
         <label for=\"supprimer\">Je demande aussi la <strong>suppression définitive</strong> de toutes les données \
         de cet espace (documents, profil médical, messages, agenda, historique des accès). Elle sera faite \
         dans 30 jours, sans retour possible ensuite ; d'ici là, rouvrir l'espace l'annule.</label></p>\
         <p><button type=\"submit\" class=\"danger\">Oui, fermer cet espace</button></p></form>\
         <p><a href=\"/mon-espace\">Non, revenir sans rien changer</a></p>",
        esc(&super::de(&h.space_name)),
        csrf_field(&h.csrf),
        esc(&confirmation)
    );
    Ok(respond(&h, StatusCode::OK, &page_body))
}

/// Second step: the same as `api::me::close_confirm`.
async fn close_confirm(State(s): State<AppState>, h: Holder, b: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&b);
    h.check(&s, &form).await?;
    let valid = s
        .store
        .check_confirmation(
            "close",
            &close_binding_of(&h.token, h.space()),
            form.get("confirmation"),
        )
        .await
        .map_err(ApiError::from)?;
    if !valid {
        let message =
            "La confirmation a expiré ou n'est pas valide : l'espace n'a pas été fermé. Recommencez.";
        return Ok(respond(&h, StatusCode::BAD_REQUEST, &body(&h, message)));
    }
    s.store
        .transition(h.space(), carnet_domain::Event::Close)
        .await
        .map_err(ApiError::from)?;
    // LC-5: the express request for deletion, honoured by the lifecycle job.
    let erase = form.get("supprimer") == "1";
    if erase {
        s.store.request_erasure(h.space()).await.map_err(ApiError::from)?;
        s.wake.notify_one();
    }
    if h.own_space() {
        s.store
            .revoke_all_sessions(h.session.holder)
            .await
            .map_err(ApiError::from)?;
        let mut r = see_other(if erase {
            "/connexion?ok=suppression"
        } else {
            "/connexion?ok=ferme"
        });
        set_cookie(&mut r, SESSION_COOKIE, "", "/", 0)?;
        Ok(r)
    } else {
        s.store
            .set_acting_for(&h.token, h.session.holder, false)
            .await
            .map_err(ApiError::from)?;
        Ok(see_other("/"))
    }
}
