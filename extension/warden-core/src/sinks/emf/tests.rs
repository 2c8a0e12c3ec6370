use serde_json::Value;

use super::*;
use crate::health::Health;
use crate::schema::Class;
use crate::schema::Severity;
use crate::sinks::metrics::Window;
use crate::testing::finding_of;

fn batch() -> Batch {
    let health = Health::default();
    let mut w = Window::new(0, health.snapshot());
    w.scored(0.25, 200, 1_500);
    w.scored(0.25, 300, 1_600);
    w.finding(&finding_of(Class::Dropper, Severity::Critical));
    w.close(1_000, health.snapshot())
}

#[test]
fn lines_follow_the_embedded_metric_format() {
    let lines = lines(&batch(), "Warden", "orders-api", "7");
    let parsed: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // main line + class + severity
    assert_eq!(parsed.len(), 3);
    let main = &parsed[0];
    assert_eq!(main["_aws"]["Timestamp"], 1_000);
    let directives = main["_aws"]["CloudWatchMetrics"].as_array().unwrap();
    assert_eq!(directives[0]["Namespace"], "Warden");
    assert_eq!(
        directives[0]["Dimensions"],
        serde_json::json!([["FunctionName"]])
    );
    assert_eq!(
        directives[1]["Dimensions"],
        serde_json::json!([["FunctionName", "FunctionVersion"]])
    );
    assert_eq!(main["FunctionName"], "orders-api");
    assert_eq!(main["AnomalyScore"], serde_json::json!([0.25, 0.25]));
    assert_eq!(main["Findings"], 1.0);
    // Every metric a directive names has a member at the root, as EMF requires.
    for line in &parsed {
        for d in line["_aws"]["CloudWatchMetrics"].as_array().unwrap() {
            for m in d["Metrics"].as_array().unwrap() {
                let name = m["Name"].as_str().unwrap();
                assert!(!line[name].is_null(), "{name} has a value");
            }
            for set in d["Dimensions"].as_array().unwrap() {
                for dim in set.as_array().unwrap() {
                    assert!(line[dim.as_str().unwrap()].is_string(), "{dim} has a value");
                }
            }
        }
    }
    let class = parsed.iter().find(|l| l["Class"] == "dropper").unwrap();
    assert_eq!(class["Findings"], 1.0);
    let m = &class["_aws"]["CloudWatchMetrics"][0]["Metrics"][0];
    assert_eq!(m["StorageResolution"], 1, "findings are high resolution");
    assert!(lines.iter().all(|l| l.len() < 256 * 1024));
}
