//! Detection cost per invocation without a model: the record reduced to its vector,
//! normalised by a warmed-up baseline, indicators replayed over its evidence, the score
//! combined and the baseline updated. Also one real-time observation, and the baseline's
//! z-scores warmed up against provisional (an environment's 4th to 20th invocation).
#![allow(clippy::unwrap_used, clippy::expect_used)] // test and bench code: fail loudly

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use warden_core::detect::{Baseline, Detector, DetectorConfig};
use warden_core::features::vector;
use warden_core::health::Health;
use warden_core::schema::FeatureRecord;
use warden_core::schema::{Observation, TmpAction};

/// The example record of docs/features.md.
const RECORD: &str = r#"{"warden_schema":1,"kind":"invoke","request_id":"0ba2b5c0-3612-477c-9c08-4801f1966ee2","function_name":"python-probe","function_version":"$LATEST","seq":2,"cold":false,"start_unix_ms":1795633423053,"complete":true,"status":"success","error_type":null,"initialization_type":null,"duration_ms":187.152,"billed_duration_ms":188,"memory_size_mb":128,"max_memory_used_mb":18,"init_duration_ms":null,"restore_duration_ms":null,"runtime_duration_ms":187.122,"produced_bytes":401,"response_latency_ms":187.122,"response_duration_ms":null,"runtime_overhead_ms":null,"post_runtime_ms":0.03,"log":{"lines":2,"bytes":48,"error_lines":2,"tracebacks":0},"extension_log_lines":0,"unknown_telemetry":0,"cpu_user_ms":120,"cpu_system_ms":0,"tasks_created":0,"tcp_active_opens":0,"tcp_passive_opens":0,"tcp_outbound_opens":0,"tcp_out_segs":22,"tcp_retrans_segs":0,"udp_in_datagrams":0,"udp_out_datagrams":0,"net_rx_bytes":0,"net_tx_bytes":0,"lo_bytes":9464,"tmp_bytes_delta":8192,"tmp_files_delta":1,"open_fds_delta":0,"processes_delta":0,"warden_cpu_us":900,"processes":1,"foreign_processes":0,"threads":1,"open_fds":8,"rss_kb":15968,"rss_peak_kb":15968,"tmp_bytes":8192,"tmp_files":2,"warden_rss_kb":4152,"new_processes":0,"exec_from_tmp":0,"execs":0,"processes_left_running":0,"new_endpoints":0,"listeners_opened":0,"tmp_files_created":1,"tmp_files_deleted":0,"unnamed_tasks":0,"sampler_ticks":9,"evidence":[{"kind":"tmp_file","path":"/tmp/hello.txt","action":"created","size":5000}],"evidence_dropped":0}"#;

fn record(seq: u64) -> FeatureRecord {
    let mut r: FeatureRecord = serde_json::from_str(RECORD).expect("example record");
    r.seq = seq;
    r.platform.duration_ms = Some(180.0 + (seq % 13) as f64);
    r.counters.cpu_user_ms = 110 + (seq % 3) * 10;
    r.gauges.rss_kb = 15_968 + (seq % 5) * 64;
    r
}

fn bench(c: &mut Criterion) {
    let health = Arc::new(Health::default());
    let mut d = Detector::new(DetectorConfig::default(), health, 0);
    for seq in 1..=50 {
        d.record(&record(seq), 0);
    }
    assert!(d.baseline().warmed_up());
    let records: Vec<FeatureRecord> = (51..1075).map(record).collect();
    let mut n = 0;
    c.bench_function("detect/record (benign, no model)", |b| {
        b.iter(|| {
            n = (n + 1) % records.len();
            black_box(d.record(black_box(&records[n]), 0))
        })
    });
    let obs = Observation::TmpFile {
        path: "/tmp/cache.bin".into(),
        action: TmpAction::Written,
        size: Some(4096),
    };
    c.bench_function("detect/observe (benign)", |b| {
        b.iter(|| black_box(d.observe(Some("req"), black_box(&obs), 0)))
    });
    provisional(c);
}

/// The baseline's part of an invocation in the warm-up, side by side with a warmed one.
fn provisional(c: &mut Criterion) {
    let rows: Vec<_> = (1..=40).map(|seq| vector(&record(seq))).collect();
    let (mut warmed, mut early) = (Baseline::new(), Baseline::new());
    for x in &rows {
        warmed.observe(x);
    }
    for x in &rows[..10] {
        early.observe(x);
    }
    assert!(warmed.warmed_up() && early.scoring() && !early.warmed_up());
    let x = rows[11];
    let mut g = c.benchmark_group("baseline");
    g.bench_function("normalise (warmed up)", |b| {
        b.iter(|| black_box(warmed.normalise(black_box(&x))))
    });
    g.bench_function("normalise (provisional)", |b| {
        b.iter(|| black_box(early.normalise(black_box(&x))))
    });
    g.bench_function("observe (warmed up)", |b| {
        b.iter_batched(
            || warmed.clone(),
            |mut w| black_box(w.observe(&x)),
            BatchSize::SmallInput,
        )
    });
    g.bench_function("observe (warm-up, provisional stats)", |b| {
        b.iter_batched(
            || early.clone(),
            |mut e| black_box(e.observe(&x)),
            BatchSize::SmallInput,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
