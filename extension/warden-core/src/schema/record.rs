//! The feature record: one per invocation (and one for the init phase), the unit every
//! later stage consumes. Its schema is versioned by [`SCHEMA_VERSION`] and documented
//! field by field in docs/features.md; any change to fields or their meaning bumps it.

use serde::{Deserialize, Serialize};

use super::observation::{Observation, TmpAction};

/// Version of the record layout and of the meaning of its fields.
pub const SCHEMA_VERSION: u32 = 1;

/// Most observations kept as evidence in one record; the counts include all of them.
pub const MAX_EVIDENCE: usize = 32;

/// Which phase a record describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordKind {
    /// The environment's init (or SnapStart restore) phase, up to the first invocation.
    Init,
    /// One invocation.
    Invoke,
}

/// Counts over the sampler's and /tmp watcher's observations.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObservationCounts {
    /// Processes that appeared during the invocation (named by the sampler).
    pub new_processes: u32,
    /// Distinct programs run from the program directories (named by the file watch, however
    /// short-lived).
    #[serde(default)]
    pub programs_run: u32,
    /// Of those, processes whose executable lies under the scratch directory.
    pub exec_from_tmp: u32,
    /// exec() of a new executable by a process already seen.
    pub execs: u32,
    /// Processes started by this invocation (or unseen before) still running at its end.
    pub processes_left_running: u32,
    /// New remote endpoints (connections) seen.
    pub new_endpoints: u32,
    /// New listening TCP sockets.
    pub listeners_opened: u32,
    /// Files created or moved into the scratch directory.
    pub tmp_files_created: u32,
    /// Files deleted from the scratch directory.
    pub tmp_files_deleted: u32,
}

impl ObservationCounts {
    /// Counts one observation; `tmp_prefix` is the scratch directory with a trailing `/`.
    pub fn count(&mut self, obs: &Observation, tmp_prefix: &str) {
        match obs {
            Observation::Process {
                exe,
                exec,
                alive_at_end,
                ..
            } => {
                if *alive_at_end {
                    self.processes_left_running += 1;
                } else if *exec {
                    self.execs += 1;
                } else {
                    self.new_processes += 1;
                }
                if !*alive_at_end && exe.starts_with(tmp_prefix) {
                    self.exec_from_tmp += 1;
                }
            }
            Observation::Program { .. } => self.programs_run += 1,
            // The guard's observations are evidence, not counted: the vector describes what
            // Warden sees of every function, guarded or not.
            Observation::StillRunning { .. }
            | Observation::Tamper { .. }
            | Observation::Connect { .. }
            | Observation::Send { .. }
            | Observation::Exec { .. }
            | Observation::Signal { .. }
            | Observation::CredentialRead { .. }
            | Observation::SecretSent { .. }
            | Observation::FileWrite { .. }
            | Observation::Patched { .. } => {}
            Observation::Endpoint { listen: true, .. } => self.listeners_opened += 1,
            Observation::Endpoint { .. } => self.new_endpoints += 1,
            Observation::TmpFile { action, .. } => match action {
                TmpAction::Created | TmpAction::MovedIn => self.tmp_files_created += 1,
                TmpAction::Deleted => self.tmp_files_deleted += 1,
                TmpAction::Written => {}
            },
        }
    }
}

/// Platform figures from `platform.runtimeDone` and `platform.report` (or the init reports).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlatformFigures {
    /// Invocation (or init) duration, ms.
    pub duration_ms: Option<f64>,
    /// Billed duration, ms.
    pub billed_duration_ms: Option<u64>,
    /// Configured memory, MB.
    pub memory_size_mb: Option<u64>,
    /// Peak memory of the environment, MB.
    pub max_memory_used_mb: Option<u64>,
    /// Init duration reported with a cold start's first invocation, ms.
    pub init_duration_ms: Option<f64>,
    /// SnapStart restore duration, ms.
    pub restore_duration_ms: Option<f64>,
    /// Runtime's own duration (runtimeDone), ms.
    pub runtime_duration_ms: Option<f64>,
    /// Response size, bytes.
    pub produced_bytes: Option<u64>,
    /// responseLatency span, ms.
    pub response_latency_ms: Option<f64>,
    /// responseDuration span, ms.
    pub response_duration_ms: Option<f64>,
    /// runtimeOverhead span, ms.
    pub runtime_overhead_ms: Option<f64>,
    /// Time extensions added after the runtime responded: duration − runtime duration, ms.
    pub post_runtime_ms: Option<f64>,
}

/// Gauges read by the snapshot that closed the record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndGauges {
    /// Live processes (Warden and PID 1 excluded).
    pub processes: u32,
    /// Live processes that were not running when the first invocation started.
    pub foreign_processes: u32,
    /// Of those, processes already foreign at the previous record's end: they have outlived
    /// a whole invocation (a daemon planted in the environment).
    #[serde(default)]
    pub persisting_processes: u32,
    /// Live threads.
    pub threads: u32,
    /// Open file descriptors.
    pub open_fds: u32,
    /// Resident memory, KiB.
    pub rss_kb: u64,
    /// Sum of per-process peak resident memory, KiB.
    pub rss_peak_kb: u64,
    /// Scratch directory bytes used.
    pub tmp_bytes: u64,
    /// Scratch directory files used.
    pub tmp_files: u64,
    /// Warden's own resident memory, KiB.
    pub warden_rss_kb: u64,
}

/// One assembled record. Field meanings and units: docs/features.md.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureRecord {
    /// Always [`SCHEMA_VERSION`]; first so log queries can find records by it.
    pub warden_schema: u32,
    /// init or invoke.
    pub kind: RecordKind,
    /// Request id (none for init).
    pub request_id: Option<String>,
    /// Function name.
    pub function_name: String,
    /// Function version.
    pub function_version: String,
    /// 0 for init, then 1, 2, ... per invocation in this environment.
    pub seq: u64,
    /// First invocation of the environment.
    pub cold: bool,
    /// Wall-clock start (INVOKE received, or Warden started for init), Unix ms.
    pub start_unix_ms: u64,
    /// The platform's final report was included (false: emitted after the wait expired).
    pub complete: bool,
    /// Outcome.
    pub status: Status,
    /// Error category from the platform.
    pub error_type: Option<String>,
    /// Initialization type (init records).
    pub initialization_type: Option<String>,
    /// Platform figures.
    #[serde(flatten)]
    pub platform: PlatformFigures,
    /// Function output, reduced to counts.
    pub log: LogStats,
    /// Other extensions' output lines (Warden's own excluded).
    pub extension_log_lines: u64,
    /// Telemetry events of unknown types seen during the record's window.
    pub unknown_telemetry: u64,
    /// Kernel counter differences.
    #[serde(flatten)]
    pub counters: CounterDelta,
    /// Gauges at the end.
    #[serde(flatten)]
    pub gauges: EndGauges,
    /// Counts over observations.
    #[serde(flatten)]
    pub observed: ObservationCounts,
    /// Pids allocated that exited before the sampler could name them (threads excluded
    /// only when still alive at the probe).
    pub unnamed_tasks: u64,
    /// Sampler passes during the invocation.
    pub sampler_ticks: u64,
    /// Observations, at most [`MAX_EVIDENCE`].
    pub evidence: Vec<Observation>,
    /// Observations left out of `evidence` because of the cap.
    pub evidence_dropped: u64,
}

/// What happened between two snapshots, in final units.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterDelta {
    /// User CPU of all sandbox processes except Warden, ms (10 ms resolution).
    pub cpu_user_ms: u64,
    /// System CPU, ms.
    pub cpu_system_ms: u64,
    /// Processes and threads created (pids allocated).
    pub tasks_created: u64,
    /// TCP connect() attempts.
    pub tcp_active_opens: u64,
    /// TCP connections accepted.
    pub tcp_passive_opens: u64,
    /// Active opens not matched by a passive open inside the sandbox: outbound connections.
    pub tcp_outbound_opens: u64,
    /// TCP segments sent.
    pub tcp_out_segs: u64,
    /// TCP segments retransmitted.
    pub tcp_retrans_segs: u64,
    /// UDP datagrams received.
    pub udp_in_datagrams: u64,
    /// UDP datagrams sent.
    pub udp_out_datagrams: u64,
    /// Bytes received on non-loopback interfaces.
    pub net_rx_bytes: u64,
    /// Bytes sent on non-loopback interfaces.
    pub net_tx_bytes: u64,
    /// Bytes over loopback (counted once per direction).
    pub lo_bytes: u64,
    /// Change in the scratch directory's used bytes.
    pub tmp_bytes_delta: i64,
    /// Change in the scratch directory's file count.
    pub tmp_files_delta: i64,
    /// Change in the number of open file descriptors.
    pub open_fds_delta: i64,
    /// Change in the number of live processes.
    pub processes_delta: i64,
    /// Warden's own CPU in the interval, microseconds.
    pub warden_cpu_us: u64,
    /// Bytes of Warden's own AWS requests on the wire (sent and received), left out of
    /// `net_tx_bytes` and `net_rx_bytes`.
    #[serde(default)]
    pub warden_net_bytes: u64,
    /// Connections Warden opened itself, left out of `tcp_active_opens`.
    #[serde(default)]
    pub warden_tcp_opens: u64,
}

/// Outcome of a phase or invocation as Lambda reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Finished normally.
    Success,
    /// The function returned an error.
    Error,
    /// The runtime failed (crash, exit).
    Failure,
    /// The invocation hit its timeout.
    Timeout,
    /// Not reported (yet), or a value Warden does not know.
    Unknown,
}

impl Status {
    /// Maps Lambda's status strings; anything else is `Unknown`.
    pub fn parse(text: &str) -> Status {
        match text {
            "success" => Status::Success,
            "error" => Status::Error,
            "failure" => Status::Failure,
            "timeout" => Status::Timeout,
            _ => Status::Unknown,
        }
    }
}

/// Counts over some log records.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogStats {
    /// Non-empty lines.
    pub lines: u64,
    /// Bytes of the records (as delivered).
    pub bytes: u64,
    /// Lines containing `error` or `exception` (any case), or records with level ERROR/FATAL.
    pub error_lines: u64,
    /// Lines starting a stack trace.
    pub tracebacks: u64,
}
