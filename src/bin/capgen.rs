//! `capgen`: writes floodwatch's synthetic test captures and their ground truth.
//!
//! ```text
//! capgen list                      names of the scenarios
//! capgen all [--out DIR]           every scenario (DIR defaults to captures)
//! capgen SCENARIO [--out DIR]      one scenario
//! ```

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use floodwatch::synth::{find, write_all, write_scenario, SCENARIOS};

const USAGE: &str = "usage: capgen list | capgen all [--out DIR] | capgen SCENARIO [--out DIR]";

/// What the command line asks for.
enum Command {
    List,
    All { out: PathBuf },
    One { name: String, out: PathBuf },
}

/// Parses the arguments after the program name.
fn parse(args: &[String]) -> Result<Command, String> {
    let Some((what, rest)) = args.split_first() else {
        return Err(USAGE.to_owned());
    };
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
