//! The aggregator's work for many sensors, in memory: each second, 50 sensors' summaries
//! (1,000 victims each, the same victims at every sensor, 20 of them watched with trackers
//! of 100 sources, and the four /24 prefixes they are in) are encoded, then decoded, merged and counted by one analyzer, as
//! `floodwatch aggregate` does with what NATS brings.
//!
//! ```text
//! cargo bench --bench aggregator [-- SENSORS SECONDS]
//! ```
//!
//! Prints the bytes of a summary and the CPU time the aggregator spent per second of
//! summaries (decode, merge, detection), best of three runs: under 1 s is under one core.

use floodwatch::analyze::hash::KeyedHasher;
use floodwatch::analyze::sketch::{Counted, HeavyHitters, HyperLogLog};
use floodwatch::analyze::summary::{
    ClassWatch, SecondSummary, TrackerSummary, VictimSecond, NETWORK_SLOTS, SUMMARY_PRECISION, SUMMARY_VERSION,
};
use floodwatch::analyze::{Analyzer, Class, DetectionSettings, EndReason};
use floodwatch::decode::IpKey;
use std::time::Duration;

const VICTIMS: u32 = 1_000;
const WATCHED: u32 = 20;
const SOURCES: u32 = 100;
const SEED: u64 = 7;
const T0: i64 = 1_768_478_400;

/// CPU time of this process so far (user + system).
fn cpu_time() -> Duration {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes a whole rusage into the pointer it is given.
    let usage = unsafe {
        libc::getrusage(libc::RUSAGE_SELF, usage.as_mut_ptr());
        usage.assume_init()
    };
    let tv = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1_000);
    tv(usage.ru_utime) + tv(usage.ru_stime)
}

fn tracker(hasher: &KeyedHasher, sensor: u32, victim: u32) -> TrackerSummary {
    let mut distinct = HyperLogLog::new(SUMMARY_PRECISION);
    let mut networks = vec![0u64; NETWORK_SLOTS / 64];
    let counters = (0..SOURCES)
        .map(|i| {
            let key =
                IpKey::from_v4([100 + (sensor % 50) as u8, (victim % 200) as u8, (i / 250) as u8, (i % 250) as u8]);
            distinct.add_hash(hasher.hash_ip(key));
            let slot = key.network_16() as usize >> 4;
            networks[slot / 64] |= 1 << (slot % 64);
            Counted { key, count: u64::from(500 - i), error: 0 }
        })
        .collect();
    TrackerSummary {
        packets: 50_000,
        impossible: 0,
        with_ports: 50_000,
        sources: HeavyHitters { counters, floor: 0 },
        ports: HeavyHitters { counters: vec![Counted { key: 443, count: 50_000, error: 0 }], floor: 0 },
        services: Vec::new(),
        ttls: [0, 1 << 52, 0, 0],
        networks,
        distinct,
    }
}

/// Sensor `sensor`'s summary of `second`: every victim a little traffic, the watched ones a
/// SYN flood's share.
fn summary(hasher: &KeyedHasher, sensor: u32, second: i64) -> SecondSummary {
    let victims: Vec<VictimSecond> = (0..VICTIMS)
        .map(|v| {
            let watched = v < WATCHED;
            // Below every threshold summed over 50 sensors, but for the watched victims.
            let syns = if watched { 500 } else { 10 };
            let watches = match watched {
                true => {
                    vec![ClassWatch { class: Class::Syn as u8, attacked: false, tracker: tracker(hasher, sensor, v) }]
                }
                false => Vec::new(),
            };
            VictimSecond {
                victim: IpKey::from_v4([198, 51, (v / 250) as u8, (v % 250) as u8]),
                cells: vec![(Class::Syn as u8, syns), (Class::Udp as u8, 10), (Class::Ack as u8, 20)],
                watches,
            }
        })
        .collect();
    // The carpet analyzer's view: the victims' four /24s, their traffic summed.
    let prefixes = victims
        .chunks(250)
        .enumerate()
        .map(|(p, in_prefix)| {
            let mut cells: Vec<(u8, u64)> = Vec::new();
            for v in in_prefix {
                for &(c, n) in &v.cells {
                    match cells.iter_mut().find(|(k, _)| *k == c) {
                        Some((_, total)) => *total += n,
                        None => cells.push((c, n)),
                    }
                }
            }
            VictimSecond { victim: IpKey::from_v4([198, 51, p as u8, 0]), cells, watches: Vec::new() }
        })
        .collect();
    SecondSummary {
        version: SUMMARY_VERSION,
        sensor: format!("edge-{sensor}"),
        second,
        hash_key: 0,
        victims,
        victims_left_out: 0,
        prefixes,
        prefixes_left_out: 0,
    }
}

fn main() {
    let numbers: Vec<u32> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let (sensors, seconds) = (numbers.first().copied().unwrap_or(50), numbers.get(1).copied().unwrap_or(20));
    let settings = DetectionSettings { hash_seed: Some(SEED), ..DetectionSettings::default() };
    let hasher = KeyedHasher::new(Some(SEED));
    let hash_key = Analyzer::new(settings.clone()).summary_hash_key();
    // What NATS would bring: every sensor's encoded summary of every second.
    let wire: Vec<Vec<Vec<u8>>> = (0..seconds)
        .map(|s| {
            (0..sensors)
                .map(|k| {
                    let summary = SecondSummary { hash_key, ..summary(&hasher, k, T0 + i64::from(s)) };
                    summary.encode().expect("a summary encodes")
                })
                .collect()
        })
        .collect();
    let bytes = wire[0][0].len();
    let left_out = SecondSummary::decode(&wire[0][0]).expect("a summary decodes").victims_left_out;
    let mut best = Duration::MAX;
    let mut alerts = 0;
    for _ in 0..3 {
        let mut analyzer = Analyzer::new(settings.clone());
        let mut events = Vec::new();
        let started = cpu_time();
        for (s, second) in wire.iter().enumerate() {
            let summaries: Vec<SecondSummary> =
                second.iter().map(|b| SecondSummary::decode(b).expect("a summary decodes")).collect();
            analyzer.count_sensors_second(T0 + s as i64, &summaries, &mut events);
        }
        analyzer.finish(EndReason::EndOfInput, &mut events);
        best = best.min(cpu_time() - started);
        alerts = events.len();
    }
    let per_second = best / seconds;
    println!(
        "{sensors} sensors x {seconds} s, {VICTIMS} victims each ({WATCHED} watched, {SOURCES} sources listed): a summary is {bytes} bytes ({left_out} victims left out by the size bound); the aggregator spent {:.1} ms of CPU per second of summaries ({:.1} % of a core), {alerts} alerts",
        per_second.as_secs_f64() * 1e3,
        per_second.as_secs_f64() * 100.0,
    );
}
