//! Detection settings: embedded defaults, the TOML config file and CLI overrides.
//!
//! Everything has a default, so floodwatch runs with no config file. A config file can
//! override thresholds globally, per attack kind and per destination prefix, and holds the
//! source and destination allowlists.

use crate::analyze::AttackKind;
use crate::decode::IpKey;
use crate::output::blocklist::DEFAULT_TTL_S;
use crate::output::evidence::EvidenceOptions;
use crate::output::hook::HookOptions;
use crate::output::metrics::listen_addr;
use crate::output::sink::SinkSpec;
use crate::output::{BlocklistOptions, OutputOptions};
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

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

/// An IP prefix (IPv4 stored v4-mapped, so one comparison serves both families).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    network: u128,
    /// Prefix length in the 128-bit key space.
    len: u8,
}

impl Prefix {
    pub fn parse(text: &str) -> Result<Prefix, String> {
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let ip: IpAddr = addr.trim().parse().map_err(|_| format!("`{text}` is not an IP address or prefix"))?;
        let (max, offset) = if ip.is_ipv4() { (32u8, 96u8) } else { (128u8, 0u8) };
        let len = match len {
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("`{text}`: prefix length must be 0..={max}"))?,
            None => max,
        };
        let len = len + offset;
        let network = IpKey::from_ip(ip).0 & Self::mask(len);
        Ok(Prefix { network, len })
    }

    fn mask(len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            u128::MAX << (128 - len as u32)
        }
    }

    #[inline]
    pub fn contains(&self, ip: IpKey) -> bool {
        ip.0 & Self::mask(self.len) == self.network
    }

    /// Prefix length in the 128-bit key space (an IPv4 /24 is 120).
    pub fn bits(&self) -> u8 {
        self.len
    }

    /// The length as written (an IPv4 /24 is 24), and the family's longest.
    pub fn family_len(&self) -> (u8, u8) {
        if IpKey(self.network).is_v4() && self.len >= 96 {
            (self.len - 96, 32)
        } else {
            (self.len, 128)
        }
    }

    /// The prefix of `len` bits (in `ip`'s family) that holds `ip`.
    pub fn of(ip: IpAddr, len: u8) -> Prefix {
        let (max, offset) = if ip.is_ipv4() { (32u8, 96u8) } else { (128u8, 0u8) };
        let len = len.min(max) + offset;
        Prefix { network: IpKey::from_ip(ip).0 & Self::mask(len), len }
    }

    /// The network of `ip` under a mask of `bits` key-space bits.
    #[inline]
    pub fn network_of(ip: IpKey, bits: u8) -> IpKey {
        IpKey(ip.0 & Self::mask(bits))
    }
}

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

    /// Parses TOML text on top of the defaults (detection settings only).
    pub fn from_toml(text: &str) -> Result<DetectionSettings, String> {
        Config::from_toml(text).map(|c| c.detection)
    }

    fn from_sections(file: &ConfigFile) -> Result<DetectionSettings, String> {
        let mut s = DetectionSettings::default();
        if let Some(d) = &file.detection {
            if let Some(w) = &d.window {
                s.window_ticks = window_ticks(w).map_err(|e| format!("detection.window: {e}"))?;
            }
            if let Some(q) = d.quiet_s {
                s.quiet_ticks = secs_to_ticks("detection.quiet_s", q, 0.1, 3600.0)?;
            }
            if let Some(u) = d.update_interval_s {
                s.update_ticks = secs_to_ticks("detection.update_interval_s", u, 0.1, 86_400.0)?;
            }
            set_in_range(&mut s.baseline_factor, d.baseline_factor, "detection.baseline_factor", 1.0, 1000.0)?;
            set_in_range(&mut s.baseline_tau_s, d.baseline_tau_s, "detection.baseline_tau_s", 1.0, 1.0e7)?;
            set_in_range(
                &mut s.syn_unanswered_ratio,
                d.syn_unanswered_ratio,
                "detection.syn_unanswered_ratio",
                0.0,
                1.0,
            )?;
            set_in_range(&mut s.amplification_share, d.amplification_share, "detection.amplification_share", 0.0, 1.0)?;
            set_in_range(
                &mut s.synack_unsolicited_ratio,
                d.synack_unsolicited_ratio,
                "detection.synack_unsolicited_ratio",
                0.0,
                1.0,
            )?;
            set_in_range(&mut s.tcp_stranger_ratio, d.tcp_stranger_ratio, "detection.tcp_stranger_ratio", 0.0, 1.0)?;
            if let Some(n) = d.top_sources {
                s.top_sources = n;
            }
            if let Some(n) = d.min_offender_packets {
                s.min_offender_packets = n.max(1);
            }
            if let Some(n) = d.client_unanswered_syns {
                s.client_unanswered_syns = n;
            }
            s.bogons = parse_prefixes("detection.bogons", &d.bogons)?;
            if let Some(n) = d.spoofed_min_sources {
                s.spoofed_min_sources = n;
            }
            if let Some(x) = d.spoofed_max_packets_per_source {
                if x.is_nan() || x <= 0.0 {
                    return Err("detection.spoofed_max_packets_per_source must be > 0".into());
                }
                s.spoofed_max_packets_per_source = x;
            }
            set_in_range(&mut s.carpet.factor, d.carpet_factor, "detection.carpet_factor", 0.0, 1.0e6)?;
            if let Some(l) = d.carpet_prefix_v4 {
                s.carpet.v4_len = in_range("detection.carpet_prefix_v4", l, 8, 32)?;
            }
            if let Some(l) = d.carpet_prefix_v6 {
                s.carpet.v6_len = in_range("detection.carpet_prefix_v6", l, 16, 128)?;
            }
        }
        if let Some(l) = &file.limits {
            if let Some(n) = l.max_victims {
                s.max_victims = in_range("limits.max_victims", n, 64, 16 << 20)?;
            }
            if let Some(n) = l.max_trackers {
                s.max_trackers = in_range("limits.max_trackers", n, 1, 65_000)?;
            }
            if let Some(n) = l.tracked_sources {
                s.tracked_sources = in_range("limits.tracked_sources", n, 16, 1 << 20)?;
            }
        }
        if let Some(t) = &file.thresholds {
            t.apply("thresholds", &mut s.thresholds)?;
        }
        for (i, p) in file.prefix.iter().enumerate() {
            let prefix = Prefix::parse(&p.prefix).map_err(|e| format!("prefix[{i}].prefix: {e}"))?;
            let mut thresholds = s.thresholds;
            p.thresholds.apply(&format!("prefix[{i}]"), &mut thresholds)?;
            let (own_len, max) = prefix.family_len();
            let carpet_len = p
                .carpet_prefix
                .map(|l| in_range(&format!("prefix[{i}].carpet_prefix"), l, own_len, max))
                .transpose()?;
            let mut factor = None;
            if p.carpet_factor.is_some() {
                let mut f = s.carpet.factor;
                set_in_range(&mut f, p.carpet_factor, &format!("prefix[{i}].carpet_factor"), 0.0, 1.0e6)?;
                factor = Some(f);
            }
            s.prefixes.push(PrefixPolicy { prefix, thresholds, carpet_len, carpet_factor: factor });
        }
        if let Some(a) = &file.allowlist {
            s.allow_sources = parse_prefixes("allowlist.sources", &a.sources)?;
            s.allow_destinations = parse_prefixes("allowlist.destinations", &a.destinations)?;
        }
        Ok(s)
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

/// A window length such as `1s`, `500ms` or `2.5s` (a bare number is seconds), in 100 ms
/// ticks: a multiple of 100 ms between 100 ms and 10 s (each victim keeps one counter set
/// per tick of the window, so the window bounds memory).
pub fn window_ticks(text: &str) -> Result<u32, String> {
    let t = text.trim();
    let (number, scale) = if let Some(n) = t.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = t.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (t, 1000.0)
    };
    let ms = number
        .trim()
        .parse::<f64>()
        .map(|n| n * scale)
        .map_err(|_| format!("`{text}` is not a duration like 1s or 500ms"))?;
    let ticks = (ms / 100.0).round();
    if !(1.0..=100.0).contains(&ticks) || (ticks * 100.0 - ms).abs() > 1e-6 {
        return Err(format!("`{text}`: must be a multiple of 100ms between 100ms and 10s"));
    }
    Ok(ticks as u32)
}

fn secs_to_ticks(key: &str, secs: f64, min: f64, max: f64) -> Result<u32, String> {
    if !(min..=max).contains(&secs) {
        return Err(format!("{key} = {secs}: must be between {min} and {max} seconds"));
    }
    Ok((secs * 10.0).round() as u32)
}

fn set_in_range(target: &mut f32, value: Option<f64>, key: &str, min: f64, max: f64) -> Result<(), String> {
    if let Some(v) = value {
        if !(min..=max).contains(&v) {
            return Err(format!("{key} = {v}: must be between {min} and {max}"));
        }
        *target = v as f32;
    }
    Ok(())
}

/// `n` for `key` if it is between `min` and `max`.
fn in_range<T: PartialOrd + Copy + std::fmt::Display>(key: &str, n: T, min: T, max: T) -> Result<T, String> {
    if !(min..=max).contains(&n) {
        return Err(format!("{key} = {n}: must be between {min} and {max}"));
    }
    Ok(n)
}

fn parse_prefixes(key: &str, texts: &[String]) -> Result<Vec<Prefix>, String> {
    texts.iter().enumerate().map(|(i, t)| Prefix::parse(t).map_err(|e| format!("{key}[{i}]: {e}"))).collect()
}

/// Which live capture backend reads the interface.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CaptureBackend {
    /// AF_PACKET with a memory-mapped TPACKET_V3 receive ring (`libc` only).
    #[default]
    Tpacket,
    /// AF_PACKET through `pnet`, one `recvfrom` per packet: the fallback.
    AfPacket,
    /// libpcap through the `pcap` crate (build with `--features libpcap`): BPF filters,
    /// buffer size, kernel drop counters.
    Libpcap,
}

/// The `[capture]` section: what the live daemon listens on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureSettings {
    pub interface: Option<String>,
    #[serde(default)]
    pub backend: CaptureBackend,
    /// BPF filter expression (libpcap backend).
    pub filter: Option<String>,
    /// Kernel capture buffer in MiB (libpcap backend).
    pub buffer_mb: Option<u32>,
    /// Receive ring of the tpacket backend: block size in KiB (a multiple of the page
    /// size; default 1024), number of blocks (default 64), and how long a block that is not
    /// full waits before it is handed over, in ms (default 10).
    pub ring_block_kib: Option<u32>,
    pub ring_blocks: Option<u32>,
    pub ring_block_timeout_ms: Option<u32>,
    /// Promiscuous mode (tpacket backend; default on).
    pub promiscuous: Option<bool>,
    /// Capture threads, each with its own ring in one PACKET_FANOUT group (tpacket backend;
    /// default 1).
    pub threads: Option<u16>,
}

/// Operational log format (the alert stream is separate).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    #[default]
    Human,
    Json,
}

/// The `[output]` section; command-line flags override each key.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSettings {
    /// Alert sinks (see `SinkSpec`): "-", a file path, unix:, tcp://, syslog+udp://, ...
    #[serde(default)]
    pub alerts: Vec<String>,
    /// Seconds alert sinks (files too) keep trying to deliver at exit (default 5).
    pub drain_timeout_s: Option<f64>,
    pub blocklist: Option<PathBuf>,
    /// plain (default), nft, ipset or json.
    pub blocklist_format: Option<String>,
    pub blocklist_ttl_s: Option<u64>,
    pub evidence_dir: Option<PathBuf>,
    /// Packets per attack (default 10,000).
    pub evidence_packets: Option<u64>,
    /// Disk cap for all evidence files in MiB (default 1024).
    pub evidence_max_mb: Option<u64>,
    /// Prometheus endpoint: PORT (on 127.0.0.1) or IP:PORT.
    pub metrics: Option<String>,
    /// Command run per attack start and end, as argv (no shell).
    #[serde(default)]
    pub on_attack: Vec<String>,
    pub on_attack_timeout_s: Option<f64>,
    pub on_attack_per_minute: Option<u32>,
}

/// Defaults of the `[output]` section.
pub const DEFAULT_DRAIN_S: f64 = 5.0;
pub const DEFAULT_EVIDENCE_PACKETS: u64 = 10_000;
pub const DEFAULT_EVIDENCE_MAX_MB: u64 = 1024;
pub const DEFAULT_HOOK_TIMEOUT_S: f64 = 10.0;
pub const DEFAULT_HOOK_PER_MINUTE: u32 = 10;

impl OutputSettings {
    /// The checked options; errors name the key. `allow` (the source allowlist) is never
    /// blocklisted. No alert sink at all means standard output.
    pub fn options(&self, allow: &[Prefix]) -> Result<OutputOptions, String> {
        let seconds = |key: &str, v: Option<f64>, default: f64| -> Result<Duration, String> {
            let v = v.unwrap_or(default);
            if v.is_finite() && (0.0..=86_400.0).contains(&v) {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(format!("output.{key}: {v} is not between 0 and 86400 seconds"))
            }
        };
        let alerts: Vec<String> = if self.alerts.is_empty() { vec!["-".into()] } else { self.alerts.clone() };
        let sinks = alerts
            .iter()
            .enumerate()
            .map(|(i, a)| a.parse::<SinkSpec>().map_err(|e| format!("output.alerts[{i}]: {e}")))
            .collect::<Result<Vec<_>, _>>()?;
        let blocklist = match &self.blocklist {
            None => None,
            Some(path) => Some(BlocklistOptions {
                path: path.clone(),
                format: self
                    .blocklist_format
                    .as_deref()
                    .unwrap_or("plain")
                    .parse()
                    .map_err(|e| format!("output.blocklist_format: {e}"))?,
                ttl_s: match self.blocklist_ttl_s.unwrap_or(DEFAULT_TTL_S) {
                    0 => return Err("output.blocklist_ttl_s: must be at least 1".into()),
                    t => t,
                },
                allow: allow.to_vec(),
            }),
        };
        let evidence = match &self.evidence_dir {
            None => None,
            Some(dir) => Some(EvidenceOptions {
                dir: dir.clone(),
                max_packets: match self.evidence_packets.unwrap_or(DEFAULT_EVIDENCE_PACKETS) {
                    0 => return Err("output.evidence_packets: must be at least 1".into()),
                    n => n,
                },
                max_bytes: self.evidence_max_mb.unwrap_or(DEFAULT_EVIDENCE_MAX_MB).saturating_mul(1 << 20),
            }),
        };
        let metrics =
            self.metrics.as_deref().map(listen_addr).transpose().map_err(|e| format!("output.metrics: {e}"))?;
        let hook = if self.on_attack.is_empty() {
            None
        } else {
            let h = HookOptions {
                argv: self.on_attack.clone(),
                timeout: seconds("on_attack_timeout_s", self.on_attack_timeout_s, DEFAULT_HOOK_TIMEOUT_S)?,
                per_minute: self.on_attack_per_minute.unwrap_or(DEFAULT_HOOK_PER_MINUTE),
            };
            h.validate().map_err(|e| format!("output.{e}"))?;
            Some(h)
        };
        Ok(OutputOptions {
            sinks,
            drain: seconds("drain_timeout_s", self.drain_timeout_s, DEFAULT_DRAIN_S)?,
            blocklist,
            evidence,
            metrics,
            hook,
        })
    }
}

/// The `[log]` section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    #[serde(default)]
    pub format: LogFormat,
}

/// A whole config file: detection settings plus what only the daemon uses.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Config {
    pub detection: DetectionSettings,
    pub capture: CaptureSettings,
    pub output: OutputSettings,
    pub log: LogSettings,
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| ConfigError { path: path.display().to_string(), message: e.to_string() })?;
        Self::from_toml(&text).map_err(|message| ConfigError { path: path.display().to_string(), message })
    }

    /// Parses TOML text on top of the defaults; errors name the key (and the line, for syntax
    /// and type errors).
    pub fn from_toml(text: &str) -> Result<Config, String> {
        let file: ConfigFile = toml::from_str(text).map_err(|e| e.to_string().trim_end().to_string())?;
        Ok(Config {
            detection: DetectionSettings::from_sections(&file).map_err(|e| match line_of(text, &e) {
                Some(line) => format!("{e} (line {line})"),
                None => e,
            })?,
            capture: file.capture.clone().unwrap_or_default(),
            output: match &file.output {
                Some(o) => {
                    o.options(&[]).map_err(|e| match line_of(text, &e) {
                        Some(line) => format!("{e} (line {line})"),
                        None => e,
                    })?;
                    o.clone()
                }
                None => OutputSettings::default(),
            },
            log: file.log.clone().unwrap_or_default(),
        })
    }
}

/// The line of the key a validation error names (`detection.window: ...`,
/// `prefix[1].udp_flood ...`, `allowlist.sources[0]: ...`), for check-config's messages.
fn line_of(text: &str, error: &str) -> Option<usize> {
    let path = error.split([':', ' ']).next()?;
    let (section, leaf) = path.rsplit_once('.')?;
    let leaf = leaf.split('[').next()?;
    let (name, index) = match section.split_once('[') {
        Some((n, rest)) => (n, rest.trim_end_matches(']').parse::<usize>().ok()?),
        None => (section, 0),
    };
    let mut occurrence = 0;
    let mut inside = false;
    for (i, line) in text.lines().enumerate() {
        let t = line.trim();
        if t.starts_with('[') {
            inside = t.trim_matches(|c| c == '[' || c == ']').trim() == name && {
                occurrence += 1;
                occurrence - 1 == index
            };
        } else if inside && t.split('=').next().map(str::trim) == Some(leaf) {
            return Some(i + 1);
        }
    }
    None
}

/// A config file that could not be used.
#[derive(Debug)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config {}: {}", self.path, self.message)
    }
}

impl std::error::Error for ConfigError {}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    capture: Option<CaptureSettings>,
    output: Option<OutputSettings>,
    log: Option<LogSettings>,
    detection: Option<DetectionSection>,
    limits: Option<LimitsSection>,
    thresholds: Option<ThresholdSection>,
    #[serde(default)]
    prefix: Vec<PrefixSection>,
    allowlist: Option<AllowlistSection>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DetectionSection {
    window: Option<String>,
    quiet_s: Option<f64>,
    update_interval_s: Option<f64>,
    baseline_factor: Option<f64>,
    baseline_tau_s: Option<f64>,
    syn_unanswered_ratio: Option<f64>,
    amplification_share: Option<f64>,
    synack_unsolicited_ratio: Option<f64>,
    tcp_stranger_ratio: Option<f64>,
    top_sources: Option<usize>,
    min_offender_packets: Option<u64>,
    client_unanswered_syns: Option<u64>,
    #[serde(default)]
    bogons: Vec<String>,
    spoofed_min_sources: Option<u64>,
    spoofed_max_packets_per_source: Option<f64>,
    carpet_factor: Option<f64>,
    carpet_prefix_v4: Option<u8>,
    carpet_prefix_v6: Option<u8>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsSection {
    max_victims: Option<usize>,
    max_trackers: Option<usize>,
    tracked_sources: Option<usize>,
}

/// Packets/s per kind; `all` sets every kind first.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct ThresholdSection {
    all: Option<u32>,
    syn_flood: Option<u32>,
    synack_flood: Option<u32>,
    udp_flood: Option<u32>,
    amplification: Option<u32>,
    icmp_flood: Option<u32>,
    fragment_flood: Option<u32>,
    ack_flood: Option<u32>,
    rst_flood: Option<u32>,
    tcp_flood: Option<u32>,
}

impl ThresholdSection {
    fn apply(&self, key: &str, t: &mut KindThresholds) -> Result<(), String> {
        if let Some(v) = self.all {
            *t = [v; AttackKind::ALL.len()];
        }
        for (kind, value) in [
            (AttackKind::SynFlood, self.syn_flood),
            (AttackKind::SynAckFlood, self.synack_flood),
            (AttackKind::UdpFlood, self.udp_flood),
            (AttackKind::Amplification, self.amplification),
            (AttackKind::IcmpFlood, self.icmp_flood),
            (AttackKind::FragmentFlood, self.fragment_flood),
            (AttackKind::AckFlood, self.ack_flood),
            (AttackKind::RstFlood, self.rst_flood),
            (AttackKind::TcpFlood, self.tcp_flood),
        ] {
            if let Some(v) = value {
                t[kind as usize] = v;
            }
        }
        if let Some(k) = AttackKind::ALL.iter().find(|k| t[**k as usize] == 0) {
            return Err(format!("{key}.{}: a threshold must be at least 1 packet/s", k.name()));
        }
        Ok(())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PrefixSection {
    prefix: String,
    carpet_prefix: Option<u8>,
    carpet_factor: Option<f64>,
    #[serde(flatten)]
    thresholds: ThresholdSection,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllowlistSection {
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    destinations: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_config_is_the_defaults() {
        assert_eq!(DetectionSettings::from_toml("").unwrap(), DetectionSettings::default());
    }

    #[test]
    fn per_kind_and_prefix_thresholds() {
        let s = DetectionSettings::from_toml(
            r#"
            [thresholds]
            syn_flood = 5000
            [[prefix]]
            prefix = "198.51.100.0/24"
            udp_flood = 90000
            [allowlist]
            sources = ["192.0.2.1", "2001:db8::/32"]
            "#,
        )
        .unwrap();
        let inside = IpKey::from_v4([198, 51, 100, 7]);
        let outside = IpKey::from_v4([198, 51, 101, 7]);
        assert_eq!(s.thresholds_for(inside)[AttackKind::UdpFlood as usize], 90000);
        assert_eq!(s.thresholds_for(inside)[AttackKind::SynFlood as usize], 5000);
        assert_eq!(s.thresholds_for(outside)[AttackKind::UdpFlood as usize], 1000);
        assert!(s.allow_sources[1].contains(IpKey::from_ip("2001:db8::99".parse().unwrap())));
        assert!(!s.allow_sources[0].contains(IpKey::from_v4([192, 0, 2, 2])));
    }

    #[test]
    fn errors_name_the_key() {
        let e = DetectionSettings::from_toml("[detection]\nwindow = \"150ms\"\n").unwrap_err();
        assert!(e.contains("detection.window") && e.ends_with("(line 2)"), "{e}");
        let e = DetectionSettings::from_toml("[[prefix]]\nprefix = \"10.0.0.0/8\"\n[[prefix]]\nprefix = \"x\"\n")
            .unwrap_err();
        assert!(e.starts_with("prefix[1].prefix") && e.ends_with("(line 4)"), "{e}");
        assert_eq!(DetectionSettings::from_toml("[detection]\nwindow = \"2.5s\"\n").unwrap().window_ticks, 25);
        let e = DetectionSettings::from_toml("[detection]\nwindow_ms = 1\n").unwrap_err();
        assert!(e.contains("window") && e.contains("line 2"), "{e}");
        let e = DetectionSettings::from_toml("[allowlist]\nsources = [\"10.0.0.0/33\"]\n").unwrap_err();
        assert!(e.contains("allowlist.sources[0]"), "{e}");
    }
}
