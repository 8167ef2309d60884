//! The replay pipeline: capture files → decode → analyze → output, in one thread.

use crate::analyze::{Analysis, AnalyzerStats, AttackEvent, EndReason, EventKind};
use crate::capture::{CaptureError, FileSource, Frame};
use crate::decode::{decode, Decoded, PacketRecord};
use crate::output::metrics::latency_histogram;
use crate::output::summary::{AttackLine, Progress, TrafficStats};
use crate::output::Outputs;
use hdrhistogram::Histogram;
use std::io;
use std::time::{Duration, Instant};

/// Frames between progress checks.
const PROGRESS_EVERY: u64 = 1 << 16;
/// Frames per latency sample: the unit the live pipeline hands from thread to thread.
pub const BATCH: u64 = 512;
/// Frames between blocklist expiry checks.
const ADVANCE_EVERY: u64 = 4096;

/// Where the replay hands frames and events: [`Outputs`], or a closure that collects events.
pub trait Stage {
    fn wants_frames(&self) -> bool {
        false
    }
    fn frame(&mut self, _frame: &Frame, _record: &PacketRecord) {}
    /// Err stops the replay (an alert output that cannot write).
    fn deliver(&mut self, events: &mut Vec<AttackEvent>) -> Result<(), String>;
    fn advance(&mut self, _now_ns: i64) {}
    /// After each batch: a snapshot for the metrics, and the batch's processing time.
    fn publish(&mut self, _traffic: &TrafficStats, _analysis: &dyn Analysis, _batch_ns: u64) {}
}

impl Stage for Outputs {
    fn wants_frames(&self) -> bool {
        Outputs::wants_frames(self)
    }
    #[inline]
    fn frame(&mut self, frame: &Frame, record: &PacketRecord) {
        Outputs::frame(self, frame, record)
    }
    fn deliver(&mut self, events: &mut Vec<AttackEvent>) -> Result<(), String> {
        Outputs::deliver(self, events)
    }
    fn advance(&mut self, now_ns: i64) {
        Outputs::advance(self, now_ns)
    }
    fn publish(&mut self, traffic: &TrafficStats, analysis: &dyn Analysis, batch_ns: u64) {
        self.metrics.set_traffic(traffic);
        self.metrics.set_analyzer(&analysis.stats(), analysis.active_attacks());
        if batch_ns > 0 {
            self.metrics.record_batch_latency(batch_ns);
        }
    }
}

impl<F: FnMut(&AttackEvent) -> io::Result<()>> Stage for F {
    fn deliver(&mut self, events: &mut Vec<AttackEvent>) -> Result<(), String> {
        for e in events.drain(..) {
            self(&e).map_err(|err| err.to_string())?;
        }
        Ok(())
    }
}

/// What a replay saw.
pub struct ReplayOutcome {
    pub traffic: TrafficStats,
    /// Files that could not be read to the end, in order; everything before each error was analyzed.
    pub errors: Vec<CaptureError>,
    pub attacks: Vec<AttackLine>,
    pub analyzer: AnalyzerStats,
    pub elapsed: Duration,
    /// Wall time to read, decode, analyze and output each batch of [`BATCH`] frames, ns.
    pub batch_latency: Histogram<u64>,
    /// Packet time from each flood's first packet to its `attack_start`, ns.
    pub detection_delay: Histogram<u64>,
}

/// Replays `files` in order as one stream through `analyzer` (one [`crate::analyze::Analyzer`]
/// or its shards) into `stage`.
/// A file that fails is reported and skipped from that point on; the next file still plays.
/// Only an error from the stage (the alert output) stops the replay.
pub fn replay(
    files: &[String],
    analyzer: &mut dyn Analysis,
    stage: &mut dyn Stage,
    mut progress: Option<&mut Progress>,
) -> Result<ReplayOutcome, String> {
    let started = Instant::now();
    let mut traffic = TrafficStats::default();
    let mut errors = Vec::new();
    let mut attacks = Vec::new();
    let mut events = Vec::new();
    let mut record = PacketRecord::default();
    let mut batch_latency = latency_histogram();
    let mut detection_delay = latency_histogram();
    let mut batch_started = Instant::now();
    let wants_frames = stage.wants_frames();
    let mut deliver = |events: &mut Vec<AttackEvent>, stage: &mut dyn Stage| -> Result<(), String> {
        for e in events.iter() {
            attacks.extend(AttackLine::from_end(e));
            if e.event == EventKind::Start {
                let _ = detection_delay.record(e.detection_delay_ns().max(1));
            }
        }
        stage.deliver(events)
    };
    for path in files {
        let mut source = match FileSource::open(path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        loop {
            let frame = match source.next_frame() {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(e) => {
                    errors.push(e);
                    break;
                }
            };
            let ts_ns = frame.ts_ns;
            traffic.frames += 1;
            traffic.wire_bytes += frame.wire_len.max(frame.data.len() as u32) as u64;
            match decode(&frame, &mut record) {
                Ok(Decoded::Ip) => {
                    traffic.count_ip(&record);
                    if wants_frames {
                        stage.frame(&frame, &record);
                    }
                    analyzer.process(&record, &mut events);
                    if !events.is_empty() {
                        deliver(&mut events, stage)?;
                    }
                }
                Ok(Decoded::NonIp) => traffic.non_ip += 1,
                Err(issue) => traffic.issues[issue as usize] += 1,
            }
            if traffic.frames % BATCH == 0 {
                let now = Instant::now();
                let ns = now.duration_since(batch_started).as_nanos().max(1) as u64;
                let _ = batch_latency.record(ns);
                batch_started = now;
                // Every batch, so a scrape during a replay from a pipe sees where it stands.
                stage.publish(&traffic, &*analyzer, ns);
                if traffic.frames % ADVANCE_EVERY == 0 {
                    stage.advance(ts_ns);
                }
                if traffic.frames % PROGRESS_EVERY == 0 {
                    if let Some(p) = progress.as_deref_mut() {
                        let (done, total) = source.progress();
                        p.update(path, done, total, traffic.frames);
                    }
                }
            }
        }
    }
    analyzer.finish(EndReason::EndOfInput, &mut events);
    deliver(&mut events, stage)?;
    stage.publish(&traffic, &*analyzer, 0);
    if let Some(p) = progress {
        p.clear();
    }
    Ok(ReplayOutcome {
        traffic,
        errors,
        attacks,
        analyzer: analyzer.stats(),
        elapsed: started.elapsed(),
        batch_latency,
        detection_delay,
    })
}
