//! Authorisations as people think of them (issue 32, journey 7; AC-3): the holder finds a
//! professional in the directory by name, profession and town — not by an 11-digit RPPS —
//! then chooses what they may read (the whole record or some categories) and until when; an
//! establishment is authorised by its FINESS number the same way. The grant itself is
//! written by `access::apply` (the directory page's one form handler).

use axum::Router;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::access::Category;
use serde::Deserialize;

use super::i18n::fr_en as tr;
use super::{
    Holder, Nav, WebError, alert, class_label, csrf_field, esc, page, profession_label, professional_name,
};
use crate::api::directory::check_grantee;
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/autorisations/trouver", get(find))
        .route("/autorisations/autoriser", get(choose))
}

/// What the holder typed to find a professional.
#[derive(Default, Deserialize)]
pub(super) struct FindQuery {
    #[serde(default)]
    nom: String,
    #[serde(default)]
    profession: String,
    #[serde(default)]
    ville: String,
}

/// The search form (on the directory page and above the results).
pub(super) fn find_form(s: &AppState, q: &FindQuery) -> String {
    let options: String = s
        .gate
        .matrix()
        .professions()
        .map(|p| {
            let selected = if p == q.profession { " selected" } else { "" };
            format!(
                "<option value=\"{}\"{selected}>{}</option>",
                esc(p),
                esc(&profession_label(p))
            )
        })
        .collect();
    format!(
        "<form method=\"get\" action=\"/autorisations/trouver\" class=\"card\" role=\"search\">\
         <p><label for=\"nom\">{}</label><input id=\"nom\" name=\"nom\" type=\"search\" minlength=\"2\" maxlength=\"100\" required value=\"{}\"></p>\
         <p><label for=\"profession\">{}</label><select id=\"profession\" name=\"profession\"><option value=\"\">{}</option>{options}</select></p>\
         <p><label for=\"ville\">{}</label><input id=\"ville\" name=\"ville\" type=\"text\" maxlength=\"100\" value=\"{}\"></p>\
         <p><button type=\"submit\">{}</button></p></form>",
        tr("Nom du professionnel", "The professional's name"),
        esc(&q.nom),
        tr("Profession", "Profession"),
        tr("Toutes", "Any"),
        tr("Ville (facultatif)", "Town (optional)"),
        esc(&q.ville),
        tr("Rechercher", "Search"),
    )
}

fn holder_page(h: &Holder, title: &'static str, body: &str) -> Response {
    page(
        title,
        &Nav::Holder {
            h,
            current: "/autorisations",
        },
        body,
    )
    .into_response()
}

/// The directory's answer: each professional with what tells them apart (profession,
/// specialty, town, organisation) and the way to authorise them.
async fn find(
    State(s): State<AppState>,
    h: Holder,
    Query(q): Query<FindQuery>,
) -> Result<Response, WebError> {
    let title = tr("Trouver un professionnel", "Find a professional");
    let name = q.nom.trim();
    let results = if name.chars().count() < 2 {
        alert(tr(
            "Saisissez au moins les deux premières lettres du nom.",
            "Type at least the first two letters of the name.",
        ))
    } else {
        let profession = Some(q.profession.as_str()).filter(|p| !p.is_empty());
        let town = Some(q.ville.trim()).filter(|t| !t.is_empty());
        let found = s
            .store
            .search_professionals(name, profession, town, 50)
            .await
            .map_err(ApiError::from)?;
        if found.is_empty() {
            format!(
                "<p role=\"status\">{}</p>",
                tr(
                    "Aucun professionnel ne correspond. Vérifiez l'orthographe du nom, ou retirez la ville ou la profession.",
                    "No professional matches. Check the name's spelling, or leave out the town or profession.",
                )
            )
        } else {
            let items: String = found
                .iter()
                .map(|p| {
                    let mut what = profession_label(&p.profession);
                    if let Some(sp) = &p.specialty {
                        what.push_str(&format!(" ({sp})"));
                    }
                    let place = [p.organisation_name.clone(), p.town.clone()]
                        .into_iter()
                        .flatten()
                        .collect::<Vec<_>>()
                        .join(", ");
                    format!(
                        "<li class=\"card\"><p><strong>{}</strong> — {}{}<br><span class=\"hint\">RPPS {}</span></p>\
                         <p><a class=\"button\" href=\"/autorisations/autoriser?pro={}\">{}</a></p></li>",
                        esc(&professional_name(p)),
                        esc(&what),
                        if place.is_empty() {
                            String::new()
                        } else {
                            format!(" — {}", esc(&place))
                        },
                        esc(&p.rpps),
                        esc(&p.rpps),
                        tr("Choisir ce professionnel", "Choose this professional"),
                    )
                })
                .collect();
            format!(
                "<p role=\"status\">{}</p><ul class=\"results\">{items}</ul>",
                match found.len() {
                    1 => tr("1 professionnel trouvé.", "1 professional found.").to_string(),
                    n => format!("{n} {}", tr("professionnels trouvés.", "professionals found.")),
                }
            )
        }
    };
    let body = format!(
        "<p><a href=\"/autorisations\">{}</a></p><h1>{title}</h1>{}{results}",
        tr("← Retour aux autorisations", "← Back to authorisations"),
        find_form(&s, &q),
    );
    Ok(holder_page(&h, title, &body))
}

#[derive(Deserialize)]
struct ChooseQuery {
    pro: Option<String>,
    etablissement: Option<String>,
}

/// The grant's form for one professional or establishment: the whole record or some
/// categories, until a date or until revoked.
async fn choose(
    State(s): State<AppState>,
    h: Holder,
    Query(q): Query<ChooseQuery>,
) -> Result<Response, WebError> {
    let (kind, id) = match (&q.pro, &q.etablissement) {
        (Some(rpps), _) => ("professional", rpps.trim().to_string()),
        (None, Some(finess)) => ("establishment", finess.trim().to_uppercase()),
        (None, None) => return Err(ApiError::not_found().into()),
    };
    chooser(&s, &h, kind, &id, "").await
}

/// The chooser page, with `error` beside the form (a grant the directory page refused).
pub(super) async fn chooser(
    s: &AppState,
    h: &Holder,
    kind: &str,
    id: &str,
    error: &str,
) -> Result<Response, WebError> {
    let title = tr(
        "Autoriser l'accès à votre dossier",
        "Authorise access to your record",
    );
    let back = format!(
        "<p><a href=\"/autorisations\">{}</a></p>",
        tr("← Retour aux autorisations", "← Back to authorisations")
    );
    let who = match check_grantee(kind, id) {
        Err(e) => {
            let body = format!("{back}<h1>{title}</h1>{}", alert(&super::french(&e)));
            return Ok(holder_page(h, title, &body));
        }
        Ok(_) if kind == "professional" => match s.store.professional(id).await.map_err(ApiError::from)? {
            Some(p) => format!("{} ({})", professional_name(&p), profession_label(&p.profession)),
            None => {
                let body = format!(
                    "{back}<h1>{title}</h1>{}",
                    alert(tr(
                        "Aucun professionnel de l'annuaire n'a ce numéro RPPS : vérifiez-le, ou cherchez-le par son nom.",
                        "No professional of the directory has this RPPS number: check it, or search by name.",
                    ))
                );
                return Ok(holder_page(h, title, &body));
            }
        },
        Ok(_) => match s.store.organisation_name(id).await.map_err(ApiError::from)? {
            Some(name) => format!(
                "{name} ({} {id})",
                tr("établissement, FINESS", "establishment, FINESS")
            ),
            None => format!("{} {id}", tr("Établissement FINESS", "Establishment FINESS")),
        },
    };
    let mut r = holder_page(h, title, &grant_form(h, kind, id, &who, &back, error));
    if !error.is_empty() {
        *r.status_mut() = axum::http::StatusCode::BAD_REQUEST;
    }
    Ok(r)
}

/// One checkbox per category (`categories`), none ticked: what a grant covers when not the
/// whole record (the carers' page prints the same from its template).
fn category_boxes() -> String {
    Category::ALL
        .iter()
        .map(|c| {
            let v = c.tag();
            format!(
                "<p><input id=\"cat-{v}\" name=\"categories\" type=\"checkbox\" value=\"{v}\"> \
                 <label for=\"cat-{v}\">{}</label></p>",
                esc(class_label(*c))
            )
        })
        .collect()
}

/// The choices of a grant (AC-3), posted to the directory page's handler.
fn grant_form(h: &Holder, kind: &str, id: &str, who: &str, back: &str, error: &str) -> String {
    let categories = category_boxes();
    format!(
        "{back}<h1>{}</h1><p>{}</p>{}\
         <form method=\"post\" action=\"/autorisations\" class=\"card\">{}\
         <input type=\"hidden\" name=\"action\" value=\"grant\">\
         <input type=\"hidden\" name=\"kind\" value=\"{}\"><input type=\"hidden\" name=\"id\" value=\"{}\">\
         <fieldset><legend>{}</legend>\
         <p><input id=\"portee-tout\" name=\"portee\" type=\"radio\" value=\"tout\" checked> <label for=\"portee-tout\">{}</label></p>\
         <p><input id=\"portee-cat\" name=\"portee\" type=\"radio\" value=\"categories\"> <label for=\"portee-cat\">{}</label></p>\
         <div class=\"choices\">{categories}</div></fieldset>\
         <p><label for=\"jusquau\">{}</label><input id=\"jusquau\" name=\"jusquau\" {} aria-describedby=\"jusquau-aide\"></p>\
         <p id=\"jusquau-aide\" class=\"hint\">{}</p>\
         <p><button type=\"submit\">{}</button></p></form>",
        esc(who),
        tr(
            "Choisissez ce que ce professionnel pourra consulter. Les habilitations de sa profession s'appliquent \
             en plus : un pharmacien, par exemple, ne voit jamais l'imagerie. Vous pourrez modifier ou retirer \
             cette autorisation à tout moment.",
            "Choose what this professional may read. Their profession's habilitations apply on top: a \
             pharmacist, for instance, never sees imaging. You may change or withdraw it at any time.",
        ),
        alert(error),
        csrf_field(&h.csrf),
        esc(kind),
        esc(id),
        tr("Accès à", "Access to"),
        tr("Tout le dossier", "The whole record"),
        tr(
            "Seulement les catégories cochées :",
            "Only the categories ticked:"
        ),
        tr("Jusqu'au (facultatif)", "Until (optional)"),
        super::profile::day_field(),
        tr(
            "JJ/MM/AAAA. Laissé vide : jusqu'à ce que vous la retiriez.",
            "DD/MM/YYYY. Left empty: until you withdraw it.",
        ),
        tr("Autoriser", "Authorise"),
    )
}
