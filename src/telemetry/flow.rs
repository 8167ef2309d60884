//! Flow records (NetFlow, IPFIX) as records for the analyzer, which counts packets per 100 ms
//! tick while a flow record sums a flow's packets over its whole life.
//!
//! A flow's packets are spread evenly over the ticks it lasted, back from its end (placed on
//! the analyzer's clock by [`FlowClock`](super::netflow::FlowClock)). A record arrives after
//! its flow ended, or when the exporter's active timeout cut it (often a minute), and the
//! analyzer's clock only moves forward: the part of a flow whose ticks were counted already
//! is spread from the current tick on, at the flow's own rate, late by the export delay. A
//! flow exported every minute while it lasts is then counted without gaps, and no record is
//! held back waiting for later ones.

use super::TelemetryStats;
use crate::decode::{IpKey, L4State, Origin, PacketRecord};

/// The analyzer's tick, the unit a flow is spread in.
const STEP_NS: i64 = 100_000_000;
/// A flow is spread over a minute at most (a common active timeout): a record said to span
/// longer is counted over the minute after it arrives.
const MAX_STEPS: u64 = 600;
/// Flows being spread at once. A flood of one-packet flows needs none (each is counted in one
/// tick); past the bound, a flow is counted at once.
const MAX_SPREADING: usize = 1 << 16;
/// Time that goes back further than this (2 s) starts a new timeline.
const MAX_BACKWARD_STEPS: i64 = 20;
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
    /// When its last packet passed, on the analyzer's clock (see
    /// [`FlowClock`](super::netflow::FlowClock)).
    pub end_ns: i64,
    /// One packet in this many was seen; 1 when all were.
    pub sampling_rate: u32,
    /// Its exporter, and the format it came in.
    pub origin: Origin,
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

/// One flow being spread: `left` packets over the next `steps` ticks from tick `from` on.
struct Spreading {
    packet: PacketRecord,
    origin: Origin,
    left: u64,
    steps: u64,
    from: i64,
}

/// The flows being spread over their ticks.
#[derive(Default)]
pub struct Spreader {
    flows: Vec<Spreading>,
    /// The last tick whose shares were handed out.
    step: Option<i64>,
    /// How far behind the latest flow's end ticks are handed out (see [`settle`](Self::settle)).
    lag_steps: i64,
}

impl Spreader {
    /// A spreader handing out ticks `lag_ns` behind the latest flow's end.
    pub fn new(lag_ns: i64) -> Spreader {
        Spreader { lag_steps: lag_ns.div_euclid(STEP_NS), ..Spreader::default() }
    }

    /// Counts `flow` evenly over its ticks: from the tick it started in (its end less its
    /// duration) or, when that tick was handed out already, from the current one. Its shares
    /// are handed out as [`advance`](Self::advance) or [`settle`](Self::settle) pass their
    /// ticks. Past the bound on flows being spread, a flow due now is counted at once, and one
    /// due later makes room by handing out the earliest ticks early.
    pub fn add(&mut self, flow: &FlowRecord, stats: &mut TelemetryStats, emit: &mut impl FnMut(&PacketRecord, Origin)) {
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
        let spread_ns = flow.duration_ms.min(MAX_STEPS * 100) as i64 * 1_000_000;
        let start = flow.end_ns.saturating_sub(spread_ns).div_euclid(STEP_NS);
        let packet = flow.packet(start * STEP_NS, per_packet as u32);
        let mut flow = Spreading { packet, origin: flow.origin, left: total, steps, from: start };
        if self.flows.len() >= MAX_SPREADING {
            if let Some(done) = self.step.filter(|&done| start <= done + 1) {
                stats.unspread_flows += 1;
                flow.packet.ts_ns = start.max(done) * STEP_NS;
                emit_packets(&flow.packet, flow.origin, total, emit);
                return;
            }
            self.make_room(stats, emit);
        }
        if let Some(done) = self.step.filter(|&done| flow.from <= done) {
            // Its first ticks were counted: its first share goes in the current tick.
            flow.hand_out(done, emit);
            flow.from = done + 1;
        }
        if flow.left > 0 {
            self.flows.push(flow);
        }
    }

    /// The clock moved to `ts_ns` (a packet's time, or the wall clock's): hands out the
    /// shares of the ticks up to its, each at its tick's start.
    pub fn advance(&mut self, ts_ns: i64, emit: &mut impl FnMut(&PacketRecord, Origin)) {
        let now = ts_ns.div_euclid(STEP_NS);
        // Time went back (the next capture of a replay): what was spread is from the old
        // timeline, and is counted there.
        if self.step.is_some_and(|done| now < done - MAX_BACKWARD_STEPS) {
            self.finish(emit);
            self.step = Some(now);
        }
        self.hand_out_to(now, emit);
    }

    /// Flows ending by `ts_ns` were read: hands out the ticks the lag leaves behind. Flows
    /// exported out of order within the lag (an exporter sending a capture's flows at once)
    /// are then each counted in their own ticks.
    pub fn settle(&mut self, ts_ns: i64, emit: &mut impl FnMut(&PacketRecord, Origin)) {
        self.hand_out_to((ts_ns.div_euclid(STEP_NS)).saturating_sub(self.lag_steps), emit);
    }

    /// Hands out everything still spread, each share at its tick (the end of a replay).
    pub fn finish(&mut self, emit: &mut impl FnMut(&PacketRecord, Origin)) {
        if let Some(last) = self.flows.iter().map(|f| f.from + f.steps as i64).max() {
            self.hand_out_to(last, emit);
        }
    }

    pub fn spreading(&self) -> usize {
        self.flows.len()
    }

    /// The shares of the ticks after the last handed out (the first time, from the earliest
    /// flow's) up to `last`; ticks where none is due are skipped.
    fn hand_out_to(&mut self, last: i64, emit: &mut impl FnMut(&PacketRecord, Origin)) {
        // Most calls (a datagram each) find their tick handed out: nothing to look through.
        if self.step.is_some_and(|done| last <= done) {
            return;
        }
        let earliest = self.flows.iter().map(|f| f.from).min();
        let done = self.step.unwrap_or_else(|| earliest.unwrap_or(last).min(last) - 1);
        let mut due = earliest.map(|t| t.max(done + 1));
        while let Some(next) = due.filter(|&t| t <= last) {
            due = self.hand_out(next, emit);
        }
        self.step = Some(last);
    }

    /// Hands out the earliest ticks until a flow can be added.
    fn make_room(&mut self, stats: &mut TelemetryStats, emit: &mut impl FnMut(&PacketRecord, Origin)) {
        while self.flows.len() >= MAX_SPREADING {
            let Some(earliest) = self.flows.iter().map(|f| f.from).min() else { return };
            self.hand_out_to(self.step.map_or(earliest, |done| earliest.max(done + 1)), emit);
            stats.hurried_ticks += 1;
        }
    }

    /// The shares of tick `step`, of the flows begun by then; the next tick a share is due.
    fn hand_out(&mut self, step: i64, emit: &mut impl FnMut(&PacketRecord, Origin)) -> Option<i64> {
        let mut due: Option<i64> = None;
        self.flows.retain_mut(|f| {
            if f.from <= step {
                f.hand_out(step, emit);
            }
            let next = f.from.max(step + 1);
            if f.left > 0 {
                due = Some(due.map_or(next, |d| d.min(next)));
            }
            f.left > 0
        });
        due
    }
}

impl Spreading {
    /// The flow's share of tick `step`.
    fn hand_out(&mut self, step: i64, emit: &mut impl FnMut(&PacketRecord, Origin)) {
        let share = self.left.div_ceil(self.steps);
        self.left -= share;
        self.steps -= 1;
        self.packet.ts_ns = step * STEP_NS;
        emit_packets(&self.packet, self.origin, share, emit);
    }
}

/// `packets` packets like `packet`, in records of a weight each can hold.
fn emit_packets(packet: &PacketRecord, origin: Origin, mut packets: u64, emit: &mut impl FnMut(&PacketRecord, Origin)) {
    let mut r = *packet;
    while packets > 0 {
        let weight = packets.min(u64::from(u16::MAX));
        r.weight = weight as u16;
        emit(&r, origin);
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

    /// Records per 100 ms tick (packets each) after feeding `flows`, each ending at `end_ns`
    /// and arriving then, and finishing.
    fn spread(flows: &[(FlowRecord, i64)]) -> (Vec<(i64, u64)>, TelemetryStats) {
        let mut s = Spreader::default();
        let mut stats = TelemetryStats::default();
        let mut per_tick = std::collections::BTreeMap::<i64, u64>::new();
        let mut emit = |r: &PacketRecord, _: Origin| {
            assert_eq!((r.l4, r.wire_len), (L4State::Summarized, 500));
            *per_tick.entry(r.ts_ns / STEP_NS).or_default() += u64::from(r.weight);
        };
        for (f, end_ns) in flows {
            s.add(&FlowRecord { end_ns: *end_ns, ..*f }, &mut stats, &mut emit);
            s.advance(*end_ns, &mut emit);
        }
        s.finish(&mut emit);
        (per_tick.into_iter().collect(), stats)
    }

    #[test]
    fn a_flow_is_spread_over_its_duration_back_from_its_end() {
        // 1,000 packets over 1 s, sampled 1 in 10, ending 250 ms into tick 60.
        let (ticks, stats) = spread(&[(flow(1_000, 1_000, 10), 6_025_000_000)]);
        assert_eq!(ticks, (50..60).map(|t| (t, 1_000)).collect::<Vec<_>>());
        assert_eq!(stats.flow_packets, 10_000);
    }

    #[test]
    fn a_flow_whose_ticks_were_counted_is_spread_from_the_next_tick() {
        // The second flow ended at 6.0 s, as the first did, but came at 8.0 s: its ticks
        // (50-59) are past, so it is counted over the second from the current tick (80) on.
        let mut s = Spreader::default();
        let (mut stats, mut ticks) = (TelemetryStats::default(), Vec::new());
        let mut emit = |r: &PacketRecord, _: Origin| ticks.push((r.ts_ns / STEP_NS, u64::from(r.weight)));
        s.add(&FlowRecord { end_ns: 6_000_000_000, ..flow(10, 1_000, 1) }, &mut stats, &mut emit);
        s.advance(8_000_000_000, &mut emit);
        s.add(&FlowRecord { end_ns: 6_000_000_000, ..flow(100, 1_000, 1) }, &mut stats, &mut emit);
        s.finish(&mut emit);
        let second: Vec<_> = ticks.iter().filter(|t| t.1 == 10).map(|t| t.0).collect();
        assert_eq!(second, (80..90).collect::<Vec<_>>());
        assert_eq!(ticks.iter().filter(|t| t.1 == 1).map(|t| t.0).collect::<Vec<_>>(), (50..60).collect::<Vec<_>>());
    }

    #[test]
    fn shares_add_up_and_long_flows_spread_over_a_minute_at_most() {
        let (ticks, _) = spread(&[(flow(1_001, 250, 1), 300_000_000)]);
        assert_eq!(ticks, vec![(0, 334), (1, 334), (2, 333)]);
        let (ticks, _) = spread(&[(flow(6_000, 3_600_000, 1), 60_000_000_000)]);
        assert_eq!((ticks.len(), ticks.iter().map(|t| t.1).sum::<u64>()), (600, 6_000));
    }

    #[test]
    fn heavy_ticks_are_cut_into_records_a_weight_can_hold() {
        let mut emitted = Vec::new();
        let mut stats = TelemetryStats::default();
        let mut s = Spreader::default();
        s.add(&flow(100_000, 0, 2), &mut stats, &mut |r, _| emitted.push(r.weight));
        s.finish(&mut |r, _| emitted.push(r.weight));
        assert_eq!(emitted, vec![65_535, 65_535, 65_535, 3_395]);
    }

    #[test]
    fn past_the_bound_on_flows_being_spread_a_flow_counts_at_once() {
        let mut s = Spreader::default();
        let (mut stats, mut emitted) = (TelemetryStats::default(), 0u64);
        s.advance(1_000_000_000, &mut |_, _| ());
        for _ in 0..MAX_SPREADING + 1 {
            let f = FlowRecord { end_ns: 1_000_000_000, ..flow(10, 1_000, 1) };
            s.add(&f, &mut stats, &mut |r, _| emitted += u64::from(r.weight));
        }
        // Each flow's first share went in the current tick; the last flow all of it.
        assert_eq!((s.spreading(), stats.unspread_flows), (MAX_SPREADING, 1));
        assert_eq!(emitted, MAX_SPREADING as u64 + 10);
    }

    #[test]
    fn past_the_bound_flows_held_for_the_lag_make_room_in_tick_order() {
        // A replay's flows, a second long, ending at 30 s while the clock stands at 0.
        let mut s = Spreader::new(60_000_000_000);
        let (mut stats, mut ticks) = (TelemetryStats::default(), Vec::new());
        s.advance(0, &mut |_, _| ());
        for _ in 0..MAX_SPREADING + 1 {
            let f = FlowRecord { end_ns: 30_000_000_000, ..flow(10, 1_000, 1) };
            s.add(&f, &mut stats, &mut |r, _| ticks.push(r.ts_ns / STEP_NS));
        }
        // Ticks 290-299 went early; the last flow's ticks are past, its first share in 299.
        assert_eq!((s.spreading(), stats.hurried_ticks, ticks.len()), (1, 10, MAX_SPREADING * 10 + 1));
        assert!(ticks.is_sorted() && ticks[0] == 290 && ticks[ticks.len() - 1] == 299);
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
