//! capgen's own sFlow v5 exporter: it samples frames 1 in N, as a switch would, and packs the
//! samples (the first 128 bytes of each frame, in raw packet header records) eight to a
//! datagram, which it writes as an Ethernet/IPv4/UDP frame from an agent to a collector's port
//! 6343. Written from the sFlow v5 specification, apart from floodwatch's reader.

use std::io::{self, Write};
use std::net::Ipv4Addr;

use super::export::DatagramWriter;
use super::frames::Udp;
use crate::pcap::PcapWriter;

/// The agent that samples, and the collector's port it sends to.
pub const AGENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 254);
pub const COLLECTOR_PORT: u16 = 6343;
/// Samples per datagram, and the bytes of each sampled frame they carry.
const SAMPLES_PER_DATAGRAM: usize = 8;
const HEADER_BYTES: usize = 128;

/// Samples frames into sFlow datagrams, written to a pcap stream.
pub struct Exporter<W: Write> {
    out: DatagramWriter<W>,
    rate: u32,
    /// Frames seen (the sample pool) and samples taken.
    seen: u64,
    samples: u32,
    datagrams: u32,
    body: Vec<u8>,
}

fn push(out: &mut Vec<u8>, words: &[u32]) {
    for w in words {
        out.extend_from_slice(&w.to_be_bytes());
    }
}

impl<W: Write> Exporter<W> {
    /// Samples 1 frame in `rate` (every `rate`-th: the same file every time).
    pub fn new(pcap: PcapWriter<W>, rate: u32) -> Exporter<W> {
        let out = DatagramWriter::new(pcap, AGENT, Udp { src_port: 50_000, dst_port: COLLECTOR_PORT });
        Exporter { out, rate: rate.max(1), seen: 0, samples: 0, datagrams: 0, body: Vec::new() }
    }

    /// A frame seen at `ts_ns`; sampled or not. Its datagram is written when full.
    pub fn frame(&mut self, ts_ns: i64, frame: &[u8]) -> io::Result<()> {
        self.seen += 1;
        if self.seen % u64::from(self.rate) != 0 {
            return Ok(());
        }
        let header = &frame[..frame.len().min(HEADER_BYTES)];
        let padded = header.len().div_ceil(4) * 4;
        // raw packet header: protocol 1 (Ethernet), frame length (with the 4-byte FCS, as
        // switches count it), 4 bytes stripped (the FCS), header length, header.
        let raw_len = 16 + padded;
        // flow sample: sequence, source id, rate, pool, drops, input, output, one record.
        let sample_len = 32 + 8 + raw_len;
        push(&mut self.body, &[1, sample_len as u32]);
        self.samples += 1;
        push(&mut self.body, &[self.samples, 1, self.rate, self.seen as u32, 0, 1, 2, 1]);
        push(&mut self.body, &[1, raw_len as u32, 1, frame.len() as u32 + 4, 4, header.len() as u32]);
        self.body.extend_from_slice(header);
        self.body.resize(self.body.len() + padded - header.len(), 0);
        if self.samples % SAMPLES_PER_DATAGRAM as u32 == 0 {
            self.send(ts_ns)?;
        }
        Ok(())
    }

    fn send(&mut self, ts_ns: i64) -> io::Result<()> {
        let in_body = match self.samples as usize % SAMPLES_PER_DATAGRAM {
            0 => SAMPLES_PER_DATAGRAM,
            n => n,
        };
        self.datagrams += 1;
        let mut datagram = Vec::with_capacity(28 + self.body.len());
        push(&mut datagram, &[5, 1]);
        datagram.extend_from_slice(&AGENT.octets());
        let uptime_ms = (ts_ns / 1_000_000) as u32;
        push(&mut datagram, &[0, self.datagrams, uptime_ms, in_body as u32]);
        datagram.extend_from_slice(&self.body);
        self.body.clear();
        self.out.write(ts_ns, self.datagrams, &datagram)
    }

    /// Sends the samples not yet sent (at `ts_ns`); the samples taken and datagrams written.
    pub fn finish(mut self, ts_ns: i64) -> io::Result<(u64, u64)> {
        if !self.body.is_empty() {
            self.send(ts_ns)?;
        }
        self.out.finish()?;
        Ok((u64::from(self.samples), u64::from(self.datagrams)))
    }
}
