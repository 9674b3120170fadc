//! `carnet import roster FILE`: creates the spaces of the insurer's roster (SPEC LC-1, ID-1)
//! from CSV (comma or semicolon separated, with a header line) or a FHIR Bundle of Patient.
//! Bad lines are reported with their line number and reason and do not stop the good ones;
//! re-importing the same roster creates nothing (idempotent on the INS).

use std::collections::HashSet;
use std::io::Write;
use std::path::Path;
use std::time::Instant;

use anyhow::{Context, Result};
use carnet_domain::roster::{RawRosterLine, RosterRecord};
use carnet_domain::{Clock, SystemClock};
use carnet_store::Store;
use carnet_store::roster::RosterOutcome;
use indicatif::{ProgressBar, ProgressStyle};

const BATCH: usize = 1000;

#[derive(Debug, Default)]
pub struct Summary {
    pub read: u64,
    pub created: u64,
    pub existing: u64,
    pub rejected: Vec<(u64, String)>,
    pub linked: u64,
}

struct Importer<'a> {
    store: &'a Store,
    batch: Vec<(u64, RosterRecord)>,
    links: Vec<(u64, RosterRecord)>,
    seen: HashSet<String>,
    summary: Summary,
}

impl Importer<'_> {
    async fn push(&mut self, line: u64, raw: Result<RawRosterLine, String>) -> Result<()> {
        self.summary.read += 1;
        match raw.and_then(|r| r.validate(SystemClock.now())) {
            Ok(rec) => {
                if !self.seen.insert(rec.admin.ins.as_str().to_string()) {
                    self.summary
                        .rejected
                        .push((line, "ins: duplicate of an earlier line of this file".into()));
                    return Ok(());
                }
                self.batch.push((line, rec));
                if self.batch.len() >= BATCH {
                    self.flush().await?;
                }
            }
            Err(reason) => self.summary.rejected.push((line, reason)),
        }
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let records: Vec<RosterRecord> = self.batch.iter().map(|(_, r)| r.clone()).collect();
        let outcomes = self
            .store
            .import_roster_batch(&records)
            .await
            .context("importing a batch")?;
        for o in outcomes {
            match o {
                RosterOutcome::Created { .. } => self.summary.created += 1,
                RosterOutcome::Existing { .. } => self.summary.existing += 1,
            }
        }
        for (line, rec) in self.batch.drain(..) {
            if rec.representative_ins.is_some() {
                self.links.push((line, rec));
            }
        }
        Ok(())
    }

    /// Links minors to their representatives once every line is in (a parent may come after
    /// the child in the file).
    async fn link(&mut self) -> Result<()> {
        for (line, rec) in std::mem::take(&mut self.links) {
            let Some(rep_ins) = &rec.representative_ins else {
                continue;
            };
            let child = self.store.find_by_ins(&rec.admin.ins).await?;
            let rep = self.store.find_by_ins(rep_ins).await?;
            match (child, rep) {
                (Some(c), Some(r)) => {
                    self.store
                        .link_representative(c, r, rec.representative_kind.tag())
                        .await?;
                    self.summary.linked += 1;
                }
                _ => self.summary.rejected.push((
                    line,
                    "representative_ins: no space exists for this INS; the space was created unlinked".into(),
                )),
            }
        }
        Ok(())
    }
}

/// A CSV reader over `bytes` (comma or semicolon separated, as French spreadsheets write them,
/// told by the header line) and its header.
fn csv_reader(bytes: &[u8]) -> Result<(csv::Reader<&[u8]>, csv::StringRecord)> {
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let delimiter = if first_line.contains(&b';') { b';' } else { b',' };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let headers = rdr.headers().context("reading the CSV header line")?.clone();
    Ok((rdr, headers))
}

fn progress(len: u64) -> ProgressBar {
    let pb = ProgressBar::new(len);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {percent}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

pub async fn roster(store: &Store, path: &Path, rejects_file: Option<&Path>) -> Result<Summary> {
    let started = Instant::now();
    let meta = std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut imp = Importer {
        store,
        batch: Vec::new(),
        links: Vec::new(),
        seen: HashSet::new(),
        summary: Summary::default(),
    };
    let pb = progress(meta.len());
    let is_json = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    if is_json {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
        let bundle: serde_json::Value =
            serde_json::from_str(&text).with_context(|| format!("{} is not valid JSON", path.display()))?;
        let lines = carnet_fhir::patient::roster_lines_from_bundle(&bundle)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        pb.set_length(lines.len() as u64);
        for (entry, raw) in lines {
            imp.push(entry as u64, raw).await?;
            pb.inc(1);
        }
    } else {
        let head = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let (mut rdr, headers) = csv_reader(&head)?;
        for required in ["ins", "birth_name", "given_names", "sex", "birth_date"] {
            if !headers.iter().any(|h| h == required) {
                anyhow::bail!(
                    "{}: the header line has no column \"{required}\" (columns: ins, birth_name, used_name, \
                     given_names, sex, birth_date, birth_place, address, email, phone, representative_ins, \
                     representative_kind, card_serial)",
                    path.display()
                );
            }
        }
        let mut record = csv::StringRecord::new();
        loop {
            let line = rdr.position().line() + 1;
            match rdr.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    let raw = record
                        .deserialize::<RawRosterLine>(Some(&headers))
                        .map_err(|e| format!("cannot read the line: {e}"));
                    let line = record.position().map_or(line, |p| p.line());
                    imp.push(line, raw).await?;
                }
                Err(e) => imp.push(line, Err(format!("cannot read the line: {e}"))).await?,
            }
            if imp.summary.read.is_multiple_of(1000) {
                pb.set_position(rdr.position().byte());
                pb.set_message(format!("{} lines", imp.summary.read));
            }
        }
    }
    imp.flush().await?;
    imp.link().await?;
    pb.finish_and_clear();
    let mut summary = imp.summary;
    summary.rejected.sort_by_key(|(l, _)| *l);
    if let Some(f) = rejects_file {
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(f).with_context(|| format!("cannot write {}", f.display()))?,
        );
        writeln!(w, "line,reason")?;
        for (line, reason) in &summary.rejected {
            writeln!(w, "{line},\"{}\"", reason.replace('"', "\"\""))?;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    for (line, reason) in summary.rejected.iter().take(100) {
        eprintln!("line {line}: {reason}");
    }
    if summary.rejected.len() > 100 {
        eprintln!(
            "... and {} more rejected lines (use --rejects FILE for all)",
            summary.rejected.len() - 100
        );
    }
    println!(
        "roster import: {} lines read, {} spaces created, {} already present, {} rejected, {} linked to a representative ({:.1} s, {:.0} lines/s)",
        summary.read,
        summary.created,
        summary.existing,
        summary.rejected.len(),
        summary.linked,
        secs,
        summary.read as f64 / secs.max(1e-9)
    );
    Ok(summary)
}

/// A line of the professionals directory file.
#[derive(Debug, serde::Deserialize)]
struct ProLine {
    rpps: String,
    family_name: String,
    given_name: String,
    profession: String,
    #[serde(default)]
    specialty: String,
    #[serde(default)]
    role: String,
    #[serde(default)]
    finess: String,
    #[serde(default)]
    organisation_name: String,
}

fn validate_pro(
    l: ProLine,
    matrix: &carnet_domain::access::HabilitationMatrix,
) -> Result<carnet_store::directory::Professional, String> {
    use carnet_domain::access::PracticeRole;
    let rpps = l.rpps.trim();
    if rpps.len() != 11 || !rpps.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("rpps: '{rpps}' is not 11 digits"));
    }
    let profession = l.profession.trim().to_lowercase();
    if !matrix.professions().any(|p| p == profession) {
        return Err(format!(
            "profession: '{profession}' is not in the habilitation matrix"
        ));
    }
    let role = match l.role.trim() {
        "" | "care" => PracticeRole::Care,
        "regulation" => PracticeRole::Regulation,
        "occupational" => PracticeRole::Occupational,
        other => return Err(format!("role: '{other}' is not care, regulation or occupational")),
    };
    let finess = l.finess.trim();
    if !finess.is_empty() && (finess.len() != 9 || !finess.bytes().all(|b| b.is_ascii_alphanumeric())) {
        return Err(format!("finess: '{finess}' is not 9 characters"));
    }
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    if l.family_name.trim().is_empty() {
        return Err("family_name: missing".into());
    }
    Ok(carnet_store::directory::Professional {
        rpps: rpps.to_string(),
        family_name: l.family_name.trim().to_string(),
        given_name: l.given_name.trim().to_string(),
        profession,
        specialty: opt(&l.specialty),
        role,
        finess: opt(finess),
        organisation_name: opt(&l.organisation_name),
    })
}

/// A FHIR Bundle of Practitioner / PractitionerRole / Organization (`carnet_fhir::practitioner`),
/// each record checked as a CSV line would be.
async fn professionals_from_fhir(
    store: &Store,
    path: &Path,
    bytes: &[u8],
    matrix: &carnet_domain::access::HabilitationMatrix,
) -> Result<(u64, Vec<(u64, String)>)> {
    let json: serde_json::Value =
        serde_json::from_slice(bytes).with_context(|| format!("{}: not valid JSON", path.display()))?;
    let records = carnet_fhir::practitioner::professionals_from_bundle(&json)
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut ok = Vec::new();
    let mut rejected = Vec::new();
    for (n, (label, r)) in records.into_iter().enumerate() {
        let checked = r.and_then(|r| {
            validate_pro(
                ProLine {
                    rpps: r.rpps,
                    family_name: r.family_name,
                    given_name: r.given_name,
                    profession: r.profession,
                    specialty: r.specialty,
                    role: r.role,
                    finess: r.finess,
                    organisation_name: r.organisation_name,
                },
                matrix,
            )
        });
        match checked {
            Ok(p) => ok.push(p),
            Err(reason) => {
                eprintln!("{label}: {reason}");
                rejected.push((n as u64 + 1, format!("{label}: {reason}")));
            }
        }
    }
    for chunk in ok.chunks(BATCH) {
        store.upsert_professionals(chunk).await?;
    }
    println!(
        "professionals import: {} professionals imported or updated, {} rejected",
        ok.len(),
        rejected.len()
    );
    Ok((ok.len() as u64, rejected))
}

/// `carnet import professionals FILE`: the directory of professionals (issue 4), CSV with a
/// header line, or a FHIR Bundle (JSON). Idempotent (upsert on the RPPS number).
pub async fn professionals(
    store: &Store,
    path: &Path,
    matrix: &carnet_domain::access::HabilitationMatrix,
) -> Result<(u64, Vec<(u64, String)>)> {
    let head = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return professionals_from_fhir(store, path, &head, matrix).await;
    }
    let (mut rdr, headers) = csv_reader(&head)?;
    for required in ["rpps", "family_name", "given_name", "profession"] {
        if !headers.iter().any(|h| h == required) {
            anyhow::bail!("{}: the header line has no column \"{required}\"", path.display());
        }
    }
    let mut ok = Vec::new();
    let mut rejected = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut imported = 0;
    loop {
        let line = rdr.position().line() + 1;
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line, |p| p.line());
                match record
                    .deserialize::<ProLine>(Some(&headers))
                    .map_err(|e| format!("cannot read the line: {e}"))
                    .and_then(|l| validate_pro(l, matrix))
                {
                    Ok(p) => ok.push(p),
                    Err(reason) => rejected.push((line, reason)),
                }
            }
            Err(e) => rejected.push((line, format!("cannot read the line: {e}"))),
        }
        if ok.len() >= BATCH {
            store.upsert_professionals(&ok).await?;
            imported += ok.len() as u64;
            ok.clear();
        }
    }
    store.upsert_professionals(&ok).await?;
    imported += ok.len() as u64;
    for (line, reason) in rejected.iter().take(100) {
        eprintln!("line {line}: {reason}");
    }
    println!(
        "professionals import: {imported} professionals imported or updated, {} rejected",
        rejected.len()
    );
    Ok((imported, rejected))
}
