//! Replay from a pipe that stays open: the capture thread waits for input there, and neither
//! the alerts nor an output failure may wait with it.

mod common;

use floodwatch::analyze::{Analyzer, AttackEvent, EventKind};
use floodwatch::pipeline::Datagrams;
use floodwatch::replay::replay;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
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

/// Where the capture through the attack's start goes: into the pipe, or into a regular file
/// replayed before a pipe that gets nothing.
#[derive(Clone, Copy, PartialEq)]
enum Feed {
    Pipe,
    FileThenPipe,
}

/// Replays (a file and) a new FIFO in `dir` in a thread with `stage`, feeding the capture
/// through its attack's start as `feed` says. Returns the FIFO's writer, to keep the pipe
/// open, and where the replay's result arrives.
fn replay_open_pipe(
    dir: &common::Scratch,
    feed: Feed,
    mut stage: impl FnMut(&AttackEvent) -> io::Result<()> + Send + 'static,
) -> (File, mpsc::Receiver<Result<usize, String>>) {
    let capture = capture_through_attack_start();
    let (file, fifo) = (dir.path("first.pcap"), dir.path("in.pcap"));
    assert!(Command::new("mkfifo").arg(&fifo).status().expect("mkfifo runs").success());
    let mut names = vec![fifo.display().to_string()];
    if feed == Feed::FileThenPipe {
        std::fs::write(&file, &capture).unwrap();
        names.insert(0, file.display().to_string());
    }
    let (done_tx, done_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut analyzer = Analyzer::new(common::settings());
        let result = replay(&names, Datagrams::Packets, &mut analyzer, &mut stage, None);
        let _ = done_tx.send(result.map(|o| o.attacks.len()));
    });
    let mut writer = OpenOptions::new().write(true).open(&fifo).expect("the FIFO opens for writing");
    if feed == Feed::Pipe {
        writer.write_all(&capture).expect("the replay reads the pipe");
    }
    (writer, done_rx)
}

#[test]
fn an_output_failure_ends_a_replay_whose_pipe_stays_open() {
    let dir = common::Scratch::new("replay-stream-fail");
    let (writer, done) = replay_open_pipe(&dir, Feed::Pipe, |_| Err(io::Error::other("the alert output is gone")));
    let result = done.recv_timeout(HANG).expect("the replay returned while its input pipe was still open");
    let err = result.expect_err("the output failed");
    assert!(err.contains("the alert output is gone"), "{err}");
    drop(writer);
}

/// The attack_start of a replay fed as `feed`, while the pipe stays open.
fn start_while_pipe_open(name: &str, feed: Feed) -> String {
    let dir = common::Scratch::new(name);
    let (start_tx, start_rx) = mpsc::channel();
    let (writer, _done) = replay_open_pipe(&dir, feed, move |e| {
        if e.event == EventKind::Start {
            let _ = start_tx.send(e.victim.to_string());
        }
        Ok(())
    });
    let victim = start_rx.recv_timeout(HANG).expect("attack_start came while the pipe was still open");
    drop(writer);
    victim
}

#[test]
fn alerts_from_a_pipe_do_not_wait_for_more_input() {
    assert_eq!(start_while_pipe_open("replay-stream-alerts", Feed::Pipe), "198.51.100.10");
}

#[test]
fn alerts_of_a_file_do_not_wait_for_the_pipe_after_it() {
    assert_eq!(start_while_pipe_open("replay-stream-next", Feed::FileThenPipe), "198.51.100.10");
}
