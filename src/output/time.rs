//! RFC 3339 timestamps from nanoseconds since the epoch and back, without a date library.

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

/// Nanoseconds since the epoch of `2026-01-15T12:00:03.000100Z` (what [`rfc3339_micros`]
/// writes: UTC, `Z`, any number of fraction digits up to 9), or None.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let text = text.strip_suffix('Z')?;
    let (date, time) = text.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<i64>().ok());
    let (h, min, sec) = (t.next()??, t.next()??, t.next()??);
    let valid = (1..=12).contains(&m) && (1..=31).contains(&day) && h < 24 && min < 60 && sec < 61;
    if !valid || (h | min | sec) < 0 || fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let nanos = if fraction.is_empty() { 0 } else { format!("{fraction:0<9}").parse::<i64>().ok()? };
    let secs = days_from_civil(y, m, day).checked_mul(86_400)?.checked_add(h * 3600 + min * 60 + sec)?;
    secs.checked_mul(1_000_000_000)?.checked_add(nanos)
}

/// (year, month, day) → days since 1970-01-01, the inverse of [`civil_from_days`].
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
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
        for ns in [0, 1_768_478_403_000_100_000, 951_782_400_000_000_000, -1_000, 4_102_444_800_123_456_000] {
            assert_eq!(parse_rfc3339(&rfc3339_micros(ns)), Some(ns), "{}", rfc3339_micros(ns));
        }
        assert_eq!(parse_rfc3339("2026-01-15T12:00:03Z"), Some(1_768_478_403_000_000_000));
        for bad in
            ["", "2026-01-15T12:00:03", "2026-13-15T12:00:03Z", "2026-01-15 12:00:03Z", "2026-01-15T12:00:03.x1Z"]
        {
            assert_eq!(parse_rfc3339(bad), None, "{bad}");
        }
        assert_eq!(bsd_syslog_timestamp(i64::MIN).len(), 15);
    }
}
