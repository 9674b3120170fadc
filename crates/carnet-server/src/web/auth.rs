//! Holders' login in two steps (login + password, then the code sent by e-mail or SMS) and
//! logout, with the same functions as the JSON API (`api::auth::start_login`, `finish_login`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::csrf::PreSessionForm;
use super::i18n::fr_en as tr;
use super::i18n::t;
use super::{
    Form, Holder, Nav, WebError, alert, csrf_field, csrf_token, esc, french, notice, page, pre_session,
    see_other, set_pre_session,
};
use crate::api::auth::{
    DEVICE_COOKIE, LoginIntent, LoginOutcome, clear_session_cookie, finish_login, set_cookie,
    set_login_cookies, start_login,
};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connexion", get(login_page).post(login))
        .route("/connexion/code", post(code))
        .route("/activation", get(activation_page).post(activation))
        .route("/deconnexion", post(logout))
}

#[derive(Deserialize)]
struct Flash {
    ok: Option<String>,
}

fn demo_hint(s: &AppState) -> &'static str {
    if s.settings.demo {
        super::i18n::fr_en(
            "<p class=\"hint\">Instance de démonstration : compte <code>camille.martin@demo.carnet.invalid</code>, \
             mot de passe <code>demo-carnet-2026</code> ; le code de connexion s'affiche dans la \
             <a href=\"/demo/outbox\">boîte d'envoi de démonstration</a>.</p>",
            "<p class=\"hint\">Demonstration instance: account <code>camille.martin@demo.carnet.invalid</code>, \
             password <code>demo-carnet-2026</code>; the login code shows in the \
             <a href=\"/demo/outbox\">demonstration outbox</a>.</p>",
        )
    } else {
        ""
    }
}

fn login_form(s: &AppState, csrf: &str, login: &str, message: &str, info: &str) -> String {
    login_form_with(s, csrf, login, message, info, LoginIntent::Open)
}

/// The form field that carries a login's intent from step to step, and its box's words.
fn intent_field(intent: LoginIntent) -> Option<(&'static str, &'static str)> {
    match intent {
        LoginIntent::Open => None,
        LoginIntent::Reopen => Some((
            "rouvrir",
            super::i18n::fr_en("Rouvrir mon espace", "Reopen my space"),
        )),
        LoginIntent::ContestSuspension => Some((
            "contester",
            super::i18n::fr_en(
                "Je m'oppose à la fermeture de mon espace",
                "I object to the closure of my space",
            ),
        )),
    }
}

fn intent_of(form: &Form) -> LoginIntent {
    LoginIntent::of(form.get("rouvrir") == "1", form.get("contester") == "1")
}

/// The login form; with an intent, a checked box that reopens a closed space (LC-5) or
/// objects to the closure of a suspended one (LC-5b).
fn login_form_with(
    s: &AppState,
    csrf: &str,
    login: &str,
    message: &str,
    info: &str,
    intent: LoginIntent,
) -> String {
    let reopen_box = match intent_field(intent) {
        Some((name, words)) => format!(
            "<p class=\"choice\"><input type=\"checkbox\" id=\"{name}\" name=\"{name}\" value=\"1\" checked>\
             <label for=\"{name}\">{words}</label></p>"
        ),
        None => String::new(),
    };
    format!(
        "<h1>{}</h1>{}{}\
         <form method=\"post\" action=\"/connexion\" class=\"card\">{}\
         <p><label for=\"login\">{}</label>\
         <input id=\"login\" name=\"login\" type=\"text\" autocomplete=\"username\" required value=\"{}\"></p>\
         <p><label for=\"password\">{}</label>\
         <input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required></p>\
         {reopen_box}<p><button type=\"submit\">{}</button></p>\
         <p><a href=\"/connexion/oubli\">{}</a></p></form>\
         <div hidden><p><button type=\"button\" id=\"passkey-login\" class=\"secondary\">{}</button></p></div>\
         <p id=\"passkey-status\" role=\"status\"></p>{}{}\
         <p>{} <a href=\"/activation\">{}</a></p>\
         <p>{} <a href=\"/pro\">{}</a></p>",
        t("login.title"),
        notice(info),
        alert(message),
        csrf_field(csrf),
        t("login.id"),
        esc(login),
        t("login.password"),
        t("login.continue"),
        super::i18n::fr_en("Mot de passe oublié ?", "Forgotten password?"),
        super::i18n::fr_en("Se connecter avec une clé d'accès", "Log in with a passkey"),
        super::oidc_links(s, crate::oidc::Audience::Holders),
        demo_hint(s),
        t("login.first_visit"),
        t("login.activate"),
        t("login.pro"),
        t("landing.pro"),
    )
}

fn code_form_with(
    csrf: &str,
    challenge: &str,
    channel: &str,
    code: &str,
    message: &str,
    intent: LoginIntent,
) -> String {
    let how = match channel {
        "sms" => t("login.sent_sms"),
        "totp" => t("login.totp"),
        _ => t("login.sent_email"),
    };
    format!(
        "<h1>{}</h1>{}<p>{how} {}</p>\
         <form method=\"post\" action=\"/connexion/code\" class=\"card\">{}\
         <input type=\"hidden\" name=\"challenge\" value=\"{}\"><input type=\"hidden\" name=\"channel\" value=\"{}\">{}\
         <p><label for=\"code\">{}</label>\
         <input id=\"code\" name=\"code\" type=\"text\" inputmode=\"numeric\" autocomplete=\"one-time-code\" \
         pattern=\"[0-9 ]*\" maxlength=\"8\" required value=\"{}\"></p>\
         <p><button type=\"submit\">{}</button></p></form>\
         <p><a href=\"/connexion\">{}</a></p>",
        t("login.code_title"),
        alert(message),
        t("login.valid"),
        csrf_field(csrf),
        esc(challenge),
        esc(channel),
        intent_field(intent)
            .map(|(name, _)| format!("<input type=\"hidden\" name=\"{name}\" value=\"1\">"))
            .unwrap_or_default(),
        t("login.code"),
        esc(code),
        t("landing.login"),
        t("login.restart"),
    )
}

async fn login_page(
    State(s): State<AppState>,
    headers: HeaderMap,
    Query(f): Query<Flash>,
    holder: Result<Holder, WebError>,
) -> Result<Response, WebError> {
    if holder.is_ok() {
        return Ok(see_other("/"));
    }
    let (secret, fresh) = pre_session(&headers)?;
    let csrf = csrf_token(&s, &secret).await?;
    let info = match f.ok.as_deref() {
        Some("deconnexion") => t("login.logged_out"),
        Some("ferme") => t("login.closed"),
        Some("suppression") => super::i18n::fr_en(
            "L'espace est fermé et sera supprimé définitivement dans 30 jours ; un message vous le confirme. \
             D'ici là, vous pouvez changer d'avis : connectez-vous et rouvrez l'espace, la suppression sera annulée.",
            "The space is closed and will be erased for good in 30 days; a message confirms it. Until then you \
             may change your mind: log in and reopen the space, which cancels the erasure.",
        ),
        Some("active") => super::i18n::fr_en(
            "Votre espace est activé : connectez-vous avec l'identifiant et le mot de passe choisis.",
            "Your space is activated: log in with the login and password you chose.",
        ),
        Some("motdepasse") => super::i18n::fr_en(
            "Votre mot de passe est changé : connectez-vous avec le nouveau. Vos appareils ont été déconnectés.",
            "Your password is changed: log in with the new one. Your devices were logged out.",
        ),
        _ => "",
    };
    let mut r = page("Connexion", &Nav::Anonymous, &login_form(&s, &csrf, "", "", info)).into_response();
    set_pre_session(&mut r, fresh)?;
    Ok(r)
}

/// An anonymous form's page, bound to the browser's pre-session (set when it has none).
pub(super) async fn anonymous_form_page(
    s: &AppState,
    headers: &HeaderMap,
    title: &'static str,
    form: impl FnOnce(&str) -> String,
) -> Result<Response, WebError> {
    let (secret, fresh) = pre_session(headers)?;
    let csrf = csrf_token(s, &secret).await?;
    let mut r = page(title, &Nav::Anonymous, &form(&csrf)).into_response();
    set_pre_session(&mut r, fresh)?;
    Ok(r)
}

pub(super) fn with_status(status: StatusCode, html: axum::response::Html<String>) -> Response {
    let mut r = html.into_response();
    *r.status_mut() = status;
    r
}

async fn login(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    headers: HeaderMap,
    PreSessionForm { form, csrf, .. }: PreSessionForm,
) -> Result<Response, WebError> {
    let login = form.get("login").trim().to_string();
    let password = form.get("password").to_string();
    let again = |status: StatusCode, message: &str| {
        with_status(
            status,
            page(
                "Connexion",
                &Nav::Anonymous,
                &login_form(&s, &csrf, &login, message, ""),
            ),
        )
    };
    if login.is_empty() || password.is_empty() {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "Saisissez votre identifiant et votre mot de passe.",
        ));
    }
    let intent = intent_of(&form);
    match start_login(&s, peer.ip(), &headers, &login, password, intent).await {
        Ok(started) => {
            let mut r = page(
                "Code de connexion",
                &Nav::Anonymous,
                &code_form_with(
                    &csrf,
                    &started.challenge.to_string(),
                    started.channel,
                    "",
                    "",
                    intent,
                ),
            )
            .into_response();
            if let Some(d) = started.new_device_cookie {
                set_cookie(&mut r, DEVICE_COOKIE, &d, "/", 365 * 24 * 3600)?;
            }
            Ok(r)
        }
        Err(e) if e.code == "closed" => Ok(with_status(
            StatusCode::CONFLICT,
            page(
                "Connexion",
                &Nav::Anonymous,
                &login_form_with(
                    &s,
                    &csrf,
                    &login,
                    super::i18n::fr_en(
                        "Votre espace est fermé. Tout son contenu est conservé : pour le rouvrir, laissez la case \
                         « Rouvrir mon espace » cochée et saisissez à nouveau votre mot de passe.",
                        "Your space is closed. All its content is kept: to reopen it, leave \"Reopen my space\" \
                         ticked and type your password again.",
                    ),
                    "",
                    LoginIntent::Reopen,
                ),
            ),
        )),
        // LC-5b: the holder of a suspended space is told why, until when they may object,
        // and offered to; once they have, only told.
        Err(e) if e.code == "suspended" || e.code == "suspension_contested" => {
            let intent = if e.code == "suspended" {
                LoginIntent::ContestSuspension
            } else {
                LoginIntent::Open
            };
            let explained = format!(
                "{}{}",
                french(&e),
                if e.code == "suspended" {
                    super::i18n::fr_en(
                        " Pour vous y opposer, laissez la case cochée et saisissez à nouveau votre mot de passe : \
                         un code vous sera envoyé. Votre espace restera suspendu jusqu'à la décision du service.",
                        " To object, leave the box ticked and type your password again: a code will be sent to \
                         you. Your space stays suspended until the service decides.",
                    )
                } else {
                    ""
                }
            );
            Ok(with_status(
                StatusCode::CONFLICT,
                page(
                    "Connexion",
                    &Nav::Anonymous,
                    &login_form_with(&s, &csrf, &login, &explained, "", intent),
                ),
            ))
        }
        Err(e) => Ok(again(e.status, &french(&e))),
    }
}

async fn code(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    headers: HeaderMap,
    PreSessionForm { form, csrf, .. }: PreSessionForm,
) -> Result<Response, WebError> {
    let challenge = form.get("challenge").to_string();
    let channel = form.get("channel").to_string();
    let typed = form.get("code").trim().to_string();
    let intent = intent_of(&form);
    let again = |status: StatusCode, message: &str| {
        with_status(
            status,
            page(
                "Code de connexion",
                &Nav::Anonymous,
                &code_form_with(&csrf, &challenge, &channel, &typed, message, intent),
            ),
        )
    };
    let Ok(id) = challenge.parse::<uuid::Uuid>() else {
        return Ok(with_status(
            StatusCode::BAD_REQUEST,
            page(
                "Connexion",
                &Nav::Anonymous,
                &login_form(
                    &s,
                    &csrf,
                    "",
                    "Cette demande de connexion n'est plus valable : recommencez.",
                    "",
                ),
            ),
        ));
    };
    if typed.is_empty() {
        return Ok(again(StatusCode::BAD_REQUEST, "Saisissez le code reçu."));
    }
    let code: String = typed.chars().filter(|c| !c.is_whitespace()).collect();
    match finish_login(&s, peer.ip(), id, &code, intent).await {
        Ok(LoginOutcome::SuspensionContested(at)) => {
            Ok(page("Opposition enregistrée", &Nav::Anonymous, &contested_body(at)).into_response())
        }
        Ok(LoginOutcome::Session(token, _)) => {
            // Back to an app's pending authorisation request (issue 9), if one sent us here.
            let back = super::catalogue::after_login(&headers);
            let mut r = see_other(back.as_deref().unwrap_or("/"));
            set_login_cookies(&mut r, &token, None)?;
            if back.is_some() {
                set_cookie(&mut r, super::catalogue::RETURN_COOKIE, "", "/", 0)?;
            }
            Ok(r)
        }
        Err(e) => {
            let message = if e.code == "mismatch" {
                "Code incorrect ou expiré. Vérifiez le dernier code reçu, ou recommencez la connexion."
                    .to_string()
            } else {
                french(&e)
            };
            Ok(again(e.status, &message))
        }
    }
}

/// LC-5b: the receipt of the holder's objection to the closure of their suspended space.
fn contested_body(at: carnet_domain::Timestamp) -> String {
    let tr = super::i18n::fr_en;
    format!(
        "<h1>{}</h1><div class=\"card\"><p>{} <strong>{}</strong>. {}</p><p>{}</p></div>\
         <p><a href=\"/\">{}</a></p>",
        tr("Votre opposition est enregistrée", "Your objection is recorded"),
        tr(
            "Votre opposition à la fermeture de votre espace a été enregistrée",
            "Your objection to the closure of your space was recorded",
        ),
        esc(&super::when(at)),
        tr(
            "Votre espace ne sera pas fermé : il reste suspendu, tout son contenu conservé, jusqu'à la \
             décision du service, qui vous l'écrira.",
            "Your space will not be closed: it stays suspended, all its content kept, until the service \
             decides and writes to you.",
        ),
        tr(
            "Un message vous confirme cette opposition. Vous pouvez aussi imprimer cette page.",
            "A message confirms this objection. You may also print this page.",
        ),
        tr("Retour à l'accueil", "Back to the home page"),
    )
}

async fn logout(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    s.store.revoke_session(&h.token).await.map_err(ApiError::from)?;
    let mut r = see_other("/connexion?ok=deconnexion");
    r.headers_mut().append(SET_COOKIE, clear_session_cookie());
    Ok(r)
}

/// LC-4: activating one's space with the letter (INS, provisional code, Carte Vitale serial if
/// asked) and choosing a login and password. What was typed comes back with the message,
/// passwords excepted.
fn activation_form(csrf: &str, ins: &str, login: &str, message: &str) -> String {
    let a0 = tr("Activer mon espace", "Activate my space");
    let a1 = tr(
        "Munissez-vous du courrier reçu de l'Assurance Maladie : il porte votre code provisoire.",
        "Have the letter from the Assurance Maladie at hand: it bears your provisional code.",
    );
    let a2 = tr(
        "Numéro de sécurité sociale (15 chiffres, INS)",
        "Social security number (15 digits, INS)",
    );
    let a3 = tr("Code provisoire du courrier", "Provisional code from the letter");
    let a4 = tr(
        "Numéro de série de la carte Vitale (s'il vous est demandé)",
        "Carte Vitale serial number (if asked)",
    );
    let a5 = tr(
        "Identifiant choisi (votre adresse e-mail par exemple)",
        "Chosen login (your e-mail address, for instance)",
    );
    let a6 = tr(
        "Mot de passe choisi (12 caractères au moins)",
        "Chosen password (at least 12 characters)",
    );
    let a7 = tr("Le même mot de passe, à nouveau", "The same password, again");
    let a8 = tr("Activer mon espace", "Activate my space");
    let a9 = tr(
        "J'ai déjà activé mon espace : me connecter",
        "I already activated my space: log in",
    );
    let a10 = tr(
        "Valable six semaines. Code expiré ou perdu ? <a href=\"/activation/nouveau-code\">Recevoir un nouveau code</a>.",
        "Valid for six weeks. Code expired or lost? <a href=\"/activation/nouveau-code\">Get a new code</a>.",
    );
    let a11 = tr(
        "Vous ne souhaitez pas d'espace ? M'opposer à sa création",
        "You do not want a space? Object to its creation",
    );
    format!(
        "<h1>{a0}</h1>{}\
         <p>{a1}</p>\
         <form method=\"post\" action=\"/activation\" class=\"card\">{}\
         <p><label for=\"ins\">{a2}</label>\
         <input id=\"ins\" name=\"ins\" type=\"text\" inputmode=\"numeric\" autocomplete=\"off\" required value=\"{}\"></p>\
         <p><label for=\"code\">{a3}</label>\
         <input id=\"code\" name=\"code\" type=\"text\" autocomplete=\"one-time-code\" required aria-describedby=\"code-aide\"></p>\
         <p id=\"code-aide\" class=\"hint\">{a10}</p>\
         <p><label for=\"carte\">{a4}</label>\
         <input id=\"carte\" name=\"carte\" type=\"text\" autocomplete=\"off\"></p>\
         <p><label for=\"identifiant\">{a5}</label>\
         <input id=\"identifiant\" name=\"identifiant\" type=\"text\" autocomplete=\"username\" required value=\"{}\"></p>\
         <p><label for=\"motdepasse\">{a6}</label>\
         <input id=\"motdepasse\" name=\"motdepasse\" type=\"password\" autocomplete=\"new-password\" required></p>\
         <p><label for=\"confirmation\">{a7}</label>\
         <input id=\"confirmation\" name=\"confirmation\" type=\"password\" autocomplete=\"new-password\" required></p>\
         <p><button type=\"submit\">{a8}</button></p></form>\
         <p><a href=\"/connexion\">{a9}</a></p>\
         <p><a href=\"/opposition\">{a11}</a></p>",
        alert(message),
        csrf_field(csrf),
        esc(ins),
        esc(login),
    )
}

async fn activation_page(State(s): State<AppState>, headers: HeaderMap) -> Result<Response, WebError> {
    anonymous_form_page(&s, &headers, "Activer mon espace", |csrf| {
        activation_form(csrf, "", "", "")
    })
    .await
}

async fn activation(
    State(s): State<AppState>,
    crate::client::Client(peer): crate::client::Client,
    PreSessionForm { form, secret, .. }: PreSessionForm,
) -> Result<Response, WebError> {
    let (ins, login) = (form.get("ins").to_string(), form.get("identifiant").to_string());
    let policy = carnet_store::password::check_policy(form.get("motdepasse"));
    let outcome = if let Err(e) = policy {
        Err((StatusCode::BAD_REQUEST, super::password::password_words(e)))
    } else if form.get("motdepasse") != form.get("confirmation") {
        Err((
            StatusCode::BAD_REQUEST,
            tr(
                "Les deux mots de passe ne sont pas identiques.",
                "The two passwords differ.",
            )
            .to_string(),
        ))
    } else {
        crate::api::auth::activate_space(
            &s,
            peer.ip(),
            &ins,
            form.get("code"),
            form.get("carte"),
            &login,
            form.get("motdepasse").to_string(),
        )
        .await
        .map_err(|e| {
            let message = match e.code {
                "mismatch" => tr(
                    "Ces informations ne correspondent pas à un espace à activer : vérifiez le numéro, \
                     le code du courrier (valable six semaines : s'il a expiré, demandez-en un nouveau par le \
                     lien sous le champ du code) et la carte Vitale.",
                    "This information matches no space to activate: check the number, the letter's code \
                     (valid six weeks: if it expired, ask for a new one through the link below the code \
                     field) and the Carte Vitale.",
                )
                .to_string(),
                "login_taken" => tr(
                    "Cet identifiant est déjà pris : choisissez-en un autre.",
                    "This login is taken: choose another one.",
                )
                .to_string(),
                "minor" => tr(
                    "Cet espace est celui d'un enfant mineur : ses parents ou son tuteur y accèdent depuis \
                     leur propre espace (« Changer d'espace »). À ses 18 ans, un nouveau code lui sera envoyé \
                     pour qu'il prenne son espace en main.",
                    "This space belongs to a minor: their parents or guardian reach it from their own space \
                     (\"Switch space\"). At 18, a new code will be sent so that they take it over.",
                )
                .to_string(),
                _ => french(&e),
            };
            (e.status, message)
        })
    };
    match outcome {
        Ok(()) => Ok(see_other("/connexion?ok=active")),
        Err((status, message)) => {
            let csrf = csrf_token(&s, &secret).await?;
            Ok(with_status(
                status,
                page(
                    "Activer mon espace",
                    &Nav::Anonymous,
                    &activation_form(&csrf, &ins, &login, &message),
                ),
            ))
        }
    }
}
