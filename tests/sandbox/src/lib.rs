//! warden-sandbox: a local, offline stand-in for one AWS Lambda execution environment.
//!
//! `cli` parses the command line into a [`config::RunConfig`]; `isolation` builds the
//! namespaces and mounts; `runner` drives the run; `engine` owns the lifecycle (init, invoke,
//! freeze, reset, shutdown); `api` serves the Runtime, Extensions and Telemetry APIs over
//! `state`; `telemetry` buffers and delivers events; `procs` spawns, reaps, freezes and kills
//! processes; `report` writes what happened. `harness` is for tests that drive the binary;
//! `moto` runs a local AWS API server for tests of AWS calls; `outcome` groups a test run's
//! findings and records by invocation. `sys` holds the few system calls no safe wrapper
//! offers: the only `unsafe` code of the crate.

pub mod api;
pub mod cli;
pub mod clock;
pub mod config;
pub mod engine;
pub mod environment;
pub mod forward;
pub mod freezer;
pub mod harness;
pub mod isolation;
pub mod moto;
pub mod outcome;
pub mod procs;
pub mod report;
pub mod runner;
pub mod state;
mod sys;
pub mod telemetry;

/// Returns from the test that calls it, with one line on stderr, when the sandbox's namespaces
/// are not available here (they need root).
#[macro_export]
macro_rules! skip_without_isolation {
    () => {
        if !$crate::isolation::available() {
            eprintln!("needs root for the sandbox's namespaces; skipping");
            return;
        }
    };
}
