//! `--timeline FILE`: what each watched victim received, second by second, for the incident
//! report's charts (`floodwatch report`). One JSON line per second per victim the analyzer
//! watches (from a quarter of its threshold on, until it has been calm for a window), the
//! busiest [`MAX_VICTIMS_PER_SECOND`] of them, e.g.
//!
//! ```text
//! {"second":1768478403,"victim":"192.0.2.50","packets":{"udp":1000},"bytes":{"udp":999666}}
//! ```
//!
//! Read from the analyzer's summaries of its seconds (`Analyzer::record_seconds`), so a
//! line is written once its second is complete. Prefixes (carpet bombing) have no timeline:
//! their charts come from their alerts.

use crate::analyze::summary::{cell, SecondSummary};
use crate::analyze::Class;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// At most this many victims per second: a timeline grows by at most ~20 KiB per second.
pub const MAX_VICTIMS_PER_SECOND: usize = 100;

/// One victim's second.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimelineRecord {
    /// Unix seconds (packet time) of the second's start.
    pub second: i64,
    pub victim: IpAddr,
    /// Packets and bytes of the second by traffic class (`Class::name`), those above zero.
    pub packets: BTreeMap<String, u64>,
    pub bytes: BTreeMap<String, u64>,
}

impl TimelineRecord {
    /// The watched victims of a summary, busiest first.
    pub fn of_summary(s: &SecondSummary) -> impl Iterator<Item = TimelineRecord> + '_ {
        s.victims.iter().filter(|v| !v.watches.is_empty()).take(MAX_VICTIMS_PER_SECOND).map(move |v| {
            let (mut packets, mut bytes) = (BTreeMap::new(), BTreeMap::new());
            for &(index, n) in &v.cells {
                let index = usize::from(index);
                if let Some(c) = Class::ALL.get(index) {
                    packets.insert(c.name().to_string(), n);
                } else if let Some(c) = index.checked_sub(cell::BYTES).and_then(|i| Class::ALL.get(i)) {
                    bytes.insert(c.name().to_string(), n);
                }
            }
            TimelineRecord { second: s.second, victim: v.victim.to_ip(), packets, bytes }
        })
    }
}

pub struct TimelineWriter {
    path: PathBuf,
    out: BufWriter<File>,
    records: u64,
    /// The first write that failed: the timeline stops there, and says so at the end.
    failed: Option<io::Error>,
}

impl TimelineWriter {
    pub fn create(path: &Path) -> io::Result<TimelineWriter> {
        let out = BufWriter::new(File::create(path)?);
        Ok(TimelineWriter { path: path.to_path_buf(), out, records: 0, failed: None })
    }

    pub fn write(&mut self, s: &SecondSummary) {
        if self.failed.is_some() {
            return;
        }
        for record in TimelineRecord::of_summary(s) {
            let line = serde_json::to_string(&record).unwrap_or_default();
            if let Err(e) = writeln!(self.out, "{line}") {
                self.failed = Some(e);
                return;
            }
            self.records += 1;
        }
    }

    /// Flushes; the records written, or why the timeline is incomplete.
    pub fn finish(mut self) -> Result<u64, String> {
        if self.failed.is_none() {
            self.failed = self.out.flush().err();
        }
        match self.failed {
            None => Ok(self.records),
            Some(e) => Err(format!("timeline {}: {e} (after {} records)", self.path.display(), self.records)),
        }
    }
}

/// The records of a timeline file; a line that is not one is an error naming it.
pub fn read(path: &Path) -> Result<Vec<TimelineRecord>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| serde_json::from_str(line).map_err(|e| format!("{} line {}: {e}", path.display(), n + 1)))
        .collect()
}
