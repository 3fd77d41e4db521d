//! UTC times as people write them, to and from milliseconds since the epoch, for the
//! command line and the demo's output (Howard Hinnant's civil-date algorithms; no time
//! zones, no leap seconds: record timestamps have neither).

use crate::error::{Error, Result};

/// One day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date.
pub fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number: (year, month, day).
pub fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if month <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        month,
        day,
    )
}

/// `2026-03-01 14:05:09` for a time in ms.
pub fn format(ms: i64) -> String {
    let (year, month, day) = civil_from_days(ms.div_euclid(DAY_MS));
    let secs = ms.rem_euclid(DAY_MS) / 1000;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Milliseconds since the epoch, or `YYYY-MM-DDTHH:MM[:SS]Z` (UTC).
///
/// # Errors
/// [`Error::Time`] for anything else.
pub fn parse(text: &str) -> Result<i64> {
    if let Ok(ms) = text.parse::<i64>() {
        return Ok(ms);
    }
    let bad = || Error::Time(text.to_owned());
    let body = text.strip_suffix('Z').ok_or_else(bad)?;
    let (date, clock) = body.split_once('T').ok_or_else(bad)?;
    let numbers = |s: &str, sep| -> Result<Vec<i64>> {
        s.split(sep)
            .map(|n| n.parse::<i64>().map_err(|_parse_error| bad()))
            .collect()
    };
    let date = numbers(date, '-')?;
    let clock = numbers(clock, ':')?;
    let (&[year, month, day], [hour, minute, rest @ ..]) = (date.as_slice(), clock.as_slice())
    else {
        return Err(bad());
    };
    let second = match rest {
        [] => 0,
        [s] => *s,
        _ => return Err(bad()),
    };
    let in_range = (1..=12).contains(&month)
        && (1..=31).contains(&day)
        && (0..24).contains(hour)
        && (0..60).contains(minute)
        && (0..60).contains(&second);
    if !in_range {
        return Err(bad());
    }
    Ok(days_from_civil(year, month, day) * DAY_MS + (hour * 3600 + minute * 60 + second) * 1000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_known_dates() {
        assert_eq!(parse("1970-01-01T00:00Z").unwrap(), 0);
        assert_eq!(parse("2024-02-29T12:30:15Z").unwrap(), 1_709_209_815_000);
        assert_eq!(format(1_709_209_815_000), "2024-02-29 12:30:15");
        assert_eq!(parse("1709209815000").unwrap(), 1_709_209_815_000);
        for days in [-1, 0, 59, 365, 11_016, 20_000, 60_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        for bad in [
            "2024-13-01T00:00Z",
            "2024-01-01 00:00",
            "2024-01-01T25:00Z",
            "soon",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
