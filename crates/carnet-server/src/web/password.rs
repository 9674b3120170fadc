//! Passwords (AU-1): a forgotten one replaced with a code sent to the e-mail or phone on file
//! and a second proof (the birth date), and a known one changed from "Mon espace". Either way
//! every other session ends and the holder is told by message. Rate-limited like the login;
//! the answer to a login or birth date that does not match is the same as to one that does
//! (the code never comes), so the page tells nobody whether an account exists.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carnet_store::outbox::Channel;
use carnet_store::password::PasswordError;

use super::auth::{anonymous_form_page, with_status};
use super::csrf::PreSessionForm;
use super::i18n::fr_en as tr;
use super::{Form, Holder, Nav, WebError, alert, csrf_field, esc, french, page, see_other};
use crate::api::auth::limit;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connexion/oubli", get(forgotten_page).post(forgotten))
        .route("/connexion/oubli/code", post(reset))
        .route("/mon-espace/mot-de-passe", post(change))
        .route("/mon-espace/totp", post(totp_begin))
        .route("/mon-espace/totp/confirmer", post(totp_confirm))
        .route("/mon-espace/totp/retirer", post(totp_remove))
}

/// The French (or English) words for a password the policy refuses.
pub(super) fn password_words(e: PasswordError) -> String {
    match e {
        PasswordError::TooShort => tr(
            "Le mot de passe doit compter au moins 12 caractères : une phrase facile à retenir convient bien.",
            "The password needs at least 12 characters: a sentence easy to remember works well.",
        ),
        PasswordError::TooLong => tr(
            "Ce mot de passe est trop long (1 024 caractères au plus).",
            "This password is too long (1,024 characters at most).",
        ),
    }
    .to_string()
}

/// The new password typed twice, checked against the policy; its hash.
async fn new_password(form: &Form) -> Result<String, String> {
    let (password, again) = (form.get("motdepasse"), form.get("confirmation"));
    if password != again {
        return Err(tr(
            "Les deux mots de passe ne sont pas identiques.",
            "The two passwords differ.",
        )
        .to_string());
    }
    carnet_store::password::check_policy(password).map_err(password_words)?;
    let password = password.to_string();
    tokio::task::spawn_blocking(move || carnet_store::password::hash(&password))
        .await
        .map_err(|_| french(&ApiError::internal()))?
        .map_err(|e| french(&ApiError::from(e)))
}

/// A birth date as people type it: `12/05/1984`, `12-05-1984`, `12.05.1984` or `1984-05-12`.
pub(super) fn birth_date(typed: &str) -> Option<time::Date> {
    let typed = typed.trim();
    let parts: Vec<&str> = typed
        .split(['/', '-', '.', ' '])
        .filter(|p| !p.is_empty())
        .collect();
    let [a, b, c] = parts.as_slice() else {
        return None;
    };
    let (y, m, d) = if a.len() == 4 { (a, b, c) } else { (c, b, a) };
    let (y, m, d): (i32, u8, u8) = (y.parse().ok()?, m.parse().ok()?, d.parse().ok()?);
    if y < 1000 {
        return None;
    }
    time::Date::from_calendar_date(y, time::Month::try_from(m).ok()?, d).ok()
}

fn forgotten_form(csrf: &str, login: &str, birth: &str, message: &str) -> String {
    format!(
        "<h1>{}</h1>{}<p>{}</p>\
         <form method=\"post\" action=\"/connexion/oubli\" class=\"card\">{}\
         <p><label for=\"login\">{}</label>\
         <input id=\"login\" name=\"login\" type=\"text\" autocomplete=\"username\" required value=\"{}\"></p>\
         <p><label for=\"naissance\">{}</label>\
         <input id=\"naissance\" name=\"naissance\" type=\"text\" inputmode=\"numeric\" autocomplete=\"bday\" \
         placeholder=\"JJ/MM/AAAA\" required value=\"{}\"></p>\
         <p><button type=\"submit\">{}</button></p></form>\
         <p><a href=\"/connexion\">{}</a></p>",
        tr("Mot de passe oublié", "Forgotten password"),
        alert(message),
        tr(
            "Indiquez votre identifiant et votre date de naissance : si elles correspondent à un espace, \
             un code vous est envoyé par e-mail (ou par SMS) pour choisir un nouveau mot de passe.",
            "Give your login and your birth date: if they match a space, a code is sent to you by e-mail \
             (or text message) to choose a new password.",
        ),
        csrf_field(csrf),
        tr("Identifiant", "Login"),
        esc(login),
        tr("Date de naissance (JJ/MM/AAAA)", "Birth date (DD/MM/YYYY)"),
        esc(birth),
        tr("Recevoir un code", "Send me a code"),
        tr("Retour à la connexion", "Back to login"),
    )
}

fn reset_form(csrf: &str, challenge: &str, message: &str) -> String {
    format!(
        "<h1>{}</h1>{}<p>{}</p>\
         <form method=\"post\" action=\"/connexion/oubli/code\" class=\"card\">{}\
         <input type=\"hidden\" name=\"challenge\" value=\"{}\">\
         <p><label for=\"code\">{}</label>\
         <input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required></p>\
         {}\
         <p><button type=\"submit\">{}</button></p></form>\
         <p><a href=\"/connexion/oubli\">{}</a></p>",
        tr("Choisir un nouveau mot de passe", "Choose a new password"),
        alert(message),
        tr(
            "Si votre identifiant et votre date de naissance correspondent à un espace, un code vient de \
             vous être envoyé par e-mail (ou par SMS). Il est valable 10 minutes.",
            "If your login and birth date match a space, a code has just been sent to you by e-mail (or \
             text message). It is valid for 10 minutes.",
        ),
        csrf_field(csrf),
        esc(challenge),
        tr("Code reçu", "Code received"),
        new_password_fields(),
        tr("Enregistrer le nouveau mot de passe", "Save the new password"),
        tr("Je n'ai rien reçu : recommencer", "Nothing came: start again"),
    )
}

/// The two fields of a new password.
pub(super) fn new_password_fields() -> String {
    format!(
        "<p><label for=\"motdepasse\">{}</label>\
         <input id=\"motdepasse\" name=\"motdepasse\" type=\"password\" autocomplete=\"new-password\" minlength=\"12\" required></p>\
         <p><label for=\"confirmation\">{}</label>\
         <input id=\"confirmation\" name=\"confirmation\" type=\"password\" autocomplete=\"new-password\" required></p>",
        tr(
            "Nouveau mot de passe (12 caractères au moins)",
            "New password (at least 12 characters)"
        ),
        tr("Le même mot de passe, à nouveau", "The same password, again"),
    )
}

async fn forgotten_page(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    anonymous_form_page(&s, &headers, "Mot de passe oublié", |csrf| {
        forgotten_form(csrf, "", "", "")
    })
    .await
}

async fn forgotten(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    PreSessionForm { form, csrf, .. }: PreSessionForm,
) -> Result<Response, WebError> {
    let (login, typed_birth) = (form.get("login").trim().to_string(), form.get("naissance"));
    let again = |status: StatusCode, message: &str| {
        with_status(
            status,
            page(
                "Mot de passe oublié",
                &Nav::Anonymous,
                &forgotten_form(&csrf, &login, typed_birth, message),
            ),
        )
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
    if login.is_empty() {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            tr("Saisissez votre identifiant.", "Enter your login."),
        ));
    }
    let limited = async {
        limit(&s, &format!("reset:ip:{}", peer.ip()), 900, 10).await?;
        let account = s.store.login_index(&login).await?;
        limit(&s, &format!("reset:acct:{account}"), 3600, 5).await
    };
    if let Err(e) = limited.await {
        return Ok(again(e.status, &french(&e)));
    }
    // The same page whether or not anything matched; a made-up challenge never verifies.
    let mut challenge = uuid::Uuid::new_v4();
    if let Some((holder, _)) = s
        .store
        .credentials_by_login(&login)
        .await
        .map_err(ApiError::from)?
        && s.store
            .lifecycle(holder)
            .await
            .map_err(ApiError::from)?
            .allows_login()
        && s.store
            .birth_date_is(holder, birth)
            .await
            .map_err(ApiError::from)?
    {
        let channel = if s
            .store
            .contact(holder)
            .await
            .map_err(ApiError::from)?
            .email
            .is_some()
        {
            Channel::Email
        } else {
            Channel::Sms
        };
        challenge = s
            .store
            .create_reset_challenge(holder, channel)
            .await
            .map_err(ApiError::from)?;
        s.wake.notify_one();
    }
    Ok(page(
        "Choisir un nouveau mot de passe",
        &Nav::Anonymous,
        &reset_form(&csrf, &challenge.to_string(), ""),
    )
    .into_response())
}

async fn reset(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    PreSessionForm { form, csrf, .. }: PreSessionForm,
) -> Result<Response, WebError> {
    let challenge = form.get("challenge").to_string();
    let again = |status: StatusCode, message: &str| {
        with_status(
            status,
            page(
                "Choisir un nouveau mot de passe",
                &Nav::Anonymous,
                &reset_form(&csrf, &challenge, message),
            ),
        )
    };
    if let Err(e) = limit(&s, &format!("verify:ip:{}", peer.ip()), 900, 60).await {
        return Ok(again(e.status, &french(&e)));
    }
    let Ok(id) = challenge.parse::<uuid::Uuid>() else {
        return Ok(see_other("/connexion/oubli"));
    };
    let code: String = form.get("code").chars().filter(|c| !c.is_whitespace()).collect();
    if code.is_empty() {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            tr("Saisissez le code reçu.", "Enter the code you received."),
        ));
    }
    let hash = match new_password(&form).await {
        Ok(h) => h,
        Err(message) => return Ok(again(StatusCode::BAD_REQUEST, &message)),
    };
    match s.store.reset_password(id, &code, &hash).await {
        Ok(_) => {
            s.wake.notify_one();
            Ok(see_other("/connexion?ok=motdepasse"))
        }
        Err(carnet_store::StoreError::Mismatch) => Ok(again(
            StatusCode::UNAUTHORIZED,
            tr(
                "Code incorrect ou expiré. Vérifiez le dernier code reçu, ou recommencez la demande.",
                "Wrong or expired code. Check the last code you received, or start again.",
            ),
        )),
        Err(e) => Err(e.into()),
    }
}

/// The "Mot de passe" section of "Mon espace".
pub(super) fn password_section(h: &Holder, info: &str, error: &str) -> String {
    format!(
        "<section aria-labelledby=\"mot-de-passe\"><h2 id=\"mot-de-passe\">{}</h2>{}{}\
         <form method=\"post\" action=\"/mon-espace/mot-de-passe\" class=\"card\">{}\
         <p><label for=\"actuel\">{}</label>\
         <input id=\"actuel\" name=\"actuel\" type=\"password\" autocomplete=\"current-password\" required></p>\
         {}<p><button type=\"submit\">{}</button></p></form>\
         <p>{}</p></section>",
        tr("Mot de passe", "Password"),
        super::notice(info),
        alert(error),
        csrf_field(&h.csrf),
        tr("Mot de passe actuel", "Current password"),
        new_password_fields(),
        tr("Changer le mot de passe", "Change the password"),
        tr(
            "Vos autres appareils seront déconnectés, et un message vous confirmera le changement.",
            "Your other devices will be logged out, and a message will confirm the change.",
        ),
    )
}

/// "Mon espace": the current password, then the new one twice. The session that asked stays
/// open; every other one of the person ends.
async fn change(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let person = h.session.holder;
    let refuse = |status: StatusCode, message: String| {
        let (s, h) = (&s, &h);
        async move {
            let m = super::space::Messages {
                password_error: &message,
                ..Default::default()
            };
            super::space::render(s, h, status, m).await
        }
    };
    if let Err(e) = limit(&s, &format!("password:acct:{person}"), 900, 10).await {
        return refuse(e.status, french(&e)).await;
    }
    let stored = s.store.password_hash_of(person).await.map_err(ApiError::from)?;
    let current = form.get("actuel").to_string();
    let ok = tokio::task::spawn_blocking(move || carnet_store::password::verify(&current, stored.as_deref()))
        .await
        .map_err(|_| ApiError::internal())?;
    if !ok {
        let message = tr(
            "Le mot de passe actuel n'est pas le bon : rien n'a été changé.",
            "The current password is wrong: nothing was changed.",
        );
        return refuse(StatusCode::BAD_REQUEST, message.to_string()).await;
    }
    let hash = match new_password(&form).await {
        Ok(h) => h,
        Err(message) => return refuse(StatusCode::BAD_REQUEST, message).await,
    };
    s.store
        .set_password(person, &hash, Some(&h.token))
        .await
        .map_err(ApiError::from)?;
    s.wake.notify_one();
    Ok(see_other("/mon-espace?ok=motdepasse#mot-de-passe"))
}

/// The "Application d'authentification" section of "Mon espace" (AU-1, our choice): codes from
/// an authenticator app instead of codes sent by e-mail or SMS.
pub(super) fn totp_section(h: &Holder, enabled: bool, info: &str, error: &str) -> String {
    let csrf = csrf_field(&h.csrf);
    let body = if enabled {
        format!(
            "<p>{}</p><form method=\"post\" action=\"/mon-espace/totp/retirer\" class=\"card\">{csrf}\
             <p><label for=\"totp-off\">{}</label>\
             <input id=\"totp-off\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required></p>\
             <p><button type=\"submit\" class=\"secondary\">{}</button></p></form>",
            tr(
                "Vos codes de connexion viennent de votre application d'authentification.",
                "Your login codes come from your authenticator app.",
            ),
            tr("Code affiché par l'application", "Code shown by the app"),
            tr(
                "Ne plus utiliser l'application (recevoir les codes par e-mail ou SMS)",
                "Stop using the app (receive codes by e-mail or text message)",
            ),
        )
    } else {
        format!(
            "<p>{}</p><form method=\"post\" action=\"/mon-espace/totp\">{csrf}\
             <p><button type=\"submit\" class=\"secondary\">{}</button></p></form>",
            tr(
                "Vos codes de connexion vous sont envoyés par e-mail ou SMS. Vous pouvez les obtenir plutôt \
                 d'une application d'authentification (FreeOTP, Aegis, Google Authenticator…).",
                "Your login codes are sent to you by e-mail or text message. You may get them from an \
                 authenticator app instead.",
            ),
            tr(
                "Utiliser une application d'authentification",
                "Use an authenticator app"
            ),
        )
    };
    format!(
        "<section aria-labelledby=\"totp\"><h2 id=\"totp\">{}</h2>{}{}{body}</section>",
        tr("Application d'authentification", "Authenticator app"),
        super::notice(info),
        alert(error),
    )
}

/// The page that shows a new secret to type into the app, and asks for its first code.
fn totp_setup_page(h: &Holder, secret_b32: &str, message: &str) -> String {
    let grouped: Vec<String> = secret_b32
        .as_bytes()
        .chunks(4)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    format!(
        "<h1>{}</h1>{}<ol><li>{}</li><li>{} <strong><code>{}</code></strong> \
         (<a href=\"otpauth://totp/Carnet?secret={}&amp;issuer=Carnet&amp;algorithm=SHA1&amp;digits=6&amp;period=30\">{}</a>)</li>\
         <li>{}</li></ol>\
         <form method=\"post\" action=\"/mon-espace/totp/confirmer\" class=\"card\">{}\
         <input type=\"hidden\" name=\"secret\" value=\"{}\">\
         <p><label for=\"totp-code\">{}</label>\
         <input id=\"totp-code\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" required></p>\
         <p><button type=\"submit\">{}</button></p></form>\
         <p><a href=\"/mon-espace\">{}</a></p>",
        tr(
            "Utiliser une application d'authentification",
            "Use an authenticator app"
        ),
        alert(message),
        tr(
            "Ouvrez votre application d'authentification et ajoutez un compte.",
            "Open your authenticator app and add an account.",
        ),
        tr("Saisissez cette clé :", "Type this key:"),
        esc(&grouped.join(" ")),
        esc(secret_b32),
        tr(
            "ou ouvrez ce lien sur le téléphone",
            "or open this link on the phone"
        ),
        tr(
            "Recopiez ci-dessous le code à 6 chiffres qu'elle affiche : tant que ce n'est pas fait, rien ne change.",
            "Type below the 6-digit code it shows: until then, nothing changes.",
        ),
        csrf_field(&h.csrf),
        esc(secret_b32),
        tr("Code affiché par l'application", "Code shown by the app"),
        tr("Confirmer", "Confirm"),
        tr("Annuler", "Cancel"),
    )
}

fn holder_page(h: &Holder, status: StatusCode, body: &str) -> Response {
    let nav = Nav::Holder {
        h,
        current: "/mon-espace",
    };
    with_status(status, page("Mon espace", &nav, body))
}

async fn totp_begin(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let secret = s
        .store
        .begin_totp(h.session.holder)
        .await
        .map_err(ApiError::from)?;
    let b32 = carnet_store::auth::base32(&secret);
    Ok(holder_page(&h, StatusCode::OK, &totp_setup_page(&h, &b32, "")))
}

/// The code of a TOTP form checked (anti-CSRF token, the account's rate limit of 10 tries in
/// 15 minutes, the code itself); the store's answer on the code.
async fn totp_code(
    s: &AppState,
    h: &Holder,
    form: &Form,
) -> Result<Result<(), carnet_store::StoreError>, WebError> {
    h.check(s, form).await?;
    let person = h.session.holder;
    if let Err(e) = limit(s, &format!("totp:acct:{person}"), 900, 10).await {
        return Err(WebError::new(e.status, french(&e)));
    }
    let code: String = form.get("code").chars().filter(|c| !c.is_whitespace()).collect();
    Ok(s.store.verify_totp(person, &code).await)
}

async fn totp_confirm(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    match totp_code(&s, &h, &form).await? {
        Ok(()) => Ok(see_other("/mon-espace?ok=totp#totp")),
        Err(carnet_store::StoreError::Mismatch) => {
            let message = tr(
                "Ce code ne correspond pas : vérifiez la clé saisie dans l'application et l'heure du téléphone, \
                 puis recopiez le code affiché.",
                "This code does not match: check the key typed into the app and the phone's time, then type \
                 the code shown.",
            );
            Ok(holder_page(
                &h,
                StatusCode::BAD_REQUEST,
                &totp_setup_page(&h, form.get("secret"), message),
            ))
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}

async fn totp_remove(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    let person = h.session.holder;
    match totp_code(&s, &h, &form).await? {
        Ok(()) => {
            s.store.disable_totp(person).await.map_err(ApiError::from)?;
            Ok(see_other("/mon-espace?ok=totp-retire#totp"))
        }
        Err(carnet_store::StoreError::Mismatch) => {
            let message = tr(
                "Ce code ne correspond pas : recopiez le code que l'application affiche maintenant.",
                "This code does not match: type the code the app shows now.",
            );
            let m = super::space::Messages {
                totp_error: message,
                ..Default::default()
            };
            super::space::render(&s, &h, StatusCode::BAD_REQUEST, m).await
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}
