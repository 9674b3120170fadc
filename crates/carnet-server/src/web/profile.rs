//! The medical profile by section (PR-1, PR-2) with a form to add an entry, and the
//! measurements (PR-4) as `<img>` charts of the JSON API's SVG route with a form to add one.
//! Everything is read and written through the gate.

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carnet_domain::access::{Author, Context};
use carnet_domain::profile::{EntryInput, MEASURES, MeasurementInput, Section, measure};
use carnet_store::profile::ProfileEntry;
use serde::Deserialize;

use super::{Form, Holder, Nav, WebError, alert, csrf_field, esc, french, iso_day, notice, page, see_other};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/profil", get(show).post(add_entry))
        .route("/profil/mesures", post(add_measure))
}

/// Sections a free-text entry can be added to from this page.
const TEXT_SECTIONS: [Section; 9] = [
    Section::Conditions,
    Section::Treatments,
    Section::Allergies,
    Section::Hospitalisations,
    Section::FamilyHistory,
    Section::Disabilities,
    Section::Vaccinations,
    Section::Lifestyle,
    Section::AdvanceDirectives,
];

#[derive(Default)]
struct Typed {
    section: String,
    text: String,
    date: String,
    entry_error: String,
    code: String,
    value: String,
    at: String,
    measure_error: String,
    info: String,
}

fn entry_label(e: &ProfileEntry) -> String {
    let x = &e.entry;
    let mut label = x.text.clone();
    if let Some(c) = &x.contact {
        label = format!(
            "{} ({})",
            c.name,
            if c.role == "trusted" {
                "personne de confiance"
            } else {
                "personne à prévenir"
            }
        );
    }
    if let Some(v) = &x.value {
        label = if label.is_empty() {
            v.clone()
        } else {
            format!("{label} : {v}")
        };
    }
    if label.is_empty()
        && let Some(code) = &x.code
    {
        label = code.display.clone().unwrap_or_else(|| code.code.clone());
    }
    let date = x
        .date
        .as_deref()
        .map(|d| format!(" — {}", iso_day(d)))
        .unwrap_or_default();
    let by = match &e.author {
        Author::Holder => "vous-même".to_string(),
        _ => e.author_name.clone(),
    };
    format!("{label}{date} (noté par {by}, {})", super::day(e.created_at))
}

/// French words for the profile's validation messages.
fn french_invalid(e: &ApiError) -> String {
    let m = e.message.as_str();
    if e.code != "invalid" {
        return french(e);
    }
    if m.contains("text") {
        "Saisissez un libellé (500 caractères au plus).".into()
    } else if m.contains("date") {
        "La date doit être une année (2020), un mois (2020-05) ou un jour (2020-05-17).".into()
    } else if m.contains("not a number") || m.contains("value") {
        "Saisissez une valeur numérique dans les limites de la mesure.".into()
    } else if m.contains("future") {
        "La date de la mesure ne peut pas être dans le futur.".into()
    } else if m.contains("before 1900") {
        "La date de la mesure est trop ancienne.".into()
    } else {
        "Les informations saisies ne sont pas valides : vérifiez-les.".into()
    }
}

async fn render(s: &AppState, h: &Holder, t: &Typed) -> Result<String, WebError> {
    let ctx = Context::default();
    let entries = s
        .gate
        .list_profile(h.space(), &h.actor(), None, &ctx)
        .await
        .map_err(ApiError::from)?;
    let mut sections = String::new();
    for section in Section::ALL {
        let items: Vec<String> = entries
            .iter()
            .filter(|e| e.entry.section == section)
            .map(|e| format!("<li>{}</li>", esc(&entry_label(e))))
            .collect();
        if items.is_empty() && !TEXT_SECTIONS.contains(&section) {
            continue;
        }
        let list = if items.is_empty() {
            "<p class=\"muted\">Aucune information.</p>".to_string()
        } else {
            format!("<ul>{}</ul>", items.concat())
        };
        sections.push_str(&format!(
            "<section class=\"card\" aria-labelledby=\"s-{0}\"><h3 id=\"s-{0}\">{1}</h3>{list}</section>",
            section.tag(),
            esc(section.label_fr())
        ));
    }
    let section_options: String = TEXT_SECTIONS
        .iter()
        .map(|x| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                x.tag(),
                if x.tag() == t.section { " selected" } else { "" },
                esc(x.label_fr())
            )
        })
        .collect();
    // Measures: a chart for each measure that has points.
    let mut charts = String::new();
    for m in MEASURES.iter() {
        let points = s
            .gate
            .measurements(h.space(), &h.actor(), m.loinc, None, 10_000, &ctx)
            .await
            .map_err(ApiError::from)?;
        if let Some(last) = points.last() {
            charts.push_str(&format!(
                "<figure class=\"chart\"><img src=\"/api/v1/me/measurements/{}/chart.svg\" width=\"640\" height=\"280\" \
                 alt=\"Courbe : {} ({} mesures), dernière valeur {} {} {}\"><figcaption>{} — dernière valeur {} {} {}</figcaption></figure>",
                m.loinc,
                esc(m.label_fr),
                points.len(),
                last.measurement.value,
                esc(m.unit()),
                esc(&super::when(last.measurement.at)),
                esc(m.label_fr),
                last.measurement.value,
                esc(m.unit()),
                esc(&super::when(last.measurement.at)),
            ));
        }
    }
    if charts.is_empty() {
        charts = "<p class=\"muted\">Aucune mesure pour l'instant.</p>".into();
    }
    let measure_options: String = MEASURES
        .iter()
        .map(|m| {
            format!(
                "<option value=\"{}\"{}>{} ({})</option>",
                m.loinc,
                if m.loinc == t.code { " selected" } else { "" },
                esc(m.label_fr),
                esc(m.unit())
            )
        })
        .collect();
    let csrf = csrf_field(&h.csrf);
    Ok(format!(
        "<h1>Profil médical</h1>{}<p>Les informations de santé que vous et vos professionnels avez notées. \
         Chacune indique qui l'a écrite et quand. Une <a href=\"/api/v1/me/summary.html\">synthèse médicale</a> les rassemble.</p>\
         <section aria-labelledby=\"sections\"><h2 id=\"sections\">Par rubrique</h2><div class=\"grid\">{sections}</div></section>\
         <section aria-labelledby=\"ajout\"><h2 id=\"ajout\">Ajouter une information</h2>{}\
         <form method=\"post\" action=\"/profil\" class=\"card\">{csrf}\
         <p><label for=\"section\">Rubrique</label><select id=\"section\" name=\"section\">{section_options}</select></p>\
         <p><label for=\"texte\">Information</label><input id=\"texte\" name=\"texte\" type=\"text\" maxlength=\"500\" required value=\"{}\"></p>\
         <p><label for=\"date-e\">Date (facultatif : année, mois ou jour)</label>\
         <input id=\"date-e\" name=\"date\" type=\"text\" placeholder=\"AAAA-MM-JJ\" value=\"{}\"></p>\
         <p><button type=\"submit\">Ajouter au profil</button></p></form></section>\
         <section aria-labelledby=\"mesures\"><h2 id=\"mesures\">Mesures</h2>{charts}{}\
         <form method=\"post\" action=\"/profil/mesures\" class=\"card\">{csrf}\
         <p><label for=\"mesure\">Mesure</label><select id=\"mesure\" name=\"mesure\">{measure_options}</select></p>\
         <p><label for=\"valeur\">Valeur</label><input id=\"valeur\" name=\"valeur\" type=\"text\" inputmode=\"decimal\" required value=\"{}\"></p>\
         <p><label for=\"date-m\">Date de la mesure (facultatif : aujourd'hui)</label><input id=\"date-m\" name=\"date\" type=\"date\" value=\"{}\"></p>\
         <p><button type=\"submit\">Enregistrer la mesure</button></p></form></section>",
        notice(&t.info),
        alert(&t.entry_error),
        esc(&t.text),
        esc(&t.date),
        alert(&t.measure_error),
        esc(&t.value),
        esc(&t.at),
    ))
}

fn respond(h: &Holder, status: StatusCode, body: &str) -> Response {
    let mut r = page(
        "Profil médical",
        &Nav::Holder {
            h,
            current: "/profil",
        },
        body,
    )
    .into_response();
    *r.status_mut() = status;
    r
}

#[derive(Deserialize)]
struct Flash {
    ok: Option<String>,
}

async fn show(State(s): State<AppState>, h: Holder, Query(f): Query<Flash>) -> Result<Response, WebError> {
    let typed = Typed {
        info: match f.ok.as_deref() {
            Some("mesure") => "La mesure a été enregistrée.".into(),
            Some(_) => "L'information a été ajoutée à votre profil.".into(),
            None => String::new(),
        },
        ..Typed::default()
    };
    let body = render(&s, &h, &typed).await?;
    Ok(respond(&h, StatusCode::OK, &body))
}

async fn add_entry(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let mut typed = Typed {
        section: form.get("section").to_string(),
        text: form.get("texte").to_string(),
        date: form.get("date").to_string(),
        ..Typed::default()
    };
    let result = match Section::parse(&typed.section).filter(|x| TEXT_SECTIONS.contains(x)) {
        None => Err("Choisissez une rubrique dans la liste.".to_string()),
        Some(_) if typed.text.trim().is_empty() => Err("Saisissez l'information à ajouter.".to_string()),
        Some(section) => {
            let input = EntryInput {
                section,
                text: typed.text.trim().to_string(),
                code: None,
                date: form.opt("date").map(str::to_string),
                end_date: None,
                value: None,
                contact: None,
                note: None,
            };
            s.gate
                .add_profile_entry(h.space(), &h.actor(), input, "", &Context::default())
                .await
                .map(|_| ())
                .map_err(|e| french_invalid(&ApiError::from(e)))
        }
    };
    match result {
        Ok(()) => Ok(see_other("/profil?ok=entree")),
        Err(m) => {
            typed.entry_error = m;
            let body = render(&s, &h, &typed).await?;
            Ok(respond(&h, StatusCode::BAD_REQUEST, &body))
        }
    }
}

async fn add_measure(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let mut typed = Typed {
        code: form.get("mesure").to_string(),
        value: form.get("valeur").to_string(),
        at: form.get("date").to_string(),
        ..Typed::default()
    };
    let result: Result<(), String> = async {
        let m = measure(&typed.code).ok_or("Choisissez une mesure dans la liste.")?;
        let value: f64 = typed
            .value
            .trim()
            .replace(',', ".")
            .parse()
            .map_err(|_| "Saisissez la valeur en chiffres, par exemple 72,5.")?;
        if !(m.min..=m.max).contains(&value) {
            return Err(format!(
                "La valeur doit être comprise entre {} et {} {}.",
                m.min,
                m.max,
                m.unit()
            ));
        }
        let at = match form.opt("date") {
            // Noon in France on the chosen day.
            Some(d) => format!("{d}T12:00:00+01:00"),
            None => s.store.now().to_rfc3339(),
        };
        let input = MeasurementInput {
            code: m.loinc.to_string(),
            value,
            unit: m.unit().to_string(),
            at,
        };
        s.gate
            .add_measurements(h.space(), &h.actor(), &[input], &Context::default())
            .await
            .map(|_| ())
            .map_err(|e| french_invalid(&ApiError::from(e)))
    }
    .await;
    match result {
        Ok(()) => Ok(see_other("/profil?ok=mesure")),
        Err(m) => {
            typed.measure_error = m;
            let body = render(&s, &h, &typed).await?;
            Ok(respond(&h, StatusCode::BAD_REQUEST, &body))
        }
    }
}
