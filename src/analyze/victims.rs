//! The bounded table of destinations under observation, each with sliding-window counters.
//!
//! Each victim keeps a ring of per-tick (100 ms) counters and their running sums, so the
//! window total is always at hand and moving the window costs one subtraction per counter.
//! Rings advance lazily when a victim is touched, so idle victims cost nothing per tick and
//! a gap of years costs no more than a gap of one window.
//!
//! The table is a set of 8-slot buckets addressed by a keyed hash of the address. When a
//! bucket is full, the least busy victim that is not being watched makes room: heavy
//! victims stay, and a flood of random destinations only churns the quiet ones.

use super::hash::KeyedHasher;
use super::Class;
use crate::decode::IpKey;

/// Counters per victim and tick. The first [`Class::COUNT`] are packets per class.
pub mod cell {
    use super::Class;
    /// SYN-ACKs and RSTs the victim sent: the capture shows its answers.
    pub const ANSWERS: usize = Class::COUNT;
    /// Handshakes to the victim completed by the client's ACK.
    pub const COMPLETIONS: usize = Class::COUNT + 1;
    /// SYNs the victim itself sent (it asked for the SYN-ACKs it receives).
    pub const SYNS_SENT: usize = Class::COUNT + 2;
    /// ICMP/ICMPv6 echo replies the victim received ...
    pub const ECHO_REPLIES: usize = Class::COUNT + 3;
    /// ... and echo requests it sent (it asked for those replies).
    pub const ECHO_REQUESTS_SENT: usize = Class::COUNT + 4;
    /// ACKs the victim received, while watched for an ACK flood, from peers it is not known
    /// to talk with (see `acquaintances`) ...
    pub const ACKS_FROM_STRANGERS: usize = Class::COUNT + 5;
    /// ... and RSTs, while watched for a RST flood.
    pub const RSTS_FROM_STRANGERS: usize = Class::COUNT + 6;
    /// Bytes per class follow the packet counters.
    pub const BYTES: usize = Class::COUNT + 7;
    pub const COUNT: usize = BYTES + Class::COUNT;
}

pub const NO_WATCH: u16 = u16::MAX;
const BUCKET_SLOTS: usize = 8;

/// Per-victim state besides the counters.
#[derive(Clone, Debug)]
pub struct VictimMeta {
    pub key: IpKey,
    pub occupied: bool,
    /// Learned normal rate per class (packets/s), frozen while that class is under attack.
    pub baseline: [f32; Class::COUNT],
    /// Per-packet check: when a class's window count reaches this, the analyzer looks closer.
    pub level: [u32; Class::COUNT],
    /// Index of the watch on each class, or [`NO_WATCH`].
    pub watch: [u16; Class::COUNT],
    /// Index into the settings' prefix policies (0 = global thresholds).
    pub policy: u16,
    /// Destination is allowlisted: never counted.
    pub ignored: bool,
    /// Its ACKs are counted: it earned that from the ACK doorkeeper (see `Analyzer::ack_gate`).
    pub counts_acks: bool,
}

impl VictimMeta {
    fn empty() -> VictimMeta {
        VictimMeta {
            key: IpKey::default(),
            occupied: false,
            baseline: [0.0; Class::COUNT],
            level: [u32::MAX; Class::COUNT],
            watch: [NO_WATCH; Class::COUNT],
            policy: 0,
            ignored: false,
            counts_acks: false,
        }
    }

    pub fn is_watched(&self) -> bool {
        self.watch.iter().any(|w| *w != NO_WATCH)
    }
}

/// What moving a victim's window and choosing whom to evict needs, 32 bytes per victim
/// (a bucket's in 4 cache lines): eviction reads no `VictimMeta` and no counters.
#[derive(Clone, Copy, Debug, Default)]
#[repr(C, align(32))]
struct Hot {
    /// The tick the ring was last advanced to.
    last_tick: i64,
    /// The window's packets over all classes: the sum of the class counters of `sums`.
    busy: u64,
    /// Ring rows that may hold non-zero counters (bit per row, windows are at most 100
    /// ticks): moving the window or reusing the slot clears only those.
    dirty: u128,
}

pub struct VictimTable {
    pub meta: Vec<VictimMeta>,
    hot: Vec<Hot>,
    /// Per bucket: bit `i` set when slot `i` of the bucket has a watch (see [`set_watch`](Self::set_watch)).
    watched: Vec<u8>,
    /// `row_tick` modulo the window, cached: nearly every count lands in the current tick.
    row_tick: i64,
    row: usize,
    /// The keys again, bucket by bucket, so a lookup scans 2 cache lines instead of 8 metas.
    keys: Vec<IpKey>,
    /// Per bucket: bit `i` set when slot `i` of the bucket is occupied.
    used: Vec<u8>,
    /// slot × window × cell::COUNT
    ring: Vec<u32>,
    /// slot × cell::COUNT
    sums: Vec<u64>,
    window: usize,
    bucket_mask: usize,
    hasher: KeyedHasher,
}

impl VictimTable {
    pub fn new(max_victims: usize, window_ticks: u32, hasher: KeyedHasher) -> VictimTable {
        let buckets = (max_victims / BUCKET_SLOTS).max(1).next_power_of_two();
        let slots = buckets * BUCKET_SLOTS;
        let window = window_ticks.max(1) as usize;
        VictimTable {
            meta: vec![VictimMeta::empty(); slots],
            hot: vec![Hot::default(); slots],
            watched: vec![0; buckets],
            row_tick: 0,
            row: 0,
            keys: vec![IpKey::default(); slots],
            used: vec![0; buckets],
            ring: vec![0; slots * window * cell::COUNT],
            sums: vec![0; slots * cell::COUNT],
            window,
            bucket_mask: buckets - 1,
            hasher,
        }
    }

    #[inline]
    fn bucket(&self, hash: u64) -> usize {
        hash as usize & self.bucket_mask
    }

    /// Whether slot `slot` (one found for `key` earlier) still holds `key`.
    #[inline]
    pub fn holds(&self, slot: usize, key: IpKey) -> bool {
        let used = self.used.get(slot / BUCKET_SLOTS).is_some_and(|u| u & (1 << (slot % BUCKET_SLOTS)) != 0);
        used && self.keys.get(slot) == Some(&key)
    }

    /// Slot of `key` within `bucket`, if present.
    #[inline]
    fn scan(&self, bucket: usize, key: IpKey) -> Option<usize> {
        let start = bucket * BUCKET_SLOTS;
        let used = self.used[bucket];
        if used == 0 {
            // Most lookups of sources (is this sender a victim we count answers for?) end
            // here, without loading the bucket's keys.
            return None;
        }
        let keys = self.keys.get(start..start + BUCKET_SLOTS)?;
        let mut hits = 0u32;
        for (i, k) in keys.iter().enumerate() {
            hits |= u32::from(*k == key) << i;
        }
        let hits = hits & u32::from(used);
        (hits != 0).then(|| start + hits.trailing_zeros() as usize)
    }

    #[inline]
    pub fn find(&self, key: IpKey) -> Option<usize> {
        self.find_hashed(key, self.hasher.hash_ip(key))
    }

    /// [`find`](Self::find) with the key's hash already at hand.
    #[inline]
    pub fn find_hashed(&self, key: IpKey, hash: u64) -> Option<usize> {
        self.scan(self.bucket(hash), key)
    }

    /// Makes room for `key` (not in the table; `hash` is its keyed hash), evicting the least
    /// busy unwatched victim of its bucket. The caller sets the new entry's policy and levels.
    /// `None` when the bucket is full of watched victims.
    pub fn insert_hashed(&mut self, key: IpKey, hash: u64, now: i64) -> Option<usize> {
        let bucket = self.bucket(hash);
        let start = bucket * BUCKET_SLOTS;
        let used = self.used[bucket];
        let slot = if used != u8::MAX {
            start + (!used).trailing_zeros() as usize
        } else {
            let mut best: Option<(u64, usize)> = None;
            let watched = self.watched[bucket];
            for s in start..start + BUCKET_SLOTS {
                debug_assert_eq!(watched & (1 << (s - start)) != 0, self.meta[s].is_watched());
                if watched & (1 << (s - start)) != 0 {
                    continue;
                }
                self.advance(s, now, |_, _, _| {});
                let busy = self.hot[s].busy;
                debug_assert_eq!(busy, self.sums(s)[..Class::COUNT].iter().fold(0u64, |a, b| a.wrapping_add(*b)));
                if best.is_none_or(|(b, _)| busy < b) {
                    best = Some((busy, s));
                }
            }
            best?.1
        };
        self.clear_rows(slot);
        self.sums[slot * cell::COUNT..(slot + 1) * cell::COUNT].fill(0);
        self.hot[slot] = Hot { last_tick: now, busy: 0, dirty: 0 };
        let m = &mut self.meta[slot];
        *m = VictimMeta::empty();
        m.key = key;
        m.occupied = true;
        self.keys[slot] = key;
        self.used[bucket] |= 1 << (slot - start);
        self.watched[bucket] &= !(1 << (slot - start));
        Some(slot)
    }

    #[inline]
    fn row_of(&self, tick: i64) -> usize {
        tick.rem_euclid(self.window as i64) as usize
    }

    /// The tick a victim's window was last advanced to.
    #[inline]
    pub fn last_tick(&self, slot: usize) -> i64 {
        self.hot[slot].last_tick
    }

    /// Sets (or with [`NO_WATCH`] clears) the watch of one class of a victim.
    pub fn set_watch(&mut self, slot: usize, class: usize, watch: u16) {
        self.meta[slot].watch[class] = watch;
        self.sync_watched(slot);
    }

    fn sync_watched(&mut self, slot: usize) {
        let bit = 1 << (slot % BUCKET_SLOTS);
        let w = &mut self.watched[slot / BUCKET_SLOTS];
        if self.meta[slot].is_watched() {
            *w |= bit;
        } else {
            *w &= !bit;
        }
    }

    /// Zeroes the ring rows of a slot that may hold counts.
    fn clear_rows(&mut self, slot: usize) {
        let mut dirty = std::mem::take(&mut self.hot[slot].dirty);
        while dirty != 0 {
            let row = dirty.trailing_zeros() as usize;
            dirty &= dirty - 1;
            let base = (slot * self.window + row) * cell::COUNT;
            if let Some(cells) = self.ring.get_mut(base..base + cell::COUNT) {
                cells.fill(0);
            }
        }
    }

    /// Window totals of a victim (call [`advance`](Self::advance) first).
    #[inline]
    pub fn sums(&self, slot: usize) -> &[u64] {
        &self.sums[slot * cell::COUNT..(slot + 1) * cell::COUNT]
    }

    /// Adds the counters of `ticks` (within the window) to `into`: those of ticks the victim
    /// has reached and its window still holds; ticks after its last count nothing.
    pub fn ticks_total(&self, slot: usize, ticks: std::ops::Range<i64>, into: &mut [u64; cell::COUNT]) {
        let last = self.hot[slot].last_tick;
        let held = last - self.window as i64 + 1..=last;
        for tick in ticks.filter(|t| held.contains(t)) {
            let base = (slot * self.window + self.row_of(tick)) * cell::COUNT;
            if let Some(row) = self.ring.get(base..base + cell::COUNT) {
                for (total, n) in into.iter_mut().zip(row) {
                    *total += u64::from(*n);
                }
            }
        }
    }

    /// Adds to a counter in the current tick (the victim must be advanced to now).
    #[inline]
    pub fn add(&mut self, slot: usize, counter: usize, amount: u32) {
        let row = self.current_row(slot);
        self.add_in_row(slot, row, counter, amount);
    }

    /// Adds `packets` of class `class` and their `bytes` in the current tick (the victim must
    /// be advanced to now): one row lookup for both counters of a counted packet.
    #[inline]
    pub fn add_class(&mut self, slot: usize, class: usize, packets: u32, bytes: u32) {
        debug_assert!(class < Class::COUNT);
        let row = self.current_row(slot);
        self.add_in_row(slot, row, class, packets);
        self.add_in_row(slot, row, cell::BYTES + class, bytes);
    }

    /// The ring row of the current tick, marked as holding counts for `slot`.
    #[inline]
    fn current_row(&mut self, slot: usize) -> usize {
        let tick = self.hot[slot].last_tick;
        if tick != self.row_tick {
            self.row_tick = tick;
            self.row = self.row_of(tick);
        }
        self.hot[slot].dirty |= 1 << self.row;
        self.row
    }

    /// Adds to a counter in `row`, and to its window sum (and, for a class's packets, the
    /// victim's busyness) what the counter took: the window subtracts the counter when its
    /// tick leaves, so neither may hold more. A saturated counter, from weighted records of
    /// lying counts, takes less than `amount`.
    #[inline]
    fn add_in_row(&mut self, slot: usize, row: usize, counter: usize, amount: u32) {
        let cell = &mut self.ring[(slot * self.window + row) * cell::COUNT + counter];
        let before = *cell;
        *cell = cell.saturating_add(amount);
        let taken = u64::from(*cell - before);
        self.sums[slot * cell::COUNT + counter] += taken;
        if counter < Class::COUNT {
            let h = &mut self.hot[slot];
            h.busy = h.busy.wrapping_add(taken);
        }
    }

    /// Moves a victim's window forward to tick `now` (a victim ahead of `now` belongs to an
    /// abandoned timeline and is reset). `on_tick(meta, sums, ticks)` runs
    /// before each expiry with the window as it stood at the end of that tick (`ticks` = 1),
    /// and once with `ticks` > 1 for a stretch of empty window; it is where baselines learn.
    #[inline]
    pub fn advance(&mut self, slot: usize, now: i64, mut on_tick: impl FnMut(&mut VictimMeta, &[u64], u64)) {
        let last = self.hot[slot].last_tick;
        if now < last {
            // Left over from a timeline the analyzer has abandoned: start afresh.
            self.clear_rows(slot);
            self.sums[slot * cell::COUNT..(slot + 1) * cell::COUNT].fill(0);
            self.hot[slot] = Hot { last_tick: now, busy: 0, dirty: 0 };
            let m = &mut self.meta[slot];
            let (key, policy, ignored) = (m.key, m.policy, m.ignored);
            *m = VictimMeta { key, occupied: true, policy, ignored, ..VictimMeta::empty() };
            self.sync_watched(slot);
            return;
        }
        if now == last {
            return;
        }
        let elapsed = (now - last) as u64;
        let steps = elapsed.min(self.window as u64);
        let mut row = self.row_of(last);
        for _ in 0..steps {
            {
                let sums = &self.sums[slot * cell::COUNT..(slot + 1) * cell::COUNT];
                on_tick(&mut self.meta[slot], sums, 1);
            }
            row += 1;
            if row == self.window {
                row = 0;
            }
            // Rows never written since they were last cleared hold zeros: nothing to expire.
            let bit = 1u128 << row;
            if self.hot[slot].dirty & bit != 0 {
                self.expire_row(slot, row);
            }
        }
        if elapsed > steps {
            let sums = &self.sums[slot * cell::COUNT..(slot + 1) * cell::COUNT];
            on_tick(&mut self.meta[slot], sums, elapsed - steps);
        }
        self.hot[slot].last_tick = now;
    }

    /// Subtracts one ring row from the window totals and zeroes it.
    fn expire_row(&mut self, slot: usize, row: usize) {
        let base = (slot * self.window + row) * cell::COUNT;
        let mut busy = 0u64;
        for c in 0..cell::COUNT {
            let v = std::mem::take(&mut self.ring[base + c]);
            self.sums[slot * cell::COUNT + c] -= v as u64;
            if c < Class::COUNT {
                busy = busy.wrapping_add(u64::from(v));
            }
        }
        let h = &mut self.hot[slot];
        h.dirty &= !(1u128 << row);
        h.busy = h.busy.wrapping_sub(busy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpKey {
        IpKey::from_v4(i.to_be_bytes())
    }

    fn insert(t: &mut VictimTable, key: IpKey, now: i64) -> Option<usize> {
        let hash = t.hasher.hash_ip(key);
        t.find_hashed(key, hash).or_else(|| t.insert_hashed(key, hash, now))
    }

    #[test]
    fn window_slides_and_forgets() {
        let mut t = VictimTable::new(64, 10, KeyedHasher::new(Some(1)));
        let s = insert(&mut t, ip(1), 0).unwrap();
        for tick in 0..10 {
            t.advance(s, tick, |_, _, _| {});
            t.add(s, Class::Syn as usize, 100);
        }
        assert_eq!(t.sums(s)[Class::Syn as usize], 1000);
        t.advance(s, 12, |_, _, _| {});
        assert_eq!(t.sums(s)[Class::Syn as usize], 700);
        t.advance(s, 1_000_000_000_000, |_, _, _| {});
        assert_eq!(t.sums(s)[Class::Syn as usize], 0);
    }

    #[test]
    fn full_bucket_evicts_the_quietest_unwatched_victim() {
        // One bucket of 8 slots.
        let mut t = VictimTable::new(8, 10, KeyedHasher::new(Some(1)));
        for i in 0..8 {
            let s = insert(&mut t, ip(i), 0).unwrap();
            t.add(s, Class::Udp as usize, 10 + i);
        }
        let busiest = t.find(ip(7)).unwrap();
        t.set_watch(busiest, 0, 0);
        assert!(insert(&mut t, ip(100), 0).is_some());
        assert!(t.find(ip(0)).is_none(), "the quietest victim made room");
        assert!(t.find(ip(7)).is_some());
        for s in 0..8 {
            t.set_watch(s, 0, 0);
        }
        assert!(insert(&mut t, ip(101), 0).is_none());
    }

    #[test]
    fn a_class_add_counts_packets_and_bytes_and_only_packets_make_a_victim_busy() {
        // One bucket of 8 slots; the victim of fewest packets comes last, so no tie of
        // busyness would pick it.
        let mut t = VictimTable::new(8, 10, KeyedHasher::new(Some(1)));
        let (packets, bytes) = (Class::Udp as usize, cell::BYTES + Class::Udp as usize);
        for i in 2..8 {
            let s = insert(&mut t, ip(i), 0).unwrap();
            t.add_class(s, packets, 10, 600);
        }
        let busiest = insert(&mut t, ip(8), 0).unwrap();
        t.add_class(busiest, packets, 10, 600);
        t.add(busiest, packets, 5);
        assert_eq!((t.sums(busiest)[packets], t.sums(busiest)[bytes]), (15, 600));
        let few_large = insert(&mut t, ip(1), 0).unwrap();
        t.add_class(few_large, packets, 2, 3_000);
        assert_eq!((t.sums(few_large)[packets], t.sums(few_large)[bytes]), (2, 3_000));
        assert!(insert(&mut t, ip(100), 0).is_some());
        assert!(t.find(ip(1)).is_none(), "the victim of fewest packets made room, however many bytes");
        // Both counters leave the window with their tick.
        t.advance(busiest, 10, |_, _, _| {});
        assert_eq!((t.sums(busiest)[packets], t.sums(busiest)[bytes]), (0, 0));
    }

    #[test]
    fn a_saturated_counter_leaves_its_victim_no_busier_than_its_window() {
        // One bucket of 8 slots. Weighted records that claim more than a counter holds in
        // one tick (a lying exporter's) saturate it; what it could not hold must not stay
        // in the victim's busyness once the tick has left the window.
        let mut t = VictimTable::new(8, 10, KeyedHasher::new(Some(1)));
        let udp = Class::Udp as usize;
        let flooded = insert(&mut t, ip(1), 0).unwrap();
        t.add_class(flooded, udp, u32::MAX, 0);
        t.add_class(flooded, udp, 1_000, 0);
        t.add(flooded, Class::Syn as usize, u32::MAX);
        assert_eq!(t.sums(flooded)[udp], u64::from(u32::MAX));
        for i in 2..9 {
            let s = insert(&mut t, ip(i), 10).unwrap();
            t.add_class(s, udp, 5, 300);
        }
        // At tick 10 the flooded victim's tick 0 has left its window: it is the quietest.
        assert!(insert(&mut t, ip(100), 10).is_some());
        assert!(t.find(ip(1)).is_none(), "the victim whose window is empty made room");
    }
}
