//! The compact result of decoding one frame: what the analyzer needs, nothing more.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An IP address as one 128-bit key: IPv6 as is, IPv4 mapped into `::ffff:0:0/96`.
///
/// One key type for both families keeps tables and sketches monomorphic and hashing cheap.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IpKey(pub u128);

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
    /// A non-first fragment: there is no transport header to read.
    #[default]
    Absent,
    /// The capture was cut (snap length) before the transport header ended.
    Truncated,
}

/// One decoded IP packet.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PacketRecord {
    /// Packet time, nanoseconds since the Unix epoch.
    pub ts_ns: i64,
    /// Bytes on the wire (the original length, not the captured length).
    pub wire_len: u32,
    pub src: IpKey,
    pub dst: IpKey,
    /// 4 or 6.
    pub ip_version: u8,
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

    /// True when the TCP header was read and has exactly the flags in `mask` among `mask`'s bits.
    pub fn tcp_flags_are(&self, mask: u8, want: u8) -> bool {
        self.protocol == Self::PROTO_TCP && self.l4 == L4State::Present && self.tcp_flags & mask == want
    }
}
