//! What Warden senses: telemetry, kernel counters, the in-flight sampler and file watches.

pub mod filewatch;
pub mod guard;
pub mod procfs;
pub mod sampler;
pub mod scratch;
pub mod telemetry;
