//! Evaluation on the valid split: inference mode, no autodiff, batches twice the training batch.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;

use super::{Evaluation, Trainer, progress_bar};
use crate::runtime::data::{Augment, SplitMix64, fill_batch};
use crate::runtime::model::Network;

impl Trainer<'_> {
    /// Loss, accuracy and confusion matrix on the valid split at `size`, in inference mode (no
    /// autodiff), in batches twice the training batch (no gradients are kept). With `tta`, each
    /// image's class probabilities are the mean of its own and its mirror's. The loss is plain
    /// cross-entropy (no smoothing, no class weights), so that it compares across recipes.
    pub fn evaluate(&mut self, network: &Network, size: u32, tta: bool) -> Evaluation {
        let classes = self.data.classes.len();
        let batch_size = self.recipe.data.batch.max(1) * 2;
        let inference = network.valid();
        let device = self.device.clone().without_autodiff();
        let channels = self.recipe.input_channels() as usize;
        let (_, valid_set) = self.sized_sets(size);
        let count = valid_set.labels.len();
        let mut confusion = vec![vec![0u32; classes]; classes];
        let mut loss_sum = 0.0;
        let no_augment = Augment { flip: false, crop_padding: 0 };
        let mut rng = SplitMix64::new(0);
        let mut images_buffer = Vec::new();
        let mut labels_buffer = Vec::new();
        let indices: Vec<usize> = (0..count).collect();
        let loss_function = CrossEntropyLossConfig::new().init(&device);
        let progress = progress_bar(count.div_ceil(batch_size), &format!("evaluate @{size}px"));
        for chunk in indices.chunks(batch_size) {
            fill_batch(valid_set, chunk, &no_augment, &mut rng, &mut images_buffer, &mut labels_buffer);
            let truth: Vec<i64> = labels_buffer.clone();
            let images = Tensor::<4>::from_data(
                TensorData::new(std::mem::take(&mut images_buffer), [chunk.len(), channels, size as usize, size as usize]),
                &device,
            );
            let labels = Tensor::<1, Int>::from_data(TensorData::new(std::mem::take(&mut labels_buffer), [chunk.len()]), &device);
            let logits = if tta {
                let mirrored = inference.forward(images.clone().flip([3]));
                let probabilities = burn::tensor::activation::softmax(inference.forward(images), 1)
                    .add(burn::tensor::activation::softmax(mirrored, 1))
                    .div_scalar(2.0);
                // Log-probabilities are logits whose softmax is the averaged probabilities.
                probabilities.clamp_min(1e-12).log()
            } else {
                inference.forward(images)
            };
            loss_sum += f64::from(loss_function.forward(logits.clone(), labels).into_scalar::<f32>()) * chunk.len() as f64;
            let predictions: Vec<i64> = logits.argmax(1).into_data().convert::<i64>().try_into_vec::<i64>().unwrap_or_default();
            for (truth, predicted) in truth.iter().zip(&predictions) {
                if let (Ok(truth), Ok(predicted)) = (usize::try_from(*truth), usize::try_from(*predicted)) {
                    if truth < classes && predicted < classes {
                        confusion[truth][predicted] += 1;
                    }
                }
            }
            progress.inc(1);
        }
        progress.finish_and_clear();
        let correct: u32 = (0..classes).map(|class| confusion[class][class]).sum();
        Evaluation {
            loss: if count > 0 { loss_sum / count as f64 } else { f64::NAN },
            accuracy: if count > 0 { f64::from(correct) / count as f64 } else { f64::NAN },
            confusion,
        }
    }
}
