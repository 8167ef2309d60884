//! AF_PACKET capture through `pnet`: needs no system library, only CAP_NET_RAW.
//!
//! The socket is created here and handed to pnet so that the kernel's drop counters
//! (PACKET_STATISTICS) can be read from it; pnet binds it to the interface and reads.

use super::{wall_clock_ns, CaptureStats, KernelCounters, LiveCapture, LiveError, READ_TIMEOUT};
use crate::capture::{Frame, LinkType};
use pnet::datalink::{self, Channel, DataLinkReceiver};

/// Large enough for offloaded (GRO) super-frames.
const READ_BUFFER: usize = 256 * 1024;

pub struct AfPacketCapture {
    rx: Box<dyn DataLinkReceiver>,
    fd: i32,
    link: LinkType,
    interface: String,
    kernel: KernelCounters,
}

/// The interface called `name`, or the error that lists those there are.
fn find_interface(name: &str) -> Result<datalink::NetworkInterface, LiveError> {
    let interfaces = datalink::interfaces();
    let available = || interfaces.iter().map(|i| i.name.clone()).collect();
    interfaces
        .iter()
        .find(|i| i.name == name)
        .cloned()
        .ok_or_else(|| LiveError::NoSuchInterface { name: name.to_string(), available: available() })
}

/// Interfaces without a link-layer header (tun, WireGuard) deliver bare IP.
fn link_of(iface: &datalink::NetworkInterface) -> LinkType {
    if iface.mac.is_none() && !iface.is_loopback() {
        LinkType::RAW
    } else {
        LinkType::ETHERNET
    }
}

/// The link type of the frames captured on interface `name`.
pub fn link_type(name: &str) -> Result<LinkType, LiveError> {
    find_interface(name).map(|iface| link_of(&iface))
}

impl AfPacketCapture {
    pub fn open(name: &str) -> Result<AfPacketCapture, LiveError> {
        let iface = find_interface(name)?;
        // SAFETY: plain socket(2) call; the descriptor is owned by pnet's receiver afterwards.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, (libc::ETH_P_ALL as u16).to_be() as i32) };
        if fd < 0 {
            let err = std::io::Error::last_os_error();
            return Err(match err.kind() {
                std::io::ErrorKind::PermissionDenied => LiveError::PermissionDenied { interface: name.to_string() },
                _ => LiveError::Io { interface: name.to_string(), message: err.to_string() },
            });
        }
        let config = datalink::Config {
            read_buffer_size: READ_BUFFER,
            read_timeout: Some(READ_TIMEOUT),
            promiscuous: true,
            socket_fd: Some(fd),
            ..Default::default()
        };
        let rx = match datalink::channel(&iface, config) {
            Ok(Channel::Ethernet(_tx, rx)) => rx,
            Ok(_) => {
                return Err(LiveError::Io { interface: name.to_string(), message: "unexpected channel type".into() })
            }
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(LiveError::PermissionDenied { interface: name.to_string() })
            }
            Err(e) => return Err(LiveError::Io { interface: name.to_string(), message: e.to_string() }),
        };
        Ok(AfPacketCapture {
            rx,
            fd,
            link: link_of(&iface),
            interface: name.to_string(),
            kernel: KernelCounters::default(),
        })
    }
}

impl LiveCapture for AfPacketCapture {
    fn next_frame(&mut self) -> Result<Option<Frame<'_>>, LiveError> {
        match self.rx.next() {
            Ok(data) => Ok(Some(Frame { ts_ns: wall_clock_ns(), wire_len: data.len() as u32, link: self.link, data })),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::Interrupted) => Ok(None),
            Err(e) => Err(LiveError::Io { interface: self.interface.clone(), message: e.to_string() }),
        }
    }

    fn stats(&mut self) -> CaptureStats {
        self.kernel.read(self.fd)
    }

    fn backend(&self) -> &'static str {
        "af_packet"
    }
}
