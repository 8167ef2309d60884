//! pcapng files: a sequence of blocks, each `type, total length, body, total length`.
//!
//! Every Section Header Block sets the byte order for its section and resets the interface
//! list. Packets come from Enhanced, Simple and (obsolete) Packet Blocks; every other block
//! type is skipped by its length.

use super::file::{is_supported_link, u16_from, u32_from, Fail, Input, RecordReader, MAX_RECORD_LEN};
use super::{CaptureErrorKind, Frame, LinkType};

/// The Section Header Block type reads the same in both byte orders.
const SHB_TYPE: [u8; 4] = [0x0a, 0x0d, 0x0d, 0x0a];
const SHB: u32 = 0x0A0D_0D0A;
const IDB: u32 = 1;
const PB: u32 = 2;
const SPB: u32 = 3;
const EPB: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1A2B_3C4D;

/// Block type and total length.
const BLOCK_HEADER_LEN: usize = 8;
/// Block header plus the byte-order magic: what is needed to read an SHB's length.
const SHB_PREFIX_LEN: usize = 12;
/// Block header plus trailing length.
const BLOCK_OVERHEAD: usize = 12;
/// Smallest legal length per block type (fixed fields, no options, no data).
const SHB_MIN_LEN: usize = 28;
const IDB_MIN_LEN: usize = 20;
const EPB_MIN_LEN: usize = 32;
const PB_MIN_LEN: usize = 32;
const SPB_MIN_LEN: usize = 16;
/// Where the packet data starts in EPBs and PBs, and in SPBs.
const EPB_DATA_OFFSET: usize = 28;
const SPB_DATA_OFFSET: usize = 12;
/// Where an IDB's options start.
const IDB_OPTIONS_OFFSET: usize = 16;

const OPT_END: u16 = 0;
const OPT_IF_TSRESOL: u16 = 9;
const OPT_IF_TSOFFSET: u16 = 14;
const OPTION_HEADER_LEN: usize = 4;

/// Interfaces per section; an interface costs memory, so a damaged file may not declare millions.
const MAX_INTERFACES: usize = 1 << 16;
const NS_PER_SEC: i128 = 1_000_000_000;
/// Decimal and binary resolution exponents beyond these cannot be converted.
const MAX_DECIMAL_EXP: u8 = 19;
const MAX_BINARY_EXP: u8 = 63;

/// Whether the first four bytes are a pcapng Section Header Block.
pub(super) fn is_magic(magic: [u8; 4]) -> bool {
    magic == SHB_TYPE
}

/// How timestamp units become nanoseconds.
#[derive(Clone, Copy, Debug)]
enum Scale {
    /// 10^-n with n ≤ 9: multiply by 10^(9-n).
    Mul(u64),
    /// 10^-n with n > 9: divide by 10^(n-9).
    Div(u64),
    /// 2^-n: multiply by 10^9, shift right by n.
    Shift(u32),
}

#[derive(Clone, Copy, Debug)]
struct Interface {
    link: u16,
    /// Whether the decoder handles `link`; checked per packet, so computed once.
    supported: bool,
    /// 0 means no limit.
    snaplen: u32,
    scale: Scale,
    /// if_tsoffset, in nanoseconds.
    offset_ns: i128,
}

impl Interface {
    #[inline(always)]
    fn ts_ns(&self, units: u64) -> i64 {
        // The common case (decimal resolution, no offset, no overflow) without 128-bit math.
        if let (Scale::Mul(m), 0) = (self.scale, self.offset_ns) {
            if let Some(ns) = units.checked_mul(m) {
                if let Ok(ns) = i64::try_from(ns) {
                    return ns;
                }
            }
        }
        self.ts_ns_wide(units)
    }

    fn ts_ns_wide(&self, units: u64) -> i64 {
        let ns = match self.scale {
            Scale::Mul(m) => i128::from(units) * i128::from(m),
            Scale::Div(d) => i128::from(units / d),
            Scale::Shift(n) => ((u128::from(units) * NS_PER_SEC as u128) >> n) as i128,
        };
        // Both terms stay far below i128's range; only the result may leave i64's.
        let ns = ns + self.offset_ns;
        i64::try_from(ns).unwrap_or(if ns < 0 { i64::MIN } else { i64::MAX })
    }
}

/// A packet found in a block: where its data sits in the block, and what it is.
struct Packet {
    data_offset: usize,
    caplen: usize,
    wire_len: u32,
    ts_ns: i64,
    link: LinkType,
}

pub(super) struct Reader {
    big_endian: bool,
    interfaces: Vec<Interface>,
    /// Simple Packet Blocks carry no timestamp and reuse the previous packet's.
    last_ts_ns: i64,
}

impl Reader {
    /// Reads the first Section Header Block; `input` is at offset 0 and holds the SHB type.
    pub(super) fn open(input: &mut Input) -> Result<Reader, Fail> {
        let mut reader = Reader { big_endian: false, interfaces: Vec::new(), last_ts_ns: 0 };
        match reader.block(input)? {
            Some((SHB, len)) => {
                let block = input.rest().get(..len).unwrap_or_default();
                reader.other_block(SHB, block, 0)?;
                input.take(len);
                Ok(reader)
            }
            // Unreachable with an SHB magic; reported rather than assumed.
            _ => Err(Fail::corrupt(0, "pcapng file does not start with a section header".into())),
        }
    }

    /// Buffers and checks the next block: `(type, total length)`, or `None` at a clean end.
    /// The whole block is then available through `input.rest()`; it is not consumed.
    #[inline(always)]
    fn block(&mut self, input: &mut Input) -> Result<Option<(u32, usize)>, Fail> {
        if !input.ensure(BLOCK_HEADER_LEN)? {
            return match input.available() {
                0 => Ok(None),
                n => Err(Fail::truncated(input.offset(), BLOCK_HEADER_LEN, n)),
            };
        }
        let Some(header) = input.peek::<BLOCK_HEADER_LEN>() else {
            return Err(Fail::truncated(input.offset(), BLOCK_HEADER_LEN, 0));
        };
        // One 8-byte load split into words: byte-wise assembly would defeat store forwarding.
        let words = u64::from_le_bytes(header);
        if words as u32 == u32::from_le_bytes(SHB_TYPE) {
            self.section_byte_order(input)?;
        }
        let be = self.big_endian;
        let word = |w: u32| if be { w.swap_bytes() } else { w };
        let btype = word(words as u32);
        let len = word((words >> 32) as u32);
        let min_len = match btype {
            EPB => EPB_MIN_LEN,
            PB => PB_MIN_LEN,
            SPB => SPB_MIN_LEN,
            IDB => IDB_MIN_LEN,
            SHB => SHB_MIN_LEN,
            _ => BLOCK_OVERHEAD,
        };
        if len as usize > MAX_RECORD_LEN || len % 4 != 0 || (len as usize) < min_len {
            return Err(bad_length(input.offset(), btype, len, min_len));
        }
        let len = len as usize;
        if !input.ensure(len)? {
            return Err(Fail::truncated(input.offset(), len, input.available()));
        }
        let trailing = match input.rest().get(..len).and_then(|b| b.last_chunk::<4>()) {
            Some(t) => u32_from(be, *t),
            None => 0,
        };
        if trailing as usize != len {
            return Err(bad_trailer(input.offset(), btype, trailing, len));
        }
        Ok(Some((btype, len)))
    }

    /// A Section Header Block's byte-order magic sets how the section, its own length
    /// included, is read.
    #[cold]
    fn section_byte_order(&mut self, input: &mut Input) -> Result<(), Fail> {
        let offset = input.offset();
        if !input.ensure(SHB_PREFIX_LEN)? {
            return Err(Fail::truncated(offset, SHB_PREFIX_LEN, input.available()));
        }
        let Some([.., b0, b1, b2, b3]) = input.peek::<SHB_PREFIX_LEN>() else {
            return Err(Fail::truncated(offset, SHB_PREFIX_LEN, input.available()));
        };
        self.big_endian = match u32::from_be_bytes([b0, b1, b2, b3]) {
            BYTE_ORDER_MAGIC => true,
            m if m.swap_bytes() == BYTE_ORDER_MAGIC => false,
            m => {
                return Err(Fail::corrupt(offset, format!("section header has byte-order magic {m:08x}, not 1a2b3c4d")))
            }
        };
        Ok(())
    }

    /// Any block but a packet: section and interface headers are read, the rest ignored.
    #[cold]
    fn other_block(&mut self, btype: u32, block: &[u8], offset: u64) -> Result<(), Fail> {
        match btype {
            SHB => self.section(block, offset),
            IDB => self.interface(block, offset),
            _ => Ok(()),
        }
    }

    fn u32_at(&self, block: &[u8], at: usize) -> u32 {
        match block.get(at..).and_then(|b| b.first_chunk::<4>()) {
            Some(b) => u32_from(self.big_endian, *b),
            None => 0,
        }
    }

    fn u16_at(&self, block: &[u8], at: usize) -> u16 {
        match block.get(at..).and_then(|b| b.first_chunk::<2>()) {
            Some(b) => u16_from(self.big_endian, *b),
            None => 0,
        }
    }

    /// Section Header Block (length already checked ≥ [`SHB_MIN_LEN`]).
    fn section(&mut self, block: &[u8], offset: u64) -> Result<(), Fail> {
        let major = self.u16_at(block, 12);
        if major != 1 {
            return Err(Fail::corrupt(offset, format!("unsupported pcapng major version {major}")));
        }
        self.interfaces.clear();
        Ok(())
    }

    /// Interface Description Block (length already checked ≥ [`IDB_MIN_LEN`]).
    fn interface(&mut self, block: &[u8], offset: u64) -> Result<(), Fail> {
        if self.interfaces.len() >= MAX_INTERFACES {
            return Err(Fail::corrupt(offset, format!("more than {MAX_INTERFACES} interfaces in a section")));
        }
        let link = self.u16_at(block, 8);
        let mut iface = Interface {
            link,
            supported: is_supported_link(link),
            snaplen: self.u32_at(block, 12),
            scale: Scale::Mul(1_000),
            offset_ns: 0,
        };
        let end = block.len().saturating_sub(4);
        let mut options = block.get(IDB_OPTIONS_OFFSET..end).unwrap_or_default();
        while options.len() >= OPTION_HEADER_LEN {
            let code = self.u16_at(options, 0);
            let len = usize::from(self.u16_at(options, 2));
            if code == OPT_END {
                break;
            }
            let Some(value) = options.get(OPTION_HEADER_LEN..OPTION_HEADER_LEN + len) else {
                return Err(Fail::corrupt(
                    offset,
                    format!("interface option {code} claims {len} bytes, past the end of its block"),
                ));
            };
            match (code, value) {
                (OPT_IF_TSRESOL, [res]) => iface.scale = scale(*res, offset)?,
                (OPT_IF_TSOFFSET, &[a, b, c, d, e, f, g, h]) => {
                    let bytes = [a, b, c, d, e, f, g, h];
                    let secs = if self.big_endian { i64::from_be_bytes(bytes) } else { i64::from_le_bytes(bytes) };
                    iface.offset_ns = i128::from(secs) * NS_PER_SEC;
                }
                (OPT_IF_TSRESOL | OPT_IF_TSOFFSET, _) => {
                    return Err(Fail::corrupt(offset, format!("interface option {code} has length {len}")))
                }
                _ => {}
            }
            let padded = OPTION_HEADER_LEN + len.div_ceil(4) * 4;
            options = options.get(padded..).unwrap_or_default();
        }
        self.interfaces.push(iface);
        Ok(())
    }

    /// The interface a packet block names, if it exists and its link type is supported.
    #[inline]
    fn iface(&self, id: u32, offset: u64) -> Result<&Interface, Fail> {
        let Some(iface) = self.interfaces.get(id as usize) else {
            return Err(Fail::corrupt(
                offset,
                format!("packet names interface {id} but the section has {} interface(s)", self.interfaces.len()),
            ));
        };
        if !iface.supported {
            return Err(Fail { offset, kind: CaptureErrorKind::UnsupportedLinkType(u32::from(iface.link)) });
        }
        Ok(iface)
    }

    /// Enhanced Packet Block or obsolete Packet Block (length checked ≥ 32).
    #[inline(always)]
    fn packet(&mut self, block: &[u8], btype: u32, offset: u64) -> Result<Packet, Fail> {
        let Some(fixed) = block.first_chunk::<EPB_DATA_OFFSET>() else {
            return Err(Fail::truncated(offset, EPB_MIN_LEN, block.len()));
        };
        // type, length, interface, ts high, ts low, captured length, original length.
        let [_, _, iface_word, ts_hi, ts_lo, caplen, orig_len] = words(self.big_endian, fixed);
        // A Packet Block's interface id is a u16, the first half of that word in file order.
        let id = match (btype, self.big_endian) {
            (PB, true) => iface_word >> 16,
            (PB, false) => iface_word & 0xffff,
            _ => iface_word,
        };
        let units = u64::from(ts_hi) << 32 | u64::from(ts_lo);
        let room = block.len().saturating_sub(EPB_MIN_LEN);
        if caplen as usize > room {
            return Err(Fail::corrupt(
                offset,
                format!("packet claims {caplen} captured bytes but its block holds {room}"),
            ));
        }
        let iface = self.iface(id, offset)?;
        let ts_ns = iface.ts_ns(units);
        let link = LinkType(iface.link);
        self.last_ts_ns = ts_ns;
        Ok(Packet {
            data_offset: EPB_DATA_OFFSET,
            caplen: caplen as usize,
            wire_len: orig_len.max(caplen),
            ts_ns,
            link,
        })
    }

    /// Simple Packet Block (length checked ≥ 16): interface 0, no timestamp, no capture length.
    fn simple_packet(&mut self, block: &[u8], offset: u64) -> Result<Packet, Fail> {
        let orig_len = self.u32_at(block, 8);
        let iface = self.iface(0, offset)?;
        let room = block.len().saturating_sub(SPB_MIN_LEN);
        let mut caplen = (orig_len as usize).min(room);
        if iface.snaplen != 0 {
            caplen = caplen.min(iface.snaplen as usize);
        }
        Ok(Packet {
            data_offset: SPB_DATA_OFFSET,
            caplen,
            wire_len: orig_len,
            ts_ns: self.last_ts_ns,
            link: LinkType(iface.link),
        })
    }
}

impl RecordReader for Reader {
    #[inline]
    fn next_into(&mut self, input: &mut Input, each: &mut impl FnMut(&Frame<'_>)) -> Result<bool, Fail> {
        let Some((btype, len)) = self.block(input)? else {
            return Ok(false);
        };
        let offset = input.offset();
        // `block` has checked that `len` bytes are buffered.
        let block = input.rest().get(..len).unwrap_or_default();
        let packet = match btype {
            EPB | PB => self.packet(block, btype, offset)?,
            SPB => self.simple_packet(block, offset)?,
            _ => {
                self.other_block(btype, block, offset)?;
                input.take(len);
                return Ok(true);
            }
        };
        let start = packet.data_offset;
        match input.take(len).and_then(|b| b.get(start..start + packet.caplen)) {
            Some(data) => {
                each(&Frame { ts_ns: packet.ts_ns, wire_len: packet.wire_len, link: packet.link, data });
                Ok(true)
            }
            None => Err(Fail::truncated(offset, len, 0)),
        }
    }

    #[inline]
    fn next_is_buffered(&self, input: &Input) -> bool {
        // A section header may change the byte order: call it unbuffered (it is rare).
        input.peek::<BLOCK_HEADER_LEN>().is_some_and(|header| {
            let words = u64::from_le_bytes(header);
            let len = if self.big_endian { ((words >> 32) as u32).swap_bytes() } else { (words >> 32) as u32 };
            words as u32 != u32::from_le_bytes(SHB_TYPE) && input.available() >= len as usize
        })
    }
}

/// The 32-bit words of a block's fixed fields, in the section's byte order.
#[inline(always)]
fn words<const N: usize, const B: usize>(big_endian: bool, bytes: &[u8; B]) -> [u32; N] {
    let mut out = [0u32; N];
    for (word, chunk) in out.iter_mut().zip(bytes.chunks_exact(4)) {
        if let Ok(b) = <[u8; 4]>::try_from(chunk) {
            *word = u32_from(big_endian, b);
        }
    }
    out
}

#[cold]
fn bad_length(offset: u64, btype: u32, len: u32, min_len: usize) -> Fail {
    Fail::corrupt(
        offset,
        format!(
            "block of type {btype:#x} claims length {len}: must be a multiple of 4 between {min_len} and {MAX_RECORD_LEN}"
        ),
    )
}

#[cold]
fn bad_trailer(offset: u64, btype: u32, trailing: u32, len: usize) -> Fail {
    Fail::corrupt(
        offset,
        format!("block of type {btype:#x}: trailing length {trailing} differs from leading length {len}"),
    )
}

/// The if_tsresol value: high bit clear is 10^-n s, set is 2^-n s.
fn scale(res: u8, offset: u64) -> Result<Scale, Fail> {
    let exp = res & 0x7f;
    let binary = res & 0x80 != 0;
    match (binary, exp) {
        (false, 0..=9) => Ok(Scale::Mul(10u64.pow(9 - u32::from(exp)))),
        (false, 10..=MAX_DECIMAL_EXP) => Ok(Scale::Div(10u64.pow(u32::from(exp) - 9))),
        (true, 0..=MAX_BINARY_EXP) => Ok(Scale::Shift(u32::from(exp))),
        _ => Err(Fail::corrupt(offset, format!("interface time resolution {res:#04x} is out of range"))),
    }
}

#[cfg(test)]
mod tests {
    use crate::capture::file::test_util::{open, read_bytes, Owned};
    use crate::capture::{CaptureError, CaptureErrorKind, LinkType};
    use capgen::hand::PcapngBytes;

    fn payload(n: usize, seed: u8) -> Vec<u8> {
        (0..n).map(|i| (i as u8).wrapping_mul(13).wrapping_add(seed)).collect()
    }

    fn read(bytes: &[u8]) -> (Vec<Owned>, Option<CaptureError>) {
        read_bytes(bytes, 1 << 20)
    }

    fn corrupt_text(err: Option<CaptureError>) -> (u64, String) {
        match err {
            Some(CaptureError { offset, kind: CaptureErrorKind::Corrupt(what), .. }) => (offset, what),
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn two_sections_of_different_byte_order() {
        let mut w = PcapngBytes::new();
        w.shb(false);
        w.idb(1, 0, None, None);
        w.idb(1, 0, None, None);
        w.epb(1, 1_000_001, 60, &payload(60, 1));
        w.shb(true);
        w.idb(113, 0, Some(9), None);
        w.epb(0, 2_000_000_002, 50, &payload(50, 2));
        let good = w.bytes.len() as u64;
        // Section two has one interface: the first section's second one is gone.
        w.epb(1, 0, 10, &payload(10, 3));
        let (frames, err) = read(&w.bytes);
        assert_eq!(frames.len(), 2);
        assert_eq!((frames[0].ts_ns, frames[0].link), (1_000_001_000, LinkType::ETHERNET));
        assert_eq!(frames[0].data, payload(60, 1));
        assert_eq!((frames[1].ts_ns, frames[1].link), (2_000_000_002, LinkType::LINUX_SLL));
        assert_eq!(frames[1].data, payload(50, 2));
        let (offset, what) = corrupt_text(err);
        assert_eq!(offset, good);
        assert!(what.contains("interface 1"), "{what}");
    }

    #[test]
    fn interfaces_with_own_link_types_and_resolutions() {
        let mut w = PcapngBytes::new();
        w.shb(false);
        w.idb(1, 0, Some(9), None); // ns
        w.idb(101, 0, Some(0x80 | 20), None); // 2^-20 s
        w.idb(113, 0, None, Some(-10)); // µs, 10 s earlier
        w.idb(239, 0, Some(0), None); // seconds
        w.idb(276, 0, Some(19), None); // 10^-19 s
        w.idb(0, 0, Some(0x80 | 63), None); // 2^-63 s
        w.epb(0, 1_600_000_000_123_456_789, 60, &payload(60, 0));
        w.epb(1, 3 << 20 | 1 << 19, 70, &payload(61, 1));
        w.epb(2, 20_000_001, 62, &payload(62, 2));
        w.epb(3, 7, 63, &payload(63, 3));
        w.epb(4, 12_345_678_901_234_567_890, 64, &payload(64, 4));
        w.epb(5, 1 << 62, 0, &[]);
        let (frames, err) = read(&w.bytes);
        assert!(err.is_none(), "{err:?}");
        let got: Vec<(i64, u16, usize, u32)> =
            frames.iter().map(|f| (f.ts_ns, f.link.0, f.data.len(), f.wire_len)).collect();
        assert_eq!(
            got,
            [
                (1_600_000_000_123_456_789, 1, 60, 60),
                (3_500_000_000, 101, 61, 70),
                (10_000_001_000, 113, 62, 62),
                (7_000_000_000, 239, 63, 63),
                (1_234_567_890, 276, 64, 64),
                (500_000_000, 0, 0, 0),
            ]
        );
        assert_eq!(frames[1].data, payload(61, 1));
    }

    #[test]
    fn timestamps_saturate() {
        let mut w = PcapngBytes::new();
        w.shb(false);
        w.idb(1, 0, Some(0), None);
        w.idb(1, 0, None, Some(i64::MIN));
        w.idb(1, 0, Some(0), Some(i64::MAX));
        w.epb(0, u64::MAX, 1, &[1]);
        w.epb(1, 5, 1, &[1]);
        w.epb(2, u64::MAX, 1, &[1]);
        let (frames, err) = read(&w.bytes);
        assert!(err.is_none());
        let ts: Vec<i64> = frames.iter().map(|f| f.ts_ns).collect();
        assert_eq!(ts, [i64::MAX, i64::MIN, i64::MAX]);
    }

    #[test]
    fn simple_packet_blocks() {
        let mut w = PcapngBytes::new();
        w.shb(true);
        w.idb(1, 64, None, None);
        w.spb(20, &payload(20, 9)); // before any timestamp: 0
        w.epb(0, 5_000_000, 80, &payload(80, 0));
        w.spb(100, &payload(100, 1)); // cut to the snap length
        w.spb(10, &payload(10, 2)); // body padded to 12: cut to orig_len
        w.spb(200, &payload(40, 3)); // orig_len beyond the body: cut to the body
        let (frames, err) = read(&w.bytes);
        assert!(err.is_none(), "{err:?}");
        let got: Vec<(i64, usize, u32)> = frames.iter().map(|f| (f.ts_ns, f.data.len(), f.wire_len)).collect();
        assert_eq!(
            got,
            [
                (0, 20, 20),
                (5_000_000_000, 80, 80),
                (5_000_000_000, 64, 100),
                (5_000_000_000, 10, 10),
                (5_000_000_000, 40, 200)
            ]
        );
        assert_eq!(frames[2].data, payload(64, 1));
        assert_eq!(frames[3].data, payload(10, 2));
        // Snap length 0 means unlimited.
        let mut w = PcapngBytes::new();
        w.shb(false);
        w.idb(101, 0, None, None);
        w.spb(100, &payload(100, 1));
        let (frames, _) = read(&w.bytes);
        assert_eq!((frames[0].data.len(), frames[0].link), (100, LinkType::RAW));
        // No interface at all.
        let mut w = PcapngBytes::new();
        w.shb(false);
        w.spb(4, &[1, 2, 3, 4]);
        let (frames, err) = read(&w.bytes);
        assert!(frames.is_empty());
        assert_eq!(corrupt_text(err).0, 28);
    }

    #[test]
    fn obsolete_packet_block() {
        let mut w = PcapngBytes::new();
        w.shb(true);
        w.idb(1, 0, None, None);
        w.idb(108, 0, Some(3), None);
        w.pb(1, 42, 99, &payload(33, 5));
        let (frames, err) = read(&w.bytes);
        assert!(err.is_none());
        assert_eq!((frames[0].ts_ns, frames[0].wire_len, frames[0].link), (42_000_000, 99, LinkType::LOOP));
        assert_eq!(frames[0].data, payload(33, 5));
    }

    #[test]
    fn other_blocks_are_skipped() {
        let mut w = PcapngBytes::new();
        w.shb(false);
        w.block(4, &payload(30, 0)); // name resolution
        w.idb(1, 0, None, None);
        w.epb(0, 1, 10, &payload(10, 0));
        w.block(5, &payload(40, 0)); // interface statistics
        w.block(0x0A, &payload(7, 0)); // decryption secrets
        w.block(0x0000_0BAD, &payload(100, 0)); // custom
        w.block(0x4000_0BAD, &[]);
        w.block(0x8000_0001, &payload(1 << 20, 0)); // large: bigger than the test buffer
        w.epb(0, 2, 10, &payload(10, 1));
        for buffer in [64, 1 << 20] {
            let (frames, err) = read_bytes(&w.bytes, buffer);
            assert!(err.is_none());
            assert_eq!(frames.len(), 2);
            assert_eq!(frames[1].data, payload(10, 1));
        }
    }

    #[test]
    fn bad_block_lengths() {
        let mut base = PcapngBytes::new();
        base.shb(false);
        base.idb(1, 0, None, None);
        base.epb(0, 1, 10, &payload(10, 0));
        let at = base.bytes.len() as u64;
        let cases: [(u32, u32, &str); 6] = [
            (13, 13, "length 13"),
            (8, 8, "length 8"),
            (0, 0, "length 0"),
            (0x7fff_fffc, 0x7fff_fffc, "length 2147483644"),
            (32, 36, "trailing length 36"),
            (28, 28, "length 28"), // an EPB below its 32-byte minimum
        ];
        for (leading, trailing, expect) in cases {
            let mut bytes = base.bytes.clone();
            bytes.extend_from_slice(&6u32.to_le_bytes());
            bytes.extend_from_slice(&leading.to_le_bytes());
            let body = (leading.clamp(12, 64) - 12) as usize;
            bytes.extend(payload(body, 0));
            bytes.extend_from_slice(&trailing.to_le_bytes());
            let (frames, err) = read(&bytes);
            assert_eq!(frames.len(), 1, "{expect}");
            let (offset, what) = corrupt_text(err);
            assert_eq!(offset, at);
            assert!(what.contains(expect), "{what} lacks {expect}");
        }
    }

    #[test]
    fn bad_captured_length_and_options() {
        // EPB claiming more captured bytes than its block holds.
        let mut w = PcapngBytes::new();
        w.shb(false);
        w.idb(1, 0, None, None);
        let at = w.bytes.len();
        w.epb(0, 1, 10, &payload(10, 0));
        w.bytes[at + 20..at + 24].copy_from_slice(&1000u32.to_le_bytes());
        let (offset, what) = corrupt_text(read(&w.bytes).1);
        assert_eq!(offset, at as u64);
        assert!(what.contains("1000"), "{what}");
        // Time resolutions out of range, a resolution of the wrong size, an option past the end.
        for option in [w.option(9, &[20]), w.option(9, &[0x80 | 64]), w.option(9, &[6, 0]), w.option(14, &[1])] {
            let mut w = PcapngBytes::new();
            w.shb(true);
            w.idb(1, 0, None, None);
            let at = w.bytes.len() as u64;
            let mut body = vec![0, 1, 0, 0, 0, 0, 0, 0];
            body.extend(option);
            w.block(1, &body);
            let (frames, err) = read(&w.bytes);
            assert!(frames.is_empty());
            assert_eq!(corrupt_text(err).0, at);
        }
        let mut w = PcapngBytes::new();
        w.shb(true);
        let mut body = vec![0, 1, 0, 0, 0, 0, 0, 0];
        body.extend([0, 2, 0, 200]); // option 2 claiming 200 bytes
        w.block(1, &body);
        assert!(corrupt_text(read(&w.bytes).1).1.contains("200"));
    }

    #[test]
    fn unsupported_link_type_only_when_used() {
        let mut w = PcapngBytes::new();
        w.shb(false);
        w.idb(147, 0, None, None);
        w.idb(1, 0, None, None);
        w.epb(1, 1, 10, &payload(10, 0));
        let at = w.bytes.len() as u64;
        w.epb(0, 1, 10, &payload(10, 0));
        let (frames, err) = read(&w.bytes);
        assert_eq!(frames.len(), 1);
        let err = err.unwrap();
        assert_eq!((err.offset, err.kind), (at, CaptureErrorKind::UnsupportedLinkType(147)));
    }

    #[test]
    fn truncated_blocks() {
        let mut w = PcapngBytes::new();
        w.shb(false);
        w.idb(1, 0, None, None);
        w.epb(0, 1, 10, &payload(10, 0));
        let at = w.bytes.len();
        w.epb(0, 2, 100, &payload(100, 0));
        let len = w.bytes.len() - at;
        let (frames, err) = read(&w.bytes);
        assert_eq!((frames.len(), err), (2, None));
        for keep in [1, 7, 8, 50, len - 1] {
            let (frames, err) = read(&w.bytes[..at + keep]);
            assert_eq!(frames.len(), 1);
            let err = err.unwrap();
            let needed = if keep < 8 { 8 } else { len as u64 };
            assert_eq!(err.offset, at as u64);
            assert_eq!(err.kind, CaptureErrorKind::Truncated { needed, available: keep as u64 });
        }
        // A section header cut before its byte-order magic, at open and later.
        let err = open(&w.bytes[..10]).unwrap_err();
        assert_eq!(err.kind, CaptureErrorKind::Truncated { needed: 12, available: 10 });
        let err = open(&w.bytes[..4]).unwrap_err();
        assert_eq!(err.kind, CaptureErrorKind::Truncated { needed: 8, available: 4 });
        let mut bytes = w.bytes.clone();
        bytes.extend_from_slice(&w.bytes[..9]);
        let (frames, err) = read(&bytes);
        assert_eq!(frames.len(), 2);
        assert_eq!(err.unwrap().offset, w.bytes.len() as u64);
    }

    #[test]
    fn bad_section_headers() {
        let mut w = PcapngBytes::new();
        w.shb(false);
        let mut bad_magic = w.bytes.clone();
        bad_magic[8..12].copy_from_slice(&[1, 2, 3, 4]);
        let err = open(&bad_magic).unwrap_err();
        assert!(matches!(err.kind, CaptureErrorKind::Corrupt(ref s) if s.contains("byte-order")), "{err}");
        let mut version = w.bytes.clone();
        version[12..14].copy_from_slice(&2u16.to_le_bytes());
        let err = open(&version).unwrap_err();
        assert!(matches!(err.kind, CaptureErrorKind::Corrupt(ref s) if s.contains("version 2")), "{err}");
        // A bad second section is reported at its offset.
        let mut bytes = w.bytes.clone();
        bytes.extend_from_slice(&bad_magic);
        let (_, err) = read(&bytes);
        assert_eq!(corrupt_text(err).0, w.bytes.len() as u64);
        // Only a section header: no frames, no error.
        let (frames, err) = read(&w.bytes);
        assert!(frames.is_empty() && err.is_none());
    }

    #[test]
    fn buffer_boundaries() {
        let mut w = PcapngBytes::new();
        w.shb(false);
        w.idb(1, 0, None, None);
        w.idb(113, 32, Some(9), None);
        for i in 0..30u32 {
            match i % 4 {
                0 => w.epb(0, u64::from(i), 100, &payload(i as usize * 3, i as u8)),
                1 => w.epb(1, u64::from(i), 100, &payload(i as usize, i as u8)),
                2 => w.block(5, &payload(i as usize, 0)),
                _ => w.pb(0, u64::from(i), 100, &payload(i as usize * 2, i as u8)),
            }
            if i == 15 {
                w.shb(true);
                w.idb(1, 0, None, None);
                w.idb(113, 32, Some(9), None);
                w.spb(20, &payload(20, 0));
            }
        }
        let (reference, err) = read(&w.bytes);
        assert!(err.is_none());
        assert_eq!(reference.len(), 24);
        for buffer in 1..300 {
            let (frames, err) = read_bytes(&w.bytes, buffer);
            assert!(err.is_none(), "buffer {buffer}");
            assert_eq!(frames, reference, "buffer {buffer}");
        }
    }
}
