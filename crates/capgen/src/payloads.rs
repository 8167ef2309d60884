//! Application payloads: filler bytes for TCP data and floods, DNS messages, NTP packets and ping
//! data. Everything is appended to a caller-owned buffer.
//!
//! Payloads are deliberately repetitive (a fixed text pattern, fixed DNS record data): the bytes
//! above the transport header do not matter to a flood detector, and repetitive payloads keep the
//! gzip-compressed captures small.

use super::traffic::NS_PER_SECOND;

/// The pattern that filler bytes repeat.
const FILLER_TEXT: &[u8] = b"floodwatch synthetic payload / ";
/// Longest filler slice: more than any single frame carries.
const FILLER_LEN: usize = 4096;

static FILLER: [u8; FILLER_LEN] = filler_pattern();

const fn filler_pattern() -> [u8; FILLER_LEN] {
    let mut bytes = [0u8; FILLER_LEN];
    let mut i = 0;
    while i < FILLER_LEN {
        bytes[i] = FILLER_TEXT[i % FILLER_TEXT.len()];
        i += 1;
    }
    bytes
}

/// `len` bytes of filler (at most 4096).
pub fn filler(len: usize) -> &'static [u8] {
    &FILLER[..len.min(FILLER_LEN)]
}

/// The 56 data bytes of a Linux `ping` echo: 0x10, 0x11, ... (the timestamp part kept constant).
pub fn ping_data() -> &'static [u8] {
    const DATA: [u8; 56] = {
        let mut data = [0u8; 56];
        let mut i = 0;
        while i < 56 {
            data[i] = 0x10 + i as u8;
            i += 1;
        }
        data
    };
    &DATA
}

/// DNS record types used by the generator.
pub const DNS_TYPE_A: u16 = 1;
pub const DNS_TYPE_TXT: u16 = 16;
pub const DNS_TYPE_AAAA: u16 = 28;
pub const DNS_TYPE_ANY: u16 = 255;
const DNS_TYPE_OPT: u16 = 41;
const DNS_CLASS_IN: u16 = 1;
/// Size of a DNS header.
const DNS_HEADER_LEN: usize = 12;
/// Fixed part of an answer record whose name is a compression pointer to the question.
const DNS_ANSWER_FIXED_LEN: usize = 2 + 2 + 2 + 4 + 2;
/// An EDNS(0) OPT record with no options.
const DNS_OPT_RECORD_LEN: usize = 11;
/// Longest TXT character-string.
const DNS_TXT_STRING_MAX: usize = 255;

/// Names that benign clients look up.
pub const LOOKUP_NAMES: [&str; 8] = [
    "www.example.com",
    "cdn.example.net",
    "mail.example.org",
    "api.example.com",
    "static.example.net",
    "login.example.org",
    "images.example.com",
    "updates.example.net",
];

/// A DNS question: what both the query and its response carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DnsQuestion<'a> {
    pub txid: u16,
    pub name: &'a str,
    pub qtype: u16,
}

/// Appends a recursive query with an EDNS(0) OPT record advertising a 4096-byte buffer.
pub fn dns_query(out: &mut Vec<u8>, question: &DnsQuestion) {
    // Flags: RD. One question, one additional (OPT).
    write_dns_header(out, question.txid, 0x0100, 1, 0);
    write_question(out, question);
    write_opt_record(out);
}

/// Appends a response to an A or AAAA `question` holding `answers` documentation addresses,
/// followed by an EDNS(0) OPT record.
pub fn dns_address_response(out: &mut Vec<u8>, question: &DnsQuestion, answers: u16) {
    // Flags: QR, RD, RA, NOERROR.
    write_dns_header(out, question.txid, 0x8180, 1, answers);
    write_question(out, question);
    for index in 0..answers {
        let last_byte = 100 + index as u8;
        let v4 = [198, 51, 100, last_byte];
        let v6 = [0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, last_byte];
        let rdata: &[u8] = if question.qtype == DNS_TYPE_AAAA { &v6 } else { &v4 };
        write_answer_header(out, question.qtype, rdata.len());
        out.extend_from_slice(rdata);
    }
    write_opt_record(out);
}

/// Appends a response to `question` made of TXT records of filler text, followed by an EDNS(0)
/// OPT record: `message_len` bytes in all, or up to 12 bytes fewer when the remainder is too
/// small for one more record. There is always at least one record.
pub fn dns_txt_response(out: &mut Vec<u8>, question: &DnsQuestion, message_len: usize) {
    let fixed = DNS_HEADER_LEN + encoded_name_len(question.name) + 4 + DNS_OPT_RECORD_LEN;
    let record_overhead = DNS_ANSWER_FIXED_LEN + 1; // plus the character-string's length byte
    let room = message_len.saturating_sub(fixed);
    let full = room / (record_overhead + DNS_TXT_STRING_MAX);
    let rest = room % (record_overhead + DNS_TXT_STRING_MAX);
    let partial = rest.checked_sub(record_overhead).or((full == 0).then_some(0));
    write_dns_header(out, question.txid, 0x8180, 1, (full + usize::from(partial.is_some())) as u16);
    write_question(out, question);
    for text_len in std::iter::repeat_n(DNS_TXT_STRING_MAX, full).chain(partial) {
        write_answer_header(out, DNS_TYPE_TXT, 1 + text_len);
        out.push(text_len as u8);
        out.extend_from_slice(filler(text_len));
    }
    write_opt_record(out);
}

/// The fixed part of an answer record: a pointer to the question's name, type, class IN, TTL
/// 300 s and the record data length.
fn write_answer_header(out: &mut Vec<u8>, record_type: u16, rdata_len: usize) {
    out.extend_from_slice(&[0xc0, DNS_HEADER_LEN as u8]);
    out.extend_from_slice(&record_type.to_be_bytes());
    out.extend_from_slice(&DNS_CLASS_IN.to_be_bytes());
    out.extend_from_slice(&300u32.to_be_bytes());
    out.extend_from_slice(&(rdata_len as u16).to_be_bytes());
}

fn write_dns_header(out: &mut Vec<u8>, txid: u16, flags: u16, questions: u16, answers: u16) {
    for field in [txid, flags, questions, answers, 0, 1] {
        out.extend_from_slice(&field.to_be_bytes());
    }
}

fn write_question(out: &mut Vec<u8>, question: &DnsQuestion) {
    for label in question.name.split('.').filter(|label| !label.is_empty()) {
        out.push(label.len() as u8);
        out.extend_from_slice(label.as_bytes());
    }
    out.push(0);
    out.extend_from_slice(&question.qtype.to_be_bytes());
    out.extend_from_slice(&DNS_CLASS_IN.to_be_bytes());
}

fn encoded_name_len(name: &str) -> usize {
    name.split('.').filter(|label| !label.is_empty()).map(|label| label.len() + 1).sum::<usize>() + 1
}

/// Root name, type OPT, UDP payload size 4096, no extended flags, no options.
fn write_opt_record(out: &mut Vec<u8>) {
    out.push(0);
    out.extend_from_slice(&DNS_TYPE_OPT.to_be_bytes());
    out.extend_from_slice(&4096u16.to_be_bytes());
    out.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
}

const NS_PER_MINUTE: i64 = 60 * NS_PER_SECOND;
/// Seconds from the NTP era (1900) to the Unix epoch.
const NTP_UNIX_OFFSET: i64 = 2_208_988_800;

/// An NTPv4 packet: a client request (mode 3) or a server reply (mode 4).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NtpPacket {
    pub server_reply: bool,
    /// Client: when it sent the request. Server: the client's transmit time it echoes.
    pub origin_ns: i64,
    /// When this packet is sent.
    pub transmit_ns: i64,
}

/// Appends the 48-byte NTP packet.
pub fn ntp_packet(out: &mut Vec<u8>, packet: &NtpPacket) {
    if packet.server_reply {
        // LI 0, version 4, mode 4; stratum 2, poll 6, precision -23.
        out.extend_from_slice(&[0x24, 2, 6, 0xe9]);
        out.extend_from_slice(&[0, 0, 0, 0x10, 0, 0, 0, 0x20]); // root delay, root dispersion
        out.extend_from_slice(&[198, 51, 100, 123]); // reference id: its upstream server
        write_ntp_time(out, packet.transmit_ns - NS_PER_MINUTE); // reference time
        write_ntp_time(out, packet.origin_ns);
        write_ntp_time(out, packet.transmit_ns); // receive time (no measurable processing)
        write_ntp_time(out, packet.transmit_ns);
    } else {
        // Version 4, mode 3; everything but the transmit time is zero, as chrony and ntpd send.
        out.extend_from_slice(&[0x23, 0, 6, 0x20]);
        out.extend_from_slice(&[0; 36]);
        write_ntp_time(out, packet.transmit_ns);
    }
}

/// Writes a 64-bit NTP timestamp (seconds since 1900, 32-bit binary fraction).
fn write_ntp_time(out: &mut Vec<u8>, unix_ns: i64) {
    let seconds = unix_ns.div_euclid(NS_PER_SECOND) + NTP_UNIX_OFFSET;
    let nanos = unix_ns.rem_euclid(NS_PER_SECOND) as u64;
    let fraction = (nanos << 32) / NS_PER_SECOND as u64;
    out.extend_from_slice(&(seconds as u32).to_be_bytes());
    out.extend_from_slice(&(fraction as u32).to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filler_repeats_the_pattern() {
        assert_eq!(filler(5), b"flood");
        assert_eq!(filler(10_000).len(), FILLER_LEN);
        assert_eq!(ping_data()[0], 0x10);
        assert_eq!(ping_data()[55], 0x10 + 55);
    }

    #[test]
    fn dns_query_layout() {
        let mut out = Vec::new();
        dns_query(&mut out, &DnsQuestion { txid: 0xabcd, name: "www.example.com", qtype: DNS_TYPE_A });
        assert_eq!(&out[..12], &[0xab, 0xcd, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1]);
        assert_eq!(&out[12..16], &[3, b'w', b'w', b'w']);
        assert_eq!(out.len(), 12 + 17 + 4 + DNS_OPT_RECORD_LEN);
    }

    #[test]
    fn txt_responses_reach_the_target_size() {
        let question = DnsQuestion { txid: 1, name: "example.com", qtype: DNS_TYPE_ANY };
        for target in [100, 400, 1_000, 2_990, 3_000, 3_100] {
            let mut out = Vec::new();
            dns_txt_response(&mut out, &question, target);
            assert!(out.len() <= target && out.len() + 12 >= target, "{target}: {}", out.len());
        }
        // Too small for any record: still one (empty) record.
        let mut out = Vec::new();
        dns_txt_response(&mut out, &question, 10);
        assert_eq!(u16::from_be_bytes([out[6], out[7]]), 1);
        assert_eq!(out.len(), 12 + 13 + 4 + 13 + DNS_OPT_RECORD_LEN);
    }

    #[test]
    fn address_responses_hold_the_asked_type() {
        let mut out = Vec::new();
        let question = DnsQuestion { txid: 2, name: "www.example.com", qtype: DNS_TYPE_AAAA };
        dns_address_response(&mut out, &question, 2);
        assert_eq!(out.len(), 12 + 17 + 4 + 2 * (12 + 16) + DNS_OPT_RECORD_LEN);
        assert_eq!(u16::from_be_bytes([out[6], out[7]]), 2);
    }

    #[test]
    fn ntp_packets_are_48_bytes_with_the_right_mode() {
        let mut out = Vec::new();
        ntp_packet(&mut out, &NtpPacket { server_reply: false, origin_ns: 0, transmit_ns: 1_500_000_000 });
        assert_eq!(out.len(), 48);
        assert_eq!(out[0] & 7, 3);
        // 1970-01-01T00:00:01.5 is NTP second 2208988801 with fraction 0x80000000.
        assert_eq!(&out[40..48], &[0x83, 0xaa, 0x7e, 0x81, 0x80, 0, 0, 0]);
        out.clear();
        ntp_packet(&mut out, &NtpPacket { server_reply: true, origin_ns: 0, transmit_ns: 0 });
        assert_eq!(out.len(), 48);
        assert_eq!(out[0] & 7, 4);
    }
}
