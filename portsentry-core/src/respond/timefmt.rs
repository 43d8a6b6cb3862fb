//! Timestamps as the various formats spell them (pure: the time zone is a parameter).
//!
//! `jiff` does the calendar work: it reads the system zone from `TZ` / `/etc/localtime`
//! itself (no libc `localtime_r`, so no `unsafe` and no thread-safety trap), and it is
//! maintained by the author of `regex` and `ripgrep`.

use jiff::tz::TimeZone;

use crate::probe::Timestamp;

fn to_jiff(at: Timestamp) -> jiff::Timestamp {
    i64::try_from(at.as_micros())
        .ok()
        .and_then(|us| jiff::Timestamp::from_microsecond(us).ok())
        .unwrap_or(jiff::Timestamp::MAX)
}

/// `MM/DD/YYYY HH:MM:SS` in `tz` (PortSentry 1.2 history).
pub(crate) fn classic(at: Timestamp, tz: &TimeZone) -> String {
    to_jiff(at)
        .to_zoned_datetime(tz.clone())
        .strftime("%m/%d/%Y %H:%M:%S")
        .to_string()
}

/// `YYYY-MM-DDTHH:MM:SS.mmm+hhmm` in `tz` (PortSentry 2.0 history).
pub(crate) fn v2(at: Timestamp, tz: &TimeZone) -> String {
    to_jiff(at)
        .to_zoned_datetime(tz.clone())
        .strftime("%Y-%m-%dT%H:%M:%S%.3f%z")
        .to_string()
}

/// RFC 3339 in UTC with microseconds: `YYYY-MM-DDTHH:MM:SS.uuuuuuZ` (JSON lines).
pub(crate) fn rfc3339_utc(at: Timestamp) -> String {
    to_jiff(at)
        .to_zoned_datetime(TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> Timestamp {
        Timestamp::from_secs_nanos(1_795_558_386, 940_123_000)
    }

    #[test]
    fn formats() {
        let utc = TimeZone::UTC;
        assert_eq!(classic(at(), &utc), "11/24/2026 22:13:06");
        assert_eq!(v2(at(), &utc), "2026-11-24T22:13:06.940+0000");
        assert_eq!(rfc3339_utc(at()), "2026-11-24T22:13:06.940123Z");
        let plus2 = TimeZone::fixed(jiff::tz::offset(2));
        assert_eq!(classic(at(), &plus2), "11/25/2026 00:13:06");
        assert_eq!(v2(at(), &plus2), "2026-11-25T00:13:06.940+0200");
        assert_eq!(
            rfc3339_utc(Timestamp::from_secs(0)),
            "1970-01-01T00:00:00.000000Z"
        );
    }

    #[test]
    fn named_zone_follows_dst() {
        let Ok(ny) = TimeZone::get("America/New_York") else {
            eprintln!("skipping: no tzdata");
            return;
        };
        // 2026-07-01T12:00:00Z is 08:00 EDT; 2026-11-24 is EST.
        assert_eq!(
            classic(Timestamp::from_secs(1_782_907_200), &ny),
            "07/01/2026 08:00:00"
        );
        assert_eq!(v2(at(), &ny), "2026-11-24T17:13:06.940-0500");
    }
}
