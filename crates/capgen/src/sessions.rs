//! Complete TCP conversations: handshake, one request, a response of one or many segments with
//! the client's ACKs, and a close by FIN exchange or by the client's RST.
//!
//! The capture point is next to the server: a server packet follows the client packet it answers
//! by a few tens of microseconds, a client packet follows the server packet it answers by one
//! round-trip time. Web browsing, the flash crowd and the bulk download are all this source with
//! different settings.

use super::frames::{build_ip_frame, Ip, Tcp, Transport, TCP_ACK, TCP_FIN, TCP_PSH, TCP_RST, TCP_SYN};
use super::hosts::{ethernet_between, Host};
use super::payloads::filler;
use super::rng::Rng;
use super::traffic::{gap_ns, EventQueue, Role, TrafficSource, Window};

/// Window advertised by clients (Linux's default for a 1460-byte MSS, unscaled).
const CLIENT_WINDOW: u16 = 64_240;
/// Window advertised by servers.
const SERVER_WINDOW: u16 = 65_160;
/// Lowest and highest ephemeral client port (Linux's default range).
const EPHEMERAL_PORTS: (u16, u16) = (32_768, 60_999);

/// When conversations start.
#[derive(Clone, Copy, Debug)]
pub enum Arrivals {
    /// New conversations at this average rate (jittered) throughout the window.
    PerSecond { rate: u32, window: Window },
    /// Exactly one conversation, starting at this time.
    Once { at: i64 },
}

/// The shape of the conversations one source produces.
#[derive(Clone, Debug)]
pub struct SessionsConfig {
    pub clients: Vec<Host>,
    pub servers: Vec<Host>,
    pub server_port: u16,
    pub arrivals: Arrivals,
    /// Bytes in the client's request, lowest and highest.
    pub request_bytes: (u16, u16),
    /// Bytes in the server's response, lowest and highest.
    pub response_bytes: (u32, u32),
    /// Gap between consecutive response segments (the server's pacing).
    pub segment_gap_ns: i64,
    /// Round-trip time between the capture point and the clients, lowest and highest.
    pub rtt_ns: (i64, i64),
    /// Share of conversations the client aborts with a RST instead of a FIN exchange, per mille.
    pub rst_per_mille: u32,
}

/// One conversation, carried by each of its scheduled packets.
#[derive(Clone, Copy, Debug)]
struct Conversation {
    client: Host,
    client_port: u16,
    server: Host,
    server_port: u16,
    client_isn: u32,
    server_isn: u32,
    /// IP ID of the client's first packet; later ones count up from it.
    client_ip_id: u16,
    /// IP ID of the server's first data segment; later ones count up from it.
    server_ip_id: u16,
    rtt_ns: i64,
    request_len: u16,
    response_len: u32,
    mss: u16,
    close_with_rst: bool,
}

impl Conversation {
    fn segments(&self) -> u32 {
        self.response_len.div_ceil(u32::from(self.mss))
    }

    /// Payload bytes of response segment `index`.
    fn segment_len(&self, index: u32) -> u32 {
        let sent_before = index * u32::from(self.mss);
        (self.response_len - sent_before).min(u32::from(self.mss))
    }

    /// The client's sequence number after its request.
    fn client_after_request(&self) -> u32 {
        self.client_isn.wrapping_add(1).wrapping_add(u32::from(self.request_len))
    }

    /// The server's sequence number after `bytes` of response.
    fn server_after(&self, bytes: u32) -> u32 {
        self.server_isn.wrapping_add(1).wrapping_add(bytes)
    }

    /// How many separate ACKs the client sends during the response: one for every second
    /// segment, except that the last segment is acknowledged by the client's FIN or RST.
    fn client_data_acks(&self) -> u32 {
        (self.segments().saturating_sub(1)) / 2
    }
}

/// The packets of a conversation, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Syn,
    SynAck,
    HandshakeAck,
    Request,
    /// Response segment with this index.
    Response(u32),
    /// The client's ACK of response segments up to and including this index.
    DataAck(u32),
    ClientFin,
    ServerFin,
    LastAck,
    ClientRst,
}

#[derive(Clone, Copy, Debug)]
enum Event {
    /// A new conversation starts (its SYN is the frame).
    Arrival,
    Packet(Conversation, Step),
}

/// The header fields of one TCP packet of a conversation.
struct Segment {
    from_client: bool,
    seq: u32,
    ack: u32,
    flags: u8,
    payload_len: usize,
    ip_id: u16,
}

/// A source of complete TCP conversations.
pub struct TcpSessions {
    config: SessionsConfig,
    rng: Rng,
    queue: EventQueue<Event>,
    /// Next ephemeral port of each client: clients count up, so no 4-tuple is reused while open.
    next_client_port: Vec<u16>,
}

impl TcpSessions {
    pub fn new(config: SessionsConfig, mut rng: Rng) -> Self {
        let mut queue = EventQueue::default();
        let first = match config.arrivals {
            Arrivals::PerSecond { window, .. } => window.start,
            Arrivals::Once { at } => at,
        };
        queue.push(first, Event::Arrival);
        let next_client_port = config
            .clients
            .iter()
            .map(|_| rng.between(u64::from(EPHEMERAL_PORTS.0), u64::from(EPHEMERAL_PORTS.1)) as u16)
            .collect();
        TcpSessions { config, rng, queue, next_client_port }
    }

    /// Draws a new conversation.
    fn open(&mut self) -> Conversation {
        let config = &self.config;
        let client_index = self.rng.index(config.clients.len());
        let client = config.clients[client_index];
        let port = &mut self.next_client_port[client_index];
        let client_port = *port;
        *port = if *port >= EPHEMERAL_PORTS.1 { EPHEMERAL_PORTS.0 } else { *port + 1 };
        let server = config.servers[self.rng.index(config.servers.len())];
        let mss = if client.addr.is_ipv4() { 1460 } else { 1440 };
        Conversation {
            client,
            client_port,
            server,
            server_port: config.server_port,
            client_isn: self.rng.next_u32(),
            server_isn: self.rng.next_u32(),
            client_ip_id: self.rng.next_u16(),
            server_ip_id: self.rng.next_u16(),
            rtt_ns: self.rng.between(config.rtt_ns.0 as u64, config.rtt_ns.1 as u64) as i64,
            request_len: self.rng.between(u64::from(config.request_bytes.0), u64::from(config.request_bytes.1)) as u16,
            response_len: self.rng.between(u64::from(config.response_bytes.0), u64::from(config.response_bytes.1))
                as u32,
            mss,
            close_with_rst: self.rng.chance_per_mille(config.rst_per_mille),
        }
    }

    /// When the next conversation starts, if still inside the arrival window.
    fn next_arrival(&mut self, now: i64) -> Option<i64> {
        match self.config.arrivals {
            Arrivals::PerSecond { rate, window } => window.admit(now + self.rng.jittered(gap_ns(rate))),
            Arrivals::Once { .. } => None,
        }
    }

    /// The server's reaction time to a client packet, as seen next to the server.
    fn server_delay(&mut self) -> i64 {
        self.rng.between(20_000, 80_000) as i64
    }

    /// Schedules what follows `step` (sent at `now`).
    fn schedule_after(&mut self, now: i64, conv: Conversation, step: Step) {
        let last_segment = conv.segments().saturating_sub(1);
        let next = match step {
            Step::Syn => Some((now + self.server_delay(), Step::SynAck)),
            Step::SynAck => Some((now + conv.rtt_ns, Step::HandshakeAck)),
            Step::HandshakeAck => Some((now + self.rng.between(5_000, 60_000) as i64, Step::Request)),
            Step::Request => Some((now + self.rng.between(100_000, 1_500_000) as i64, Step::Response(0))),
            Step::Response(index) => {
                if index % 2 == 1 && index < last_segment {
                    self.queue.push(now + conv.rtt_ns, Event::Packet(conv, Step::DataAck(index)));
                }
                if index < last_segment {
                    Some((now + self.config.segment_gap_ns, Step::Response(index + 1)))
                } else {
                    let close = if conv.close_with_rst { Step::ClientRst } else { Step::ClientFin };
                    Some((now + conv.rtt_ns + self.rng.between(50_000, 2_000_000) as i64, close))
                }
            }
            Step::ClientFin => Some((now + self.server_delay(), Step::ServerFin)),
            Step::ServerFin => Some((now + conv.rtt_ns, Step::LastAck)),
            Step::DataAck(_) | Step::LastAck | Step::ClientRst => None,
        };
        if let Some((time, step)) = next {
            self.queue.push(time, Event::Packet(conv, step));
        }
    }

    /// Builds the frame of `step`.
    fn build(&self, conv: &Conversation, step: Step, frame: &mut Vec<u8>) {
        let segment = segment_of(conv, step);
        let (src, dst, src_port, dst_port, window) = if segment.from_client {
            (conv.client, conv.server, conv.client_port, conv.server_port, CLIENT_WINDOW)
        } else {
            (conv.server, conv.client, conv.server_port, conv.client_port, SERVER_WINDOW)
        };
        let mss = (segment.flags & TCP_SYN != 0).then_some(conv.mss);
        let tcp = Tcp { src_port, dst_port, seq: segment.seq, ack: segment.ack, flags: segment.flags, window, mss };
        if let Some(ip) = Ip::between(src.addr, dst.addr, src.ttl, segment.ip_id) {
            let ethernet = ethernet_between(src.addr, dst.addr);
            build_ip_frame(frame, &ethernet, &ip, &Transport::Tcp(tcp), filler(segment.payload_len));
        }
    }
}

/// Sequence numbers, flags, payload size and IP ID of `step` in `conv`.
fn segment_of(conv: &Conversation, step: Step) -> Segment {
    let request_end = conv.client_after_request();
    let response_end = conv.server_after(conv.response_len);
    let client_ip_id = |nth: u32| conv.client_ip_id.wrapping_add(nth as u16);
    let server_ip_id = |nth: u32| conv.server_ip_id.wrapping_add(nth as u16);
    let client =
        |seq, ack, flags, payload_len, ip_id| Segment { from_client: true, seq, ack, flags, payload_len, ip_id };
    let server =
        |seq, ack, flags, payload_len, ip_id| Segment { from_client: false, seq, ack, flags, payload_len, ip_id };
    let closing_nth = 3 + conv.client_data_acks();
    match step {
        Step::Syn => client(conv.client_isn, 0, TCP_SYN, 0, client_ip_id(0)),
        // Linux sends SYN-ACKs with IP ID 0.
        Step::SynAck => server(conv.server_isn, conv.client_isn.wrapping_add(1), TCP_SYN | TCP_ACK, 0, 0),
        Step::HandshakeAck => {
            client(conv.client_isn.wrapping_add(1), conv.server_after(0), TCP_ACK, 0, client_ip_id(1))
        }
        Step::Request => {
            let len = usize::from(conv.request_len);
            client(conv.client_isn.wrapping_add(1), conv.server_after(0), TCP_PSH | TCP_ACK, len, client_ip_id(2))
        }
        Step::Response(index) => {
            let sent_before = index * u32::from(conv.mss);
            let last = index + 1 == conv.segments();
            let flags = if last { TCP_PSH | TCP_ACK } else { TCP_ACK };
            let len = conv.segment_len(index) as usize;
            server(conv.server_after(sent_before), request_end, flags, len, server_ip_id(index))
        }
        Step::DataAck(index) => {
            let acked = (index + 1) * u32::from(conv.mss);
            client(request_end, conv.server_after(acked), TCP_ACK, 0, client_ip_id(3 + index / 2))
        }
        Step::ClientFin => client(request_end, response_end, TCP_FIN | TCP_ACK, 0, client_ip_id(closing_nth)),
        Step::ClientRst => client(request_end, response_end, TCP_RST | TCP_ACK, 0, client_ip_id(closing_nth)),
        Step::ServerFin => {
            let ack = request_end.wrapping_add(1);
            server(response_end, ack, TCP_FIN | TCP_ACK, 0, server_ip_id(conv.segments()))
        }
        Step::LastAck => {
            client(request_end.wrapping_add(1), response_end.wrapping_add(1), TCP_ACK, 0, client_ip_id(closing_nth + 1))
        }
    }
}

impl TrafficSource for TcpSessions {
    fn next_time(&self) -> Option<i64> {
        self.queue.next_time()
    }

    fn next_frame(&mut self, frame: &mut Vec<u8>) -> Option<(i64, Role)> {
        let (now, event) = self.queue.pop()?;
        let (conv, step) = match event {
            Event::Arrival => {
                if let Some(next) = self.next_arrival(now) {
                    self.queue.push(next, Event::Arrival);
                }
                (self.open(), Step::Syn)
            }
            Event::Packet(conv, step) => (conv, step),
        };
        self.build(&conv, step, frame);
        self.schedule_after(now, conv, step);
        Some((now, Role::Background))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frames::ip_addresses;
    use crate::traffic::at_ms;
    use std::net::IpAddr;

    fn config(arrivals: Arrivals, response_bytes: (u32, u32), rst_per_mille: u32) -> SessionsConfig {
        SessionsConfig {
            clients: vec![Host { addr: IpAddr::from([100, 64, 0, 9]), ttl: 50 }],
            servers: vec![Host::local(IpAddr::from([198, 51, 100, 80]))],
            server_port: 443,
            arrivals,
            request_bytes: (100, 100),
            response_bytes,
            segment_gap_ns: 10_000,
            rtt_ns: (1_000_000, 1_000_000),
            rst_per_mille,
        }
    }

    /// (flags, seq, ack, payload length, from the client) of every frame the source produces.
    fn run(mut source: TcpSessions) -> Vec<(u8, u32, u32, usize, bool)> {
        let mut frame = Vec::new();
        let mut out = Vec::new();
        let mut last_time = i64::MIN;
        while let Some((time, _)) = source.next_frame(&mut frame) {
            assert!(time >= last_time);
            last_time = time;
            let tcp = &frame[34..];
            let seq = u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]);
            let ack = u32::from_be_bytes([tcp[8], tcp[9], tcp[10], tcp[11]]);
            let header_len = usize::from(tcp[12] >> 4) * 4;
            let from_client = ip_addresses(&frame).map(|(src, _)| src) == Some(IpAddr::from([100, 64, 0, 9]));
            out.push((tcp[13], seq, ack, tcp.len() - header_len, from_client));
        }
        out
    }

    #[test]
    fn a_fin_closed_conversation_is_consistent() {
        let packets = run(TcpSessions::new(config(Arrivals::Once { at: at_ms(0) }, (3000, 3000), 0), Rng::new(1)));
        let flags: Vec<u8> = packets.iter().map(|p| p.0).collect();
        let syn_ack = TCP_SYN | TCP_ACK;
        let data = TCP_ACK;
        let push = TCP_PSH | TCP_ACK;
        let fin = TCP_FIN | TCP_ACK;
        // SYN, SYN-ACK, ACK, request, 3 segments, the ACK of the first two, FIN, FIN, ACK.
        assert_eq!(flags, vec![TCP_SYN, syn_ack, TCP_ACK, push, data, data, push, TCP_ACK, fin, fin, TCP_ACK]);
        let (_, client_isn, _, _, _) = packets[0];
        let (_, server_isn, ack, _, _) = packets[1];
        assert_eq!(ack, client_isn.wrapping_add(1));
        assert_eq!(packets[2].2, server_isn.wrapping_add(1));
        assert_eq!(packets[3].3, 100);
        let response: usize = packets.iter().filter(|p| !p.4).map(|p| p.3).sum();
        assert_eq!(response, 3000);
        // The client's FIN acknowledges the whole response.
        assert_eq!(packets[8].2, server_isn.wrapping_add(1 + 3000));
        // The last ACK acknowledges the server's FIN.
        assert_eq!(packets[10].2, server_isn.wrapping_add(1 + 3000 + 1));
    }

    #[test]
    fn rst_closed_conversations_end_with_the_clients_rst() {
        let packets = run(TcpSessions::new(config(Arrivals::Once { at: at_ms(0) }, (500, 500), 1000), Rng::new(2)));
        assert_eq!(packets.len(), 6);
        assert_eq!(packets[5].0, TCP_RST | TCP_ACK);
        assert!(packets[5].4);
    }

    #[test]
    fn arrivals_follow_the_rate() {
        let arrivals = Arrivals::PerSecond { rate: 100, window: Window::ms(0, 1000) };
        let packets = run(TcpSessions::new(config(arrivals, (1, 1), 0), Rng::new(3)));
        let syns = packets.iter().filter(|p| p.0 == TCP_SYN).count();
        assert!((90..=110).contains(&syns), "{syns}");
    }
}
