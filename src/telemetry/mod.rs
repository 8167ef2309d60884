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
use crate::decode::{decode, Decoded, IpKey, PacketRecord, Prefix};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The well-known UDP port of sFlow collectors.
pub const SFLOW_PORT: u16 = 6343;
/// The longest packet a sample may describe: an IP packet of 65,535 bytes with Ethernet, two
/// VLAN tags and the FCS around it.
const MAX_FRAME_LENGTH: u32 = 65_535 + 26;

/// The exporters whose datagrams are read: any (the default), or those inside the given
/// prefixes. A collector open to the network must not take floods, and blocklist entries,
/// from whoever sends it a datagram.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Exporters(Arc<[Prefix]>);

impl Exporters {
    /// Datagrams from anyone.
    pub fn any() -> Exporters {
        Exporters::default()
    }

    /// Datagrams from inside `prefixes` only (from anyone, if there are none).
    pub fn within(prefixes: Vec<Prefix>) -> Exporters {
        Exporters(prefixes.into())
    }

    pub fn admits(&self, exporter: IpAddr) -> bool {
        self.0.is_empty() || self.0.iter().any(|p| p.contains(IpKey::from_ip(exporter)))
    }
}

/// The `[telemetry]` settings: where the collector listens, and whom it hears.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TelemetrySettings {
    pub sflow: Option<SocketAddr>,
    pub exporters: Exporters,
}

/// One sampled packet, as an exporter described it.
#[derive(Clone, Copy, Debug)]
pub struct Sample<'a> {
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
    /// Samples of a packet said to be longer than any IP packet (65,535 bytes and a link
    /// header): their bytes would be counted thousands of times over.
    pub impossible_lengths: u64,
    /// Datagrams dropped: their sender is not among the allowed exporters.
    pub unknown_exporters: u64,
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
        self.unknown_exporters += other.unknown_exporters;
        self.impossible_lengths += other.impossible_lengths;
        self.issues.iter_mut().zip(&other.issues).for_each(|(a, b)| *a += b);
    }
}

/// The records of one sFlow datagram that `from` sent and that arrived at `ts_ns`, each
/// handed to `record` (nothing is allocated); nothing when `exporters` does not admit `from`.
pub fn read_sflow(
    data: &[u8],
    from: IpAddr,
    ts_ns: i64,
    exporters: &Exporters,
    stats: &mut TelemetryStats,
    mut record: impl FnMut(&PacketRecord),
) {
    if !exporters.admits(from) {
        stats.unknown_exporters += 1;
        return;
    }
    let outcome = sflow::read_datagram(data, stats, |s, stats| {
        let weight = match u16::try_from(s.sampling_rate) {
            Ok(0) | Err(_) => {
                stats.bad_sampling_rates += 1;
                return;
            }
            Ok(w) => w,
        };
        if s.frame_length > MAX_FRAME_LENGTH {
            stats.impossible_lengths += 1;
            return;
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// An sFlow datagram from agent 192.0.2.254 with one flow sample (rate `rate`) of an
    /// Ethernet/IPv4/UDP packet from 198.51.100.7:123 to 192.0.2.1:4444, 64 bytes long.
    fn datagram(rate: u32) -> Vec<u8> {
        let u32s = |v: &[u32]| v.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
        let mut header = vec![2, 0, 0, 0, 0, 1, 2, 0, 0, 0, 0, 2, 0x08, 0x00];
        header.extend([0x45, 0, 0, 44, 0, 0, 0x40, 0, 64, 17, 0, 0, 198, 51, 100, 7, 192, 0, 2, 1]);
        header.extend([0, 123, 0x11, 0x5c, 0, 24, 0, 0]);
        header.extend([0x41; 16]);
        let raw = [u32s(&[1, 64, 4, header.len() as u32]), header].concat();
        let record = [u32s(&[1, raw.len() as u32]), raw].concat();
        let flow = [u32s(&[1, 3, rate, 5_000, 0, 3, 7, 1]), record].concat();
        let sample = [u32s(&[1, flow.len() as u32]), flow].concat();
        [u32s(&[5, 1]), vec![192, 0, 2, 254], u32s(&[0, 42, 123_456, 1]), sample].concat()
    }

    fn read(data: &[u8], from: &str, exporters: &Exporters) -> (Vec<PacketRecord>, TelemetryStats) {
        let mut stats = TelemetryStats::default();
        let mut records = Vec::new();
        read_sflow(data, from.parse().unwrap(), 7, exporters, &mut stats, |r| records.push(*r));
        (records, stats)
    }

    #[test]
    fn a_sampled_packet_becomes_a_record_that_weighs_its_sampling_rate() {
        let (records, stats) = read(&datagram(1_000), "192.0.2.254", &Exporters::any());
        assert_eq!(stats.records, 1);
        let r = records[0];
        assert_eq!((r.weight, r.wire_len, r.ts_ns, r.src_port, r.dst_port), (1_000, 64, 7, 123, 4444));
        assert_eq!((r.src.to_ip().to_string(), r.dst.to_ip().to_string()), ("198.51.100.7".into(), "192.0.2.1".into()));
    }

    #[test]
    fn rates_that_cannot_be_weights_and_strangers_are_counted_not_read() {
        for rate in [0, 65_536, u32::MAX] {
            let (records, stats) = read(&datagram(rate), "192.0.2.254", &Exporters::any());
            assert!(records.is_empty());
            assert_eq!(stats.bad_sampling_rates, 1, "{rate}");
        }
        let routers = Exporters::within(vec![Prefix::parse("10.0.0.0/8").unwrap()]);
        let (records, stats) = read(&datagram(100), "192.0.2.254", &routers);
        assert!(records.is_empty());
        assert_eq!((stats.unknown_exporters, stats.datagrams), (1, 0));
        assert_eq!(read(&datagram(100), "10.1.2.3", &routers).1.records, 1);
    }

    #[test]
    fn a_datagram_cut_anywhere_is_an_issue_and_never_a_panic() {
        let whole = datagram(10);
        for cut in 0..whole.len() {
            let (_, stats) = read(&whole[..cut], "192.0.2.254", &Exporters::any());
            assert_eq!(stats.issues[TelemetryIssue::Truncated as usize], 1, "cut at {cut}");
        }
        let mut v9 = whole.clone();
        v9[3] = 9;
        assert_eq!(read(&v9, "192.0.2.254", &Exporters::any()).1.issues[TelemetryIssue::UnknownVersion as usize], 1);
    }
}
