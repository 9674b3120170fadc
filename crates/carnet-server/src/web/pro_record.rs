//! The documents of a patient's record as a busy professional works with them (DM-8, issue
//! 33): by default the first view — the current documents of the last two years (vaccinations
//! always), ranked by the domain (`document::first_view_rank`) and grouped by category with
//! their counts — and a search within the record by words of the title, category, author,
//! period and type (LOINC). Everything is listed through the gate as the professional
//! (`Gate::list_documents`): what they may not see is neither shown nor counted (S-2, AC-8).

use std::collections::HashMap;

use carnet_domain::HolderId;
use carnet_domain::access::{Actor, Category, Context};
use carnet_store::documents::{DocumentFilter, DocumentView};

use super::documents::doc_row;
use super::i18n::{Reader, fr_en as w};
use super::{WebError, alert, class_label, esc};
use crate::{ApiError, AppState};

/// What the professional asked of the record's documents (the query of the record's page).
#[derive(Default)]
pub(super) struct Search {
    words: String,
    category: String,
    author: String,
    from: String,
    to: String,
    type_code: String,
    all: bool,
}

impl Search {
    pub(super) fn from_query(q: &HashMap<String, String>) -> Self {
        let get = |k: &str| q.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
        Search {
            words: get("mots"),
            category: get("categorie"),
            author: get("auteur"),
            from: get("du"),
            to: get("au"),
            type_code: get("type"),
            all: q.get("tout").is_some_and(|v| v == "1"),
        }
    }

    /// Whether anything narrows the listing (else the first view).
    fn narrows(&self) -> bool {
        !(self.words.is_empty()
            && self.category.is_empty()
            && self.author.is_empty()
            && self.from.is_empty()
            && self.to.is_empty()
            && self.type_code.is_empty())
    }

    /// The store's filter, or what the professional typed wrong, in words.
    fn filter(&self, rpps: &str) -> Result<DocumentFilter, String> {
        let day = |typed: &str, what: &str| -> Result<Option<carnet_domain::Timestamp>, String> {
            super::profile::typed_day(typed)
                .map(|d| {
                    d.map(|d| carnet_domain::Timestamp::from_offset_date_time(d.midnight().assume_utc()))
                })
                .map_err(|()| format!("{what} : « {typed} » n'est pas une date (JJ/MM/AAAA)."))
        };
        let from = day(&self.from, "Du")?;
        let to = day(&self.to, "Au")?.map(|t| t.plus_seconds(86_400));
        if let (Some(f), Some(t)) = (from, to)
            && f >= t
        {
            return Err("La période est vide : la date de début doit précéder la date de fin.".into());
        }
        let class = match self.category.as_str() {
            "" => None,
            c => Some(Category::parse(c).ok_or("Choisissez une catégorie dans la liste.")?),
        };
        let author = match self.author.as_str() {
            "" => None,
            "patient" => Some("holder".to_string()),
            "moi" => Some(rpps.to_string()),
            _ => return Err("Choisissez un auteur dans la liste.".into()),
        };
        Ok(DocumentFilter {
            class,
            type_code: (!self.type_code.is_empty()).then(|| self.type_code.clone()),
            author,
            from,
            to,
            text: (!self.words.is_empty()).then(|| self.words.clone()),
            first_view: !self.narrows() && !self.all,
            limit: 200,
            ..DocumentFilter::default()
        })
    }
}

/// The documents card of the record: the search form, then the first view grouped by
/// category or the results of the search. `readable`: the categories the gate opens to this
/// professional (the form offers those).
pub(super) async fn documents_card(
    s: &AppState,
    actor: &Actor,
    rpps: &str,
    holder: HolderId,
    readable: &[Category],
    q: &Search,
) -> Result<String, WebError> {
    let form = search_form(holder, readable, q);
    let filter = match q.filter(rpps) {
        Ok(f) => f,
        Err(message) => {
            return Ok(format!("{}{form}", alert(&message)));
        }
    };
    let first_view = filter.first_view;
    let page = match s
        .gate
        .list_documents(holder, actor, &filter, &Context::default())
        .await
    {
        Ok(page) => page,
        Err(carnet_store::StoreError::NotFound) => carnet_store::documents::DocumentPage {
            documents: Vec::new(),
            total: 0,
            next_before: None,
        },
        Err(e) => return Err(ApiError::from(e).into()),
    };
    let base = format!("/pro/patients/{holder}");
    let reader = Reader::of(actor);
    let count = |n: usize| {
        if n <= 1 {
            format!("{n} {}", w("document", "document"))
        } else {
            format!("{n} {}", w("documents", "documents"))
        }
    };
    let list = if page.documents.is_empty() {
        format!(
            "<p>{}</p>",
            if q.narrows() {
                w(
                    "Aucun document ne correspond à cette recherche parmi ceux qui vous sont ouverts.",
                    "No document open to you matches this search.",
                )
            } else {
                w(
                    "Aucun document dans les catégories qui vous sont ouvertes.",
                    "No document in the categories open to you.",
                )
            }
        )
    } else if first_view {
        grouped(&page.documents, &base, reader)
    } else {
        let rows: String = page
            .documents
            .iter()
            .map(|d| doc_row(d, false, &base, reader))
            .collect();
        format!("<ul class=\"docs\">{rows}</ul>")
    };
    let heading = if first_view {
        format!(
            "<p class=\"hint\">{} — {}. <a href=\"/pro/patients/{holder}?tout=1#pro-docs\">{}</a></p>",
            w(
                "Vue d'ensemble : documents en vigueur des deux dernières années (vaccinations toujours), les plus utiles d'abord",
                "Overview: current documents of the last two years (vaccinations always), most useful first"
            ),
            count(page.total),
            w("Voir tous les documents", "See every document"),
        )
    } else {
        let shown = if page.total > page.documents.len() {
            format!(
                " ({} {})",
                page.documents.len(),
                w("affichés ; affinez la recherche", "shown; narrow the search")
            )
        } else {
            String::new()
        };
        format!(
            "<p class=\"hint\" role=\"status\">{}{shown}. <a href=\"/pro/patients/{holder}#pro-docs\">{}</a></p>",
            count(page.total),
            w("Revenir à la vue d'ensemble", "Back to the overview"),
        )
    };
    Ok(format!("{form}{heading}{list}"))
}

/// The first view grouped by category, each with its count, groups in the order of their
/// best-ranked document (the domain's ranking: summaries, then reports and results…).
fn grouped(docs: &[DocumentView], base: &str, reader: Reader<'_>) -> String {
    let mut order: Vec<Category> = Vec::new();
    for d in docs {
        if !order.contains(&d.meta.class) {
            order.push(d.meta.class);
        }
    }
    order
        .into_iter()
        .map(|c| {
            let of: Vec<&DocumentView> = docs.iter().filter(|d| d.meta.class == c).collect();
            let rows: String = of.iter().map(|d| doc_row(d, false, base, reader)).collect();
            format!(
                "<h3>{} <span class=\"muted\">({})</span></h3><ul class=\"docs\">{rows}</ul>",
                esc(&category_name(c)),
                of.len()
            )
        })
        .collect()
}

/// A category as a professional names it.
pub(super) fn category_name(c: Category) -> String {
    match c {
        Category::HolderDocuments => w(
            "Documents ajoutés par le patient",
            "Documents added by the patient",
        )
        .into(),
        other => class_label(other).into(),
    }
}

fn search_form(holder: HolderId, readable: &[Category], q: &Search) -> String {
    let option = |value: &str, label: &str, selected: &str| {
        format!(
            "<option value=\"{value}\"{}>{}</option>",
            if value == selected { " selected" } else { "" },
            esc(label)
        )
    };
    let categories: String = std::iter::once(option("", w("Toutes", "All"), &q.category))
        .chain(
            readable
                .iter()
                .map(|c| option(c.tag(), &category_name(*c), &q.category)),
        )
        .collect();
    let authors: String = [
        ("", w("Tous", "Anyone")),
        ("patient", w("Le patient", "The patient")),
        ("moi", w("Vous-même", "Yourself")),
    ]
    .iter()
    .map(|(v, l)| option(v, l, &q.author))
    .collect();
    format!(
        "<form method=\"get\" action=\"/pro/patients/{holder}#pro-docs\" class=\"search\" role=\"search\" aria-label=\"{}\">\
         <p><label for=\"mots\">{}</label><input id=\"mots\" name=\"mots\" type=\"search\" maxlength=\"100\" value=\"{}\"></p>\
         <details{}><summary>{}</summary>\
         <p><label for=\"categorie\">{}</label><select id=\"categorie\" name=\"categorie\">{categories}</select></p>\
         <p><label for=\"auteur\">{}</label><select id=\"auteur\" name=\"auteur\">{authors}</select></p>\
         <p><label for=\"du\">{}</label><input id=\"du\" name=\"du\" inputmode=\"numeric\" placeholder=\"JJ/MM/AAAA\" maxlength=\"10\" value=\"{}\"></p>\
         <p><label for=\"au\">{}</label><input id=\"au\" name=\"au\" inputmode=\"numeric\" placeholder=\"JJ/MM/AAAA\" maxlength=\"10\" value=\"{}\"></p>\
         <p><label for=\"type\">{}</label><select id=\"type\" name=\"type\">{}</select></p></details>\
         <p><button type=\"submit\">{}</button></p></form>",
        w("Rechercher dans le dossier", "Search the record"),
        w("Mots du titre", "Words of the title"),
        esc(&q.words),
        if q.narrows()
            && (q.words.is_empty()
                || !q.category.is_empty()
                || !q.author.is_empty()
                || !q.from.is_empty()
                || !q.to.is_empty()
                || !q.type_code.is_empty())
        {
            " open"
        } else {
            ""
        },
        w(
            "Plus de critères (catégorie, auteur, période, type)",
            "More criteria (category, author, period, type)"
        ),
        w("Catégorie", "Category"),
        w("Auteur", "Author"),
        w("Du (date d'ajout)", "From (date added)"),
        esc(&q.from),
        w("Au", "To"),
        esc(&q.to),
        w("Type de document", "Document type"),
        type_options(&q.type_code),
        w("Rechercher", "Search"),
    )
}

/// The common document types by their French names (LOINC codes as values), and a code typed
/// before that is not among them kept as it is.
fn type_options(selected: &str) -> String {
    let option = |code: &str, label: &str| {
        format!(
            "<option value=\"{}\"{}>{}</option>",
            esc(code),
            if code == selected { " selected" } else { "" },
            esc(label)
        )
    };
    let mut out = option("", w("Tous les types", "All types"));
    if !selected.is_empty() && carnet_domain::document::type_label(selected).is_none() {
        out.push_str(&option(selected, &format!("LOINC {selected}")));
    }
    for (code, label) in carnet_domain::document::DOCUMENT_TYPES {
        out.push_str(&option(code, label));
    }
    out
}
