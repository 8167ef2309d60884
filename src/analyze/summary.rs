//! A sensor's second: what its analyzer counted toward its busiest victims in one second of
//! packet time, and what its trackers know of the sources it watches, in a form that merges
//! with the other sensors' summaries of the same second. An aggregator that merges them sees
//! the attacks no single sensor sees.
//!
//! Counters add up; heavy hitters merge by the parallel Space-Saving rule
//! ([`HeavyHitters::merge`]); distinct-source sketches take each register's maximum (folded
//! to [`SUMMARY_PRECISION`], and only under one hash key, which `hash_key` names); TTL and
//! source-network sets are unions (the networks folded to [`NETWORK_SLOTS`]). A tracker
//! describes the sensor's watch from its start to the summary's second, so an aggregator
//! keeps each sensor's latest and merges those; counters are the second's own.
//!
//! On the wire: postcard (compact, serde), the version first, at most [`MAX_SUMMARY_BYTES`].
//! Whatever the bytes, decoding gives a summary whose every part is in range, or an error.

use super::sketch::{Counted, HeavyHitters, HyperLogLog};
/// The counters of `VictimSecond::cells`, by index.
pub use super::victims::cell;
use super::Class;
use crate::decode::IpKey;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Bumped whenever the encoding changes, [`REFLECTORS`](super::services::REFLECTORS) (whose
/// indexes name services) included.
/// 2: the carpet analyzer's prefixes.
pub const SUMMARY_VERSION: u16 = 2;
/// Largest encoded summary: victims beyond it are left out (and counted).
pub const MAX_SUMMARY_BYTES: usize = 64 * 1024;
/// Distinct-source sketches travel at 2^12 registers: 4 KiB, 1.6 % standard error.
pub const SUMMARY_PRECISION: u32 = 12;
/// Source networks travel as one bit per 16 adjacent /16 networks (512 bytes).
pub const NETWORK_SLOTS: usize = 4096;
/// Most victims (and most prefixes) in a summary, busiest first.
pub const MAX_VICTIMS: usize = 1000;
/// Busiest sources per tracker: a sensor's share of a botnet is listed whole up to this.
pub const SUMMARY_SOURCES: usize = 256;
/// Longest sensor name, in bytes.
pub const MAX_SENSOR_NAME: usize = 64;

/// One sensor's second `[second, second + 1)` of packet time (Unix seconds).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SecondSummary {
    pub version: u16,
    pub sensor: String,
    pub second: i64,
    /// A keyed hash of a fixed value: distinct-source sketches merge only between sensors
    /// hashing with one key (`detection.hash_seed`), which this tells apart without naming it.
    pub hash_key: u64,
    /// Busiest first.
    pub victims: Vec<VictimSecond>,
    /// Victims with traffic in the second that the size bound left out.
    pub victims_left_out: u32,
    /// The carpet analyzer's busiest prefixes, as victims named by their network address
    /// (counters estimated from its flow sample; see `carpet`), busiest first.
    pub prefixes: Vec<VictimSecond>,
    pub prefixes_left_out: u32,
}

/// Sorts `list` busiest first and keeps `keep` of it, counting the others in `left_out`.
fn keep_busiest(list: &mut Vec<VictimSecond>, keep: usize, left_out: &mut u32) {
    list.sort_by_cached_key(|v| (std::cmp::Reverse(v.packets()), v.victim));
    *left_out = left_out.saturating_add(list.len().saturating_sub(keep) as u32);
    list.truncate(keep);
}

/// One victim's second at one sensor.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VictimSecond {
    pub victim: IpKey,
    /// The second's counters that are not zero, by [`cell`] index.
    pub cells: Vec<(u8, u64)>,
    /// The classes the sensor watches on this victim.
    pub watches: Vec<ClassWatch>,
}

impl VictimSecond {
    /// Packets of the second, every class (how busy the victim was).
    pub fn packets(&self) -> u64 {
        self.cells.iter().filter(|(c, _)| usize::from(*c) < Class::COUNT).fold(0, |sum, (_, n)| sum.saturating_add(*n))
    }
}

/// A sensor's watch of one class of traffic toward a victim.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ClassWatch {
    pub class: u8,
    /// The sensor itself reports an attack of this class on the victim.
    pub attacked: bool,
    /// Since the watch began (or its tracker was last renewed).
    pub tracker: TrackerSummary,
}

/// An [`AttackTracker`](super::tracker::AttackTracker) as it travels.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrackerSummary {
    pub packets: u64,
    /// Packets from addresses that cannot be a source.
    pub impossible: u64,
    /// Packets whose ports were read.
    pub with_ports: u64,
    /// The busiest sources, the victim's users left out.
    pub sources: HeavyHitters<IpKey>,
    /// The busiest destination ports.
    pub ports: HeavyHitters<u16>,
    /// Packets per reflector service (index into `REFLECTORS`), those above zero.
    pub services: Vec<(u8, u64)>,
    /// One bit per TTL seen.
    pub ttls: [u64; 4],
    /// [`NETWORK_SLOTS`] bits: the source networks seen.
    pub networks: Vec<u64>,
    /// Distinct sources, at [`SUMMARY_PRECISION`].
    pub distinct: HyperLogLog,
}

impl TrackerSummary {
    /// Adds `other`'s traffic: what a tracker that had seen both would say, within the
    /// sketches' bounds, listing at most `sources` sources.
    pub fn merge(&mut self, other: &TrackerSummary, sources: usize) {
        // Sums saturate: a summary comes from the network.
        self.packets = self.packets.saturating_add(other.packets);
        self.impossible = self.impossible.saturating_add(other.impossible);
        self.with_ports = self.with_ports.saturating_add(other.with_ports);
        self.sources = self.sources.merge(&other.sources, sources);
        self.ports = self.ports.merge(&other.ports, super::sketch::PORT_COUNTERS);
        for &(service, packets) in &other.services {
            match self.services.iter_mut().find(|(s, _)| *s == service) {
                Some((_, n)) => *n = n.saturating_add(packets),
                None => self.services.push((service, packets)),
            }
        }
        for (mine, theirs) in self.ttls.iter_mut().zip(other.ttls) {
            *mine |= theirs;
        }
        for (mine, theirs) in self.networks.iter_mut().zip(&other.networks) {
            *mine |= theirs;
        }
        // Both were checked to have the summary's precision.
        let _ = self.distinct.merge(&other.distinct);
    }

    pub fn distinct_sources(&self) -> u64 {
        self.distinct.estimate()
    }

    /// See [`AttackTracker::network_spread`](super::tracker::AttackTracker::network_spread).
    pub fn network_spread(&self, distinct: u64) -> f64 {
        super::tracker::network_spread(&self.networks, distinct)
    }
}

/// One victim's second at every sensor that reported it: counters summed, each watched
/// class's trackers merged.
#[derive(Clone, Debug)]
pub struct MergedVictim {
    pub victim: IpKey,
    pub cells: [u64; cell::COUNT],
    pub trackers: Vec<(u8, TrackerSummary)>,
    /// The sensors that reported it, in the order they came.
    pub sensors: Vec<String>,
}

impl MergedVictim {
    /// The merge of the `class` trackers, if a sensor watches it.
    pub fn tracker(&self, class: Class) -> Option<&TrackerSummary> {
        self.trackers.iter().find(|(c, _)| *c == class as u8).map(|(_, t)| t)
    }
}

/// The summaries of one second (one per sensor) merged per victim (of the list `part`
/// selects: the hosts or the prefixes), in address order, each tracker listing at most
/// `sources` sources (the aggregator's tracker's capacity).
pub fn merge_second(
    summaries: &[SecondSummary],
    part: fn(&SecondSummary) -> &[VictimSecond],
    sources: usize,
) -> Vec<MergedVictim> {
    let mut merged: std::collections::BTreeMap<IpKey, MergedVictim> = Default::default();
    for s in summaries {
        for v in part(s) {
            let m = merged.entry(v.victim).or_insert_with(|| MergedVictim {
                victim: v.victim,
                cells: [0; cell::COUNT],
                trackers: Vec::new(),
                sensors: Vec::new(),
            });
            for &(c, n) in &v.cells {
                if let Some(total) = m.cells.get_mut(c as usize) {
                    *total = total.saturating_add(n);
                }
            }
            for w in &v.watches {
                match m.trackers.iter_mut().find(|(c, _)| *c == w.class) {
                    Some((_, t)) => t.merge(&w.tracker, sources),
                    None => m.trackers.push((w.class, w.tracker.clone())),
                }
            }
            if !m.sensors.contains(&s.sensor) {
                m.sensors.push(s.sensor.clone());
            }
        }
    }
    merged.into_values().collect()
}

/// Why bytes are not a summary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SummaryError {
    TooLarge(usize),
    Version(u16),
    Malformed(String),
    Invalid(&'static str),
}

impl fmt::Display for SummaryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SummaryError::TooLarge(n) => write!(f, "{n} bytes, more than a summary's {MAX_SUMMARY_BYTES}"),
            SummaryError::Version(v) => write!(f, "summary version {v}, this build reads {SUMMARY_VERSION}"),
            SummaryError::Malformed(e) => write!(f, "malformed summary: {e}"),
            SummaryError::Invalid(what) => write!(f, "invalid summary: {what}"),
        }
    }
}

impl std::error::Error for SummaryError {}

impl SecondSummary {
    /// The summaries of one second by analyzers of disjoint victims (the shards of one
    /// sensor) as one: their victims, busiest first, at most [`MAX_VICTIMS`].
    pub fn join(parts: Vec<SecondSummary>) -> Option<SecondSummary> {
        let mut parts = parts.into_iter();
        let mut whole = parts.next()?;
        for part in parts {
            whole.victims.extend(part.victims);
            whole.victims_left_out = whole.victims_left_out.saturating_add(part.victims_left_out);
            whole.prefixes.extend(part.prefixes);
            whole.prefixes_left_out = whole.prefixes_left_out.saturating_add(part.prefixes_left_out);
        }
        keep_busiest(&mut whole.victims, MAX_VICTIMS, &mut whole.victims_left_out);
        keep_busiest(&mut whole.prefixes, MAX_VICTIMS, &mut whole.prefixes_left_out);
        Some(whole)
    }

    /// The encoded summary, leaving out the least busy victims while it is above
    /// [`MAX_SUMMARY_BYTES`] (and counting them).
    pub fn encode(mut self) -> Result<Vec<u8>, SummaryError> {
        loop {
            let bytes = postcard::to_allocvec(&self).map_err(|e| SummaryError::Malformed(e.to_string()))?;
            if bytes.len() <= MAX_SUMMARY_BYTES || (self.victims.is_empty() && self.prefixes.is_empty()) {
                return Ok(bytes);
            }
            // Out of room: drop a share of the victims and prefixes proportional to the excess.
            let keep = |n: usize| (n * MAX_SUMMARY_BYTES / bytes.len()).min(n.saturating_sub(1));
            let (victims, prefixes) = (keep(self.victims.len()), keep(self.prefixes.len()));
            keep_busiest(&mut self.victims, victims, &mut self.victims_left_out);
            keep_busiest(&mut self.prefixes, prefixes, &mut self.prefixes_left_out);
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<SecondSummary, SummaryError> {
        if bytes.len() > MAX_SUMMARY_BYTES {
            return Err(SummaryError::TooLarge(bytes.len()));
        }
        let (version, _) =
            postcard::take_from_bytes::<u16>(bytes).map_err(|e| SummaryError::Malformed(e.to_string()))?;
        if version != SUMMARY_VERSION {
            return Err(SummaryError::Version(version));
        }
        let summary: SecondSummary = postcard::from_bytes(bytes).map_err(|e| match e {
            // postcard keeps no message of its own: the one check inside deserializing.
            postcard::Error::SerdeDeCustom => SummaryError::Invalid("distinct-source registers out of range"),
            e => SummaryError::Malformed(e.to_string()),
        })?;
        summary.check()?;
        Ok(summary)
    }

    /// Every part in range: what the aggregator may rely on.
    fn check(&self) -> Result<(), SummaryError> {
        let invalid = |what| Err(SummaryError::Invalid(what));
        if self.sensor.is_empty() || self.sensor.len() > MAX_SENSOR_NAME {
            return invalid("sensor name empty or longer than 64 bytes");
        }
        for v in self.victims.iter().chain(&self.prefixes) {
            if v.cells.iter().any(|(c, _)| *c as usize >= cell::COUNT) {
                return invalid("counter index out of range");
            }
            for w in &v.watches {
                if w.class as usize >= Class::COUNT {
                    return invalid("traffic class out of range");
                }
                w.tracker.check()?;
            }
        }
        Ok(())
    }
}

impl TrackerSummary {
    fn check(&self) -> Result<(), SummaryError> {
        let invalid = |what| Err(SummaryError::Invalid(what));
        if self.distinct.precision() != SUMMARY_PRECISION {
            return invalid("distinct-source sketch of another precision");
        }
        if self.networks.len() != NETWORK_SLOTS / 64 {
            return invalid("source networks of another size");
        }
        if self.services.iter().any(|(s, _)| *s as usize >= super::services::REFLECTORS.len()) {
            return invalid("reflector service out of range");
        }
        if !listing_is_sound(&self.sources) || !listing_is_sound(&self.ports) {
            return invalid("heavy hitters with repeated keys or errors above their counts");
        }
        Ok(())
    }
}

/// Each key once, and no error above its count (the lower bound `count - error` is read).
fn listing_is_sound<K: Copy + Ord>(h: &HeavyHitters<K>) -> bool {
    let mut keys: Vec<K> = h.counters.iter().map(|c: &Counted<K>| c.key).collect();
    keys.sort_unstable();
    keys.windows(2).all(|w| w[0] != w[1]) && h.counters.iter().all(|c| c.error <= c.count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::hash::KeyedHasher;
    use crate::analyze::sketch::Counted;

    fn tracker(sources: u32) -> TrackerSummary {
        let h = KeyedHasher::new(Some(7));
        let mut distinct = HyperLogLog::new(SUMMARY_PRECISION);
        let counters: Vec<Counted<IpKey>> = (0..sources)
            .map(|i| {
                let key = IpKey::from_v4((0x0a00_0000 + i).to_be_bytes());
                distinct.add_hash(h.hash_ip(key));
                Counted { key, count: 10, error: 0 }
            })
            .collect();
        TrackerSummary {
            packets: 10 * u64::from(sources),
            impossible: 0,
            with_ports: 0,
            sources: HeavyHitters { counters, floor: 0 },
            ports: HeavyHitters { counters: vec![Counted { key: 80, count: 5, error: 1 }], floor: 1 },
            services: vec![(2, 3)],
            ttls: [1, 0, 0, 0],
            networks: vec![0; NETWORK_SLOTS / 64],
            distinct,
        }
    }

    fn summary(victims: u32) -> SecondSummary {
        let victims = (0..victims)
            .map(|i| VictimSecond {
                victim: IpKey::from_v4((0xc633_6400 + i).to_be_bytes()),
                cells: vec![(Class::Syn as u8, 5_000), (cell::BYTES as u8, 300_000)],
                watches: vec![ClassWatch { class: Class::Syn as u8, attacked: i == 0, tracker: tracker(100) }],
            })
            .collect();
        SecondSummary {
            version: SUMMARY_VERSION,
            sensor: "edge-1".into(),
            second: 1_768_478_400,
            hash_key: 42,
            victims,
            victims_left_out: 0,
            prefixes: Vec::new(),
            prefixes_left_out: 0,
        }
    }

    #[test]
    fn a_summary_over_the_bound_leaves_its_least_busy_victims_out_and_counts_them() {
        let whole = summary(400);
        let bytes = whole.clone().encode().unwrap();
        assert!(bytes.len() <= MAX_SUMMARY_BYTES, "{} bytes", bytes.len());
        let read = SecondSummary::decode(&bytes).unwrap();
        assert!(read.victims.len() < 400 && !read.victims.is_empty(), "{} victims", read.victims.len());
        assert_eq!(read.victims.len() as u32 + read.victims_left_out, 400);
        assert_eq!(read.victims[..], whole.victims[..read.victims.len()]);
    }

    #[test]
    fn bytes_that_are_no_summary_are_refused_with_the_reason() {
        let good = summary(1);
        let encoded = |s: SecondSummary| s.encode().unwrap();
        let refused = |bytes: &[u8]| SecondSummary::decode(bytes).unwrap_err();
        let bytes = encoded(good.clone());
        assert!(matches!(refused(&bytes[..bytes.len() / 2]), SummaryError::Malformed(_)));
        assert!(matches!(refused(&[]), SummaryError::Malformed(_)));
        assert_eq!(refused(&vec![0; MAX_SUMMARY_BYTES + 1]), SummaryError::TooLarge(MAX_SUMMARY_BYTES + 1));
        let other = SUMMARY_VERSION + 1;
        assert_eq!(refused(&encoded(SecondSummary { version: other, ..good.clone() })), SummaryError::Version(other));
        let with = |change: &dyn Fn(&mut SecondSummary)| {
            let mut s = good.clone();
            change(&mut s);
            refused(&encoded(s))
        };
        type Change<'a> = &'a dyn Fn(&mut SecondSummary);
        let cases: [(Change, &str); 8] = [
            (&|s| s.sensor.clear(), "sensor name"),
            (&|s| s.victims[0].cells.push((cell::COUNT as u8, 1)), "counter index"),
            (
                &|s| {
                    let prefix = VictimSecond { cells: vec![(cell::COUNT as u8, 1)], ..s.victims[0].clone() };
                    s.prefixes.push(prefix)
                },
                "counter index",
            ),
            (&|s| s.victims[0].watches[0].class = Class::COUNT as u8, "traffic class"),
            (&|s| s.victims[0].watches[0].tracker.distinct = HyperLogLog::new(10), "precision"),
            (&|s| s.victims[0].watches[0].tracker.networks.pop().map(drop).unwrap_or(()), "networks"),
            (&|s| s.victims[0].watches[0].tracker.sources.counters[1].error = 11, "errors above"),
            (
                &|s| s.victims[0].watches[0].tracker.ports.counters.push(Counted { key: 80, count: 1, error: 0 }),
                "repeated",
            ),
        ];
        for (change, reason) in cases {
            let e = with(change);
            assert!(e.to_string().contains(reason), "{e} (expected {reason})");
        }
        // A register ranked beyond the sentinel's place (53 at 2^12 registers): the hash 0
        // sets register 0 to 53, sent sparse as (variant 1, precision 12, 1 register, 0, 53).
        let mut s = good.clone();
        let mut distinct = HyperLogLog::new(SUMMARY_PRECISION);
        distinct.add_hash(0);
        s.victims[0].watches[0].tracker.distinct = distinct;
        let mut bytes = encoded(s);
        let rank = bytes.windows(5).position(|w| w == [1, 12, 1, 0, 53]).unwrap() + 4;
        bytes[rank] = 60;
        assert_eq!(refused(&bytes), SummaryError::Invalid("distinct-source registers out of range"));
    }

    #[test]
    fn merged_trackers_add_their_counts_and_unite_their_sets() {
        let mut a = tracker(3);
        let b = TrackerSummary { ttls: [0, 2, 0, 0], ..tracker(5) };
        a.merge(&b, SUMMARY_SOURCES);
        assert_eq!((a.packets, a.ttls), (80, [1, 2, 0, 0]));
        assert_eq!(a.distinct_sources(), 5);
        assert_eq!(a.services, vec![(2, 6)]);
        let first = a.sources.counters.iter().find(|c| c.key == IpKey::from_v4([10, 0, 0, 0])).unwrap();
        assert_eq!((first.count, first.error), (20, 0));
        assert_eq!(a.ports.counters, vec![Counted { key: 80, count: 10, error: 2 }]);
    }
}
