//! Per-attack detail in bounded memory: who sends, how many distinct senders, which ports,
//! which reflector service, how many TTLs. Allocated once per watched victim and class,
//! then reused; recording a packet never allocates.

use super::hash::KeyedHasher;
use super::services::{ServiceTable, NO_SERVICE, REFLECTORS};
use super::sketch::{HyperLogLog, PortTally, SpaceSaving, PORT_COUNTERS};
use super::summary::{TrackerSummary, NETWORK_SLOTS, SUMMARY_PRECISION, SUMMARY_SOURCES};
use crate::decode::Prefix;
use crate::decode::{IpKey, L4State, PacketRecord};

/// HyperLogLog precision: 2^15 registers, about 0.6 % standard error.
const DISTINCT_PRECISION: u32 = 15;

pub struct AttackTracker {
    pub sources: SpaceSaving<IpKey>,
    distinct: HyperLogLog,
    dst_ports: PortTally,
    /// Packets with ports per reflector service of their source port.
    services: [u64; REFLECTORS.len()],
    /// Packets whose ports were read (not non-first fragments).
    with_ports: u64,
    ttls_seen: [u64; 4],
    /// One bit per source network ([`IpKey::network_16`]): how far the sources spread.
    networks_seen: Box<[u64; NETWORK_WORDS]>,
    /// The networks `networks_seen` tells apart: all, or a loaded summary's
    /// [`NETWORK_SLOTS`] (in its first words).
    network_slots: usize,
    /// Packets from addresses that cannot be a source (see [`impossible_source`]).
    impossible: u64,
    /// Packets recorded.
    packets: u64,
    hasher: KeyedHasher,
}

const NETWORK_WORDS: usize = (1 << 16) / 64;

/// Distinct source networks seen (one bit each in `networks`), relative to how many
/// `distinct` uniformly random addresses would cover among as many networks.
pub(super) fn network_spread(networks: &[u64], distinct: u64) -> f64 {
    let seen = networks.iter().map(|w| w.count_ones()).sum::<u32>() as f64;
    let slots = (networks.len() * 64) as f64;
    let expected = slots * (1.0 - (-(distinct as f64) / slots).exp());
    seen / expected.max(1.0)
}

/// A source no packet toward `victim` can really come from: an address that is never a
/// source, the victim's own, or one of the configured bogon prefixes.
#[inline]
pub fn impossible_source(src: IpKey, victim: IpKey, bogons: &[Prefix]) -> bool {
    src.is_never_a_source() || src == victim || bogons.iter().any(|b| b.contains(src))
}

impl AttackTracker {
    pub fn new(tracked_sources: usize, hasher: KeyedHasher) -> AttackTracker {
        AttackTracker {
            sources: SpaceSaving::filtered(tracked_sources, hasher),
            distinct: HyperLogLog::new(DISTINCT_PRECISION),
            dst_ports: PortTally::default(),
            services: [0; REFLECTORS.len()],
            with_ports: 0,
            ttls_seen: [0; 4],
            networks_seen: Box::new([0; NETWORK_WORDS]),
            network_slots: NETWORK_WORDS * 64,
            impossible: 0,
            packets: 0,
            hasher,
        }
    }

    pub fn clear(&mut self) {
        self.sources.clear();
        self.distinct.clear();
        self.dst_ports.clear();
        self.services = [0; REFLECTORS.len()];
        self.with_ports = 0;
        self.ttls_seen = [0; 4];
        self.networks_seen.fill(0);
        self.network_slots = NETWORK_WORDS * 64;
        self.impossible = 0;
        self.packets = 0;
    }

    #[inline]
    pub fn record(&mut self, p: &PacketRecord, services: &ServiceTable, bogons: &[Prefix]) {
        // One hash of the source serves both sketches (they share the keyed hasher).
        // A sampled packet counts for the packets it stands for.
        let packets = u64::from(p.weight);
        let hash = self.hasher.hash_ip(p.src);
        // Space-Saving's index slot (and, once full, its filter's words) are likely misses:
        // asked for first, they arrive while the cheaper sketches below are updated.
        self.sources.prefetch(hash);
        self.distinct.add_hash(hash);
        // A flow record's packets have no TTL of their own.
        let ttl_known = u64::from(p.l4 != L4State::Summarized);
        self.ttls_seen[(p.ttl >> 6) as usize] |= ttl_known << (p.ttl & 63);
        let network = p.src.network_16() as usize;
        self.networks_seen[network / 64] |= 1 << (network % 64);
        self.packets += packets;
        self.impossible += impossible_source(p.src, p.dst, bogons) as u64 * packets;
        if p.l4.has_ports() && (p.protocol == PacketRecord::PROTO_TCP || p.protocol == PacketRecord::PROTO_UDP) {
            self.with_ports += packets;
            self.dst_ports.add_many(p.dst_port, packets);
            if p.protocol == PacketRecord::PROTO_UDP {
                let s = services.lookup(p.src_port);
                if s != NO_SERVICE {
                    self.services[s as usize] += packets;
                }
            }
        }
        self.sources.add_hashed(p.src, hash, packets);
    }

    pub fn distinct_sources(&self) -> u64 {
        self.distinct.estimate()
    }

    /// Distinct TTLs among the packets that had one (0 when all came from flow records).
    pub fn distinct_ttls(&self) -> u32 {
        self.ttls_seen.iter().map(|w| w.count_ones()).sum()
    }

    /// Packets recorded.
    pub fn packets(&self) -> u64 {
        self.packets
    }

    /// Share of the recorded packets that came from impossible sources.
    pub fn impossible_share(&self) -> f64 {
        self.impossible as f64 / self.packets.max(1) as f64
    }

    /// Distinct source networks seen, relative to how many `distinct` uniformly random
    /// addresses would cover: about 1 for forged random sources, far below 1 for real hosts
    /// clustered in a few networks.
    pub fn network_spread(&self, distinct: u64) -> f64 {
        network_spread(&self.networks_seen[..self.network_slots / 64], distinct)
    }

    /// Starts over as the tracker `summary` describes (an aggregator's, from its sensors'
    /// merged trackers): it records no packets after.
    pub fn load(&mut self, summary: &TrackerSummary) {
        self.clear();
        self.sources.load(&summary.sources);
        self.distinct = summary.distinct.clone();
        self.dst_ports.load(&summary.ports);
        for &(service, packets) in &summary.services {
            if let Some(n) = self.services.get_mut(service as usize) {
                *n = packets;
            }
        }
        self.with_ports = summary.with_ports;
        self.ttls_seen = summary.ttls;
        self.networks_seen[..summary.networks.len()].copy_from_slice(&summary.networks);
        self.network_slots = summary.networks.len() * 64;
        self.impossible = summary.impossible;
        self.packets = summary.packets;
    }

    /// What a sensor tells its aggregator of this tracker: the busiest sources that `keep`
    /// accepts (the victim's users are not offenders anywhere), the distinct-source sketch
    /// and the source networks folded to the summary's size, the rest as it is.
    pub fn summary(&self, keep: impl Fn(IpKey, u64) -> bool) -> TrackerSummary {
        let mut sources = self.sources.heavy_hitters(SUMMARY_SOURCES);
        sources.counters.retain(|c| keep(c.key, c.count - c.error));
        let fold = self.network_slots / NETWORK_SLOTS;
        let mut networks = vec![0u64; NETWORK_SLOTS / 64];
        for (i, word) in self.networks_seen[..self.network_slots / 64].iter().enumerate() {
            for part in 0..64 / fold {
                if (word >> (part * fold)) & ((1u64 << fold) - 1) != 0 {
                    let slot = (i * 64 + part * fold) / fold;
                    networks[slot / 64] |= 1 << (slot % 64);
                }
            }
        }
        TrackerSummary {
            packets: self.packets,
            impossible: self.impossible,
            with_ports: self.with_ports,
            sources,
            ports: self.dst_ports.heavy_hitters(PORT_COUNTERS),
            services: self.services.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, n)| (i as u8, *n)).collect(),
            ttls: self.ttls_seen,
            networks,
            distinct: self.distinct.folded(SUMMARY_PRECISION),
        }
    }

    /// The reflector service most packets come from, with its share of packets with ports.
    pub fn dominant_service(&self) -> Option<(u8, f64)> {
        let (index, &count) = self.services.iter().enumerate().max_by_key(|(_, c)| **c)?;
        if count == 0 || self.with_ports == 0 {
            return None;
        }
        Some((index as u8, count as f64 / self.with_ports as f64))
    }

    /// Destination ports carrying at least `min_share` of the packets with ports, busiest first.
    pub fn main_ports(&self, min_share: f64, max: usize) -> Vec<u16> {
        if self.with_ports == 0 {
            return Vec::new();
        }
        self.dst_ports
            .top(max)
            .into_iter()
            .filter(|c| (c.count - c.error) as f64 >= min_share * self.with_ports as f64)
            .map(|c| c.key)
            .collect()
    }
}
