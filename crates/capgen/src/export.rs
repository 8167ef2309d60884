//! What capgen's telemetry exporters share: their datagrams written as Ethernet/IPv4/UDP
//! frames from the exporter to a collector at 192.0.2.10, into a pcap stream.

use std::io::{self, Write};
use std::net::Ipv4Addr;

use super::frames::{build_ip_frame, Ethernet, FragmentPosition, Ip, Ipv4, Transport, Udp, VlanTags};
use crate::pcap::PcapWriter;

/// The collector both exporters send to.
pub const COLLECTOR: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 10);

/// One exporter's datagrams, as frames in a pcap stream.
pub struct DatagramWriter<W: Write> {
    pcap: PcapWriter<W>,
    eth: Ethernet,
    exporter: Ipv4Addr,
    udp: Udp,
    frame: Vec<u8>,
}

impl<W: Write> DatagramWriter<W> {
    /// Datagrams from `exporter` (its MAC address ending in the same byte as its IP address)
    /// at `udp`'s ports.
    pub fn new(pcap: PcapWriter<W>, exporter: Ipv4Addr, udp: Udp) -> DatagramWriter<W> {
        let eth = Ethernet {
            dst: [0x02, 0, 0, 0, 0, 0x10],
            src: [0x02, 0, 0, 0, 0, exporter.octets()[3]],
            vlan: VlanTags::Untagged,
        };
        DatagramWriter { pcap, eth, exporter, udp, frame: Vec::new() }
    }

    /// Writes `datagram`, the exporter's `sequence`-th (its IP identification), sent at `ts_ns`.
    pub fn write(&mut self, ts_ns: i64, sequence: u32, datagram: &[u8]) -> io::Result<()> {
        let ip = Ip::V4(Ipv4 {
            src: self.exporter,
            dst: COLLECTOR,
            ttl: 64,
            ident: sequence as u16,
            dont_fragment: true,
            fragment: FragmentPosition::WHOLE,
        });
        build_ip_frame(&mut self.frame, &self.eth, &ip, &Transport::Udp(self.udp), datagram);
        self.pcap.write_frame(ts_ns, &self.frame, self.frame.len() as u32)
    }

    /// Flushes the stream.
    pub fn finish(self) -> io::Result<()> {
        self.pcap.into_inner().map(drop)
    }
}
