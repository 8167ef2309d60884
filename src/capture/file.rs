//! Capture files: classic pcap or pcapng, optionally gzip-compressed, recognised by content.
//!
//! All parsing runs over one reusable buffer. A frame borrows that buffer until the next call,
//! so reading costs no allocation and no copy per frame, and one `read` call per 256 KiB.
//! When a record straddles the end of the buffer, the unread tail moves to the front and the
//! rest is read behind it; the buffer grows only when a single record is larger than it, and
//! never beyond [`MAX_RECORD_LEN`] (plus a record header).
//!
//! Lengths in the file are never trusted for allocation beyond that cap: a record or block
//! claiming more is reported as corrupt.

use std::fmt;
use std::fs::File;
use std::io::{self, Read};

use std::os::unix::fs::FileExt;

use flate2::read::MultiGzDecoder;

use super::mapped::Mapping;
use super::{pcap, pcapng, CaptureError, CaptureErrorKind, Frame};

/// Initial read buffer: large enough that refills (one `read` each) are rare, small enough to
/// stay in L2 cache between the kernel's copy and the parse, next to the analyzer's tables
/// (measured on bench_mix: 1 MiB was ~20% faster than 4 MiB, 256 KiB ~5% faster than 1 MiB).
const DEFAULT_BUFFER_LEN: usize = 1 << 18;
/// The most any single record or block may claim; larger claims are corrupt.
pub(super) const MAX_RECORD_LEN: usize = 16 << 20;
/// The most the buffer ever grows to: the largest record plus room for its header.
const MAX_BUFFER_LEN: usize = MAX_RECORD_LEN + 64;
/// Bytes needed to recognise a format.
const MAGIC_LEN: usize = 4;
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// The link types the decoder understands.
pub(super) fn is_supported_link(link: u16) -> bool {
    matches!(link, 0 | 1 | 12 | 14 | 101 | 108 | 113 | 239 | 276)
}

/// Reads a 32-bit field in the file's byte order.
#[inline(always)]
pub(super) fn u32_from(big_endian: bool, b: [u8; 4]) -> u32 {
    if big_endian {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    }
}

/// Reads a 16-bit field in the file's byte order.
#[inline(always)]
pub(super) fn u16_from(big_endian: bool, b: [u8; 2]) -> u16 {
    if big_endian {
        u16::from_be_bytes(b)
    } else {
        u16::from_le_bytes(b)
    }
}

/// An error before the path is attached (the parsers do not know it).
#[derive(Debug)]
pub(super) struct Fail {
    pub(super) offset: u64,
    pub(super) kind: CaptureErrorKind,
}

impl Fail {
    pub(super) fn corrupt(offset: u64, what: String) -> Fail {
        Fail { offset, kind: CaptureErrorKind::Corrupt(what) }
    }

    pub(super) fn truncated(offset: u64, needed: usize, available: usize) -> Fail {
        Fail { offset, kind: CaptureErrorKind::Truncated { needed: needed as u64, available: available as u64 } }
    }

    fn with_path(self, path: &str) -> CaptureError {
        CaptureError { path: path.to_string(), offset: self.offset, kind: self.kind }
    }
}

/// Counts the bytes taken from the file, for progress on compressed input.
struct Counting<R> {
    inner: R,
    count: u64,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.count = self.count.saturating_add(n as u64);
        Ok(n)
    }
}

type RawReader = Counting<Box<dyn Read + Send>>;

enum Source {
    Plain(RawReader),
    /// The bytes read while sniffing the magic are replayed in front of the rest of the file.
    Gzip(Box<MultiGzDecoder<io::Chain<io::Cursor<Vec<u8>>, RawReader>>>),
}

impl Source {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(r) => r.read(buf),
            Source::Gzip(r) => r.read(buf),
        }
    }
}

fn read_error(source: &Source, e: &io::Error, offset: u64) -> Fail {
    let kind = match (source, e.kind()) {
        // A garbled gzip stream is damage in the file, not an I/O failure.
        (Source::Gzip(_), io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput) => {
            CaptureErrorKind::Corrupt(format!("bad gzip data: {e}"))
        }
        _ => CaptureErrorKind::Io(e.to_string()),
    };
    Fail { offset, kind }
}

/// Where the bytes come from.
enum Backing {
    /// Read into a buffer: pipes, gzip, and files that cannot be mapped.
    Read { buf: Vec<u8>, source: Source },
    /// The whole file, mapped (see [`mapped`](super::mapped)).
    Mapped(Mapping),
}

/// The bytes of the (decompressed) stream: a read buffer, or the mapped file.
///
/// Invariant: `pos <= end <= bytes().len()`. `bytes()[pos..end]` is available but not yet consumed.
pub(super) struct Input {
    backing: Backing,
    pos: usize,
    end: usize,
    /// Stream offset of `bytes()[0]`.
    base: u64,
    eof: bool,
}

impl Input {
    fn new(reader: Box<dyn Read + Send>, buffer_len: usize) -> Input {
        Input {
            backing: Backing::Read {
                buf: vec![0; buffer_len.clamp(MAGIC_LEN, MAX_BUFFER_LEN)],
                source: Source::Plain(Counting { inner: reader, count: 0 }),
            },
            pos: 0,
            end: 0,
            base: 0,
            eof: false,
        }
    }

    fn mapped(mapping: Mapping) -> Input {
        let end = mapping.bytes().len();
        Input { backing: Backing::Mapped(mapping), pos: 0, end, base: 0, eof: false }
    }

    #[inline]
    fn bytes(&self) -> &[u8] {
        match &self.backing {
            Backing::Read { buf, .. } => buf,
            Backing::Mapped(m) => m.bytes(),
        }
    }

    /// Stream offset of the next unconsumed byte (decompressed bytes for gzip).
    #[inline]
    pub(super) fn offset(&self) -> u64 {
        self.base + self.pos as u64
    }

    #[inline]
    pub(super) fn available(&self) -> usize {
        self.end - self.pos
    }

    /// Whether more bytes come from reads that may wait (a pipe, a terminal, a gzip stream).
    #[inline]
    pub(super) fn is_stream(&self) -> bool {
        matches!(self.backing, Backing::Read { .. })
    }

    /// The bytes read but not consumed.
    #[inline]
    pub(super) fn rest(&self) -> &[u8] {
        self.bytes().get(self.pos..self.end).unwrap_or_default()
    }

    /// A copy of the next `N` bytes, if buffered.
    #[inline]
    pub(super) fn peek<const N: usize>(&self) -> Option<[u8; N]> {
        self.rest().first_chunk::<N>().copied()
    }

    /// Consumes `len` buffered bytes and returns them; `None` if fewer are buffered.
    #[inline]
    pub(super) fn take(&mut self, len: usize) -> Option<&[u8]> {
        let start = self.pos;
        let stop = start.checked_add(len).filter(|&stop| stop <= self.end && stop <= self.bytes().len())?;
        self.pos = stop;
        self.bytes().get(start..stop)
    }

    /// Makes at least `n` bytes available; `Ok(false)` if the stream ends first.
    /// Errors carry the current offset, which callers keep at the start of a record.
    /// For a mapped file, the `n` bytes are also checked to be the file's content (see
    /// [`Mapping::readable`]): a file cut while mapped ends where it was cut.
    #[inline]
    pub(super) fn ensure(&mut self, n: usize) -> Result<bool, Fail> {
        if self.available() < n {
            return self.fill(n);
        }
        if let Backing::Mapped(m) = &mut self.backing {
            if !m.readable(self.pos, self.pos + n) {
                return self.cut_short(n);
            }
            m.release_before(self.pos);
        }
        Ok(true)
    }

    /// A fault under the mapped file: the stream ends where its content ends when the file
    /// was cut; a page the kernel could not read is an I/O error.
    #[cold]
    #[inline(never)]
    fn cut_short(&mut self, n: usize) -> Result<bool, Fail> {
        if let Backing::Mapped(m) = &self.backing {
            match m.length_after_fault() {
                Some(content) => self.end = self.end.min(content).max(self.pos),
                None => {
                    let kind = CaptureErrorKind::Io("a page of the mapped file could not be read".to_string());
                    return Err(Fail { offset: self.offset(), kind });
                }
            }
        }
        self.eof = true;
        Ok(self.available() >= n)
    }

    #[cold]
    #[inline(never)]
    fn fill(&mut self, n: usize) -> Result<bool, Fail> {
        let (buf, source) = match &mut self.backing {
            Backing::Read { buf, source } => (buf, source),
            Backing::Mapped(m) => {
                // The end of the mapping: more only if the file grew since.
                if !self.eof && m.grow() {
                    self.end = m.bytes().len();
                    return self.ensure(n);
                }
                self.eof = true;
                return Ok(false);
            }
        };
        // Move the unread tail to the front, so each read can fill the rest of the buffer.
        if self.pos > 0 {
            buf.copy_within(self.pos..self.end, 0);
            self.base += self.pos as u64;
            self.end -= self.pos;
            self.pos = 0;
        }
        if buf.len() < n {
            // Callers cap `n`; the clamp keeps a bug from becoming a huge allocation.
            let grown = n.max(buf.len().saturating_mul(2)).min(MAX_BUFFER_LEN);
            buf.resize(grown, 0);
        }
        while self.end < n && !self.eof {
            let Some(space) = buf.get_mut(self.end..) else {
                break;
            };
            if space.is_empty() {
                break;
            }
            match source.read(space) {
                Ok(0) => self.eof = true,
                Ok(read) => self.end += read.min(space.len()),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A cut gzip stream is a truncated capture: report it as one.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && matches!(source, Source::Gzip(_)) => {
                    self.eof = true;
                    if self.end == 0 {
                        // Callers read "nothing left" as a clean end; this one is not.
                        return Err(Fail::truncated(self.base + self.pos as u64, n, 0));
                    }
                }
                Err(e) => return Err(read_error(source, &e, self.base + self.pos as u64)),
            }
        }
        Ok(self.end >= n)
    }

    /// Restarts the stream as the decompression of what was read so far plus the rest.
    /// (Gzip files are never mapped: their first bytes are checked before mapping.)
    fn switch_to_gzip(&mut self) {
        let sniffed = self.rest().to_vec();
        let Backing::Read { source, .. } = &mut self.backing else {
            return;
        };
        let placeholder = Source::Plain(Counting { inner: Box::new(io::empty()), count: 0 });
        let raw = match std::mem::replace(source, placeholder) {
            Source::Plain(raw) => raw,
            gzip @ Source::Gzip(_) => {
                *source = gzip;
                return;
            }
        };
        let chained = io::Cursor::new(sniffed).chain(raw);
        *source = Source::Gzip(Box::new(MultiGzDecoder::new(chained)));
        self.pos = 0;
        self.end = 0;
        self.base = 0;
        self.eof = false;
    }

    /// Bytes taken from the underlying file.
    fn consumed(&self) -> u64 {
        match &self.backing {
            Backing::Read { source: Source::Gzip(d), .. } => d.get_ref().get_ref().1.count,
            Backing::Read { source: Source::Plain(_), .. } | Backing::Mapped(_) => self.offset(),
        }
    }

    /// The format's name with how it is read, for `Debug`.
    fn describe(&self, format: &'static str) -> String {
        match &self.backing {
            Backing::Read { source: Source::Gzip(_), .. } => format!("{format}.gz"),
            Backing::Read { source: Source::Plain(_), .. } => format.to_string(),
            Backing::Mapped(_) => format!("{format} (mapped)"),
        }
    }
}

/// A capture format's record parser.
pub(super) trait RecordReader {
    /// Reads the next record, handing its frame to `each` if it carries one (a pcapng
    /// interface block does not): Ok(false) at a clean end of file.
    fn next_into(&mut self, input: &mut Input, each: &mut impl FnMut(&Frame<'_>)) -> Result<bool, Fail>;
    /// Whether the next record is wholly buffered, so reading it cannot wait for input.
    fn next_is_buffered(&self, input: &Input) -> bool;
}

/// Whether reading `reader`'s next record may wait for input: the input is read rather than
/// mapped and that record is not wholly in the buffer.
#[inline]
fn would_wait<R: RecordReader>(reader: &R, input: &Input) -> bool {
    input.is_stream() && !reader.next_is_buffered(input)
}

/// Up to `max` records of `reader` into `each`, until `each` returns false; Ok(false) at the
/// end of the file. Only the first record may wait for input: after it, a record not wholly
/// buffered ends the call.
#[inline]
fn pump<R: RecordReader>(
    reader: &mut R,
    input: &mut Input,
    max: usize,
    each: &mut impl FnMut(&Frame<'_>) -> bool,
) -> Result<bool, Fail> {
    let mut wanted = true;
    for i in 0..max {
        if !wanted || (i > 0 && would_wait(reader, input)) {
            return Ok(true);
        }
        if !reader.next_into(input, &mut |frame| wanted = each(frame))? {
            return Ok(false);
        }
    }
    Ok(true)
}

enum Format {
    Pcap(pcap::Reader),
    PcapNg(pcapng::Reader),
    /// End of file reached or an error returned.
    Done,
}

/// One capture file (pcap or pcapng, optionally gzip-compressed), recognised by content.
///
/// Error offsets count bytes of the capture itself: for gzip-compressed files they are
/// offsets in the decompressed stream. A gzip stream cut short is reported as
/// [`CaptureErrorKind::Truncated`] (like a cut pcap), a garbled one (bad header, bad deflate
/// data, bad checksum) as [`CaptureErrorKind::Corrupt`]. An empty input, or one shorter than
/// four bytes, is reported as [`CaptureErrorKind::UnknownFormat`] with the bytes present and
/// zeros for the rest.
pub struct FileSource {
    name: String,
    input: Input,
    format: Format,
    size: Option<u64>,
}

impl fmt::Debug for FileSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let format = match &self.format {
            Format::Done => "finished".to_string(),
            Format::Pcap(_) => self.input.describe("pcap"),
            Format::PcapNg(_) => self.input.describe("pcapng"),
        };
        f.debug_struct("FileSource")
            .field("name", &self.name)
            .field("format", &format)
            .field("offset", &self.input.offset())
            .finish()
    }
}

impl FileSource {
    /// Opens `path`; "-" reads standard input. Reads the header(s); errors name the path and byte offset.
    pub fn open(path: &str) -> Result<FileSource, CaptureError> {
        if path == "-" {
            return Self::with_buffer(path, Box::new(io::stdin()), None, DEFAULT_BUFFER_LEN);
        }
        let open_error = |e: io::Error| CaptureError {
            path: path.to_string(),
            offset: 0,
            kind: CaptureErrorKind::Open(e.to_string()),
        };
        let file = File::open(path).map_err(open_error)?;
        let size = file.metadata().ok().filter(|m| m.is_file()).map(|m| m.len());
        let mut magic = [0u8; GZIP_MAGIC.len()];
        let gzip = file.read_exact_at(&mut magic, 0).is_ok() && magic == GZIP_MAGIC;
        if !gzip {
            if let Some(mapping) = Mapping::new(&file) {
                let mut input = Input::mapped(mapping);
                let format = Self::detect(&mut input).map_err(|f| f.with_path(path))?;
                return Ok(FileSource { name: path.to_string(), input, format, size });
            }
        }
        Self::with_buffer(path, Box::new(file), size, DEFAULT_BUFFER_LEN)
    }

    /// Same over any reader (used by tests and fuzzing); `name` is used in errors.
    pub fn from_reader(name: &str, reader: Box<dyn Read + Send>) -> Result<FileSource, CaptureError> {
        Self::with_buffer(name, reader, None, DEFAULT_BUFFER_LEN)
    }

    /// As [`FileSource::from_reader`] with a chosen initial buffer size, so tests can drive
    /// the refill and growth paths with small inputs.
    pub(crate) fn with_buffer(
        name: &str,
        reader: Box<dyn Read + Send>,
        size: Option<u64>,
        buffer_len: usize,
    ) -> Result<FileSource, CaptureError> {
        let mut input = Input::new(reader, buffer_len);
        let format = Self::detect(&mut input).map_err(|f| f.with_path(name))?;
        Ok(FileSource { name: name.to_string(), input, format, size })
    }

    fn detect(input: &mut Input) -> Result<Format, Fail> {
        input.ensure(MAGIC_LEN)?;
        if input.rest().starts_with(&GZIP_MAGIC) {
            input.switch_to_gzip();
            input.ensure(MAGIC_LEN)?;
        }
        let mut magic = [0u8; MAGIC_LEN];
        for (m, b) in magic.iter_mut().zip(input.rest()) {
            *m = *b;
        }
        if pcap::is_magic(magic) {
            Ok(Format::Pcap(pcap::Reader::open(input)?))
        } else if pcapng::is_magic(magic) {
            Ok(Format::PcapNg(pcapng::Reader::open(input)?))
        } else {
            Err(Fail { offset: 0, kind: CaptureErrorKind::UnknownFormat { magic } })
        }
    }

    /// Reads up to `max` records, handing their frames to `each` until it returns false (it
    /// wants no more): Ok(true) when more may follow, Ok(false) at a clean end of file.
    /// After an Err, the source is finished.
    /// Once it has read a record, it returns early rather than wait for input (see
    /// [`FileSource::next_would_wait`]), so a caller can pass on what it has first.
    /// The loop runs inside the format's reader, so a frame reaches `each` without a
    /// round trip through a returned `Result` (in the profile, a store-forwarding stall per
    /// packet, about a tenth of replay's capture thread).
    #[inline]
    pub fn read_frames(&mut self, max: usize, mut each: impl FnMut(&Frame<'_>) -> bool) -> Result<bool, CaptureError> {
        let result = match &mut self.format {
            Format::Pcap(r) => pump(r, &mut self.input, max, &mut each),
            Format::PcapNg(r) => pump(r, &mut self.input, max, &mut each),
            Format::Done => return Ok(false),
        };
        match result {
            Ok(true) => Ok(true),
            Ok(false) => {
                self.format = Format::Done;
                Ok(false)
            }
            Err(fail) => {
                self.format = Format::Done;
                Err(fail.with_path(&self.name))
            }
        }
    }

    /// Whether reading the next record may wait for input: the input is read rather than
    /// mapped (a pipe, a terminal, a gzip stream, a file that cannot be mapped) and that
    /// record is not wholly in the buffer.
    pub fn next_would_wait(&self) -> bool {
        match &self.format {
            Format::Pcap(r) => would_wait(r, &self.input),
            Format::PcapNg(r) => would_wait(r, &self.input),
            Format::Done => false,
        }
    }

    /// The name given at open (path or "-").
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Bytes of the underlying file consumed so far and the file size when known (for a
    /// progress bar; for gzip, compressed bytes read vs compressed size).
    pub fn progress(&self) -> (u64, Option<u64>) {
        (self.input.consumed(), self.size)
    }
}

#[cfg(test)]
pub(super) mod test_util {
    //! Builders for small capture files and a reader that drains a source.

    use super::FileSource;
    use crate::capture::{CaptureError, LinkType};
    use std::io::{self, Read};

    /// One frame as owned values, for comparing.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct Owned {
        pub ts_ns: i64,
        pub wire_len: u32,
        pub link: LinkType,
        pub data: Vec<u8>,
    }

    /// The next frame, copied; Ok(None) at a clean end of file.
    pub fn next_owned(src: &mut FileSource) -> Result<Option<Owned>, CaptureError> {
        let mut frame = None;
        while frame.is_none()
            && src.read_frames(usize::MAX, |f| {
                frame = Some(Owned { ts_ns: f.ts_ns, wire_len: f.wire_len, link: f.link, data: f.data.to_vec() });
                false
            })?
        {}
        Ok(frame)
    }

    /// Reads to the end; returns the frames and the error that ended the file, if any.
    pub fn read_all(src: &mut FileSource) -> (Vec<Owned>, Option<CaptureError>) {
        let mut frames = Vec::new();
        loop {
            match next_owned(src) {
                Ok(Some(f)) => frames.push(f),
                Ok(None) => return (frames, None),
                Err(e) => {
                    // A finished source stays finished.
                    assert!(matches!(next_owned(src), Ok(None)));
                    return (frames, Some(e));
                }
            }
        }
    }

    /// Opens `bytes` with the given initial buffer size.
    pub fn open_with(bytes: &[u8], buffer_len: usize) -> Result<FileSource, CaptureError> {
        FileSource::with_buffer("test", Box::new(io::Cursor::new(bytes.to_vec())), None, buffer_len)
    }

    pub fn open(bytes: &[u8]) -> Result<FileSource, CaptureError> {
        FileSource::from_reader("test", Box::new(io::Cursor::new(bytes.to_vec())))
    }

    /// Opens and reads everything; panics if the header is rejected.
    pub fn read_bytes(bytes: &[u8], buffer_len: usize) -> (Vec<Owned>, Option<CaptureError>) {
        match open_with(bytes, buffer_len) {
            Ok(mut src) => read_all(&mut src),
            Err(e) => panic!("open failed: {e}"),
        }
    }

    /// A reader handing out at most `chunk` bytes per call, with an `Interrupted` between
    /// calls, like a slow pipe.
    pub struct Trickle {
        pub data: Vec<u8>,
        pub pos: usize,
        pub chunk: usize,
        pub interrupt: bool,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.interrupt = !self.interrupt;
            if self.interrupt {
                return Err(io::Error::from(io::ErrorKind::Interrupted));
            }
            let rest = self.data.get(self.pos..).unwrap_or_default();
            let n = rest.len().min(buf.len()).min(self.chunk);
            buf[..n].copy_from_slice(&rest[..n]);
            self.pos += n;
            Ok(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{open, open_with, read_all, read_bytes, Owned};
    use super::FileSource;
    use crate::capture::{CaptureError, CaptureErrorKind, LinkType};
    use capgen::hand::{PcapBytes, PcapngBytes};
    use capgen::rng::Rng;
    use flate2::{write::GzEncoder, Compression};
    use std::io::Write;

    /// A pipe that holds `bytes` now and then would wait: reading it again fails the test.
    struct PipeThenWait {
        bytes: Vec<u8>,
        given: bool,
    }

    impl std::io::Read for PipeThenWait {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            assert!(!self.given, "the reader waited for input with frames not handed on");
            self.given = true;
            buf[..self.bytes.len()].copy_from_slice(&self.bytes);
            Ok(self.bytes.len())
        }
    }

    #[test]
    fn a_stream_hands_on_its_buffered_frames_before_it_waits() {
        let mut pcap = PcapBytes::new(false, false, 65535, 1);
        let mut ng = PcapngBytes::new();
        ng.shb(false);
        ng.idb(1, 65535, None, None);
        for i in 0..3u8 {
            pcap.record(1, u32::from(i), 60, &[i; 60]);
            ng.epb(0, u64::from(i), 60, &[i; 60]);
        }
        for (name, bytes) in [("pcap", pcap.bytes), ("pcapng", ng.bytes)] {
            // Two whole records and half of the third are in the pipe.
            let cut = bytes.len() - 40;
            let pipe = PipeThenWait { bytes: bytes[..cut].to_vec(), given: false };
            let mut src = FileSource::with_buffer(name, Box::new(pipe), None, 1 << 16).unwrap();
            assert!(!src.next_would_wait(), "{name}: the first two records are buffered");
            let mut frames = Vec::new();
            let more = src
                .read_frames(usize::MAX, |f| {
                    frames.push(f.data[0]);
                    true
                })
                .unwrap();
            assert!(more, "{name}");
            assert_eq!(frames, [0, 1], "{name}");
            assert!(src.next_would_wait(), "{name}: half of the third record is buffered");
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut enc = GzEncoder::new(Vec::new(), Compression::default());
        enc.write_all(bytes).unwrap();
        enc.finish().unwrap()
    }

    fn small_pcap(records: u32) -> Vec<u8> {
        let mut w = PcapBytes::new(false, false, 65535, 1);
        for i in 0..records {
            let data: Vec<u8> = (0..(i % 200) as u8).collect();
            w.record(1_000 + i, i, 1500, &data);
        }
        w.bytes
    }

    fn small_pcapng() -> Vec<u8> {
        let mut w = PcapngBytes::new();
        w.shb(false);
        w.idb(1, 0, None, None);
        w.idb(113, 100, Some(9), Some(5));
        for i in 0..20u32 {
            w.epb(i % 2, u64::from(i) * 1000, 300, &vec![i as u8; i as usize * 7]);
        }
        w.spb(50, &[7; 50]);
        w.shb(true);
        w.idb(101, 0, Some(0x80 | 10), None);
        w.epb(0, 1 << 10, 20, &[1; 20]);
        w.pb(0, 3 << 10, 20, &[2; 20]);
        w.bytes
    }

    #[test]
    fn unknown_magic() {
        let err = open(b"hello, world\n").unwrap_err();
        assert_eq!(err.offset, 0);
        assert_eq!(err.kind, CaptureErrorKind::UnknownFormat { magic: *b"hell" });
        assert!(err.to_string().contains("68 65 6c 6c"), "{err}");
        // A pcap magic in the middle of the first bytes is no pcap.
        assert!(open(&[0, 0xd4, 0xc3, 0xb2, 0xa1, 0, 0, 0]).is_err());
    }

    #[test]
    fn empty_and_tiny_inputs_are_unknown_format() {
        let err = open(&[]).unwrap_err();
        assert_eq!((err.offset, err.kind), (0, CaptureErrorKind::UnknownFormat { magic: [0; 4] }));
        let err = open(&[0xd4, 0xc3, 0xb2]).unwrap_err();
        assert_eq!(err.kind, CaptureErrorKind::UnknownFormat { magic: [0xd4, 0xc3, 0xb2, 0] });
    }

    #[test]
    fn gzip_wrapped_pcap_and_pcapng() {
        for plain in [small_pcap(300), small_pcapng()] {
            let (reference, err) = read_bytes(&plain, 1 << 20);
            assert!(err.is_none());
            let packed = gzip(&plain);
            for buffer in [4, 100, 1 << 20] {
                let mut src = open_with(&packed, buffer).unwrap();
                let (frames, err) = read_all(&mut src);
                assert!(err.is_none(), "{err:?}");
                assert_eq!(frames, reference);
                assert_eq!(src.progress(), (packed.len() as u64, None));
            }
        }
    }

    #[test]
    fn gzip_with_several_members() {
        let plain = small_pcap(50);
        let cut = 24 + 16 + 1;
        let mut packed = gzip(&plain[..cut]);
        packed.extend(gzip(&plain[cut..]));
        let (frames, err) = read_bytes(&packed, 64);
        assert!(err.is_none());
        assert_eq!(frames, read_bytes(&plain, 64).0);
    }

    #[test]
    fn damaged_gzip_reports_an_error_after_good_frames() {
        let plain = small_pcap(2000);
        let packed = gzip(&plain);
        // Cut short: every complete frame before the cut, then an error.
        let err = open(&packed[..12]).unwrap_err();
        assert_eq!((err.offset, err.kind), (0, CaptureErrorKind::Truncated { needed: 4, available: 0 }));
        for cut in [packed.len() / 2, packed.len() - 9] {
            let (frames, err) = read_bytes(&packed[..cut], 1 << 20);
            let err = err.expect("cut gzip must fail");
            assert!(frames.len() <= 2000);
            let at = 24 + frames.iter().map(|f| 16 + f.data.len() as u64).sum::<u64>();
            assert_eq!(err.offset, at);
            assert!(err.is_truncation(), "{err}");
        }
        // Bad checksum: all frames, then an error at the end of the data.
        let mut bad_crc = packed.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 1;
        let (frames, err) = read_bytes(&bad_crc, 1 << 20);
        assert_eq!(frames.len(), 2000);
        let err = err.expect("bad checksum must fail");
        assert_eq!(err.offset, plain.len() as u64);
        // Garbage behind the magic.
        let mut garbage = vec![0x1f, 0x8b, 1];
        garbage.extend([0x55; 40]);
        let err = open(&garbage).unwrap_err();
        assert!(matches!(err.kind, CaptureErrorKind::Corrupt(_)), "{err}");
        // Gzip of something that is not a capture.
        let err = open(&gzip(b"just text")).unwrap_err();
        assert_eq!(err.kind, CaptureErrorKind::UnknownFormat { magic: *b"just" });
    }

    #[test]
    fn open_by_path() {
        let path = std::env::temp_dir().join(format!("floodwatch-capture-test-{}.pcap", std::process::id()));
        let bytes = small_pcap(10);
        std::fs::write(&path, &bytes).unwrap();
        let name = path.to_str().unwrap();
        let result = FileSource::open(name).map(|mut src| {
            let frames = read_all(&mut src);
            (frames, src.progress(), src.name().to_string(), format!("{src:?}"))
        });
        std::fs::remove_file(&path).unwrap();
        let ((frames, err), progress, got_name, debug) = result.unwrap();
        assert!(err.is_none());
        assert_eq!(frames.len(), 10);
        assert_eq!(progress, (bytes.len() as u64, Some(bytes.len() as u64)));
        assert_eq!(got_name, name);
        assert!(debug.contains("finished"), "{debug}");
        let err = FileSource::open("/nonexistent/floodwatch.pcap").unwrap_err();
        assert_eq!((err.path.as_str(), err.offset), ("/nonexistent/floodwatch.pcap", 0));
        assert!(matches!(err.kind, CaptureErrorKind::Open(_)));
    }

    /// Applies a few random edits aimed at lengths and headers.
    fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
        const INTERESTING: [u32; 8] = [0, 1, 12, 0x7fff_ffff, 0xffff_ffff, 0x0100_0000, 0x0a0d_0d0a, 65536];
        for _ in 0..1 + rng.index(4) {
            let len = bytes.len();
            match rng.index(6) {
                0 if len > 0 => {
                    let i = rng.index(len);
                    bytes[i] ^= 1 << rng.index(8);
                }
                1 if len > 0 => {
                    let i = rng.index(len);
                    bytes[i] = rng.next_u64() as u8;
                }
                2 => bytes.truncate(rng.index(len + 1)),
                3 if len >= 4 => {
                    let i = rng.index(len - 3);
                    let v = INTERESTING[rng.index(INTERESTING.len())];
                    let v = if rng.index(2) == 0 { v.to_le_bytes() } else { v.to_be_bytes() };
                    bytes[i..i + 4].copy_from_slice(&v);
                }
                4 => {
                    let i = rng.index(len + 1);
                    let junk: Vec<u8> = (0..rng.index(40)).map(|_| rng.next_u64() as u8).collect();
                    bytes.splice(i..i, junk);
                }
                _ if len > 0 => {
                    let a = rng.index(len);
                    let b = (a + rng.index(200)).min(len);
                    let copy = bytes[a..b].to_vec();
                    let at = rng.index(len + 1);
                    bytes.splice(at..at, copy);
                }
                _ => {}
            }
        }
    }

    /// Reads everything, checking the invariants that must hold for any input.
    fn read_checked(bytes: &[u8], buffer: usize) -> (Vec<Owned>, Option<CaptureError>) {
        let Ok(mut src) = open_with(bytes, buffer) else {
            return (Vec::new(), None);
        };
        let (frames, err) = read_all(&mut src);
        for f in &frames {
            assert!(f.wire_len as usize >= f.data.len());
        }
        (frames, err)
    }

    #[test]
    fn mutated_inputs_never_panic() {
        let mut ng_be = PcapngBytes::new();
        ng_be.shb(true);
        ng_be.idb(276, 0, Some(0x80 | 30), Some(-3));
        ng_be.spb(10, &[1; 10]);
        ng_be.epb(0, 123_456, 40, &[3; 40]);
        let mut seeds = vec![
            small_pcap(20),
            PcapBytes::new(true, true, 100, 113).bytes,
            small_pcapng(),
            ng_be.bytes,
            gzip(&small_pcap(20)),
            gzip(&small_pcapng()),
        ];
        // Real writers' blocks and options too, when the captures are there.
        for file in ["abastin99__normal-1.pcap", "chrissanders__http_espn.pcapng"] {
            if let Ok(bytes) = std::fs::read(format!("{CAPTURES}/{file}")) {
                seeds.push(bytes[..bytes.len().min(16 << 10)].to_vec());
            }
        }
        let mut rng = Rng::new(0x5eed_f100d);
        for round in 0..20_000 {
            let mut bytes = seeds[round % seeds.len()].clone();
            mutate(&mut rng, &mut bytes);
            let buffer = [4, 16, 61, 1 << 20][rng.index(4)];
            let (frames, _) = read_checked(&bytes, buffer);
            // Each frame consumes at least a 12-byte block or a 16-byte record header.
            if bytes.first() != Some(&0x1f) {
                assert!(frames.len() <= bytes.len() / 12);
            }
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(
            magic in 0usize..5,
            body in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            buffer in 4usize..300,
        ) {
            let prefixes: [&[u8]; 5] = [
                &[0xd4, 0xc3, 0xb2, 0xa1],
                &[0xa1, 0xb2, 0x3c, 0x4d],
                &[0x0a, 0x0d, 0x0d, 0x0a],
                &[0x1f, 0x8b],
                &[],
            ];
            let mut bytes = prefixes[magic].to_vec();
            bytes.extend(body);
            let (frames, _) = read_checked(&bytes, buffer);
            proptest::prop_assert!(frames.len() <= bytes.len() / 12 + 1);
        }
    }

    // ---- the real captures in ../shared/captures ----

    const CAPTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/captures");

    /// The value of `"key": ...` after `from` in the manifest text, without quotes.
    fn field<'a>(text: &'a str, key: &str) -> Option<&'a str> {
        let pat = format!("\"{key}\": ");
        let rest = &text[text.find(&pat)? + pat.len()..];
        let value = if let Some(quoted) = rest.strip_prefix('"') {
            &quoted[..quoted.find('"')?]
        } else {
            rest[..rest.find([',', '\n', '}'])?].trim()
        };
        Some(value)
    }

    struct Expect {
        file: String,
        packets: usize,
        duration_s: Option<f64>,
        first: String,
        last: String,
        caplen_lt_len: usize,
        linktype: Option<u16>,
    }

    fn manifest() -> Option<Vec<Expect>> {
        let text = match std::fs::read_to_string(format!("{CAPTURES}/manifest.json")) {
            Ok(t) => t,
            Err(e) => {
                println!("skipping real-capture checks: {CAPTURES}/manifest.json: {e}");
                return None;
            }
        };
        let mut out = Vec::new();
        for entry in text.split("\"file\": \"").skip(1) {
            let file = entry[..entry.find('"').unwrap()].to_string();
            let num = |key: &str| field(entry, key).and_then(|v| v.parse::<usize>().ok());
            out.push(Expect {
                packets: num("packets").unwrap_or_else(|| panic!("{file}: no packets")),
                duration_s: field(entry, "duration_s").and_then(|v| v.parse().ok()),
                first: field(entry, "first_packet_time").unwrap_or("").to_string(),
                last: field(entry, "last_packet_time").unwrap_or("").to_string(),
                caplen_lt_len: num("caplen_lt_len").unwrap_or(0),
                linktype: num("linktype_header").map(|v| v as u16),
                file,
            });
        }
        Some(out)
    }

    /// Days since 1970-01-01 to (year, month, day), proleptic Gregorian.
    fn civil_from_days(days: i64) -> (i64, i64, i64) {
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        (yoe + era * 400 + i64::from(m <= 2), m, d)
    }

    /// `YYYY-MM-DD HH:MM:SS.fff…` in UTC, as capinfos prints it, with `digits` of fraction.
    fn utc(ts_ns: i64, digits: usize) -> String {
        let secs = ts_ns.div_euclid(1_000_000_000);
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400);
        let frac = format!("{:09}", ts_ns.rem_euclid(1_000_000_000));
        format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}.{}", sod / 3600, sod % 3600 / 60, sod % 60, &frac[..digits])
    }

    /// Compares a frame time with a manifest time if the latter is a plain timestamp.
    fn check_time(file: &str, what: &str, ts_ns: i64, expected: &str) {
        let stamp = expected.split(" (").next().unwrap_or("");
        let Some((_, frac)) = stamp.split_once('.') else {
            return;
        };
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return;
        }
        assert_eq!(utc(ts_ns, frac.len()), stamp, "{file}: {what} packet time");
    }

    fn read_file(path: &str) -> (Vec<Owned>, Option<CaptureError>, (u64, Option<u64>)) {
        let mut src = FileSource::open(path).unwrap_or_else(|e| panic!("{e}"));
        let (frames, err) = read_all(&mut src);
        (frames, err, src.progress())
    }

    #[test]
    fn real_captures_match_the_manifest() {
        let Some(expected) = manifest() else { return };
        assert!(expected.len() >= 18);
        for e in &expected {
            let path = format!("{CAPTURES}/{}", e.file);
            let (frames, err, progress) = read_file(&path);
            assert_eq!(frames.len(), e.packets, "{}", e.file);
            let size = std::fs::metadata(&path).unwrap().len();
            // Offset of the record after the last frame, valid for classic pcap only.
            let after_last = 24 + frames.iter().map(|f| 16 + f.data.len() as u64).sum::<u64>();
            match e.file.as_str() {
                "suricata-verify__smtp-to-comma__smtp.pcap" => {
                    let err = err.expect("smtp-to-comma is corrupt");
                    assert_eq!(err.offset, after_last);
                    assert!(
                        matches!(&err.kind, CaptureErrorKind::Corrupt(s) if s.contains("record claims 3925868813 bytes")),
                        "{err}"
                    );
                }
                "suricata-verify__http-mime-truncated__input.pcap" => {
                    let err = err.expect("http-mime-truncated is truncated");
                    assert_eq!(err.offset, after_last);
                    assert_eq!(err.kind, CaptureErrorKind::Truncated { needed: 16, available: size - after_last });
                }
                _ => {
                    assert!(err.is_none(), "{}: {err:?}", e.file);
                    assert_eq!(progress, (size, Some(size)), "{}", e.file);
                }
            }
            let cut = frames.iter().filter(|f| f.data.len() < f.wire_len as usize).count();
            assert_eq!(cut, e.caplen_lt_len, "{}: frames cut by the snap length", e.file);
            if let Some(link) = e.linktype {
                assert!(frames.iter().all(|f| f.link == LinkType(link)), "{}", e.file);
            }
            let min = frames.iter().map(|f| f.ts_ns).min().unwrap();
            let max = frames.iter().map(|f| f.ts_ns).max().unwrap();
            check_time(&e.file, "first", min, &e.first);
            check_time(&e.file, "last", max, &e.last);
            if let Some(d) = e.duration_s {
                let got = (max - min) as f64 / 1e9;
                assert!((got - d).abs() < 2e-6, "{}: duration {got} vs {d}", e.file);
            }
        }
    }

    fn real(file: &str) -> Option<(Vec<Owned>, Option<CaptureError>)> {
        let path = format!("{CAPTURES}/{file}");
        if !std::path::Path::new(&path).exists() {
            println!("skipping: {path} is missing");
            return None;
        }
        let (frames, err, _) = read_file(&path);
        Some((frames, err))
    }

    #[test]
    fn real_pcapng_with_twelve_interfaces() {
        let Some((frames, err)) = real("abastin99__normal-1.pcap") else {
            return;
        };
        assert!(err.is_none());
        let ether = frames.iter().filter(|f| f.link == LinkType::ETHERNET).count();
        let null = frames.iter().filter(|f| f.link == LinkType::NULL).count();
        // capinfos: Ethernet (1136), NULL/Loopback (422).
        assert_eq!((ether, null), (1136, 422));
    }

    #[test]
    fn real_nanosecond_file_with_invalid_fractions() {
        let Some((frames, err)) = real("tcpdump__timestamp_invalid_nano.pcap") else {
            return;
        };
        assert!(err.is_none());
        let ts: Vec<i64> = frames.iter().map(|f| f.ts_ns).collect();
        assert_eq!(ts, [1_418_145_369_999_999_999, 1_418_145_371_000_000_000, 1_418_145_372_147_483_648]);
        assert!(frames.iter().all(|f| f.link == LinkType::LINUX_SLL));
    }

    #[test]
    fn real_big_endian_and_sll2_files() {
        if let Some((frames, err)) = real("suricata-verify__nfs-bug-5140__nfsv2.pcap") {
            let head = std::fs::read(format!("{CAPTURES}/suricata-verify__nfs-bug-5140__nfsv2.pcap")).unwrap();
            assert_eq!(head[..4], [0xa1, 0xb2, 0xc3, 0xd4]);
            assert_eq!((frames.len(), err), (156, None));
        }
        if let Some((frames, err)) = real("suricata-verify__decode-sll2-02__input.pcap") {
            assert!(err.is_none());
            assert_eq!(frames.iter().map(|f| f.data.len()).max(), Some(65_232));
            assert!(frames.iter().all(|f| f.link == LinkType::LINUX_SLL2));
        }
    }

    /// Real files through gzip and through a small buffer give the same frames.
    /// Every real capture read three ways gives the same frames and the same error: mapped
    /// (`FileSource::open`), through a small read buffer, and gzip-compressed.
    #[test]
    fn real_files_mapped_through_gzip_and_small_buffers() {
        let Some(expected) = manifest() else { return };
        for e in &expected {
            let file = e.file.as_str();
            let Some((frames, err)) = real(file) else {
                return;
            };
            let mapped = FileSource::open(&format!("{CAPTURES}/{file}")).map(|s| format!("{s:?}"));
            assert!(mapped.as_deref().is_ok_and(|d| d.contains("(mapped)")), "{file}: {mapped:?}");
            let reference = (frames, err.map(|e| (e.offset, e.kind)));
            let bytes = std::fs::read(format!("{CAPTURES}/{file}")).unwrap();
            for (what, input) in [("a small buffer", bytes.clone()), ("gzip", gzip(&bytes))] {
                let (frames, err) = read_bytes(&input, 4096);
                let got = (frames, err.map(|e| (e.offset, e.kind)));
                assert!(got == reference, "{file} through {what} differs");
            }
        }
    }
}
