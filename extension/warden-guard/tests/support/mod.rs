//! What the guard's tests share: the built library, a stand-in for Warden's socket and ring,
//! and real Python programs run with the library preloaded.

// Test code: a failed step should stop the test with its message.
#![allow(clippy::unwrap_used, clippy::expect_used, dead_code, unreachable_pub)]

use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::Duration;

use warden_ring::{Reader, RingFile};

/// The library under test: `$WARDEN_GUARD_LIBRARY` (e.g. the layer's build), else the crate's
/// own `libwarden_guard.so`, built here first: cargo builds a `cdylib` for `cargo build`, not
/// for the integration tests of its crate, so without this the tests could run an old one.
pub fn library() -> PathBuf {
    static LIBRARY: OnceLock<PathBuf> = OnceLock::new();
    LIBRARY
        .get_or_init(|| match std::env::var_os("WARDEN_GUARD_LIBRARY") {
            Some(path) => PathBuf::from(path),
            None => build_library(),
        })
        .clone()
}

/// Builds the library with the cargo running these tests, into the same target directory and
/// profile (`<target>/<profile>/`, the parent of the `deps/` directory holding this binary).
fn build_library() -> PathBuf {
    build(&["--lib", "-p", "warden-guard"], "libwarden_guard.so")
}

/// The layer's exec wrapper, built like the library.
pub fn wrapper() -> PathBuf {
    static WRAPPER: OnceLock<PathBuf> = OnceLock::new();
    WRAPPER
        .get_or_init(|| {
            build(
                &["-p", "warden-wrapper", "--bin", "warden-wrapper"],
                "warden-wrapper",
            )
        })
        .clone()
}

fn build(what: &[&str], artifact: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary inside <target>/<profile>/deps");
    let target_dir = profile_dir.parent().expect("<target>/<profile>");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut build = Command::new(cargo);
    build
        .args(["build", "--quiet"])
        .args(what)
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"))
        .env("CARGO_TARGET_DIR", target_dir);
    if profile_dir
        .file_name()
        .is_some_and(|name| name == "release")
    {
        build.arg("--release");
    }
    let status = build.status().expect("running cargo build");
    assert!(status.success(), "cargo build {what:?} failed");
    let built = profile_dir.join(artifact);
    assert!(built.exists(), "{} was not built", built.display());
    built
}

/// The real Python interpreter (not a shim script, whose own execs would be reported too).
pub fn python() -> &'static Path {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON.get_or_init(|| {
        let out = Command::new("python3")
            .args([
                "-c",
                "import os, sys; print(os.path.realpath(sys.executable))",
            ])
            .output()
            .expect("python3 on PATH");
        assert!(out.status.success(), "python3 failed: {out:?}");
        PathBuf::from(String::from_utf8(out.stdout).unwrap().trim())
    })
}

/// One event, split into fields.
#[derive(Debug, Clone)]
pub struct Event {
    pub fields: Vec<String>,
    /// Read from the ring rather than the socket.
    pub by_ring: bool,
}

impl Event {
    pub fn kind(&self) -> &str {
        &self.fields[1]
    }
    pub fn pid(&self) -> u32 {
        self.fields[2].parse().unwrap()
    }
    pub fn verdict(&self) -> &str {
        &self.fields[6]
    }
    /// The kind's own fields, after the header.
    pub fn body(&self) -> Vec<&str> {
        self.fields[7..].iter().map(String::as_str).collect()
    }
}

/// Warden's receiving socket, bound under a name no other test uses, and its event ring, both
/// read all the time by threads of their own (a Unix datagram socket queues only a few
/// datagrams, `net.unix.max_dgram_qlen`, before senders get EAGAIN).
pub struct Warden {
    pub name: String,
    received: Option<Arc<Mutex<Vec<Event>>>>,
    ring_path: Option<PathBuf>,
}

impl Drop for Warden {
    fn drop(&mut self) {
        if let Some(path) = &self.ring_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Where the guard looks for the ring of the socket `name`.
pub fn ring_path(name: &str) -> PathBuf {
    Path::new(warden_policy::lockdown::DIR)
        .join(String::from_utf8(warden_ring::file_name(name.as_bytes())).unwrap())
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

fn unique_name() -> String {
    format!(
        "warden-guard-test-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// How long the socket must stay quiet before the events are taken as complete.
const QUIET: Duration = Duration::from_millis(150);

impl Warden {
    /// A socket and a ring, as Warden sets up.
    pub fn bind() -> Warden {
        let mut warden = Warden::socket_only();
        let path = ring_path(&warden.name);
        let ring = RingFile::create(&path).expect("creating the ring");
        let sink = Arc::downgrade(warden.received.as_ref().unwrap());
        std::thread::spawn(move || read_ring(ring, sink));
        warden.ring_path = Some(path);
        warden
    }

    /// A socket and no ring (an older Warden, or a ring that could not be created): guards
    /// send every event as a datagram.
    pub fn socket_only() -> Warden {
        let name = unique_name();
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&addr).expect("binding the abstract socket");
        let received = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::downgrade(&received);
        std::thread::spawn(move || receive(socket, sink));
        Warden {
            name,
            received: Some(received),
            ring_path: None,
        }
    }

    /// A name nobody listens on: Warden absent.
    pub fn absent() -> Warden {
        Warden {
            name: unique_name(),
            received: None,
            ring_path: None,
        }
    }

    /// Events that came through the ring so far (the rest came as datagrams).
    pub fn ring_events(&self) -> usize {
        self.received.as_ref().map_or(0, |r| {
            r.lock().unwrap().iter().filter(|e| e.by_ring).count()
        })
    }

    /// Every datagram received, once the socket has been quiet for a moment (the program has
    /// exited, so all it sent is queued or read).
    pub fn events(&self) -> Vec<Event> {
        let received = self.received.as_ref().expect("a bound Warden");
        let mut seen = usize::MAX;
        loop {
            let count = received.lock().unwrap().len();
            if count == seen {
                return received.lock().unwrap().clone();
            }
            seen = count;
            std::thread::sleep(QUIET);
        }
    }
}

/// Reads datagrams into `sink` until the Warden that owns it is dropped.
fn receive(socket: UnixDatagram, sink: Weak<Mutex<Vec<Event>>>) {
    socket.set_read_timeout(Some(QUIET / 3)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        let Some(sink) = sink.upgrade() else {
            return;
        };
        let Ok(n) = socket.recv(&mut buf) else {
            continue;
        };
        assert!(n <= 1024, "datagram of {n} bytes");
        sink.lock().unwrap().push(event(&buf[..n], false));
    }
}

/// Reads the ring into `sink` every few milliseconds, as Warden does, until the Warden that
/// owns it is dropped.
fn read_ring(ring: RingFile, sink: Weak<Mutex<Vec<Event>>>) {
    let mut reader = Reader::new(ring.ring());
    let started = std::time::Instant::now();
    loop {
        let Some(sink) = sink.upgrade() else {
            return;
        };
        let now_ms = started.elapsed().as_millis() as u64;
        let drained = reader.drain(ring.ring(), now_ms, |bytes| {
            sink.lock().unwrap().push(event(bytes, true));
        });
        assert_eq!(drained.resynced, 0, "the ring's indices went wrong");
        drop(sink);
        std::thread::sleep(Duration::from_millis(4));
    }
}

fn event(bytes: &[u8], by_ring: bool) -> Event {
    let text = std::str::from_utf8(bytes).expect("UTF-8 event");
    assert!(!text.ends_with('\n'), "trailing newline in {text:?}");
    let fields: Vec<String> = text.split('\t').map(String::from).collect();
    assert_eq!(fields[0], "1", "format version of {text:?}");
    assert!(fields.len() >= 7, "header of {text:?}");
    Event { fields, by_ring }
}

/// A Python program run with the guard preloaded and reporting to `warden`.
pub struct Program<'a> {
    warden: &'a Warden,
    command: Command,
}

impl<'a> Program<'a> {
    pub fn python(warden: &'a Warden, script: &str) -> Program<'a> {
        let mut command = Command::new(python());
        command.arg("-c").arg(script);
        command
            .env("LD_PRELOAD", library())
            .env("WARDEN_GUARD_SOCKET", &warden.name)
            .env_remove("WARDEN_POLICY")
            .env_remove("WARDEN_GUARD")
            .env_remove("AWS_LAMBDA_RUNTIME_API");
        Program { warden, command }
    }

    /// A Node.js program (`node -e`), guarded the same way.
    pub fn node(warden: &'a Warden, script: &str) -> Program<'a> {
        let mut program = Program::python(warden, "");
        let mut command = Command::new("node");
        command.arg("-e").arg(script);
        for (key, value) in program.command.get_envs() {
            match value {
                Some(value) => command.env(key, value),
                None => command.env_remove(key),
            };
        }
        program.command = command;
        program
    }

    pub fn env(mut self, key: &str, value: impl AsRef<std::ffi::OsStr>) -> Program<'a> {
        self.command.env(key, value);
        self
    }

    pub fn env_remove(mut self, key: &str) -> Program<'a> {
        self.command.env_remove(key);
        self
    }

    /// An argument after the script (`sys.argv[1]` onwards).
    pub fn arg(mut self, value: impl AsRef<std::ffi::OsStr>) -> Program<'a> {
        self.command.arg(value);
        self
    }

    pub fn without_guard(mut self) -> Program<'a> {
        self.command.env_remove("LD_PRELOAD");
        self
    }

    /// Runs it; returns its output (checked to have succeeded) and what Warden received.
    pub fn run(mut self) -> (Output, Vec<Event>) {
        let out = self.command.output().expect("running the program");
        assert!(
            out.status.success(),
            "program failed: {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let events = if self.warden.received.is_some() {
            self.warden.events()
        } else {
            Vec::new()
        };
        (out, events)
    }
}

/// The program's stdout lines.
pub fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect()
}

/// The events of one kind.
pub fn of_kind<'e>(events: &'e [Event], kind: &str) -> Vec<&'e Event> {
    events.iter().filter(|e| e.kind() == kind).collect()
}
