//! The home page ("what is new" in the space, or what Carnet is for a visitor) and the space
//! switcher of representatives (MI-1; the same checks as `api::me::act_for`).

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::HolderId;
use carnet_domain::access::Context;
use carnet_store::documents::DocumentFilter;

use super::access::{Whose, describe};
use super::{Form, Holder, Nav, WebError, csrf_field, display_name, esc, page, see_other};
use crate::api::me::represents;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/espace", get(spaces).post(switch))
}

fn landing(s: &AppState) -> String {
    let demo = if s.settings.demo {
        "<p class=\"notice\"><strong>Instance de démonstration</strong> : les données sont fictives et recréées à chaque démarrage.</p>"
    } else {
        ""
    };
    format!(
        "<h1>Carnet, votre espace numérique de santé</h1>{demo}\
         <p>Vos documents, votre profil médical, vos messages et vos rendez-vous, partagés avec les \
         professionnels que vous choisissez. Chaque accès est tracé et vous en êtes informé.</p>\
         <ul class=\"actions\"><li><a class=\"button\" href=\"/connexion\">Se connecter</a></li>\
         <li><a href=\"/pro\">Espace professionnel</a></li></ul>\
         <p lang=\"en\">Carnet is a personal health space. Every access is traced and the holder is told at once.</p>"
    )
}

async fn home(State(s): State<AppState>, holder: Result<Holder, WebError>) -> Result<Response, WebError> {
    let h = match holder {
        Ok(h) => h,
        Err(e) if e.redirect.is_some() => {
            return Ok(page("Accueil", &Nav::Anonymous, &landing(&s)).into_response());
        }
        Err(e) => return Err(e),
    };
    let docs = s
        .gate
        .list_documents(
            h.space(),
            &h.actor(),
            &DocumentFilter {
                limit: 1,
                ..DocumentFilter::default()
            },
            &Context::default(),
        )
        .await
        .map_err(ApiError::from)?;
    let notices = s
        .store
        .notices_before(h.space(), None, 10)
        .await
        .map_err(ApiError::from)?;
    let whose = Whose::of(&h);
    let lines = describe(&s, &notices, &whose).await?;
    let news = if lines.is_empty() {
        "<p>Rien de nouveau : aucun professionnel n'a accédé à cet espace.</p>".to_string()
    } else {
        format!(
            "<ul class=\"events\">{}</ul><p><a href=\"/historique\">Tout l'historique des accès</a></p>",
            lines
                .iter()
                .map(|l| format!("<li>{}</li>", esc(l)))
                .collect::<String>()
        )
    };
    let given = h.self_name.split(' ').next().unwrap_or_default();
    let n = docs.total;
    let docs_line = match n {
        0 => "Aucun document dans cet espace.".to_string(),
        1 => "1 document dans cet espace.".to_string(),
        n => format!("{n} documents dans cet espace."),
    };
    let body = format!(
        "<h1>Bonjour {}</h1>\
         <section aria-labelledby=\"news\"><h2 id=\"news\">Quoi de neuf ?</h2>{news}</section>\
         <section aria-labelledby=\"docs\"><h2 id=\"docs\">Documents</h2><p>{docs_line} \
         <a href=\"/documents\">Voir les documents</a></p></section>\
         <section aria-labelledby=\"more\"><h2 id=\"more\">Votre espace</h2><ul>\
         <li><a href=\"/profil\">Profil médical</a> : maladies, traitements, allergies, mesures</li>\
         <li><a href=\"/autorisations\">Autorisations</a> : qui peut consulter cet espace</li>\
         <li><a href=\"/notifications\">Notifications</a> : comment vous êtes prévenu·e</li></ul></section>",
        esc(given)
    );
    Ok(page("Accueil", &Nav::Holder { h: &h, current: "/" }, &body).into_response())
}

async fn spaces(State(s): State<AppState>, h: Holder) -> Result<Response, WebError> {
    let mut list = vec![(h.session.holder, "self".to_string())];
    list.extend(
        s.store
            .represented_by(h.session.holder)
            .await
            .map_err(ApiError::from)?,
    );
    let mut items = String::new();
    for (id, relation) in list {
        let name = display_name(&s, id).await?;
        let what = match relation.as_str() {
            "self" => "votre propre espace".to_string(),
            "guardian" => "vous en êtes le tuteur ou la tutrice".to_string(),
            _ => "vous en êtes le représentant légal".to_string(),
        };
        let action = if id == h.space() {
            "<p><strong>Espace ouvert actuellement</strong></p>".to_string()
        } else {
            format!(
                "<form method=\"post\" action=\"/espace\">{}<input type=\"hidden\" name=\"holder\" value=\"{id}\">\
                 <button type=\"submit\">Ouvrir l'espace de {}</button></form>",
                csrf_field(&h.csrf),
                esc(&name)
            )
        };
        items.push_str(&format!(
            "<li class=\"card\"><h2>{}</h2><p>{}</p>{action}</li>",
            esc(&name),
            esc(&what)
        ));
    }
    let body = format!(
        "<h1>Changer d'espace</h1><p>Vous pouvez agir dans votre espace et dans ceux des personnes que vous représentez. \
         Vos actions y sont enregistrées à votre nom.</p><ul class=\"plain\">{items}</ul>"
    );
    Ok(page(
        "Changer d'espace",
        &Nav::Holder {
            h: &h,
            current: "/espace",
        },
        &body,
    )
    .into_response())
}

async fn switch(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let target: HolderId = form
        .get("holder")
        .parse()
        .map_err(|_| WebError::new(StatusCode::BAD_REQUEST, "Choisissez un espace dans la liste."))?;
    if target != h.session.holder && !represents(&s, h.session.holder, target).await? {
        return Err(ApiError::not_found().into());
    }
    s.store
        .set_acting_for(&h.token, target)
        .await
        .map_err(ApiError::from)?;
    Ok(see_other("/"))
}
