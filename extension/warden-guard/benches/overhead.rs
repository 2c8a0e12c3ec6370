//! What the guard costs the calls it hooks, side by side in one run: the median time of a
//! `connect` to a closed local port and of starting `/bin/true` and waiting for it, without
//! and with the library preloaded (reporting to a socket read here, as Warden would).
//!
//!     cargo bench -p warden-guard
//!
//! The same binary measures: it runs itself twice as a child, once plain and once with
//! `LD_PRELOAD`, and prints the medians and their ratio.

#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/mod.rs"]
mod support;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{self, UnixDatagram};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

const ROLE: &str = "WARDEN_GUARD_BENCH_CHILD";
const CONNECTS: usize = 20_000;
const SPAWNS: usize = 400;

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
    let plain = run_child(None, &name);
    let guarded = run_child(Some(&library), &name);
    println!(
        "{:<32} {:>12} {:>12} {:>8}",
        "median ns", "plain", "guard", "ratio"
    );
    for ((what, without), (_, with)) in plain.iter().zip(&guarded) {
        println!(
            "{what:<32} {without:>12} {with:>12} {:>8.2}",
            *with as f64 / *without as f64
        );
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
        assert!(Command::new("/bin/true").status().unwrap().success());
    });
    println!("spawn and wait for /bin/true {spawn}");
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
