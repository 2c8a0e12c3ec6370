//! `warden train --log-group`: the feature records that Warden in learn mode printed (which
//! Lambda puts in the function's CloudWatch log group) are read back with the AWS SDK from the
//! local AWS API server and become the function's baseline profile.

// Test code: its helpers outside `#[test]` functions stop the test on a failed step too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::{json, Value};
use warden_sandbox::harness::{bin, Sandbox};
use warden_sandbox::moto::MotoServer;

const GROUP: &str = "/aws/lambda/probe";

fn benign(i: usize) -> Value {
    json!({"delay_ms": 10 + (i * 7) % 20, "log_lines": i % 3, "response_bytes": 200 + i * 13})
}

/// One learn-mode run: every line the sandbox printed, as Lambda would log it.
fn learn_run(invocations: usize) -> (String, usize) {
    let events: Vec<Value> = (0..invocations).map(benign).collect();
    let run = Sandbox::python_probe()
        .extension("warden", bin("warden-extension"))
        .env("WARDEN_MODE", "learn")
        .run(&events);
    run.assert_ok();
    let records = run
        .stdout_json_with("warden_schema")
        .into_iter()
        .filter(|r| r["kind"] == "invoke")
        .count();
    (run.stdout.clone(), records)
}

fn train(moto_endpoint: &str, profile: &std::path::Path) -> std::process::Output {
    Command::new(bin("warden"))
        .args(["train", "--log-group", GROUP, "--profile-out"])
        .arg(profile)
        .env("AWS_ENDPOINT_URL", moto_endpoint)
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .output()
        .expect("running warden train")
}

#[test]
fn learn_mode_records_in_cloudwatch_logs_become_a_profile() {
    if !warden_sandbox::isolation::available() {
        eprintln!("needs root for the sandbox's namespaces; skipping");
        return;
    }
    let moto = MotoServer::start();
    let dir = tempfile_dir("train-from-logs");
    // Two execution environments, two log streams; each has its platform lines too.
    let mut expected = 0;
    for (n, count) in [(1, 30), (2, 25)] {
        let (stdout, records) = learn_run(count);
        assert_eq!(
            records, count,
            "learn mode prints one record per invocation"
        );
        expected += records;
        let lines = dir.join(format!("stream-{n}.log"));
        std::fs::write(
            &lines,
            format!("START RequestId: x\n{stdout}not json at all\n"),
        )
        .unwrap();
        let stream = format!("2026/11/26/[$LATEST]{n:032x}");
        let put = moto.client(&["logs-put", GROUP, &stream, lines.to_str().unwrap()]);
        assert!(put["events"].as_u64().unwrap() as usize > records, "{put}");
    }

    let profile = dir.join("profiles.json");
    let out = train(&moto.endpoint(), &profile);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "warden train failed: {stderr}");
    assert!(
        stderr.contains(&format!("{expected} records")),
        "every record is read back: {stderr}"
    );
    let profiles: Value =
        serde_json::from_str(&std::fs::read_to_string(&profile).unwrap()).unwrap();
    let map = profiles.as_object().unwrap();
    assert_eq!(map.len(), 1, "{profiles:#}");
    let p = map.values().next().unwrap();
    assert_eq!(
        p["invocations"].as_u64().unwrap() as usize,
        expected,
        "{p:#}"
    );
    assert_eq!(
        p["median"].as_array().unwrap().len(),
        p["features"].as_array().unwrap().len()
    );

    // An unreachable endpoint is one clear error, not a hang or a panic.
    let mut moto = moto;
    moto.stop();
    let out = train(&moto.endpoint(), &dir.join("none.json"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains(&format!("reading log group {GROUP}")),
        "{stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");
}

fn tempfile_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("warden-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
