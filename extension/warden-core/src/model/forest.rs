//! The random forest in a flat, array-of-nodes form for scoring without allocation.
//!
//! smartcore fits the forest ([`super::train`] converts it); this is how the extension
//! walks it. Each node also carries the share of attack rows among the training rows that
//! reached it, so a prediction can be explained by the splits on its path (each split's
//! change of that share is credited to the split's input).

use super::codec::{Reader, Writer};
use super::ModelError;

/// `feature` value of a leaf.
pub const LEAF: u16 = u16::MAX;

/// A fitted forest.
#[derive(Debug, Clone, PartialEq)]
pub struct Forest {
    /// Inputs per row.
    pub n_inputs: usize,
    /// Classes (indices into the model's class list).
    pub n_classes: usize,
    /// Index of each tree's root node.
    pub roots: Vec<u32>,
    /// Split input, or [`LEAF`].
    pub feature: Vec<u16>,
    /// Split: `x <= threshold` goes to `left`.
    pub threshold: Vec<f32>,
    /// Split: the `x <= threshold` child. Leaf: the class voted for.
    pub left: Vec<u32>,
    /// Split: the other child. Leaf: unused (0).
    pub right: Vec<u32>,
    /// Share of attack rows among training rows that reached the node.
    pub attack_share: Vec<f32>,
    /// Mean decrease in impurity per input, summing to 1.
    pub importance: Vec<f32>,
}

impl Forest {
    /// Adds each tree's vote to `votes` (length `n_classes`) and each split's change of the
    /// attack share, averaged over trees, to `credit` (length `n_inputs`).
    pub fn score(&self, x: &[f32], votes: &mut [u32], credit: &mut [f32]) {
        let per_tree = 1.0 / self.roots.len().max(1) as f32;
        for &root in &self.roots {
            let mut node = root as usize;
            loop {
                let feature = self.feature[node];
                if feature == LEAF {
                    votes[self.left[node] as usize] += 1;
                    break;
                }
                let next = if x[feature as usize] <= self.threshold[node] {
                    self.left[node]
                } else {
                    self.right[node]
                } as usize;
                credit[feature as usize] +=
                    (self.attack_share[next] - self.attack_share[node]) * per_tree;
                node = next;
            }
        }
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.feature.len()
    }

    /// True for a forest without nodes.
    pub fn is_empty(&self) -> bool {
        self.feature.is_empty()
    }

    /// Appends the forest to a model payload.
    pub fn write(&self, w: &mut Writer) {
        w.u32(self.n_inputs as u32);
        w.u32(self.n_classes as u32);
        w.u32s(&self.roots);
        w.u16s(&self.feature);
        w.f32s(&self.threshold);
        w.u32s(&self.left);
        w.u32s(&self.right);
        w.f32s(&self.attack_share);
        w.f32s(&self.importance);
    }

    /// Reads and validates a forest: every index in range and every tree acyclic (children
    /// come after their parent), so scoring can index without checks failing.
    pub fn read(r: &mut Reader<'_>) -> Result<Self, ModelError> {
        let forest = Forest {
            n_inputs: r.u32()? as usize,
            n_classes: r.u32()? as usize,
            roots: r.u32s()?,
            feature: r.u16s()?,
            threshold: r.f32s()?,
            left: r.u32s()?,
            right: r.u32s()?,
            attack_share: r.f32s()?,
            importance: r.f32s()?,
        };
        forest.validate()?;
        Ok(forest)
    }

    fn validate(&self) -> Result<(), ModelError> {
        let n = self.feature.len();
        let same = [
            self.threshold.len(),
            self.left.len(),
            self.right.len(),
            self.attack_share.len(),
        ];
        if same.iter().any(|&len| len != n) || self.importance.len() != self.n_inputs {
            return Err(invalid("forest arrays differ in length"));
        }
        if self.roots.is_empty() || self.roots.iter().any(|&r| r as usize >= n) {
            return Err(invalid("forest root out of range"));
        }
        for i in 0..n {
            if self.feature[i] == LEAF {
                if self.left[i] as usize >= self.n_classes {
                    return Err(invalid("leaf class out of range"));
                }
            } else if self.feature[i] as usize >= self.n_inputs
                || self.left[i] as usize <= i
                || self.right[i] as usize <= i
                || self.left[i] as usize >= n
                || self.right[i] as usize >= n
            {
                return Err(invalid("split node out of range"));
            }
        }
        Ok(())
    }
}

fn invalid(what: &str) -> ModelError {
    ModelError::Invalid(what.into())
}

/// The largest f32 not above `t`: a threshold fitted on f64 midpoints between f32 values
/// then splits f32 inputs exactly as it split the training rows.
pub fn f32_floor(t: f64) -> f32 {
    let f = t as f32;
    if f64::from(f) <= t || !f.is_finite() {
        return f;
    }
    let bits = f.to_bits();
    if f > 0.0 {
        f32::from_bits(bits - 1)
    } else if f == 0.0 {
        -f32::from_bits(1)
    } else {
        f32::from_bits(bits + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_never_rounds_up() {
        for t in [0.1f64, -0.1, 1e-30, -1e-30, 3.000_000_1, 0.0, 12_345.678_9] {
            let f = f32_floor(t);
            assert!(f64::from(f) <= t, "{t} -> {f}");
            // The next f32 up is above t: nothing between was skipped.
            let up = if f >= 0.0 {
                f32::from_bits(f.to_bits() + 1)
            } else {
                f32::from_bits(f.to_bits() - 1)
            };
            assert!(f64::from(up) > t, "{t} -> {f}");
        }
    }
}
