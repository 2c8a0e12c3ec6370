//! sam-template.yaml: cfn-lint (with the SAM transform) passes, and the dashboard and alarms
//! plot only metrics the extension really emits.
//!
//! The metrics test runs the warden-extension binary on the Python probe function in the
//! sandbox so that every metric family is produced: benign invocations (anomaly score, records
//! seen, health, Warden's CPU and memory, per function and per function version), a command
//! injection and a reverse shell (findings by class and by severity, `high` and `critical`),
//! a response policy in dry run (response actions), and the sandbox's SHUTDOWN (the last
//! window is flushed). The fleet's profiler runs once too, in the sandbox against the local AWS
//! API server (a protected function with a profile in S3 and nothing new to learn), so that
//! its metrics (profile age and learning state) are in the emitted set as well. The Embedded
//! Metric Format lines on the sandboxes' stdout give the
//! emitted set — namespace, metric name, dimension names, and the dimension values seen —
//! which tests/template/check_template.py compares with every metric a dashboard widget or an
//! alarm uses, SEARCH expressions included. The same script still checks the template and the
//! emitted set against the contract in docs/metrics.md (both ways: the contract lists every
//! emitted metric and nothing the extension does not emit), so the docs cannot drift either.
//! Then a doctored copy of the template (a renamed widget metric, a wrong SEARCH dimension key,
//! a renamed alarm metric, a dimension value never emitted) must fail the check, naming each.
//! Where the sandbox cannot isolate (not root), only the docs/metrics.md check runs.

// Test code: its helpers outside `#[test]` functions stop the test on a failed step too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Output};

use serde_json::{json, Value};
use warden_sandbox::harness::{bin, draining_listener, python, repo_root, scratch, Run, Sandbox};
use warden_sandbox::moto::{self, MotoServer};

fn venv_tool(name: &str) -> std::path::PathBuf {
    let path = python().with_file_name(name);
    assert!(
        path.exists(),
        "{} is missing: run scripts/setup",
        path.display()
    );
    path
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn template_passes_cfn_lint() {
    let out = Command::new(venv_tool("cfn-lint"))
        .arg(repo_root().join("sam-template.yaml"))
        .output()
        .expect("running cfn-lint");
    assert!(out.status.success(), "cfn-lint:\n{}", text(&out));
}

/// An ordinary invocation with a little variety in timing, logging and response size.
fn benign(i: usize) -> Value {
    json!({
        "delay_ms": 20 + (i * 7) % 30,
        "log_lines": i % 3,
        "response_bytes": 200 + (i * 37) % 300,
    })
}

/// Runs the extension with benign invocations, a command injection and a reverse shell under
/// a dry-run response policy.
fn run_extension() -> Run {
    let port = draining_listener(std::time::Duration::ZERO);
    let mut events: Vec<Value> = (0..4).map(benign).collect();
    // Attacks start 100 ms in, as a handler would after its own start-up work
    // (docs/features.md).
    events.push(json!({"delay_ms": 100, "spawn": ["sh", "-c", "id >/dev/null; sleep 0.3"]}));
    events.push(benign(4));
    let shell = json!({"host": "host.sandbox", "port": port, "wait_ms": 800});
    events.push(json!({"delay_ms": 100, "reverse_shell": shell}));
    events.extend((5..8).map(benign));
    let run = Sandbox::python_probe()
        .extension("warden", bin("warden-extension"))
        .env("WARDEN_MODEL", "none")
        .env("WARDEN_METRICS", "emf")
        .env("WARDEN_RESPONSE", "low=kill+recycle")
        .env("WARDEN_DRY_RUN", "1")
        .arg("--host-link")
        .arg("--timeout-s")
        .arg("10")
        .run(&events);
    run.assert_ok();
    assert_eq!(run.invocations.len(), events.len(), "{}", run.stdout);
    // What the metric families need: both findings, at high and critical, and a dry-run action.
    let findings = run.stdout_json_with("warden_finding");
    let got: BTreeSet<(&str, &str)> = findings
        .iter()
        .map(|f| {
            let field = |k: &str| f[k].as_str().unwrap_or_default();
            (field("class"), field("severity"))
        })
        .collect();
    for want in [("command_injection", "high"), ("reverse_shell", "critical")] {
        assert!(
            got.contains(&want),
            "no {want:?} finding, got {got:?}:\n{}",
            run.stdout
        );
    }
    assert!(
        findings
            .iter()
            .flat_map(|f| f["actions"].as_array().cloned().unwrap_or_default())
            .any(|a| a["outcome"] == "dry_run"),
        "no dry-run action:\n{}",
        run.stdout
    );
    run
}

/// Runs the fleet's profiler once against the local AWS API server, for a function that has
/// a profile in S3 and no new records: it prints every metric it has, the profile's age
/// included.
fn run_profiler() -> Run {
    let server = MotoServer::start();
    let dir = scratch();
    let object = dir.path().join("object.json");
    std::fs::write(&object, "{}").unwrap();
    let log = dir.path().join("stream.log");
    std::fs::write(&log, "START RequestId: x\n").unwrap();
    server.client(&["s3-bucket", "warden-profiles"]);
    let key = "warden/profiles/orders.json";
    server.client(&["s3-put", "warden-profiles", key, object.to_str().unwrap()]);
    server.client(&[
        "logs-put",
        "/aws/lambda/orders",
        "stream",
        log.to_str().unwrap(),
    ]);
    let mut profiler = Sandbox::bootstrap(bin("warden-profiler"))
        .env("WARDEN_PROFILER_FUNCTIONS", "orders")
        .env("WARDEN_PROFILER_BUCKET", "warden-profiles")
        .env("WARDEN_RECORD_KEY", "template-record-key-0123456789")
        .arg("--host-link")
        .arg("--host-forward")
        .arg(&server.port().to_string());
    for (k, v) in moto::sandbox_env(server.port()) {
        profiler = profiler.env(&k, &v);
    }
    let run = profiler.run(&[json!({})]);
    run.assert_ok();
    assert_eq!(
        run.statuses(),
        ["success"],
        "{}\n{}",
        run.stdout,
        run.stderr
    );
    run
}

/// Namespace, metric name, sorted dimension names.
type MetricKey = (String, String, Vec<String>);
/// The values seen of each dimension.
type DimensionValues = BTreeMap<String, BTreeSet<String>>;

/// The emitted set from the EMF lines on stdout: one entry per (namespace, metric, dimension
/// names), with the dimension values seen. Checks each line is well-formed EMF (every metric
/// and every dimension has its value in the line), since CloudWatch drops one that is not.
fn emitted(stdout: &str) -> Value {
    let mut set: BTreeMap<MetricKey, DimensionValues> = BTreeMap::new();
    for line in stdout.lines() {
        let Ok(root) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        let Some(directives) = root["_aws"]["CloudWatchMetrics"].as_array() else {
            continue;
        };
        assert!(root["_aws"]["Timestamp"].is_u64(), "no timestamp: {line}");
        for d in directives {
            let namespace = d["Namespace"].as_str().unwrap_or_else(|| panic!("{line}"));
            let dimension_sets = d["Dimensions"]
                .as_array()
                .unwrap_or_else(|| panic!("{line}"));
            for m in d["Metrics"].as_array().unwrap_or_else(|| panic!("{line}")) {
                let name = m["Name"].as_str().unwrap_or_else(|| panic!("{line}"));
                let value = &root[name];
                assert!(
                    value.is_number()
                        || value
                            .as_array()
                            .is_some_and(|a| !a.is_empty() && a.iter().all(Value::is_number)),
                    "{name} has no value: {line}"
                );
                for dims in dimension_sets {
                    let mut names: Vec<String> = dims
                        .as_array()
                        .unwrap_or_else(|| panic!("{line}"))
                        .iter()
                        .map(|d| d.as_str().unwrap_or_else(|| panic!("{line}")).to_string())
                        .collect();
                    names.sort();
                    let entry = set
                        .entry((namespace.to_string(), name.to_string(), names.clone()))
                        .or_default();
                    for dim in &names {
                        let value = root[dim]
                            .as_str()
                            .unwrap_or_else(|| panic!("dimension {dim} has no value: {line}"));
                        entry.entry(dim.clone()).or_default().insert(value.into());
                    }
                }
            }
        }
    }
    Value::Array(
        set.into_iter()
            .map(|((namespace, metric, _), dims)| {
                json!({"namespace": namespace, "metric": metric, "dimensions": dims})
            })
            .collect(),
    )
}

/// check_template.py on `template`; without `emitted`, against docs/metrics.md alone.
fn check(template: &Path, emitted: Option<&Path>) -> Output {
    let mut cmd = Command::new(python());
    cmd.arg(repo_root().join("tests/template/check_template.py"))
        .arg(repo_root())
        .arg("--template")
        .arg(template);
    if let Some(emitted) = emitted {
        cmd.arg("--emitted").arg(emitted);
    }
    cmd.output().expect("running the template check")
}

#[test]
fn dashboard_and_alarms_plot_only_metrics_the_extension_emits() {
    let template = repo_root().join("sam-template.yaml");
    if !warden_sandbox::isolation::available() {
        eprintln!(
            "needs root for the sandbox's namespaces and host link: checking against \
             docs/metrics.md only"
        );
        let out = check(&template, None);
        assert!(out.status.success(), "{}", text(&out));
        return;
    }
    let run = run_extension();
    let profiler = run_profiler();
    let mut emitted = emitted(&run.stdout);
    if let (Some(all), Value::Array(more)) =
        (emitted.as_array_mut(), self::emitted(&profiler.stdout))
    {
        all.extend(more);
    }
    assert!(
        emitted.as_array().is_some_and(|a| !a.is_empty()),
        "no EMF line on the sandbox's stdout:\n{}",
        run.stdout
    );
    let dir = scratch();
    let emitted_file = dir.path().join("emitted.json");
    std::fs::write(
        &emitted_file,
        serde_json::to_string_pretty(&emitted).unwrap(),
    )
    .unwrap();

    let out = check(&template, Some(&emitted_file));
    assert!(
        out.status.success(),
        "{}\nemitted: {emitted:#}\nsandbox stdout:\n{}",
        text(&out),
        run.stdout
    );

    // The check can fail: a doctored copy of the template, where each change must be reported.
    let mut doctored = std::fs::read_to_string(&template).unwrap();
    for (from, to) in [
        (
            r#"["Warden", "ExtensionMemory", "FunctionName", "${Rs}"]"#,
            r#"["Warden", "ExtensionMemoryKb", "FunctionName", "${Rs}"]"#,
        ),
        (
            "{Warden,FunctionName,Class}",
            "{Warden,FunctionName,FindingClass}",
        ),
        ("MetricName: SinkErrors", "MetricName: SinkFailures"),
        (r#""Severity", "high"],"#, r#""Severity", "severe"],"#),
    ] {
        assert!(doctored.contains(from), "the template no longer has {from}");
        doctored = doctored.replacen(from, to, 1);
    }
    let doctored_file = dir.path().join("doctored.yaml");
    std::fs::write(&doctored_file, doctored).unwrap();
    let out = check(&doctored_file, Some(&emitted_file));
    let report = text(&out);
    assert!(
        !out.status.success(),
        "the doctored template passed:\n{report}"
    );
    for needle in [
        "ExtensionMemoryKb",
        "FindingClass",
        "SinkFailures",
        "severe",
    ] {
        assert!(
            report
                .lines()
                .any(|l| l.contains("not emitted") && l.contains(needle)),
            "{needle} not reported as not emitted:\n{report}"
        );
    }
}
