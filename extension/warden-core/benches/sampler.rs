//! The sampler's pass when nothing happened (the common case): what it costs to run while
//! every invocation is in flight.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test and bench code: fail loudly

mod common;

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use warden_core::sources::procfs::ProcReader;
use warden_core::sources::sampler::{Exclusions, Sampler};

fn armed(root: &Path, self_pid: u32) -> Sampler {
    let mut reader = ProcReader::new(root, self_pid);
    let mut live = Vec::new();
    reader.list_pids(&mut live);
    let mut sampler = Sampler::new(root, self_pid, Exclusions::default());
    sampler.begin(&live, reader.last_pid(), &mut Vec::new());
    sampler
}

fn idle_tick(c: &mut Criterion) {
    let mut g = c.benchmark_group("sampler_idle_tick");
    let mut found = Vec::new();
    let mut sampler = armed(Path::new("/proc"), std::process::id());
    g.bench_function("real_proc", |b| {
        b.iter(|| {
            sampler.tick(&mut found);
            found.clear();
        })
    });
    let tree = common::FakeProc::new("sampler", 3);
    let mut sampler = armed(&tree.root, common::SELF_PID);
    g.bench_function("fixture_tree", |b| {
        b.iter(|| {
            sampler.tick(&mut found);
            black_box(found.len());
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = idle_tick
}
criterion_main!(benches);
