//! Responses end to end: the Warden extension watches the probe function in the sandbox with
//! a response policy, and each action must have its observable effect — a reverse shell dies
//! during the invocation (or, in dry run, does not), a recycle leaves the next invocation in a
//! fresh environment without the dropped file, a throttle sets the function's reserved
//! concurrency to 0 on a local AWS API server (moto).

// Test code: its helpers outside `#[test]` functions stop the test on a failed step too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Read;
use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use warden_sandbox::harness::{bin, Run, Sandbox};
use warden_sandbox::moto::MotoServer;

/// How long the probe waits for its reverse shell to end.
const SHELL_WAIT_MS: u64 = 2500;

fn isolated() -> bool {
    let ok = warden_sandbox::isolation::available();
    if !ok {
        eprintln!("needs root for the sandbox's namespaces and host link; skipping");
    }
    ok
}

/// A host listener for one reverse shell: accepts, sends nothing, and reports how long the
/// connection stayed open (until EOF, i.e. the shell's end).
fn c2_listener() -> (u16, mpsc::Receiver<Duration>) {
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let accepted = Instant::now();
            let mut buf = [0u8; 4096];
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
            let _ = tx.send(accepted.elapsed());
        }
    });
    (port, rx)
}

fn warden(sandbox: Sandbox, policy: &str) -> Sandbox {
    sandbox
        .extension("warden", bin("warden-extension"))
        .env("WARDEN_MODEL", "none")
        .env("WARDEN_RESPONSE", policy)
        .arg("--timeout-s")
        .arg("10")
}

fn shell_attack(port: u16) -> Value {
    // 100 ms in, as a handler would after its own start-up work (docs/features.md).
    json!({"delay_ms": 100, "reverse_shell": {"host": "host.sandbox", "port": port, "wait_ms": SHELL_WAIT_MS}})
}

/// The findings of invocation `index`.
fn findings_of(run: &Run, index: usize) -> Vec<Value> {
    let id = &run.invocations[index]["request_id"];
    run.stdout_json_with("warden_finding")
        .into_iter()
        .filter(|f| &f["request_id"] == id)
        .collect()
}

/// Every audit entry of invocation `index`'s findings for `action`.
fn actions_of(run: &Run, index: usize, action: &str) -> Vec<Value> {
    findings_of(run, index)
        .iter()
        .flat_map(|f| f["actions"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["action"] == action)
        .collect()
}

fn context(run: &Run) -> String {
    // The sandbox's and Warden's own lines first: they say why, and come out whole when a
    // long message is cut.
    format!(
        "stderr:\n{}\nreport: {:#?}\nstdout:\n{}",
        run.stderr, run.invocations, run.stdout
    )
}

#[test]
fn kill_stops_a_reverse_shell_before_the_invocation_ends() {
    if !isolated() {
        return;
    }
    let (port, closed) = c2_listener();
    let run = warden(Sandbox::python_probe(), "low=kill")
        .env("WARDEN_RECORDS", "1")
        .arg("--host-link")
        .run(&[json!({}), shell_attack(port), json!({})]);
    run.assert_ok();
    let ctx = context(&run);
    assert_eq!(run.statuses(), ["success", "success", "success"], "{ctx}");
    let shell = &run.invocations[1]["response"]["reverse_shell"];
    assert_eq!(
        shell["running"], false,
        "the shell outlived the wait: {ctx}"
    );
    assert_eq!(shell["signal"], 9, "{ctx}");
    let open = closed
        .recv_timeout(Duration::from_secs(5))
        .expect("the listener never saw the connection close");
    assert!(
        open < Duration::from_millis(SHELL_WAIT_MS),
        "connection open for {open:?}"
    );
    let kills = actions_of(&run, 1, "kill");
    let taken = kills
        .iter()
        .find(|a| a["outcome"] == "taken" && a["target"]["pid"] == shell["pid"])
        .unwrap_or_else(|| panic!("no kill/taken of pid {}: {kills:#?}\n{ctx}", shell["pid"]));
    assert!(taken["time_unix_ms"].as_u64().is_some(), "{taken:#}");
    assert!(taken["reason"].is_string(), "{taken:#}");
    // The function itself was never touched: the next invocation is warm.
    assert_eq!(run.invocations[2]["cold"], false, "{ctx}");
    let health = run
        .stdout_json_with("counters")
        .into_iter()
        .find(|h| h["kind"] == "health")
        .unwrap_or_else(|| panic!("no health line: {ctx}"));
    let counters = &health["counters"];
    assert!(
        counters["response_kill_total"].as_u64() >= Some(1),
        "{health:#}"
    );
    assert_eq!(counters["responses_failed_total"], 0, "{health:#}");
    assert_eq!(counters["responses_dry_run_total"], 0, "{health:#}");
}

#[test]
fn dry_run_records_the_kill_and_leaves_the_shell_alone() {
    if !isolated() {
        return;
    }
    let (port, _closed) = c2_listener();
    let run = warden(Sandbox::python_probe(), "low=kill+recycle")
        .env("WARDEN_DRY_RUN", "1")
        .arg("--host-link")
        .run(&[json!({}), shell_attack(port), json!({})]);
    run.assert_ok();
    let ctx = context(&run);
    assert_eq!(run.statuses(), ["success", "success", "success"], "{ctx}");
    let shell = &run.invocations[1]["response"]["reverse_shell"];
    assert_eq!(shell["running"], true, "the shell was killed: {ctx}");
    let kills = actions_of(&run, 1, "kill");
    assert!(
        kills
            .iter()
            .any(|a| a["outcome"] == "dry_run" && a["target"]["pid"] == shell["pid"]),
        "{kills:#?}\n{ctx}"
    );
    let recycles = actions_of(&run, 1, "recycle");
    assert!(
        !recycles.is_empty() && recycles.iter().all(|a| a["outcome"] == "dry_run"),
        "{recycles:#?}"
    );
    assert_eq!(run.invocations[2]["cold"], false, "dry run recycled: {ctx}");
}

#[test]
fn recycle_gives_the_next_invocation_a_fresh_environment_without_the_dropped_file() {
    if !isolated() {
        return;
    }
    let dropper = json!({"delay_ms": 100, "exec_tmp": {"path": "/tmp/.dropped", "script": "#!/bin/sh\nsleep 0.3\necho ok\n"}});
    let run = warden(Sandbox::python_probe(), "low=recycle")
        .env("WARDEN_RECORDS", "1")
        .run(&[json!({}), dropper, json!({"exists": ["/tmp/.dropped"]})]);
    run.assert_ok();
    let ctx = context(&run);
    // The environment ends with Warden's exit, and still every invocation has its record:
    // the attacked one's is flushed before the exit, with what the invocation did.
    let records: Vec<Value> = run
        .stdout_json_with("warden_schema")
        .into_iter()
        .filter(|r| r["kind"] == "invoke")
        .collect();
    let attacked_id = &run.invocations[1]["request_id"];
    let attacked_record = records
        .iter()
        .find(|r| &r["request_id"] == attacked_id)
        .unwrap_or_else(|| panic!("no record of the recycled invocation\n{ctx}"));
    assert_eq!(attacked_record["status"], "success", "{attacked_record}");
    assert!(
        attacked_record["evidence"].as_array().is_some_and(|e| e
            .iter()
            .any(|o| o["kind"] == "program" && o["exe"] == "/tmp/.dropped")),
        "{attacked_record}"
    );
    assert_eq!(records.len(), 3, "{ctx}");
    let recycles = actions_of(&run, 1, "recycle");
    let taken: Vec<&Value> = recycles
        .iter()
        .filter(|a| a["outcome"] == "taken")
        .collect();
    assert!(!taken.is_empty(), "no recycle/taken: {recycles:#?}\n{ctx}");
    // Which of the invocation's real-time findings names the file first depends on what a
    // tick saw first (the shell mid-exec, or the script); the plan is their union.
    assert!(
        taken.iter().any(|a| a["target"]["files"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("/tmp/.dropped")))),
        "{taken:#?}\n{ctx}"
    );
    // The attacked invocation still answered; Warden's exit then ended the environment.
    let attacked = &run.invocations[1];
    assert_eq!(attacked["response"]["exec_tmp"]["stdout"], "ok\n", "{ctx}");
    assert_eq!(attacked["status"], "crash", "{ctx}");
    assert_eq!(attacked["error"]["errorType"], "Extension.Crash", "{ctx}");
    let next = &run.invocations[2];
    assert_eq!(next["status"], "success", "{ctx}");
    assert_eq!(next["cold"], true, "no new init after the recycle: {ctx}");
    assert_eq!(next["response"]["exists"]["/tmp/.dropped"], false, "{ctx}");
}

#[test]
fn recycle_removes_a_payload_whose_name_redaction_hides() {
    if !isolated() {
        return;
    }
    // 40 mixed-case letters and digits: written evidence shows it as `/tmp/[REDACTED]`; the
    // plan comes from the raw evidence Warden keeps inside.
    let payload = "/tmp/Xk3vQ9mZr7TbW2nLp8YcF4hJs6DgA1eRu5oK";
    let dropper = json!({"delay_ms": 100, "exec_tmp": {"path": payload, "script": "#!/bin/sh\nsleep 0.3\necho ok\n"}});
    let run = warden(Sandbox::python_probe(), "low=recycle")
        .env("WARDEN_RECORDS", "1")
        .run(&[json!({}), dropper, json!({"exists": [payload]})]);
    run.assert_ok();
    let ctx = context(&run);
    let taken: Vec<Value> = actions_of(&run, 1, "recycle")
        .into_iter()
        .filter(|a| a["outcome"] == "taken")
        .collect();
    assert!(
        taken.iter().any(|a| a["target"]["files"]
            .as_array()
            .is_some_and(|f| f.contains(&json!("/tmp/[REDACTED]")))),
        "{taken:#?}\n{ctx}"
    );
    let next = &run.invocations[2];
    assert_eq!(next["cold"], true, "no new init after the recycle: {ctx}");
    assert_eq!(next["response"]["exists"][payload], false, "{ctx}");
    // Nothing Warden wrote names the payload.
    let leaked: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.to_ascii_lowercase().contains("warden") && l.contains(&payload[5..]))
        .collect();
    assert!(leaked.is_empty(), "{leaked:#?}");
}

#[test]
fn a_process_left_running_is_recycled_after_the_next_invocation() {
    if !isolated() {
        return;
    }
    // Found from the record of invocation 1, made while invocation 2 runs: the recycle comes
    // at the end of invocation 2, and invocation 3 starts a new environment. A process
    // detached within one clock tick of the response may be judged invocation 2's instead
    // (docs/features.md): then everything happens one invocation later.
    let run = warden(Sandbox::python_probe(), "low=recycle").run(&[
        json!({}),
        json!({"delay_ms": 100, "spawn_detached": ["sleep", "30"]}),
        json!({"sleep_ms": 400}),
        json!({"sleep_ms": 400}),
        json!({"list_pids": true}),
    ]);
    run.assert_ok();
    let ctx = context(&run);
    let planted = run.invocations[1]["response"]["spawn_detached"]["pid"].clone();
    let recycles: Vec<Value> = [1, 2]
        .iter()
        .flat_map(|&i| actions_of(&run, i, "recycle"))
        .collect();
    assert!(
        recycles.iter().any(|a| a["outcome"] == "taken"
            && a["target"]["pids"]
                .as_array()
                .is_some_and(|p| p.contains(&planted))),
        "no recycle/taken naming pid {planted}: {recycles:#?}\n{ctx}"
    );
    let statuses = run.statuses();
    assert!(
        statuses == ["success", "success", "crash", "success", "success"]
            || statuses == ["success", "success", "success", "crash", "success"],
        "{statuses:?}\n{ctx}"
    );
    let crashed = statuses.iter().position(|s| s == "crash").unwrap();
    assert!(
        run.invocations[crashed]["response"]["sleep_ms"] == 400,
        "{ctx}"
    );
    assert_eq!(run.invocations[crashed + 1]["cold"], true, "{ctx}");
    // Warden killed it itself before the reset (which would also have ended it).
    let log = format!("{}{}", run.stdout, run.stderr);
    assert!(
        log.lines()
            .any(|l| l.contains("recycle for") && l.contains(&format!("killed [{planted}]"))),
        "{ctx}"
    );
    let pids = run.invocations[4]["response"]["pids"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(
        !pids.iter().any(|p| p["comm"] == "sleep"),
        "the planted sleep survived: {pids:#?}"
    );
}

#[test]
fn throttle_sets_reserved_concurrency_to_zero() {
    if !isolated() {
        return;
    }
    const NAME: &str = "warden-throttle-test";
    let moto = MotoServer::start();
    moto.script("tests/aws/moto_lambda.py", &["create", NAME]);
    let mut sandbox = warden(Sandbox::python_probe(), "low=throttle")
        .arg("--host-link")
        .arg("--host-forward")
        .arg(&moto.port().to_string())
        .arg("--function-name")
        .arg(NAME);
    for (k, v) in moto.sandbox_env() {
        sandbox = sandbox.env(&k, &v);
    }
    let run = sandbox.run(&[
        json!({}),
        json!({"delay_ms": 100, "spawn": ["sh", "-c", "sleep 0.3"]}),
        json!({"sleep_ms": 500}),
    ]);
    run.assert_ok();
    let ctx = context(&run);
    let throttles = actions_of(&run, 1, "throttle");
    assert!(
        throttles
            .iter()
            .any(|a| a["outcome"] == "taken" && a["target"]["function_name"] == NAME),
        "{throttles:#?}\n{ctx}"
    );
    let out = moto.script("tests/aws/moto_lambda.py", &["concurrency", NAME]);
    let got: Value = serde_json::from_slice(&out.stdout).expect("JSON from moto_lambda.py");
    assert_eq!(got["ReservedConcurrentExecutions"], 0, "{got}\n{ctx}");
}
