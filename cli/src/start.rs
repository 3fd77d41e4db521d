//! Where reading starts, as kcat and rpk users type it (`--offset` of `weir consume`, `--to`
//! of `weir groups reset-offsets`): parsing, and resolving against a partition's log start
//! and end offsets. Pure functions: the clock is passed in (`now`) and the offsets too.
//!
//! | Text | Meaning |
//! |---|---|
//! | `beginning`, `earliest`, `start`, `oldest` | the log start offset |
//! | `end`, `latest`, `newest` | the log end offset (the next record) |
//! | `N` | offset N |
//! | `+N` | N records after the log start (rpk) |
//! | `-N` | N records before the log end: the last N (kcat, rpk) |
//! | `@MS` | the first record at or after MS milliseconds since 1970 |
//! | `@2024-05-01T12:00:00Z`, `@2024-05-01 12:00:00`, `@...+02:00`, `@2024-05-01` | the same, from an RFC 3339 date (UTC when no zone is given; a bare date is its midnight UTC) |
//! | `@-1h`, `@-15m`, `@-2days 4h` | the same, that long before now |

use std::time::{SystemTime, UNIX_EPOCH};

/// Where to start in each partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Start {
    /// The log start offset.
    Beginning,
    /// The log end offset.
    End,
    /// This offset in every partition.
    Offset(i64),
    /// This many records after the log start.
    Skip(i64),
    /// This many records before the log end.
    BeforeEnd(i64),
    /// The first record at or after this timestamp (ms since 1970).
    Timestamp(i64),
}

/// What `--offset` accepts, for error messages.
const FORMS: &str = "beginning, end, an offset N, +N (after the start), -N (the last N), \
                     @MS since 1970, @RFC-3339-DATE or @-DURATION (@-1h)";

/// Parses a start position, relative times counted back from the wall clock.
///
/// # Errors
/// A message naming the accepted forms.
pub(crate) fn parse_start(text: &str) -> Result<Start, String> {
    parse_start_at(text, SystemTime::now())
}

/// Parses a start position, relative times counted back from `now`.
///
/// # Errors
/// A message naming the accepted forms.
pub(crate) fn parse_start_at(text: &str, now: SystemTime) -> Result<Start, String> {
    match text {
        "beginning" | "earliest" | "start" | "oldest" => return Ok(Start::Beginning),
        "end" | "latest" | "newest" => return Ok(Start::End),
        _ => {}
    }
    if let Some(when) = text.strip_prefix('@') {
        return parse_time(when, now)
            .map(Start::Timestamp)
            .map_err(|why| format!("`{text}`: {why}"));
    }
    let count = |digits: &str| digits.parse::<i64>().ok().filter(|n| *n >= 0);
    let parsed = if let Some(n) = text.strip_prefix('+') {
        count(n).map(Start::Skip)
    } else if let Some(n) = text.strip_prefix('-') {
        count(n).map(Start::BeforeEnd)
    } else {
        count(text).map(Start::Offset)
    };
    parsed.ok_or_else(|| format!("`{text}`: expected {FORMS}"))
}

/// `@...` without the `@`: milliseconds since 1970.
fn parse_time(when: &str, now: SystemTime) -> Result<i64, String> {
    if !when.is_empty() && when.bytes().all(|b| b.is_ascii_digit()) {
        return when
            .parse::<i64>()
            .map_err(|e| format!("not a timestamp in milliseconds: {e}"));
    }
    if let Some(ago) = when.strip_prefix('-') {
        let ago = humantime::parse_duration(ago)
            .map_err(|e| format!("not a duration such as -1h or -90s: {e}"))?;
        let at = now
            .checked_sub(ago)
            .ok_or_else(|| "that is before 1970".to_owned())?;
        return millis(at);
    }
    parse_date(when).map_err(|why| {
        format!("{why}; a time is @MS since 1970, an RFC 3339 date or @-DURATION (@-1h)")
    })
}

/// An RFC 3339 date and time (`Z`, a `+HH:MM`/`-HH:MM` offset, or no zone for UTC), or a
/// bare `YYYY-MM-DD` (midnight UTC).
fn parse_date(text: &str) -> Result<i64, String> {
    let (local, offset) = split_offset(text)?;
    let local = if local.len() == "2024-05-01".len() {
        format!("{local}T00:00:00Z")
    } else {
        local.to_owned()
    };
    let at = humantime::parse_rfc3339_weak(&local).map_err(|e| format!("not a date: {e}"))?;
    Ok(millis(at)? - offset)
}

/// Splits a trailing `+HH:MM` or `-HH:MM` off a date and time, giving the offset in ms.
fn split_offset(text: &str) -> Result<(&str, i64), String> {
    // Only after the time (a date's own dashes are not an offset).
    let tail = text.len().saturating_sub(6);
    let Some(sign) = text.get(tail..=tail).filter(|_| text.len() > 16) else {
        return Ok((text, 0));
    };
    let sign = match sign {
        "+" => 1,
        "-" => -1,
        _ => return Ok((text, 0)),
    };
    let zone = &text[tail + 1..];
    let hours = zone.get(..2).and_then(|h| h.parse::<i64>().ok());
    let minutes = zone.get(3..).and_then(|m| m.parse::<i64>().ok());
    match (hours, zone.as_bytes().get(2), minutes) {
        (Some(h), Some(b':'), Some(m)) if h < 24 && m < 60 => {
            Ok((&text[..tail], sign * (h * 60 + m) * 60_000))
        }
        _ => Err(format!("bad zone offset `{}`", &text[tail..])),
    }
}

fn millis(at: SystemTime) -> Result<i64, String> {
    let since = at
        .duration_since(UNIX_EPOCH)
        .map_err(|_before| "that is before 1970".to_owned())?;
    i64::try_from(since.as_millis()).map_err(|e| format!("too far in the future: {e}"))
}

/// The offset to start at in a partition whose records are at `first..end`, for the forms
/// that need no lookup by time (`Timestamp` is resolved by the broker).
///
/// # Errors
/// A start past the end, in words (the caller adds the partition).
pub(crate) fn resolve(start: Start, first: i64, end: i64) -> Result<i64, String> {
    let past_end = |asked: String| {
        Err(format!(
            "{asked} is past the end: its records are at offsets {first} to {} ({} records); \
             --offset end waits for new ones",
            end - 1,
            end - first
        ))
    };
    match start {
        Start::Beginning => Ok(first),
        Start::End => Ok(end),
        Start::Offset(n) if n > end => past_end(format!("offset {n}")),
        Start::Offset(n) => Ok(n.max(first)),
        Start::Skip(n) if first.saturating_add(n) > end => past_end(format!("+{n}")),
        Start::Skip(n) => Ok(first + n),
        Start::BeforeEnd(n) => Ok(end.saturating_sub(n).max(first)),
        // Looked up by the broker; an end here means "no record that late".
        Start::Timestamp(_) => Ok(end),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn at_ms(ms: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(ms)
    }

    const NOW_MS: u64 = 1_700_000_000_000;

    fn parse(text: &str) -> Result<Start, String> {
        parse_start_at(text, at_ms(NOW_MS))
    }

    #[test]
    fn names_offsets_and_relative_counts() {
        for name in ["beginning", "earliest", "start", "oldest"] {
            assert_eq!(parse(name), Ok(Start::Beginning));
        }
        for name in ["end", "latest", "newest"] {
            assert_eq!(parse(name), Ok(Start::End));
        }
        assert_eq!(parse("42"), Ok(Start::Offset(42)));
        assert_eq!(parse("+3"), Ok(Start::Skip(3)));
        assert_eq!(parse("-5"), Ok(Start::BeforeEnd(5)));
        for bad in ["soon", "-", "+", "--5", "+-5", "4.2", ""] {
            let err = parse(bad).expect_err(bad);
            assert!(err.contains("-N (the last N)"), "{err}");
        }
    }

    #[test]
    fn timestamps_in_ms_dates_and_durations_before_now() {
        let now = i64::try_from(NOW_MS).expect("fits");
        assert_eq!(parse("@1700"), Ok(Start::Timestamp(1700)));
        assert_eq!(parse("@-1h"), Ok(Start::Timestamp(now - 3_600_000)));
        assert_eq!(parse("@-90s"), Ok(Start::Timestamp(now - 90_000)));
        assert_eq!(parse("@-1h 30m"), Ok(Start::Timestamp(now - 5_400_000)));
        // 2023-11-14T22:13:20Z is 1_700_000_000 s.
        let at = Ok(Start::Timestamp(now));
        assert_eq!(parse("@2023-11-14T22:13:20Z"), at);
        assert_eq!(parse("@2023-11-14 22:13:20"), at);
        assert_eq!(parse("@2023-11-14T22:13:20.000Z"), at);
        assert_eq!(parse("@2023-11-15T00:13:20+02:00"), at);
        assert_eq!(parse("@2023-11-14T20:43:20-01:30"), at);
        assert_eq!(
            parse("@2023-11-14"),
            Ok(Start::Timestamp(now - (22 * 3600 + 13 * 60 + 20) * 1000))
        );
        for bad in [
            "@",
            "@x",
            "@-1 fortnight",
            "@2023-13-01",
            "@2023-11-14T22:13:20+25:00",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert!(parse("@-100000days").is_err(), "before 1970");
    }

    #[test]
    fn resolving_against_the_log() {
        // Records at offsets 10..20.
        let r = |s| resolve(s, 10, 20);
        assert_eq!(r(Start::Beginning), Ok(10));
        assert_eq!(r(Start::End), Ok(20));
        assert_eq!(r(Start::Offset(15)), Ok(15));
        assert_eq!(
            r(Start::Offset(20)),
            Ok(20),
            "the end waits for the next record"
        );
        assert_eq!(r(Start::Offset(3)), Ok(10), "deleted records: the start");
        assert_eq!(r(Start::Skip(4)), Ok(14));
        assert_eq!(r(Start::BeforeEnd(5)), Ok(15));
        assert_eq!(
            r(Start::BeforeEnd(500)),
            Ok(10),
            "fewer than asked: all of them"
        );
        assert_eq!(
            r(Start::Offset(21)),
            Err(
                "offset 21 is past the end: its records are at offsets 10 to 19 (10 \
                 records); --offset end waits for new ones"
                    .to_owned()
            )
        );
        assert!(r(Start::Skip(11)).is_err());
    }
}
