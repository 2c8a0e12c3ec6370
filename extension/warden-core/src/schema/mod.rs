//! The records every stage shares, in one place: what goes over the wire (stdout, CloudWatch
//! Logs, Security Hub, EventBridge) and what one stage hands the next. Stages depend on these
//! types, not on each other's internals.
//!
//! - [`record`]: the versioned per-invocation [`FeatureRecord`] ([`SCHEMA_VERSION`],
//!   docs/features.md) and the counters, gauges and figures it carries.
//! - [`observation`]: what the sampler and the file watch see in real time.
//! - [`finding`]: the versioned [`Finding`] ([`FINDING_VERSION`], docs/findings.md), its
//!   [`Class`], [`Severity`] and [`Indicator`]s.
//! - [`action`]: the response audit trail ([`ActionRecord`], docs/responses.md).
//! - [`lifecycle`]: typed lifecycle values ([`ShutdownReason`]).
//!
//! Changing a field's name or meaning bumps the version of the record it belongs to.

pub mod action;
pub mod finding;
pub mod lifecycle;
pub mod observation;
pub mod record;

pub use action::{Action, ActionOutcome, ActionRecord, ActionTarget};
pub use finding::{
    BaselineView, Class, Explanation, Finding, Indicator, ModelView, Severity, Source,
    FINDING_VERSION,
};
pub use lifecycle::ShutdownReason;
pub use observation::{
    ExecHow, Observation, PolicyVerdict, Proto, Reader, SecretEncoding, TamperKind, TmpAction,
};
pub use record::{
    CounterDelta, EndGauges, FeatureRecord, LogStats, ObservationCounts, PlatformFigures,
    RecordKind, Status, MAX_EVIDENCE, SCHEMA_VERSION,
};
