//! Warden's offline tooling, behind the `warden` command: everything that never runs inside
//! Lambda, so that the layer's binary links none of it (smartcore, clap, the CloudWatch Logs
//! client).
//!
//! - [`dataset`], [`cloudwatch_logs`], [`policy`]: from `warden-learn`, which the fleet's
//!   profiler shares: records → rows, profiles, records read from a log group, policy export.
//! - [`train`]: the shipped model (smartcore random forest, with `train::pca` for the
//!   novelty part) and per-function profiles.
//! - [`eval`]: labelled records scored by the real detector (`eval::explained` checks each
//!   detection's explanation); [`report`] prints the tables.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub use warden_learn::{cloudwatch_logs, dataset, policy};

pub mod eval;
pub mod report;
pub mod train;

#[cfg(test)]
mod tests;
