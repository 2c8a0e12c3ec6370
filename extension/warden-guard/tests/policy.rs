//! The guard's policy and its care for the host program: enforce and observe modes, a bad
//! policy file, the switch, Warden absent, and descriptors left as they were.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::PathBuf;

use support::{lines, of_kind, Program, Warden};

fn policy_file(dir: &tempfile::TempDir, text: &str) -> PathBuf {
    let path = dir.path().join("policy.json");
    std::fs::write(&path, text).unwrap();
    path
}

/// Tries a connect to a documentation address (refused by the guard before any packet leaves)
/// and an exec of /bin/true, and prints what Python saw of each.
const TRY_CONNECT_AND_EXEC: &str = r#"
import socket, subprocess
try:
    socket.create_connection(("203.0.113.7", 9), timeout=5).close()
    print("connected")
except ConnectionRefusedError:
    print("connect refused")
except OSError as e:
    print("connect failed", e.errno)
try:
    subprocess.run(["/bin/true"], check=True)
    print("exec ran")
except PermissionError:
    print("exec denied")
"#;

#[test]
fn enforce_mode_refuses_a_connect_and_an_exec_and_reports_both_as_denied() {
    let warden = Warden::bind();
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(
        &dir,
        r#"{"mode":"enforce","egress":[{"cidr":"10.0.0.0/8","ports":[443]}],"exec":["/usr/bin/env"]}"#,
    );
    let (out, events) = Program::python(&warden, TRY_CONNECT_AND_EXEC)
        .env("WARDEN_POLICY", &policy)
        .run();
    assert_eq!(lines(&out), ["connect refused", "exec denied"]);
    assert_eq!(of_kind(&events, "hello")[0].body()[0], "enforce");
    let connect = of_kind(&events, "connect");
    assert_eq!(connect.len(), 1, "{events:#?}");
    assert_eq!(connect[0].verdict(), "deny");
    assert_eq!(connect[0].body(), ["tcp", "203.0.113.7:9"]);
    let exec = of_kind(&events, "exec");
    assert_eq!(exec.len(), 1, "{events:#?}");
    assert_eq!(exec[0].verdict(), "deny");
    assert_eq!(exec[0].body()[..3], ["/bin/true", "/bin/true", "path"]);
    // Nothing ran: no hello from a child.
    assert_eq!(of_kind(&events, "hello").len(), 1, "{events:#?}");
}

#[test]
fn observe_mode_reports_a_violation_and_lets_the_call_proceed() {
    let warden = Warden::bind();
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(&dir, r#"{"mode":"observe","exec":["python3"]}"#);
    let script = r#"
import socket, subprocess
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
socket.create_connection(listener.getsockname()).close()
subprocess.run(["/bin/true"], check=True)
print("ran")
"#;
    let (out, events) = Program::python(&warden, script)
        .env("WARDEN_POLICY", &policy)
        .run();
    assert_eq!(lines(&out), ["ran"]);
    assert_eq!(of_kind(&events, "hello")[0].body()[0], "observe");
    let exec = of_kind(&events, "exec");
    assert_eq!(exec.len(), 1, "{events:#?}");
    assert_eq!(exec[0].verdict(), "observe");
    // No egress rules: every destination is allowed.
    let connect = of_kind(&events, "connect");
    assert_eq!(connect.len(), 1, "{events:#?}");
    assert_eq!(connect[0].verdict(), "allow");
}

#[test]
fn an_egress_policy_always_allows_loopback_and_the_runtime_api() {
    let warden = Warden::bind();
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(&dir, r#"{"mode":"enforce","egress":[]}"#);
    let script = r#"
import socket
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
socket.create_connection(listener.getsockname()).close()
print("connected")
"#;
    let (out, events) = Program::python(&warden, script)
        .env("WARDEN_POLICY", &policy)
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9001")
        .run();
    assert_eq!(lines(&out), ["connected"]);
    let connect = of_kind(&events, "connect");
    assert_eq!(connect.len(), 1, "{events:#?}");
    assert_eq!(connect[0].verdict(), "allow");
}

#[test]
fn a_malformed_policy_is_reported_by_each_process_that_loads_it_and_not_used() {
    let warden = Warden::bind();
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(&dir, r#"{"mode":"enforce","egress":[{"cidr":"#);
    let (out, events) = Program::python(&warden, TRY_CONNECT_AND_EXEC)
        .env("WARDEN_POLICY", &policy)
        .run();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let prefix = format!("[warden-guard] policy {} not used: ", policy.display());
    let warnings: Vec<&str> = stderr.lines().filter(|l| l.starts_with(&prefix)).collect();
    // One line from Python, one from /bin/true, which loads the guard too.
    assert_eq!(warnings.len(), 2, "stderr:\n{stderr}");
    // Without a policy nothing is refused: the connect fails (or not) on its own.
    let printed = lines(&out);
    assert_ne!(printed[0], "connect refused", "{printed:?}");
    assert_eq!(printed[1], "exec ran");
    let hello = of_kind(&events, "hello");
    assert_eq!(hello[0].body()[0], "error");
    let notices = of_kind(&events, "guard");
    assert_eq!(notices.len(), 2, "{events:#?}");
    assert_eq!(notices[0].body()[0], "policy_error");
    assert!(
        notices[0].body()[1].starts_with("not a valid policy"),
        "{notices:#?}"
    );
    let verdicts: Vec<&str> = events.iter().map(|e| e.verdict()).collect();
    assert!(verdicts.iter().all(|v| *v == "allow"), "{events:#?}");
    assert_eq!(of_kind(&events, "exec").len(), 1);
}

#[test]
fn an_oversized_policy_is_not_used() {
    let warden = Warden::bind();
    let dir = tempfile::tempdir().unwrap();
    let padding = " ".repeat(70 * 1024);
    let policy = policy_file(&dir, &format!(r#"{{"mode":"enforce"{padding}}}"#));
    let (_out, events) = Program::python(&warden, "print('ok')")
        .env("WARDEN_POLICY", &policy)
        .run();
    let notices = of_kind(&events, "guard");
    assert_eq!(notices.len(), 1, "{events:#?}");
    assert_eq!(
        notices[0].body(),
        ["policy_error", "larger than 65536 bytes"]
    );
}

#[test]
fn warden_guard_off_sends_nothing_and_refuses_nothing() {
    let warden = Warden::bind();
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(&dir, r#"{"mode":"enforce","egress":[],"exec":[]}"#);
    let script = r#"
import subprocess
subprocess.run(["/bin/true"], check=True)
print("ran")
"#;
    let (out, events) = Program::python(&warden, script)
        .env("WARDEN_POLICY", &policy)
        .env("WARDEN_GUARD", "off")
        .run();
    assert_eq!(lines(&out), ["ran"]);
    assert!(events.is_empty(), "{events:#?}");
}

/// Does network, process and file work and prints what it saw.
const BUSY_PROGRAM: &str = r#"
import os, socket, subprocess
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
client = socket.create_connection(listener.getsockname())
peer, _ = listener.accept()
client.sendall(b"ping")
print(peer.recv(4))
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", 0))
udp.sendto(b"dgram", udp.getsockname())
print(udp.recv(16))
print(subprocess.run(["echo", "child", "output"], capture_output=True, text=True).stdout.strip())
print(open("/proc/self/environ", "rb").read().count(b"\0") > 0)
"#;

#[test]
fn without_warden_the_program_runs_and_prints_the_same() {
    let absent = Warden::absent();
    let (guarded, _) = Program::python(&absent, BUSY_PROGRAM).run();
    let (plain, _) = Program::python(&absent, BUSY_PROGRAM).without_guard().run();
    assert_eq!(
        lines(&guarded),
        ["b'ping'", "b'dgram'", "child output", "True"]
    );
    assert_eq!(guarded.stdout, plain.stdout);
    assert_eq!(guarded.stderr, plain.stderr);
}

#[test]
fn the_guard_leaves_no_descriptor_behind_across_many_children() {
    let warden = Warden::bind();
    // Python closes every descriptor in its children (and may use vfork): the guard's socket
    // must stay the parent's, without a new one leaking per child.
    let script = r#"
import os, socket, subprocess
subprocess.run(["/bin/true"], check=True)
before = sorted(os.listdir("/proc/self/fd"))
for _ in range(30):
    subprocess.run(["/bin/true"], check=True)
after = sorted(os.listdir("/proc/self/fd"))
print(before == after, len(before), len(after))
# One more event, once the burst is read: it carries how many this process could not send.
time.sleep(0.3)
subprocess.run(["/bin/true"], check=True)
"#;
    let script = format!("import time\n{script}");
    let (out, events) = Program::python(&warden, &script).run();
    assert_eq!(lines(&out)[0].split(' ').next(), Some("True"), "{out:?}");
    // The execs are reported; under load a burst can fill the kernel's short queue of a
    // reader that is not scheduled, and the guard never waits for it: such events are dropped
    // and counted (by the process that could not send them; a forked child's count leaves
    // with it). Most arrive.
    let parent = of_kind(&events, "hello")[0].pid();
    let dropped: u64 = events
        .iter()
        .filter(|e| e.pid() == parent)
        .map(|e| e.fields[5].parse::<u64>().unwrap())
        .max()
        .unwrap();
    let execs = of_kind(&events, "exec").len() as u64;
    assert!(
        execs >= 16 && execs + dropped <= 32,
        "{execs} exec events, {dropped} dropped"
    );
}

#[test]
fn a_descriptor_reused_by_the_program_is_never_written_to() {
    let warden = Warden::bind();
    // The program puts its own pipe on every descriptor number from 3 up, over the guard's
    // socket: the guard must notice and send through a new socket, never into the pipe.
    let script = r#"
import os, socket, subprocess
read_end, write_end = os.pipe()
os.set_blocking(read_end, False)
for fd in range(3, 1024):
    if fd not in (read_end, write_end):
        try:
            os.dup2(write_end, fd)
        except OSError:
            pass
subprocess.run(["/bin/true"], check=True)
try:
    leaked = os.read(read_end, 4096)
except BlockingIOError:
    leaked = b""
print(len(leaked))
"#;
    let (out, events) = Program::python(&warden, script).run();
    assert_eq!(lines(&out), ["0"]);
    assert_eq!(of_kind(&events, "exec").len(), 1, "{events:#?}");
}

/// A Python program with the guard that makes `connects` connections, says "filled", then
/// makes one more when told and says "done": to fill Warden's channel and look at what the
/// next event says it dropped.
struct Filler {
    child: std::process::Child,
    stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl Filler {
    fn start(socket_name: &str, connects: u64) -> Filler {
        use std::process::{Command, Stdio};
        let script = format!(
            r#"
import socket, sys
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
for _ in range({connects}):
    socket.create_connection(listener.getsockname()).close()
    listener.accept()[0].close()
print("filled", flush=True)
sys.stdin.readline()
socket.create_connection(listener.getsockname()).close()
print("done", flush=True)
"#
        );
        let mut child = Command::new(support::python())
            .args(["-c", &script])
            .env("LD_PRELOAD", support::library())
            .env("WARDEN_GUARD_SOCKET", socket_name)
            .env_remove("WARDEN_POLICY")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut filler = Filler { child, stdout };
        assert_eq!(filler.line(), "filled");
        filler
    }

    fn line(&mut self) -> String {
        use std::io::BufRead;
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line.trim().to_string()
    }

    /// The one more connection, and the program's end.
    fn finish(mut self) {
        use std::io::Write;
        writeln!(self.child.stdin.take().unwrap()).unwrap();
        assert_eq!(self.line(), "done");
        assert!(self.child.wait().unwrap().success());
    }
}

#[test]
fn events_that_cannot_be_sent_are_dropped_counted_and_never_block() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    // A Warden that reads nothing until told: its queue fills, later sends fail at once.
    let name = format!("warden-guard-test-full-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let socket = UnixDatagram::bind_addr(&addr).unwrap();
    let filler = Filler::start(&name, 40);
    // Take what was queued, then let the program make one more connection.
    socket.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 2048];
    let mut queued = 0;
    while socket.recv(&mut buf).is_ok() {
        queued += 1;
    }
    assert!(queued < 41, "the queue took {queued} of 41 datagrams");
    filler.finish();
    socket.set_nonblocking(false).unwrap();
    socket
        .set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    let n = socket.recv(&mut buf).unwrap();
    let last: Vec<&str> = std::str::from_utf8(&buf[..n])
        .unwrap()
        .split('\t')
        .collect();
    assert_eq!(last[1], "connect");
    let dropped: usize = last[5].parse().unwrap();
    assert_eq!(dropped, 41 - queued, "dropped count in {last:?}");
}

#[test]
fn a_full_ring_drops_and_counts_events_and_never_blocks() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};
    use warden_ring::{Reader, RingFile, SLOTS};

    // A Warden whose ring nobody reads until told (its socket takes the hello).
    let name = format!("warden-guard-test-ring-full-{}", std::process::id());
    let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let _socket = UnixDatagram::bind_addr(&addr).unwrap();
    let ring = RingFile::create(&support::ring_path(&name)).unwrap();
    let mut reader = Reader::new(ring.ring());
    let extra = 20;
    let filler = Filler::start(&name, SLOTS + extra);
    let mut kinds = Vec::new();
    reader.drain(ring.ring(), 0, |event| {
        kinds.push(String::from_utf8(event.to_vec()).unwrap());
    });
    assert_eq!(kinds.len() as u64, SLOTS, "the ring holds {SLOTS} events");
    filler.finish();
    let mut last = String::new();
    reader.drain(ring.ring(), 0, |event| {
        last = String::from_utf8(event.to_vec()).unwrap();
    });
    let last: Vec<&str> = last.split('\t').collect();
    assert_eq!(last[1], "connect");
    assert_eq!(last[5], extra.to_string(), "dropped count in {last:?}");
    let _ = std::fs::remove_file(ring.path());
}

/// Opens files in a scratch directory (argv[1]) for writing in each way a program may, and one
/// for reading; prints what happened to each.
const TRY_WRITES: &str = r#"
import ctypes, os, sys
scratch = sys.argv[1]
os.chdir(scratch)
def attempt(name, action):
    try:
        action()
        print(name, "ok")
    except PermissionError:
        print(name, "denied")
def write(path, mode="w"):
    with open(path, mode) as f:
        f.write("x")
libc = ctypes.CDLL(None, use_errno=True)
libc.fopen.restype = ctypes.c_void_p
def c_fopen(path, mode):
    f = libc.fopen(path.encode(), mode.encode())
    if not f:
        raise PermissionError(ctypes.get_errno(), "fopen")
    libc.fclose(ctypes.c_void_p(f))
attempt("cache", lambda: write(scratch + "/cache/a"))
attempt("payload", lambda: write(scratch + "/payload"))
attempt("read", lambda: open(scratch + "/existing").read())
attempt("relative", lambda: write("cache/../escaped"))
cache = os.open(scratch + "/cache", os.O_RDONLY)
attempt("openat", lambda: os.close(os.open("b", os.O_WRONLY | os.O_CREAT, dir_fd=cache)))
attempt("append", lambda: write(scratch + "/existing", "a"))
attempt("fopen", lambda: c_fopen(scratch + "/fopened", "w"))
attempt("fopen-read", lambda: c_fopen(scratch + "/existing", "r"))
attempt("devnull", lambda: write("/dev/null"))
print(sorted(os.listdir(scratch)))
"#;

fn write_policy_and_scratch(mode: &str) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(scratch.join("cache")).unwrap();
    std::fs::write(scratch.join("existing"), "old").unwrap();
    let policy = policy_file(
        &dir,
        &format!(
            r#"{{"mode":"{mode}","write":["{}/cache/"]}}"#,
            scratch.display()
        ),
    );
    (dir, policy, scratch)
}

#[test]
fn enforce_mode_refuses_writes_outside_the_write_list_and_reports_each() {
    let warden = Warden::bind();
    let (_dir, policy, scratch) = write_policy_and_scratch("enforce");
    let script = format!("import sys; sys.argv[1:] = [{:?}]\n{TRY_WRITES}", scratch);
    let (out, events) = Program::python(&warden, &script)
        .env("WARDEN_POLICY", &policy)
        .run();
    assert_eq!(
        lines(&out),
        [
            "cache ok",
            "payload denied",
            "read ok",
            "relative denied",
            "openat ok",
            "append denied",
            "fopen denied",
            "fopen-read ok",
            "devnull ok",
            "['cache', 'existing']",
        ]
    );
    let writes = of_kind(&events, "write");
    let paths: Vec<&str> = writes.iter().map(|e| e.body()[0]).collect();
    let s = scratch.display();
    assert_eq!(
        paths,
        [
            format!("{s}/payload"),
            format!("{s}/escaped"),
            format!("{s}/existing"),
            format!("{s}/fopened"),
        ],
        "{events:#?}"
    );
    assert!(writes.iter().all(|e| e.verdict() == "deny"), "{writes:#?}");
    assert_eq!(
        std::fs::read_to_string(scratch.join("existing")).unwrap(),
        "old"
    );
}

#[test]
fn observe_mode_reports_writes_outside_the_write_list_and_lets_them_happen() {
    let warden = Warden::bind();
    let (_dir, policy, scratch) = write_policy_and_scratch("observe");
    let script = format!("import sys; sys.argv[1:] = [{:?}]\n{TRY_WRITES}", scratch);
    let (out, events) = Program::python(&warden, &script)
        .env("WARDEN_POLICY", &policy)
        .run();
    let printed = lines(&out);
    assert!(
        printed[..9].iter().all(|l| l.ends_with(" ok")),
        "{printed:?}"
    );
    assert_eq!(
        printed[9],
        "['cache', 'escaped', 'existing', 'fopened', 'payload']"
    );
    let writes = of_kind(&events, "write");
    assert_eq!(writes.len(), 4, "{events:#?}");
    assert!(
        writes.iter().all(|e| e.verdict() == "observe"),
        "{writes:#?}"
    );
    assert_eq!(writes[0].body(), [format!("{}/payload", scratch.display())]);
}

#[test]
fn without_a_write_list_writes_are_neither_judged_nor_reported() {
    let warden = Warden::bind();
    let dir = tempfile::tempdir().unwrap();
    let scratch = dir.path().join("scratch");
    std::fs::create_dir_all(scratch.join("cache")).unwrap();
    std::fs::write(scratch.join("existing"), "old").unwrap();
    let policy = policy_file(&dir, r#"{"mode":"enforce","egress":[]}"#);
    let script = format!("import sys; sys.argv[1:] = [{:?}]\n{TRY_WRITES}", scratch);
    let (out, events) = Program::python(&warden, &script)
        .env("WARDEN_POLICY", &policy)
        .run();
    assert!(
        lines(&out)[..9].iter().all(|l| l.ends_with(" ok")),
        "{out:?}"
    );
    assert!(of_kind(&events, "write").is_empty(), "{events:#?}");
}

/// Writes Warden's lockdown page for `warden`'s socket into /tmp, knowing the program `true`;
/// `locked` sets its flag. Removed when dropped.
struct LockdownPage(PathBuf);

impl LockdownPage {
    fn write(warden: &Warden, locked: bool) -> LockdownPage {
        use std::os::unix::ffi::OsStrExt;
        let name = warden_policy::lockdown::file_name(warden.name.as_bytes());
        let path = PathBuf::from("/tmp").join(std::ffi::OsStr::from_bytes(&name));
        let mut page = warden_policy::lockdown::empty_page();
        let mut known = warden_policy::lockdown::Known::default();
        known.add_program("/usr/bin/true");
        let table = known.table_bytes();
        let at = warden_policy::lockdown::Known::table_offset();
        page[at..at + table.len()].copy_from_slice(&table);
        if locked {
            page[warden_policy::lockdown::FLAG_OFFSET..warden_policy::lockdown::FLAG_OFFSET + 8]
                .copy_from_slice(&warden_policy::lockdown::LOCKED.to_le_bytes());
        }
        std::fs::write(&path, page).unwrap();
        LockdownPage(path)
    }
}

impl Drop for LockdownPage {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Runs `/bin/true` (known to the page) and `/usr/bin/env` (not), and connects out.
const TRY_KNOWN_AND_UNKNOWN: &str = r#"
import socket, subprocess
for argv in (["/bin/true"], ["/usr/bin/env", "true"]):
    try:
        subprocess.run(argv, check=True)
        print(argv[0], "ran")
    except PermissionError:
        print(argv[0], "denied")
try:
    socket.create_connection(("203.0.113.7", 9), timeout=5).close()
    print("connected")
except ConnectionRefusedError:
    print("connect refused")
"#;

#[test]
fn a_lockdown_refuses_unknown_egress_and_exec_without_any_policy() {
    let warden = Warden::bind();
    let _page = LockdownPage::write(&warden, true);
    let (out, events) = Program::python(&warden, TRY_KNOWN_AND_UNKNOWN).run();
    assert_eq!(
        lines(&out),
        ["/bin/true ran", "/usr/bin/env denied", "connect refused"]
    );
    let connect = of_kind(&events, "connect");
    assert_eq!(connect.len(), 1, "{events:#?}");
    assert_eq!(connect[0].verdict(), "deny");
    let denied: Vec<_> = of_kind(&events, "exec")
        .into_iter()
        .filter(|e| e.verdict() == "deny")
        .map(|e| e.body()[1].to_string())
        .collect();
    assert_eq!(denied, ["/usr/bin/env"], "{events:#?}");
}

#[test]
fn a_lockdown_page_whose_flag_is_not_set_changes_nothing() {
    let warden = Warden::bind();
    let _page = LockdownPage::write(&warden, false);
    // Only the exec part: an allowed connect to a documentation address would wait for its
    // timeout.
    let script = TRY_KNOWN_AND_UNKNOWN
        .split("try:\n    socket")
        .next()
        .unwrap();
    let (out, events) = Program::python(&warden, script).run();
    assert_eq!(lines(&out), ["/bin/true ran", "/usr/bin/env ran"]);
    assert!(
        of_kind(&events, "exec")
            .iter()
            .all(|e| e.verdict() == "allow"),
        "{events:#?}"
    );
}

#[test]
fn enforce_mode_refuses_to_send_the_secret_key_even_to_an_allowed_destination() {
    let warden = Warden::bind();
    let dir = tempfile::tempdir().unwrap();
    let policy = policy_file(&dir, r#"{"mode":"enforce","egress":[]}"#);
    let script = r#"
import os, socket
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
with socket.create_connection(listener.getsockname()) as s:
    s.sendall(b"ordinary")
    try:
        s.sendall(("k=" + os.environ["AWS_SECRET_ACCESS_KEY"]).encode())
        print("sent")
    except PermissionError:
        print("refused")
"#;
    let (out, events) = Program::python(&warden, script)
        .env("WARDEN_POLICY", &policy)
        .env(
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
        )
        .run();
    // Loopback is always reachable: only the key is refused.
    assert_eq!(lines(&out), ["refused"]);
    let secrets = of_kind(&events, "secret");
    assert_eq!(secrets.len(), 1, "{events:#?}");
    assert_eq!(secrets[0].verdict(), "deny");
}
