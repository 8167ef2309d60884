//! Bounded-memory summaries of attacker-controlled streams.

mod hyperloglog;
mod recent_keys;
mod space_saving;
mod tally;

pub use hyperloglog::{HyperLogLog, PrecisionMismatch};
pub use recent_keys::RecentKeys;
pub use space_saving::{Counted, HeavyHitters, SpaceSaving};
pub use tally::{PortTally, Tally, PORT_COUNTERS};

/// What the Space-Saving property tests of both sketches share.
#[cfg(test)]
mod test_util {
    use super::Counted;
    use capgen::rng::Rng;
    use proptest::prelude::*;
    use std::collections::HashMap;
    use std::fmt::Debug;
    use std::hash::Hash;

    /// `noise` plus each heavy key its number of times, in a deterministic shuffle so the heavy
    /// keys arrive interleaved with the noise; with each key's true count.
    pub fn shuffled_stream<K: Copy + Eq + Hash>(
        noise: &[K],
        heavy: &[(K, usize)],
        seed: u64,
    ) -> (Vec<K>, HashMap<K, u64>) {
        let mut stream = noise.to_vec();
        for (key, times) in heavy {
            stream.extend(std::iter::repeat_n(*key, *times));
        }
        let mut rng = Rng::new(seed);
        for i in (1..stream.len()).rev() {
            stream.swap(i, rng.index(i + 1));
        }
        let mut truth = HashMap::new();
        for k in &stream {
            *truth.entry(*k).or_default() += 1;
        }
        (stream, truth)
    }

    /// The Space-Saving guarantees with `counters` counters after a stream of `truth`'s
    /// counts: every tracked count overestimates by at most its error, every error is at most
    /// N/m, and every key more frequent than N/m is tracked (`is_tracked` asks the sketch).
    pub fn check_guarantees<K: Copy + Eq + Hash + Debug>(
        tracked: &[Counted<K>],
        truth: &HashMap<K, u64>,
        counters: usize,
        is_tracked: impl Fn(K) -> bool,
    ) -> Result<(), TestCaseError> {
        let n: u64 = truth.values().sum();
        let bound = n / counters as u64;
        for c in tracked {
            let real = truth[&c.key];
            prop_assert!(c.count >= real, "{:?}: count {} below true {}", c.key, c.count, real);
            prop_assert!(
                c.count - c.error <= real,
                "{:?}: lower bound {} above true {}",
                c.key,
                c.count - c.error,
                real
            );
            prop_assert!(c.error <= bound, "{:?}: error {} above N/m = {}", c.key, c.error, bound);
        }
        for (key, real) in truth {
            if *real > bound {
                prop_assert!(is_tracked(*key), "frequent key {key:?} ({real} > {bound}) lost");
            }
        }
        Ok(())
    }
}
