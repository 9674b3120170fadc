//! Server-rendered SVG charts of measurement series (SPEC PR-4): no script, readable without
//! a browser engine, accessible (`role="img"`, a title and a description with the last value).
//! Pure: points in, SVG text out.

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

fn day(t: Timestamp) -> String {
    t.to_rfc3339().chars().take(10).collect()
}

/// A number without trailing zeros (72.5, 120, 0.99).
fn num(v: f64) -> String {
    let s = format!("{v:.2}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
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
        out.push_str("<desc id=\"d\">Aucune mesure sur la période. / No measurement in this period.</desc>");
        out.push_str(&format!(
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">Aucune mesure sur la période</text></svg>",
            W / 2.0,
            H / 2.0
        ));
        return out;
    };
    out.push_str(&format!(
        "<desc id=\"d\">{} mesures du {} au {} ; dernière : {} {}.</desc>",
        points.len(),
        day(first.0),
        day(last.0),
        num(last.1),
        esc(unit)
    ));
    let (mut lo, mut hi) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(lo, hi), (_, v)| (lo.min(*v), hi.max(*v)));
    if (hi - lo).abs() < f64::EPSILON {
        lo -= 1.0;
        hi += 1.0;
    }
    let pad = (hi - lo) * 0.1;
    let (lo, hi) = (lo - pad, hi + pad);
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
    for i in 0..=4 {
        let v = lo + (hi - lo) * f64::from(i) / 4.0;
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
                "<circle cx=\"{:.1}\" cy=\"{:.1}\" r=\"3\" fill=\"#1f5fa8\"><title>{} : {} {}</title></circle>",
                x(*t),
                y(*v),
                day(*t),
                num(*v),
                esc(unit)
            ));
        }
    }
    out.push_str("</svg>");
    out
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
}
