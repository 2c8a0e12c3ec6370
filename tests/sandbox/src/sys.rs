//! The sandbox's system calls that no safe wrapper offers, behind safe functions: the only
//! module of this crate that may use `unsafe`. Everything else calls the kernel through
//! `rustix` (or std).
//!
//! - Code run in a child between fork and exec (`pre_exec`, and the child side of `clone3`)
//!   is `unsafe` by nature: it may not allocate or take locks.
//! - `clone3` (for `CLONE_INTO_CGROUP`) and `execve` have no stable wrapper in rustix.
//! - A descriptor inherited by number (through the environment) can only be taken over with
//!   `from_raw_fd`.
#![allow(unsafe_code)]

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;

use rustix::process::Signal;

/// Has the process `cmd` starts killed (SIGKILL) when the thread that started it dies.
pub(crate) fn kill_with_parent(cmd: &mut Command) {
    // SAFETY: the closure runs in the child between fork and exec; it makes one prctl system
    // call through rustix (no allocation, no lock) that only changes the child's own
    // attributes. Its result is ignored, as it always was.
    unsafe {
        cmd.pre_exec(|| {
            let _ = rustix::process::set_parent_process_death_signal(Some(Signal::KILL));
            Ok(())
        });
    }
}

/// Takes over descriptor `fd`, which the parent left open across exec and named in the
/// environment. `None` when `fd` is not an open descriptor of this process.
///
/// Call it once per inherited number: the caller becomes the descriptor's only owner.
pub(crate) fn take_inherited_fd(fd: RawFd) -> Option<OwnedFd> {
    if fd < 0 || std::fs::symlink_metadata(Path::new(&format!("/proc/self/fd/{fd}"))).is_err() {
        return None;
    }
    // SAFETY: `fd` is open (checked just above) and was created by our parent for us alone:
    // nothing else in this process knows its number, so nothing else owns or closes it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `struct clone_args` up to `cgroup` (CLONE_ARGS_SIZE_VER2).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// What the child of [`clone_exec`] runs, and with which descriptors.
pub(crate) struct Exec<'a> {
    pub(crate) program: &'a CStr,
    /// The arguments, the program's name first.
    pub(crate) argv: &'a [CString],
    /// `NAME=value` strings.
    pub(crate) envp: &'a [CString],
    pub(crate) cwd: &'a CStr,
    pub(crate) stdin: BorrowedFd<'a>,
    pub(crate) stdout: BorrowedFd<'a>,
    pub(crate) stderr: BorrowedFd<'a>,
    /// Where the child writes its errno (4 bytes, native order) when it cannot exec; it
    /// must be close-on-exec, so that a successful exec closes it.
    pub(crate) failure: BorrowedFd<'a>,
}

/// Starts `exec` in a new process (`clone3`, in the cgroup v2 group `group` when given, a
/// directory descriptor) with an empty signal mask and SIGPIPE at its default. Returns the
/// child's pid; whether the exec itself worked is reported on `exec.failure`.
pub(crate) fn clone_exec(exec: &Exec<'_>, group: Option<BorrowedFd<'_>>) -> io::Result<u32> {
    // Everything the child needs is prepared here: between `clone3` and `execve` a child of
    // a multi-threaded process may not allocate.
    let (argv, envp) = (null_terminated(exec.argv), null_terminated(exec.envp));
    let (stdin, stdout, stderr, failure) = (
        exec.stdin.as_raw_fd(),
        exec.stdout.as_raw_fd(),
        exec.stderr.as_raw_fd(),
        exec.failure.as_raw_fd(),
    );
    let mut args = CloneArgs {
        exit_signal: libc::SIGCHLD as u64,
        ..CloneArgs::default()
    };
    if let Some(fd) = group {
        args.flags |= CLONE_INTO_CGROUP;
        args.cgroup = fd.as_raw_fd() as u64;
    }
    // SAFETY: clone3 without CLONE_VM forks this process; `args` is a valid `clone_args` of
    // the size passed. The child only runs the block below.
    let pid = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &mut args as *mut CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    if pid == 0 {
        // SAFETY: in the child, which only makes raw system calls on memory prepared above or
        // on its own stack (no allocation, no locks) and ends in execve or _exit; every pointer
        // is a NUL-terminated string or a null-terminated array of them, alive in this copy of
        // the parent's memory.
        unsafe {
            let mut no_signals: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut no_signals);
            libc::sigprocmask(libc::SIG_SETMASK, &no_signals, std::ptr::null_mut());
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
            let ok = libc::dup2(stdin, 0) >= 0
                && libc::dup2(stdout, 1) >= 0
                && libc::dup2(stderr, 2) >= 0
                && libc::chdir(exec.cwd.as_ptr()) == 0;
            if ok {
                libc::execve(exec.program.as_ptr(), argv.as_ptr(), envp.as_ptr());
            }
            let errno = *libc::__errno_location();
            libc::write(failure, (&errno as *const libc::c_int).cast(), 4);
            libc::_exit(127);
        }
    }
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pid as u32)
}

/// The pointer array `execve` takes: each string, then a null.
fn null_terminated(strings: &[CString]) -> Vec<*const libc::c_char> {
    strings
        .iter()
        .map(|s| s.as_ptr())
        .chain(std::iter::once(std::ptr::null()))
        .collect()
}
