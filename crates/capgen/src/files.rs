//! Writing a scenario to disk: the capture file in its container format, and its ground truth
//! as pretty-printed JSON beside it.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::write::GzEncoder;
use flate2::{Compression, GzBuilder};

use super::frames::{VlanTags, ETHERTYPE_ARP};
use super::pcapng::PcapngWriter;
use super::scenarios::{Scenario, Traffic, SCENARIOS};
use super::traffic::merge;
use super::truth::{Container, FileFacts, GroundTruth, Tally};
use super::SEED;
use crate::pcap::{PcapWriter, TsResolution};

/// LINKTYPE_ETHERNET: every generated frame is Ethernet.
pub const LINK_ETHERNET: u16 = 1;
/// Snap length written into the headers (tcpdump's default); no generated frame comes near it.
const SNAPLEN: u32 = 262_144;
/// gzip's "unknown" operating system: the header is the same wherever the file is generated.
const GZIP_OS_UNKNOWN: u8 = 255;

/// Where generated frames go, one at a time, in time order.
pub trait FrameSink {
    /// Stores one complete frame captured at `ts_ns`; returns the time as stored (at the
    /// file's resolution), which is what the ground truth records.
    fn accept(&mut self, ts_ns: i64, frame: &[u8]) -> io::Result<i64>;
}

impl<W: Write> FrameSink for PcapWriter<W> {
    /// Stores microseconds, as the generator's pcap files do.
    fn accept(&mut self, ts_ns: i64, frame: &[u8]) -> io::Result<i64> {
        self.write_frame(ts_ns, frame, frame.len() as u32)?;
        Ok(ts_ns - ts_ns.rem_euclid(NS_PER_MICRO))
    }
}

const NS_PER_MICRO: i64 = 1_000;

/// A pcapng section with a nanosecond interface 0 and a microsecond interface 1 that frames go
/// to in turn.
struct Alternating<W: Write> {
    writer: PcapngWriter<W>,
    next_interface: u32,
    /// Time of the last stored frame.
    last_ns: i64,
}

impl<W: Write> FrameSink for Alternating<W> {
    /// Truncating a time to microseconds could put a frame before the nanosecond-stamped frame
    /// just stored on the other interface; such a frame is stamped at the next microsecond
    /// instead, so the file never steps back in time.
    fn accept(&mut self, ts_ns: i64, frame: &[u8]) -> io::Result<i64> {
        let interface = self.next_interface;
        self.next_interface = 1 - interface;
        let mut stored = ts_ns.max(self.last_ns);
        if interface == 1 {
            let remainder = stored.rem_euclid(NS_PER_MICRO);
            stored -= remainder;
            if stored < self.last_ns {
                stored += NS_PER_MICRO;
            }
        }
        self.writer.write_packet(interface, stored, frame, frame.len() as u32)?;
        self.last_ns = stored;
        Ok(stored)
    }
}

/// Inserts VLAN tags into every frame before passing it on.
struct VlanTagging<'a> {
    inner: &'a mut dyn FrameSink,
    tagged: Vec<u8>,
}

impl FrameSink for VlanTagging<'_> {
    fn accept(&mut self, ts_ns: i64, frame: &[u8]) -> io::Result<i64> {
        let (Some(addresses), Some(rest)) = (frame.get(..12), frame.get(12..)) else {
            // Too short to carry an Ethernet header: nothing to tag.
            return self.inner.accept(ts_ns, frame);
        };
        self.tagged.clear();
        self.tagged.extend_from_slice(addresses);
        vlan_tags_for(addresses, rest).write(&mut self.tagged);
        self.tagged.extend_from_slice(rest);
        self.inner.accept(ts_ns, &self.tagged)
    }
}

/// The tags of a frame in the tagged scenario, from its two MAC addresses so that both
/// directions of a conversation share a VLAN: eight customer VLANs (101 to 108); ARP and a
/// quarter of the hosts sit behind a QinQ service tag 3000.
///
/// `addresses` are the frame's first 12 bytes (destination and source MAC), `rest` what follows.
fn vlan_tags_for(addresses: &[u8], rest: &[u8]) -> VlanTags {
    let (dst, src) = addresses.split_at(6);
    let host_mac = dst.max(src);
    let key = usize::from(host_mac[4]) ^ usize::from(host_mac[5]);
    let vid = 101 + (key % 8) as u16;
    let is_arp = rest.starts_with(&ETHERTYPE_ARP.to_be_bytes());
    if is_arp || key % 4 == 0 {
        VlanTags::QinQ { outer: 3000, inner: vid }
    } else {
        VlanTags::Dot1q { vid }
    }
}

/// Writes `traffic` into `sink` (tagging it if asked) and counts it.
fn record(traffic: &mut Traffic, vlan_tagged: bool, sink: &mut dyn FrameSink) -> io::Result<Tally> {
    let mut tally = Tally::new(traffic.attacks.len());
    let mut tagging;
    let sink: &mut dyn FrameSink = if vlan_tagged {
        tagging = VlanTagging { inner: sink, tagged: Vec::with_capacity(4096) };
        &mut tagging
    } else {
        sink
    };
    merge(&mut traffic.sources, |time, role, frame| {
        let stored = sink.accept(time, frame)?;
        tally.count(stored, role, frame);
        Ok(())
    })?;
    Ok(tally)
}

/// A gzip stream with a header that does not depend on the time or the machine.
fn gzip(out: BufWriter<File>) -> GzEncoder<BufWriter<File>> {
    GzBuilder::new().mtime(0).operating_system(GZIP_OS_UNKNOWN).write(out, Compression::best())
}

/// A classic pcap writer (microseconds, Ethernet) on `out`.
fn pcap<W: Write>(out: W) -> io::Result<PcapWriter<W>> {
    PcapWriter::new(out, LINK_ETHERNET, SNAPLEN, TsResolution::Micro)
}

/// A pcapng section on `out` with two Ethernet interfaces: nanosecond, then microsecond.
fn pcapng<W: Write>(out: W) -> io::Result<Alternating<W>> {
    let mut writer = PcapngWriter::new(out)?;
    writer.add_interface(LINK_ETHERNET, SNAPLEN, TsResolution::Nano)?;
    writer.add_interface(LINK_ETHERNET, SNAPLEN, TsResolution::Micro)?;
    Ok(Alternating { writer, next_interface: 0, last_ns: i64::MIN })
}

/// Writes the capture file of `scenario` to `path`.
fn write_capture(scenario: &Scenario, traffic: &mut Traffic, path: &Path) -> io::Result<Tally> {
    let out = BufWriter::new(File::create(path)?);
    let tagged = scenario.vlan_tagged;
    let (tally, mut out) = match scenario.container {
        Container::Pcap => {
            let mut writer = pcap(out)?;
            (record(traffic, tagged, &mut writer)?, writer.into_inner()?)
        }
        Container::PcapGz => {
            let mut writer = pcap(gzip(out))?;
            (record(traffic, tagged, &mut writer)?, writer.into_inner()?.finish()?)
        }
        Container::Pcapng => {
            let mut sink = pcapng(out)?;
            (record(traffic, tagged, &mut sink)?, sink.writer.into_inner()?)
        }
        Container::PcapngGz => {
            let mut sink = pcapng(gzip(out))?;
            (record(traffic, tagged, &mut sink)?, sink.writer.into_inner()?.finish()?)
        }
    };
    out.flush()?;
    Ok(tally)
}

/// What the ground truth says generated the files.
fn generator_note() -> String {
    format!("capgen all (deterministic, seed {SEED})")
}

/// Writes the capture of `scenario` and its ground truth into `dir`; returns both paths.
pub fn write_scenario(scenario: &Scenario, dir: &Path) -> io::Result<Vec<PathBuf>> {
    let file = format!("{}.{}", scenario.name, scenario.container.extension());
    let capture_path = dir.join(&file);
    let mut traffic = (scenario.build)();
    let tally = write_capture(scenario, &mut traffic, &capture_path)?;
    let facts = FileFacts {
        file,
        scenario: scenario.name.to_owned(),
        generator: generator_note(),
        description: scenario.description.to_owned(),
        format: scenario.container,
        link_type: LINK_ETHERNET,
    };
    let truth = GroundTruth::new(facts, &traffic.attacks, tally);
    let mut json = serde_json::to_string_pretty(&truth).map_err(io::Error::other)?;
    json.push('\n');
    let truth_path = dir.join(format!("{}.json", scenario.name));
    std::fs::write(&truth_path, json)?;
    Ok(vec![capture_path, truth_path])
}

/// Writes every scenario into `dir` (which must exist); returns the paths written.
pub fn write_all(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut written = Vec::new();
    for scenario in &SCENARIOS {
        written.extend(write_scenario(scenario, dir)?);
    }
    Ok(written)
}
