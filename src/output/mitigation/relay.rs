//! `floodwatch exabgp-relay --socket PATH`: the program ExaBGP runs as its `process`. It
//! listens on a Unix socket for floodwatch, writes ExaBGP API lines on its standard output,
//! and keeps the set of routes announced, so that:
//! - a floodwatch restart announces nothing twice: the new floodwatch sends its whole set
//!   (`sync` ... `synced`), and only the difference reaches ExaBGP;
//! - a floodwatch that crashed, or stays away, leaves nothing behind for long: routes it no
//!   longer wants are withdrawn after the grace time unless it asks for them again by then;
//! - an ExaBGP restart (which restarts the relay) gets the whole set again, as floodwatch
//!   resends it when its link comes back.
//!
//! [`Relay`] is the deterministic core (lines in, ExaBGP lines out, time given); [`run`] its
//! I/O: one thread accepts connections, one reads each, one watches standard input (its end
//! means ExaBGP is gone).

use super::exabgp::{SYNC, SYNCED};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::Shutdown;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// Longest line taken from floodwatch, and most routes held: what a confused or hostile
/// client can make the relay keep.
pub const MAX_LINE: usize = 2048;
pub const MAX_ROUTES: usize = 10_000;
/// Connections open at once (floodwatch, and whatever else connects: a probe, a second relay
/// checking the socket); more are closed at once.
const MAX_CLIENTS: usize = 8;

/// The routes announced, and those waiting to be withdrawn.
pub struct Relay {
    grace: Duration,
    held: BTreeSet<String>,
    /// Routes no client wants any more, withdrawn at their instant unless asked for again.
    stale: BTreeMap<String, Instant>,
    /// The set a client is sending (between `sync` and `synced`).
    syncing: Option<BTreeSet<String>>,
}

impl Relay {
    pub fn new(grace: Duration) -> Relay {
        Relay { grace, held: BTreeSet::new(), stale: BTreeMap::new(), syncing: None }
    }

    /// The client left: every route waits its grace time.
    pub fn disconnected(&mut self, now: Instant) {
        self.syncing = None;
        for route in &self.held {
            self.stale.entry(route.clone()).or_insert(now + self.grace);
        }
    }

    /// One line from the client; the ExaBGP lines it makes go to `out`.
    pub fn line(&mut self, line: &str, now: Instant, out: &mut Vec<String>) -> Result<(), String> {
        let line = line.trim_end_matches(['\n', '\r']);
        if line == SYNC {
            self.syncing = Some(BTreeSet::new());
            return Ok(());
        }
        if line == SYNCED {
            let Some(wanted) = self.syncing.take() else { return Err("synced without sync".into()) };
            for route in &self.held {
                if !wanted.contains(route) {
                    self.stale.entry(route.clone()).or_insert(now + self.grace);
                }
            }
            // Every route of the set is tried, whatever one of them meets.
            let mut refused = Ok(());
            for route in wanted {
                if let Err(e) = self.announce(route, out) {
                    refused = Err(e);
                }
            }
            return refused;
        }
        let (verb, route) = line.split_once(' ').ok_or_else(|| format!("not a relay message: {line:?}"))?;
        check_route(route)?;
        match (verb, self.syncing.as_mut()) {
            ("announce", Some(set)) => {
                if set.len() >= MAX_ROUTES {
                    return Err(format!("more than {MAX_ROUTES} routes in one sync"));
                }
                set.insert(route.to_string());
                Ok(())
            }
            ("announce", None) => self.announce(route.to_string(), out),
            ("withdraw", None) => {
                self.stale.remove(route);
                if self.held.remove(route) {
                    out.push(format!("withdraw {route}"));
                }
                Ok(())
            }
            _ => Err(format!("not a relay message: {line:?}")),
        }
    }

    fn announce(&mut self, route: String, out: &mut Vec<String>) -> Result<(), String> {
        self.stale.remove(&route);
        if self.held.contains(&route) {
            return Ok(());
        }
        if self.held.len() >= MAX_ROUTES {
            return Err(format!("{MAX_ROUTES} routes held already: {route}"));
        }
        out.push(format!("announce {route}"));
        self.held.insert(route);
        Ok(())
    }

    /// Withdraws the stale routes whose grace time is over.
    pub fn expire(&mut self, now: Instant, out: &mut Vec<String>) {
        let due: Vec<String> = self.stale.iter().filter(|(_, at)| **at <= now).map(|(r, _)| r.clone()).collect();
        for route in due {
            self.stale.remove(&route);
            self.held.remove(&route);
            out.push(format!("withdraw {route}"));
        }
    }

    /// When [`Relay::expire`] has work next.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.stale.values().min().copied()
    }
}

/// Only routes go to ExaBGP: a FlowSpec rule or a route, printable ASCII on one line, so a
/// client cannot slip other API commands (`shutdown`, `neighbor ... teardown`) through.
fn check_route(route: &str) -> Result<(), String> {
    if !(route.starts_with("flow route ") || route.starts_with("route ")) {
        return Err(format!("not a route: {route:?}"));
    }
    if !route.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        return Err(format!("not printable ASCII: {route:?}"));
    }
    Ok(())
}

enum Input {
    Connected(u64, UnixStream),
    Line(u64, Vec<u8>),
    Closed(u64),
    ExabgpGone,
}

/// Binds `socket`, taking over a stale socket file but never a live relay's.
fn listen(socket: &Path) -> Result<UnixListener, String> {
    if socket.exists() {
        if UnixStream::connect(socket).is_ok() {
            return Err(format!("{}: another relay listens there", socket.display()));
        }
        std::fs::remove_file(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    }
    let listener = UnixListener::bind(socket).map_err(|e| format!("{}: {e}", socket.display()))?;
    // floodwatch and ExaBGP may run as different users of one group.
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o660))
        .map_err(|e| format!("{}: {e}", socket.display()))?;
    Ok(listener)
}

/// Passes on the client's whole lines: a line the end of the stream cut short is never acted
/// on (it may have lost its last words), nor any part of one too long.
fn read_client(id: u64, stream: UnixStream, tx: mpsc::SyncSender<Input>) {
    let mut reader = BufReader::new(stream);
    let mut skipping = false;
    loop {
        let mut line = Vec::new();
        match reader.by_ref().take(MAX_LINE as u64 + 1).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) if line.last() != Some(&b'\n') => {
                if line.len() <= MAX_LINE {
                    break;
                }
                if !skipping {
                    tracing::warn!("refused: a line longer than {MAX_LINE} bytes");
                }
                skipping = true;
            }
            Ok(_) if skipping => skipping = false,
            Ok(_) => {
                if tx.send(Input::Line(id, line)).is_err() {
                    return;
                }
            }
        }
    }
    let _ = tx.send(Input::Closed(id));
}

/// Runs until ExaBGP goes away (standard input ends or output fails).
pub fn run(socket: PathBuf, grace: Duration) -> Result<(), String> {
    let listener = listen(&socket)?;
    tracing::info!(socket = %socket.display(), grace_s = grace.as_secs_f64(), "exabgp relay listening");
    let (tx, rx) = mpsc::sync_channel(1024);
    let accept_tx = tx.clone();
    std::thread::spawn(move || {
        for (id, stream) in (0u64..).zip(listener.incoming()) {
            let Ok(stream) = stream else { continue };
            let Ok(ours) = stream.try_clone() else { continue };
            if accept_tx.send(Input::Connected(id, ours)).is_err() {
                return;
            }
            let tx = accept_tx.clone();
            std::thread::spawn(move || read_client(id, stream, tx));
        }
    });
    std::thread::spawn(move || {
        let _ = io::copy(&mut io::stdin().lock(), &mut io::sink());
        let _ = tx.send(Input::ExabgpGone);
    });
    let result = serve(&rx, grace);
    let _ = std::fs::remove_file(&socket);
    result
}

/// The client whose `sync` came last is floodwatch; connections that never sent one (a probe,
/// a health check) change nothing. A second floodwatch's `sync` closes the first one's link.
fn serve(rx: &mpsc::Receiver<Input>, grace: Duration) -> Result<(), String> {
    let mut relay = Relay::new(grace);
    let mut streams: HashMap<u64, UnixStream> = HashMap::new();
    let mut client: Option<u64> = None;
    let mut stdout = io::stdout().lock();
    loop {
        let wait =
            relay.next_expiry().map_or(Duration::from_secs(3600), |at| at.saturating_duration_since(Instant::now()));
        let input = match rx.recv_timeout(wait) {
            Ok(i) => Some(i),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(()),
        };
        let now = Instant::now();
        let mut out = Vec::new();
        match input {
            Some(Input::Connected(id, stream)) => {
                if streams.len() >= MAX_CLIENTS {
                    tracing::warn!("refused: {MAX_CLIENTS} connections open already");
                    let _ = stream.shutdown(Shutdown::Both);
                } else {
                    streams.insert(id, stream);
                }
            }
            Some(Input::Line(id, line)) => {
                let text = String::from_utf8_lossy(&line);
                if text.trim_end() == SYNC && client != Some(id) {
                    if let Some(earlier) = client.and_then(|c| streams.get(&c)) {
                        tracing::warn!("another floodwatch sent its set: the earlier one's link is closed");
                        let _ = earlier.shutdown(Shutdown::Both);
                    }
                    tracing::info!("floodwatch connected");
                    client = Some(id);
                }
                let result = if client != Some(id) {
                    Err("a connection that has not sent its set (sync)".to_string())
                } else {
                    std::str::from_utf8(&line)
                        .map_err(|_| "not UTF-8".to_string())
                        .and_then(|l| relay.line(l, now, &mut out))
                };
                if let Err(e) = result {
                    tracing::warn!("refused: {e}");
                }
            }
            Some(Input::Closed(id)) => {
                streams.remove(&id);
                if client == Some(id) {
                    tracing::warn!(
                        "floodwatch left: its routes are withdrawn after {} s unless it comes back",
                        grace.as_secs_f64()
                    );
                    client = None;
                    relay.disconnected(now);
                }
            }
            Some(Input::ExabgpGone) => return Ok(()),
            None => {}
        }
        relay.expire(now, &mut out);
        for line in out {
            tracing::info!("{line}");
            writeln!(stdout, "{line}").and_then(|_| stdout.flush()).map_err(|e| format!("writing to ExaBGP: {e}"))?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str =
        "flow route { match { destination 192.0.2.1/32; protocol udp; source-port =53; } then { discard; } }";
    const B: &str = "route 192.0.2.1/32 next-hop self community [ 65535:666 ]";

    fn feed(relay: &mut Relay, lines: &[&str], now: Instant) -> Vec<String> {
        let mut out = Vec::new();
        for l in lines {
            relay.line(l, now, &mut out).unwrap();
        }
        out
    }

    #[test]
    fn a_route_asked_for_again_after_a_restart_is_not_announced_twice() {
        let t0 = Instant::now();
        let mut r = Relay::new(Duration::from_secs(30));
        let out = feed(&mut r, &["sync", "synced", &format!("announce {A}"), &format!("announce {B}")], t0);
        assert_eq!(out, [format!("announce {A}"), format!("announce {B}")]);
        // floodwatch crashes; the new one wants A again (re-detected), and B no more.
        r.disconnected(t0 + Duration::from_secs(1));
        let out = feed(&mut r, &["sync", &format!("announce {A}"), "synced"], t0 + Duration::from_secs(2));
        assert!(out.is_empty(), "{out:?}");
        let mut out = Vec::new();
        r.expire(t0 + Duration::from_secs(30), &mut out);
        assert!(out.is_empty(), "within the grace time: {out:?}");
        r.expire(t0 + Duration::from_secs(31), &mut out);
        assert_eq!(out, [format!("withdraw {B}")], "B's grace ran from the disconnection");
        assert_eq!(r.next_expiry(), None);
    }

    #[test]
    fn a_route_withdrawn_or_asked_for_within_the_grace_time_is_not_withdrawn_again() {
        let t0 = Instant::now();
        let mut r = Relay::new(Duration::from_secs(30));
        feed(&mut r, &[&format!("announce {A}"), &format!("announce {B}")], t0);
        r.disconnected(t0);
        let out = feed(&mut r, &["sync", "synced", &format!("announce {A}"), &format!("withdraw {B}")], t0);
        assert_eq!(out, [format!("withdraw {B}")]);
        let mut out = Vec::new();
        r.expire(t0 + Duration::from_secs(60), &mut out);
        assert!(out.is_empty(), "{out:?}");
        // A second withdrawal of what is gone says nothing to ExaBGP.
        assert!(feed(&mut r, &[&format!("withdraw {B}")], t0).is_empty());
    }

    #[test]
    fn only_whole_lines_are_passed_on() {
        let (mut ours, theirs) = UnixStream::pair().unwrap();
        let (tx, rx) = mpsc::sync_channel(16);
        let reader = std::thread::spawn(move || read_client(7, theirs, tx));
        let long = format!("announce {}\n", "x".repeat(MAX_LINE * 2));
        // A whole line, one too long (dropped whole), a whole one, and one the end cuts short.
        let cut = "announce route 192.0.2.1/32 next-hop self community [ 65535:666";
        ours.write_all(format!("sync\n{long}synced\n{cut}").as_bytes()).unwrap();
        drop(ours);
        reader.join().unwrap();
        let got: Vec<String> = rx
            .try_iter()
            .map(|i| match i {
                Input::Line(7, l) => String::from_utf8(l).unwrap(),
                Input::Closed(7) => "closed".into(),
                _ => "other".into(),
            })
            .collect();
        assert_eq!(got, ["sync\n", "synced\n", "closed"]);
    }

    #[test]
    fn only_routes_reach_exabgp() {
        let mut r = Relay::new(Duration::from_secs(30));
        let now = Instant::now();
        let mut out = Vec::new();
        for bad in [
            "shutdown",
            "announce neighbor 192.0.2.1 teardown 2",
            "withdraw route",
            "announce route 192.0.2.1/32 next-hop self\u{7}",
            "synced",
            "sync now",
        ] {
            assert!(r.line(bad, now, &mut out).is_err(), "{bad}");
        }
        assert!(out.is_empty());
        r.line("sync", now, &mut out).unwrap();
        assert!(r.line(&format!("withdraw {A}"), now, &mut out).is_err(), "a sync holds announcements only");
    }
}
