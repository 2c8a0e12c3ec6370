//! Conformance of the sandbox, driven by clients nobody here wrote: AWS's `awslambdaric` as the
//! Python runtime, `lambda_runtime` for the Rust function, and the `lambda-extension` crate in
//! the reference extension.

use std::io::Read;
use std::net::TcpListener;

use serde_json::{json, Value};
use warden_sandbox::harness::{repo_root, Run, Sandbox};

fn of_type<'a>(records: &'a [Value], t: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["type"] == t).collect()
}

fn position(records: &[Value], t: &str, request_id: &str) -> usize {
    records
        .iter()
        .position(|r| r["type"] == t && r["record"]["requestId"] == request_id)
        .unwrap_or_else(|| panic!("no {t} for {request_id}"))
}

#[test]
fn cold_start_then_warm_invokes_with_documented_telemetry() {
    let run = Sandbox::python_probe().reference_extension("ref").run(&[
        json!({"log_lines": 2}),
        json!({"error_lines": 1}),
        json!({}),
    ]);
    run.assert_ok();
    assert_eq!(run.statuses(), ["success", "success", "success"]);
    let inv = &run.invocations;
    assert_eq!(inv[0]["cold"], true);
    assert!(inv[0]["init_ms"].as_f64().unwrap() > 0.0);
    assert_eq!(inv[1]["cold"], false);
    assert!(inv[1].get("init_ms").is_none());
    // Warm invokes reach the same runtime process.
    assert_eq!(inv[0]["response"]["pid"], inv[2]["response"]["pid"]);

    let t = run.telemetry("ref");
    for kind in [
        "platform.initStart",
        "platform.initRuntimeDone",
        "platform.initReport",
        "platform.telemetrySubscription",
        "platform.extension",
    ] {
        assert_eq!(of_type(&t, kind).len(), 1, "{kind} once in {t:#?}");
    }
    let init_start = &of_type(&t, "platform.initStart")[0]["record"];
    assert_eq!(init_start["initializationType"], "on-demand");
    assert_eq!(init_start["phase"], "init");
    assert_eq!(
        of_type(&t, "platform.initReport")[0]["record"]["status"],
        "success"
    );
    assert!(
        of_type(&t, "platform.initReport")[0]["record"]["metrics"]["durationMs"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    assert_eq!(
        of_type(&t, "platform.extension")[0]["record"]["name"],
        "ref"
    );
    assert_eq!(
        of_type(&t, "platform.telemetrySubscription")[0]["record"]["state"],
        "Subscribed"
    );

    for (i, invocation) in inv.iter().enumerate() {
        let id = invocation["request_id"].as_str().unwrap();
        let start = position(&t, "platform.start", id);
        let done = position(&t, "platform.runtimeDone", id);
        let report = position(&t, "platform.report", id);
        assert!(start < done && done < report, "order of invocation {i}");
        // What the handler printed sits between its start and its runtimeDone, even when it
        // prints at once: an extension that keys text logs by the last start relies on it.
        let printed = t[start..done]
            .iter()
            .filter(|r| r["type"] == "function")
            .count();
        assert_eq!(printed, [2, 1, 0][i], "log lines of invocation {i}: {t:#?}");
        let done = &t[done]["record"];
        assert_eq!(done["status"], "success");
        assert!(done["metrics"]["producedBytes"].as_u64().unwrap() > 0);
        assert!(done["spans"].as_array().is_some_and(|s| !s.is_empty()));
        let metrics = &t[report]["record"]["metrics"];
        assert_eq!(metrics["memorySizeMB"], 128);
        assert!(metrics["maxMemoryUsedMB"].as_u64().unwrap() > 0);
        assert!(metrics["billedDurationMs"].as_u64().unwrap() >= 1);
        assert_eq!(
            metrics.get("initDurationMs").is_some(),
            i == 0,
            "initDurationMs only on the cold start"
        );
    }
    let logs: Vec<&str> = of_type(&t, "function")
        .iter()
        .filter_map(|r| r["record"].as_str())
        .collect();
    assert!(
        logs.iter().any(|l| l.starts_with("ERROR")),
        "function logs: {logs:?}"
    );
    // Function output also reaches the sandbox's own streams, as it would reach CloudWatch Logs.
    assert!(run.stderr.contains("ERROR"));
    let events = run.events("ref");
    assert_eq!(
        events.iter().filter(|e| e["eventType"] == "INVOKE").count(),
        3
    );
    let last = events.last().unwrap();
    assert_eq!(last["eventType"], "SHUTDOWN");
    assert_eq!(last["shutdownReason"], "spindown");
}

#[test]
fn rust_function_on_lambda_runtime_runs_warm() {
    let run = Sandbox::rust_probe().reference_extension("ref").run(&[
        json!({"env": ["AWS_LAMBDA_FUNCTION_NAME", "LAMBDA_TASK_ROOT"]}),
        json!({"fail": "nope"}),
        json!({}),
    ]);
    run.assert_ok();
    assert_eq!(run.statuses(), ["success", "error", "success"]);
    let env = &run.invocations[0]["response"]["env"];
    assert_eq!(env["AWS_LAMBDA_FUNCTION_NAME"], "function");
    assert_eq!(run.invocations[1]["error"]["errorType"], "ProbeError");
    assert_eq!(
        run.invocations[0]["response"]["pid"],
        run.invocations[2]["response"]["pid"]
    );
    let t = run.telemetry("ref");
    let id = run.invocations[1]["request_id"].as_str().unwrap();
    assert_eq!(
        t[position(&t, "platform.runtimeDone", id)]["record"]["status"],
        "error"
    );
}

/// A wrapper script in the shared directory that records its arguments, marks the
/// environment and runs the rest of its command line, as a layer's exec wrapper does.
// Test setup: a failed step stops the test.
#[allow(clippy::unwrap_used)]
fn recording_wrapper(sandbox: &Sandbox) -> (String, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let wrapper = sandbox.shared().join("wrapper");
    let args = sandbox.shared().join("wrapper-args");
    let script = format!(
        "#!/bin/sh\nprintf '%s\\n' \"$@\" > '{}'\nexport WRAPPED_BY_WRAPPER=yes\nexec \"$@\"\n",
        args.display()
    );
    std::fs::write(&wrapper, script).unwrap();
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    (wrapper.to_string_lossy().into_owned(), args)
}

#[test]
fn the_python_runtime_starts_through_aws_lambda_exec_wrapper() {
    let sandbox = Sandbox::python_probe();
    let (wrapper, args_file) = recording_wrapper(&sandbox);
    let run = sandbox
        .env("AWS_LAMBDA_EXEC_WRAPPER", &wrapper)
        .run(&[json!({"env": ["WRAPPED_BY_WRAPPER"]}), json!({})]);
    run.assert_ok();
    assert_eq!(run.statuses(), ["success", "success"]);
    // The runtime is the wrapper's child process image: it sees what the wrapper exported.
    assert_eq!(
        run.invocations[0]["response"]["env"]["WRAPPED_BY_WRAPPER"],
        "yes"
    );
    // The wrapper was given the runtime's whole command: interpreter, then its arguments.
    let args = std::fs::read_to_string(&args_file).unwrap();
    let args: Vec<&str> = args.lines().collect();
    assert_eq!(
        args[1..],
        ["-m", "awslambdaric", "handler.handler"],
        "{args:?}"
    );
    assert!(args[0].contains("python"), "interpreter first: {args:?}");
}

#[test]
fn an_os_only_runtime_ignores_aws_lambda_exec_wrapper() {
    let sandbox = Sandbox::rust_probe();
    let (wrapper, args_file) = recording_wrapper(&sandbox);
    let run = sandbox
        .env("AWS_LAMBDA_EXEC_WRAPPER", &wrapper)
        .run(&[json!({"env": ["WRAPPED_BY_WRAPPER"]})]);
    run.assert_ok();
    assert_eq!(run.statuses(), ["success"]);
    assert!(run.invocations[0]["response"]["env"]["WRAPPED_BY_WRAPPER"].is_null());
    assert!(
        !args_file.exists(),
        "the wrapper ran for a provided runtime"
    );
}

#[test]
fn processes_make_no_progress_while_frozen() {
    let run = Sandbox::python_probe().arg("--pause-ms").arg("1000").run(&[
        json!({"bg_start": true}),
        json!({"sleep_ms": 300, "bg_read": true}),
        json!({"bg_read": true}),
    ]);
    run.assert_ok();
    let before = run.invocations[1]["response"]["bg_count"].as_u64().unwrap();
    let after = run.invocations[2]["response"]["bg_count"].as_u64().unwrap();
    // The thread ticks every 10 ms: it runs during the 300 ms invoke, while each 1 s frozen
    // pause would add about 100 ticks if the sandbox did not freeze it.
    assert!(
        before >= 5,
        "the background thread ran during the invoke: {before}"
    );
    assert!(before < 80, "frozen during the first pause: {before}");
    assert!(
        after - before < 30,
        "frozen during the second pause: {before} -> {after}"
    );
}

#[test]
fn timeout_resets_the_environment_and_reinitialises() {
    let run = Sandbox::python_probe()
        .reference_extension("ref")
        .arg("--timeout-s")
        .arg("1")
        .run(&[json!({}), json!({"sleep_ms": 5000}), json!({})]);
    run.assert_ok();
    assert_eq!(run.statuses(), ["success", "timeout", "success"]);
    assert_eq!(run.invocations[1]["error"]["errorType"], "Sandbox.Timedout");
    assert_eq!(
        run.invocations[2]["cold"], true,
        "fresh init after the timeout"
    );
    assert_ne!(
        run.invocations[0]["response"]["pid"],
        run.invocations[2]["response"]["pid"]
    );
    let events = run.events("ref");
    assert!(
        events
            .iter()
            .any(|e| e["eventType"] == "SHUTDOWN" && e["shutdownReason"] == "timeout"),
        "{events:?}"
    );
    let t = run.telemetry("ref");
    let id = run.invocations[1]["request_id"].as_str().unwrap();
    assert_eq!(
        t[position(&t, "platform.runtimeDone", id)]["record"]["status"],
        "timeout"
    );
    assert_eq!(of_type(&t, "platform.initStart").len(), 2);
}

#[test]
fn runtime_crash_resets_the_environment() {
    let run = Sandbox::rust_probe()
        .reference_extension("ref")
        .run(&[json!({"crash": true}), json!({})]);
    run.assert_ok();
    assert_eq!(run.statuses(), ["crash", "success"]);
    assert_eq!(
        run.invocations[0]["error"]["errorType"],
        "Runtime.ExitError"
    );
    assert_eq!(run.invocations[1]["cold"], true);
    let events = run.events("ref");
    assert!(events
        .iter()
        .any(|e| e["eventType"] == "SHUTDOWN" && e["shutdownReason"] == "failure"));
}

#[test]
fn extension_exit_error_mid_invoke_is_an_extension_crash() {
    let run = Sandbox::python_probe()
        .reference_extension("ref")
        .env("REFERENCE_EXTENSION_EXIT_ERROR_ON", "2")
        .run(&[json!({}), json!({}), json!({})]);
    run.assert_ok();
    assert_eq!(run.statuses(), ["success", "crash", "success"]);
    assert_eq!(run.invocations[1]["error"]["errorType"], "Extension.Crash");
    assert_eq!(
        run.invocations[2]["cold"], true,
        "re-init after the extension crash"
    );
}

#[test]
fn shutdown_deadline_is_enforced() {
    let sandbox = Sandbox::python_probe().scripted_extension();
    let run = sandbox
        .env("SCRIPTED_IGNORE_SHUTDOWN", "1")
        .run(&[json!({})]);
    run.assert_ok();
    let lines = run.shared_lines("scripted.jsonl");
    let shutdown = lines
        .iter()
        .find(|l| l["kind"] == "event" && l["event"]["eventType"] == "SHUTDOWN")
        .expect("SHUTDOWN reached the extension");
    let deadline = shutdown["event"]["deadlineMs"].as_u64().unwrap();
    let received = shutdown["at_ms"].as_u64().unwrap();
    assert!(
        deadline > received && deadline - received <= 2_000,
        "deadline {deadline} vs now {received}"
    );
    assert!(
        !lines.iter().any(|l| l["kind"] == "survived"),
        "the straggler was killed at the deadline"
    );
}

#[test]
fn extension_init_error_fails_the_init_and_the_next_invoke_retries_it() {
    let sandbox = Sandbox::python_probe().scripted_extension();
    let run = sandbox
        .env("SCRIPTED_INIT_ERROR", "1")
        .run(&[json!({}), json!({})]);
    run.assert_ok();
    assert_eq!(run.statuses(), ["crash", "crash"]);
    assert_eq!(
        run.invocations[0]["error"]["errorType"],
        "Extension.ConfigInvalid"
    );
    let inits = run
        .shared_lines("scripted.jsonl")
        .into_iter()
        .filter(|l| l["kind"] == "init_error")
        .count();
    assert_eq!(inits, 2, "each invoke retried the init");
}

#[test]
fn telemetry_subscription_limits_are_validated() {
    let bad = |body: Value| -> Run {
        let sandbox = Sandbox::python_probe().scripted_extension();
        sandbox
            .env("SCRIPTED_SUBSCRIBE", &body.to_string())
            .run(&[json!({})])
    };
    let status = |run: &Run| {
        run.shared_lines("scripted.jsonl")
            .iter()
            .find(|l| l["kind"] == "subscribe")
            .map(|l| l["status"].as_u64().unwrap())
    };
    let low_timeout = bad(
        json!({"schemaVersion": "2022-12-13", "types": ["platform"], "buffering": {"timeoutMs": 10}}),
    );
    assert_eq!(status(&low_timeout), Some(400));
    let big_items = bad(
        json!({"schemaVersion": "2025-01-29", "types": ["platform"], "buffering": {"maxItems": 20000}}),
    );
    assert_eq!(status(&big_items), Some(400));
    let ok = bad(
        json!({"schemaVersion": "2025-01-29", "types": ["platform"], "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25}}),
    );
    assert_eq!(status(&ok), Some(200));
    let lines = ok.shared_lines("scripted.jsonl");
    assert!(
        lines.iter().any(|l| l["type"] == "platform.report"),
        "2025-01-29 subscriber got reports"
    );
}

#[test]
fn lagging_subscriber_loses_logs_and_is_told() {
    let sandbox = Sandbox::python_probe().scripted_extension();
    let subscribe = json!({"schemaVersion": "2022-12-13", "types": ["platform", "function"], "buffering": {"maxItems": 1000, "maxBytes": 262144, "timeoutMs": 25}});
    // ~2 MB of log lines while every delivery fails: more than the subscriber's backlog holds.
    let run = sandbox
        .env("SCRIPTED_SUBSCRIBE", &subscribe.to_string())
        .env("SCRIPTED_REJECT_FIRST", "6")
        .arg("--quiet")
        .arg("--timeout-s")
        .arg("10")
        .run(&[
            json!({"log_lines": 20000}),
            json!({"sleep_ms": 3000}),
            json!({}),
        ]);
    run.assert_ok();
    let lines = run.shared_lines("scripted.jsonl");
    let dropped: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "platform.logsDropped")
        .collect();
    assert!(!dropped.is_empty(), "platform.logsDropped delivered");
    assert!(dropped[0]["record"]["droppedRecords"].as_u64().unwrap() > 0);
    assert!(dropped[0]["record"]["droppedBytes"].as_u64().unwrap() > 0);
}

#[test]
fn namespaces_hide_the_host_and_count_only_sandbox_traffic() {
    if !warden_sandbox::isolation::available() {
        eprintln!("isolation needs root; skipping");
        return;
    }
    let run = Sandbox::python_probe().run(&[
        json!({"list_pids": true}),
        json!({"snmp_connect": {"host": "127.0.0.1", "port": 9001}}),
    ]);
    run.assert_ok();
    assert_eq!(run.summary["isolated"], true);
    let pids: Vec<u64> = run.invocations[0]["response"]["pids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pid"].as_u64().unwrap())
        .collect();
    assert!(pids.contains(&1), "PID 1 is the sandbox's init: {pids:?}");
    assert!(
        !pids.contains(&u64::from(std::process::id())),
        "the test process is not visible inside"
    );
    assert!(pids.len() <= 4, "only sandbox processes: {pids:?}");
    assert_eq!(run.invocations[1]["response"]["active_opens_delta"], 1);
}

#[test]
fn host_link_reaches_a_listener_on_the_host() {
    if !warden_sandbox::isolation::available() {
        eprintln!("isolation needs root; skipping");
        return;
    }
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::thread::spawn(move || {
        let mut bytes = 0;
        for _ in 0..2 {
            let (mut s, _) = listener.accept().unwrap();
            let mut buf = Vec::new();
            bytes += s.read_to_end(&mut buf).unwrap_or(0);
        }
        bytes
    });
    let run = Sandbox::python_probe().arg("--host-link").run(&[json!({
        "env": ["SANDBOX_HOST_IP"],
        "connect": {"host": "host.sandbox", "port": port, "count": 1},
        "send": {"host": "host.sandbox", "port": port, "bytes": 50000},
    })]);
    run.assert_ok();
    let response = &run.invocations[0]["response"];
    assert!(response["env"]["SANDBOX_HOST_IP"]
        .as_str()
        .unwrap()
        .starts_with("10.213."));
    assert_eq!(response["connect"]["connected"], 1, "{response}");
    assert_eq!(accepted.join().unwrap(), 50000);
}

#[test]
fn host_forward_reaches_a_loopback_only_server() {
    if !warden_sandbox::isolation::available() {
        eprintln!("isolation needs root; skipping");
        return;
    }
    // Like a local AWS API server: listening on the host's 127.0.0.1 only.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = std::thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).unwrap_or(0)
    });
    let run = Sandbox::python_probe()
        .arg("--host-link")
        .arg("--host-forward")
        .arg(&port.to_string())
        .run(&[json!({"send": {"host": "host.sandbox", "port": port, "bytes": 1234}})]);
    run.assert_ok();
    assert_eq!(received.join().unwrap(), 1234);
}

#[test]
fn bad_input_gets_a_clear_error() {
    let dir = warden_sandbox::harness::scratch();
    std::fs::write(dir.path().join("e.jsonl"), "{}\n").unwrap();
    let out = std::process::Command::new(warden_sandbox::harness::bin("warden-sandbox"))
        .args(["run", "--function"])
        .arg(repo_root().join("tests/functions/python-probe"))
        .args(["--handler", "missing.handler", "--events"])
        .arg(dir.path().join("e.jsonl"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("missing.py"));

    let run = Sandbox::python_probe().run_lines(&["{}".into(), "{not json".into(), "{}".into()]);
    run.assert_ok();
    assert_eq!(run.statuses(), ["success", "error", "success"]);
    assert_eq!(
        run.invocations[1]["error"]["errorType"],
        "InvalidRequestContentException"
    );
}
