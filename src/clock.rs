//! Time and randomness, passed in so that tests control them.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rand::RngCore;
use time::OffsetDateTime;

/// Seconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// Where the application reads the time.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// The real clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        OffsetDateTime::now_utc().unix_timestamp()
    }
}

/// A clock that only moves when told to; for tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    pub fn starting_now() -> Self {
        Self(Arc::new(AtomicI64::new(SystemClock.now())))
    }

    pub fn advance_seconds(&self, seconds: i64) {
        self.0.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        self.0.load(Ordering::SeqCst)
    }
}

/// Where the application gets unguessable values (session ids, tokens).
pub trait Random: Send + Sync + 'static {
    fn fill(&self, buf: &mut [u8]);

    /// 32 random bytes as 43 URL-safe characters.
    fn token(&self) -> String {
        use base64::Engine;
        let mut bytes = [0u8; 32];
        self.fill(&mut bytes);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}

/// A CSPRNG seeded from the operating system (rand's thread-local ChaCha generator).
#[derive(Debug, Default, Clone, Copy)]
pub struct OsRandom;

impl Random for OsRandom {
    fn fill(&self, buf: &mut [u8]) {
        rand::rng().fill_bytes(buf);
    }
}

/// A time zone the bundled IANA database does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("\"{0}\" is not an IANA time zone (such as Europe/Stockholm)")]
pub struct UnknownTimeZone(pub String);

/// Times for people, in the portal's time zone (`portal.time_zone`, Europe/Stockholm by default),
/// with the zone's abbreviation: `2026-12-07 10:00 CET`. Audit exports and logs stay in UTC.
#[derive(Debug, Clone)]
pub struct LocalTime(jiff::tz::TimeZone);

impl LocalTime {
    /// The IANA zone `name` (the bundled database, so that no system files are needed).
    pub fn new(name: &str) -> Result<Self, UnknownTimeZone> {
        jiff::tz::TimeZone::get(name).map(Self).map_err(|_| UnknownTimeZone(name.to_string()))
    }

    pub fn utc() -> Self {
        Self(jiff::tz::TimeZone::UTC)
    }

    /// When the day `date` (`YYYY-MM-DD`) begins in this zone; None when it is not such a date.
    pub fn day_start(&self, date: &str) -> Option<Timestamp> {
        let date: jiff::civil::Date = date.trim().parse().ok()?;
        date.to_zoned(self.0.clone()).ok().map(|z| z.timestamp().as_second())
    }

    /// When the day `date` ends (the next one begins) in this zone: 23 or 25 hours after it
    /// began on the days the clocks change.
    pub fn day_end(&self, date: &str) -> Option<Timestamp> {
        let date: jiff::civil::Date = date.trim().parse().ok()?;
        date.tomorrow().ok()?.to_zoned(self.0.clone()).ok().map(|z| z.timestamp().as_second())
    }

    pub fn format(&self, ts: Timestamp) -> String {
        jiff::Timestamp::from_second(ts)
            .map(|t| t.to_zoned(self.0.clone()).strftime("%Y-%m-%d %H:%M %Z").to_string())
            .unwrap_or_default()
    }
}

/// Formats a timestamp for logs and the audit trail: `2026-11-22 14:05 UTC`.
pub fn format_utc(ts: Timestamp) -> String {
    let format = time::macros::format_description!("[year]-[month]-[day] [hour]:[minute] UTC");
    OffsetDateTime::from_unix_timestamp(ts).ok().and_then(|t| t.format(&format).ok()).unwrap_or_default()
}

/// Formats a timestamp for machines (RFC 3339, UTC): `2026-11-22T14:05:09Z`.
pub fn format_rfc3339(ts: Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod local_time_tests {
    use super::LocalTime;

    #[test]
    fn times_are_shown_in_the_portals_zone_with_its_abbreviation() {
        let stockholm = LocalTime::new("Europe/Stockholm").unwrap();
        // 2026-12-07 09:00 UTC is 10:00 in winter; 2026-07-01 09:00 UTC is 11:00 in summer.
        assert_eq!(stockholm.format(1_796_634_000), "2026-12-07 10:00 CET");
        assert_eq!(stockholm.format(1_782_896_400), "2026-07-01 11:00 CEST");
        assert_eq!(LocalTime::utc().format(1_796_634_000), "2026-12-07 09:00 UTC");
        assert!(LocalTime::new("Europe/Nowhere").is_err());
    }

    #[test]
    fn a_day_starts_at_midnight_in_the_portals_zone() {
        let stockholm = LocalTime::new("Europe/Stockholm").unwrap();
        // 2026-12-07 00:00 CET is 2026-12-06 23:00 UTC; in summer, two hours before UTC's.
        assert_eq!(stockholm.day_start("2026-12-07"), Some(1_796_598_000));
        assert_eq!(stockholm.day_start("2026-07-01"), Some(1_782_856_800));
        assert_eq!(LocalTime::utc().day_start("2026-12-07"), Some(1_796_601_600));
        assert_eq!(stockholm.day_end("2026-12-06"), stockholm.day_start("2026-12-07"));
        // 2026-03-29, when summer time begins, has 23 hours.
        let (start, end) = (stockholm.day_start("2026-03-29").unwrap(), stockholm.day_end("2026-03-29").unwrap());
        assert_eq!(end - start, 23 * 3600);
        for bad in ["", "7 december", "2026-13-01", "2026-02-30"] {
            assert_eq!(stockholm.day_start(bad), None, "{bad}");
        }
    }
}
