//! Carers (MI-5), both sides. `/aidants`: the holder (or their legal representative) invites a
//! carer for chosen categories, until a date or until revoked, sees who helps and the
//! invitations waiting, and ends either at once. The invitation is a one-time code the holder
//! hands over in person or by phone: nobody becomes a carer without accepting, and typing a
//! name reveals nothing about who has a space. `/aider`: the carer's own page, where they enter
//! the code, see the spaces they help and open one (reads only: `session::carer_page`) or stop.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carnet_domain::HolderId;
use carnet_domain::access::Category;
use carnet_domain::carer::Invitation;
use serde::Deserialize;

use super::i18n::fr_en as tr;
use super::{Form, Holder, Nav, WebError, class_label, display_name, french, page, see_other};
use crate::api::auth::limit;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/aidants", get(carers).post(change))
        .route("/aider", get(helping).post(accept))
        .route("/aider/arreter", post(stop))
}

#[derive(Deserialize)]
struct Flash {
    ok: Option<String>,
}

/// "tous les documents", or the categories in words.
pub(super) fn scope_words(categories: &Option<Vec<Category>>) -> String {
    match categories {
        None => tr("tous les documents", "every document").into(),
        Some(cs) => cs
            .iter()
            .map(|c| match c {
                // "Mes documents" is the holder's word for them, not the carer's.
                Category::HolderDocuments => tr("documents personnels", "personal documents").to_string(),
                c => class_label(*c).to_lowercase(),
            })
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// ", jusqu'au 31/12/2026" for a grant that ends (its last day), or nothing.
pub(super) fn until_words(until: Option<carnet_domain::Timestamp>) -> String {
    until
        .map(|u| format!(", {} {}", tr("jusqu'au", "until"), super::day(u.plus_seconds(-1))))
        .unwrap_or_default()
}

/// A person's name, or words for one whose space was erased since.
async fn name_of(s: &AppState, id: HolderId) -> String {
    display_name(s, id).await.unwrap_or_else(|_| {
        tr(
            "une personne dont l'espace a été supprimé",
            "a person whose space was erased",
        )
        .into()
    })
}

/// The words of the holder's carers page, in the page's language.
struct CarersWords {
    back: &'static str,
    title: &'static str,
    code_title: &'static str,
    code_once: &'static str,
    code_how: &'static str,
    code_next: &'static str,
    intro: &'static str,
    who: &'static str,
    may_read: &'static str,
    ended: &'static str,
    remove: &'static str,
    none: &'static str,
    waiting: &'static str,
    invitation: &'static str,
    valid_until: &'static str,
    cancel: &'static str,
    invite: &'static str,
    scope: &'static str,
    whole: &'static str,
    some: &'static str,
    until: &'static str,
    until_hint: &'static str,
    create: &'static str,
}

/// A carer of the space, as the page shows them.
struct CarerLine {
    id: HolderId,
    name: String,
    /// What they may read and until when.
    scope: String,
    ended: bool,
}

/// An invitation waiting, as the page shows it.
struct WaitingLine {
    id: String,
    scope: String,
    expires: String,
}

/// `/aidants`, escaped by the template engine.
#[derive(askama::Template)]
#[template(path = "carers/aidants.html")]
struct CarersPage<'a> {
    w: CarersWords,
    /// "de Camille MARTIN" when a representative manages another's space.
    whose: String,
    info: &'a str,
    error: &'a str,
    /// A code just made, and until when it works.
    code: Option<String>,
    code_until: String,
    csrf: &'a str,
    carers: Vec<CarerLine>,
    waiting: Vec<WaitingLine>,
    categories: Vec<(&'static str, &'static str)>,
}

/// The holder's page: carers, invitations waiting, the invitation form; `shown` a code just made.
async fn carers_page(
    s: &AppState,
    h: &Holder,
    info: &str,
    error: &str,
    shown: Option<(String, carnet_domain::Timestamp)>,
) -> Result<Response, WebError> {
    use askama::Template;
    let side = h.holder_side(s).await?;
    let mut carers = Vec::new();
    for (id, g) in side.carers().await.map_err(ApiError::from)? {
        carers.push(CarerLine {
            id,
            name: name_of(s, id).await,
            scope: format!("{}{}", scope_words(&g.categories), until_words(g.until)),
            ended: g.until.is_some_and(|u| u <= s.store.now()),
        });
    }
    let waiting = side
        .carer_invitations()
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .map(|p| WaitingLine {
            scope: format!(
                "{}{}",
                scope_words(&p.invitation.categories),
                until_words(p.invitation.until)
            ),
            expires: super::bare_when(p.invitation.expires_at()),
            id: p.id,
        })
        .collect();
    let (code, code_until) = match shown {
        Some((code, expires)) => (Some(code), super::bare_when(expires)),
        None => (None, String::new()),
    };
    let body = CarersPage {
        w: CarersWords {
            back: tr("← Retour aux autorisations", "← Back to authorisations"),
            title: tr("Vos aidants", "Your carers"),
            code_title: tr("Code à transmettre à votre aidant", "Code to give your carer"),
            code_once: tr("Il est valable une seule fois, jusqu'au", "It works once, until"),
            code_how: tr(
                "Donnez-le de vive voix ou par téléphone, à cette personne seulement.",
                "Give it in person or by phone, to this person only.",
            ),
            code_next: tr(
                "Votre aidant se connecte à son propre espace Carnet, ouvre « Aider un proche » (dans « Mon espace ») \
                 et saisit ce code. Vous serez prévenu dès qu'il l'aura fait. Ce code ne vous sera plus montré.",
                "Your carer logs in to their own Carnet space, opens “Help someone close” (under “My space”) and \
                 types this code. You will be told once they have. This code will not be shown again.",
            ),
            intro: tr(
                "Un aidant est un proche (conjoint, enfant, ami…) qui a lui-même un espace Carnet. Il peut consulter \
                 les documents que vous choisissez ; il ne peut rien ajouter, modifier ni supprimer, et il n'est pas \
                 votre représentant légal. Les documents que vous masquez ne lui sont pas montrés. Chacun de ses accès \
                 figure dans votre historique et vous en êtes prévenu. Vous pouvez retirer son accès à tout moment.",
                "A carer is someone close to you (partner, child, friend…) who has a Carnet space of their own. They \
                 may read the documents you choose; they cannot add, change or delete anything, and they are not your \
                 legal representative. Documents you hide are not shown to them. Each of their accesses is in your \
                 history and you are told. You may remove their access at any time.",
            ),
            who: tr("Qui vous aide", "Who helps you"),
            may_read: tr("Peut consulter", "May read"),
            ended: tr(" (accès terminé)", " (access ended)"),
            remove: tr("Retirer cet accès", "Remove this access"),
            none: tr("Vous n'avez pas d'aidant.", "You have no carer."),
            waiting: tr("Invitations en attente", "Invitations waiting"),
            invitation: tr("Invitation", "Invitation"),
            valid_until: tr("code valable jusqu'au", "code valid until"),
            cancel: tr("Annuler l'invitation", "Cancel the invitation"),
            invite: tr("Inviter un aidant", "Invite a carer"),
            scope: tr("Ce que votre aidant pourra consulter", "What your carer may read"),
            whole: tr("Tout le dossier", "The whole record"),
            some: tr("Seulement les catégories cochées :", "Only the categories ticked:"),
            until: tr("Jusqu'au (facultatif)", "Until (optional)"),
            until_hint: tr(
                "JJ/MM/AAAA. Laissé vide : jusqu'à ce que vous retiriez l'accès.",
                "DD/MM/YYYY. Left empty: until you remove the access.",
            ),
            create: tr("Créer le code d'invitation", "Create the invitation code"),
        },
        whose: if h.own_space() {
            String::new()
        } else {
            super::de(&h.space_name)
        },
        info,
        error,
        code,
        code_until,
        csrf: &h.csrf,
        carers,
        waiting,
        categories: Category::ALL.iter().map(|c| (c.tag(), class_label(*c))).collect(),
    }
    .render()
    .map_err(|_| WebError::from(ApiError::internal()))?;
    let mut r = page(
        "Vos aidants",
        &Nav::Holder {
            h,
            current: "/autorisations",
        },
        &body,
    )
    .into_response();
    if !error.is_empty() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

async fn carers(State(s): State<AppState>, h: Holder, Query(f): Query<Flash>) -> Result<Response, WebError> {
    let info = match f.ok.as_deref() {
        Some("retire") => tr(
            "L'accès est retiré : cette personne ne voit plus rien de cet espace.",
            "The access is removed: this person sees nothing of this space any more.",
        ),
        Some("annule") => tr("L'invitation est annulée.", "The invitation is cancelled."),
        _ => "",
    };
    carers_page(&s, &h, info, "", None).await
}

async fn change(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let side = h.holder_side(&s).await?;
    match form.get("action") {
        "invite" => {
            let scope = super::access::scope_of(&s, &form).and_then(|(categories, until)| {
                Invitation::new(categories, until, s.store.now())
                    .map_err(|e| ApiError::from(carnet_store::StoreError::from(e)))
            });
            match scope {
                Ok(invitation) => {
                    let shown = side.invite_carer(&invitation).await.map_err(ApiError::from)?;
                    carers_page(&s, &h, "", "", Some(shown)).await
                }
                Err(e) => carers_page(&s, &h, "", &french(&e), None).await,
            }
        }
        "cancel" => {
            side.cancel_carer_invitation(form.get("id"))
                .await
                .map_err(ApiError::from)?;
            Ok(see_other("/aidants?ok=annule"))
        }
        "end" => {
            let carer: HolderId = form
                .get("carer")
                .parse()
                .map_err(|_| WebError::from(ApiError::not_found()))?;
            side.end_carer(carer).await.map_err(ApiError::from)?;
            Ok(see_other("/aidants?ok=retire"))
        }
        _ => Err(ApiError::not_found().into()),
    }
}

/// The words of the carer's page, in the page's language.
struct HelpingWords {
    title: &'static str,
    intro: &'static str,
    code: &'static str,
    code_hint: &'static str,
    confirm: &'static str,
    helped: &'static str,
    open_now: &'static str,
    read: &'static str,
    stop: &'static str,
    nobody: &'static str,
}

/// One space the carer helps, as the page shows it.
struct HelpedLine {
    id: HolderId,
    name: String,
    /// "Camille MARTIN" after "de"/"d'" ("de Camille MARTIN").
    de_name: String,
    scope: String,
    open_now: bool,
}

/// `/aider` (escaped by the template engine: nothing here is written into HTML by hand).
#[derive(askama::Template)]
#[template(path = "carers/aider.html")]
struct HelpingPage<'a> {
    w: HelpingWords,
    info: &'a str,
    error: &'a str,
    typed: &'a str,
    csrf: &'a str,
    helped: Vec<HelpedLine>,
}

/// The carer's own page: the code to enter, the spaces they help.
async fn helping_page(
    s: &AppState,
    h: &Holder,
    info: &str,
    error: &str,
    typed: &str,
) -> Result<Response, WebError> {
    use askama::Template;
    let me = h.session.holder;
    let mut helped = Vec::new();
    for line in s.store.helped_by(me).await.map_err(ApiError::from)? {
        let name = name_of(s, line.holder).await;
        let scope = match s
            .gate
            .carer_grant(line.holder, me)
            .await
            .map_err(ApiError::from)?
        {
            Some(g) => format!(
                "{} : {}{}",
                tr("Vous pouvez consulter", "You may read"),
                scope_words(&g.categories),
                until_words(g.until)
            ),
            None => tr("Cet espace n'est plus ouvert.", "This space is no longer open.").into(),
        };
        helped.push(HelpedLine {
            id: line.holder,
            de_name: if super::i18n::locale() == super::i18n::Locale::En {
                name.clone()
            } else {
                super::de(&name)
            },
            name,
            scope,
            open_now: h.space() == line.holder,
        });
    }
    let body = HelpingPage {
        w: HelpingWords {
            title: tr("Aider un proche", "Help someone close"),
            intro: tr(
                "Un proche peut vous permettre de consulter certains de ses documents de santé. Il vous donne pour cela \
                 un code d'invitation, à saisir ici. Vous lirez ses documents sans pouvoir les modifier ; chacun de vos \
                 accès lui est signalé.",
                "Someone close to you may let you read some of their health documents. They give you an invitation \
                 code, to type here. You will read their documents without changing them; each of your accesses is \
                 shown to them.",
            ),
            code: tr("Code d'invitation", "Invitation code"),
            code_hint: tr("12 caractères, par exemple ABCD-EFGH-JKMN.", "12 characters, for example ABCD-EFGH-JKMN."),
            confirm: tr("Valider le code", "Confirm the code"),
            helped: tr("Les personnes que vous aidez", "The people you help"),
            open_now: tr("Espace ouvert actuellement", "Space open now"),
            read: tr("Consulter les documents", "Read the documents of"),
            stop: tr("Ne plus être aidant", "Stop being a carer"),
            nobody: tr("Vous n'êtes l'aidant de personne.", "You are nobody's carer."),
        },
        info,
        error,
        typed,
        csrf: &h.csrf,
        helped,
    }
    .render()
    .map_err(|_| WebError::from(ApiError::internal()))?;
    let mut r = page(
        "Aider un proche",
        &Nav::Holder {
            h,
            current: if h.carer() { "/espace" } else { "/mon-espace" },
        },
        &body,
    )
    .into_response();
    if !error.is_empty() {
        *r.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

async fn helping(State(s): State<AppState>, h: Holder, Query(f): Query<Flash>) -> Result<Response, WebError> {
    let info = match f.ok.as_deref() {
        Some("accepte") => tr(
            "C'est fait : vous êtes désormais aidant de cette personne, qui en est prévenue.",
            "Done: you are now this person's carer; they are told.",
        ),
        Some("arrete") => tr(
            "C'est fait : vous n'êtes plus aidant de cette personne, qui en est prévenue.",
            "Done: you are no longer this person's carer; they are told.",
        ),
        _ => "",
    };
    helping_page(&s, &h, info, "", "").await
}

async fn accept(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let typed = form.get("code").trim();
    // The code is a secret of 60 bits: a few tries an hour per person is plenty for typos.
    if let Err(e) = limit(&s, &format!("carer-code:{}", h.session.holder), 3600, 10).await {
        return helping_page(&s, &h, "", &french(&e), typed).await;
    }
    match s.gate.accept_carer_invitation(h.session.holder, typed).await {
        Ok(_) => Ok(see_other("/aider?ok=accepte")),
        Err(carnet_store::StoreError::Mismatch) => {
            helping_page(
                &s,
                &h,
                "",
                tr(
                    "Ce code ne correspond à aucune invitation en cours. Vérifiez-le (12 caractères, par exemple \
                     ABCD-EFGH-JKMN), ou demandez à la personne de vous inviter à nouveau.",
                    "This code matches no invitation waiting. Check it (12 characters, for example ABCD-EFGH-JKMN), \
                     or ask the person to invite you again.",
                ),
                typed,
            )
            .await
        }
        Err(e @ carnet_store::StoreError::Invalid(_)) => {
            helping_page(&s, &h, "", &french(&ApiError::from(e)), typed).await
        }
        Err(e) => Err(ApiError::from(e).into()),
    }
}

async fn stop(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let target: HolderId = form
        .get("holder")
        .parse()
        .map_err(|_| WebError::from(ApiError::not_found()))?;
    s.store
        .stop_helping(h.session.holder, target)
        .await
        .map_err(ApiError::from)?;
    if h.space() == target {
        s.store
            .set_acting_for(&h.token, h.session.holder, false)
            .await
            .map_err(ApiError::from)?;
    }
    Ok(see_other("/aider?ok=arrete"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use askama::Template;

    /// Issue 32: what the page prints is escaped by the template engine, a person's name and
    /// what they typed included.
    #[test]
    fn the_carers_page_escapes_what_it_prints() {
        let w = HelpingWords {
            title: "Aider un proche",
            intro: "",
            code: "Code",
            code_hint: "",
            confirm: "Valider",
            helped: "Aidés",
            open_now: "Ouvert",
            read: "Consulter les documents",
            stop: "Arrêter",
            nobody: "Personne",
        };
        let html = HelpingPage {
            w,
            info: "",
            error: "<b>erreur</b>",
            typed: "\"><script>alert(1)</script>",
            csrf: "t\"k",
            helped: vec![HelpedLine {
                id: HolderId::from_uuid(uuid::Uuid::nil()),
                name: "<img src=x onerror=alert(1)>".into(),
                de_name: "de <i>x</i>".into(),
                scope: "comptes rendus".into(),
                open_now: false,
            }],
        }
        .render()
        .unwrap();
        for raw in ["<script>", "<img", "<b>erreur", "<i>x", "t\"k"] {
            assert!(!html.contains(raw), "{raw} printed raw in {html}");
        }
        assert!(html.contains("&#60;img src=x onerror=alert(1)&#62;"), "{html}");
        assert!(html.contains("role=\"alert\""), "the error is shown");
    }
}
