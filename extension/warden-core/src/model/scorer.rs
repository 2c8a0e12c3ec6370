//! The interface of a scoring model: the shipped generic model implements it, the detector
//! calls it.

use crate::features::N;
use crate::schema::Class;

/// What a model says about one invocation.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelOutput {
    /// The most likely attack class and its probability; `None` when the model thinks the
    /// invocation benign.
    pub class: Option<(Class, f32)>,
    /// How unlike anything the model was trained on, 0 (typical) to 1.
    pub anomaly: f32,
    /// Feature index and its share of the decision (any non-negative scale; the detector
    /// normalises), for explanations.
    pub contributions: Vec<(usize, f32)>,
}

impl ModelOutput {
    /// The same verdict with its probability and novelty scaled by `factor` (0..1).
    pub fn discounted(mut self, factor: f32) -> ModelOutput {
        let factor = factor.clamp(0.0, 1.0);
        if let Some((_, p)) = self.class.as_mut() {
            *p *= factor;
        }
        self.anomaly *= factor;
        self
    }
}

/// A scoring model. `raw` is the vector ([`crate::features::vector`]), `z` the same vector
/// normalised by the function's baseline (all zeros while it warms up).
pub trait Scorer: Send + Sync {
    /// Scores one invocation. Must be cheap and must not panic on any finite input.
    fn score(&self, raw: &[f32; N], z: &[f32; N]) -> ModelOutput;
}
