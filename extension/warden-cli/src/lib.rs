//! Warden's offline tooling, behind the `warden` command: everything that never runs inside
//! Lambda, so that the layer's binary links none of it (smartcore, clap, the CloudWatch Logs
//! client).
//!
//! - [`dataset`]: labelled corpus records (or bare feature records) → rows: the vector, the
//!   label, the function.
//! - [`train`]: the shipped model (smartcore random forest, with `train::pca` for the
//!   novelty part) and per-function profiles.
//! - [`eval`]: labelled records scored by the real detector (`eval::explained` checks each
//!   detection's explanation); [`report`] prints the tables.
//! - [`cloudwatch_logs`]: a function's records read back from its log group.
//! - [`policy`]: a function's profile exported as the in-process guard's policy file.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod cloudwatch_logs;
pub mod dataset;
pub mod eval;
pub mod policy;
pub mod report;
pub mod train;

#[cfg(test)]
mod tests;
