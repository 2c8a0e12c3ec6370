//! The in-process guard, loaded the way users load it: the layer's exec wrapper
//! (`AWS_LAMBDA_EXEC_WRAPPER=/opt/warden/wrapper`) preloads it into the Python runtime and
//! everything it runs. Each evasion of the outside view is done by the real function and must
//! be found in real time with the right class; with a policy in `enforce` mode the forbidden
//! call fails inside the function and the invocation still completes.

// Test code: its helpers outside `#[test]` functions stop the test on a failed step too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde_json::{json, Value};
use warden_sandbox::harness::{bin, draining_listener, repo_root, target_dir, Sandbox};
use warden_sandbox::outcome::Outcome;

fn quiet(i: usize) -> Value {
    json!({"delay_ms": 20 + i * 5})
}

/// The guard library, built here: cargo builds a `cdylib` for `cargo build`, not for the
/// tests of another crate, so without this the test could preload an old one.
fn guard_library() -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile = target_dir();
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = std::process::Command::new(cargo)
                .args(["build", "--quiet", "--lib", "-p", "warden-guard"])
                .current_dir(repo_root())
                .env("CARGO_TARGET_DIR", profile.parent().unwrap())
                .status()
                .unwrap();
            assert!(status.success(), "cargo build -p warden-guard failed");
            profile.join("libwarden_guard.so")
        })
        .clone()
}

/// Lays the layer's guard (library and exec wrapper) out where the sandbox sees it at the
/// same path; returns the wrapper.
fn place_guard(sandbox: &Sandbox) -> PathBuf {
    let dir = sandbox.shared().join("warden");
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::copy(guard_library(), dir.join("lib/libwarden_guard.so")).unwrap();
    let wrapper = dir.join("wrapper");
    std::fs::copy(repo_root().join("layer/warden-wrapper"), &wrapper).unwrap();
    wrapper
}

fn path_text(p: &Path) -> String {
    p.to_string_lossy().into_owned()
}

/// The Python probe with Warden, its runtime started through the guard's exec wrapper.
fn guarded(policy: Option<&Value>) -> Sandbox {
    let function = Sandbox::python_probe()
        .extension("warden", bin("warden-extension"))
        .arg("--host-link");
    let wrapper = place_guard(&function);
    let mut function = function
        .env("AWS_LAMBDA_EXEC_WRAPPER", &path_text(&wrapper))
        .env(
            "WARDEN_GUARD_SOCKET",
            &format!("warden-guard-test-{}", std::process::id()),
        );
    if let Some(policy) = policy {
        let path = function.shared().join("policy.json");
        std::fs::write(&path, policy.to_string()).unwrap();
        function = function.env("WARDEN_POLICY", &path_text(&path));
    }
    function
}

fn indicators(f: &Value) -> Vec<&str> {
    f["indicators"]
        .as_array()
        .map(|v| v.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn realtime(out: &Outcome, index: usize, class: &str, indicator: &str) {
    out.has(
        index,
        |f| f["class"] == class && f["realtime"] == true && indicators(f).contains(&indicator),
        &format!("real-time {class} finding with {indicator}"),
    );
}

const MEMFD_EXEC: &str = "import os\n\
fd = os.memfd_create('payload')\n\
os.write(fd, open('/bin/true', 'rb').read())\n\
os.execv('/proc/self/fd/%d' % fd, ['payload'])\n";

#[test]
fn what_the_outside_view_misses_the_guard_sees_in_real_time() {
    if !warden_sandbox::isolation::available() {
        eprintln!("needs root for the sandbox's namespaces; skipping");
        return;
    }
    let port = draining_listener(std::time::Duration::from_millis(0));
    // Egress allowed to nothing but the Runtime API and loopback: reported, not refused.
    let policy = json!({"mode": "observe", "egress": []});
    let mut events: Vec<Value> = (0..4).map(quiet).collect();
    let first = events.len();
    events.extend([
        // A connect, a send and a close, all inside one sampler period.
        json!({"send": {"host": "host.sandbox", "port": port, "bytes": 4000}}),
        // A datagram without connect.
        json!({"udp": {"host": "host.sandbox", "port": 53, "count": 1}}),
        // A program run from memory.
        json!({"spawn": ["python3", "-c", MEMFD_EXEC]}),
        // A program dropped in /tmp and run through the dynamic loader.
        json!({"spawn": ["sh", "-c", "cp /bin/true /tmp/t && exec /lib64/ld-linux-x86-64.so.2 /tmp/t"]}),
        // Warden stopped while the function works.
        json!({"stop_extension": {"ms": 300}}),
    ]);
    events.push(quiet(9));
    let out = Outcome::of(guarded(Some(&policy)), &events);
    assert!(
        out.run.statuses().iter().all(|s| s == "success"),
        "{:?}\n{}",
        out.run.statuses(),
        out.run.stderr
    );
    assert_eq!(
        out.response(first)["send"]["sent"],
        4000,
        "{:#}",
        out.response(first)
    );
    realtime(&out, first, "exfiltration_egress", "policy_violation");
    realtime(&out, first + 1, "exfiltration_egress", "policy_violation");
    realtime(&out, first + 2, "dropper", "exec_from_memory");
    realtime(&out, first + 3, "dropper", "exec_from_tmp");
    realtime(&out, first + 4, "tamper", "tamper");
    let health = out.health();
    assert!(
        health["guard_processes_total"].as_u64().unwrap() >= 1,
        "{health:#}"
    );
    for i in 0..first {
        assert!(
            out.findings_of(i).is_empty(),
            "benign {i}: {:#?}",
            out.findings_of(i)
        );
    }
}

#[test]
fn enforce_refuses_inside_the_function_and_the_invocation_completes() {
    if !warden_sandbox::isolation::available() {
        eprintln!("needs root for the sandbox's namespaces; skipping");
        return;
    }
    let port = draining_listener(std::time::Duration::from_millis(0));
    let policy = json!({"mode": "enforce", "egress": [], "exec": ["python3"]});
    let events = vec![
        quiet(0),
        json!({"connect": {"host": "host.sandbox", "port": port, "count": 2}}),
        json!({"spawn": ["sh", "-c", "true"]}),
        quiet(1),
    ];
    let out = Outcome::of(guarded(Some(&policy)), &events);
    assert!(
        out.run.statuses().iter().all(|s| s == "success"),
        "{:?}\n{}",
        out.run.statuses(),
        out.run.stderr
    );
    let connect = &out.response(1)["connect"];
    assert_eq!(connect["connected"], 0, "{connect:#}");
    assert_eq!(connect["failed"], 2, "{connect:#}");
    out.has(
        1,
        |f| {
            f["class"] == "exfiltration_egress"
                && f["evidence"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e["verdict"] == "deny")
        },
        "refused connection",
    );
    // The exec was refused: the spawn failed in the function, which answered all the same.
    assert!(
        out.response(2)["spawn"].get("error").is_some(),
        "{:#}",
        out.response(2)
    );
    realtime(&out, 2, "command_injection", "policy_violation");
}

#[test]
fn a_malformed_policy_or_no_warden_leaves_the_function_running() {
    if !warden_sandbox::isolation::available() {
        eprintln!("needs root for the sandbox's namespaces; skipping");
        return;
    }
    let events: Vec<Value> = (0..3).map(quiet).collect();
    let function = guarded(None);
    let path = function.shared().join("policy.json");
    std::fs::write(&path, "{\"mode\": \"enforce\", \"egress\": [").unwrap();
    let out = Outcome::of(
        function.env("WARDEN_POLICY", &path.to_string_lossy()),
        &events,
    );
    assert!(out.run.statuses().iter().all(|s| s == "success"));
    assert!(
        out.run.stderr.contains("[warden-guard] policy"),
        "{}",
        out.run.stderr
    );
    assert!(out.health()["guard_policy_errors_total"].as_u64().unwrap() >= 1);
    // The guard without Warden (no extension in the layer): the function runs as before.
    let alone = Sandbox::python_probe();
    let wrapper = place_guard(&alone);
    let run = alone
        .env("AWS_LAMBDA_EXEC_WRAPPER", &path_text(&wrapper))
        .run(&[
            json!({"spawn": ["sh", "-c", "true"]}),
            json!({"udp": {"host": "127.0.0.1", "port": 9, "count": 1}}),
        ]);
    run.assert_ok();
    assert_eq!(run.invocations[0]["response"]["spawn"]["exit_code"], 0);
}
