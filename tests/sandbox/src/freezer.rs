//! Freezing the environment with a cgroup v2 freezer, as Lambda's own freeze stops a whole
//! environment without signals.
//!
//! The alternative, SIGSTOP and SIGCONT to every process, makes each process run signal code
//! at every freeze and thaw, which an extension's CPU time would carry, and lists /proc twice
//! per invocation. Here the sandbox's processes are born in a cgroup of their own
//! (`clone3` with `CLONE_INTO_CGROUP`: no migration, which on cgroup v1 and v2 waits for an
//! RCU grace period), and `cgroup.freeze` stops and resumes them all at once. Frozen
//! processes can still be killed (cgroup v2), so a teardown never hangs.
//!
//! Used where the machine allows it (root, a cgroup v2 hierarchy, `clone3`); otherwise the
//! sandbox falls back to signals and says so in its log.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, Read};
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rustix::fs::{Mode, OFlags};
use rustix::pipe::PipeFlags;
use rustix::process::{Pid, WaitOptions};

use crate::sys;

/// Longest wait for every process to be frozen (a process in uninterruptible sleep delays it).
const FREEZE_WAIT: Duration = Duration::from_millis(200);
/// Longest wait for the group to empty at teardown.
const KILL_WAIT: Duration = Duration::from_millis(500);

/// A cgroup v2 group holding every process of one sandbox.
pub struct Freezer {
    dir: PathBuf,
    dir_fd: OwnedFd,
    freeze_fd: OwnedFd,
    events: PathBuf,
}

impl Freezer {
    /// Creates the group and checks that a process can be started in it; `None` where the
    /// machine does not allow it.
    pub fn create() -> Option<Freezer> {
        let root = cgroup2_root()?;
        let dir = root.join(format!("warden-sandbox-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).ok()?;
        let made = Freezer::open(dir.clone());
        match made {
            Some(f) if f.works() => Some(f),
            _ => {
                let _ = std::fs::remove_dir(&dir);
                None
            }
        }
    }

    fn open(dir: PathBuf) -> Option<Freezer> {
        let dir_fd = open_fd(&dir, OFlags::RDONLY | OFlags::DIRECTORY).ok()?;
        let freeze_fd = open_fd(&dir.join("cgroup.freeze"), OFlags::WRONLY).ok()?;
        Some(Freezer {
            events: dir.join("cgroup.events"),
            dir,
            dir_fd,
            freeze_fd,
        })
    }

    /// Starts `/bin/true` in the group: `clone3` may be missing or filtered.
    fn works(&self) -> bool {
        let Ok(child) = Launch::new(Path::new("/bin/true"), &[], &[], Path::new("/")) else {
            return false;
        };
        match child.start(Some(self.fd())) {
            Ok(started) => {
                // The sandbox's reaper may not run yet: wait for this child here.
                if let Some(pid) = Pid::from_raw(started.pid as i32) {
                    let _ = rustix::process::waitpid(Some(pid), WaitOptions::empty());
                }
                true
            }
            Err(_) => false,
        }
    }

    /// The group's directory descriptor, for [`Launch::start`].
    pub fn fd(&self) -> BorrowedFd<'_> {
        self.dir_fd.as_fd()
    }

    /// Stops every process of the group and waits (bounded) until they all are.
    pub fn freeze(&self) {
        self.write_freeze(b"1");
        let until = Instant::now() + FREEZE_WAIT;
        while !self.frozen() && Instant::now() < until {
            std::thread::sleep(Duration::from_micros(50));
        }
    }

    /// Resumes every process of the group.
    pub fn thaw(&self) {
        self.write_freeze(b"0");
    }

    fn write_freeze(&self, value: &[u8]) {
        let _ = rustix::io::write(&self.freeze_fd, value);
    }

    fn frozen(&self) -> bool {
        std::fs::read_to_string(&self.events)
            .map(|t| t.lines().any(|l| l == "frozen 1"))
            .unwrap_or(true)
    }

    fn empty(&self) -> bool {
        std::fs::read_to_string(self.dir.join("cgroup.procs"))
            .map(|t| t.trim().is_empty())
            .unwrap_or(true)
    }
}

impl Drop for Freezer {
    fn drop(&mut self) {
        self.thaw();
        let _ = std::fs::write(self.dir.join("cgroup.kill"), "1");
        let until = Instant::now() + KILL_WAIT;
        while !self.empty() && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(2));
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&self.dir).is_ok() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Where the cgroup v2 hierarchy is mounted (alone, or beside v1 ones).
fn cgroup2_root() -> Option<PathBuf> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").ok()?;
    mounts.lines().find_map(|l| {
        let mut f = l.split_whitespace();
        let (_, at, kind) = (f.next()?, f.next()?, f.next()?);
        (kind == "cgroup2").then(|| PathBuf::from(at))
    })
}

fn open_fd(path: &Path, flags: OFlags) -> io::Result<OwnedFd> {
    Ok(rustix::fs::open(
        path,
        flags | OFlags::CLOEXEC,
        Mode::empty(),
    )?)
}

/// A process ready to start: everything the child needs is prepared beforehand, because
/// between `clone3` and `execve` a child of a multi-threaded process may not allocate.
pub struct Launch {
    program: CString,
    argv: Vec<CString>,
    envp: Vec<CString>,
    cwd: CString,
}

/// A started process and the read ends of its stdout and stderr.
pub struct Child {
    pub pid: u32,
    pub stdout: File,
    pub stderr: File,
}

impl Launch {
    pub fn new(
        program: &Path,
        args: &[String],
        env: &[(String, String)],
        cwd: &Path,
    ) -> io::Result<Launch> {
        let c =
            |s: &[u8]| CString::new(s).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e));
        let program = resolve(program, env);
        let mut argv = vec![c(program.as_os_str().as_bytes())?];
        for a in args {
            argv.push(c(a.as_bytes())?);
        }
        let envp = env
            .iter()
            .map(|(k, v)| c(format!("{k}={v}").as_bytes()))
            .collect::<io::Result<Vec<_>>>()?;
        Ok(Launch {
            program: c(program.as_os_str().as_bytes())?,
            argv,
            envp,
            cwd: c(cwd.as_os_str().as_bytes())?,
        })
    }

    /// Starts the process, in the cgroup `group` (a directory descriptor) when given, with
    /// stdin from /dev/null and stdout and stderr on pipes.
    pub fn start(&self, group: Option<BorrowedFd<'_>>) -> io::Result<Child> {
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        let (fail_r, fail_w) = pipe()?;
        let null = open_fd(Path::new("/dev/null"), OFlags::RDONLY)?;
        let exec = sys::Exec {
            program: &self.program,
            argv: &self.argv,
            envp: &self.envp,
            cwd: &self.cwd,
            stdin: null.as_fd(),
            stdout: out_w.as_fd(),
            stderr: err_w.as_fd(),
            failure: fail_w.as_fd(),
        };
        let pid = sys::clone_exec(&exec, group)?;
        drop((out_w, err_w, fail_w, null));
        // The failure pipe closes at a successful execve (close-on-exec); otherwise it holds
        // the child's errno.
        let mut errno = [0u8; 4];
        let mut failed = File::from(fail_r);
        if failed.read(&mut errno)? == 4 {
            return Err(io::Error::from_raw_os_error(i32::from_ne_bytes(errno)));
        }
        Ok(Child {
            pid,
            stdout: File::from(out_r),
            stderr: File::from(err_r),
        })
    }
}

/// A program named without a directory is looked up in the environment's PATH, as execvp
/// would (execve itself does not search).
fn resolve(program: &Path, env: &[(String, String)]) -> PathBuf {
    if program.as_os_str().as_bytes().contains(&b'/') {
        return program.to_path_buf();
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.as_str())
        .unwrap_or("/usr/bin:/bin");
    path.split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
        .unwrap_or_else(|| Path::new(OsStr::new("/usr/bin")).join(program))
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    Ok(rustix::pipe::pipe_with(PipeFlags::CLOEXEC)?)
}
