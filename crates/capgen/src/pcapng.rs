//! A minimal pcapng writer: one Section Header Block, Interface Description Blocks (with the
//! `if_tsresol` option for nanosecond interfaces) and Enhanced Packet Blocks, little-endian.

use std::io::{self, Write};

use crate::pcap::TsResolution;

const BLOCK_SECTION_HEADER: u32 = 0x0a0d_0d0a;
const BLOCK_INTERFACE_DESCRIPTION: u32 = 1;
const BLOCK_ENHANCED_PACKET: u32 = 6;
const BYTE_ORDER_MAGIC: u32 = 0x1a2b_3c4d;
const OPTION_END: u16 = 0;
const OPTION_IF_TSRESOL: u16 = 9;
/// `if_tsresol` value for nanoseconds (10^-9).
const TSRESOL_NANO: u8 = 9;
/// Padding bytes that bring `len` to a multiple of 4.
const fn padding(len: usize) -> usize {
    (4 - len % 4) % 4
}

/// An interface described in the section.
#[derive(Clone, Copy, Debug)]
struct Interface {
    ns_per_unit: i64,
    snaplen: u32,
}

/// Writes one pcapng section.
#[derive(Debug)]
pub struct PcapngWriter<W: Write> {
    out: W,
    interfaces: Vec<Interface>,
}

impl<W: Write> PcapngWriter<W> {
    /// Writes the Section Header Block (version 1.0, section length unknown).
    pub fn new(mut out: W) -> io::Result<Self> {
        let total_len: u32 = 28;
        let mut block = Vec::with_capacity(28);
        block.extend_from_slice(&BLOCK_SECTION_HEADER.to_le_bytes());
        block.extend_from_slice(&total_len.to_le_bytes());
        block.extend_from_slice(&BYTE_ORDER_MAGIC.to_le_bytes());
        block.extend_from_slice(&1u16.to_le_bytes());
        block.extend_from_slice(&0u16.to_le_bytes());
        block.extend_from_slice(&(-1i64).to_le_bytes());
        block.extend_from_slice(&total_len.to_le_bytes());
        out.write_all(&block)?;
        Ok(PcapngWriter { out, interfaces: Vec::new() })
    }

    /// Describes a new interface and returns its id. Microsecond interfaces use the format's
    /// default resolution (no option); nanosecond ones carry `if_tsresol` = 9.
    pub fn add_interface(&mut self, link_type: u16, snaplen: u32, resolution: TsResolution) -> io::Result<u32> {
        let mut options = Vec::new();
        let ns_per_unit = match resolution {
            TsResolution::Micro => 1_000,
            TsResolution::Nano => {
                options.extend_from_slice(&OPTION_IF_TSRESOL.to_le_bytes());
                options.extend_from_slice(&1u16.to_le_bytes());
                options.extend_from_slice(&[TSRESOL_NANO, 0, 0, 0]);
                options.extend_from_slice(&OPTION_END.to_le_bytes());
                options.extend_from_slice(&0u16.to_le_bytes());
                1
            }
        };
        let total_len = (20 + options.len()) as u32;
        let mut block = Vec::with_capacity(total_len as usize);
        block.extend_from_slice(&BLOCK_INTERFACE_DESCRIPTION.to_le_bytes());
        block.extend_from_slice(&total_len.to_le_bytes());
        block.extend_from_slice(&link_type.to_le_bytes());
        block.extend_from_slice(&0u16.to_le_bytes());
        block.extend_from_slice(&snaplen.to_le_bytes());
        block.extend_from_slice(&options);
        block.extend_from_slice(&total_len.to_le_bytes());
        self.out.write_all(&block)?;
        self.interfaces.push(Interface { ns_per_unit, snaplen });
        Ok(self.interfaces.len() as u32 - 1)
    }

    /// Appends an Enhanced Packet Block for `interface`, captured at `ts_ns` (ns since the
    /// epoch, not before 1970) and `wire_len` bytes long on the wire.
    pub fn write_packet(&mut self, interface: u32, ts_ns: i64, data: &[u8], wire_len: u32) -> io::Result<()> {
        let invalid = |what: String| io::Error::new(io::ErrorKind::InvalidInput, what);
        let described = self.interfaces.get(interface as usize).copied();
        let described = described.ok_or_else(|| invalid(format!("interface {interface} was never described")))?;
        let units = u64::try_from(ts_ns / described.ns_per_unit)
            .map_err(|_| invalid(format!("timestamp {ts_ns} ns is before 1970")))?;
        let stored = match described.snaplen {
            0 => data.len(),
            snaplen => data.len().min(snaplen as usize),
        };
        let total_len = (32 + stored + padding(stored)) as u32;
        let mut header = [0u8; 28];
        header[0..4].copy_from_slice(&BLOCK_ENHANCED_PACKET.to_le_bytes());
        header[4..8].copy_from_slice(&total_len.to_le_bytes());
        header[8..12].copy_from_slice(&interface.to_le_bytes());
        header[12..16].copy_from_slice(&((units >> 32) as u32).to_le_bytes());
        header[16..20].copy_from_slice(&(units as u32).to_le_bytes());
        header[20..24].copy_from_slice(&(stored as u32).to_le_bytes());
        header[24..28].copy_from_slice(&wire_len.max(stored as u32).to_le_bytes());
        self.out.write_all(&header)?;
        self.out.write_all(&data[..stored])?;
        self.out.write_all(&[0u8; 3][..padding(stored)])?;
        self.out.write_all(&total_len.to_le_bytes())
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
    fn blocks_have_matching_lengths_and_resolutions() {
        let mut writer = PcapngWriter::new(Vec::new()).unwrap();
        assert_eq!(writer.add_interface(1, 0, TsResolution::Nano).unwrap(), 0);
        assert_eq!(writer.add_interface(1, 262_144, TsResolution::Micro).unwrap(), 1);
        writer.write_packet(0, 1_000_000_123, &[1, 2, 3, 4, 5], 5).unwrap();
        writer.write_packet(1, 1_000_000_123, &[6], 60).unwrap();
        assert!(writer.write_packet(2, 0, &[], 0).is_err());
        let bytes = writer.into_inner().unwrap();

        let mut at = 0;
        let mut blocks = Vec::new();
        while at < bytes.len() {
            let (kind, len) = (u32_at(&bytes, at), u32_at(&bytes, at + 4) as usize);
            assert_eq!(len % 4, 0);
            assert_eq!(u32_at(&bytes, at + len - 4) as usize, len, "trailing length");
            blocks.push((kind, at));
            at += len;
        }
        let kinds: Vec<u32> = blocks.iter().map(|b| b.0).collect();
        assert_eq!(kinds, vec![BLOCK_SECTION_HEADER, 1, 1, 6, 6]);
        // The nanosecond interface carries if_tsresol = 9.
        let idb = blocks[1].1;
        assert_eq!(&bytes[idb + 16..idb + 21], &[9, 0, 1, 0, 9]);
        // Packet on the nanosecond interface: 1_000_000_123 units.
        let epb = blocks[3].1;
        assert_eq!(u32_at(&bytes, epb + 16), 1_000_000_123);
        assert_eq!(u32_at(&bytes, epb + 20), 5);
        // Packet on the microsecond interface: 1_000_000 units, wire length kept.
        let epb = blocks[4].1;
        assert_eq!(u32_at(&bytes, epb + 16), 1_000_000);
        assert_eq!(u32_at(&bytes, epb + 24), 60);
    }
}
