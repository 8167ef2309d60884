//! Sources of frames: capture files and live interfaces.
//!
//! Every source hands out [`Frame`]s: a borrowed view of one captured frame with its
//! timestamp, link type and original (wire) length. Nothing here allocates per frame:
//! a frame borrows the reader's buffer until the next call.

mod file;
// unsafe: sockets, ioctls and the kernel's mapped receive ring.
#[allow(unsafe_code)]
pub mod live;
// unsafe: mmap and the SIGBUS handler.
#[allow(unsafe_code)]
mod mapped;
mod pcap;
mod pcapng;

pub use file::FileSource;

use std::fmt;

/// A link-layer header type, as numbered by tcpdump.org's LINKTYPE_ registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LinkType(pub u16);

impl LinkType {
    pub const NULL: LinkType = LinkType(0);
    pub const ETHERNET: LinkType = LinkType(1);
    /// Raw IP as numbered on some BSDs (DLT_RAW 12 / 14).
    pub const RAW_BSD12: LinkType = LinkType(12);
    pub const RAW_BSD14: LinkType = LinkType(14);
    pub const RAW: LinkType = LinkType(101);
    /// BSD loopback with the address family in network byte order.
    pub const LOOP: LinkType = LinkType(108);
    pub const LINUX_SLL: LinkType = LinkType(113);
    pub const NFLOG: LinkType = LinkType(239);
    pub const LINUX_SLL2: LinkType = LinkType(276);
}

/// One captured frame, borrowed from the source's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Capture time in nanoseconds since the Unix epoch (may be negative or odd in damaged files).
    pub ts_ns: i64,
    /// Length of the frame on the wire; at least `data.len()`.
    pub wire_len: u32,
    pub link: LinkType,
    /// The captured bytes (possibly cut short by the snap length).
    pub data: &'a [u8],
}

/// Why a capture could not be read further.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureErrorKind {
    /// The file could not be opened (missing, no permission, ...).
    Open(String),
    /// The file could not be read.
    Io(String),
    /// The first bytes are neither pcap, pcapng nor gzip.
    UnknownFormat { magic: [u8; 4] },
    /// The file ends inside a header or a record.
    Truncated { needed: u64, available: u64 },
    /// A header or record that cannot be right (absurd length, bad block, bad magic).
    Corrupt(String),
    /// A link type floodwatch cannot decode.
    UnsupportedLinkType(u32),
}

/// An error while reading a capture, naming the file and the byte offset where it happened.
///
/// For gzip-compressed files the offset counts decompressed bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureError {
    pub path: String,
    pub offset: u64,
    pub kind: CaptureErrorKind,
}

impl CaptureError {
    /// A truncated file lost only its last, partial record; everything before was read.
    pub fn is_truncation(&self) -> bool {
        matches!(self.kind, CaptureErrorKind::Truncated { .. })
    }
}

impl fmt::Display for CaptureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let CaptureError { path, offset, kind } = self;
        match kind {
            CaptureErrorKind::Open(e) => {
                write!(f, "{path}: cannot open: {e} (check the path, and that this user may read the file)")
            }
            CaptureErrorKind::Io(e) => write!(f, "{path}: read error at byte offset {offset}: {e}"),
            CaptureErrorKind::UnknownFormat { magic } => write!(
                f,
                "{path}: not a pcap, pcapng or gzip file (first bytes {:02x} {:02x} {:02x} {:02x})",
                magic[0], magic[1], magic[2], magic[3]
            ),
            CaptureErrorKind::Truncated { needed, available } => write!(
                f,
                "{path}: truncated at byte offset {offset}: the record needs {needed} bytes, only {available} remain"
            ),
            CaptureErrorKind::Corrupt(what) => {
                write!(f, "{path}: corrupt at byte offset {offset}: {what}")
            }
            CaptureErrorKind::UnsupportedLinkType(lt) => write!(
                f,
                "{path}: unsupported link type {lt} at byte offset {offset} (supported: 0, 1, 12, 14, 101, 108, 113, 239, 276)"
            ),
        }
    }
}

impl std::error::Error for CaptureError {}
