//! Which peers a host is talking with, and over which connections, in bounded memory: the
//! evidence that a source of a SYN flood toward that host is also one of its real users, and
//! must not be blocked, and that an ACK or RST belongs to a connection the host is in.
//!
//! A pair (host, peer) and the connection (host and port, peer and port) are marked when the
//! peer completes a handshake with the host (the peer's ACK of the host's SYN-ACK, see
//! [`super::handshake`]), and, while the host is watched for a TCP flood, when the host sends
//! the peer a segment of an established connection (ACK set, SYN and RST clear). A spoofed
//! flood can forge neither: completing a handshake needs the sequence number the host chose,
//! and the host's own segments come from the host. Pairs and connections share the table
//! (their keyed hashes differ).
//!
//! The table is a set of 4-way buckets addressed by a keyed hash of the pair, each kept in
//! order of last use. A new pair evicts the least recently used of its bucket, so under
//! pressure the table forgets users (who may then be listed if they also sent SYNs), and
//! never invents one.

/// Low bits of a slot: handshakes the peer completed with the host (saturating).
const COMPLETIONS_MASK: u64 = 0xffff;
/// Set in every occupied slot, so that a tag of all zeros still reads as occupied.
const OCCUPIED: u64 = COMPLETIONS_MASK + 1;
const WAYS: usize = 4;

pub struct Acquaintances {
    /// Per slot: the key hash's upper 47 bits (bit 16 is [`OCCUPIED`]) over the completions;
    /// each bucket's most recently used first.
    slots: Vec<[u64; WAYS]>,
    mask: usize,
}

impl Acquaintances {
    /// A table of `2^buckets_log2` buckets of 4 pairs.
    pub fn new(buckets_log2: u32) -> Acquaintances {
        let n = 1usize << buckets_log2;
        Acquaintances { slots: vec![[0; WAYS]; n], mask: n - 1 }
    }

    #[inline]
    fn tag(pair: u64) -> u64 {
        (pair & !COMPLETIONS_MASK) | OCCUPIED
    }

    /// Moves the pair to the front of its bucket (inserting it with no completions if it was
    /// not there) and returns its slot.
    #[inline]
    fn touch(&mut self, pair: u64) -> &mut u64 {
        let tag = Self::tag(pair);
        let bucket = &mut self.slots[pair as usize & self.mask];
        let at = bucket.iter().position(|s| *s & !COMPLETIONS_MASK == tag);
        let entry = at.map_or(tag, |i| bucket[i]);
        // Shift the more recent ones down over the entry's old place (or over the oldest).
        bucket.copy_within(0..at.unwrap_or(WAYS - 1), 1);
        bucket[0] = entry;
        &mut bucket[0]
    }

    /// The peer completed a handshake with the host (`pair` from `KeyedHasher::hash_pair`).
    pub fn completed(&mut self, pair: u64) {
        let slot = self.touch(pair);
        if *slot & COMPLETIONS_MASK < COMPLETIONS_MASK {
            *slot += 1;
        }
    }

    /// The host sent the peer a segment of an established connection (`key` a pair's or a
    /// connection's hash).
    #[inline]
    pub fn talking(&mut self, key: u64) {
        self.touch(key);
    }

    /// `Some(completed handshakes)` when the host is known to talk with the peer (`pair`), or
    /// `Some(_)` when a connection is known (`pair` a connection's hash).
    pub fn lookup(&self, pair: u64) -> Option<u64> {
        let tag = Self::tag(pair);
        self.slots[pair as usize & self.mask]
            .iter()
            .find(|s| *s & !COMPLETIONS_MASK == tag)
            .map(|s| s & COMPLETIONS_MASK)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::hash::KeyedHasher;
    use crate::decode::IpKey;

    fn pair(host: u8, peer: u8) -> u64 {
        KeyedHasher::new(Some(9)).hash_pair(IpKey::from_v4([10, 0, 0, host]), IpKey::from_v4([10, 0, 1, peer]))
    }

    #[test]
    fn completions_count_and_talking_keeps_them() {
        let mut a = Acquaintances::new(10);
        assert_eq!(a.lookup(pair(1, 2)), None);
        a.talking(pair(1, 2));
        assert_eq!(a.lookup(pair(1, 2)), Some(0));
        a.completed(pair(1, 2));
        a.completed(pair(1, 2));
        a.talking(pair(1, 2));
        assert_eq!(a.lookup(pair(1, 2)), Some(2));
        // The pair is directed: the host talking with a peer says nothing of the reverse.
        assert_eq!(a.lookup(pair(2, 1)), None);
    }

    #[test]
    fn a_full_bucket_forgets_its_least_recently_used_pair_and_confuses_none() {
        // One bucket of four: the fifth pair evicts the one used longest ago.
        let mut a = Acquaintances::new(0);
        for peer in 1..=4 {
            a.completed(pair(1, peer));
        }
        a.talking(pair(1, 1));
        a.talking(pair(1, 5));
        assert_eq!(a.lookup(pair(1, 2)), None);
        assert_eq!(a.lookup(pair(1, 1)), Some(1));
        assert_eq!(a.lookup(pair(1, 3)), Some(1));
        assert_eq!(a.lookup(pair(1, 4)), Some(1));
        assert_eq!(a.lookup(pair(1, 5)), Some(0));
    }
}
