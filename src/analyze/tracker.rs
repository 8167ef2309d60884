//! Per-attack detail in bounded memory: who sends, how many distinct senders, which ports,
//! which reflector service, how many TTLs. Allocated once per watched victim and class,
//! then reused; recording a packet never allocates.

use super::hash::KeyedHasher;
use super::services::{ServiceTable, NO_SERVICE, REFLECTORS};
use super::sketch::{HyperLogLog, PortTally, SpaceSaving};
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
    hasher: KeyedHasher,
}

impl AttackTracker {
    pub fn new(tracked_sources: usize, hasher: KeyedHasher) -> AttackTracker {
        AttackTracker {
            sources: SpaceSaving::new(tracked_sources, hasher),
            distinct: HyperLogLog::new(DISTINCT_PRECISION),
            dst_ports: PortTally::default(),
            services: [0; REFLECTORS.len()],
            with_ports: 0,
            ttls_seen: [0; 4],
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
    }

    #[inline]
    pub fn record(&mut self, p: &PacketRecord, services: &ServiceTable) {
        // One hash of the source serves both sketches (they share the keyed hasher).
        let hash = self.hasher.hash_ip(p.src);
        self.sources.add_hashed(p.src, hash);
        self.distinct.add_hash(hash);
        self.ttls_seen[(p.ttl >> 6) as usize] |= 1 << (p.ttl & 63);
        if p.l4 == L4State::Present && (p.protocol == PacketRecord::PROTO_TCP || p.protocol == PacketRecord::PROTO_UDP)
        {
            self.with_ports += 1;
            self.dst_ports.add(p.dst_port);
            if p.protocol == PacketRecord::PROTO_UDP {
                let s = services.lookup(p.src_port);
                if s != NO_SERVICE {
                    self.services[s as usize] += 1;
                }
            }
        }
    }

    pub fn distinct_sources(&self) -> u64 {
        self.distinct.estimate()
    }

    pub fn distinct_ttls(&self) -> u32 {
        self.ttls_seen.iter().map(|w| w.count_ones()).sum()
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
