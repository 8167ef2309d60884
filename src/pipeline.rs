//! The hand-off from the capture thread to the analyzer thread, shared by replay and the
//! daemon: the capture thread decodes frames into a [`Batch`] of records (with the frames'
//! bytes when the outputs keep evidence) and sends it full through a bounded channel; the
//! analyzer thread sends it back empty through another. Batches are reused, so after warm-up
//! nothing is allocated or locked per packet, and the two threads work side by side.

use crate::capture::{Frame, LinkType};
use crate::decode::{decode, udp_payload, Decoded, L4State, Origin, PacketRecord};
use crate::output::summary::TrafficStats;
use crate::prefetch::prefetch;
use crate::telemetry::{Collector, FlowClock, TelemetrySettings};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TryRecvError};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Records per batch: the unit the daemon hands from thread to thread, and the unit of the
/// batch latency (replay hands over several at once).
pub const BATCH: usize = 512;
/// Bytes of kept frames that fill a batch (frames can be up to 16 MiB each: without a cap,
/// batches of large frames would hold gigabytes).
pub const BATCH_FRAME_BYTES: usize = 1 << 20;
/// Polls of an empty channel before a thread sleeps on it (about 100 µs).
const SPINS_BEFORE_SLEEP: usize = 2000;
/// How many records ahead of the analyzer [`Batch::packets`] prefetches (the analysis alone
/// over decoded records in memory: 0.32–0.37 s without, 0.27–0.30 s with 8 ahead, 16 and 32
/// alike).
const PREFETCH_RECORDS: usize = 8;

/// Where a frame's bytes sit in its batch, and which record it is.
#[derive(Clone, Copy)]
struct FrameSpan {
    record: usize,
    ts_ns: i64,
    wire_len: u32,
    link: LinkType,
    offset: usize,
    len: usize,
}

/// Where a run of records from one origin begins (records with no run before them are
/// captured ones, or continue the previous batch's origin).
#[derive(Clone, Copy)]
struct OriginRun {
    record: usize,
    origin: Origin,
}

/// What the UDP datagrams to the flow telemetry ports are.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Datagrams {
    /// Packets like any other.
    #[default]
    Packets,
    /// Flow telemetry to the ports and from the exporters these settings give: the packets
    /// it describes stand in its place (`replay --telemetry`).
    Telemetry(TelemetrySettings),
}

/// A reader thread's telemetry: the collector's state, and the ports its datagrams come to.
pub struct TelemetryReader {
    collector: Collector,
    ports: [u16; 3],
}

impl TelemetryReader {
    pub fn new(settings: &TelemetrySettings) -> TelemetryReader {
        TelemetryReader { collector: Collector::new(settings, FlowClock::Exporter), ports: settings.ports() }
    }

    /// Hands out every flow still being spread (the end of a replay).
    pub fn finish(&mut self, traffic: &mut TrafficStats, record: &mut impl FnMut(&PacketRecord, Origin)) {
        self.collector.finish(&mut traffic.telemetry, record);
    }

    fn carries(&self, r: &PacketRecord) -> bool {
        r.protocol == PacketRecord::PROTO_UDP && r.l4 == L4State::Present && self.ports.contains(&r.dst_port)
    }
}

/// Decoded packets in capture order, with their frames' bytes when kept.
pub struct Batch {
    records: Vec<PacketRecord>,
    spans: Vec<FrameSpan>,
    origins: Vec<OriginRun>,
    bytes: Vec<u8>,
    capacity: usize,
}

impl Batch {
    /// A batch that is full at `capacity` records.
    pub fn with_capacity(capacity: usize) -> Batch {
        Batch {
            records: Vec::with_capacity(capacity),
            spans: Vec::new(),
            origins: Vec::new(),
            bytes: Vec::new(),
            capacity,
        }
    }

    /// Decodes `frame` and counts it in `traffic`; an IP packet joins the batch, with a
    /// copy of its bytes when `keep_frames`.
    #[inline(always)]
    pub fn add(&mut self, frame: &Frame, traffic: &mut TrafficStats, keep_frames: bool) {
        traffic.frames += 1;
        traffic.wire_bytes += frame.wire_len.max(frame.data.len() as u32) as u64;
        // Decoded in place: a record decoded on the stack and then pushed showed in the
        // profile as a store-forwarding stall (wide loads right after narrow stores); the
        // capture loop alone over `bench_mix`, 6 interleaved runs: 0.297 s that way, 0.286 s
        // in place.
        let at = self.records.len();
        self.records.push(PacketRecord::default());
        match decode(frame, &mut self.records[at]) {
            Ok(Decoded::Ip) => {
                traffic.count_ip(&self.records[at]);
                if keep_frames {
                    self.spans.push(FrameSpan {
                        record: at,
                        ts_ns: frame.ts_ns,
                        wire_len: frame.wire_len,
                        link: frame.link,
                        offset: self.bytes.len(),
                        len: frame.data.len(),
                    });
                    self.bytes.extend_from_slice(frame.data);
                }
            }
            Ok(Decoded::NonIp) => {
                self.records.pop();
                traffic.non_ip += 1
            }
            Err(issue) => {
                self.records.pop();
                traffic.issues[issue as usize] += 1
            }
        }
    }

    /// [`add`](Self::add), but a telemetry datagram is read by `telemetry`: the packets it
    /// describes join the batch in its place (its frame is not kept: evidence holds captured
    /// packets). Flows being spread join as the frames' time passes their ticks.
    pub fn add_reading(
        &mut self,
        frame: &Frame,
        traffic: &mut TrafficStats,
        keep_frames: bool,
        telemetry: &mut TelemetryReader,
    ) {
        let at = self.records.len();
        self.add(frame, traffic, keep_frames);
        let Some(datagram) = self.records.get(at).filter(|r| telemetry.carries(r)) else {
            if self.records.len() > at {
                self.mark_origin(at, Origin::Captured);
            }
            telemetry.collector.advance(frame.ts_ns, &mut |r, origin| self.push(r, origin));
            return;
        };
        let from = datagram.src.to_ip();
        self.records.truncate(at);
        if let Some(span) = self.spans.last().filter(|s| s.record == at).copied() {
            self.spans.pop();
            self.bytes.truncate(span.offset);
        }
        if let Some(payload) = udp_payload(frame) {
            telemetry
                .collector
                .read(payload, from, frame.ts_ns, &mut traffic.telemetry, &mut |r, origin| self.push(r, origin));
        }
    }

    /// Adds a record made elsewhere (a collector's), from `origin`.
    pub fn push(&mut self, record: &PacketRecord, origin: Origin) {
        self.mark_origin(self.records.len(), origin);
        self.records.push(*record);
    }

    /// Records from `record` on come from `origin`.
    fn mark_origin(&mut self, record: usize, origin: Origin) {
        if self.origins.last().map(|run| run.origin) != Some(origin) {
            self.origins.push(OriginRun { record, origin });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Full at its capacity in records, or at [`BATCH_FRAME_BYTES`] of kept frames.
    pub fn is_full(&self) -> bool {
        self.records.len() >= self.capacity || self.bytes.len() >= BATCH_FRAME_BYTES
    }

    pub fn clear(&mut self) {
        self.records.clear();
        self.spans.clear();
        self.origins.clear();
        self.bytes.clear();
        // One huge frame (up to 16 MiB) must not keep its buffer for good.
        if self.bytes.capacity() > 2 * BATCH_FRAME_BYTES {
            self.bytes = Vec::new();
        }
    }

    pub fn last_ts_ns(&self) -> Option<i64> {
        self.records.last().map(|r| r.ts_ns)
    }

    /// The packets in order, each with its frame when frames were kept, and the origin of
    /// the records from it on where it changes.
    pub fn packets(&self) -> impl Iterator<Item = (&PacketRecord, Option<Frame<'_>>, Option<Origin>)> {
        let mut spans = self.spans.iter().peekable();
        let mut origins = self.origins.iter().peekable();
        self.records.iter().enumerate().map(move |(i, record)| {
            // The records were written on the other core: ask for them ahead of the analyzer.
            prefetch(self.records.get(i + PREFETCH_RECORDS));
            let frame = spans.next_if(|span| span.record == i).map(|span| Frame {
                ts_ns: span.ts_ns,
                wire_len: span.wire_len,
                link: span.link,
                data: &self.bytes[span.offset..span.offset + span.len],
            });
            (record, frame, origins.next_if(|run| run.record == i).map(|run| run.origin))
        })
    }
}

/// A bounded channel of batches with a return path: `in_flight` batches, made by `new`,
/// circulate between the two ends.
pub fn batch_channel<T: Send>(in_flight: usize, new: impl Fn() -> T) -> (BatchSender<T>, BatchReceiver<T>) {
    let (full_tx, full_rx) = mpsc::sync_channel(in_flight);
    let (empty_tx, empty_rx) = mpsc::sync_channel(in_flight);
    for _ in 0..in_flight {
        let _ = empty_tx.send(new());
    }
    let empty = Arc::new(Mutex::new(empty_rx));
    (BatchSender { full: full_tx, empty }, BatchReceiver { full: full_rx, empty: empty_tx })
}

/// The capture threads' end (one clone each: they share the empty batches, a lock per batch).
pub struct BatchSender<T> {
    full: SyncSender<T>,
    empty: Arc<Mutex<Receiver<T>>>,
}

impl<T> Clone for BatchSender<T> {
    fn clone(&self) -> Self {
        BatchSender { full: self.full.clone(), empty: self.empty.clone() }
    }
}

impl<T> BatchSender<T> {
    /// An empty batch to fill; None once the analyzer is gone.
    pub fn empty(&self) -> Option<T> {
        let empty = self.empty.lock().ok()?;
        spin_then_recv(&empty)
    }

    /// Hands `batch` over and takes the next empty one; None once the analyzer is gone.
    pub fn swap(&self, batch: T) -> Option<T> {
        self.hand_over(batch)?;
        self.empty()
    }

    /// Hands `batch` over without taking another (the last of a capture); None once the
    /// analyzer is gone.
    pub fn hand_over(&self, batch: T) -> Option<()> {
        self.full.send(batch).ok()
    }
}

/// The analyzer thread's end.
pub struct BatchReceiver<T> {
    full: Receiver<T>,
    empty: SyncSender<T>,
}

impl<T> BatchReceiver<T> {
    /// The next full batch; None once the capture thread is done and everything is received.
    pub fn recv(&self) -> Option<T> {
        spin_then_recv(&self.full)
    }

    /// The next full batch if one comes within `timeout`; `Disconnected` once the capture
    /// thread is done.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<T, RecvTimeoutError> {
        self.full.recv_timeout(timeout)
    }

    /// Returns an emptied batch for reuse.
    pub fn give_back(&self, batch: T) {
        let _ = self.empty.send(batch);
    }
}

/// Polls before sleeping: a thread that sleeps on every batch must be woken on every batch,
/// and the wake-up (a futex call, and an inter-processor interrupt on a VM) lands on the
/// other thread, the busy one (replay of bench_mix: ~750 context switches without polling,
/// ~200-270 with it; median of 9 runs 0.38 s and 0.36 s).
fn spin_then_recv<T>(rx: &Receiver<T>) -> Option<T> {
    for _ in 0..SPINS_BEFORE_SLEEP {
        match rx.try_recv() {
            Ok(batch) => return Some(batch),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => std::hint::spin_loop(),
        }
    }
    rx.recv().ok()
}

#[cfg(test)]
mod tests {
    use super::{Batch, TelemetryReader, BATCH_FRAME_BYTES};
    use crate::capture::{Frame, LinkType};
    use crate::decode::{ExportFormat, IpKey, Origin};
    use crate::output::summary::TrafficStats;
    use crate::telemetry::TelemetrySettings;

    /// An Ethernet frame of `len` bytes carrying IPv4/UDP.
    fn udp_frame(len: usize) -> Vec<u8> {
        let mut f = vec![0u8; len];
        f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
        let ip = &mut f[14..];
        ip[0] = 0x45;
        ip[2..4].copy_from_slice(&((len - 14) as u16).to_be_bytes());
        ip[8] = 64;
        ip[9] = 17;
        ip[12..16].copy_from_slice(&[192, 0, 2, 1]);
        ip[16..20].copy_from_slice(&[198, 51, 100, 7]);
        f
    }

    /// A frame carrying a NetFlow v5 datagram to port 2055 with one record: 10 packets of a
    /// one-packet-long flow from 198.51.100.9 to 192.0.2.1.
    fn netflow_frame() -> Vec<u8> {
        let mut datagram = vec![0, 5, 0, 1];
        datagram.resize(24, 0);
        let mut record = vec![198, 51, 100, 9, 192, 0, 2, 1];
        record.resize(16, 0);
        record.extend(10u32.to_be_bytes());
        record.extend(600u32.to_be_bytes());
        record.resize(38, 0);
        record.extend([17, 0]);
        record.resize(48, 0);
        datagram.extend(record);
        let mut f = udp_frame(14 + 20 + 8 + datagram.len());
        f[14 + 20 + 2..14 + 20 + 4].copy_from_slice(&2055u16.to_be_bytes());
        f[14 + 20 + 4..14 + 20 + 6].copy_from_slice(&((8 + datagram.len()) as u16).to_be_bytes());
        f[14 + 28..].copy_from_slice(&datagram);
        f
    }

    #[test]
    fn kept_frames_stay_with_their_records_around_the_packets_telemetry_stands_for() {
        let (packet, datagram) = (udp_frame(100), netflow_frame());
        let mut reader = TelemetryReader::new(&TelemetrySettings::default());
        let mut batch = Batch::with_capacity(64);
        let mut traffic = TrafficStats::default();
        for data in [&packet, &datagram, &packet] {
            let frame = Frame { ts_ns: 1, wire_len: data.len() as u32, link: LinkType::ETHERNET, data };
            batch.add_reading(&frame, &mut traffic, true, &mut reader);
        }
        // The datagram's place: the record of its flow (10 packets), with no frame, from
        // its exporter; then captured packets again.
        let seen: Vec<_> = batch.packets().map(|(r, f, o)| (r.weight, f.map_or(0, |f| f.data.len()), o)).collect();
        let exporter = Origin::Exported { format: ExportFormat::Netflow, exporter: IpKey::from_v4([192, 0, 2, 1]) };
        let captured = Some(Origin::Captured);
        assert_eq!(seen, vec![(1, 100, captured), (10, 0, Some(exporter)), (1, 100, captured)]);
        assert_eq!(traffic.telemetry.flow_records, 1);
    }

    #[test]
    fn kept_frames_fill_a_batch_at_its_byte_cap() {
        let data = udp_frame(60_000);
        let frame = Frame { ts_ns: 1, wire_len: 60_000, link: LinkType::ETHERNET, data: &data };
        let mut batch = Batch::with_capacity(4096);
        let mut traffic = TrafficStats::default();
        while !batch.is_full() {
            batch.add(&frame, &mut traffic, true);
        }
        // Full by bytes long before 4,096 records, and no further than one frame past the cap.
        assert_eq!(batch.records.len(), BATCH_FRAME_BYTES.div_ceil(60_000));
        assert!(batch.bytes.len() < BATCH_FRAME_BYTES + 60_000);
        assert_eq!(traffic.ip_packets, batch.records.len() as u64);
        let kept: Vec<usize> = batch.packets().map(|(_, f, _)| f.map_or(0, |f| f.data.len())).collect();
        assert!(kept.iter().all(|&n| n == 60_000));
        // Without kept frames, only the record count fills it.
        let mut lean = Batch::with_capacity(4096);
        for _ in 0..100 {
            lean.add(&frame, &mut traffic, false);
        }
        assert!(!lean.is_full() && lean.bytes.is_empty());
    }
}
