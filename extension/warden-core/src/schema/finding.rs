//! The finding: one JSON line per detection, documented in docs/findings.md (with its
//! mapping to an OCSF Detection Finding). Raw payloads and log text never appear in it;
//! evidence is redacted.

use serde::{Deserialize, Serialize};

use super::action::ActionRecord;
use super::observation::Observation;

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
    /// The same observations as seen, kept inside Warden for the responders (a recycle
    /// removes the files the raw paths name, which redaction may have hidden); never written.
    #[serde(skip)]
    pub raw_evidence: Vec<Observation>,
    /// The model's view (absent without a model).
    pub model: Option<ModelView>,
    /// The baseline's state.
    pub baseline: BaselineView,
    /// Ids of earlier findings for the same invocation.
    pub related: Vec<String>,
    /// Earlier invocations this finding also reports: the first errors of a probing
    /// burst, held until the burst showed; a beacon's first contacts, before its cadence
    /// showed (the first of them is where it was planted).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub earlier_requests: Vec<String>,
    /// The audit trail: one entry per response action considered (docs/responses.md).
    pub actions: Vec<ActionRecord>,
    /// Feature record schema version.
    pub feature_schema: u32,
    /// Feature vector version.
    pub vector_version: u32,
}

/// What a finding says happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// Input made the function run a shell or an unexpected program.
    CommandInjection,
    /// A shell wired to a network connection.
    ReverseShell,
    /// Sustained computation for someone else, usually with a pool connection.
    CryptoMining,
    /// Data sent out over the network to an unusual destination or in unusual volume.
    ExfiltrationEgress,
    /// Data carried out in an oversized response.
    ExfiltrationResponse,
    /// The role's credentials read and sent out.
    CredentialTheft,
    /// An executable written to the scratch directory and run.
    Dropper,
    /// Something planted that outlives the invocation.
    Persistence,
    /// Input driving runaway compute toward the timeout.
    DenialOfWallet,
    /// Bursts of malformed input producing errors.
    Probing,
    /// Out of the ordinary, matching no known class.
    Anomaly,
    /// Function code tampering with Warden itself: forged telemetry, records for requests
    /// the platform never announced, an attempt to overwrite the platform's figures.
    Tamper,
}

impl Class {
    /// Every class, in a fixed order (a model's output index may use it).
    pub const ALL: [Class; 12] = [
        Class::CommandInjection,
        Class::ReverseShell,
        Class::CryptoMining,
        Class::ExfiltrationEgress,
        Class::ExfiltrationResponse,
        Class::CredentialTheft,
        Class::Dropper,
        Class::Persistence,
        Class::DenialOfWallet,
        Class::Probing,
        Class::Anomaly,
        Class::Tamper,
    ];

    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Class::CommandInjection => "command_injection",
            Class::ReverseShell => "reverse_shell",
            Class::CryptoMining => "crypto_mining",
            Class::ExfiltrationEgress => "exfiltration_egress",
            Class::ExfiltrationResponse => "exfiltration_response",
            Class::CredentialTheft => "credential_theft",
            Class::Dropper => "dropper",
            Class::Persistence => "persistence",
            Class::DenialOfWallet => "denial_of_wallet",
            Class::Probing => "probing",
            Class::Anomaly => "anomaly",
            Class::Tamper => "tamper",
        }
    }

    /// Parses the serialised name.
    pub fn parse(name: &str) -> Option<Class> {
        Class::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// A rule that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indicator {
    /// A shell the function is not known to run.
    ShellSpawned,
    /// A program the function is not known to run.
    UnknownBinary,
    /// A program (or a script given to an interpreter) run from the scratch directory.
    ExecFromTmp,
    /// A process started by the invocation still running at its end.
    LeftRunning,
    /// A process left by an earlier invocation still running at this one's end.
    StillRunning,
    /// A connection to a mining-pool-style port.
    MiningPort,
    /// A shell and a connection to an unfamiliar destination in the same invocation.
    ShellWithConnection,
    /// A listening socket opened.
    ListenerOpened,
    /// AWS credentials or /proc/*/environ in a command line.
    CredentialAccess,
    /// A connection to a destination the function is not known to use.
    UnknownDestination,
    /// An error invocation in a burst of them (see `burst::ERROR_BURST`).
    ErrorBurst,
    /// A shell (or another program) whose standard input or output is a network socket.
    ShellOverSocket,
    /// A reconnaissance command: who am I (`id`, `whoami`), where am I (`uname`,
    /// `hostname`, listing the task root), what is here (`env`, `ps`, a search from `/`).
    ReconCommand,
    /// A destination contacted again, after an invocation with a hard indicator introduced
    /// it: what an attack left behind keeps calling out (a beacon thread or timer).
    ReturningDestination,
    /// A destination first contacted in the middle of an environment's life, then again in
    /// every invocation since, and not familiar: the cadence of a thread, timer or patched
    /// function planted in the runtime that calls out at every thaw.
    Beaconing,
    /// Something on Warden's own channels that the platform did not send: telemetry
    /// without the subscription's token, for a request never announced, or contradicting
    /// the platform's figures (see `Observation::Tamper`); or a signal that stops or ends
    /// Warden, sent by function code.
    Tamper,
    /// A program run from memory (a memfd) or from a file deleted since it was opened: code
    /// that never stays on disk (seen by the in-process guard).
    ExecFromMemory,
    /// A call the function's zero-trust policy forbids (an egress destination, a program),
    /// reported or refused by the in-process guard.
    PolicyViolation,
    /// The role's secret access key in what a process sent over the network (seen by the
    /// in-process guard): credentials read, by whatever means, and sent out.
    CredentialsSent,
    /// An invocation that ran until the function's timeout, busy on the CPU all the while:
    /// the bill run up to its ceiling, whatever the function's history says (a function that
    /// hangs on a call waits, it does not burn).
    BurnedToTimeout,
    /// A response many times larger than any the environment returned before, and large in
    /// itself: data taken out through the function's own response (an export without its
    /// limit, every field of a record).
    OversizedResponse,
    /// A function of the language runtime replaced while an invocation ran, and not one the
    /// function is known to replace: what a payload planted to run at every later invocation
    /// (a patched `JSON.parse` that calls out), without a thread or a process to be seen.
    RuntimePatched,
}

impl Indicator {
    /// A hard indicator is an attack on its own, whatever the function's habits: it keeps
    /// its full severity from the first invocation, and what its invocation did is never
    /// learned as a habit (docs/detection.md, "Habits").
    pub fn is_hard(self) -> bool {
        matches!(
            self,
            Indicator::ShellOverSocket
                | Indicator::ExecFromTmp
                | Indicator::MiningPort
                | Indicator::CredentialAccess
                | Indicator::ReconCommand
                | Indicator::ReturningDestination
                | Indicator::Tamper
                | Indicator::ExecFromMemory
                | Indicator::PolicyViolation
                | Indicator::CredentialsSent
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_names_round_trip() {
        for c in Class::ALL {
            let json = serde_json::to_string(&c).expect("serialises");
            assert_eq!(json, format!("\"{}\"", c.as_str()));
            assert_eq!(Class::parse(c.as_str()), Some(c));
        }
        assert_eq!(Class::parse("nope"), None);
    }
}
