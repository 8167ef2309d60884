//! Frame → compact [`PacketRecord`].
//!
//! Decoding walks the link layer (Ethernet with VLAN/QinQ/MPLS/PPPoE stacks, Linux cooked
//! v1/v2, BSD loopback, NFLOG, raw IP) down to IPv4/IPv6 (with extension headers and
//! fragments) and the first bytes of TCP, UDP, ICMP or ICMPv6. It reads only fixed offsets
//! through the checked views in [`wire`], writes into a caller-owned record and never
//! allocates, so it runs once per packet on the hot path.

mod link;
mod prefix;
mod record;
pub mod wire;

pub use prefix::Prefix;
pub use record::{ExportFormat, Fragment, IpKey, L4State, Origin, PacketRecord};

use crate::capture::Frame;

/// A header field: its byte range within the header.
pub(crate) type Field = std::ops::Range<usize>;

/// The big-endian (network order) number in a two-byte field.
#[inline]
pub(crate) fn be16(field: &[u8]) -> u16 {
    u16::from_be_bytes([field[0], field[1]])
}

/// The big-endian (network order) number in a four-byte field.
#[inline]
pub(crate) fn be32(field: &[u8]) -> u32 {
    u32::from_be_bytes([field[0], field[1], field[2], field[3]])
}

/// The big-endian (network order) number in an eight-byte field.
#[inline]
pub(crate) fn be64(field: &[u8]) -> u64 {
    u64::from(be32(&field[..4])) << 32 | u64::from(be32(&field[4..8]))
}

/// What a frame turned out to be when it decoded cleanly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded {
    /// An IPv4 or IPv6 packet; the record is filled in.
    Ip,
    /// A well-formed frame that carries no IP (ARP, LLDP, STP, ...).
    NonIp,
}

/// Why a frame could not be decoded; counted by reason in the replay summary.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DecodeIssue {
    /// The capture holds fewer bytes than the link-layer header needs.
    LinkTruncated,
    /// More VLAN/MPLS/PPPoE layers than any sane network stacks.
    TooManyEncapsulations,
    /// The frame is cut before the end of the IP header.
    IpTruncated,
    /// The IP version nibble is neither 4 nor 6 where IP was announced.
    BadIpVersion,
    /// An IPv4 header length or total length that cannot be right.
    BadIpHeader,
    /// An IPv6 extension header chain that is cut short or longer than we follow.
    BadExtensionHeaders,
    /// A link type the decoder does not know (capture sources reject these earlier).
    UnsupportedLinkType,
}

impl DecodeIssue {
    /// Every issue, in a fixed order (for counters indexed by `as usize`).
    pub const ALL: [DecodeIssue; 7] = [
        DecodeIssue::LinkTruncated,
        DecodeIssue::TooManyEncapsulations,
        DecodeIssue::IpTruncated,
        DecodeIssue::BadIpVersion,
        DecodeIssue::BadIpHeader,
        DecodeIssue::BadExtensionHeaders,
        DecodeIssue::UnsupportedLinkType,
    ];

    /// Stable snake_case name, used in summaries and metrics.
    pub fn name(self) -> &'static str {
        match self {
            DecodeIssue::LinkTruncated => "link_truncated",
            DecodeIssue::TooManyEncapsulations => "too_many_encapsulations",
            DecodeIssue::IpTruncated => "ip_truncated",
            DecodeIssue::BadIpVersion => "bad_ip_version",
            DecodeIssue::BadIpHeader => "bad_ip_header",
            DecodeIssue::BadExtensionHeaders => "bad_extension_headers",
            DecodeIssue::UnsupportedLinkType => "unsupported_link_type",
        }
    }
}

/// The payload of `frame` when it is a UDP datagram over IP (flow telemetry arrives so).
pub fn udp_payload<'a>(frame: &Frame<'a>) -> Option<&'a [u8]> {
    wire::udp_payload(link::network_layer(frame.link, frame.data).ok()??)
}

/// Decodes `frame` into `out`. On `Ok(Decoded::Ip)` every field of `out` is set for this
/// frame; otherwise `out` holds unspecified values and must not be used.
pub fn decode(frame: &Frame<'_>, out: &mut PacketRecord) -> Result<Decoded, DecodeIssue> {
    out.ts_ns = frame.ts_ns;
    out.wire_len = frame.wire_len.max(frame.data.len() as u32);
    out.weight = 1;
    match link::network_layer(frame.link, frame.data)? {
        Some(ip) => {
            wire::decode_ip(ip, out)?;
            Ok(Decoded::Ip)
        }
        None => Ok(Decoded::NonIp),
    }
}
