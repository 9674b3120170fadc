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
mod carers;
mod catalogue;
pub(crate) mod contact;
mod documents;
pub(crate) mod export;
mod grant;
mod history;
mod home;
pub mod i18n;
mod messages;
mod notifications;
mod operator;
mod operator_space;
mod opposition;
mod password;
mod pro;
mod pro_document;
mod pro_documents;
mod pro_messages;
mod pro_record;
mod profile;
mod reimbursements;
mod renewal;
mod space;

mod csrf;
mod error;
mod form;
mod layout;
mod session;

pub use csrf::*;
pub use error::*;
pub use form::*;
pub use layout::*;
pub use session::*;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::AppState;

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
        .merge(history::routes())
        .merge(grant::routes())
        .merge(carers::routes())
        .merge(notifications::routes())
        .merge(messages::routes())
        .merge(agenda::routes())
        .merge(pro::routes())
        .merge(pro_messages::routes())
        .merge(pro_documents::routes())
        .merge(pro_document::routes())
        .merge(operator::routes())
        .merge(operator_space::routes())
        .merge(space::routes())
        .merge(contact::routes())
        .merge(password::routes())
        .merge(renewal::routes())
        .merge(opposition::routes())
        .merge(export::routes())
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
        .fallback(not_found)
        .layer(axum::middleware::from_fn(i18n::layer))
        .layer(axum::middleware::map_response(security_headers))
}

/// Any other path: for a person, a page in the site's frame that says so and leads back; for a
/// program (`/api/…`, `/fhir/…`), the API's JSON 404.
async fn not_found(uri: axum::http::Uri, holder: Result<Holder, WebError>) -> Response {
    let path = uri.path();
    if path.starts_with("/api/") || path.starts_with("/fhir") {
        return crate::ApiError::not_found().into_response();
    }
    let body = format!(
        "<h1>{}</h1><p>{}</p><p><a href=\"/\">{}</a></p>",
        i18n::fr_en("Page introuvable", "Page not found"),
        i18n::fr_en(
            "Cette adresse ne correspond à aucune page de Carnet. Elle a peut-être été mal recopiée.",
            "This address matches no page of Carnet. It may have been mistyped.",
        ),
        i18n::fr_en("Revenir à l'accueil", "Back to the home page"),
    );
    let nav = match &holder {
        Ok(h) => Nav::Holder { h, current: "" },
        Err(_) => Nav::Anonymous,
    };
    let mut r = page("Page introuvable", &nav, &body).into_response();
    *r.status_mut() = StatusCode::NOT_FOUND;
    r
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

#[cfg(test)]
mod tests {
    use super::*;
    use carnet_domain::Timestamp;

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
        for (utc, paris) in [
            ("2026-11-24T09:42:00Z", "le 24/11/2026 à 10 h 42"),
            ("2026-07-01T09:42:00Z", "le 01/07/2026 à 11 h 42"),
            ("2026-03-29T00:59:00Z", "le 29/03/2026 à 01 h 59"),
            ("2026-03-29T01:00:00Z", "le 29/03/2026 à 03 h 00"),
        ] {
            // No-break spaces around "h": the time never splits across lines.
            assert_eq!(when(t(utc)), paris.replace(" h ", "\u{a0}h\u{a0}"));
        }
        assert_eq!(iso_day("2026-03-12"), "12/03/2026");
    }
}
