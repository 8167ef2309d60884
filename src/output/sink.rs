//! Alert sinks: where alerts go, several at once, each with its own thread and bounded queue,
//! so a collector that is down or slow never holds up detection.
//!
//! * Lossless sinks (standard output, files) block the sender when their queue is full: a
//!   file loses nothing, and a local disk only fills the queue if it stalls for long.
//! * Network sinks (unix and TCP sockets, syslog) never block the sender: when their queue
//!   is full the alert is dropped and counted. They connect lazily, reconnect with backoff,
//!   and keep the alert in hand until it is written. Stream sinks deliver at least once:
//!   before each write they check that the peer has not closed, and after a broken
//!   connection they resend what they wrote in the last [`RESEND_WINDOW`].
//! * Datagram sinks (syslog over UDP, /dev/log) count what the kernel reports as refused.

use crate::capture::live::wall_clock_ns;
use crate::output::alert::{render, Alert, AlertFormat};
use crate::output::syslog::{self, Facility};
use std::collections::VecDeque;
use std::io::{self, Write};
use std::net::{TcpStream, ToSocketAddrs, UdpSocket};
use std::os::unix::net::{UnixDatagram, UnixStream};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Alerts a network sink holds while its collector is away.
pub const NETWORK_QUEUE: usize = 10_000;
/// Alerts a lossless sink holds before the sender waits.
const LOSSLESS_QUEUE: usize = 65_536;
pub(super) const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub(super) const BACKOFF_MAX: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// A collector that accepts nothing for this long counts as gone.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(5);
/// After a stream breaks, what was written this recently is sent again (it may have been
/// in flight when the peer went away).
const RESEND_WINDOW: Duration = Duration::from_secs(2);
/// Alerts a sink thread holds outside its queue at most (being sent, or kept for a resend).
const IN_HAND: usize = 64;

/// Where one sink writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SinkTarget {
    Stdout,
    /// Appended to; reopened on SIGHUP (logrotate).
    File(PathBuf),
    /// A unix stream socket: JSON lines.
    Unix(PathBuf),
    /// host:port, JSON lines.
    Tcp(String),
    /// RFC 5424 in one datagram each.
    SyslogUdp(String),
    /// RFC 5424 with RFC 6587 octet-counting.
    SyslogTcp(String),
    /// The local syslog socket (default /dev/log), datagrams.
    SyslogLocal(PathBuf),
    /// A NATS subject (JetStream when a stream takes it), one alert per message.
    Nats {
        url: String,
        subject: String,
    },
}

/// One `--alerts` value: a target, a format and (syslog) a facility.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SinkSpec {
    pub target: SinkTarget,
    pub format: AlertFormat,
    pub facility: Facility,
    /// As given, for messages and metrics labels.
    pub name: String,
}

impl FromStr for SinkSpec {
    type Err = String;

    /// `-` | `stdout` | `PATH` | `file:PATH` | `unix:PATH` | `tcp://HOST:PORT` |
    /// `syslog+udp://HOST:PORT` | `syslog+tcp://HOST:PORT` | `syslog` | `syslog:PATH` |
    /// `nats://HOST:PORT/SUBJECT`,
    /// each optionally followed by `?format=native|ecs|eve` and (syslog) `&facility=NAME`.
    fn from_str(text: &str) -> Result<SinkSpec, String> {
        let bad = |why: String| format!("alert sink {text:?}: {why}");
        let mut format = AlertFormat::Native;
        let mut facility = Facility::default();
        let mut base = text;
        if let Some((b, query)) = text.rsplit_once('?') {
            if query.split('&').all(|kv| kv.starts_with("format=") || kv.starts_with("facility=")) {
                base = b;
                for kv in query.split('&') {
                    match kv.split_once('=') {
                        Some(("format", v)) => format = v.parse().map_err(bad)?,
                        Some(("facility", v)) => facility = v.parse().map_err(bad)?,
                        _ => {}
                    }
                }
            }
        }
        let need_addr = |rest: &str| -> Result<String, String> {
            if rest.rsplit_once(':').is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok()) {
                Ok(rest.to_string())
            } else {
                Err(bad("expected HOST:PORT".into()))
            }
        };
        let need_path = |rest: &str| -> Result<PathBuf, String> {
            if rest.is_empty() {
                Err(bad("expected a path".into()))
            } else {
                Ok(PathBuf::from(rest))
            }
        };
        let target = if base == "-" || base == "stdout" {
            SinkTarget::Stdout
        } else if base == "syslog" {
            SinkTarget::SyslogLocal(PathBuf::from("/dev/log"))
        } else if let Some(rest) = base.strip_prefix("syslog+udp://") {
            SinkTarget::SyslogUdp(need_addr(rest)?)
        } else if let Some(rest) = base.strip_prefix("syslog+tcp://") {
            SinkTarget::SyslogTcp(need_addr(rest)?)
        } else if let Some(rest) = base.strip_prefix("syslog:") {
            SinkTarget::SyslogLocal(need_path(rest)?)
        } else if let Some(rest) = base.strip_prefix("tcp://") {
            SinkTarget::Tcp(need_addr(rest)?)
        } else if let Some(rest) = base.strip_prefix("nats://") {
            let (addr, subject) =
                rest.split_once('/').ok_or_else(|| bad("expected nats://HOST:PORT/SUBJECT".into()))?;
            let token = |t: &str| !t.is_empty() && t.chars().all(|c| c.is_ascii_graphic() && c != '*' && c != '>');
            if !subject.split('.').all(token) {
                return Err(bad(format!(
                    "{subject:?} is no subject to publish to (dot-separated tokens, no wildcards)"
                )));
            }
            SinkTarget::Nats { url: format!("nats://{}", need_addr(addr)?), subject: subject.to_string() }
        } else if let Some(rest) = base.strip_prefix("unix:") {
            SinkTarget::Unix(need_path(rest)?)
        } else if let Some(rest) = base.strip_prefix("file:") {
            SinkTarget::File(need_path(rest)?)
        } else if base.contains("://") {
            return Err(bad("unknown scheme: expected tcp://, syslog+udp://, syslog+tcp:// or nats://".into()));
        } else {
            SinkTarget::File(need_path(base)?)
        };
        Ok(SinkSpec { target, format, facility, name: text.to_string() })
    }
}

impl SinkSpec {
    fn lossless(&self) -> bool {
        matches!(self.target, SinkTarget::Stdout | SinkTarget::File(_))
    }

    fn is_datagram(&self) -> bool {
        matches!(self.target, SinkTarget::SyslogUdp(_) | SinkTarget::SyslogLocal(_))
    }
}

/// What one sink did, readable while it runs (metrics) and after (summary).
#[derive(Debug, Default)]
pub struct SinkStats {
    pub delivered: AtomicU64,
    /// Dropped because the queue was full (network sinks only).
    pub dropped_queue_full: AtomicU64,
    /// Lost on the way: refused datagrams, too large to send, undelivered at exit.
    pub dropped_failed: AtomicU64,
    /// Alerts waiting in the queue.
    pub queued: AtomicU64,
    pub reconnects: AtomicU64,
}

impl SinkStats {
    pub fn dropped(&self) -> u64 {
        self.dropped_queue_full.load(Ordering::Relaxed) + self.dropped_failed.load(Ordering::Relaxed)
    }
}

pub(super) enum Message {
    Alert(Arc<Alert>),
    Reopen,
}

/// What a sink's thread (the socket worker, or NATS's) shares with [`AlertSinks`].
pub(super) struct SinkThread {
    pub stats: Arc<SinkStats>,
    give_up_at: Arc<Mutex<Option<Instant>>>,
}

impl SinkThread {
    /// Whether `finish` has set a time to give up, and it has passed.
    pub fn giving_up(&self) -> bool {
        self.give_up_at.lock().ok().and_then(|g| *g).is_some_and(|g| Instant::now() >= g)
    }

    /// Counts every alert still to come as lost, until the queue closes (so senders never
    /// wait on a sink that cannot write); how many.
    pub fn lose_all(&self, rx: &Receiver<Message>) -> u64 {
        let mut lost = 0;
        for m in rx.iter() {
            if let Message::Alert(_) = m {
                self.stats.queued.fetch_sub(1, Ordering::Relaxed);
                self.stats.dropped_failed.fetch_add(1, Ordering::Relaxed);
                lost += 1;
            }
        }
        lost
    }
}

struct Sink {
    spec: SinkSpec,
    tx: SyncSender<Message>,
    stats: Arc<SinkStats>,
    thread: JoinHandle<()>,
}

/// Every alert sink of a run.
pub struct AlertSinks {
    sinks: Vec<Sink>,
    /// Set by `finish`: when network sinks give up on what they still hold.
    give_up_at: Arc<Mutex<Option<Instant>>>,
    /// A lossless sink that can no longer write (stdout closed): the run should stop.
    failed: Arc<Mutex<Option<String>>>,
}

/// The final account of one sink.
pub struct SinkReport {
    pub name: String,
    pub delivered: u64,
    pub dropped_queue_full: u64,
    pub dropped_failed: u64,
    pub reconnects: u64,
}

impl AlertSinks {
    /// Starts every sink. Files are opened now, so a bad path fails at start-up; network
    /// sinks connect in their own thread and may start before their collector.
    pub fn open(specs: &[SinkSpec]) -> Result<AlertSinks, String> {
        let give_up_at = Arc::new(Mutex::new(None));
        let failed = Arc::new(Mutex::new(None));
        let host = syslog::hostname();
        let mut sinks = Vec::new();
        for spec in specs {
            let first = match &spec.target {
                SinkTarget::File(path) => {
                    Some(open_file(path).map_err(|e| format!("cannot open alert file {}: {e}", path.display()))?)
                }
                _ => None,
            };
            let (tx, rx) = mpsc::sync_channel(if spec.lossless() { LOSSLESS_QUEUE } else { NETWORK_QUEUE });
            let stats = Arc::new(SinkStats::default());
            let thread = std::thread::Builder::new().name("alert-sink".into());
            let thread = match &spec.target {
                SinkTarget::Nats { url, subject } => {
                    let (url, subject, format) = (url.clone(), subject.clone(), spec.format);
                    let sink = SinkThread { stats: stats.clone(), give_up_at: give_up_at.clone() };
                    thread.spawn(move || super::nats::publish_alerts(&url, &subject, format, rx, sink))
                }
                _ => {
                    let worker = Worker {
                        spec: spec.clone(),
                        host: host.clone(),
                        shared: SinkThread { stats: stats.clone(), give_up_at: give_up_at.clone() },
                        failed: failed.clone(),
                        conn: first,
                    };
                    thread.spawn(move || worker.run(rx))
                }
            }
            .map_err(|e| format!("cannot start the alert sink thread: {e}"))?;
            sinks.push(Sink { spec: spec.clone(), tx, stats, thread });
        }
        Ok(AlertSinks { sinks, give_up_at, failed })
    }

    /// Hands an alert to every sink: waits on a full lossless queue, drops (and counts) on a
    /// full network queue. Err when a lossless sink failed for good.
    pub fn send(&self, alert: &Arc<Alert>) -> Result<(), String> {
        for s in &self.sinks {
            s.stats.queued.fetch_add(1, Ordering::Relaxed);
            let sent = if s.spec.lossless() {
                s.tx.send(Message::Alert(alert.clone())).is_ok()
            } else {
                match s.tx.try_send(Message::Alert(alert.clone())) {
                    Ok(()) => true,
                    Err(TrySendError::Full(_)) => {
                        s.stats.dropped_queue_full.fetch_add(1, Ordering::Relaxed);
                        false
                    }
                    Err(TrySendError::Disconnected(_)) => false,
                }
            };
            if !sent {
                s.stats.queued.fetch_sub(1, Ordering::Relaxed);
            }
        }
        match self.failed.lock().map(|f| f.clone()) {
            Ok(Some(e)) => Err(e),
            _ => Ok(()),
        }
    }

    /// Files are reopened (after logrotate moved them), sockets reconnected.
    pub fn reopen(&self) {
        for s in &self.sinks {
            // In queue order: every alert after this goes to the reopened file.
            let _ = if s.spec.lossless() {
                s.tx.send(Message::Reopen).map_err(|_| ())
            } else {
                s.tx.try_send(Message::Reopen).map_err(|_| ())
            };
        }
        tracing::info!("alert files reopened, alert sockets reconnected");
    }

    pub fn stats(&self) -> Vec<(String, Arc<SinkStats>)> {
        self.sinks.iter().map(|s| (s.spec.name.clone(), s.stats.clone())).collect()
    }

    /// Closes the queues and waits for every sink to write what it holds; network sinks
    /// that cannot reach their collector give up after `drain` and count the rest as lost.
    pub fn finish(self, drain: Duration) -> Vec<SinkReport> {
        if let Ok(mut g) = self.give_up_at.lock() {
            *g = Some(Instant::now() + drain);
        }
        let mut reports = Vec::new();
        for s in self.sinks {
            drop(s.tx);
            let _ = s.thread.join();
            reports.push(SinkReport {
                name: s.spec.name,
                delivered: s.stats.delivered.load(Ordering::Relaxed),
                dropped_queue_full: s.stats.dropped_queue_full.load(Ordering::Relaxed),
                dropped_failed: s.stats.dropped_failed.load(Ordering::Relaxed),
                reconnects: s.stats.reconnects.load(Ordering::Relaxed),
            });
        }
        reports
    }
}

fn open_file(path: &std::path::Path) -> io::Result<Connection> {
    std::fs::OpenOptions::new().create(true).append(true).open(path).map(Connection::File)
}

/// Whether the peer of a stream that never sends to us (a collector, the ExaBGP relay) is
/// still there: anything readable means end of stream or an error.
pub(crate) fn peer_open(stream: &impl std::os::fd::AsRawFd) -> bool {
    let mut byte = 0u8;
    // SAFETY: a one-byte buffer we own; MSG_PEEK leaves the stream untouched.
    let n = unsafe {
        libc::recv(stream.as_raw_fd(), (&mut byte as *mut u8).cast(), 1, libc::MSG_PEEK | libc::MSG_DONTWAIT)
    };
    n < 0 && io::Error::last_os_error().kind() == io::ErrorKind::WouldBlock
}

/// An open way to the sink's destination.
enum Connection {
    Stdout(io::Stdout),
    File(std::fs::File),
    Tcp(TcpStream),
    Unix(UnixStream),
    Udp(UdpSocket),
    Local(UnixDatagram),
}

/// Why a message did not go out.
enum SendError {
    /// The connection is unusable; the message is still to be sent.
    Broken(io::Error),
    /// The message is lost (or can never be sent); count it and go on.
    Lost(io::Error),
    /// Refused: an earlier datagram was lost, and this one was not sent.
    EarlierLost(io::Error),
}

impl Connection {
    fn open(target: &SinkTarget) -> io::Result<Connection> {
        Ok(match target {
            SinkTarget::Stdout => Connection::Stdout(io::stdout()),
            SinkTarget::File(path) => return open_file(path),
            SinkTarget::Tcp(addr) | SinkTarget::SyslogTcp(addr) => {
                let s = connect_tcp(addr)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                let _ = s.set_nodelay(true);
                Connection::Tcp(s)
            }
            SinkTarget::Unix(path) => {
                let s = UnixStream::connect(path)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Connection::Unix(s)
            }
            SinkTarget::SyslogUdp(addr) => {
                let peer = resolve(addr)?;
                let s = UdpSocket::bind(if peer.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" })?;
                s.connect(peer)?;
                Connection::Udp(s)
            }
            SinkTarget::SyslogLocal(path) => {
                let s = UnixDatagram::unbound()?;
                s.connect(path)?;
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Connection::Local(s)
            }
            SinkTarget::Nats { .. } => return Err(io::Error::other("a NATS sink has a thread of its own kind")),
        })
    }

    /// For streams: false once the peer has closed.
    fn peer_open(&self) -> bool {
        match self {
            Connection::Tcp(s) => peer_open(s),
            Connection::Unix(s) => peer_open(s),
            _ => true,
        }
    }

    fn send(&mut self, msg: &[u8]) -> Result<(), SendError> {
        let stream = |r: io::Result<()>| r.map_err(SendError::Broken);
        match self {
            Connection::Stdout(s) => {
                let mut lock = s.lock();
                stream(lock.write_all(msg).and_then(|_| lock.flush()))
            }
            Connection::File(f) => {
                // A write cut short (a full disk) is taken back to the last whole line, so the
                // retry appends to whole lines: a collector tailing the file never reads half.
                let before = f.metadata().map(|m| m.len());
                let written = f.write_all(msg);
                if let (Err(_), Ok(len)) = (&written, before) {
                    let _ = f.set_len(len);
                }
                stream(written)
            }
            Connection::Tcp(s) => stream(s.write_all(msg)),
            Connection::Unix(s) => stream(s.write_all(msg)),
            Connection::Udp(s) => datagram(s.send(msg), || s.take_error()),
            // A refusal on a unix socket means the daemon closed it: this message is still
            // to be sent, after a reconnect.
            Connection::Local(s) => match s.send(msg) {
                Ok(_) => Ok(()),
                Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => Err(SendError::Lost(e)),
                Err(e) => Err(SendError::Broken(e)),
            },
        }
    }
}

/// A UDP datagram's fate: a refusal reported by this send means an earlier datagram was
/// refused (ICMP port unreachable); one reported right after means this one was.
fn datagram(
    sent: io::Result<usize>,
    pending_error: impl FnOnce() -> io::Result<Option<io::Error>>,
) -> Result<(), SendError> {
    match sent {
        Ok(_) => match pending_error() {
            Ok(Some(e)) => Err(SendError::Lost(e)),
            _ => Ok(()),
        },
        Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => Err(SendError::EarlierLost(e)),
        Err(e) if e.raw_os_error() == Some(libc::EMSGSIZE) => Err(SendError::Lost(e)),
        Err(e) => Err(SendError::Broken(e)),
    }
}

fn resolve(addr: &str) -> io::Result<std::net::SocketAddr> {
    addr.to_socket_addrs()?.next().ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address")))
}

fn connect_tcp(addr: &str) -> io::Result<TcpStream> {
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{addr}: no address"));
    for a in addr.to_socket_addrs()? {
        match TcpStream::connect_timeout(&a, CONNECT_TIMEOUT) {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

struct Worker {
    spec: SinkSpec,
    host: String,
    shared: SinkThread,
    failed: Arc<Mutex<Option<String>>>,
    conn: Option<Connection>,
}

impl Worker {
    /// The message bytes for one alert: rendered in the sink's format, then framed.
    fn frame(&self, alert: &Alert) -> Option<Arc<[u8]>> {
        let json = match render(alert, self.spec.format) {
            Ok(j) => j,
            Err(e) => {
                tracing::error!(sink = %self.spec.name, "cannot render an alert: {e}");
                return None;
            }
        };
        let e = &alert.event;
        let pid = std::process::id();
        let framed = match self.spec.target {
            SinkTarget::Stdout
            | SinkTarget::File(_)
            | SinkTarget::Unix(_)
            | SinkTarget::Tcp(_)
            | SinkTarget::Nats { .. } => {
                let mut line = json;
                line.push(b'\n');
                line
            }
            SinkTarget::SyslogUdp(_) => {
                syslog::rfc5424(self.spec.facility, e.event, e.timestamp_ns, &self.host, pid, &json)
            }
            SinkTarget::SyslogTcp(_) => syslog::octet_counted(&syslog::rfc5424(
                self.spec.facility,
                e.event,
                e.timestamp_ns,
                &self.host,
                pid,
                &json,
            )),
            SinkTarget::SyslogLocal(_) => syslog::local(self.spec.facility, e.event, wall_clock_ns(), pid, &json),
        };
        Some(framed.into())
    }

    fn run(mut self, rx: Receiver<Message>) {
        let mut pending: VecDeque<Arc<[u8]>> = VecDeque::new();
        let mut recent: VecDeque<(Instant, Arc<[u8]>)> = VecDeque::new();
        let mut backoff = BACKOFF_MIN;
        let mut retry_at: Option<Instant> = None;
        let mut outage_logged: Option<String> = None;
        let mut closed = false;
        loop {
            // Take in what has arrived; wait for more only when there is nothing to do.
            if pending.is_empty() && !closed {
                match rx.recv() {
                    Ok(m) => self.take(m, &mut pending),
                    Err(_) => closed = true,
                }
            }
            while pending.len() < IN_HAND {
                match rx.try_recv() {
                    Ok(m) => self.take(m, &mut pending),
                    Err(_) => break,
                }
            }
            if pending.is_empty() {
                if closed {
                    return;
                }
                continue;
            }
            if let Some(at) = retry_at {
                let now = Instant::now();
                // `finish` sets the time to give up before it closes the queue.
                if self.shared.giving_up() {
                    self.shared.stats.dropped_failed.fetch_add(pending.len() as u64, Ordering::Relaxed);
                    let lost = pending.len() as u64 + self.shared.lose_all(&rx);
                    tracing::error!(sink = %self.spec.name, lost, "gave up delivering alerts at exit");
                    return;
                }
                if now < at {
                    let pause = (at - now).min(Duration::from_millis(50));
                    if pending.len() >= IN_HAND || closed {
                        // The queue holds the rest (and drops what overflows it).
                        std::thread::sleep(pause);
                    } else {
                        match rx.recv_timeout(pause) {
                            Ok(m) => self.take(m, &mut pending),
                            Err(RecvTimeoutError::Disconnected) => closed = true,
                            Err(RecvTimeoutError::Timeout) => {}
                        }
                    }
                    continue;
                }
                retry_at = None;
            }
            if self.conn.as_ref().is_some_and(|c| !c.peer_open()) {
                self.conn = None;
                requeue_recent(&mut recent, &mut pending);
            }
            if self.conn.is_none() {
                match Connection::open(&self.spec.target) {
                    Ok(c) => {
                        if outage_logged.is_some() {
                            self.shared.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(sink = %self.spec.name, "alert sink reconnected");
                        }
                        self.conn = Some(c);
                    }
                    Err(e) => {
                        self.outage(&e, &mut outage_logged, &mut backoff, &mut retry_at);
                        continue;
                    }
                }
            }
            let Some(msg) = pending.front().cloned() else { continue };
            let Some(conn) = self.conn.as_mut() else { continue };
            match conn.send(&msg) {
                Ok(()) => {
                    pending.pop_front();
                    self.shared.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    backoff = BACKOFF_MIN;
                    outage_logged = None;
                    if !self.spec.is_datagram() && !self.spec.lossless() {
                        let now = Instant::now();
                        while recent.front().is_some_and(|(t, _)| now.duration_since(*t) > RESEND_WINDOW)
                            || recent.len() >= IN_HAND
                        {
                            recent.pop_front();
                        }
                        recent.push_back((now, msg));
                    }
                }
                Err(SendError::Lost(e)) => {
                    pending.pop_front();
                    self.shared.stats.dropped_failed.fetch_add(1, Ordering::Relaxed);
                    if e.raw_os_error() != Some(libc::EMSGSIZE) {
                        self.outage(&e, &mut outage_logged, &mut backoff, &mut retry_at);
                    } else {
                        tracing::error!(sink = %self.spec.name, bytes = msg.len(), "alert too large for one datagram: dropped");
                    }
                }
                Err(SendError::EarlierLost(e)) => {
                    self.shared.stats.dropped_failed.fetch_add(1, Ordering::Relaxed);
                    let _ = self
                        .shared
                        .stats
                        .delivered
                        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |d| d.checked_sub(1));
                    self.conn = None;
                    self.outage(&e, &mut outage_logged, &mut backoff, &mut retry_at);
                }
                Err(SendError::Broken(e)) => {
                    if self.spec.target == SinkTarget::Stdout && e.kind() == io::ErrorKind::BrokenPipe {
                        if let Ok(mut f) = self.failed.lock() {
                            *f = Some(format!("writing alerts to {} failed: {e}", self.spec.name));
                        }
                        self.shared.stats.dropped_failed.fetch_add(pending.len() as u64, Ordering::Relaxed);
                        self.shared.lose_all(&rx);
                        return;
                    }
                    self.conn = None;
                    requeue_recent(&mut recent, &mut pending);
                    self.outage(&e, &mut outage_logged, &mut backoff, &mut retry_at);
                }
            }
        }
    }

    fn take(&mut self, m: Message, pending: &mut VecDeque<Arc<[u8]>>) {
        match m {
            Message::Alert(a) => {
                self.shared.stats.queued.fetch_sub(1, Ordering::Relaxed);
                if let Some(framed) = self.frame(&a) {
                    pending.push_back(framed);
                }
            }
            Message::Reopen => {
                if !matches!(self.spec.target, SinkTarget::Stdout) {
                    self.conn = None;
                }
            }
        }
    }

    /// Logs an outage once, and again when its cause changes (a disk made read-only, then a
    /// directory made unwritable).
    fn outage(
        &self,
        e: &io::Error,
        logged: &mut Option<String>,
        backoff: &mut Duration,
        retry_at: &mut Option<Instant>,
    ) {
        let cause = e.to_string();
        if logged.as_deref() != Some(cause.as_str()) {
            tracing::warn!(sink = %self.spec.name, "alert sink unavailable: {cause}; retrying with backoff");
            *logged = Some(cause);
        }
        *retry_at = Some(Instant::now() + *backoff);
        *backoff = (*backoff * 2).min(BACKOFF_MAX);
    }
}

/// Puts what was written in the resend window back in front of the queue, oldest first.
fn requeue_recent(recent: &mut VecDeque<(Instant, Arc<[u8]>)>, pending: &mut VecDeque<Arc<[u8]>>) {
    while let Some((_, m)) = recent.pop_back() {
        pending.push_front(m);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(s: &str) -> SinkSpec {
        s.parse().unwrap()
    }

    #[test]
    fn targets_parse() {
        assert_eq!(spec("-").target, SinkTarget::Stdout);
        assert_eq!(spec("/var/log/a.json").target, SinkTarget::File("/var/log/a.json".into()));
        assert_eq!(spec("file:a?b").target, SinkTarget::File("a?b".into()));
        assert_eq!(spec("unix:/run/x.sock").target, SinkTarget::Unix("/run/x.sock".into()));
        assert_eq!(spec("tcp://127.0.0.1:5170").target, SinkTarget::Tcp("127.0.0.1:5170".into()));
        assert_eq!(spec("tcp://[::1]:5170").target, SinkTarget::Tcp("[::1]:5170".into()));
        assert_eq!(spec("syslog").target, SinkTarget::SyslogLocal("/dev/log".into()));
        assert_eq!(spec("syslog:/run/l").target, SinkTarget::SyslogLocal("/run/l".into()));
        let s = spec("syslog+udp://loghost:514?format=ecs&facility=local3");
        assert_eq!(s.target, SinkTarget::SyslogUdp("loghost:514".into()));
        assert_eq!(s.format, AlertFormat::Ecs);
        assert_eq!(s.facility, "local3".parse().unwrap());
        assert_eq!(spec("syslog+tcp://h:601?format=eve").format, AlertFormat::Eve);
        let s = spec("nats://10.0.0.5:4222/floodwatch.alerts.edge-1?format=ecs");
        let nats = SinkTarget::Nats { url: "nats://10.0.0.5:4222".into(), subject: "floodwatch.alerts.edge-1".into() };
        assert_eq!((s.target, s.format), (nats, AlertFormat::Ecs));
    }

    #[test]
    fn a_collector_that_never_comes_costs_counted_alerts_and_bounded_memory() {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let sinks = AlertSinks::open(&[spec(&format!("tcp://127.0.0.1:{port}"))]).unwrap();
        let alert = Arc::new(Alert::new(crate::analyze::sample_event(crate::analyze::EventKind::Start)));
        let sent = NETWORK_QUEUE as u64 + 500;
        for _ in 0..sent {
            sinks.send(&alert).unwrap();
        }
        let (_, stats) = &sinks.stats()[0];
        // The queue and what the thread holds, no more: the rest was dropped on arrival.
        let held = stats.queued.load(Ordering::Relaxed);
        assert!(held <= NETWORK_QUEUE as u64, "{held} queued");
        assert!(stats.dropped_queue_full.load(Ordering::Relaxed) >= sent - NETWORK_QUEUE as u64 - IN_HAND as u64);
        let report = sinks.finish(Duration::from_millis(200));
        assert_eq!(report[0].delivered, 0);
        assert_eq!(report[0].dropped_queue_full + report[0].dropped_failed, sent, "every alert accounted for");
    }

    #[test]
    fn bad_targets_say_why() {
        for (s, why) in [
            ("tcp://nohost", "HOST:PORT"),
            ("udp://h:1", "unknown scheme"),
            ("x.json?format=xml", "unknown alert format"),
            ("syslog+udp://h:1?facility=local9", "facility"),
            ("unix:", "a path"),
            ("nats://h:4222", "nats://HOST:PORT/SUBJECT"),
            ("nats://h/alerts", "HOST:PORT"),
            ("nats://h:4222/alerts.*", "no subject"),
            ("nats://h:4222/alerts..x", "no subject"),
        ] {
            let e = s.parse::<SinkSpec>().unwrap_err();
            assert!(e.contains(why) && e.contains(s), "{s}: {e}");
        }
    }
}
