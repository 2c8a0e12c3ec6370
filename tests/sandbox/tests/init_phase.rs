//! The init phase is judged like an invocation: what the function's code starts before the
//! first event (an import-time side effect of a dependency) is found with the init record,
//! and what it leaves running is named at every invocation. The runtime itself, however it
//! is started (a `bootstrap` script that runs its interpreter without `exec`), is not.

// Test code: its helpers outside `#[test]` functions stop the test on a failed step too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use warden_sandbox::harness::{bin, repo_root, Sandbox};
use warden_sandbox::outcome::Outcome;

fn quiet(i: usize) -> Value {
    json!({"delay_ms": 20 + i * 5})
}

fn indicators(f: &Value) -> Vec<&str> {
    f["indicators"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

#[test]
fn a_payload_planted_at_init_is_found_and_named_while_it_runs() {
    warden_sandbox::skip_without_isolation!();
    // At import: a copy of a program dropped in /tmp and started in the background, left to
    // run (a miner would; this one sleeps).
    let plant = json!({
        "spawn_detached": ["sh", "-c", "cp /bin/sleep /tmp/kworker && exec /tmp/kworker 60"],
        "sleep_ms": 100,
    });
    let function = Sandbox::python_probe()
        .extension("warden", bin("warden-extension"))
        .env("PROBE_INIT", &plant.to_string());
    let events: Vec<Value> = (0..3).map(quiet).collect();
    let out = Outcome::of(function, &events);
    out.assert_all_succeeded();

    let init = out.init_findings();
    let planted = init
        .iter()
        .find(|f| indicators(f).contains(&"exec_from_tmp"))
        .unwrap_or_else(|| panic!("no init finding: {init:#?}\nstdout:\n{}", out.run.stdout));
    assert_eq!(planted["class"], "persistence", "{planted:#}");
    assert!(
        planted.get("request_id").is_none_or(Value::is_null),
        "{planted:#}"
    );
    assert!(
        ["high", "critical"].contains(&planted["severity"].as_str().unwrap()),
        "{planted:#}"
    );
    assert!(indicators(planted).contains(&"left_running"), "{planted:#}");
    let named = planted["evidence"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["exe"] == "/tmp/kworker");
    assert!(named, "{planted:#}");

    // It keeps running: every invocation says so, from the first.
    for i in 0..events.len() {
        out.has(
            i,
            |f| f["class"] == "persistence" && indicators(f).contains(&"still_running"),
            "still-running finding",
        );
    }
}

#[test]
fn a_runtime_started_by_a_shell_bootstrap_is_the_runtime() {
    warden_sandbox::skip_without_isolation!();
    // A custom runtime whose bootstrap runs Node.js without `exec`, as many do: the shell
    // stays, node is its child and serves the Runtime API loop.
    // The loop's script goes in the function's code (the repository may not be visible
    // inside the sandbox).
    let dir = tempfile::tempdir().unwrap();
    let bootstrap = dir.path().join("bootstrap");
    std::fs::copy(
        repo_root().join("tests/functions/node-tamper/bootstrap"),
        dir.path().join("runtime.js"),
    )
    .unwrap();
    std::fs::write(
        &bootstrap,
        "#!/bin/sh\ncd \"$LAMBDA_TASK_ROOT\"\n/usr/bin/node runtime.js\n",
    )
    .unwrap();
    let mut perms = std::fs::metadata(&bootstrap).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&bootstrap, perms).unwrap();

    let function = Sandbox::provided(dir.path()).extension("warden", bin("warden-extension"));
    let events: Vec<Value> = (0..5).map(quiet).collect();
    let out = Outcome::of(function, &events);
    out.assert_all_succeeded();
    let all: Vec<&Value> = out.findings.values().flatten().collect();
    assert!(
        all.is_empty(),
        "findings: {all:#?}\nstdout:\n{}",
        out.run.stdout
    );
    for (id, r) in &out.records {
        assert_eq!(r["persisting_processes"], 0, "{id}: {r:#}");
    }
    assert_eq!(out.records.len(), events.len());
}
