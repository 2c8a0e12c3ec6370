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
//!
//! And three settings ([`Setting`]): the detector without profiles (every environment learns
//! from scratch), with the profiles of `warden train --profile-out`, and
//! [`lofo::leave_one_function_out`], where each function is scored by a model and profiles
//! trained without it. [`bars`] holds the figures against the bars of "detection that holds on
//! functions Warden has never seen".

pub mod bars;
pub mod explained;
pub mod lofo;

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
use warden_core::schema::{Class, Indicator, Severity};

/// Prediction name for a novelty-only flag.
pub const ANOMALY: &str = "anomaly";

/// An environment's first invocations, where the rules of the issue differ: benign flags are
/// counted after them, and a high or critical finding in them needs a hard indicator. (The
/// same length as the baseline's warm-up, `detect::baseline::WARMUP`, but a bar of its own.)
pub const FIRST_INVOCATIONS: u64 = 20;

/// Where the model and profiles that scored the rows come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Setting {
    /// One model and no profile: every environment learns from scratch.
    NoProfile,
    /// One model, and each function's detector seeded from its profile when it has one.
    WithProfiles,
    /// Each function scored by a model and profiles trained without it ([`lofo`]).
    LeaveOneFunctionOut,
}

impl Setting {
    /// The name the report gives it.
    pub fn as_str(self) -> &'static str {
        match self {
            Setting::NoProfile => "no profile",
            Setting::WithProfiles => "with profiles",
            Setting::LeaveOneFunctionOut => "leave-one-function-out",
        }
    }
}

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
    /// Class accuracy, `correct / detected`: of the rows flagged, the share whose finding
    /// (detector mode) or forest (model mode) names this class (0 when none was flagged).
    pub class_accuracy: f64,
    /// Rows predicted as this class.
    pub predicted: u64,
    /// `correct / predicted` (1 when nothing was predicted).
    pub precision: f64,
    /// Explained first: of the detected rows, those whose explanation's first item is a
    /// feature this class moves ([`explained::moved_features`]; an indicator counts through
    /// the feature it points at).
    pub explained_first: u64,
    /// `explained_first / detected`.
    pub explained_first_share: f64,
    /// How often each feature came first in the explanations of detected rows.
    pub top_features: Vec<(String, u64)>,
}

/// One function: false positives, and the rules of an environment's first invocations.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionFigures {
    /// Function name.
    pub function: String,
    /// The model that scored it never saw it in training.
    pub held_out: bool,
    /// Its detectors started from a profile of it.
    pub profiled: bool,
    /// Benign invocations.
    pub benign: u64,
    /// Of those, flagged.
    pub false_positives: u64,
    /// Benign invocations after their environment's first [`FIRST_INVOCATIONS`] (`seq` above
    /// it).
    pub benign_after_first: u64,
    /// Of those, flagged.
    pub flagged_after_first: u64,
    /// `flagged_after_first / benign_after_first`.
    pub flagged_after_first_rate: f64,
    /// Findings of high or critical severity, made on a record of the environment's first
    /// [`FIRST_INVOCATIONS`], without a hard indicator ([`is_hard`]); any label (detector
    /// mode only).
    pub high_without_hard_first: u64,
    /// Of those, on benign rows.
    pub high_without_hard_first_benign: u64,
}

/// The attack classes together, and the functions together.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Overall {
    /// Attack rows.
    pub attacks: u64,
    /// Of those, flagged.
    pub detected: u64,
    /// `detected / attacks`.
    pub recall: f64,
    /// Of the detected, flagged as their own class.
    pub correct: u64,
    /// `correct / detected`.
    pub class_accuracy: f64,
    /// Of the detected, explained first by a feature their class moves.
    pub explained_first: u64,
    /// `explained_first / detected`.
    pub explained_first_share: f64,
    /// Benign rows after their environment's first [`FIRST_INVOCATIONS`].
    pub benign_after_first: u64,
    /// Of those, flagged.
    pub flagged_after_first: u64,
    /// `flagged_after_first / benign_after_first`.
    pub flagged_after_first_rate: f64,
    /// High or critical findings without a hard indicator in the first invocations.
    pub high_without_hard_first: u64,
    /// Of those, on benign rows.
    pub high_without_hard_first_benign: u64,
}

/// The evaluation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// Which setting produced it: `leave-one-function-out`, `no profile` or `with profiles`.
    pub evaluation: String,
    /// SHA-256 of the model file (leave-one-function-out: see `folds`).
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
    /// The attack classes together, the functions together.
    pub overall: Overall,
    /// Figures per function (every function with a labelled row).
    pub functions: Vec<FunctionFigures>,
    /// The bars of the issue, met or not.
    pub bars: Vec<bars::Bar>,
    /// Leave-one-function-out: one entry per fold.
    pub folds: Vec<lofo::FoldFigures>,
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
    /// Detector mode: the finding made on this row's own record (none for a row flagged
    /// only because a later finding named it).
    pub(super) finding: Option<Made>,
}

/// What a finding said, as far as the evaluation needs it.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Made {
    pub(super) class: Class,
    pub(super) severity: Severity,
    pub(super) indicators: Vec<Indicator>,
}

impl Made {
    /// High or critical, without a hard indicator.
    fn high_without_hard(&self) -> bool {
        self.severity >= Severity::High && !self.indicators.iter().any(|i| i.is_hard())
    }
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
            finding: None,
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
                finding: None,
            });
            continue;
        };
        let label = f.class.as_str().to_string();
        let top_feature = f.explanation.first().map(|e| e.feature.clone());
        // Earlier invocations a finding names (a probing burst's held errors, a beacon's
        // first contacts) are reported by it when they raised nothing of their own.
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
            finding: Some(Made {
                class: f.class,
                severity: f.severity,
                indicators: f.indicators,
            }),
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
    /// Detector mode: severity of the finding made on this row's record.
    pub severity: Option<Severity>,
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
        severity: p.finding.as_ref().map(|f| f.severity),
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
    let (predictions, latencies) = predict(model, rows, mode, profiles);
    let detector = mode == Mode::Detector;
    let setting = if detector && !profiles.is_empty() {
        Setting::WithProfiles
    } else {
        Setting::NoProfile
    };
    let trained = &model.header().training.functions;
    let held_out = |f: &str| !trained.iter().any(|t| t == f);
    let profiled = |f: &str| detector && profiles.contains_key(f);
    let context = Context {
        setting,
        model_sha256: model.sha256().to_string(),
        trained_seeds: model.header().training.corpus_seeds.clone(),
        held_out: &held_out,
        profiled: &profiled,
        folds: Vec::new(),
    };
    assemble(rows, &predictions, latencies, mode, context)
}

/// Each row's prediction, and the model's scoring time per row (µs, unsorted).
pub(super) fn predict(
    model: &ShippedModel,
    rows: &[Row],
    mode: Mode,
    profiles: &Profiles,
) -> (Vec<Prediction>, Vec<f64>) {
    let (model_only, latencies) = model_predictions(model, rows, mode.anomaly_threshold());
    let predictions = match mode {
        Mode::Model { .. } => model_only,
        Mode::Detector => detector_predictions(model, rows, profiles),
    };
    (predictions, latencies)
}

impl Mode {
    /// Model mode's novelty threshold (detector mode: the model's own half-point).
    fn anomaly_threshold(self) -> f32 {
        match self {
            Mode::Model { anomaly_threshold } => anomaly_threshold,
            Mode::Detector => 0.5,
        }
    }
}

/// What the report says about the model and profiles behind the predictions.
pub(super) struct Context<'a> {
    pub(super) setting: Setting,
    pub(super) model_sha256: String,
    /// Corpus seeds the model(s) were trained on.
    pub(super) trained_seeds: Vec<u64>,
    /// The model that scored this function never saw it.
    pub(super) held_out: &'a dyn Fn(&str) -> bool,
    /// The function's detectors started from its profile.
    pub(super) profiled: &'a dyn Fn(&str) -> bool,
    pub(super) folds: Vec<lofo::FoldFigures>,
}

/// The report over `rows` and their `predictions` (same order).
pub(super) fn assemble(
    rows: &[Row],
    predictions: &[Prediction],
    mut latencies: Vec<f64>,
    mode: Mode,
    context: Context<'_>,
) -> (Report, Vec<RowResult>) {
    let labelled: Vec<(&Row, &str)> = rows
        .iter()
        .zip(predictions)
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
    explained::fill(&mut classes, rows, predictions);
    let benign = classes.first().map_or(0, |c| c.support);
    let false_positives = classes.first().map_or(0, |c| c.detected);
    let seeds = seeds(rows);
    latencies.sort_by(f64::total_cmp);
    let per_row = rows
        .iter()
        .zip(predictions)
        .map(|(r, p)| row_result(r, p))
        .collect();
    let functions = function_figures(rows, predictions, &context);
    let overall = overall(&classes, &functions);
    let bars = bars::judge(context.setting, mode, &classes, &functions);
    let report = Report {
        evaluation: context.setting.as_str().to_string(),
        model_sha256: context.model_sha256,
        rows: labelled.len() as u64,
        overlapping_seeds: seeds
            .iter()
            .filter(|s| context.trained_seeds.contains(s))
            .copied()
            .collect(),
        seeds,
        mode: match mode {
            Mode::Detector => "detector".into(),
            Mode::Model { .. } => "model".into(),
        },
        anomaly_threshold: mode.anomaly_threshold(),
        classes,
        benign,
        false_positives,
        false_positive_rate: ratio(false_positives, benign),
        overall,
        functions,
        bars,
        folds: context.folds,
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
                class_accuracy: ratio(correct, detected),
                predicted,
                precision: if predicted == 0 {
                    1.0
                } else {
                    ratio(correct, predicted)
                },
                explained_first: 0,
                explained_first_share: 0.0,
                top_features: Vec::new(),
            }
        })
        .collect()
}

fn function_figures(
    rows: &[Row],
    predictions: &[Prediction],
    context: &Context<'_>,
) -> Vec<FunctionFigures> {
    let mut by_function: BTreeMap<&str, FunctionFigures> = BTreeMap::new();
    for (row, p) in rows.iter().zip(predictions) {
        let Some(label) = row.label.as_deref() else {
            continue;
        };
        let f = by_function
            .entry(row.function.as_str())
            .or_insert_with(|| FunctionFigures {
                function: row.function.clone(),
                held_out: (context.held_out)(&row.function),
                profiled: (context.profiled)(&row.function),
                benign: 0,
                false_positives: 0,
                benign_after_first: 0,
                flagged_after_first: 0,
                flagged_after_first_rate: 0.0,
                high_without_hard_first: 0,
                high_without_hard_first_benign: 0,
            });
        let benign = label == BENIGN;
        let flagged = p.label != BENIGN;
        let first = row.seq <= FIRST_INVOCATIONS;
        if benign {
            f.benign += 1;
            f.false_positives += u64::from(flagged);
            if !first {
                f.benign_after_first += 1;
                f.flagged_after_first += u64::from(flagged);
            }
        }
        if first && p.finding.as_ref().is_some_and(Made::high_without_hard) {
            f.high_without_hard_first += 1;
            f.high_without_hard_first_benign += u64::from(benign);
        }
    }
    by_function
        .into_values()
        .map(|mut f| {
            f.flagged_after_first_rate = ratio(f.flagged_after_first, f.benign_after_first);
            f
        })
        .collect()
}

fn overall(classes: &[ClassFigures], functions: &[FunctionFigures]) -> Overall {
    let mut o = Overall::default();
    for c in classes.iter().filter(|c| c.class != BENIGN) {
        o.attacks += c.support;
        o.detected += c.detected;
        o.correct += c.correct;
        o.explained_first += c.explained_first;
    }
    for f in functions {
        o.benign_after_first += f.benign_after_first;
        o.flagged_after_first += f.flagged_after_first;
        o.high_without_hard_first += f.high_without_hard_first;
        o.high_without_hard_first_benign += f.high_without_hard_first_benign;
    }
    o.recall = ratio(o.detected, o.attacks);
    o.class_accuracy = ratio(o.correct, o.detected);
    o.explained_first_share = ratio(o.explained_first, o.detected);
    o.flagged_after_first_rate = ratio(o.flagged_after_first, o.benign_after_first);
    o
}

fn seeds(rows: &[Row]) -> Vec<u64> {
    let mut s: Vec<u64> = rows.iter().filter_map(|r| r.seed).collect();
    s.sort_unstable();
    s.dedup();
    s
}

pub(super) fn ratio(a: u64, b: u64) -> f64 {
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
