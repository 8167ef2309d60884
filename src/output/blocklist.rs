//! Blocklists for firewalls: the offending sources of running attacks, each with a
//! time-to-live refreshed while its attack lasts, rewritten atomically (temporary file and
//! rename) whenever the list changes, as plain lines, an nftables script, an `ipset restore`
//! file or JSON.
//!
//! Time is packet time, like the analyzer's: a replay writes the lists live capture would.
//! Allowlisted sources are never listed; spoofed floods bring no sources (the analyzer
//! withholds them and its verdict says why).
//!
//! The entries survive a restart: each write of the list also writes them, with their expiry,
//! to `.NAME.state` beside it (atomically too), and a new writer reads them back before it
//! writes its first list. Those expired by the wall clock, or allowlisted since, are dropped:
//! a daemon restarted during an attack keeps its attackers blocked.

use crate::analyze::{AttackEvent, AttackKind};
use crate::capture::live::wall_clock_ns;
use crate::decode::IpKey;
use crate::decode::Prefix;
use crate::output::time::rfc3339_micros;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Version of the state file's layout.
const STATE_VERSION: u32 = 1;

/// An entry as the state file keeps it.
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedEntry {
    ip: IpAddr,
    /// Packet time (live: the wall clock) at which it expires, ns since the epoch.
    expires_ns: i64,
    attack_id: String,
    kind: String,
    victim: String,
}

#[derive(serde::Serialize, serde::Deserialize)]
struct SavedList {
    version: u32,
    entries: Vec<SavedEntry>,
}

/// Default time-to-live of an entry after its attack last reported it.
pub const DEFAULT_TTL_S: u64 = 3600;
/// Most entries a list holds; past this the soonest to expire go first.
pub const MAX_ENTRIES: usize = 1 << 20;
/// The nftables table and ipset set names.
pub const NAME: &str = "floodwatch";

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum BlocklistFormat {
    /// One address per line.
    #[default]
    Plain,
    /// An `nft -f` script that replaces table `inet floodwatch` in one transaction.
    Nft,
    /// An `ipset restore` file for sets floodwatch-v4 and floodwatch-v6.
    Ipset,
    Json,
}

impl FromStr for BlocklistFormat {
    type Err = String;
    fn from_str(s: &str) -> Result<BlocklistFormat, String> {
        match s {
            "plain" => Ok(BlocklistFormat::Plain),
            "nft" => Ok(BlocklistFormat::Nft),
            "ipset" => Ok(BlocklistFormat::Ipset),
            "json" => Ok(BlocklistFormat::Json),
            other => Err(format!("unknown blocklist format {other:?}: expected plain, nft, ipset or json")),
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Entry {
    expires_ns: i64,
    attack_id: String,
    kind: &'static str,
    /// An address, or a prefix.
    victim: String,
}

pub struct BlocklistWriter {
    path: PathBuf,
    format: BlocklistFormat,
    ttl_ns: i64,
    allow: Vec<Prefix>,
    entries: BTreeMap<IpAddr, Entry>,
    /// Earliest expiry among the entries, so `advance` is one comparison when nothing is due.
    next_expiry_ns: i64,
    dirty: bool,
    now_ns: i64,
}

impl BlocklistWriter {
    /// Writes the list at once, so the path exists (and a bad path fails) at start-up: the
    /// entries kept by the last run that have not expired, or none.
    pub fn create(path: &Path, format: BlocklistFormat, ttl_s: u64, allow: Vec<Prefix>) -> io::Result<BlocklistWriter> {
        let mut w = BlocklistWriter {
            path: path.to_path_buf(),
            format,
            ttl_ns: (ttl_s.max(1).min(i64::MAX as u64 / 1_000_000_000) * 1_000_000_000) as i64,
            allow,
            entries: BTreeMap::new(),
            next_expiry_ns: i64::MAX,
            dirty: true,
            now_ns: 0,
        };
        w.restore(wall_clock_ns());
        w.flush()?;
        Ok(w)
    }

    /// `.NAME.state` beside the list.
    fn state_path(&self) -> PathBuf {
        let name = self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        self.path.with_file_name(format!(".{name}.state"))
    }

    /// Reads back the entries the last run kept, but those expired by `now_ns` or allowlisted.
    /// A missing state file is a first start; an unreadable one is logged and ignored.
    fn restore(&mut self, now_ns: i64) {
        let path = self.state_path();
        let text = match std::fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(e) => {
                tracing::warn!(path = %path.display(), "cannot read the blocklist's state: {e}; starting empty");
                return;
            }
        };
        let saved = match serde_json::from_str::<SavedList>(&text) {
            Ok(saved) if saved.version == STATE_VERSION => saved,
            Ok(saved) => {
                tracing::warn!(path = %path.display(), version = saved.version, "unknown blocklist state version; starting empty");
                return;
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), "blocklist state is not valid ({e}); starting empty");
                return;
            }
        };
        let (mut expired, mut allowed) = (0, 0);
        for s in saved.entries {
            let Some(kind) = AttackKind::ALL.iter().find(|k| k.name() == s.kind).map(|k| k.name()) else {
                continue;
            };
            if s.expires_ns <= now_ns {
                expired += 1;
            } else if self.allow.iter().any(|p| p.contains(IpKey::from_ip(s.ip))) {
                allowed += 1;
            } else {
                self.entries
                    .insert(s.ip, Entry { expires_ns: s.expires_ns, attack_id: s.attack_id, kind, victim: s.victim });
            }
        }
        if !self.entries.is_empty() {
            // The list's clock starts at the restart: the entries' remaining times count from it.
            self.now_ns = now_ns;
            self.next_expiry_ns = self.entries.values().map(|e| e.expires_ns).min().unwrap_or(i64::MAX);
            self.evict_over_limit();
        }
        tracing::info!(
            restored = self.entries.len(),
            expired,
            allowlisted = allowed,
            path = %path.display(),
            "blocklist entries kept from the last run"
        );
    }

    /// Lists (or refreshes) the event's offending sources.
    pub fn record(&mut self, e: &AttackEvent) {
        self.now_ns = self.now_ns.max(e.timestamp_ns);
        let expires_ns = e.timestamp_ns.saturating_add(self.ttl_ns);
        for &ip in &e.offending_ips {
            let key = IpKey::from_ip(ip);
            if self.allow.iter().any(|p| p.contains(key)) {
                continue;
            }
            let entry =
                Entry { expires_ns, attack_id: e.attack_id.clone(), kind: e.kind.name(), victim: e.victim_text() };
            match self.entries.get_mut(&ip) {
                Some(old) if old.expires_ns >= expires_ns => continue,
                Some(old) => *old = entry,
                None => {
                    self.entries.insert(ip, entry);
                }
            }
            self.dirty = true;
        }
        self.next_expiry_ns = self.next_expiry_ns.min(expires_ns);
        self.evict_over_limit();
    }

    /// Drops entries whose time-to-live ran out by packet time `now_ns`.
    #[inline]
    pub fn advance(&mut self, now_ns: i64) {
        self.now_ns = self.now_ns.max(now_ns);
        if now_ns < self.next_expiry_ns {
            return;
        }
        let before = self.entries.len();
        self.entries.retain(|_, e| e.expires_ns > now_ns);
        self.next_expiry_ns = self.entries.values().map(|e| e.expires_ns).min().unwrap_or(i64::MAX);
        self.dirty |= self.entries.len() != before;
    }

    fn evict_over_limit(&mut self) {
        if self.entries.len() <= MAX_ENTRIES {
            return;
        }
        let mut by_expiry: Vec<(i64, IpAddr)> = self.entries.iter().map(|(ip, e)| (e.expires_ns, *ip)).collect();
        by_expiry.sort_unstable();
        for (_, ip) in by_expiry.iter().take(self.entries.len() - MAX_ENTRIES) {
            self.entries.remove(ip);
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Rewrites the file if the list changed since the last write: a temporary file beside
    /// it, then a rename, so a firewall never reads half a list.
    pub fn flush(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        // The state first: a list on disk is never ahead of what a restart would restore.
        write_atomically(&self.state_path(), &self.render_state())?;
        write_atomically(&self.path, &self.render())?;
        self.dirty = false;
        Ok(())
    }

    fn render_state(&self) -> String {
        let entries = self
            .entries
            .iter()
            .map(|(ip, e)| SavedEntry {
                ip: *ip,
                expires_ns: e.expires_ns,
                attack_id: e.attack_id.clone(),
                kind: e.kind.to_string(),
                victim: e.victim.clone(),
            })
            .collect();
        let mut text = serde_json::to_string(&SavedList { version: STATE_VERSION, entries }).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Seconds an entry has left at the list's current time (at least 1).
    fn remaining_s(&self, e: &Entry) -> i64 {
        ((e.expires_ns - self.now_ns) / 1_000_000_000).max(1)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        let (v4, v6): (Vec<_>, Vec<_>) = self.entries.iter().partition(|(ip, _)| ip.is_ipv4());
        match self.format {
            BlocklistFormat::Plain => {
                for ip in self.entries.keys() {
                    let _ = writeln!(out, "{ip}");
                }
            }
            BlocklistFormat::Nft => {
                let _ = writeln!(
                    out,
                    "#!/usr/sbin/nft -f\n# floodwatch blocklist: {} sources, written at packet time {}\n\
                     # Replaces table inet {NAME} in one transaction.\n\
                     table inet {NAME} {{}}\ndelete table inet {NAME}\ntable inet {NAME} {{",
                    self.entries.len(),
                    rfc3339_micros(self.now_ns)
                );
                for (set, kind, list) in [("blocklist_v4", "ipv4_addr", &v4), ("blocklist_v6", "ipv6_addr", &v6)] {
                    let _ = writeln!(out, "\tset {set} {{\n\t\ttype {kind}\n\t\tflags timeout");
                    if !list.is_empty() {
                        let elements: Vec<String> =
                            list.iter().map(|(ip, e)| format!("{ip} timeout {}s", self.remaining_s(e))).collect();
                        let _ = writeln!(out, "\t\telements = {{ {} }}", elements.join(",\n\t\t\t     "));
                    }
                    let _ = writeln!(out, "\t}}");
                }
                let _ = writeln!(
                    out,
                    "\tchain prerouting {{\n\t\ttype filter hook prerouting priority raw; policy accept;\n\
                     \t\tip saddr @blocklist_v4 counter drop\n\t\tip6 saddr @blocklist_v6 counter drop\n\t}}\n}}"
                );
            }
            BlocklistFormat::Ipset => {
                let ttl = self.ttl_ns / 1_000_000_000;
                for (family, suffix) in [("inet", "v4"), ("inet6", "v6")] {
                    let _ = writeln!(
                        out,
                        "create {NAME}-{suffix} hash:ip family {family} timeout {ttl} maxelem {MAX_ENTRIES} -exist\n\
                         flush {NAME}-{suffix}"
                    );
                }
                for (suffix, list) in [("v4", &v4), ("v6", &v6)] {
                    for (ip, e) in list.iter() {
                        let _ = writeln!(out, "add {NAME}-{suffix} {ip} timeout {} -exist", self.remaining_s(e));
                    }
                }
            }
            BlocklistFormat::Json => {
                let entries: Vec<serde_json::Value> = self
                    .entries
                    .iter()
                    .map(|(ip, e)| {
                        serde_json::json!({
                            "ip": ip,
                            "expires_at": rfc3339_micros(e.expires_ns),
                            "attack_id": e.attack_id,
                            "kind": e.kind,
                            "victim": e.victim,
                        })
                    })
                    .collect();
                let doc = serde_json::json!({
                    "generated_at": rfc3339_micros(self.now_ns),
                    "ttl_s": self.ttl_ns / 1_000_000_000,
                    "entries": entries,
                });
                out = doc.to_string();
                out.push('\n');
            }
        }
        out
    }
}

/// Writes `text` to a temporary file beside `path`, then renames it over `path`: a reader sees
/// the old file or the new one, never half of one.
fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let write = || -> io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_data()?;
        std::fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        io::Error::new(e.kind(), format!("cannot write blocklist {}: {e}", path.display()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{EventKind, SourceReport};

    const S: i64 = 1_000_000_000;

    fn event(ts: i64, sources: &[&str]) -> AttackEvent {
        AttackEvent {
            timestamp_ns: ts,
            event: EventKind::Start,
            attack_id: "a1".into(),
            kind: AttackKind::SynFlood,
            victim: "192.0.2.1".parse().unwrap(),
            victim_prefix: None,
            victim_hosts: None,
            victim_ports: vec![],
            protocol: "tcp",
            service: None,
            service_port: None,
            pps: 0,
            bps: 0,
            peak_pps: 0,
            threshold_pps: 0,
            started_at_ns: ts,
            packets: 0,
            bytes: 0,
            reason: String::new(),
            sources: SourceReport { distinct_estimate: 0, spoofed_likely: false, verdict: String::new(), top: vec![] },
            offending_ips: sources.iter().map(|s| s.parse().unwrap()).collect(),
            onset_ns: ts,
            end: None,
            telemetry: None,
            sensors: Vec::new(),
        }
    }

    fn writer(dir: &Path, format: BlocklistFormat) -> BlocklistWriter {
        let allow = vec![Prefix::parse("10.0.0.0/8").unwrap()];
        BlocklistWriter::create(&dir.join("list"), format, 60, allow).unwrap()
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fw-blocklist-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn ttl_refresh_expiry_and_allowlist() {
        let dir = tmpdir("ttl");
        let mut w = writer(&dir, BlocklistFormat::Plain);
        assert_eq!(std::fs::read_to_string(dir.join("list")).unwrap(), "");
        w.record(&event(100 * S, &["198.51.100.2", "10.1.2.3", "2001:db8::1"]));
        w.flush().unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("list")).unwrap(), "198.51.100.2\n2001:db8::1\n");
        // Refreshed at 150 s: lives until 210 s although first listed at 100 s.
        w.record(&event(150 * S, &["198.51.100.2"]));
        w.advance(170 * S);
        assert_eq!(w.len(), 1);
        w.advance(210 * S);
        assert!(w.is_empty());
        w.flush().unwrap();
        assert_eq!(std::fs::read_to_string(dir.join("list")).unwrap(), "");
        let mut files: Vec<_> =
            std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()?.file_name().into_string().ok()).collect();
        files.sort();
        assert_eq!(files, [".list.state", "list"], "no temporary files left behind");
    }

    #[test]
    fn nft_ipset_json_shapes() {
        let dir = tmpdir("shapes");
        for (format, want) in [
            (BlocklistFormat::Nft, "elements = { 198.51.100.2 timeout 60s }"),
            (BlocklistFormat::Ipset, "add floodwatch-v6 2001:db8::1 timeout 60 -exist"),
            (BlocklistFormat::Json, "\"ip\":\"2001:db8::1\""),
        ] {
            let mut w = writer(&dir, format);
            w.record(&event(100 * S, &["198.51.100.2", "2001:db8::1"]));
            w.flush().unwrap();
            let text = std::fs::read_to_string(dir.join("list")).unwrap();
            assert!(text.contains(want), "{format:?}: {text}");
        }
    }

    #[test]
    fn entries_survive_a_restart_with_their_remaining_time_but_not_expired_or_newly_allowed_ones() {
        let dir = tmpdir("restart");
        let now = wall_clock_ns();
        let mut w = writer(&dir, BlocklistFormat::Nft);
        // Listed 10 s ago with a 60 s TTL: 50 s left. Listed 2 minutes ago: expired.
        w.record(&event(now - 10 * S, &["198.51.100.7", "198.51.100.8"]));
        w.record(&event(now - 120 * S, &["203.0.113.9"]));
        w.flush().unwrap();
        drop(w);
        // The new run allowlists 198.51.100.8 besides 10/8.
        let allow = vec![Prefix::parse("10.0.0.0/8").unwrap(), Prefix::parse("198.51.100.8").unwrap()];
        let w = BlocklistWriter::create(&dir.join("list"), BlocklistFormat::Nft, 60, allow).unwrap();
        assert_eq!(w.entries.keys().map(|ip| ip.to_string()).collect::<Vec<_>>(), ["198.51.100.7"]);
        // Its first list, written at start-up, holds it with the time it had left.
        let text = std::fs::read_to_string(dir.join("list")).unwrap();
        let timeout = text.split("198.51.100.7 timeout ").nth(1).and_then(|t| t.split('s').next()).unwrap();
        let left: i64 = timeout.parse().unwrap();
        assert!((45..=50).contains(&left), "{left} s left: {text}");
        assert!(!text.contains("198.51.100.8") && !text.contains("203.0.113.9"), "{text}");
    }

    #[test]
    fn a_damaged_state_file_starts_an_empty_list() {
        let dir = tmpdir("damaged");
        std::fs::write(dir.join(".list.state"), "{\"version\":1,\"entries\":[{\"ip\":").unwrap();
        let w = writer(&dir, BlocklistFormat::Plain);
        assert!(w.is_empty());
        assert_eq!(std::fs::read_to_string(dir.join("list")).unwrap(), "");
    }
}
