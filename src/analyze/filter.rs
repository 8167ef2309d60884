//! Alerts that are no attack of their own: a flood's echo, and a prefix's flood that one of
//! its hosts' alerts already covers.
//!
//! A victim under a UDP or ICMP flood often answers each packet (port unreachables, echo
//! replies, UDP answers), so its main attacker receives a flood of its own, from the victim.
//! Flagging that would name the victim as an attacker and put it on the blocklist.
//!
//! The check reads only the alerts, in stream order: an attack (other than SYN or SYN-ACK) on
//! X whose main source V sends at least half its packets is an echo when an attack on V is in
//! progress whose main source is X. Every alert of an echo (start, updates, end) is dropped.
//! Reading alerts rather than the analyzer's tables makes the check the same for one analyzer
//! and for `--threads` shards (where X and V may live in different shards): the shards' alerts
//! are merged in stream order first, then checked here. The alerts one packet raises are put
//! in one order first ([`in_canonical_order`]), so which of two attacks starting at the same
//! packet is the echo does not depend on how they were computed.
//!
//! An echo is dropped while the attack it answers lasts. When that attack ends and the echo
//! goes on, it is an attack of its own: its next update is reported as its start.
//!
//! Carpet bombing is a flood over a prefix that no single host of it crosses a threshold
//! with: an attack on a prefix (see `carpet`) that starts while an attack of the same class on
//! one of its hosts is in progress is held the same way, until that attack ends.

use super::{AttackEvent, AttackKind, EventKind};
use std::net::IpAddr;

/// An attack whose alerts pass, with its main source (one sending at least half its packets).
struct Reported {
    id: String,
    kind: AttackKind,
    victim: IpAddr,
    /// A host's attack (not a prefix's).
    on_host: bool,
    main_source: Option<IpAddr>,
}

/// An attack whose alerts are held back (an echo, or a covered prefix's flood), and the
/// attack it answers or that covers it (`None` once that ended).
struct Held {
    id: String,
    behind: Option<String>,
}

#[derive(Default)]
pub struct AlertFilter {
    reported: Vec<Reported>,
    held: Vec<Held>,
    /// Echoes found so far.
    pub dropped: u64,
    /// Attacks on prefixes held because an attack on one of their hosts covered them.
    pub covered: u64,
}

/// The one order for the alerts raised at one packet: by time, then attack id, then start,
/// update, end.
pub fn in_canonical_order(events: &mut [AttackEvent]) {
    events.sort_by(|a, b| order_key(a).cmp(&order_key(b)));
}

/// See [`in_canonical_order`].
pub fn order_key(e: &AttackEvent) -> (i64, &str, u8) {
    (e.timestamp_ns, &e.attack_id, e.event as u8)
}

/// The source sending at least half of an alert's packets.
fn main_source(e: &AttackEvent) -> Option<IpAddr> {
    let &(ip, count) = e.sources.top.first()?;
    (count.saturating_mul(2) >= e.packets).then_some(ip)
}

impl AlertFilter {
    /// Drops the held alerts (echoes, covered prefixes) from `events[from..]` (alerts in stream
    /// order).
    pub fn filter(&mut self, events: &mut Vec<AttackEvent>, from: usize) {
        let mut i = from;
        while i < events.len() {
            if self.passes(&mut events[i]) {
                i += 1;
            } else {
                events.remove(i);
            }
        }
    }

    /// Attacks in progress whose alerts are dropped (not to be counted as active).
    pub fn suppressed(&self) -> usize {
        self.held.len()
    }

    fn passes(&mut self, e: &mut AttackEvent) -> bool {
        if let Some(at) = self.held.iter().position(|held| held.id == e.attack_id) {
            let released = self.held[at].behind.is_none();
            if e.event == EventKind::End || released {
                self.held.swap_remove(at);
            }
            if !(released && e.event == EventKind::Update) {
                return false;
            }
            // The attack it answered is over and this one goes on: report it from now.
            e.event = EventKind::Start;
        }
        match e.event {
            EventKind::Start => {
                if let Some(host_attack) = self.covering(e) {
                    self.held.push(Held { id: e.attack_id.clone(), behind: Some(host_attack) });
                    self.covered += 1;
                    return false;
                }
                if let Some(answers) = self.answered(e) {
                    self.held.push(Held { id: e.attack_id.clone(), behind: Some(answers) });
                    self.dropped += 1;
                    return false;
                }
                self.reported.push(Reported {
                    id: e.attack_id.clone(),
                    kind: e.kind,
                    victim: e.victim,
                    on_host: e.victim_prefix.is_none(),
                    main_source: main_source(e),
                });
            }
            EventKind::Update => {
                if let Some(r) = self.reported.iter_mut().find(|r| r.id == e.attack_id) {
                    r.main_source = main_source(e);
                }
            }
            EventKind::End => {
                self.reported.retain(|r| r.id != e.attack_id);
                for held in &mut self.held {
                    if held.behind.as_deref() == Some(e.attack_id.as_str()) {
                        held.behind = None;
                    }
                }
            }
        }
        true
    }

    /// The attack on a host of `e`'s prefix (`e` a start on a prefix) of the same class, if one
    /// is in progress.
    fn covering(&self, e: &AttackEvent) -> Option<String> {
        e.victim_prefix?;
        let class = e.kind.class();
        self.reported.iter().find(|r| r.on_host && r.kind.class() == class && e.covers(r.victim)).map(|r| r.id.clone())
    }

    /// The attack `e` (a start) answers, if it is an echo.
    fn answered(&self, e: &AttackEvent) -> Option<String> {
        if matches!(e.kind, AttackKind::SynFlood | AttackKind::SynAckFlood) {
            return None;
        }
        let source = main_source(e)?;
        self.reported.iter().find(|r| r.victim == source && r.main_source == Some(e.victim)).map(|r| r.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::sample_event as event;

    /// An alert of attack `id` on `victim` whose main source sends `share` of 100 packets.
    fn alert(kind: EventKind, id: &str, victim: &str, source: &str, share: u64) -> AttackEvent {
        let mut e = event(kind);
        e.kind = AttackKind::UdpFlood;
        e.attack_id = id.into();
        e.victim = victim.parse().unwrap();
        e.packets = 100;
        e.sources.top = vec![(source.parse().unwrap(), share)];
        e
    }

    /// An alert of the flood from 192.0.2.3 on 192.0.2.2.
    fn flood(kind: EventKind) -> AttackEvent {
        alert(kind, "flood", "192.0.2.2", "192.0.2.3", 90)
    }

    /// An alert of 192.0.2.2's answers to its attacker, seen as an attack on 192.0.2.3.
    fn echo(kind: EventKind) -> AttackEvent {
        alert(kind, "echo", "192.0.2.3", "192.0.2.2", 95)
    }

    /// (attack id, event) of each alert.
    fn ids(events: &[AttackEvent]) -> Vec<(&str, EventKind)> {
        events.iter().map(|e| (e.attack_id.as_str(), e.event)).collect()
    }

    #[test]
    fn the_victim_answering_its_attacker_is_not_a_second_attack() {
        let mut f = AlertFilter::default();
        let mut events = vec![
            flood(EventKind::Start),
            // The attacker receives the victim's answers: every alert of that is dropped.
            echo(EventKind::Start),
            echo(EventKind::Update),
            flood(EventKind::Update),
            echo(EventKind::End),
            // A third host flooded by the victim is not answering anyone: reported.
            alert(EventKind::Start, "other", "192.0.2.9", "192.0.2.2", 95),
            flood(EventKind::End),
        ];
        f.filter(&mut events, 0);
        assert_eq!(
            ids(&events),
            [
                ("flood", EventKind::Start),
                ("flood", EventKind::Update),
                ("other", EventKind::Start),
                ("flood", EventKind::End)
            ]
        );
        assert_eq!(f.dropped, 1);
        assert_eq!(f.suppressed(), 0);
        // Once the attack has ended, the same traffic the other way is an attack of its own.
        let mut later = vec![alert(EventKind::Start, "later", "192.0.2.3", "192.0.2.2", 95)];
        f.filter(&mut later, 0);
        assert_eq!(later.len(), 1);
    }

    #[test]
    fn an_echo_that_outlasts_the_attack_it_answered_is_reported_from_its_next_update() {
        let mut f = AlertFilter::default();
        let mut events = vec![flood(EventKind::Start), echo(EventKind::Start), flood(EventKind::End)];
        f.filter(&mut events, 0);
        assert_eq!(f.suppressed(), 1);
        let mut later = vec![echo(EventKind::Update), echo(EventKind::End)];
        f.filter(&mut later, 0);
        assert_eq!(ids(&later), [("echo", EventKind::Start), ("echo", EventKind::End)]);
        assert_eq!(f.suppressed(), 0);
    }

    #[test]
    fn the_alerts_of_one_packet_have_one_order() {
        let mut a = vec![
            alert(EventKind::End, "b", "192.0.2.2", "192.0.2.3", 90),
            alert(EventKind::Start, "b", "192.0.2.2", "192.0.2.3", 90),
            alert(EventKind::Start, "a", "192.0.2.9", "192.0.2.3", 90),
        ];
        let mut b: Vec<AttackEvent> = a.iter().rev().cloned().collect();
        in_canonical_order(&mut a);
        in_canonical_order(&mut b);
        assert_eq!(a, b);
        assert_eq!(ids(&a), [("a", EventKind::Start), ("b", EventKind::Start), ("b", EventKind::End)]);
    }

    #[test]
    fn an_attack_without_a_main_source_or_on_syn_is_never_an_echo() {
        let mut f = AlertFilter::default();
        let mut spread = alert(EventKind::Start, "b", "192.0.2.3", "192.0.2.2", 40);
        spread.sources.top.push(("192.0.2.4".parse().unwrap(), 40));
        let mut syn = alert(EventKind::Start, "c", "192.0.2.3", "192.0.2.2", 95);
        syn.kind = AttackKind::SynFlood;
        let mut events = vec![alert(EventKind::Start, "a", "192.0.2.2", "192.0.2.3", 90), spread, syn];
        f.filter(&mut events, 0);
        assert_eq!(events.len(), 3);
    }

    #[test]
    fn a_prefix_flood_is_held_while_a_flood_of_the_same_class_on_one_of_its_hosts_lasts() {
        let mut f = AlertFilter::default();
        let carpet = |kind, id: &str, prefix: &str| {
            let mut e = alert(kind, id, prefix, "203.0.113.5", 10);
            e.victim_prefix = Some(24);
            e
        };
        let mut icmp_host = alert(EventKind::Start, "icmp", "198.51.100.9", "203.0.113.7", 10);
        icmp_host.kind = AttackKind::IcmpFlood;
        let mut events = vec![
            alert(EventKind::Start, "host", "198.51.100.7", "203.0.113.5", 10),
            icmp_host,
            // Same class (UDP), a host inside: held.
            carpet(EventKind::Start, "carpet", "198.51.100.0"),
            // Another prefix: reported.
            carpet(EventKind::Start, "elsewhere", "198.51.101.0"),
            carpet(EventKind::Update, "carpet", "198.51.100.0"),
            alert(EventKind::End, "host", "198.51.100.7", "203.0.113.5", 10),
        ];
        f.filter(&mut events, 0);
        assert_eq!(
            ids(&events),
            [
                ("host", EventKind::Start),
                ("icmp", EventKind::Start),
                ("elsewhere", EventKind::Start),
                ("host", EventKind::End)
            ]
        );
        assert_eq!((f.covered, f.dropped), (1, 0));
        // The host's flood is over and the prefix's goes on: reported from its next update.
        let mut later = vec![carpet(EventKind::Update, "carpet", "198.51.100.0")];
        f.filter(&mut later, 0);
        assert_eq!(ids(&later), [("carpet", EventKind::Start)]);
    }
}
