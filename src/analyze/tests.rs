//! Analyzer behaviour on hand-made packet streams (captures are tested under tests/).

use super::*;

const T0: i64 = 1_768_478_400_000_000_000; // 2026-01-15T12:00:00Z

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpKey {
    IpKey::from_v4([a, b, c, d])
}

/// A TCP packet from `(src, port)` to `(dst, port)` with flags and `(seq, ack)`.
fn tcp(
    ts: i64,
    (src, sport): (IpKey, u16),
    (dst, dport): (IpKey, u16),
    flags: u8,
    (seq, ack): (u32, u32),
) -> PacketRecord {
    PacketRecord {
        ts_ns: ts,
        wire_len: 60,
        src,
        dst,
        protocol: PacketRecord::PROTO_TCP,
        ttl: 60,
        fragment: Fragment::Whole,
        l4: L4State::Present,
        src_port: sport,
        dst_port: dport,
        tcp_flags: flags,
        tcp_seq: seq,
        tcp_ack: ack,
        icmp_type: 0,
        weight: 1,
    }
}

fn settings() -> DetectionSettings {
    DetectionSettings { hash_seed: Some(1), ..DetectionSettings::default() }
}

fn run(a: &mut Analyzer, packets: impl IntoIterator<Item = PacketRecord>) -> Vec<AttackEvent> {
    let mut out = Vec::new();
    for p in packets {
        a.process(&p, &mut out);
    }
    a.finish(EndReason::EndOfInput, &mut out);
    out
}

/// `rate` SYNs per second for `secs` from 50 sources, starting at `start`.
fn syn_flood(start: i64, rate: u64, secs: u64, victim: IpKey) -> impl Iterator<Item = PacketRecord> {
    let gap = 1_000_000_000 / rate as i64;
    (0..rate * secs).map(move |i| {
        let src = v4(198, 18, 0, (i % 50) as u8 + 1);
        tcp(
            start + i as i64 * gap,
            (src, 1024 + (i % 60000) as u16),
            (victim, 80),
            PacketRecord::TCP_SYN,
            (i as u32, 0),
        )
    })
}

#[test]
fn strong_syn_flood_is_flagged_within_100ms_and_ends_quietly() {
    let victim = v4(192, 0, 2, 1);
    let mut a = Analyzer::new(settings());
    // 20,000 SYN/s for 2 s, then one unrelated packet 10 s later to move time on.
    let tail = tcp(T0 + 12_000_000_000, (v4(198, 18, 1, 1), 1), (v4(192, 0, 2, 9), 2), PacketRecord::TCP_ACK, (0, 0));
    let events = run(&mut a, syn_flood(T0, 20_000, 2, victim).chain([tail]));
    let kinds: Vec<_> = events.iter().map(|e| (e.event, e.kind)).collect();
    assert_eq!(kinds, vec![(EventKind::Start, AttackKind::SynFlood), (EventKind::End, AttackKind::SynFlood)]);
    let start = &events[0];
    assert!(start.timestamp_ns - T0 <= 100_000_000, "flagged after {} ns", start.timestamp_ns - T0);
    assert_eq!(start.victim, victim.to_ip());
    assert_eq!(start.victim_ports, vec![80]);
    let end = events[1].end.as_ref().unwrap();
    assert_eq!(end.reason, EndReason::Quiet);
    assert_eq!(events[1].offending_ips.len(), 50);
    assert!(events[1].peak_pps >= 19_000, "{events:#?}");
}

#[test]
fn below_the_floor_is_never_flagged() {
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, syn_flood(T0, 990, 5, v4(192, 0, 2, 1)));
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn completed_handshakes_are_a_flash_crowd_not_a_flood() {
    let server = v4(198, 51, 100, 80);
    let mut packets = Vec::new();
    for i in 0..10_000u32 {
        let ts = T0 + i as i64 * 200_000; // 5,000 connections/s
        let client = IpKey::from_v4((0x6440_0000 + i).to_be_bytes());
        let port = 10_000 + (i % 50_000) as u16;
        packets.push(tcp(ts, (client, port), (server, 443), PacketRecord::TCP_SYN, (i, 0)));
        packets.push(tcp(
            ts + 50_000,
            (server, 443),
            (client, port),
            PacketRecord::TCP_SYN | PacketRecord::TCP_ACK,
            (7 * i, i + 1),
        ));
        packets.push(tcp(ts + 100_000, (client, port), (server, 443), PacketRecord::TCP_ACK, (i + 1, 7 * i + 1)));
    }
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn syn_cookie_answers_without_completions_are_still_a_flood() {
    let server = v4(198, 51, 100, 10);
    let mut packets = Vec::new();
    for i in 0..10_000u32 {
        let ts = T0 + i as i64 * 200_000;
        let client = v4(198, 18, 2, (i % 200) as u8);
        let port = 10_000 + (i % 50_000) as u16;
        packets.push(tcp(ts, (client, port), (server, 443), PacketRecord::TCP_SYN, (i, 0)));
        packets.push(tcp(
            ts + 50_000,
            (server, 443),
            (client, port),
            PacketRecord::TCP_SYN | PacketRecord::TCP_ACK,
            (7 * i, i + 1),
        ));
    }
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    assert_eq!(events[0].kind, AttackKind::SynFlood);
    assert!(events[0].reason.contains("completed a handshake"), "{}", events[0].reason);
}

#[test]
fn timestamps_that_jump_by_decades_or_back_neither_crash_nor_loop() {
    let victim = v4(192, 0, 2, 1);
    let mut a = Analyzer::new(settings());
    let mut packets: Vec<PacketRecord> = syn_flood(T0, 10_000, 1, victim).collect();
    // Back in time by a year, then forward by 200 years, then back again.
    for (i, jump) in [-31_536_000i64, 200 * 31_536_000, -5].into_iter().enumerate() {
        let ts = T0 + jump * 1_000_000_000;
        packets.extend(syn_flood(ts, 10_000, 1, v4(192, 0, 2, 10 + i as u8)));
    }
    let events = run(&mut a, packets);
    assert!(events.iter().all(|e| e.kind == AttackKind::SynFlood));
    let starts = events.iter().filter(|e| e.event == EventKind::Start).count();
    let ends = events.iter().filter(|e| e.event == EventKind::End).count();
    assert_eq!(starts, ends);
    assert!(starts >= 2);
}

#[test]
fn every_packet_at_the_same_instant() {
    let victim = v4(192, 0, 2, 1);
    let mut a = Analyzer::new(settings());
    let packets =
        (0..5_000u32).map(|i| tcp(T0, (v4(198, 18, 0, (i % 7) as u8), 1), (victim, 80), PacketRecord::TCP_SYN, (i, 0)));
    let events = run(&mut a, packets);
    assert_eq!(events.len(), 2);
    assert_eq!(events[1].end.as_ref().unwrap().reason, EndReason::EndOfInput);
}

#[test]
fn allowlisted_sources_do_not_count() {
    let mut s = settings();
    s.allow_sources = vec![crate::decode::Prefix::parse("198.18.0.0/24").unwrap()];
    let mut a = Analyzer::new(s);
    let events = run(&mut a, syn_flood(T0, 20_000, 1, v4(192, 0, 2, 1)));
    assert!(events.is_empty());
    assert_eq!(a.stats.allowlisted_packets, 20_000);
}

#[test]
fn a_victims_answers_to_its_attacker_are_not_a_second_attack() {
    let victim = v4(192, 0, 2, 2);
    let attacker = v4(198, 18, 9, 3);
    let udp = |ts: i64, src: IpKey, dst: IpKey, sport: u16, dport: u16| PacketRecord {
        ts_ns: ts,
        wire_len: 60,
        src,
        dst,
        protocol: PacketRecord::PROTO_UDP,
        ttl: 64,
        l4: L4State::Present,
        src_port: sport,
        dst_port: dport,
        ..Default::default()
    };
    let mut packets = Vec::new();
    for i in 0..3_000u32 {
        let ts = T0 + i as i64 * 50_000; // 20,000 pps for 150 ms
        packets.push(udp(ts, attacker, victim, 2000 + (i % 1000) as u16, 9955));
        if i % 2 == 0 {
            packets.push(udp(ts + 10_000, victim, attacker, 9955, 2000 + (i % 1000) as u16));
        }
    }
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    let victims: Vec<_> = events.iter().map(|e| (e.event, e.victim)).collect();
    assert_eq!(victims, vec![(EventKind::Start, victim.to_ip()), (EventKind::End, victim.to_ip())]);
    assert_eq!(events[1].offending_ips, vec![attacker.to_ip()]);
}

#[test]
fn a_second_capture_overlapping_in_time_starts_a_new_timeline() {
    let mut a = Analyzer::new(settings());
    // Two 1-s floods on different victims, the second "file" starting 5 s before the first ended.
    let first = syn_flood(T0 + 5_000_000_000, 10_000, 1, v4(192, 0, 2, 1));
    let second = syn_flood(T0 + 1_000_000_000, 10_000, 1, v4(192, 0, 2, 2));
    let events = run(&mut a, first.chain(second));
    assert_eq!(a.stats.timeline_restarts, 1);
    let starts: Vec<_> = events.iter().filter(|e| e.event == EventKind::Start).map(|e| e.victim).collect();
    assert_eq!(starts, vec![v4(192, 0, 2, 1).to_ip(), v4(192, 0, 2, 2).to_ip()]);
    // Each attack is measured on its own timeline, not piled into one tick.
    assert!(events.iter().all(|e| e.peak_pps <= 10_100), "{events:#?}");
}

fn udp(ts: i64, (src, sport): (IpKey, u16), (dst, dport): (IpKey, u16), fragment: Fragment) -> PacketRecord {
    PacketRecord {
        ts_ns: ts,
        wire_len: 1200,
        src,
        dst,
        protocol: PacketRecord::PROTO_UDP,
        ttl: 50,
        fragment,
        l4: if fragment == Fragment::Later { L4State::Absent } else { L4State::Present },
        src_port: if fragment == Fragment::Later { 0 } else { sport },
        dst_port: if fragment == Fragment::Later { 0 } else { dport },
        ..Default::default()
    }
}

#[test]
fn syn_acks_nobody_asked_for_are_a_synack_flood() {
    let victim = v4(192, 0, 2, 33);
    let packets = (0..6_000u32).map(|i| {
        let reflector = v4(198, 18, 3, (i % 90) as u8);
        let flags = PacketRecord::TCP_SYN | PacketRecord::TCP_ACK;
        tcp(T0 + i as i64 * 250_000, (reflector, 443), (victim, 1024 + (i % 5000) as u16), flags, (i, 77))
    });
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    assert_eq!(events[0].kind, AttackKind::SynAckFlood);
    let end = events.last().unwrap();
    // Reflectors are real hosts: every one is listed, even with few packets each.
    assert_eq!(end.offending_ips.len(), 90);
}

#[test]
fn syn_acks_answering_the_victims_own_syns_are_not_a_flood() {
    let client = v4(192, 0, 2, 34);
    let mut packets = Vec::new();
    for i in 0..6_000u32 {
        let server = v4(198, 18, 4, (i % 90) as u8);
        let port = 1024 + (i % 5000) as u16;
        let ts = T0 + i as i64 * 250_000;
        packets.push(tcp(ts, (client, port), (server, 443), PacketRecord::TCP_SYN, (i, 0)));
        let flags = PacketRecord::TCP_SYN | PacketRecord::TCP_ACK;
        packets.push(tcp(ts + 1000, (server, 443), (client, port), flags, (9, i + 1)));
    }
    let mut a = Analyzer::new(settings());
    assert!(run(&mut a, packets).is_empty());
}

#[test]
fn reflected_dns_with_fragments_is_amplification_and_fragments_do_not_alert_twice() {
    let victim = IpKey::from_ip("2001:db8::50".parse().unwrap());
    let mut packets = Vec::new();
    for i in 0..3_000u32 {
        let resolver = IpKey::from_ip(format!("2001:db8:ffff::{:x}", i % 200 + 1).parse().unwrap());
        let ts = T0 + i as i64 * 500_000; // 2,000 responses/s, each in two fragments
        packets.push(udp(ts, (resolver, 53), (victim, 40_000 + (i % 999) as u16), Fragment::First));
        packets.push(udp(ts + 1000, (resolver, 0), (victim, 0), Fragment::Later));
    }
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    let kinds: Vec<_> = events.iter().map(|e| (e.event, e.kind)).collect();
    assert_eq!(kinds, vec![(EventKind::Start, AttackKind::Amplification), (EventKind::End, AttackKind::Amplification)]);
    assert_eq!(events[0].service, Some("dns"));
    assert_eq!(events[0].protocol, "udp");
    assert_eq!(events[1].packets, 6_000, "non-first fragments count toward the volume");
}

#[test]
fn fragments_alone_are_a_fragment_flood() {
    let victim = v4(192, 0, 2, 60);
    let packets = (0..4_000u32).map(|i| {
        let mut p = udp(T0 + i as i64 * 250_000, (v4(198, 18, 5, (i % 9) as u8), 0), (victim, 0), Fragment::Later);
        p.protocol = 47; // GRE fragments: no UDP flood to explain them
        p
    });
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    assert_eq!(events[0].kind, AttackKind::FragmentFlood);
    assert_eq!(events[0].protocol, "ip");
}

#[test]
fn long_attacks_send_an_update_every_ten_seconds() {
    let victim = v4(192, 0, 2, 70);
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, syn_flood(T0, 2_000, 25, victim));
    let updates: Vec<i64> = events
        .iter()
        .filter(|e| e.event == EventKind::Update)
        .map(|e| e.timestamp_ns - events[0].timestamp_ns)
        .collect();
    assert_eq!(updates.len(), 2, "{updates:?}");
    for (i, dt) in updates.iter().enumerate() {
        let expected = (i as i64 + 1) * 10_000_000_000;
        assert!((dt - expected).abs() <= TICK_NS, "update {i} after {dt} ns");
    }
    assert!(events.iter().all(|e| e.attack_id == events[0].attack_id));
}

#[test]
fn a_learned_baseline_raises_the_bar_but_never_lowers_the_floor() {
    let victim = v4(192, 0, 2, 80);
    let mut s = settings();
    s.baseline_tau_s = 1.0; // learn fast for the test
    let mut a = Analyzer::new(s);
    // 900 UDP pps for 10 s: below the floor, learned as normal ...
    let normal =
        (0..9_000u32).map(|i| udp(T0 + i as i64 * 1_111_111, (v4(198, 18, 6, 1), 5000), (victim, 7), Fragment::Whole));
    // ... then 2,000 pps: above the floor, but not 4 x the baseline.
    let busier = (0..4_000u32).map(|i| {
        udp(T0 + 10_000_000_000 + i as i64 * 500_000, (v4(198, 18, 6, 1), 5000), (victim, 7), Fragment::Whole)
    });
    let events = run(&mut a, normal.chain(busier));
    assert!(events.is_empty(), "{events:#?}");
}

#[test]
fn reload_changes_thresholds_and_keeps_the_attack_in_progress() {
    let victim = v4(192, 0, 2, 90);
    let mut a = Analyzer::new(settings());
    let mut out = Vec::new();
    let mut flood = syn_flood(T0, 5_000, 4, victim);
    for p in flood.by_ref().take(10_000) {
        a.process(&p, &mut out);
    }
    assert_eq!(out.len(), 1, "started");
    let mut higher = settings();
    higher.thresholds = [100_000; AttackKind::ALL.len()];
    higher.window_ticks = 20;
    let notes = a.reload(higher);
    assert!(notes.iter().any(|n| n.contains("window")), "{notes:?}");
    assert_eq!(a.settings().window_ticks, 10);
    for p in flood {
        a.process(&p, &mut out);
    }
    assert_eq!(a.active_attacks(), 1, "the attack in progress survives a reload");
    a.finish(EndReason::Shutdown, &mut out);
    assert_eq!(out.iter().filter(|e| e.event == EventKind::Start).count(), 1);
    assert_eq!(out.last().unwrap().end.as_ref().unwrap().reason, EndReason::Shutdown);
    // A new victim now needs the new threshold.
    let events = run(&mut a, syn_flood(T0 + 20_000_000_000, 5_000, 2, v4(192, 0, 2, 91)));
    assert!(events.is_empty());
}

#[test]
fn busy_benign_victims_do_not_starve_an_attack_of_source_tracking() {
    let mut s = settings();
    s.max_trackers = 2;
    let mut a = Analyzer::new(s);
    let mut packets = Vec::new();
    // Three busy-but-benign UDP servers at 600 pps hold watches (above a quarter of the threshold).
    for i in 0..6_000u32 {
        let ts = T0 + i as i64 * 500_000;
        let server = v4(192, 0, 2, 100 + (i % 3) as u8);
        packets.push(udp(ts, (v4(198, 18, 7, (i % 50) as u8), 5000), (server, 7000), Fragment::Whole));
    }
    // Then a SYN flood on a fourth victim.
    packets.extend(syn_flood(T0 + 1_000_000_000, 10_000, 1, v4(192, 0, 2, 110)));
    packets.sort_by_key(|p| p.ts_ns);
    let events = run(&mut a, packets);
    let end = events.iter().find(|e| e.event == EventKind::End).unwrap();
    assert_eq!(end.kind, AttackKind::SynFlood);
    assert_eq!(end.sources.distinct_estimate, 50, "{}", end.sources.verdict);
    assert_eq!(end.offending_ips.len(), 50);
    assert_eq!(a.stats.tracker_pool_exhausted, 0);
}

fn icmp(ts: i64, src: IpKey, dst: IpKey, icmp_type: u8) -> PacketRecord {
    PacketRecord {
        ts_ns: ts,
        wire_len: 98,
        src,
        dst,
        protocol: PacketRecord::PROTO_ICMP,
        ttl: 64,
        l4: L4State::Present,
        icmp_type,
        ..Default::default()
    }
}

#[test]
fn echo_replies_to_the_pinger_are_answers_whichever_direction_crosses_first() {
    let victim = v4(192, 0, 2, 1);
    let pinger = v4(192, 0, 2, 2);
    // A capture that sees each reply just before its request (drops, reordering): the
    // replies toward the pinger cross the threshold first.
    let mut packets = Vec::new();
    for i in 0..20_000u32 {
        let ts = T0 + i as i64 * 10_000; // 100,000 pings/s for 0.2 s
        packets.push(icmp(ts, victim, pinger, 0));
        packets.push(icmp(ts + 1, pinger, victim, 8));
    }
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    let flagged: Vec<_> = events.iter().filter(|e| e.event == EventKind::Start).map(|e| (e.kind, e.victim)).collect();
    assert_eq!(flagged, vec![(AttackKind::IcmpFlood, victim.to_ip())]);
}

#[test]
fn unsolicited_echo_replies_are_a_flood() {
    // Smurf-style reflection: replies from many hosts to a victim that pinged nobody.
    let victim = v4(192, 0, 2, 5);
    let packets = (0..5_000u32).map(|i| icmp(T0 + i as i64 * 200_000, v4(198, 18, 8, (i % 200) as u8), victim, 0));
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    assert_eq!(events[0].kind, AttackKind::IcmpFlood);
    assert_eq!(events[0].victim, victim.to_ip());
}

/// A full handshake from `(client, port)` to `(server, 443)` starting at `ts`, then one data
/// segment from the server (an established connection).
fn connection(ts: i64, client: IpKey, port: u16, server: IpKey, isn: u32) -> [PacketRecord; 4] {
    let (syn, ack) = (PacketRecord::TCP_SYN, PacketRecord::TCP_ACK);
    let server_isn = isn ^ 0x5555_5555;
    let (client_next, server_next) = (isn.wrapping_add(1), server_isn.wrapping_add(1));
    [
        tcp(ts, (client, port), (server, 443), syn, (isn, 0)),
        tcp(ts + 40_000, (server, 443), (client, port), syn | ack, (server_isn, client_next)),
        tcp(ts + 20_000_000, (client, port), (server, 443), ack, (client_next, server_next)),
        tcp(ts + 21_000_000, (server, 443), (client, port), ack | 0x08, (server_next, client_next.wrapping_add(200))),
    ]
}

#[test]
fn the_victims_users_are_not_offenders_unless_they_flood_too() {
    let server = v4(198, 51, 100, 30);
    let users: Vec<IpKey> = (0..40).map(|i| v4(100, 64, 1, i + 1)).collect();
    // One user with a completed handshake who then sends 80 SYNs that complete nothing.
    let flooding_user = v4(100, 64, 2, 1);
    let mut packets: Vec<PacketRecord> = Vec::new();
    // Users connect throughout, twice each, before and during the flood.
    for round in 0..2u32 {
        for (i, &user) in users.iter().enumerate() {
            let ts = T0 + (round as i64 * 1_500 + i as i64 * 20) * 1_000_000;
            packets.extend(connection(ts, user, 40_000 + round as u16, server, 1000 * i as u32 + round));
        }
    }
    packets.extend(connection(T0, flooding_user, 50_000, server, 77));
    packets.extend(syn_flood(T0 + 1_000_000_000, 5_000, 1, server).map(|mut p| {
        p.dst_port = 443;
        p
    }));
    packets.extend((0..80u32).map(|i| {
        let ts = T0 + 1_000_000_000 + i as i64 * 10_000_000;
        tcp(ts, (flooding_user, 1024 + i as u16), (server, 443), PacketRecord::TCP_SYN, (i, 0))
    }));
    packets.sort_by_key(|p| p.ts_ns);
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    let end = events.iter().find(|e| e.event == EventKind::End && e.kind == AttackKind::SynFlood).expect("flagged");
    let mut expected: Vec<IpAddr> = (0..50).map(|i| v4(198, 18, 0, i + 1).to_ip()).collect();
    expected.push(flooding_user.to_ip());
    let mut listed = end.offending_ips.clone();
    listed.sort();
    expected.sort();
    assert_eq!(listed, expected, "{}", end.sources.verdict);
}

/// `n` UDP packets at 10,000/s toward `victim` from the source `src(i)` of packet `i`.
fn udp_from(victim: IpKey, n: u32, src: impl Fn(u32) -> IpKey) -> Vec<PacketRecord> {
    (0..n).map(|i| udp(T0 + i as i64 * 100_000, (src(i), 5_000), (victim, 9), Fragment::Whole)).collect()
}

#[test]
fn impossible_sources_are_never_offenders_and_their_share_is_reported() {
    let victim = v4(192, 0, 2, 40);
    let bogon = crate::decode::Prefix::parse("203.0.113.0/24").unwrap();
    let s = DetectionSettings { bogons: vec![bogon], ..settings() };
    // 50 real bots, 100 packets each; among them 8 packets from each of 5 impossible
    // sources: 0.8 % of the flood, not enough to call all of it forged.
    let impossible = [v4(127, 0, 0, 1), v4(0, 1, 2, 3), v4(224, 0, 0, 5), victim, v4(203, 0, 113, 9)];
    let packets = udp_from(victim, 5_040, |i| {
        if i % 126 == 0 {
            impossible[(i / 126) as usize % 5]
        } else {
            v4(198, 18, 3, (i % 50) as u8 + 1)
        }
    });
    let mut a = Analyzer::new(s);
    let events = run(&mut a, packets);
    let end = events.iter().find(|e| e.event == EventKind::End).expect("flagged");
    assert!(!end.sources.spoofed_likely, "{}", end.sources.verdict);
    assert_eq!(end.offending_ips.len(), 50, "{:?}", end.offending_ips);
    for ip in impossible {
        assert!(!end.offending_ips.contains(&ip.to_ip()), "{ip} listed");
    }
    assert!(end.reason.contains("cannot send it"), "{}", end.reason);
}

#[test]
fn a_flood_from_a_multicast_source_is_forged_and_lists_no_one() {
    // The "remote smurf": ICMPv6 echo requests whose source is ff02::1.
    let victim = IpKey::from_ip("2001:db8:1::1".parse().unwrap());
    let all_nodes = IpKey::from_ip("ff02::1".parse().unwrap());
    let packets = (0..3_000u32).map(|i| PacketRecord {
        protocol: PacketRecord::PROTO_ICMPV6,
        ..icmp(T0 + i as i64 * 100_000, all_nodes, victim, ICMPV6_ECHO_REQUEST)
    });
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    let end = events.iter().find(|e| e.event == EventKind::End).expect("flagged");
    assert!(end.sources.spoofed_likely, "{}", end.sources.verdict);
    assert!(end.offending_ips.is_empty(), "{:?}", end.offending_ips);
    assert!(end.sources.verdict.contains("100.0 % of the packets come from addresses that cannot send"));
}

/// `n` ICMPv6 echo requests toward `victim` within 8 ms, among other traffic: UDP from one
/// host to 30,000 others, 3,000 packets over the second before and 40,000 within the burst's
/// 8 ms (more than admission reads back: some of the burst's earlier packets are counted from
/// the doorkeeper's count alone).
fn icmpv6_burst(n: u32, victim: IpKey) -> Vec<PacketRecord> {
    let attacker = IpKey::from_ip("2001:db8:ffff::7".parse().unwrap());
    let mut packets: Vec<PacketRecord> = (0..n)
        .map(|i| PacketRecord {
            protocol: PacketRecord::PROTO_ICMPV6,
            ..icmp(T0 + 1_000_000_000 + i as i64 * 8_000, attacker, victim, ICMPV6_ECHO_REQUEST)
        })
        .collect();
    let talker = v4(100, 64, 0, 1);
    let other = |ts: i64, i: u32| {
        let dst = IpKey::from_v4((0xc000_0000 + i % 30_000).to_be_bytes());
        udp(ts, (talker, 5_000), (dst, 53), Fragment::Whole)
    };
    packets.extend((0..3_000u32).map(|i| other(T0 + i as i64 * 333_000, i)));
    packets.extend((0..40_000u32).map(|i| other(T0 + 1_000_000_000 + i as i64 * 200, i)));
    packets.sort_by_key(|p| p.ts_ns);
    packets
}

#[test]
fn a_burst_of_exactly_the_thresholds_count_is_flagged_and_one_less_is_not() {
    let victim = IpKey::from_ip("2001:db8:1::1".parse().unwrap());
    let threshold = (crate::analyze::DEFAULT_THRESHOLD_PPS as f64 * settings().window_secs()) as u32;
    let flagged = |n: u32| {
        let mut a = Analyzer::new(settings());
        run(&mut a, icmpv6_burst(n, victim)).iter().any(|e| e.event == EventKind::Start && e.victim == victim.to_ip())
    };
    assert!(flagged(threshold), "{threshold} packets in one window not flagged");
    assert!(!flagged(threshold - 1), "{} packets in one window flagged", threshold - 1);
}

/// `n` segments with `flags` from `src(i)` (port `1024 + i`) to `(victim, 443)`, 20,000/s from `start`.
fn segments(start: i64, n: u32, flags: u8, victim: IpKey, src: impl Fn(u32) -> IpKey) -> Vec<PacketRecord> {
    (0..n)
        .map(|i| tcp(start + i as i64 * 50_000, (src(i), 1024 + (i % 60_000) as u16), (victim, 443), flags, (i, i)))
        .collect()
}

#[test]
fn acks_of_known_connections_are_no_flood_and_a_users_acks_on_other_connections_are() {
    let server = v4(198, 51, 100, 40);
    let downloader = v4(100, 64, 3, 1);
    let (ack, psh) = (PacketRecord::TCP_ACK, 0x08);
    // A bulk download: 20,000 ACKs/s for 8 s from the client of one connection, which the
    // server feeds with data, and whose handshake the capture shows.
    let mut packets: Vec<PacketRecord> = connection(T0, downloader, 40_000, server, 9).to_vec();
    for i in 0..160_000u32 {
        let ts = T0 + 30_000_000 + i as i64 * 50_000;
        packets.push(tcp(ts, (server, 443), (downloader, 40_000), ack | psh, (i, 7)));
        packets.push(tcp(ts + 10_000, (downloader, 40_000), (server, 443), ack, (7, i)));
    }
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets.clone());
    assert!(events.is_empty(), "a bulk download raised {events:?}");

    // 100 bots send 20,000 ACKs/s of no connection, and so does a user of the server on
    // ports of no connection it has: both are the flood's sources, the download is not.
    let flooding_user = v4(100, 64, 3, 2);
    packets.extend(connection(T0 + 1_000_000, flooding_user, 50_000, server, 11));
    packets.extend(segments(T0 + 500_000_000, 30_000, ack, server, |i| {
        if i % 101 == 0 {
            flooding_user
        } else {
            v4(198, 18, 4, (i % 100) as u8 + 1)
        }
    }));
    packets.sort_by_key(|p| p.ts_ns);
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    let end = events.iter().find(|e| e.event == EventKind::End && e.kind == AttackKind::AckFlood).expect("flagged");
    assert!(end.reason.contains("% from peers the victim has no connection with"), "{}", end.reason);
    assert!(end.offending_ips.contains(&flooding_user.to_ip()), "{:?}", end.offending_ips);
    assert!(!end.offending_ips.contains(&downloader.to_ip()), "the downloader is listed");
    assert_eq!(end.offending_ips.len(), 101);
    // The download's ACKs go on after the flood: the attack ends on its strangers' rate.
    assert_eq!(end.end.as_ref().unwrap().reason, EndReason::Quiet, "{end:?}");
    assert!(events.iter().all(|e| e.kind == AttackKind::AckFlood), "{events:?}");
}

#[test]
fn null_fin_and_xmas_segments_are_a_tcp_flood_even_from_a_user() {
    let server = v4(198, 51, 100, 42);
    let user = v4(100, 64, 5, 1);
    let mut packets: Vec<PacketRecord> = connection(T0, user, 40_000, server, 3).to_vec();
    packets.extend(segments(T0 + 100_000_000, 20_000, PacketRecord::TCP_FIN, server, |_| user));
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    let end = events.iter().find(|e| e.event == EventKind::End).expect("flagged");
    assert_eq!(end.kind, AttackKind::TcpFlood);
    assert_eq!(end.offending_ips, vec![user.to_ip()]);
}

#[test]
fn a_busy_servers_earlier_users_do_not_make_a_later_flood_look_forged() {
    // 60 s of 1,500 completed connections/s from 45,000 users spread over the whole address
    // space (2 each), then 300 bots flooding at 12,000 SYN/s for 2 s. Judged on a minute of
    // users, the flood's sources would average fewer than 3 packets each over networks as
    // spread as random addresses: a forged verdict, no offenders.
    let server = v4(198, 51, 100, 30);
    let mut rng = capgen::rng::Rng::new(5);
    let users: Vec<IpKey> = (0..45_000)
        .map(|_| {
            let x = rng.next_u32();
            let first = (x >> 24) % 200 + 1;
            IpKey::from_v4((if first == 127 { 128 } else { first } << 24 | (x & 0xff_ffff)).to_be_bytes())
        })
        .collect();
    let mut packets: Vec<PacketRecord> = Vec::new();
    for i in 0..90_000u32 {
        let ts = T0 + i as i64 * 666_667;
        let [syn, syn_ack, ack, _] =
            connection(ts, users[i as usize % users.len()], 40_000 + (i / 45_000) as u16, server, i);
        packets.extend([syn, syn_ack, ack]);
    }
    let bots: Vec<IpKey> = (0..300).map(|i| v4(198, 18, 9 + (i / 250) as u8, (i % 250) as u8 + 1)).collect();
    for i in 0..24_000u32 {
        let ts = T0 + 60_000_000_000 + i as i64 * 83_333;
        let bot = bots[i as usize % bots.len()];
        packets.push(tcp(ts, (bot, 1024 + (i % 60_000) as u16), (server, 443), PacketRecord::TCP_SYN, (i, 0)));
    }
    packets.sort_by_key(|p| p.ts_ns);
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, packets);
    let end = events.iter().find(|e| e.event == EventKind::End && e.kind == AttackKind::SynFlood).expect("flagged");
    assert!(!end.sources.spoofed_likely, "{}", end.sources.verdict);
    let mut listed = end.offending_ips.clone();
    listed.sort();
    let mut expected: Vec<IpAddr> = bots.iter().map(|b| b.to_ip()).collect();
    expected.sort();
    assert_eq!(listed, expected);
}

/// `rate` packets per second for `secs` from 100 bots to the hosts of 198.51.100.0/24 in
/// turn, each made by `packet(ts, bot, port, host)`.
fn spread_over_a_slash_24(
    rate: u64,
    secs: u64,
    packet: impl Fn(i64, IpKey, u16, IpKey) -> PacketRecord,
) -> impl Iterator<Item = PacketRecord> {
    let gap = 1_000_000_000 / rate as i64;
    (0..rate * secs).map(move |i| {
        let bot = v4(100, 72, (i % 100) as u8, 9);
        packet(T0 + i as i64 * gap, bot, 1024 + (i % 60_000) as u16, v4(198, 51, 100, (i % 254) as u8 + 1))
    })
}

#[test]
fn a_syn_flood_spread_over_a_prefix_is_flagged_against_the_prefix() {
    let mut a = Analyzer::new(settings());
    // 20,000 SYN/s over 254 hosts: 79 each, far under a host's 1,000.
    let syns = spread_over_a_slash_24(20_000, 2, |ts, bot, port, host| {
        tcp(ts, (bot, port), (host, 80), PacketRecord::TCP_SYN, (port as u32, 0))
    });
    let events = run(&mut a, syns);
    let starts: Vec<_> = events.iter().filter(|e| e.event == EventKind::Start).collect();
    assert_eq!(starts.len(), 1, "{events:#?}");
    let (start, end) = (starts[0], events.last().unwrap());
    assert_eq!((start.kind, start.victim_text().as_str()), (AttackKind::SynFlood, "198.51.100.0/24"));
    assert_eq!(start.threshold_pps, 10_000);
    assert!(start.reason.contains("no answers"), "{}", start.reason);
    assert!(end.victim_hosts.is_some_and(|n| n >= 250), "{:?} hosts", end.victim_hosts);
    // Each sampled packet stands for 32: the total is an estimate.
    assert!((36_000..44_000).contains(&end.packets), "{} packets of 40,000", end.packets);
    assert_eq!(end.offending_ips.len(), 100);
    assert!(end.offending_ips.iter().all(|ip| ip.to_string().starts_with("100.72.")));
}

#[test]
fn a_web_farm_completing_its_handshakes_is_no_carpet_bombing() {
    let mut a = Analyzer::new(settings());
    // The same 20,000 SYN/s over the /24, each answered and completed: a busy farm.
    let handshakes = spread_over_a_slash_24(20_000, 2, |ts, client, port, server| {
        tcp(ts, (client, port), (server, 443), PacketRecord::TCP_SYN, (port as u32, 0))
    })
    .flat_map(|syn| {
        let (client, server, port) = (syn.src, syn.dst, syn.src_port);
        let answer = tcp(
            syn.ts_ns + 10_000,
            (server, 443),
            (client, port),
            PacketRecord::TCP_SYN | PacketRecord::TCP_ACK,
            (9, syn.tcp_seq + 1),
        );
        let ack = tcp(syn.ts_ns + 20_000, (client, port), (server, 443), PacketRecord::TCP_ACK, (syn.tcp_seq + 1, 10));
        [syn, answer, ack]
    });
    let events = run(&mut a, handshakes);
    assert!(events.is_empty(), "{events:#?}");
}

#[test]
fn a_flood_on_one_host_is_not_reported_again_against_its_prefix() {
    let mut a = Analyzer::new(settings());
    let victim = v4(198, 51, 100, 7);
    let flood = (0..40_000u64).map(|i| {
        udp(
            T0 + i as i64 * 50_000,
            (v4(100, 72, (i % 100) as u8, 9), 1024 + (i % 60_000) as u16),
            (victim, 9),
            Fragment::Whole,
        )
    });
    let events = run(&mut a, flood);
    let attacked: Vec<_> = events.iter().filter(|e| e.event == EventKind::Start).map(|e| e.victim_text()).collect();
    assert_eq!(attacked, ["198.51.100.7"]);
    // The prefix saw its threshold's worth, but all of it on one host: the host's flood.
    assert_eq!(a.stats().attacks_started, 1);
}

#[test]
fn carpet_factor_zero_turns_prefix_detection_off() {
    let settings = DetectionSettings {
        carpet: crate::analyze::CarpetSettings { factor: 0.0, ..Default::default() },
        ..settings()
    };
    let mut a = Analyzer::new(settings);
    let flood =
        spread_over_a_slash_24(20_000, 2, |ts, bot, port, host| udp(ts, (bot, port), (host, 9), Fragment::Whole));
    assert!(run(&mut a, flood).is_empty());
}

#[test]
fn a_one_flow_flood_on_one_host_that_the_sample_takes_whole_is_the_host_s_alone() {
    // A ping flood is one flow: the sample takes all of it or none, each packet counting 32,
    // so the prefix reaches its threshold's worth after 313 packets, before the host reaches
    // its own 1,000. Find a pair whose flow is in the sample.
    let scope = carpet::PrefixScope::new(&settings(), KeyedHasher::new(settings().hash_seed)).unwrap();
    let ping = |ts: i64, attacker: IpKey| icmp(ts, attacker, v4(192, 0, 2, 1), ICMP_ECHO_REQUEST);
    let attacker = (2..=254).map(|d| v4(192, 0, 2, d)).find(|a| scope.sampled(&ping(T0, *a))).expect("a sampled flow");
    let mut a = Analyzer::new(settings());
    let events = run(&mut a, (0..20_000).map(|i| ping(T0 + i * 50_000, attacker)));
    let attacked: Vec<_> = events.iter().filter(|e| e.event == EventKind::Start).map(|e| e.victim_text()).collect();
    assert_eq!(attacked, ["192.0.2.1"]);
}

#[test]
fn a_flood_sampled_one_in_ten_is_reported_as_the_whole_flood() {
    // 5,000 pps of UDP for 3 s from 50 sources, each sending runs of 10 packets in turn; and
    // every tenth of those packets with weight 10, what sFlow at 1:10 delivers. Sampling one
    // packet of each run, the sample stands for exactly the whole flood.
    let victim = v4(192, 0, 2, 80);
    let flood = |every: u32| {
        (0..15_000u32).filter(move |i| i % every == 0).map(move |i| {
            let source = v4(198, 18, 7, (i / 10 % 50) as u8);
            let p = udp(T0 + i as i64 * 200_000, (source, 4000), (victim, 9999), Fragment::Whole);
            PacketRecord { weight: every as u16, ..p }
        })
    };
    let whole = run(&mut Analyzer::new(settings()), flood(1));
    let sampled = run(&mut Analyzer::new(settings()), flood(10));
    assert_eq!(whole.len(), 2, "{whole:#?}");
    let kinds = |events: &[AttackEvent]| events.iter().map(|e| (e.event, e.kind, e.victim)).collect::<Vec<_>>();
    assert_eq!(kinds(&sampled), kinds(&whole));
    let (whole, sampled) = (whole.last().unwrap(), sampled.last().unwrap());
    assert_eq!((sampled.packets, sampled.bytes, sampled.peak_pps), (whole.packets, whole.bytes, whole.peak_pps));
    assert_eq!(sampled.sources.top, whole.sources.top);
    assert_eq!(sampled.sources.distinct_estimate, whole.sources.distinct_estimate);
    assert_eq!(sampled.offending_ips, whole.offending_ips);
    assert_eq!(whole.offending_ips.len(), 50);
}

#[test]
fn a_sampled_flood_needs_eight_samples_and_says_its_counts_are_estimates() {
    // Packets sampled 1 in 1,000 toward one victim, 100 ms apart: each stands for 10,000 pps.
    let victim = v4(192, 0, 2, 81);
    let samples = |n: u32| {
        (0..n).map(move |i| {
            let p = udp(T0 + i as i64 * 100_000_000, (v4(198, 18, 8, i as u8), 4000), (victim, 9999), Fragment::Whole);
            PacketRecord { weight: 1_000, ..p }
        })
    };
    // Seven samples are not evidence enough; the eighth is counted, and the tick after it (the
    // ninth sample moves packet time on) decides.
    assert!(run(&mut Analyzer::new(settings()), samples(8)).is_empty());
    let events = run(&mut Analyzer::new(settings()), samples(9));
    let kinds: Vec<_> = events.iter().map(|e| (e.event, e.kind)).collect();
    assert_eq!(kinds, [(EventKind::Start, AttackKind::UdpFlood), (EventKind::End, AttackKind::UdpFlood)]);
    assert!(
        events[0].reason.ends_with("; estimated from packets sampled 1 in 1,000, each counted 1,000 times"),
        "{}",
        events[0].reason
    );
    assert_eq!(events[0].packets, 8_000);
}

#[test]
fn a_sampled_syn_flood_is_judged_by_its_rate_and_says_why() {
    // SYNs sampled 1 in 100 (2,000 pps), with the victim's SYN-ACKs sampled too: in samples,
    // no handshake can be followed, so the answers do not clear the SYNs.
    let victim = v4(192, 0, 2, 82);
    let mut packets = Vec::new();
    for i in 0..40u32 {
        let ts = T0 + i as i64 * 50_000_000;
        let client = (v4(198, 18, 9, i as u8), 40_000);
        packets.push(PacketRecord { weight: 100, ..tcp(ts, client, (victim, 443), PacketRecord::TCP_SYN, (i, 0)) });
        let answer = tcp(ts + 1_000, (victim, 443), client, PacketRecord::TCP_SYN | PacketRecord::TCP_ACK, (7, i + 1));
        packets.push(PacketRecord { weight: 100, ..answer });
    }
    let events = run(&mut Analyzer::new(settings()), packets);
    assert_eq!(events[0].kind, AttackKind::SynFlood);
    assert!(events[0].reason.contains("handshakes cannot be followed in sampled telemetry"), "{}", events[0].reason);
}

/// The SYNs toward `victim` in `summaries`.
fn summarized_syns(summaries: &[SecondSummary], victim: IpKey) -> u64 {
    let victims = summaries.iter().flat_map(|s| &s.victims).filter(|v| v.victim == victim);
    victims.flat_map(|v| &v.cells).filter(|(c, _)| *c == Class::Syn as u8).map(|(_, n)| n).sum()
}

#[test]
fn a_sensor_summarizes_each_second_of_a_flood_with_its_sources() {
    let victim = v4(10, 0, 0, 1);
    let mut a = Analyzer::new(settings());
    a.summarize_seconds("edge-1").unwrap();
    let events = run(&mut a, syn_flood(T0, 5_000, 3, victim));
    assert_eq!(events[0].kind, AttackKind::SynFlood);
    let summaries = a.take_summaries();
    let first = T0 / 1_000_000_000;
    assert_eq!(summaries.iter().map(|s| s.second).collect::<Vec<_>>(), [first, first + 1, first + 2]);
    assert!(summaries.iter().all(|s| s.sensor == "edge-1" && s.victims_left_out == 0));
    assert_eq!(summarized_syns(&summaries, victim), 15_000);
    let last = &summaries[2].victims[0];
    assert_eq!((last.victim, last.watches.len()), (victim, 1));
    let watch = &last.watches[0];
    assert!(watch.attacked && watch.class == Class::Syn as u8);
    assert_eq!(watch.tracker.sources.counters.len(), 50);
    // 2^12 registers: linear counting, within a few percent.
    assert!((48..=52).contains(&watch.tracker.distinct_sources()), "{}", watch.tracker.distinct_sources());
    for s in summaries {
        let bytes = s.clone().encode().unwrap();
        assert!(bytes.len() <= summary::MAX_SUMMARY_BYTES);
        assert_eq!(SecondSummary::decode(&bytes), Ok(s));
    }
    assert!(a.take_summaries().is_empty());
}

#[test]
fn the_trackers_of_three_sensors_seeing_a_third_each_merge_into_the_whole() {
    let victim = v4(10, 0, 0, 1);
    let flood: Vec<PacketRecord> = syn_flood(T0, 6_000, 2, victim).collect();
    let last_watch = |sensor: &str, packets: &mut dyn Iterator<Item = PacketRecord>| {
        let mut a = Analyzer::new(settings());
        a.summarize_seconds(sensor).unwrap();
        run(&mut a, packets);
        let summaries = a.take_summaries();
        summaries.last().and_then(|s| s.victims.first()).map(|v| v.watches[0].tracker.clone()).unwrap()
    };
    let whole = last_watch("all", &mut flood.iter().copied());
    let mut merged = (0..3u8)
        .map(|part| {
            let third = flood.iter().copied().filter(|p| (p.src.0 as u8) % 3 == part);
            last_watch(&format!("edge-{part}"), &mut third.into_iter())
        })
        .reduce(|mut a, b| {
            a.merge(&b, summary::SUMMARY_SOURCES);
            a
        })
        .unwrap();
    assert_eq!(merged.packets, whole.packets);
    assert_eq!(merged.distinct_sources(), whole.distinct_sources());
    assert_eq!(merged.networks, whole.networks);
    assert_eq!(merged.ttls, whole.ttls);
    let keys = |t: &summary::TrackerSummary| {
        let mut k: Vec<IpKey> = t.sources.counters.iter().map(|c| c.key).collect();
        k.sort();
        k
    };
    assert_eq!(keys(&merged), keys(&whole));
    merged.sources.counters.sort_by_key(|c| c.key);
    assert!(merged.sources.counters.iter().all(|c| c.count == whole.packets / 50 && c.error == 0));
}

/// `flood` seen by `sensors` sensors named `{name}-{k}`, sensor k getting the sources whose
/// last two octets XORed are k modulo their number, then their summaries counted second by second by an
/// aggregator: each sensor's own alerts, every summary, the aggregator's alerts.
fn sensors_then_aggregator(
    flood: &[PacketRecord],
    sensors: u8,
    name: &str,
) -> (Vec<Vec<AttackEvent>>, Vec<SecondSummary>, Vec<AttackEvent>) {
    let mut own = Vec::new();
    let mut summaries = Vec::new();
    for part in 0..sensors {
        let mut sensor = Analyzer::new(settings());
        sensor.summarize_seconds(&format!("{name}-{part}")).unwrap();
        let sensor_of = |p: &PacketRecord| (p.src.0 as u8 ^ (p.src.0 >> 8) as u8) % sensors;
        own.push(run(&mut sensor, flood.iter().copied().filter(|p| sensor_of(p) == part)));
        summaries.extend(sensor.take_summaries());
    }
    // Second by second, each second's in the sensors' order (a stable sort).
    summaries.sort_by_key(|s| s.second);
    let events = aggregate(&summaries);
    (own, summaries, events)
}

/// An aggregator's alerts from `summaries`, counted second by second (each second's in the
/// order given).
fn aggregate(summaries: &[SecondSummary]) -> Vec<AttackEvent> {
    let mut seconds: std::collections::BTreeMap<i64, Vec<SecondSummary>> = Default::default();
    for s in summaries {
        seconds.entry(s.second).or_default().push(s.clone());
    }
    let mut aggregator = Analyzer::new(settings());
    let mut events = Vec::new();
    for (second, summaries) in &seconds {
        aggregator.count_sensors_second(*second, summaries, &mut events);
    }
    aggregator.finish(EndReason::EndOfInput, &mut events);
    events
}

#[test]
fn three_sensors_each_below_the_threshold_make_one_attack_at_their_aggregator() {
    let victim = v4(10, 0, 0, 1);
    // 2,400 SYNs/s for 4 s from 50 sources; each sensor sees a third of the sources: about
    // 800 SYNs/s each, below the 1,000 pps threshold.
    let flood: Vec<PacketRecord> = syn_flood(T0, 2_400, 4, victim).collect();
    let (own, _, events) = sensors_then_aggregator(&flood, 3, "edge");
    assert!(own.iter().all(|alone| alone.is_empty()), "a third of the flood is below the threshold: {own:#?}");
    let kinds: Vec<EventKind> = events.iter().map(|e| e.event).collect();
    assert_eq!(kinds, [EventKind::Start, EventKind::End], "{events:#?}");
    let (start, end) = (&events[0], &events[1]);
    assert_eq!((start.kind, start.victim), (AttackKind::SynFlood, victim.to_ip()));
    assert_eq!(start.sensors, ["edge-0", "edge-1", "edge-2"]);
    // Decided within the first second, where the sum crossed the threshold.
    assert!(start.timestamp_ns < T0 + 1_000_000_000, "{}", start.timestamp_ns - T0);
    let mut offenders = start.offending_ips.clone();
    offenders.sort();
    let mut sources: Vec<IpAddr> = (1..=50).map(|i| v4(198, 18, 0, i).to_ip()).collect();
    sources.sort();
    assert_eq!(offenders, sources);
    assert_eq!(end.packets, 9_600);
    assert!((48..=52).contains(&end.sources.distinct_estimate), "{}", end.sources.distinct_estimate);
}

#[test]
fn a_flood_spread_over_ten_sites_is_reported_with_its_sources() {
    let victim = v4(10, 0, 0, 1);
    // Ten sensors at 150 SYNs/s each (from 5 sources each): a sixth of a lone analyzer's
    // quarter, but above a sensor's sixteenth of its 1,000 pps threshold.
    let flood: Vec<PacketRecord> = syn_flood(T0, 1_500, 3, victim).collect();
    let (own, summaries, events) = sensors_then_aggregator(&flood, 10, "site");
    assert!(own.iter().all(|alone| alone.is_empty()), "{own:#?}");
    assert!(summaries.iter().flat_map(|s| &s.victims).any(|v| !v.watches.is_empty()), "{summaries:?}");
    let start = events.iter().find(|e| e.event == EventKind::Start).expect("the summed flood");
    assert_eq!((start.kind, start.sensors.len()), (AttackKind::SynFlood, 10));
    let mut offenders = start.offending_ips.clone();
    offenders.sort();
    let mut sources: Vec<IpAddr> = (1..=50).map(|i| v4(198, 18, 0, i).to_ip()).collect();
    sources.sort();
    assert_eq!(offenders, sources, "{}", start.sources.verdict);
}

#[test]
fn an_aggregated_flood_no_sensor_watched_says_its_sources_were_not_reported() {
    let victim = v4(10, 0, 0, 1);
    // Twenty-five sensors at 48 SYNs/s each (2 sources each): below a sensor's sixteenth of
    // its 1,000 pps threshold (62), above its admission (30 pps): counted, not watched.
    let flood: Vec<PacketRecord> = syn_flood(T0, 1_200, 3, victim).collect();
    let (_, summaries, events) = sensors_then_aggregator(&flood, 25, "site");
    assert!(summaries.iter().flat_map(|s| &s.victims).all(|v| v.watches.is_empty()), "{summaries:?}");
    let start = events.iter().find(|e| e.event == EventKind::Start).expect("the summed flood");
    assert_eq!((start.kind, start.sensors.len()), (AttackKind::SynFlood, 25));
    assert!(start.sources.verdict.starts_with("sources not reported"), "{}", start.sources.verdict);
    assert!(start.offending_ips.is_empty() && start.sources.top.is_empty());
}

#[test]
fn a_carpet_bombing_split_over_three_sensors_is_flagged_against_the_prefix_by_their_aggregator() {
    // 20,000 SYN/s over the hosts of a /24 from 100 bots, each sensor seeing a third of the
    // bots: 6,700 SYN/s each, below the prefix's 10,000.
    let syns: Vec<PacketRecord> = spread_over_a_slash_24(20_000, 2, |ts, bot, port, host| {
        tcp(ts, (bot, port), (host, 80), PacketRecord::TCP_SYN, (port as u32, 0))
    })
    .collect();
    let (own, summaries, events) = sensors_then_aggregator(&syns, 3, "edge");
    assert!(own.iter().all(|alone| alone.is_empty()), "{own:#?}");
    assert!(summaries.iter().all(|s| !s.prefixes.is_empty()));
    let starts: Vec<_> = events.iter().filter(|e| e.event == EventKind::Start).collect();
    assert_eq!(starts.len(), 1, "{events:#?}");
    let start = starts[0];
    assert_eq!((start.kind, start.victim_text().as_str()), (AttackKind::SynFlood, "198.51.100.0/24"));
    assert_eq!(start.sensors, ["edge-0", "edge-1", "edge-2"]);
    let end = events.iter().find(|e| e.event == EventKind::End).expect("its end");
    // Each sampled packet stands for 32: the total is an estimate.
    assert!((36_000..44_000).contains(&end.packets), "{} packets of 40,000", end.packets);
    assert_eq!(end.offending_ips.len(), 100, "{}", end.sources.verdict);
    assert!(end.offending_ips.iter().all(|ip| ip.to_string().starts_with("100.72.")));
}

#[test]
fn a_summary_claiming_sources_beyond_any_count_saturates_the_aggregators_prefix_report() {
    // The carpet bombing above, its sensors' summaries then altered as a sensor that lies (or
    // a forged NATS message) could: every source of every prefix watch at 2^60 packets. The
    // carpet analyzer scales its sampled counts by 32: beyond u64, they read as its largest.
    let syns: Vec<PacketRecord> = spread_over_a_slash_24(20_000, 2, |ts, bot, port, host| {
        tcp(ts, (bot, port), (host, 80), PacketRecord::TCP_SYN, (port as u32, 0))
    })
    .collect();
    let (_, mut summaries, _) = sensors_then_aggregator(&syns, 3, "edge");
    let mut altered = 0;
    for watch in summaries.iter_mut().flat_map(|s| &mut s.prefixes).flat_map(|p| &mut p.watches) {
        for c in &mut watch.tracker.sources.counters {
            (c.count, c.error) = (1 << 60, 0);
            altered += 1;
        }
    }
    assert!(altered > 0);
    let events = aggregate(&summaries);
    let end = events.iter().find(|e| e.event == EventKind::End).expect("the prefix's attack ends");
    assert_eq!(end.victim_text(), "198.51.100.0/24");
    assert!(!end.sources.top.is_empty());
    assert!(end.sources.top.iter().all(|(_, packets)| *packets == u64::MAX), "{:?}", end.sources.top);
}
