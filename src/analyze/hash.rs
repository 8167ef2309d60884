//! Keyed hashing for every table and sketch that attacker-chosen keys reach.
//!
//! An unkeyed hash lets an attacker pick sources or victims that collide and turn the
//! detector's own tables into the bottleneck. The key is random per process unless a seed
//! is given (reproducible tests). The mixing is the folded 64×64→128 multiply used by
//! wyhash/foldhash: a few cycles per key, well spread in the high and low bits.

use crate::decode::IpKey;
use std::hash::{BuildHasher, Hasher};

#[derive(Clone, Copy, Debug)]
pub struct KeyedHasher {
    k: [u64; 4],
}

#[inline(always)]
fn folded_multiply(a: u64, b: u64) -> u64 {
    let p = (a as u128).wrapping_mul(b as u128);
    (p as u64) ^ ((p >> 64) as u64)
}

/// SplitMix64: expands one seed into independent-looking key words.
fn splitmix(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

impl KeyedHasher {
    /// A hasher keyed from `seed`, or from [`random_seed`] when `None`.
    pub fn new(seed: Option<u64>) -> KeyedHasher {
        let mut state = seed.unwrap_or_else(random_seed);
        KeyedHasher { k: [splitmix(&mut state), splitmix(&mut state), splitmix(&mut state), splitmix(&mut state) | 1] }
    }

    #[inline(always)]
    pub fn hash_u128(&self, x: u128) -> u64 {
        let a = folded_multiply((x as u64) ^ self.k[0], ((x >> 64) as u64) ^ self.k[1]);
        folded_multiply(a ^ self.k[2], self.k[3])
    }

    /// One multiply: for keys already folded to 64 bits on a per-packet path.
    #[inline(always)]
    pub fn hash_u64(&self, x: u64) -> u64 {
        folded_multiply(x ^ self.k[0], self.k[3])
    }

    #[inline(always)]
    pub fn hash_ip(&self, ip: IpKey) -> u64 {
        self.hash_u128(ip.0)
    }

    /// Hash of a TCP connection seen from the server (`server`, `server_port`) with an
    /// expected acknowledgment number, for the handshake table.
    #[inline(always)]
    pub fn hash_handshake(&self, server: IpKey, client: IpKey, ports: u32, ack: u32) -> u64 {
        let a = self.hash_u128(server.0 ^ client.0.rotate_left(64));
        folded_multiply(a ^ self.k[1], (((ports as u64) << 32) | ack as u64) ^ self.k[0])
    }

    /// Hash of an ordered pair of hosts, for the acquaintance table. Each address is hashed
    /// on its own first: no choice of addresses collides whatever the key.
    #[inline(always)]
    pub fn hash_pair(&self, host: IpKey, peer: IpKey) -> u64 {
        folded_multiply(self.hash_u128(host.0) ^ self.k[3], self.hash_u128(peer.0) ^ self.k[2])
    }

    /// Hash of one TCP connection seen from `host`, for the acquaintance table (distinct from
    /// every [`hash_pair`](Self::hash_pair) of the same hosts).
    #[inline(always)]
    pub fn hash_connection(&self, (host, host_port): (IpKey, u16), (peer, peer_port): (IpKey, u16)) -> u64 {
        let ports = ((host_port as u64) << 16 | peer_port as u64) ^ self.k[0];
        folded_multiply(self.hash_pair(host, peer) ^ ports, self.k[1] | 1)
    }
}

/// A seed from the process's random state.
pub fn random_seed() -> u64 {
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x666c_6f6f_6477_6174);
    h.finish()
}

/// Keys the sketches can count: anything the keyed hash can hash.
pub trait SketchKey: Copy + Eq + Ord + Default {
    fn keyed_hash(&self, hasher: &KeyedHasher) -> u64;
}

impl SketchKey for IpKey {
    #[inline(always)]
    fn keyed_hash(&self, hasher: &KeyedHasher) -> u64 {
        hasher.hash_ip(*self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn different_seeds_give_different_hashes_and_same_seed_the_same() {
        let a = KeyedHasher::new(Some(1));
        let b = KeyedHasher::new(Some(2));
        let a2 = KeyedHasher::new(Some(1));
        assert_eq!(a.hash_u128(42), a2.hash_u128(42));
        assert_ne!(a.hash_u128(42), b.hash_u128(42));
    }

    #[test]
    fn sequential_keys_spread_over_buckets() {
        let h = KeyedHasher::new(Some(7));
        let mut buckets = [0u32; 64];
        for i in 0..64_000u128 {
            buckets[(h.hash_u128(i) >> 58) as usize] += 1;
        }
        for b in buckets {
            assert!((800..1200).contains(&b), "bucket count {b} far from 1000");
        }
    }
}
