//! The professionals' pages: demo login by RPPS (demo mode only, `api::pro::demo_session`),
//! finding a patient by INS (`api::pro::find_patient`; the INS is POSTed, never in a URL), and
//! the patient's record as the gate lets this professional see it. Every page about a patient
//! opens with the identity banner ([`patient_header`]); what the gate decided is said as a
//! whole (no access, some categories, an emergency until when), so a refusal never looks like
//! an empty record, without telling what the record holds (AC-8, issue 33).

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carnet_domain::HolderId;
use carnet_domain::access::{CareTeam, Category, Context, PracticeRole};
use carnet_domain::profile::Section;
use carnet_domain::roster::Sex;

use super::i18n::{Reader, fr_en as tr, section_label, t};
use super::profile::entry_label;
use super::{
    Form, Nav, Pro, WebError, alert, check_pre_session, csrf_field, csrf_token, esc, french, notice, page,
    pre_session, profession_label, professional_name, see_other, set_pre_session,
};
use crate::api::auth::set_cookie;
use crate::api::pro::{PRO_SESSION_COOKIE, demo_session, find_patient};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/pro", get(home).post(lookup))
        .route("/pro/traits", get(home).post(lookup_traits))
        .route("/pro/connexion", post(login))
        .route("/pro/deconnexion", post(logout))
        .route("/pro/patients", get(authorising))
        .route("/pro/patients/{holder}", get(patient))
        // GET too: the language switch of the page shown after the POST reloads this path.
        .route("/pro/patients/{holder}/urgence", get(patient).post(emergency))
        .route(
            "/pro/patients/{holder}/equipe-de-soins",
            get(patient).post(care_team),
        )
        .route("/pro/patients/{holder}/consentement", get(patient).post(consent))
}

fn login_body(s: &AppState, csrf: &str, rpps: &str, message: &str) -> String {
    let how = if s.settings.demo {
        format!(
            "<p>Instance de démonstration : connectez-vous avec le numéro RPPS d'un professionnel de l'annuaire de démonstration \
             (10000000001 Dr Claire LEROY, 10000000002 Dr Julien PETIT, 10000000003 Sophie MOREAU).</p>\
             <form method=\"post\" action=\"/pro/connexion\" class=\"card\">{}{}\
             <p><label for=\"rpps\">Numéro RPPS</label><input id=\"rpps\" name=\"rpps\" type=\"text\" inputmode=\"numeric\" \
             maxlength=\"11\" autocomplete=\"username\" required value=\"{}\"></p>\
             <p><button type=\"submit\">Se connecter</button></p></form>",
            alert(message),
            csrf_field(csrf),
            esc(rpps)
        )
    } else {
        let links = super::oidc_links(s, crate::oidc::Audience::Professionals);
        if links.is_empty() {
            "<p>Aucun moyen de connexion des professionnels n'est configuré sur ce service.</p>".to_string()
        } else {
            format!("<p>Les professionnels se connectent avec leur carte CPS ou e-CPS.</p>{links}")
        }
    };
    format!(
        "<h1>Espace professionnel</h1>{how}<p><a href=\"/connexion\">Vous êtes patient ? Connexion à votre espace</a></p>"
    )
}

/// What the professional typed in the lookup forms, kept when a lookup fails.
#[derive(Clone, Copy, Default)]
struct Typed<'a> {
    ins: &'a str,
    message: &'a str,
    name: &'a str,
    given: &'a str,
    birth: &'a str,
    sex: &'a str,
    traits_message: &'a str,
}

fn search_body(p: &Pro, t: &Typed<'_>, notices: &str) -> String {
    let sex_option = |value: &str, label: &str| {
        format!(
            "<option value=\"{value}\"{}>{label}</option>",
            if t.sex == value { " selected" } else { "" }
        )
    };
    format!(
        "{notices}<h1>{}</h1><p>{} {} ({}).</p>\
         <form method=\"post\" action=\"/pro\" class=\"card\" role=\"search\">{}{}\
         <p><label for=\"ins\">{}</label>\
         <input id=\"ins\" name=\"ins\" type=\"text\" inputmode=\"numeric\" maxlength=\"21\" autocomplete=\"off\" required value=\"{}\"></p>\
         <p><button type=\"submit\">{}</button></p></form>\
         <details{}><summary>{}</summary>\
         <form method=\"post\" action=\"/pro/traits\" class=\"card\" role=\"search\">{}{}\
         <p class=\"hint\">{}</p>\
         <p><label for=\"nom\">{}</label>\
         <input id=\"nom\" name=\"nom\" type=\"text\" autocomplete=\"off\" required value=\"{}\"></p>\
         <p><label for=\"prenom\">{}</label>\
         <input id=\"prenom\" name=\"prenom\" type=\"text\" autocomplete=\"off\" required value=\"{}\"></p>\
         <p><label for=\"naissance\">{}</label>\
         <input id=\"naissance\" name=\"naissance\" {} autocomplete=\"off\" required value=\"{}\"></p>\
         <p><label for=\"sexe\">{}</label><select id=\"sexe\" name=\"sexe\">{}{}{}</select></p>\
         <p><button type=\"submit\">{}</button></p></form></details>\
         <p class=\"hint\">{}</p>",
        tr("Rechercher un patient", "Find a patient"),
        tr("Connecté·e :", "Logged in:"),
        esc(&professional_name(&p.professional)),
        esc(&profession_label(&p.professional.profession)),
        alert(t.message),
        csrf_field(&p.csrf),
        tr(
            "INS du patient (15 chiffres, lu sur la carte Vitale ou par le téléservice INSi)",
            "The patient's INS (15 digits, read from the Vitale card or through the INSi service)"
        ),
        esc(t.ins),
        tr("Ouvrir le dossier", "Open the record"),
        if t.traits_message.is_empty() { "" } else { " open" },
        tr(
            "Sans l'INS : rechercher par les traits d'identité",
            "Without the INS: search by identity traits"
        ),
        alert(t.traits_message),
        csrf_field(&p.csrf),
        tr(
            "Tels qu'ils figurent sur la carte Vitale ou une pièce d'identité ; les quatre sont nécessaires.",
            "As they appear on the Vitale card or an identity document; all four are needed."
        ),
        tr("Nom de naissance", "Birth name"),
        esc(t.name),
        tr("Premier prénom", "First given name"),
        esc(t.given),
        tr("Date de naissance (JJ/MM/AAAA)", "Date of birth (DD/MM/YYYY)"),
        super::profile::day_field(),
        esc(t.birth),
        tr("Sexe", "Sex"),
        sex_option("female", tr("féminin", "female")),
        sex_option("male", tr("masculin", "male")),
        sex_option("unknown", tr("indéterminé", "unknown")),
        tr("Rechercher", "Search"),
        tr(
            "Chaque consultation est enregistrée et le patient en est informé.",
            "Every consultation is recorded and the patient is told."
        ),
    )
}

/// The search page again, with what was typed and what went wrong.
fn search_again(p: &Pro, status: StatusCode, typed: &Typed<'_>) -> Response {
    let mut r = page(
        "Espace professionnel",
        &Nav::Pro { p },
        &search_body(p, typed, ""),
    )
    .into_response();
    *r.status_mut() = status;
    r
}

/// Lookup by identity traits (issue 33), when the INS is not at hand: found, several (the
/// INS is needed) or none — each said in French, what was typed kept.
async fn lookup_traits(State(s): State<AppState>, p: Pro, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    super::check_csrf(&s, &p.token, &form).await?;
    let typed = Typed {
        name: form.get("nom"),
        given: form.get("prenom"),
        birth: form.get("naissance"),
        sex: form.get("sexe"),
        ..Typed::default()
    };
    let again = |status: StatusCode, message: &str| {
        search_again(
            &p,
            status,
            &Typed {
                traits_message: message,
                ..typed
            },
        )
    };
    let Some(day) = super::password::birth_date(typed.birth) else {
        return Ok(again(
            StatusCode::BAD_REQUEST,
            "Saisissez la date de naissance sous la forme JJ/MM/AAAA, par exemple 12/03/1984.",
        ));
    };
    let traits = carnet_store::identity::Traits {
        birth_name: typed.name.to_string(),
        first_given_name: typed.given.to_string(),
        birth_date: format!("{:04}-{:02}-{:02}", day.year(), u8::from(day.month()), day.day()),
        sex: typed.sex.to_string(),
    };
    match crate::api::pro::find_patient_by_traits(&s, &p.professional, &traits).await {
        Ok(holder) => Ok(see_other(&format!("/pro/patients/{holder}"))),
        Err(e) => {
            let message = match e.status {
                StatusCode::NOT_FOUND => {
                    "Aucun dossier ouvert ne correspond à ces traits. Vérifiez le nom de naissance et le premier \
                     prénom tels qu'ils figurent sur la carte Vitale, ou utilisez l'INS."
                        .to_string()
                }
                StatusCode::CONFLICT => {
                    "Plusieurs personnes ont ces traits d'identité : utilisez l'INS pour ouvrir le bon dossier."
                        .to_string()
                }
                StatusCode::BAD_REQUEST => "Les quatre traits sont nécessaires : nom de naissance, premier prénom, \
                                            date de naissance et sexe."
                    .to_string(),
                _ => french(&e),
            };
            Ok(again(e.status, &message))
        }
    }
}

async fn home(
    State(s): State<AppState>,
    headers: HeaderMap,
    pro: Result<Pro, WebError>,
) -> Result<Response, WebError> {
    match pro {
        Ok(p) => {
            let notices = format!("{}{}", notices(&s, &p).await?, recent(&s, &p).await?);
            Ok(page(
                "Espace professionnel",
                &Nav::Pro { p: &p },
                &search_body(&p, &Typed::default(), &notices),
            )
            .into_response())
        }
        Err(e) if e.redirect.is_some() => {
            let (secret, fresh) = pre_session(&headers)?;
            let csrf = csrf_token(&s, &secret).await?;
            let mut r = page(
                "Espace professionnel",
                &Nav::Anonymous,
                &login_body(&s, &csrf, "", ""),
            )
            .into_response();
            set_pre_session(&mut r, fresh)?;
            Ok(r)
        }
        Err(e) => Err(e),
    }
}

/// The professional's notices (S-7, AC-5: an emergency access to a patient they are the
/// médecin traitant of), newest first, each with the way to the record, whose banner then
/// says whose it is (the list itself reads no record: nothing is traced by opening it).
/// "My patients" (issue 33): those looked up today, one click away.
/// Patients as links to their record: "MARTIN Camille — né(e) le 12/03/1984".
fn patient_links(patients: &[(HolderId, carnet_store::identity::Identity)]) -> String {
    let w = super::i18n::fr_en;
    patients
        .iter()
        .map(|(holder, who)| {
            let given = who.given_names.first().cloned().unwrap_or_default();
            let family = who.used_name.clone().unwrap_or_else(|| who.birth_name.clone());
            let born = match who.sex {
                carnet_domain::roster::Sex::Female => w("née le", "born on"),
                carnet_domain::roster::Sex::Male => w("né le", "born on"),
                _ => w("né(e) le", "born on"),
            };
            format!(
                "<li><a href=\"/pro/patients/{holder}\"><strong>{}</strong> {}</a> — {born} {}</li>",
                esc(&family),
                esc(&given),
                who.birth_date
                    .format(time::macros::format_description!("[day]/[month]/[year]"))
                    .unwrap_or_default(),
            )
        })
        .collect()
}

async fn recent(s: &AppState, p: &Pro) -> Result<String, WebError> {
    let patients = s
        .gate
        .recent_patients(&p.professional.actor(), 20)
        .await
        .map_err(ApiError::from)?;
    let w = super::i18n::fr_en;
    let others = format!(
        "<p><a href=\"/pro/patients\">{}</a></p>",
        w(
            "Les patients qui vous ont autorisé",
            "The patients who authorised you"
        )
    );
    if patients.is_empty() {
        return Ok(others);
    }
    Ok(format!(
        "<section class=\"card\" aria-labelledby=\"recents\"><h2 id=\"recents\">{}</h2><p class=\"hint\">{}</p><ul>{}</ul>{others}</section>",
        w("Vos patients du jour", "Today's patients"),
        w(
            "Les patients dont vous avez saisi l'INS ces dernières 24 heures.",
            "The patients whose INS you entered in the last 24 hours.",
        ),
        patient_links(&patients),
    ))
}

/// Issue 33: the patients whose directory opens their record to this professional, named
/// through the traced identity read (each name is a line in that patient's history).
async fn authorising(State(s): State<AppState>, p: Pro) -> Result<Response, WebError> {
    let patients = s
        .gate
        .authorising_patients(&p.professional.actor(), 50)
        .await
        .map_err(ApiError::from)?;
    let w = super::i18n::fr_en;
    let list = if patients.is_empty() {
        format!(
            "<p>{}</p>",
            w(
                "Aucun patient ne vous a désigné comme médecin traitant ni autorisé dans son espace pour l'instant.",
                "No patient has named you their médecin traitant or authorised you in their space yet.",
            )
        )
    } else {
        format!("<ul>{}</ul>", patient_links(&patients))
    };
    let body = format!(
        "<p><a href=\"/pro\">{}</a></p><h1>{}</h1><p>{}</p>{list}",
        w("← Rechercher un patient", "← Find a patient"),
        w(
            "Les patients qui vous ont autorisé",
            "The patients who authorised you"
        ),
        w(
            "Les patients dont vous êtes le médecin traitant, ou qui vous ont autorisé dans leur espace (50 au plus, \
             les plus récents d'abord). Ouvrir cette liste est enregistré dans l'historique de chacun d'eux, comme \
             la vérification de son identité.",
            "The patients whose médecin traitant you are, or who authorised you in their space (at most 50, newest \
             first). Opening this list is recorded in each one's history, as a check of their identity.",
        ),
    );
    Ok(page("Les patients qui vous ont autorisé", &Nav::Pro { p: &p }, &body).into_response())
}

async fn notices(s: &AppState, p: &Pro) -> Result<String, WebError> {
    let alerts = s
        .gate
        .alerts(&p.professional.actor(), 20)
        .await
        .map_err(ApiError::from)?;
    if alerts.is_empty() {
        return Ok(String::new());
    }
    let w = super::i18n::fr_en;
    let mut items = String::new();
    for a in &alerts {
        let n = &a.notice;
        let by = match &a.by {
            Some(rpps) => match s.store.professional(rpps).await.map_err(ApiError::from)? {
                Some(pro) => format!(
                    "{} ({})",
                    super::professional_name(&pro),
                    super::profession_label(&pro.profession)
                ),
                None => format!("RPPS {rpps}"),
            },
            None => w("Un professionnel", "A professional").to_string(),
        };
        let what = match (n.kind.as_str(), &a.patient) {
            ("emergency_access", Some(patient)) => format!(
                "{by} {} {patient}, {} {}",
                w(
                    "a ouvert en urgence le dossier de",
                    "opened in an emergency the record of"
                ),
                w(
                    "dont vous êtes le médecin traitant,",
                    "whose regular doctor you are,"
                ),
                super::when(n.at),
            ),
            ("emergency_access", None) => format!(
                "{} {}",
                w(
                    "Un professionnel a ouvert en urgence le dossier d'un patient dont vous étiez le médecin traitant",
                    "A professional opened in an emergency the record of a patient you were the regular doctor of",
                ),
                super::when(n.at),
            ),
            (_, Some(patient)) => format!(
                "{} {patient} {}",
                w(
                    "Nouvelle information sur le dossier de",
                    "News about the record of"
                ),
                super::when(n.at)
            ),
            (_, None) => format!(
                "{} {}",
                w(
                    "Nouvelle information sur le dossier d'un patient",
                    "News about a patient's record"
                ),
                super::when(n.at)
            ),
        };
        let reason = match &a.reason {
            Some(r) => format!("<p>{} « {} »</p>", w("Motif déclaré :", "Stated reason:"), esc(r)),
            None => String::new(),
        };
        let open = if a.patient.is_some() {
            format!(
                "<p><a href=\"/pro/patients/{}\">{}</a></p>",
                n.holder,
                w("Ouvrir le dossier de ce patient", "Open this patient's record"),
            )
        } else {
            String::new()
        };
        items.push_str(&format!(
            "<li class=\"urgent\"><p>{}.</p>{reason}{open}</li>",
            esc(&what)
        ));
    }
    Ok(format!(
        "<section class=\"card\" aria-labelledby=\"alertes\"><h2 id=\"alertes\">{}</h2><ul class=\"events\">{items}</ul></section>",
        w("Vos alertes", "Your alerts")
    ))
}

async fn login(State(s): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    let secret = check_pre_session(&s, &headers, &form).await?;
    let rpps = form.get("rpps").trim().to_string();
    match demo_session(&s, &rpps).await {
        Ok((token, _)) => {
            let mut r = see_other("/pro");
            set_cookie(
                &mut r,
                PRO_SESSION_COOKIE,
                &token,
                "/",
                carnet_store::auth::SESSION_ABSOLUTE_SECONDS,
            )?;
            Ok(r)
        }
        Err(e) => {
            let message = if e.status == StatusCode::UNAUTHORIZED {
                "Aucun professionnel de l'annuaire n'a ce numéro RPPS : vérifiez-le.".to_string()
            } else {
                french(&e)
            };
            let csrf = csrf_token(&s, &secret).await?;
            let mut r = page(
                "Espace professionnel",
                &Nav::Anonymous,
                &login_body(&s, &csrf, &rpps, &message),
            )
            .into_response();
            *r.status_mut() = e.status;
            Ok(r)
        }
    }
}

async fn logout(State(s): State<AppState>, p: Pro, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    super::check_csrf(&s, &p.token, &form).await?;
    s.store
        .revoke_pro_session(&p.token)
        .await
        .map_err(ApiError::from)?;
    let mut r = see_other("/pro");
    set_cookie(&mut r, PRO_SESSION_COOKIE, "", "/", 0)?;
    Ok(r)
}

async fn lookup(State(s): State<AppState>, p: Pro, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    super::check_csrf(&s, &p.token, &form).await?;
    let ins = form.get("ins").to_string();
    let compact: String = ins.chars().filter(|c| !c.is_whitespace()).collect();
    match find_patient(&s, &p.professional, &compact).await {
        Ok(holder) => Ok(see_other(&format!("/pro/patients/{holder}"))),
        Err(e) => {
            let message = match e.status {
                StatusCode::NOT_FOUND => "Aucun dossier ouvert ne correspond à cet INS.".to_string(),
                StatusCode::BAD_REQUEST => {
                    "Cet INS n'est pas valide : il compte 15 chiffres, clé comprise.".to_string()
                }
                _ => french(&e),
            };
            Ok(search_again(
                &p,
                e.status,
                &Typed {
                    ins: &ins,
                    message: &message,
                    ..Typed::default()
                },
            ))
        }
    }
}

async fn patient(
    State(s): State<AppState>,
    p: Pro,
    Path(holder): Path<String>,
    Query(q): Query<std::collections::HashMap<String, String>>,
) -> Result<Response, WebError> {
    let holder = parse_holder(&holder)?;
    let who = patient_header(&s, &p, holder).await?;
    let done = if q.contains_key("depose") {
        super::i18n::fr_en(
            "Le document a été déposé dans le dossier.",
            "The document was filed in the record.",
        )
    } else if q.contains_key("supprime") {
        super::i18n::fr_en(
            "Le document a été supprimé du dossier.",
            "The document was deleted from the record.",
        )
    } else {
        ""
    };
    let search = super::pro_record::Search::from_query(&q);
    let said = Said {
        banner: done,
        ..Said::default()
    };
    let body = record(&s, &p, holder, &who, &search, &said).await?;
    Ok(super::page_named(&who.title(), &Nav::Pro { p: &p }, &body).into_response())
}

fn parse_holder(holder: &str) -> Result<HolderId, WebError> {
    holder.parse().map_err(|_| WebError::from(ApiError::not_found()))
}

/// Whose record a professional page is about (issue 33): the banner every such page opens
/// with, and the name its title carries.
pub(super) struct PatientHeader {
    pub banner: String,
    pub name: String,
}

impl PatientHeader {
    /// "Dossier de Camille MARTIN", the page's title.
    pub fn title(&self) -> String {
        format!("{} {}", super::i18n::fr_en("Dossier de", "Record of"), self.name)
    }
}

/// The identity banner (ID-1, issue 33): birth and used names, given names, sex, birth date
/// and age, birth place, INS and its status, as the gate lets this professional see them
/// (`Gate::identify`: after presenting the INS, or with access). A professional who may not
/// gets the page of a missing record (AC-8).
pub(super) async fn patient_header(
    s: &AppState,
    p: &Pro,
    holder: HolderId,
) -> Result<PatientHeader, WebError> {
    let who = match s.gate.identify(holder, &p.professional.actor()).await {
        Ok(who) => who,
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let en = super::i18n::locale() == super::i18n::Locale::En;
    let w = super::i18n::fr_en;
    let family = who.used_name.clone().unwrap_or_else(|| who.birth_name.clone());
    let first = who.given_names.first().cloned().unwrap_or_default();
    let name = format!("{first} {family}").trim().to_string();
    let sex = match who.sex {
        Sex::Female => w("Féminin", "Female"),
        Sex::Male => w("Masculin", "Male"),
        Sex::Unknown => w("Indéterminé", "Unknown"),
    };
    let born = match who.sex {
        Sex::Female => w("Née le", "Born on"),
        Sex::Male => w("Né le", "Born on"),
        Sex::Unknown => w("Date de naissance", "Born on"),
    };
    let today = super::paris(s.store.now()).map(|d| d.date());
    let age = today.map(|t| carnet_domain::lifecycle::age_on(who.birth_date, t));
    let age = match age {
        Some(a) if en => format!(" ({a} years)"),
        Some(a) => format!(" ({a}\u{a0}ans)"),
        None => String::new(),
    };
    let birth_date = format!(
        "{:02}/{:02}/{}{age}",
        who.birth_date.day(),
        u8::from(who.birth_date.month()),
        who.birth_date.year()
    );
    let mut traits = vec![(w("Nom de naissance", "Birth name"), who.birth_name.clone())];
    if let Some(used) = who.used_name.as_ref().filter(|u| **u != who.birth_name) {
        traits.push((w("Nom utilisé", "Used name"), used.clone()));
    }
    traits.push((w("Prénoms", "Given names"), who.given_names.join(" ")));
    traits.push((w("Sexe", "Sex"), sex.to_string()));
    traits.push((born, birth_date));
    if let Some(place) = &who.birth_place {
        traits.push((w("Lieu de naissance", "Birth place"), place.clone()));
    }
    let traits: String = traits
        .iter()
        .map(|(k, v)| format!("<div><dt>{k}</dt><dd>{}</dd></div>", esc(v)))
        .collect();
    let banner = format!(
        "<section class=\"patient\" aria-label=\"{}\"><p class=\"patient-name\"><strong>{}</strong> {}</p>\
         <dl class=\"traits\">{traits}<div><dt>INS</dt><dd><span class=\"ins\">{}</span> \
         <span class=\"status\">{}</span></dd></div></dl></section>",
        w("Identité du patient", "Patient's identity"),
        esc(&family),
        esc(&who.given_names.join(" ")),
        esc(&ins_words(who.ins.as_str())),
        w(
            "INS qualifiée (identité de l'Assurance Maladie)",
            "qualified INS (identity from the health insurer)"
        ),
    );
    Ok(PatientHeader { banner, name })
}

/// An INS as it is read aloud and on the card: "2 84 03 75 123 456 78".
fn ins_words(ins: &str) -> String {
    let groups = [1, 2, 2, 2, 3, 3, 2];
    let mut out = String::new();
    let mut rest = ins;
    for g in groups {
        if rest.len() < g {
            break;
        }
        let (head, tail) = rest.split_at(g);
        if !out.is_empty() {
            out.push('\u{a0}');
        }
        out.push_str(head);
        rest = tail;
    }
    out.push_str(rest);
    out
}

/// The categories a professional may read, in words ("ordonnances, plans de soins").
fn categories_words(cs: &[Category]) -> String {
    cs.iter()
        .map(|c| super::pro_record::category_name(*c).to_lowercase())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The patient's record as the gate lets this professional see it: first what the gate
/// decided as a whole (issue 33: a refusal never looks like an empty record, and says how
/// to get more without telling what exists, AC-8), then the medical profile beside the
/// documents, and the emergency form only to whom it could open the record (AC-5).
async fn record(
    s: &AppState,
    p: &Pro,
    holder: HolderId,
    who: &PatientHeader,
    search: &super::pro_record::Search,
    said: &Said<'_>,
) -> Result<String, WebError> {
    let banner = said.banner;
    let error = said.error_of("urgence");
    let reason = said.typed("motif");
    let actor = p.professional.actor();
    let Some(standing) = s.gate.standing(holder, &actor).await.map_err(ApiError::from)? else {
        return Err(ApiError::not_found().into());
    };
    let st = &standing.standing;
    let w = super::i18n::fr_en;
    let mut status = String::new();
    if st.emergency {
        let until = standing.emergency_until.map(until_words).unwrap_or_default();
        status.push_str(&format!(
            "<div class=\"alert\" role=\"status\"><p><strong>{} {until}.</strong> {}</p></div>",
            w("Accès en urgence ouvert jusqu'au", "Emergency access open until"),
            w(
                "Chaque consultation est tracée comme urgence ; le patient et son médecin traitant en ont été informés.",
                "Every access is traced as an emergency; the patient and their regular doctor were told."
            )
        ));
    }
    if st.everything() {
        status.push_str(&format!(
            "<p class=\"hint\">{}</p>",
            if st.sees_masked {
                w("Vous avez accès à l'ensemble du dossier, documents masqués compris (médecin traitant).",
                  "You may read the whole record, masked documents included (regular doctor).")
            } else {
                w("Vous avez accès à l'ensemble du dossier, hors documents que le patient a choisi de masquer aux professionnels.",
                  "You may read the whole record, except documents the patient chose to mask from professionals.")
            }
        ));
    } else if st.readable.is_empty() {
        let below = if st.may_declare_emergency {
            w(
                " En cas d'urgence, voyez plus bas.",
                " In an emergency, see below.",
            )
        } else {
            ""
        };
        status.push_str(&format!(
            "<div class=\"card refusal\"><h2>{}</h2><p>{}</p><p>{}{below}</p></div>",
            w("Ce dossier ne vous est pas ouvert", "This record is not open to you"),
            w(
                "Rien n'est affiché ici parce que vous n'avez pas d'autorisation, pas parce que le dossier serait vide.",
                "Nothing is shown because you have no authorisation, not because the record would be empty."
            ),
            w(
                "Pour y accéder : si vous faites partie de son équipe de soins, déclarez votre prise en charge ci-dessous ; \
                 sinon, le patient peut vous autoriser depuis son espace Carnet (rubrique « Autorisations »), \
                 ou un professionnel qui le suit peut enregistrer son consentement pour vous.",
                "To read it: if you are in their care team, declare your care relationship below; otherwise the \
                 patient may authorise you from their Carnet space (\u{201c}Authorisations\u{201d}), or a professional \
                 who follows them may record their consent for you."
            )
        ));
    } else {
        status.push_str(&format!(
            "<div class=\"card refusal\"><p><strong>{}</strong> {}.</p><p>{}</p></div>",
            w("Accès limité :", "Limited access:"),
            esc(&format!(
                "{} {}",
                w("vous pouvez lire", "you may read"),
                categories_words(&st.readable)
            )),
            w(
                "Les autres catégories ne vous sont pas ouvertes (autorisation du patient ou habilitations de votre profession) : \
                 ce qui ne s'affiche pas ici peut exister.",
                "The other categories are not open to you (the patient's authorisation or your profession's habilitations): \
                 what is not shown here may exist."
            )
        ));
    }
    let mut content = String::new();
    if !st.readable.is_empty() {
        let docs =
            super::pro_record::documents_card(s, &actor, &p.professional.rpps, holder, &st.readable, search)
                .await?;
        let entries = match s
            .gate
            .list_profile(holder, &actor, None, &Context::default())
            .await
        {
            Ok(entries) => entries,
            Err(carnet_store::StoreError::NotFound) => Vec::new(),
            Err(e) => return Err(ApiError::from(e).into()),
        };
        let reader = Reader::of(&actor);
        let profile = if entries.is_empty() && st.everything() {
            format!(
                "<p>{}</p>",
                w("Le profil médical est vide.", "The medical profile is empty.")
            )
        } else if entries.is_empty() {
            format!("<p>{}</p>", t("pro.profile.none"))
        } else {
            let mut out = String::new();
            for section in Section::ALL {
                let items: String = entries
                    .iter()
                    .filter(|e| e.entry.section == section)
                    .map(|e| format!("<li>{}</li>", esc(&entry_label(e, reader))))
                    .collect();
                if !items.is_empty() {
                    out.push_str(&format!(
                        "<h3>{}</h3><ul>{items}</ul>",
                        esc(section_label(section))
                    ));
                }
            }
            out
        };
        content = format!(
            "<div class=\"grid\"><section class=\"card\" aria-labelledby=\"pro-docs\"><h2 id=\"pro-docs\">{}</h2><p>{}</p>{}</section>\
             <section class=\"card\" aria-labelledby=\"pro-profile\"><h2 id=\"pro-profile\">{}</h2>{profile}</section></div>",
            t("nav.documents"),
            t("pro.record.intro"),
            docs,
            t("nav.profile"),
        );
    }
    let w_add = w("Ajouter un document au dossier", "Add a document to the record");
    let w_msg = w("Messagerie avec ce patient", "Messages with this patient");
    let emergency = if st.may_declare_emergency {
        format!(
            "<section aria-labelledby=\"urgence\"><h2 id=\"urgence\">{}</h2><p>{}</p>\
             <form method=\"post\" action=\"/pro/patients/{holder}/urgence\" class=\"card\">{}{}\
             <p><label for=\"motif\">{}</label><textarea id=\"motif\" name=\"motif\" rows=\"3\" maxlength=\"500\" required>{}</textarea></p>\
             <p><button type=\"submit\">{}</button></p></form></section>",
            t("pro.emergency.title"),
            t("pro.emergency.intro"),
            alert(error),
            csrf_field(&p.csrf),
            t("pro.emergency.reason"),
            esc(reason),
            t("pro.emergency.submit"),
        )
    } else {
        String::new()
    };
    let care = care_forms(p, holder, st.readable.is_empty() && !st.emergency, said);
    Ok(format!(
        "<p><a href=\"/pro\">{}</a></p>{}<h1>{}</h1>{}{status}{content}\
         <p><a href=\"/pro/patients/{holder}/documents/ajout\">{w_add}</a> · \
         <a href=\"/pro/patients/{holder}/messages\">{w_msg}</a></p>{care}{emergency}",
        t("pro.back"),
        who.banner,
        esc(&who.title()),
        notice(banner),
    ))
}

/// AC-1b's two forms: declaring the care relationship (to a care professional the record is
/// not open to), and recording the patient's consent for a colleague (to whoever sees the
/// page: they know the patient).
fn care_forms(p: &Pro, holder: HolderId, closed: bool, said: &Said<'_>) -> String {
    let w = super::i18n::fr_en;
    let csrf = csrf_field(&p.csrf);
    let declare = match p.professional.role {
        PracticeRole::Care if closed => {
            let typed_team = said.typed("equipe");
            let options: String = [
                CareTeam::Practice,
                CareTeam::Establishment,
                CareTeam::Coordination,
                CareTeam::MedicoSocial,
            ]
            .iter()
            .map(|t| {
                let v = serde_json::to_value(t)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default();
                let selected = if v == typed_team { " selected" } else { "" };
                format!(
                    "<option value=\"{v}\"{selected}>{}</option>",
                    esc(super::access::care_team_label(*t))
                )
            })
            .collect();
            format!(
                "<section aria-labelledby=\"equipe\"><h2 id=\"equipe\">{}</h2><p>{}</p>\
                 <form method=\"post\" action=\"/pro/patients/{holder}/equipe-de-soins\" class=\"card\">{}{csrf}\
                 <p><label for=\"equipe-type\">{}</label><select id=\"equipe-type\" name=\"equipe\">{options}</select></p>\
                 <p><label for=\"episode\">{}</label><input id=\"episode\" name=\"episode\" type=\"text\" maxlength=\"200\" required value=\"{}\" aria-describedby=\"episode-aide\"></p>\
                 <p id=\"episode-aide\" class=\"hint\">{}</p>\
                 <p><input id=\"informe\" name=\"informe\" type=\"checkbox\" value=\"1\" required> <label for=\"informe\">{}</label></p>\
                 <p><button type=\"submit\">{}</button></p></form></section>",
                w("Déclarer une prise en charge", "Declare a care relationship"),
                w(
                    "Les membres de l'équipe de soins sont présumés autorisés si le patient, informé, ne s'y est pas opposé. \
                     L'accès dure un an, dans les limites des habilitations de votre profession ; il est tracé et le patient en est prévenu.",
                    "Members of the care team are presumed authorised if the patient, once told, did not object. \
                     The access lasts a year, within your profession's habilitations; it is traced and the patient is told."
                ),
                alert(said.error_of("equipe")),
                w("Équipe de soins", "Care team"),
                w("Pour quelle prise en charge", "For which episode of care"),
                esc(said.typed("episode")),
                w(
                    "Par exemple : suivi de grossesse, hospitalisation en cardiologie, soins à domicile.",
                    "For instance: pregnancy follow-up, stay in cardiology, home care."
                ),
                w(
                    "J'ai informé le patient de cet accès à son dossier.",
                    "I told the patient of this access to their record."
                ),
                w("Déclarer la prise en charge", "Declare the care relationship"),
            )
        }
        PracticeRole::Occupational if closed => format!(
            "<p class=\"hint\">{}</p>",
            w(
                "Médecin du travail ou de sapeurs-pompiers : le dossier ne vous est ouvert qu'avec le consentement exprès du patient, qu'il donne depuis son espace Carnet.",
                "Occupational or fire-brigade doctor: the record opens to you only with the patient's express consent, given from their Carnet space."
            )
        ),
        _ => String::new(),
    };
    let error = said.error_of("consentement");
    let open = if error.is_empty() { "" } else { " open" };
    let forme = said.typed("forme");
    let consent = format!(
        "<details class=\"card\"{open}><summary>{}</summary><p>{}</p>\
         <form method=\"post\" action=\"/pro/patients/{holder}/consentement\">{}{csrf}\
         <p><label for=\"consent-rpps\">{}</label><input id=\"consent-rpps\" name=\"rpps\" type=\"text\" inputmode=\"numeric\" maxlength=\"11\" required value=\"{}\"></p>\
         <fieldset><legend>{}</legend>\
         <p><input id=\"forme-oral\" name=\"forme\" type=\"radio\" value=\"oral\"{}> <label for=\"forme-oral\">{}</label></p>\
         <p><input id=\"forme-ecrit\" name=\"forme\" type=\"radio\" value=\"written\"{}> <label for=\"forme-ecrit\">{}</label></p></fieldset>\
         <p><input id=\"consenti\" name=\"consenti\" type=\"checkbox\" value=\"1\" required> <label for=\"consenti\">{}</label></p>\
         <p><button type=\"submit\">{}</button></p></form></details>",
        w(
            "Enregistrer le consentement du patient pour un professionnel",
            "Record the patient's consent for a professional"
        ),
        w(
            "Le patient accepte qu'un professionnel qui ne fait pas partie de son équipe de soins consulte son dossier (par exemple un spécialiste à qui vous l'adressez). \
             La forme et la date de son consentement sont conservées avec l'autorisation ; il peut la retirer à tout moment.",
            "The patient agrees that a professional outside their care team reads their record (for instance a specialist you refer them to). \
             The form and date of the consent are kept with the authorisation; they may withdraw it at any time."
        ),
        alert(error),
        w("Numéro RPPS du professionnel", "The professional's RPPS number"),
        esc(said.typed("rpps")),
        w("Le patient a consenti", "The patient consented"),
        if forme != "written" { " checked" } else { "" },
        w("oralement", "orally"),
        if forme == "written" { " checked" } else { "" },
        w("par écrit", "in writing"),
        w(
            "Le patient m'a donné son consentement pour cet accès.",
            "The patient gave me their consent to this access."
        ),
        w("Enregistrer le consentement", "Record the consent"),
    );
    format!("{declare}{consent}")
}

/// AC-5, bris de glace: the same call as `api::pro::emergency` (`gate.declare_emergency`).
async fn emergency(
    State(s): State<AppState>,
    p: Pro,
    Path(holder): Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    super::check_csrf(&s, &p.token, &form).await?;
    let holder = parse_holder(&holder)?;
    let reason = form.get("motif").trim().to_string();
    let outcome: Result<String, String> = if reason.is_empty() {
        Err(t("pro.emergency.required").to_string())
    } else if reason.chars().count() > 500 {
        Err(t("pro.emergency.long").to_string())
    } else {
        let (d, until) = s
            .gate
            .declare_emergency(holder, &p.professional.actor(), &reason)
            .await
            .map_err(ApiError::from)?;
        s.wake.notify_one();
        match until {
            // The record then says until when (its status), once.
            Some(_) => Ok(String::new()),
            None if d.allowed => Ok(t("pro.emergency.already").to_string()),
            None => return Err(ApiError::not_found().into()),
        }
    };
    answer(&s, &p, holder, "urgence", &form, outcome, StatusCode::BAD_REQUEST).await
}

/// The record again after one of its forms: its banner on success, or the error beside the
/// form with what was typed.
async fn answer(
    s: &AppState,
    p: &Pro,
    holder: HolderId,
    form_name: &str,
    form: &Form,
    outcome: Result<String, String>,
    error_status: StatusCode,
) -> Result<Response, WebError> {
    let who = patient_header(s, p, holder).await?;
    let (status, said) = match &outcome {
        Ok(banner) => (
            StatusCode::OK,
            Said {
                banner,
                ..Said::default()
            },
        ),
        Err(e) => (
            error_status,
            Said {
                form: form_name,
                error: e,
                typed: Some(form),
                ..Said::default()
            },
        ),
    };
    let body = record(s, p, holder, &who, &Default::default(), &said).await?;
    let mut r = super::page_named(&who.title(), &Nav::Pro { p }, &body).into_response();
    *r.status_mut() = status;
    Ok(r)
}

/// What the record page says after one of its forms (issue 33, AC-1b, AC-5).
#[derive(Default)]
struct Said<'a> {
    /// A confirmation at the top.
    banner: &'a str,
    /// The form the error is about (`urgence`, `equipe`, `consentement`).
    form: &'a str,
    error: &'a str,
    /// What was typed, kept in that form.
    typed: Option<&'a Form>,
}

impl Said<'_> {
    fn error_of(&self, form: &str) -> &str {
        if self.form == form { self.error } else { "" }
    }
    fn typed(&self, field: &str) -> &str {
        self.typed.map(|f| f.get(field)).unwrap_or_default()
    }
}

/// One of AC-1b's two forms: its name, the box that must be ticked, and its words.
struct GrantForm {
    name: &'static str,
    tick: &'static str,
    unticked: (&'static str, &'static str),
    granted: (&'static str, &'static str),
    already: (&'static str, &'static str),
}

/// AC-1b: the professional declares the care relationship (which team, for which episode).
const CARE_TEAM: GrantForm = GrantForm {
    name: "equipe",
    tick: "informe",
    unticked: (
        "Cochez la case : le patient doit avoir été informé de cet accès.",
        "Tick the box: the patient must have been told of this access.",
    ),
    granted: (
        "Prise en charge déclarée : le dossier vous est ouvert, dans les limites des habilitations de votre profession. Le patient en est informé.",
        "Care relationship declared: the record is open to you, within your profession's habilitations. The patient is told.",
    ),
    already: (
        "Vous étiez déjà autorisé : l'autorisation en vigueur est conservée telle quelle.",
        "You were already authorised: the authorisation in force is kept as it is.",
    ),
};

/// AC-1b: the professional records the patient's consent for a colleague (or themselves).
const CONSENT: GrantForm = GrantForm {
    name: "consentement",
    tick: "consenti",
    unticked: (
        "Cochez la case : le patient doit avoir donné son consentement.",
        "Tick the box: the patient must have given their consent.",
    ),
    granted: (
        "Consentement enregistré : le dossier est ouvert à ce professionnel, dans les limites des habilitations de sa profession. Le patient en est informé.",
        "Consent recorded: the record is open to this professional, within their profession's habilitations. The patient is told.",
    ),
    already: (
        "Ce professionnel était déjà autorisé : l'autorisation en vigueur est conservée telle quelle.",
        "This professional was already authorised: the authorisation in force is kept as it is.",
    ),
};

async fn care_team(
    s: State<AppState>,
    p: Pro,
    holder: Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    grant_form(s, p, holder, body, &CARE_TEAM).await
}

async fn consent(
    s: State<AppState>,
    p: Pro,
    holder: Path<String>,
    body: Bytes,
) -> Result<Response, WebError> {
    grant_form(s, p, holder, body, &CONSENT).await
}

/// Handles one of AC-1b's forms with the same calls as the API (`api::pro`); a record the
/// professional may not know of stays a missing page (AC-8).
async fn grant_form(
    State(s): State<AppState>,
    p: Pro,
    Path(holder): Path<String>,
    body: Bytes,
    f: &GrantForm,
) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    super::check_csrf(&s, &p.token, &form).await?;
    let holder = parse_holder(&holder)?;
    let w = |(fr, en): (&'static str, &'static str)| super::i18n::fr_en(fr, en).to_string();
    let mut status = StatusCode::BAD_REQUEST;
    let outcome = if form.get(f.tick) != "1" {
        Err(w(f.unticked))
    } else {
        let r = if f.name == CARE_TEAM.name {
            crate::api::pro::declare_care_team(
                &s,
                &p.professional,
                holder,
                form.get("equipe"),
                form.get("episode"),
            )
            .await
        } else {
            crate::api::pro::record_consent(&s, &p.professional, holder, form.get("rpps"), form.get("forme"))
                .await
        };
        match r {
            Ok(true) => Ok(w(f.granted)),
            Ok(false) => Ok(w(f.already)),
            Err(e) if e.status == StatusCode::NOT_FOUND => return Err(e.into()),
            Err(e) => {
                status = e.status;
                Err(french(&e))
            }
        }
    };
    answer(&s, &p, holder, f.name, &form, outcome, status).await
}

/// "24/11/2026 à 18 h 42" (or "24/11/2026 at 18:42" in English), French legal time.
fn until_words(t: carnet_domain::Timestamp) -> String {
    let w = super::when(t);
    w.strip_prefix("le ")
        .or_else(|| w.strip_prefix("on "))
        .map_or_else(|| w.clone(), str::to_string)
}
