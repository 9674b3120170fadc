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

use super::history::{Whose, describe};
use super::i18n::{fr_en, t};
use super::{Form, Holder, Nav, WebError, display_name, page, rendered, see_other};
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
            return Ok(page(fr_en("Accueil", "Home"), &Nav::Anonymous, &landing(&s)).into_response());
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
    let news = lines
        .into_iter()
        .zip(&groups)
        .map(|(text, (t, n))| News {
            text,
            times: if *n > 1 {
                format!(" {}", super::i18n::times(*n))
            } else {
                String::new()
            },
            urgent: t.entry.emergency,
        })
        .collect();
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
    let given = h.self_name.split(' ').next().unwrap_or_default();
    let docs_line = match docs.total {
        0 => t("home.docs_none").to_string(),
        1 => t("home.docs_one").to_string(),
        n => format!("{n} {}", t("home.docs_many")),
    };
    // A representative in a child's space reads whose space it is, not a greeting (MI-1).
    let (hello, whose) = if h.own_space() {
        (t("home.hello").to_string(), given.to_string())
    } else if super::i18n::locale() == super::i18n::Locale::En {
        (t("layout.space_of").to_string(), h.space_name.clone())
    } else {
        ("Espace".to_string(), super::de(&h.space_name))
    };
    let page_body = HomePage {
        hello,
        whose,
        w: HomeWords {
            news: t("home.news"),
            nothing: t("home.nothing"),
            emergency: fr_en("Accès en urgence :", "Emergency access:"),
            all_history: t("home.all_history"),
            documents: t("nav.documents"),
            see_docs: t("home.see_docs"),
            messages: t("nav.messages"),
            see_messages: t("home.see_messages"),
            next_events: t("home.next_events"),
            agenda_none: t("home.agenda_none"),
            see_agenda: t("home.see_agenda"),
        },
        news,
        docs_line,
        messages_line,
        agenda: next
            .iter()
            .map(|(at, title)| (super::when(*at), title.clone()))
            .collect(),
        your_space: if h.own_space() {
            t("home.your_space")
        } else {
            t("home.this_space")
        },
        more: vec![
            ("/profil", t("nav.profile"), t("home.profile_line")),
            (
                "/remboursements",
                t("nav.reimbursements"),
                t("home.reimbursements_line"),
            ),
            ("/autorisations", t("nav.access"), t("home.access_line")),
            ("/notifications", t("nav.notifications"), t("home.notif_line")),
            (
                "/mon-espace",
                if h.own_space() {
                    t("nav.space")
                } else {
                    t("nav.this_space")
                },
                t("home.space_line"),
            ),
        ],
    };
    Ok(page(
        fr_en("Accueil", "Home"),
        &Nav::Holder { h: &h, current: "/" },
        &rendered(&page_body)?,
    )
    .into_response())
}

/// The home page's words, in the page's language.
struct HomeWords {
    news: &'static str,
    nothing: &'static str,
    emergency: &'static str,
    all_history: &'static str,
    documents: &'static str,
    see_docs: &'static str,
    messages: &'static str,
    see_messages: &'static str,
    next_events: &'static str,
    agenda_none: &'static str,
    see_agenda: &'static str,
}

/// A line of what is new: the access in words, "(3 fois)" when it repeats, emergencies apart.
struct News {
    text: String,
    times: String,
    urgent: bool,
}

/// The home page of a space, escaped by the template engine.
#[derive(askama::Template)]
#[template(path = "home/home.html")]
struct HomePage {
    hello: String,
    whose: String,
    w: HomeWords,
    news: Vec<News>,
    docs_line: String,
    messages_line: String,
    /// The next events: when, title.
    agenda: Vec<(String, String)>,
    your_space: &'static str,
    /// The other pages: address, name, what it holds.
    more: Vec<(&'static str, &'static str, &'static str)>,
}

/// The switcher's words, in the page's language.
struct SpacesWords {
    title: &'static str,
    intro: &'static str,
    current: &'static str,
    help: &'static str,
}

/// A space the person may open, as the switcher shows it.
struct SpaceLine {
    id: HolderId,
    name: String,
    /// "votre propre espace", "vous en êtes le représentant légal"…
    relation: &'static str,
    /// "Ouvrir l'espace d'Inès".
    open: String,
    current: bool,
}

/// `/espace`, escaped by the template engine.
#[derive(askama::Template)]
#[template(path = "home/spaces.html")]
struct SpacesPage<'a> {
    w: SpacesWords,
    spaces: Vec<SpaceLine>,
    csrf: &'a str,
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
    let english = super::i18n::locale() == super::i18n::Locale::En;
    let mut spaces = Vec::new();
    for (id, relation) in list {
        let name = display_name(&s, id).await?;
        spaces.push(SpaceLine {
            id,
            relation: match relation.as_str() {
                "self" => fr_en("votre propre espace", "your own space"),
                "guardian" => fr_en("vous en êtes le tuteur ou la tutrice", "you are their guardian"),
                "carer" => fr_en(
                    "vous en êtes l'aidant : vous consultez les documents que cette personne a choisi de vous montrer",
                    "you are their carer: you read the documents this person chose to show you",
                ),
                _ => fr_en("vous en êtes le représentant légal", "you are their legal representative"),
            },
            open: if english {
                format!("Open {name}'s space")
            } else {
                format!("Ouvrir l'espace {}", super::de(&name))
            },
            current: id == h.space(),
            name,
        });
    }
    let body = SpacesPage {
        w: SpacesWords {
            title: fr_en("Changer d'espace", "Switch space"),
            intro: fr_en(
                "Vous pouvez agir dans votre espace et dans ceux des personnes que vous représentez, \
                 et consulter ceux des personnes dont vous êtes l'aidant. Vos actions y sont enregistrées à votre nom.",
                "You may act in your own space and in those of the people you represent, and read those of \
                 the people you help as a carer. What you do there is recorded under your name.",
            ),
            current: fr_en("Espace ouvert actuellement", "The space open now"),
            help: fr_en(
                "Aider un proche : saisir un code d'invitation",
                "Help someone close: enter an invitation code",
            ),
        },
        spaces,
        csrf: &h.csrf,
    };
    Ok(page(
        fr_en("Changer d'espace", "Switch space"),
        &Nav::Holder {
            h: &h,
            current: "/espace",
        },
        &rendered(&body)?,
    )
    .into_response())
}

async fn switch(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let target: HolderId = form.get("holder").parse().map_err(|_| {
        WebError::new(
            StatusCode::BAD_REQUEST,
            fr_en(
                "Choisissez un espace dans la liste.",
                "Choose a space from the list.",
            ),
        )
    })?;
    let Some(as_carer) = crate::api::me::acting_as(&s, h.session.holder, target).await? else {
        return Err(ApiError::not_found().into());
    };
    s.store
        .set_acting_for(&h.token, target, as_carer)
        .await
        .map_err(ApiError::from)?;
    Ok(see_other(if as_carer { "/documents" } else { "/" }))
}
