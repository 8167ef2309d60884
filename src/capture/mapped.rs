//! Capture files mapped into memory, guarded against being cut short while mapped.
//!
//! Reading a file in the page cache through `read` costs a kernel copy of every byte (about a
//! tenth of a replay of `bench_mix`); a mapping hands the page cache's own pages to the parser.
//! The price of a mapping is that a file truncated by another process while mapped turns the
//! next access past its new end into SIGBUS, which would kill the process: a capture being
//! rotated or cut under a forensic replay must instead be reported as truncated, with what
//! came before analysed (non-negotiable 4).
//!
//! So every mapping is registered with a SIGBUS handler. A fault inside a registered mapping
//! maps a zero page over the faulting page (`MAP_FIXED`, so the faulting load completes and
//! reads zeros) and raises the mapping's `faulted` flag; any other SIGBUS goes to the handler
//! that was there before (Rust's own, or the default action). A cut also leaves the rest of
//! its own page reading as zeros without any fault, so before a record is handed out the
//! reader makes sure a page beyond it is still there: it touches the page four pages after
//! the record (once per four pages; near the end of the mapping it asks the file for its
//! length instead) and then checks the flag ([`Mapping::readable`]). Zeros never pass for
//! data: a raised flag shrinks the usable length to the file's new size and the reader
//! reports a truncation at the offset of the record the cut went through.
//!
//! Pages already read are dropped from the mapping every [`RELEASE_STEP`] bytes, so resident
//! memory stays bounded by the step however large the file (the pages stay in the page cache).

use crate::prefetch::{prefetch, prefetch_stream};
use std::cell::Cell;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::ptr;
use std::sync::atomic::{compiler_fence, AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Read bytes are dropped from the mapping in steps of this many (resident memory bound).
const RELEASE_STEP: usize = 4 << 20;
/// Mappings that can be guarded at once (one per file being read); beyond that, files are read.
const SLOTS: usize = 64;

/// One guarded region: `[start, end)`, or `end == 0` when the slot is free or being set up.
struct Region {
    start: AtomicUsize,
    end: AtomicUsize,
    faulted: AtomicBool,
    /// Address of the lowest page that faulted (`usize::MAX`: none).
    first_fault: AtomicUsize,
}

#[allow(clippy::declare_interior_mutable_const)]
const FREE: Region = Region {
    start: AtomicUsize::new(0),
    end: AtomicUsize::new(0),
    faulted: AtomicBool::new(false),
    first_fault: AtomicUsize::new(usize::MAX),
};
static REGIONS: [Region; SLOTS] = [FREE; SLOTS];
/// Slot claims (separate from `end`, which the handler reads).
static CLAIMED: [AtomicBool; SLOTS] = [const { AtomicBool::new(false) }; SLOTS];

/// What the handler needs, set once before it is installed.
struct Guard {
    page: usize,
    previous: libc::sigaction,
}

// SAFETY: `libc::sigaction` is plain data (a handler address, flags and a signal mask), only
// read after it is set once.
unsafe impl Sync for Guard {}
// SAFETY: as for `Sync`: plain data, nothing tied to the thread that made it.
unsafe impl Send for Guard {}

static GUARD: OnceLock<Guard> = OnceLock::new();
static INSTALLED: OnceLock<bool> = OnceLock::new();

/// Installs the SIGBUS handler once; false if the system refused.
fn guard_installed() -> bool {
    *INSTALLED.get_or_init(|| {
        // SAFETY: sysconf and sigaction are called with valid arguments; the handler only
        // reads statics and calls async-signal-safe functions (mmap, sigaction).
        unsafe {
            let Some(page) = usize::try_from(libc::sysconf(libc::_SC_PAGESIZE)).ok().filter(|p| p.is_power_of_two())
            else {
                return false;
            };
            let mut previous: libc::sigaction = std::mem::zeroed();
            if libc::sigaction(libc::SIGBUS, ptr::null(), &mut previous) != 0 {
                return false;
            }
            // The handler reads this: set it before installing.
            if GUARD.set(Guard { page, previous }).is_err() {
                return false;
            }
            let mut action: libc::sigaction = std::mem::zeroed();
            action.sa_sigaction = on_sigbus as *const () as usize;
            action.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut action.sa_mask);
            libc::sigaction(libc::SIGBUS, &action, ptr::null_mut()) == 0
        }
    })
}

extern "C" fn on_sigbus(signal: libc::c_int, info: *mut libc::siginfo_t, context: *mut libc::c_void) {
    let Some(guard) = GUARD.get() else {
        return;
    };
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let (code, addr) = unsafe { ((*info).si_code, (*info).si_addr() as usize) };
    // Only a fault on an address (a page past the end of a cut file, or one the kernel could
    // not read) is ours; a SIGBUS sent with kill(2) carries no address.
    let regions: &[Region] = if code == libc::BUS_ADRERR { &REGIONS } else { &[] };
    for region in regions {
        let end = region.end.load(Ordering::Acquire);
        if end != 0 && region.start.load(Ordering::Acquire) <= addr && addr < end {
            let page = addr & !(guard.page - 1);
            // SAFETY: the page lies inside a mapping this process owns and reads only through
            // `Mapping`, which checks `faulted` before trusting what it read.
            let zeroed = unsafe {
                libc::mmap(
                    page as *mut libc::c_void,
                    guard.page,
                    libc::PROT_READ,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED,
                    -1,
                    0,
                )
            };
            if zeroed != libc::MAP_FAILED {
                region.first_fault.fetch_min(page, Ordering::AcqRel);
                region.faulted.store(true, Ordering::Release);
                return;
            }
        }
    }
    // Not ours: what would have happened without the guard.
    let previous = &guard.previous;
    let handler = previous.sa_sigaction;
    // SAFETY: calling the handler that was installed before, with the arguments it was
    // installed to receive; or resetting to the default and raising the signal again (it is
    // blocked in this handler, so it takes the default action, a core dump, on return).
    unsafe {
        if handler == libc::SIG_DFL || handler == libc::SIG_IGN {
            // The default action, now: a sent signal would not come back by itself.
            let mut default: libc::sigaction = std::mem::zeroed();
            default.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(libc::SIGBUS, &default, ptr::null_mut());
            libc::raise(signal);
        } else if previous.sa_flags & libc::SA_SIGINFO != 0 {
            let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) = std::mem::transmute(handler);
            f(signal, info, context);
        } else {
            let f: extern "C" fn(libc::c_int) = std::mem::transmute(handler);
            f(signal);
        }
    }
}

/// A read-only mapping of a whole capture file, registered with the SIGBUS guard.
pub(super) struct Mapping {
    ptr: *mut u8,
    len: usize,
    /// Bytes before this offset have been dropped from the mapping (a multiple of the page size).
    released: usize,
    slot: usize,
    file: File,
    /// Bytes before this offset have been checked to be the file's content (their pages and
    /// a page after them touched without a fault).
    verified: Cell<usize>,
    /// Offset up to which the mapped bytes have been prefetched.
    prefetched: Cell<usize>,
    /// The system's page size: a cut zeroes the rest of its page, so checks step by it.
    page: usize,
}

// SAFETY: the mapping is owned: nothing else holds its address, and it is read only.
unsafe impl Send for Mapping {}

impl Mapping {
    /// Maps `file`; `None` when it cannot be guarded (no slot, no handler) or mapped, in which
    /// case the caller reads it instead.
    pub(super) fn new(file: &File) -> Option<Mapping> {
        let len = match file.metadata() {
            Ok(m) if m.is_file() => usize::try_from(m.len()).unwrap_or(0),
            _ => 0,
        };
        if len == 0 || !guard_installed() {
            return None;
        }
        let page = GUARD.get()?.page;
        let file = file.try_clone().ok()?;
        let slot = (0..SLOTS)
            .find(|&i| CLAIMED[i].compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire).is_ok())?;
        // From here on, dropping the mapping frees the slot.
        let mut mapping = Mapping {
            ptr: ptr::null_mut(),
            len: 0,
            released: 0,
            slot,
            file,
            verified: Cell::new(0),
            prefetched: Cell::new(0),
            page,
        };
        let p = mapping.map_file(len).ok()?;
        mapping.register(p, len);
        Some(mapping)
    }

    /// Maps the first `len` bytes of the file (not yet registered).
    fn map_file(&self, len: usize) -> io::Result<*mut libc::c_void> {
        // SAFETY: a fresh read-only private mapping of an open file; registered before use.
        let p =
            unsafe { libc::mmap(ptr::null_mut(), len, libc::PROT_READ, libc::MAP_PRIVATE, self.file.as_raw_fd(), 0) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: advice on the mapping just made; failure only loses read-ahead.
        unsafe { libc::madvise(p, len, libc::MADV_SEQUENTIAL) };
        Ok(p)
    }

    /// Makes the mapping at `p` of `len` bytes this one's, guarded.
    fn register(&mut self, p: *mut libc::c_void, len: usize) {
        self.ptr = p.cast();
        self.len = len;
        self.released = 0;
        self.verified.set(0);
        self.prefetched.set(0);
        let region = &REGIONS[self.slot];
        region.faulted.store(false, Ordering::Release);
        region.first_fault.store(usize::MAX, Ordering::Release);
        region.start.store(p as usize, Ordering::Release);
        region.end.store(p as usize + len, Ordering::Release);
    }

    fn unmap(&mut self) {
        if self.ptr.is_null() {
            return;
        }
        REGIONS[self.slot].end.store(0, Ordering::Release);
        // SAFETY: unmapping what `map` mapped; no slice of it outlives `&self` borrows.
        unsafe { libc::munmap(self.ptr.cast(), self.len) };
        self.ptr = ptr::null_mut();
        self.len = 0;
    }

    /// The mapped bytes. Bytes the file lost since mapping read as zeros: call
    /// [`readable`](Self::readable) before trusting a range.
    #[inline]
    pub(super) fn bytes(&self) -> &[u8] {
        if self.ptr.is_null() {
            return &[];
        }
        // SAFETY: `ptr..ptr + len` is mapped readable for as long as `self` lives and is not
        // remapped (which takes `&mut self`); faults inside it are turned into zero pages.
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }

    /// Whether `bytes()[..end]` is the file's content. A cut leaves the rest of its own page
    /// reading as zeros without a fault; only the pages after it fault. So before bytes are
    /// first trusted, their pages and a page [`VERIFY_AHEAD_PAGES`] after them are touched (a
    /// cut under them faults now, before a record is handed out), or, near the mapping's end,
    /// the file is asked for its length; then nothing in the mapping may have faulted.
    #[inline]
    pub(super) fn readable(&self, start: usize, end: usize) -> bool {
        let bytes = self.bytes();
        let ahead = (start + PREFETCH_AHEAD).min(bytes.len());
        let mut at = self.prefetched.get().max(start) & !63;
        while at < ahead {
            prefetch_stream(bytes, at);
            at += 64;
        }
        self.prefetched.set(at);
        if end > self.verified.get() {
            self.verify(start, end);
        }
        // The handler runs on this thread, between the touches and this load.
        compiler_fence(Ordering::SeqCst);
        !REGIONS[self.slot].faulted.load(Ordering::Relaxed)
    }

    /// Touches the pages of `start..end` and one [`VERIFY_AHEAD_PAGES`] after them (once per
    /// that many pages of the file).
    #[cold]
    #[inline(never)]
    fn verify(&self, start: usize, end: usize) {
        let bytes = self.bytes();
        let touch = |at: usize| {
            if let Some(b) = bytes.get(at) {
                // SAFETY: `b` is a valid reference into the mapping.
                unsafe { ptr::read_volatile(b) };
            }
        };
        // The first byte of the page VERIFY_AHEAD_PAGES after the record's last: if it is
        // there, the file is longer than everything before it.
        let page = self.page;
        let ahead = ((end - 1) / page + VERIFY_AHEAD_PAGES) * page;
        if ahead < bytes.len() {
            touch(ahead);
            // Next time's touch, so it does not wait for memory.
            prefetch(bytes.get(ahead + VERIFY_AHEAD_PAGES * page));
        } else if self.file_len() < bytes.len() {
            // The last pages: nothing after them can fault, so ask the file (a few pages'
            // worth of records per file).
            REGIONS[self.slot].faulted.store(true, Ordering::Relaxed);
        }
        let mut at = start.max(self.verified.get());
        while at < end {
            touch(at);
            at += page;
        }
        touch(end - 1);
        if ahead < bytes.len() {
            self.verified.set(ahead);
        }
    }

    /// After a fault: how much of the mapping is still the file's content (up to the file's
    /// length now, and not beyond the first page that faulted). `None` when the file did not
    /// shrink: the kernel could not read a page (an I/O error), no one cut the file.
    #[cold]
    pub(super) fn length_after_fault(&self) -> Option<usize> {
        let now = self.file_len();
        if now >= self.len {
            return None;
        }
        let first_fault = REGIONS[self.slot].first_fault.load(Ordering::Acquire).saturating_sub(self.ptr as usize);
        Some(now.min(first_fault))
    }

    /// The file's length now.
    #[cold]
    pub(super) fn file_len(&self) -> usize {
        let now = self.file.metadata().map(|m| m.len()).unwrap_or(0);
        usize::try_from(now).unwrap_or(usize::MAX)
    }

    /// Drops the pages before `offset` from the mapping once a [`RELEASE_STEP`] has been read.
    #[inline]
    pub(super) fn release_before(&mut self, offset: usize) {
        if offset.saturating_sub(self.released) < RELEASE_STEP {
            return;
        }
        let upto = offset & !(RELEASE_STEP - 1);
        if upto > self.released {
            // SAFETY: a page-aligned range inside the mapping that the reader has passed;
            // reading it again (it will not) would fault the file's pages back in.
            unsafe { libc::madvise(self.ptr.add(self.released).cast(), upto - self.released, libc::MADV_DONTNEED) };
            self.released = upto;
        }
    }

    /// Maps again when the file grew since it was mapped (a capture still being written);
    /// `true` if there is more to read.
    #[cold]
    pub(super) fn grow(&mut self) -> bool {
        let Some(now) = self.file.metadata().ok().and_then(|m| usize::try_from(m.len()).ok()) else {
            return false;
        };
        if now <= self.len || REGIONS[self.slot].faulted.load(Ordering::Relaxed) {
            return false;
        }
        // The new mapping first: if it fails, the old one stays as it was.
        let Ok(p) = self.map_file(now) else {
            return false;
        };
        let released = self.released;
        self.unmap();
        self.register(p, now);
        self.release_before(released);
        true
    }
}

/// How far ahead of the parse every cache line of the mapping is prefetched. The
/// page cache's pages are scattered, so the hardware prefetcher, which stops at page
/// boundaries, leaves every record a cache miss; and where the next record starts is known
/// only once this one's header is read, so with large frames the records form a chain of
/// misses that only lines fetched ahead break. Measured: `bench_mix` 1.96 s with no prefetch,
/// 1.5 s with two lines 2 KiB ahead per record; `bench_flood` (550-byte frames) 0.77–0.80 s with
/// those two lines, 0.60–0.63 s with every line 4 KiB ahead into L2 (into L1: 0.69–0.71 s),
/// on the Intel CPU the VM had then. Prefetched non-temporally (see [`prefetch_stream`]), on
/// its AMD CPU: medians of 6 interleaved runs 0.81 s 2 KiB ahead, 0.84 s 4 KiB, 0.85 s 8 KiB
/// (0.97 s for 4 KiB into L2 in the same, noisy, hour).
const PREFETCH_AHEAD: usize = 4096;
/// How far ahead of the parse a page is touched to check the file still reaches it: once
/// per this many pages, and far enough ahead that the touch is rarely the first access.
const VERIFY_AHEAD_PAGES: usize = 4;

impl Drop for Mapping {
    fn drop(&mut self) {
        self.unmap();
        CLAIMED[self.slot].store(false, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use crate::capture::file::test_util::next_owned;
    use crate::capture::{CaptureErrorKind, FileSource};
    use capgen::hand::PcapBytes;
    use std::fs::OpenOptions;
    use std::io::Write;
    use std::path::PathBuf;

    const RECORD: usize = 16 + 84;
    const HEADER: usize = 24;

    /// A pcap of `n` 84-byte frames, each filled with its index, written to a fresh file.
    fn capture(name: &str, n: u32) -> PathBuf {
        let mut w = PcapBytes::new(false, false, 65_535, 1);
        for i in 0..n {
            w.record(1_700_000_000 + i, 0, 84, &[(i % 251) as u8 + 1; 84]);
        }
        let path = std::env::temp_dir().join(format!("floodwatch-mapped-{}-{name}.pcap", std::process::id()));
        std::fs::write(&path, &w.bytes).unwrap();
        path
    }

    /// Reads `before` frames, cuts the file to `cut` bytes, reads on: frames read in all and
    /// the error that ended the file.
    fn cut_while_reading(name: &str, before: usize, cut: u64) -> (usize, u64, CaptureErrorKind) {
        let path = capture(name, 2000);
        let mut src = FileSource::open(path.to_str().unwrap()).unwrap();
        assert!(format!("{src:?}").contains("mapped"), "{src:?}");
        let mut frames = 0;
        for _ in 0..before {
            let f = next_owned(&mut src).unwrap().unwrap();
            assert_eq!(f.data[0], (frames % 251) as u8 + 1);
            frames += 1;
        }
        OpenOptions::new().write(true).open(&path).unwrap().set_len(cut).unwrap();
        let error = loop {
            match next_owned(&mut src) {
                Ok(Some(f)) => {
                    // Never zeros passed off as data.
                    assert_eq!(f.data, &[(frames % 251) as u8 + 1; 84][..], "frame {frames}");
                    frames += 1;
                }
                Ok(None) => panic!("a cut file ended cleanly after {frames} frames"),
                Err(e) => break e,
            }
        };
        std::fs::remove_file(&path).unwrap();
        (frames, error.offset, error.kind)
    }

    #[test]
    fn a_file_cut_while_mapped_ends_at_the_cut() {
        // (name, frames read before the cut, where the cut falls)
        let cuts = [
            // Record 1000 starts at byte 100,024, in the middle of a page; 7 bytes into it.
            ("mid-page", 100, (HEADER + 1000 * RECORD) as u64 + 7),
            // At byte 163,840 (40 pages), inside record 1638: the next page faults.
            ("page", 10, 40 * 4096),
            // 50 bytes into the last record (2000 records end at byte 200,024): no page
            // after it to fault, the file's length tells.
            ("last-page", 1990, (HEADER + 1999 * RECORD) as u64 + 50),
        ];
        for (name, before, cut) in cuts {
            let (frames, offset, kind) = cut_while_reading(name, before, cut);
            // Every record wholly before the cut, then a truncation where the cut one starts.
            assert_eq!(frames, (cut as usize - HEADER) / RECORD, "{name}");
            assert_eq!(offset, (HEADER + frames * RECORD) as u64, "{name}");
            assert!(matches!(kind, CaptureErrorKind::Truncated { .. }), "{name}: {kind:?}");
        }
    }

    #[test]
    fn a_file_that_grows_while_mapped_is_read_to_its_new_end() {
        let path = capture("grow", 100);
        let mut src = FileSource::open(path.to_str().unwrap()).unwrap();
        for _ in 0..100 {
            next_owned(&mut src).unwrap().unwrap();
        }
        let mut more = PcapBytes::new(false, false, 65_535, 1);
        more.record(1_800_000_000, 0, 84, &[7; 84]);
        let appended = more.bytes[HEADER..].to_vec();
        OpenOptions::new().append(true).open(&path).unwrap().write_all(&appended).unwrap();
        let f = next_owned(&mut src).unwrap().expect("the appended frame");
        assert_eq!(f.data, &[7; 84][..]);
        assert!(next_owned(&mut src).unwrap().is_none());
        std::fs::remove_file(&path).unwrap();
    }
}
