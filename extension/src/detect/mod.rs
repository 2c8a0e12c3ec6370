//! Detection: every invocation's feature record (and, in real time, every sampler
//! observation) is scored locally; anomalies become explained findings (docs/findings.md).
//!
//! - [`vector`]: the fixed numeric feature vector a record is reduced to.
//! - [`baseline`]: the per-function behavioural baseline, learned online.
//! - [`scorer`]: the interface of the optional shipped model, and the attack classes.

pub mod baseline;
pub mod burst;
pub mod detector;
pub mod explain;
pub mod finding;
pub mod indicators;
pub mod memory;
pub mod redact;
pub mod score;
pub mod scorer;
pub mod sink;
pub mod vector;

#[cfg(test)]
pub(crate) mod testing;

pub use baseline::{Baseline, BaselineProfile, ProfileError};
pub use detector::{Detector, DetectorConfig};
pub use finding::Finding;
pub use scorer::{Class, ModelOutput, Scorer};
pub use vector::{vector, FEATURE_NAMES, N, VECTOR_VERSION};
