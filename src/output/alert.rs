//! Alerts as JSON lines: the schema documented in the README.

use crate::analyze::{AttackEvent, EventKind};
use crate::output::time::rfc3339_micros;
use serde::Serialize;
use std::io::{self, Write};
use std::net::IpAddr;

#[derive(Serialize)]
struct SourceJson {
    ip: IpAddr,
    packets: u64,
}

#[derive(Serialize)]
struct SourcesJson<'a> {
    distinct_estimate: u64,
    spoofed_likely: bool,
    verdict: &'a str,
    top: Vec<SourceJson>,
}

#[derive(Serialize)]
struct AlertJson<'a> {
    timestamp: String,
    event: &'static str,
    attack_id: &'a str,
    kind: &'static str,
    victim: IpAddr,
    victim_ports: &'a [u16],
    protocol: &'static str,
    service: Option<&'static str>,
    pps: u64,
    bps: u64,
    peak_pps: u64,
    threshold_pps: u64,
    started_at: String,
    packets: u64,
    bytes: u64,
    reason: &'a str,
    sources: SourcesJson<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    offending_ips: Option<&'a [IpAddr]>,
}

/// The native JSON line of one event (fields in schema order, newline-terminated).
pub fn to_json_line(e: &AttackEvent) -> serde_json::Result<Vec<u8>> {
    let end = e.end.as_ref();
    let json = AlertJson {
        timestamp: rfc3339_micros(e.timestamp_ns),
        event: e.event.name(),
        attack_id: &e.attack_id,
        kind: e.kind.name(),
        victim: e.victim,
        victim_ports: &e.victim_ports,
        protocol: e.protocol,
        service: e.service,
        pps: e.pps,
        bps: e.bps,
        peak_pps: e.peak_pps,
        threshold_pps: e.threshold_pps,
        started_at: rfc3339_micros(e.started_at_ns),
        packets: e.packets,
        bytes: e.bytes,
        reason: &e.reason,
        sources: SourcesJson {
            distinct_estimate: e.sources.distinct_estimate,
            spoofed_likely: e.sources.spoofed_likely,
            verdict: &e.sources.verdict,
            top: e.sources.top.iter().map(|&(ip, packets)| SourceJson { ip, packets }).collect(),
        },
        ended_at: end.map(|x| rfc3339_micros(x.ended_at_ns)),
        duration_s: end
            .map(|x| ((x.ended_at_ns.saturating_sub(e.started_at_ns)).max(0) as f64 / 1e9 * 1e3).round() / 1e3),
        end_reason: end.map(|x| x.reason.name()),
        offending_ips: end.map(|x| x.offending_ips.as_slice()),
    };
    debug_assert!(e.event == EventKind::End || e.end.is_none());
    let mut line = serde_json::to_vec(&json)?;
    line.push(b'\n');
    Ok(line)
}

/// Writes one JSON object per line and flushes each, so a reader sees alerts as they happen.
pub struct JsonLinesWriter {
    out: Box<dyn Write + Send>,
}

impl JsonLinesWriter {
    pub fn new(out: Box<dyn Write + Send>) -> JsonLinesWriter {
        JsonLinesWriter { out }
    }

    pub fn write_event(&mut self, e: &AttackEvent) -> io::Result<()> {
        self.out.write_all(&to_json_line(e)?)?;
        self.out.flush()
    }
}
