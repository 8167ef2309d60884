//! The systemd notification protocol (sd_notify), spoken directly over $NOTIFY_SOCKET:
//! READY=1, WATCHDOG=1, STATUS=..., STOPPING=1. Outside systemd every call is a no-op.

use std::os::unix::net::UnixDatagram;
use std::time::Duration;

pub struct Notifier {
    target: Option<(UnixDatagram, std::os::unix::net::SocketAddr)>,
}

impl Notifier {
    pub fn from_env() -> Notifier {
        let target = std::env::var_os("NOTIFY_SOCKET").and_then(|path| {
            let path = path.to_string_lossy().into_owned();
            match path.strip_prefix('@') {
                Some(name) => {
                    use std::os::linux::net::SocketAddrExt;
                    std::os::unix::net::SocketAddr::from_abstract_name(name.as_bytes()).ok()
                }
                None => std::os::unix::net::SocketAddr::from_pathname(&path).ok(),
            }
        });
        target.map_or(Notifier { target: None }, Notifier::to)
    }

    /// Notifications to the socket at `addr`.
    fn to(addr: std::os::unix::net::SocketAddr) -> Notifier {
        let socket = UnixDatagram::unbound().ok().filter(|s| {
            // Never wait on the receiver: a notification that finds its queue full is dropped
            // (systemd reads at once), rather than the control loop stalling on it.
            s.set_nonblocking(true).is_ok()
        });
        Notifier { target: socket.map(|s| (s, addr)) }
    }

    pub fn is_active(&self) -> bool {
        self.target.is_some()
    }

    /// Sends one notification; failures are ignored (systemd may be gone at shutdown).
    pub fn send(&self, message: &str) {
        if let Some((socket, addr)) = &self.target {
            let _ = socket.send_to_addr(message.as_bytes(), addr);
        }
    }

    /// How often systemd wants WATCHDOG=1, if it does ($WATCHDOG_USEC, for this process).
    pub fn watchdog_interval() -> Option<Duration> {
        let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
        if let Some(pid) = std::env::var("WATCHDOG_PID").ok().and_then(|p| p.parse::<u32>().ok()) {
            if pid != std::process::id() {
                return None;
            }
        }
        (usec > 0).then(|| Duration::from_micros(usec))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_reach_the_notify_socket_and_a_full_queue_never_blocks() {
        let dir = std::env::temp_dir().join(format!("fw-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixDatagram::bind(&path).unwrap();
        let n = Notifier::to(std::os::unix::net::SocketAddr::from_pathname(&path).unwrap());
        n.send("READY=1");
        let mut buf = [0u8; 64];
        let len = listener.recv(&mut buf).unwrap();
        assert_eq!(&buf[..len], b"READY=1");
        // Nobody reads now: the socket's queue fills (10 datagrams by default), and the sends
        // beyond it return at once.
        for _ in 0..10_000 {
            n.send("WATCHDOG=1");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
