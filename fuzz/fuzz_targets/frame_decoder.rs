//! Any bytes as a frame of every supported link type: the decoder must never panic, and a
//! decoded record must be self-consistent.
#![no_main]

use floodwatch::capture::{Frame, LinkType};
use floodwatch::decode::{decode, Decoded, Fragment, L4State, PacketRecord};
use libfuzzer_sys::fuzz_target;

const LINK_TYPES: [LinkType; 9] = [
    LinkType::NULL,
    LinkType::ETHERNET,
    LinkType::RAW_BSD12,
    LinkType::RAW_BSD14,
    LinkType::RAW,
    LinkType::LOOP,
    LinkType::LINUX_SLL,
    LinkType::NFLOG,
    LinkType::LINUX_SLL2,
];

fuzz_target!(|data: &[u8]| {
    for link in LINK_TYPES {
        let frame = Frame { ts_ns: 0, wire_len: data.len() as u32, link, data };
        let mut record = PacketRecord::default();
        if let Ok(Decoded::Ip) = decode(&frame, &mut record) {
            assert!(record.ip_version() == 4 || record.ip_version() == 6);
            if record.fragment == Fragment::Later {
                assert_eq!(record.l4, L4State::Absent);
                assert_eq!((record.src_port, record.dst_port), (0, 0));
            }
        }
    }
});
