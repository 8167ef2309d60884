//! Any bytes as a sensor's summary (a NATS message): decoding gives a summary whose parts are
//! in range, whose trackers merge, which encodes again and which an aggregator counts (its
//! hosts and its prefixes, as any sensor's), or says why it is not one.
#![no_main]

mod small_analyzer;

use floodwatch::analyze::summary::{SecondSummary, SUMMARY_SOURCES};
use floodwatch::analyze::EndReason;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| match SecondSummary::decode(data) {
    Ok(summary) => {
        for victim in summary.victims.iter().chain(&summary.prefixes) {
            for watch in &victim.watches {
                let mut doubled = watch.tracker.clone();
                doubled.merge(&watch.tracker, SUMMARY_SOURCES);
                let distinct = doubled.distinct_sources();
                let _ = doubled.network_spread(distinct);
            }
        }
        let mut aggregator = small_analyzer::small_analyzer();
        let mut events = Vec::new();
        // As two sensors' seconds, merged; then as the next second of one.
        aggregator.count_sensors_second(summary.second, &[summary.clone(), summary.clone()], &mut events);
        aggregator.count_sensors_second(summary.second.saturating_add(1), &[summary.clone()], &mut events);
        aggregator.finish(EndReason::EndOfInput, &mut events);
        let again = summary.encode().expect("a decoded summary encodes");
        assert!(SecondSummary::decode(&again).is_ok());
    }
    Err(refused) => assert!(!refused.to_string().is_empty()),
});
