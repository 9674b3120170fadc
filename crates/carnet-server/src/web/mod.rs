//! The web interface (issue 7): server-rendered HTML from this binary, French first, readable
//! and usable without JavaScript (the pages carry none).
//!
//! Every page is built with `format!` and one escaping helper ([`esc`]); every value that
//! comes from a person or the store goes through it. Page titles are `&'static str`, so no
//! holder data can reach a title (nor, therefore, a browser history or a tab list); no health
//! data goes in a URL either (search words are POSTed).
//!
//! Security of every response of this module ([`security_headers`]): a strict
//! Content-Security-Policy (no inline script or style; one static CSS file), `nosniff`,
//! `no-referrer`, framing refused, `no-store` for pages. Every POST form carries an anti-CSRF
//! token ([`csrf_token`]) checked before anything else: an HMAC, under a service key of the
//! vault, of the session token's hash (or, before login, of a random pre-session cookie).
//!
//! Handlers call the same functions as the JSON API (`api::auth::start_login`, the gate, the
//! store's directory and preferences); none holds a business rule.

mod access;
mod agenda;
mod auth;
mod catalogue;
mod documents;
mod home;
pub mod i18n;
mod messages;
mod notifications;
mod operator;
mod pro;
mod pro_documents;
mod pro_messages;
mod profile;
mod reimbursements;
mod space;

use std::collections::HashMap;

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::access::{Actor, Category};
use carnet_domain::{HolderId, Timestamp};
use carnet_store::auth::Session;
use carnet_store::crypto::{random_token, sha256_hex};

use crate::api::auth::{SESSION_COOKIE, cookie, set_cookie};
use crate::api::extract::Authenticated;
use crate::api::extract::ProAuthenticated;
use crate::{ApiError, AppState};
use i18n::t;

/// The Content-Security-Policy of every page.
pub const CSP: &str = "default-src 'self'; img-src 'self' data:; object-src 'none'; \
                       frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// The pre-session cookie that anonymous forms (login, code, professional login) are bound to.
const PRE_SESSION_COOKIE: &str = "__Host-carnet_csrf";

/// The hidden field carrying the anti-CSRF token in every POST form.
pub const CSRF_FIELD: &str = "csrf";

const CSS: &str = include_str!("static/carnet.css");
const PASSKEY_JS: &str = include_str!("static/passkey.js");
const ICON: &str = include_str!("static/carnet.svg");
const MANIFEST: &str = include_str!("static/manifest.webmanifest");

pub fn routes() -> Router<AppState> {
    Router::new()
        .merge(home::routes())
        .merge(auth::routes())
        .merge(documents::routes())
        .merge(profile::routes())
        .merge(reimbursements::routes())
        .merge(access::routes())
        .merge(notifications::routes())
        .merge(messages::routes())
        .merge(agenda::routes())
        .merge(pro::routes())
        .merge(pro_messages::routes())
        .merge(pro_documents::routes())
        .merge(operator::routes())
        .merge(space::routes())
        .merge(catalogue::routes())
        .route(
            "/static/carnet.css",
            get(|| statik("text/css; charset=utf-8", CSS)),
        )
        .route("/static/carnet.svg", get(|| statik("image/svg+xml", ICON)))
        .route(
            "/static/passkey.js",
            get(|| statik("text/javascript; charset=utf-8", PASSKEY_JS)),
        )
        .route(
            "/manifest.webmanifest",
            get(|| statik("application/manifest+json", MANIFEST)),
        )
        .method_not_allowed_fallback(post_only)
        .layer(axum::middleware::from_fn(i18n::layer))
        .layer(axum::middleware::map_response(security_headers))
}

/// A GET on a path that only takes a form's POST (a page reloaded, the language switch after a
/// form) goes back to the page the form belongs to, instead of a bare 405.
async fn post_only(method: axum::http::Method, uri: axum::http::Uri) -> Response {
    if method == axum::http::Method::GET || method == axum::http::Method::HEAD {
        let parent = uri.path().rsplit_once('/').map_or("/", |(p, _)| p);
        see_other(if parent.is_empty() { "/" } else { parent })
    } else {
        StatusCode::METHOD_NOT_ALLOWED.into_response()
    }
}

async fn statik(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The headers every response of the web interface carries.
async fn security_headers(mut r: Response) -> Response {
    let h = r.headers_mut();
    // A page may widen only `form-action` (the OAuth consent form answers with a redirect to
    // the app, which the browser checks against it); every other page gets the policy as is.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    }
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    r
}

/// HTML-escapes text for element content and quoted attribute values.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Errors

/// An error shown to a person: a readable French message on a page, or a redirect to a login.
#[derive(Debug)]
pub struct WebError {
    pub status: StatusCode,
    pub message: String,
    pub redirect: Option<&'static str>,
}

impl WebError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
            redirect: None,
        }
    }

    fn login(to: &'static str) -> Self {
        Self {
            status: StatusCode::SEE_OTHER,
            message: String::new(),
            redirect: Some(to),
        }
    }

    pub fn csrf() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "Ce formulaire a expiré ou ne vient pas de Carnet : rien n'a été enregistré. \
             Revenez à la page, rechargez-la et recommencez.",
        )
    }
}

/// The French words for an error of the layers below (their messages are "français / English").
pub fn french(e: &ApiError) -> String {
    match e.code {
        "not_found" => "Introuvable : cet élément n'existe pas, ou vous n'y avez pas accès.".into(),
        "unauthorized" => "Votre session a pris fin : reconnectez-vous.".into(),
        "internal" => {
            "Une erreur inattendue s'est produite ; elle a été enregistrée. Réessayez plus tard.".into()
        }
        "unavailable" => {
            "Le service est momentanément indisponible : rien n'a été enregistré. Réessayez dans un instant."
                .into()
        }
        "storage_full" => "Le stockage du service est plein : rien n'a été enregistré.".into(),
        "conflict" => "Votre espace a été modifié en même temps par une autre action : réessayez.".into(),
        "too_large" => "Le document est trop volumineux : rien n'a été enregistré.".into(),
        _ => {
            let fr = e.message.split(" / ").next().unwrap_or_default().trim();
            let mut chars = fr.chars();
            match chars.next() {
                Some(first) => format!("{}{}", first.to_uppercase(), chars.as_str()),
                None => "La demande n'a pas pu aboutir.".into(),
            }
        }
    }
}

impl From<ApiError> for WebError {
    fn from(e: ApiError) -> Self {
        Self::new(e.status, french(&e))
    }
}

impl From<carnet_store::StoreError> for WebError {
    fn from(e: carnet_store::StoreError) -> Self {
        ApiError::from(e).into()
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        if let Some(to) = self.redirect {
            return see_other(to);
        }
        let body = format!(
            "<h1>{}</h1>{}<p><a href=\"/\">{}</a></p>",
            t("error.title"),
            alert(&self.message),
            t("error.back")
        );
        let mut r = page("Erreur", &Nav::Anonymous, &body).into_response();
        *r.status_mut() = self.status;
        r
    }
}

/// `303 See Other` to a path of this site.
pub fn see_other(to: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// An error message, announced to screen readers.
pub fn alert(message: &str) -> String {
    if message.is_empty() {
        return String::new();
    }
    format!(
        "<div class=\"alert\" role=\"alert\"><p>{}</p></div>",
        esc(message)
    )
}

/// A confirmation message.
pub fn notice(message: &str) -> String {
    if message.is_empty() {
        return String::new();
    }
    format!(
        "<div class=\"notice\" role=\"status\"><p>{}</p></div>",
        esc(message)
    )
}

// ---------------------------------------------------------------------------------------------
// CSRF

/// The anti-CSRF token of a session (or pre-session) secret: HMAC under the vault's `web-csrf`
/// service key of the secret's SHA-256 (so the token never reveals the secret).
pub async fn csrf_token(s: &AppState, secret: &str) -> Result<String, ApiError> {
    let input = format!("carnet-web-csrf/1\n{}", sha256_hex(secret.as_bytes()));
    Ok(s.store.csrf_mac(input.as_bytes()).await?)
}

/// Checks the token of a POSTed form against `secret`, in constant time.
pub async fn check_csrf(s: &AppState, secret: &str, form: &Form) -> Result<(), WebError> {
    let expected = csrf_token(s, secret).await?;
    let presented = form.get(CSRF_FIELD);
    if aws_lc_rs::constant_time::verify_slices_are_equal(presented.as_bytes(), expected.as_bytes()).is_ok() {
        Ok(())
    } else {
        Err(WebError::csrf())
    }
}

/// The hidden field of a form.
pub fn csrf_field(token: &str) -> String {
    format!(
        "<input type=\"hidden\" name=\"{CSRF_FIELD}\" value=\"{}\">",
        esc(token)
    )
}

/// The pre-session secret of an anonymous browser, and a fresh cookie value when it has none.
pub fn pre_session(headers: &HeaderMap) -> Result<(String, Option<String>), ApiError> {
    match cookie(headers, PRE_SESSION_COOKIE).filter(|v| v.len() >= 20 && v.len() <= 100) {
        Some(v) => Ok((v.to_string(), None)),
        None => {
            let fresh = random_token()?;
            Ok((fresh.clone(), Some(fresh)))
        }
    }
}

/// Checks an anonymous form: the pre-session cookie must be there and match the token.
pub async fn check_pre_session(s: &AppState, headers: &HeaderMap, form: &Form) -> Result<String, WebError> {
    let secret = cookie(headers, PRE_SESSION_COOKIE)
        .filter(|v| v.len() >= 20 && v.len() <= 100)
        .ok_or_else(|| {
            WebError::new(
                StatusCode::FORBIDDEN,
                "Votre navigateur n'a pas renvoyé le cookie de sécurité de ce formulaire : \
                 autorisez les cookies de ce site, rechargez la page et recommencez.",
            )
        })?
        .to_string();
    check_csrf(s, &secret, form).await?;
    Ok(secret)
}

/// Sets the pre-session cookie on a response when the browser had none.
pub fn set_pre_session(r: &mut Response, fresh: Option<String>) -> Result<(), ApiError> {
    if let Some(v) = fresh {
        set_cookie(r, PRE_SESSION_COOKIE, &v, "/", 3600)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Forms

/// A submitted form (`application/x-www-form-urlencoded`, or the text fields of a multipart one).
#[derive(Default, Debug)]
pub struct Form(Vec<(String, String)>);

impl Form {
    pub fn parse(body: &[u8]) -> Self {
        Form(
            url::form_urlencoded::parse(body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        )
    }

    /// The first value of `name`, or "".
    pub fn get(&self, name: &str) -> &str {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map_or("", |(_, v)| v.as_str())
    }

    /// The trimmed value of `name`, `None` when empty.
    pub fn opt(&self, name: &str) -> Option<&str> {
        Some(self.get(name).trim()).filter(|v| !v.is_empty())
    }

    /// Every value of `name` (checkboxes), in order.
    pub fn all<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.0
            .iter()
            .filter(move |(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every (name, value) pair, in order.
    pub fn pairs(&self) -> impl Iterator<Item = &(String, String)> {
        self.0.iter()
    }

    pub fn push(&mut self, name: String, value: String) {
        self.0.push((name, value));
    }
}

/// One part of a `multipart/form-data` body.
#[derive(Debug)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub data: Vec<u8>,
}

fn find(hay: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    if needle.is_empty() || hay.len() < needle.len() {
        return None;
    }
    (from..=hay.len() - needle.len()).find(|&i| hay[i..].starts_with(needle))
}

/// `key="value"` parameters of a header value, quotes respected (`a; name="x;y"`).
fn header_params(v: &str) -> HashMap<String, String> {
    let mut out = HashMap::new();
    let mut parts = Vec::new();
    let (mut cur, mut quoted) = (String::new(), false);
    for c in v.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                cur.push(c);
            }
            ';' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    for p in parts {
        if let Some((k, v)) = p.trim().split_once('=') {
            let v = v.trim();
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            out.insert(k.trim().to_ascii_lowercase(), v.to_string());
        }
    }
    out
}

/// Reads a multipart form (bounded by the document size limit): its text fields, and the parts
/// named `file_field` (the files). A truncated or malformed body is a readable 400.
pub async fn read_multipart(
    s: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
    file_field: &str,
) -> Result<(Form, Vec<Part>), WebError> {
    let limit = s.settings.document_limit_bytes;
    let bytes = crate::api::documents::read_limited(headers, body, limit + 64 * 1024).await?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let parts = parse_multipart(content_type, &bytes).ok_or_else(|| {
        WebError::new(
            StatusCode::BAD_REQUEST,
            "Le formulaire n'a pas été reçu en entier : rien n'a été enregistré. Recommencez.",
        )
    })?;
    let mut form = Form::default();
    let mut files = Vec::new();
    for p in parts {
        if p.name == file_field {
            files.push(p);
        } else {
            form.push(p.name, String::from_utf8_lossy(&p.data).into_owned());
        }
    }
    Ok((form, files))
}

/// Parses a `multipart/form-data` body (RFC 7578); `None` when it is not one.
pub fn parse_multipart(content_type: &str, body: &[u8]) -> Option<Vec<Part>> {
    let (mime, _) = content_type.split_once(';')?;
    if !mime.trim().eq_ignore_ascii_case("multipart/form-data") {
        return None;
    }
    let boundary = header_params(content_type).remove("boundary")?;
    if boundary.is_empty() || boundary.len() > 200 {
        return None;
    }
    let delimiter = format!("--{boundary}").into_bytes();
    let next_delimiter = format!("\r\n--{boundary}").into_bytes();
    let mut pos = find(body, &delimiter, 0)? + delimiter.len();
    let mut parts = Vec::new();
    loop {
        if body[pos..].starts_with(b"--") {
            return Some(parts);
        }
        pos += body[pos..].starts_with(b"\r\n").then_some(2)?;
        let head_end = find(body, b"\r\n\r\n", pos)?;
        let head = std::str::from_utf8(&body[pos..head_end]).ok()?;
        let end = find(body, &next_delimiter, head_end + 4)?;
        let (mut name, mut filename, mut ctype) = (None, None, None);
        for line in head.split("\r\n") {
            let (k, v) = line.split_once(':')?;
            match k.trim().to_ascii_lowercase().as_str() {
                "content-disposition" => {
                    let mut p = header_params(v);
                    name = p.remove("name");
                    filename = p.remove("filename");
                }
                "content-type" => ctype = Some(v.trim().to_string()),
                _ => {}
            }
        }
        parts.push(Part {
            name: name?,
            filename,
            content_type: ctype,
            data: body[head_end + 4..end].to_vec(),
        });
        pos = end + next_delimiter.len();
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions

/// A holder (or a representative) with a live session, as seen by the pages.
pub struct Holder {
    pub token: String,
    pub session: Session,
    pub csrf: String,
    /// Given name + family name of the person logged in, and of the space open.
    pub self_name: String,
    pub space_name: String,
    /// Whether this person represents anybody (the space switcher is shown).
    pub represents_others: bool,
}

impl Holder {
    /// Who the gate sees (S-6: a representative is recorded as themselves).
    pub fn actor(&self) -> Actor {
        crate::api::extract::session_actor(&self.session)
    }

    /// The open space as its holder or representative may change it (S-1: the gate's binding).
    pub async fn holder_side(&self, s: &AppState) -> Result<carnet_store::space::HolderSide, ApiError> {
        s.gate
            .holder_side(self.space(), &self.actor())
            .await?
            .ok_or_else(ApiError::not_found)
    }

    pub fn own_space(&self) -> bool {
        self.session.holder == self.session.acting_for
    }

    pub fn space(&self) -> HolderId {
        self.session.acting_for
    }

    /// Checks a POSTed form's anti-CSRF token.
    pub async fn check(&self, s: &AppState, form: &Form) -> Result<(), WebError> {
        check_csrf(s, &self.token, form).await
    }
}

/// Whether French elides before `word` ("d'Inès", "l'agenda"): a vowel or a mute h.
pub(crate) fn elides(word: &str) -> bool {
    word.chars()
        .next()
        .is_some_and(|c| "aeiouyhàâäéèêëîïôöùûüAEIOUYHÀÂÄÉÈÊËÎÏÔÖÙÛÜ".contains(c))
}

/// "de Camille", "d'Inès".
pub(crate) fn de(name: &str) -> String {
    if elides(name) {
        format!("d'{name}")
    } else {
        format!("de {name}")
    }
}

/// "Camille MARTIN" from a space's administrative data (names are not health data).
pub async fn display_name(s: &AppState, id: HolderId) -> Result<String, ApiError> {
    let carnet_store::PersonName { given, family } = s.store.person_name(id).await?;
    let name = format!("{given} {family}").trim().to_string();
    Ok(if name.is_empty() {
        "Espace sans nom".into()
    } else {
        name
    })
}

impl FromRequestParts<AppState> for Holder {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, WebError> {
        if cookie(&parts.headers, SESSION_COOKIE).is_none() {
            return Err(WebError::login("/connexion"));
        }
        let a = match Authenticated::from_request_parts(parts, s).await {
            Ok(a) => a,
            Err(e) if e.status == StatusCode::UNAUTHORIZED => return Err(WebError::login("/connexion")),
            Err(e) => return Err(e.into()),
        };
        let csrf = csrf_token(s, &a.token).await?;
        let self_name = display_name(s, a.session.holder).await?;
        let space_name = if a.session.acting_for == a.session.holder {
            self_name.clone()
        } else {
            display_name(s, a.session.acting_for).await?
        };
        let represents_others = !s.store.represented_by(a.session.holder).await?.is_empty();
        Ok(Holder {
            token: a.token,
            session: a.session,
            csrf,
            self_name,
            space_name,
            represents_others,
        })
    }
}

/// A professional with a live session, as seen by the pages.
pub struct Pro {
    pub token: String,
    pub professional: carnet_store::directory::Professional,
    pub csrf: String,
}

impl FromRequestParts<AppState> for Pro {
    type Rejection = WebError;

    async fn from_request_parts(parts: &mut Parts, s: &AppState) -> Result<Self, WebError> {
        if cookie(&parts.headers, crate::api::pro::PRO_SESSION_COOKIE).is_none() {
            return Err(WebError::login("/pro"));
        }
        let a = match ProAuthenticated::from_request_parts(parts, s).await {
            Ok(a) => a,
            Err(e) if e.status == StatusCode::UNAUTHORIZED => return Err(WebError::login("/pro")),
            Err(e) => return Err(e.into()),
        };
        let csrf = csrf_token(s, &a.token).await?;
        Ok(Pro {
            token: a.token,
            professional: a.professional,
            csrf,
        })
    }
}

// ---------------------------------------------------------------------------------------------
// Layout

/// What the header shows.
pub enum Nav<'a> {
    Anonymous,
    Holder { h: &'a Holder, current: &'static str },
    Pro { p: &'a Pro },
}

const HOLDER_NAV: [(&str, &str); 11] = [
    ("/", "nav.home"),
    ("/documents", "nav.documents"),
    ("/profil", "nav.profile"),
    ("/messages", "nav.messages"),
    ("/agenda", "nav.agenda"),
    ("/remboursements", "nav.reimbursements"),
    ("/catalogue", "nav.catalogue"),
    ("/historique", "nav.history"),
    ("/autorisations", "nav.access"),
    ("/notifications", "nav.notifications"),
    ("/mon-espace", "nav.space"),
];

fn header_html(nav: &Nav<'_>) -> String {
    let brand = "<a class=\"brand\" href=\"/\"><img src=\"/static/carnet.svg\" alt=\"\" width=\"32\" height=\"32\"> Carnet</a>";
    match nav {
        Nav::Anonymous => format!("<header class=\"top\"><div class=\"bar\">{brand}</div></header>"),
        Nav::Holder { h, current } => {
            let mut links = String::new();
            let mut items: Vec<(&str, &str)> = HOLDER_NAV.to_vec();
            if h.represents_others || !h.own_space() {
                items.push(("/espace", "nav.switch"));
            }
            for (href, key) in items {
                let cur = if href == *current {
                    " aria-current=\"page\""
                } else {
                    ""
                };
                links.push_str(&format!("<li><a href=\"{href}\"{cur}>{}</a></li>", t(key)));
            }
            // "Espace de Camille MARTIN", "Espace d'Inès MARTIN"; "Space of …" in English.
            let space_of = match i18n::locale() == i18n::Locale::En {
                true => format!("{} {}", t("layout.space_of"), esc(&h.space_name)),
                false => format!("Espace {}", esc(&de(&h.space_name))),
            };
            let who = if h.own_space() {
                space_of
            } else {
                format!(
                    "{space_of} <span class=\"muted-inv\">({} {})</span>",
                    t("layout.acting_as"),
                    esc(&h.self_name)
                )
            };
            format!(
                "<header class=\"top\"><div class=\"bar\">{brand}<p class=\"who\">{who}</p>\
                 <form method=\"post\" action=\"/deconnexion\" class=\"inline\">{}<button type=\"submit\" class=\"link\">{}</button></form></div>\
                 <nav aria-label=\"{}\"><ul>{links}</ul></nav></header>",
                csrf_field(&h.csrf),
                t("layout.logout"),
                t("layout.menu"),
            )
        }
        Nav::Pro { p } => format!(
            "<header class=\"top\"><div class=\"bar\">{brand}<p class=\"who\">{} {} {}</p>\
             <form method=\"post\" action=\"/pro/deconnexion\" class=\"inline\">{}<button type=\"submit\" class=\"link\">{}</button></form></div>\
             <nav aria-label=\"{}\"><ul><li><a href=\"/pro\">{}</a></li><li><a href=\"/pro/messages\">{}</a></li></ul></nav></header>",
            t("layout.pro_space"),
            esc(&p.professional.given_name),
            esc(&p.professional.family_name),
            csrf_field(&p.csrf),
            t("layout.logout"),
            t("layout.pro_menu"),
            t("nav.pro_search"),
            t("nav.messages"),
        ),
    }
}

/// The language switch of the footer: a plain link to the other language (`?lang=`).
fn language_switch() -> &'static str {
    match i18n::locale() {
        i18n::Locale::Fr => {
            "<p class=\"lang\"><a href=\"?lang=en\" lang=\"en\" hreflang=\"en\">English</a></p>"
        }
        i18n::Locale::En => {
            "<p class=\"lang\"><a href=\"?lang=fr\" lang=\"fr\" hreflang=\"fr\">Français</a></p>"
        }
    }
}

/// A whole page. `title` is static: no data can reach a page title.
pub fn page(title: &'static str, nav: &Nav<'_>, body: &str) -> axum::response::Html<String> {
    axum::response::Html(format!(
        "<!doctype html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} — Carnet</title>\n<link rel=\"stylesheet\" href=\"/static/carnet.css\">\n\
         <link rel=\"icon\" href=\"/static/carnet.svg\" type=\"image/svg+xml\">\n\
         <script src=\"/static/passkey.js\" defer></script>\n\
         <link rel=\"manifest\" href=\"/manifest.webmanifest\">\n<meta name=\"theme-color\" content=\"#1f4e79\">\n\
         </head>\n<body>\n<a class=\"skip\" href=\"#contenu\">{}</a>\n{}\n\
         <main id=\"contenu\" tabindex=\"-1\">\n{body}\n</main>\n\
         <footer><p>{}</p>{}</footer>\n\
         </body>\n</html>\n",
        i18n::locale().tag(),
        t("layout.skip"),
        header_html(nav),
        t("layout.footer"),
        language_switch(),
        title = i18n::title(title),
    ))
}

/// Links to the configured OpenID providers for `audience` (FranceConnect for holders, Pro
/// Santé Connect for professionals): plain links, the provider's pages do the rest.
pub fn oidc_links(s: &AppState, audience: crate::oidc::Audience) -> String {
    let links: String = s
        .oidc
        .values()
        .filter(|p| p.config.audience == audience)
        .map(|p| {
            let label = match p.name.as_str() {
                "franceconnect" => "FranceConnect".to_string(),
                "psc" | "prosanteconnect" => "Pro Santé Connect".to_string(),
                other => other.to_string(),
            };
            format!(
                "<li><a class=\"button\" href=\"/auth/oidc/{}/start\">Se connecter avec {}</a></li>",
                esc(&p.name),
                esc(&label)
            )
        })
        .collect();
    if links.is_empty() {
        String::new()
    } else {
        format!("<ul class=\"actions\">{links}</ul>")
    }
}

// ---------------------------------------------------------------------------------------------
// Words

/// French label of a document class.
pub fn class_label(c: Category) -> &'static str {
    match c {
        Category::Reports => "Comptes rendus",
        Category::Summaries => "Synthèses",
        Category::Imaging => "Imagerie médicale",
        Category::Prescriptions => "Ordonnances",
        Category::Dispensations => "Délivrances de médicaments",
        Category::CarePlans => "Plans de soins",
        Category::AdministeredTreatments => "Traitements administrés",
        Category::Certificates => "Certificats",
        Category::Reimbursements => "Remboursements",
        Category::HolderDocuments => "Mes documents",
        Category::Administrative => "Documents administratifs",
    }
}

/// `<option>`s of the document classes, `selected` one marked.
pub fn class_options(selected: &str) -> String {
    Category::ALL
        .iter()
        .map(|c| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                c.tag(),
                if c.tag() == selected { " selected" } else { "" },
                class_label(*c)
            )
        })
        .collect()
}

/// French label of a profession of the habilitation matrix.
pub fn profession_label(p: &str) -> String {
    match p {
        "medecin" => "médecin".into(),
        "infirmier" => "infirmier ou infirmière".into(),
        "pharmacien" => "pharmacien ou pharmacienne".into(),
        "sage_femme" => "sage-femme".into(),
        "chirurgien_dentiste" => "chirurgien-dentiste".into(),
        "masseur_kinesitherapeute" => "masseur-kinésithérapeute".into(),
        other => other.replace('_', " "),
    }
}

/// "Dr Claire LEROY" for a professional of the directory.
pub fn professional_name(p: &carnet_store::directory::Professional) -> String {
    let dr = if matches!(p.profession.as_str(), "medecin" | "chirurgien_dentiste") {
        "Dr "
    } else {
        ""
    };
    format!("{dr}{} {}", p.given_name, p.family_name)
}

/// The instant in France's legal time (CET/CEST, the EU rule: summer time from the last
/// Sunday of March to the last Sunday of October, changes at 01:00 UTC).
pub fn paris(t: Timestamp) -> Option<time::OffsetDateTime> {
    // The EU summer-time rule lives with the agenda, which needs it for recurrences.
    let offset = time::UtcOffset::from_whole_seconds(carnet_domain::agenda::paris_offset_seconds(t)).ok()?;
    Some(t.to_offset_date_time()?.to_offset(offset))
}

/// "24/11/2026".
pub fn day(t: Timestamp) -> String {
    paris(t).map_or_else(String::new, |d| {
        format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
    })
}

/// "le 24/11/2026 à 10:42".
pub fn when(t: Timestamp) -> String {
    let (on, at) = if i18n::locale() == i18n::Locale::En {
        ("on", "at")
    } else {
        ("le", "à")
    };
    paris(t).map_or_else(String::new, |d| {
        format!(
            "{on} {:02}/{:02}/{} {at} {:02}:{:02}",
            d.day(),
            u8::from(d.month()),
            d.year(),
            d.hour(),
            d.minute()
        )
    })
}

/// "12/03/2026" from an ISO date "2026-03-12" (partial dates as they are).
pub fn iso_day(d: &str) -> String {
    let p: Vec<&str> = d.split('-').collect();
    match p.as_slice() {
        [y, m, dd] if dd.len() >= 2 => format!("{}/{m}/{y}", &dd[..2]),
        [y, m] => format!("{m}/{y}"),
        _ => d.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// French elides before a vowel or a mute h: "d'Inès", "d'Hugo", "de Camille".
    #[test]
    fn french_elision_of_de() {
        assert_eq!(de("Inès MARTIN"), "d'Inès MARTIN");
        assert_eq!(de("Hugo"), "d'Hugo");
        assert_eq!(de("Élodie"), "d'Élodie");
        assert_eq!(de("Camille"), "de Camille");
        assert!(elides("agenda") && !elides("dossier"));
    }

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            esc("<a href=\"x\">l'été & co</a>"),
            "&lt;a href=&quot;x&quot;&gt;l&#39;été &amp; co&lt;/a&gt;"
        );
    }

    #[test]
    fn multipart_bodies_are_parsed() {
        let body = b"--XyZ\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\nabc\r\n\
--XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a;b.txt\"\r\nContent-Type: text/plain\r\n\r\nline 1\r\nline 2\r\n\
--XyZ--\r\n";
        let parts = parse_multipart("multipart/form-data; boundary=XyZ", body).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(
            (parts[0].name.as_str(), parts[0].data.as_slice()),
            ("csrf", &b"abc"[..])
        );
        assert_eq!(parts[1].filename.as_deref(), Some("a;b.txt"));
        assert_eq!(parts[1].content_type.as_deref(), Some("text/plain"));
        assert_eq!(parts[1].data, b"line 1\r\nline 2");
        assert!(parse_multipart("application/x-www-form-urlencoded", body).is_none());
        assert!(parse_multipart("multipart/form-data; boundary=XyZ", b"--XyZ\r\nbroken").is_none());
    }

    #[test]
    fn french_legal_time() {
        // Winter: UTC+1; summer: UTC+2; the change on the last Sunday of March at 01:00 UTC.
        let t = |s: &str| {
            Timestamp::from_offset_date_time(
                time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).unwrap(),
            )
        };
        assert_eq!(when(t("2026-11-24T09:42:00Z")), "le 24/11/2026 à 10:42");
        assert_eq!(when(t("2026-07-01T09:42:00Z")), "le 01/07/2026 à 11:42");
        assert_eq!(when(t("2026-03-29T00:59:00Z")), "le 29/03/2026 à 01:59");
        assert_eq!(when(t("2026-03-29T01:00:00Z")), "le 29/03/2026 à 03:00");
        assert_eq!(iso_day("2026-03-12"), "12/03/2026");
    }
}
