//! The Fréchet distance between two Gaussians fitted to pooled features (the FID formula):
//! ‖μ₁ − μ₂‖² + tr(Σ₁ + Σ₂ − 2 (Σ₁^½ Σ₂ Σ₁^½)^½). It measures how far the target images sit from
//! the pretraining images in the backbone's own feature space.

use serde::{Deserialize, Serialize};

use super::eigen::SymmetricEigen;
use super::features::Features;

/// Mean and covariance (unbiased) of features: what a zoo entry stores of its training images.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureStats {
    pub images: usize,
    pub mean: Vec<f64>,
    /// `width × width`, row-major.
    pub covariance: Vec<f64>,
}

impl FeatureStats {
    pub fn of(features: &Features) -> FeatureStats {
        let mean = features.mean();
        let centred = features.centred(&mean);
        let scale = 1.0 / (features.rows.saturating_sub(1)).max(1) as f64;
        let covariance = centred.gram().into_iter().map(|value| value * scale).collect();
        FeatureStats { images: features.rows, mean, covariance }
    }

    pub fn width(&self) -> usize {
        self.mean.len()
    }

    /// The trace of the covariance: how far the features spread, summed over dimensions.
    pub fn total_variance(&self) -> f64 {
        (0..self.width()).map(|index| self.covariance[index * self.width() + index]).sum()
    }
}

/// `None` when the two were taken from features of different widths.
pub fn frechet_distance(a: &FeatureStats, b: &FeatureStats) -> Option<f64> {
    let n = a.width();
    if b.width() != n || a.covariance.len() != n * n || b.covariance.len() != n * n {
        return None;
    }
    let mean_term: f64 = a.mean.iter().zip(&b.mean).map(|(x, y)| (x - y).powi(2)).sum();
    let root_a = symmetric_root(&a.covariance, n);
    let product = multiply(&multiply(&root_a, &b.covariance, n), &root_a, n);
    let cross: f64 = SymmetricEigen::new(&symmetrised(&product, n), n).values.iter().map(|value| value.max(0.0).sqrt()).sum();
    Some((mean_term + a.total_variance() + b.total_variance() - 2.0 * cross).max(0.0))
}

fn symmetric_root(matrix: &[f64], n: usize) -> Vec<f64> {
    let eigen = SymmetricEigen::new(matrix, n);
    let mut root = vec![0.0; n * n];
    for k in 0..n {
        let scale = eigen.values[k].max(0.0).sqrt();
        let vector = eigen.vector(k);
        for row in 0..n {
            let left = scale * vector[row];
            for column in 0..n {
                root[row * n + column] += left * vector[column];
            }
        }
    }
    root
}

fn multiply(a: &[f64], b: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for row in 0..n {
        for k in 0..n {
            let left = a[row * n + k];
            if left == 0.0 {
                continue;
            }
            let (target, source) = (&mut out[row * n..(row + 1) * n], &b[k * n..(k + 1) * n]);
            for (slot, value) in target.iter_mut().zip(source) {
                *slot += left * value;
            }
        }
    }
    out
}

fn symmetrised(matrix: &[f64], n: usize) -> Vec<f64> {
    let mut out = matrix.to_vec();
    for row in 0..n {
        for column in 0..row {
            let mean = 0.5 * (matrix[row * n + column] + matrix[column * n + row]);
            out[row * n + column] = mean;
            out[column * n + row] = mean;
        }
    }
    out
}
