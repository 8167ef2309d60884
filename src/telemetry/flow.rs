//! Flow records (NetFlow, IPFIX) as records for the analyzer, which counts packets per 100 ms
//! tick while a flow record sums a flow's packets over its whole life.
//!
//! A record arrives after its flow ended, or when the exporter's active timeout cut it (often a
//! minute): its packets lie in the past, and the analyzer's clock only moves forward. So a
//! flow's packets are spread evenly over as many ticks as the flow lasted, **from its
//! arrival on**: its rate is the flow's own rate, late by the export delay. A flow exported
//! every minute while it lasts (the active timeout) is then counted without gaps; spreading
//! into the past would have to hold every record for that minute before analysis.
//! Only the flow's duration is read from its times, so an exporter's clock may be off, or count
//! from its boot, without shifting anything.

use super::TelemetryStats;
use crate::decode::{IpKey, L4State, PacketRecord};

/// The analyzer's tick, the unit a flow is spread in.
const STEP_NS: i64 = 100_000_000;
/// A flow is spread over a minute at most (a common active timeout): a record said to span
/// longer is counted over the minute after it arrives.
const MAX_STEPS: u64 = 600;
/// Flows being spread at once. A flood of one-packet flows needs none (each is counted in one
/// tick); past the bound, a flow is counted at once.
const MAX_SPREADING: usize = 1 << 16;
/// Packets per second no link carries: 100 Gb/s of the smallest Ethernet frames (84 bytes on
/// the wire with preamble and gap) is 148.8 Mpps. A flow record claiming more lies, and would
/// cost millions of records.
const MAX_PPS: u64 = 150_000_000;
/// The longest packet a flow may average: an IP packet of 65,535 bytes with its link header.
const MAX_PACKET_BYTES: u64 = 65_535 + 26;

/// One flow, as its exporter described it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FlowRecord {
    pub src: IpKey,
    pub dst: IpKey,
    pub src_port: u16,
    pub dst_port: u16,
    pub protocol: u8,
    /// Every flag any of the flow's TCP segments had.
    pub tcp_flags: u8,
    /// ICMP type, for an ICMP or ICMPv6 flow.
    pub icmp_type: u8,
    /// Packets and bytes the exporter saw (sampled: one in `sampling_rate` of the flow's).
    pub packets: u64,
    pub bytes: u64,
    /// From the flow's first packet to its last.
    pub duration_ms: u64,
    /// One packet in this many was seen; 1 when all were.
    pub sampling_rate: u32,
}

impl FlowRecord {
    /// The flags one of the flow's packets stands for. The flags of a whole flow are not one
    /// packet's: a connection's SYN, ACK, PSH and FIN together are its many ACK segments; only
    /// a flow with no ACK is all SYNs (or RSTs, or other), and one of SYN and ACK alone is
    /// SYN-ACKs (a reflected SYN flood: an answer and nothing more).
    fn packet_flags(&self) -> u8 {
        const SYN: u8 = PacketRecord::TCP_SYN;
        const ACK: u8 = PacketRecord::TCP_ACK;
        const FIN_PSH_RST: u8 = PacketRecord::TCP_FIN | 0x08 | PacketRecord::TCP_RST;
        let flags = self.tcp_flags;
        if flags & ACK == 0 || flags & (FIN_PSH_RST | SYN | ACK) == SYN | ACK {
            flags
        } else {
            flags & !SYN
        }
    }

    /// The record of one of its packets at `ts_ns`, of the flow's average size (weight 1).
    fn packet(&self, ts_ns: i64, wire_len: u32) -> PacketRecord {
        let icmp = matches!(self.protocol, PacketRecord::PROTO_ICMP | PacketRecord::PROTO_ICMPV6);
        PacketRecord {
            ts_ns,
            wire_len,
            src: self.src,
            dst: self.dst,
            protocol: self.protocol,
            l4: L4State::Summarized,
            src_port: if icmp { 0 } else { self.src_port },
            dst_port: if icmp { 0 } else { self.dst_port },
            tcp_flags: if self.protocol == PacketRecord::PROTO_TCP { self.packet_flags() } else { 0 },
            icmp_type: if icmp { self.icmp_type } else { 0 },
            tcp_ack: self.sampling_rate,
            ..PacketRecord::default()
        }
    }
}

/// One flow being spread: `left` packets over the next `steps` ticks.
struct Spreading {
    packet: PacketRecord,
    left: u64,
    steps: u64,
}

/// The flows being spread over the ticks after their arrival.
#[derive(Default)]
pub struct Spreader {
    flows: Vec<Spreading>,
    /// The last tick whose share was handed out.
    step: Option<i64>,
}

impl Spreader {
    /// Counts `flow`, arrived at `ts_ns`: its first tick's share at once, the rest in the
    /// ticks that follow (see [`advance`](Self::advance)).
    pub fn add(
        &mut self,
        flow: &FlowRecord,
        ts_ns: i64,
        stats: &mut TelemetryStats,
        emit: &mut impl FnMut(&PacketRecord),
    ) {
        self.advance(ts_ns, emit);
        if flow.packets == 0 {
            stats.empty_flows += 1;
            return;
        }
        let steps = flow.duration_ms.div_ceil(100).clamp(1, MAX_STEPS);
        let total = flow.packets.saturating_mul(u64::from(flow.sampling_rate.max(1)));
        let per_packet = flow.bytes / flow.packets;
        if total / steps > MAX_PPS / 10 || per_packet > MAX_PACKET_BYTES {
            stats.impossible_counts += 1;
            return;
        }
        stats.flow_packets += total;
        let packet = flow.packet(ts_ns, per_packet as u32);
        let first = total.div_ceil(steps);
        emit_packets(&packet, first, emit);
        let (left, steps) = (total - first, steps - 1);
        if left == 0 {
            return;
        }
        if self.flows.len() < MAX_SPREADING {
            self.flows.push(Spreading { packet, left, steps });
        } else {
            stats.unspread_flows += 1;
            emit_packets(&packet, left, emit);
        }
    }

    /// Hands out the shares of the ticks up to that of `ts_ns`, each at its tick's start.
    pub fn advance(&mut self, ts_ns: i64, emit: &mut impl FnMut(&PacketRecord)) {
        let now = ts_ns.div_euclid(STEP_NS);
        let Some(mut step) = self.step else {
            self.step = Some(now);
            return;
        };
        // Time went back (the next capture of a replay): what was spread is from the old
        // timeline, and is counted there.
        if now < step - 20 {
            self.finish(emit);
            self.step = Some(now);
            return;
        }
        while step < now && !self.flows.is_empty() {
            step += 1;
            self.hand_out(step, emit);
        }
        self.step = Some(now.max(step));
    }

    /// Hands out everything still spread, each share at its tick (the end of a replay).
    pub fn finish(&mut self, emit: &mut impl FnMut(&PacketRecord)) {
        let mut step = self.step.unwrap_or(0);
        while !self.flows.is_empty() {
            step += 1;
            self.hand_out(step, emit);
        }
        self.step = Some(step);
    }

    pub fn spreading(&self) -> usize {
        self.flows.len()
    }

    fn hand_out(&mut self, step: i64, emit: &mut impl FnMut(&PacketRecord)) {
        self.flows.retain_mut(|f| {
            let share = f.left.div_ceil(f.steps);
            f.left -= share;
            f.steps -= 1;
            f.packet.ts_ns = step * STEP_NS;
            emit_packets(&f.packet, share, emit);
            f.left > 0
        });
    }
}

/// `packets` packets like `packet`, in records of a weight each can hold.
fn emit_packets(packet: &PacketRecord, mut packets: u64, emit: &mut impl FnMut(&PacketRecord)) {
    let mut r = *packet;
    while packets > 0 {
        let weight = packets.min(u64::from(u16::MAX));
        r.weight = weight as u16;
        emit(&r);
        packets -= weight;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flow(packets: u64, duration_ms: u64, sampling_rate: u32) -> FlowRecord {
        FlowRecord {
            src: IpKey::from_v4([198, 51, 100, 7]),
            dst: IpKey::from_v4([192, 0, 2, 1]),
            src_port: 123,
            dst_port: 4444,
            protocol: PacketRecord::PROTO_UDP,
            packets,
            bytes: packets.saturating_mul(500),
            duration_ms,
            sampling_rate,
            ..FlowRecord::default()
        }
    }

    /// Records per 100 ms tick (packets each) after feeding `flows` at `ts_ns` and finishing.
    fn spread(flows: &[(FlowRecord, i64)]) -> (Vec<(i64, u64)>, TelemetryStats) {
        let mut s = Spreader::default();
        let mut stats = TelemetryStats::default();
        let mut per_tick = std::collections::BTreeMap::<i64, u64>::new();
        let mut emit = |r: &PacketRecord| {
            assert_eq!((r.l4, r.wire_len), (L4State::Summarized, 500));
            *per_tick.entry(r.ts_ns / STEP_NS).or_default() += u64::from(r.weight);
        };
        for (f, ts) in flows {
            s.add(f, *ts, &mut stats, &mut emit);
        }
        s.finish(&mut emit);
        (per_tick.into_iter().collect(), stats)
    }

    #[test]
    fn a_flow_is_spread_over_its_duration_from_its_arrival() {
        // 1,000 packets over 1 s, sampled 1 in 10, arriving 250 ms into tick 50.
        let (ticks, stats) = spread(&[(flow(1_000, 1_000, 10), 5_025_000_000)]);
        assert_eq!(ticks, (50..60).map(|t| (t, 1_000)).collect::<Vec<_>>());
        assert_eq!(stats.flow_packets, 10_000);
    }

    #[test]
    fn shares_add_up_and_long_flows_spread_over_a_minute_at_most() {
        let (ticks, _) = spread(&[(flow(1_001, 250, 1), 0)]);
        assert_eq!(ticks, vec![(0, 334), (1, 334), (2, 333)]);
        let (ticks, _) = spread(&[(flow(6_000, 3_600_000, 1), 0)]);
        assert_eq!((ticks.len(), ticks.iter().map(|t| t.1).sum::<u64>()), (600, 6_000));
    }

    #[test]
    fn heavy_ticks_are_cut_into_records_a_weight_can_hold() {
        let mut emitted = Vec::new();
        let mut stats = TelemetryStats::default();
        Spreader::default().add(&flow(100_000, 0, 2), 0, &mut stats, &mut |r| emitted.push(r.weight));
        assert_eq!(emitted, vec![65_535, 65_535, 65_535, 3_395]);
    }

    #[test]
    fn impossible_and_empty_flows_are_counted_not_spread() {
        let (ticks, stats) = spread(&[
            (flow(u64::MAX / 2, 1_000, 1), 0),
            (flow(20_000_000, 0, 1), 0),
            (FlowRecord { bytes: 10_000_000, ..flow(1, 0, 1) }, 0),
            (flow(0, 0, 1), 0),
        ]);
        assert!(ticks.is_empty());
        assert_eq!((stats.impossible_counts, stats.empty_flows), (3, 1));
    }

    #[test]
    fn a_flow_stands_for_packets_with_one_packets_flags() {
        let tcp = |flags| FlowRecord { protocol: PacketRecord::PROTO_TCP, tcp_flags: flags, ..flow(1, 0, 1) };
        // SYN only; SYN-ACK only; a whole connection (SYN, ACK, PSH, FIN); RST with ACK.
        let cases = [(0x02, 0x02), (0x12, 0x12), (0x1b, 0x19), (0x14, 0x14), (0x16, 0x14)];
        for (flow_flags, packet_flags) in cases {
            assert_eq!(tcp(flow_flags).packet(0, 60).tcp_flags, packet_flags, "{flow_flags:#x}");
        }
        let r = flow(1, 0, 100).packet(7, 60);
        assert_eq!((r.sampling_rate(), r.src_port, r.dst_port, r.ts_ns), (100, 123, 4444, 7));
    }
}
