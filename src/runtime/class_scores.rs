//! A batch's class scores read back from the device: the predicted class (burn's argmax, as the
//! evaluation has always taken it), probabilities and per-image losses.

use burn::prelude::*;

/// Scores of `rows` images over `classes` classes (logits, or log-probabilities under TTA).
pub struct ClassScores {
    values: Vec<f32>,
    classes: usize,
    /// The argmax of each row, computed on the device exactly as the evaluation does.
    pub predicted: Vec<usize>,
}

/// One valid image of the final evaluation: index in the valid split, true and predicted class,
/// the predicted class's probability and the image's cross-entropy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredImage {
    pub index: usize,
    pub truth: usize,
    pub predicted: usize,
    pub probability: f64,
    pub loss: f64,
}

impl ClassScores {
    pub fn of(scores: Tensor<2>) -> ClassScores {
        let [_, classes] = scores.dims();
        let predicted = scores
            .clone()
            .argmax(1)
            .into_data()
            .convert::<i64>()
            .try_into_vec::<i64>()
            .expect("argmax gives integers")
            .into_iter()
            .map(|class| usize::try_from(class).unwrap_or(usize::MAX))
            .collect();
        let values = scores.into_data().convert::<f32>().try_into_vec::<f32>().expect("scores are floats");
        ClassScores { values, classes, predicted }
    }

    pub fn len(&self) -> usize {
        self.predicted.len()
    }

    pub fn is_empty(&self) -> bool {
        self.predicted.is_empty()
    }

    /// The raw scores of one image.
    pub fn scores(&self, row: usize) -> &[f32] {
        &self.values[row * self.classes..(row + 1) * self.classes]
    }

    /// log softmax of one image's scores at `class`, in f64.
    pub fn log_probability(&self, row: usize, class: usize) -> f64 {
        let scores = self.scores(row);
        let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
        let sum: f64 = scores.iter().map(|score| (f64::from(*score) - max).exp()).sum();
        f64::from(scores[class]) - max - sum.ln()
    }

    /// Softmax of one image's scores.
    pub fn probabilities(&self, row: usize) -> Vec<f32> {
        (0..self.classes).map(|class| self.log_probability(row, class).exp() as f32).collect()
    }
}
