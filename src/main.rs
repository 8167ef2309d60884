//! The `floodwatch` command line: argument parsing and wiring only.

#![deny(unsafe_code)]

use clap::{Args, Parser, Subcommand};
use floodwatch::aggregate::AggregateOptions;
use floodwatch::analyze::{Analysis, Analyzer, AttackKind, ShardedAnalyzer};
use floodwatch::capture::live::CaptureBackend;
use floodwatch::config::{Config, LogFormat, OutputSettings};
use floodwatch::daemon::{self, DaemonError, DaemonOptions};
use floodwatch::output::metrics::listen_addr;
use floodwatch::output::mitigation::MitigationOptions;
use floodwatch::output::nats::{nats_url, PublishOptions};
use floodwatch::output::report::{self, ReportInput, ReportOptions};
use floodwatch::output::summary::{Progress, Summary};
use floodwatch::output::timeline;
use floodwatch::output::{OutputOptions, Outputs};
use floodwatch::pipeline::Datagrams;
use floodwatch::replay::replay;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// Exit codes, documented in the README.
mod exit {
    pub const OK: u8 = 0;
    /// Alert output failed (disk full, closed pipe) or another runtime error.
    pub const RUNTIME: u8 = 1;
    // 2 is clap's: bad command-line usage.
    /// An input could not be opened or read: missing, unreadable, not a capture, corrupt.
    pub const BAD_INPUT: u8 = 3;
    /// An input ended inside a record; everything before it was analyzed.
    pub const TRUNCATED_INPUT: u8 = 4;
    pub const BAD_CONFIG: u8 = 5;
    /// Live capture could not start or stopped: no such interface, no privilege, bad filter,
    /// backend not built in.
    pub const CAPTURE: u8 = 6;
}

#[derive(Parser)]
#[command(
    name = "floodwatch",
    version,
    about = "Packet-level flood detector: SYN, UDP, ICMP, fragment and amplification floods, per victim"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Replay capture files (pcap, pcapng, optionally gzip-compressed; "-" for stdin) as one stream.
    Replay(ReplayArgs),
    /// Capture live on an interface and report floods as they happen (the daemon).
    Run(RunArgs),
    /// Merge the summaries sensors publish (run/replay --publish) over NATS, second by
    /// second, and report the attacks no single sensor sees.
    Aggregate(AggregateArgs),
    /// Build the incident report page (one self-contained HTML file) from a daemon's or a
    /// replay's native alerts, timeline and evidence directory.
    Report(ReportArgs),
    /// The process ExaBGP runs (`run floodwatch exabgp-relay --socket PATH;`): floodwatch
    /// connects to the socket; the relay writes its routes as ExaBGP API lines, keeps the set
    /// across floodwatch restarts, and withdraws what no floodwatch asks for after the grace time.
    ExabgpRelay {
        /// The Unix socket floodwatch's --exabgp unix:PATH connects to.
        #[arg(long, value_name = "PATH")]
        socket: PathBuf,
        /// Seconds routes stay after floodwatch left without withdrawing them (a crash),
        /// waiting for it to ask for them again (default 30).
        #[arg(long, value_name = "SECONDS", default_value_t = 30.0)]
        grace: f64,
    },
    /// Validate a config file and print the effective settings' summary.
    CheckConfig {
        /// The TOML config file.
        file: PathBuf,
    },
}

#[derive(Args)]
struct ReportArgs {
    /// Native alerts (JSON lines), as --alerts FILE writes them.
    #[arg(long, value_name = "FILE")]
    alerts: PathBuf,
    /// The timeline written with --timeline FILE: per-second charts of each victim.
    #[arg(long, value_name = "FILE")]
    timeline: Option<PathBuf>,
    /// The evidence directory, to check each capture's SHA-256 and packet count.
    #[arg(long, value_name = "DIR")]
    evidence_dir: Option<PathBuf>,
    /// Where the page goes.
    #[arg(short, long, value_name = "FILE")]
    output: PathBuf,
}

#[derive(Args)]
struct ReplayArgs {
    /// Capture files, replayed in order as one stream.
    #[arg(required = true)]
    files: Vec<String>,
    #[command(flatten)]
    detection: DetectionArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Analyzer threads: victims are sharded by address across N workers, with the alerts of
    /// one thread (default 1: one analyzer thread, beside the capture thread that decodes).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    threads: u16,
    /// Never draw the progress bar (it is drawn only when stderr is a terminal anyway).
    #[arg(long)]
    no_progress: bool,
    /// Do not print the summary on stderr.
    #[arg(long)]
    no_summary: bool,
    /// Read the flow telemetry in the capture as a collector would: sFlow, NetFlow v5/v9 and
    /// IPFIX datagrams (UDP to ports 6343, 2055 and 4739, or those of [telemetry] in the
    /// config). The packets they describe take their place: a sampled one stands for its
    /// sampling rate's worth, a flow's packets are spread over its duration.
    #[arg(long)]
    telemetry: bool,
    /// Write the incident report page (self-contained HTML) to FILE at the end.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
}

#[derive(Args)]
struct AggregateArgs {
    /// The NATS server the sensors publish to: nats://HOST:PORT.
    #[arg(long, value_name = "URL")]
    nats: String,
    /// Seconds a second of packet time waits for the sensors that have not reported it
    /// (default 2); it then closes partial.
    #[arg(long, value_name = "SECONDS")]
    grace: Option<f64>,
    #[command(flatten)]
    detection: DetectionArgs,
    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Args)]
struct RunArgs {
    /// Interface to capture on (overrides the config's [capture] interface).
    #[arg(long, short = 'i', value_name = "IFACE")]
    interface: Option<String>,
    /// Listen for sFlow v5 from routers and switches: PORT (on 127.0.0.1) or IP:PORT, e.g.
    /// 0.0.0.0:6343; alone, 127.0.0.1:6343. With or without an interface to capture on.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "6343")]
    sflow: Option<String>,
    /// Listen for NetFlow v5/v9 (and IPFIX, which is told apart by its version): PORT or
    /// IP:PORT; alone, 127.0.0.1:2055.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "2055")]
    netflow: Option<String>,
    /// Listen for IPFIX: PORT or IP:PORT; alone, 127.0.0.1:4739.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "4739")]
    ipfix: Option<String>,
    #[command(flatten)]
    detection: DetectionArgs,
    #[command(flatten)]
    output: OutputArgs,
    /// Capture backend: tpacket (default: a memory-mapped ring), af_packet (pnet) or libpcap
    /// (build with --features libpcap).
    #[arg(long, value_name = "NAME")]
    backend: Option<String>,
    /// Capture threads, each with its own ring, sharing the packets by flow (tpacket; default 1).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=64))]
    capture_threads: Option<u16>,
    /// Kernel BPF capture filter, e.g. "udp or tcp" (libpcap backend).
    #[arg(long, value_name = "EXPR")]
    filter: Option<String>,
    /// Kernel capture buffer in MiB (libpcap backend; default 64).
    #[arg(long, value_name = "MIB")]
    buffer_mb: Option<u32>,
    /// Operational log format on stderr: human or json (the alert stream is separate).
    #[arg(long, value_name = "FORMAT")]
    log_format: Option<String>,
}

/// Output options shared by replay and run; each overrides the config's [output] key.
#[derive(Args)]
struct OutputArgs {
    /// Alert sink, repeatable: "-" (stdout), PATH or file:PATH (appended to, reopened on
    /// SIGHUP), unix:PATH, tcp://HOST:PORT, syslog+udp://HOST:PORT, syslog+tcp://HOST:PORT
    /// (RFC 5424, octet-counted), syslog or syslog:PATH (/dev/log); add ?format=ecs|eve for
    /// Elastic Common Schema or Suricata EVE, &facility=local0 for syslog. Default: stdout.
    #[arg(long, value_name = "SINK")]
    alerts: Vec<String>,
    /// Seconds alert sinks (files too) keep trying to deliver at exit (default 5).
    #[arg(long, value_name = "SECONDS")]
    drain_timeout: Option<f64>,
    /// Blocklist file of offending sources, rewritten atomically as attacks start, update, end.
    #[arg(long, value_name = "PATH")]
    blocklist: Option<PathBuf>,
    /// Blocklist format: plain, nft, ipset or json.
    #[arg(long, value_name = "FORMAT")]
    blocklist_format: Option<String>,
    /// Seconds a source stays listed after its attack last reported it (default 3600).
    #[arg(long, value_name = "SECONDS")]
    blocklist_ttl: Option<u64>,
    /// Directory for per-attack evidence pcaps (mode 0640).
    #[arg(long, value_name = "DIR")]
    evidence_dir: Option<PathBuf>,
    /// Packets per evidence file (default 10000).
    #[arg(long, value_name = "N")]
    evidence_packets: Option<u64>,
    /// Disk cap for all evidence files in MiB; the oldest are deleted first (default 1024).
    #[arg(long, value_name = "MIB")]
    evidence_max_mb: Option<u64>,
    /// Serve Prometheus metrics on PORT (127.0.0.1) or IP:PORT.
    #[arg(long, value_name = "ADDR")]
    metrics: Option<String>,
    /// Publish a summary of every second of packet time to this NATS server
    /// (nats://HOST:PORT), for `floodwatch aggregate`; needs --sensor.
    #[arg(long, value_name = "URL", requires = "sensor")]
    publish: Option<String>,
    /// This sensor's name in its summaries (letters, digits, '-', '_').
    #[arg(long, value_name = "NAME", requires = "publish")]
    sensor: Option<String>,
    /// Write each watched victim's traffic per second (JSON lines) to FILE, for the charts
    /// of `floodwatch report`.
    #[arg(long, value_name = "FILE")]
    timeline: Option<PathBuf>,
    /// Announce BGP FlowSpec rules (and RTBH routes, where [mitigation.rtbh] says) per attack
    /// through ExaBGP: unix:PATH is the socket of `floodwatch exabgp-relay`, run by ExaBGP as
    /// its process; a file path gets the API lines appended. Overrides [mitigation] exabgp.
    #[arg(long, value_name = "TARGET")]
    exabgp: Option<String>,
}

impl OutputArgs {
    /// The config's [output] section with these flags on top.
    fn apply(&self, o: &mut OutputSettings) {
        if !self.alerts.is_empty() {
            o.alerts = self.alerts.clone();
        }
        let OutputArgs {
            alerts: _,
            publish: _,
            sensor: _,
            drain_timeout,
            blocklist,
            blocklist_format,
            blocklist_ttl,
            evidence_dir,
            evidence_packets,
            evidence_max_mb,
            metrics,
            timeline,
            exabgp: _,
        } = self;
        o.drain_timeout_s = drain_timeout.or(o.drain_timeout_s);
        o.blocklist = blocklist.clone().or(o.blocklist.take());
        o.blocklist_format = blocklist_format.clone().or(o.blocklist_format.take());
        o.blocklist_ttl_s = blocklist_ttl.or(o.blocklist_ttl_s);
        o.evidence_dir = evidence_dir.clone().or(o.evidence_dir.take());
        o.evidence_packets = evidence_packets.or(o.evidence_packets);
        o.evidence_max_mb = evidence_max_mb.or(o.evidence_max_mb);
        o.metrics = metrics.clone().or(o.metrics.take());
        o.timeline = timeline.clone().or(o.timeline.take());
    }

    /// The checked output options of `config` with these flags applied.
    fn options(&self, config: &Config) -> Result<OutputOptions, String> {
        let mut o = config.output.clone();
        self.apply(&mut o);
        // A setting of the file was checked with the file; what fails here came from a flag,
        // which the message names by the key alone.
        let mut options = o
            .options(&config.detection.allow_sources)
            .map_err(|e| format!("{}{}", e.key.name_in_section(), e.problem_text()))?;
        options.mitigation = config.mitigation.clone();
        if let Some(target) = &self.exabgp {
            let target = target.parse().map_err(|e| format!("--exabgp: {e}"))?;
            // No [mitigation] section: its defaults, with the detection allowlist as the section's.
            let m = options.mitigation.get_or_insert_with(|| MitigationOptions {
                allow_sources: config.detection.allow_sources.clone(),
                ..Default::default()
            });
            m.target = Some(target);
        }
        if let (Some(url), Some(sensor)) = (&self.publish, &self.sensor) {
            if config.detection.hash_seed.is_none() {
                return Err(HASH_SEED_SHARED.into());
            }
            options.publish = Some(PublishOptions::new(url, sensor).map_err(|e| format!("--publish: {e}"))?);
        }
        Ok(options)
    }
}

/// Detection options shared by every command that analyzes traffic.
#[derive(Args)]
struct DetectionArgs {
    /// TOML config file (thresholds, prefixes, allowlists); flags below override it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// SYN flood threshold, packets/s.
    #[arg(long, value_name = "PPS")]
    syn_pps: Option<u32>,
    /// SYN-ACK flood threshold, packets/s.
    #[arg(long, value_name = "PPS")]
    synack_pps: Option<u32>,
    /// UDP flood threshold, packets/s.
    #[arg(long, value_name = "PPS")]
    udp_pps: Option<u32>,
    /// Amplification (reflected UDP) threshold, packets/s.
    #[arg(long, value_name = "PPS")]
    amp_pps: Option<u32>,
    /// ICMP/ICMPv6 flood threshold, packets/s.
    #[arg(long, value_name = "PPS")]
    icmp_pps: Option<u32>,
    /// IP fragment flood threshold, packets/s.
    #[arg(long, value_name = "PPS")]
    frag_pps: Option<u32>,
    /// ACK flood threshold, packets/s.
    #[arg(long, value_name = "PPS")]
    ack_pps: Option<u32>,
    /// RST flood threshold, packets/s.
    #[arg(long, value_name = "PPS")]
    rst_pps: Option<u32>,
    /// Threshold of other TCP floods (null, FIN, xmas), packets/s.
    #[arg(long, value_name = "PPS")]
    tcp_pps: Option<u32>,
    /// Sliding window length, e.g. 1s or 500ms (a multiple of 100ms).
    #[arg(long, value_name = "DURATION")]
    window: Option<String>,
    /// Seed for the keyed hashes (default: random per run); for reproducible estimates.
    #[arg(long, value_name = "N")]
    hash_seed: Option<u64>,
}

impl DetectionArgs {
    /// The config file (or the defaults) with the flags applied on top.
    fn config(&self) -> Result<Config, String> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path).map_err(|e| e.to_string())?,
            None => Config::default(),
        };
        let s = &mut config.detection;
        for (kind, value) in [
            (AttackKind::SynFlood, self.syn_pps),
            (AttackKind::SynAckFlood, self.synack_pps),
            (AttackKind::UdpFlood, self.udp_pps),
            (AttackKind::Amplification, self.amp_pps),
            (AttackKind::IcmpFlood, self.icmp_pps),
            (AttackKind::FragmentFlood, self.frag_pps),
            (AttackKind::AckFlood, self.ack_pps),
            (AttackKind::RstFlood, self.rst_pps),
            (AttackKind::TcpFlood, self.tcp_pps),
        ] {
            if let Some(v) = value {
                if v == 0 {
                    return Err(format!("the {} threshold must be at least 1 packet/s", kind.name()));
                }
                s.thresholds[kind as usize] = v;
            }
        }
        if let Some(w) = &self.window {
            s.window_ticks = floodwatch::config::window_ticks(w).map_err(|e| format!("--window {e}"))?;
        }
        if self.hash_seed.is_some() {
            s.hash_seed = self.hash_seed;
        }
        Ok(config)
    }
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(filter);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Human => builder.init(),
    }
}

fn run_report(args: ReportArgs) -> u8 {
    let attacks = match report::read_alerts(&args.alerts) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("floodwatch: {e}");
            return exit::BAD_INPUT;
        }
    };
    let records = match args.timeline.as_deref().map(timeline::read).transpose() {
        Ok(r) => r.unwrap_or_default(),
        Err(e) => {
            eprintln!("floodwatch: {e}");
            return exit::BAD_INPUT;
        }
    };
    let sources = [Some(&args.alerts), args.timeline.as_ref(), args.evidence_dir.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| p.display().to_string())
        .collect();
    let n = attacks.len();
    let input = ReportInput { attacks, timeline: records, evidence_dir: args.evidence_dir, sources };
    match std::fs::write(&args.output, report::render(&input)) {
        Ok(()) => {
            eprintln!("floodwatch: report of {n} attacks written to {}", args.output.display());
            exit::OK
        }
        Err(e) => {
            eprintln!("floodwatch: {}: {e}", args.output.display());
            exit::RUNTIME
        }
    }
}

fn run_relay(socket: PathBuf, grace: f64) -> u8 {
    init_logging(LogFormat::Human);
    if !(grace.is_finite() && (0.0..=86_400.0).contains(&grace)) {
        eprintln!("floodwatch: --grace must be between 0 and 86400 seconds");
        return exit::BAD_CONFIG;
    }
    match floodwatch::output::mitigation::relay::run(socket, Duration::from_secs_f64(grace)) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("floodwatch: exabgp-relay: {e}");
            exit::RUNTIME
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    ExitCode::from(match cli.command {
        Command::Replay(args) => run_replay(args),
        Command::Run(args) => run_daemon(args),
        Command::Aggregate(args) => run_aggregate(args),
        Command::Report(args) => run_report(args),
        Command::ExabgpRelay { socket, grace } => run_relay(socket, grace),
        Command::CheckConfig { file } => match Config::from_file(&file) {
            Ok(Config { detection: s, mitigation, .. }) => {
                println!(
                    "{}: ok (window {} ms, {} prefix policies, {} allowlisted source prefixes, {} allowlisted destination prefixes)",
                    file.display(),
                    s.window_ticks * 100,
                    s.prefixes.len(),
                    s.allow_sources.len(),
                    s.allow_destinations.len()
                );
                if let Some(m) = mitigation {
                    println!("{}: BGP mitigation {m}", file.display());
                }
                exit::OK
            }
            Err(e) => {
                eprintln!("floodwatch: {e}");
                exit::BAD_CONFIG
            }
        },
    })
}

fn run_daemon(args: RunArgs) -> u8 {
    let mut config = match args.detection.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("floodwatch: {e}");
            return exit::BAD_CONFIG;
        }
    };
    if let Some(b) = &args.backend {
        config.capture.backend = match b.as_str() {
            "tpacket" => CaptureBackend::Tpacket,
            "af_packet" => CaptureBackend::AfPacket,
            "libpcap" => CaptureBackend::Libpcap,
            other => {
                eprintln!("floodwatch: --backend {other}: expected tpacket, af_packet or libpcap");
                return exit::BAD_CONFIG;
            }
        };
    }
    if args.filter.is_some() {
        config.capture.filter = args.filter.clone();
    }
    if args.buffer_mb.is_some() {
        config.capture.buffer_mb = args.buffer_mb;
    }
    if args.capture_threads.is_some() {
        config.capture.threads = args.capture_threads;
    }
    if let Some(f) = &args.log_format {
        config.log.format = match f.as_str() {
            "human" => LogFormat::Human,
            "json" => LogFormat::Json,
            other => {
                eprintln!("floodwatch: --log-format {other}: expected human or json");
                return exit::BAD_CONFIG;
            }
        };
    }
    let interface = args.interface.clone().or_else(|| config.capture.interface.clone());
    for (flag, value, setting) in [
        ("--sflow", &args.sflow, &mut config.telemetry.sflow),
        ("--netflow", &args.netflow, &mut config.telemetry.netflow),
        ("--ipfix", &args.ipfix, &mut config.telemetry.ipfix),
    ] {
        match value.as_deref().map(listen_addr).transpose() {
            Ok(Some(addr)) => *setting = Some(addr),
            Ok(None) => {}
            Err(e) => {
                eprintln!("floodwatch: {flag}: {e}");
                return exit::BAD_CONFIG;
            }
        }
    }
    if interface.is_none() && config.telemetry.listeners().next().is_none() {
        eprintln!(
            "floodwatch: no interface: give --interface IFACE or set [capture] interface in the config (or --sflow, --netflow or --ipfix to collect flow telemetry)"
        );
        return exit::BAD_CONFIG;
    }
    let outputs = match args.output.options(&config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("floodwatch: {e}");
            return exit::BAD_CONFIG;
        }
    };
    init_logging(config.log.format);
    let reload = args.detection.config.clone().map(|path| -> daemon::Reload {
        Box::new(move || {
            Config::from_file(&path).map(|c| (c.detection, c.capture, c.telemetry)).map_err(|e| e.to_string())
        })
    });
    let options = DaemonOptions {
        interface,
        telemetry: config.telemetry,
        detection: config.detection,
        capture: config.capture,
        outputs,
        reload,
    };
    match daemon::run(options) {
        Ok(()) => exit::OK,
        Err(e @ (DaemonError::Capture(_) | DaemonError::Listen(_))) => {
            eprintln!("floodwatch: {e}");
            exit::CAPTURE
        }
        Err(e) => {
            eprintln!("floodwatch: {e}");
            exit::RUNTIME
        }
    }
}

/// Why sensors and their aggregator need one hash seed.
const HASH_SEED_SHARED: &str = "--publish and aggregate need detection.hash_seed (or --hash-seed), the same on every sensor and the aggregator: their source sketches merge only under one key";

fn run_aggregate(args: AggregateArgs) -> u8 {
    let setup = || -> Result<AggregateOptions, String> {
        let config = args.detection.config()?;
        let outputs = args.output.options(&config)?;
        if outputs.publish.is_some() {
            return Err("aggregate publishes no summaries: --publish is for sensors".into());
        }
        if config.detection.hash_seed.is_none() {
            return Err(HASH_SEED_SHARED.into());
        }
        let grace = match args.grace {
            None => Duration::from_secs(2),
            Some(s) if (0.1..=60.0).contains(&s) => Duration::from_secs_f64(s),
            Some(s) => return Err(format!("--grace {s}: from 0.1 to 60 seconds")),
        };
        init_logging(config.log.format);
        Ok(AggregateOptions { url: nats_url(&args.nats)?, detection: config.detection, outputs, grace })
    };
    let opts = match setup() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("floodwatch: {e}");
            return exit::BAD_CONFIG;
        }
    };
    match floodwatch::aggregate::run(opts) {
        Ok(_) => exit::OK,
        Err(e) => {
            eprintln!("floodwatch: {e}");
            exit::RUNTIME
        }
    }
}

fn run_replay(args: ReplayArgs) -> u8 {
    let config = match args.detection.config() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("floodwatch: {e}");
            return exit::BAD_CONFIG;
        }
    };
    let mut options = match args.output.options(&config) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("floodwatch: {e}");
            return exit::BAD_CONFIG;
        }
    };
    options.report = args.report.clone().map(|path| ReportOptions {
        path,
        evidence_dir: options.evidence.as_ref().map(|e| e.dir.clone()),
        sources: args.files.clone(),
    });
    let publish = options.publish.as_ref().map(|p| p.sensor.clone());
    if let Some(Err(e)) = publish.as_deref().map(|sensor| Analyzer::check_summaries(&config.detection, sensor)) {
        eprintln!("floodwatch: --publish: {e}");
        return exit::BAD_CONFIG;
    }
    let timeline = options.timeline.is_some() || options.report.is_some();
    if let Some(Err(e)) = timeline.then(|| Analyzer::check_window(&config.detection)) {
        eprintln!("floodwatch: --timeline/--report: {e}");
        return exit::BAD_CONFIG;
    }
    init_logging(config.log.format);
    let mut outputs = match Outputs::open(&options) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("floodwatch: {e}");
            return exit::RUNTIME;
        }
    };
    let mut analyzer: Box<dyn Analysis> = if args.threads > 1 {
        match ShardedAnalyzer::new(config.detection, args.threads as usize, publish.as_deref(), timeline) {
            Ok(a) => Box::new(a),
            Err(e) => {
                eprintln!("floodwatch: {e}");
                return exit::RUNTIME;
            }
        }
    } else {
        let mut analyzer = Analyzer::new(config.detection);
        if let Some(Err(e)) = publish.as_deref().map(|sensor| analyzer.summarize_seconds(sensor)) {
            eprintln!("floodwatch: {e}");
            return exit::RUNTIME;
        }
        if let Some(Err(e)) = timeline.then(|| analyzer.record_seconds()) {
            eprintln!("floodwatch: {e}");
            return exit::RUNTIME;
        }
        Box::new(analyzer)
    };
    let mut progress = (!args.no_progress && std::io::stderr().is_terminal()).then(Progress::new);
    let datagrams = if args.telemetry { Datagrams::Telemetry(config.telemetry.clone()) } else { Datagrams::Packets };
    let result = replay(&args.files, datagrams, analyzer.as_mut(), &mut outputs, progress.as_mut());
    let report = outputs.finish();
    let outcome = match result {
        Ok(o) => o,
        Err(e) => {
            eprintln!("floodwatch: {e}");
            return exit::RUNTIME;
        }
    };
    let errors: Vec<String> = outcome.errors.iter().map(|e| e.to_string()).collect();
    if !args.no_summary {
        let summary = Summary {
            files: args.files.len(),
            traffic: &outcome.traffic,
            attacks: &outcome.attacks,
            analyzer: &outcome.analyzer,
            errors: &errors,
            elapsed: outcome.elapsed,
            batch_latency: &outcome.batch_latency,
            batch_packets: floodwatch::pipeline::BATCH,
            detection_delay: &outcome.detection_delay,
            outputs: &report,
        };
        eprint!("{summary}");
    } else {
        for e in &errors {
            eprintln!("floodwatch: {e}");
        }
        for s in report.sinks.iter().filter(|s| s.dropped_queue_full + s.dropped_failed > 0) {
            eprintln!(
                "floodwatch: alert sink {}: {} alerts lost ({} queue full, {} failed)",
                s.name,
                s.dropped_queue_full + s.dropped_failed,
                s.dropped_queue_full,
                s.dropped_failed
            );
        }
    }
    let lost: u64 = report.sinks.iter().map(|s| s.dropped_queue_full + s.dropped_failed).sum();
    if lost > 0 {
        // Alerts that reached no one are the worst outcome of a replay: said first.
        exit::RUNTIME
    } else if outcome.errors.iter().any(|e| !e.is_truncation()) {
        exit::BAD_INPUT
    } else if !outcome.errors.is_empty() {
        exit::TRUNCATED_INPUT
    } else {
        exit::OK
    }
}
