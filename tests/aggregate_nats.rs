//! Sensors and their aggregator over a real `nats-server` started by the test, on loopback:
//! three `floodwatch replay --publish` sensors, each given a third of a SYN flood's bots (as
//! three links would carry it), raise nothing alone at a threshold half the flood's rate;
//! `floodwatch aggregate` reports the flood once, with every bot the whole capture lists,
//! the three sensors, and a start within 2 s of the whole capture's.
//!
//! Needs `nats-server`; skips with a printed reason otherwise. Runs in about 15 s.

mod common;

use common::{on_path, repo_path, skip, Pcap, Scratch};
use floodwatch::analyze::{AttackKind, DetectionSettings, EventKind};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::{IpAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Half the capture's 5,000 SYN/s: each third (about 1,700) stays below, the whole crosses.
const SYN_THRESHOLD: u32 = 2_500;
const HASH_SEED: u64 = 7;
const VICTIM: &str = "198.51.100.10";
/// Bound on every wait.
const WAIT: Duration = Duration::from_secs(30);

/// A child killed on drop unless it has exited.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn spawn(program: &str, args: &[&str], log: &Path) -> Proc {
    let log = std::fs::File::create(log).unwrap();
    let child = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    Proc(child)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < deadline, "waited {WAIT:?} for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn alerts(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Seconds since midnight of an RFC 3339 UTC time (the test's times share a day).
fn time_of_day(rfc3339: &str) -> f64 {
    let time = rfc3339.split('T').nth(1).unwrap().trim_end_matches('Z');
    time.split(':').map(|x| x.parse::<f64>().unwrap()).fold(0.0, |t, x| t * 60.0 + x)
}

#[test]
fn three_sensors_below_the_threshold_make_one_attack_at_their_aggregator() {
    if !on_path("nats-server") {
        skip("nats-server is not installed");
        return;
    }
    let dir = Scratch::new("aggregate-nats");
    let capture = repo_path("captures/syn_flood_real_sources.pcap");
    // Each frame goes to the sensor of its bot (the lower address of the two), so a sensor
    // sees its bots' SYNs and the victim's answers to them.
    let pcap = Pcap::read(&capture);
    let mut thirds = vec![pcap.header.clone(); 3];
    for record in &pcap.records {
        let frame = &record[16..];
        let part = match frame.get(26..34) {
            Some(addrs) if frame[12..14] == [8, 0] => std::cmp::min(&addrs[..4], &addrs[4..])[3] as usize % 3,
            _ => 0,
        };
        thirds[part].extend_from_slice(record);
    }
    let thirds: Vec<_> = thirds
        .iter()
        .enumerate()
        .map(|(k, bytes)| {
            let path = dir.path(&format!("third-{k}.pcap"));
            std::fs::write(&path, bytes).unwrap();
            path
        })
        .collect();

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let _nats = spawn("nats-server", &["-a", "127.0.0.1", "-p", &port], &dir.path("nats.log"));
    wait_until("nats-server to listen", || TcpStream::connect(format!("127.0.0.1:{port}")).is_ok());
    let url = format!("nats://127.0.0.1:{port}");
    let floodwatch = env!("CARGO_BIN_EXE_floodwatch");
    let (seed, threshold) = (HASH_SEED.to_string(), SYN_THRESHOLD.to_string());
    let detection = ["--hash-seed", &seed, "--syn-pps", &threshold];
    let aggregated = dir.path("aggregate.jsonl");
    let aggregator_log = dir.path("aggregate.log");
    let mut aggregator = spawn(
        floodwatch,
        &[&["aggregate", "--nats", &url, "--grace", "3", "--alerts", aggregated.to_str().unwrap()], &detection[..]]
            .concat(),
        &aggregator_log,
    );
    wait_until("the aggregator to connect", || {
        std::fs::read_to_string(&aggregator_log).unwrap_or_default().contains("connected")
    });

    let sensors: Vec<_> = thirds
        .iter()
        .enumerate()
        .map(|(k, third)| {
            let (name, own) = (format!("edge-{k}"), dir.path(&format!("edge-{k}.jsonl")));
            let args =
                ["replay", "--no-progress", "--publish", &url, "--sensor", &name, "--alerts", own.to_str().unwrap()];
            let child =
                Command::new(floodwatch).args(args).args(detection).arg(third).stderr(Stdio::piped()).spawn().unwrap();
            (child, own)
        })
        .collect();
    for (child, own) in sensors {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "sensor: {stderr}");
        assert!(alerts(&own).is_empty(), "a third of the flood is below the threshold: {stderr}");
    }

    wait_until("the aggregator's attack_end", || alerts(&aggregated).iter().any(|a| a["event"] == "attack_end"));
    sigterm(&aggregator.0);
    assert!(aggregator.0.wait().unwrap().success(), "{}", std::fs::read_to_string(&aggregator_log).unwrap());
    let log = std::fs::read_to_string(&aggregator_log).unwrap();
    let all = alerts(&aggregated);
    let starts: Vec<&Value> = all.iter().filter(|a| a["event"] == "attack_start").collect();
    assert_eq!(starts.len(), 1, "{all:#?}\n{log}");
    let start = starts[0];
    assert_eq!((start["kind"].as_str(), start["victim"].as_str()), (Some("syn_flood"), Some(VICTIM)));
    let sensors: BTreeSet<&str> = start["sensors"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(sensors, BTreeSet::from(["edge-0", "edge-1", "edge-2"]));

    // The whole capture, seen by one analyzer at the same threshold.
    let mut settings = DetectionSettings { hash_seed: Some(HASH_SEED), ..DetectionSettings::default() };
    settings.thresholds[AttackKind::SynFlood as usize] = SYN_THRESHOLD;
    let (whole, _) = common::replay_files(&[capture], settings);
    let whole_start = whole.iter().find(|e| e.event == EventKind::Start).expect("the whole capture's flood");
    let offenders =
        |ips: &[Value]| -> BTreeSet<IpAddr> { ips.iter().map(|ip| ip.as_str().unwrap().parse().unwrap()).collect() };
    let expected: BTreeSet<IpAddr> = whole_start.offending_ips.iter().copied().collect();
    assert_eq!(expected.len(), 300);
    assert_eq!(offenders(start["offending_ips"].as_array().unwrap()), expected);
    let whole_at = (whole_start.timestamp_ns.rem_euclid(86_400_000_000_000)) as f64 / 1e9;
    let at = time_of_day(start["timestamp"].as_str().unwrap());
    assert!((at - whole_at).abs() <= 2.0, "aggregated start at {at} s, the whole capture's at {whole_at} s");
    println!(
        "aggregated: syn_flood at {at:.3} s of the day (whole capture {whole_at:.3}), {} offenders, sensors {sensors:?}",
        expected.len()
    );
}

/// Asks the aggregator to stop as its service manager would.
fn sigterm(child: &Child) {
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
}

/// An alert sink `nats://HOST:PORT/SUBJECT` on a server running JetStream, with a stream that
/// takes the subject: every alert of a replay waits in the stream for a collector that was
/// not there while it ran, as the replay's file sink has it.
#[test]
fn alerts_to_a_jetstream_subject_wait_in_the_stream_for_their_collector() {
    if !on_path("nats-server") {
        skip("nats-server is not installed");
        return;
    }
    let dir = Scratch::new("alerts-jetstream");
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let store = dir.path("jetstream");
    let _nats = spawn(
        "nats-server",
        &["-js", "-sd", store.to_str().unwrap(), "-a", "127.0.0.1", "-p", &port],
        &dir.path("nats.log"),
    );
    wait_until("nats-server to listen", || TcpStream::connect(format!("127.0.0.1:{port}")).is_ok());
    let url = format!("nats://127.0.0.1:{port}");
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let jetstream = runtime.block_on(async {
        let js = async_nats::jetstream::new(async_nats::connect(&url).await.unwrap());
        let config = async_nats::jetstream::stream::Config {
            name: "ALERTS".into(),
            subjects: vec!["floodwatch.alerts".into()],
            ..Default::default()
        };
        js.create_stream(config).await.unwrap();
        js
    });

    let file = dir.path("alerts.jsonl");
    let captures = ["syn_flood_real_sources.pcap", "udp_flood.pcap"].map(|c| repo_path(&format!("captures/{c}")));
    let out = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(["replay", "--no-progress", "--alerts", &format!("{url}/floodwatch.alerts"), "--alerts"])
        .arg(&file)
        .args(&captures)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let expected = alerts(&file);
    assert!(expected.len() >= 4, "{expected:#?}");

    let stored: Vec<Value> = runtime.block_on(async {
        let mut stream = jetstream.get_stream("ALERTS").await.unwrap();
        let count = stream.info().await.unwrap().state.messages;
        let mut stored = Vec::new();
        for sequence in 1..=count {
            let message = stream.get_raw_message(sequence).await.unwrap();
            stored.push(serde_json::from_slice(&message.payload).unwrap());
        }
        stored
    });
    assert_eq!(stored, expected, "{stderr}");
    assert!(stderr.contains(&format!("{url}/floodwatch.alerts: {} delivered", expected.len())), "{stderr}");
}
