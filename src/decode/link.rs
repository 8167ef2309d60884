//! Link layer: from a frame of a given link type to the IP packet inside, through any
//! stack of VLAN tags, MPLS labels and PPPoE sessions.

use super::{be16, DecodeIssue, Field};
use crate::capture::LinkType;

/// EtherType values that matter here.
mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const VLAN_OLD_QINQ_1: u16 = 0x9100;
    pub const VLAN_OLD_QINQ_2: u16 = 0x9200;
    pub const MPLS_UNICAST: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    pub const PPPOE_SESSION: u16 = 0x8864;
}

/// The fields of each link-layer header read here, as byte ranges; each header's length
/// follows from its last field where the header ends there.
mod ethernet {
    use super::Field;
    pub const ETHERTYPE: Field = 12..14;
    pub const HEADER_LEN: usize = ETHERTYPE.end;
}

/// An 802.1Q (or QinQ) tag: the tag control, then the inner EtherType.
mod vlan {
    use super::Field;
    pub const INNER_ETHERTYPE: Field = 2..4;
    pub const TAG_LEN: usize = INNER_ETHERTYPE.end;
}

/// A PPPoE session header and the PPP protocol field after it.
mod pppoe {
    use super::Field;
    pub const PPP_PROTOCOL: Field = 6..8;
    pub const HEADER_LEN: usize = PPP_PROTOCOL.end;
    pub const PPP_IPV4: u16 = 0x0021;
    pub const PPP_IPV6: u16 = 0x0057;
}

mod mpls {
    /// A label stack entry; its third byte's lowest bit marks the bottom of the stack.
    pub const LABEL_LEN: usize = 4;
    pub const BOTTOM_OF_STACK_BYTE: usize = 2;
    /// The all-zero control word some pseudowires put before the Ethernet frame.
    pub const PW_CONTROL_WORD_LEN: usize = 4;
}

/// Linux cooked capture v1.
mod sll {
    use super::Field;
    pub const PROTOCOL: Field = 14..16;
    pub const HEADER_LEN: usize = PROTOCOL.end;
}

/// Linux cooked capture v2.
mod sll2 {
    use super::Field;
    pub const PROTOCOL: Field = 0..2;
    pub const HEADER_LEN: usize = 20;
}

/// BSD loopback's address family.
const NULL_HEADER_LEN: usize = 4;

mod nflog {
    use super::Field;
    pub const HEADER_LEN: usize = 4;
    /// A TLV's length and type, in the capturing host's byte order.
    pub const TLV_LENGTH: Field = 0..2;
    pub const TLV_TYPE: Field = 2..4;
    pub const TLV_HEADER_LEN: usize = TLV_TYPE.end;
    pub const NFULA_PAYLOAD: u16 = 9;
}

/// Bound on stacked encapsulations (VLAN, MPLS, PPPoE): real networks use a handful.
const MAX_ENCAPSULATIONS: usize = 16;

/// The EtherType-like number in `field` of `header`, if the capture holds it.
fn protocol_at(header: &[u8], field: Field) -> Result<u16, DecodeIssue> {
    header.get(field).map(be16).ok_or(DecodeIssue::LinkTruncated)
}

/// The IP packet inside `data`, `None` for frames that carry no IP.
pub(super) fn network_layer(link: LinkType, data: &[u8]) -> Result<Option<&[u8]>, DecodeIssue> {
    match link {
        LinkType::ETHERNET => ethernet(data),
        LinkType::RAW | LinkType::RAW_BSD12 | LinkType::RAW_BSD14 => Ok(raw_ip(data)),
        LinkType::LINUX_SLL => {
            let proto = protocol_at(data, sll::PROTOCOL)?;
            after_ethertype(proto, &data[sll::HEADER_LEN..], 0)
        }
        LinkType::LINUX_SLL2 => {
            if data.len() < sll2::HEADER_LEN {
                return Err(DecodeIssue::LinkTruncated);
            }
            let proto = protocol_at(data, sll2::PROTOCOL)?;
            after_ethertype(proto, &data[sll2::HEADER_LEN..], 0)
        }
        LinkType::NULL | LinkType::LOOP => loopback(link, data),
        LinkType::NFLOG => nflog(data),
        _ => Err(DecodeIssue::UnsupportedLinkType),
    }
}

fn ethernet(data: &[u8]) -> Result<Option<&[u8]>, DecodeIssue> {
    ethernet_payload(data, 0)
}

/// What follows an Ethernet header at `depth` encapsulations.
fn ethernet_payload(frame: &[u8], depth: usize) -> Result<Option<&[u8]>, DecodeIssue> {
    let ethertype = protocol_at(frame, ethernet::ETHERTYPE)?;
    after_ethertype(ethertype, &frame[ethernet::HEADER_LEN..], depth)
}

/// Follows one EtherType; `depth` counts encapsulations already peeled.
fn after_ethertype(ethertype: u16, rest: &[u8], depth: usize) -> Result<Option<&[u8]>, DecodeIssue> {
    if depth > MAX_ENCAPSULATIONS {
        return Err(DecodeIssue::TooManyEncapsulations);
    }
    match ethertype {
        ethertype::IPV4 | ethertype::IPV6 => Ok(Some(rest)),
        ethertype::VLAN | ethertype::QINQ | ethertype::VLAN_OLD_QINQ_1 | ethertype::VLAN_OLD_QINQ_2 => {
            let inner = protocol_at(rest, vlan::INNER_ETHERTYPE)?;
            after_ethertype(inner, &rest[vlan::TAG_LEN..], depth + 1)
        }
        ethertype::MPLS_UNICAST | ethertype::MPLS_MULTICAST => mpls(rest, depth + 1),
        ethertype::PPPOE_SESSION => {
            let ppp = protocol_at(rest, pppoe::PPP_PROTOCOL)?;
            let payload = &rest[pppoe::HEADER_LEN..];
            match ppp {
                pppoe::PPP_IPV4 | pppoe::PPP_IPV6 => Ok(Some(payload)),
                _ => Ok(None),
            }
        }
        _ => Ok(None),
    }
}

/// Peels MPLS labels to the bottom of the stack, then guesses the payload as MPLS itself
/// does not say: IP by its version nibble, or an Ethernet pseudowire (with or without the
/// all-zero control word).
fn mpls(mut rest: &[u8], mut depth: usize) -> Result<Option<&[u8]>, DecodeIssue> {
    loop {
        let entry = rest.get(..mpls::LABEL_LEN).ok_or(DecodeIssue::LinkTruncated)?;
        rest = &rest[mpls::LABEL_LEN..];
        if entry[mpls::BOTTOM_OF_STACK_BYTE] & 0x01 != 0 {
            break;
        }
        depth += 1;
        if depth > MAX_ENCAPSULATIONS {
            return Err(DecodeIssue::TooManyEncapsulations);
        }
    }
    match rest.first().map(|b| b >> 4) {
        Some(4) | Some(6) => Ok(Some(rest)),
        Some(0) if rest.len() >= mpls::PW_CONTROL_WORD_LEN + ethernet::HEADER_LEN => {
            ethernet_payload(&rest[mpls::PW_CONTROL_WORD_LEN..], depth + 1)
        }
        Some(_) if rest.len() >= ethernet::HEADER_LEN => ethernet_payload(rest, depth + 1),
        _ => Err(DecodeIssue::LinkTruncated),
    }
}

fn raw_ip(data: &[u8]) -> Option<&[u8]> {
    match data.first().map(|b| b >> 4) {
        Some(4) | Some(6) => Some(data),
        _ => None,
    }
}

/// BSD loopback: a 4-byte address family, in the capturing host's byte order for NULL and
/// in network order for LOOP. IPv6's value differs between systems (10, 24, 28, 30).
fn loopback(link: LinkType, data: &[u8]) -> Result<Option<&[u8]>, DecodeIssue> {
    let head: [u8; 4] =
        data.get(..NULL_HEADER_LEN).and_then(|h| h.try_into().ok()).ok_or(DecodeIssue::LinkTruncated)?;
    let family = if link == LinkType::LOOP {
        u32::from_be_bytes(head)
    } else {
        // The byte order is the writer's: a family fits in the low byte either way.
        let le = u32::from_le_bytes(head);
        if le <= 0xff {
            le
        } else {
            u32::from_be_bytes(head)
        }
    };
    let payload = &data[NULL_HEADER_LEN..];
    match family {
        2 | 10 | 24 | 28 | 30 => Ok(raw_ip(payload)),
        _ => Ok(None),
    }
}

/// NFLOG: a 4-byte header, then TLVs whose length and type are in the capturing host's
/// (little-endian here, as on every Linux we meet) order, padded to 4 bytes. The packet is
/// the NFULA_PAYLOAD attribute.
fn nflog(data: &[u8]) -> Result<Option<&[u8]>, DecodeIssue> {
    let mut rest = data.get(nflog::HEADER_LEN..).ok_or(DecodeIssue::LinkTruncated)?;
    while rest.len() >= nflog::TLV_HEADER_LEN {
        let le16 = |field: Field| u16::from_le_bytes([rest[field.start], rest[field.start + 1]]);
        let len = le16(nflog::TLV_LENGTH) as usize;
        let kind = le16(nflog::TLV_TYPE) & 0x7fff;
        if len < nflog::TLV_HEADER_LEN {
            return Err(DecodeIssue::LinkTruncated);
        }
        if kind == nflog::NFULA_PAYLOAD {
            let end = len.min(rest.len());
            return Ok(raw_ip(&rest[nflog::TLV_HEADER_LEN..end]));
        }
        if len > rest.len() {
            // Cut inside an attribute before the payload.
            return Err(DecodeIssue::LinkTruncated);
        }
        let padded = (len + 3) & !3;
        // The last attribute may come without its padding.
        rest = rest.get(padded..).unwrap_or(&[]);
    }
    if rest.is_empty() {
        Ok(None)
    } else {
        // Cut inside an attribute header.
        Err(DecodeIssue::LinkTruncated)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::Frame;
    use crate::decode::{decode, Decoded, IpKey, L4State, PacketRecord};

    const MACS: [u8; 12] = [0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x52, 0x54, 0, 0xab, 0xcd, 0xef];

    /// IPv4/UDP 10.0.0.1:1234 → 10.0.0.2:53, 28 bytes.
    fn ipv4_udp() -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2];
        p.extend_from_slice(&[0x04, 0xd2, 0, 53, 0, 8, 0, 0]);
        p
    }

    /// IPv6/TCP SYN 2001:db8::1:40000 → 2001:db8::2:443, 60 bytes.
    fn ipv6_tcp_syn() -> Vec<u8> {
        let mut p = vec![0x60, 0, 0, 0, 0, 20, 6, 64];
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]);
        p.extend_from_slice(&[0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2]);
        p.extend_from_slice(&[0x9c, 0x40, 0x01, 0xbb, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]);
        p
    }

    fn ethernet(ethertype: u16) -> Vec<u8> {
        let mut f = MACS.to_vec();
        f.extend_from_slice(&ethertype.to_be_bytes());
        f
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// Where in `data` the IP packet was found, as (offset, length).
    fn locate(link: LinkType, data: &[u8]) -> Result<Option<(usize, usize)>, DecodeIssue> {
        network_layer(link, data).map(|ip| ip.map(|ip| (ip.as_ptr() as usize - data.as_ptr() as usize, ip.len())))
    }

    fn decode_frame(link: LinkType, data: &[u8]) -> (Result<Decoded, DecodeIssue>, PacketRecord) {
        let mut r = PacketRecord::default();
        let got = decode(&Frame { ts_ns: 1, wire_len: data.len() as u32, link, data }, &mut r);
        (got, r)
    }

    /// Asserts that `data` holds `ip` at `offset` and decodes to its addresses and ports.
    fn assert_ip_at(link: LinkType, data: &[u8], offset: usize, ip: &[u8]) {
        assert_eq!(locate(link, data), Ok(Some((offset, ip.len()))), "{link:?} {data:02x?}");
        let (got, r) = decode_frame(link, data);
        assert_eq!(got, Ok(Decoded::Ip));
        assert_eq!(r.l4, L4State::Present);
        if ip[0] >> 4 == 4 {
            assert_eq!((r.src, r.dst), (IpKey::from_v4([10, 0, 0, 1]), IpKey::from_v4([10, 0, 0, 2])));
            assert_eq!((r.protocol, r.src_port, r.dst_port), (17, 1234, 53));
        } else {
            assert_eq!((r.src.to_string().as_str(), r.dst.to_string().as_str()), ("2001:db8::1", "2001:db8::2"));
            assert_eq!((r.protocol, r.src_port, r.dst_port, r.tcp_flags), (6, 40000, 443, PacketRecord::TCP_SYN));
        }
    }

    /// Every cut of `data` shorter than `header_len` is `LinkTruncated`; no cut at all panics.
    fn assert_truncations(link: LinkType, data: &[u8], header_len: usize) {
        for cut in 0..header_len {
            assert_eq!(network_layer(link, &data[..cut]), Err(DecodeIssue::LinkTruncated), "{link:?} cut at {cut}");
        }
        for cut in 0..=data.len() {
            let _ = decode_frame(link, &data[..cut]);
        }
    }

    fn sll(protocol: u16) -> Vec<u8> {
        // Packet type, ARPHRD_ETHER, address length 6, 8 address bytes, protocol.
        cat(&[&[0, 0, 0, 1, 0, 6], &MACS[..8], &protocol.to_be_bytes()])
    }

    fn sll2(protocol: u16) -> Vec<u8> {
        // Protocol, reserved, interface index, ARPHRD_ETHER, packet type, address length, address.
        cat(&[&protocol.to_be_bytes(), &[0, 0, 0, 0, 0, 2, 0, 1, 0, 6], &MACS[..8]])
    }

    #[test]
    fn linux_sll() {
        let (v4, v6) = (ipv4_udp(), ipv6_tcp_syn());
        assert_ip_at(LinkType::LINUX_SLL, &cat(&[&sll(0x0800), &v4]), 16, &v4);
        assert_ip_at(LinkType::LINUX_SLL, &cat(&[&sll(0x86dd), &v6]), 16, &v6);
        // A VLAN tag the kernel left in place.
        assert_ip_at(LinkType::LINUX_SLL, &cat(&[&sll(0x8100), &[0, 5, 0x08, 0], &v4]), 20, &v4);
        assert_eq!(locate(LinkType::LINUX_SLL, &cat(&[&sll(0x0806), &[0; 28]])), Ok(None));
        assert_truncations(LinkType::LINUX_SLL, &cat(&[&sll(0x0800), &v4]), 16);
    }

    #[test]
    fn linux_sll2() {
        let (v4, v6) = (ipv4_udp(), ipv6_tcp_syn());
        assert_ip_at(LinkType::LINUX_SLL2, &cat(&[&sll2(0x86dd), &v6]), 20, &v6);
        assert_ip_at(LinkType::LINUX_SLL2, &cat(&[&sll2(0x0800), &v4]), 20, &v4);
        assert_eq!(locate(LinkType::LINUX_SLL2, &cat(&[&sll2(0x0806), &[0; 28]])), Ok(None));
        assert_truncations(LinkType::LINUX_SLL2, &cat(&[&sll2(0x0800), &v4]), 20);
    }

    #[test]
    fn null_loopback_family_in_either_byte_order() {
        let (v4, v6) = (ipv4_udp(), ipv6_tcp_syn());
        for family_bytes in [2u32.to_le_bytes(), 2u32.to_be_bytes()] {
            assert_ip_at(LinkType::NULL, &cat(&[&family_bytes, &v4]), 4, &v4);
        }
        // IPv6 is 10 (Linux), 24 (NetBSD/OpenBSD), 28 (FreeBSD) or 30 (macOS).
        for family in [10u32, 24, 28, 30] {
            assert_ip_at(LinkType::NULL, &cat(&[&family.to_le_bytes(), &v6]), 4, &v6);
            assert_ip_at(LinkType::NULL, &cat(&[&family.to_be_bytes(), &v6]), 4, &v6);
        }
        // Another family (here AF_APPLETALK, 16) carries no IP.
        assert_eq!(locate(LinkType::NULL, &cat(&[&16u32.to_le_bytes(), &v4])), Ok(None));
        assert_truncations(LinkType::NULL, &cat(&[&2u32.to_le_bytes(), &v4]), 4);
    }

    #[test]
    fn loop_family_is_big_endian() {
        let (v4, v6) = (ipv4_udp(), ipv6_tcp_syn());
        assert_ip_at(LinkType::LOOP, &cat(&[&2u32.to_be_bytes(), &v4]), 4, &v4);
        assert_ip_at(LinkType::LOOP, &cat(&[&24u32.to_be_bytes(), &v6]), 4, &v6);
        // Little-endian 2 read in network order is no family.
        assert_eq!(locate(LinkType::LOOP, &cat(&[&2u32.to_le_bytes(), &v4])), Ok(None));
        assert_truncations(LinkType::LOOP, &cat(&[&2u32.to_be_bytes(), &v4]), 4);
    }

    #[test]
    fn raw_ip_link_types() {
        let (v4, v6) = (ipv4_udp(), ipv6_tcp_syn());
        for link in [LinkType::RAW, LinkType::RAW_BSD12, LinkType::RAW_BSD14] {
            assert_ip_at(link, &v4, 0, &v4);
            assert_ip_at(link, &v6, 0, &v6);
            let mut bad = v4.clone();
            bad[0] = 0x55;
            assert_eq!(locate(link, &bad), Ok(None));
            assert_eq!(locate(link, &[]), Ok(None));
        }
    }

    /// An NFLOG attribute: little-endian length (header included) and type, value, padding.
    fn tlv(kind: u16, value: &[u8]) -> Vec<u8> {
        let mut t = cat(&[&(4 + value.len() as u16).to_le_bytes(), &kind.to_le_bytes(), value]);
        t.resize(t.len().next_multiple_of(4), 0);
        t
    }

    #[test]
    fn nflog_payload_after_other_attributes() {
        let (v4, v6) = (ipv4_udp(), ipv6_tcp_syn());
        // NFULA_PACKET_HDR (1) with hw protocol 0x0800 and hook 1, NFULA_PREFIX (10) "fw\0" padded.
        let head = cat(&[&[2, 0, 0, 0], &tlv(1, &[0x08, 0x00, 1, 0]), &tlv(10, b"fw\0")]);
        let offset = head.len() + 4;
        assert_ip_at(LinkType::NFLOG, &cat(&[&head, &tlv(9, &v4)]), offset, &v4);
        assert_ip_at(LinkType::NFLOG, &cat(&[&head, &tlv(9, &v6)]), offset, &v6);
        // The payload ends where its attribute says, not at the end of the frame.
        let mut odd = v4.clone();
        odd.push(0xee);
        let frame = cat(&[&head, &tlv(9, &odd), &tlv(11, &[0, 0, 0, 1])]);
        assert_eq!(locate(LinkType::NFLOG, &frame), Ok(Some((offset, odd.len()))));
        // No payload attribute: nothing to decode.
        assert_eq!(locate(LinkType::NFLOG, &head), Ok(None));
        // An attribute length below its own header.
        assert_eq!(locate(LinkType::NFLOG, &cat(&[&head, &[2, 0, 9, 0], &v4])), Err(DecodeIssue::LinkTruncated));
        // Cut before the payload starts: truncated, not "no IP", unless the cut falls between
        // attributes or in the prefix's padding (where a frame without a payload attribute, whose
        // last attribute is unpadded, would end too).
        let frame = cat(&[&head, &tlv(9, &v4)]);
        for cut in 0..offset {
            let want = if [4, 12, 19, 20].contains(&cut) { Ok(None) } else { Err(DecodeIssue::LinkTruncated) };
            assert_eq!(locate(LinkType::NFLOG, &frame[..cut]), want, "cut at {cut}");
        }
        assert_truncations(LinkType::NFLOG, &frame, 4);
    }

    #[test]
    fn vlan_and_qinq() {
        let (v4, v6) = (ipv4_udp(), ipv6_tcp_syn());
        assert_ip_at(LinkType::ETHERNET, &cat(&[&ethernet(0x8100), &[0x20, 10, 0x08, 0x00], &v4]), 18, &v4);
        let qinq = cat(&[&ethernet(0x88a8), &[0, 100, 0x81, 0x00], &[0, 10, 0x86, 0xdd], &v6]);
        assert_ip_at(LinkType::ETHERNET, &qinq, 22, &v6);
        for outer in [0x9100, 0x9200] {
            let old_qinq = cat(&[&ethernet(outer), &[0, 100, 0x81, 0x00], &[0, 10, 0x08, 0x00], &v4]);
            assert_ip_at(LinkType::ETHERNET, &old_qinq, 22, &v4);
        }
        assert_truncations(LinkType::ETHERNET, &qinq, 22);
    }

    fn vlan_stack(depth: usize, ip: &[u8]) -> Vec<u8> {
        let mut f = ethernet(0x8100);
        for i in 0..depth {
            let inner: u16 = if i + 1 == depth { 0x0800 } else { 0x8100 };
            f.extend_from_slice(&(i as u16).to_be_bytes());
            f.extend_from_slice(&inner.to_be_bytes());
        }
        f.extend_from_slice(ip);
        f
    }

    #[test]
    fn encapsulation_depth_is_bounded() {
        let v4 = ipv4_udp();
        assert_ip_at(LinkType::ETHERNET, &vlan_stack(16, &v4), 14 + 16 * 4, &v4);
        let deep = vlan_stack(17, &v4);
        assert_eq!(locate(LinkType::ETHERNET, &deep), Err(DecodeIssue::TooManyEncapsulations));
        assert_eq!(decode_frame(LinkType::ETHERNET, &deep).0, Err(DecodeIssue::TooManyEncapsulations));
        // MPLS labels that never reach the bottom of the stack.
        let endless = cat(&[&ethernet(0x8847), &[0, 1, 0, 64].repeat(40)]);
        assert_eq!(locate(LinkType::ETHERNET, &endless), Err(DecodeIssue::TooManyEncapsulations));
    }

    /// An MPLS label stack entry: label, bottom-of-stack bit, TTL 64.
    fn label(value: u32, bottom: bool) -> [u8; 4] {
        ((value << 12) | (u32::from(bottom) << 8) | 64).to_be_bytes()
    }

    #[test]
    fn mpls_two_labels_then_ip() {
        let (v4, v6) = (ipv4_udp(), ipv6_tcp_syn());
        let frame = cat(&[&ethernet(0x8847), &label(16, false), &label(17, true), &v4]);
        assert_ip_at(LinkType::ETHERNET, &frame, 22, &v4);
        let frame6 = cat(&[&ethernet(0x8848), &label(16, false), &label(17, true), &v6]);
        assert_ip_at(LinkType::ETHERNET, &frame6, 22, &v6);
        assert_truncations(LinkType::ETHERNET, &frame, 23);
        // Nothing after the bottom label.
        let bare = cat(&[&ethernet(0x8847), &label(16, true)]);
        assert_eq!(locate(LinkType::ETHERNET, &bare), Err(DecodeIssue::LinkTruncated));
    }

    #[test]
    fn mpls_pseudowire_with_and_without_control_word() {
        let v4 = ipv4_udp();
        let with_cw = cat(&[&ethernet(0x8847), &label(16, false), &label(17, true), &[0; 4], &ethernet(0x0800), &v4]);
        assert_ip_at(LinkType::ETHERNET, &with_cw, 14 + 8 + 4 + 14, &v4);
        // The inner destination MAC (0x52...) is neither IP nor a control word.
        let without_cw = cat(&[&ethernet(0x8847), &label(16, true), &ethernet(0x8100), &[0, 7, 0x08, 0], &v4]);
        assert_ip_at(LinkType::ETHERNET, &without_cw, 14 + 4 + 18, &v4);
        assert_truncations(LinkType::ETHERNET, &with_cw, 14 + 8 + 1);
    }

    fn pppoe(ppp_protocol: u16, payload: &[u8]) -> Vec<u8> {
        let len = (payload.len() + 2) as u16;
        cat(&[&ethernet(0x8864), &[0x11, 0x00, 0x12, 0x34], &len.to_be_bytes(), &ppp_protocol.to_be_bytes(), payload])
    }

    #[test]
    fn pppoe_session() {
        let (v4, v6) = (ipv4_udp(), ipv6_tcp_syn());
        assert_ip_at(LinkType::ETHERNET, &pppoe(0x0021, &v4), 22, &v4);
        assert_ip_at(LinkType::ETHERNET, &pppoe(0x0057, &v6), 22, &v6);
        // LCP carries no IP.
        assert_eq!(locate(LinkType::ETHERNET, &pppoe(0xc021, &[1, 1, 0, 4])), Ok(None));
        assert_truncations(LinkType::ETHERNET, &pppoe(0x0021, &v4), 22);
    }

    #[test]
    fn non_ip_ethernet_is_not_an_issue() {
        // ARP request.
        let arp =
            cat(&[&ethernet(0x0806), &[0, 1, 8, 0, 6, 4, 0, 1], &MACS[..6], &[10, 0, 0, 1], &[0; 6], &[10, 0, 0, 2]]);
        assert_eq!(decode_frame(LinkType::ETHERNET, &arp).0, Ok(Decoded::NonIp));
        // LLDP behind a VLAN tag, and an 802.3 length field (LLC).
        let lldp = cat(&[&ethernet(0x8100), &[0, 1, 0x88, 0xcc], &[0; 20]]);
        assert_eq!(decode_frame(LinkType::ETHERNET, &lldp).0, Ok(Decoded::NonIp));
        assert_eq!(decode_frame(LinkType::ETHERNET, &cat(&[&ethernet(0x0026), &[0; 38]])).0, Ok(Decoded::NonIp));
    }

    #[test]
    fn ethernet_truncated_and_unknown_link_types() {
        let frame = cat(&[&ethernet(0x0800), &ipv4_udp()]);
        assert_ip_at(LinkType::ETHERNET, &frame, 14, &ipv4_udp());
        assert_truncations(LinkType::ETHERNET, &frame, 14);
        // VLAN tag cut short.
        assert_eq!(locate(LinkType::ETHERNET, &cat(&[&ethernet(0x8100), &[0, 1, 8]])), Err(DecodeIssue::LinkTruncated));
        // The IP header cut short is an IP issue, not a link one.
        assert_eq!(decode_frame(LinkType::ETHERNET, &frame[..20]).0, Err(DecodeIssue::IpTruncated));
        assert_eq!(locate(LinkType(147), &frame), Err(DecodeIssue::UnsupportedLinkType));
    }
}
