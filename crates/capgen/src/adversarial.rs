//! Adversarial captures for the robustness tests: traffic chosen to hurt a flood detector
//! rather than to look like a network.
//!
//! * [`spoofed_sources`]: a SYN flood from `n` distinct random IPv4 sources, one packet each;
//! * [`colliding_keys`]: floods whose sources and whose many bystander destinations would all
//!   land in one bucket of a table indexed by an unkeyed hash (low bits, or identity);
//! * [`odd_frames`]: all-zero and all-0xFF frames of every length up to 1,518 bytes, 64 KiB
//!   frames, VLAN and MPLS stacks up to 40 deep, around a real UDP flood;
//! * [`fragments`]: overlapping, tiny, duplicate and end-of-datagram IPv4 and IPv6 fragments
//!   flooding two victims;
//! * [`time_travel`]: three UDP floods in 1960, 2026 and 2200 amid timestamps that jump back
//!   and forth by seconds, years and decades, before 1970 and with nanosecond fields ≥ 10^9;
//! * [`same_timestamp`]: two million packets, a SYN flood among benign traffic, all stamped
//!   with the same instant.
//!
//! Every capture is written while it is generated: nothing holds more than a few frames (and
//! the address pools of its hosts), so a capture of ten million packets costs no memory. Each
//! case draws from its own named stream of [`SEED`], so the same build writes the same bytes.
//! Each writer returns what a replay should show: the frames written, the attacks with the
//! times of their first and last packets, and the facts particular to the case.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};

use super::files::LINK_ETHERNET;
use super::floods::{FloodConfig, SpoofedSynConfig, SpoofedSynFlood, UdpFlood, REFLECTOR_PORTS};
use super::frames::{
    build_ip_frame, internet_checksum, Echo, Ethernet, FragmentPosition, Ip, Ipv4, Ipv6, Ipv6Extension, Tcp, Transport,
    Udp, PROTO_TCP, TCP_ACK, TCP_PSH, TCP_SYN,
};
use super::hosts::{distinct_hosts, ethernet_between, Host, BENCHMARK_V4, REMOTE_V6, SHARED_V4};
use super::rng::Rng;
use super::traffic::{EventQueue, Role, TrafficSource, Window, BASE_TIME_NS, NS_PER_SECOND};
use super::SEED;
use crate::pcap::{PcapWriter, TsResolution};

/// Snap length written into the headers: above the 64 KiB frames of [`odd_frames`].
const SNAPLEN: u32 = 262_144;
/// Output buffer of the capture files.
const BUFFER_LEN: usize = 1 << 20;
const NS_PER_MS: i64 = 1_000_000;
/// IP protocol 47 (GRE): fragments of it are fragments and nothing else to the detector.
const PROTO_GRE: u8 = 47;
/// A year of 365.25 days, in nanoseconds.
const YEAR_NS: i64 = 31_557_600 * NS_PER_SECOND;

/// An attack a replay must flag.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedAttack {
    /// The detector's name of the kind: `syn_flood`, `udp_flood`, `fragment_flood`, ...
    pub kind: &'static str,
    pub victim: IpAddr,
    /// Earliest and latest time stamped on the attack's packets (as a reader computes them).
    pub first_ns: i64,
    pub last_ns: i64,
    /// Attack packets written.
    pub packets: u64,
    /// Distinct source addresses of the attack packets.
    pub sources: u64,
}

impl ExpectedAttack {
    fn new(kind: &'static str, victim: impl Into<IpAddr>, sources: u64) -> ExpectedAttack {
        ExpectedAttack { kind, victim: victim.into(), first_ns: i64::MAX, last_ns: i64::MIN, packets: 0, sources }
    }

    fn add(&mut self, ts_ns: i64) {
        self.first_ns = self.first_ns.min(ts_ns);
        self.last_ns = self.last_ns.max(ts_ns);
        self.packets += 1;
    }
}

/// What a capture holds.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Written {
    /// Frames (records) written, every one of them, empty frames included.
    pub frames: u64,
    /// Sum of the frames' lengths (all are stored whole).
    pub wire_bytes: u64,
    /// The attacks, indexed as the `Role::Attack` of their packets.
    pub attacks: Vec<ExpectedAttack>,
}

impl Written {
    fn new(attacks: Vec<ExpectedAttack>) -> Written {
        Written { attacks, ..Written::default() }
    }

    /// Counts one frame; a `Role::Attack` index past the attack list counts as background.
    fn count(&mut self, ts_ns: i64, role: Role, len: usize) {
        self.frames += 1;
        self.wire_bytes += len as u64;
        if let Role::Attack(index) = role {
            if let Some(attack) = self.attacks.get_mut(index) {
                attack.add(ts_ns);
            }
        }
    }
}

/// Role of traffic from the reused flood sources that is no attack here.
const NOT_AN_ATTACK: usize = usize::MAX;

/// A nanosecond pcap stream (Ethernet) that counts what it writes.
struct Recorder<W: Write> {
    pcap: PcapWriter<W>,
    written: Written,
}

impl<W: Write> Recorder<W> {
    fn new(out: W, attacks: Vec<ExpectedAttack>) -> io::Result<Recorder<W>> {
        let pcap = PcapWriter::new(out, LINK_ETHERNET, SNAPLEN, TsResolution::Nano)?;
        Ok(Recorder { pcap, written: Written::new(attacks) })
    }

    fn write(&mut self, ts_ns: i64, role: Role, frame: &[u8]) -> io::Result<()> {
        self.pcap.write_frame(ts_ns, frame, frame.len() as u32)?;
        self.written.count(ts_ns, role, frame.len());
        Ok(())
    }

    fn finish(self) -> io::Result<Written> {
        self.pcap.into_inner()?.flush()?;
        Ok(self.written)
    }
}

/// Interleaves `sources` by time (ties go to the source listed first) into `recorder`. Unlike
/// [`super::traffic::merge`], empty frames are written too: some cases want them.
fn play<W: Write>(sources: &mut [Box<dyn TrafficSource>], recorder: &mut Recorder<W>) -> io::Result<()> {
    let mut frame = Vec::with_capacity(1 << 17);
    loop {
        let earliest =
            sources.iter().enumerate().filter_map(|(index, source)| source.next_time().map(|time| (time, index))).min();
        let Some((_, index)) = earliest else {
            return Ok(());
        };
        if let Some((time, role)) = sources[index].next_frame(&mut frame) {
            recorder.write(time, role, &frame)?;
        }
    }
}

/// A buffered file at `path`.
fn create(path: &Path) -> io::Result<BufWriter<File>> {
    Ok(BufWriter::with_capacity(BUFFER_LEN, File::create(path)?))
}

/// The stream of one case.
fn stream(case: &str) -> Rng {
    Rng::for_stream(SEED, &format!("adversarial/{case}"))
}

/// The time `ms` milliseconds after [`BASE_TIME_NS`].
const fn at_ms(ms: i64) -> i64 {
    BASE_TIME_NS + ms * NS_PER_MS
}

/// A source port of 1024 or above that no reflection service uses.
fn plain_port(rng: &mut Rng) -> u16 {
    loop {
        let port = rng.between(1024, 65_535) as u16;
        if !REFLECTOR_PORTS.contains(&port) {
            return port;
        }
    }
}

/// Builds a TCP segment with `flags` from `src` to `dst` (same family).
fn build_tcp(frame: &mut Vec<u8>, src: Host, dst: IpAddr, ports: (u16, u16), flags: u8, rng: &mut Rng) {
    let ip = Ip::between(src.addr, dst, src.ttl, rng.next_u16()).expect("same family");
    let tcp = Tcp {
        src_port: ports.0,
        dst_port: ports.1,
        seq: rng.next_u32(),
        ack: if flags & TCP_ACK != 0 { rng.next_u32() } else { 0 },
        flags,
        window: 64_240,
        mss: (flags & TCP_SYN != 0).then_some(1460),
    };
    build_ip_frame(frame, &ethernet_between(src.addr, dst), &ip, &Transport::Tcp(tcp), &[]);
}

/// Builds a UDP datagram from `src` to `dst` (same family) carrying `payload`.
fn build_udp(frame: &mut Vec<u8>, src: Host, dst: IpAddr, ports: (u16, u16), payload: &[u8], ip_id: u16) {
    let ip = Ip::between(src.addr, dst, src.ttl, ip_id).expect("same family");
    let udp = Transport::Udp(Udp { src_port: ports.0, dst_port: ports.1 });
    build_ip_frame(frame, &ethernet_between(src.addr, dst), &ip, &udp, payload);
}

// ------------------------------------------------------------------------------------------
// Ten million spoofed sources

/// Victim of [`spoofed_sources`].
pub const SPOOFED_VICTIM: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 80);

/// Writes [`write_spoofed_sources`] to `path`.
pub fn spoofed_sources(path: &Path, n: u64) -> io::Result<Written> {
    write_spoofed_sources(create(path)?, n)
}

/// A SYN flood on [`SPOOFED_VICTIM`] tcp/80 from `n` distinct uniformly random IPv4 sources
/// (each sends one SYN), exactly 1 µs apart: a million SYNs a second, `n` / 10^6 seconds long.
/// Only the flood is captured. `n` may be anything up to the ~3.7 billion usable addresses.
pub fn write_spoofed_sources<W: Write>(out: W, n: u64) -> io::Result<Written> {
    let mut rng = stream("spoofed_sources");
    let config = SpoofedSynConfig {
        attack: 0,
        victim: Host::local(SPOOFED_VICTIM),
        port: 80,
        count: n,
        rate: 1_000_000,
        start: BASE_TIME_NS,
        ttls: [52, 241],
    };
    let mut recorder = Recorder::new(out, vec![ExpectedAttack::new("syn_flood", SPOOFED_VICTIM, n)])?;
    play(&mut [Box::new(SpoofedSynFlood::new(config, rng.fork()))], &mut recorder)?;
    recorder.finish()
}

// ------------------------------------------------------------------------------------------
// Keys chosen to collide

/// The IPv4 victim of [`colliding_keys`]; every bystander destination shares its low 16 bits.
pub const COLLIDING_V4_VICTIM: Ipv4Addr = Ipv4Addr::new(198, 51, 100, 77);
/// The IPv6 victim of [`colliding_keys`]; every bystander destination shares its low 64 bits.
pub const COLLIDING_V6_VICTIM: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x77);
/// Bots of the IPv4 flood (each a multiple of 2^20) and SYNs each sends.
const COLLIDING_BOTS: usize = 3_000;
const COLLIDING_SYNS_PER_BOT: usize = 10;
/// One-packet sources of the IPv6 flood (each a multiple of 2^64).
const COLLIDING_V6_SOURCES: usize = 40_000;
/// Bystander destinations of IPv6 noise (IPv4 noise takes every usable high half).
const COLLIDING_V6_BYSTANDERS: u64 = 100_000;
/// Bystanders of each family that are busy enough to be watched, and their rate.
const COLLIDING_WATCHED: usize = 16;
const COLLIDING_WATCHED_PPS: usize = 300;

/// What [`colliding_keys`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CollidingKeys {
    pub written: Written,
    /// The sources of the IPv4 flood, 10 SYNs each: exactly its offenders.
    pub bots: Vec<IpAddr>,
    /// Distinct bystander destinations.
    pub bystanders: u64,
    /// The busy bystanders (300 packets/s each, never a flood).
    pub watched: Vec<IpAddr>,
}

/// Writes [`write_colliding_keys`] to `path`.
pub fn colliding_keys(path: &Path) -> io::Result<CollidingKeys> {
    write_colliding_keys(create(path)?)
}

/// Two SYN floods and bystander traffic, all chosen so that a table or sketch indexed by the
/// low bits of the address (or by the address itself) would pile them into one bucket, over
/// 3.5 s:
///
/// * 30,000 SYNs at 10,000/s from 0.5 s on [`COLLIDING_V4_VICTIM`] tcp/80 from 3,000 bots whose
///   addresses are multiples of 2^20 (low 20 bits zero), 10 each, round-robin: the bots are
///   the offenders;
/// * 40,000 SYNs at 20,000/s from 1 s on [`COLLIDING_V6_VICTIM`] from 40,000 addresses
///   `2001:db8:ffff:X::` (low 64 bits zero), one each: spoofed-looking;
/// * one UDP packet to each of ~56,000 IPv4 destinations `X.Y.100.77` (the victim's low 16 bits)
///   and 100,000 IPv6 destinations `2001:db8:X:Y::77` (the victim's low 64 bits);
/// * 300 UDP packets/s throughout to 16 of each of those: enough to be watched (a quarter of
///   the default threshold), never a flood. A table cannot evict a watched destination, so
///   under an unkeyed hash these would fill the victims' bucket and leave no room for them.
pub fn write_colliding_keys<W: Write>(out: W) -> io::Result<CollidingKeys> {
    let mut rng = stream("colliding_keys");
    let bots: Vec<Host> = (16u32..)
        .filter(|k| k >> 4 != 127)
        .take(COLLIDING_BOTS)
        .map(|k| Host { addr: IpAddr::V4(Ipv4Addr::from(k << 20)), ttl: 50 })
        .collect();
    let v6_sources: Vec<Host> = (0..COLLIDING_V6_SOURCES as u128)
        // An odd multiplier permutes the 16-bit values: all distinct.
        .map(|i| (0x2001_0db8_ffff_u128 << 80) | (((i * 0x9e37) & 0xffff) << 64))
        .map(|addr| Host { addr: IpAddr::V6(Ipv6Addr::from(addr)), ttl: 57 })
        .collect();
    let low16 = u32::from(COLLIDING_V4_VICTIM) & 0xffff;
    let v4_bystanders: Vec<IpAddr> = (0u32..1 << 16)
        .map(|i| i.wrapping_mul(0x9e37) & 0xffff)
        .map(|high| Ipv4Addr::from((high << 16) | low16))
        .filter(|a| !matches!(a.octets()[0], 0 | 127 | 224..) && *a != COLLIDING_V4_VICTIM)
        .map(IpAddr::V4)
        .collect();
    let low64 = u128::from(COLLIDING_V6_VICTIM) & u128::from(u64::MAX);
    let v6_bystanders = (1..=COLLIDING_V6_BYSTANDERS)
        .map(|i| (0x2001_0db8_u128 << 96) | (u128::from(scramble32(i as u32)) << 64) | low64)
        .map(|addr| IpAddr::V6(Ipv6Addr::from(addr)));
    let bystanders: Vec<IpAddr> = interleave(v4_bystanders, v6_bystanders.collect());
    let watched: Vec<IpAddr> = bystanders[..2 * COLLIDING_WATCHED].to_vec();
    let expected = vec![
        ExpectedAttack::new("syn_flood", COLLIDING_V4_VICTIM, COLLIDING_BOTS as u64),
        ExpectedAttack::new("syn_flood", COLLIDING_V6_VICTIM, COLLIDING_V6_SOURCES as u64),
    ];
    let mut recorder = Recorder::new(out, expected)?;
    let v4_flood = RoundRobinSyn {
        attack: 0,
        victim: IpAddr::V4(COLLIDING_V4_VICTIM),
        sources: bots.clone(),
        count: COLLIDING_BOTS * COLLIDING_SYNS_PER_BOT,
        start: at_ms(500),
        gap_ns: NS_PER_SECOND / 10_000,
        sent: 0,
        rng: rng.fork(),
    };
    let v6_flood = RoundRobinSyn {
        attack: 1,
        victim: IpAddr::V6(COLLIDING_V6_VICTIM),
        count: v6_sources.len(),
        sources: v6_sources,
        start: at_ms(1_000),
        gap_ns: NS_PER_SECOND / 20_000,
        sent: 0,
        rng: rng.fork(),
    };
    let seconds = 7 * NS_PER_SECOND / 2;
    let spray_gap_ns = seconds / bystanders.len() as i64;
    let bystander_count = bystanders.len() as u64;
    let spray = Bystanders::new(bystanders, 1, spray_gap_ns, rng.fork());
    let rounds = 7 * COLLIDING_WATCHED_PPS / 2;
    let busy_gap_ns = NS_PER_SECOND / (watched.len() * COLLIDING_WATCHED_PPS) as i64;
    let busy = Bystanders::new(watched.clone(), rounds, busy_gap_ns, rng.fork());
    play(&mut [Box::new(v4_flood), Box::new(v6_flood), Box::new(spray), Box::new(busy)], &mut recorder)?;
    let bots = bots.iter().map(|bot| bot.addr).collect();
    Ok(CollidingKeys { written: recorder.finish()?, bots, bystanders: bystander_count, watched })
}

/// A bijection of the 32-bit numbers (the MurmurHash3 finaliser) that never maps a nonzero
/// input to zero.
fn scramble32(value: u32) -> u32 {
    let mut x = value;
    x ^= x >> 16;
    x = x.wrapping_mul(0x85eb_ca6b);
    x ^= x >> 13;
    x = x.wrapping_mul(0xc2b2_ae35);
    x ^ (x >> 16)
}

/// `a` and `b` alternately, then the rest of the longer one.
fn interleave(a: Vec<IpAddr>, b: Vec<IpAddr>) -> Vec<IpAddr> {
    let mut out = Vec::with_capacity(a.len() + b.len());
    let (mut a, mut b) = (a.into_iter(), b.into_iter());
    loop {
        match (a.next(), b.next()) {
            (None, None) => return out,
            (x, y) => out.extend(x.into_iter().chain(y)),
        }
    }
}

/// `count` SYNs to port 80 at a regular pace, the n-th from `sources[n % len]` (a flood tool
/// cycling through its address list), from random source ports.
struct RoundRobinSyn {
    attack: usize,
    victim: IpAddr,
    sources: Vec<Host>,
    count: usize,
    start: i64,
    gap_ns: i64,
    sent: usize,
    rng: Rng,
}

impl TrafficSource for RoundRobinSyn {
    fn next_time(&self) -> Option<i64> {
        (self.sent < self.count).then(|| self.start + self.sent as i64 * self.gap_ns)
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let now = self.next_time()?;
        let source = self.sources[self.sent % self.sources.len()];
        let port = self.rng.between(1024, 65_535) as u16;
        build_tcp(frame, source, self.victim, (port, 80), TCP_SYN, &mut self.rng);
        self.sent += 1;
        Some((now, Role::Attack(self.attack)))
    }
}

/// Small UDP datagrams to the targets in turn, `rounds` times over, at a regular pace from the
/// start of the capture, from random remote hosts.
struct Bystanders {
    targets: Vec<IpAddr>,
    count: usize,
    gap_ns: i64,
    sent: usize,
    rng: Rng,
}

impl Bystanders {
    fn new(targets: Vec<IpAddr>, rounds: usize, gap_ns: i64, rng: Rng) -> Bystanders {
        Bystanders { count: targets.len() * rounds, targets, gap_ns, sent: 0, rng }
    }
}

impl TrafficSource for Bystanders {
    fn next_time(&self) -> Option<i64> {
        (self.sent < self.count).then(|| at_ms(0) + self.sent as i64 * self.gap_ns)
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let now = self.next_time()?;
        let target = self.targets[self.sent % self.targets.len()];
        let prefix = if target.is_ipv4() { BENCHMARK_V4 } else { REMOTE_V6 };
        let source = Host { addr: prefix.random_addr(&mut self.rng), ttl: 60 };
        let ports = (plain_port(&mut self.rng), 33_434);
        build_udp(frame, source, target, ports, b"probe", self.rng.next_u16());
        self.sent += 1;
        Some((now, Role::Background))
    }
}

// ------------------------------------------------------------------------------------------
// Odd frames

/// Victim of the UDP flood in [`odd_frames`].
pub const ODD_FRAMES_VICTIM: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 60);
/// Where the odd frames that carry IP go (a few packets a second: never a flood).
pub const ODD_FRAMES_BYSTANDER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 99);
/// The longest frame a pcap record of a 16-bit-length IP packet needs: 64 KiB - 1.
pub const JUMBO_FRAME_LEN: usize = 65_535;
/// Deepest VLAN and MPLS stacks written.
pub const DEEPEST_STACK: usize = 40;
/// Stacks at most this deep are what real networks use; deeper ones may be refused.
pub const REALISTIC_STACK: usize = 8;
/// Frames of each odd sort: 64 KiB frames per IPv4 total-length variant, stacks per depth.
const JUMBO_COPIES: usize = 10;
const STACK_COPIES: usize = 2;

/// What [`odd_frames`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OddFrames {
    pub written: Written,
    /// All-zero and all-0xFF frames: never IP (their EtherType is 0x0000 or 0xFFFF, or they
    /// are too short to have one).
    pub not_ip: u64,
    /// Frames that carry a well-formed IP packet a decoder must find: the flood, the 64 KiB
    /// frames and the stacks up to [`REALISTIC_STACK`] deep.
    pub ip_at_least: u64,
    /// 64 KiB frames written.
    pub jumbo: u64,
}

/// Writes [`write_odd_frames`] to `path`.
pub fn odd_frames(path: &Path) -> io::Result<OddFrames> {
    write_odd_frames(create(path)?)
}

/// A UDP flood at 5,000 packets/s for 3 s on [`ODD_FRAMES_VICTIM`] from 40 bots, and one odd
/// frame every millisecond from the start (about 3.2 s of them), in a scrambled order:
///
/// * all-zero and all-0xFF frames of every length from 0 to 1,518 bytes;
/// * 65,535-byte frames carrying one IPv4 UDP datagram to [`ODD_FRAMES_BYSTANDER`], with the
///   IPv4 total length right (65,521), 0 (as segmentation offload leaves it) or 65,535
///   (14 bytes more than the frame holds), 10 of each;
/// * VLAN stacks (an 802.1ad tag, then 802.1Q tags) and MPLS label stacks 1 to 40 deep, each
///   around a small IPv4 UDP datagram to the bystander, twice per depth.
pub fn write_odd_frames<W: Write>(out: W) -> io::Result<OddFrames> {
    let mut rng = stream("odd_frames");
    let bots = distinct_hosts(&mut rng, BENCHMARK_V4, 40);
    let config = FloodConfig {
        attack: 0,
        victim: Host::local(ODD_FRAMES_VICTIM),
        sources: bots,
        rate: 5_000,
        window: Window { start: at_ms(200), end: at_ms(3_200) },
    };
    let flood = UdpFlood::new(config, rng.fork());
    let odd = OddSource::new(rng.fork());
    let (not_ip, jumbo, realistic) = (odd.not_ip(), odd.jumbo(), odd.realistic_stacks());
    let mut recorder = Recorder::new(out, vec![ExpectedAttack::new("udp_flood", ODD_FRAMES_VICTIM, 40)])?;
    play(&mut [Box::new(flood), Box::new(odd)], &mut recorder)?;
    let written = recorder.finish()?;
    let ip_at_least = written.attacks[0].packets + jumbo + realistic;
    Ok(OddFrames { written, not_ip, ip_at_least, jumbo })
}

/// The odd frames, one per millisecond, item `(i * STRIDE) % total` at step `i`.
struct OddSource {
    next: usize,
    rng: Rng,
    inner: Vec<u8>,
}

/// Counts of the odd sorts, in the order [`OddSource::build`] numbers them.
const FILL_LENGTHS: usize = 1_519;
const FILLED: usize = 2 * FILL_LENGTHS;
const JUMBO: usize = 3 * JUMBO_COPIES;
const STACKS: usize = 2 * DEEPEST_STACK * STACK_COPIES;
const ODD_TOTAL: usize = FILLED + JUMBO + STACKS;
/// A stride coprime with [`ODD_TOTAL`] (3,228 = 2^2 · 3 · 269): a permutation of the items.
const ODD_STRIDE: usize = 7_919;

impl OddSource {
    fn new(rng: Rng) -> OddSource {
        OddSource { next: 0, rng, inner: Vec::with_capacity(1 << 17) }
    }

    fn not_ip(&self) -> u64 {
        FILLED as u64
    }

    fn jumbo(&self) -> u64 {
        JUMBO as u64
    }

    fn realistic_stacks(&self) -> u64 {
        (2 * REALISTIC_STACK * STACK_COPIES) as u64
    }

    /// Builds odd item `item` into `frame`.
    fn build(&mut self, item: usize, frame: &mut Vec<u8>) {
        frame.clear();
        if item < FILLED {
            let byte = if item < FILL_LENGTHS { 0x00 } else { 0xff };
            frame.resize(item % FILL_LENGTHS, byte);
        } else if item < FILLED + JUMBO {
            self.jumbo_frame((item - FILLED) % 3, frame);
        } else {
            let stack = item - FILLED - JUMBO;
            let depth = stack / 2 % DEEPEST_STACK + 1;
            self.stacked(depth, stack % 2 == 1, frame);
        }
    }

    fn bystander_udp(&mut self, frame: &mut Vec<u8>, payload: &[u8]) {
        let source = Host { addr: BENCHMARK_V4.random_addr(&mut self.rng), ttl: 61 };
        let ports = (plain_port(&mut self.rng), 4_789);
        build_udp(frame, source, IpAddr::V4(ODD_FRAMES_BYSTANDER), ports, payload, self.rng.next_u16());
    }

    /// A 65,535-byte frame; `variant` 0 keeps the right IPv4 total length, 1 sets it to 0,
    /// 2 to 65,535.
    fn jumbo_frame(&mut self, variant: usize, frame: &mut Vec<u8>) {
        const IP: usize = 14;
        let payload = vec![0xa5; JUMBO_FRAME_LEN - IP - 20 - 8];
        self.bystander_udp(frame, &payload);
        debug_assert_eq!(frame.len(), JUMBO_FRAME_LEN);
        let total: u16 = match variant {
            0 => return,
            1 => 0,
            _ => u16::MAX,
        };
        frame[IP + 2..IP + 4].copy_from_slice(&total.to_be_bytes());
        frame[IP + 10..IP + 12].copy_from_slice(&[0, 0]);
        let checksum = internet_checksum(&frame[IP..IP + 20], 0);
        frame[IP + 10..IP + 12].copy_from_slice(&checksum.to_be_bytes());
    }

    /// A small IPv4 datagram to the bystander under `depth` VLAN tags or MPLS labels.
    fn stacked(&mut self, depth: usize, mpls: bool, frame: &mut Vec<u8>) {
        let mut inner = std::mem::take(&mut self.inner);
        self.bystander_udp(&mut inner, b"stacked");
        frame.clear();
        frame.extend_from_slice(&inner[..12]);
        if mpls {
            frame.extend_from_slice(&0x8847u16.to_be_bytes());
            for level in 0..depth {
                let bottom = u32::from(level + 1 == depth);
                let entry = ((16 + level as u32) << 12) | (bottom << 8) | 64;
                frame.extend_from_slice(&entry.to_be_bytes());
            }
            frame.extend_from_slice(&inner[14..]);
        } else {
            for level in 0..depth {
                let tpid: u16 = if level == 0 { 0x88a8 } else { 0x8100 };
                frame.extend_from_slice(&tpid.to_be_bytes());
                frame.extend_from_slice(&(level as u16 + 1).to_be_bytes());
            }
            frame.extend_from_slice(&inner[12..]);
        }
        self.inner = inner;
    }
}

impl TrafficSource for OddSource {
    fn next_time(&self) -> Option<i64> {
        (self.next < ODD_TOTAL).then(|| at_ms(self.next as i64))
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let now = self.next_time()?;
        self.build(self.next * ODD_STRIDE % ODD_TOTAL, frame);
        self.next += 1;
        Some((now, Role::Background))
    }
}

// ------------------------------------------------------------------------------------------
// Fragments

/// Victims of the fragment floods in [`fragments`].
pub const FRAGMENTS_V4_VICTIM: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 9);
pub const FRAGMENTS_V6_VICTIM: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 0x9);
/// A client receiving a few ordinary fragmented DNS answers.
pub const FRAGMENTS_CLIENT: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 20);

/// Writes [`write_fragments`] to `path`.
pub fn fragments(path: &Path) -> io::Result<Written> {
    write_fragments(create(path)?)
}

/// Two fragment floods, 3 s each, of datagrams of protocol 47 (GRE; a few of TCP) that no
/// reassembler should accept, from 200 bots each:
///
/// * on [`FRAGMENTS_V4_VICTIM`], 5,000 shapes a second from 0.2 s, IPv4;
/// * on [`FRAGMENTS_V6_VICTIM`], 3,000 shapes a second from 0.7 s, IPv6 Fragment headers (plus
///   atomic fragments, offset 0 without more fragments, which are whole packets and not
///   counted as attack packets);
///
/// where a shape is one of: a tiny fragment (1 to 8 bytes) with more to come; three
/// overlapping fragments; a fragment at offset 65,528 (the last possible); a 1,480-byte
/// fragment at offset 65,520 that ends past 65,535 with an 8-byte one before it; the same
/// fragment twice; a teardrop pair (the second inside the first); a tiny first fragment of
/// TCP holding only ports and sequence number. Around them, ordinary fragmented DNS answers to
/// [`FRAGMENTS_CLIENT`], 20 a second.
pub fn write_fragments<W: Write>(out: W) -> io::Result<Written> {
    let mut rng = stream("fragments");
    let v4_bots = distinct_hosts(&mut rng, BENCHMARK_V4, 200);
    let v6_bots = distinct_hosts(&mut rng, REMOTE_V6, 200);
    let resolvers = distinct_hosts(&mut rng, SHARED_V4, 20);
    let v4 = FragmentFlood::new(
        0,
        Host::local(FRAGMENTS_V4_VICTIM),
        v4_bots,
        5_000,
        Window { start: at_ms(200), end: at_ms(3_200) },
        rng.fork(),
    );
    let v6 = FragmentFlood::new(
        1,
        Host::local(FRAGMENTS_V6_VICTIM),
        v6_bots,
        3_000,
        Window { start: at_ms(700), end: at_ms(3_700) },
        rng.fork(),
    );
    let dns = FloodConfig {
        attack: NOT_AN_ATTACK,
        victim: Host::local(FRAGMENTS_CLIENT),
        sources: resolvers,
        rate: 20,
        window: Window { start: at_ms(0), end: at_ms(4_000) },
    };
    let dns = super::floods::DnsAmplification::new(dns, 1_000, rng.fork());
    let expected = vec![
        ExpectedAttack::new("fragment_flood", FRAGMENTS_V4_VICTIM, 200),
        ExpectedAttack::new("fragment_flood", FRAGMENTS_V6_VICTIM, 200),
    ];
    let mut recorder = Recorder::new(out, expected)?;
    play(&mut [Box::new(v4), Box::new(v6), Box::new(dns)], &mut recorder)?;
    recorder.finish()
}

/// One fragment to send.
#[derive(Clone, Copy, Debug)]
struct Piece {
    bot: Host,
    ident: u32,
    protocol: u8,
    offset: u16,
    len: u16,
    more: bool,
}

/// A fragment flood of pathological shapes (see [`write_fragments`]).
struct FragmentFlood {
    attack: usize,
    victim: Host,
    bots: Vec<Host>,
    rate: u32,
    window: Window,
    rng: Rng,
    queue: EventQueue<Option<Piece>>,
    data: Vec<u8>,
}

/// Gap between the pieces of one shape.
const PIECE_GAP_NS: i64 = 2_000;

impl FragmentFlood {
    fn new(attack: usize, victim: Host, bots: Vec<Host>, rate: u32, window: Window, rng: Rng) -> FragmentFlood {
        let mut queue = EventQueue::default();
        queue.push(window.start, None);
        FragmentFlood { attack, victim, bots, rate, window, rng, queue, data: vec![PROTO_GRE; 1_480] }
    }

    /// Queues the pieces of a random shape from `now` on.
    fn shape(&mut self, now: i64) {
        let bot = self.bots[self.rng.index(self.bots.len())];
        let ident = self.rng.next_u32();
        let piece = |offset: u16, len: u16, more: bool| Piece { bot, ident, protocol: PROTO_GRE, offset, len, more };
        let v6 = self.victim.addr.is_ipv6();
        let shapes = if v6 { 8 } else { 7 };
        let pieces: Vec<Piece> = match self.rng.below(shapes) {
            0 => {
                let offset = 8 * self.rng.below(64) as u16;
                vec![piece(offset, self.rng.between(1, 8) as u16, true)]
            }
            1 => vec![piece(0, 64, true), piece(24, 64, true), piece(40, 16, false)],
            2 => vec![piece(65_528, 8 * self.rng.between(1, 16) as u16, false)],
            3 => vec![piece(65_504, 8, true), piece(65_520, 1_480, false)],
            4 => {
                let first = piece(8 * self.rng.below(100) as u16, 256, true);
                vec![first, first]
            }
            5 => vec![piece(0, 48, true), piece(16, 8, false)],
            6 => vec![Piece { protocol: PROTO_TCP, ..piece(0, 8, true) }],
            // IPv6 only: an atomic fragment (RFC 6946), a whole packet behind a Fragment header.
            _ => vec![piece(0, 64, false)],
        };
        for (index, p) in pieces.into_iter().enumerate() {
            self.queue.push(now + index as i64 * PIECE_GAP_NS, Some(p));
        }
    }

    fn build(&mut self, p: &Piece, frame: &mut Vec<u8>) {
        let (src, dst) = (p.bot.addr, self.victim.addr);
        let position = FragmentPosition { offset: p.offset, more: p.more };
        let ip = match (src, dst) {
            (IpAddr::V4(src), IpAddr::V4(dst)) => Ip::V4(Ipv4 {
                src,
                dst,
                ttl: p.bot.ttl,
                ident: p.ident as u16,
                dont_fragment: false,
                fragment: position,
            }),
            (IpAddr::V6(src), IpAddr::V6(dst)) => Ip::V6(Ipv6 {
                src,
                dst,
                hop_limit: p.bot.ttl,
                flow_label: 0,
                extension: Ipv6Extension::Fragment { ident: p.ident, position },
            }),
            _ => unreachable!("the bots have the victim's family"),
        };
        if p.protocol == PROTO_TCP {
            // Ports and sequence number: the flags are in the next fragment.
            let mut header = [0u8; 8];
            header[..2].copy_from_slice(&self.rng.next_u16().to_be_bytes());
            header[2..4].copy_from_slice(&80u16.to_be_bytes());
            header[4..].copy_from_slice(&self.rng.next_u32().to_be_bytes());
            self.data[..8].copy_from_slice(&header);
        } else {
            self.data[..8].fill(PROTO_GRE);
        }
        let transport = Transport::Raw { protocol: p.protocol };
        build_ip_frame(frame, &ethernet_between(src, dst), &ip, &transport, &self.data[..usize::from(p.len)]);
    }
}

impl TrafficSource for FragmentFlood {
    fn next_time(&self) -> Option<i64> {
        self.queue.next_time()
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let (now, event) = self.queue.pop()?;
        let piece = match event {
            Some(piece) => piece,
            None => {
                let gap = self.rng.jittered(NS_PER_SECOND / i64::from(self.rate));
                if let Some(next) = self.window.admit(now + gap) {
                    self.queue.push(next, None);
                }
                self.shape(now);
                self.queue.pop().and_then(|(_, p)| p).expect("a shape has a first piece now")
            }
        };
        self.build(&piece, frame);
        let atomic = piece.offset == 0 && !piece.more;
        let role = if atomic { Role::Background } else { Role::Attack(self.attack) };
        Some((now, role))
    }
}

// ------------------------------------------------------------------------------------------
// Time travel

/// Victims of the UDP floods of [`time_travel`]: in 2026 (classic pcap), 2200 and 1960
/// (pcapng).
pub const TIME_TRAVEL_VICTIMS: [Ipv4Addr; 3] =
    [Ipv4Addr::new(198, 51, 100, 31), Ipv4Addr::new(198, 51, 100, 32), Ipv4Addr::new(198, 51, 100, 33)];
/// Where the packets with wandering timestamps go, one at a time.
pub const TIME_TRAVEL_BYSTANDER: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 98);
/// 2200-01-01T00:00:00Z and 1900-01-01T00:00:00Z, in ns since the epoch.
pub const YEAR_2200_NS: i64 = 7_258_118_400 * NS_PER_SECOND;
pub const YEAR_1900_NS: i64 = -2_208_988_800 * NS_PER_SECOND;
/// 1960-06-01T00:00:00Z (3,501 days before the epoch).
pub const YEAR_1960_NS: i64 = -3_501 * 86_400 * NS_PER_SECOND;
/// 2260-01-01T00:00:00Z, near the end of what i64 nanoseconds hold (2262).
const YEAR_2260_NS: i64 = 9_151_488_000 * NS_PER_SECOND;
/// A step back longer than this starts a new timeline in the detector (documented: 2 s).
const RESTART_AFTER_STEP_BACK_NS: i64 = 2 * NS_PER_SECOND;
/// The `if_tsoffset` of the pcapng interface that carries times before 1970, in seconds: its
/// timestamps count from 1843.
const PAST_OFFSET_S: i64 = -4_000_000_000;

/// What [`time_travel`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeTravel {
    /// The capture files, to replay in this order as one stream.
    pub files: Vec<PathBuf>,
    pub written: Written,
    /// Times the stream steps back by more than 2 s from the latest time before it (the
    /// detector restarts its timeline at each).
    pub step_backs: u64,
}

/// A timestamp as a pcap record stores it: seconds and a fraction field.
#[derive(Clone, Copy, Debug)]
enum Stamp {
    /// Canonical: the fraction below 10^9.
    Ns(i64),
    /// Seconds and nanosecond field as given (the field may be 10^9 or more).
    Raw(u32, u32),
}

impl Stamp {
    /// The time a reader computes.
    fn ns(self) -> i64 {
        match self {
            Stamp::Ns(ns) => ns,
            Stamp::Raw(secs, frac) => i64::from(secs) * NS_PER_SECOND + i64::from(frac),
        }
    }

    /// Seconds and nanosecond field; `Ns` must fit classic pcap (1970 to 2106).
    fn fields(self) -> (u32, u32) {
        match self {
            Stamp::Ns(ns) => {
                let secs = u32::try_from(ns.div_euclid(NS_PER_SECOND)).expect("a classic pcap time");
                (secs, ns.rem_euclid(NS_PER_SECOND) as u32)
            }
            Stamp::Raw(secs, frac) => (secs, frac),
        }
    }

    /// The same instant with the nanosecond field `extra` seconds too large (extra ≤ 3).
    fn overflowing(ns: i64, extra: u32) -> Stamp {
        let (secs, frac) = Stamp::Ns(ns).fields();
        Stamp::Raw(secs - extra, frac + extra * 1_000_000_000)
    }
}

/// Counts the stream's steps back of more than 2 s, as the detector judges them (per 100 ms
/// tick, against the latest tick so far).
#[derive(Debug, Default)]
struct StepBacks {
    latest_tick: Option<i64>,
    count: u64,
}

impl StepBacks {
    fn see(&mut self, ts_ns: i64) {
        const TICK_NS: i64 = 100 * NS_PER_MS;
        let tick = ts_ns.div_euclid(TICK_NS);
        self.latest_tick = Some(match self.latest_tick {
            Some(latest) if tick < latest - RESTART_AFTER_STEP_BACK_NS / TICK_NS => {
                self.count += 1;
                tick
            }
            Some(latest) => latest.max(tick),
            None => tick,
        });
    }
}

/// The two files of [`time_travel`] being written, and the tally over both.
struct TimeWriter {
    written: Written,
    step_backs: StepBacks,
    rng: Rng,
    frame: Vec<u8>,
}

impl TimeWriter {
    fn count(&mut self, ts_ns: i64, role: Role, len: usize) {
        self.written.count(ts_ns, role, len);
        self.step_backs.see(ts_ns);
    }

    /// A small UDP datagram from a random remote host to the bystander.
    fn wanderer(&mut self) {
        let source = Host { addr: BENCHMARK_V4.random_addr(&mut self.rng), ttl: 55 };
        let ports = (plain_port(&mut self.rng), 9);
        let ip_id = self.rng.next_u16();
        build_udp(&mut self.frame, source, IpAddr::V4(TIME_TRAVEL_BYSTANDER), ports, b"when am I", ip_id);
    }

    /// A 2 s UDP flood at 5,000 packets/s from 30 bots on victim `attack` from `start`, each
    /// packet handed to `sink` with its time as stored and its index (from 1). From 1.5 s into
    /// the flood, every 250th packet is stamped 1.5 s late: reordering the detector absorbs
    /// without a restart.
    fn flood(
        &mut self,
        attack: usize,
        start: i64,
        mut sink: impl FnMut(&mut Self, i64, u64, &[u8]) -> io::Result<()>,
    ) -> io::Result<()> {
        let bots = distinct_hosts(&mut self.rng, BENCHMARK_V4, 30);
        let victim = Host::local(TIME_TRAVEL_VICTIMS[attack]);
        let window = Window { start, end: start + 2 * NS_PER_SECOND };
        let mut flood =
            UdpFlood::new(FloodConfig { attack, victim, sources: bots, rate: 5_000, window }, self.rng.fork());
        let mut frame = Vec::with_capacity(256);
        let mut index = 0u64;
        while let Some((ts, _)) = flood.next_frame(&mut frame) {
            index += 1;
            let late = index % 250 == 0 && ts - start >= 3 * NS_PER_SECOND / 2;
            let stored = if late { ts - 3 * NS_PER_SECOND / 2 } else { ts };
            sink(self, stored, index, &frame)?;
        }
        Ok(())
    }
}

/// Writes the two files of the time-travel case into `dir` (which must exist):
///
/// `time_travel.pcap` (classic pcap, nanosecond magic): single packets to
/// [`TIME_TRAVEL_BYSTANDER`] stamped 2026, 3 s and 1 s earlier, 5 years earlier, 30 years
/// later, the last second classic pcap holds (2106), the epoch, nanosecond fields of
/// 2.5·10^9 and 2^32 - 1; then a 2 s UDP flood on the first victim at 2026-01-15T12:10:00Z,
/// one packet in 97 written with its nanosecond field 2·10^9 too large (seconds 2 lower: the
/// same instant) and a few stamped 1.5 s late; then jumps of +30 years, -2 years, to the
/// epoch, to 2106 and back to 2026.
///
/// `time_travel.pcapng` (one section, two nanosecond interfaces, the second with an
/// `if_tsoffset` of -4·10^9 s so that it can stamp times before 1970): single packets in
/// 2200, 1900, half a second before the epoch, at the epoch, in 2260; a 2 s UDP flood on the
/// second victim at 2200-01-01; single packets a year before the epoch and in 2150; a 2 s UDP
/// flood on the third victim at 1960-06-01; then 2026, 1938 and 2200 again.
pub fn time_travel(dir: &Path) -> io::Result<TimeTravel> {
    let mut rng = stream("time_travel");
    let attacks = TIME_TRAVEL_VICTIMS.iter().map(|v| ExpectedAttack::new("udp_flood", *v, 30)).collect();
    let mut w = TimeWriter {
        written: Written::new(attacks),
        step_backs: StepBacks::default(),
        rng: rng.fork(),
        frame: Vec::new(),
    };
    let pcap_path = dir.join("time_travel.pcap");
    let pcapng_path = dir.join("time_travel.pcapng");

    // Classic pcap, records written by hand (PcapWriter only writes canonical fields).
    let mut out = create(&pcap_path)?;
    PcapWriter::new(&mut out, LINK_ETHERNET, SNAPLEN, TsResolution::Nano)?;
    let t0 = BASE_TIME_NS;
    let flood_a = t0 + 10 * 60 * NS_PER_SECOND;
    let base_s = (t0 / NS_PER_SECOND) as u32;
    let before = [
        Stamp::Ns(t0),
        Stamp::Ns(t0 + NS_PER_MS),
        Stamp::Ns(t0 - 3 * NS_PER_SECOND),
        Stamp::Ns(t0 - NS_PER_SECOND),
        Stamp::Ns(t0 - 5 * YEAR_NS),
        Stamp::Ns(t0 + 30 * YEAR_NS),
        Stamp::Ns(t0 - YEAR_NS),
        Stamp::Raw(u32::MAX, 999_999_999),
        Stamp::Raw(0, 0),
        Stamp::Raw(0, u32::MAX),
        Stamp::Raw(base_s, 2_500_000_000),
        Stamp::Ns(t0 + 40 * YEAR_NS),
        Stamp::Ns(flood_a - 3 * NS_PER_SECOND),
    ];
    for stamp in before {
        w.wanderer();
        pcap_record(&mut out, stamp, &w.frame)?;
        w.count(stamp.ns(), Role::Background, w.frame.len());
    }
    w.flood(0, flood_a, |w, ts, index, frame| {
        let stamp = if index % 97 == 0 { Stamp::overflowing(ts, 2) } else { Stamp::Ns(ts) };
        pcap_record(&mut out, stamp, frame)?;
        w.count(stamp.ns(), Role::Attack(0), frame.len());
        Ok(())
    })?;
    let end_a = flood_a + 2 * NS_PER_SECOND;
    let after = [
        Stamp::Ns(end_a + 30 * YEAR_NS),
        Stamp::Ns(end_a - 2 * YEAR_NS),
        Stamp::Ns(end_a - 2 * YEAR_NS + 500 * NS_PER_MS),
        Stamp::Ns(NS_PER_SECOND),
        Stamp::Raw(u32::MAX, u32::MAX),
        Stamp::Ns(end_a),
    ];
    for stamp in after {
        w.wanderer();
        pcap_record(&mut out, stamp, &w.frame)?;
        w.count(stamp.ns(), Role::Background, w.frame.len());
    }
    out.flush()?;
    drop(out);

    // pcapng: interface 0 counts from the epoch, interface 1 from 1843.
    let mut out = create(&pcapng_path)?;
    pcapng_section(&mut out)?;
    pcapng_interface(&mut out, None)?;
    pcapng_interface(&mut out, Some(PAST_OFFSET_S))?;
    let stamps_c = [
        YEAR_2200_NS - 3_600 * NS_PER_SECOND,
        YEAR_1900_NS,
        -500 * NS_PER_MS,
        0,
        YEAR_2260_NS,
        YEAR_2200_NS - 5 * NS_PER_SECOND,
    ];
    let wanderers = |w: &mut TimeWriter, out: &mut BufWriter<File>, stamps: &[i64]| -> io::Result<()> {
        for &ts in stamps {
            w.wanderer();
            pcapng_packet(out, ts, &w.frame)?;
            w.count(ts, Role::Background, w.frame.len());
        }
        Ok(())
    };
    wanderers(&mut w, &mut out, &stamps_c)?;
    w.flood(1, YEAR_2200_NS, |w, ts, _, frame| {
        pcapng_packet(&mut out, ts, frame)?;
        w.count(ts, Role::Attack(1), frame.len());
        Ok(())
    })?;
    wanderers(&mut w, &mut out, &[-YEAR_NS, YEAR_2200_NS - 50 * YEAR_NS, YEAR_1960_NS - 10 * NS_PER_SECOND])?;
    w.flood(2, YEAR_1960_NS, |w, ts, _, frame| {
        pcapng_packet(&mut out, ts, frame)?;
        w.count(ts, Role::Attack(2), frame.len());
        Ok(())
    })?;
    wanderers(&mut w, &mut out, &[t0, YEAR_1900_NS + 38 * YEAR_NS, YEAR_2200_NS])?;
    out.flush()?;

    Ok(TimeTravel { files: vec![pcap_path, pcapng_path], written: w.written, step_backs: w.step_backs.count })
}

/// One classic pcap record with the fields of `stamp`.
fn pcap_record(out: &mut impl Write, stamp: Stamp, frame: &[u8]) -> io::Result<()> {
    let (secs, frac) = stamp.fields();
    let len = frame.len() as u32;
    let mut header = [0u8; 16];
    header[0..4].copy_from_slice(&secs.to_le_bytes());
    header[4..8].copy_from_slice(&frac.to_le_bytes());
    header[8..12].copy_from_slice(&len.to_le_bytes());
    header[12..16].copy_from_slice(&len.to_le_bytes());
    out.write_all(&header)?;
    out.write_all(frame)
}

/// A little-endian pcapng block of `kind` around `body` (padded to 4 bytes).
fn pcapng_block(out: &mut impl Write, kind: u32, body: &[u8]) -> io::Result<()> {
    let padding = (4 - body.len() % 4) % 4;
    let total = (12 + body.len() + padding) as u32;
    out.write_all(&kind.to_le_bytes())?;
    out.write_all(&total.to_le_bytes())?;
    out.write_all(body)?;
    out.write_all(&[0u8; 3][..padding])?;
    out.write_all(&total.to_le_bytes())
}

/// Section Header Block, version 1.0, length unknown.
fn pcapng_section(out: &mut impl Write) -> io::Result<()> {
    let mut body = Vec::with_capacity(16);
    body.extend_from_slice(&0x1a2b_3c4du32.to_le_bytes());
    body.extend_from_slice(&1u16.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&(-1i64).to_le_bytes());
    pcapng_block(out, 0x0a0d_0d0a, &body)
}

/// An Ethernet interface with nanosecond timestamps (`if_tsresol` 9) and, if given, an
/// `if_tsoffset` in seconds.
fn pcapng_interface(out: &mut impl Write, offset_s: Option<i64>) -> io::Result<()> {
    let mut body = Vec::with_capacity(40);
    body.extend_from_slice(&LINK_ETHERNET.to_le_bytes());
    body.extend_from_slice(&0u16.to_le_bytes());
    body.extend_from_slice(&SNAPLEN.to_le_bytes());
    body.extend_from_slice(&[9, 0, 1, 0, 9, 0, 0, 0]);
    if let Some(offset) = offset_s {
        body.extend_from_slice(&[14, 0, 8, 0]);
        body.extend_from_slice(&offset.to_le_bytes());
    }
    body.extend_from_slice(&[0, 0, 0, 0]);
    pcapng_block(out, 1, &body)
}

/// An Enhanced Packet Block at `ts_ns`: on interface 0 from 1970 on, else on interface 1.
fn pcapng_packet(out: &mut impl Write, ts_ns: i64, frame: &[u8]) -> io::Result<()> {
    let (interface, units) = if ts_ns >= 0 { (0u32, ts_ns) } else { (1, ts_ns - PAST_OFFSET_S * NS_PER_SECOND) };
    let units = u64::try_from(units).expect("after 1843");
    let len = frame.len() as u32;
    let mut body = Vec::with_capacity(20 + frame.len());
    body.extend_from_slice(&interface.to_le_bytes());
    body.extend_from_slice(&((units >> 32) as u32).to_le_bytes());
    body.extend_from_slice(&(units as u32).to_le_bytes());
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(&len.to_le_bytes());
    body.extend_from_slice(frame);
    pcapng_block(out, 6, &body)
}

// ------------------------------------------------------------------------------------------
// Same timestamp

/// Victim of the SYN flood in [`same_timestamp`].
pub const SAME_TIMESTAMP_VICTIM: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 50);
/// Packets of [`same_timestamp`]: half of them the flood.
pub const SAME_TIMESTAMP_PACKETS: u64 = 2_000_000;
const SAME_TIMESTAMP_BOTS: usize = 500;
/// Destinations of the benign half: 1,000,000 packets over 8,000 hosts, about 125 each
/// (never near a quarter of a 1,000-packet window).
const SAME_TIMESTAMP_HOSTS: usize = 8_000;

/// What [`same_timestamp`] wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SameTimestamp {
    pub written: Written,
    /// The flood's sources, about 2,000 SYNs each: exactly its offenders.
    pub bots: Vec<IpAddr>,
    /// The one timestamp.
    pub ts_ns: i64,
}

/// Writes [`write_same_timestamp`] to `path`.
pub fn same_timestamp(path: &Path) -> io::Result<SameTimestamp> {
    write_same_timestamp(create(path)?)
}

/// 2,000,000 packets all stamped 2026-01-15T12:00:00Z: 1,000,000 SYNs on
/// [`SAME_TIMESTAMP_VICTIM`] tcp/443 from 500 bots, randomly interleaved with 1,000,000 benign
/// packets to 8,000 other hosts (UDP answers from port 53, established TCP segments, echo
/// requests).
pub fn write_same_timestamp<W: Write>(out: W) -> io::Result<SameTimestamp> {
    let mut rng = stream("same_timestamp");
    let bots = distinct_hosts(&mut rng, BENCHMARK_V4, SAME_TIMESTAMP_BOTS);
    let hosts = distinct_hosts(&mut rng, SHARED_V4, SAME_TIMESTAMP_HOSTS);
    let servers = distinct_hosts(&mut rng, BENCHMARK_V4, 100);
    let ts_ns = BASE_TIME_NS;
    let expected = ExpectedAttack::new("syn_flood", SAME_TIMESTAMP_VICTIM, SAME_TIMESTAMP_BOTS as u64);
    let mut recorder = Recorder::new(out, vec![expected])?;
    let mut frame = Vec::with_capacity(2048);
    let (mut syns_left, mut benign_left) = (SAME_TIMESTAMP_PACKETS / 2, SAME_TIMESTAMP_PACKETS / 2);
    let victim = IpAddr::V4(SAME_TIMESTAMP_VICTIM);
    while syns_left + benign_left > 0 {
        // Every order of the two halves equally likely.
        if rng.below(syns_left + benign_left) < syns_left {
            syns_left -= 1;
            let bot = bots[rng.index(bots.len())];
            let port = rng.between(1024, 65_535) as u16;
            build_tcp(&mut frame, bot, victim, (port, 443), TCP_SYN, &mut rng);
            recorder.write(ts_ns, Role::Attack(0), &frame)?;
        } else {
            benign_left -= 1;
            let host = hosts[rng.index(hosts.len())];
            let server = servers[rng.index(servers.len())];
            let port = rng.between(1024, 65_535) as u16;
            match rng.below(10) {
                0..=5 => build_udp(&mut frame, server, host.addr, (53, port), &[0x42; 120], rng.next_u16()),
                6..=8 => build_tcp(&mut frame, server, host.addr, (443, port), TCP_ACK | TCP_PSH, &mut rng),
                _ => {
                    let ip = Ip::between(server.addr, host.addr, server.ttl, rng.next_u16()).expect("IPv4");
                    let echo = Transport::Echo(Echo { reply: false, ident: rng.next_u16(), seq: 1 });
                    let ethernet: Ethernet = ethernet_between(server.addr, host.addr);
                    build_ip_frame(&mut frame, &ethernet, &ip, &echo, &[0; 56]);
                }
            }
            recorder.write(ts_ns, Role::Background, &frame)?;
        }
    }
    let bots = bots.iter().map(|bot| bot.addr).collect();
    Ok(SameTimestamp { written: recorder.finish()?, bots, ts_ns })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colliding_bystanders_share_the_victims_low_bits() {
        let low16 = u32::from(COLLIDING_V4_VICTIM) & 0xffff;
        let values: std::collections::BTreeSet<u32> =
            (0u32..1 << 16).map(|i| i.wrapping_mul(0x9e37) & 0xffff).collect();
        assert_eq!(values.len(), 1 << 16, "the multiplier permutes 16 bits");
        assert_ne!(low16, 0);
        assert_ne!(scramble32(1), 0);
    }

    #[test]
    fn odd_items_are_a_permutation() {
        let seen: std::collections::BTreeSet<usize> = (0..ODD_TOTAL).map(|i| i * ODD_STRIDE % ODD_TOTAL).collect();
        assert_eq!(seen.len(), ODD_TOTAL);
    }

    #[test]
    fn stamps_compute_like_a_reader() {
        let ns = BASE_TIME_NS + 123_456_789;
        assert_eq!(Stamp::overflowing(ns, 2).ns(), ns);
        let Stamp::Raw(_, frac) = Stamp::overflowing(ns, 3) else { panic!("raw") };
        assert!(frac >= 3_000_000_000);
        assert_eq!(Stamp::Raw(0, u32::MAX).ns(), 4_294_967_295);
    }

    #[test]
    fn step_backs_follow_the_two_second_rule() {
        let mut s = StepBacks::default();
        for ts in [10 * NS_PER_SECOND, 8_500 * NS_PER_MS, 11 * NS_PER_SECOND, 5 * NS_PER_SECOND, 0] {
            s.see(ts);
        }
        // 10 → 8.5 (1.5 s: late), → 11, → 5 (6 s back: restart), → 0 (5 s back: restart).
        assert_eq!(s.count, 2);
    }

    #[test]
    fn fragments_and_odd_frames_are_deterministic() {
        let (mut first, mut second) = (Vec::new(), Vec::new());
        let a = write_fragments(&mut first).unwrap();
        let b = write_fragments(&mut second).unwrap();
        assert_eq!((a.clone(), &first), (b, &second));
        assert!(a.attacks.iter().all(|attack| attack.packets > 9_000), "{a:?}");
        let odd = write_odd_frames(&mut first).unwrap();
        assert_eq!(odd.written.frames, odd.written.attacks[0].packets + ODD_TOTAL as u64);
    }
}
