//! Faults around floodwatch, for real: what is kept and what is lost when the disk fills up.
//! Every assertion is about data: no corrupt line, counts that add up.

mod common;

use common::{on_path, repo_path, skip, Scratch};
use std::process::Command;

/// Replays every generated capture (22 alerts, several KiB each) with the alert file on a
/// 64 KiB tmpfs: the disk fills up after a few alerts. The tmpfs is mounted in a mount
/// namespace of this test's own (`unshare`), where the replay runs and the file is read back.
#[test]
fn a_full_disk_leaves_whole_alert_lines_counts_the_rest_lost_and_exits_1() {
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
    // In the namespace: mount, replay, then print the exit code and the alert file.
    let script = r#"mount -t tmpfs -o size=64k tmpfs "$1" || exit 99
alerts="$1/alerts.jsonl"; fw="$2"; shift 2
"$fw" replay --no-progress --drain-timeout 1 --alerts "$alerts" "$@" 2>"$alerts.stderr.tmp"
code=$?
echo "EXIT $code"; cat "$alerts.stderr.tmp" >&2; echo "-----"; cat "$alerts""#;
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
    assert_eq!(head.trim(), "EXIT 1", "exit code with alerts lost; stderr:\n{stderr}");
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
