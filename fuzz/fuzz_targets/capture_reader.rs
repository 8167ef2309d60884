//! Any bytes as a capture file (pcap, pcapng, gzip): read every frame, decode and analyze
//! it. Must never panic, hang or allocate beyond the reader's caps.
#![no_main]

use floodwatch::analyze::DetectionSettings;
use floodwatch::analyze::{Analyzer, EndReason};
use floodwatch::capture::FileSource;
use floodwatch::decode::{decode, Decoded, PacketRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut source) = FileSource::from_reader("fuzz", Box::new(std::io::Cursor::new(data.to_vec()))) else {
        return;
    };
    let settings = DetectionSettings {
        hash_seed: Some(1),
        max_victims: 64,
        max_trackers: 2,
        tracked_sources: 16,
        ..Default::default()
    };
    let mut analyzer = Analyzer::new(settings);
    let mut record = PacketRecord::default();
    let mut events = Vec::new();
    let mut each = |frame: &floodwatch::capture::Frame| {
        if let Ok(Decoded::Ip) = decode(frame, &mut record) {
            analyzer.process(&record, &mut events);
            events.clear();
        }
        true
    };
    while let Ok(true) = source.read_frames(usize::MAX, &mut each) {}
    analyzer.finish(EndReason::EndOfInput, &mut events);
});
