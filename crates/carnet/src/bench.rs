//! `carnet bench populate` (issue 10, item 1): fills a data directory — SQLite or PostgreSQL,
//! whatever the configuration says — with N synthetic holders for load tests, through the same
//! bulk paths and gate as production:
//!
//! - N spaces from a synthetic roster (`import_roster_batch`, 1,000 per transaction; idempotent on
//!   the INS, so a second run with a larger N adds the difference);
//! - one in `--every` of them activated with real records: the bench professional as médecin
//!   traitant, documents of several sizes (1 KiB text, 16 KiB PDF, 200 KiB PDF, cycling) deposited
//!   by that professional through `Gate::deposit_document` (sealed rows, blobs, traces, notices),
//!   profile entries (a condition, an allergy, a treatment), a year of weight and blood-pressure
//!   measurements in one batch, and a read of the record by the professional (more traces).
//!
//! Synthetic people only: INS from a reserved range (birth department 99, "born abroad"),
//! names `BENCH…`; never data of real people.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context as _, Result};
use carnet_domain::access::{Actor, Category, Context, PracticeRole, ProfessionalId};
use carnet_domain::profile::{CodeSystem, Coding, EntryInput, MeasurementInput, Section};
use carnet_domain::roster::RawRosterLine;
use carnet_domain::{Clock, Event, HolderId, SystemClock};
use carnet_store::Store;
use carnet_store::directory::Professional;
use carnet_store::documents::{DocumentFilter, NewDocument};
use carnet_store::gate::Gate;
use carnet_store::roster::RosterOutcome;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};

/// The bench professional (RPPS of the reserved test range).
pub const BENCH_RPPS: &str = "10000000099";

/// A synthetic INS, distinct for every `n` below 70,000,000: sex 1, born in June of 1930 +
/// (n / 1,000,000), department 99 (born abroad), commune and order from n % 1,000,000.
pub fn bench_ins(n: u64) -> String {
    let nir = format!("1{:02}0699{:06}", 30 + (n / 1_000_000) % 70, n % 1_000_000);
    let key = 97 - nir.parse::<u64>().unwrap_or(0) % 97;
    format!("{nir}{key:02}")
}

pub struct Options {
    pub holders: u64,
    /// One holder in `every` gets activated with records (0: none).
    pub every: u64,
    pub documents: usize,
    pub concurrency: usize,
    /// Gives the spaces with records an e-mail address `bench{n}@{domain}`, so that the
    /// notices of professionals' accesses go out by mail (the deployment drill counts them).
    pub email_domain: Option<String>,
}

#[derive(Default, Debug)]
pub struct Report {
    pub created: u64,
    pub existing: u64,
    pub with_records: u64,
    pub documents: u64,
    pub entries: u64,
    pub measurements: u64,
}

fn bar(len: u64, what: &'static str) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template(&format!(
            "{{bar:40}} {{pos}}/{{len}} {what} ({{per_sec}}, {{eta}} left)"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

fn pdf(size: usize, n: usize) -> Vec<u8> {
    let mut b = format!("%PDF-1.7\n% Carnet bench document {n}\n").into_bytes();
    while b.len() + 6 < size {
        b.extend_from_slice(b"0123456789abcdef bench filler line\n");
    }
    b.extend_from_slice(b"%%EOF\n");
    b
}

async fn records(
    gate: &Gate,
    store: &Store,
    h: HolderId,
    pro: &Actor,
    docs: usize,
) -> Result<(u64, u64, u64)> {
    let ctx = Context::default();
    store.transition(h, Event::Activate).await?;
    gate.holder_side(h, &Actor::Holder { id: h })
        .await?
        .context("the holder's own space")?
        .update_access_policy(|p| p.medecin_traitant = Some(ProfessionalId(BENCH_RPPS.into())))
        .await?;
    for d in 0..docs {
        let (mime, bytes, class) = match d % 3 {
            0 => (
                "text/plain",
                format!("Compte rendu de consultation {d}. ")
                    .repeat(30)
                    .into_bytes(),
                Category::Reports,
            ),
            1 => ("application/pdf", pdf(16 * 1024, d), Category::Prescriptions),
            _ => ("application/pdf", pdf(200 * 1024, d), Category::Imaging),
        };
        gate.deposit_document(
            h,
            pro,
            NewDocument {
                title: Some(format!("Document de test {d}")),
                class: Some(class),
                mime: mime.into(),
                author_name: "Dr Pat BENCH".into(),
                ..NewDocument::default()
            },
            bytes,
            &ctx,
        )
        .await?;
    }
    let entries = [
        (
            Section::Conditions,
            "Hypertension artérielle",
            CodeSystem::Icd10,
            "I10",
        ),
        (
            Section::Allergies,
            "Allergie à la pénicilline",
            CodeSystem::Atc,
            "J01CE01",
        ),
        (Section::Treatments, "Amlodipine 5 mg", CodeSystem::Atc, "C08CA01"),
    ];
    for (section, text, system, code) in entries {
        gate.add_profile_entry(
            h,
            pro,
            EntryInput {
                section,
                text: text.into(),
                code: Some(Coding {
                    system,
                    code: code.into(),
                    display: None,
                }),
                date: Some("2024-05".into()),
                end_date: None,
                value: None,
                contact: None,
                note: None,
            },
            "Dr Pat BENCH",
            &ctx,
        )
        .await?;
    }
    let mut batch = Vec::new();
    for m in 1..=12u32 {
        let at = format!("2025-{m:02}-15T08:00:00Z");
        batch.push(MeasurementInput {
            code: "29463-7".into(),
            value: 70.0 + f64::from(m % 5),
            unit: "kg".into(),
            at: at.clone(),
        });
        batch.push(MeasurementInput {
            code: "8480-6".into(),
            value: 120.0 + f64::from(m % 9),
            unit: "mm[Hg]".into(),
            at,
        });
    }
    let measurements = gate.add_measurements(h, pro, &batch, &ctx).await? as u64;
    // A consultation of the record: traced and notified like any professional's read.
    gate.list_documents(h, pro, &DocumentFilter::default(), &ctx)
        .await?;
    Ok((docs as u64, entries.len() as u64, measurements))
}

pub async fn populate(store: &Store, o: &Options) -> Result<Report> {
    let mut report = Report::default();
    let now = SystemClock.now();
    let t = Instant::now();
    let pb = bar(o.holders, "spaces");
    let mut active = Vec::new();
    for start in (0..o.holders).step_by(1000) {
        let end = (start + 1000).min(o.holders);
        let batch: Vec<_> = (start..end)
            .map(|i| {
                RawRosterLine {
                    ins: bench_ins(i),
                    birth_name: format!("BENCH{i}"),
                    given_names: "Alex".into(),
                    sex: "U".into(),
                    birth_date: "1985-06-15".into(),
                    email: match &o.email_domain {
                        Some(d) if o.every > 0 && i % o.every == 0 => format!("bench{i}@{d}"),
                        _ => String::new(),
                    },
                    ..RawRosterLine::default()
                }
                .validate(now)
                .map_err(|e| anyhow::anyhow!("synthetic line {i}: {e}"))
            })
            .collect::<Result<_>>()?;
        for (i, outcome) in (start..end).zip(store.import_roster_batch(&batch).await?) {
            match outcome {
                RosterOutcome::Created { id, .. } => {
                    report.created += 1;
                    if o.every > 0 && i % o.every == 0 {
                        active.push(id);
                    }
                }
                _ => report.existing += 1,
            }
        }
        pb.set_position(end);
    }
    pb.finish_and_clear();
    println!(
        "{} spaces created, {} already there, in {:.1} s",
        report.created,
        report.existing,
        t.elapsed().as_secs_f64()
    );
    if active.is_empty() {
        return Ok(report);
    }
    store
        .upsert_professionals(&[Professional {
            rpps: BENCH_RPPS.into(),
            family_name: "BENCH".into(),
            given_name: "Pat".into(),
            profession: "medecin".into(),
            specialty: None,
            role: PracticeRole::Care,
            finess: None,
            organisation_name: None,
            town: None,
        }])
        .await?;
    let gate = Arc::new(Gate::new(
        store.clone(),
        carnet_domain::access::HabilitationMatrix::default_matrix(),
    ));
    let pro = Actor::Professional {
        id: ProfessionalId(BENCH_RPPS.into()),
        profession: "medecin".into(),
        role: PracticeRole::Care,
    };
    let t = Instant::now();
    let pb = bar(active.len() as u64, "spaces with records");
    let mut results = futures::stream::iter(active.into_iter().map(|h| {
        let (gate, store, pro) = (gate.clone(), store.clone(), pro.clone());
        let docs = o.documents;
        async move {
            records(&gate, &store, h, &pro, docs)
                .await
                .with_context(|| format!("records of {h}"))
        }
    }))
    .buffer_unordered(o.concurrency.max(1));
    while let Some(r) = results.next().await {
        let (d, e, m) = r?;
        report.with_records += 1;
        report.documents += d;
        report.entries += e;
        report.measurements += m;
        pb.inc(1);
    }
    pb.finish_and_clear();
    let secs = t.elapsed().as_secs_f64();
    println!(
        "{} spaces activated with {} documents, {} profile entries, {} measurements in {:.1} s ({:.0} documents/s)",
        report.with_records,
        report.documents,
        report.entries,
        report.measurements,
        secs,
        report.documents as f64 / secs.max(0.001)
    );
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bench_ins_are_valid_and_distinct() {
        let mut seen = std::collections::BTreeSet::new();
        for n in 0..5000 {
            let ins = bench_ins(n);
            assert!(carnet_domain::Ins::parse(&ins).is_ok(), "{ins}");
            assert!(seen.insert(ins), "{n}");
        }
    }
}
