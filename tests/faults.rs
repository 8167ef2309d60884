//! Faults around floodwatch, for real: what is kept and what is lost when the disk fills up.
//! Every assertion is about data: no corrupt line, no invalid pcap, counts that add up.

mod common;

use common::{on_path, repo_path, skip, Scratch};
use sha2::{Digest, Sha256};
use std::process::Command;

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
