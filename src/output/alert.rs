//! Alerts as JSON: the native schema documented in the README, plus the Elastic Common Schema
//! and Suricata EVE shapes, so existing pipelines take them unchanged.

use crate::analyze::{AttackEvent, AttackKind, EventKind};
use crate::output::time::{rfc3339_micros, suricata_timestamp};
use serde::Serialize;
use serde_json::{json, Value};
use std::net::IpAddr;
use std::str::FromStr;

/// One event as it leaves the analyzer, with what the outputs added to it.
#[derive(Clone, Debug)]
pub struct Alert {
    pub event: AttackEvent,
    /// (`attack_end` only) the evidence capture written for this attack.
    pub evidence: Option<EvidenceFile>,
}

impl Alert {
    pub fn new(event: AttackEvent) -> Alert {
        Alert { event, evidence: None }
    }
}

/// A finished evidence capture: a valid pcap of `packets` frames, or (`error`) what went
/// wrong: a file cut short at its last whole frame, or none (removed: it could not get even
/// its header).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct EvidenceFile {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    pub packets: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The JSON shape an alert stream uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AlertFormat {
    /// floodwatch's own schema (README, "Alert schema").
    #[default]
    Native,
    /// Elastic Common Schema 8.x: `event.kind: alert`, `source.ip`, `destination.ip`, ...
    Ecs,
    /// Suricata EVE JSON: `event_type: alert`, `src_ip`, `dest_ip`, `proto`, `alert.signature`.
    Eve,
}

impl FromStr for AlertFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<AlertFormat, String> {
        match s {
            "native" | "json" => Ok(AlertFormat::Native),
            "ecs" => Ok(AlertFormat::Ecs),
            "eve" => Ok(AlertFormat::Eve),
            other => Err(format!("unknown alert format {other:?}: expected native, ecs or eve")),
        }
    }
}

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

/// The exporter an attack was counted from (flow telemetry).
#[derive(Serialize)]
struct TelemetryJson {
    #[serde(rename = "type")]
    format: &'static str,
    exporter: IpAddr,
    sampling_rate: u32,
}

#[derive(Serialize)]
struct NativeJson<'a> {
    timestamp: String,
    event: &'static str,
    attack_id: &'a str,
    kind: &'static str,
    /// An address, or a prefix (carpet bombing).
    victim: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    victim_hosts: Option<u64>,
    victim_ports: &'a [u16],
    protocol: &'static str,
    service: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    service_port: Option<u16>,
    pps: u64,
    bps: u64,
    peak_pps: u64,
    threshold_pps: u64,
    started_at: String,
    packets: u64,
    bytes: u64,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    source: Option<TelemetryJson>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    sensors: &'a [String],
    sources: SourcesJson<'a>,
    offending_ips: &'a [IpAddr],
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    end_reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    evidence: Option<&'a EvidenceFile>,
}

fn native(a: &Alert) -> NativeJson<'_> {
    let e = &a.event;
    let end = e.end.as_ref();
    debug_assert!(e.event == EventKind::End || e.end.is_none());
    NativeJson {
        timestamp: rfc3339_micros(e.timestamp_ns),
        event: e.event.name(),
        attack_id: &e.attack_id,
        kind: e.kind.name(),
        victim: e.victim_text(),
        victim_hosts: e.victim_hosts,
        victim_ports: &e.victim_ports,
        protocol: e.protocol,
        service: e.service,
        service_port: e.service_port,
        pps: e.pps,
        bps: e.bps,
        peak_pps: e.peak_pps,
        threshold_pps: e.threshold_pps,
        started_at: rfc3339_micros(e.started_at_ns),
        packets: e.packets,
        bytes: e.bytes,
        reason: &e.reason,
        source: e.telemetry.map(|t| TelemetryJson {
            format: t.format.name(),
            exporter: t.exporter,
            sampling_rate: t.sampling_rate,
        }),
        sensors: &e.sensors,
        sources: SourcesJson {
            distinct_estimate: e.sources.distinct_estimate,
            spoofed_likely: e.sources.spoofed_likely,
            verdict: &e.sources.verdict,
            top: e.sources.top.iter().map(|&(ip, packets)| SourceJson { ip, packets }).collect(),
        },
        offending_ips: &e.offending_ips,
        ended_at: end.map(|x| rfc3339_micros(x.ended_at_ns)),
        duration_s: end.map(|x| duration_ns(e.started_at_ns, x.ended_at_ns) as f64 / 1e9),
        end_reason: end.map(|x| x.reason.name()),
        evidence: a.evidence.as_ref(),
    }
}

/// From start to end rounded to the millisecond, in ns (never negative).
fn duration_ns(start: i64, end: i64) -> i64 {
    (end.saturating_sub(start).max(0).saturating_add(500_000)) / 1_000_000 * 1_000_000
}

/// One alert as a JSON object in `format`, without a line terminator.
pub fn render(a: &Alert, format: AlertFormat) -> serde_json::Result<Vec<u8>> {
    match format {
        AlertFormat::Native => serde_json::to_vec(&native(a)),
        AlertFormat::Ecs => serde_json::to_vec(&ecs(a)?),
        AlertFormat::Eve => serde_json::to_vec(&eve(a)?),
    }
}

/// One alert as the native JSON object (what the incident report reads).
pub fn native_value(a: &Alert) -> serde_json::Result<Value> {
    serde_json::to_value(native(a))
}

/// The native JSON line of one event (newline-terminated).
pub fn to_json_line(e: &AttackEvent) -> serde_json::Result<Vec<u8>> {
    let mut line = render(&Alert::new(e.clone()), AlertFormat::Native)?;
    line.push(b'\n');
    Ok(line)
}

/// Severity on the 1 (highest) to 4 scale both ECS consumers and Suricata use.
fn severity(e: &AttackEvent) -> u8 {
    match e.event {
        EventKind::Start => 1,
        EventKind::Update => 2,
        EventKind::End => 3,
    }
}

fn description(kind: AttackKind) -> &'static str {
    match kind {
        AttackKind::SynFlood => "TCP SYN flood",
        AttackKind::SynAckFlood => "TCP SYN-ACK reflection flood",
        AttackKind::UdpFlood => "UDP flood",
        AttackKind::Amplification => "UDP reflection/amplification flood",
        AttackKind::IcmpFlood => "ICMP flood",
        AttackKind::FragmentFlood => "IP fragment flood",
        AttackKind::AckFlood => "TCP ACK flood",
        AttackKind::RstFlood => "TCP RST flood",
        AttackKind::TcpFlood => "TCP flag flood (null, FIN, xmas)",
    }
}

/// Elastic Common Schema: the event in ECS field sets, the full native alert under `floodwatch`.
fn ecs(a: &Alert) -> serde_json::Result<Value> {
    let e = &a.event;
    let event_type = match e.event {
        EventKind::Start => "start",
        EventKind::Update => "info",
        EventKind::End => "end",
    };
    let mut event = json!({
        "kind": "alert",
        "category": ["network", "intrusion_detection"],
        "type": [event_type],
        "action": e.event.name(),
        "id": e.attack_id,
        "dataset": "floodwatch.alert",
        "module": "floodwatch",
        "severity": severity(e),
        "reason": e.reason,
        "start": rfc3339_micros(e.started_at_ns),
    });
    if let Some(end) = &e.end {
        event["end"] = json!(rfc3339_micros(end.ended_at_ns));
        event["duration"] = json!(duration_ns(e.started_at_ns, end.ended_at_ns));
    }
    let mut doc = json!({
        "@timestamp": rfc3339_micros(e.timestamp_ns),
        "ecs": { "version": "8.11.0" },
        "event": event,
        "rule": { "name": e.kind.name(), "description": description(e.kind), "category": "denial_of_service" },
        "observer": { "product": "floodwatch", "vendor": "floodwatch", "type": "ids",
                      "version": env!("CARGO_PKG_VERSION") },
        "destination": { "address": e.victim_text(), "ip": e.victim, "packets": e.packets, "bytes": e.bytes },
        "network": {
            "transport": e.protocol,
            "type": if e.victim.is_ipv4() { "ipv4" } else { "ipv6" },
            "packets": e.packets,
            "bytes": e.bytes,
        },
        "related": { "ip": related_ips(e) },
        "floodwatch": serde_json::to_value(native(a))?,
    });
    if let Some(&port) = e.victim_ports.first() {
        doc["destination"]["port"] = json!(port);
    }
    if let Some(service) = e.service {
        doc["network"]["protocol"] = json!(service);
    }
    if let Some(&(ip, _)) = e.sources.top.first() {
        doc["source"] = json!({ "ip": ip });
    }
    Ok(doc)
}

/// The offending sources, or when none are listed (spoofed), the busiest seen ones.
fn related_ips(e: &AttackEvent) -> Vec<IpAddr> {
    if e.offending_ips.is_empty() {
        e.sources.top.iter().map(|&(ip, _)| ip).collect()
    } else {
        e.offending_ips.clone()
    }
}

/// Suricata-style signature ids, one per kind, in a private range (9,100,000+).
fn signature_id(kind: AttackKind) -> u32 {
    9_100_001 + kind as u32
}

/// Suricata EVE `alert` record; floodwatch's own fields ride under `floodwatch`.
fn eve(a: &Alert) -> serde_json::Result<Value> {
    let e = &a.event;
    let proto = match e.protocol {
        "tcp" => "TCP",
        "udp" => "UDP",
        "icmp" => "ICMP",
        "icmpv6" => "IPv6-ICMP",
        other => other,
    };
    let mut doc = json!({
        "timestamp": suricata_timestamp(e.timestamp_ns),
        "flow_id": flow_id(&e.attack_id),
        "event_type": "alert",
        "dest_ip": e.victim,
        "proto": proto,
        "alert": {
            "action": "allowed",
            "gid": 1,
            "signature_id": signature_id(e.kind),
            "rev": 1,
            "signature": format!("FLOODWATCH {} {}", description(e.kind), e.event.name()),
            "category": "Attempted Denial of Service",
            "severity": severity(e),
            "metadata": {
                "attack_id": [e.attack_id],
                "event": [e.event.name()],
                "spoofed_likely": [e.sources.spoofed_likely.to_string()],
            },
        },
        "floodwatch": serde_json::to_value(native(a))?,
    });
    if let Some(&(ip, _)) = e.sources.top.first() {
        doc["src_ip"] = json!(ip);
    }
    if let Some(&port) = e.victim_ports.first() {
        doc["dest_port"] = json!(port);
    }
    if let Some(service) = e.service {
        doc["app_proto"] = json!(service);
    }
    Ok(doc)
}

/// EVE's `flow_id` is a number; the attack id (hex) gives a stable one per attack.
fn flow_id(attack_id: &str) -> u64 {
    let hex: String = attack_id.chars().filter(|c| c.is_ascii_hexdigit()).take(13).collect();
    u64::from_str_radix(&hex, 16).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::sample_event as event;

    fn parse(a: &Alert, f: AlertFormat) -> Value {
        serde_json::from_slice(&render(a, f).unwrap()).unwrap()
    }

    #[test]
    fn ecs_fields() {
        let v = parse(&Alert::new(event(EventKind::End)), AlertFormat::Ecs);
        assert_eq!(v["event"]["kind"], "alert");
        assert_eq!(v["event"]["type"][0], "end");
        assert_eq!(v["event"]["duration"], 1_250_000_000u64);
        assert_eq!(v["destination"]["ip"], "2001:db8::7");
        assert_eq!(v["destination"]["port"], 443);
        assert_eq!(v["source"]["ip"], "2001:db8::53");
        assert_eq!(v["network"]["transport"], "udp");
        assert_eq!(v["network"]["type"], "ipv6");
        assert_eq!(v["network"]["protocol"], "dns");
        assert_eq!(v["related"]["ip"], json!(["2001:db8::53", "2001:db8::54"]));
        assert_eq!(v["@timestamp"], "2026-01-15T12:00:03.500000Z");
        assert_eq!(v["floodwatch"]["attack_id"], "0123456789abcdef");
    }

    #[test]
    fn eve_fields() {
        let mut a = Alert::new(event(EventKind::Start));
        a.event.victim = "192.0.2.7".parse().unwrap();
        let v = parse(&a, AlertFormat::Eve);
        assert_eq!(v["event_type"], "alert");
        assert_eq!(v["timestamp"], "2026-01-15T12:00:03.500000+0000");
        assert_eq!(v["src_ip"], "2001:db8::53");
        assert_eq!(v["dest_ip"], "192.0.2.7");
        assert_eq!(v["dest_port"], 443);
        assert_eq!(v["proto"], "UDP");
        assert_eq!(v["alert"]["signature_id"], 9_100_001 + AttackKind::Amplification as u64);
        assert!(v["alert"]["signature"].as_str().unwrap().contains("amplification"));
        assert_eq!(v["alert"]["severity"], 1);
        assert_eq!(v["flow_id"], 0x0123456789abcu64);
    }

    #[test]
    fn every_kind_has_its_own_signature_and_rule() {
        let mut ids = std::collections::BTreeSet::new();
        for (i, kind) in AttackKind::ALL.into_iter().enumerate() {
            let mut a = Alert::new(event(EventKind::Start));
            a.event.kind = kind;
            let eve = parse(&a, AlertFormat::Eve);
            assert_eq!(eve["alert"]["signature_id"], 9_100_001 + i as u64, "{kind:?}");
            assert!(ids.insert(eve["alert"]["signature"].as_str().unwrap().to_owned()), "{kind:?}");
            let ecs = parse(&a, AlertFormat::Ecs);
            assert_eq!(ecs["rule"]["name"], kind.name());
        }
        assert_eq!(
            AttackKind::ALL[6..].iter().map(|k| k.name()).collect::<Vec<_>>(),
            ["ack_flood", "rst_flood", "tcp_flood"],
            "new kinds come last: the ids of the earlier ones stay"
        );
    }

    #[test]
    fn native_carries_evidence_on_end() {
        let mut a = Alert::new(event(EventKind::End));
        a.evidence =
            Some(EvidenceFile { path: Some("/x.pcap".into()), packets: 3, sha256: Some("ab".into()), error: None });
        let v = parse(&a, AlertFormat::Native);
        assert_eq!(v["evidence"]["packets"], 3);
        assert_eq!(v["duration_s"], 1.25);
        assert_eq!(v["offending_ips"].as_array().unwrap().len(), 2);
        assert!(parse(&Alert::new(event(EventKind::Start)), AlertFormat::Native).get("evidence").is_none());
    }

    #[test]
    fn native_names_the_sensors_of_an_aggregated_attack_only() {
        let mut a = Alert::new(event(EventKind::Start));
        assert!(parse(&a, AlertFormat::Native).get("sensors").is_none());
        a.event.sensors = vec!["edge-1".into(), "edge-2".into()];
        assert_eq!(parse(&a, AlertFormat::Native)["sensors"], serde_json::json!(["edge-1", "edge-2"]));
    }

    #[test]
    fn formats_parse() {
        assert_eq!("ecs".parse::<AlertFormat>(), Ok(AlertFormat::Ecs));
        assert!("xml".parse::<AlertFormat>().is_err());
    }
}
