//! NATS between sensors and their aggregator: a sensor publishes the summary of each second
//! of packet time (`--publish nats://HOST:PORT --sensor NAME`) to
//! `floodwatch.summary.NAME`; `floodwatch aggregate` subscribes to `floodwatch.summary.*`.
//!
//! The client (async-nats) runs in a thread of its own on a current-thread tokio runtime.
//! The analyzer's thread only queues a summary: when the queue is full (NATS is away and the
//! client's own buffer is full too) the summary is dropped and counted, never waited for.
//! The client reconnects by itself, with backoff, for as long as the sensor runs.
//!
//! Alerts go to NATS too, as an alert sink `nats://HOST:PORT/SUBJECT` ([`publish_alerts`]).

use super::alert::{render, AlertFormat};
use super::sink::{Message, SinkThread, BACKOFF_MAX, BACKOFF_MIN, WRITE_TIMEOUT};
use crate::analyze::summary::SecondSummary;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::Receiver;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// Subjects of the sensors' summaries: this, a dot, and the sensor's name.
pub const SUMMARY_SUBJECT: &str = "floodwatch.summary";
/// Summaries (seconds) held for the client while it cannot take them.
const QUEUE: usize = 64;

/// Where a sensor publishes, and as whom.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishOptions {
    /// `nats://HOST:PORT`.
    pub url: String,
    /// Letters, digits, `-` and `_`, at most 64: it ends the subject.
    pub sensor: String,
}

impl PublishOptions {
    pub fn new(url: &str, sensor: &str) -> Result<PublishOptions, String> {
        let url = nats_url(url)?;
        let valid = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
        if sensor.is_empty() || sensor.len() > 64 || !sensor.chars().all(valid) {
            return Err(format!("sensor name {sensor:?}: 1 to 64 letters, digits, '-' or '_'"));
        }
        Ok(PublishOptions { url, sensor: sensor.to_string() })
    }

    fn subject(&self) -> String {
        format!("{SUMMARY_SUBJECT}.{}", self.sensor)
    }
}

/// `nats://HOST:PORT` (a port is required: the server's, 4222 by default, said explicitly).
pub fn nats_url(url: &str) -> Result<String, String> {
    let rest = url.strip_prefix("nats://").ok_or_else(|| format!("{url}: expected nats://HOST:PORT"))?;
    match rest.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => Ok(url.to_string()),
        _ => Err(format!("{url}: expected nats://HOST:PORT")),
    }
}

/// What the publisher did.
#[derive(Debug, Default)]
pub struct PublisherStats {
    /// Handed to the client (core NATS: at most once from there).
    pub published: AtomicU64,
    /// Dropped: the queue was full.
    pub dropped: AtomicU64,
    /// Not encoded, or refused by the client (too large for the server, or closed).
    pub failed: AtomicU64,
}

/// The sensor's side: summaries out to NATS without waiting.
pub struct SummaryPublisher {
    queue: tokio::sync::mpsc::Sender<SecondSummary>,
    pub stats: Arc<PublisherStats>,
    thread: JoinHandle<()>,
}

impl SummaryPublisher {
    /// Starts the client's thread; it connects in the background.
    pub fn start(opts: &PublishOptions, drain: Duration) -> Result<SummaryPublisher, String> {
        let (queue, mut summaries) = tokio::sync::mpsc::channel::<SecondSummary>(QUEUE);
        let stats = Arc::new(PublisherStats::default());
        let (url, subject, name, counts) =
            (opts.url.clone(), opts.subject(), format!("floodwatch sensor {}", opts.sensor), stats.clone());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("NATS publisher: {e}"))?;
        let thread = std::thread::Builder::new()
            .name("nats-publish".into())
            .spawn(move || {
                runtime.block_on(async move {
                    let client = match connect(&url, name).await {
                        Ok(c) => c,
                        Err(e) => {
                            tracing::error!("NATS {url}: {e}");
                            return;
                        }
                    };
                    // Encoded here, not in the analyzer's thread.
                    while let Some(summary) = summaries.recv().await {
                        let published = match summary.encode() {
                            Ok(bytes) => client.publish(subject.clone(), bytes.into()).await.map_err(|e| e.to_string()),
                            Err(e) => Err(e.to_string()),
                        };
                        let counter = match published {
                            Ok(()) => &counts.published,
                            Err(e) => {
                                tracing::warn!("NATS {url}: summary not published: {e}");
                                &counts.failed
                            }
                        };
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    if tokio::time::timeout(drain, client.flush()).await.is_err() {
                        tracing::warn!("NATS {url}: summaries still buffered after {drain:?} at exit");
                    }
                })
            })
            .map_err(|e| format!("NATS publisher thread: {e}"))?;
        Ok(SummaryPublisher { queue, stats, thread })
    }

    /// Queues one summary, or drops it (counted) when the queue is full (or the client's
    /// thread ended).
    pub fn send(&self, summary: SecondSummary) {
        if self.queue.try_send(summary).is_err() {
            self.stats.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Hands over what is queued and waits for the client to flush it (at most `drain`).
    pub fn finish(self) {
        drop(self.queue);
        let _ = self.thread.join();
    }
}

/// A client that connects in the background and reconnects for as long as it lives (its
/// connection events go to the log as `async_nats: event: ...`).
pub async fn connect(url: &str, name: String) -> Result<async_nats::Client, String> {
    async_nats::ConnectOptions::new()
        .name(name)
        .retry_on_initial_connect()
        .max_reconnects(None)
        .connect(url)
        .await
        .map_err(|e| e.to_string())
}

/// The thread of an alert sink `nats://HOST:PORT/SUBJECT` (see [`super::sink`]): each alert
/// is rendered and published to `subject`, kept in hand until the server took it. Where the
/// server runs JetStream and a stream takes the subject, the stream's acknowledgement is
/// waited for, so alerts outlive a collector that is away (at least once: an alert whose
/// acknowledgement was lost is sent again); otherwise core NATS, flushed to the server. The
/// client reconnects by itself; an alert is given up only at exit after the drain timeout.
pub(super) fn publish_alerts(url: &str, subject: &str, format: AlertFormat, rx: Receiver<Message>, sink: SinkThread) {
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("alert sink {url}: {e}");
            sink.lose_all(&rx);
            return;
        }
    };
    let client = match runtime.block_on(connect(url, "floodwatch alerts".into())) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("alert sink {url}: {e}");
            sink.lose_all(&rx);
            return;
        }
    };
    // The JetStream context starts tasks of its own: on this runtime.
    let _runtime_context = runtime.enter();
    let jetstream = async_nats::jetstream::new(client.clone());
    let mut no_stream_said = false;
    while let Ok(message) = rx.recv() {
        let Message::Alert(alert) = message else { continue };
        sink.stats.queued.fetch_sub(1, Ordering::Relaxed);
        let payload = match render(&alert, format) {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!("alert sink {url}: alert not rendered: {e}");
                sink.stats.dropped_failed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        };
        let mut backoff = BACKOFF_MIN;
        let mut failing = false;
        loop {
            let sent = runtime.block_on(async {
                if client.server_info().jetstream {
                    match jetstream.publish(subject.to_string(), payload.clone().into()).await {
                        Ok(ack) => match tokio::time::timeout(WRITE_TIMEOUT, ack).await {
                            Ok(Ok(_)) => return Ok(()),
                            Ok(Err(e)) if e.kind() == async_nats::jetstream::context::PublishErrorKind::StreamNotFound => {
                                if !no_stream_said {
                                    tracing::warn!("alert sink {url}: no JetStream stream takes {subject}: alerts go out without persistence");
                                    no_stream_said = true;
                                }
                            }
                            Ok(Err(e)) => return Err(e.to_string()),
                            Err(_) => return Err("no acknowledgement in time".to_string()),
                        },
                        Err(e) => return Err(e.to_string()),
                    }
                }
                client.publish(subject.to_string(), payload.clone().into()).await.map_err(|e| e.to_string())?;
                match tokio::time::timeout(WRITE_TIMEOUT, client.flush()).await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err("not flushed in time".to_string()),
                }
            });
            match sent {
                Ok(()) => {
                    sink.stats.delivered.fetch_add(1, Ordering::Relaxed);
                    if failing {
                        sink.stats.reconnects.fetch_add(1, Ordering::Relaxed);
                        tracing::info!("alert sink {url}: delivering again");
                    }
                    break;
                }
                Err(e) if sink.giving_up() => {
                    tracing::error!("alert sink {url}: gave up delivering alerts at exit: {e}");
                    sink.stats.dropped_failed.fetch_add(1, Ordering::Relaxed);
                    sink.lose_all(&rx);
                    return;
                }
                Err(e) => {
                    if !failing {
                        tracing::warn!("alert sink {url}: {e}; trying again with backoff");
                        failing = true;
                    }
                    std::thread::sleep(backoff);
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
            }
        }
    }
}
