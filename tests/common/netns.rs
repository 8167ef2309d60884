//! Two network namespaces joined by a veth pair, the programs run in them, and trafgen
//! floods from the attacker's end to the victim's, for the tests that run the daemon on a
//! real link.

use super::on_path;
use serde_json::Value;
use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The command line of `floodwatch run` capturing on the victim's end of `net`, with
/// `options` after the interface.
pub fn daemon_command<'a>(net: &'a Netns, options: &[&'a str]) -> Vec<&'a str> {
    [env!("CARGO_BIN_EXE_floodwatch"), "run", "--interface", net.victim_if.as_str()]
        .into_iter()
        .chain(options.iter().copied())
        .collect()
}

/// Whether the plain blocklist at `path` lists the flood's source, [`ATTACKER_ADDR`].
pub fn lists_attacker(path: &Path) -> bool {
    std::fs::read_to_string(path).unwrap_or_default().lines().any(|l| l == ATTACKER_ADDR)
}

/// Held by each test while it floods the link.
pub static ONE_FLOOD_AT_A_TIME: Mutex<()> = Mutex::new(());

pub const VICTIM_ADDR: &str = "192.0.2.1";
pub const ATTACKER_ADDR: &str = "192.0.2.2";
/// Runs `ip ARGS`, returning its stderr on failure.
pub fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip").args(args).stdin(Stdio::null()).output().map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("ip {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr).trim()))
    }
}

/// The two namespaces and the veth between them; deleted on drop, panic or not.
pub struct Netns {
    pub victim: String,
    pub attacker: String,
    pub victim_if: String,
    pub attacker_if: String,
}

impl Netns {
    /// Names of this process's pair `tag` (one letter: interface names have 15 bytes).
    pub fn names(tag: char) -> Netns {
        let pid = std::process::id();
        Netns {
            victim: format!("fw-victim-{pid}{tag}"),
            attacker: format!("fw-attacker-{pid}{tag}"),
            victim_if: format!("fwv{pid}{tag}"),
            attacker_if: format!("fwa{pid}{tag}"),
        }
    }

    pub fn remove(&self) {
        let _ = ip(&["netns", "del", &self.victim]);
        let _ = ip(&["netns", "del", &self.attacker]);
        // A crashed run may have left the pair in the root namespace.
        let _ = ip(&["link", "del", &self.victim_if]);
        let _ = ip(&["link", "del", &self.attacker_if]);
    }

    /// Creates both namespaces; Err when the kernel or container refuses the first one.
    pub fn create(tag: char) -> Result<Netns, String> {
        let net = Netns::names(tag);
        net.remove();
        ip(&["netns", "add", &net.victim])?; // from here on, Drop cleans up
        if let Err(e) = ip(&["netns", "add", &net.attacker]) {
            panic!("setting up the namespaces failed: {e}");
        }
        net.link();
        Ok(net)
    }

    /// Makes the veth pair between the namespaces, addressed and up.
    pub fn link(&self) {
        let (v, a, vif, aif) = (&self.victim, &self.attacker, &self.victim_if, &self.attacker_if);
        let steps: Vec<Vec<&str>> = vec![
            vec!["link", "add", vif, "netns", v, "type", "veth", "peer", "name", aif, "netns", a],
            vec!["-n", v, "addr", "add", "192.0.2.1/24", "dev", vif],
            vec!["-n", a, "addr", "add", "192.0.2.2/24", "dev", aif],
            vec!["-n", v, "link", "set", "lo", "up"],
            vec!["-n", a, "link", "set", "lo", "up"],
            vec!["-n", v, "link", "set", vif, "up"],
            vec!["-n", a, "link", "set", aif, "up"],
        ];
        for step in steps {
            if let Err(e) = ip(&step) {
                panic!("setting up the namespaces failed: {e}");
            }
        }
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        self.remove();
    }
}

/// A child run through `ip netns exec` (which execs it: same pid) in its own process group;
/// the whole group is killed on drop unless it has exited, so nothing outlives a failure.
pub struct Proc {
    pub child: Child,
    log: PathBuf,
}

impl Proc {
    pub fn spawn(ns: &str, args: &[&str], log: &Path) -> Proc {
        let out = File::create(log).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", ns])
            .args(args)
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .process_group(0)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {args:?}: {e}"));
        Proc { child, log: log.to_path_buf() }
    }

    pub fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child, which has not been reaped (callers wait afterwards).
        unsafe { libc::kill(self.child.id() as i32, sig) };
    }

    /// Polls every millisecond, so the return is within ~1 ms of the exit.
    pub fn wait_for(&mut self, limit: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    pub fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits until the child's output contains `needle`; panics if it exits or takes > 10 s.
    pub fn wait_for_output(&mut self, needle: &str, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.output().contains(needle) {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("{what} exited ({status}) before \"{needle}\":\n{}", self.output());
            }
            assert!(Instant::now() < deadline, "{what}: no \"{needle}\" within 10 s:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            // SAFETY: the group is the one we created for this child, which is still running.
            unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
            let _ = self.child.wait();
        }
    }
}

pub fn field<'a>(e: &'a Value, name: &str) -> &'a str {
    e[name].as_str().unwrap_or("")
}

/// The namespaces for test `what`, made once it holds its turn; `None` (having skipped with
/// the reason) without root, one of `tools`, or the namespaces.
pub fn namespaces(what: &str, tools: &[&str], tag: char) -> Option<(std::sync::MutexGuard<'static, ()>, Netns)> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        super::skip(&format!("{what} needs root (network namespaces, raw sockets)"));
        return None;
    }
    if let Some(tool) = tools.iter().find(|t| !on_path(t)) {
        super::skip(&format!("{what} needs {tool} on PATH (.ci/run names the Debian packages that have it)"));
        return None;
    }
    let turn = ONE_FLOOD_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    match Netns::create(tag) {
        Ok(net) => Some((turn, net)),
        Err(e) => {
            super::skip(&format!("cannot create network namespaces: {e}"));
            None
        }
    }
}

/// (kind, victim) of each `attack_start` in an alert file.
pub fn attack_starts(alerts: &Path) -> Vec<(String, String)> {
    std::fs::read_to_string(alerts)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|e| field(e, "event") == "attack_start")
        .map(|e| (field(&e, "kind").to_string(), field(&e, "victim").to_string()))
        .collect()
}

/// (packets, kernel_dropped) of a daemon log line such as `capture stopped packets=600017
/// decode_issues=0 kernel_dropped=0`, or `capture thread stopped thread=0 packets=…`.
pub fn capture_counts(line: &str) -> (Option<u64>, Option<u64>) {
    let count =
        |name: &str| line.split_whitespace().find_map(|w| w.strip_prefix(name)?.strip_prefix('=')?.parse::<u64>().ok());
    (count("packets"), count("kernel_dropped"))
}

/// The counts of the daemon's last line, `capture stopped …`.
pub fn stopped_counts(log: &str) -> (Option<u64>, Option<u64>) {
    log.lines().find(|l| l.contains("capture stopped")).map(capture_counts).unwrap_or_default()
}

/// Reads `/sys/class/net/IF/FILE` inside namespace `ns`.
pub fn sys_net(ns: &str, interface: &str, file: &str) -> String {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", &format!("/sys/class/net/{interface}/{file}")])
        .output()
        .expect("ip netns exec runs");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Starts sending `count` 60-byte UDP frames (random source ports, as in a flood) from the
/// attacker's end at [`TRAFGEN_PPS`] with trafgen.
pub fn trafgen(net: &Netns, dir: &Path, count: u64) -> Proc {
    let mac = sys_net(&net.victim, &net.victim_if, "address");
    let frames = dir.join("udp.cfg");
    std::fs::write(
        &frames,
        format!(
            "{{ eth(da={mac}, type=0x0800), ipv4(sa={ATTACKER_ADDR}, da={VICTIM_ADDR}), udp(sp=drnd(), dp=9), fill(0x41, 18) }}\n"
        ),
    )
    .unwrap();
    let (rate, count) = (format!("{TRAFGEN_PPS}pps"), count.to_string());
    let args =
        ["trafgen", "-o", &net.attacker_if, "-i", frames.to_str().unwrap(), "-q", "-P", "1", "-b", &rate, "-n", &count];
    Proc::spawn(&net.attacker, &args, &dir.join("trafgen.log"))
}

/// Waits for a [`trafgen`] of `count` frames to finish, which must succeed.
pub fn trafgen_done(mut trafgen: Proc, count: u64) {
    let status = trafgen.wait_for(Duration::from_secs(5 + 5 * count / TRAFGEN_PPS));
    assert!(status.is_some_and(|s| s.success()), "trafgen failed ({status:?}):\n{}", trafgen.output());
}

/// Sends `count` frames with [`trafgen`]; returns how many the veth sent (its tx counter).
pub fn trafgen_flood(net: &Netns, dir: &Path, count: u64) -> u64 {
    let tx = || sys_net(&net.attacker, &net.attacker_if, "statistics/tx_packets").parse::<u64>().unwrap_or(0);
    let before = tx();
    trafgen_done(trafgen(net, dir, count), count);
    tx() - before
}

/// Frames trafgen sends per second: real floods come in bursts from PACKET_MMAP senders
/// like this one, which the pnet backend (a `recvfrom` per frame) does not keep up with.
pub const TRAFGEN_PPS: u64 = 300_000;
