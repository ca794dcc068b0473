//! The training loop: one stage at a time, with the recipe's freezing, per-group learning rates,
//! schedule and image sizes.

use std::collections::HashMap;
use std::time::Instant;

use burn::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::nn::loss::{CrossEntropyLoss, CrossEntropyLossConfig};
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::prelude::*;

pub use crate::run_files::{EpochMetrics, Evaluation, StepRates};
use serde::{Deserialize, Serialize};

use super::best_epoch::BestEpoch;
use super::data::{Augment, DecodedImage, Fit, SizedSet, SplitMix64, epoch_order, fill_batch, mix64};
use super::ema::WeightAverage;
use super::model::Network;
use super::optimizer::StageOptimizer;
use super::param_groups::ParameterGroups;
use super::{loss, optimizer, schedule};
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

/// Why a stage stopped before its end.
pub enum Stop {
    Failed(Diagnostic),
    /// Ctrl-C: a checkpoint was written after the last step.
    Interrupted,
}

/// A stage that stopped early, and the last good network.
pub struct StageFailure {
    pub network: Network,
    pub stop: Stop,
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

/// What a checkpoint holds besides the position.
pub struct Snapshot<'a> {
    pub network: &'a Network,
    pub optimizer: &'a ModuleOptimizer,
    pub rates: &'a [StepRates],
    /// The weights of the stage's best epoch so far (`keep best`).
    pub best: Option<&'a Network>,
    /// The moving average of the weights (`ema`).
    pub average: Option<&'a WeightAverage>,
}

/// How a stage ended.
pub struct StageOutcome {
    pub network: Network,
    /// `keep best`: the epoch whose weights the stage ended with.
    pub restored_epoch: Option<u32>,
    /// Early stopping: the last epoch that ran.
    pub stopped_after: Option<u32>,
}

/// What the runner does between steps and epochs: checkpoints, Ctrl-C, metrics.
pub trait StageHooks {
    fn after_step(&mut self, position: &Position, snapshot: Snapshot<'_>) -> Result<(), Stop>;
    fn after_epoch(&mut self, metrics: &EpochMetrics, next: &Position, snapshot: Snapshot<'_>) -> Result<(), Stop>;
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

    fn select_groups(&mut self, network: &Network, stage: &Stage) -> Result<(), Diagnostic> {
        self.groups = ParameterGroups::select(network, self.recipe).map_err(|empty| {
            Diagnostic::new(Code::StepFailed, format!("stage `{}`: group(s) {} select no parameter of the network", stage.name, empty.join(", ")))
                .with_help("a group must hold a layer with weights (lint reports this as TL1013)")
        })?;
        Ok(())
    }

    fn freeze(&self, network: Network, stage: &Stage) -> Network {
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

    /// Each group's rate for this step: base × multiplier × schedule factor.
    pub fn learning_rates(&self, stage: &Stage, factor: f64) -> ModuleLearningRate {
        let mut scheduler = ModuleLrScheduler::new(stage.base_lr * factor);
        for (index, group) in self.groups.all.iter().enumerate() {
            scheduler = scheduler.with_group(group.clone(), stage.group_lr(index) * factor);
        }
        scheduler.step()
    }

    /// Forward and backward on one batch, the loss scaled by `weight` (a batch's share of an
    /// accumulated step). Returns the gradients and the unscaled loss; a non-finite loss is an error.
    pub fn gradients(&self, network: &Network, images: Tensor<4>, labels: Tensor<1, Int>, weight: f64) -> Result<(GradientsParams, f64), f64> {
        let logits = network.forward(images);
        let loss = self.loss.forward(logits, labels);
        let value = f64::from(loss.clone().into_scalar::<f32>());
        if !value.is_finite() {
            return Err(value);
        }
        let loss = if weight == 1.0 { loss } else { loss.mul_scalar(weight) };
        Ok((GradientsParams::from_grads(loss.backward(), network), value))
    }

    /// One optimizer step on one batch. Returns the loss; a non-finite loss leaves the network as it was.
    pub fn step(
        &self,
        network: Network,
        optimizer: &mut ModuleOptimizer,
        images: Tensor<4>,
        labels: Tensor<1, Int>,
        rates: ModuleLearningRate,
    ) -> Result<(Network, f64), (Network, f64)> {
        match self.gradients(&network, images, labels, 1.0) {
            Ok((gradients, value)) => Ok((optimizer.step(rates, network, gradients), value)),
            Err(value) => Err((network, value)),
        }
    }

    /// A training batch at `size` from the epoch's order, augmented.
    pub fn training_batch(&mut self, size: u32, indices: &[usize], rng: &mut SplitMix64) -> (Tensor<4>, Tensor<1, Int>) {
        let augment = Augment { flip: self.recipe.data.flip, crop_padding: self.recipe.data.crop_padding };
        let (mut images, mut labels) = (Vec::new(), Vec::new());
        let (train_set, _) = self.sized_sets(size);
        fill_batch(train_set, indices, &augment, rng, &mut images, &mut labels);
        let count = indices.len();
        (
            Tensor::<4>::from_data(TensorData::new(images, [count, self.recipe.input_channels() as usize, size as usize, size as usize]), &self.device),
            Tensor::<1, Int>::from_data(TensorData::new(labels, [count]), &self.device),
        )
    }

    /// The network evaluations and exports see: the moving average under `ema`, else the network.
    pub fn evaluated(&self, network: &Network) -> Network {
        match &self.average {
            Some(average) => average.network().clone(),
            None => network.valid(),
        }
    }

    /// Run one stage from its start, or from `resume` (a checkpoint inside it), calling `hooks`
    /// after every optimizer step and every epoch.
    pub fn run_stage(
        &mut self,
        network: Network,
        stage_index: usize,
        resume: Option<StageResume>,
        hooks: &mut dyn StageHooks,
    ) -> Result<StageOutcome, StageFailure> {
        let stage = &self.recipe.stages[stage_index];
        if let Err(diagnostic) = self.select_groups(&network, stage) {
            return Err(StageFailure { network, stop: Stop::Failed(diagnostic) });
        }
        let mut network = self.freeze(network, stage);
        let train_count = self.data.train.labels.len();
        // Every image once per epoch: the partial last batch trains too (see data_counts).
        let batches = crate::data_counts::batch_ranges(train_count, self.recipe.data.batch);
        let accumulate = stage.accumulate.max(1);
        let steps_per_epoch = batches.len().div_ceil(accumulate);
        let total_steps = steps_per_epoch * stage.epochs as usize;
        if let (Some(decay), None) = (self.recipe.ema, &self.average) {
            self.average = Some(WeightAverage::new(&network, decay));
        }
        let (mut stage_optimizer, mut step_in_stage, first_epoch, mut resume_at, mut best, mut best_network) = match resume {
            Some(StageResume { position, optimizer, best: best_network }) => {
                self.global_step = position.global_step;
                self.global_epoch = position.global_epoch - 1;
                (optimizer, position.step_in_stage, position.epoch, Some(position.clone()), position.best, best_network)
            }
            None => (optimizer::build(&stage.optimizer), 0, 1, None, BestEpoch::default(), None),
        };
        let keeps_best = stage.keep_best.is_some();
        let mut stopped_after = None;

        for epoch in first_epoch..=stage.epochs {
            self.global_epoch += 1;
            let size = stage.sizes[(epoch - 1) as usize];
            let started = Instant::now();
            let order = epoch_order(train_count, self.recipe.seed, u64::from(self.global_epoch));
            let (mut rng, first_batch, mut loss_sum, mut images_seen) = match resume_at.take() {
                Some(position) if position.next_batch > 0 => {
                    (SplitMix64::new(position.rng_state), position.next_batch, position.loss_sum, position.images_seen)
                }
                _ => (SplitMix64::for_stream(self.recipe.seed, u64::from(self.global_epoch)), 0, 0.0, 0),
            };
            let mut last_factor = schedule::factor(stage, step_in_stage.saturating_sub(1), total_steps);
            let progress = progress_bar(batches.len(), &format!("{} {epoch}/{} @{size}px", stage.name, stage.epochs));
            progress.set_position(first_batch as u64);
            // Optimizer steps take `accumulate` batches each; a checkpoint always falls between steps.
            let mut group_start = first_batch;
            while group_start < batches.len() {
                let group_end = (group_start + accumulate).min(batches.len());
                let group_images: usize = batches[group_start..group_end].iter().map(|range| range.len()).sum();
                last_factor = schedule::factor(stage, step_in_stage, total_steps);
                stage_optimizer.momentum.set(schedule::momentum(stage, step_in_stage, total_steps));
                let rates = self.learning_rates(stage, last_factor);
                self.record_rates(stage, last_factor);
                // Dropout draws from the backend's generator: seeding it per step makes every step
                // depend only on (seed, step), so a resumed run draws what the original would have.
                self.device.seed(mix64(self.recipe.seed ^ mix64(self.global_step as u64)));
                let place = |batch: usize| format!("stage `{}`, epoch {epoch}, step {} (batch {} of the epoch)", stage.name, step_in_stage + 1, batch + 1);
                let mut accumulator = GradientsAccumulator::<Network>::new();
                let mut group_loss = 0.0;
                for batch_index in group_start..group_end {
                    let indices = &order[batches[batch_index].clone()];
                    let (images, labels) = self.training_batch(size, indices, &mut rng);
                    let weight = indices.len() as f64 / group_images as f64;
                    // A panic inside burn (out of memory, a kernel error) must not lose the run: the
                    // network from before the step is still held, and the stage stops with a diagnostic.
                    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.gradients(&network, images, labels, weight)));
                    match outcome {
                        Ok(Ok((gradients, loss))) => {
                            accumulator.accumulate(&network, gradients);
                            group_loss += loss * indices.len() as f64;
                        }
                        Ok(Err(loss)) => {
                            progress.finish_and_clear();
                            return Err(StageFailure {
                                network,
                                stop: Stop::Failed(
                                    Diagnostic::new(Code::NonFiniteLoss, format!("the loss became {loss} in {}", place(batch_index)))
                                        .with_help("lower the stage's `lr` (try 10x smaller); the weights before this step are kept in the run folder"),
                                ),
                            });
                        }
                        Err(panic) => {
                            progress.finish_and_clear();
                            let failure = step_failure(&panic_text(&panic), &place(batch_index), indices.len());
                            return Err(StageFailure { network, stop: Stop::Failed(failure) });
                        }
                    }
                }
                let before_step = network.clone();
                let gradients = accumulator.grads();
                let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    stage_optimizer.optimizer.step(rates, network, gradients)
                }));
                network = match stepped {
                    Ok(next) => next,
                    Err(panic) => {
                        progress.finish_and_clear();
                        let failure = step_failure(&panic_text(&panic), &place(group_end - 1), group_images);
                        return Err(StageFailure { network: before_step, stop: Stop::Failed(failure) });
                    }
                };
                if let Some(average) = &mut self.average {
                    average.update(&network);
                }
                loss_sum += group_loss;
                images_seen += group_images;
                step_in_stage += 1;
                self.global_step += 1;
                progress.inc((group_end - group_start) as u64);
                let seconds = started.elapsed().as_secs_f64().max(1e-9);
                progress.set_message(format!("{:.0} img/s  loss {:.4}", images_seen as f64 / seconds, loss_sum / images_seen.max(1) as f64));
                group_start = group_end;
                if group_start < batches.len() {
                    let position = Position {
                        stage_index,
                        epoch,
                        next_batch: group_start,
                        step_in_stage,
                        global_step: self.global_step,
                        global_epoch: self.global_epoch,
                        rng_state: rng.state(),
                        loss_sum,
                        images_seen,
                        best: best.clone(),
                    };
                    if let Err(stop) = hooks.after_step(&position, self.snapshot(&network, &stage_optimizer, best_network.as_ref())) {
                        progress.finish_and_clear();
                        return Err(StageFailure { network, stop });
                    }
                }
            }
            progress.finish_and_clear();
            let train_seconds = started.elapsed().as_secs_f64();
            let evaluated = self.evaluated(&network);
            let evaluation = self.evaluate(&evaluated, size, false);
            let verdict = best.observe(stage, epoch, evaluation.accuracy, evaluation.loss);
            // The best weights are the evaluated ones: the moving average under `ema`.
            if verdict.improved && keeps_best {
                best_network = Some(evaluated);
            }
            if verdict.stop {
                stopped_after = Some(epoch);
            }
            let metrics = EpochMetrics {
                stage: stage.name.clone(),
                stage_index,
                epoch,
                global_epoch: self.global_epoch,
                size,
                learning_rates: self
                    .recipe
                    .groups
                    .iter()
                    .enumerate()
                    .filter(|(index, _)| stage.trained[*index])
                    .map(|(index, group)| (group.name.clone(), stage.group_lr(index) * last_factor))
                    .collect(),
                train_loss: loss_sum / images_seen.max(1) as f64,
                valid_loss: evaluation.loss,
                valid_accuracy: evaluation.accuracy,
                train_images_per_second: images_seen as f64 / train_seconds.max(1e-9),
                seconds: started.elapsed().as_secs_f64(),
                restored: false,
                stopped_early: verdict.stop,
            };
            // Where the next epoch starts: past the last epoch (or an early stop) means the stage is done.
            let next = Position {
                stage_index,
                epoch: if verdict.stop { stage.epochs + 1 } else { epoch + 1 },
                next_batch: 0,
                step_in_stage,
                global_step: self.global_step,
                global_epoch: self.global_epoch + 1,
                rng_state: 0,
                loss_sum: 0.0,
                images_seen: 0,
                best: best.clone(),
            };
            if let Err(stop) = hooks.after_epoch(&metrics, &next, self.snapshot(&network, &stage_optimizer, best_network.as_ref())) {
                return Err(StageFailure { network, stop });
            }
            if verdict.stop {
                break;
            }
        }
        let mut restored_epoch = None;
        if let (true, Some(best_weights), Some(epoch)) = (keeps_best, best_network, best.epoch) {
            let last = network.clone();
            network = network.try_load_record(best_weights.clone().into_record()).map_err(|error| StageFailure {
                network: last,
                stop: Stop::Failed(Diagnostic::new(Code::StepFailed, format!("cannot restore the best epoch of stage `{}`: {error:?}", stage.name))),
            })?;
            // The average restarts from the restored weights, so that what is evaluated next is them.
            let updates = self.average.as_ref().map(|average| average.updates);
            if let (Some(updates), Some(decay)) = (updates, self.recipe.ema) {
                self.average = Some(WeightAverage::resume(best_weights, decay, updates));
            }
            restored_epoch = Some(epoch);
        }
        Ok(StageOutcome { network, restored_epoch, stopped_after })
    }

    /// What a checkpoint holds besides the position.
    fn snapshot<'s>(&'s self, network: &'s Network, optimizer: &'s StageOptimizer, best: Option<&'s Network>) -> Snapshot<'s> {
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

    fn record_rates(&mut self, stage: &Stage, factor: f64) {
        let rates = self
            .recipe
            .groups
            .iter()
            .enumerate()
            .map(|(index, group)| (group.name.clone(), if stage.trained[index] { stage.group_lr(index) * factor } else { 0.0 }))
            .collect();
        self.step_rates.push(StepRates { step: self.global_step, stage: stage.name.clone(), rates });
    }

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

fn progress_bar(length: usize, prefix: &str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(prefix.to_string());
    bar
}
/// Hooks that do nothing: training without checkpoints or output (tests, benchmarks).
pub struct NoHooks;

impl StageHooks for NoHooks {
    fn after_step(&mut self, _: &Position, _: Snapshot<'_>) -> Result<(), Stop> {
        Ok(())
    }

    fn after_epoch(&mut self, _: &EpochMetrics, _: &Position, _: Snapshot<'_>) -> Result<(), Stop> {
        Ok(())
    }
}

fn panic_text(panic: &Box<dyn std::any::Any + Send>) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|text| text.to_string()))
        .unwrap_or_else(|| "unknown error".to_string())
}

/// TL4012 for a step that failed inside burn; out-of-memory failures get the batch size to try.
pub fn step_failure(message: &str, place: &str, batch: usize) -> Diagnostic {
    let lower = message.to_ascii_lowercase();
    let out_of_memory = ["out of memory", "outofmemory", "memory allocation", "failed to allocate", "cuda_error_out_of_memory"]
        .iter()
        .any(|needle| lower.contains(needle));
    let first_line = message.lines().next().unwrap_or(message);
    if out_of_memory {
        Diagnostic::new(Code::StepFailed, format!("a batch of {batch} images did not fit in memory in {place}: {first_line}"))
            .with_help(format!("try `batch {}` in the data block (or smaller images); the weights before this step are kept", (batch / 2).max(1)))
    } else {
        Diagnostic::new(Code::StepFailed, format!("the training step failed in {place}: {first_line}"))
            .with_help("the weights before this step are kept in the run folder; please report this with the recipe")
    }
}

#[cfg(test)]
mod tests {
    use super::step_failure;

    #[test]
    fn out_of_memory_says_which_batch_size_to_try() {
        let diagnostic = step_failure("CUDA_ERROR_OUT_OF_MEMORY: out of memory", "stage `finetune`, epoch 2, step 7", 64);
        assert_eq!(diagnostic.code.as_str(), "TL4012");
        assert!(diagnostic.message.contains("a batch of 64 images did not fit in memory in stage `finetune`, epoch 2, step 7"));
        assert!(diagnostic.help.unwrap().contains("try `batch 32`"));
        let other = step_failure("index out of bounds", "stage `s`, epoch 1, step 1", 8);
        assert!(other.message.contains("the training step failed") && !other.help.unwrap().contains("batch"));
    }
}
