//! The catalogue of referenced services for holders (CA-1, CA-3) and the OAuth consent screen
//! (issue 9): browse by category or search (POSTed: no search words in URLs), see what each
//! service may reach, connect (ticking categories within the convention) and disconnect; an
//! app's authorisation request (`/oauth/authorize`) shows the same choice and sends a code back.
//!
//! The protocol's checks are `crate::oauth::check_authorize`; connecting is
//! `Store::connect_app` (the app's grant in the directory), disconnecting
//! `Store::disconnect_app` (grant removed and every token of the app for this space revoked).

use std::collections::HashMap;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carnet_domain::access::{AccessPolicy, Category, Grantee};
use carnet_domain::catalogue::{Scope, ServiceCategory};
use carnet_store::catalogue::Service;

use super::i18n::fr_en as tr;
use super::{CSP, Form, Holder, Nav, WebError, alert, csrf_field, esc, notice, page, see_other};
use crate::AppState;
use crate::oauth::{AuthRequest, AuthorizeError};

/// The cookie that brings a holder back to an app's authorisation request after logging in.
pub const RETURN_COOKIE: &str = "carnet_oauth_return";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/catalogue", get(show).post(search))
        .route("/catalogue/connecter", post(connect))
        .route("/catalogue/deconnecter", post(disconnect))
        .route("/oauth/authorize", get(authorize).post(decide))
}

pub fn category_label(c: Category) -> &'static str {
    match c {
        Category::Reports => tr("Comptes rendus", "Reports"),
        Category::Summaries => tr(
            "Synthèses, mesures et profil médical",
            "Summaries, measurements and medical profile",
        ),
        Category::Imaging => tr("Imagerie médicale", "Medical imaging"),
        Category::Prescriptions => tr("Ordonnances et traitements", "Prescriptions and treatments"),
        Category::Dispensations => tr("Délivrances de médicaments", "Dispensed medicines"),
        Category::CarePlans => tr("Plans de soins et rendez-vous", "Care plans and appointments"),
        Category::AdministeredTreatments => tr(
            "Vaccinations et traitements administrés",
            "Vaccinations and administered treatments",
        ),
        Category::Certificates => tr("Certificats", "Certificates"),
        Category::Reimbursements => tr("Remboursements", "Reimbursements"),
        Category::HolderDocuments => tr("Mes documents", "My documents"),
        Category::Administrative => tr("Identité et coordonnées", "Identity and contact details"),
    }
}

pub fn service_category_label(c: ServiceCategory) -> &'static str {
    match c {
        ServiceCategory::Telehealth => tr("Télésanté", "Telehealth"),
        ServiceCategory::Prevention => tr("Prévention", "Prevention"),
        ServiceCategory::CarePathway => tr("Parcours de soins", "Care pathway"),
        ServiceCategory::HomeReturn => tr("Retour à domicile", "Home return"),
        ServiceCategory::Orientation => tr("Orientation", "Orientation"),
        ServiceCategory::Information => tr(
            "Information sur l'offre de soins et les droits",
            "Information on care and rights",
        ),
    }
}

/// The categories an app holds in this directory (`None`: not connected).
fn connected(policy: &AccessPolicy, client_id: &str) -> Option<Vec<Category>> {
    policy.grants.iter().find_map(|g| match &g.grantee {
        Grantee::App { id } if id.0 == client_id => Some(g.categories.clone().unwrap_or_default()),
        _ => None,
    })
}

fn checkboxes(offered: &[Category], checked: &[Category]) -> String {
    offered
        .iter()
        .map(|c| {
            format!(
                "<li><input type=\"checkbox\" id=\"cat-{0}\" name=\"categorie\" value=\"{0}\"{1}> \
                 <label for=\"cat-{0}\">{2}</label></li>",
                c.tag(),
                if checked.contains(c) { " checked" } else { "" },
                category_label(*c)
            )
        })
        .collect()
}

fn ticked(form: &Form) -> Vec<Category> {
    form.all("categorie").filter_map(Category::parse).collect()
}

fn service_card(h: &Holder, svc: &Service, policy: &AccessPolicy) -> String {
    let a = &svc.record.application;
    let allowed = svc
        .record
        .convention
        .as_ref()
        .map(|c| c.categories.clone())
        .unwrap_or_default();
    let list: String = allowed
        .iter()
        .map(|c| format!("<li>{}</li>", category_label(*c)))
        .collect();
    let until = svc
        .record
        .convention
        .as_ref()
        .map(|c| super::iso_day(&c.ends.to_rfc3339()))
        .unwrap_or_default();
    let action = match connected(policy, &svc.client_id) {
        Some(cats) => {
            let now: String = cats
                .iter()
                .map(|c| format!("<li>{}</li>", category_label(*c)))
                .collect();
            format!(
                "<p class=\"ok\"><strong>{}</strong></p><ul>{now}</ul>\
                 <form method=\"post\" action=\"/catalogue/deconnecter\">{}\
                 <input type=\"hidden\" name=\"client_id\" value=\"{}\">\
                 <p><button type=\"submit\" class=\"danger\">{}</button></p></form>",
                tr(
                    "Connecté : ce service peut accéder à",
                    "Connected: this service may reach"
                ),
                csrf_field(&h.csrf),
                esc(&svc.client_id),
                tr("Déconnecter ce service", "Disconnect this service"),
            )
        }
        None => format!(
            "<form method=\"post\" action=\"/catalogue/connecter\">{}\
             <input type=\"hidden\" name=\"client_id\" value=\"{}\">\
             <fieldset><legend>{}</legend><ul class=\"plain\">{}</ul></fieldset>\
             <p><button type=\"submit\">{}</button></p></form>",
            csrf_field(&h.csrf),
            esc(&svc.client_id),
            tr(
                "Cochez ce que vous acceptez de partager",
                "Tick what you agree to share",
            ),
            checkboxes(&allowed, &[]),
            tr("Connecter ce service", "Connect this service"),
        ),
    };
    format!(
        "<article class=\"card\"><h2>{}</h2><p class=\"muted\">{}</p><p>{}</p>\
         <p>{}</p><ul>{list}</ul><p class=\"muted\">{} {until}</p>{action}</article>",
        esc(&a.name),
        service_category_label(a.category),
        esc(&a.description),
        tr(
            "Selon sa convention, ce service peut demander :",
            "Under its convention, this service may ask for:",
        ),
        tr("Référencé jusqu'au", "Listed until"),
    )
}

async fn render(
    s: &AppState,
    h: &Holder,
    category: Option<ServiceCategory>,
    words: &str,
    message: &str,
    info: &str,
) -> Result<String, WebError> {
    let listed = s.store.listed_services().await?;
    let (policy, _) = h.holder_side(s).await?.access_policy().await?;
    let words_lc = words.to_lowercase();
    let shown: Vec<&Service> = listed
        .iter()
        .filter(|svc| category.is_none_or(|c| svc.record.application.category == c))
        .filter(|svc| {
            words_lc.is_empty()
                || svc.record.application.name.to_lowercase().contains(&words_lc)
                || svc
                    .record
                    .application
                    .description
                    .to_lowercase()
                    .contains(&words_lc)
        })
        .collect();
    let filters: String = std::iter::once(format!(
        "<li><a href=\"/catalogue\"{}>{}</a></li>",
        if category.is_none() {
            " aria-current=\"page\""
        } else {
            ""
        },
        tr("Tous", "All")
    ))
    .chain(ServiceCategory::ALL.iter().map(|c| {
        format!(
            "<li><a href=\"/catalogue?categorie={}\"{}>{}</a></li>",
            c.tag(),
            if category == Some(*c) {
                " aria-current=\"page\""
            } else {
                ""
            },
            service_category_label(*c)
        )
    }))
    .collect();
    let cards: String = if shown.is_empty() {
        format!(
            "<p>{}</p>",
            tr("Aucun service ne correspond.", "No service matches.")
        )
    } else {
        shown.iter().map(|svc| service_card(h, svc, &policy)).collect()
    };
    Ok(format!(
        "<h1>{}</h1>{}{}<p>{}</p>\
         <nav aria-label=\"{}\"><ul class=\"actions\">{filters}</ul></nav>\
         <form method=\"post\" action=\"/catalogue\" class=\"card\" role=\"search\">{}\
         <p><label for=\"q\">{}</label><input id=\"q\" name=\"q\" type=\"search\" value=\"{}\"></p>\
         <p><button type=\"submit\">{}</button></p></form>{cards}",
        tr("Catalogue de services", "Service catalogue"),
        alert(message),
        notice(info),
        tr(
            "Ces services sont référencés par l'État : ils n'accèdent qu'aux données que vous cochez, \
             dans les limites de leur convention, et vous pouvez les déconnecter à tout moment.",
            "These services are referenced by the State: they reach only the data you tick, within \
             their convention, and you can disconnect them at any time.",
        ),
        tr("Catégories de services", "Service categories"),
        csrf_field(&h.csrf),
        tr("Rechercher un service", "Search a service"),
        esc(words),
        tr("Rechercher", "Search"),
    ))
}

fn respond(h: &Holder, status: StatusCode, body: &str) -> Response {
    let mut r = page(
        "Catalogue de services",
        &Nav::Holder {
            h,
            current: "/catalogue",
        },
        body,
    )
    .into_response();
    *r.status_mut() = status;
    r
}

async fn show(State(s): State<AppState>, h: Holder, RawQuery(q): RawQuery) -> Result<Response, WebError> {
    let p: HashMap<String, String> = url::form_urlencoded::parse(q.unwrap_or_default().as_bytes())
        .into_owned()
        .collect();
    let category = p.get("categorie").and_then(|c| ServiceCategory::parse(c));
    let info = match p.get("ok").map(String::as_str) {
        Some("connecte") => tr("Le service est connecté.", "The service is connected."),
        Some("deconnecte") => tr(
            "Le service est déconnecté : il n'a plus accès à votre espace.",
            "The service is disconnected: it no longer reaches your space.",
        ),
        _ => "",
    };
    let body = render(&s, &h, category, "", "", info).await?;
    Ok(respond(&h, StatusCode::OK, &body))
}

async fn search(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let words = form.get("q").trim().chars().take(100).collect::<String>();
    let body = render(&s, &h, None, &words, "", "").await?;
    Ok(respond(&h, StatusCode::OK, &body))
}

async fn listed(s: &AppState, client_id: &str) -> Result<Option<Service>, WebError> {
    Ok(s.store
        .service(client_id)
        .await?
        .filter(|svc| svc.record.listed(s.store.now())))
}

/// CA-3: connecting in the space, with the categories ticked.
async fn connect(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let Some(svc) = listed(&s, form.get("client_id")).await? else {
        let body = render(
            &s,
            &h,
            None,
            "",
            tr(
                "Ce service n'est plus référencé.",
                "This service is no longer listed.",
            ),
            "",
        )
        .await?;
        return Ok(respond(&h, StatusCode::NOT_FOUND, &body));
    };
    match h.holder_side(&s).await?.connect_app(&svc, &ticked(&form)).await {
        Ok(_) => Ok(see_other("/catalogue?ok=connecte")),
        Err(carnet_store::StoreError::Invalid(_)) => {
            let body = render(
                &s,
                &h,
                None,
                "",
                tr(
                    "Cochez au moins une catégorie de données pour connecter ce service.",
                    "Tick at least one category of data to connect this service.",
                ),
                "",
            )
            .await?;
            Ok(respond(&h, StatusCode::UNPROCESSABLE_ENTITY, &body))
        }
        Err(e) => Err(e.into()),
    }
}

/// CA-3: disconnecting: the grant leaves the directory and the app's tokens die at once.
async fn disconnect(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let client_id = form.get("client_id");
    if client_id.is_empty() || client_id.len() > 100 {
        return Err(WebError::new(StatusCode::BAD_REQUEST, "Service inconnu."));
    }
    h.holder_side(&s).await?.disconnect_app(client_id).await?;
    Ok(see_other("/catalogue?ok=deconnecte"))
}

// ---------------------------------------------------------------------------------------------
// The consent screen of `/oauth/authorize`

fn error_page(status: StatusCode, fr: &'static str, en: &'static str) -> Response {
    let mut r = page(
        "Autoriser une application",
        &Nav::Anonymous,
        &format!(
            "<h1>{}</h1>{}",
            tr("Demande refusée", "Request refused"),
            alert(tr(fr, en))
        ),
    )
    .into_response();
    *r.status_mut() = status;
    r
}

fn redirect_to(uri: &str) -> Response {
    let mut r = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(uri) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// The scheme + host (+ port) of a URI, for the consent page's `form-action`.
fn origin_of(uri: &str) -> Option<String> {
    let u = url::Url::parse(uri).ok()?;
    let origin = u.origin();
    origin.is_tuple().then(|| origin.ascii_serialization())
}

fn rights_words(scopes: &[Scope]) -> String {
    scopes
        .iter()
        .filter_map(|sc| match sc {
            Scope::Patient { resource, rights } => {
                let mut what = Vec::new();
                if rights.read || rights.search {
                    what.push(tr("lire", "read"));
                }
                if rights.create {
                    what.push(tr("ajouter", "add"));
                }
                if rights.update {
                    what.push(tr("modifier", "change"));
                }
                if rights.delete {
                    what.push(tr("supprimer", "delete"));
                }
                Some(format!(
                    "<li><code>{}</code> : {}</li>",
                    esc(resource),
                    what.join(", ")
                ))
            }
            Scope::OfflineAccess => Some(format!(
                "<li>{}</li>",
                tr(
                    "rester connecté sans vous redemander (jusqu'à ce que vous le déconnectiez)",
                    "stay connected without asking again (until you disconnect it)"
                )
            )),
            _ => None,
        })
        .collect()
}

fn hidden_fields(p: &HashMap<String, String>) -> String {
    [
        "response_type",
        "client_id",
        "redirect_uri",
        "scope",
        "state",
        "code_challenge",
        "code_challenge_method",
        "aud",
    ]
    .iter()
    .filter_map(|k| p.get(*k).map(|v| (k, v)))
    .map(|(k, v)| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v)))
    .collect()
}

fn consent_page(h: &Holder, req: &AuthRequest, p: &HashMap<String, String>, message: &str) -> Response {
    let a = &req.service.record.application;
    let space = if h.own_space() {
        String::new()
    } else {
        format!(
            "<p>{} <strong>{}</strong>.</p>",
            tr("Vous répondez pour l'espace de", "You answer for the space of"),
            esc(&h.space_name)
        )
    };
    let body = format!(
        "<h1>{}</h1>{}<article class=\"card\"><h2>{}</h2><p class=\"muted\">{}</p><p>{}</p></article>{space}\
         <form method=\"post\" action=\"/oauth/authorize\" class=\"card\">{}{}\
         <fieldset><legend>{}</legend><ul class=\"plain\">{}</ul></fieldset>\
         <p>{}</p><ul>{}</ul>\
         <p>{}</p>\
         <p><button type=\"submit\" name=\"decision\" value=\"autoriser\">{}</button> \
         <button type=\"submit\" name=\"decision\" value=\"refuser\" class=\"secondary\">{}</button></p></form>",
        tr("Autoriser une application", "Authorise an application"),
        alert(message),
        esc(&a.name),
        service_category_label(a.category),
        esc(&a.description),
        csrf_field(&h.csrf),
        hidden_fields(p),
        tr(
            "Cochez les données que vous acceptez de partager avec ce service",
            "Tick the data you agree to share with this service",
        ),
        checkboxes(&req.offered, &[]),
        tr("Le service demande à :", "The service asks to:"),
        rights_words(&req.requested),
        tr(
            "Chaque accès de ce service sera tracé et vous en serez informé. Vous pourrez le déconnecter \
             à tout moment depuis le catalogue ou vos autorisations.",
            "Every access of this service will be traced and you will be told. You can disconnect it at \
             any time from the catalogue or your authorisations.",
        ),
        tr("Autoriser", "Authorise"),
        tr("Refuser", "Refuse"),
    );
    let mut r = page(
        "Autoriser une application",
        &Nav::Holder {
            h,
            current: "/catalogue",
        },
        &body,
    )
    .into_response();
    if !message.is_empty() {
        *r.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    // The answer redirects to the app: the browser must allow that target for this form.
    if let Some(o) = origin_of(&req.redirect_uri)
        && let Ok(v) = HeaderValue::from_str(&format!("{CSP} {o}"))
    {
        r.headers_mut().insert(header::CONTENT_SECURITY_POLICY, v);
    }
    r
}

async fn authorize(
    State(s): State<AppState>,
    headers: HeaderMap,
    RawQuery(q): RawQuery,
    holder: Result<Holder, WebError>,
) -> Result<Response, WebError> {
    let raw = q.unwrap_or_default();
    let p: HashMap<String, String> = url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
    let req = match crate::oauth::check_authorize(&s, &headers, &p).await {
        Ok(r) => r,
        Err(AuthorizeError::Page(fr, en)) => return Ok(error_page(StatusCode::BAD_REQUEST, fr, en)),
        Err(AuthorizeError::Redirect(to)) => return Ok(redirect_to(&to)),
    };
    let h = match holder {
        Ok(h) => h,
        Err(_) => {
            // Log in first, then come back here (the request itself is checked again then).
            use base64::Engine;
            let back =
                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(format!("/oauth/authorize?{raw}"));
            let mut r = see_other("/connexion");
            crate::api::auth::set_cookie(&mut r, RETURN_COOKIE, &back, "/", 900)?;
            return Ok(r);
        }
    };
    Ok(consent_page(&h, &req, &p, ""))
}

async fn decide(
    State(s): State<AppState>,
    headers: HeaderMap,
    h: Holder,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let p: HashMap<String, String> = form.pairs().cloned().collect();
    let req = match crate::oauth::check_authorize(&s, &headers, &p).await {
        Ok(r) => r,
        Err(AuthorizeError::Page(fr, en)) => return Ok(error_page(StatusCode::BAD_REQUEST, fr, en)),
        Err(AuthorizeError::Redirect(to)) => return Ok(redirect_to(&to)),
    };
    if form.get("decision") != "autoriser" {
        let iss = crate::oauth::issuer(&s, &headers);
        return Ok(redirect_to(&crate::oauth::error_redirect(
            &iss,
            &req.redirect_uri,
            req.state.as_deref(),
            "access_denied",
            "the holder refused",
        )));
    }
    let ticked = ticked(&form);
    if ticked.is_empty() {
        return Ok(consent_page(
            &h,
            &req,
            &p,
            tr(
                "Cochez au moins une catégorie de données, ou refusez.",
                "Tick at least one category of data, or refuse.",
            ),
        ));
    }
    let side = h.holder_side(&s).await?;
    let to = crate::oauth::approve(&s, &headers, &req, &side, h.session.holder, &ticked).await?;
    Ok(redirect_to(&to))
}

/// Where to go after a successful login: back to a pending app authorisation, if any.
pub fn after_login(headers: &HeaderMap) -> Option<String> {
    use base64::Engine;
    let v = crate::api::auth::cookie(headers, RETURN_COOKIE)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(v).ok()?;
    let to = String::from_utf8(bytes).ok()?;
    (to.starts_with("/oauth/authorize?") && !to.contains(['\r', '\n'])).then_some(to)
}
