//! The reimbursement feed's benchmark (issue 8 target: a 10,000-line feed imports in under a
//! second): `cargo bench -p carnet-store --bench reimbursements`. Set
//! CARNET_BENCH_DATABASE_URL=postgres://... to also run on PostgreSQL.
//!
//! - parsing and validating a 10,000-line CSV feed for 1,000 holders (pure domain);
//! - importing it through the gate (INS blind index, one decision, key and trace per space,
//!   sealed rows in multi-row inserts): lines/s;
//! - importing it again (idempotent: every line found present, nothing written);
//! - one holder's listing with totals and months.
//!
//! Prints one line per measure; results are recorded in BENCHMARKS.md.
#![allow(clippy::disallowed_methods)] // tests and benches read the clock and the environment

mod support;

use std::time::Instant;

use carnet_domain::access::{Actor, HabilitationMatrix};
use carnet_domain::reimbursement::{FEED_COLUMNS, Filter, by_month, parse_csv_feed, totals};
use carnet_domain::roster::RawRosterLine;
use carnet_domain::{Clock, SystemClock};
use carnet_store::Store;
use carnet_store::gate::Gate;
use carnet_store::roster::RosterOutcome;

const HOLDERS: u64 = 1_000;
const LINES: u64 = 10_000;

fn ins_for(n: u64) -> String {
    let nir = format!("1{:012}", 850_275_000_000 + n);
    let k = carnet_domain::ins::nir_key(&nir).expect("nir");
    format!("{nir}{k:02}")
}

/// The feed: 10 lines per holder over the last 23 months, a mix of care types and amounts.
fn feed(now: carnet_domain::Timestamp, run: &str) -> String {
    const CARE: [&str; 6] = [
        "consultation",
        "pharmacy",
        "biology",
        "imaging",
        "paramedical",
        "dental",
    ];
    let mut out = FEED_COLUMNS.join(",");
    out.push('\n');
    for i in 0..LINES {
        let h = i % HOLDERS;
        let date = now.plus_seconds(-(((i * 7) % 690) as i64 + 1) * 86_400);
        let paid = 1_000 + (i * 37) % 9_000;
        out.push_str(&format!(
            "{},{run}-{i:06},{},{},C{},Acte {i},Dr Bench {},{:011},{}.{:02},{}.{:02}\n",
            ins_for(h),
            &date.to_rfc3339()[..10],
            CARE[(i % 6) as usize],
            i % 50,
            i % 300,
            10_000_000_000u64 + i % 300,
            paid / 100,
            paid % 100,
            paid * 7 / 1000,
            (paid * 7 / 10) % 100,
        ));
    }
    out
}

async fn run(label: &str, store: Store) {
    let gate = Gate::new(store.clone(), HabilitationMatrix::default_matrix());
    let now = SystemClock.now();
    let records: Vec<_> = (0..HOLDERS)
        .map(|n| {
            RawRosterLine {
                ins: ins_for(n),
                birth_name: format!("BENCH{n}"),
                given_names: "Alex".into(),
                sex: "U".into(),
                birth_date: "1980-01-01".into(),
                ..RawRosterLine::default()
            }
            .validate(now)
            .expect("roster line")
        })
        .collect();
    let mut holders = Vec::new();
    for chunk in records.chunks(500) {
        for o in store.import_roster_batch(chunk).await.expect("roster") {
            if let RosterOutcome::Created { id, .. } = o {
                holders.push(id);
            }
        }
    }
    let text = feed(now, "L");

    let t = Instant::now();
    let raw = parse_csv_feed(text.as_bytes()).expect("feed");
    let lines: Vec<_> = raw
        .into_iter()
        .map(|(n, r)| (n, r.and_then(|r| r.validate(now)).expect("valid line")))
        .collect();
    let parse = t.elapsed().as_secs_f64();
    println!(
        "[{label}] parse + validate {LINES} CSV lines: {:.0} ms ({:.0} lines/s)",
        parse * 1e3,
        LINES as f64 / parse
    );

    let t = Instant::now();
    let report = gate.import_reimbursements(lines.clone()).await.expect("import");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!(
        (report.imported, report.rejected.len(), report.holders),
        (LINES, 0, HOLDERS)
    );
    println!(
        "[{label}] import {LINES} lines for {HOLDERS} holders: {:.0} ms ({:.0} lines/s); with parsing {:.0} ms",
        secs * 1e3,
        LINES as f64 / secs,
        (secs + parse) * 1e3
    );

    let t = Instant::now();
    let again = gate.import_reimbursements(lines).await.expect("re-import");
    let secs = t.elapsed().as_secs_f64();
    assert_eq!((again.imported, again.present), (0, LINES));
    println!(
        "[{label}] the same feed again (idempotent, nothing written): {:.0} ms ({:.0} lines/s)",
        secs * 1e3,
        LINES as f64 / secs
    );

    // The spaces are informed (the feed fills them already); the holder reads once activated.
    let h = holders[0];
    store
        .transition(h, carnet_domain::Event::Activate)
        .await
        .expect("activate");
    let me = Actor::Holder { id: h };
    let t = Instant::now();
    let runs = 200;
    for _ in 0..runs {
        let l = gate
            .list_reimbursements(h, &me, &Filter::default(), &Default::default())
            .await
            .expect("list");
        std::hint::black_box((
            totals(l.iter().map(|r| &r.line)),
            by_month(l.iter().map(|r| &r.line)),
        ));
    }
    println!(
        "[{label}] one holder's listing (10 lines) with totals and months: {:.0} µs",
        t.elapsed().as_secs_f64() * 1e6 / f64::from(runs)
    );
}

fn main() {
    support::on_both_engines("rb", run);
}
