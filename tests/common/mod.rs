//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test binary uses a different subset

pub mod netns;

use floodwatch::analyze::DetectionSettings;
use floodwatch::analyze::{Analyzer, AttackEvent, AttackKind, EventKind};
use floodwatch::pipeline::Datagrams;
use floodwatch::replay::{replay, ReplayOutcome};
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// Set by `.ci/run`: a test that would skip for want of a tool, privilege or data fails instead.
pub const REQUIRE_ALL: &str = "FLOODWATCH_REQUIRE_ALL";

/// Call when a prerequisite is missing: prints why and returns (skip), or panics under CI.
pub fn skip(reason: &str) {
    if std::env::var_os(REQUIRE_ALL).is_some() {
        panic!("{REQUIRE_ALL} is set but this test cannot run: {reason}");
    }
    eprintln!("SKIPPED: {reason}");
}

pub fn repo_path(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// `../shared/captures`, the third-party captures beside the repository, if present.
pub fn shared_captures() -> Option<PathBuf> {
    let dir = repo_path("../shared/captures");
    dir.join("manifest.json").is_file().then_some(dir)
}

/// Default settings with a fixed hash key, so estimates are reproducible run to run.
pub fn settings() -> DetectionSettings {
    DetectionSettings { hash_seed: Some(0x5eed), ..DetectionSettings::default() }
}

/// Replays files through the library pipeline and returns every event.
pub fn replay_files(files: &[PathBuf], settings: DetectionSettings) -> (Vec<AttackEvent>, ReplayOutcome) {
    replay_files_reading(files, Datagrams::Packets, settings)
}

/// [`replay_files`], reading telemetry datagrams as `datagrams` says.
pub fn replay_files_reading(
    files: &[PathBuf],
    datagrams: Datagrams,
    settings: DetectionSettings,
) -> (Vec<AttackEvent>, ReplayOutcome) {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let mut analyzer = Analyzer::new(settings);
    let mut events = Vec::new();
    let outcome = replay(
        &names,
        datagrams,
        &mut analyzer,
        &mut |e: &AttackEvent| {
            events.push(e.clone());
            Ok(())
        },
        None,
    )
    .expect("collecting events in memory cannot fail");
    (events, outcome)
}

pub fn starts(events: &[AttackEvent]) -> Vec<&AttackEvent> {
    events.iter().filter(|e| e.event == EventKind::Start).collect()
}

pub fn ends(events: &[AttackEvent]) -> Vec<&AttackEvent> {
    events.iter().filter(|e| e.event == EventKind::End).collect()
}

/// (victim, kind) pairs that started, deduplicated and sorted; the victim as alerts write it
/// (an address, or a prefix such as `203.0.113.0/24`).
pub fn attacked(events: &[AttackEvent]) -> BTreeSet<(String, AttackKind)> {
    starts(events).into_iter().map(|e| (e.victim_text(), e.kind)).collect()
}

/// Precision and recall of `found` against `truth`.
pub fn precision_recall(found: &[IpAddr], truth: &[IpAddr]) -> (f64, f64) {
    let found: BTreeSet<_> = found.iter().collect();
    let truth: BTreeSet<_> = truth.iter().collect();
    let hits = found.intersection(&truth).count() as f64;
    let precision = if found.is_empty() { 1.0 } else { hits / found.len() as f64 };
    let recall = if truth.is_empty() { 1.0 } else { hits / truth.len() as f64 };
    (precision, recall)
}

pub fn kind_named(name: &str) -> AttackKind {
    *AttackKind::ALL.iter().find(|k| k.name() == name).unwrap_or_else(|| panic!("unknown kind {name}"))
}

/// A tool's path: on PATH, or in /usr/sbin and /sbin (root's tools when PATH is a user's).
pub fn find_tool(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

pub fn on_path(tool: &str) -> bool {
    find_tool(tool).is_some()
}

/// A test's scratch directory (`floodwatch-NAME-PID` under the temp dir), removed when the
/// test passes, kept for inspection when it fails.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("floodwatch-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("the temp dir is writable");
        Scratch(dir)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl std::ops::Deref for Scratch {
    type Target = Path;

    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("files of the failed test kept in {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// A classic little-endian µs pcap file: its header and its records (16-byte header + data).
pub struct Pcap {
    pub header: Vec<u8>,
    pub records: Vec<Vec<u8>>,
}

impl Pcap {
    pub fn read(path: &Path) -> Pcap {
        let data = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(data.get(..4), Some(&[0xd4, 0xc3, 0xb2, 0xa1][..]), "{}: not a LE µs pcap", path.display());
        let mut records = Vec::new();
        let mut at = 24;
        while at + 16 <= data.len() {
            let caplen = u32::from_le_bytes(data[at + 8..at + 12].try_into().unwrap()) as usize;
            records.push(data[at..at + 16 + caplen].to_vec());
            at += 16 + caplen;
        }
        assert_eq!(at, data.len(), "{}: trailing bytes", path.display());
        Pcap { header: data[..24].to_vec(), records }
    }
}
