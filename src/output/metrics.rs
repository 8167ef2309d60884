//! Prometheus metrics over HTTP (`--metrics ADDR`): traffic by class, decode issues, drops,
//! attacks, alerts, sink queues, and latency quantiles from hdrhistogram.
//!
//! The pipeline publishes snapshots (once per batch of packets, never per packet)
//! into [`Metrics`]; a small tokio runtime in its own thread answers scrapes.

use crate::analyze::{AnalyzerStats, EventKind};
use crate::decode::DecodeIssue;
use crate::output::mitigation::route::RouteKind;
use crate::output::mitigation::{MitigationCounters, Refusal};
use crate::output::sink::SinkStats;
use crate::output::summary::{TrafficClass, TrafficStats};
use crate::telemetry::sflow::InterfaceCounters;
use crate::telemetry::{Protocol, TelemetryIssue};
use hdrhistogram::Histogram;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Latencies are kept from 1 ns to 10 minutes at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 600_000_000_000, 3).expect("constant bounds are valid")
}

/// What one capture thread (or the replay reader) last published.
#[derive(Clone, Copy, Debug, Default)]
pub struct CaptureCounts {
    pub traffic: TrafficStats,
    /// Packets the kernel dropped for this thread's socket (live only).
    pub kernel_dropped: u64,
}

/// What the pipeline last published.
pub struct Metrics {
    /// Per capture thread.
    captures: Mutex<Vec<CaptureCounts>>,
    /// The interface counters sFlow agents sent, per telemetry listener thread.
    interfaces: Mutex<Vec<Vec<(IpAddr, InterfaceCounters)>>>,
    analyzer: Mutex<AnalyzerStats>,
    pub active_attacks: AtomicU64,
    alerts: [AtomicU64; 3],
    pub blocklist_entries: AtomicU64,
    /// Times a capture was opened again after it failed, and the time spent without it, ns.
    pub capture_restarts: AtomicU64,
    pub capture_down_ns: AtomicU64,
    pub evidence_files: AtomicU64,
    pub hook_runs: AtomicU64,
    pub hook_failures: AtomicU64,
    pub hook_dropped: AtomicU64,
    sinks: Mutex<Vec<(String, Arc<SinkStats>)>>,
    /// What the BGP mitigation does (None: not configured).
    mitigation: Mutex<Option<Arc<MitigationCounters>>>,
    /// Processing time per batch of packets, ns.
    batch_latency: Mutex<Histogram<u64>>,
    /// Packet time from a flood's first packet to its `attack_start`, ns.
    detection_delay: Mutex<Histogram<u64>>,
}

impl Default for Metrics {
    fn default() -> Metrics {
        Metrics {
            captures: Mutex::default(),
            interfaces: Mutex::default(),
            analyzer: Mutex::default(),
            active_attacks: AtomicU64::new(0),
            alerts: Default::default(),
            blocklist_entries: AtomicU64::new(0),
            capture_restarts: AtomicU64::new(0),
            capture_down_ns: AtomicU64::new(0),
            evidence_files: AtomicU64::new(0),
            hook_runs: AtomicU64::new(0),
            hook_failures: AtomicU64::new(0),
            hook_dropped: AtomicU64::new(0),
            sinks: Mutex::default(),
            mitigation: Mutex::default(),
            batch_latency: Mutex::new(latency_histogram()),
            detection_delay: Mutex::new(latency_histogram()),
        }
    }
}

impl Metrics {
    /// What capture thread `thread` (0 for replay) counted so far.
    pub fn set_capture(&self, thread: usize, counts: CaptureCounts) {
        if let Ok(mut g) = self.captures.lock() {
            if g.len() <= thread {
                g.resize(thread + 1, CaptureCounts::default());
            }
            g[thread] = counts;
        }
    }

    /// The interface counters telemetry listener `thread` holds.
    pub fn set_interfaces(&self, thread: usize, interfaces: Vec<(IpAddr, InterfaceCounters)>) {
        if let Ok(mut g) = self.interfaces.lock() {
            if g.len() <= thread {
                g.resize(thread + 1, Vec::new());
            }
            g[thread] = interfaces;
        }
    }

    /// The counts of each capture thread, last published.
    pub fn captures(&self) -> Vec<CaptureCounts> {
        self.captures.lock().map(|g| g.clone()).unwrap_or_default()
    }

    /// The traffic counters of all capture threads.
    pub fn traffic(&self) -> TrafficStats {
        let mut total = TrafficStats::default();
        for c in self.captures() {
            total.add(&c.traffic);
        }
        total
    }

    /// Kernel drops of all capture sockets.
    pub fn kernel_dropped(&self) -> u64 {
        self.captures().iter().map(|c| c.kernel_dropped).sum()
    }

    pub fn set_analyzer(&self, a: &AnalyzerStats, active_attacks: usize) {
        if let Ok(mut g) = self.analyzer.lock() {
            *g = *a;
        }
        self.active_attacks.store(active_attacks as u64, Ordering::Relaxed);
    }

    pub fn set_sinks(&self, sinks: Vec<(String, Arc<SinkStats>)>) {
        if let Ok(mut g) = self.sinks.lock() {
            *g = sinks;
        }
    }

    pub fn set_mitigation(&self, counters: Arc<MitigationCounters>) {
        if let Ok(mut g) = self.mitigation.lock() {
            *g = Some(counters);
        }
    }

    pub fn count_alert(&self, kind: EventKind) {
        self.alerts[kind as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Alerts raised so far, of every event.
    pub fn alerts_raised(&self) -> u64 {
        self.alerts.iter().map(|a| a.load(Ordering::Relaxed)).sum()
    }

    /// One batch's processing time (called per batch, never per packet).
    pub fn record_batch_latency(&self, ns: u64) {
        if let Ok(mut g) = self.batch_latency.lock() {
            let _ = g.record(ns.max(1));
        }
    }

    pub fn record_detection_delay(&self, ns: u64) {
        if let Ok(mut g) = self.detection_delay.lock() {
            let _ = g.record(ns.max(1));
        }
    }

    /// The Prometheus text exposition (format 0.0.4).
    /// The latest counters of the interfaces sFlow agents report, by agent and interface
    /// index: the device's own counters (they restart when it does), for rates in queries.
    fn render_interfaces(&self, family: &mut impl FnMut(&str, &str, &str, &[(String, u64)])) {
        let interfaces: Vec<(IpAddr, InterfaceCounters)> =
            self.interfaces.lock().map(|g| g.iter().flatten().copied().collect()).unwrap_or_default();
        let labels = |agent: &IpAddr, c: &InterfaceCounters, more: &str| {
            format!("{{agent=\"{agent}\",if_index=\"{}\"{more}}}", c.if_index)
        };
        let both = |get: fn(&InterfaceCounters) -> (u64, u64)| -> Vec<(String, u64)> {
            let mut samples = Vec::with_capacity(2 * interfaces.len());
            for (agent, c) in &interfaces {
                let (rx, tx) = get(c);
                samples.push((labels(agent, c, ",direction=\"in\""), rx));
                samples.push((labels(agent, c, ",direction=\"out\""), tx));
            }
            samples
        };
        type InOut = fn(&InterfaceCounters) -> (u64, u64);
        let directed: [(&str, &str, InOut); 4] = [
            ("octets", "Octets of an interface", |c| (c.in_octets, c.out_octets)),
            ("packets", "Packets of an interface (unicast, multicast, broadcast)", |c| (c.in_packets, c.out_packets)),
            ("discards", "Packets an interface discarded", |c| (c.in_discards, c.out_discards)),
            ("errors", "Packets with errors on an interface", |c| (c.in_errors, c.out_errors)),
        ];
        for (what, help, get) in directed {
            let help = format!("{help}, as its sFlow agent counts them, by direction.");
            family(&format!("interface_{what}_total"), "counter", &help, &both(get));
        }
        let each = |get: fn(&InterfaceCounters) -> u64| -> Vec<(String, u64)> {
            interfaces.iter().map(|(agent, c)| (labels(agent, c, ""), get(c))).collect()
        };
        family("interface_speed_bits", "gauge", "An interface's speed, bits per second.", &each(|c| c.speed));
        family("interface_up", "gauge", "Whether an interface is operationally up.", &each(|c| u64::from(c.up)));
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let t = self.traffic();
        let a = self.analyzer.lock().map(|g| *g).unwrap_or_default();
        let mut family = |name: &str, kind: &str, help: &str, samples: &[(String, u64)]| {
            let _ = writeln!(out, "# HELP floodwatch_{name} {help}\n# TYPE floodwatch_{name} {kind}");
            for (labels, v) in samples {
                let _ = writeln!(out, "floodwatch_{name}{labels} {v}");
            }
        };
        // A family with one unlabelled sample.
        let one = |v: u64| [(String::new(), v)];
        let by_class = |values: &[u64]| -> Vec<(String, u64)> {
            TrafficClass::ALL.iter().map(|c| (format!("{{class=\"{}\"}}", c.name()), values[*c as usize])).collect()
        };
        family("frames_total", "counter", "Frames read.", &one(t.frames));
        family("packets_total", "counter", "IP packets analyzed, by class.", &by_class(&t.class_packets));
        family("bytes_total", "counter", "Bytes on the wire of IP packets, by class.", &by_class(&t.class_bytes));
        family("non_ip_frames_total", "counter", "Frames that carry no IP.", &one(t.non_ip));
        let issues: Vec<(String, u64)> =
            DecodeIssue::ALL.iter().map(|i| (format!("{{reason=\"{}\"}}", i.name()), t.issues[*i as usize])).collect();
        family("decode_issues_total", "counter", "Frames that could not be decoded, by reason.", &issues);
        let tm = &t.telemetry;
        let by_protocol: Vec<(String, u64)> = Protocol::ALL
            .iter()
            .map(|p| (format!("{{protocol=\"{}\"}}", p.name()), tm.datagrams[*p as usize]))
            .collect();
        family("telemetry_datagrams_total", "counter", "Telemetry datagrams read, by protocol.", &by_protocol);
        family("telemetry_flow_samples_total", "counter", "sFlow flow samples read.", &one(tm.flow_samples));
        family(
            "telemetry_sampled_packets_total",
            "counter",
            "Sampled packets analyzed, each standing for its sampling rate's worth.",
            &one(tm.records),
        );
        family(
            "telemetry_flow_records_total",
            "counter",
            "NetFlow/IPFIX flow records analyzed.",
            &one(tm.flow_records),
        );
        family(
            "telemetry_flow_packets_total",
            "counter",
            "Packets the flow records stand for (sampling rates applied).",
            &one(tm.flow_packets),
        );
        family("telemetry_templates_total", "counter", "NetFlow v9/IPFIX templates read.", &one(tm.templates));
        family("telemetry_counter_samples_total", "counter", "sFlow counter samples read.", &one(tm.counter_samples));
        self.render_interfaces(&mut family);
        family(
            "telemetry_untracked_interfaces_total",
            "counter",
            "Interface counters not kept: 4,096 interfaces were.",
            &one(tm.untracked_interfaces),
        );
        let skipped = [
            ("other_records", tm.other_records),
            ("unknown_samples", tm.unknown_samples),
            ("headers_not_ip", tm.undecodable_samples),
            ("bad_sampling_rate", tm.bad_sampling_rates),
            ("exporter_not_allowed", tm.unknown_exporters),
            ("impossible_length", tm.impossible_lengths),
            ("template_refused", tm.templates_refused),
            ("no_template", tm.data_without_template),
            ("unknown_set", tm.unknown_sets),
            ("empty_flow", tm.empty_flows),
            ("impossible_count", tm.impossible_counts),
        ];
        let skipped: Vec<(String, u64)> = skipped.iter().map(|(r, v)| (format!("{{reason=\"{r}\"}}"), *v)).collect();
        family("telemetry_skipped_total", "counter", "Telemetry not analyzed, by reason.", &skipped);
        family(
            "telemetry_unspread_flows_total",
            "counter",
            "Flows counted at once rather than over their duration (too many being spread).",
            &one(tm.unspread_flows),
        );
        let refused: Vec<(String, u64)> = TelemetryIssue::ALL
            .iter()
            .map(|i| (format!("{{reason=\"{}\"}}", i.name()), tm.issues[*i as usize]))
            .collect();
        family(
            "telemetry_issues_total",
            "counter",
            "Telemetry datagrams (or their rest) refused, by reason.",
            &refused,
        );
        let drops: Vec<(String, u64)> = self
            .captures()
            .iter()
            .enumerate()
            .map(|(i, c)| (format!("{{socket=\"{i}\"}}"), c.kernel_dropped))
            .collect();
        family(
            "kernel_dropped_total",
            "counter",
            "Packets the kernel dropped before capture, by socket (live only).",
            &drops,
        );
        family(
            "capture_restarts_total",
            "counter",
            "Times capture resumed: the link back up, or the capture opened again after its interface went away (live only).",
            &one(self.capture_restarts.load(Ordering::Relaxed)),
        );
        let skipped = [
            ("victim_table_full", a.victim_table_full),
            ("watch_pool_exhausted", a.watch_pool_exhausted),
            ("tracker_pool_exhausted", a.tracker_pool_exhausted),
        ];
        let skipped: Vec<(String, u64)> = skipped.iter().map(|(r, v)| (format!("{{reason=\"{r}\"}}"), *v)).collect();
        family("analyzer_capacity_events_total", "counter", "Times analyzer state was full, by table.", &skipped);
        family(
            "echoes_dropped_total",
            "counter",
            "Attacks not reported: a victim under attack answering its attacker.",
            &one(a.echoes_dropped),
        );
        family(
            "carpets_covered_total",
            "counter",
            "Attacks on prefixes not reported: an attack on one of their hosts covers them.",
            &one(a.carpets_covered),
        );
        family("active_attacks", "gauge", "Attacks in progress.", &one(self.active_attacks.load(Ordering::Relaxed)));
        let alerts: Vec<(String, u64)> = [EventKind::Start, EventKind::Update, EventKind::End]
            .iter()
            .map(|k| (format!("{{event=\"{}\"}}", k.name()), self.alerts[*k as usize].load(Ordering::Relaxed)))
            .collect();
        family("alerts_total", "counter", "Alerts raised, by event.", &alerts);
        if let Some(m) = self.mitigation.lock().ok().and_then(|g| g.as_ref().map(|c| c.snapshot())) {
            let by_route = |values: &[u64; RouteKind::ALL.len()]| -> Vec<(String, u64)> {
                RouteKind::ALL.iter().map(|k| (format!("{{route=\"{}\"}}", k.name()), values[*k as usize])).collect()
            };
            family(
                "bgp_announcements_total",
                "counter",
                "BGP routes announced through ExaBGP, by route.",
                &by_route(&m.announced),
            );
            family(
                "bgp_withdrawals_total",
                "counter",
                "BGP routes withdrawn through ExaBGP, by route.",
                &by_route(&m.withdrawn),
            );
            family("bgp_routes_active", "gauge", "BGP routes announced now, by route.", &by_route(&m.active));
            let refused: Vec<(String, u64)> =
                Refusal::ALL.iter().map(|r| (format!("{{reason=\"{}\"}}", r.name()), m.refused[*r as usize])).collect();
            family(
                "bgp_refused_total",
                "counter",
                "Routes an attack called for and a safety rail refused, by reason.",
                &refused,
            );
            if let Some(up) = m.relay_connected {
                family(
                    "bgp_relay_connected",
                    "gauge",
                    "Whether the link to the ExaBGP relay is up.",
                    &one(u64::from(up)),
                );
                family(
                    "bgp_relay_resyncs_total",
                    "counter",
                    "Times the whole set of routes was sent to the relay again, its link back.",
                    &one(m.relay_resyncs),
                );
            }
        }
        let sinks = self.sinks.lock().map(|g| g.clone()).unwrap_or_default();
        let per_sink = |f: &dyn Fn(&SinkStats) -> u64| -> Vec<(String, u64)> {
            sinks.iter().map(|(n, s)| (format!("{{sink=\"{}\"}}", escape(n)), f(s))).collect()
        };
        family(
            "sink_queue_depth",
            "gauge",
            "Alerts waiting in each sink's queue.",
            &per_sink(&|s| s.queued.load(Ordering::Relaxed)),
        );
        family(
            "sink_delivered_total",
            "counter",
            "Alerts each sink delivered.",
            &per_sink(&|s| s.delivered.load(Ordering::Relaxed)),
        );
        let mut dropped = Vec::new();
        for (n, s) in &sinks {
            for (reason, v) in [("queue_full", &s.dropped_queue_full), ("failed", &s.dropped_failed)] {
                dropped.push((format!("{{sink=\"{}\",reason=\"{reason}\"}}", escape(n)), v.load(Ordering::Relaxed)));
            }
        }
        family("sink_dropped_total", "counter", "Alerts each sink lost, by reason.", &dropped);
        family(
            "sink_reconnects_total",
            "counter",
            "Reconnections after an outage.",
            &per_sink(&|s| s.reconnects.load(Ordering::Relaxed)),
        );
        family(
            "blocklist_entries",
            "gauge",
            "Sources on the blocklist.",
            &one(self.blocklist_entries.load(Ordering::Relaxed)),
        );
        family(
            "evidence_files_total",
            "counter",
            "Evidence captures finished.",
            &one(self.evidence_files.load(Ordering::Relaxed)),
        );
        let hook = [
            ("ok", self.hook_runs.load(Ordering::Relaxed)),
            ("failed", self.hook_failures.load(Ordering::Relaxed)),
            ("dropped", self.hook_dropped.load(Ordering::Relaxed)),
        ];
        let hook: Vec<(String, u64)> = hook.iter().map(|(r, v)| (format!("{{result=\"{r}\"}}"), *v)).collect();
        family("hook_runs_total", "counter", "on_attack command runs, by result.", &hook);
        for (name, help, h) in [
            ("batch_latency_seconds", "Processing time per batch of packets.", &self.batch_latency),
            (
                "detection_delay_seconds",
                "Packet time from a flood's first packet to its attack_start.",
                &self.detection_delay,
            ),
        ] {
            let Ok(h) = h.lock() else { continue };
            let _ = writeln!(out, "# HELP floodwatch_{name} {help}\n# TYPE floodwatch_{name} summary");
            for q in [0.5, 0.9, 0.99, 0.999] {
                let v = if h.is_empty() { 0.0 } else { h.value_at_quantile(q) as f64 / 1e9 };
                let _ = writeln!(out, "floodwatch_{name}{{quantile=\"{q}\"}} {v}");
            }
            let _ = writeln!(out, "floodwatch_{name}_sum {}", h.mean() * h.len() as f64 / 1e9);
            let _ = writeln!(out, "floodwatch_{name}_count {}", h.len());
        }
        let down_s = self.capture_down_ns.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(
            out,
            "# HELP floodwatch_capture_down_seconds_total Time without capture: the link down, or captures waiting for their interface (live only).\n\
             # TYPE floodwatch_capture_down_seconds_total counter\nfloodwatch_capture_down_seconds_total {down_s}"
        );
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// `PORT` alone means 127.0.0.1:PORT (never exposed by accident); else `HOST:PORT`.
pub fn listen_addr(text: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = text.parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    text.parse().map_err(|_| format!("{text:?}: expected PORT, IP:PORT or [IPv6]:PORT"))
}

/// The HTTP endpoint; stops when dropped.
pub struct MetricsServer {
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds now (so "address in use" is an error at start-up) and serves in a thread.
    pub fn start(addr: SocketAddr, metrics: Arc<Metrics>) -> Result<MetricsServer, String> {
        let listener = std::net::TcpListener::bind(addr).map_err(|e| format!("cannot serve metrics on {addr}: {e}"))?;
        let local = listener.local_addr().map_err(|e| format!("metrics listener: {e}"))?;
        listener.set_nonblocking(true).map_err(|e| format!("metrics listener: {e}"))?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(r) => r,
                    Err(e) => {
                        tracing::error!("metrics server cannot start: {e}");
                        return;
                    }
                };
                runtime.block_on(async move {
                    let listener = match tokio::net::TcpListener::from_std(listener) {
                        Ok(l) => l,
                        Err(e) => {
                            tracing::error!("metrics server cannot start: {e}");
                            return;
                        }
                    };
                    loop {
                        tokio::select! {
                            _ = &mut stopped => break,
                            accepted = listener.accept() => {
                                if let Ok((stream, _)) = accepted {
                                    tokio::spawn(answer(stream, metrics.clone()));
                                }
                            }
                        }
                    }
                });
            })
            .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
        Ok(MetricsServer { addr: local, stop: Some(stop), thread: Some(thread) })
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// One HTTP/1.x exchange: `GET /metrics` gets the exposition, anything else 404; the
/// connection closes after the answer. Requests are read for at most 5 s and 8 KiB.
async fn answer(mut stream: tokio::net::TcpStream, metrics: Arc<Metrics>) {
    let mut request = Vec::with_capacity(512);
    let mut buf = [0u8; 1024];
    let read_head = async {
        while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => request.extend_from_slice(&buf[..n]),
            }
        }
        true
    };
    if !matches!(tokio::time::timeout(Duration::from_secs(5), read_head).await, Ok(true)) {
        return;
    }
    let line = request.split(|&b| b == b'\r').next().unwrap_or_default();
    let mut parts = line.split(|&b| b == b' ');
    let (method, path) = (parts.next().unwrap_or_default(), parts.next().unwrap_or_default());
    let (status, content_type, body) = match (method, path) {
        (b"GET", b"/metrics") => ("200 OK", "text/plain; version=0.0.4; charset=utf-8", metrics.render()),
        (b"GET", _) => ("404 Not Found", "text/plain", "floodwatch serves /metrics\n".to_string()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".to_string()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(body.as_bytes()).await;
    let _ = stream.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        assert_eq!(listen_addr("9477").unwrap(), "127.0.0.1:9477".parse().unwrap());
        assert_eq!(listen_addr("[::1]:80").unwrap(), "[::1]:80".parse().unwrap());
        assert!(listen_addr("localhost").is_err());
    }

    #[test]
    fn exposition_has_every_family() {
        let m = Metrics::default();
        m.count_alert(EventKind::Start);
        m.record_batch_latency(2_000);
        let text = m.render();
        for needle in [
            "floodwatch_packets_total{class=\"syn\"} 0",
            "floodwatch_alerts_total{event=\"attack_start\"} 1",
            "floodwatch_decode_issues_total{reason=\"ip_truncated\"} 0",
            "floodwatch_telemetry_sampled_packets_total 0",
            "floodwatch_telemetry_skipped_total{reason=\"exporter_not_allowed\"} 0",
            "floodwatch_telemetry_issues_total{reason=\"truncated\"} 0",
            "floodwatch_batch_latency_seconds{quantile=\"0.99\"} 0.000002",
            "floodwatch_batch_latency_seconds_count 1",
            "# TYPE floodwatch_active_attacks gauge",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }

    #[test]
    fn interface_counters_are_labelled_by_agent_index_and_direction() {
        let m = Metrics::default();
        let counters = InterfaceCounters {
            if_index: 7,
            speed: 10_000_000_000,
            up: true,
            in_octets: 1_500,
            out_packets: 3,
            ..InterfaceCounters::default()
        };
        // The sFlow listener is thread 1; thread 0 (another listener) has none.
        m.set_interfaces(1, vec![("192.0.2.1".parse().unwrap(), counters)]);
        m.set_interfaces(0, Vec::new());
        let text = m.render();
        for needle in [
            "floodwatch_interface_octets_total{agent=\"192.0.2.1\",if_index=\"7\",direction=\"in\"} 1500",
            "floodwatch_interface_packets_total{agent=\"192.0.2.1\",if_index=\"7\",direction=\"out\"} 3",
            "floodwatch_interface_speed_bits{agent=\"192.0.2.1\",if_index=\"7\"} 10000000000",
            "floodwatch_interface_up{agent=\"192.0.2.1\",if_index=\"7\"} 1",
            "# TYPE floodwatch_interface_errors_total counter",
        ] {
            assert!(text.contains(needle), "{needle} missing in\n{text}");
        }
    }
}
