//! What a test run of Warden in the sandbox produced, by invocation: its findings and
//! records, grouped by request id, with assertions that print everything when they fail.

use std::collections::HashMap;

use serde_json::Value;

use crate::harness::{Run, Sandbox};

/// A finished run with Warden's findings and invocation records by request id.
pub struct Outcome {
    /// The run itself (invocations, stdout).
    pub run: Run,
    /// Findings by request id; the init phase's are under "" (they name no request).
    pub findings: HashMap<String, Vec<Value>>,
    /// Invocation records by request id.
    pub records: HashMap<String, Value>,
}

impl Outcome {
    /// Runs `events` through `function` with Warden attached (records on, no model), checks
    /// that the run itself succeeded and groups what Warden printed.
    pub fn of(function: Sandbox, events: &[Value]) -> Outcome {
        let run = function
            .env("WARDEN_RECORDS", "1")
            .env("WARDEN_MODEL", "none")
            .run(events);
        run.assert_ok();
        Outcome::from_run(run)
    }

    /// Groups what Warden printed in `run`.
    pub fn from_run(run: Run) -> Outcome {
        let mut findings: HashMap<String, Vec<Value>> = HashMap::new();
        for f in run.stdout_json_with("warden_finding") {
            let id = f["request_id"].as_str().unwrap_or_default().to_string();
            findings.entry(id).or_default().push(f);
        }
        let records = run
            .stdout_json_with("warden_schema")
            .into_iter()
            .filter(|r| r["kind"] == "invoke")
            .map(|r| (r["request_id"].as_str().unwrap_or_default().to_string(), r))
            .collect();
        Outcome {
            run,
            findings,
            records,
        }
    }

    /// Panics, with the statuses and the sandbox's stderr, unless every invocation
    /// succeeded.
    pub fn assert_all_succeeded(&self) {
        assert!(
            self.run.statuses().iter().all(|s| s == "success"),
            "{:?}\n{}",
            self.run.statuses(),
            self.run.stderr
        );
    }

    /// The request id of invocation `index`.
    pub fn request_id(&self, index: usize) -> String {
        self.run.invocations[index]["request_id"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The findings of invocation `index`.
    pub fn findings_of(&self, index: usize) -> &[Value] {
        self.findings
            .get(&self.request_id(index))
            .map_or(&[], Vec::as_slice)
    }

    /// The init phase's findings (they name no request id).
    pub fn init_findings(&self) -> &[Value] {
        self.findings.get("").map_or(&[], Vec::as_slice)
    }

    /// The finding of `class` for invocation `index`; panics with everything printed.
    pub fn finding(&self, index: usize, class: &str) -> &Value {
        self.findings_of(index)
            .iter()
            .find(|f| f["class"] == class)
            .unwrap_or_else(|| {
                panic!(
                    "no {class} finding for invocation {index}; findings: {:#?}\nstdout:\n{}",
                    self.findings_of(index),
                    self.run.stdout
                )
            })
    }

    /// Asserts that invocation `index` has a finding matching `pred` (`what` names it).
    pub fn has(&self, index: usize, pred: impl Fn(&Value) -> bool, what: &str) {
        assert!(
            self.findings_of(index).iter().any(pred),
            "no {what} for invocation {index}; findings: {:#?}\nstdout:\n{}",
            self.findings_of(index),
            self.run.stdout
        );
    }

    /// The response of invocation `index`.
    pub fn response(&self, index: usize) -> &Value {
        &self.run.invocations[index]["response"]
    }

    /// The counters of Warden's health line.
    pub fn health(&self) -> Value {
        self.run
            .stdout_json_with("warden_schema")
            .into_iter()
            .find(|r| r["kind"] == "health")
            .map(|r| r["counters"].clone())
            .unwrap_or_else(|| panic!("no health line:\n{}", self.run.stdout))
    }
}
