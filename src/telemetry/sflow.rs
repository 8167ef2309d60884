//! sFlow version 5 (sflow.org/sflow_version_5.txt): a datagram from an agent holds samples;
//! a flow sample holds records, of which the raw packet header record carries the first bytes
//! of one sampled packet and the rate it was sampled at. Everything is big-endian XDR, in
//! 4-byte units; opaque data is padded to 4 bytes.
//!
//! The sampled header goes through floodwatch's own frame decoder, so a sample is read as a
//! captured packet would be, and its record stands for `sampling_rate` packets. Counter
//! samples' generic interface counters are read (the collector keeps each interface's
//! latest, for the metrics); the other flow and counter records (switch, router, gateway
//! data, Ethernet or processor counters) are skipped and counted.

use super::{Protocol, Sample, TelemetryIssue, TelemetryStats};
use crate::capture::LinkType;
use crate::decode::{be32, be64, Field};

pub const VERSION: u32 = 5;

/// The datagram header up to the agent address, and after it.
mod datagram {
    use super::Field;
    pub const VERSION: Field = 0..4;
    pub const AGENT_ADDRESS_TYPE: Field = 4..8;
    pub const AGENT_ADDRESS: usize = 8;
    /// After the agent address: sub-agent id, sequence number, uptime, number of samples.
    pub const SAMPLES_AFTER_ADDRESS: Field = 12..16;
    pub const HEADER_AFTER_ADDRESS: usize = SAMPLES_AFTER_ADDRESS.end;
}

/// A sample's or a record's type and length, before its data.
mod tagged {
    use super::Field;
    pub const FORMAT: Field = 0..4;
    pub const LENGTH: Field = 4..8;
    pub const HEADER_LEN: usize = LENGTH.end;
}

mod flow_sample {
    use super::Field;
    pub const SAMPLING_RATE: Field = 8..12;
    /// The number of records, which follow it.
    pub const RECORDS: Field = 28..32;
}

mod expanded_flow_sample {
    use super::Field;
    pub const SAMPLING_RATE: Field = 12..16;
    /// The number of records, which follow it.
    pub const RECORDS: Field = 40..44;
}

mod counter_sample {
    use super::Field;
    /// The number of records, which follow it (after the sequence number and source id).
    pub const RECORDS: Field = 8..12;
}

mod expanded_counter_sample {
    use super::Field;
    /// The number of records, which follow it (after the sequence number and the source
    /// id's type and index).
    pub const RECORDS: Field = 12..16;
}

/// The generic interface counters record (counter record format 1).
mod generic_interface {
    use super::Field;
    pub const IF_INDEX: Field = 0..4;
    pub const SPEED: Field = 8..16;
    /// Bit 0: admin up; bit 1: operationally up.
    pub const STATUS: Field = 20..24;
    pub const IN_OCTETS: Field = 24..32;
    /// Unicast, multicast and broadcast packets in, one after the other.
    pub const IN_PACKETS: [Field; 3] = [32..36, 36..40, 40..44];
    pub const IN_DISCARDS: Field = 44..48;
    pub const IN_ERRORS: Field = 48..52;
    pub const OUT_OCTETS: Field = 56..64;
    pub const OUT_PACKETS: [Field; 3] = [64..68, 68..72, 72..76];
    pub const OUT_DISCARDS: Field = 76..80;
    pub const OUT_ERRORS: Field = 80..84;
    pub const LEN: usize = 88;
}

mod raw_header {
    use super::Field;
    pub const PROTOCOL: Field = 0..4;
    pub const FRAME_LENGTH: Field = 4..8;
    pub const HEADER_LENGTH: Field = 12..16;
    pub const HEADER: usize = HEADER_LENGTH.end;
}

/// Sample formats (enterprise 0).
const FLOW_SAMPLE: u32 = 1;
const COUNTER_SAMPLE: u32 = 2;
const EXPANDED_FLOW_SAMPLE: u32 = 3;
const EXPANDED_COUNTER_SAMPLE: u32 = 4;
/// Flow record format: the raw packet header.
const RAW_PACKET_HEADER: u32 = 1;
/// Counter record format: generic interface counters.
const GENERIC_INTERFACE_COUNTERS: u32 = 1;
/// Header protocols of a raw packet header record.
const HEADER_ETHERNET: u32 = 1;
const HEADER_IPV4: u32 = 11;
const HEADER_IPV6: u32 = 12;

/// One interface's counters, as its agent last sent them (counting since the agent began:
/// rates are differences over time).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct InterfaceCounters {
    pub if_index: u32,
    /// Bits per second.
    pub speed: u64,
    /// Operationally up.
    pub up: bool,
    pub in_octets: u64,
    pub in_packets: u64,
    pub in_discards: u64,
    pub in_errors: u64,
    pub out_octets: u64,
    pub out_packets: u64,
    pub out_discards: u64,
    pub out_errors: u64,
}

impl InterfaceCounters {
    /// The counters of a generic interface counters record.
    fn read(record: &[u8]) -> Result<InterfaceCounters, TelemetryIssue> {
        use generic_interface as g;
        if record.len() < g::LEN {
            return Err(TelemetryIssue::Truncated);
        }
        let n32 = |f: Field| u64::from(be32(&record[f]));
        let n64 = |f: Field| be64(&record[f]);
        let packets = |fields: [Field; 3]| fields.into_iter().map(n32).sum();
        Ok(InterfaceCounters {
            if_index: n32(g::IF_INDEX) as u32,
            speed: n64(g::SPEED),
            up: n32(g::STATUS) & 2 != 0,
            in_octets: n64(g::IN_OCTETS),
            in_packets: packets(g::IN_PACKETS),
            in_discards: n32(g::IN_DISCARDS),
            in_errors: n32(g::IN_ERRORS),
            out_octets: n64(g::OUT_OCTETS),
            out_packets: packets(g::OUT_PACKETS),
            out_discards: n32(g::OUT_DISCARDS),
            out_errors: n32(g::OUT_ERRORS),
        })
    }
}

/// What an sFlow datagram holds for the collector: sampled packets, and interface counters.
pub enum Reading<'a> {
    Packet(Sample<'a>),
    Interface(InterfaceCounters),
}

/// A number at `field` of `bytes`, if `bytes` holds it.
fn be32_at(bytes: &[u8], field: Field) -> Result<u32, TelemetryIssue> {
    bytes.get(field).map(be32).ok_or(TelemetryIssue::Truncated)
}

/// `len` bytes after `at` (an XDR opaque's padding to 4 bytes skipped by the caller).
fn slice(bytes: &[u8], at: usize, len: usize) -> Result<&[u8], TelemetryIssue> {
    at.checked_add(len).and_then(|end| bytes.get(at..end)).ok_or(TelemetryIssue::Truncated)
}

/// Each sampled packet and interface's counters of an sFlow datagram, to `sample` (with
/// `stats`, for what it makes of it); what was read or skipped, to `stats`. The datagram is
/// checked as it is walked: one cut short or lying about a length stops there with an issue,
/// after the samples before it.
pub fn read_datagram(
    data: &[u8],
    stats: &mut TelemetryStats,
    mut sample: impl FnMut(Reading<'_>, &mut TelemetryStats),
) -> Result<(), TelemetryIssue> {
    if be32_at(data, datagram::VERSION)? != VERSION {
        return Err(TelemetryIssue::UnknownVersion);
    }
    // The agent's address (type 0: unknown, no address) is skipped: what the collector
    // trusts is the sender's address, which the socket gives.
    let address_len = match be32_at(data, datagram::AGENT_ADDRESS_TYPE)? {
        0 => 0,
        1 => 4,
        2 => 16,
        _ => return Err(TelemetryIssue::Malformed),
    };
    let after = datagram::AGENT_ADDRESS + address_len;
    let header = data.get(after..).ok_or(TelemetryIssue::Truncated)?;
    let samples = be32_at(header, datagram::SAMPLES_AFTER_ADDRESS)?;
    let mut rest = &header[datagram::HEADER_AFTER_ADDRESS..];
    stats.datagrams[Protocol::Sflow as usize] += 1;
    for _ in 0..samples {
        let format = be32_at(rest, tagged::FORMAT)?;
        let len = be32_at(rest, tagged::LENGTH)? as usize;
        let body = slice(rest, tagged::HEADER_LEN, len)?;
        rest = &rest[tagged::HEADER_LEN + len..];
        match format {
            FLOW_SAMPLE => flow_records(body, &flow_sample::SAMPLING_RATE, &flow_sample::RECORDS, stats, &mut sample)?,
            EXPANDED_FLOW_SAMPLE => flow_records(
                body,
                &expanded_flow_sample::SAMPLING_RATE,
                &expanded_flow_sample::RECORDS,
                stats,
                &mut sample,
            )?,
            COUNTER_SAMPLE => counter_records(body, &counter_sample::RECORDS, stats, &mut sample)?,
            EXPANDED_COUNTER_SAMPLE => counter_records(body, &expanded_counter_sample::RECORDS, stats, &mut sample)?,
            _ => stats.unknown_samples += 1,
        }
    }
    Ok(())
}

/// The records of one flow sample, whose sampling rate and record count sit at `rate` and
/// `records` (which differ between the compact and the expanded sample).
fn flow_records(
    body: &[u8],
    rate: &Field,
    records: &Field,
    stats: &mut TelemetryStats,
    sample: &mut impl FnMut(Reading<'_>, &mut TelemetryStats),
) -> Result<(), TelemetryIssue> {
    let sampling_rate = be32_at(body, rate.clone())?;
    let count = be32_at(body, records.clone())?;
    let mut rest = &body[records.end..];
    stats.flow_samples += 1;
    for _ in 0..count {
        let format = be32_at(rest, tagged::FORMAT)?;
        let len = be32_at(rest, tagged::LENGTH)? as usize;
        let record = slice(rest, tagged::HEADER_LEN, len)?;
        rest = &rest[tagged::HEADER_LEN + len..];
        if format != RAW_PACKET_HEADER {
            stats.other_records += 1;
            continue;
        }
        let link = match be32_at(record, raw_header::PROTOCOL)? {
            HEADER_ETHERNET => LinkType::ETHERNET,
            HEADER_IPV4 | HEADER_IPV6 => LinkType::RAW,
            _ => {
                stats.other_records += 1;
                continue;
            }
        };
        let frame_length = be32_at(record, raw_header::FRAME_LENGTH)?;
        let header_length = be32_at(record, raw_header::HEADER_LENGTH)? as usize;
        let header = slice(record, raw_header::HEADER, header_length)?;
        sample(Reading::Packet(Sample { sampling_rate, frame_length, link, header }), stats);
    }
    Ok(())
}

/// The records of one counter sample, whose record count sits at `records`: generic
/// interface counters are read, other records counted and skipped.
fn counter_records(
    body: &[u8],
    records: &Field,
    stats: &mut TelemetryStats,
    sample: &mut impl FnMut(Reading<'_>, &mut TelemetryStats),
) -> Result<(), TelemetryIssue> {
    let count = be32_at(body, records.clone())?;
    let mut rest = &body[records.end..];
    stats.counter_samples += 1;
    for _ in 0..count {
        let format = be32_at(rest, tagged::FORMAT)?;
        let len = be32_at(rest, tagged::LENGTH)? as usize;
        let record = slice(rest, tagged::HEADER_LEN, len)?;
        rest = &rest[tagged::HEADER_LEN + len..];
        if format == GENERIC_INTERFACE_COUNTERS {
            sample(Reading::Interface(InterfaceCounters::read(record)?), stats);
        } else {
            stats.other_records += 1;
        }
    }
    Ok(())
}
