//! Socket tables over netlink `sock_diag` (`NETLINK_SOCK_DIAG`, `inet_diag_req_v2`).
//!
//! Reading /proc/net/tcp walks the kernel's whole connection hash table for every `read()`
//! of the file (a full walk per page of output plus one more for end of file), which costs
//! milliseconds on a host with a large table even when the namespace has no sockets. A
//! sock_diag dump walks it once and resumes where it stopped for each further batch. The
//! pure functions here build the request and parse the answer (bytes in, structs out);
//! [`DiagSocket`] does the I/O.

use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::OwnedFd;
use std::time::Duration;

use rustix::io::Errno;
use rustix::net::sockopt::Timeout;
use rustix::net::{netlink, AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use super::parse::Socket;

/// `SOCK_DIAG_BY_FAMILY`: the message type of requests and answers.
pub const SOCK_DIAG_BY_FAMILY: u16 = 20;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_HDRLEN: usize = 16;
/// `struct inet_diag_req_v2`: family, protocol, ext, pad, states, then `inet_diag_sockid`.
const REQ_LEN: usize = 56;
/// `struct inet_diag_msg`: family, state, timer, retrans, sockid (48), expires, rqueue,
/// wqueue, uid, inode.
const MSG_LEN: usize = 72;
/// Size of one dump request on the wire.
pub const REQUEST_LEN: usize = NLMSG_HDRLEN + REQ_LEN;

/// TCP_NEW_SYN_RECV: half-open inbound connections, kernel-only with no owner.
const SYN_RECV_MINISOCKETS: u32 = 1 << 12;
/// States asked for: all but half-open inbound connections. TIME_WAIT is kept: it is all
/// that is left of a connection opened and closed between two reads (inode 0), and it
/// still names where that connection went.
pub const STATES: u32 = !SYN_RECV_MINISOCKETS;

/// Why a dump failed.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    /// The socket could not be opened, or a send or receive failed.
    #[error("sock_diag I/O: {0}")]
    Io(#[from] io::Error),
    /// The kernel refused the request (e.g. ENOENT: the protocol's diag module is absent).
    #[error("sock_diag refused the request: errno {0}")]
    Refused(i32),
    /// An answer that does not parse.
    #[error("malformed sock_diag message: {0}")]
    Malformed(&'static str),
}

/// One dump request: `nlmsghdr` + `inet_diag_req_v2` asking for every socket of `family`
/// (`AF_INET`/`AF_INET6`) and `protocol` (`IPPROTO_TCP`/`IPPROTO_UDP`) in `states`.
pub fn dump_request(family: u8, protocol: u8, states: u32, seq: u32) -> [u8; REQUEST_LEN] {
    let mut m = [0u8; REQUEST_LEN];
    m[0..4].copy_from_slice(&(REQUEST_LEN as u32).to_ne_bytes());
    m[4..6].copy_from_slice(&SOCK_DIAG_BY_FAMILY.to_ne_bytes());
    m[6..8].copy_from_slice(&(NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    m[8..12].copy_from_slice(&seq.to_ne_bytes());
    // Port id 0: the kernel. The socket id stays zero: no filter, dump everything.
    m[16] = family;
    m[17] = protocol;
    m[20..24].copy_from_slice(&states.to_ne_bytes());
    m
}

/// Where a dump stands after one batch of messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// More batches follow.
    More,
    /// `NLMSG_DONE` seen.
    Done,
}

/// Parses one received batch of the dump numbered `seq`, appending sockets to `out`.
/// Messages of another sequence number (a dump abandoned earlier) are skipped.
pub fn parse_batch(mut buf: &[u8], seq: u32, out: &mut Vec<Socket>) -> Result<Progress, DiagError> {
    while buf.len() >= NLMSG_HDRLEN {
        let len = u32_at(buf, 0) as usize;
        if len < NLMSG_HDRLEN || len > buf.len() {
            return Err(DiagError::Malformed("message length"));
        }
        let kind = u16::from_ne_bytes([buf[4], buf[5]]);
        let body = &buf[NLMSG_HDRLEN..len];
        if u32_at(buf, 8) == seq {
            match kind {
                NLMSG_DONE => return Ok(Progress::Done),
                NLMSG_ERROR => {
                    let errno = body.get(..4).map_or(0, |b| i32_at(b, 0));
                    // Saturating: a negated i32::MIN overflows (found by fuzzing).
                    return Err(DiagError::Refused(errno.saturating_neg()));
                }
                SOCK_DIAG_BY_FAMILY => out.push(parse_socket(body)?),
                _ => {}
            }
        }
        // Messages are padded to 4 bytes.
        buf = buf.get((len + 3) & !3..).unwrap_or(&[]);
    }
    Ok(Progress::More)
}

/// Parses one `inet_diag_msg`.
pub fn parse_socket(msg: &[u8]) -> Result<Socket, DiagError> {
    if msg.len() < MSG_LEN {
        return Err(DiagError::Malformed("inet_diag_msg too short"));
    }
    let family = i32::from(msg[0]);
    let addr = |at: usize| -> Result<IpAddr, DiagError> {
        let b = &msg[at..at + 16];
        match family {
            libc::AF_INET => Ok(IpAddr::V4(Ipv4Addr::new(b[0], b[1], b[2], b[3]))),
            libc::AF_INET6 => {
                let mut bytes = [0u8; 16];
                bytes.copy_from_slice(b);
                let v6 = Ipv6Addr::from(bytes);
                // As the /proc parser does: IPv4 traffic on an IPv6 socket shows as IPv4.
                Ok(v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4))
            }
            _ => Err(DiagError::Malformed("address family")),
        }
    };
    let port = |at: usize| u16::from_be_bytes([msg[at], msg[at + 1]]);
    // sockid: sport, dport (big-endian), src[16], dst[16], ifindex, cookie[2].
    Ok(Socket {
        local: SocketAddr::new(addr(8)?, port(4)),
        remote: SocketAddr::new(addr(24)?, port(6)),
        state: msg[1],
        inode: u64::from(u32_at(msg, 68)),
    })
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn i32_at(b: &[u8], at: usize) -> i32 {
    i32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Longest a dump may block: the kernel answers at once, this only guards the pipeline.
const RECV_TIMEOUT: Duration = Duration::from_millis(100);

/// A netlink socket for sock_diag dumps, with its receive buffer.
#[derive(Debug)]
pub struct DiagSocket {
    fd: OwnedFd,
    buf: Vec<u8>,
    seq: u32,
}

impl DiagSocket {
    /// Opens the socket; fails where netlink is unavailable (seccomp, no CONFIG_INET_DIAG).
    pub fn open() -> Result<DiagSocket, DiagError> {
        let fd = rustix::net::socket_with(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            SocketFlags::CLOEXEC,
            Some(netlink::SOCK_DIAG),
        )
        .map_err(io::Error::from)?;
        rustix::net::sockopt::set_socket_timeout(&fd, Timeout::Recv, Some(RECV_TIMEOUT))
            .map_err(io::Error::from)?;
        Ok(DiagSocket {
            fd,
            buf: vec![0; 32 * 1024],
            seq: 0,
        })
    }

    /// Appends every socket of `family`/`protocol` in this network namespace to `out`.
    pub fn dump(
        &mut self,
        family: u8,
        protocol: u8,
        out: &mut Vec<Socket>,
    ) -> Result<(), DiagError> {
        self.seq = self.seq.wrapping_add(1);
        let request = dump_request(family, protocol, STATES, self.seq);
        rustix::net::send(&self.fd, &request, SendFlags::empty()).map_err(io::Error::from)?;
        let start = out.len();
        loop {
            let n = match rustix::net::recv(&self.fd, &mut self.buf[..], RecvFlags::empty()) {
                Ok((n, _)) => n,
                Err(Errno::INTR) => continue,
                Err(e) => {
                    out.truncate(start);
                    return Err(io::Error::from(e).into());
                }
            };
            match parse_batch(&self.buf[..n], self.seq, out) {
                Ok(Progress::Done) => return Ok(()),
                Ok(Progress::More) => {}
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
