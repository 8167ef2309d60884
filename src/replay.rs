//! The replay pipeline: capture files → decode (a capture thread) → analyze → output (the
//! calling thread).

use crate::analyze::summary::SecondSummary;
use crate::analyze::{Analysis, AnalyzerStats, AttackEvent, EndReason, EventKind};
use crate::capture::{CaptureError, FileSource, Frame};
use crate::decode::PacketRecord;
use crate::output::metrics::{latency_histogram, CaptureCounts};
use crate::output::summary::{AttackLine, Progress, TrafficStats};
use crate::output::Outputs;
use crate::pipeline::{batch_channel, Batch, BatchSender, Datagrams, TelemetryReader, BATCH};
use hdrhistogram::Histogram;
use std::io;
use std::time::{Duration, Instant};

/// Frames between progress updates.
const PROGRESS_EVERY: u64 = 1 << 16;
/// Records per hand-off from the capture thread: several latency batches at once, so the
/// threads meet less often.
const HANDOFF: usize = 8 * BATCH;
/// Hand-offs on their way from the capture thread to the analyzer.
const HANDOFFS_IN_FLIGHT: usize = 4;

/// Where the replay hands frames and events: [`Outputs`], or a closure that collects events.
pub trait Stage {
    fn wants_frames(&self) -> bool {
        false
    }
    fn frame(&mut self, _frame: &Frame, _record: &PacketRecord) {}
    /// Err stops the replay (an alert output that cannot write).
    fn deliver(&mut self, events: &mut Vec<AttackEvent>) -> Result<(), String>;
    fn advance(&mut self, _now_ns: i64) {}
    /// A snapshot for the metrics, after each hand-off from the capture thread.
    fn publish(&mut self, _traffic: &TrafficStats, _analysis: &dyn Analysis) {}
    /// The time a batch of [`BATCH`] packets took to analyze and output.
    fn batch_latency(&mut self, _ns: u64) {}
    /// The analyzer's summaries of the seconds it completed (when it is a sensor's).
    fn summaries(&mut self, _summaries: Vec<SecondSummary>) {}
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
    fn publish(&mut self, traffic: &TrafficStats, analysis: &dyn Analysis) {
        // The analyzer first: a scrape that sees the frames counted sees their analysis.
        self.metrics.set_analyzer(&analysis.stats(), analysis.active_attacks());
        self.metrics.set_capture(0, CaptureCounts { traffic: *traffic, kernel_dropped: 0 });
    }
    fn batch_latency(&mut self, ns: u64) {
        self.metrics.record_batch_latency(ns);
    }
    fn summaries(&mut self, summaries: Vec<SecondSummary>) {
        Outputs::summaries(self, summaries)
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
    /// Wall time to analyze and output each batch of [`BATCH`] packets, ns.
    pub batch_latency: Histogram<u64>,
    /// Packet time from each flood's first packet to its `attack_start`, ns.
    pub detection_delay: Histogram<u64>,
}

/// What the capture thread hands over: a batch, and where the reading stood after it.
struct ReplayBatch {
    packets: Batch,
    /// Counters of everything read so far (for the metrics).
    traffic: TrafficStats,
    file: usize,
    done: u64,
    total: Option<u64>,
}

impl ReplayBatch {
    fn new() -> ReplayBatch {
        ReplayBatch {
            packets: Batch::with_capacity(HANDOFF),
            traffic: TrafficStats::default(),
            file: 0,
            done: 0,
            total: None,
        }
    }
}

/// Replays `files` in order as one stream through `analyzer` (one [`crate::analyze::Analyzer`]
/// or its shards) into `stage`, reading telemetry datagrams as `datagrams` says.
///
/// A capture thread reads and decodes the files into batches; the calling thread analyzes
/// them and runs the stage, so reading and analysis overlap.
/// A file that fails is reported and skipped from that point on; the next file still plays.
/// Only an error from the stage (the alert output) stops the replay.
pub fn replay(
    files: &[String],
    datagrams: Datagrams,
    analyzer: &mut dyn Analysis,
    stage: &mut dyn Stage,
    mut progress: Option<&mut Progress>,
) -> Result<ReplayOutcome, String> {
    let started = Instant::now();
    let mut attacks = Vec::new();
    let mut events = Vec::new();
    let mut batch_latency = latency_histogram();
    let mut detection_delay = latency_histogram();
    let keep_frames = stage.wants_frames();
    let mut deliver = |events: &mut Vec<AttackEvent>, stage: &mut dyn Stage| -> Result<(), String> {
        for e in events.iter() {
            attacks.extend(AttackLine::from_end(e));
            if e.event == EventKind::Start {
                let _ = detection_delay.record(e.detection_delay_ns().max(1));
            }
        }
        stage.deliver(events)
    };
    let (batches_tx, batches_rx) = batch_channel(HANDOFFS_IN_FLIGHT, ReplayBatch::new);
    let owned_files = files.to_vec();
    let telemetry = match datagrams {
        Datagrams::Packets => None,
        Datagrams::Telemetry(settings) => Some(TelemetryReader::new(&settings)),
    };
    let reader = std::thread::Builder::new()
        .name("capture".into())
        .spawn(move || read_files(&owned_files, batches_tx, keep_frames, telemetry))
        .map_err(|e| format!("cannot start the capture thread: {e}"))?;
    let mut last_file = usize::MAX;
    let mut last_progress = 0;
    // Packets and processing time toward the next latency sample, across hand-offs (not
    // counting the waits between them).
    let (mut sample_packets, mut sample_ns) = (0, 0);
    let analyzed = (|| -> Result<(), String> {
        while let Some(mut batch) = batches_rx.recv() {
            let mut since = Instant::now();
            for (record, frame, origin) in batch.packets.packets() {
                if let Some(frame) = frame {
                    stage.frame(&frame, record);
                }
                if let Some(origin) = origin {
                    analyzer.set_origin(origin);
                }
                analyzer.process(record, &mut events);
                if !events.is_empty() {
                    deliver(&mut events, stage)?;
                }
                sample_packets += 1;
                if sample_packets == BATCH {
                    let now = Instant::now();
                    let ns = (sample_ns + now.duration_since(since).as_nanos() as u64).max(1);
                    let _ = batch_latency.record(ns);
                    stage.batch_latency(ns);
                    (sample_packets, sample_ns, since) = (0, 0, now);
                }
            }
            sample_ns += since.elapsed().as_nanos() as u64;
            if let Some(ts_ns) = batch.packets.last_ts_ns() {
                stage.advance(ts_ns);
            }
            // Every hand-off, so a scrape during a replay from a pipe sees where it stands.
            stage.publish(&batch.traffic, &*analyzer);
            stage.summaries(analyzer.take_summaries());
            let frames = batch.traffic.frames;
            if let Some(p) = progress.as_deref_mut() {
                if let Some(name) = files.get(batch.file) {
                    if batch.file != last_file || frames - last_progress >= PROGRESS_EVERY {
                        (last_file, last_progress) = (batch.file, frames);
                        p.update(name, batch.done, batch.total, frames);
                    }
                }
            }
            batch.packets.clear();
            batches_rx.give_back(batch);
        }
        Ok(())
    })();
    // When the stage failed, the capture thread is left to stop at its next hand-off: it
    // may be waiting on a pipe, and the error must not wait with it.
    drop(batches_rx);
    analyzed?;
    let (traffic, errors) = reader.join().map_err(|_| "the capture thread failed".to_string())?;
    analyzer.finish(EndReason::EndOfInput, &mut events);
    deliver(&mut events, stage)?;
    stage.publish(&traffic, &*analyzer);
    stage.summaries(analyzer.take_summaries());
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

/// The capture thread: reads `files` in order into batches, their telemetry datagrams through
/// `telemetry` when given. Returns the counters of everything read and the files' errors.
fn read_files(
    files: &[String],
    batches: BatchSender<ReplayBatch>,
    keep_frames: bool,
    mut telemetry: Option<TelemetryReader>,
) -> (TrafficStats, Vec<CaptureError>) {
    let mut traffic = TrafficStats::default();
    let mut errors = Vec::new();
    let Some(mut batch) = batches.empty() else { return (traffic, errors) };
    // Frames read by the last hand-off.
    let mut handed = 0;
    for (file, path) in files.iter().enumerate() {
        let mut source = match FileSource::open(path) {
            Ok(s) => s,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        loop {
            // What is read goes on before the reader waits for input.
            let wait = source.next_would_wait() && !batch.packets.is_empty();
            let more = wait || {
                let max = HANDOFF.saturating_sub((traffic.frames - handed) as usize);
                let fill = |frame: &Frame| {
                    match telemetry.as_mut() {
                        Some(t) => batch.packets.add_reading(frame, &mut traffic, keep_frames, t),
                        None => batch.packets.add(frame, &mut traffic, keep_frames),
                    }
                    !batch.packets.is_full()
                };
                source.read_frames(max, fill).unwrap_or_else(|e| {
                    errors.push(e);
                    false
                })
            };
            // Also at the end of each file (the next may be a pipe), and every HANDOFF
            // frames however few are IP, so the counters and the progress move.
            if wait || !more || batch.packets.is_full() || traffic.frames - handed >= HANDOFF as u64 {
                (batch.traffic, batch.file) = (traffic, file);
                (batch.done, batch.total) = source.progress();
                handed = traffic.frames;
                match batches.swap(batch) {
                    Some(next) => batch = next,
                    None => return (traffic, errors),
                }
            }
            if !more {
                break;
            }
        }
    }
    // Every file's end was handed over; files that could not be opened read nothing. The
    // flows still being spread go after them, in their ticks.
    if let Some(t) = telemetry.as_mut() {
        let mut handing = Some(batch);
        let so_far = traffic;
        t.finish(&mut traffic, &mut |r, origin| {
            if let Some(b) = handing.as_mut() {
                b.packets.push(r, origin);
                if b.packets.is_full() {
                    (b.traffic, b.file) = (so_far, files.len());
                    handing = handing.take().and_then(|b| batches.swap(b));
                }
            }
        });
        if let Some(mut b) = handing.filter(|b| !b.packets.is_empty()) {
            (b.traffic, b.file) = (traffic, files.len());
            let _ = batches.hand_over(b);
        }
    }
    (traffic, errors)
}
