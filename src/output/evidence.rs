//! Evidence: per attack, a pcap of its traffic (up to N packets), starting with the second
//! before the attack was declared, which a ring of recent frames keeps in memory. When the
//! attack ends its file is closed and its SHA-256, path and packet count go into
//! `attack_end`. Files are mode 0640; a disk cap deletes the oldest files first.
//!
//! Per packet the recorder copies the frame into the ring (one memcpy into preallocated
//! memory) and compares it with the attacks being recorded; nothing is allocated.
//!
//! A file is never left invalid: its header is written (and must reach the disk) when the
//! recording starts, else the file is removed; frames go to disk in whole records, 64 KiB at a
//! time, and a write that fails (a full disk) is cut back to the last whole record and ends the
//! recording. Either way `attack_end` says what happened in `evidence.error`.

use crate::analyze::{AttackEvent, AttackKind, EventKind};
use crate::capture::Frame;
use crate::decode::PacketRecord;
use crate::decode::Prefix;
use crate::output::alert::EvidenceFile;
use crate::output::pcap_writer::{PcapWriter, TsResolution};
use sha2::{Digest, Sha256};
use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// How far before an attack's declaration its evidence begins.
pub const LEAD_NS: i64 = 1_000_000_000;
/// Memory for recent frames. At high rates it holds less than [`LEAD_NS`] of traffic.
const RING_BYTES: usize = 32 << 20;
/// Frames the ring indexes at most (bounds the index for tiny frames).
const RING_FRAMES: usize = 1 << 18;
/// Attacks recorded at once; more get no evidence (and a log line).
const MAX_RECORDINGS: usize = 64;
const SNAPLEN: u32 = 65_535;
const FILE_PREFIX: &str = "floodwatch-";

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EvidenceOptions {
    pub dir: PathBuf,
    /// Packets per attack at most.
    pub max_packets: u64,
    /// Bytes all evidence files may take; the oldest go first.
    pub max_bytes: u64,
}

#[derive(Clone, Copy)]
struct Slot {
    record: PacketRecord,
    link: u16,
    offset: u32,
    len: u32,
}

/// The most recent frames, in a fixed arena used as a circular log.
struct FrameRing {
    bytes: Vec<u8>,
    head: usize,
    slots: VecDeque<Slot>,
}

impl FrameRing {
    fn new() -> FrameRing {
        FrameRing { bytes: vec![0; RING_BYTES], head: 0, slots: VecDeque::with_capacity(RING_FRAMES) }
    }

    #[inline]
    fn push(&mut self, frame: &Frame, record: &PacketRecord) {
        let len = frame.data.len().min(SNAPLEN as usize);
        if self.head + len > self.bytes.len() {
            // Wrap: what lies past the head is the oldest data; it goes first.
            while self.slots.front().is_some_and(|s| s.offset as usize >= self.head) {
                self.slots.pop_front();
            }
            self.head = 0;
        }
        let end = self.head + len;
        while self.slots.front().is_some_and(|s| (s.offset as usize) < end && s.offset as usize >= self.head)
            || self.slots.len() == RING_FRAMES
        {
            self.slots.pop_front();
        }
        self.bytes[self.head..end].copy_from_slice(&frame.data[..len]);
        self.slots.push_back(Slot { record: *record, link: frame.link.0, offset: self.head as u32, len: len as u32 });
        self.head = end;
    }

    fn iter(&self) -> impl Iterator<Item = (&Slot, &[u8])> {
        self.slots.iter().map(|s| (s, &self.bytes[s.offset as usize..(s.offset + s.len) as usize]))
    }
}

/// Whole pcap records gathered in memory and written to the file 64 KiB at a time
/// ([`commit`](Self::commit)), hashing what reached it: the file always ends at a record's end.
struct RecordWriter {
    file: File,
    pending: Vec<u8>,
    /// Bytes of the file that were written whole.
    committed: u64,
    hash: Sha256,
}

/// Pending bytes that make a write to the file.
const COMMIT_BYTES: usize = 64 << 10;

impl Write for RecordWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        Ok(buf.len())
    }
    /// Nothing: records reach the file in [`commit`](Self::commit), at record boundaries.
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl RecordWriter {
    /// Writes the pending records; a failed write is cut back to the last whole record.
    fn commit(&mut self) -> io::Result<()> {
        if self.pending.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.file.write_all(&self.pending) {
            let _ = self.file.set_len(self.committed);
            self.pending.clear();
            return Err(e);
        }
        self.hash.update(&self.pending);
        self.committed += self.pending.len() as u64;
        self.pending.clear();
        Ok(())
    }
}

struct Recording {
    attack_id: String,
    /// The victim's address, or its prefix's.
    victim: Prefix,
    kind: AttackKind,
    link: u16,
    path: PathBuf,
    writer: Option<PcapWriter<RecordWriter>>,
    /// Frames in the file, and those pending with them.
    packets: u64,
    pending_packets: u64,
    /// Why the recording stopped early, if it did.
    error: Option<String>,
}

impl Recording {
    #[inline]
    fn wants(&self, record: &PacketRecord, link: u16, max: u64) -> bool {
        self.writer.is_some()
            && self.error.is_none()
            && self.packets + self.pending_packets < max
            && self.victim.contains(record.dst)
            && link == self.link
            && self.kind.matches(record)
    }

    fn write(&mut self, ts_ns: i64, data: &[u8], wire_len: u32) {
        let Some(w) = self.writer.as_mut() else { return };
        match w.write_frame(ts_ns, data, wire_len) {
            Ok(()) => self.pending_packets += 1,
            Err(e) if e.kind() == io::ErrorKind::InvalidInput => return, // a time pcap cannot hold
            Err(e) => return self.stop(e),
        }
        if w.get_mut().pending.len() >= COMMIT_BYTES {
            self.commit();
        }
    }

    /// Writes the pending records to the file (stopping the recording if that fails).
    fn commit(&mut self) {
        let Some(w) = self.writer.as_mut().filter(|_| self.error.is_none()) else { return };
        match w.get_mut().commit() {
            Ok(()) => {
                self.packets += self.pending_packets;
                self.pending_packets = 0;
            }
            Err(e) => self.stop(e),
        }
    }

    /// The file cannot grow: it keeps what it has, and the recording ends.
    fn stop(&mut self, e: io::Error) {
        tracing::error!(path = %self.path.display(), packets = self.packets, "evidence write failed: {e}; recording stopped");
        self.error = Some(format!("writing failed after {} packets: {e}", self.packets));
        self.pending_packets = 0;
    }

    fn finish(mut self) -> EvidenceFile {
        self.commit();
        let Some(w) = self.writer.take() else {
            // It never got its header: no file.
            return EvidenceFile { error: self.error, ..EvidenceFile::default() };
        };
        let out = match w.into_inner() {
            Ok(out) => out,
            Err(e) => return EvidenceFile { error: Some(e.to_string()), ..EvidenceFile::default() },
        };
        if let Err(e) = out.file.sync_data() {
            self.error.get_or_insert_with(|| format!("the file could not be synced to disk: {e}"));
        }
        EvidenceFile {
            path: Some(self.path.display().to_string()),
            packets: self.packets,
            sha256: Some(hex(&out.hash.finalize())),
            error: self.error,
        }
    }
}

pub struct EvidenceRecorder {
    opts: EvidenceOptions,
    ring: FrameRing,
    recordings: Vec<Recording>,
    pub files_written: u64,
}

impl EvidenceRecorder {
    /// Creates the directory if needed and checks it can be written.
    pub fn open(opts: EvidenceOptions) -> Result<EvidenceRecorder, String> {
        let dir = &opts.dir;
        std::fs::create_dir_all(dir)
            .and_then(|_| {
                let probe = dir.join(format!(".{FILE_PREFIX}probe.{}", std::process::id()));
                File::create(&probe).and_then(|_| std::fs::remove_file(&probe))
            })
            .map_err(|e| format!("evidence directory {} is not writable: {e}", dir.display()))?;
        Ok(EvidenceRecorder { opts, ring: FrameRing::new(), recordings: Vec::new(), files_written: 0 })
    }

    /// Every decoded IP frame passes here, before the analyzer sees it.
    #[inline]
    pub fn frame(&mut self, frame: &Frame, record: &PacketRecord) {
        self.ring.push(frame, record);
        for r in &mut self.recordings {
            if r.wants(record, frame.link.0, self.opts.max_packets) {
                r.write(frame.ts_ns, frame.data, frame.wire_len);
            }
        }
    }

    /// Starts a recording on `attack_start`; finishes it on `attack_end` and returns its file.
    pub fn event(&mut self, e: &AttackEvent) -> Option<EvidenceFile> {
        match e.event {
            EventKind::Start => {
                self.start(e);
                None
            }
            EventKind::Update => None,
            EventKind::End => {
                let i = self.recordings.iter().position(|r| r.attack_id == e.attack_id)?;
                let file = self.recordings.swap_remove(i).finish();
                self.files_written += file.path.is_some() as u64;
                self.enforce_cap(file.path.as_deref().map(Path::new));
                Some(file)
            }
        }
    }

    /// Closes every recording (shutdown without `attack_end`s).
    pub fn finish(&mut self) {
        for r in self.recordings.drain(..) {
            r.finish();
        }
    }

    fn start(&mut self, e: &AttackEvent) {
        if self.recordings.len() >= MAX_RECORDINGS {
            tracing::warn!(attack_id = %e.attack_id, "{MAX_RECORDINGS} attacks already recorded: no evidence for this one");
            return;
        }
        self.enforce_cap(None);
        let victim = e.victim_range();
        let from = e.started_at_ns.saturating_sub(LEAD_NS);
        // The link type of the attack's first frame in the ring sets the file's.
        let link = self
            .ring
            .iter()
            .find(|(s, _)| s.record.ts_ns >= from && victim.contains(s.record.dst) && e.kind.matches(&s.record))
            .map(|(s, _)| s.link)
            .unwrap_or(1);
        let path = self.opts.dir.join(format!("{FILE_PREFIX}{}-{}.pcap", e.attack_id, e.kind.name()));
        // The header goes to disk at once: a file that cannot hold it is no evidence at all.
        let writer =
            std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o640).open(&path).and_then(
                |file| {
                    let out = RecordWriter {
                        file,
                        pending: Vec::with_capacity(COMMIT_BYTES + SNAPLEN as usize + 16),
                        committed: 0,
                        hash: Sha256::new(),
                    };
                    let mut w = PcapWriter::new(out, link, SNAPLEN, TsResolution::Nano)?;
                    w.get_mut().commit()?;
                    Ok(w)
                },
            );
        let (writer, error) = match writer {
            Ok(w) => (Some(w), None),
            Err(err) => {
                tracing::error!(path = %path.display(), "cannot create evidence file: {err}");
                let _ = std::fs::remove_file(&path);
                (None, Some(format!("no evidence file: {err}")))
            }
        };
        let mut r = Recording {
            attack_id: e.attack_id.clone(),
            victim,
            kind: e.kind,
            link,
            path,
            writer,
            packets: 0,
            pending_packets: 0,
            error,
        };
        for (s, data) in self.ring.iter() {
            if s.record.ts_ns >= from && r.wants(&s.record, s.link, self.opts.max_packets) {
                r.write(s.record.ts_ns, data, s.record.wire_len);
            }
        }
        self.recordings.push(r);
    }

    /// Deletes the oldest finished evidence files until all of them fit the cap; files being
    /// written and `keep` (the one just finished, which its attack_end names) stay.
    fn enforce_cap(&self, keep: Option<&Path>) {
        let Ok(dir) = std::fs::read_dir(&self.opts.dir) else { return };
        let active: Vec<&Path> = self.recordings.iter().map(|r| r.path.as_path()).chain(keep).collect();
        let mut files: Vec<(std::time::SystemTime, u64, PathBuf)> = dir
            .filter_map(|d| d.ok())
            .filter(|d| d.file_name().to_string_lossy().starts_with(FILE_PREFIX))
            .filter_map(|d| {
                let m = d.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), d.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        for (_, len, path) in files {
            if total <= self.opts.max_bytes {
                break;
            }
            if active.contains(&path.as_path()) {
                continue;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => {
                    total -= len;
                    tracing::info!(path = %path.display(), "evidence disk cap reached: oldest file deleted");
                }
                Err(e) => tracing::warn!(path = %path.display(), "cannot delete old evidence: {e}"),
            }
        }
    }
}

/// A digest as lowercase hexadecimal, as `sha256sum` prints it.
pub(super) fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capture::LinkType;
    use crate::decode::IpKey;

    fn rec(ts: i64, dst: u8) -> PacketRecord {
        PacketRecord { ts_ns: ts, dst: IpKey::from_v4([192, 0, 2, dst]), ..Default::default() }
    }

    #[test]
    fn ring_keeps_the_newest_frames_within_its_memory() {
        let mut ring = FrameRing::new();
        let data = vec![7u8; 1000];
        let n = RING_BYTES / 1000 * 3;
        for i in 0..n {
            let f = Frame { ts_ns: i as i64, wire_len: 1000, link: LinkType::ETHERNET, data: &data };
            ring.push(&f, &rec(i as i64, 1));
        }
        let kept: Vec<i64> = ring
            .iter()
            .map(|(s, d)| {
                assert_eq!(d.len(), 1000);
                s.record.ts_ns
            })
            .collect();
        assert!(kept.len() >= RING_BYTES / 1000 - 1 && kept.len() <= RING_BYTES / 1000, "{}", kept.len());
        assert_eq!(*kept.last().unwrap(), n as i64 - 1);
        assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "contiguous, oldest first");
    }

    #[test]
    fn ring_bounds_its_index_for_tiny_frames() {
        let mut ring = FrameRing::new();
        for i in 0..(RING_FRAMES * 2) {
            let f = Frame { ts_ns: i as i64, wire_len: 0, link: LinkType::ETHERNET, data: &[] };
            ring.push(&f, &rec(i as i64, 1));
        }
        assert_eq!(ring.slots.len(), RING_FRAMES);
        assert_eq!(ring.slots.capacity(), RING_FRAMES);
    }
}
