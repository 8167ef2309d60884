//! AF_PACKET with a memory-mapped TPACKET_V3 receive ring: the kernel writes frames into
//! blocks of a ring shared with this process, and hands over a whole block at a time (when
//! it is full or its retire timeout passes), so a burst costs no system call per packet.
//! Frames are read in place from the ring; a block goes back to the kernel when the next
//! frame is asked for after its last one. Needs only `libc` and CAP_NET_RAW.

use super::CaptureSettings;
use super::{CaptureStats, KernelCounters, LiveCapture, LiveError, READ_TIMEOUT};
use crate::capture::{Frame, LinkType};
use std::sync::atomic::{AtomicU32, Ordering};

/// Field offsets of `struct tpacket_block_desc` (linux/if_packet.h), version 1 header.
mod block {
    pub const STATUS: usize = 8;
    pub const NUM_PKTS: usize = 12;
    pub const OFFSET_TO_FIRST_PKT: usize = 16;
}

/// Field offsets of `struct tpacket3_hdr`.
mod packet {
    pub const NEXT_OFFSET: usize = 0;
    pub const SEC: usize = 4;
    pub const NSEC: usize = 8;
    pub const SNAPLEN: usize = 12;
    pub const LEN: usize = 16;
    pub const STATUS: usize = 20;
    pub const MAC: usize = 24;
    pub const VLAN_TCI: usize = 32;
    pub const VLAN_TPID: usize = 36;
    /// Bytes of the header that are read.
    pub const READ_LEN: usize = 38;
}

/// Default ring: 64 blocks of 1 MiB. A 60-byte frame takes 144 bytes of a block (header,
/// link-layer address and alignment), so the ring holds ~466,000 of them: 0.23 s at 2 Mpps.
/// A block is handed over after at most its timeout, so at low rates the ring covers
/// `blocks × timeout` (640 ms) of a reader that stalls.
pub const DEFAULT_BLOCK_KIB: u32 = 1024;
pub const DEFAULT_BLOCKS: u32 = 64;
/// A block that is not full goes to the reader after this long.
pub const DEFAULT_BLOCK_TIMEOUT_MS: u32 = 10;
/// Slot size the kernel wants in the request (V3 packs frames of any size into blocks).
const FRAME_SLOT: u32 = 2048;
/// Limits of the ring settings: 64 MiB blocks, 4,096 of them.
const MAX_BLOCK_KIB: u32 = 64 * 1024;
const MAX_BLOCKS: u32 = 4096;

pub struct TpacketCapture {
    fd: i32,
    ring: *mut u8,
    block_size: usize,
    blocks: usize,
    /// The block being read, and whether this process holds it (status USER).
    current: usize,
    holding: bool,
    /// Packets left in the held block, and the offset of the next one in it.
    left: u32,
    next: usize,
    link: LinkType,
    interface: String,
    /// The same name for `if_nametoindex`, made once: the check on a quiet link allocates nothing.
    interface_c: std::ffi::CString,
    /// The interface's index when the socket was bound: a link going down keeps it, an
    /// interface deleted (and perhaps made again) does not.
    ifindex: u32,
    /// A frame whose VLAN tag the kernel moved into the header, with the tag put back.
    tagged: Vec<u8>,
    kernel: KernelCounters,
}

// SAFETY: the ring mapping and the descriptor are owned by this value alone; moving it to
// another thread moves that ownership (the kernel side does not care which thread reads).
unsafe impl Send for TpacketCapture {}

fn io_error(interface: &str, what: &str) -> LiveError {
    let err = std::io::Error::last_os_error();
    match err.kind() {
        std::io::ErrorKind::PermissionDenied => LiveError::PermissionDenied { interface: interface.to_string() },
        _ => LiveError::Io { interface: interface.to_string(), message: format!("{what}: {err}") },
    }
}

/// `setsockopt(fd, SOL_PACKET, option, value)`.
fn set_packet_option<T>(fd: i32, option: i32, value: &T) -> bool {
    // SAFETY: `value` points to a live `T` of the size passed.
    unsafe {
        libc::setsockopt(fd, libc::SOL_PACKET, option, (value as *const T).cast(), std::mem::size_of::<T>() as u32) == 0
    }
}

impl TpacketCapture {
    /// Opens a ring on interface `name`; with `fanout`, joins that PACKET_FANOUT group, whose
    /// sockets share the interface's packets by flow (IP fragments reassembled for the hash
    /// first, so a datagram's fragments go to one socket).
    pub fn open(
        name: &str,
        settings: &CaptureSettings,
        link: LinkType,
        fanout: Option<u16>,
    ) -> Result<TpacketCapture, LiveError> {
        let block_kib = settings.ring_block_kib.unwrap_or(DEFAULT_BLOCK_KIB);
        let blocks = settings.ring_blocks.unwrap_or(DEFAULT_BLOCKS);
        let timeout_ms = settings.ring_block_timeout_ms.unwrap_or(DEFAULT_BLOCK_TIMEOUT_MS);
        if !(4..=MAX_BLOCK_KIB).contains(&block_kib) || block_kib % 4 != 0 || !(1..=MAX_BLOCKS).contains(&blocks) {
            return Err(LiveError::Io {
                interface: name.to_string(),
                message: format!(
                    "[capture] ring_block_kib must be a multiple of 4 from 4 to {MAX_BLOCK_KIB} (got {block_kib}) and ring_blocks from 1 to {MAX_BLOCKS} (got {blocks})"
                ),
            });
        }
        let (block_size, blocks) = (block_kib as usize * 1024, blocks as usize);
        let c_name = std::ffi::CString::new(name)
            .map_err(|_| LiveError::NoSuchInterface { name: name.to_string(), available: Vec::new() })?;
        // SAFETY: `c_name` is a NUL-terminated string.
        let ifindex = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if ifindex == 0 {
            return Err(io_error(name, "if_nametoindex"));
        }
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // Protocol 0: the socket receives nothing until it is bound to the interface (with
        // ETH_P_ALL), so no other interface's packets reach the ring while it is set up.
        // SAFETY: plain socket(2) call; the descriptor is owned by the value built below,
        // whose `Drop` also closes it on the error paths.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            return Err(io_error(name, "socket"));
        }
        let mut capture = TpacketCapture {
            fd,
            ring: std::ptr::null_mut(),
            block_size,
            blocks,
            current: 0,
            holding: false,
            left: 0,
            next: 0,
            link,
            interface: name.to_string(),
            interface_c: c_name,
            ifindex,
            tagged: Vec::with_capacity(block_size.min(1 << 18)),
            kernel: KernelCounters::default(),
        };
        let version = libc::tpacket_versions::TPACKET_V3 as i32;
        if !set_packet_option(fd, libc::PACKET_VERSION, &version) {
            return Err(io_error(name, "PACKET_VERSION TPACKET_V3"));
        }
        let request = libc::tpacket_req3 {
            tp_block_size: block_size as u32,
            tp_block_nr: blocks as u32,
            tp_frame_size: FRAME_SLOT,
            tp_frame_nr: (block_size * blocks / FRAME_SLOT as usize) as u32,
            tp_retire_blk_tov: timeout_ms,
            tp_sizeof_priv: 0,
            tp_feature_req_word: 0,
        };
        if !set_packet_option(fd, libc::PACKET_RX_RING, &request) {
            return Err(io_error(name, "PACKET_RX_RING (ring settings: block size a multiple of the page size)"));
        }
        // SAFETY: maps the ring the kernel just allocated for this socket; length as requested.
        let ring = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                block_size * blocks,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd,
                0,
            )
        };
        if ring == libc::MAP_FAILED {
            return Err(io_error(name, "mmap of the receive ring"));
        }
        capture.ring = ring.cast();
        // SAFETY: an all-zero sockaddr_ll is valid; the fields that matter are set below.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = protocol;
        address.sll_ifindex = ifindex as i32;
        // SAFETY: `address` is a sockaddr_ll of the size passed.
        let bound = unsafe {
            libc::bind(
                fd,
                (&address as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        if bound != 0 {
            return Err(io_error(name, "bind"));
        }
        if let Some(group) = fanout {
            let mode = libc::PACKET_FANOUT_HASH | libc::PACKET_FANOUT_FLAG_DEFRAG;
            let option = u32::from(group) | mode << 16;
            if !set_packet_option(fd, libc::PACKET_FANOUT, &option) {
                return Err(io_error(name, "PACKET_FANOUT"));
            }
        }
        if settings.promiscuous.unwrap_or(true) {
            let membership = libc::packet_mreq {
                mr_ifindex: ifindex as i32,
                mr_type: libc::PACKET_MR_PROMISC as u16,
                mr_alen: 0,
                mr_address: [0; 8],
            };
            if !set_packet_option(fd, libc::PACKET_ADD_MEMBERSHIP, &membership) {
                return Err(io_error(name, "promiscuous mode"));
            }
        }
        Ok(capture)
    }

    /// The status word of block `i` (shared with the kernel).
    fn status(&self, i: usize) -> &AtomicU32 {
        // SAFETY: block `i` < `blocks` starts inside the mapping, block descriptors are
        // 8-aligned (blocks are page-aligned), and the kernel accesses this word atomically.
        unsafe { &*self.ring.add(i * self.block_size + block::STATUS).cast::<AtomicU32>() }
    }

    /// The bytes of the held block.
    fn held(&self) -> &[u8] {
        debug_assert!(self.holding);
        // SAFETY: while its status says USER the block belongs to this process: the kernel
        // does not write it until the status goes back to KERNEL (in `release`).
        unsafe { std::slice::from_raw_parts(self.ring.add(self.current * self.block_size), self.block_size) }
    }

    fn release(&mut self) {
        self.status(self.current).store(libc::TP_STATUS_KERNEL, Ordering::Release);
        self.holding = false;
        self.current = (self.current + 1) % self.blocks;
    }

    /// Takes the current block if the kernel has handed it over.
    fn acquire(&mut self) -> bool {
        if self.status(self.current).load(Ordering::Acquire) & libc::TP_STATUS_USER == 0 {
            return false;
        }
        self.holding = true;
        let block = self.held();
        let (left, first) = (read_u32(block, block::NUM_PKTS), read_u32(block, block::OFFSET_TO_FIRST_PKT));
        self.left = left.unwrap_or(0);
        self.next = first.unwrap_or(0) as usize;
        true
    }

    /// Whether the interface this socket is bound to is gone: its name resolves to no interface
    /// (ENODEV) or to another one. A lookup that fails otherwise (it opens a socket: out of
    /// descriptors or memory) says nothing about the interface.
    fn interface_is_gone(&self) -> bool {
        // SAFETY: `interface_c` is a NUL-terminated string.
        match unsafe { libc::if_nametoindex(self.interface_c.as_ptr()) } {
            0 => std::io::Error::last_os_error().raw_os_error() == Some(libc::ENODEV),
            index => index != self.ifindex,
        }
    }

    /// Waits up to [`READ_TIMEOUT`] for the kernel to hand over a block. The link going
    /// down (ENETDOWN) is no error: the kernel hooks the socket up again when it comes back.
    /// The interface deleted is: this socket will never see it again, even if one of the same
    /// name comes back. A deletion reports ENETDOWN once, when the link goes down, and its name
    /// may still resolve for a moment then: a wait that ends with that error or with no block
    /// looks for the interface.
    fn wait(&self) -> Result<(), LiveError> {
        let mut pfd = libc::pollfd { fd: self.fd, events: libc::POLLIN | libc::POLLERR, revents: 0 };
        // SAFETY: one valid pollfd.
        let rc = unsafe { libc::poll(&mut pfd, 1, READ_TIMEOUT.as_millis() as i32) };
        if rc < 0 && std::io::Error::last_os_error().kind() != std::io::ErrorKind::Interrupted {
            return Err(io_error(&self.interface, "poll"));
        }
        if rc > 0 && pfd.revents & libc::POLLNVAL != 0 {
            return Err(LiveError::Io { interface: self.interface.clone(), message: "capture socket closed".into() });
        }
        let mut err: i32 = 0;
        if rc > 0 && pfd.revents & libc::POLLERR != 0 {
            let mut len = std::mem::size_of::<i32>() as u32;
            // SAFETY: SO_ERROR writes one int (and clears the socket's error).
            unsafe {
                libc::getsockopt(self.fd, libc::SOL_SOCKET, libc::SO_ERROR, (&mut err as *mut i32).cast(), &mut len)
            };
            if err != 0 && err != libc::ENETDOWN {
                let message = std::io::Error::from_raw_os_error(err).to_string();
                return Err(LiveError::Io { interface: self.interface.clone(), message });
            }
        }
        if (rc == 0 || err == libc::ENETDOWN) && self.interface_is_gone() {
            return Err(LiveError::Io { interface: self.interface.clone(), message: "the interface is gone".into() });
        }
        Ok(())
    }
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_ne_bytes(bytes.get(at..at + 4)?.try_into().ok()?))
}

fn read_u16(bytes: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_ne_bytes(bytes.get(at..at + 2)?.try_into().ok()?))
}

/// Where one packet of a block lies, read from its `tpacket3_hdr`.
struct Slot {
    next_offset: usize,
    ts_ns: i64,
    data: std::ops::Range<usize>,
    wire_len: u32,
    /// The VLAN tag the kernel took out of the frame: (TPID, TCI).
    vlan: Option<(u16, u16)>,
}

/// Reads the header of the packet at `at` in `block`; `None` if it does not fit the block.
fn slot(block: &[u8], at: usize) -> Option<Slot> {
    let header = block.get(at..at.checked_add(packet::READ_LEN)?)?;
    let snaplen = read_u32(header, packet::SNAPLEN)? as usize;
    let mac = at + read_u16(header, packet::MAC)? as usize;
    let data = mac..mac.checked_add(snaplen)?;
    block.get(data.clone())?;
    let status = read_u32(header, packet::STATUS)?;
    let vlan = (status & libc::TP_STATUS_VLAN_VALID != 0).then(|| {
        let tpid = read_u16(header, packet::VLAN_TPID).filter(|_| status & libc::TP_STATUS_VLAN_TPID_VALID != 0);
        (tpid.unwrap_or(0x8100), read_u32(header, packet::VLAN_TCI).unwrap_or(0) as u16)
    });
    let ts_ns = read_u32(header, packet::SEC)? as i64 * 1_000_000_000 + read_u32(header, packet::NSEC)? as i64;
    Some(Slot {
        next_offset: read_u32(header, packet::NEXT_OFFSET)? as usize,
        ts_ns,
        data,
        wire_len: read_u32(header, packet::LEN)?,
        vlan,
    })
}

impl LiveCapture for TpacketCapture {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, LiveError> {
        let slot = loop {
            if self.holding && self.left > 0 {
                let found = slot(self.held(), self.next);
                self.left -= 1;
                match found {
                    Some(s) => {
                        self.next += s.next_offset;
                        break s;
                    }
                    // A header outside the block: the rest of the block cannot be walked.
                    None => self.left = 0,
                }
                continue;
            }
            if self.holding {
                self.release();
            }
            if !self.acquire() {
                self.wait()?;
                if !self.acquire() {
                    return Ok(None);
                }
            }
        };
        let Slot { ts_ns, data, wire_len, vlan, .. } = slot;
        let bytes = match vlan {
            None => &self.held()[data],
            Some((tpid, tci)) => {
                // Put the tag back after the MAC addresses, so tagged traffic decodes as in
                // a capture file.
                let mut tagged = std::mem::take(&mut self.tagged);
                tagged.clear();
                let frame = &self.held()[data];
                let (head, rest) = frame.split_at_checked(12).unwrap_or((frame, &[]));
                tagged.extend_from_slice(head);
                tagged.extend_from_slice(&tpid.to_be_bytes());
                tagged.extend_from_slice(&tci.to_be_bytes());
                tagged.extend_from_slice(rest);
                self.tagged = tagged;
                &self.tagged[..]
            }
        };
        let wire_len = wire_len + if vlan.is_some() { 4 } else { 0 };
        Ok(Some(Frame { ts_ns, wire_len, link: self.link, data: bytes }))
    }

    fn stats(&mut self) -> CaptureStats {
        self.kernel.read(self.fd)
    }

    fn backend(&self) -> &'static str {
        "tpacket"
    }
}

impl Drop for TpacketCapture {
    fn drop(&mut self) {
        // SAFETY: the mapping (if made) and the descriptor belong to this value alone.
        unsafe {
            if !self.ring.is_null() {
                libc::munmap(self.ring.cast(), self.block_size * self.blocks);
            }
            libc::close(self.fd);
        }
    }
}
