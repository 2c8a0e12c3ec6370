//! Reads /proc under a configurable root, reusing its buffers between reads.

use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::path::Path;

use super::parse::{self, Socket};
use super::snapshot::CounterSnapshot;
use crate::sources::scratch::ScratchProbe;

/// Longest command line kept for an observation, in bytes.
pub const CMDLINE_MAX: usize = 256;

/// Transport of a socket table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    /// /proc/net/tcp and tcp6.
    Tcp,
    /// /proc/net/udp and udp6.
    Udp,
}

const SOCKET_TABLES: [(&str, Proto); 4] = [
    ("net/tcp", Proto::Tcp),
    ("net/tcp6", Proto::Tcp),
    ("net/udp", Proto::Udp),
    ("net/udp6", Proto::Udp),
];

/// Who a process is, as far as /proc tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// Process id.
    pub pid: u32,
    /// Parent process id.
    pub ppid: u32,
    /// Executable path (`/proc/[pid]/exe`), empty when unreadable.
    pub exe: String,
    /// Command line, arguments joined by spaces, at most [`CMDLINE_MAX`] bytes.
    pub cmdline: String,
}

/// Result of looking up one pid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// A process, with its identity.
    Process(ProcessInfo),
    /// A thread of some other process.
    Thread,
    /// No such pid any more (it exited, or was never readable).
    Gone,
}

/// A /proc reader rooted at `root` (normally `/proc`), skipping Warden's own pid.
#[derive(Debug)]
pub struct ProcReader {
    root: String,
    self_pid: u32,
    path: String,
    text: String,
    bytes: Vec<u8>,
    errors: u64,
}

impl ProcReader {
    /// A reader of `root` that leaves `self_pid` out of every sum.
    pub fn new(root: &Path, self_pid: u32) -> ProcReader {
        ProcReader {
            root: root.to_string_lossy().trim_end_matches('/').to_string(),
            self_pid,
            path: String::with_capacity(64),
            text: String::with_capacity(4096),
            bytes: Vec::with_capacity(512),
            errors: 0,
        }
    }

    /// Reads that failed unexpectedly since the last call (then resets to zero).
    pub fn take_errors(&mut self) -> u64 {
        std::mem::take(&mut self.errors)
    }

    fn set_path(&mut self, rel: std::fmt::Arguments<'_>) {
        self.path.clear();
        self.path.push_str(&self.root);
        self.path.push('/');
        let _ = self.path.write_fmt(rel);
    }

    /// Reads a text file into the reusable buffer. A missing file is normal (processes
    /// exit between listing and reading); other errors are counted.
    fn read_text(&mut self, rel: std::fmt::Arguments<'_>) -> Option<&str> {
        self.set_path(rel);
        self.text.clear();
        match File::open(&self.path).and_then(|mut f| f.read_to_string(&mut self.text)) {
            Ok(_) => Some(&self.text),
            Err(e) => {
                if !matches!(e.kind(), std::io::ErrorKind::NotFound)
                    && e.raw_os_error() != Some(libc::ESRCH)
                {
                    self.errors += 1;
                }
                None
            }
        }
    }

    /// The pid allocator's last value (`loadavg`), the cheapest "did anything start" check.
    pub fn last_pid(&mut self) -> Option<u32> {
        let text = self.read_text(format_args!("loadavg"))?;
        parse::parse_last_pid(text).ok()
    }

    /// Counters from /proc/net/snmp.
    pub fn snmp(&mut self) -> Option<parse::Snmp> {
        self.read_text(format_args!("net/snmp"))
            .and_then(|t| parse::parse_snmp(t).ok())
    }

    /// Live process ids, sorted, Warden's own left out.
    pub fn list_pids(&mut self, out: &mut Vec<u32>) {
        out.clear();
        let Ok(dir) = std::fs::read_dir(&self.root) else {
            self.errors += 1;
            return;
        };
        for entry in dir.flatten() {
            let name = entry.file_name();
            if let Some(pid) = name.to_str().and_then(|n| n.parse::<u32>().ok()) {
                if pid != self.self_pid {
                    out.push(pid);
                }
            }
        }
        out.sort_unstable();
    }

    /// Takes a full counter snapshot.
    pub fn snapshot(&mut self, scratch: &ScratchProbe) -> CounterSnapshot {
        let mut s = CounterSnapshot {
            own_cpu_us: own_cpu_us(),
            last_pid: self.last_pid(),
            ..CounterSnapshot::default()
        };
        let mut pids = Vec::with_capacity(16);
        self.list_pids(&mut pids);
        for &pid in &pids {
            self.add_process(pid, &mut s);
        }
        s.pids = pids;
        let me = self.self_pid;
        if let Some(status) = self.read_text(format_args!("{me}/status")) {
            s.own_rss_kb = parse::parse_status(status).map_or(0, |st| st.rss_kb);
        }
        if let Some(snmp) = self
            .read_text(format_args!("net/snmp"))
            .map(parse::parse_snmp)
        {
            s.snmp = snmp.unwrap_or_default();
        }
        if let Some(dev) = self
            .read_text(format_args!("net/dev"))
            .map(parse::parse_net_dev)
        {
            s.net = dev.unwrap_or_default();
        }
        s.tmp = scratch.measure();
        s
    }

    fn add_process(&mut self, pid: u32, s: &mut CounterSnapshot) {
        let Some(stat) = self
            .read_text(format_args!("{pid}/stat"))
            .and_then(|t| parse::parse_stat(t).ok())
        else {
            return;
        };
        s.cpu_user_ticks += stat.cutime;
        s.cpu_system_ticks += stat.cstime;
        // PID 1 is the platform's init: only the children it reaped (orphans) are counted.
        if pid == 1 {
            return;
        }
        s.cpu_user_ticks += stat.utime;
        s.cpu_system_ticks += stat.stime;
        s.processes += 1;
        s.threads += stat.threads;
        if let Some(st) = self
            .read_text(format_args!("{pid}/status"))
            .and_then(|t| parse::parse_status(t).ok())
        {
            s.rss_kb += st.rss_kb;
            s.rss_peak_kb += st.hwm_kb;
        }
        self.set_path(format_args!("{pid}/fd"));
        if let Ok(fds) = std::fs::read_dir(&self.path) {
            s.open_fds += fds.count() as u32;
        }
    }

    /// Appends every socket of the four tables to `out`.
    pub fn sockets(&mut self, out: &mut Vec<(Proto, Socket)>) {
        for (table, proto) in SOCKET_TABLES {
            if let Some(text) = self.read_text(format_args!("{table}")) {
                out.extend(
                    text.lines()
                        .filter_map(parse::parse_socket_line)
                        .map(|s| (proto, s)),
                );
            }
        }
    }

    /// Identity of `pid`, or `None` if it is gone or is a thread of another process.
    pub fn process(&mut self, pid: u32) -> Option<ProcessInfo> {
        match self.probe(pid) {
            Probe::Process(info) => Some(info),
            Probe::Thread | Probe::Gone => None,
        }
    }

    /// What `pid` is now: a process (with its identity), a thread, or gone.
    pub fn probe(&mut self, pid: u32) -> Probe {
        let Some(status) = self
            .read_text(format_args!("{pid}/status"))
            .and_then(|t| parse::parse_status(t).ok())
        else {
            return Probe::Gone;
        };
        if status.tgid != pid {
            return Probe::Thread;
        }
        let Some(stat) = self
            .read_text(format_args!("{pid}/stat"))
            .and_then(|t| parse::parse_stat(t).ok())
        else {
            return Probe::Gone;
        };
        Probe::Process(ProcessInfo {
            pid,
            ppid: stat.ppid,
            exe: self.exe(pid).unwrap_or_default(),
            cmdline: self.cmdline(pid).unwrap_or_default(),
        })
    }

    /// Target of `/proc/[pid]/exe`.
    pub fn exe(&mut self, pid: u32) -> Option<String> {
        self.set_path(format_args!("{pid}/exe"));
        let target = std::fs::read_link(&self.path).ok()?;
        Some(target.to_string_lossy().into_owned())
    }

    fn cmdline(&mut self, pid: u32) -> Option<String> {
        self.set_path(format_args!("{pid}/cmdline"));
        self.bytes.clear();
        let file = File::open(&self.path).ok()?;
        file.take(CMDLINE_MAX as u64)
            .read_to_end(&mut self.bytes)
            .ok()?;
        while self.bytes.last() == Some(&0) {
            self.bytes.pop();
        }
        for b in &mut self.bytes {
            if *b == 0 {
                *b = b' ';
            }
        }
        Some(String::from_utf8_lossy(&self.bytes).into_owned())
    }
}

/// Warden's own CPU time (user + system) in microseconds.
pub fn own_cpu_us() -> u64 {
    // SAFETY: getrusage only writes into the zeroed struct it is given.
    let usage = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_SELF, &mut u) != 0 {
            return 0;
        }
        u
    };
    let us = |t: libc::timeval| (t.tv_sec as u64) * 1_000_000 + t.tv_usec as u64;
    us(usage.ru_utime) + us(usage.ru_stime)
}

/// A /proc file kept open and re-read from offset 0, which regenerates its content without
/// the cost of a path lookup per read (the sampler's hot path).
#[derive(Debug)]
pub struct HotFile {
    file: Option<File>,
    buf: Vec<u8>,
}

impl HotFile {
    /// Opens `path`; a missing file gives a handle that always reads `None`.
    pub fn open(path: &Path) -> HotFile {
        HotFile {
            file: File::open(path).ok(),
            buf: vec![0; 8192],
        }
    }

    /// Current content (up to 8 KiB, enough for loadavg and snmp).
    pub fn read(&mut self) -> Option<&str> {
        use std::os::unix::fs::FileExt;
        let n = self.file.as_ref()?.read_at(&mut self.buf, 0).ok()?;
        std::str::from_utf8(&self.buf[..n]).ok()
    }
}

/// Clock ticks per second used by /proc/[pid]/stat (USER_HZ, nearly always 100).
pub fn ticks_per_sec() -> u64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as u64
    } else {
        100
    }
}

#[cfg(test)]
#[path = "reader_tests.rs"]
mod tests;
