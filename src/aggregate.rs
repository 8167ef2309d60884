//! `floodwatch aggregate`: the sensors' summaries of their seconds (over NATS, see
//! [`crate::output::nats`]) merged second by second into one analyzer, which raises the
//! attacks no single sensor sees through the usual outputs.
//!
//! A second closes once every sensor known reported it (and no new sensor appeared within
//! the grace delay), or once the grace delay passed since its first summary: then it is
//! partial, counted and logged, and what came is judged. Seconds close in order; a summary
//! of a second already closed is late, dropped and counted. A sensor not heard for
//! [`SENSOR_TIMEOUT`] is no longer waited for. With nothing to close, the analyzer's clock
//! moves on with the wall clock, so attacks end when their sensors go quiet.

use crate::analyze::summary::SecondSummary;
use crate::analyze::{Analyzer, DetectionSettings, EndReason};
use crate::output::nats::{connect, SUMMARY_SUBJECT};
use crate::output::{OutputOptions, Outputs};
use futures_util::StreamExt;
use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

/// A sensor not heard for this long is no longer waited for.
pub const SENSOR_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the loop looks at the clock with no summary coming.
const TICK: Duration = Duration::from_millis(100);

pub struct AggregateOptions {
    /// `nats://HOST:PORT`.
    pub url: String,
    pub detection: DetectionSettings,
    pub outputs: OutputOptions,
    /// How long a second waits for the sensors that have not reported it.
    pub grace: Duration,
}

/// What the aggregator did, for its last log line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AggregateStats {
    pub summaries: u64,
    /// Not summaries (undecodable, another version) or hashed with another key.
    pub refused: u64,
    /// For a second already closed.
    pub late: u64,
    pub seconds: u64,
    /// Closed without every known sensor's summary.
    pub partial_seconds: u64,
}

/// The seconds waiting for their sensors.
pub struct Seconds {
    pending: BTreeMap<i64, Pending>,
    /// Each sensor known, and when it was last heard.
    sensors: HashMap<String, Instant>,
    /// When a sensor last appeared: until the grace delay passed, a second waits for more.
    new_sensor_at: Option<Instant>,
    closed_through: Option<i64>,
    grace: Duration,
    pub stats: AggregateStats,
}

struct Pending {
    first_at: Instant,
    summaries: Vec<SecondSummary>,
}

/// A second ready to be counted: its summaries, and whether a known sensor's is missing.
pub struct ClosedSecond {
    pub second: i64,
    pub summaries: Vec<SecondSummary>,
    pub partial: bool,
}

impl Seconds {
    pub fn new(grace: Duration) -> Seconds {
        Seconds {
            pending: BTreeMap::new(),
            sensors: HashMap::new(),
            new_sensor_at: None,
            closed_through: None,
            grace,
            stats: AggregateStats::default(),
        }
    }

    /// Takes one sensor's summary of one second (a repeat replaces its earlier one).
    pub fn add(&mut self, summary: SecondSummary, now: Instant) {
        self.stats.summaries += 1;
        if self.sensors.insert(summary.sensor.clone(), now).is_none() {
            tracing::info!(sensor = summary.sensor, "a new sensor reports");
            self.new_sensor_at = Some(now);
        }
        if self.closed_through.is_some_and(|c| summary.second <= c) {
            self.stats.late += 1;
            return;
        }
        let pending =
            self.pending.entry(summary.second).or_insert_with(|| Pending { first_at: now, summaries: Vec::new() });
        pending.summaries.retain(|s| s.sensor != summary.sensor);
        pending.summaries.push(summary);
    }

    /// The seconds that may close at `now`, oldest first.
    pub fn ready(&mut self, now: Instant) -> Vec<ClosedSecond> {
        self.sensors.retain(|_, heard| now.duration_since(*heard) < SENSOR_TIMEOUT);
        let settled = self.new_sensor_at.is_none_or(|at| now.duration_since(at) >= self.grace);
        let mut closed = Vec::new();
        while let Some(entry) = self.pending.first_entry() {
            let p = entry.get();
            let complete = self.sensors.keys().all(|name| p.summaries.iter().any(|s| &s.sensor == name));
            if !(complete && settled) && now.duration_since(p.first_at) < self.grace {
                break;
            }
            let (second, p) = entry.remove_entry();
            self.closed_through = Some(second);
            self.stats.seconds += 1;
            self.stats.partial_seconds += u64::from(!complete);
            closed.push(ClosedSecond { second, summaries: p.summaries, partial: !complete });
        }
        closed
    }

    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }
}

/// Subscribes, merges and analyzes until SIGINT or SIGTERM; Err when it cannot start or an
/// output failed for good.
pub fn run(opts: AggregateOptions) -> Result<AggregateStats, String> {
    let mut outputs = Outputs::open(&opts.outputs)?;
    let mut analyzer = Analyzer::new(opts.detection.clone());
    let hash_key = analyzer.summary_hash_key();
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| format!("aggregate: {e}"))?;
    let mut seconds = Seconds::new(opts.grace);
    let result = runtime.block_on(async {
        let client = connect(&opts.url, "floodwatch aggregator".into()).await?;
        let subject = format!("{SUMMARY_SUBJECT}.*");
        let mut summaries = client.subscribe(subject.clone()).await.map_err(|e| format!("NATS {}: {e}", opts.url))?;
        tracing::info!(url = opts.url, subject, grace_ms = opts.grace.as_millis() as u64, "aggregating");
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| format!("SIGTERM: {e}"))?;
        let mut tick = tokio::time::interval(TICK);
        let mut events = Vec::new();
        let mut foreign_keys: Vec<String> = Vec::new();
        // The end of the last second counted (packet time), and when it was counted.
        let mut counted: Option<(i64, Instant)> = None;
        loop {
            tokio::select! {
                message = summaries.next() => {
                    let Some(message) = message else { break };
                    match SecondSummary::decode(&message.payload) {
                        Ok(s) if s.hash_key == hash_key => seconds.add(s, Instant::now()),
                        Ok(s) => {
                            seconds.stats.refused += 1;
                            if !foreign_keys.contains(&s.sensor) {
                                tracing::warn!(sensor = s.sensor, "summary refused: hashed with another key (give every sensor and the aggregator the same detection.hash_seed)");
                                foreign_keys.push(s.sensor);
                            }
                        }
                        Err(e) => {
                            seconds.stats.refused += 1;
                            tracing::debug!(subject = message.subject.as_str(), "{e}");
                        }
                    }
                }
                _ = tick.tick() => {}
                _ = tokio::signal::ctrl_c() => break,
                _ = term.recv() => break,
            }
            let now = Instant::now();
            for closed in seconds.ready(now) {
                if closed.partial {
                    let reported: Vec<&str> = closed.summaries.iter().map(|s| s.sensor.as_str()).collect();
                    tracing::warn!(second = closed.second, ?reported, "second closed partial: a known sensor did not report it in time");
                }
                analyzer.count_sensors_second(closed.second, &closed.summaries, &mut events);
                let end = (closed.second + 1).saturating_mul(1_000_000_000);
                counted = Some((end, now));
                outputs.deliver(&mut events)?;
                outputs.advance(end);
            }
            // Sensors quiet: packet time goes on with the wall clock, from the last second counted.
            if let Some((end, at)) = counted.filter(|(_, at)| seconds.is_idle() && now.duration_since(*at) > opts.grace) {
                let now_ns = end.saturating_add((now.duration_since(at) - opts.grace).as_nanos() as i64);
                analyzer.advance_to(now_ns, &mut events);
                outputs.deliver(&mut events)?;
                outputs.advance(now_ns);
            }
        }
        let mut events = Vec::new();
        analyzer.finish(EndReason::Shutdown, &mut events);
        outputs.deliver(&mut events)
    });
    let report = outputs.finish();
    for s in report.sinks.iter().filter(|s| s.dropped_queue_full + s.dropped_failed > 0) {
        tracing::warn!(sink = s.name, lost = s.dropped_queue_full + s.dropped_failed, "alert sink lost alerts");
    }
    let st = seconds.stats;
    tracing::info!(
        summaries = st.summaries,
        refused = st.refused,
        late = st.late,
        seconds = st.seconds,
        partial_seconds = st.partial_seconds,
        "aggregator stopped"
    );
    result.map(|()| st)
}
