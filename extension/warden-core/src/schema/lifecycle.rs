//! Why an execution environment is shutting down.

use std::fmt;

/// The reason a SHUTDOWN carries, or the one Warden gives itself before it recycles the
/// environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShutdownReason {
    /// Lambda is scaling in or retiring the environment.
    Spindown,
    /// The invocation hit its timeout.
    Timeout,
    /// The runtime failed (crash, exit).
    Failure,
    /// Warden is about to exit to make Lambda replace the environment (a `recycle` response):
    /// the runtime is still running.
    Recycle,
    /// A reason this build does not know, kept as Lambda sent it.
    Other(String),
}

impl ShutdownReason {
    /// Maps Lambda's `shutdownReason` (any case).
    pub fn parse(text: &str) -> ShutdownReason {
        match text.to_ascii_lowercase().as_str() {
            "spindown" => ShutdownReason::Spindown,
            "timeout" => ShutdownReason::Timeout,
            "failure" => ShutdownReason::Failure,
            "recycle" => ShutdownReason::Recycle,
            _ => ShutdownReason::Other(text.to_string()),
        }
    }

    /// Whether Lambda stopped the runtime before this SHUTDOWN (every reason but Warden's own).
    pub fn runtime_stopped(&self) -> bool {
        *self != ShutdownReason::Recycle
    }
}

impl fmt::Display for ShutdownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            ShutdownReason::Spindown => "SPINDOWN",
            ShutdownReason::Timeout => "TIMEOUT",
            ShutdownReason::Failure => "FAILURE",
            ShutdownReason::Recycle => "RECYCLE",
            ShutdownReason::Other(other) => other,
        };
        f.write_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_parse_in_any_case_and_keep_unknown_text() {
        assert_eq!(ShutdownReason::parse("SPINDOWN"), ShutdownReason::Spindown);
        assert_eq!(ShutdownReason::parse("timeout"), ShutdownReason::Timeout);
        assert_eq!(ShutdownReason::parse("Failure"), ShutdownReason::Failure);
        let other = ShutdownReason::parse("MAINTENANCE");
        assert_eq!(other.to_string(), "MAINTENANCE");
        assert!(other.runtime_stopped());
        assert!(!ShutdownReason::Recycle.runtime_stopped());
    }
}
