//! libpcap capture through the `pcap` crate (cargo feature `libpcap`): kernel BPF filters,
//! a configurable buffer, kernel drop counters and kernel timestamps.
//!
//! libpcap's blocking read can wait forever on an idle interface (TPACKET_V3 only wakes
//! when a block fills), so the handle is non-blocking and the wait is a `poll` on its
//! descriptor with our own timeout.

use super::CaptureSettings;
use super::{CaptureStats, LiveCapture, LiveError, READ_TIMEOUT};
use crate::capture::{Frame, LinkType};
use pcap::{Active, Capture};
use std::os::fd::AsRawFd;

const DEFAULT_BUFFER_MB: u32 = 64;
const SNAPLEN: i32 = 262_144;

pub struct PcapCapture {
    cap: Capture<Active>,
    fd: i32,
    link: LinkType,
    interface: String,
    /// The last read returned a packet, so the next may not need a wait.
    maybe_ready: bool,
}

impl PcapCapture {
    pub fn open(name: &str, settings: &CaptureSettings) -> Result<PcapCapture, LiveError> {
        let io = |e: pcap::Error| classify(name, e);
        let devices = pcap::Device::list().map_err(io)?;
        if !devices.iter().any(|d| d.name == name) {
            return Err(LiveError::NoSuchInterface {
                name: name.to_string(),
                available: devices.iter().map(|d| d.name.clone()).collect(),
            });
        }
        let buffer = settings.buffer_mb.unwrap_or(DEFAULT_BUFFER_MB).clamp(1, 2047) as i32 * 1024 * 1024;
        let mut cap = Capture::from_device(name)
            .map_err(io)?
            .promisc(true)
            .snaplen(SNAPLEN)
            .buffer_size(buffer)
            .immediate_mode(true)
            .timeout(READ_TIMEOUT.as_millis() as i32)
            .open()
            .map_err(io)?;
        if let Some(filter) = &settings.filter {
            cap.filter(filter, true)
                .map_err(|e| LiveError::BadFilter { filter: filter.clone(), message: e.to_string() })?;
        }
        let cap = cap.setnonblock().map_err(io)?;
        let link = LinkType(u16::try_from(cap.get_datalink().0).unwrap_or(u16::MAX));
        let fd = cap.as_raw_fd();
        Ok(PcapCapture { cap, fd, link, interface: name.to_string(), maybe_ready: true })
    }
}

fn classify(interface: &str, e: pcap::Error) -> LiveError {
    let message = e.to_string();
    if message.contains("ermission") || message.contains("not permitted") {
        LiveError::PermissionDenied { interface: interface.to_string() }
    } else {
        LiveError::Io { interface: interface.to_string(), message }
    }
}

impl LiveCapture for PcapCapture {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, LiveError> {
        // After a read that found nothing, wait on the descriptor; otherwise more packets are
        // probably buffered already and poll would be a wasted system call.
        if !self.maybe_ready {
            let mut pfd = libc::pollfd { fd: self.fd, events: libc::POLLIN, revents: 0 };
            // SAFETY: one valid pollfd for the duration of the call.
            let rc = unsafe { libc::poll(&mut pfd, 1, READ_TIMEOUT.as_millis() as i32) };
            if rc <= 0 {
                return Ok(None);
            }
        }
        match self.cap.next_packet() {
            Ok(p) => {
                self.maybe_ready = true;
                let ts = p.header.ts;
                // time_t and suseconds_t are i64 on the 64-bit Linux targets floodwatch supports.
                let ts_ns = ts.tv_sec.saturating_mul(1_000_000_000).saturating_add(ts.tv_usec.saturating_mul(1_000));
                Ok(Some(Frame { ts_ns, wire_len: p.header.len, link: self.link, data: p.data }))
            }
            Err(pcap::Error::TimeoutExpired) => {
                self.maybe_ready = false;
                Ok(None)
            }
            Err(e) => Err(LiveError::Io { interface: self.interface.clone(), message: e.to_string() }),
        }
    }

    fn stats(&mut self) -> CaptureStats {
        match self.cap.stats() {
            Ok(s) => CaptureStats {
                received: Some(s.received as u64),
                kernel_dropped: Some(s.dropped as u64),
                interface_dropped: Some(s.if_dropped as u64),
            },
            Err(_) => CaptureStats::default(),
        }
    }

    fn backend(&self) -> &'static str {
        "libpcap"
    }
}
