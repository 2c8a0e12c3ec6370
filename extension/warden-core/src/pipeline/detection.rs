//! The detection stage as the pipeline runs it: one shared detector behind an observation
//! sink (real time) and a record sink (end of invocation). Each finding the detector returns
//! goes to the responder (which adds its audit trail), is written as one JSON line (stdout in
//! production, where Lambda sends it to CloudWatch Logs), and is handed to the outputs.

use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

use crate::clock::unix_ms;
use crate::detect::Detector;
use crate::health::{Counter, Health};
use crate::respond::lockdown::Lockdown;
use crate::respond::{count_action, Responder};
use crate::schema::FeatureRecord;
use crate::schema::Finding;
use crate::schema::Observation;
use crate::sinks::forward::Forwarder;
use crate::sinks::outputs::Outputs;
use crate::sinks::{ObservationSink, RecordSink};

struct Inner {
    detector: Detector,
    responder: Option<Responder>,
    lockdown: Option<Lockdown>,
    out: Box<dyn Write + Send>,
    line: Vec<u8>,
    health: Arc<Health>,
    outputs: Option<Outputs>,
}

impl Inner {
    fn emit(&mut self, finding: Option<Finding>) {
        let Some(mut f) = finding else { return };
        // Before the line is written, so the printed finding carries its audit trail.
        if let Some(r) = self.responder.as_mut() {
            r.respond(&mut f);
        }
        if let Some(lockdown) = self.lockdown.as_mut() {
            let detector = &self.detector;
            if let Some(r) = lockdown.observe(&f, || detector.lockdown_known()) {
                count_action(&self.health, &r);
                f.actions.push(r);
            }
        }
        self.write(&f);
        if let Some(o) = &mut self.outputs {
            o.finding(&f);
        }
    }

    fn write(&mut self, f: &Finding) {
        self.line.clear();
        let written = serde_json::to_writer(&mut self.line, f).is_ok() && {
            self.line.push(b'\n');
            // One write per line so concurrent output cannot split it.
            self.out.write_all(&self.line).is_ok() && self.out.flush().is_ok()
        };
        let counter = if written {
            Counter::FindingsEmitted
        } else {
            Counter::FindingsDropped
        };
        self.health.add(counter, 1);
    }
}

/// A detector shared by its two sink halves.
#[derive(Clone)]
pub struct DetectorSink {
    inner: Arc<Mutex<Inner>>,
}

impl DetectorSink {
    /// Wraps a detector writing findings to `out`.
    pub fn new(detector: Detector, out: Box<dyn Write + Send>, health: Arc<Health>) -> Self {
        DetectorSink {
            inner: Arc::new(Mutex::new(Inner {
                detector,
                responder: None,
                lockdown: None,
                out,
                line: Vec::with_capacity(2048),
                health,
                outputs: None,
            })),
        }
    }

    /// Sends scores and findings on to metric and security-tool outputs too.
    pub fn with_outputs(self, outputs: Outputs) -> Self {
        self.lock().outputs = Some(outputs);
        self
    }

    /// The delivery task's handle, if AWS destinations are on.
    pub fn forwarder(&self) -> Option<Forwarder> {
        self.lock().outputs.as_ref()?.forwarder().cloned()
    }

    /// Responds to every finding before it is written (`None`: alert only).
    pub fn with_responder(self, responder: Option<Responder>) -> Self {
        self.lock().responder = responder;
        self
    }

    /// Locks the environment down when its risk reaches the threshold (`None`: never).
    pub fn with_lockdown(self, lockdown: Option<Lockdown>) -> Self {
        self.lock().lockdown = lockdown;
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // Only the pipeline thread takes the lock; a panic inside it was caught by the
        // pipeline's guard, and the state is still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl ObservationSink for DetectorSink {
    fn observe(&mut self, request_id: Option<&str>, observation: &Observation) {
        let mut inner = self.lock();
        let f = inner.detector.observe(request_id, observation, unix_ms());
        inner.emit(f);
    }
}

impl RecordSink for DetectorSink {
    fn record(&mut self, record: &FeatureRecord) {
        let mut inner = self.lock();
        let f = inner.detector.record(record, unix_ms());
        let score = inner.detector.last_score();
        inner.emit(f);
        if let (Some(score), Some(o)) = (score, &mut inner.outputs) {
            o.scored(
                score,
                record.counters.warden_cpu_us,
                record.gauges.warden_rss_kb,
            );
        }
    }

    fn flush(&mut self) {
        let mut inner = self.lock();
        if let Some(o) = &mut inner.outputs {
            o.close();
        }
        let _ = inner.out.flush();
    }
}
