//! Replay from a pipe that stays open: the capture thread waits for input there, and neither
//! the alerts nor an output failure may wait with it.

mod common;

use floodwatch::analyze::{Analyzer, AttackEvent, EventKind};
use floodwatch::replay::replay;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::Path;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

/// Generous: only a replay stuck behind its waiting capture thread comes near it.
const HANG: Duration = Duration::from_secs(60);

/// The SYN flood capture up to the packet that starts its attack: all that a replay needs
/// to report it, and then nothing more to read.
fn capture_through_attack_start() -> Vec<u8> {
    let path = common::repo_path("captures/syn_flood_real_sources.pcap");
    let (events, _) = common::replay_files(std::slice::from_ref(&path), common::settings());
    let start = events.iter().find(|e| e.event == EventKind::Start).expect("the flood is reported");
    let pcap = common::Pcap::read(&path);
    let ts_ns = |r: &[u8]| {
        let word = |at: usize| i64::from(u32::from_le_bytes(r[at..at + 4].try_into().unwrap()));
        word(0) * 1_000_000_000 + word(4) * 1_000
    };
    let through = pcap.records.iter().position(|r| ts_ns(r) >= start.timestamp_ns).expect("the start's packet");
    let mut bytes = pcap.header.clone();
    pcap.records[..=through].iter().for_each(|r| bytes.extend_from_slice(r));
    bytes
}

/// Replays the new FIFO `fifo` in a thread with `stage` and writes the capture through its
/// attack's start into it. Returns the writer, to keep the pipe open, and where the replay's
/// result arrives.
fn replay_open_pipe(
    fifo: &Path,
    mut stage: impl FnMut(&AttackEvent) -> io::Result<()> + Send + 'static,
) -> (File, mpsc::Receiver<Result<usize, String>>) {
    let capture = capture_through_attack_start();
    assert!(Command::new("mkfifo").arg(fifo).status().expect("mkfifo runs").success());
    let name = fifo.display().to_string();
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut analyzer = Analyzer::new(common::settings());
        let result = replay(&[name], &mut analyzer, &mut stage, None);
        let _ = done_tx.send(result.map(|o| o.attacks.len()));
    });
    let mut writer = OpenOptions::new().write(true).open(fifo).expect("the FIFO opens for writing");
    writer.write_all(&capture).expect("the replay reads the pipe");
    (writer, done_rx)
}

#[test]
fn an_output_failure_ends_a_replay_whose_pipe_stays_open() {
    let dir = common::Scratch::new("replay-stream-fail");
    let (writer, done) = replay_open_pipe(&dir.path("in.pcap"), |_| Err(io::Error::other("the alert output is gone")));
    let result = done.recv_timeout(HANG).expect("the replay returned while its input pipe was still open");
    let err = result.expect_err("the output failed");
    assert!(err.contains("the alert output is gone"), "{err}");
    drop(writer);
}

#[test]
fn alerts_from_a_pipe_do_not_wait_for_more_input() {
    let dir = common::Scratch::new("replay-stream-alerts");
    let (start_tx, start_rx) = mpsc::channel();
    let (writer, _done) = replay_open_pipe(&dir.path("in.pcap"), move |e| {
        if e.event == EventKind::Start {
            let _ = start_tx.send(e.victim.to_string());
        }
        Ok(())
    });
    // The pipe stays open: the flood's start must come out of what was written.
    let victim = start_rx.recv_timeout(HANG).expect("attack_start came while the pipe was still open");
    assert_eq!(victim, "198.51.100.10");
    drop(writer);
}
