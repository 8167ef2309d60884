//! Sliding windows, sketches, detectors and the attack lifecycle.
//!
//! The [`Analyzer`] consumes [`PacketRecord`]s in packet time. Per packet it does a bounded
//! amount of work: a keyed-hash lookup of the destination, a few counter increments, one
//! comparison against a precomputed level and, for watched victims, a sketch update. The
//! slow path (deciding, emitting events) runs only when a level is crossed or a 100 ms
//! tick passes. See ARCHITECTURE.md for the invariants.

mod acquaintances;
mod carpet;
mod doorkeeper;
mod event;
mod filter;
mod handshake;
pub mod hash;
// unsafe: streaming stores.
#[allow(unsafe_code)]
mod recent;
pub mod services;
mod settings;
mod shards;
pub mod sketch;
pub mod summary;

#[cfg(test)]
pub(crate) use event::tests::event as sample_event;
pub use event::{AttackEvent, AttackKind, EndReason, EndReport, EventKind, SourceReport, TelemetrySource};
pub use shards::{Analysis, ShardedAnalyzer};
mod tracker;
mod verdict;
mod victims;

use crate::decode::{Fragment, IpKey, L4State, Origin, PacketRecord};
use acquaintances::Acquaintances;
use carpet::{Hosts, PrefixScope};
use doorkeeper::Doorkeeper;
use filter::AlertFilter;
use handshake::HandshakeTable;
use hash::KeyedHasher;
use recent::RecentPackets;
use services::ServiceTable;
pub use settings::{
    CarpetSettings, DetectionSettings, KindThresholds, PrefixPolicy, DEFAULT_ACK_THRESHOLD_PPS,
    DEFAULT_CLIENT_UNANSWERED_SYNS, DEFAULT_THRESHOLDS, DEFAULT_THRESHOLD_PPS,
};
use std::net::IpAddr;
use summary::{ClassWatch, MergedVictim, SecondSummary, VictimSecond};
use tracker::AttackTracker;
use verdict::Evidence;
use victims::{cell, VictimMeta, VictimTable, NO_WATCH};

/// One evaluation step of packet time.
pub const TICK_NS: i64 = 100_000_000;
const TICKS_PER_SEC: f64 = 10.0;
/// Packets kept for back-filling a new tracker with the window before it started.
const RECENT_PACKETS: usize = 1 << 16;
/// A step back in packet time longer than this (2 s) starts a new timeline: interleaved
/// interfaces step back by a fraction of a second (0.24 s at most in the shared captures).
pub(crate) const RESTART_AFTER_STEP_BACK_TICKS: i64 = 20;
/// Handshake table slots (log2).
const HANDSHAKE_SLOTS_LOG2: u32 = 16;
/// Acquaintance table buckets (log2) of 4 pairs of a host and a peer it talks with: 512 KiB.
const ACQUAINTANCE_BUCKETS_LOG2: u32 = 14;
/// A share of packets from impossible sources at least this large means forged sources
/// (uniformly random IPv4 sources are 13 % impossible); below it, a few spoofing nodes of a
/// real botnet do not hide the others.
const IMPOSSIBLE_SHARE_SPOOFED: f64 = 0.05;
/// Many IPv4 sources with few packets each look forged only when they spread over at least
/// this share of the /16 networks that as many random addresses would cover (see
/// `AttackTracker::network_spread`): real hosts cluster in their providers' networks.
const NETWORK_SPREAD_SPOOFED: f64 = 0.5;
/// A watch that is no attack renews its tracker after this many windows.
const TRACKER_HORIZON_WINDOWS: i64 = 10;
/// Trackers made when the analyzer is: the watches of a few busy victims take no allocation.
const TRACKERS_UP_FRONT: usize = 16;
/// Classes counted toward prefixes (see `Analyzer::classes`).
const CARPET_CLASSES: u16 = !(1 << Class::Ack as u8 | 1 << Class::Rst as u8);
/// Samples (records standing for several packets) a window needs before a verdict.
const MIN_SAMPLES: u64 = 8;
/// Watches per tracker: a watch on a busy-but-benign victim needs no tracker to be decided.
const WATCHES_PER_TRACKER: usize = 4;
/// A sensor publishing summaries admits and watches victims at this many times lower shares of
/// their thresholds than a lone analyzer: a flood spread evenly over up to 16 sites still
/// brings its victim, and its sources, to the aggregator's sum.
const SENSOR_REACH: u32 = 4;
/// A destination port is "main" when it carries at least this share of an attack.
const MAIN_PORT_SHARE: f64 = 0.1;
const MAIN_PORTS_MAX: usize = 5;
/// A destination earns a victim entry at this fraction of the lowest threshold, per tick.
const ADMIT_FRACTION_OF_THRESHOLD: u32 = 8;
/// How far back among the newest packets admission reads the classes of the new victim's
/// earlier packets (bounded: a flood of destinations must not make each admission read far).
const ADMISSION_SEARCH_RECORDS: usize = 256;
/// Words of the filter of victims that count ACKs (4,096 bits, in L1).
const ACK_FILTER_WORDS: usize = 64;
/// Stale bits of that filter are cleared once a minute of packet time.
const ACK_FILTER_REBUILD_TICKS: i64 = 600;

/// Traffic classes counted per victim; each maps to one or two attack kinds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Syn,
    SynAck,
    Udp,
    Icmp,
    Frag,
    Ack,
    Rst,
    TcpOther,
}

impl Class {
    pub const COUNT: usize = 8;
    pub const ALL: [Class; Class::COUNT] =
        [Class::Syn, Class::SynAck, Class::Udp, Class::Icmp, Class::Frag, Class::Ack, Class::Rst, Class::TcpOther];

    pub const fn name(self) -> &'static str {
        match self {
            Class::Syn => "syn",
            Class::SynAck => "synack",
            Class::Udp => "udp",
            Class::Icmp => "icmp",
            Class::Frag => "fragment",
            Class::Ack => "ack",
            Class::Rst => "rst",
            Class::TcpOther => "tcp_other",
        }
    }

    /// The class of a packet by protocol (fragments are counted separately too). A TCP
    /// segment with SYN is a SYN or a SYN-ACK whatever its other flags; without SYN, one with
    /// RST is a RST, one with ACK an ACK, the rest (null, FIN, xmas) other TCP.
    #[inline]
    pub const fn of(p: &PacketRecord) -> Option<Class> {
        const SYN: u8 = PacketRecord::TCP_SYN;
        const ACK: u8 = PacketRecord::TCP_ACK;
        const RST: u8 = PacketRecord::TCP_RST;
        match p.protocol {
            PacketRecord::PROTO_TCP if p.l4.has_ports() => Some(match p.tcp_flags & (SYN | ACK | RST) {
                f if f & (SYN | ACK) == SYN => Class::Syn,
                f if f & (SYN | ACK) == SYN | ACK => Class::SynAck,
                f if f & RST != 0 => Class::Rst,
                f if f & ACK != 0 => Class::Ack,
                _ => Class::TcpOther,
            }),
            PacketRecord::PROTO_UDP => Some(Class::Udp),
            PacketRecord::PROTO_ICMP | PacketRecord::PROTO_ICMPV6 => Some(Class::Icmp),
            _ => None,
        }
    }

    /// The counter of this class's packets from peers the victim has no connection with,
    /// for the classes that real connections carry too (ACKs, RSTs).
    fn strangers_cell(self) -> Option<usize> {
        match self {
            Class::Ack => Some(cell::ACKS_FROM_STRANGERS),
            Class::Rst => Some(cell::RSTS_FROM_STRANGERS),
            _ => None,
        }
    }

    fn kinds(self) -> &'static [AttackKind] {
        match self {
            Class::Syn => &[AttackKind::SynFlood],
            Class::SynAck => &[AttackKind::SynAckFlood],
            Class::Udp => &[AttackKind::UdpFlood, AttackKind::Amplification],
            Class::Icmp => &[AttackKind::IcmpFlood],
            Class::Frag => &[AttackKind::FragmentFlood],
            Class::Ack => &[AttackKind::AckFlood],
            Class::Rst => &[AttackKind::RstFlood],
            Class::TcpOther => &[AttackKind::TcpFlood],
        }
    }
}

/// The sides of a packet an analyzer handles. A single analyzer handles both. With
/// `--threads`, victims are spread over shards by address: a packet is counted as traffic
/// toward its destination by the destination's shard, and as something its source sent
/// (answers, SYNs, echo requests, established segments: the evidence that a victim talks
/// back) by the source's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Roles {
    pub toward_dst: bool,
    pub from_src: bool,
    /// The same two for the prefixes of the destination and the source, when the packet is
    /// in the carpet sample (see `carpet`): with `--threads`, a prefix's shard is its own.
    pub toward_dst_prefix: bool,
    pub from_src_prefix: bool,
}

impl Roles {
    pub const ALL: Roles = Roles { toward_dst: true, from_src: true, toward_dst_prefix: true, from_src_prefix: true };
    pub const NONE: Roles =
        Roles { toward_dst: false, from_src: false, toward_dst_prefix: false, from_src_prefix: false };

    /// Whether the source's side of `p` counts for anything: what `process_as` and
    /// `tcp_bookkeeping` do with `from_src` (SYN-ACKs, SYNs and RSTs it sent, its established
    /// segments, echo requests).
    #[inline]
    pub fn source_side_matters(p: &PacketRecord) -> bool {
        p.l4.has_ports()
            && match (p.protocol, p.icmp_type) {
                // SYNs and answers it sent, and its established segments (its users).
                (PacketRecord::PROTO_TCP, _) => {
                    p.tcp_flags & (PacketRecord::TCP_SYN | PacketRecord::TCP_RST | PacketRecord::TCP_ACK) != 0
                }
                (PacketRecord::PROTO_ICMP, ICMP_ECHO_REQUEST) | (PacketRecord::PROTO_ICMPV6, ICMPV6_ECHO_REQUEST) => {
                    true
                }
                _ => false,
            }
    }
}

/// Counters of what the analyzer had to skip or could not track.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AnalyzerStats {
    pub packets: u64,
    pub allowlisted_packets: u64,
    /// Packets whose destination found no room in the victim table (bucket full of watched victims).
    pub victim_table_full: u64,
    /// Times a victim crossed its watch level while every watch was in use.
    pub watch_pool_exhausted: u64,
    /// Attacks that started without source tracking: every tracker was busy with attacks.
    pub tracker_pool_exhausted: u64,
    pub attacks_started: u64,
    /// Times packet time stepped back by more than 2 s and analysis restarted.
    pub timeline_restarts: u64,
    /// Attacks not reported: a victim answering its attacker (see `filter`).
    pub echoes_dropped: u64,
    /// Attacks on prefixes not reported: an attack on one of their hosts covered them.
    pub carpets_covered: u64,
}

impl AnalyzerStats {
    /// The counters of several shards as one. Every shard sees every step back in time, so
    /// restarts are counted once.
    pub fn merge(shards: impl IntoIterator<Item = AnalyzerStats>) -> AnalyzerStats {
        shards.into_iter().fold(AnalyzerStats::default(), |a, b| AnalyzerStats {
            packets: a.packets + b.packets,
            allowlisted_packets: a.allowlisted_packets + b.allowlisted_packets,
            victim_table_full: a.victim_table_full + b.victim_table_full,
            watch_pool_exhausted: a.watch_pool_exhausted + b.watch_pool_exhausted,
            tracker_pool_exhausted: a.tracker_pool_exhausted + b.tracker_pool_exhausted,
            attacks_started: a.attacks_started + b.attacks_started,
            timeline_restarts: a.timeline_restarts.max(b.timeline_restarts),
            echoes_dropped: a.echoes_dropped + b.echoes_dropped,
            carpets_covered: a.carpets_covered + b.carpets_covered,
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WatchState {
    /// Above the watch level: sources are being tracked.
    Watching,
    /// Above the threshold but the decision said no (e.g. handshakes complete); re-checked each tick.
    Declined,
    Active,
}

struct Attack {
    id: String,
    kind: AttackKind,
    started_at_ns: i64,
    threshold_pps: u32,
    peak_pps: u64,
    reason: String,
    service: Option<u8>,
    /// Tick at which the rate fell below half the threshold, and the time of the attack's
    /// last packet before that: the attack's end, should the quiet last.
    quiet_since: Option<(i64, i64)>,
    last_update_tick: i64,
}

/// Attention paid to one class of traffic toward one victim.
struct Watch {
    slot: usize,
    victim: IpKey,
    class: Class,
    state: WatchState,
    tracker: Option<AttackTracker>,
    /// Packets and bytes since the watch began, including the back-filled window.
    packets: u64,
    bytes: u64,
    /// The sampling rate of the latest record counted: 1 for captured packets (see
    /// [`PacketRecord::sampling_rate`]).
    sampling: u32,
    /// Where the latest record counted came from.
    origin: Origin,
    /// The latest record counted came from a flow record, not a packet.
    from_flows: bool,
    /// Packets of the victim's users among `packets`, no part of a flood: one SYN per
    /// handshake completed with the victim (a SYN watch), the ACKs of peers it talks with (an
    /// ACK or RST watch).
    user_packets: u64,
    /// Tick since which the tracker records (back-filled with the window before it).
    tracker_since: i64,
    /// Time of the latest packet counted.
    last_ts: i64,
    /// Time of the earliest packet counted (back-filled ones included).
    first_ts: i64,
    calm_since: Option<i64>,
    attack: Option<Attack>,
    /// Hosts the watched traffic reached, when the victim is a prefix.
    hosts: Hosts,
    /// The sensors whose summaries showed its traffic (an aggregator's watch).
    sensors: Vec<String>,
}

impl Watch {
    /// Traffic counted toward the watched class, up to `ts`.
    #[inline]
    fn counted(&mut self, packets: u64, bytes: u64, ts: i64) {
        self.packets += packets;
        self.bytes = self.bytes.saturating_add(bytes);
        self.last_ts = ts;
    }
}

pub struct Analyzer {
    s: DetectionSettings,
    /// Index 0: global thresholds; i + 1: `s.prefixes[i]`.
    policies: Vec<KindThresholds>,
    window_secs: f64,
    /// Baseline learning rate per tick.
    alpha: f32,
    hasher: KeyedHasher,
    services: ServiceTable,
    doorkeeper: Doorkeeper,
    /// Admission of ACK counting: ACKs are most of any TCP host's traffic, so a victim counts
    /// them only once they alone earn it (see [`Analyzer::ack_gate`]).
    ack_doorkeeper: Doorkeeper,
    /// One bit per [`ack_filter_bit`] of each victim that counts ACKs (stale bits are cleared
    /// every minute of packet time): most ACKs are turned away without a victim lookup.
    ack_filter: Box<[u64; ACK_FILTER_WORDS]>,
    /// The victims the last counted packets went to, and their slots, by [`hot_index`] (see
    /// `count_packet`).
    last_victim: [(IpKey, usize); 8],
    victims: VictimTable,
    watches: Vec<Option<Watch>>,
    free_watches: Vec<u16>,
    /// Watches in use, in the order they began (deterministic iteration).
    live: Vec<u16>,
    spare_trackers: Vec<AttackTracker>,
    trackers_made: usize,
    handshakes: HandshakeTable,
    acquaintances: Acquaintances,
    /// One bit per [`watch_bit`] of each victim watched for a TCP flood: whether a segment
    /// from a host may be worth noting in `acquaintances`, without a victim lookup.
    tcp_watched: u64,
    recent: RecentPackets,
    now_tick: Option<i64>,
    /// Latest packet time seen: event times never go backwards.
    last_ts: i64,
    /// Drops the alerts of echoes; `None` in a shard, whose alerts are checked after merging.
    echoes: Option<AlertFilter>,
    /// Victims are the prefixes of this scope (the nested carpet analyzer), not hosts.
    scope: Option<PrefixScope>,
    /// Packets each packet counts for: [`carpet::SAMPLING`] in the carpet analyzer, else 1.
    weight: u32,
    /// A sensor publishing summaries (or its carpet analyzer): victims are admitted and
    /// watched [`SENSOR_REACH`] times lower, prefixes tracked from their watch's start.
    sensor: bool,
    /// The carpet analyzer, fed the sampled flows; `None` in itself or when turned off.
    carpets: Option<Box<Analyzer>>,
    /// The carpet analyzer's hosts' thresholds, per policy (empty in the hosts' analyzer).
    host_policies: Vec<KindThresholds>,
    /// The classes counted toward victims, a bit each: all for hosts; for prefixes, all but
    /// ACKs and RSTs, whose floods are told from a host's own connections (and ACKs, most of
    /// any traffic, would double the carpet analyzer's cost).
    classes: u16,
    /// Where the records being processed come from (see [`Analyzer::set_origin`]).
    origin: Origin,
    /// The summaries of completed seconds, when this analyzer is a sensor's (see
    /// [`Analyzer::summarize_seconds`]).
    seconds: Option<SensorSeconds>,
    pub stats: AnalyzerStats,
}

/// A sensor's name and its summaries not yet taken.
struct SensorSeconds {
    sensor: String,
    ready: Vec<SecondSummary>,
}

/// Ticks in a second of packet time.
const TICKS_PER_SECOND: i64 = 1_000_000_000 / TICK_NS;

/// Table sizes of an analyzer: the hosts' one, or the carpet one, which sees a flow in
/// [`carpet::SAMPLING`] and needs less.
struct Sizes {
    victims: usize,
    trackers_up_front: usize,
    handshake_slots_log2: u32,
    acquaintance_buckets_log2: u32,
    recent: usize,
}

impl Analyzer {
    pub fn new(mut settings: DetectionSettings) -> Analyzer {
        // One key for both analyzers: a shard's lanes hold the same prefixes in each.
        let seed = *settings.hash_seed.get_or_insert_with(hash::random_seed);
        let hasher = KeyedHasher::new(Some(seed));
        let carpets = PrefixScope::new(&settings, hasher).map(|scope| {
            let sizes = Sizes {
                victims: (settings.max_victims / 16).max(64),
                trackers_up_front: 0,
                handshake_slots_log2: HANDSHAKE_SLOTS_LOG2 - 3,
                acquaintance_buckets_log2: ACQUAINTANCE_BUCKETS_LOG2 - 3,
                recent: RECENT_PACKETS / 8,
            };
            Box::new(Analyzer::build(settings.clone(), Some(scope), sizes))
        });
        let sizes = Sizes {
            victims: settings.max_victims,
            trackers_up_front: TRACKERS_UP_FRONT,
            handshake_slots_log2: HANDSHAKE_SLOTS_LOG2,
            acquaintance_buckets_log2: ACQUAINTANCE_BUCKETS_LOG2,
            recent: RECENT_PACKETS,
        };
        Analyzer { carpets, ..Analyzer::build(settings, None, sizes) }
    }

    fn build(settings: DetectionSettings, scope: Option<PrefixScope>, sizes: Sizes) -> Analyzer {
        let hasher = KeyedHasher::new(settings.hash_seed);
        let policies = policies(&settings, scope.is_some());
        let host_policies = if scope.is_some() { self::policies(&settings, false) } else { Vec::new() };
        let weight = if scope.is_some() { carpet::SAMPLING } else { 1 };
        let max_watches = (settings.max_trackers * WATCHES_PER_TRACKER).min(NO_WATCH as usize);
        Analyzer {
            window_secs: settings.window_secs(),
            alpha: (1.0 / (settings.baseline_tau_s as f64 * TICKS_PER_SEC)) as f32,
            doorkeeper: Doorkeeper::new(admit_per_tick(&policies) / weight),
            ack_doorkeeper: Doorkeeper::new(ack_admit_per_tick(&policies) / weight),
            sensor: false,
            ack_filter: Box::new([0; ACK_FILTER_WORDS]),
            last_victim: [(IpKey::default(), usize::MAX); 8],
            victims: VictimTable::new(sizes.victims, settings.window_ticks, hasher),
            watches: (0..max_watches).map(|_| None).collect(),
            free_watches: (0..max_watches as u16).rev().collect(),
            live: Vec::with_capacity(max_watches),
            // The first trackers are made up front: watches on a busy server's classes (SYNs,
            // ACKs, RSTs) then start without allocating, and untouched pages cost nothing.
            spare_trackers: {
                let mut spares = Vec::with_capacity(settings.max_trackers);
                let made = settings.max_trackers.min(sizes.trackers_up_front);
                spares.extend((0..made).map(|_| AttackTracker::new(settings.tracked_sources, hasher)));
                spares
            },
            trackers_made: settings.max_trackers.min(sizes.trackers_up_front),
            handshakes: HandshakeTable::new(sizes.handshake_slots_log2),
            acquaintances: Acquaintances::new(sizes.acquaintance_buckets_log2),
            tcp_watched: 0,
            recent: RecentPackets::new(sizes.recent),
            services: ServiceTable::new(),
            policies,
            hasher,
            s: settings,
            now_tick: None,
            last_ts: i64::MIN,
            echoes: Some(AlertFilter::default()),
            scope,
            weight,
            carpets: None,
            classes: if weight > 1 { CARPET_CLASSES } else { u16::MAX },
            host_policies,
            origin: Origin::Captured,
            seconds: None,
            stats: AnalyzerStats::default(),
        }
    }

    /// Summarizes each second of packet time once it is complete, as sensor `sensor`, for
    /// [`take_summaries`](Self::take_summaries) (see [`summary`]). The summary reads the
    /// second's ticks from the victims' windows: the window must hold a second.
    pub fn summarize_seconds(&mut self, sensor: &str) -> Result<(), String> {
        Self::check_summaries(&self.s, sensor)?;
        self.seconds = Some(SensorSeconds { sensor: sensor.to_string(), ready: Vec::new() });
        self.become_sensor();
        Ok(())
    }

    /// Admits and watches [`SENSOR_REACH`] times lower, and so does its carpet analyzer.
    fn become_sensor(&mut self) {
        self.sensor = true;
        self.set_admission();
        if let Some(c) = self.carpets.as_deref_mut() {
            c.become_sensor();
        }
    }

    /// Summaries of each completed second for this analyzer's own outputs (the timeline),
    /// named by no sensor unless [`summarize_seconds`](Self::summarize_seconds) names one:
    /// detection is unchanged.
    pub fn record_seconds(&mut self) -> Result<(), String> {
        Self::check_window(&self.s)?;
        if self.seconds.is_none() {
            self.seconds = Some(SensorSeconds { sensor: String::new(), ready: Vec::new() });
        }
        Ok(())
    }

    /// Why an analyzer with `settings` cannot summarize its seconds, if it cannot.
    pub fn check_window(settings: &DetectionSettings) -> Result<(), String> {
        if i64::from(settings.window_ticks) < TICKS_PER_SECOND {
            return Err(format!(
                "summaries need a window of at least 1s (detection.window is {} ms)",
                settings.window_ticks * 100
            ));
        }
        Ok(())
    }

    /// Why an analyzer with `settings` cannot summarize its seconds as `sensor`, if it cannot.
    pub fn check_summaries(settings: &DetectionSettings, sensor: &str) -> Result<(), String> {
        Self::check_window(settings)?;
        if sensor.is_empty() || sensor.len() > summary::MAX_SENSOR_NAME {
            return Err(format!("a sensor name has 1 to {} bytes", summary::MAX_SENSOR_NAME));
        }
        Ok(())
    }

    /// How many times lower than a lone analyzer's its victims are admitted and watched.
    fn reach(&self) -> u32 {
        if self.sensor {
            SENSOR_REACH
        } else {
            1
        }
    }

    fn set_admission(&mut self) {
        let divisor = self.weight * self.reach();
        self.doorkeeper.set_admit_per_tick(admit_per_tick(&self.policies) / divisor);
        self.ack_doorkeeper.set_admit_per_tick(ack_admit_per_tick(&self.policies) / divisor);
    }

    /// What summaries say of this analyzer's hash key (a keyed hash of a fixed value):
    /// sketches of sources merge only between analyzers that agree on it.
    pub fn summary_hash_key(&self) -> u64 {
        self.hasher.hash_u128(0)
    }

    /// The summaries of the seconds completed since the last call, oldest first.
    pub fn take_summaries(&mut self) -> Vec<SecondSummary> {
        self.seconds.as_mut().map(|s| std::mem::take(&mut s.ready)).unwrap_or_default()
    }

    /// Adds the summary of `second` to the ready ones: the busiest victims' counters of its
    /// ticks and the trackers of their watches, and the same of the carpet analyzer's
    /// prefixes.
    fn summarize(&mut self, second: i64) {
        let victims = self.second_victims(second);
        let prefixes = self.carpets.as_ref().map(|c| c.second_victims(second)).unwrap_or_default();
        let hash_key = self.summary_hash_key();
        if let Some(s) = self.seconds.as_mut() {
            let summary = SecondSummary {
                version: summary::SUMMARY_VERSION,
                sensor: s.sensor.clone(),
                second,
                hash_key,
                victims,
                victims_left_out: 0,
                prefixes,
                prefixes_left_out: 0,
            };
            s.ready.extend(SecondSummary::join(vec![summary]));
        }
    }

    /// Every victim's counters of the ticks of `second` and the trackers of its watches
    /// (users left out of a SYN flood's sources), those with neither left out.
    fn second_victims(&self, second: i64) -> Vec<VictimSecond> {
        let ticks = second * TICKS_PER_SECOND..(second + 1) * TICKS_PER_SECOND;
        let mut victims = Vec::new();
        for (slot, meta) in self.victims.meta.iter().enumerate() {
            if !meta.occupied || meta.ignored {
                continue;
            }
            let mut cells = [0u64; cell::COUNT];
            self.victims.ticks_total(slot, ticks.clone(), &mut cells);
            let watches: Vec<ClassWatch> = Class::ALL
                .iter()
                .filter_map(|&c| {
                    let watch = self.watches.get(meta.watch[c as usize] as usize)?.as_ref()?;
                    let syn = c == Class::Syn;
                    let tracker =
                        watch.tracker.as_ref()?.summary(|src, syns| !(syn && self.is_user(meta.key, src, syns)));
                    Some(ClassWatch { class: c as u8, attacked: watch.state == WatchState::Active, tracker })
                })
                .collect();
            if watches.is_empty() && cells[..Class::COUNT].iter().all(|n| *n == 0) {
                continue;
            }
            let cells = cells.iter().enumerate().filter(|(_, n)| **n > 0).map(|(i, n)| (i as u8, *n)).collect();
            victims.push(VictimSecond { victim: meta.key, cells, watches });
        }
        victims
    }

    /// The analyzer of one shard: its alerts are checked for echoes once merged.
    pub(crate) fn for_shard(settings: DetectionSettings) -> Analyzer {
        Analyzer { echoes: None, ..Analyzer::new(settings) }
    }

    /// The victim an address counts toward: itself, or its prefix in the carpet analyzer.
    #[inline(always)]
    fn victim_of(&self, ip: IpKey) -> IpKey {
        match &self.scope {
            None => ip,
            Some(scope) => scope.network_of(ip),
        }
    }

    /// Whether the carpet analyzer has no use for `p`: a segment of an established TCP
    /// connection (an ACK without SYN or RST: most of any traffic) while no prefix is watched
    /// for a TCP flood. It counts no ACKs, and needs them as handshake completions and as a
    /// host's talk with its peers only for a TCP watch.
    #[inline]
    fn ignores(&self, p: &PacketRecord) -> bool {
        const SYN_ACK_RST: u8 = PacketRecord::TCP_SYN | PacketRecord::TCP_ACK | PacketRecord::TCP_RST;
        self.tcp_watched == 0
            && p.protocol == PacketRecord::PROTO_TCP
            && p.l4.has_ports()
            && p.tcp_flags & SYN_ACK_RST == PacketRecord::TCP_ACK
            && p.fragment == Fragment::Whole
    }

    /// The counters of this analyzer and its carpet analyzer as one.
    pub fn stats(&self) -> AnalyzerStats {
        let mut stats = self.stats;
        if let Some(c) = &self.carpets {
            stats.victim_table_full += c.stats.victim_table_full;
            stats.watch_pool_exhausted += c.stats.watch_pool_exhausted;
            stats.tracker_pool_exhausted += c.stats.tracker_pool_exhausted;
            stats.attacks_started += c.stats.attacks_started;
        }
        stats
    }

    /// The carpet analyzer's part of one packet: the sampled flows are counted toward their
    /// prefixes. (Its clock follows the hosts' one at every tick: see `step_clock`.)
    #[inline]
    fn count_toward_prefixes(&mut self, p: &PacketRecord, roles: Roles, out: &mut Vec<AttackEvent>) {
        let Some(scope) = &self.scope else {
            return;
        };
        if !(roles.toward_dst_prefix || roles.from_src_prefix) || self.ignores(p) || !scope.sampled(p) {
            return;
        }
        // Allowlisted destinations count toward no prefix either.
        let toward = roles.toward_dst_prefix && !self.s.allow_destinations.iter().any(|a| a.contains(p.dst));
        let roles = Roles { toward_dst: toward, from_src: roles.from_src_prefix, ..Roles::NONE };
        self.count_packet(p, roles, out);
    }

    /// Puts the alerts of one step (`out[from..]`) in the one order and drops those of echoes.
    /// A shard does neither: the merged alerts of all shards are, in the same way.
    #[cold]
    fn drop_echoes(&mut self, out: &mut Vec<AttackEvent>, from: usize) {
        if let Some(f) = self.echoes.as_mut() {
            if let Some(step) = out.get_mut(from..) {
                filter::in_canonical_order(step);
            }
            f.filter(out, from);
            self.stats.echoes_dropped = f.dropped;
            self.stats.carpets_covered = f.covered;
        }
    }

    pub fn settings(&self) -> &DetectionSettings {
        &self.s
    }

    /// Applies new settings without losing windows, baselines or attacks in progress.
    /// Settings that size memory (window, limits) or key the hashes cannot change in place:
    /// they keep their current values, and the returned notes say so.
    pub fn reload(&mut self, mut settings: DetectionSettings) -> Vec<String> {
        let mut kept = Vec::new();
        let old = &self.s;
        if settings.window_ticks != old.window_ticks {
            kept.push(format!("detection.window stays {} ms until restart", old.window_ticks * 100));
            settings.window_ticks = old.window_ticks;
        }
        if (settings.max_victims, settings.max_trackers, settings.tracked_sources)
            != (old.max_victims, old.max_trackers, old.tracked_sources)
        {
            kept.push("[limits] stay as they were until restart".to_string());
            (settings.max_victims, settings.max_trackers, settings.tracked_sources) =
                (old.max_victims, old.max_trackers, old.tracked_sources);
        }
        settings.hash_seed = old.hash_seed;
        if let Some(c) = self.carpets.as_deref_mut() {
            c.reload(settings.clone());
        }
        self.policies = policies(&settings, self.scope.is_some());
        if self.scope.is_some() {
            self.host_policies = policies(&settings, false);
        }
        self.set_admission();
        self.alpha = (1.0 / (settings.baseline_tau_s as f64 * TICKS_PER_SEC)) as f32;
        self.s = settings;
        for slot in 0..self.victims.meta.len() {
            if self.victims.meta[slot].occupied {
                self.init_victim(slot);
            }
        }
        kept
    }

    /// Attacks in progress (echoes, whose alerts are dropped, not included).
    pub fn active_attacks(&self) -> usize {
        let carpets = self.carpets.as_ref().map_or(0, |c| c.active_attacks());
        let all = carpets + self.live.iter().filter(|&&w| self.watch(w).attack.is_some()).count();
        all.saturating_sub(self.echoes.as_ref().map_or(0, |f| f.suppressed()))
    }

    fn watch(&self, w: u16) -> &Watch {
        self.watches[w as usize].as_ref().expect("live watch ids point at watches")
    }

    fn watch_mut(&mut self, w: u16) -> &mut Watch {
        self.watches[w as usize].as_mut().expect("live watch ids point at watches")
    }

    /// The records processed from now on come from `origin`: an attack counted from a flow
    /// telemetry exporter's records names it in its alerts.
    pub fn set_origin(&mut self, origin: Origin) {
        self.origin = origin;
        if let Some(carpets) = self.carpets.as_mut() {
            carpets.set_origin(origin);
        }
    }

    /// Feeds one packet. Events it causes (and any from ticks it moves past) go to `out`.
    #[inline]
    pub fn process(&mut self, p: &PacketRecord, out: &mut Vec<AttackEvent>) {
        self.process_as(p, Roles::ALL, out)
    }

    /// One packet, in the given roles (see [`Roles`]; a single analyzer plays both).
    #[inline]
    pub fn process_as(&mut self, p: &PacketRecord, roles: Roles, out: &mut Vec<AttackEvent>) {
        let before = out.len();
        self.count_packet(p, roles, out);
        if out.len() > before {
            self.drop_echoes(out, before);
        }
    }

    #[inline]
    fn count_packet(&mut self, p: &PacketRecord, roles: Roles, out: &mut Vec<AttackEvent>) {
        if roles.toward_dst {
            self.stats.packets += 1;
        }
        if let Some(c) = self.carpets.as_deref_mut() {
            c.count_toward_prefixes(p, roles, out);
        }
        let now = self.move_clock(p.ts_ns, out);
        let ts = p.ts_ns.max(self.last_ts);
        self.last_ts = ts;
        if !self.s.allow_sources.is_empty() && self.s.allow_sources.iter().any(|a| a.contains(p.src)) {
            self.stats.allowlisted_packets += roles.toward_dst as u64;
            return;
        }
        if p.l4.has_ports() {
            match (p.protocol, p.icmp_type) {
                (PacketRecord::PROTO_TCP, _) => self.tcp_bookkeeping(p, now, roles),
                (PacketRecord::PROTO_ICMP, ICMP_ECHO_REQUEST) | (PacketRecord::PROTO_ICMPV6, ICMPV6_ECHO_REQUEST)
                    if roles.from_src =>
                {
                    self.count_on_known(p, cell::ECHO_REQUESTS_SENT, now)
                }
                _ => {}
            }
        }
        if !roles.toward_dst {
            return;
        }
        let class = Class::of(p).filter(|c| self.classes & (1 << *c as u8) != 0);
        let fragment = p.fragment != Fragment::Whole;
        if class.is_none() && !fragment {
            return;
        }
        let victim = self.victim_of(p.dst);
        let gated = class == Some(Class::Ack) && !fragment;
        let hot = hot_index(victim);
        let slot = match self.last_victim[hot] {
            // A flood sends packet after packet to one victim: the slot of the last packet's,
            // while it still holds it, spares the hash and the bucket's scan.
            (key, slot) if key == victim && !gated && self.victims.holds(slot, victim) => slot,
            _ => {
                let hash = self.hasher.hash_ip(victim);
                if gated && !self.ack_gate(p, victim, hash, now) {
                    return;
                }
                let slot = match self.victims.find_hashed(victim, hash) {
                    Some(s) => s,
                    None => match self.doorkeeper.admit(hash, now, u32::from(p.weight)) {
                        None => {
                            self.recent.push(p);
                            return;
                        }
                        Some(counted) => {
                            let Some(s) = self.insert_victim(victim, hash, now) else {
                                return;
                            };
                            self.count_before_admission(s, counted.saturating_sub(u32::from(p.weight)), p);
                            s
                        }
                    },
                };
                self.last_victim[hot] = (victim, slot);
                slot
            }
        };
        if self.victims.meta[slot].ignored {
            self.stats.allowlisted_packets += 1;
            return;
        }
        self.touch(slot, now);
        if let Some(c) = class {
            if is_echo_reply(p) {
                self.victims.add(slot, cell::ECHO_REPLIES, self.packets_of(p));
            }
            self.count(slot, c, p, ts, out);
        }
        if fragment {
            self.count(slot, Class::Frag, p, ts, out);
        }
        // A packet every class of which its victim's trackers recorded is no watch's back-fill
        // any more: only the other packets go to the ring (during a flood, most of them).
        if !self.recorded_by_trackers(slot, class, fragment) {
            self.recent.push(p);
        }
    }

    /// Whether victim `slot` has a watch with a tracker for `class` (if any) and, for a
    /// fragment, for fragments.
    #[inline]
    fn recorded_by_trackers(&self, slot: usize, class: Option<Class>, fragment: bool) -> bool {
        let tracked = |c: Class| {
            let w = self.victims.meta[slot].watch[c as usize];
            w != NO_WATCH && self.watches[w as usize].as_ref().is_some_and(|watch| watch.tracker.is_some())
        };
        class.is_none_or(tracked) && (!fragment || tracked(Class::Frag))
    }

    /// Moves packet time forward without a packet (live capture on a quiet link).
    /// Sharded analysis: aligns this shard with the whole stream before its next step.
    /// `stream_last_ts` is the latest packet time of the stream so far (event times never go
    /// backwards); `tick_ts`, the time of a packet that moved the stream's clock to another
    /// tick, moves this shard's clock as it moved the stream's, so attacks tick, update and end
    /// at the same packets whether or not this shard saw one.
    pub fn sync(&mut self, tick_ts: Option<i64>, stream_last_ts: i64, out: &mut Vec<AttackEvent>) {
        // The carpet analyzer's clock moves with this one's (see `step_clock`).
        if let Some(c) = self.carpets.as_deref_mut() {
            c.last_ts = c.last_ts.max(stream_last_ts);
        }
        self.last_ts = self.last_ts.max(stream_last_ts);
        if let (Some(ts), Some(_)) = (tick_ts, self.now_tick) {
            self.move_clock(ts, out);
        }
    }

    pub fn advance_to(&mut self, ts_ns: i64, out: &mut Vec<AttackEvent>) {
        if self.now_tick.is_some() {
            let before = out.len();
            if let Some(c) = self.carpets.as_deref_mut() {
                c.advance_to(ts_ns, out);
            }
            self.move_clock(ts_ns, out);
            self.last_ts = self.last_ts.max(ts_ns);
            self.drop_echoes(out, before);
        }
    }

    /// Ends every attack in progress (end of input or shutdown).
    pub fn finish(&mut self, reason: EndReason, out: &mut Vec<AttackEvent>) {
        // The last second, as far as it went.
        if let (Some(now), Some(_)) = (self.now_tick, self.seconds.as_ref()) {
            self.summarize(now.div_euclid(TICKS_PER_SECOND));
        }
        let before = out.len();
        if let Some(c) = self.carpets.as_deref_mut() {
            // It saw the sampled packets only: its attacks end at the stream's last one.
            c.sync(None, self.last_ts, out);
            c.finish(reason, out);
        }
        self.end_all(reason, out);
        self.drop_echoes(out, before);
    }

    fn end_all(&mut self, reason: EndReason, out: &mut Vec<AttackEvent>) {
        let ts = self.last_ts;
        while let Some(&w) = self.live.last() {
            let watch = self.watch(w);
            if let Some(a) = watch.attack.as_ref() {
                let ended_at = a.quiet_since.map(|(_, last)| last).unwrap_or(watch.last_ts);
                self.end_attack(w, reason, ended_at.min(ts), ts, out);
            } else {
                self.release_watch(w);
            }
        }
    }

    /// The current tick, advancing (and evaluating) up to the tick of `ts_ns` if later.
    #[inline]
    fn move_clock(&mut self, ts_ns: i64, out: &mut Vec<AttackEvent>) -> i64 {
        let tick = ts_ns.div_euclid(TICK_NS);
        // Nearly every packet falls in the current tick.
        match self.now_tick {
            Some(now) if now == tick => now,
            _ => self.step_clock(tick, out),
        }
    }

    /// [`move_clock`](Self::move_clock) off its fast path: a new tick, or a late packet.
    #[inline(never)]
    fn step_clock(&mut self, tick: i64, out: &mut Vec<AttackEvent>) -> i64 {
        if let Some(c) = self.carpets.as_deref_mut() {
            c.sync(Some(tick_time(tick)), self.last_ts, out);
        }
        let Some(mut now) = self.now_tick else {
            self.now_tick = Some(tick);
            return tick;
        };
        if tick < now - RESTART_AFTER_STEP_BACK_TICKS {
            self.restart_timeline(tick, out);
            return tick;
        }
        if tick.div_euclid(ACK_FILTER_REBUILD_TICKS) != now.div_euclid(ACK_FILTER_REBUILD_TICKS) {
            self.rebuild_ack_filter();
        }
        // The second of `now` is complete (the seconds between, if any, saw no packet).
        if self.seconds.is_some() && tick.div_euclid(TICKS_PER_SECOND) > now.div_euclid(TICKS_PER_SECOND) {
            self.summarize(now.div_euclid(TICKS_PER_SECOND));
        }
        // Late packets (timestamps stepping back a little) count in the current tick.
        while now < tick {
            if self.live.is_empty() {
                // Nothing needs per-tick attention: victims catch up lazily, so jump.
                now = tick;
                break;
            }
            now += 1;
            self.now_tick = Some(now);
            self.on_tick(now, out);
        }
        self.now_tick = Some(now);
        now
    }

    /// Time went back further than any reordering explains (the next of several capture
    /// files overlaps in time, or a clock was reset): end what is in progress and start a
    /// new timeline. Victims from the old one are reset lazily when next touched.
    fn restart_timeline(&mut self, tick: i64, out: &mut Vec<AttackEvent>) {
        self.end_all(EndReason::EndOfInput, out);
        self.now_tick = Some(tick);
        self.last_ts = i64::MIN;
        self.stats.timeline_restarts += 1;
    }

    fn tcp_bookkeeping(&mut self, p: &PacketRecord, now: i64, roles: Roles) {
        const SYN: u8 = PacketRecord::TCP_SYN;
        const ACK: u8 = PacketRecord::TCP_ACK;
        const RST: u8 = PacketRecord::TCP_RST;
        const FIN: u8 = PacketRecord::TCP_FIN;
        let flags = p.tcp_flags & (SYN | ACK | RST | FIN);
        // What the source sent (answers, its own SYNs, its established segments) belongs to
        // the source's shard; the ACK that completes a handshake toward the destination to
        // the destination's.
        if flags & (SYN | RST) == 0 {
            // A prefix's completions are looked up only while it is watched for a TCP flood:
            // ACKs are most of any traffic, and its SYN verdict needs them only then.
            if flags == ACK
                && roles.toward_dst
                && (self.scope.is_none() || self.tcp_watched & watch_bit(self.victim_of(p.dst)) != 0)
            {
                let ports = ((p.dst_port as u32) << 16) | p.src_port as u32;
                let h = self.hasher.hash_handshake(self.victim_of(p.dst), p.src, ports, p.tcp_ack);
                if self.handshakes.complete(h) {
                    self.count_completion(p, now);
                }
            }
            if flags & ACK != 0 && roles.from_src && self.tcp_watched & watch_bit(self.victim_of(p.src)) != 0 {
                self.note_talking(p);
            }
            return;
        }
        if !roles.from_src {
            return;
        }
        if flags & (SYN | ACK) == SYN | ACK {
            self.count_on_known(p, cell::ANSWERS, now);
            let ports = ((p.src_port as u32) << 16) | p.dst_port as u32;
            let h = self.hasher.hash_handshake(self.victim_of(p.src), p.dst, ports, p.tcp_seq.wrapping_add(1));
            self.handshakes.expect(h);
        } else if flags & SYN != 0 {
            self.count_on_known(p, cell::SYNS_SENT, now);
        } else if flags & RST != 0 {
            self.count_on_known(p, cell::ANSWERS, now);
        }
    }

    /// Whether an ACK toward `p.dst` is counted: its victim counts ACKs, or the ACK doorkeeper
    /// has just admitted it. The ACKs of other destinations go no further (not even to the
    /// back-fill ring: at admission, the doorkeeper's count of the tick's earlier ACKs is
    /// credited instead).
    #[inline]
    fn ack_gate(&mut self, p: &PacketRecord, victim: IpKey, hash: u64, now: i64) -> bool {
        let (word, bit) = ack_filter_bit(hash);
        if self.ack_filter[word] & bit != 0 {
            if let Some(slot) = self.victims.find_hashed(victim, hash) {
                if self.victims.meta[slot].counts_acks {
                    return true;
                }
            }
        }
        match self.ack_doorkeeper.admit(hash, now, u32::from(p.weight)) {
            None => false,
            Some(counted) => {
                self.start_counting_acks(p, victim, hash, now, counted.saturating_sub(u32::from(p.weight)))
            }
        }
    }

    /// The ACK doorkeeper admitted `victim` (`p`'s) after `before` earlier ACKs in this tick: from now
    /// on its ACKs are counted, those earlier ones included.
    #[cold]
    fn start_counting_acks(&mut self, p: &PacketRecord, victim: IpKey, hash: u64, now: i64, before: u32) -> bool {
        let Some(slot) = self.victims.find_hashed(victim, hash).or_else(|| self.insert_victim(victim, hash, now))
        else {
            return false;
        };
        let before = before.saturating_mul(self.weight);
        self.touch(slot, now);
        self.victims.meta[slot].counts_acks = true;
        let (word, bit) = ack_filter_bit(hash);
        self.ack_filter[word] |= bit;
        let ci = Class::Ack as usize;
        self.victims.add_class(slot, ci, before, before.saturating_mul(p.wire_len));
        true
    }

    /// A new victim entry for `dst` (keyed hash `hash`), or `None` counted as a full table.
    fn insert_victim(&mut self, dst: IpKey, hash: u64, now: i64) -> Option<usize> {
        let slot = self.victims.insert_hashed(dst, hash, now);
        match slot {
            Some(s) => self.init_victim(s),
            None => self.stats.victim_table_full += 1,
        }
        slot
    }

    /// Clears the filter bits of victims that no longer count ACKs (evicted since).
    fn rebuild_ack_filter(&mut self) {
        self.ack_filter.fill(0);
        for m in self.victims.meta.iter().filter(|m| m.occupied && m.counts_acks) {
            let (word, bit) = ack_filter_bit(self.hasher.hash_ip(m.key));
            self.ack_filter[word] |= bit;
        }
    }

    /// A destination just admitted to the victim table (slot `slot`) by `p` had `before`
    /// packets counted toward it by the doorkeeper in this tick: counts them into its window,
    /// so that a burst of exactly a threshold's worth is flagged. Their classes are read from
    /// the newest records of the tick in the recent ring; those not among the newest
    /// [`ADMISSION_SEARCH_RECORDS`] (a destination reached slowly, on a busy link) are taken to
    /// be of `p`'s class. Earlier ticks of the window, each under the admission level, are not
    /// counted (at most `admit_per_tick - 1` packets each).
    #[cold]
    fn count_before_admission(&mut self, slot: usize, before: u32, p: &PacketRecord) {
        let victim = self.victims.meta[slot].key;
        let tick_start = tick_time(self.now_tick.unwrap_or(0));
        // Packets, as the doorkeeper counted them: a record stands for `weight` of them.
        let mut found = 0u32;
        let mut counts = [(0u32, 0u32); Class::COUNT];
        // Byte counts saturate: `wire_len` comes from the capture file.
        let mut count = |r: &PacketRecord, packets: u32| {
            // ACKs are counted only from their own admission on (see `ack_gate`).
            let class = Class::of(r).into_iter().filter(|c| *c != Class::Ack);
            let fragment = (r.fragment != Fragment::Whole).then_some(Class::Frag);
            for c in class.chain(fragment) {
                counts[c as usize].0 = counts[c as usize].0.saturating_add(packets);
                counts[c as usize].1 = counts[c as usize].1.saturating_add(r.wire_len.saturating_mul(packets));
            }
        };
        for r in self.recent.newest_first().take(ADMISSION_SEARCH_RECORDS) {
            // Late packets count in the current tick: allow one tick of reordering.
            if found >= before || r.ts_ns < tick_start - TICK_NS {
                break;
            }
            if self.victim_of(r.dst) == victim {
                let packets = u32::from(r.weight).min(before - found);
                found += packets;
                count(&r, packets);
            }
        }
        if found < before {
            count(p, before - found);
        }
        for (ci, (packets, bytes)) in counts.into_iter().enumerate().filter(|(_, (packets, _))| *packets > 0) {
            self.victims.add_class(slot, ci, packets.saturating_mul(self.weight), bytes.saturating_mul(self.weight));
        }
    }

    /// A peer completed a handshake with the host `p.dst`.
    fn count_completion(&mut self, p: &PacketRecord, now: i64) {
        let victim = self.victim_of(p.dst);
        self.acquaintances.completed(self.hasher.hash_pair(victim, p.src));
        self.acquaintances.talking(self.hasher.hash_connection((victim, p.dst_port), (p.src, p.src_port)));
        let Some(slot) = self.victims.find(victim) else {
            return;
        };
        self.touch(slot, now);
        let packets = self.packets_of(p);
        self.victims.add(slot, cell::COMPLETIONS, packets);
        let w = self.victims.meta[slot].watch[Class::Syn as usize];
        if w != NO_WATCH {
            self.watch_mut(w).user_packets += u64::from(packets);
        }
    }

    /// A host that may be watched for a TCP flood (`p.src`) sent a peer a segment of an
    /// established connection: the peer is one of its users, and the connection is known.
    #[inline(never)]
    fn note_talking(&mut self, p: &PacketRecord) {
        let host = self.victim_of(p.src);
        let Some(slot) = self.victims.find(host) else {
            return;
        };
        if TCP_CLASSES.iter().any(|c| self.victims.meta[slot].watch[*c as usize] != NO_WATCH) {
            self.acquaintances.talking(self.hasher.hash_pair(host, p.dst));
            self.acquaintances.talking(self.hasher.hash_connection((host, p.src_port), (p.dst, p.dst_port)));
        }
    }

    /// Whether `p`, a segment toward its victim, belongs to a connection the victim is known
    /// to be in.
    #[inline]
    fn in_known_connection(&self, p: &PacketRecord) -> bool {
        let victim = self.victim_of(p.dst);
        self.acquaintances.lookup(self.hasher.hash_connection((victim, p.dst_port), (p.src, p.src_port))).is_some()
    }

    /// Whether the tracker of a class-`c` watch records `p`: for ACKs and RSTs only those of
    /// no known connection (a flood's), so a user's own segments name no source.
    #[inline]
    fn tracked(&self, c: Class, p: &PacketRecord) -> bool {
        c.strangers_cell().is_none() || !self.in_known_connection(p)
    }

    /// The watch bits of the victims watched for a TCP flood, after a watch began or ended.
    fn refresh_tcp_watched(&mut self) {
        self.tcp_watched = self
            .live
            .iter()
            .map(|&w| self.watch(w))
            .filter(|watch| TCP_CLASSES.contains(&watch.class))
            .fold(0, |bits, watch| bits | watch_bit(watch.victim));
    }

    /// Counts `p` toward its sender, when that is a victim already in the table (answers are
    /// interesting only for those).
    fn count_on_known(&mut self, p: &PacketRecord, counter: usize, now: i64) {
        if let Some(slot) = self.victims.find(self.victim_of(p.src)) {
            self.touch(slot, now);
            self.victims.add(slot, counter, self.packets_of(p));
        }
    }

    fn init_victim(&mut self, slot: usize) {
        let key = self.victims.meta[slot].key;
        let policy = self
            .s
            .prefixes
            .iter()
            .enumerate()
            .filter(|(_, p)| p.prefix.contains(key))
            .max_by_key(|(_, p)| p.prefix.bits())
            .map(|(i, _)| i + 1)
            .unwrap_or(0);
        let m = &mut self.victims.meta[slot];
        m.policy = policy as u16;
        m.ignored = self.s.allow_destinations.iter().any(|a| a.contains(key));
        self.refresh_levels(slot);
    }

    /// Advances a victim's window to `now`, letting baselines learn from every tick passed.
    #[inline]
    fn touch(&mut self, slot: usize, now: i64) {
        if self.victims.last_tick(slot) == now {
            return;
        }
        let watches = &self.watches;
        let alpha = self.alpha;
        let window_secs = self.window_secs as f32;
        self.victims.advance(slot, now, |meta, sums, ticks| {
            learn_baseline(meta, sums, ticks, alpha, window_secs, watches);
        });
        self.refresh_levels(slot);
    }

    #[inline]
    fn count(&mut self, slot: usize, c: Class, p: &PacketRecord, ts: i64, out: &mut Vec<AttackEvent>) {
        let ci = c as usize;
        let weight = self.packets_of(p);
        self.victims.add_class(slot, ci, weight, p.wire_len.saturating_mul(weight));
        if self.victims.sums(slot)[ci] >= self.victims.meta[slot].level[ci] as u64 {
            self.on_level(slot, c, ts, p.sampling_rate(), None, out);
        }
        let w = self.victims.meta[slot].watch[ci];
        if w != NO_WATCH {
            let mut from_user = false;
            if let Some(strangers) = c.strangers_cell() {
                from_user = self.in_known_connection(p);
                if !from_user {
                    self.victims.add(slot, strangers, weight);
                }
            }
            let services = &self.services;
            let prefix = self.scope.is_some();
            if let Some(watch) = self.watches[w as usize].as_mut() {
                let weight = weight as u64;
                watch.user_packets += from_user as u64 * weight;
                watch.counted(weight, u64::from(p.wire_len) * weight, ts);
                (watch.sampling, watch.from_flows) = (p.sampling_rate(), p.l4 == L4State::Summarized);
                watch.origin = self.origin;
                if prefix {
                    watch.hosts.add(p.dst, weight, &self.hasher);
                }
                if let Some(t) = watch.tracker.as_mut().filter(|_| !from_user) {
                    t.record(p, services, &self.s.bogons);
                }
            }
        }
    }

    /// The packets `p` counts for here: its own weight (a sampled packet stands for several)
    /// times this analyzer's (the carpet analyzer sees one flow in [`carpet::SAMPLING`]).
    #[inline]
    fn packets_of(&self, p: &PacketRecord) -> u32 {
        self.weight.saturating_mul(u32::from(p.weight))
    }

    /// Effective threshold (packets/s) of a kind for a victim: its floor, or the baseline
    /// times the factor when that is higher.
    fn threshold_pps(&self, meta: &VictimMeta, kind: AttackKind) -> f64 {
        let floor = self.policies[meta.policy as usize][kind as usize] as f64;
        let learned = meta.baseline[kind.class() as usize] as f64 * self.s.baseline_factor as f64;
        floor.max(learned)
    }

    /// Window count at which a class needs a decision: its lowest kind threshold.
    fn trigger_count(&self, meta: &VictimMeta, c: Class) -> u64 {
        let pps = c.kinds().iter().map(|k| self.threshold_pps(meta, *k)).fold(f64::INFINITY, f64::min);
        (pps * self.window_secs).ceil().max(1.0) as u64
    }

    fn refresh_levels(&mut self, slot: usize) {
        for c in Class::ALL {
            let meta = &self.victims.meta[slot];
            let trigger = self.trigger_count(meta, c);
            let w = meta.watch[c as usize];
            let level = if w == NO_WATCH {
                (trigger / (4 * u64::from(self.reach()))).max(1)
            } else {
                match self.watch(w).state {
                    WatchState::Watching => trigger,
                    WatchState::Declined | WatchState::Active => u64::MAX,
                }
            };
            self.victims.meta[slot].level[c as usize] = level.min(u32::MAX as u64) as u32;
        }
    }

    /// A class's window count reached its level: start watching, or decide. `sampling`: that
    /// of the record that reached it (counted in the window, but by the watch only after).
    /// `merged`: counted from sensors' summaries, the victim's merged second.
    fn on_level(
        &mut self,
        slot: usize,
        c: Class,
        ts: i64,
        sampling: u32,
        merged: Option<&MergedVictim>,
        out: &mut Vec<AttackEvent>,
    ) {
        let ci = c as usize;
        if self.victims.meta[slot].watch[ci] == NO_WATCH {
            // One sample (of a high sampling rate) can reach the level alone: a watch, and its
            // tracker, wait for a second one in the window.
            if sampling > 1 && self.victims.sums(slot)[ci] < 2 * u64::from(sampling) {
                return;
            }
            if !self.start_watch(slot, c, merged) {
                self.stats.watch_pool_exhausted += 1;
                // Retry when the window moves on.
                self.victims.meta[slot].level[ci] = u32::MAX;
                return;
            }
            self.refresh_levels(slot);
        }
        let w = self.victims.meta[slot].watch[ci];
        if let Some(v) = merged {
            self.note_sensors(w, v);
        }
        let trigger = self.trigger_count(&self.victims.meta[slot], c);
        if self.watch(w).state == WatchState::Watching && self.victims.sums(slot)[ci] >= trigger {
            self.decide(w, ts, sampling, out);
        }
    }

    /// `merged`: an aggregator's watch, started by the victim's merged second.
    fn start_watch(&mut self, slot: usize, c: Class, merged: Option<&MergedVictim>) -> bool {
        let Some(w) = self.free_watches.pop() else {
            return false;
        };
        // A prefix's watch takes a tracker only once it is an attack (`ensure_tracker`, from the
        // back-fill ring): a busy prefix is watched most of the time, and tracking the sources
        // of every sampled packet to it would double the cost of analysis. A sensor's does
        // from the start: the aggregator's sum of a flood no sensor calls an attack needs its
        // sources. An aggregator's watch records no packets: its tracker comes loaded from its
        // sensors' (`note_sensors`).
        let lone_prefix = self.scope.is_some() && !self.sensor;
        let tracker = if lone_prefix || merged.is_some() { None } else { self.take_tracker() };
        let victim = self.victims.meta[slot].key;
        let hosts = Hosts::new(self.scope.as_ref().map_or(128, |s| s.bits_of(victim)));
        let mut watch = Watch {
            slot,
            victim,
            class: c,
            state: WatchState::Watching,
            tracker,
            packets: 0,
            bytes: 0,
            sampling: 1,
            origin: self.origin,
            from_flows: false,
            user_packets: 0,
            tracker_since: self.now_tick.unwrap_or(0),
            last_ts: i64::MIN,
            first_ts: i64::MAX,
            calm_since: None,
            attack: None,
            hosts,
            sensors: Vec::new(),
        };
        if merged.is_some() {
            // No packets to back-fill from: the window's counts are the watch's.
            let sums = self.victims.sums(slot);
            (watch.packets, watch.bytes) = (sums[c as usize], sums[cell::BYTES + c as usize]);
        }
        // Back-fill from the packets of the current window that came before this one.
        let mut strangers = 0;
        for p in self.recent_of(victim, c) {
            let packets = self.packets_of(&p);
            let weight = u64::from(packets);
            watch.packets += weight;
            (watch.sampling, watch.from_flows) = (p.sampling_rate(), p.l4 == L4State::Summarized);
            watch.bytes = watch.bytes.saturating_add(u64::from(p.wire_len) * weight);
            watch.last_ts = watch.last_ts.max(p.ts_ns);
            watch.first_ts = watch.first_ts.min(p.ts_ns);
            if self.scope.is_some() {
                watch.hosts.add(p.dst, weight, &self.hasher);
            }
            let tracked = self.tracked(c, &p);
            if let Some(t) = watch.tracker.as_mut().filter(|_| tracked) {
                t.record(&p, &self.services, &self.s.bogons);
            }
            if c.strangers_cell().is_some() {
                watch.user_packets += !tracked as u64 * weight;
                strangers += tracked as u32 * packets;
            }
        }
        if let Some(cell) = c.strangers_cell().filter(|_| strangers > 0) {
            self.victims.add(slot, cell, strangers);
        }
        if watch.first_ts == i64::MAX {
            watch.first_ts = tick_time(self.now_tick.unwrap_or(0));
        }
        self.watches[w as usize] = Some(watch);
        self.live.push(w);
        self.victims.set_watch(slot, c as usize, w);
        if TCP_CLASSES.contains(&c) {
            self.refresh_tcp_watched();
        }
        true
    }

    /// The recent packets of one victim and class within the current window.
    fn recent_of(&self, victim: IpKey, c: Class) -> impl Iterator<Item = PacketRecord> + '_ {
        let now = self.now_tick.unwrap_or(0);
        let window = tick_time(now - self.s.window_ticks as i64 + 1)..tick_time(now + 1);
        self.recent
            .iter()
            .filter(move |p| self.victim_of(p.dst) == victim && window.contains(&p.ts_ns) && in_class(p, c))
    }

    /// Counts one second of sensors' summaries, merged (an aggregator's input, see
    /// [`summary`]; the trackers listing as many sources as this analyzer's hold): each
    /// victim's counters spread evenly over the second's ticks and judged
    /// tick by tick as packets would be; a watch's sources are the merge of its sensors'
    /// trackers, loaded as it starts and after each second.
    pub fn count_sensors_second(&mut self, second: i64, summaries: &[SecondSummary], out: &mut Vec<AttackEvent>) {
        let before = out.len();
        let sources = self.s.tracked_sources;
        let victims = summary::merge_second(summaries, |s| &s.victims, sources);
        let prefixes = match self.carpets {
            Some(_) => summary::merge_second(summaries, |s| &s.prefixes, sources),
            None => Vec::new(),
        };
        let first = second.saturating_mul(TICKS_PER_SECOND);
        for tick in first..first.saturating_add(TICKS_PER_SECOND) {
            self.count_merged_tick(tick, &victims, out);
            if let Some(c) = self.carpets.as_deref_mut() {
                c.count_merged_tick(tick, &prefixes, out);
            }
        }
        self.note_merged_second(&victims);
        if let Some(c) = self.carpets.as_deref_mut() {
            c.note_merged_second(&prefixes);
        }
        self.drop_echoes(out, before);
    }

    /// One tick of a merged second: its share of each victim's counters, judged as packets
    /// would be.
    fn count_merged_tick(&mut self, tick: i64, victims: &[MergedVictim], out: &mut Vec<AttackEvent>) {
        let now = self.move_clock(tick_time(tick), out);
        let ts = tick_time(now).max(self.last_ts);
        self.last_ts = ts;
        // This tick's share of a second's count: the remainder goes to the first ticks.
        let (per_tick, k) = (TICKS_PER_SECOND as u64, tick.rem_euclid(TICKS_PER_SECOND) as u64);
        let share = |total: u64| (total / per_tick + u64::from(k < total % per_tick)).min(u64::from(u32::MAX));
        for v in victims {
            let hash = self.hasher.hash_ip(v.victim);
            let Some(slot) =
                self.victims.find_hashed(v.victim, hash).or_else(|| self.insert_victim(v.victim, hash, now))
            else {
                continue;
            };
            if self.victims.meta[slot].ignored {
                continue;
            }
            self.touch(slot, now);
            for (cell, total) in v.cells.iter().enumerate() {
                match share(*total) {
                    0 => {}
                    n => self.victims.add(slot, cell, n as u32),
                }
            }
            for c in Class::ALL {
                let ci = c as usize;
                let packets = share(v.cells[ci]);
                if packets == 0 {
                    continue;
                }
                let w = self.victims.meta[slot].watch[ci];
                if let Some(watch) = self.watches.get_mut(w as usize).and_then(|w| w.as_mut()) {
                    watch.counted(packets, share(v.cells[cell::BYTES + ci]), ts);
                }
                if self.victims.sums(slot)[ci] >= u64::from(self.victims.meta[slot].level[ci]) {
                    self.on_level(slot, c, ts, 1, Some(v), out);
                }
            }
        }
    }

    /// After a merged second: each watch learns its victim's sensors and merged trackers.
    fn note_merged_second(&mut self, victims: &[MergedVictim]) {
        for v in victims {
            let Some(slot) = self.victims.find(v.victim) else { continue };
            for c in Class::ALL {
                let w = self.victims.meta[slot].watch[c as usize];
                if w != NO_WATCH {
                    self.note_sensors(w, v);
                }
            }
        }
    }

    /// What a watch learns from a victim's merged second: the sensors that saw it, and its
    /// class's merged tracker (taking a tracker if it has none).
    fn note_sensors(&mut self, w: u16, v: &MergedVictim) {
        let c = self.watch(w).class;
        let watch = self.watch_mut(w);
        for sensor in &v.sensors {
            if !watch.sensors.contains(sensor) {
                watch.sensors.push(sensor.clone());
            }
        }
        if let Some(summary) = v.tracker(c) {
            if self.watch(w).tracker.is_none() {
                let tracker = self.take_tracker();
                self.stats.tracker_pool_exhausted += u64::from(tracker.is_none());
                self.watch_mut(w).tracker = tracker;
            }
            if let Some(t) = self.watch_mut(w).tracker.as_mut() {
                t.load(summary);
            }
        }
    }

    /// A cleared tracker from the spares, or a new one while under the limit.
    fn take_tracker(&mut self) -> Option<AttackTracker> {
        if let Some(mut t) = self.spare_trackers.pop() {
            t.clear();
            return Some(t);
        }
        if self.trackers_made < self.s.max_trackers {
            self.trackers_made += 1;
            return Some(AttackTracker::new(self.s.tracked_sources, self.hasher));
        }
        None
    }

    /// An attack starting without a tracker takes one: a spare, or the one of the least busy
    /// watch that is not an attack (busy benign victims must not starve real attacks).
    fn ensure_tracker(&mut self, w: u16) {
        // An aggregator's watch has its sensors' trackers (`note_sensors`), or none to read.
        if self.watch(w).tracker.is_some() || !self.watch(w).sensors.is_empty() {
            return;
        }
        let mut tracker = self.take_tracker();
        if tracker.is_none() {
            let donor = self
                .live
                .iter()
                .copied()
                .filter(|&d| d != w && self.watch(d).attack.is_none() && self.watch(d).tracker.is_some())
                .min_by_key(|&d| self.victims.sums(self.watch(d).slot)[self.watch(d).class as usize]);
            tracker = donor.and_then(|d| self.watch_mut(d).tracker.take()).map(|mut t| {
                t.clear();
                t
            });
        }
        let Some(mut t) = tracker else {
            self.stats.tracker_pool_exhausted += 1;
            return;
        };
        let (victim, c) = (self.watch(w).victim, self.watch(w).class);
        for p in self.recent_of(victim, c).filter(|p| self.tracked(c, p)) {
            t.record(&p, &self.services, &self.s.bogons);
        }
        let now = self.now_tick.unwrap_or(0);
        let watch = self.watch_mut(w);
        watch.tracker = Some(t);
        watch.tracker_since = now;
    }

    /// A watch that is no attack keeps its tracker to the last few windows: a busy server's
    /// sources must not pile up for hours before a flood is judged by them.
    fn renew_tracker(&mut self, w: u16, now: i64) {
        let (victim, c) = (self.watch(w).victim, self.watch(w).class);
        let Some(mut t) = self.watch_mut(w).tracker.take() else {
            return;
        };
        t.clear();
        for p in self.recent_of(victim, c).filter(|p| self.tracked(c, p)) {
            t.record(&p, &self.services, &self.s.bogons);
        }
        let watch = self.watch_mut(w);
        watch.tracker = Some(t);
        watch.tracker_since = now;
    }

    fn release_watch(&mut self, w: u16) {
        let Some(watch) = self.watches[w as usize].take() else {
            return;
        };
        if let Some(t) = watch.tracker {
            self.spare_trackers.push(t);
        }
        if let Some(i) = self.live.iter().position(|x| *x == w) {
            self.live.remove(i);
        }
        self.free_watches.push(w);
        if TCP_CLASSES.contains(&watch.class) {
            self.refresh_tcp_watched();
        }
        let meta = &self.victims.meta[watch.slot];
        if meta.occupied && meta.key == watch.victim {
            self.victims.set_watch(watch.slot, watch.class as usize, NO_WATCH);
            self.refresh_levels(watch.slot);
        }
    }

    /// Above the threshold: is it a flood, and of which kind?
    /// `sampling`: that of the record that brought it here (1 on a tick).
    fn decide(&mut self, w: u16, ts: i64, sampling: u32, out: &mut Vec<AttackEvent>) {
        if self.watch(w).class == Class::Udp {
            // Amplification or not is read from the sources' ports.
            self.ensure_tracker(w);
        }
        let watch = self.watch(w);
        let slot = watch.slot;
        let meta = &self.victims.meta[slot];
        let sums = self.victims.sums(slot);
        let c = watch.class;
        let count = sums[c as usize];
        let pps = count as f64 / self.window_secs;
        // A prefix's flood that one of its hosts takes enough of to cross that host's own
        // threshold is the host's flood, which the host's alert reports: carpet bombing is the
        // flood no single host crosses. (The sample can show a one-flow flood before the host
        // has counted its threshold's worth.)
        if let Some(floors) = self.host_policies.get(meta.policy as usize) {
            let host_floor = c.kinds().iter().map(|k| floors[*k as usize]).min().unwrap_or(u32::MAX) as f64;
            if watch.hosts.top_share() * pps >= host_floor {
                self.watch_mut(w).state = WatchState::Declined;
                self.refresh_levels(slot);
                return;
            }
        }
        // A sampled flood is judged once the window holds enough samples to stand for it: a
        // rate estimated from k samples is off by about 1/sqrt(k) (a third for 8), and a single
        // packet sampled 1 in 1,000 would otherwise be a flood of 1,000 pps. Samples of one
        // rate: the window's count over the rate is their number. Until then, each tick decides.
        let sampling = watch.sampling.max(sampling);
        let evidence = match (watch.from_flows, sampling > 1) {
            (true, _) => Evidence::Flows,
            (false, true) => Evidence::Sampled,
            (false, false) => Evidence::Packets,
        };
        if sampling > 1 && count < MIN_SAMPLES * u64::from(sampling) {
            self.watch_mut(w).state = WatchState::Declined;
            self.refresh_levels(slot);
            return;
        }
        let mut thresholds = [0.0; AttackKind::ALL.len()];
        for kind in AttackKind::ALL {
            thresholds[kind as usize] = self.threshold_pps(meta, kind);
        }
        let window =
            verdict::Window { sums, count, pps, secs: self.window_secs, thresholds, settings: &self.s, evidence };
        let verdict = match c {
            Class::Syn => verdict::syn(&window),
            Class::SynAck => verdict::synack(&window),
            Class::Udp => verdict::udp(&window, watch.tracker.as_ref().and_then(|t| t.dominant_service())),
            Class::Icmp => verdict::icmp(&window),
            Class::Frag => {
                // Fragments of reflected UDP belong to the amplification alert, which counts them.
                let udp_w = meta.watch[Class::Udp as usize];
                let udp_explains = udp_w != NO_WATCH
                    && sums[Class::Udp as usize] >= count
                    && self.watch(udp_w).attack.as_ref().is_none_or(|a| a.kind == AttackKind::Amplification);
                verdict::fragments(&window, udp_explains)
            }
            Class::Ack | Class::Rst => verdict::from_strangers(&window, c),
            Class::TcpOther => verdict::other_tcp(&window),
        };
        let now = self.now_tick.unwrap_or(0);
        match verdict {
            None => {
                self.watch_mut(w).state = WatchState::Declined;
            }
            Some(verdict::Verdict { kind, mut reason, service }) => {
                self.ensure_tracker(w);
                let rate = fmt_int(f64::from(sampling));
                match evidence {
                    Evidence::Packets => {}
                    Evidence::Sampled => reason
                        .push_str(&format!("; estimated from packets sampled 1 in {rate}, each counted {rate} times")),
                    Evidence::Flows => {
                        reason.push_str("; estimated from flow records, each flow's packets spread over its duration");
                        if sampling > 1 {
                            reason.push_str(&format!(", sampled 1 in {rate} and counted {rate} times"));
                        }
                    }
                }
                let impossible = self.watch(w).tracker.as_ref().map_or(0.0, |t| t.impossible_share());
                if impossible > 0.0 {
                    reason.push_str(&format!(
                        "; {:.1} % of it from addresses that cannot send it (bogon, multicast, loopback or the victim's own)",
                        impossible * 100.0
                    ));
                }
                let threshold = self.threshold_pps(&self.victims.meta[slot], kind).round() as u32;
                let victim = self.watch(w).victim;
                let prefix_len = self.scope.as_ref().map(|s| s.family_len(victim));
                let window_start = tick_time(now - self.s.window_ticks as i64 + 1);
                let sums = self.victims.sums(slot);
                let users = sums[c as usize] - self.flood_count(slot, c).min(sums[c as usize]);
                let in_window = (sums[c as usize], sums[cell::BYTES + c as usize], users);
                let watch = self.watch_mut(w);
                // A victim watched for longer (a busy server) counts the attack from the window
                // that decided, not from when its traffic first drew attention.
                if watch.first_ts < window_start {
                    (watch.packets, watch.bytes, watch.user_packets) = in_window;
                    watch.first_ts = window_start;
                }
                watch.state = WatchState::Active;
                watch.calm_since = None;
                watch.attack = Some(Attack {
                    id: attack_id(victim, prefix_len, kind, ts),
                    kind,
                    started_at_ns: ts,
                    threshold_pps: threshold,
                    peak_pps: pps.round() as u64,
                    reason,
                    service,
                    quiet_since: None,
                    last_update_tick: now,
                });
                self.stats.attacks_started += 1;
                out.push(self.event(w, EventKind::Start, ts, None));
            }
        }
        self.refresh_levels(slot);
    }

    /// Every 100 ms of packet time: lifecycle of watches and attacks.
    fn on_tick(&mut self, now: i64, out: &mut Vec<AttackEvent>) {
        let mut i = 0;
        while i < self.live.len() {
            let w = self.live[i];
            let slot = self.watch(w).slot;
            // Judge the window of the ticks just completed; tick `now` has only begun.
            self.touch(slot, now - 1);
            let c = self.watch(w).class;
            let count = self.victims.sums(slot)[c as usize];
            let pps = count as f64 / self.window_secs;
            let trigger = self.trigger_count(&self.victims.meta[slot], c);
            let window_ticks = self.s.window_ticks as i64;
            let (quiet_ticks, update_ticks) = (self.s.quiet_ticks as i64, self.s.update_ticks as i64);
            let released_before = self.live.len();
            let horizon = window_ticks * TRACKER_HORIZON_WINDOWS;
            if self.watch(w).state != WatchState::Active && now - self.watch(w).tracker_since >= horizon {
                self.renew_tracker(w, now);
            }
            match self.watch(w).state {
                WatchState::Watching => {
                    let calm = (trigger / (8 * u64::from(self.reach()))).max(1);
                    let watch = self.watch_mut(w);
                    if count < calm {
                        let since = *watch.calm_since.get_or_insert(now);
                        if now - since >= window_ticks {
                            self.release_watch(w);
                        }
                    } else {
                        watch.calm_since = None;
                    }
                }
                WatchState::Declined => {
                    if count >= trigger {
                        self.watch_mut(w).state = WatchState::Watching;
                        self.decide(w, tick_time(now), 1, out);
                    } else {
                        self.watch_mut(w).state = WatchState::Watching;
                        self.refresh_levels(slot);
                    }
                }
                WatchState::Active => {
                    let flood_pps = self.flood_count(slot, c) as f64 / self.window_secs;
                    let watch = self.watch_mut(w);
                    let last_ts = watch.last_ts;
                    let Some(a) = watch.attack.as_mut() else {
                        i += 1;
                        continue;
                    };
                    a.peak_pps = a.peak_pps.max(pps.round() as u64);
                    let mut ended = None;
                    if flood_pps < a.threshold_pps as f64 / 2.0 {
                        let (since, last) = *a.quiet_since.get_or_insert((now, last_ts));
                        if now - since >= quiet_ticks {
                            ended = Some(last);
                        }
                    } else {
                        a.quiet_since = None;
                    }
                    let due = now - a.last_update_tick >= update_ticks;
                    if let Some(ended_at) = ended {
                        self.end_attack(w, EndReason::Quiet, ended_at, tick_time(now), out);
                    } else if due {
                        if let Some(a) = self.watch_mut(w).attack.as_mut() {
                            a.last_update_tick = now;
                        }
                        out.push(self.event(w, EventKind::Update, tick_time(now), None));
                    }
                }
            }
            if self.live.len() == released_before {
                i += 1;
            }
        }
    }

    /// The window's packets of class `c` that still look like a flood (a server that keeps
    /// serving its users after a flood sees their traffic go on): for SYNs, where the victim's
    /// answers are visible, those that completed no handshake; for ACKs and RSTs, those from
    /// peers the victim has no connection with.
    fn flood_count(&self, slot: usize, c: Class) -> u64 {
        let sums = self.victims.sums(slot);
        match c {
            Class::Syn if sums[cell::ANSWERS] > 0 => sums[c as usize].saturating_sub(sums[cell::COMPLETIONS]),
            _ => c.strangers_cell().map_or(sums[c as usize], |strangers| sums[strangers]),
        }
    }

    fn end_attack(&mut self, w: u16, reason: EndReason, ended_at: i64, ts: i64, out: &mut Vec<AttackEvent>) {
        let report = EndReport { ended_at_ns: ended_at, reason };
        out.push(self.event(w, EventKind::End, ts, Some(report)));
        self.release_watch(w);
    }

    fn source_report(&self, w: u16) -> SourceReport {
        let watch = self.watch(w);
        let kind = watch.attack.as_ref().map(|a| a.kind).unwrap_or(AttackKind::UdpFlood);
        let Some(t) = watch.tracker.as_ref() else {
            let verdict = match watch.sensors.is_empty() {
                true => "sources not tracked: every tracker was in use (raise limits.max_trackers)".to_string(),
                // An aggregator's watch: sensors list sources from their watch level.
                false => format!(
                    "sources not reported: no sensor watched this traffic toward the victim (each saw less than 1/{} of its own threshold)",
                    4 * SENSOR_REACH
                ),
            };
            return SourceReport { distinct_estimate: 0, spoofed_likely: false, verdict, top: Vec::new() };
        };
        let distinct = t.distinct_sources();
        let per_source = t.packets() as f64 / distinct.max(1) as f64;
        let ttls = match t.distinct_ttls() {
            0 => "no TTL known (flow records)".to_string(),
            n => format!("{n} TTL values"),
        };
        let impossible = t.impossible_share();
        let spread = t.network_spread(distinct);
        let sources = fmt_int(distinct as f64);
        let (spoofed, verdict) = if kind.is_reflection() {
            (false, format!("{sources} reflectors: real hosts answering requests forged with the victim's address"))
        } else if impossible >= IMPOSSIBLE_SHARE_SPOOFED {
            (
                true,
                format!(
                    "{:.1} % of the packets come from addresses that cannot send them (bogon, multicast, loopback or the victim's own), among {sources} distinct sources with {ttls}: forged source addresses, so none is listed for blocking",
                    impossible * 100.0
                ),
            )
        } else if distinct >= self.s.spoofed_min_sources
            && per_source <= self.s.spoofed_max_packets_per_source
            // One holder of an IPv6 prefix can send from 2^64 real addresses of it, so
            // clustering clears only IPv4 sources.
            && (spread >= NETWORK_SPREAD_SPOOFED || !watch.victim.is_v4())
        {
            (
                true,
                format!(
                    "{sources} distinct sources sending {per_source:.1} packets each on average, spread over networks as random addresses would be ({:.0} % of their coverage), with {ttls}: forged source addresses, so none is listed for blocking",
                    spread * 100.0
                ),
            )
        } else {
            (
                false,
                format!(
                    "{sources} distinct sources, {per_source:.1} packets each on average, in {:.0} % of the networks as many random addresses would cover",
                    (spread * 100.0).min(100.0)
                ),
            )
        };
        let verdict = if self.scope.is_some() {
            format!("{verdict} (sources counted in the sample of one flow in {})", carpet::SAMPLING)
        } else {
            verdict
        };
        let weight = self.weight as u64;
        let top = t
            .sources
            .top(self.s.top_sources)
            .into_iter()
            .map(|c| (c.key.to_ip(), c.count.saturating_mul(weight)))
            .collect();
        SourceReport { distinct_estimate: distinct, spoofed_likely: spoofed, verdict, top }
    }

    /// Sources worth blocking (for sources that do not look forged): every tracked source
    /// with enough packets that the sketch guarantees (count minus possible overestimate),
    /// except addresses that cannot be sources and, for a TCP flood, the victim's users.
    fn offenders(&self, w: u16) -> Vec<IpAddr> {
        let watch = self.watch(w);
        let Some(t) = watch.tracker.as_ref() else {
            return Vec::new();
        };
        let reflection = watch.attack.as_ref().is_some_and(|a| a.kind.is_reflection());
        let min = if reflection { 1 } else { self.s.min_offender_packets };
        let syn = watch.class == Class::Syn;
        t.sources
            .top(t.sources.capacity())
            .into_iter()
            .filter(|c| c.count - c.error >= min)
            .filter(|c| !tracker::impossible_source(c.key, watch.victim, &self.s.bogons))
            .filter(|c| !(syn && self.is_user(watch.victim, c.key, c.count - c.error)))
            .map(|c| c.key.to_ip())
            .collect()
    }

    /// Whether `source`, which sent at least `syns` SYNs of a SYN flood toward `victim`, is one
    /// of the victim's users: the victim talks with it, and it sent no more than
    /// `client_unanswered_syns` SYNs beyond the handshakes it completed. (An ACK or RST
    /// flood's tracker records only segments of no known connection: a user's own segments
    /// name no source there, and its flood on other connections does.)
    fn is_user(&self, victim: IpKey, source: IpKey, syns: u64) -> bool {
        self.acquaintances.lookup(self.hasher.hash_pair(victim, source)).is_some_and(|completed| {
            syns.saturating_sub(completed) <= self.s.client_unanswered_syns / self.weight as u64
        })
    }

    fn event(&self, w: u16, event: EventKind, ts: i64, end: Option<EndReport>) -> AttackEvent {
        let watch = self.watch(w);
        let a = watch.attack.as_ref().expect("events are built for attacks");
        let sums = self.victims.sums(watch.slot);
        let c = watch.class as usize;
        let pps = (sums[c] as f64 / self.window_secs).round() as u64;
        let bps = (sums[cell::BYTES + c] as f64 * 8.0 / self.window_secs).round() as u64;
        let protocol = match watch.class {
            Class::Syn | Class::SynAck | Class::Ack | Class::Rst | Class::TcpOther => "tcp",
            Class::Udp => "udp",
            Class::Icmp if watch.victim.is_v4() => "icmp",
            Class::Icmp => "icmpv6",
            Class::Frag => "ip",
        };
        let sources = self.source_report(w);
        let users = watch.user_packets.min(watch.packets);
        AttackEvent {
            timestamp_ns: ts,
            event,
            attack_id: a.id.clone(),
            kind: a.kind,
            victim: watch.victim.to_ip(),
            victim_prefix: self.scope.as_ref().map(|s| s.family_len(watch.victim)),
            victim_hosts: self.scope.as_ref().map(|_| watch.hosts.count()),
            victim_ports: watch
                .tracker
                .as_ref()
                .map(|t| t.main_ports(MAIN_PORT_SHARE, MAIN_PORTS_MAX))
                .unwrap_or_default(),
            protocol,
            service: a.service.map(ServiceTable::name),
            service_port: a.service.and_then(ServiceTable::port),
            pps,
            bps,
            peak_pps: a.peak_pps.max(pps),
            threshold_pps: a.threshold_pps as u64,
            started_at_ns: a.started_at_ns,
            packets: watch.packets - users,
            bytes: (watch.bytes as f64 * (1.0 - users as f64 / watch.packets.max(1) as f64)).round() as u64,
            reason: a.reason.clone(),
            // Forged sources are never worth blocking: the verdict comes with the sources.
            offending_ips: if sources.spoofed_likely { Vec::new() } else { self.offenders(w) },
            sources,
            onset_ns: watch.first_ts,
            end,
            telemetry: match watch.origin {
                Origin::Captured => None,
                Origin::Exported { format, exporter } => {
                    Some(TelemetrySource { format, exporter: exporter.to_ip(), sampling_rate: watch.sampling })
                }
            },
            sensors: watch.sensors.clone(),
        }
    }
}

const ICMP_ECHO_REPLY: u8 = 0;
const ICMP_ECHO_REQUEST: u8 = 8;
const ICMPV6_ECHO_REQUEST: u8 = 128;
const ICMPV6_ECHO_REPLY: u8 = 129;

fn is_echo_reply(p: &PacketRecord) -> bool {
    p.l4.has_ports()
        && matches!(
            (p.protocol, p.icmp_type),
            (PacketRecord::PROTO_ICMP, ICMP_ECHO_REPLY) | (PacketRecord::PROTO_ICMPV6, ICMPV6_ECHO_REPLY)
        )
}

/// The classes of TCP floods, whose sources may also be the victim's users.
const TCP_CLASSES: [Class; 4] = [Class::Syn, Class::Ack, Class::Rst, Class::TcpOther];

/// One of 64 bits for a host, for [`Analyzer::tcp_watched`] (unkeyed: a collision costs one
/// victim lookup, nothing more).
#[inline]
fn watch_bit(ip: IpKey) -> u64 {
    let folded = (ip.0 as u64) ^ ((ip.0 >> 64) as u64);
    1 << (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58)
}

fn in_class(p: &PacketRecord, c: Class) -> bool {
    match c {
        Class::Frag => p.fragment != Fragment::Whole,
        _ => Class::of(p) == Some(c),
    }
}

fn learn_baseline(
    meta: &mut VictimMeta,
    sums: &[u64],
    ticks: u64,
    alpha: f32,
    window_secs: f32,
    watches: &[Option<Watch>],
) {
    let weight = if ticks == 1 { alpha } else { 1.0 - (1.0 - alpha).powf(ticks.min(1 << 24) as f32) };
    for ((baseline, &w), &count) in meta.baseline.iter_mut().zip(&meta.watch).zip(sums) {
        let frozen = w != NO_WATCH && watches[w as usize].as_ref().is_some_and(|x| x.state == WatchState::Active);
        if !frozen {
            *baseline += weight * (count as f32 / window_secs - *baseline);
        }
    }
}

/// ACKs in one tick that earn a destination the counting of its ACKs: an eighth of the
/// lowest `ack_flood` threshold, as for the other classes.
fn ack_admit_per_tick(policies: &[KindThresholds]) -> u32 {
    let lowest = policies.iter().map(|t| t[AttackKind::AckFlood as usize]).min().unwrap_or(DEFAULT_ACK_THRESHOLD_PPS);
    (lowest / TICKS_PER_SEC as u32 / ADMIT_FRACTION_OF_THRESHOLD).max(1)
}

/// Which of [`Analyzer::last_victim`]'s 8 entries a victim uses: floods to two or three
/// victims at once keep theirs. Unkeyed: victims that collide only take the keyed lookup.
#[inline(always)]
fn hot_index(ip: IpKey) -> usize {
    let folded = (ip.0 as u64) ^ ((ip.0 >> 64) as u64);
    (folded.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 61) as usize
}

/// The word and bit of a victim's keyed hash in [`Analyzer::ack_filter`].
#[inline]
fn ack_filter_bit(hash: u64) -> (usize, u64) {
    (((hash >> 32) as usize) % ACK_FILTER_WORDS, 1 << ((hash >> 26) & 63))
}

/// Thresholds per policy (index 0: the global ones, i + 1: `[[prefix]]` i): the hosts', or
/// the prefixes' of the carpet analyzer.
fn policies(s: &DetectionSettings, prefixes: bool) -> Vec<KindThresholds> {
    if prefixes {
        return carpet::thresholds(s);
    }
    std::iter::once(s.thresholds).chain(s.prefixes.iter().map(|p| p.thresholds)).collect()
}

/// Packets in one tick that earn a destination a victim entry (see [`doorkeeper`]).
fn admit_per_tick(policies: &[KindThresholds]) -> u32 {
    let lowest = policies.iter().flatten().copied().min().unwrap_or(crate::analyze::DEFAULT_THRESHOLD_PPS);
    (lowest / TICKS_PER_SEC as u32 / ADMIT_FRACTION_OF_THRESHOLD).max(1)
}

fn tick_time(tick: i64) -> i64 {
    tick.saturating_mul(TICK_NS)
}

/// A stable id from what identifies an attack: victim (and its prefix length, for a prefix),
/// kind, start time.
fn attack_id(victim: IpKey, prefix_len: Option<u8>, kind: AttackKind, started_at_ns: i64) -> String {
    // FNV-1a: unkeyed on purpose, so replays of the same capture give the same ids.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let bytes =
        victim.0.to_be_bytes().into_iter().chain(prefix_len).chain([kind as u8]).chain(started_at_ns.to_be_bytes());
    for b in bytes {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{h:016x}")
}

/// An integer with thousands separators, for reasons and summaries.
pub fn fmt_int(x: f64) -> String {
    let n = x.round().max(0.0) as u64;
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

#[cfg(test)]
mod tests;
