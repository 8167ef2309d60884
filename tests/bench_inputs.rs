//! The benchmark's attack-dominated inputs, made small: the speed of replay on them must not
//! have been bought with accuracy. The oracle is the capture itself (who sent how many packets
//! to whom, read from the frames), not the generator's own account of what it wrote.

mod common;

use capgen::bench::{write_bench_mix, write_bench_spoofed, BENCH_FLOOD};
use floodwatch::analyze::{AttackEvent, EventKind};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// Writes a benchmark capture to `path` with `write`.
fn made(path: &Path, write: impl FnOnce(&mut std::io::BufWriter<std::fs::File>)) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    write(&mut out);
    out.flush().unwrap();
}

/// Packets per destination and source of a capture's untagged Ethernet IPv4 frames.
fn senders(path: &Path) -> BTreeMap<Ipv4Addr, BTreeMap<Ipv4Addr, u64>> {
    let mut all: BTreeMap<Ipv4Addr, BTreeMap<Ipv4Addr, u64>> = BTreeMap::new();
    for record in common::Pcap::read(path).records {
        let frame = &record[16..];
        if frame.len() >= 34 && frame[12..14] == [0x08, 0x00] {
            let address = |from: usize| Ipv4Addr::new(frame[from], frame[from + 1], frame[from + 2], frame[from + 3]);
            *all.entry(address(30)).or_default().entry(address(26)).or_default() += 1;
        }
    }
    all
}

fn ends(events: &[AttackEvent]) -> Vec<&AttackEvent> {
    events.iter().filter(|e| e.event == EventKind::End).collect()
}

/// 1 M packets of `bench_flood` (a SYN flood from 4,000 bots, a UDP flood from 2,000 and a DNS
/// amplification from 3,000 reflectors, in background): each attack lists its senders, with
/// precision and recall of at least 0.95, and every sender of 100 packets or more.
#[test]
fn an_attack_dominated_capture_lists_every_heavy_source_and_nobody_else() {
    let scratch = common::Scratch::new("bench-flood");
    let path = scratch.path("flood.pcap");
    made(&path, |out| {
        write_bench_mix(out, &BENCH_FLOOD, 1_000_000).unwrap();
    });
    let truth = senders(&path);
    let (events, _) = common::replay_files(&[path], common::settings());
    let ends = ends(&events);
    let kinds: BTreeSet<String> = ends.iter().map(|e| format!("{} {}", e.kind.name(), e.victim)).collect();
    assert_eq!(ends.len(), 3, "attacks: {kinds:?}");
    let mut heavy = 0;
    for end in ends {
        let IpAddr::V4(victim) = end.victim else { panic!("an IPv6 victim: {kinds:?}") };
        let sent = &truth[&victim];
        let real: Vec<IpAddr> = sent.keys().map(|ip| IpAddr::V4(*ip)).collect();
        let (precision, recall) = common::precision_recall(&end.offending_ips, &real);
        eprintln!(
            "{} on {victim}: {} senders, {} listed, precision {precision:.4}, recall {recall:.4}",
            end.kind.name(),
            real.len(),
            end.offending_ips.len()
        );
        assert!(
            precision >= 0.95 && recall >= 0.95,
            "{} on {victim}: precision {precision}, recall {recall}",
            end.kind.name()
        );
        let listed: BTreeSet<&IpAddr> = end.offending_ips.iter().collect();
        for (source, packets) in sent.iter().filter(|(_, packets)| **packets >= 100) {
            heavy += 1;
            assert!(listed.contains(&IpAddr::V4(*source)), "{source} sent {packets} packets to {victim}, not listed");
        }
    }
    assert!(heavy > 1_000, "only {heavy} senders of 100 packets or more: the check checks little");
}

/// 2 M SYNs from 1 M spoofed sources: judged spoofed, nobody listed, and the distinct sources
/// estimated within 2 % (the counters are full after 4,096 of them, so the filtered
/// Space-Saving sketch turns nearly every source away).
#[test]
fn a_spoofed_flood_is_counted_within_two_percent_and_blocks_nobody() {
    let scratch = common::Scratch::new("bench-spoofed");
    let path = scratch.path("spoofed.pcap");
    made(&path, |out| {
        write_bench_spoofed(out, 2_000_000, 1_000_000).unwrap();
    });
    let truth = senders(&path);
    let (events, _) = common::replay_files(&[path], common::settings());
    let ends = ends(&events);
    assert_eq!(ends.len(), 1, "{ends:?}");
    let IpAddr::V4(victim) = ends[0].victim else { panic!("an IPv6 victim") };
    let distinct = truth[&victim].len() as f64;
    let estimate = ends[0].sources.distinct_estimate as f64;
    eprintln!("spoofed: {distinct} distinct sources, estimated {estimate}");
    assert!(ends[0].sources.spoofed_likely, "{}", ends[0].sources.verdict);
    assert!(ends[0].offending_ips.is_empty(), "{} listed", ends[0].offending_ips.len());
    assert!((estimate - distinct).abs() <= 0.02 * distinct, "estimate {estimate} for {distinct}");
}
