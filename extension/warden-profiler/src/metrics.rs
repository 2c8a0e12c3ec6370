//! The profiler's metrics, one Embedded Metric Format line per function on stdout (Lambda
//! puts it in the profiler's log group and CloudWatch extracts the metrics; no API call).
//! The dashboard plots them per function (docs/metrics.md, "Fleet learning").

use serde_json::{json, Map, Value};

/// What one run knows of a function's profile.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ProfileState {
    /// Seconds since the function's profile object was last written; `None`: there is none.
    pub(crate) age_seconds: Option<u64>,
    /// Clean invocations the profile (or, while learning, this run) learned from.
    pub(crate) invocations: u64,
    /// Environments they came from.
    pub(crate) environments: u64,
    /// Whether the function has no profile to start new environments warmed.
    pub(crate) learning: bool,
}

/// The EMF line for `function`.
pub(crate) fn emf_line(
    namespace: &str,
    function: &str,
    state: &ProfileState,
    now_ms: u64,
) -> String {
    let mut metrics = vec![
        json!({"Name": "ProfileInvocations", "Unit": "Count"}),
        json!({"Name": "ProfileEnvironments", "Unit": "Count"}),
        json!({"Name": "ProfileLearning", "Unit": "None"}),
    ];
    let mut root = Map::new();
    root.insert("FunctionName".into(), function.into());
    root.insert("ProfileInvocations".into(), state.invocations.into());
    root.insert("ProfileEnvironments".into(), state.environments.into());
    root.insert("ProfileLearning".into(), u64::from(state.learning).into());
    if let Some(age) = state.age_seconds {
        metrics.push(json!({"Name": "ProfileAge", "Unit": "Seconds"}));
        root.insert("ProfileAge".into(), age.into());
    }
    root.insert(
        "_aws".into(),
        json!({
            "Timestamp": now_ms,
            "CloudWatchMetrics": [{
                "Namespace": namespace,
                "Dimensions": [["FunctionName"]],
                "Metrics": metrics,
            }],
        }),
    );
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_metric_has_its_value_and_the_age_only_when_known() {
        let state = ProfileState {
            age_seconds: Some(90),
            invocations: 40,
            environments: 3,
            learning: false,
        };
        let line: Value = serde_json::from_str(&emf_line("Warden", "orders", &state, 5)).unwrap();
        let directive = &line["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Namespace"], "Warden");
        for m in directive["Metrics"].as_array().unwrap() {
            assert!(line[m["Name"].as_str().unwrap()].is_u64(), "{line}");
        }
        assert_eq!(
            (
                line["ProfileAge"].as_u64(),
                line["ProfileLearning"].as_u64()
            ),
            (Some(90), Some(0))
        );
        let none = ProfileState {
            age_seconds: None,
            learning: true,
            ..state
        };
        let line: Value = serde_json::from_str(&emf_line("Warden", "orders", &none, 5)).unwrap();
        assert!(line.get("ProfileAge").is_none());
        assert_eq!(
            line["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                .as_array()
                .unwrap()
                .len(),
            3
        );
    }
}
