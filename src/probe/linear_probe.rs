//! The fast linear probe: closed-form ridge regression from centred features to one-hot labels,
//! its penalty the one LogME's evidence prefers on the fitting images, scored by accuracy on
//! held-out images.

use super::eigen::SymmetricEigen;
use super::features::Features;
use super::logme::{dot, logme_with};

/// A fitted linear read-out: `argmax((x − mean) W + bias)`.
#[derive(Debug, Clone, PartialEq)]
pub struct LinearProbe {
    pub mean: Vec<f64>,
    /// `width × classes`, row-major.
    pub weights: Vec<f64>,
    pub bias: Vec<f64>,
    pub classes: usize,
}

impl LinearProbe {
    pub fn fit(features: &Features, labels: &[usize], classes: usize) -> LinearProbe {
        let width = features.width;
        let mean = features.mean();
        let centred = features.centred(&mean);
        let eigen = SymmetricEigen::new(&centred.gram(), width);
        let ridge = logme_with(&centred, labels, classes, &eigen).ridge.max(1e-8);
        let mut weights = vec![0.0; width * classes];
        let mut bias = vec![0.0; classes];
        for class in 0..classes {
            let y: Vec<f64> = labels.iter().map(|label| if *label == class { 1.0 } else { 0.0 }).collect();
            let prior = y.iter().sum::<f64>() / y.len().max(1) as f64;
            bias[class] = prior;
            let centred_y: Vec<f64> = y.iter().map(|value| value - prior).collect();
            let fty = centred.transpose_times(&centred_y);
            // W = V diag(1 / (s + λ)) Vᵀ Fᵀ y
            for k in 0..width {
                let vector = eigen.vector(k);
                let coefficient = dot(vector, &fty) / (eigen.values[k].max(0.0) + ridge);
                for (row, component) in vector.iter().enumerate() {
                    weights[row * classes + class] += coefficient * component;
                }
            }
        }
        LinearProbe { mean, weights, bias, classes }
    }

    pub fn predict(&self, row: &[f64]) -> usize {
        let mut scores = self.bias.clone();
        for (index, value) in row.iter().enumerate() {
            let centred = value - self.mean[index];
            for (class, score) in scores.iter_mut().enumerate() {
                *score += centred * self.weights[index * self.classes + class];
            }
        }
        scores.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).map_or(0, |(class, _)| class)
    }

    /// The share of `features` it labels as `labels` says (NaN for no images).
    pub fn accuracy(&self, features: &Features, labels: &[usize]) -> f64 {
        if features.rows == 0 {
            return f64::NAN;
        }
        let correct = (0..features.rows).filter(|row| self.predict(features.row(*row)) == labels[*row]).count();
        correct as f64 / features.rows as f64
    }
}
