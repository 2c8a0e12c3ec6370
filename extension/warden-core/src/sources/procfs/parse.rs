//! Parsers for the /proc files Warden reads. Each takes the file's text and never panics.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// Why a /proc file could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// A required field or line is absent.
    #[error("missing {0}")]
    Missing(&'static str),
    /// A field is present but not a number.
    #[error("{0} is not a number")]
    NotANumber(&'static str),
}

/// The fields Warden uses from `/proc/[pid]/stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidStat {
    /// State letter (`R`, `S`, `Z`, ...).
    pub state: u8,
    /// Parent process id.
    pub ppid: u32,
    /// User CPU of the process (all its threads, dead ones included), in clock ticks.
    pub utime: u64,
    /// System CPU, in clock ticks.
    pub stime: u64,
    /// User CPU of waited-for children, in clock ticks.
    pub cutime: u64,
    /// System CPU of waited-for children, in clock ticks.
    pub cstime: u64,
    /// Threads in the process.
    pub threads: u32,
    /// Start time after boot, in clock ticks.
    pub start_ticks: u64,
}

fn num<T: std::str::FromStr>(field: Option<&str>, name: &'static str) -> Result<T, ParseError> {
    field
        .ok_or(ParseError::Missing(name))?
        .parse()
        .map_err(|_| ParseError::NotANumber(name))
}

/// Parses `/proc/[pid]/stat`. The command name may hold spaces and parentheses, so fields
/// are counted from the last `)`.
pub fn parse_stat(text: &str) -> Result<PidStat, ParseError> {
    let close = text.rfind(')').ok_or(ParseError::Missing("comm"))?;
    // Fields after the name start at field 3 (state); index = field number - 3.
    let mut f = text[close + 1..].split_ascii_whitespace();
    let state = f
        .next()
        .and_then(|t| t.bytes().next())
        .ok_or(ParseError::Missing("state"))?;
    let ppid = num(f.next(), "ppid")?;
    let utime = num(f.nth(9), "utime")?;
    let stime = num(f.next(), "stime")?;
    let cutime: i64 = num(f.next(), "cutime")?;
    let cstime: i64 = num(f.next(), "cstime")?;
    let threads = num(f.nth(2), "num_threads")?;
    let start_ticks = num(f.nth(1), "starttime")?;
    Ok(PidStat {
        state,
        ppid,
        utime,
        stime,
        cutime: cutime.max(0) as u64,
        cstime: cstime.max(0) as u64,
        threads,
        start_ticks,
    })
}

impl PidStat {
    /// The process has exited and waits for its parent to reap it (a zombie): it runs
    /// nothing any more.
    pub fn exited(&self) -> bool {
        matches!(self.state, b'Z' | b'X')
    }
}

/// The fields Warden uses from `/proc/[pid]/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PidStatus {
    /// Thread group id: equals the pid for a process, differs for a thread.
    pub tgid: u32,
    /// Resident set size in KiB (absent for kernel threads and zombies: 0).
    pub rss_kb: u64,
    /// Peak resident set size in KiB.
    pub hwm_kb: u64,
}

/// Parses `/proc/[pid]/status`.
pub fn parse_status(text: &str) -> Result<PidStatus, ParseError> {
    let mut out = PidStatus::default();
    let mut saw_tgid = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim().trim_end_matches(" kB");
        match key {
            "Tgid" => {
                out.tgid = num(Some(value), "Tgid")?;
                saw_tgid = true;
            }
            "VmRSS" => out.rss_kb = num(Some(value), "VmRSS")?,
            "VmHWM" => out.hwm_kb = num(Some(value), "VmHWM")?,
            _ => {}
        }
    }
    if !saw_tgid {
        return Err(ParseError::Missing("Tgid"));
    }
    Ok(out)
}

/// Parses `/proc/[pid]/statm` and returns its second field: resident pages (the same
/// figure as `VmRSS` in `status`, at a fraction of the cost).
pub fn parse_statm_rss(text: &str) -> Result<u64, ParseError> {
    num(text.split_ascii_whitespace().nth(1), "resident")
}

/// Parses `/proc/loadavg` and returns its last field: the last pid allocated in the
/// reader's pid namespace.
pub fn parse_last_pid(text: &str) -> Result<u32, ParseError> {
    num(text.split_ascii_whitespace().nth(4), "last pid")
}

/// The TCP and UDP counters Warden uses from `/proc/net/snmp` (all cumulative except
/// `tcp_curr_estab`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Snmp {
    /// Tcp ActiveOpens: connect() attempts.
    pub tcp_active_opens: u64,
    /// Tcp PassiveOpens: connections accepted by listeners.
    pub tcp_passive_opens: u64,
    /// Tcp OutSegs: segments sent.
    pub tcp_out_segs: u64,
    /// Tcp RetransSegs: segments retransmitted.
    pub tcp_retrans_segs: u64,
    /// Tcp CurrEstab: connections now established (a gauge).
    pub tcp_curr_estab: u64,
    /// Udp InDatagrams.
    pub udp_in_datagrams: u64,
    /// Udp OutDatagrams.
    pub udp_out_datagrams: u64,
}

/// Parses `/proc/net/snmp`: each protocol has a header line of names and a line of values.
pub fn parse_snmp(text: &str) -> Result<Snmp, ParseError> {
    let mut out = Snmp::default();
    let (mut tcp, mut udp) = (false, false);
    let mut lines = text.lines();
    while let Some(header) = lines.next() {
        let Some((proto, names)) = header.split_once(':') else {
            continue;
        };
        if proto != "Tcp" && proto != "Udp" {
            continue;
        }
        let Some(values) = lines.next().and_then(|l| l.split_once(':')).map(|(_, v)| v) else {
            return Err(ParseError::Missing("snmp values line"));
        };
        for (name, value) in names
            .split_ascii_whitespace()
            .zip(values.split_ascii_whitespace())
        {
            let slot = match (proto, name) {
                ("Tcp", "ActiveOpens") => &mut out.tcp_active_opens,
                ("Tcp", "PassiveOpens") => &mut out.tcp_passive_opens,
                ("Tcp", "OutSegs") => &mut out.tcp_out_segs,
                ("Tcp", "RetransSegs") => &mut out.tcp_retrans_segs,
                ("Tcp", "CurrEstab") => &mut out.tcp_curr_estab,
                ("Udp", "InDatagrams") => &mut out.udp_in_datagrams,
                ("Udp", "OutDatagrams") => &mut out.udp_out_datagrams,
                _ => continue,
            };
            *slot = num(Some(value), "snmp counter")?;
        }
        tcp |= proto == "Tcp";
        udp |= proto == "Udp";
    }
    match (tcp, udp) {
        (true, true) => Ok(out),
        (false, _) => Err(ParseError::Missing("Tcp")),
        (_, false) => Err(ParseError::Missing("Udp")),
    }
}

/// Byte counters from `/proc/net/dev`, loopback apart from every other interface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetDev {
    /// Bytes received on non-loopback interfaces.
    pub rx_bytes: u64,
    /// Bytes sent on non-loopback interfaces.
    pub tx_bytes: u64,
    /// Bytes received on `lo`.
    pub lo_rx_bytes: u64,
    /// Bytes sent on `lo`.
    pub lo_tx_bytes: u64,
}

/// Parses `/proc/net/dev` (two header lines, then `name: rx fields... tx fields...`).
pub fn parse_net_dev(text: &str) -> Result<NetDev, ParseError> {
    let mut out = NetDev::default();
    let mut rows = 0;
    for line in text.lines().skip(2) {
        let Some((name, fields)) = line.split_once(':') else {
            continue;
        };
        let mut f = fields.split_ascii_whitespace();
        let rx: u64 = num(f.next(), "rx bytes")?;
        let tx: u64 = num(f.nth(7), "tx bytes")?;
        // Saturating: a file with absurd counters must not overflow (found by fuzzing).
        if name.trim() == "lo" {
            out.lo_rx_bytes = out.lo_rx_bytes.saturating_add(rx);
            out.lo_tx_bytes = out.lo_tx_bytes.saturating_add(tx);
        } else {
            out.rx_bytes = out.rx_bytes.saturating_add(rx);
            out.tx_bytes = out.tx_bytes.saturating_add(tx);
        }
        rows += 1;
    }
    if rows == 0 {
        return Err(ParseError::Missing("interface"));
    }
    Ok(out)
}

/// TCP state code for LISTEN in /proc/net/tcp.
pub const TCP_LISTEN: u8 = 0x0A;

/// One socket from `/proc/net/{tcp,tcp6,udp,udp6}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Socket {
    /// Local address and port.
    pub local: SocketAddr,
    /// Remote address and port (unspecified for listeners and unconnected UDP).
    pub remote: SocketAddr,
    /// Kernel state code (TCP: 01 established, 0A listen, ...; UDP: 07 unconnected).
    pub state: u8,
    /// Socket inode: tells a new socket from an old one to the same endpoint.
    pub inode: u64,
}

/// Parses one data line of a /proc/net socket table; `None` for the header or bad lines.
pub fn parse_socket_line(line: &str) -> Option<Socket> {
    let mut f = line.split_ascii_whitespace();
    f.next()?.strip_suffix(':')?;
    let local = parse_endpoint(f.next()?)?;
    let remote = parse_endpoint(f.next()?)?;
    let state = u8::from_str_radix(f.next()?, 16).ok()?;
    let inode = f.nth(5)?.parse().ok()?;
    Some(Socket {
        local,
        remote,
        state,
        inode,
    })
}

/// `0100007F:1F90` (IPv4) or 32 hex digits then `:port` (IPv6). The kernel prints each
/// 32-bit word of the address as a native-endian integer.
fn parse_endpoint(text: &str) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let word = |i: usize| -> Option<[u8; 4]> {
        let hex = addr.get(i * 8..i * 8 + 8)?;
        Some(u32::from_str_radix(hex, 16).ok()?.to_ne_bytes())
    };
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(0)?)),
        32 => {
            let mut bytes = [0u8; 16];
            for i in 0..4 {
                bytes[i * 4..i * 4 + 4].copy_from_slice(&word(i)?);
            }
            let v6 = Ipv6Addr::from(bytes);
            v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4)
        }
        _ => return None,
    };
    Some(SocketAddr::new(ip, port))
}

#[cfg(test)]
mod tests;
