//! The lifecycle of a space (SPEC LC-1..7), as a pure state machine.
//!
//! ```text
//!             oppose (before the window ends)
//!   Informed ───────────────────────────────► Opposed ──request a space──┐
//!      │ window of 6 weeks ends (job)                                    │
//!      ▼                                                                 │
//!    Open ◄──────────────────────────────────────────────────────────────┘
//!      │ activate (code + card, or FranceConnect)
//!      ▼
//!  Activated ──close──► Closed ──reopen (within 10 years)──► Activated
//!                         │ 10 years after closure (job), or express request
//!                         ▼
//!                       Erased
//!  any living state ──death──► Deceased ──10 years (job)──► Erased
//! ```
//!
//! Open and Activated can both be closed (an opened space that was never activated is still a
//! space). Time comes from the caller (the injected clock); the machine never reads it itself.

use serde::{Deserialize, Serialize};
use time::{Date, Month, OffsetDateTime, Time};

use crate::clock::Timestamp;

/// LC-3: the opposition window lasts 6 weeks from the information.
pub const OPPOSITION_WINDOW_SECONDS: i64 = 6 * 7 * 24 * 3600;

/// LC-5: an express request for deletion is honoured within 3 months. Our choice: 30 days
/// after the request, during which reopening the space cancels it.
pub const ERASURE_GRACE_SECONDS: i64 = 30 * 24 * 3600;
/// LC-5, LC-6: data is archived 10 years after closure or death, then erased.
pub const ARCHIVE_YEARS: i32 = 10;
/// MI-3: majority.
pub const MAJORITY_YEARS: i32 = 18;
/// LC-5b: a suspended space is closed if the holder does not object within 6 weeks.
pub const SUSPENSION_OBJECTION_SECONDS: i64 = 6 * 7 * 24 * 3600;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Lifecycle {
    /// Created from the roster; the person was informed at `informed_at` (LC-2).
    Informed { informed_at: Timestamp },
    /// The person objected: no space (LC-3). They may ask for one later.
    Opposed { at: Timestamp },
    /// Opened (automatically or on request), not yet activated by the holder (LC-4).
    Open { since: Timestamp },
    /// The holder activated it and has credentials.
    Activated { since: Timestamp },
    /// Closed by the holder or representative (LC-5); archived until erasure.
    Closed { at: Timestamp },
    /// The holder died (LC-6); archived until erasure.
    Deceased { at: Timestamp },
    /// Erased for good (LC-7).
    Erased { at: Timestamp },
    /// LC-5b: suspended by the operator at `at`; closed 6 weeks later unless the holder objects.
    Suspended { at: Timestamp },
    /// LC-5b: still suspended, the holder objected to the closure at `at`; the operator decides.
    SuspensionContested { at: Timestamp },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    /// The person (or representative) objects to the creation of the space.
    Oppose,
    /// An opposed person asks for a space after all.
    RequestSpace,
    /// The background job: the opposition window is over.
    OppositionWindowEnded,
    /// The holder proved identity and set credentials.
    Activate,
    /// The holder (or representative) closes the space.
    Close,
    /// The holder reopens a closed space.
    Reopen,
    /// The insurer reports the holder's death.
    Death,
    /// The background job: the archive period is over.
    ArchivePeriodEnded,
    /// Express request for deletion of a closed space (honoured at once; LC-5 allows 3 months).
    EraseOnRequest,
    /// LC-5b: the operator suspends the space (serious malfunction or fraud).
    Suspend,
    /// LC-5b: the holder objects to the closure of their suspended space.
    ContestSuspension,
    /// LC-5b: the operator lifts the suspension; the space is as it was.
    LiftSuspension,
    /// LC-5b, the background job: six weeks of suspension without objection.
    SuspensionWindowEnded,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TransitionError {
    #[error("not allowed: a space that is {state} cannot {event}")]
    NotAllowed {
        state: &'static str,
        event: &'static str,
    },
    #[error("the opposition window ended on {0}; the space can be closed instead")]
    OppositionWindowOver(Timestamp),
    #[error("the opposition window only ends on {0}")]
    OppositionWindowNotOver(Timestamp),
    #[error("the space can only be reopened until {0}; its data has been or will be erased")]
    ReopenPeriodOver(Timestamp),
    #[error("the archive period only ends on {0}")]
    ArchiveNotOver(Timestamp),
    #[error("the time to object to the suspension's closure ended on {0}")]
    SuspensionWindowOver(Timestamp),
    #[error("the time to object to the suspension's closure only ends on {0}")]
    SuspensionWindowNotOver(Timestamp),
}

impl Lifecycle {
    pub const fn name(&self) -> &'static str {
        match self {
            Lifecycle::Informed { .. } => "informed",
            Lifecycle::Opposed { .. } => "opposed",
            Lifecycle::Open { .. } => "open",
            Lifecycle::Activated { .. } => "activated",
            Lifecycle::Closed { .. } => "closed",
            Lifecycle::Deceased { .. } => "deceased",
            Lifecycle::Erased { .. } => "erased",
            Lifecycle::Suspended { .. } => "suspended",
            Lifecycle::SuspensionContested { .. } => "suspension_contested",
        }
    }

    /// When the state began.
    pub const fn since(&self) -> Timestamp {
        match *self {
            Lifecycle::Informed { informed_at: t }
            | Lifecycle::Opposed { at: t }
            | Lifecycle::Open { since: t }
            | Lifecycle::Activated { since: t }
            | Lifecycle::Closed { at: t }
            | Lifecycle::Deceased { at: t }
            | Lifecycle::Erased { at: t }
            | Lifecycle::Suspended { at: t }
            | Lifecycle::SuspensionContested { at: t } => t,
        }
    }

    /// Rebuilds a state from its stored name and start time.
    pub fn from_parts(name: &str, since: Timestamp) -> Option<Lifecycle> {
        Some(match name {
            "informed" => Lifecycle::Informed { informed_at: since },
            "opposed" => Lifecycle::Opposed { at: since },
            "open" => Lifecycle::Open { since },
            "activated" => Lifecycle::Activated { since },
            "closed" => Lifecycle::Closed { at: since },
            "deceased" => Lifecycle::Deceased { at: since },
            "erased" => Lifecycle::Erased { at: since },
            "suspended" => Lifecycle::Suspended { at: since },
            "suspension_contested" => Lifecycle::SuspensionContested { at: since },
            _ => return None,
        })
    }

    /// Whether the space exists for professionals and can be fed (open, activated).
    pub const fn is_open(&self) -> bool {
        matches!(self, Lifecycle::Open { .. } | Lifecycle::Activated { .. })
    }

    /// Whether the holder can log in (only an activated space; AU, issue 3 "must hold").
    pub const fn allows_login(&self) -> bool {
        matches!(self, Lifecycle::Activated { .. })
    }

    /// LC-5b: whether the operator suspended the space (objected to or not): nobody reaches it.
    pub const fn is_suspended(&self) -> bool {
        matches!(
            self,
            Lifecycle::Suspended { .. } | Lifecycle::SuspensionContested { .. }
        )
    }

    /// The next automatic transition and when it is due, for the background job.
    pub fn deadline(&self) -> Option<(Timestamp, Event)> {
        match *self {
            Lifecycle::Informed { informed_at } => {
                Some((opposition_window_end(informed_at), Event::OppositionWindowEnded))
            }
            Lifecycle::Closed { at } | Lifecycle::Deceased { at } => {
                Some((archive_end(at), Event::ArchivePeriodEnded))
            }
            Lifecycle::Suspended { at } => Some((suspension_end(at), Event::SuspensionWindowEnded)),
            Lifecycle::Opposed { .. }
            | Lifecycle::Open { .. }
            | Lifecycle::Activated { .. }
            | Lifecycle::Erased { .. }
            | Lifecycle::SuspensionContested { .. } => None,
        }
    }

    /// Applies `event` at `now`. Illegal transitions are refused with the reason.
    pub fn apply(self, event: Event, now: Timestamp) -> Result<Lifecycle, TransitionError> {
        use Event as E;
        use Lifecycle as L;
        let refused = || TransitionError::NotAllowed {
            state: self.name(),
            event: event_name(event),
        };
        match (self, event) {
            (L::Informed { informed_at }, E::Oppose) => {
                let end = opposition_window_end(informed_at);
                if now < end {
                    Ok(L::Opposed { at: now })
                } else {
                    Err(TransitionError::OppositionWindowOver(end))
                }
            }
            (L::Informed { informed_at }, E::OppositionWindowEnded) => {
                let end = opposition_window_end(informed_at);
                if now >= end {
                    Ok(L::Open { since: now })
                } else {
                    Err(TransitionError::OppositionWindowNotOver(end))
                }
            }
            (L::Opposed { .. }, E::RequestSpace) => Ok(L::Open { since: now }),
            // LC-4 with FranceConnect or the provisional code: activation may happen during the
            // window too (the person then obviously does not object).
            (L::Informed { .. } | L::Open { .. }, E::Activate) => Ok(L::Activated { since: now }),
            (L::Open { .. } | L::Activated { .. }, E::Close) => Ok(L::Closed { at: now }),
            (L::Closed { at }, E::Reopen) => {
                let end = archive_end(at);
                if now < end {
                    Ok(L::Activated { since: now })
                } else {
                    Err(TransitionError::ReopenPeriodOver(end))
                }
            }
            (
                L::Informed { .. }
                | L::Open { .. }
                | L::Activated { .. }
                | L::Closed { .. }
                | L::Suspended { .. }
                | L::SuspensionContested { .. },
                E::Death,
            ) => Ok(L::Deceased { at: now }),
            (L::Activated { .. }, E::Suspend) => Ok(L::Suspended { at: now }),
            (L::Suspended { at }, E::ContestSuspension) => {
                let end = suspension_end(at);
                if now < end {
                    Ok(L::SuspensionContested { at: now })
                } else {
                    Err(TransitionError::SuspensionWindowOver(end))
                }
            }
            (L::Suspended { .. } | L::SuspensionContested { .. }, E::LiftSuspension) => {
                Ok(L::Activated { since: now })
            }
            (L::Suspended { at }, E::SuspensionWindowEnded) => {
                let end = suspension_end(at);
                if now >= end {
                    Ok(L::Closed { at: now })
                } else {
                    Err(TransitionError::SuspensionWindowNotOver(end))
                }
            }
            (L::Closed { at } | L::Deceased { at }, E::ArchivePeriodEnded) => {
                let end = archive_end(at);
                if now >= end {
                    Ok(L::Erased { at: now })
                } else {
                    Err(TransitionError::ArchiveNotOver(end))
                }
            }
            (L::Closed { .. }, E::EraseOnRequest) => Ok(L::Erased { at: now }),
            _ => Err(refused()),
        }
    }
}

pub const fn event_name(e: Event) -> &'static str {
    match e {
        Event::Oppose => "object",
        Event::RequestSpace => "ask for a space",
        Event::OppositionWindowEnded => "open at the end of the opposition window",
        Event::Activate => "be activated",
        Event::Close => "be closed",
        Event::Reopen => "be reopened",
        Event::Death => "be closed on death",
        Event::ArchivePeriodEnded => "be erased at the end of the archive period",
        Event::EraseOnRequest => "be erased on request",
        Event::Suspend => "be suspended",
        Event::ContestSuspension => "have its closure objected to",
        Event::LiftSuspension => "have its suspension lifted",
        Event::SuspensionWindowEnded => "be closed at the end of its suspension",
    }
}

/// LC-5b: the first instant after the 6 weeks a suspended space's holder has to object.
pub const fn suspension_end(suspended_at: Timestamp) -> Timestamp {
    suspended_at.plus_seconds(SUSPENSION_OBJECTION_SECONDS)
}

/// The first instant after the 6-week window that starts at `informed_at`.
pub const fn opposition_window_end(informed_at: Timestamp) -> Timestamp {
    informed_at.plus_seconds(OPPOSITION_WINDOW_SECONDS)
}

/// `t` plus `years` calendar years (29 February goes to 28 February in a common year).
pub fn add_years(t: Timestamp, years: i32) -> Timestamp {
    let Some(odt) = t.to_offset_date_time() else {
        return t;
    };
    let date = odt.date();
    let year = date.year() + years;
    let new_date = Date::from_calendar_date(year, date.month(), date.day())
        .or_else(|_| Date::from_calendar_date(year, Month::February, 28));
    match new_date {
        Ok(d) => Timestamp::from_offset_date_time(odt.replace_date(d)),
        Err(_) => t,
    }
}

/// The end of the 10-year archive that starts at closure or death.
pub fn archive_end(closed_at: Timestamp) -> Timestamp {
    add_years(closed_at, ARCHIVE_YEARS)
}

/// The instant someone born on `birth_date` turns 18 (midnight UTC of the 18th birthday;
/// born on 29 February: 28 February).
pub fn majority_at(birth_date: Date) -> Timestamp {
    let start = Timestamp::from_offset_date_time(OffsetDateTime::new_utc(birth_date, Time::MIDNIGHT));
    add_years(start, MAJORITY_YEARS)
}

/// Age in whole years on the day `on` of someone born on `birth_date` (born on 29 February:
/// a year older on 1 March of a common year); 0 before birth.
pub fn age_on(birth_date: Date, on: Date) -> u32 {
    let mut years = on.year() - birth_date.year();
    if (on.month() as u8, on.day()) < (birth_date.month() as u8, birth_date.day()) {
        years -= 1;
    }
    u32::try_from(years).unwrap_or(0)
}

/// Whether someone born on `birth_date` is a minor at `now`.
pub fn is_minor(birth_date: Date, now: Timestamp) -> bool {
    now < majority_at(birth_date)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use time::macros::{date, datetime};

    fn ts(odt: OffsetDateTime) -> Timestamp {
        Timestamp::from_offset_date_time(odt)
    }

    #[test]
    fn ages_count_whole_years() {
        assert_eq!(age_on(date!(1984 - 03 - 12), date!(2026 - 12 - 07)), 42);
        assert_eq!(age_on(date!(1984 - 12 - 08), date!(2026 - 12 - 07)), 41);
        assert_eq!(age_on(date!(1984 - 12 - 07), date!(2026 - 12 - 07)), 42);
        assert_eq!(age_on(date!(2008 - 02 - 29), date!(2026 - 02 - 28)), 17);
        assert_eq!(age_on(date!(2008 - 02 - 29), date!(2026 - 03 - 01)), 18);
        assert_eq!(age_on(date!(2030 - 01 - 01), date!(2026 - 12 - 07)), 0);
    }

    proptest! {
        /// The age agrees with majority (18th birthday) as `is_minor` counts it.
        #[test]
        fn age_agrees_with_majority(days in 0i64..40_000, born in 0i64..30_000) {
            let birth = date!(1950 - 01 - 01) + time::Duration::days(born);
            let on = birth + time::Duration::days(days);
            let noon = Timestamp::from_offset_date_time(OffsetDateTime::new_utc(on, time::macros::time!(12:00)));
            prop_assert_eq!(age_on(birth, on) >= 18, !is_minor(birth, noon));
        }
    }

    const ALL_EVENTS: [Event; 13] = [
        Event::Oppose,
        Event::RequestSpace,
        Event::OppositionWindowEnded,
        Event::Activate,
        Event::Close,
        Event::Reopen,
        Event::Death,
        Event::ArchivePeriodEnded,
        Event::EraseOnRequest,
        Event::Suspend,
        Event::ContestSuspension,
        Event::LiftSuspension,
        Event::SuspensionWindowEnded,
    ];

    #[test]
    fn opposition_window_boundaries_lc3() {
        let informed = ts(datetime!(2026-01-05 09:00:00 UTC));
        let s = Lifecycle::Informed {
            informed_at: informed,
        };
        let last_second = ts(datetime!(2026-02-16 08:59:59 UTC));
        let end = ts(datetime!(2026-02-16 09:00:00 UTC));
        assert_eq!(opposition_window_end(informed), end);
        // Last second of the 6 weeks: can still object, not opened yet.
        assert_eq!(
            s.apply(Event::Oppose, last_second),
            Ok(Lifecycle::Opposed { at: last_second })
        );
        assert_eq!(
            s.apply(Event::OppositionWindowEnded, last_second),
            Err(TransitionError::OppositionWindowNotOver(end))
        );
        // First second after: opens; too late to object.
        assert_eq!(
            s.apply(Event::OppositionWindowEnded, end),
            Ok(Lifecycle::Open { since: end })
        );
        assert_eq!(
            s.apply(Event::Oppose, end),
            Err(TransitionError::OppositionWindowOver(end))
        );
        assert_eq!(s.deadline(), Some((end, Event::OppositionWindowEnded)));
    }

    #[test]
    fn ten_year_archive_boundaries_lc5_lc6() {
        let closed = ts(datetime!(2027-03-10 14:30:00 UTC));
        let s = Lifecycle::Closed { at: closed };
        let end = ts(datetime!(2037-03-10 14:30:00 UTC));
        let before = end.plus_seconds(-1);
        assert_eq!(
            s.apply(Event::Reopen, before),
            Ok(Lifecycle::Activated { since: before })
        );
        assert_eq!(
            s.apply(Event::Reopen, end),
            Err(TransitionError::ReopenPeriodOver(end))
        );
        assert_eq!(
            s.apply(Event::ArchivePeriodEnded, before),
            Err(TransitionError::ArchiveNotOver(end))
        );
        assert_eq!(
            s.apply(Event::ArchivePeriodEnded, end),
            Ok(Lifecycle::Erased { at: end })
        );
        let dead = Lifecycle::Deceased { at: closed };
        assert_eq!(dead.deadline(), Some((end, Event::ArchivePeriodEnded)));
        assert!(
            dead.apply(Event::Reopen, before).is_err(),
            "a deceased person's space is not reopened"
        );
    }

    #[test]
    fn suspension_closes_after_six_weeks_unless_contested_lc5b() {
        let t0 = ts(datetime!(2027-01-11 10:00:00 UTC));
        let activated = Lifecycle::Activated {
            since: t0.plus_seconds(-86_400),
        };
        let suspended = activated.apply(Event::Suspend, t0).unwrap();
        assert_eq!(suspended, Lifecycle::Suspended { at: t0 });
        assert!(!suspended.allows_login() && !suspended.is_open() && suspended.is_suspended());
        let end = ts(datetime!(2027-02-22 10:00:00 UTC));
        assert_eq!(suspension_end(t0), end);
        assert_eq!(suspended.deadline(), Some((end, Event::SuspensionWindowEnded)));
        let last = end.plus_seconds(-1);
        // Last second: the holder may still object; the job may not close yet.
        assert_eq!(
            suspended.apply(Event::SuspensionWindowEnded, last),
            Err(TransitionError::SuspensionWindowNotOver(end))
        );
        let contested = suspended.apply(Event::ContestSuspension, last).unwrap();
        assert_eq!(contested, Lifecycle::SuspensionContested { at: last });
        assert!(contested.is_suspended() && !contested.allows_login());
        assert_eq!(contested.deadline(), None, "an objection stops the closure");
        // From the end on: too late to object; the job closes it (reopenable like any closure).
        assert_eq!(
            suspended.apply(Event::ContestSuspension, end),
            Err(TransitionError::SuspensionWindowOver(end))
        );
        assert_eq!(
            suspended.apply(Event::SuspensionWindowEnded, end),
            Ok(Lifecycle::Closed { at: end })
        );
        // Only the operator lifts it, from either state; the holder cannot reopen it.
        for s in [suspended, contested] {
            assert_eq!(
                s.apply(Event::LiftSuspension, end),
                Ok(Lifecycle::Activated { since: end })
            );
            for e in [Event::Reopen, Event::Activate, Event::Close, Event::Suspend] {
                assert!(s.apply(e, end).is_err(), "{e:?} from {}", s.name());
            }
            assert_eq!(s.apply(Event::Death, end), Ok(Lifecycle::Deceased { at: end }));
        }
        assert!(contested.apply(Event::ContestSuspension, end).is_err());
        assert!(contested.apply(Event::SuspensionWindowEnded, end).is_err());
        for s in [
            Lifecycle::Informed { informed_at: t0 },
            Lifecycle::Open { since: t0 },
            Lifecycle::Closed { at: t0 },
            Lifecycle::Opposed { at: t0 },
        ] {
            assert!(s.apply(Event::Suspend, end).is_err(), "only an activated space");
        }
    }

    #[test]
    fn leap_day_anniversaries() {
        let t = ts(datetime!(2028-02-29 10:00:00 UTC));
        assert_eq!(add_years(t, 10), ts(datetime!(2038-02-28 10:00:00 UTC)));
        assert_eq!(
            majority_at(date!(2008 - 02 - 29)),
            ts(datetime!(2026-02-28 00:00:00 UTC))
        );
    }

    #[test]
    fn majority_at_18_mi3() {
        let born = date!(2008 - 11 - 23);
        let birthday = ts(datetime!(2026-11-23 00:00:00 UTC));
        assert_eq!(majority_at(born), birthday);
        assert!(is_minor(born, birthday.plus_seconds(-1)));
        assert!(!is_minor(born, birthday));
    }

    #[test]
    fn every_transition_of_the_diagram() {
        let t0 = Timestamp::from_unix_seconds(1_800_000_000);
        let later = t0.plus_seconds(OPPOSITION_WINDOW_SECONDS);
        let informed = Lifecycle::Informed { informed_at: t0 };
        let opposed = informed.apply(Event::Oppose, t0.plus_seconds(60)).unwrap();
        let open = opposed.apply(Event::RequestSpace, later).unwrap();
        assert_eq!(open, Lifecycle::Open { since: later });
        let activated = open.apply(Event::Activate, later).unwrap();
        assert_eq!(activated.name(), "activated");
        let closed = activated.apply(Event::Close, later).unwrap();
        let reopened = closed.apply(Event::Reopen, later.plus_seconds(1)).unwrap();
        assert_eq!(reopened.name(), "activated");
        let closed_again = reopened.apply(Event::Close, later.plus_seconds(2)).unwrap();
        assert_eq!(
            closed_again
                .apply(Event::EraseOnRequest, later.plus_seconds(3))
                .unwrap()
                .name(),
            "erased"
        );
        assert_eq!(
            open.apply(Event::Close, later).unwrap().name(),
            "closed",
            "never activated, still closable"
        );
        assert_eq!(informed.apply(Event::Activate, t0).unwrap().name(), "activated");
        for s in [informed, open, activated, closed] {
            assert_eq!(
                s.apply(Event::Death, later).unwrap(),
                Lifecycle::Deceased { at: later }
            );
        }
    }

    #[test]
    fn illegal_transitions_are_refused_with_a_clear_error() {
        let t = Timestamp::from_unix_seconds(1_800_000_000);
        let erased = Lifecycle::Erased { at: t };
        for e in ALL_EVENTS {
            let err = erased.apply(e, t).unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("not allowed: a space that is erased cannot"),
                "{err}"
            );
        }
        assert!(
            Lifecycle::Opposed { at: t }.apply(Event::Activate, t).is_err(),
            "opposed: no space to activate"
        );
        assert!(Lifecycle::Opposed { at: t }.apply(Event::Close, t).is_err());
        assert!(Lifecycle::Activated { since: t }.apply(Event::Oppose, t).is_err());
        assert!(
            Lifecycle::Activated { since: t }
                .apply(Event::EraseOnRequest, t)
                .is_err(),
            "close first"
        );
    }

    fn any_state() -> impl Strategy<Value = Lifecycle> {
        let t = (0i64..4_000_000_000).prop_map(Timestamp::from_unix_seconds);
        prop_oneof![
            t.clone().prop_map(|t| Lifecycle::Informed { informed_at: t }),
            t.clone().prop_map(|t| Lifecycle::Opposed { at: t }),
            t.clone().prop_map(|t| Lifecycle::Open { since: t }),
            t.clone().prop_map(|t| Lifecycle::Activated { since: t }),
            t.clone().prop_map(|t| Lifecycle::Closed { at: t }),
            t.clone().prop_map(|t| Lifecycle::Deceased { at: t }),
            t.clone().prop_map(|t| Lifecycle::Suspended { at: t }),
            t.clone().prop_map(|t| Lifecycle::SuspensionContested { at: t }),
            t.prop_map(|t| Lifecycle::Erased { at: t }),
        ]
    }

    proptest! {
        #[test]
        fn transitions_are_stamped_now_and_round_trip_through_storage(
            s in any_state(),
            e in prop::sample::select(ALL_EVENTS.to_vec()),
            now in 0i64..4_500_000_000,
        ) {
            let now = Timestamp::from_unix_seconds(now);
            prop_assert_eq!(Lifecycle::from_parts(s.name(), s.since()), Some(s));
            if let Ok(next) = s.apply(e, now) {
                prop_assert_eq!(next.since(), now);
                prop_assert!(!matches!(s, Lifecycle::Erased { .. }), "erased is final");
                // Deadlines are never in the past of the state's start.
                if let Some((due, _)) = next.deadline() {
                    prop_assert!(due > next.since());
                }
            }
        }

        #[test]
        fn the_job_event_succeeds_exactly_from_the_deadline(s in any_state(), offset in -100i64..100) {
            if let Some((due, ev)) = s.deadline() {
                let r = s.apply(ev, due.plus_seconds(offset));
                prop_assert_eq!(r.is_ok(), offset >= 0);
            }
        }
    }
}
