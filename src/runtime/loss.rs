//! The training loss: cross-entropy with the recipe's label smoothing and class weights, built once
//! per run. burn's `CrossEntropyLoss` computes what PyTorch's `CrossEntropyLoss(weight,
//! label_smoothing)` does (tested in tests/runtime.rs against hand-computed values).

use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::prelude::*;

use crate::check::recipe::Loss;

/// scikit-learn's `compute_class_weight("balanced")`: `images / (classes × images of the class)`,
/// so that every class weighs the same in the loss however many images it has. A class without
/// images gets weight 1 (it never appears as a target).
pub fn balanced_weights(labels: &[usize], classes: usize) -> Vec<f32> {
    let mut counts = vec![0usize; classes];
    for &label in labels {
        if label < classes {
            counts[label] += 1;
        }
    }
    let total = labels.len() as f64;
    counts
        .iter()
        .map(|&count| if count == 0 { 1.0 } else { (total / (classes as f64 * count as f64)) as f32 })
        .collect()
}

/// The loss the training steps minimise.
pub fn training_loss(loss: &Loss, train_labels: &[usize], classes: usize, device: &Device) -> CrossEntropyLoss {
    let mut config = CrossEntropyLossConfig::new();
    if loss.smoothing > 0.0 {
        config = config.with_smoothing(Some(loss.smoothing as f32));
    }
    if loss.balanced_weights {
        config = config.with_weights(Some(balanced_weights(train_labels, classes)));
    }
    config.init(device)
}

#[cfg(test)]
mod tests {
    use super::balanced_weights;

    #[test]
    fn balanced_weights_match_scikit_learn() {
        // compute_class_weight("balanced", classes=[0, 1, 2], y=[0, 0, 0, 0, 1, 1, 2, 2]) = [2/3, 4/3, 4/3]
        let weights = balanced_weights(&[0, 0, 0, 0, 1, 1, 2, 2], 3);
        let expected = [2.0 / 3.0, 4.0 / 3.0, 4.0 / 3.0];
        for (weight, expected) in weights.iter().zip(expected) {
            assert!((f64::from(*weight) - expected).abs() < 1e-6, "{weights:?}");
        }
        // A class without images never appears as a target: weight 1 (scikit-learn refuses it).
        assert_eq!(balanced_weights(&[0, 0], 2), vec![0.5, 1.0]);
    }
}
