//! The page frame: header and navigation, dates and names in French.

use carnet_domain::Timestamp;
use carnet_domain::access::Category;

use crate::AppState;
use i18n::t;

use super::*;

/// What the header shows.
pub enum Nav<'a> {
    Anonymous,
    Holder { h: &'a Holder, current: &'static str },
    Pro { p: &'a Pro },
}

const HOLDER_NAV: [(&str, &str); 11] = [
    ("/", "nav.home"),
    ("/documents", "nav.documents"),
    ("/profil", "nav.profile"),
    ("/messages", "nav.messages"),
    ("/agenda", "nav.agenda"),
    ("/remboursements", "nav.reimbursements"),
    ("/catalogue", "nav.catalogue"),
    ("/historique", "nav.history"),
    ("/autorisations", "nav.access"),
    ("/notifications", "nav.notifications"),
    ("/mon-espace", "nav.space"),
];

fn header_html(nav: &Nav<'_>) -> String {
    let brand = "<a class=\"brand\" href=\"/\"><img src=\"/static/carnet.svg\" alt=\"\" width=\"32\" height=\"32\"> Carnet</a>";
    match nav {
        Nav::Anonymous => format!("<header class=\"top\"><div class=\"bar\">{brand}</div></header>"),
        Nav::Holder { h, current } => {
            let mut links = String::new();
            let mut items: Vec<(&str, &str)> = if h.carer() {
                // MI-5: a carer reads the documents they were given, nothing else of the space.
                vec![("/documents", "nav.documents")]
            } else {
                HOLDER_NAV.to_vec()
            };
            if h.represents_others || !h.own_space() {
                items.push(("/espace", "nav.switch"));
            }
            let mut here = "";
            for (href, key) in items {
                // In a represented person's space, "Mon espace" is not the reader's.
                let key = if key == "nav.space" && !h.own_space() {
                    "nav.this_space"
                } else {
                    key
                };
                let cur = if href == *current {
                    here = t(key);
                    " aria-current=\"page\""
                } else {
                    ""
                };
                links.push_str(&format!("<li><a href=\"{href}\"{cur}>{}</a></li>", t(key)));
            }
            // "Espace de Camille MARTIN", "Espace d'Inès MARTIN"; "Space of …" in English.
            let space_of = match i18n::locale() == i18n::Locale::En {
                true => format!("{} {}", t("layout.space_of"), esc(&h.space_name)),
                false => format!("Espace {}", esc(&de(&h.space_name))),
            };
            let who = if h.own_space() {
                space_of
            } else if h.carer() {
                format!(
                    "{space_of} <span class=\"muted-inv\">({} {})</span>",
                    t("layout.carer_as"),
                    esc(&h.self_name)
                )
            } else {
                format!(
                    "{space_of} <span class=\"muted-inv\">({} {})</span>",
                    t("layout.acting_as"),
                    esc(&h.self_name)
                )
            };
            format!(
                "<header class=\"top\"><div class=\"bar\">{brand}<p class=\"who\">{who}</p>\
                 <form method=\"post\" action=\"/deconnexion\" class=\"inline\">{}<button type=\"submit\" class=\"link\">{}</button></form></div>\
                 {}</header>",
                csrf_field(&h.csrf),
                t("layout.logout"),
                menus(t("layout.menu"), here, &links),
            )
        }
        Nav::Pro { p } => format!(
            "<header class=\"top\"><div class=\"bar\">{brand}<p class=\"who\">{} {}</p>\
             <form method=\"post\" action=\"/pro/deconnexion\" class=\"inline\">{}<button type=\"submit\" class=\"link\">{}</button></form></div>\
             <nav aria-label=\"{}\"><ul><li><a href=\"/pro\">{}</a></li><li><a href=\"/pro/messages\">{}</a></li></ul></nav></header>",
            t("layout.pro_space"),
            // "Dr" never ends a line apart from the name.
            esc(&p.professional.display_name()).replacen("Dr ", "Dr\u{a0}", 1),
            csrf_field(&p.csrf),
            t("layout.logout"),
            t("layout.pro_menu"),
            t("nav.pro_search"),
            t("nav.messages"),
        ),
    }
}

/// The menu twice, one shown at a time by the style sheet: the links in a row on wide
/// screens; on a phone, a "Menu" that unfolds (`<details>`, no script) and says where one is,
/// so the page's content starts on the first screen. The hidden one is `display: none`, out of
/// the accessibility tree.
fn menus(label: &str, here: &str, links: &str) -> String {
    let here = if here.is_empty() {
        String::new()
    } else {
        format!(" <span class=\"here\">· {here}</span>")
    };
    format!(
        "<nav aria-label=\"{label}\" class=\"wide\"><ul>{links}</ul></nav>\
         <nav aria-label=\"{label}\" class=\"narrow\"><details><summary>{}{here}</summary><ul>{links}</ul></details></nav>",
        t("layout.menu_button"),
    )
}

/// The language switch of the footer: a plain link to the other language (`?lang=`).
fn language_switch() -> &'static str {
    match i18n::locale() {
        i18n::Locale::Fr => {
            "<p class=\"lang\"><a href=\"?lang=en\" lang=\"en\" hreflang=\"en\">English</a></p>"
        }
        i18n::Locale::En => {
            "<p class=\"lang\"><a href=\"?lang=fr\" lang=\"fr\" hreflang=\"fr\">Français</a></p>"
        }
    }
}

/// A whole page. `title` is static: no data can reach a page title.
pub fn page(title: &'static str, nav: &Nav<'_>, body: &str) -> axum::response::Html<String> {
    framed(i18n::title(title), nav, body)
}

/// [`page`] with a title made of data ("Dossier de Camille MARTIN"), escaped here.
pub fn page_named(title: &str, nav: &Nav<'_>, body: &str) -> axum::response::Html<String> {
    framed(&esc(title), nav, body)
}

fn framed(title: &str, nav: &Nav<'_>, body: &str) -> axum::response::Html<String> {
    axum::response::Html(format!(
        "<!doctype html>\n<html lang=\"{}\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{title} — Carnet</title>\n<link rel=\"stylesheet\" href=\"/static/carnet.css\">\n\
         <link rel=\"icon\" href=\"/static/carnet.svg\" type=\"image/svg+xml\">\n\
         <script src=\"/static/passkey.js\" defer></script>\n\
         <link rel=\"manifest\" href=\"/manifest.webmanifest\">\n<meta name=\"theme-color\" content=\"#1f4e79\">\n\
         </head>\n<body>\n<a class=\"skip\" href=\"#contenu\">{}</a>\n{}\n\
         <main id=\"contenu\" tabindex=\"-1\">\n{body}\n</main>\n\
         <footer><p>{}</p>{}</footer>\n\
         </body>\n</html>\n",
        i18n::locale().tag(),
        t("layout.skip"),
        header_html(nav),
        t("layout.footer"),
        language_switch(),
    ))
}

/// Links to the configured OpenID providers for `audience` (FranceConnect for holders, Pro
/// Santé Connect for professionals): plain links, the provider's pages do the rest.
pub fn oidc_links(s: &AppState, audience: crate::oidc::Audience) -> String {
    let links: String = s
        .oidc
        .values()
        .filter(|p| p.config.audience == audience)
        .map(|p| {
            let label = match p.name.as_str() {
                "franceconnect" => "FranceConnect".to_string(),
                "psc" | "prosanteconnect" => "Pro Santé Connect".to_string(),
                other => other.to_string(),
            };
            format!(
                "<li><a class=\"button\" href=\"/auth/oidc/{}/start\">Se connecter avec {}</a></li>",
                esc(&p.name),
                esc(&label)
            )
        })
        .collect();
    if links.is_empty() {
        String::new()
    } else {
        format!("<ul class=\"actions\">{links}</ul>")
    }
}

// ---------------------------------------------------------------------------------------------
// Words

/// French label of a document class.
pub fn class_label(c: Category) -> &'static str {
    match c {
        Category::Reports => i18n::fr_en("Comptes rendus", "Reports"),
        Category::Summaries => i18n::fr_en("Synthèses", "Summaries"),
        Category::Imaging => i18n::fr_en("Imagerie médicale", "Medical imaging"),
        Category::Prescriptions => i18n::fr_en("Ordonnances", "Prescriptions"),
        Category::Dispensations => i18n::fr_en("Délivrances de médicaments", "Medicines dispensed"),
        Category::CarePlans => i18n::fr_en("Plans de soins", "Care plans"),
        Category::AdministeredTreatments => i18n::fr_en("Traitements administrés", "Treatments given"),
        Category::Certificates => i18n::fr_en("Certificats", "Certificates"),
        Category::Reimbursements => i18n::fr_en("Remboursements", "Reimbursements"),
        Category::HolderDocuments => i18n::fr_en("Mes documents", "My documents"),
        Category::Administrative => i18n::fr_en("Documents administratifs", "Administrative documents"),
    }
}

/// `<option>`s of the document classes, `selected` one marked.
pub fn class_options(selected: &str) -> String {
    Category::ALL
        .iter()
        .map(|c| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                c.tag(),
                if c.tag() == selected { " selected" } else { "" },
                class_label(*c)
            )
        })
        .collect()
}

/// French label of a profession of the habilitation matrix.
pub fn profession_label(p: &str) -> String {
    match p {
        "medecin" => "médecin".into(),
        "infirmier" => "infirmier ou infirmière".into(),
        "pharmacien" => "pharmacien ou pharmacienne".into(),
        "sage_femme" => "sage-femme".into(),
        "chirurgien_dentiste" => "chirurgien-dentiste".into(),
        "masseur_kinesitherapeute" => "masseur-kinésithérapeute".into(),
        other => other.replace('_', " "),
    }
}

/// "Dr Claire LEROY" for a professional of the directory.
pub fn professional_name(p: &carnet_store::directory::Professional) -> String {
    p.display_name()
}

/// The instant in France's legal time (CET/CEST, the EU rule: summer time from the last
/// Sunday of March to the last Sunday of October, changes at 01:00 UTC).
pub fn paris(t: Timestamp) -> Option<time::OffsetDateTime> {
    // The EU summer-time rule lives with the agenda, which needs it for recurrences.
    let offset = time::UtcOffset::from_whole_seconds(carnet_domain::agenda::paris_offset_seconds(t)).ok()?;
    Some(t.to_offset_date_time()?.to_offset(offset))
}

/// "24/11/2026".
pub fn day(t: Timestamp) -> String {
    paris(t).map_or_else(String::new, |d| {
        format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
    })
}

/// "le 24/11/2026 à 10 h 42" ("on 24/11/2026 at 10:42" in English).
/// "14/12/2026 à 20 h 28" — [`when`] without its "le"/"on": after "jusqu'au"/"until", in a
/// table's date column.
pub fn bare_when(t: Timestamp) -> String {
    let w = when(t);
    w.strip_prefix("le ")
        .or_else(|| w.strip_prefix("on "))
        .map_or(w.clone(), str::to_string)
}

pub fn when(t: Timestamp) -> String {
    let english = i18n::locale() == i18n::Locale::En;
    paris(t).map_or_else(String::new, |d| {
        let date = format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year());
        if english {
            format!("on {date} at {:02}:{:02}", d.hour(), d.minute())
        } else {
            // No-break spaces: "05 h 38" never splits across lines.
            format!("le {date} à {:02}\u{a0}h\u{a0}{:02}", d.hour(), d.minute())
        }
    })
}

/// "12/03/2026" from an ISO date "2026-03-12" (partial dates as they are).
pub fn iso_day(d: &str) -> String {
    let p: Vec<&str> = d.split('-').collect();
    match p.as_slice() {
        [y, m, dd] if dd.len() >= 2 => format!("{}/{m}/{y}", &dd[..2]),
        [y, m] => format!("{m}/{y}"),
        _ => d.to_string(),
    }
}
