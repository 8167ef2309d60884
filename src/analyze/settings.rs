//! What the analyzer is told: thresholds, windows, verdict ratios, limits, allowlists. The
//! analyzer's own settings type, with defaults that work without a config file; `config`
//! fills it from TOML and flags.

use super::AttackKind;
use crate::decode::{IpKey, Prefix};

/// A packet-rate threshold per attack kind, indexed by `AttackKind as usize`.
pub type KindThresholds = [u32; AttackKind::ALL.len()];

/// The built-in floor: nothing below 1,000 packets/s is ever a flood at defaults.
pub const DEFAULT_THRESHOLD_PPS: u32 = 1_000;
/// ACK segments are most of any TCP host's traffic (a 100 Mbit/s download alone receives
/// ~8,000 data segments/s and sends ~4,000 ACKs/s), so `ack_flood` starts higher.
pub const DEFAULT_ACK_THRESHOLD_PPS: u32 = 10_000;
/// Every kind's default threshold.
pub const DEFAULT_THRESHOLDS: KindThresholds = {
    let mut t = [DEFAULT_THRESHOLD_PPS; AttackKind::ALL.len()];
    t[AttackKind::AckFlood as usize] = DEFAULT_ACK_THRESHOLD_PPS;
    t
};
/// A client retrying one connection sends at most 7 SYNs (Linux retries 6 times, Windows
/// twice); a few parallel attempts stay under this. A bot flooding at a few SYNs per second
/// passes it within seconds.
pub const DEFAULT_CLIENT_UNANSWERED_SYNS: u64 = 32;

/// Carpet bombing: a flood spread over a prefix so that no single address crosses its
/// threshold is flagged against the prefix.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CarpetSettings {
    /// A prefix's threshold for a kind is this many times a host's; 0 turns carpet detection off.
    pub factor: f32,
    /// Length of the prefixes floods are summed over, IPv4 and IPv6.
    pub v4_len: u8,
    pub v6_len: u8,
}

impl Default for CarpetSettings {
    fn default() -> Self {
        CarpetSettings { factor: 10.0, v4_len: 24, v6_len: 64 }
    }
}

/// Thresholds that apply to destinations inside one prefix.
#[derive(Clone, Debug, PartialEq)]
pub struct PrefixPolicy {
    pub prefix: Prefix,
    pub thresholds: KindThresholds,
    /// Carpet bombing inside this prefix: the length of the prefixes summed over (at least the
    /// policy's own) and the factor, when they differ from `[detection]`'s.
    pub carpet_len: Option<u8>,
    pub carpet_factor: Option<f32>,
}

/// Everything the analyzer needs to decide, with defaults that work without a config file.
#[derive(Clone, Debug, PartialEq)]
pub struct DetectionSettings {
    /// Sliding window length in 100 ms ticks (default 10 = 1 s).
    pub window_ticks: u32,
    /// How long a kind's rate must stay below half its threshold before `attack_end`, in ticks.
    pub quiet_ticks: u32,
    /// Interval between `attack_update` events, in ticks.
    pub update_ticks: u32,
    pub thresholds: KindThresholds,
    /// A kind is flagged only when its rate is also this many times the victim's baseline.
    pub baseline_factor: f32,
    /// Time constant of the baseline's exponential average, in seconds.
    pub baseline_tau_s: f32,
    /// Where the victim's answers are visible, at least this share of SYNs must lack a
    /// completed handshake for a `syn_flood`.
    pub syn_unanswered_ratio: f32,
    /// Share of a victim's UDP (with ports) that must come from one reflector service for
    /// `amplification` rather than `udp_flood`.
    pub amplification_share: f32,
    /// Share of SYN-ACKs that must be unsolicited (no SYN from the victim) for `synack_flood`.
    pub synack_unsolicited_ratio: f32,
    /// Share of ACKs (`ack_flood`) or RSTs (`rst_flood`) that must come from peers the victim
    /// has no connection with.
    pub tcp_stranger_ratio: f32,
    /// Sources listed in each alert's `sources.top`.
    pub top_sources: usize,
    /// Sources tracked per attack (Space-Saving counters).
    pub tracked_sources: usize,
    /// A direct flood's source needs at least this many packets to be an offender.
    pub min_offender_packets: u64,
    /// A source the victim is talking with (a completed handshake, or segments of an
    /// established connection from the victim) is an offender of a TCP flood only when it sent
    /// more than this many SYNs beyond the handshakes it completed.
    pub client_unanswered_syns: u64,
    /// Source prefixes that cannot reach this network (besides those that can reach none):
    /// never offenders, and evidence of forged sources.
    pub bogons: Vec<Prefix>,
    /// Spoofing verdict: at least this many distinct sources ...
    pub spoofed_min_sources: u64,
    /// ... sending at most this many packets each on average.
    pub spoofed_max_packets_per_source: f64,
    pub carpet: CarpetSettings,
    pub max_victims: usize,
    pub max_trackers: usize,
    pub prefixes: Vec<PrefixPolicy>,
    pub allow_sources: Vec<Prefix>,
    pub allow_destinations: Vec<Prefix>,
    /// Key for the keyed hashes; random per process when `None`.
    pub hash_seed: Option<u64>,
}

impl Default for DetectionSettings {
    fn default() -> Self {
        DetectionSettings {
            window_ticks: 10,
            quiet_ticks: 50,
            update_ticks: 100,
            thresholds: DEFAULT_THRESHOLDS,
            baseline_factor: 4.0,
            baseline_tau_s: 600.0,
            syn_unanswered_ratio: 0.5,
            amplification_share: 0.5,
            synack_unsolicited_ratio: 0.5,
            tcp_stranger_ratio: 0.5,
            top_sources: 100,
            tracked_sources: 4096,
            min_offender_packets: 2,
            client_unanswered_syns: DEFAULT_CLIENT_UNANSWERED_SYNS,
            bogons: Vec::new(),
            spoofed_min_sources: 1000,
            spoofed_max_packets_per_source: 3.0,
            carpet: CarpetSettings::default(),
            max_victims: 16_384,
            max_trackers: 256,
            prefixes: Vec::new(),
            allow_sources: Vec::new(),
            allow_destinations: Vec::new(),
            hash_seed: None,
        }
    }
}

impl DetectionSettings {
    pub fn window_secs(&self) -> f64 {
        self.window_ticks as f64 / 10.0
    }

    /// The thresholds for a destination: the longest matching prefix's, else the global ones.
    pub fn thresholds_for(&self, dst: IpKey) -> &KindThresholds {
        self.prefixes
            .iter()
            .filter(|p| p.prefix.contains(dst))
            .max_by_key(|p| p.prefix.bits())
            .map(|p| &p.thresholds)
            .unwrap_or(&self.thresholds)
    }
}
