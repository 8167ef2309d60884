//! Capture files built by hand, every header field chosen by the caller, in either byte order:
//! odd, old or damaged files on purpose, for the tests of a capture reader. (The scenarios use
//! the canonical writers in [`crate::pcap`] and [`crate::pcapng`].)

/// A classic pcap file built field by field.
pub struct PcapBytes {
    pub bytes: Vec<u8>,
    big_endian: bool,
}

impl PcapBytes {
    /// `nanos` picks the a1b23c4d magic.
    pub fn new(big_endian: bool, nanos: bool, snaplen: u32, link: u32) -> PcapBytes {
        let mut w = PcapBytes { bytes: Vec::new(), big_endian };
        w.u32(if nanos { 0xa1b2_3c4d } else { 0xa1b2_c3d4 });
        w.u16(2);
        w.u16(4);
        w.u32(0);
        w.u32(0);
        w.u32(snaplen);
        w.u32(link);
        w
    }

    pub fn u32(&mut self, v: u32) {
        let b = if self.big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        self.bytes.extend_from_slice(&b);
    }

    pub fn u16(&mut self, v: u16) {
        let b = if self.big_endian { v.to_be_bytes() } else { v.to_le_bytes() };
        self.bytes.extend_from_slice(&b);
    }

    /// A record with explicit header fields (caplen is `data.len()`).
    pub fn record(&mut self, sec: u32, frac: u32, orig_len: u32, data: &[u8]) {
        self.u32(sec);
        self.u32(frac);
        self.u32(data.len() as u32);
        self.u32(orig_len);
        self.bytes.extend_from_slice(data);
    }
}

/// A pcapng file built block by block; each block is written whole. Empty at first: begin
/// with [`shb`](Self::shb), or leave it out to build a file without a section.
#[derive(Default)]
pub struct PcapngBytes {
    pub bytes: Vec<u8>,
    big_endian: bool,
}

impl PcapngBytes {
    pub fn new() -> PcapngBytes {
        PcapngBytes::default()
    }

    fn u32v(&self, v: u32) -> [u8; 4] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    fn u16v(&self, v: u16) -> [u8; 2] {
        if self.big_endian {
            v.to_be_bytes()
        } else {
            v.to_le_bytes()
        }
    }

    /// A block of `btype` with `body` padded to 4 bytes and both length fields.
    pub fn block(&mut self, btype: u32, body: &[u8]) {
        let padded = body.len().div_ceil(4) * 4;
        let total = (12 + padded) as u32;
        let mut b = Vec::new();
        b.extend_from_slice(&self.u32v(btype));
        b.extend_from_slice(&self.u32v(total));
        b.extend_from_slice(body);
        b.resize(8 + padded, 0);
        b.extend_from_slice(&self.u32v(total));
        self.bytes.extend_from_slice(&b);
    }

    /// Starts a section in the given byte order.
    pub fn shb(&mut self, big_endian: bool) {
        self.big_endian = big_endian;
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32v(0x1A2B_3C4D));
        body.extend_from_slice(&self.u16v(1));
        body.extend_from_slice(&self.u16v(0));
        body.extend_from_slice(&[0xff; 8]);
        self.block(0x0A0D_0D0A, &body);
    }

    /// An option: code, length, value padded to 4.
    pub fn option(&self, code: u16, value: &[u8]) -> Vec<u8> {
        let mut o = Vec::new();
        o.extend_from_slice(&self.u16v(code));
        o.extend_from_slice(&self.u16v(value.len() as u16));
        o.extend_from_slice(value);
        o.resize(4 + value.len().div_ceil(4) * 4, 0);
        o
    }

    /// An interface with optional if_tsresol and if_tsoffset.
    pub fn idb(&mut self, link: u16, snaplen: u32, tsresol: Option<u8>, tsoffset: Option<i64>) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16v(link));
        body.extend_from_slice(&[0, 0]);
        body.extend_from_slice(&self.u32v(snaplen));
        if let Some(r) = tsresol {
            body.extend(self.option(9, &[r]));
        }
        if let Some(o) = tsoffset {
            let v = if self.big_endian { o.to_be_bytes() } else { o.to_le_bytes() };
            body.extend(self.option(14, &v));
        }
        if tsresol.is_some() || tsoffset.is_some() {
            body.extend(self.option(0, &[]));
        }
        self.block(1, &body);
    }

    /// An Enhanced Packet Block with a comment option behind the data.
    pub fn epb(&mut self, iface: u32, ts: u64, orig_len: u32, data: &[u8]) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32v(iface));
        body.extend_from_slice(&self.u32v((ts >> 32) as u32));
        body.extend_from_slice(&self.u32v(ts as u32));
        body.extend_from_slice(&self.u32v(data.len() as u32));
        body.extend_from_slice(&self.u32v(orig_len));
        body.extend_from_slice(data);
        body.resize(20 + data.len().div_ceil(4) * 4, 0);
        body.extend(self.option(1, b"comment"));
        body.extend(self.option(0, &[]));
        self.block(6, &body);
    }

    /// An obsolete Packet Block.
    pub fn pb(&mut self, iface: u16, ts: u64, orig_len: u32, data: &[u8]) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u16v(iface));
        body.extend_from_slice(&self.u16v(0));
        body.extend_from_slice(&self.u32v((ts >> 32) as u32));
        body.extend_from_slice(&self.u32v(ts as u32));
        body.extend_from_slice(&self.u32v(data.len() as u32));
        body.extend_from_slice(&self.u32v(orig_len));
        body.extend_from_slice(data);
        self.block(2, &body);
    }

    /// A Simple Packet Block.
    pub fn spb(&mut self, orig_len: u32, data: &[u8]) {
        let mut body = Vec::new();
        body.extend_from_slice(&self.u32v(orig_len));
        body.extend_from_slice(data);
        self.block(3, &body);
    }
}
