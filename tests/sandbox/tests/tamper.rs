//! Tampering with Warden's telemetry channel from inside the function, as an attacker's code
//! would: find the listener among the listening sockets, POST forged platform events for
//! this invocation and for made-up ones, then hold connections open and send an oversized
//! body. Each attempt must be refused or reported as tampering, the attack that follows must
//! still be found, no invocation may fail, and Warden's memory must stay small.

// Test code: its helpers outside `#[test]` functions stop the test on a failed step too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use warden_sandbox::harness::{bin, repo_root, Sandbox};
use warden_sandbox::outcome::Outcome;

/// Warden's resident memory must stay under this (it is a few MiB normally).
const MAX_WARDEN_RSS_KB: i64 = 64 * 1024;

fn benign(i: usize) -> Value {
    json!({"delay_ms": 20 + (i * 7) % 30, "log_lines": i % 3, "response_bytes": 200 + (i * 37) % 300})
}

fn run_scenario(events: &[Value]) -> Outcome {
    run_function(Sandbox::python_probe(), events)
}

fn run_function(function: Sandbox, events: &[Value]) -> Outcome {
    Outcome::of(
        function.extension("warden", bin("warden-extension")),
        events,
    )
}

fn is_tamper(f: &Value) -> bool {
    f["class"] == "tamper"
        || f["indicators"]
            .as_array()
            .is_some_and(|v| v.contains(&json!("tamper")))
}

/// Every answer a port gave, for every path tried.
fn answers(ports: &Value) -> Vec<Value> {
    ports
        .as_object()
        .unwrap()
        .values()
        .flat_map(|paths| paths.as_object().unwrap().values().cloned())
        .collect()
}

#[test]
fn forged_and_exhausting_telemetry_is_refused_reported_and_the_attack_still_found() {
    warden_sandbox::skip_without_isolation!();
    let mut events: Vec<Value> = (0..6).map(benign).collect();
    let forge = events.len();
    // Forged runtimeDone (an error) for this invocation and whole made-up invocations, then
    // the attack it was meant to hide: a payload run from /tmp.
    events.push(json!({
        "delay_ms": 50,
        "forge_telemetry": {"fake_ids": 3},
        "exec_tmp": {"path": "/tmp/.p", "script": "#!/bin/sh\nsleep 0.2\necho ok\n"},
    }));
    events.push(benign(100));
    let flood = events.len();
    // Slow and idle connections and a 16 MiB body, then a reconnaissance command.
    events.push(json!({
        "delay_ms": 50,
        "flood_telemetry": {"connections": 40, "body_bytes": 16 * 1024 * 1024, "hold_ms": 2500},
        "spawn": ["sh", "-c", "id; sleep 0.2"],
    }));
    for i in 0..4 {
        events.push(benign(200 + i));
    }
    let out = run_scenario(&events);
    assert_eq!(out.run.invocations.len(), events.len());
    assert!(
        out.run.statuses().iter().all(|s| s == "success"),
        "{:?}",
        out.run.statuses()
    );

    // The function found Warden's listener and was refused on every path it tried.
    let forged = &out.response(forge)["forge_telemetry"];
    let tried = answers(&forged["ports"]);
    assert!(tried.contains(&json!(404)), "{forged:#}");
    assert!(!tried.contains(&json!(200)), "{forged:#}");
    // Reported as tampering while the invocation ran, and the payload still found.
    out.has(
        forge,
        |f| is_tamper(f) && f["realtime"] == true,
        "real-time tamper finding",
    );
    out.has(forge, |f| f["class"] == "dropper", "dropper finding");
    // The forged error and the made-up invocations left no trace in the records.
    let record = &out.records[&out.request_id(forge)];
    assert_eq!(record["status"], "success", "{record:#}");
    assert!(
        out.records.keys().all(|id| !id.starts_with("forged-")),
        "records for made-up ids: {:?}",
        out.records.keys()
    );

    // The flood: the server closed what it held, the big body was not taken, and the
    // attack after it is found.
    let flooded = &out.response(flood)["flood_telemetry"];
    assert!(flooded["opened"].as_u64().unwrap() > 0, "{flooded:#}");
    assert!(
        flooded["closed_by_server"].as_u64().unwrap() > 0,
        "slow and idle connections are closed: {flooded:#}"
    );
    let oversized: Vec<&Value> = flooded["oversized"].as_object().unwrap().values().collect();
    assert!(!oversized.contains(&&json!(200)), "{flooded:#}");
    out.has(
        flood,
        |f| f["class"] == "command_injection",
        "command injection finding",
    );

    // Benign invocations, before and after, raise nothing: the race between a thaw's
    // platform.start and its INVOKE is not mistaken for tampering.
    for i in (0..events.len()).filter(|i| ![forge, forge + 1, flood, flood + 1].contains(i)) {
        assert!(
            out.findings_of(i).is_empty(),
            "benign invocation {i} raised {:#?}",
            out.findings_of(i)
        );
    }

    let health = out.health();
    eprintln!("forge: {forged}\nflood: {flooded}");
    for name in [
        "telemetry_rejected_total",
        "telemetry_tamper_total",
        "telemetry_connections_closed_total",
        "telemetry_connections_replaced_total",
        "telemetry_too_large_total",
        "telemetry_over_budget_total",
    ] {
        eprintln!("{name} = {}", health[name]);
    }
    assert!(
        health["telemetry_rejected_total"].as_u64().unwrap() >= 3,
        "{health:#}"
    );
    assert!(
        health["telemetry_connections_closed_total"]
            .as_u64()
            .unwrap()
            >= 1,
        "{health:#}"
    );
    let peak = out
        .records
        .values()
        .filter_map(|r| r["warden_rss_kb"].as_i64())
        .max()
        .unwrap();
    eprintln!("Warden's largest resident memory at a record's end: {peak} KiB");
    assert!(peak < MAX_WARDEN_RSS_KB, "{peak} KiB");
}

#[test]
fn stopping_warden_while_the_function_works_is_tamper_and_the_attack_still_found() {
    warden_sandbox::skip_without_isolation!();
    let mut events: Vec<Value> = (0..6).map(benign).collect();
    let stop = events.len();
    // Warden stopped for 1.5 s while a reconnaissance command runs: to Warden, a gap like a
    // freeze, except that the runtime was still working.
    events.push(json!({
        "delay_ms": 50,
        "stop_extension": {"during": ["sh", "-c", "id; uname -a"], "ms": 1500},
    }));
    for i in 0..3 {
        events.push(benign(300 + i));
    }
    let out = run_scenario(&events);
    assert!(
        out.run.statuses().iter().all(|s| s == "success"),
        "{:?}",
        out.run.statuses()
    );
    let stopped = &out.response(stop)["stop_extension"];
    assert!(
        !stopped["stopped"].as_array().unwrap().is_empty(),
        "{stopped:#}"
    );
    out.has(
        stop,
        |f| {
            is_tamper(f)
                && f["evidence"]
                    .as_array()
                    .is_some_and(|e| e.iter().any(|o| o["what"] == "stopped"))
        },
        "tamper finding naming the stop",
    );
    // The command run while Warden was stopped is still found (the file watch's events
    // wait in the kernel), in this invocation or, at worst, the next.
    let found = |i: usize| {
        out.findings_of(i)
            .iter()
            .any(|f| f["class"] == "command_injection")
    };
    assert!(
        found(stop) || found(stop + 1),
        "no command injection finding: {:#?}\n{:#?}",
        out.findings_of(stop),
        out.findings_of(stop + 1)
    );
    // Invocations before it raise nothing: a freeze is not a stop.
    for i in 0..stop {
        assert!(
            out.findings_of(i).is_empty(),
            "benign invocation {i} raised {:#?}",
            out.findings_of(i)
        );
    }
}

#[test]
fn forged_telemetry_from_a_node_function_is_refused_and_reported() {
    warden_sandbox::skip_without_isolation!();
    let node = Sandbox::bootstrap(repo_root().join("tests/functions/node-tamper/bootstrap"));
    let mut events: Vec<Value> = (0..6).map(|i| json!({"delay_ms": 20 + i * 5})).collect();
    let forge = events.len();
    events.push(json!({
        "forge_telemetry": {"fake_ids": 2},
        "spawn": ["sh", "-c", "id; sleep 0.2"],
    }));
    for i in 0..3 {
        events.push(json!({"delay_ms": 30 + i * 5}));
    }
    let out = run_function(node, &events);
    out.assert_all_succeeded();
    let forged = &out.response(forge)["forge_telemetry"];
    let answers: Vec<&Value> = forged["ports"].as_object().unwrap().values().collect();
    assert!(answers.contains(&&json!(404)), "{forged:#}");
    assert!(!answers.contains(&&json!(200)), "{forged:#}");
    out.has(
        forge,
        |f| is_tamper(f) && f["realtime"] == true,
        "real-time tamper finding",
    );
    let found = |i: usize| {
        out.findings_of(i)
            .iter()
            .any(|f| f["class"] == "command_injection")
    };
    assert!(
        found(forge) || found(forge + 1),
        "no command injection finding: {:#?}",
        out.findings_of(forge)
    );
    assert_eq!(out.records[&out.request_id(forge)]["status"], "success");
    assert!(out.records.keys().all(|id| !id.starts_with("forged-")));
    for i in 0..forge {
        assert!(
            out.findings_of(i).is_empty(),
            "benign invocation {i} raised {:#?}",
            out.findings_of(i)
        );
    }
}
