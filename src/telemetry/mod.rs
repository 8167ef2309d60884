//! Flow telemetry as a source of records: the datagrams routers and switches export (sFlow,
//! NetFlow v5/v9, IPFIX) become [`PacketRecord`]s that stand for the packets they describe, for
//! the same analyzer as captured packets.
//!
//! A sampled packet header (sFlow) is decoded by [`crate::decode`] like a captured frame, and
//! its record's weight is the sampling rate: a packet sampled 1 in 1,000 counts for 1,000, its
//! bytes for its length before sampling times 1,000. A flow record (NetFlow, IPFIX) becomes
//! records of its packets' average size, [`L4State::Summarized`](crate::decode::L4State),
//! spread over the ticks after its arrival (see [`flow`]).

pub mod flow;
pub mod netflow;
pub mod sflow;
// unsafe: recvmmsg.
#[allow(unsafe_code)]
pub mod socket;

use crate::capture::{Frame, LinkType};
use crate::decode::{decode, Decoded, ExportFormat, IpKey, Origin, PacketRecord, Prefix};
pub use netflow::FlowClock;
use sflow::{InterfaceCounters, Reading};
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// The well-known UDP ports of sFlow, NetFlow and IPFIX collectors.
pub const SFLOW_PORT: u16 = 6343;
pub const NETFLOW_PORT: u16 = 2055;
pub const IPFIX_PORT: u16 = 4739;
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
    pub netflow: Option<SocketAddr>,
    pub ipfix: Option<SocketAddr>,
    pub exporters: Exporters,
    /// NetFlow/IPFIX exporters' sampling rates, for those whose records and options data do
    /// not say (`[telemetry] sampling`).
    pub sampling: SamplingRates,
}

/// Configured sampling rates, by exporter address.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SamplingRates(Arc<HashMap<IpKey, u32>>);

impl SamplingRates {
    pub fn new(rates: impl IntoIterator<Item = (IpAddr, u32)>) -> SamplingRates {
        SamplingRates(Arc::new(rates.into_iter().map(|(ip, rate)| (IpKey::from_ip(ip), rate)).collect()))
    }

    /// The rate configured for `exporter`, if any.
    pub fn of(&self, exporter: IpKey) -> Option<u32> {
        self.0.get(&exporter).copied()
    }
}

impl TelemetrySettings {
    /// The listeners configured, each with the protocol it is for.
    pub fn listeners(&self) -> impl Iterator<Item = (Protocol, SocketAddr)> + '_ {
        [(Protocol::Sflow, self.sflow), (Protocol::NetflowV9, self.netflow), (Protocol::Ipfix, self.ipfix)]
            .into_iter()
            .filter_map(|(p, addr)| Some((p, addr?)))
    }

    /// The UDP ports whose datagrams a replay reads as telemetry: the listeners' ports, or the
    /// well-known ones for those not configured.
    pub fn ports(&self) -> [u16; 3] {
        let port = |addr: Option<SocketAddr>, default| addr.map_or(default, |a| a.port());
        [port(self.sflow, SFLOW_PORT), port(self.netflow, NETFLOW_PORT), port(self.ipfix, IPFIX_PORT)]
    }
}

/// The telemetry formats, told apart by their datagrams' version field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Sflow,
    NetflowV5,
    NetflowV9,
    Ipfix,
}

impl Protocol {
    pub const ALL: [Protocol; 4] = [Protocol::Sflow, Protocol::NetflowV5, Protocol::NetflowV9, Protocol::Ipfix];

    pub fn name(self) -> &'static str {
        match self {
            Protocol::Sflow => "sflow",
            Protocol::NetflowV5 => "netflow5",
            Protocol::NetflowV9 => "netflow9",
            Protocol::Ipfix => "ipfix",
        }
    }

    /// What a listener of this protocol is called in messages.
    pub fn listener(self) -> &'static str {
        match self {
            Protocol::Sflow => "sFlow",
            Protocol::NetflowV5 | Protocol::NetflowV9 => "NetFlow",
            Protocol::Ipfix => "IPFIX",
        }
    }
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
    /// Datagrams read, by [`Protocol`].
    pub datagrams: [u64; Protocol::ALL.len()],
    /// sFlow: flow samples, and the sampled packets turned into records.
    pub flow_samples: u64,
    pub records: u64,
    pub counter_samples: u64,
    /// Samples of a format not read (another enterprise's, or a new one).
    pub unknown_samples: u64,
    /// Flow records other than a raw packet header (switch, router, gateway data), or headers of
    /// a protocol not read.
    pub other_records: u64,
    /// Sampled packets whose header does not decode as IP (or is not IP).
    pub undecodable_samples: u64,
    /// NetFlow/IPFIX: flow records read, and the packets they stood for (sampling counted).
    pub flow_records: u64,
    pub flow_packets: u64,
    /// Records of options templates (sampling rates, exporter facts).
    pub options_records: u64,
    /// Templates read, and those refused by the bounds on how many are kept.
    pub templates: u64,
    pub templates_refused: u64,
    /// Data sets dropped: their template did not come while they were held.
    pub data_without_template: u64,
    /// Sets of an id no version defines.
    pub unknown_sets: u64,
    /// Flow records of no packets.
    pub empty_flows: u64,
    /// Flow records of more packets than a link carries, or of longer packets than IP allows.
    pub impossible_counts: u64,
    /// Interfaces whose counters were not kept: too many were.
    pub untracked_interfaces: u64,
    /// Flows counted at once rather than spread: too many were being spread.
    pub unspread_flows: u64,
    /// Ticks of flows handed out before the replay's lag ran out: too many were held.
    pub hurried_ticks: u64,
    /// Samples or flows whose rate cannot be a weight: 0, or above what any exporter uses.
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

    pub fn datagrams_total(&self) -> u64 {
        self.datagrams.iter().sum()
    }

    /// Adds another reader's counts.
    pub fn add(&mut self, other: &TelemetryStats) {
        self.datagrams.iter_mut().zip(&other.datagrams).for_each(|(a, b)| *a += b);
        self.flow_samples += other.flow_samples;
        self.records += other.records;
        self.counter_samples += other.counter_samples;
        self.unknown_samples += other.unknown_samples;
        self.other_records += other.other_records;
        self.undecodable_samples += other.undecodable_samples;
        self.flow_records += other.flow_records;
        self.flow_packets += other.flow_packets;
        self.options_records += other.options_records;
        self.templates += other.templates;
        self.templates_refused += other.templates_refused;
        self.data_without_template += other.data_without_template;
        self.unknown_sets += other.unknown_sets;
        self.empty_flows += other.empty_flows;
        self.impossible_counts += other.impossible_counts;
        self.unspread_flows += other.unspread_flows;
        self.untracked_interfaces += other.untracked_interfaces;
        self.hurried_ticks += other.hurried_ticks;
        self.bad_sampling_rates += other.bad_sampling_rates;
        self.unknown_exporters += other.unknown_exporters;
        self.impossible_lengths += other.impossible_lengths;
        self.issues.iter_mut().zip(&other.issues).for_each(|(a, b)| *a += b);
    }
}

/// A collector's state: whom it hears, the exporters' templates, the flows being spread.
/// One per thread that reads datagrams.
pub struct Collector {
    exporters: Exporters,
    templates: netflow::Templates,
    spreader: flow::Spreader,
    interfaces: Interfaces,
}

/// Interfaces whose counters are kept: a router has hundreds; beyond, more are counted
/// (`untracked_interfaces`) and not kept.
const MAX_INTERFACES: usize = 4096;

/// The latest counters of each interface the sFlow agents report, by agent and index.
#[derive(Default)]
struct Interfaces {
    latest: HashMap<(IpKey, u32), InterfaceCounters>,
}

impl Interfaces {
    fn update(&mut self, agent: IpKey, counters: InterfaceCounters, stats: &mut TelemetryStats) {
        let key = (agent, counters.if_index);
        if self.latest.len() < MAX_INTERFACES || self.latest.contains_key(&key) {
            self.latest.insert(key, counters);
        } else {
            stats.untracked_interfaces += 1;
        }
    }
}

impl Collector {
    /// A collector hearing `settings`' exporters with their configured sampling rates,
    /// placing flows by `clock`.
    pub fn new(settings: &TelemetrySettings, clock: FlowClock) -> Collector {
        Collector {
            exporters: settings.exporters.clone(),
            templates: netflow::Templates::new(clock, settings.sampling.clone()),
            spreader: flow::Spreader::new(clock.lag_ns()),
            interfaces: Interfaces::default(),
        }
    }

    /// The records of one datagram (sFlow, NetFlow v5/v9 or IPFIX, by its version) that
    /// `from` sent and that arrived at `ts_ns`, handed to `record` with those of earlier
    /// flows due by then (by `ts_ns`, or by the latest flow's end less the clock's lag);
    /// nothing when `exporters` does not admit `from`. Nothing is allocated but
    /// templates, and data held for one.
    pub fn read(
        &mut self,
        data: &[u8],
        from: IpAddr,
        ts_ns: i64,
        stats: &mut TelemetryStats,
        record: &mut impl FnMut(&PacketRecord, Origin),
    ) {
        if !self.exporters.admits(from) {
            stats.unknown_exporters += 1;
            return;
        }
        // sFlow's version takes four bytes, NetFlow's and IPFIX's two (5, 9, 10).
        let outcome = if data.starts_with(&[0, 0]) {
            self.spreader.advance(ts_ns, record);
            let origin = Origin::Exported { format: ExportFormat::Sflow, exporter: IpKey::from_ip(from) };
            read_sflow(data, ts_ns, origin, &mut self.interfaces, stats, record)
        } else {
            let (spreader, mut latest) = (&mut self.spreader, ts_ns);
            let outcome = netflow::read_datagram(
                data,
                IpKey::from_ip(from),
                ts_ns,
                &mut self.templates,
                stats,
                &mut |f, stats| {
                    latest = latest.max(f.end_ns);
                    spreader.add(f, stats, record)
                },
            );
            self.spreader.settle(latest, record);
            outcome
        };
        if let Err(issue) = outcome {
            stats.issues[issue as usize] += 1;
        }
    }

    /// Hands out the spread flows' shares due by `ts_ns` (a packet's time, or the wall
    /// clock's when no datagram comes).
    pub fn advance(&mut self, ts_ns: i64, record: &mut impl FnMut(&PacketRecord, Origin)) {
        self.spreader.advance(ts_ns, record);
    }

    /// Hands out everything still spread, and counts the data still waiting for its template
    /// (the end of a replay).
    pub fn finish(&mut self, stats: &mut TelemetryStats, record: &mut impl FnMut(&PacketRecord, Origin)) {
        self.spreader.finish(record);
        self.templates.give_up(stats);
    }

    /// The latest counters of every interface the sFlow agents reported, by agent address
    /// and interface index.
    pub fn interfaces(&self) -> Vec<(IpAddr, InterfaceCounters)> {
        let mut list: Vec<_> = self.interfaces.latest.iter().map(|(&(agent, _), &c)| (agent.to_ip(), c)).collect();
        list.sort_by_key(|&(agent, c)| (agent, c.if_index));
        list
    }

    /// Templates kept, and flows being spread: what the collector holds.
    pub fn held(&self) -> (usize, usize) {
        (self.templates.len(), self.spreader.spreading())
    }
}

/// The sampled packets of one sFlow datagram, each handed to `record` with `origin`; its
/// interface counters, to `interfaces`.
fn read_sflow(
    data: &[u8],
    ts_ns: i64,
    origin: Origin,
    interfaces: &mut Interfaces,
    stats: &mut TelemetryStats,
    record: &mut impl FnMut(&PacketRecord, Origin),
) -> Result<(), TelemetryIssue> {
    sflow::read_datagram(data, stats, |reading, stats| {
        let s = match reading {
            Reading::Packet(s) => s,
            Reading::Interface(counters) => {
                if let Origin::Exported { exporter, .. } = origin {
                    interfaces.update(exporter, counters, stats);
                }
                return;
            }
        };
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
                record(&r, origin);
            }
            _ => stats.undecodable_samples += 1,
        }
    })
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

    /// An sFlow datagram with one counter sample: interface 3's generic counters (10 Gb/s,
    /// up, 5,000 octets and 4 + 2 + 1 packets in, 9 octets out) and an Ethernet record.
    fn counters_datagram() -> Vec<u8> {
        let u32s = |v: &[u32]| v.iter().flat_map(|x| x.to_be_bytes()).collect::<Vec<u8>>();
        let generic = u32s(&[3, 6, 2, 1_410_065_408, 1, 3, 0, 5_000, 4, 2, 1, 0, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0]);
        assert_eq!(generic.len(), 88);
        let records = [u32s(&[1, 88]), generic, u32s(&[2, 4, 0])].concat();
        let sample = [u32s(&[17, 3, 2]), records].concat();
        [u32s(&[5, 1]), vec![192, 0, 2, 254], u32s(&[0, 43, 123_456, 1, 2, sample.len() as u32]), sample].concat()
    }

    #[test]
    fn counter_samples_keep_each_interfaces_latest_counters() {
        let mut collector = Collector::new(&TelemetrySettings::default(), FlowClock::Live);
        let mut stats = TelemetryStats::default();
        let data = counters_datagram();
        collector.read(&data, "192.0.2.254".parse().unwrap(), 7, &mut stats, &mut |_, _| ());
        let expected = InterfaceCounters {
            if_index: 3,
            speed: 10_000_000_000,
            up: true,
            in_octets: 5_000,
            in_packets: 7,
            out_octets: 9,
            ..InterfaceCounters::default()
        };
        assert_eq!(collector.interfaces(), vec![("192.0.2.254".parse().unwrap(), expected)]);
        assert_eq!((stats.counter_samples, stats.other_records, stats.issues_total()), (1, 1, 0));
        for cut in 0..data.len() {
            let mut stats = TelemetryStats::default();
            let mut collector = Collector::new(&TelemetrySettings::default(), FlowClock::Live);
            collector.read(&data[..cut], "192.0.2.254".parse().unwrap(), 7, &mut stats, &mut |_, _| ());
            assert_eq!(stats.issues[TelemetryIssue::Truncated as usize], 1, "cut at {cut}");
        }
    }

    fn read(data: &[u8], from: &str, exporters: &Exporters) -> (Vec<PacketRecord>, TelemetryStats) {
        let mut stats = TelemetryStats::default();
        let mut records = Vec::new();
        Collector::new(
            &TelemetrySettings { exporters: exporters.clone(), ..TelemetrySettings::default() },
            FlowClock::Live,
        )
        .read(data, from.parse().unwrap(), 7, &mut stats, &mut |r, _| records.push(*r));
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
        assert_eq!((stats.unknown_exporters, stats.datagrams_total()), (1, 0));
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
