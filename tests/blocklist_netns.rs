//! Blocklists as firewalls read them.
//!
//! * The four formats of one replay of `captures/syn_flood_real_sources.pcap` list the same
//!   sources, which are the ground truth's: the nft script passes `nft -c -f` and loads with
//!   `nft -f`, the ipset file loads with `ipset restore`, both in a fresh network namespace
//!   (the host's ruleset and sets are never touched), and the kernel's sets are read back.
//! * Two namespaces joined by a veth: the sender owns one listed source address and one that
//!   is not listed. With the nft blocklist loaded in the receiver, datagrams from the listed
//!   address are dropped (the rule's counter counts exactly them) and the others arrive;
//!   before loading, both arrived.
//! * An allowlisted source is never listed (and the attack is still detected); a spoofed
//!   flood lists no one, and its verdict says why.
//!
//! The namespace tests need root, `ip`, `nft` and `ipset`, and skip with a printed reason
//! otherwise. Each test runs in about a second.

mod common;

use common::{find_tool, Scratch};

use serde_json::Value;
use std::collections::BTreeSet;
use std::fs::File;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SYN: &str = "captures/syn_flood_real_sources";
const SPOOFED: &str = "captures/syn_flood_spoofed";
/// `--blocklist-ttl` of the replays.
const TTL_S: u64 = 600;

/// Why the namespace tests cannot run here, if they cannot.
fn netns_prerequisites() -> Option<String> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return Some("blocklist_netns needs root (network namespaces, nftables, ipset)".into());
    }
    ["ip", "nft", "ipset"]
        .into_iter()
        .find(|t| find_tool(t).is_none())
        .map(|t| format!("blocklist_netns needs {t} (apt-get install iproute2 nftables ipset)"))
}

/// Runs a command to completion; Err(stderr) on failure.
fn run(program: &str, args: &[&str]) -> Result<String, String> {
    let out = Command::new(find_tool(program).unwrap_or_else(|| PathBuf::from(program)))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("{program}: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{program} {} failed ({}): {}{}",
            args.join(" "),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim(),
            String::from_utf8_lossy(&out.stdout).trim()
        ))
    }
}

/// Namespaces (and a veth pair) of one test, deleted on drop, panic or not.
struct Netns {
    names: Vec<String>,
    links: Vec<String>,
}

impl Netns {
    /// Creates `fw-bl-ROLE-PID` for each role; Err when the kernel or container refuses.
    fn create(roles: &[&str]) -> Result<Netns, String> {
        let pid = std::process::id();
        let mut net = Netns { names: Vec::new(), links: Vec::new() };
        for role in roles {
            let name = format!("fw-bl-{role}-{pid}");
            let _ = run("ip", &["netns", "del", &name]);
            run("ip", &["netns", "add", &name])?;
            net.names.push(name);
        }
        Ok(net)
    }

    fn name(&self, i: usize) -> &str {
        &self.names[i]
    }

    /// Runs `program args` inside namespace `i`.
    fn exec(&self, i: usize, program: &str, args: &[&str]) -> Result<String, String> {
        let tool = find_tool(program).unwrap_or_else(|| PathBuf::from(program));
        let mut full = vec!["netns", "exec", self.name(i), tool.to_str().unwrap()];
        full.extend_from_slice(args);
        run("ip", &full)
    }

    /// Calls `f` on a thread that has entered namespace `i`: sockets it creates live there.
    fn within<T: Send + 'static>(&self, i: usize, f: impl FnOnce() -> T + Send + 'static) -> T {
        let path = format!("/run/netns/{}", self.name(i));
        std::thread::spawn(move || {
            let ns = File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            // SAFETY: a valid namespace fd; setns changes only this thread's network namespace.
            let rc = unsafe { libc::setns(ns.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("namespace thread")
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = run("ip", &["netns", "del", name]);
        }
        // A veth left in the root namespace by a failed move.
        for link in &self.links {
            let _ = run("ip", &["link", "del", link]);
        }
    }
}

fn truth_sources(base: &str) -> BTreeSet<IpAddr> {
    let path = common::repo_path(&format!("{base}.json"));
    let truth: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    truth["attacks"][0]["sources"]
        .as_array()
        .unwrap_or_else(|| panic!("{}: attacks[0].sources", path.display()))
        .iter()
        .map(|s| s.as_str().unwrap().parse().unwrap())
        .collect()
}

/// Replays `capture` with a blocklist in `format` (and any `extra` flags); returns the
/// blocklist text, the alerts and stderr (the summary).
fn replay(capture: &Path, dir: &Scratch, format: &str, extra: &[&str]) -> (String, Vec<Value>, String) {
    let list = dir.path(&format!("bl.{format}"));
    let alerts = dir.path(&format!("alerts.{format}.jsonl"));
    let _ = std::fs::remove_file(&alerts);
    let out = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .arg("replay")
        .arg(capture)
        .args(["--no-progress", "--hash-seed", "7", "--blocklist-ttl", &TTL_S.to_string()])
        .args(["--blocklist", list.to_str().unwrap(), "--blocklist-format", format])
        .args(["--alerts", alerts.to_str().unwrap()])
        .args(extra)
        .output()
        .expect("floodwatch runs");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(0), "replay with a {format} blocklist: {stderr}");
    let text = std::fs::read_to_string(&list).unwrap_or_else(|e| panic!("{}: {e}", list.display()));
    let events = std::fs::read_to_string(&alerts)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("alert not JSON ({e}): {l}")))
        .collect();
    (text, events, stderr)
}

fn plain_set(text: &str) -> BTreeSet<IpAddr> {
    text.lines().map(|l| l.trim().parse().unwrap_or_else(|e| panic!("plain blocklist line {l:?}: {e}"))).collect()
}

fn ips(values: &Value) -> BTreeSet<IpAddr> {
    values.as_array().into_iter().flatten().map(|v| v.as_str().unwrap().parse().unwrap()).collect()
}

/// The elements of a set in the kernel, with their timeouts, from `nft -j list set`.
fn nft_set(net: &Netns, i: usize, set: &str) -> Vec<(IpAddr, u64)> {
    let out = net.exec(i, "nft", &["-j", "list", "set", "inet", "floodwatch", set]).unwrap();
    let doc: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("nft -j output ({e}): {out}"));
    let mut elements = Vec::new();
    for item in doc["nftables"].as_array().unwrap() {
        for elem in item["set"]["elem"].as_array().into_iter().flatten() {
            let e = &elem["elem"];
            let ip = e["val"].as_str().unwrap_or_else(|| panic!("set element {elem}")).parse().unwrap();
            elements.push((ip, e["timeout"].as_u64().unwrap_or_else(|| panic!("no timeout on {elem}"))));
        }
    }
    elements
}

/// Packets counted by the prerouting rule that matches `@set`.
fn nft_counter(net: &Netns, i: usize, set: &str) -> u64 {
    let out = net.exec(i, "nft", &["list", "chain", "inet", "floodwatch", "prerouting"]).unwrap();
    let line = out.lines().find(|l| l.contains(&format!("@{set}"))).unwrap_or_else(|| panic!("no @{set} rule:\n{out}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let at = words.iter().position(|w| *w == "packets").unwrap_or_else(|| panic!("no counter: {line}"));
    words[at + 1].parse().unwrap()
}

#[test]
fn the_four_formats_list_the_ground_truth_and_load_into_nft_and_ipset() {
    if let Some(why) = netns_prerequisites() {
        return common::skip(&why);
    }
    let dir = Scratch::new("formats");
    let capture = common::repo_path(&format!("{SYN}.pcap"));
    let truth = truth_sources(SYN);
    assert_eq!(truth.len(), 300, "the ground truth lists the bots");

    let (plain, events, summary) = replay(&capture, &dir, "plain", &[]);
    let listed = plain_set(&plain);
    assert_eq!(listed, truth, "the plain blocklist is the ground truth's sources");
    assert!(summary.contains(&format!("blocklist: {} sources listed at the end", truth.len())), "{summary}");
    let end = events.iter().find(|e| e["event"] == "attack_end").expect("an attack_end");
    assert_eq!(ips(&end["offending_ips"]), listed, "the list is the attack_end's offending_ips");

    let (json, _, _) = replay(&capture, &dir, "json", &[]);
    let doc: Value = serde_json::from_str(&json).unwrap_or_else(|e| panic!("json blocklist ({e}): {json}"));
    assert_eq!(doc["ttl_s"], TTL_S);
    let entries = doc["entries"].as_array().unwrap();
    let json_ips: BTreeSet<IpAddr> = entries.iter().map(|e| e["ip"].as_str().unwrap().parse().unwrap()).collect();
    assert_eq!(json_ips, listed, "json lists what plain lists");
    for e in entries {
        assert_eq!((&e["attack_id"], &e["victim"], &e["kind"]), (&end["attack_id"], &end["victim"], &end["kind"]));
    }

    let net = Netns::create(&["load"]).unwrap_or_else(|e| panic!("cannot create a network namespace: {e}"));
    let (nft, _, _) = replay(&capture, &dir, "nft", &[]);
    let nft_file = dir.path("bl.nft");
    assert!(nft.starts_with("#!/usr/sbin/nft -f"), "{}", &nft[..nft.len().min(200)]);
    net.exec(0, "nft", &["-c", "-f", nft_file.to_str().unwrap()]).expect("nft -c -f accepts the script");
    net.exec(0, "nft", &["-f", nft_file.to_str().unwrap()]).expect("nft -f loads the script");
    // Loaded twice: the script replaces its table, it does not fail on an existing one.
    net.exec(0, "nft", &["-f", nft_file.to_str().unwrap()]).expect("nft -f loads the script over itself");
    let v4 = nft_set(&net, 0, "blocklist_v4");
    let in_kernel: BTreeSet<IpAddr> = v4.iter().map(|(ip, _)| *ip).collect();
    assert_eq!(in_kernel, listed, "the kernel's blocklist_v4 is the plain list");
    assert!(nft_set(&net, 0, "blocklist_v6").is_empty(), "no IPv6 source in this flood");
    for (ip, timeout) in &v4 {
        assert!((1..=TTL_S).contains(timeout), "{ip}: timeout {timeout} s, TTL {TTL_S} s");
    }

    let (ipset, _, _) = replay(&capture, &dir, "ipset", &[]);
    assert!(ipset.contains("create floodwatch-v4 hash:ip family inet"), "{}", &ipset[..ipset.len().min(300)]);
    let ipset_file = dir.path("bl.ipset");
    net.exec(0, "ipset", &["restore", "-f", ipset_file.to_str().unwrap()]).expect("ipset restore takes the file");
    // Restored twice: -exist and flush make it idempotent.
    net.exec(0, "ipset", &["restore", "-f", ipset_file.to_str().unwrap()]).expect("ipset restore takes it again");
    let members = |set: &str| -> BTreeSet<IpAddr> {
        let out = net.exec(0, "ipset", &["list", set]).unwrap();
        let after = out.split_once("Members:\n").map_or("", |(_, m)| m);
        after.lines().filter_map(|l| l.split_whitespace().next()).map(|w| w.parse().unwrap()).collect()
    };
    assert_eq!(members("floodwatch-v4"), listed, "ipset's floodwatch-v4 is the plain list");
    assert!(members("floodwatch-v6").is_empty());
    eprintln!("blocklist_netns: {} sources in plain, json, nft (kernel set) and ipset (kernel set)", listed.len());
}

#[test]
fn a_loaded_nft_blocklist_drops_a_listed_source_and_passes_another() {
    if let Some(why) = netns_prerequisites() {
        return common::skip(&why);
    }
    let dir = Scratch::new("veth");
    let capture = common::repo_path(&format!("{SYN}.pcap"));
    let (nft, _, _) = replay(&capture, &dir, "nft", &[]);
    assert!(nft.contains("elements = {"), "the nft blocklist lists sources");
    let (plain, _, _) = replay(&capture, &dir, "plain", &[]);
    let listed_set = plain_set(&plain);
    let truth = truth_sources(SYN);
    let listed = *truth.iter().next().unwrap();
    assert!(listed_set.contains(&listed), "{listed} (a ground-truth bot) is listed");
    let other: IpAddr = Ipv4Addr::new(192, 0, 2, 2).into();
    assert!(!listed_set.contains(&other));
    let receiver: IpAddr = Ipv4Addr::new(192, 0, 2, 1).into();

    let mut net = Netns::create(&["rx", "tx"]).unwrap_or_else(|e| panic!("cannot create network namespaces: {e}"));
    let pid = std::process::id();
    let (rx_if, tx_if) = (format!("fwblr{pid}"), format!("fwblt{pid}"));
    net.links = vec![rx_if.clone(), tx_if.clone()];
    let (rx, tx) = (net.name(0).to_string(), net.name(1).to_string());
    let listed_32 = format!("{listed}/32");
    let steps: Vec<Vec<&str>> = vec![
        vec!["link", "add", &rx_if, "netns", &rx, "type", "veth", "peer", "name", &tx_if, "netns", &tx],
        vec!["-n", &rx, "addr", "add", "192.0.2.1/24", "dev", &rx_if],
        vec!["-n", &tx, "addr", "add", "192.0.2.2/24", "dev", &tx_if],
        vec!["-n", &tx, "addr", "add", &listed_32, "dev", &tx_if],
        vec!["-n", &rx, "link", "set", "lo", "up"],
        vec!["-n", &tx, "link", "set", "lo", "up"],
        vec!["-n", &rx, "link", "set", &rx_if, "up"],
        vec!["-n", &tx, "link", "set", &tx_if, "up"],
        // The way back to the bot's address (reverse-path filtering, ARP).
        vec!["-n", &rx, "route", "add", "198.18.0.0/15", "dev", &rx_if],
    ];
    for step in steps {
        run("ip", &step).unwrap_or_else(|e| panic!("setting up the namespaces: {e}"));
    }

    let port = 9999;
    let to = SocketAddr::new(receiver, port);
    let sink = net.within(0, move || UdpSocket::bind(to).expect("bind the receiver"));
    sink.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let from_listed =
        net.within(1, move || UdpSocket::bind(SocketAddr::new(listed, 0)).expect("bind the listed source"));
    let from_other = net.within(1, move || UdpSocket::bind(SocketAddr::new(other, 0)).expect("bind the other source"));

    // Sends `n` datagrams from each source (listed first), then collects what arrives until
    // the other source's last one is in, and 300 ms more: (from listed, from other).
    let exchange = |round: &str, n: usize| -> (usize, usize) {
        for i in 0..n {
            from_listed.send_to(format!("{round} listed {i}").as_bytes(), to).unwrap();
        }
        for i in 0..n {
            from_other.send_to(format!("{round} other {i}").as_bytes(), to).unwrap();
        }
        let (mut got_listed, mut got_other) = (0, 0);
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut settle: Option<Instant> = None;
        let mut buf = [0u8; 256];
        while Instant::now() < settle.unwrap_or(deadline) {
            let Ok((len, src)) = sink.recv_from(&mut buf) else { continue };
            let text = String::from_utf8_lossy(&buf[..len]);
            if !text.starts_with(round) {
                continue;
            }
            match src.ip() {
                ip if ip == listed => got_listed += 1,
                ip if ip == other => got_other += 1,
                ip => panic!("a datagram from {ip}"),
            }
            if got_other == n && settle.is_none() {
                settle = Some(Instant::now() + Duration::from_millis(300));
            }
        }
        (got_listed, got_other)
    };

    // Without the blocklist, both sources get through: the path works.
    assert_eq!(exchange("before", 3), (3, 3), "before loading the blocklist, both sources' datagrams arrive");

    let nft_file = dir.path("bl.nft");
    net.exec(0, "nft", &["-c", "-f", nft_file.to_str().unwrap()]).expect("nft -c -f accepts the script");
    net.exec(0, "nft", &["-f", nft_file.to_str().unwrap()]).expect("nft -f loads the script");
    assert_eq!(nft_counter(&net, 0, "blocklist_v4"), 0);

    let sent = 5;
    let (got_listed, got_other) = exchange("after", sent);
    assert_eq!(got_other, sent, "datagrams from {other} (not listed) pass the blocklist");
    assert_eq!(got_listed, 0, "datagrams from {listed} (listed) are dropped");
    assert_eq!(nft_counter(&net, 0, "blocklist_v4"), sent as u64, "the drop rule counted exactly the listed ones");
    assert_eq!(nft_counter(&net, 0, "blocklist_v6"), 0);
    eprintln!(
        "blocklist_netns: from {listed} (listed) {got_listed} of {sent} arrived, from {other} {got_other} of {sent}; the drop rule counted {sent}"
    );
}

#[test]
fn an_allowlisted_source_is_never_listed_but_the_attack_is_still_detected() {
    let dir = Scratch::new("allowlist");
    let capture = common::repo_path(&format!("{SYN}.pcap"));
    let truth = truth_sources(SYN);
    let allowed = *truth.iter().next().unwrap();
    let config = dir.path("floodwatch.toml");
    std::fs::write(&config, format!("[allowlist]\nsources = [\"{allowed}/32\"]\n")).unwrap();
    let (plain, events, summary) = replay(&capture, &dir, "plain", &["--config", config.to_str().unwrap()]);
    let listed = plain_set(&plain);
    assert!(!listed.contains(&allowed), "{allowed} is allowlisted yet listed");
    let expected: BTreeSet<IpAddr> = truth.iter().copied().filter(|ip| *ip != allowed).collect();
    assert_eq!(listed, expected, "every other bot is still listed");
    let ip_text = allowed.to_string();
    for e in &events {
        assert_eq!((e["victim"].as_str(), e["kind"].as_str()), (Some("198.51.100.10"), Some("syn_flood")), "{e}");
        assert!(!ips(&e["offending_ips"]).contains(&allowed), "{allowed} among offending_ips: {e}");
        let top = e["sources"]["top"].as_array().unwrap();
        assert!(top.iter().all(|s| s["ip"] != ip_text.as_str()), "{allowed} among the top sources: {e}");
    }
    assert!(events.iter().any(|e| e["event"] == "attack_start"), "the flood is still detected: {summary}");
    assert!(events.iter().any(|e| e["event"] == "attack_end"), "{summary}");
    assert!(summary.contains("allowlisted packets"), "the summary counts the skipped packets: {summary}");
}

#[test]
fn a_spoofed_flood_lists_no_one_and_says_why() {
    let dir = Scratch::new("spoofed");
    let capture = common::repo_path(&format!("{SPOOFED}.pcap.gz"));
    let (plain, events, summary) = replay(&capture, &dir, "plain", &[]);
    assert_eq!(plain, "", "a spoofed flood's sources are bystanders: the list stays empty");
    assert!(summary.contains("blocklist: 0 sources listed at the end"), "{summary}");
    let end = events.iter().find(|e| e["event"] == "attack_end").unwrap_or_else(|| panic!("no attack_end: {summary}"));
    assert_eq!((end["victim"].as_str(), end["kind"].as_str()), (Some("203.0.113.5"), Some("syn_flood")));
    assert_eq!(end["sources"]["spoofed_likely"], true, "{end}");
    let verdict = end["sources"]["verdict"].as_str().unwrap();
    assert!(verdict.contains("none is listed for blocking"), "verdict: {verdict}");
    assert!(events.iter().all(|e| ips(&e["offending_ips"]).is_empty()), "no event offers offenders");
}
