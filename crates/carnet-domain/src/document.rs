//! Documents of the shared medical record (SPEC DM-1..8): their metadata in the XDS shape, the
//! formats Carnet accepts and how a declared format is checked against the bytes, the reading
//! of a CDA R2 header (S-20: no DTD, no entities, bounded depth), the visibility rule of a
//! document kept for an announcement consultation (DM-6), and the ranking of a professional's
//! first view (DM-8). Pure: no I/O, time comes from the caller.

use serde::{Deserialize, Serialize};

use crate::access::{Author, Category, ItemFacts};
use crate::clock::Timestamp;

/// DM-6: a document kept from the holder becomes visible by itself after one month.
pub const NOT_VISIBLE_MAX_SECONDS: i64 = 30 * 24 * 3600;
/// DM-6: the holder is told within two weeks that a document awaits.
pub const WAITING_NOTICE_SECONDS: i64 = 14 * 24 * 3600;
/// DM-8: a professional's first view shows the current documents of the last two years.
pub const FIRST_VIEW_SECONDS: i64 = 2 * 365 * 24 * 3600 + 24 * 3600;

/// The formats a document may have (DM-1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Pdf,
    /// CDA R2 XML (CI-SIS formats; a PDF wrapped in CDA level 1 included).
    Cda,
    Jpeg,
    Png,
    Text,
}

impl Format {
    pub fn from_mime(mime: &str) -> Option<Format> {
        let base = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match base.as_str() {
            "application/pdf" => Some(Format::Pdf),
            "text/xml" | "application/xml" | "application/hl7-v3+xml" | "application/cda+xml" => {
                Some(Format::Cda)
            }
            "image/jpeg" => Some(Format::Jpeg),
            "image/png" => Some(Format::Png),
            "text/plain" => Some(Format::Text),
            _ => None,
        }
    }

    pub const fn mime(self) -> &'static str {
        match self {
            Format::Pdf => "application/pdf",
            Format::Cda => "text/xml",
            Format::Jpeg => "image/jpeg",
            Format::Png => "image/png",
            Format::Text => "text/plain; charset=utf-8",
        }
    }

    /// Whether a browser may show it inline (the preview of DM-1); CDA is offered as download.
    pub const fn previewable(self) -> bool {
        !matches!(self, Format::Cda)
    }
}

/// Why the content was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContentError {
    #[error("type non accepté / unsupported type '{0}' (PDF, CDA XML, JPEG, PNG, text)")]
    Unsupported(String),
    #[error("le contenu n'est pas un {0:?} valide / the content is not a valid {0:?}")]
    Mismatch(Format),
    #[error("document vide / empty document")]
    Empty,
    #[error("CDA refusé / CDA refused: {0}")]
    Cda(String),
}

/// Checks that `bytes` are what `format` says (a PDF must be a PDF, DM-1). Truncated files are
/// refused where the format has an end marker (PDF `%%EOF`, PNG `IEND`, JPEG `EOI`).
pub fn check_content(format: Format, bytes: &[u8]) -> Result<(), ContentError> {
    if bytes.is_empty() {
        return Err(ContentError::Empty);
    }
    let ok = match format {
        Format::Pdf => {
            let tail = &bytes[bytes.len().saturating_sub(1024)..];
            bytes.starts_with(b"%PDF-") && tail.windows(5).any(|w| w == b"%%EOF")
        }
        Format::Png => {
            bytes.starts_with(b"\x89PNG\r\n\x1a\n")
                && bytes.len() >= 20
                && bytes[bytes.len() - 8..bytes.len() - 4] == *b"IEND"
        }
        Format::Jpeg => bytes.starts_with(&[0xFF, 0xD8, 0xFF]) && bytes.ends_with(&[0xFF, 0xD9]),
        Format::Text => std::str::from_utf8(bytes).is_ok() && !bytes.contains(&0),
        Format::Cda => {
            read_cda_header(bytes)?;
            true
        }
    };
    if ok {
        Ok(())
    } else {
        Err(ContentError::Mismatch(format))
    }
}

/// What a CDA header tells about the document (fills metadata the uploader left out).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CdaHeader {
    pub title: Option<String>,
    /// `ClinicalDocument/code/@code` (LOINC) and its display name.
    pub type_code: Option<String>,
    pub type_display: Option<String>,
    /// `effectiveTime/@value` (HL7 TS, e.g. `20250312` or `20250312143000+0100`).
    pub effective_time: Option<String>,
    /// `confidentialityCode/@code` (N, R, V).
    pub confidentiality: Option<String>,
    /// The patient's INS (`recordTarget/patientRole/id/@extension` under the NIR OID).
    pub patient_ins: Option<String>,
}

/// Deepest element nesting a CDA may have (S-20).
pub const CDA_MAX_DEPTH: usize = 64;
const NIR_OID: &str = "1.2.250.1.213.1.4.8";

/// Reads a CDA R2 header safely (S-20): a document type declaration (hence any entity
/// definition) is refused, entity references other than the five XML ones are refused,
/// nothing is ever fetched, and nesting is bounded.
pub fn read_cda_header(bytes: &[u8]) -> Result<CdaHeader, ContentError> {
    use quick_xml::events::Event;
    let bad = |m: &str| ContentError::Cda(m.to_string());
    let mut reader = cda_reader(bytes)?;
    let mut path: Vec<String> = Vec::new();
    let mut header = CdaHeader::default();
    let mut saw_root = false;
    let mut in_title = false;
    loop {
        let ev = next_event(&mut reader)?;
        match ev {
            Event::DocType(_) => return Err(bad("a DTD is not allowed")),
            Event::GeneralRef(r) => {
                let s = entity_text(r.as_ref())?;
                if in_title {
                    header.title.get_or_insert_with(String::new).push_str(&s);
                }
            }
            Event::Start(e) if !saw_root => {
                if local(e.name().as_ref()) != "ClinicalDocument" {
                    return Err(bad("the root element is not ClinicalDocument"));
                }
                saw_root = true;
                path.push("ClinicalDocument".into());
            }
            Event::Empty(_) if !saw_root => return Err(bad("an empty ClinicalDocument")),
            Event::Start(_) | Event::Empty(_) if path.is_empty() => {
                return Err(bad("content after the ClinicalDocument element"));
            }
            Event::Start(e) => {
                let name = local(e.name().as_ref()).to_string();
                path.push(name);
                if path.len() > CDA_MAX_DEPTH {
                    return Err(ContentError::Cda(format!("nesting deeper than {CDA_MAX_DEPTH}")));
                }
                header_attrs(&path, &e, &mut header);
                in_title = path_is(&path, &["ClinicalDocument", "title"]);
            }
            Event::Empty(e) => {
                path.push(local(e.name().as_ref()).to_string());
                header_attrs(&path, &e, &mut header);
                path.pop();
            }
            Event::End(_) => {
                path.pop();
                in_title = false;
            }
            Event::Text(t) if in_title => {
                let s = t.decode().map_err(|_| bad("bad text"))?;
                header.title.get_or_insert_with(String::new).push_str(&s);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_root {
        return Err(bad("no ClinicalDocument element"));
    }
    if !path.is_empty() {
        return Err(bad("truncated document"));
    }
    if let Some(t) = &mut header.title {
        *t = t.split_whitespace().collect::<Vec<_>>().join(" ");
    }
    Ok(header)
}

/// One section of a CDA body as people read it: its title and its narrative text.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CdaSection {
    pub title: String,
    pub text: String,
}

/// The narrative of a CDA R2 document (its sections' titles and `text` blocks), for a
/// professional to read it in the page (issue 33, DM-8), with the same safety as
/// [`read_cda_header`] (S-20): no DTD, no unknown entity, bounded nesting. Paragraphs, list
/// items, table rows and line breaks end a line; table cells are separated by " · ". A CDA
/// with no structured body (level 1, a wrapped PDF) gives no section.
pub fn read_cda_sections(bytes: &[u8]) -> Result<Vec<CdaSection>, ContentError> {
    use quick_xml::events::Event;
    let bad = |m: &str| ContentError::Cda(m.to_string());
    let mut reader = cda_reader(bytes)?;
    let mut path: Vec<String> = Vec::new();
    let mut sections: Vec<CdaSection> = Vec::new();
    // Indexes in `sections` of the sections open, innermost last.
    let mut open: Vec<usize> = Vec::new();
    let push = |sections: &mut Vec<CdaSection>, open: &[usize], path: &[String], s: &str| {
        let Some(&i) = open.last() else { return };
        let parent = path.iter().rposition(|p| p == "section").map(|k| path.get(k + 1));
        match parent.flatten().map(String::as_str) {
            Some("title") => sections[i].title.push_str(s),
            Some("text") => sections[i].text.push_str(s),
            _ => {}
        }
    };
    loop {
        let ev = next_event(&mut reader)?;
        match ev {
            Event::DocType(_) => return Err(bad("a DTD is not allowed")),
            Event::GeneralRef(r) => {
                let s = entity_text(r.as_ref())?;
                push(&mut sections, &open, &path, &s);
            }
            Event::Start(e) => {
                let name = local(e.name().as_ref()).to_string();
                if name == "section" {
                    sections.push(CdaSection::default());
                    open.push(sections.len() - 1);
                }
                path.push(name);
                if path.len() > CDA_MAX_DEPTH {
                    return Err(ContentError::Cda(format!("nesting deeper than {CDA_MAX_DEPTH}")));
                }
            }
            Event::Empty(e) if local(e.name().as_ref()) == "br" => {
                push(&mut sections, &open, &path, "\n");
            }
            Event::End(_) => {
                let Some(name) = path.pop() else {
                    return Err(bad("unbalanced XML"));
                };
                match name.as_str() {
                    "section" => {
                        open.pop();
                    }
                    "paragraph" | "item" | "tr" | "caption" => push(&mut sections, &open, &path, "\n"),
                    "td" | "th" => push(&mut sections, &open, &path, " · "),
                    _ => {}
                }
            }
            Event::Text(t) => {
                let s = t.decode().map_err(|_| bad("bad text"))?;
                push(&mut sections, &open, &path, &s);
            }
            Event::CData(t) => {
                let s = String::from_utf8_lossy(t.as_ref()).to_string();
                push(&mut sections, &open, &path, &s);
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !path.is_empty() {
        return Err(bad("truncated document"));
    }
    for s in &mut sections {
        s.title = s.title.split_whitespace().collect::<Vec<_>>().join(" ");
        s.text = s
            .text
            .lines()
            .map(|l| {
                let l = l.split_whitespace().collect::<Vec<_>>().join(" ");
                l.trim_end_matches(" ·").trim_end_matches('·').trim().to_string()
            })
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n");
    }
    sections.retain(|s| !s.title.is_empty() || !s.text.is_empty());
    Ok(sections)
}

/// A reader over a CDA's text: UTF-8 only, end names checked (S-20).
fn cda_reader(bytes: &[u8]) -> Result<quick_xml::Reader<&[u8]>, ContentError> {
    let text = std::str::from_utf8(bytes).map_err(|_| ContentError::Cda("not UTF-8".into()))?;
    let mut reader = quick_xml::Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    Ok(reader)
}

/// The next event of a CDA, a syntax error said with its position.
fn next_event<'a>(
    reader: &mut quick_xml::Reader<&'a [u8]>,
) -> Result<quick_xml::events::Event<'a>, ContentError> {
    reader
        .read_event()
        .map_err(|e| ContentError::Cda(format!("malformed XML at byte {}: {e}", reader.buffer_position())))
}

/// The text of an entity reference in a CDA (S-20): the five XML ones and character
/// references; any other is refused (it could only come from a DTD, which is refused too).
fn entity_text(name: &[u8]) -> Result<String, ContentError> {
    let name = String::from_utf8_lossy(name);
    let text = match name.as_ref() {
        "lt" => "<".to_string(),
        "gt" => ">".to_string(),
        "amp" => "&".to_string(),
        "apos" => "'".to_string(),
        "quot" => "\"".to_string(),
        n if n.starts_with('#') => {
            let code = n
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .unwrap_or_else(|| n[1..].parse::<u32>());
            code.ok()
                .and_then(char::from_u32)
                .map(String::from)
                .unwrap_or_default()
        }
        _ => return Err(ContentError::Cda(format!("unknown entity &{name};"))),
    };
    Ok(text)
}

fn local(name: &[u8]) -> &str {
    let s = std::str::from_utf8(name).unwrap_or("");
    s.rsplit(':').next().unwrap_or(s)
}

fn path_is(path: &[String], want: &[&str]) -> bool {
    path.len() == want.len() && path.iter().zip(want).all(|(a, b)| a == b)
}

fn attr(e: &quick_xml::events::BytesStart<'_>, name: &str) -> Option<String> {
    e.attributes()
        .flatten()
        .find(|a| local(a.key.as_ref()) == name)
        .and_then(|a| {
            a.normalized_value(quick_xml::XmlVersion::Implicit1_0)
                .ok()
                .map(|v| v.to_string())
        })
}

fn header_attrs(path: &[String], e: &quick_xml::events::BytesStart<'_>, h: &mut CdaHeader) {
    if path_is(path, &["ClinicalDocument", "code"]) {
        h.type_code = attr(e, "code");
        h.type_display = attr(e, "displayName");
    } else if path_is(path, &["ClinicalDocument", "effectiveTime"]) {
        h.effective_time = attr(e, "value");
    } else if path_is(path, &["ClinicalDocument", "confidentialityCode"]) {
        h.confidentiality = attr(e, "code");
    } else if path_is(path, &["ClinicalDocument", "recordTarget", "patientRole", "id"])
        && attr(e, "root").as_deref() == Some(NIR_OID)
    {
        h.patient_ins = attr(e, "extension");
    }
}

/// XDS-like status of a document (DM-1, DM-3).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Approved,
    /// Replaced by a newer version; kept in the history.
    Deprecated,
    Archived,
}

impl Status {
    pub const fn tag(self) -> &'static str {
        match self {
            Status::Approved => "approved",
            Status::Deprecated => "deprecated",
            Status::Archived => "archived",
        }
    }
    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "approved" => Some(Status::Approved),
            "deprecated" => Some(Status::Deprecated),
            "archived" => Some(Status::Archived),
            _ => None,
        }
    }
}

/// The holder's request that the author delete their document (DM-4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeletionRequest {
    pub reason: String,
    pub at: Timestamp,
    /// `None` while the author has not answered; `Some(false)` when refused.
    pub accepted: Option<bool>,
}

/// A document's metadata (XDS shape, DM-1). Sealed with the holder's key in its row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DocumentMeta {
    pub title: String,
    /// The class, which is also the habilitation category (AC-1).
    pub class: Category,
    /// Type code (LOINC) and display.
    pub type_code: Option<String>,
    pub type_display: Option<String>,
    /// Date of the act (`serviceStartTime`), ISO date.
    pub event_date: Option<String>,
    pub author: Author,
    /// Display name of the author and organisation (at deposit time).
    pub author_name: String,
    pub organisation: Option<String>,
    pub uploaded_at: Timestamp,
    /// XDS confidentiality code: N (normal), R (restricted), V (very restricted).
    pub confidentiality: String,
    pub format: Format,
    pub mime: String,
    pub size: u64,
    /// SHA-256 of the content, hex (XDS `hash`).
    pub sha256: String,
    pub filename: String,
    /// DM-5: masked by the holder from professionals.
    #[serde(default)]
    pub masked: bool,
    /// MI-2: hidden from legal representatives.
    #[serde(default)]
    pub hidden_from_representatives: bool,
    /// DM-6: the instant the holder may see it (deposit time when visible at once).
    pub visible_from: Timestamp,
    /// The version this one replaced (DM-3).
    #[serde(default)]
    pub replaces: Option<String>,
    #[serde(default)]
    pub deletion_request: Option<DeletionRequest>,
    /// LC-8: imported from the holder's former DMP, whose XDS uniqueId this was (`None` for a
    /// document deposited in Carnet, whose id is its own).
    #[serde(default)]
    pub legacy_unique_id: Option<String>,
    /// DM-1's XDS metadata as an IHE MHD Document Source sent it (empty otherwise).
    #[serde(default, skip_serializing_if = "XdsMeta::is_empty")]
    pub xds: XdsMeta,
}

/// XDS metadata of DM-1 beyond what every document has, kept as the depositor's system sent it
/// (IHE MHD ITI-65): shown back in the DocumentReference, never decided on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XdsMeta {
    /// XDS `uniqueId` (`DocumentReference.masterIdentifier`): `urn:oid:…` or `urn:uuid:…`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unique_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub facility_type: Option<XdsCode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub practice_setting: Option<XdsCode>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub event_codes: Vec<XdsCode>,
    /// `serviceStopTime` (`context.period.end`), as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_end: Option<String>,
    /// The legal authenticator, as named (`DocumentReference.authenticator`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub legal_authenticator: Option<String>,
    /// The `uniqueId` of the SubmissionSet it came in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub submission_set: Option<String>,
}

impl XdsMeta {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// A coded value of XDS metadata (a FHIR `Coding`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct XdsCode {
    pub system: String,
    pub code: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl DocumentMeta {
    /// DM-6: visible once its time came; a visible document never becomes invisible again.
    pub fn visible_to_holder(&self, now: Timestamp) -> bool {
        now >= self.visible_from
    }

    /// What the access policy needs to know of this document.
    pub fn facts(&self, now: Timestamp) -> ItemFacts {
        ItemFacts {
            category: self.class,
            author: self.author.clone(),
            masked: self.masked,
            hidden_from_representatives: self.hidden_from_representatives,
            visible_to_holder: self.visible_to_holder(now),
        }
    }

    /// Whether the title contains `needle` (case- and accent-insensitive).
    pub fn title_matches(&self, needle: &str) -> bool {
        fold(&self.title).contains(&fold(needle))
    }
}

/// DM-6: when a document deposited now becomes visible, if the professional keeps it for an
/// announcement consultation (`hold`); at most one month.
pub fn visible_from(now: Timestamp, hold: bool) -> Timestamp {
    if hold {
        now.plus_seconds(NOT_VISIBLE_MAX_SECONDS)
    } else {
        now
    }
}

/// Parses a calendar date written `YYYY-MM-DD` (XDS `serviceStartTime` as a manifest gives it).
pub fn parse_iso_date(s: &str) -> Option<time::Date> {
    let format = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(s.trim(), format).ok()
}

/// Parses an XDS `creationTime`: HL7 DTM in UTC (`YYYYMMDD[HH[MM[SS]]]`, as XDS.b writes it),
/// RFC 3339 (`2019-03-12T10:15:00+01:00`) or a bare date `YYYY-MM-DD` (midnight UTC).
pub fn parse_xds_time(s: &str) -> Option<Timestamp> {
    use time::{Date, Month, PrimitiveDateTime, Time};
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some(Timestamp::from_offset_date_time(t));
    }
    if let Some(d) = parse_iso_date(s) {
        return Some(Timestamp::from_offset_date_time(d.midnight().assume_utc()));
    }
    if !s.bytes().all(|b| b.is_ascii_digit()) || !matches!(s.len(), 8 | 10 | 12 | 14) {
        return None;
    }
    let n = |r: std::ops::Range<usize>| s.get(r).and_then(|x| x.parse::<u16>().ok());
    let part = |r: std::ops::Range<usize>| if s.len() >= r.end { n(r) } else { Some(0) };
    let date = Date::from_calendar_date(
        i32::from(n(0..4)?),
        Month::try_from(u8::try_from(n(4..6)?).ok()?).ok()?,
        u8::try_from(n(6..8)?).ok()?,
    )
    .ok()?;
    let time = Time::from_hms(
        u8::try_from(part(8..10)?).ok()?,
        u8::try_from(part(10..12)?).ok()?,
        u8::try_from(part(12..14)?).ok()?,
    )
    .ok()?;
    Some(Timestamp::from_offset_date_time(
        PrimitiveDateTime::new(date, time).assume_utc(),
    ))
}

/// Lower case, accents removed (the common French ones), for title search.
pub fn fold(s: &str) -> String {
    s.chars()
        .flat_map(char::to_lowercase)
        .map(|c| match c {
            'à' | 'â' | 'ä' | 'á' => 'a',
            'é' | 'è' | 'ê' | 'ë' => 'e',
            'î' | 'ï' | 'í' => 'i',
            'ô' | 'ö' | 'ó' => 'o',
            'ù' | 'û' | 'ü' | 'ú' => 'u',
            'ç' => 'c',
            'ÿ' => 'y',
            other => other,
        })
        .collect()
}

/// Common document types (LOINC) of shared medical records, with the names French
/// clinicians use: what a page shows when the depositor gave no display name, and the choices
/// of the record's search by type (DM-8).
pub const DOCUMENT_TYPES: &[(&str, &str)] = &[
    ("11488-4", "Compte rendu de consultation"),
    ("34133-9", "Synthèse d'épisode de soins"),
    ("18842-5", "Compte rendu de sortie"),
    ("60591-5", "Synthèse médicale"),
    ("11502-2", "Compte rendu d'examens biologiques"),
    ("18748-4", "Compte rendu d'imagerie médicale"),
    ("11526-1", "Compte rendu d'anatomie et de cytologie pathologiques"),
    ("11504-8", "Compte rendu opératoire"),
    ("28570-0", "Compte rendu d'acte"),
    ("11506-3", "Note d'évolution"),
    ("57833-6", "Prescription de médicaments"),
    ("57832-8", "Prescription d'examens ou de soins"),
    ("11369-6", "Historique des vaccinations"),
    ("87273-9", "Note de vaccination"),
    (
        "34794-8",
        "Compte rendu de réunion de concertation pluridisciplinaire",
    ),
    ("51851-4", "Note administrative"),
];

/// The French name of a document type (LOINC), if it is a common one.
pub fn type_label(code: &str) -> Option<&'static str> {
    DOCUMENT_TYPES
        .iter()
        .find(|(c, _)| *c == code.trim())
        .map(|(_, label)| *label)
}

/// Vaccination notes are always part of the first view (DM-8): LOINC 11369-6 (immunization
/// history) and 87273-9 (immunization note).
pub fn is_vaccination(meta: &DocumentMeta) -> bool {
    is_vaccination_type(meta.type_code.as_deref())
}

/// Whether a document type code (LOINC) is a vaccination record.
pub fn is_vaccination_type(type_code: Option<&str>) -> bool {
    matches!(type_code, Some("11369-6" | "87273-9"))
}

/// DM-8: relevance of a document for a professional's first view, or `None` if it does not
/// belong there (not current, or older than two years and not a vaccination). Higher first:
/// summaries, then reports and results, then the rest; newer first within a rank.
pub fn first_view_rank(meta: &DocumentMeta, status: Status, now: Timestamp) -> Option<(u8, Timestamp)> {
    first_view_rank_of(
        meta.class,
        meta.type_code.as_deref(),
        meta.uploaded_at,
        status,
        now,
    )
}

/// [`first_view_rank`] from the few facts it reads (a listing ranks without the rest of the
/// metadata).
pub fn first_view_rank_of(
    class: Category,
    type_code: Option<&str>,
    uploaded_at: Timestamp,
    status: Status,
    now: Timestamp,
) -> Option<(u8, Timestamp)> {
    if status != Status::Approved {
        return None;
    }
    let vaccination = is_vaccination_type(type_code);
    let recent = uploaded_at >= now.plus_seconds(-FIRST_VIEW_SECONDS);
    if !recent && !vaccination {
        return None;
    }
    let weight = match class {
        Category::Summaries => 5,
        Category::Reports | Category::Imaging => 4,
        Category::Prescriptions | Category::CarePlans => 3,
        _ if vaccination => 3,
        Category::Dispensations | Category::AdministeredTreatments | Category::Certificates => 2,
        _ => 1,
    };
    Some((weight, uploaded_at))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_types_have_french_names_and_codes_are_unique() {
        assert_eq!(type_label(" 11488-4"), Some("Compte rendu de consultation"));
        assert_eq!(type_label("99999-9"), None);
        let mut codes: Vec<&str> = DOCUMENT_TYPES.iter().map(|(c, _)| *c).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), DOCUMENT_TYPES.len());
        assert!(
            DOCUMENT_TYPES
                .iter()
                .all(|(c, _)| is_vaccination_type(Some(c))
                    == (c.starts_with("11369") || c.starts_with("87273")))
        );
    }

    #[test]
    fn cda_sections_read_as_text_s20() {
        let xml = r#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3"><title>CR</title><component><structuredBody>
<component><section><title>Motif</title><text><paragraph>Douleur  thoracique</paragraph><paragraph>depuis 2&#160;jours &amp; fièvre</paragraph></text>
<component><section><title>Traitement</title><text><list><item>Paracétamol 1 g</item><item>Repos</item></list>
<table><tr><th>Examen</th><th>Résultat</th></tr><tr><td>CRP</td><td>12 mg/L</td></tr></table></text></section></component>
</section></component></structuredBody></component></ClinicalDocument>"#;
        let s = read_cda_sections(xml.as_bytes()).unwrap();
        assert_eq!(s.len(), 2);
        assert_eq!(s[0].title, "Motif");
        // Character references are read; whitespace, no-break spaces included, collapses.
        assert_eq!(s[0].text, "Douleur thoracique\ndepuis 2 jours & fièvre");
        assert_eq!(s[1].title, "Traitement");
        assert_eq!(
            s[1].text,
            "Paracétamol 1 g\nRepos\nExamen · Résultat\nCRP · 12 mg/L"
        );
        // The same refusals as the header (S-20).
        assert!(
            read_cda_sections(b"<!DOCTYPE x [<!ENTITY e SYSTEM 'file:///etc/passwd'>]><ClinicalDocument/>")
                .is_err()
        );
        assert!(
            read_cda_sections(b"<ClinicalDocument><section><text>&e;</text></section></ClinicalDocument>")
                .is_err()
        );
        assert!(read_cda_sections(b"<ClinicalDocument><section>").is_err());
        let deep = format!(
            "<ClinicalDocument>{}{}</ClinicalDocument>",
            "<a>".repeat(100),
            "</a>".repeat(100)
        );
        assert!(read_cda_sections(deep.as_bytes()).is_err());
    }

    const CDA: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<ClinicalDocument xmlns="urn:hl7-org:v3">
  <code code="11490-0" codeSystem="2.16.840.1.113883.6.1" displayName="Lettre de sortie"/>
  <title>Compte rendu &amp; lettre</title>
  <effectiveTime value="20250312143000+0100"/>
  <confidentialityCode code="N"/>
  <recordTarget><patientRole><id root="1.2.250.1.213.1.4.8" extension="255081416802538"/></patientRole></recordTarget>
  <component><structuredBody/></component>
</ClinicalDocument>"#;

    #[test]
    fn cda_header_is_read() {
        let h = read_cda_header(CDA.as_bytes()).unwrap();
        assert_eq!(h.type_code.as_deref(), Some("11490-0"));
        assert_eq!(h.type_display.as_deref(), Some("Lettre de sortie"));
        assert_eq!(h.title.as_deref(), Some("Compte rendu & lettre"));
        assert_eq!(h.effective_time.as_deref(), Some("20250312143000+0100"));
        assert_eq!(h.confidentiality.as_deref(), Some("N"));
        assert_eq!(h.patient_ins.as_deref(), Some("255081416802538"));
    }

    /// S-20: a DTD (and so any entity definition, internal or external) is refused.
    #[test]
    fn s20_cda_with_dtd_or_entities_is_refused() {
        let xxe = r#"<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "http://127.0.0.1:9/x">]><ClinicalDocument>&e;</ClinicalDocument>"#;
        assert!(matches!(read_cda_header(xxe.as_bytes()), Err(ContentError::Cda(m)) if m.contains("DTD")));
        let undeclared = "<ClinicalDocument><title>&e;</title></ClinicalDocument>";
        assert!(read_cda_header(undeclared.as_bytes()).is_err());
        let deep = format!(
            "<ClinicalDocument>{}{}</ClinicalDocument>",
            "<a>".repeat(100),
            "</a>".repeat(100)
        );
        assert!(
            matches!(read_cda_header(deep.as_bytes()), Err(ContentError::Cda(m)) if m.contains("deeper"))
        );
    }

    #[test]
    fn malformed_or_truncated_cda_is_refused() {
        assert!(read_cda_header(&CDA.as_bytes()[..CDA.len() - 30]).is_err());
        assert!(read_cda_header(b"<html><body/></html>").is_err());
        assert!(read_cda_header(b"<ClinicalDocument><a></b></ClinicalDocument>").is_err());
        assert!(check_content(Format::Cda, b"not xml at all").is_err());
    }

    #[test]
    fn content_must_match_its_declared_format() {
        let pdf = b"%PDF-1.7\n1 0 obj\n<<>>\nendobj\ntrailer\n%%EOF\n";
        assert!(check_content(Format::Pdf, pdf).is_ok());
        // Truncated: no end marker.
        assert_eq!(
            check_content(Format::Pdf, &pdf[..20]),
            Err(ContentError::Mismatch(Format::Pdf))
        );
        // A PNG declared as PDF.
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\0IEND\xaeB`\x82";
        assert!(check_content(Format::Png, png).is_ok());
        assert!(check_content(Format::Pdf, png).is_err());
        assert!(check_content(Format::Jpeg, &[0xFF, 0xD8, 0xFF, 0xE0, 0, 0xFF, 0xD9]).is_ok());
        assert!(check_content(Format::Jpeg, &[0xFF, 0xD8, 0xFF, 0xE0, 0]).is_err());
        assert!(check_content(Format::Text, "Ordonnance : paracétamol".as_bytes()).is_ok());
        assert!(check_content(Format::Text, b"\xff\xfe bin").is_err());
        assert_eq!(check_content(Format::Text, b""), Err(ContentError::Empty));
        assert_eq!(Format::from_mime("application/pdf; x=y"), Some(Format::Pdf));
        assert_eq!(Format::from_mime("application/zip"), None);
    }

    fn meta(class: Category, uploaded: Timestamp) -> DocumentMeta {
        DocumentMeta {
            title: "Échographie abdominale".into(),
            class,
            type_code: None,
            type_display: None,
            event_date: None,
            author: Author::Holder,
            author_name: String::new(),
            organisation: None,
            uploaded_at: uploaded,
            confidentiality: "N".into(),
            format: Format::Pdf,
            mime: "application/pdf".into(),
            size: 1,
            sha256: String::new(),
            filename: "x.pdf".into(),
            masked: false,
            hidden_from_representatives: false,
            visible_from: uploaded,
            replaces: None,
            deletion_request: None,
            legacy_unique_id: None,
            xds: Default::default(),
        }
    }

    #[test]
    fn xds_times_and_dates_are_read() {
        let t = Timestamp::from_unix_seconds(1_552_385_700); // 2019-03-12 10:15:00 UTC
        assert_eq!(parse_xds_time("20190312101500"), Some(t));
        assert_eq!(parse_xds_time("2019-03-12T11:15:00+01:00"), Some(t));
        assert_eq!(parse_xds_time("2019-03-12T10:15:00Z"), Some(t));
        assert_eq!(parse_xds_time("201903121015"), Some(t));
        assert_eq!(
            parse_xds_time("2019-03-12"),
            Some(Timestamp::from_unix_seconds(1_552_348_800))
        );
        assert_eq!(parse_xds_time("20190312"), parse_xds_time("2019-03-12"));
        for bad in ["", "2019", "20191312", "2019031225", "12/03/2019", "20190230"] {
            assert_eq!(parse_xds_time(bad), None, "{bad}");
        }
        assert!(parse_iso_date("2019-03-12").is_some());
        assert!(parse_iso_date("2019-3-12").is_none());
        assert!(parse_iso_date("2019-02-30").is_none());
    }

    /// DM-6 with the injected clock: kept at most one month, and visible for good afterwards.
    #[test]
    fn dm6_hold_lasts_one_month_at_most() {
        let t0 = Timestamp::from_micros(1_700_000_000_000_000);
        let mut m = meta(Category::Reports, t0);
        m.visible_from = visible_from(t0, true);
        assert!(!m.visible_to_holder(t0));
        assert!(!m.visible_to_holder(t0.plus_seconds(NOT_VISIBLE_MAX_SECONDS - 1)));
        assert!(m.visible_to_holder(t0.plus_seconds(NOT_VISIBLE_MAX_SECONDS)));
        assert!(!m.facts(t0).visible_to_holder);
        assert_eq!(visible_from(t0, false), t0);
    }

    #[test]
    fn title_search_ignores_case_and_accents() {
        let m = meta(Category::Imaging, Timestamp::from_micros(0));
        assert!(m.title_matches("echographie"));
        assert!(m.title_matches("ABDO"));
        assert!(!m.title_matches("scanner"));
    }

    /// DM-8: current documents of the last two years, vaccinations always, summaries first.
    #[test]
    fn dm8_first_view_ranks_and_filters() {
        let now = Timestamp::from_micros(1_800_000_000_000_000);
        let old = now.plus_seconds(-3 * 365 * 24 * 3600);
        let recent = now.plus_seconds(-30 * 24 * 3600);
        assert!(first_view_rank(&meta(Category::Reports, old), Status::Approved, now).is_none());
        let mut vax = meta(Category::Reports, old);
        vax.type_code = Some("11369-6".into());
        assert!(first_view_rank(&vax, Status::Approved, now).is_some());
        assert!(first_view_rank(&meta(Category::Reports, recent), Status::Deprecated, now).is_none());
        let s = first_view_rank(&meta(Category::Summaries, recent), Status::Approved, now).unwrap();
        let r = first_view_rank(&meta(Category::Reports, now), Status::Approved, now).unwrap();
        assert!(s > r, "a summary ranks before a newer report");
    }
}
