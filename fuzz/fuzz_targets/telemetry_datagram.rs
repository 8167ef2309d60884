//! Any bytes as telemetry datagrams (sFlow, NetFlow v5/v9, IPFIX, told apart by their version):
//! read without a panic by one collector (either flow clock), whose templates carry over from datagram to datagram,
//! with every record a weight of at least one packet and what it holds bounded; and the records
//! analyzed, whatever counts they claim (the case of counts that saturate the analyzer's is
//! `tests/telemetry.rs`'s: its 69,000 records per run are too slow for the corpus).
#![no_main]

mod small_analyzer;

use floodwatch::analyze::EndReason;
use floodwatch::telemetry::{Collector, FlowClock, TelemetrySettings, TelemetryStats};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr};

fuzz_target!(|data: &[u8]| {
    // Both ways of placing flows in time: the input's length picks one.
    let clock = if data.len() % 2 == 0 { FlowClock::Live } else { FlowClock::Exporter };
    let mut collector = Collector::new(&TelemetrySettings::default(), clock);
    let mut stats = TelemetryStats::default();
    let from = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254));
    let mut ts = 1_768_478_400_000_000_000;
    let mut analyzer = small_analyzer::small_analyzer();
    let mut events = Vec::new();
    let mut record = |r: &floodwatch::decode::PacketRecord, origin| {
        assert!(r.weight >= 1);
        analyzer.set_origin(origin);
        analyzer.process(r, &mut events);
        events.clear();
    };
    // The input is several datagrams, each after a two-byte length, 100 ms apart: templates
    // in one and data in the next.
    let mut rest = data;
    while let [a, b, tail @ ..] = rest {
        let len = usize::from(u16::from_be_bytes([*a, *b])).min(tail.len());
        collector.read(&tail[..len], from, ts, &mut stats, &mut record);
        rest = &tail[len..];
        ts += 100_000_000;
    }
    let (templates, spreading) = collector.held();
    assert!(templates <= 4096 && spreading <= 1 << 16);
    collector.finish(&mut stats, &mut record);
    analyzer.finish(EndReason::EndOfInput, &mut events);
    assert!(stats.issues_total() <= stats.datagrams_total() + stats.unknown_exporters + 1_000_000);
});
