//! The process view responses need: parents and start times from /proc, the processes that
//! are never touched, and killing a tree.
//!
//! What is never killed: Warden itself, its ancestors (the platform's init), pid 1, and the
//! platform's processes — the runtime and the other extensions. Lambda's init starts those as
//! children of itself, so they are Warden's siblings; they are captured (pid and start time)
//! at the first INVOKE, when init is complete. A sibling that appears later is not protected:
//! it is an orphan the kernel re-parented to init (a double-forked daemon), i.e. attack
//! residue. Before the capture every sibling is protected.

use rustix::process::{Pid, Signal};
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::OnceLock;

use crate::sources::procfs::parse::parse_stat;

/// Longest parent chain followed (a cycle in a fake tree must not loop forever).
const MAX_DEPTH: usize = 64;

/// One process: parent and start time (ticks after boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Proc {
    /// Parent pid.
    pub ppid: u32,
    /// `/proc/PID/stat` field 22.
    pub start_ticks: u64,
}

/// Every process of one /proc scan.
#[derive(Debug, Clone, Default)]
pub struct ProcTable {
    procs: HashMap<u32, Proc>,
}

impl ProcTable {
    /// Reads `root/*/stat`; processes that vanish during the scan are left out.
    pub fn read(root: &Path) -> ProcTable {
        let mut procs = HashMap::new();
        let Ok(dir) = std::fs::read_dir(root) else {
            return ProcTable { procs };
        };
        for entry in dir.flatten() {
            let Some(pid) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.parse::<u32>().ok())
            else {
                continue;
            };
            let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
                continue;
            };
            if let Ok(s) = parse_stat(&text) {
                procs.insert(
                    pid,
                    Proc {
                        ppid: s.ppid,
                        start_ticks: s.start_ticks,
                    },
                );
            }
        }
        ProcTable { procs }
    }

    /// A table from (pid, ppid, start) triples (tests).
    pub fn from_entries(entries: &[(u32, u32, u64)]) -> ProcTable {
        ProcTable {
            procs: entries
                .iter()
                .map(|&(pid, ppid, start_ticks)| (pid, Proc { ppid, start_ticks }))
                .collect(),
        }
    }

    /// The process `pid`, if it exists.
    pub fn get(&self, pid: u32) -> Option<Proc> {
        self.procs.get(&pid).copied()
    }

    /// Parent, grandparent, ... up to the root.
    pub fn ancestors(&self, pid: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut at = pid;
        while let Some(p) = self.procs.get(&at) {
            if p.ppid == 0 || p.ppid == at || out.len() >= MAX_DEPTH || out.contains(&p.ppid) {
                break;
            }
            out.push(p.ppid);
            at = p.ppid;
        }
        out
    }

    /// Direct children of `pid`, sorted.
    pub fn children(&self, pid: u32) -> Vec<u32> {
        let mut out: Vec<u32> = self
            .procs
            .iter()
            .filter(|(&c, p)| p.ppid == pid && c != pid)
            .map(|(&c, _)| c)
            .collect();
        out.sort_unstable();
        out
    }

    /// Every descendant of `pid`, parents before their children (`pid` not included).
    pub fn descendants(&self, pid: u32) -> Vec<u32> {
        let mut out = Vec::new();
        let mut queue = vec![pid];
        let mut seen = HashSet::from([pid]);
        while let Some(at) = queue.pop() {
            for c in self.children(at) {
                if seen.insert(c) {
                    out.push(c);
                    queue.push(c);
                }
            }
        }
        out
    }
}

/// The runtime and the other extensions, as they were at the first INVOKE.
#[derive(Debug, Default)]
pub struct Platform {
    procs: OnceLock<Vec<(u32, u64)>>,
}

impl Platform {
    /// Records Warden's siblings once; later calls do nothing.
    pub fn capture(&self, table: &ProcTable, self_pid: u32) {
        if self.procs.get().is_some() {
            return;
        }
        let siblings = siblings(table, self_pid)
            .into_iter()
            .filter_map(|pid| table.get(pid).map(|p| (pid, p.start_ticks)))
            .collect();
        let _ = self.procs.set(siblings);
    }

    /// Whether [`Platform::capture`] has run.
    pub fn captured(&self) -> bool {
        self.procs.get().is_some()
    }
}

fn siblings(table: &ProcTable, self_pid: u32) -> Vec<u32> {
    match table.get(self_pid) {
        Some(me) if me.ppid != 0 => table
            .children(me.ppid)
            .into_iter()
            .filter(|&p| p != self_pid)
            .collect(),
        _ => Vec::new(),
    }
}

/// The pids that must never be signalled, for one scan.
#[derive(Debug, Clone, Default)]
pub struct Protected {
    pids: HashSet<u32>,
}

impl Protected {
    /// Warden, its ancestors, pid 1, and the platform's processes with their ancestors.
    pub fn new(table: &ProcTable, self_pid: u32, platform: &Platform) -> Protected {
        let mut pids: HashSet<u32> = HashSet::from([1, self_pid]);
        pids.extend(table.ancestors(self_pid));
        let platform_pids: Vec<u32> = match platform.procs.get() {
            // A captured pid counts only while it is the same process (same start time).
            Some(list) => list
                .iter()
                .filter(|(pid, start)| table.get(*pid).is_some_and(|p| p.start_ticks == *start))
                .map(|(pid, _)| *pid)
                .collect(),
            None => siblings(table, self_pid),
        };
        for pid in platform_pids {
            pids.insert(pid);
            pids.extend(table.ancestors(pid));
        }
        Protected { pids }
    }

    /// Whether `pid` is protected.
    pub fn contains(&self, pid: u32) -> bool {
        self.pids.contains(&pid)
    }
}

/// Why an evidence process is not a target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTarget {
    /// It has exited.
    Gone,
    /// It is Warden, the runtime, another extension or one of their ancestors.
    Protected,
    /// The pid now belongs to a process started after the observation.
    Reused,
    /// It is already part of another target's tree.
    Covered,
}

impl NotTarget {
    /// Short reason for the audit trail.
    pub fn reason(self) -> &'static str {
        match self {
            NotTarget::Gone => "the process has exited",
            NotTarget::Protected => {
                "the runtime, an extension, Warden or an ancestor: never killed"
            }
            NotTarget::Reused => "the pid belongs to a newer process",
            NotTarget::Covered => "already in another target's process tree",
        }
    }
}

/// A process to kill with its tree, parents before children.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tree {
    /// The evidence process.
    pub root: u32,
    /// Its descendants, parents first; protected ones left out.
    pub descendants: Vec<u32>,
}

/// Picks the trees to kill from evidence pids (in order). `not_after` is the latest start
/// time (ticks after boot) a target may have: a later one is a reused pid.
pub fn targets(
    table: &ProcTable,
    protected: &Protected,
    roots: &[u32],
    not_after: Option<u64>,
) -> Vec<Result<Tree, (u32, NotTarget)>> {
    let mut covered: HashSet<u32> = HashSet::new();
    let mut out = Vec::new();
    for &root in roots {
        let verdict = match table.get(root) {
            None => Err(NotTarget::Gone),
            Some(_) if protected.contains(root) => Err(NotTarget::Protected),
            Some(p) if not_after.is_some_and(|t| p.start_ticks > t) => Err(NotTarget::Reused),
            Some(_) if covered.contains(&root) => Err(NotTarget::Covered),
            Some(_) => Ok(()),
        };
        match verdict {
            Ok(()) => {
                let descendants: Vec<u32> = table
                    .descendants(root)
                    .into_iter()
                    .filter(|d| !protected.contains(*d))
                    .collect();
                covered.insert(root);
                covered.extend(&descendants);
                out.push(Ok(Tree { root, descendants }));
            }
            Err(why) => out.push(Err((root, why))),
        }
    }
    out
}

/// Why a kill failed.
#[derive(Debug, thiserror::Error)]
pub enum KillError {
    /// `kill(2)` refused every process of the tree.
    #[error("kill({pid}) failed: {source}")]
    Signal {
        /// The first pid that could not be signalled.
        pid: u32,
        /// errno.
        source: std::io::Error,
    },
}

/// Stops the tree first (so nothing forks while it is taken down), picks up children forked
/// meanwhile, then SIGKILLs children before parents. Returns the pids signalled.
pub fn kill_tree(
    proc_root: &Path,
    tree: &Tree,
    protected: &Protected,
) -> Result<Vec<u32>, KillError> {
    let mut pids = vec![tree.root];
    pids.extend(&tree.descendants);
    for &pid in &pids {
        let _ = signal(pid, Signal::STOP);
    }
    // Children forked between the scan and the stop.
    let table = ProcTable::read(proc_root);
    for pid in table.descendants(tree.root) {
        if !pids.contains(&pid) && !protected.contains(pid) {
            let _ = signal(pid, Signal::STOP);
            pids.push(pid);
        }
    }
    let mut killed = Vec::new();
    let mut first_error = None;
    for &pid in pids.iter().rev() {
        match signal(pid, Signal::KILL) {
            Ok(()) => killed.push(pid),
            Err(e) if e.raw_os_error() == Some(libc::ESRCH) => {}
            Err(e) => {
                first_error.get_or_insert((pid, e));
            }
        }
    }
    match first_error {
        Some((pid, source)) if killed.is_empty() => Err(KillError::Signal { pid, source }),
        _ => Ok(killed),
    }
}

fn signal(pid: u32, sig: Signal) -> std::io::Result<()> {
    // Never pid 0 (the process group), 1 (init) or a negative pid (a group).
    let pid = i32::try_from(pid)
        .ok()
        .filter(|p| *p > 1)
        .and_then(Pid::from_raw)
        .ok_or_else(|| std::io::Error::from_raw_os_error(libc::EPERM))?;
    Ok(rustix::process::kill_process(pid, sig)?)
}

/// The latest start time (ticks after boot) of a process that existed at `unix_ms`, with a
/// second of slack for the 1 s resolution of `btime`; `None` when /proc/stat has no btime.
pub fn ticks_at(proc_root: &Path, unix_ms: u64, ticks_per_sec: u64) -> Option<u64> {
    let text = std::fs::read_to_string(proc_root.join("stat")).ok()?;
    let btime: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse()
        .ok()?;
    let secs = (unix_ms / 1000).checked_sub(btime)? + 1;
    Some(secs.saturating_mul(ticks_per_sec))
}
