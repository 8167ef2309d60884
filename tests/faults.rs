//! Faults around floodwatch, for real: what is kept and what is lost when the disk fills up
//! or turns read-only, a directory is made unwritable, the link goes down, the interface is
//! deleted, or the daemon is killed. Every assertion is about data: no corrupt line, no
//! invalid pcap, counts that add up, entries kept.
//!
//! The daemon's tests run it on the victim's end of a veth pair between two network
//! namespaces, flooded with trafgen from the other end (root, `ip`, `trafgen`).

mod common;

use common::netns::{
    attack_starts, daemon_command, ip, lists_attacker, namespaces, stopped_counts, sys_net, trafgen, trafgen_done,
    trafgen_flood, Proc, ATTACKER_ADDR, TRAFGEN_PPS, VICTIM_ADDR,
};
use common::{on_path, repo_path, skip, Scratch};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// `[detection] quiet_s` of the daemons here: attacks end soon after their flood.
const CONFIG: &str = "[detection]\nquiet_s = 2\n";

/// Replays every generated capture (22 alerts, several KiB each) with the alert file and the
/// evidence on a 64 KiB tmpfs: the disk fills up after a few alerts. The tmpfs is mounted in
/// a mount namespace of this test's own (`unshare`), where the replay runs and the files are
/// read back.
#[test]
fn a_full_disk_leaves_whole_alert_lines_and_valid_evidence_counts_the_rest_lost_and_exits_1() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        return skip("the full-disk test needs root (a mount namespace and a tmpfs)");
    }
    if !on_path("unshare") {
        return skip("the full-disk test needs unshare on PATH (util-linux)");
    }
    let scratch = Scratch::new("faults-disk-full");
    let mount_point = scratch.path("tiny");
    std::fs::create_dir_all(&mount_point).unwrap();
    let mut captures: Vec<String> = std::fs::read_dir(repo_path("captures"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path().display().to_string()))
        .filter(|p| !p.ends_with(".json"))
        .collect();
    captures.sort();
    // In the namespace: mount, replay, then print the exit code, each evidence file (its name
    // and its bytes in hex) and the alert file.
    let script = r#"mount -t tmpfs -o size=64k tmpfs "$1" || exit 99
dir="$1"; alerts="$1/alerts.jsonl"; fw="$2"; shift 2
"$fw" replay --no-progress --drain-timeout 1 --alerts "$alerts" --evidence-dir "$dir/evidence" "$@" 2>/dev/shm/fw-faults.$$
code=$?
echo "EXIT $code"; cat /dev/shm/fw-faults.$$ >&2; rm -f /dev/shm/fw-faults.$$
for f in "$dir"/evidence/*.pcap; do [ -e "$f" ] && echo "PCAP $(basename "$f") $(od -An -v -tx1 "$f" | tr -d ' \n')"; done
echo "-----"; cat "$alerts""#;
    let out = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", script, "sh"])
        .arg(&mount_point)
        .arg(env!("CARGO_BIN_EXE_floodwatch"))
        .args(&captures)
        .output()
        .expect("unshare runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if stdout.is_empty() && out.status.code() != Some(0) {
        return skip(&format!("cannot mount a tmpfs in a new mount namespace: {stderr}"));
    }
    let (head, file) =
        stdout.split_once("-----\n").unwrap_or_else(|| panic!("no alert file printed:\n{stdout}\n{stderr}"));
    let mut head_lines = head.lines();
    assert_eq!(head_lines.next(), Some("EXIT 1"), "exit code with alerts lost; stderr:\n{stderr}");
    // Every evidence file left on the full disk is a valid pcap, header and whole records.
    let mut pcaps = std::collections::BTreeMap::new();
    for line in head_lines {
        let mut words = line.split_whitespace();
        let (Some("PCAP"), Some(name)) = (words.next(), words.next()) else { continue };
        let hex = words.next().unwrap_or("");
        let bytes: Vec<u8> =
            (0..hex.len() / 2).map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap()).collect();
        let records =
            whole_pcap_records(&bytes).unwrap_or_else(|why| panic!("evidence {name} is not a valid pcap: {why}"));
        pcaps.insert(name.to_string(), (records, bytes));
    }
    // Whole JSON lines only: no line cut by the full disk.
    let lines: Vec<&str> = file.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        assert!(
            serde_json::from_str::<serde_json::Value>(line).is_ok(),
            "line {} of the alert file is not whole JSON ({} bytes): {}",
            i + 1,
            line.len(),
            &line[..line.len().min(200)]
        );
    }
    assert!(file.is_empty() || file.ends_with('\n'), "the file ends inside a line");
    // "alert sink /…/alerts.jsonl: 7 delivered, 15 LOST (0 queue full, 15 failed)"
    let report = stderr
        .lines()
        .find(|l| l.contains("alert sink") && l.contains("alerts.jsonl:") && l.contains(" delivered"))
        .unwrap_or_else(|| panic!("no report of the alert sink:\n{stderr}"));
    let number_before = |word: &str| -> u64 {
        let before = report.split(word).next().unwrap_or("");
        before.split_whitespace().last().and_then(|n| n.replace(',', "").parse().ok()).unwrap_or(u64::MAX)
    };
    let (delivered, lost) = (number_before(" delivered"), number_before(" LOST"));
    assert_eq!(delivered, lines.len() as u64, "lines in the file against the summary: {report}");
    assert!(lost > 0, "the disk filled up, yet nothing is counted lost: {report}");
    // Every alert is either in the file or counted lost: 22 from these captures.
    let total = number_of_alerts(&captures);
    assert_eq!(delivered + lost, total, "{report}");
    // What each attack_end that got through says of its evidence matches the disk: a file
    // with that many frames and that SHA-256, or an error (and then perhaps no file).
    for end in lines.iter().filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok()) {
        let Some(ev) = end.get("evidence") else { continue };
        match ev["path"].as_str() {
            Some(path) => {
                let name = path.rsplit('/').next().unwrap();
                let (records, bytes) = pcaps.get(name).unwrap_or_else(|| panic!("{name} is not on the disk: {ev}"));
                assert_eq!(ev["packets"].as_u64(), Some(*records as u64), "{ev}");
                let digest: String = Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect();
                assert_eq!(ev["sha256"].as_str(), Some(digest.as_str()), "{ev}");
            }
            None => assert!(ev["error"].is_string(), "evidence without a file says why: {ev}"),
        }
    }
}

/// The number of records of a classic pcap whose records are all whole, or why it is not one.
fn whole_pcap_records(bytes: &[u8]) -> Result<usize, String> {
    let header = bytes.get(..24).ok_or(format!("{} bytes: no header", bytes.len()))?;
    if header[..4] != 0xa1b2_3c4d_u32.to_le_bytes() && header[..4] != 0xa1b2_c3d4_u32.to_le_bytes() {
        return Err("no pcap magic".into());
    }
    let (mut at, mut records) = (24, 0);
    while at < bytes.len() {
        let record = bytes.get(at..at + 16).ok_or(format!("a record header cut at byte {at}"))?;
        let stored = u32::from_le_bytes([record[8], record[9], record[10], record[11]]) as usize;
        at += 16 + stored;
        if at > bytes.len() {
            return Err(format!("record {records} cut: ends at {at} of {}", bytes.len()));
        }
        records += 1;
    }
    Ok(records)
}

/// How many alerts the captures give with nowhere to fail: a replay to /dev/null.
fn number_of_alerts(captures: &[String]) -> u64 {
    let out = Command::new(env!("CARGO_BIN_EXE_floodwatch"))
        .args(["replay", "--no-progress", "--alerts", "-"])
        .args(captures)
        .output()
        .expect("floodwatch runs");
    assert_eq!(out.status.code(), Some(0));
    String::from_utf8_lossy(&out.stdout).lines().count() as u64
}

/// The victim's interface deleted under the daemon during a flood and made again: the daemon
/// waits for it, opens it again, keeps what it knew (the attack goes on: one attack from
/// before the loss to after), and counts the flood sent after it came back.
#[test]
fn the_capture_waits_for_a_deleted_interface_and_resumes_when_it_is_back() {
    let Some((_turn, net)) = namespaces("the interface-loss test", &["ip", "trafgen"], 'f') else {
        return;
    };
    let scratch = Scratch::new("interface-loss");
    let (alerts, config) = (scratch.path("alerts.jsonl"), scratch.path("fw.toml"));
    // Quiet long enough that the attack outlasts the outage, as a real one would.
    std::fs::write(&config, "[detection]\nquiet_s = 60\n").unwrap();
    let systemd = Systemd::listen(&scratch);
    let args = daemon_command(&net, &["--config", config.to_str().unwrap(), "--alerts", alerts.to_str().unwrap()]);
    let mut daemon = systemd.spawn(&net.victim, &args, &scratch.path("floodwatch.log"));
    daemon.wait_for_output("capture started", "floodwatch");

    let mut flood = trafgen(&net, &scratch.0, 10 * TRAFGEN_PPS);
    wait_until("attack_start", || !attack_starts(&alerts).is_empty(), &daemon);
    // Deleting one end of a veth deletes the pair (and trafgen's interface with it).
    ip(&["-n", &net.victim, "link", "del", &net.victim_if]).unwrap();
    let _ = flood.wait_for(Duration::from_secs(10));
    daemon.wait_for_output("waiting for", "floodwatch");
    systemd.wait_for(&format!("STATUS=waiting for {} (capture lost", net.victim_if), &daemon);
    systemd.watchdog_goes_on(&daemon);
    assert!(
        daemon.child.try_wait().unwrap().is_none(),
        "floodwatch exited without its interface:\n{}",
        daemon.output()
    );
    net.link();
    daemon.wait_for_output("capture resumed", "floodwatch");
    systemd.wait_for(&format!("STATUS=capturing on {}", net.victim_if), &daemon);

    let sent = trafgen_flood(&net, &scratch.0, TRAFGEN_PPS);
    std::thread::sleep(Duration::from_millis(500));
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait_for(Duration::from_secs(5)).is_some_and(|s| s.success()), "{}", daemon.output());
    let log = daemon.output();
    let starts = attack_starts(&alerts);
    assert_eq!(starts, [("udp_flood".to_string(), VICTIM_ADDR.to_string())], "log:\n{log}");
    let lines = alert_lines(&alerts);
    let end = lines.iter().find(|a| a["event"] == "attack_end").unwrap_or_else(|| panic!("no attack_end:\n{log}"));
    let (captured, _) = stopped_counts(&log);
    let counted = end["packets"].as_u64().unwrap_or(0);
    eprintln!(
        "interface loss: the daemon waited and resumed; {sent} frames sent after, {captured:?} captured in all, the one attack counted {counted}"
    );
    assert!(captured.is_some_and(|c| c >= sent + counted.min(1)), "sent {sent} after, captured {captured:?}:\n{log}");
    // The attack counted packets from before the loss and every one sent after.
    assert!(counted > sent, "the attack counted {counted} packets, {sent} sent after the loss alone:\n{log}");
}

/// The victim's link set down, a flood started while it is down, the link set up under the
/// flood and a flood sent after: the daemon stays, logs both, captures every frame the
/// interface received, and detects the flood.
#[test]
fn a_link_flap_under_a_flood_keeps_the_daemon_and_every_frame_the_link_delivered() {
    let Some((_turn, net)) = namespaces("the link-flap test", &["ip", "trafgen"], 'l') else {
        return;
    };
    let scratch = Scratch::new("link-flap");
    let alerts = scratch.path("alerts.jsonl");
    let systemd = Systemd::listen(&scratch);
    let args = daemon_command(&net, &["--alerts", alerts.to_str().unwrap()]);
    let mut daemon = systemd.spawn(&net.victim, &args, &scratch.path("floodwatch.log"));
    daemon.wait_for_output("capture started", "floodwatch");
    let received = || sys_net(&net.victim, &net.victim_if, "statistics/rx_packets").parse::<u64>().unwrap_or(0);
    let before = received();

    let link = |state: &str| ip(&["-n", &net.victim, "link", "set", &net.victim_if, state]).unwrap();
    link("down");
    daemon.wait_for_output("is down", "floodwatch");
    systemd.wait_for(&format!("STATUS=waiting for {} (link down)", net.victim_if), &daemon);
    // trafgen floods through the flap (how much of it the link drops while down depends on
    // how trafgen paces what goes nowhere), and once more after it, all of it delivered.
    let count = 3 * TRAFGEN_PPS;
    let flood = trafgen(&net, &scratch.0, count);
    systemd.watchdog_goes_on(&daemon);
    link("up");
    daemon.wait_for_output("is up again", "floodwatch");
    systemd.wait_for(&format!("STATUS=capturing on {}", net.victim_if), &daemon);
    trafgen_done(flood, count);
    let after = trafgen_flood(&net, &scratch.0, TRAFGEN_PPS);
    std::thread::sleep(Duration::from_millis(500));
    let delivered = received() - before;
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait_for(Duration::from_secs(5)).is_some_and(|s| s.success()), "{}", daemon.output());
    let log = daemon.output();
    let (captured, dropped) = stopped_counts(&log);
    eprintln!(
        "link flap: the veth received {delivered} frames ({after} of them sent after the flap), floodwatch captured {captured:?}"
    );
    assert!(delivered >= after, "received {delivered}, fewer than the {after} sent after the flap");
    // The victim's end may also see a frame or two of its own (IPv6 neighbour discovery).
    assert!(
        captured.is_some_and(|c| (delivered..=delivered + 20).contains(&c)) && dropped == Some(0),
        "received {delivered}, captured {captured:?}, kernel dropped {dropped:?}:\n{log}"
    );
    assert_eq!(attack_starts(&alerts), [("udp_flood".to_string(), VICTIM_ADDR.to_string())], "log:\n{log}");
}

/// systemd's side of `sd_notify`: a datagram socket the daemon is told of (NOTIFY_SOCKET), with
/// a watchdog of 1 s (WATCHDOG_USEC), read at once (as systemd does) by a thread that keeps
/// what the daemon said.
struct Systemd {
    path: PathBuf,
    said: Arc<Mutex<Vec<String>>>,
    done: Arc<AtomicBool>,
}

impl Systemd {
    fn listen(scratch: &Scratch) -> Systemd {
        let path = scratch.path("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket.set_read_timeout(Some(Duration::from_millis(50))).unwrap();
        let (said, done) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let (keep, stop) = (said.clone(), done.clone());
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while !stop.load(Ordering::Relaxed) {
                if let Ok(n) = socket.recv(&mut buf) {
                    let lines = String::from_utf8_lossy(&buf[..n]).lines().map(String::from).collect::<Vec<_>>();
                    keep.lock().unwrap().extend(lines);
                }
            }
        });
        Systemd { path, said, done }
    }

    /// Starts the daemon `args` in namespace `ns` as systemd would, with this socket.
    fn spawn(&self, ns: &str, args: &[&str], log: &Path) -> Proc {
        let socket = format!("NOTIFY_SOCKET={}", self.path.display());
        let with_env: Vec<&str> =
            ["env", socket.as_str(), "WATCHDOG_USEC=1000000"].into_iter().chain(args.iter().copied()).collect();
        Proc::spawn(ns, &with_env, log)
    }

    /// Waits up to 15 s for a message starting with `message`.
    fn wait_for(&self, message: &str, daemon: &Proc) {
        let said = || self.said.lock().unwrap().iter().any(|m| m.starts_with(message));
        wait_until(&format!("\"{message}\" from the daemon"), said, daemon);
    }

    /// Checks that the daemon keeps pinging the watchdog: at least two pings in 2 s.
    fn watchdog_goes_on(&self, daemon: &Proc) {
        let pings = || self.said.lock().unwrap().iter().filter(|m| *m == "WATCHDOG=1").count();
        let before = pings();
        std::thread::sleep(Duration::from_secs(2));
        assert!(pings() >= before + 2, "the watchdog was not fed while the capture waited:\n{}", daemon.output());
    }
}

impl Drop for Systemd {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
    }
}

/// Waits up to 15 s for `ready`, checking every 50 ms.
fn wait_until(what: &str, mut ready: impl FnMut() -> bool, log: &Proc) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !ready() {
        assert!(Instant::now() < deadline, "no {what} within 15 s; log:\n{}", log.output());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The lines of an alert file, each of which must be whole JSON.
fn alert_lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    assert!(text.is_empty() || text.ends_with('\n'), "{} ends inside a line", path.display());
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{}: not whole JSON ({e}): {l}", path.display())))
        .collect()
}

/// Killed with SIGKILL during an attack, the daemon leaves whole alert lines and a blocklist
/// that a restart reads back: the attacker stays listed before any packet arrives.
#[test]
fn sigkill_mid_attack_leaves_whole_alerts_and_a_restart_keeps_the_blocklist() {
    let Some((_turn, net)) = namespaces("the SIGKILL test", &["ip", "trafgen"], 'k') else {
        return;
    };
    let scratch = Scratch::new("sigkill");
    let (alerts, blocklist, config) =
        (scratch.path("alerts.jsonl"), scratch.path("blocklist"), scratch.path("fw.toml"));
    std::fs::write(&config, CONFIG).unwrap();
    let (config, blocklist_path) = (config.to_str().unwrap(), blocklist.to_str().unwrap());
    let args = |alerts: &'_ Path| -> Vec<String> {
        let options = ["--config", config, "--alerts", alerts.to_str().unwrap(), "--blocklist", blocklist_path];
        daemon_command(&net, &options).into_iter().map(String::from).collect()
    };
    let first = args(&alerts);
    let first: Vec<&str> = first.iter().map(String::as_str).collect();
    let mut daemon = Proc::spawn(&net.victim, &first, &scratch.path("floodwatch.log"));
    daemon.wait_for_output("capture started", "floodwatch");
    trafgen_flood(&net, &scratch.0, TRAFGEN_PPS);
    wait_until("blocklist entry", || lists_attacker(&blocklist), &daemon);
    daemon.signal(libc::SIGKILL);
    assert!(daemon.wait_for(Duration::from_secs(5)).is_some(), "SIGKILL did not stop the daemon");
    let starts: Vec<Value> = alert_lines(&alerts).into_iter().filter(|a| a["event"] == "attack_start").collect();
    assert_eq!(starts.len(), 1, "one attack_start before the kill:\n{}", daemon.output());
    assert!(lists_attacker(&blocklist), "the blocklist lost {ATTACKER_ADDR} at the kill");

    let again: Vec<String> = args(&scratch.path("alerts-after.jsonl"));
    let again: Vec<&str> = again.iter().map(String::as_str).collect();
    let mut restarted = Proc::spawn(&net.victim, &again, &scratch.path("floodwatch-restarted.log"));
    restarted.wait_for_output("capture started", "floodwatch");
    assert!(
        lists_attacker(&blocklist),
        "after the restart the blocklist lost {ATTACKER_ADDR}:\n{}",
        restarted.output()
    );
    restarted.signal(libc::SIGTERM);
    assert!(restarted.wait_for(Duration::from_secs(5)).is_some_and(|s| s.success()), "{}", restarted.output());
}

/// A test's own file system on `path`, unmounted (lazily) on drop: a tmpfs, or an ext4
/// image on a loop device that `errors=remount-ro` turns read-only when the kernel finds an
/// error, as Debian mounts its root file system.
struct Mounted<'a> {
    path: &'a Path,
    /// The loop device, for ext4.
    device: Option<String>,
}

impl<'a> Mounted<'a> {
    fn mount(path: &'a Path, args: &[&str], device: Option<String>) -> Result<Mounted<'a>, String> {
        std::fs::create_dir_all(path).unwrap();
        let out = Command::new("mount").args(args).arg(path).output().map_err(|e| format!("mount: {e}"))?;
        match out.status.success() {
            true => Ok(Mounted { path, device }),
            false => Err(String::from_utf8_lossy(&out.stderr).trim().to_string()),
        }
    }

    fn tmpfs(path: &'a Path) -> Result<Mounted<'a>, String> {
        Mounted::mount(path, &["-t", "tmpfs", "-o", "size=1m,mode=0755", "tmpfs"], None)
    }

    /// A 4 MiB ext4 image `image`, mounted through a loop device.
    fn ext4(path: &'a Path, image: &Path) -> Result<Mounted<'a>, String> {
        std::fs::File::create(image).and_then(|f| f.set_len(4 << 20)).map_err(|e| e.to_string())?;
        let mkfs = Command::new("mkfs.ext4").args(["-q", "-F"]).arg(image).output().map_err(|e| e.to_string())?;
        if !mkfs.status.success() {
            return Err(format!("mkfs.ext4: {}", String::from_utf8_lossy(&mkfs.stderr).trim()));
        }
        let attach =
            Command::new("losetup").args(["--find", "--show"]).arg(image).output().map_err(|e| e.to_string())?;
        let device = String::from_utf8_lossy(&attach.stdout).trim().to_string();
        if !attach.status.success() || device.is_empty() {
            return Err(format!("losetup: {}", String::from_utf8_lossy(&attach.stderr).trim()));
        }
        let mounted = Mounted::mount(path, &["-t", "ext4", "-o", "errors=remount-ro", &device], Some(device.clone()));
        if mounted.is_err() {
            let _ = Command::new("losetup").args(["-d", &device]).status();
        }
        mounted
    }

    /// Makes the kernel find an error in the ext4 file system, which `errors=remount-ro`
    /// answers by making it read-only on the spot, open files and all.
    fn fail_read_only(&self) {
        let device = self.device.as_deref().expect("an ext4 mount");
        let name = device.rsplit('/').next().unwrap_or(device);
        let trigger = format!("/sys/fs/ext4/{name}/trigger_fs_error");
        std::fs::write(&trigger, "floodwatch fault test\n").unwrap_or_else(|e| panic!("{trigger}: {e}"));
    }
}

impl Drop for Mounted<'_> {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(self.path).status();
        if let Some(device) = &self.device {
            let _ = Command::new("losetup").args(["-d", device]).status();
        }
    }
}

/// The disk under the alerts, evidence and blocklist turns read-only (the kernel found an
/// error) between an attack's start and its end, and stays so: the daemon keeps detecting,
/// the alert file keeps its whole lines, the evidence pcap stays valid, the blocklist keeps
/// its last good version, and what could not be written is counted, adding up to what was
/// raised.
#[test]
fn a_disk_turned_read_only_keeps_whole_lines_and_the_last_blocklist_and_counts_the_rest() {
    let Some((_turn, net)) = namespaces("the read-only disk test", &["ip", "trafgen", "mkfs.ext4", "losetup"], 'o')
    else {
        return;
    };
    let scratch = Scratch::new("read-only");
    let disk_dir = scratch.path("disk");
    let disk = match Mounted::ext4(&disk_dir, &scratch.path("disk.img")) {
        Ok(disk) => disk,
        Err(e) => return skip(&format!("the read-only disk test cannot mount an ext4 image on a loop device: {e}")),
    };
    let config = scratch.path("fw.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let (alerts, blocklist, evidence) =
        (disk_dir.join("alerts.jsonl"), disk_dir.join("blocklist"), disk_dir.join("evidence"));
    let options = [
        ["--config", config.to_str().unwrap()],
        ["--alerts", alerts.to_str().unwrap()],
        ["--blocklist", blocklist.to_str().unwrap()],
        ["--evidence-dir", evidence.to_str().unwrap()],
        ["--drain-timeout", "1"],
    ];
    let args = daemon_command(&net, options.as_flattened());
    let mut daemon = Proc::spawn(&net.victim, &args, &scratch.path("floodwatch.log"));
    daemon.wait_for_output("capture started", "floodwatch");

    trafgen_flood(&net, &scratch.0, TRAFGEN_PPS);
    wait_until("attack_start", || !alert_lines(&alerts).is_empty() && lists_attacker(&blocklist), &daemon);
    disk.fail_read_only();
    // The attack's end cannot be written; a second flood is still detected.
    daemon.wait_for_output("alert sink unavailable: Read-only file system", "floodwatch");
    trafgen_flood(&net, &scratch.0, TRAFGEN_PPS);
    std::thread::sleep(Duration::from_secs(1));
    assert!(daemon.child.try_wait().unwrap().is_none(), "floodwatch stopped:\n{}", daemon.output());
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait_for(Duration::from_secs(10)).is_some_and(|s| s.success()), "{}", daemon.output());
    let log = daemon.output();
    let stopped = sink_report(&log);
    let lines = alert_lines(&alerts);
    eprintln!("read-only disk: {} alert lines kept; {stopped}", lines.len());
    let (raised, delivered, lost) =
        (report_count(stopped, "raised"), report_count(stopped, "delivered"), report_count(stopped, "lost"));
    assert_eq!(delivered, Some(lines.len() as u64), "{stopped}");
    assert_eq!(raised, delivered.zip(lost).map(|(d, l)| d + l), "{stopped}");
    // Two attacks: both starts and ends raised, the second start after the disk failed.
    assert!(raised >= Some(4) && lost >= Some(3), "{stopped}\n{log}");
    assert!(lists_attacker(&blocklist), "the blocklist lost its last good version on a read-only disk");
    for pcap in std::fs::read_dir(&evidence).unwrap().filter_map(|e| e.ok()) {
        let bytes = std::fs::read(pcap.path()).unwrap();
        if let Err(why) = whole_pcap_records(&bytes) {
            panic!("evidence {} is not a valid pcap: {why}", pcap.path().display());
        }
    }
}

/// "alert sink /…/alerts.jsonl stopped raised=4 delivered=4 lost=0" from a daemon's log.
fn sink_report(log: &str) -> &str {
    log.lines()
        .find(|l| l.contains("alert sink") && l.contains("stopped"))
        .unwrap_or_else(|| panic!("no sink report:\n{log}"))
}

/// The number after `name=` in a log line.
fn report_count(line: &str, name: &str) -> Option<u64> {
    line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse::<u64>().ok())
}

/// The daemon runs as an unprivileged user (`nobody` with only CAP_NET_RAW, as the systemd
/// unit runs it). Under an attack its alert file is rotated and its directory closed to that
/// user before the SIGHUP that reopens the file: the alerts wait in the sink's queue and
/// arrive once the directory is open again. Every alert raised is in one of the two files,
/// once, in whole lines; nothing is lost; the daemon never stops.
#[test]
fn an_unwritable_directory_after_a_rotation_delays_alerts_but_loses_none() {
    let Some((_turn, net)) = namespaces("the unwritable directory test", &["ip", "trafgen", "setpriv"], 'p') else {
        return;
    };
    let scratch = Scratch::new("unwritable");
    let disk_dir = scratch.path("disk");
    let _disk = match Mounted::tmpfs(&disk_dir) {
        Ok(disk) => disk,
        Err(e) => return skip(&format!("the unwritable directory test cannot mount a tmpfs: {e}")),
    };
    let config = scratch.path("fw.toml");
    std::fs::write(&config, CONFIG).unwrap();
    let (alerts, rotated) = (disk_dir.join("alerts.jsonl"), disk_dir.join("alerts.1.jsonl"));
    let nobody = "65534";
    let chown = Command::new("chown").arg(format!("{nobody}:{nobody}")).arg(&disk_dir).status();
    assert!(chown.is_ok_and(|s| s.success()));
    let unprivileged = [
        "setpriv",
        "--reuid",
        nobody,
        "--regid",
        nobody,
        "--clear-groups",
        "--inh-caps=+net_raw",
        "--ambient-caps=+net_raw",
    ];
    let floodwatch =
        daemon_command(&net, &["--config", config.to_str().unwrap(), "--alerts", alerts.to_str().unwrap()]);
    let args = [&unprivileged[..], &floodwatch].concat();
    let mut daemon = Proc::spawn(&net.victim, &args, &scratch.path("floodwatch.log"));
    daemon.wait_for_output("capture started", "floodwatch");

    trafgen_flood(&net, &scratch.0, TRAFGEN_PPS);
    wait_until("attack_start", || !alert_lines(&alerts).is_empty(), &daemon);
    std::fs::rename(&alerts, &rotated).unwrap();
    let chmod =
        |mode: &str| assert!(Command::new("chmod").arg(mode).arg(&disk_dir).status().is_ok_and(|s| s.success()));
    chmod("0555");
    daemon.signal(libc::SIGHUP);
    // The attack's end comes and cannot be written.
    daemon.wait_for_output("Permission denied", "floodwatch");
    assert!(!alerts.exists(), "the daemon's user wrote into a directory closed to it");
    chmod("0755");
    wait_until("the attack's end in the new file", || !alert_lines(&alerts).is_empty(), &daemon);

    assert!(daemon.child.try_wait().unwrap().is_none(), "floodwatch stopped:\n{}", daemon.output());
    daemon.signal(libc::SIGTERM);
    assert!(daemon.wait_for(Duration::from_secs(5)).is_some_and(|s| s.success()), "{}", daemon.output());
    let log = daemon.output();
    let stopped = sink_report(&log);
    let (before, after) = (alert_lines(&rotated), alert_lines(&alerts));
    let events =
        |lines: &[Value]| lines.iter().map(|a| a["event"].as_str().unwrap_or("").to_string()).collect::<Vec<_>>();
    eprintln!("unwritable directory: rotated {:?}, new {:?}; {stopped}", events(&before), events(&after));
    assert_eq!(events(&before), ["attack_start"], "{log}");
    assert_eq!(events(&after), ["attack_end"], "{log}");
    assert_eq!(before[0]["attack_id"], after[0]["attack_id"]);
    assert_eq!(report_count(stopped, "lost"), Some(0), "{stopped}");
    assert_eq!(report_count(stopped, "raised"), Some(2), "{stopped}");
    assert_eq!(report_count(stopped, "delivered"), Some(2), "{stopped}");
}
