//! Warden's end of the guard's channel: an abstract-namespace unix datagram socket that the
//! guard in every function process sends to without blocking. The kernel bounds the queue
//! (the socket's receive buffer): when Warden is slow, the guard's sends fail and it counts
//! them. Each datagram carries the sender's credentials, so a datagram claiming another
//! process is told apart.

use std::io;
use std::mem::MaybeUninit;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram as StdDatagram};

use rustix::io::IoSliceMut;
use rustix::net::{recvmsg, sockopt, RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags};
use tokio::io::Interest;
use tokio::net::UnixDatagram;

/// The socket's name (abstract namespace) when `WARDEN_GUARD_SOCKET` does not say.
pub const DEFAULT_NAME: &str = "warden-guard";

/// One datagram received.
#[derive(Debug, Clone, Copy)]
pub struct Received {
    /// Bytes in the datagram (may exceed the buffer: it was then cut).
    pub len: usize,
    /// The sending process, from the kernel.
    pub sender_pid: Option<u32>,
}

/// The bound socket.
pub struct GuardListener {
    socket: UnixDatagram,
}

impl GuardListener {
    /// Binds `name` in the abstract namespace (bound before the runtime starts, so function
    /// code cannot take the name first). Needs a tokio runtime.
    pub fn bind(name: &str) -> io::Result<GuardListener> {
        let socket = StdDatagram::bind_addr(&UnixAddr::from_abstract_name(name.as_bytes())?)?;
        sockopt::set_socket_passcred(&socket, true)?;
        socket.set_nonblocking(true)?;
        Ok(GuardListener {
            socket: UnixDatagram::from_std(socket)?,
        })
    }

    /// Waits for the next datagram and copies it into `buf`.
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<Received> {
        loop {
            self.socket.readable().await?;
            match self
                .socket
                .try_io(Interest::READABLE, || recv_one(&self.socket, buf))
            {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                result => return result,
            }
        }
    }
}

fn recv_one(socket: &UnixDatagram, buf: &mut [u8]) -> io::Result<Received> {
    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmCredentials(1))];
    let mut control = RecvAncillaryBuffer::new(&mut space);
    let mut iov = [IoSliceMut::new(buf)];
    let got = recvmsg(socket, &mut iov, &mut control, RecvFlags::TRUNC)?;
    let mut sender_pid = None;
    for message in control.drain() {
        if let RecvAncillaryMessage::ScmCredentials(cred) = message {
            sender_pid = Some(cred.pid.as_raw_nonzero().get() as u32);
        }
    }
    Ok(Received {
        len: got.bytes,
        sender_pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn datagrams_arrive_with_their_senders_pid() {
        let name = format!("warden-guard-test-{}", std::process::id());
        let listener = GuardListener::bind(&name).unwrap();
        let sender = std::os::unix::net::UnixDatagram::unbound().unwrap();
        let addr = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
        sender.send_to_addr(b"hello", &addr).unwrap();
        sender.send_to_addr(&[b'x'; 3000], &addr).unwrap();
        let mut buf = [0u8; 2048];
        let got = listener.recv(&mut buf).await.unwrap();
        assert_eq!((got.len, &buf[..5]), (5, &b"hello"[..]));
        assert_eq!(got.sender_pid, Some(std::process::id()));
        // Longer than the buffer: cut, and its real length told.
        let got = listener.recv(&mut buf).await.unwrap();
        assert_eq!(got.len, 3000);
        // The name is taken: a second bind fails.
        assert!(GuardListener::bind(&name).is_err());
    }
}
