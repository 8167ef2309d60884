//! `capgen`: floodwatch's deterministic traffic generator: frame builders, traffic sources, the
//! scenarios and the capture files with their ground truth. It does not depend on floodwatch (its
//! own pcap and pcapng writers and time formatting), so the captures and truth that floodwatch is
//! tested against share no code with it.
//!
//! Everything derives from [`SEED`] through per-scenario streams, and only integer arithmetic
//! is used, so the same build writes byte-identical files every time.

#![forbid(unsafe_code)]

pub mod adversarial;
pub mod bench;
pub mod benign;
pub mod exchanges;
pub mod export;
pub mod files;
pub mod floods;
pub mod frames;
pub mod hand;
pub mod hosts;
pub mod netflow;
pub mod payloads;
pub mod pcap;
pub mod pcapng;
pub mod rng;
pub mod scenarios;
pub mod sessions;
pub mod sflow;
pub mod time;
pub mod traffic;
pub mod truth;

pub use files::{write_all, write_scenario};
pub use scenarios::{find, Scenario, SCENARIOS};

/// The seed of every generated capture.
pub const SEED: u64 = 7;

#[cfg(test)]
mod tests;
