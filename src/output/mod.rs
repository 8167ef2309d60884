//! Where decisions go: alert sinks, blocklists, evidence captures, the action hook, metrics,
//! and the replay summary.
//!
//! [`Outputs`] is the pipeline's last stage. It runs in the analyzer's thread and never waits
//! on the network: alert sinks and the hook have their own threads and bounded queues, the
//! metrics server its own runtime. What it does in-thread is local and bounded: copying
//! frames into the evidence ring, writing evidence, rewriting the blocklist file.

pub mod alert;
pub mod blocklist;
pub mod evidence;
pub mod hook;
pub mod metrics;
pub mod mitigation;
pub mod nats;
pub mod notify;
pub mod pcap_writer;
pub mod report;
// unsafe: a non-blocking peek (recv) at a stream's state.
#[allow(unsafe_code)]
pub mod sink;
pub mod summary;
// unsafe: gethostname.
#[allow(unsafe_code)]
pub mod syslog;
pub mod time;
pub mod timeline;

use crate::analyze::summary::SecondSummary;
use crate::analyze::{AttackEvent, EventKind};
use crate::capture::Frame;
use crate::decode::PacketRecord;
use crate::decode::Prefix;
use alert::Alert;
use blocklist::{BlocklistFormat, BlocklistWriter};
use evidence::{EvidenceOptions, EvidenceRecorder};
use hook::{ActionHook, HookOptions};
use metrics::{Metrics, MetricsServer};
use mitigation::{Mitigation, MitigationOptions, MitigationStats};
use nats::{PublishOptions, SummaryPublisher};
use report::{ReportCollector, ReportOptions};
use sink::{AlertSinks, SinkReport, SinkSpec};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use timeline::TimelineWriter;

/// Everything the outputs of a run are configured with.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputOptions {
    pub sinks: Vec<SinkSpec>,
    /// How long alert sinks keep trying to deliver at exit.
    pub drain: Duration,
    pub blocklist: Option<BlocklistOptions>,
    pub evidence: Option<EvidenceOptions>,
    pub metrics: Option<SocketAddr>,
    pub hook: Option<HookOptions>,
    /// A sensor's NATS server and name, to publish its seconds' summaries.
    pub publish: Option<PublishOptions>,
    /// Where each watched victim's seconds go, for the report (see [`timeline`]).
    pub timeline: Option<PathBuf>,
    /// The incident report page written at the end (replay).
    pub report: Option<ReportOptions>,
    /// BGP routes per attack through ExaBGP (`[mitigation]`, `--exabgp`).
    pub mitigation: Option<MitigationOptions>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlocklistOptions {
    pub path: PathBuf,
    pub format: BlocklistFormat,
    pub ttl_s: u64,
    /// Sources never listed (the detection allowlist).
    pub allow: Vec<Prefix>,
}

/// The last stage of the pipeline.
pub struct Outputs {
    sinks: AlertSinks,
    drain: Duration,
    blocklist: Option<BlocklistWriter>,
    evidence: Option<EvidenceRecorder>,
    hook: Option<ActionHook>,
    pub metrics: Arc<Metrics>,
    server: Option<MetricsServer>,
    publisher: Option<SummaryPublisher>,
    timeline: Option<TimelineWriter>,
    report: Option<ReportCollector>,
    mitigation: Option<Mitigation>,
}

/// What the outputs did, for the summary.
pub struct OutputReport {
    pub sinks: Vec<SinkReport>,
    pub blocklist_entries: Option<usize>,
    pub evidence_files: u64,
    /// Summaries published, dropped (queue full) and failed, when publishing.
    pub summaries: Option<(u64, u64, u64)>,
    /// Timeline records written, or why the timeline stopped.
    pub timeline: Option<Result<u64, String>>,
    /// The report page written, or why not.
    pub report: Option<Result<PathBuf, String>>,
    /// Routes announced, withdrawn and refused, when mitigating.
    pub mitigation: Option<MitigationStats>,
}

impl Outputs {
    /// Opens everything, failing early on a bad path or a busy port.
    pub fn open(opts: &OutputOptions) -> Result<Outputs, String> {
        let metrics = Arc::new(Metrics::default());
        let server = match opts.metrics {
            Some(addr) => {
                let s = MetricsServer::start(addr, metrics.clone())?;
                tracing::info!("metrics on http://{}/metrics", s.addr);
                Some(s)
            }
            None => None,
        };
        let blocklist = match &opts.blocklist {
            Some(b) => {
                Some(BlocklistWriter::create(&b.path, b.format, b.ttl_s, b.allow.clone()).map_err(|e| e.to_string())?)
            }
            None => None,
        };
        let evidence = opts.evidence.clone().map(EvidenceRecorder::open).transpose()?;
        let hook = opts.hook.clone().map(|h| ActionHook::start(h, metrics.clone())).transpose()?;
        let sinks = AlertSinks::open(&opts.sinks)?;
        metrics.set_sinks(sinks.stats());
        let publisher = opts.publish.as_ref().map(|p| SummaryPublisher::start(p, opts.drain)).transpose()?;
        let timeline = opts
            .timeline
            .as_deref()
            .map(|p| TimelineWriter::create(p).map_err(|e| format!("timeline {}: {e}", p.display())))
            .transpose()?;
        let report = opts.report.clone().map(ReportCollector::new);
        let mitigation = opts.mitigation.clone().map(|m| Mitigation::open(m, opts.drain)).transpose()?;
        if let Some(m) = &mitigation {
            metrics.set_mitigation(m.counters());
        }
        Ok(Outputs {
            sinks,
            drain: opts.drain,
            blocklist,
            evidence,
            hook,
            metrics,
            server,
            publisher,
            timeline,
            report,
            mitigation,
        })
    }

    /// The metrics endpoint's address, when serving.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(|s| s.addr)
    }

    /// Whether [`Outputs::frame`] needs the frames (evidence is on).
    pub fn wants_frames(&self) -> bool {
        self.evidence.is_some()
    }

    /// Every decoded IP frame, before the analyzer sees it.
    #[inline]
    pub fn frame(&mut self, frame: &Frame, record: &PacketRecord) {
        if let Some(e) = self.evidence.as_mut() {
            e.frame(frame, record);
        }
    }

    /// Hands the analyzer's events on, in order: evidence (which completes `attack_end`),
    /// blocklist, then the sinks and the hook. Err only when a lossless sink failed for good.
    pub fn deliver(&mut self, events: &mut Vec<AttackEvent>) -> Result<(), String> {
        for event in events.drain(..) {
            self.metrics.count_alert(event.event);
            if event.event == EventKind::Start {
                self.metrics.record_detection_delay(event.detection_delay_ns());
            }
            let mut alert = Alert::new(event);
            if let Some(e) = self.evidence.as_mut() {
                alert.evidence = e.event(&alert.event);
                self.metrics.evidence_files.store(e.files_written, Ordering::Relaxed);
            }
            if let Some(b) = self.blocklist.as_mut() {
                b.record(&alert.event);
            }
            if let Some(m) = self.mitigation.as_mut() {
                m.event(&alert.event);
            }
            if let Some(r) = self.report.as_mut() {
                match alert::native_value(&alert) {
                    Ok(native) => r.alert(native),
                    Err(e) => tracing::error!("report: alert {} left out: {e}", alert.event.attack_id),
                }
            }
            let alert = Arc::new(alert);
            if let Some(h) = &self.hook {
                h.send(&alert);
            }
            self.sinks.send(&alert)?;
        }
        self.flush_blocklist();
        Ok(())
    }

    /// The analyzer's summaries of the seconds it completed, for the timeline and the
    /// publisher (if any).
    pub fn summaries(&mut self, summaries: Vec<SecondSummary>) {
        if let Some(t) = self.timeline.as_mut() {
            summaries.iter().for_each(|s| t.write(s));
        }
        if let Some(r) = self.report.as_mut() {
            summaries.iter().for_each(|s| r.second(s));
        }
        if let Some(p) = self.publisher.as_ref() {
            summaries.into_iter().for_each(|s| p.send(s));
        }
    }

    /// Packet time moved on to `now_ns`: blocklist entries and held routes may expire.
    #[inline]
    pub fn advance(&mut self, now_ns: i64) {
        if let Some(m) = self.mitigation.as_mut() {
            m.advance(now_ns);
        }
        if let Some(b) = self.blocklist.as_mut() {
            b.advance(now_ns);
            self.flush_blocklist();
        }
    }

    fn flush_blocklist(&mut self) {
        if let Some(b) = self.blocklist.as_mut() {
            if let Err(e) = b.flush() {
                tracing::error!("{e}");
            }
            self.metrics.blocklist_entries.store(b.len() as u64, Ordering::Relaxed);
        }
    }

    /// SIGHUP: files reopened, sockets reconnected.
    pub fn reopen(&mut self) {
        self.sinks.reopen();
    }

    /// Waits for the sinks to deliver what they hold (network ones at most the drain time).
    pub fn finish(mut self) -> OutputReport {
        if let Some(e) = self.evidence.as_mut() {
            e.finish();
        }
        if let Some(h) = self.hook.take() {
            h.finish();
        }
        let blocklist_entries = self.blocklist.as_ref().map(|b| b.len());
        let evidence_files = self.evidence.as_ref().map_or(0, |e| e.files_written);
        let summaries = self.publisher.take().map(|p| {
            let stats = p.stats.clone();
            p.finish();
            let count = |n: &std::sync::atomic::AtomicU64| n.load(Ordering::Relaxed);
            (count(&stats.published), count(&stats.dropped), count(&stats.failed))
        });
        let timeline = self.timeline.take().map(TimelineWriter::finish);
        let report = self.report.take().map(ReportCollector::finish);
        let mitigation = self.mitigation.take().map(Mitigation::finish);
        let sinks = self.sinks.finish(self.drain);
        OutputReport { sinks, blocklist_entries, evidence_files, summaries, timeline, report, mitigation }
    }
}
