//! Warden's own health: monotonically increasing counters, and "log once" for trouble.
//!
//! Every handled problem (bad setting, unknown telemetry, full queue, caught panic) bumps a
//! counter and logs a single line the first time it happens, so a persistent fault cannot
//! flood the function's logs.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use serde::Serialize;

macro_rules! counters {
    ($($variant:ident => $name:literal : $doc:literal,)*) => {
        /// One health counter.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum Counter {
            $(#[doc = $doc] $variant,)*
        }

        impl Counter {
            /// Every counter, in a fixed order.
            pub const ALL: &'static [Counter] = &[$(Counter::$variant,)*];

            /// The counter's exported name (ends in `_total`).
            pub fn name(self) -> &'static str {
                match self {
                    $(Counter::$variant => $name,)*
                }
            }
        }
    };
}

counters! {
    RecordsEmitted => "records_emitted_total": "Feature records handed to the sinks.",
    RecordsIncomplete => "records_incomplete_total": "Records emitted before their platform report arrived.",
    TelemetryBatches => "telemetry_batches_total": "Telemetry API POSTs received.",
    TelemetryRecords => "telemetry_records_total": "Telemetry events received.",
    TelemetryUnknown => "telemetry_unknown_total": "Events of a type Warden does not know (kept as opaque).",
    TelemetryParseErrors => "telemetry_parse_errors_total": "Batches or events that failed to parse.",
    TelemetryLate => "telemetry_late_total": "Platform events for an invocation already emitted.",
    TelemetryDropped => "telemetry_dropped_total": "Records Lambda reported as dropped (platform.logsDropped).",
    QueueFull => "queue_full_total": "Messages dropped because a stage's queue was full.",
    StagePanics => "stage_panics_total": "Panics caught in a stage.",
    ConfigErrors => "config_errors_total": "Settings that were invalid and replaced by their default.",
    PendingDropped => "pending_dropped_total": "Invocations evicted because too many were pending.",
    ProcErrors => "proc_errors_total": "Failed reads of /proc.",
    ObservationsDropped => "observations_dropped_total": "Sampler observations over the per-record cap.",
    SubscribeErrors => "subscribe_errors_total": "Telemetry API subscriptions or listener binds that failed.",
    FindingsEmitted => "findings_emitted_total": "Findings written.",
    FindingsDropped => "findings_dropped_total": "Findings that could not be written.",
    FindingsSummarised => "findings_summarised_total": "Findings not written while the environment learns: they showed only habits, or a model class, already reported.",
    ModelVotesUnsupported => "model_votes_unsupported_total": "Invocations only the model called an attack (no indicator, no baseline deviation) past the learning period: not reported.",
    ScoredWithoutModel => "scored_without_model_total": "Invocations scored by baseline and rules alone (no usable model).",
    SinkErrors => "sink_errors_total": "Failed deliveries to CloudWatch, Security Hub or EventBridge (each is retried).",
    MetricsDropped => "metrics_dropped_total": "Metric datums given up (full queue, or still unsent at shutdown).",
    MetricDatumsSent => "metric_datums_sent_total": "Metric datums accepted by PutMetricData.",
    FindingsForwarded => "findings_forwarded_total": "Findings accepted by Security Hub or EventBridge (one per destination).",
    ResponsesTaken => "responses_taken_total": "Response actions taken (recycle and throttle: requested).",
    ResponsesDryRun => "responses_dry_run_total": "Response actions decided but not taken (WARDEN_DRY_RUN).",
    ResponsesFailed => "responses_failed_total": "Response actions that failed (throttle calls included when their answer arrives).",
    ResponsesSkipped => "responses_skipped_total": "Response actions with nothing to act on or not allowed now.",
    ResponseKill => "response_kill_total": "Process trees killed.",
    ResponseRecycle => "response_recycle_total": "Environment recycles requested.",
    ResponseThrottle => "response_throttle_total": "Throttle calls issued.",
    ResponseLockdown => "response_lockdown_total": "Lockdowns: the guard told to refuse unknown egress and exec.",
    TelemetryRejected => "telemetry_rejected_total": "Requests to the telemetry listener without the subscription's path token (answered 404).",
    TelemetryTamper => "telemetry_tamper_total": "Telemetry for a request never announced, or contradicting the platform's first figures.",
    TelemetryTooLarge => "telemetry_too_large_total": "Telemetry bodies over the size bound (dropped).",
    TelemetryOverBudget => "telemetry_over_budget_total": "Telemetry batches dropped because the queue held its byte budget.",
    ConnectionsClosed => "telemetry_connections_closed_total": "Telemetry connections closed past their deadline without a valid request (slow or idle clients).",
    ConnectionsReplaced => "telemetry_connections_replaced_total": "Telemetry connections closed to make room at the connection cap (or refused when every slot was the platform's).",
    WatchLimit => "filewatch_limited_total": "Directories left unwatched at the inotify watch cap.",
    WatchOverflows => "filewatch_overflows_total": "inotify queue overflows (the watched directories are rescanned).",
    SocketsEvicted => "seen_sockets_evicted_total": "Entries evicted from the sampler's seen-socket table at its cap.",
    GuardProcesses => "guard_processes_total": "Function processes the in-process guard loaded in (their hello).",
    GuardPolicyErrors => "guard_policy_errors_total": "Function processes whose guard could not use the zero-trust policy (it ran without).",
    GuardDropped => "guard_dropped_total": "Guard events lost: the guard could not send them, or Warden's queue was full.",
    GuardRingEvents => "guard_ring_events_total": "Guard events read from the guard's shared ring (the rest came as datagrams).",
    GuardRejected => "guard_rejected_total": "Guard events rejected as malformed or oversized, or a ring the function wrote over.",
    GuardForged => "guard_forged_total": "Guard datagrams naming a process other than their sender (forged).",
    ProfileUnavailable => "profile_unavailable_total": "An s3:// profile not had at init: S3 unreachable or too slow for the deadline, the object missing, access denied, no credentials.",
    ProfileRejected => "profile_rejected_total": "A profile read but refused: malformed, too large, a content hash that does not match, another function's, or for another build's features.",
}

/// The counters, shared by every stage.
#[derive(Debug)]
pub struct Health {
    values: Vec<AtomicU64>,
    logged: Vec<AtomicBool>,
}

impl Default for Health {
    fn default() -> Self {
        Health {
            values: Counter::ALL.iter().map(|_| AtomicU64::new(0)).collect(),
            logged: Counter::ALL
                .iter()
                .map(|_| AtomicBool::new(false))
                .collect(),
        }
    }
}

impl Health {
    /// Adds `n` to a counter.
    pub fn add(&self, counter: Counter, n: u64) {
        if let Some(v) = self.values.get(counter as usize) {
            v.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Counts one occurrence of a problem and logs it at warn level the first time only.
    pub fn note(&self, counter: Counter, detail: fmt::Arguments<'_>) {
        self.add(counter, 1);
        let first = self
            .logged
            .get(counter as usize)
            .is_some_and(|f| !f.swap(true, Ordering::Relaxed));
        if first {
            crate::warn!(
                "{detail} (counted in {}; further occurrences are not logged)",
                counter.name()
            );
        }
    }

    /// Current value of a counter.
    pub fn get(&self, counter: Counter) -> u64 {
        self.values
            .get(counter as usize)
            .map_or(0, |v| v.load(Ordering::Relaxed))
    }

    /// All counters by name, for a health record or metrics.
    pub fn snapshot(&self) -> HealthSnapshot {
        HealthSnapshot(
            Counter::ALL
                .iter()
                .map(|c| (c.name(), self.get(*c)))
                .collect(),
        )
    }
}

impl Health {
    /// Response actions by the metric dimension `Action`: taken kills, recycles, throttles and
    /// lockdowns,
    /// and every action decided in dry run.
    pub fn response_actions(&self) -> [(&'static str, u64); 5] {
        [
            ("kill", self.get(Counter::ResponseKill)),
            ("recycle", self.get(Counter::ResponseRecycle)),
            ("throttle", self.get(Counter::ResponseThrottle)),
            ("lockdown", self.get(Counter::ResponseLockdown)),
            ("dry_run", self.get(Counter::ResponsesDryRun)),
        ]
    }
}

/// Counter values at one moment, serialised as a JSON object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HealthSnapshot(pub Vec<(&'static str, u64)>);

impl Serialize for HealthSnapshot {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_map(self.0.iter().map(|(k, v)| (*k, *v)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn note_counts_every_time() {
        let h = Health::default();
        for _ in 0..3 {
            h.note(Counter::QueueFull, format_args!("queue full"));
        }
        assert_eq!(h.get(Counter::QueueFull), 3);
        assert_eq!(h.get(Counter::StagePanics), 0);
    }

    #[test]
    fn snapshot_serialises_names() {
        let h = Health::default();
        h.add(Counter::RecordsEmitted, 2);
        let json = serde_json::to_value(h.snapshot()).expect("serialises");
        assert_eq!(json["records_emitted_total"], 2);
        assert!(Counter::ALL.iter().all(|c| c.name().ends_with("_total")));
    }
}
