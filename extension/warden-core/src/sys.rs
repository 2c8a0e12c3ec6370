//! The system calls no safe wrapper offers, behind safe functions: the only module of the
//! workspace's shipped code that may use `unsafe`. Everything else calls the kernel through
//! `rustix` (or std).
//!
//! - Descriptors Warden finds by number in `/proc/self/fd` (its own AWS connections, see
//!   `sources::procfs::own_traffic`) are not owned by the caller: they are borrowed here
//!   only for one call, and a descriptor closed meanwhile just makes that call fail.
//! - `TCP_INFO` and `getdents64` have no wrapper in rustix; registering a descriptor with
//!   tokio's reactor is `unsafe` in tokio itself.
#![allow(unsafe_code)]

use std::io;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd, RawFd};

use rustix::fs::FileType;
use rustix::net::{SocketAddrAny, SocketAddrV4, SocketAddrV6};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

/// Kernel totals of one TCP socket.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TcpTotals {
    /// Bytes the peer acknowledged.
    pub tx_bytes: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Segments sent.
    pub segs_out: u64,
    /// Segments received.
    pub segs_in: u64,
}

/// Borrows descriptor `fd` of this process for one call. A number that is not (or no longer)
/// an open descriptor only makes the call fail with `EBADF`: the kernel checks it.
fn borrow(fd: RawFd) -> Option<BorrowedFd<'static>> {
    if fd < 0 {
        return None;
    }
    // SAFETY: not -1; the descriptor is only passed to system calls, which validate it, and it
    // is never closed or kept through this handle.
    Some(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// The inode of descriptor `fd` of this process when it is a socket.
pub fn socket_inode(fd: RawFd) -> Option<u64> {
    let st = rustix::fs::fstat(borrow(fd)?).ok()?;
    (FileType::from_raw_mode(st.st_mode) == FileType::Socket).then_some(st.st_ino)
}

/// The peer of socket `fd` of this process (IPv4-mapped IPv6 shown as IPv4).
pub fn peer_address(fd: RawFd) -> Option<SocketAddr> {
    inet(rustix::net::getpeername(borrow(fd)?).ok()??)
}

/// The local address of socket `fd` of this process.
pub fn local_address(fd: RawFd) -> Option<SocketAddr> {
    inet(rustix::net::getsockname(borrow(fd)?).ok()?)
}

fn inet(addr: SocketAddrAny) -> Option<SocketAddr> {
    if let Ok(v4) = SocketAddrV4::try_from(addr.clone()) {
        return Some(SocketAddr::new(IpAddr::V4(*v4.ip()), v4.port()));
    }
    let v6 = SocketAddrV6::try_from(addr).ok()?;
    let ip: Ipv6Addr = *v6.ip();
    let ip = ip.to_ipv4_mapped().map_or(IpAddr::V6(ip), IpAddr::V4);
    Some(SocketAddr::new(ip, v6.port()))
}

/// The kernel's totals of TCP socket `fd` of this process; `None` for another kind of socket.
pub fn tcp_totals(fd: RawFd) -> Option<TcpTotals> {
    let fd = borrow(fd)?;
    let mut info = MaybeUninit::<libc::tcp_info>::zeroed();
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: the kernel writes at most `len` bytes into `info`, which is that large.
    let rc = unsafe {
        libc::getsockopt(
            fd.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: zeroed, then (partly) written by the kernel: every field is a plain integer.
    let info = unsafe { info.assume_init() };
    Some(TcpTotals {
        tx_bytes: info.tcpi_bytes_acked,
        rx_bytes: info.tcpi_bytes_received,
        segs_out: info.tcpi_segs_out.into(),
        segs_in: info.tcpi_segs_in.into(),
    })
}

/// Registers `fd` with the tokio reactor for readability.
pub fn async_readable(fd: OwnedFd) -> io::Result<AsyncFd<OwnedFd>> {
    // SAFETY: the AsyncFd owns the OwnedFd, so the descriptor stays open for the AsyncFd's
    // whole life and always yields the same descriptor.
    unsafe { AsyncFd::register_with_interest(fd, Interest::READABLE) }.map_err(|e| e.into_parts().1)
}

/// Reads directory entries (`linux_dirent64` records) from `dir` at its current offset into
/// `buf`; 0 at the end.
pub fn getdents(dir: impl AsFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: the kernel writes at most `buf.len()` bytes into `buf`.
    let n = unsafe {
        libc::syscall(
            libc::SYS_getdents64,
            dir.as_fd().as_raw_fd(),
            buf.as_mut_ptr().cast::<libc::c_void>(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(n as usize)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};
    use std::os::fd::AsRawFd;

    #[test]
    fn addresses_and_inode_of_a_connected_socket() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let fd = client.as_raw_fd();
        assert_eq!(peer_address(fd), Some(listener.local_addr().unwrap()));
        assert_eq!(local_address(fd), Some(client.local_addr().unwrap()));
        assert!(socket_inode(fd).is_some());
        assert!(tcp_totals(fd).is_some());
    }

    #[test]
    fn a_file_or_a_closed_descriptor_is_not_a_socket() {
        let file = std::fs::File::open("/proc/self/stat").unwrap();
        assert_eq!(socket_inode(file.as_raw_fd()), None);
        assert_eq!(tcp_totals(file.as_raw_fd()), None);
        assert_eq!(peer_address(-1), None);
        assert_eq!(socket_inode(-1), None);
    }
}
