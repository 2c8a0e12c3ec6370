//! The `warden` offline CLI end to end: train on labelled records, evaluate, refuse the
//! test split for training and a corrupt model for evaluation.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test and bench code: fail loudly

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::{json, Value};

fn warden(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_warden"))
        .args(args)
        .output()
        .expect("runs warden")
}

/// The example record of docs/features.md.
fn example() -> Value {
    let doc = include_str!("../../../docs/features.md");
    let line = doc
        .lines()
        .find(|l| l.starts_with("{\"warden_schema\""))
        .expect("example record");
    serde_json::from_str(line).expect("parses")
}

/// One labelled line: benign invocations vary a little; exfiltration sends 40 MB.
fn line(i: u64, run: u64, label: &str, seed: u64, split: &str) -> Value {
    let mut r = example();
    r["seq"] = json!(i + 1);
    r["cold"] = json!(i == 0);
    r["duration_ms"] = json!(150.0 + (i * 37 % 60) as f64);
    r["cpu_user_ms"] = json!(100 + (i * 13 % 5) * 10);
    r["net_tx_bytes"] = json!(4000 + (i * 7919 % 3000));
    if label != "benign" {
        r["net_tx_bytes"] = json!(40_000_000 + i * 1000);
        r["tcp_outbound_opens"] = json!(1);
    }
    json!({"label": label, "function": "python-probe", "run": format!("r{run}"),
           "seed": seed, "split": split, "record": r})
}

fn corpus(dir: &Path, name: &str, seed: u64, split: &str) -> PathBuf {
    let mut lines = Vec::new();
    for run in 0..3 {
        for i in 0..40 {
            let label = if i > 20 && i % 6 == 0 {
                "egress_exfiltration"
            } else {
                "benign"
            };
            lines.push(line(i, run, label, seed, split).to_string());
        }
    }
    let path = dir.join(name);
    std::fs::write(&path, lines.join("\n")).expect("writes corpus");
    path
}

fn scratch() -> PathBuf {
    let dir = std::env::temp_dir().join(format!("warden-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

fn s(p: &Path) -> &str {
    p.to_str().expect("UTF-8 path")
}

#[test]
fn train_then_eval_round_trip() {
    let dir = scratch().join("round-trip");
    std::fs::create_dir_all(&dir).expect("dir");
    let train = corpus(&dir, "train.jsonl", 1, "train");
    let test = corpus(&dir, "test.jsonl", 2, "test");
    let (a, b) = (dir.join("a.bin"), dir.join("b.bin"));
    for out in [&a, &b] {
        let o = warden(&[
            "train",
            "--records",
            s(&train),
            "--out",
            s(out),
            "--seed",
            "9",
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let bytes = std::fs::read(&a).expect("model");
    assert_eq!(
        bytes,
        std::fs::read(&b).expect("model"),
        "same seed, same file"
    );
    assert!(bytes.len() < 1 << 20);

    let o = warden(&[
        "eval",
        "--records",
        s(&test),
        "--model",
        s(&a),
        "--model-only",
        "--json",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report: Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    assert_eq!(report["rows"], 120);
    assert_eq!(report["mode"], "model");
    assert_eq!(report["benign"], 111);
    assert_eq!(report["overlapping_seeds"], json!([]));
    let exfil = &report["classes"][1];
    assert_eq!(exfil["class"], "exfiltration_egress");
    assert_eq!(exfil["support"], 9);
    assert_eq!(exfil["recall"], 1.0);

    let o = warden(&["eval", "--records", s(&test), "--model", s(&a)]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(text.contains("mode           detector"), "{text}");
    assert!(text.contains("confusion"), "{text}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn refuses_test_split_and_corrupt_model() {
    let dir = scratch().join("refuse");
    std::fs::create_dir_all(&dir).expect("dir");
    let test = corpus(&dir, "test.jsonl", 2, "test");
    let model = dir.join("m.bin");
    let o = warden(&["train", "--records", s(&test), "--out", s(&model)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("test split"));
    assert!(!model.exists());
    // Profiles are learned from the training split only, too.
    let profiles = dir.join("profiles.json");
    let o = warden(&[
        "train",
        "--records",
        s(&test),
        "--profile-out",
        s(&profiles),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("test split"));
    assert!(!profiles.exists());

    let o = warden(&[
        "train",
        "--records",
        s(&test),
        "--out",
        s(&model),
        "--allow-test-split",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let mut bytes = std::fs::read(&model).expect("model");
    let mid = bytes.len() / 2;
    bytes[mid] ^= 1;
    std::fs::write(&model, bytes).expect("writes");
    let o = warden(&["eval", "--records", s(&test), "--model", s(&model)]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("SHA-256"));
    std::fs::remove_dir_all(&dir).ok();
}

/// [`corpus`] for several functions: each function's lines, named after it.
fn corpus_of(dir: &Path, name: &str, seed: u64, split: &str, functions: &[&str]) -> PathBuf {
    let one = corpus(dir, name, seed, split);
    let text = std::fs::read_to_string(&one).expect("reads corpus");
    let mut lines = Vec::new();
    for f in functions {
        for l in text.lines() {
            let mut v: Value = serde_json::from_str(l).expect("line");
            v["function"] = json!(f);
            v["run"] = json!(format!("{f}/{}", v["run"].as_str().expect("run")));
            lines.push(v.to_string());
        }
    }
    std::fs::write(&one, lines.join("\n")).expect("writes corpus");
    one
}

#[test]
fn leave_one_out_scores_each_function_with_a_fold_that_never_saw_it() {
    let dir = scratch().join("lofo");
    std::fs::create_dir_all(&dir).expect("dir");
    let train = corpus_of(&dir, "train.jsonl", 1, "train", &["alpha", "beta"]);
    let test = corpus_of(&dir, "test.jsonl", 2, "test", &["alpha", "beta"]);
    let o = warden(&[
        "eval",
        "--leave-one-out",
        "--train-records",
        s(&train),
        "--records",
        s(&test),
        "--seed",
        "9",
        "--json",
    ]);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stderr}");
    assert!(stderr.contains("fold 1/2 without alpha"), "{stderr}");
    assert!(stderr.contains("fold 2/2 without beta"), "{stderr}");
    let report: Value = serde_json::from_slice(&o.stdout).expect("JSON report");
    assert_eq!(report["evaluation"], "leave-one-function-out");
    assert_eq!(report["rows"], 240);
    let folds = report["folds"].as_array().expect("folds");
    assert_eq!(folds.len(), 2);
    for (fold, (held_out, other)) in folds.iter().zip([("alpha", "beta"), ("beta", "alpha")]) {
        assert_eq!(fold["function"], held_out);
        assert_eq!(fold["train_rows"], 120, "{fold}");
        assert_eq!(fold["train_functions"], json!([other]));
        assert_eq!(fold["profiles"], json!([other]));
        assert_eq!(fold["test_rows"], 120);
    }
    for f in report["functions"].as_array().expect("functions") {
        assert_eq!(f["held_out"], true, "{f}");
        assert_eq!(f["profiled"], false, "{f}");
    }
    let exfil = &report["classes"][1];
    assert_eq!(exfil["class"], "exfiltration_egress");
    assert_eq!(exfil["support"], 18);
    assert!(exfil["class_accuracy"].is_number(), "{exfil}");
    assert!(exfil["explained_first_share"].is_number(), "{exfil}");
    assert_eq!(report["bars"].as_array().expect("bars").len(), 5);
    assert_eq!(report["bars"][2]["applies"], true, "recall counts in LOFO");

    let o = warden(&[
        "eval",
        "--leave-one-out",
        "--train-records",
        s(&train),
        "--records",
        s(&test),
        "--seed",
        "9",
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(
        text.contains("evaluation     leave-one-function-out"),
        "{text}"
    );
    assert!(text.contains("class acc"), "{text}");
    assert!(text.contains("expl. first"), "{text}");
    assert!(text.contains("\nbars\n"), "{text}");
    assert!(text.contains("\nfolds"), "{text}");

    // The test split is refused for training, and a model has no place here.
    let o = warden(&[
        "eval",
        "--leave-one-out",
        "--train-records",
        s(&test),
        "--records",
        s(&test),
    ]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("test split"));
    let o = warden(&[
        "eval",
        "--leave-one-out",
        "--train-records",
        s(&train),
        "--records",
        s(&test),
        "--model",
        s(&dir.join("m.bin")),
    ]);
    assert!(!o.status.success());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_report_names_its_setting() {
    let dir = scratch().join("setting");
    std::fs::create_dir_all(&dir).expect("dir");
    let train = corpus_of(&dir, "train.jsonl", 1, "train", &["alpha", "beta"]);
    let test = corpus_of(&dir, "test.jsonl", 2, "test", &["alpha", "beta"]);
    let (model, profiles) = (dir.join("m.bin"), dir.join("profiles.json"));
    let o = warden(&[
        "train",
        "--records",
        s(&train),
        "--out",
        s(&model),
        "--profile-out",
        s(&profiles),
    ]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let eval = |extra: &[&str]| -> Value {
        let mut args = vec![
            "eval",
            "--records",
            s(&test),
            "--model",
            s(&model),
            "--json",
        ];
        args.extend(extra);
        let o = warden(&args);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        serde_json::from_slice(&o.stdout).expect("JSON report")
    };
    let r = eval(&[]);
    assert_eq!(r["evaluation"], "no profile");
    assert_eq!(
        r["bars"][2]["applies"], false,
        "recall's bar is on LOFO figures"
    );
    let r = eval(&["--profiles", s(&profiles)]);
    assert_eq!(r["evaluation"], "with profiles");
    for f in r["functions"].as_array().expect("functions") {
        assert_eq!(f["profiled"], true, "{f}");
        assert_eq!(f["held_out"], false, "{f}");
    }
    // Every function has a profile: the no-profile bar has nothing to judge.
    assert_eq!(r["bars"][0]["applies"], false, "{}", r["bars"][0]);
    let r = eval(&["--profiles", s(&profiles), "--model-only"]);
    assert_eq!(
        r["evaluation"], "no profile",
        "the model alone uses no profile"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// A profiles file of two functions, `api` having learned one destination, one program and one
/// write directory under `scratch`.
fn profiles_file(dir: &Path, scratch: &Path) -> PathBuf {
    let feature_names: Vec<&str> = warden_core::features::FEATURE_NAMES.to_vec();
    let n = feature_names.len();
    let profile = |destinations: Value, exes: Value, writes: Value| {
        json!({
            "vector_version": warden_core::features::VECTOR_VERSION,
            "features": feature_names,
            "invocations": 120,
            "median": vec![0.0; n],
            "mad": vec![1.0; n],
            "known_exes": exes,
            "destinations": destinations,
            "write_paths": writes,
        })
    };
    let profiles = json!({
        "api": profile(
            json!(["192.0.2.10:443", "127.0.0.1:9001"]),
            json!(["/usr/bin/true"]),
            json!([format!("{}/cache/", scratch.display())]),
        ),
        "batch": profile(json!([]), json!([]), json!([])),
    });
    let path = dir.join("profiles.json");
    std::fs::write(&path, serde_json::to_string_pretty(&profiles).unwrap()).unwrap();
    path
}

#[test]
fn policy_export_is_the_same_bytes_every_time_on_stdout_or_in_a_file() {
    let dir = scratch().join("policy-export");
    std::fs::create_dir_all(&dir).unwrap();
    let profiles = profiles_file(&dir, &dir.join("scratch"));
    let args = [
        "policy",
        "export",
        "--profiles",
        s(&profiles),
        "--function",
        "api",
    ];
    let (first, second) = (warden(&args), warden(&args));
    assert!(first.status.success(), "{first:?}");
    assert!(!first.stdout.is_empty());
    assert_eq!(first.stdout, second.stdout);
    let out = dir.join("policy.json");
    let written = warden(&[&args[..], &["--out", s(&out)]].concat());
    assert!(written.status.success(), "{written:?}");
    assert!(written.stdout.is_empty());
    assert_eq!(std::fs::read(&out).unwrap(), first.stdout);
    let policy: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(policy["mode"], "observe", "the default mode");
    assert_eq!(
        policy["egress"],
        json!([{"cidr": "192.0.2.10", "ports": [443]}])
    );
    // A function that is not there is an error naming the ones that are.
    let missing = warden(&[
        "policy",
        "export",
        "--profiles",
        s(&profiles),
        "--function",
        "nope",
    ]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("(it has: api, batch)"), "{stderr}");
}

/// The guard library, built into this test's target directory as the guard's own tests build
/// it (cargo builds a cdylib for `cargo build`, not for another crate's tests).
fn guard_library() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(Path::parent).unwrap();
    let target_dir = profile_dir.parent().unwrap();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../warden-guard/Cargo.toml");
    let mut build = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    build
        .args([
            "build",
            "--quiet",
            "--lib",
            "-p",
            "warden-guard",
            "--manifest-path",
        ])
        .arg(manifest)
        .env("CARGO_TARGET_DIR", target_dir);
    if profile_dir.ends_with("release") {
        build.arg("--release");
    }
    assert!(build.status().unwrap().success(), "building warden-guard");
    profile_dir.join("libwarden_guard.so")
}

/// Tries, under the guard, a learned and an unlearned destination, program and write.
const TRY_LEARNED_AND_NOT: &str = r#"
import socket, subprocess, sys
scratch = sys.argv[1]
for host, port in [("192.0.2.10", 443), ("203.0.113.7", 9)]:
    try:
        socket.create_connection((host, port), timeout=0.2).close()
        print(host, "connected")
    except ConnectionRefusedError:
        print(host, "refused")
    except OSError:
        print(host, "allowed, unreachable")
for program in ["/usr/bin/true", "/usr/bin/env"]:
    try:
        subprocess.run([program], check=True, stdout=subprocess.DEVNULL)
        print(program, "ran")
    except PermissionError:
        print(program, "denied")
for path in [scratch + "/cache/page", scratch + "/payload"]:
    try:
        open(path, "w").close()
        print(path, "written")
    except PermissionError:
        print(path, "denied")
"#;

#[test]
fn an_exported_enforce_policy_is_read_by_the_guard_and_allows_only_what_was_learned() {
    use std::os::linux::net::SocketAddrExt;
    use std::os::unix::net::{SocketAddr, UnixDatagram};

    let dir = scratch().join("policy-guard");
    let work = dir.join("scratch");
    std::fs::create_dir_all(work.join("cache")).unwrap();
    let profiles = profiles_file(&dir, &work);
    let policy = dir.join("policy.json");
    let o = warden(&[
        "policy",
        "export",
        "--profiles",
        s(&profiles),
        "--function",
        "api",
        "--mode",
        "enforce",
        "--out",
        s(&policy),
    ]);
    assert!(o.status.success(), "{o:?}");

    // Warden's socket, read by a thread so the guard never finds it full, until the test
    // says the program is done (however slow a loaded machine makes it).
    const DONE: &[u8] = b"done";
    let name = format!("warden-cli-test-{}", std::process::id());
    let address = SocketAddr::from_abstract_name(&name).unwrap();
    let socket = UnixDatagram::bind_addr(&address).unwrap();
    let reader = std::thread::spawn(move || {
        let (mut events, mut buf) = (Vec::new(), [0u8; 2048]);
        while let Ok(n) = socket.recv(&mut buf) {
            if &buf[..n] == DONE {
                break;
            }
            events.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        events
    });
    // The interpreter itself: a shim script's own execs would break the policy.
    let python = Command::new("python3")
        .args([
            "-c",
            "import os, sys; print(os.path.realpath(sys.executable))",
        ])
        .output()
        .unwrap();
    let python = String::from_utf8(python.stdout).unwrap();
    let out = Command::new(python.trim())
        .args(["-c", TRY_LEARNED_AND_NOT, s(&work)])
        .env("LD_PRELOAD", guard_library())
        .env("WARDEN_GUARD_SOCKET", &name)
        .env("WARDEN_POLICY", &policy)
        .env_remove("WARDEN_GUARD")
        .output()
        .unwrap();
    UnixDatagram::unbound()
        .unwrap()
        .send_to_addr(DONE, &address)
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(
        !stderr.contains("not used"),
        "the guard refused the policy: {stderr}"
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = printed.lines().collect();
    let w = work.display();
    assert_ne!(lines[0], "192.0.2.10 refused", "{printed}");
    assert_eq!(
        lines[1..],
        [
            "203.0.113.7 refused".to_string(),
            "/usr/bin/true ran".into(),
            "/usr/bin/env denied".into(),
            format!("{w}/cache/page written"),
            format!("{w}/payload denied"),
        ]
    );
    let events = reader.join().unwrap();
    let verdict = |kind: &str, body: &str| {
        events
            .iter()
            .filter(|e| e.split('\t').nth(1) == Some(kind) && e.ends_with(body))
            .map(|e| e.split('\t').nth(6).unwrap_or("").to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(verdict("hello", "")[0], "allow", "{events:#?}");
    assert!(events[0].contains("\tenforce\t"), "{events:#?}");
    assert_eq!(
        verdict("connect", "\t192.0.2.10:443"),
        ["allow"],
        "{events:#?}"
    );
    assert_eq!(
        verdict("connect", "\t203.0.113.7:9"),
        ["deny"],
        "{events:#?}"
    );
    assert_eq!(verdict("write", "/payload"), ["deny"], "{events:#?}");
}
