//! The live pipeline: capture threads (one by default; with `[capture] threads`, each reads
//! its own ring of one PACKET_FANOUT group) decode frames into batches of records, an
//! analyzer thread consumes them and writes alerts, and the main thread (a small tokio
//! runtime) handles signals, the systemd watchdog and status.
//!
//! A capture that fails once running (the interface deleted, a driver reset) does not stop
//! the daemon: its thread logs it, polls for the interface with backoff and opens it again,
//! while the analyzer keeps its windows, baselines and attacks and the watchdog stays fed.
//! Only an interface missing at start-up is an error. The link going down is no failure
//! (the kernel hooks the capture up again when it comes back); the control loop notices it,
//! logs it, and counts the time without packets.
//!
//! Batches travel through a bounded channel and come back empty through another, so the
//! capture thread hands packets over without a per-packet allocation or lock. The analyzer
//! waits at most [`TICK`] for a batch and otherwise advances on the wall clock, so attacks
//! end on a silent link and shutdown never waits for a packet.

use crate::analyze::{Analyzer, AttackEvent, DetectionSettings, EndReason};
use crate::capture::live::{link_is_up, wall_clock_ns, CaptureSettings, LiveCapture, LiveError, Opener};
use crate::output::metrics::{CaptureCounts, Metrics};
use crate::output::notify::Notifier;
use crate::output::summary::TrafficStats;
use crate::output::{OutputOptions, Outputs};
use crate::pipeline::{batch_channel, Batch, BatchReceiver, BatchSender, BATCH};
use crate::telemetry::socket::DatagramSocket;
use crate::telemetry::{Collector, FlowClock, TelemetrySettings};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use tokio::signal::unix::{signal, Signal, SignalKind};

const BATCHES_IN_FLIGHT: usize = 64;
/// A partly filled batch is handed over after this long, so alerts are never held back.
const BATCH_MAX_AGE: Duration = Duration::from_millis(20);
const TICK: Duration = Duration::from_millis(100);
/// Wall-clock advances stay this far behind now, for packets still on their way.
const WALL_CLOCK_SLACK_NS: i64 = 200_000_000;
const STATUS_EVERY: Duration = Duration::from_secs(5);
/// Capture statistics go to the operational log this often.
const REPORT_EVERY: Duration = Duration::from_secs(60);
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);
/// Polling for a lost interface: from this often, doubling, to at most every 5 s.
const REOPEN_BACKOFF_MIN: Duration = Duration::from_millis(100);
const REOPEN_BACKOFF_MAX: Duration = Duration::from_secs(5);
/// The link's state is looked at this often.
const LINK_CHECK_EVERY: Duration = Duration::from_millis(250);

/// Reads the settings again on SIGHUP (the config file, for `floodwatch run`): the analyzer's,
/// and the capture's and the collector's, which need a restart to change. An error is logged
/// and the running settings kept.
pub type Reload = Box<dyn Fn() -> Result<(DetectionSettings, CaptureSettings, TelemetrySettings), String>>;

/// What `floodwatch run` needs.
pub struct DaemonOptions {
    /// The interface to capture on, if any.
    pub interface: Option<String>,
    /// Where to listen for sFlow, if anywhere, and from whom.
    pub telemetry: TelemetrySettings,
    pub detection: DetectionSettings,
    pub capture: CaptureSettings,
    pub outputs: OutputOptions,
    /// `None` when there is nothing to read again (no config file).
    pub reload: Option<Reload>,
}

/// Why the daemon stopped with an error.
#[derive(Debug)]
pub enum DaemonError {
    Capture(LiveError),
    /// The telemetry socket could not be bound.
    Listen(String),
    Output(String),
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Capture(e) => e.fmt(f),
            DaemonError::Listen(e) => f.write_str(e),
            DaemonError::Output(e) => f.write_str(e),
        }
    }
}

/// What the threads tell each other (relaxed atomics). Counters live in the outputs'
/// [`Metrics`], which the status, the logs and the metrics endpoint all read.
#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    /// Wall time (ns) the analyzer last went round its loop: the watchdog's proof of life.
    heartbeat_ns: AtomicI64,
    /// Capture threads waiting for their interface to come back.
    waiting: AtomicU32,
}

enum Control {
    Reload(Box<DetectionSettings>),
    ReopenOutputs,
}

/// Runs until SIGTERM/SIGINT (Ok), or an output failure or a capture that cannot start (Err).
pub fn run(opts: DaemonOptions) -> Result<(), DaemonError> {
    // Signals are ours before anything starts: a SIGTERM right after start-up stops the
    // daemon cleanly rather than killing it.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| DaemonError::Output(format!("cannot start the control loop: {e}")))?;
    let signals = {
        let _context = runtime.enter();
        Signals::install().map_err(|e| DaemonError::Output(format!("cannot install signal handlers: {e}")))?
    };
    let opener =
        opts.interface.as_deref().map(|i| Opener::new(i, &opts.capture)).transpose().map_err(DaemonError::Capture)?;
    let captures = match &opener {
        Some(o) => o.open_all().map_err(DaemonError::Capture)?,
        None => Vec::new(),
    };
    let listeners = opts
        .telemetry
        .listeners()
        .map(|(protocol, addr)| {
            DatagramSocket::bind(addr)
                .map(|socket| (protocol, socket))
                .map_err(|e| DaemonError::Listen(format!("cannot listen for {} on {addr}: {e}", protocol.listener())))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let outputs = Outputs::open(&opts.outputs).map_err(DaemonError::Output)?;
    let keep_frames = outputs.wants_frames();
    let metrics = outputs.metrics.clone();
    let shared = Arc::new(Shared::default());
    shared.heartbeat_ns.store(wall_clock_ns(), Ordering::Relaxed);
    let (batches_tx, batches_rx) = batch_channel(BATCHES_IN_FLIGHT, || Batch::with_capacity(BATCH));
    let (control_tx, control_rx) = mpsc::channel::<Control>();
    if let (Some(interface), Some(first)) = (&opts.interface, captures.first()) {
        tracing::info!(interface = %interface, backend = first.backend(), threads = captures.len(), "capture started");
    }
    let mut capture_threads = Vec::with_capacity(captures.len() + listeners.len());
    for (i, (protocol, socket)) in listeners.into_iter().enumerate() {
        // The metrics count capture threads first, then listeners.
        let thread = captures.len() + i;
        let listen = socket.local_addr().map(|a| a.to_string()).unwrap_or_default();
        let receive_buffer_kib = socket.receive_buffer() / 1024;
        tracing::info!(listen, receive_buffer_kib, "collecting {}", protocol.listener());
        let (shared, metrics, batches) = (shared.clone(), metrics.clone(), batches_tx.clone());
        let collector = Collector::new(&opts.telemetry, FlowClock::Live);
        let thread = std::thread::Builder::new()
            .name(protocol.name().into())
            .spawn(move || collect_loop(thread, socket, collector, &batches, &shared, &metrics))
            .map_err(|e| DaemonError::Output(format!("cannot start the {} thread: {e}", protocol.listener())))?;
        capture_threads.push(thread);
    }
    for (i, capture) in captures.into_iter().enumerate() {
        let Some(opener) = opener.clone() else { break };
        let (shared, metrics, batches) = (shared.clone(), metrics.clone(), batches_tx.clone());
        let thread = std::thread::Builder::new()
            .name(format!("capture-{i}"))
            .spawn(move || capture_loop(i, capture, &opener, &batches, &shared, &metrics, keep_frames))
            .map_err(|e| DaemonError::Output(format!("cannot start capture thread {i}: {e}")))?;
        capture_threads.push(thread);
    }
    // The analyzer sees the channel close once every capture thread is done.
    drop(batches_tx);
    let mut analyzer = Analyzer::new(opts.detection.clone());
    if let Some(p) = &opts.outputs.publish {
        analyzer.summarize_seconds(&p.sensor).map_err(|e| DaemonError::Output(format!("--publish: {e}")))?;
    }
    if opts.outputs.timeline.is_some() {
        analyzer.record_seconds().map_err(|e| DaemonError::Output(format!("--timeline: {e}")))?;
    }
    let analyzer_thread = {
        let shared = shared.clone();
        std::thread::Builder::new()
            .name("analyzer".into())
            .spawn(move || analyzer_loop(analyzer, outputs, batches_rx, control_rx, &shared))
            .map_err(|e| DaemonError::Output(format!("cannot start the analyzer thread: {e}")))?
    };

    runtime.block_on(control_loop(&opts, signals, &shared, &metrics, &control_tx, &analyzer_thread));

    shared.stop.store(true, Ordering::Relaxed);
    let deadline = Instant::now() + SHUTDOWN_GRACE + opts.outputs.drain;
    let result = join_by(analyzer_thread, deadline);
    for thread in capture_threads {
        let _ = join_by(thread, deadline);
    }
    let per_thread = metrics.captures();
    if per_thread.len() > 1 {
        for (thread, c) in per_thread.iter().enumerate() {
            tracing::info!(
                thread,
                packets = c.traffic.ip_packets,
                kernel_dropped = c.kernel_dropped,
                "capture thread stopped"
            );
        }
    }
    let traffic = metrics.traffic();
    tracing::info!(
        packets = traffic.ip_packets,
        decode_issues = traffic.issues.iter().sum::<u64>(),
        kernel_dropped = metrics.kernel_dropped(),
        "capture stopped"
    );
    match result {
        Some(Err(e)) => Err(DaemonError::Output(e)),
        _ => Ok(()),
    }
}

fn join_by<T>(handle: JoinHandle<T>, deadline: Instant) -> Option<T> {
    while !handle.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    if handle.is_finished() {
        handle.join().ok()
    } else {
        None
    }
}

/// The signals the daemon answers; installed in a tokio runtime's context.
struct Signals {
    hup: Signal,
    term: Signal,
    int: Signal,
}

impl Signals {
    fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
        })
    }
}

/// Signals, watchdog and status; returns when it is time to stop.
async fn control_loop(
    opts: &DaemonOptions,
    mut signals: Signals,
    shared: &Shared,
    metrics: &Metrics,
    control: &mpsc::Sender<Control>,
    analyzer: &JoinHandle<Result<(), String>>,
) {
    let notifier = Notifier::from_env();
    let watchdog = Notifier::watchdog_interval();
    let mut watchdog_tick = tokio::time::interval(watchdog.map(|w| w / 2).unwrap_or(Duration::from_secs(3600)));
    let mut status_tick = tokio::time::interval(STATUS_EVERY);
    let mut liveness_tick = tokio::time::interval(TICK);
    let mut link_tick = tokio::time::interval(LINK_CHECK_EVERY);
    let mut link = LinkWatch::default();
    let mut last_activity = activity(opts, shared, &link);
    let mut last_status = (Instant::now(), Vec::<CaptureCounts>::new());
    let mut last_report = Instant::now();
    notifier.send("READY=1");
    loop {
        tokio::select! {
            _ = signals.hup.recv() => reload(opts, control),
            _ = signals.term.recv() => break,
            _ = signals.int.recv() => break,
            _ = watchdog_tick.tick() => {
                // Ping only while the analyzer is alive and turning: a wedged daemon gets restarted.
                let age = wall_clock_ns() - shared.heartbeat_ns.load(Ordering::Relaxed);
                if let Some(w) = watchdog {
                    if age < w.as_nanos() as i64 / 2 {
                        notifier.send("WATCHDOG=1");
                    }
                }
            }
            _ = status_tick.tick() => {
                let (then, before) = &last_status;
                let now = metrics.captures();
                let secs = then.elapsed().as_secs_f64().max(1e-3);
                let rate = |i: usize| {
                    // Captured packets, and the sampled packets and flows telemetry describes.
                    let seen = |c: &CaptureCounts| {
                        c.traffic.ip_packets + c.traffic.telemetry.records + c.traffic.telemetry.flow_records
                    };
                    let earlier = before.get(i).map_or(0, seen);
                    seen(&now[i]).saturating_sub(earlier) as f64 / secs
                };
                let traffic = metrics.traffic();
                let packets = traffic.ip_packets;
                let drops = metrics.kernel_dropped();
                let drops_then: u64 = before.iter().map(|c| c.kernel_dropped).sum();
                let pps: f64 = (0..now.len()).map(rate).sum();
                let active = metrics.active_attacks.load(Ordering::Relaxed);
                let per_thread = if now.len() > 1 {
                    let each: Vec<String> = (0..now.len())
                        .map(|i| format!("{:.0} packets/s, {} drops", rate(i), now[i].kernel_dropped))
                        .collect();
                    format!(" (capture threads: {})", each.join("; "))
                } else {
                    String::new()
                };
                let doing = activity(opts, shared, &link);
                notifier.send(&format!(
                    "STATUS={doing}: {pps:.0} packets/s, {active} active attacks, {drops} kernel drops{per_thread}"
                ));
                if drops > drops_then {
                    tracing::warn!(dropped = drops - drops_then, total = drops, "kernel dropped packets: capture is not keeping up");
                }
                if last_report.elapsed() >= REPORT_EVERY {
                    last_report = Instant::now();
                    tracing::info!(
                        packets,
                        packets_per_s = pps.round() as u64,
                        decode_issues = traffic.issues.iter().sum::<u64>(),
                        kernel_dropped = drops,
                        active_attacks = active,
                        "capture statistics"
                    );
                }
                last_status = (Instant::now(), now);
            }
            _ = liveness_tick.tick() => {
                if analyzer.is_finished() {
                    break;
                }
            }
            _ = link_tick.tick() => {
                if let Some(interface) = &opts.interface {
                    link.check(interface, metrics);
                }
                // A capture lost or back is in `systemctl status` at once, not at the next tick.
                let doing = activity(opts, shared, &link);
                if doing != last_activity {
                    notifier.send(&format!("STATUS={doing}"));
                    last_activity = doing;
                }
            }
        }
    }
    link.stop(metrics);
    notifier.send("STOPPING=1");
}

/// What the capture and the collector are doing, for `STATUS=`.
fn activity(opts: &DaemonOptions, shared: &Shared, link: &LinkWatch) -> String {
    let capture =
        opts.interface.as_ref().map(|interface| match (shared.waiting.load(Ordering::Relaxed), link.is_down()) {
            (0, false) => format!("capturing on {interface}"),
            (0, true) => format!("waiting for {interface} (link down)"),
            _ => format!("waiting for {interface} (capture lost; polling for it)"),
        });
    let collect = opts.telemetry.listeners().map(|(p, addr)| format!("collecting {} on {addr}", p.listener()));
    capture.into_iter().chain(collect).collect::<Vec<_>>().join(", ")
}

/// The capture interface's link going down and coming back: logged, and counted as time
/// without capture (as it passes) and a capture restart.
#[derive(Default)]
struct LinkWatch {
    /// Since when the link is down, and up to when that time is counted.
    down: Option<(Instant, Instant)>,
}

impl LinkWatch {
    fn check(&mut self, interface: &str, metrics: &Metrics) {
        match (link_is_up(interface), self.down) {
            (Some(false), None) => {
                tracing::warn!("link {interface} is down: no packets until it is back");
                let now = Instant::now();
                self.down = Some((now, now));
            }
            (Some(false), Some(_)) => self.count(metrics),
            (Some(true), Some((since, _))) => {
                self.stop(metrics);
                metrics.capture_restarts.fetch_add(1, Ordering::Relaxed);
                tracing::info!(down_s = since.elapsed().as_secs_f64(), "link {interface} is up again; capture goes on");
            }
            // Gone: the capture threads wait for it and count that time.
            (None, Some(_)) => self.down = None,
            _ => {}
        }
    }

    fn is_down(&self) -> bool {
        self.down.is_some()
    }

    /// Adds the time down since it was last counted.
    fn count(&mut self, metrics: &Metrics) {
        if let Some((_, counted)) = &mut self.down {
            let now = Instant::now();
            metrics.capture_down_ns.fetch_add((now - *counted).as_nanos() as u64, Ordering::Relaxed);
            *counted = now;
        }
    }

    /// Counts the time down so far, and forgets it.
    fn stop(&mut self, metrics: &Metrics) {
        self.count(metrics);
        self.down = None;
    }
}

/// SIGHUP: re-read the config; a bad one is logged and the running one kept.
fn reload(opts: &DaemonOptions, control: &mpsc::Sender<Control>) {
    let _ = control.send(Control::ReopenOutputs);
    let Some(read_again) = &opts.reload else {
        tracing::info!("SIGHUP: no config file to reload");
        return;
    };
    match read_again() {
        Ok((detection, capture, telemetry)) => {
            if capture != opts.capture {
                tracing::warn!("SIGHUP: [capture] changes need a restart; detection settings reloaded");
            }
            if (&telemetry.exporters, &telemetry.sampling) != (&opts.telemetry.exporters, &opts.telemetry.sampling) {
                tracing::warn!("SIGHUP: [telemetry] changes need a restart; detection settings reloaded");
            }
            let _ = control.send(Control::Reload(Box::new(detection)));
        }
        Err(e) => tracing::error!("SIGHUP: {e}; keeping the running config"),
    }
}

/// Capture thread `thread`: reads its capture into batches until told to stop, opening it
/// again whenever it fails (the interface deleted and made again, a driver reset).
fn capture_loop(
    thread: usize,
    mut capture: Box<dyn LiveCapture>,
    opener: &Opener,
    batches: &BatchSender<Batch>,
    shared: &Shared,
    metrics: &Metrics,
    keep_frames: bool,
) {
    let mut traffic = TrafficStats::default();
    // Kernel drops of the sockets this thread had before the current one.
    let mut dropped_before = 0;
    let publish = |traffic: &TrafficStats, capture: &mut dyn LiveCapture, dropped_before: u64| {
        let kernel_dropped = dropped_before + capture.stats().kernel_dropped.unwrap_or(0);
        metrics.set_capture(thread, CaptureCounts { traffic: *traffic, kernel_dropped });
    };
    loop {
        let failure = read_frames(capture.as_mut(), batches, shared, keep_frames, &mut traffic, &mut |t, c| {
            publish(t, c, dropped_before)
        });
        publish(&traffic, capture.as_mut(), dropped_before);
        let Some(e) = failure else { return };
        dropped_before += capture.stats().kernel_dropped.unwrap_or(0);
        drop(capture);
        tracing::error!(thread, "{e}; waiting for {} to come back", opener.interface());
        shared.waiting.fetch_add(1, Ordering::Relaxed);
        let lost_at = Instant::now();
        let reopened = reopen(opener, shared);
        shared.waiting.fetch_sub(1, Ordering::Relaxed);
        metrics.capture_down_ns.fetch_add(lost_at.elapsed().as_nanos() as u64, Ordering::Relaxed);
        let Some(c) = reopened else { return };
        capture = c;
        metrics.capture_restarts.fetch_add(1, Ordering::Relaxed);
        tracing::info!(thread, down_s = lost_at.elapsed().as_secs_f64(), "capture resumed on {}", opener.interface());
    }
}

/// A telemetry listener (thread `thread` of the metrics' capture counts): datagrams into
/// batches of the packets they describe, stamped with their arrival, until told to stop. The
/// flows being spread are handed out as the wall clock passes their ticks.
fn collect_loop(
    thread: usize,
    mut socket: DatagramSocket,
    mut collector: Collector,
    batches: &BatchSender<Batch>,
    shared: &Shared,
    metrics: &Metrics,
) {
    let mut traffic = TrafficStats::default();
    let Some(mut filling) = Filling::new(batches) else { return };
    let mut last_stats = Instant::now();
    while !shared.stop.load(Ordering::Relaxed) {
        let got = match socket.recv_batch(|datagram, from| {
            collector.read(datagram, from, wall_clock_ns(), &mut traffic.telemetry, &mut |r, origin| {
                filling.batch.push(r, origin)
            });
            // A datagram may stand for thousands of packets: a full batch goes before the next.
            if filling.batch.is_full() {
                let _ = filling.after_read(true, batches);
            }
        }) {
            Ok(n) => n > 0,
            Err(e) => {
                tracing::error!("reading the telemetry socket: {e}");
                std::thread::sleep(REOPEN_BACKOFF_MIN);
                false
            }
        };
        collector.advance(wall_clock_ns(), &mut |r, origin| filling.batch.push(r, origin));
        if filling.after_read(got, batches).is_none() {
            break;
        }
        if last_stats.elapsed() >= Duration::from_secs(1) {
            last_stats = Instant::now();
            metrics.set_capture(thread, CaptureCounts { traffic, kernel_dropped: 0 });
            metrics.set_interfaces(thread, collector.interfaces());
        }
    }
    let _ = filling.finish(batches);
    metrics.set_capture(thread, CaptureCounts { traffic, kernel_dropped: 0 });
    metrics.set_interfaces(thread, collector.interfaces());
}

/// Opens the capture again once its interface is back, polling with backoff; `None` when the
/// daemon stops first.
fn reopen(opener: &Opener, shared: &Shared) -> Option<Box<dyn LiveCapture>> {
    let mut backoff = REOPEN_BACKOFF_MIN;
    loop {
        let until = Instant::now() + backoff;
        while Instant::now() < until {
            if shared.stop.load(Ordering::Relaxed) {
                return None;
            }
            std::thread::sleep(REOPEN_BACKOFF_MIN);
        }
        match opener.open_one() {
            Ok(capture) => return Some(capture),
            Err(e) => tracing::debug!("{e}"),
        }
        backoff = (backoff * 2).min(REOPEN_BACKOFF_MAX);
    }
}

/// Reads `capture` into batches until told to stop (`None`) or the capture fails. Publishes
/// the counts once a second.
fn read_frames(
    capture: &mut dyn LiveCapture,
    batches: &BatchSender<Batch>,
    shared: &Shared,
    keep_frames: bool,
    traffic: &mut TrafficStats,
    publish: &mut dyn FnMut(&TrafficStats, &mut dyn LiveCapture),
) -> Option<LiveError> {
    let mut filling = Filling::new(batches)?;
    let mut last_stats = Instant::now();
    let mut failure = None;
    while !shared.stop.load(Ordering::Relaxed) {
        let got = match capture.next_frame() {
            Ok(Some(frame)) => {
                filling.batch.add(&frame, traffic, keep_frames);
                true
            }
            Ok(None) => false,
            Err(e) => {
                failure = Some(e);
                break;
            }
        };
        filling.after_read(got, batches)?;
        if last_stats.elapsed() >= Duration::from_secs(1) {
            last_stats = Instant::now();
            publish(traffic, capture);
        }
    }
    filling.finish(batches)?;
    failure
}

/// The batch a source thread fills: handed to the analyzer when full, or when it holds
/// packets and a read came back empty-handed or it is [`BATCH_MAX_AGE`] old.
struct Filling {
    batch: Batch,
    started: Instant,
}

impl Filling {
    /// `None` once the analyzer is gone.
    fn new(batches: &BatchSender<Batch>) -> Option<Filling> {
        Some(Filling { batch: batches.empty()?, started: Instant::now() })
    }

    /// After one read (`got`: it brought something); `None` once the analyzer is gone.
    fn after_read(&mut self, got: bool, batches: &BatchSender<Batch>) -> Option<()> {
        let b = &self.batch;
        if b.is_full() || (!b.is_empty() && (!got || self.started.elapsed() >= BATCH_MAX_AGE)) {
            // An empty batch of no capacity stands in for the moment: it allocates nothing.
            let full = std::mem::replace(&mut self.batch, Batch::with_capacity(0));
            self.batch = batches.swap(full)?;
        }
        if self.batch.is_empty() {
            self.started = Instant::now();
        }
        Some(())
    }

    /// What was read before a stop or a failure still goes to the analyzer.
    fn finish(self, batches: &BatchSender<Batch>) -> Option<()> {
        if self.batch.is_empty() {
            return Some(());
        }
        batches.hand_over(self.batch)
    }
}

fn analyzer_loop(
    mut analyzer: Analyzer,
    mut outputs: Outputs,
    batches: BatchReceiver<Batch>,
    control: Receiver<Control>,
    shared: &Shared,
) -> Result<(), String> {
    let mut events: Vec<AttackEvent> = Vec::new();
    let mut last_wall_advance = Instant::now();
    let result = loop {
        let now_ns = wall_clock_ns();
        shared.heartbeat_ns.store(now_ns, Ordering::Relaxed);
        if shared.stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        match batches.recv_timeout(TICK) {
            Ok(mut batch) => {
                let started = Instant::now();
                if let Err(e) = process_batch(&batch, &mut analyzer, &mut outputs, &mut events) {
                    break Err(e);
                }
                outputs.metrics.record_batch_latency(started.elapsed().as_nanos() as u64);
                batch.clear();
                batches.give_back(batch);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break Ok(()),
        }
        if last_wall_advance.elapsed() >= TICK {
            last_wall_advance = Instant::now();
            let now = wall_clock_ns() - WALL_CLOCK_SLACK_NS;
            analyzer.advance_to(now, &mut events);
            outputs.advance(now);
            outputs.metrics.set_analyzer(&analyzer.stats(), analyzer.active_attacks());
        }
        while let Ok(c) = control.try_recv() {
            match c {
                Control::Reload(settings) => {
                    for note in analyzer.reload(*settings) {
                        tracing::warn!("reload: {note}");
                    }
                    tracing::info!("configuration reloaded");
                }
                Control::ReopenOutputs => outputs.reopen(),
            }
        }
        if let Err(e) = outputs.deliver(&mut events) {
            break Err(e);
        }
        outputs.summaries(analyzer.take_summaries());
    };
    analyzer.finish(EndReason::Shutdown, &mut events);
    let last = outputs.deliver(&mut events);
    outputs.summaries(analyzer.take_summaries());
    let raised = outputs.metrics.alerts_raised();
    let report = outputs.finish();
    if let Some((handed_over, dropped, refused)) = report.summaries {
        tracing::info!(handed_over, dropped, refused, "summary publisher stopped");
    }
    match &report.timeline {
        Some(Ok(records)) => tracing::info!(records, "timeline closed"),
        Some(Err(e)) => tracing::warn!("{e}"),
        None => {}
    }
    // Each alert raised was delivered or lost, by every sink: the operator can add it up.
    for s in &report.sinks {
        let lost = s.dropped_queue_full + s.dropped_failed;
        let (name, delivered) = (&s.name, s.delivered);
        if lost > 0 {
            tracing::warn!(
                raised,
                delivered,
                lost,
                queue_full = s.dropped_queue_full,
                failed = s.dropped_failed,
                "alert sink {name} stopped, having lost alerts"
            );
        } else {
            tracing::info!(raised, delivered, lost, "alert sink {name} stopped");
        }
    }
    result.and(last)
}

/// One batch through the analyzer and the outputs, in packet order.
fn process_batch(
    batch: &Batch,
    analyzer: &mut Analyzer,
    outputs: &mut Outputs,
    events: &mut Vec<AttackEvent>,
) -> Result<(), String> {
    for (record, frame, origin) in batch.packets() {
        if let Some(frame) = frame {
            outputs.frame(&frame, record);
        }
        if let Some(origin) = origin {
            analyzer.set_origin(origin);
        }
        analyzer.process(record, events);
        if !events.is_empty() {
            outputs.deliver(events)?;
        }
    }
    if let Some(ts_ns) = batch.last_ts_ns() {
        outputs.advance(ts_ns);
    }
    Ok(())
}
