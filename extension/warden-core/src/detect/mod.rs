//! Detection: every invocation's feature record (and, in real time, every sampler
//! observation) is scored locally; anomalies become explained findings (docs/findings.md).
//!
//! - [`baseline`]: the per-function behavioural baseline, learned online.
//! - [`indicators`]: rules that need no statistics; [`burst`], [`memory`]: error bursts and
//!   memory that stays up; [`contacts`]: the invocations a beacon called out from before its
//!   cadence showed; [`responses`]: responses far larger than any the function returned;
//!   [`threads`]: threads the runtime keeps from one invocation to the next; [`cost`]: what
//!   an invocation costs against the costliest the environment ran.
//! - [`score`], [`explain`]: the combined score and its explanation.
//! - [`detector`]: the stage itself: records and observations in, [`crate::schema::Finding`]s
//!   out.

pub mod baseline;
pub mod burst;
pub mod contacts;
pub mod cost;
pub mod detector;
pub mod explain;
pub mod indicators;
pub mod memory;
pub mod responses;
pub mod score;
pub mod threads;

pub use baseline::{Baseline, BaselineProfile, ProfileError};
pub use detector::{Detector, DetectorConfig};
