//! The replay pipeline: capture files → decode → analyze → output, in one thread.

use crate::analyze::{Analyzer, AnalyzerStats, AttackEvent, EndReason};
use crate::capture::{CaptureError, FileSource};
use crate::decode::{decode, Decoded, PacketRecord};
use crate::output::summary::{AttackLine, Progress, TrafficStats};
use std::io;
use std::time::{Duration, Instant};

/// Frames between progress checks (a clock read per frame would cost more than the frame).
const PROGRESS_EVERY: u64 = 1 << 16;

/// What a replay saw.
pub struct ReplayOutcome {
    pub traffic: TrafficStats,
    /// Files that could not be read to the end, in order; everything before each error was analyzed.
    pub errors: Vec<CaptureError>,
    pub attacks: Vec<AttackLine>,
    pub analyzer: AnalyzerStats,
    pub elapsed: Duration,
}

/// Replays `files` in order as one stream through `analyzer`, handing every event to `emit`.
/// A file that fails is reported and skipped from that point on; the next file still plays.
/// Only an error from `emit` (the alert output) stops the replay.
pub fn replay(
    files: &[String],
    analyzer: &mut Analyzer,
    emit: &mut dyn FnMut(&AttackEvent) -> io::Result<()>,
    mut progress: Option<&mut Progress>,
) -> io::Result<ReplayOutcome> {
    let started = Instant::now();
    let mut traffic = TrafficStats::default();
    let mut errors = Vec::new();
    let mut attacks = Vec::new();
    let mut events = Vec::new();
    let mut record = PacketRecord::default();
    let mut deliver = |events: &mut Vec<AttackEvent>, attacks: &mut Vec<AttackLine>| -> io::Result<()> {
        for e in events.drain(..) {
            attacks.extend(AttackLine::from_end(&e));
            emit(&e)?;
        }
        Ok(())
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
            traffic.frames += 1;
            traffic.wire_bytes += frame.wire_len.max(frame.data.len() as u32) as u64;
            match decode(&frame, &mut record) {
                Ok(Decoded::Ip) => {
                    traffic.ip_packets += 1;
                    analyzer.process(&record, &mut events);
                    if !events.is_empty() {
                        deliver(&mut events, &mut attacks)?;
                    }
                }
                Ok(Decoded::NonIp) => traffic.non_ip += 1,
                Err(issue) => traffic.issues[issue as usize] += 1,
            }
            if traffic.frames % PROGRESS_EVERY == 0 {
                if let Some(p) = progress.as_deref_mut() {
                    let (done, total) = source.progress();
                    p.update(path, done, total, traffic.frames);
                }
            }
        }
    }
    analyzer.finish(EndReason::EndOfInput, &mut events);
    deliver(&mut events, &mut attacks)?;
    if let Some(p) = progress {
        p.clear();
    }
    Ok(ReplayOutcome { traffic, errors, attacks, analyzer: analyzer.stats, elapsed: started.elapsed() })
}
