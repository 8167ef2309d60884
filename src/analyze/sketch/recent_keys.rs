//! "Was this key seen a moment ago?" for the keys a full Space-Saving sketch would otherwise
//! churn through: the filter of Filtered Space-Saving (Homem and Carvalho, 2010), here two
//! Bloom-filter banks of which the older is cleared whenever the newer has taken its share of
//! keys, so "a moment" is the last one to two bank-fulls of distinct keys.
//!
//! A spoofed flood sends from millions of addresses once or twice each: without the filter
//! every packet evicts the smallest counter (a heap repair and two index moves); with it, a
//! key takes a counter only when it comes back while still remembered. A real source sending
//! faster than one packet per bank-full of other keys is remembered and admitted on its
//! second packet.

use crate::prefetch::prefetch;

/// Bits of a bank per key it takes before it becomes the older one: a new key finds both of
/// its bits set by chance in a full bank in (1 - e^(-2/16))^2 ≈ 1.4 % of cases, so in about
/// 2 % of lookups over both banks (3 % at most).
const BITS_PER_KEY: usize = 16;

pub struct RecentKeys {
    banks: [Box<[u64]>; 2],
    /// The bank keys are noted in; the other is the older.
    newer: usize,
    noted: usize,
    /// Keys a bank takes before the banks turn.
    limit: usize,
    /// Word index mask (words per bank - 1).
    mask: usize,
}

impl RecentKeys {
    /// Banks of `bits` bits each (rounded up to a power of two, at least 64).
    pub fn new(bits: usize) -> RecentKeys {
        let words = (bits.max(64) / 64).next_power_of_two();
        RecentKeys {
            banks: [vec![0; words].into_boxed_slice(), vec![0; words].into_boxed_slice()],
            newer: 0,
            noted: 0,
            limit: (words * 64 / BITS_PER_KEY).max(1),
            mask: words - 1,
        }
    }

    pub fn clear(&mut self) {
        self.banks.iter_mut().for_each(|b| b.fill(0));
        self.noted = 0;
    }

    /// The two (word, bit) positions of the key of (keyed) hash `hash`, from the hash's middle
    /// bits (the low ones pick Space-Saving's index slot, the high ones the HyperLogLog register).
    #[inline]
    fn positions(&self, hash: u64) -> [(usize, u64); 2] {
        let (a, b) = (hash >> 8, hash >> 26);
        [((a >> 6) as usize & self.mask, 1u64 << (a & 63)), ((b >> 6) as usize & self.mask, 1u64 << (b & 63))]
    }

    /// Asks for the words [`seen_before`](Self::seen_before) reads for `hash`.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        for (word, _) in self.positions(hash) {
            self.banks.iter().for_each(|bank| prefetch(bank.get(word)));
        }
    }

    /// Notes the key of (keyed) hash `hash`; returns whether it was remembered already
    /// (possibly wrongly: see [`BITS_PER_KEY`]).
    #[inline]
    pub fn seen_before(&mut self, hash: u64) -> bool {
        let [(word_a, bit_a), (word_b, bit_b)] = self.positions(hash);
        let holds = |bank: &[u64]| bank[word_a] & bit_a != 0 && bank[word_b] & bit_b != 0;
        let newer = &self.banks[self.newer];
        if holds(newer) {
            return true;
        }
        let seen = holds(&self.banks[1 - self.newer]);
        let newer = &mut self.banks[self.newer];
        newer[word_a] |= bit_a;
        newer[word_b] |= bit_b;
        self.noted += 1;
        if self.noted >= self.limit {
            self.newer = 1 - self.newer;
            self.banks[self.newer].fill(0);
            self.noted = 0;
        }
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::hash::KeyedHasher;

    #[test]
    fn a_key_is_remembered_for_a_bank_full_of_others_and_forgotten_after_two() {
        let h = KeyedHasher::new(Some(5));
        let mut keys = RecentKeys::new(1 << 13); // 512 keys per bank
        assert!(!keys.seen_before(h.hash_u128(1)));
        assert!(keys.seen_before(h.hash_u128(1)));
        for i in 0..500u128 {
            keys.seen_before(h.hash_u128(1_000 + i));
        }
        assert!(keys.seen_before(h.hash_u128(1)), "forgotten within one bank-full");
        for i in 0..2_000u128 {
            keys.seen_before(h.hash_u128(10_000 + i));
        }
        assert!(!keys.seen_before(h.hash_u128(1)), "still remembered after four bank-fulls");
    }

    #[test]
    fn new_keys_pass_for_seen_in_few_cases() {
        let h = KeyedHasher::new(Some(6));
        let mut keys = RecentKeys::new(1 << 16);
        let wrong = (0..200_000u128).filter(|i| keys.seen_before(h.hash_u128(*i))).count();
        assert!(wrong < 200_000 * 3 / 100, "{wrong} new keys taken for seen ones");
    }
}
