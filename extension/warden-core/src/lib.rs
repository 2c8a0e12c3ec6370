//! Warden's pipeline: everything the extension runs inside a Lambda execution environment,
//! without the Extensions API loop (the `warden-extension` binary) and without the offline
//! tooling (the `warden` CLI). One process, one pipeline of single-purpose stages:
//!
//! ```text
//! sources ──► assembler ──► features ──► detect ──► respond ──► sinks
//!   (telemetry, /proc,       (one record   (vector)  (findings) (kill,     (stdout, EMF,
//!    sampler, file watch)     per request)                       recycle,   CloudWatch,
//!                                                                throttle)  Security Hub,
//!                                                                           EventBridge)
//! ```
//!
//! - [`schema`]: the records every stage shares (feature record, observation, finding,
//!   action record, class, severity); stages depend on it, not on each other's internals.
//! - [`sources`]: what Warden senses: [`sources::telemetry`], [`sources::procfs`],
//!   [`sources::sampler`], [`sources::filewatch`], [`sources::scratch`].
//! - [`assembler`]: joins everything by request id into one [`schema::FeatureRecord`].
//! - [`features`]: the versioned feature vector a record is reduced to.
//! - [`model`]: the scoring interface and the shipped model's loader and scorer.
//! - [`detect`]: baseline, indicators and model → a scored, explained [`schema::Finding`].
//! - [`respond`]: automated responses and their audit trail.
//! - [`fleet`]: the function's profile read at init from the S3 object the fleet's profiler
//!   keeps (`WARDEN_PROFILE=s3://…`), with its format, checks and the environment's copy.
//! - [`record_mac`]: record lines signed with the deployment's key, so that training learns
//!   only from what Warden wrote.
//! - [`sinks`]: where records and findings go; [`redact`]: evidence without secrets, for
//!   both findings and records ([`words`]: the command-line helpers it shares with the
//!   detector).
//! - [`pipeline`]: the task that drives the stages, guards each call, and carries out a
//!   recycle.
//! - [`config`] (the only reader of the environment), [`health`] (counters), [`log`],
//!   [`clock`], [`aws`] (the SDK configuration), [`sys`] (the system calls no safe wrapper
//!   offers: the only `unsafe` code).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]
#![warn(missing_docs)]

pub mod assembler;
pub mod aws;
pub mod clock;
pub mod config;
pub mod detect;
pub mod features;
pub mod fleet;
pub mod health;
pub mod log;
pub mod model;
pub mod pipeline;
pub mod record_mac;
pub mod redact;
pub mod respond;
pub mod schema;
pub mod sinks;
pub mod sources;
pub mod sys;
pub mod words;

#[cfg(any(test, feature = "testing"))]
pub mod testing;
