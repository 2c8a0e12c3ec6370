//! Fleet learning against real parts: the extension in learn mode in two execution
//! environments (two sandbox runs, two log streams) signs its records; they go into the local
//! AWS API server's CloudWatch Logs as Lambda would put them; the profiler function, run in
//! the sandbox on its own Runtime API loop, reads them back, learns the function's profile
//! and writes it to the server's S3; then a new environment whose Warden reads that profile
//! at init (`WARDEN_PROFILE=s3://…`) flags nothing on its first run of the function's
//! shell-out habit and still finds an injected command on its first attack.
//!
//! Poisoning: the function prints forged records (no MAC, a made-up MAC) of a tool it never
//! runs into its log in both environments, and runs a command in one environment only;
//! neither reaches the profile.
//!
//! A profile that is malformed, too large, another function's, or unreachable (a server that
//! never answers): the function is unaffected, Warden says so in one log line, counts it, and
//! learns as it would without a profile.

// Test code: its helpers outside `#[test]` functions stop the test on a failed step too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use serde_json::{json, Value};
use warden_core::fleet::object::{encode, sha256_hex, ProfileContent};
use warden_sandbox::harness::{bin, draining_listener, scratch, Run, Sandbox};
use warden_sandbox::moto::{self, MotoServer};
use warden_sandbox::outcome::Outcome;

const FUNCTION: &str = "orders-fleet";
const GROUP: &str = "/aws/lambda/orders-fleet";
const BUCKET: &str = "warden-fleet-profiles";
const KEY: &str = "warden/profiles/orders-fleet.json";
/// The deployment's record key: the extension signs with it, the profiler checks with it.
const RECORD_KEY: &str = "fleet-record-key-0123456789";
/// The forged habit: a tool a poisoner wants the profile to call normal (no hard indicator
/// of its own, so that only the MAC keeps it out).
const POISON_EXE: &str = "/usr/bin/base64";

/// The function's habit: it shells out to compress something on many invocations (and
/// waits a little, so that the sampler sees the shell's command line every time).
fn habit() -> Value {
    json!({"spawn": ["sh", "-c", "gzip -c /etc/hostname >/dev/null; sleep 0.1"]})
}

/// A command only one environment runs (its code planted it there).
fn one_environment_command() -> Value {
    json!({"spawn": ["sh", "-c", "tar -cf /dev/null /etc/hostname; sleep 0.1"]})
}

fn benign(i: usize) -> Value {
    json!({"delay_ms": 10 + (i * 7) % 20, "log_lines": i % 3, "response_bytes": 200 + i * 13})
}

/// A command injection, 100 ms in, as a handler would run it after its own start-up work.
fn injection() -> Value {
    json!({"delay_ms": 100, "spawn": ["sh", "-c", "id >/dev/null; sleep 0.3"]})
}

/// Records the function prints into its own log, claiming the poison as a habit: two
/// without a MAC, two with a made-up MAC (either kind alone, believed, would be a habit of
/// two environments).
fn forged(environment: usize) -> Vec<String> {
    let doc =
        std::fs::read_to_string(warden_sandbox::harness::repo_root().join("docs/features.md"))
            .unwrap();
    let example = doc
        .lines()
        .find(|l| l.starts_with("{\"warden_schema\""))
        .unwrap();
    (0..4)
        .map(|n| {
            let mut record: Value = serde_json::from_str(example).unwrap();
            record["function_name"] = FUNCTION.into();
            record["request_id"] = format!("forged-{environment}-{n}").into();
            record["evidence"] = json!([{"kind": "process", "pid": 77, "ppid": 1,
                "exe": POISON_EXE, "cmdline": "base64 -w0 /etc/hostname", "exec": false}]);
            let line = record.to_string();
            if n % 2 == 0 {
                line
            } else {
                format!(
                    "{},\"warden_mac\":\"{}\"}}",
                    line.trim_end_matches('}'),
                    "ab".repeat(32)
                )
            }
        })
        .collect()
}

/// Learn mode in one environment; returns what it printed (its log stream).
fn learn_run(environment: usize, only_here: bool) -> String {
    let mut events = Vec::new();
    for i in 0..12 {
        events.push(if i % 2 == 0 { habit() } else { benign(i) });
    }
    if only_here {
        events.extend((0..4).map(|_| one_environment_command()));
    }
    events.extend(
        forged(environment)
            .into_iter()
            .map(|line| json!({"spawn": ["echo", line]})),
    );
    let run = Sandbox::python_probe()
        .extension("warden", bin("warden-extension"))
        .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
        .env("WARDEN_MODE", "learn")
        .env("WARDEN_RECORD_KEY", RECORD_KEY)
        .run(&events);
    run.assert_ok();
    run.stdout.clone()
}

/// Where a sandbox's AWS clients go: the local AWS API server (on the host's 127.0.0.1,
/// forwarded), or a host listener on every address (reached over the host link as it is).
#[derive(Clone, Copy)]
enum Aws {
    Server(u16),
    Listener(u16),
}

/// A sandbox whose AWS clients reach `aws` at `http://host.sandbox:PORT`.
fn with_aws(sandbox: Sandbox, aws: Aws) -> Sandbox {
    let mut s = sandbox.arg("--host-link");
    let port = match aws {
        Aws::Server(port) => {
            s = s.arg("--host-forward").arg(&port.to_string());
            port
        }
        Aws::Listener(port) => port,
    };
    for (k, v) in moto::sandbox_env(port) {
        s = s.env(&k, &v);
    }
    s
}

/// The profiler function, run once as the schedule would.
fn profiler_run(port: u16) -> Run {
    let run = with_aws(
        Sandbox::bootstrap(bin("warden-profiler")),
        Aws::Server(port),
    )
    .env("WARDEN_PROFILER_FUNCTIONS", FUNCTION)
    .env("WARDEN_PROFILER_BUCKET", BUCKET)
    .env("WARDEN_RECORD_KEY", RECORD_KEY)
    .env("WARDEN_PROFILER_POLICY", "observe")
    .run(&[json!({"source": "aws.scheduler"})]);
    run.assert_ok();
    run
}

/// A protected environment whose profile is `s3://BUCKET/<key>`, asked of `aws`.
fn protected_run(aws: Aws, key: &str, events: &[Value]) -> Outcome {
    let run = with_aws(Sandbox::python_probe(), aws)
        .extension("warden", bin("warden-extension"))
        .env("AWS_LAMBDA_FUNCTION_NAME", FUNCTION)
        .env("WARDEN_PROFILE", &format!("s3://{BUCKET}/{key}"))
        .env("WARDEN_LOG", "info")
        .env("WARDEN_RECORD_KEY", RECORD_KEY)
        .env("WARDEN_MODEL", "none")
        .env("WARDEN_RECORDS", "1")
        .run(events);
    run.assert_ok();
    Outcome::from_run(run)
}

/// Warden's log lines about its profile.
fn profile_lines(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .chain(run.stderr.lines())
        .filter(|l| l.starts_with("[warden]") && l.contains(&format!("profile s3://{BUCKET}/")))
        .map(str::to_string)
        .collect()
}

fn needs_root() -> bool {
    let ok = warden_sandbox::isolation::available();
    if !ok {
        eprintln!("needs root for the sandbox's namespaces and host link; skipping");
    }
    ok
}

#[test]
fn a_profile_learned_across_environments_warms_a_new_one() {
    if !needs_root() {
        return;
    }
    let moto = MotoServer::start();
    moto.client(&["s3-bucket", BUCKET]);
    let dir = scratch();
    for (environment, only_here) in [(1, true), (2, false)] {
        let stdout = learn_run(environment, only_here);
        // What must stay out of the profile was really seen there.
        assert_eq!(
            stdout.contains("tar -cf /dev/null") && stdout.contains("\"warden_mac\""),
            only_here,
            "{stdout}"
        );
        let log = dir.path().join(format!("stream-{environment}.log"));
        std::fs::write(&log, format!("START RequestId: x\n{stdout}")).unwrap();
        let stream = format!("2026/12/07/[$LATEST]{environment:032x}");
        moto.client(&["logs-put", GROUP, &stream, log.to_str().unwrap()]);
    }

    let profiler = profiler_run(moto.port());
    let report = &profiler.invocations[0]["response"]["functions"][0];
    assert_eq!(
        report["function"], FUNCTION,
        "{:#}",
        profiler.invocations[0]
    );
    assert_eq!(report["environments"], 2, "{report:#}");
    assert!(
        profiler.stdout.contains("\"ProfileAge\":0"),
        "the profile's age as a metric: {}",
        profiler.stdout
    );

    // The object: versioned, its hash in its metadata and its body, the habit in, the poison
    // and the one environment's command out.
    let object = moto.client(&["s3-get", BUCKET, KEY]);
    let body = object["body"].as_str().unwrap();
    let parsed: Value = serde_json::from_str(body).unwrap();
    assert_eq!(object["metadata"]["sha256"], parsed["sha256"], "{object:#}");
    assert_eq!(object["versions"], 1, "{object:#}");
    // The hash is over the content's bytes as they stand in the object.
    let content = body
        .split_once(",\"content\":")
        .and_then(|(_, rest)| rest.strip_suffix('}'))
        .unwrap();
    assert_eq!(parsed["sha256"], sha256_hex(content.as_bytes()));
    let profile = &parsed["content"]["profile"];
    let shapes = profile["shell_shapes"].to_string();
    let exes = profile["known_exes"].to_string();
    assert!(shapes.contains("gzip"), "the habit is learned: {profile:#}");
    assert!(
        !shapes.contains("tar") && !exes.contains("/tar"),
        "{profile:#}"
    );
    assert!(
        !exes.contains(POISON_EXE) && !shapes.contains("base64"),
        "{profile:#}"
    );
    assert!(parsed["content"]["policy"]
        .as_str()
        .unwrap()
        .contains("\"exec\""));
    assert_eq!(
        (
            report["refused"]["unsigned"].as_u64(),
            report["refused"]["forged"].as_u64()
        ),
        (Some(4), Some(4)),
        "every forged record is refused, and counted: {report:#}"
    );

    // A new environment, warmed from its first invocation.
    let out = protected_run(
        Aws::Server(moto.port()),
        KEY,
        &[habit(), injection(), benign(1)],
    );
    let loaded = profile_lines(&out.run);
    assert!(
        loaded.len() == 1 && loaded[0].contains("loaded") && loaded[0].contains("downloaded"),
        "{loaded:?}\n{}",
        out.run.stderr
    );
    assert!(
        out.findings_of(0).is_empty(),
        "the habit's first run is flagged: {:#?}",
        out.findings_of(0)
    );
    out.finding(1, "command_injection");
    assert!(out.findings_of(2).is_empty(), "{:#?}", out.findings_of(2));
    let health = out.health();
    assert_eq!(
        (
            health["profile_unavailable_total"].as_u64(),
            health["profile_rejected_total"].as_u64()
        ),
        (Some(0), Some(0))
    );
}

#[test]
fn a_bad_or_unreachable_profile_leaves_the_function_unaffected() {
    if !needs_root() {
        return;
    }
    let moto = MotoServer::start();
    moto.client(&["s3-bucket", BUCKET]);
    let dir = scratch();
    let put = |key: &str, bytes: &[u8], sha256: &str| {
        let path = dir.path().join(key.replace('/', "_"));
        std::fs::write(&path, bytes).unwrap();
        moto.client(&["s3-put", BUCKET, key, path.to_str().unwrap(), sha256]);
    };
    put(
        "bad/malformed.json",
        b"{\"warden_profile\":1,\"median\":[",
        "",
    );
    let mut huge = b"{\"warden_profile\":1,\"pad\":\"".to_vec();
    huge.extend(std::iter::repeat_n(b'x', 300 * 1024));
    huge.extend(b"\"}");
    put("bad/huge.json", &huge, "");
    let mut baseline = warden_core::detect::Baseline::new();
    for i in 0..25 {
        baseline.observe(&[i as f32; warden_core::features::N]);
    }
    let other = encode(&ProfileContent {
        function: "billing".into(),
        generated_unix_ms: 1,
        environments: 2,
        profile: baseline.to_profile(),
        policy: None,
    })
    .unwrap();
    put("bad/other.json", &other.bytes, &other.sha256);
    // A server that takes the connection and never answers: the deadline is what ends it.
    let silent = draining_listener(Duration::from_secs(30));

    let events = [habit(), benign(1)];
    let server = Aws::Server(moto.port());
    let cases = [
        (
            "bad/malformed.json",
            server,
            "profile_rejected_total",
            "not a profile object",
        ),
        (
            "bad/huge.json",
            server,
            "profile_rejected_total",
            "over the bound",
        ),
        (
            "bad/other.json",
            server,
            "profile_rejected_total",
            "for function \"billing\"",
        ),
        (
            "any.json",
            Aws::Listener(silent),
            "profile_unavailable_total",
            "no answer within 250 ms",
        ),
    ];
    // Two runs cannot forward the same port at once: the server's cases one after the
    // other, the silent listener's beside them.
    let outcomes: Vec<Outcome> = std::thread::scope(|scope| {
        let (served, silent) = cases.split_at(3);
        let silent = scope.spawn(|| protected_run(silent[0].1, silent[0].0, &events));
        let mut outcomes: Vec<Outcome> = served
            .iter()
            .map(|(key, aws, _, _)| protected_run(*aws, key, &events))
            .collect();
        outcomes.push(silent.join().unwrap());
        outcomes
    });
    for ((key, _, counter, says), out) in cases.iter().zip(&outcomes) {
        assert_eq!(out.run.statuses(), ["success", "success"], "{key}");
        let lines = profile_lines(&out.run);
        assert_eq!(lines.len(), 1, "{key}: one line: {lines:?}");
        assert!(
            lines[0].contains(says) && lines[0].contains("learns without it"),
            "{key}: {}",
            lines[0]
        );
        assert_eq!(out.health()[counter], 1, "{key}: {:#}", out.health());
        // Learning as without a profile: the habit's first run is not yet known.
        assert!(
            !out.findings_of(0).is_empty(),
            "{key}: an environment without a profile flags the habit's first run\n{}",
            out.run.stdout
        );
    }
}

/// The environment's copy of its profile, against the local AWS API server directly: kept
/// after a download, used again only while S3's hash for the object is the copy's, never when
/// the function rewrote it; and an object whose metadata hash disagrees with its body is
/// refused.
#[test]
fn the_environments_copy_is_used_only_while_s3_vouches_for_it() {
    use warden_core::config::AwsEnv;
    use warden_core::fleet::{self, cache::Cache, store::S3, LoadError, Request};

    let moto = MotoServer::start();
    moto.client(&["s3-bucket", BUCKET]);
    let dir = scratch();
    let object = |environments: u64| {
        let mut baseline = warden_core::detect::Baseline::new();
        for i in 0..25 {
            baseline.observe(&[i as f32; warden_core::features::N]);
        }
        encode(&ProfileContent {
            function: FUNCTION.into(),
            generated_unix_ms: 1,
            environments,
            profile: baseline.to_profile(),
            policy: None,
        })
        .unwrap()
    };
    let put = |key: &str, bytes: &[u8], sha256: &str| {
        let path = dir.path().join("object.json");
        std::fs::write(&path, bytes).unwrap();
        moto.client(&["s3-put", BUCKET, key, path.to_str().unwrap(), sha256]);
    };
    let endpoint = moto.endpoint();
    let env = AwsEnv::from_lookup(&|name: &str| match name {
        "AWS_REGION" => Some("us-east-1"),
        "AWS_ACCESS_KEY_ID" | "AWS_SECRET_ACCESS_KEY" => Some("testing"),
        "AWS_ENDPOINT_URL" => Some(endpoint.as_str()),
        _ => None,
    });
    let sdk = warden_core::aws::sdk_config(&env).unwrap();
    let s3 = S3::new(&sdk, &env).unwrap();
    let cache = Cache::new(dir.path(), &format!("s3://{BUCKET}/{KEY}"));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let load = |key: &str| {
        let request = Request {
            bucket: BUCKET,
            key,
            function: FUNCTION,
            deadline: Duration::from_secs(5),
        };
        runtime.block_on(fleet::load(Some(&s3), &request, Some(&cache)))
    };

    let first = object(2);
    put(KEY, &first.bytes, &first.sha256);
    let loaded = load(KEY).unwrap();
    assert!(!loaded.from_cache);
    assert_eq!(loaded.object.sha256, first.sha256);
    let again = load(KEY).unwrap();
    assert!(again.from_cache, "S3 vouches for the copy");

    // The function rewrites the copy with a profile of its own, its hash consistent: S3's
    // hash is not the copy's, so the object is downloaded again.
    let planted = object(99);
    let copy = std::fs::read_dir(cache.dir())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.extension().is_some_and(|x| x == "json"))
        .unwrap();
    std::fs::write(&copy, &planted.bytes).unwrap();
    let after = load(KEY).unwrap();
    assert!(!after.from_cache);
    assert_eq!(after.object.content.environments, 2);
    // A new version in S3 replaces a copy that was current.
    let second = object(3);
    put(KEY, &second.bytes, &second.sha256);
    let newer = load(KEY).unwrap();
    assert_eq!(
        (newer.from_cache, newer.object.content.environments),
        (false, 3)
    );

    // Body and metadata disagree: refused.
    put("bad/mismatch.json", &first.bytes, &second.sha256);
    let mismatch = Cache::new(dir.path(), "another source");
    let request = Request {
        bucket: BUCKET,
        key: "bad/mismatch.json",
        function: FUNCTION,
        deadline: Duration::from_secs(5),
    };
    let refused = runtime.block_on(fleet::load(Some(&s3), &request, Some(&mismatch)));
    assert!(
        matches!(refused, Err(LoadError::Rejected(_))),
        "{refused:?}"
    );
    // No credentials in the environment: not had, said plainly.
    let none = runtime.block_on(fleet::load(None, &request, None));
    assert!(matches!(none, Err(LoadError::NoAws)), "{none:?}");
}
