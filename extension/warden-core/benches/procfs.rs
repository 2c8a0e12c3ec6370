//! The counter snapshot taken at each INVOKE: on this machine's /proc (every process of
//! the host, so far more than a Lambda sandbox holds) and on a fixture tree the size of a
//! warm sandbox.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test and bench code: fail loudly

mod common;

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use warden_core::sources::procfs::own_traffic::{note_connect, OwnTraffic};
use warden_core::sources::procfs::ProcReader;
use warden_core::sources::scratch::ScratchProbe;

fn snapshot(c: &mut Criterion) {
    let mut g = c.benchmark_group("procfs_snapshot");
    // /dev/shm is its own filesystem, as /tmp is on Lambda: measured with one statvfs.
    let scratch = ScratchProbe::new(Path::new("/dev/shm"));
    let mut reader = ProcReader::new(Path::new("/proc"), std::process::id());
    g.bench_function("real_proc", |b| {
        b.iter(|| black_box(reader.snapshot(&scratch)))
    });

    let tree = common::FakeProc::new("snapshot", 3);
    let scratch = ScratchProbe::new(&tree.root.join("tmp"));
    let mut reader = ProcReader::new(&tree.root, common::SELF_PID);
    g.bench_function("fixture_tree_4_processes", |b| {
        b.iter(|| black_box(reader.snapshot(&scratch)))
    });
    g.finish();
}

/// What the own-traffic reading adds to a snapshot when Warden sends to AWS: nothing while
/// it holds no connection, one listing of its fds while it holds a kept-alive one.
fn own_traffic(c: &mut Criterion) {
    let mut g = c.benchmark_group("own_traffic_read");
    let mut own = OwnTraffic::new(None);
    own.read();
    g.bench_function("no_connection_held", |b| b.iter(|| black_box(own.read())));

    // A connection to this machine's non-loopback address stands in for the AWS endpoint.
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    probe.connect("192.0.2.1:9").unwrap();
    let listener = std::net::TcpListener::bind((probe.local_addr().unwrap().ip(), 0)).unwrap();
    note_connect(&[]);
    let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    let _server = listener.accept().unwrap();
    g.bench_function("one_connection_held", |b| b.iter(|| black_box(own.read())));
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = snapshot, own_traffic
}
criterion_main!(benches);
