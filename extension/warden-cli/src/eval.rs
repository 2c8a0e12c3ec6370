//! `warden eval`: scores labelled rows as the extension would and reports per-class recall
//! and precision, false positives per benign invocation, a confusion table and latency.
//!
//! Two modes:
//! - [`Mode::Detector`] (the default of `warden eval`): every record goes through the
//!   extension's own [`Detector`] (indicators, baseline and model combined, one detector per
//!   execution environment, records in order); the prediction is the finding's class.
//! - [`Mode::Model`]: the model component alone. z-scores come from the same online replay
//!   ([`dataset::replay`]); a row is flagged when the forest names a class, or else when the
//!   novelty score reaches the threshold (reported as `anomaly`); flagged rows are not
//!   learned by the baseline.

pub mod explained;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;

use crate::dataset::{self, Row};
use warden_core::detect::baseline::BaselineProfile;
use warden_core::detect::detector::{Detector, DetectorConfig, Verdict};
use warden_core::features::FEATURE_NAMES;
use warden_core::health::Health;
use warden_core::model::Scorer;
use warden_core::model::{ShippedModel, BENIGN};
use warden_core::schema::Class;

/// Prediction name for a novelty-only flag.
pub const ANOMALY: &str = "anomaly";

/// Figures for one true class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassFigures {
    /// Class name.
    pub class: String,
    /// Rows with this label.
    pub support: u64,
    /// Of those, flagged at all (any class or anomaly).
    pub detected: u64,
    /// `detected / support`.
    pub recall: f64,
    /// Of those, predicted as exactly this class.
    pub correct: u64,
    /// `correct / support`.
    pub class_recall: f64,
    /// Rows predicted as this class.
    pub predicted: u64,
    /// `correct / predicted` (1 when nothing was predicted).
    pub precision: f64,
    /// Of the detected rows, those whose explanation names first a feature this class
    /// moves ([`explained::moved_features`]).
    pub explained: u64,
    /// `explained / detected`.
    pub explained_share: f64,
    /// How often each feature came first in the explanations of detected rows.
    pub top_features: Vec<(String, u64)>,
}

/// False positives on one benign function.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionFigures {
    /// Function name.
    pub function: String,
    /// The model never saw it in training.
    pub held_out: bool,
    /// Benign invocations.
    pub benign: u64,
    /// Of those, flagged.
    pub false_positives: u64,
}

/// The evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// SHA-256 of the model file.
    pub model_sha256: String,
    /// Rows scored.
    pub rows: u64,
    /// Corpus seeds of the rows.
    pub seeds: Vec<u64>,
    /// Seeds also used in training (should be empty).
    pub overlapping_seeds: Vec<u64>,
    /// `detector` or `model`.
    pub mode: String,
    /// Model mode: novelty score that flags a row the forest calls benign.
    pub anomaly_threshold: f32,
    /// Per true class, benign first.
    pub classes: Vec<ClassFigures>,
    /// Benign rows.
    pub benign: u64,
    /// Benign rows flagged.
    pub false_positives: u64,
    /// `false_positives / benign`.
    pub false_positive_rate: f64,
    /// Benign figures per function.
    pub functions: Vec<FunctionFigures>,
    /// Column names of the confusion table: benign, the classes, anomaly.
    pub predicted_labels: Vec<String>,
    /// One row per entry of `classes`: counts per predicted label.
    pub confusion: Vec<Vec<u64>>,
    /// Median scoring time per row, µs.
    pub latency_median_us: f64,
    /// 99th percentile scoring time per row, µs.
    pub latency_p99_us: f64,
}

/// What is evaluated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mode {
    /// The extension's detector with the model.
    Detector,
    /// The model alone, flagging novelty at `anomaly_threshold`.
    Model {
        /// Novelty score that flags a row the forest calls benign.
        anomaly_threshold: f32,
    },
}

/// A prediction: the label and the feature its explanation names first.
#[derive(Debug, Clone, Default)]
pub(super) struct Prediction {
    pub(super) label: String,
    pub(super) top_feature: Option<String>,
    /// Detector mode: how the row was scored.
    pub(super) verdict: Option<Verdict>,
}

/// Model-only predictions and the model's scoring time per row (µs).
fn model_predictions(
    model: &ShippedModel,
    rows: &[Row],
    threshold: f32,
) -> (Vec<Prediction>, Vec<f64>) {
    let mut predictions = vec![Prediction::default(); rows.len()];
    let mut latencies = Vec::with_capacity(rows.len());
    dataset::replay(rows, |i, z| {
        let start = Instant::now();
        let out = model.score(&rows[i].raw, z);
        latencies.push(start.elapsed().as_secs_f64() * 1e6);
        let label = match out.class {
            Some((class, _)) => class.as_str().to_string(),
            None if out.anomaly >= threshold => ANOMALY.to_string(),
            None => BENIGN.to_string(),
        };
        let flagged = label != BENIGN;
        predictions[i] = Prediction {
            label,
            top_feature: out
                .contributions
                .first()
                .map(|(f, _)| FEATURE_NAMES[*f].to_string()),
            verdict: None,
        };
        flagged
    });
    (predictions, latencies)
}

/// Predictions of the extension's detector, one per row, in record order.
fn detector_predictions(
    model: &ShippedModel,
    rows: &[Row],
    profiles: &Profiles,
) -> Vec<Prediction> {
    let scorer: Arc<dyn Scorer> = Arc::new(model.clone());
    let mut envs: HashMap<&str, (Detector, u64)> = HashMap::new();
    let fresh = |row: &Row| {
        let cfg = DetectorConfig {
            function_name: row.function.clone(),
            function_version: row.record.function_version.clone(),
            ..DetectorConfig::default()
        };
        let base = || {
            Detector::new(
                cfg.clone(),
                Arc::new(Health::default()),
                row.record.start_unix_ms,
            )
            .with_scorer(Some(scorer.clone()))
        };
        match profiles.get(&row.function) {
            // Profiles come from `warden train --profile-out`, checked when read.
            Some(p) => base().with_profile(p).unwrap_or_else(|e| {
                eprintln!("warden: the profile of {} is not used: {e}", row.function);
                base()
            }),
            None => base(),
        }
    };
    let mut predictions: Vec<Prediction> = Vec::with_capacity(rows.len());
    // Where each invocation's row is, so that a burst finding can name earlier ones.
    let mut at: HashMap<(&str, &str), usize> = HashMap::new();
    for (i, row) in rows.iter().enumerate() {
        let env = envs
            .entry(row.scope.as_str())
            .or_insert_with(|| (fresh(row), 0));
        if row.cold || row.seq <= env.1 {
            env.0 = fresh(row);
        }
        env.1 = row.seq;
        if let Some(id) = row.record.request_id.as_deref() {
            at.insert((row.scope.as_str(), id), i);
        }
        let finding = env.0.record(&row.record, row.record.start_unix_ms);
        let verdict = env.0.last_verdict().cloned();
        let Some(f) = finding else {
            predictions.push(Prediction {
                label: BENIGN.to_string(),
                top_feature: None,
                verdict,
            });
            continue;
        };
        let label = f.class.as_str().to_string();
        let top_feature = f.explanation.first().map(|e| e.feature.clone());
        // Held errors of a probing burst are reported by the finding that names the burst.
        for id in &f.earlier_requests {
            let Some(&j) = at.get(&(row.scope.as_str(), id.as_str())) else {
                continue;
            };
            if predictions[j].label == BENIGN {
                predictions[j].label = label.clone();
                predictions[j].top_feature = top_feature.clone();
            }
        }
        predictions.push(Prediction {
            label,
            top_feature,
            verdict,
        });
    }
    predictions
}

/// How one row was scored (`warden eval --rows`).
#[derive(Debug, Clone, Serialize)]
pub struct RowResult {
    /// Function.
    pub function: String,
    /// Baseline scope (execution environment).
    pub scope: String,
    /// Position in the environment.
    pub seq: u64,
    /// True label.
    pub label: Option<String>,
    /// Prediction.
    pub predicted: String,
    /// Feature the explanation names first.
    pub top_feature: Option<String>,
    /// Detector mode: combined score and its parts (indicators, baseline, model).
    pub score: Option<[f32; 4]>,
    /// Detector mode: indicators that fired.
    pub indicators: Vec<String>,
    /// Detector mode: the largest z-scores (at least 2), largest first.
    pub top_z: Vec<(String, f32)>,
}

fn row_result(row: &Row, p: &Prediction) -> RowResult {
    let v = p.verdict.as_ref();
    let mut top_z: Vec<(String, f32)> = v
        .map(|v| {
            v.z.iter()
                .enumerate()
                .filter(|(_, z)| **z >= 2.0)
                .map(|(i, z)| (FEATURE_NAMES[i].to_string(), (*z * 10.0).round() / 10.0))
                .collect()
        })
        .unwrap_or_default();
    top_z.sort_by(|a, b| b.1.total_cmp(&a.1));
    top_z.truncate(4);
    RowResult {
        function: row.function.clone(),
        scope: row.scope.clone(),
        seq: row.seq,
        label: row.label.clone(),
        predicted: p.label.clone(),
        top_feature: p.top_feature.clone(),
        score: v.map(|v| {
            let a = &v.assessment;
            [a.score, a.indicators, a.baseline, a.model]
        }),
        indicators: v
            .map(|v| v.indicators.iter().map(|i| format!("{i:?}")).collect())
            .unwrap_or_default(),
        top_z,
    }
}

/// Baseline profiles per function (`warden train --profile-out`).
pub type Profiles = BTreeMap<String, BaselineProfile>;

/// Scores the labelled rows (others are replayed for the baseline but not counted).
pub fn evaluate(model: &ShippedModel, rows: &[Row], mode: Mode) -> Report {
    evaluate_rows(model, rows, mode, &Profiles::new()).0
}

/// [`evaluate`], with how every row was scored; in detector mode each environment's
/// detector starts from its function's profile when `profiles` has one.
pub fn evaluate_rows(
    model: &ShippedModel,
    rows: &[Row],
    mode: Mode,
    profiles: &Profiles,
) -> (Report, Vec<RowResult>) {
    let threshold = match mode {
        Mode::Model { anomaly_threshold } => anomaly_threshold,
        Mode::Detector => 0.5,
    };
    let (model_only, mut latencies) = model_predictions(model, rows, threshold);
    let predictions = match mode {
        Mode::Model { .. } => model_only,
        Mode::Detector => detector_predictions(model, rows, profiles),
    };
    let labelled: Vec<(&Row, &str)> = rows
        .iter()
        .zip(&predictions)
        .filter_map(|(r, p)| r.label.as_ref().map(|_| (r, p.label.as_str())))
        .collect();
    let predicted_labels = predicted_labels(&labelled);
    let true_labels = true_labels(&labelled);
    let mut confusion = vec![vec![0u64; predicted_labels.len()]; true_labels.len()];
    for (row, p) in &labelled {
        let t = position(&true_labels, row.label.as_deref().unwrap_or(BENIGN));
        confusion[t][position(&predicted_labels, p)] += 1;
    }
    let mut classes = class_figures(&true_labels, &predicted_labels, &confusion);
    explained::fill(&mut classes, rows, &predictions);
    let benign = classes.first().map_or(0, |c| c.support);
    let false_positives = classes.first().map_or(0, |c| c.detected);
    let seeds = seeds(rows);
    let trained = &model.header().training.corpus_seeds;
    latencies.sort_by(f64::total_cmp);
    let per_row = rows
        .iter()
        .zip(&predictions)
        .map(|(r, p)| row_result(r, p))
        .collect();
    let report = Report {
        model_sha256: model.sha256().to_string(),
        rows: labelled.len() as u64,
        overlapping_seeds: seeds
            .iter()
            .filter(|s| trained.contains(s))
            .copied()
            .collect(),
        seeds,
        mode: match mode {
            Mode::Detector => "detector".into(),
            Mode::Model { .. } => "model".into(),
        },
        anomaly_threshold: threshold,
        classes,
        benign,
        false_positives,
        false_positive_rate: ratio(false_positives, benign),
        functions: function_figures(model, &labelled),
        predicted_labels,
        confusion,
        latency_median_us: quantile(&latencies, 0.5),
        latency_p99_us: quantile(&latencies, 0.99),
    };
    (report, per_row)
}

fn true_labels(labelled: &[(&Row, &str)]) -> Vec<String> {
    let mut out = vec![BENIGN.to_string()];
    for c in Class::ALL {
        if labelled
            .iter()
            .any(|(r, _)| r.label.as_deref() == Some(c.as_str()))
        {
            out.push(c.as_str().to_string());
        }
    }
    out
}

fn predicted_labels(labelled: &[(&Row, &str)]) -> Vec<String> {
    let mut out = vec![BENIGN.to_string()];
    for c in Class::ALL {
        let name = c.as_str();
        if labelled
            .iter()
            .any(|(r, p)| *p == name || r.label.as_deref() == Some(name))
        {
            out.push(name.to_string());
        }
    }
    out
}

fn position(labels: &[String], name: &str) -> usize {
    labels.iter().position(|l| l == name).unwrap_or(0)
}

fn class_figures(
    true_labels: &[String],
    predicted_labels: &[String],
    confusion: &[Vec<u64>],
) -> Vec<ClassFigures> {
    true_labels
        .iter()
        .zip(confusion)
        .map(|(name, row)| {
            let support: u64 = row.iter().sum();
            let col = predicted_labels.iter().position(|l| l == name);
            let correct = col.map_or(0, |c| row[c]);
            let predicted: u64 = col.map_or(0, |c| confusion.iter().map(|r| r[c]).sum());
            let detected = support - row[0];
            ClassFigures {
                class: name.clone(),
                support,
                detected,
                recall: ratio(detected, support),
                correct,
                class_recall: ratio(correct, support),
                predicted,
                precision: if predicted == 0 {
                    1.0
                } else {
                    ratio(correct, predicted)
                },
                explained: 0,
                explained_share: 0.0,
                top_features: Vec::new(),
            }
        })
        .collect()
}

fn function_figures(model: &ShippedModel, labelled: &[(&Row, &str)]) -> Vec<FunctionFigures> {
    let mut by_function: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for (row, p) in labelled {
        if row.label.as_deref() == Some(BENIGN) {
            let e = by_function.entry(row.function.as_str()).or_default();
            e.0 += 1;
            e.1 += u64::from(*p != BENIGN);
        }
    }
    let trained = &model.header().training.functions;
    by_function
        .into_iter()
        .map(|(f, (benign, fp))| FunctionFigures {
            function: f.to_string(),
            held_out: !trained.iter().any(|t| t == f),
            benign,
            false_positives: fp,
        })
        .collect()
}

fn seeds(rows: &[Row]) -> Vec<u64> {
    let mut s: Vec<u64> = rows.iter().filter_map(|r| r.seed).collect();
    s.sort_unstable();
    s.dedup();
    s
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let at = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1;
    sorted[at]
}
