//! The events real programs cause: Python with the built library preloaded, reporting to a
//! socket bound and a ring created here as Warden would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use support::{lines, of_kind, python, Program, Warden};

/// The only event of `kind` whose body satisfies `matches`.
fn one<'e>(
    events: &'e [support::Event],
    kind: &str,
    matches: impl Fn(&[&str]) -> bool,
) -> &'e support::Event {
    let found: Vec<&support::Event> = of_kind(events, kind)
        .into_iter()
        .filter(|e| matches(&e.body()))
        .collect();
    assert_eq!(found.len(), 1, "one matching {kind} event in {events:#?}");
    found[0]
}

#[test]
fn a_process_says_hello_with_its_executable_and_policy() {
    let warden = Warden::bind();
    let (out, events) = Program::python(&warden, "import os; print(os.getpid())").run();
    let pid: u32 = lines(&out)[0].parse().unwrap();
    let first = &events[0];
    assert_eq!(first.kind(), "hello", "{events:#?}");
    assert_eq!(first.pid(), pid);
    assert_eq!(first.fields[3], pid.to_string(), "tid of the main thread");
    assert_eq!(first.fields[5], "0", "nothing dropped");
    assert_eq!(first.verdict(), "allow");
    let body = first.body();
    assert_eq!(body[..2], ["none", python().to_str().unwrap()]);
    // Its arguments, as the process was started.
    assert!(
        body[2].ends_with("-c import os; print(os.getpid())"),
        "{body:?}"
    );
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let sent_ms: u64 = first.fields[4].parse().unwrap();
    assert!(
        now_ms.abs_diff(sent_ms) < 60_000,
        "unix_ms {sent_ms}, now {now_ms}"
    );
}

#[test]
fn a_tcp_connect_to_a_local_listener_is_reported() {
    let warden = Warden::bind();
    let script = r#"
import os, socket
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
port = listener.getsockname()[1]
socket.create_connection(("127.0.0.1", port)).close()
print(os.getpid(), port)
"#;
    let (out, events) = Program::python(&warden, script).run();
    let printed = lines(&out);
    let (pid, port) = printed[0].split_once(' ').unwrap();
    let addr = format!("127.0.0.1:{port}");
    let connect = one(&events, "connect", |b| b[1] == addr);
    assert_eq!(connect.body(), ["tcp", addr.as_str()]);
    assert_eq!(connect.pid().to_string(), pid);
    assert_eq!(connect.verdict(), "allow");
}

/// A connect to a local listener, then a stop signal to a child: what each reports, and how.
const CONNECT_THEN_SIGNAL: &str = r#"
import os, signal, socket, subprocess
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
socket.create_connection(listener.getsockname()).close()
child = subprocess.Popen(["/bin/sleep", "5"])
os.kill(child.pid, signal.SIGSTOP)
child.kill()
"#;

#[test]
fn calls_go_through_the_ring_and_what_warden_must_trust_the_sender_of_as_datagrams() {
    let warden = Warden::bind();
    let (_, events) = Program::python(&warden, CONNECT_THEN_SIGNAL).run();
    let by_ring =
        |kind: &str| -> Vec<bool> { of_kind(&events, kind).iter().map(|e| e.by_ring).collect() };
    assert_eq!(by_ring("connect"), [true], "{events:#?}");
    assert_eq!(by_ring("exec"), [true], "{events:#?}");
    // The kernel names a datagram's sender: a hello or a signal cannot be forged by another
    // process of the function.
    assert!(by_ring("hello").iter().all(|r| !r), "{events:#?}");
    assert!(!by_ring("kill").is_empty() && by_ring("kill").iter().all(|r| !r));
    assert_eq!(warden.ring_events(), 2);
}

#[test]
fn without_a_ring_every_event_comes_as_a_datagram() {
    let warden = Warden::socket_only();
    let (_, events) = Program::python(&warden, CONNECT_THEN_SIGNAL).run();
    for kind in ["hello", "connect", "exec", "kill"] {
        assert!(!of_kind(&events, kind).is_empty(), "{kind} in {events:#?}");
    }
    assert_eq!(warden.ring_events(), 0);
}

#[test]
fn a_udp_sendto_without_connect_names_the_dns_query() {
    let warden = Warden::bind();
    // A real DNS query (id, RD flag, one question: A IN) to port 53 of loopback, nobody there.
    let script = r#"
import socket, struct
name = "warden-test.example.org"
query = struct.pack(">HHHHHH", 0x1234, 0x0100, 1, 0, 0, 0)
for label in name.split("."):
    query += bytes([len(label)]) + label.encode()
query += b"\x00" + struct.pack(">HH", 1, 1)
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.sendto(query, ("127.0.0.1", 53))
udp.sendmsg([query[:5], query[5:9], query[9:]], [], 0, ("127.0.0.2", 53))
udp6 = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
udp6.sendto(b"not dns", ("::1", 5353))
print(len(query))
"#;
    let (out, events) = Program::python(&warden, script).run();
    let length = &lines(&out)[0];
    let send = one(&events, "send", |b| b[1] == "127.0.0.1:53");
    assert_eq!(
        send.body(),
        [
            "udp",
            "127.0.0.1:53",
            length.as_str(),
            "warden-test.example.org"
        ]
    );
    // sendmsg with the query in three buffers.
    let pieces = one(&events, "send", |b| b[1] == "127.0.0.2:53");
    assert_eq!(
        pieces.body(),
        [
            "udp",
            "127.0.0.2:53",
            length.as_str(),
            "warden-test.example.org"
        ]
    );
    let other = one(&events, "send", |b| b[1] == "[::1]:5353");
    assert_eq!(other.body(), ["udp", "[::1]:5353", "7", "-"]);
}

#[test]
fn subprocess_and_posix_spawn_execs_are_reported_and_the_child_says_hello() {
    let warden = Warden::bind();
    let script = r#"
import os, subprocess
child = subprocess.Popen(["/bin/true", "--flag", "a b"])
child.wait()
print(child.pid)
spawned = os.posix_spawn("/bin/true", ["true", "spawned"], dict(os.environ))
os.waitpid(spawned, 0)
print(spawned)
searched = os.posix_spawnp("true", ["true", "searched"], dict(os.environ))
os.waitpid(searched, 0)
import shutil
print(shutil.which("true"))
"#;
    let (out, events) = Program::python(&warden, script).run();
    let printed = lines(&out);
    let (child, spawned): (u32, u32) = (printed[0].parse().unwrap(), printed[1].parse().unwrap());
    let exec = one(&events, "exec", |b| b[3].ends_with("--flag a b"));
    assert_eq!(
        exec.body(),
        ["/bin/true", "/bin/true", "path", "/bin/true --flag a b"]
    );
    // The exec is reported from the child, between fork and exec.
    assert_eq!(exec.pid(), child);
    let spawn = one(&events, "exec", |b| b[3] == "true spawned");
    assert_eq!(
        spawn.body(),
        ["/bin/true", "/bin/true", "path", "true spawned"]
    );
    // posix_spawnp: the name as given, and the file PATH leads to.
    let on_path = printed[2].as_str();
    let searched = one(&events, "exec", |b| b[3] == "true searched");
    assert_eq!(searched.body(), ["true", on_path, "path", "true searched"]);
    // Both children load the guard too, and say so with the program they now run.
    let true_exe = std::fs::canonicalize("/bin/true").unwrap();
    for (pid, argv) in [(child, "/bin/true --flag a b"), (spawned, "true spawned")] {
        let hellos: Vec<Vec<&str>> = of_kind(&events, "hello")
            .into_iter()
            .filter(|e| e.pid() == pid)
            .map(|e| e.body())
            .collect();
        assert_eq!(
            hellos,
            [["none", true_exe.to_str().unwrap(), argv]],
            "{events:#?}"
        );
    }
}

#[test]
fn an_exec_from_a_memory_file_is_named_memfd() {
    let warden = Warden::bind();
    // The bytes of /bin/true in a memfd, run once with fexecve (in a child) and once through
    // /proc/self/fd/N (replacing the program).
    let script = r#"
import os, sys
fd = os.memfd_create("payload", 0)
with open("/bin/true", "rb") as f:
    os.write(fd, f.read())
print(fd, flush=True)
child = os.fork()
if child == 0:
    os.execve(fd, ["payload", "from-fd"], dict(os.environ))
os.waitpid(child, 0)
os.execve(f"/proc/self/fd/{fd}", ["payload", "from-path"], dict(os.environ))
"#;
    let (out, events) = Program::python(&warden, script).run();
    let fd = &lines(&out)[0];
    let by_fd = one(&events, "exec", |b| b[3] == "payload from-fd");
    let body = by_fd.body();
    assert_eq!(body[0], format!("fd:{fd}"));
    assert!(body[1].starts_with("/memfd:payload"), "{body:?}");
    assert_eq!(body[2], "memfd");
    let by_path = one(&events, "exec", |b| b[3] == "payload from-path");
    let body = by_path.body();
    assert_eq!(body[0], format!("/proc/self/fd/{fd}"));
    assert!(body[1].starts_with("/memfd:payload"), "{body:?}");
    assert_eq!(body[2], "memfd");
    // The program run from memory says hello with that name.
    assert!(
        of_kind(&events, "hello")
            .iter()
            .any(|h| h.body()[1].starts_with("/memfd:payload")),
        "{events:#?}"
    );
}

/// The dynamic loader of this machine.
fn loader() -> &'static str {
    let candidates = [
        "/lib64/ld-linux-x86-64.so.2",
        "/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2",
        "/lib/ld-linux-aarch64.so.1",
        "/lib/aarch64-linux-gnu/ld-linux-aarch64.so.1",
    ];
    candidates
        .into_iter()
        .find(|path| std::path::Path::new(path).exists())
        .expect("a glibc dynamic loader")
}

#[test]
fn an_exec_through_the_dynamic_loader_names_the_program_it_loads() {
    let warden = Warden::bind();
    let loader = loader();
    let script = format!(
        r#"
import subprocess
subprocess.run(["{loader}", "--inhibit-cache", "--argv0", "sshd", "/bin/true", "-x"], check=True)
"#
    );
    let (_out, events) = Program::python(&warden, &script).run();
    let exec = one(&events, "exec", |b| b[0] == loader);
    assert_eq!(
        exec.body(),
        [
            loader,
            "/bin/true",
            "loader",
            &format!("{loader} --inhibit-cache --argv0 sshd /bin/true -x")
        ]
    );
}

#[test]
fn a_stop_signal_to_another_process_is_reported_and_one_to_itself_is_not() {
    let warden = Warden::bind();
    let script = r#"
import ctypes, os, signal, subprocess
sleeper = subprocess.Popen(["sleep", "30"])
os.kill(sleeper.pid, signal.SIGSTOP)
os.kill(sleeper.pid, 0)
signal.signal(signal.SIGUSR1, lambda *_: None)
os.kill(os.getpid(), signal.SIGUSR1)
libc = ctypes.CDLL(None, use_errno=True)
assert libc.tgkill(sleeper.pid, sleeper.pid, signal.SIGCONT) == 0
os.kill(sleeper.pid, signal.SIGKILL)
sleeper.wait()
print(sleeper.pid, int(signal.SIGSTOP), int(signal.SIGCONT), int(signal.SIGKILL))
"#;
    let (out, events) = Program::python(&warden, script).run();
    let printed = lines(&out);
    let fields: Vec<&str> = printed[0].split(' ').collect();
    let (target, stop, cont, kill) = (fields[0], fields[1], fields[2], fields[3]);
    let kills: Vec<Vec<&str>> = of_kind(&events, "kill").iter().map(|e| e.body()).collect();
    // kill, tgkill (the thread group), kill; not the signal 0 probe, nor the one to itself.
    assert_eq!(
        kills,
        [[target, stop], [target, cont], [target, kill]],
        "{events:#?}"
    );
}

#[test]
fn opening_credentials_is_reported_and_other_files_are_not() {
    let warden = Warden::bind();
    let home = tempfile::tempdir().unwrap();
    std::fs::create_dir(home.path().join(".aws")).unwrap();
    let credentials = home.path().join(".aws/credentials");
    std::fs::write(&credentials, "[default]\naws_access_key_id = AKIAEXAMPLE\n").unwrap();
    let config = home.path().join(".aws/config");
    std::fs::write(&config, "[default]\nregion = eu-west-1\n").unwrap();
    let script = r#"
import ctypes, os
with open(os.path.expanduser("~/.aws/credentials")) as f:
    f.read()
with open("/etc/hostname") as f:
    f.read()
with open("/proc/self/environ", "rb") as f:
    f.read()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
stream = libc.fopen(os.path.expanduser("~/.aws/config").encode(), b"r")
assert stream
libc.fclose(ctypes.c_void_p(stream))
home = os.open(os.path.expanduser("~"), os.O_RDONLY)
os.close(os.open(".aws/credentials", os.O_RDONLY, dir_fd=home))
print("read")
"#;
    let (out, events) = Program::python(&warden, script)
        .env("HOME", home.path())
        .run();
    assert_eq!(lines(&out), ["read"]);
    let opens: Vec<Vec<&str>> = of_kind(&events, "open").iter().map(|e| e.body()).collect();
    // open64 (Python's open), fopen (C code), openat relative to a directory descriptor.
    assert_eq!(
        opens,
        [
            [credentials.to_str().unwrap()],
            ["/proc/self/environ"],
            [config.to_str().unwrap()],
            [".aws/credentials"]
        ],
        "{events:#?}"
    );
}

/// Shaped like a real secret access key.
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

#[test]
fn the_secret_key_sent_over_a_socket_is_reported_however_it_is_written_and_nowhere_else() {
    let warden = Warden::bind();
    let scratch = tempfile::tempdir().unwrap();
    let script = r#"
import base64, json, os, socket, sys, urllib.parse
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
port = listener.getsockname()[1]
key = os.environ["AWS_SECRET_ACCESS_KEY"]
def connection():
    return socket.create_connection(("127.0.0.1", port))
with connection() as s:  # send: the environment as JSON
    s.sendall(json.dumps(dict(os.environ)).encode())
with connection() as s:  # write: URL-encoded in a query string
    query = urllib.parse.urlencode({"k": key})
    os.write(s.fileno(), f"GET /p.gif?{query} HTTP/1.1\r\n\r\n".encode())
with connection() as s:  # sendmsg: base64, after a prefix in its own buffer
    s.sendmsg([b"data=", base64.b64encode(f"AWS_SECRET_ACCESS_KEY={key}".encode())])
with connection() as s:  # nothing secret
    s.sendall(b"an ordinary request body " * 100)
with open(os.path.join(sys.argv[1], "kept"), "w") as f:  # a file holds it, sends nothing
    f.write(key)
r, w = os.pipe()
os.write(w, key.encode())
print(port)
"#;
    let (out, events) = Program::python(&warden, script)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .arg(scratch.path())
        .run();
    let port = &lines(&out)[0];
    let secrets: Vec<Vec<&str>> = of_kind(&events, "secret")
        .iter()
        .map(|e| e.body())
        .collect();
    let dest = format!("127.0.0.1:{port}");
    assert_eq!(secrets.len(), 3, "{events:#?}");
    for (body, encoding) in secrets.iter().zip(["text", "text", "base64"]) {
        assert_eq!(body[..2], ["tcp", dest.as_str()]);
        assert_eq!(body[3], encoding, "{body:?}");
    }
    assert!(of_kind(&events, "secret")
        .iter()
        .all(|e| e.verdict() == "allow"));
}

#[test]
fn without_the_key_in_the_environment_nothing_is_searched_for() {
    let warden = Warden::bind();
    let script = r#"
import socket
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen()
with socket.create_connection(listener.getsockname()) as s:
    s.sendall(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
"#;
    let (_, events) = Program::python(&warden, script)
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .run();
    assert!(of_kind(&events, "secret").is_empty(), "{events:#?}");
}

#[test]
fn node_posting_its_environment_over_http_is_reported() {
    let warden = Warden::bind();
    let script = r#"
const http = require('http');
const server = http.createServer((req, res) => { req.resume(); req.on('end', () => res.end('ok')); });
server.listen(0, '127.0.0.1', () => {
  const creds = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith('AWS_')));
  const req = http.request({ host: '127.0.0.1', port: server.address().port, method: 'POST', path: '/c' },
    (res) => { res.resume(); res.on('end', () => { console.log(server.address().port); server.close(); }); });
  req.end(JSON.stringify(creds));
});
"#;
    let (out, events) = Program::node(&warden, script)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .run();
    let dest = format!("127.0.0.1:{}", lines(&out)[0]);
    let secrets = of_kind(&events, "secret");
    assert!(!secrets.is_empty(), "{events:#?}");
    assert!(secrets
        .iter()
        .all(|e| e.body()[1] == dest && e.body()[3] == "text"));
}
