//! The replay benchmark's inputs: large captures streamed straight to a writer.
//!
//! * [`write_bench_mix`]: benign background (many IPv4 and some IPv6 clients and servers, TCP,
//!   UDP and ICMP) with a SYN flood, a UDP flood and a DNS amplification inside, each against
//!   its own victim: in [`BENCH_MIX`] at about 7 % of the packets each, in [`BENCH_FLOOD`]
//!   78 % together, as in a real attack;
//! * [`write_bench_spoofed`]: a SYN flood against one victim from an exact number of distinct
//!   random IPv4 sources.
//!
//! Packets are 1 µs apart (1 Mpps of packet time), so 10 million packets cover 10 s and every
//! flood runs at about 70,000 pps, far above the 1,000 pps default thresholds. Nothing is held
//! per packet or per source: a frame buffer is reused, and the spoofed sources are a bijection
//! of their index, so they are distinct without a set. Everything derives from a fixed seed, so
//! the same build writes byte-identical files.

use std::io::{self, Write};
use std::net::{Ipv4Addr, Ipv6Addr};

use super::frames::{build_ip_frame, Echo, Ethernet, Ip, Ipv4, Ipv6, Ipv6Extension, Tcp, Transport, Udp, VlanTags};
use super::frames::{FragmentPosition, TCP_ACK, TCP_PSH, TCP_SYN};
use super::rng::Rng;
use super::traffic::BASE_TIME_NS;
use super::SEED;
use crate::pcap::{PcapWriter, TsResolution};

/// Default number of packets of each benchmark capture.
pub const DEFAULT_PACKETS: u64 = 10_000_000;
/// Default number of distinct sources of [`write_bench_spoofed`].
pub const DEFAULT_SOURCES: u64 = 5_000_000;

/// Packet time between consecutive frames: 1 µs, 1 Mpps.
const GAP_NS: i64 = 1_000;
/// Snap length of the files.
const SNAPLEN: u32 = 262_144;
/// LINKTYPE_ETHERNET.
const LINK_ETHERNET: u16 = 1;
/// Shortest and longest frame of `bench_mix` (Ethernet header included, no FCS).
const MIX_MIN_LEN: usize = 64;
const MIX_MAX_LEN: usize = 100;
/// Length of every `bench_spoofed` frame: a SYN with an MSS option (58 bytes) padded to the
/// Ethernet minimum of 60, as captures show it.
const SPOOFED_LEN: usize = 60;

/// The victim of `bench_mix`'s SYN flood (and of `bench_spoofed`).
pub const SYN_VICTIM: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 10);
/// The victim of `bench_mix`'s UDP flood.
pub const UDP_VICTIM: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 20);
/// The victim of `bench_mix`'s DNS amplification.
pub const DNS_VICTIM: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 50);

/// Sources of each `bench_mix` attack.
const SYN_BOTS: u64 = 2_000;
const UDP_BOTS: u64 = 500;
const DNS_REFLECTORS: u64 = 3_000;
/// Benign clients and servers of `bench_mix` (IPv4; IPv6 hosts are a tenth of these).
const CLIENTS: u64 = 65_536;
const SERVERS: u64 = 4_096;

const ETH: Ethernet =
    Ethernet { dst: [0x02, 0, 0, 0, 0, 0x01], src: [0x02, 0, 0, 0, 0, 0x02], vlan: VlanTags::Untagged };

/// What a benchmark capture holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BenchFacts {
    pub packets: u64,
    /// Frame bytes (the file is this plus 24 + 16 per packet).
    pub bytes: u64,
    /// Packets of each attack: SYN flood, UDP flood, DNS amplification (`bench_mix`), or the
    /// spoofed SYN flood in the first slot (`bench_spoofed`).
    pub attack_packets: [u64; 3],
    /// Exact number of distinct attack sources (`bench_spoofed`), or of SYN-flood bots.
    pub distinct_sources: u64,
    /// Time of the first and last packet, ns since the epoch.
    pub first_ns: i64,
    pub last_ns: i64,
}

/// Where generated frames go, counted: a pcap stream ([`Out`]), or an exporter that
/// describes them ([`Exported`]).
trait FrameSink {
    /// Frame `index`, at `index` µs of packet time.
    fn put(&mut self, index: u64, frame: &[u8]) -> io::Result<()>;
    fn facts(&mut self) -> &mut BenchFacts;
}

/// The packet time of frame `index`, counted into `facts`.
fn count(facts: &mut BenchFacts, index: u64, frame: &[u8]) -> i64 {
    let ts = BASE_TIME_NS + index as i64 * GAP_NS;
    if index == 0 {
        facts.first_ns = ts;
    }
    facts.last_ns = ts;
    facts.packets += 1;
    facts.bytes += frame.len() as u64;
    ts
}

/// Counts what goes into the writer.
struct Out<W: Write> {
    pcap: PcapWriter<W>,
    facts: BenchFacts,
}

impl<W: Write> FrameSink for Out<W> {
    fn put(&mut self, index: u64, frame: &[u8]) -> io::Result<()> {
        let ts = count(&mut self.facts, index, frame);
        self.pcap.write_frame(ts, frame, frame.len() as u32)
    }

    fn facts(&mut self) -> &mut BenchFacts {
        &mut self.facts
    }
}

/// Counts the frames, which an sFlow exporter samples.
/// A telemetry exporter that is shown every frame (and writes what it makes of them).
trait Meter {
    fn frame(&mut self, ts_ns: i64, frame: &[u8]) -> io::Result<()>;
}

impl<W: Write> Meter for crate::sflow::Exporter<W> {
    fn frame(&mut self, ts_ns: i64, frame: &[u8]) -> io::Result<()> {
        crate::sflow::Exporter::frame(self, ts_ns, frame)
    }
}

impl<W: Write> Meter for crate::netflow::Exporter<W> {
    fn frame(&mut self, ts_ns: i64, frame: &[u8]) -> io::Result<()> {
        crate::netflow::Exporter::frame(self, ts_ns, frame)
    }
}

/// Counts the frames, which an exporter is shown.
struct Exported<E: Meter> {
    exporter: E,
    facts: BenchFacts,
}

impl<E: Meter> FrameSink for Exported<E> {
    fn put(&mut self, index: u64, frame: &[u8]) -> io::Result<()> {
        let ts = count(&mut self.facts, index, frame);
        self.exporter.frame(ts, frame)
    }

    fn facts(&mut self) -> &mut BenchFacts {
        &mut self.facts
    }
}

impl<W: Write> Out<W> {
    fn new(out: W) -> io::Result<Self> {
        Ok(Out {
            pcap: PcapWriter::new(out, LINK_ETHERNET, SNAPLEN, TsResolution::Micro)?,
            facts: BenchFacts::default(),
        })
    }

    fn finish(self) -> io::Result<BenchFacts> {
        self.pcap.into_inner()?;
        Ok(self.facts)
    }
}

fn v4(src: Ipv4Addr, dst: Ipv4Addr, ttl: u8, ident: u16) -> Ip {
    Ip::V4(Ipv4 { src, dst, ttl, ident, dont_fragment: true, fragment: FragmentPosition::WHOLE })
}

fn v6(src: Ipv6Addr, dst: Ipv6Addr, hop_limit: u8) -> Ip {
    Ip::V6(Ipv6 { src, dst, hop_limit, flow_label: 0, extension: Ipv6Extension::None })
}

/// The `n`-th address of a pool starting at `base` (n below 2^24 - 2^16 for the pools used).
fn pool_v4(base: [u8; 4], n: u64) -> Ipv4Addr {
    Ipv4Addr::from(u32::from_be_bytes(base).wrapping_add(n as u32 + 1))
}

/// The `n`-th host of an IPv6 pool: each in a /64 of its own, as a home's or a customer's is
/// (the pool's whole traffic toward one /64 would look like a flood spread over it).
fn pool_v6(prefix: u16, n: u64) -> Ipv6Addr {
    Ipv6Addr::new(0x2001, 0xdb8, prefix, n as u16, 0, 0, 0, 1)
}

/// Header bytes in front of the payload, to size the payload for a frame length.
fn header_len(ip: &Ip, transport: &Transport) -> usize {
    let ip_len = match ip {
        Ip::V4(_) => 20,
        Ip::V6(_) => 40,
    };
    let transport_len = match transport {
        Transport::Tcp(tcp) if tcp.mss.is_some() => 24,
        Transport::Tcp(_) => 20,
        Transport::Udp(_) | Transport::Echo(_) => 8,
        Transport::Raw { .. } => 0,
    };
    14 + ip_len + transport_len
}

/// Builds a frame of `len` bytes (or the headers alone when they are longer) with a payload of
/// `filler` bytes.
fn build_sized(frame: &mut Vec<u8>, ip: &Ip, transport: &Transport, len: usize, payload: &[u8]) {
    let payload_len = len.saturating_sub(header_len(ip, transport)).min(payload.len());
    build_ip_frame(frame, &ETH, ip, transport, &payload[..payload_len]);
}

/// One benchmark mix: three floods against their own victims inside benign background.
pub struct Mix {
    /// The name of its random stream.
    name: &'static str,
    /// Percent of the packets in the SYN flood, the UDP flood and the DNS amplification; the
    /// rest is background.
    shares: [u64; 3],
    /// Distinct sources of each flood (bots, reflectors), all real: each sends many packets.
    sources: [u64; 3],
    /// Shortest and longest frame (Ethernet header included, no FCS) of each flood and of the
    /// background.
    lengths: [(usize, usize); 4],
}

/// `bench_mix`: mostly benign, each flood about 7 % of the packets, small frames.
pub const BENCH_MIX: Mix = Mix {
    name: "bench_mix",
    shares: [7, 7, 7],
    sources: [SYN_BOTS, UDP_BOTS, DNS_REFLECTORS],
    lengths: [(MIX_MIN_LEN, MIX_MAX_LEN); 4],
};

/// `bench_flood`: the floods are the traffic (78 % of the packets), each from thousands of
/// real sources, in the frame sizes of a real attack: SYNs with options, UDP floods of any
/// size, DNS answers amplified to hundreds of bytes and more, background of any size.
pub const BENCH_FLOOD: Mix = Mix {
    name: "bench_flood",
    shares: [38, 24, 16],
    sources: [4_000, 2_000, 3_000],
    lengths: [(60, 74), (60, 1_514), (512, 1_514), (64, 1_514)],
};

/// Writes `packets` frames of `mix` into `out` as a pcap stream.
pub fn write_bench_mix<W: Write>(out: W, mix: &Mix, packets: u64) -> io::Result<BenchFacts> {
    let mut out = Out::new(out)?;
    generate_mix(&mut out, mix, packets)?;
    out.finish()
}

/// What an sFlow exporter makes of a benchmark mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SflowFacts {
    /// The traffic sampled.
    pub traffic: BenchFacts,
    pub samples: u64,
    pub datagrams: u64,
}

/// Writes the sFlow datagrams (as frames to [`crate::export::COLLECTOR`] port 6343) of an agent that
/// samples `packets` frames of `mix` 1 in `rate`.
pub fn write_bench_sflow<W: Write>(out: W, mix: &Mix, packets: u64, rate: u32) -> io::Result<SflowFacts> {
    let pcap = PcapWriter::new(out, LINK_ETHERNET, SNAPLEN, TsResolution::Micro)?;
    let mut sampled = Exported { exporter: crate::sflow::Exporter::new(pcap, rate), facts: BenchFacts::default() };
    generate_mix(&mut sampled, mix, packets)?;
    let traffic = sampled.facts;
    let (samples, datagrams) = sampled.exporter.finish(traffic.last_ns)?;
    Ok(SflowFacts { traffic, samples, datagrams })
}

/// What a NetFlow exporter makes of a benchmark mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NetflowFacts {
    /// The traffic metered.
    pub traffic: BenchFacts,
    pub records: u64,
    pub datagrams: u64,
}

/// Writes the NetFlow v9 datagrams (as frames to [`crate::export::COLLECTOR`] port 2055) of a
/// router that meters `packets` frames of `mix` into flows, each exported after a second idle
/// or a second long.
pub fn write_bench_netflow<W: Write>(out: W, mix: &Mix, packets: u64) -> io::Result<NetflowFacts> {
    let pcap = PcapWriter::new(out, LINK_ETHERNET, SNAPLEN, TsResolution::Micro)?;
    let mut metered = Exported { exporter: crate::netflow::Exporter::new(pcap), facts: BenchFacts::default() };
    generate_mix(&mut metered, mix, packets)?;
    let traffic = metered.facts;
    let (records, datagrams) = metered.exporter.finish(traffic.last_ns)?;
    Ok(NetflowFacts { traffic, records, datagrams })
}

fn generate_mix(out: &mut impl FrameSink, mix: &Mix, packets: u64) -> io::Result<()> {
    let mut rng = Rng::for_stream(SEED, mix.name);
    let longest = mix.lengths.iter().map(|(_, max)| *max).max().unwrap_or(MIX_MAX_LEN);
    let mut frame = Vec::with_capacity(longest + 64);
    let payload: Vec<u8> = (0..longest as u32).map(|i| (i * 37 + 11) as u8).collect();
    let [syn_share, udp_share, dns_share] = mix.shares;
    let attacks = syn_share + udp_share + dns_share;
    for index in 0..packets {
        let bits = rng.next_u64();
        let class = (bits >> 8) % 100;
        let part = match class {
            c if c < syn_share => 0,
            c if c < syn_share + udp_share => 1,
            c if c < attacks => 2,
            _ => 3,
        };
        let (min_len, max_len) = mix.lengths[part];
        let len = min_len + (bits % (max_len - min_len + 1) as u64) as usize;
        let ident = (bits >> 16) as u16;
        let port = 1024 + ((bits >> 32) % 64_000) as u16;
        let pick = rng.next_u64();
        if part < 3 {
            out.facts().attack_packets[part] += 1;
        }
        match part {
            0 => {
                // SYN flood from real bots: random source ports and sequence numbers.
                let src = pool_v4([100, 64, 0, 0], pick % mix.sources[0]);
                let tcp = Tcp {
                    src_port: port,
                    dst_port: 80,
                    seq: (pick >> 32) as u32,
                    ack: 0,
                    flags: TCP_SYN,
                    window: 64_240,
                    mss: Some(1460),
                };
                build_sized(&mut frame, &v4(src, SYN_VICTIM, 57, ident), &Transport::Tcp(tcp), len, &payload);
                frame.resize(frame.len().max(min_len), 0);
            }
            1 => {
                // UDP flood to random ports.
                let src = pool_v4([100, 80, 0, 0], pick % mix.sources[1]);
                let udp = Udp { src_port: port, dst_port: (pick >> 48) as u16 | 1 };
                build_sized(&mut frame, &v4(src, UDP_VICTIM, 60, ident), &Transport::Udp(udp), len, &payload);
            }
            2 => {
                // DNS answers from open resolvers to the victim whose address was forged.
                let src = pool_v4([100, 96, 0, 0], pick % mix.sources[2]);
                let udp = Udp { src_port: 53, dst_port: port };
                build_sized(&mut frame, &v4(src, DNS_VICTIM, 52, ident), &Transport::Udp(udp), len, &payload);
            }
            _ => {
                // The background's own classes span 21..=99 (those of `bench_mix`).
                let background_class = 21 + (class - attacks) * 79 / (100 - attacks);
                background(&mut frame, background_class, len, ident, port, pick, &payload);
            }
        }
        out.put(index, &frame)?;
    }
    let facts = out.facts();
    facts.distinct_sources = mix.sources[0].min(facts.attack_packets[0]);
    Ok(())
}

/// One benign frame: client–server TCP both ways, DNS and other UDP, pings; a tenth over IPv6.
fn background(frame: &mut Vec<u8>, class: u64, len: usize, ident: u16, port: u16, pick: u64, payload: &[u8]) {
    let client_n = pick % CLIENTS;
    let server_n = (pick >> 20) % SERVERS;
    let ipv6 = (pick >> 40) % 10 == 0;
    let toward_server = (pick >> 44) & 1 == 0;
    let (client, server) = if ipv6 {
        (
            v6(pool_v6(0x1, client_n / 10), pool_v6(0x2, server_n / 10), 64),
            v6(pool_v6(0x2, server_n / 10), pool_v6(0x1, client_n / 10), 60),
        )
    } else {
        (
            v4(pool_v4([10, 0, 0, 0], client_n), pool_v4([172, 16, 0, 0], server_n), 64, ident),
            v4(pool_v4([172, 16, 0, 0], server_n), pool_v4([10, 0, 0, 0], client_n), 60, ident),
        )
    };
    let ip = if toward_server { client } else { server };
    let service = [443u16, 80, 22, 8080][(server_n % 4) as usize];
    let (c_port, s_port) = (port, service);
    let (src_port, dst_port) = if toward_server { (c_port, s_port) } else { (s_port, c_port) };
    let seq = (pick >> 8) as u32;
    let transport = match class {
        21..=78 => Transport::Tcp(Tcp {
            src_port,
            dst_port,
            seq,
            ack: seq.rotate_left(7),
            flags: if (pick >> 45) & 3 == 0 { TCP_ACK } else { TCP_ACK | TCP_PSH },
            window: 501,
            mss: None,
        }),
        79..=92 => {
            let (dns_src, dns_dst) = if toward_server { (port, 53) } else { (53, port) };
            Transport::Udp(Udp { src_port: dns_src, dst_port: dns_dst })
        }
        93..=97 => {
            let other = [123u16, 443, 5060, 1194][(pick >> 50) as usize % 4];
            let (a, b) = if toward_server { (port, other) } else { (other, port) };
            Transport::Udp(Udp { src_port: a, dst_port: b })
        }
        _ => Transport::Echo(Echo { reply: !toward_server, ident, seq: (pick >> 48) as u16 }),
    };
    build_sized(frame, &ip, &transport, len, payload);
    frame.resize(frame.len().max(MIX_MIN_LEN), 0);
}

/// A keyed bijection of 32-bit values (xor-shift and odd multiplications are invertible).
fn permute(mut x: u32, key: u32) -> u32 {
    x ^= key;
    x = x.wrapping_mul(0x9e37_79b1);
    x ^= x >> 15;
    x = x.wrapping_mul(0x85eb_ca77);
    x ^= x >> 13;
    x = x.wrapping_add(key.rotate_left(16));
    x = x.wrapping_mul(0xc2b2_ae3d);
    x ^ (x >> 16)
}

/// Whether a spoofed source may start with this octet: not 0/8, 10/8, 127/8, the victim's
/// 198/8, multicast or reserved.
const fn usable_octet(octet: u32) -> bool {
    !(octet == 0 || octet == 10 || octet == 127 || octet == 198 || octet >= 224)
}

/// The usable first octets in order.
const USABLE_OCTETS: [u8; 220] = {
    let mut table = [0u8; 220];
    let (mut octet, mut next) = (0u32, 0usize);
    while octet < 256 {
        if usable_octet(octet) {
            table[next] = octet as u8;
            next += 1;
        }
        octet += 1;
    }
    table
};

/// Number of usable spoofed sources: 220 blocks of 2^24.
const USABLE_SOURCES: u64 = (USABLE_OCTETS.len() as u64) << 24;

/// The `n`-th spoofed source (`n` below 3,690,987,520): the keyed permutation of 32-bit values
/// walked until it lands below [`USABLE_SOURCES`] (cycle walking from a start inside that range
/// keeps it a bijection of the range), then that rank mapped to the usable address of that
/// rank. Different `n` give different addresses.
pub fn spoofed_source(n: u64) -> Ipv4Addr {
    debug_assert!(n < USABLE_SOURCES);
    let mut rank = permute(n as u32, 0x5eed_0007);
    while u64::from(rank) >= USABLE_SOURCES {
        rank = permute(rank, 0x5eed_0007);
    }
    let octet = u32::from(USABLE_OCTETS[(rank >> 24) as usize]);
    Ipv4Addr::from((octet << 24) | (rank & 0x00ff_ffff))
}

/// Writes `packets` SYNs toward [`SYN_VICTIM`] port 80 from `sources` distinct spoofed IPv4
/// sources: packet `i` comes from source `i mod sources`, so every source sends
/// `packets / sources` or one more. The exact number of distinct sources is
/// `min(packets, sources)`, returned in [`BenchFacts::distinct_sources`].
pub fn write_bench_spoofed<W: Write>(out: W, packets: u64, sources: u64) -> io::Result<BenchFacts> {
    if sources == 0 || sources > USABLE_SOURCES {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "sources must be between 1 and 3,690,987,520"));
    }
    let mut out = Out::new(out)?;
    let mut rng = Rng::for_stream(SEED, "bench_spoofed");
    let mut frame = Vec::with_capacity(128);
    for index in 0..packets {
        let bits = rng.next_u64();
        let src = spoofed_source(index % sources);
        let tcp = Tcp {
            src_port: 1024 + (bits % 64_000) as u16,
            dst_port: 80,
            seq: (bits >> 32) as u32,
            ack: 0,
            flags: TCP_SYN,
            window: 64_240,
            mss: Some(1460),
        };
        let ip = v4(src, SYN_VICTIM, 40 + (bits >> 24) as u8 % 200, (bits >> 16) as u16);
        build_ip_frame(&mut frame, &ETH, &ip, &Transport::Tcp(tcp), &[]);
        frame.resize(SPOOFED_LEN, 0);
        out.put(index, &frame)?;
    }
    out.facts.attack_packets[0] = packets;
    out.facts.distinct_sources = packets.min(sources);
    out.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spoofed_sources_are_distinct_and_usable() {
        // The benchmark's default: exactly DEFAULT_SOURCES distinct addresses.
        let mut all: Vec<u32> = (0..DEFAULT_SOURCES).map(|n| u32::from(spoofed_source(n))).collect();
        assert!(all.iter().all(|&ip| usable_octet(ip >> 24)));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len() as u64, DEFAULT_SOURCES);
    }

    #[test]
    fn the_flood_mix_is_mostly_attack_in_real_frame_sizes() {
        let mut bytes = Vec::new();
        let facts = write_bench_mix(&mut bytes, &BENCH_FLOOD, 50_000).unwrap();
        let attack: u64 = facts.attack_packets.iter().sum();
        assert!(attack * 100 >= 75 * facts.packets, "{facts:?}");
        assert!(facts.attack_packets.iter().all(|&n| n * 100 >= 15 * facts.packets), "{facts:?}");
        assert_eq!(facts.distinct_sources, 4_000);
        // Frame lengths from the records: all within 60..=1514, both ends reached.
        let (mut at, mut lengths) = (24, Vec::new());
        while at + 16 <= bytes.len() {
            let len = u32::from_le_bytes(bytes[at + 8..at + 12].try_into().unwrap()) as usize;
            lengths.push(len);
            at += 16 + len;
        }
        assert_eq!(lengths.len() as u64, facts.packets);
        assert_eq!(lengths.iter().min(), Some(&60));
        assert_eq!(lengths.iter().max(), Some(&1_514));
        let mean = lengths.iter().sum::<usize>() / lengths.len();
        assert!((300..=900).contains(&mean), "mean frame {mean} bytes");
    }

    #[test]
    fn files_are_deterministic_and_sized() {
        let mix = |n| {
            let mut bytes = Vec::new();
            let facts = write_bench_mix(&mut bytes, &BENCH_MIX, n).unwrap();
            (bytes, facts)
        };
        let (a, facts) = mix(20_000);
        assert_eq!(a, mix(20_000).0);
        assert_eq!(facts.packets, 20_000);
        assert_eq!(a.len() as u64, 24 + 16 * 20_000 + facts.bytes);
        assert!((64 * 20_000..=100 * 20_000).contains(&facts.bytes));
        for count in facts.attack_packets {
            assert!((1_000..=2_000).contains(&count), "{count}");
        }
        let mut bytes = Vec::new();
        let facts = write_bench_spoofed(&mut bytes, 1_001, 500).unwrap();
        assert_eq!(facts.distinct_sources, 500);
        assert_eq!(bytes.len(), 24 + 1_001 * (16 + SPOOFED_LEN));
    }
}
