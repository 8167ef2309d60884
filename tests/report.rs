//! The incident report page, read as a person would read it: every attack of the replay is
//! there with the numbers of its alerts, its charts have labelled axes, the threshold and
//! the start and end, its sources and offending IPs and its verified evidence; the page
//! needs nothing from the network; and `floodwatch report` on a daemon's outputs (alerts,
//! timeline, evidence directory) builds the same page as `replay --report`.

mod common;

use common::*;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

fn floodwatch(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_floodwatch")).args(args).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "floodwatch {args:?}:\n{stderr}");
    stderr
}

fn alerts(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `12345` as the page writes it: `12,345`.
fn grouped(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The part of the page between `from` and the next `to`.
fn between<'a>(page: &'a str, from: &str, to: &str) -> &'a str {
    let start = page.find(from).unwrap_or_else(|| panic!("no {from:?} in the page"));
    let rest = &page[start..];
    &rest[..rest.find(to).unwrap_or(rest.len())]
}

#[test]
fn the_report_of_an_amplification_shows_its_alerts_numbers_charts_sources_and_evidence() {
    let dir = Scratch::new("report");
    let capture = repo_path("captures/dns_amplification.pcap.gz");
    let (alerts_file, timeline, evidence, page_file) =
        (dir.path("alerts.jsonl"), dir.path("timeline.jsonl"), dir.path("evidence"), dir.path("report.html"));
    let stderr = floodwatch(&[
        "replay",
        "--no-progress",
        capture.to_str().unwrap(),
        "--alerts",
        alerts_file.to_str().unwrap(),
        "--timeline",
        timeline.to_str().unwrap(),
        "--evidence-dir",
        evidence.to_str().unwrap(),
        "--report",
        page_file.to_str().unwrap(),
    ]);
    assert!(stderr.contains("report: ") && stderr.contains("timeline: "), "{stderr}");
    let page = std::fs::read_to_string(&page_file).unwrap();
    let alerts = alerts(&alerts_file);
    let end = alerts.iter().find(|a| a["event"] == "attack_end").expect("the attack's end");

    // Self-contained: nothing fetched, nothing run.
    for outside in ["<script", "<link", "<img", "<iframe", "@import", "url(", "src=", "http://", "https://"] {
        assert!(!page.contains(outside), "the page holds {outside:?}");
    }
    assert!(page.starts_with("<!DOCTYPE html>") && page.trim_end().ends_with("</html>"));
    assert!(page.contains("all times UTC"));

    // One section per attack, titled by kind, service and victim, with its alerts' numbers.
    let ids: std::collections::BTreeSet<&str> = alerts.iter().map(|a| a["attack_id"].as_str().unwrap()).collect();
    assert_eq!(page.matches("<section class=\"attack\"").count(), ids.len());
    let section = between(&page, "<section class=\"attack\" id=\"attack-0\">", "</section>");
    assert!(section.contains("<h2>amplification (dns) on 192.0.2.50</h2>"), "{section}");
    for (key, value) in [("peak_pps", "Peak"), ("threshold_pps", "Threshold"), ("packets", "Packets")] {
        let n = grouped(end[key].as_u64().unwrap());
        assert!(between(section, &format!("<th>{value}</th>"), "</tr>").contains(&n), "{value}: {n}");
    }
    assert!(section.contains(end["attack_id"].as_str().unwrap()));
    let duration = format!("{:.1} s", end["duration_s"].as_f64().unwrap());
    assert!(between(section, "<th>Duration</th>", "</tr>").contains(&duration), "{duration}");

    // The traffic charts: from the timeline (a UDP line), axes labelled, threshold and marks.
    let chart = between(section, "<figure><svg class=\"chart\"", "</figure>");
    assert!(chart.contains("data-class=\"udp\""), "no UDP series: the timeline was not used");
    assert!(chart.contains(">time (UTC)</text>") && chart.contains(">packets/s</text>"));
    assert!(chart.contains(&format!("threshold {}", grouped(end["threshold_pps"].as_u64().unwrap()))));
    assert!(chart.contains(">start</text>") && chart.contains(">end</text>"));
    let bits = between(section, "Bits per second by traffic class</title>", "</figure>");
    assert!(bits.contains(">bits/s</text>") && bits.contains("data-class=\"udp\""));
    // The timeline peaks where the alert says (whole seconds, so at or under the window peak).
    let records: Vec<Value> =
        std::fs::read_to_string(&timeline).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let peak_second =
        records.iter().filter(|r| r["victim"] == "192.0.2.50").map(|r| r["packets"]["udp"].as_u64().unwrap_or(0)).max();
    assert!(
        peak_second.is_some_and(|p| p > 1_000 && p <= end["peak_pps"].as_u64().unwrap() * 11 / 10),
        "{peak_second:?}"
    );

    // Sources: the verdict in a sentence, the busiest as bars with their counts.
    let verdict = end["sources"]["verdict"].as_str().unwrap().replace('\'', "&#39;");
    assert!(section.contains(&format!("The sources look real ({verdict})")), "{section}");
    let top = &end["sources"]["top"][0];
    let bars = between(section, "Top sources by packets</title>", "</figure>");
    assert!(bars.contains(top["ip"].as_str().unwrap()) && bars.contains(&grouped(top["packets"].as_u64().unwrap())));

    // Offending IPs: all of them to copy, and as nft and ipset lines.
    let offenders: Vec<&str> = end["offending_ips"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(!offenders.is_empty());
    let listed = between(section, "<textarea class=\"ips\"", "</textarea>");
    let nft = between(section, "<pre class=\"nft\">", "</pre>");
    let ipset = between(section, "<pre class=\"ipset\">", "</pre>");
    for ip in &offenders {
        assert!(listed.contains(&format!("{ip}\n")) || listed.ends_with(ip), "{ip} not listed");
        assert!(nft.contains(ip) && ipset.contains(&format!("add floodwatch-v4 {ip} -exist")), "{ip}");
    }
    assert!(nft.starts_with("<pre class=\"nft\">nft add element inet floodwatch blocklist_v4 { "));

    // Evidence: the file, its packets and SHA-256, checked against the file itself.
    let e = &end["evidence"];
    let evidence_row = between(section, "<table class=\"evidence\">", "</table>");
    assert!(evidence_row.contains(&grouped(e["packets"].as_u64().unwrap())));
    assert!(evidence_row.contains(e["sha256"].as_str().unwrap()));
    assert!(evidence_row.contains("verified: the file&#39;s SHA-256 and packet count match"), "{evidence_row}");

    // The summary at the top names the victim, the peak, the kind, the blocked and the kept.
    let summary = between(&page, "<section id=\"summary\">", "</section>");
    assert!(summary.contains("1 attack between 2026-01-15 12:00:03 and"), "{summary}");
    assert!(summary.contains("<dt>What was hit</dt><dd>192.0.2.50</dd>"));
    assert!(summary.contains(&format!("peak {} packets/s", grouped(end["peak_pps"].as_u64().unwrap()))));
    assert!(summary.contains("amplification of dns (udp)"));
    assert!(summary.contains(&format!("{} source addresses listed", grouped(offenders.len() as u64))));
    assert!(summary.contains("each verified against its file"));
    assert!(page.contains("<section id=\"overview\">") && page.contains("href=\"#attack-0\""));

    // The daemon's way: the same outputs given to `floodwatch report` make the same page,
    // but for the header naming what it was built from.
    let rebuilt = dir.path("rebuilt.html");
    floodwatch(&[
        "report",
        "--alerts",
        alerts_file.to_str().unwrap(),
        "--timeline",
        timeline.to_str().unwrap(),
        "--evidence-dir",
        evidence.to_str().unwrap(),
        "-o",
        rebuilt.to_str().unwrap(),
    ]);
    let rebuilt = std::fs::read_to_string(&rebuilt).unwrap();
    let body = |p: &str| p[p.find("</header>").unwrap()..].to_string();
    assert_eq!(body(&rebuilt), body(&page));
}

#[test]
fn several_attacks_each_get_their_section_in_start_order_and_a_row_of_the_overview() {
    let dir = Scratch::new("report-many");
    let (alerts_file, page_file) = (dir.path("alerts.jsonl"), dir.path("report.html"));
    let capture = repo_path("captures/tcp_flag_floods.pcap.gz");
    floodwatch(&[
        "replay",
        "--no-progress",
        capture.to_str().unwrap(),
        "--alerts",
        alerts_file.to_str().unwrap(),
        "--report",
        page_file.to_str().unwrap(),
    ]);
    let page = std::fs::read_to_string(&page_file).unwrap();
    let starts: Vec<Value> = alerts(&alerts_file).into_iter().filter(|a| a["event"] == "attack_start").collect();
    assert!(starts.len() >= 2, "{} attacks", starts.len());
    let overview = between(&page, "<section id=\"overview\">", "</section>");
    let mut last = 0;
    for (k, start) in starts.iter().enumerate() {
        assert!(overview.contains(&format!("href=\"#attack-{k}\"")));
        let at = page.find(start["attack_id"].as_str().unwrap()).expect("every attack in the page");
        assert!(at > last, "attack {k} out of start order");
        last = at;
    }
    assert_eq!(page.matches("<section class=\"attack\"").count(), starts.len());
}

#[test]
fn alerts_that_are_not_floodwatch_native_alerts_are_refused_naming_the_line() {
    let dir = Scratch::new("report-bad");
    let bad = dir.path("bad.jsonl");
    std::fs::write(&bad, "{\"timestamp\":\"2026-01-15T12:00:03Z\",\"attack_id\":\"ab\"}\n{\"@timestamp\":\"x\"}\n")
        .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(["report", "--alerts", bad.to_str().unwrap(), "-o", dir.path("r.html").to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("bad.jsonl line 2: not a floodwatch alert in the native format"), "{stderr}");
    assert!(!dir.path("r.html").exists());
}

/// The page as a browser shows it: headless Chromium renders the report of
/// `dns_amplification` from disk without one console error (an SVG attribute it cannot
/// read, say) and takes its screenshot.
#[test]
fn chromium_renders_the_report_without_console_errors() {
    if !on_path("chromium") {
        return skip("chromium is not installed (Debian package chromium)");
    }
    let dir = Scratch::new("report-chromium");
    let capture = repo_path("captures/dns_amplification.pcap.gz");
    let page = dir.path("report.html");
    let evidence = dir.path("evidence");
    floodwatch(&[
        "replay",
        "--no-progress",
        capture.to_str().unwrap(),
        "--alerts",
        dir.path("alerts.jsonl").to_str().unwrap(),
        "--evidence-dir",
        evidence.to_str().unwrap(),
        "--report",
        page.to_str().unwrap(),
    ]);
    let shot = dir.path("report.png");
    let out = Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"])
        .args(["--window-size=1000,2600", &format!("--screenshot={}", shot.display())])
        .arg(format!("file://{}", page.display()))
        .env("HOME", &*dir)
        .output()
        .unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "console messages:\n{}", console.join("\n"));
    let png = std::fs::read(&shot).expect("a screenshot");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 50_000, "{} bytes", png.len());
}
