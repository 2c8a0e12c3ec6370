//! Warden: a security sensor for AWS Lambda functions, shipped as an external extension.
//!
//! The extension is one process with a pipeline of single-purpose stages:
//!
//! - [`sources`]: what Warden senses. [`sources::telemetry`] (Telemetry API listener and
//!   tolerant record parsing), [`sources::procfs`] (cheap cumulative kernel counters),
//!   [`sources::sampler`] (names new processes, endpoints and /tmp files while an
//!   invocation is in flight) and [`sources::filewatch`] (inotify on /tmp and the program directories).
//! - [`assembler`]: joins everything by request id into one finished invocation.
//! - [`features`]: the versioned [`features::FeatureRecord`] built from it.
//! - [`sinks`]: consumers of records and of real-time observations (stdout for now).
//! - [`pipeline`]: the single task that drives the stages; [`lifecycle`]: the Extensions
//!   API side (register, subscribe, next loop), with [`events_api`] the lean `/event/next`
//!   client.
//! - [`respond`]: automated responses to findings (kill, recycle, throttle) and their audit
//!   trail.
//! - [`config`] (the only reader of the environment), [`health`] (counters), [`log`].
#![cfg_attr(not(test), deny(clippy::unwrap_used))]

pub mod assembler;
pub mod aws;
pub mod clock;
pub mod config;
pub mod detect;
pub mod events_api;
pub mod features;
pub mod health;
pub mod lifecycle;
pub mod log;
pub mod model;
pub mod pipeline;
pub mod respond;
pub mod sinks;
pub mod sources;
