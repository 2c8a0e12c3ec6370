//! What the guard costs the calls it hooks, side by side in one run: the median time of a
//! `connect` to a closed local port, of an exec the kernel refuses (the hook's whole work, no
//! new program), and of starting `/bin/true` and waiting for it (with the
//! child unguarded, so that only the hook is measured, and guarded, which adds loading the
//! library into it). Three ways: without the guard; with it, reporting into Warden's ring
//! (what Warden sets up); and with it but no ring, reporting by datagram (an older Warden).
//! Then what a `send` or `write` pays for the search for the role's secret key: a 1 KiB
//! datagram, a 64-byte log line and a 256 KiB file write (which asks whether its descriptor is
//! a socket first), and a 1 KiB datagram that carries the key (reported each time).
//! Then a runtime's start (`python3 -c pass`), plainly and through the layer's exec wrapper,
//! as Lambda starts it with the guard on. Last, the memory the measuring process holds at the
//! end, which the library adds to.
//!
//!     cargo bench -p warden-guard
//!
//! The same binary measures: it runs itself as a child each way and prints the medians and
//! their ratios to the unguarded run. A thread here reads the ring and the socket as Warden
//! would.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{self, UnixDatagram};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use warden_ring::{Reader, RingFile};

const ROLE: &str = "WARDEN_GUARD_BENCH_CHILD";
/// The layer's exec wrapper, beside a copy of the library as the layer lays them out.
const WRAPPER: &str = "WARDEN_GUARD_BENCH_WRAPPER";
const STARTS: usize = 100;
const CONNECTS: usize = 10_000;
const SPAWNS: usize = 200;
const ROUNDS: usize = 5;
/// In every run's environment, as Lambda puts the role's key there.
const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";

fn main() {
    if std::env::var_os(ROLE).is_some() {
        measure();
        return;
    }
    let library = support::library();
    let layer = tempfile::tempdir().unwrap();
    let wrapper = layer.path().join("wrapper");
    std::fs::copy(support::wrapper(), &wrapper).unwrap();
    std::fs::create_dir(layer.path().join("lib")).unwrap();
    std::fs::copy(&library, layer.path().join("lib/libwarden_guard.so")).unwrap();
    std::env::set_var(WRAPPER, &wrapper);
    let name = format!("warden-guard-bench-{}", std::process::id());
    let addr = net::SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
    let warden = UnixDatagram::bind_addr(&addr).unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        while warden.recv(&mut buf).is_ok() {}
    });
    let ring_path = Path::new(warden_policy::lockdown::DIR)
        .join(String::from_utf8(warden_ring::file_name(name.as_bytes())).unwrap());
    // Rounds in turn, so that a machine busy with something else for a while weighs on
    // every way alike; each figure is the median of the rounds' medians.
    // The ring is read all along, as Warden would; for the datagram runs it is moved out of
    // the guard's sight.
    let hidden = ring_path.with_extension("hidden");
    let reading = read_ring(RingFile::create(&ring_path).unwrap());
    let mut rounds = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        rounds.0.push(run_child(None, &name));
        rounds.1.push(run_child(Some(&library), &name));
        std::fs::rename(&ring_path, &hidden).unwrap();
        rounds.2.push(run_child(Some(&library), &name));
        std::fs::rename(&hidden, &ring_path).unwrap();
    }
    drop(reading);
    std::fs::remove_file(&ring_path).unwrap();
    let (plain, with_ring, with_datagrams) =
        (middle(&rounds.0), middle(&rounds.1), middle(&rounds.2));
    println!(
        "{:<44} {:>10} {:>10} {:>6} {:>10} {:>6}",
        "median of the rounds' medians", "plain", "ring", "ratio", "datagram", "ratio"
    );
    for (((what, without), (_, ring)), (_, datagram)) in
        plain.iter().zip(&with_ring).zip(&with_datagrams)
    {
        println!(
            "{what:<44} {without:>10} {ring:>10} {:>6.2} {datagram:>10} {:>6.2}",
            *ring as f64 / *without as f64,
            *datagram as f64 / *without as f64
        );
    }
}

/// Per measurement, the median over rounds.
fn middle(rounds: &[Vec<(String, u64)>]) -> Vec<(String, u64)> {
    let first = &rounds[0];
    (0..first.len())
        .map(|i| {
            let mut values: Vec<u64> = rounds.iter().map(|r| r[i].1).collect();
            values.sort_unstable();
            (first[i].0.clone(), values[values.len() / 2])
        })
        .collect()
}

/// Reads the ring every 4 ms, as Warden does, until dropped.
fn read_ring(ring: RingFile) -> impl Drop {
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    let thread = std::thread::spawn(move || {
        let mut reader = Reader::new(ring.ring());
        let started = Instant::now();
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            reader.drain(ring.ring(), started.elapsed().as_millis() as u64, |_| {});
            std::thread::sleep(Duration::from_millis(4));
        }
    });
    StopOnDrop(stop, Some(thread))
}

struct StopOnDrop(
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    Option<std::thread::JoinHandle<()>>,
);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.1.take() {
            thread.join().unwrap();
        }
    }
}

fn run_child(library: Option<&PathBuf>, socket: &str) -> Vec<(String, u64)> {
    let mut command = Command::new(std::env::current_exe().unwrap());
    command
        .env(ROLE, "1")
        .env("WARDEN_GUARD_SOCKET", socket)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    command.env_remove("WARDEN_POLICY").env_remove("LD_PRELOAD");
    if let Some(library) = library {
        command.env("LD_PRELOAD", library);
    }
    let out = command.output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|line| line.rsplit_once(' '))
        .map(|(what, ns)| (what.to_string(), ns.parse().unwrap()))
        .collect()
}

/// Prints `<what> <median ns>` lines.
fn measure() {
    let closed: SocketAddr = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let connect = median(CONNECTS, || {
        assert!(TcpStream::connect(closed).is_err());
    });
    println!("connect to a closed local port, ns {connect}");
    // The exec hook alone: a script whose interpreter does not exist is reported by the guard
    // like any exec, then refused by the kernel, so this process goes on.
    let script = std::env::temp_dir().join(format!("warden-bench-exec-{}", std::process::id()));
    std::fs::write(&script, "#!/nonexistent/interpreter\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let exec = median(CONNECTS, || {
        let error = std::os::unix::process::CommandExt::exec(&mut Command::new(&script));
        assert_eq!(error.kind(), std::io::ErrorKind::NotFound);
    });
    std::fs::remove_file(&script).unwrap();
    println!("exec refused by the kernel, ns {exec}");
    let spawn = median(SPAWNS, || {
        let status = Command::new("/bin/true")
            .env_remove("LD_PRELOAD")
            .status()
            .unwrap();
        assert!(status.success());
    });
    println!("spawn /bin/true (child unguarded), ns {spawn}");
    let spawn = median(SPAWNS, || {
        assert!(Command::new("/bin/true").status().unwrap().success());
    });
    println!("spawn /bin/true (child guarded), ns {spawn}");
    measure_payload_search();
    // A runtime's start as Lambda makes it: plainly, or (guarded runs) through the layer's
    // exec wrapper, which loads the library into it.
    let guarded = std::env::var_os("LD_PRELOAD").is_some();
    let wrapper = std::env::var_os(WRAPPER).unwrap();
    let python = support::python();
    let start = median(STARTS, || {
        let mut runtime = if guarded {
            let mut c = Command::new(&wrapper);
            c.arg(python);
            c
        } else {
            Command::new(python)
        };
        let status = runtime
            .args(["-c", "pass"])
            .env_remove("LD_PRELOAD")
            .status()
            .unwrap();
        assert!(status.success());
    });
    println!("start python3 -c pass (guarded: wrapper), ns {start}");
    // What the process holds after all that: resident, and its proportional share of what
    // it shares (the library's pages, the ring) with the other guarded processes.
    let rollup = std::fs::read_to_string("/proc/self/smaps_rollup").unwrap();
    for (key, label) in [
        ("Rss:", "resident memory, KiB"),
        ("Pss:", "proportional memory, KiB"),
    ] {
        let kib = rollup
            .lines()
            .find_map(|line| line.strip_prefix(key))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap();
        println!("{label} {kib}");
    }
}

/// Sends and writes, each searched for the secret key by the guard.
fn measure_payload_search() {
    use std::io::Write as _;
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.connect(receiver.local_addr().unwrap()).unwrap();
    // Datagrams the receiver never reads are dropped by the kernel: sends never wait.
    let datagram = vec![b'x'; 1024];
    let send = median(CONNECTS, || {
        sender.send(&datagram).unwrap();
    });
    println!("send 1 KiB over UDP, ns {send}");
    let mut null = std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/null")
        .unwrap();
    let line = [b'x'; 64];
    let write = median(CONNECTS, || {
        null.write_all(&line).unwrap();
    });
    println!("write 64 B to a file, ns {write}");
    let block = vec![b'x'; 256 * 1024];
    let write = median(SPAWNS, || {
        null.write_all(&block).unwrap();
    });
    println!("write 256 KiB to a file, ns {write}");
    let mut carrying = format!("{{\"AWS_SECRET_ACCESS_KEY\": \"{SECRET_KEY}\"}}").into_bytes();
    carrying.resize(1024, b' ');
    let send = median(SPAWNS, || {
        sender.send(&carrying).unwrap();
    });
    println!("send 1 KiB carrying the key over UDP, ns {send}");
}

fn median(runs: usize, mut call: impl FnMut()) -> u64 {
    let mut times: Vec<u64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            call();
            start.elapsed().as_nanos() as u64
        })
        .collect();
    times.sort_unstable();
    times[runs / 2]
}
