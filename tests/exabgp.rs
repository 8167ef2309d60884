//! `--exabgp FILE`: the replay of an amplification flood appends one FlowSpec rule for it as
//! ExaBGP API lines, announced at its start and withdrawn at its end; a SYN flood's matches
//! its SYNs to the port it hits. (ExaBGP and BIRD themselves: not yet in this slice.)

mod common;

use common::*;
use std::process::Command;

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
