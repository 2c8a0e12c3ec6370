//! Leave-one-function-out: figures on functions the model and profiles never saw.
//!
//! For each function F of the test rows, a model is trained exactly as `warden train` trains
//! the shipped one ([`train`], the options given) on the training rows of every other
//! function, and profiles are learned from the same rows (as `warden train --profile-out`);
//! F's test rows are then scored with that model and those profiles, so F has no profile and
//! its model never saw it. The predictions of all folds are pooled into one [`Report`].

use std::collections::{BTreeMap, BTreeSet};
use std::time::Instant;

use serde::Serialize;

use super::{assemble, predict, Context, Mode, Prediction, Report, RowResult, Setting};
use crate::dataset::{self, Row};
use crate::train::{train, TrainError, TrainOptions};
use warden_core::model::ShippedModel;

/// One fold.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FoldFigures {
    /// The held-out function.
    pub function: String,
    /// Training rows given to the fold (every function's but this one's).
    pub train_rows: u64,
    /// Of those, labelled: what the model was fitted on.
    pub train_labelled: u64,
    /// Functions the fold's model was trained on (from its header).
    pub train_functions: Vec<String>,
    /// Functions the fold's profiles cover.
    pub profiles: Vec<String>,
    /// The held-out function's test rows scored (labelled or not).
    pub test_rows: u64,
    /// SHA-256 of the fold's model.
    pub model_sha256: String,
    /// Training and scoring time, s.
    pub seconds: f64,
}

/// Why the evaluation failed.
#[derive(Debug, thiserror::Error)]
pub enum LofoError {
    /// A fold could not be trained (e.g. the held-out function had the only rows of a
    /// class, or the only benign rows).
    #[error("fold without {function}: {source}")]
    Train {
        /// The held-out function.
        function: String,
        /// Why.
        source: TrainError,
    },
    /// No test rows.
    #[error("no test rows to evaluate")]
    Empty,
}

/// The training rows of a fold: every row whose function is not `held_out`.
pub fn fold_rows(train_rows: &[Row], held_out: &str) -> Vec<Row> {
    train_rows
        .iter()
        .filter(|r| r.function != held_out)
        .cloned()
        .collect()
}

/// Scores every function of `test_rows` with a model and profiles trained on the
/// `train_rows` of the other functions (`opts`: as `warden train`); one report over all folds.
/// `progress(fold, folds, figures)` is called after each fold.
pub fn leave_one_function_out(
    train_rows: &[Row],
    test_rows: &[Row],
    opts: &TrainOptions,
    mode: Mode,
    mut progress: impl FnMut(usize, usize, &FoldFigures),
) -> Result<(Report, Vec<RowResult>), LofoError> {
    let functions: BTreeSet<&str> = test_rows.iter().map(|r| r.function.as_str()).collect();
    if functions.is_empty() {
        return Err(LofoError::Empty);
    }
    let mut predictions = vec![Prediction::default(); test_rows.len()];
    let mut latencies = Vec::with_capacity(test_rows.len());
    let mut folds: Vec<FoldFigures> = Vec::with_capacity(functions.len());
    let mut trained_seeds: Vec<u64> = Vec::new();
    for (k, &function) in functions.iter().enumerate() {
        let start = Instant::now();
        let fold = fold_rows(train_rows, function);
        // The point of the evaluation: nothing of the held-out function reaches its fold.
        assert!(
            fold.iter().all(|r| r.function != function),
            "the fold without {function} trains on its rows"
        );
        let fold_opts = TrainOptions {
            data: format!("{} (leave-one-function-out: without {function})", opts.data),
            ..opts.clone()
        };
        let fail = |source| LofoError::Train {
            function: function.to_string(),
            source,
        };
        let model = train(&fold, &fold_opts).map_err(fail)?;
        // Scored as the file `warden train` would write, loaded (and with its digest).
        let model = model
            .to_bytes()
            .and_then(|b| ShippedModel::from_bytes(&b))
            .map_err(|e| fail(e.into()))?;
        let profiles = dataset::profiles(&fold);
        let trained = &model.header().training;
        assert!(
            !trained.functions.iter().any(|f| f == function) && !profiles.contains_key(function),
            "the fold without {function} learned it"
        );
        let at: Vec<usize> = (0..test_rows.len())
            .filter(|&i| test_rows[i].function == function)
            .collect();
        let rows: Vec<Row> = at.iter().map(|&i| test_rows[i].clone()).collect();
        let (scored, times) = predict(&model, &rows, mode, &profiles);
        for (&i, p) in at.iter().zip(scored) {
            predictions[i] = p;
        }
        latencies.extend(times);
        trained_seeds.extend(&trained.corpus_seeds);
        folds.push(FoldFigures {
            function: function.to_string(),
            train_rows: fold.len() as u64,
            train_labelled: fold.iter().filter(|r| r.label.is_some()).count() as u64,
            train_functions: trained.functions.clone(),
            profiles: profiles.keys().cloned().collect(),
            test_rows: rows.len() as u64,
            model_sha256: model.sha256().to_string(),
            seconds: start.elapsed().as_secs_f64(),
        });
        if let Some(figures) = folds.last() {
            progress(k + 1, functions.len(), figures);
        }
    }
    trained_seeds.sort_unstable();
    trained_seeds.dedup();
    // Held out and profiled as the folds' own models and profiles say.
    let of: BTreeMap<&str, &FoldFigures> = folds.iter().map(|f| (f.function.as_str(), f)).collect();
    let held_out = |f: &str| {
        of.get(f)
            .is_some_and(|fold| !fold.train_functions.iter().any(|t| t == f))
    };
    let profiled = |f: &str| {
        mode == Mode::Detector
            && of
                .get(f)
                .is_some_and(|fold| fold.profiles.iter().any(|p| p == f))
    };
    let context = Context {
        setting: Setting::LeaveOneFunctionOut,
        model_sha256: format!("one model per fold ({} folds)", folds.len()),
        trained_seeds,
        held_out: &held_out,
        profiled: &profiled,
        folds: folds.clone(),
    };
    Ok(assemble(test_rows, &predictions, latencies, mode, context))
}
