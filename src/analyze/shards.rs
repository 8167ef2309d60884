//! `--threads N`: the analysis spread over N worker threads by victim address, with the
//! alerts of one thread.
//!
//! Each worker owns an [`Analyzer`] for the victims whose address hashes to it: the 64 lanes
//! of the analyzers' keyed hash (one key for all shards) are dealt out to the workers, so a
//! shard's doorkeeper counters see exactly the destinations they see in one analyzer. The
//! caller's thread routes each packet to the destination's shard (traffic toward a victim) and, for
//! the packets that show a host talking back (SYN-ACKs, RSTs, SYNs, echo requests, and its
//! established TCP segments, which show whom it talks with), to the
//! source's shard too ([`Roles`]). Clock moves are broadcast: whenever a packet takes the
//! stream to another 100 ms tick, every shard moves its clock with that packet's time, and
//! every step carries the stream's latest packet time, so an attack ticks, updates and ends
//! at the packet it would in one analyzer. Packets travel in rounds of 4,096: each worker
//! gets its share of a round as one batch through a bounded channel (batches come back empty
//! for reuse), and the events of a round, tagged with the position of the packet that raised
//! them, are merged in stream order once every worker has done the round.
//!
//! Merged in stream order, the alerts then pass the echo filter, which needs every shard's
//! view. Same alerts as one analyzer, as long as no table fills up (each shard has the full
//! configured capacity, so shards run out later, never sooner) and the back-fill ring of
//! 65,536 recent packets covers the window in both cases.
//!
//! A sensor's shards summarize their own victims' seconds; as every shard's clock moves with
//! the same steps, a round brings each second from every shard, joined into one.

use super::carpet::PrefixScope;
use super::doorkeeper::{lane, LANES};
use super::filter::{order_key, AlertFilter};
use super::hash::{random_seed, KeyedHasher};
use super::summary::SecondSummary;
use super::DetectionSettings;
use super::{Analyzer, AnalyzerStats, AttackEvent, EndReason, Roles, RESTART_AFTER_STEP_BACK_TICKS, TICK_NS};
use crate::decode::{IpKey, Origin, PacketRecord};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;

/// Packets per round: every round each worker gets one batch with its share of them.
const ROUND: u64 = 4096;
/// Rounds on their way (the reader runs ahead of the workers by this much).
const ROUNDS_IN_FLIGHT: usize = 2;

/// What an analysis stage does, whether one analyzer or several shards.
pub trait Analysis {
    fn process(&mut self, p: &PacketRecord, out: &mut Vec<AttackEvent>);
    /// The records from now on come from `origin` (see [`Analyzer::set_origin`]).
    fn set_origin(&mut self, origin: Origin);
    /// Ends every attack in progress.
    fn finish(&mut self, reason: EndReason, out: &mut Vec<AttackEvent>);
    fn stats(&self) -> AnalyzerStats;
    fn active_attacks(&self) -> usize;
    /// The summaries of the seconds completed since the last call, when summarizing (see
    /// [`Analyzer::summarize_seconds`]).
    fn take_summaries(&mut self) -> Vec<SecondSummary> {
        Vec::new()
    }
}

impl Analysis for Analyzer {
    #[inline]
    fn process(&mut self, p: &PacketRecord, out: &mut Vec<AttackEvent>) {
        Analyzer::process(self, p, out)
    }
    fn set_origin(&mut self, origin: Origin) {
        Analyzer::set_origin(self, origin)
    }
    fn finish(&mut self, reason: EndReason, out: &mut Vec<AttackEvent>) {
        Analyzer::finish(self, reason, out)
    }
    fn stats(&self) -> AnalyzerStats {
        Analyzer::stats(self)
    }
    fn active_attacks(&self) -> usize {
        Analyzer::active_attacks(self)
    }
    fn take_summaries(&mut self) -> Vec<SecondSummary> {
        Analyzer::take_summaries(self)
    }
}

#[derive(Clone, Copy)]
enum Step {
    /// The stream moved to another tick at a packet of time `tick_ts` (None: only align the
    /// latest packet time, at the end).
    Sync {
        tick_ts: Option<i64>,
        stream_last_ts: i64,
        seq: u64,
    },
    Packet {
        record: PacketRecord,
        roles: Roles,
        stream_last_ts: i64,
        seq: u64,
    },
    /// The records from here on come from this origin (sent to every shard).
    Origin(Origin),
}

enum Work {
    Steps(Vec<Step>),
    Finish(EndReason),
}

struct Done {
    steps: Option<Vec<Step>>,
    /// (position in the stream, event)
    events: Vec<(u64, AttackEvent)>,
    stats: AnalyzerStats,
    active: usize,
    summaries: Vec<SecondSummary>,
}

struct Worker {
    work: Option<SyncSender<Work>>,
    done: Receiver<Done>,
    thread: Option<JoinHandle<()>>,
    /// This round's batch, being filled.
    steps: Vec<Step>,
    /// Emptied batches back from the worker.
    spare: Vec<Vec<Step>>,
    stats: AnalyzerStats,
    active: usize,
}

pub struct ShardedAnalyzer {
    workers: Vec<Worker>,
    /// The analyzers' own hasher: shards take whole lanes of it (see `doorkeeper`).
    hasher: KeyedHasher,
    /// Prefixes of the carpet analyzers: a sampled packet also goes to the shards of its
    /// destination's and source's prefixes.
    carpet_scope: Option<PrefixScope>,
    /// This packet's shards and their roles (at most four).
    routes: Vec<(usize, Roles)>,
    /// Lane → shard.
    shard_of_lane: [u8; LANES],
    seq: u64,
    /// The stream's clock, moved as an analyzer moves its own: forward to a later tick, or
    /// back to a restart after a step back in time.
    now_tick: Option<i64>,
    /// The latest packet time since the last restart, as one analyzer would have it.
    stream_last_ts: i64,
    rounds_in_flight: usize,
    merged: Vec<(u64, AttackEvent)>,
    /// The shards' alerts, merged, are checked for echoes here (they need every shard's view).
    echoes: AlertFilter,
    /// The shards' seconds, joined, oldest first.
    summaries: Vec<SecondSummary>,
}

impl ShardedAnalyzer {
    /// `sensor`: summarize each second under this name (see [`Analyzer::summarize_seconds`]);
    /// `record_seconds`: summarize them for the outputs (see [`Analyzer::record_seconds`]).
    pub fn new(
        mut settings: DetectionSettings,
        threads: usize,
        sensor: Option<&str>,
        record_seconds: bool,
    ) -> Result<ShardedAnalyzer, String> {
        // One key for every shard, so a shard's lanes hold the destinations they would in
        // one analyzer.
        let seed = *settings.hash_seed.get_or_insert_with(random_seed);
        let threads = threads.clamp(1, LANES);
        let mut workers = Vec::new();
        for i in 0..threads {
            let (work_tx, work_rx) = mpsc::sync_channel::<Work>(ROUNDS_IN_FLIGHT + 1);
            let (done_tx, done_rx) = mpsc::sync_channel::<Done>(ROUNDS_IN_FLIGHT + 2);
            let mut analyzer = Analyzer::for_shard(settings.clone());
            if let Some(name) = sensor {
                analyzer.summarize_seconds(name)?;
            }
            if record_seconds {
                analyzer.record_seconds()?;
            }
            let thread = std::thread::Builder::new()
                .name(format!("analyzer-{i}"))
                .spawn(move || run_worker(analyzer, work_rx, done_tx))
                .map_err(|e| format!("cannot start analyzer thread {i}: {e}"))?;
            workers.push(Worker {
                work: Some(work_tx),
                done: done_rx,
                thread: Some(thread),
                steps: Vec::new(),
                spare: Vec::new(),
                stats: AnalyzerStats::default(),
                active: 0,
            });
        }
        let hasher = KeyedHasher::new(Some(seed));
        Ok(ShardedAnalyzer {
            workers,
            carpet_scope: PrefixScope::new(&settings, hasher),
            routes: Vec::with_capacity(4),
            hasher,
            shard_of_lane: std::array::from_fn(|l| (l % threads) as u8),
            seq: 0,
            now_tick: None,
            stream_last_ts: i64::MIN,
            rounds_in_flight: 0,
            merged: Vec::new(),
            echoes: AlertFilter::default(),
            summaries: Vec::new(),
        })
    }

    #[inline]
    fn shard_of(&self, ip: IpKey) -> usize {
        self.shard_of_lane[lane(self.hasher.hash_ip(ip))] as usize
    }

    /// Sends every worker its share of the round; once enough rounds are on their way,
    /// takes back the oldest.
    fn end_round(&mut self, out: &mut Vec<AttackEvent>) {
        for w in &mut self.workers {
            let next = w.spare.pop().unwrap_or_default();
            let batch = std::mem::replace(&mut w.steps, next);
            if let Some(tx) = &w.work {
                let _ = tx.send(Work::Steps(batch));
            }
        }
        self.rounds_in_flight += 1;
        if self.rounds_in_flight > ROUNDS_IN_FLIGHT {
            self.collect_round(out);
        }
    }

    /// Waits for one round from every worker and hands its events on in stream order (the
    /// alerts of one packet in the order one analyzer gives them), echoes dropped.
    fn collect_round(&mut self, out: &mut Vec<AttackEvent>) {
        let mut seconds: Vec<SecondSummary> = Vec::new();
        for w in &mut self.workers {
            if let Ok(done) = w.done.recv() {
                w.stats = done.stats;
                w.active = done.active;
                if let Some(mut steps) = done.steps {
                    steps.clear();
                    w.spare.push(steps);
                }
                self.merged.extend(done.events);
                seconds.extend(done.summaries);
            }
        }
        seconds.sort_by_key(|s| s.second);
        while let Some(first) = seconds.first().map(|s| s.second) {
            let end = seconds.iter().position(|s| s.second != first).unwrap_or(seconds.len());
            self.summaries.extend(SecondSummary::join(seconds.drain(..end).collect()));
        }
        self.rounds_in_flight = self.rounds_in_flight.saturating_sub(1);
        // Stream order, and among the alerts of one packet the order one analyzer gives them.
        self.merged.sort_by(|(a, x), (b, y)| (a, order_key(x)).cmp(&(b, order_key(y))));
        let from = out.len();
        out.extend(self.merged.drain(..).map(|(_, e)| e));
        self.echoes.filter(out, from);
    }
}

impl Analysis for ShardedAnalyzer {
    fn set_origin(&mut self, origin: Origin) {
        for w in &mut self.workers {
            w.steps.push(Step::Origin(origin));
        }
    }

    fn process(&mut self, p: &PacketRecord, out: &mut Vec<AttackEvent>) {
        let seq = self.seq;
        self.seq += 1;
        let tick = p.ts_ns.div_euclid(TICK_NS);
        let before = self.stream_last_ts;
        let moved = match self.now_tick {
            Some(now) if tick < now - RESTART_AFTER_STEP_BACK_TICKS => {
                self.stream_last_ts = i64::MIN;
                true
            }
            Some(now) => tick > now,
            None => true,
        };
        if moved {
            self.now_tick = Some(tick);
            // Attacks ended by this move carry the time of the stream before it.
            let step = Step::Sync { tick_ts: Some(p.ts_ns), stream_last_ts: before, seq };
            for w in &mut self.workers {
                w.steps.push(step);
            }
        }
        let source_side = Roles::source_side_matters(p);
        let mut routes = std::mem::take(&mut self.routes);
        let mut route = |shard: usize, set: fn(&mut Roles)| match routes.iter_mut().find(|(s, _)| *s == shard) {
            Some((_, roles)) => set(roles),
            None => {
                let mut roles = Roles::NONE;
                set(&mut roles);
                routes.push((shard, roles));
            }
        };
        route(self.shard_of(p.dst), |r| r.toward_dst = true);
        if source_side {
            route(self.shard_of(p.src), |r| r.from_src = true);
        }
        if let Some(scope) = self.carpet_scope.as_ref().filter(|scope| scope.sampled(p)) {
            route(self.shard_of(scope.network_of(p.dst)), |r| r.toward_dst_prefix = true);
            if source_side {
                route(self.shard_of(scope.network_of(p.src)), |r| r.from_src_prefix = true);
            }
        }
        let stream_last_ts = self.stream_last_ts;
        for (shard, roles) in routes.drain(..) {
            self.workers[shard].steps.push(Step::Packet { record: *p, roles, stream_last_ts, seq });
        }
        self.routes = routes;
        self.stream_last_ts = self.stream_last_ts.max(p.ts_ns);
        if self.seq % ROUND == 0 {
            self.end_round(out);
        }
    }

    fn finish(&mut self, reason: EndReason, out: &mut Vec<AttackEvent>) {
        let step = Step::Sync { tick_ts: None, stream_last_ts: self.stream_last_ts, seq: self.seq };
        for w in &mut self.workers {
            w.steps.push(step);
        }
        self.end_round(out);
        while self.rounds_in_flight > 0 {
            self.collect_round(out);
        }
        for w in &mut self.workers {
            if let Some(tx) = &w.work {
                let _ = tx.send(Work::Finish(reason));
            }
        }
        self.rounds_in_flight = 1;
        self.collect_round(out);
    }

    fn stats(&self) -> AnalyzerStats {
        let mut stats = AnalyzerStats::merge(self.workers.iter().map(|w| w.stats));
        stats.echoes_dropped = self.echoes.dropped;
        stats.carpets_covered = self.echoes.covered;
        stats
    }

    fn active_attacks(&self) -> usize {
        self.workers.iter().map(|w| w.active).sum::<usize>().saturating_sub(self.echoes.suppressed())
    }

    fn take_summaries(&mut self) -> Vec<SecondSummary> {
        std::mem::take(&mut self.summaries)
    }
}

impl Drop for ShardedAnalyzer {
    fn drop(&mut self) {
        for w in &mut self.workers {
            // Closing the work channel ends the worker once it has drained it.
            w.work = None;
            while w.done.recv().is_ok() {}
            if let Some(t) = w.thread.take() {
                let _ = t.join();
            }
        }
    }
}

fn run_worker(mut analyzer: Analyzer, work: Receiver<Work>, done: SyncSender<Done>) {
    let mut events = Vec::new();
    for w in work {
        let mut tagged = Vec::new();
        let steps = match w {
            Work::Steps(steps) => {
                for step in &steps {
                    let seq = match *step {
                        Step::Sync { tick_ts, stream_last_ts, seq } => {
                            analyzer.sync(tick_ts, stream_last_ts, &mut events);
                            seq
                        }
                        Step::Packet { record, roles, stream_last_ts, seq } => {
                            analyzer.sync(None, stream_last_ts, &mut events);
                            analyzer.process_as(&record, roles, &mut events);
                            seq
                        }
                        Step::Origin(origin) => {
                            analyzer.set_origin(origin);
                            continue;
                        }
                    };
                    tagged.extend(events.drain(..).map(|e| (seq, e)));
                }
                Some(steps)
            }
            Work::Finish(reason) => {
                analyzer.finish(reason, &mut events);
                tagged.extend(events.drain(..).map(|e| (u64::MAX, e)));
                None
            }
        };
        let result = Done {
            steps,
            events: tagged,
            stats: analyzer.stats(),
            active: analyzer.active_attacks(),
            summaries: analyzer.take_summaries(),
        };
        if done.send(result).is_err() {
            return;
        }
    }
}
