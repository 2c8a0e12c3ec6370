use super::*;
use crate::schema::ShutdownReason;
use crate::schema::TmpAction;
use crate::sources::telemetry::events::{Report, RuntimeDone};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn config() -> AssemblerConfig {
    AssemblerConfig {
        report_wait: ms(1000),
        max_pending: 4,
        ticks_per_sec: 100,
        function_name: "orders".into(),
        function_version: "$LATEST".into(),
        tmp_dir: "/tmp".into(),
        proc_root: "/nonexistent-proc".into(),
    }
}

/// A snapshot whose counters are all derived from `n`, so deltas are easy to predict.
fn snap(n: u64) -> CounterSnapshot {
    let mut s = CounterSnapshot {
        cpu_user_ticks: n * 10,
        last_pid: Some(100 + n as u32),
        processes: 2,
        pids: vec![1, 10, 11],
        ..CounterSnapshot::default()
    };
    s.snmp.tcp_active_opens = n * 3;
    s.net.tx_bytes = n * 1000;
    s
}

fn assembler() -> (Assembler, Arc<Health>) {
    let health = Arc::new(Health::default());
    (
        Assembler::new(config(), health.clone(), snap(0), 1_000),
        health,
    )
}

fn runtime_done(id: &str, status: Status) -> TelemetryEvent {
    TelemetryEvent::RuntimeDone(RuntimeDone {
        request_id: id.into(),
        status,
        error_type: None,
        duration_ms: Some(20.0),
        produced_bytes: Some(8),
        response_latency_ms: None,
        response_duration_ms: None,
        runtime_overhead_ms: None,
        time_unix_ms: None,
    })
}

fn report(id: &str) -> TelemetryEvent {
    TelemetryEvent::Report(Report {
        request_id: id.into(),
        status: Status::Success,
        error_type: None,
        duration_ms: 20.5,
        billed_duration_ms: Some(21),
        memory_size_mb: Some(128),
        max_memory_used_mb: Some(40),
        init_duration_ms: None,
        restore_duration_ms: None,
    })
}

fn log(text: &str) -> TelemetryEvent {
    TelemetryEvent::FunctionLog {
        request_id: None,
        stats: LogStats::of_text(text),
    }
}

#[test]
fn init_record_from_init_report_and_first_snapshot() {
    let (mut a, _) = assembler();
    a.telemetry(
        TelemetryEvent::PhaseStart {
            phase: Phase::Init,
            initialization_type: Some("on-demand".into()),
        },
        ms(1),
    );
    a.telemetry(log("Traceback (most recent call last):"), ms(1));
    a.invoke("r1", snap(2), 2_000, ms(10));
    a.telemetry(
        TelemetryEvent::PhaseReport {
            phase: Phase::Init,
            status: Status::Success,
            error_type: None,
            duration_ms: Some(120.0),
        },
        ms(11),
    );
    let out = a.poll(ms(12));
    assert_eq!(out.len(), 1);
    let init = &out[0];
    assert_eq!(init.kind, RecordKind::Init);
    assert_eq!(
        (init.seq, init.complete, init.status),
        (0, true, Status::Success)
    );
    assert_eq!(init.initialization_type.as_deref(), Some("on-demand"));
    assert_eq!(init.platform.duration_ms, Some(120.0));
    assert_eq!(init.log.tracebacks, 1);
    assert_eq!(init.counters.cpu_user_ms, 200);
}

#[test]
fn report_arriving_during_the_next_invocation_completes_the_record() {
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.telemetry(
        TelemetryEvent::Start {
            request_id: "r1".into(),
        },
        ms(1),
    );
    a.telemetry(log("ERROR: card declined\nsecond line"), ms(1));
    a.observe(Observation::Endpoint {
        proto: crate::schema::Proto::Tcp,
        addr: "10.0.0.1:443".parse().unwrap(),
        listen: false,
    });
    // Thaw for r2: r1 closes now; its telemetry comes after.
    a.invoke("r2", snap(4), 2_000, ms(5));
    assert!(a.poll(ms(6)).iter().all(|r| r.kind == RecordKind::Init));
    a.telemetry(runtime_done("r1", Status::Success), ms(7));
    a.telemetry(report("r1"), ms(7));
    a.telemetry(
        TelemetryEvent::Start {
            request_id: "r2".into(),
        },
        ms(7),
    );
    a.telemetry(log("r2 says hi"), ms(7));
    let out = a.poll(ms(8));
    let r1 = out
        .iter()
        .find(|r| r.request_id.as_deref() == Some("r1"))
        .unwrap();
    assert!(r1.complete);
    assert_eq!((r1.seq, r1.cold), (1, true));
    assert_eq!(r1.counters.tcp_active_opens, 9);
    assert_eq!(r1.counters.net_tx_bytes, 3000);
    assert_eq!(r1.counters.cpu_user_ms, 300);
    assert_eq!(
        (r1.log.lines, r1.log.error_lines),
        (2, 1),
        "r2's log is not r1's"
    );
    assert_eq!(r1.observed.new_endpoints, 1);
    assert_eq!(r1.platform.post_runtime_ms, Some(0.5));
    assert_eq!(r1.platform.billed_duration_ms, Some(21));
}

#[test]
fn report_only_at_shutdown() {
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.shutdown(&ShutdownReason::Spindown, snap(2), ms(50));
    assert!(!a.settled());
    a.telemetry(runtime_done("r1", Status::Success), ms(60));
    a.telemetry(report("r1"), ms(60));
    assert!(a.settled() || a.pending_len() == 2, "init may still wait");
    let out = a.flush(ms(61));
    let r1 = out.iter().find(|r| r.kind == RecordKind::Invoke).unwrap();
    assert!(r1.complete);
    assert_eq!(r1.counters.tcp_active_opens, 3);
}

#[test]
fn shutdown_without_report_still_emits_with_counters() {
    let (mut a, health) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.observe(Observation::TmpFile {
        path: "/tmp/x".into(),
        action: TmpAction::Created,
        size: Some(3),
    });
    a.shutdown(&ShutdownReason::Spindown, snap(3), ms(10));
    let out = a.flush(ms(20));
    let r1 = out.iter().find(|r| r.kind == RecordKind::Invoke).unwrap();
    assert!(!r1.complete);
    assert_eq!(r1.status, Status::Unknown);
    assert_eq!(r1.counters.tcp_active_opens, 6);
    assert_eq!(r1.observed.tmp_files_created, 1);
    assert!(health.get(Counter::RecordsIncomplete) >= 1);
}

#[test]
fn timeout_status_from_runtime_done_or_shutdown_reason() {
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.telemetry(runtime_done("r1", Status::Timeout), ms(3000));
    a.shutdown(&ShutdownReason::Timeout, snap(2), ms(3001));
    let out = a.flush(ms(3002));
    assert_eq!(
        out.iter().find(|r| r.seq == 1).unwrap().status,
        Status::Timeout
    );

    let (mut b, _) = assembler();
    b.invoke("r1", snap(1), 1_000, ms(0));
    b.shutdown(&ShutdownReason::Timeout, snap(2), ms(3001));
    let out = b.flush(ms(3002));
    assert_eq!(
        out.iter().find(|r| r.seq == 1).unwrap().status,
        Status::Timeout
    );
}

#[test]
fn crash_is_a_failure_with_its_error_type() {
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    let mut crash = runtime_done("r1", Status::Failure);
    if let TelemetryEvent::RuntimeDone(r) = &mut crash {
        r.error_type = Some("Runtime.ExitError".into());
    }
    a.telemetry(crash, ms(5));
    a.shutdown(&ShutdownReason::Failure, snap(2), ms(6));
    let r = a.flush(ms(7)).into_iter().find(|r| r.seq == 1).unwrap();
    assert_eq!(
        (r.status, r.error_type.as_deref()),
        (Status::Failure, Some("Runtime.ExitError"))
    );
}

#[test]
fn missing_report_is_emitted_after_the_wait() {
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.invoke("r2", snap(2), 2_000, ms(100));
    assert!(a.poll(ms(1099)).iter().all(|r| r.seq != 1));
    let out = a.poll(ms(1100));
    let r1 = out
        .iter()
        .find(|r| r.seq == 1)
        .expect("r1 emitted after 1000 ms");
    assert!(!r1.complete);
    assert_eq!(
        a.open_request(),
        Some("r2"),
        "the open invocation is never emitted by poll"
    );
}

#[test]
fn pending_is_bounded() {
    let (mut a, health) = assembler();
    for i in 0..10u64 {
        a.invoke(&format!("r{i}"), snap(i), i, ms(i));
    }
    assert!(a.pending_len() <= 5, "cap 4 + init");
    assert_eq!(health.get(Counter::PendingDropped), 6);
    let emitted = a.poll(ms(11)).len() + a.flush(ms(12)).len();
    assert_eq!(
        emitted, 11,
        "every invocation and init emitted exactly once"
    );
}

#[test]
fn late_telemetry_after_emission_is_counted_not_resurrected() {
    let (mut a, health) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.invoke("r2", snap(2), 1_000, ms(1));
    a.poll(ms(5000));
    a.telemetry(report("r1"), ms(5001));
    assert_eq!(health.get(Counter::TelemetryLate), 1);
    assert!(a.poll(ms(5002)).is_empty());
}

#[test]
fn foreign_processes_and_left_running() {
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.observe_end(vec![Observation::Process {
        pid: 50,
        ppid: 1,
        exe: "/tmp/miner".into(),
        cmdline: "/tmp/miner".into(),
        exec: false,
        alive_at_end: true,
        stdio_socket: false,
        runtime_fork: false,
    }]);
    let mut end = snap(2);
    end.pids = vec![1, 10, 11, 50];
    a.invoke("r2", end, 2_000, ms(1));
    let r1 = a.flush(ms(2)).into_iter().find(|r| r.seq == 1).unwrap();
    assert_eq!(r1.gauges.foreign_processes, 1);
    assert_eq!(r1.observed.processes_left_running, 1);
    assert_eq!(r1.evidence.len(), 1);
}

#[test]
fn processes_the_next_invocation_started_before_its_snapshot_are_not_the_closing_ones() {
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    // The runtime got the next event when Warden did and started its converter pipeline
    // (pids 60 to 62) before Warden read the snapshot; the sampler judged them the next
    // invocation's by their start time.
    let mut end = snap(2);
    end.pids = vec![1, 10, 11, 60, 61, 62];
    end.processes = 5;
    end.threads = 5;
    a.started_by_next(&[60, 61, 62]);
    a.invoke("r2", end, 2_000, ms(1));
    let r1 = a.flush(ms(2)).into_iter().find(|r| r.seq == 1).unwrap();
    assert_eq!(r1.gauges.foreign_processes, 0);
    assert_eq!(r1.gauges.processes, 2);
    assert_eq!(r1.gauges.threads, 2);
}

#[test]
fn only_closed_records_need_the_housekeeping_timer() {
    let (mut a, _) = assembler();
    assert!(a.waiting(), "init waits for its report");
    a.telemetry(
        TelemetryEvent::PhaseReport {
            phase: Phase::Init,
            status: Status::Success,
            error_type: None,
            duration_ms: Some(120.0),
        },
        ms(5),
    );
    a.invoke("r1", snap(1), 2_000, ms(10));
    assert_eq!(a.poll(ms(10)).len(), 1);
    assert!(!a.waiting(), "only the invocation in flight");
    a.invoke("r2", snap(2), 3_000, ms(20));
    assert!(a.waiting(), "r1 closed, waiting for its report");
    a.telemetry(report("r1"), ms(25));
    assert_eq!(a.poll(ms(25)).len(), 1);
    assert!(!a.waiting());
}

#[test]
fn a_process_foreign_at_two_ends_in_a_row_is_persisting_and_named() {
    let (mut a, _) = assembler();
    // Our own pid stands in for the planted process: /proc can name it.
    let me = std::process::id();
    let mut cfg = config();
    cfg.proc_root = "/proc".into();
    a.cfg = cfg;
    // Each INVOKE's snapshot is the end of the invocation before it.
    let ends = [
        vec![1, 10, 11, 60],
        vec![1, 10, 11, me, 61],
        vec![1, 10, 11, me],
    ];
    a.invoke("r0", snap(0), 1_000, ms(0));
    for (n, pids) in ends.iter().enumerate() {
        let mut end = snap(n as u64 + 1);
        end.pids = pids.clone();
        a.invoke(&format!("r{}", n + 1), end, 1_000, ms(n as u64));
    }
    let records = a.flush(ms(10));
    let by_id = |id: &str| {
        records
            .iter()
            .find(|r| r.request_id.as_deref() == Some(id))
            .unwrap()
    };
    // 60 and 61 each appear at one end only (a race, not a daemon); `me` at two.
    assert_eq!(by_id("r0").gauges.persisting_processes, 0);
    assert_eq!(by_id("r1").gauges.persisting_processes, 0);
    assert_eq!(by_id("r2").gauges.persisting_processes, 1);
    let named = by_id("r2").evidence.iter().any(|o| {
        matches!(o, Observation::StillRunning { pid, exe, .. } if *pid == me && !exe.is_empty())
    });
    assert!(named, "{:?}", by_id("r2").evidence);
}

#[test]
fn the_record_shutdown_closes_keeps_the_gauges_of_the_stopped_runtime() {
    let (mut a, _) = assembler();
    let mut start = snap(1);
    (start.processes, start.threads, start.open_fds) = (2, 5, 9);
    (start.rss_kb, start.rss_peak_kb) = (15_000, 16_000);
    a.invoke("r1", start, 1_000, ms(0));
    // Lambda stopped the runtime before SHUTDOWN; a process the invocation left grew.
    let mut end = snap(2);
    (end.processes, end.threads, end.open_fds) = (1, 1, 3);
    (end.rss_kb, end.rss_peak_kb) = (20_000, 1_000);
    end.pids = vec![1, 42];
    a.shutdown(&ShutdownReason::Spindown, end, ms(10));
    let r = a.flush(ms(20)).into_iter().find(|r| r.seq == 1).unwrap();
    let g = &r.gauges;
    assert_eq!((g.processes, g.threads, g.open_fds), (2, 5, 9));
    assert_eq!((g.rss_kb, g.rss_peak_kb), (20_000, 16_000));
    assert_eq!(
        (r.counters.processes_delta, r.counters.open_fds_delta),
        (0, 0)
    );
    assert_eq!(r.counters.cpu_user_ms, 100, "counters are the end's");
    assert_eq!(g.foreign_processes, 1, "pid 42 still runs and is named");

    // Closed by the next INVOKE, the runtime is still there: gauges are read as they are.
    let (mut b, _) = assembler();
    b.invoke("r1", snap(1), 1_000, ms(0));
    let mut next = snap(2);
    next.processes = 1;
    b.invoke("r2", next, 2_000, ms(10));
    let r = b.flush(ms(20)).into_iter().find(|r| r.seq == 1).unwrap();
    assert_eq!(r.gauges.processes, 1);
}

fn start(id: &str) -> TelemetryEvent {
    TelemetryEvent::Start {
        request_id: id.into(),
    }
}

fn tampers(r: &FeatureRecord) -> Vec<(crate::schema::TamperKind, Option<String>)> {
    r.evidence
        .iter()
        .filter_map(|o| match o {
            Observation::Tamper { what, request_id } => Some((*what, request_id.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn telemetry_for_a_request_never_announced_makes_no_record_and_is_tamper() {
    use crate::schema::TamperKind;
    let (mut a, health) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.telemetry(start("r1"), ms(1));
    // Forged for a made-up id: an error that would feed an error burst.
    a.telemetry(start("made-up"), ms(2));
    a.telemetry(runtime_done("made-up", Status::Error), ms(2));
    a.telemetry(report("made-up"), ms(2));
    assert!(
        a.take_tampers().is_empty(),
        "held: its INVOKE may be on its way"
    );
    assert!(a.poll(ms(500)).iter().all(|r| r.kind == RecordKind::Init));
    a.poll(ms(1_002));
    let seen = a.take_tampers();
    assert_eq!(seen.len(), 1, "{seen:?}");
    a.invoke("r2", snap(2), 2_000, ms(1_100));
    a.telemetry(runtime_done("r1", Status::Success), ms(1_101));
    a.telemetry(report("r1"), ms(1_101));
    let out = a.flush(ms(1_200));
    assert!(out
        .iter()
        .all(|r| r.request_id.as_deref() != Some("made-up")));
    let r1 = out
        .iter()
        .find(|r| r.request_id.as_deref() == Some("r1"))
        .unwrap();
    assert_eq!(
        tampers(r1),
        vec![(TamperKind::UnknownRequest, Some("made-up".to_string()))]
    );
    assert_eq!(r1.status, Status::Success);
    assert_eq!(health.get(Counter::TelemetryTamper), 1);
}

#[test]
fn a_start_just_before_its_invoke_is_kept_not_reported() {
    let (mut a, health) = assembler();
    // The race at a thaw: the telemetry stream got ahead of the INVOKE.
    a.telemetry(start("r1"), ms(0));
    a.telemetry(log("r1 early line"), ms(0));
    a.invoke("r1", snap(1), 1_000, ms(3));
    a.telemetry(runtime_done("r1", Status::Success), ms(5));
    a.telemetry(report("r1"), ms(5));
    a.invoke("r2", snap(2), 2_000, ms(10));
    let out = a.poll(ms(2_000));
    let r1 = out
        .iter()
        .find(|r| r.request_id.as_deref() == Some("r1"))
        .unwrap();
    assert!(r1.complete);
    assert!(tampers(r1).is_empty());
    assert_eq!(health.get(Counter::TelemetryTamper), 0);
    assert!(a.take_tampers().is_empty());
}

#[test]
fn the_platforms_first_figures_win_and_a_different_second_is_tamper() {
    use crate::schema::TamperKind;
    let (mut a, health) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.telemetry(runtime_done("r1", Status::Success), ms(1));
    // The same batch re-sent: ignored quietly.
    a.telemetry(runtime_done("r1", Status::Success), ms(1));
    assert_eq!(health.get(Counter::TelemetryTamper), 0);
    // A forged second runtimeDone: an error with other figures.
    let mut forged = runtime_done("r1", Status::Error);
    if let TelemetryEvent::RuntimeDone(r) = &mut forged {
        r.produced_bytes = Some(1);
    }
    a.telemetry(forged, ms(2));
    assert_eq!(a.take_tampers().len(), 1);
    a.telemetry(report("r1"), ms(3));
    a.invoke("r2", snap(2), 2_000, ms(10));
    let out = a.poll(ms(11));
    let r1 = out
        .iter()
        .find(|r| r.request_id.as_deref() == Some("r1"))
        .unwrap();
    assert_eq!(r1.status, Status::Success);
    assert_eq!(r1.platform.produced_bytes, Some(8));
    assert_eq!(
        tampers(r1),
        vec![(TamperKind::PlatformOverwrite, Some("r1".to_string()))]
    );
    // After emission too: a different runtimeDone for r1 is still caught.
    a.telemetry(runtime_done("r1", Status::Timeout), ms(12));
    assert_eq!(health.get(Counter::TelemetryTamper), 2);
}

#[test]
fn a_refused_request_is_tamper_in_the_record_in_flight_once() {
    use crate::schema::TamperKind;
    let (mut a, health) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    for _ in 0..5 {
        a.telemetry(TelemetryEvent::Forged, ms(1));
    }
    assert_eq!(health.get(Counter::TelemetryTamper), 5);
    assert_eq!(a.take_tampers().len(), 1);
    a.invoke("r2", snap(2), 2_000, ms(10));
    let out = a.flush(ms(20));
    let r1 = out
        .iter()
        .find(|r| r.request_id.as_deref() == Some("r1"))
        .unwrap();
    assert_eq!(tampers(r1), vec![(TamperKind::ForgedTelemetry, None)]);
}

#[test]
fn function_logs_naming_an_unknown_id_are_counted_not_tamper() {
    let (mut a, health) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.telemetry(
        TelemetryEvent::FunctionLog {
            request_id: Some("someone-else".into()),
            stats: LogStats::of_text("ERROR printed by the function"),
        },
        ms(1),
    );
    a.poll(ms(2_000));
    a.invoke("r2", snap(2), 2_000, ms(2_001));
    let out = a.flush(ms(2_002));
    let r1 = out
        .iter()
        .find(|r| r.request_id.as_deref() == Some("r1"))
        .unwrap();
    assert_eq!(r1.log.error_lines, 1);
    assert!(tampers(r1).is_empty());
    assert_eq!(health.get(Counter::TelemetryTamper), 0);
}

#[test]
fn a_stop_is_reported_in_the_record_of_the_invocation_it_hid() {
    use crate::schema::TamperKind;
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.invoke("r2", snap(2), 2_000, ms(10));
    // Judged when r1's runtimeDone arrives, with r2 already in flight.
    a.stopped("r1");
    let seen = a.take_tampers();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].0.as_deref(), Some("r1"));
    let out = a.flush(ms(20));
    let r1 = out
        .iter()
        .find(|r| r.request_id.as_deref() == Some("r1"))
        .unwrap();
    assert_eq!(
        tampers(r1),
        vec![(TamperKind::Stopped, Some("r1".to_string()))]
    );
    let r2 = out
        .iter()
        .find(|r| r.request_id.as_deref() == Some("r2"))
        .unwrap();
    assert!(tampers(r2).is_empty());
}

#[test]
fn a_process_init_left_running_is_still_running_at_the_first_invocations_end() {
    let (mut a, _) = assembler();
    let me = std::process::id();
    a.cfg.proc_root = "/proc".into();
    // The sampler reports what init left running before the first INVOKE is opened.
    a.observe_end(vec![Observation::Process {
        pid: me,
        ppid: 1,
        exe: "/var/task/miner".into(),
        cmdline: "miner".into(),
        exec: true,
        alive_at_end: true,
        stdio_socket: false,
        runtime_fork: false,
    }]);
    let mut first = snap(1);
    first.pids = vec![1, 10, 11, me];
    a.invoke("r1", first.clone(), 1_000, ms(1));
    a.invoke("r2", first, 1_000, ms(2));
    let records = a.flush(ms(10));
    let r1 = records
        .iter()
        .find(|r| r.request_id.as_deref() == Some("r1"))
        .unwrap();
    assert_eq!(r1.gauges.foreign_processes, 1);
    assert_eq!(r1.gauges.persisting_processes, 1);
    assert!(
        r1.evidence
            .iter()
            .any(|o| matches!(o, Observation::StillRunning { pid, .. } if *pid == me)),
        "{:?}",
        r1.evidence
    );
}

#[test]
fn an_event_in_the_frozen_gap_goes_to_the_edge_it_is_nearer() {
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    // r1's runtime is done 20 ms after its start (`runtime_done` says 20 ms).
    a.telemetry(runtime_done("r1", Status::Success), ms(30));
    a.invoke("r2", snap(2), 2_000, ms(100));
    // Just after r1's response: its runtime's last moments before the freeze.
    assert_eq!(a.earlier_request_at(1_025), Some("r1"));
    // Just before r2's start: the thaw that began r2 (a planted timer firing at once).
    assert_eq!(a.earlier_request_at(1_990), None);
    // While r1 ran: r1, however near r2.
    assert_eq!(a.earlier_request_at(1_015), Some("r1"));
}

#[test]
fn an_event_before_an_invocation_started_is_told_apart() {
    let (mut a, _) = assembler();
    // Before the first invocation started: the init phase's, while its record is to come.
    a.invoke("r1", snap(1), 1_000, ms(0));
    assert_eq!(a.date(990), Dating::Init);
    assert_eq!(a.date(1_005), Dating::Open);
    assert!(!a.before_open_start(1_005));
    a.telemetry(runtime_done("r1", Status::Success), ms(30));
    a.invoke("r2", snap(2), 2_000, ms(100));
    // In the gap, nearer r2's thaw: r2's, but made before r2 started (at its thaw).
    assert_eq!(a.date(1_990), Dating::Open);
    assert!(a.before_open_start(1_990));
    assert!(!a.before_open_start(2_001));
}

#[test]
fn an_event_before_the_next_start_waits_for_the_earlier_invocations_end() {
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.invoke("r2", snap(2), 1_030, ms(100));
    // r1's end is not known yet: the event may be r1's last moments or r2's thaw.
    assert_eq!(a.date(1_028), Dating::Undecided("r1"));
    assert_eq!(a.earlier_request_at(1_028), None);
    // r1 ran 20 ms: 1_028 is nearer r2's start than r1's end.
    a.telemetry(runtime_done("r1", Status::Success), ms(101));
    assert_eq!(a.date(1_028), Dating::Open);
    assert_eq!(a.date(1_019), Dating::Earlier("r1"));
}

#[test]
fn invocations_without_a_gap_keep_their_own_events() {
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    a.invoke("r2", snap(2), 1_021, ms(100));
    a.telemetry(runtime_done("r1", Status::Success), ms(101));
    // Stamped just before r1's end, a millisecond before r2's start: r1's.
    assert_eq!(a.date(1_019), Dating::Earlier("r1"));
}

#[test]
fn an_event_from_an_invocation_that_has_ended_finds_its_record() {
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    // Before any invocation: nothing earlier to name.
    assert_eq!(a.earlier_request_at(900), None);
    a.invoke("r2", snap(2), 2_000, ms(100));
    // Stamped during r1 (it ran 20 ms), arriving while r2 is in flight.
    a.telemetry(runtime_done("r1", Status::Success), ms(101));
    assert_eq!(a.earlier_request_at(1_010), Some("r1"));
    // During r2 itself: the invocation in flight.
    assert_eq!(a.earlier_request_at(2_000), None);
    assert_eq!(a.earlier_request_at(2_500), None);
    assert!(a.is_pending("r1"));
    // Once r1's record is out, its late events are still dated to it (for real-time
    // findings), though its record takes no more evidence.
    a.telemetry(report("r1"), ms(102));
    let out = a.poll(ms(103));
    assert!(out.iter().any(|r| r.request_id.as_deref() == Some("r1")));
    assert_eq!(a.earlier_request_at(1_010), Some("r1"));
    assert!(!a.is_pending("r1"));
}

#[test]
fn a_flood_of_tmp_files_does_not_push_what_matters_out_of_the_record() {
    let (mut a, _) = assembler();
    a.invoke("r1", snap(1), 1_000, ms(0));
    let file = |n: usize| Observation::TmpFile {
        path: format!("/tmp/f{n}"),
        action: TmpAction::Created,
        size: Some(0),
    };
    for n in 0..MAX_EVIDENCE + 10 {
        a.observe(file(n));
    }
    let read = Observation::CredentialRead {
        pid: 9,
        path: "/proc/1/environ".into(),
        reader: None,
        verdict: crate::schema::PolicyVerdict::Allow,
    };
    a.observe(read.clone());
    a.observe(file(999));
    a.telemetry(runtime_done("r1", Status::Success), ms(5));
    a.telemetry(report("r1"), ms(5));
    let out = a.flush(ms(6));
    let r1 = out.iter().find(|r| r.kind == RecordKind::Invoke).unwrap();
    assert_eq!(r1.evidence.len(), MAX_EVIDENCE);
    assert!(r1.evidence.contains(&read), "{:?}", r1.evidence);
    assert!(!r1.evidence.contains(&file(999)));
    assert_eq!(r1.evidence_dropped, 12);
    // Counted all the same.
    assert_eq!(r1.observed.tmp_files_created, MAX_EVIDENCE as u32 + 11);
}
