//! Frame builders: Ethernet II (optionally 802.1Q or QinQ tagged) carrying IPv4 or IPv6 with TCP,
//! UDP, ICMP/ICMPv6 echo or raw fragment data, and ARP.
//!
//! Every builder clears and refills a caller-owned `Vec<u8>`, so generating millions of frames
//! allocates nothing per frame. Lengths and checksums (IPv4 header, TCP, UDP, ICMP, ICMPv6) are
//! filled in after the payload is in place, so they are always right.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

/// A 48-bit Ethernet address.
pub type MacAddr = [u8; 6];

pub const ETHERTYPE_IPV4: u16 = 0x0800;
pub const ETHERTYPE_ARP: u16 = 0x0806;
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
/// 802.1Q customer tag.
pub const ETHERTYPE_VLAN: u16 = 0x8100;
/// 802.1ad service tag (the outer tag of QinQ).
pub const ETHERTYPE_QINQ: u16 = 0x88a8;

pub const PROTO_ICMP: u8 = 1;
pub const PROTO_TCP: u8 = 6;
pub const PROTO_UDP: u8 = 17;
pub const PROTO_IPV6_FRAGMENT: u8 = 44;
pub const PROTO_ICMPV6: u8 = 58;
pub const PROTO_IPV6_DEST_OPTS: u8 = 60;

/// TCP flag bits.
pub const TCP_FIN: u8 = 0x01;
pub const TCP_SYN: u8 = 0x02;
pub const TCP_RST: u8 = 0x04;
pub const TCP_PSH: u8 = 0x08;
pub const TCP_ACK: u8 = 0x10;

const IPV4_HEADER_LEN: usize = 20;
const IPV6_HEADER_LEN: usize = 40;

/// VLAN tags between the source MAC address and the EtherType.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VlanTags {
    Untagged,
    /// One 802.1Q tag.
    Dot1q {
        vid: u16,
    },
    /// An 802.1ad service tag (0x88a8) around an 802.1Q customer tag (0x8100).
    QinQ {
        outer: u16,
        inner: u16,
    },
}

impl VlanTags {
    /// Appends the tag headers (TPID and TCI per tag; priority and DEI zero).
    pub fn write(self, out: &mut Vec<u8>) {
        let mut tag = |tpid: u16, vid: u16| {
            out.extend_from_slice(&tpid.to_be_bytes());
            out.extend_from_slice(&(vid & 0x0fff).to_be_bytes());
        };
        match self {
            VlanTags::Untagged => {}
            VlanTags::Dot1q { vid } => tag(ETHERTYPE_VLAN, vid),
            VlanTags::QinQ { outer, inner } => {
                tag(ETHERTYPE_QINQ, outer);
                tag(ETHERTYPE_VLAN, inner);
            }
        }
    }
}

/// The Ethernet header of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ethernet {
    pub dst: MacAddr,
    pub src: MacAddr,
    pub vlan: VlanTags,
}

impl Ethernet {
    fn write(&self, out: &mut Vec<u8>, ethertype: u16) {
        out.extend_from_slice(&self.dst);
        out.extend_from_slice(&self.src);
        self.vlan.write(out);
        out.extend_from_slice(&ethertype.to_be_bytes());
    }
}

/// Where a fragment's data sits in the original datagram.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FragmentPosition {
    /// Offset of the fragment's data in bytes; a multiple of 8.
    pub offset: u16,
    /// More fragments follow.
    pub more: bool,
}

impl FragmentPosition {
    /// An unfragmented datagram.
    pub const WHOLE: FragmentPosition = FragmentPosition { offset: 0, more: false };

    /// The 16-bit field shared by IPv4 (flags in the high bits) and the IPv6 fragment header
    /// (M flag in the low bit): offset in 8-byte units, shifted as each format wants.
    fn offset_units(self) -> u16 {
        debug_assert_eq!(self.offset % 8, 0, "fragment offsets are multiples of 8");
        self.offset / 8
    }
}

/// An IPv4 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv4 {
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
    pub ttl: u8,
    pub ident: u16,
    pub dont_fragment: bool,
    pub fragment: FragmentPosition,
}

/// At most one IPv6 extension header between the fixed header and the upper layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ipv6Extension {
    None,
    /// A Destination Options header holding only padding (8 bytes).
    DestinationOptions,
    /// A Fragment header (8 bytes).
    Fragment {
        ident: u32,
        position: FragmentPosition,
    },
}

/// An IPv6 header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ipv6 {
    pub src: Ipv6Addr,
    pub dst: Ipv6Addr,
    pub hop_limit: u8,
    pub flow_label: u32,
    pub extension: Ipv6Extension,
}

/// The network layer of a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ip {
    V4(Ipv4),
    V6(Ipv6),
}

impl Ip {
    /// An unfragmented header between two addresses of the same family; `None` when the families
    /// differ. `ident` is the IPv4 identification; IPv4 headers get DF set, as modern stacks send
    /// them. IPv6 headers have no extension header and flow label 0.
    pub fn between(src: IpAddr, dst: IpAddr, ttl: u8, ident: u16) -> Option<Ip> {
        match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => {
                Some(Ip::V4(Ipv4 { src, dst, ttl, ident, dont_fragment: true, fragment: FragmentPosition::WHOLE }))
            }
            (IpAddr::V6(src), IpAddr::V6(dst)) => {
                Some(Ip::V6(Ipv6 { src, dst, hop_limit: ttl, flow_label: 0, extension: Ipv6Extension::None }))
            }
            _ => None,
        }
    }

    fn ethertype(&self) -> u16 {
        match self {
            Ip::V4(_) => ETHERTYPE_IPV4,
            Ip::V6(_) => ETHERTYPE_IPV6,
        }
    }

    /// Writes the header(s) with zero lengths and checksum; [`Ip::finish`] fills them in.
    fn write(&self, out: &mut Vec<u8>, protocol: u8) {
        match self {
            Ip::V4(h) => {
                let flags_and_offset =
                    (u16::from(h.dont_fragment) << 14) | (u16::from(h.fragment.more) << 13) | h.fragment.offset_units();
                out.extend_from_slice(&[0x45, 0, 0, 0]);
                out.extend_from_slice(&h.ident.to_be_bytes());
                out.extend_from_slice(&flags_and_offset.to_be_bytes());
                out.extend_from_slice(&[h.ttl, protocol, 0, 0]);
                out.extend_from_slice(&h.src.octets());
                out.extend_from_slice(&h.dst.octets());
            }
            Ip::V6(h) => {
                let first_word = (6u32 << 28) | (h.flow_label & 0x000f_ffff);
                let next_header = match h.extension {
                    Ipv6Extension::None => protocol,
                    Ipv6Extension::DestinationOptions => PROTO_IPV6_DEST_OPTS,
                    Ipv6Extension::Fragment { .. } => PROTO_IPV6_FRAGMENT,
                };
                out.extend_from_slice(&first_word.to_be_bytes());
                out.extend_from_slice(&[0, 0, next_header, h.hop_limit]);
                out.extend_from_slice(&h.src.octets());
                out.extend_from_slice(&h.dst.octets());
                match h.extension {
                    Ipv6Extension::None => {}
                    Ipv6Extension::DestinationOptions => {
                        // Header extension length 0 (8 bytes in all), then one PadN option
                        // covering the remaining 4 bytes.
                        out.extend_from_slice(&[protocol, 0, 1, 4, 0, 0, 0, 0]);
                    }
                    Ipv6Extension::Fragment { ident, position } => {
                        let offset_and_more = (position.offset_units() << 3) | u16::from(position.more);
                        out.extend_from_slice(&[protocol, 0]);
                        out.extend_from_slice(&offset_and_more.to_be_bytes());
                        out.extend_from_slice(&ident.to_be_bytes());
                    }
                }
            }
        }
    }

    /// Fills in the length fields (and the IPv4 header checksum) once the whole packet is in
    /// `frame[ip_start..]`.
    fn finish(&self, frame: &mut [u8], ip_start: usize) {
        let ip_len = frame.len() - ip_start;
        match self {
            Ip::V4(_) => {
                put_u16(frame, ip_start + 2, length_u16(ip_len));
                let checksum = internet_checksum(&frame[ip_start..ip_start + IPV4_HEADER_LEN], 0);
                put_u16(frame, ip_start + 10, checksum);
            }
            Ip::V6(_) => put_u16(frame, ip_start + 4, length_u16(ip_len - IPV6_HEADER_LEN)),
        }
    }

    /// Sum of the pseudo-header that TCP, UDP and ICMPv6 checksums cover.
    fn pseudo_header_sum(&self, protocol: u8, upper_len: usize) -> u64 {
        let addresses = match self {
            Ip::V4(h) => ones_sum(&h.dst.octets(), ones_sum(&h.src.octets(), 0)),
            Ip::V6(h) => ones_sum(&h.dst.octets(), ones_sum(&h.src.octets(), 0)),
        };
        // Both pseudo-headers add the protocol and the upper-layer length as plain numbers.
        addresses + upper_len as u64 + u64::from(protocol)
    }
}

/// A TCP header (no options other than an optional MSS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tcp {
    pub src_port: u16,
    pub dst_port: u16,
    pub seq: u32,
    pub ack: u32,
    /// `TCP_*` bits.
    pub flags: u8,
    pub window: u16,
    /// Maximum segment size option, as SYN and SYN-ACK segments carry it.
    pub mss: Option<u16>,
}

/// A UDP header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Udp {
    pub src_port: u16,
    pub dst_port: u16,
}

/// An ICMP (over IPv4) or ICMPv6 (over IPv6) echo request or reply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Echo {
    pub reply: bool,
    pub ident: u16,
    pub seq: u16,
}

/// What follows the IP header(s).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    Tcp(Tcp),
    Udp(Udp),
    Echo(Echo),
    /// No header: the payload is carried verbatim under this protocol number (fragments).
    Raw {
        protocol: u8,
    },
}

impl Transport {
    /// The IP protocol number; echo depends on the IP version.
    fn protocol(&self, ip: &Ip) -> u8 {
        match (self, ip) {
            (Transport::Tcp(_), _) => PROTO_TCP,
            (Transport::Udp(_), _) => PROTO_UDP,
            (Transport::Echo(_), Ip::V4(_)) => PROTO_ICMP,
            (Transport::Echo(_), Ip::V6(_)) => PROTO_ICMPV6,
            (Transport::Raw { protocol }, _) => *protocol,
        }
    }

    /// Writes the header with a zero checksum (and zero UDP length).
    fn write(&self, out: &mut Vec<u8>, ip: &Ip) {
        match self {
            Transport::Tcp(tcp) => {
                let header_words: u8 = if tcp.mss.is_some() { 6 } else { 5 };
                out.extend_from_slice(&tcp.src_port.to_be_bytes());
                out.extend_from_slice(&tcp.dst_port.to_be_bytes());
                out.extend_from_slice(&tcp.seq.to_be_bytes());
                out.extend_from_slice(&tcp.ack.to_be_bytes());
                out.extend_from_slice(&[header_words << 4, tcp.flags]);
                out.extend_from_slice(&tcp.window.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]); // checksum, urgent pointer
                if let Some(mss) = tcp.mss {
                    out.extend_from_slice(&[2, 4]);
                    out.extend_from_slice(&mss.to_be_bytes());
                }
            }
            Transport::Udp(udp) => {
                out.extend_from_slice(&udp.src_port.to_be_bytes());
                out.extend_from_slice(&udp.dst_port.to_be_bytes());
                out.extend_from_slice(&[0, 0, 0, 0]); // length, checksum
            }
            Transport::Echo(echo) => {
                let icmp_type = match (ip, echo.reply) {
                    (Ip::V4(_), false) => 8,
                    (Ip::V4(_), true) => 0,
                    (Ip::V6(_), false) => 128,
                    (Ip::V6(_), true) => 129,
                };
                out.extend_from_slice(&[icmp_type, 0, 0, 0]);
                out.extend_from_slice(&echo.ident.to_be_bytes());
                out.extend_from_slice(&echo.seq.to_be_bytes());
            }
            Transport::Raw { .. } => {}
        }
    }

    /// Fills in the UDP length and the checksum once the segment is in `frame[start..]`.
    fn finish(&self, frame: &mut [u8], start: usize, ip: &Ip) {
        let upper_len = frame.len() - start;
        let protocol = self.protocol(ip);
        let (checksum_at, covers_pseudo_header) = match (self, ip) {
            (Transport::Tcp(_), _) => (16, true),
            (Transport::Udp(_), _) => {
                put_u16(frame, start + 4, length_u16(upper_len));
                (6, true)
            }
            (Transport::Echo(_), Ip::V4(_)) => (2, false),
            (Transport::Echo(_), Ip::V6(_)) => (2, true),
            (Transport::Raw { .. }, _) => return,
        };
        let initial = if covers_pseudo_header { ip.pseudo_header_sum(protocol, upper_len) } else { 0 };
        let mut checksum = internet_checksum(&frame[start..], initial);
        if protocol == PROTO_UDP && checksum == 0 {
            // Zero means "no checksum" in UDP; a computed zero is sent as all ones.
            checksum = 0xffff;
        }
        put_u16(frame, start + checksum_at, checksum);
    }
}

/// Offsets of the layers inside a built frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// First byte of the IP header.
    pub ip: usize,
    /// First byte after the IP header(s): the transport header, or the raw data.
    pub transport: usize,
}

/// Builds an Ethernet frame carrying one IP packet into `frame` (cleared first).
pub fn build_ip_frame(
    frame: &mut Vec<u8>,
    ethernet: &Ethernet,
    ip: &Ip,
    transport: &Transport,
    payload: &[u8],
) -> Layout {
    frame.clear();
    ethernet.write(frame, ip.ethertype());
    let ip_start = frame.len();
    ip.write(frame, transport.protocol(ip));
    let transport_start = frame.len();
    transport.write(frame, ip);
    frame.extend_from_slice(payload);
    ip.finish(frame, ip_start);
    transport.finish(frame, transport_start, ip);
    Layout { ip: ip_start, transport: transport_start }
}

/// The `index`-th fragment of a datagram of `datagram_len` bytes cut into pieces of at most
/// `max_piece` bytes (rounded down to a multiple of 8), or `None` past the last one.
fn fragment_piece(datagram_len: usize, max_piece: usize, index: usize) -> Option<(FragmentPosition, Range<usize>)> {
    let piece = max_piece / 8 * 8;
    let start = index.checked_mul(piece)?;
    if piece == 0 || start >= datagram_len {
        return None;
    }
    let end = (start + piece).min(datagram_len);
    let position = FragmentPosition { offset: length_u16(start), more: end < datagram_len };
    Some((position, start..end))
}

/// Largest fragment data that fits a 1500-byte Ethernet MTU under a 20-byte IPv4 header.
pub const IPV4_FRAGMENT_DATA_MAX: usize = 1480;
/// Fragment data size for IPv6: what fits the 1280-byte minimum MTU under the fixed header and a
/// fragment header, which is how DNS servers fragment large IPv6 responses.
pub const IPV6_FRAGMENT_DATA_MAX: usize = 1232;

/// Builds the `index`-th fragment of `datagram` (everything after the IP header of the
/// unfragmented packet, transport header included) sent under `ip`, and returns its position;
/// `None` past the last fragment.
///
/// All fragments of one datagram must share `ident` (the IPv4 identification, or the IPv6
/// fragment header's identification). IPv4 fragments carry at most 1480 bytes with DF clear;
/// IPv6 fragments at most 1232 bytes behind a Fragment header.
pub fn build_fragment_frame(
    frame: &mut Vec<u8>,
    ethernet: &Ethernet,
    ip: &Ip,
    protocol: u8,
    datagram: &[u8],
    ident: u32,
    index: usize,
) -> Option<FragmentPosition> {
    let max_piece = match ip {
        Ip::V4(_) => IPV4_FRAGMENT_DATA_MAX,
        Ip::V6(_) => IPV6_FRAGMENT_DATA_MAX,
    };
    let (position, range) = fragment_piece(datagram.len(), max_piece, index)?;
    let fragment_ip = match *ip {
        Ip::V4(header) => Ip::V4(Ipv4 { ident: ident as u16, dont_fragment: false, fragment: position, ..header }),
        Ip::V6(header) => Ip::V6(Ipv6 { extension: Ipv6Extension::Fragment { ident, position }, ..header }),
    };
    build_ip_frame(frame, ethernet, &fragment_ip, &Transport::Raw { protocol }, &datagram[range]);
    Some(position)
}

/// An ARP request or reply for IPv4 over Ethernet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Arp {
    pub reply: bool,
    pub sender_mac: MacAddr,
    pub sender_ip: Ipv4Addr,
    /// All zeros in a request.
    pub target_mac: MacAddr,
    pub target_ip: Ipv4Addr,
}

/// Builds an Ethernet frame carrying one ARP message into `frame` (cleared first).
pub fn build_arp_frame(frame: &mut Vec<u8>, ethernet: &Ethernet, arp: &Arp) {
    frame.clear();
    ethernet.write(frame, ETHERTYPE_ARP);
    // Hardware type Ethernet, protocol IPv4, address lengths 6 and 4, operation.
    frame.extend_from_slice(&[0, 1, 0x08, 0x00, 6, 4, 0, if arp.reply { 2 } else { 1 }]);
    frame.extend_from_slice(&arp.sender_mac);
    frame.extend_from_slice(&arp.sender_ip.octets());
    frame.extend_from_slice(&arp.target_mac);
    frame.extend_from_slice(&arp.target_ip.octets());
}

/// The source and destination addresses of an IP frame (behind any VLAN tags), or `None` for a
/// frame that does not carry IP.
pub fn ip_addresses(frame: &[u8]) -> Option<(IpAddr, IpAddr)> {
    let mut at = 12;
    let mut ethertype = read_u16(frame, at)?;
    while ethertype == ETHERTYPE_VLAN || ethertype == ETHERTYPE_QINQ {
        at += 4;
        ethertype = read_u16(frame, at)?;
    }
    let ip = frame.get(at + 2..)?;
    match ethertype {
        ETHERTYPE_IPV4 => {
            let src: [u8; 4] = ip.get(12..16)?.try_into().ok()?;
            let dst: [u8; 4] = ip.get(16..20)?.try_into().ok()?;
            Some((IpAddr::from(src), IpAddr::from(dst)))
        }
        ETHERTYPE_IPV6 => {
            let src: [u8; 16] = ip.get(8..24)?.try_into().ok()?;
            let dst: [u8; 16] = ip.get(24..40)?.try_into().ok()?;
            Some((IpAddr::from(src), IpAddr::from(dst)))
        }
        _ => None,
    }
}

/// The Internet checksum (RFC 1071) of `data`, starting from an already accumulated `initial`
/// sum (a pseudo-header). Checksumming data that contains a correct checksum gives 0.
pub fn internet_checksum(data: &[u8], initial: u64) -> u16 {
    let mut sum = ones_sum(data, initial);
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Adds `data` as big-endian 16-bit words (an odd last byte padded with zero) to `sum`, unfolded.
fn ones_sum(data: &[u8], sum: u64) -> u64 {
    let mut words = data.chunks_exact(2);
    let mut sum = words.by_ref().fold(sum, |sum, word| sum + u64::from(u16::from_be_bytes([word[0], word[1]])));
    if let [last] = words.remainder() {
        sum += u64::from(*last) << 8;
    }
    sum
}

fn put_u16(frame: &mut [u8], at: usize, value: u16) {
    frame[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

fn read_u16(frame: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*frame.get(at)?, *frame.get(at + 1)?]))
}

/// A length that must fit a 16-bit field; every packet the generator builds is far below 64 KiB.
fn length_u16(len: usize) -> u16 {
    debug_assert!(len <= usize::from(u16::MAX), "length {len} does not fit 16 bits");
    len as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    const ETH: Ethernet = Ethernet { dst: [2, 0, 0, 0, 0, 1], src: [2, 0, 0, 0, 0, 2], vlan: VlanTags::Untagged };

    fn v4(src: [u8; 4], dst: [u8; 4]) -> Ip {
        Ip::between(IpAddr::from(src), IpAddr::from(dst), 64, 0x1234).unwrap()
    }

    fn v6() -> Ip {
        let src: Ipv6Addr = "2001:db8:ffff::1".parse().unwrap();
        let dst: Ipv6Addr = "2001:db8::53".parse().unwrap();
        Ip::between(IpAddr::V6(src), IpAddr::V6(dst), 64, 7).unwrap()
    }

    /// Recomputes a transport checksum over the pseudo-header; a correct one sums to zero.
    fn transport_checksum_ok(frame: &[u8], layout: Layout, ip: &Ip, protocol: u8) -> bool {
        let upper = &frame[layout.transport..];
        let initial = ip.pseudo_header_sum(protocol, upper.len());
        internet_checksum(upper, initial) == 0
    }

    #[test]
    fn ipv4_tcp_syn_has_correct_lengths_and_checksums() {
        let ip = v4([198, 18, 0, 1], [198, 51, 100, 10]);
        let tcp =
            Tcp { src_port: 40000, dst_port: 443, seq: 1, ack: 0, flags: TCP_SYN, window: 64240, mss: Some(1460) };
        let mut frame = Vec::new();
        let layout = build_ip_frame(&mut frame, &ETH, &ip, &Transport::Tcp(tcp), &[]);
        assert_eq!(frame.len(), 14 + 20 + 24);
        assert_eq!(layout, Layout { ip: 14, transport: 34 });
        assert_eq!(u16::from_be_bytes([frame[16], frame[17]]), 44);
        // The header checksum makes the header's one's-complement sum 0xffff.
        assert_eq!(internet_checksum(&frame[14..34], 0), 0);
        assert_eq!(frame[20] & 0x40, 0x40, "DF set");
        assert!(transport_checksum_ok(&frame, layout, &ip, PROTO_TCP));
        assert_eq!(frame[34 + 12], 6 << 4);
        assert_eq!(&frame[54..58], &[2, 4, 0x05, 0xb4]);
    }

    #[test]
    fn udp_checksums_verify_over_both_families_and_odd_lengths() {
        for ip in [v4([192, 0, 2, 53], [100, 64, 0, 9]), v6()] {
            for payload_len in [0usize, 1, 7, 100, 1001] {
                let payload: Vec<u8> = (0..payload_len).map(|i| i as u8).collect();
                let udp = Transport::Udp(Udp { src_port: 53, dst_port: 33333 });
                let mut frame = Vec::new();
                let layout = build_ip_frame(&mut frame, &ETH, &ip, &udp, &payload);
                assert!(transport_checksum_ok(&frame, layout, &ip, PROTO_UDP));
                let udp_len = u16::from_be_bytes([frame[layout.transport + 4], frame[layout.transport + 5]]);
                assert_eq!(usize::from(udp_len), 8 + payload_len);
                assert_ne!(&frame[layout.transport + 6..layout.transport + 8], &[0, 0]);
            }
        }
    }

    #[test]
    fn icmp_and_icmpv6_echo_checksums_verify() {
        let echo = Transport::Echo(Echo { reply: false, ident: 0x99, seq: 3 });
        let mut frame = Vec::new();
        let ip = v4([198, 18, 1, 1], [192, 0, 2, 77]);
        let layout = build_ip_frame(&mut frame, &ETH, &ip, &echo, b"abcdefgh");
        assert_eq!(frame[layout.transport], 8);
        assert_eq!(internet_checksum(&frame[layout.transport..], 0), 0);

        let ip = v6();
        let layout = build_ip_frame(&mut frame, &ETH, &ip, &echo, b"abcdefghi");
        assert_eq!(frame[layout.transport], 128);
        assert!(transport_checksum_ok(&frame, layout, &ip, PROTO_ICMPV6));
    }

    #[test]
    fn vlan_tags_sit_before_the_ethertype() {
        let ip = v4([198, 18, 0, 1], [198, 51, 100, 10]);
        let udp = Transport::Udp(Udp { src_port: 1, dst_port: 2 });
        let mut frame = Vec::new();
        let eth = Ethernet { vlan: VlanTags::QinQ { outer: 3000, inner: 101 }, ..ETH };
        let layout = build_ip_frame(&mut frame, &eth, &ip, &udp, &[]);
        assert_eq!(&frame[12..22], &[0x88, 0xa8, 0x0b, 0xb8, 0x81, 0x00, 0x00, 0x65, 0x08, 0x00]);
        assert_eq!(layout.ip, 22);
        let eth = Ethernet { vlan: VlanTags::Dot1q { vid: 7 }, ..ETH };
        build_ip_frame(&mut frame, &eth, &ip, &udp, &[]);
        assert_eq!(&frame[12..18], &[0x81, 0x00, 0x00, 0x07, 0x08, 0x00]);
        assert_eq!(ip_addresses(&frame), Some((IpAddr::from([198, 18, 0, 1]), IpAddr::from([198, 51, 100, 10]))));
    }

    #[test]
    fn ipv4_fragments_reassemble_to_the_datagram() {
        let whole_ip = v4([198, 18, 5, 5], [192, 0, 2, 50]);
        let payload = vec![0x5a; 2992];
        let mut whole = Vec::new();
        let layout = build_ip_frame(
            &mut whole,
            &ETH,
            &whole_ip,
            &Transport::Udp(Udp { src_port: 53, dst_port: 4444 }),
            &payload,
        );
        let datagram = whole[layout.transport..].to_vec();
        let mut reassembled = vec![0u8; datagram.len()];
        let mut frame = Vec::new();
        for index in 0..3 {
            let (position, range) = fragment_piece(datagram.len(), 1480, index).unwrap();
            let Ip::V4(mut header) = whole_ip else { unreachable!() };
            header.dont_fragment = false;
            header.fragment = position;
            let ip = Ip::V4(header);
            let layout = build_ip_frame(
                &mut frame,
                &ETH,
                &ip,
                &Transport::Raw { protocol: PROTO_UDP },
                &datagram[range.clone()],
            );
            assert_eq!(internet_checksum(&frame[14..34], 0), 0);
            let flags = u16::from_be_bytes([frame[20], frame[21]]);
            assert_eq!(usize::from(flags & 0x1fff) * 8, range.start);
            assert_eq!(flags & 0x2000 != 0, index < 2);
            assert_eq!(frame[23], PROTO_UDP);
            reassembled[range].copy_from_slice(&frame[layout.transport..]);
        }
        assert_eq!(fragment_piece(datagram.len(), 1480, 3), None);
        assert_eq!(reassembled, datagram);
        assert!(transport_checksum_ok(&whole, layout, &whole_ip, PROTO_UDP));
    }

    #[test]
    fn ipv6_extension_headers_chain_correctly() {
        let Ip::V6(base) = v6() else { unreachable!() };
        let mut frame = Vec::new();
        let ip = Ip::V6(Ipv6 { extension: Ipv6Extension::DestinationOptions, ..base });
        let echo = Transport::Echo(Echo { reply: false, ident: 1, seq: 1 });
        let layout = build_ip_frame(&mut frame, &ETH, &ip, &echo, b"ping");
        assert_eq!(frame[14 + 6], PROTO_IPV6_DEST_OPTS);
        assert_eq!(frame[54], PROTO_ICMPV6);
        assert_eq!(layout.transport, 14 + 40 + 8);
        assert_eq!(u16::from_be_bytes([frame[18], frame[19]]), 8 + 8 + 4);
        assert!(transport_checksum_ok(&frame, layout, &ip, PROTO_ICMPV6));

        let position = FragmentPosition { offset: 1232, more: true };
        let ip = Ip::V6(Ipv6 { extension: Ipv6Extension::Fragment { ident: 0xdead_beef, position }, ..base });
        build_ip_frame(&mut frame, &ETH, &ip, &Transport::Raw { protocol: PROTO_UDP }, &[0; 16]);
        assert_eq!(frame[14 + 6], PROTO_IPV6_FRAGMENT);
        // Offset 1232 bytes = 154 units: 154 << 3 | M = 0x04d1.
        assert_eq!(&frame[54..62], &[PROTO_UDP, 0, 0x04, 0xd1, 0xde, 0xad, 0xbe, 0xef]);
    }

    #[test]
    fn arp_frames_are_not_ip() {
        let mut frame = Vec::new();
        let arp = Arp {
            reply: false,
            sender_mac: ETH.src,
            sender_ip: Ipv4Addr::new(192, 0, 2, 1),
            target_mac: [0; 6],
            target_ip: Ipv4Addr::new(192, 0, 2, 53),
        };
        build_arp_frame(&mut frame, &ETH, &arp);
        assert_eq!(frame.len(), 42);
        assert_eq!(&frame[12..14], &[0x08, 0x06]);
        assert_eq!(ip_addresses(&frame), None);
    }

    #[test]
    fn checksum_matches_rfc1071_example() {
        // RFC 1071 section 3 example words 0001 f203 f4f5 f6f7 sum to ddf2 (checksum 220d).
        assert_eq!(internet_checksum(&[0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7], 0), 0x220d);
    }
}
