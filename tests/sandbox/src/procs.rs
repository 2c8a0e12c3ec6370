//! The sandbox's processes: spawning with captured output, reaping, freeze/thaw, teardown and
//! memory accounting.

use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags};
use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;
use rustix::process::{Pid, WaitOptions};
use tokio::sync::mpsc;

/// The signals the sandbox sends its processes.
pub use rustix::process::Signal;

/// Receives one line of a process's output (without the newline).
pub type LineSink = Arc<dyn Fn(&str) + Send + Sync>;

/// Errors starting a process.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("cannot start {program}: {source}")]
    Start {
        program: PathBuf,
        source: std::io::Error,
    },
}

/// What to start and where its output goes.
pub struct Spec<'a> {
    pub program: &'a Path,
    pub args: &'a [String],
    pub env: &'a [(String, String)],
    pub cwd: &'a Path,
    pub on_stdout: LineSink,
    pub on_stderr: LineSink,
    /// Start it in this cgroup v2 group (a directory descriptor, see `freezer`).
    pub cgroup: Option<BorrowedFd<'a>>,
}

/// Reaps every child (orphans included: the sandbox is their subreaper or PID 1) and reports
/// exits on a channel, so nothing is left as a zombie and nobody else calls waitpid.
pub fn start_reaper() -> std::io::Result<mpsc::UnboundedReceiver<(u32, ExitStatus)>> {
    let (tx, rx) = mpsc::unbounded_channel();
    // The value only has to be non-zero: the kernel reads it as a flag.
    let _ = rustix::process::set_child_subreaper(Some(Pid::INIT));
    std::thread::Builder::new()
        .name("reaper".into())
        .spawn(move || loop {
            match rustix::process::wait(WaitOptions::empty()) {
                Ok(Some((pid, status))) => {
                    let _ = tx.send((
                        pid.as_raw_nonzero().get() as u32,
                        ExitStatus::from_raw(status.as_raw()),
                    ));
                }
                _ => std::thread::sleep(Duration::from_millis(5)),
            }
        })?;
    Ok(rx)
}

/// A started process: its pid and a handle on its output pumps.
pub struct Started {
    pub pid: u32,
    pub output: Output,
}

/// Tells whether everything a process wrote so far has been read and handed to the sinks.
#[derive(Clone, Default)]
pub struct Output {
    /// The read ends of the pipes, while their pumps hold them open.
    pipes: Vec<Weak<File>>,
    busy: Arc<AtomicUsize>,
}

impl Output {
    /// Waits (bounded) until the pipes hold no unread bytes and no line is being handled, so
    /// that a process's log lines are published before what the engine reports next.
    pub fn drain(&self, within: Duration) {
        let until = Instant::now() + within;
        while Instant::now() < until {
            let unread = self
                .pipes
                .iter()
                .any(|pipe| pipe.upgrade().is_some_and(|p| unread_bytes(&*p) > 0));
            if !unread && self.busy.load(Ordering::SeqCst) == 0 {
                return;
            }
            std::thread::sleep(Duration::from_micros(200));
        }
    }
}

/// Bytes waiting in a pipe; 0 when that cannot be told.
fn unread_bytes(pipe: impl AsFd) -> u64 {
    rustix::io::ioctl_fionread(pipe).unwrap_or(0)
}

/// Starts a process with piped output.
pub fn spawn(spec: Spec<'_>) -> Result<Started, SpawnError> {
    if let Some(group) = spec.cgroup {
        return spawn_in_group(spec, group);
    }
    let mut cmd = Command::new(spec.program);
    cmd.args(spec.args)
        .env_clear()
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .current_dir(spec.cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|source| SpawnError::Start {
        program: spec.program.to_path_buf(),
        source,
    })?;
    let mut output = Output::default();
    if let Some(out) = child.stdout.take() {
        output.pump(File::from(OwnedFd::from(out)), spec.on_stdout);
    }
    if let Some(err) = child.stderr.take() {
        output.pump(File::from(OwnedFd::from(err)), spec.on_stderr);
    }
    // The reaper owns waiting; dropping `Child` neither waits nor kills.
    Ok(Started {
        pid: child.id(),
        output,
    })
}

fn spawn_in_group(spec: Spec<'_>, group: BorrowedFd<'_>) -> Result<Started, SpawnError> {
    let failed = |source| SpawnError::Start {
        program: spec.program.to_path_buf(),
        source,
    };
    let child = crate::freezer::Launch::new(spec.program, spec.args, spec.env, spec.cwd)
        .and_then(|l| l.start(Some(group)))
        .map_err(failed)?;
    let mut output = Output::default();
    output.pump(child.stdout, spec.on_stdout);
    output.pump(child.stderr, spec.on_stderr);
    Ok(Started {
        pid: child.pid,
        output,
    })
}

impl Output {
    /// Hands each line read from `pipe` to `sink`, on a thread of its own that holds the pipe
    /// open until the writers are gone.
    fn pump(&mut self, pipe: File, sink: LineSink) {
        let pipe = Arc::new(pipe);
        self.pipes.push(Arc::downgrade(&pipe));
        pump(pipe, sink, self.busy.clone());
    }
}

fn pump(stream: Arc<File>, sink: LineSink, busy: Arc<AtomicUsize>) {
    let _ = std::thread::Builder::new()
        .name("output".into())
        .spawn(move || {
            let mut chunk = vec![0u8; 64 * 1024];
            let mut pending: Vec<u8> = Vec::new();
            loop {
                // Mark busy while the bytes are still in the pipe, so `drain` never sees them
                // neither unread nor being handled.
                wait_readable(&*stream);
                busy.fetch_add(1, Ordering::SeqCst);
                let n = match (&*stream).read(&mut chunk) {
                    Ok(0) | Err(_) => {
                        busy.fetch_sub(1, Ordering::SeqCst);
                        break;
                    }
                    Ok(n) => n,
                };
                pending.extend_from_slice(&chunk[..n]);
                let mut start = 0;
                while let Some(pos) = pending[start..].iter().position(|&b| b == b'\n') {
                    let line = String::from_utf8_lossy(&pending[start..start + pos]);
                    sink(line.trim_end_matches('\r'));
                    start += pos + 1;
                }
                pending.drain(..start);
                busy.fetch_sub(1, Ordering::SeqCst);
            }
            if !pending.is_empty() {
                sink(String::from_utf8_lossy(&pending).trim_end_matches('\r'));
            }
        });
}

/// Blocks until `pipe` has data, is closed, or fails; a signal just retries.
fn wait_readable(pipe: impl AsFd) {
    let mut fds = [PollFd::new(&pipe, PollFlags::IN)];
    while let Err(Errno::INTR) = rustix::event::poll(&mut fds, None) {}
}

/// Writes whole lines to our stdout or stderr without interleaving them.
pub fn passthrough(to_stderr: bool) -> impl Fn(&str) {
    static OUT: Mutex<()> = Mutex::new(());
    move |line: &str| {
        let _guard = OUT.lock().unwrap_or_else(|e| e.into_inner());
        if to_stderr {
            let _ = writeln!(std::io::stderr().lock(), "{line}");
        } else {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{line}");
            let _ = out.flush();
        }
    }
}

/// Every live process that descends from this one.
pub fn descendants() -> Vec<u32> {
    let me = std::process::id();
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some(ppid) = parent_of(pid) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    let mut out = Vec::new();
    let mut stack = vec![me];
    while let Some(pid) = stack.pop() {
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or(&[]) {
            out.push(child);
            stack.push(child);
        }
    }
    out
}

fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name can hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let mut fields = rest.split(' ');
    let state = fields.next()?;
    if state == "Z" || state == "X" {
        return None;
    }
    fields.next()?.parse().ok()
}

/// Sends `signal` to every descendant, repeating until no new process shows up (a process can
/// fork between the listing and the signal).
fn signal_all(signal: Signal) -> usize {
    let mut done: HashSet<u32> = HashSet::new();
    for _ in 0..5 {
        let fresh: Vec<u32> = descendants()
            .into_iter()
            .filter(|p| !done.contains(p))
            .collect();
        if fresh.is_empty() {
            break;
        }
        for pid in fresh {
            send(pid, signal);
            done.insert(pid);
        }
    }
    done.len()
}

/// Stops every sandbox process, as Lambda freezes the environment between invocations.
pub fn freeze() -> usize {
    signal_all(Signal::STOP)
}

pub fn thaw() -> usize {
    signal_all(Signal::CONT)
}

pub fn signal(pid: u32, signal: Signal) {
    send(pid, signal);
}

/// Sends `signal` to process `pid`; a process already gone is no error.
fn send(pid: u32, signal: Signal) {
    if let Some(pid) = Pid::from_raw(pid as i32) {
        let _ = rustix::process::kill_process(pid, signal);
    }
}

pub fn alive(pid: u32) -> bool {
    parent_of(pid).is_some()
}

/// Kills every descendant and waits (bounded) until they are gone (reaped, not only
/// signalled); returns whether they are.
pub fn kill_all(within: Duration) -> bool {
    let until = Instant::now() + within;
    loop {
        if signal_all(Signal::KILL) == 0 {
            return true;
        }
        if Instant::now() > until {
            return false;
        }
        signal_all(Signal::CONT);
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Resident memory of all sandbox processes, in bytes.
pub fn rss_bytes() -> u64 {
    descendants()
        .into_iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/statm")).ok())
        .filter_map(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .sum::<u64>()
        * page_size()
}

/// This process's memory cgroup path, from /proc/self/cgroup (v1 `N:memory:/path`).
fn memory_cgroup_of_self() -> Option<String> {
    let text = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        controllers
            .split(',')
            .any(|c| c == "memory")
            .then(|| path.to_string())
    })
}

fn own_rss_bytes() -> u64 {
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .unwrap_or(0)
        * page_size()
}

fn page_size() -> u64 {
    rustix::param::page_size() as u64
}

/// A cgroup-v1 memory group: enforces the memory size and measures its peak.
pub struct Cgroup {
    dir: PathBuf,
    /// `cgroup.procs` of the group, open for as long as the group lives.
    procs: Option<OwnedFd>,
    /// The group the sandbox came from, to go back to before removing this one.
    home: Option<PathBuf>,
}

impl Cgroup {
    /// Creates the group where the machine allows it; `None` otherwise.
    pub fn create(memory_mb: u64) -> Option<Cgroup> {
        let root = Path::new("/sys/fs/cgroup/memory");
        if !root.join("memory.limit_in_bytes").exists() {
            return None;
        }
        let dir = root.join(format!("warden-sandbox-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).ok()?;
        let limit = (memory_mb * 1024 * 1024).to_string();
        if std::fs::write(dir.join("memory.limit_in_bytes"), &limit).is_err() {
            let _ = std::fs::remove_dir(&dir);
            return None;
        }
        let flags = OFlags::WRONLY | OFlags::CLOEXEC;
        let Ok(procs) = rustix::fs::open(dir.join("cgroup.procs"), flags, Mode::empty()) else {
            let _ = std::fs::remove_dir(&dir);
            return None;
        };
        // The sandbox joins the group itself, once, so that its children are born in it: moving
        // each child in (a write per spawn) waits for an RCU grace period on cgroup v1, ~15 ms.
        let home = memory_cgroup_of_self().map(|rel| root.join(rel.trim_start_matches('/')));
        // "0" is this process.
        let _ = rustix::io::write(&procs, b"0");
        Some(Cgroup {
            dir,
            procs: Some(procs),
            home,
        })
    }

    /// Peak memory of the group since creation or the last [`Cgroup::reset_peak`], less the
    /// sandbox's own resident memory (it is a member so that its children are).
    pub fn peak_bytes(&self) -> Option<u64> {
        let peak: u64 = std::fs::read_to_string(self.dir.join("memory.max_usage_in_bytes"))
            .ok()?
            .trim()
            .parse()
            .ok()?;
        Some(peak.saturating_sub(own_rss_bytes()))
    }

    pub fn reset_peak(&self) {
        let _ = std::fs::write(self.dir.join("memory.max_usage_in_bytes"), "0");
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        drop(self.procs.take());
        if let Some(home) = &self.home {
            let _ = std::fs::write(home.join("cgroup.procs"), std::process::id().to_string());
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
