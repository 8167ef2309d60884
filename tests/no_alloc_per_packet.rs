//! The per-packet path (decode + analyze, and the output stage with evidence, blocklist and
//! metrics snapshots) allocates nothing once warmed up: a counting global allocator watches
//! it replay whole captures held in memory.

mod common;

use floodwatch::analyze::{Analyzer, EndReason};
use floodwatch::capture::{FileSource, Frame, LinkType};
use floodwatch::decode::{decode, Decoded, PacketRecord};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    /// Per thread, so tests running side by side do not count each other's allocations.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn allocations() -> u64 {
    ALLOCATIONS.with(|a| a.get())
}

fn counted() {
    // `try_with`: the allocator also runs while thread-locals are torn down.
    let _ = ALLOCATIONS.try_with(|a| a.set(a.get() + 1));
}

// SAFETY: forwards to the system allocator, only counting calls.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted();
        // SAFETY: the caller's promises about `layout` pass on unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` (every allocation here does) with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted();
        // SAFETY: as for `dealloc`, and the caller's promises about `new_size` pass on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Every frame of a capture, copied out of the reader: (timestamp, wire length, link, bytes).
fn frames(name: &str) -> Vec<(i64, u32, LinkType, Vec<u8>)> {
    let path = common::repo_path("captures").join(name);
    let mut source = FileSource::open(path.to_str().unwrap()).unwrap();
    let mut out = Vec::new();
    // A gzip file is a stream: it hands over what it has buffered, then reads on.
    while source
        .read_frames(usize::MAX, |f| {
            out.push((f.ts_ns, f.wire_len, f.link, f.data.to_vec()));
            true
        })
        .unwrap()
    {}
    out
}

/// Decodes and analyzes `frames`, returning (allocations, events) counted after `warmup` frames.
fn count(frames: &[(i64, u32, LinkType, Vec<u8>)], warmup: usize) -> (u64, usize) {
    let mut analyzer = Analyzer::new(common::settings());
    let mut events = Vec::with_capacity(1024);
    let mut record = PacketRecord::default();
    let mut before = 0;
    let mut events_before = 0;
    let debug = std::env::var_os("FW_DEBUG_ALLOC").is_some();
    for (i, (ts_ns, wire_len, link, data)) in frames.iter().enumerate() {
        if i == warmup {
            before = allocations();
            events_before = events.len();
        }
        let frame = Frame { ts_ns: *ts_ns, wire_len: *wire_len, link: *link, data };
        if let Ok(Decoded::Ip) = decode(&frame, &mut record) {
            analyzer.process(&record, &mut events);
        }
        if debug && i % 5000 == 0 {
            eprintln!("{i}: {} allocations, {} events", allocations(), events.len());
        }
    }
    analyzer.finish(EndReason::EndOfInput, &mut events);
    (allocations() - before, events.len() - events_before)
}

#[test]
fn benign_traffic_allocates_nothing_per_packet() {
    for name in ["benign_mix.pcap.gz", "flash_crowd.pcap.gz"] {
        let frames = frames(name);
        let (allocations, events) = count(&frames, frames.len() / 10);
        assert_eq!(events, 0, "{name}");
        assert_eq!(allocations, 0, "{name}: {allocations} allocations over {} packets", frames.len() * 9 / 10);
    }
}

#[test]
fn floods_allocate_per_attack_event_not_per_packet() {
    for name in ["syn_flood_spoofed.pcap.gz", "dns_amplification.pcap.gz", "udp_flood.pcap"] {
        let frames = frames(name);
        let (allocations, events) = count(&frames, 1000);
        assert!(events >= 2, "{name}: an attack starts and ends");
        // Events carry strings and source lists (about 17 allocations each), and a tracker is
        // set up once per attack;
        // nothing scales with the tens of thousands of packets in between.
        let budget = events as u64 * 40;
        eprintln!("{name}: {allocations} allocations for {events} events over {} packets", frames.len());
        assert!(
            allocations <= budget,
            "{name}: {allocations} allocations for {events} events over {} packets",
            frames.len()
        );
    }
}

#[test]
fn the_output_stage_allocates_nothing_per_packet() {
    use floodwatch::output::blocklist::BlocklistFormat;
    use floodwatch::output::evidence::EvidenceOptions;
    use floodwatch::output::metrics::CaptureCounts;
    use floodwatch::output::summary::TrafficStats;
    use floodwatch::output::{BlocklistOptions, OutputOptions, Outputs};
    let dir = common::Scratch::new("no-alloc-outputs");
    let options = OutputOptions {
        sinks: vec!["/dev/null".parse().unwrap()],
        blocklist: Some(BlocklistOptions {
            path: dir.path("blocklist"),
            format: BlocklistFormat::Nft,
            ttl_s: 1,
            allow: Vec::new(),
        }),
        evidence: Some(EvidenceOptions { dir: dir.path("evidence"), max_packets: 10_000, max_bytes: 1 << 30 }),
        ..OutputOptions::default()
    };
    let mut outputs = Outputs::open(&options).unwrap();
    let frames = frames("benign_mix.pcap.gz");
    let mut analyzer = Analyzer::new(common::settings());
    let mut events = Vec::with_capacity(1024);
    let mut record = PacketRecord::default();
    let mut traffic = TrafficStats::default();
    let warmup = frames.len() / 10;
    let mut before = 0;
    for (i, (ts_ns, wire_len, link, data)) in frames.iter().enumerate() {
        if i == warmup {
            before = allocations();
        }
        let frame = Frame { ts_ns: *ts_ns, wire_len: *wire_len, link: *link, data };
        if let Ok(Decoded::Ip) = decode(&frame, &mut record) {
            traffic.count_ip(&record);
            outputs.frame(&frame, &record);
            analyzer.process(&record, &mut events);
            outputs.deliver(&mut events).unwrap();
        }
        if i % 512 == 0 {
            outputs.metrics.set_capture(0, CaptureCounts { traffic, kernel_dropped: 0 });
            outputs.metrics.set_analyzer(&analyzer.stats(), analyzer.active_attacks());
            outputs.metrics.record_batch_latency(1_000);
            outputs.advance(*ts_ns);
        }
    }
    let allocations = allocations() - before;
    assert_eq!(
        allocations,
        0,
        "{allocations} allocations over {} packets with evidence and a blocklist",
        frames.len() - warmup
    );
    outputs.finish();
}

/// The live path: frames read in place from the tpacket backend's ring, decoded and analyzed,
/// allocate nothing either. The test's thread enters a network namespace of its own (the
/// capture sees only what it sends itself on that namespace's loopback) and alternates bursts
/// of UDP datagrams with reading them back.
#[test]
fn the_tpacket_ring_allocates_nothing_per_packet() {
    use std::process::Command;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return common::skip("the tpacket allocation test needs root (a network namespace, a packet socket)");
    }
    if !common::on_path("ip") {
        return common::skip("the tpacket allocation test needs ip on PATH");
    }
    let ns = format!("fw-noalloc-{}", std::process::id());
    let ip = |args: &[&str]| Command::new("ip").args(args).status().is_ok_and(|s| s.success());
    let _ = ip(&["netns", "del", &ns]);
    if !ip(&["netns", "add", &ns]) || !ip(&["-n", &ns, "link", "set", "lo", "up"]) {
        let _ = ip(&["netns", "del", &ns]);
        return common::skip("cannot create a network namespace");
    }
    // Enter it in a thread of its own: namespaces are per thread, and this one is thrown away.
    let result = std::thread::scope(|scope| {
        scope
            .spawn(|| {
                let file = std::fs::File::open(format!("/var/run/netns/{ns}")).expect("the namespace is mounted");
                // SAFETY: setns on an open namespace file; it changes this thread's namespace only.
                let rc = unsafe { libc::setns(std::os::fd::AsRawFd::as_raw_fd(&file), libc::CLONE_NEWNET) };
                assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
                read_bursts_from_the_ring()
            })
            .join()
    });
    let _ = ip(&["netns", "del", &ns]);
    let (frames, allocations) = result.unwrap_or_else(|e| std::panic::resume_unwind(e));
    assert!(frames >= 10_000, "only {frames} frames read back");
    assert_eq!(allocations, 0, "{allocations} allocations over {frames} frames read from the ring");
}

/// Sends bursts of datagrams on loopback and reads them back through the ring; returns the
/// frames read after the first burst and the allocations meanwhile.
fn read_bursts_from_the_ring() -> (u64, u64) {
    use floodwatch::capture::live;
    use floodwatch::capture::live::CaptureSettings;
    use std::net::UdpSocket;
    let mut capture = live::open("lo", &CaptureSettings::default()).expect("tpacket opens on lo");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let target: std::net::SocketAddr = "127.0.0.1:9".parse().unwrap();
    let mut analyzer = Analyzer::new(common::settings());
    let mut events = Vec::with_capacity(1024);
    let mut record = PacketRecord::default();
    let payload = [0x41u8; 18];
    let (mut frames, mut before) = (0, 0);
    for burst in 0..12 {
        if burst == 1 {
            (frames, before) = (0, allocations());
        }
        for _ in 0..1_000 {
            let _ = socket.send_to(&payload, target);
        }
        // Until the ring has nothing more within the read timeout.
        while let Some(frame) = capture.next_frame().expect("the ring reads") {
            frames += 1;
            if let Ok(Decoded::Ip) = decode(&frame, &mut record) {
                analyzer.process(&record, &mut events);
            }
        }
    }
    (frames, allocations() - before)
}
