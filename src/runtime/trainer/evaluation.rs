//! Evaluation on the valid split: inference mode, no autodiff, batches twice the training batch.

use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;

use super::{Evaluation, Trainer, progress_bar};
use crate::runtime::class_scores::{ClassScores, ScoredImage};
use crate::data::{Augment, SplitMix64, fill_batch};
use crate::runtime::model::Network;

impl Trainer<'_> {
    /// Loss, accuracy and confusion matrix on the valid split at `size`, in inference mode (no
    /// autodiff), in batches twice the training batch (no gradients are kept). With `tta`, each
    /// image's class probabilities are the mean of its own and its mirror's. The loss is plain
    /// cross-entropy (no smoothing, no class weights), so that it compares across recipes.
    pub fn evaluate(&mut self, network: &Network, size: u32, tta: bool) -> Evaluation {
        self.evaluate_images(network, size, tta).0
    }

    /// `evaluate`, and every valid image's true class, prediction and loss (in valid order), for
    /// the report's top losses.
    pub fn evaluate_images(&mut self, network: &Network, size: u32, tta: bool) -> (Evaluation, Vec<ScoredImage>) {
        let classes = self.data.classes.len();
        let batch_size = self.recipe.data.batch.max(1) * 2;
        let inference = network.valid();
        let device = self.device.clone().without_autodiff();
        let channels = self.recipe.input_channels() as usize;
        let (_, valid_set) = self.sized_sets(size);
        let count = valid_set.labels.len();
        let mut confusion = vec![vec![0u32; classes]; classes];
        let mut scored = Vec::with_capacity(count);
        let mut loss_sum = 0.0;
        let no_augment = Augment::NONE;
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
            let logits = inference.class_scores(images, tta);
            loss_sum += f64::from(loss_function.forward(logits.clone(), labels).into_scalar::<f32>()) * chunk.len() as f64;
            let scores = ClassScores::of(logits);
            for ((index, truth), row) in chunk.iter().zip(&truth).zip(0..scores.len()) {
                let (Ok(truth), predicted) = (usize::try_from(*truth), scores.predicted[row]) else { continue };
                if truth < classes && predicted < classes {
                    confusion[truth][predicted] += 1;
                    let probabilities = scores.probabilities(row);
                    scored.push(ScoredImage {
                        index: *index,
                        truth,
                        predicted,
                        probability: f64::from(probabilities[predicted]),
                        loss: -scores.log_probability(row, truth),
                    });
                }
            }
            progress.inc(1);
        }
        progress.finish_and_clear();
        let correct: u32 = (0..classes).map(|class| confusion[class][class]).sum();
        let evaluation = Evaluation {
            loss: if count > 0 { loss_sum / count as f64 } else { f64::NAN },
            accuracy: if count > 0 { f64::from(correct) / count as f64 } else { f64::NAN },
            confusion,
        };
        (evaluation, scored)
    }
}
