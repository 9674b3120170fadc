//! Time, injected. Every rule that depends on time (the 6-week opposition window LC-3, the
//! 10-year archive LC-5, majority at 18 MI-3, code expiry AU-1) reads a [`Clock`] it is given,
//! never the system time directly, so tests can move time to any boundary.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

/// An instant in UTC, microseconds since the Unix epoch. Stored as a 64-bit integer in both
/// databases so one SQL text serves SQLite and PostgreSQL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    pub const MICROS_PER_SECOND: i64 = 1_000_000;

    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    pub const fn from_unix_seconds(seconds: i64) -> Self {
        Self(seconds * Self::MICROS_PER_SECOND)
    }

    pub const fn as_micros(self) -> i64 {
        self.0
    }

    pub const fn unix_seconds(self) -> i64 {
        self.0.div_euclid(Self::MICROS_PER_SECOND)
    }

    /// Sub-second part, in nanoseconds (always `0..1_000_000_000`).
    pub const fn subsec_nanos(self) -> u32 {
        (self.0.rem_euclid(Self::MICROS_PER_SECOND) * 1000) as u32
    }

    /// `self + seconds`, saturating at the ends of the representable range.
    pub const fn plus_seconds(self, seconds: i64) -> Self {
        Self(
            self.0
                .saturating_add(seconds.saturating_mul(Self::MICROS_PER_SECOND)),
        )
    }

    pub fn to_offset_date_time(self) -> Option<OffsetDateTime> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(self.0) * 1000).ok()
    }

    pub fn from_offset_date_time(t: OffsetDateTime) -> Self {
        let micros = t.unix_timestamp_nanos() / 1000;
        Self(micros.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64)
    }

    /// RFC 3339, e.g. `2026-11-23T06:00:00.000001Z`.
    pub fn to_rfc3339(self) -> String {
        self.to_offset_date_time()
            .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
            .unwrap_or_else(|| format!("@{}us", self.0))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

/// The source of "now". Implementations must be cheap and thread-safe.
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    fn now(&self) -> Timestamp;
}

/// The real clock. The only place in Carnet that reads system time.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // the one reader of system time (clippy.toml)
    fn now(&self) -> Timestamp {
        Timestamp::from_offset_date_time(OffsetDateTime::now_utc())
    }
}

/// A clock that only moves when told to. Clones share the same instant, so a test can hold
/// one clone and move the time seen by the server or a job holding another.
#[derive(Clone, Debug)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn new(start: Timestamp) -> Self {
        Self(Arc::new(AtomicI64::new(start.as_micros())))
    }

    pub fn set(&self, t: Timestamp) {
        self.0.store(t.as_micros(), Ordering::SeqCst);
    }

    pub fn advance_seconds(&self, seconds: i64) {
        let delta = seconds.saturating_mul(Timestamp::MICROS_PER_SECOND);
        self.0.fetch_add(delta, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.0.load(Ordering::SeqCst))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_time() {
        let c = ManualClock::new(Timestamp::from_unix_seconds(1_700_000_000));
        let shared = c.clone();
        assert_eq!(c.now(), shared.now());
        c.advance_seconds(42);
        assert_eq!(shared.now(), Timestamp::from_unix_seconds(1_700_000_042));
        shared.set(Timestamp::from_unix_seconds(5));
        assert_eq!(c.now().unix_seconds(), 5);
    }

    #[test]
    fn rfc3339_formatting() {
        let t = Timestamp::from_micros(1_795_392_000_000_001);
        assert_eq!(t.to_rfc3339(), "2026-11-23T00:00:00.000001Z");
    }

    proptest! {
        #[test]
        fn offset_date_time_round_trip(micros in -62_000_000_000_000_000i64..250_000_000_000_000_000i64) {
            let t = Timestamp::from_micros(micros);
            let odt = t.to_offset_date_time().expect("in range");
            prop_assert_eq!(Timestamp::from_offset_date_time(odt), t);
            prop_assert_eq!(t.unix_seconds() * 1_000_000 + i64::from(t.subsec_nanos() / 1000), micros);
        }
    }
}
