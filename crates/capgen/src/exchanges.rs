//! Request/response exchanges: DNS lookups, NTP polls, pings and ARP resolutions.
//!
//! Each exchange is one request from a client followed, after a service-specific delay, by the
//! server's response. Large DNS responses (DNSSEC-signed answers) do not fit the path MTU and
//! leave the server as IP fragments: 1480-byte pieces over IPv4, 1232-byte pieces behind an
//! IPv6 Fragment header.

use std::net::IpAddr;

use super::frames::{
    build_arp_frame, build_fragment_frame, build_ip_frame, Arp, Echo, Ethernet, Ip, Ipv6, Ipv6Extension, Transport,
    Udp, VlanTags, PROTO_UDP,
};
use super::hosts::{ethernet_between, mac_of, Host, BROADCAST_MAC};
use super::payloads::{
    dns_address_response, dns_query, dns_txt_response, ntp_packet, ping_data, DnsQuestion, NtpPacket, DNS_TYPE_A,
    DNS_TYPE_AAAA, DNS_TYPE_TXT, LOOKUP_NAMES,
};
use super::rng::Rng;
use super::traffic::{gap_ns, EventQueue, Role, TrafficSource, Window, FRAGMENT_GAP_NS};

const DNS_PORT: u16 = 53;
const NTP_PORT: u16 = 123;

/// The protocol of an exchange.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Service {
    /// Clients query a resolver on udp/53.
    Dns,
    /// Clients poll NTP servers on udp/123.
    Ntp,
    /// Clients (monitors) ping servers: ICMP or ICMPv6 echo.
    Ping,
    /// A client (the router) asks who has a server's IPv4 address. IPv4 hosts only.
    Arp,
}

/// The shape of the exchanges one source produces.
#[derive(Clone, Debug)]
pub struct ExchangesConfig {
    pub service: Service,
    pub clients: Vec<Host>,
    pub servers: Vec<Host>,
    /// Exchanges per second (jittered), throughout `window`.
    pub rate: u32,
    pub window: Window,
    /// DNS: share of responses that are large (1.8 to 2.4 KB) and so fragmented, per mille.
    pub large_per_mille: u32,
    /// IPv6 requests carry a Destination Options header.
    pub destination_options: bool,
}

/// One exchange, carried by its scheduled packets.
#[derive(Clone, Copy, Debug)]
struct Exchange {
    client: Host,
    server: Host,
    client_port: u16,
    /// DNS transaction id or echo identifier.
    id: u16,
    /// Echo sequence number.
    seq: u16,
    /// Index into [`LOOKUP_NAMES`].
    name: usize,
    /// Size of a large DNS response; 0 for an ordinary one.
    large_len: usize,
    /// Number of records in an ordinary DNS response.
    answers: u16,
    client_ip_id: u16,
    server_ip_id: u16,
    /// When the request was sent (NTP echoes it).
    requested_at: i64,
}

#[derive(Clone, Copy, Debug)]
enum Event {
    /// A new exchange starts (its request is the frame).
    Arrival,
    /// The response, or its fragment with this index.
    Response(Exchange, usize),
}

/// A source of request/response exchanges.
pub struct Exchanges {
    config: ExchangesConfig,
    rng: Rng,
    queue: EventQueue<Event>,
    /// Next echo sequence number of each client.
    next_seq: Vec<u16>,
    /// Echo identifier of each client (its ping process).
    echo_ids: Vec<u16>,
    /// Application message being built.
    message: Vec<u8>,
    /// An unfragmented packet, built to cut fragments from.
    whole: Vec<u8>,
}

impl Exchanges {
    pub fn new(config: ExchangesConfig, mut rng: Rng) -> Self {
        let mut queue = EventQueue::default();
        queue.push(config.window.start, Event::Arrival);
        let echo_ids = config.clients.iter().map(|_| rng.next_u16()).collect();
        let next_seq = vec![1; config.clients.len()];
        Exchanges { config, rng, queue, next_seq, echo_ids, message: Vec::new(), whole: Vec::new() }
    }

    /// Draws a new exchange starting at `now`.
    fn open(&mut self, now: i64) -> Exchange {
        let client_index = self.rng.index(self.config.clients.len());
        let seq = self.next_seq[client_index];
        self.next_seq[client_index] = seq.wrapping_add(1);
        let large = self.config.service == Service::Dns && self.rng.chance_per_mille(self.config.large_per_mille);
        Exchange {
            client: self.config.clients[client_index],
            server: self.config.servers[self.rng.index(self.config.servers.len())],
            client_port: self.rng.between(1024, 65_535) as u16,
            id: if self.config.service == Service::Ping { self.echo_ids[client_index] } else { self.rng.next_u16() },
            seq,
            name: self.rng.index(LOOKUP_NAMES.len()),
            large_len: if large { self.rng.between(1800, 2400) as usize } else { 0 },
            answers: self.rng.between(1, 4) as u16,
            client_ip_id: self.rng.next_u16(),
            server_ip_id: self.rng.next_u16(),
            requested_at: now,
        }
    }

    /// How long the server takes to answer, as seen at the capture point.
    fn response_delay(&mut self) -> i64 {
        let (low, high) = match self.config.service {
            // Cache hits answer in a fraction of a millisecond, misses take several.
            Service::Dns => (200_000, 8_000_000),
            // The capture point is next to the NTP clients: the delay is the round trip.
            Service::Ntp => (5_000_000, 40_000_000),
            Service::Ping => (30_000, 120_000),
            Service::Arp => (50_000, 300_000),
        };
        self.rng.between(low, high) as i64
    }

    /// Builds the request of `ex` into `frame`.
    fn build_request(&mut self, ex: &Exchange, frame: &mut Vec<u8>) {
        frame.clear();
        self.message.clear();
        let transport = match self.config.service {
            Service::Arp => return build_arp(frame, ex, false),
            Service::Dns => {
                dns_query(&mut self.message, &question(ex));
                Transport::Udp(Udp { src_port: ex.client_port, dst_port: DNS_PORT })
            }
            Service::Ntp => {
                let packet = NtpPacket { server_reply: false, origin_ns: 0, transmit_ns: ex.requested_at };
                ntp_packet(&mut self.message, &packet);
                Transport::Udp(Udp { src_port: ex.client_port, dst_port: NTP_PORT })
            }
            Service::Ping => {
                self.message.extend_from_slice(ping_data());
                Transport::Echo(Echo { reply: false, ident: ex.id, seq: ex.seq })
            }
        };
        let Some(mut ip) = Ip::between(ex.client.addr, ex.server.addr, ex.client.ttl, ex.client_ip_id) else {
            return;
        };
        if let (Ip::V6(header), true) = (ip, self.config.destination_options) {
            ip = Ip::V6(Ipv6 { extension: Ipv6Extension::DestinationOptions, ..header });
        }
        let ethernet = ethernet_between(ex.client.addr, ex.server.addr);
        build_ip_frame(frame, &ethernet, &ip, &transport, &self.message);
    }

    /// Builds fragment `index` of the response of `ex` (index 0 for an unfragmented one) into
    /// `frame`; returns whether more fragments follow.
    fn build_response(&mut self, ex: &Exchange, now: i64, index: usize, frame: &mut Vec<u8>) -> bool {
        frame.clear();
        self.message.clear();
        let transport = match self.config.service {
            Service::Arp => {
                build_arp(frame, ex, true);
                return false;
            }
            Service::Dns => {
                let question = question(ex);
                if ex.large_len > 0 {
                    dns_txt_response(&mut self.message, &question, ex.large_len);
                } else {
                    dns_address_response(&mut self.message, &question, ex.answers);
                }
                Transport::Udp(Udp { src_port: DNS_PORT, dst_port: ex.client_port })
            }
            Service::Ntp => {
                let packet = NtpPacket { server_reply: true, origin_ns: ex.requested_at, transmit_ns: now };
                ntp_packet(&mut self.message, &packet);
                Transport::Udp(Udp { src_port: NTP_PORT, dst_port: ex.client_port })
            }
            Service::Ping => {
                self.message.extend_from_slice(ping_data());
                Transport::Echo(Echo { reply: true, ident: ex.id, seq: ex.seq })
            }
        };
        let Some(ip) = Ip::between(ex.server.addr, ex.client.addr, ex.server.ttl, ex.server_ip_id) else {
            return false;
        };
        let ethernet = ethernet_between(ex.server.addr, ex.client.addr);
        if ex.large_len == 0 {
            build_ip_frame(frame, &ethernet, &ip, &transport, &self.message);
            return false;
        }
        let layout = build_ip_frame(&mut self.whole, &ethernet, &ip, &transport, &self.message);
        let datagram = &self.whole[layout.transport..];
        let ident = u32::from(ex.server_ip_id);
        build_fragment_frame(frame, &ethernet, &ip, PROTO_UDP, datagram, ident, index)
            .is_some_and(|position| position.more)
    }
}

/// The DNS question of `ex`: A for IPv4 clients, AAAA for IPv6 ones, TXT for large answers.
fn question(ex: &Exchange) -> DnsQuestion<'static> {
    let qtype = match (ex.large_len > 0, ex.client.addr) {
        (true, _) => DNS_TYPE_TXT,
        (false, IpAddr::V4(_)) => DNS_TYPE_A,
        (false, IpAddr::V6(_)) => DNS_TYPE_AAAA,
    };
    DnsQuestion { txid: ex.id, name: LOOKUP_NAMES[ex.name], qtype }
}

/// Builds the ARP request (broadcast, from the client) or reply (from the server) of `ex`;
/// leaves `frame` empty unless both hosts are IPv4.
fn build_arp(frame: &mut Vec<u8>, ex: &Exchange, reply: bool) {
    let (IpAddr::V4(client_ip), IpAddr::V4(server_ip)) = (ex.client.addr, ex.server.addr) else {
        return;
    };
    let (client_mac, server_mac) = (mac_of(ex.client.addr), mac_of(ex.server.addr));
    let (ethernet, arp) = if reply {
        let ethernet = Ethernet { dst: client_mac, src: server_mac, vlan: VlanTags::Untagged };
        let arp =
            Arp { reply, sender_mac: server_mac, sender_ip: server_ip, target_mac: client_mac, target_ip: client_ip };
        (ethernet, arp)
    } else {
        let ethernet = Ethernet { dst: BROADCAST_MAC, src: client_mac, vlan: VlanTags::Untagged };
        let arp = Arp { reply, sender_mac: client_mac, sender_ip: client_ip, target_mac: [0; 6], target_ip: server_ip };
        (ethernet, arp)
    };
    build_arp_frame(frame, &ethernet, &arp);
}

impl TrafficSource for Exchanges {
    fn next_time(&self) -> Option<i64> {
        self.queue.next_time()
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let (now, event) = self.queue.pop()?;
        match event {
            Event::Arrival => {
                if let Some(next) = self.config.window.admit(now + self.rng.jittered(gap_ns(self.config.rate))) {
                    self.queue.push(next, Event::Arrival);
                }
                let ex = self.open(now);
                self.build_request(&ex, frame);
                let delay = self.response_delay();
                self.queue.push(now + delay, Event::Response(ex, 0));
            }
            Event::Response(ex, index) => {
                if self.build_response(&ex, now, index, frame) {
                    self.queue.push(now + FRAGMENT_GAP_NS, Event::Response(ex, index + 1));
                }
            }
        }
        Some((now, Role::Background))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::ip_addresses;
    use crate::hosts::{GATEWAY_MAC, GATEWAY_V4};
    use std::net::Ipv6Addr;

    fn collect(config: ExchangesConfig) -> Vec<Vec<u8>> {
        let mut source = Exchanges::new(config, Rng::new(9));
        let mut frame = Vec::new();
        let mut frames = Vec::new();
        while source.next_frame(&mut frame).is_some() {
            frames.push(frame.clone());
        }
        frames
    }

    fn config(service: Service, client: IpAddr, server: IpAddr, large_per_mille: u32) -> ExchangesConfig {
        ExchangesConfig {
            service,
            clients: vec![Host { addr: client, ttl: 55 }],
            servers: vec![Host::local(server)],
            rate: 50,
            window: Window::ms(0, 1000),
            large_per_mille,
            destination_options: false,
        }
    }

    #[test]
    fn every_dns_query_gets_an_answer_from_port_53() {
        let frames = collect(config(Service::Dns, IpAddr::from([100, 64, 1, 1]), IpAddr::from([192, 0, 2, 53]), 0));
        assert!(frames.len() > 60);
        let responses = frames.iter().filter(|f| f[34..36] == DNS_PORT.to_be_bytes()).count();
        assert_eq!(responses * 2, frames.len());
    }

    #[test]
    fn large_ipv6_dns_answers_are_fragmented() {
        let client = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0xffff, 0, 0, 0, 0, 9));
        let server = IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 0x53));
        let frames = collect(config(Service::Dns, client, server, 1000));
        let fragments = frames.iter().filter(|f| f[20] == 44).count();
        let queries = frames.iter().filter(|f| f[20] == 17).count();
        assert_eq!(fragments, queries * 2, "each ~2 KB answer is two 1232-byte-or-less pieces");
        assert!(frames.iter().all(|f| f.len() <= 14 + 1280));
    }

    #[test]
    fn arp_requests_are_broadcast_and_answered() {
        let frames = collect(config(Service::Arp, IpAddr::V4(GATEWAY_V4), IpAddr::from([192, 0, 2, 53]), 0));
        assert_eq!(&frames[0][..6], &BROADCAST_MAC);
        assert_eq!(&frames[1][..6], &GATEWAY_MAC);
        assert!(frames.iter().all(|f| ip_addresses(f).is_none()));
    }

    #[test]
    fn pings_count_their_sequence_numbers() {
        let frames = collect(config(Service::Ping, IpAddr::from([198, 18, 0, 7]), IpAddr::from([192, 0, 2, 80]), 0));
        let seqs: Vec<u16> = frames.iter().step_by(2).map(|f| u16::from_be_bytes([f[40], f[41]])).collect();
        assert!(seqs.windows(2).all(|pair| pair[1] == pair[0] + 1));
    }
}
