//! LogME (You et al., "LogME: Practical Assessment of Pre-trained Models for Transfer Learning",
//! ICML 2021): the log marginal evidence of a Bayesian linear model from features to each
//! one-hot label column, maximised over its prior and noise precisions (α, β) by the paper's
//! fixed-point iteration on the eigen-decomposition of FᵀF, averaged over classes and divided by
//! the number of images. Higher is better. Written to match the authors' `LogME._fit_icml` line
//! for line; `tests/fixtures/logme/` holds values their algorithm computed in numpy.

use super::eigen::SymmetricEigen;
use super::features::Features;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LogMe {
    /// Mean over classes of the per-image log evidence.
    pub evidence: f64,
    /// Mean over classes of α/β: the ridge penalty the evidence prefers.
    pub ridge: f64,
}

pub fn logme(features: &Features, labels: &[usize], classes: usize) -> LogMe {
    let eigen = SymmetricEigen::new(&features.gram(), features.width);
    logme_with(features, labels, classes, &eigen)
}

/// LogME over `features` whose FᵀF decomposition is `eigen`.
pub fn logme_with(features: &Features, labels: &[usize], classes: usize, eigen: &SymmetricEigen) -> LogMe {
    const EPSILON: f64 = 1e-5;
    let (n, d) = (features.rows as f64, features.width as f64);
    // numpy's SVD of the symmetric FᵀF gives |eigenvalues|: the same for a PSD matrix, and a
    // rounding error below zero becomes positive, as there.
    let s: Vec<f64> = eigen.values.iter().map(|value| value.abs()).collect();
    let mut evidences = Vec::with_capacity(classes);
    let mut ridges = Vec::with_capacity(classes);
    for class in 0..classes {
        let y: Vec<f64> = labels.iter().map(|label| if *label == class { 1.0 } else { 0.0 }).collect();
        let fty = features.transpose_times(&y);
        let tmp: Vec<f64> = (0..features.width).map(|k| dot(eigen.vector(k), &fty)).collect();
        let (mut alpha, mut beta, mut lambda) = (1.0f64, 1.0f64, 1.0f64);
        let (mut alpha_de, mut beta_de) = (0.0, 0.0);
        for _ in 0..11 {
            let gamma: f64 = s.iter().map(|value| value / (value + lambda)).sum();
            let mut m = vec![0.0; features.width];
            for (k, value) in s.iter().enumerate() {
                let weight = tmp[k] * beta / (alpha + beta * value);
                for (slot, component) in m.iter_mut().zip(eigen.vector(k)) {
                    *slot += weight * component;
                }
            }
            alpha_de = m.iter().map(|value| value * value).sum();
            alpha = gamma / (alpha_de + EPSILON);
            beta_de = features.times(&m).iter().zip(&y).map(|(fitted, truth)| (truth - fitted).powi(2)).sum();
            beta = (n - gamma) / (beta_de + EPSILON);
            let new_lambda = alpha / beta;
            if ((new_lambda - lambda) / lambda).abs() < 0.01 {
                break;
            }
            lambda = new_lambda;
        }
        let evidence = d / 2.0 * alpha.ln() + n / 2.0 * beta.ln()
            - 0.5 * s.iter().map(|value| (alpha + beta * value).ln()).sum::<f64>()
            - beta / 2.0 * (beta_de + EPSILON)
            - alpha / 2.0 * (alpha_de + EPSILON)
            - n / 2.0 * (2.0 * std::f64::consts::PI).ln();
        evidences.push(evidence / n);
        ridges.push(alpha / beta);
    }
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len().max(1) as f64;
    LogMe { evidence: mean(&evidences), ridge: mean(&ridges) }
}

pub(super) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
