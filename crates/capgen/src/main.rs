//! `capgen`: writes floodwatch's synthetic test captures and their ground truth.
//!
//! ```text
//! capgen list                      names of the scenarios
//! capgen all [--out DIR]           every scenario (DIR defaults to captures)
//! capgen SCENARIO [--out DIR]      one scenario
//! capgen bench-mix [--packets N] --out FILE
//!                                  replay benchmark: background with three floods inside
//! capgen bench-flood [--packets N] --out FILE
//!                                  replay benchmark: three floods that are most of the traffic
//! capgen bench-sflow [--packets N] [--rate R] --out FILE
//!                                  telemetry benchmark: bench-flood's frames sampled 1 in R
//!                                  into sFlow datagrams (to 192.0.2.10:6343)
//! capgen bench-netflow [--packets N] --out FILE
//!                                  telemetry benchmark: bench-flood's frames metered into
//!                                  flows, as NetFlow v9 datagrams (to 192.0.2.10:2055)
//! capgen bench-spoofed [--packets N] [--sources M] --out FILE
//!                                  replay benchmark: SYN flood from M distinct spoofed sources
//! ```

#![forbid(unsafe_code)]

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use capgen::bench::{
    write_bench_mix, write_bench_netflow, write_bench_sflow, write_bench_spoofed, Mix, BENCH_FLOOD, BENCH_MIX,
    DEFAULT_PACKETS, DEFAULT_SOURCES,
};
use capgen::{find, write_all, write_scenario, SCENARIOS};

const USAGE: &str = "usage: capgen list | capgen all [--out DIR] | capgen SCENARIO [--out DIR] | \
                     capgen bench-mix [--packets N] --out FILE | \
                     capgen bench-flood [--packets N] --out FILE | \
                     capgen bench-sflow [--packets N] [--rate R] --out FILE | \
                     capgen bench-netflow [--packets N] --out FILE | \
                     capgen bench-spoofed [--packets N] [--sources M] --out FILE";

/// What the command line asks for.
enum Command {
    List,
    All { out: PathBuf },
    One { name: String, out: PathBuf },
    Bench { input: BenchInput, packets: u64, sources: u64, out: PathBuf },
}

/// A benchmark capture: background with floods inside, or the spoofed flood.
enum BenchInput {
    Mix(&'static Mix),
    Spoofed,
    /// `bench_flood` sampled 1 in this many, as sFlow.
    Sflow(u32),
    /// `bench_flood` metered into flows, as NetFlow v9.
    Netflow,
}

/// Parses the flags of `bench-mix`, `bench-flood` and `bench-spoofed`.
fn parse_bench(input: BenchInput, mut rest: &[String]) -> Result<Command, String> {
    let spoofed = matches!(input, BenchInput::Spoofed);
    let mut input = input;
    let (mut packets, mut sources, mut out) = (DEFAULT_PACKETS, DEFAULT_SOURCES, None);
    while let [flag, value, tail @ ..] = rest {
        let number = || value.replace('_', "").parse::<u64>().map_err(|e| format!("{flag} {value}: {e}"));
        match flag.as_str() {
            "--packets" => packets = number()?,
            "--sources" if spoofed => sources = number()?,
            "--rate" if matches!(input, BenchInput::Sflow(_)) => {
                input = BenchInput::Sflow(u32::try_from(number()?).map_err(|e| format!("--rate {value}: {e}"))?)
            }
            "--out" => out = Some(PathBuf::from(value)),
            _ => return Err(USAGE.to_owned()),
        }
        rest = tail;
    }
    match (rest, out) {
        ([], Some(out)) => Ok(Command::Bench { input, packets, sources, out }),
        _ => Err(USAGE.to_owned()),
    }
}

/// Parses the arguments after the program name.
fn parse(args: &[String]) -> Result<Command, String> {
    let Some((what, rest)) = args.split_first() else {
        return Err(USAGE.to_owned());
    };
    match what.as_str() {
        "bench-mix" => return parse_bench(BenchInput::Mix(&BENCH_MIX), rest),
        "bench-flood" => return parse_bench(BenchInput::Mix(&BENCH_FLOOD), rest),
        "bench-spoofed" => return parse_bench(BenchInput::Spoofed, rest),
        "bench-sflow" => return parse_bench(BenchInput::Sflow(1), rest),
        "bench-netflow" => return parse_bench(BenchInput::Netflow, rest),
        _ => {}
    }
    let out = match rest {
        [] => PathBuf::from("captures"),
        [flag, dir] if flag == "--out" => PathBuf::from(dir),
        _ => return Err(USAGE.to_owned()),
    };
    match what.as_str() {
        "list" if rest.is_empty() => Ok(Command::List),
        "all" => Ok(Command::All { out }),
        "-h" | "--help" | "list" => Err(USAGE.to_owned()),
        name => Ok(Command::One { name: name.to_owned(), out }),
    }
}

/// Carries out `command`, reporting what it wrote on standard output.
fn run(command: Command) -> Result<(), String> {
    let mut stdout = std::io::stdout().lock();
    let report = |e: std::io::Error| format!("standard output: {e}");
    let (written, out) = match command {
        Command::List => {
            for scenario in &SCENARIOS {
                writeln!(stdout, "{:<24} {}", scenario.name, scenario.container.extension()).map_err(report)?;
            }
            return Ok(());
        }
        Command::All { out } => {
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            (write_all(&out), out)
        }
        Command::One { name, out } => {
            let scenario = find(&name).ok_or_else(|| format!("unknown scenario {name:?} (see `capgen list`)"))?;
            std::fs::create_dir_all(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            (write_scenario(scenario, &out), out)
        }
        Command::Bench { input, packets, sources, out } => {
            let file = std::fs::File::create(&out).map_err(|e| format!("{}: {e}", out.display()))?;
            let writer = std::io::BufWriter::with_capacity(1 << 20, file);
            let failed = |e: std::io::Error| format!("{}: {e}", out.display());
            let facts = match input {
                BenchInput::Mix(mix) => write_bench_mix(writer, mix, packets),
                BenchInput::Spoofed => write_bench_spoofed(writer, packets, sources),
                BenchInput::Sflow(rate) => {
                    let sflow = write_bench_sflow(writer, &BENCH_FLOOD, packets, rate).map_err(failed)?;
                    writeln!(
                        stdout,
                        "{}: {} samples in {} sFlow datagrams",
                        out.display(),
                        sflow.samples,
                        sflow.datagrams
                    )
                    .map_err(report)?;
                    Ok(sflow.traffic)
                }
                BenchInput::Netflow => {
                    let netflow = write_bench_netflow(writer, &BENCH_FLOOD, packets).map_err(failed)?;
                    writeln!(
                        stdout,
                        "{}: {} flow records in {} NetFlow v9 datagrams",
                        out.display(),
                        netflow.records,
                        netflow.datagrams
                    )
                    .map_err(report)?;
                    Ok(netflow.traffic)
                }
            }
            .map_err(failed)?;
            let [a, b, c] = facts.attack_packets;
            writeln!(
                stdout,
                "{}: {} packets, {} frame bytes, attack packets {a} {b} {c}, distinct attack sources {}",
                out.display(),
                facts.packets,
                facts.bytes,
                facts.distinct_sources
            )
            .map_err(report)?;
            return Ok(());
        }
    };
    let written = written.map_err(|e| format!("writing into {}: {e}", out.display()))?;
    for path in written {
        let size = std::fs::metadata(&path).map_err(|e| format!("{}: {e}", path.display()))?.len();
        writeln!(stdout, "{size:>10}  {}", path.display()).map_err(report)?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args).and_then(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("capgen: {message}");
            ExitCode::FAILURE
        }
    }
}
