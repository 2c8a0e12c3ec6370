//! Wire types of the Telemetry API records (schema 2022-12-13), one struct per
//! `platform.*` type. Plain serde data, strings borrowed from the batch where possible.

use std::borrow::Cow;

use serde::Deserialize;

/// A named span of a platform event.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span<'a> {
    /// Span name, e.g. `responseLatency`, `responseDuration`, `runtimeOverhead`.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Length of the span in ms.
    pub duration_ms: f64,
}

/// `platform.initStart`: the init (or a re-init) phase began.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitStart<'a> {
    /// on-demand, provisioned-concurrency, snap-start, lambda-managed-instances.
    #[serde(borrow, default)]
    pub initialization_type: Option<Cow<'a, str>>,
    /// `init`, or `invoke` when init is retried at the first invoke.
    #[serde(borrow, default)]
    pub phase: Option<Cow<'a, str>>,
    /// Runtime version, e.g. `python:3.12.v20`.
    #[serde(borrow, default)]
    pub runtime_version: Option<Cow<'a, str>>,
}

/// `platform.initRuntimeDone`: the runtime finished init.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitRuntimeDone<'a> {
    /// success, error or failure.
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
    /// The error category when not successful.
    #[serde(borrow, default)]
    pub error_type: Option<Cow<'a, str>>,
}

/// `metrics` of an init or restore report.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseMetrics {
    /// Phase duration in ms.
    pub duration_ms: f64,
}

/// `platform.initReport` and `platform.restoreReport`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseReport<'a> {
    /// success, error, failure (absent in older schemas).
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
    /// The error category when not successful.
    #[serde(borrow, default)]
    pub error_type: Option<Cow<'a, str>>,
    /// Phase figures.
    #[serde(default)]
    pub metrics: Option<PhaseMetrics>,
}

/// `platform.restoreStart` (SnapStart): fields are informational only.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStart<'a> {
    /// Runtime version.
    #[serde(borrow, default)]
    pub runtime_version: Option<Cow<'a, str>>,
}

/// `platform.restoreRuntimeDone`.
pub type RestoreRuntimeDone<'a> = InitRuntimeDone<'a>;

/// `platform.start`: an invocation began.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start<'a> {
    /// Request id.
    #[serde(borrow)]
    pub request_id: Cow<'a, str>,
    /// Function version.
    #[serde(borrow, default)]
    pub version: Option<Cow<'a, str>>,
}

/// `metrics` of `platform.runtimeDone`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeDoneMetrics {
    /// Time from the invoke to the runtime's response or error, ms.
    pub duration_ms: f64,
    /// Size of the response, bytes.
    #[serde(default)]
    pub produced_bytes: Option<u64>,
}

/// `platform.runtimeDone`: the runtime finished the invocation.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeDone<'a> {
    /// Request id.
    #[serde(borrow)]
    pub request_id: Cow<'a, str>,
    /// success, error, failure, timeout.
    #[serde(borrow)]
    pub status: Cow<'a, str>,
    /// Error category, e.g. `Runtime.ExitError`.
    #[serde(borrow, default)]
    pub error_type: Option<Cow<'a, str>>,
    /// Duration and response size.
    #[serde(default)]
    pub metrics: Option<RuntimeDoneMetrics>,
    /// responseLatency, responseDuration, runtimeOverhead.
    #[serde(borrow, default)]
    pub spans: Vec<Span<'a>>,
}

/// `metrics` of `platform.report`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportMetrics {
    /// Invocation duration, ms.
    pub duration_ms: f64,
    /// Billed duration, ms (absent on Managed Instances).
    #[serde(default)]
    pub billed_duration_ms: Option<u64>,
    /// Configured memory, MB.
    #[serde(rename = "memorySizeMB", default)]
    pub memory_size_mb: Option<u64>,
    /// Peak memory of the environment during the invocation, MB.
    #[serde(rename = "maxMemoryUsedMB", default)]
    pub max_memory_used_mb: Option<u64>,
    /// Init duration on a cold start, ms.
    #[serde(default)]
    pub init_duration_ms: Option<f64>,
    /// SnapStart restore duration, ms.
    #[serde(default)]
    pub restore_duration_ms: Option<f64>,
}

/// `platform.report`: the invocation's final figures (arrives after every extension is done).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report<'a> {
    /// Request id.
    #[serde(borrow)]
    pub request_id: Cow<'a, str>,
    /// success, error, failure, timeout.
    #[serde(borrow, default)]
    pub status: Option<Cow<'a, str>>,
    /// Error category.
    #[serde(borrow, default)]
    pub error_type: Option<Cow<'a, str>>,
    /// Figures.
    pub metrics: ReportMetrics,
}

/// `platform.extension`: an extension registered.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension<'a> {
    /// Extension name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Ready, ...
    #[serde(borrow)]
    pub state: Cow<'a, str>,
    /// Events it registered for.
    #[serde(borrow, default)]
    pub events: Vec<Cow<'a, str>>,
}

/// `platform.telemetrySubscription`: an extension subscribed.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySubscription<'a> {
    /// Extension name.
    #[serde(borrow)]
    pub name: Cow<'a, str>,
    /// Subscribed, ...
    #[serde(borrow)]
    pub state: Cow<'a, str>,
    /// Types subscribed to.
    #[serde(borrow, default)]
    pub types: Vec<Cow<'a, str>>,
}

/// `platform.logsDropped`: Lambda dropped records because a subscriber lagged.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsDropped<'a> {
    /// Why.
    #[serde(borrow, default)]
    pub reason: Cow<'a, str>,
    /// Records dropped.
    pub dropped_records: u64,
    /// Bytes dropped.
    pub dropped_bytes: u64,
}

/// A `function` or `extension` record in JSON log format: only the fields Warden reads.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JsonLog<'a> {
    /// Log level (ERROR, WARN, INFO ...), when the logger sets one.
    #[serde(borrow, default)]
    pub level: Option<Cow<'a, str>>,
    /// Request id, set by Lambda's JSON log format.
    #[serde(borrow, default)]
    pub request_id: Option<Cow<'a, str>>,
    /// The message: a string, or any JSON value a structured logger put there.
    #[serde(borrow, default)]
    pub message: Option<&'a serde_json::value::RawValue>,
}
