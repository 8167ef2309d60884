//! `--threads N`: the analysis sharded by victim gives the alerts of one analyzer on every
//! generated capture, alone and as one stream with timeline restarts, and at lowered
//! thresholds; on the third-party captures it misses nothing, and differs in one known way:
//! a victim's answers to its attacker are recognised as such only when both hosts fall in
//! the same shard (the check reads the other victim's attack).

mod common;

use common::*;
use floodwatch::analyze::summary::{cell, SecondSummary};
use floodwatch::analyze::DetectionSettings;
use floodwatch::analyze::{Analysis, Analyzer, AttackEvent, AttackKind, ShardedAnalyzer};
use floodwatch::pipeline::Datagrams;
use floodwatch::replay::{replay, Stage};
use std::path::{Path, PathBuf};

fn events_with(files: &[PathBuf], analysis: &mut dyn Analysis) -> Vec<AttackEvent> {
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let mut events = Vec::new();
    let outcome = replay(
        &names,
        Datagrams::Packets,
        analysis,
        &mut |e: &AttackEvent| {
            events.push(e.clone());
            Ok(())
        },
        None,
    )
    .expect("collecting events in memory cannot fail");
    assert!(outcome.traffic.ip_packets > 0);
    assert_eq!(analysis.stats().packets, outcome.traffic.ip_packets, "every packet counted once");
    events
}

/// Alerts in a canonical order: alerts of different victims raised by the same packet may
/// come in another order from shards; everything else must be equal.
fn canonical(mut events: Vec<AttackEvent>) -> Vec<AttackEvent> {
    events.sort_by(|a, b| {
        (a.timestamp_ns, &a.attack_id, a.event as u8).cmp(&(b.timestamp_ns, &b.attack_id, b.event as u8))
    });
    events
}

fn assert_same_with_threads(files: &[PathBuf], settings: DetectionSettings, what: &str) {
    let one = events_with(files, &mut Analyzer::new(settings.clone()));
    compare_with_threads(files, settings, what, &one);
}

fn compare_with_threads(files: &[PathBuf], settings: DetectionSettings, what: &str, one: &[AttackEvent]) {
    for threads in [2, 3] {
        let mut sharded = ShardedAnalyzer::new(settings.clone(), threads, None, false).expect("threads start");
        let many = events_with(files, &mut sharded);
        let (a, b) = (canonical(many.clone()), canonical(one.to_vec()));
        if a != b {
            let brief = |v: &[AttackEvent]| -> String {
                v.iter()
                    .map(|e| {
                        format!(
                            "{} {} {} {:?} {} pkts {} src {} offenders {}",
                            e.timestamp_ns,
                            e.event.name(),
                            e.attack_id,
                            e.kind,
                            e.victim,
                            e.packets,
                            e.sources.distinct_estimate,
                            e.offending_ips.len()
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n  ")
            };
            panic!("{what}: {threads} threads:\n  {}\none thread:\n  {}", brief(&a), brief(&b));
        }
        // Stream order holds too, up to alerts raised by the same packet.
        let times = |v: &[AttackEvent]| v.iter().map(|e| e.timestamp_ns).collect::<Vec<_>>();
        assert_eq!(times(&many), times(one), "{what}: {threads} threads reorder alerts in time");
    }
}

fn captures_in(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.file_name().and_then(|n| n.to_str()).is_some_and(&keep))
        .collect();
    files.sort();
    files
}

#[test]
fn every_generated_capture_gives_the_same_alerts_on_several_threads() {
    let files = captures_in(&repo_path("captures"), |n| !n.ends_with(".json"));
    assert!(files.len() >= 8);
    let mut total = 0;
    for f in &files {
        assert_same_with_threads(std::slice::from_ref(f), settings(), &f.display().to_string());
        total += 1;
    }
    // All of them as one stream: time steps back at every file (timeline restarts).
    assert_same_with_threads(&files, settings(), "all captures as one stream");
    assert_eq!(total, files.len());
}

#[test]
fn lowered_thresholds_and_a_short_window_give_the_same_alerts_on_several_threads() {
    // More watches, declines and attacks at once: the paths where shards could diverge.
    let mut s = settings();
    s.thresholds = [200; AttackKind::ALL.len()];
    s.window_ticks = 3;
    let files = captures_in(&repo_path("captures"), |n| n.starts_with("benign_mix") && !n.ends_with(".json"));
    assert_same_with_threads(&files, s, "benign mixes at 200 pps");
}

#[test]
fn third_party_captures_give_the_same_alerts_on_several_threads() {
    let Some(dir) = shared_captures() else {
        return skip("../shared/captures is not beside the repository");
    };
    let files = captures_in(&dir, |n| n.ends_with(".pcap") || n.ends_with(".pcapng"));
    assert!(files.len() >= 15);
    // Among them the UDP flood whose victim answers its attacker: the echo is dropped from
    // the merged alerts of the shards as from one analyzer's.
    for f in &files {
        assert_same_with_threads(std::slice::from_ref(f), settings(), &f.display().to_string());
        let mut low = settings();
        low.thresholds = [100; AttackKind::ALL.len()];
        assert_same_with_threads(std::slice::from_ref(f), low, &format!("{} at 100 pps", f.display()));
    }
}

/// A sensor's summaries, collected (its alerts let go).
#[derive(Default)]
struct Summaries(Vec<SecondSummary>);

impl Stage for Summaries {
    fn deliver(&mut self, events: &mut Vec<AttackEvent>) -> Result<(), String> {
        events.clear();
        Ok(())
    }
    fn summaries(&mut self, summaries: Vec<SecondSummary>) {
        self.0.extend(summaries);
    }
}

fn summaries_with(file: &Path, analysis: &mut dyn Analysis) -> Vec<SecondSummary> {
    let mut seconds = Summaries::default();
    replay(&[file.display().to_string()], Datagrams::Packets, analysis, &mut seconds, None).expect("replay");
    seconds.0
}

#[test]
fn a_sensor_on_several_threads_publishes_the_summaries_of_one_analyzer() {
    let files = captures_in(&repo_path("captures"), |n| !n.ends_with(".json"));
    for f in &files {
        let mut one = Analyzer::new(settings());
        one.summarize_seconds("edge").unwrap();
        let expected = summaries_with(f, &mut one);
        assert!(expected.iter().any(|s| !s.victims.is_empty()), "{}", f.display());
        for threads in [2, 3] {
            let mut sharded = ShardedAnalyzer::new(settings(), threads, Some("edge"), false).expect("threads start");
            let got = summaries_with(f, &mut sharded);
            let seconds = |v: &[SecondSummary]| v.iter().map(|s| s.second).collect::<Vec<_>>();
            assert_eq!(seconds(&got), seconds(&expected), "{}: {threads} threads", f.display());
            for (g, e) in got.iter().zip(&expected) {
                let at = format!("{}: {threads} threads, second {}", f.display(), e.second);
                let victims = |s: &SecondSummary| s.victims.iter().map(|v| v.victim).collect::<Vec<_>>();
                assert_eq!(victims(g), victims(e), "{at}");
                assert_eq!(g.victims_left_out, e.victims_left_out, "{at}");
                for (gv, ev) in g.victims.iter().zip(&e.victims) {
                    assert_eq!(gv.watches, ev.watches, "{at}: victim {:?}", ev.victim);
                    // Byte counters may differ in a victim's first tick: its admission
                    // counts up to `admit_per_tick - 1` earlier packets (2 for a sensor at
                    // the default thresholds), read among the newest records of its
                    // analyzer, which in a shard are the shard's only, else taken to be of
                    // the admitting packet's size (frames of at most 1,514 bytes here).
                    let (packets, bytes): (Vec<_>, Vec<_>) =
                        gv.cells.iter().zip(&ev.cells).partition(|(g, _)| usize::from(g.0) < cell::BYTES);
                    assert!(
                        packets.iter().all(|(g, e)| g == e),
                        "{at}: victim {:?}: {:?} / {:?}",
                        ev.victim,
                        gv.cells,
                        ev.cells
                    );
                    assert!(
                        bytes.iter().all(|(g, e)| g.0 == e.0 && g.1.abs_diff(e.1) <= 2 * 1_514),
                        "{at}: victim {:?}: {:?} / {:?}",
                        ev.victim,
                        gv.cells,
                        ev.cells
                    );
                    assert_eq!(gv.cells.len(), ev.cells.len(), "{at}");
                }
            }
        }
    }
}
