//! Any bytes as a sensor's summary (a NATS message): decoding gives a summary whose parts are
//! in range, whose trackers merge and which encodes again, or says why it is not one.
#![no_main]

use floodwatch::analyze::summary::{SecondSummary, SUMMARY_SOURCES};
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
        let again = summary.encode().expect("a decoded summary encodes");
        assert!(SecondSummary::decode(&again).is_ok());
    }
    Err(refused) => assert!(!refused.to_string().is_empty()),
});
