//! Metric aggregation shared by the EMF and the PutMetricData sinks: one window of values per
//! function, closed at once when it holds a finding (alarms on findings fire quickly), after
//! a minute, or when it is full; health figures are the counter increases over the window.
//!
//! Names, units and dimensions are the contract in docs/metrics.md.

use std::collections::BTreeMap;

use crate::health::HealthSnapshot;
use crate::schema::Finding;

/// A window closes after this long (Unix ms) even without a finding.
pub const WINDOW_MS: u64 = 60_000;
/// Most anomaly scores in one window (EMF allows 100 values per metric and line).
pub const MAX_SCORES: usize = 100;

/// A metric's unit, as CloudWatch names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Dimensionless.
    None,
    /// A count.
    Count,
    /// Microseconds.
    Microseconds,
    /// Kilobytes.
    Kilobytes,
}

impl Unit {
    /// CloudWatch's name for the unit.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::None => "None",
            Unit::Count => "Count",
            Unit::Microseconds => "Microseconds",
            Unit::Kilobytes => "Kilobytes",
        }
    }
}

/// One metric and the values it got in a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Metric name.
    pub name: &'static str,
    /// Unit.
    pub unit: Unit,
    /// Extra dimension (beyond FunctionName), e.g. ("Class", "reverse_shell").
    pub dimension: Option<(&'static str, String)>,
    /// Values, each with how many times it occurred.
    pub values: Vec<(f64, u32)>,
    /// 1 (high resolution) or 60.
    pub resolution: i32,
    /// Also published per function version.
    pub per_version: bool,
}

/// A closed window, ready to be written as EMF or sent with PutMetricData.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    /// When the window closed, Unix ms (the metrics' timestamp).
    pub time_unix_ms: u64,
    /// Every series with at least one value.
    pub series: Vec<Series>,
}

/// Health counters summed into each health metric.
const HEALTH_METRICS: [(&str, &[&str]); 4] = [
    (
        "TelemetryDropped",
        &[
            "telemetry_dropped_total",
            "queue_full_total",
            "telemetry_too_large_total",
            "telemetry_over_budget_total",
        ],
    ),
    ("SinkErrors", &["sink_errors_total"]),
    ("FindingsDropped", &["findings_dropped_total"]),
    (
        "HealthWarnings",
        &[
            "config_errors_total",
            "stage_panics_total",
            "subscribe_errors_total",
            "telemetry_parse_errors_total",
            "scored_without_model_total",
            "telemetry_rejected_total",
            "telemetry_connections_closed_total",
            "telemetry_connections_replaced_total",
            "filewatch_limited_total",
            "filewatch_overflows_total",
            "seen_sockets_evicted_total",
            "profile_unavailable_total",
            "profile_rejected_total",
        ],
    ),
];

/// Response counters and the `Action` dimension value each is published under.
const ACTION_COUNTERS: [(&str, &str); 5] = [
    ("response_kill_total", "kill"),
    ("response_recycle_total", "recycle"),
    ("response_throttle_total", "throttle"),
    ("response_lockdown_total", "lockdown"),
    ("responses_dry_run_total", "dry_run"),
];

/// The open window.
#[derive(Debug)]
pub struct Window {
    opened_ms: u64,
    scores: Vec<f32>,
    records: u64,
    findings: u64,
    by_class: BTreeMap<&'static str, u64>,
    by_severity: BTreeMap<&'static str, u64>,
    cpu_us: Vec<u64>,
    memory_kb: u64,
    health_at_open: HealthSnapshot,
}

impl Window {
    /// An empty window; `health` is the counters now (increases are measured from it).
    pub fn new(now_ms: u64, health: HealthSnapshot) -> Window {
        Window {
            opened_ms: now_ms,
            scores: Vec::with_capacity(MAX_SCORES),
            records: 0,
            findings: 0,
            by_class: BTreeMap::new(),
            by_severity: BTreeMap::new(),
            cpu_us: Vec::new(),
            memory_kb: 0,
            health_at_open: health,
        }
    }

    /// One scored invocation: its score and Warden's own cost during it.
    pub fn scored(&mut self, score: f32, warden_cpu_us: u64, warden_rss_kb: u64) {
        self.records += 1;
        self.scores.push(score);
        self.cpu_us.push(warden_cpu_us);
        self.memory_kb = self.memory_kb.max(warden_rss_kb);
    }

    /// One finding.
    pub fn finding(&mut self, f: &Finding) {
        self.findings += 1;
        *self.by_class.entry(f.class.as_str()).or_default() += 1;
        *self.by_severity.entry(severity_name(f)).or_default() += 1;
    }

    /// Whether the window should close now.
    pub fn due(&self, now_ms: u64) -> bool {
        self.findings > 0
            || self.scores.len() >= MAX_SCORES
            || (self.records > 0 && now_ms.saturating_sub(self.opened_ms) >= WINDOW_MS)
    }

    /// Nothing was recorded and no counter moved.
    pub fn is_empty(&self, health: &HealthSnapshot) -> bool {
        self.records == 0 && self.findings == 0 && self.health_at_open == *health
    }

    /// Closes the window into a batch and opens the next one.
    pub fn close(&mut self, now_ms: u64, health: HealthSnapshot) -> Batch {
        let old = std::mem::replace(self, Window::new(now_ms, health.clone()));
        old.into_batch(now_ms, &health)
    }

    fn into_batch(self, now_ms: u64, health: &HealthSnapshot) -> Batch {
        let mut series = Vec::new();
        if !self.scores.is_empty() {
            series.push(Series {
                name: "AnomalyScore",
                unit: Unit::None,
                dimension: None,
                values: counted(
                    self.scores
                        .iter()
                        .map(|s| (f64::from(*s) * 1000.0).round() / 1000.0),
                ),
                resolution: 60,
                per_version: true,
            });
        }
        series.push(count("Findings", None, self.findings, 1, true));
        for (class, n) in &self.by_class {
            series.push(count(
                "Findings",
                Some(("Class", class.to_string())),
                *n,
                1,
                false,
            ));
        }
        for (sev, n) in &self.by_severity {
            series.push(count(
                "Findings",
                Some(("Severity", sev.to_string())),
                *n,
                1,
                false,
            ));
        }
        for (counter, action) in ACTION_COUNTERS {
            let n = increase(&self.health_at_open, health, &[counter]);
            if n > 0 {
                series.push(count(
                    "ResponseActions",
                    Some(("Action", action.to_string())),
                    n,
                    1,
                    false,
                ));
            }
        }
        series.push(count("RecordsSeen", None, self.records, 60, false));
        for (name, counters) in HEALTH_METRICS {
            let n = increase(&self.health_at_open, health, counters);
            series.push(count(name, None, n, 60, false));
        }
        if !self.cpu_us.is_empty() {
            series.push(Series {
                name: "ExtensionCpu",
                unit: Unit::Microseconds,
                dimension: None,
                values: counted(self.cpu_us.iter().map(|v| *v as f64)),
                resolution: 60,
                per_version: false,
            });
            series.push(Series {
                name: "ExtensionMemory",
                unit: Unit::Kilobytes,
                dimension: None,
                values: vec![(self.memory_kb as f64, 1)],
                resolution: 60,
                per_version: false,
            });
        }
        Batch {
            time_unix_ms: now_ms,
            series,
        }
    }
}

fn severity_name(f: &Finding) -> &'static str {
    use crate::schema::Severity;
    match f.severity {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

fn count(
    name: &'static str,
    dimension: Option<(&'static str, String)>,
    n: u64,
    resolution: i32,
    per_version: bool,
) -> Series {
    Series {
        name,
        unit: Unit::Count,
        dimension,
        values: vec![(n as f64, 1)],
        resolution,
        per_version,
    }
}

/// Distinct values with their number of occurrences, in first-seen order.
fn counted(values: impl Iterator<Item = f64>) -> Vec<(f64, u32)> {
    let mut out: Vec<(f64, u32)> = Vec::new();
    for v in values {
        match out.iter_mut().find(|(x, _)| *x == v) {
            Some((_, n)) => *n += 1,
            None => out.push((v, 1)),
        }
    }
    out
}

/// Sum of the increases of `names` between two snapshots.
fn increase(before: &HealthSnapshot, after: &HealthSnapshot, names: &[&str]) -> u64 {
    names
        .iter()
        .map(|n| value(after, n).saturating_sub(value(before, n)))
        .sum()
}

fn value(s: &HealthSnapshot, name: &str) -> u64 {
    s.0.iter().find(|(n, _)| *n == name).map_or(0, |(_, v)| *v)
}

#[cfg(test)]
mod tests;
