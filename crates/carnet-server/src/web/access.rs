//! The authorisation directory (AC-3, AC-4, AC-5): grant, revoke, block, médecin traitant,
//! consent of the emergency regulation, hide everything, through `Store::update_access_policy`
//! as `api::directory` does.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use carnet_domain::access::{
    AccessPolicy, CareTeam, Category, ConsentForm, Grant, GrantBasis, Grantee, ProfessionalId,
};
use serde::Deserialize;

use super::i18n::t;
use super::{
    Form, Holder, Nav, WebError, alert, class_label, csrf_field, esc, notice, page, profession_label,
    professional_name, see_other,
};
use crate::api::directory::{check_grantee, check_rpps};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new().route("/autorisations", get(directory).post(change))
}

pub(super) async fn pro_label(s: &AppState, id: &ProfessionalId) -> Result<String, WebError> {
    Ok(match s.store.professional(&id.0).await.map_err(ApiError::from)? {
        Some(p) => format!(
            "{} ({}) — RPPS {}",
            professional_name(&p),
            profession_label(&p.profession),
            p.rpps
        ),
        None => format!("Professionnel RPPS {}", id.0),
    })
}

/// Why a grant exists, for the holder (AC-1b): ", équipe de soins (cabinet…) pour « suivi »,
/// déclarée le 7 décembre 2026", ", consentement oral recueilli par Dr Claire LEROY le …".
pub(super) async fn basis_words(s: &AppState, basis: &GrantBasis) -> Result<String, WebError> {
    Ok(match basis {
        GrantBasis::Holder => String::new(),
        GrantBasis::CareTeam {
            team,
            episode,
            declared_at,
        } => format!(
            " — équipe de soins ({}) pour « {episode} », déclarée le {}",
            care_team_label(*team),
            super::day(*declared_at)
        ),
        GrantBasis::Consent {
            recorded_by,
            form,
            given_at,
        } => {
            let by = match s
                .store
                .professional(&recorded_by.0)
                .await
                .map_err(ApiError::from)?
            {
                Some(p) => professional_name(&p),
                None => format!("le professionnel RPPS {}", recorded_by.0),
            };
            format!(
                " — votre consentement {}, recueilli par {by} le {}",
                match form {
                    ConsentForm::Oral => "oral",
                    ConsentForm::Written => "écrit",
                },
                super::day(*given_at)
            )
        }
    })
}

/// A care team as professionals and patients name it (AC-1b).
pub(super) fn care_team_label(team: CareTeam) -> &'static str {
    match team {
        CareTeam::Practice => "cabinet, maison ou centre de santé",
        CareTeam::Establishment => "service d'un établissement de santé",
        CareTeam::Coordination => "parcours de soins coordonné",
        CareTeam::MedicoSocial => "service médico-social",
    }
}

fn action_form(csrf: &str, action: &str, hidden: &[(&str, &str)], label: &str, class: &str) -> String {
    let fields: String = hidden
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{k}\" value=\"{}\">", esc(v)))
        .collect();
    format!(
        "<form method=\"post\" action=\"/autorisations\" class=\"inline\">{}<input type=\"hidden\" name=\"action\" value=\"{action}\">\
         {fields}<button type=\"submit\" class=\"{class}\">{}</button></form>",
        csrf_field(csrf),
        esc(label)
    )
}

/// Typed values kept when a form comes back with an error.
#[derive(Default)]
struct Typed {
    form: &'static str,
    rpps: String,
    message: String,
}

async fn render(s: &AppState, h: &Holder, typed: &Typed, info: &str) -> Result<String, WebError> {
    let (p, _): (AccessPolicy, i64) = h
        .holder_side(s)
        .await?
        .access_policy()
        .await
        .map_err(ApiError::from)?;
    let csrf = &h.csrf;
    let err = |f: &str| {
        if typed.form == f {
            alert(&typed.message)
        } else {
            String::new()
        }
    };
    let val = |f: &str| {
        if typed.form == f {
            esc(&typed.rpps)
        } else {
            String::new()
        }
    };
    // Médecin traitant.
    let mt = match &p.medecin_traitant {
        Some(id) => format!(
            "<p>{}</p>{}",
            esc(&pro_label(s, id).await?),
            action_form(
                csrf,
                "medecin_retirer",
                &[],
                super::i18n::fr_en(
                    "Ne plus déclarer de médecin traitant",
                    "Stop declaring a regular doctor"
                ),
                "secondary"
            )
        ),
        None => format!(
            "<p>{}</p>",
            super::i18n::fr_en("Aucun médecin traitant déclaré.", "No regular doctor declared.")
        ),
    };
    // Grants.
    let mut grants = String::new();
    for g in &p.grants {
        // AC-4: a blocked professional has no access, whatever their grant says; they are
        // listed under "bloqués" only (the grant comes back into force if unblocked).
        if matches!(&g.grantee, Grantee::Professional { id } if p.blocked.contains(id)) {
            continue;
        }
        let (kind, id, label) = match &g.grantee {
            Grantee::Professional { id } => ("professional", id.0.clone(), pro_label(s, id).await?),
            Grantee::Establishment { id } => (
                "establishment",
                id.0.clone(),
                match s.store.organisation_name(&id.0).await.map_err(ApiError::from)? {
                    Some(name) => format!(
                        "{name} ({}) — FINESS {}",
                        super::i18n::fr_en("établissement", "establishment"),
                        id.0
                    ),
                    None => format!(
                        "{} FINESS {}",
                        super::i18n::fr_en("Établissement", "Establishment"),
                        id.0
                    ),
                },
            ),
            Grantee::App { id } => ("app", id.0.clone(), format!("Application {}", id.0)),
            // MI-5: carers have a page of their own (`/aidants`), with their invitations.
            Grantee::Carer { .. } => continue,
        };
        let scope = match &g.categories {
            None => super::i18n::fr_en("tout le dossier", "the whole record").to_string(),
            Some(cs) => cs
                .iter()
                .map(|c| class_label(*c).to_lowercase())
                .collect::<Vec<_>>()
                .join(", "),
        };
        let until = g
            .until
            .map(|u| {
                format!(
                    ", {} {}",
                    super::i18n::fr_en("jusqu'au", "until"),
                    super::day(u.plus_seconds(-1))
                )
            })
            .unwrap_or_default();
        let mut basis = basis_words(s, &g.basis).await?;
        if p.care_team_objection && matches!(g.basis, GrantBasis::CareTeam { .. }) {
            basis.push_str(super::i18n::fr_en(
                " (sans effet : vous vous opposez à l'accès des équipes de soins)",
                " (no effect: you object to care teams' access)",
            ));
        }
        grants.push_str(&format!(
            "<li>{}{} {}{until}{} {}</li>",
            esc(&label),
            super::i18n::fr_en(" :", ":"),
            esc(&scope),
            esc(&basis),
            action_form(
                csrf,
                "revoke",
                &[("kind", kind), ("id", &id)],
                super::i18n::fr_en("Retirer l'autorisation", "Withdraw the authorisation"),
                "secondary"
            )
        ));
    }
    if grants.is_empty() {
        grants = format!(
            "<li>{}</li>",
            super::i18n::fr_en(
                "Aucune autorisation particulière.",
                "No particular authorisation."
            )
        );
    }
    // Blocked.
    let mut blocked = String::new();
    for id in &p.blocked {
        blocked.push_str(&format!(
            "<li>{} {}</li>",
            esc(&pro_label(s, id).await?),
            action_form(
                csrf,
                "unblock",
                &[("rpps", &id.0)],
                super::i18n::fr_en("Débloquer", "Unblock"),
                "secondary"
            )
        ));
    }
    if blocked.is_empty() {
        blocked = format!(
            "<li>{}</li>",
            super::i18n::fr_en("Personne n'est bloqué.", "Nobody is blocked.")
        );
    }
    let rpps_form = |form: &'static str, action: &str, legend: &str, button: &str| {
        format!(
            "<form method=\"post\" action=\"/autorisations\" class=\"card\">{}{}<input type=\"hidden\" name=\"action\" value=\"{action}\">\
             <p><label for=\"rpps-{form}\">{legend}</label>\
             <input id=\"rpps-{form}\" name=\"rpps\" type=\"text\" inputmode=\"numeric\" maxlength=\"11\" \
             aria-describedby=\"rpps-help-{form}\" value=\"{}\"></p><p id=\"rpps-help-{form}\" class=\"hint\">{}</p>\
             <p><button type=\"submit\">{button}</button></p></form>",
            err(form),
            csrf_field(csrf),
            val(form),
            super::i18n::fr_en(
                "11 chiffres, sur la carte ou l'ordonnance du professionnel.",
                "11 digits, on the professional's card or prescription."
            ),
        )
    };
    let regulation = if p.regulation_consent {
        format!(
            "<p>{}</p>{}",
            super::i18n::fr_en(
                "Vous acceptez que le médecin régulateur du SAMU consulte cet espace lors d'un appel d'urgence.",
                "You agree that the SAMU's regulating doctor reads this space during an emergency call."
            ),
            action_form(
                csrf,
                "regulation",
                &[("value", "0")],
                super::i18n::fr_en("Retirer mon accord", "Withdraw my agreement"),
                "secondary"
            )
        )
    } else {
        format!(
            "<p>{}</p>{}",
            super::i18n::fr_en(
                "Le médecin régulateur du SAMU ne peut pas consulter cet espace.",
                "The SAMU's regulating doctor cannot read this space."
            ),
            action_form(
                csrf,
                "regulation",
                &[("value", "1")],
                super::i18n::fr_en("Donner mon accord", "Give my agreement"),
                ""
            )
        )
    };
    // AC-1b: presumed authorisation of care teams, and the holder's objection to it.
    let care_team = if p.care_team_objection {
        format!(
            "<p><strong>{}</strong> {}</p>{}",
            super::i18n::fr_en(
                "Vous vous opposez à l'accès des équipes de soins.",
                "You object to care teams' access."
            ),
            super::i18n::fr_en(
                "Seuls les professionnels que vous autorisez vous-même, ou dont un professionnel a recueilli \
                 votre consentement, voient votre dossier.",
                "Only the professionals you authorise yourself, or for whom a professional recorded your \
                 consent, see your record."
            ),
            action_form(
                csrf,
                "care_team",
                &[("value", "0")],
                super::i18n::fr_en("Ne plus m'y opposer", "Stop objecting"),
                "secondary"
            )
        )
    } else {
        format!(
            "<p>{}</p>{}",
            super::i18n::fr_en(
                "Un professionnel qui vous prend en charge (votre cabinet, un service hospitalier, un \
                 parcours de soins coordonné) peut consulter votre dossier après vous en avoir informé, en \
                 déclarant cette prise en charge : il apparaît alors ci-dessus, et vous en êtes prévenu. Les \
                 médecins du travail et de sapeurs-pompiers n'y ont jamais accès sans votre accord exprès.",
                "A professional who cares for you (your practice, a hospital department, a coordinated care \
                 pathway) may read your record after telling you, by declaring that care: they then appear \
                 above, and you are told. Occupational and fire-brigade doctors never have access without \
                 your express agreement."
            ),
            action_form(
                csrf,
                "care_team",
                &[("value", "1")],
                super::i18n::fr_en(
                    "M'opposer à l'accès des équipes de soins",
                    "Object to care teams' access"
                ),
                "secondary"
            )
        )
    };
    let hide_all = if p.hide_all {
        format!(
            "<p><strong>{}</strong> {}</p>{}",
            super::i18n::fr_en(
                "Tout le dossier est masqué aux professionnels",
                "The whole record is hidden from professionals"
            ),
            super::i18n::fr_en(
                "(sauf votre médecin traitant et les auteurs de leurs propres documents).",
                "(except your regular doctor and the authors of their own documents)."
            ),
            action_form(
                csrf,
                "hide_all",
                &[("value", "0")],
                super::i18n::fr_en("Ne plus tout masquer", "Stop hiding everything"),
                "secondary"
            )
        )
    } else {
        format!(
            "<p>{}</p>{}",
            super::i18n::fr_en(
                "Les professionnels autorisés voient les documents que vous n'avez pas masqués.",
                "Authorised professionals see the documents you have not hidden."
            ),
            action_form(
                csrf,
                "hide_all",
                &[("value", "1")],
                super::i18n::fr_en("Masquer tout le dossier", "Hide the whole record"),
                "secondary"
            )
        )
    };
    let grant_forms = format!(
        "<h3>{}</h3>{}{}<details class=\"card\"{}><summary>{}</summary>\
             <form method=\"get\" action=\"/autorisations/autoriser\">\
             <p><label for=\"rpps-grant\">{}</label><input id=\"rpps-grant\" name=\"pro\" type=\"text\" inputmode=\"numeric\" maxlength=\"11\" value=\"{}\"></p>\
             <p><button type=\"submit\" class=\"secondary\">{}</button></p></form>\
             <form method=\"get\" action=\"/autorisations/autoriser\">\
             <p><label for=\"finess\">{}</label><input id=\"finess\" name=\"etablissement\" type=\"text\" maxlength=\"9\" aria-describedby=\"finess-aide\"></p>\
             <p id=\"finess-aide\" class=\"hint\">{}</p>\
             <p><button type=\"submit\" class=\"secondary\">{}</button></p></form></details>",
        super::i18n::fr_en("Autoriser un professionnel", "Authorise a professional"),
        err("grant"),
        super::grant::find_form(s, &Default::default()),
        if typed.form == "grant" { " open" } else { "" },
        super::i18n::fr_en(
            "Par son numéro RPPS, ou un établissement",
            "By RPPS number, or an establishment"
        ),
        super::i18n::fr_en("Numéro RPPS (11 chiffres)", "RPPS number (11 digits)"),
        val("grant"),
        super::i18n::fr_en("Continuer", "Continue"),
        super::i18n::fr_en(
            "Numéro FINESS de l'établissement",
            "The establishment's FINESS number"
        ),
        super::i18n::fr_en(
            "9 caractères, sur les documents de l'établissement.",
            "9 characters, on the establishment's documents."
        ),
        super::i18n::fr_en("Continuer", "Continue"),
    );
    Ok(format!(
        "<h1>{}</h1>{}{}\
         <section aria-labelledby=\"mt\"><h2 id=\"mt\">{}</h2>\
         <p class=\"hint\">{}</p>{mt}{}</section>\
         <section aria-labelledby=\"gr\"><h2 id=\"gr\">{}</h2><ul>{grants}</ul>{}</section>\
         <section aria-labelledby=\"bl\"><h2 id=\"bl\">{}</h2>\
         <p class=\"hint\">{}</p><ul>{blocked}</ul>{}</section>\
         <section aria-labelledby=\"ct\"><h2 id=\"ct\">{}</h2>{care_team}</section>\
         <section aria-labelledby=\"rg\"><h2 id=\"rg\">{}</h2>{regulation}</section>\
         <section aria-labelledby=\"ha\"><h2 id=\"ha\">{}</h2>{hide_all}</section>\
         <section aria-labelledby=\"ai\"><h2 id=\"ai\">{}</h2><p>{}</p><p><a href=\"/aidants\">{}</a></p></section>",
        t("access.title"),
        notice(info),
        if typed.form.is_empty() {
            alert(&typed.message)
        } else {
            String::new()
        },
        t("access.mt"),
        super::i18n::fr_en(
            "Votre médecin traitant voit tout le dossier, documents masqués compris.",
            "Your regular doctor sees the whole record, hidden documents included."
        ),
        rpps_form(
            "medecin",
            "medecin",
            super::i18n::fr_en(
                "Numéro RPPS du médecin traitant",
                "Your regular doctor's RPPS number"
            ),
            super::i18n::fr_en("Déclarer ce médecin traitant", "Declare this regular doctor")
        ),
        t("access.granted"),
        grant_forms,
        t("access.blocked"),
        super::i18n::fr_en(
            "Un professionnel bloqué n'a aucun accès, quoi que disent les autres réglages.",
            "A blocked professional has no access, whatever the other settings say."
        ),
        rpps_form(
            "block",
            "block",
            super::i18n::fr_en(
                "Numéro RPPS du professionnel à bloquer",
                "RPPS number of the professional to block"
            ),
            super::i18n::fr_en("Bloquer ce professionnel", "Block this professional")
        ),
        super::i18n::fr_en("Équipes de soins", "Care teams"),
        t("access.regulation"),
        t("access.hide_all"),
        super::i18n::fr_en("Vos aidants", "Your carers"),
        super::i18n::fr_en(
            "Un proche qui a son propre espace peut consulter les documents que vous choisissez, sans rien pouvoir modifier.",
            "Someone close to you with a space of their own may read the documents you choose, without changing anything.",
        ),
        super::i18n::fr_en("Gérer vos aidants", "Manage your carers"),
    ))
}

#[derive(Deserialize)]
struct Flash {
    ok: Option<String>,
}

async fn directory(
    State(s): State<AppState>,
    h: Holder,
    Query(f): Query<Flash>,
) -> Result<Response, WebError> {
    let info = match f.ok.as_deref() {
        Some(_) => "Vos autorisations ont été enregistrées. Elles s'appliquent dès maintenant.",
        None => "",
    };
    let body = render(&s, &h, &Typed::default(), info).await?;
    Ok(page(
        "Autorisations",
        &Nav::Holder {
            h: &h,
            current: "/autorisations",
        },
        &body,
    )
    .into_response())
}

/// An RPPS number typed in a form, checked as the API does and known to the directory.
async fn known_rpps(s: &AppState, typed: &str) -> Result<ProfessionalId, ApiError> {
    let id = check_rpps(typed.trim())?;
    if s.store.professional(&id.0).await?.is_none() {
        return Err(ApiError::bad_request(
            "aucun professionnel de l'annuaire n'a ce numéro RPPS : vérifiez-le",
        ));
    }
    Ok(id)
}

async fn apply(s: &AppState, h: &Holder, form: &Form) -> Result<(), ApiError> {
    let space = h.holder_side(s).await?;
    let on = form.get("value") == "1";
    match form.get("action") {
        "grant" => {
            let new = grant_of(s, form).await?;
            space
                .update_access_policy(|p| {
                    p.grants.retain(|g| g.grantee != new.grantee);
                    p.grants.push(new.clone());
                })
                .await?;
        }
        "revoke" => {
            let grantee = check_grantee(form.get("kind"), form.get("id"))?;
            if let Grantee::App { id } = &grantee {
                // CA-3: the app's tokens for this space die with its grant.
                space.disconnect_app(&id.0).await?;
            } else {
                space
                    .update_access_policy(|p| p.grants.retain(|g| g.grantee != grantee))
                    .await?;
            }
        }
        "block" => {
            let id = known_rpps(s, form.get("rpps")).await?;
            space
                .update_access_policy(|p| {
                    if !p.blocked.contains(&id) {
                        p.blocked.push(id.clone());
                    }
                })
                .await?;
        }
        "unblock" => {
            let id = check_rpps(form.get("rpps"))?;
            space
                .update_access_policy(|p| p.blocked.retain(|b| *b != id))
                .await?;
        }
        "medecin" => {
            let id = known_rpps(s, form.get("rpps")).await?;
            space
                .update_access_policy(|p| p.medecin_traitant = Some(id.clone()))
                .await?;
        }
        "medecin_retirer" => {
            space.update_access_policy(|p| p.medecin_traitant = None).await?;
        }
        "regulation" => {
            space.update_access_policy(|p| p.regulation_consent = on).await?;
        }
        "hide_all" => {
            space.update_access_policy(|p| p.hide_all = on).await?;
        }
        "care_team" => {
            space.update_access_policy(|p| p.care_team_objection = on).await?;
        }
        _ => return Err(ApiError::bad_request("action inconnue")),
    }
    Ok(())
}

/// The grant a form asks for (AC-3): a professional (by RPPS, known to the directory) or an
/// establishment (FINESS); the whole record or the categories ticked; until the end of a day
/// (in France's legal time) or until revoked.
async fn grant_of(s: &AppState, form: &Form) -> Result<Grant, ApiError> {
    let grantee = match form.get("kind") {
        "" | "professional" => {
            let typed = form.opt("id").unwrap_or(form.get("rpps"));
            Grantee::Professional {
                id: known_rpps(s, typed).await?,
            }
        }
        "establishment" => check_grantee("establishment", &form.get("id").trim().to_uppercase())?,
        _ => return Err(ApiError::bad_request("type d'autorisation inconnu")),
    };
    let (categories, until) = scope_of(s, form)?;
    Ok(Grant {
        grantee,
        categories,
        until,
        express: false,
        basis: GrantBasis::Holder,
    })
}

/// What a grant covers, from its form's fields (`portee`, `categories`, `jusquau`): every
/// category or those ticked, until the end of a day (in France's legal time) or until revoked.
pub(super) fn scope_of(
    s: &AppState,
    form: &Form,
) -> Result<(Option<Vec<Category>>, Option<carnet_domain::Timestamp>), ApiError> {
    let categories = match form.get("portee") {
        "categories" => {
            let cs: Vec<Category> = form.all("categories").filter_map(Category::parse).collect();
            if cs.is_empty() {
                return Err(ApiError::bad_request(
                    "cochez au moins une catégorie, ou choisissez « Tout le dossier »",
                ));
            }
            Some(cs)
        }
        _ => None,
    };
    let until = match super::profile::typed_day(form.get("jusquau")) {
        Err(()) => {
            return Err(ApiError::bad_request(
                "la date de fin n'est pas une date : saisissez-la sous la forme JJ/MM/AAAA",
            ));
        }
        Ok(None) => None,
        Ok(Some(day)) => {
            let end = end_of_day_in_france(day)
                .ok_or_else(|| ApiError::bad_request("la date de fin n'est pas une date"))?;
            if end <= s.store.now() {
                return Err(ApiError::bad_request(
                    "la date de fin est passée : choisissez aujourd'hui ou un jour à venir",
                ));
            }
            Some(end)
        }
    };
    Ok((categories, until))
}

/// The instant a day ends in France (midnight after it, legal time).
fn end_of_day_in_france(day: time::Date) -> Option<carnet_domain::Timestamp> {
    let next = day.next_day()?;
    let noon = carnet_domain::Timestamp::from_offset_date_time(next.with_hms(12, 0, 0).ok()?.assume_utc());
    let offset =
        time::UtcOffset::from_whole_seconds(carnet_domain::agenda::paris_offset_seconds(noon)).ok()?;
    Some(carnet_domain::Timestamp::from_offset_date_time(
        next.midnight().assume_offset(offset),
    ))
}

/// What asks "are you sure?" before it is done: hiding the whole record from professionals,
/// and no longer declaring a médecin traitant (who sees everything, masked documents included).
fn confirmation(h: &Holder, form: &Form) -> Option<String> {
    if form.get("confirme") == "1" {
        return None;
    }
    let (title, explain, yes) = match (form.get("action"), form.get("value")) {
        ("hide_all", "1") => (
            "Masquer tout le dossier ?",
            "Aucun professionnel ne verra plus vos documents, sauf votre médecin traitant et les auteurs de \
             leurs propres documents — y compris en cas de besoin, par exemple un médecin qui vous soigne \
             aux urgences. Vous pourrez revenir sur ce choix à tout moment.",
            "Oui, masquer tout le dossier",
        ),
        ("medecin_retirer", _) => (
            "Ne plus déclarer de médecin traitant ?",
            "Votre médecin traitant voit tout votre dossier, documents masqués compris, et il est prévenu \
             quand quelqu'un y accède en urgence. Sans médecin traitant déclaré, il n'aura plus que les \
             autorisations que vous lui donnez.",
            "Oui, ne plus le déclarer",
        ),
        _ => return None,
    };
    Some(format!(
        "<h1>{title}</h1><p>{explain}</p>\
         <form method=\"post\" action=\"/autorisations\" class=\"card\">{}\
         <input type=\"hidden\" name=\"action\" value=\"{}\"><input type=\"hidden\" name=\"value\" value=\"{}\">\
         <input type=\"hidden\" name=\"confirme\" value=\"1\">\
         <p><button type=\"submit\" class=\"danger\">{yes}</button></p></form>\
         <p><a href=\"/autorisations\">Non, revenir sans rien changer</a></p>",
        csrf_field(&h.csrf),
        esc(form.get("action")),
        esc(form.get("value")),
    ))
}

async fn change(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    if let Some(body) = confirmation(&h, &form) {
        let r = page(
            "Autorisations",
            &Nav::Holder {
                h: &h,
                current: "/autorisations",
            },
            &body,
        );
        return Ok(r.into_response());
    }
    match apply(&s, &h, &form).await {
        Ok(()) => Ok(see_other("/autorisations?ok=1")),
        // A grant chosen on the chooser page comes back there, with its error.
        Err(e) if form.get("action") == "grant" && !form.get("kind").is_empty() => {
            super::grant::chooser(&s, &h, form.get("kind"), form.get("id"), &super::french(&e)).await
        }
        Err(e) => {
            let typed = Typed {
                form: match form.get("action") {
                    "grant" => "grant",
                    "block" => "block",
                    "medecin" => "medecin",
                    _ => "",
                },
                rpps: form.get("rpps").to_string(),
                message: super::french(&e),
            };
            let body = render(&s, &h, &typed, "").await?;
            let mut r = page(
                "Autorisations",
                &Nav::Holder {
                    h: &h,
                    current: "/autorisations",
                },
                &body,
            )
            .into_response();
            *r.status_mut() = if e.status.is_client_error() {
                e.status
            } else {
                StatusCode::BAD_REQUEST
            };
            Ok(r)
        }
    }
}
