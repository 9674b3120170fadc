//! Server-rendered SVG charts of measurement series (SPEC PR-4) and of reimbursements by month
//! (RB-2): no script, readable without a browser engine, accessible (`role="img"`, a title and
//! a description with the values). Pure: points in, SVG text out.

use crate::web::i18n::{Locale, fr_en, locale};
use carnet_domain::Timestamp;

const W: f64 = 640.0;
const H: f64 = 280.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 36.0;
const BOTTOM: f64 = 40.0;

pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A day as French readers write it: `07/12/2026` (Paris time).
fn day(t: Timestamp) -> String {
    carnet_domain::agenda::paris_date(t).map_or_else(String::new, |d| {
        format!("{:02}/{:02}/{}", d.day(), u8::from(d.month()), d.year())
    })
}

/// A number without trailing zeros, with a decimal comma in French (72,5, 120, 0,99).
fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    match locale() {
        Locale::Fr => s.replace('.', ","),
        Locale::En => s.to_string(),
    }
}

/// The smallest of 1, 2 or 5 times a power of ten that is at least `raw`.
fn nice_step(raw: f64) -> f64 {
    if !raw.is_finite() || raw <= 0.0 {
        return 1.0;
    }
    let power = 10f64.powf(raw.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw * (1.0 - 1e-9))
        .unwrap_or(10.0 * power)
}

/// A line chart of `points` (time, value), oldest first.
pub fn line_chart(title: &str, unit: &str, points: &[(Timestamp, f64)]) -> String {
    let mut out = String::new();
    let head = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-labelledby=\"t d\" font-family=\"sans-serif\" font-size=\"12\">"
    );
    out.push_str(&head);
    out.push_str(&format!("<title id=\"t\">{}</title>", esc(title)));
    let Some((first, last)) = points.first().zip(points.last()) else {
        let none = fr_en("Aucune mesure sur la période", "No measurement in this period");
        out.push_str(&format!("<desc id=\"d\">{none}.</desc>"));
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{none}</text></svg>",
            W / 2.0,
            H / 2.0
        ));
        return out;
    };
    let (n, from, to, latest) = (points.len(), day(first.0), day(last.0), num(last.1));
    out.push_str(&match locale() {
        Locale::Fr => format!(
            "<desc id=\"d\">{n} mesures du {from} au {to} ; dernière : {latest} {}.</desc>",
            esc(unit)
        ),
        Locale::En => format!(
            "<desc id=\"d\">{n} measurements from {from} to {to}; latest: {latest} {}.</desc>",
            esc(unit)
        ),
    });
    let (mut lo, mut hi) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), (_, v)| (lo.min(*v), hi.max(*v)));
    if (hi - lo).abs() < f64::EPSILON {
        lo -= 1.0;
        hi += 1.0;
    }
    // Round grid values (71, 71,5, 72…), never 72,63: a step of 1, 2 or 5 times a power of
    // ten giving three to six lines, the axis from the multiple below the lowest point to the
    // one above the highest.
    let pad = (hi - lo) * 0.05;
    let (lo, hi) = (lo - pad, hi + pad);
    let step = nice_step((hi - lo) / 4.0);
    let (lo, hi) = ((lo / step).floor() * step, (hi / step).ceil() * step);
    let lines = ((hi - lo) / step).round() as i32;
    let (t0, t1) = (first.0.as_micros() as f64, last.0.as_micros() as f64);
    let span = if t1 > t0 { t1 - t0 } else { 1.0 };
    let x = |t: Timestamp| {
        if points.len() == 1 {
            LEFT + (W - LEFT - RIGHT) / 2.0
        } else {
            LEFT + (t.as_micros() as f64 - t0) / span * (W - LEFT - RIGHT)
        }
    };
    let y = |v: f64| TOP + (hi - v) / (hi - lo) * (H - TOP - BOTTOM);
    out.push_str(&format!(
        "<text x=\"{LEFT}\" y=\"20\" font-weight=\"bold\">{} ({})</text>",
        esc(title),
        esc(unit)
    ));
    // Horizontal grid with 5 values.
    for i in 0..=lines {
        let v = lo + step * f64::from(i);
        let yy = y(v);
        out.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            num(v)
        ));
    }
    out.push_str(&format!(
        "<text x=\"{LEFT}\" y=\"{}\">{}</text><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>",
        H - 12.0,
        day(first.0),
        W - RIGHT,
        H - 12.0,
        day(last.0)
    ));
    let line: Vec<String> = points
        .iter()
        .map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v)))
        .collect();
    out.push_str(&format!(
        "<polyline fill=\"none\" stroke=\"#1f5fa8\" stroke-width=\"2\" points=\"{}\"/>",
        line.join(" ")
    ));
    // Dots for small series (a device's hundreds of points stay a line).
    if points.len() <= 60 {
        for (t, v) in points {
            out.push_str(&format!(
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f5fa8\"><title>{}{} {} {}</title></circle>",
                x(*t),
                y(*v),
                day(*t),
                fr_en(" :", ":"),
                num(*v),
                esc(unit)
            ));
        }
    }
    out.push_str("</svg>");
    out
}

/// One month of a bar chart: its label (`01/26`) and two amounts in cents.
pub struct Bar {
    pub label: String,
    pub first: i64,
    pub second: i64,
}

/// Euros without cents for an axis (`1 250 €`, `€1,250`).
fn euros(cents: i64) -> String {
    let e = cents.div_euclid(100).to_string();
    match locale() {
        Locale::Fr => format!("{}\u{a0}€", crate::web::i18n::group(&e, '\u{202f}')),
        Locale::En => format!("€{}", crate::web::i18n::group(&e, ',')),
    }
}

/// A bar chart of two amounts per month (paid and reimbursed, RB-2), oldest month first, with
/// a legend. `names` are the two series' names; `desc` the text description (screen readers).
/// Ids are prefixed with `id` so several charts can share a page.
pub fn bar_chart(id: &str, title: &str, desc: &str, names: (&str, &str), bars: &[Bar]) -> String {
    let id = esc(id);
    let mut out = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {W} {H}\" width=\"{W}\" height=\"{H}\" role=\"img\" aria-labelledby=\"{id}-t {id}-d\" font-family=\"sans-serif\" font-size=\"12\">\
         <title id=\"{id}-t\">{}</title><desc id=\"{id}-d\">{}</desc>",
        esc(title),
        esc(desc)
    );
    if bars.is_empty() {
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text></svg>",
            W / 2.0,
            H / 2.0,
            esc(desc)
        ));
        return out;
    }
    let max = bars
        .iter()
        .map(|b| b.first.max(b.second))
        .max()
        .unwrap_or(0)
        .max(100);
    // A round top for the axis: 1, 2 or 5 times a power of ten (in euros).
    let mut step = 100i64;
    while step * 4 < max {
        step = match step.to_string().chars().next() {
            Some('1') => step * 2,
            Some('2') => step * 5 / 2,
            _ => step * 2,
        };
    }
    let top = step * ((max + step - 1) / step).max(1);
    let plot_h = H - TOP - BOTTOM;
    let y = |v: i64| TOP + plot_h - (v as f64 / top as f64) * plot_h;
    for i in 0..=(top / step) {
        let v = i * step;
        let yy = y(v);
        out.push_str(&format!(
            "<line x1=\"{LEFT}\" x2=\"{}\" y1=\"{yy:.1}\" y2=\"{yy:.1}\" stroke=\"#ddd\"/><text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            W - RIGHT,
            LEFT - 6.0,
            yy + 4.0,
            euros(v)
        ));
    }
    let slot = (W - LEFT - RIGHT) / bars.len() as f64;
    let bw = (slot * 0.38).min(24.0);
    let every = bars.len().div_ceil(12);
    for (i, b) in bars.iter().enumerate() {
        let x0 = LEFT + slot * i as f64 + slot / 2.0 - bw;
        for (k, (v, colour, name)) in [(b.first, "#8fb3de", names.0), (b.second, "#1f4e79", names.1)]
            .into_iter()
            .enumerate()
        {
            let yy = y(v);
            out.push_str(&format!(
                "<rect x=\"{:.1}\" y=\"{yy:.1}\" width=\"{bw:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{} — {}{} {}</title></rect>",
                x0 + bw * k as f64,
                (TOP + plot_h - yy).max(0.0),
                esc(&b.label),
                esc(name),
                fr_en(" :", ":"),
                esc(&crate::chart::amount(v))
            ));
        }
        if i % every == 0 {
            out.push_str(&format!(
                "<text x=\"{:.1}\" y=\"{}\" text-anchor=\"middle\">{}</text>",
                LEFT + slot * i as f64 + slot / 2.0,
                H - BOTTOM + 16.0,
                esc(&b.label)
            ));
        }
    }
    // The legend.
    out.push_str(&format!(
        "<rect x=\"{LEFT}\" y=\"10\" width=\"12\" height=\"12\" fill=\"#8fb3de\"/><text x=\"{}\" y=\"20\">{}</text>\
         <rect x=\"{}\" y=\"10\" width=\"12\" height=\"12\" fill=\"#1f4e79\"/><text x=\"{}\" y=\"20\">{}</text></svg>",
        LEFT + 16.0,
        esc(names.0),
        LEFT + 180.0,
        LEFT + 196.0,
        esc(names.1)
    ));
    out
}

/// An amount as the page's locale writes it (`12,40 €`, `€12.40`).
pub fn amount(cents: i64) -> String {
    crate::web::i18n::amount(cents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_is_well_formed_svg_with_its_points() {
        let pts: Vec<(Timestamp, f64)> = (0..5)
            .map(|i| {
                (
                    Timestamp::from_unix_seconds(1_767_603_600 + i * 86_400),
                    70.0 + i as f64,
                )
            })
            .collect();
        let svg = line_chart("Poids <test>", "kg", &pts);
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("Poids &lt;test&gt;"), "escaped");
        assert_eq!(svg.matches("<circle").count(), 5);
        assert!(svg.contains("dernière : 74 kg"));
        // French dates and decimals, never ISO dates or decimal points.
        assert!(svg.contains("05/01/2026") && !svg.contains("2026-01-05"), "{svg}");
        let half = line_chart("Poids", "kg", &[(pts[0].0, 72.5)]);
        assert!(half.contains("72,5 kg") && !half.contains("72.5"), "{half}");
        // Every point lies inside the plot area.
        let inner = svg.split("points=\"").nth(1).unwrap().split('"').next().unwrap();
        for p in inner.split(' ') {
            let (x, y) = p.split_once(',').unwrap();
            let (x, y): (f64, f64) = (x.parse().unwrap(), y.parse().unwrap());
            assert!(
                (LEFT..=W - RIGHT).contains(&x) && (TOP..=H - BOTTOM).contains(&y),
                "{p}"
            );
        }
        let empty = line_chart("Poids", "kg", &[]);
        assert!(empty.contains("Aucune mesure"));
        let one = line_chart("Poids", "kg", &pts[..1]);
        assert_eq!(one.matches("<circle").count(), 1);
    }

    /// Issue 32: the grid's values are round (71, 71,5, 72…), from below the lowest point to
    /// above the highest, never 72,63.
    #[test]
    fn the_grid_has_round_values_around_the_points() {
        let at = |d: i64| Timestamp::from_unix_seconds(1_767_603_600 + d * 86_400);
        let svg = line_chart("Poids", "kg", &[(at(0), 72.5), (at(1), 71.8), (at(2), 71.2)]);
        let grid: Vec<String> = svg
            .split("text-anchor=\"end\">")
            .skip(1)
            .map(|s| s.split('<').next().unwrap_or_default().to_string())
            .filter(|s| !s.contains('/'))
            .collect();
        assert_eq!(grid, ["71", "71,5", "72", "72,5", "73"], "{svg}");
        assert_eq!(nice_step(0.36), 0.5);
        assert_eq!(nice_step(1.1), 2.0);
        assert_eq!(nice_step(30.0), 50.0);
        assert_eq!(nice_step(0.0), 1.0);
        let steps = line_chart("Pas", "pas par jour", &[(at(0), 4_210.0), (at(1), 12_050.0)]);
        assert!(steps.contains(">5000<") && steps.contains(">15000<"), "{steps}");
    }

    #[test]
    fn a_bar_chart_has_two_bars_a_month_inside_the_plot() {
        let bars: Vec<Bar> = (1..=14)
            .map(|m| Bar {
                label: format!("{m:02}/25"),
                first: 3000 * m,
                second: 2100 * m,
            })
            .collect();
        let svg = bar_chart(
            "rb",
            "Remboursements <par mois>",
            "14 mois",
            ("Payé", "Remboursé"),
            &bars,
        );
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("Remboursements &lt;par mois&gt;"), "escaped");
        assert!(svg.contains("aria-labelledby=\"rb-t rb-d\""));
        // Two bars a month plus two legend squares.
        assert_eq!(svg.matches("<rect").count(), 14 * 2 + 2);
        assert!(svg.contains("<title>14/25 — Payé : 420,00\u{a0}€</title>"));
        // Every bar stands on the axis and within the plot.
        for r in svg.split("<rect x=\"").skip(1).take(28) {
            let nums: Vec<f64> = r
                .split('"')
                .filter_map(|p| p.parse::<f64>().ok())
                .take(4)
                .collect();
            let (x, y, w, h) = (nums[0], nums[1], nums[2], nums[3]);
            assert!(x >= LEFT && x + w <= W - RIGHT, "{r}");
            assert!(y >= TOP - 0.1 && (y + h - (H - BOTTOM)).abs() < 0.2, "{r}");
        }
        // Labels thinned out past 12 months.
        assert!(svg.contains(">01/25</text>") && !svg.contains(">02/25</text>"));
        let empty = bar_chart("rb", "R", "Aucun remboursement", ("a", "b"), &[]);
        assert!(empty.contains("Aucun remboursement</text>"));
    }

    /// Issue 32: an English page's charts speak English and write numbers and euros the
    /// English way; the French ones never show a decimal point or a leading euro sign.
    #[tokio::test]
    async fn charts_write_numbers_and_amounts_in_the_pages_language() {
        use crate::web::i18n::with_locale;
        let pts = [
            (Timestamp::from_unix_seconds(1_767_603_600), 72.5),
            (Timestamp::from_unix_seconds(1_767_690_000), 73.25),
        ];
        let bars = [Bar {
            label: "01/26".into(),
            first: 123_450,
            second: 98_000,
        }];
        let en = with_locale(Locale::En, async {
            (
                line_chart("Weight", "kg", &pts),
                line_chart("Weight", "kg", &[]),
                bar_chart("rb", "Reimbursements", "1 month", ("Paid", "Reimbursed"), &bars),
            )
        })
        .await;
        assert!(
            en.0.contains("2 measurements from 05/01/2026 to 06/01/2026; latest: 73.25 kg."),
            "{}",
            en.0
        );
        assert!(!en.0.contains("mesures") && !en.0.contains("73,25"), "{}", en.0);
        assert!(en.1.contains("No measurement in this period"), "{}", en.1);
        assert!(
            en.2.contains("<title>01/26 — Paid: €1,234.50</title>"),
            "{}",
            en.2
        );
        assert!(
            en.2.contains(">€1,000</text>") || en.2.contains(">€500</text>"),
            "{}",
            en.2
        );
        let fr = (
            line_chart("Poids", "kg", &pts),
            bar_chart("rb", "R", "1 mois", ("Payé", "Remboursé"), &bars),
        );
        assert!(fr.0.contains("dernière : 73,25 kg"), "{}", fr.0);
        assert!(
            fr.1.contains("<title>01/26 — Payé : 1\u{202f}234,50\u{a0}€</title>"),
            "{}",
            fr.1
        );
        assert!(!fr.1.contains(">€"), "{}", fr.1);
    }
}
