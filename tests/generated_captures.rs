//! Replays every capture in `captures/` and checks the alerts against the ground-truth JSON
//! the generator wrote beside it.

mod common;

use common::*;
use floodwatch::output::time::rfc3339_micros;
use serde_json::Value;
use std::net::IpAddr;
use std::path::PathBuf;

const NS: i64 = 1_000_000_000;

/// Every `captures/*.json` with the capture it describes.
fn ground_truths() -> Vec<(PathBuf, Value)> {
    let dir = repo_path("captures");
    let mut out = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("captures/ exists") {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "json") {
            let truth: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let capture = dir.join(truth["file"].as_str().expect("truth names its file"));
            out.push((capture, truth));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(out.len() >= 8, "expected at least 8 generated captures, found {}", out.len());
    out
}

/// Parses the ground truth's RFC 3339 µs timestamps back to ns by matching our formatter.
fn parse_time(text: &str, near_ns: i64) -> i64 {
    // Search within ±1 day of a known instant, to the microsecond, by bisection on the string
    // form (the formatter is monotonic and fixed-width).
    let (mut lo, mut hi) = (near_ns - 86_400 * NS, near_ns + 86_400 * NS);
    while hi - lo > 1_000 {
        let mid = lo + (hi - lo) / 2;
        if rfc3339_micros(mid).as_str() < text {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    assert_eq!(rfc3339_micros(hi), text, "unparseable time {text}");
    hi
}

#[test]
fn generated_captures_give_their_ground_truth() {
    for (capture, truth) in ground_truths() {
        let name = capture.display().to_string();
        let (events, outcome) = replay_files(std::slice::from_ref(&capture), settings());
        assert!(outcome.errors.is_empty(), "{name}: {:?}", outcome.errors);
        assert_eq!(outcome.traffic.frames, truth["packets"].as_u64().unwrap(), "{name}: packet count");
        let attacks = truth["attacks"].as_array().unwrap();
        if truth["benign"] == true {
            assert!(attacks.is_empty());
            assert!(events.is_empty(), "{name}: benign capture raised {:?}", attacked(&events));
            continue;
        }
        // A host, or a prefix (carpet bombing): as alerts write it.
        let victim_of = |a: &Value| match a["victim_prefix"].as_u64() {
            Some(len) => format!("{}/{len}", a["victim"].as_str().unwrap()),
            None => a["victim"].as_str().unwrap().to_string(),
        };
        let expected: std::collections::BTreeSet<(String, _)> =
            attacks.iter().map(|a| (victim_of(a), kind_named(a["kind"].as_str().unwrap()))).collect();
        assert_eq!(attacked(&events), expected, "{name}: flagged (victim, kind) pairs");
        for a in attacks {
            let victim = victim_of(a);
            let kind = kind_named(a["kind"].as_str().unwrap());
            let start = starts(&events).into_iter().find(|e| e.victim_text() == victim && e.kind == kind).unwrap();
            let end = ends(&events).into_iter().find(|e| e.attack_id == start.attack_id).expect("attack ended");
            let report = end.end.as_ref().unwrap();
            let t_start = parse_time(a["start"].as_str().unwrap(), start.started_at_ns);
            let t_end = parse_time(a["end"].as_str().unwrap(), start.started_at_ns);
            // Flagged within the first window of the attack, never before it.
            assert!(
                start.started_at_ns >= t_start && start.started_at_ns - t_start <= NS,
                "{name}: started {} s after the first attack packet",
                (start.started_at_ns - t_start) as f64 / 1e9
            );
            // The rate falls below half the threshold within a window of the last packet.
            assert!(
                report.ended_at_ns >= t_end - NS / 2 && report.ended_at_ns <= t_end + NS + NS / 5,
                "{name}: ended {} s after the last attack packet",
                (report.ended_at_ns - t_end) as f64 / 1e9
            );
            if let Some(service) = a["service"].as_str() {
                assert_eq!(start.service, Some(service), "{name}");
            }
            if let Some(hosts) = a["victim_hosts"].as_u64() {
                assert_eq!(end.victim_hosts, Some(hosts), "{name}: hosts of the prefix reached");
            }
            let packets = a["packets"].as_u64().unwrap() as f64;
            assert!(
                (end.packets as f64) >= 0.9 * packets && (end.packets as f64) <= 1.1 * packets,
                "{name}: alert counts {} packets, truth {packets}",
                end.packets
            );
            // Every sender of the attack's traffic counts, the victim's users among them.
            let distinct = a["distinct_sources"].as_u64().unwrap() as f64;
            let users = a["users"].as_u64().unwrap_or(0) as f64;
            let estimate = end.sources.distinct_estimate as f64;
            assert!(
                estimate >= 0.98 * distinct - 1.0 && estimate <= 1.02 * (distinct + users) + 1.0,
                "{name}: {estimate} sources, truth {distinct} attackers and up to {users} users"
            );
            if a["spoofed"] == true {
                assert!(end.sources.spoofed_likely, "{name}: {}", end.sources.verdict);
                assert!(end.offending_ips.is_empty(), "{name}: spoofed sources listed");
            } else {
                assert!(!end.sources.spoofed_likely, "{name}: {}", end.sources.verdict);
                let truth_ips: Vec<IpAddr> =
                    a["sources"].as_array().unwrap().iter().map(|s| s.as_str().unwrap().parse().unwrap()).collect();
                let (p, r) = precision_recall(&end.offending_ips, &truth_ips);
                assert!(p >= 0.99 && r >= 0.99, "{name}: offending precision {p:.3}, recall {r:.3}");
            }
        }
    }
}

/// The committed captures are exactly what the committed generator makes.
#[test]
fn captures_are_reproduced_byte_for_byte_by_the_generator() {
    let dir = std::env::temp_dir().join(format!("floodwatch-capgen-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let written = capgen::write_all(&dir).expect("generator runs");
    assert!(written.len() >= 16, "captures and their ground truth: {written:?}");
    for path in &written {
        let name = path.file_name().unwrap();
        let committed =
            std::fs::read(repo_path("captures").join(name)).unwrap_or_else(|_| panic!("{name:?} not committed"));
        assert!(std::fs::read(path).unwrap() == committed, "{name:?} differs from the generator's output");
        let size = committed.len();
        assert!(size < 4_000_000, "{name:?} is {size} bytes");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
