//! Mitigation upstream (first slice): a BGP FlowSpec rule (RFC 8955) per attack, as ExaBGP
//! text-API lines appended to a file (`--exabgp FILE`) that an ExaBGP `process` follows
//! (`run /usr/bin/tail -n0 -F FILE;`). The rule drops what the attack is made of, toward the
//! victim only: its destination, protocol, and the amplification's source port, the flood's
//! TCP flag or its one victim port. Announced at `attack_start`, withdrawn at `attack_end`
//! and at shutdown; a rule two attacks share is announced once and withdrawn with the last.
//!
//! Rails: no rule for a destination prefix wider than /24 (IPv4) or /64 (IPv6), at most
//! [`MAX_RULES`] at once (a new one beyond takes the place of the least busy, withdrawn and
//! logged), and no source rule at all in this slice (spoofed floods' sources are forged).

use crate::analyze::{AttackEvent, AttackKind, EventKind};
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::net::IpAddr;
use std::path::Path;

/// Rules announced at most at once.
pub const MAX_RULES: usize = 100;
/// Widest destinations a rule may match: a carpet bombing's /24 or /64, never more.
const WIDEST_V4: u8 = 24;
const WIDEST_V6: u8 = 64;

/// What a FlowSpec rule matches (its `then` is always `discard` in this slice).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct FlowRule {
    destination: String,
    v6: bool,
    protocol: &'static str,
    source_port: Option<u16>,
    destination_port: Option<u16>,
    tcp_flag: Option<&'static str>,
    fragment: bool,
}

impl FlowRule {
    /// The rule for an attack, or why there is none.
    pub fn of(e: &AttackEvent) -> Result<FlowRule, String> {
        let v6 = matches!(e.victim, IpAddr::V6(_));
        let len = e.victim_prefix.unwrap_or(if v6 { 128 } else { 32 });
        if len < if v6 { WIDEST_V6 } else { WIDEST_V4 } {
            return Err(format!(
                "destination {} is wider than /{}",
                e.victim_text(),
                if v6 { WIDEST_V6 } else { WIDEST_V4 }
            ));
        }
        let tcp_flag = match e.kind {
            AttackKind::SynFlood => Some("syn"),
            AttackKind::AckFlood => Some("ack"),
            AttackKind::RstFlood => Some("rst"),
            _ => None,
        };
        let source_port = match e.kind {
            AttackKind::Amplification => e
                .service
                .and_then(|s| crate::analyze::services::REFLECTORS.iter().find(|(name, _)| *name == s))
                .map(|(_, port)| *port),
            _ => None,
        };
        let destination_port = match (e.kind, e.victim_ports.as_slice()) {
            (AttackKind::Amplification, _) => None,
            (_, [one]) => Some(*one),
            _ => None,
        };
        let fragment = e.kind == AttackKind::FragmentFlood;
        // A fragment flood is matched on fragments alone: later fragments carry no ports.
        let protocol = if fragment { "" } else { e.protocol };
        // The victim is a host, or the network address of its prefix.
        let destination = format!("{}/{len}", e.victim);
        Ok(FlowRule { destination, v6, protocol, source_port, destination_port, tcp_flag, fragment })
    }

    /// `{ match { ... } then { discard; } }`, as ExaBGP's `flow route` takes it.
    fn body(&self) -> String {
        let mut m = format!("destination {};", self.destination);
        if !self.protocol.is_empty() {
            let key = if self.v6 { "next-header" } else { "protocol" };
            m.push_str(&format!(" {key} {};", self.protocol));
        }
        if let Some(p) = self.source_port {
            m.push_str(&format!(" source-port ={p};"));
        }
        if let Some(p) = self.destination_port {
            m.push_str(&format!(" destination-port ={p};"));
        }
        if let Some(flag) = self.tcp_flag {
            m.push_str(&format!(" tcp-flags [ {flag} ];"));
        }
        if self.fragment {
            m.push_str(" fragment [ is-fragment ];");
        }
        format!("{{ match {{ {m} }} then {{ discard; }} }}")
    }

    pub fn announce(&self) -> String {
        format!("announce flow route {}", self.body())
    }

    pub fn withdraw(&self) -> String {
        format!("withdraw flow route {}", self.body())
    }
}

struct Announced {
    /// The attacks in progress it stands for.
    attacks: Vec<String>,
    /// Their latest rate: the least busy rule goes first when [`MAX_RULES`] are out.
    pps: u64,
}

/// The rules announced, and the file ExaBGP reads them from.
pub struct ExabgpWriter {
    out: File,
    announced: BTreeMap<FlowRule, Announced>,
    pub announcements: u64,
    pub withdrawals: u64,
    /// Attacks no rule was announced for (a rail refused it).
    pub refused: u64,
}

impl ExabgpWriter {
    pub fn open(path: &Path) -> io::Result<ExabgpWriter> {
        let out = OpenOptions::new().create(true).append(true).open(path)?;
        Ok(ExabgpWriter { out, announced: BTreeMap::new(), announcements: 0, withdrawals: 0, refused: 0 })
    }

    pub fn event(&mut self, e: &AttackEvent) -> io::Result<()> {
        let rule = match FlowRule::of(e) {
            Ok(rule) => rule,
            Err(why) => {
                if e.event == EventKind::Start {
                    self.refused += 1;
                    tracing::warn!(attack_id = e.attack_id, "no FlowSpec rule: {why}");
                }
                return Ok(());
            }
        };
        match e.event {
            EventKind::Start | EventKind::Update => self.hold(rule, e),
            EventKind::End => self.release(&rule, &e.attack_id),
        }
    }

    fn hold(&mut self, rule: FlowRule, e: &AttackEvent) -> io::Result<()> {
        if let Some(a) = self.announced.get_mut(&rule) {
            if !a.attacks.contains(&e.attack_id) {
                a.attacks.push(e.attack_id.clone());
            }
            a.pps = e.pps;
            return Ok(());
        }
        if self.announced.len() >= MAX_RULES {
            let least = self.announced.iter().min_by_key(|(_, a)| a.pps).map(|(r, a)| (r.clone(), a.pps));
            match least {
                Some((gone, pps)) if pps < e.pps => {
                    tracing::warn!(
                        rule = gone.announce(),
                        "FlowSpec rule withdrawn for a busier one: {MAX_RULES} at most"
                    );
                    self.announced.remove(&gone);
                    self.send(&gone.withdraw())?;
                    self.withdrawals += 1;
                }
                _ => {
                    if e.event == EventKind::Start {
                        self.refused += 1;
                        tracing::warn!(attack_id = e.attack_id, "no FlowSpec rule: {MAX_RULES} busier ones announced");
                    }
                    return Ok(());
                }
            }
        }
        self.send(&rule.announce())?;
        self.announcements += 1;
        self.announced.insert(rule, Announced { attacks: vec![e.attack_id.clone()], pps: e.pps });
        Ok(())
    }

    fn release(&mut self, rule: &FlowRule, attack_id: &str) -> io::Result<()> {
        let Some(a) = self.announced.get_mut(rule) else { return Ok(()) };
        a.attacks.retain(|id| id != attack_id);
        if a.attacks.is_empty() {
            self.announced.remove(rule);
            self.send(&rule.withdraw())?;
            self.withdrawals += 1;
        }
        Ok(())
    }

    /// Withdraws every rule (shutdown).
    pub fn finish(&mut self) -> io::Result<()> {
        for rule in std::mem::take(&mut self.announced).into_keys() {
            self.send(&rule.withdraw())?;
            self.withdrawals += 1;
        }
        Ok(())
    }

    fn send(&mut self, line: &str) -> io::Result<()> {
        writeln!(self.out, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analyze::sample_event as event;

    fn lines(path: &Path) -> Vec<String> {
        std::fs::read_to_string(path).unwrap().lines().map(str::to_string).collect()
    }

    fn scratch(name: &str) -> std::path::PathBuf {
        let path = std::env::temp_dir().join(format!("floodwatch-exabgp-{name}-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    #[test]
    fn each_kind_drops_what_its_flood_is_made_of_toward_the_victim_alone() {
        let amplification = event(EventKind::Start);
        assert_eq!(
            FlowRule::of(&amplification).unwrap().announce(),
            "announce flow route { match { destination 2001:db8::7/128; next-header udp; source-port =53; } then { discard; } }"
        );
        let syn = AttackEvent {
            kind: AttackKind::SynFlood,
            victim: "192.0.2.1".parse().unwrap(),
            protocol: "tcp",
            service: None,
            victim_ports: vec![80, 443],
            ..event(EventKind::Start)
        };
        assert_eq!(
            FlowRule::of(&syn).unwrap().withdraw(),
            "withdraw flow route { match { destination 192.0.2.1/32; protocol tcp; tcp-flags [ syn ]; } then { discard; } }"
        );
        let udp = AttackEvent { kind: AttackKind::UdpFlood, victim_ports: vec![9], service: None, ..syn.clone() };
        let udp = AttackEvent { protocol: "udp", ..udp };
        assert!(FlowRule::of(&udp).unwrap().announce().contains("protocol udp; destination-port =9; }"));
        let fragments = AttackEvent { kind: AttackKind::FragmentFlood, ..udp.clone() };
        assert!(FlowRule::of(&fragments)
            .unwrap()
            .announce()
            .contains("{ destination 192.0.2.1/32; destination-port =9; fragment [ is-fragment ]; }"));
        // A carpet bombing's /24 is matched; a wider prefix never is.
        let carpet = AttackEvent { victim: "198.51.100.0".parse().unwrap(), victim_prefix: Some(24), ..udp.clone() };
        assert!(FlowRule::of(&carpet).unwrap().announce().contains("destination 198.51.100.0/24;"));
        let wide = AttackEvent { victim: "198.51.0.0".parse().unwrap(), victim_prefix: Some(16), ..udp };
        assert_eq!(FlowRule::of(&wide).unwrap_err(), "destination 198.51.0.0/16 is wider than /24");
    }

    #[test]
    fn a_rule_is_announced_once_and_withdrawn_with_the_last_attack_it_stands_for_or_at_shutdown() {
        let path = scratch("lifecycle");
        let mut x = ExabgpWriter::open(&path).unwrap();
        let first = event(EventKind::Start);
        let second = AttackEvent { attack_id: "fedcba9876543210".into(), ..first.clone() };
        x.event(&first).unwrap();
        x.event(&AttackEvent { event: EventKind::Update, ..first.clone() }).unwrap();
        x.event(&second).unwrap();
        x.event(&AttackEvent { event: EventKind::End, ..first.clone() }).unwrap();
        assert_eq!(lines(&path).len(), 1, "announced once, still held by the second attack");
        x.event(&AttackEvent { event: EventKind::End, ..second }).unwrap();
        let rule = FlowRule::of(&first).unwrap();
        assert_eq!(lines(&path), [rule.announce(), rule.withdraw()]);
        let other = AttackEvent { kind: AttackKind::UdpFlood, attack_id: "1".into(), ..first };
        x.event(&other).unwrap();
        x.finish().unwrap();
        let other = FlowRule::of(&other).unwrap();
        assert_eq!(lines(&path)[2..], [other.announce(), other.withdraw()]);
        assert_eq!((x.announcements, x.withdrawals, x.refused), (2, 2, 0));
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn beyond_the_most_rules_a_busier_attack_takes_the_place_of_the_least_busy() {
        let path = scratch("most");
        let mut x = ExabgpWriter::open(&path).unwrap();
        // Attack i on 192.0.2.0 + i (one rule each) at `pps`.
        let on = |i: u32, pps: u64| AttackEvent {
            attack_id: format!("{i:016x}"),
            victim: IpAddr::from((0xc000_0200 + i).to_be_bytes()),
            pps,
            ..event(EventKind::Start)
        };
        for i in 0..MAX_RULES as u32 {
            x.event(&on(i, 10_000 + u64::from(i))).unwrap();
        }
        // Less busy than all: refused. Busier than the least busy (10,000 pps): replaces it.
        x.event(&on(500, 5_000)).unwrap();
        x.event(&on(501, 50_000)).unwrap();
        let written = lines(&path);
        assert_eq!(written.len(), MAX_RULES + 2);
        assert_eq!(written[MAX_RULES], FlowRule::of(&on(0, 0)).unwrap().withdraw());
        assert_eq!(written[MAX_RULES + 1], FlowRule::of(&on(501, 0)).unwrap().announce());
        assert_eq!((x.announcements, x.withdrawals, x.refused), (MAX_RULES as u64 + 1, 1, 1));
        std::fs::remove_file(&path).unwrap();
    }
}
