//! Syslog framing: RFC 5424 messages for network collectors (UDP, or TCP with RFC 6587
//! octet-counting), and the BSD-style line local daemons (rsyslog, journald) read on /dev/log.

use crate::analyze::EventKind;
use crate::output::time::{bsd_syslog_timestamp, rfc3339_micros};
use std::str::FromStr;

/// The app name every message carries.
pub const APP_NAME: &str = "floodwatch";

/// Syslog facility (RFC 5424 table 1); `daemon` unless configured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facility(u8);

impl Default for Facility {
    fn default() -> Facility {
        Facility(3)
    }
}

impl FromStr for Facility {
    type Err = String;
    fn from_str(s: &str) -> Result<Facility, String> {
        let code = match s {
            "kern" => 0,
            "user" => 1,
            "daemon" => 3,
            "auth" => 4,
            "syslog" => 5,
            "authpriv" => 10,
            "security" => 13,
            _ => match s.strip_prefix("local").and_then(|n| n.parse::<u8>().ok()) {
                Some(n) if n <= 7 => 16 + n,
                _ => {
                    return Err(format!(
                        "unknown syslog facility {s:?}: expected daemon, user, auth, local0..local7, ..."
                    ))
                }
            },
        };
        Ok(Facility(code))
    }
}

/// Severity by event: a new attack is a warning, the rest notices.
fn severity(event: EventKind) -> u8 {
    match event {
        EventKind::Start => 4,
        EventKind::Update | EventKind::End => 5,
    }
}

fn pri(facility: Facility, event: EventKind) -> u8 {
    facility.0 * 8 + severity(event)
}

/// `<PRI>1 TIMESTAMP HOST APP PROCID MSGID - MSG` (RFC 5424; MSGID is the event name).
pub fn rfc5424(facility: Facility, event: EventKind, ts_ns: i64, host: &str, pid: u32, msg: &[u8]) -> Vec<u8> {
    let mut out = format!(
        "<{}>1 {} {} {APP_NAME} {pid} {} - ",
        pri(facility, event),
        rfc3339_micros(ts_ns),
        if host.is_empty() { "-" } else { host },
        event.name()
    )
    .into_bytes();
    out.extend_from_slice(msg);
    out
}

/// RFC 6587 octet-counting: `LEN SP MSG`, so a message may hold any byte, newlines included.
pub fn octet_counted(msg: &[u8]) -> Vec<u8> {
    let mut out = format!("{} ", msg.len()).into_bytes();
    out.extend_from_slice(msg);
    out
}

/// `<PRI>Mmm dd hh:mm:ss floodwatch[PID]: MSG`: what glibc's syslog(3) writes to /dev/log.
pub fn local(facility: Facility, event: EventKind, now_ns: i64, pid: u32, msg: &[u8]) -> Vec<u8> {
    let mut out =
        format!("<{}>{} {APP_NAME}[{pid}]: ", pri(facility, event), bsd_syslog_timestamp(now_ns)).into_bytes();
    out.extend_from_slice(msg);
    out
}

/// This machine's name for the HOSTNAME field ("-" if unknown; never more than RFC 5424's 255).
pub fn hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its whole length, which is what we pass.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return "-".into();
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name: String = buf[..len].iter().filter(|b| b.is_ascii_graphic()).map(|&b| b as char).collect();
    if name.is_empty() {
        "-".into()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc5424_header() {
        let m = rfc5424(Facility::default(), EventKind::Start, 1_768_478_403_000_100_000, "fw1", 42, b"{}");
        assert_eq!(m, b"<28>1 2026-01-15T12:00:03.000100Z fw1 floodwatch 42 attack_start - {}");
        let m = rfc5424("local0".parse().unwrap(), EventKind::End, 0, "", 1, b"x");
        assert!(m.starts_with(b"<133>1 1970-01-01T00:00:00.000000Z - floodwatch 1 attack_end - "));
    }

    #[test]
    fn octet_counting_counts_bytes() {
        assert_eq!(octet_counted("é\n".as_bytes()), b"3 \xc3\xa9\n");
    }

    #[test]
    fn local_line() {
        let m = local(Facility::default(), EventKind::Update, 1_768_478_403_000_000_000, 7, b"{}");
        assert_eq!(m, b"<29>Jan 15 12:00:03 floodwatch[7]: {}");
    }

    #[test]
    fn facilities() {
        assert_eq!("local7".parse::<Facility>(), Ok(Facility(23)));
        assert!("local8".parse::<Facility>().is_err());
        assert!(!hostname().is_empty());
    }
}
