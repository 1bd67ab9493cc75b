//! UTC days and months for budgets: which day and month a moment is in,
//! and when they end. Civil-from-days after Howard Hinnant's algorithm
//! (proleptic Gregorian, exact for every date a budget will see).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Days since 1970-01-01 (UTC) of `at`.
pub fn day(at: SystemTime) -> i64 {
    let secs = match at.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_secs() as i64,
        Err(e) => -(e.duration().as_secs() as i64) - 1,
    };
    secs.div_euclid(86_400)
}

/// `(year, month 1–12, day 1–31)` of day number `days`.
pub fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The day number of `(year, month, day)`.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Months since January 1970 of day number `days` (`year * 12 + month - 1`
/// relative to 1970).
pub fn month(days: i64) -> i64 {
    let (y, m, _) = civil(days);
    (y - 1970) * 12 + i64::from(m) - 1
}

/// The day number of the first day of the month after the one `days` is in.
pub fn next_month_start(days: i64) -> i64 {
    let (y, m, _) = civil(days);
    if m == 12 {
        days_from_civil(y + 1, 1, 1)
    } else {
        days_from_civil(y, m + 1, 1)
    }
}

/// Time from `at` until the start of day number `days` (zero if past).
pub fn until_day(at: SystemTime, days: i64) -> Duration {
    let start = UNIX_EPOCH + Duration::from_secs((days.max(0) as u64) * 86_400);
    start.duration_since(at).unwrap_or_default()
}

/// `YYYY-MM-DD` of day number `days`.
pub fn date(days: i64) -> String {
    let (y, m, d) = civil(days);
    format!("{y:04}-{m:02}-{d:02}")
}

/// Reads an RFC 3339 UTC moment (`2027-01-31T23:59:59Z`) or a date
/// (`2027-01-31`, meaning its midnight UTC).
///
/// # Errors
/// What is wrong, as a message.
pub fn parse_moment(text: &str) -> Result<SystemTime, String> {
    let text = text.trim();
    if text.len() == 10 {
        let part = |r: std::ops::Range<usize>| text.get(r).and_then(|s| s.parse::<u32>().ok());
        if let (Some(y), Some(m), Some(d), Some(b'-'), Some(b'-')) = (
            part(0..4),
            part(5..7),
            part(8..10),
            text.as_bytes().get(4).copied(),
            text.as_bytes().get(7).copied(),
        ) {
            let days = days_from_civil(i64::from(y), m, d);
            if (1..=12).contains(&m) && (1..=31).contains(&d) && civil(days) == (i64::from(y), m, d)
            {
                return Ok(UNIX_EPOCH + Duration::from_secs(days.max(0) as u64 * 86_400));
            }
        }
        return Err(format!("{text:?} is not a date (write e.g. 2027-01-31)"));
    }
    humantime::parse_rfc3339(text).map_err(|_| {
        format!("{text:?} is not an RFC 3339 UTC time (write e.g. 2027-01-31T23:59:59Z, or a date 2027-01-31)")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_known_dates() {
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(days_from_civil(2000, 2, 29), 11_016);
        for days in (-1000..40_000).step_by(7) {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(date(days_from_civil(2026, 12, 31)), "2026-12-31");
    }

    #[test]
    fn month_boundaries() {
        let dec31 = days_from_civil(2026, 12, 31);
        assert_eq!(next_month_start(dec31), days_from_civil(2027, 1, 1));
        assert_eq!(month(dec31) + 1, month(dec31 + 1));
        let feb = days_from_civil(2028, 2, 10);
        assert_eq!(next_month_start(feb), days_from_civil(2028, 3, 1));
    }

    #[test]
    fn moments() {
        let t = parse_moment("2027-01-31T12:00:00Z").unwrap();
        assert_eq!(date(day(t)), "2027-01-31");
        let d = parse_moment("2027-01-31").unwrap();
        assert_eq!(t.duration_since(d).unwrap().as_secs(), 12 * 3600);
        assert!(parse_moment("2027-02-30").is_err());
        assert!(parse_moment("tomorrow").is_err());
    }
}
