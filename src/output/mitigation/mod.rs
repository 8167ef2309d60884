//! Mitigation upstream through BGP: per attack, FlowSpec rules (RFC 8955) that drop or
//! rate-limit what the attack is made of, and, only where configured, an RTBH blackhole route
//! for its victim (RFC 7999). ExaBGP speaks BGP; [`exabgp`] carries the lines to it, [`relay`]
//! is the program ExaBGP runs to receive them.
//!
//! [`Mitigation`] decides, from each alert: the routes its attack calls for, through the rails
//! (allowlisted destinations and sources, the widest prefix, at most `max_routes` at once);
//! each announced once however many attacks call for it, withdrawn when the last of them ends
//! (after the hold time), and every one at shutdown. Floods of forged sources get destination
//! rules only: their sources are the ones the attacker chose.

pub mod exabgp;
pub mod relay;
pub mod route;

use crate::analyze::{AttackEvent, AttackKind, EventKind};
use crate::decode::{IpKey, Prefix};
use exabgp::{Link, Target, Verb};
use route::{Action, FlowMatch, RouteKind};
use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

/// Defaults of the `[mitigation]` section.
pub const DEFAULT_MAX_ROUTES: usize = 100;
pub const DEFAULT_MAX_SOURCE_RULES: usize = 20;
pub const DEFAULT_WIDEST_V4: u8 = 24;
pub const DEFAULT_WIDEST_V6: u8 = 64;

/// The checked `[mitigation]` settings (see the README's "Mitigation through BGP").
#[derive(Clone, Debug, PartialEq)]
pub struct MitigationOptions {
    /// Where the lines go; none only in a dry run.
    pub target: Option<Target>,
    /// Log the lines, send nothing.
    pub dry_run: bool,
    /// The FlowSpec action of each kind, by `AttackKind as usize` (None: no rule).
    pub actions: [Option<Action>; AttackKind::ALL.len()],
    /// Rules from offending sources an attack may have; with more offenders than this (or
    /// forged ones) it gets one rule toward its victim instead.
    pub max_source_rules: usize,
    pub blackhole: Option<BlackholePolicy>,
    /// How long a route stays after the last attack calling for it ended.
    pub hold: Duration,
    pub max_routes: usize,
    /// Shortest prefix lengths a route may have as destination (IPv4, IPv6).
    pub widest: (u8, u8),
    pub allow_destinations: Vec<Prefix>,
    pub allow_sources: Vec<Prefix>,
}

impl Default for MitigationOptions {
    fn default() -> MitigationOptions {
        MitigationOptions {
            target: None,
            dry_run: false,
            actions: [Some(Action::Discard); AttackKind::ALL.len()],
            max_source_rules: DEFAULT_MAX_SOURCE_RULES,
            blackhole: None,
            hold: Duration::ZERO,
            max_routes: DEFAULT_MAX_ROUTES,
            widest: (DEFAULT_WIDEST_V4, DEFAULT_WIDEST_V6),
            allow_destinations: Vec::new(),
            allow_sources: Vec::new(),
        }
    }
}

/// One line for `check-config`: where the routes go, and what may be announced.
impl std::fmt::Display for MitigationOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.target, self.dry_run) {
            (_, true) => f.write_str("as a dry run (nothing sent)")?,
            (Some(Target::Relay(path)), false) => write!(f, "through the relay at {}", path.display())?,
            (Some(Target::File(path)), false) => write!(f, "appended to {}", path.display())?,
            (None, false) => f.write_str("with nowhere to send")?,
        }
        let flowspec = AttackKind::ALL.iter().filter(|k| self.actions[**k as usize].is_some()).count();
        write!(f, ": FlowSpec for {flowspec} of {} kinds, at most {} routes", AttackKind::ALL.len(), self.max_routes)?;
        match &self.blackhole {
            Some(b) => {
                let kinds: Vec<&str> = b.kinds.iter().map(|k| k.name()).collect();
                write!(f, ", RTBH for {}", kinds.join(", "))
            }
            None => f.write_str(", no RTBH"),
        }
    }
}

/// When a victim is blackholed: its attack's kind is listed, it lies in one of the
/// destinations (any, when none are given), and the attack reaches one of the rates.
#[derive(Clone, Debug, PartialEq)]
pub struct BlackholePolicy {
    pub kinds: Vec<AttackKind>,
    pub destinations: Vec<Prefix>,
    pub min_pps: Option<u64>,
    pub min_bps: Option<u64>,
    pub next_hop: String,
    pub communities: Vec<String>,
}

impl BlackholePolicy {
    fn calls_for(&self, e: &AttackEvent) -> bool {
        let range = e.victim_range();
        // A next hop of the other family cannot carry the victim's route.
        let next_hop_fits =
            self.next_hop == "self" || self.next_hop.parse::<IpAddr>().is_ok_and(|h| h.is_ipv6() == e.victim.is_ipv6());
        self.kinds.contains(&e.kind)
            && next_hop_fits
            && (self.destinations.is_empty()
                || self.destinations.iter().any(|p| p.overlaps(&range) && p.bits() <= range.bits()))
            && (self.min_pps.is_some_and(|n| e.pps >= n) || self.min_bps.is_some_and(|n| e.bps >= n))
    }
}

/// Why a route was not announced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    AllowlistedDestination,
    AllowlistedSource,
    TooWide,
    MaxRoutes,
}

impl Refusal {
    pub const ALL: [Refusal; 4] =
        [Refusal::AllowlistedDestination, Refusal::AllowlistedSource, Refusal::TooWide, Refusal::MaxRoutes];

    pub fn name(self) -> &'static str {
        match self {
            Refusal::AllowlistedDestination => "allowlisted_destination",
            Refusal::AllowlistedSource => "allowlisted_source",
            Refusal::TooWide => "too_wide",
            Refusal::MaxRoutes => "max_routes",
        }
    }
}

/// What the mitigation did, counted as it goes; the metrics read it when scraped (as they do
/// the sinks' counters), the summary at the end.
#[derive(Debug, Default)]
pub struct MitigationCounters {
    announced: [AtomicU64; RouteKind::ALL.len()],
    withdrawn: [AtomicU64; RouteKind::ALL.len()],
    active: [AtomicU64; RouteKind::ALL.len()],
    refused: [AtomicU64; Refusal::ALL.len()],
    /// Whether there is a relay link at all.
    relay: bool,
    relay_connected: AtomicBool,
    relay_resyncs: AtomicU64,
}

impl MitigationCounters {
    pub fn snapshot(&self) -> MitigationStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        MitigationStats {
            announced: self.announced.each_ref().map(load),
            withdrawn: self.withdrawn.each_ref().map(load),
            active: self.active.each_ref().map(load),
            refused: self.refused.each_ref().map(load),
            relay_connected: self.relay.then(|| self.relay_connected.load(Ordering::Relaxed)),
            relay_resyncs: load(&self.relay_resyncs),
        }
    }
}

/// What the mitigation did, by route kind and refusal reason, at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MitigationStats {
    pub announced: [u64; RouteKind::ALL.len()],
    pub withdrawn: [u64; RouteKind::ALL.len()],
    pub active: [u64; RouteKind::ALL.len()],
    pub refused: [u64; Refusal::ALL.len()],
    /// Whether the relay link is up (None: no relay).
    pub relay_connected: Option<bool>,
    /// Times the whole set was sent to the relay again after its link came back.
    pub relay_resyncs: u64,
}

/// A route announced, and the attacks calling for it.
struct Held {
    kind: RouteKind,
    /// Each attack, with its latest rate.
    attacks: Vec<(String, u64)>,
    /// Packet time at which it is withdrawn: no attack calls for it any more.
    release_at_ns: Option<i64>,
}

impl Held {
    /// The rate of its busiest attack: the least busy route goes first when `max_routes`
    /// are out (and before it any route only its hold time keeps).
    fn busy(&self) -> u64 {
        self.attacks.iter().map(|(_, pps)| *pps).max().unwrap_or(0)
    }

    /// Whether an attack at `pps` may take its place.
    fn yields_to(&self, pps: u64) -> bool {
        self.attacks.is_empty() || self.busy() < pps
    }
}

/// An attack's routes.
#[derive(Default)]
struct Calls {
    routes: Vec<String>,
    /// What was refused it, each counted and logged once (routes refused for want of room
    /// are tried again at its next alert).
    refused: Vec<String>,
    /// A blackhole, once called for, stays until the attack ends: a route flapping with the
    /// rate would do more harm than either.
    blackholed: bool,
}

/// The routes an alert calls for, and those the rails refuse.
#[derive(Default)]
struct Plan {
    routes: Vec<(String, RouteKind)>,
    refused: Vec<(String, Refusal)>,
    /// With rules per source: the rule toward the victim, taken in their place when there is
    /// no room for them all (an attack's sources are blocked all together or not at all).
    fallback: Option<String>,
}

pub struct Mitigation {
    opts: MitigationOptions,
    link: Link,
    routes: BTreeMap<String, Held>,
    attacks: HashMap<String, Calls>,
    /// The earliest `release_at_ns` of the routes (None: no route waits).
    next_release_ns: Option<i64>,
    counters: Arc<MitigationCounters>,
}

impl Mitigation {
    /// `drain`: how long the relay link keeps trying to deliver the shutdown's withdrawals.
    pub fn open(opts: MitigationOptions, drain: Duration) -> Result<Mitigation, String> {
        let relay = !opts.dry_run && matches!(opts.target, Some(Target::Relay(_)));
        let counters = Arc::new(MitigationCounters { relay, ..Default::default() });
        let link = match (&opts.target, opts.dry_run) {
            (_, true) => Link::DryRun,
            (Some(target), false) => Link::open(target, drain, counters.clone())?,
            (None, false) => return Err("mitigation: no ExaBGP target and not a dry run".into()),
        };
        Ok(Mitigation { opts, link, routes: BTreeMap::new(), attacks: HashMap::new(), next_release_ns: None, counters })
    }

    /// Its counters, for the metrics.
    pub fn counters(&self) -> Arc<MitigationCounters> {
        self.counters.clone()
    }

    pub fn stats(&self) -> MitigationStats {
        self.counters.snapshot()
    }

    pub fn event(&mut self, e: &AttackEvent) {
        match e.event {
            EventKind::Start | EventKind::Update => self.call(e),
            EventKind::End => {
                if let Some(calls) = self.attacks.remove(&e.attack_id) {
                    for route in &calls.routes {
                        self.release(route, &e.attack_id, e.timestamp_ns);
                    }
                }
            }
        }
    }

    fn plan(&self, e: &AttackEvent, blackholed: bool) -> Plan {
        let mut plan = Plan::default();
        let range = e.victim_range();
        let destination = route::destination(e);
        if self.opts.allow_destinations.iter().any(|p| p.overlaps(&range)) {
            plan.refused.push((destination, Refusal::AllowlistedDestination));
            return plan;
        }
        let (len, _) = range.family_len();
        let widest = if e.victim.is_ipv6() { self.opts.widest.1 } else { self.opts.widest.0 };
        if len < widest {
            plan.refused.push((destination, Refusal::TooWide));
            return plan;
        }
        if let Some(action) = self.opts.actions[e.kind as usize] {
            let flow = FlowMatch::of(e);
            // Reflectors are many and their port says it all; forged sources are the
            // attacker's choice (offending_ips is empty for them, the check says why).
            let real_sources = e.kind != AttackKind::Amplification && !e.sources.spoofed_likely;
            let mut offenders = Vec::with_capacity(e.offending_ips.len());
            for &ip in &e.offending_ips {
                if !self.opts.allow_sources.iter().any(|p| p.contains(IpKey::from_ip(ip))) {
                    offenders.push(ip);
                } else if real_sources {
                    plan.refused.push((format!("source {ip}"), Refusal::AllowlistedSource));
                }
            }
            let destination_rule = flow.rule(None, action);
            if real_sources && !e.offending_ips.is_empty() && offenders.is_empty() {
                // Every source the alert names is allowlisted: nothing drops their traffic.
            } else if real_sources && !offenders.is_empty() && offenders.len() <= self.opts.max_source_rules {
                for ip in offenders {
                    plan.routes.push((flow.rule(Some(ip), action), RouteKind::FlowSource));
                }
                plan.fallback = Some(destination_rule);
            } else {
                plan.routes.push((destination_rule, RouteKind::FlowDestination));
            }
        }
        if let Some(b) = &self.opts.blackhole {
            if blackholed || b.calls_for(e) {
                plan.routes.push((route::blackhole(e, &b.next_hop, &b.communities), RouteKind::Blackhole));
            }
        }
        plan
    }

    fn call(&mut self, e: &AttackEvent) {
        let mut calls = self.attacks.remove(&e.attack_id).unwrap_or_default();
        // The attack's rate first: a route of its own is never the least busy to make room.
        for route in &calls.routes {
            let own = self.routes.get_mut(route).and_then(|h| h.attacks.iter_mut().find(|(id, _)| *id == e.attack_id));
            if let Some(own) = own {
                own.1 = e.pps;
            }
        }
        let plan = self.plan(e, calls.blackholed);
        for (what, why) in plan.refused {
            self.refuse(&mut calls, e, what, why);
        }
        let mut wanted = plan.routes;
        if let Some(fallback) = plan.fallback {
            let needed = wanted.iter().filter(|(r, _)| !self.routes.contains_key(r)).count();
            let room = self.opts.max_routes.saturating_sub(self.routes.len())
                + self.routes.values().filter(|h| h.yields_to(e.pps)).count();
            if needed > room {
                wanted.retain(|(_, kind)| *kind != RouteKind::FlowSource);
                wanted.insert(0, (fallback, RouteKind::FlowDestination));
            }
        }
        for route in std::mem::take(&mut calls.routes) {
            if wanted.iter().any(|(r, _)| *r == route) {
                calls.routes.push(route);
            } else {
                self.release(&route, &e.attack_id, e.timestamp_ns);
            }
        }
        for (route, kind) in wanted {
            calls.blackholed |= kind == RouteKind::Blackhole;
            if self.hold(&route, kind, e) {
                if !calls.routes.contains(&route) {
                    calls.routes.push(route);
                }
            } else {
                self.refuse(&mut calls, e, route, Refusal::MaxRoutes);
            }
        }
        self.attacks.insert(e.attack_id.clone(), calls);
    }

    /// Counts and logs a refusal, once per attack.
    fn refuse(&mut self, calls: &mut Calls, e: &AttackEvent, what: String, why: Refusal) {
        if calls.refused.contains(&what) {
            return;
        }
        if why == Refusal::MaxRoutes {
            let most = self.opts.max_routes;
            tracing::warn!(attack_id = e.attack_id, "not announced ({}): {most} busier routes are: {what}", why.name());
        } else {
            tracing::warn!(attack_id = e.attack_id, "not announced ({}): {what}", why.name());
        }
        self.counters.refused[why as usize].fetch_add(1, Ordering::Relaxed);
        calls.refused.push(what);
    }

    /// Announces `route` for `e`'s attack unless it is out already; false when `max_routes`
    /// busier ones are.
    fn hold(&mut self, route: &str, kind: RouteKind, e: &AttackEvent) -> bool {
        if let Some(h) = self.routes.get_mut(route) {
            match h.attacks.iter_mut().find(|(id, _)| *id == e.attack_id) {
                Some(own) => own.1 = e.pps,
                None => h.attacks.push((e.attack_id.clone(), e.pps)),
            }
            h.release_at_ns = None;
            return true;
        }
        if self.routes.len() >= self.opts.max_routes {
            let least = self.routes.iter().min_by_key(|(_, h)| (!h.attacks.is_empty(), h.busy()));
            let Some((gone, h)) = least.filter(|(_, h)| h.yields_to(e.pps)) else {
                return false;
            };
            let (gone, attacks) = (gone.clone(), h.attacks.clone());
            tracing::warn!("withdrawn for a busier route, {} at most: {gone}", self.opts.max_routes);
            self.withdraw(&gone);
            // Its attacks try again at their next alert, and take it back if busier by then.
            for (id, _) in attacks {
                if let Some(calls) = self.attacks.get_mut(&id) {
                    calls.routes.retain(|r| *r != gone);
                }
            }
        }
        self.send(Verb::Announce, route, kind);
        self.counters.announced[kind as usize].fetch_add(1, Ordering::Relaxed);
        self.counters.active[kind as usize].fetch_add(1, Ordering::Relaxed);
        let held = Held { kind, attacks: vec![(e.attack_id.clone(), e.pps)], release_at_ns: None };
        self.routes.insert(route.to_string(), held);
        true
    }

    /// `attack_id` no longer calls for `route`: withdrawn now, or after the hold time.
    fn release(&mut self, route: &str, attack_id: &str, now_ns: i64) {
        let Some(h) = self.routes.get_mut(route) else { return };
        h.attacks.retain(|(id, _)| id != attack_id);
        if !h.attacks.is_empty() {
            return;
        }
        if self.opts.hold.is_zero() {
            self.withdraw(route);
        } else {
            let at = now_ns.saturating_add(self.opts.hold.as_nanos() as i64);
            h.release_at_ns = Some(at);
            self.next_release_ns = Some(self.next_release_ns.map_or(at, |n| n.min(at)));
        }
    }

    /// Time moved on to `now_ns`: routes whose hold time is over are withdrawn.
    pub fn advance(&mut self, now_ns: i64) {
        if self.next_release_ns.is_none_or(|at| at > now_ns) {
            return;
        }
        let due: Vec<String> = self
            .routes
            .iter()
            .filter(|(_, h)| h.release_at_ns.is_some_and(|at| at <= now_ns))
            .map(|(r, _)| r.clone())
            .collect();
        due.iter().for_each(|r| self.withdraw(r));
        self.next_release_ns = self.routes.values().filter_map(|h| h.release_at_ns).min();
    }

    fn withdraw(&mut self, route: &str) {
        if let Some(h) = self.routes.remove(route) {
            self.send(Verb::Withdraw, route, h.kind);
            self.counters.withdrawn[h.kind as usize].fetch_add(1, Ordering::Relaxed);
            self.counters.active[h.kind as usize].fetch_sub(1, Ordering::Relaxed);
        }
    }

    fn send(&mut self, verb: Verb, route: &str, kind: RouteKind) {
        let word = verb.word();
        if self.opts.dry_run {
            tracing::info!(route = kind.name(), "dry run, not sent: {word} {route}");
        } else {
            tracing::info!(route = kind.name(), "{word} {route}");
        }
        // Detection goes on without the router's help: a failure is logged.
        if let Err(e) = self.link.send(verb, route) {
            tracing::error!("exabgp: {e}");
        }
    }

    /// Withdraws every route (shutdown) and closes the link.
    pub fn finish(mut self) -> MitigationStats {
        let all: Vec<String> = self.routes.keys().cloned().collect();
        all.iter().for_each(|r| self.withdraw(r));
        let stats = self.stats();
        self.link.finish();
        stats
    }
}

#[cfg(test)]
mod tests;
