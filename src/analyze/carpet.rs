//! Carpet bombing: a flood spread over a whole prefix, so that no address of it crosses its
//! own threshold.
//!
//! A second [`Analyzer`](super::Analyzer), nested in the hosts' one, counts traffic per
//! prefix (/24 and /64 by default, per `[[prefix]]` if set) with thresholds
//! `carpet_factor` times the hosts'. It is the same analyzer (windows, baselines, watches,
//! trackers, verdicts, lifecycle); only its victims are prefixes, and it sees a sample: one
//! flow in [`SAMPLING`], chosen by a keyed hash of both endpoints and ports that is the same
//! in both directions (a sampled connection's SYN, SYN-ACK and ACK are all seen, so handshake
//! and answer checks hold), each sampled packet counting [`SAMPLING`] packets. The sample keeps
//! its cost to a hash per packet. "No single host crosses its threshold" holds twice: a
//! prefix's flood one of its hosts surely took enough of to cross that host's threshold is
//! declined (see [`Hosts`]), and a prefix alert is dropped while an attack of the same class on
//! one of its hosts is in progress (see `filter`): the host's own alert covers that flood.

use super::hash::KeyedHasher;
use super::sketch::Tally;
use super::{DetectionSettings, KindThresholds};
use crate::decode::Prefix;
use crate::decode::{IpKey, PacketRecord};

/// One flow in this many is counted toward prefixes, each packet of it as this many.
pub const SAMPLING: u32 = 32;

/// Which prefix an address belongs to, and which flows are sampled.
#[derive(Clone, Debug)]
pub struct PrefixScope {
    /// Mask lengths in the 128-bit key space.
    v4_bits: u8,
    v6_bits: u8,
    /// `[[prefix]]` sections with their own carpet length, longest first.
    overrides: Vec<(Prefix, u8)>,
    hasher: KeyedHasher,
}

impl PrefixScope {
    /// The scope of the settings, or `None` when carpet detection is off.
    pub fn new(s: &DetectionSettings, hasher: KeyedHasher) -> Option<PrefixScope> {
        if s.carpet.factor <= 0.0 {
            return None;
        }
        let mut overrides: Vec<(Prefix, u8)> = s
            .prefixes
            .iter()
            .filter_map(|p| p.carpet_len.map(|len| (p.prefix, p.prefix.bits() - p.prefix.family_len().0 + len)))
            .collect();
        overrides.sort_by_key(|(p, _)| std::cmp::Reverse(p.bits()));
        Some(PrefixScope { v4_bits: 96 + s.carpet.v4_len, v6_bits: s.carpet.v6_len, overrides, hasher })
    }

    /// Key-space length of the prefix holding `ip`.
    #[inline]
    pub fn bits_of(&self, ip: IpKey) -> u8 {
        if let Some((_, bits)) = self.overrides.iter().find(|(p, _)| p.contains(ip)) {
            return *bits;
        }
        if ip.is_v4() {
            self.v4_bits
        } else {
            self.v6_bits
        }
    }

    /// The prefix holding `ip`, as its network address.
    #[inline]
    pub fn network_of(&self, ip: IpKey) -> IpKey {
        Prefix::network_of(ip, self.bits_of(ip))
    }

    /// The prefix length of a network, as written (24 for an IPv4 /24).
    pub fn family_len(&self, network: IpKey) -> u8 {
        let bits = self.bits_of(network);
        if network.is_v4() {
            bits - 96
        } else {
            bits
        }
    }

    /// Whether `p`'s flow is in the sample: a keyed hash of both endpoints and both ports,
    /// symmetric, so both directions of a connection are in it or out of it.
    #[inline]
    pub fn sampled(&self, p: &PacketRecord) -> bool {
        let ends = p.src.0 ^ p.dst.0;
        let ports = (p.src_port ^ p.dst_port) as u64;
        let flow = (ends as u64) ^ ((ends >> 64) as u64) ^ (ports << 48) ^ ((p.protocol as u64) << 40);
        self.hasher.hash_u64(flow) % SAMPLING as u64 == 0
    }
}

/// The thresholds of prefixes: `carpet_factor` times the hosts' of each policy (index 0: the
/// global one, i + 1: `[[prefix]]` i, whose own factor applies when set).
pub fn thresholds(s: &DetectionSettings) -> Vec<KindThresholds> {
    let scale = |t: &KindThresholds, factor: f32| {
        t.map(|pps| (pps as f64 * factor as f64).round().clamp(1.0, u32::MAX as f64) as u32)
    };
    std::iter::once(scale(&s.thresholds, s.carpet.factor))
        .chain(s.prefixes.iter().map(|p| scale(&p.thresholds, p.carpet_factor.unwrap_or(s.carpet.factor))))
        .collect()
}

/// Counters kept for the busiest hosts of a prefix's flood (Space-Saving).
const TOP_HOSTS: usize = 8;

/// The hosts of a prefix a watched flood reached: which (one bit each among 256: exact for
/// prefixes of at most 256 addresses, the bit being the address's last octet; estimated by
/// linear counting over hashed bits for larger ones), and how much of it the busiest one took
/// (a flood on one host is that host's, not the prefix's).
#[derive(Clone, Copy, Debug, Default)]
pub struct Hosts {
    bits: [u64; 4],
    exact: bool,
    busiest: Tally<IpKey, TOP_HOSTS>,
    packets: u64,
}

impl Hosts {
    /// The hosts of a prefix of `bits` key-space bits.
    pub fn new(bits: u8) -> Hosts {
        Hosts { exact: bits >= 120, ..Hosts::default() }
    }

    /// Counts `packets` toward `dst` (a flow record, or a sampled packet, stands for several).
    #[inline]
    pub fn add(&mut self, dst: IpKey, packets: u64, hasher: &KeyedHasher) {
        let index = if self.exact { dst.0 as u8 } else { (hasher.hash_ip(dst) >> 56) as u8 };
        self.bits[(index >> 6) as usize] |= 1 << (index & 63);
        self.packets = self.packets.saturating_add(packets);
        self.busiest.add_many(dst, packets);
    }

    /// The share of the packets the busiest host surely took (its count less what it may
    /// have inherited): near its true share for a host that takes much, near 0 when many
    /// hosts share evenly.
    pub fn top_share(&self) -> f64 {
        self.busiest.largest_sure() as f64 / self.packets.max(1) as f64
    }

    /// Distinct hosts: the bits set when exact, else the linear-counting estimate.
    pub fn count(&self) -> u64 {
        let set: u32 = self.bits.iter().map(|w| w.count_ones()).sum();
        if self.exact {
            return set as u64;
        }
        let zeros = 256 - set;
        if zeros == 0 {
            // Saturated: at least this many.
            return (256.0 * 256f64.ln()).round() as u64;
        }
        (-256.0 * (zeros as f64 / 256.0).ln()).round() as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{AttackKind, CarpetSettings, PrefixPolicy, DEFAULT_THRESHOLDS};
    use crate::decode::{IpKey, PacketRecord};

    fn scope(s: &DetectionSettings) -> PrefixScope {
        PrefixScope::new(s, KeyedHasher::new(Some(3))).unwrap()
    }

    /// A `[[prefix]]` section for `prefix` with the default thresholds.
    fn policy(prefix: &str) -> PrefixPolicy {
        PrefixPolicy {
            prefix: Prefix::parse(prefix).unwrap(),
            thresholds: DEFAULT_THRESHOLDS,
            carpet_len: None,
            carpet_factor: None,
        }
    }

    #[test]
    fn addresses_fall_in_their_slash_24_or_slash_64_unless_a_prefix_section_says_otherwise() {
        let s = scope(&DetectionSettings {
            prefixes: vec![PrefixPolicy { carpet_len: Some(22), ..policy("203.0.112.0/22") }],
            ..Default::default()
        });
        let ip = |t: &str| IpKey::from_ip(t.parse().unwrap());
        assert_eq!(s.network_of(ip("198.51.100.77")), ip("198.51.100.0"));
        assert_eq!(s.family_len(ip("198.51.100.0")), 24);
        assert_eq!(s.network_of(ip("203.0.113.9")), ip("203.0.112.0"));
        assert_eq!(s.family_len(ip("203.0.112.0")), 22);
        assert_eq!(s.network_of(ip("2001:db8:1:2:3:4:5:6")), ip("2001:db8:1:2::"));
    }

    #[test]
    fn a_flow_is_sampled_in_both_directions_or_neither_and_one_in_32_of_them() {
        let s = scope(&DetectionSettings::default());
        let mut sampled = 0;
        for i in 0..80_000u32 {
            let p = PacketRecord {
                src: IpKey::from_v4([10, 0, (i >> 8) as u8, i as u8]),
                dst: IpKey::from_v4([198, 51, 100, (i % 254) as u8 + 1]),
                src_port: 1024 + (i % 50_000) as u16,
                dst_port: 443,
                protocol: PacketRecord::PROTO_TCP,
                ..Default::default()
            };
            let mut back = p;
            (back.src, back.dst, back.src_port, back.dst_port) = (p.dst, p.src, p.dst_port, p.src_port);
            assert_eq!(s.sampled(&p), s.sampled(&back));
            sampled += s.sampled(&p) as u32;
        }
        assert!((2_300..2_700).contains(&sampled), "{sampled} of 80,000 flows sampled");
    }

    #[test]
    fn carpet_factor_zero_turns_prefixes_off_and_a_section_scales_its_own_thresholds() {
        let off =
            DetectionSettings { carpet: CarpetSettings { factor: 0.0, ..Default::default() }, ..Default::default() };
        assert!(PrefixScope::new(&off, KeyedHasher::new(Some(1))).is_none());
        let udp = AttackKind::UdpFlood as usize;
        let mut s = DetectionSettings { prefixes: vec![policy("192.0.2.0/24")], ..Default::default() };
        s.thresholds[udp] = 500;
        s.prefixes[0].thresholds[udp] = 2000;
        s.prefixes[0].carpet_factor = Some(4.0);
        let t = thresholds(&s);
        assert_eq!((t[0][udp], t[1][udp]), (5_000, 8_000));
    }

    #[test]
    fn hosts_hit_are_exact_in_a_slash_24_and_estimated_beyond() {
        let hasher = KeyedHasher::new(Some(9));
        let mut h = Hosts::new(96 + 24);
        for octet in 1..=254u8 {
            h.add(IpKey::from_v4([198, 51, 100, octet]), 1, &hasher);
        }
        assert_eq!(h.count(), 254);
        assert!(h.top_share() < 0.01, "{}", h.top_share());
        let mut wide = Hosts::new(96 + 16);
        for i in 0..150u32 {
            wide.add(IpKey::from_v4([10, 1, (i >> 8) as u8, i as u8]), 1, &hasher);
        }
        let estimate = wide.count();
        assert!((120..=180).contains(&estimate), "{estimate} hosts estimated for 150");
    }

    #[test]
    fn one_busy_host_among_many_takes_its_share() {
        let hasher = KeyedHasher::new(Some(9));
        let mut h = Hosts::new(96 + 24);
        for i in 0..10_000u32 {
            // Every other packet to .7, the rest spread over 200 hosts.
            let octet = if i % 2 == 0 { 7 } else { (i % 200) as u8 + 20 };
            h.add(IpKey::from_v4([198, 51, 100, octet]), 1, &hasher);
        }
        let share = h.top_share();
        assert!((0.45..=0.5).contains(&share), "{share}");
    }

    #[test]
    fn a_host_takes_its_share_of_the_packets_however_few_records_carry_them() {
        // Flow records: one of 5,000 packets to .7, then 5,000 of one packet each spread over
        // 200 hosts. The busy host took half the packets in one record of 5,001.
        let hasher = KeyedHasher::new(Some(9));
        let mut h = Hosts::new(96 + 24);
        h.add(IpKey::from_v4([198, 51, 100, 7]), 5_000, &hasher);
        for i in 0..5_000u32 {
            h.add(IpKey::from_v4([198, 51, 100, (i % 200) as u8 + 20]), 1, &hasher);
        }
        let share = h.top_share();
        assert!((0.45..=0.5).contains(&share), "{share}");
    }
}
