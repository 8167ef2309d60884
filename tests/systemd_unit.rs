//! The files in `systemd/`: the unit's hardening score (`systemd-analyze security --offline`),
//! `systemd-analyze verify` of the unit as installed, and the example config.
//!
//! `verify` checks that every Exec*= program exists, and the unit names
//! /usr/local/bin/floodwatch. Rather than installing there or rewriting the unit, the test
//! builds a scratch file system root holding the unchanged unit at
//! /etc/systemd/system/floodwatch.service, the freshly built binary at the unit's ExecStart
//! path, the host's /bin/kill at the ExecReload path and a stub sysinit.target (the one unit
//! the default dependencies require), and runs `systemd-analyze verify --root=SCRATCH`. The
//! root also keeps the host's own units and drop-ins out of the check.

mod common;

use floodwatch::config::Config;
use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UNIT: &str = "systemd/floodwatch.service";
/// The pair that loads the nftables blocklist floodwatch writes.
const BLOCKLIST_UNITS: [&str; 2] = ["systemd/floodwatch-blocklist.service", "systemd/floodwatch-blocklist.path"];
const CONFIG: &str = "systemd/floodwatch.toml";
/// The drop-in that makes the daemon's unit a flow telemetry collector.
const COLLECTOR_DROP_IN: &str = "systemd/floodwatch-collector.conf";
const MAX_EXPOSURE: f64 = 2.0;

/// Runs `systemd-analyze ARGS`; `None` (after `common::skip`) when it is not installed.
fn systemd_analyze(args: &[&str]) -> Option<Output> {
    match Command::new("systemd-analyze").args(args).env("SYSTEMD_COLORS", "0").env("SYSTEMD_PAGER", "").output() {
        Ok(out) => Some(out),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            common::skip("systemd-analyze is not installed (Debian/Ubuntu: apt-get install systemd)");
            None
        }
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    }
}

fn text(out: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

/// The number in `→ Overall exposure level for floodwatch.service: 1.5 OK 🙂`.
fn overall_exposure(report: &str) -> Option<f64> {
    let line = report.lines().find(|l| l.contains("Overall exposure level for"))?;
    let (_, value) = line.rsplit_once(": ")?;
    value.split_whitespace().next()?.parse().ok()
}

/// The unit's `Key=Value` assignments, in order (comments and section headers dropped).
fn assignments(unit: &str) -> Vec<(String, String)> {
    unit.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(['#', ';', '[']))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// The program an Exec*= line runs, without systemd's `-@:+!` prefixes.
fn exec_program(command_line: &str) -> PathBuf {
    let first = command_line.split_whitespace().next().expect("empty Exec line");
    PathBuf::from(first.trim_start_matches(['-', '@', ':', '+', '!']))
}

/// Removes the scratch root when the test ends, pass or fail.
struct ScratchRoot(PathBuf);

impl Drop for ScratchRoot {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// `root` + an absolute path.
fn under(root: &Path, absolute: &Path) -> PathBuf {
    root.join(absolute.strip_prefix("/").expect("Exec paths are absolute"))
}

/// Puts `source` at `dest`: a hard link when possible (same file system), else a copy.
fn place(source: &Path, dest: &Path) {
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    if fs::hard_link(source, dest).is_err() {
        fs::copy(source, dest).unwrap_or_else(|e| panic!("copying {} to {}: {e}", source.display(), dest.display()));
    }
}

#[test]
fn unit_hardening_exposure_is_at_most_2() {
    for unit in [UNIT, BLOCKLIST_UNITS[0]] {
        assert_exposure_at_most_2(&common::repo_path(unit));
    }
}

fn assert_exposure_at_most_2(unit: &Path) {
    let Some(out) = systemd_analyze(&["security", "--offline=true", "--no-pager", unit.to_str().unwrap()]) else {
        return;
    };
    let report = text(&out);
    assert!(out.status.success(), "systemd-analyze security failed ({}):\n{report}", out.status);
    let exposure = overall_exposure(&report).unwrap_or_else(|| panic!("no overall exposure in the report:\n{report}"));
    let open: Vec<&str> = report.lines().filter(|l| l.starts_with('✗')).collect();
    assert!(
        exposure <= MAX_EXPOSURE,
        "{}: exposure {exposure} > {MAX_EXPOSURE}; items still open:\n{}\n\nfull report:\n{report}",
        unit.display(),
        open.join("\n")
    );
}

#[test]
fn units_verify_cleanly_as_installed() {
    let root = ScratchRoot(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("systemd-root-{}", std::process::id())));
    let _ = fs::remove_dir_all(&root.0);
    let mut units = String::new();
    for rel in [UNIT, BLOCKLIST_UNITS[0], BLOCKLIST_UNITS[1]] {
        let unit_path = common::repo_path(rel);
        let installed = root.0.join("etc/systemd/system").join(unit_path.file_name().unwrap());
        fs::create_dir_all(installed.parent().unwrap()).unwrap();
        fs::copy(&unit_path, &installed).unwrap();
        units.push_str(&fs::read_to_string(&unit_path).unwrap());
    }
    let unit = units;
    let stub = root.0.join("usr/lib/systemd/system/sysinit.target");
    fs::create_dir_all(stub.parent().unwrap()).unwrap();
    fs::write(&stub, "[Unit]\nDescription=System Initialization (stub for verify)\n").unwrap();

    // Every program the unit runs, at its own path inside the root: the daemon is the binary
    // under test, anything else (/bin/kill for ExecReload) must exist on this host too.
    let mut programs = 0;
    for (key, value) in assignments(&unit).into_iter().filter(|(k, _)| k.starts_with("Exec")) {
        let program = exec_program(&value);
        let source = if program.file_name().is_some_and(|n| n == "floodwatch") {
            PathBuf::from(env!("CARGO_BIN_EXE_floodwatch"))
        } else if program.is_file() {
            program.clone()
        } else {
            return common::skip(&format!(
                "{key}= runs {}, which this host does not have (nft: apt-get install nftables)",
                program.display()
            ));
        };
        place(&source, &under(&root.0, &program));
        programs += 1;
    }
    assert!(programs >= 3, "expected ExecStart= and ExecReload= in the daemon's unit, ExecStart= in the loader's");

    let root_arg = format!("--root={}", root.0.display());
    let names = ["floodwatch.service", "floodwatch-blocklist.service", "floodwatch-blocklist.path"];
    let Some(out) = systemd_analyze(&[&["verify", root_arg.as_str()][..], &names[..]].concat()) else {
        return;
    };
    let report = text(&out);
    let about_unit: Vec<&str> = report.lines().filter(|l| l.contains("floodwatch")).collect();
    assert!(out.status.success(), "systemd-analyze verify failed ({}):\n{report}", out.status);
    assert!(about_unit.is_empty(), "systemd-analyze verify warns about the unit:\n{report}");
}

#[test]
fn unit_runs_the_daemon_as_specified() {
    let unit = fs::read_to_string(common::repo_path(UNIT)).unwrap();
    let set = assignments(&unit);
    let value = |key: &str| set.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str());
    for (key, expected) in [
        ("Type", "notify"),
        ("NotifyAccess", "main"),
        ("WatchdogSec", "10s"),
        ("ExecStart", "/usr/local/bin/floodwatch run --config /etc/floodwatch/floodwatch.toml"),
        ("ExecReload", "/bin/kill -HUP $MAINPID"),
        ("Restart", "on-failure"),
        ("TimeoutStopSec", "10s"),
        ("AmbientCapabilities", "CAP_NET_RAW"),
        ("CapabilityBoundingSet", "CAP_NET_RAW"),
        ("StateDirectory", "floodwatch"),
        ("LogsDirectory", "floodwatch"),
        ("ConfigurationDirectory", "floodwatch"),
    ] {
        assert_eq!(value(key), Some(expected), "{key}= in {UNIT}");
    }
    assert!(
        value("DynamicUser") == Some("yes") || value("User").is_some_and(|u| u != "root"),
        "the daemon must run as an unprivileged user"
    );
}

#[test]
fn example_config_passes_check_config() {
    let config = common::repo_path(CONFIG);
    let out = Command::new(env!("CARGO_BIN_EXE_floodwatch")).arg("check-config").arg(&config).output().unwrap();
    assert!(out.status.success(), "check-config {} failed ({}):\n{}", config.display(), out.status, text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok"), "{}", text(&out));

    // What the unit relies on: an interface to capture on, and alert files only where the
    // sandbox lets the daemon write (LogsDirectory=floodwatch).
    let parsed = Config::from_file(&config).unwrap();
    assert_eq!(parsed.capture.interface.as_deref(), Some("eth0"));
    assert!(!parsed.output.alerts.is_empty());
    for alerts in &parsed.output.alerts {
        assert!(alerts == "-" || alerts.starts_with("/var/log/floodwatch/"), "alert file {alerts} is not writable");
    }
}

/// The drop-in that makes the unit a flow telemetry collector keeps it valid as installed, and takes
/// every capability and packet socket away (offline exposure at most 2, below the capturing
/// daemon's).
#[test]
fn the_collector_drop_in_verifies_and_holds_no_capability() {
    let root =
        ScratchRoot(Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("systemd-collector-{}", std::process::id())));
    let _ = fs::remove_dir_all(&root.0);
    let system = root.0.join("etc/systemd/system");
    place(&common::repo_path(UNIT), &system.join("floodwatch.service"));
    place(&common::repo_path(COLLECTOR_DROP_IN), &system.join("floodwatch.service.d/collector.conf"));
    let stub = root.0.join("usr/lib/systemd/system/sysinit.target");
    fs::create_dir_all(stub.parent().unwrap()).unwrap();
    fs::write(&stub, "[Unit]\nDescription=System Initialization (stub for verify)\n").unwrap();
    let unit = fs::read_to_string(common::repo_path(UNIT)).unwrap();
    for (key, value) in assignments(&unit).into_iter().filter(|(k, _)| k.starts_with("Exec")) {
        let program = exec_program(&value);
        let source = if program.file_name().is_some_and(|n| n == "floodwatch") {
            PathBuf::from(env!("CARGO_BIN_EXE_floodwatch"))
        } else {
            program.clone()
        };
        if !source.is_file() {
            return common::skip(&format!("{key}= runs {}, which this host does not have", program.display()));
        }
        place(&source, &under(&root.0, &program));
    }
    let root_arg = format!("--root={}", root.0.display());
    let Some(out) = systemd_analyze(&["verify", &root_arg, "floodwatch.service"]) else {
        return;
    };
    let report = text(&out);
    assert!(out.status.success(), "systemd-analyze verify failed ({}):\n{report}", out.status);
    assert!(!report.contains("floodwatch"), "systemd-analyze verify warns about the unit:\n{report}");
    let Some(out) = systemd_analyze(&["security", "--offline=true", &root_arg, "--no-pager", "floodwatch.service"])
    else {
        return;
    };
    let report = text(&out);
    let exposure = overall_exposure(&report).unwrap_or_else(|| panic!("no overall exposure in the report:\n{report}"));
    assert!(exposure <= MAX_EXPOSURE, "exposure {exposure} > {MAX_EXPOSURE}:\n{report}");
    for held in [
        "✓ AmbientCapabilities=",
        "✓ RestrictAddressFamilies=~AF_PACKET",
        "✓ CapabilityBoundingSet=~CAP_NET_(BIND_SERVICE|BROADCAST|RAW)",
    ] {
        assert!(report.contains(held), "{held} missing:\n{report}");
    }
}
