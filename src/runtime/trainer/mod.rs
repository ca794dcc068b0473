//! The training loop, one stage at a time, with the recipe's freezing, per-group learning rates,
//! schedule and image sizes. Split the way burn-train splits it:
//! - `stage`: a stage's epochs, `keep best` and early stopping around them;
//! - `epoch`: one epoch's optimizer steps, then its evaluation and metrics;
//! - `step`: one optimizer step (accumulated batches, a failed step kept from losing the run);
//! - `events`: the hooks the runner answers (checkpoints, metrics, Ctrl-C);
//! - `evaluation`: the valid split in inference mode.
//! This file holds the trainer's state and what every part shares (groups, rates, batches).

mod epoch;
mod evaluation;
mod events;
mod stage;
mod step;

pub use events::{NoHooks, Snapshot, StageFailure, StageHooks, Stop};
pub use step::step_failure;

use std::collections::HashMap;

use burn::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::nn::loss::CrossEntropyLoss;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

pub use crate::run_files::{EpochMetrics, Evaluation, StepRates};
use serde::{Deserialize, Serialize};

use super::best_epoch::BestEpoch;
use crate::data::{Augment, DecodedImage, Fit, Mixed, SizedSet, SplitMix64, fill_batch, mix_batch};
use super::ema::WeightAverage;
use super::l2sp::Anchor;
use super::model::Network;
use super::optimizer::StageOptimizer;
use super::param_groups::ParameterGroups;
use super::loss;
use crate::check::recipe::{BatchNormMode, Recipe, Stage};
use crate::diagnostics::{Code, Diagnostic};

/// Decoded images and labels of one split, at their native size.
pub struct Split {
    pub images: Vec<DecodedImage>,
    pub labels: Vec<usize>,
}

pub struct TrainingData {
    pub classes: Vec<String>,
    pub train: Split,
    pub valid: Split,
}

/// The generator stream of `augmented_sample`, apart from every training stream.
const SHOW_BATCH_STREAM: u64 = 0x7368_6f77_6261_7463;

/// One training batch as tensors. `mixed`: MixUp or CutMix mixed each image with a partner;
/// the partners' labels and the weight λ of the images' own.
pub struct TrainingBatch {
    pub images: Tensor<4>,
    pub labels: Tensor<1, Int>,
    pub mixed: Option<(Tensor<1, Int>, f64)>,
}

/// Where training is: enough to resume exactly (with the network and optimizer state).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Position {
    pub stage_index: usize,
    /// 1-based epoch within the stage; past the stage's epochs means the stage is done.
    pub epoch: u32,
    /// The next batch of the epoch; 0 means the epoch has not started.
    pub next_batch: usize,
    pub step_in_stage: usize,
    pub global_step: usize,
    /// The global number of the epoch at `epoch`.
    pub global_epoch: u32,
    /// Augmentation generator state, mid-epoch.
    pub rng_state: u64,
    /// The epoch's running training loss so far, mid-epoch.
    pub loss_sum: f64,
    pub images_seen: usize,
    /// The stage's best epoch so far (`keep best`, early stopping).
    #[serde(default)]
    pub best: BestEpoch,
}

/// A stage continued from a checkpoint inside it.
pub struct StageResume {
    pub position: Position,
    /// The optimizer with the checkpoint's state loaded (its momentum handle drives it).
    pub optimizer: StageOptimizer,
    /// The best epoch's weights, when the stage keeps its best.
    pub best: Option<Network>,
}

/// How a stage ended.
pub struct StageOutcome {
    pub network: Network,
    /// `keep best`: the epoch whose weights the stage ended with.
    pub restored_epoch: Option<u32>,
    /// Early stopping: the last epoch that ran.
    pub stopped_after: Option<u32>,
}

pub struct Trainer<'a> {
    pub recipe: &'a Recipe,
    /// The training device (autodiff).
    pub device: Device,
    pub data: &'a TrainingData,
    sized: HashMap<u32, (SizedSet, SizedSet)>,
    /// The recipe's groups over the network of the stage being configured.
    groups: ParameterGroups,
    loss: CrossEntropyLoss,
    pub global_epoch: u32,
    pub global_step: usize,
    pub step_rates: Vec<StepRates>,
    /// `ema`: the moving average of the weights, started at the first step of the run.
    pub average: Option<WeightAverage>,
    /// `regularise l2sp`: the backbone's starting point (set where training starts).
    pub anchor: Option<Anchor>,
    /// `regularise lwf`: the starting network and its classifier (set where training starts).
    pub teacher: Option<super::lwf::Teacher>,
}

impl<'a> Trainer<'a> {
    pub fn new(recipe: &'a Recipe, device: Device, data: &'a TrainingData) -> Self {
        Trainer {
            recipe,
            loss: loss::training_loss(&recipe.loss, &data.train.labels, data.classes.len(), &device),
            device,
            data,
            sized: HashMap::new(),
            groups: ParameterGroups { all: Vec::new(), batchnorms: Vec::new() },
            global_epoch: 0,
            global_step: 0,
            step_rates: Vec::new(),
            average: None,
            anchor: None,
            teacher: None,
        }
    }

    /// Train and valid images at `size`, resized once and cached for later epochs.
    fn sized_sets(&mut self, size: u32) -> &(SizedSet, SizedSet) {
        let data = self.data;
        let recipe = self.recipe;
        self.sized.entry(size).or_insert_with(|| {
            let (mean, std) = recipe.input_normalisation();
            let build = |split: &Split, training: bool| {
                let fit = Fit::of(recipe.data.resize_method, training);
                SizedSet::build_fitted(&split.images, &split.labels, size, &mean, &std, fit, recipe.input_channels())
            };
            (build(&data.train, true), build(&data.valid, false))
        })
    }

    /// Select the recipe's groups in `network` and freeze what the stage freezes. `batchnorm
    /// train` keeps BatchNorm layers of frozen groups training (fastai's train_bn): their
    /// statistics and affine parameters move. A group that selects no parameter is an error.
    pub fn configure(&mut self, network: Network, stage: &Stage) -> Result<Network, Diagnostic> {
        self.select_groups(&network, stage)?;
        Ok(self.freeze(network, stage))
    }

    pub(super) fn select_groups(&mut self, network: &Network, stage: &Stage) -> Result<(), Diagnostic> {
        self.groups = ParameterGroups::select(network, self.recipe).map_err(|empty| {
            Diagnostic::new(Code::StepFailed, format!("stage `{}`: group(s) {} select no parameter of the network", stage.name, empty.join(", ")))
                .with_help("a group must hold a layer with weights (lint reports this as TL1013)")
        })?;
        Ok(())
    }

    pub(super) fn freeze(&self, network: Network, stage: &Stage) -> Network {
        let mut network = network.unfreeze();
        for (index, group) in self.groups.all.iter().enumerate() {
            if !stage.trained[index] {
                network = network.freeze_group(group.clone());
                if stage.batchnorm == BatchNormMode::Train {
                    network = network.unfreeze_group(self.groups.batchnorms[index].clone());
                }
            }
        }
        network
    }

    /// Each group's rate for this step ([`Stage::rate`]) at the stage's base rate.
    pub fn learning_rates(&self, stage: &Stage, factor: f64) -> ModuleLearningRate {
        self.learning_rates_from(stage, stage.base_lr, factor)
    }

    /// Each group's rate for base rate `base` (lr-find moves it): [`Stage::rate`]; parameters in
    /// no group (none in a resnet) take `base × factor`.
    pub fn learning_rates_from(&self, stage: &Stage, base: f64, factor: f64) -> ModuleLearningRate {
        let mut scheduler = ModuleLrScheduler::new(base * factor);
        for (index, group) in self.groups.all.iter().enumerate() {
            scheduler = scheduler.with_group(group.clone(), stage.rate(index, base, factor));
        }
        scheduler.step()
    }

    /// Forward and backward on one batch, the loss scaled by `weight` (a batch's share of an
    /// accumulated step). Returns the gradients and the unscaled loss; a non-finite loss is an error.
    /// A mixed batch (MixUp, CutMix) takes `λ·loss(labels) + (1 − λ)·loss(partners' labels)`, as
    /// fastai's callbacks do.
    pub fn gradients(&self, network: &Network, batch: TrainingBatch, weight: f64) -> Result<(GradientsParams, f64), f64> {
        // LwF's teacher reads the same images; BSS and LwF read the head's pooled input.
        let lwf = self.recipe.lwf.zip(self.teacher.as_ref());
        let teacher_images = lwf.map(|_| batch.images.clone());
        let (logits, features) = match (self.recipe.bss, lwf) {
            (None, None) => (network.forward(batch.images), None),
            _ => network.forward_with_features(batch.images),
        };
        let loss = match batch.mixed {
            None => self.loss.forward(logits, batch.labels),
            Some((partners, lambda)) => {
                let own = self.loss.forward(logits.clone(), batch.labels).mul_scalar(lambda);
                own.add(self.loss.forward(logits, partners).mul_scalar(1.0 - lambda))
            }
        };
        let value = f64::from(loss.clone().into_scalar::<f32>());
        if !value.is_finite() {
            return Err(value);
        }
        // L2-SP, BSS and LwF train on their terms; the loss reported stays the data's,
        // comparable across runs.
        let penalty = self.recipe.l2sp.zip(self.anchor.as_ref()).and_then(|(strengths, anchor)| anchor.penalty(network, &strengths));
        let shrinkage = self.recipe.bss.zip(features.clone()).map(|(bss, features)| super::bss::penalty(features, &bss));
        let kept = lwf.zip(teacher_images).zip(features).map(|(((lwf, teacher), images), features)| teacher.penalty(images, features, &lwf));
        let loss = [penalty, shrinkage, kept].into_iter().flatten().fold(loss, |loss, term| loss.add(term));
        let loss = if weight == 1.0 { loss } else { loss.mul_scalar(weight) };
        Ok((GradientsParams::from_grads(loss.backward(), network), value))
    }

    /// One optimizer step on one batch. Returns the loss; a non-finite loss leaves the network as it was.
    pub fn step(
        &self,
        network: Network,
        optimizer: &mut ModuleOptimizer,
        batch: TrainingBatch,
        rates: ModuleLearningRate,
    ) -> Result<(Network, f64), (Network, f64)> {
        match self.gradients(&network, batch, 1.0) {
            Ok((gradients, value)) => Ok((optimizer.step(rates, network, gradients), value)),
            Err(value) => Err((network, value)),
        }
    }

    /// A training batch at `size` from the epoch's order, augmented: each image, then the batch
    /// (MixUp, CutMix), drawing from `rng` in that order.
    pub fn training_batch(&mut self, size: u32, indices: &[usize], rng: &mut SplitMix64) -> TrainingBatch {
        let (images, labels, mixed) = self.augmented_values(size, indices, rng);
        let count = indices.len();
        let as_tensor = |labels: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(labels, [count]), &self.device);
        TrainingBatch {
            images: Tensor::<4>::from_data(TensorData::new(images, [count, self.recipe.input_channels() as usize, size as usize, size as usize]), &self.device),
            mixed: mixed.map(|Mixed { partners, lambda }| (as_tensor(partners.iter().map(|&partner| labels[partner]).collect()), lambda)),
            labels: as_tensor(labels),
        }
    }

    /// fastai's `show_batch`: the first `count` training images at `size`, augmented and mixed as
    /// a training batch is, from a stream of their own (training draws what it would have):
    /// normalised CHW values, labels, and what MixUp or CutMix mixed.
    pub fn augmented_sample(&mut self, size: u32, count: usize) -> (Vec<f32>, Vec<usize>, Option<Mixed>) {
        let mut rng = SplitMix64::for_stream(self.recipe.seed, SHOW_BATCH_STREAM);
        let indices: Vec<usize> = (0..count.min(self.data.train.labels.len())).collect();
        let (images, labels, mixed) = self.augmented_values(size, &indices, &mut rng);
        (images, labels.into_iter().map(|label| label as usize).collect(), mixed)
    }

    /// The training images `indices` at `size` as plain values: each image augmented, then the
    /// batch mixed (MixUp, CutMix), drawing from `rng` in that order.
    fn augmented_values(&mut self, size: u32, indices: &[usize], rng: &mut SplitMix64) -> (Vec<f32>, Vec<i64>, Option<Mixed>) {
        let augment = Augment::from_data(&self.recipe.data);
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        let (train_set, _) = self.sized_sets(size);
        fill_batch(train_set, indices, &augment, rng, &mut images, &mut labels);
        let mixed = mix_batch(&mut images, indices.len(), size as usize, &augment.image, rng);
        (images, labels, mixed)
    }

    /// The network evaluations and exports see: the moving average under `ema`, else the network.
    pub fn evaluated(&self, network: &Network) -> Network {
        match &self.average {
            // Not `clone`: a clone shares BatchNorm statistics with the average it came from.
            Some(average) => average.snapshot(),
            None => network.valid(),
        }
    }

    /// What a checkpoint holds besides the position.
    pub(super) fn snapshot<'s>(&'s self, network: &'s Network, optimizer: &'s StageOptimizer, best: Option<&'s Network>) -> Snapshot<'s> {
        Snapshot { network, optimizer: &optimizer.optimizer, rates: &self.step_rates, best, average: self.average.as_ref() }
    }

    /// Resize every image to `size` now (the `Resize` step), so later epochs at this size read the cache.
    pub fn prepare_size(&mut self, size: u32) {
        let _ = self.sized_sets(size);
    }

    /// Restore the per-step rates recorded before a checkpoint.
    pub fn restore_rates(&mut self, rates: Vec<StepRates>) {
        self.step_rates = rates;
    }

    pub(super) fn record_rates(&mut self, stage: &Stage, factor: f64) {
        let rates = self
            .recipe
            .groups
            .iter()
            .enumerate()
            .map(|(index, group)| (group.name.clone(), if stage.trained[index] { stage.rate(index, stage.base_lr, factor) } else { 0.0 }))
            .collect();
        self.step_rates.push(StepRates { step: self.global_step, stage: stage.name.clone(), rates });
    }
}

pub(super) fn progress_bar(length: usize, prefix: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(prefix.to_string());
    bar
}
