//! Warden's AWS destinations end to end: the real extension in the sandbox sends metrics
//! (PutMetricData), findings (Security Hub, EventBridge) to a local AWS API server (moto)
//! with the real AWS SDK over HTTP; boto3 reads them back. Faults: the server down, then
//! back; a burst of findings against a dead endpoint.

// Test code: its helpers outside `#[test]` functions stop the test on a failed step too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::{json, Value};
use warden_sandbox::harness::{bin, Run, Sandbox};
use warden_sandbox::moto::{self, MotoServer};

const FUNCTION: &str = "orders-api";

fn benign(i: usize) -> Value {
    json!({"delay_ms": 10 + (i * 7) % 20, "log_lines": i % 2, "response_bytes": 200 + (i * 37) % 200})
}

/// A shell running a reconnaissance command and a payload run from /tmp: two high-severity
/// findings. (A shell alone is a new habit: low severity while a new environment learns, and
/// not forwarded.)
fn attacks() -> Vec<Value> {
    vec![
        json!({"delay_ms": 100, "spawn": ["sh", "-c", "id >/dev/null; sleep 0.3"]}),
        json!({"delay_ms": 100, "exec_tmp": {"path": "/tmp/.x", "script": "#!/bin/sh\nsleep 0.2\necho ok\n"}}),
    ]
}

fn warden(port: u16) -> Sandbox {
    let mut s = Sandbox::python_probe()
        .extension("warden", bin("warden-extension"))
        .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
        .arg("--host-link")
        .arg("--host-forward")
        .arg(&port.to_string());
    for (k, v) in moto::sandbox_env(port) {
        s = s.env(&k, &v);
    }
    s
}

fn findings(run: &Run) -> Vec<Value> {
    run.stdout_json_with("warden_finding")
}

/// Every finding the run logged (at least the two attacks) is in Security Hub.
fn all_in_security_hub(server: &MotoServer, run: &Run, why: &str) {
    let logged = findings(run);
    assert!(logged.len() >= 2, "both attacks found: {logged:#?}");
    let hub = server.client(&["securityhub-findings"]);
    for f in &logged {
        assert!(
            hub.as_array().unwrap().iter().any(|h| h["Id"] == f["id"]),
            "{} delivered {why}",
            f["id"]
        );
    }
}

fn needs_root() -> bool {
    if warden_sandbox::isolation::available() {
        return true;
    }
    eprintln!("needs root for the sandbox's namespaces and host link; skipping");
    false
}

#[test]
fn metrics_and_findings_reach_cloudwatch_security_hub_and_eventbridge() {
    if !needs_root() {
        return;
    }
    let server = MotoServer::start();
    server.client(&["securityhub-enable"]);
    let queue = server.client(&["events-setup", "default"])["queue_url"]
        .as_str()
        .unwrap()
        .to_string();
    let mut events: Vec<Value> = (0..6).map(benign).collect();
    events.extend(attacks());
    events.push(benign(99));
    let run = warden(server.port())
        .env("WARDEN_METRICS", "api")
        .env("WARDEN_SECURITY_HUB", "1")
        .env("WARDEN_EVENT_BUS", "default")
        .env("WARDEN_RECORDS", "1")
        .run(&events);
    run.assert_ok();
    // The function never connects out; Warden's own connections to the AWS server (findings
    // are sent while the attacks run) are counted apart, not as the function's.
    let records: Vec<Value> = run
        .stdout_json_with("warden_schema")
        .into_iter()
        .filter(|r| r["kind"] == "invoke")
        .collect();
    assert_eq!(records.len(), events.len());
    for r in &records {
        assert_eq!(r["tcp_outbound_opens"], 0, "{r}");
    }
    let own: i64 = records
        .iter()
        .map(|r| r["warden_tcp_opens"].as_i64().unwrap_or(0))
        .sum();
    assert!(own >= 1, "Warden's own connections: {records:#?}");
    let logged = findings(&run);
    assert!(logged.len() >= 2, "both attacks found: {logged:#?}");
    let ids: Vec<&str> = logged.iter().filter_map(|f| f["id"].as_str()).collect();
    // Warden's own connections to the AWS server are not the function's behaviour.
    let attacked: Vec<&Value> = run.invocations[6..8]
        .iter()
        .map(|i| &i["request_id"])
        .collect();
    for f in &logged {
        assert!(
            attacked.contains(&&f["request_id"]),
            "only the attacks raise findings: {f:#}"
        );
        let port = format!(":{}", server.port());
        assert!(
            !f["evidence"].to_string().contains(&port),
            "Warden's own socket in evidence: {f:#}"
        );
    }

    // CloudWatch: read back by the SDK's sibling, boto3.
    let metrics = server.client(&["metrics", "Warden"]);
    let metrics = metrics.as_array().unwrap();
    let find = |name: &str, dim: Option<(&str, &str)>| {
        metrics.iter().find(|m| {
            m["name"] == name
                && m["dimensions"]["FunctionName"] == FUNCTION
                && match dim {
                    Some((k, v)) => m["dimensions"][k] == v,
                    None => m["dimensions"].as_object().unwrap().len() == 1,
                }
        })
    };
    // (moto's statistics match datums whose dimensions include the ones asked for, so the
    // narrowest dimension sets give exact figures.)
    let score = find("AnomalyScore", Some(("FunctionVersion", "$LATEST")))
        .expect("AnomalyScore by version");
    assert_eq!(
        score["samples"],
        json!(events.len() as f64),
        "one score per invocation"
    );
    assert!(
        find("AnomalyScore", None).is_some(),
        "AnomalyScore by function"
    );
    assert!(find("Findings", None).is_some(), "Findings by function");
    let by_class: f64 = metrics
        .iter()
        .filter(|m| m["name"] == "Findings" && m["dimensions"]["Class"].is_string())
        .map(|m| m["sum"].as_f64().unwrap())
        .sum();
    assert_eq!(
        by_class,
        logged.len() as f64,
        "every finding counted once by class"
    );
    for f in &logged {
        let class = f["class"].as_str().unwrap();
        assert!(
            find("Findings", Some(("Class", class))).is_some(),
            "Findings for class {class}"
        );
        let sev = f["severity"].as_str().unwrap();
        assert!(
            find("Findings", Some(("Severity", sev))).is_some(),
            "Findings for severity {sev}"
        );
    }
    let seen = find("RecordsSeen", None).expect("RecordsSeen");
    assert_eq!(seen["sum"], json!(events.len() as f64));
    assert!(find("ExtensionCpu", None).is_some());

    // Security Hub: ASFF with the finding's id, type and the function as resource.
    let hub = server.client(&["securityhub-findings"]);
    let hub = hub.as_array().unwrap();
    for id in &ids {
        let h = hub
            .iter()
            .find(|h| h["Id"] == *id)
            .unwrap_or_else(|| panic!("{id} in Security Hub: {hub:#?}"));
        assert_eq!(h["SchemaVersion"], "2018-10-08");
        assert_eq!(h["AwsAccountId"], "123456789012");
        assert!(
            h["Types"][0].as_str().unwrap().starts_with("TTPs/")
                || h["Types"][0].as_str().unwrap().starts_with("Effects/")
        );
        assert_eq!(h["Resources"][0]["Type"], "AwsLambdaFunction");
        assert!(h["Resources"][0]["Id"]
            .as_str()
            .unwrap()
            .ends_with(&format!(":function:{FUNCTION}")));
    }

    // EventBridge: the rule delivered each finding to the queue.
    let got = server.client(&["events-read", &queue]);
    let got = got.as_array().unwrap();
    for id in &ids {
        assert!(
            got.iter().any(|e| e["detail-type"] == "Warden Finding"
                && e["source"] == "warden"
                && e["detail"]["id"] == *id),
            "{id} on the bus: {got:#?}"
        );
    }
}

#[test]
fn findings_wait_out_an_outage_and_are_delivered_when_the_server_is_back() {
    if !needs_root() {
        return;
    }
    let port = moto::free_port();
    // Nothing listens on the port while the attacks run: every send fails and is retried.
    let later = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(2_500));
        let server = MotoServer::start_on(port);
        server.client(&["securityhub-enable"]);
        server
    });
    let mut events = attacks();
    // The function keeps working through the outage; later invocations give the retries time.
    events.extend((0..8).map(|i| json!({"sleep_ms": 600, "log_lines": i % 2})));
    let run = warden(port).env("WARDEN_SECURITY_HUB", "1").run(&events);
    run.assert_ok();
    assert!(
        run.statuses().iter().all(|s| s == "success"),
        "{:?}",
        run.statuses()
    );
    let server = later.join().unwrap();
    all_in_security_hub(&server, &run, "after the outage");
    assert!(
        run.stdout.contains("sink_errors_total") || run.stderr.contains("sink_errors_total"),
        "the failed attempts were reported once"
    );
}

#[test]
fn an_unreachable_server_costs_the_function_nothing_and_drops_are_counted() {
    if !needs_root() {
        return;
    }
    let port = moto::free_port();
    let mut events = attacks();
    events.push(benign(1));
    let run = warden(port)
        .env("WARDEN_METRICS", "api")
        .env("WARDEN_EVENT_BUS", "default")
        .run(&events);
    run.assert_ok();
    assert_eq!(run.statuses(), ["success", "success", "success"]);
    assert!(
        findings(&run).len() >= 2,
        "findings are still in the function's logs"
    );
    let summary = run
        .stdout
        .lines()
        .chain(run.stderr.lines())
        .find(|l| l.contains("shutdown (") && l.contains("dropped"))
        .expect("the shutdown summary line")
        .to_string();
    assert!(summary.contains("findings dropped"), "{summary}");
    assert!(
        !summary.contains(": 0 findings dropped"),
        "undeliverable findings are counted: {summary}"
    );
}

#[test]
fn the_cloudwatch_sdk_still_speaks_the_query_protocol() {
    // aws-sdk-cloudwatch 1.100 and later speak rpc-v2-cbor, which moto (the local AWS API
    // server of these tests) does not; Cargo.toml pins ~1.99 for that reason.
    let lock =
        std::fs::read_to_string(warden_sandbox::harness::repo_root().join("Cargo.lock")).unwrap();
    let version = lock
        .split("[[package]]")
        .find(|p| p.contains("name = \"aws-sdk-cloudwatch\"\n"))
        .and_then(|p| p.lines().find_map(|l| l.strip_prefix("version = \"")))
        .map(|v| v.trim_end_matches('"').to_string())
        .expect("aws-sdk-cloudwatch in Cargo.lock");
    assert!(
        version.starts_with("1.99."),
        "aws-sdk-cloudwatch {version} is locked: from 1.100 on it speaks rpc-v2-cbor, which the \
         local AWS server cannot answer; keep the ~1.99 pin or replace the test server"
    );
}

#[test]
fn throttled_and_slow_answers_are_retried_until_the_findings_are_in() {
    if !needs_root() {
        return;
    }
    use std::io::BufRead;
    let server = MotoServer::start();
    server.client(&["securityhub-enable"]);
    let port = moto::free_port();
    // The first 3 requests are refused with a throttling error; every answer takes 300 ms.
    let mut proxy =
        std::process::Command::new(warden_sandbox::harness::repo_root().join(".venv/bin/python"))
            .arg(warden_sandbox::harness::repo_root().join("tests/aws/fault_proxy.py"))
            .args([
                port.to_string(),
                server.port().to_string(),
                "3".into(),
                "300".into(),
            ])
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
    let mut ready = String::new();
    std::io::BufReader::new(proxy.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let mut events = attacks();
    events.extend((0..6).map(|i| json!({"sleep_ms": 500, "log_lines": i % 2})));
    let run = warden(port).env("WARDEN_SECURITY_HUB", "1").run(&events);
    let _ = proxy.kill();
    let _ = proxy.wait();
    run.assert_ok();
    assert!(run.statuses().iter().all(|s| s == "success"));
    all_in_security_hub(&server, &run, "despite throttling");
    assert!(
        run.stdout.contains("TooManyRequests") || run.stderr.contains("TooManyRequests"),
        "the throttling was reported once"
    );
}
