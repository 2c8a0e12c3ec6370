//! Fits the novelty part ([`Novelty`]) on benign rows with smartcore's PCA.

use smartcore::decomposition::pca::{PCAParameters, PCA};
use smartcore::linalg::basic::arrays::Array;
use smartcore::linalg::basic::matrix::DenseMatrix;

use super::{need_rows, squashed, TrainError, TrainOptions};
use warden_core::model::novelty::Novelty;
use warden_core::model::INPUTS;

/// Standardises, fits the axes, keeps those carrying `variance_kept` of the variance and
/// calibrates the residual to `quantile_level` of the same rows.
pub(super) fn fit(benign: &[[f32; INPUTS]], opts: &TrainOptions) -> Result<Novelty, TrainError> {
    need_rows(benign.len(), 2, "benign rows for the novelty part")?;
    let squashed: Vec<[f64; INPUTS]> = benign.iter().map(squashed).collect();
    let n = squashed.len() as f64;
    let mut mean = [0f64; INPUTS];
    for row in &squashed {
        for (m, v) in mean.iter_mut().zip(row) {
            *m += v / n;
        }
    }
    let mut var = [0f64; INPUTS];
    for row in &squashed {
        for ((s, v), m) in var.iter_mut().zip(row).zip(&mean) {
            *s += (v - m).powi(2) / n;
        }
    }
    let scale: Vec<f32> = var
        .iter()
        .map(|v| (v.sqrt() as f32).max(opts.min_scale))
        .collect();
    let mut novelty = Novelty {
        mean: mean.iter().map(|m| *m as f32).collect(),
        scale,
        components: Vec::new(),
        quantile: 1.0,
    };
    let standard: Vec<Vec<f64>> = benign
        .iter()
        .map(|row| {
            (0..INPUTS)
                .map(|i| f64::from(novelty.standardise(i, row[i])))
                .collect()
        })
        .collect();
    novelty.components = axes(&standard, opts.variance_kept)?;
    let mut parts = [0f32; INPUTS];
    let mut residuals: Vec<f32> = benign
        .iter()
        .map(|row| novelty.residual(row, &mut parts))
        .collect();
    residuals.sort_by(f32::total_cmp);
    let at = ((opts.quantile_level * residuals.len() as f64).ceil() as usize)
        .clamp(1, residuals.len())
        - 1;
    // A floor keeps a perfectly explained training set from making every residual "far".
    novelty.quantile = residuals[at].max(1.0) * opts.novelty_margin.max(1.0);
    Ok(novelty)
}

/// Principal axes of standardised rows, strongest first, as many as carry `kept` of the
/// variance; flattened row by row.
fn axes(standard: &[Vec<f64>], kept: f64) -> Result<Vec<f32>, TrainError> {
    let fit_err = |e: smartcore::error::Failed| TrainError::Fit(format!("PCA: {e}"));
    let matrix = DenseMatrix::from_2d_vec(&standard.to_vec()).map_err(fit_err)?;
    let pca: PCA<f64, DenseMatrix<f64>> =
        PCA::fit(&matrix, PCAParameters::default().with_n_components(INPUTS)).map_err(fit_err)?;
    let projected = pca.transform(&matrix).map_err(fit_err)?;
    let comps = pca.components();
    let mut by_variance: Vec<(usize, f64)> = (0..INPUTS)
        .map(|j| {
            let col: Vec<f64> = (0..standard.len())
                .map(|r| *projected.get((r, j)))
                .collect();
            let m = col.iter().sum::<f64>() / col.len() as f64;
            (j, col.iter().map(|v| (v - m).powi(2)).sum::<f64>())
        })
        .collect();
    by_variance.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let total: f64 = by_variance
        .iter()
        .map(|v| v.1)
        .sum::<f64>()
        .max(f64::MIN_POSITIVE);
    let mut out = Vec::new();
    let mut acc = 0.0;
    for (j, v) in by_variance {
        if acc / total >= kept {
            break;
        }
        acc += v;
        out.extend((0..INPUTS).map(|i| *comps.get((i, j)) as f32));
    }
    Ok(out)
}
