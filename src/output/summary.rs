//! The human summary a replay prints on stderr, and the progress bar for long files.

use crate::analyze::{fmt_int, AnalyzerStats, AttackEvent, Class, EventKind};
use crate::decode::{DecodeIssue, Fragment, PacketRecord};
use crate::output::mitigation::route::RouteKind;
use crate::output::OutputReport;
use crate::telemetry::{Protocol, TelemetryIssue, TelemetryStats};
use hdrhistogram::Histogram;
use std::fmt::{self, Write as _};
use std::io::Write;
use std::time::{Duration, Instant};

/// Packet and byte counts of one run.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrafficStats {
    pub frames: u64,
    /// Bytes on the wire (original lengths).
    pub wire_bytes: u64,
    pub ip_packets: u64,
    pub non_ip: u64,
    /// Decode issues, indexed like [`DecodeIssue::ALL`].
    pub issues: [u64; DecodeIssue::ALL.len()],
    /// IP packets and their wire bytes by [`TrafficClass`].
    pub class_packets: [u64; TrafficClass::ALL.len()],
    pub class_bytes: [u64; TrafficClass::ALL.len()],
    /// The flow telemetry read from datagrams (replay `--telemetry`).
    pub telemetry: TelemetryStats,
}

impl TrafficStats {
    /// Adds another reader's counts (several capture threads).
    pub fn add(&mut self, other: &TrafficStats) {
        self.frames += other.frames;
        self.wire_bytes += other.wire_bytes;
        self.ip_packets += other.ip_packets;
        self.non_ip += other.non_ip;
        self.telemetry.add(&other.telemetry);
        let pairs = [
            (&mut self.issues[..], &other.issues[..]),
            (&mut self.class_packets[..], &other.class_packets[..]),
            (&mut self.class_bytes[..], &other.class_bytes[..]),
        ];
        for (mine, theirs) in pairs {
            mine.iter_mut().zip(theirs).for_each(|(a, b)| *a += b);
        }
    }

    #[inline]
    pub fn count_ip(&mut self, r: &PacketRecord) {
        self.ip_packets += 1;
        let c = TrafficClass::of(r) as usize;
        self.class_packets[c] += 1;
        self.class_bytes[c] += r.wire_len as u64;
    }
}

/// What kind of IP packet, for the traffic counters (metrics).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrafficClass {
    Syn,
    SynAck,
    TcpOther,
    Udp,
    Icmp,
    /// Non-first fragments, which carry no transport header.
    Fragment,
    Other,
}

impl TrafficClass {
    pub const ALL: [TrafficClass; 7] = [
        TrafficClass::Syn,
        TrafficClass::SynAck,
        TrafficClass::TcpOther,
        TrafficClass::Udp,
        TrafficClass::Icmp,
        TrafficClass::Fragment,
        TrafficClass::Other,
    ];

    pub fn name(self) -> &'static str {
        match self {
            TrafficClass::Syn => "syn",
            TrafficClass::SynAck => "synack",
            TrafficClass::TcpOther => "tcp_other",
            TrafficClass::Udp => "udp",
            TrafficClass::Icmp => "icmp",
            TrafficClass::Fragment => "fragment",
            TrafficClass::Other => "other",
        }
    }

    /// The analyzer's class of the packet, with the rest of TCP and IP named too.
    #[inline]
    fn of(r: &PacketRecord) -> TrafficClass {
        TRAFFIC_CLASSES[r.shape()]
    }

    /// [`TrafficClass::of`] by its definition, which builds the table.
    const fn classify(r: &PacketRecord) -> TrafficClass {
        if matches!(r.fragment, Fragment::Later) {
            return TrafficClass::Fragment;
        }
        match Class::of(r) {
            Some(Class::Syn) => TrafficClass::Syn,
            Some(Class::SynAck) => TrafficClass::SynAck,
            Some(Class::Udp) => TrafficClass::Udp,
            Some(Class::Icmp) => TrafficClass::Icmp,
            Some(Class::Frag) => TrafficClass::Fragment,
            Some(Class::Ack | Class::Rst | Class::TcpOther) => TrafficClass::TcpOther,
            None if r.protocol == PacketRecord::PROTO_TCP => TrafficClass::TcpOther,
            None => TrafficClass::Other,
        }
    }
}

/// [`TrafficClass::classify`] of each [`PacketRecord::shape`].
const TRAFFIC_CLASSES: [TrafficClass; PacketRecord::SHAPES] = {
    let mut table = [TrafficClass::Other; PacketRecord::SHAPES];
    let mut shape = 0;
    while shape < PacketRecord::SHAPES {
        table[shape] = TrafficClass::classify(&PacketRecord::of_shape(shape));
        shape += 1;
    }
    table
};

/// One finished attack, as the summary lists it.
#[derive(Clone, Debug, PartialEq)]
pub struct AttackLine {
    pub kind: &'static str,
    pub victim: String,
    pub service: Option<&'static str>,
    pub peak_pps: u64,
    pub duration_s: f64,
    pub distinct_sources: u64,
    pub spoofed: bool,
}

impl AttackLine {
    /// The line for an `attack_end` event, `None` for other events.
    pub fn from_end(e: &AttackEvent) -> Option<AttackLine> {
        let end = e.end.as_ref().filter(|_| e.event == EventKind::End)?;
        Some(AttackLine {
            kind: e.kind.name(),
            victim: e.victim_text(),
            service: e.service,
            peak_pps: e.peak_pps,
            duration_s: (end.ended_at_ns.saturating_sub(e.started_at_ns)).max(0) as f64 / 1e9,
            distinct_sources: e.sources.distinct_estimate,
            spoofed: e.sources.spoofed_likely,
        })
    }
}

pub struct Summary<'a> {
    pub files: usize,
    pub traffic: &'a TrafficStats,
    pub attacks: &'a [AttackLine],
    pub analyzer: &'a AnalyzerStats,
    pub errors: &'a [String],
    pub elapsed: Duration,
    /// Wall time per batch of `batch_packets` packets, ns.
    pub batch_latency: &'a Histogram<u64>,
    pub batch_packets: usize,
    pub detection_delay: &'a Histogram<u64>,
    pub outputs: &'a OutputReport,
}

/// `, 3 this, 1,024 that` for the counts above zero.
fn counted(counts: &[(u64, &str)]) -> String {
    counts.iter().filter(|(n, _)| *n > 0).map(|(n, what)| format!(", {} {what}", fmt_int(*n as f64))).collect()
}

/// `p50 1.2 ms, p99 ..., p99.9 ...` of a histogram of nanoseconds.
fn quantiles(h: &Histogram<u64>, qs: &[(f64, &str)]) -> String {
    qs.iter()
        .map(|&(q, name)| format!("{name} {}", fmt_duration(h.value_at_quantile(q))))
        .collect::<Vec<_>>()
        .join(", ")
}

fn fmt_duration(ns: u64) -> String {
    match ns {
        0..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{:.1} µs", ns as f64 / 1e3),
        1_000_000..=999_999_999 => format!("{:.1} ms", ns as f64 / 1e6),
        _ => format!("{:.2} s", ns as f64 / 1e9),
    }
}

impl fmt::Display for Summary<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = self.traffic;
        let secs = self.elapsed.as_secs_f64().max(1e-9);
        writeln!(
            f,
            "floodwatch: {} file{}, {} packets, {} bytes on the wire, in {:.3} s ({:.2} Mpps)",
            self.files,
            if self.files == 1 { "" } else { "s" },
            fmt_int(t.frames as f64),
            fmt_int(t.wire_bytes as f64),
            secs,
            t.frames as f64 / secs / 1e6
        )?;
        let mut issues = String::new();
        for (issue, n) in DecodeIssue::ALL.iter().zip(t.issues) {
            if n > 0 {
                let _ = write!(issues, ", {} {}", issue.name(), fmt_int(n as f64));
            }
        }
        writeln!(
            f,
            "  decoded: {} IP, {} non-IP; decode issues: {}",
            fmt_int(t.ip_packets as f64),
            fmt_int(t.non_ip as f64),
            if issues.is_empty() { "none".to_string() } else { issues[2..].to_string() }
        )?;
        let tm = &t.telemetry;
        if tm.datagrams_total() > 0 || tm.issues_total() > 0 || tm.unknown_exporters > 0 {
            let mut skipped = counted(&[
                (tm.other_records, "other flow and counter records"),
                (tm.untracked_interfaces, "interface counters not kept (4,096 interfaces were)"),
                (tm.unknown_samples, "samples of unknown formats"),
                (tm.undecodable_samples, "sampled headers that are not IP"),
                (tm.bad_sampling_rates, "samples or flows with a sampling rate of 0 or beyond any exporter's"),
                (tm.unknown_exporters, "datagrams from exporters not allowed (dropped)"),
                (tm.impossible_lengths, "samples of packets longer than any IP packet"),
                (tm.templates_refused, "templates refused (too many kept)"),
                (tm.data_without_template, "data sets whose template never came"),
                (tm.unknown_sets, "sets of unknown ids"),
                (tm.empty_flows, "flows of no packets"),
                (tm.impossible_counts, "flows of more packets than a link carries"),
                (tm.unspread_flows, "flows counted at once (too many being spread)"),
                (tm.hurried_ticks, "ticks of flows counted early (too many held for out-of-order flows)"),
            ]);
            for issue in TelemetryIssue::ALL {
                let what = format!("datagrams {}", issue.name().replace('_', " "));
                skipped.push_str(&counted(&[(tm.issues[issue as usize], &what)]));
            }
            let datagrams = |p: Protocol| tm.datagrams[p as usize];
            let mut read = Vec::new();
            if datagrams(Protocol::Sflow) > 0 {
                read.push(format!(
                    "{} sFlow datagrams ({} flow samples, {} sampled packets analyzed, {} counter samples)",
                    fmt_int(datagrams(Protocol::Sflow) as f64),
                    fmt_int(tm.flow_samples as f64),
                    fmt_int(tm.records as f64),
                    fmt_int(tm.counter_samples as f64),
                ));
            }
            let flow_protocols = [Protocol::NetflowV5, Protocol::NetflowV9, Protocol::Ipfix];
            if flow_protocols.iter().any(|&p| datagrams(p) > 0) {
                read.push(format!(
                    "{} NetFlow v5, {} NetFlow v9 and {} IPFIX datagrams ({} flow records of {} packets, each flow spread over its duration; {} templates)",
                    fmt_int(datagrams(Protocol::NetflowV5) as f64),
                    fmt_int(datagrams(Protocol::NetflowV9) as f64),
                    fmt_int(datagrams(Protocol::Ipfix) as f64),
                    fmt_int(tm.flow_records as f64),
                    fmt_int(tm.flow_packets as f64),
                    fmt_int(tm.templates as f64),
                ));
            }
            if read.is_empty() {
                read.push("no datagram read".to_string());
            }
            writeln!(f, "  telemetry: {}; counts scaled by their sampling rates{skipped}", read.join(", "))?;
        }
        let a = self.analyzer;
        let limits = counted(&[
            (a.allowlisted_packets, "allowlisted packets"),
            (a.timeline_restarts, "restarts after time stepped back > 2 s"),
            (a.victim_table_full, "packets with no room in the victim table"),
            (a.watch_pool_exhausted, "watches refused (pool full)"),
            (a.tracker_pool_exhausted, "attacks without source tracking (pool full)"),
            (a.echoes_dropped, "attacks not reported (a victim answering its attacker)"),
            (a.carpets_covered, "prefix attacks not reported (an attack on one of their hosts covers them)"),
        ]);
        if !limits.is_empty() {
            writeln!(f, "  analyzer: {}", &limits[2..])?;
        }
        writeln!(f, "  attacks: {}", self.attacks.len())?;
        for a in self.attacks {
            let service = a.service.map(|s| format!(" ({s})")).unwrap_or_default();
            writeln!(
                f,
                "    {:<20} {:<39} peak {:>10} pps  {:>7.1} s  {} sources{}",
                format!("{}{}", a.kind, service),
                a.victim,
                fmt_int(a.peak_pps as f64),
                a.duration_s,
                fmt_int(a.distinct_sources as f64),
                if a.spoofed { ", spoofed" } else { "" }
            )?;
        }
        if !self.detection_delay.is_empty() {
            writeln!(
                f,
                "  detection delay (packet time, first packet to attack_start): {}",
                quantiles(self.detection_delay, &[(0.5, "p50"), (0.99, "p99"), (1.0, "max")])
            )?;
        }
        if !self.batch_latency.is_empty() {
            writeln!(
                f,
                "  batch latency ({} packets): {}",
                self.batch_packets,
                quantiles(self.batch_latency, &[(0.5, "p50"), (0.99, "p99"), (0.999, "p99.9")])
            )?;
        }
        for s in &self.outputs.sinks {
            let lost = s.dropped_queue_full + s.dropped_failed;
            writeln!(
                f,
                "  alert sink {}: {} delivered{}{}",
                s.name,
                fmt_int(s.delivered as f64),
                if lost > 0 {
                    format!(
                        ", {} LOST ({} queue full, {} failed)",
                        fmt_int(lost as f64),
                        s.dropped_queue_full,
                        s.dropped_failed
                    )
                } else {
                    String::new()
                },
                if s.reconnects > 0 { format!(", {} reconnects", s.reconnects) } else { String::new() }
            )?;
        }
        if let Some(n) = self.outputs.blocklist_entries {
            writeln!(f, "  blocklist: {n} sources listed at the end")?;
        }
        if self.outputs.evidence_files > 0 {
            writeln!(f, "  evidence: {} capture files written", self.outputs.evidence_files)?;
        }
        if let Some(m) = &self.outputs.mitigation {
            let by_route: Vec<String> = RouteKind::ALL
                .iter()
                .filter(|k| m.announced[**k as usize] > 0)
                .map(|k| format!("{} {}", m.announced[*k as usize], k.name()))
                .collect();
            let sum = |v: &[u64]| v.iter().sum::<u64>();
            writeln!(
                f,
                "  bgp: {} routes announced{}, {} withdrawn, {} refused by the safety rails",
                sum(&m.announced),
                if by_route.is_empty() { String::new() } else { format!(" ({})", by_route.join(", ")) },
                sum(&m.withdrawn),
                sum(&m.refused)
            )?;
        }
        match &self.outputs.report {
            Some(Ok(path)) => writeln!(f, "  report: {}", path.display())?,
            Some(Err(e)) => writeln!(f, "  {e}")?,
            None => {}
        }
        match &self.outputs.timeline {
            Some(Ok(records)) => writeln!(f, "  timeline: {records} records (victim-seconds) written")?,
            Some(Err(e)) => writeln!(f, "  {e}")?,
            None => {}
        }
        if let Some((published, dropped, failed)) = self.outputs.summaries {
            writeln!(
                f,
                "  summaries: {published} seconds handed to the NATS client, {dropped} dropped (queue full), {failed} refused"
            )?;
        }
        for e in self.errors {
            writeln!(f, "  input error: {e}")?;
        }
        Ok(())
    }
}

/// A one-line progress bar on stderr, redrawn at most five times a second.
pub struct Progress {
    started: Instant,
    last_draw: Instant,
    drawn: bool,
}

impl Progress {
    pub fn new() -> Progress {
        let now = Instant::now();
        Progress { started: now, last_draw: now, drawn: false }
    }

    /// Redraws if due; `done`/`total` are file bytes.
    pub fn update(&mut self, name: &str, done: u64, total: Option<u64>, frames: u64) {
        let now = Instant::now();
        if now.duration_since(self.last_draw) < Duration::from_millis(200) {
            return;
        }
        self.last_draw = now;
        self.drawn = true;
        let rate = frames as f64 / now.duration_since(self.started).as_secs_f64().max(1e-9) / 1e6;
        let bar = match total.filter(|t| *t > 0) {
            Some(t) => {
                let share = (done as f64 / t as f64).min(1.0);
                let filled = (share * 30.0) as usize;
                format!("[{}{}] {:>3.0}%", "#".repeat(filled), ".".repeat(30 - filled), share * 100.0)
            }
            None => format!("{} MB", done / 1_000_000),
        };
        let mut err = std::io::stderr().lock();
        let _ = write!(err, "\r{bar} {} packets, {rate:.1} Mpps  {name}\x1b[K", fmt_int(frames as f64));
        let _ = err.flush();
    }

    /// Clears the bar before the summary is printed.
    pub fn clear(&mut self) {
        if self.drawn {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[K");
        }
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::TrafficClass;
    use crate::decode::{Fragment, L4State, PacketRecord};

    /// The table holds the definition for every protocol, L4 state, flag byte and fragment
    /// position (and both IP versions, and ICMP types that mean something to the analyzer),
    /// so the shape leaves out nothing the class depends on.
    #[test]
    fn class_table_agrees_with_the_definition() {
        for protocol in 0..=255u8 {
            for l4 in [L4State::Present, L4State::Absent, L4State::Truncated, L4State::Summarized] {
                for fragment in [Fragment::Whole, Fragment::First, Fragment::Later] {
                    for tcp_flags in 0..=255u8 {
                        for (ip_version, icmp_type) in [(4, 0), (4, 8), (6, 128), (6, 129)] {
                            let r = PacketRecord {
                                protocol,
                                l4,
                                fragment,
                                tcp_flags,
                                dst: match ip_version {
                                    4 => crate::decode::IpKey::from_v4([192, 0, 2, 1]),
                                    _ => crate::decode::IpKey::from_v6([
                                        0x20, 1, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1,
                                    ]),
                                },
                                icmp_type,
                                ..Default::default()
                            };
                            assert_eq!(TrafficClass::of(&r), TrafficClass::classify(&r), "{r:?}");
                        }
                    }
                }
            }
        }
    }
}
