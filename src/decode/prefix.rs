//! IP prefixes in the 128-bit key space of [`IpKey`] (IPv4 v4-mapped), parsed from text.

use super::IpKey;
use std::net::IpAddr;

/// An IP prefix (IPv4 stored v4-mapped, so one comparison serves both families).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    network: u128,
    /// Prefix length in the 128-bit key space.
    len: u8,
}

impl Prefix {
    pub fn parse(text: &str) -> Result<Prefix, String> {
        let (addr, len) = match text.split_once('/') {
            Some((a, l)) => (a, Some(l)),
            None => (text, None),
        };
        let ip: IpAddr = addr.trim().parse().map_err(|_| format!("`{text}` is not an IP address or prefix"))?;
        let (max, offset) = if ip.is_ipv4() { (32u8, 96u8) } else { (128u8, 0u8) };
        let len = match len {
            Some(l) => l
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|l| *l <= max)
                .ok_or_else(|| format!("`{text}`: prefix length must be 0..={max}"))?,
            None => max,
        };
        let len = len + offset;
        let network = IpKey::from_ip(ip).0 & Self::mask(len);
        Ok(Prefix { network, len })
    }

    fn mask(len: u8) -> u128 {
        if len == 0 {
            0
        } else {
            u128::MAX << (128 - len as u32)
        }
    }

    #[inline]
    pub fn contains(&self, ip: IpKey) -> bool {
        ip.0 & Self::mask(self.len) == self.network
    }

    /// Whether the two share an address: one holds the other.
    pub fn overlaps(&self, other: &Prefix) -> bool {
        let shorter = self.len.min(other.len);
        self.network & Self::mask(shorter) == other.network & Self::mask(shorter)
    }

    /// Prefix length in the 128-bit key space (an IPv4 /24 is 120).
    pub fn bits(&self) -> u8 {
        self.len
    }

    /// The length as written (an IPv4 /24 is 24), and the family's longest.
    pub fn family_len(&self) -> (u8, u8) {
        if IpKey(self.network).is_v4() && self.len >= 96 {
            (self.len - 96, 32)
        } else {
            (self.len, 128)
        }
    }

    /// The prefix of `len` bits (in `ip`'s family) that holds `ip`.
    pub fn of(ip: IpAddr, len: u8) -> Prefix {
        let (max, offset) = if ip.is_ipv4() { (32u8, 96u8) } else { (128u8, 0u8) };
        let len = len.min(max) + offset;
        Prefix { network: IpKey::from_ip(ip).0 & Self::mask(len), len }
    }

    /// The network of `ip` under a mask of `bits` key-space bits.
    #[inline]
    pub fn network_of(ip: IpKey, bits: u8) -> IpKey {
        IpKey(ip.0 & Self::mask(bits))
    }
}
