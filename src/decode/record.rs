//! The compact result of decoding one frame: what the analyzer needs, nothing more.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP address as one 128-bit key: IPv6 as is, IPv4 mapped into `::ffff:0:0/96`.
///
/// One key type for both families keeps tables and sketches monomorphic and hashing cheap.
/// Serialized as the address it is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "IpAddr", from = "IpAddr")]
pub struct IpKey(pub u128);

impl From<IpKey> for IpAddr {
    fn from(key: IpKey) -> IpAddr {
        key.to_ip()
    }
}

impl From<IpAddr> for IpKey {
    fn from(ip: IpAddr) -> IpKey {
        IpKey::from_ip(ip)
    }
}

impl IpKey {
    const V4_MAPPED: u128 = 0xffff_0000_0000;

    pub fn from_v4(octets: [u8; 4]) -> IpKey {
        IpKey(Self::V4_MAPPED | u32::from_be_bytes(octets) as u128)
    }

    pub fn from_v6(octets: [u8; 16]) -> IpKey {
        IpKey(u128::from_be_bytes(octets))
    }

    pub fn from_ip(ip: IpAddr) -> IpKey {
        match ip {
            IpAddr::V4(v4) => IpKey::from_v4(v4.octets()),
            IpAddr::V6(v6) => IpKey::from_v6(v6.octets()),
        }
    }

    pub fn is_v4(self) -> bool {
        self.0 >> 32 == Self::V4_MAPPED >> 32
    }

    /// An address no packet can really come from: unspecified, loopback, multicast,
    /// broadcast or reserved (IPv4 0.0.0.0/8, 127.0.0.0/8, 224.0.0.0/4, 240.0.0.0/4; IPv6
    /// ::/128, ::1/128, ff00::/8). Such a source is forged.
    pub fn is_never_a_source(self) -> bool {
        if self.is_v4() {
            let first_octet = (self.0 >> 24) as u8;
            first_octet == 0 || first_octet == 127 || first_octet >= 224
        } else {
            self.0 <= 1 || self.0 >> 120 == 0xff
        }
    }

    /// The address's network for telling spread-out sources from clustered ones: the /16 of
    /// an IPv4 address, the /32 of an IPv6 one folded to 16 bits.
    #[inline]
    pub fn network_16(self) -> u16 {
        if self.is_v4() {
            (self.0 >> 16) as u16
        } else {
            ((self.0 >> 96) ^ (self.0 >> 112)) as u16
        }
    }

    pub fn to_ip(self) -> IpAddr {
        if self.is_v4() {
            IpAddr::V4(Ipv4Addr::from(self.0 as u32))
        } else {
            IpAddr::V6(Ipv6Addr::from(self.0))
        }
    }
}

impl std::fmt::Display for IpKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.to_ip().fmt(f)
    }
}

/// Where a packet sits in IP fragmentation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fragment {
    #[default]
    Whole,
    /// Offset 0 with more fragments to come: carries the L4 header.
    First,
    /// Offset > 0: no L4 header, but it still counts toward its victim.
    Later,
}

/// Whether the transport header fields of a record are meaningful.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum L4State {
    /// Ports (and TCP flags/seq/ack or ICMP type) were read.
    Present,
    /// From a flow record (NetFlow, IPFIX): the flow's ports, ICMP type and TCP flags (all its
    /// packets' flags together), but nothing of one packet: no sequence numbers, no TTL. Its
    /// `tcp_ack` holds the exporter's sampling rate instead (see
    /// [`PacketRecord::sampling_rate`]).
    Summarized,
    /// A non-first fragment: there is no transport header to read.
    #[default]
    Absent,
    /// The capture was cut (snap length) before the transport header ended.
    Truncated,
}

impl L4State {
    /// Whether the ports (and TCP flags, ICMP type) mean something: read from the packet, or
    /// from its flow's record.
    #[inline]
    pub const fn has_ports(self) -> bool {
        matches!(self, L4State::Present | L4State::Summarized)
    }
}

/// Where records come from: captured frames, or a flow telemetry exporter's datagrams.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Origin {
    #[default]
    Captured,
    Exported {
        format: ExportFormat,
        exporter: IpKey,
    },
}

/// The flow telemetry formats, as alerts name them (NetFlow v5 and v9 alike).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Sflow,
    Netflow,
    Ipfix,
}

impl ExportFormat {
    pub fn name(self) -> &'static str {
        match self {
            ExportFormat::Sflow => "sflow",
            ExportFormat::Netflow => "netflow",
            ExportFormat::Ipfix => "ipfix",
        }
    }
}

/// One decoded IP packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PacketRecord {
    /// Packet time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Bytes on the wire (the original length, not the captured length).
    pub wire_len: u32,
    pub src: IpKey,
    pub dst: IpKey,
    /// The upper-layer protocol number, after any IPv6 extension headers.
    pub protocol: u8,
    /// IPv4 TTL or IPv6 hop limit.
    pub ttl: u8,
    pub fragment: Fragment,
    pub l4: L4State,
    pub src_port: u16,
    pub dst_port: u16,
    /// TCP flags byte (FIN 0x01, SYN 0x02, RST 0x04, PSH 0x08, ACK 0x10, ...).
    pub tcp_flags: u8,
    pub tcp_seq: u32,
    pub tcp_ack: u32,
    /// ICMP or ICMPv6 message type.
    pub icmp_type: u8,
    /// The packets this record stands for: 1 for a captured packet; a packet sampled 1 in N
    /// (flow telemetry) stands for N. Two bytes, so that a record stays one cache line.
    pub weight: u16,
}

// One cache line: records stream from the capture thread to the analyzer by the million.
const _: () = assert!(std::mem::size_of::<PacketRecord>() == 64);

impl Default for PacketRecord {
    /// Every field zero (an absent transport header), but the weight: 1.
    fn default() -> PacketRecord {
        PacketRecord::of_shape(0)
    }
}

impl PacketRecord {
    pub const PROTO_ICMP: u8 = 1;
    pub const PROTO_TCP: u8 = 6;
    pub const PROTO_UDP: u8 = 17;
    pub const PROTO_ICMPV6: u8 = 58;

    pub const TCP_FIN: u8 = 0x01;
    pub const TCP_SYN: u8 = 0x02;
    pub const TCP_RST: u8 = 0x04;
    pub const TCP_ACK: u8 = 0x10;

    /// Number of distinct [`shape`](Self::shape)s.
    pub(crate) const SHAPES: usize = 64;
    /// The fields of a shape: the protocol group (its index in [`GROUP_PROTOCOLS`]) in the
    /// low two bits, then one bit each.
    const SHAPE_GROUP: usize = 0b11;
    const SHAPE_L4_PRESENT: usize = 1 << 2;
    const SHAPE_SYN: usize = 1 << 3;
    const SHAPE_ACK: usize = 1 << 4;
    const SHAPE_LATER_FRAGMENT: usize = 1 << 5;

    /// What decides how the packet is classified, as an index below [`Self::SHAPES`]: its
    /// protocol group (TCP, UDP, ICMP or ICMPv6, other), whether its transport header was
    /// read, its SYN and ACK flags and whether it is a later fragment. A table indexed by it
    /// classifies with no branch on the protocol, which in a mixed stream is mispredicted on a
    /// good share of the packets (the capture loop alone over `bench_mix`: 0.275 s with such
    /// branches, 0.25 s with the table).
    #[inline]
    pub(crate) fn shape(&self) -> usize {
        let bit = |set: bool, mask: usize| mask & (set as usize).wrapping_neg();
        PROTOCOL_GROUPS[self.protocol as usize] as usize
            | bit(self.l4.has_ports(), Self::SHAPE_L4_PRESENT)
            | bit(self.tcp_flags & Self::TCP_SYN != 0, Self::SHAPE_SYN)
            | bit(self.tcp_flags & Self::TCP_ACK != 0, Self::SHAPE_ACK)
            | bit(matches!(self.fragment, Fragment::Later), Self::SHAPE_LATER_FRAGMENT)
    }

    /// A record of the given [`shape`](Self::shape), everything else zero (weight 1): for
    /// building the tables indexed by shape.
    pub(crate) const fn of_shape(shape: usize) -> PacketRecord {
        PacketRecord {
            ts_ns: 0,
            wire_len: 0,
            src: IpKey(0),
            dst: IpKey(0),
            protocol: GROUP_PROTOCOLS[shape & Self::SHAPE_GROUP],
            ttl: 0,
            fragment: if shape & Self::SHAPE_LATER_FRAGMENT != 0 { Fragment::Later } else { Fragment::Whole },
            l4: if shape & Self::SHAPE_L4_PRESENT != 0 { L4State::Present } else { L4State::Absent },
            src_port: 0,
            dst_port: 0,
            tcp_flags: (if shape & Self::SHAPE_SYN != 0 { Self::TCP_SYN } else { 0 })
                | (if shape & Self::SHAPE_ACK != 0 { Self::TCP_ACK } else { 0 }),
            tcp_seq: 0,
            tcp_ack: 0,
            icmp_type: 0,
            weight: 1,
        }
    }

    /// 4 for an IPv4 packet, 6 for IPv6. Read from the destination (IPv4 addresses are kept
    /// v4-mapped), as the analyzer reads it: an IPv6 packet to a v4-mapped address, which no
    /// network routes, counts as IPv4.
    pub fn ip_version(&self) -> u8 {
        if self.dst.is_v4() {
            4
        } else {
            6
        }
    }

    /// One packet in how many the exporter sampled: a record of a captured packet, 1; a
    /// sampled packet's, its weight; a flow record's, the rate its exporter gave.
    pub fn sampling_rate(&self) -> u32 {
        if self.l4 == L4State::Summarized {
            self.tcp_ack
        } else {
            u32::from(self.weight)
        }
    }
}

/// One protocol number of each group a [`PacketRecord::shape`] tells apart: other, TCP, UDP,
/// ICMP (which stands for ICMPv6 too).
const GROUP_PROTOCOLS: [u8; 4] = [0, PacketRecord::PROTO_TCP, PacketRecord::PROTO_UDP, PacketRecord::PROTO_ICMP];

/// The index in [`GROUP_PROTOCOLS`] of each protocol number (0 for the protocols not there).
const PROTOCOL_GROUPS: [u8; 256] = {
    let mut groups = [0u8; 256];
    let mut group = 1;
    while group < GROUP_PROTOCOLS.len() {
        groups[GROUP_PROTOCOLS[group] as usize] = group as u8;
        group += 1;
    }
    groups[PacketRecord::PROTO_ICMPV6 as usize] = groups[PacketRecord::PROTO_ICMP as usize];
    groups
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_that_are_never_a_source() {
        let never =
            ["0.0.0.0", "0.12.3.4", "127.0.0.1", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255"];
        let never6 = ["::", "::1", "ff02::1", "ff05::1:3"];
        for ip in never.iter().chain(&never6) {
            assert!(IpKey::from_ip(ip.parse().unwrap()).is_never_a_source(), "{ip}");
        }
        let real =
            ["1.0.0.1", "126.255.255.255", "128.0.0.1", "223.255.255.254", "10.0.0.1", "::2", "2001:db8::1", "fe80::1"];
        for ip in real {
            assert!(!IpKey::from_ip(ip.parse().unwrap()).is_never_a_source(), "{ip}");
        }
    }
}
