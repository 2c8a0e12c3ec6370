//! The scenario corpus, live: `warden eval --live` runs the corpus's small cut in the sandbox
//! (real functions, real attacks; `scripts/scenarios --check` fails the run if an attack did
//! not really happen) and scores what Warden recorded with the shipped model through the
//! extension's detector, each function's detector seeded with its profile (what learn mode
//! gives a user before enforcing) where it has one. The new runtimes (a bash custom runtime,
//! Node.js on its own loop, a converter that shells out) have none: they run as a new user's
//! functions would.

use std::process::Command;

use serde_json::Value;
use warden_sandbox::harness::{bin, repo_root};

#[test]
fn every_attack_of_the_live_corpus_happens_and_is_found() {
    warden_sandbox::skip_without_isolation!();
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
    // The small cut has a handful of each class. What it misses are in-process attacks that
    // leave no process behind: credentials read from the runtime's own environment and sent
    // over a connection like any other, and beacon threads (docs/detection.md).
    assert!(
        detected * 100 >= support * 80,
        "attack recall {detected}/{support}: {report:#}"
    );
    let functions = report["functions"].as_array().unwrap();
    let count = |profiled: bool, field: &str| -> u64 {
        functions
            .iter()
            .filter(|f| f["profiled"].as_bool() == Some(profiled))
            .map(|f| f[field].as_u64().unwrap())
            .sum()
    };
    // Functions with a profile (learned in learn mode) have no learning period.
    let (flagged, benign) = (count(true, "false_positives"), count(true, "benign"));
    assert!(
        flagged * 100 <= benign * 5,
        "profiled functions: {flagged}/{benign} benign flagged: {report:#}"
    );
    // Functions without one (the held-out ones) are in their learning
    // period all through the small cut: each new habit is reported once, at low severity,
    // and no benign invocation gets a high or critical finding without a hard indicator.
    // (With a profile there is no learning period: a benign record right after an attack can
    // carry the attack's own leftovers, a shell the thaw raced into it, at full severity; the
    // profiled share above bounds those.)
    for f in functions
        .iter()
        .filter(|f| f["profiled"].as_bool() == Some(false))
    {
        assert_eq!(
            f["high_without_hard_first_benign"].as_u64(),
            Some(0),
            "{}: a benign invocation reported high without a hard indicator: {report:#}",
            f["function"]
        );
    }
    assert!(
        count(false, "false_positives") < count(false, "benign") / 2,
        "unprofiled functions flood: {report:#}"
    );
}
