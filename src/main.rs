//! The `floodwatch` command line: argument parsing and wiring only.

use clap::{Args, Parser, Subcommand};
use floodwatch::analyze::{Analyzer, AttackKind};
use floodwatch::config::DetectionSettings;
use floodwatch::output::alert::JsonLinesWriter;
use floodwatch::output::summary::{Progress, Summary};
use floodwatch::replay::replay;
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;

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
    /// Validate a config file and print the effective settings' summary.
    CheckConfig {
        /// The TOML config file.
        file: PathBuf,
    },
}

#[derive(Args)]
struct ReplayArgs {
    /// Capture files, replayed in order as one stream.
    #[arg(required = true)]
    files: Vec<String>,
    #[command(flatten)]
    detection: DetectionArgs,
    /// Where alerts go as JSON lines: a file (appended to) or "-" for standard output.
    #[arg(long, value_name = "PATH", default_value = "-")]
    alerts: String,
    /// Never draw the progress bar (it is drawn only when stderr is a terminal anyway).
    #[arg(long)]
    no_progress: bool,
    /// Do not print the summary on stderr.
    #[arg(long)]
    no_summary: bool,
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
    /// Sliding window length, e.g. 1s or 500ms (a multiple of 100ms).
    #[arg(long, value_name = "DURATION")]
    window: Option<String>,
    /// Seed for the keyed hashes (default: random per run); for reproducible estimates.
    #[arg(long, value_name = "N")]
    hash_seed: Option<u64>,
}

impl DetectionArgs {
    fn settings(&self) -> Result<DetectionSettings, String> {
        let mut s = match &self.config {
            Some(path) => DetectionSettings::from_file(path).map_err(|e| e.to_string())?,
            None => DetectionSettings::default(),
        };
        for (kind, value) in [
            (AttackKind::SynFlood, self.syn_pps),
            (AttackKind::SynAckFlood, self.synack_pps),
            (AttackKind::UdpFlood, self.udp_pps),
            (AttackKind::Amplification, self.amp_pps),
            (AttackKind::IcmpFlood, self.icmp_pps),
            (AttackKind::FragmentFlood, self.frag_pps),
        ] {
            if let Some(v) = value {
                if v == 0 {
                    return Err(format!("--{}-pps must be at least 1", kind.name()));
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
        Ok(s)
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()))
        .init();
    ExitCode::from(match cli.command {
        Command::Replay(args) => run_replay(args),
        Command::CheckConfig { file } => match DetectionSettings::from_file(&file) {
            Ok(s) => {
                println!(
                    "{}: ok (window {} ms, {} prefix policies, {} allowlisted source prefixes, {} allowlisted destination prefixes)",
                    file.display(),
                    s.window_ticks * 100,
                    s.prefixes.len(),
                    s.allow_sources.len(),
                    s.allow_destinations.len()
                );
                exit::OK
            }
            Err(e) => {
                eprintln!("floodwatch: {e}");
                exit::BAD_CONFIG
            }
        },
    })
}

fn run_replay(args: ReplayArgs) -> u8 {
    let settings = match args.detection.settings() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("floodwatch: {e}");
            return exit::BAD_CONFIG;
        }
    };
    let out: Box<dyn std::io::Write + Send> = if args.alerts == "-" {
        Box::new(std::io::stdout())
    } else {
        match std::fs::OpenOptions::new().create(true).append(true).open(&args.alerts) {
            Ok(f) => Box::new(f),
            Err(e) => {
                eprintln!("floodwatch: cannot open alert file {}: {e}", args.alerts);
                return exit::RUNTIME;
            }
        }
    };
    let mut writer = JsonLinesWriter::new(out);
    let mut analyzer = Analyzer::new(settings);
    let mut progress = (!args.no_progress && std::io::stderr().is_terminal()).then(Progress::new);
    let outcome = match replay(&args.files, &mut analyzer, &mut |e| writer.write_event(e), progress.as_mut()) {
        Ok(o) => o,
        Err(e) => {
            eprintln!("floodwatch: writing alerts to {} failed: {e}", args.alerts);
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
        };
        eprint!("{summary}");
    } else {
        for e in &errors {
            eprintln!("floodwatch: {e}");
        }
    }
    if outcome.errors.iter().any(|e| !e.is_truncation()) {
        exit::BAD_INPUT
    } else if !outcome.errors.is_empty() {
        exit::TRUNCATED_INPUT
    } else {
        exit::OK
    }
}
