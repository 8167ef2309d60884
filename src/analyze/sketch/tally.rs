//! The busiest of a few keys: Space-Saving (see [`super::SpaceSaving`]) with at most 32
//! counters, laid out for a linear scan, inline (no allocation). An attack's destination
//! ports ([`PortTally`]) and a prefix flood's busiest hosts use it.
//!
//! A flood to random ports misses on nearly every packet, and each miss replaces a counter
//! with the smallest count. The heap of the general sketch paid a sift through its levels
//! for that on every packet (a tenth of the analysis of `bench_mix`). Here the ports sit in
//! one cache line that is compared as a whole, and the smallest count is found lazily: counts
//! only grow, so a remembered minimum stays a lower bound, and any counter still at it is a
//! smallest one. A cursor walks the counters looking for one; only when it reaches the end is
//! the minimum taken again. A replacement thus costs at most two walks over the counts and one
//! minimum; in a flood to random ports, whose counts stay level, the minimum is taken about
//! once per [`PORT_COUNTERS`] replacements.

use super::{Counted, HeavyHitters};

/// Counters per port tally: enough for every port above a 1/32 share of the packets to stay.
pub const PORT_COUNTERS: usize = 32;

/// An attack's destination ports.
pub type PortTally = Tally<u16, PORT_COUNTERS>;

/// `keys` first and the whole aligned to a cache line: for ports, the keys are the one line
/// every packet reads.
#[derive(Clone, Copy, Debug)]
#[repr(C, align(64))]
pub struct Tally<K, const N: usize> {
    keys: [K; N],
    /// Bit `i` set when counter `i` holds a key.
    used: u32,
    counts: [u64; N],
    /// How much each count may overestimate: the count the key took over.
    errors: [u64; N],
    /// Once every counter is used: at most the smallest count.
    floor: u64,
    /// Where the search for a counter at `floor` resumes.
    cursor: usize,
}

impl<K: Copy + Default, const N: usize> Default for Tally<K, N> {
    fn default() -> Self {
        Tally { keys: [K::default(); N], used: 0, counts: [0; N], errors: [0; N], floor: 0, cursor: 0 }
    }
}

impl<K: Copy + Default + PartialEq + Ord, const N: usize> Tally<K, N> {
    /// `used` with every counter's bit set.
    const ALL_USED: u32 = {
        assert!(N >= 1 && N <= u32::BITS as usize, "a tally has 1 to 32 counters");
        u32::MAX >> (u32::BITS as usize - N)
    };

    pub fn clear(&mut self) {
        *self = Tally::default();
    }

    #[inline]
    pub fn add(&mut self, key: K) {
        self.add_many(key, 1);
    }

    /// Counts `amount` occurrences of `key` (a sampled packet stands for several).
    #[inline]
    pub fn add_many(&mut self, key: K, amount: u64) {
        // Without early exit, so the compiler compares all keys at once.
        let mut hits = 0u32;
        for (i, k) in self.keys.iter().enumerate() {
            hits |= u32::from(*k == key) << i;
        }
        let hits = hits & self.used;
        if hits != 0 {
            self.counts[hits.trailing_zeros() as usize] += amount;
            return;
        }
        if self.used != Self::ALL_USED {
            let i = (!self.used).trailing_zeros() as usize;
            self.used |= 1 << i;
            (self.keys[i], self.counts[i], self.errors[i]) = (key, amount, 0);
            return;
        }
        let i = self.smallest();
        self.errors[i] = self.counts[i];
        self.counts[i] += amount;
        self.keys[i] = key;
    }

    /// A counter with the smallest count (every counter is used).
    #[inline]
    fn smallest(&mut self) -> usize {
        loop {
            while let Some(&count) = self.counts.get(self.cursor) {
                if count == self.floor {
                    return self.cursor;
                }
                self.cursor += 1;
            }
            self.floor = self.counts.iter().copied().min().unwrap_or(0);
            self.cursor = 0;
        }
    }

    /// The tracked keys, largest count first (ties broken by key for stable output).
    pub fn top(&self, n: usize) -> Vec<Counted<K>> {
        let all = (0..N)
            .filter(|i| self.used & (1 << i) != 0)
            .map(|i| Counted { key: self.keys[i], count: self.counts[i], error: self.errors[i] })
            .collect();
        Counted::busiest(all, n)
    }

    /// Starts over from a summary's counters (the busiest, as many as fit), errors and all.
    pub fn load(&mut self, summary: &HeavyHitters<K>) {
        self.clear();
        for (i, c) in summary.counters.iter().take(N).enumerate() {
            (self.keys[i], self.counts[i], self.errors[i]) = (c.key, c.count, c.error);
            self.used |= 1 << i;
        }
    }

    /// The `n` busiest keys as a summary that merges with others (see [`HeavyHitters`]).
    pub fn heavy_hitters(&self, n: usize) -> HeavyHitters<K> {
        let busiest = self.top(n);
        // A counter that was taken over inherited the count it replaced as its error.
        let replaced = self.errors.iter().any(|&e| e > 0);
        let exhaustive = !replaced && busiest.len() == self.used.count_ones() as usize;
        HeavyHitters::listing(busiest, exhaustive)
    }

    /// The most packets any one key surely had: the largest count less what it may have
    /// inherited (no allocation).
    pub fn largest_sure(&self) -> u64 {
        (0..N).filter(|i| self.used & (1 << i) != 0).map(|i| self.counts[i] - self.errors[i]).max().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use capgen::rng::Rng;

    #[test]
    fn exact_while_under_capacity() {
        let mut t = PortTally::default();
        for port in 1..=20u16 {
            for _ in 0..port {
                t.add(port * 100);
            }
        }
        let top = t.top(3);
        assert_eq!(top[0], Counted { key: 2000, count: 20, error: 0 });
        assert_eq!(top[1], Counted { key: 1900, count: 19, error: 0 });
        assert_eq!(t.top(100).len(), 20);
        // Port 0 is a port like any other, not an empty counter.
        t.add(0);
        assert!(t.top(100).contains(&Counted { key: 0, count: 1, error: 0 }));
    }

    #[test]
    fn a_busy_port_survives_a_flood_to_random_ports() {
        let mut t = PortTally::default();
        let mut rng = Rng::new(0x9e37_79b9_7f4a_7c15);
        for i in 0..100_000u32 {
            t.add(rng.next_u16() | 1024);
            if i % 5 == 0 {
                t.add(53);
            }
        }
        let top = t.top(1)[0];
        assert_eq!(top.key, 53);
        assert!(top.count >= 20_000 && top.count - top.error <= 20_000, "{top:?}");
    }

    #[test]
    fn clear_forgets_everything() {
        let mut t = PortTally::default();
        for p in 0..1000u16 {
            t.add(p);
        }
        t.clear();
        assert!(t.top(10).is_empty());
        t.add(7);
        assert_eq!(t.top(10), vec![Counted { key: 7, count: 1, error: 0 }]);
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::analyze::sketch::test_util::{check_guarantees, shuffled_stream};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The Space-Saving guarantees on arbitrary streams, and the counts add up to N.
        #[test]
        fn error_bounds_hold(
            heavy in proptest::collection::vec((0u16..50, 1usize..300), 1..8),
            noise in proptest::collection::vec(any::<u16>(), 0..3000),
            seed in any::<u64>(),
        ) {
            let (stream, truth) = shuffled_stream(&noise, &heavy, seed);
            let mut t = PortTally::default();
            for p in &stream {
                t.add(*p);
            }
            let tracked = t.top(PORT_COUNTERS);
            prop_assert_eq!(tracked.iter().map(|c| c.count).sum::<u64>(), stream.len() as u64);
            check_guarantees(&tracked, &truth, PORT_COUNTERS, |p| tracked.iter().any(|c| c.key == p))?;
        }

        /// The tallies of a stream split in two, merged, keep the guarantees for the whole.
        #[test]
        fn merged_tallies_of_a_split_keep_the_guarantees(
            heavy in proptest::collection::vec((0u16..50, 1usize..300), 1..8),
            noise in proptest::collection::vec(any::<u16>(), 0..3000),
            cut in any::<prop::sample::Index>(),
            seed in any::<u64>(),
        ) {
            let (stream, truth) = shuffled_stream(&noise, &heavy, seed);
            let (mut first, mut second) = (PortTally::default(), PortTally::default());
            let cut = cut.index(stream.len() + 1);
            stream[..cut].iter().for_each(|p| first.add(*p));
            stream[cut..].iter().for_each(|p| second.add(*p));
            let merged = first.heavy_hitters(PORT_COUNTERS).merge(&second.heavy_hitters(PORT_COUNTERS), PORT_COUNTERS);
            let is_listed = |p: u16| merged.counters.iter().any(|c| c.key == p);
            check_guarantees(&merged.counters, &truth, PORT_COUNTERS, is_listed)?;
            for (port, real) in &truth {
                prop_assert!(is_listed(*port) || *real <= merged.floor, "{port}: {real} above floor {}", merged.floor);
            }
        }
    }
}
