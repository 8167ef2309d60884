//! The scenarios `capgen` writes: what traffic each capture holds and what its ground truth
//! says about it.

use std::net::{IpAddr, Ipv4Addr};

use super::benign::BenignMix;
use super::floods::{
    BotSynFlood, DnsAmplification, DnsQueryFlood, FloodConfig, IcmpFlood, SpoofedSynConfig, SpoofedSynFlood,
    TcpFlagFlood, UdpFlood,
};
use super::frames::{TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST};
use super::hosts::{distinct_hosts, Host, Prefix, BENCHMARK_V4, SHARED_V4};
use super::rng::Rng;
use super::sessions::{Arrivals, SessionsConfig, TcpSessions};
use super::traffic::{at_ms, TrafficSource, Window};
use super::truth::{AttackKind, AttackPlan, Container, Protocol};
use super::SEED;

/// One capture file and how to generate it.
#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    /// File stem and scenario name.
    pub name: &'static str,
    pub description: &'static str,
    pub container: Container,
    /// Every frame gets 802.1Q (some QinQ) tags on its way to the file.
    pub vlan_tagged: bool,
    /// Builds the traffic.
    pub build: fn() -> Traffic,
}

/// The traffic of a scenario: its sources, and the plans of the attacks they contain (indexed
/// by `Role::Attack`).
pub struct Traffic {
    pub sources: Vec<Box<dyn TrafficSource>>,
    pub attacks: Vec<AttackPlan>,
}

/// Every scenario, in the order `capgen all` writes them.
pub const SCENARIOS: [Scenario; 13] = [
    Scenario {
        name: "syn_flood_real_sources",
        description: "SYN flood against 198.51.100.10 tcp/443 at 5,000 SYN/s for 2 s from 300 real (non-spoofed) \
                      bots, each with its own TTL; the victim answers every SYN with a SYN-ACK (SYN cookies) and no \
                      handshake completes. Light benign background for 3 s before and after.",
        container: Container::Pcap,
        vlan_tagged: false,
        build: syn_flood_real_sources,
    },
    Scenario {
        name: "syn_flood_spoofed",
        description: "SYN flood against 203.0.113.5 tcp/80: 120,000 SYNs at 60,000/s from uniformly random spoofed \
                      IPv4 sources, each used once, from one tool (window 0, two TTL values, fixed source port and \
                      sequence number). One-way; light benign background before and after.",
        container: Container::PcapGz,
        vlan_tagged: false,
        build: syn_flood_spoofed,
    },
    Scenario {
        name: "udp_flood",
        description: "UDP flood against 198.51.100.20 from 40 bots at 4,000 packets/s for 2 s: random destination \
                      ports, random source ports outside the reflector table, 0-64 bytes of payload. Light benign \
                      background before and after.",
        container: Container::Pcap,
        vlan_tagged: false,
        build: udp_flood,
    },
    Scenario {
        name: "dns_amplification",
        description: "DNS amplification against 192.0.2.50: 200 open resolvers send ANY responses from udp/53 to \
                      random high ports at 2,500 datagrams/s for 2 s; a third are ~3,000 bytes and arrive as three \
                      IPv4 fragments (packets counts every fragment; the nominal rate is 2,500 x 5/3). Light benign \
                      background before and after.",
        container: Container::PcapGz,
        vlan_tagged: false,
        build: dns_amplification,
    },
    Scenario {
        name: "icmp_flood",
        description: "ICMP echo-request flood against 192.0.2.77 from 20 bots at 3,000 packets/s for 2 s (replies \
                      not captured), over benign IPv4 and IPv6 background traffic.",
        container: Container::Pcap,
        vlan_tagged: false,
        build: icmp_flood,
    },
    Scenario {
        name: "syn_flood_busy_server",
        description: "SYN flood against a web server that keeps serving its users: 198.51.100.30 tcp/443 answers \
                      every SYN (SYN cookies) while 2,000 clients open 600 HTTPS connections/s for 8 s, each \
                      handshake completing, and 300 real bots send 5,000 SYN/s for 2 s that never complete one. \
                      Both directions captured; the offenders are the bots, never the clients.",
        container: Container::PcapGz,
        vlan_tagged: false,
        build: syn_flood_busy_server,
    },
    Scenario {
        name: "dns_query_flood",
        description: "DNS query flood against the resolver 192.0.2.60 udp/53 from 3,000 real hosts in three /16 \
                      networks (compromised home routers of three ISPs), taking turns at 4,500 queries/s for 2 s: \
                      3 queries each. Few packets per source, yet not forged. Light benign background before and \
                      after.",
        container: Container::PcapGz,
        vlan_tagged: false,
        build: dns_query_flood,
    },
    Scenario {
        name: "tcp_flag_floods",
        description: "Three TCP floods without SYN from real bots, 2 s each: an ACK flood at 12,000/s from 200 bots \
                      on the web server 198.51.100.40 tcp/443, which keeps serving 500 users (300 connections/s, \
                      both directions) and resets every flood ACK; \
                      a RST flood at 3,000/s from 100 bots on 198.51.100.41 tcp/80; null, FIN and xmas segments at \
                      3,000/s from 100 bots on 198.51.100.42 tcp/22.",
        container: Container::PcapGz,
        vlan_tagged: false,
        build: tcp_flag_floods,
    },
    Scenario {
        name: "busy_server_acks",
        description: "Benign hard negative: an API server 198.51.100.50 tcp/443 answering 12,500 short HTTPS \
                      requests/s for 1.2 s from 4,000 clients, every handshake completing: about 50,000 ACK \
                      segments/s toward the server, all of connections it serves. Both directions captured.",
        container: Container::PcapGz,
        vlan_tagged: false,
        build: busy_server_acks,
    },
    Scenario {
        name: "carpet_bombing",
        description: "Carpet bombing: a UDP flood of 20,000 packets/s for 2 s from 200 real bots in two /16 \
                      networks, spread over the 254 hosts of 203.0.113.0/24 (about 80 packets/s each, far under \
                      a host's 1,000 packets/s threshold, twice the prefix's 10,000). Light benign background, \
                      with the web server 203.0.113.80 inside the prefix, before, during and after.",
        container: Container::PcapGz,
        vlan_tagged: false,
        build: carpet_bombing,
    },
    Scenario {
        name: "flash_crowd",
        description: "Benign hard negative: 5,000 new HTTPS connections/s for 1.5 s to 198.51.100.80 tcp/443 from \
                      thousands of clients; every handshake completes, then one request, one response and a FIN or \
                      RST close. Both directions captured.",
        container: Container::PcapGz,
        vlan_tagged: false,
        build: flash_crowd,
    },
    Scenario {
        name: "benign_mix",
        description: "Benign: 6 s of web browsing over IPv4 and IPv6, a DNS resolver answering ~300 queries/s from \
                      thousands of clients (some large answers fragmented), NTP, pings, ARP, and a 3 s bulk download \
                      at 8,000 packets/s.",
        container: Container::PcapGz,
        vlan_tagged: false,
        build: benign_mix,
    },
    Scenario {
        name: "benign_mix_vlan",
        description: "Benign: the traffic of benign_mix with every frame 802.1Q-tagged (some QinQ 0x88a8 + \
                      0x8100), as pcapng with two Ethernet interfaces (nanosecond and microsecond timestamps) that \
                      the frames alternate between.",
        container: Container::PcapngGz,
        vlan_tagged: true,
        build: benign_mix,
    },
];

/// The scenario called `name`.
pub fn find(name: &str) -> Option<&'static Scenario> {
    SCENARIOS.iter().find(|scenario| scenario.name == name)
}

/// The random stream of a scenario (independent of which other scenarios are generated).
fn stream(name: &str) -> Rng {
    Rng::for_stream(SEED, name)
}

/// A light benign background over `window`, then the attack sources.
fn with_background(
    rng: &mut Rng,
    mix: BenignMix,
    window: Window,
    attack: Vec<Box<dyn TrafficSource>>,
) -> Vec<Box<dyn TrafficSource>> {
    let mut sources = mix.sources(rng, window);
    sources.extend(attack);
    sources
}

fn syn_flood_real_sources() -> Traffic {
    let mut rng = stream("syn_flood_real_sources");
    let victim = Host::local(Ipv4Addr::new(198, 51, 100, 10));
    let bots = distinct_hosts(&mut rng, BENCHMARK_V4, 300);
    let config = FloodConfig { attack: 0, victim, sources: bots, rate: 5_000, window: Window::ms(3_000, 5_000) };
    let flood = BotSynFlood::new(config, 443, rng.fork());
    Traffic {
        sources: with_background(&mut rng, BenignMix::light(), Window::ms(0, 8_000), vec![Box::new(flood)]),
        attacks: vec![plan(AttackKind::SynFlood, victim, Protocol::Tcp, vec![443], 5_000, false)],
    }
}

fn syn_flood_spoofed() -> Traffic {
    let mut rng = stream("syn_flood_spoofed");
    let victim = Host::local(Ipv4Addr::new(203, 0, 113, 5));
    let config = SpoofedSynConfig {
        attack: 0,
        victim,
        port: 80,
        count: 120_000,
        rate: 60_000,
        start: at_ms(1_000),
        ttls: [54, 118],
    };
    let flood = SpoofedSynFlood::new(config, rng.fork());
    Traffic {
        sources: with_background(&mut rng, BenignMix::light(), Window::ms(0, 4_000), vec![Box::new(flood)]),
        attacks: vec![plan(AttackKind::SynFlood, victim, Protocol::Tcp, vec![80], 60_000, true)],
    }
}

fn udp_flood() -> Traffic {
    let mut rng = stream("udp_flood");
    let victim = Host::local(Ipv4Addr::new(198, 51, 100, 20));
    let bots = distinct_hosts(&mut rng, BENCHMARK_V4, 40);
    let config = FloodConfig { attack: 0, victim, sources: bots, rate: 4_000, window: Window::ms(3_000, 5_000) };
    let flood = UdpFlood::new(config, rng.fork());
    Traffic {
        sources: with_background(&mut rng, BenignMix::light(), Window::ms(0, 8_000), vec![Box::new(flood)]),
        attacks: vec![plan(AttackKind::UdpFlood, victim, Protocol::Udp, vec![], 4_000, false)],
    }
}

/// Datagrams per second of the amplification, and the share (per mille) that is fragmented.
const AMPLIFICATION_RATE: u32 = 2_500;
const AMPLIFICATION_LARGE_PER_MILLE: u32 = 333;

fn dns_amplification() -> Traffic {
    let mut rng = stream("dns_amplification");
    let victim = Host::local(Ipv4Addr::new(192, 0, 2, 50));
    let resolvers = distinct_hosts(&mut rng, SHARED_V4, 200);
    let window = Window::ms(3_000, 5_000);
    let config = FloodConfig { attack: 0, victim, sources: resolvers, rate: AMPLIFICATION_RATE, window };
    let flood = DnsAmplification::new(config, AMPLIFICATION_LARGE_PER_MILLE, rng.fork());
    // A fragmented response is three packets: the nominal packet rate is rate × (1 + 2 × share).
    let rate_pps = u64::from(AMPLIFICATION_RATE) * (1000 + 2 * u64::from(AMPLIFICATION_LARGE_PER_MILLE)) / 1000;
    let mut amplification = plan(AttackKind::Amplification, victim, Protocol::Udp, vec![], rate_pps, false);
    amplification.service = Some("dns");
    Traffic {
        sources: with_background(&mut rng, BenignMix::light(), Window::ms(0, 8_000), vec![Box::new(flood)]),
        attacks: vec![amplification],
    }
}

fn icmp_flood() -> Traffic {
    let mut rng = stream("icmp_flood");
    let victim = Host::local(Ipv4Addr::new(192, 0, 2, 77));
    let bots = distinct_hosts(&mut rng, BENCHMARK_V4, 20);
    let config = FloodConfig { attack: 0, victim, sources: bots, rate: 3_000, window: Window::ms(3_000, 5_000) };
    let flood = IcmpFlood::new(config, rng.fork());
    let background = BenignMix { web6_per_second: 6, dns6_per_second: 40, pings6_per_second: 5, ..BenignMix::light() };
    Traffic {
        sources: with_background(&mut rng, background, Window::ms(0, 8_000), vec![Box::new(flood)]),
        attacks: vec![plan(AttackKind::IcmpFlood, victim, Protocol::Icmp, vec![], 3_000, false)],
    }
}

/// A web server's users: `clients` remote hosts opening `rate` HTTPS connections/s to
/// `server` for the scenarios' 8 s, every handshake completing. Returns the source and how
/// many users it has.
fn web_users(rng: &mut Rng, server: Host, clients: usize, rate: u32) -> (TcpSessions, u64) {
    let config = SessionsConfig {
        clients: distinct_hosts(rng, SHARED_V4, clients),
        servers: vec![server],
        server_port: 443,
        arrivals: Arrivals::PerSecond { rate, window: Window::ms(0, 8_000) },
        request_bytes: (300, 700),
        response_bytes: (300, 2_800),
        segment_gap_ns: 20_000,
        rtt_ns: (5_000_000, 80_000_000),
        rst_per_mille: 100,
    };
    (TcpSessions::new(config, rng.fork()), clients as u64)
}

fn syn_flood_busy_server() -> Traffic {
    let mut rng = stream("syn_flood_busy_server");
    let server = Host::local(Ipv4Addr::new(198, 51, 100, 30));
    let (sessions, user_count) = web_users(&mut rng, server, 2_000, 600);
    let bots = distinct_hosts(&mut rng, BENCHMARK_V4, 300);
    let config =
        FloodConfig { attack: 0, victim: server, sources: bots, rate: 5_000, window: Window::ms(3_000, 5_000) };
    let flood = BotSynFlood::new(config, 443, rng.fork());
    let mut syn_flood = plan(AttackKind::SynFlood, server, Protocol::Tcp, vec![443], 5_000, false);
    syn_flood.users = user_count;
    Traffic { sources: vec![Box::new(sessions), Box::new(flood)], attacks: vec![syn_flood] }
}

fn dns_query_flood() -> Traffic {
    let mut rng = stream("dns_query_flood");
    let resolver = Host::local(Ipv4Addr::new(192, 0, 2, 60));
    let networks = [Ipv4Addr::new(100, 70, 0, 0), Ipv4Addr::new(100, 81, 0, 0), Ipv4Addr::new(100, 99, 0, 0)];
    let bots = networks.iter().flat_map(|&n| distinct_hosts(&mut rng, Prefix::v4(n, 16), 1_000)).collect();
    let config =
        FloodConfig { attack: 0, victim: resolver, sources: bots, rate: 4_500, window: Window::ms(3_000, 5_000) };
    let flood = DnsQueryFlood::new(config, rng.fork());
    Traffic {
        sources: with_background(&mut rng, BenignMix::light(), Window::ms(0, 8_000), vec![Box::new(flood)]),
        attacks: vec![plan(AttackKind::UdpFlood, resolver, Protocol::Udp, vec![53], 4_500, false)],
    }
}

fn carpet_bombing() -> Traffic {
    let mut rng = stream("carpet_bombing");
    let network = Ipv4Addr::new(203, 0, 113, 0);
    let hosts: Vec<Host> = (1..=254u8).map(|last| Host::local(Ipv4Addr::new(203, 0, 113, last))).collect();
    let networks = [Ipv4Addr::new(100, 72, 0, 0), Ipv4Addr::new(100, 91, 0, 0)];
    let bots = networks.iter().flat_map(|&n| distinct_hosts(&mut rng, Prefix::v4(n, 16), 100)).collect();
    let config = FloodConfig {
        attack: 0,
        victim: Host::local(network),
        sources: bots,
        rate: 20_000,
        window: Window::ms(3_000, 5_000),
    };
    let flood = UdpFlood::spread_over(config, hosts, rng.fork());
    let mut attack = plan(AttackKind::UdpFlood, Host::local(network), Protocol::Udp, vec![], 20_000, false);
    attack.victim_prefix = Some(24);
    Traffic {
        sources: with_background(&mut rng, BenignMix::light(), Window::ms(0, 8_000), vec![Box::new(flood)]),
        attacks: vec![attack],
    }
}

/// Null, FIN and xmas (FIN, PSH, URG) segments, in turn.
const SCAN_FLAGS: [u8; 3] = [0, TCP_FIN, TCP_FIN | TCP_PSH | 0x20];

fn tcp_flag_floods() -> Traffic {
    let mut rng = stream("tcp_flag_floods");
    let server = Host::local(Ipv4Addr::new(198, 51, 100, 40));
    // The users' ACKs belong to their connections: no detector counts them among the
    // flood's senders, so the truth names none.
    let (sessions, _) = web_users(&mut rng, server, 500, 300);
    /// One of the floods: its kind and victim, bots, rate, port and flags, and whether the
    /// victim resets its ACKs.
    struct FlagFlood {
        kind: AttackKind,
        victim: Host,
        bots: usize,
        rate: u32,
        port: u16,
        flags: &'static [u8],
        resets: bool,
    }
    let floods = [
        FlagFlood {
            kind: AttackKind::AckFlood,
            victim: server,
            bots: 200,
            rate: 12_000,
            port: 443,
            flags: &[TCP_ACK],
            resets: true,
        },
        FlagFlood {
            kind: AttackKind::RstFlood,
            victim: Host::local(Ipv4Addr::new(198, 51, 100, 41)),
            bots: 100,
            rate: 3_000,
            port: 80,
            flags: &[TCP_RST, TCP_RST | TCP_ACK],
            resets: false,
        },
        FlagFlood {
            kind: AttackKind::TcpFlood,
            victim: Host::local(Ipv4Addr::new(198, 51, 100, 42)),
            bots: 100,
            rate: 3_000,
            port: 22,
            flags: &SCAN_FLAGS,
            resets: false,
        },
    ];
    let window = Window::ms(3_000, 5_000);
    let mut sources: Vec<Box<dyn TrafficSource>> = vec![Box::new(sessions)];
    let mut attacks = Vec::new();
    for (attack, f) in floods.into_iter().enumerate() {
        let bots = distinct_hosts(&mut rng, BENCHMARK_V4, f.bots);
        let config = FloodConfig { attack, victim: f.victim, sources: bots, rate: f.rate, window };
        sources.push(Box::new(TcpFlagFlood::new(config, f.port, f.flags, f.resets, rng.fork())));
        attacks.push(plan(f.kind, f.victim, Protocol::Tcp, vec![f.port], u64::from(f.rate), false));
    }
    Traffic { sources, attacks }
}

fn busy_server_acks() -> Traffic {
    let mut rng = stream("busy_server_acks");
    let server = Host::local(Ipv4Addr::new(198, 51, 100, 50));
    let config = SessionsConfig {
        clients: distinct_hosts(&mut rng, SHARED_V4, 4_000),
        servers: vec![server],
        server_port: 443,
        arrivals: Arrivals::PerSecond { rate: 12_500, window: Window::ms(500, 1_700) },
        request_bytes: (80, 200),
        response_bytes: (100, 400),
        segment_gap_ns: 0,
        rtt_ns: (2_000_000, 30_000_000),
        rst_per_mille: 0,
    };
    let api = TcpSessions::new(config, rng.fork());
    Traffic { sources: vec![Box::new(api)], attacks: Vec::new() }
}

fn flash_crowd() -> Traffic {
    let mut rng = stream("flash_crowd");
    let server = Host::local(Ipv4Addr::new(198, 51, 100, 80));
    let config = SessionsConfig {
        clients: distinct_hosts(&mut rng, SHARED_V4, 5_000),
        servers: vec![server],
        server_port: 443,
        arrivals: Arrivals::PerSecond { rate: 5_000, window: Window::ms(1_000, 2_500) },
        request_bytes: (517, 517),
        // One segment: the response is a single packet.
        response_bytes: (300, 1_400),
        segment_gap_ns: 0,
        rtt_ns: (5_000_000, 60_000_000),
        rst_per_mille: 300,
    };
    let crowd = TcpSessions::new(config, rng.fork());
    Traffic {
        sources: with_background(&mut rng, BenignMix::light(), Window::ms(0, 3_500), vec![Box::new(crowd)]),
        attacks: Vec::new(),
    }
}

/// Used by both benign_mix and benign_mix_vlan: same stream, same traffic.
fn benign_mix() -> Traffic {
    let mut rng = stream("benign_mix");
    let mix = BenignMix::full(Window::ms(1_500, 4_500));
    Traffic { sources: mix.sources(&mut rng, Window::ms(0, 6_000)), attacks: Vec::new() }
}

/// An attack plan against `victim` with no service.
fn plan(
    kind: AttackKind,
    victim: Host,
    protocol: Protocol,
    victim_ports: Vec<u16>,
    rate_pps: u64,
    spoofed: bool,
) -> AttackPlan {
    let victim: IpAddr = victim.addr;
    AttackPlan { kind, victim, victim_prefix: None, protocol, service: None, victim_ports, rate_pps, spoofed, users: 0 }
}
