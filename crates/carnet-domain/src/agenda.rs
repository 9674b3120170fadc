//! The health agenda (SPEC AG-1..3), pure: events (appointments, vaccine, screening and
//! treatment reminders), their recurrence, when their reminders fall due, and vaccine reminders
//! proposed from the vaccination record and the national schedule (a data file).
//!
//! Times are instants (UTC); recurrence repeats the *local* wall-clock time in Europe/Paris
//! (an appointment "every Monday at 9:00" stays at 9:00 across daylight-saving changes), with
//! the EU rule for summer time written out in [`paris_offset_seconds`].

use serde::{Deserialize, Serialize};
use time::{Date, Duration, Month, OffsetDateTime, PrimitiveDateTime, UtcOffset, Weekday};

use crate::clock::Timestamp;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Appointment,
    Vaccine,
    Screening,
    Treatment,
    Other,
}

impl EventKind {
    pub const ALL: [EventKind; 5] = [
        EventKind::Appointment,
        EventKind::Vaccine,
        EventKind::Screening,
        EventKind::Treatment,
        EventKind::Other,
    ];

    pub const fn tag(self) -> &'static str {
        match self {
            EventKind::Appointment => "appointment",
            EventKind::Vaccine => "vaccine",
            EventKind::Screening => "screening",
            EventKind::Treatment => "treatment",
            EventKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| k.tag() == s)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Frequency {
    Daily,
    Weekly,
    Monthly,
    Yearly,
}

impl Frequency {
    pub const fn rrule(self) -> &'static str {
        match self {
            Frequency::Daily => "DAILY",
            Frequency::Weekly => "WEEKLY",
            Frequency::Monthly => "MONTHLY",
            Frequency::Yearly => "YEARLY",
        }
    }
}

/// A recurrence (the subset of RFC 5545 RRULE that reminders need).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recurrence {
    pub frequency: Frequency,
    #[serde(default = "one")]
    pub interval: u32,
    /// Number of occurrences (the first included).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u32>,
    /// Last possible start (inclusive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
}

fn one() -> u32 {
    1
}

/// An event as entered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventInput {
    pub kind: EventKind,
    pub title: String,
    pub start: Timestamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recurrence: Option<Recurrence>,
    /// Reminders, in minutes before each occurrence (AG-3, our choice: configurable).
    #[serde(default)]
    pub reminders: Vec<u32>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AgendaError {
    #[error(
        "le titre est obligatoire (200 caractères au plus) / a title of at most 200 characters is required"
    )]
    Title,
    #[error("la fin précède le début / the end is before the start")]
    EndBeforeStart,
    #[error("un événement dure au plus 31 jours / an event lasts at most 31 days")]
    TooLong,
    #[error("texte trop long / text too long: {0}")]
    TextTooLong(&'static str),
    #[error("récurrence invalide (intervalle 1 à 366, au plus 1000 occurrences) / invalid recurrence")]
    Recurrence,
    #[error(
        "rappels : au plus 5, chacun au plus 60 jours avant / reminders: at most 5, each at most 60 days before"
    )]
    Reminders,
}

pub const MAX_REMINDER_MINUTES: u32 = 60 * 24 * 60;

impl EventInput {
    /// Checks and normalises an event (trimmed texts, sorted distinct reminders).
    pub fn validate(mut self) -> Result<EventInput, AgendaError> {
        self.title = self.title.trim().to_string();
        if self.title.is_empty() || self.title.chars().count() > 200 {
            return Err(AgendaError::Title);
        }
        if let Some(end) = self.end {
            if end < self.start {
                return Err(AgendaError::EndBeforeStart);
            }
            if end.as_micros() - self.start.as_micros() > 31 * 86_400 * 1_000_000 {
                return Err(AgendaError::TooLong);
            }
        }
        for (field, v, max) in [
            ("location", &mut self.location, 300),
            ("notes", &mut self.notes, 4000),
        ] {
            if let Some(s) = v {
                *s = s.trim().to_string();
                if s.chars().count() > max {
                    return Err(AgendaError::TextTooLong(field));
                }
                if s.is_empty() {
                    *v = None;
                }
            }
        }
        if let Some(r) = &self.recurrence {
            if r.interval == 0 || r.interval > 366 || r.count.is_some_and(|c| c == 0 || c > 1000) {
                return Err(AgendaError::Recurrence);
            }
            if r.until.is_some_and(|u| u < self.start) {
                return Err(AgendaError::Recurrence);
            }
        }
        self.reminders.sort_unstable();
        self.reminders.dedup();
        if self.reminders.len() > 5 || self.reminders.iter().any(|m| *m > MAX_REMINDER_MINUTES) {
            return Err(AgendaError::Reminders);
        }
        Ok(self)
    }

    /// Occurrence starts in `[from, to)`, at most `limit` of them, in order.
    pub fn occurrences(&self, from: Timestamp, to: Timestamp, limit: usize) -> Vec<Timestamp> {
        self.starts()
            .take_while(|t| *t < to)
            .filter(|t| *t >= from)
            .take(limit)
            .collect()
    }

    /// Every occurrence start, in order (at most 100,000 candidates are looked at).
    pub fn starts(&self) -> impl Iterator<Item = Timestamp> + '_ {
        let mut k = 0u32;
        let mut produced = 0u32;
        std::iter::from_fn(move || {
            let Some(r) = &self.recurrence else {
                k += 1;
                return (k == 1).then_some(self.start);
            };
            loop {
                if r.count.is_some_and(|c| produced >= c) || k > 100_000 {
                    return None;
                }
                let candidate = self.candidate(k, r);
                k += 1;
                // RFC 5545: a date that does not exist (31 April, 29 February) is skipped.
                if let Some(t) = candidate {
                    if r.until.is_some_and(|u| t > u) {
                        return None;
                    }
                    produced += 1;
                    return Some(t);
                }
            }
        })
    }

    fn candidate(&self, k: u32, r: &Recurrence) -> Option<Timestamp> {
        let local = to_paris(self.start)?;
        let step = i64::from(k) * i64::from(r.interval);
        let shifted = match r.frequency {
            Frequency::Daily => local.date().checked_add(Duration::days(step)),
            Frequency::Weekly => local.date().checked_add(Duration::weeks(step)),
            Frequency::Monthly => add_months(local.date(), step),
            Frequency::Yearly => add_months(local.date(), step * 12),
        }?;
        from_paris(PrimitiveDateTime::new(shifted, local.time()))
    }

    /// The next reminder strictly after `after`: (when it is due, the occurrence it is for).
    pub fn next_reminder(&self, after: Timestamp) -> Option<(Timestamp, Timestamp)> {
        let max_before = i64::from(*self.reminders.iter().max()?) * 60_000_000;
        let mut best: Option<(Timestamp, Timestamp)> = None;
        for occ in self.starts() {
            // Occurrences are ordered and no reminder precedes its occurrence by more than
            // `max_before`: past this one, nothing can come earlier than the best found.
            if best.is_some_and(|(b, _)| occ.as_micros() - max_before > b.as_micros()) {
                break;
            }
            let due = self
                .reminders
                .iter()
                .map(|m| occ.plus_seconds(-i64::from(*m) * 60))
                .filter(|d| *d > after)
                .min();
            if let Some(d) = due
                && best.is_none_or(|(b, _)| d < b)
            {
                best = Some((d, occ));
            }
        }
        best
    }
}

fn add_months(d: Date, months: i64) -> Option<Date> {
    let total = i64::from(d.year()) * 12 + i64::from(u8::from(d.month())) - 1 + months;
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    Date::from_calendar_date(year, month, d.day()).ok()
}

fn last_sunday(year: i32, month: Month) -> Option<Date> {
    let mut d = Date::from_calendar_date(year, month, month.length(year)).ok()?;
    while d.weekday() != Weekday::Sunday {
        d = d.previous_day()?;
    }
    Some(d)
}

/// The offset of Europe/Paris at an instant: UTC+2 from the last Sunday of March 01:00 UTC to
/// the last Sunday of October 01:00 UTC (EU rule since 1996), UTC+1 otherwise.
pub fn paris_offset_seconds(t: Timestamp) -> i32 {
    let Some(u) = t.to_offset_date_time() else {
        return 3600;
    };
    let y = u.year();
    let boundary = |m| {
        last_sunday(y, m).map(|d| {
            PrimitiveDateTime::new(d, time::Time::from_hms(1, 0, 0).unwrap_or(time::Time::MIDNIGHT))
                .assume_utc()
        })
    };
    match (boundary(Month::March), boundary(Month::October)) {
        (Some(start), Some(end)) if u >= start && u < end => 7200,
        _ => 3600,
    }
}

/// An instant as Paris wall-clock time.
pub fn to_paris(t: Timestamp) -> Option<PrimitiveDateTime> {
    let u = t.to_offset_date_time()?;
    let off = UtcOffset::from_whole_seconds(paris_offset_seconds(t)).ok()?;
    let l = u.to_offset(off);
    Some(PrimitiveDateTime::new(l.date(), l.time()))
}

/// A Paris wall-clock time as an instant (in the autumn's repeated hour, the first one; in the
/// spring's missing hour, an hour later).
pub fn from_paris(local: PrimitiveDateTime) -> Option<Timestamp> {
    for off in [7200, 3600] {
        let t =
            Timestamp::from_offset_date_time(local.assume_offset(UtcOffset::from_whole_seconds(off).ok()?));
        if paris_offset_seconds(t) == off {
            return Some(t);
        }
    }
    Some(Timestamp::from_offset_date_time(
        local.assume_offset(UtcOffset::from_whole_seconds(3600).ok()?) + Duration::hours(1),
    ))
}

/// A dose of the national vaccination schedule (`data/vaccination-schedule.csv`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScheduledDose {
    /// Vaccine family key (e.g. `dtp`, `ror`).
    pub vaccine: String,
    pub label_fr: String,
    pub label_en: String,
    /// ATC prefixes that count as a dose of this vaccine in the vaccination record.
    pub atc_prefixes: Vec<String>,
    /// Dose number within the family (1-based).
    pub dose: u32,
    /// Age when due, in months.
    pub age_months: u32,
    /// Up to which age (months) a missed dose is still worth catching up.
    pub catch_up_until_months: u32,
}

/// The schedule shipped with Carnet (simplified from the French 2025 calendar; operators can
/// replace the file).
pub const DEFAULT_SCHEDULE: &str = include_str!("../data/vaccination-schedule.csv");

/// The shipped schedule, parsed once (a malformed file gives an empty schedule; the unit test
/// below keeps it well formed).
pub fn default_schedule() -> &'static [ScheduledDose] {
    static SCHEDULE: std::sync::OnceLock<Vec<ScheduledDose>> = std::sync::OnceLock::new();
    SCHEDULE.get_or_init(|| parse_schedule(DEFAULT_SCHEDULE).unwrap_or_default())
}

/// Parses a schedule file: `vaccine,dose,age_months,catch_up_until_months,atc_prefixes (space
/// separated),label_fr,label_en`.
pub fn parse_schedule(csv: &str) -> Result<Vec<ScheduledDose>, String> {
    let mut out = Vec::new();
    for (i, line) in csv.lines().enumerate().skip(1) {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let f: Vec<&str> = line.splitn(7, ',').map(str::trim).collect();
        let [vaccine, dose, age, catch_up, atc, fr, en] = f[..] else {
            return Err(format!("line {}: expected 7 fields", i + 1));
        };
        out.push(ScheduledDose {
            vaccine: vaccine.into(),
            dose: dose.parse().map_err(|_| format!("line {}: dose", i + 1))?,
            age_months: age.parse().map_err(|_| format!("line {}: age", i + 1))?,
            catch_up_until_months: catch_up
                .parse()
                .map_err(|_| format!("line {}: catch-up age", i + 1))?,
            atc_prefixes: atc.split_whitespace().map(str::to_string).collect(),
            label_fr: fr.into(),
            label_en: en.into(),
        });
    }
    Ok(out)
}

/// A vaccine reminder proposed to the holder.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaccineProposal {
    pub vaccine: String,
    pub dose: u32,
    pub label_fr: String,
    pub label_en: String,
    /// The date the dose is due (birth date + age).
    pub due: Date,
    /// Past due already.
    pub overdue: bool,
}

/// A dose recorded in the vaccination record: its ATC code and date, when known.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GivenDose {
    pub atc: String,
    pub date: Option<Date>,
}

/// Reads a partial date of the record (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`) as its first day.
pub fn partial_date(s: &str) -> Option<Date> {
    let mut parts = s.trim().split('-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next().map_or(Some(1), |m| m.parse().ok())?;
    let day: u8 = parts.next().map_or(Some(1), |d| d.parse().ok())?;
    Date::from_calendar_date(year, Month::try_from(month).ok()?, day).ok()
}

fn due_date(birth: Date, months: u32) -> Option<Date> {
    add_months(birth, i64::from(months))
        // 29 February + n years: the 1 March after.
        .or_else(|| add_months(birth.previous_day()?, i64::from(months))?.next_day())
}

/// AG-1: vaccine reminders to propose. A dose `n` of a vaccine counts as given when the
/// record holds `n` doses of it, or (a booster from 6 years on) one dated from six months
/// before the dose's due date on.
/// Proposed: every missing dose due from two years ago to a year from `today`; and, for a
/// vaccine with none of those, its latest missed dose when still worth catching up at the
/// holder's age (an adult whose last recorded tetanus booster is old is reminded of it).
pub fn vaccine_proposals(
    schedule: &[ScheduledDose],
    birth: Date,
    given: &[GivenDose],
    today: Date,
) -> Vec<VaccineProposal> {
    let window_start = add_months(today, -24).unwrap_or(today);
    let window_end = add_months(today, 12).unwrap_or(today);
    let age_months = {
        let m = (i64::from(today.year()) - i64::from(birth.year())) * 12 + i64::from(u8::from(today.month()))
            - i64::from(u8::from(birth.month()));
        if today.day() < birth.day() { m - 1 } else { m }
    };
    let mut out: Vec<VaccineProposal> = Vec::new();
    let mut catch_up: std::collections::BTreeMap<&str, VaccineProposal> = Default::default();
    for d in schedule {
        let Some(due) = due_date(birth, d.age_months) else {
            continue;
        };
        let of_this: Vec<&GivenDose> = given
            .iter()
            .filter(|g| {
                d.atc_prefixes
                    .iter()
                    .any(|p| g.atc.to_ascii_uppercase().starts_with(p.as_str()))
            })
            .collect();
        let recent_enough = add_months(due, -6).unwrap_or(due);
        // Boosters from 6 years on count by date; infants' series count doses.
        let by_date =
            d.age_months >= 72 && of_this.iter().any(|g| g.date.is_some_and(|x| x >= recent_enough));
        if of_this.len() >= d.dose as usize || by_date {
            continue;
        }
        let proposal = VaccineProposal {
            vaccine: d.vaccine.clone(),
            dose: d.dose,
            label_fr: d.label_fr.clone(),
            label_en: d.label_en.clone(),
            due,
            overdue: due < today,
        };
        if due >= window_start && due <= window_end {
            out.push(proposal);
        } else if due < window_start && age_months <= i64::from(d.catch_up_until_months) {
            // The latest missed dose of the vaccine (the schedule lists doses in order).
            catch_up.insert(d.vaccine.as_str(), proposal);
        }
    }
    for (vaccine, p) in catch_up {
        if !out.iter().any(|o| o.vaccine == vaccine) {
            out.push(p);
        }
    }
    out.sort_by(|a, b| a.due.cmp(&b.due).then(a.vaccine.cmp(&b.vaccine)));
    out
}

/// 09:00 Paris time on a date, as an instant (the default time of a proposed reminder).
pub fn morning_of(d: Date) -> Option<Timestamp> {
    from_paris(PrimitiveDateTime::new(d, time::Time::from_hms(9, 0, 0).ok()?))
}

/// Today's date in Paris.
pub fn paris_date(t: Timestamp) -> Option<Date> {
    to_paris(t).map(|l| l.date())
}

/// An instant from RFC 3339 (`2026-03-12T09:00:00Z`) or a Paris wall-clock time without offset
/// (`2026-03-12T09:00`, what an HTML `datetime-local` field sends).
pub fn parse_instant(s: &str) -> Option<Timestamp> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some(Timestamp::from_offset_date_time(t));
    }
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]");
    let fmt_s = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    PrimitiveDateTime::parse(s, fmt)
        .or_else(|_| PrimitiveDateTime::parse(s, fmt_s))
        .ok()
        .and_then(from_paris)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    fn ts(dt: OffsetDateTime) -> Timestamp {
        Timestamp::from_offset_date_time(dt)
    }

    fn event(start: Timestamp, recurrence: Option<Recurrence>, reminders: Vec<u32>) -> EventInput {
        EventInput {
            kind: EventKind::Appointment,
            title: "Dentiste".into(),
            start,
            end: None,
            location: None,
            notes: None,
            recurrence,
            reminders,
        }
    }

    #[test]
    fn paris_offsets_follow_the_eu_rule() {
        assert_eq!(paris_offset_seconds(ts(datetime!(2026-01-15 12:00 UTC))), 3600);
        assert_eq!(paris_offset_seconds(ts(datetime!(2026-07-15 12:00 UTC))), 7200);
        // 2026: summer time from 29 March 01:00 UTC to 25 October 01:00 UTC.
        assert_eq!(paris_offset_seconds(ts(datetime!(2026-03-29 00:59 UTC))), 3600);
        assert_eq!(paris_offset_seconds(ts(datetime!(2026-03-29 01:00 UTC))), 7200);
        assert_eq!(paris_offset_seconds(ts(datetime!(2026-10-25 00:59 UTC))), 7200);
        assert_eq!(paris_offset_seconds(ts(datetime!(2026-10-25 01:00 UTC))), 3600);
    }

    #[test]
    fn ag1_weekly_events_keep_their_local_hour_across_dst() {
        // Monday 23 March 2026, 09:00 Paris (08:00 UTC); next Monday is summer time.
        let e = event(
            ts(datetime!(2026-03-23 08:00 UTC)),
            Some(Recurrence {
                frequency: Frequency::Weekly,
                interval: 1,
                count: Some(3),
                until: None,
            }),
            vec![],
        );
        let occ = e.occurrences(Timestamp::from_micros(0), ts(datetime!(2027-01-01 0:00 UTC)), 10);
        assert_eq!(
            occ,
            vec![
                ts(datetime!(2026-03-23 08:00 UTC)),
                ts(datetime!(2026-03-30 07:00 UTC)),
                ts(datetime!(2026-04-06 07:00 UTC)),
            ]
        );
    }

    #[test]
    fn monthly_on_the_31st_skips_short_months() {
        let e = event(
            ts(datetime!(2026-01-31 09:00 UTC)),
            Some(Recurrence {
                frequency: Frequency::Monthly,
                interval: 1,
                count: None,
                until: Some(ts(datetime!(2026-06-01 0:00 UTC))),
            }),
            vec![],
        );
        let days: Vec<u8> = e
            .occurrences(Timestamp::from_micros(0), ts(datetime!(2027-01-01 0:00 UTC)), 10)
            .into_iter()
            .filter_map(|t| to_paris(t).map(|l| l.month() as u8))
            .collect();
        assert_eq!(days, vec![1, 3, 5]);
    }

    #[test]
    fn ag3_reminders_fall_before_each_occurrence_in_order() {
        let e = event(
            ts(datetime!(2026-05-04 08:00 UTC)),
            Some(Recurrence {
                frequency: Frequency::Daily,
                interval: 1,
                count: Some(3),
                until: None,
            }),
            vec![60, 24 * 60],
        );
        let mut after = Timestamp::from_micros(0);
        let mut got = vec![];
        while let Some((due, occ)) = e.next_reminder(after) {
            got.push((due, occ));
            after = due;
        }
        assert_eq!(got.len(), 6);
        assert!(got.windows(2).all(|w| w[0].0 < w[1].0), "strictly increasing");
        assert_eq!(
            got[0],
            (
                ts(datetime!(2026-05-03 08:00 UTC)),
                ts(datetime!(2026-05-04 08:00 UTC))
            )
        );
        // 60 min before the 1st comes after 1 day before the 2nd? No: 07:00 on the 4th vs 08:00 on the 4th.
        assert_eq!(got[1].0, ts(datetime!(2026-05-04 07:00 UTC)));
    }

    #[test]
    fn validation() {
        let mut e = event(ts(datetime!(2026-05-04 08:00 UTC)), None, vec![10, 10, 5]);
        e.title = "  Vaccin  ".into();
        let v = e.clone().validate().unwrap_or_else(|x| panic!("{x}"));
        assert_eq!((v.title.as_str(), v.reminders.clone()), ("Vaccin", vec![5, 10]));
        e.end = Some(ts(datetime!(2026-05-04 07:00 UTC)));
        assert_eq!(e.clone().validate(), Err(AgendaError::EndBeforeStart));
        e.end = None;
        e.reminders = vec![MAX_REMINDER_MINUTES + 1];
        assert_eq!(e.validate(), Err(AgendaError::Reminders));
    }

    #[test]
    fn the_shipped_schedule_parses_and_proposes_missing_doses() {
        let s = parse_schedule(DEFAULT_SCHEDULE).unwrap_or_else(|e| panic!("{e}"));
        assert!(s.len() >= 15);
        // A child born 1 Jan 2026, seen on 1 Mar 2026, with no vaccination: the doses of
        // 2 months are due (1 March), nothing from 6 years on.
        let p = vaccine_proposals(&s, date!(2026 - 01 - 01), &[], date!(2026 - 03 - 01));
        let dose = |atc: &str, date: Option<Date>| GivenDose {
            atc: atc.into(),
            date,
        };
        assert!(
            p.iter()
                .any(|p| p.vaccine == "dtp" && p.dose == 1 && p.due == date!(2026 - 03 - 01))
        );
        assert!(p.iter().all(|p| p.due <= date!(2027 - 03 - 01)));
        // Once the record holds a hexavalent dose (ATC J07CA09), dose 1 is no longer proposed.
        let p2 = vaccine_proposals(
            &s,
            date!(2026 - 01 - 01),
            &[GivenDose {
                atc: "J07CA09".into(),
                date: None,
            }],
            date!(2026 - 03 - 01),
        );
        assert!(!p2.iter().any(|p| p.vaccine == "dtp" && p.dose == 1));
        assert!(p2.iter().any(|p| p.vaccine == "dtp" && p.dose == 2));
        // An adult of 45 without a recorded dTP booster is reminded.
        let p3 = vaccine_proposals(&s, date!(1981 - 06 - 15), &[], date!(2026 - 03 - 01));
        assert!(p3.iter().any(|p| p.vaccine == "dtp" && p.dose == 7));
        // An adult of 42 with no booster recorded is reminded of the missed one (catch-up),
        // but not of infants' doses; a booster recorded last year settles it.
        let p4 = vaccine_proposals(&s, date!(1984 - 03 - 01), &[], date!(2026 - 11 - 24));
        assert!(
            p4.iter().any(|p| p.vaccine == "dtp" && p.dose == 6 && p.overdue),
            "{p4:?}"
        );
        assert!(
            !p4.iter()
                .any(|p| p.vaccine == "pneumococcus" || p.vaccine == "meningococcus_b")
        );
        let p5 = vaccine_proposals(
            &s,
            date!(1984 - 03 - 01),
            &[dose("J07CA01", partial_date("2025-01"))],
            date!(2026 - 11 - 24),
        );
        assert!(!p5.iter().any(|p| p.vaccine == "dtp"), "{p5:?}");
        assert_eq!(partial_date("2025"), Some(date!(2025 - 01 - 01)));
    }

    #[test]
    fn parse_instant_reads_rfc3339_and_paris_local() {
        assert_eq!(
            parse_instant("2026-07-01T09:00"),
            Some(ts(datetime!(2026-07-01 07:00 UTC)))
        );
        assert_eq!(
            parse_instant("2026-01-01T09:00:00Z"),
            Some(ts(datetime!(2026-01-01 09:00 UTC)))
        );
        assert_eq!(parse_instant("demain"), None);
    }

    proptest! {
        /// AG-3: reminders come out strictly increasing, each before its occurrence, and the
        /// walk ends (a bounded event has a bounded number of reminders).
        #[test]
        fn reminders_are_increasing_and_before_their_occurrence(
            start in 1_700_000_000i64..1_900_000_000,
            freq in prop_oneof![Just(Frequency::Daily), Just(Frequency::Weekly), Just(Frequency::Monthly), Just(Frequency::Yearly)],
            interval in 1u32..4,
            count in 1u32..8,
            reminders in proptest::collection::vec(0u32..(3 * 24 * 60), 1..4),
        ) {
            let e = event(Timestamp::from_micros(start * 1_000_000), Some(Recurrence { frequency: freq, interval, count: Some(count), until: None }), reminders)
                .validate().unwrap_or_else(|x| panic!("{x}"));
            let mut after = Timestamp::from_micros(0);
            let mut n = 0;
            while let Some((due, occ)) = e.next_reminder(after) {
                prop_assert!(due > after);
                prop_assert!(due <= occ);
                after = due;
                n += 1;
                prop_assert!(n <= count as usize * e.reminders.len());
            }
            // Reminders of two occurrences may fall at the same instant: sent once.
            prop_assert!(n >= 1);
        }
    }
}
