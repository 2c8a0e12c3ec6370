use super::*;

const RID: &str = "459921b5-681c-4a96-beb0-81e0aa586026";

fn one(line: &str) -> (TelemetryEvent, BatchOutcome) {
    let mut out = Vec::new();
    let outcome = parse_batch(format!("[{line}]").as_bytes(), &mut out);
    assert_eq!(out.len(), 1, "{line}");
    (out.remove(0), outcome)
}

fn known(line: &str) -> TelemetryEvent {
    let (event, outcome) = one(line);
    assert_eq!(
        outcome,
        BatchOutcome {
            events: 1,
            unknown: 0,
            parse_errors: 0
        },
        "{line}"
    );
    event
}

#[test]
fn init_start() {
    let e = known(
        r#"{"time":"2022-10-19T13:52:15.636Z","type":"platform.initStart","record":{"initializationType":"on-demand","phase":"init","runtimeVersion":"python:3.12.v20","runtimeVersionArn":"arn:aws:lambda:us-east-1::runtime:abc","functionName":"orders","functionVersion":"$LATEST","instanceId":"i-1","instanceMaxMemory":134217728}}"#,
    );
    assert_eq!(
        e,
        TelemetryEvent::PhaseStart {
            phase: Phase::Init,
            initialization_type: Some("on-demand".into())
        }
    );
}

#[test]
fn init_runtime_done() {
    let e = known(
        r#"{"time":"2022-10-19T13:52:16.136Z","type":"platform.initRuntimeDone","record":{"initializationType":"on-demand","phase":"init","status":"error","errorType":"Runtime.ImportModuleError","spans":[]}}"#,
    );
    assert_eq!(
        e,
        TelemetryEvent::PhaseRuntimeDone {
            phase: Phase::Init,
            status: Status::Error,
            error_type: Some("Runtime.ImportModuleError".into())
        }
    );
}

#[test]
fn init_report() {
    let e = known(
        r#"{"time":"2022-10-19T13:52:16.136Z","type":"platform.initReport","record":{"initializationType":"on-demand","phase":"init","status":"success","metrics":{"durationMs":500.0},"spans":[]}}"#,
    );
    assert_eq!(
        e,
        TelemetryEvent::PhaseReport {
            phase: Phase::Init,
            status: Status::Success,
            error_type: None,
            duration_ms: Some(500.0)
        }
    );
}

#[test]
fn start() {
    let e = known(
        r#"{"time":"2022-10-21T14:05:03.165Z","type":"platform.start","record":{"requestId":"459921b5-681c-4a96-beb0-81e0aa586026","version":"$LATEST","tracing":{"spanId":"24cd7d670fa455f0","type":"X-Amzn-Trace-Id","value":"Root=1-6352a70e-1e2c502e358361800241fd45;Parent=35465b3a9e2f7c6a;Sampled=1"}}}"#,
    );
    assert_eq!(
        e,
        TelemetryEvent::Start {
            request_id: RID.into()
        }
    );
}

#[test]
fn runtime_done() {
    let e = known(
        r#"{"time":"2022-10-21T14:05:05.764Z","type":"platform.runtimeDone","record":{"requestId":"459921b5-681c-4a96-beb0-81e0aa586026","status":"success","tracing":{"spanId":"24cd7d670fa455f0","type":"X-Amzn-Trace-Id","value":"Root=1-6352a70e-1e2c502e358361800241fd45;Parent=35465b3a9e2f7c6a;Sampled=1"},"spans":[{"name":"responseLatency","start":"2022-10-21T14:05:03.165Z","durationMs":2598.0},{"name":"responseDuration","start":"2022-10-21T14:05:05.763Z","durationMs":0.0}],"metrics":{"durationMs":2599.0,"producedBytes":8}}}"#,
    );
    assert_eq!(
        e,
        TelemetryEvent::RuntimeDone(RuntimeDone {
            request_id: RID.into(),
            status: Status::Success,
            error_type: None,
            duration_ms: Some(2599.0),
            produced_bytes: Some(8),
            response_latency_ms: Some(2598.0),
            response_duration_ms: Some(0.0),
            runtime_overhead_ms: None,
            time_unix_ms: Some(1_666_361_105_764),
        })
    );
}

#[test]
fn telemetry_times_to_unix_ms() {
    use super::super::parse::unix_ms;
    assert_eq!(unix_ms("2022-10-21T14:05:05.764Z"), Some(1_666_361_105_764));
    assert_eq!(unix_ms("2000-02-29T00:00:00Z"), Some(951_782_400_000));
    assert_eq!(unix_ms("2000-02-29T00:00:00.5Z"), Some(951_782_400_500));
    assert_eq!(
        unix_ms("2000-02-29T00:00:00.123456Z"),
        Some(951_782_400_123)
    );
    assert_eq!(unix_ms("2000-02-29T00:00:00+01:00"), None);
    assert_eq!(unix_ms("t"), None);
}

#[test]
fn runtime_done_timeout_without_metrics() {
    let e = known(
        r#"{"time":"2022-10-21T14:05:05.764Z","type":"platform.runtimeDone","record":{"requestId":"r1","status":"timeout","errorType":"Sandbox.Timedout"}}"#,
    );
    let TelemetryEvent::RuntimeDone(r) = e else {
        panic!("{e:?}")
    };
    assert_eq!(
        (r.status, r.error_type.as_deref(), r.duration_ms),
        (Status::Timeout, Some("Sandbox.Timedout"), None)
    );
}

#[test]
fn report() {
    let e = known(
        r#"{"time":"2022-10-21T14:05:05.766Z","type":"platform.report","record":{"requestId":"459921b5-681c-4a96-beb0-81e0aa586026","metrics":{"durationMs":2599.4,"billedDurationMs":2600,"memorySizeMB":128,"maxMemoryUsedMB":94,"initDurationMs":549.04},"tracing":{"spanId":"24cd7d670fa455f0","type":"X-Amzn-Trace-Id","value":"Root=1-6352a70e-1e2c502e358361800241fd45;Parent=35465b3a9e2f7c6a;Sampled=1"},"status":"success"}}"#,
    );
    assert_eq!(
        e,
        TelemetryEvent::Report(Report {
            request_id: RID.into(),
            status: Status::Success,
            error_type: None,
            duration_ms: 2599.4,
            billed_duration_ms: Some(2600),
            memory_size_mb: Some(128),
            max_memory_used_mb: Some(94),
            init_duration_ms: Some(549.04),
            restore_duration_ms: None,
        })
    );
}

#[test]
fn report_with_only_duration() {
    let e = known(
        r#"{"time":"2025-01-29T10:00:00.000Z","type":"platform.report","record":{"requestId":"r2","status":"error","errorType":"Function.Unhandled","metrics":{"durationMs":12.5}}}"#,
    );
    let TelemetryEvent::Report(r) = e else {
        panic!("{e:?}")
    };
    assert_eq!((r.status, r.billed_duration_ms), (Status::Error, None));
}

#[test]
fn restore_start() {
    let e = known(
        r#"{"time":"2022-10-19T13:52:15.636Z","type":"platform.restoreStart","record":{"runtimeVersion":"java:21.v9","runtimeVersionArn":"arn:aws:lambda:us-east-1::runtime:def","functionName":"orders","functionVersion":"3","instanceId":"i-2","instanceMaxMemory":268435456}}"#,
    );
    assert!(matches!(
        e,
        TelemetryEvent::PhaseStart {
            phase: Phase::Restore,
            ..
        }
    ));
}

#[test]
fn restore_runtime_done() {
    let e = known(
        r#"{"time":"2022-10-19T13:52:15.900Z","type":"platform.restoreRuntimeDone","record":{"status":"success","spans":[]}}"#,
    );
    assert_eq!(
        e,
        TelemetryEvent::PhaseRuntimeDone {
            phase: Phase::Restore,
            status: Status::Success,
            error_type: None
        }
    );
}

#[test]
fn restore_report() {
    let e = known(
        r#"{"time":"2022-10-19T13:52:16.000Z","type":"platform.restoreReport","record":{"status":"success","metrics":{"durationMs":310.2},"spans":[]}}"#,
    );
    assert!(
        matches!(e, TelemetryEvent::PhaseReport { phase: Phase::Restore, duration_ms: Some(d), .. } if d == 310.2)
    );
}

#[test]
fn platform_extension() {
    let e = known(
        r#"{"time":"2022-10-19T13:52:16.136Z","type":"platform.extension","record":{"name":"warden","state":"Ready","events":["SHUTDOWN","INVOKE"]}}"#,
    );
    assert_eq!(
        e,
        TelemetryEvent::Extension {
            name: "warden".into(),
            state: "Ready".into()
        }
    );
}

#[test]
fn telemetry_subscription() {
    let e = known(
        r#"{"time":"2022-10-19T13:52:15.667Z","type":"platform.telemetrySubscription","record":{"name":"warden","state":"Subscribed","types":["platform","function","extension"]}}"#,
    );
    assert_eq!(
        e,
        TelemetryEvent::Subscription {
            name: "warden".into(),
            state: "Subscribed".into()
        }
    );
}

#[test]
fn logs_dropped() {
    let e = known(
        r#"{"time":"2022-10-19T13:52:15.667Z","type":"platform.logsDropped","record":{"reason":"Consumer seems to have fallen behind as it has not acknowledged receipt of logs.","droppedRecords":123,"droppedBytes":12345}}"#,
    );
    assert_eq!(
        e,
        TelemetryEvent::LogsDropped {
            records: 123,
            bytes: 12345
        }
    );
}

#[test]
fn function_text_record() {
    let e = known(
        r#"{"time":"2022-10-21T14:05:04.000Z","type":"function","record":"[ERROR] ValueError: bad input\nTraceback (most recent call last):\n  File \"/var/task/app.py\", line 9\n"}"#,
    );
    let TelemetryEvent::FunctionLog { request_id, stats } = e else {
        panic!("{e:?}")
    };
    assert_eq!(request_id, None);
    assert_eq!(
        (stats.lines, stats.error_lines, stats.tracebacks),
        (3, 1, 1)
    );
}

#[test]
fn function_json_record() {
    let e = known(
        r#"{"time":"2022-10-21T14:05:04.000Z","type":"function","record":{"timestamp":"2022-10-21T14:05:04.000Z","level":"ERROR","message":"payment failed","logger":"root","requestId":"459921b5-681c-4a96-beb0-81e0aa586026"}}"#,
    );
    let TelemetryEvent::FunctionLog { request_id, stats } = e else {
        panic!("{e:?}")
    };
    assert_eq!(request_id.as_deref(), Some(RID));
    assert_eq!((stats.lines, stats.error_lines), (1, 1));
}

#[test]
fn function_json_record_with_object_message() {
    let e = known(
        r#"{"time":"t","type":"function","record":{"level":"INFO","message":{"order":7,"note":"Exception handled"}}}"#,
    );
    let TelemetryEvent::FunctionLog { stats, .. } = e else {
        panic!("{e:?}")
    };
    assert_eq!((stats.lines, stats.error_lines), (1, 1));
}

#[test]
fn extension_record() {
    let e = known(
        r#"{"time":"2022-10-21T14:05:04.000Z","type":"extension","record":"other-ext: connected"}"#,
    );
    let TelemetryEvent::ExtensionLog { stats } = e else {
        panic!("{e:?}")
    };
    assert_eq!(stats.lines, 1);
}

#[test]
fn batch_with_unknown_type_is_accepted_and_kept() {
    let body = r#"[
        {"time":"t","type":"platform.start","record":{"requestId":"a"}},
        {"time":"t","type":"platform.futureThing","record":{"x":[1,2,3]}},
        {"time":"t","type":"platform.report","record":{"requestId":"a","status":"success","metrics":{"durationMs":1.0}}}
    ]"#;
    let mut out = Vec::new();
    let o = parse_batch(body.as_bytes(), &mut out);
    assert_eq!((o.events, o.unknown, o.parse_errors), (3, 1, 0));
    assert_eq!(out.len(), 3);
    let TelemetryEvent::Unknown { event_type, record } = &out[1] else {
        panic!("{:?}", out[1])
    };
    assert_eq!(event_type, "platform.futureThing");
    assert_eq!(record, r#"{"x":[1,2,3]}"#);
}

#[test]
fn malformed_events_do_not_spoil_the_batch() {
    let body = r#"[
        {"time":"t","type":"platform.start","record":{"requestId":"a"}},
        {"no_type":true},
        {"time":"t","type":"platform.report","record":{"requestId":"a"}},
        {"time":"t","type":"platform.start","record":{"requestId":"b"}}
    ]"#;
    let mut out = Vec::new();
    let o = parse_batch(body.as_bytes(), &mut out);
    assert_eq!((o.events, o.unknown, o.parse_errors), (4, 0, 2));
    assert_eq!(
        out.len(),
        3,
        "bad report kept as opaque, envelope-less item dropped"
    );
    assert_eq!(
        out[2],
        TelemetryEvent::Start {
            request_id: "b".into()
        }
    );
}

#[test]
fn body_that_is_not_an_array_is_one_parse_error() {
    let mut out = Vec::new();
    assert_eq!(parse_batch(b"{\"oops\":1}", &mut out).parse_errors, 1);
    assert_eq!(parse_batch(b"", &mut out).parse_errors, 1);
    assert!(out.is_empty());
}

#[test]
fn realistic_batch_fixture_parses_completely() {
    let path = format!(
        "{}/tests/fixtures/telemetry/batch.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let body = std::fs::read(path).unwrap();
    let mut out = Vec::new();
    let outcome = parse_batch(&body, &mut out);
    assert_eq!(
        outcome,
        BatchOutcome {
            events: 80,
            unknown: 0,
            parse_errors: 0
        }
    );
    let count = |f: fn(&TelemetryEvent) -> bool| out.iter().filter(|e| f(e)).count();
    assert_eq!(count(|e| matches!(e, TelemetryEvent::Start { .. })), 12);
    assert_eq!(count(|e| matches!(e, TelemetryEvent::RuntimeDone(_))), 12);
    assert_eq!(count(|e| matches!(e, TelemetryEvent::Report(_))), 12);
    assert_eq!(
        count(|e| matches!(e, TelemetryEvent::FunctionLog { .. })),
        39
    );
    let tracebacks: u64 = out
        .iter()
        .map(|e| match e {
            TelemetryEvent::FunctionLog { stats, .. } => stats.tracebacks,
            _ => 0,
        })
        .sum();
    assert_eq!(tracebacks, 3);
}

#[test]
fn wardens_own_lines_are_recognised_without_unescaping() {
    assert!(is_own_line(
        r#""{\"warden_schema\":1,\"kind\":\"invoke\"}\n""#
    ));
    assert!(is_own_line(r#""[warden] warn something""#));
    assert!(!is_own_line(r#""[warden] one\nother-ext: error two\n""#));
    assert!(!is_own_line(r#""other-ext: [warden] error""#));
    assert!(!is_own_line(r#"{"message":"[warden]"}"#));
    let (own, _) = one(
        r#"{"time":"t","type":"extension","record":"{\"warden_schema\":1,\"kind\":\"invoke\",\"error_lines\":3}\n"}"#,
    );
    assert_eq!(
        own,
        TelemetryEvent::ExtensionLog {
            stats: LogStats::default()
        }
    );
    let (mixed, _) =
        one(r#"{"time":"t","type":"extension","record":"[warden] note\nother-ext: error two\n"}"#);
    let TelemetryEvent::ExtensionLog { stats } = mixed else {
        panic!("{mixed:?}")
    };
    assert_eq!((stats.lines, stats.error_lines), (1, 1));
}

#[test]
fn text_is_borrowed_unless_escaped() {
    let plain: &RawValue = serde_json::from_str(r#""plain text""#).unwrap();
    assert!(matches!(
        text_of(plain).unwrap(),
        Cow::Borrowed("plain text")
    ));
    let escaped: &RawValue = serde_json::from_str(r#""tab\there\u00e9""#).unwrap();
    assert_eq!(text_of(escaped).unwrap(), "tab\there\u{e9}");
    let object: &RawValue = serde_json::from_str(r#"{"a":1}"#).unwrap();
    assert_eq!(text_of(object).unwrap(), r#"{"a":1}"#);
}
