//! Reimbursements (RB-1, RB-2): the insurer's lines of the last 24 months, filters (POSTed, so
//! no search words in URLs), totals (paid, reimbursed, remaining), a bar chart by month (inline
//! SVG from `chart.rs`), the table, and the CSV export of the selection. Read through the gate,
//! like the JSON API.

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use carnet_domain::access::Context;
use carnet_domain::reimbursement::{CareType, Filter, MonthTotals, by_month, export_csv, totals};
use carnet_store::reimbursements::Reimbursement;

use super::i18n::{Locale, locale, t as tr};
use super::{Form, Holder, Nav, WebError, alert, csrf_field, esc, iso_day, page, see_other};
use crate::chart::{Bar, amount, bar_chart};
use crate::{ApiError, AppState};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/remboursements", get(show).post(filter))
        .route("/remboursements/export", post(export))
        .route("/reimbursements", get(|| async { see_other("/remboursements") }))
}

/// What the person typed in the filter form.
#[derive(Default)]
struct Typed {
    from: String,
    to: String,
    professional: String,
    care_type: String,
}

impl Typed {
    fn of(form: &Form) -> Self {
        Typed {
            from: form.get("du").trim().to_string(),
            to: form.get("au").trim().to_string(),
            professional: form.get("professionnel").trim().to_string(),
            care_type: form.get("type").trim().to_string(),
        }
    }

    /// The filter, or a readable message naming the wrong field.
    fn filter(&self) -> Result<Filter, String> {
        let (from, to) = (
            super::profile::record_date(&self.from),
            super::profile::record_date(&self.to),
        );
        Filter::parse(&from, &to, &self.professional, &self.care_type).map_err(|e| {
            let field = e.split(':').next().unwrap_or_default();
            match (locale(), field) {
                (Locale::Fr, "from" | "to") if e.contains("starts after") => {
                    "La période commence après sa fin : vérifiez les dates.".to_string()
                }
                (Locale::Fr, "from" | "to") => {
                    "Une date de la période n'est pas une date valide (JJ/MM/AAAA).".to_string()
                }
                (Locale::Fr, "type") => "Choisissez un type de soins dans la liste.".to_string(),
                (Locale::Fr, _) => "Le nom du professionnel est trop long.".to_string(),
                (Locale::En, _) => e,
            }
        })
    }
}

/// The care type's name in the current locale.
pub fn care_label(c: CareType) -> &'static str {
    match locale() {
        Locale::Fr => match c {
            CareType::Consultation => "Consultation",
            CareType::Pharmacy => "Pharmacie",
            CareType::Biology => "Biologie",
            CareType::Imaging => "Imagerie",
            CareType::Hospital => "Hôpital",
            CareType::Dental => "Dentaire",
            CareType::Optical => "Optique",
            CareType::Paramedical => "Paramédical",
            CareType::Other => "Autre",
        },
        Locale::En => match c {
            CareType::Consultation => "Consultation",
            CareType::Pharmacy => "Pharmacy",
            CareType::Biology => "Laboratory tests",
            CareType::Imaging => "Imaging",
            CareType::Hospital => "Hospital",
            CareType::Dental => "Dental",
            CareType::Optical => "Optical",
            CareType::Paramedical => "Paramedical",
            CareType::Other => "Other",
        },
    }
}

fn month_label(m: &MonthTotals) -> String {
    format!("{:02}/{:02}", m.month, m.year.rem_euclid(100))
}

pub(super) fn row(r: &Reimbursement) -> String {
    let l = &r.line;
    let act = match &l.act_code {
        Some(code) => format!(
            "{} <span class=\"muted\">({})</span>",
            esc(&l.act_label),
            esc(code)
        ),
        None => esc(&l.act_label),
    };
    let pro = if l.professional.name.is_empty() {
        "—".to_string()
    } else {
        esc(&l.professional.name)
    };
    format!(
        "<tr><td>{}</td><td>{}</td><td>{act}</td><td>{pro}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td></tr>",
        esc(&iso_day(&carnet_domain::reimbursement::format_date(
            l.date_of_care
        ))),
        esc(care_label(l.care_type)),
        esc(&amount(l.paid_cents)),
        esc(&amount(l.reimbursed_cents)),
        esc(&amount(l.remaining_cents())),
    )
}

async fn lines(s: &AppState, h: &Holder, f: &Filter) -> Result<Vec<Reimbursement>, WebError> {
    Ok(s.gate
        .list_reimbursements(h.space(), &h.actor(), f, &Context::default())
        .await
        .map_err(ApiError::from)?)
}

async fn render(s: &AppState, h: &Holder, t: &Typed) -> Result<(StatusCode, String), WebError> {
    let (filter, error) = match t.filter() {
        Ok(f) => (f, String::new()),
        Err(e) => (Filter::default(), e),
    };
    let list = lines(s, h, &filter).await?;
    let sums = totals(list.iter().map(|r| &r.line));
    let months = by_month(list.iter().map(|r| &r.line));
    let bars: Vec<Bar> = months
        .iter()
        .map(|m| Bar {
            label: month_label(m),
            first: m.totals.paid_cents,
            second: m.totals.reimbursed_cents,
        })
        .collect();
    let desc = match (months.first(), months.last()) {
        (Some(a), Some(b)) => format!(
            "{} {} {} {}{} {} {}, {} {}.",
            tr("rb.chart.from"),
            month_label(a),
            tr("rb.chart.to"),
            month_label(b),
            super::i18n::fr_en(" :", ":"),
            tr("rb.paid"),
            amount(sums.paid_cents),
            tr("rb.reimbursed"),
            amount(sums.reimbursed_cents)
        ),
        _ => tr("rb.none").to_string(),
    };
    let chart = bar_chart(
        "rb-chart",
        tr("rb.chart"),
        &desc,
        (tr("rb.paid"), tr("rb.reimbursed")),
        &bars,
    );
    let options: String = CareType::ALL
        .iter()
        .map(|c| {
            format!(
                "<option value=\"{}\"{}>{}</option>",
                c.tag(),
                if c.tag() == t.care_type { " selected" } else { "" },
                esc(care_label(*c))
            )
        })
        .collect();
    let count = match list.len() {
        0 => tr("rb.none").to_string(),
        1 => tr("rb.one").to_string(),
        n => format!("{n} {}", tr("rb.many")),
    };
    let table = if list.is_empty() {
        String::new()
    } else {
        format!(
            "<div class=\"table\"><table><caption>{}</caption><thead><tr>\
             <th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th><th scope=\"col\">{}</th>\
             <th scope=\"col\" class=\"num\">{}</th><th scope=\"col\" class=\"num\">{}</th><th scope=\"col\" class=\"num\">{}</th>\
             </tr></thead><tbody>{}</tbody></table></div>",
            tr("rb.table"),
            tr("rb.col.date"),
            tr("rb.col.type"),
            tr("rb.col.act"),
            tr("rb.col.pro"),
            tr("rb.paid"),
            tr("rb.reimbursed"),
            tr("rb.remaining"),
            list.iter().map(row).collect::<String>()
        )
    };
    let csrf = csrf_field(&h.csrf);
    let day = super::profile::day_field();
    let body = format!(
        "<h1>{}</h1><p>{}</p>{}\
         <form method=\"post\" action=\"/remboursements\" class=\"card filters\" role=\"search\">{csrf}\
         <p><label for=\"du\">{}</label><input id=\"du\" name=\"du\" {day} value=\"{}\"></p>\
         <p><label for=\"au\">{}</label><input id=\"au\" name=\"au\" {day} value=\"{}\"></p>\
         <p><label for=\"professionnel\">{}</label><input id=\"professionnel\" name=\"professionnel\" type=\"search\" maxlength=\"200\" value=\"{}\"></p>\
         <p><label for=\"type\">{}</label><select id=\"type\" name=\"type\"><option value=\"\">{}</option>{options}</select></p>\
         <p><button type=\"submit\">{}</button> <button type=\"submit\" formaction=\"/remboursements/export\" class=\"secondary\">{}</button></p></form>\
         <p role=\"status\">{count}</p>\
         <section aria-labelledby=\"totaux\"><h2 id=\"totaux\">{}</h2><dl class=\"meta totals\">\
         <dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd></dl></section>\
         <section aria-labelledby=\"par-mois\"><h2 id=\"par-mois\">{}</h2><figure class=\"chart\">{chart}<figcaption>{}</figcaption></figure></section>\
         <section aria-labelledby=\"detail\"><h2 id=\"detail\">{}</h2>{table}\
         <p><a href=\"/api/v1/me/reimbursements.csv\" download>{}</a></p></section>",
        tr("rb.title"),
        tr("rb.intro"),
        alert(&error),
        tr("rb.from"),
        esc(&t.from),
        tr("rb.to"),
        esc(&t.to),
        tr("rb.professional"),
        esc(&t.professional),
        tr("rb.type"),
        tr("rb.all_types"),
        tr("rb.filter"),
        tr("rb.export_selection"),
        tr("rb.totals"),
        tr("rb.paid"),
        esc(&amount(sums.paid_cents)),
        tr("rb.reimbursed"),
        esc(&amount(sums.reimbursed_cents)),
        tr("rb.remaining"),
        esc(&amount(sums.remaining_cents)),
        tr("rb.by_month"),
        esc(&desc),
        tr("rb.detail"),
        tr("rb.export_all"),
    );
    let status = if error.is_empty() {
        StatusCode::OK
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    Ok((status, body))
}

fn respond(h: &Holder, status: StatusCode, body: &str) -> Response {
    let mut r = page(
        "Remboursements",
        &Nav::Holder {
            h,
            current: "/remboursements",
        },
        body,
    )
    .into_response();
    *r.status_mut() = status;
    r
}

async fn show(State(s): State<AppState>, h: Holder) -> Result<Response, WebError> {
    let (status, body) = render(&s, &h, &Typed::default()).await?;
    Ok(respond(&h, status, &body))
}

async fn filter(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let (status, body) = render(&s, &h, &Typed::of(&form)).await?;
    Ok(respond(&h, status, &body))
}

/// RB-2: the filtered selection as a CSV download.
async fn export(State(s): State<AppState>, h: Holder, body: Bytes) -> Result<Response, WebError> {
    let form = Form::parse(&body);
    h.check(&s, &form).await?;
    let typed = Typed::of(&form);
    match typed.filter() {
        Ok(f) => {
            let list = lines(&s, &h, &f).await?;
            Ok(crate::api::reimbursements::csv_response(export_csv(
                list.iter().map(|r| &r.line),
            )))
        }
        Err(_) => {
            let (status, body) = render(&s, &h, &typed).await?;
            Ok(respond(&h, status, &body))
        }
    }
}
