//! Time as the assembler needs it: awake time, which does not advance while frozen.
//!
//! The monotonic clock keeps running while Lambda freezes the environment, so a timer
//! armed before a freeze would fire the moment the environment thaws, before late
//! telemetry had any chance to arrive. Awake time caps every step between two readings at
//! [`MAX_STEP`]; the pipeline reads it at least every [`HOUSEKEEPING`] while awake, so
//! real running time is counted in full and a freeze counts as at most one step.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Longest step counted between two readings.
pub const MAX_STEP: Duration = Duration::from_millis(250);
/// How often the pipeline reads the clock when nothing else happens and work is pending.
pub const HOUSEKEEPING: Duration = Duration::from_millis(100);

/// Awake time since creation.
#[derive(Debug)]
pub struct AwakeClock {
    last: Instant,
    awake: Duration,
}

impl Default for AwakeClock {
    fn default() -> Self {
        AwakeClock {
            last: Instant::now(),
            awake: Duration::ZERO,
        }
    }
}

impl AwakeClock {
    /// Reads the clock.
    pub fn now(&mut self) -> Duration {
        self.advance(Instant::now())
    }

    /// Advances to `at` (exposed for tests).
    pub fn advance(&mut self, at: Instant) -> Duration {
        let step = at.saturating_duration_since(self.last);
        self.awake += step.min(MAX_STEP);
        self.last = at;
        self.awake
    }
}

/// Wall-clock time in Unix milliseconds.
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_freeze_counts_as_one_capped_step() {
        let mut c = AwakeClock::default();
        let t0 = c.last;
        assert_eq!(
            c.advance(t0 + Duration::from_millis(100)),
            Duration::from_millis(100)
        );
        let after_freeze = c.advance(t0 + Duration::from_secs(600));
        assert_eq!(after_freeze, Duration::from_millis(100) + MAX_STEP);
    }
}
