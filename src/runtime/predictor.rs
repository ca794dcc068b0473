//! Applying a trained network to image files: the network its model card describes, the card's
//! preprocessing, the final evaluation's batches and scores. Streams: one batch of files is
//! decoded, prepared and inferred at a time, so memory does not grow with the input.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use rayon::prelude::*;

use super::class_scores::ClassScores;
use crate::data::{DecodedImage, Fit, InputFiles, SizedSet};
use super::device::parse_device;
use super::model::{Backbone, Head, Network};
use super::weights::{self, LoadScope};
use crate::diagnostics::{Code, Diagnostic};
use crate::model_card::ModelCard;
use crate::prediction_file::{PredictionRow, PredictionWriter};

pub struct Predictor {
    pub card: ModelCard,
    pub network: Network,
    device: Device,
}

/// One batch of files: the scores of those that decoded, in order, and the reasons of those that did not.
pub struct PredictedBatch {
    /// Files that decoded, in input order; row `i` of `scores` is `decoded[i]`.
    pub decoded: Vec<usize>,
    pub scores: Option<ClassScores>,
    /// Index in the batch and the decoder's reason.
    pub bad: Vec<(usize, String)>,
}

/// What a pass over many files found: the confusion matrix of a labelled input (rows: true
/// class), the files that could not be read, how many were predicted and how long it took.
pub struct PredictionSummary {
    pub confusion: Option<Vec<Vec<u32>>>,
    pub bad: Vec<(PathBuf, String)>,
    pub predicted: usize,
    pub seconds: f64,
}

impl PredictionSummary {
    /// Correct predictions and labelled images, for a labelled input.
    pub fn correct_of(&self) -> Option<(u32, u32)> {
        let confusion = self.confusion.as_ref()?;
        let correct = (0..confusion.len()).map(|class| confusion[class][class]).sum();
        Some((correct, confusion.iter().flatten().sum()))
    }
}

impl Predictor {
    /// The network `card` describes, with the weights of `weights` (every tensor must fit).
    pub fn load(card: ModelCard, weights_file: &Path, device: &str) -> Result<Predictor, Diagnostic> {
        let device = parse_device(device)?;
        let mut network = network_of(&card, &device)?;
        weights::load(&mut network, weights_file, LoadScope::Network)?;
        Ok(Predictor { card, network, device })
    }

    /// A network already in memory (a run's final one), on an inference device.
    pub fn new(card: ModelCard, network: Network, device: Device) -> Predictor {
        Predictor { card, network, device }
    }

    /// Every file of `inputs`, a batch at a time, into `writer`; bad files are collected, not fatal.
    pub fn predict_all(&self, inputs: &InputFiles, writer: &mut PredictionWriter, progress: bool) -> Result<PredictionSummary, Diagnostic> {
        let classes = &self.card.classes;
        let batch = self.card.batch.max(1);
        let mut confusion = inputs.truth.as_ref().map(|_| vec![vec![0u32; classes.len()]; classes.len()]);
        let mut bad: Vec<(PathBuf, String)> = Vec::new();
        let mut predicted = 0;
        let batches = inputs.files.len().div_ceil(batch);
        let bar = indicatif::ProgressBar::new(batches as u64);
        if !progress || batches < 2 {
            bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        } else if let Ok(style) = indicatif::ProgressStyle::with_template("predict [{bar:30}] {pos}/{len} batches, {per_sec}, {eta} left") {
            bar.set_style(style.progress_chars("=> "));
        }
        let started = std::time::Instant::now();
        for (chunk_index, chunk) in inputs.files.chunks(batch).enumerate() {
            let result = self.predict_files(chunk)?;
            bad.extend(result.bad.into_iter().map(|(index, reason)| (chunk[index].clone(), reason)));
            if let Some(scores) = &result.scores {
                for (row, &index) in result.decoded.iter().enumerate() {
                    let probabilities = scores.probabilities(row);
                    let class = scores.predicted[row];
                    let truth = inputs.truth.as_ref().map(|truth| truth[chunk_index * batch + index]);
                    if let (Some(confusion), Some(truth)) = (confusion.as_mut(), truth) {
                        if truth < classes.len() && class < classes.len() {
                            confusion[truth][class] += 1;
                        }
                    }
                    writer.write(&PredictionRow { path: &chunk[index], class, probabilities: &probabilities, truth }, classes)?;
                    predicted += 1;
                }
            }
            writer.flush()?;
            bar.inc(1);
            if writer.is_closed() {
                break;
            }
        }
        bar.finish_and_clear();
        Ok(PredictionSummary { confusion, bad, predicted, seconds: started.elapsed().as_secs_f64() })
    }

    /// The network's input for these images, NCHW, as the run's final evaluation prepared its
    /// valid images: made grey when the card says so, fitted to the square (validation's fit),
    /// normalised.
    pub fn inputs(&self, images: &mut [DecodedImage]) -> Result<Vec<f32>, Diagnostic> {
        let preprocessing = &self.card.preprocessing;
        if preprocessing.grey {
            images.iter_mut().for_each(DecodedImage::make_grey);
        }
        let labels = vec![0; images.len()];
        let fit = Fit::of(preprocessing.resize_method, false);
        let set = SizedSet::try_build(images, &labels, preprocessing.size, &preprocessing.mean, &preprocessing.std, fit, self.card.input_channels)?;
        Ok(set.images)
    }

    fn tensor(&self, inputs: Vec<f32>, count: usize) -> Tensor<4> {
        let size = self.card.preprocessing.size as usize;
        Tensor::<4>::from_data(TensorData::new(inputs, [count, self.card.input_channels as usize, size, size]), &self.device)
    }

    /// Class scores for `count` prepared images, with the card's TTA.
    pub fn scores(&self, inputs: Vec<f32>, count: usize) -> ClassScores {
        ClassScores::of(self.network.class_scores(self.tensor(inputs, count), self.card.tta_flip))
    }

    /// The network's raw logits (no TTA), `count` rows: what an ONNX export must reproduce.
    pub fn logits(&self, inputs: Vec<f32>, count: usize) -> Vec<f32> {
        self.network.forward(self.tensor(inputs, count)).into_data().convert::<f32>().try_into_vec::<f32>().expect("logits are floats")
    }

    /// Decode (in parallel), prepare and score one batch of files.
    pub fn predict_files(&self, files: &[PathBuf]) -> Result<PredictedBatch, Diagnostic> {
        let results: Vec<Result<DecodedImage, String>> = files.par_iter().map(|path| DecodedImage::read_file(path)).collect();
        let mut images = Vec::with_capacity(files.len());
        let mut decoded = Vec::with_capacity(files.len());
        let mut bad = Vec::new();
        for (index, result) in results.into_iter().enumerate() {
            match result {
                Ok(image) => {
                    images.push(image);
                    decoded.push(index);
                }
                Err(reason) => bad.push((index, reason)),
            }
        }
        if images.is_empty() {
            return Ok(PredictedBatch { decoded, scores: None, bad });
        }
        let count = images.len();
        let inputs = self.inputs(&mut images)?;
        drop(images);
        Ok(PredictedBatch { decoded, scores: Some(self.scores(inputs, count)), bad })
    }
}

/// The network a card describes, with freshly drawn weights (a weights file fills them).
pub fn network_of(card: &ModelCard, device: &Device) -> Result<Network, Diagnostic> {
    let architecture = crate::arch::lookup(&card.architecture)
        .ok_or_else(|| Diagnostic::new(Code::ModelCardUnusable, format!("unknown architecture `{}`", card.architecture)))?;
    let backbone = Backbone::new(architecture, card.kept_layers, card.input_channels, device);
    Ok(Network { backbone, head: Head::new(&card.head, card.classes.len(), device) })
}
