//! Flow telemetry as a source of records: the datagrams routers and switches export (sFlow
//! now) become [`PacketRecord`]s that stand for the packets they sample, for the same
//! analyzer as captured packets.
//!
//! A sampled packet header is decoded by [`crate::decode`] like a captured frame, and its
//! record's weight is the sampling rate: a packet sampled 1 in 1,000 counts for 1,000, its
//! bytes for its length before sampling times 1,000.

pub mod sflow;
// unsafe: recvmmsg.
#[allow(unsafe_code)]
pub mod socket;

use crate::capture::{Frame, LinkType};
use crate::decode::{decode, Decoded, PacketRecord};
use std::net::IpAddr;

/// The well-known UDP port of sFlow collectors.
pub const SFLOW_PORT: u16 = 6343;

/// One sampled packet, as an exporter described it.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
    /// The agent (the router or switch) that sampled it.
    pub exporter: IpAddr,
    /// One packet in this many was sampled.
    pub sampling_rate: u32,
    /// The packet's length on the wire, before sampling cut it to `header`.
    pub frame_length: u32,
    pub link: LinkType,
    /// The first bytes of the packet.
    pub header: &'a [u8],
}

/// Why a datagram, or the rest of it, could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TelemetryIssue {
    /// Shorter than its own lengths say.
    Truncated,
    /// A version this collector does not read.
    UnknownVersion,
    /// A field with a value the format does not allow.
    Malformed,
}

impl TelemetryIssue {
    pub const ALL: [TelemetryIssue; 3] =
        [TelemetryIssue::Truncated, TelemetryIssue::UnknownVersion, TelemetryIssue::Malformed];

    pub fn name(self) -> &'static str {
        match self {
            TelemetryIssue::Truncated => "truncated",
            TelemetryIssue::UnknownVersion => "unknown_version",
            TelemetryIssue::Malformed => "malformed",
        }
    }
}

/// What the telemetry decoder read, skipped and refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TelemetryStats {
    pub datagrams: u64,
    pub flow_samples: u64,
    /// Sampled packets turned into records.
    pub records: u64,
    pub counter_samples: u64,
    /// Samples of a format not read (another enterprise's, or a new one).
    pub unknown_samples: u64,
    /// Flow records other than a raw packet header (switch, router, gateway data), or headers of
    /// a protocol not read.
    pub other_records: u64,
    /// Sampled packets whose header does not decode as IP (or is not IP).
    pub undecodable_samples: u64,
    /// Samples whose rate cannot be a weight: 0, or above 65,535 (a record's weight is 2 bytes).
    pub bad_sampling_rates: u64,
    /// Datagrams (or their rest) refused, by [`TelemetryIssue`].
    pub issues: [u64; TelemetryIssue::ALL.len()],
}

impl TelemetryStats {
    pub fn issues_total(&self) -> u64 {
        self.issues.iter().sum()
    }

    /// Adds another reader's counts.
    pub fn add(&mut self, other: &TelemetryStats) {
        self.datagrams += other.datagrams;
        self.flow_samples += other.flow_samples;
        self.records += other.records;
        self.counter_samples += other.counter_samples;
        self.unknown_samples += other.unknown_samples;
        self.other_records += other.other_records;
        self.undecodable_samples += other.undecodable_samples;
        self.bad_sampling_rates += other.bad_sampling_rates;
        self.issues.iter_mut().zip(&other.issues).for_each(|(a, b)| *a += b);
    }
}

/// The records of one sFlow datagram received at `ts_ns`, each handed to `record` (nothing
/// is allocated).
pub fn read_sflow(data: &[u8], ts_ns: i64, stats: &mut TelemetryStats, mut record: impl FnMut(&PacketRecord)) {
    let outcome = sflow::read_datagram(data, stats, |s, stats| {
        let weight = match u16::try_from(s.sampling_rate) {
            Ok(0) | Err(_) => {
                stats.bad_sampling_rates += 1;
                return;
            }
            Ok(w) => w,
        };
        let frame = Frame { ts_ns, wire_len: s.frame_length, link: s.link, data: s.header };
        let mut r = PacketRecord::default();
        match decode(&frame, &mut r) {
            Ok(Decoded::Ip) => {
                r.weight = weight;
                stats.records += 1;
                record(&r);
            }
            _ => stats.undecodable_samples += 1,
        }
    });
    if let Err(issue) = outcome {
        stats.issues[issue as usize] += 1;
    }
}
