//! RFC 3339 timestamps from nanoseconds since the epoch, without a date library.

/// `2026-01-15T12:00:03.000100Z`: UTC, microsecond precision.
pub fn rfc3339_micros(ns: i64) -> String {
    format!("{}Z", utc_micros(ns))
}

/// `2026-01-15T12:00:03.000100+0000`: the shape of Suricata's EVE `timestamp`.
pub fn suricata_timestamp(ns: i64) -> String {
    format!("{}+0000", utc_micros(ns))
}

/// `Jan 15 12:00:03`: the BSD syslog timestamp local syslog daemons expect on /dev/log (UTC).
pub fn bsd_syslog_timestamp(ns: i64) -> String {
    const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
    let secs = ns.div_euclid(1_000_000_000);
    let sod = secs.rem_euclid(86_400);
    let (_, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{} {d:>2} {:02}:{:02}:{:02}", MONTHS[m as usize - 1], sod / 3600, sod % 3600 / 60, sod % 60)
}

/// `2026-01-15T12:00:03.000100` (no zone designator).
fn utc_micros(ns: i64) -> String {
    let secs = ns.div_euclid(1_000_000_000);
    let micros = ns.rem_euclid(1_000_000_000) / 1_000;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{micros:06}", sod / 3600, sod % 3600 / 60, sod % 60)
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_instants() {
        assert_eq!(rfc3339_micros(0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(rfc3339_micros(1_768_478_403_000_100_000), "2026-01-15T12:00:03.000100Z");
        assert_eq!(rfc3339_micros(951_782_400_000_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(rfc3339_micros(-1), "1969-12-31T23:59:59.999999Z");
        // Extremes format without panicking.
        assert!(rfc3339_micros(i64::MIN).ends_with('Z'));
        assert!(rfc3339_micros(i64::MAX).ends_with('Z'));
        assert_eq!(bsd_syslog_timestamp(1_768_478_403_000_100_000), "Jan 15 12:00:03");
        assert_eq!(bsd_syslog_timestamp(i64::MIN).len(), 15);
    }
}
