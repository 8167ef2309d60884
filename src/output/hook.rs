//! The action hook: `on_attack = ["/path/to/cmd", "arg"]` runs a command per attack start
//! and end with the alert JSON on stdin.
//!
//! The command line is the operator's alone: argv is used as given, never through a shell,
//! and nothing from the traffic is ever put in it (the alert, which carries attacker-chosen
//! addresses, only goes to stdin; the environment gets FLOODWATCH_EVENT, FLOODWATCH_KIND and
//! FLOODWATCH_ATTACK_ID, which floodwatch itself spells). Runs are bounded by a timeout and a
//! rate limit, happen in their own thread, and their failures are logged, never fatal.

use crate::analyze::EventKind;
use crate::output::alert::{render, Alert, AlertFormat};
use crate::output::metrics::Metrics;
use std::io::Write;
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Alerts waiting for the hook at most; more are dropped and counted.
const QUEUE: usize = 256;
const POLL: Duration = Duration::from_millis(20);

#[derive(Clone, Debug, PartialEq)]
pub struct HookOptions {
    pub argv: Vec<String>,
    pub timeout: Duration,
    /// Runs allowed per minute (a token bucket that refills continuously).
    pub per_minute: u32,
}

impl HookOptions {
    pub fn validate(&self) -> Result<(), String> {
        let Some(program) = self.argv.first() else {
            return Err("give the command as a list, e.g. [\"/usr/local/bin/notify\", \"--team\", \"noc\"]".into());
        };
        if !program.starts_with('/') {
            return Err(format!("{program:?} must be an absolute path (no PATH lookup, no shell)"));
        }
        if self.per_minute == 0 || self.timeout.is_zero() {
            return Err("the timeout and the rate limit must be above zero".into());
        }
        Ok(())
    }
}

pub struct ActionHook {
    tx: SyncSender<Arc<Alert>>,
    thread: JoinHandle<()>,
    metrics: Arc<Metrics>,
}

impl ActionHook {
    pub fn start(opts: HookOptions, metrics: Arc<Metrics>) -> Result<ActionHook, String> {
        opts.validate().map_err(|e| format!("on_attack: {e}"))?;
        let (tx, rx) = mpsc::sync_channel::<Arc<Alert>>(QUEUE);
        let m = metrics.clone();
        let thread = std::thread::Builder::new()
            .name("on-attack".into())
            .spawn(move || {
                let mut bucket = TokenBucket::new(opts.per_minute);
                for alert in rx {
                    if !bucket.take(Instant::now()) {
                        m.hook_dropped.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(attack_id = %alert.event.attack_id, "on_attack rate limit ({} per minute) reached: not run", opts.per_minute);
                        continue;
                    }
                    match run(&opts, &alert) {
                        Ok(()) => m.hook_runs.fetch_add(1, Ordering::Relaxed),
                        Err(e) => {
                            tracing::error!(command = %opts.argv[0], attack_id = %alert.event.attack_id, "on_attack: {e}");
                            m.hook_failures.fetch_add(1, Ordering::Relaxed)
                        }
                    };
                }
            })
            .map_err(|e| format!("cannot start the on_attack thread: {e}"))?;
        Ok(ActionHook { tx, thread, metrics })
    }

    /// Queues a run for attack starts and ends; never waits.
    pub fn send(&self, alert: &Arc<Alert>) {
        if alert.event.event == EventKind::Update {
            return;
        }
        if let Err(TrySendError::Full(_)) = self.tx.try_send(alert.clone()) {
            self.metrics.hook_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Lets queued runs finish.
    pub fn finish(self) {
        drop(self.tx);
        let _ = self.thread.join();
    }
}

fn run(opts: &HookOptions, alert: &Alert) -> Result<(), String> {
    let mut json = render(alert, AlertFormat::Native).map_err(|e| e.to_string())?;
    json.push(b'\n');
    let e = &alert.event;
    let mut child = Command::new(&opts.argv[0])
        .args(&opts.argv[1..])
        .env("FLOODWATCH_EVENT", e.event.name())
        .env("FLOODWATCH_KIND", e.kind.name())
        .env("FLOODWATCH_ATTACK_ID", &e.attack_id)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|err| format!("cannot run: {err}"))?;
    // A child that does not read its stdin must not hold us: write from a helper thread.
    let writer = child.stdin.take().map(|mut stdin| {
        std::thread::spawn(move || {
            let _ = stdin.write_all(&json);
        })
    });
    let deadline = Instant::now() + opts.timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ok(status),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                break Err(format!("killed after the {:?} timeout", opts.timeout));
            }
            Ok(None) => std::thread::sleep(POLL),
            Err(err) => break Err(format!("cannot wait for it: {err}")),
        }
    };
    if let Some(w) = writer {
        let _ = w.join();
    }
    match status? {
        s if s.success() => Ok(()),
        s => Err(format!("exited with {s}")),
    }
}

struct TokenBucket {
    per_minute: f64,
    tokens: f64,
    last: Option<Instant>,
}

impl TokenBucket {
    fn new(per_minute: u32) -> TokenBucket {
        TokenBucket { per_minute: per_minute as f64, tokens: per_minute as f64, last: None }
    }

    fn take(&mut self, now: Instant) -> bool {
        if let Some(last) = self.last {
            let refill = now.duration_since(last).as_secs_f64() * self.per_minute / 60.0;
            self.tokens = (self.tokens + refill).min(self.per_minute);
        }
        self.last = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bucket_allows_a_burst_then_the_rate() {
        let mut b = TokenBucket::new(2);
        let t0 = Instant::now();
        assert!(b.take(t0) && b.take(t0));
        assert!(!b.take(t0));
        assert!(!b.take(t0 + Duration::from_secs(20)));
        assert!(b.take(t0 + Duration::from_secs(31)));
    }

    #[test]
    fn options_are_checked() {
        let ok = HookOptions { argv: vec!["/bin/true".into()], timeout: Duration::from_secs(1), per_minute: 1 };
        assert!(ok.validate().is_ok());
        let relative = HookOptions { argv: vec!["notify".into()], ..ok.clone() };
        assert!(relative.validate().unwrap_err().contains("absolute path"));
        assert!(HookOptions { argv: vec![], ..ok }.validate().is_err());
    }
}
