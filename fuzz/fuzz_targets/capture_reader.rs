//! Any bytes as a capture file (pcap, pcapng, gzip): read every frame, decode and analyze
//! it. Must never panic, hang or allocate beyond the reader's caps.
#![no_main]

mod small_analyzer;

use floodwatch::analyze::EndReason;
use floodwatch::capture::FileSource;
use floodwatch::decode::{decode, Decoded, PacketRecord};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(mut source) = FileSource::from_reader("fuzz", Box::new(std::io::Cursor::new(data.to_vec()))) else {
        return;
    };
    let mut analyzer = small_analyzer::small_analyzer();
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
