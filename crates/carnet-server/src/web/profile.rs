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
use carnet_domain::profile::{
    BLOOD_GROUPS, CodeSystem, Coding, Contact, EntryInput, MEASURES, MeasurementInput, ORGAN_DONATION,
    QUESTIONS, Section, measure,
};
use carnet_store::StoreError;
use carnet_store::profile::ProfileEntry;
use serde::Deserialize;

use super::i18n::{
    Locale, Reader, author_words, fr_en, locale, measure_label, measure_unit, section_label, t as tr,
};
use super::{Form, Holder, Nav, WebError, alert, csrf_field, esc, french, iso_day, notice, page, see_other};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/profil", get(show).post(add_entry))
        .route("/profil/mesures", post(add_measure))
        .route("/profil/mesures/{id}/supprimer", post(delete_measure))
        .route("/profil/rubrique", post(add_special))
        .route("/profil/vaccinations", get(vaccinations).post(add_vaccination))
        .route("/profil/synthese", get(summary))
        .route("/profil/{id}/corriger", post(correct_entry))
        .route("/profil/{id}/supprimer", post(delete_entry))
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
pub(super) struct Typed {
    section: String,
    text: String,
    date: String,
    entry_error: String,
    entry_code: String,
    code: String,
    value: String,
    at: String,
    measure_error: String,
    info: String,
    /// The special form (blood group, organ donation, people, questionnaire) sent back, with
    /// what was typed.
    special: Form,
    special_error: String,
    /// A correction refused: the entry, what was typed, and why.
    fix_id: String,
    fix_text: String,
    fix_date: String,
    fix_error: String,
}

pub(super) fn entry_label(e: &ProfileEntry, reader: Reader<'_>) -> String {
    let x = &e.entry;
    let mut label = x.text.clone();
    if let Some(c) = &x.contact {
        label = format!(
            "{} ({})",
            c.name,
            if c.role == "trusted" {
                super::i18n::fr_en("personne de confiance", "trusted person")
            } else {
                super::i18n::fr_en("personne à prévenir", "person to contact")
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
    let by = author_words(&e.author, &e.author_name, reader);
    format!(
        "{label}{date} ({} {by}, {})",
        super::i18n::fr_en("noté par", "noted by"),
        super::day(e.created_at)
    )
}

/// A date of the record as people type it — `12/05/2019`, `05/2019`, `2019`, or already
/// `2019-05-12` — in the record's form (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`); what cannot be read
/// goes on unchanged, for the domain to refuse in words.
pub(super) fn record_date(typed: &str) -> String {
    let t = typed.trim();
    let parts: Vec<&str> = t.split(['/', '.']).map(str::trim).collect();
    let digits = |p: &str, n: usize| p.len() == n && p.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        [d, m, y] if (digits(d, 1) || digits(d, 2)) && (digits(m, 1) || digits(m, 2)) && digits(y, 4) => {
            format!("{y}-{m:0>2}-{d:0>2}")
        }
        [m, y] if (digits(m, 1) || digits(m, 2)) && digits(y, 4) => format!("{y}-{m:0>2}"),
        _ => t.to_string(),
    }
}

/// A whole day typed as people type it ("12/05/2019", "12.05.2019" or "2019-05-12");
/// `Ok(None)` when left empty, `Err(())` when it is not a day of the calendar.
pub(super) fn typed_day(typed: &str) -> Result<Option<time::Date>, ()> {
    if typed.trim().is_empty() {
        return Ok(None);
    }
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(&record_date(typed), format)
        .map(Some)
        .map_err(|_| ())
}

/// The attributes of a day field: text, not `type="date"`, whose display follows the
/// browser's language (mm/dd/yyyy in an English browser) rather than the page's.
/// The placeholder says the order in the page's language (JJ/MM/AAAA, DD/MM/YYYY).
pub(super) fn day_field() -> &'static str {
    fr_en(
        "type=\"text\" inputmode=\"numeric\" placeholder=\"JJ/MM/AAAA\" maxlength=\"10\"",
        "type=\"text\" inputmode=\"numeric\" placeholder=\"DD/MM/YYYY\" maxlength=\"10\"",
    )
}

/// Adds an entry to the open space as the person logged in (a representative named as
/// themselves, S-6); a refusal in words.
async fn write_entry(s: &AppState, h: &Holder, input: EntryInput) -> Result<(), String> {
    s.gate
        .add_profile_entry(
            h.space(),
            &h.actor(),
            input,
            &h.author_name(),
            &Context::default(),
        )
        .await
        .map(|_| ())
        .map_err(french_invalid)
}

/// The words for a refused entry or measurement (`i18n::profile_error`), or for any other
/// refusal.
fn french_invalid(e: StoreError) -> String {
    match e {
        StoreError::Profile { error, .. } => super::i18n::profile_error(&error),
        other => french(&ApiError::from(other)),
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
    let actor = h.actor();
    for section in Section::ALL {
        let items: Vec<String> = entries
            .iter()
            .filter(|e| e.entry.section == section)
            .map(|e| {
                format!(
                    "<li>{}{}</li>",
                    esc(&entry_label(e, Reader::of(&actor))),
                    entry_corrections(h, e, t)
                )
            })
            .collect();
        if items.is_empty() && !TEXT_SECTIONS.contains(&section) {
            continue;
        }
        let list = if items.is_empty() {
            format!("<p class=\"muted\">{}</p>", tr("profile.none"))
        } else {
            format!("<ul>{}</ul>", items.concat())
        };
        sections.push_str(&format!(
            "<section class=\"card\" aria-labelledby=\"s-{0}\"><h3 id=\"s-{0}\">{1}</h3>{list}</section>",
            section.tag(),
            esc(section_label(section))
        ));
    }
    let section_options: String = TEXT_SECTIONS
        .iter()
        .map(|x| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                x.tag(),
                if x.tag() == t.section { " selected" } else { "" },
                esc(section_label(*x))
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
            let value = super::i18n::decimal(last.measurement.value);
            let (label, unit) = (esc(measure_label(m)), esc(measure_unit(m)));
            let at = esc(&super::when(last.measurement.at));
            let n = points.len();
            let (alt, caption) = match locale() {
                Locale::Fr => (
                    format!("Courbe : {label} ({n} mesures), dernière valeur {value} {unit} {at}"),
                    format!("{label} — dernière valeur {value} {unit} {at}"),
                ),
                Locale::En => (
                    format!("Chart: {label} ({n} measurements), latest value {value} {unit} {at}"),
                    format!("{label} — latest value {value} {unit} {at}"),
                ),
            };
            charts.push_str(&format!(
                "<figure class=\"chart\"><img src=\"/api/v1/me/measurements/{}/chart.svg\" width=\"640\" \
                 height=\"280\" alt=\"{alt}\"><figcaption>{caption}</figcaption></figure>",
                m.loinc,
            ));
            charts.push_str(&corrections(h, m, &points));
        }
    }
    if charts.is_empty() {
        charts = format!(
            "<p class=\"muted\">{}</p>",
            fr_en("Aucune mesure pour l'instant.", "No measurement yet.")
        );
    }
    let measure_options: String = MEASURES
        .iter()
        .map(|m| {
            format!(
                "<option value=\"{}\"{}>{} ({})</option>",
                m.loinc,
                if m.loinc == t.code { " selected" } else { "" },
                esc(measure_label(m)),
                esc(measure_unit(m))
            )
        })
        .collect();
    let csrf = csrf_field(&h.csrf);
    let special = special_forms(h, t);
    let day_field = day_field();
    Ok(format!(
        "<h1>{}</h1>{}<p>{} <a href=\"/profil/synthese\">{}</a> {}</p>\
         <section aria-labelledby=\"sections\"><h2 id=\"sections\">{}</h2><div class=\"grid\">{sections}</div></section>\
         {special}<section aria-labelledby=\"ajout\"><h2 id=\"ajout\">{}</h2>{}\
         <form method=\"post\" action=\"/profil\" class=\"card\">{csrf}\
         <p><label for=\"section\">{}</label><select id=\"section\" name=\"section\">{section_options}</select></p>\
         <p><label for=\"texte\">Information</label><input id=\"texte\" name=\"texte\" type=\"text\" maxlength=\"500\" required value=\"{}\"></p>\
         <p><label for=\"code-e\">{}</label>\
         <input id=\"code-e\" name=\"code\" type=\"text\" maxlength=\"20\" autocomplete=\"off\" value=\"{}\"></p>\
         <p><label for=\"date-e\">{}</label>\
         <input id=\"date-e\" name=\"date\" type=\"text\" placeholder=\"{}\" value=\"{}\"></p>\
         <p><button type=\"submit\">{}</button></p></form></section>\
         <section aria-labelledby=\"mesures\"><h2 id=\"mesures\">{}</h2>{charts}{}\
         <form method=\"post\" action=\"/profil/mesures\" class=\"card\">{csrf}\
         <p><label for=\"mesure\">{}</label><select id=\"mesure\" name=\"mesure\">{measure_options}</select></p>\
         <p><label for=\"valeur\">{}</label><input id=\"valeur\" name=\"valeur\" type=\"text\" inputmode=\"decimal\" required value=\"{}\"></p>\
         <p><label for=\"date-m\">{}</label><input id=\"date-m\" name=\"date\" {day_field} value=\"{}\"></p>\
         <p><button type=\"submit\">{}</button></p></form></section>",
        tr("profile.title"),
        notice(&t.info),
        fr_en(
            "Les informations de santé que vous et vos professionnels avez notées. Chacune indique qui \
             l'a écrite et quand. Une",
            "The health information you and your professionals have noted. Each says who wrote it and \
             when. A"
        ),
        fr_en("synthèse médicale", "medical summary"),
        fr_en("les rassemble.", "brings them together."),
        tr("profile.by_section"),
        tr("profile.add"),
        alert(&t.entry_error),
        fr_en("Rubrique", "Section"),
        esc(&t.text),
        fr_en(
            "Code (facultatif : CIM-10 pour une maladie, ATC pour un traitement, CCAM pour une opération)",
            "Code (optional: ICD-10 for a disease, ATC for a treatment, CCAM for an operation)"
        ),
        esc(&t.entry_code),
        fr_en(
            "Date (facultatif : année, mois ou jour)",
            "Date (optional: year, month or day)"
        ),
        fr_en("JJ/MM/AAAA, MM/AAAA ou AAAA", "DD/MM/YYYY, MM/YYYY or YYYY"),
        esc(&t.date),
        fr_en("Ajouter au profil", "Add to the profile"),
        tr("profile.measures"),
        alert(&t.measure_error),
        fr_en("Mesure", "Measure"),
        fr_en("Valeur", "Value"),
        esc(&t.value),
        fr_en(
            "Date de la mesure (facultatif : aujourd'hui)",
            "Date of the measurement (optional: today)"
        ),
        esc(&t.at),
        fr_en("Enregistrer la mesure", "Save the measurement"),
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
            Some("mesure") => fr_en("La mesure a été enregistrée.", "The measurement was saved.").into(),
            Some("mesure-supprimee") => {
                fr_en("La mesure a été supprimée.", "The measurement was deleted.").into()
            }
            Some("corrigee") => {
                fr_en("L'information a été corrigée.", "The information was corrected.").into()
            }
            Some("supprimee") => fr_en(
                "L'information a été supprimée de votre profil.",
                "The information was deleted from your profile.",
            )
            .into(),
            Some(_) => fr_en(
                "L'information a été ajoutée à votre profil.",
                "The information was added to your profile.",
            )
            .into(),
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
        entry_code: form.get("code").to_string(),
        date: form.get("date").to_string(),
        ..Typed::default()
    };
    let result = match Section::parse(&typed.section).filter(|x| TEXT_SECTIONS.contains(x)) {
        None => Err("Choisissez une rubrique dans la liste.".to_string()),
        Some(_) if typed.text.trim().is_empty() => Err(fr_en(
            "Saisissez l'information à ajouter.",
            "Enter the information to add.",
        )
        .to_string()),
        Some(section) => {
            let code = form.opt("code").map(|c| Coding {
                system: section
                    .code_systems()
                    .first()
                    .copied()
                    .unwrap_or(CodeSystem::SnomedCt),
                code: c.to_uppercase(),
                display: None,
            });
            let input = EntryInput {
                section,
                text: typed.text.trim().to_string(),
                code,
                date: form.opt("date").map(record_date),
                end_date: None,
                value: None,
                contact: None,
                note: None,
            };
            write_entry(&s, &h, input).await
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

/// The medical summary in the site's frame, with the way back to the profile (issue 32).
async fn summary(State(s): State<AppState>, h: Holder) -> Result<Response, WebError> {
    let body = crate::api::profile::summary_body(&s, h.space(), &h.actor()).await?;
    Ok(page(
        "Synthèse médicale",
        &Nav::Holder {
            h: &h,
            current: "/profil",
        },
        &format!("<p class=\"no-print\"><a href=\"/profil\">← Profil médical</a></p>{body}"),
    )
    .into_response())
}

/// The id of an entry or a measurement in a page's address; anything else is a missing page.
fn item_id(id: &str) -> Result<uuid::Uuid, WebError> {
    id.parse().map_err(|_| WebError::from(ApiError::not_found()))
}

/// Issue 32 (journey 10): an entry the holder wrote can be corrected (its words and date;
/// the history keeps the former version) or deleted; one written by a professional is theirs.
fn entry_corrections(h: &Holder, e: &ProfileEntry, t: &Typed) -> String {
    if e.author != Author::Holder {
        return String::new();
    }
    let failed = t.fix_id == e.id.to_string();
    let (text, date) = if failed {
        (t.fix_text.clone(), t.fix_date.clone())
    } else {
        (
            e.entry.text.clone(),
            e.entry.date.as_deref().map(iso_day).unwrap_or_default(),
        )
    };
    let label = entry_label(e, Reader::Holder);
    // Words and a date are corrected here; a value from a list or a person, in their own form.
    let edit = if e.entry.value.is_none() && e.entry.contact.is_none() {
        format!(
            "<form method=\"post\" action=\"/profil/{id}/corriger\">{csrf}\
             <input type=\"hidden\" name=\"version\" value=\"{version}\">\
             <p><label for=\"t-{id}\">Information</label>\
             <input id=\"t-{id}\" name=\"texte\" type=\"text\" maxlength=\"500\" required value=\"{text}\"></p>\
             <p><label for=\"d-{id}\">{date_label}</label>\
             <input id=\"d-{id}\" name=\"date\" type=\"text\" value=\"{date}\"></p>\
             <p><button type=\"submit\">{save}</button></p></form>",
            date_label = fr_en(
                "Date (facultatif : JJ/MM/AAAA, MM/AAAA ou AAAA)",
                "Date (optional: DD/MM/YYYY, MM/YYYY or YYYY)"
            ),
            save = fr_en("Enregistrer la correction", "Save the correction"),
            id = e.id,
            csrf = csrf_field(&h.csrf),
            version = e.version,
            text = esc(&text),
            date = esc(&date),
        )
    } else {
        String::new()
    };
    format!(
        "<details class=\"corrections\"{open}><summary>{fix}<span class=\"sr-only\">{colon} {label}</span></summary>\
         {error}{edit}<form method=\"post\" action=\"/profil/{id}/supprimer\" class=\"inline\">{csrf}\
         <button type=\"submit\" class=\"link\">{delete}<span class=\"sr-only\">{colon} {label}</span></button></form></details>",
        fix = fr_en("Corriger ou supprimer", "Correct or delete"),
        delete = fr_en("Supprimer cette information", "Delete this information"),
        colon = fr_en(" :", ":"),
        open = if failed { " open" } else { "" },
        label = esc(&label),
        error = if failed {
            alert(&t.fix_error)
        } else {
            String::new()
        },
        id = e.id,
        csrf = csrf_field(&h.csrf),
    )
}

async fn correct_entry(
    State(s): State<AppState>,
    h: Holder,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let id = item_id(&id)?;
    let ctx = Context::default();
    let current = s
        .gate
        .list_profile(h.space(), &h.actor(), None, &ctx)
        .await
        .map_err(ApiError::from)?
        .into_iter()
        .find(|e| e.id == id)
        .ok_or_else(|| WebError::from(ApiError::not_found()))?;
    let text = form.get("texte").trim().to_string();
    let result = if text.is_empty() {
        Err(fr_en(
            "Saisissez l'information corrigée, ou supprimez-la.",
            "Enter the corrected information, or delete it.",
        )
        .to_string())
    } else {
        let input = EntryInput {
            text: text.clone(),
            date: form.opt("date").map(record_date),
            ..current.entry.clone()
        };
        let version = form.get("version").parse::<i64>().unwrap_or(current.version);
        s.gate
            .update_profile_entry(h.space(), &h.actor(), id, version, input, &ctx)
            .await
            .map(|_| ())
            .map_err(|e| match e {
                StoreError::Conflict => {
                    "Cette information a été modifiée entre-temps : voici sa version actuelle, \
                                         corrigez-la à nouveau si besoin."
                        .to_string()
                }
                other => french_invalid(other),
            })
    };
    match result {
        Ok(()) => Ok(see_other("/profil?ok=corrigee")),
        Err(m) => {
            let typed = Typed {
                fix_id: id.to_string(),
                fix_text: form.get("texte").to_string(),
                fix_date: form.get("date").to_string(),
                fix_error: m,
                ..Typed::default()
            };
            let body = render(&s, &h, &typed).await?;
            Ok(respond(&h, StatusCode::BAD_REQUEST, &body))
        }
    }
}

async fn delete_entry(
    State(s): State<AppState>,
    h: Holder,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let id = item_id(&id)?;
    s.gate
        .delete_profile_entry(h.space(), &h.actor(), id, &Context::default())
        .await
        .map_err(ApiError::from)?;
    Ok(see_other("/profil?ok=supprimee"))
}

/// PR-1: the last measurements of a measure that this space's holder side entered, each with
/// a button that deletes it (a mistyped value is corrected by deleting it and adding the
/// right one); those entered by a professional or a device are theirs to correct.
fn corrections(
    h: &Holder,
    m: &carnet_domain::profile::Measure,
    points: &[carnet_store::profile::Point],
) -> String {
    let own: Vec<&carnet_store::profile::Point> = points
        .iter()
        .rev()
        .filter(|p| p.author == Author::Holder)
        .take(10)
        .collect();
    if own.is_empty() {
        return String::new();
    }
    let items: String = own
        .iter()
        .map(|p| {
            format!(
                "<li>{} — {} {} <form method=\"post\" action=\"/profil/mesures/{}/supprimer\" class=\"inline\">{}\
                 <button type=\"submit\" class=\"link\">{}<span class=\"sr-only\"> {} {}</span></button></form></li>",
                esc(&super::when(p.measurement.at)),
                super::i18n::decimal(p.measurement.value),
                esc(measure_unit(m)),
                p.id,
                csrf_field(&h.csrf),
                fr_en("Supprimer", "Delete"),
                fr_en("la mesure du", "the measurement of"),
                esc(&super::when(p.measurement.at)),
            )
        })
        .collect();
    let label = esc(&measure_label(m).to_lowercase());
    let (summary, hint) = match locale() {
        Locale::Fr => (
            format!("Corriger une mesure de {label} saisie par erreur"),
            "Supprimez la mesure erronée, puis ajoutez la bonne ci-dessous.",
        ),
        Locale::En => (
            format!("Correct a {label} measurement entered by mistake"),
            "Delete the wrong measurement, then add the right one below.",
        ),
    };
    format!(
        "<details class=\"corrections\"><summary>{summary}</summary><p>{hint}</p><ul>{items}</ul></details>"
    )
}

async fn delete_measure(
    State(s): State<AppState>,
    h: Holder,
    axum::extract::Path(id): axum::extract::Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let id = item_id(&id)?;
    s.gate
        .delete_measurement(h.space(), &h.actor(), id, &Context::default())
        .await
        .map_err(ApiError::from)?;
    Ok(see_other("/profil?ok=mesure-supprimee#mesures"))
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
        let value: f64 = typed.value.trim().replace(',', ".").parse().map_err(|_| {
            fr_en(
                "Saisissez la valeur en chiffres, par exemple 72,5.",
                "Enter the value in figures, for example 72.5.",
            )
        })?;
        let at = match typed_day(form.get("date")).map_err(|()| {
            fr_en(
                "Saisissez la date de la mesure sous la forme JJ/MM/AAAA, par exemple 12/05/2026.",
                "Enter the date of the measurement as DD/MM/YYYY, for example 12/05/2026.",
            )
        })? {
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
            .map_err(french_invalid)
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

/// The forms of the sections that are not free text: blood group (a list), organ donation
/// (radio buttons), trusted people (name, role, phone), the health questionnaire (PR-2).
fn special_forms(h: &Holder, t: &Typed) -> String {
    let csrf = csrf_field(&h.csrf);
    let f = &t.special;
    let which = f.get("rubrique");
    let err = |name: &str| {
        if which == name {
            alert(&t.special_error)
        } else {
            String::new()
        }
    };
    // No group chosen in advance: a wrong default would be a dangerous mistake.
    let blood: String = std::iter::once(format!(
        "<option value=\"\">{}</option>",
        fr_en("— choisir —", "— choose —")
    ))
    .chain(BLOOD_GROUPS.iter().map(|g| {
        let sel = if which == "blood_group" && f.get("valeur") == *g {
            " selected"
        } else {
            ""
        };
        format!("<option value=\"{g}\"{sel}>{g}</option>")
    }))
    .collect();
    let organ: String = ORGAN_DONATION
        .iter()
        .map(|v| {
            let label = organ_label(v);
            let checked = if which == "organ_donation" && f.get("valeur") == *v {
                " checked"
            } else {
                ""
            };
            format!(
                "<p class=\"choice\"><input type=\"radio\" id=\"don-{v}\" name=\"valeur\" value=\"{v}\" required{checked}>\
                 <label for=\"don-{v}\">{label}</label></p>"
            )
        })
        .collect();
    let kept = |section: &str, name: &str| {
        if which == section {
            esc(f.get(name))
        } else {
            String::new()
        }
    };
    let role_notify = if which == "trusted_people" && f.get("role") == "notify" {
        " selected"
    } else {
        ""
    };
    let questions: String = QUESTIONS
        .iter()
        .map(|(id, text)| {
            let sel = if which == "questionnaire" && f.get("question") == *id {
                " selected"
            } else {
                ""
            };
            format!(
                "<option value=\"{id}\"{sel}>{}</option>",
                esc(question_text(id, text))
            )
        })
        .collect();
    format!(
        "<section aria-labelledby=\"rubriques\"><h2 id=\"rubriques\">{}</h2><div class=\"grid\">\
         <form method=\"post\" action=\"/profil/rubrique\" class=\"card\" aria-labelledby=\"f-bg\">{csrf}\
         <input type=\"hidden\" name=\"rubrique\" value=\"blood_group\"><h3 id=\"f-bg\">{}</h3>{}\
         <p><label for=\"groupe\">{}</label><select id=\"groupe\" name=\"valeur\" required>{blood}</select></p>\
         <p><button type=\"submit\">{}</button></p></form>\
         <form method=\"post\" action=\"/profil/rubrique\" class=\"card\" aria-labelledby=\"f-od\">{csrf}\
         <input type=\"hidden\" name=\"rubrique\" value=\"organ_donation\"><h3 id=\"f-od\">{}</h3>{}\
         <fieldset><legend>{}</legend>{organ}</fieldset>\
         <p><button type=\"submit\">{}</button></p></form>\
         <form method=\"post\" action=\"/profil/rubrique\" class=\"card\" aria-labelledby=\"f-tp\">{csrf}\
         <input type=\"hidden\" name=\"rubrique\" value=\"trusted_people\"><h3 id=\"f-tp\">{}</h3>{}\
         <p><label for=\"nom\">{}</label><input id=\"nom\" name=\"nom\" type=\"text\" maxlength=\"200\" autocomplete=\"off\" required value=\"{}\"></p>\
         <p><label for=\"role\">{}</label><select id=\"role\" name=\"role\"><option value=\"trusted\">{}</option>\
         <option value=\"notify\"{role_notify}>{}</option></select></p>\
         <p><label for=\"tel\">{}</label><input id=\"tel\" name=\"telephone\" type=\"tel\" maxlength=\"30\" autocomplete=\"off\" value=\"{}\"></p>\
         <p><button type=\"submit\">{}</button></p></form>\
         <form method=\"post\" action=\"/profil/rubrique\" class=\"card\" aria-labelledby=\"f-q\">{csrf}\
         <input type=\"hidden\" name=\"rubrique\" value=\"questionnaire\"><h3 id=\"f-q\">{}</h3>{}\
         <p><label for=\"question\">Question</label><select id=\"question\" name=\"question\">{questions}</select></p>\
         <p><label for=\"reponse\">{}</label><textarea id=\"reponse\" name=\"reponse\" rows=\"3\" maxlength=\"500\" required>{}</textarea></p>\
         <p><button type=\"submit\">{}</button></p></form>\
         </div><p><a href=\"/profil/vaccinations\">{}</a></p></section>",
        tr("profile.sections_forms"),
        tr("profile.blood"),
        err("blood_group"),
        fr_en("Groupe et rhésus", "Group and rhesus"),
        tr("profile.save"),
        tr("profile.organ"),
        err("organ_donation"),
        fr_en(
            "Votre position sur le don d'organes",
            "Your position on organ donation"
        ),
        tr("profile.save"),
        tr("profile.people"),
        err("trusted_people"),
        fr_en("Nom et prénom", "Name"),
        kept("trusted_people", "nom"),
        fr_en("Rôle", "Role"),
        fr_en("Personne de confiance", "Trusted person"),
        fr_en("Personne à prévenir", "Person to notify"),
        fr_en("Téléphone (facultatif)", "Phone (optional)"),
        kept("trusted_people", "telephone"),
        tr("profile.save"),
        tr("profile.questionnaire"),
        err("questionnaire"),
        fr_en("Votre réponse", "Your answer"),
        kept("questionnaire", "reponse"),
        tr("profile.save"),
        tr("profile.vaccinations"),
    )
}

/// A question of the health questionnaire (PR-2) in the page's language (`fr`: the domain's).
fn question_text(id: &str, fr: &'static str) -> &'static str {
    let en = match id {
        "current_treatments" => "Are you currently taking any medicines? Which ones?",
        "recent_operations" => "Have you had an operation or a hospital stay in the last five years?",
        "chronic_conditions" => "Do you have a chronic disease?",
        "allergies" => "Do you have any known allergies?",
        "family_history" => "Have serious diseases occurred in your close family?",
        "smoking" => "Do you smoke? Since when, how much?",
        "alcohol" => "How much alcohol do you drink?",
        "physical_activity" => "What physical activity do you do?",
        _ => fr,
    };
    fr_en(fr, en)
}

fn organ_label(v: &str) -> &'static str {
    match v {
        "accepts" => fr_en("J'accepte le don de mes organes", "I agree to donate my organs"),
        "refuses" => fr_en("Je refuse le don de mes organes", "I refuse to donate my organs"),
        _ => fr_en("Je n'ai pas encore décidé", "I have not decided yet"),
    }
}

/// One of the special forms: the entry is built for its section, then checked by the domain
/// through the gate; errors are shown in French with what was typed.
async fn add_special(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let input = match form.get("rubrique") {
        "blood_group" => Some(EntryInput {
            value: Some(form.get("valeur").trim().to_string()),
            ..empty(Section::BloodGroup)
        }),
        "organ_donation" => Some(EntryInput {
            value: Some(form.get("valeur").trim().to_string()),
            ..empty(Section::OrganDonation)
        }),
        "trusted_people" => Some(EntryInput {
            contact: Some(Contact {
                name: form.get("nom").trim().to_string(),
                role: form.get("role").to_string(),
                relationship: None,
                phone: form.opt("telephone").map(str::to_string),
            }),
            ..empty(Section::TrustedPeople)
        }),
        "questionnaire" => Some(EntryInput {
            code: Some(Coding {
                system: CodeSystem::Questionnaire,
                code: form.get("question").to_string(),
                display: None,
            }),
            value: Some(form.get("reponse").trim().to_string()),
            ..empty(Section::Questionnaire)
        }),
        _ => None,
    };
    let result = match input {
        None => Err("Choisissez une rubrique.".to_string()),
        Some(input) => write_entry(&s, &h, input).await,
    };
    match result {
        Ok(()) => Ok(see_other("/profil?ok=entree")),
        Err(m) => {
            let typed = Typed {
                special: form,
                special_error: m,
                ..Typed::default()
            };
            let body = render(&s, &h, &typed).await?;
            Ok(respond(&h, StatusCode::BAD_REQUEST, &body))
        }
    }
}

fn empty(section: Section) -> EntryInput {
    EntryInput {
        section,
        text: String::new(),
        code: None,
        date: None,
        end_date: None,
        value: None,
        contact: None,
        note: None,
    }
}

/// The vaccination record (PR-1) as its own page, with a form to add a vaccine.
async fn vaccination_page(
    s: &AppState,
    h: &Holder,
    f: &Form,
    error: &str,
    info: &str,
) -> Result<String, WebError> {
    let actor = h.actor();
    let entries = s
        .gate
        .list_profile(
            h.space(),
            &actor,
            Some(Section::Vaccinations),
            &Context::default(),
        )
        .await
        .map_err(ApiError::from)?;
    let rows: String = entries
        .iter()
        .map(|e| {
            let x = &e.entry;
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                esc(&x.date.as_deref().map(iso_day).unwrap_or_default()),
                esc(&x.text),
                esc(&x.code.as_ref().map(|c| c.code.clone()).unwrap_or_default()),
                esc(&author_words(&e.author, &e.author_name, Reader::of(&actor))),
            )
        })
        .collect();
    let table = if rows.is_empty() {
        format!("<p class=\"muted\">{}</p>", tr("profile.none"))
    } else {
        format!(
            "<div class=\"table\"><table><caption>{}</caption><thead><tr><th scope=\"col\">Date</th>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th></tr></thead>\
             <tbody>{rows}</tbody></table></div>",
            fr_en("Vaccins reçus", "Vaccines received"),
            fr_en("Vaccin", "Vaccine"),
            fr_en("Code ATC", "ATC code"),
            fr_en("Noté par", "Noted by"),
        )
    };
    Ok(format!(
        "<p><a href=\"/profil\">← {}</a></p><h1>{}</h1>{}{table}\
         <section aria-labelledby=\"ajout-v\"><h2 id=\"ajout-v\">{}</h2>{}\
         <form method=\"post\" action=\"/profil/vaccinations\" class=\"card\">{}\
         <p><label for=\"vaccin\">{}</label><input id=\"vaccin\" name=\"texte\" type=\"text\" maxlength=\"500\" required value=\"{}\"></p>\
         <p><label for=\"atc\">{}</label><input id=\"atc\" name=\"code\" type=\"text\" maxlength=\"10\" autocomplete=\"off\" value=\"{}\"></p>\
         <p><label for=\"date-v\">{}</label><input id=\"date-v\" name=\"date\" type=\"text\" placeholder=\"{}\" value=\"{}\"></p>\
         <p><button type=\"submit\">{}</button></p></form></section>",
        tr("profile.title"),
        tr("profile.vaccinations"),
        notice(info),
        fr_en("Ajouter une vaccination", "Add a vaccination"),
        alert(error),
        csrf_field(&h.csrf),
        fr_en("Vaccin", "Vaccine"),
        esc(f.get("texte")),
        fr_en(
            "Code ATC (facultatif, commence par J07)",
            "ATC code (optional, starts with J07)"
        ),
        esc(f.get("code")),
        fr_en("Date (année, mois ou jour)", "Date (year, month or day)"),
        fr_en("JJ/MM/AAAA, MM/AAAA ou AAAA", "DD/MM/YYYY, MM/YYYY or YYYY"),
        esc(f.get("date")),
        tr("profile.save"),
    ))
}

async fn vaccinations(
    State(s): State<AppState>,
    h: Holder,
    Query(f): Query<Flash>,
) -> Result<Response, WebError> {
    let info = if f.ok.is_some() {
        fr_en("La vaccination a été ajoutée.", "The vaccination was added.")
    } else {
        ""
    };
    let body = vaccination_page(&s, &h, &Form::default(), "", info).await?;
    Ok(respond(&h, StatusCode::OK, &body))
}

async fn add_vaccination(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let result = if form.opt("texte").is_none() {
        Err(fr_en("Saisissez le nom du vaccin.", "Enter the vaccine's name.").to_string())
    } else {
        let input = EntryInput {
            text: form.get("texte").trim().to_string(),
            code: form.opt("code").map(|c| Coding {
                system: CodeSystem::Atc,
                code: c.to_uppercase(),
                display: None,
            }),
            date: form.opt("date").map(record_date),
            ..empty(Section::Vaccinations)
        };
        write_entry(&s, &h, input).await
    };
    match result {
        Ok(()) => Ok(see_other("/profil/vaccinations?ok=1")),
        Err(m) => {
            let body = vaccination_page(&s, &h, &form, &m, "").await?;
            Ok(respond(&h, StatusCode::BAD_REQUEST, &body))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::record_date;

    #[test]
    fn record_dates_as_people_type_them() {
        assert_eq!(record_date("12/05/2019"), "2019-05-12");
        assert_eq!(record_date("1/5/2019"), "2019-05-01");
        assert_eq!(record_date("05/2019"), "2019-05");
        assert_eq!(record_date(" 2019 "), "2019");
        assert_eq!(record_date("2019-05-12"), "2019-05-12");
        assert_eq!(record_date("hier"), "hier");
    }
}
