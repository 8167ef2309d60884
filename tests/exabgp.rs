//! `--exabgp FILE`: the replay of an amplification flood appends one FlowSpec rule for it as
//! ExaBGP API lines, announced at its start and withdrawn at its end; a SYN flood's matches
//! its SYNs to the port it hits; and a real ExaBGP feeding a real BIRD gives the router the
//! rule while the flood lasts.

mod common;

use common::netns::{namespaces, Proc};
use common::*;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

fn rules_of(capture: &str, name: &str) -> (Vec<String>, String) {
    let dir = Scratch::new(name);
    let file = dir.path("exabgp.api");
    let out = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(["replay", "--no-progress", "--alerts", "/dev/null", "--exabgp"])
        .arg(&file)
        .arg(repo_path(capture))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{stderr}");
    let lines = std::fs::read_to_string(&file).unwrap().lines().map(str::to_string).collect();
    (lines, stderr)
}

#[test]
fn an_amplification_flood_is_dropped_upstream_by_source_port_while_it_lasts() {
    let (lines, stderr) = rules_of("captures/dns_amplification.pcap.gz", "exabgp-amplification");
    let rule = "flow route { match { destination 192.0.2.50/32; protocol udp; source-port =53; } then { discard; } }";
    assert_eq!(lines, [format!("announce {rule}"), format!("withdraw {rule}")]);
    assert!(stderr.contains("exabgp: 1 FlowSpec rules announced, 1 withdrawn, 0 attacks without one"), "{stderr}");
}

#[test]
fn a_syn_flood_is_dropped_upstream_by_its_syn_flag() {
    let (lines, _) = rules_of("captures/syn_flood_real_sources.pcap", "exabgp-syn");
    // The flood's SYNs, to the one port they hit.
    let rule = "flow route { match { destination 198.51.100.10/32; protocol tcp; destination-port =443; tcp-flags [ syn ]; } then { discard; } }";
    assert_eq!(lines, [format!("announce {rule}"), format!("withdraw {rule}")]);
}

/// What BIRD's FlowSpec table holds now.
fn flow_routes(ctl: &Path) -> String {
    let out = Command::new("birdc")
        .args(["-s"])
        .arg(ctl)
        .args(["show", "route", "table", "flowtab4", "all"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// BIRD's count of the FlowSpec table's routes.
fn route_count(ctl: &str) -> String {
    let out = Command::new("birdc").args(["-s", ctl, "show", "route", "table", "flowtab4", "count"]).output().unwrap();
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

/// The whole chain in two network namespaces: floodwatch replays the amplification flood
/// from a pipe into `--exabgp FILE`, ExaBGP (`tail -F` of the file as its process) peers
/// with BIRD over a veth, and BIRD's FlowSpec table holds the rule (destination, protocol,
/// source port, traffic-rate 0) while the flood lasts and loses it at `attack_end`.
#[test]
fn a_router_peering_with_exabgp_drops_the_amplification_while_it_lasts() {
    let Some((_turn, net)) = namespaces("the ExaBGP-BIRD test", &["ip", "bird", "birdc", "exabgp", "tail"], 'b') else {
        return;
    };
    let dir = Scratch::new("exabgp-bird");
    // The "victim" namespace of the pair plays the router (BIRD, 192.0.2.1), the other
    // ExaBGP (192.0.2.2).
    let (bird_conf, exabgp_conf, api, ctl) =
        (dir.path("bird.conf"), dir.path("exabgp.conf"), dir.path("exabgp.api"), dir.path("bird.ctl"));
    std::fs::write(
        &bird_conf,
        "router id 192.0.2.1;\nflow4 table flowtab4;\nprotocol device {}\nprotocol bgp exabgp {\n  local 192.0.2.1 as 65000;\n  \
         neighbor 192.0.2.2 as 65001;\n  passive on;\n  ipv4 { import all; export none; };\n  \
         flow4 { table flowtab4; import all; export none; };\n}\n",
    )
    .unwrap();
    std::fs::write(&api, "").unwrap();
    std::fs::write(
        &exabgp_conf,
        format!(
            "process floodwatch {{\n  run /usr/bin/tail -n0 -F {};\n  encoder text;\n}}\nneighbor 192.0.2.1 {{\n  router-id 192.0.2.2;\n  \
             local-address 192.0.2.2;\n  local-as 65001;\n  peer-as 65000;\n  family {{ ipv4 flow; ipv4 unicast; }}\n  \
             api {{ processes [ floodwatch ]; }}\n}}\n",
            api.display()
        ),
    )
    .unwrap();
    let (bird_conf, ctl_text) = (bird_conf.to_str().unwrap(), ctl.to_str().unwrap());
    let _bird = Proc::spawn(&net.victim, &["bird", "-f", "-c", bird_conf, "-s", ctl_text], &dir.path("bird.log"));
    let log = format!("exabgp.log.destination={}", dir.path("exabgp.events").display());
    let exabgp_args = ["env", "exabgp.daemon.user=root", &log, "exabgp.api.ack=false", "exabgp.cli.pipe=false"];
    let _exabgp = Proc::spawn(
        &net.attacker,
        &[&exabgp_args[..], &["exabgp", exabgp_conf.to_str().unwrap()]].concat(),
        &dir.path("exabgp.log"),
    );
    wait_until("BGP session", || {
        let out = Command::new("birdc").args(["-s", ctl_text, "show", "protocols", "exabgp"]).output();
        out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("Established"))
    });

    // The capture, through a pipe: its first half (the flood has begun), then the rest.
    let mut gz = Vec::new();
    std::io::Read::read_to_end(
        &mut flate2::read::GzDecoder::new(
            std::fs::File::open(repo_path("captures/dns_amplification.pcap.gz")).unwrap(),
        ),
        &mut gz,
    )
    .unwrap();
    let plain = dir.path("capture.pcap");
    std::fs::write(&plain, gz).unwrap();
    let pcap = Pcap::read(&plain);
    let mut floodwatch = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(["replay", "--no-progress", "--alerts"])
        .arg(dir.path("alerts.jsonl"))
        .arg("--exabgp")
        .arg(&api)
        .arg("-")
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = floodwatch.stdin.take().unwrap();
    let half = pcap.records.len() * 6 / 10;
    stdin.write_all(&pcap.header).unwrap();
    for r in &pcap.records[..half] {
        stdin.write_all(r).unwrap();
    }
    stdin.flush().unwrap();
    let held = "flow4 { dst 192.0.2.50/32; proto 17; sport 53; }";
    wait_until("FlowSpec route in BIRD", || flow_routes(&ctl).contains(held));
    let routes = flow_routes(&ctl);
    // The discard action travels as traffic-rate 0 (RFC 8955 7.3: 0x8006, rate 0).
    assert!(routes.contains("BGP.ext_community: (generic, 0x80060000, 0x0)"), "{routes}");
    assert_eq!(routes.matches("flow4 {").count(), 1, "{routes}");
    assert_eq!(route_count(ctl_text), "1 of 1 routes for 1 networks in table flowtab4");

    for r in &pcap.records[half..] {
        stdin.write_all(r).unwrap();
    }
    drop(stdin);
    let out = floodwatch.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // Counted by BIRD itself (an empty answer would prove nothing).
    wait_until("withdrawal in BIRD", || route_count(ctl_text) == "0 of 0 routes for 0 networks in table flowtab4");
}
