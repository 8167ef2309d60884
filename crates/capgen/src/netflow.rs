//! capgen's own NetFlow v9 exporter: it keeps a flow cache of the frames it is shown (by
//! addresses, ports and protocol), exports each flow once it has been idle for a second or has
//! lasted one (its inactive and active timeouts), 30 records to a datagram with the template
//! in the first datagram and every 20th, and writes the datagrams as Ethernet/IPv4/UDP frames
//! from a router to a collector's port 2055. Written from RFC 3954, apart from floodwatch's
//! reader.

use std::collections::HashMap;
use std::io::{self, Write};
use std::net::Ipv4Addr;

use super::export::DatagramWriter;
use super::frames::Udp;
use crate::pcap::PcapWriter;

/// The router that exports, and the collector's port it sends to.
pub const ROUTER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 253);
pub const COLLECTOR_PORT: u16 = 2055;
const RECORDS_PER_DATAGRAM: usize = 30;
const TEMPLATE_EVERY: u32 = 20;
const TIMEOUT_NS: i64 = 1_000_000_000;
/// How often (in packet time) the cache is swept for flows to export.
const SWEEP_NS: i64 = 100_000_000;
/// Template ids of IPv4 and IPv6 flows.
const TEMPLATE_V4: u16 = 256;
const TEMPLATE_V6: u16 = 257;
/// The fields of both templates but the addresses, with their lengths: ports, protocol, TCP
/// flags, packets, bytes, first and last switched (uptime ms).
const FIELDS: [(u16, u16); 8] = [(7, 2), (11, 2), (4, 1), (6, 1), (2, 4), (1, 4), (22, 4), (21, 4)];

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    src: [u8; 16],
    dst: [u8; 16],
    v6: bool,
    src_port: u16,
    dst_port: u16,
    protocol: u8,
}

struct Flow {
    first_ns: i64,
    last_ns: i64,
    packets: u32,
    bytes: u32,
    flags: u8,
}

/// The flow key and TCP flags of an Ethernet frame carrying IPv4 or IPv6 (None for others).
fn key_of(frame: &[u8]) -> Option<(Key, u8)> {
    let ethertype = u16::from_be_bytes([*frame.get(12)?, *frame.get(13)?]);
    let ip = frame.get(14..)?;
    let (v6, protocol, l4, src, dst) = match ethertype {
        0x0800 => {
            let header = usize::from(ip.first()? & 0x0f) * 4;
            let mut src = [0; 16];
            let mut dst = [0; 16];
            src[..4].copy_from_slice(ip.get(12..16)?);
            dst[..4].copy_from_slice(ip.get(16..20)?);
            // A later fragment has no ports.
            let later = u16::from_be_bytes([*ip.get(6)?, *ip.get(7)?]) & 0x1fff != 0;
            (false, *ip.get(9)?, if later { &[][..] } else { ip.get(header..)? }, src, dst)
        }
        0x86dd => {
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            (true, *ip.get(6)?, ip.get(40..)?, src, dst)
        }
        _ => return None,
    };
    let port = |at: usize| l4.get(at..at + 2).map_or(0, |b| u16::from_be_bytes([b[0], b[1]]));
    let (src_port, dst_port) = match protocol {
        6 | 17 => (port(0), port(2)),
        // ICMP type and code in the destination port, as exporters put them.
        1 | 58 => (0, port(0)),
        _ => (0, 0),
    };
    let flags = if protocol == 6 { l4.get(13).copied().unwrap_or(0) } else { 0 };
    Some((Key { src, dst, v6, src_port, dst_port, protocol }, flags))
}

/// Meters frames into flows and exports them as NetFlow v9, to a pcap stream.
pub struct Exporter<W: Write> {
    out: DatagramWriter<W>,
    flows: HashMap<Key, Flow>,
    next_sweep_ns: i64,
    /// The router's boot: uptime counts from it.
    boot_ns: Option<i64>,
    pending: [Vec<u8>; 2],
    pending_records: [usize; 2],
    pub records: u64,
    pub datagrams: u32,
}

impl<W: Write> Exporter<W> {
    pub fn new(pcap: PcapWriter<W>) -> Exporter<W> {
        Exporter {
            out: DatagramWriter::new(pcap, ROUTER, Udp { src_port: 50_001, dst_port: COLLECTOR_PORT }),
            flows: HashMap::new(),
            next_sweep_ns: i64::MIN,
            boot_ns: None,
            pending: [Vec::new(), Vec::new()],
            pending_records: [0; 2],
            records: 0,
            datagrams: 0,
        }
    }

    /// A frame seen at `ts_ns`, counted into its flow.
    pub fn frame(&mut self, ts_ns: i64, frame: &[u8]) -> io::Result<()> {
        // The router booted a second before the first frame.
        self.boot_ns.get_or_insert(ts_ns - 1_000_000_000);
        if ts_ns >= self.next_sweep_ns {
            self.export(|f| ts_ns - f.last_ns >= TIMEOUT_NS || ts_ns - f.first_ns >= TIMEOUT_NS, ts_ns)?;
            self.next_sweep_ns = ts_ns + SWEEP_NS;
        }
        let Some((key, flags)) = key_of(frame) else { return Ok(()) };
        let flow =
            self.flows.entry(key).or_insert(Flow { first_ns: ts_ns, last_ns: ts_ns, packets: 0, bytes: 0, flags: 0 });
        flow.last_ns = ts_ns;
        flow.packets += 1;
        flow.bytes += frame.len() as u32 - 14;
        flow.flags |= flags;
        Ok(())
    }

    /// Exports the flows `due` says are, then the datagrams they filled.
    fn export(&mut self, due: impl Fn(&Flow) -> bool, now_ns: i64) -> io::Result<()> {
        let boot = self.boot_ns.unwrap_or(now_ns);
        let uptime = |ts: i64| ((ts - boot) / 1_000_000) as u32;
        let mut expired: Vec<(Key, Flow)> = Vec::new();
        self.flows.retain(|k, f| {
            if due(f) {
                expired.push((*k, Flow { ..*f }));
                false
            } else {
                true
            }
        });
        // The cache's order is a hash's: sort for the same file every time.
        expired.sort_by_key(|(k, f)| (f.first_ns, k.src, k.dst, k.src_port, k.dst_port, k.protocol));
        for (key, flow) in expired {
            let family = key.v6 as usize;
            let width = if key.v6 { 16 } else { 4 };
            let record = &mut self.pending[family];
            record.extend_from_slice(&key.src[..width]);
            record.extend_from_slice(&key.dst[..width]);
            record.extend_from_slice(&key.src_port.to_be_bytes());
            record.extend_from_slice(&key.dst_port.to_be_bytes());
            record.extend_from_slice(&[key.protocol, flow.flags]);
            for n in [flow.packets, flow.bytes, uptime(flow.first_ns), uptime(flow.last_ns)] {
                record.extend_from_slice(&n.to_be_bytes());
            }
            self.pending_records[family] += 1;
            self.records += 1;
            if self.pending_records[family] == RECORDS_PER_DATAGRAM {
                self.send(family, now_ns)?;
            }
        }
        Ok(())
    }

    /// Sends the records pending for one address family (0: IPv4, 1: IPv6) in a datagram.
    fn send(&mut self, family: usize, now_ns: i64) -> io::Result<()> {
        let count = self.pending_records[family];
        if count == 0 {
            return Ok(());
        }
        self.datagrams += 1;
        let boot = self.boot_ns.unwrap_or(now_ns);
        let mut datagram = Vec::with_capacity(64 + self.pending[family].len());
        let with_template = self.datagrams % TEMPLATE_EVERY == 1;
        let records = count + with_template as usize * 2;
        datagram.extend_from_slice(&9u16.to_be_bytes());
        datagram.extend_from_slice(&(records as u16).to_be_bytes());
        datagram.extend_from_slice(&(((now_ns - boot) / 1_000_000) as u32).to_be_bytes());
        datagram.extend_from_slice(&((now_ns / 1_000_000_000) as u32).to_be_bytes());
        datagram.extend_from_slice(&self.datagrams.to_be_bytes());
        datagram.extend_from_slice(&0u32.to_be_bytes());
        if with_template {
            let mut templates = Vec::new();
            for (id, address) in [(TEMPLATE_V4, 4u16), (TEMPLATE_V6, 16)] {
                let (src, dst) = if address == 4 { (8u16, 12u16) } else { (27, 28) };
                templates.extend_from_slice(&id.to_be_bytes());
                templates.extend_from_slice(&(FIELDS.len() as u16 + 2).to_be_bytes());
                for (field, len) in [(src, address), (dst, address)].iter().chain(FIELDS.iter()) {
                    templates.extend_from_slice(&field.to_be_bytes());
                    templates.extend_from_slice(&len.to_be_bytes());
                }
            }
            flowset(&mut datagram, 0, &templates);
        }
        let id = if family == 0 { TEMPLATE_V4 } else { TEMPLATE_V6 };
        flowset(&mut datagram, id, &self.pending[family]);
        self.pending[family].clear();
        self.pending_records[family] = 0;
        self.out.write(now_ns, self.datagrams, &datagram)
    }

    /// Exports every flow still in the cache (at `ts_ns`); the records and datagrams written.
    pub fn finish(mut self, ts_ns: i64) -> io::Result<(u64, u64)> {
        self.export(|_| true, ts_ns)?;
        self.send(0, ts_ns)?;
        self.send(1, ts_ns)?;
        self.out.finish()?;
        Ok((self.records, u64::from(self.datagrams)))
    }
}

/// A flowset: id, length, body padded to 4 bytes.
fn flowset(out: &mut Vec<u8>, id: u16, body: &[u8]) {
    let padded = body.len().div_ceil(4) * 4;
    out.extend_from_slice(&id.to_be_bytes());
    out.extend_from_slice(&(padded as u16 + 4).to_be_bytes());
    out.extend_from_slice(body);
    out.resize(out.len() + padded - body.len(), 0);
}
