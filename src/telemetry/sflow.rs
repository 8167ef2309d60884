//! sFlow version 5 (sflow.org/sflow_version_5.txt): a datagram from an agent holds samples;
//! a flow sample holds records, of which the raw packet header record carries the first bytes
//! of one sampled packet and the rate it was sampled at. Everything is big-endian XDR, in
//! 4-byte units; opaque data is padded to 4 bytes.
//!
//! The sampled header goes through floodwatch's own frame decoder, so a sample is read as a
//! captured packet would be, and its record stands for `sampling_rate` packets. Counter
//! samples and the other flow records (switch, router, gateway data) are skipped and counted.

use super::{Protocol, Sample, TelemetryIssue, TelemetryStats};
use crate::capture::LinkType;
use crate::decode::Field;

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
/// Header protocols of a raw packet header record.
const HEADER_ETHERNET: u32 = 1;
const HEADER_IPV4: u32 = 11;
const HEADER_IPV6: u32 = 12;

/// A number at `field` of `bytes`, if `bytes` holds it.
fn be32_at(bytes: &[u8], field: Field) -> Result<u32, TelemetryIssue> {
    bytes.get(field).map(crate::decode::be32).ok_or(TelemetryIssue::Truncated)
}

/// `len` bytes after `at` (an XDR opaque's padding to 4 bytes skipped by the caller).
fn slice(bytes: &[u8], at: usize, len: usize) -> Result<&[u8], TelemetryIssue> {
    at.checked_add(len).and_then(|end| bytes.get(at..end)).ok_or(TelemetryIssue::Truncated)
}

/// Each sampled packet of an sFlow datagram, to `sample` (with `stats`, for what it makes of
/// it); what was read or skipped, to `stats`. The datagram is checked as it is walked: one cut
/// short or lying about a length stops there with an issue, after the samples before it.
pub fn read_datagram(
    data: &[u8],
    stats: &mut TelemetryStats,
    mut sample: impl FnMut(Sample<'_>, &mut TelemetryStats),
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
            COUNTER_SAMPLE | EXPANDED_COUNTER_SAMPLE => stats.counter_samples += 1,
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
    sample: &mut impl FnMut(Sample<'_>, &mut TelemetryStats),
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
        sample(Sample { sampling_rate, frame_length, link, header }, stats);
    }
    Ok(())
}
