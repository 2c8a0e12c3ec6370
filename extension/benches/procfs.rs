//! The counter snapshot taken at each INVOKE: on this machine's /proc (every process of
//! the host, so far more than a Lambda sandbox holds) and on a fixture tree the size of a
//! warm sandbox.

mod common;

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use warden::sources::procfs::ProcReader;
use warden::sources::scratch::ScratchProbe;

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

criterion_group! {
    name = benches;
    config = common::quick();
    targets = snapshot
}
criterion_main!(benches);
