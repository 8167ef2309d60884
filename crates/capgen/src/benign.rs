//! The benign traffic mix: web browsing over IPv4 and IPv6, a DNS resolver with many clients,
//! NTP polls, pings, ARP, and optionally one bulk download. Attack scenarios run a light mix
//! underneath the attack; the benign scenarios run the full one.
//!
//! Nothing in the mix sends more than a few hundred SYN, UDP, ICMP or fragment packets a second
//! toward any one destination.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::exchanges::{Exchanges, ExchangesConfig, Service};
use super::hosts::{distinct_hosts, Host, BENCHMARK_V4, GATEWAY_V4, REMOTE_V6, SHARED_V4};
use super::rng::Rng;
use super::sessions::{Arrivals, SessionsConfig, TcpSessions};
use super::traffic::{TrafficSource, Window};

/// The IPv4 DNS resolver.
const RESOLVER_V4: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 53);
/// The IPv6 DNS resolver.
const RESOLVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x53);
/// The IPv6 web server.
const WEB_SERVER_V6: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x80);
/// The IPv4 web servers.
const WEB_SERVERS_V4: [Ipv4Addr; 2] = [Ipv4Addr::new(192, 0, 2, 80), Ipv4Addr::new(203, 0, 113, 80)];
/// The server of the bulk download.
const BULK_SERVER: Ipv4Addr = Ipv4Addr::new(203, 0, 113, 20);
/// Local hosts that poll NTP servers and answer ARP.
const LOCAL_HOSTS: [Ipv4Addr; 4] = [
    Ipv4Addr::new(192, 0, 2, 10),
    Ipv4Addr::new(192, 0, 2, 11),
    Ipv4Addr::new(192, 0, 2, 53),
    Ipv4Addr::new(192, 0, 2, 80),
];
/// Gap between bulk download segments: 5,333 segments a second, which with the client's ACK of
/// every second segment makes 8,000 packets a second.
const BULK_SEGMENT_GAP_NS: i64 = 187_500;

/// Rates of the parts of the mix; 0 leaves a part out.
#[derive(Clone, Copy, Debug)]
pub struct BenignMix {
    /// New IPv4 HTTPS connections per second.
    pub web_per_second: u32,
    /// Response size of a web connection, lowest and highest.
    pub web_response_bytes: (u32, u32),
    /// New IPv6 HTTPS connections per second.
    pub web6_per_second: u32,
    /// DNS lookups per second over IPv4 and over IPv6.
    pub dns_per_second: u32,
    pub dns6_per_second: u32,
    pub ntp_per_second: u32,
    pub pings_per_second: u32,
    pub pings6_per_second: u32,
    pub arp_per_second: u32,
    /// When the bulk download runs, if at all.
    pub bulk: Option<Window>,
}

impl BenignMix {
    /// The full mix of the benign scenarios (about 1,000 packets a second, plus the bulk
    /// download while it runs).
    pub fn full(bulk: Window) -> BenignMix {
        BenignMix {
            web_per_second: 20,
            web_response_bytes: (800, 30_000),
            web6_per_second: 5,
            dns_per_second: 300,
            dns6_per_second: 30,
            ntp_per_second: 4,
            pings_per_second: 3,
            pings6_per_second: 1,
            arp_per_second: 2,
            bulk: Some(bulk),
        }
    }

    /// The light background under the attack scenarios (about 150 packets a second).
    pub fn light() -> BenignMix {
        BenignMix {
            web_per_second: 3,
            web_response_bytes: (500, 6_000),
            web6_per_second: 1,
            dns_per_second: 40,
            dns6_per_second: 4,
            ntp_per_second: 2,
            pings_per_second: 2,
            pings6_per_second: 1,
            arp_per_second: 1,
            bulk: None,
        }
    }

    /// The sources of the mix, running throughout `window`.
    pub fn sources(&self, rng: &mut Rng, window: Window) -> Vec<Box<dyn TrafficSource>> {
        let mut sources: Vec<Box<dyn TrafficSource>> = Vec::new();
        let web_servers: Vec<Host> = WEB_SERVERS_V4.iter().map(|&addr| Host::local(addr)).collect();
        let web_clients = distinct_hosts(rng, SHARED_V4, 300);
        if self.web_per_second > 0 {
            let config =
                web_sessions(web_clients, web_servers.clone(), self.web_per_second, self.web_response_bytes, window);
            sources.push(Box::new(TcpSessions::new(config, rng.fork())));
        }
        if self.web6_per_second > 0 {
            let clients = distinct_hosts(rng, REMOTE_V6, 100);
            let servers = vec![Host::local(WEB_SERVER_V6)];
            let config = web_sessions(clients, servers, self.web6_per_second, self.web_response_bytes, window);
            sources.push(Box::new(TcpSessions::new(config, rng.fork())));
        }
        let dns_clients = distinct_hosts(rng, SHARED_V4, 3_000);
        let dns6_clients = distinct_hosts(rng, REMOTE_V6, 200);
        let ntp_servers = distinct_hosts(rng, BENCHMARK_V4, 3);
        let monitors = distinct_hosts(rng, BENCHMARK_V4, 3);
        let monitors6 = distinct_hosts(rng, REMOTE_V6, 1);
        let local = |addrs: &[Ipv4Addr]| addrs.iter().map(|&addr| Host::local(addr)).collect::<Vec<Host>>();
        let exchanges = [
            (Service::Dns, dns_clients, local(&[RESOLVER_V4]), self.dns_per_second, 10),
            (Service::Dns, dns6_clients, vec![Host::local(RESOLVER_V6)], self.dns6_per_second, 100),
            (Service::Ntp, local(&LOCAL_HOSTS), ntp_servers, self.ntp_per_second, 0),
            (Service::Ping, monitors, web_servers, self.pings_per_second, 0),
            (Service::Ping, monitors6, vec![Host::local(WEB_SERVER_V6)], self.pings6_per_second, 0),
            (Service::Arp, local(&[GATEWAY_V4]), local(&LOCAL_HOSTS), self.arp_per_second, 0),
        ];
        for (service, clients, servers, rate, large_per_mille) in exchanges {
            if rate == 0 {
                continue;
            }
            // IPv6 pings carry a Destination Options header, so the mix exercises extension headers.
            let destination_options = service == Service::Ping && clients.iter().all(|c| c.addr.is_ipv6());
            let config =
                ExchangesConfig { service, clients, servers, rate, window, large_per_mille, destination_options };
            sources.push(Box::new(Exchanges::new(config, rng.fork())));
        }
        if let Some(bulk) = self.bulk {
            let client = distinct_hosts(rng, SHARED_V4, 1);
            sources.push(Box::new(TcpSessions::new(bulk_download(client, bulk), rng.fork())));
        }
        sources
    }
}

/// HTTPS browsing: short requests, responses of a few to a few dozen segments.
fn web_sessions(
    clients: Vec<Host>,
    servers: Vec<Host>,
    rate: u32,
    response_bytes: (u32, u32),
    window: Window,
) -> SessionsConfig {
    SessionsConfig {
        clients,
        servers,
        server_port: 443,
        arrivals: Arrivals::PerSecond { rate, window },
        request_bytes: (300, 900),
        response_bytes,
        segment_gap_ns: 15_000,
        rtt_ns: (10_000_000, 120_000_000),
        rst_per_mille: 100,
    }
}

/// One client downloads a large file over HTTPS for the length of `window`: full-size segments
/// paced at 5,333 a second, ACKed every second segment (8,000 packets a second in all).
fn bulk_download(client: Vec<Host>, window: Window) -> SessionsConfig {
    let duration_ns = window.end - window.start;
    let segments = (duration_ns / BULK_SEGMENT_GAP_NS) as u32;
    let bytes = segments * 1460;
    SessionsConfig {
        clients: client,
        servers: vec![Host::local(IpAddr::V4(BULK_SERVER))],
        server_port: 443,
        arrivals: Arrivals::Once { at: window.start },
        request_bytes: (400, 400),
        response_bytes: (bytes, bytes),
        segment_gap_ns: BULK_SEGMENT_GAP_NS,
        rtt_ns: (5_000_000, 5_000_000),
        rst_per_mille: 0,
    }
}
