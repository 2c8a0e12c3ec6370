//! Memory figures outlast the invocation that raised them: `max_memory_used_mb` is the
//! environment's peak so far, and a runtime rarely gives freed heap back, so `rss_kb` stays
//! up too. An invocation that did not raise them is scored at no more than the function's
//! usual level; the one that did is scored on what it raised.

use super::baseline::Baseline;
use crate::features::{idx, N};

/// Growth of resident memory below this (KiB) is the runtime's usual drift.
const RSS_DRIFT_KB: f32 = 1024.0;

/// The environment's memory figures at its last invocation.
#[derive(Debug, Default)]
pub struct MemoryCarry {
    last: Option<(f32, f32)>,
}

impl MemoryCarry {
    /// Caps, at the baseline's median, each memory feature of `x` that this invocation
    /// did not raise. Needs a warmed-up baseline (a median to cap at).
    pub fn settle(&mut self, x: &mut [f32; N], baseline: &Baseline) {
        let now = (x[idx::MAX_MEMORY_MB], x[idx::RSS_KB]);
        let last = self.last.replace(now);
        let Some((peak, rss)) = last else {
            return;
        };
        if !baseline.warmed_up() {
            return;
        }
        if now.0 <= peak {
            cap(x, idx::MAX_MEMORY_MB, baseline);
        }
        if now.1 <= rss + RSS_DRIFT_KB {
            cap(x, idx::RSS_KB, baseline);
        }
    }
}

fn cap(x: &mut [f32; N], i: usize, baseline: &Baseline) {
    x[i] = x[i].min(baseline.median(i));
}
