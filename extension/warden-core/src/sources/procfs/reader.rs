//! Reads /proc under a configurable root, keeping files open and buffers reused between
//! snapshots (see [`super::files`]).

use std::fmt::Write as _;
use std::fs::File;
use std::io::Read;
use std::path::Path;

pub use super::files::HotFile;
use super::files::{HotDir, PidCache, PidFiles};
use super::netlink::DiagSocket;
use super::own_traffic::OwnTraffic;
use super::parse::{self, Socket};
use super::snapshot::CounterSnapshot;
use crate::schema::Proto;
use crate::sources::scratch::ScratchProbe;

/// Longest command line read for an observation, in bytes. Evidence keeps less
/// ([`crate::redact::EVIDENCE_MAX`]), cut only after redaction, so that a secret near the
/// cut is still recognised whole.
pub const CMDLINE_MAX: usize = 1024;

/// The four socket tables: /proc/net file, netlink family and protocol.
const SOCKET_TABLES: [(&str, Proto, i32, i32); 4] = [
    ("net/tcp", Proto::Tcp, libc::AF_INET, libc::IPPROTO_TCP),
    ("net/tcp6", Proto::Tcp, libc::AF_INET6, libc::IPPROTO_TCP),
    ("net/udp", Proto::Udp, libc::AF_INET, libc::IPPROTO_UDP),
    ("net/udp6", Proto::Udp, libc::AF_INET6, libc::IPPROTO_UDP),
];

/// Most processes whose files stay open (3 descriptors each). Beyond it, files are opened
/// per read, so a fork bomb cannot exhaust Warden's descriptors.
const MAX_CACHED_PIDS: usize = 64;

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
    /// Start time, clock ticks after boot.
    pub start_ticks: u64,
    /// Its standard input or output is a socket.
    pub stdio_socket: bool,
    /// It has exited and waits to be reaped (a zombie).
    pub exited: bool,
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
    loadavg: HotFile,
    snmp: HotFile,
    net_dev: HotFile,
    own_statm: HotFile,
    page_kb: u64,
    root_dir: Option<HotDir>,
    pid_files: PidCache,
    dirents: Vec<u8>,
    /// sock_diag socket and, per table, whether netlink still serves it.
    diag: Option<DiagSocket>,
    diag_tables: [bool; 4],
    diag_sockets: Vec<Socket>,
    /// The last snapshot's pid allocator value and its live pids: while the allocator has
    /// not moved, no process can have started, so the listing of /proc is not needed.
    listed: Option<(u32, Vec<u32>)>,
    /// Warden's own outside connections, read only when Warden makes any.
    own_traffic: Option<OwnTraffic>,
}

impl ProcReader {
    /// A reader of `root` that leaves `self_pid` out of every sum.
    pub fn new(root: &Path, self_pid: u32) -> ProcReader {
        let root_text = root.to_string_lossy().trim_end_matches('/').to_string();
        // Netlink sees the kernel's own sockets, so it stands in for /proc/net only when
        // the root is the real /proc (tests use fake trees).
        let diag = (root_text == "/proc")
            .then(DiagSocket::open)
            .and_then(Result::ok);
        ProcReader {
            loadavg: HotFile::with_capacity(&root.join("loadavg"), 256),
            snmp: HotFile::with_capacity(&root.join("net/snmp"), 4096),
            net_dev: HotFile::with_capacity(&root.join("net/dev"), 4096),
            own_statm: HotFile::with_capacity(&root.join(format!("{self_pid}/statm")), 256),
            page_kb: page_kb(),
            root_dir: HotDir::open(root).ok(),
            pid_files: PidCache::default(),
            dirents: vec![0; 8192],
            diag_tables: [diag.is_some(); 4],
            diag,
            diag_sockets: Vec::new(),
            listed: None,
            own_traffic: None,
            root: root_text,
            self_pid,
            path: String::with_capacity(64),
            text: String::with_capacity(4096),
            bytes: Vec::with_capacity(512),
            errors: 0,
        }
    }

    /// Reads Warden's own outside connections at each snapshot, so that counter differences
    /// leave them out; connections accepted on `listening_port` are the platform's.
    pub fn track_own_traffic(&mut self, listening_port: Option<u16>) {
        self.own_traffic = Some(OwnTraffic::new(listening_port));
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
        parse::parse_last_pid(self.loadavg.read()?).ok()
    }

    /// Counters from /proc/net/snmp.
    pub fn snmp(&mut self) -> Option<parse::Snmp> {
        parse::parse_snmp(self.snmp.read()?).ok()
    }

    /// Live process ids, sorted, Warden's own left out.
    pub fn list_pids(&mut self, out: &mut Vec<u32>) {
        out.clear();
        let me = self.self_pid;
        let listed = match &self.root_dir {
            Some(dir) => dir.for_each(&mut self.dirents, |name| {
                if let Some(pid) = std::str::from_utf8(name).ok().and_then(|n| n.parse().ok()) {
                    if pid != me {
                        out.push(pid);
                    }
                }
            }),
            None => Err(std::io::ErrorKind::NotFound.into()),
        };
        if listed.is_err() {
            self.errors += 1;
        }
        out.sort_unstable();
    }

    /// Takes a full counter snapshot. The cheap namespace-wide counters come first, so
    /// they are the closest to the moment the INVOKE arrived.
    pub fn snapshot(&mut self, scratch: &ScratchProbe) -> CounterSnapshot {
        let mut s = CounterSnapshot {
            own_cpu_us: own_cpu_us(),
            last_pid: self.last_pid(),
            ..CounterSnapshot::default()
        };
        // Before the interface counters: what Warden's sockets counted by then, the interfaces
        // had counted too, so taking it off never takes off the function's bytes.
        if let Some(own) = &mut self.own_traffic {
            s.own_net = own.read();
        }
        if let Some(snmp) = self.snmp.read().map(parse::parse_snmp) {
            s.snmp = snmp.unwrap_or_default();
        }
        if let Some(dev) = self.net_dev.read().map(parse::parse_net_dev) {
            s.net = dev.unwrap_or_default();
        }
        // No pid allocated since the last snapshot: the processes are the ones listed then
        // that are still alive (an exited one fails its stat read), without a readdir of /proc.
        let unchanged = match (&self.listed, s.last_pid) {
            (Some((then, pids)), Some(now)) if *then == now => Some(pids.clone()),
            _ => None,
        };
        let reused = unchanged.is_some();
        let mut pids = unchanged.unwrap_or_else(|| {
            let mut pids = Vec::with_capacity(16);
            self.list_pids(&mut pids);
            pids
        });
        let mut gone = Vec::new();
        for &pid in &pids {
            if !self.add_process(pid, &mut s) && reused {
                gone.push(pid);
            }
        }
        if !gone.is_empty() {
            // What a listing would not have shown any more.
            pids.retain(|pid| !gone.contains(pid));
        }
        self.pid_files.retain(&pids);
        self.listed = s.last_pid.map(|now| (now, pids.clone()));
        s.pids = pids;
        if let Some(statm) = self.own_statm.read() {
            s.own_rss_kb = parse::parse_statm_rss(statm).map_or(0, |pages| pages * self.page_kb);
        }
        s.tmp = scratch.measure();
        s
    }

    /// Adds `pid`'s counters to `s`; false when its stat could not be read (it is gone).
    fn add_process(&mut self, pid: u32, s: &mut CounterSnapshot) -> bool {
        let mut spare = None;
        let (mut files, opened) =
            if self.pid_files.len() < MAX_CACHED_PIDS || self.pid_files.contains(pid) {
                self.pid_files.get(&self.root, pid)
            } else {
                (&mut *spare.insert(PidFiles::open(&self.root, pid)), true)
            };
        let mut stat = files.stat.read().and_then(|t| parse::parse_stat(t).ok());
        if stat.is_none() && !opened {
            // A kept file of an exited process: the number may be a new process now.
            files = self.pid_files.reopen(&self.root, pid);
            stat = files.stat.read().and_then(|t| parse::parse_stat(t).ok());
        }
        let Some(stat) = stat else {
            return false;
        };
        s.cpu_user_ticks += stat.cutime;
        s.cpu_system_ticks += stat.cstime;
        // PID 1 is the platform's init: only the children it reaped (orphans) are counted.
        if pid == 1 {
            return true;
        }
        s.cpu_user_ticks += stat.utime;
        s.cpu_system_ticks += stat.stime;
        s.processes += 1;
        s.threads += stat.threads;
        if let Some(st) = files
            .status
            .read()
            .and_then(|t| parse::parse_status(t).ok())
        {
            s.rss_kb += st.rss_kb;
            s.rss_peak_kb += st.hwm_kb;
        }
        if let Some(fd) = &files.fd {
            s.open_fds += fd.count(&mut self.dirents).unwrap_or(0);
        }
        true
    }

    /// Appends every socket of the four tables to `out`: over netlink sock_diag where it
    /// works, else from /proc/net (a table whose dump fails once stays on /proc/net).
    pub fn sockets(&mut self, out: &mut Vec<(Proto, Socket)>) {
        for (i, (table, proto, family, protocol)) in SOCKET_TABLES.into_iter().enumerate() {
            if self.diag_tables[i] {
                if let Some(diag) = self.diag.as_mut() {
                    self.diag_sockets.clear();
                    match diag.dump(family as u8, protocol as u8, &mut self.diag_sockets) {
                        Ok(()) => {
                            out.extend(self.diag_sockets.iter().map(|s| (proto, *s)));
                            continue;
                        }
                        Err(e) => {
                            crate::debug!(
                                "sock_diag for {table} failed ({e}); reading /proc/{table}"
                            );
                            self.diag_tables[i] = false;
                        }
                    }
                }
            }
            if let Some(text) = self.read_text(format_args!("{table}")) {
                out.extend(
                    text.lines()
                        .filter_map(parse::parse_socket_line)
                        .map(|s| (proto, s)),
                );
            }
        }
    }

    /// Whether socket tables are read over netlink (at least one table).
    pub fn uses_netlink(&self) -> bool {
        self.diag.is_some() && self.diag_tables.iter().any(|&t| t)
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
            start_ticks: stat.start_ticks,
            stdio_socket: self.stdio_socket(pid),
            exited: stat.exited(),
        })
    }

    /// Whether descriptor 0 or 1 of `pid` is a socket (a shell wired to a connection).
    fn stdio_socket(&mut self, pid: u32) -> bool {
        (0..2).any(|fd| {
            self.set_path(format_args!("{pid}/fd/{fd}"));
            std::fs::read_link(Path::new(&self.path))
                .is_ok_and(|t| t.as_os_str().as_encoded_bytes().starts_with(b"socket:"))
        })
    }

    /// Target of `/proc/[pid]/exe`.
    pub fn exe(&mut self, pid: u32) -> Option<String> {
        self.set_path(format_args!("{pid}/exe"));
        read_exe(Path::new(&self.path))
    }

    fn cmdline(&mut self, pid: u32) -> Option<String> {
        self.set_path(format_args!("{pid}/cmdline"));
        read_cmdline(Path::new(&self.path), &mut self.bytes)
    }
}

/// The target of a `/proc/[pid]/exe` link.
pub fn read_exe(link: &Path) -> Option<String> {
    let target = std::fs::read_link(link).ok()?;
    Some(target.to_string_lossy().into_owned())
}

/// A `/proc/[pid]/cmdline` file as text: arguments joined by spaces, at most
/// [`CMDLINE_MAX`] bytes; `buf` is scratch space. When the file is longer, the argument the
/// limit cuts is left out whole (a cut secret could not be recognised).
pub fn read_cmdline(file: &Path, buf: &mut Vec<u8>) -> Option<String> {
    buf.clear();
    File::open(file)
        .ok()?
        .take(CMDLINE_MAX as u64 + 1)
        .read_to_end(buf)
        .ok()?;
    if buf.len() > CMDLINE_MAX {
        let cut = buf[..CMDLINE_MAX]
            .iter()
            .rposition(|&b| b == 0)
            .unwrap_or(0);
        buf.truncate(cut);
    }
    while buf.last() == Some(&0) {
        buf.pop();
    }
    for b in buf.iter_mut() {
        if *b == 0 {
            *b = b' ';
        }
    }
    Some(String::from_utf8_lossy(buf).into_owned())
}

/// Warden's own CPU time (user + system) in microseconds.
pub fn own_cpu_us() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    (t.tv_sec as u64) * 1_000_000 + (t.tv_nsec as u64) / 1_000
}

/// Page size in KiB (statm counts pages).
fn page_kb() -> u64 {
    (rustix::param::page_size() as u64 / 1024).max(1)
}

/// Milliseconds since boot (`CLOCK_BOOTTIME`, the clock of a process's start time).
pub fn boot_ms() -> Option<u64> {
    let ts = rustix::time::clock_gettime_dynamic(rustix::time::DynamicClockId::Boottime).ok()?;
    Some(ts.tv_sec as u64 * 1000 + ts.tv_nsec as u64 / 1_000_000)
}

/// Clock ticks per second used by /proc/[pid]/stat (USER_HZ, nearly always 100).
pub fn ticks_per_sec() -> u64 {
    match rustix::param::clock_ticks_per_second() {
        0 => 100,
        t => t,
    }
}

#[cfg(test)]
mod tests;
