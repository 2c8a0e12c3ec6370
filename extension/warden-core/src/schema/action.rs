//! The audit trail of automated responses: one [`ActionRecord`] per action a finding led to
//! (docs/responses.md).

use serde::{Deserialize, Serialize};

/// One response.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Terminate the offending process tree (never the runtime).
    Kill,
    /// Remove what the attack left behind and make Lambda reset the environment.
    Recycle,
    /// Set the function's reserved concurrency to 0.
    Throttle,
    /// The guard refuses unknown egress and exec until the environment is recycled (decided
    /// by the environment's risk, not by a finding's severity: `WARDEN_LOCKDOWN`).
    Lockdown,
}

impl Action {
    /// The serialised name.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::Recycle => "recycle",
            Action::Throttle => "throttle",
            Action::Lockdown => "lockdown",
        }
    }
}

/// What became of one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionOutcome {
    /// Done (for recycle and throttle: requested; see docs/responses.md).
    Taken,
    /// Decided but not done: `WARDEN_DRY_RUN` is on.
    DryRun,
    /// Nothing to act on, or not allowed now (the reason says which).
    Skipped,
    /// Tried and failed.
    Failed,
}

/// What an action was aimed at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ActionTarget {
    /// A process and its descendants.
    Process {
        /// The evidence process.
        pid: u32,
        /// Its executable as observed.
        exe: String,
        /// Descendants taken down with it.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        descendants: Vec<u32>,
    },
    /// The execution environment and what the attack left in it.
    Environment {
        /// Scratch files to remove.
        files: Vec<String>,
        /// Processes to kill.
        pids: Vec<u32>,
    },
    /// The function (all its environments).
    Function {
        /// Function name.
        function_name: String,
    },
}

/// One entry of a finding's audit trail.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionRecord {
    /// kill, recycle, throttle or lockdown.
    pub action: Action,
    /// What it was aimed at; absent when nothing qualified.
    pub target: Option<ActionTarget>,
    /// What became of it.
    pub outcome: ActionOutcome,
    /// Why, in a few words.
    pub reason: String,
    /// When it was decided, Unix ms.
    pub time_unix_ms: u64,
}
