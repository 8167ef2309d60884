//! Live capture from a network interface.
//!
//! A backend hands out frames like a file source does, but returns `Ok(None)` when no
//! packet arrived within its read timeout, so the capture thread can flush, check for
//! shutdown and let the analyzer advance on the wall clock even on a silent link.

mod af_packet;
#[cfg(feature = "libpcap")]
mod libpcap;
mod settings;
mod tpacket;

use super::Frame;
pub use settings::{CaptureBackend, CaptureSettings};
use std::fmt;
use std::time::Duration;

/// Most capture threads (sockets of one fanout group, each with its own ring).
pub const MAX_CAPTURE_THREADS: u16 = 64;

/// How long a read waits for a packet before returning `Ok(None)`.
pub const READ_TIMEOUT: Duration = Duration::from_millis(100);

/// Counters a backend can report; `None` where it cannot tell.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CaptureStats {
    /// Packets the kernel handed to the capture socket since it opened.
    pub received: Option<u64>,
    /// Packets the kernel dropped because the capture did not keep up.
    pub kernel_dropped: Option<u64>,
    /// Packets the interface itself dropped (libpcap only).
    pub interface_dropped: Option<u64>,
}

/// A source of live frames.
pub trait LiveCapture: Send {
    /// The next frame, or `Ok(None)` after [`READ_TIMEOUT`] without one.
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, LiveError>;
    fn stats(&mut self) -> CaptureStats;
    /// Backend name for logs and metrics.
    fn backend(&self) -> &'static str;
}

/// Why live capture could not start or go on.
#[derive(Debug)]
pub enum LiveError {
    NoSuchInterface {
        name: String,
        available: Vec<String>,
    },
    /// Opening the capture needs CAP_NET_RAW (or root).
    PermissionDenied {
        interface: String,
    },
    /// The backend is not compiled in.
    BackendUnavailable(&'static str),
    /// The BPF filter does not compile.
    BadFilter {
        filter: String,
        message: String,
    },
    Io {
        interface: String,
        message: String,
    },
}

impl fmt::Display for LiveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LiveError::NoSuchInterface { name, available } => {
                write!(f, "interface {name} does not exist (available: {})", available.join(", "))
            }
            LiveError::PermissionDenied { interface } => write!(
                f,
                "no permission to capture on {interface}: run as root or grant CAP_NET_RAW (setcap cap_net_raw+ep, or the systemd unit)"
            ),
            LiveError::BackendUnavailable(what) => write!(f, "{what}"),
            LiveError::BadFilter { filter, message } => write!(f, "capture filter `{filter}` is invalid: {message}"),
            LiveError::Io { interface, message } => write!(f, "capture on {interface} failed: {message}"),
        }
    }
}

impl std::error::Error for LiveError {}

/// How to open the configured captures on an interface, at start-up and again after the
/// interface went away: `[capture] threads` captures (default 1), which share the interface's
/// packets by flow (tpacket only).
#[derive(Clone, Debug)]
pub struct Opener {
    interface: String,
    settings: CaptureSettings,
    threads: u16,
    /// The PACKET_FANOUT group of several captures: one per process, so two daemons on one
    /// interface each see every packet.
    group: Option<u16>,
}

impl Opener {
    pub fn new(interface: &str, settings: &CaptureSettings) -> Result<Opener, LiveError> {
        let threads = settings.threads.unwrap_or(1);
        if !(1..=MAX_CAPTURE_THREADS).contains(&threads) {
            return Err(LiveError::Io {
                interface: interface.to_string(),
                message: format!("[capture] threads must be 1 to {MAX_CAPTURE_THREADS} (got {threads})"),
            });
        }
        if threads > 1 && settings.backend != CaptureBackend::Tpacket {
            return Err(LiveError::BackendUnavailable("several capture threads need the tpacket backend"));
        }
        let group = (threads > 1).then(|| std::process::id() as u16);
        Ok(Opener { interface: interface.to_string(), settings: settings.clone(), threads, group })
    }

    pub fn interface(&self) -> &str {
        &self.interface
    }

    /// Every capture, one per thread.
    pub fn open_all(&self) -> Result<Vec<Box<dyn LiveCapture>>, LiveError> {
        (0..self.threads).map(|_| self.open_one()).collect()
    }

    /// One capture (of the group, with several threads).
    pub fn open_one(&self) -> Result<Box<dyn LiveCapture>, LiveError> {
        match self.group {
            None => open(&self.interface, &self.settings),
            Some(group) => {
                let link = af_packet::link_type(&self.interface)?;
                let capture = tpacket::TpacketCapture::open(&self.interface, &self.settings, link, Some(group))?;
                Ok(Box::new(capture))
            }
        }
    }
}

/// Opens the configured backend on `interface`, one capture.
pub fn open(interface: &str, settings: &CaptureSettings) -> Result<Box<dyn LiveCapture>, LiveError> {
    match settings.backend {
        CaptureBackend::Tpacket | CaptureBackend::AfPacket if settings.filter.is_some() => {
            Err(LiveError::BackendUnavailable(
                "capture filters need the libpcap backend ([capture] backend = \"libpcap\")",
            ))
        }
        CaptureBackend::Tpacket => {
            let link = af_packet::link_type(interface)?;
            Ok(Box::new(tpacket::TpacketCapture::open(interface, settings, link, None)?))
        }
        CaptureBackend::AfPacket => Ok(Box::new(af_packet::AfPacketCapture::open(interface)?)),
        #[cfg(feature = "libpcap")]
        CaptureBackend::Libpcap => Ok(Box::new(libpcap::PcapCapture::open(interface, settings)?)),
        #[cfg(not(feature = "libpcap"))]
        CaptureBackend::Libpcap => Err(LiveError::BackendUnavailable(
            "this floodwatch was built without the libpcap backend: rebuild with `cargo build --release --features libpcap`",
        )),
    }
}

/// What the kernel counted for an AF_PACKET socket since it opened.
#[derive(Default)]
struct KernelCounters {
    received: u64,
    dropped: u64,
}

impl KernelCounters {
    /// Adds what the kernel counted since the last read (PACKET_STATISTICS resets on every
    /// read) and returns the totals.
    fn read(&mut self, fd: i32) -> CaptureStats {
        if let Some((received, dropped)) = packet_statistics(fd) {
            self.received += received;
            self.dropped += dropped;
        }
        CaptureStats { received: Some(self.received), kernel_dropped: Some(self.dropped), interface_dropped: None }
    }
}

/// Packets the kernel received and dropped for an AF_PACKET socket (of any TPACKET version)
/// since the last call.
fn packet_statistics(fd: i32) -> Option<(u64, u64)> {
    // The v3 layout starts with the older one's two counters; the kernel writes what the
    // socket's version has.
    let mut stats = libc::tpacket_stats_v3 { tp_packets: 0, tp_drops: 0, tp_freeze_q_cnt: 0 };
    let mut len = std::mem::size_of::<libc::tpacket_stats_v3>() as libc::socklen_t;
    // SAFETY: getsockopt writes at most `len` bytes into `stats`, which is that size.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_PACKET,
            libc::PACKET_STATISTICS,
            (&mut stats as *mut libc::tpacket_stats_v3).cast(),
            &mut len,
        )
    };
    (rc == 0).then_some((u64::from(stats.tp_packets), u64::from(stats.tp_drops)))
}

/// Whether `interface` can carry packets now (administratively up, with a carrier); `None`
/// when there is no such interface in this network namespace. An ioctl rather than
/// `/sys/class/net`: sysfs may show another namespace's interfaces.
pub fn link_is_up(interface: &str) -> Option<bool> {
    let name = interface.as_bytes();
    // SAFETY: ifreq is plain data; all zeroes is a valid value.
    let mut request: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.is_empty() || name.len() >= request.ifr_name.len() || name.contains(&0) {
        return None;
    }
    for (to, from) in request.ifr_name.iter_mut().zip(name) {
        *to = *from as libc::c_char;
    }
    // SAFETY: a plain socket call; the descriptor is closed below.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return None;
    }
    // SAFETY: SIOCGIFFLAGS reads the NUL-terminated name and writes the flags into `request`.
    let rc = unsafe { libc::ioctl(fd, libc::SIOCGIFFLAGS, &mut request) };
    // SAFETY: `fd` is ours and open.
    unsafe { libc::close(fd) };
    if rc < 0 {
        return None;
    }
    // SAFETY: after SIOCGIFFLAGS the union holds the flags.
    let flags = i32::from(unsafe { request.ifr_ifru.ifru_flags });
    Some(flags & libc::IFF_UP != 0 && flags & libc::IFF_RUNNING != 0)
}

/// Nanoseconds since the epoch, now.
pub fn wall_clock_ns() -> i64 {
    match std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_nanos().min(i64::MAX as u128) as i64,
        Err(e) => -(e.duration().as_nanos().min(i64::MAX as u128) as i64),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_loopback_link_is_up_and_a_missing_interface_is_none() {
        assert_eq!(link_is_up("lo"), Some(true));
        assert_eq!(link_is_up("fw-no-such0"), None);
        assert_eq!(link_is_up(""), None);
        assert_eq!(link_is_up("a-name-far-too-long-for-linux"), None);
    }
}
