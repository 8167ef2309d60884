//! Sensors and their aggregator over a real `nats-server` started by the test, on loopback:
//! three `floodwatch replay --publish` sensors, each given a third of a SYN flood's bots (as
//! three links would carry it), raise nothing alone at a threshold half the flood's rate;
//! `floodwatch aggregate` reports the flood once, with every bot the whole capture lists,
//! the three sensors, and a start within 2 s of the whole capture's.
//!
//! Also: a sensor killed mid-flood (the aggregator closes the seconds it misses as partial
//! and ends nothing early), the server stopped and started again during a flood (the
//! sensor's own alerts come out meanwhile, nothing is dropped, both reconnect), and alerts
//! to a JetStream subject (they wait in the stream for their collector).
//!
//! Needs `nats-server`; skips with a printed reason otherwise. Runs in about 15 s.

mod common;

use common::{on_path, repo_path, skip, Pcap, Scratch};
use floodwatch::analyze::{AttackKind, DetectionSettings, EventKind};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
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
    if without_nats_server() {
        return;
    }
    let dir = Scratch::new("aggregate-nats");
    let capture = repo_path("captures/syn_flood_real_sources.pcap");
    let (header, thirds) = thirds_of_the_flood();
    let thirds: Vec<_> = thirds
        .iter()
        .enumerate()
        .map(|(k, records)| {
            let path = dir.path(&format!("third-{k}.pcap"));
            std::fs::write(&path, [header.clone(), records.concat()].concat()).unwrap();
            path
        })
        .collect();

    let (port, _nats) = start_nats(&dir, &[]);
    let url = format!("nats://127.0.0.1:{port}");
    let floodwatch = env!("CARGO_BIN_EXE_floodwatch");
    let (seed, threshold) = (HASH_SEED.to_string(), SYN_THRESHOLD.to_string());
    let detection = ["--hash-seed", &seed, "--syn-pps", &threshold];
    let aggregated = dir.path("aggregate.jsonl");
    let aggregator = start_aggregator(&dir, &url, "3", "aggregate");
    // A second aggregator on the same subjects, for redundancy: the same alerts, the same ids.
    let standby = start_aggregator(&dir, &url, "3", "standby");

    let sensors: Vec<_> = thirds
        .iter()
        .enumerate()
        .map(|(k, third)| {
            let (name, own) = (format!("edge-{k}"), dir.path(&format!("edge-{k}.jsonl")));
            // Sensor k analyzes on k + 1 threads: sharded sensors publish whole seconds too.
            let threads = (k + 1).to_string();
            let args = ["replay", "--no-progress", "--threads", &threads, "--publish", &url, "--sensor", &name];
            let child = Command::new(floodwatch)
                .args(args)
                .args(["--alerts", own.to_str().unwrap()])
                .args(detection)
                .arg(third)
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            (child, own)
        })
        .collect();
    for (child, own) in sensors {
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "sensor: {stderr}");
        assert!(alerts(&own).is_empty(), "a third of the flood is below the threshold: {stderr}");
    }

    let ended = |name: &str| alerts(&dir.path(&format!("{name}.jsonl"))).iter().any(|a| a["event"] == "attack_end");
    wait_until("both aggregators' attack_end", || ended("aggregate") && ended("standby"));
    let log = stop_aggregator(aggregator, &dir, "aggregate");
    stop_aggregator(standby, &dir, "standby");
    let all = alerts(&aggregated);
    let brief =
        |a: &Value| (a["event"].clone(), a["attack_id"].clone(), a["victim"].clone(), a["offending_ips"].clone());
    let standby_alerts = alerts(&dir.path("standby.jsonl"));
    assert_eq!(standby_alerts.iter().map(brief).collect::<Vec<_>>(), all.iter().map(brief).collect::<Vec<_>>());
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

/// The pcap header of `syn_flood_real_sources` and its records in three parts, as three
/// links would carry them: each frame goes to the part of its bot (the lower address of the
/// two), so a part holds its bots' SYNs and the victim's answers to them.
fn thirds_of_the_flood() -> (Vec<u8>, Vec<Vec<Vec<u8>>>) {
    let pcap = Pcap::read(&repo_path("captures/syn_flood_real_sources.pcap"));
    let mut thirds = vec![Vec::new(), Vec::new(), Vec::new()];
    for record in pcap.records {
        let frame = &record[16..];
        let part = match frame.get(26..34) {
            Some(addrs) if frame[12..14] == [8, 0] => std::cmp::min(&addrs[..4], &addrs[4..])[3] as usize % 3,
            _ => 0,
        };
        thirds[part].push(record);
    }
    (pcap.header, thirds)
}

/// A nats-server on `port` of 127.0.0.1, listening.
fn start_nats_on(dir: &Scratch, port: &str, extra: &[&str]) -> Proc {
    let log = dir.path(&format!("nats-{}.log", std::time::SystemTime::UNIX_EPOCH.elapsed().unwrap().as_nanos()));
    let nats = spawn("nats-server", &[&["-a", "127.0.0.1", "-p", port], extra].concat(), &log);
    wait_until("nats-server to listen", || TcpStream::connect(format!("127.0.0.1:{port}")).is_ok());
    nats
}

/// A nats-server on a free port; the port.
fn start_nats(dir: &Scratch, extra: &[&str]) -> (String, Proc) {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port().to_string();
    let nats = start_nats_on(dir, &port, extra);
    (port, nats)
}

/// `floodwatch aggregate` at the test's seed and threshold, alerts to `aggregate.jsonl` and
/// its log to `aggregate.log` in `dir`, once connected.
/// An aggregator writing its alerts to `{name}.jsonl` and its log to `{name}.log`.
fn start_aggregator(dir: &Scratch, url: &str, grace: &str, name: &str) -> Proc {
    let (seed, threshold) = (HASH_SEED.to_string(), SYN_THRESHOLD.to_string());
    let alerts = dir.path(&format!("{name}.jsonl"));
    let log = dir.path(&format!("{name}.log"));
    let args = ["aggregate", "--nats", url, "--grace", grace, "--alerts", alerts.to_str().unwrap()];
    let detection = ["--hash-seed", &seed, "--syn-pps", &threshold];
    let aggregator = spawn(env!("CARGO_BIN_EXE_floodwatch"), &[&args[..], &detection[..]].concat(), &log);
    wait_until("the aggregator to connect", || std::fs::read_to_string(&log).unwrap_or_default().contains("connected"));
    aggregator
}

/// A sensor replaying what the test writes to its standard input.
struct PipedSensor {
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    alerts: std::path::PathBuf,
    log: std::path::PathBuf,
}

impl PipedSensor {
    fn start(dir: &Scratch, url: &str, name: &str, header: &[u8]) -> PipedSensor {
        let (seed, threshold) = (HASH_SEED.to_string(), SYN_THRESHOLD.to_string());
        let (alerts, log) = (dir.path(&format!("{name}.jsonl")), dir.path(&format!("{name}.log")));
        let mut child = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
            .args(["replay", "--no-progress", "--publish", url, "--sensor", name, "--alerts"])
            .arg(&alerts)
            .args(["--hash-seed", &seed, "--syn-pps", &threshold, "-"])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take();
        if let Some(pipe) = stdin.as_mut() {
            pipe.write_all(header).unwrap();
        }
        PipedSensor { child, stdin, alerts, log }
    }

    fn write(&mut self, records: &[&Vec<u8>]) {
        if let Some(pipe) = self.stdin.as_mut() {
            for r in records {
                pipe.write_all(r).unwrap();
            }
            pipe.flush().unwrap();
        }
    }

    /// Closes its input and waits for it to exit; its stderr.
    fn finish(mut self) -> String {
        drop(self.stdin.take());
        let status = self.child.wait().unwrap();
        let log = std::fs::read_to_string(&self.log).unwrap();
        assert!(status.success(), "{log}");
        log
    }
}

/// The seconds of a record (its pcap header's).
fn second(record: &[u8]) -> u32 {
    u32::from_le_bytes(record[..4].try_into().unwrap())
}

/// The records of `part` in second `s` of the capture.
fn second_of(part: &[Vec<u8>], s: u32) -> Vec<&Vec<u8>> {
    part.iter().filter(|r| second(r) == s).collect()
}

/// The capture's seconds, first to last.
fn seconds(parts: &[Vec<Vec<u8>>]) -> std::ops::RangeInclusive<u32> {
    let times: Vec<u32> = parts.iter().flatten().map(|r| second(r)).collect();
    *times.iter().min().unwrap()..=*times.iter().max().unwrap()
}

/// A sensor killed during the flood: the aggregator goes on, closes the seconds it misses as
/// partial, and the flood (two thirds of it still above the threshold) does not end before
/// it does.
#[test]
fn a_sensor_killed_mid_flood_leaves_partial_seconds_and_no_false_end() {
    if without_nats_server() {
        return;
    }
    let dir = Scratch::new("aggregate-kill");
    let (header, thirds) = thirds_of_the_flood();
    let (port, _nats) = start_nats(&dir, &[]);
    let url = format!("nats://127.0.0.1:{port}");
    let aggregator = start_aggregator(&dir, &url, "1", "aggregate");
    let mut sensors: Vec<Option<PipedSensor>> =
        (0..3).map(|k| Some(PipedSensor::start(&dir, &url, &format!("edge-{k}"), &header))).collect();
    let all = seconds(&thirds);
    // The flood fills seconds 3 and 4 of the capture. A sensor summarizes a second when the
    // next begins: edge-2, killed as second 5 begins, reported second 3 but not second 4.
    let kill_at = all.start() + 5;
    for s in all.clone() {
        if s == kill_at {
            let mut killed = sensors[2].take().unwrap();
            killed.child.kill().unwrap();
            killed.child.wait().unwrap();
        }
        for (sensor, part) in sensors.iter_mut().zip(&thirds) {
            if let Some(sensor) = sensor.as_mut() {
                sensor.write(&second_of(part, s));
            }
        }
        // The pipes' packet time moves on about as fast as the wall clock.
        std::thread::sleep(Duration::from_millis(400));
    }
    for sensor in sensors.into_iter().flatten() {
        sensor.finish();
    }
    let aggregated = dir.path("aggregate.jsonl");
    wait_until("the aggregator's attack_end", || alerts(&aggregated).iter().any(|a| a["event"] == "attack_end"));
    let log = stop_aggregator(aggregator, &dir, "aggregate");
    let all_alerts = alerts(&aggregated);
    let events: Vec<&str> = all_alerts.iter().map(|a| a["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["attack_start", "attack_end"], "{log}");
    let end = &all_alerts[1];
    // The flood's last SYN is at 12:00:04.9999: the attack lasted until then, not the kill.
    assert!(time_of_day(end["ended_at"].as_str().unwrap()) >= time_of_day("2026-01-15T12:00:04.900000Z"), "{end:#}");
    assert!(log.contains("second closed partial"), "{log}");
    let sensors: BTreeSet<&str> = end["sensors"].as_array().unwrap().iter().map(|s| s.as_str().unwrap()).collect();
    assert_eq!(sensors, BTreeSet::from(["edge-0", "edge-1", "edge-2"]));
}

/// The NATS server stopped during a flood and started again: the sensor's own alerts come
/// out while it is away (detection never waits on NATS), the same as without publishing,
/// nothing is dropped, and once the
/// sensor and the aggregator are connected again the aggregator gets every second after.
#[test]
fn the_nats_server_away_during_a_flood_costs_the_sensor_nothing() {
    if without_nats_server() {
        return;
    }
    let dir = Scratch::new("aggregate-restart");
    let (header, thirds) = thirds_of_the_flood();
    let mut whole: Vec<Vec<u8>> = thirds.into_iter().flatten().collect();
    whole.sort_by_key(|r| (second(r), u32::from_le_bytes(r[4..8].try_into().unwrap())));
    let whole = vec![whole];
    let (port, nats) = start_nats(&dir, &[]);
    let url = format!("nats://127.0.0.1:{port}");
    let aggregator = start_aggregator(&dir, &url, "1", "aggregate");
    // One sensor sees the whole flood, above its own threshold.
    let mut sensor = PipedSensor::start(&dir, &url, "edge-0", &header);
    let all = seconds(&whole);
    let flood = all.start() + 3;
    let connects = |log: &Path| std::fs::read_to_string(log).unwrap_or_default().matches("event: connected").count();
    let mut nats = Some(nats);
    let mut written_after = 0;
    for s in all.clone() {
        if s == flood {
            drop(nats.take());
        }
        sensor.write(&second_of(&whole[0], s));
        written_after += u32::from(s > flood + 1);
        if s == flood + 1 {
            // Its own attack_start, written with NATS away.
            wait_until("the sensor's attack_start with NATS away", || {
                alerts(&sensor.alerts).iter().any(|a| a["event"] == "attack_start")
            });
            nats = Some(start_nats_on(&dir, &port, &[]));
            wait_until("the sensor and the aggregator to connect again", || {
                connects(&sensor.log) >= 2 && connects(&dir.path("aggregate.log")) >= 2
            });
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    let log = sensor.finish();
    let own = alerts(&dir.path("edge-0.jsonl"));
    let events: Vec<&str> = own.iter().map(|a| a["event"].as_str().unwrap()).collect();
    assert_eq!(events, ["attack_start", "attack_end"], "{log}");
    assert!(log.contains(" 0 dropped (queue full), 0 refused"), "{log}");
    // Nothing lost or late in packet time: the alerts of the same records replayed from a
    // file by a floodwatch that publishes nothing.
    let file = dir.path("whole.pcap");
    std::fs::write(&file, [header.clone(), whole[0].concat()].concat()).unwrap();
    let alone = dir.path("alone.jsonl");
    let (seed, threshold) = (HASH_SEED.to_string(), SYN_THRESHOLD.to_string());
    let status = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(["replay", "--no-progress", "--no-summary", "--hash-seed", &seed, "--syn-pps", &threshold, "--alerts"])
        .args([&alone, &file])
        .status()
        .unwrap();
    assert!(status.success());
    let brief =
        |a: &Value| (a["event"].clone(), a["timestamp"].clone(), a["attack_id"].clone(), a["offending_ips"].clone());
    assert_eq!(own.iter().map(brief).collect::<Vec<_>>(), alerts(&alone).iter().map(brief).collect::<Vec<_>>());
    let aggregator_log = stop_aggregator(aggregator, &dir, "aggregate");
    let received: u32 = aggregator_log
        .split("aggregator stopped summaries=")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{aggregator_log}"));
    // Before the outage, the summaries of the first two seconds (a second is summarized
    // when the next one begins); after the reconnections, one per second written then, and
    // the last second's at the end of input.
    assert!(received > 2 + written_after, "{received} summaries received\n{aggregator_log}");
    drop(nats);
}

/// True (having said why) when the test cannot run.
fn without_nats_server() -> bool {
    let missing = !on_path("nats-server");
    if missing {
        skip("nats-server is not installed");
    }
    missing
}

/// Stops the aggregator as its service manager would (SIGTERM); it exits 0. Its log.
fn stop_aggregator(mut aggregator: Proc, dir: &Scratch, name: &str) -> String {
    let status = Command::new("kill").args(["-TERM", &aggregator.0.id().to_string()]).status().unwrap();
    assert!(status.success());
    let exited = aggregator.0.wait().unwrap();
    let log = std::fs::read_to_string(dir.path(&format!("{name}.log"))).unwrap();
    assert!(exited.success(), "{log}");
    log
}

/// An alert sink `nats://HOST:PORT/SUBJECT` on a server running JetStream, with a stream that
/// takes the subject: every alert of a replay waits in the stream for a collector that was
/// not there while it ran, as the replay's file sink has it.
#[test]
fn alerts_to_a_jetstream_subject_wait_in_the_stream_for_their_collector() {
    if without_nats_server() {
        return;
    }
    let dir = Scratch::new("alerts-jetstream");
    let store = dir.path("jetstream");
    let (port, _nats) = start_nats(&dir, &["-js", "-sd", store.to_str().unwrap()]);
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
