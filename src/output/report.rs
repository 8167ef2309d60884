//! The incident report: one self-contained HTML page (inline CSS and SVG, no script, no
//! font or image from anywhere) built from the native alerts of a replay or a daemon, its
//! timeline (`--timeline`) and its evidence directory. At the top, a summary for a hosting
//! provider or an incident responder (what was hit, when, how hard, how, from where, what
//! was blocked, what evidence is kept); then an overview of every attack on one time axis;
//! then per attack its facts, its traffic by class against the threshold with the start and
//! end marked, its top sources with the spoofing verdict, the offending IPs as a list and as
//! nft/ipset lines, and its evidence files with packet counts and SHA-256 (checked against
//! the files when the directory is given). Times are UTC and say so.

use super::blocklist::NAME as BLOCKLIST_NAME;
use super::evidence::hex;
use super::time::{parse_rfc3339, rfc3339_micros};
use super::timeline::TimelineRecord;
use crate::analyze::summary::SecondSummary;
use crate::capture::{CaptureError, FileSource};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Seconds of timeline shown before an attack's start and after its end.
const MARGIN_S: i64 = 10;
/// Top sources drawn as bars (the offending IPs are all listed).
const BARS: usize = 20;
/// Chart size in SVG units.
const W: f64 = 900.0;
const H: f64 = 260.0;
/// Margins around a chart's plot: left, right, top, bottom.
const PAD: (f64, f64, f64, f64) = (70.0, 40.0, 20.0, 45.0);
/// Colours per traffic class, in `Class::ALL` order, then one for an unknown class.
const CLASS_COLOURS: [(&str, &str); 8] = [
    ("syn", "#d62728"),
    ("synack", "#ff7f0e"),
    ("udp", "#1f77b4"),
    ("icmp", "#2ca02c"),
    ("fragment", "#9467bd"),
    ("ack", "#8c564b"),
    ("rst", "#e377c2"),
    ("tcp_other", "#7f7f7f"),
];

/// One attack as its alerts tell it: the latest holds its figures so far.
#[derive(Clone, Debug)]
pub struct Attack {
    pub id: String,
    pub last: Value,
    /// (time ns, pps) of every alert: the rate as the alerts saw it.
    pub points: Vec<(i64, u64)>,
}

impl Attack {
    fn text(&self, key: &str) -> String {
        match &self.last[key] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        }
    }
    fn number(&self, key: &str) -> u64 {
        self.last[key].as_u64().unwrap_or(0)
    }
    fn start_ns(&self) -> i64 {
        self.last["started_at"]
            .as_str()
            .and_then(parse_rfc3339)
            .unwrap_or_else(|| self.points.first().map_or(0, |p| p.0))
    }
    /// The end, or the latest alert of an attack still in progress.
    fn end_ns(&self) -> i64 {
        self.last["ended_at"].as_str().and_then(parse_rfc3339).unwrap_or_else(|| self.points.last().map_or(0, |p| p.0))
    }
    fn ended(&self) -> bool {
        self.last["event"] == "attack_end"
    }
    fn offenders(&self) -> Vec<String> {
        self.last["offending_ips"]
            .as_array()
            .map_or(Vec::new(), |ips| ips.iter().filter_map(|ip| ip.as_str().map(str::to_string)).collect())
    }
    fn title(&self) -> String {
        let service = self.text("service");
        let how = if service.is_empty() { self.text("kind") } else { format!("{} ({service})", self.text("kind")) };
        format!("{how} on {}", self.text("victim"))
    }
}

/// The attacks of a native alert file, in order of start; lines of other kinds of alerts
/// (ECS, EVE) or no JSON are errors naming the line.
pub fn read_alerts(path: &Path) -> Result<Vec<Attack>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut alerts = Vec::new();
    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        let at = || format!("{} line {}", path.display(), n + 1);
        let alert: Value = serde_json::from_str(line).map_err(|e| format!("{}: {e}", at()))?;
        if alert["attack_id"].as_str().is_none() || alert["timestamp"].as_str().and_then(parse_rfc3339).is_none() {
            return Err(format!("{}: not a floodwatch alert in the native format (attack_id, timestamp)", at()));
        }
        alerts.push(alert);
    }
    Ok(attacks_of(alerts))
}

/// Alerts grouped into attacks, in order of start.
pub fn attacks_of(alerts: Vec<Value>) -> Vec<Attack> {
    let mut by_id: BTreeMap<String, Attack> = BTreeMap::new();
    for alert in alerts {
        let (Some(id), Some(ts)) = (alert["attack_id"].as_str(), alert["timestamp"].as_str().and_then(parse_rfc3339))
        else {
            continue;
        };
        let pps = alert["pps"].as_u64().unwrap_or(0);
        let attack = by_id.entry(id.to_string()).or_insert_with(|| Attack {
            id: id.to_string(),
            last: Value::Null,
            points: Vec::new(),
        });
        attack.points.push((ts, pps));
        attack.last = alert;
    }
    let mut attacks: Vec<Attack> = by_id.into_values().collect();
    attacks.sort_by_key(|a| (a.start_ns(), a.id.clone()));
    attacks
}

/// What the page is made of.
pub struct ReportInput {
    pub attacks: Vec<Attack>,
    pub timeline: Vec<TimelineRecord>,
    /// Where the evidence files are, to check them; None: as the alerts say.
    pub evidence_dir: Option<PathBuf>,
    /// Where it came from (file names), for the header.
    pub sources: Vec<String>,
}

/// An evidence file as checked.
struct Evidence {
    name: String,
    packets: u64,
    sha256: String,
    check: String,
}

fn evidence_of(a: &Attack, dir: Option<&Path>) -> Option<Evidence> {
    let e = &a.last["evidence"];
    if e.is_null() {
        return None;
    }
    let path = e["path"].as_str().unwrap_or_default();
    let name = Path::new(path).file_name().map_or(path.to_string(), |n| n.to_string_lossy().into_owned());
    let (packets, sha256) = (e["packets"].as_u64().unwrap_or(0), e["sha256"].as_str().unwrap_or_default().to_string());
    let check = match dir {
        None => "as recorded in the alert (no evidence directory given to check it)".to_string(),
        Some(dir) => match std::fs::read(dir.join(&name)) {
            Err(err) => format!("not checked: {err}"),
            Ok(bytes) => {
                let digest = hex(&Sha256::digest(&bytes));
                match (digest == sha256, frames_in(bytes)) {
                    (true, Ok(n)) if n == packets => "verified: the file's SHA-256 and packet count match".into(),
                    (true, Ok(n)) => format!("SHA-256 matches; the file holds {} packets", group(n)),
                    (true, Err(e)) => format!("SHA-256 matches; the file cannot be read as a capture: {e}"),
                    (false, _) => format!("DIFFERS: the file's SHA-256 is {digest}"),
                }
            }
        },
    };
    Some(Evidence { name, packets, sha256, check })
}

/// The frames of a capture file's bytes, read as a replay reads them.
fn frames_in(bytes: Vec<u8>) -> Result<u64, CaptureError> {
    let mut source = FileSource::from_reader("evidence", Box::new(std::io::Cursor::new(bytes)))?;
    let mut frames = 0u64;
    while source.read_frames(4096, |_| {
        frames += 1;
        true
    })? {}
    Ok(frames)
}

/// The report page.
pub fn render(input: &ReportInput) -> String {
    let mut page = String::with_capacity(64 * 1024);
    let _ = writeln!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>floodwatch incident report</title>\n<style>{STYLE}</style>\n</head>\n<body>\n\
         <header><h1>Incident report</h1><p class=\"meta\">floodwatch {} · from {} · all times UTC</p></header>",
        env!("CARGO_PKG_VERSION"),
        html(&input.sources.join(", "))
    );
    summary(&mut page, input);
    if !input.attacks.is_empty() {
        overview(&mut page, &input.attacks);
    }
    for (k, a) in input.attacks.iter().enumerate() {
        attack_section(&mut page, k, a, input);
    }
    page.push_str("</body>\n</html>\n");
    page
}

fn summary(page: &mut String, input: &ReportInput) {
    page.push_str("<section id=\"summary\"><h2>Summary</h2>\n");
    let attacks = &input.attacks;
    if attacks.is_empty() {
        page.push_str("<p>No attack was detected.</p></section>\n");
        return;
    }
    let from = attacks.iter().map(Attack::start_ns).min().unwrap_or(0);
    let to = attacks.iter().map(Attack::end_ns).max().unwrap_or(0);
    let victims: Vec<String> = unique(attacks.iter().map(|a| a.text("victim")));
    let kinds: Vec<String> = unique(attacks.iter().map(|a| {
        let service = a.text("service");
        if service.is_empty() {
            format!("{} ({})", a.text("kind"), a.text("protocol"))
        } else {
            format!("{} of {service} ({})", a.text("kind"), a.text("protocol"))
        }
    }));
    let peak = attacks.iter().map(|a| a.number("peak_pps")).max().unwrap_or(0);
    let peak_bps = attacks.iter().map(peak_bps_of).max().unwrap_or(0);
    let packets: u64 = attacks.iter().map(|a| a.number("packets")).sum();
    let bytes: u64 = attacks.iter().map(|a| a.number("bytes")).sum();
    let sources: u64 = attacks.iter().map(|a| a.last["sources"]["distinct_estimate"].as_u64().unwrap_or(0)).sum();
    let spoofed = attacks.iter().filter(|a| a.last["sources"]["spoofed_likely"] == true).count();
    let offenders: Vec<String> = unique(attacks.iter().flat_map(Attack::offenders));
    let evidence: Vec<Evidence> =
        attacks.iter().filter_map(|a| evidence_of(a, input.evidence_dir.as_deref())).collect();
    let in_progress = attacks.iter().filter(|a| !a.ended()).count();
    let _ = writeln!(
        page,
        "<p class=\"lead\">{} between {} and {} UTC on {}{}.</p>\n<dl class=\"summary\">",
        plural(attacks.len(), "attack", "attacks"),
        html(&clock(from, true)),
        html(&clock(to, from.div_euclid(86_400_000_000_000) != to.div_euclid(86_400_000_000_000))),
        plural(victims.len(), "target", "targets"),
        if in_progress > 0 { format!(", {in_progress} still in progress at the last alert") } else { String::new() }
    );
    let item = |page: &mut String, what: &str, text: String| {
        let _ = writeln!(page, "<dt>{what}</dt><dd>{text}</dd>");
    };
    item(page, "What was hit", html(&victims.join(", ")));
    item(
        page,
        "When",
        format!("{} to {} UTC ({})", html(&clock(from, true)), html(&clock(to, true)), duration(to - from)),
    );
    item(
        page,
        "How hard",
        format!(
            "peak {} packets/s ({}), {} packets and {} in all",
            group(peak),
            bits(peak_bps),
            group(packets),
            size(bytes)
        ),
    );
    item(page, "How", html(&kinds.join("; ")));
    item(
        page,
        "From where",
        format!(
            "about {} distinct sources; {}",
            group(sources),
            if spoofed > 0 {
                format!(
                    "{} with sources that look spoofed (forged addresses: blocking them does not help; filtering toward the victim upstream does)",
                    plural(spoofed, "attack", "attacks")
                )
            } else {
                "their addresses look real (they can be blocked)".to_string()
            }
        ),
    );
    item(
        page,
        "What was blocked",
        format!(
            "{} listed as offenders for blocking (per attack below, with nft and ipset lines)",
            plural(offenders.len(), "source address", "source addresses")
        ),
    );
    let kept = match evidence.len() {
        0 => "no evidence capture recorded".to_string(),
        n => format!(
            "{}, {} packets, SHA-256 listed per attack{}",
            plural(n, "capture file (pcap)", "capture files (pcap)"),
            group(evidence.iter().map(|e| e.packets).sum()),
            if evidence.iter().all(|e| e.check.starts_with("verified")) {
                ", each verified against its file"
            } else {
                ""
            }
        ),
    };
    item(page, "Evidence kept", kept);
    page.push_str("</dl>\n</section>\n");
}

fn overview(page: &mut String, attacks: &[Attack]) {
    let from = attacks.iter().map(Attack::start_ns).min().unwrap_or(0);
    let to = attacks.iter().map(Attack::end_ns).max().unwrap_or(0).max(from + 1_000_000_000);
    let row = 22.0;
    let height = PAD.2 + PAD.3 + row * attacks.len() as f64;
    let x = |ns: i64| PAD.0 + 180.0 + (ns - from) as f64 / (to - from) as f64 * (W - PAD.0 - 180.0 - PAD.1);
    let _ = writeln!(
        page,
        "<section id=\"overview\"><h2>Overview</h2>\n<svg class=\"chart\" viewBox=\"0 0 {W} {height}\" role=\"img\" \
         aria-label=\"Every attack on one time axis\"><title>Every attack on one time axis (UTC)</title>"
    );
    time_axis(page, from, to, PAD.2 + row * attacks.len() as f64, &|ns| x(ns), PAD.2);
    for (k, a) in attacks.iter().enumerate() {
        let y = PAD.2 + row * k as f64;
        let (x0, x1) = (x(a.start_ns()), x(a.end_ns()).max(x(a.start_ns()) + 2.0));
        let _ = writeln!(
            page,
            "<a href=\"#attack-{k}\"><text x=\"{:.1}\" y=\"{:.1}\" class=\"label\" text-anchor=\"end\">{}</text>\
             <rect x=\"{x0:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" class=\"bar\"><title>{}: {} to {}, peak {} packets/s</title></rect></a>",
            PAD.0 + 170.0,
            y + row * 0.7,
            html(&short(&a.title(), 34)),
            y + 3.0,
            x1 - x0,
            row - 6.0,
            html(&a.title()),
            html(&clock(a.start_ns(), false)),
            html(&clock(a.end_ns(), false)),
            group(a.number("peak_pps"))
        );
    }
    page.push_str("</svg>\n</section>\n");
}

fn attack_section(page: &mut String, k: usize, a: &Attack, input: &ReportInput) {
    let _ = writeln!(page, "<section class=\"attack\" id=\"attack-{k}\">\n<h2>{}</h2>", html(&a.title()));
    let ports = a.last["victim_ports"]
        .as_array()
        .map_or(String::new(), |p| p.iter().map(|v| v.to_string()).collect::<Vec<_>>().join(", "));
    let end = if a.ended() {
        format!("{} ({})", rfc3339_seconds(a.end_ns()), a.text("end_reason"))
    } else {
        "in progress at its last alert".to_string()
    };
    let facts = [
        ("Kind", a.text("kind")),
        ("Service", a.text("service")),
        ("Victim ports", ports),
        ("Protocol", a.text("protocol")),
        ("Started", format!("{} UTC", rfc3339_seconds(a.start_ns()))),
        ("Ended", end),
        ("Duration", duration(a.end_ns() - a.start_ns())),
        ("Peak", format!("{} packets/s, {}", group(a.number("peak_pps")), bits(peak_bps_of(a)))),
        ("Threshold", format!("{} packets/s", group(a.number("threshold_pps")))),
        ("Packets", format!("{} ({})", group(a.number("packets")), size(a.number("bytes")))),
        ("Why", a.text("reason")),
        ("Attack id", a.id.clone()),
    ];
    page.push_str("<table class=\"facts\">\n");
    for (what, value) in facts.iter().filter(|(_, v)| !v.is_empty()) {
        let _ = writeln!(page, "<tr><th>{what}</th><td>{}</td></tr>", html(value));
    }
    page.push_str("</table>\n");
    traffic_charts(page, a, &input.timeline);
    sources(page, a);
    offenders(page, a);
    page.push_str("<h3>Evidence</h3>\n");
    match evidence_of(a, input.evidence_dir.as_deref()) {
        None => page.push_str("<p>No evidence capture was recorded for this attack.</p>\n"),
        Some(e) => {
            let _ = writeln!(
                page,
                "<table class=\"evidence\"><tr><th>File</th><th>Packets</th><th>SHA-256</th><th>Check</th></tr>\n\
                 <tr><td>{}</td><td class=\"num\">{}</td><td class=\"hash\">{}</td><td>{}</td></tr></table>",
                html(&e.name),
                group(e.packets),
                html(&e.sha256),
                html(&e.check)
            );
        }
    }
    page.push_str("</section>\n");
}

/// Packets/s and bits/s toward the victim by class, second by second, with the threshold
/// and the start and end; from the alerts' own rates when the timeline has no record of it.
fn traffic_charts(page: &mut String, a: &Attack, timeline: &[TimelineRecord]) {
    let (start, end) = (a.start_ns(), a.end_ns());
    let (from, to) = (start.div_euclid(1_000_000_000) - MARGIN_S, end.div_euclid(1_000_000_000) + MARGIN_S);
    let victim: Option<IpAddr> = a.text("victim").parse().ok();
    let seconds: Vec<&TimelineRecord> =
        timeline.iter().filter(|r| Some(r.victim) == victim && (from..=to).contains(&r.second)).collect();
    let threshold = a.number("threshold_pps") as f64;
    if seconds.is_empty() {
        let series = vec![("alerts".to_string(), a.points.iter().map(|&(t, pps)| (t, pps as f64)).collect())];
        page.push_str("<p class=\"note\">No timeline of this victim (run with <code>--timeline</code>): the rate as its alerts gave it.</p>\n");
        chart(page, "Packets per second (from the alerts)", "packets/s", &series, Some(threshold), (start, end));
        return;
    }
    let series_of = |field: fn(&TimelineRecord) -> &BTreeMap<String, u64>, scale: f64| {
        let mut by_class: BTreeMap<String, Vec<(i64, f64)>> = BTreeMap::new();
        for r in &seconds {
            for (class, n) in field(r) {
                by_class.entry(class.clone()).or_default().push((mid_second(r.second), *n as f64 * scale));
            }
        }
        // A class silent in a second is at zero there, not interpolated across it.
        let all: Vec<i64> = unique(seconds.iter().map(|r| mid_second(r.second)));
        by_class
            .into_iter()
            .map(|(class, points)| {
                let filled = all.iter().map(|t| (*t, points.iter().find(|p| p.0 == *t).map_or(0.0, |p| p.1))).collect();
                (class, filled)
            })
            .collect::<Vec<_>>()
    };
    chart(
        page,
        "Packets per second by traffic class",
        "packets/s",
        &series_of(|r| &r.packets, 1.0),
        Some(threshold),
        (start, end),
    );
    chart(page, "Bits per second by traffic class", "bits/s", &series_of(|r| &r.bytes, 8.0), None, (start, end));
}

/// A line chart: time on x (UTC), `unit` on y from 0, an optional threshold line, and the
/// attack's start and end as vertical marks.
fn chart(
    page: &mut String,
    title: &str,
    unit: &str,
    series: &[(String, Vec<(i64, f64)>)],
    threshold: Option<f64>,
    marks: (i64, i64),
) {
    let times = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.0)).chain([marks.0, marks.1]);
    let (from, to) = times.fold((i64::MAX, i64::MIN), |(lo, hi), t| (lo.min(t), hi.max(t)));
    let to = to.max(from + 1_000_000_000);
    let top = series.iter().flat_map(|(_, p)| p.iter().map(|q| q.1)).chain(threshold).fold(1.0, f64::max) * 1.1;
    let top = nice_ceiling(top);
    let x = |ns: i64| PAD.0 + (ns - from) as f64 / (to - from) as f64 * (W - PAD.0 - PAD.1);
    let y = |v: f64| H - PAD.3 - v / top * (H - PAD.2 - PAD.3);
    let _ = writeln!(
        page,
        "<figure><svg class=\"chart\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\"><title>{}</title>",
        html(title),
        html(title)
    );
    // y axis: five gridlines and their values, the unit as the axis label.
    for i in 0..=4 {
        let v = top * f64::from(i) / 4.0;
        let _ = writeln!(
            page,
            "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" class=\"grid\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\" text-anchor=\"end\">{}</text>",
            PAD.0,
            W - PAD.1,
            y(v),
            y(v),
            PAD.0 - 6.0,
            y(v) + 4.0,
            si(v)
        );
    }
    let _ = writeln!(
        page,
        "<text class=\"axis-label\" transform=\"translate(14 {:.1}) rotate(-90)\" text-anchor=\"middle\">{}</text>",
        (PAD.2 + H - PAD.3) / 2.0,
        html(unit)
    );
    time_axis(page, from, to, H - PAD.3, &|ns| x(ns), PAD.2);
    for (label, at) in [("start", marks.0), ("end", marks.1)] {
        let _ = writeln!(
            page,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" class=\"mark\"/><text x=\"{3:.1}\" y=\"{4:.1}\" class=\"mark-label\">{label}</text>",
            x(at),
            PAD.2,
            H - PAD.3,
            x(at) + 3.0,
            PAD.2 + 10.0
        );
    }
    if let Some(t) = threshold {
        let _ = writeln!(
            page,
            "<line x1=\"{0:.1}\" x2=\"{1:.1}\" y1=\"{2:.1}\" y2=\"{2:.1}\" class=\"threshold\"/><text x=\"{3:.1}\" y=\"{4:.1}\" class=\"threshold-label\" text-anchor=\"end\">threshold {5}</text>",
            PAD.0,
            W - PAD.1,
            y(t),
            W - PAD.1 - 4.0,
            y(t) - 4.0,
            group(t as u64)
        );
    }
    let mut legend = String::new();
    for (i, (label, points)) in series.iter().enumerate() {
        let colour = colour(label, i);
        let path: Vec<String> = points.iter().map(|(t, v)| format!("{:.1},{:.1}", x(*t), y(*v))).collect();
        let _ = writeln!(
            page,
            "<polyline points=\"{}\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\" class=\"series\" data-class=\"{}\"/>",
            path.join(" "),
            html(label)
        );
        let _ = write!(
            legend,
            "<span class=\"key\"><span class=\"swatch\" style=\"background:{colour}\"></span>{}</span>",
            html(label)
        );
    }
    let _ = writeln!(page, "</svg><figcaption>{}: {legend}</figcaption></figure>", html(title));
}

/// The x axis: a line at `y`, ticks at round times with their HH:MM:SS, "time (UTC)".
fn time_axis(page: &mut String, from: i64, to: i64, y: f64, x: &dyn Fn(i64) -> f64, top: f64) {
    let span_s = ((to - from) as f64 / 1e9).max(1.0);
    let step_s = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21_600, 43_200, 86_400]
        .into_iter()
        .find(|s| span_s / *s as f64 <= 8.0)
        .unwrap_or(86_400);
    let step = step_s * 1_000_000_000;
    let _ =
        writeln!(page, "<line x1=\"{:.1}\" x2=\"{:.1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"axis\"/>", x(from), x(to));
    let mut t = from.div_euclid(step) * step;
    if t < from {
        t += step;
    }
    while t <= to {
        let _ = writeln!(
            page,
            "<line x1=\"{0:.1}\" x2=\"{0:.1}\" y1=\"{1:.1}\" y2=\"{2:.1}\" class=\"grid\"/><text x=\"{0:.1}\" y=\"{3:.1}\" class=\"tick\" text-anchor=\"middle\">{4}</text>",
            x(t),
            top,
            y,
            y + 16.0,
            clock(t, false)
        );
        t += step;
    }
    let _ = writeln!(
        page,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis-label\" text-anchor=\"middle\">time (UTC)</text>",
        (x(from) + x(to)) / 2.0,
        y + 34.0
    );
}

fn sources(page: &mut String, a: &Attack) {
    let s = &a.last["sources"];
    let top: Vec<(String, u64)> = s["top"].as_array().map_or(Vec::new(), |top| {
        top.iter().filter_map(|t| Some((t["ip"].as_str()?.to_string(), t["packets"].as_u64()?))).take(BARS).collect()
    });
    let distinct = s["distinct_estimate"].as_u64().unwrap_or(0);
    let _ = writeln!(page, "<h3>Top sources</h3>\n<p class=\"verdict\">{}</p>", html(&verdict_sentence(s, distinct)));
    if top.is_empty() {
        return;
    }
    let most = top.iter().map(|t| t.1).max().unwrap_or(1).max(1) as f64;
    let (row, left) = (18.0, 150.0);
    let height = PAD.2 + row * top.len() as f64 + 30.0;
    let _ = writeln!(
        page,
        "<figure><svg class=\"chart bars\" viewBox=\"0 0 {W} {height}\" role=\"img\" aria-label=\"Top sources by packets\"><title>Top sources by packets</title>"
    );
    for (i, (ip, packets)) in top.iter().enumerate() {
        let y = PAD.2 + row * i as f64;
        let width = *packets as f64 / most * (W - left - PAD.1 - 80.0);
        let _ = writeln!(
            page,
            "<text x=\"{:.1}\" y=\"{:.1}\" class=\"label\" text-anchor=\"end\">{}</text><rect x=\"{left}\" y=\"{:.1}\" width=\"{width:.1}\" height=\"{:.1}\" class=\"bar\"/><text x=\"{:.1}\" y=\"{:.1}\" class=\"tick\">{}</text>",
            left - 6.0,
            y + row * 0.7,
            html(ip),
            y + 2.0,
            row - 4.0,
            left + width + 4.0,
            y + row * 0.7,
            group(*packets)
        );
    }
    let _ = writeln!(
        page,
        "<text x=\"{:.1}\" y=\"{:.1}\" class=\"axis-label\" text-anchor=\"middle\">packets seen from the source during the attack</text></svg>\n\
         <figcaption>The {} busiest of about {} sources.</figcaption></figure>",
        left + (W - left) / 2.0,
        height - 8.0,
        top.len(),
        group(distinct)
    );
}

/// The spoofing verdict, in a sentence an operator can act on.
fn verdict_sentence(s: &Value, distinct: u64) -> String {
    let verdict = s["verdict"].as_str().unwrap_or_default();
    if s["spoofed_likely"] == true {
        format!(
            "The sources look spoofed ({verdict}): the addresses are forged, so blocking them would not stop the flood and could hit innocent hosts; have it filtered toward the victim upstream."
        )
    } else if distinct == 0 {
        format!("No sources were reported ({verdict}).")
    } else {
        format!("The sources look real ({verdict}): blocking the offending addresses below stops their traffic.")
    }
}

fn offenders(page: &mut String, a: &Attack) {
    let ips = a.offenders();
    let _ = writeln!(page, "<h3>Offending IPs ({})</h3>", group(ips.len() as u64));
    if ips.is_empty() {
        page.push_str("<p>None listed: nothing to block by source for this attack.</p>\n");
        return;
    }
    let (v4, v6): (Vec<&String>, Vec<&String>) = ips.iter().partition(|ip| !ip.contains(':'));
    let _ = writeln!(
        page,
        "<textarea class=\"ips\" readonly rows=\"{}\" aria-label=\"offending IPs, one per line\">{}</textarea>",
        ips.len().clamp(2, 12),
        html(&ips.join("\n"))
    );
    let mut lines = String::new();
    for (set, list) in [("blocklist_v4", &v4), ("blocklist_v6", &v6)] {
        if !list.is_empty() {
            let joined: Vec<&str> = list.iter().map(|s| s.as_str()).collect();
            let _ = writeln!(lines, "nft add element inet {BLOCKLIST_NAME} {set} {{ {} }}", joined.join(", "));
        }
    }
    let _ = writeln!(
        page,
        "<p>Into the table floodwatch's nft blocklist creates (<code>--blocklist-format nft</code>):</p><pre class=\"nft\">{}</pre>",
        html(&lines)
    );
    let mut lines = String::new();
    for (set, list) in [("v4", &v4), ("v6", &v6)] {
        for ip in list.iter() {
            let _ = writeln!(lines, "add {BLOCKLIST_NAME}-{set} {ip} -exist");
        }
    }
    let _ = writeln!(page, "<p>As <code>ipset restore</code> lines (sets of <code>--blocklist-format ipset</code>):</p><pre class=\"ipset\">{}</pre>", html(&lines));
}

/// A second's count is drawn at its middle.
fn mid_second(second: i64) -> i64 {
    second.saturating_mul(1_000_000_000).saturating_add(500_000_000)
}

fn peak_bps_of(a: &Attack) -> u64 {
    // The alerts give the peak in packets/s and the mean size: bits at the peak, estimated.
    let (packets, bytes) = (a.number("packets"), a.number("bytes"));
    if packets == 0 {
        return a.number("bps");
    }
    (a.number("peak_pps") as f64 * bytes as f64 / packets as f64 * 8.0) as u64
}

fn colour(label: &str, i: usize) -> &'static str {
    const OTHERS: [&str; 4] = ["#17becf", "#bcbd22", "#1f77b4", "#7f7f7f"];
    CLASS_COLOURS.iter().find(|(c, _)| *c == label).map_or(OTHERS[i % OTHERS.len()], |(_, colour)| colour)
}

fn unique<T: Ord + Clone>(items: impl Iterator<Item = T>) -> Vec<T> {
    let mut v: Vec<T> = items.collect();
    v.sort();
    v.dedup();
    v
}

fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn short(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &text[..at]),
        None => text.to_string(),
    }
}

/// `12:00:03`, with the date first when `dated`.
fn clock(ns: i64, dated: bool) -> String {
    let text = rfc3339_seconds(ns);
    match dated {
        true => text.replace('T', " "),
        false => text.split_once('T').map_or(text.clone(), |(_, t)| t.to_string()),
    }
}

/// `2026-01-15T12:00:03` (UTC, whole seconds).
fn rfc3339_seconds(ns: i64) -> String {
    let text = rfc3339_micros(ns);
    text.split_once('.').map_or(text.clone(), |(s, _)| s.to_string())
}

fn duration(ns: i64) -> String {
    let s = ns as f64 / 1e9;
    match s {
        s if s < 60.0 => format!("{s:.1} s"),
        s if s < 3600.0 => format!("{} min {} s", (s / 60.0) as u64, (s % 60.0) as u64),
        s => format!("{} h {} min", (s / 3600.0) as u64, (s % 3600.0 / 60.0) as u64),
    }
}

fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{} {}", group(n as u64), if n == 1 { one } else { many })
}

/// `12,345`.
fn group(n: u64) -> String {
    crate::analyze::fmt_int(n as f64)
}

fn bits(bps: u64) -> String {
    format!("{}bit/s", si(bps as f64))
}

fn size(bytes: u64) -> String {
    format!("{}B", si(bytes as f64))
}

/// `1.2 M`, `850 k`, `12 ` (with the space before a unit).
fn si(v: f64) -> String {
    match v {
        v if v >= 1e9 => format!("{:.1} G", v / 1e9),
        v if v >= 1e6 => format!("{:.1} M", v / 1e6),
        v if v >= 1e4 => format!("{:.0} k", v / 1e3),
        v if v >= 1e3 => format!("{:.1} k", v / 1e3),
        v => format!("{v:.0} "),
    }
}

/// The least of 1, 2 or 5 times a power of ten at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let power = 10f64.powf(v.max(1.0).log10().floor());
    [1.0, 2.0, 5.0, 10.0].into_iter().map(|m| m * power).find(|n| *n >= v).unwrap_or(10.0 * power)
}

const STYLE: &str = "
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;margin:0 auto;max-width:960px;padding:0 16px 48px;color:#1b1b1b;background:#fff}
header{border-bottom:3px solid #b00020;margin-bottom:8px}h1{margin:16px 0 4px}.meta{color:#555;margin:0 0 12px}
h2{margin-top:32px;border-bottom:1px solid #ddd;padding-bottom:4px}h3{margin:20px 0 6px}
.lead{font-size:17px;font-weight:600}dl.summary{display:grid;grid-template-columns:150px 1fr;gap:6px 12px}
dl.summary dt{font-weight:600}dl.summary dd{margin:0}
table{border-collapse:collapse;margin:8px 0}th,td{text-align:left;padding:3px 10px 3px 0;vertical-align:top}
table.facts th{width:130px;color:#444}table.evidence th{border-bottom:1px solid #ccc}
td.num{text-align:right}td.hash{font:12px monospace;word-break:break-all}
svg.chart{width:100%;height:auto;background:#fafafa;border:1px solid #eee}
.grid{stroke:#e4e4e4}.axis{stroke:#888}.tick{font-size:11px;fill:#444}.axis-label{font-size:12px;fill:#222}
.label{font-size:12px;fill:#222}.bar{fill:#b00020;opacity:.8}
.threshold{stroke:#000;stroke-dasharray:6 4}.threshold-label{font-size:11px}
.mark{stroke:#b00020;stroke-width:1.5}.mark-label{font-size:11px;fill:#b00020}
figure{margin:8px 0}figcaption{font-size:13px;color:#444}.key{margin-right:12px;white-space:nowrap}
.swatch{display:inline-block;width:10px;height:10px;margin-right:4px;vertical-align:middle}
textarea.ips{width:100%;font:13px monospace}pre{background:#f4f4f4;padding:8px;overflow-x:auto;font-size:12px;white-space:pre-wrap;word-break:break-all}
.note{color:#666;font-size:13px}.verdict{background:#fff4e5;padding:6px 10px;border-left:4px solid #ff9800}
@media print{svg.chart{break-inside:avoid}}
";

/// `replay --report FILE`: where the page goes, and what it says it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReportOptions {
    pub path: PathBuf,
    pub evidence_dir: Option<PathBuf>,
    pub sources: Vec<String>,
}

/// Timeline records a report keeps in memory (about 200 MiB at most); beyond, counted.
const MAX_KEPT_RECORDS: usize = 1 << 20;

/// The alerts and timeline of a run, kept to build its page at the end.
pub struct ReportCollector {
    opts: ReportOptions,
    alerts: Vec<Value>,
    timeline: Vec<TimelineRecord>,
    records_left_out: u64,
}

impl ReportCollector {
    pub fn new(opts: ReportOptions) -> ReportCollector {
        ReportCollector { opts, alerts: Vec::new(), timeline: Vec::new(), records_left_out: 0 }
    }

    /// A native alert, as its sinks received it.
    pub fn alert(&mut self, native: Value) {
        self.alerts.push(native);
    }

    pub fn second(&mut self, s: &SecondSummary) {
        for record in TimelineRecord::of_summary(s) {
            if self.timeline.len() < MAX_KEPT_RECORDS {
                self.timeline.push(record);
            } else {
                self.records_left_out += 1;
            }
        }
    }

    /// Writes the page; its path, or why it could not be written.
    pub fn finish(self) -> Result<PathBuf, String> {
        let mut sources = self.opts.sources.clone();
        if self.records_left_out > 0 {
            sources.push(format!("timeline cut after {MAX_KEPT_RECORDS} records ({} left out)", self.records_left_out));
        }
        let input = ReportInput {
            attacks: attacks_of(self.alerts),
            timeline: self.timeline,
            evidence_dir: self.opts.evidence_dir.clone(),
            sources,
        };
        std::fs::write(&self.opts.path, render(&input))
            .map_err(|e| format!("report {}: {e}", self.opts.path.display()))?;
        Ok(self.opts.path)
    }
}
