//! Time: every timestamp in doppel is `i64` nanoseconds since the Unix epoch (UTC), which
//! covers the years 1677 to 2262 and matches line protocol's native precision.

use chrono::{DateTime, SecondsFormat, Utc};

/// Nanoseconds since the Unix epoch, UTC.
pub type Timestamp = i64;

/// Why a time could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unparsable time {input:?}: expected RFC 3339 (2026-01-31T12:00:00Z) or epoch milliseconds"
)]
pub struct TimeParseError {
    pub input: String,
}

/// Reads a time given by a user: RFC 3339 (`2026-01-31T12:00:00.5+01:00`) or integer epoch
/// milliseconds (`1769860800000`). Out-of-range values are errors, never wrapped.
pub fn parse_time(input: &str) -> Result<Timestamp, TimeParseError> {
    let err = || TimeParseError {
        input: input.chars().take(64).collect(),
    };
    let s = input.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return ms.checked_mul(1_000_000).ok_or_else(err);
    }
    let dt = DateTime::parse_from_rfc3339(s).map_err(|_| err())?;
    dt.timestamp_nanos_opt().ok_or_else(err)
}

/// Epoch milliseconds to a timestamp, refusing values outside the representable range.
pub fn from_epoch_ms(ms: i64) -> Option<Timestamp> {
    ms.checked_mul(1_000_000)
}

/// RFC 3339 with the shortest exact fraction, always UTC (`Z`).
pub fn format_ts(ts: Timestamp) -> String {
    DateTime::<Utc>::from_timestamp_nanos(ts).to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Precision of line-protocol timestamps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    Nanoseconds,
    Microseconds,
    Milliseconds,
    Seconds,
}

impl Precision {
    /// Reads the `precision` query parameter as InfluxDB 1.x and 2.x clients send it.
    pub fn parse(s: &str) -> Option<Precision> {
        Some(match s {
            "ns" | "n" => Precision::Nanoseconds,
            "us" | "u" | "µs" => Precision::Microseconds,
            "ms" => Precision::Milliseconds,
            "s" => Precision::Seconds,
            _ => return None,
        })
    }

    /// Scales a timestamp in this precision to nanoseconds, `None` on overflow.
    pub fn to_nanos(self, t: i64) -> Option<Timestamp> {
        match self {
            Precision::Nanoseconds => Some(t),
            Precision::Microseconds => t.checked_mul(1_000),
            Precision::Milliseconds => t.checked_mul(1_000_000),
            Precision::Seconds => t.checked_mul(1_000_000_000),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_both_forms() {
        assert_eq!(parse_time("1000").unwrap(), 1_000_000_000);
        assert_eq!(parse_time("1970-01-01T00:00:01Z").unwrap(), 1_000_000_000);
        assert_eq!(
            parse_time("1970-01-01T01:00:01+01:00").unwrap(),
            1_000_000_000
        );
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("9223372036854775807").is_err());
    }

    #[test]
    fn formats_utc() {
        assert_eq!(format_ts(1_500_000_000), "1970-01-01T00:00:01.500Z");
    }

    proptest! {
        #[test]
        fn parse_never_panics(s in "\\PC{0,40}") {
            let _ = parse_time(&s);
        }

        #[test]
        fn format_then_parse_is_identity(ts in -9_000_000_000_000_000_000i64..9_000_000_000_000_000_000i64) {
            prop_assert_eq!(parse_time(&format_ts(ts)).unwrap(), ts);
        }
    }
}
