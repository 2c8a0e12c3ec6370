//! The Telemetry API source: subscription, an HTTP listener, and tolerant parsing.
//!
//! Owned here rather than taken from `lambda-extension`: the crate's record enum has no
//! catch-all (one unknown type fails the whole batch with HTTP 400, which Lambda then
//! re-sends forever) and its listener unwraps on bind and accept.

pub mod events;
pub mod guard;
pub mod listener;
pub mod logs;
pub mod parse;
pub mod subscribe;
pub mod wire;

pub use events::TelemetryEvent;
pub use parse::{parse_batch, BatchOutcome};
