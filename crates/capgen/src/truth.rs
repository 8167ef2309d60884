//! Ground truth: what each capture contains, counted from the frames actually written.
//!
//! A scenario states its attacks' fixed facts (victim, kind, nominal rate) as [`AttackPlan`]s;
//! a [`Tally`] counts every frame as it is written (packets, first and last attack packet,
//! distinct source addresses read back from the frame bytes); [`GroundTruth::new`] combines the
//! two into the JSON document stored beside the capture.

use std::collections::BTreeSet;
use std::net::IpAddr;

use serde::{Deserialize, Serialize};

use super::frames::ip_addresses;
use super::traffic::Role;
use crate::time::rfc3339_micros;

/// What kind of flood an attack is (the detector's alert kinds).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttackKind {
    SynFlood,
    UdpFlood,
    Amplification,
    IcmpFlood,
    SynackFlood,
    FragmentFlood,
    AckFlood,
    RstFlood,
    TcpFlood,
}

/// The protocol of the attack packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
    Icmp,
    Icmpv6,
}

/// The container format of a capture file.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Container {
    #[serde(rename = "pcap")]
    Pcap,
    #[serde(rename = "pcap.gz")]
    PcapGz,
    #[serde(rename = "pcapng")]
    Pcapng,
    #[serde(rename = "pcapng.gz")]
    PcapngGz,
}

impl Container {
    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Container::Pcap => "pcap",
            Container::PcapGz => "pcap.gz",
            Container::Pcapng => "pcapng",
            Container::PcapngGz => "pcapng.gz",
        }
    }
}

/// The facts of an attack that the scenario fixes in advance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttackPlan {
    pub kind: AttackKind,
    /// The host attacked, or the network address of the prefix attacked.
    pub victim: IpAddr,
    /// The prefix's length when a prefix is attacked (carpet bombing).
    pub victim_prefix: Option<u8>,
    pub protocol: Protocol,
    pub service: Option<&'static str>,
    pub victim_ports: Vec<u16>,
    /// Nominal packets per second toward the victim.
    pub rate_pps: u64,
    pub spoofed: bool,
    /// Real users of the victim whose packets are of the attack's kind and cannot be told
    /// apart when they arrive (a server's clients opening connections during a SYN flood: a
    /// SYN's handshake completes only later); 0 when none.
    pub users: u64,
}

/// One attack in the ground truth.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttackTruth {
    pub kind: AttackKind,
    pub victim: IpAddr,
    /// See [`AttackPlan::victim_prefix`]; omitted for a host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub victim_prefix: Option<u8>,
    /// Distinct hosts of the prefix the attack reached; omitted for a host.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub victim_hosts: u64,
    pub protocol: Protocol,
    pub service: Option<String>,
    /// The main destination ports, or empty when they are random.
    pub victim_ports: Vec<u16>,
    /// Time of the first attack packet (RFC 3339, microseconds, UTC).
    pub start: String,
    /// Time of the last attack packet.
    pub end: String,
    /// Attack packets toward the victim (fragments included).
    pub packets: u64,
    /// Nominal rate.
    pub rate_pps: u64,
    pub spoofed: bool,
    pub distinct_sources: u64,
    /// See [`AttackPlan::users`]: a detector counting every sender of the attack's traffic
    /// counts up to this many more sources. Omitted when 0.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub users: u64,
    /// Every source address, sorted; empty when the sources are spoofed.
    pub sources: Vec<IpAddr>,
}

/// The ground truth of one capture file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroundTruth {
    pub file: String,
    pub scenario: String,
    pub generator: String,
    pub description: String,
    pub format: Container,
    pub link_type: u16,
    /// Frames in the file.
    pub packets: u64,
    /// True when the capture holds no attack at all.
    pub benign: bool,
    pub attacks: Vec<AttackTruth>,
}

/// The file-level facts that [`GroundTruth::new`] needs besides the counts.
#[derive(Clone, Debug)]
pub struct FileFacts {
    pub file: String,
    pub scenario: String,
    pub generator: String,
    pub description: String,
    pub format: Container,
    pub link_type: u16,
}

impl GroundTruth {
    /// Combines the scenario's plans with what the tally counted while the file was written.
    pub fn new(facts: FileFacts, plans: &[AttackPlan], tally: Tally) -> GroundTruth {
        let attacks: Vec<AttackTruth> = plans
            .iter()
            .zip(tally.attacks)
            .map(|(plan, counted)| AttackTruth {
                kind: plan.kind,
                victim: plan.victim,
                victim_prefix: plan.victim_prefix,
                victim_hosts: if plan.victim_prefix.is_some() { counted.destinations.len() as u64 } else { 0 },
                protocol: plan.protocol,
                service: plan.service.map(str::to_owned),
                victim_ports: plan.victim_ports.clone(),
                start: rfc3339_micros(counted.first_ns),
                end: rfc3339_micros(counted.last_ns),
                packets: counted.packets,
                rate_pps: plan.rate_pps,
                spoofed: plan.spoofed,
                distinct_sources: counted.sources.len() as u64,
                users: plan.users,
                sources: if plan.spoofed { Vec::new() } else { counted.sources.into_iter().collect() },
            })
            .collect();
        GroundTruth {
            file: facts.file,
            scenario: facts.scenario,
            generator: facts.generator,
            description: facts.description,
            format: facts.format,
            link_type: facts.link_type,
            packets: tally.packets,
            benign: attacks.is_empty(),
            attacks,
        }
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Counts of one attack's packets.
#[derive(Clone, Debug, Default)]
struct AttackCount {
    packets: u64,
    first_ns: i64,
    last_ns: i64,
    sources: BTreeSet<IpAddr>,
    destinations: BTreeSet<IpAddr>,
}

/// Counts the frames of a capture as they are written.
#[derive(Clone, Debug)]
pub struct Tally {
    packets: u64,
    attacks: Vec<AttackCount>,
}

impl Tally {
    /// A tally for a scenario with `attacks` attacks.
    pub fn new(attacks: usize) -> Tally {
        Tally { packets: 0, attacks: vec![AttackCount::default(); attacks] }
    }

    /// Counts one written frame. The source of an attack frame is read back from its bytes.
    pub fn count(&mut self, time_ns: i64, role: Role, frame: &[u8]) {
        self.packets += 1;
        let Role::Attack(index) = role else {
            return;
        };
        let Some(attack) = self.attacks.get_mut(index) else {
            debug_assert!(false, "attack index {index} outside the plan");
            return;
        };
        if attack.packets == 0 {
            attack.first_ns = time_ns;
        }
        attack.packets += 1;
        attack.last_ns = time_ns;
        if let Some((source, destination)) = ip_addresses(frame) {
            attack.sources.insert(source);
            attack.destinations.insert(destination);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::{build_ip_frame, Ethernet, Ip, Transport, VlanTags};
    use crate::traffic::{at_ms, BASE_TIME_NS};

    #[test]
    fn attack_times_are_rfc3339_microseconds_of_the_counted_packets() {
        let plan = AttackPlan {
            kind: AttackKind::SynFlood,
            victim: IpAddr::from([192, 0, 2, 1]),
            victim_prefix: None,
            protocol: Protocol::Tcp,
            service: None,
            victim_ports: vec![80],
            rate_pps: 1,
            spoofed: false,
            users: 0,
        };
        let mut frame = Vec::new();
        let ip = Ip::between(IpAddr::from([198, 18, 0, 1]), plan.victim, 64, 1).unwrap();
        let ethernet = Ethernet { dst: [0; 6], src: [0; 6], vlan: VlanTags::Untagged };
        build_ip_frame(&mut frame, &ethernet, &ip, &Transport::Raw { protocol: 6 }, &[]);
        let mut tally = Tally::new(1);
        tally.count(BASE_TIME_NS, Role::Background, &frame);
        tally.count(at_ms(3_000) + 123_456_789, Role::Attack(0), &frame);
        tally.count(at_ms(5_000), Role::Attack(0), &frame);
        let facts = FileFacts {
            file: "f.pcap".into(),
            scenario: "f".into(),
            generator: "test".into(),
            description: String::new(),
            format: Container::Pcap,
            link_type: 1,
        };
        let truth = GroundTruth::new(facts, &[plan], tally);
        assert_eq!(truth.packets, 3);
        assert!(!truth.benign);
        let attack = &truth.attacks[0];
        assert_eq!((attack.packets, attack.distinct_sources), (2, 1));
        assert_eq!(attack.start, "2026-01-15T12:00:03.123456Z");
        assert_eq!(attack.end, "2026-01-15T12:00:05.000000Z");
        assert_eq!(attack.sources, vec![IpAddr::from([198, 18, 0, 1])]);
    }

    #[test]
    fn serialises_the_documented_names() {
        let json = serde_json::to_string(&(AttackKind::SynackFlood, Protocol::Icmpv6, Container::PcapGz)).unwrap();
        assert_eq!(json, r#"["synack_flood","icmpv6","pcap.gz"]"#);
    }
}
