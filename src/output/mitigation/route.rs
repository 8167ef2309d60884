//! The routes a mitigation announces, written as ExaBGP's text API takes them: a FlowSpec rule
//! (RFC 8955) or an RTBH blackhole route (RFC 7999). A route's text (what follows `announce `
//! or `withdraw `) is its identity: two attacks calling for the same text share one route.

use crate::analyze::{AttackEvent, AttackKind};
use std::fmt::Write as _;
use std::net::IpAddr;

/// What a FlowSpec rule does with the traffic it matches.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Discard,
    /// At most this many bytes per second (the traffic-rate extended community).
    RateLimit(u32),
}

impl Action {
    /// A kind's action as the config writes it: `discard`, `rate-limit BYTES_PER_S`, or `none`
    /// (no FlowSpec rule for that kind).
    pub fn parse_setting(text: &str) -> Result<Option<Action>, String> {
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["discard"] => Ok(Some(Action::Discard)),
            ["none"] => Ok(None),
            ["rate-limit", n] => n
                .parse::<u32>()
                .ok()
                .filter(|n| *n > 0)
                .map(|n| Some(Action::RateLimit(n)))
                .ok_or_else(|| format!("`{text}`: the rate is bytes per second, 1 to {}", u32::MAX)),
            _ => Err(format!("`{text}`: must be discard, rate-limit BYTES_PER_S or none")),
        }
    }
}

/// Which sort of route: the label of its metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum RouteKind {
    /// FlowSpec toward the victim, from anywhere.
    FlowDestination,
    /// FlowSpec toward the victim from one offending source.
    FlowSource,
    /// The victim's blackhole route.
    Blackhole,
}

impl RouteKind {
    pub const ALL: [RouteKind; 3] = [RouteKind::FlowDestination, RouteKind::FlowSource, RouteKind::Blackhole];

    pub fn name(self) -> &'static str {
        match self {
            RouteKind::FlowDestination => "flowspec_destination",
            RouteKind::FlowSource => "flowspec_source",
            RouteKind::Blackhole => "rtbh",
        }
    }
}

/// The match of an attack's FlowSpec rules, without their source.
pub struct FlowMatch {
    destination: String,
    v6: bool,
    protocol: &'static str,
    source_port: Option<u16>,
    destination_port: Option<u16>,
    tcp_flag: Option<&'static str>,
    fragment: bool,
}

impl FlowMatch {
    /// What the attack is made of, toward its victim (a host, or a carpet's prefix).
    pub fn of(e: &AttackEvent) -> FlowMatch {
        let fragment = e.kind == AttackKind::FragmentFlood;
        FlowMatch {
            destination: destination(e),
            v6: e.victim.is_ipv6(),
            // A fragment flood is matched on fragments alone: later fragments carry no ports.
            protocol: if fragment { "" } else { e.protocol },
            source_port: if e.kind == AttackKind::Amplification { e.service_port } else { None },
            destination_port: match (e.kind, e.victim_ports.as_slice()) {
                (AttackKind::Amplification | AttackKind::FragmentFlood, _) => None,
                (_, [one]) => Some(*one),
                _ => None,
            },
            tcp_flag: match e.kind {
                AttackKind::SynFlood => Some("syn"),
                AttackKind::AckFlood => Some("ack"),
                AttackKind::RstFlood => Some("rst"),
                _ => None,
            },
            fragment,
        }
    }

    /// `flow route { match { ... } then { ... } }`, from `source` when given.
    pub fn rule(&self, source: Option<IpAddr>, action: Action) -> String {
        let mut m = String::new();
        if let Some(s) = source {
            let _ = write!(m, "source {s}/{}; ", if s.is_ipv6() { 128 } else { 32 });
        }
        let _ = write!(m, "destination {};", self.destination);
        if !self.protocol.is_empty() {
            let key = if self.v6 { "next-header" } else { "protocol" };
            // ExaBGP names tcp, udp and icmp; ICMPv6 it takes by number.
            let value = if self.protocol == "icmpv6" { "=58" } else { self.protocol };
            let _ = write!(m, " {key} {value};");
        }
        if let Some(p) = self.source_port {
            let _ = write!(m, " source-port ={p};");
        }
        if let Some(p) = self.destination_port {
            let _ = write!(m, " destination-port ={p};");
        }
        if let Some(flag) = self.tcp_flag {
            let _ = write!(m, " tcp-flags [ {flag} ];");
        }
        if self.fragment {
            m.push_str(" fragment [ is-fragment ];");
        }
        let then = match action {
            Action::RateLimit(n) => format!("rate-limit {n};"),
            Action::Discard => "discard;".to_string(),
        };
        format!("flow route {{ match {{ {m} }} then {{ {then} }} }}")
    }
}

/// The victim's host route or its carpet's prefix, as routes write it (`192.0.2.7/32`).
pub fn destination(e: &AttackEvent) -> String {
    let len = e.victim_prefix.unwrap_or(if e.victim.is_ipv6() { 128 } else { 32 });
    format!("{}/{len}", e.victim)
}

/// `route V/LEN next-hop H community [ ... ]`: the victim's blackhole.
pub fn blackhole(e: &AttackEvent, next_hop: &str, communities: &[String]) -> String {
    format!("route {} next-hop {next_hop} community [ {} ]", destination(e), communities.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::{sample_event as event, EventKind};

    #[test]
    fn each_kind_drops_what_its_flood_is_made_of_toward_the_victim_alone() {
        let amplification = event(EventKind::Start);
        assert_eq!(
            FlowMatch::of(&amplification).rule(None, Action::Discard),
            "flow route { match { destination 2001:db8::7/128; next-header udp; source-port =53; } then { discard; } }"
        );
        // isakmp answers from 500 and 4500: the rule takes the port the flood came from.
        let isakmp = AttackEvent { service: Some("isakmp"), service_port: Some(4500), ..amplification };
        assert!(FlowMatch::of(&isakmp).rule(None, Action::Discard).contains("source-port =4500;"));
        let syn = AttackEvent {
            kind: AttackKind::SynFlood,
            victim: "192.0.2.1".parse().unwrap(),
            protocol: "tcp",
            service: None,
            service_port: None,
            victim_ports: vec![80, 443],
            ..event(EventKind::Start)
        };
        assert_eq!(
            FlowMatch::of(&syn).rule(Some("203.0.113.9".parse().unwrap()), Action::RateLimit(125_000)),
            "flow route { match { source 203.0.113.9/32; destination 192.0.2.1/32; protocol tcp; tcp-flags [ syn ]; } then { rate-limit 125000; } }"
        );
        let udp = AttackEvent { kind: AttackKind::UdpFlood, protocol: "udp", victim_ports: vec![9], ..syn };
        assert!(FlowMatch::of(&udp).rule(None, Action::Discard).contains("protocol udp; destination-port =9; }"));
        // Later fragments carry no ports: a fragment flood's rule names none.
        let fragments = AttackEvent { kind: AttackKind::FragmentFlood, ..udp.clone() };
        assert!(FlowMatch::of(&fragments)
            .rule(None, Action::Discard)
            .contains("{ destination 192.0.2.1/32; fragment [ is-fragment ]; }"));
        let icmpv6 = AttackEvent {
            kind: AttackKind::IcmpFlood,
            victim: "2001:db8::1".parse().unwrap(),
            protocol: "icmpv6",
            victim_ports: vec![],
            ..udp.clone()
        };
        assert!(FlowMatch::of(&icmpv6)
            .rule(None, Action::Discard)
            .contains("{ destination 2001:db8::1/128; next-header =58; }"));
        let carpet = AttackEvent { victim: "198.51.100.0".parse().unwrap(), victim_prefix: Some(24), ..udp };
        assert!(FlowMatch::of(&carpet).rule(None, Action::Discard).contains("destination 198.51.100.0/24;"));
        assert_eq!(
            blackhole(&carpet, "self", &["65535:666".into(), "no-export".into()]),
            "route 198.51.100.0/24 next-hop self community [ 65535:666 no-export ]"
        );
    }

    #[test]
    fn actions_are_read_as_written_and_refused_otherwise() {
        assert_eq!(Action::parse_setting("discard"), Ok(Some(Action::Discard)));
        assert_eq!(Action::parse_setting(" rate-limit  9600 "), Ok(Some(Action::RateLimit(9600))));
        assert_eq!(Action::parse_setting("none"), Ok(None));
        for bad in ["rate-limit", "rate-limit 0", "rate-limit -5", "drop", "discard now"] {
            assert!(Action::parse_setting(bad).is_err(), "{bad}");
        }
    }
}
