//! Detection end to end: the Warden extension watches a real function in the sandbox. After
//! a warm-up of benign invocations, each attack behaviour must produce a finding of the right
//! class with an explanation and evidence, and benign invocations must produce none.

// Test code: its helpers outside `#[test]` functions stop the test on a failed step too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use warden_sandbox::harness::{bin, draining_listener, Sandbox};
use warden_sandbox::outcome::Outcome;

const WARMUP: usize = 24;

/// An ordinary invocation with a little variety in timing, logging and response size.
fn benign(i: usize) -> Value {
    json!({
        "delay_ms": 20 + (i * 7) % 30,
        "log_lines": i % 3,
        "response_bytes": 200 + (i * 37) % 300,
    })
}

fn run_scenario(events: &[Value]) -> Outcome {
    let function = Sandbox::python_probe()
        .extension("warden", bin("warden-extension"))
        .arg("--host-link");
    Outcome::of(function, events)
}

fn has_explanation(f: &Value) {
    let top = &f["explanation"][0];
    assert!(top["feature"].is_string(), "no explanation: {f:#}");
    assert!(top["contribution"].as_f64().unwrap() > 0.0, "{f:#}");
    assert!(
        !f["evidence"].as_array().unwrap().is_empty(),
        "no evidence: {f:#}"
    );
    assert_eq!(f["actions"], json!([]));
    assert_eq!(f["feature_schema"], 1);
}

fn has_indicator(f: &Value, name: &str) -> bool {
    f["indicators"]
        .as_array()
        .is_some_and(|v| v.contains(&json!(name)))
}

fn evidence_has(f: &Value, kind: &str, field: &str, needle: &str) -> bool {
    f["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["kind"] == kind && e[field].as_str().is_some_and(|v| v.contains(needle)))
}

#[test]
fn attacks_become_explained_findings_and_benign_invocations_do_not() {
    warden_sandbox::skip_without_isolation!();
    let port = draining_listener(std::time::Duration::from_millis(300));
    let mut events: Vec<Value> = (0..WARMUP).map(benign).collect();
    let shell = events.len();
    // Each attack starts 100 ms in, as a handler would after its own start-up work: a
    // process started in the first moments after the thaw can be counted with the previous
    // invocation (docs/features.md).
    events.push(json!({"delay_ms": 100, "spawn": ["sh", "-c", "sleep 0.3"]}));
    events.push(benign(100));
    let dropper = events.len();
    events.push(json!({"delay_ms": 100, "exec_tmp": {"path": "/tmp/.x", "script": "#!/bin/sh\nsleep 0.2\necho ok\n"}}));
    events.push(benign(101));
    let quick = events.len();
    events.push(json!({"delay_ms": 100, "spawn": ["id"]}));
    events.push(benign(105));
    let detached = events.len();
    events.push(json!({"delay_ms": 100, "spawn_detached": ["sleep", "30"]}));
    events.push(benign(102));
    let exfil = events.len();
    events.push(json!({"delay_ms": 100, "send": {"host": "host.sandbox", "port": port, "bytes": 5_000_000}}));
    events.push(benign(103));
    events.push(benign(104));
    let out = run_scenario(&events);
    assert_eq!(out.run.invocations.len(), events.len());

    // A process detached just before the response starts within one clock tick (10 ms) of the
    // runtime's end, so it may be judged the next invocation's (docs/features.md): the
    // invocation after the detach may carry its findings.
    // The detached sleep outlives every later invocation: each is reported as still running.
    let attacks = [shell, dropper, quick, detached, detached + 1, exfil];
    for i in (0..events.len()).filter(|i| !attacks.contains(i)) {
        let unexpected: Vec<&Value> = out
            .findings_of(i)
            .iter()
            .filter(|f| i <= detached + 1 || f["class"] != "persistence")
            .collect();
        assert!(
            unexpected.is_empty(),
            "benign invocation {i} raised {unexpected:#?}"
        );
    }
    let f = out.finding(exfil + 1, "persistence");
    assert!(has_indicator(f, "still_running"), "{f:#}");
    has_explanation(f);

    // A program that lives a millisecond, too short for any sampler tick: named by the exec
    // the file watch saw.
    let record = &out.records[&out.request_id(quick)];
    assert!(
        record["evidence"].as_array().unwrap().iter().any(
            |e| e["kind"] == "program" && e["exe"].as_str().is_some_and(|x| x.ends_with("/id"))
        ),
        "{record:#}"
    );
    assert!(record["programs_run"].as_u64().unwrap() >= 1, "{record:#}");
    let f = out.finding(quick, "command_injection");
    assert!(has_indicator(f, "unknown_binary"), "{f:#}");
    has_explanation(f);

    // A shell: reported in real time, before the invocation ended. What runs first may be
    // judged first (the `sleep` it runs is an unknown program too), so look for the finding
    // that names the shell.
    let f = out
        .findings_of(shell)
        .iter()
        .find(|f| f["class"] == "command_injection" && has_indicator(f, "shell_spawned"))
        .unwrap_or_else(|| panic!("no shell finding: {:#?}", out.findings_of(shell)));
    has_explanation(f);
    assert_eq!(f["realtime"], true);
    // dash runs the last command of `-c` in its own process (it execs `sleep`): caught in that
    // exec, the process shows dash's executable and no command line yet.
    assert!(
        evidence_has(f, "program", "exe", "/dash")
            || evidence_has(f, "program", "exe", "/sh")
            || evidence_has(f, "process", "exe", "/dash")
            || evidence_has(f, "process", "cmdline", "sleep 0.3"),
        "{f:#}"
    );
    let record = &out.records[&out.request_id(shell)];
    let ended = record["start_unix_ms"].as_f64().unwrap() + record["duration_ms"].as_f64().unwrap();
    let seen = f["time_unix_ms"].as_f64().unwrap();
    assert!(
        seen < ended,
        "finding at {seen}, invocation ended at {ended}"
    );

    // A script written to /tmp and run.
    let f = out.finding(dropper, "dropper");
    has_explanation(f);
    // Named by the sampler with its command line, or, when it was gone before a tick, by the
    // file watch (the exec opened it).
    assert!(
        evidence_has(f, "process", "cmdline", "/tmp/.x")
            || evidence_has(f, "program", "exe", "/tmp/.x"),
        "{f:#}"
    );

    // A detached process still running when the invocation ended: found in that invocation
    // or, when it started within a tick of the end, in the next one (left running there too).
    let persistence: Vec<&Value> = [detached, detached + 1]
        .iter()
        .flat_map(|&i| out.findings_of(i))
        .filter(|f| f["class"] == "persistence")
        .collect();
    let f = persistence.first().unwrap_or_else(|| {
        panic!(
            "no persistence finding for the detached sleep: {:#?} / {:#?}",
            out.findings_of(detached),
            out.findings_of(detached + 1)
        )
    });
    has_explanation(f);
    assert!(evidence_has(f, "process", "exe", "sleep"), "{f:#}");

    // 5 MB to a destination the function never used: found when the record is scored.
    let f = out.finding(exfil, "exfiltration_egress");
    has_explanation(f);
    assert_eq!(f["realtime"], false);
    assert_eq!(f["explanation"][0]["feature"], "net_tx_bytes");
    assert!(f["explanation"][0]["normal"].is_array(), "{f:#}");
    assert!(
        evidence_has(f, "endpoint", "addr", &format!(":{port}")),
        "{f:#}"
    );
}
