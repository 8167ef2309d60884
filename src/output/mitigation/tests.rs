use super::*;
use crate::analyze::sample_event as event;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const DRAIN: Duration = Duration::from_secs(5);

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

/// A mitigation writing to a scratch file, and the file.
fn writing(name: &str, opts: MitigationOptions) -> (Mitigation, PathBuf) {
    let path = std::env::temp_dir().join(format!("floodwatch-mitigation-{name}-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let m = Mitigation::open(MitigationOptions { target: Some(Target::File(path.clone())), ..opts }, DRAIN).unwrap();
    (m, path)
}

/// A SYN flood on 192.0.2.1:443 from real bots 203.0.113.1..=n.
fn syn_flood(bots: u8) -> AttackEvent {
    let offenders: Vec<IpAddr> = (1..=bots).map(|i| IpAddr::from([203, 0, 113, i])).collect();
    AttackEvent {
        kind: AttackKind::SynFlood,
        victim: "192.0.2.1".parse().unwrap(),
        protocol: "tcp",
        service: None,
        service_port: None,
        victim_ports: vec![443],
        offending_ips: offenders,
        ..event(EventKind::Start)
    }
}

fn ended(e: &AttackEvent, at_ns: i64) -> AttackEvent {
    AttackEvent { event: EventKind::End, timestamp_ns: at_ns, ..e.clone() }
}

#[test]
fn a_route_is_announced_once_and_withdrawn_with_the_last_attack_calling_for_it_or_at_shutdown() {
    let (mut m, path) = writing("lifecycle", MitigationOptions::default());
    let first = event(EventKind::Start);
    let second = AttackEvent { attack_id: "fedcba9876543210".into(), ..first.clone() };
    m.event(&first);
    m.event(&AttackEvent { event: EventKind::Update, ..first.clone() });
    m.event(&second);
    m.event(&ended(&first, first.timestamp_ns));
    assert_eq!(lines(&path).len(), 1, "announced once, still called for by the second attack");
    m.event(&ended(&second, second.timestamp_ns));
    let rule = FlowMatch::of(&first).rule(None, Action::Discard);
    assert_eq!(lines(&path), [format!("announce {rule}"), format!("withdraw {rule}")]);
    // Offenders not known yet: the rule toward the victim.
    let other = AttackEvent { kind: AttackKind::UdpFlood, attack_id: "1".into(), offending_ips: Vec::new(), ..first };
    m.event(&other);
    let stats = m.finish();
    let other = FlowMatch::of(&other).rule(None, Action::Discard);
    assert_eq!(lines(&path)[2..], [format!("announce {other}"), format!("withdraw {other}")]);
    assert_eq!((stats.announced, stats.withdrawn, stats.refused), ([2, 0, 0], [2, 0, 0], [0; 4]));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn real_sources_get_a_rule_each_forged_or_too_many_sources_one_toward_the_victim() {
    let (mut m, path) = writing("sources", MitigationOptions { max_source_rules: 3, ..Default::default() });
    let few = syn_flood(3);
    m.event(&few);
    let written = lines(&path);
    assert_eq!(written.len(), 3, "{written:?}");
    assert_eq!(
        written[0],
        "announce flow route { match { source 203.0.113.1/32; destination 192.0.2.1/32; protocol tcp; destination-port =443; tcp-flags [ syn ]; } then { discard; } }"
    );
    // The bots grow past the most rules from sources: one rule toward the victim takes their place.
    m.event(&AttackEvent { event: EventKind::Update, ..syn_flood(4) });
    let written = lines(&path);
    assert_eq!(written[3..6].iter().filter(|l| l.starts_with("withdraw flow route { match { source ")).count(), 3);
    assert_eq!(
        written[6],
        "announce flow route { match { destination 192.0.2.1/32; protocol tcp; destination-port =443; tcp-flags [ syn ]; } then { discard; } }"
    );
    // Forged sources (no offenders listed, the sources judged spoofed): the victim's rule only.
    let mut spoofed = AttackEvent { attack_id: "2".into(), victim: "192.0.2.2".parse().unwrap(), ..syn_flood(0) };
    spoofed.sources.spoofed_likely = true;
    m.event(&spoofed);
    assert!(lines(&path)[7].starts_with("announce flow route { match { destination 192.0.2.2/32;"));
    // Amplification: the reflectors' port, whatever the reflectors.
    let amplification = AttackEvent { attack_id: "3".into(), ..event(EventKind::Start) };
    m.event(&amplification);
    assert!(lines(&path)[8].contains("{ destination 2001:db8::7/128; next-header udp; source-port =53; }"));
    let stats = m.stats();
    assert_eq!((stats.announced, stats.withdrawn, stats.active), ([3, 3, 0], [0, 3, 0], [3, 0, 0]));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn nothing_is_announced_for_allowlisted_or_too_wide_destinations_nor_from_allowlisted_sources() {
    let opts = MitigationOptions {
        allow_destinations: vec![Prefix::parse("192.0.2.0/30").unwrap()],
        allow_sources: vec![Prefix::parse("203.0.113.2").unwrap()],
        actions: {
            let mut a = [Some(Action::Discard); AttackKind::ALL.len()];
            a[AttackKind::SynFlood as usize] = Some(Action::RateLimit(125_000));
            a
        },
        ..Default::default()
    };
    let (mut m, path) = writing("rails", opts);
    m.event(&syn_flood(3));
    // A carpet whose /24 holds an allowlisted host: refused too.
    let carpet = AttackEvent {
        attack_id: "2".into(),
        victim: "192.0.2.0".parse().unwrap(),
        victim_prefix: Some(24),
        ..syn_flood(0)
    };
    m.event(&carpet);
    let wide = AttackEvent {
        attack_id: "3".into(),
        victim: "198.51.0.0".parse().unwrap(),
        victim_prefix: Some(16),
        ..syn_flood(0)
    };
    m.event(&wide);
    m.event(&AttackEvent { event: EventKind::Update, ..wide.clone() });
    assert!(lines(&path).is_empty(), "{:?}", lines(&path));
    let stats = m.stats();
    assert_eq!(stats.refused, [2, 0, 1, 0], "each refusal counted once per attack");
    std::fs::remove_file(&path).unwrap();

    let (mut m, path) = writing(
        "rails-sources",
        MitigationOptions { allow_sources: vec![Prefix::parse("203.0.113.2").unwrap()], ..Default::default() },
    );
    m.event(&syn_flood(3));
    let written = lines(&path);
    assert_eq!(written.len(), 2, "{written:?}");
    assert!(written.iter().all(|l| !l.contains("203.0.113.2/32")), "{written:?}");
    assert_eq!(m.stats().refused[Refusal::AllowlistedSource as usize], 1);
    // Every source the alert names allowlisted: no rule drops their traffic, not even one
    // toward the victim.
    let partners = AttackEvent { attack_id: "2".into(), victim: "192.0.2.9".parse().unwrap(), ..syn_flood(0) };
    let partners = AttackEvent { offending_ips: vec!["203.0.113.2".parse().unwrap()], ..partners };
    m.event(&partners);
    assert_eq!(lines(&path).len(), 2, "{:?}", lines(&path));
    // Reflectors are never matched by source: allowlisting one refuses nothing.
    let amplification = AttackEvent {
        attack_id: "3".into(),
        offending_ips: vec!["203.0.113.2".parse().unwrap()],
        ..event(EventKind::Start)
    };
    m.event(&amplification);
    assert_eq!(lines(&path).len(), 3);
    assert_eq!(m.stats().refused[Refusal::AllowlistedSource as usize], 2);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn an_attacks_sources_are_blocked_all_together_or_by_the_rule_toward_its_victim() {
    let (mut m, path) =
        writing("source-group", MitigationOptions { max_routes: 4, max_source_rules: 3, ..Default::default() });
    m.event(&syn_flood(3));
    // Two more bots elsewhere, less busy: room for one route only, the victim's.
    let other = AttackEvent { attack_id: "2".into(), victim: "192.0.2.2".parse().unwrap(), pps: 5_000, ..syn_flood(2) };
    m.event(&other);
    let written = lines(&path);
    assert_eq!(written.len(), 4, "{written:?}");
    assert!(written[3].starts_with("announce flow route { match { destination 192.0.2.2/32;"), "{written:?}");
    assert_eq!(m.stats().refused, [0; 4]);
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_victim_is_blackholed_only_for_a_configured_kind_and_rate_and_stays_so_until_its_attack_ends() {
    let policy = BlackholePolicy {
        kinds: vec![AttackKind::Amplification],
        destinations: vec![Prefix::parse("2001:db8::/64").unwrap()],
        min_pps: Some(50_000),
        min_bps: None,
        next_hop: "self".into(),
        communities: vec!["65535:666".into(), "no-export".into()],
    };
    let (mut m, path) = writing("rtbh", MitigationOptions { blackhole: Some(policy), ..Default::default() });
    let amplification = event(EventKind::Start);
    m.event(&amplification);
    assert_eq!(lines(&path).len(), 1, "10,000 pps: below the rate, the FlowSpec rule alone");
    m.event(&AttackEvent { event: EventKind::Update, pps: 60_000, ..amplification.clone() });
    let blackhole = "route 2001:db8::7/128 next-hop self community [ 65535:666 no-export ]";
    assert_eq!(lines(&path)[1], format!("announce {blackhole}"));
    m.event(&AttackEvent { event: EventKind::Update, pps: 20_000, ..amplification.clone() });
    assert_eq!(lines(&path).len(), 2, "the rate falling back does not flap the route");
    // Another kind, or a victim outside the destinations: never.
    let syn = AttackEvent { attack_id: "2".into(), pps: 1_000_000, ..syn_flood(0) };
    m.event(&syn);
    let outside = AttackEvent {
        attack_id: "3".into(),
        victim: "2001:db8:1::7".parse().unwrap(),
        pps: 1_000_000,
        ..amplification.clone()
    };
    m.event(&outside);
    assert!(lines(&path)[2..].iter().all(|l| l.starts_with("announce flow route")), "{:?}", lines(&path));
    m.event(&ended(&amplification, amplification.timestamp_ns));
    assert!(lines(&path).contains(&format!("withdraw {blackhole}")));
    let stats = m.finish();
    assert_eq!(
        (stats.announced[RouteKind::Blackhole as usize], stats.withdrawn[RouteKind::Blackhole as usize]),
        (1, 1)
    );
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_route_stays_its_hold_time_after_the_attack_and_is_kept_by_an_attack_calling_for_it_again() {
    let (mut m, path) = writing("hold", MitigationOptions { hold: Duration::from_secs(60), ..Default::default() });
    let first = event(EventKind::Start);
    let t = first.timestamp_ns;
    m.event(&first);
    m.event(&ended(&first, t + 1_000_000_000));
    m.advance(t + 30_000_000_000);
    assert_eq!(lines(&path).len(), 1, "held until 61 s");
    // The flood comes back at 30 s: a new attack, the same route, nothing sent.
    let again = AttackEvent { attack_id: "2".into(), timestamp_ns: t + 30_000_000_000, ..first.clone() };
    m.event(&again);
    m.advance(t + 200_000_000_000);
    assert_eq!(lines(&path).len(), 1);
    m.event(&ended(&again, t + 210_000_000_000));
    m.advance(t + 270_000_000_000 - 1);
    assert_eq!(lines(&path).len(), 1);
    m.advance(t + 270_000_000_000);
    assert_eq!(lines(&path).len(), 2);
    assert!(lines(&path)[1].starts_with("withdraw "));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn beyond_the_most_routes_a_busier_attack_takes_the_place_of_the_least_busy() {
    let (mut m, path) = writing("most", MitigationOptions { max_routes: 10, ..Default::default() });
    // Attack i on 192.0.2.0 + i (one rule each) at `pps`.
    let on = |i: u32, pps: u64| AttackEvent {
        attack_id: format!("{i:016x}"),
        victim: IpAddr::from((0xc000_0200 + i).to_be_bytes()),
        pps,
        ..event(EventKind::Start)
    };
    for i in 0..10 {
        m.event(&on(i, 10_000 + u64::from(i)));
    }
    // Less busy than all: refused. Busier than the least busy (10,000 pps): replaces it.
    m.event(&on(500, 5_000));
    m.event(&on(501, 50_000));
    let written = lines(&path);
    assert_eq!(written.len(), 12);
    assert_eq!(written[10], format!("withdraw {}", FlowMatch::of(&on(0, 0)).rule(None, Action::Discard)));
    assert_eq!(written[11], format!("announce {}", FlowMatch::of(&on(501, 0)).rule(None, Action::Discard)));
    // The attack that lost its route takes it back only once busier than the least busy.
    m.event(&AttackEvent { event: EventKind::Update, ..on(0, 10_000) });
    assert_eq!(lines(&path).len(), 12);
    m.event(&AttackEvent { event: EventKind::Update, ..on(0, 60_000) });
    let written = lines(&path);
    assert_eq!(written[12], format!("withdraw {}", FlowMatch::of(&on(1, 0)).rule(None, Action::Discard)));
    assert_eq!(written[13], format!("announce {}", FlowMatch::of(&on(0, 0)).rule(None, Action::Discard)));
    let stats = m.stats();
    assert_eq!((stats.announced[0], stats.withdrawn[0], stats.refused[Refusal::MaxRoutes as usize]), (12, 2, 2));
    std::fs::remove_file(&path).unwrap();
}

#[test]
fn a_dry_run_sends_nothing_and_counts_what_it_would_have_sent() {
    let mut m = Mitigation::open(MitigationOptions { dry_run: true, ..Default::default() }, DRAIN).unwrap();
    let e = event(EventKind::Start);
    m.event(&e);
    m.event(&ended(&e, e.timestamp_ns));
    let stats = m.finish();
    assert_eq!((stats.announced[0], stats.withdrawn[0], stats.relay_connected), (1, 1, None));
    assert!(Mitigation::open(MitigationOptions::default(), DRAIN).is_err(), "no target without a dry run");
}
