//! Reimbursements by the compulsory health insurance (SPEC RB-1, RB-2): the lines of the
//! insurer's feed, their validation, the CSV feed format, and what the holder does with them
//! (filters, totals, sums by month, CSV export). Pure: amounts are integer euro cents (never
//! floats); "today" comes from a [`Timestamp`] the caller reads from its `Clock`.
//!
//! The insurer's CSV feed has one header line and these columns ([`FEED_COLUMNS`]), comma or
//! semicolon separated (told by the header line; a semicolon file may write `25,00`):
//!
//! ```text
//! ins,line_id,date_of_care,type_of_care,act_code,act_label,professional_name,professional_id,amount_paid,amount_reimbursed
//! 185027500000112,CPAM-2026-000001,2026-01-12,consultation,G,Consultation de médecine générale,Dr Martin,10003456789,30.00,21.00
//! ```
//!
//! `line_id` is the insurer's identifier of the line (re-sending it changes nothing: the import
//! is idempotent on it); `date_of_care` is `YYYY-MM-DD` within the last 24 months (RB-1);
//! `type_of_care` one of [`CareType`]'s tags (or its French word); `act_code`,
//! `professional_id` (RPPS, 11 digits, or FINESS, 9 characters) are optional; amounts are euros
//! with at most two decimals (`25`, `25.5`, `25.00`, `25,00`).

use crate::document::fold;
use serde::{Deserialize, Serialize};
use time::macros::format_description;
use time::{Date, Month};

use crate::clock::Timestamp;
use crate::ins::Ins;

/// RB-1: the space shows the last 24 months of reimbursements.
pub const RETENTION_MONTHS: u32 = 24;

/// The columns of the insurer's CSV feed, in the documented order.
pub const FEED_COLUMNS: [&str; 10] = [
    "ins",
    "line_id",
    "date_of_care",
    "type_of_care",
    "act_code",
    "act_label",
    "professional_name",
    "professional_id",
    "amount_paid",
    "amount_reimbursed",
];

/// The columns a feed must have (the others may be absent).
pub const FEED_REQUIRED: [&str; 6] = [
    "ins",
    "line_id",
    "date_of_care",
    "type_of_care",
    "amount_paid",
    "amount_reimbursed",
];

/// The largest amount of one line we accept: 10 million euros, in cents (a hospital stay
/// costs far less; anything above is a feed error, and sums of many lines stay far from
/// `i64::MAX`).
pub const MAX_AMOUNT_CENTS: i64 = 1_000_000_000;

/// The type of care of a line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CareType {
    Consultation,
    Pharmacy,
    Biology,
    Imaging,
    Hospital,
    Dental,
    Optical,
    Paramedical,
    Other,
}

impl CareType {
    pub const ALL: [CareType; 9] = [
        CareType::Consultation,
        CareType::Pharmacy,
        CareType::Biology,
        CareType::Imaging,
        CareType::Hospital,
        CareType::Dental,
        CareType::Optical,
        CareType::Paramedical,
        CareType::Other,
    ];

    /// Stable tag (feed, API, stored): never change an existing value.
    pub const fn tag(self) -> &'static str {
        match self {
            CareType::Consultation => "consultation",
            CareType::Pharmacy => "pharmacy",
            CareType::Biology => "biology",
            CareType::Imaging => "imaging",
            CareType::Hospital => "hospital",
            CareType::Dental => "dental",
            CareType::Optical => "optical",
            CareType::Paramedical => "paramedical",
            CareType::Other => "other",
        }
    }

    /// The French word (the feed may use it; the web page shows it).
    pub const fn french(self) -> &'static str {
        match self {
            CareType::Consultation => "consultation",
            CareType::Pharmacy => "pharmacie",
            CareType::Biology => "biologie",
            CareType::Imaging => "imagerie",
            CareType::Hospital => "hôpital",
            CareType::Dental => "dentaire",
            CareType::Optical => "optique",
            CareType::Paramedical => "paramédical",
            CareType::Other => "autre",
        }
    }

    /// A tag or French word, case and accents aside (`Pharmacie`, `hopital`, `HOSPITAL`).
    pub fn parse(s: &str) -> Option<CareType> {
        let s = fold(s.trim());
        if s == "hospitalisation" {
            return Some(CareType::Hospital);
        }
        CareType::ALL
            .into_iter()
            .find(|c| c.tag() == s || fold(c.french()) == s)
    }
}

/// Who gave the care.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Professional {
    pub name: String,
    /// RPPS (11 digits) of a professional or FINESS (9 characters) of an establishment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
}

/// A validated line (what is sealed in the holder's space).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReimbursementLine {
    /// The insurer's identifier of the line.
    pub line_id: String,
    #[serde(with = "iso_date")]
    pub date_of_care: Date,
    pub care_type: CareType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub act_code: Option<String>,
    pub act_label: String,
    pub professional: Professional,
    /// What the care cost, in euro cents.
    pub paid_cents: i64,
    /// What the compulsory insurance paid back, in euro cents.
    pub reimbursed_cents: i64,
}

impl ReimbursementLine {
    /// What is left to the holder (or their complementary insurance): paid - reimbursed.
    pub const fn remaining_cents(&self) -> i64 {
        self.paid_cents - self.reimbursed_cents
    }
}

/// Dates as `YYYY-MM-DD`.
pub mod iso_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(d: &Date, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::format_date(*d))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Date, D::Error> {
        let text = String::deserialize(d)?;
        super::parse_date(&text).ok_or_else(|| serde::de::Error::custom("not a date YYYY-MM-DD"))
    }
}

/// `YYYY-MM-DD`.
pub fn format_date(d: Date) -> String {
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Parses `YYYY-MM-DD`.
pub fn parse_date(s: &str) -> Option<Date> {
    Date::parse(s.trim(), format_description!("[year]-[month]-[day]")).ok()
}

/// A line of the feed as read (every field text), before validation.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RawReimbursementLine {
    pub ins: String,
    pub line_id: String,
    pub date_of_care: String,
    pub type_of_care: String,
    pub act_code: String,
    pub act_label: String,
    pub professional_name: String,
    pub professional_id: String,
    pub amount_paid: String,
    pub amount_reimbursed: String,
}

/// A validated line of the feed: whose space it goes to, and the line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedLine {
    pub ins: Ins,
    pub line: ReimbursementLine,
}

/// Parses an amount in euros (`25`, `25.5`, `25.00`, `25,00`, optional leading `-`) into
/// cents, exactly (no floating point). At most two decimals.
pub fn parse_amount(s: &str) -> Result<i64, String> {
    let t = s.trim().replace(' ', "");
    if t.is_empty() {
        return Err("missing".into());
    }
    let (neg, body) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.as_str()),
    };
    let (euros, decimals) = match body.split_once(['.', ',']) {
        Some((e, d)) => (e, d),
        None => (body, ""),
    };
    let digits = |x: &str| !x.is_empty() && x.bytes().all(|b| b.is_ascii_digit());
    if !digits(euros) || !(decimals.is_empty() || digits(decimals)) || body.ends_with(['.', ',']) {
        return Err(format!("'{}' is not an amount in euros like 25.00", s.trim()));
    }
    if decimals.len() > 2 {
        return Err(format!("'{}' has more than two decimals", s.trim()));
    }
    if euros.len() > 12 {
        return Err(format!("'{}' is too large", s.trim()));
    }
    let e: i64 = euros
        .parse()
        .map_err(|_| format!("'{}' is too large", s.trim()))?;
    let c: i64 = match decimals.len() {
        0 => 0,
        1 => i64::from(decimals.as_bytes()[0] - b'0') * 10,
        _ => decimals.parse().unwrap_or(0),
    };
    let cents = e * 100 + c;
    Ok(if neg { -cents } else { cents })
}

/// Formats cents as euros with two decimals and a point: `2500` → `25.00`, `-5` → `-0.05`.
pub fn format_amount(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let abs = cents.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Formats cents the French way: `1234567` → `12 345,67 €` (narrow no-break space between
/// thousands, a comma before the cents).
pub fn format_amount_fr(cents: i64) -> String {
    let plain = format_amount(cents);
    let (int, dec) = plain.split_once('.').unwrap_or((&plain, "00"));
    let (sign, digits) = match int.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", int),
    };
    let mut grouped = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push('\u{202f}');
        }
        grouped.push(ch);
    }
    format!("{sign}{grouped},{dec}\u{a0}€")
}

/// The oldest date of care the space keeps on `today`: the same day 24 months earlier (RB-1),
/// the last day of that month when it has fewer days (29 February).
pub fn oldest_kept(today: Date) -> Date {
    let months = i32::from(u8::from(today.month())) - 1 + today.year() * 12 - RETENTION_MONTHS as i32;
    let (year, month0) = (months.div_euclid(12), months.rem_euclid(12));
    let month = Month::try_from(month0 as u8 + 1).unwrap_or(Month::January);
    let day = today.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).unwrap_or(today)
}

/// Today's date (UTC) at `now`.
pub fn today(now: Timestamp) -> Option<Date> {
    now.to_offset_date_time().map(|t| t.date())
}

fn opt(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

fn checked_text(field: &str, s: &str, max: usize, required: bool) -> Result<Option<String>, String> {
    let t = s.trim();
    if t.is_empty() {
        return if required {
            Err(format!("{field}: missing"))
        } else {
            Ok(None)
        };
    }
    if t.chars().count() > max {
        return Err(format!("{field}: more than {max} characters"));
    }
    if t.chars().any(char::is_control) {
        return Err(format!("{field}: contains a control character"));
    }
    Ok(Some(t.to_string()))
}

impl RawReimbursementLine {
    /// Validates the line at `now`; the error names the field and says why (RB-1).
    pub fn validate(&self, now: Timestamp) -> Result<FeedLine, String> {
        let ins = Ins::parse(&self.ins).map_err(|e| format!("ins: {e}"))?;
        let line_id = checked_text("line_id", &self.line_id, 128, true)?.unwrap_or_default();
        let date_of_care = parse_date(&self.date_of_care).ok_or_else(|| {
            format!(
                "date_of_care: '{}' is not a date YYYY-MM-DD",
                self.date_of_care.trim()
            )
        })?;
        let care_type = CareType::parse(&self.type_of_care).ok_or_else(|| {
            format!(
                "type_of_care: '{}' is not one of {}",
                self.type_of_care.trim(),
                CareType::ALL.map(CareType::tag).join(", ")
            )
        })?;
        let act_code = checked_text("act_code", &self.act_code, 32, false)?;
        let act_label = checked_text("act_label", &self.act_label, 200, false)?;
        let act_label = act_label.unwrap_or_else(|| care_type.french().to_string());
        let name = checked_text("professional_name", &self.professional_name, 200, false)?;
        let id = opt(&self.professional_id);
        if let Some(id) = &id {
            let rpps = id.len() == 11 && id.bytes().all(|b| b.is_ascii_digit());
            let finess = id.len() == 9 && id.bytes().all(|b| b.is_ascii_alphanumeric());
            if !rpps && !finess {
                return Err(format!(
                    "professional_id: '{id}' is neither an RPPS number (11 digits) nor a FINESS number (9 characters)"
                ));
            }
        }
        let paid_cents = parse_amount(&self.amount_paid).map_err(|e| format!("amount_paid: {e}"))?;
        let reimbursed_cents =
            parse_amount(&self.amount_reimbursed).map_err(|e| format!("amount_reimbursed: {e}"))?;
        let line = ReimbursementLine {
            line_id,
            date_of_care,
            care_type,
            act_code,
            act_label,
            professional: Professional {
                name: name.unwrap_or_default(),
                id,
            },
            paid_cents,
            reimbursed_cents,
        };
        line.check(now)?;
        Ok(FeedLine { ins, line })
    }
}

impl ReimbursementLine {
    /// The rules every line follows: amounts not negative and bounded, reimbursed not above
    /// paid, a date of care neither in the future nor older than 24 months (RB-1).
    pub fn check(&self, now: Timestamp) -> Result<(), String> {
        if self.paid_cents < 0 {
            return Err("amount_paid: negative".into());
        }
        if self.reimbursed_cents < 0 {
            return Err("amount_reimbursed: negative".into());
        }
        if self.paid_cents > MAX_AMOUNT_CENTS {
            return Err(format!("amount_paid: more than {} euros", MAX_AMOUNT_CENTS / 100));
        }
        if self.reimbursed_cents > self.paid_cents {
            return Err(format!(
                "amount_reimbursed: {} is more than the amount paid ({})",
                format_amount(self.reimbursed_cents),
                format_amount(self.paid_cents)
            ));
        }
        let today = today(now).ok_or("the clock is out of range")?;
        if self.date_of_care > today {
            return Err(format!(
                "date_of_care: {} is in the future",
                format_date(self.date_of_care)
            ));
        }
        let oldest = oldest_kept(today);
        if self.date_of_care < oldest {
            return Err(format!(
                "date_of_care: {} is older than the {RETENTION_MONTHS} months the space keeps (RB-1: from {})",
                format_date(self.date_of_care),
                format_date(oldest)
            ));
        }
        if self.line_id.trim().is_empty() {
            return Err("line_id: missing".into());
        }
        Ok(())
    }
}

/// What is wrong with a feed as a whole (a bad line is only rejected).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeedError {
    #[error("the feed is empty: the first line must be the header ({})", FEED_COLUMNS.join(","))]
    Empty,
    #[error("cannot read the header line: {0}")]
    Header(String),
    #[error("the header line has no column \"{0}\" (columns: {cols})", cols = FEED_COLUMNS.join(","))]
    MissingColumn(&'static str),
}

/// Reads a CSV feed: every record with its line number (1 = the header), read as a
/// [`RawReimbursementLine`] or the reason it cannot be. Only a missing or incomplete header
/// fails the whole feed.
#[allow(clippy::type_complexity)]
pub fn parse_csv_feed(bytes: &[u8]) -> Result<Vec<(u64, Result<RawReimbursementLine, String>)>, FeedError> {
    let bytes = bytes.strip_prefix(b"\xef\xbb\xbf").unwrap_or(bytes);
    let first_line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    if first_line.iter().all(u8::is_ascii_whitespace) {
        return Err(FeedError::Empty);
    }
    let delimiter = if first_line.contains(&b';') { b';' } else { b',' };
    let mut rdr = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(bytes);
    let headers = rdr
        .headers()
        .map_err(|e| FeedError::Header(e.to_string()))?
        .clone();
    let headers = csv::StringRecord::from(
        headers
            .iter()
            .map(|h| h.trim().to_ascii_lowercase())
            .collect::<Vec<_>>(),
    );
    for required in FEED_REQUIRED {
        if !headers.iter().any(|h| h == required) {
            return Err(FeedError::MissingColumn(required));
        }
    }
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    // Line numbers counted from the bytes (the csv crate does not count blank lines).
    let (mut counted_to, mut line_at) = (0usize, 1u64);
    let mut line_of = |byte: u64| {
        let mut byte = (byte as usize).min(bytes.len());
        // A record's position may be where the blank lines before it start.
        while byte < bytes.len() && matches!(bytes[byte], b'\n' | b'\r') {
            byte += 1;
        }
        if byte >= counted_to {
            line_at += bytes[counted_to..byte].iter().filter(|b| **b == b'\n').count() as u64;
            counted_to = byte;
        }
        line_at
    };
    loop {
        let line = line_of(rdr.position().byte());
        match rdr.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {
                if record.iter().all(str::is_empty) {
                    continue;
                }
                let line = record.position().map_or(line, |p| line_of(p.byte()));
                let raw = record
                    .deserialize::<RawReimbursementLine>(Some(&headers))
                    .map_err(|e| format!("cannot read the line: {e}"));
                out.push((line, raw));
            }
            Err(e) => out.push((line, Err(format!("cannot read the line: {e}")))),
        }
    }
    Ok(out)
}

/// What the holder filters on (RB-2). Every bound is inclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filter {
    pub from: Option<Date>,
    pub to: Option<Date>,
    /// Part of the professional's name (case aside) or their exact RPPS / FINESS number.
    pub professional: Option<String>,
    pub care_type: Option<CareType>,
}

impl Filter {
    /// Builds a filter from the texts of a form or a query string (empty = no filter); the
    /// error names the parameter.
    pub fn parse(from: &str, to: &str, professional: &str, care_type: &str) -> Result<Filter, String> {
        let date = |name: &str, s: &str| -> Result<Option<Date>, String> {
            if s.trim().is_empty() {
                return Ok(None);
            }
            parse_date(s)
                .map(Some)
                .ok_or_else(|| format!("{name}: '{}' is not a date YYYY-MM-DD", s.trim()))
        };
        let from = date("from", from)?;
        let to = date("to", to)?;
        if let (Some(f), Some(t)) = (from, to)
            && f > t
        {
            return Err("from: the period starts after it ends".into());
        }
        let care_type = match care_type.trim() {
            "" => None,
            s => Some(CareType::parse(s).ok_or_else(|| {
                format!(
                    "type: '{s}' is not one of {}",
                    CareType::ALL.map(CareType::tag).join(", ")
                )
            })?),
        };
        if professional.chars().count() > 200 {
            return Err("professional: more than 200 characters".into());
        }
        Ok(Filter {
            from,
            to,
            professional: opt(professional),
            care_type,
        })
    }

    pub fn matches(&self, l: &ReimbursementLine) -> bool {
        self.from.is_none_or(|f| l.date_of_care >= f)
            && self.to.is_none_or(|t| l.date_of_care <= t)
            && self.care_type.is_none_or(|c| l.care_type == c)
            && self.professional.as_ref().is_none_or(|p| {
                l.professional.id.as_deref() == Some(p.as_str())
                    || fold(&l.professional.name).contains(&fold(p))
            })
    }
}

/// Sums of a set of lines (RB-2).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub lines: u64,
    pub paid_cents: i64,
    pub reimbursed_cents: i64,
    pub remaining_cents: i64,
}

impl Totals {
    pub fn add(&mut self, l: &ReimbursementLine) {
        self.lines += 1;
        self.paid_cents += l.paid_cents;
        self.reimbursed_cents += l.reimbursed_cents;
        self.remaining_cents += l.remaining_cents();
    }
}

/// The totals of `lines`.
pub fn totals<'a>(lines: impl IntoIterator<Item = &'a ReimbursementLine>) -> Totals {
    let mut t = Totals::default();
    for l in lines {
        t.add(l);
    }
    t
}

/// The totals of one calendar month.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthTotals {
    pub year: i32,
    pub month: u8,
    #[serde(flatten)]
    pub totals: Totals,
}

impl MonthTotals {
    /// `YYYY-MM`.
    pub fn label(&self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
}

/// Sums by month, oldest first, every month from the first to the last line's included (an
/// empty month is a zero bar, not a gap in the chart).
pub fn by_month<'a>(lines: impl IntoIterator<Item = &'a ReimbursementLine>) -> Vec<MonthTotals> {
    let mut sums: std::collections::BTreeMap<i32, Totals> = std::collections::BTreeMap::new();
    for l in lines {
        let k = l.date_of_care.year() * 12 + i32::from(u8::from(l.date_of_care.month())) - 1;
        sums.entry(k).or_default().add(l);
    }
    let (Some(first), Some(last)) = (sums.keys().next().copied(), sums.keys().next_back().copied()) else {
        return Vec::new();
    };
    (first..=last)
        .map(|k| MonthTotals {
            year: k.div_euclid(12),
            month: k.rem_euclid(12) as u8 + 1,
            totals: sums.get(&k).copied().unwrap_or_default(),
        })
        .collect()
}

/// The columns of the holder's CSV export (RB-2).
pub const EXPORT_COLUMNS: [&str; 10] = [
    "date_of_care",
    "type_of_care",
    "act_code",
    "act_label",
    "professional_name",
    "professional_id",
    "amount_paid",
    "amount_reimbursed",
    "remaining",
    "line_id",
];

/// The holder's export (RB-2): a header line then one line per reimbursement, amounts in
/// euros with a point, every field quoted as CSV needs.
pub fn export_csv<'a>(lines: impl IntoIterator<Item = &'a ReimbursementLine>) -> String {
    let write = || -> Result<Vec<u8>, Box<dyn std::error::Error>> {
        let mut w = csv::WriterBuilder::new().from_writer(Vec::new());
        w.write_record(EXPORT_COLUMNS)?;
        for l in lines {
            w.write_record([
                format_date(l.date_of_care).as_str(),
                l.care_type.tag(),
                l.act_code.as_deref().unwrap_or(""),
                &neutralise(&l.act_label),
                &neutralise(&l.professional.name),
                l.professional.id.as_deref().unwrap_or(""),
                &format_amount(l.paid_cents),
                &format_amount(l.reimbursed_cents),
                &format_amount(l.remaining_cents()),
                &neutralise(&l.line_id),
            ])?;
        }
        Ok(w.into_inner()?)
    };
    // Writing to a Vec cannot fail; text columns are UTF-8.
    write()
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .unwrap_or_default()
}

/// A cell a spreadsheet would read as a formula (`=`, `+`, `-`, `@` first) gets a leading
/// apostrophe (CSV injection).
fn neutralise(s: &str) -> String {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::date;

    /// 2026-01-05 09:00:00 UTC.
    const NOW: Timestamp = Timestamp::from_unix_seconds(1_767_603_600);

    fn ins() -> String {
        let nir = "1850275000001";
        format!("{nir}{:02}", crate::ins::nir_key(nir).unwrap())
    }

    fn raw() -> RawReimbursementLine {
        RawReimbursementLine {
            ins: ins(),
            line_id: "CPAM-1".into(),
            date_of_care: "2025-12-01".into(),
            type_of_care: "consultation".into(),
            act_code: "G".into(),
            act_label: "Consultation".into(),
            professional_name: "Dr Martin".into(),
            professional_id: "10003456789".into(),
            amount_paid: "30,00".into(),
            amount_reimbursed: "21.00".into(),
        }
    }

    fn line(date: Date, care: CareType, paid: i64, reimbursed: i64, pro: &str) -> ReimbursementLine {
        ReimbursementLine {
            line_id: format!("{date}-{paid}"),
            date_of_care: date,
            care_type: care,
            act_code: None,
            act_label: "x".into(),
            professional: Professional {
                name: pro.into(),
                id: None,
            },
            paid_cents: paid,
            reimbursed_cents: reimbursed,
        }
    }

    #[test]
    fn a_good_line_validates_with_cents_and_remaining_rb1() {
        let f = raw().validate(NOW).unwrap();
        assert_eq!(f.ins.as_str(), ins());
        assert_eq!(f.line.paid_cents, 3000);
        assert_eq!(f.line.reimbursed_cents, 2100);
        assert_eq!(f.line.remaining_cents(), 900);
        assert_eq!(f.line.care_type, CareType::Consultation);
        assert_eq!(f.line.professional.id.as_deref(), Some("10003456789"));
    }

    #[test]
    fn each_bad_field_is_named_rb1() {
        type Change = fn(&mut RawReimbursementLine);
        let cases: Vec<(Change, &str)> = vec![
            (|r| r.ins = "123".into(), "ins:"),
            (|r| r.line_id = " ".into(), "line_id: missing"),
            (
                |r| r.date_of_care = "01/12/2025".into(),
                "date_of_care: '01/12/2025' is not a date",
            ),
            (
                |r| r.date_of_care = "2026-01-06".into(),
                "date_of_care: 2026-01-06 is in the future",
            ),
            (
                |r| r.date_of_care = "2024-01-04".into(),
                "older than the 24 months",
            ),
            (
                |r| r.type_of_care = "massage".into(),
                "type_of_care: 'massage' is not one of",
            ),
            (|r| r.amount_paid = "-3.00".into(), "amount_paid: negative"),
            (
                |r| r.amount_reimbursed = "-1".into(),
                "amount_reimbursed: negative",
            ),
            (
                |r| r.amount_paid = "3.001".into(),
                "amount_paid: '3.001' has more than two decimals",
            ),
            (
                |r| r.amount_paid = "abc".into(),
                "amount_paid: 'abc' is not an amount",
            ),
            (|r| r.amount_paid = "".into(), "amount_paid: missing"),
            (
                |r| r.amount_reimbursed = "31".into(),
                "amount_reimbursed: 31.00 is more than the amount paid (30.00)",
            ),
            (
                |r| r.professional_id = "123".into(),
                "professional_id: '123' is neither",
            ),
            (
                |r| r.act_label = "a\u{7}b".into(),
                "act_label: contains a control character",
            ),
        ];
        for (change, expected) in cases {
            let mut r = raw();
            change(&mut r);
            let e = r.validate(NOW).unwrap_err();
            assert!(e.contains(expected), "{e:?} should contain {expected:?}");
        }
    }

    #[test]
    fn the_24_month_window_is_inclusive_rb1() {
        assert_eq!(oldest_kept(date!(2026 - 01 - 05)), date!(2024 - 01 - 05));
        assert_eq!(oldest_kept(date!(2026 - 02 - 28)), date!(2024 - 02 - 28));
        assert_eq!(oldest_kept(date!(2028 - 02 - 29)), date!(2026 - 02 - 28));
        let mut r = raw();
        r.date_of_care = "2024-01-05".into();
        assert!(r.validate(NOW).is_ok());
        r.date_of_care = "2026-01-05".into();
        assert!(r.validate(NOW).is_ok(), "today is fine");
    }

    #[test]
    fn amounts_parse_exactly() {
        for (s, c) in [
            ("25", 2500),
            ("25.5", 2550),
            ("25,50", 2550),
            ("0.01", 1),
            (" 1 234,56 ", 123_456),
            ("-0.05", -5),
        ] {
            assert_eq!(parse_amount(s), Ok(c), "{s}");
        }
        for s in ["", "1.", ".5", "1.2.3", "1e3", "12a", "--1", "1234567890123"] {
            assert!(parse_amount(s).is_err(), "{s}");
        }
        assert_eq!(format_amount(2500), "25.00");
        assert_eq!(format_amount(-5), "-0.05");
        assert_eq!(format_amount_fr(1_234_567), "12\u{202f}345,67\u{a0}€");
        assert_eq!(format_amount_fr(5), "0,05\u{a0}€");
    }

    #[test]
    fn care_types_read_tags_and_french_words() {
        assert_eq!(CareType::parse("Pharmacie"), Some(CareType::Pharmacy));
        assert_eq!(CareType::parse("hopital"), Some(CareType::Hospital));
        assert_eq!(CareType::parse("Hôpital"), Some(CareType::Hospital));
        assert_eq!(CareType::parse("PARAMEDICAL"), Some(CareType::Paramedical));
        assert_eq!(CareType::parse("x"), None);
        for c in CareType::ALL {
            assert_eq!(CareType::parse(c.tag()), Some(c));
            assert_eq!(CareType::parse(c.french()), Some(c));
        }
    }

    #[test]
    fn a_csv_feed_reads_both_separators_and_numbers_lines() {
        let comma = format!(
            "{}\n{i},L1,2025-12-01,pharmacie,,Médicaments,Pharmacie du Port,,12.40,8.06\n\n{i},L2,bad,consultation,,,,,1,1\n",
            FEED_COLUMNS.join(","),
            i = ins()
        );
        let lines = parse_csv_feed(comma.as_bytes()).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].0, 2);
        assert_eq!(lines[1].0, 4);
        let first = lines[0].1.clone().unwrap().validate(NOW).unwrap();
        assert_eq!((first.line.paid_cents, first.line.reimbursed_cents), (1240, 806));
        assert!(lines[1].1.clone().unwrap().validate(NOW).is_err());
        let semi = format!(
            "\u{feff}INS;line_id;date_of_care;type_of_care;amount_paid;amount_reimbursed\n{};L1;2025-12-01;biologie;25,00;15,00\n",
            ins()
        );
        let lines = parse_csv_feed(semi.as_bytes()).unwrap();
        let l = lines[0].1.clone().unwrap().validate(NOW).unwrap();
        assert_eq!((l.line.paid_cents, l.line.care_type), (2500, CareType::Biology));
        assert_eq!(l.line.act_label, "biologie", "the type's word when no label");
        assert_eq!(
            parse_csv_feed(b"ins,line_id\n1,2\n"),
            Err(FeedError::MissingColumn("date_of_care"))
        );
        assert_eq!(parse_csv_feed(b""), Err(FeedError::Empty));
    }

    #[test]
    fn filters_totals_and_months_rb2() {
        let lines = [
            line(
                date!(2025 - 10 - 03),
                CareType::Consultation,
                3000,
                2100,
                "Dr Martin",
            ),
            line(
                date!(2025 - 10 - 20),
                CareType::Pharmacy,
                1240,
                806,
                "Pharmacie du Port",
            ),
            line(
                date!(2025 - 12 - 01),
                CareType::Consultation,
                6000,
                4200,
                "Dr Élise Noël",
            ),
        ];
        let all = totals(&lines);
        assert_eq!(
            (
                all.lines,
                all.paid_cents,
                all.reimbursed_cents,
                all.remaining_cents
            ),
            (3, 10_240, 7_106, 3_134)
        );
        let months = by_month(&lines);
        assert_eq!(
            months.iter().map(MonthTotals::label).collect::<Vec<_>>(),
            ["2025-10", "2025-11", "2025-12"]
        );
        assert_eq!(months[0].totals.paid_cents, 4240);
        assert_eq!(months[1].totals, Totals::default(), "an empty month is zero");
        let f = Filter::parse("2025-10-01", "2025-10-31", "", "").unwrap();
        assert_eq!(lines.iter().filter(|l| f.matches(l)).count(), 2);
        let f = Filter::parse("", "", "elise noel", "").unwrap();
        assert_eq!(
            lines.iter().filter(|l| f.matches(l)).count(),
            1,
            "accents and case aside"
        );
        let f = Filter::parse("", "", "", "pharmacy").unwrap();
        assert_eq!(lines.iter().filter(|l| f.matches(l)).count(), 1);
        assert!(
            Filter::parse("2025-12-01", "2025-01-01", "", "")
                .unwrap_err()
                .starts_with("from:")
        );
        assert!(Filter::parse("", "x", "", "").unwrap_err().starts_with("to:"));
        assert!(Filter::parse("", "", "", "spa").unwrap_err().starts_with("type:"));
    }

    #[test]
    fn the_export_is_csv_with_a_header_and_no_formula_rb2() {
        let mut l = line(
            date!(2025 - 10 - 03),
            CareType::Consultation,
            3000,
            2100,
            "=HYPERLINK(\"x\")",
        );
        l.act_label = "Consultation, cabinet".into();
        let csv = export_csv([&l]);
        let mut rows = csv.lines();
        assert_eq!(rows.next(), Some(EXPORT_COLUMNS.join(",").as_str()));
        let row = rows.next().unwrap();
        assert!(
            row.starts_with("2025-10-03,consultation,,\"Consultation, cabinet\",\"'=HYPERLINK(\"\"x\"\")\""),
            "{row}"
        );
        assert!(row.contains(",30.00,21.00,9.00,"), "{row}");
    }

    proptest! {
        #[test]
        fn amounts_round_trip(cents in -MAX_AMOUNT_CENTS..MAX_AMOUNT_CENTS) {
            prop_assert_eq!(parse_amount(&format_amount(cents)), Ok(cents));
            prop_assert_eq!(parse_amount(&format_amount(cents).replace('.', ",")), Ok(cents));
        }

        #[test]
        fn monthly_sums_add_up_to_the_totals(
            items in proptest::collection::vec((0u16..730, 0i64..100_000, 0i64..100), 0..60)
        ) {
            let start = date!(2024 - 01 - 06);
            let lines: Vec<ReimbursementLine> = items
                .iter()
                .map(|(d, paid, pct)| {
                    let day = start + time::Duration::days(i64::from(*d));
                    line(day, CareType::Other, *paid, paid * pct / 100, "p")
                })
                .collect();
            let all = totals(&lines);
            prop_assert_eq!(all.remaining_cents, all.paid_cents - all.reimbursed_cents);
            let months = by_month(&lines);
            let mut sum = Totals::default();
            for m in &months {
                sum.lines += m.totals.lines;
                sum.paid_cents += m.totals.paid_cents;
                sum.reimbursed_cents += m.totals.reimbursed_cents;
                sum.remaining_cents += m.totals.remaining_cents;
            }
            prop_assert_eq!(sum, all);
            for w in months.windows(2) {
                prop_assert_eq!(w[0].year * 12 + i32::from(w[0].month) + 1, w[1].year * 12 + i32::from(w[1].month));
            }
            for l in &lines {
                prop_assert!(l.check(NOW).is_ok());
            }
        }
    }
}
