//! Response sizes: data taken out through the function's own response (an export without
//! its limit, every field of a record) shows as a response far larger than any the function
//! returned before. The baseline's z-score cannot tell it from a function whose responses
//! vary by two orders of magnitude by design; the largest response seen can.
//!
//! A response is oversized when it is at least [`GROWTH`] times the largest the environment
//! returned in invocations that raised nothing, and at least [`FLOOR`] bytes (a function
//! that returned 200 bytes may return 3 KiB). Until [`SEEN`] invocations are learned there
//! is nothing to compare with. Oversized is a habit like any other (docs/detection.md,
//! "Habits"), only harder to acquire: a function whose responses really grew returns large
//! ones at nearly every invocation, so they become the norm once [`HABIT_REPEATS`] + 1 of
//! them came in at least three quarters of the invocations since the first, or after
//! [`HABIT_ALWAYS`] however sparse. An export run now and then among ordinary requests
//! stays below that share, and each one is reported.

use super::baseline::Baseline;
use super::indicators::{HABIT_ALWAYS, HABIT_REPEATS};
use crate::features::idx;

/// How many times the largest response learned a response must be to be oversized.
pub const GROWTH: u64 = 16;
/// Responses below this many bytes are never oversized.
pub const FLOOR: u64 = 256 * 1024;
/// Invocations learned before responses are compared.
pub const SEEN: u32 = 3;

/// Oversized responses since the first one that did not become the norm.
#[derive(Debug, Clone, Copy)]
struct Run {
    seen: u32,
    first: u64,
    largest: u64,
}

/// The responses an environment returned (see the module docs).
#[derive(Debug, Clone, Default)]
pub struct ResponseSizes {
    largest: u64,
    learned: u32,
    invocations: u64,
    oversized: Option<Run>,
}

impl ResponseSizes {
    /// Seeded from a profile: the top of its normal range for `produced_bytes`.
    pub fn from_baseline(baseline: &Baseline) -> ResponseSizes {
        let (_, high) = baseline.range(idx::PRODUCED);
        // The feature is ln(1 + bytes / 1024).
        let bytes = (f64::from(high).exp_m1() * 1024.0).clamp(0.0, u64::MAX as f64) as u64;
        ResponseSizes {
            largest: bytes,
            learned: SEEN,
            ..ResponseSizes::default()
        }
    }

    /// Whether a response of `bytes` is oversized for this environment.
    pub fn oversized(&self, bytes: u64) -> bool {
        self.learned >= SEEN && bytes >= FLOOR && bytes >= self.largest.saturating_mul(GROWTH)
    }

    /// Notes one invocation's response: `learned` when the invocation raised nothing.
    pub fn note(&mut self, bytes: u64, learned: bool) {
        self.invocations += 1;
        let now = self.invocations;
        if self.oversized(bytes) {
            let run = self.oversized.get_or_insert(Run {
                seen: 0,
                first: now,
                largest: 0,
            });
            run.seen += 1;
            run.largest = run.largest.max(bytes);
            let span = now - run.first + 1;
            let norm = run.seen > u32::from(HABIT_REPEATS) && u64::from(run.seen) * 4 >= span * 3;
            if norm || run.seen >= HABIT_ALWAYS {
                self.largest = self.largest.max(run.largest);
                self.oversized = None;
            }
            return;
        }
        if learned {
            self.largest = self.largest.max(bytes);
            self.learned = self.learned.saturating_add(1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn learned(sizes: &[u64]) -> ResponseSizes {
        let mut r = ResponseSizes::default();
        for &b in sizes {
            r.note(b, true);
        }
        r
    }

    #[test]
    fn nothing_is_oversized_before_enough_responses_are_learned() {
        let r = learned(&[2_000, 3_000]);
        assert!(!r.oversized(3_000_000));
        let r = learned(&[2_000, 3_000, 500]);
        assert!(r.oversized(3_000_000));
    }

    #[test]
    fn oversized_needs_both_the_growth_and_the_floor() {
        let r = learned(&[200, 300, 250]);
        assert!(!r.oversized(100_000), "a few KiB more is no export");
        let r = learned(&[60_000, 20_000, 500]);
        assert!(!r.oversized(900_000), "15 times the largest");
        assert!(r.oversized(960_000));
    }

    #[test]
    fn an_export_now_and_then_is_reported_until_it_is_a_habit() {
        let mut r = learned(&[5_000, 18_000, 700]);
        for i in 0..HABIT_ALWAYS {
            assert!(r.oversized(2_500_000), "export {i}");
            r.note(2_500_000, false);
            r.note(4_000, true);
        }
        // Sparse repeats become the norm after HABIT_ALWAYS, like any habit.
        assert!(!r.oversized(2_500_000));
    }

    #[test]
    fn responses_that_really_grew_become_the_norm() {
        let mut r = learned(&[5_000, 18_000, 700]);
        for _ in 0..=HABIT_REPEATS {
            assert!(r.oversized(1_500_000));
            r.note(1_500_000, false);
        }
        assert!(!r.oversized(1_500_000));
        assert!(r.oversized(30_000_000), "far beyond the new norm still is");
    }

    #[test]
    fn a_profile_seeds_the_largest_response() {
        let mut b = Baseline::new();
        let mut x = [0f32; crate::features::N];
        for kib in [2.0f32, 4.0, 3.0, 8.0, 5.0] {
            x[idx::PRODUCED] = kib.ln_1p();
            b.observe(&x);
        }
        let r = ResponseSizes::from_baseline(&b);
        assert!(!r.oversized(64 * 1024));
        assert!(r.oversized(8 * 1024 * 1024));
    }
}
