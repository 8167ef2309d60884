//! Detection settings: embedded defaults, the TOML config file and CLI overrides.
//!
//! Everything has a default, so floodwatch runs with no config file. A config file can
//! override thresholds globally, per attack kind and per destination prefix, and holds the
//! source and destination allowlists.

use crate::analyze::{AttackKind, DetectionSettings, KindThresholds, PrefixPolicy};
use crate::capture::live::CaptureSettings;
use crate::decode::Prefix;
use crate::output::blocklist::DEFAULT_TTL_S;
use crate::output::evidence::EvidenceOptions;
use crate::output::hook::HookOptions;
use crate::output::metrics::listen_addr;
use crate::output::mitigation::route::Action;
use crate::output::mitigation::{BlackholePolicy, MitigationOptions};
use crate::output::sink::SinkSpec;
use crate::output::{BlocklistOptions, OutputOptions};
use crate::telemetry::netflow::MAX_SAMPLING_RATE;
use crate::telemetry::{Exporters, SamplingRates, TelemetrySettings};
use serde::Deserialize;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// A key of the config file as the user writes it: `detection.window`, `prefix[1].udp_flood`,
/// `allowlist.sources[0]`, `output.alerts[2]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    pub section: &'static str,
    /// Which table of an array of tables (`[[prefix]]`).
    pub table: Option<u32>,
    pub name: &'static str,
    /// Which element of an array value.
    pub element: Option<u32>,
}

impl Key {
    pub const fn of(section: &'static str, name: &'static str) -> Key {
        Key { section, table: None, name, element: None }
    }

    fn in_table(self, table: usize) -> Key {
        Key { table: Some(table as u32), ..self }
    }

    fn element(self, element: usize) -> Key {
        Key { element: Some(element as u32), ..self }
    }

    /// The key within its section (`alerts[0]`): how an `[output]` key set by a command-line
    /// flag is named.
    pub fn name_in_section(&self) -> String {
        match self.element {
            Some(i) => format!("{}[{i}]", self.name),
            None => self.name.to_string(),
        }
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.section)?;
        if let Some(t) = self.table {
            write!(f, "[{t}]")?;
        }
        write!(f, ".{}", self.name_in_section())
    }
}

/// What is wrong with a setting's value.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// A number outside the range the setting accepts (`allowed`: "between 1 and 10 seconds").
    OutOfRange { value: String, allowed: String },
    /// A number below the least the setting accepts (`least`: "at least 1", "above 0").
    TooSmall { least: &'static str },
    /// A value its own parser refused, with the parser's reason.
    Invalid(String),
}

/// A setting that cannot be used: which key, on which line of the file (when it came from
/// one), and what is wrong.
#[derive(Clone, Debug, PartialEq)]
pub struct SettingError {
    pub key: Key,
    pub line: Option<usize>,
    pub problem: Problem,
}

impl SettingError {
    fn new(key: Key, problem: Problem) -> SettingError {
        SettingError { key, line: None, problem }
    }

    fn invalid(key: Key, reason: impl Into<String>) -> SettingError {
        SettingError::new(key, Problem::Invalid(reason.into()))
    }

    /// What follows the key in the message (`: must be at least 1`), for a caller that names
    /// the key its own way (a flag).
    pub fn problem_text(&self) -> String {
        match &self.problem {
            Problem::OutOfRange { value, allowed } => format!(" = {value}: must be {allowed}"),
            Problem::TooSmall { least } => format!(": must be {least}"),
            Problem::Invalid(reason) => format!(": {reason}"),
        }
    }
}

impl fmt::Display for SettingError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.key, self.problem_text())?;
        if let Some(line) = self.line {
            write!(f, " (line {line})")?;
        }
        Ok(())
    }
}

impl std::error::Error for SettingError {}

/// Why a config text was refused.
#[derive(Clone, Debug, PartialEq)]
pub enum Refused {
    /// Not TOML, an unknown key or a value of the wrong type (the TOML parser's message, which
    /// gives the line).
    Syntax(String),
    Setting(Box<SettingError>),
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Syntax(message) => f.write_str(message),
            Refused::Setting(e) => e.fmt(f),
        }
    }
}

/// The line on which `key` is written in `text`, from the spans of the parsed document.
fn line_of(text: &str, key: &Key) -> Option<usize> {
    let doc = toml_edit::ImDocument::parse(text).ok()?;
    // A section such as `mitigation.rtbh` is a table inside a table.
    let mut names = key.section.split('.');
    let mut section = doc.as_table().get(names.next()?)?;
    for name in names {
        section = section.as_table_like()?.get(name)?;
    }
    let table: &dyn toml_edit::TableLike = match key.table {
        None => section.as_table_like()?,
        Some(i) => section.as_array_of_tables()?.get(i as usize)?,
    };
    let start = table.key(key.name)?.span()?.start;
    Some(text.get(..start)?.matches('\n').count() + 1)
}

/// The `[detection]`, `[limits]`, `[thresholds]`, `[[prefix]]` and `[allowlist]` sections on
/// top of the analyzer's defaults.
fn detection_settings(file: &ConfigFile) -> Result<DetectionSettings, SettingError> {
    let mut s = DetectionSettings::default();
    if let Some(d) = &file.detection {
        if let Some(w) = &d.window {
            s.window_ticks = window_ticks(w).map_err(|e| SettingError::invalid(Key::of("detection", "window"), e))?;
        }
        if let Some(q) = d.quiet_s {
            s.quiet_ticks = secs_to_ticks(Key::of("detection", "quiet_s"), q, 0.1, 3600.0)?;
        }
        if let Some(u) = d.update_interval_s {
            s.update_ticks = secs_to_ticks(Key::of("detection", "update_interval_s"), u, 0.1, 86_400.0)?;
        }
        set_in_range(&mut s.baseline_factor, d.baseline_factor, Key::of("detection", "baseline_factor"), 1.0, 1000.0)?;
        set_in_range(&mut s.baseline_tau_s, d.baseline_tau_s, Key::of("detection", "baseline_tau_s"), 1.0, 1.0e7)?;
        set_in_range(
            &mut s.syn_unanswered_ratio,
            d.syn_unanswered_ratio,
            Key::of("detection", "syn_unanswered_ratio"),
            0.0,
            1.0,
        )?;
        set_in_range(
            &mut s.amplification_share,
            d.amplification_share,
            Key::of("detection", "amplification_share"),
            0.0,
            1.0,
        )?;
        set_in_range(
            &mut s.synack_unsolicited_ratio,
            d.synack_unsolicited_ratio,
            Key::of("detection", "synack_unsolicited_ratio"),
            0.0,
            1.0,
        )?;
        set_in_range(
            &mut s.tcp_stranger_ratio,
            d.tcp_stranger_ratio,
            Key::of("detection", "tcp_stranger_ratio"),
            0.0,
            1.0,
        )?;
        if let Some(n) = d.top_sources {
            s.top_sources = n;
        }
        if let Some(n) = d.min_offender_packets {
            s.min_offender_packets = n.max(1);
        }
        if let Some(n) = d.client_unanswered_syns {
            s.client_unanswered_syns = n;
        }
        s.bogons = parse_prefixes(Key::of("detection", "bogons"), &d.bogons)?;
        if let Some(n) = d.spoofed_min_sources {
            s.spoofed_min_sources = n;
        }
        if let Some(x) = d.spoofed_max_packets_per_source {
            if x.is_nan() || x <= 0.0 {
                return Err(SettingError::new(
                    Key::of("detection", "spoofed_max_packets_per_source"),
                    Problem::TooSmall { least: "above 0" },
                ));
            }
            s.spoofed_max_packets_per_source = x;
        }
        set_in_range(&mut s.carpet.factor, d.carpet_factor, Key::of("detection", "carpet_factor"), 0.0, 1.0e6)?;
        if let Some(l) = d.carpet_prefix_v4 {
            s.carpet.v4_len = in_range(Key::of("detection", "carpet_prefix_v4"), l, 8, 32)?;
        }
        if let Some(l) = d.carpet_prefix_v6 {
            s.carpet.v6_len = in_range(Key::of("detection", "carpet_prefix_v6"), l, 16, 128)?;
        }
    }
    if let Some(l) = &file.limits {
        if let Some(n) = l.max_victims {
            s.max_victims = in_range(Key::of("limits", "max_victims"), n, 64, 16 << 20)?;
        }
        if let Some(n) = l.max_trackers {
            s.max_trackers = in_range(Key::of("limits", "max_trackers"), n, 1, 65_000)?;
        }
        if let Some(n) = l.tracked_sources {
            s.tracked_sources = in_range(Key::of("limits", "tracked_sources"), n, 16, 1 << 20)?;
        }
    }
    if let Some(t) = &file.thresholds {
        t.apply(|name| Key::of("thresholds", name), &mut s.thresholds)?;
    }
    for (i, p) in file.prefix.iter().enumerate() {
        let key = |name| Key::of("prefix", name).in_table(i);
        let prefix = Prefix::parse(&p.prefix).map_err(|e| SettingError::invalid(key("prefix"), e))?;
        let mut thresholds = s.thresholds;
        p.thresholds.apply(key, &mut thresholds)?;
        let (own_len, max) = prefix.family_len();
        let carpet_len = p.carpet_prefix.map(|l| in_range(key("carpet_prefix"), l, own_len, max)).transpose()?;
        let mut factor = None;
        if p.carpet_factor.is_some() {
            let mut f = s.carpet.factor;
            set_in_range(&mut f, p.carpet_factor, key("carpet_factor"), 0.0, 1.0e6)?;
            factor = Some(f);
        }
        s.prefixes.push(PrefixPolicy { prefix, thresholds, carpet_len, carpet_factor: factor });
    }
    if let Some(a) = &file.allowlist {
        s.allow_sources = parse_prefixes(Key::of("allowlist", "sources"), &a.sources)?;
        s.allow_destinations = parse_prefixes(Key::of("allowlist", "destinations"), &a.destinations)?;
    }
    Ok(s)
}

fn telemetry_settings(section: Option<&TelemetrySection>) -> Result<TelemetrySettings, SettingError> {
    let Some(t) = section else {
        return Ok(TelemetrySettings::default());
    };
    let listener = |name: &'static str, value: &Option<String>| {
        value.as_deref().map(listen_addr).transpose().map_err(|e| SettingError::invalid(Key::of("telemetry", name), e))
    };
    let exporters = Exporters::within(parse_prefixes(Key::of("telemetry", "exporters"), &t.exporters)?);
    let mut rates = Vec::with_capacity(t.sampling.len());
    for (address, &rate) in &t.sampling {
        let key = Key::of("telemetry", "sampling");
        let ip = address.parse::<IpAddr>().map_err(|e| SettingError::invalid(key, format!("{address:?}: {e}")))?;
        if !(1..=MAX_SAMPLING_RATE).contains(&rate) {
            let allowed = format!("between 1 and {MAX_SAMPLING_RATE}");
            return Err(SettingError::new(key, Problem::OutOfRange { value: format!("{address} = {rate}"), allowed }));
        }
        rates.push((ip, rate as u32));
    }
    Ok(TelemetrySettings {
        sflow: listener("sflow", &t.sflow)?,
        netflow: listener("netflow", &t.netflow)?,
        ipfix: listener("ipfix", &t.ipfix)?,
        exporters,
        sampling: SamplingRates::new(rates),
    })
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

fn out_of_range(
    key: Key,
    value: impl fmt::Display,
    min: impl fmt::Display,
    max: impl fmt::Display,
    unit: &'static str,
) -> SettingError {
    SettingError::new(
        key,
        Problem::OutOfRange { value: value.to_string(), allowed: format!("between {min} and {max}{unit}") },
    )
}

fn secs_to_ticks(key: Key, secs: f64, min: f64, max: f64) -> Result<u32, SettingError> {
    if !(min..=max).contains(&secs) {
        return Err(out_of_range(key, secs, min, max, " seconds"));
    }
    Ok((secs * 10.0).round() as u32)
}

fn set_in_range(target: &mut f32, value: Option<f64>, key: Key, min: f64, max: f64) -> Result<(), SettingError> {
    if let Some(v) = value {
        if !(min..=max).contains(&v) {
            return Err(out_of_range(key, v, min, max, ""));
        }
        *target = v as f32;
    }
    Ok(())
}

/// `n` for `key` if it is between `min` and `max`.
fn in_range<T: PartialOrd + Copy + fmt::Display>(key: Key, n: T, min: T, max: T) -> Result<T, SettingError> {
    if !(min..=max).contains(&n) {
        return Err(out_of_range(key, n, min, max, ""));
    }
    Ok(n)
}

fn parse_prefixes(key: Key, texts: &[String]) -> Result<Vec<Prefix>, SettingError> {
    texts
        .iter()
        .enumerate()
        .map(|(i, t)| Prefix::parse(t).map_err(|e| SettingError::invalid(key.element(i), e)))
        .collect()
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
    /// Per-second record of each watched victim's traffic, for `floodwatch report`.
    pub timeline: Option<PathBuf>,
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
    pub fn options(&self, allow: &[Prefix]) -> Result<OutputOptions, SettingError> {
        let key = |name| Key::of("output", name);
        let seconds = |name, v: Option<f64>, default: f64| -> Result<Duration, SettingError> {
            let v = v.unwrap_or(default);
            if v.is_finite() && (0.0..=86_400.0).contains(&v) {
                Ok(Duration::from_secs_f64(v))
            } else {
                Err(out_of_range(key(name), v, 0, 86_400, " seconds"))
            }
        };
        let alerts: Vec<String> = if self.alerts.is_empty() { vec!["-".into()] } else { self.alerts.clone() };
        let sinks = alerts
            .iter()
            .enumerate()
            .map(|(i, a)| a.parse::<SinkSpec>().map_err(|e| SettingError::invalid(key("alerts").element(i), e)))
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
                    .map_err(|e| SettingError::invalid(key("blocklist_format"), e))?,
                ttl_s: match self.blocklist_ttl_s.unwrap_or(DEFAULT_TTL_S) {
                    0 => {
                        return Err(SettingError::new(
                            key("blocklist_ttl_s"),
                            Problem::TooSmall { least: "at least 1" },
                        ))
                    }
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
                    0 => {
                        return Err(SettingError::new(
                            key("evidence_packets"),
                            Problem::TooSmall { least: "at least 1" },
                        ))
                    }
                    n => n,
                },
                max_bytes: self.evidence_max_mb.unwrap_or(DEFAULT_EVIDENCE_MAX_MB).saturating_mul(1 << 20),
            }),
        };
        let metrics = self
            .metrics
            .as_deref()
            .map(listen_addr)
            .transpose()
            .map_err(|e| SettingError::invalid(key("metrics"), e))?;
        let hook = if self.on_attack.is_empty() {
            None
        } else {
            let h = HookOptions {
                argv: self.on_attack.clone(),
                timeout: seconds("on_attack_timeout_s", self.on_attack_timeout_s, DEFAULT_HOOK_TIMEOUT_S)?,
                per_minute: self.on_attack_per_minute.unwrap_or(DEFAULT_HOOK_PER_MINUTE),
            };
            h.validate().map_err(|e| SettingError::invalid(key("on_attack"), e))?;
            Some(h)
        };
        Ok(OutputOptions {
            sinks,
            drain: seconds("drain_timeout_s", self.drain_timeout_s, DEFAULT_DRAIN_S)?,
            blocklist,
            evidence,
            metrics,
            hook,
            publish: None,
            timeline: self.timeline.clone(),
            report: None,
            mitigation: None,
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
    pub telemetry: TelemetrySettings,
    pub log: LogSettings,
    /// `[mitigation]`: BGP routes through ExaBGP (None: the section is absent).
    pub mitigation: Option<MitigationOptions>,
}

impl Config {
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let error = |cause| ConfigError { path: path.to_path_buf(), cause };
        let text = std::fs::read_to_string(path).map_err(|e| error(Cause::Read(e)))?;
        Self::from_toml(&text).map_err(|refused| error(Cause::Refused(refused)))
    }

    /// Parses TOML text on top of the defaults; a refused setting names its key and line.
    pub fn from_toml(text: &str) -> Result<Config, Refused> {
        let file: ConfigFile =
            toml::from_str(text).map_err(|e| Refused::Syntax(e.to_string().trim_end().to_string()))?;
        let with_line = |e: SettingError| Refused::Setting(Box::new(SettingError { line: line_of(text, &e.key), ..e }));
        let detection = detection_settings(&file).map_err(with_line)?;
        let output = file.output.clone().unwrap_or_default();
        output.options(&[]).map_err(with_line)?;
        let mitigation =
            file.mitigation.as_ref().map(|m| m.options(&detection.allow_sources)).transpose().map_err(with_line)?;
        Ok(Config {
            detection,
            capture: file.capture.clone().unwrap_or_default(),
            output,
            telemetry: telemetry_settings(file.telemetry.as_ref()).map_err(with_line)?,
            log: file.log.clone().unwrap_or_default(),
            mitigation,
        })
    }
}

/// A config file that could not be used.
#[derive(Debug)]
pub struct ConfigError {
    pub path: PathBuf,
    pub cause: Cause,
}

#[derive(Debug)]
pub enum Cause {
    Read(std::io::Error),
    Refused(Refused),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config {}: ", self.path.display())?;
        match &self.cause {
            Cause::Read(e) => e.fmt(f),
            Cause::Refused(r) => r.fmt(f),
        }
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
    telemetry: Option<TelemetrySection>,
    mitigation: Option<MitigationSection>,
}

/// `[mitigation]`: routes through ExaBGP, with `[mitigation.flowspec]` (the action per kind)
/// and `[mitigation.rtbh]` (when a victim is blackholed; never without it).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MitigationSection {
    /// `unix:PATH` (the relay's socket) or a file the lines are appended to.
    exabgp: Option<String>,
    dry_run: Option<bool>,
    hold_s: Option<f64>,
    max_routes: Option<usize>,
    max_source_rules: Option<usize>,
    widest_prefix_v4: Option<u8>,
    widest_prefix_v6: Option<u8>,
    #[serde(default)]
    allow_destinations: Vec<String>,
    #[serde(default)]
    allow_sources: Vec<String>,
    flowspec: Option<FlowspecSection>,
    rtbh: Option<RtbhSection>,
}

/// The action per kind: `discard`, `rate-limit BYTES_PER_S` or `none`; `all` sets every kind first.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlowspecSection {
    all: Option<String>,
    syn_flood: Option<String>,
    synack_flood: Option<String>,
    udp_flood: Option<String>,
    amplification: Option<String>,
    icmp_flood: Option<String>,
    fragment_flood: Option<String>,
    ack_flood: Option<String>,
    rst_flood: Option<String>,
    tcp_flood: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RtbhSection {
    kinds: Vec<String>,
    #[serde(default)]
    destinations: Vec<String>,
    min_pps: Option<u64>,
    min_bps: Option<u64>,
    next_hop: Option<String>,
    communities: Option<Vec<String>>,
}

/// RFC 7999's BLACKHOLE, and NO_EXPORT so the route stays with the neighbor it was sent to.
const DEFAULT_BLACKHOLE_COMMUNITIES: [&str; 2] = ["65535:666", "no-export"];

impl MitigationSection {
    /// The checked options; `allow_sources` (the detection allowlist) never gets a source rule.
    fn options(&self, allow_sources: &[Prefix]) -> Result<MitigationOptions, SettingError> {
        let key = |name| Key::of("mitigation", name);
        let target = self
            .exabgp
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e: String| SettingError::invalid(key("exabgp"), e))?;
        let mut o = MitigationOptions { target, dry_run: self.dry_run.unwrap_or(false), ..Default::default() };
        if o.target.is_none() && !o.dry_run {
            return Err(SettingError::invalid(key("exabgp"), "needed (unix:PATH or a file), unless dry_run = true"));
        }
        if let Some(h) = self.hold_s {
            if !(0.0..=86_400.0).contains(&h) {
                return Err(out_of_range(key("hold_s"), h, 0, 86_400, " seconds"));
            }
            o.hold = Duration::from_secs_f64(h);
        }
        if let Some(n) = self.max_routes {
            o.max_routes = in_range(key("max_routes"), n, 1, 10_000)?;
        }
        if let Some(n) = self.max_source_rules {
            o.max_source_rules = in_range(key("max_source_rules"), n, 0, 1_000)?;
        }
        if o.max_source_rules > o.max_routes {
            // An attack's sources are blocked all together or not at all.
            let allowed = format!("at most max_routes ({})", o.max_routes);
            return Err(SettingError::new(
                key("max_source_rules"),
                Problem::OutOfRange { value: o.max_source_rules.to_string(), allowed },
            ));
        }
        if let Some(l) = self.widest_prefix_v4 {
            o.widest.0 = in_range(key("widest_prefix_v4"), l, 8, 32)?;
        }
        if let Some(l) = self.widest_prefix_v6 {
            o.widest.1 = in_range(key("widest_prefix_v6"), l, 16, 128)?;
        }
        o.allow_destinations = parse_prefixes(key("allow_destinations"), &self.allow_destinations)?;
        o.allow_sources = parse_prefixes(key("allow_sources"), &self.allow_sources)?;
        o.allow_sources.extend_from_slice(allow_sources);
        if let Some(f) = &self.flowspec {
            let key = |name| Key::of("mitigation.flowspec", name);
            let action = |name, text: &Option<String>| {
                text.as_deref().map(Action::parse_setting).transpose().map_err(|e| SettingError::invalid(key(name), e))
            };
            if let Some(a) = action("all", &f.all)? {
                o.actions = [a; AttackKind::ALL.len()];
            }
            for (kind, text) in [
                (AttackKind::SynFlood, &f.syn_flood),
                (AttackKind::SynAckFlood, &f.synack_flood),
                (AttackKind::UdpFlood, &f.udp_flood),
                (AttackKind::Amplification, &f.amplification),
                (AttackKind::IcmpFlood, &f.icmp_flood),
                (AttackKind::FragmentFlood, &f.fragment_flood),
                (AttackKind::AckFlood, &f.ack_flood),
                (AttackKind::RstFlood, &f.rst_flood),
                (AttackKind::TcpFlood, &f.tcp_flood),
            ] {
                if let Some(a) = action(kind.name(), text)? {
                    o.actions[kind as usize] = a;
                }
            }
        }
        if let Some(r) = &self.rtbh {
            let key = |name| Key::of("mitigation.rtbh", name);
            let mut kinds = Vec::with_capacity(r.kinds.len());
            for (i, name) in r.kinds.iter().enumerate() {
                let kind = AttackKind::ALL.iter().find(|k| k.name() == name).ok_or_else(|| {
                    SettingError::invalid(key("kinds").element(i), format!("`{name}` is not an attack kind"))
                })?;
                kinds.push(*kind);
            }
            if kinds.is_empty() {
                return Err(SettingError::invalid(key("kinds"), "name the kinds a victim is blackholed for"));
            }
            for (name, rate) in [("min_pps", r.min_pps), ("min_bps", r.min_bps)] {
                if rate == Some(0) {
                    return Err(SettingError::new(key(name), Problem::TooSmall { least: "at least 1" }));
                }
            }
            if r.min_pps.is_none() && r.min_bps.is_none() {
                return Err(SettingError::invalid(
                    key("min_pps"),
                    "min_pps or min_bps needed: a victim is blackholed only above a rate",
                ));
            }
            let next_hop = r.next_hop.clone().unwrap_or_else(|| "self".into());
            if next_hop != "self" && next_hop.parse::<IpAddr>().is_err() {
                return Err(SettingError::invalid(key("next_hop"), format!("`{next_hop}`: self or an IP address")));
            }
            let communities = r
                .communities
                .clone()
                .unwrap_or_else(|| DEFAULT_BLACKHOLE_COMMUNITIES.iter().map(|c| c.to_string()).collect());
            for (i, c) in communities.iter().enumerate() {
                if !is_community(c) {
                    return Err(SettingError::invalid(
                        key("communities").element(i),
                        format!("`{c}`: ASN:VALUE (each 0-65535), no-export or no-advertise"),
                    ));
                }
            }
            o.blackhole = Some(BlackholePolicy {
                kinds,
                destinations: parse_prefixes(key("destinations"), &r.destinations)?,
                min_pps: r.min_pps,
                min_bps: r.min_bps,
                next_hop,
                communities,
            });
        }
        Ok(o)
    }
}

/// A BGP community as ExaBGP writes it: `65535:666`, or a well-known name.
fn is_community(text: &str) -> bool {
    match text.split_once(':') {
        Some((asn, value)) => asn.parse::<u16>().is_ok() && value.parse::<u16>().is_ok(),
        None => matches!(text, "no-export" | "no-advertise"),
    }
}

/// `[telemetry]`: the collector's addresses (sFlow, NetFlow v5/v9, IPFIX), and the exporters
/// it hears (all, when none are given).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TelemetrySection {
    sflow: Option<String>,
    netflow: Option<String>,
    ipfix: Option<String>,
    #[serde(default)]
    exporters: Vec<String>,
    /// Exporter address → its sampling rate, for NetFlow/IPFIX exporters that do not say.
    #[serde(default)]
    sampling: std::collections::BTreeMap<String, u64>,
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
    /// Sets the thresholds this section gives; `key` names a kind's key in the section.
    fn apply(&self, key: impl Fn(&'static str) -> Key, t: &mut KindThresholds) -> Result<(), SettingError> {
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
            return Err(SettingError::new(key(k.name()), Problem::TooSmall { least: "at least 1 packet/s" }));
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
    use crate::decode::IpKey;
    use crate::output::mitigation::exabgp::Target;

    fn detection(text: &str) -> Result<DetectionSettings, Refused> {
        Config::from_toml(text).map(|c| c.detection)
    }

    /// The setting error `text` is refused for.
    fn setting_error(text: &str) -> SettingError {
        match Config::from_toml(text) {
            Err(Refused::Setting(e)) => *e,
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn empty_config_is_the_defaults() {
        assert_eq!(detection("").unwrap(), DetectionSettings::default());
    }

    #[test]
    fn per_kind_and_prefix_thresholds() {
        let s = detection(
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
    fn the_telemetry_section_gives_the_collector_and_its_exporters() {
        let c = Config::from_toml(
            "[telemetry]\nsflow = \"6343\"\nnetflow = \"0.0.0.0:9995\"\nexporters = [\"10.0.0.0/8\"]\n",
        )
        .unwrap();
        assert_eq!(c.telemetry.sflow, Some("127.0.0.1:6343".parse().unwrap()));
        assert_eq!((c.telemetry.netflow, c.telemetry.ipfix), (Some("0.0.0.0:9995".parse().unwrap()), None));
        assert_eq!(c.telemetry.ports(), [6343, 9995, 4739]);
        assert!(c.telemetry.exporters.admits("10.9.8.7".parse().unwrap()));
        assert!(!c.telemetry.exporters.admits("192.0.2.1".parse().unwrap()));
        assert!(Config::from_toml("").unwrap().telemetry.exporters.admits("192.0.2.1".parse().unwrap()));
        let e = setting_error("[telemetry]\nexporters = [\"10.0.0.0/8\", \"router\"]\n");
        assert_eq!((e.key, e.line), (Key::of("telemetry", "exporters").element(1), Some(2)));
        let c = Config::from_toml("[telemetry]\nsampling = { \"10.0.0.1\" = 1000, \"2001:db8::1\" = 512 }\n").unwrap();
        let key = |ip: &str| IpKey::from_ip(ip.parse().unwrap());
        let rates = &c.telemetry.sampling;
        assert_eq!(
            (rates.of(key("10.0.0.1")), rates.of(key("2001:db8::1")), rates.of(key("10.0.0.2"))),
            (Some(1000), Some(512), None)
        );
        for bad in ["{ \"router\" = 10 }", "{ \"10.0.0.1\" = 0 }", "{ \"10.0.0.1\" = 2000000 }"] {
            let e = setting_error(&format!("[telemetry]\nsampling = {bad}\n"));
            assert_eq!((e.key, e.line), (Key::of("telemetry", "sampling"), Some(2)), "{bad}");
        }
    }

    #[test]
    fn the_mitigation_section_gives_the_routes_their_rails() {
        let c = Config::from_toml(
            "[allowlist]\nsources = [\"10.0.0.0/8\"]\n[mitigation]\nexabgp = \"unix:/run/floodwatch/exabgp.sock\"\n\
             hold_s = 120\nallow_destinations = [\"192.0.2.53\"]\n[mitigation.flowspec]\nall = \"rate-limit 125000\"\n\
             syn_flood = \"discard\"\nicmp_flood = \"none\"\n[mitigation.rtbh]\nkinds = [\"amplification\"]\n\
             destinations = [\"192.0.2.0/24\"]\nmin_bps = 5000000000\n",
        )
        .unwrap();
        let m = c.mitigation.unwrap();
        assert_eq!(m.target, Some(Target::Relay("/run/floodwatch/exabgp.sock".into())));
        assert_eq!((m.hold, m.dry_run, m.max_routes), (Duration::from_secs(120), false, 100));
        assert_eq!(m.actions[AttackKind::SynFlood as usize], Some(Action::Discard));
        assert_eq!(m.actions[AttackKind::UdpFlood as usize], Some(Action::RateLimit(125_000)));
        assert_eq!(m.actions[AttackKind::IcmpFlood as usize], None);
        assert_eq!(m.allow_sources, [Prefix::parse("10.0.0.0/8").unwrap()], "the detection allowlist counts too");
        let b = m.blackhole.unwrap();
        assert_eq!(
            (b.kinds, b.min_bps, b.next_hop.as_str()),
            (vec![AttackKind::Amplification], Some(5_000_000_000), "self")
        );
        assert_eq!(b.communities, ["65535:666", "no-export"]);
        assert!(Config::from_toml("").unwrap().mitigation.is_none());
        assert!(Config::from_toml("[mitigation]\ndry_run = true\n").unwrap().mitigation.unwrap().dry_run);
        for (text, message) in [
            ("[mitigation]\n", "mitigation.exabgp: needed (unix:PATH or a file), unless dry_run = true"),
            (
                "[mitigation]\ndry_run = true\nmax_routes = 10\nmax_source_rules = 20\n",
                "mitigation.max_source_rules = 20: must be at most max_routes (10) (line 4)",
            ),
            ("[mitigation]\ndry_run = true\nwidest_prefix_v4 = 4\n", "mitigation.widest_prefix_v4 = 4: must be between 8 and 32 (line 3)"),
            (
                "[mitigation]\ndry_run = true\n[mitigation.flowspec]\nudp_flood = \"drop\"\n",
                "mitigation.flowspec.udp_flood: `drop`: must be discard, rate-limit BYTES_PER_S or none (line 4)",
            ),
            (
                "[mitigation]\ndry_run = true\n[mitigation.rtbh]\nkinds = [\"udp_flood\"]\n",
                "mitigation.rtbh.min_pps: min_pps or min_bps needed: a victim is blackholed only above a rate",
            ),
            (
                "[mitigation]\ndry_run = true\n[mitigation.rtbh]\nkinds = [\"udp_flood\", \"flood\"]\nmin_pps = 1\n",
                "mitigation.rtbh.kinds[1]: `flood` is not an attack kind (line 4)",
            ),
            (
                "[mitigation]\ndry_run = true\n[mitigation.rtbh]\nkinds = [\"udp_flood\"]\nmin_pps = 1\ncommunities = [\"65535:666 x\"]\n",
                "mitigation.rtbh.communities[0]: `65535:666 x`: ASN:VALUE (each 0-65535), no-export or no-advertise (line 6)",
            ),
        ] {
            assert_eq!(setting_error(text).to_string(), message, "{text}");
        }
    }

    #[test]
    fn errors_name_the_key_and_its_line() {
        let e = setting_error("[detection]\nwindow = \"150ms\"\n");
        assert_eq!((e.key, e.line), (Key::of("detection", "window"), Some(2)));
        assert_eq!(
            e.to_string(),
            "detection.window: `150ms`: must be a multiple of 100ms between 100ms and 10s (line 2)"
        );
        let e = setting_error("[[prefix]]\nprefix = \"10.0.0.0/8\"\n\n[[prefix]]\n# the second\nprefix = \"x\"\n");
        assert_eq!((e.key, e.line), (Key::of("prefix", "prefix").in_table(1), Some(6)));
        assert!(e.to_string().starts_with("prefix[1].prefix: "), "{e}");
        let e = setting_error("[allowlist]\nsources = [\"10.0.0.0/8\",\n  \"10.0.0.0/33\"]\n");
        assert_eq!((e.key, e.line), (Key::of("allowlist", "sources").element(1), Some(2)));
        assert_eq!(e.to_string(), "allowlist.sources[1]: `10.0.0.0/33`: prefix length must be 0..=32 (line 2)");
        let e = setting_error("detection.quiet_s = 0\n");
        assert_eq!(e.to_string(), "detection.quiet_s = 0: must be between 0.1 and 3600 seconds (line 1)");
        let e = setting_error("[limits]\nmax_victims = 1\n[[prefix]]\nprefix = \"10.0.0.0/8\"\nsyn_flood = 0\n");
        assert_eq!(e.to_string(), "limits.max_victims = 1: must be between 64 and 16777216 (line 2)");
        let e = setting_error("[[prefix]]\nprefix = \"10.0.0.0/8\"\nsyn_flood = 0\n");
        assert_eq!(e.to_string(), "prefix[0].syn_flood: must be at least 1 packet/s (line 3)");
        let e = setting_error("[output]\nalerts = [\"-\", \"udp://h:1\"]\n");
        assert_eq!((e.key.name_in_section(), e.line), ("alerts[1]".to_string(), Some(2)));
        assert_eq!(detection("[detection]\nwindow = \"2.5s\"\n").unwrap().window_ticks, 25);
        match detection("[detection]\nwindow_ms = 1\n") {
            Err(Refused::Syntax(m)) => assert!(m.contains("window_ms") && m.contains("line 2"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
