//! What the function may do, as Warden's in-process guard enforces it, defined once for every
//! side that reads or writes it:
//!
//! - [`policy`]: the zero-trust policy file (`WARDEN_POLICY`): parsed by the guard in each
//!   process, written by `warden policy export`, fuzzed as input from outside;
//! - [`lockdown`]: the lockdown page Warden writes when the environment's risk locks it down,
//!   and the guard matches calls against.
//!
//! No allocation happens in matching: the guard calls it from inside hooked libc calls.

pub mod lockdown;
pub mod policy;

use std::net::IpAddr;

/// How an exec reached the program it runs, from the most to the least telling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum How {
    /// An anonymous memory file (`memfd_create`): nothing on disk.
    Memfd,
    /// A file deleted since it was opened.
    Deleted,
    /// A dynamic loader run with the program as its argument.
    Loader,
    /// A descriptor (`fexecve`, `execveat` with `AT_EMPTY_PATH`, `/proc/self/fd/N`).
    Fd,
    /// A path.
    Path,
}

impl How {
    /// The name events carry.
    pub fn as_str(self) -> &'static str {
        match self {
            How::Memfd => "memfd",
            How::Deleted => "deleted",
            How::Loader => "loader",
            How::Fd => "fd",
            How::Path => "path",
        }
    }
}

/// The last component of a path.
pub fn base_name(path: &[u8]) -> &[u8] {
    match path.iter().rposition(|&b| b == b'/') {
        Some(at) => &path[at + 1..],
        None => path,
    }
}

/// An IPv4 address written as IPv6 (`::ffff:a.b.c.d`) is the IPv4 address.
pub fn unmapped(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}
