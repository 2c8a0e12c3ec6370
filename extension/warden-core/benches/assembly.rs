//! Feature assembly: one invocation's record from its two counter snapshots, its telemetry
//! and one observation, then the record serialized as the stdout sink writes it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test and bench code: fail loudly

mod common;

use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, Criterion};
use std::hint::black_box;
use warden_core::assembler::{Assembler, AssemblerConfig};
use warden_core::health::Health;
use warden_core::schema::FeatureRecord;
use warden_core::schema::{Observation, TmpAction};
use warden_core::sinks::stdout::JsonLines;
use warden_core::sinks::RecordSink;
use warden_core::sources::procfs::CounterSnapshot;
use warden_core::sources::telemetry::{parse_batch, TelemetryEvent};

/// The telemetry of one invocation (start, logs, runtimeDone, report), with ids renamed.
fn one_invocation(id: &str) -> Vec<TelemetryEvent> {
    let body = common::fixture("telemetry/batch.json");
    let mut all = Vec::new();
    parse_batch(&body, &mut all);
    let first = match &all[1] {
        TelemetryEvent::Start { request_id } => request_id.clone(),
        other => panic!("fixture starts with platform.start, not {other:?}"),
    };
    let text = String::from_utf8(body).expect("UTF-8").replace(&first, id);
    let mut events = Vec::new();
    parse_batch(text.as_bytes(), &mut events);
    events.retain(|e| match e {
        TelemetryEvent::Start { request_id } => request_id == id,
        TelemetryEvent::RuntimeDone(r) => r.request_id == id,
        TelemetryEvent::Report(r) => r.request_id == id,
        TelemetryEvent::FunctionLog { .. } => true,
        _ => false,
    });
    events.truncate(8);
    events
}

fn snapshot(n: u64) -> CounterSnapshot {
    let mut s = CounterSnapshot {
        cpu_user_ticks: n * 12,
        cpu_system_ticks: n * 3,
        last_pid: Some(200 + n as u32),
        processes: 3,
        threads: 9,
        open_fds: 24,
        rss_kb: 60_000,
        rss_peak_kb: 64_000,
        own_cpu_us: n * 150,
        own_rss_kb: 4_000,
        pids: vec![1, 8, 12, 13],
        ..CounterSnapshot::default()
    };
    s.snmp.tcp_active_opens = n * 2;
    s.snmp.tcp_out_segs = n * 40;
    s.net.tx_bytes = n * 5_000;
    s.net.lo_tx_bytes = n * 9_000;
    s
}

fn assembler() -> Assembler {
    Assembler::new(
        AssemblerConfig {
            report_wait: Duration::from_secs(1),
            max_pending: 64,
            ticks_per_sec: 100,
            function_name: "orders".into(),
            function_version: "$LATEST".into(),
            tmp_dir: "/tmp".into(),
            proc_root: "/proc".into(),
        },
        Arc::new(Health::default()),
        snapshot(0),
        1_700_000_000_000,
    )
}

const ID: &str = "6513270e-269e-4d37-b2a7-4de452e6b438";

/// INVOKE, telemetry and an observation, closed by the next INVOKE: the record of `ID`.
fn assemble(a: &mut Assembler, events: &[TelemetryEvent], n: u64) -> Vec<FeatureRecord> {
    let now = Duration::from_millis(n * 100);
    a.invoke(ID, snapshot(n), 1_700_000_000_000 + n, now);
    a.observe(Observation::TmpFile {
        path: "/tmp/cache.json".into(),
        action: TmpAction::Created,
        size: Some(5_000),
    });
    for e in events {
        a.telemetry(e.clone(), now);
    }
    a.invoke("next", snapshot(n + 1), 1_700_000_000_100 + n, now);
    a.poll(now)
}

fn assembly(c: &mut Criterion) {
    let events = one_invocation(ID);
    let mut g = c.benchmark_group("assembly");
    g.bench_function("one_invocation_record", |b| {
        b.iter_batched(
            assembler,
            |mut a| black_box(assemble(&mut a, &events, 1)),
            criterion::BatchSize::SmallInput,
        )
    });
    let record = assemble(&mut assembler(), &events, 1).remove(0);
    let mut sink = JsonLines::new(std::io::sink());
    g.bench_function("record_to_json_line", |b| {
        b.iter(|| sink.record(black_box(&record)))
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = common::quick();
    targets = assembly
}
criterion_main!(benches);
