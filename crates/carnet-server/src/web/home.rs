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
use super::i18n::t;
use super::{Form, Holder, Nav, WebError, csrf_field, display_name, esc, page, see_other};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/espace", get(spaces).post(switch))
}

/// Runs of notices by the same actor, with the same action on the same kind of item and
/// category, newest first, and how many each holds; an emergency access is always a run of its
/// own.
fn collapse(notices: &[carnet_store::traces::Trace]) -> Vec<(&carnet_store::traces::Trace, usize)> {
    let mut out: Vec<(&carnet_store::traces::Trace, usize)> = Vec::new();
    // The identity banner a professional's every page reads (issue 33) is routine: it stays
    // in the history of accesses, not among what the home page highlights.
    for t in notices.iter().filter(|t| t.entry.item != "patient/identity") {
        match out.last_mut() {
            Some((first, n))
                if !t.entry.emergency
                    && !first.entry.emergency
                    && first.entry.actor == t.entry.actor
                    && first.entry.action == t.entry.action
                    && first.entry.category == t.entry.category
                    && kind(&first.entry.item) == kind(&t.entry.item) =>
            {
                *n += 1;
            }
            _ => out.push((t, 1)),
        }
    }
    out
}

/// The kind of a traced item: `document/0190…` and `documents` are documents, `profile/…` and
/// `profile` the profile.
fn kind(item: &str) -> &str {
    let k = item.split('/').next().unwrap_or(item);
    k.strip_suffix('s').unwrap_or(k)
}

fn landing(s: &AppState) -> String {
    let demo = if s.settings.demo {
        format!("<p class=\"notice\">{}</p>", t("landing.demo"))
    } else {
        String::new()
    };
    format!(
        "<h1>{}</h1>{demo}<p>{}</p>\
         <ul class=\"actions\"><li><a class=\"button\" href=\"/connexion\">{}</a></li>\
         <li><a href=\"/pro\">{}</a></li></ul>",
        t("landing.title"),
        t("landing.intro"),
        t("landing.login"),
        t("landing.pro"),
    )
}

async fn home(State(s): State<AppState>, holder: Result<Holder, WebError>) -> Result<Response, WebError> {
    let h = match holder {
        Ok(h) => h,
        Err(e) if e.redirect == Some("/connexion") => {
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
    // AC-6, MI-2, DM-6: what is new, as this reader may see it (the gate decides).
    let notices = s
        .gate
        .notices(h.space(), &h.actor(), None, 40)
        .await
        .map_err(ApiError::from)?
        .map(|p| p.traces)
        .unwrap_or_default();
    let whose = Whose::of(&h);
    // The same person doing the same thing several times in a row is one line ("3 fois"); an
    // emergency access stands out and is never folded into another line.
    let groups = collapse(&notices);
    let firsts: Vec<carnet_store::traces::Trace> =
        groups.iter().take(10).map(|(t, _)| (*t).clone()).collect();
    let lines = describe(&s, &firsts, &whose).await?;
    let news = if lines.is_empty() {
        format!("<p>{}</p>", t("home.nothing"))
    } else {
        format!(
            "<ul class=\"events\">{}</ul><p><a href=\"/historique\">{}</a></p>",
            lines
                .iter()
                .zip(&groups)
                .map(|(l, (t, n))| {
                    let times = if *n > 1 {
                        format!(" {}", super::i18n::times(*n))
                    } else {
                        String::new()
                    };
                    if t.entry.emergency {
                        format!(
                            "<li class=\"urgent\"><strong>{}</strong> {}{times}</li>",
                            super::i18n::fr_en("Accès en urgence :", "Emergency access:"),
                            esc(l)
                        )
                    } else {
                        format!("<li>{}{times}</li>", esc(l))
                    }
                })
                .collect::<String>(),
            t("home.all_history")
        )
    };
    // Unread messages and the next events (MS-4, AG-1), as the gate lets the caller see them.
    let ctx = Context::default();
    let unread: i64 = match s.gate.list_conversations(h.space(), &h.actor(), &ctx).await {
        Ok(c) => c.iter().map(|c| c.unread).sum(),
        Err(carnet_store::StoreError::NotFound) => 0,
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let messages_line = match unread {
        0 => t("home.messages_none").to_string(),
        1 => t("home.messages_one").to_string(),
        n => format!("{n} {}", t("home.messages_many")),
    };
    let now = s.store.now();
    let mut next: Vec<(carnet_domain::Timestamp, String)> =
        match s.gate.list_events(h.space(), &h.actor(), &ctx).await {
            Ok(events) => events
                .iter()
                .flat_map(|e| {
                    e.event
                        .occurrences(now, now.plus_seconds(60 * 86_400), 3)
                        .into_iter()
                        .map(|t| (t, e.event.title.clone()))
                })
                .collect(),
            Err(carnet_store::StoreError::NotFound) => Vec::new(),
            Err(e) => return Err(ApiError::from(e).into()),
        };
    next.sort();
    next.truncate(3);
    let agenda = if next.is_empty() {
        format!("<p>{}</p>", t("home.agenda_none"))
    } else {
        format!(
            "<ul class=\"events\">{}</ul>",
            next.iter()
                .map(|(t, title)| format!("<li>{} — {}</li>", esc(&super::when(*t)), esc(title)))
                .collect::<String>()
        )
    };
    let given = h.self_name.split(' ').next().unwrap_or_default();
    let n = docs.total;
    let docs_line = match n {
        0 => t("home.docs_none").to_string(),
        1 => t("home.docs_one").to_string(),
        n => format!("{n} {}", t("home.docs_many")),
    };
    // A representative in a child's space reads whose space it is, not a greeting (MI-1).
    let (hello, whose) = if h.own_space() {
        (t("home.hello").to_string(), esc(given))
    } else if super::i18n::locale() == super::i18n::Locale::En {
        (t("layout.space_of").to_string(), esc(&h.space_name))
    } else {
        ("Espace".to_string(), esc(&super::de(&h.space_name)))
    };
    let your_space = if h.own_space() {
        t("home.your_space")
    } else {
        t("home.this_space")
    };
    let body = format!(
        "<h1>{} {}</h1>\
         <section aria-labelledby=\"news\"><h2 id=\"news\">{}</h2>{news}</section>\
         <section aria-labelledby=\"docs\"><h2 id=\"docs\">{}</h2><p>{docs_line} \
         <a href=\"/documents\">{}</a></p></section>\
         <section aria-labelledby=\"msgs\"><h2 id=\"msgs\">{}</h2><p>{messages_line} <a href=\"/messages\">{}</a></p></section>\
         <section aria-labelledby=\"next\"><h2 id=\"next\">{}</h2>{agenda}<p><a href=\"/agenda\">{}</a></p></section>\
         <section aria-labelledby=\"more\"><h2 id=\"more\">{}</h2><ul>\
         <li><a href=\"/profil\">{}</a> : {}</li>\
         <li><a href=\"/remboursements\">{}</a> : {}</li>\
         <li><a href=\"/autorisations\">{}</a> : {}</li>\
         <li><a href=\"/notifications\">{}</a> : {}</li>\
         <li><a href=\"/mon-espace\">{}</a> : {}</li></ul></section>",
        hello,
        whose,
        t("home.news"),
        t("nav.documents"),
        t("home.see_docs"),
        t("nav.messages"),
        t("home.see_messages"),
        t("home.next_events"),
        t("home.see_agenda"),
        your_space,
        t("nav.profile"),
        t("home.profile_line"),
        t("nav.reimbursements"),
        t("home.reimbursements_line"),
        t("nav.access"),
        t("home.access_line"),
        t("nav.notifications"),
        t("home.notif_line"),
        if h.own_space() {
            t("nav.space")
        } else {
            t("nav.this_space")
        },
        t("home.space_line"),
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
    // MI-5: the spaces this person helps as a carer (reads only).
    list.extend(
        s.store
            .helped_by(h.session.holder)
            .await
            .map_err(ApiError::from)?
            .into_iter()
            .map(|helped| (helped.holder, "carer".to_string())),
    );
    let mut items = String::new();
    for (id, relation) in list {
        let name = display_name(&s, id).await?;
        let what = match relation.as_str() {
            "self" => "votre propre espace".to_string(),
            "guardian" => "vous en êtes le tuteur ou la tutrice".to_string(),
            "carer" => "vous en êtes l'aidant : vous consultez les documents que cette personne a choisi de vous montrer".to_string(),
            _ => "vous en êtes le représentant légal".to_string(),
        };
        let action = if id == h.space() {
            "<p><strong>Espace ouvert actuellement</strong></p>".to_string()
        } else {
            format!(
                "<form method=\"post\" action=\"/espace\">{}<input type=\"hidden\" name=\"holder\" value=\"{id}\">\
                 <button type=\"submit\">Ouvrir l'espace {}</button></form>",
                csrf_field(&h.csrf),
                esc(&super::de(&name))
            )
        };
        items.push_str(&format!(
            "<li class=\"card\"><h2>{}</h2><p>{}</p>{action}</li>",
            esc(&name),
            esc(&what)
        ));
    }
    let body = format!(
        "<h1>Changer d'espace</h1><p>Vous pouvez agir dans votre espace et dans ceux des personnes que vous représentez, \
         et consulter ceux des personnes dont vous êtes l'aidant. Vos actions y sont enregistrées à votre nom.</p>\
         <ul class=\"plain\">{items}</ul><p><a href=\"/aider\">Aider un proche : saisir un code d'invitation</a></p>"
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
    let Some(as_carer) = crate::api::me::acting_as(&s, h.session.holder, target).await? else {
        return Err(ApiError::not_found().into());
    };
    s.store
        .set_acting_for(&h.token, target, as_carer)
        .await
        .map_err(ApiError::from)?;
    Ok(see_other(if as_carer { "/documents" } else { "/" }))
}
