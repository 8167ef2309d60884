//! Adversarial traffic (robustness issue, acceptance point 3). Each test generates one capture
//! with `capgen::adversarial`, replays it through the library pipeline
//! (`common::replay_files` with `common::settings()`), and checks the alerts it must give (or
//! not give) and that the process's peak RSS grew by less than [`RSS_BOUND`] during the replay.
//!
//! # The memory bound
//!
//! Everything the analyzer keeps is sized when it starts, whatever the traffic:
//!
//! * victim table: 16,384 slots × (10 ticks × 15 counters × 4 B + 15 sums × 8 B + ~80 B of
//!   metadata) ≈ 13 MiB;
//! * back-fill ring: 65,536 records × 64 B = 4 MiB; handshake table: 2^16 × 8 B = 0.5 MiB;
//! * trackers, made only as victims are watched: Space-Saving of 4,096 counters (~200 KiB) and
//!   a HyperLogLog of 2^15 registers (32 KiB) each; these cases watch at most a handful at
//!   once (all 256 would be ~58 MiB);
//! * the reader's buffer (it grows to hold a 64 KiB frame) and the collected events.
//!
//! About 20 MiB in all, so 64 MiB bounds every case with room, while anything that grows per
//! source or per packet breaks it: 8 bytes per source of the 10-million-source flood are 76 MiB.
//!
//! Before each replay, the allocator returns freed memory to the system (`malloc_trim`) and
//! the peak (`VmHWM`) is reset by writing 5 to `/proc/self/clear_refs`; the growth is the peak
//! after the replay minus the RSS before it. The cases run one at a time
//! (a global lock, held from generation to the end of the check), so no other test's
//! allocations are measured.
#![cfg(target_os = "linux")]

mod common;

use capgen::adversarial::{self, ExpectedAttack, Written};
use common::{attacked, ends, kind_named, replay_files, settings, starts};
use floodwatch::analyze::{AttackEvent, EndReason, EventKind};
use floodwatch::decode::DecodeIssue;
use floodwatch::output::alert::to_json_line;
use floodwatch::replay::ReplayOutcome;
use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufWriter;
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

/// Largest growth of the peak RSS allowed during one replay (see the module documentation).
const RSS_BOUND: u64 = 64 << 20;
const NS_PER_SECOND: i64 = 1_000_000_000;
/// The detection window at defaults: a flood is flagged within it.
const WINDOW_NS: i64 = NS_PER_SECOND;

static SERIAL: Mutex<()> = Mutex::new(());

/// One case at a time, even after another one failed.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A field of /proc/self/status in KiB.
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.trim().strip_suffix("kB")?.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Runs `f` and returns its result with the growth of the peak RSS meanwhile, in bytes.
fn peak_rss_growth<T>(f: impl FnOnce() -> T) -> (T, u64) {
    // Hand the memory freed by earlier cases back to the system first: glibc keeps freed heap
    // pages (and raises its mmap threshold after large frees), and a replay reusing them would
    // not show in the growth.
    #[cfg(target_env = "gnu")]
    // SAFETY: malloc_trim only returns free memory of the allocator to the system.
    unsafe {
        libc::malloc_trim(0);
    }
    // Resets VmHWM to the current RSS (Linux 4.0 and later). Without it the growth is measured
    // from the earlier peak, which can only understate it; say so.
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    if !reset {
        eprintln!("note: could not reset VmHWM; the RSS growth is measured from the earlier peak");
    }
    let before = if reset { status_kib("VmRSS:") } else { status_kib("VmHWM:") };
    let out = f();
    let after = status_kib("VmHWM:");
    (out, after.saturating_sub(before) * 1024)
}

/// A directory under the system's temporary directory, removed with everything in it on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(case: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("floodwatch-adversarial-{}-{case}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temporary directory");
        TempDir(dir)
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replays `files` with peak RSS measured; checks the bound and that the input read cleanly.
fn replay_measured(case: &str, files: &[PathBuf], written: &Written) -> (Vec<AttackEvent>, ReplayOutcome) {
    let ((events, outcome), growth) = peak_rss_growth(|| replay_files(files, settings()));
    report(case, &outcome, growth);
    check_clean(&outcome, written);
    assert!(growth < RSS_BOUND, "{case}: peak RSS grew by {} MiB during the replay", growth >> 20);
    (events, outcome)
}

fn report(case: &str, outcome: &ReplayOutcome, growth: u64) {
    let secs = outcome.elapsed.as_secs_f64();
    eprintln!(
        "{case}: replayed {} frames in {secs:.2} s ({:.2} Mpps), peak RSS +{:.1} MiB, {:?}",
        outcome.traffic.frames,
        outcome.traffic.frames as f64 / secs.max(1e-9) / 1e6,
        growth as f64 / f64::from(1 << 20),
        outcome.analyzer
    );
}

/// Every frame written was read, with its bytes, and no file failed.
fn check_clean(outcome: &ReplayOutcome, written: &Written) {
    assert!(outcome.errors.is_empty(), "{:?}", outcome.errors);
    assert_eq!(outcome.traffic.frames, written.frames, "frames read");
    assert_eq!(outcome.traffic.wire_bytes, written.wire_bytes, "bytes read");
    assert_eq!(outcome.analyzer.packets, outcome.traffic.ip_packets, "every IP packet analyzed");
}

/// The attacks flagged are exactly `expected`, each started once, within the first window of
/// its first packet, and ended once, between its start and its last packet.
fn check_attacks<'a>(events: &'a [AttackEvent], expected: &[ExpectedAttack]) -> Vec<&'a AttackEvent> {
    let want: BTreeSet<_> = expected.iter().map(|a| (a.victim.to_string(), kind_named(a.kind))).collect();
    assert_eq!(attacked(events), want, "attacks flagged");
    let mut attack_ends = Vec::new();
    for a in expected {
        let of_victim = |e: &&AttackEvent| e.victim == a.victim;
        let started: Vec<_> = starts(events).into_iter().filter(of_victim).collect();
        assert_eq!(started.len(), 1, "one attack_start on {}: {started:#?}", a.victim);
        let start = started[0].started_at_ns;
        assert!(
            (a.first_ns..=a.first_ns + WINDOW_NS).contains(&start),
            "{} flagged at {start}, its first packet at {}",
            a.victim,
            a.first_ns
        );
        let ended: Vec<_> = ends(events).into_iter().filter(of_victim).collect();
        assert_eq!(ended.len(), 1, "one attack_end on {}", a.victim);
        let end = ended[0].end.as_ref().expect("attack_end has an end report");
        assert!(
            (start..=a.last_ns).contains(&end.ended_at_ns),
            "{} ended at {}, started {start}, last packet {}",
            a.victim,
            end.ended_at_ns,
            a.last_ns
        );
        attack_ends.push(ended[0]);
    }
    attack_ends
}

fn within(estimate: u64, truth: u64, tolerance: f64) -> bool {
    (estimate as f64 - truth as f64).abs() <= truth as f64 * tolerance
}

/// An OS pipe (reader, writer), both ends close-on-exec.
fn pipe() -> (File, File) {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe2 stores two new descriptors in `fds`; nothing else owns them.
    let rc = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) };
    assert_eq!(rc, 0, "pipe2: {}", std::io::Error::last_os_error());
    // A 1 MiB pipe buffer means fewer switches between writer and reader; best effort.
    // SAFETY: fcntl on a descriptor we own.
    unsafe { libc::fcntl(fds[1], libc::F_SETPIPE_SZ, 1 << 20) };
    // SAFETY: the descriptors are open and owned by nothing else.
    unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) }
}

/// Ten million distinct spoofed sources, one SYN each: flagged, judged spoofed, no offenders,
/// the distinct count within 2 %, and memory flat. The capture (~700 MB) is streamed from a
/// generator thread through a pipe, so no file is needed and generating overlaps replaying.
#[test]
fn ten_million_spoofed_sources() {
    const SOURCES: u64 = 10_000_000;
    let _serial = serial();
    let (reader, writer) = pipe();
    let path = PathBuf::from(format!("/proc/self/fd/{}", reader.as_raw_fd()));
    let started = Instant::now();
    let ((events, outcome, written, generated), growth) = peak_rss_growth(|| {
        let generator = std::thread::spawn(move || {
            let started = Instant::now();
            let written = adversarial::write_spoofed_sources(BufWriter::with_capacity(1 << 20, writer), SOURCES);
            (written, started.elapsed())
        });
        let (events, outcome) = replay_files(&[path], settings());
        // Closing our read end too makes a generator blocked on a replay that gave up fail.
        drop(reader);
        let (written, generated) = generator.join().expect("generator thread");
        (events, outcome, written.expect("the capture streams into the pipe"), generated)
    });
    eprintln!(
        "spoofed_sources: generated {} frames in {:.2} s ({:.2} Mpps) while replaying; {:.2} s in all",
        written.frames,
        generated.as_secs_f64(),
        written.frames as f64 / generated.as_secs_f64() / 1e6,
        started.elapsed().as_secs_f64()
    );
    report("spoofed_sources", &outcome, growth);
    check_clean(&outcome, &written);
    assert!(growth < RSS_BOUND, "peak RSS grew by {} MiB during the replay", growth >> 20);
    assert_eq!(written.frames, SOURCES);
    assert_eq!(outcome.traffic.ip_packets, SOURCES);

    let attack_ends = check_attacks(&events, &written.attacks);
    let sources = &attack_ends[0].sources;
    assert!(sources.spoofed_likely, "{}", sources.verdict);
    assert!(attack_ends[0].offending_ips.is_empty(), "spoofed sources are no offenders");
    assert!(
        within(sources.distinct_estimate, SOURCES, 0.02),
        "distinct estimate {} for {SOURCES} sources",
        sources.distinct_estimate
    );
    assert_eq!(outcome.analyzer.victim_table_full, 0);
    assert_eq!(outcome.analyzer.tracker_pool_exhausted, 0);
}

/// Sources and destinations that an unkeyed hash would pile into one bucket: both floods are
/// flagged with exact (IPv4) and close (IPv6) source counts, the bots are exactly the
/// offenders, and no destination ever found its bucket full.
#[test]
fn colliding_keys() {
    let _serial = serial();
    let dir = TempDir::new("colliding_keys");
    let path = dir.join("colliding_keys.pcap");
    let started = Instant::now();
    let capture = adversarial::colliding_keys(&path).expect("write capture");
    eprintln!(
        "colliding_keys: generated {} frames in {:.2} s",
        capture.written.frames,
        started.elapsed().as_secs_f64()
    );
    let (events, outcome) = replay_measured("colliding_keys", &[path], &capture.written);
    assert_eq!(outcome.traffic.ip_packets, capture.written.frames);

    let attack_ends = check_attacks(&events, &capture.written.attacks);
    assert_eq!(outcome.analyzer.victim_table_full, 0, "a bucket filled up with watched victims");
    assert_eq!(outcome.analyzer.watch_pool_exhausted, 0);
    assert_eq!(outcome.analyzer.tracker_pool_exhausted, 0);

    // IPv4: 3,000 bots (multiples of 2^20), 10 SYNs each; the sketch is exact below 4,096.
    let v4 = attack_ends[0];
    assert!(within(v4.sources.distinct_estimate, 3_000, 0.02), "IPv4 distinct {}", v4.sources.distinct_estimate);
    assert!(!v4.sources.spoofed_likely, "{}", v4.sources.verdict);
    assert!(v4.sources.top.iter().all(|&(_, packets)| packets == 10), "{:?}", &v4.sources.top[..5]);
    let offenders: BTreeSet<IpAddr> = v4.offending_ips.iter().copied().collect();
    let bots: BTreeSet<IpAddr> = capture.bots.iter().copied().collect();
    assert_eq!(offenders.len(), bots.len(), "offenders");
    assert_eq!(offenders, bots, "offenders");

    // IPv6: 40,000 one-SYN sources 2001:db8:ffff:X:: (multiples of 2^64).
    let v6 = attack_ends[1];
    assert!(within(v6.sources.distinct_estimate, 40_000, 0.03), "IPv6 distinct {}", v6.sources.distinct_estimate);
    assert!(v6.sources.spoofed_likely, "{}", v6.sources.verdict);
    assert!(v6.offending_ips.is_empty());
}

/// All-zero and all-0xFF frames of every length, 64 KiB frames, 40-deep VLAN and MPLS stacks:
/// nothing breaks, the frames that carry IP are found, and the UDP flood among them is the
/// one alert.
#[test]
fn odd_frames() {
    let _serial = serial();
    let dir = TempDir::new("odd_frames");
    let path = dir.join("odd_frames.pcap");
    let capture = adversarial::odd_frames(&path).expect("write capture");
    let (events, outcome) = replay_measured("odd_frames", &[path], &capture.written);
    check_attacks(&events, &capture.written.attacks);

    let traffic = &outcome.traffic;
    let issues: u64 = traffic.issues.iter().sum();
    assert_eq!(traffic.ip_packets + traffic.non_ip + issues, traffic.frames, "every frame accounted for");
    assert!(
        traffic.ip_packets >= capture.ip_at_least,
        "{} IP packets decoded, at least {} expected (flood, 64 KiB frames, stacks up to {} deep)",
        traffic.ip_packets,
        capture.ip_at_least,
        adversarial::REALISTIC_STACK
    );
    assert!(traffic.ip_packets + capture.not_ip <= traffic.frames, "all-zero / all-0xFF frames taken for IP");
    assert!(traffic.issues[DecodeIssue::LinkTruncated as usize] >= 2 * 14, "frames shorter than an Ethernet header");
    assert!(capture.jumbo > 0);
}

/// Overlapping, tiny, duplicate and end-of-datagram fragments, IPv4 and IPv6: both fragment
/// floods flagged as such (not as UDP floods), every frame decoded.
#[test]
fn fragments() {
    let _serial = serial();
    let dir = TempDir::new("fragments");
    let path = dir.join("fragments.pcap");
    let written = adversarial::fragments(&path).expect("write capture");
    let (events, outcome) = replay_measured("fragments", &[path], &written);
    assert_eq!(outcome.traffic.ip_packets, written.frames);
    assert_eq!(outcome.traffic.issues, [0; DecodeIssue::ALL.len()]);
    for end in check_attacks(&events, &written.attacks) {
        assert_eq!(end.protocol, "ip", "{end:?}");
    }
}

/// Floods in 2026, 2200 and 1960 amid timestamps that jump back and forth by seconds, years
/// and decades, before 1970, and with nanosecond fields of 10^9 or more: each flood flagged
/// once in its own era, a new timeline at every step back of more than 2 s, every alert
/// renders.
#[test]
fn time_travel() {
    let _serial = serial();
    let dir = TempDir::new("time_travel");
    let capture = adversarial::time_travel(&dir.0).expect("write captures");
    let (events, outcome) = replay_measured("time_travel", &capture.files, &capture.written);
    assert_eq!(outcome.traffic.ip_packets, capture.written.frames);
    check_attacks(&events, &capture.written.attacks);
    assert_eq!(outcome.analyzer.timeline_restarts, capture.step_backs, "steps back of more than 2 s");

    for event in &events {
        let line = to_json_line(event).expect("every alert renders");
        let json: serde_json::Value = serde_json::from_slice(&line).expect("valid JSON");
        let started = json["started_at"].as_str().expect("started_at");
        let era = match event.victim {
            v if v == adversarial::TIME_TRAVEL_VICTIMS[0] => "2026-01-15T12:10:0",
            v if v == adversarial::TIME_TRAVEL_VICTIMS[1] => "2200-01-01T00:00:0",
            _ => "1960-06-01T00:00:0",
        };
        assert!(started.starts_with(era), "{started} for {}", event.victim);
    }
}

/// Two million packets stamped with the same instant: the SYN flood among them is flagged
/// once, its bots are the offenders, and it ends with the input, at that instant.
#[test]
fn same_timestamp() {
    let _serial = serial();
    let dir = TempDir::new("same_timestamp");
    let path = dir.join("same_timestamp.pcap");
    let started = Instant::now();
    let capture = adversarial::same_timestamp(&path).expect("write capture");
    eprintln!(
        "same_timestamp: generated {} frames in {:.2} s",
        capture.written.frames,
        started.elapsed().as_secs_f64()
    );
    let (events, outcome) = replay_measured("same_timestamp", &[path], &capture.written);
    assert_eq!(capture.written.frames, adversarial::SAME_TIMESTAMP_PACKETS);
    assert_eq!(outcome.traffic.ip_packets, capture.written.frames);
    assert_eq!(outcome.analyzer.timeline_restarts, 0);

    let attack_ends = check_attacks(&events, &capture.written.attacks);
    assert_eq!(events.len(), 2, "one start and one end, no update: {events:#?}");
    assert!(events.iter().all(|e| e.event != EventKind::Update));
    let end = attack_ends[0];
    let report = end.end.as_ref().unwrap();
    assert_eq!(report.reason, EndReason::EndOfInput);
    assert_eq!((end.started_at_ns, report.ended_at_ns), (capture.ts_ns, capture.ts_ns));
    let offenders: BTreeSet<IpAddr> = end.offending_ips.iter().copied().collect();
    let bots: BTreeSet<IpAddr> = capture.bots.iter().copied().collect();
    assert_eq!(offenders, bots, "offenders");
}
