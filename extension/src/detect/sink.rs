//! The detector as a pipeline sink: one shared detector behind an observation sink (real
//! time) and a record sink (end of invocation); findings written as one JSON line each
//! (stdout in production, where Lambda sends it to CloudWatch Logs).

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use super::baseline::BaselineProfile;
use super::detector::{Detector, DetectorConfig};
use super::finding::Finding;
use super::scorer::Scorer;
use crate::clock::unix_ms;
use crate::config::{Config, Mode, ModelChoice};
use crate::features::FeatureRecord;
use crate::health::{Counter, Health};
use crate::respond::Responder;
use crate::sinks::forward::Forwarder;
use crate::sinks::outputs::Outputs;
use crate::sinks::{ObservationSink, RecordSink};
use crate::sources::sampler::Observation;

struct Inner {
    detector: Detector,
    responder: Option<Responder>,
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

/// The detector the settings ask for: `None` unless the mode is `on`. A missing or bad
/// model or profile is logged once and detection carries on without it.
pub fn from_config(config: &Config, health: Arc<Health>) -> Option<DetectorSink> {
    if config.mode != Mode::On {
        return None;
    }
    let cfg = DetectorConfig {
        threshold: config.threshold,
        function_name: config.lambda.function_name.clone(),
        function_version: config.lambda.function_version.clone(),
        tmp_prefix: format!(
            "{}/",
            config.tmp_dir.to_string_lossy().trim_end_matches('/')
        ),
        known_exes: config.known_exes.clone(),
    };
    let mut detector = Detector::new(cfg.clone(), health.clone(), unix_ms());
    if let Some(path) = &config.profile {
        match load_profile(path, &cfg.function_name)
            .and_then(|p| detector.with_profile(&p).map_err(|e| e.to_string()))
        {
            Ok(d) => detector = d,
            Err(e) => {
                crate::warn!("baseline profile {} not used: {e}", path.display());
                detector = Detector::new(cfg, health.clone(), unix_ms());
            }
        }
    }
    let scorer: Option<Arc<dyn Scorer>> = match &config.model {
        ModelChoice::Off => None,
        choice => {
            let path = match choice {
                ModelChoice::File(p) => Some(p.as_path()),
                _ => None,
            };
            match crate::model::load_default(path) {
                Ok(m) => Some(Arc::new(m)),
                Err(e) => {
                    crate::warn!("model not used ({e}); scoring with baseline and rules alone");
                    None
                }
            }
        }
    };
    let detector = detector.with_scorer(scorer);
    let outputs = Outputs::from_config(config, health.clone(), Box::new(std::io::stdout()));
    Some(DetectorSink::new(detector, Box::new(std::io::stdout()), health).with_outputs(outputs))
}

/// One profile, or the function's entry of what `warden train --profile-out` writes (one
/// profile per function name).
fn load_profile(path: &Path, function: &str) -> Result<BaselineProfile, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    if let Ok(one) = serde_json::from_str::<BaselineProfile>(&text) {
        return Ok(one);
    }
    let mut by_function: std::collections::BTreeMap<String, BaselineProfile> =
        serde_json::from_str(&text).map_err(|e| e.to_string())?;
    by_function
        .remove(function)
        .ok_or_else(|| format!("no profile for function {function:?} in it"))
}

#[cfg(test)]
mod profile_file_tests {
    use super::*;
    use crate::detect::baseline::Baseline;

    #[test]
    fn a_profile_file_holds_one_profile_or_one_per_function() {
        let dir = std::env::temp_dir().join(format!("warden-profile-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut b = Baseline::new();
        for i in 0..25 {
            b.observe(&[i as f32; crate::detect::vector::N]);
        }
        let mut p = b.to_profile();
        p.shell_shapes = vec!["sh -c gzip -0".into()];
        let one = dir.join("one.json");
        std::fs::write(&one, serde_json::to_string(&p).unwrap()).unwrap();
        assert_eq!(load_profile(&one, "any").unwrap(), p);
        let map = dir.join("map.json");
        let by_function = std::collections::BTreeMap::from([("orders".to_string(), p.clone())]);
        std::fs::write(&map, serde_json::to_string(&by_function).unwrap()).unwrap();
        assert_eq!(load_profile(&map, "orders").unwrap(), p);
        let missing = load_profile(&map, "billing").unwrap_err();
        assert!(missing.contains("billing"), "{missing}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
