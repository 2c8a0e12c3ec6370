//! What Warden learns of a function from the records its extension wrote, shared by the
//! offline `warden` command and the fleet's profiler function (neither ships in the layer):
//!
//! - [`dataset`]: labelled corpus records or bare feature records → rows (the vector, the
//!   label, the function), which lines are believed ([`dataset::Trust`]), and per-function
//!   profiles with the rule that promotes a habit into one ([`dataset::Promotion`]).
//! - [`cloudwatch_logs`]: a function's records, and the invocations its findings name, read
//!   back from its log group.
//! - [`policy`]: a function's profile exported as the in-process guard's policy file.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod cloudwatch_logs;
pub mod dataset;
pub mod policy;
