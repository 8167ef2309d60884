//! The analyzer alone, on records decoded in memory beforehand: what one analyzer thread
//! sustains, with reading and decoding (the capture thread's work) out of the way.
//!
//! ```text
//! cargo bench --bench analyzer -- FILE...
//! ```
//!
//! Prints, per capture, the best of three runs of a fresh analyzer (default settings) over
//! all its records, and the alerts it raised.

use floodwatch::analyze::DetectionSettings;
use floodwatch::analyze::{Analyzer, EndReason};
use floodwatch::capture::FileSource;
use floodwatch::decode::{decode, Decoded, PacketRecord};
use std::time::{Duration, Instant};

const RUNS: usize = 3;

fn records_of(path: &str) -> Result<Vec<PacketRecord>, String> {
    let mut source = FileSource::open(path).map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    let mut record = PacketRecord::default();
    while source
        .read_frames(4096, |frame| {
            if let Ok(Decoded::Ip) = decode(frame, &mut record) {
                records.push(record);
            }
            true
        })
        .map_err(|e| e.to_string())?
    {}
    Ok(records)
}

fn main() {
    // `cargo bench` passes `--bench` to a harness-less bench.
    let files: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with("--")).collect();
    if files.is_empty() {
        eprintln!("usage: cargo bench --bench analyzer -- FILE...");
        std::process::exit(2);
    }
    for path in files {
        let records = match records_of(&path) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(1);
            }
        };
        let mut best = Duration::MAX;
        let mut alerts = 0;
        for _ in 0..RUNS {
            let mut analyzer = Analyzer::new(DetectionSettings::default());
            let mut events = Vec::new();
            let started = Instant::now();
            for record in &records {
                analyzer.process(record, &mut events);
            }
            analyzer.finish(EndReason::EndOfInput, &mut events);
            best = best.min(started.elapsed());
            alerts = events.len();
        }
        let secs = best.as_secs_f64();
        println!(
            "{path}: {} records, analyzer alone (best of {RUNS}): {secs:.3} s, {:.2} Mpps, {alerts} alerts",
            records.len(),
            records.len() as f64 / secs / 1e6
        );
    }
}
