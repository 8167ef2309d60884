//! The outputs as their consumers see them: alert streams in three formats over files, TCP
//! and unix sockets; evidence pcaps read back by tcpdump; Prometheus metrics scraped over
//! HTTP while a replay runs; the on_attack hook; output settings errors.
//! (A real rsyslog is in `collectors.rs`, nft in a namespace in `blocklist_netns.rs`.)

mod common;

use common::{on_path, repo_path, skip, Scratch};
use floodwatch::capture::FileSource;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const SYN: &str = "captures/syn_flood_real_sources.pcap";
const UDP: &str = "captures/udp_flood.pcap";
const ICMP: &str = "captures/icmp_flood.pcap";

fn floodwatch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(args)
        .args(["--hash-seed", "7", "--no-progress"])
        .output()
        .expect("floodwatch runs")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect()
}

fn read_json_lines(path: &Path) -> Vec<Value> {
    json_lines(&std::fs::read_to_string(path).unwrap())
}

/// Accepts one connection and returns everything it carried, line by line.
fn collect_lines(listener: impl FnOnce() -> Box<dyn Read + Send> + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = listener().read_to_string(&mut text);
        text
    })
}

#[test]
fn one_replay_feeds_a_file_a_tcp_and_a_unix_collector_in_three_formats() {
    let dir = Scratch::new("outputs-sinks");
    let tcp = TcpListener::bind("127.0.0.1:0").unwrap();
    let tcp_addr = tcp.local_addr().unwrap();
    let sock = dir.join("alerts.sock");
    let unix = UnixListener::bind(&sock).unwrap();
    let tcp_lines = collect_lines(move || Box::new(tcp.accept().unwrap().0));
    let unix_lines = collect_lines(move || Box::new(unix.accept().unwrap().0));
    let file = dir.join("alerts.json");
    let out = floodwatch(&[
        "replay",
        repo_path(SYN).to_str().unwrap(),
        "--alerts",
        file.to_str().unwrap(),
        "--alerts",
        &format!("tcp://{tcp_addr}?format=ecs"),
        "--alerts",
        &format!("unix:{}?format=eve", sock.display()),
        "--alerts",
        "-",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let native = read_json_lines(&file);
    let ecs = json_lines(&tcp_lines.join().unwrap());
    let eve = json_lines(&unix_lines.join().unwrap());
    let stdout = json_lines(&String::from_utf8_lossy(&out.stdout));
    assert!(native.len() >= 2, "start and end at least: {native:?}");
    assert_eq!(stdout, native, "stdout and the file carry the same native alerts");
    assert_eq!((ecs.len(), eve.len()), (native.len(), native.len()));
    for ((n, e), v) in native.iter().zip(&ecs).zip(&eve) {
        // ECS: the same alert in ECS field sets, the native one under `floodwatch`.
        assert_eq!(e["event"]["kind"], "alert");
        assert_eq!(e["event"]["action"], n["event"]);
        assert_eq!(e["event"]["id"], n["attack_id"]);
        assert_eq!(e["@timestamp"], n["timestamp"]);
        assert_eq!(e["destination"]["ip"], n["victim"]);
        assert_eq!(e["network"]["transport"], "tcp");
        assert_eq!(e["source"]["ip"], n["sources"]["top"][0]["ip"]);
        assert_eq!(e["related"]["ip"], n["offending_ips"]);
        assert_eq!(&e["floodwatch"], n);
        // EVE: what a Suricata pipeline expects of an alert record.
        assert_eq!(v["event_type"], "alert");
        assert_eq!(v["dest_ip"], n["victim"]);
        assert_eq!(v["src_ip"], n["sources"]["top"][0]["ip"]);
        assert_eq!(v["proto"], "TCP");
        assert!(v["alert"]["signature"].as_str().unwrap().contains("SYN flood"), "{v}");
        assert!(v["alert"]["signature_id"].as_u64().is_some() && v["flow_id"].as_u64().is_some());
        let ts = v["timestamp"].as_str().unwrap();
        assert!(ts.ends_with("+0000") && ts.starts_with(&n["timestamp"].as_str().unwrap()[..26]), "{ts}");
    }
    let err = stderr(&out);
    assert!(err.contains(&format!("alert sink tcp://{tcp_addr}?format=ecs: {} delivered", native.len())), "{err}");
}

#[test]
fn a_collector_that_is_down_costs_counted_alerts_not_the_replay() {
    // A port nobody listens on: the replay finishes, says what it lost, and exits 1 for it.
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let out = floodwatch(&[
        "replay",
        repo_path(SYN).to_str().unwrap(),
        "--alerts",
        "/dev/null",
        "--alerts",
        &format!("tcp://127.0.0.1:{port}"),
        "--drain-timeout",
        "0.5",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("tcp://127.0.0.1:{port}: 0 delivered")) && err.contains("LOST"), "{err}");
}

fn sha256_hex(path: &Path) -> String {
    Sha256::digest(std::fs::read(path).unwrap()).iter().map(|b| format!("{b:02x}")).collect()
}

/// Timestamps (ns) of a little-endian nanosecond pcap's records.
fn pcap_times(path: &Path) -> Vec<i64> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..4], &0xa1b2_3c4du32.to_le_bytes(), "nanosecond pcap");
    let mut at = 24;
    let mut times = Vec::new();
    while at + 16 <= bytes.len() {
        let u = |o: usize| u32::from_le_bytes(bytes[at + o..at + o + 4].try_into().unwrap());
        times.push(u(0) as i64 * 1_000_000_000 + u(4) as i64);
        at += 16 + u(8) as usize;
    }
    assert_eq!(at, bytes.len(), "no partial record");
    times
}

fn rfc3339_ns(ts: &str) -> i64 {
    // 2026-01-15T12:00:03.198773Z, all captures are on 2026-01-15.
    let day_start = 1_768_435_200i64; // 2026-01-15T00:00:00Z
    assert!(ts.starts_with("2026-01-15T"), "{ts}");
    let h: i64 = ts[11..13].parse().unwrap();
    let m: i64 = ts[14..16].parse().unwrap();
    let s: i64 = ts[17..19].parse().unwrap();
    let us: i64 = ts[20..26].parse().unwrap();
    (day_start + h * 3600 + m * 60 + s) * 1_000_000_000 + us * 1000
}

#[test]
fn evidence_holds_the_attack_from_the_second_before_it_was_declared() {
    let dir = Scratch::new("outputs-evidence");
    let evidence = dir.join("evidence");
    let out = floodwatch(&[
        "replay",
        repo_path(SYN).to_str().unwrap(),
        "--alerts",
        dir.join("alerts.json").to_str().unwrap(),
        "--evidence-dir",
        evidence.to_str().unwrap(),
        "--evidence-packets",
        "5000",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let alerts = read_json_lines(&dir.join("alerts.json"));
    let end = alerts.iter().find(|a| a["event"] == "attack_end").expect("attack_end");
    let ev = &end["evidence"];
    let path = PathBuf::from(ev["path"].as_str().unwrap());
    assert_eq!(ev["packets"], 5000, "capped at --evidence-packets");
    assert_eq!(ev["sha256"], sha256_hex(&path));
    assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o640);
    let times = pcap_times(&path);
    assert_eq!(times.len(), 5000);
    // The truth: the flood's first packet. The file starts there, before the declaration.
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(repo_path("captures/syn_flood_real_sources.json")).unwrap())
            .unwrap();
    let flood_start = rfc3339_ns(truth["attacks"][0]["start"].as_str().unwrap());
    let declared = rfc3339_ns(end["started_at"].as_str().unwrap());
    assert!(declared > flood_start, "declared after the flood began");
    assert!(times[0] >= declared - 1_000_000_000 && times[0] < declared, "first packet {} vs {declared}", times[0]);
    assert_eq!(times[0], flood_start, "the lead second reaches back to the flood's first packet");
    if on_path("tcpdump") {
        let read = Command::new("tcpdump").args(["-nn", "-r"]).arg(&path).output().unwrap();
        assert!(read.status.success(), "{}", String::from_utf8_lossy(&read.stderr));
        let lines = String::from_utf8_lossy(&read.stdout);
        assert_eq!(lines.lines().count(), 5000);
        assert!(lines.lines().all(|l| l.contains("> 198.51.100.10.") && l.contains("Flags [S]")), "only the flood");
    } else {
        skip("tcpdump is not installed: evidence not read back by tcpdump");
    }
}

#[test]
fn the_evidence_disk_cap_deletes_the_oldest_files_first() {
    let dir = Scratch::new("outputs-evidence-cap");
    let evidence = dir.join("evidence");
    // Three attacks of 600-800 kB of evidence each, under a 1 MiB cap.
    let out = floodwatch(&[
        "replay",
        repo_path(SYN).to_str().unwrap(),
        repo_path(UDP).to_str().unwrap(),
        repo_path(ICMP).to_str().unwrap(),
        "--alerts",
        dir.join("alerts.json").to_str().unwrap(),
        "--evidence-dir",
        evidence.to_str().unwrap(),
        "--evidence-max-mb",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let ends: Vec<Value> =
        read_json_lines(&dir.join("alerts.json")).into_iter().filter(|a| a["event"] == "attack_end").collect();
    assert_eq!(ends.len(), 3);
    let paths: Vec<PathBuf> = ends.iter().map(|e| PathBuf::from(e["evidence"]["path"].as_str().unwrap())).collect();
    let left: Vec<bool> = paths.iter().map(|p| p.exists()).collect();
    assert_eq!(left, [false, false, true], "only the newest fits 1 MiB: {paths:?}");
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

fn scrape(port: u16) -> Option<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    Some(text)
}

fn metric(text: &str, name: &str) -> Option<f64> {
    text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
}

#[test]
fn metrics_are_served_over_http_while_a_replay_runs() {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(["replay", "-", "--no-progress", "--alerts", "/dev/null", "--metrics"])
        .arg(port.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    // The whole capture goes in; stdin stays open, so the replay is still running.
    stdin.write_all(&std::fs::read(repo_path(SYN)).unwrap()).unwrap();
    stdin.flush().unwrap();
    let mut source = FileSource::open(&repo_path(SYN).display().to_string()).unwrap();
    let mut total = 0.0;
    while source
        .read_frames(usize::MAX, |_| {
            total += 1.0;
            true
        })
        .unwrap()
    {}
    let deadline = Instant::now() + Duration::from_secs(60);
    // Until every frame written is counted (metrics are published per hand-off of packets).
    let text = loop {
        if let Some(t) = scrape(port) {
            if metric(&t, "floodwatch_frames_total") == Some(total) {
                break t;
            }
        }
        assert!(Instant::now() < deadline, "the frames written were not all counted within 60 s");
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.contains("text/plain; version=0.0.4"), "{text}");
    assert!(metric(&text, "floodwatch_packets_total{class=\"syn\"}").unwrap() >= 9_000.0, "{text}");
    assert_eq!(metric(&text, "floodwatch_alerts_total{event=\"attack_start\"}"), Some(1.0), "{text}");
    assert_eq!(metric(&text, "floodwatch_decode_issues_total{reason=\"ip_truncated\"}"), Some(0.0));
    assert_eq!(metric(&text, "floodwatch_active_attacks"), Some(1.0), "the flood is still on at the last packet");
    assert_eq!(metric(&text, "floodwatch_sink_dropped_total{sink=\"/dev/null\",reason=\"queue_full\"}"), Some(0.0));
    assert!(metric(&text, "floodwatch_sink_queue_depth{sink=\"/dev/null\"}").is_some(), "{text}");
    assert!(metric(&text, "floodwatch_batch_latency_seconds{quantile=\"0.99\"}").unwrap() > 0.0, "{text}");
    let delay = metric(&text, "floodwatch_detection_delay_seconds{quantile=\"0.5\"}").unwrap();
    assert!(delay > 0.0 && delay <= 1.1, "detection delay {delay} s");
    let not_found = {
        let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
        s.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
        let mut t = String::new();
        s.read_to_string(&mut t).unwrap();
        t
    };
    assert!(not_found.starts_with("HTTP/1.1 404"), "{not_found}");
    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success());
    let mut err = String::new();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    assert!(err.contains(&format!("metrics on http://127.0.0.1:{port}/metrics")), "{err}");
}

#[test]
fn a_busy_metrics_port_is_a_clear_error() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = floodwatch(&["replay", repo_path(SYN).to_str().unwrap(), "--metrics", &port]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(&format!("cannot serve metrics on 127.0.0.1:{port}")), "{}", stderr(&out));
}

fn write_script(path: &Path, body: &str) {
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn the_on_attack_hook_gets_each_start_and_end_on_stdin() {
    let dir = Scratch::new("outputs-hook");
    let hook = dir.join("hook.sh");
    // argv[1] is the operator's; the alert comes on stdin, the event name in the environment.
    write_script(&hook, "cat > \"$1/$FLOODWATCH_ATTACK_ID.$FLOODWATCH_EVENT.json\"");
    let config = dir.join("floodwatch.toml");
    std::fs::write(
        &config,
        format!("[output]\non_attack = [{:?}, {:?}]\non_attack_timeout_s = 10\n", hook.display(), dir.display()),
    )
    .unwrap();
    let out = floodwatch(&[
        "replay",
        repo_path(SYN).to_str().unwrap(),
        repo_path(UDP).to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
        "--alerts",
        dir.join("alerts.json").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let alerts = read_json_lines(&dir.join("alerts.json"));
    let wanted: Vec<&Value> = alerts.iter().filter(|a| a["event"] != "attack_update").collect();
    assert_eq!(wanted.len(), 4, "two attacks, a start and an end each");
    for a in wanted {
        let file = dir.join(format!("{}.{}.json", a["attack_id"].as_str().unwrap(), a["event"].as_str().unwrap()));
        let got: Value = serde_json::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
        assert_eq!(got["attack_id"], a["attack_id"]);
        assert_eq!(got["event"], a["event"]);
    }
}

#[test]
fn a_failing_or_hanging_hook_is_logged_and_never_fatal() {
    let dir = Scratch::new("outputs-hook-fail");
    let fails = dir.join("fails.sh");
    write_script(&fails, "exit 3");
    let hangs = dir.join("hangs.sh");
    write_script(&hangs, "exec sleep 30");
    for (hook, needle) in [(&fails, "exited with exit status: 3"), (&hangs, "killed after the 500ms timeout")] {
        let config = dir.join("floodwatch.toml");
        std::fs::write(
            &config,
            format!(
                "[output]\non_attack = [{:?}]\non_attack_timeout_s = 0.5\non_attack_per_minute = 1\n",
                hook.display()
            ),
        )
        .unwrap();
        let out = floodwatch(&[
            "replay",
            repo_path(SYN).to_str().unwrap(),
            "--config",
            config.to_str().unwrap(),
            "--alerts",
            "/dev/null",
        ]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let err = stderr(&out);
        assert!(err.contains("on_attack") && err.contains(needle), "{err}");
        // One run a minute: the attack_end finds the bucket empty and says so.
        assert!(err.contains("rate limit (1 per minute) reached"), "{err}");
    }
}

#[test]
fn bad_output_settings_name_the_key_and_exit_5() {
    let dir = Scratch::new("outputs-bad-config");
    for (toml, needle, line) in [
        ("[output]\nalerts = [\"udp://h:1\"]\n", "output.alerts[0]", 2),
        ("[output]\nblocklist = \"x\"\nblocklist_format = \"pf\"\n", "output.blocklist_format", 3),
        ("[output]\non_attack = [\"notify\"]\n", "absolute path", 2),
        ("[output]\nmetrics = \"everywhere\"\n", "output.metrics", 2),
    ] {
        let config = dir.join("c.toml");
        std::fs::write(&config, toml).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_floodwatch")).arg("check-config").arg(&config).output().unwrap();
        assert_eq!(out.status.code(), Some(5), "{toml}");
        let err = stderr(&out);
        assert!(err.contains(needle) && err.contains(&format!("(line {line})")), "{toml}: {err}");
    }
    let out = floodwatch(&["replay", repo_path(SYN).to_str().unwrap(), "--alerts", "tcp://nohost"]);
    assert_eq!(out.status.code(), Some(5));
    assert!(stderr(&out).contains("expected HOST:PORT"), "{}", stderr(&out));
}
