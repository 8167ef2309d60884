//! The analyzer's vocabulary toward the outputs: the kinds of flood, and the events (start,
//! update, end) of one attack on one victim with who sends it.

use super::{in_class, Class};
use crate::decode::{ExportFormat, IpKey, PacketRecord, Prefix};
use std::net::IpAddr;

/// The flood kinds floodwatch flags.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AttackKind {
    SynFlood,
    SynAckFlood,
    UdpFlood,
    Amplification,
    IcmpFlood,
    FragmentFlood,
    /// TCP segments with ACK (and neither SYN nor RST) of no connection the victim is in.
    AckFlood,
    /// TCP RSTs.
    RstFlood,
    /// TCP segments with none of SYN, ACK and RST: null, FIN and xmas scans and floods.
    TcpFlood,
}

impl AttackKind {
    pub const ALL: [AttackKind; 9] = [
        AttackKind::SynFlood,
        AttackKind::SynAckFlood,
        AttackKind::UdpFlood,
        AttackKind::Amplification,
        AttackKind::IcmpFlood,
        AttackKind::FragmentFlood,
        AttackKind::AckFlood,
        AttackKind::RstFlood,
        AttackKind::TcpFlood,
    ];

    pub fn name(self) -> &'static str {
        match self {
            AttackKind::SynFlood => "syn_flood",
            AttackKind::SynAckFlood => "synack_flood",
            AttackKind::UdpFlood => "udp_flood",
            AttackKind::Amplification => "amplification",
            AttackKind::IcmpFlood => "icmp_flood",
            AttackKind::FragmentFlood => "fragment_flood",
            AttackKind::AckFlood => "ack_flood",
            AttackKind::RstFlood => "rst_flood",
            AttackKind::TcpFlood => "tcp_flood",
        }
    }

    /// Reflected traffic comes from real hosts (reflectors), whatever the packet count each.
    pub fn is_reflection(self) -> bool {
        matches!(self, AttackKind::Amplification | AttackKind::SynAckFlood)
    }

    /// Whether a packet is of the traffic this kind of attack is made of.
    pub fn matches(self, p: &PacketRecord) -> bool {
        in_class(p, self.class())
    }

    pub(super) fn class(self) -> Class {
        match self {
            AttackKind::SynFlood => Class::Syn,
            AttackKind::SynAckFlood => Class::SynAck,
            AttackKind::UdpFlood | AttackKind::Amplification => Class::Udp,
            AttackKind::IcmpFlood => Class::Icmp,
            AttackKind::FragmentFlood => Class::Frag,
            AttackKind::AckFlood => Class::Ack,
            AttackKind::RstFlood => Class::Rst,
            AttackKind::TcpFlood => Class::TcpOther,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Start,
    Update,
    End,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Start => "attack_start",
            EventKind::Update => "attack_update",
            EventKind::End => "attack_end",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndReason {
    /// The rate stayed below half the threshold for the quiet time.
    Quiet,
    EndOfInput,
    Shutdown,
}

impl EndReason {
    pub fn name(self) -> &'static str {
        match self {
            EndReason::Quiet => "quiet",
            EndReason::EndOfInput => "end_of_input",
            EndReason::Shutdown => "shutdown",
        }
    }
}

/// Who sends an attack's traffic.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceReport {
    pub distinct_estimate: u64,
    pub spoofed_likely: bool,
    /// Why the sources do or do not look forged, in one sentence.
    pub verdict: String,
    /// Busiest sources first: (address, packets).
    pub top: Vec<(IpAddr, u64)>,
}

/// What only `attack_end` carries.
#[derive(Clone, Debug, PartialEq)]
pub struct EndReport {
    pub ended_at_ns: i64,
    pub reason: EndReason,
}

/// One alert: the start, an update or the end of an attack on one victim.
#[derive(Clone, Debug, PartialEq)]
pub struct AttackEvent {
    pub timestamp_ns: i64,
    pub event: EventKind,
    pub attack_id: String,
    pub kind: AttackKind,
    /// The host attacked, or the network address of the prefix attacked (carpet bombing).
    pub victim: IpAddr,
    /// For a prefix: its length (24 for an IPv4 /24); `None` for a host.
    pub victim_prefix: Option<u8>,
    /// For a prefix: distinct hosts of it the flood reached (among the sampled flows).
    pub victim_hosts: Option<u64>,
    pub victim_ports: Vec<u16>,
    pub protocol: &'static str,
    pub service: Option<&'static str>,
    /// The reflectors' source port (amplification): one service may answer on several.
    pub service_port: Option<u16>,
    pub pps: u64,
    pub bps: u64,
    pub peak_pps: u64,
    pub threshold_pps: u64,
    pub started_at_ns: i64,
    pub packets: u64,
    pub bytes: u64,
    pub reason: String,
    pub sources: SourceReport,
    /// Sources worth blocking, on every event so firewalls can act from the start; empty when
    /// the sources look spoofed.
    pub offending_ips: Vec<IpAddr>,
    /// Packet time of the earliest packet of this victim's flood traffic the analyzer saw
    /// (the start of the window that led to the decision): `timestamp_ns - onset_ns` of an
    /// `attack_start` is the detection delay.
    pub onset_ns: i64,
    pub end: Option<EndReport>,
    /// Where its counts come from when flow telemetry made them (None: captured packets).
    pub telemetry: Option<TelemetrySource>,
    /// The sensors whose summaries showed the attack's traffic (an aggregator's alert), in
    /// the order they first did; empty for an alert from traffic seen here.
    pub sensors: Vec<String>,
}

/// The exporter whose telemetry an attack was counted from, and its sampling rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TelemetrySource {
    pub format: ExportFormat,
    pub exporter: IpAddr,
    pub sampling_rate: u32,
}

impl AttackEvent {
    /// The victim as written in alerts: an address, or a prefix such as `198.51.100.0/24`.
    pub fn victim_text(&self) -> String {
        match self.victim_prefix {
            Some(len) => format!("{}/{len}", self.victim),
            None => self.victim.to_string(),
        }
    }

    /// The addresses attacked: the victim's alone, or its prefix's.
    pub fn victim_range(&self) -> Prefix {
        Prefix::of(self.victim, self.victim_prefix.unwrap_or(128))
    }

    /// Whether `ip` is the victim or, for a prefix, inside it.
    pub fn covers(&self, ip: IpAddr) -> bool {
        self.victim_range().contains(IpKey::from_ip(ip))
    }

    /// Packet time from the flood's first packet seen to this event (for `attack_start`:
    /// the detection delay).
    pub fn detection_delay_ns(&self) -> u64 {
        self.timestamp_ns.saturating_sub(self.onset_ns).max(0) as u64
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An amplification alert against 2001:db8::7 from two reflectors, for the tests of what
    /// reads events (the alert filter, the renderings, the sinks).
    pub(crate) fn event(kind: EventKind) -> AttackEvent {
        AttackEvent {
            timestamp_ns: 1_768_478_403_500_000_000,
            event: kind,
            attack_id: "0123456789abcdef".into(),
            kind: AttackKind::Amplification,
            victim: "2001:db8::7".parse().unwrap(),
            victim_prefix: None,
            victim_hosts: None,
            victim_ports: vec![443],
            protocol: "udp",
            service: Some("dns"),
            service_port: Some(53),
            pps: 10_000,
            bps: 80_000_000,
            peak_pps: 12_000,
            threshold_pps: 1_000,
            started_at_ns: 1_768_478_403_000_000_000,
            packets: 30_000,
            bytes: 30_000_000,
            reason: "why".into(),
            sources: SourceReport {
                distinct_estimate: 2,
                spoofed_likely: false,
                verdict: "2 reflectors".into(),
                top: vec![("2001:db8::53".parse().unwrap(), 20_000), ("2001:db8::54".parse().unwrap(), 10_000)],
            },
            offending_ips: vec!["2001:db8::53".parse().unwrap(), "2001:db8::54".parse().unwrap()],
            onset_ns: 1_768_478_402_900_000_000,
            end: (kind == EventKind::End)
                .then_some(EndReport { ended_at_ns: 1_768_478_404_250_000_000, reason: EndReason::Quiet }),
            telemetry: None,
            sensors: Vec::new(),
        }
    }
}
