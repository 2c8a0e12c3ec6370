//! What an invocation costs, against the costliest the environment ran.
//!
//! Many functions cost what their input asks: a thumbnailer's CPU grows with the image's area,
//! so its cost is heavy-tailed and an invocation ten MADs above the median is an ordinary big
//! image. The baseline's z-score cannot tell that from a wallet being run up; the costliest
//! clean invocation can. Denial of wallet carried by the baseline and the model alone (no
//! indicator: one that ran to the timeout busy is `burned_to_timeout`) is a finding only when
//! the invocation cost at least [`GROWTH`] times the environment's costliest clean one, in CPU
//! or in duration (docs/detection.md, "Classes from evidence").

use super::baseline::Baseline;
use crate::features::idx;

/// How many times the costliest clean invocation one must cost to be denial of wallet
/// without an indicator.
pub const GROWTH: f64 = 4.0;
/// Clean invocations learned before costs are compared.
pub const SEEN: u32 = 3;

/// See the module docs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Costs {
    cpu_ms: f64,
    duration_ms: f64,
    learned: u32,
}

impl Costs {
    /// Seeded from a profile: the top of its normal ranges for CPU and duration (both in ms).
    pub fn from_baseline(baseline: &Baseline) -> Costs {
        Costs {
            cpu_ms: f64::from(baseline.range(idx::CPU_MS).1).max(0.0),
            duration_ms: f64::from(baseline.range(idx::DURATION_MS).1).max(0.0),
            learned: SEEN,
        }
    }

    /// Whether an invocation that used `cpu_ms` and ran `duration_ms` is beyond the costliest
    /// the environment ran clean; until [`SEEN`] are learned there is nothing to compare with
    /// and every cost is.
    pub fn beyond(&self, cpu_ms: f64, duration_ms: f64) -> bool {
        self.learned < SEEN
            || cpu_ms >= GROWTH * self.cpu_ms.max(1.0)
            || duration_ms >= GROWTH * self.duration_ms.max(1.0)
    }

    /// Notes one invocation's cost: `learned` when it raised nothing.
    pub fn note(&mut self, cpu_ms: f64, duration_ms: f64, learned: bool) {
        if !learned {
            return;
        }
        self.cpu_ms = self.cpu_ms.max(cpu_ms);
        self.duration_ms = self.duration_ms.max(duration_ms);
        self.learned = self.learned.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_within_the_tail_before_enough_is_learned() {
        let mut c = Costs::default();
        c.note(100.0, 110.0, true);
        c.note(80.0, 90.0, true);
        assert!(c.beyond(120.0, 130.0));
        c.note(300.0, 310.0, true);
        assert!(!c.beyond(600.0, 650.0), "twice the costliest: a big input");
        assert!(c.beyond(1300.0, 1310.0), "more than four times its CPU");
        assert!(
            c.beyond(20.0, 1300.0),
            "more than four times its duration, asleep"
        );
    }

    #[test]
    fn only_clean_invocations_set_the_costliest() {
        let mut c = Costs::default();
        for _ in 0..3 {
            c.note(50.0, 60.0, true);
        }
        c.note(5000.0, 5000.0, false);
        assert!(c.beyond(400.0, 400.0));
    }
}
