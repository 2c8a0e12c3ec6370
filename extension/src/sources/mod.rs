//! What Warden senses: telemetry, kernel counters, the in-flight sampler and /tmp.

pub mod procfs;
pub mod sampler;
pub mod scratch;
pub mod telemetry;
pub mod tmpwatch;
