//! Where records and findings go. A sink implements [`RecordSink`] (finished feature records)
//! and/or [`ObservationSink`] (real-time observations): [`stdout`] prints records; the
//! detection stage (`pipeline::detection`) hands findings and scores to [`outputs`], which
//! feeds [`metrics`] ([`emf`] lines or [`cloudwatch`] datums), [`securityhub`] and
//! [`eventbridge`] through bounded [`queue`]s and one delivery task ([`forward`]).

pub mod cloudwatch;
pub mod emf;
pub mod eventbridge;
pub mod forward;
pub mod function;
pub mod metrics;
pub mod outputs;
pub mod queue;
pub mod securityhub;
pub mod stdout;

use crate::health::HealthSnapshot;
use crate::schema::FeatureRecord;
use crate::schema::Observation;

/// Receives each finished feature record.
pub trait RecordSink {
    /// One record. Must not block for long: it runs on the pipeline's thread.
    fn record(&mut self, record: &FeatureRecord);
    /// Final health figures at shutdown.
    fn health(&mut self, _health: &HealthSnapshot) {}
    /// Sends what is buffered; called at shutdown within the deadline.
    fn flush(&mut self) {}
}

/// Receives sampler and /tmp observations as they happen (real-time consumers).
pub trait ObservationSink {
    /// One observation made during the invocation `request_id` (none during init).
    fn observe(&mut self, request_id: Option<&str>, observation: &Observation);
}

/// The set of sinks the pipeline feeds.
#[derive(Default)]
pub struct Sinks {
    /// Record consumers.
    pub records: Vec<Box<dyn RecordSink + Send>>,
    /// Real-time observation consumers.
    pub observers: Vec<Box<dyn ObservationSink + Send>>,
}

impl Sinks {
    /// Hands a record to every record sink.
    pub fn record(&mut self, record: &FeatureRecord) {
        for sink in &mut self.records {
            sink.record(record);
        }
    }

    /// Hands an observation to every observer.
    pub fn observe(&mut self, request_id: Option<&str>, observation: &Observation) {
        for sink in &mut self.observers {
            sink.observe(request_id, observation);
        }
    }

    /// Final health, then flush.
    pub fn finish(&mut self, health: &HealthSnapshot) {
        for sink in &mut self.records {
            sink.health(health);
            sink.flush();
        }
    }
}
