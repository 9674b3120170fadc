//! iCalendar (RFC 5545) for the health agenda (SPEC AG-3): the `.ics` export and the private
//! feed that calendar applications subscribe to. Pure: events in, text out.
//!
//! Times are written as Europe/Paris wall-clock times with a `VTIMEZONE` (so a weekly
//! appointment stays at 9:00 across daylight-saving changes, as the agenda computes it), texts
//! are escaped (`\\`, `;`, `,`, newlines) and lines folded at 75 octets without splitting a
//! UTF-8 character; lines end with CRLF.

use carnet_domain::Timestamp;
use carnet_domain::agenda::{EventInput, to_paris};

/// One event of the calendar.
pub struct CalendarEvent<'a> {
    /// Stable unique id (the event's id).
    pub uid: String,
    pub event: &'a EventInput,
    /// Last change (DTSTAMP / LAST-MODIFIED).
    pub updated_at: Timestamp,
}

const VTIMEZONE: &[&str] = &[
    "BEGIN:VTIMEZONE",
    "TZID:Europe/Paris",
    "BEGIN:DAYLIGHT",
    "TZOFFSETFROM:+0100",
    "TZOFFSETTO:+0200",
    "TZNAME:CEST",
    "DTSTART:19700329T020000",
    "RRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
    "END:DAYLIGHT",
    "BEGIN:STANDARD",
    "TZOFFSETFROM:+0200",
    "TZOFFSETTO:+0100",
    "TZNAME:CET",
    "DTSTART:19701025T030000",
    "RRULE:FREQ=YEARLY;BYMONTH=10;BYDAY=-1SU",
    "END:STANDARD",
    "END:VTIMEZONE",
];

/// RFC 5545 3.3.11: escapes a TEXT value.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// RFC 5545 3.1: folds a content line at 75 octets, never inside a UTF-8 character.
fn push_folded(out: &mut String, line: &str) {
    let mut width = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if width + n > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += n;
    }
    out.push_str("\r\n");
}

fn utc(t: Timestamp) -> String {
    t.to_offset_date_time().map_or_else(String::new, |u| {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
            u.year(),
            u8::from(u.month()),
            u.day(),
            u.hour(),
            u.minute(),
            u.second()
        )
    })
}

fn paris(t: Timestamp) -> String {
    to_paris(t).map_or_else(String::new, |l| {
        format!(
            "{:04}{:02}{:02}T{:02}{:02}{:02}",
            l.year(),
            u8::from(l.month()),
            l.day(),
            l.hour(),
            l.minute(),
            l.second()
        )
    })
}

/// The calendar as text (`text/calendar`).
pub fn calendar(name: &str, events: &[CalendarEvent<'_>]) -> String {
    let mut out = String::new();
    let mut line = |s: &str| push_folded(&mut out, s);
    line("BEGIN:VCALENDAR");
    line("VERSION:2.0");
    line("PRODID:-//Carnet//Agenda de santé//FR");
    line("CALSCALE:GREGORIAN");
    line("METHOD:PUBLISH");
    line(&format!("X-WR-CALNAME:{}", escape(name)));
    line("X-WR-TIMEZONE:Europe/Paris");
    for l in VTIMEZONE {
        line(l);
    }
    for ce in events {
        let e = ce.event;
        line("BEGIN:VEVENT");
        line(&format!("UID:{}", escape(&ce.uid)));
        line(&format!("DTSTAMP:{}", utc(ce.updated_at)));
        line(&format!("LAST-MODIFIED:{}", utc(ce.updated_at)));
        line(&format!("DTSTART;TZID=Europe/Paris:{}", paris(e.start)));
        let end = e.end.unwrap_or(e.start.plus_seconds(30 * 60));
        line(&format!("DTEND;TZID=Europe/Paris:{}", paris(end)));
        line(&format!("SUMMARY:{}", escape(&e.title)));
        if let Some(l) = &e.location {
            line(&format!("LOCATION:{}", escape(l)));
        }
        if let Some(n) = &e.notes {
            line(&format!("DESCRIPTION:{}", escape(n)));
        }
        line(&format!("CATEGORIES:{}", e.kind.tag().to_ascii_uppercase()));
        if let Some(r) = &e.recurrence {
            let mut rule = format!("RRULE:FREQ={};INTERVAL={}", r.frequency.rrule(), r.interval);
            if let Some(c) = r.count {
                rule.push_str(&format!(";COUNT={c}"));
            } else if let Some(u) = r.until {
                rule.push_str(&format!(";UNTIL={}", utc(u)));
            }
            line(&rule);
        }
        for m in &e.reminders {
            line("BEGIN:VALARM");
            line("ACTION:DISPLAY");
            line(&format!("DESCRIPTION:{}", escape(&e.title)));
            line(&format!("TRIGGER:-PT{m}M"));
            line("END:VALARM");
        }
        line("END:VEVENT");
    }
    line("END:VCALENDAR");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use carnet_domain::agenda::{EventKind, Frequency, Recurrence};

    #[test]
    fn escapes_and_folds() {
        assert_eq!(escape("a;b,c\\d\ne"), "a\\;b\\,c\\\\d\\ne");
        let mut out = String::new();
        let long = format!("SUMMARY:{}", "é".repeat(60));
        push_folded(&mut out, &long);
        for l in out.split("\r\n").filter(|l| !l.is_empty()) {
            assert!(l.len() <= 75, "{} octets", l.len());
        }
        assert_eq!(out.replace("\r\n ", "").trim_end(), long);
    }

    #[test]
    fn ag3_an_event_with_recurrence_and_alarm() {
        let e = EventInput {
            kind: EventKind::Vaccine,
            title: "Rappel DTP, 45 ans".into(),
            // 2026-07-01 07:00 UTC = 09:00 in Paris (summer time).
            start: Timestamp::from_unix_seconds(1_782_889_200),
            end: None,
            location: Some("Cabinet; 3 rue X".into()),
            notes: None,
            recurrence: Some(Recurrence {
                frequency: Frequency::Yearly,
                interval: 10,
                count: Some(3),
                until: None,
            }),
            reminders: vec![1440],
        };
        let text = calendar(
            "Agenda",
            &[CalendarEvent {
                uid: "e1@carnet".into(),
                event: &e,
                updated_at: Timestamp::from_unix_seconds(1_782_889_200),
            }],
        );
        assert!(
            text.contains("DTSTART;TZID=Europe/Paris:20260701T090000\r\n"),
            "{text}"
        );
        assert!(text.contains("SUMMARY:Rappel DTP\\, 45 ans\r\n"));
        assert!(text.contains("LOCATION:Cabinet\\; 3 rue X\r\n"));
        assert!(text.contains("RRULE:FREQ=YEARLY;INTERVAL=10;COUNT=3\r\n"));
        assert!(text.contains("TRIGGER:-PT1440M\r\n"));
        assert!(text.ends_with("END:VCALENDAR\r\n"));
    }
}
