//! Which destinations earn a place in the victim table.
//!
//! Most destinations of ordinary traffic receive a few packets a second. Giving each a victim
//! entry on its first packet meant, on a busy link, an insertion (and the eviction of another
//! quiet victim) for nearly every UDP or ICMP packet, and a table too large for the cache. A
//! destination now enters the table only once this doorkeeper, a Count-Min sketch of the
//! current 100 ms tick (2 rows, conservative update), has seen `admit_per_tick` packets toward
//! it in one tick: an eighth of the lowest threshold of any policy, so a flood is admitted
//! within its first tick, long before it could reach a watch level, while background traffic
//! stays out. A sketch only overestimates: others' traffic can admit a destination early,
//! never late. Packets before admission are not lost to a watch, which back-fills from the
//! recent-packet ring (it holds every counted packet), but the victim's window counts start
//! at admission: a sustained flood that ramps up slowly can reach its threshold at most one
//! window later than with every packet counted, never not at all.
//!
//! Counters are grouped into [`LANES`] by the top bits of the destination's keyed hash, and
//! `--threads` gives each shard whole lanes, so a counter sees the same packets in a shard as
//! in a single analyzer and admits at the same packet.

/// Lanes of destinations: the unit the shards divide among themselves.
pub const LANES: usize = 64;
const LANE_BITS: u32 = LANES.trailing_zeros();
/// Counters per row (log2): 2 rows of 16,384 4-byte counters, 128 KiB.
const ROW_BITS: u32 = 14;
const PER_LANE_BITS: u32 = ROW_BITS - LANE_BITS;
/// A counter: the low 16 bits of its tick in the upper half, the count in the lower.
const COUNT_MASK: u32 = 0xffff;

/// The lane of a destination, from its keyed hash.
#[inline]
pub fn lane(hash: u64) -> usize {
    (hash >> (64 - LANE_BITS)) as usize
}

pub struct Doorkeeper {
    cells: Vec<u32>,
    admit_per_tick: u32,
}

impl Doorkeeper {
    pub fn new(admit_per_tick: u32) -> Doorkeeper {
        Doorkeeper { cells: vec![0; 2 << ROW_BITS], admit_per_tick: admit_per_tick.clamp(1, COUNT_MASK) }
    }

    pub fn set_admit_per_tick(&mut self, admit_per_tick: u32) {
        self.admit_per_tick = admit_per_tick.clamp(1, COUNT_MASK);
    }

    /// Counts `packets` (one captured packet, or the packets a sampled one stands for) toward
    /// the destination with keyed hash `hash` in tick `tick`; when it has now earned a victim
    /// entry, the packets counted toward it in this tick (these included; an overestimate only
    /// where other destinations share both counters).
    #[inline]
    pub fn admit(&mut self, hash: u64, tick: i64, packets: u32) -> Option<u32> {
        let base = lane(hash) << PER_LANE_BITS;
        let within = (1usize << PER_LANE_BITS) - 1;
        let i0 = base | (hash as usize & within);
        let i1 = (1 << ROW_BITS) | base | ((hash >> 16) as usize & within);
        let tag = (tick as u32) << 16;
        // A counter from another tick reads as zero: no pass over the sketch per tick.
        let count = |c: u32| if c & !COUNT_MASK == tag { c & COUNT_MASK } else { 0 };
        let (Some(&a), Some(&b)) = (self.cells.get(i0), self.cells.get(i1)) else {
            return Some(packets);
        };
        let (a, b) = (count(a), count(b));
        let n = a.min(b).saturating_add(packets).min(COUNT_MASK);
        // Conservative update: raise each counter only as far as the new estimate.
        if let Some(c) = self.cells.get_mut(i0) {
            *c = tag | a.max(n);
        }
        if let Some(c) = self.cells.get_mut(i1) {
            *c = tag | b.max(n);
        }
        (n >= self.admit_per_tick).then_some(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::hash::KeyedHasher;
    use crate::decode::IpKey;

    fn hash(i: u32) -> u64 {
        KeyedHasher::new(Some(3)).hash_ip(IpKey::from_v4(i.to_be_bytes()))
    }

    #[test]
    fn admits_at_the_level_within_one_tick_and_forgets_the_tick_after() {
        let mut d = Doorkeeper::new(12);
        let h = hash(1);
        for n in 1..12 {
            assert_eq!(d.admit(h, 100, 1), None, "admitted after {n} packets");
        }
        assert_eq!(d.admit(h, 100, 1), Some(12));
        // The next tick starts from zero.
        assert_eq!(d.admit(h, 101, 1), None);
        // Sampled packets count for what they stand for: 5 + 5 of 12 wait, a third admits.
        assert_eq!(d.admit(h, 102, 5), None);
        assert_eq!(d.admit(h, 102, 5), None);
        assert_eq!(d.admit(h, 102, 5), Some(15));
        // One packet sampled 1 in 1,000 is admitted at once.
        assert_eq!(d.admit(hash(2), 102, 1_000), Some(1_000));
    }

    #[test]
    fn background_spread_over_many_destinations_stays_out() {
        // 70,000 destinations with 1 packet each in one tick: a sketch of 16,384 counters per
        // row sees ~4 per counter, and the minimum of two rows stays under 12.
        let mut d = Doorkeeper::new(12);
        let admitted = (0..70_000).filter(|&i| d.admit(hash(i), 5, 1).is_some()).count();
        assert!(admitted < 70, "{admitted} of 70,000 one-packet destinations admitted");
    }

    #[test]
    fn a_lane_holds_only_its_own_destinations() {
        // What one lane's counters hold depends only on that lane's destinations: feeding the
        // other lanes changes nothing for it.
        let lane_of = |i: u32| lane(hash(i));
        let mut alone = Doorkeeper::new(4);
        let mut mixed = Doorkeeper::new(4);
        let mut seen = (0, 0);
        for i in 0..200_000u32 {
            let h = hash(i % 50_000);
            let a = (lane_of(i % 50_000) == 7).then(|| alone.admit(h, 9, 1).is_some());
            let m = mixed.admit(h, 9, 1).is_some();
            if let Some(a) = a {
                assert_eq!(a, m, "packet {i}");
                seen.0 += 1;
                seen.1 += m as u32;
            }
        }
        assert!(seen.0 > 1000 && seen.1 > 0, "{seen:?}");
    }
}
