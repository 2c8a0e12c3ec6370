//! The scenario corpus, live: `warden eval --live` runs the corpus's small cut in the sandbox
//! (real functions, real attacks; `scripts/scenarios --check` fails the run if an attack did
//! not really happen) and scores what Warden recorded with the shipped model through the
//! extension's detector, each function's detector seeded with its profile (what learn mode
//! gives a user before enforcing).

use std::process::Command;

use serde_json::Value;
use warden_sandbox::harness::{bin, repo_root};

#[test]
fn every_attack_of_the_live_corpus_happens_and_is_found() {
    if !warden_sandbox::isolation::available() {
        eprintln!("needs root for the sandbox's namespaces; skipping");
        return;
    }
    let out = Command::new(bin("warden"))
        .args([
            "eval",
            "--live",
            "--scale",
            "small",
            "--corpus-seed",
            "7",
            "--json",
        ])
        .arg("--model")
        .arg(repo_root().join("layer/model/model.bin"))
        // The corpus functions' profiles, learned from the training split (docs/detection.md).
        .arg("--profiles")
        .arg(repo_root().join("tests/scenarios/profiles.json"))
        .current_dir(repo_root())
        .output()
        .expect("running warden eval --live");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "warden eval --live failed:\n{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("a JSON report");
    let classes = report["classes"].as_array().unwrap();
    let attacks: Vec<&Value> = classes.iter().filter(|c| c["class"] != "benign").collect();
    assert_eq!(attacks.len(), 10, "every attack class ran: {report:#}");
    for c in &attacks {
        assert!(
            c["detected"].as_u64().unwrap() > 0,
            "{} never found: {report:#}",
            c["class"]
        );
    }
    let support: u64 = attacks.iter().map(|c| c["support"].as_u64().unwrap()).sum();
    let detected: u64 = attacks
        .iter()
        .map(|c| c["detected"].as_u64().unwrap())
        .sum();
    // The small cut has a handful of each class; bursts of probing are short there.
    assert!(
        detected * 100 >= support * 85,
        "attack recall {detected}/{support}: {report:#}"
    );
    // Its 115 benign invocations are mostly in their environments' warm-up; the held-out
    // Rust function's outbound batches there are what the model mistakes most (about 3 of
    // its 6). Online without profiles, doc-convert's own shell commands alone give ~14%.
    let fp = report["false_positive_rate"].as_f64().unwrap();
    assert!(fp <= 0.10, "false positives {fp}: {report:#}");
}
