//! Classic pcap files (the libpcap format, version 2.4), little-endian.
//!
//! capgen's own writer, so the captures floodwatch is tested on are not written by floodwatch's
//! code. A global header of 24 bytes, then per frame a 16-byte record header and the bytes.

use std::io::{self, Write};

/// How a file's timestamps count the fraction of a second; its magic number says which.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsResolution {
    Micro,
    Nano,
}

impl TsResolution {
    fn magic(self) -> u32 {
        match self {
            TsResolution::Micro => 0xa1b2_c3d4,
            TsResolution::Nano => 0xa1b2_3c4d,
        }
    }

    fn fraction(self, ns_of_second: i64) -> u32 {
        match self {
            TsResolution::Micro => (ns_of_second / 1_000) as u32,
            TsResolution::Nano => ns_of_second as u32,
        }
    }
}

pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
    resolution: TsResolution,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header: `link_type` is a LINKTYPE_ value (1 = Ethernet).
    pub fn new(mut out: W, link_type: u16, snaplen: u32, resolution: TsResolution) -> io::Result<Self> {
        let mut header = Vec::with_capacity(24);
        header.extend_from_slice(&resolution.magic().to_le_bytes());
        header.extend_from_slice(&2u16.to_le_bytes());
        header.extend_from_slice(&4u16.to_le_bytes());
        header.extend_from_slice(&[0; 8]); // time zone and accuracy: always zero
        header.extend_from_slice(&snaplen.to_le_bytes());
        header.extend_from_slice(&u32::from(link_type).to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out, snaplen, resolution })
    }

    /// One frame captured at `ts_ns` (ns since the epoch, 1970..2106), `wire_len` bytes long
    /// on the wire; at most `snaplen` bytes of it are kept.
    pub fn write_frame(&mut self, ts_ns: i64, frame: &[u8], wire_len: u32) -> io::Result<()> {
        let seconds = u32::try_from(ts_ns.div_euclid(1_000_000_000)).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("{ts_ns} ns is outside pcap's time range"))
        })?;
        let kept = &frame[..frame.len().min(self.snaplen as usize)];
        let kept_len = kept.len() as u32;
        let mut record = [0u8; 16];
        record[..4].copy_from_slice(&seconds.to_le_bytes());
        record[4..8].copy_from_slice(&self.resolution.fraction(ts_ns.rem_euclid(1_000_000_000)).to_le_bytes());
        record[8..12].copy_from_slice(&kept_len.to_le_bytes());
        record[12..].copy_from_slice(&wire_len.max(kept_len).to_le_bytes());
        self.out.write_all(&record)?;
        self.out.write_all(kept)
    }

    /// Flushes and hands back the underlying writer.
    pub fn into_inner(mut self) -> io::Result<W> {
        self.out.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_and_records_as_libpcap_lays_them_out() {
        let mut w = PcapWriter::new(Vec::new(), 1, 4, TsResolution::Micro).unwrap();
        w.write_frame(1_768_478_400_123_456_789, &[1, 2, 3, 4, 5, 6], 60).unwrap();
        let bytes = w.into_inner().unwrap();
        let expected: Vec<u8> = [
            &[0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0, 1, 0, 0, 0][..],
            &1_768_478_400u32.to_le_bytes(),
            &123_456u32.to_le_bytes(),
            &4u32.to_le_bytes(),
            &60u32.to_le_bytes(),
            &[1, 2, 3, 4],
        ]
        .concat();
        assert_eq!(bytes, expected);

        let mut w = PcapWriter::new(Vec::new(), 1, 100, TsResolution::Nano).unwrap();
        w.write_frame(5_000_000_007, &[9], 0).unwrap();
        let bytes = w.into_inner().unwrap();
        assert_eq!(bytes[..4], [0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(bytes[24..28], 5u32.to_le_bytes());
        assert_eq!(bytes[28..32], 7u32.to_le_bytes());
        assert_eq!(bytes[36..40], 1u32.to_le_bytes(), "wire length raised to what is kept");
    }

    #[test]
    fn times_before_1970_are_refused() {
        let mut w = PcapWriter::new(Vec::new(), 1, 100, TsResolution::Nano).unwrap();
        assert_eq!(w.write_frame(-1, &[], 0).unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
    }
}
