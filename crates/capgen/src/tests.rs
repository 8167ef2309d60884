//! Whole-file checks: every scenario is written to a temporary directory, read back with a small
//! independent reader, and its frames, checksums and ground truth are verified.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;

use super::files::{write_all, write_scenario};
use super::floods::REFLECTOR_PORTS;
use super::frames::internet_checksum;
use super::scenarios::{find, SCENARIOS};
use super::truth::{AttackKind, AttackTruth, GroundTruth};
use crate::time::rfc3339_micros;

/// Files must stay below this size to be committed.
const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;

/// A fresh temporary directory for one test, removed when dropped (even if the test fails).
struct TempDir(PathBuf);

impl TempDir {
    fn new(label: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("capgen-test-{}-{label}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl std::ops::Deref for TempDir {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One frame read back: time, interface (0 for pcap) and bytes.
struct ReadFrame {
    ts_ns: i64,
    interface: u32,
    data: Vec<u8>,
}

fn u16_le(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

fn u32_le(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u16_be(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

/// Reads a (possibly gzip-compressed) pcap or pcapng file written by the generator.
fn read_capture(path: &Path) -> Vec<ReadFrame> {
    let mut bytes = std::fs::read(path).unwrap();
    if bytes.starts_with(&[0x1f, 0x8b]) {
        let mut plain = Vec::new();
        GzDecoder::new(&bytes[..]).read_to_end(&mut plain).unwrap();
        bytes = plain;
    }
    match u32_le(&bytes, 0) {
        0xa1b2_c3d4 => read_pcap(&bytes),
        0x0a0d_0d0a => read_pcapng(&bytes),
        magic => panic!("{}: unexpected magic {magic:08x}", path.display()),
    }
}

fn read_pcap(bytes: &[u8]) -> Vec<ReadFrame> {
    assert_eq!(u32_le(bytes, 20), 1, "link type Ethernet");
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let ts_ns = i64::from(u32_le(bytes, at)) * 1_000_000_000 + i64::from(u32_le(bytes, at + 4)) * 1_000;
        let (stored, wire) = (u32_le(bytes, at + 8) as usize, u32_le(bytes, at + 12) as usize);
        assert_eq!(stored, wire, "frames are stored whole");
        frames.push(ReadFrame { ts_ns, interface: 0, data: bytes[at + 16..at + 16 + stored].to_vec() });
        at += 16 + stored;
    }
    frames
}

fn read_pcapng(bytes: &[u8]) -> Vec<ReadFrame> {
    let mut ns_per_unit = Vec::new();
    let mut frames = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let (kind, len) = (u32_le(bytes, at), u32_le(bytes, at + 4) as usize);
        assert_eq!(u32_le(bytes, at + len - 4) as usize, len);
        match kind {
            1 => {
                assert_eq!(u16_le(bytes, at + 8), 1, "link type Ethernet");
                let has_tsresol = len > 20 && u16_le(bytes, at + 16) == 9;
                ns_per_unit.push(if has_tsresol && bytes[at + 20] == 9 { 1 } else { 1_000 });
            }
            6 => {
                let interface = u32_le(bytes, at + 8);
                let units = (u64::from(u32_le(bytes, at + 12)) << 32) | u64::from(u32_le(bytes, at + 16));
                let stored = u32_le(bytes, at + 20) as usize;
                let ts_ns = units as i64 * ns_per_unit[interface as usize];
                frames.push(ReadFrame { ts_ns, interface, data: bytes[at + 28..at + 28 + stored].to_vec() });
            }
            _ => {}
        }
        at += len;
    }
    frames
}

/// What the checks need from one IP packet.
#[derive(Debug, Default)]
struct Packet {
    src: Option<IpAddr>,
    dst: Option<IpAddr>,
    /// Upper-layer protocol (after any IPv6 extension headers).
    protocol: u8,
    /// Part of a fragmented datagram, and whether it is the first part.
    fragment: bool,
    first_fragment: bool,
    src_port: u16,
    dst_port: u16,
    tcp_flags: u8,
    tcp_seq: u32,
    tcp_ack: u32,
    icmp_type: u8,
    vlan_tags: usize,
}

/// Parses a frame and asserts that every checksum it can check is right.
fn parse_and_verify(frame: &[u8]) -> Packet {
    let mut packet = Packet::default();
    let mut at = 12;
    while matches!(u16_be(frame, at), 0x8100 | 0x88a8) {
        packet.vlan_tags += 1;
        at += 4;
    }
    let ethertype = u16_be(frame, at);
    let ip = &frame[at + 2..];
    let (upper, pseudo_sum, whole) = match ethertype {
        0x0800 => {
            let header_len = usize::from(ip[0] & 0x0f) * 4;
            assert_eq!(internet_checksum(&ip[..header_len], 0), 0, "IPv4 header checksum");
            assert_eq!(usize::from(u16_be(ip, 2)), ip.len(), "IPv4 total length");
            let flags = u16_be(ip, 6);
            let (more, offset) = (flags & 0x2000 != 0, flags & 0x1fff);
            packet.fragment = more || offset != 0;
            packet.first_fragment = packet.fragment && offset == 0;
            packet.protocol = ip[9];
            packet.src = Some(IpAddr::from(<[u8; 4]>::try_from(&ip[12..16]).unwrap()));
            packet.dst = Some(IpAddr::from(<[u8; 4]>::try_from(&ip[16..20]).unwrap()));
            let upper = &ip[header_len..];
            let sum = pseudo_sum(&ip[12..20], packet.protocol, upper.len());
            (upper, sum, !packet.fragment)
        }
        0x86dd => {
            assert_eq!(usize::from(u16_be(ip, 4)) + 40, ip.len(), "IPv6 payload length");
            packet.src = Some(IpAddr::from(<[u8; 16]>::try_from(&ip[8..24]).unwrap()));
            packet.dst = Some(IpAddr::from(<[u8; 16]>::try_from(&ip[24..40]).unwrap()));
            let (mut next, mut offset) = (ip[6], 40);
            while matches!(next, 44 | 60) {
                if next == 44 {
                    packet.fragment = true;
                    packet.first_fragment = u16_be(ip, offset + 2) >> 3 == 0;
                }
                next = ip[offset];
                offset += if next == 44 { 8 } else { (usize::from(ip[offset + 1]) + 1) * 8 };
            }
            packet.protocol = next;
            let upper = &ip[offset..];
            let sum = pseudo_sum(&ip[8..40], next, upper.len());
            (upper, sum, !packet.fragment)
        }
        _ => return packet,
    };
    if packet.fragment && !packet.first_fragment {
        return packet;
    }
    match packet.protocol {
        6 => {
            (packet.src_port, packet.dst_port) = (u16_be(upper, 0), u16_be(upper, 2));
            packet.tcp_seq = u32::from_be_bytes(upper[4..8].try_into().unwrap());
            packet.tcp_ack = u32::from_be_bytes(upper[8..12].try_into().unwrap());
            packet.tcp_flags = upper[13];
        }
        17 => (packet.src_port, packet.dst_port) = (u16_be(upper, 0), u16_be(upper, 2)),
        1 | 58 => packet.icmp_type = upper[0],
        other => panic!("unexpected protocol {other}"),
    }
    if whole {
        let sum = if packet.protocol == 1 { 0 } else { pseudo_sum };
        assert_eq!(internet_checksum(upper, sum), 0, "checksum of protocol {}", packet.protocol);
    }
    packet
}

/// The pseudo-header sum from the address bytes, protocol and upper-layer length.
fn pseudo_sum(addresses: &[u8], protocol: u8, upper_len: usize) -> u64 {
    let words: u64 = addresses.chunks(2).map(|w| u64::from(u16::from_be_bytes([w[0], w[1]]))).sum();
    words + u64::from(protocol) + upper_len as u64
}

/// The (client, client port) of every connection to `victim` whose handshake the client
/// completed: it sent a SYN, and a segment with ACK and without SYN.
fn completed_connections(victim: IpAddr, packets: &[Packet]) -> BTreeSet<(IpAddr, u16)> {
    let toward_victim = |flags: u8| {
        packets
            .iter()
            .filter(move |p| p.dst == Some(victim) && p.protocol == 6 && p.tcp_flags & 0x12 == flags)
            .filter_map(|p| Some((p.src?, p.src_port)))
            .collect::<BTreeSet<_>>()
    };
    let opened = toward_victim(0x02);
    toward_victim(0x10).intersection(&opened).copied().collect()
}

/// Whether `packet` belongs to `attack`, judged from the packet and, for a SYN flood, from
/// whether its connection ever completed (`completed`, see [`completed_connections`]).
fn is_attack_packet(attack: &AttackTruth, packet: &Packet, completed: &BTreeSet<(IpAddr, u16)>) -> bool {
    let toward_victim = match (attack.victim_prefix, packet.dst) {
        (None, dst) => dst == Some(attack.victim),
        (Some(len), Some(IpAddr::V4(dst))) => {
            let IpAddr::V4(network) = attack.victim else { return false };
            let mask = u32::MAX.checked_shl(32 - len as u32).unwrap_or(0);
            u32::from(dst) & mask == u32::from(network)
        }
        // Every prefix flooded is IPv4.
        (Some(_), _) => false,
    };
    if !toward_victim {
        return false;
    }
    let non_first_fragment = packet.fragment && !packet.first_fragment;
    match attack.kind {
        AttackKind::SynFlood => {
            packet.protocol == 6
                && packet.tcp_flags & 0x12 == 0x02
                && attack.victim_ports.contains(&packet.dst_port)
                && packet.src.is_some_and(|src| !completed.contains(&(src, packet.src_port)))
        }
        AttackKind::UdpFlood => packet.protocol == 17,
        AttackKind::IcmpFlood => packet.protocol == 1 && packet.icmp_type == 8,
        AttackKind::Amplification => packet.protocol == 17 && (non_first_fragment || packet.src_port == 53),
        AttackKind::AckFlood => {
            packet.protocol == 6
                && packet.tcp_flags & 0x16 == 0x10
                && attack.victim_ports.contains(&packet.dst_port)
                && packet.src.is_some_and(|src| !completed.contains(&(src, packet.src_port)))
        }
        AttackKind::RstFlood => {
            packet.protocol == 6 && packet.tcp_flags & 0x06 == 0x04 && attack.victim_ports.contains(&packet.dst_port)
        }
        AttackKind::TcpFlood => {
            packet.protocol == 6 && packet.tcp_flags & 0x16 == 0 && attack.victim_ports.contains(&packet.dst_port)
        }
        AttackKind::SynackFlood | AttackKind::FragmentFlood => panic!("no scenario has {:?}", attack.kind),
    }
}

/// Reads a capture back and checks it against its ground truth; returns the parsed packets.
fn check_capture_against_truth(dir: &Path, name: &str) -> Vec<Packet> {
    let truth: GroundTruth =
        serde_json::from_str(&std::fs::read_to_string(dir.join(format!("{name}.json"))).unwrap()).unwrap();
    let capture = dir.join(&truth.file);
    assert!(std::fs::metadata(&capture).unwrap().len() < MAX_FILE_BYTES, "{name} is too large");
    assert_eq!(truth.scenario, name);
    let frames = read_capture(&capture);
    assert_eq!(truth.packets, frames.len() as u64, "{name}: packet count");
    assert!(frames.windows(2).all(|pair| pair[0].ts_ns <= pair[1].ts_ns), "{name}: time order");
    let packets: Vec<Packet> = frames.iter().map(|frame| parse_and_verify(&frame.data)).collect();
    assert_eq!(truth.benign, truth.attacks.is_empty());
    for attack in &truth.attacks {
        let completed = completed_connections(attack.victim, &packets);
        let matching: Vec<usize> =
            (0..packets.len()).filter(|&i| is_attack_packet(attack, &packets[i], &completed)).collect();
        let sources: BTreeSet<IpAddr> = matching.iter().filter_map(|&i| packets[i].src).collect();
        assert_eq!(attack.packets, matching.len() as u64, "{name}: attack packets");
        let (first, last) = (matching[0], matching[matching.len() - 1]);
        assert_eq!(attack.start, rfc3339_micros(frames[first].ts_ns), "{name}: start");
        assert_eq!(attack.end, rfc3339_micros(frames[last].ts_ns), "{name}: end");
        assert_eq!(attack.distinct_sources, sources.len() as u64, "{name}: distinct sources");
        if attack.victim_prefix.is_some() {
            let hosts: BTreeSet<IpAddr> = matching.iter().filter_map(|&i| packets[i].dst).collect();
            assert_eq!(attack.victim_hosts, hosts.len() as u64, "{name}: hosts of the prefix reached");
        }
        if attack.spoofed {
            assert!(attack.sources.is_empty());
        } else {
            assert_eq!(attack.sources, sources.into_iter().collect::<Vec<_>>(), "{name}: sources");
        }
    }
    packets
}

#[test]
fn every_capture_matches_its_ground_truth_and_checksums() {
    let dir = TempDir::new("truth");
    write_all(&dir).unwrap();
    for scenario in &SCENARIOS {
        check_capture_against_truth(&dir, scenario.name);
    }
}

#[test]
fn generation_is_deterministic() {
    let (first, second) = (TempDir::new("determinism-a"), TempDir::new("determinism-b"));
    for dir in [&first, &second] {
        for name in ["syn_flood_real_sources", "dns_amplification", "benign_mix_vlan"] {
            write_scenario(find(name).unwrap(), dir).unwrap();
        }
    }
    for entry in std::fs::read_dir(&*first).unwrap() {
        let name = entry.unwrap().file_name();
        let a = std::fs::read(first.join(&name)).unwrap();
        let b = std::fs::read(second.join(&name)).unwrap();
        assert!(a == b, "{name:?} differs between runs");
    }
}

#[test]
fn committed_captures_are_what_the_generator_writes() {
    // The workspace root's captures/, two levels above this crate.
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../captures");
    let dir = TempDir::new("committed");
    for path in write_all(&dir).unwrap() {
        let name = path.file_name().unwrap();
        let fresh = std::fs::read(&path).unwrap();
        let stored = std::fs::read(committed.join(name)).unwrap_or_default();
        assert!(
            fresh == stored,
            "captures/{name:?} is stale: run `cargo run --release --bin capgen -- all --out captures`"
        );
    }
}

#[test]
fn attack_details_follow_the_brief() {
    let dir = TempDir::new("details");
    for name in ["syn_flood_real_sources", "syn_flood_spoofed", "udp_flood", "dns_amplification"] {
        write_scenario(find(name).unwrap(), &dir).unwrap();
    }

    // Real-source SYN flood: every SYN is answered by a SYN-ACK that acknowledges it, and no
    // handshake is completed.
    let packets = check_capture_against_truth(&dir, "syn_flood_real_sources");
    let victim: IpAddr = "198.51.100.10".parse().unwrap();
    // A bot may reuse a source port, so each (address, port) keeps all of its SYNs' numbers.
    let mut syns: BTreeMap<(IpAddr, u16), Vec<u32>> = BTreeMap::new();
    for p in packets.iter().filter(|p| p.dst == Some(victim) && p.tcp_flags == 0x02) {
        syns.entry((p.src.unwrap(), p.src_port)).or_default().push(p.tcp_seq);
    }
    let syn_acks: Vec<&Packet> = packets.iter().filter(|p| p.src == Some(victim) && p.tcp_flags == 0x12).collect();
    assert_eq!(syn_acks.len(), syns.values().map(Vec::len).sum::<usize>());
    assert!(syn_acks.iter().all(|p| syns[&(p.dst.unwrap(), p.dst_port)].contains(&p.tcp_ack.wrapping_sub(1))));
    assert!(!packets.iter().any(|p| p.dst == Some(victim) && p.tcp_flags & 0x10 != 0));

    // Spoofed SYN flood: at least 100,000 sources, each used once.
    let packets = check_capture_against_truth(&dir, "syn_flood_spoofed");
    let victim: IpAddr = "203.0.113.5".parse().unwrap();
    let flood: Vec<&Packet> = packets.iter().filter(|p| p.dst == Some(victim)).collect();
    let sources: BTreeSet<IpAddr> = flood.iter().filter_map(|p| p.src).collect();
    assert!(sources.len() >= 100_000);
    assert_eq!(sources.len(), flood.len());

    // UDP flood: source ports stay clear of the reflector table.
    let packets = check_capture_against_truth(&dir, "udp_flood");
    let victim: IpAddr = "198.51.100.20".parse().unwrap();
    assert!(packets
        .iter()
        .filter(|p| p.dst == Some(victim))
        .all(|p| p.src_port >= 1024 && !REFLECTOR_PORTS.contains(&p.src_port)));

    // Amplification: about a third of the responses are fragmented, only the first fragment
    // of each carries the UDP header.
    let packets = check_capture_against_truth(&dir, "dns_amplification");
    let victim: IpAddr = "192.0.2.50".parse().unwrap();
    let toward: Vec<&Packet> = packets.iter().filter(|p| p.dst == Some(victim)).collect();
    let firsts = toward.iter().filter(|p| p.first_fragment).count();
    let others = toward.iter().filter(|p| p.fragment && !p.first_fragment).count();
    let whole = toward.iter().filter(|p| !p.fragment).count();
    assert_eq!(others, 2 * firsts, "three fragments per large response");
    assert!((firsts * 3 > (firsts + whole) * 9 / 10) && (firsts * 3 < (firsts + whole) * 11 / 10));
}

#[test]
fn benign_captures_stay_benign() {
    let dir = TempDir::new("benign");
    for name in ["flash_crowd", "benign_mix", "benign_mix_vlan"] {
        write_scenario(find(name).unwrap(), &dir).unwrap();
    }

    // Flash crowd: every SYN to the server is answered, and the client acknowledges the SYN-ACK.
    let packets = check_capture_against_truth(&dir, "flash_crowd");
    let server: IpAddr = "198.51.100.80".parse().unwrap();
    let mut syn_acks = BTreeMap::new();
    let (mut syns, mut completed) = (0, 0);
    for p in &packets {
        let (client, port) = if p.dst == Some(server) { (p.src, p.src_port) } else { (p.dst, p.dst_port) };
        match (p.dst == Some(server), p.tcp_flags) {
            (true, 0x02) => syns += 1,
            (false, 0x12) if p.src == Some(server) => {
                syn_acks.insert((client, port), p.tcp_seq);
            }
            (true, 0x10) if syn_acks.remove(&(client, port)).map(|s| s.wrapping_add(1)) == Some(p.tcp_ack) => {
                completed += 1
            }
            _ => {}
        }
    }
    assert!(syns >= 7_000);
    assert_eq!(completed, syns, "every flash-crowd handshake completes");

    // Benign mix: no destination gets more than 1,000 SYN, UDP, ICMP or fragment packets in any
    // one second.
    check_capture_against_truth(&dir, "benign_mix");
    let frames = read_capture(&dir.join("benign_mix.pcap.gz"));
    let mut per_second: BTreeMap<(&str, IpAddr, i64), u32> = BTreeMap::new();
    for frame in &frames {
        let p = parse_and_verify(&frame.data);
        let Some(dst) = p.dst else { continue };
        let kind = match p.protocol {
            _ if p.fragment => "fragment",
            6 if p.tcp_flags & 0x12 == 0x02 => "syn",
            17 => "udp",
            1 | 58 => "icmp",
            _ => continue,
        };
        *per_second.entry((kind, dst, frame.ts_ns / 1_000_000_000)).or_default() += 1;
    }
    assert!(per_second.values().all(|&count| count < 1_000));
    assert!(frames.iter().any(|f| f.data[12..14] == [0x08, 0x06]), "ARP present");

    // The tagged variant holds the same frames, tagged, alternating between a nanosecond and a
    // microsecond interface.
    let tagged = read_capture(&dir.join("benign_mix_vlan.pcapng.gz"));
    assert_eq!(tagged.len(), frames.len());
    let mut qinq = 0;
    for (index, (plain, tagged)) in frames.iter().zip(&tagged).enumerate() {
        assert_eq!(tagged.interface, index as u32 % 2);
        // Stored at the interface's resolution: at most a microsecond after the true time, which
        // the microsecond pcap truncates.
        assert!((0..2_000).contains(&(tagged.ts_ns - plain.ts_ns)));
        let tags = parse_and_verify(&tagged.data).vlan_tags;
        assert!(tags == 1 || tags == 2);
        qinq += usize::from(tags == 2);
        let untagged: Vec<u8> = [&tagged.data[..12], &tagged.data[12 + 4 * tags..]].concat();
        assert_eq!(untagged, plain.data);
    }
    assert!(qinq > 0 && qinq < frames.len());
    assert!(tagged.iter().any(|f| f.interface == 0 && f.ts_ns % 1_000 != 0), "nanoseconds kept");
}
