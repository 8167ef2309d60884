//! The ground truth's timestamps: `2026-01-15T12:00:03.000100Z` (RFC 3339, UTC, microseconds).
//!
//! Written here, not borrowed from floodwatch, so that a test comparing floodwatch's alert times
//! with the ground truth compares two independent formatters. Dates are found by walking years
//! and months from 1970, not by floodwatch's closed-form day arithmetic.

const NS_PER_SECOND: i64 = 1_000_000_000;
const SECONDS_PER_DAY: i64 = 86_400;

/// `ns` nanoseconds after the Unix epoch as `YYYY-MM-DDThh:mm:ss.uuuuuuZ`.
pub fn rfc3339_micros(ns: i64) -> String {
    let seconds = ns.div_euclid(NS_PER_SECOND);
    let micros = ns.rem_euclid(NS_PER_SECOND) / 1_000;
    let (year, month, day) = date_of(seconds.div_euclid(SECONDS_PER_DAY));
    let of_day = seconds.rem_euclid(SECONDS_PER_DAY);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{micros:06}Z",
        of_day / 3_600,
        of_day / 60 % 60,
        of_day % 60
    )
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_year(year: i64) -> i64 {
    if is_leap(year) {
        366
    } else {
        365
    }
}

fn days_in_month(year: i64, month: u32) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// (year, month, day) of the day `days` after 1970-01-01 (or before it, if negative).
fn date_of(mut days: i64) -> (i64, u32, i64) {
    let mut year = 1970;
    while days < 0 {
        year -= 1;
        days += days_in_year(year);
    }
    while days >= days_in_year(year) {
        days -= days_in_year(year);
        year += 1;
    }
    let mut month = 1;
    while days >= days_in_month(year, month) {
        days -= days_in_month(year, month);
        month += 1;
    }
    (year, month, days + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        // 2026-01-15T12:00:03.000100Z, from `date -u -d @1768478403`.
        assert_eq!(rfc3339_micros(1_768_478_403_000_100_999), "2026-01-15T12:00:03.000100Z");
        // The leap day of a year divisible by 400, and the day after it.
        assert_eq!(rfc3339_micros(951_782_400 * NS_PER_SECOND), "2000-02-29T00:00:00.000000Z");
        assert_eq!(rfc3339_micros(951_868_799 * NS_PER_SECOND), "2000-02-29T23:59:59.000000Z");
        assert_eq!(rfc3339_micros(951_868_800 * NS_PER_SECOND), "2000-03-01T00:00:00.000000Z");
        // 2100 is not a leap year: the day after February 28 is March 1.
        assert_eq!(rfc3339_micros(4_107_456_000 * NS_PER_SECOND), "2100-02-28T00:00:00.000000Z");
        assert_eq!(rfc3339_micros(4_107_542_400 * NS_PER_SECOND), "2100-03-01T00:00:00.000000Z");
        assert_eq!(rfc3339_micros(-1), "1969-12-31T23:59:59.999999Z");
    }
}
