//! `warden train`: labelled rows → [`ShippedModel`].
//!
//! 1. Rows are replayed through per-environment baselines ([`dataset::replay`]); attack rows
//!    are not learned, as the detector skips what it alerted on.
//! 2. smartcore fits a random forest on `[z, raw]` with benign and the attack classes
//!    present; attack rows are repeated so every attack class weighs about as much as
//!    `1 / classes` of the benign rows (the corpus has far more benign invocations).
//! 3. The forest is flattened ([`Forest`]); each node gets the attack share of the original
//!    training rows reaching it, for explanations.
//! 4. smartcore PCA on the benign rows gives the novelty axes; the residual is calibrated to
//!    a benign quantile.
//!
//! Deterministic for a seed: smartcore's forest is seeded, everything else is ordered.

mod pca;

use serde::Deserialize;
use smartcore::ensemble::random_forest_classifier::{
    RandomForestClassifier, RandomForestClassifierParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

use crate::dataset::{self, Row};
use warden_core::features::{FEATURE_NAMES, N, VECTOR_VERSION};
use warden_core::model::file::{ModelHeader, TrainingInfo};
use warden_core::model::forest::{f32_floor, Forest, LEAF};
use warden_core::model::novelty::{squash, Novelty};
use warden_core::model::{inputs, ModelError, ShippedModel, BENIGN, INPUTS};
use warden_core::schema::Class;

/// Why training failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// Not enough labelled data.
    #[error("training data: {0}")]
    Data(String),
    /// smartcore refused to fit.
    #[error("fitting failed: {0}")]
    Fit(String),
    /// The result is not a valid model.
    #[error(transparent)]
    Model(#[from] ModelError),
}

/// Training settings.
#[derive(Debug, Clone)]
pub struct TrainOptions {
    /// Seed of the forest.
    pub seed: u64,
    /// Trees.
    pub trees: u16,
    /// Depth limit.
    pub max_depth: u16,
    /// Inputs tried at each split. smartcore gives up on a node when every input drawn is
    /// constant there, and many inputs are mostly constant (zero counts, z during
    /// warm-up), so this is well above the usual square root.
    pub mtry: usize,
    /// Share of benign rows' variance the novelty axes keep.
    pub variance_kept: f64,
    /// Benign quantile the novelty is calibrated to.
    pub quantile_level: f64,
    /// The novelty score is 0.5 at this multiple of that quantile's residual.
    pub novelty_margin: f32,
    /// Benign vote share below which the forest calls an attack.
    pub benign_threshold: f32,
    /// Add a copy of every attack row with the z-scores of a baseline still warming up.
    pub warmup_copies: bool,
    /// Attack rows are repeated until each attack class weighs about `balance / classes`
    /// of the benign rows (at most 50 repeats).
    pub balance: f64,
    /// Smallest spread of a standardised novelty input (squashed units).
    pub min_scale: f32,
    /// Free-text description of the data, kept in the header.
    pub data: String,
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            seed: 1,
            trees: 64,
            max_depth: 12,
            mtry: INPUTS / 3,
            variance_kept: 0.95,
            quantile_level: 0.999,
            novelty_margin: 4.0,
            benign_threshold: 0.3,
            balance: 1.0,
            warmup_copies: true,
            min_scale: 0.25,
            data: String::new(),
        }
    }
}

/// Trains the model on the labelled rows (unlabelled rows are ignored).
pub fn train(rows: &[Row], opts: &TrainOptions) -> Result<ShippedModel, TrainError> {
    let rows: Vec<Row> = rows.iter().filter(|r| r.label.is_some()).cloned().collect();
    let zs = dataset::replay(&rows, |i, _| rows[i].is_attack());
    let classes = class_list(&rows)?;
    let mut x: Vec<[f32; INPUTS]> = Vec::with_capacity(rows.len());
    let mut y: Vec<u32> = Vec::with_capacity(rows.len());
    for (r, z) in rows.iter().zip(&zs) {
        let class = class_index(&classes, r.label.as_deref().unwrap_or(BENIGN));
        x.push(inputs(&r.raw, z));
        y.push(class);
        // An attack may come before the baseline has warmed up (all z = 0): the forest
        // must also know it from the raw values alone.
        if opts.warmup_copies && class != 0 && z.iter().any(|v| *v != 0.0) {
            x.push(inputs(&r.raw, &[0.0; N]));
            y.push(class);
        }
    }
    let forest = fit_forest(&x, &y, classes.len(), opts)?;
    let benign: Vec<[f32; INPUTS]> = x
        .iter()
        .zip(&y)
        .filter(|(_, y)| **y == 0)
        .map(|(x, _)| *x)
        .collect();
    let novelty = fit_novelty(&benign, opts)?;
    let header = ModelHeader {
        vector_version: VECTOR_VERSION,
        feature_names: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
        feature_transforms: warden_core::model::file::transforms(),
        classes: classes.clone(),
        benign_threshold: opts.benign_threshold,
        training: info(&rows, &classes, &novelty, opts),
    };
    Ok(ShippedModel::new(header, forest, novelty)?)
}

/// `benign`, then the attack classes present, in [`Class::ALL`] order.
fn class_list(rows: &[Row]) -> Result<Vec<String>, TrainError> {
    let present = |name: &str| rows.iter().any(|r| r.label.as_deref() == Some(name));
    if !present(BENIGN) {
        return Err(TrainError::Data("no benign rows".into()));
    }
    let mut classes = vec![BENIGN.to_string()];
    classes.extend(
        Class::ALL
            .iter()
            .map(|c| c.as_str())
            .filter(|c| present(c))
            .map(String::from),
    );
    if classes.len() < 2 {
        return Err(TrainError::Data("no attack rows".into()));
    }
    Ok(classes)
}

fn class_index(classes: &[String], name: &str) -> u32 {
    classes.iter().position(|c| c == name).unwrap_or(0) as u32
}

/// How often each row of class `c` is repeated for fitting.
fn repeats(y: &[u32], n_classes: usize, balance: f64) -> Vec<usize> {
    let mut counts = vec![0usize; n_classes];
    for &c in y {
        counts[c as usize] += 1;
    }
    let target = (balance * counts[0] as f64 / n_classes.max(1) as f64) as usize;
    counts
        .iter()
        .enumerate()
        .map(|(c, &n)| {
            if c == 0 || n == 0 {
                1
            } else {
                (target / n).clamp(1, 50)
            }
        })
        .collect()
}

fn fit_forest(
    x: &[[f32; INPUTS]],
    y: &[u32],
    n_classes: usize,
    opts: &TrainOptions,
) -> Result<Forest, TrainError> {
    let reps = repeats(y, n_classes, opts.balance);
    let mut data: Vec<Vec<f64>> = Vec::new();
    let mut labels: Vec<u32> = Vec::new();
    for (row, &c) in x.iter().zip(y) {
        for _ in 0..reps[c as usize] {
            data.push(row.iter().map(|v| f64::from(*v)).collect());
            labels.push(c);
        }
    }
    let matrix = DenseMatrix::from_2d_vec(&data).map_err(|e| TrainError::Fit(e.to_string()))?;
    let params = RandomForestClassifierParameters::default()
        .with_n_trees(opts.trees)
        .with_max_depth(opts.max_depth)
        .with_min_samples_leaf(1)
        .with_min_samples_split(2)
        .with_m(opts.mtry.clamp(1, INPUTS))
        .with_seed(opts.seed);
    let fitted: RandomForestClassifier<f64, u32, DenseMatrix<f64>, Vec<u32>> =
        RandomForestClassifier::fit(&matrix, &labels, params)
            .map_err(|e| TrainError::Fit(e.to_string()))?;
    let mut forest = flatten(&fitted, n_classes)?;
    set_attack_shares(&mut forest, x, y);
    Ok(forest)
}

// smartcore keeps its trees private; its serde form is the supported way to read them.
#[derive(Deserialize)]
struct SmForest {
    trees: Option<Vec<SmTree>>,
    classes: Option<Vec<u32>>,
}

#[derive(Deserialize)]
struct SmTree {
    nodes: Vec<SmNode>,
    classes: Vec<u32>,
}

#[derive(Deserialize)]
struct SmNode {
    output: usize,
    n_node_samples: usize,
    split_feature: usize,
    split_value: Option<f64>,
    true_child: Option<usize>,
    false_child: Option<usize>,
    impurity: Option<f64>,
}

fn flatten<T: serde::Serialize>(fitted: &T, n_classes: usize) -> Result<Forest, TrainError> {
    let value = serde_json::to_value(fitted).map_err(|e| TrainError::Fit(e.to_string()))?;
    let sm: SmForest = serde_json::from_value(value).map_err(|e| TrainError::Fit(e.to_string()))?;
    let (trees, _) = sm
        .trees
        .zip(sm.classes)
        .ok_or_else(|| TrainError::Fit("forest is not fitted".into()))?;
    let mut f = Forest {
        n_inputs: INPUTS,
        n_classes,
        roots: Vec::new(),
        feature: Vec::new(),
        threshold: Vec::new(),
        left: Vec::new(),
        right: Vec::new(),
        attack_share: Vec::new(),
        importance: vec![0.0; INPUTS],
    };
    let mut importance = vec![0f64; INPUTS];
    for tree in &trees {
        let base = f.feature.len();
        f.roots.push(base as u32);
        for node in &tree.nodes {
            match (node.true_child, node.false_child, node.split_value) {
                (Some(t), Some(fc), Some(v)) => {
                    f.feature.push(node.split_feature as u16);
                    f.threshold.push(f32_floor(v));
                    f.left.push((base + t) as u32);
                    f.right.push((base + fc) as u32);
                    let imp = |n: &SmNode| n.n_node_samples as f64 * n.impurity.unwrap_or(0.0);
                    let gain = imp(node) - imp(&tree.nodes[t]) - imp(&tree.nodes[fc]);
                    importance[node.split_feature] += gain / tree.nodes[0].n_node_samples as f64;
                }
                _ => {
                    // Labels are the model's class indices.
                    let label = tree.classes.get(node.output).copied().unwrap_or(0);
                    f.feature.push(LEAF);
                    f.threshold.push(0.0);
                    f.left.push(label);
                    f.right.push(0);
                }
            }
            f.attack_share.push(0.0);
        }
    }
    let total: f64 = importance.iter().sum();
    f.importance = importance
        .iter()
        .map(|v| (v / total.max(f64::MIN_POSITIVE)) as f32)
        .collect();
    Ok(f)
}

/// Sets each node's attack share from the (unrepeated) training rows that reach it; nodes
/// no row reaches inherit their parent's.
fn set_attack_shares(f: &mut Forest, x: &[[f32; INPUTS]], y: &[u32]) {
    let mut reached = vec![(0u32, 0u32); f.len()];
    for (row, &c) in x.iter().zip(y) {
        for &root in &f.roots {
            let mut node = root as usize;
            loop {
                reached[node].0 += 1;
                reached[node].1 += u32::from(c != 0);
                if f.feature[node] == LEAF {
                    break;
                }
                node = if row[f.feature[node] as usize] <= f.threshold[node] {
                    f.left[node]
                } else {
                    f.right[node]
                } as usize;
            }
        }
    }
    // Children come after their parent, so one forward pass propagates inherited shares.
    for i in 0..f.len() {
        let (n, a) = reached[i];
        if n > 0 {
            f.attack_share[i] = a as f32 / n as f32;
        }
        if f.feature[i] != LEAF {
            for child in [f.left[i] as usize, f.right[i] as usize] {
                if reached[child].0 == 0 {
                    f.attack_share[child] = f.attack_share[i];
                }
            }
        }
    }
}

fn fit_novelty(benign: &[[f32; INPUTS]], opts: &TrainOptions) -> Result<Novelty, TrainError> {
    pca::fit(benign, opts)
}

fn info(rows: &[Row], classes: &[String], novelty: &Novelty, opts: &TrainOptions) -> TrainingInfo {
    let mut corpus_seeds: Vec<u64> = rows.iter().filter_map(|r| r.seed).collect();
    corpus_seeds.sort_unstable();
    corpus_seeds.dedup();
    let mut functions: Vec<String> = rows.iter().map(|r| r.function.clone()).collect();
    functions.sort();
    functions.dedup();
    let rows_per_class = classes
        .iter()
        .map(|c| {
            let n = rows
                .iter()
                .filter(|r| r.label.as_deref() == Some(c))
                .count();
            (c.clone(), n as u64)
        })
        .collect();
    TrainingInfo {
        seed: opts.seed,
        data: opts.data.clone(),
        corpus_seeds,
        functions,
        rows: rows_per_class,
        trees: u32::from(opts.trees),
        max_depth: u32::from(opts.max_depth),
        components: (novelty.components.len() / novelty.dim().max(1)) as u32,
        quantile_level: opts.quantile_level as f32,
        novelty_margin: opts.novelty_margin,
    }
}

/// Squashed value used by the novelty part (re-exported for the PCA fit).
pub(crate) fn squashed(x: &[f32; INPUTS]) -> [f64; INPUTS] {
    let mut out = [0f64; INPUTS];
    for (o, v) in out.iter_mut().zip(x) {
        *o = f64::from(squash(*v));
    }
    out
}

/// Fails on fewer rows than `need`.
pub(crate) fn need_rows(n: usize, need: usize, what: &str) -> Result<(), TrainError> {
    if n < need {
        return Err(TrainError::Data(format!("{what}: {n} rows, need {need}")));
    }
    Ok(())
}
