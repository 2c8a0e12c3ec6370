//! The library's contact with the C world, and its only `unsafe` code: the constructor, the
//! hooks that stand in for libc's functions, the real functions behind them, and the ring and
//! socket events leave by.
//!
//! Rules every hook keeps, because it runs inside someone else's process, possibly in a child
//! between `vfork` and `exec` or in a signal handler:
//! - no allocation, no lock, no `std::io`: events are written into a stack buffer
//!   (`line::Line`), then into Warden's shared ring (no system call) or, for what Warden must
//!   know the sender of (a process's hello, a signal), with one non-blocking `sendto`;
//! - the real call always happens unless enforce mode refuses it, whatever the guard's own
//!   trouble (no Warden, a full ring or socket: the event is dropped and counted);
//! - the guard writes to no descriptor but its own socket, checked by inode before each send,
//!   since the program may close or reuse any descriptor number.
//!
//! `open`, `open64`, `openat` and `openat64` are variadic in C (the mode). Stable Rust cannot
//! define a variadic function, so they are defined with the mode as a fixed argument: on the
//! x86_64 and aarch64 Linux calling conventions a variadic integer argument travels in the same
//! register as a fixed one, and it is passed on untouched (the real function reads it only
//! with `O_CREAT`/`O_TMPFILE`). The variadic `execl`, `execle` and `execlp` are not hooked.
#![allow(unsafe_code)]

use std::ffi::{c_char, c_int, c_uint, c_void, CStr};
use std::fmt::Write as _;
use std::marker::PhantomData;
use std::mem::{offset_of, size_of, MaybeUninit};
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{
    fence, AtomicBool, AtomicI32, AtomicPtr, AtomicU64, AtomicUsize, Ordering,
};

use libc::{
    mmsghdr, mode_t, msghdr, pid_t, posix_spawn_file_actions_t, posix_spawnattr_t, size_t,
    sockaddr, socklen_t, ssize_t, FILE,
};

use crate::guard::{self, Guard};
use crate::policy::{self, Verdict};
use crate::report::{self, ExecPath, Header, Proto};
use crate::rules::Rules;
use crate::settings::Settings;
use warden_ring::{PushError, Ring};

/// The guard's socket is moved up to this descriptor number (or the first free one above),
/// out of the way of programs that expect low numbers to be theirs.
const HIGH_FD: c_int = 900;
/// Room for a path built on the stack (`/proc/<pid>/exe`, a `PATH` candidate).
const PATH_BUF: usize = 512;
/// The start of a process's command line read for its `hello` (the report keeps less).
const CMDLINE_BUF: usize = 512;
/// Above this many bytes a write is first asked whether its descriptor is a socket (one system
/// call) before it is searched for the secret key: large writes are mostly to files.
const SEARCH_BEFORE_ASKING: usize = 16 * 1024;
/// How much of a scattered payload is gathered to read a DNS query from (a query over UDP
/// is at most 512 bytes without EDNS).
const PAYLOAD_HEAD: usize = 512;

// ---------------------------------------------------------------------------------------------
// The real functions.

/// The libc functions the guard stands in for.
#[derive(Clone, Copy)]
enum Real {
    Connect,
    Send,
    Sendto,
    Sendmsg,
    Sendmmsg,
    Write,
    Writev,
    Execve,
    Execv,
    Execvp,
    Execvpe,
    Fexecve,
    Execveat,
    PosixSpawn,
    PosixSpawnp,
    Kill,
    Tgkill,
    Open,
    Open64,
    Openat,
    Openat64,
    Fopen,
    Fopen64,
}

impl Real {
    const ALL: [Real; 23] = [
        Real::Connect,
        Real::Send,
        Real::Sendto,
        Real::Sendmsg,
        Real::Sendmmsg,
        Real::Write,
        Real::Writev,
        Real::Execve,
        Real::Execv,
        Real::Execvp,
        Real::Execvpe,
        Real::Fexecve,
        Real::Execveat,
        Real::PosixSpawn,
        Real::PosixSpawnp,
        Real::Kill,
        Real::Tgkill,
        Real::Open,
        Real::Open64,
        Real::Openat,
        Real::Openat64,
        Real::Fopen,
        Real::Fopen64,
    ];

    fn symbol(self) -> &'static CStr {
        match self {
            Real::Connect => c"connect",
            Real::Send => c"send",
            Real::Sendto => c"sendto",
            Real::Sendmsg => c"sendmsg",
            Real::Sendmmsg => c"sendmmsg",
            Real::Write => c"write",
            Real::Writev => c"writev",
            Real::Execve => c"execve",
            Real::Execv => c"execv",
            Real::Execvp => c"execvp",
            Real::Execvpe => c"execvpe",
            Real::Fexecve => c"fexecve",
            Real::Execveat => c"execveat",
            Real::PosixSpawn => c"posix_spawn",
            Real::PosixSpawnp => c"posix_spawnp",
            Real::Kill => c"kill",
            Real::Tgkill => c"tgkill",
            Real::Open => c"open",
            Real::Open64 => c"open64",
            Real::Openat => c"openat",
            Real::Openat64 => c"openat64",
            Real::Fopen => c"fopen",
            Real::Fopen64 => c"fopen64",
        }
    }
}

static REAL: [AtomicUsize; Real::ALL.len()] = [const { AtomicUsize::new(0) }; Real::ALL.len()];
/// Set once the constructor has looked every real function up.
static RESOLVED: AtomicBool = AtomicBool::new(false);

fn look_up(which: Real) -> usize {
    // SAFETY: `dlsym` with RTLD_NEXT and a NUL-terminated name; the answer is only an address.
    unsafe { libc::dlsym(libc::RTLD_NEXT, which.symbol().as_ptr()) as usize }
}

/// The real function's address, 0 when this libc lacks it. Looked up by the constructor; a
/// call that comes before it (another library's initializer, while the loader runs them on one
/// thread) looks it up on the spot, once.
fn real(which: Real) -> usize {
    let slot = &REAL[which as usize];
    let addr = slot.load(Ordering::Acquire);
    if addr != 0 || RESOLVED.load(Ordering::Acquire) {
        return addr;
    }
    let addr = look_up(which);
    slot.store(addr, Ordering::Release);
    addr
}

/// Calls the real function `$which` with the type `$ty`, or fails with ENOSYS and `$fail`
/// when this libc has none.
macro_rules! call_real {
    ($which:expr, $ty:ty, $fail:expr, ($($arg:expr),* $(,)?)) => {{
        let addr = real($which);
        if addr == 0 {
            set_errno(libc::ENOSYS);
            $fail
        } else {
            // SAFETY: `addr` is libc's function of that name, whose C type `$ty` spells.
            let function: $ty = unsafe { std::mem::transmute::<usize, $ty>(addr) };
            // SAFETY: the caller's arguments, passed on unchanged.
            unsafe { function($($arg),*) }
        }
    }};
}

// ---------------------------------------------------------------------------------------------
// Loading.

#[used]
#[link_section = ".init_array"]
static CONSTRUCTOR: extern "C" fn() = on_load;

/// The process that owns the guard's socket; a `vfork` child shares our memory and must not
/// replace it.
static OWNER_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn on_load() {
    for which in Real::ALL {
        REAL[which as usize].store(look_up(which), Ordering::Release);
    }
    RESOLVED.store(true, Ordering::Release);
    OWNER_PID.store(own_pid(), Ordering::Release);
    // A panic must never cross into C (it would abort the host program).
    let _ = catch_unwind(start_guard);
}

/// Reads the settings and the policy, then says hello.
fn start_guard() {
    let Some((guard, problem)) = guard::install(Settings::from_env()) else {
        return;
    };
    map_lockdown_page(&guard.socket_name);
    map_ring(&guard.socket_name);
    let mut exe = [0u8; PATH_BUF];
    let exe = read_link(c"/proc/self/exe", &mut exe).unwrap_or(b"");
    let mut cmdline = [0u8; CMDLINE_BUF];
    let cmdline = read_small_file(c"/proc/self/cmdline", &mut cmdline).unwrap_or(b"");
    emit_attested(
        guard,
        &report::hello(&header(), guard.policy_word(), exe, cmdline),
    );
    if let Some(problem) = problem {
        let reason = problem.error.to_string();
        eprintln!(
            "[warden-guard] policy {} not used: {reason}",
            problem.path.display()
        );
        emit_attested(
            guard,
            &report::notice(&header(), "policy_error", reason.as_bytes()),
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The lockdown page.

/// Where this process mapped the lockdown page (read only), or null: no page when the guard
/// loaded (no Warden, or one without lockdown), and then no lockdown for this process.
static LOCKDOWN_PAGE: AtomicPtr<u8> = AtomicPtr::new(std::ptr::null_mut());

/// Maps Warden's lockdown page, `/tmp/.<socket name>.lockdown`, if it is there.
fn map_lockdown_page(socket_name: &[u8]) {
    let name = warden_policy::lockdown::file_name(socket_name);
    let size = warden_policy::lockdown::PAGE_SIZE;
    if let Some(page) = map_shared(&name, size, false) {
        LOCKDOWN_PAGE.store(page, Ordering::Release);
    }
}

/// Maps one of Warden's files in /tmp, shared, if it is there and at least `size` bytes: read
/// only, or read and write.
fn map_shared(name: &[u8], size: usize, writable: bool) -> Option<*mut u8> {
    let mut path = StackPath::new();
    if !(path.push(warden_policy::lockdown::DIR.as_bytes()) && path.push(b"/") && path.push(name)) {
        return None;
    }
    let path = path.as_cstr()?;
    let (open_mode, protection) = if writable {
        (libc::O_RDWR, libc::PROT_READ | libc::PROT_WRITE)
    } else {
        (libc::O_RDONLY, libc::PROT_READ)
    };
    // SAFETY: plain system calls on a descriptor opened and closed here; the raw `openat`
    // bypasses the guard's own `open` hooks, O_NOFOLLOW refuses a planted link.
    unsafe {
        let fd = libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            open_mode | libc::O_CLOEXEC | libc::O_NOFOLLOW,
            0,
        ) as c_int;
        if fd < 0 {
            return None;
        }
        let mut stat = MaybeUninit::<libc::stat>::zeroed();
        let sized = libc::syscall(libc::SYS_fstat, fd, stat.as_mut_ptr()) == 0
            && stat.assume_init().st_size >= size as libc::off_t;
        let mapped = if sized {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                protection,
                libc::MAP_SHARED,
                fd,
                0,
            )
        } else {
            libc::MAP_FAILED
        };
        libc::close(fd);
        (mapped != libc::MAP_FAILED).then_some(mapped.cast())
    }
}

/// Room on a hook's stack for a copy of the lockdown table, left uninitialised: a hooked call
/// pays for the copy only once the environment is locked down.
type PageCopy = MaybeUninit<[u8; warden_policy::lockdown::TABLE_END]>;

/// The lockdown table, copied into `buf`, when Warden has locked the environment down.
fn lockdown_table(buf: &mut PageCopy) -> Option<warden_policy::lockdown::Table<'_>> {
    let page = LOCKDOWN_PAGE.load(Ordering::Acquire);
    if page.is_null() {
        return None;
    }
    // SAFETY: `page` is a live read-only mapping of PAGE_SIZE bytes (never unmapped); the flag
    // is an aligned u64 inside it, read with one load. Warden writes the table before it sets
    // the flag and never changes it after, so once the flag reads set the copy is whole; the
    // copy fills every byte of `buf` before it is read.
    let copy = unsafe {
        let flag =
            std::ptr::read_volatile(page.add(warden_policy::lockdown::FLAG_OFFSET).cast::<u64>());
        if u64::from_le(flag) != warden_policy::lockdown::LOCKED {
            return None;
        }
        fence(Ordering::Acquire);
        std::ptr::copy_nonoverlapping(
            page,
            buf.as_mut_ptr().cast::<u8>(),
            warden_policy::lockdown::TABLE_END,
        );
        buf.assume_init_ref()
    };
    warden_policy::lockdown::Table::read(&copy[..])
}

/// What a call is judged against now: the policy, and the lockdown once there is one.
fn rules<'a>(guard: &'a Guard, buf: &'a mut PageCopy) -> Rules<'a> {
    Rules {
        policy: guard.policy(),
        lockdown: lockdown_table(buf),
        runtime_api: guard.runtime_api,
    }
}

// ---------------------------------------------------------------------------------------------
// Sending.

/// Events this process could not send.
static DROPPED: AtomicU64 = AtomicU64::new(0);
static SOCKET_FD: AtomicI32 = AtomicI32::new(-1);
static SOCKET_INODE: AtomicU64 = AtomicU64::new(0);

fn header() -> Header {
    Header {
        pid: own_pid(),
        tid: own_tid(),
        unix_ms: unix_ms(),
        dropped: DROPPED.load(Ordering::Relaxed),
    }
}

/// Runs a hook's reporting, never letting a panic reach C; a panic allows the call.
fn guarded(report: impl FnOnce() -> Verdict) -> Verdict {
    catch_unwind(AssertUnwindSafe(report)).unwrap_or(Verdict::Allow)
}

/// Hands an event to Warden through the ring when this process mapped it, else as a
/// datagram; counts it as dropped when neither takes it.
fn emit(guard: &Guard, line: &crate::line::Line) {
    let sent = match ring() {
        Some(ring) => match ring.push(line.as_bytes()) {
            Ok(()) => true,
            Err(PushError::NotReady) => send_datagram(&guard.socket_name, line.as_bytes()),
            Err(PushError::Full | PushError::TooLong) => false,
        },
        None => send_datagram(&guard.socket_name, line.as_bytes()),
    };
    if !sent {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Sends an event as a datagram, which carries the sender's pid from the kernel: for what
/// Warden must be able to trust the sender of (a process's hello, a signal to Warden).
fn emit_attested(guard: &Guard, line: &crate::line::Line) {
    if !send_datagram(&guard.socket_name, line.as_bytes()) {
        DROPPED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Warden's event ring as this process mapped it, or null.
static RING: AtomicPtr<AtomicU64> = AtomicPtr::new(std::ptr::null_mut());

/// Maps Warden's ring, `/tmp/.<socket name>.ring`, if it is there. A child started by `fork`
/// keeps the mapping; one started by `exec` maps it again when the guard loads.
fn map_ring(socket_name: &[u8]) {
    if let Some(words) = map_shared(
        &warden_ring::file_name(socket_name),
        warden_ring::BYTES,
        true,
    ) {
        RING.store(words.cast(), Ordering::Release);
    }
}

fn ring() -> Option<Ring<'static>> {
    let words = RING.load(Ordering::Acquire);
    if words.is_null() {
        return None;
    }
    // SAFETY: `words` is a live shared mapping of warden_ring::BYTES bytes, page aligned and
    // never unmapped; every access to it goes through atomics (other processes write it too).
    let words = unsafe { std::slice::from_raw_parts(words.cast_const(), warden_ring::WORDS) };
    Ring::new(words)
}

fn send_datagram(name: &[u8], datagram: &[u8]) -> bool {
    let fd = SOCKET_FD.load(Ordering::Acquire);
    if fd >= 0 && is_guard_socket(fd) {
        return send_to(fd, name, datagram);
    }
    let Some((fresh, inode)) = open_socket() else {
        return false;
    };
    if own_pid() == OWNER_PID.load(Ordering::Acquire) {
        // The old number is not closed: it is no longer ours (closed, or reused by the program).
        SOCKET_INODE.store(inode, Ordering::Release);
        SOCKET_FD.store(fresh, Ordering::Release);
        return send_to(fresh, name, datagram);
    }
    // A child (between vfork and exec, or one whose descriptors were closed): a socket of its
    // own for this one event, so that the parent's remembered socket stays the parent's.
    let sent = send_to(fresh, name, datagram);
    // SAFETY: `fresh` was opened just above and is closed once.
    unsafe { libc::close(fresh) };
    sent
}

/// A new close-on-exec datagram socket at a high descriptor number, and its inode.
fn open_socket() -> Option<(c_int, u64)> {
    // SAFETY: plain system calls on descriptors this function opens.
    unsafe {
        let fd = libc::socket(libc::AF_UNIX, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let high = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, HIGH_FD);
        let fd = if high >= 0 {
            libc::close(fd);
            high
        } else {
            fd
        };
        match socket_inode(fd) {
            Some(inode) => Some((fd, inode)),
            None => {
                libc::close(fd);
                None
            }
        }
    }
}

/// The inode of `fd` when it is a socket.
fn socket_inode(fd: c_int) -> Option<u64> {
    let mut stat = MaybeUninit::<libc::stat>::zeroed();
    // SAFETY: fstat fills `stat`; the raw system call avoids glibc's versioned wrappers.
    let rc = unsafe { libc::syscall(libc::SYS_fstat, fd, stat.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: the kernel filled it.
    let stat = unsafe { stat.assume_init() };
    (stat.st_mode & libc::S_IFMT == libc::S_IFSOCK).then_some(stat.st_ino)
}

fn is_guard_socket(fd: c_int) -> bool {
    socket_inode(fd).is_some_and(|inode| inode == SOCKET_INODE.load(Ordering::Acquire))
}

/// One non-blocking `sendto` to the abstract socket `name`.
fn send_to(fd: c_int, name: &[u8], datagram: &[u8]) -> bool {
    // SAFETY: an all-zero sockaddr_un is valid.
    let mut addr: libc::sockaddr_un = unsafe { std::mem::zeroed() };
    addr.sun_family = libc::AF_UNIX as libc::sa_family_t;
    // Abstract namespace: a NUL, then the name (settings keep it within sun_path).
    let Some(path) = addr.sun_path.get_mut(1..1 + name.len()) else {
        return false;
    };
    for (to, from) in path.iter_mut().zip(name) {
        *to = *from as c_char;
    }
    let len = offset_of!(libc::sockaddr_un, sun_path) + 1 + name.len();
    for attempt in 0..=FULL_QUEUE_RETRIES {
        // SAFETY: the buffer and address outlive the call; the raw system call bypasses the
        // guard's own `sendto` hook.
        let sent = unsafe {
            libc::syscall(
                libc::SYS_sendto,
                fd,
                datagram.as_ptr(),
                datagram.len(),
                libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                &addr as *const libc::sockaddr_un,
                len as socklen_t,
            )
        };
        if sent >= 0 {
            return true;
        }
        if errno() != libc::EAGAIN || attempt == FULL_QUEUE_RETRIES {
            break;
        }
        // Warden's queue is full (a burst: the kernel holds few datagrams per receiver). Give
        // up the CPU so that Warden can read, a bounded number of times: never a wait.
        // SAFETY: no arguments, cannot fail.
        unsafe { libc::syscall(libc::SYS_sched_yield) };
    }
    false
}

/// How many times a datagram to a full queue is tried again after yielding the CPU.
const FULL_QUEUE_RETRIES: u32 = 4;

// ---------------------------------------------------------------------------------------------
// Small system facts.

fn own_pid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::getpid() }
}

fn own_tid() -> i32 {
    // SAFETY: no arguments, cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as i32 }
}

fn unix_ms() -> u64 {
    let mut now = MaybeUninit::<libc::timespec>::zeroed();
    // SAFETY: clock_gettime fills `now` (it stays zero if it fails).
    let now = unsafe {
        libc::clock_gettime(libc::CLOCK_REALTIME, now.as_mut_ptr());
        now.assume_init()
    };
    (now.tv_sec as u64).saturating_mul(1000) + (now.tv_nsec as u64) / 1_000_000
}

fn errno() -> c_int {
    // SAFETY: the calling thread's errno.
    unsafe { *libc::__errno_location() }
}

fn set_errno(errno: c_int) {
    // SAFETY: the calling thread's errno.
    unsafe { *libc::__errno_location() = errno };
}

/// The start of a small file (at most `buf.len()` bytes, one read), in `buf`.
fn read_small_file<'b>(path: &CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    // SAFETY: plain system calls on a descriptor opened and closed here; the raw `openat`
    // bypasses the guard's own `open` hooks, and `read` writes at most `buf.len()` bytes.
    let n = unsafe {
        let fd = libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
            0,
        ) as c_int;
        if fd < 0 {
            return None;
        }
        let n = libc::syscall(libc::SYS_read, fd, buf.as_mut_ptr(), buf.len());
        libc::syscall(libc::SYS_close, fd);
        n
    };
    let n = usize::try_from(n).ok().filter(|&n| n <= buf.len())?;
    buf.get(..n)
}

/// Where a symbolic link (or a /proc magic link) points, in `buf`.
fn read_link<'b>(path: &CStr, buf: &'b mut [u8]) -> Option<&'b [u8]> {
    // SAFETY: readlink writes at most `buf.len()` bytes into `buf`.
    let n = unsafe { libc::readlink(path.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n > 0 && n <= buf.len())?;
    buf.get(..n)
}

fn is_executable(path: &CStr) -> bool {
    // SAFETY: a NUL-terminated path.
    unsafe { libc::access(path.as_ptr(), libc::X_OK) == 0 }
}

/// A NUL-terminated path built on the stack.
struct StackPath {
    buf: [u8; PATH_BUF],
    len: usize,
}

impl StackPath {
    fn new() -> StackPath {
        StackPath {
            buf: [0; PATH_BUF],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) -> bool {
        // One byte stays for the NUL; a path with a NUL inside is refused.
        let end = self.len + bytes.len();
        if end >= PATH_BUF || bytes.contains(&0) {
            return false;
        }
        self.buf[self.len..end].copy_from_slice(bytes);
        self.len = end;
        true
    }

    fn as_cstr(&mut self) -> Option<&CStr> {
        self.buf[self.len] = 0;
        CStr::from_bytes_with_nul(&self.buf[..=self.len]).ok()
    }
}

impl std::fmt::Write for StackPath {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.push(s.as_bytes()) {
            Ok(())
        } else {
            Err(std::fmt::Error)
        }
    }
}

/// The link of `/proc/self/fd/<fd>`.
fn descriptor_link(fd: c_int, buf: &mut [u8]) -> Option<&[u8]> {
    let mut path = StackPath::new();
    write!(path, "/proc/self/fd/{fd}").ok()?;
    read_link(path.as_cstr()?, buf)
}

/// The executable of process `pid`.
fn exe_of(pid: pid_t, buf: &mut [u8]) -> Option<&[u8]> {
    let mut path = StackPath::new();
    write!(path, "/proc/{pid}/exe").ok()?;
    read_link(path.as_cstr()?, buf)
}

/// Finds `name` on `PATH` as `execvp` does (glibc's default path when `PATH` is unset).
fn search_path<'b>(name: &[u8], found: &'b mut StackPath) -> Option<&'b [u8]> {
    // SAFETY: getenv returns null or a NUL-terminated string of the environment.
    let path = unsafe { libc::getenv(c"PATH".as_ptr()) };
    let dirs: &[u8] = if path.is_null() {
        b"/bin:/usr/bin"
    } else {
        // SAFETY: non-null, NUL-terminated.
        unsafe { CStr::from_ptr(path) }.to_bytes()
    };
    for dir in dirs.split(|&b| b == b':') {
        *found = StackPath::new();
        let dir: &[u8] = if dir.is_empty() { b"." } else { dir };
        if !(found.push(dir) && found.push(b"/") && found.push(name)) {
            continue;
        }
        if found.as_cstr().is_some_and(is_executable) {
            return found.buf.get(..found.len);
        }
    }
    None
}

// ---------------------------------------------------------------------------------------------
// Reading the caller's arguments.

/// A C string argument, as bytes.
///
/// SAFETY (for callers): `ptr` is null or a NUL-terminated string alive for the hook's call.
unsafe fn c_bytes<'a>(ptr: *const c_char) -> Option<&'a [u8]> {
    // SAFETY: per the caller's contract.
    (!ptr.is_null()).then(|| unsafe { CStr::from_ptr(ptr) }.to_bytes())
}

/// An `argv`: a NULL-terminated array of C strings.
#[derive(Clone, Copy)]
struct Args<'a> {
    next: *const *const c_char,
    life: PhantomData<&'a ()>,
}

impl Args<'_> {
    /// SAFETY (for callers): `argv` is null or a NULL-terminated array of C strings alive for
    /// the hook's call, as exec's contract requires.
    unsafe fn new(argv: *const *const c_char) -> Self {
        Args {
            next: argv,
            life: PhantomData,
        }
    }
}

impl<'a> Iterator for Args<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.next.is_null() {
            return None;
        }
        // SAFETY: within the array, which ends with a null pointer (see `Args::new`).
        let arg = unsafe { *self.next };
        if arg.is_null() {
            return None;
        }
        // SAFETY: the next element exists (this one was not the terminator).
        self.next = unsafe { self.next.add(1) };
        // SAFETY: a NUL-terminated string (see `Args::new`).
        Some(unsafe { CStr::from_ptr(arg) }.to_bytes())
    }
}

/// An internet destination from a socket address, if it is one.
///
/// SAFETY (for callers): `addr` is null or points to `len` readable bytes.
unsafe fn inet_destination(addr: *const sockaddr, len: socklen_t) -> Option<SocketAddr> {
    let len = len as usize;
    if addr.is_null() || len < size_of::<libc::sa_family_t>() {
        return None;
    }
    // SAFETY: at least the family is readable; each form is read only when `len` covers it.
    unsafe {
        let family = std::ptr::read_unaligned(addr.cast::<libc::sa_family_t>());
        match c_int::from(family) {
            libc::AF_INET if len >= size_of::<libc::sockaddr_in>() => {
                let a = std::ptr::read_unaligned(addr.cast::<libc::sockaddr_in>());
                let ip = Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
                Some(SocketAddr::V4(SocketAddrV4::new(
                    ip,
                    u16::from_be(a.sin_port),
                )))
            }
            libc::AF_INET6 if len >= size_of::<libc::sockaddr_in6>() => {
                let a = std::ptr::read_unaligned(addr.cast::<libc::sockaddr_in6>());
                let ip = Ipv6Addr::from(a.sin6_addr.s6_addr);
                let port = u16::from_be(a.sin6_port);
                Some(SocketAddr::V6(SocketAddrV6::new(
                    ip,
                    port,
                    a.sin6_flowinfo,
                    a.sin6_scope_id,
                )))
            }
            _ => None,
        }
    }
}

/// TCP or UDP, from the socket's type.
fn socket_proto(fd: c_int) -> Option<Proto> {
    let mut kind: c_int = 0;
    let mut len = size_of::<c_int>() as socklen_t;
    // SAFETY: getsockopt writes one int.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_TYPE,
            (&mut kind as *mut c_int).cast(),
            &mut len,
        )
    };
    match (rc, kind) {
        (0, libc::SOCK_STREAM) => Some(Proto::Tcp),
        (0, libc::SOCK_DGRAM) => Some(Proto::Udp),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// What each hook reports.

fn on_connect(fd: c_int, dest: Option<SocketAddr>) -> Verdict {
    let (Some(guard), Some(dest)) = (guard::get(), dest) else {
        return Verdict::Allow;
    };
    let Some(proto) = socket_proto(fd) else {
        return Verdict::Allow;
    };
    guarded(|| {
        let mut page = PageCopy::uninit();
        let event = report::connect(&header(), &rules(guard, &mut page), proto, dest);
        emit(guard, &event.line);
        event.verdict
    })
}

/// A send with an explicit destination. `first` is the first buffer's bytes.
fn on_send(fd: c_int, dest: Option<SocketAddr>, bytes: usize, first: &[u8]) -> Verdict {
    let (Some(guard), Some(dest)) = (guard::get(), dest) else {
        return Verdict::Allow;
    };
    let Some(proto) = socket_proto(fd) else {
        return Verdict::Allow;
    };
    guarded(|| {
        let mut page = PageCopy::uninit();
        let rules = rules(guard, &mut page);
        let event = report::send(&header(), &rules, proto, dest, bytes, first);
        emit(guard, &event.line);
        event.verdict
    })
}

/// A `sendmsg` header's destination, total length and buffers: the send to an explicit
/// destination reported, and the buffers searched for the secret key.
///
/// SAFETY (for callers): `msg` points to a valid msghdr, as sendmsg's contract requires.
unsafe fn on_send_message(fd: c_int, msg: *const msghdr) -> Verdict {
    if msg.is_null() || guard::get().is_none() {
        return Verdict::Allow;
    }
    // SAFETY: per the caller's contract, with its iovec array of msg_iovlen entries.
    unsafe {
        let msg = &*msg;
        let dest = inet_destination(msg.msg_name.cast(), msg.msg_namelen);
        let iov: &[libc::iovec] = if msg.msg_iov.is_null() {
            &[]
        } else {
            std::slice::from_raw_parts(msg.msg_iov, msg.msg_iovlen)
        };
        let bytes = iov.iter().map(|v| v.iov_len).sum();
        let parts = iov.iter().map(|v| bytes_at(v.iov_base, v.iov_len));
        let carried = on_payload(fd, dest, bytes, parts);
        if dest.is_none() {
            return carried;
        }
        // The payload's start, gathered across buffers: a DNS query may come in pieces.
        let mut head = [0u8; PAYLOAD_HEAD];
        let mut len = 0;
        for v in iov {
            let part = bytes_at(v.iov_base, v.iov_len);
            let take = part.len().min(PAYLOAD_HEAD - len);
            head[len..len + take].copy_from_slice(&part[..take]);
            len += take;
            if len == PAYLOAD_HEAD {
                break;
            }
        }
        stricter(on_send(fd, dest, bytes, &head[..len]), carried)
    }
}

/// What leaves by `fd` (`total` bytes in `parts`; `dest` when the call names it): reported
/// when it carries the role's secret key and the descriptor is an internet socket.
fn on_payload<'a>(
    fd: c_int,
    dest: Option<SocketAddr>,
    total: usize,
    mut parts: impl Iterator<Item = &'a [u8]>,
) -> Verdict {
    let Some(guard) = guard::get() else {
        return Verdict::Allow;
    };
    let Some(key) = &guard.secret_key else {
        return Verdict::Allow;
    };
    guarded(|| {
        if total > SEARCH_BEFORE_ASKING && socket_proto(fd).is_none() {
            return Verdict::Allow;
        }
        let Some(encoding) = parts.find_map(|part| key.found_in(part)) else {
            return Verdict::Allow;
        };
        // A file or a pipe holds the key, it does not carry it out (a program reading the
        // pipe and sending it is guarded too).
        let (Some(proto), Some(dest)) = (socket_proto(fd), dest.or_else(|| peer_address(fd)))
        else {
            return Verdict::Allow;
        };
        let mut page = PageCopy::uninit();
        let rules = rules(guard, &mut page);
        let event = report::secret_sent(&header(), &rules, proto, dest, total, encoding);
        emit(guard, &event.line);
        event.verdict
    })
}

/// Whether what `send` or `write` would carry out by `fd` is refused (the secret key,
/// under a policy that denies it).
///
/// SAFETY (for callers): `buf` is null or covers `len` readable bytes.
unsafe fn buffer_refused(fd: c_int, buf: *const c_void, len: size_t) -> bool {
    if guard::get().is_none() {
        return false;
    }
    // SAFETY: the caller's contract.
    let payload = unsafe { bytes_at(buf, len) };
    on_payload(fd, None, len, std::iter::once(payload)) == Verdict::Deny
}

/// The stricter of two verdicts on one call.
fn stricter(a: Verdict, b: Verdict) -> Verdict {
    match (a, b) {
        (Verdict::Deny, _) | (_, Verdict::Deny) => Verdict::Deny,
        (Verdict::Observe, _) | (_, Verdict::Observe) => Verdict::Observe,
        _ => Verdict::Allow,
    }
}

/// The internet address a connected socket talks to.
fn peer_address(fd: c_int) -> Option<SocketAddr> {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut addr: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = size_of::<libc::sockaddr_storage>() as socklen_t;
    // SAFETY: getpeername writes at most `len` bytes into `addr` and the length it wrote.
    let rc = unsafe {
        libc::getpeername(
            fd,
            (&mut addr as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: `len` bytes of `addr` were written.
    unsafe { inet_destination((&addr as *const libc::sockaddr_storage).cast(), len) }
}

/// SAFETY (for callers): `ptr` is null or points to `len` readable bytes.
unsafe fn bytes_at<'a>(ptr: *const c_void, len: usize) -> &'a [u8] {
    if ptr.is_null() || len == 0 {
        &[]
    } else {
        // SAFETY: per the caller's contract.
        unsafe { std::slice::from_raw_parts(ptr.cast(), len) }
    }
}

/// An exec of the file `file` (the path as found), called as `called`.
fn on_exec(called: ExecPath<'_>, file: &[u8], argv: Args<'_>) -> Verdict {
    let Some(guard) = guard::get() else {
        return Verdict::Allow;
    };
    guarded(|| {
        let mut page = PageCopy::uninit();
        let event = report::exec(&header(), &rules(guard, &mut page), called, file, argv);
        emit(guard, &event.line);
        event.verdict
    })
}

/// An exec of a path. Paths that cannot be run are not reported: the call fails by itself
/// (this also keeps a PATH search's misses out).
///
/// SAFETY (for callers): `path` and `argv` as exec's contract requires.
unsafe fn on_exec_path(path: *const c_char, argv: *const *const c_char) -> Verdict {
    if guard::get().is_none() || path.is_null() {
        return Verdict::Allow;
    }
    // SAFETY: per the caller's contract.
    let (path, argv) = unsafe { (CStr::from_ptr(path), Args::new(argv)) };
    if !is_executable(path) {
        return Verdict::Allow;
    }
    let called = path.to_bytes();
    let mut link = [0u8; PATH_BUF];
    let file = if crate::exec::is_descriptor_path(called) {
        read_link(path, &mut link).unwrap_or(called)
    } else {
        called
    };
    on_exec(ExecPath::Path(called), file, argv)
}

/// An exec of a name looked up on `PATH` (`execvp`, `execvpe`, `posix_spawnp`).
///
/// SAFETY (for callers): `file` and `argv` as exec's contract requires.
unsafe fn on_exec_search(file: *const c_char, argv: *const *const c_char) -> Verdict {
    if guard::get().is_none() {
        return Verdict::Allow;
    }
    // SAFETY: per the caller's contract.
    let Some(name) = (unsafe { c_bytes(file) }) else {
        return Verdict::Allow;
    };
    if name.contains(&b'/') {
        // SAFETY: per the caller's contract.
        return unsafe { on_exec_path(file, argv) };
    }
    let mut found = StackPath::new();
    let Some(path) = search_path(name, &mut found) else {
        return Verdict::Allow;
    };
    // SAFETY: per the caller's contract.
    on_exec(ExecPath::Path(name), path, unsafe { Args::new(argv) })
}

/// An exec of an open descriptor.
///
/// SAFETY (for callers): `argv` as exec's contract requires.
unsafe fn on_exec_descriptor(fd: c_int, argv: *const *const c_char) -> Verdict {
    if guard::get().is_none() {
        return Verdict::Allow;
    }
    let mut link = [0u8; PATH_BUF];
    let file = descriptor_link(fd, &mut link).unwrap_or(b"");
    // SAFETY: per the caller's contract.
    on_exec(ExecPath::Fd(fd), file, unsafe { Args::new(argv) })
}

fn on_kill(target: pid_t, signal: c_int) -> Verdict {
    let Some(guard) = guard::get() else {
        return Verdict::Allow;
    };
    if !report::kill_is_reported(own_pid(), target, signal) {
        return Verdict::Allow;
    }
    guarded(|| {
        let hits_extension =
            report::kill_needs_target(guard.policy(), signal) && targets_extension(target);
        let event = report::kill(&header(), guard.policy(), target, signal, hits_extension);
        emit_attested(guard, &event.line);
        event.verdict
    })
}

/// Whether a signal to `target` reaches a process run from /opt/extensions/ (`-1` reaches
/// every process the caller may signal).
fn targets_extension(target: pid_t) -> bool {
    let mut exe = [0u8; PATH_BUF];
    target == -1 || (target > 0 && exe_of(target, &mut exe).is_some_and(policy::is_extension))
}

/// An open of `path` (relative to `dir_fd` when it is not absolute). `writes`: the flags or
/// mode ask for writing; only then, and only under a `write` list, is the path judged.
///
/// SAFETY (for callers): `path` is null or a NUL-terminated string.
unsafe fn on_open(dir_fd: c_int, path: *const c_char, writes: bool) -> Verdict {
    let Some(guard) = guard::get() else {
        return Verdict::Allow;
    };
    // SAFETY: per the caller's contract.
    let Some(path) = (unsafe { c_bytes(path) }) else {
        return Verdict::Allow;
    };
    if let Some(name) = report::patch_report(path) {
        // The open itself fails on its own (nothing is under /dev/null).
        guarded(|| {
            emit(guard, &report::patched(&header(), name));
            Verdict::Allow
        });
        return Verdict::Allow;
    }
    if report::is_credential_path(path) {
        guarded(|| {
            emit(guard, &report::open(&header(), path));
            Verdict::Allow
        });
    }
    match guard.policy() {
        Some(policy) if writes && policy.checks_writes() => guarded(|| {
            let mut full = StackPath::new();
            // A path that cannot be made absolute is judged as called (and never allowed).
            let judged = if absolute_path(dir_fd, path, &mut full) {
                &full.buf[..full.len]
            } else {
                path
            };
            match report::write(&header(), policy, judged) {
                Some(event) => {
                    emit(guard, &event.line);
                    event.verdict
                }
                None => Verdict::Allow,
            }
        }),
        _ => Verdict::Allow,
    }
}

/// `path` made absolute into `full`: as is, or after the working directory (`AT_FDCWD`) or
/// the directory `dir_fd` names.
fn absolute_path(dir_fd: c_int, path: &[u8], full: &mut StackPath) -> bool {
    if path.starts_with(b"/") {
        return full.push(path);
    }
    let mut dir = [0u8; PATH_BUF];
    let dir = if dir_fd == libc::AT_FDCWD {
        working_directory(&mut dir)
    } else {
        descriptor_link(dir_fd, &mut dir)
    };
    dir.is_some_and(|dir| {
        dir.starts_with(b"/") && full.push(dir) && full.push(b"/") && full.push(path)
    })
}

/// The working directory, by the raw system call (no libc state involved).
fn working_directory(buf: &mut [u8]) -> Option<&[u8]> {
    // SAFETY: getcwd writes at most `buf.len()` bytes, NUL included, and returns that length.
    let n = unsafe { libc::syscall(libc::SYS_getcwd, buf.as_mut_ptr(), buf.len()) };
    let n = usize::try_from(n)
        .ok()
        .filter(|&n| n > 0 && n <= buf.len())?;
    // The length counts the NUL.
    buf.get(..n - 1)
}

/// Whether an `fopen` mode writes.
///
/// SAFETY (for callers): `mode` is null or a NUL-terminated string.
unsafe fn fopen_writes(mode: *const c_char) -> bool {
    // SAFETY: per the caller's contract.
    unsafe { c_bytes(mode) }.is_some_and(report::fopen_writes)
}

// ---------------------------------------------------------------------------------------------
// The hooks: libc's names, exported from the library so that the loader binds the program's
// calls to them.

type ExecveFn =
    unsafe extern "C" fn(*const c_char, *const *const c_char, *const *const c_char) -> c_int;
type ExecvFn = unsafe extern "C" fn(*const c_char, *const *const c_char) -> c_int;
type SpawnFn = unsafe extern "C" fn(
    *mut pid_t,
    *const c_char,
    *const posix_spawn_file_actions_t,
    *const posix_spawnattr_t,
    *const *mut c_char,
    *const *mut c_char,
) -> c_int;
type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
type OpenatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int;
type FopenFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut FILE;

/// # Safety
/// libc's `connect`.
#[no_mangle]
unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    // SAFETY: connect's contract: `addr` points to `len` bytes.
    if on_connect(fd, unsafe { inet_destination(addr, len) }) == Verdict::Deny {
        set_errno(libc::ECONNREFUSED);
        return -1;
    }
    call_real!(
        Real::Connect,
        unsafe extern "C" fn(c_int, *const sockaddr, socklen_t) -> c_int,
        -1,
        (fd, addr, len)
    )
}

/// # Safety
/// libc's `send`.
#[no_mangle]
unsafe extern "C" fn send(fd: c_int, buf: *const c_void, len: size_t, flags: c_int) -> ssize_t {
    // SAFETY: send's contract: `buf` covers `len` bytes.
    if unsafe { buffer_refused(fd, buf, len) } {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(
        Real::Send,
        unsafe extern "C" fn(c_int, *const c_void, size_t, c_int) -> ssize_t,
        -1,
        (fd, buf, len, flags)
    )
}

/// # Safety
/// libc's `write`.
#[no_mangle]
unsafe extern "C" fn write(fd: c_int, buf: *const c_void, len: size_t) -> ssize_t {
    // SAFETY: write's contract: `buf` covers `len` bytes.
    if unsafe { buffer_refused(fd, buf, len) } {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(
        Real::Write,
        unsafe extern "C" fn(c_int, *const c_void, size_t) -> ssize_t,
        -1,
        (fd, buf, len)
    )
}

/// # Safety
/// libc's `writev`.
#[no_mangle]
unsafe extern "C" fn writev(fd: c_int, iov: *const libc::iovec, count: c_int) -> ssize_t {
    if guard::get().is_some() && !iov.is_null() && count > 0 {
        // SAFETY: writev's contract: `count` iovecs, each covering its length.
        let iov = unsafe { std::slice::from_raw_parts(iov, count as usize) };
        let total = iov.iter().map(|v| v.iov_len).sum();
        // SAFETY: as above.
        let parts = iov
            .iter()
            .map(|v| unsafe { bytes_at(v.iov_base, v.iov_len) });
        if on_payload(fd, None, total, parts) == Verdict::Deny {
            set_errno(libc::EACCES);
            return -1;
        }
    }
    call_real!(
        Real::Writev,
        unsafe extern "C" fn(c_int, *const libc::iovec, c_int) -> ssize_t,
        -1,
        (fd, iov, count)
    )
}

/// # Safety
/// libc's `sendto`.
#[no_mangle]
unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    len: size_t,
    flags: c_int,
    addr: *const sockaddr,
    addr_len: socklen_t,
) -> ssize_t {
    if guard::get().is_some() {
        // SAFETY: sendto's contract: `addr` and `buf` cover their lengths.
        let (dest, payload) = unsafe { (inet_destination(addr, addr_len), bytes_at(buf, len)) };
        let carried = on_payload(fd, dest, len, std::iter::once(payload));
        if stricter(on_send(fd, dest, len, payload), carried) == Verdict::Deny {
            set_errno(libc::EACCES);
            return -1;
        }
    }
    call_real!(
        Real::Sendto,
        unsafe extern "C" fn(
            c_int,
            *const c_void,
            size_t,
            c_int,
            *const sockaddr,
            socklen_t,
        ) -> ssize_t,
        -1,
        (fd, buf, len, flags, addr, addr_len)
    )
}

/// # Safety
/// libc's `sendmsg`.
#[no_mangle]
unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    // SAFETY: sendmsg's contract.
    if unsafe { on_send_message(fd, msg) } == Verdict::Deny {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(
        Real::Sendmsg,
        unsafe extern "C" fn(c_int, *const msghdr, c_int) -> ssize_t,
        -1,
        (fd, msg, flags)
    )
}

/// # Safety
/// libc's `sendmmsg`.
#[no_mangle]
unsafe extern "C" fn sendmmsg(
    fd: c_int,
    messages: *mut mmsghdr,
    count: c_uint,
    flags: c_int,
) -> c_int {
    if guard::get().is_some() && !messages.is_null() {
        let mut denied = false;
        for i in 0..count as usize {
            // SAFETY: sendmmsg's contract: `count` messages.
            let msg = unsafe { &(*messages.add(i)).msg_hdr };
            // SAFETY: each a valid msghdr.
            denied |= unsafe { on_send_message(fd, msg) } == Verdict::Deny;
        }
        if denied {
            set_errno(libc::EACCES);
            return -1;
        }
    }
    call_real!(
        Real::Sendmmsg,
        unsafe extern "C" fn(c_int, *mut mmsghdr, c_uint, c_int) -> c_int,
        -1,
        (fd, messages, count, flags)
    )
}

/// # Safety
/// libc's `execve`.
#[no_mangle]
unsafe extern "C" fn execve(
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: execve's contract.
    if unsafe { on_exec_path(path, argv) } == Verdict::Deny {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(Real::Execve, ExecveFn, -1, (path, argv, envp))
}

/// # Safety
/// libc's `execv`.
#[no_mangle]
unsafe extern "C" fn execv(path: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: execv's contract.
    if unsafe { on_exec_path(path, argv) } == Verdict::Deny {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(Real::Execv, ExecvFn, -1, (path, argv))
}

/// # Safety
/// libc's `execvp`.
#[no_mangle]
unsafe extern "C" fn execvp(file: *const c_char, argv: *const *const c_char) -> c_int {
    // SAFETY: execvp's contract.
    if unsafe { on_exec_search(file, argv) } == Verdict::Deny {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(Real::Execvp, ExecvFn, -1, (file, argv))
}

/// # Safety
/// libc's `execvpe`.
#[no_mangle]
unsafe extern "C" fn execvpe(
    file: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: execvpe's contract.
    if unsafe { on_exec_search(file, argv) } == Verdict::Deny {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(Real::Execvpe, ExecveFn, -1, (file, argv, envp))
}

/// # Safety
/// libc's `fexecve`.
#[no_mangle]
unsafe extern "C" fn fexecve(
    fd: c_int,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> c_int {
    // SAFETY: fexecve's contract.
    if unsafe { on_exec_descriptor(fd, argv) } == Verdict::Deny {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(
        Real::Fexecve,
        unsafe extern "C" fn(c_int, *const *const c_char, *const *const c_char) -> c_int,
        -1,
        (fd, argv, envp)
    )
}

/// # Safety
/// libc's `execveat`.
#[no_mangle]
unsafe extern "C" fn execveat(
    dir_fd: c_int,
    path: *const c_char,
    argv: *const *const c_char,
    envp: *const *const c_char,
    flags: c_int,
) -> c_int {
    // SAFETY: execveat's contract.
    let verdict = unsafe {
        match c_bytes(path) {
            Some(b"") if flags & libc::AT_EMPTY_PATH != 0 => on_exec_descriptor(dir_fd, argv),
            Some(p) if p.starts_with(b"/") || dir_fd == libc::AT_FDCWD => on_exec_path(path, argv),
            Some(p) => on_exec(ExecPath::Path(p), p, Args::new(argv)),
            None => Verdict::Allow,
        }
    };
    if verdict == Verdict::Deny {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(
        Real::Execveat,
        unsafe extern "C" fn(
            c_int,
            *const c_char,
            *const *const c_char,
            *const *const c_char,
            c_int,
        ) -> c_int,
        -1,
        (dir_fd, path, argv, envp, flags)
    )
}

/// # Safety
/// libc's `posix_spawn`. glibc's calls `execve` inside itself, not through the hook.
#[no_mangle]
unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    actions: *const posix_spawn_file_actions_t,
    attributes: *const posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    // SAFETY: posix_spawn's contract.
    if unsafe { on_exec_path(path, argv.cast()) } == Verdict::Deny {
        return libc::EACCES;
    }
    call_real!(
        Real::PosixSpawn,
        SpawnFn,
        libc::ENOSYS,
        (pid, path, actions, attributes, argv, envp)
    )
}

/// # Safety
/// libc's `posix_spawnp`.
#[no_mangle]
unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    actions: *const posix_spawn_file_actions_t,
    attributes: *const posix_spawnattr_t,
    argv: *const *mut c_char,
    envp: *const *mut c_char,
) -> c_int {
    // SAFETY: posix_spawnp's contract.
    if unsafe { on_exec_search(file, argv.cast()) } == Verdict::Deny {
        return libc::EACCES;
    }
    call_real!(
        Real::PosixSpawnp,
        SpawnFn,
        libc::ENOSYS,
        (pid, file, actions, attributes, argv, envp)
    )
}

/// # Safety
/// libc's `kill`.
#[no_mangle]
unsafe extern "C" fn kill(pid: pid_t, signal: c_int) -> c_int {
    if on_kill(pid, signal) == Verdict::Deny {
        set_errno(libc::EPERM);
        return -1;
    }
    call_real!(
        Real::Kill,
        unsafe extern "C" fn(pid_t, c_int) -> c_int,
        -1,
        (pid, signal)
    )
}

/// # Safety
/// libc's `tgkill`.
#[no_mangle]
unsafe extern "C" fn tgkill(tgid: pid_t, tid: pid_t, signal: c_int) -> c_int {
    if on_kill(tgid, signal) == Verdict::Deny {
        set_errno(libc::EPERM);
        return -1;
    }
    call_real!(
        Real::Tgkill,
        unsafe extern "C" fn(pid_t, pid_t, c_int) -> c_int,
        -1,
        (tgid, tid, signal)
    )
}

/// # Safety
/// libc's `open` (see the module's note on its mode argument).
#[no_mangle]
unsafe extern "C" fn open(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: open's contract.
    let verdict = unsafe { on_open(libc::AT_FDCWD, path, report::opens_for_writing(flags)) };
    if verdict == Verdict::Deny {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(Real::Open, OpenFn, -1, (path, flags, mode as c_uint))
}

/// # Safety
/// libc's `open64`.
#[no_mangle]
unsafe extern "C" fn open64(path: *const c_char, flags: c_int, mode: mode_t) -> c_int {
    // SAFETY: open64's contract.
    let verdict = unsafe { on_open(libc::AT_FDCWD, path, report::opens_for_writing(flags)) };
    if verdict == Verdict::Deny {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(Real::Open64, OpenFn, -1, (path, flags, mode as c_uint))
}

/// # Safety
/// libc's `openat`.
#[no_mangle]
unsafe extern "C" fn openat(
    dir_fd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    // SAFETY: openat's contract.
    let verdict = unsafe { on_open(dir_fd, path, report::opens_for_writing(flags)) };
    if verdict == Verdict::Deny {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(
        Real::Openat,
        OpenatFn,
        -1,
        (dir_fd, path, flags, mode as c_uint)
    )
}

/// # Safety
/// libc's `openat64`.
#[no_mangle]
unsafe extern "C" fn openat64(
    dir_fd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: mode_t,
) -> c_int {
    // SAFETY: openat64's contract.
    let verdict = unsafe { on_open(dir_fd, path, report::opens_for_writing(flags)) };
    if verdict == Verdict::Deny {
        set_errno(libc::EACCES);
        return -1;
    }
    call_real!(
        Real::Openat64,
        OpenatFn,
        -1,
        (dir_fd, path, flags, mode as c_uint)
    )
}

/// # Safety
/// libc's `fopen`.
#[no_mangle]
unsafe extern "C" fn fopen(path: *const c_char, mode: *const c_char) -> *mut FILE {
    // SAFETY: fopen's contract.
    let verdict = unsafe { on_open(libc::AT_FDCWD, path, fopen_writes(mode)) };
    if verdict == Verdict::Deny {
        set_errno(libc::EACCES);
        return std::ptr::null_mut();
    }
    call_real!(Real::Fopen, FopenFn, std::ptr::null_mut(), (path, mode))
}

/// # Safety
/// libc's `fopen64`.
#[no_mangle]
unsafe extern "C" fn fopen64(path: *const c_char, mode: *const c_char) -> *mut FILE {
    // SAFETY: fopen64's contract.
    let verdict = unsafe { on_open(libc::AT_FDCWD, path, fopen_writes(mode)) };
    if verdict == Verdict::Deny {
        set_errno(libc::EACCES);
        return std::ptr::null_mut();
    }
    call_real!(Real::Fopen64, FopenFn, std::ptr::null_mut(), (path, mode))
}
