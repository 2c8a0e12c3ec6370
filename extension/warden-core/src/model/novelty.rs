//! The unsupervised part: how far an invocation lies from the benign subspace.
//!
//! Inputs are squashed (`sign(x)·ln(1+|x|)`), standardised with the benign training rows'
//! mean and spread, projected on the benign rows' leading principal components (smartcore
//! PCA) and reconstructed; the squared residual is the novelty, and its per-input parts say
//! which inputs the benign subspace could not explain. It is calibrated on the residual that
//! a given share (e.g. 99.9%) of benign training rows stay under, times a margin for
//! functions the model never saw.

use super::codec::{Reader, Writer};
use super::ModelError;

/// Standardised inputs are clamped to this, so one absurd input cannot overflow the sum.
pub const CLAMP: f32 = 60.0;

/// The fitted component.
#[derive(Debug, Clone, PartialEq)]
pub struct Novelty {
    /// Per-input mean (after squashing).
    pub mean: Vec<f32>,
    /// Per-input spread (after squashing), floored.
    pub scale: Vec<f32>,
    /// Principal axes, `k` rows of `mean.len()` values.
    pub components: Vec<f32>,
    /// Residual at which the novelty score is 0.5: the calibration quantile of benign
    /// rows times a margin.
    pub quantile: f32,
}

/// `sign(x)·ln(1+|x|)`, with NaN taken as 0.
pub fn squash(x: f32) -> f32 {
    if x.is_nan() {
        0.0
    } else {
        x.signum() * x.abs().ln_1p()
    }
}

impl Novelty {
    /// Number of inputs.
    pub fn dim(&self) -> usize {
        self.mean.len()
    }

    /// Standardised input `i`.
    pub fn standardise(&self, i: usize, x: f32) -> f32 {
        ((squash(x) - self.mean[i]) / self.scale[i]).clamp(-CLAMP, CLAMP)
    }

    /// Writes each input's squared residual to `parts` and returns their sum.
    pub fn residual(&self, x: &[f32], parts: &mut [f32]) -> f32 {
        let d = self.dim();
        for (i, p) in parts.iter_mut().enumerate().take(d) {
            *p = self.standardise(i, x[i]);
        }
        let mut recon = [0f32; 128];
        let recon = &mut recon[..d];
        for axis in self.components.chunks_exact(d) {
            let t: f32 = axis.iter().zip(parts.iter()).map(|(a, s)| a * s).sum();
            for (r, a) in recon.iter_mut().zip(axis) {
                *r += t * a;
            }
        }
        let mut total = 0.0;
        for (p, r) in parts.iter_mut().zip(recon.iter()) {
            let e = *p - r;
            *p = e * e;
            total += *p;
        }
        total
    }

    /// Maps a residual to 0..1: 0.5 at `quantile`, towards 1 far beyond it.
    pub fn anomaly(&self, residual: f32) -> f32 {
        let r = residual.max(0.0);
        r / (r + self.quantile.max(f32::MIN_POSITIVE))
    }

    /// Appends the novelty part to a model payload.
    pub fn write(&self, w: &mut Writer) {
        w.f32s(&self.mean);
        w.f32s(&self.scale);
        w.f32s(&self.components);
        w.f32(self.quantile);
    }

    /// Reads what [`Novelty::write`] wrote, checking its shapes.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, ModelError> {
        let n = Novelty {
            mean: r.f32s()?,
            scale: r.f32s()?,
            components: r.f32s()?,
            quantile: r.f32()?,
        };
        let d = n.dim();
        let ok = d > 0
            && d <= 128
            && n.scale.len() == d
            && n.components.len() % d == 0
            && n.scale.iter().all(|s| *s > 0.0 && s.is_finite())
            && n.mean.iter().chain(&n.components).all(|v| v.is_finite())
            && n.quantile.is_finite()
            && n.quantile > 0.0;
        if ok {
            Ok(n)
        } else {
            Err(ModelError::Invalid("novelty component malformed".into()))
        }
    }
}
