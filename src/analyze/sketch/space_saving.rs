//! Space-Saving heavy hitters (Metwally, Agrawal, El Abbadi 2005).
//!
//! `capacity` counters; a new key takes over the smallest counter and inherits its count
//! as `error`. Every key whose true count exceeds N/capacity is present, and each count
//! overestimates by at most its `error`. While fewer than `capacity` distinct keys have
//! been seen, counts are exact. All memory is allocated up front: counting never allocates.
//!
//! Layout: parallel arrays per counter, a min-heap of counter indices ordered by count (the
//! counter to replace is the root), and an open-addressing index from key to counter. The
//! heap is put in order only when the first counter must be replaced: until then no key is
//! evicted and nothing needs the smallest count, so counting a packet is an index lookup and
//! an increment (attacks from fewer sources than counters, the usual case for real botnets
//! and reflectors, never pay for heap order).
//!
//! [`SpaceSaving::filtered`] puts a [`RecentKeys`] filter in front of the replacement once the
//! counters are all taken (Filtered Space-Saving, Homem and Carvalho 2010): a new key takes
//! the smallest counter only when it comes back while the filter still remembers it. A
//! spoofed flood's millions of one-off sources then cost a filter lookup each instead of a
//! heap repair. A key enters as in Space-Saving (count min + 1, error min), so every error
//! stays within N/m and count − error a lower bound of the true count; the packets a key sends
//! while untracked (at least its first) are not counted, so a count may fall short of the
//! truth by those.
//!
//! [`HeavyHitters`] is a sketch's busiest counters as they leave it, for a summary; two of
//! them merge into one with the same guarantees over both streams together.

use super::RecentKeys;
use crate::analyze::hash::{KeyedHasher, SketchKey};
use crate::prefetch::prefetch;
use serde::{Deserialize, Serialize};

const EMPTY: u32 = u32::MAX;

/// One tracked key with its estimated count and the most it may overestimate by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counted<K> {
    pub key: K,
    pub count: u64,
    pub error: u64,
}

impl<K: Ord> Counted<K> {
    /// The first `n` of `all`, largest count first (ties broken by key for stable output).
    pub(super) fn busiest(mut all: Vec<Counted<K>>, n: usize) -> Vec<Counted<K>> {
        all.sort_by(|a, b| b.count.cmp(&a.count).then(a.key.cmp(&b.key)));
        all.truncate(n);
        all
    }
}

/// The busiest counters of a Space-Saving sketch (or a merge of several), and `floor`: the
/// most any key not listed may have counted (the smallest listed count once a key was
/// evicted or the list was cut short; 0 while every key seen is listed). From a sketch of
/// m counters over N items, listing n ≤ m: every count overestimates by at most its error,
/// every error is at most N/n, every key counted more than N/n times is listed, and a key
/// not listed counted at most `floor`. (A filtered sketch keeps only its own guarantees:
/// a key may count more than `floor` while the filter held it back.)
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeavyHitters<K> {
    /// Largest count first.
    pub counters: Vec<Counted<K>>,
    pub floor: u64,
}

impl<K: Copy + Ord> HeavyHitters<K> {
    /// `busiest` (largest first, at most as many as were asked for) as a summary: `exhaustive`
    /// when it lists every key its sketch ever counted.
    pub(super) fn listing(busiest: Vec<Counted<K>>, exhaustive: bool) -> HeavyHitters<K> {
        let floor = match exhaustive {
            true => 0,
            false => busiest.last().map_or(0, |c| c.count),
        };
        HeavyHitters { counters: busiest, floor }
    }

    /// The summary of both streams, listing at most `capacity` keys: the parallel
    /// Space-Saving merge (Cafaro, Pulimeno, Tempesta 2016; a Misra-Gries merge of Agarwal
    /// et al. 2012 in Space-Saving's terms). A key counts its count in each summary, or that
    /// summary's floor where it is not listed (the floor then adds to its error too), and
    /// the `capacity` largest stay. (Sums saturate: summaries may come from the network.) Merged from summaries of N₁ and N₂ items listing at least
    /// `capacity` keys each (or every key), the guarantees above hold for N₁ + N₂ and
    /// `capacity`: the k largest merged counts sum to at most N₁ + N₂, so a key above
    /// (N₁ + N₂)/k cannot be pushed out.
    pub fn merge(&self, other: &HeavyHitters<K>, capacity: usize) -> HeavyHitters<K> {
        let mut all: Vec<(Counted<K>, bool)> =
            self.counters.iter().map(|c| (*c, true)).chain(other.counters.iter().map(|c| (*c, false))).collect();
        all.sort_unstable_by_key(|a| a.0.key);
        let mut merged = Vec::with_capacity(all.len());
        let mut i = 0;
        while let Some(&(first, from_self)) = all.get(i) {
            let (count, error) = match all.get(i + 1) {
                Some(&(second, _)) if second.key == first.key => {
                    i += 1;
                    (first.count.saturating_add(second.count), first.error.saturating_add(second.error))
                }
                // Listed in one only: the other may have counted it up to its floor.
                _ => {
                    let absent_floor = if from_self { other.floor } else { self.floor };
                    (first.count.saturating_add(absent_floor), first.error.saturating_add(absent_floor))
                }
            };
            merged.push(Counted { key: first.key, count, error });
            i += 1;
        }
        let listed = merged.len();
        let kept = Counted::busiest(merged, capacity);
        // A key dropped here counted at most the smallest kept count; one listed nowhere, at
        // most both floors (no more than any merged count).
        let dropped = (listed > kept.len()).then(|| kept.last().map_or(0, |c| c.count));
        HeavyHitters { floor: dropped.unwrap_or(0).max(self.floor.saturating_add(other.floor)), counters: kept }
    }
}

/// One heap entry: a counter's count kept next to its index, so sifting compares neighbours
/// in the heap array instead of chasing each index into a separate count array.
#[derive(Clone, Copy, Debug)]
struct HeapEntry {
    count: u64,
    counter: u32,
}

pub struct SpaceSaving<K: SketchKey> {
    keys: Vec<K>,
    /// The keyed hash of each counter's key, so moving index entries never rehashes.
    hashes: Vec<u64>,
    errors: Vec<u64>,
    /// Min-heap by count of (count, counter index); the counter to replace is the root.
    /// In heap order only once `ordered`; before, in the order counters were made.
    heap: Vec<HeapEntry>,
    ordered: bool,
    /// heap_pos[counter] = its position in `heap`.
    heap_pos: Vec<u32>,
    /// index[slot] = counter index or EMPTY; linear probing, power-of-two size.
    index: Vec<u32>,
    mask: usize,
    hasher: KeyedHasher,
    /// For a filtered sketch: the filter's size in bits per bank, and the filter itself once
    /// the counters are all taken.
    filter_bits: Option<usize>,
    filter: Option<Box<RecentKeys>>,
}

/// Filter bits per counter of a filtered sketch: a bank remembers eight keys per counter (at
/// 16 bits per key).
const FILTER_BITS_PER_COUNTER: usize = 128;

impl<K: SketchKey> SpaceSaving<K> {
    pub fn new(capacity: usize, hasher: KeyedHasher) -> Self {
        let capacity = capacity.max(1);
        // At most a quarter full: a key not tracked (each of a spoofed flood's) is found absent
        // after 1.4 probes on average rather than 2.5 at half full (a sixth of the analysis
        // of `bench_spoofed`).
        let slots = (capacity * 4).next_power_of_two();
        SpaceSaving {
            keys: Vec::with_capacity(capacity),
            hashes: Vec::with_capacity(capacity),
            errors: Vec::with_capacity(capacity),
            heap: Vec::with_capacity(capacity),
            ordered: false,
            heap_pos: Vec::with_capacity(capacity),
            index: vec![EMPTY; slots],
            mask: slots - 1,
            hasher,
            filter_bits: None,
            filter: None,
        }
    }

    /// A sketch whose new keys, once every counter is taken, pass a filter of recently seen
    /// keys first (see the module's documentation).
    pub fn filtered(capacity: usize, hasher: KeyedHasher) -> Self {
        SpaceSaving {
            filter_bits: Some(capacity.max(1) * FILTER_BITS_PER_COUNTER),
            ..SpaceSaving::new(capacity, hasher)
        }
    }

    pub fn capacity(&self) -> usize {
        self.keys.capacity()
    }

    pub fn clear(&mut self) {
        self.keys.clear();
        self.hashes.clear();
        self.errors.clear();
        self.heap.clear();
        self.ordered = false;
        self.heap_pos.clear();
        self.index.fill(EMPTY);
        if let Some(f) = self.filter.as_deref_mut() {
            f.clear();
        }
    }

    /// Items counted so far (the stream length N): every item adds one to one count.
    #[cfg(test)]
    fn total(&self) -> u64 {
        self.heap.iter().map(|e| e.count).sum()
    }

    /// True once some key had to be evicted (the heap is ordered then): counts are estimates
    /// from then on.
    #[cfg(test)]
    fn is_saturated(&self) -> bool {
        self.ordered
    }

    /// The count of a counter.
    #[inline]
    fn count(&self, counter: usize) -> u64 {
        self.heap[self.heap_pos[counter] as usize].count
    }

    #[inline]
    pub fn add(&mut self, key: K) {
        let hash = key.keyed_hash(&self.hasher);
        self.add_hashed(key, hash, 1);
    }

    /// Asks for the cache lines [`add_hashed`](Self::add_hashed) will read first for a key of
    /// keyed hash `hash`: its index slot and, once the counters are full, the filter's words.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        prefetch(self.index.get(hash as usize & self.mask));
        if self.ordered {
            if let Some(f) = self.filter.as_deref() {
                f.prefetch(hash);
            }
        }
    }

    /// Counts `amount` occurrences of `key` (a sampled packet stands for several), for a caller
    /// that already holds `key.keyed_hash(hasher)` for this sketch's hasher (the tracker hashes
    /// each source once for this and the HyperLogLog).
    #[inline]
    pub fn add_hashed(&mut self, key: K, hash: u64, amount: u64) {
        debug_assert_eq!(hash, key.keyed_hash(&self.hasher));
        let mut slot = hash as usize & self.mask;
        loop {
            let c = self.index[slot];
            if c == EMPTY {
                break;
            }
            if self.keys[c as usize] == key {
                // Before the heap is ordered, counter c sits at position c: one load fewer.
                let pos = if self.ordered { self.heap_pos[c as usize] as usize } else { c as usize };
                self.heap[pos].count += amount;
                if self.ordered {
                    self.sift_down(pos);
                }
                return;
            }
            slot = (slot + 1) & self.mask;
        }
        if self.keys.len() < self.keys.capacity() {
            let c = self.keys.len() as u32;
            self.keys.push(key);
            self.hashes.push(hash);
            self.errors.push(0);
            self.heap_pos.push(self.heap.len() as u32);
            self.heap.push(HeapEntry { count: amount, counter: c });
            self.index[slot] = c;
            return;
        }
        if !self.ordered {
            self.heapify();
        }
        // Filtered: a key the filter does not remember is only noted there.
        if self.filter.as_deref_mut().is_some_and(|f| !f.seen_before(hash)) {
            return;
        }
        // Replace the smallest counter: the root of the heap.
        let root = self.heap[0];
        let c = root.counter as usize;
        self.remove_from_index(c as u32);
        self.keys[c] = key;
        self.hashes[c] = hash;
        self.errors[c] = root.count;
        self.heap[0].count = root.count + amount;
        self.insert_into_index(hash, c as u32);
        self.sift_down(0);
    }

    /// The estimated count of `key`, if it is tracked.
    #[cfg(test)]
    fn count_of(&self, key: K) -> Option<u64> {
        let mut slot = key.keyed_hash(&self.hasher) as usize & self.mask;
        loop {
            let c = *self.index.get(slot)?;
            if c == EMPTY {
                return None;
            }
            if self.keys[c as usize] == key {
                return Some(self.count(c as usize));
            }
            slot = (slot + 1) & self.mask;
        }
    }

    /// The tracked keys, largest count first (ties broken by key for stable output).
    pub fn top(&self, n: usize) -> Vec<Counted<K>> {
        let all = (0..self.keys.len())
            .map(|c| Counted { key: self.keys[c], count: self.count(c), error: self.errors[c] })
            .collect();
        Counted::busiest(all, n)
    }

    /// Starts over from a summary's counters (the busiest, as many as fit), errors and all:
    /// an aggregator's tracker is the merge of its sensors'.
    pub fn load(&mut self, summary: &HeavyHitters<K>) {
        self.clear();
        for c in summary.counters.iter().take(self.capacity()) {
            let hash = c.key.keyed_hash(&self.hasher);
            let counter = self.keys.len() as u32;
            self.keys.push(c.key);
            self.hashes.push(hash);
            self.errors.push(c.error);
            self.heap_pos.push(counter);
            self.heap.push(HeapEntry { count: c.count, counter });
            self.insert_into_index(hash, counter);
        }
    }

    /// The `n` busiest keys as a summary that merges with others (see [`HeavyHitters`]).
    pub fn heavy_hitters(&self, n: usize) -> HeavyHitters<K> {
        let busiest = self.top(n);
        // Once ordered, a key may have been evicted (or, filtered, held back).
        let exhaustive = !self.ordered && busiest.len() == self.keys.len();
        HeavyHitters::listing(busiest, exhaustive)
    }

    fn insert_into_index(&mut self, hash: u64, counter: u32) {
        let mut slot = hash as usize & self.mask;
        while self.index[slot] != EMPTY {
            slot = (slot + 1) & self.mask;
        }
        self.index[slot] = counter;
    }

    /// Removes a counter's index entry with backward-shift deletion, keeping probe chains intact.
    fn remove_from_index(&mut self, counter: u32) {
        let mut slot = self.hashes[counter as usize] as usize & self.mask;
        loop {
            let c = self.index[slot];
            if c == EMPTY {
                return;
            }
            if c == counter {
                break;
            }
            slot = (slot + 1) & self.mask;
        }
        let mut hole = slot;
        let mut next = (hole + 1) & self.mask;
        loop {
            let c = self.index[next];
            if c == EMPTY {
                break;
            }
            let home = self.hashes[c as usize] as usize & self.mask;
            // Move the entry back if its home is not in (hole, next] cyclically.
            let distance_to_next = next.wrapping_sub(home) & self.mask;
            let distance_to_hole = hole.wrapping_sub(home) & self.mask;
            if distance_to_hole < distance_to_next {
                self.index[hole] = c;
                hole = next;
            }
            next = (next + 1) & self.mask;
        }
        self.index[hole] = EMPTY;
    }

    /// Puts the heap in order (bottom-up, linear time), once, at the first replacement; a
    /// filtered sketch gets its filter then (memory only for sketches that fill up).
    #[cold]
    fn heapify(&mut self) {
        for i in (0..self.heap.len() / 2).rev() {
            self.sift_down(i);
        }
        self.ordered = true;
        if let (Some(bits), None) = (self.filter_bits, &self.filter) {
            self.filter = Some(Box::new(RecentKeys::new(bits)));
        }
    }

    /// Moves the entry at `i` down below children that count less, preferring the left child
    /// on ties (as swapping it down step by step would).
    fn sift_down(&mut self, mut i: usize) {
        let n = self.heap.len();
        let item = self.heap[i];
        loop {
            let left = 2 * i + 1;
            if left >= n {
                break;
            }
            let right = left + 1;
            // Without a branch: which child is smaller is a coin toss for the predictor.
            let smaller =
                if right < n { left + usize::from(self.heap[right].count < self.heap[left].count) } else { left };
            let below = self.heap[smaller];
            if item.count <= below.count {
                break;
            }
            self.heap[i] = below;
            self.heap_pos[below.counter as usize] = i as u32;
            i = smaller;
        }
        self.heap[i] = item;
        self.heap_pos[item.counter as usize] = i as u32;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::IpKey;

    fn ip(i: u32) -> IpKey {
        IpKey::from_v4(i.to_be_bytes())
    }

    #[test]
    fn exact_while_under_capacity() {
        let mut ss = SpaceSaving::new(100, KeyedHasher::new(Some(1)));
        for i in 0..50u32 {
            for _ in 0..=i {
                ss.add(ip(i));
            }
        }
        let top = ss.top(3);
        assert_eq!(top[0], Counted { key: ip(49), count: 50, error: 0 });
        assert_eq!(top[1].key, ip(48));
        assert!(!ss.is_saturated());
    }

    #[test]
    fn heavy_hitters_survive_a_flood_of_singletons() {
        let mut ss = SpaceSaving::new(64, KeyedHasher::new(Some(2)));
        let mut n = 0u64;
        for round in 0..20_000u32 {
            ss.add(ip(1_000_000 + round)); // a spoofed singleton
            n += 1;
            if round % 4 == 0 {
                ss.add(ip(7)); // a real heavy source: 20 % of the stream
                n += 1;
            }
        }
        assert_eq!(ss.total(), n);
        let top = ss.top(1)[0];
        assert_eq!(top.key, ip(7));
        // Guarantee: overestimate at most N/m, and the count minus error is a lower bound.
        assert!(top.count - top.error <= 5_000 && top.count >= 5_000);
        assert!(top.error <= n / 64);
        assert!(ss.is_saturated());
    }

    #[test]
    fn filtered_a_heavy_source_survives_a_million_one_off_sources_that_take_no_counter() {
        let mut ss = SpaceSaving::filtered(64, KeyedHasher::new(Some(4)));
        for round in 0..1_000_000u32 {
            ss.add(ip(1_000_000 + round));
            if round % 100 == 0 {
                ss.add(ip(7)); // a real source among a spoofed flood: 1 % of the stream
            }
        }
        let top = ss.top(64);
        assert_eq!(top[0].key, ip(7));
        assert!(top[0].count - top[0].error <= 10_000 && top[0].count >= 9_990, "{:?}", top[0]);
        // One-off sources entered only as the filter's false positives (about 2 %): the
        // smallest counter grew by a tenth of the N/m it would have grown by.
        let smallest = top.iter().map(|c| c.count).min().unwrap();
        assert!(smallest < 1_010_000 / 64 / 10, "smallest counter {smallest}");
    }

    #[test]
    fn index_stays_consistent_under_churn() {
        let mut ss = SpaceSaving::new(8, KeyedHasher::new(Some(3)));
        for i in 0..10_000u32 {
            ss.add(ip(i % 37));
            ss.add(ip(5));
        }
        // Every tracked key can still be found: adding it again bumps its own counter.
        for c in ss.top(8) {
            let before = ss.top(8).into_iter().find(|x| x.key == c.key).map(|x| x.count);
            ss.add(c.key);
            let after = ss.top(8).into_iter().find(|x| x.key == c.key).map(|x| x.count);
            assert_eq!(after, before.map(|b| b + 1));
        }
    }
}

#[cfg(test)]
mod properties {
    use super::*;
    use crate::analyze::sketch::test_util::{check_guarantees, shuffled_stream};
    use crate::decode::IpKey;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn ip(i: u32) -> IpKey {
        IpKey::from_v4(i.to_be_bytes())
    }

    /// The stream of noise addresses (offset past the heavy ones) and heavy addresses, each its
    /// number of times, shuffled by `seed`; with each address's true count.
    fn address_stream(noise: &[u32], heavy: &[(u32, usize)], seed: u64) -> (Vec<IpKey>, HashMap<IpKey, u64>) {
        let noise: Vec<IpKey> = noise.iter().map(|n| ip(n + 1000)).collect();
        let heavy: Vec<(IpKey, usize)> = heavy.iter().map(|(k, times)| (ip(*k), *times)).collect();
        shuffled_stream(&noise, &heavy, seed)
    }

    /// `ss` after counting `stream`.
    fn counted(mut ss: SpaceSaving<IpKey>, stream: &[IpKey]) -> SpaceSaving<IpKey> {
        stream.iter().for_each(|k| ss.add(*k));
        ss
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The Space-Saving guarantees on arbitrary streams, found through the index.
        #[test]
        fn error_bounds_hold(
            capacity in 4usize..64,
            heavy in proptest::collection::vec((0u32..50, 1usize..200), 1..8),
            noise in proptest::collection::vec(0u32..1_000_000, 0..3000),
            seed in any::<u64>(),
        ) {
            let (stream, truth) = address_stream(&noise, &heavy, seed);
            let ss = counted(SpaceSaving::new(capacity, KeyedHasher::new(Some(seed))), &stream);
            check_guarantees(&ss.top(capacity), &truth, capacity, |k| ss.count_of(k).is_some())?;
        }

        /// The summaries of any split of a stream (each part counted by its own sketch,
        /// listed `listed` deep), merged one after another, keep the guarantees for the whole
        /// stream with `listed` counters; and no key left out counted more than the floor.
        #[test]
        fn merged_summaries_of_a_split_keep_the_guarantees(
            capacity in 4usize..64,
            listed_eighths in 1usize..=8,
            heavy in proptest::collection::vec((0u32..50, 1usize..200), 1..8),
            noise in proptest::collection::vec(0u32..1_000_000, 0..3000),
            parts in 1usize..6,
            seed in any::<u64>(),
        ) {
            let (stream, truth) = address_stream(&noise, &heavy, seed);
            let listed = (capacity * listed_eighths / 8).max(1);
            let mut rng = capgen::rng::Rng::new(seed);
            let mut sketches: Vec<_> =
                (0..parts as u64).map(|i| SpaceSaving::new(capacity, KeyedHasher::new(Some(seed ^ i)))).collect();
            // Uneven parts: each item goes to a part below a random bound.
            for k in &stream {
                let below = rng.index(parts) + 1;
                sketches[rng.index(below)].add(*k);
            }
            let merged = sketches
                .iter()
                .map(|s| s.heavy_hitters(listed))
                .reduce(|a, b| a.merge(&b, listed))
                .unwrap();
            let is_listed = |k: IpKey| merged.counters.iter().any(|c| c.key == k);
            check_guarantees(&merged.counters, &truth, listed, is_listed)?;
            for (key, real) in &truth {
                prop_assert!(is_listed(*key) || *real <= merged.floor, "{key:?}: {real} above floor {}", merged.floor);
            }
        }

        /// The filtered sketch's bounds on the same streams: count − error is a lower bound of
        /// the true count, every error is within N/m, and every key more frequent than 2N/m is
        /// tracked.
        #[test]
        fn filtered_bounds_hold(
            capacity in 4usize..64,
            heavy in proptest::collection::vec((0u32..50, 1usize..200), 1..8),
            noise in proptest::collection::vec(0u32..1_000_000, 0..3000),
            seed in any::<u64>(),
        ) {
            let (stream, truth) = address_stream(&noise, &heavy, seed);
            let ss = counted(SpaceSaving::filtered(capacity, KeyedHasher::new(Some(seed))), &stream);
            let n = stream.len() as u64;
            for c in ss.top(capacity) {
                let real = truth[&c.key];
                prop_assert!(c.count - c.error <= real, "{:?}: lower bound {} above true {real}", c.key, c.count - c.error);
                prop_assert!(c.error <= n / capacity as u64, "{:?}: error {} above N/m", c.key, c.error);
            }
            for (key, real) in &truth {
                if *real > 2 * n / capacity as u64 {
                    prop_assert!(ss.count_of(*key).is_some(), "frequent key {key:?} ({real} of {n}) lost");
                }
            }
        }
    }
}
