//! The decision at a class's threshold: is this window of traffic toward the victim a flood,
//! of which kind, and why. One verdict per traffic class; each reads the victim's window of
//! counters and the settings, and writes the reason the alert gives.

use super::services::{self, ServiceTable};
use super::victims::cell;
use super::{fmt_int, AttackKind, Class, DetectionSettings};

/// A flood: its kind, the reason the alert gives, and for amplification the reflector service.
pub(super) struct Verdict {
    pub kind: AttackKind,
    pub reason: String,
    pub service: Option<u8>,
}

/// What a verdict reads: one victim's window, for the class being decided.
pub(super) struct Window<'a> {
    /// The victim's window sums, indexed by [`cell`].
    pub sums: &'a [u64],
    /// The class's packets in the window, and their rate.
    pub count: u64,
    pub pps: f64,
    /// The window's length.
    pub secs: f64,
    /// Each kind's threshold for this victim, packets/s.
    pub thresholds: [f64; AttackKind::ALL.len()],
    pub settings: &'a DetectionSettings,
    pub evidence: Evidence,
}

/// What the window's packets are known from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    /// Every packet, captured.
    Packets,
    /// Packets sampled by flow telemetry (sFlow): a handshake or a connection is seen only
    /// where each of its packets happened to be sampled, so neither can be judged.
    Sampled,
    /// Flow records (NetFlow, IPFIX): a flow's flags are all its packets' together, with no
    /// sequence numbers. A flow of SYNs without an ACK never completed its handshake; which
    /// ACKs belong to a connection cannot be judged.
    Flows,
}

impl Window<'_> {
    fn threshold(&self, kind: AttackKind) -> f64 {
        self.thresholds[kind as usize]
    }

    /// A counter of the window as a share of the class's packets.
    fn share(&self, counter: usize) -> f64 {
        self.sums[counter] as f64 / self.count.max(1) as f64
    }

    /// `WHAT rate N pps over W s >= threshold T pps`, the start of every reason.
    fn over_threshold(&self, what: &str, threshold: f64) -> String {
        format!("{what} rate {} pps over {} s >= threshold {} pps", fmt_int(self.pps), self.secs, fmt_int(threshold))
    }

    fn flood(&self, kind: AttackKind, reason: String) -> Option<Verdict> {
        Some(Verdict { kind, reason, service: None })
    }
}

/// SYNs: a flood unless the victim's answers show most of them completing a handshake.
pub(super) fn syn(w: &Window) -> Option<Verdict> {
    let th = w.threshold(AttackKind::SynFlood);
    let answered = w.sums[cell::ANSWERS] > 0 && w.evidence == Evidence::Packets;
    let completed = w.share(cell::COMPLETIONS);
    if w.pps < th || (answered && completed > 1.0 - w.settings.syn_unanswered_ratio as f64) {
        return None;
    }
    let why = if w.evidence == Evidence::Sampled {
        "; handshakes cannot be followed in sampled telemetry, so the rate alone decides".to_string()
    } else if w.evidence == Evidence::Flows {
        "; counted from flows of SYNs with no ACK: connections whose handshake never completed".to_string()
    } else if answered {
        format!("; the victim answers, yet only {:.1} % of SYNs completed a handshake", completed * 100.0)
    } else {
        "; the capture shows no answers from the victim, so the rate alone decides".to_string()
    };
    w.flood(AttackKind::SynFlood, format!("{}{why}", w.over_threshold("SYN", th)))
}

/// SYN-ACKs: a flood when most are not answers to SYNs the victim sent.
pub(super) fn synack(w: &Window) -> Option<Verdict> {
    let th = w.threshold(AttackKind::SynAckFlood);
    let unsolicited = 1.0 - w.share(cell::SYNS_SENT).min(1.0);
    if w.pps < th || unsolicited < w.settings.synack_unsolicited_ratio as f64 {
        return None;
    }
    let reason = format!(
        "{}; {:.0} % were not answers to SYNs the victim sent",
        w.over_threshold("SYN-ACK", th),
        unsolicited * 100.0
    );
    w.flood(AttackKind::SynAckFlood, reason)
}

/// UDP: amplification when one reflector service (`dominant`: its index and share of the
/// packets) sends most of it, else a UDP flood.
pub(super) fn udp(w: &Window, dominant: Option<(u8, f64)>) -> Option<Verdict> {
    let amp_th = w.threshold(AttackKind::Amplification);
    let udp_th = w.threshold(AttackKind::UdpFlood);
    match dominant {
        Some((svc, share)) if share >= w.settings.amplification_share as f64 && w.pps >= amp_th => {
            let reason = format!(
                "{}, {:.0} % of it from source port {} ({}), fragments included",
                w.over_threshold("UDP", amp_th),
                share * 100.0,
                services::REFLECTORS[svc as usize].1,
                ServiceTable::name(svc)
            );
            Some(Verdict { kind: AttackKind::Amplification, reason, service: Some(svc) })
        }
        _ if w.pps >= udp_th => w.flood(
            AttackKind::UdpFlood,
            format!("{}, no single reflector port dominates", w.over_threshold("UDP", udp_th)),
        ),
        _ => None,
    }
}

/// ICMP: a flood unless it is mostly echo replies to pings the victim sent itself
/// (unsolicited replies, smurf reflection, are a flood).
pub(super) fn icmp(w: &Window) -> Option<Verdict> {
    let th = w.threshold(AttackKind::IcmpFlood);
    let replies = w.sums[cell::ECHO_REPLIES] as f64;
    let answers = replies >= w.count as f64 / 2.0 && w.sums[cell::ECHO_REQUESTS_SENT] as f64 >= replies / 2.0;
    if w.pps < th || answers {
        return None;
    }
    w.flood(AttackKind::IcmpFlood, w.over_threshold("ICMP", th))
}

/// IP fragments: a flood unless an amplification alert on the victim counts them
/// (`udp_explains`: the fragments are reflected UDP's).
pub(super) fn fragments(w: &Window, udp_explains: bool) -> Option<Verdict> {
    let th = w.threshold(AttackKind::FragmentFlood);
    if w.pps < th || udp_explains {
        return None;
    }
    w.flood(AttackKind::FragmentFlood, w.over_threshold("IP fragment", th))
}

/// ACKs or RSTs: a flood when most come from peers the victim has no connection with.
pub(super) fn from_strangers(w: &Window, class: Class) -> Option<Verdict> {
    let (kind, what) =
        if class == Class::Ack { (AttackKind::AckFlood, "TCP ACK") } else { (AttackKind::RstFlood, "TCP RST") };
    let th = w.threshold(kind);
    // Segments that left the back-fill ring before the watch began (and ACKs before their own
    // admission) were not judged: they count as a connection's.
    let strangers = class.strangers_cell().map_or(0.0, |counter| w.share(counter));
    if w.evidence != Evidence::Packets {
        if w.pps < th {
            return None;
        }
        let source = if w.evidence == Evidence::Flows { "flow records" } else { "sampled telemetry" };
        let reason = format!(
            "{}; connections cannot be followed in {source}, so the rate alone decides",
            w.over_threshold(what, th)
        );
        return w.flood(kind, reason);
    }
    if w.pps < th || strangers < w.settings.tcp_stranger_ratio as f64 {
        return None;
    }
    let reason = format!(
        "{}; {:.0} % from peers the victim has no connection with",
        w.over_threshold(what, th),
        strangers * 100.0
    );
    w.flood(kind, reason)
}

/// TCP segments with none of SYN, ACK and RST (null, FIN, xmas scans and floods).
pub(super) fn other_tcp(w: &Window) -> Option<Verdict> {
    let th = w.threshold(AttackKind::TcpFlood);
    if w.pps < th {
        return None;
    }
    let reason = format!(
        "rate of TCP segments with none of SYN, ACK and RST (null, FIN, xmas) {} pps over {} s >= threshold {} pps",
        fmt_int(w.pps),
        w.secs,
        fmt_int(th)
    );
    w.flood(AttackKind::TcpFlood, reason)
}
