//! Telling an environment freeze from Warden being stopped (SIGSTOP from function code).
//!
//! Both look the same from inside Warden: its timers did not fire for a while during an
//! invocation. But Lambda freezes an environment only once the runtime has finished the
//! invocation, so in a freeze the runtime's `platform.runtimeDone` time lies at the start of
//! the gap. If the runtime finished well after Warden last ran, the runtime kept working
//! while Warden did not: Warden was stopped.

/// How long after Warden last ran the runtime may finish and the gap still be a freeze: one
/// late timer tick on a loaded host, with room to spare.
pub const STOP_SLACK_MS: u64 = 300;
/// Shortest gap judged at all: shorter ones are scheduling delays, and a stop that short
/// hides little.
pub const STOP_MIN_MS: u64 = 1_000;

/// A stretch in which the pipeline did not run while an invocation was in flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gap {
    /// The invocation in flight.
    pub request_id: String,
    /// When Warden last ran before the gap, Unix ms.
    pub from_unix_ms: u64,
    /// When it noticed the gap, Unix ms.
    pub to_unix_ms: u64,
}

impl Gap {
    /// Whether Warden was stopped rather than frozen, given when the runtime finished the
    /// invocation (`platform.runtimeDone`'s time): long enough to be tampering.
    pub fn was_stop(&self, runtime_done_unix_ms: u64) -> bool {
        self.to_unix_ms.saturating_sub(self.from_unix_ms) >= STOP_MIN_MS
            && self.runtime_ran_on(runtime_done_unix_ms)
    }

    /// Whether the runtime kept working after Warden last ran: then the gap was no freeze,
    /// however short, and what Warden found when it ran again is the invocation's own.
    pub fn runtime_ran_on(&self, runtime_done_unix_ms: u64) -> bool {
        runtime_done_unix_ms > self.from_unix_ms + STOP_SLACK_MS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gap(from: u64, to: u64) -> Gap {
        Gap {
            request_id: "r".into(),
            from_unix_ms: from,
            to_unix_ms: to,
        }
    }

    #[test]
    fn a_short_stop_is_no_tampering_verdict_but_no_freeze_either() {
        // Stopped 400 ms while the function went on: too short to call tampering, but what
        // ran meanwhile is still the invocation's.
        let short = gap(1_000, 1_400);
        assert!(!short.was_stop(1_450));
        assert!(short.runtime_ran_on(1_450));
        // A freeze: the runtime had finished when Warden last ran.
        assert!(!gap(1_000, 61_000).runtime_ran_on(1_015));
    }

    #[test]
    fn a_freeze_after_the_runtime_finished_is_not_a_stop() {
        // Last tick at 1000, runtime done 15 ms later, then frozen for a minute.
        assert!(!gap(1_000, 61_000).was_stop(1_015));
        // A late tick on a loaded host: still a freeze.
        assert!(!gap(1_000, 61_000).was_stop(1_250));
    }

    #[test]
    fn the_runtime_working_on_while_warden_did_not_run_is_a_stop() {
        // Stopped for 3 s while the function went on, resumed before it answered.
        assert!(gap(1_000, 4_000).was_stop(4_200));
        // Stopped across the freeze: the runtime finished 2 s into the gap.
        assert!(gap(1_000, 60_000).was_stop(3_000));
    }

    #[test]
    fn short_gaps_are_not_judged() {
        assert!(!gap(1_000, 1_500).was_stop(1_600));
    }
}
