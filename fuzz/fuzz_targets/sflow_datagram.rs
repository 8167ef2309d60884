//! Any bytes as an sFlow datagram: read without a panic, every sampled packet accounted for.
#![no_main]

use floodwatch::telemetry::{read_sflow, Exporters, TelemetryStats};
use std::net::{IpAddr, Ipv4Addr};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut stats = TelemetryStats::default();
    let mut records = 0;
    let from = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 254));
    read_sflow(data, from, 1_768_478_400_000_000_000, &Exporters::any(), &mut stats, |r| {
        assert!(r.weight >= 1);
        records += 1;
    });
    assert_eq!(records, stats.records);
    assert!(stats.datagrams <= 1 && stats.issues_total() <= 1);
});
