//! The simulated network around the capture point: which addresses are local, the MAC addresses
//! frames carry, and pools of random hosts drawn from documentation and benchmark ranges.
//!
//! The capture is taken on the victims' LAN behind one router: local hosts (the documentation
//! ranges 192.0.2.0/24, 198.51.100.0/24, 203.0.113.0/24 and 2001:db8::/32 outside
//! 2001:db8:ffff::/48) have their own MAC address, everything remote is reached through the
//! gateway's MAC address.

use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::frames::{Ethernet, MacAddr, VlanTags};
use super::rng::Rng;

/// The router's MAC address (a VRRP virtual MAC, as first-hop routers often use).
pub const GATEWAY_MAC: MacAddr = [0x00, 0x00, 0x5e, 0x00, 0x01, 0x01];
/// The router's address on the 192.0.2.0/24 LAN.
pub const GATEWAY_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
/// Ethernet broadcast.
pub const BROADCAST_MAC: MacAddr = [0xff; 6];

/// The initial TTL / hop limit of packets that local hosts send.
pub const LOCAL_TTL: u8 = 64;

/// A host as seen on the capture link: its address and the TTL (or hop limit) its packets have
/// when they reach the link.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Host {
    pub addr: IpAddr,
    pub ttl: u8,
}

impl Host {
    /// A host on the capture LAN: its packets arrive with their initial TTL.
    pub fn local(addr: impl Into<IpAddr>) -> Host {
        Host { addr: addr.into(), ttl: LOCAL_TTL }
    }
}

/// An address prefix to draw random hosts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Prefix {
    base: IpAddr,
    len: u8,
}

/// 198.18.0.0/15, the benchmarking range (RFC 2544): attackers and remote clients.
pub const BENCHMARK_V4: Prefix = Prefix::v4(Ipv4Addr::new(198, 18, 0, 0), 15);
/// 100.64.0.0/10, shared address space (RFC 6598): remote clients and resolvers.
pub const SHARED_V4: Prefix = Prefix::v4(Ipv4Addr::new(100, 64, 0, 0), 10);
/// 2001:db8:ffff::/48: remote IPv6 hosts.
pub const REMOTE_V6: Prefix = Prefix::v6(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 0), 48);

impl Prefix {
    pub const fn v4(base: Ipv4Addr, len: u8) -> Prefix {
        Prefix { base: IpAddr::V4(base), len }
    }

    pub const fn v6(base: Ipv6Addr, len: u8) -> Prefix {
        Prefix { base: IpAddr::V6(base), len }
    }

    /// A uniformly random address inside the prefix whose last byte is neither 0 nor 255, so
    /// that no drawn host looks like a network or broadcast address.
    pub fn random_addr(&self, rng: &mut Rng) -> IpAddr {
        loop {
            let addr = match self.base {
                IpAddr::V4(base) => {
                    let host_bits = 32 - u32::from(self.len);
                    let offset = rng.below(1u64 << host_bits) as u32;
                    IpAddr::V4(Ipv4Addr::from(u32::from(base) | offset))
                }
                IpAddr::V6(base) => {
                    let host_bits = 128 - u32::from(self.len);
                    let random = (u128::from(rng.next_u64()) << 64) | u128::from(rng.next_u64());
                    let offset = random & (u128::MAX >> (128 - host_bits));
                    IpAddr::V6(Ipv6Addr::from(u128::from(base) | offset))
                }
            };
            if !matches!(last_byte(addr), 0 | 255) {
                return addr;
            }
        }
    }
}

/// `count` distinct random remote hosts from `prefix`, each with its own arrival TTL.
pub fn distinct_hosts(rng: &mut Rng, prefix: Prefix, count: usize) -> Vec<Host> {
    let mut seen = BTreeSet::new();
    let mut hosts = Vec::with_capacity(count);
    while hosts.len() < count {
        let addr = prefix.random_addr(rng);
        if seen.insert(addr) {
            hosts.push(Host { addr, ttl: arriving_ttl(rng) });
        }
    }
    hosts
}

/// The TTL a remote packet arrives with: a common initial TTL (64 for Linux and BSD, 128 for
/// Windows) less 4 to 22 hops.
fn arriving_ttl(rng: &mut Rng) -> u8 {
    let initial = if rng.below(3) == 0 { 128 } else { 64 };
    initial - rng.between(4, 22) as u8
}

/// Spoofed IPv4 source addresses as a flooding tool that randomises its source produces them:
/// scattered uniformly over the address space outside 0/8, 127/8 and 224/3 (multicast and
/// reserved), and never the same address twice.
///
/// The n-th address is a keyed bijection of n, so the addresses are distinct without
/// remembering the ones already used: a stream of any length needs no memory.
#[derive(Clone, Debug)]
pub struct SpoofedSources {
    key: u32,
    next_index: u32,
}

impl SpoofedSources {
    pub fn new(rng: &mut Rng) -> SpoofedSources {
        SpoofedSources { key: rng.next_u32(), next_index: 0 }
    }

    /// The next address; `None` once the whole address space has been used.
    pub fn next_addr(&mut self) -> Option<Ipv4Addr> {
        loop {
            let index = self.next_index;
            self.next_index = index.checked_add(1)?;
            let addr = Ipv4Addr::from(scramble(index, self.key));
            let first = addr.octets()[0];
            if first != 0 && first != 127 && first < 224 {
                return Some(addr);
            }
        }
    }
}

/// A bijection of the 32-bit numbers that scatters consecutive inputs (the finaliser of
/// MurmurHash3 after a keyed xor): every step, xor with a constant, xor with a right shift,
/// multiplication by an odd number, can be undone.
fn scramble(value: u32, key: u32) -> u32 {
    let mut x = value ^ key;
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^ (x >> 16)
}

/// Whether `addr` sits on the capture LAN (see the module documentation).
pub fn is_local(addr: IpAddr) -> bool {
    match addr {
        IpAddr::V4(v4) => matches!(v4.octets(), [192, 0, 2, _] | [198, 51, 100, _] | [203, 0, 113, _]),
        IpAddr::V6(v6) => {
            let segments = v6.segments();
            segments[0] == 0x2001 && segments[1] == 0x0db8 && segments[2] != 0xffff
        }
    }
}

/// The MAC address that frames from or to `addr` carry on the capture link: a locally
/// administered address made from the host's address for local hosts, the gateway's otherwise.
pub fn mac_of(addr: IpAddr) -> MacAddr {
    if !is_local(addr) || addr == IpAddr::V4(GATEWAY_V4) {
        return GATEWAY_MAC;
    }
    let octets = match addr {
        IpAddr::V4(v4) => v4.octets(),
        IpAddr::V6(v6) => {
            let all = v6.octets();
            [all[12], all[13], all[14], all[15]]
        }
    };
    [0x02, 0x00, octets[0], octets[1], octets[2], octets[3]]
}

/// The untagged Ethernet header of a frame from `src` to `dst`.
pub fn ethernet_between(src: IpAddr, dst: IpAddr) -> Ethernet {
    Ethernet { dst: mac_of(dst), src: mac_of(src), vlan: VlanTags::Untagged }
}

fn last_byte(addr: IpAddr) -> u8 {
    match addr {
        IpAddr::V4(v4) => v4.octets()[3],
        IpAddr::V6(v6) => v6.octets()[15],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_addresses_stay_inside_their_prefix() {
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            let IpAddr::V4(v4) = BENCHMARK_V4.random_addr(&mut rng) else { panic!("family") };
            assert_eq!(u32::from(v4) >> 17, u32::from(Ipv4Addr::new(198, 18, 0, 0)) >> 17);
            let IpAddr::V6(v6) = REMOTE_V6.random_addr(&mut rng) else { panic!("family") };
            assert_eq!(&v6.segments()[..3], &[0x2001, 0xdb8, 0xffff]);
            assert!(!is_local(IpAddr::V6(v6)));
        }
    }

    #[test]
    fn spoofed_addresses_are_distinct_and_avoid_reserved_ranges() {
        let mut sources = SpoofedSources::new(&mut Rng::new(4));
        let addrs: Vec<Ipv4Addr> = (0..100_000).map(|_| sources.next_addr().unwrap()).collect();
        assert!(addrs.iter().all(|a| a.octets()[0] != 0 && a.octets()[0] != 127 && a.octets()[0] < 224));
        assert_eq!(addrs.iter().collect::<BTreeSet<_>>().len(), addrs.len());
        // Spread over the space: every /8 that may appear gets some (100,000 / 222 ≈ 450 each).
        let firsts: BTreeSet<u8> = addrs.iter().map(|a| a.octets()[0]).collect();
        assert_eq!(firsts.len(), 222);
    }

    #[test]
    fn scramble_is_a_bijection_on_a_sample() {
        let outputs: BTreeSet<u32> = (0..1u32 << 20).map(|n| scramble(n, 0xdead_beef)).collect();
        assert_eq!(outputs.len(), 1 << 20);
    }

    #[test]
    fn distinct_hosts_are_distinct() {
        let hosts = distinct_hosts(&mut Rng::new(5), SHARED_V4, 500);
        let unique: BTreeSet<_> = hosts.iter().map(|host| host.addr).collect();
        assert_eq!(unique.len(), 500);
    }

    #[test]
    fn remote_hosts_share_the_gateway_mac() {
        assert_eq!(mac_of(IpAddr::from([198, 18, 0, 1])), GATEWAY_MAC);
        assert_eq!(mac_of(IpAddr::V4(GATEWAY_V4)), GATEWAY_MAC);
        assert_eq!(mac_of(IpAddr::from([192, 0, 2, 53])), [2, 0, 192, 0, 2, 53]);
    }
}
