//! The `floodwatch` binary as a user runs it: alert schema on stdout, summary on stderr,
//! exit codes, and damaged inputs that still give the alerts of everything before the damage.

mod common;

use common::{repo_path, Scratch};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const CAPTURE: &str = "captures/syn_flood_real_sources.pcap";

fn floodwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(args)
        .arg("--hash-seed")
        .arg("7")
        .output()
        .expect("floodwatch runs")
}

fn floodwatch_plain(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_floodwatch")).args(args).output().expect("floodwatch runs")
}

fn alerts(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Offsets of every record header in a little-endian classic pcap.
fn record_offsets(bytes: &[u8]) -> Vec<usize> {
    let mut offsets = Vec::new();
    let mut at = 24;
    while at + 16 <= bytes.len() {
        offsets.push(at);
        let caplen = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
        at += 16 + caplen;
    }
    offsets
}

#[test]
fn replay_prints_schema_complete_alerts_and_a_summary() {
    let capture = repo_path(CAPTURE);
    let out = floodwatch(&["replay", capture.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let alerts = alerts(&out);
    let events: Vec<&str> = alerts.iter().map(|a| a["event"].as_str().unwrap()).collect();
    assert_eq!(events.first(), Some(&"attack_start"));
    assert_eq!(events.last(), Some(&"attack_end"));
    for a in &alerts {
        for key in [
            "timestamp",
            "event",
            "attack_id",
            "kind",
            "victim",
            "victim_ports",
            "protocol",
            "service",
            "pps",
            "bps",
            "peak_pps",
            "threshold_pps",
            "started_at",
            "packets",
            "bytes",
            "reason",
            "sources",
        ] {
            assert!(a.get(key).is_some(), "missing {key} in {a}");
        }
        for key in ["distinct_estimate", "spoofed_likely", "top"] {
            assert!(a["sources"].get(key).is_some(), "missing sources.{key} in {a}");
        }
        let ts = a["timestamp"].as_str().unwrap();
        assert!(ts.len() == 27 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T', "RFC 3339 µs UTC: {ts}");
    }
    let end = alerts.last().unwrap();
    for key in ["ended_at", "duration_s", "end_reason", "offending_ips"] {
        assert!(end.get(key).is_some(), "attack_end lacks {key}");
    }
    assert_eq!(end["kind"], "syn_flood");
    assert_eq!(end["victim"], "198.51.100.10");
    assert!(end["sources"]["top"].as_array().unwrap().len() >= 100);
    let err = stderr(&out);
    assert!(err.contains("attacks: 1") && err.contains("syn_flood") && err.contains("Mpps"), "{err}");
}

#[test]
fn alerts_can_go_to_a_file_which_is_appended_to() {
    let scratch = Scratch::new("cli-alerts-file");
    let capture = repo_path(CAPTURE);
    let file = scratch.path("alerts.jsonl");
    let _ = std::fs::remove_file(&file);
    for _ in 0..2 {
        let out = floodwatch(&["replay", "--alerts", file.to_str().unwrap(), capture.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(0));
        assert!(out.stdout.is_empty());
    }
    let lines = std::fs::read_to_string(&file).unwrap();
    let starts = lines.lines().filter(|l| l.contains("\"attack_start\"")).count();
    assert_eq!(starts, 2);
}

#[test]
fn stdin_and_several_files_replay_as_one_stream() {
    let capture = repo_path(CAPTURE);
    let bytes = std::fs::read(&capture).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(["replay", "-", "--hash-seed", "7"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&bytes).unwrap();
    }
    let from_stdin = child.wait_with_output().unwrap();
    let from_file = floodwatch(&["replay", capture.to_str().unwrap()]);
    assert_eq!(from_stdin.status.code(), Some(0));
    assert_eq!(from_stdin.stdout, from_file.stdout, "stdin and file give the same alerts");
}

fn damaged(scratch: &Scratch, name: &str, edit: impl FnOnce(&mut Vec<u8>, &[usize]) -> usize) -> (PathBuf, usize) {
    let mut bytes = std::fs::read(repo_path(CAPTURE)).unwrap();
    let offsets = record_offsets(&bytes);
    let offset = edit(&mut bytes, &offsets);
    let path = scratch.path(name);
    std::fs::write(&path, bytes).unwrap();
    (path, offset)
}

fn assert_flood_alerts_survive(out: &Output) {
    let alerts = alerts(out);
    assert!(alerts.iter().any(|a| a["event"] == "attack_start" && a["victim"] == "198.51.100.10"));
    assert!(alerts.iter().any(|a| a["event"] == "attack_end"));
}

#[test]
fn truncated_file_names_file_and_offset_keeps_alerts_and_exits_4() {
    let scratch = Scratch::new("cli-truncated");
    // Cut inside the record at 90 % of the file: the flood lies before it.
    let (path, offset) = damaged(&scratch, "truncated.pcap", |b, offsets| {
        let at = offsets[offsets.len() * 9 / 10];
        b.truncate(at + 20);
        at
    });
    let out = floodwatch(&["replay", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(path.to_str().unwrap()) && err.contains(&format!("byte offset {offset}")), "{err}");
    assert_flood_alerts_survive(&out);
}

#[test]
fn corrupt_record_header_names_file_and_offset_keeps_alerts_and_exits_3() {
    let scratch = Scratch::new("cli-corrupt");
    let (path, offset) = damaged(&scratch, "corrupt.pcap", |b, offsets| {
        let at = offsets[offsets.len() * 9 / 10];
        b[at + 8..at + 12].copy_from_slice(&3_925_868_813u32.to_le_bytes());
        at
    });
    let out = floodwatch(&["replay", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(3), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("corrupt at byte offset {offset}")) && err.contains("3925868813"), "{err}");
    assert_flood_alerts_survive(&out);
}

#[test]
fn unknown_link_type_garbage_and_missing_files_exit_3_with_one_clear_line() {
    let scratch = Scratch::new("cli-unreadable");
    let (linktype, _) = damaged(&scratch, "linktype.pcap", |b, _| {
        b[20..24].copy_from_slice(&147u32.to_le_bytes());
        20
    });
    let garbage = scratch.path("garbage.pcap");
    std::fs::write(&garbage, b"GET / HTTP/1.1\r\nHost: example\r\n\r\n").unwrap();
    let empty = scratch.path("empty.pcap");
    std::fs::write(&empty, b"").unwrap();
    let missing = Path::new("/nonexistent/floodwatch/missing.pcap");
    for (path, needle) in [
        (linktype.as_path(), "unsupported link type 147"),
        (garbage.as_path(), "not a pcap, pcapng or gzip file"),
        (empty.as_path(), ""),
        (missing, "missing.pcap"),
    ] {
        let out = floodwatch(&["replay", "--no-summary", path.to_str().unwrap()]);
        assert_eq!(out.status.code(), Some(3), "{}: {}", path.display(), stderr(&out));
        let err = stderr(&out);
        assert!(err.contains(path.to_str().unwrap()) && err.contains(needle), "{err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn usage_and_config_errors_have_their_own_exit_codes() {
    let scratch = Scratch::new("cli-exit-codes");
    assert_eq!(floodwatch_plain(&["replay"]).status.code(), Some(2));
    assert_eq!(floodwatch_plain(&["replay", "--window", "150ms", CAPTURE]).status.code(), Some(5));
    let bad = scratch.path("bad.toml");
    std::fs::write(&bad, "[thresholds]\nsyn_flood = \"many\"\n").unwrap();
    let out = floodwatch_plain(&["check-config", bad.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(5));
    let err = stderr(&out);
    assert!(err.contains("syn_flood") && err.contains("line 2"), "{err}");
    let good = scratch.path("good.toml");
    std::fs::write(&good, "[thresholds]\nsyn_flood = 5000\n[allowlist]\nsources = [\"192.0.2.0/24\"]\n").unwrap();
    assert_eq!(floodwatch_plain(&["check-config", good.to_str().unwrap()]).status.code(), Some(0));
}

#[test]
fn thresholds_from_flags_and_config_change_the_verdict() {
    let scratch = Scratch::new("cli-thresholds");
    let capture = repo_path(CAPTURE);
    let high = floodwatch(&["replay", "--syn-pps", "50000", capture.to_str().unwrap()]);
    assert_eq!(high.status.code(), Some(0));
    assert!(alerts(&high).is_empty(), "a 50,000 pps threshold silences a 5,000 pps flood");
    let cfg = scratch.path("prefix.toml");
    std::fs::write(&cfg, "[[prefix]]\nprefix = \"198.51.100.0/24\"\nsyn_flood = 50000\n").unwrap();
    let out = floodwatch(&["replay", "--config", cfg.to_str().unwrap(), capture.to_str().unwrap()]);
    assert!(alerts(&out).is_empty(), "a per-prefix threshold applies to the victim's prefix");
    let cfg = scratch.path("allow.toml");
    std::fs::write(&cfg, "[allowlist]\ndestinations = [\"198.51.100.10\"]\n").unwrap();
    let out = floodwatch(&["replay", "--config", cfg.to_str().unwrap(), capture.to_str().unwrap()]);
    assert!(alerts(&out).is_empty(), "an allowlisted destination is never a victim");
}
