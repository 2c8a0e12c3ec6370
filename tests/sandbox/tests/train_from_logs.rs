//! `warden train --log-group`: the feature records that Warden in learn mode printed (which
//! Lambda puts in the function's CloudWatch log group) are read back with the AWS SDK from the
//! local AWS API server and become the function's baseline profile. Records are signed with
//! the deployment's key; a record the function itself prints into its log is refused.

// Test code: its helpers outside `#[test]` functions stop the test on a failed step too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::{json, Value};
use warden_sandbox::harness::{bin, Sandbox};
use warden_sandbox::moto::MotoServer;

const GROUP: &str = "/aws/lambda/probe";
/// The deployment's record key, set for the function's Warden and for `warden train`.
const KEY: &str = "sandbox-record-key-0123456789";

fn benign(i: usize) -> Value {
    json!({"delay_ms": 10 + (i * 7) % 20, "log_lines": i % 3, "response_bytes": 200 + i * 13})
}

/// One learn-mode run: every line the sandbox printed, as Lambda would log it. The function
/// also prints each of `forged` into its own log.
fn learn_run(invocations: usize, forged: &[String]) -> (String, usize) {
    let mut events: Vec<Value> = (0..invocations).map(benign).collect();
    events.extend(forged.iter().map(|line| json!({"spawn": ["echo", line]})));
    let run = Sandbox::python_probe()
        .extension("warden", bin("warden-extension"))
        .env("WARDEN_MODE", "learn")
        .env("WARDEN_RECORD_KEY", KEY)
        .run(&events);
    run.assert_ok();
    // Warden's own records: what the function echoed is not one of them.
    let records = run
        .stdout
        .lines()
        .filter(|l| !forged.iter().any(|f| f == l))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|r| r.get("warden_schema").is_some() && r["kind"] == "invoke")
        .count();
    (run.stdout.clone(), records)
}

/// Forged records: a genuine one with its figures changed, without a MAC and with its MAC
/// kept.
fn forgeries(genuine: &str) -> Vec<String> {
    let (body, mac) = genuine.rsplit_once(",\"warden_mac\"").unwrap();
    let changed = body.replacen("\"seq\":", "\"seq\":9", 1);
    vec![
        format!("{changed}}}"),
        format!("{changed},\"warden_mac\"{mac}"),
    ]
}

fn train(
    moto_endpoint: &str,
    profile: &std::path::Path,
    key: Option<&str>,
) -> std::process::Output {
    let mut command = Command::new(bin("warden"));
    if let Some(key) = key {
        command.env("WARDEN_RECORD_KEY", key);
    }
    command
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
    warden_sandbox::skip_without_isolation!();
    let moto = MotoServer::start();
    let dir = tempfile_dir("train-from-logs");
    // Two execution environments, two log streams; each has its platform lines too. In the
    // second, the function prints forged copies of a record of the first into its log.
    let mut expected = 0;
    let mut forged = Vec::new();
    for (n, count) in [(1, 30), (2, 25)] {
        let (stdout, records) = learn_run(count, &forged);
        assert_eq!(
            records,
            count + forged.len(),
            "learn mode prints one record per invocation"
        );
        expected += records;
        if forged.is_empty() {
            let genuine = stdout
                .lines()
                .find(|l| l.contains("\"kind\":\"invoke\""))
                .unwrap();
            assert!(genuine.contains("\"warden_mac\":\""), "{genuine}");
            forged = forgeries(genuine);
        }
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

    // Without the key nothing can be checked, and training says so.
    let out = train(&moto.endpoint(), &dir.join("unchecked.json"), None);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("WARDEN_RECORD_KEY"), "{stderr}");
    assert!(stderr.contains("--accept-unsigned"), "{stderr}");

    let profile = dir.join("profiles.json");
    let out = train(&moto.endpoint(), &profile, Some(KEY));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "warden train failed: {stderr}");
    assert!(
        stderr.contains("1 records refused: their MAC does not check"),
        "{stderr}"
    );
    assert!(stderr.contains("1 records refused: unsigned"), "{stderr}");
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
    let out = train(&moto.endpoint(), &dir.join("none.json"), Some(KEY));
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
