//! Telemetry batch parsing, in records per second: a realistic batch (platform events,
//! plain-text and JSON function log lines, an extension line) from the test fixtures.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test and bench code: fail loudly

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use std::hint::black_box;
use warden_core::sources::telemetry::parse_batch;

fn parsing(c: &mut Criterion) {
    let body = common::fixture("telemetry/batch.json");
    let mut probe = Vec::new();
    let records = parse_batch(&body, &mut probe).events;
    let mut g = c.benchmark_group("telemetry");
    g.throughput(Throughput::Elements(records));
    g.bench_function("parse_batch", |b| {
        let mut out = Vec::with_capacity(records as usize);
        b.iter(|| {
            out.clear();
            black_box(parse_batch(black_box(&body), &mut out))
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = parsing
}
criterion_main!(benches);
