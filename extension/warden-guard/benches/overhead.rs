//! What the guard costs the calls it hooks, side by side in one run: the median time of a
//! `connect` to a closed local port, and of starting `/bin/true` and waiting for it (with the
//! child unguarded, so that only the hook is measured, and guarded, which adds loading the
//! library into it). Three ways: without the guard; with it, reporting into Warden's ring
//! (what Warden sets up); and with it but no ring, reporting by datagram (an older Warden).
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
const CONNECTS: usize = 10_000;
const SPAWNS: usize = 200;
const ROUNDS: usize = 5;

fn main() {
    if std::env::var_os(ROLE).is_some() {
        measure();
        return;
    }
    let library = support::library();
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
        "median ns", "plain", "ring", "ratio", "datagram", "ratio"
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
    command.env(ROLE, "1").env("WARDEN_GUARD_SOCKET", socket);
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
    println!("connect to a closed local port {connect}");
    let spawn = median(SPAWNS, || {
        let status = Command::new("/bin/true")
            .env_remove("LD_PRELOAD")
            .status()
            .unwrap();
        assert!(status.success());
    });
    println!("spawn /bin/true (child unguarded), wait {spawn}");
    let spawn = median(SPAWNS, || {
        assert!(Command::new("/bin/true").status().unwrap().success());
    });
    println!("spawn /bin/true (child guarded), wait {spawn}");
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
