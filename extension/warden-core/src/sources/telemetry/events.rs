//! Telemetry events as the assembler consumes them: owned, small, log text already reduced
//! to counts.

use crate::schema::LogStats;
use crate::schema::Status;

/// Figures of `platform.runtimeDone`.
#[derive(Debug, Clone, PartialEq)]
pub struct RuntimeDone {
    /// Request id.
    pub request_id: String,
    /// Outcome.
    pub status: Status,
    /// Error category.
    pub error_type: Option<String>,
    /// Runtime duration, ms.
    pub duration_ms: Option<f64>,
    /// Response size, bytes.
    pub produced_bytes: Option<u64>,
    /// `responseLatency` span, ms.
    pub response_latency_ms: Option<f64>,
    /// `responseDuration` span, ms.
    pub response_duration_ms: Option<f64>,
    /// `runtimeOverhead` span, ms.
    pub runtime_overhead_ms: Option<f64>,
    /// When the runtime finished (the event's `time`), unix ms.
    pub time_unix_ms: Option<u64>,
}

/// Figures of `platform.report`.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    /// Request id.
    pub request_id: String,
    /// Outcome.
    pub status: Status,
    /// Error category.
    pub error_type: Option<String>,
    /// Invocation duration, ms.
    pub duration_ms: f64,
    /// Billed duration, ms.
    pub billed_duration_ms: Option<u64>,
    /// Configured memory, MB.
    pub memory_size_mb: Option<u64>,
    /// Peak memory, MB.
    pub max_memory_used_mb: Option<u64>,
    /// Init duration on a cold start, ms.
    pub init_duration_ms: Option<f64>,
    /// Restore duration, ms.
    pub restore_duration_ms: Option<f64>,
}

/// Which start-up phase a phase event belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    /// Normal init.
    Init,
    /// SnapStart restore.
    Restore,
}

/// One telemetry event.
#[derive(Debug, Clone, PartialEq)]
pub enum TelemetryEvent {
    /// `platform.initStart` / `platform.restoreStart`.
    PhaseStart {
        /// Init or restore.
        phase: Phase,
        /// Initialization type (on-demand, provisioned-concurrency, snap-start ...).
        initialization_type: Option<String>,
    },
    /// `platform.initRuntimeDone` / `platform.restoreRuntimeDone`.
    PhaseRuntimeDone {
        /// Init or restore.
        phase: Phase,
        /// Outcome.
        status: Status,
        /// Error category.
        error_type: Option<String>,
    },
    /// `platform.initReport` / `platform.restoreReport`.
    PhaseReport {
        /// Init or restore.
        phase: Phase,
        /// Outcome (absent in older schemas).
        status: Status,
        /// Error category.
        error_type: Option<String>,
        /// Duration, ms.
        duration_ms: Option<f64>,
    },
    /// `platform.start`.
    Start {
        /// Request id.
        request_id: String,
    },
    /// `platform.runtimeDone`.
    RuntimeDone(RuntimeDone),
    /// `platform.report`.
    Report(Report),
    /// `platform.extension`.
    Extension {
        /// Extension name.
        name: String,
        /// Registration state.
        state: String,
    },
    /// `platform.telemetrySubscription`.
    Subscription {
        /// Extension name.
        name: String,
        /// Subscription state.
        state: String,
    },
    /// `platform.logsDropped`.
    LogsDropped {
        /// Records dropped.
        records: u64,
        /// Bytes dropped.
        bytes: u64,
    },
    /// `function`: one record of the function's output, reduced to counts.
    FunctionLog {
        /// Request id when the record carries one (JSON log format).
        request_id: Option<String>,
        /// Counts.
        stats: LogStats,
    },
    /// `extension`: one record of an extension's output (Warden's own lines excluded).
    ExtensionLog {
        /// Counts.
        stats: LogStats,
    },
    /// Not from Lambda: the listener refused a request without the subscription's token.
    /// The assembler reports it as tampering with the invocation in flight.
    Forged,
    /// A type Warden does not know, kept verbatim so nothing is lost.
    Unknown {
        /// The `type` field.
        event_type: String,
        /// The `record` field as JSON text.
        record: String,
    },
}
