//! Scoring one invocation with the shipped model (`layer/model/model.bin`): the bar is
//! 10 µs median. Inputs cycle through ordinary, warming-up and attack-like vectors so the
//! trees are walked down different paths.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test and bench code: fail loudly

use std::hint::black_box;
use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use warden_core::features::{idx, N};
use warden_core::model::scorer::Scorer;
use warden_core::model::ShippedModel;

fn inputs() -> Vec<([f32; N], [f32; N])> {
    let mut out = Vec::new();
    for k in 0..16u8 {
        let k = f32::from(k);
        let mut raw = [0f32; N];
        raw[idx::DURATION_MS] = 40.0 + 30.0 * k;
        raw[idx::CPU_MS] = 20.0 + 10.0 * k;
        raw[idx::CPU_SHARE] = 0.5;
        raw[idx::RSS_KB] = 30_000.0 + 1000.0 * k;
        raw[idx::MAX_MEMORY_MB] = 40.0;
        raw[idx::NET_TX] = 6.0 + k * 0.7;
        raw[idx::PRODUCED] = 5.0 + k * 0.5;
        raw[idx::LOG_LINES] = 1.0;
        let mut z = [0f32; N];
        if k > 3.0 {
            z[idx::NET_TX] = k - 6.0;
            z[idx::DURATION_MS] = 1.5 - k * 0.2;
        }
        if k > 12.0 {
            raw[idx::NEW_PROCESSES] = 2.0;
            raw[idx::SHELLS] = 1.0;
            raw[idx::TCP_OUTBOUND] = 1.0;
        }
        out.push((raw, z));
    }
    out
}

fn bench(c: &mut Criterion) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../layer/model/model.bin");
    let model = match ShippedModel::load(&path) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("skipping the model bench: {e} ({})", path.display());
            return;
        }
    };
    let rows = inputs();
    let mut i = 0;
    c.bench_function("model_score", |b| {
        b.iter(|| {
            let (raw, z) = &rows[i % rows.len()];
            i += 1;
            black_box(model.score(black_box(raw), black_box(z)))
        })
    });
    c.bench_function("model_load", |b| {
        b.iter(|| black_box(ShippedModel::load(&path).map(|m| m.nodes())))
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
