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
    /// Bytes per class follow the packet counters.
    pub const BYTES: usize = Class::COUNT + 5;
    pub const COUNT: usize = BYTES + Class::COUNT;
}

pub const NO_WATCH: u16 = u16::MAX;
const BUCKET_SLOTS: usize = 8;

/// Per-victim state besides the counters.
#[derive(Clone, Debug)]
pub struct VictimMeta {
    pub key: IpKey,
    pub occupied: bool,
    /// The tick the ring was last advanced to.
    pub last_tick: i64,
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
}

impl VictimMeta {
    fn empty() -> VictimMeta {
        VictimMeta {
            key: IpKey::default(),
            occupied: false,
            last_tick: 0,
            baseline: [0.0; Class::COUNT],
            level: [u32::MAX; Class::COUNT],
            watch: [NO_WATCH; Class::COUNT],
            policy: 0,
            ignored: false,
        }
    }

    pub fn is_watched(&self) -> bool {
        self.watch.iter().any(|w| *w != NO_WATCH)
    }
}

pub struct VictimTable {
    pub meta: Vec<VictimMeta>,
    /// slot × window × cell::COUNT
    ring: Vec<u32>,
    /// slot × cell::COUNT
    sums: Vec<u64>,
    window: usize,
    bucket_mask: usize,
    hasher: KeyedHasher,
}

/// What happened when a victim was looked up for counting.
pub enum Lookup {
    Found(usize),
    /// A new entry; the caller must set its policy and levels.
    Inserted(usize),
    /// The bucket is full of watched victims.
    Full,
}

impl VictimTable {
    pub fn new(max_victims: usize, window_ticks: u32, hasher: KeyedHasher) -> VictimTable {
        let buckets = (max_victims / BUCKET_SLOTS).max(1).next_power_of_two();
        let slots = buckets * BUCKET_SLOTS;
        let window = window_ticks.max(1) as usize;
        VictimTable {
            meta: vec![VictimMeta::empty(); slots],
            ring: vec![0; slots * window * cell::COUNT],
            sums: vec![0; slots * cell::COUNT],
            window,
            bucket_mask: buckets - 1,
            hasher,
        }
    }

    #[inline]
    fn bucket_start(&self, key: IpKey) -> usize {
        (self.hasher.hash_ip(key) as usize & self.bucket_mask) * BUCKET_SLOTS
    }

    #[inline]
    pub fn find(&self, key: IpKey) -> Option<usize> {
        let start = self.bucket_start(key);
        (start..start + BUCKET_SLOTS).find(|&s| self.meta[s].occupied && self.meta[s].key == key)
    }

    /// Finds `key` or makes room for it, evicting the least busy unwatched victim of its bucket.
    #[inline]
    pub fn find_or_insert(&mut self, key: IpKey, now: i64) -> Lookup {
        let start = self.bucket_start(key);
        let mut free = None;
        for s in start..start + BUCKET_SLOTS {
            let m = &self.meta[s];
            if !m.occupied {
                free.get_or_insert(s);
            } else if m.key == key {
                return Lookup::Found(s);
            }
        }
        let slot = match free {
            Some(s) => s,
            None => {
                let mut best: Option<(u64, usize)> = None;
                for s in start..start + BUCKET_SLOTS {
                    if self.meta[s].is_watched() {
                        continue;
                    }
                    self.advance(s, now, |_, _, _| {});
                    let busy: u64 = self.sums(s)[..Class::COUNT].iter().sum();
                    if best.is_none_or(|(b, _)| busy < b) {
                        best = Some((busy, s));
                    }
                }
                match best {
                    Some((_, s)) => s,
                    None => return Lookup::Full,
                }
            }
        };
        let m = &mut self.meta[slot];
        *m = VictimMeta::empty();
        m.key = key;
        m.occupied = true;
        m.last_tick = now;
        let w = self.window * cell::COUNT;
        self.ring[slot * w..(slot + 1) * w].fill(0);
        self.sums[slot * cell::COUNT..(slot + 1) * cell::COUNT].fill(0);
        Lookup::Inserted(slot)
    }

    /// Window totals of a victim (call [`advance`](Self::advance) first).
    #[inline]
    pub fn sums(&self, slot: usize) -> &[u64] {
        &self.sums[slot * cell::COUNT..(slot + 1) * cell::COUNT]
    }

    /// Adds to a counter in the current tick (the victim must be advanced to now).
    #[inline]
    pub fn add(&mut self, slot: usize, counter: usize, amount: u32) {
        let bucket = self.meta[slot].last_tick.rem_euclid(self.window as i64) as usize;
        let cell = &mut self.ring[(slot * self.window + bucket) * cell::COUNT + counter];
        *cell = cell.saturating_add(amount);
        self.sums[slot * cell::COUNT + counter] += amount as u64;
    }

    /// Moves a victim's window forward to tick `now` (a victim ahead of `now` belongs to an
    /// abandoned timeline and is reset). `on_tick(meta, sums, ticks)` runs
    /// before each expiry with the window as it stood at the end of that tick (`ticks` = 1),
    /// and once with `ticks` > 1 for a stretch of empty window; it is where baselines learn.
    #[inline]
    pub fn advance(&mut self, slot: usize, now: i64, mut on_tick: impl FnMut(&mut VictimMeta, &[u64], u64)) {
        let last = self.meta[slot].last_tick;
        if now < last {
            // Left over from a timeline the analyzer has abandoned: start afresh.
            let m = &mut self.meta[slot];
            let (key, policy, ignored) = (m.key, m.policy, m.ignored);
            *m = VictimMeta { key, occupied: true, last_tick: now, policy, ignored, ..VictimMeta::empty() };
            let w = self.window * cell::COUNT;
            self.ring[slot * w..(slot + 1) * w].fill(0);
            self.sums[slot * cell::COUNT..(slot + 1) * cell::COUNT].fill(0);
            return;
        }
        if now == last {
            return;
        }
        let elapsed = (now - last) as u64;
        let steps = elapsed.min(self.window as u64);
        let w = self.window as i64;
        for i in 1..=steps as i64 {
            {
                let sums = &self.sums[slot * cell::COUNT..(slot + 1) * cell::COUNT];
                on_tick(&mut self.meta[slot], sums, 1);
            }
            let bucket = (last + i).rem_euclid(w) as usize;
            let base = (slot * self.window + bucket) * cell::COUNT;
            for c in 0..cell::COUNT {
                let v = std::mem::take(&mut self.ring[base + c]);
                self.sums[slot * cell::COUNT + c] -= v as u64;
            }
        }
        if elapsed > steps {
            let sums = &self.sums[slot * cell::COUNT..(slot + 1) * cell::COUNT];
            on_tick(&mut self.meta[slot], sums, elapsed - steps);
        }
        self.meta[slot].last_tick = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(i: u32) -> IpKey {
        IpKey::from_v4(i.to_be_bytes())
    }

    #[test]
    fn window_slides_and_forgets() {
        let mut t = VictimTable::new(64, 10, KeyedHasher::new(Some(1)));
        let Lookup::Inserted(s) = t.find_or_insert(ip(1), 0) else { panic!() };
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
            let (Lookup::Inserted(s) | Lookup::Found(s)) = t.find_or_insert(ip(i), 0) else { panic!() };
            t.add(s, Class::Udp as usize, 10 + i);
        }
        let busiest = t.find(ip(7)).unwrap();
        t.meta[busiest].watch[0] = 0;
        assert!(matches!(t.find_or_insert(ip(100), 0), Lookup::Inserted(_)));
        assert!(t.find(ip(0)).is_none(), "the quietest victim made room");
        assert!(t.find(ip(7)).is_some());
        for s in 0..8 {
            t.meta[s].watch[0] = 0;
        }
        assert!(matches!(t.find_or_insert(ip(101), 0), Lookup::Full));
    }
}
