//! The daemon under its supervisor: sd_notify messages, SIGHUP reloads (good and bad
//! configs) and alert files reopened after logrotate moved them, SIGTERM shutdown, and the
//! errors a user meets when capture cannot start.
//! Captures on the loopback interface, so it needs root (or CAP_NET_RAW).

mod common;

use common::Scratch;

use std::io::{BufRead, BufReader};
use std::os::unix::net::UnixDatagram;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Kills the daemon if a test fails before it exits by itself.
struct Daemon(Child);

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn signal(child: &Child, sig: i32) {
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, sig) };
}

/// The child's stderr, line by line, read by a thread.
fn stderr_lines(child: &mut Child) -> mpsc::Receiver<String> {
    let stderr = child.stderr.take().expect("stderr is piped");
    let (tx, lines) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    lines
}

/// Starts `floodwatch ARGS` with `envs` added to its environment: the daemon and its stderr lines.
fn spawn_daemon(args: &[&str], envs: &[(&str, &std::ffi::OsStr)]) -> (Daemon, mpsc::Receiver<String>) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = stderr_lines(&mut child);
    (Daemon(child), lines)
}

/// Starts `floodwatch ARGS` and waits until it captures: the daemon, its stderr lines, and
/// the lines seen so far.
fn start_daemon(args: &[&str]) -> (Daemon, mpsc::Receiver<String>, Vec<String>) {
    let (daemon, lines) = spawn_daemon(args, &[]);
    let mut seen = Vec::new();
    assert!(wait_for(&lines, "capture started", &mut seen), "{seen:?}");
    (daemon, lines, seen)
}

/// Waits for a line containing `needle` on the channel of stderr lines.
fn wait_for(lines: &mpsc::Receiver<String>, needle: &str, seen: &mut Vec<String>) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match lines.recv_timeout(left) {
            Ok(line) => {
                let hit = line.contains(needle);
                seen.push(line);
                if hit {
                    return true;
                }
            }
            Err(_) => return false,
        }
    }
    false
}

#[test]
fn notifies_systemd_reloads_on_sighup_and_stops_on_sigterm() {
    let scratch = Scratch::new("daemon-notify");
    if !is_root() {
        return common::skip("live capture on lo needs root or CAP_NET_RAW");
    }
    let socket_path = scratch.path("notify.sock");
    let _ = std::fs::remove_file(&socket_path);
    let notify = UnixDatagram::bind(&socket_path).unwrap();
    notify.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let config = scratch.path("floodwatch.toml");
    std::fs::write(&config, "[capture]\ninterface = \"lo\"\n[thresholds]\nsyn_flood = 5000\n").unwrap();

    // WATCHDOG_PID is unset: the interval applies to the child itself.
    let (daemon, lines) = spawn_daemon(
        &["run", "--config", config.to_str().unwrap(), "--log-format", "json"],
        &[("NOTIFY_SOCKET", socket_path.as_os_str()), ("WATCHDOG_USEC", "400000".as_ref())],
    );

    let mut got = Vec::new();
    let mut buf = [0u8; 512];
    while !(got.iter().any(|m: &String| m == "READY=1") && got.iter().any(|m| m == "WATCHDOG=1")) {
        let n = notify.recv(&mut buf).expect("READY=1 and WATCHDOG=1 arrive");
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    let mut seen = Vec::new();
    assert!(wait_for(&lines, "capture started", &mut seen), "{seen:?}");
    assert!(seen.iter().all(|l| serde_json::from_str::<serde_json::Value>(l).is_ok()), "JSON logs: {seen:?}");

    // A broken config on reload is refused and the daemon keeps running.
    std::fs::write(&config, "[thresholds]\nsyn_flood = \"lots\"\n").unwrap();
    signal(&daemon.0, libc::SIGHUP);
    assert!(wait_for(&lines, "keeping the running config", &mut seen), "{seen:?}");
    // A good one is applied.
    std::fs::write(&config, "[capture]\ninterface = \"lo\"\n[thresholds]\nsyn_flood = 2000\n").unwrap();
    signal(&daemon.0, libc::SIGHUP);
    assert!(wait_for(&lines, "configuration reloaded", &mut seen), "{seen:?}");

    let mut daemon = daemon;
    signal(&daemon.0, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(2);
    let status = loop {
        if let Some(s) = daemon.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "still running 2 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0));
    while let Ok(n) = notify.recv(&mut buf) {
        got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        if got.last().is_some_and(|m| m == "STOPPING=1") {
            break;
        }
    }
    assert!(got.iter().any(|m| m == "STOPPING=1"), "{got:?}");
}

/// Reads the alert file's events as (event, kind) pairs.
fn events_in(path: &std::path::Path) -> Vec<(String, String)> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"));
            (v["event"].as_str().unwrap_or("").to_string(), v["kind"].as_str().unwrap_or("").to_string())
        })
        .collect()
}

#[test]
fn alert_files_are_reopened_on_sighup_after_logrotate_moved_them() {
    let scratch = Scratch::new("daemon-rotate");
    if !is_root() {
        return common::skip("live capture on lo needs root or CAP_NET_RAW");
    }
    let alerts = scratch.path("rotate.jsonl");
    let rotated = scratch.path("rotate.jsonl.1");
    let _ = std::fs::remove_file(&alerts);
    let _ = std::fs::remove_file(&rotated);
    let config = scratch.path("rotate.toml");
    // A UDP flood on loopback at ~1,000 pps is an attack at 200 pps; the port unreachables
    // it draws stay far below the ICMP threshold.
    std::fs::write(&config, "[capture]\ninterface = \"lo\"\n[thresholds]\nudp_flood = 200\nicmp_flood = 1000000\n")
        .unwrap();
    let (mut daemon, lines, mut seen) =
        start_daemon(&["run", "--config", config.to_str().unwrap(), "--alerts", alerts.to_str().unwrap()]);

    // 1,500 datagrams to a closed port on 127.0.0.9, 1 ms apart.
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    for _ in 0..1500 {
        let _ = socket.send_to(b"flood", "127.0.0.9:9");
        std::thread::sleep(Duration::from_millis(1));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !events_in(&alerts).iter().any(|(e, k)| e == "attack_start" && k == "udp_flood") {
        assert!(Instant::now() < deadline, "no udp_flood attack_start in {}: {seen:?}", alerts.display());
        std::thread::sleep(Duration::from_millis(50));
    }
    // logrotate: move the file away, then SIGHUP; the attack's end must land in a new file.
    std::fs::rename(&alerts, &rotated).unwrap();
    signal(&daemon.0, libc::SIGHUP);
    assert!(wait_for(&lines, "alert files reopened", &mut seen), "{seen:?}");
    signal(&daemon.0, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(10);
    while daemon.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running 10 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = events_in(&rotated);
    let after = events_in(&alerts);
    assert!(before.contains(&("attack_start".into(), "udp_flood".into())), "{before:?}");
    assert!(!before.iter().any(|(e, _)| e == "attack_end"), "the end came after the rotation: {before:?}");
    assert!(after.contains(&("attack_end".into(), "udp_flood".into())), "new file: {after:?}");
}

#[test]
fn capture_errors_name_the_problem_and_exit_6() {
    let out =
        Command::new(env!("CARGO_BIN_EXE_floodwatch")).args(["run", "--interface", "fw-no-such0"]).output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    if is_root() {
        assert_eq!(out.status.code(), Some(6), "{err}");
        assert!(err.contains("interface fw-no-such0 does not exist") && err.contains("lo"), "{err}");
    } else {
        // Without privilege the first failure met is the permission, or the missing interface.
        assert_eq!(out.status.code(), Some(6), "{err}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_floodwatch")).args(["run"]).output().unwrap();
    assert_eq!(out.status.code(), Some(5));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--interface"));
    if !cfg!(feature = "libpcap") {
        let out = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
            .args(["run", "-i", "lo", "--backend", "libpcap"])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(6));
        assert!(String::from_utf8_lossy(&out.stderr).contains("--features libpcap"));
    }
}

/// The libpcap backend with a kernel BPF filter: only the filtered traffic reaches the
/// analyzer. Runs in the `--features libpcap` build (CI runs it).
#[test]
fn libpcap_backend_applies_its_filter() {
    let scratch = Scratch::new("daemon-libpcap");
    if !cfg!(feature = "libpcap") {
        eprintln!("SKIPPED: built without --features libpcap (.ci/run tests that build too)");
        return;
    }
    if !is_root() {
        return common::skip("live capture on lo needs root or CAP_NET_RAW");
    }
    if Command::new("hping3").arg("--version").output().is_err() {
        return common::skip("hping3 is not installed");
    }
    let alerts = scratch.path("libpcap-alerts.jsonl");
    let _ = std::fs::remove_file(&alerts);
    let config = scratch.path("libpcap.toml");
    // Only UDP passes the filter, so a SYN flood on the same interface must go unseen.
    std::fs::write(&config, "[capture]\ninterface = \"lo\"\nbackend = \"libpcap\"\n[detection]\nquiet_s = 1\n")
        .unwrap();
    let (mut daemon, _lines, _seen) = start_daemon(&[
        "run",
        "--config",
        config.to_str().unwrap(),
        "--filter",
        "udp",
        "--alerts",
        alerts.to_str().unwrap(),
    ]);
    for args in [["-S", "-p", "80"], ["--udp", "-p", "9999"]] {
        let status = Command::new("timeout")
            .args(["2", "hping3", "--flood"])
            .args(args)
            .arg("127.0.0.77")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.code().is_some());
    }
    std::thread::sleep(Duration::from_secs(3));
    signal(&daemon.0, libc::SIGTERM);
    let deadline = Instant::now() + Duration::from_secs(5);
    while daemon.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "still running 5 s after SIGTERM");
        std::thread::sleep(Duration::from_millis(20));
    }
    let text = std::fs::read_to_string(&alerts).unwrap_or_default();
    let kinds: Vec<String> = text
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|a| a["event"] == "attack_start")
        .map(|a| format!("{} {}", a["kind"].as_str().unwrap_or(""), a["victim"].as_str().unwrap_or("")))
        .collect();
    assert_eq!(kinds, vec!["udp_flood 127.0.0.77".to_string()], "{text}");
}
