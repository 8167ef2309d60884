//! BGP mitigation through ExaBGP. Replays write the routes each attack calls for to a file:
//! an amplification's rule by its reflectors' port, a SYN flood's rule by its flag, one rule
//! per offending source when they are real and few enough, nothing sent in a dry run. And
//! the whole chain in network namespaces: floodwatch, the relay ExaBGP runs, ExaBGP, BIRD.

mod common;

use common::netns::{namespaces, Proc};
use common::*;
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The routes a replay of `capture` wrote to its `--exabgp` file, its stderr and its alerts.
fn routes_of(capture: &Path, config: &str, name: &str) -> (Vec<String>, String, Vec<Value>) {
    let dir = Scratch::new(name);
    let (file, conf, alerts) = (dir.path("exabgp.api"), dir.path("floodwatch.toml"), dir.path("alerts.jsonl"));
    std::fs::write(&conf, config).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(["replay", "--no-progress", "--config"])
        .arg(&conf)
        .arg("--alerts")
        .arg(&alerts)
        .arg("--exabgp")
        .arg(&file)
        .arg(capture)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let lines = std::fs::read_to_string(&file).unwrap_or_default().lines().map(str::to_string).collect();
    let alerts = std::fs::read_to_string(&alerts).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (lines, stderr, alerts)
}

#[test]
fn an_amplification_flood_is_dropped_upstream_by_source_port_while_it_lasts() {
    let (lines, stderr, _) = routes_of(&repo_path("captures/dns_amplification.pcap.gz"), "", "exabgp-amplification");
    let rule = "flow route { match { destination 192.0.2.50/32; protocol udp; source-port =53; } then { discard; } }";
    assert_eq!(lines, [format!("announce {rule}"), format!("withdraw {rule}")]);
    assert!(
        stderr.contains("bgp: 1 routes announced (1 flowspec_destination), 1 withdrawn, 0 refused by the safety rails"),
        "{stderr}"
    );
}

#[test]
fn a_syn_flood_from_real_bots_is_dropped_by_source_when_they_fit_and_by_its_syn_flag_otherwise() {
    let capture = repo_path("captures/syn_flood_real_sources.pcap");
    // More bots than the 20 source rules of the default: the flood's SYNs to the port they hit.
    let (lines, _, _) = routes_of(&capture, "", "exabgp-syn");
    let rule = "flow route { match { destination 198.51.100.10/32; protocol tcp; destination-port =443; tcp-flags [ syn ]; } then { discard; } }";
    assert_eq!(lines, [format!("announce {rule}"), format!("withdraw {rule}")]);

    // Room for them: one rule per offending source the alert lists, and for no other.
    let config = "[mitigation]\nexabgp = \"unused\"\nmax_routes = 1000\nmax_source_rules = 1000\n";
    let (lines, stderr, alerts) = routes_of(&capture, config, "exabgp-syn-sources");
    let start = alerts.iter().find(|a| a["event"] == "attack_start").unwrap();
    let offenders: BTreeSet<String> =
        start["offending_ips"].as_array().unwrap().iter().map(|ip| ip.as_str().unwrap().to_string()).collect();
    assert!(offenders.len() > 20, "{}", offenders.len());
    let announced: BTreeSet<String> = lines
        .iter()
        .filter_map(|l| l.strip_prefix("announce flow route { match { source "))
        .map(|l| {
            let (source, rest) = l.split_once("/32; ").unwrap();
            assert_eq!(
                rest,
                "destination 198.51.100.10/32; protocol tcp; destination-port =443; tcp-flags [ syn ]; } then { discard; } }"
            );
            source.to_string()
        })
        .collect();
    assert_eq!(announced, offenders);
    assert_eq!(lines.len(), 2 * offenders.len(), "each announced once and withdrawn once: {stderr}");
}

#[test]
fn a_dry_run_logs_the_routes_and_sends_nothing() {
    let dir = Scratch::new("exabgp-dry-run");
    let conf = dir.path("floodwatch.toml");
    std::fs::write(&conf, "[mitigation]\ndry_run = true\nexabgp = \"unix:/nonexistent/relay.sock\"\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(["replay", "--no-progress", "--alerts", "/dev/null", "--config"])
        .arg(&conf)
        .arg(repo_path("captures/dns_amplification.pcap.gz"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let rule = "flow route { match { destination 192.0.2.50/32; protocol udp; source-port =53; } then { discard; } }";
    assert!(stderr.contains(&format!("dry run, not sent: announce {rule}")), "{stderr}");
    assert!(stderr.contains(&format!("dry run, not sent: withdraw {rule}")), "{stderr}");
    assert!(!stderr.contains("relay"), "no link to the relay: {stderr}");
    let checked = Command::new(env!("CARGO_BIN_EXE_floodwatch")).arg("check-config").arg(&conf).output().unwrap();
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(
        stdout.contains(
            "BGP mitigation as a dry run (nothing sent): FlowSpec for 9 of 9 kinds, at most 100 routes, no RTBH"
        ),
        "{stdout}"
    );
}

/// What BIRD's table `table` holds now, every attribute shown.
fn bird_routes(ctl: &str, table: &str) -> String {
    let out = Command::new("birdc").args(["-s", ctl, "show", "route", "table", table, "all"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// BIRD's count of a table's routes.
fn route_count(ctl: &str, table: &str) -> String {
    let out = Command::new("birdc").args(["-s", ctl, "show", "route", "table", table, "count"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout).lines().last().unwrap_or_default().trim().to_string()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    // Bounded: the BGP session comes up and an update crosses it within seconds.
    for _ in 0..300 {
        if done() {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("no {what} within 30 s");
}

/// `floodwatch replay -` with `config`, its alerts to `alerts`, fed through its stdin.
fn replay_from_pipe(config: &Path, alerts: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(["replay", "--no-progress", "--config"])
        .arg(config)
        .arg("--alerts")
        .arg(alerts)
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// The whole chain in two network namespaces, on a shared capture's amplification flood (ISAKMP
/// reflected from source port 4500 to 10.10.10.10): floodwatch links to the relay ExaBGP runs,
/// ExaBGP peers with BIRD over a veth. While the flood lasts BIRD's FlowSpec table holds the
/// rule (destination, protocol, source port, traffic-rate 0) and, RTBH being configured for
/// amplification above 500 packets/s, master4 holds the victim's /32 with the blackhole
/// community. floodwatch killed and started again: the relay keeps both routes and announces
/// neither twice. ExaBGP restarted: floodwatch's link comes back and BIRD gets both again. At
/// `attack_end` both are withdrawn.
#[test]
fn a_router_peering_with_exabgp_drops_the_amplification_while_it_lasts_through_restarts() {
    let Some(shared) = shared_captures() else {
        return skip("the ExaBGP-BIRD test needs ../shared/captures (its ISAKMP amplification)");
    };
    let Some((_turn, net)) = namespaces("the ExaBGP-BIRD test", &["ip", "bird", "birdc", "exabgp"], 'b') else {
        return;
    };
    let dir = Scratch::new("exabgp-bird");
    // The "victim" namespace of the pair plays the router (BIRD, 192.0.2.1), the other
    // ExaBGP (192.0.2.2).
    let (bird_conf, exabgp_conf, ctl, socket) =
        (dir.path("bird.conf"), dir.path("exabgp.conf"), dir.path("bird.ctl"), dir.path("relay.sock"));
    std::fs::write(
        &bird_conf,
        "router id 192.0.2.1;\nflow4 table flowtab4;\nprotocol device {}\nprotocol bgp exabgp {\n  local 192.0.2.1 as 65000;\n  \
         neighbor 192.0.2.2 as 65001;\n  passive on;\n  ipv4 { import all; export none; };\n  \
         flow4 { table flowtab4; import all; export none; };\n}\n",
    )
    .unwrap();
    std::fs::write(
        &exabgp_conf,
        format!(
            "process floodwatch {{\n  run {} exabgp-relay --socket {} --grace 120;\n  encoder text;\n}}\n\
             neighbor 192.0.2.1 {{\n  router-id 192.0.2.2;\n  local-address 192.0.2.2;\n  local-as 65001;\n  peer-as 65000;\n  \
             family {{ ipv4 flow; ipv4 unicast; }}\n  api {{ processes [ floodwatch ]; }}\n}}\n",
            env!("CARGO_BIN_EXE_floodwatch"),
            socket.display()
        ),
    )
    .unwrap();
    let config = dir.path("floodwatch.toml");
    std::fs::write(
        &config,
        format!(
            "[mitigation]\nexabgp = \"unix:{}\"\n[mitigation.rtbh]\nkinds = [\"amplification\"]\nmin_pps = 500\n",
            socket.display()
        ),
    )
    .unwrap();
    let ctl = ctl.to_str().unwrap();
    let _bird =
        Proc::spawn(&net.victim, &["bird", "-f", "-c", bird_conf.to_str().unwrap(), "-s", ctl], &dir.path("bird.log"));
    let start_exabgp = |n: u32| {
        let log = format!("exabgp.log.destination={}", dir.path(&format!("exabgp-{n}.events")).display());
        let args = ["env", "exabgp.daemon.user=root", &log, "exabgp.api.ack=false", "exabgp.cli.pipe=false"];
        let exabgp = Proc::spawn(
            &net.attacker,
            &[&args[..], &["exabgp", exabgp_conf.to_str().unwrap()]].concat(),
            &dir.path(&format!("exabgp-{n}.log")),
        );
        wait_until("BGP session", || {
            let out = Command::new("birdc").args(["-s", ctl, "show", "protocols", "exabgp"]).output();
            out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("Established"))
        });
        exabgp
    };
    let mut exabgp = start_exabgp(1);

    let pcap = Pcap::read(&shared.join("stopddos__amp.UDP.isakmp.pcap"));
    let part = pcap.records.len() * 6 / 10;
    let feed = |child: &mut Child, records: &[Vec<u8>], header: bool| {
        let stdin = child.stdin.as_mut().unwrap();
        if header {
            stdin.write_all(&pcap.header).unwrap();
        }
        records.iter().for_each(|r| stdin.write_all(r).unwrap());
        stdin.flush().unwrap();
    };
    let rule = "flow4 { dst 10.10.10.10/32; proto 17; sport 4500; }";
    let both_held = || {
        let (flow, unicast) = (bird_routes(ctl, "flowtab4"), bird_routes(ctl, "master4"));
        flow.contains(rule)
            // The discard action travels as traffic-rate 0 (RFC 8955 7.3: 0x8006, rate 0).
            && flow.contains("BGP.ext_community: (generic, 0x80060000, 0x0)")
            && unicast.contains("10.10.10.10/32")
            // RFC 7999's BLACKHOLE, and NO_EXPORT.
            && unicast.contains("BGP.community: (65535,666) (65535,65281)")
    };

    // The first floodwatch: the flood's first part, then it dies without a word (SIGKILL).
    let mut first = replay_from_pipe(&config, &dir.path("alerts-1.jsonl"));
    feed(&mut first, &pcap.records[..part], true);
    wait_until("FlowSpec rule and blackhole route in BIRD", both_held);
    assert_eq!(route_count(ctl, "flowtab4"), "1 of 1 routes for 1 networks in table flowtab4");
    first.kill().unwrap();
    first.wait().unwrap();

    // The second one sees the same flood: the relay has both routes out already.
    let alerts = dir.path("alerts-2.jsonl");
    let mut second = replay_from_pipe(&config, &alerts);
    feed(&mut second, &pcap.records[..part], true);
    wait_until("the second floodwatch's attack_start", || {
        std::fs::read_to_string(&alerts).is_ok_and(|a| a.contains("\"attack_start\""))
    });
    assert!(both_held(), "{}", bird_routes(ctl, "flowtab4"));
    // The relay logs each line it gives ExaBGP (its standard error is ExaBGP's).
    let relay_lines = |log: &str, verb: &str| {
        log.matches(&format!("{verb} flow route")).count() + log.matches(&format!("{verb} route")).count()
    };
    wait_until("the relay's log of the second link", || exabgp.output().matches("floodwatch connected").count() == 2);
    assert_eq!(relay_lines(&exabgp.output(), "announce"), 2, "announced once each:\n{}", exabgp.output());

    // ExaBGP restarted (and with it the relay): the router loses both routes, then gets them
    // again from the set floodwatch sends when its link comes back.
    exabgp.signal(libc::SIGTERM);
    assert!(exabgp.wait_for(Duration::from_secs(30)).is_some(), "ExaBGP did not stop");
    wait_until("withdrawal as the session went down", || !bird_routes(ctl, "flowtab4").contains(rule));
    let restarted = start_exabgp(2);
    wait_until("both routes again after the restart", both_held);
    assert_eq!(relay_lines(&restarted.output(), "announce"), 2, "{}", restarted.output());

    // The rest of the flood, and the end of the input: attack_end withdraws both.
    feed(&mut second, &pcap.records[part..], false);
    drop(second.stdin.take());
    let out = second.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("bgp: 2 routes announced (1 flowspec_destination, 1 rtbh), 2 withdrawn"), "{stderr}");
    // Counted by BIRD itself (an empty answer would prove nothing).
    wait_until("withdrawal in BIRD", || {
        route_count(ctl, "flowtab4") == "0 of 0 routes for 0 networks in table flowtab4"
            && route_count(ctl, "master4") == "0 of 0 routes for 0 networks in table master4"
    });
    assert_eq!(relay_lines(&restarted.output(), "withdraw"), 2, "{}", restarted.output());
}
