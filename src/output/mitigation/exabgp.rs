//! How announcements reach ExaBGP: appended to a file (`tail -F` as ExaBGP's process; for
//! audit and tests: nothing is rebuilt after a restart), or sent to the relay ExaBGP runs
//! (`unix:PATH`), which survives a floodwatch restart and is told the whole set again
//! whenever the link comes back (ExaBGP restarted, relay restarted).
//!
//! The relay link is level-triggered: the analyzer's thread only changes the set of routes it
//! wants out; the link's thread sends the difference from what the relay last heard, so
//! nothing queues, nothing is dropped, and a reconnect sends the set as it is now.

use super::MitigationCounters;
use crate::output::sink::peer_open;
use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Where the lines go: `unix:PATH` (the relay's socket) or a file path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    File(PathBuf),
    Relay(PathBuf),
}

impl std::str::FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Target, String> {
        match text.strip_prefix("unix:") {
            Some("") => Err("unix: needs the relay's socket path".into()),
            Some(path) => Ok(Target::Relay(path.into())),
            None if text.is_empty() => Err("an empty path".into()),
            None => Ok(Target::File(text.into())),
        }
    }
}

/// The messages of the relay protocol, one per line: `sync`, then `announce ROUTE` for every
/// route wanted, then `synced` (the whole set); after it, `announce ROUTE` and
/// `withdraw ROUTE` one by one.
pub const SYNC: &str = "sync";
pub const SYNCED: &str = "synced";

/// What is done with a route.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verb {
    Announce,
    Withdraw,
}

impl Verb {
    pub fn word(self) -> &'static str {
        match self {
            Verb::Announce => "announce",
            Verb::Withdraw => "withdraw",
        }
    }
}

pub enum Link {
    File(File),
    Relay(RelayLink),
    DryRun,
}

impl Link {
    /// `counters`: where the relay link tells whether it is up, and how often it came back.
    pub fn open(target: &Target, drain: Duration, counters: Arc<MitigationCounters>) -> Result<Link, String> {
        match target {
            Target::File(path) => OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .map(Link::File)
                .map_err(|e| format!("exabgp {}: {e}", path.display())),
            Target::Relay(path) => Ok(Link::Relay(RelayLink::start(path.clone(), drain, counters)?)),
        }
    }

    pub fn send(&mut self, verb: Verb, route: &str) -> io::Result<()> {
        match self {
            Link::File(f) => writeln!(f, "{} {route}", verb.word()),
            Link::Relay(r) => {
                r.set(route, verb == Verb::Announce);
                Ok(())
            }
            Link::DryRun => Ok(()),
        }
    }

    /// Delivers what is pending (the relay link: until its drain time).
    pub fn finish(self) {
        if let Link::Relay(r) = self {
            r.finish();
        }
    }
}

#[derive(Default)]
struct Wanted {
    routes: BTreeSet<String>,
    /// Bumped at every change, so the link's thread knows to look.
    generation: u64,
    closing: bool,
}

struct Shared {
    wanted: Mutex<Wanted>,
    changed: Condvar,
    counters: Arc<MitigationCounters>,
}

/// The link to the relay, and its thread.
pub struct RelayLink {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// How often a link down is tried again, and one up checked.
const RETRY: Duration = Duration::from_secs(1);

impl RelayLink {
    fn start(path: PathBuf, drain: Duration, counters: Arc<MitigationCounters>) -> Result<RelayLink, String> {
        let shared = Arc::new(Shared { wanted: Mutex::default(), changed: Condvar::new(), counters });
        let s = shared.clone();
        let thread = std::thread::Builder::new()
            .name("exabgp-relay-link".into())
            .spawn(move || link_thread(&path, &s, drain))
            .map_err(|e| format!("exabgp: cannot start the relay link: {e}"))?;
        Ok(RelayLink { shared, thread: Some(thread) })
    }

    fn set(&self, route: &str, announced: bool) {
        if let Ok(mut w) = self.shared.wanted.lock() {
            let changed = if announced { w.routes.insert(route.to_string()) } else { w.routes.remove(route) };
            if changed {
                w.generation += 1;
                self.shared.changed.notify_one();
            }
        }
    }

    fn finish(mut self) {
        if let Ok(mut w) = self.shared.wanted.lock() {
            w.closing = true;
            self.shared.changed.notify_one();
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn connect(path: &Path, wanted: &BTreeSet<String>) -> io::Result<UnixStream> {
    let mut stream = UnixStream::connect(path)?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut text = format!("{SYNC}\n");
    for route in wanted {
        text.push_str(&format!("announce {route}\n"));
    }
    text.push_str(SYNCED);
    text.push('\n');
    stream.write_all(text.as_bytes())?;
    Ok(stream)
}

fn link_thread(path: &Path, shared: &Shared, drain: Duration) {
    let mut stream: Option<UnixStream> = None;
    // What the relay has been told.
    let mut told: BTreeSet<String> = BTreeSet::new();
    let mut ever_connected = false;
    let mut down_logged = false;
    let mut deadline: Option<Instant> = None;
    loop {
        let (wanted, closing, generation) = match shared.wanted.lock() {
            Ok(w) => (w.routes.clone(), w.closing, w.generation),
            Err(_) => return,
        };
        if closing && deadline.is_none() {
            deadline = Some(Instant::now() + drain);
        }
        if stream.as_ref().is_some_and(|s| !peer_open(s)) {
            tracing::warn!(path = %path.display(), "exabgp relay closed the link; reconnecting");
            stream = None;
            shared.counters.relay_connected.store(false, Ordering::Relaxed);
        }
        match stream.as_mut() {
            None => match connect(path, &wanted) {
                Ok(s) => {
                    tracing::info!(path = %path.display(), routes = wanted.len(), "exabgp relay linked: whole set sent");
                    if ever_connected {
                        shared.counters.relay_resyncs.fetch_add(1, Ordering::Relaxed);
                    }
                    (ever_connected, down_logged) = (true, false);
                    told = wanted.clone();
                    stream = Some(s);
                    shared.counters.relay_connected.store(true, Ordering::Relaxed);
                }
                Err(e) if !down_logged => {
                    tracing::warn!(path = %path.display(), "exabgp relay: {e}; trying again every second");
                    down_logged = true;
                }
                Err(_) => {}
            },
            Some(s) if told != wanted => {
                let mut text = String::new();
                for route in told.difference(&wanted) {
                    text.push_str(&format!("withdraw {route}\n"));
                }
                for route in wanted.difference(&told) {
                    text.push_str(&format!("announce {route}\n"));
                }
                match s.write_all(text.as_bytes()) {
                    Ok(()) => told = wanted.clone(),
                    Err(e) => {
                        tracing::warn!(path = %path.display(), "exabgp relay: {e}; reconnecting");
                        stream = None;
                        shared.counters.relay_connected.store(false, Ordering::Relaxed);
                        continue;
                    }
                }
            }
            Some(_) => {}
        }
        let delivered = stream.is_some() && told == wanted;
        if closing && (delivered || deadline.is_some_and(|d| Instant::now() >= d)) {
            if !delivered {
                tracing::warn!(path = %path.display(), "exabgp relay: shutdown's withdrawals not delivered; the relay withdraws after its grace time");
            }
            return;
        }
        if stream.is_none() {
            std::thread::sleep(if closing { Duration::from_millis(100) } else { RETRY });
            continue;
        }
        let Ok(guard) = shared.wanted.lock() else { return };
        let _ = shared.changed.wait_timeout_while(guard, RETRY, |w| w.generation == generation && !w.closing);
    }
}
