//! Classic pcap (libpcap) file writer.
//!
//! Writes the 24-byte global header once, then one 16-byte record header plus the captured bytes
//! per frame, little-endian with the native magic (`a1b2c3d4` for microseconds, `a1b23c4d` for
//! nanoseconds). Nothing is allocated per frame: the record header is built on the stack and the
//! frame bytes are written straight from the caller's buffer.

use std::io::{self, Write};

/// Resolution of the timestamps in a pcap file, chosen by the file's magic number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsResolution {
    /// Microseconds (magic `0xa1b2c3d4`), what tcpdump writes by default.
    Micro,
    /// Nanoseconds (magic `0xa1b23c4d`).
    Nano,
}

impl TsResolution {
    /// The magic number that announces this resolution.
    fn magic(self) -> u32 {
        match self {
            TsResolution::Micro => 0xa1b2_c3d4,
            TsResolution::Nano => 0xa1b2_3c4d,
        }
    }

    /// Nanoseconds per unit of the fractional timestamp field.
    fn ns_per_unit(self) -> i64 {
        match self {
            TsResolution::Micro => 1_000,
            TsResolution::Nano => 1,
        }
    }
}

/// The pcap format version written (2.4, the only one in use).
const VERSION_MAJOR: u16 = 2;
const VERSION_MINOR: u16 = 4;

/// Writes frames into a classic pcap stream.
#[derive(Debug)]
pub struct PcapWriter<W: Write> {
    out: W,
    snaplen: u32,
    resolution: TsResolution,
}

impl<W: Write> PcapWriter<W> {
    /// Writes the global header and returns a writer ready for frames.
    ///
    /// `link_type` is a tcpdump.org LINKTYPE_ value (1 = Ethernet); frames longer than `snaplen`
    /// are cut to it, as a capturing tool would.
    pub fn new(mut out: W, link_type: u16, snaplen: u32, resolution: TsResolution) -> io::Result<Self> {
        let mut header = [0u8; 24];
        header[0..4].copy_from_slice(&resolution.magic().to_le_bytes());
        header[4..6].copy_from_slice(&VERSION_MAJOR.to_le_bytes());
        header[6..8].copy_from_slice(&VERSION_MINOR.to_le_bytes());
        // Bytes 8..16 (time zone offset and timestamp accuracy) are always zero.
        header[16..20].copy_from_slice(&snaplen.to_le_bytes());
        header[20..24].copy_from_slice(&u32::from(link_type).to_le_bytes());
        out.write_all(&header)?;
        Ok(PcapWriter { out, snaplen, resolution })
    }

    /// Appends one frame captured at `ts_ns` (nanoseconds since the Unix epoch) that was
    /// `wire_len` bytes long on the wire.
    ///
    /// At most `snaplen` bytes of `data` are stored. A `wire_len` shorter than the stored bytes
    /// (possible when re-writing frames from a damaged capture) is raised to the stored length so
    /// the record stays valid. Times before 1970 or after 2106 do not fit the format and are
    /// refused with `InvalidInput`.
    pub fn write_frame(&mut self, ts_ns: i64, data: &[u8], wire_len: u32) -> io::Result<()> {
        let seconds = u32::try_from(ts_ns.div_euclid(1_000_000_000)).map_err(|_| {
            io::Error::new(io::ErrorKind::InvalidInput, format!("timestamp {ts_ns} ns does not fit a pcap record"))
        })?;
        let fraction = (ts_ns.rem_euclid(1_000_000_000) / self.resolution.ns_per_unit()) as u32;
        let stored = data.len().min(self.snaplen as usize);
        let stored_len = stored as u32;
        let mut record = [0u8; 16];
        record[0..4].copy_from_slice(&seconds.to_le_bytes());
        record[4..8].copy_from_slice(&fraction.to_le_bytes());
        record[8..12].copy_from_slice(&stored_len.to_le_bytes());
        record[12..16].copy_from_slice(&wire_len.max(stored_len).to_le_bytes());
        self.out.write_all(&record)?;
        self.out.write_all(&data[..stored])
    }

    /// The underlying writer.
    pub fn get_mut(&mut self) -> &mut W {
        &mut self.out
    }

    /// Flushes the underlying writer.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
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

    fn u32_at(bytes: &[u8], at: usize) -> u32 {
        u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
    }

    #[test]
    fn writes_header_and_microsecond_record() {
        let mut writer = PcapWriter::new(Vec::new(), 1, 65_535, TsResolution::Micro).unwrap();
        writer.write_frame(1_768_478_400_123_456_789, &[1, 2, 3], 60).unwrap();
        let bytes = writer.into_inner().unwrap();
        assert_eq!(bytes.len(), 24 + 16 + 3);
        assert_eq!(&bytes[0..4], &[0xd4, 0xc3, 0xb2, 0xa1]);
        assert_eq!(u32_at(&bytes, 16), 65_535);
        assert_eq!(u32_at(&bytes, 20), 1);
        assert_eq!(u32_at(&bytes, 24), 1_768_478_400);
        assert_eq!(u32_at(&bytes, 28), 123_456);
        assert_eq!(u32_at(&bytes, 32), 3);
        assert_eq!(u32_at(&bytes, 36), 60);
        assert_eq!(&bytes[40..], &[1, 2, 3]);
    }

    #[test]
    fn nanosecond_files_keep_nanoseconds() {
        let mut writer = PcapWriter::new(Vec::new(), 101, 100, TsResolution::Nano).unwrap();
        writer.write_frame(5_000_000_007, &[9], 1).unwrap();
        let bytes = writer.into_inner().unwrap();
        assert_eq!(&bytes[0..4], &[0x4d, 0x3c, 0xb2, 0xa1]);
        assert_eq!(u32_at(&bytes, 24), 5);
        assert_eq!(u32_at(&bytes, 28), 7);
    }

    #[test]
    fn snaplen_cuts_and_wire_length_never_below_stored() {
        let mut writer = PcapWriter::new(Vec::new(), 1, 4, TsResolution::Micro).unwrap();
        writer.write_frame(0, &[1, 2, 3, 4, 5, 6], 6).unwrap();
        writer.write_frame(0, &[1, 2], 1).unwrap();
        let bytes = writer.into_inner().unwrap();
        assert_eq!(u32_at(&bytes, 32), 4);
        assert_eq!(u32_at(&bytes, 36), 6);
        assert_eq!(&bytes[40..44], &[1, 2, 3, 4]);
        assert_eq!(u32_at(&bytes, 44 + 8), 2);
        assert_eq!(u32_at(&bytes, 44 + 12), 2);
    }

    #[test]
    fn refuses_times_outside_the_format() {
        let mut writer = PcapWriter::new(Vec::new(), 1, 4, TsResolution::Micro).unwrap();
        assert!(writer.write_frame(-1, &[1], 1).is_err());
        assert!(writer.write_frame(i64::MAX, &[1], 1).is_err());
    }
}
