//! The finding: one JSON line per detection, documented in docs/findings.md (with its
//! mapping to an OCSF Detection Finding). Raw payloads and log text never appear in it;
//! evidence is redacted.

use serde::{Deserialize, Serialize};

use super::indicators::Indicator;
use super::scorer::Class;
use crate::respond::ActionRecord;
use crate::sources::sampler::Observation;

/// Version of the finding layout; first field of every finding line.
pub const FINDING_VERSION: u32 = 1;

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth a look.
    Low,
    /// Likely malicious or broken.
    Medium,
    /// Malicious behaviour.
    High,
    /// Malicious behaviour with direct impact (remote shell, stolen credentials, payload run).
    Critical,
}

impl Severity {
    /// OCSF `severity_id`.
    pub fn ocsf_id(self) -> u8 {
        match self {
            Severity::Low => 2,
            Severity::Medium => 3,
            Severity::High => 4,
            Severity::Critical => 5,
        }
    }
}

/// Where a feature's share of the score came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// An indicator that points at this feature.
    Indicator,
    /// The feature's distance from the function's baseline.
    Baseline,
    /// The model's attribution.
    Model,
}

/// One feature's part in a finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Feature name (docs/findings.md, vector).
    pub feature: String,
    /// Value in this invocation, raw units.
    pub observed: f64,
    /// The function's normal range, raw units; absent while the baseline warms up.
    pub normal: Option<[f64; 2]>,
    /// Robust z-score against the baseline; absent while it warms up.
    pub z: Option<f32>,
    /// Share of the score (the shares of a finding sum to its score).
    pub contribution: f32,
    /// The largest source of that share.
    pub source: Source,
}

/// The model's view, when a model was used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelView {
    /// Predicted attack class, if any.
    pub class: Option<Class>,
    /// Its probability.
    pub probability: f32,
    /// Novelty, 0..1.
    pub anomaly: f32,
}

/// State of the function's baseline when the finding was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BaselineView {
    /// Statistical scoring was active.
    pub warmed_up: bool,
    /// Invocations learned.
    pub learned: u64,
}

/// One detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Always [`FINDING_VERSION`]; first, so log queries can find findings by it.
    pub warden_finding: u32,
    /// Unique id.
    pub id: String,
    /// When the finding was made, Unix ms.
    pub time_unix_ms: u64,
    /// The invocation.
    pub request_id: Option<String>,
    /// Function name.
    pub function_name: String,
    /// Function version.
    pub function_version: String,
    /// What happened.
    pub class: Class,
    /// How urgent.
    pub severity: Severity,
    /// Combined score, 0..1.
    pub score: f32,
    /// Made while the invocation was still running (from an indicator), not from its record.
    pub realtime: bool,
    /// Indicators that fired.
    pub indicators: Vec<Indicator>,
    /// Top contributing features.
    pub explanation: Vec<Explanation>,
    /// Concrete observations, redacted.
    pub evidence: Vec<Observation>,
    /// The model's view (absent without a model).
    pub model: Option<ModelView>,
    /// The baseline's state.
    pub baseline: BaselineView,
    /// Ids of earlier findings for the same invocation.
    pub related: Vec<String>,
    /// Earlier invocations this finding also reports: the first errors of a probing
    /// burst, held until the burst showed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_requests: Vec<String>,
    /// The audit trail: one entry per response action considered (docs/responses.md).
    pub actions: Vec<ActionRecord>,
    /// Feature record schema version.
    pub feature_schema: u32,
    /// Feature vector version.
    pub vector_version: u32,
}
