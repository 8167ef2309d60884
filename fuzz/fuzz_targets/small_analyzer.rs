//! The analyzer the fuzz targets feed: small tables and a fixed hash key, so every input
//! reaches full buckets, evictions and busy trackers quickly, and a failure replays the same.

use floodwatch::analyze::{Analyzer, DetectionSettings};

pub fn small_analyzer() -> Analyzer {
    Analyzer::new(DetectionSettings {
        hash_seed: Some(1),
        max_victims: 64,
        max_trackers: 2,
        tracked_sources: 16,
        ..Default::default()
    })
}
