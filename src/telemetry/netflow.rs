//! NetFlow v5 (fixed records), NetFlow v9 (RFC 3954) and IPFIX (RFC 7011): datagrams of flow
//! records. v9 and IPFIX describe their records by templates sent now and then; templates are
//! kept per exporter address, observation domain (v9: source id) and template id, bounded in
//! number overall and per exporter, and forgotten when not refreshed for an hour. Data that
//! comes before its template is held (a few sets, a few seconds) and read when it arrives.
//!
//! Written here rather than taken from a crate: the collector reads a dozen fields of each
//! record, in place, with no allocation per datagram or record; the parsers on crates.io build
//! an owned value per datagram and per field, and leave the bounds on what an exporter may make
//! them keep to the caller.

use super::flow::FlowRecord;
use super::{Protocol, SamplingRates, TelemetryIssue, TelemetryStats};
use crate::decode::{be16, be32, ExportFormat, Field, IpKey, Origin};
use std::collections::{HashMap, VecDeque};

pub const V5: u16 = 5;
pub const V9: u16 = 9;
pub const IPFIX: u16 = 10;

mod v5 {
    use super::Field;
    pub const COUNT: Field = 2..4;
    /// Engine type and id: v5's observation domain.
    pub const ENGINE: Field = 20..22;
    pub const SAMPLING: Field = 22..24;
    pub const HEADER_LEN: usize = 24;
    pub const RECORD_LEN: usize = 48;
    /// Within a record.
    pub const SRC: Field = 0..4;
    pub const DST: Field = 4..8;
    pub const PACKETS: Field = 16..20;
    pub const BYTES: Field = 20..24;
    pub const FIRST: Field = 24..28;
    pub const LAST: Field = 28..32;
    pub const SRC_PORT: Field = 32..34;
    pub const DST_PORT: Field = 34..36;
    pub const TCP_FLAGS: usize = 37;
    pub const PROTOCOL: usize = 38;
}

mod v9 {
    use super::Field;
    pub const SOURCE_ID: Field = 16..20;
    pub const HEADER_LEN: usize = 20;
}

mod ipfix {
    use super::Field;
    pub const LENGTH: Field = 2..4;
    pub const DOMAIN: Field = 12..16;
    pub const HEADER_LEN: usize = 16;
}

/// A v9 flowset's or an IPFIX set's header.
mod set {
    use super::Field;
    pub const ID: Field = 0..2;
    pub const LENGTH: Field = 2..4;
    pub const HEADER_LEN: usize = 4;
}

/// Set ids below 256 that carry templates.
const V9_TEMPLATES: u16 = 0;
const V9_OPTIONS_TEMPLATES: u16 = 1;
const IPFIX_TEMPLATES: u16 = 2;
const IPFIX_OPTIONS_TEMPLATES: u16 = 3;
const FIRST_DATA_SET: u16 = 256;
/// An IPFIX field whose length each record gives.
const VARIABLE_LENGTH: u16 = 0xffff;
/// The enterprise bit of an IPFIX information element id.
const ENTERPRISE_BIT: u16 = 0x8000;
/// The enterprise number of reverse information elements (RFC 5103): a biflow's counts of
/// its other direction.
const REVERSE_PEN: u32 = 29305;

/// Templates kept, overall and from one exporter address: a flood of templates from one
/// exporter fills its own share, and the ones kept stay.
const MAX_TEMPLATES: usize = 4096;
const MAX_TEMPLATES_PER_EXPORTER: u32 = 256;
/// Fields in one template (IPFIX allows 65,535; exporters use tens).
const MAX_FIELDS: usize = 512;
/// A template not refreshed for this long (by the datagrams' time) is forgotten.
const TEMPLATE_LIFETIME_NS: i64 = 3_600_000_000_000;
/// Data sets held for their template, at most this many and bytes, this long.
const MAX_HELD_SETS: usize = 64;
const MAX_HELD_BYTES: usize = 256 * 1024;
const HOLD_NS: i64 = 10_000_000_000;
/// A sampling rate beyond this is no exporter's (the highest in use are 1 in 65,536 or so).
pub const MAX_SAMPLING_RATE: u64 = 1 << 20;
/// An exporter's clock an hour off its anchor is another run (a replay's next file, a router
/// restarted): it is anchored again.
const REANCHOR_NS: i64 = 3_600_000_000_000;

/// How a flow's times become the analyzer's: by its exporter's clock, anchored at the arrival
/// of the exporter's first flow (per observation domain and kind of clock). Only differences
/// of the exporter's times count, so its clock may be off, or count from its boot.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlowClock {
    /// The exporter's clock as it runs (replay): recorded exports replay at the pace of what
    /// was metered, even when they were sent all at once (an exporter reading a capture).
    #[default]
    Exporter,
    /// Never later than the record's arrival (the collector): a live flow cannot end after
    /// its record came, so an anchor that says so (its first flow waited longer to be
    /// exported than this one) moves to this one.
    Live,
}

impl FlowClock {
    /// How far behind the latest flow's end flows are handed out: exporters send flows out of
    /// order (by when they expire; all at once when reading a capture), so a replay waits a
    /// minute, the longest a flow is spread over. Live, nothing waits.
    pub fn lag_ns(self) -> i64 {
        match self {
            FlowClock::Exporter => 60_000_000_000,
            FlowClock::Live => 0,
        }
    }
}

/// Where an exporter's clock stood when a flow ending then arrived.
#[derive(Clone, Copy, Debug)]
struct Anchor {
    flow_ms: i64,
    event_ns: i64,
}

/// What a template field is to the collector.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    Src,
    Dst,
    SrcPort,
    DstPort,
    Protocol,
    TcpFlags,
    Packets,
    Bytes,
    Start(Clock),
    End(Clock),
    /// ICMP type and code, type in the high byte.
    IcmpTypeCode,
    IcmpType,
    /// One packet in N.
    SamplingInterval,
    /// Packets taken in a row, then skipped (IPFIX PSAMP).
    PacketInterval,
    PacketSpace,
    /// A biflow's other direction (RFC 5103): its packets, bytes and TCP flags.
    ReversePackets,
    ReverseBytes,
    ReverseTcpFlags,
    Other,
}

/// How a flow time is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Clock {
    UptimeMs,
    Seconds,
    Millis,
    /// NTP timestamps (seconds and 2^-32 fractions), of micro- or nanosecond precision.
    Ntp,
}

impl Clock {
    /// A time of this clock in milliseconds (of its own epoch).
    fn ms(self, t: u64) -> i64 {
        let ms = match self {
            Clock::UptimeMs | Clock::Millis => t,
            Clock::Seconds => t.saturating_mul(1000),
            Clock::Ntp => (t >> 32) * 1000 + (((t & 0xffff_ffff) * 1000) >> 32),
        };
        ms.min(i64::MAX as u64) as i64
    }
}

impl Role {
    /// The role of information element `id` (NetFlow v9 field types are IPFIX's first 128).
    fn of(id: u16) -> Role {
        match id {
            1 | 23 | 85 => Role::Bytes,
            2 | 24 | 86 => Role::Packets,
            4 => Role::Protocol,
            6 => Role::TcpFlags,
            7 => Role::SrcPort,
            8 | 27 => Role::Src,
            11 => Role::DstPort,
            12 | 28 => Role::Dst,
            21 => Role::End(Clock::UptimeMs),
            22 => Role::Start(Clock::UptimeMs),
            32 | 139 => Role::IcmpTypeCode,
            34 | 50 => Role::SamplingInterval,
            150 => Role::Start(Clock::Seconds),
            151 => Role::End(Clock::Seconds),
            152 => Role::Start(Clock::Millis),
            153 => Role::End(Clock::Millis),
            154 | 156 => Role::Start(Clock::Ntp),
            155 | 157 => Role::End(Clock::Ntp),
            176 | 178 => Role::IcmpType,
            305 => Role::PacketInterval,
            306 => Role::PacketSpace,
            _ => Role::Other,
        }
    }

    /// The role of enterprise element `id` of `pen`.
    fn of_enterprise(pen: u32, id: u16) -> Role {
        match (pen, id) {
            (REVERSE_PEN, 1) => Role::ReverseBytes,
            (REVERSE_PEN, 2) => Role::ReversePackets,
            (REVERSE_PEN, 6) => Role::ReverseTcpFlags,
            _ => Role::Other,
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct TemplateField {
    role: Role,
    len: u16,
}

struct Template {
    fields: Box<[TemplateField]>,
    /// The shortest a record can be (a variable-length field takes at least its length byte).
    min_len: usize,
    refreshed_ns: i64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct Domain {
    exporter: IpKey,
    version: u16,
    /// v9's source id, IPFIX's observation domain.
    id: u32,
}

impl Domain {
    fn origin(&self) -> Origin {
        let format = if self.version == IPFIX { ExportFormat::Ipfix } else { ExportFormat::Netflow };
        Origin::Exported { format, exporter: self.exporter }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct TemplateKey {
    domain: Domain,
    id: u16,
}

/// A data set that came before its template.
struct Held {
    key: TemplateKey,
    ts_ns: i64,
    set: Vec<u8>,
}

/// The templates, sampling rates and clocks of every exporter, and the data waiting for a
/// template.
#[derive(Default)]
pub struct Templates {
    templates: HashMap<TemplateKey, Template>,
    per_exporter: HashMap<IpKey, u32>,
    /// Sampling rates announced in options data, per domain.
    sampling: HashMap<Domain, u32>,
    /// Sampling rates configured, per exporter: for flows whose rate nothing announced.
    configured: SamplingRates,
    clocks: Clocks,
    held: VecDeque<Held>,
    held_bytes: usize,
}

/// The exporters' clocks, anchored.
#[derive(Default)]
struct Clocks {
    clock: FlowClock,
    /// Per domain and kind of clock (uptime or calendar).
    anchors: HashMap<(Domain, bool), Anchor>,
}

impl Clocks {
    /// The event time of a flow that ended at `end` by its exporter's `clock`, its record
    /// having arrived at `arrival_ns`.
    fn event_end(&mut self, domain: Domain, clock: Clock, end: u64, arrival_ns: i64) -> i64 {
        let uptime = clock == Clock::UptimeMs;
        let ms = clock.ms(end);
        let key = (domain, uptime);
        if let Some(a) = self.anchors.get(&key) {
            // Uptime counts in 32 bits and wraps after 49.7 days.
            let delta =
                if uptime { i64::from((ms as u32).wrapping_sub(a.flow_ms as u32) as i32) } else { ms - a.flow_ms };
            let event = a.event_ns.saturating_add(delta.saturating_mul(1_000_000));
            let ahead = event.saturating_sub(arrival_ns);
            let holds = match self.clock {
                FlowClock::Exporter => ahead.unsigned_abs() <= REANCHOR_NS as u64,
                FlowClock::Live => (-REANCHOR_NS..=0).contains(&ahead),
            };
            if holds {
                return event;
            }
        }
        if self.anchors.len() < MAX_TEMPLATES || self.anchors.contains_key(&key) {
            self.anchors.insert(key, Anchor { flow_ms: ms, event_ns: arrival_ns });
        }
        arrival_ns
    }
}

impl Templates {
    /// The templates of a collector placing flows by `clock`, with `configured` rates for
    /// exporters that announce none.
    pub fn new(clock: FlowClock, configured: SamplingRates) -> Templates {
        Templates { clocks: Clocks { clock, anchors: HashMap::new() }, configured, ..Templates::default() }
    }

    pub fn len(&self) -> usize {
        self.templates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.templates.is_empty()
    }

    /// Keeps `template` under `key` if the bounds allow it (or it replaces one kept).
    fn keep(&mut self, key: TemplateKey, template: Template, stats: &mut TelemetryStats) -> bool {
        if let Some(kept) = self.templates.get_mut(&key) {
            *kept = template;
            return true;
        }
        let now = template.refreshed_ns;
        if self.templates.len() >= MAX_TEMPLATES || self.exporter_count(key) >= MAX_TEMPLATES_PER_EXPORTER {
            self.forget_expired(now);
        }
        if self.templates.len() >= MAX_TEMPLATES || self.exporter_count(key) >= MAX_TEMPLATES_PER_EXPORTER {
            stats.templates_refused += 1;
            return false;
        }
        *self.per_exporter.entry(key.domain.exporter).or_default() += 1;
        self.templates.insert(key, template);
        true
    }

    fn exporter_count(&self, key: TemplateKey) -> u32 {
        self.per_exporter.get(&key.domain.exporter).copied().unwrap_or(0)
    }

    fn withdraw(&mut self, key: TemplateKey) {
        if self.templates.remove(&key).is_some() {
            self.uncount(key.domain.exporter);
        }
    }

    fn uncount(&mut self, exporter: IpKey) {
        if let Some(n) = self.per_exporter.get_mut(&exporter) {
            *n -= 1;
            if *n == 0 {
                self.per_exporter.remove(&exporter);
            }
        }
    }

    fn forget_expired(&mut self, now_ns: i64) {
        let expired: Vec<TemplateKey> = self
            .templates
            .iter()
            .filter(|(_, t)| now_ns - t.refreshed_ns > TEMPLATE_LIFETIME_NS)
            .map(|(k, _)| *k)
            .collect();
        for key in expired {
            self.withdraw(key);
        }
        let kept: std::collections::HashSet<Domain> = self.templates.keys().map(|k| k.domain).collect();
        self.sampling.retain(|d, _| kept.contains(d));
        self.clocks.anchors.retain(|(d, _), _| kept.contains(d) || d.version == V5);
    }

    /// Holds a data set for its template, dropping the oldest beyond the bounds.
    fn hold(&mut self, key: TemplateKey, ts_ns: i64, set: &[u8], stats: &mut TelemetryStats) {
        if set.len() > MAX_HELD_BYTES {
            stats.data_without_template += 1;
            return;
        }
        while self.held.len() >= MAX_HELD_SETS || self.held_bytes + set.len() > MAX_HELD_BYTES {
            if let Some(old) = self.held.pop_front() {
                self.held_bytes -= old.set.len();
                stats.data_without_template += 1;
            }
        }
        self.held_bytes += set.len();
        self.held.push_back(Held { key, ts_ns, set: set.to_vec() });
    }

    /// Drops every set still held, counting it (the end of the input).
    pub fn give_up(&mut self, stats: &mut TelemetryStats) {
        stats.data_without_template += self.held.len() as u64;
        self.held.clear();
        self.held_bytes = 0;
    }

    /// The sets held for `key` (in arrival order), those held too long dropped and counted.
    fn release(&mut self, key: TemplateKey, now_ns: i64, stats: &mut TelemetryStats) -> Vec<Vec<u8>> {
        let mut released = Vec::new();
        let mut kept = VecDeque::with_capacity(self.held.len());
        for h in self.held.drain(..) {
            if now_ns - h.ts_ns > HOLD_NS {
                self.held_bytes -= h.set.len();
                stats.data_without_template += 1;
            } else if h.key == key {
                self.held_bytes -= h.set.len();
                released.push(h.set);
            } else {
                kept.push_back(h);
            }
        }
        self.held = kept;
        released
    }
}

/// Each flow record of a NetFlow v5/v9 or IPFIX datagram that `exporter` sent, received at
/// `ts_ns`, to `flow`; templates and sampling rates into `templates`, what was read or skipped
/// into `stats`. A datagram cut short or lying about a length stops there with an issue,
/// after the records before it.
pub fn read_datagram(
    data: &[u8],
    exporter: IpKey,
    ts_ns: i64,
    templates: &mut Templates,
    stats: &mut TelemetryStats,
    flow: &mut impl FnMut(&FlowRecord, &mut TelemetryStats),
) -> Result<(), TelemetryIssue> {
    let version = data.get(0..2).map(be16).ok_or(TelemetryIssue::Truncated)?;
    match version {
        V5 => read_v5(data, exporter, ts_ns, templates, stats, flow),
        V9 => {
            let id = data.get(v9::SOURCE_ID).map(be32).ok_or(TelemetryIssue::Truncated)?;
            stats.datagrams[Protocol::NetflowV9 as usize] += 1;
            let domain = Domain { exporter, version, id };
            read_sets(&data[v9::HEADER_LEN..], domain, ts_ns, templates, stats, flow)
        }
        IPFIX => {
            let header = data.get(..ipfix::HEADER_LEN).ok_or(TelemetryIssue::Truncated)?;
            let length = be16(&header[ipfix::LENGTH]) as usize;
            if length < ipfix::HEADER_LEN {
                return Err(TelemetryIssue::Malformed);
            }
            let message = data.get(..length).ok_or(TelemetryIssue::Truncated)?;
            stats.datagrams[Protocol::Ipfix as usize] += 1;
            let domain = Domain { exporter, version, id: be32(&header[ipfix::DOMAIN]) };
            read_sets(&message[ipfix::HEADER_LEN..], domain, ts_ns, templates, stats, flow)
        }
        _ => Err(TelemetryIssue::UnknownVersion),
    }
}

fn read_v5(
    data: &[u8],
    exporter: IpKey,
    ts_ns: i64,
    templates: &mut Templates,
    stats: &mut TelemetryStats,
    flow: &mut impl FnMut(&FlowRecord, &mut TelemetryStats),
) -> Result<(), TelemetryIssue> {
    let header = data.get(..v5::HEADER_LEN).ok_or(TelemetryIssue::Truncated)?;
    let engine = u32::from(be16(&header[v5::ENGINE]));
    let domain = Domain { exporter, version: V5, id: engine };
    let count = be16(&header[v5::COUNT]) as usize;
    // The top two bits are the sampling mode; 0 in the rest says nothing (every packet, or
    // a rate the exporter does not tell): the configured rate, else 1.
    let sampling_rate = match u32::from(be16(&header[v5::SAMPLING]) & 0x3fff) {
        0 => templates.configured.of(exporter).unwrap_or(1),
        rate => rate,
    };
    stats.datagrams[Protocol::NetflowV5 as usize] += 1;
    let mut records = data[v5::HEADER_LEN..].chunks_exact(v5::RECORD_LEN);
    for _ in 0..count {
        let r = records.next().ok_or(TelemetryIssue::Truncated)?;
        let v4 = |f: Field| IpKey::from_v4([r[f.start], r[f.start + 1], r[f.start + 2], r[f.start + 3]]);
        let protocol = r[v5::PROTOCOL];
        let dst_port = be16(&r[v5::DST_PORT]);
        let (first, last) = (be32(&r[v5::FIRST]), be32(&r[v5::LAST]));
        stats.flow_records += 1;
        flow(
            &FlowRecord {
                src: v4(v5::SRC),
                dst: v4(v5::DST),
                src_port: be16(&r[v5::SRC_PORT]),
                dst_port,
                protocol,
                tcp_flags: r[v5::TCP_FLAGS],
                // v5 carries an ICMP flow's type and code in its destination port.
                icmp_type: (dst_port >> 8) as u8,
                packets: u64::from(be32(&r[v5::PACKETS])),
                bytes: u64::from(be32(&r[v5::BYTES])),
                duration_ms: u64::from(last.wrapping_sub(first)),
                end_ns: templates.clocks.event_end(domain, Clock::UptimeMs, u64::from(last), ts_ns),
                sampling_rate,
                origin: Origin::Exported { format: ExportFormat::Netflow, exporter },
            },
            stats,
        );
    }
    Ok(())
}

/// The sets of a v9 or IPFIX message, after its header.
fn read_sets(
    mut rest: &[u8],
    domain: Domain,
    ts_ns: i64,
    templates: &mut Templates,
    stats: &mut TelemetryStats,
    flow: &mut impl FnMut(&FlowRecord, &mut TelemetryStats),
) -> Result<(), TelemetryIssue> {
    // v9 may pad the message after its last flowset.
    while rest.len() >= set::HEADER_LEN {
        let id = be16(&rest[set::ID]);
        let len = be16(&rest[set::LENGTH]) as usize;
        if len < set::HEADER_LEN {
            return Err(TelemetryIssue::Malformed);
        }
        let body = rest.get(set::HEADER_LEN..len).ok_or(TelemetryIssue::Truncated)?;
        rest = &rest[len..];
        match (domain.version, id) {
            (V9, V9_TEMPLATES) | (IPFIX, IPFIX_TEMPLATES) => {
                read_templates(body, domain, false, ts_ns, templates, stats, flow)?
            }
            (V9, V9_OPTIONS_TEMPLATES) | (IPFIX, IPFIX_OPTIONS_TEMPLATES) => {
                read_templates(body, domain, true, ts_ns, templates, stats, flow)?
            }
            (_, id) if id >= FIRST_DATA_SET => {
                let key = TemplateKey { domain, id };
                match templates.templates.get(&key).filter(|t| ts_ns - t.refreshed_ns <= TEMPLATE_LIFETIME_NS) {
                    Some(_) => read_data(body, key, ts_ns, templates, stats, flow)?,
                    None => templates.hold(key, ts_ns, body, stats),
                }
            }
            _ => stats.unknown_sets += 1,
        }
    }
    Ok(())
}

/// The templates of one template set (options templates when `options`), each kept and the
/// data held for it read.
fn read_templates(
    mut body: &[u8],
    domain: Domain,
    options: bool,
    ts_ns: i64,
    templates: &mut Templates,
    stats: &mut TelemetryStats,
    flow: &mut impl FnMut(&FlowRecord, &mut TelemetryStats),
) -> Result<(), TelemetryIssue> {
    let ipfix = domain.version == IPFIX;
    // A template's header: id, then (v9 options) scope and option lengths in bytes, or
    // (otherwise) the field count and (IPFIX options) the scope field count.
    let header_len = if options { 6 } else { 4 };
    while body.len() >= header_len {
        let id = be16(&body[0..2]);
        if id == 0 && !ipfix {
            // v9 pads a set with zeros.
            break;
        }
        let fields = match (ipfix, options) {
            (false, true) => (be16(&body[2..4]) as usize + be16(&body[4..6]) as usize) / 4,
            _ => be16(&body[2..4]) as usize,
        };
        body = &body[header_len..];
        if id < FIRST_DATA_SET || fields > MAX_FIELDS {
            return Err(TelemetryIssue::Malformed);
        }
        let key = TemplateKey { domain, id };
        if fields == 0 {
            // IPFIX's withdrawal of a template.
            templates.withdraw(key);
            continue;
        }
        let mut parsed = Vec::with_capacity(fields);
        let mut min_len = 0usize;
        for _ in 0..fields {
            let spec = body.get(..4).ok_or(TelemetryIssue::Truncated)?;
            let (ie, len) = (be16(&spec[0..2]), be16(&spec[2..4]));
            body = &body[4..];
            let role = if ipfix && ie & ENTERPRISE_BIT != 0 {
                let pen = body.get(..4).map(be32).ok_or(TelemetryIssue::Truncated)?;
                body = &body[4..];
                Role::of_enterprise(pen, ie & !ENTERPRISE_BIT)
            } else {
                Role::of(ie)
            };
            if len == VARIABLE_LENGTH && !ipfix {
                return Err(TelemetryIssue::Malformed);
            }
            min_len += if len == VARIABLE_LENGTH { 1 } else { usize::from(len) };
            parsed.push(TemplateField { role, len });
        }
        if min_len == 0 {
            return Err(TelemetryIssue::Malformed);
        }
        stats.templates += 1;
        let template = Template { fields: parsed.into_boxed_slice(), min_len, refreshed_ns: ts_ns };
        if templates.keep(key, template, stats) {
            for set in templates.release(key, ts_ns, stats) {
                read_data(&set, key, ts_ns, templates, stats, flow)?;
            }
        }
    }
    Ok(())
}

/// What one data record said, field by field.
#[derive(Default)]
struct Fields {
    flow: FlowRecord,
    has_dst: bool,
    start: Option<(Clock, u64)>,
    end: Option<(Clock, u64)>,
    icmp_type: Option<u8>,
    sampling: Option<u64>,
    packet_interval: Option<u64>,
    packet_space: u64,
    reverse_packets: u64,
    reverse_bytes: u64,
    reverse_flags: u8,
}

impl Fields {
    fn sampling_rate(&self) -> Option<u64> {
        self.sampling.or_else(|| {
            let interval = self.packet_interval?;
            if interval == 0 {
                return Some(0);
            }
            Some(interval.saturating_add(self.packet_space) / interval)
        })
    }

    fn duration_ms(&self) -> u64 {
        match (self.start, self.end) {
            // Uptime counts in 32 bits and wraps after 49.7 days.
            (Some((Clock::UptimeMs, start)), Some((Clock::UptimeMs, end))) => {
                u64::from((end as u32).wrapping_sub(start as u32))
            }
            (Some((a, start)), Some((b, end))) if a == b => a.ms(end).saturating_sub(a.ms(start)) as u64,
            _ => 0,
        }
    }
}

/// The records of one data set (its body) by the template under `key`.
fn read_data(
    mut body: &[u8],
    key: TemplateKey,
    ts_ns: i64,
    templates: &mut Templates,
    stats: &mut TelemetryStats,
    flow: &mut impl FnMut(&FlowRecord, &mut TelemetryStats),
) -> Result<(), TelemetryIssue> {
    let Templates { templates: kept, sampling, clocks, configured, .. } = templates;
    let Some(template) = kept.get(&key) else { return Ok(()) };
    let domain_rate = sampling.get(&key.domain).copied().or_else(|| configured.of(key.domain.exporter));
    let mut announced = None;
    // What is left shorter than a record is padding.
    while body.len() >= template.min_len {
        let mut f = Fields::default();
        for field in template.fields.iter() {
            let len = match field.len {
                VARIABLE_LENGTH => {
                    let (&short, after) = body.split_first().ok_or(TelemetryIssue::Truncated)?;
                    body = after;
                    if short < 255 {
                        usize::from(short)
                    } else {
                        let long = body.get(..2).map(be16).ok_or(TelemetryIssue::Truncated)?;
                        body = &body[2..];
                        usize::from(long)
                    }
                }
                len => usize::from(len),
            };
            let value = body.get(..len).ok_or(TelemetryIssue::Truncated)?;
            body = &body[len..];
            read_field(field.role, value, &mut f);
        }
        if !f.has_dst {
            // Options data: what it says of sampling holds for the domain's flows.
            match f.sampling_rate() {
                Some(rate @ 1..=MAX_SAMPLING_RATE) => announced = Some(rate as u32),
                Some(_) => stats.bad_sampling_rates += 1,
                None => {}
            }
            stats.options_records += 1;
            continue;
        }
        stats.flow_records += 1;
        let rate = match f.sampling_rate() {
            Some(rate @ 1..=MAX_SAMPLING_RATE) => rate as u32,
            Some(_) => {
                stats.bad_sampling_rates += 1;
                continue;
            }
            None => announced.or(domain_rate).unwrap_or(1),
        };
        f.flow.sampling_rate = rate;
        f.flow.origin = key.domain.origin();
        f.flow.duration_ms = f.duration_ms();
        f.flow.end_ns = match f.end {
            Some((clock, end)) => clocks.event_end(key.domain, clock, end, ts_ns),
            None => ts_ns,
        };
        if let Some(t) = f.icmp_type {
            f.flow.icmp_type = t;
        } else if matches!(f.flow.protocol, 1 | 58) {
            // Exporters without an ICMP field put type and code in the destination port.
            f.flow.icmp_type = (f.flow.dst_port >> 8) as u8;
        }
        flow(&f.flow, stats);
        if f.reverse_packets > 0 {
            let forward = f.flow;
            let reverse = FlowRecord {
                src: forward.dst,
                dst: forward.src,
                src_port: forward.dst_port,
                dst_port: forward.src_port,
                tcp_flags: f.reverse_flags,
                packets: f.reverse_packets,
                bytes: f.reverse_bytes,
                ..forward
            };
            flow(&reverse, stats);
        }
    }
    if let Some(rate) = announced {
        if sampling.len() < MAX_TEMPLATES || sampling.contains_key(&key.domain) {
            sampling.insert(key.domain, rate);
        }
    }
    Ok(())
}

/// An unsigned number of 1 to 8 bytes (IPFIX allows shorter encodings of wide counters).
fn uint(value: &[u8]) -> Option<u64> {
    if value.is_empty() || value.len() > 8 {
        return None;
    }
    Some(value.iter().fold(0u64, |n, &b| n << 8 | u64::from(b)))
}

fn address(value: &[u8]) -> Option<IpKey> {
    match value.len() {
        4 => Some(IpKey::from_v4([value[0], value[1], value[2], value[3]])),
        16 => {
            let mut octets = [0; 16];
            octets.copy_from_slice(value);
            Some(IpKey::from_v6(octets))
        }
        _ => None,
    }
}

fn read_field(role: Role, value: &[u8], f: &mut Fields) {
    let n = || uint(value);
    match role {
        Role::Src => f.flow.src = address(value).unwrap_or(f.flow.src),
        Role::Dst => {
            if let Some(dst) = address(value) {
                (f.flow.dst, f.has_dst) = (dst, true);
            }
        }
        Role::SrcPort => f.flow.src_port = n().unwrap_or(0) as u16,
        Role::DstPort => f.flow.dst_port = n().unwrap_or(0) as u16,
        Role::Protocol => f.flow.protocol = n().unwrap_or(0) as u8,
        // One byte in v9, two in IPFIX (the flags in the low one).
        Role::TcpFlags => f.flow.tcp_flags = n().unwrap_or(0) as u8,
        // The first of several counts (in, out, total) that says anything.
        Role::Packets if f.flow.packets == 0 => f.flow.packets = n().unwrap_or(0),
        Role::Bytes if f.flow.bytes == 0 => f.flow.bytes = n().unwrap_or(0),
        Role::Start(clock) => f.start = n().map(|t| (clock, t)).or(f.start),
        Role::End(clock) => f.end = n().map(|t| (clock, t)).or(f.end),
        Role::IcmpTypeCode => f.icmp_type = n().map(|t| (t >> 8) as u8),
        Role::IcmpType => f.icmp_type = n().map(|t| t as u8),
        Role::SamplingInterval => f.sampling = n(),
        Role::PacketInterval => f.packet_interval = n(),
        Role::PacketSpace => f.packet_space = n().unwrap_or(0),
        Role::ReversePackets => f.reverse_packets = n().unwrap_or(0),
        Role::ReverseBytes => f.reverse_bytes = n().unwrap_or(0),
        Role::ReverseTcpFlags => f.reverse_flags = n().unwrap_or(0) as u8,
        Role::Packets | Role::Bytes | Role::Other => {}
    }
}

#[cfg(test)]
mod tests;
