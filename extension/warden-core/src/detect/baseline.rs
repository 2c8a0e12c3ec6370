//! The per-function behavioural baseline, learned online from the function's own
//! invocations: a robust location (median) and scale (MAD) per feature.
//!
//! - **Warm-up**: the first [`WARMUP`] accepted invocations are kept and their exact
//!   median and MAD become the *reference*; until then every z-score is 0.
//! - **Provisional statistics**: from [`EARLY`] invocations on, the median and MAD of those
//!   seen so far score at [`EARLY_WEIGHT`] of their z: a 4 MB response after five 10 kB ones
//!   is news before the reference is set, but a handful of rows cannot say how wide normal
//!   is, so only gross deviations count.
//! - **Bounded updates**: after that each statistic moves by stochastic approximation using
//!   only the *side* of the statistic an observation falls on, never its size, by a step
//!   of `gain / k` (k = invocations learned) times the reference scale. A 50 MB outlier
//!   moves the median exactly as much as a value just above it (a winsorised update), and
//!   the total drift after n invocations grows only with `ln(n)`.
//! - **Refusal**: an observation with any robust z above `refuse_z` is not learned (the
//!   detector also skips observations it alerted on), and the scale may not grow beyond
//!   [`SCALE_CAP`] times its reference: slowly growing egress cannot teach it that
//!   exfiltration is normal.
//! - **Presence**: for the features that count actions (connections, processes, errors…)
//!   it also keeps how many learned invocations had any. A z-score cannot say that one
//!   connection is strange for a function that never makes one (a count's scale has a
//!   floor of about one); "present in under [`RARE_SHARE`] of its invocations" can.

use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

use crate::features::{idx, FEATURES, FEATURE_NAMES, N, VECTOR_VERSION};

/// Invocations learned before statistical scoring starts.
pub const WARMUP: usize = 20;
/// Invocations seen before the provisional statistics score (see the module docs).
pub const EARLY: usize = 3;
/// Share of a provisional z that counts.
pub const EARLY_WEIGHT: f32 = 0.5;
/// MAD to standard deviation for normally distributed data.
const MAD_TO_SIGMA: f32 = 1.4826;
/// Gain of the median update, in reference scales.
const LOC_GAIN: f32 = 0.25;
/// Gain of the MAD update, in reference scales.
const SCALE_GAIN: f32 = 0.1;
/// Largest scale relative to the reference.
pub const SCALE_CAP: f32 = 2.0;
/// Default refusal threshold (robust z).
pub const REFUSE_Z: f32 = 6.0;
/// Width of the normal range shown in explanations, in scales either side of the median.
pub const RANGE_Z: f32 = 3.0;
/// A counted action present in at most this share of the learned invocations is rare.
pub const RARE_SHARE: f32 = 0.01;
/// Features whose presence is tracked: counts of things the function does.
pub const PRESENCE: [usize; 17] = [
    idx::TASKS_CREATED,
    idx::NEW_PROCESSES,
    idx::EXECS,
    idx::EXEC_FROM_TMP,
    idx::LEFT_RUNNING,
    idx::SHELLS,
    idx::TCP_OUTBOUND,
    idx::NEW_ENDPOINTS,
    idx::LISTENERS,
    idx::MINING_PORTS,
    idx::UDP_OUT,
    idx::NET_TX,
    idx::TMP_FILES_CREATED,
    idx::FOREIGN_PROCESSES,
    idx::ERROR_LINES,
    idx::TRACEBACKS,
    idx::STATUS_TIMEOUT,
];

/// A baseline as stored or trained offline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BaselineProfile {
    /// [`VECTOR_VERSION`] the statistics are over.
    pub vector_version: u32,
    /// Feature names, in order (checked against [`FEATURE_NAMES`]).
    pub features: Vec<String>,
    /// Invocations the statistics were learned from.
    pub invocations: u64,
    /// Median per feature (vector units).
    pub median: Vec<f32>,
    /// Median absolute deviation per feature (vector units).
    pub mad: Vec<f32>,
    /// Executables the function ran in that history.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub known_exes: Vec<String>,
    /// Shapes of the shell commands it ran (see `indicators::command_shape`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub shell_shapes: Vec<String>,
    /// Per feature, the share of invocations in which it was above 0 (empty: unknown).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub present: Vec<f32>,
    /// Remote addresses and ports the function contacted regularly (`None`: not learned, a
    /// profile from before they were; empty: it contacts none). Read by `warden policy
    /// export`; the detector learns destinations itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub destinations: Option<Vec<SocketAddr>>,
    /// Directories under the scratch directory the function regularly creates or writes files
    /// in, each ending with `/` (`None`: not learned). Read by `warden policy export`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub write_paths: Option<Vec<String>>,
}

/// Why a profile cannot seed a baseline.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProfileError {
    /// Built for another vector layout.
    #[error("profile is for vector version {found}, this build uses {VECTOR_VERSION}")]
    Version {
        /// The profile's version.
        found: u32,
    },
    /// Feature names or counts differ.
    #[error("profile features do not match this build's feature list")]
    Features,
    /// A statistic is NaN, infinite or a negative MAD.
    #[error("profile has a non-finite or negative statistic for {0}")]
    Value(&'static str),
}

/// See the module docs.
#[derive(Debug, Clone)]
pub struct Baseline {
    warm: Vec<[f32; N]>,
    /// Median and MAD of `warm` once it holds [`EARLY`] rows, until warmed up.
    provisional: Option<([f32; N], [f32; N])>,
    median: [f32; N],
    mad: [f32; N],
    /// Reference scale per feature (σ units, floors applied): bounds steps and growth.
    reference: [f32; N],
    learned: u64,
    refused: u64,
    refuse_z: f32,
    /// Per feature, learned invocations in which it was above 0...
    present: [u64; N],
    /// ...counted since this many invocations had been learned (a profile without
    /// presence shares starts counting afresh).
    present_since: u64,
}

impl Default for Baseline {
    fn default() -> Self {
        Baseline::new()
    }
}

impl Baseline {
    /// An empty baseline, warming up.
    pub fn new() -> Baseline {
        Baseline {
            warm: Vec::with_capacity(WARMUP),
            provisional: None,
            median: [0.0; N],
            mad: [0.0; N],
            reference: [0.0; N],
            learned: 0,
            refused: 0,
            refuse_z: REFUSE_Z,
            present: [0; N],
            present_since: 0,
        }
    }

    /// Sets the z above which an observation is not learned.
    pub fn with_refuse_z(mut self, z: f32) -> Baseline {
        self.refuse_z = z;
        self
    }

    /// Statistical scoring has started.
    pub fn warmed_up(&self) -> bool {
        self.learned >= WARMUP as u64
    }

    /// Invocations learned.
    pub fn learned(&self) -> u64 {
        self.learned
    }

    /// Observations refused as anomalous.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Learns one invocation unless it is anomalous; returns whether it was learned.
    pub fn observe(&mut self, x: &[f32; N]) -> bool {
        if x.iter().any(|v| !v.is_finite()) {
            return false;
        }
        if !self.warmed_up() {
            self.warm.push(*x);
            self.learned += 1;
            self.count_presence(x);
            if self.warm.len() >= WARMUP {
                self.settle_warmup();
            } else if self.warm.len() >= EARLY {
                self.provisional = Some(column_stats(&self.warm));
            }
            return true;
        }
        let z = self.normalise(x);
        if z.iter().any(|&v| v > self.refuse_z) {
            self.refused += 1;
            return false;
        }
        self.learned += 1;
        self.count_presence(x);
        let eta = 1.0 / self.learned as f32;
        for (i, &v) in x.iter().enumerate() {
            self.update(i, v, eta);
        }
        true
    }

    fn count_presence(&mut self, x: &[f32; N]) {
        for (n, v) in self.present.iter_mut().zip(x) {
            if *v > 0.0 {
                *n += 1;
            }
        }
    }

    /// The first tracked feature that is above 0 in `x` but was present in at most
    /// [`RARE_SHARE`] of at least [`WARMUP`] learned invocations.
    pub fn rare_presence(&self, x: &[f32; N]) -> Option<usize> {
        let seen = self.learned.saturating_sub(self.present_since);
        if seen < WARMUP as u64 {
            return None;
        }
        PRESENCE
            .into_iter()
            .find(|&i| x[i] > 0.0 && self.present[i] as f32 <= RARE_SHARE * seen as f32)
    }

    fn update(&mut self, i: usize, v: f32, eta: f32) {
        let r = self.reference[i];
        let step = LOC_GAIN * eta * r;
        let m = self.median[i];
        self.median[i] = if v > m {
            (m + step).min(v)
        } else {
            (m - step).max(v)
        };
        let d = (v - self.median[i]).abs();
        let mad = self.mad[i];
        let step = SCALE_GAIN * eta * r;
        let grown = if d > mad {
            (mad + step).min(d)
        } else {
            (mad - step).max(d)
        };
        self.mad[i] = grown.min(SCALE_CAP * r / MAD_TO_SIGMA);
    }

    fn settle_warmup(&mut self) {
        (self.median, self.mad) = column_stats(&self.warm);
        self.warm = Vec::new();
        self.provisional = None;
        self.set_reference();
    }

    fn set_reference(&mut self) {
        for i in 0..N {
            self.reference[i] = self.scale(i);
        }
    }

    /// Robust scale of feature `i` (σ units) with its floors applied.
    fn scale(&self, i: usize) -> f32 {
        floored_scale(i, self.median[i], self.mad[i])
    }

    /// Whether z-scores are given: warmed up, or provisional statistics (see the module
    /// docs).
    pub fn scoring(&self) -> bool {
        self.warmed_up() || self.provisional.is_some()
    }

    /// Median and scale of feature `i` as scored now: the reference's, the provisional
    /// ones, or none yet.
    fn stats(&self, i: usize) -> Option<(f32, f32)> {
        if self.warmed_up() {
            return Some((self.median[i], self.scale(i)));
        }
        let (median, mad) = self.provisional.as_ref()?;
        Some((median[i], floored_scale(i, median[i], mad[i])))
    }

    /// The median of feature `i`, in vector units.
    pub fn median(&self, i: usize) -> f32 {
        self.median.get(i).copied().unwrap_or(0.0)
    }

    /// Robust z-scores `(x − median) / scale`; provisional ones count at [`EARLY_WEIGHT`];
    /// all 0 before that.
    pub fn normalise(&self, x: &[f32; N]) -> [f32; N] {
        let mut z = [0.0; N];
        let weight = if self.warmed_up() { 1.0 } else { EARLY_WEIGHT };
        for (i, out) in z.iter_mut().enumerate() {
            if let Some((m, s)) = self.stats(i) {
                *out = weight * (x[i] - m) / s;
            }
        }
        z
    }

    /// The normal range of feature `i` in vector units: median ± [`RANGE_Z`] scales,
    /// never below 0 for features that cannot be negative.
    pub fn range(&self, i: usize) -> (f32, f32) {
        let Some((m, s)) = (i < N).then(|| self.stats(i)).flatten() else {
            return (0.0, 0.0);
        };
        let low = m - RANGE_Z * s;
        let signed = matches!(
            FEATURES[i].transform,
            crate::features::Transform::SignedLogKib
        );
        (if signed { low } else { low.max(0.0) }, m + RANGE_Z * s)
    }

    /// The learned statistics, for storage or inspection. While warming up, the statistics
    /// of what has been seen so far.
    pub fn to_profile(&self) -> BaselineProfile {
        let mut b = self.clone();
        if !b.warm.is_empty() && !b.warmed_up() {
            b.settle_warmup();
        }
        BaselineProfile {
            vector_version: VECTOR_VERSION,
            features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            invocations: self.learned,
            median: b.median.to_vec(),
            mad: b.mad.to_vec(),
            known_exes: Vec::new(),
            shell_shapes: Vec::new(),
            present: self.presence_shares(),
            destinations: None,
            write_paths: None,
        }
    }

    fn presence_shares(&self) -> Vec<f32> {
        let seen = self.learned.saturating_sub(self.present_since);
        if seen == 0 {
            return Vec::new();
        }
        self.present
            .iter()
            .map(|&n| n as f32 / seen as f32)
            .collect()
    }

    /// A baseline seeded from a profile trained offline; warmed up if the profile was
    /// learned from at least [`WARMUP`] invocations.
    pub fn from_profile(p: &BaselineProfile) -> Result<Baseline, ProfileError> {
        if p.vector_version != VECTOR_VERSION {
            return Err(ProfileError::Version {
                found: p.vector_version,
            });
        }
        let names_match =
            p.features.len() == N && p.features.iter().zip(FEATURE_NAMES).all(|(a, b)| a == b);
        if !names_match || p.median.len() != N || p.mad.len() != N {
            return Err(ProfileError::Features);
        }
        let mut b = Baseline::new();
        for (i, name) in FEATURE_NAMES.iter().enumerate() {
            let (m, d) = (p.median[i], p.mad[i]);
            if !m.is_finite() || !d.is_finite() || d < 0.0 {
                return Err(ProfileError::Value(name));
            }
            b.median[i] = m;
            b.mad[i] = d;
        }
        b.learned = p.invocations;
        if p.present.len() == N && p.present.iter().all(|s| (0.0..=1.0).contains(s)) {
            for (n, share) in b.present.iter_mut().zip(&p.present) {
                *n = (share * p.invocations as f32).round() as u64;
            }
        } else {
            b.present_since = p.invocations;
        }
        if b.warmed_up() {
            b.set_reference();
        } else {
            // Too little history to trust: warm up afresh from live invocations.
            b = Baseline::new();
        }
        Ok(b)
    }
}

/// Scale of feature `i` (σ units) from a median and MAD, with the feature's floors.
fn floored_scale(i: usize, median: f32, mad: f32) -> f32 {
    let f = &FEATURES[i];
    (mad * MAD_TO_SIGMA)
        .max(f.min_scale)
        .max(f.rel_scale * median.abs())
}

/// Median and MAD of each column of `rows`.
fn column_stats(rows: &[[f32; N]]) -> ([f32; N], [f32; N]) {
    let (mut med, mut mad) = ([0.0; N], [0.0; N]);
    let mut column = Vec::with_capacity(rows.len());
    for i in 0..N {
        column.clear();
        column.extend(rows.iter().map(|x| x[i]));
        let m = median(&mut column);
        for v in column.iter_mut() {
            *v = (*v - m).abs();
        }
        med[i] = m;
        mad[i] = median(&mut column);
    }
    (med, mad)
}

/// Median of a non-empty slice (reorders it); 0 when empty.
fn median(v: &mut [f32]) -> f32 {
    if v.is_empty() {
        return 0.0;
    }
    let mid = v.len() / 2;
    let (_, upper, _) = v.select_nth_unstable_by(mid, f32::total_cmp);
    let upper = *upper;
    if v.len() % 2 == 1 {
        return upper;
    }
    let lower = v[..mid].iter().copied().fold(f32::MIN, f32::max);
    (lower + upper) / 2.0
}

#[cfg(test)]
mod tests;
