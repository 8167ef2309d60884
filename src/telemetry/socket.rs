//! The collector's UDP socket: datagrams read in batches with `recvmmsg(2)`, into buffers made
//! once, so a flood of telemetry costs one system call per batch and no allocation.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::Duration;

/// Datagrams read by one system call at most.
const BATCH: usize = 64;
/// The largest UDP payload over IPv4.
const DATAGRAM_MAX: usize = 65_507;
/// How long one read waits for a first datagram, so the caller can look at its stop flag.
const WAIT: Duration = Duration::from_millis(100);
/// The receive buffer asked for: the default (about 200 KiB) holds a millisecond of
/// datagrams at 100,000 a second, and drops at the first scheduling hiccup.
const RECEIVE_BUFFER: usize = 32 << 20;

pub struct DatagramSocket {
    socket: UdpSocket,
    buffers: Vec<u8>,
}

impl DatagramSocket {
    /// Binds `addr`; reads wait at most 100 ms.
    pub fn bind(addr: SocketAddr) -> io::Result<DatagramSocket> {
        let socket = UdpSocket::bind(addr)?;
        socket.set_read_timeout(Some(WAIT))?;
        let socket = DatagramSocket { socket, buffers: vec![0; BATCH * DATAGRAM_MAX] };
        socket.grow_receive_buffer();
        Ok(socket)
    }

    /// Asks for a 32 MiB receive buffer: beyond `net.core.rmem_max` with CAP_NET_ADMIN
    /// (SO_RCVBUFFORCE), else up to it (SO_RCVBUF). What the kernel granted is
    /// [`receive_buffer`](Self::receive_buffer).
    fn grow_receive_buffer(&self) {
        let size = RECEIVE_BUFFER as libc::c_int;
        for option in [libc::SO_RCVBUFFORCE, libc::SO_RCVBUF] {
            // SAFETY: `size` is a c_int that outlives the call, and its length is passed.
            let set = unsafe {
                libc::setsockopt(
                    self.socket.as_raw_fd(),
                    libc::SOL_SOCKET,
                    option,
                    (&size as *const libc::c_int).cast(),
                    std::mem::size_of::<libc::c_int>() as libc::socklen_t,
                )
            };
            if set == 0 {
                return;
            }
        }
    }

    /// The socket's receive buffer, bytes (the kernel counts its own overhead in it).
    pub fn receive_buffer(&self) -> usize {
        let mut size: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: `size` and `len` outlive the call; `len` holds `size`'s length.
        let got = unsafe {
            libc::getsockopt(
                self.socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVBUF,
                (&mut size as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if got == 0 {
            size.max(0) as usize
        } else {
            0
        }
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Waits up to 100 ms for datagrams, then hands each one read (up to 64) to `each`, with
    /// its sender's address. Returns how many; 0 when none came.
    pub fn recv_batch(&mut self, mut each: impl FnMut(&[u8], IpAddr)) -> io::Result<usize> {
        // SAFETY: zeroed iovec, sockaddr_storage and mmsghdr are valid (null pointers, zero
        // lengths, family AF_UNSPEC) until filled in below.
        let mut iovecs: [libc::iovec; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut senders: [libc::sockaddr_storage; BATCH] = unsafe { std::mem::zeroed() };
        // SAFETY: as above.
        let mut headers: [libc::mmsghdr; BATCH] = unsafe { std::mem::zeroed() };
        // One pointer into the buffers, offset for each datagram (not a new borrow per slot).
        let base = self.buffers.as_mut_ptr();
        for (i, ((iov, sender), header)) in
            iovecs.iter_mut().zip(senders.iter_mut()).zip(headers.iter_mut()).enumerate()
        {
            // SAFETY: the buffers hold BATCH * DATAGRAM_MAX bytes; slot i starts inside them.
            iov.iov_base = unsafe { base.add(i * DATAGRAM_MAX) }.cast();
            iov.iov_len = DATAGRAM_MAX;
            header.msg_hdr.msg_iov = iov;
            header.msg_hdr.msg_iovlen = 1;
            header.msg_hdr.msg_name = (sender as *mut libc::sockaddr_storage).cast();
            header.msg_hdr.msg_namelen = std::mem::size_of::<libc::sockaddr_storage>() as u32;
        }
        // SAFETY: `headers` holds BATCH entries, each pointing at one iovec over its own
        // DATAGRAM_MAX bytes of `self.buffers` and at its own sockaddr_storage (with its size),
        // all of which outlive the call. MSG_WAITFORONE:
        // block (up to the socket's read timeout) for the first datagram only.
        let n = unsafe {
            libc::recvmmsg(
                self.socket.as_raw_fd(),
                headers.as_mut_ptr(),
                BATCH as u32,
                libc::MSG_WAITFORONE,
                std::ptr::null_mut(),
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return match e.kind() {
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted => Ok(0),
                _ => Err(e),
            };
        }
        for (i, (header, sender)) in headers.iter().zip(&senders).take(n as usize).enumerate() {
            let len = (header.msg_len as usize).min(DATAGRAM_MAX);
            each(&self.buffers[i * DATAGRAM_MAX..i * DATAGRAM_MAX + len], address(sender));
        }
        Ok(n as usize)
    }
}

/// The IP address in a sender's socket address (unspecified for a family that has none).
fn address(sender: &libc::sockaddr_storage) -> IpAddr {
    match i32::from(sender.ss_family) {
        libc::AF_INET => {
            // SAFETY: the kernel wrote a sockaddr_in (its family says so) into storage that is
            // larger and at least as aligned.
            let v4 = unsafe { &*(sender as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            IpAddr::V4(Ipv4Addr::from(u32::from_be(v4.sin_addr.s_addr)))
        }
        libc::AF_INET6 => {
            // SAFETY: as above, a sockaddr_in6.
            let v6 = unsafe { &*(sender as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            IpAddr::V6(Ipv6Addr::from(v6.sin6_addr.s6_addr))
        }
        _ => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_receive_buffer_is_grown_beyond_a_plain_sockets() {
        let socket = DatagramSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let plain = DatagramSocket { socket: UdpSocket::bind("127.0.0.1:0").unwrap(), buffers: Vec::new() };
        assert!(socket.receive_buffer() > plain.receive_buffer(), "{} bytes", socket.receive_buffer());
    }

    #[test]
    fn datagrams_sent_together_are_read_in_one_batch_in_order() {
        let mut socket = DatagramSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let to = socket.local_addr().unwrap();
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        for i in 0..100u8 {
            sender.send_to(&vec![i; 1 + i as usize * 10], to).unwrap();
        }
        let mut got = Vec::new();
        while got.len() < 100 {
            let n = socket
                .recv_batch(|d, from| {
                    assert_eq!(from, IpAddr::V4(Ipv4Addr::LOCALHOST));
                    got.push((d[0], d.len()))
                })
                .unwrap();
            assert!(n > 0, "the datagrams were sent before the read");
            assert!(n <= BATCH);
        }
        let expected: Vec<(u8, usize)> = (0..100u8).map(|i| (i, 1 + i as usize * 10)).collect();
        assert_eq!(got, expected);
        // Nothing more: the read gives up after its wait.
        assert_eq!(socket.recv_batch(|_, _| panic!("no datagram")).unwrap(), 0);
    }
}
