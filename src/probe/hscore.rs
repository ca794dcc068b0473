//! H-score (Bao et al. 2019, "An information-theoretic approach to transferability in task
//! transfer learning"): `tr(Σ_f⁻¹ Σ_g)`, how much of the features' spread the class means carry,
//! Σ_f the features' covariance and Σ_g the covariance of each image's class mean. Higher is
//! better. Few-shot features are wider than the sample (512 features of 50 images), where Σ_f is
//! singular and the plain score is rounding noise; this is the shrinkage form of Ibrahim et al.
//! 2022 ("Newer is not always better: rethinking transferability metrics"): Σ_f shrunk toward a
//! multiple of the identity by the Ledoit–Wolf weight δ, and Σ_g scaled by 1 − δ. Covariances are
//! maximum-likelihood (divided by N), Ledoit–Wolf's δ as scikit-learn computes it;
//! `tests/fixtures/probe/make_reference.py` computes the same score with scikit-learn's `LedoitWolf`.

use super::eigen::SymmetricEigen;
use super::features::Features;

/// The shrinkage H-score of `features` for `labels` in `0..classes`.
pub fn hscore(features: &Features, labels: &[usize], classes: usize) -> f64 {
    let (n, d) = (features.rows, features.width);
    if n == 0 || d == 0 {
        return f64::NAN;
    }
    let centred = centred(features);
    let covariance: Vec<f64> = centred.gram().iter().map(|value| value / n as f64).collect();
    let shrinkage = ledoit_wolf_shrinkage(&centred, &covariance);
    let mu = (0..d).map(|k| covariance[k * d + k]).sum::<f64>() / d as f64;
    let mut shrunk: Vec<f64> = covariance.iter().map(|value| (1.0 - shrinkage) * value).collect();
    for k in 0..d {
        shrunk[k * d + k] += shrinkage * mu;
    }
    // Each image's class mean, centred (the class means of centred features are centred).
    let mut means = vec![vec![0.0; d]; classes];
    let mut counts = vec![0usize; classes];
    for (row, &label) in labels.iter().enumerate() {
        counts[label] += 1;
        for (slot, value) in means[label].iter_mut().zip(centred.row(row)) {
            *slot += value;
        }
    }
    for (mean, &count) in means.iter_mut().zip(&counts) {
        mean.iter_mut().for_each(|value| *value /= count.max(1) as f64);
    }
    let g = Features::new(n, d, labels.iter().flat_map(|&label| means[label].iter().copied()).collect());
    let between: Vec<f64> = g.gram().iter().map(|value| (1.0 - shrinkage) * value / n as f64).collect();
    // tr(S⁻¹ B) = Σ_k v_kᵀ B v_k / λ_k over S's eigenpairs; a zero λ (no spread, no shrinkage)
    // contributes nothing, as a pseudo-inverse would.
    let eigen = SymmetricEigen::new(&shrunk, d);
    let largest = eigen.values.iter().fold(0.0f64, |max, value| max.max(value.abs()));
    (0..d)
        .filter(|&k| eigen.values[k].abs() > 1e-15 * largest)
        .map(|k| {
            let v = eigen.vector(k);
            let bv: f64 = (0..d).map(|i| v[i] * (0..d).map(|j| between[i * d + j] * v[j]).sum::<f64>()).sum();
            bv / eigen.values[k]
        })
        .sum()
}

/// The features minus their column means.
fn centred(features: &Features) -> Features {
    let (n, d) = (features.rows, features.width);
    let mut mean = vec![0.0; d];
    for row in 0..n {
        for (slot, value) in mean.iter_mut().zip(features.row(row)) {
            *slot += value / n as f64;
        }
    }
    Features::new(n, d, (0..n).flat_map(|row| features.row(row).iter().zip(&mean).map(|(value, mean)| value - mean).collect::<Vec<_>>()).collect())
}

/// scikit-learn's `ledoit_wolf_shrinkage` for centred `x` [n, d] whose covariance (÷ n) is given.
fn ledoit_wolf_shrinkage(x: &Features, covariance: &[f64]) -> f64 {
    let (n, d) = (x.rows as f64, x.width);
    if d == 1 {
        return 0.0;
    }
    let squares = Features::new(x.rows, d, x.values.iter().map(|value| value * value).collect());
    let trace_terms: Vec<f64> = (0..d).map(|k| covariance[k * d + k]).collect();
    let mu = trace_terms.iter().sum::<f64>() / d as f64;
    // β̂ = Σ_ij (X²ᵀX²)_ij, δ̂ = Σ_ij ((XᵀX)_ij)² / n² = Σ_ij covariance_ij².
    let beta_sum: f64 = squares.gram().iter().sum();
    let delta_sum: f64 = covariance.iter().map(|value| value * value).sum();
    let beta = (beta_sum / n - delta_sum) / (d as f64 * n);
    let delta = (delta_sum - 2.0 * mu * trace_terms.iter().sum::<f64>() + d as f64 * mu * mu) / d as f64;
    let beta = beta.min(delta);
    if beta == 0.0 { 0.0 } else { beta / delta }
}
