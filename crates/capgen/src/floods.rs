//! Attack traffic: SYN floods (from real bots answered by a SYN-cookie server, or from spoofed
//! sources), UDP floods, ICMP echo floods and DNS amplification.
//!
//! Every frame toward the victim is tagged `Role::Attack(index)`; the victim's answers are
//! background.

use std::net::IpAddr;

use super::frames::{
    build_fragment_frame, build_ip_frame, Echo, Ip, Tcp, Transport, Udp, PROTO_UDP, TCP_ACK, TCP_RST, TCP_SYN,
};
use super::hosts::{ethernet_between, Host, SpoofedSources};
use super::payloads::{dns_query, dns_txt_response, ping_data, DnsQuestion, DNS_TYPE_A, DNS_TYPE_ANY, LOOKUP_NAMES};
use super::rng::Rng;
use super::traffic::{gap_ns, EventQueue, Role, TrafficSource, Window, FRAGMENT_GAP_NS, NS_PER_SECOND};

/// Source ports of reflection and amplification services (the detector's starting table): a
/// plain UDP flood must not look like reflected traffic, so its source ports avoid these.
pub const REFLECTOR_PORTS: [u16; 25] = [
    17, 19, 53, 69, 111, 123, 137, 161, 389, 500, 520, 1194, 1434, 1900, 3283, 3478, 3702, 4500, 5353, 5683, 10001,
    11211, 27015, 37810, 47808,
];

/// Who floods whom, how fast and when.
#[derive(Clone, Debug)]
pub struct FloodConfig {
    /// Index of this attack in the scenario's ground truth.
    pub attack: usize,
    pub victim: Host,
    /// The attacking hosts (bots or reflectors), each with its own TTL.
    pub sources: Vec<Host>,
    /// Packets (or datagrams, for amplification) per second toward the victim, jittered.
    pub rate: u32,
    pub window: Window,
}

/// Schedules the next `arrival` after `now` if it falls inside the window.
fn schedule_arrival<E>(queue: &mut EventQueue<E>, arrival: E, rng: &mut Rng, config: &FloodConfig, now: i64) {
    if let Some(next) = config.window.admit(now + rng.jittered(gap_ns(config.rate))) {
        queue.push(next, arrival);
    }
}

/// A queue holding the first `arrival` at the start of the window.
fn first_arrival<E>(config: &FloodConfig, arrival: E) -> EventQueue<E> {
    let mut queue = EventQueue::default();
    queue.push(config.window.start, arrival);
    queue
}

/// Events of a bot SYN flood.
#[derive(Clone, Copy, Debug)]
enum SynEvent {
    /// The next SYN is due.
    Syn,
    /// The SYN-cookie server answers a SYN.
    SynAck { bot: Host, port: u16, seq: u32 },
}

/// A SYN flood from real bots against one TCP port. The victim runs SYN cookies: it answers
/// every SYN with a SYN-ACK, and the bots never complete the handshake.
pub struct BotSynFlood {
    config: FloodConfig,
    port: u16,
    rng: Rng,
    queue: EventQueue<SynEvent>,
}

impl BotSynFlood {
    pub fn new(config: FloodConfig, port: u16, rng: Rng) -> Self {
        let queue = first_arrival(&config, SynEvent::Syn);
        BotSynFlood { config, port, rng, queue }
    }

    /// Builds a SYN from a random bot and schedules the victim's SYN-ACK.
    fn syn(&mut self, now: i64, frame: &mut Vec<u8>) {
        let bot = self.config.sources[self.rng.index(self.config.sources.len())];
        let port = self.rng.between(1024, 65_535) as u16;
        let seq = self.rng.next_u32();
        let tcp =
            Tcp { src_port: port, dst_port: self.port, seq, ack: 0, flags: TCP_SYN, window: 64_240, mss: Some(1460) };
        build_tcp(frame, bot, self.config.victim, self.rng.next_u16(), tcp);
        let answer_at = now + self.rng.between(15_000, 60_000) as i64;
        self.queue.push(answer_at, SynEvent::SynAck { bot, port, seq });
    }

    /// Builds the victim's SYN-ACK; its sequence number is the cookie.
    fn syn_ack(&mut self, bot: Host, port: u16, seq: u32, frame: &mut Vec<u8>) {
        let flags = TCP_SYN | TCP_ACK;
        let cookie = self.rng.next_u32();
        let tcp = Tcp {
            src_port: self.port,
            dst_port: port,
            seq: cookie,
            ack: seq.wrapping_add(1),
            flags,
            window: 65_160,
            mss: Some(1460),
        };
        build_tcp(frame, self.config.victim, bot, 0, tcp);
    }
}

impl TrafficSource for BotSynFlood {
    fn next_time(&self) -> Option<i64> {
        self.queue.next_time()
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let (now, event) = self.queue.pop()?;
        let role = match event {
            SynEvent::SynAck { bot, port, seq } => {
                self.syn_ack(bot, port, seq, frame);
                Role::Background
            }
            SynEvent::Syn => {
                schedule_arrival(&mut self.queue, SynEvent::Syn, &mut self.rng, &self.config, now);
                self.syn(now, frame);
                Role::Attack(self.config.attack)
            }
        };
        Some((now, role))
    }
}

/// Events of a TCP flag flood.
#[derive(Clone, Copy, Debug)]
enum FlagEvent {
    /// The next flood segment is due.
    Segment,
    /// The victim resets a segment of no connection it knows.
    Reset { bot: Host, port: u16, ack: u32 },
}

/// A flood of TCP segments from real bots to one port: random source ports, sequence and
/// acknowledgment numbers, the flags taken in turn from `flags` (an ACK flood, a RST flood,
/// or null, FIN and xmas segments). With `resets`, the victim answers every ACK segment with
/// a RST, as a host does for a segment of no connection it has.
pub struct TcpFlagFlood {
    config: FloodConfig,
    port: u16,
    flags: &'static [u8],
    resets: bool,
    rng: Rng,
    queue: EventQueue<FlagEvent>,
    turn: usize,
}

impl TcpFlagFlood {
    pub fn new(config: FloodConfig, port: u16, flags: &'static [u8], resets: bool, rng: Rng) -> Self {
        let queue = first_arrival(&config, FlagEvent::Segment);
        TcpFlagFlood { config, port, flags, resets, rng, queue, turn: 0 }
    }
}

impl TrafficSource for TcpFlagFlood {
    fn next_time(&self) -> Option<i64> {
        self.queue.next_time()
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let (now, event) = self.queue.pop()?;
        match event {
            FlagEvent::Reset { bot, port, ack } => {
                let tcp =
                    Tcp { src_port: self.port, dst_port: port, seq: ack, ack: 0, flags: TCP_RST, window: 0, mss: None };
                build_tcp(frame, self.config.victim, bot, 0, tcp);
                Some((now, Role::Background))
            }
            FlagEvent::Segment => {
                schedule_arrival(&mut self.queue, FlagEvent::Segment, &mut self.rng, &self.config, now);
                let bot = self.config.sources[self.rng.index(self.config.sources.len())];
                let flags = self.flags[self.turn % self.flags.len()];
                self.turn += 1;
                let port = self.rng.between(1024, 65_535) as u16;
                let (seq, ack) = (self.rng.next_u32(), self.rng.next_u32());
                let ack = if flags & TCP_ACK != 0 { ack } else { 0 };
                let tcp = Tcp { src_port: port, dst_port: self.port, seq, ack, flags, window: 1_024, mss: None };
                build_tcp(frame, bot, self.config.victim, self.rng.next_u16(), tcp);
                if self.resets && flags & (TCP_ACK | TCP_RST) == TCP_ACK {
                    let at = now + self.rng.between(15_000, 60_000) as i64;
                    self.queue.push(at, FlagEvent::Reset { bot, port, ack });
                }
                Some((now, Role::Attack(self.config.attack)))
            }
        }
    }
}

/// Builds a TCP frame from `src` to `dst`, leaving `frame` empty if their families differ.
fn build_tcp(frame: &mut Vec<u8>, src: Host, dst: Host, ip_id: u16, tcp: Tcp) {
    frame.clear();
    if let Some(ip) = Ip::between(src.addr, dst.addr, src.ttl, ip_id) {
        build_ip_frame(frame, &ethernet_between(src.addr, dst.addr), &ip, &Transport::Tcp(tcp), &[]);
    }
}

/// How a spoofing SYN flood tool fills its packets.
#[derive(Clone, Copy, Debug)]
pub struct SpoofedSynConfig {
    pub attack: usize,
    pub victim: Host,
    pub port: u16,
    /// Number of SYNs; every one has a different source address.
    pub count: u64,
    /// SYNs per second, sent at exactly regular intervals.
    pub rate: u32,
    pub start: i64,
    /// The two TTLs the packets arrive with (two machines running the tool).
    pub ttls: [u8; 2],
}

/// A SYN flood from uniformly random spoofed IPv4 sources, each used once, as one tool sends
/// it: window 0 and a source port, sequence number and IP ID fixed for the whole run. Only the
/// flood is captured (the victim's answers go to the spoofed addresses). The fixed fields and
/// the exactly regular timestamps also keep the gzip-compressed capture small: the random
/// addresses and the checksums they change are nearly all that is left to store.
pub struct SpoofedSynFlood {
    config: SpoofedSynConfig,
    rng: Rng,
    sent: u64,
    sources: SpoofedSources,
    /// The tool's fixed sequence number, IP ID and source port.
    seq: u32,
    ip_id: u16,
    src_port: u16,
}

impl SpoofedSynFlood {
    pub fn new(config: SpoofedSynConfig, mut rng: Rng) -> Self {
        let seq = rng.next_u32();
        let ip_id = rng.next_u16();
        let src_port = rng.between(1024, 65_535) as u16;
        let sources = SpoofedSources::new(&mut rng);
        SpoofedSynFlood { config, rng, sent: 0, sources, seq, ip_id, src_port }
    }
}

impl TrafficSource for SpoofedSynFlood {
    fn next_time(&self) -> Option<i64> {
        let config = &self.config;
        // Exact integer schedule: the n-th SYN at start + n / rate seconds.
        (self.sent < config.count).then(|| config.start + (self.sent as i64 * NS_PER_SECOND) / i64::from(config.rate))
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let now = self.next_time()?;
        let ttl = self.config.ttls[self.rng.index(2)];
        let Some(addr) = self.sources.next_addr() else {
            // Every possible source has been used: the flood ends here.
            self.sent = self.config.count;
            return None;
        };
        let source = Host { addr: IpAddr::V4(addr), ttl };
        let tcp = Tcp {
            src_port: self.src_port,
            dst_port: self.config.port,
            seq: self.seq,
            ack: 0,
            flags: TCP_SYN,
            window: 0,
            mss: None,
        };
        build_tcp(frame, source, self.config.victim, self.ip_id, tcp);
        self.sent += 1;
        Some((now, Role::Attack(self.config.attack)))
    }
}

/// A UDP flood from bots: random destination ports, random source ports outside the reflector
/// table, 0 to 64 bytes of random payload, per-bot counting IP IDs; toward the victim, or
/// spread over many hosts (carpet bombing).
pub struct UdpFlood {
    config: FloodConfig,
    /// The hosts flooded, each packet toward one at random: the victim alone, or a prefix's.
    targets: Vec<Host>,
    rng: Rng,
    /// Arrivals of the next packet.
    queue: EventQueue<()>,
    ip_ids: Vec<u16>,
    payload: Vec<u8>,
}

impl UdpFlood {
    pub fn new(config: FloodConfig, rng: Rng) -> Self {
        let targets = vec![config.victim];
        UdpFlood::spread_over(config, targets, rng)
    }

    /// A flood spread over `targets` (`config.victim` names the attack, not a target).
    pub fn spread_over(config: FloodConfig, targets: Vec<Host>, mut rng: Rng) -> Self {
        let queue = first_arrival(&config, ());
        let ip_ids = config.sources.iter().map(|_| rng.next_u16()).collect();
        UdpFlood { config, targets, rng, queue, ip_ids, payload: Vec::new() }
    }
}

/// A source port of 1024 or above that no reflection service uses.
fn non_reflector_port(rng: &mut Rng) -> u16 {
    loop {
        let port = rng.between(1024, 65_535) as u16;
        if !REFLECTOR_PORTS.contains(&port) {
            return port;
        }
    }
}

impl TrafficSource for UdpFlood {
    fn next_time(&self) -> Option<i64> {
        self.queue.next_time()
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let (now, _) = self.queue.pop()?;
        schedule_arrival(&mut self.queue, (), &mut self.rng, &self.config, now);
        let bot_index = self.rng.index(self.config.sources.len());
        let bot = self.config.sources[bot_index];
        let ip_id = next_count(&mut self.ip_ids, bot_index);
        let udp = Udp { src_port: non_reflector_port(&mut self.rng), dst_port: self.rng.between(1, 65_535) as u16 };
        let payload_len = self.rng.below(65) as usize;
        self.payload.clear();
        self.payload.extend((0..payload_len).map(|_| self.rng.next_u16() as u8));
        // One target draws nothing: the single-victim captures stay as they were.
        let target = match self.targets.len() {
            1 => self.targets[0],
            n => self.targets[self.rng.index(n)],
        };
        frame.clear();
        if let Some(ip) = Ip::between(bot.addr, target.addr, bot.ttl, ip_id) {
            let ethernet = ethernet_between(bot.addr, target.addr);
            build_ip_frame(frame, &ethernet, &ip, &Transport::Udp(udp), &self.payload);
        }
        Some((now, Role::Attack(self.config.attack)))
    }
}

/// A DNS query flood from bots against a resolver's udp/53: the bots take turns, so each
/// sends the same number of queries (one every `sources.len()` packets), each from a fresh
/// ephemeral port outside the reflector table.
pub struct DnsQueryFlood {
    config: FloodConfig,
    rng: Rng,
    queue: EventQueue<()>,
    /// The bot whose turn it is.
    turn: usize,
    payload: Vec<u8>,
}

impl DnsQueryFlood {
    pub fn new(config: FloodConfig, rng: Rng) -> Self {
        let queue = first_arrival(&config, ());
        DnsQueryFlood { config, rng, queue, turn: 0, payload: Vec::new() }
    }
}

impl TrafficSource for DnsQueryFlood {
    fn next_time(&self) -> Option<i64> {
        self.queue.next_time()
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let (now, _) = self.queue.pop()?;
        schedule_arrival(&mut self.queue, (), &mut self.rng, &self.config, now);
        let bot = self.config.sources[self.turn];
        self.turn = (self.turn + 1) % self.config.sources.len();
        let src_port = non_reflector_port(&mut self.rng);
        let question = DnsQuestion {
            txid: self.rng.next_u16(),
            name: LOOKUP_NAMES[self.rng.index(LOOKUP_NAMES.len())],
            qtype: DNS_TYPE_A,
        };
        self.payload.clear();
        dns_query(&mut self.payload, &question);
        frame.clear();
        if let Some(ip) = Ip::between(bot.addr, self.config.victim.addr, bot.ttl, self.rng.next_u16()) {
            let ethernet = ethernet_between(bot.addr, self.config.victim.addr);
            build_ip_frame(frame, &ethernet, &ip, &Transport::Udp(Udp { src_port, dst_port: 53 }), &self.payload);
        }
        Some((now, Role::Attack(self.config.attack)))
    }
}

/// Returns the counter (IP ID or echo sequence number) of source `index` and counts it up.
fn next_count(counters: &mut [u16], index: usize) -> u16 {
    let current = counters[index];
    counters[index] = current.wrapping_add(1);
    current
}

/// An ICMP echo-request flood from bots, each running `ping -f` (its own identifier, counting
/// sequence numbers, 56 data bytes). The victim's replies are not captured.
pub struct IcmpFlood {
    config: FloodConfig,
    rng: Rng,
    /// Arrivals of the next packet.
    queue: EventQueue<()>,
    ip_ids: Vec<u16>,
    echo_ids: Vec<u16>,
    next_seq: Vec<u16>,
}

impl IcmpFlood {
    pub fn new(config: FloodConfig, mut rng: Rng) -> Self {
        let queue = first_arrival(&config, ());
        let ip_ids = config.sources.iter().map(|_| rng.next_u16()).collect();
        let echo_ids = config.sources.iter().map(|_| rng.next_u16()).collect();
        let next_seq = vec![1; config.sources.len()];
        IcmpFlood { config, rng, queue, ip_ids, echo_ids, next_seq }
    }
}

impl TrafficSource for IcmpFlood {
    fn next_time(&self) -> Option<i64> {
        self.queue.next_time()
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let (now, _) = self.queue.pop()?;
        schedule_arrival(&mut self.queue, (), &mut self.rng, &self.config, now);
        let bot_index = self.rng.index(self.config.sources.len());
        let bot = self.config.sources[bot_index];
        let ip_id = next_count(&mut self.ip_ids, bot_index);
        let echo =
            Echo { reply: false, ident: self.echo_ids[bot_index], seq: next_count(&mut self.next_seq, bot_index) };
        frame.clear();
        if let Some(ip) = Ip::between(bot.addr, self.config.victim.addr, bot.ttl, ip_id) {
            let ethernet = ethernet_between(bot.addr, self.config.victim.addr);
            build_ip_frame(frame, &ethernet, &ip, &Transport::Echo(echo), ping_data());
        }
        Some((now, Role::Attack(self.config.attack)))
    }
}

/// One amplified DNS response, carried by the events of its fragments.
#[derive(Clone, Copy, Debug)]
struct Reflection {
    resolver: Host,
    victim_port: u16,
    txid: u16,
    ip_id: u16,
    /// Target size of the DNS message.
    message_len: usize,
}

/// The name the attacker's spoofed queries ask for (with type ANY).
const AMPLIFIED_NAME: &str = "example.com";
/// DNS message size of a large response, lowest and highest: always more than two full
/// fragments (2 × 1480 bytes with the UDP header), so it arrives as three.
const LARGE_RESPONSE: (u64, u64) = (2_990, 3_100);
/// DNS message size of the other responses, lowest and highest (one MTU at most).
const SMALL_RESPONSE: (u64, u64) = (400, 1_400);

/// Events of a DNS amplification.
#[derive(Clone, Copy, Debug)]
enum ReflectionEvent {
    /// The next response is due.
    Response,
    /// Fragment `index` (from 1) of a fragmented response.
    Fragment(Reflection, usize),
}

/// DNS amplification: open resolvers send large responses (to queries spoofed from the victim)
/// from udp/53 to random high ports on the victim. A share of the responses exceed the MTU and
/// arrive as IPv4 fragments, only the first of which has the UDP header.
pub struct DnsAmplification {
    config: FloodConfig,
    /// Share of responses that are ~3,000 bytes and fragmented, per mille.
    large_per_mille: u32,
    rng: Rng,
    queue: EventQueue<ReflectionEvent>,
    ip_ids: Vec<u16>,
    message: Vec<u8>,
    /// The unfragmented response, built to cut fragments from.
    whole: Vec<u8>,
}

impl DnsAmplification {
    pub fn new(config: FloodConfig, large_per_mille: u32, mut rng: Rng) -> Self {
        let queue = first_arrival(&config, ReflectionEvent::Response);
        let ip_ids = config.sources.iter().map(|_| rng.next_u16()).collect();
        DnsAmplification { config, large_per_mille, rng, queue, ip_ids, message: Vec::new(), whole: Vec::new() }
    }

    /// Draws the next response.
    fn reflect(&mut self) -> Reflection {
        let index = self.rng.index(self.config.sources.len());
        let (low, high) = if self.rng.chance_per_mille(self.large_per_mille) { LARGE_RESPONSE } else { SMALL_RESPONSE };
        Reflection {
            resolver: self.config.sources[index],
            victim_port: self.rng.between(1024, 65_535) as u16,
            txid: self.rng.next_u16(),
            ip_id: next_count(&mut self.ip_ids, index),
            message_len: self.rng.between(low, high) as usize,
        }
    }

    /// Builds fragment `index` of `reflection` into `frame` (index 0 and no more fragments for
    /// a response that fits the MTU); returns whether more fragments follow.
    fn build(&mut self, reflection: &Reflection, index: usize, frame: &mut Vec<u8>) -> bool {
        frame.clear();
        let (resolver, victim) = (reflection.resolver, self.config.victim);
        let Some(ip) = Ip::between(resolver.addr, victim.addr, resolver.ttl, reflection.ip_id) else {
            return false;
        };
        let question = DnsQuestion { txid: reflection.txid, name: AMPLIFIED_NAME, qtype: DNS_TYPE_ANY };
        self.message.clear();
        dns_txt_response(&mut self.message, &question, reflection.message_len);
        let udp = Transport::Udp(Udp { src_port: 53, dst_port: reflection.victim_port });
        let ethernet = ethernet_between(resolver.addr, victim.addr);
        let layout = build_ip_frame(&mut self.whole, &ethernet, &ip, &udp, &self.message);
        if self.whole.len() - layout.ip <= 1500 {
            frame.extend_from_slice(&self.whole);
            return false;
        }
        let datagram = &self.whole[layout.transport..];
        let ident = u32::from(reflection.ip_id);
        build_fragment_frame(frame, &ethernet, &ip, PROTO_UDP, datagram, ident, index)
            .is_some_and(|position| position.more)
    }
}

impl TrafficSource for DnsAmplification {
    fn next_time(&self) -> Option<i64> {
        self.queue.next_time()
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let (now, event) = self.queue.pop()?;
        let (reflection, index) = match event {
            ReflectionEvent::Fragment(reflection, index) => (reflection, index),
            ReflectionEvent::Response => {
                schedule_arrival(&mut self.queue, ReflectionEvent::Response, &mut self.rng, &self.config, now);
                (self.reflect(), 0)
            }
        };
        if self.build(&reflection, index, frame) {
            self.queue.push(now + FRAGMENT_GAP_NS, ReflectionEvent::Fragment(reflection, index + 1));
        }
        Some((now, Role::Attack(self.config.attack)))
    }
}
