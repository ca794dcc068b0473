//! PARC (Bolya et al. 2021, "Scalable diverse model selection for accessible transfer
//! learning"): how alike the images look to the backbone and to the labels. The features are
//! reduced to 32 principal components (when wider) and standardised; the dissimilarity of two
//! images is 1 − the Pearson correlation of their feature rows, and of their one-hot labels
//! likewise; PARC is 100 × the Spearman correlation of the two dissimilarities over every pair of
//! images. Higher is better. Written as the authors' `get_parc_correlation` with scikit-learn's
//! `PCA` (the full SVD's sign rule: each component's largest entry positive) and
//! `StandardScaler`; `tests/fixtures/probe/make_reference.py` runs theirs, with one change there
//! and here: the label dissimilarities are exact. Theirs come from `np.corrcoef` of one-hot rows,
//! whose rounding (2e-16 where a same-class pair is 0) splits ties that Spearman's ranks should
//! share, and moves the score by about a point on small samples.

use super::eigen::SymmetricEigen;
use super::features::Features;

/// Principal components kept, as the authors' pipeline does.
pub const COMPONENTS: usize = 32;

/// PARC of `features` for `labels` in `0..classes`; NaN with fewer than 3 images.
pub fn parc(features: &Features, labels: &[usize], classes: usize) -> f64 {
    let n = features.rows;
    if n < 3 || features.width == 0 {
        return f64::NAN;
    }
    let reduced = standardised(&principal_components(features, COMPONENTS));
    // Per row: centred over its columns, and the norm of that, for the row correlations.
    let width = reduced.width;
    let rows: Vec<Vec<f64>> = (0..n)
        .map(|row| {
            let values = reduced.row(row);
            let mean = values.iter().sum::<f64>() / width as f64;
            values.iter().map(|value| value - mean).collect()
        })
        .collect();
    let norms: Vec<f64> = rows.iter().map(|row| row.iter().map(|value| value * value).sum::<f64>().sqrt()).collect();
    // One-hot rows correlate 1 within a class and −1/(C − 1) across: a dissimilarity of 0 or
    // 1 + 1/(C − 1); only its order matters to Spearman.
    let mut features_dissimilar = Vec::with_capacity(n * (n - 1) / 2);
    let mut labels_dissimilar = Vec::with_capacity(n * (n - 1) / 2);
    let across = 1.0 + 1.0 / (classes.max(2) - 1) as f64;
    for i in 1..n {
        for j in 0..i {
            let dot: f64 = rows[i].iter().zip(&rows[j]).map(|(a, b)| a * b).sum();
            features_dissimilar.push(1.0 - dot / (norms[i] * norms[j]));
            labels_dissimilar.push(if labels[i] == labels[j] { 0.0 } else { across });
        }
    }
    100.0 * spearman(&features_dissimilar, &labels_dissimilar)
}

/// The first `count` principal component scores of `features` (centred), or the features as
/// they are when no wider than `count`.
fn principal_components(features: &Features, count: usize) -> Features {
    let (n, d) = (features.rows, features.width);
    if d <= count {
        return features.clone();
    }
    let mean: Vec<f64> = (0..d).map(|k| (0..n).map(|row| features.row(row)[k]).sum::<f64>() / n as f64).collect();
    let centred = Features::new(n, d, (0..n).flat_map(|row| features.row(row).iter().zip(&mean).map(|(value, mean)| value - mean).collect::<Vec<_>>()).collect());
    let eigen = SymmetricEigen::new(&centred.gram(), d);
    // Eigenvalues ascend: the last `count` in reverse are the leading components.
    let axes: Vec<Vec<f64>> = (0..count)
        .map(|k| {
            let axis = eigen.vector(d - 1 - k);
            let largest = axis.iter().copied().fold(0.0f64, |best, value| if value.abs() > best.abs() { value } else { best });
            axis.iter().map(|value| if largest < 0.0 { -value } else { *value }).collect()
        })
        .collect();
    Features::new(n, count, (0..n).flat_map(|row| axes.iter().map(|axis| axis.iter().zip(centred.row(row)).map(|(a, b)| a * b).sum::<f64>()).collect::<Vec<_>>()).collect())
}

/// Each column centred and scaled to unit (population) deviation; a constant column is left
/// centred, as scikit-learn's `StandardScaler` does.
fn standardised(features: &Features) -> Features {
    let (n, d) = (features.rows, features.width);
    let mut out = features.values.clone();
    for k in 0..d {
        let mean = (0..n).map(|row| features.row(row)[k]).sum::<f64>() / n as f64;
        let deviation = ((0..n).map(|row| (features.row(row)[k] - mean).powi(2)).sum::<f64>() / n as f64).sqrt();
        let scale = if deviation == 0.0 { 1.0 } else { deviation };
        for row in 0..n {
            out[row * d + k] = (features.row(row)[k] - mean) / scale;
        }
    }
    Features::new(n, d, out)
}

/// Spearman's rank correlation: Pearson's on ranks, tied values sharing their mean rank.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = ra.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let (mut cov, mut va, mut vb) = (0.0, 0.0, 0.0);
    for (x, y) in ra.iter().zip(&rb) {
        cov += (x - ma) * (y - mb);
        va += (x - ma).powi(2);
        vb += (y - mb).powi(2);
    }
    cov / (va * vb).sqrt()
}

fn ranks(values: &[f64]) -> Vec<f64> {
    let mut order: Vec<usize> = (0..values.len()).collect();
    order.sort_by(|&i, &j| values[i].total_cmp(&values[j]));
    let mut ranks = vec![0.0; values.len()];
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && values[order[end]] == values[order[start]] {
            end += 1;
        }
        let shared = (start + end + 1) as f64 / 2.0;
        for &index in &order[start..end] {
            ranks[index] = shared;
        }
        start = end;
    }
    ranks
}
