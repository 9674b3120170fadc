//! `carnet import roster FILE`: creates the spaces of the insurer's roster (SPEC LC-1, ID-1)
//! from CSV (comma or semicolon separated, with a header line) or a FHIR Bundle of Patient.
//! Bad lines are reported with their line number and reason and do not stop the good ones;
//! re-importing the same roster creates nothing (idempotent on the INS).
//!
//! `carnet import legacy MANIFEST`: files the documents of former DMPs in their holders'
//! spaces (SPEC LC-8), through the gate; same reporting, idempotent on the XDS uniqueId.
//!
//! `carnet import reimbursements FILE`: files the insurer's reimbursement feed (SPEC RB-1), CSV
//! or a FHIR Bundle of ExplanationOfBenefit told by content, through the gate in batches; same
//! reporting, idempotent on (INS, line id).

use std::collections::{HashMap, HashSet};
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
    /// MI-4: curators named by the roster, not linked (they assist; the person acts alone).
    pub curators: u64,
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
            // MI-4: a curatorship assists the person without representing them in the space.
            if !rec.representative_kind.represents() {
                self.summary.curators += 1;
                continue;
            }
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
    report_rejects(&mut summary.rejected, rejects_file)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "roster import: {} lines read, {} spaces created, {} already present, {} rejected, {} linked to a representative, {} curators not linked (MI-4) ({:.1} s, {:.0} lines/s)",
        summary.read,
        summary.created,
        summary.existing,
        summary.rejected.len(),
        summary.linked,
        summary.curators,
        secs,
        summary.read as f64 / secs.max(1e-9)
    );
    Ok(summary)
}

/// Sorts the rejected lines, writes them all to `rejects_file` (CSV `line,reason`) if given,
/// and prints the first 100.
fn report_rejects(rejected: &mut [(u64, String)], rejects_file: Option<&Path>) -> Result<()> {
    rejected.sort_by_key(|(l, _)| *l);
    if let Some(f) = rejects_file {
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(f).with_context(|| format!("cannot write {}", f.display()))?,
        );
        writeln!(w, "line,reason")?;
        for (line, reason) in rejected.iter() {
            writeln!(w, "{line},\"{}\"", reason.replace('"', "\"\""))?;
        }
        w.flush()
            .with_context(|| format!("cannot write {}", f.display()))?;
    }
    for (line, reason) in rejected.iter().take(100) {
        eprintln!("line {line}: {reason}");
    }
    if rejected.len() > 100 {
        eprintln!(
            "... and {} more rejected lines (use --rejects FILE for all)",
            rejected.len() - 100
        );
    }
    Ok(())
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
    /// The practice's town (issue 32: found by town).
    #[serde(default)]
    town: String,
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
        town: opt(&l.town),
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
                    town: r.town,
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

// ---- legacy DMP documents (LC-8) ----

/// The columns of a legacy manifest, in the documented order (README "Legacy import (LC-8)").
pub const LEGACY_COLUMNS: &str = "ins, unique_id, file, mime, title, class, type_code, event_date, \
creation_time, author_rpps, author_name, organisation, confidentiality, sha256, size";

const LEGACY_REQUIRED: [&str; 8] = [
    "ins",
    "unique_id",
    "file",
    "mime",
    "title",
    "class",
    "author_rpps",
    "author_name",
];

/// A line of a legacy manifest: the XDS metadata of one document of a former DMP.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
struct LegacyLine {
    ins: String,
    unique_id: String,
    file: String,
    mime: String,
    title: String,
    class: String,
    type_code: String,
    event_date: String,
    creation_time: String,
    author_rpps: String,
    author_name: String,
    organisation: String,
    confidentiality: String,
    sha256: String,
    size: String,
}

/// A line checked on its own (before the holder, the file and the gate are consulted).
struct LegacyEntry {
    ins: carnet_domain::Ins,
    file: std::path::PathBuf,
    sha256: Option<String>,
    size: Option<u64>,
    doc: carnet_store::documents::LegacyDocument,
}

fn validate_legacy(l: LegacyLine, now: carnet_domain::Timestamp) -> Result<LegacyEntry, String> {
    use carnet_domain::access::{Category, ProfessionalId};
    use carnet_domain::document::{Format, parse_iso_date, parse_xds_time};
    let opt = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_string());
    let ins = carnet_domain::Ins::parse(&l.ins).map_err(|e| format!("ins: {e}"))?;
    if l.unique_id.trim().is_empty() {
        return Err("unique_id: missing".into());
    }
    let file = std::path::PathBuf::from(l.file.trim());
    if file.as_os_str().is_empty() {
        return Err("file: missing".into());
    }
    if file
        .components()
        .any(|c| !matches!(c, std::path::Component::Normal(_) | std::path::Component::CurDir))
    {
        return Err(format!(
            "file: '{}' is not a path inside the manifest's directory",
            l.file.trim()
        ));
    }
    if Format::from_mime(&l.mime).is_none() {
        return Err(format!(
            "mime: '{}' is not accepted (application/pdf, text/xml, image/jpeg, image/png, text/plain)",
            l.mime.trim()
        ));
    }
    if l.title.trim().is_empty() {
        return Err("title: missing".into());
    }
    let class = Category::parse(l.class.trim()).ok_or_else(|| {
        let tags: Vec<&str> = Category::ALL.iter().map(|c| c.tag()).collect();
        format!("class: '{}' is not one of {}", l.class.trim(), tags.join(", "))
    })?;
    let event_date = opt(&l.event_date);
    if let Some(d) = &event_date
        && parse_iso_date(d).is_none()
    {
        return Err(format!("event_date: '{d}' is not a date YYYY-MM-DD"));
    }
    let creation_time = match opt(&l.creation_time) {
        None => None,
        Some(t) => {
            let at = parse_xds_time(&t).ok_or_else(|| {
                format!("creation_time: '{t}' is not YYYYMMDDHHMMSS (UTC), RFC 3339 or YYYY-MM-DD")
            })?;
            if at > now {
                return Err(format!("creation_time: '{t}' is in the future"));
            }
            Some(at)
        }
    };
    if ProfessionalId::from_national_id(&l.author_rpps).is_none() {
        return Err(format!(
            "author_rpps: '{}' is not an RPPS number (11 digits, or 8 + 11 digits)",
            l.author_rpps.trim()
        ));
    }
    if l.author_name.trim().is_empty() {
        return Err("author_name: missing".into());
    }
    let confidentiality = opt(&l.confidentiality).map(|c| c.to_ascii_uppercase());
    if let Some(c) = &confidentiality
        && !matches!(c.as_str(), "N" | "R" | "V")
    {
        return Err(format!("confidentiality: '{c}' is not N, R or V"));
    }
    let sha256 = opt(&l.sha256).map(|h| h.to_ascii_lowercase());
    if let Some(h) = &sha256
        && (h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        return Err("sha256: not 64 hexadecimal characters".into());
    }
    let size = match opt(&l.size) {
        None => None,
        Some(s) => Some(
            s.parse::<u64>()
                .map_err(|_| format!("size: '{s}' is not a number of bytes"))?,
        ),
    };
    Ok(LegacyEntry {
        ins,
        sha256,
        size,
        doc: carnet_store::documents::LegacyDocument {
            unique_id: l.unique_id.trim().to_string(),
            author_rpps: l.author_rpps.trim().to_string(),
            creation_time,
            document: carnet_store::documents::NewDocument {
                title: Some(l.title.trim().to_string()),
                class: Some(class),
                type_code: opt(&l.type_code),
                event_date,
                confidentiality,
                mime: l.mime.trim().to_string(),
                filename: file.file_name().map(|f| f.to_string_lossy().to_string()),
                author_name: l.author_name.trim().to_string(),
                organisation: opt(&l.organisation),
                ..Default::default()
            },
        },
        file,
    })
}

/// What `carnet import legacy` did.
#[derive(Debug, Default)]
pub struct LegacySummary {
    pub imported: u64,
    pub present: u64,
    pub rejected: Vec<(u64, String)>,
}

enum LegacyResult {
    Imported,
    Present,
}

struct LegacyImporter<'a> {
    gate: &'a carnet_store::gate::Gate,
    base: std::path::PathBuf,
    limit_bytes: u64,
    /// INS -> its space (the blind-index lookup once per holder).
    holders: HashMap<String, Option<carnet_domain::HolderId>>,
}

impl LegacyImporter<'_> {
    /// One line: `Ok(Err(reason))` rejects it; `Err` stops the import (infrastructure).
    async fn line(&mut self, raw: Result<LegacyLine, String>) -> Result<Result<LegacyResult, String>> {
        use carnet_store::StoreError;
        use carnet_store::documents::LegacyOutcome;
        let entry = match raw.and_then(|l| validate_legacy(l, SystemClock.now())) {
            Ok(e) => e,
            Err(reason) => return Ok(Err(reason)),
        };
        let key = entry.ins.as_str().to_string();
        let holder = match self.holders.get(&key) {
            Some(h) => *h,
            None => {
                let h = self.gate.store().find_by_ins(&entry.ins).await?;
                self.holders.insert(key, h);
                h
            }
        };
        let Some(holder) = holder else {
            return Ok(Err("ins: no space has this INS".into()));
        };
        let shown = entry.file.display().to_string();
        let path = self.base.join(&entry.file);
        let len = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m.len(),
            Ok(_) => return Ok(Err(format!("file: '{shown}' is not a file"))),
            Err(e) => return Ok(Err(format!("file: cannot read '{shown}': {e}"))),
        };
        if len > self.limit_bytes {
            return Ok(Err(format!(
                "file: '{shown}' has {len} bytes, more than the document limit ({} bytes)",
                self.limit_bytes
            )));
        }
        if let Some(size) = entry.size
            && size != len
        {
            return Ok(Err(format!(
                "size: '{shown}' has {len} bytes, the manifest says {size}"
            )));
        }
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => return Ok(Err(format!("file: cannot read '{shown}': {e}"))),
        };
        if let Some(h) = &entry.sha256
            && carnet_store::crypto::sha256_hex(&bytes) != *h
        {
            return Ok(Err(format!(
                "sha256: the content of '{shown}' does not match the manifest's hash"
            )));
        }
        match self.gate.import_legacy_document(holder, entry.doc, bytes).await {
            Ok(LegacyOutcome::Imported(_)) => Ok(Ok(LegacyResult::Imported)),
            Ok(LegacyOutcome::AlreadyPresent(_)) => Ok(Ok(LegacyResult::Present)),
            Err(StoreError::NotFound) => Ok(Err(
                "ins: the holder objected, or the space is closed or erased: nothing imported (LC-8)".into(),
            )),
            Err(StoreError::Invalid(reason)) => Ok(Err(format!("'{shown}': {reason}"))),
            Err(StoreError::Conflict) => Ok(Err(
                "the space changed during the import: run the import again".into()
            )),
            Err(e) if e.is_unavailable() => Err(e).context("importing a legacy document"),
            Err(e) => Ok(Err(e.to_string())),
        }
    }
}

/// `carnet import legacy MANIFEST` (LC-8): reads the manifest (CSV with a header line, comma
/// or semicolon), checks each line, and files each document in its holder's space through
/// the gate. Rejected lines are reported with their number and reason and do not stop the
/// others; only an unreadable manifest (or an unavailable store) fails the command.
pub async fn legacy(
    gate: &carnet_store::gate::Gate,
    manifest: &Path,
    rejects_file: Option<&Path>,
    limit_bytes: u64,
) -> Result<LegacySummary> {
    let started = Instant::now();
    let text = std::fs::read(manifest).with_context(|| format!("cannot read {}", manifest.display()))?;
    let (mut rdr, headers) = csv_reader(&text)?;
    for required in LEGACY_REQUIRED {
        if !headers.iter().any(|h| h == required) {
            anyhow::bail!(
                "{}: the header line has no column \"{required}\" (columns: {LEGACY_COLUMNS})",
                manifest.display()
            );
        }
    }
    let mut lines: Vec<(u64, Result<LegacyLine, String>)> = Vec::new();
    let mut record = csv::StringRecord::new();
    loop {
        let line = rdr.position().line() + 1;
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                let line = record.position().map_or(line, |p| p.line());
                let raw = record
                    .deserialize::<LegacyLine>(Some(&headers))
                    .map_err(|e| format!("cannot read the line: {e}"));
                lines.push((line, raw));
            }
            Err(e) => lines.push((line, Err(format!("cannot read the line: {e}")))),
        }
    }
    let base = manifest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
        .to_path_buf();
    let mut imp = LegacyImporter {
        gate,
        base,
        limit_bytes,
        holders: HashMap::new(),
    };
    let mut summary = LegacySummary::default();
    let pb = progress(lines.len() as u64);
    for (line, raw) in lines {
        match imp.line(raw).await? {
            Ok(LegacyResult::Imported) => summary.imported += 1,
            Ok(LegacyResult::Present) => summary.present += 1,
            Err(reason) => summary.rejected.push((line, reason)),
        }
        pb.inc(1);
        pb.set_message(format!(
            "{} imported, {} already present, {} rejected",
            summary.imported,
            summary.present,
            summary.rejected.len()
        ));
    }
    pb.finish_and_clear();
    report_rejects(&mut summary.rejected, rejects_file)?;
    println!(
        "legacy import: {} documents imported, {} already present, {} rejected ({:.1} s)",
        summary.imported,
        summary.present,
        summary.rejected.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(summary)
}

/// What `carnet import reimbursements` did.
#[derive(Debug, Default)]
pub struct ReimbursementSummary {
    pub read: u64,
    pub imported: u64,
    pub present: u64,
    pub rejected: Vec<(u64, String)>,
}

/// Lines per call of the gate: one trace group commit and one row transaction each.
const FEED_BATCH: usize = 10_000;

/// `carnet import reimbursements FILE` (RB-1): reads the feed (CSV, or a FHIR Bundle of
/// ExplanationOfBenefit when the file is JSON), validates each line (amounts, dates within the
/// last 24 months), and files the good ones through the gate in batches. Rejected lines are
/// reported with their number (the CSV line, or the Bundle entry) and reason and change
/// nothing; only an unreadable feed (or an unavailable store) fails the command.
pub async fn reimbursements(
    gate: &carnet_store::gate::Gate,
    path: &Path,
    rejects_file: Option<&Path>,
) -> Result<ReimbursementSummary> {
    use carnet_domain::reimbursement::{FeedLine, RawReimbursementLine};
    let started = Instant::now();
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let body = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(&bytes);
    let is_json = body
        .iter()
        .find(|b| !b.is_ascii_whitespace())
        .is_some_and(|b| *b == b'{');
    let raw: Vec<(u64, Result<RawReimbursementLine, String>)> = if is_json {
        let json: serde_json::Value =
            serde_json::from_slice(body).with_context(|| format!("{} is not valid JSON", path.display()))?;
        carnet_fhir::eob::lines_from_bundle(&json).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    } else {
        carnet_domain::reimbursement::parse_csv_feed(body)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
    };
    let now = gate.store().now();
    let mut summary = ReimbursementSummary {
        read: raw.len() as u64,
        ..ReimbursementSummary::default()
    };
    let mut good: Vec<(u64, FeedLine)> = Vec::with_capacity(raw.len());
    for (line, r) in raw {
        match r.and_then(|r| r.validate(now)) {
            Ok(l) => good.push((line, l)),
            Err(reason) => summary.rejected.push((line, reason)),
        }
    }
    let pb = progress(good.len() as u64);
    for batch in good.chunks(FEED_BATCH) {
        let mut attempt = 0;
        let report = loop {
            match gate.import_reimbursements(batch.to_vec()).await {
                // A space changed state during the batch: decide it again.
                Err(carnet_store::StoreError::Conflict) if attempt < 3 => attempt += 1,
                r => break r.context("importing reimbursement lines")?,
            }
        };
        summary.imported += report.imported;
        summary.present += report.present;
        summary.rejected.extend(report.rejected);
        pb.inc(batch.len() as u64);
        pb.set_message(format!(
            "{} imported, {} already present, {} rejected",
            summary.imported,
            summary.present,
            summary.rejected.len()
        ));
    }
    pb.finish_and_clear();
    report_rejects(&mut summary.rejected, rejects_file)?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "reimbursement import: {} lines read, {} imported, {} already present, {} rejected ({:.1} s, {:.0} lines/s)",
        summary.read,
        summary.imported,
        summary.present,
        summary.rejected.len(),
        secs,
        summary.read as f64 / secs.max(1e-9)
    );
    Ok(summary)
}
