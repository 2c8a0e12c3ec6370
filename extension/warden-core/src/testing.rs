//! Records, observations and findings for tests, here and in the other crates of the
//! workspace (feature `testing`).

#![allow(clippy::expect_used, clippy::unwrap_used)] // test support: a bad fixture should fail loudly

use crate::schema::{
    Class, CounterDelta, EndGauges, FeatureRecord, Finding, LogStats, Observation,
    ObservationCounts, PlatformFigures, Proto, RecordKind, Status, SCHEMA_VERSION,
};

/// An ordinary invocation record: 40 ms, 20 ms CPU, a small response.
pub fn record(seq: u64) -> FeatureRecord {
    FeatureRecord {
        warden_schema: SCHEMA_VERSION,
        kind: RecordKind::Invoke,
        request_id: Some(format!("req-{seq}")),
        function_name: "orders".into(),
        function_version: "$LATEST".into(),
        seq,
        cold: seq == 1,
        start_unix_ms: 1_700_000_000_000 + seq * 1000,
        complete: true,
        status: Status::Success,
        error_type: None,
        initialization_type: None,
        platform: PlatformFigures {
            duration_ms: Some(40.0 + (seq % 7) as f64),
            produced_bytes: Some(400 + (seq % 5) * 10),
            max_memory_used_mb: Some(40),
            ..PlatformFigures::default()
        },
        log: LogStats {
            lines: 2,
            bytes: 80,
            error_lines: 0,
            tracebacks: 0,
        },
        extension_log_lines: 0,
        unknown_telemetry: 0,
        counters: CounterDelta {
            cpu_user_ms: 20 + (seq % 3) * 10,
            net_tx_bytes: 20_000 + (seq % 11) * 500,
            net_rx_bytes: 4_000,
            tcp_active_opens: 1,
            tcp_outbound_opens: 1,
            ..CounterDelta::default()
        },
        gauges: EndGauges {
            processes: 1,
            threads: 2,
            open_fds: 8,
            rss_kb: 30_000 + (seq % 4) * 100,
            ..EndGauges::default()
        },
        observed: ObservationCounts::default(),
        unnamed_tasks: 0,
        sampler_ticks: 2,
        evidence: Vec::new(),
        evidence_dropped: 0,
    }
}

/// A new process observation.
pub fn process(pid: u32, exe: &str, cmdline: &str) -> Observation {
    Observation::Process {
        pid,
        ppid: 7,
        exe: exe.into(),
        cmdline: cmdline.into(),
        exec: false,
        alive_at_end: false,
        stdio_socket: false,
        runtime_fork: false,
    }
}

/// A process still running when its invocation ended.
pub fn left_running(pid: u32, exe: &str, cmdline: &str) -> Observation {
    Observation::Process {
        pid,
        ppid: 1,
        exe: exe.into(),
        cmdline: cmdline.into(),
        exec: false,
        alive_at_end: true,
        stdio_socket: false,
        runtime_fork: false,
    }
}

/// A connection to `addr`.
pub fn endpoint(addr: &str) -> Observation {
    Observation::Endpoint {
        proto: Proto::Tcp,
        addr: addr.parse().expect("test address"),
        listen: false,
    }
}

/// Adds an observation to a record, keeping its counts in step.
pub fn with(mut r: FeatureRecord, obs: Observation) -> FeatureRecord {
    r.observed.count(&obs, "/tmp/");
    r.evidence.push(obs);
    r
}

/// A finding with the given class and severity, everything else minimal.
pub fn finding_of(class: Class, severity: crate::schema::Severity) -> Finding {
    Finding {
        warden_finding: crate::schema::FINDING_VERSION,
        id: format!("wf-test-{}", class.as_str()),
        time_unix_ms: 1_700_000_000_000,
        request_id: Some("req-1".into()),
        function_name: "orders-api".into(),
        function_version: "$LATEST".into(),
        class,
        severity,
        score: 0.9,
        realtime: true,
        indicators: Vec::new(),
        explanation: Vec::new(),
        evidence: Vec::new(),
        raw_evidence: Vec::new(),
        model: None,
        baseline: crate::schema::BaselineView {
            warmed_up: true,
            learned: 30,
        },
        related: Vec::new(),
        earlier_requests: Vec::new(),
        actions: Vec::new(),
        feature_schema: crate::schema::SCHEMA_VERSION,
        vector_version: crate::features::VECTOR_VERSION,
    }
}
