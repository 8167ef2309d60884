//! Classic libpcap files: a 24-byte file header, then 16-byte record headers each followed by
//! the captured bytes.

use super::file::{is_supported_link, u32_from, Fail, Input, RecordReader, MAX_RECORD_LEN};
use super::{CaptureErrorKind, Frame, LinkType};

const FILE_HEADER_LEN: usize = 24;
const RECORD_HEADER_LEN: usize = 16;
/// Offset of the link type field in the file header (reported for unsupported link types).
const LINKTYPE_OFFSET: u64 = 20;
/// Records up to libpcap's own maximum are accepted whatever snap length the header claims:
/// writers are known to understate it.
const MIN_CAPLEN_LIMIT: u32 = 262_144;
const MICROS_MAGIC: u32 = 0xa1b2_c3d4;
const NANOS_MAGIC: u32 = 0xa1b2_3c4d;
const NS_PER_SEC: i64 = 1_000_000_000;

/// Whether the first four bytes are a pcap magic, in either byte order.
pub(super) fn is_magic(magic: [u8; 4]) -> bool {
    magic_info(magic).is_some()
}

/// (big-endian, nanosecond resolution) for a pcap magic.
fn magic_info(magic: [u8; 4]) -> Option<(bool, bool)> {
    match (u32::from_be_bytes(magic), u32::from_le_bytes(magic)) {
        (MICROS_MAGIC, _) => Some((true, false)),
        (NANOS_MAGIC, _) => Some((true, true)),
        (_, MICROS_MAGIC) => Some((false, false)),
        (_, NANOS_MAGIC) => Some((false, true)),
        _ => None,
    }
}

pub(super) struct Reader {
    big_endian: bool,
    /// Nanoseconds per unit of the fraction field (1000 for µs files, 1 for ns files).
    ns_per_frac: i64,
    link: LinkType,
    /// Longest record accepted before calling it corrupt.
    max_caplen: u32,
}

impl Reader {
    /// Reads the file header; `input` is at offset 0 and holds a pcap magic.
    pub(super) fn open(input: &mut Input) -> Result<Reader, Fail> {
        if !input.ensure(FILE_HEADER_LEN)? {
            return Err(Fail::truncated(0, FILE_HEADER_LEN, input.available()));
        }
        let Some(header) = input.peek::<FILE_HEADER_LEN>() else {
            return Err(Fail::truncated(0, FILE_HEADER_LEN, input.available()));
        };
        // magic, version major/minor, thiszone, sigfigs (all ignored), snaplen, link type.
        let [m0, m1, m2, m3, _, _, _, _, _, _, _, _, _, _, _, _, s0, s1, s2, s3, l0, l1, l2, l3] = header;
        let Some((big_endian, nanos)) = magic_info([m0, m1, m2, m3]) else {
            return Err(Fail { offset: 0, kind: CaptureErrorKind::UnknownFormat { magic: [m0, m1, m2, m3] } });
        };
        let snaplen = u32_from(big_endian, [s0, s1, s2, s3]);
        // The upper 16 bits carry FCS information, not the link type.
        let link = (u32_from(big_endian, [l0, l1, l2, l3]) & 0xffff) as u16;
        if !is_supported_link(link) {
            return Err(Fail { offset: LINKTYPE_OFFSET, kind: CaptureErrorKind::UnsupportedLinkType(u32::from(link)) });
        }
        input.take(FILE_HEADER_LEN);
        Ok(Reader {
            big_endian,
            ns_per_frac: if nanos { 1 } else { 1_000 },
            link: LinkType(link),
            max_caplen: snaplen.max(MIN_CAPLEN_LIMIT).min(MAX_RECORD_LEN as u32),
        })
    }

    /// Word `i` (0..4) of a record header loaded as one little-endian u128.
    #[inline(always)]
    fn word(&self, header: u128, i: u32) -> u32 {
        let w = (header >> (32 * i)) as u32;
        if self.big_endian {
            w.swap_bytes()
        } else {
            w
        }
    }

    #[cold]
    fn too_long(&self, offset: u64, caplen: u32) -> Fail {
        Fail::corrupt(offset, format!("record claims {caplen} bytes, more than the {} allowed", self.max_caplen))
    }

    /// The record header when it was not already buffered: `None` at a clean end of file.
    #[cold]
    fn refill_header(input: &mut Input) -> Result<Option<[u8; RECORD_HEADER_LEN]>, Fail> {
        if input.ensure(RECORD_HEADER_LEN)? {
            if let Some(h) = input.peek() {
                return Ok(Some(h));
            }
        }
        match input.available() {
            0 => Ok(None),
            n => Err(Fail::truncated(input.offset(), RECORD_HEADER_LEN, n)),
        }
    }
}

impl RecordReader for Reader {
    #[inline]
    fn next_is_buffered(&self, input: &Input) -> bool {
        input.peek::<RECORD_HEADER_LEN>().is_some_and(|header| {
            let caplen = self.word(u128::from_le_bytes(header), 2);
            input.available() >= RECORD_HEADER_LEN + caplen as usize
        })
    }

    #[inline]
    fn next_into(&mut self, input: &mut Input, each: &mut impl FnMut(&Frame<'_>)) -> Result<bool, Fail> {
        let header = match input.peek::<RECORD_HEADER_LEN>() {
            Some(h) => h,
            None => match Self::refill_header(input)? {
                Some(h) => h,
                None => return Ok(false),
            },
        };
        // One 16-byte load split into words: byte-wise assembly would defeat store forwarding.
        let words = u128::from_le_bytes(header);
        let word = |i: u32| self.word(words, i);
        let caplen = word(2);
        if caplen > self.max_caplen {
            return Err(self.too_long(input.offset(), caplen));
        }
        let len = RECORD_HEADER_LEN + caplen as usize;
        if !input.ensure(len)? {
            return Err(Fail::truncated(input.offset(), len, input.available()));
        }
        let secs = i64::from(word(0));
        let frac = i64::from(word(1));
        // Fractions out of range occur in real files: keep the arithmetic, which cannot overflow
        // (u32 seconds in ns plus u32 * 1000 stays below 2^63); wrapping only documents that.
        let ts_ns = secs.wrapping_mul(NS_PER_SEC).wrapping_add(frac.wrapping_mul(self.ns_per_frac));
        let wire_len = word(3).max(caplen);
        let offset = input.offset();
        match input.take(len).and_then(|r| r.get(RECORD_HEADER_LEN..)) {
            Some(data) => {
                each(&Frame { ts_ns, wire_len, link: self.link, data });
                Ok(true)
            }
            None => Err(Fail::truncated(offset, len, 0)),
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::capture::file::test_util::{next_owned, open, open_with, read_all, read_bytes, Trickle};
    use crate::capture::file::FileSource;
    use crate::capture::{CaptureErrorKind, LinkType};
    use capgen::hand::PcapBytes;

    fn payload(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed)).collect()
    }

    #[test]
    fn both_magics_in_both_byte_orders() {
        for big_endian in [false, true] {
            for nanos in [false, true] {
                let mut w = PcapBytes::new(big_endian, nanos, 65535, 1);
                w.record(1_600_000_000, 123_456, 60, &payload(60, 1));
                w.record(1_600_000_001, 999_999, 1514, &payload(40, 2));
                w.record(0, 0, 0, &[]);
                let (frames, err) = read_bytes(&w.bytes, 1 << 20);
                assert!(err.is_none(), "{err:?}");
                assert_eq!(frames.len(), 3);
                let unit = if nanos { 1 } else { 1_000 };
                assert_eq!(frames[0].ts_ns, 1_600_000_000 * 1_000_000_000 + 123_456 * unit);
                assert_eq!(frames[1].ts_ns, 1_600_000_001 * 1_000_000_000 + 999_999 * unit);
                assert_eq!(frames[2].ts_ns, 0);
                assert_eq!(frames[0].data, payload(60, 1));
                assert_eq!(frames[1].data, payload(40, 2));
                assert_eq!((frames[1].wire_len, frames[2].wire_len), (1514, 0));
                assert!(frames.iter().all(|f| f.link == LinkType::ETHERNET));
            }
        }
    }

    #[test]
    fn out_of_range_fractions_are_computed_not_rejected() {
        for nanos in [false, true] {
            let mut w = PcapBytes::new(false, nanos, 65535, 1);
            w.record(u32::MAX, u32::MAX, 4, &[1, 2, 3, 4]);
            w.record(10, 1_000_000_000, 4, &[1, 2, 3, 4]);
            let (frames, err) = read_bytes(&w.bytes, 1 << 20);
            assert!(err.is_none());
            let unit: i64 = if nanos { 1 } else { 1_000 };
            assert_eq!(frames[0].ts_ns, i64::from(u32::MAX) * 1_000_000_000 + i64::from(u32::MAX) * unit);
            assert_eq!(frames[1].ts_ns, 10 * 1_000_000_000 + 1_000_000_000 * unit);
        }
    }

    #[test]
    fn link_type_upper_bits_are_fcs_info() {
        let mut w = PcapBytes::new(true, false, 65535, 0x1400_0000 | 113);
        w.record(1, 2, 3, &[9, 9, 9]);
        let (frames, err) = read_bytes(&w.bytes, 1 << 20);
        assert!(err.is_none());
        assert_eq!(frames[0].link, LinkType::LINUX_SLL);
    }

    #[test]
    fn every_supported_link_type_opens() {
        for link in [0u32, 1, 12, 14, 101, 108, 113, 239, 276] {
            let w = PcapBytes::new(false, false, 65535, link);
            let (frames, err) = read_bytes(&w.bytes, 1 << 20);
            assert!(frames.is_empty() && err.is_none(), "link {link}");
        }
    }

    #[test]
    fn unsupported_link_type_fails_at_open() {
        let mut w = PcapBytes::new(false, false, 65535, 105);
        w.record(1, 2, 3, &[9, 9, 9]);
        let err = open(&w.bytes).unwrap_err();
        assert_eq!(err.kind, CaptureErrorKind::UnsupportedLinkType(105));
        assert_eq!((err.offset, err.path.as_str()), (20, "test"));
        assert!(err.to_string().contains("unsupported link type 105"), "{err}");
    }

    #[test]
    fn wire_len_is_at_least_caplen() {
        let mut w = PcapBytes::new(false, false, 65535, 1);
        w.record(1, 2, 10, &payload(50, 0));
        let (frames, _) = read_bytes(&w.bytes, 1 << 20);
        assert_eq!(frames[0].wire_len, 50);
    }

    #[test]
    fn truncated_last_record() {
        let mut w = PcapBytes::new(false, false, 65535, 1);
        w.record(1, 0, 100, &payload(100, 0));
        w.record(2, 0, 100, &payload(100, 1));
        let second = 24 + 16 + 100;
        for cut in [second + 100, second + 16, second + 15, second + 1] {
            let bytes = &w.bytes[..cut];
            let (frames, err) = read_bytes(bytes, 1 << 20);
            assert_eq!(frames.len(), 1, "cut at {cut}");
            let err = err.expect("truncation");
            assert!(err.is_truncation());
            assert_eq!(err.offset, second as u64);
            let available = (cut - second) as u64;
            let needed = if available < 16 { 16 } else { 116 };
            assert_eq!(err.kind, CaptureErrorKind::Truncated { needed, available });
        }
    }

    #[test]
    fn truncated_file_header() {
        let w = PcapBytes::new(false, false, 65535, 1);
        let err = open(&w.bytes[..10]).unwrap_err();
        assert_eq!(err.offset, 0);
        assert_eq!(err.kind, CaptureErrorKind::Truncated { needed: 24, available: 10 });
    }

    #[test]
    fn corrupt_record_length() {
        let mut w = PcapBytes::new(false, false, 100, 1);
        // Larger than the snap length but within libpcap's 262144: accepted.
        w.record(1, 0, 1000, &payload(1000, 0));
        let bad = w.bytes.len();
        w.u32(2);
        w.u32(0);
        w.u32(3_925_868_813);
        w.u32(3_925_868_813);
        w.bytes.extend_from_slice(&payload(100, 0));
        let (frames, err) = read_bytes(&w.bytes, 1 << 20);
        assert_eq!(frames.len(), 1);
        let err = err.expect("corrupt");
        assert_eq!(err.offset, bad as u64);
        match &err.kind {
            CaptureErrorKind::Corrupt(what) => {
                assert!(what.contains("record claims 3925868813 bytes"), "{what}")
            }
            other => panic!("{other:?}"),
        }
        // 262144 + 1 with a small snap length is corrupt.
        let mut w = PcapBytes::new(false, false, 100, 1);
        w.record(1, 0, 0, &payload(262_145, 0));
        let (frames, err) = read_bytes(&w.bytes, 1 << 20);
        assert!(frames.is_empty());
        assert!(matches!(err.map(|e| e.kind), Some(CaptureErrorKind::Corrupt(_))));
    }

    #[test]
    fn huge_snaplen_still_caps_records_at_16_mib() {
        let mut w = PcapBytes::new(false, false, u32::MAX, 1);
        w.u32(1);
        w.u32(0);
        w.u32((16 << 20) + 1);
        w.u32(0);
        let (frames, err) = read_bytes(&w.bytes, 1 << 20);
        assert!(frames.is_empty());
        assert!(matches!(err.map(|e| e.kind), Some(CaptureErrorKind::Corrupt(_))));
    }

    /// A record of exactly 16 MiB is legal and makes the buffer grow to hold it.
    #[test]
    fn record_larger_than_buffer_grows_it() {
        let big = payload(16 << 20, 7);
        let mut w = PcapBytes::new(false, true, u32::MAX, 101);
        w.record(5, 6, 0, &payload(10, 1));
        w.record(7, 8, 0, &big);
        w.record(9, 10, 0, &payload(10, 2));
        for buffer in [64, 1 << 20] {
            let (frames, err) = read_bytes(&w.bytes, buffer);
            assert!(err.is_none());
            assert_eq!(frames.len(), 3);
            assert!(frames[1].data == big);
            assert_eq!(frames[2].data, payload(10, 2));
            assert_eq!(frames[2].ts_ns, 9_000_000_010);
        }
    }

    /// Every initial buffer size from tiny up, so that records end exactly at the buffer end,
    /// straddle it, and exceed it.
    #[test]
    fn buffer_boundaries() {
        let mut w = PcapBytes::new(true, false, 65535, 1);
        for i in 0..40u32 {
            w.record(i, i, 1000, &payload((i as usize * 7) % 97, i as u8));
        }
        let (reference, err) = read_bytes(&w.bytes, 1 << 20);
        assert!(err.is_none());
        assert_eq!(reference.len(), 40);
        for buffer in 1..200 {
            let (frames, err) = read_bytes(&w.bytes, buffer);
            assert!(err.is_none(), "buffer {buffer}");
            assert_eq!(frames, reference, "buffer {buffer}");
        }
        // The first record fills a 24 + 16 + 40 byte buffer exactly.
        let mut w = PcapBytes::new(false, false, 65535, 1);
        w.record(1, 0, 40, &payload(40, 1));
        w.record(2, 0, 40, &payload(40, 2));
        let (frames, err) = read_bytes(&w.bytes, 80);
        assert!(err.is_none());
        assert_eq!(frames.len(), 2);
        assert_eq!(frames[1].data, payload(40, 2));
    }

    #[test]
    fn slow_reader_with_interruptions() {
        let mut w = PcapBytes::new(false, false, 65535, 1);
        for i in 0..50u32 {
            w.record(i, 0, 300, &payload(i as usize * 5, i as u8));
        }
        let (reference, _) = read_bytes(&w.bytes, 1 << 20);
        for chunk in [1, 3, 16, 1000] {
            let reader = Trickle { data: w.bytes.clone(), pos: 0, chunk, interrupt: false };
            let mut src = FileSource::with_buffer("slow", Box::new(reader), None, 64).unwrap();
            let (frames, err) = read_all(&mut src);
            assert!(err.is_none());
            assert_eq!(frames, reference, "chunk {chunk}");
        }
    }

    #[test]
    fn progress_counts_consumed_bytes() {
        let mut w = PcapBytes::new(false, false, 65535, 1);
        w.record(1, 0, 10, &payload(10, 0));
        w.record(2, 0, 10, &payload(10, 0));
        let mut src = open_with(&w.bytes, 1 << 20).unwrap();
        assert_eq!(src.progress(), (24, None));
        next_owned(&mut src).unwrap();
        assert_eq!(src.progress().0, 50);
        while next_owned(&mut src).unwrap().is_some() {}
        assert_eq!(src.progress().0, w.bytes.len() as u64);
        assert_eq!(src.name(), "test");
    }
}
