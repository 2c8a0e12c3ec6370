//! Embedded Metric Format: a closed metric window as JSON lines on stdout. Lambda sends
//! stdout to CloudWatch Logs, which turns each line into metrics; no API call, no
//! permission, no network traffic from the sandbox.

use serde_json::{json, Map, Value};

use super::metrics::{Batch, Series};

/// The lines for one batch: a main line (metrics by function, and score and findings by
/// function version too) and one line per extra dimension value (class, severity, action),
/// since an EMF member holds one dimension value.
pub fn lines(batch: &Batch, namespace: &str, function: &str, version: &str) -> Vec<String> {
    let main: Vec<&Series> = batch
        .series
        .iter()
        .filter(|s| s.dimension.is_none())
        .collect();
    let mut out = Vec::new();
    if !main.is_empty() {
        let mut root = Map::new();
        root.insert("FunctionName".into(), json!(function));
        root.insert("FunctionVersion".into(), json!(version));
        let mut directives = vec![directive(namespace, &[&["FunctionName"]], &main)];
        let versioned: Vec<&Series> = main.iter().copied().filter(|s| s.per_version).collect();
        if !versioned.is_empty() {
            directives.push(directive(
                namespace,
                &[&["FunctionName", "FunctionVersion"]],
                &versioned,
            ));
        }
        for s in &main {
            root.insert(s.name.into(), member(s));
        }
        out.push(render(batch.time_unix_ms, directives, root));
    }
    for s in batch.series.iter().filter(|s| s.dimension.is_some()) {
        let Some((dim, value)) = &s.dimension else {
            continue;
        };
        let mut root = Map::new();
        root.insert("FunctionName".into(), json!(function));
        root.insert((*dim).into(), json!(value));
        root.insert(s.name.into(), member(s));
        let d = directive(namespace, &[&["FunctionName", dim]], &[s]);
        out.push(render(batch.time_unix_ms, vec![d], root));
    }
    out
}

fn directive(namespace: &str, dimensions: &[&[&str]], series: &[&Series]) -> Value {
    let metrics: Vec<Value> = series
        .iter()
        .map(|s| {
            let mut m = json!({"Name": s.name, "Unit": s.unit.as_str()});
            if s.resolution == 1 {
                m["StorageResolution"] = json!(1);
            }
            m
        })
        .collect();
    json!({"Namespace": namespace, "Dimensions": dimensions, "Metrics": metrics})
}

/// A single value as a number; several as an array (each occurrence repeated).
fn member(s: &Series) -> Value {
    let mut all: Vec<f64> = Vec::new();
    for (v, n) in &s.values {
        all.extend(std::iter::repeat_n(*v, *n as usize));
    }
    match all.as_slice() {
        [one] => json!(one),
        many => json!(many),
    }
}

fn render(time_unix_ms: u64, directives: Vec<Value>, mut root: Map<String, Value>) -> String {
    root.insert(
        "_aws".into(),
        json!({"Timestamp": time_unix_ms, "CloudWatchMetrics": directives}),
    );
    Value::Object(root).to_string()
}

#[cfg(test)]
mod tests;
