//! The training loop: one stage at a time, with the recipe's freezing, per-group learning rates,
//! schedule and image sizes.

use std::collections::HashMap;
use std::time::Instant;

use burn::lr_scheduler::module_lr_scheduler::{ModuleLearningRate, ModuleLrScheduler};
use burn::module::ParamGroup;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsParams, ModuleOptimizer};
use burn::prelude::*;

pub use crate::run_files::{EpochMetrics, Evaluation, StepRates};
use serde::{Deserialize, Serialize};

use super::data::{Augment, DecodedImage, SizedSet, SplitMix64, epoch_order, fill_batch, mix64};
use super::model::Network;
use super::param_groups::{group_batchnorms, group_params};
use super::{optimizer, schedule};
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
}

/// What the runner does between steps and epochs: checkpoints, Ctrl-C, metrics.
pub trait StageHooks {
    fn after_step(&mut self, position: &Position, network: &Network, optimizer: &ModuleOptimizer, rates: &[StepRates]) -> Result<(), Stop>;
    fn after_epoch(
        &mut self,
        metrics: &EpochMetrics,
        next: &Position,
        network: &Network,
        optimizer: &ModuleOptimizer,
        rates: &[StepRates],
    ) -> Result<(), Stop>;
}

pub struct Trainer<'a> {
    pub recipe: &'a Recipe,
    /// The training device (autodiff).
    pub device: Device,
    pub data: &'a TrainingData,
    sized: HashMap<u32, (SizedSet, SizedSet)>,
    groups: Vec<ParamGroup>,
    batchnorm_groups: Vec<ParamGroup>,
    pub global_epoch: u32,
    pub global_step: usize,
    pub step_rates: Vec<StepRates>,
}

impl<'a> Trainer<'a> {
    pub fn new(recipe: &'a Recipe, device: Device, data: &'a TrainingData) -> Self {
        Trainer {
            recipe,
            device,
            data,
            sized: HashMap::new(),
            groups: recipe.groups.iter().map(group_params).collect(),
            batchnorm_groups: recipe.groups.iter().map(group_batchnorms).collect(),
            global_epoch: 0,
            global_step: 0,
            step_rates: Vec::new(),
        }
    }

    /// Train and valid images at `size`, resized once and cached for later epochs.
    fn sized_sets(&mut self, size: u32) -> &(SizedSet, SizedSet) {
        let data = self.data;
        let recipe = self.recipe;
        self.sized.entry(size).or_insert_with(|| {
            let build = |split: &Split| SizedSet::build(&split.images, &split.labels, size, &recipe.data.mean, &recipe.data.std);
            (build(&data.train), build(&data.valid))
        })
    }

    /// Freeze what the stage freezes. `batchnorm train` keeps BatchNorm layers of frozen groups
    /// training (fastai's train_bn): their statistics and affine parameters move.
    pub fn configure(&self, network: Network, stage: &Stage) -> Network {
        let mut network = network.unfreeze();
        for (index, group) in self.groups.iter().enumerate() {
            if !stage.trained[index] {
                network = network.freeze_group(group.clone());
                if stage.batchnorm == BatchNormMode::Train {
                    network = network.unfreeze_group(self.batchnorm_groups[index].clone());
                }
            }
        }
        network
    }

    /// Each group's rate for this step: base × multiplier × schedule factor.
    pub fn learning_rates(&self, stage: &Stage, factor: f64) -> ModuleLearningRate {
        let mut scheduler = ModuleLrScheduler::new(stage.base_lr * factor);
        for (index, group) in self.groups.iter().enumerate() {
            scheduler = scheduler.with_group(group.clone(), stage.group_lr(index) * factor);
        }
        scheduler.step()
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
        let logits = network.forward(images);
        let loss = CrossEntropyLossConfig::new().init(&self.device).forward(logits, labels);
        let value = f64::from(loss.clone().into_scalar::<f32>());
        if !value.is_finite() {
            return Err((network, value));
        }
        let gradients = GradientsParams::from_grads(loss.backward(), &network);
        Ok((optimizer.step(rates, network, gradients), value))
    }

    /// Run one stage from its start, or from `resume` (a checkpoint inside it), calling `hooks`
    /// after every step and every epoch.
    pub fn run_stage(
        &mut self,
        network: Network,
        stage_index: usize,
        resume: Option<(Position, ModuleOptimizer)>,
        hooks: &mut dyn StageHooks,
    ) -> Result<Network, StageFailure> {
        let stage = &self.recipe.stages[stage_index];
        let mut network = self.configure(network, stage);
        let batch_size = self.recipe.data.batch;
        let train_count = self.data.train.labels.len();
        // fastai drops the last incomplete training batch (tiny batches upset BatchNorm).
        let batches_per_epoch = if train_count > batch_size { train_count / batch_size } else { 1 };
        let total_steps = batches_per_epoch * stage.epochs as usize;
        let augment = Augment { flip: self.recipe.data.flip, crop_padding: self.recipe.data.crop_padding };
        let (mut optimizer, mut step_in_stage, first_epoch, mut resume_at) = match resume {
            Some((position, optimizer)) => {
                self.global_step = position.global_step;
                self.global_epoch = position.global_epoch - 1;
                (optimizer, position.step_in_stage, position.epoch, Some(position))
            }
            None => (optimizer::build(&stage.optimizer), 0, 1, None),
        };

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
            let mut last_factor = schedule::factor(stage.schedule, step_in_stage.saturating_sub(1), total_steps);
            let mut images_buffer = Vec::new();
            let mut labels_buffer = Vec::new();
            let progress = progress_bar(batches_per_epoch, &stage.name, epoch, stage.epochs, size);
            progress.set_position(first_batch as u64);
            for batch_index in first_batch..batches_per_epoch {
                let indices = &order[batch_index * batch_size..((batch_index + 1) * batch_size).min(train_count)];
                let (train_set, _) = self.sized_sets(size);
                fill_batch(train_set, indices, &augment, &mut rng, &mut images_buffer, &mut labels_buffer);
                let count = indices.len();
                let images = Tensor::<4>::from_data(
                    TensorData::new(std::mem::take(&mut images_buffer), [count, 3, size as usize, size as usize]),
                    &self.device,
                );
                let labels = Tensor::<1, Int>::from_data(TensorData::new(std::mem::take(&mut labels_buffer), [count]), &self.device);
                last_factor = schedule::factor(stage.schedule, step_in_stage, total_steps);
                let rates = self.learning_rates(stage, last_factor);
                self.record_rates(stage, last_factor);
                // Dropout draws from the backend's generator: seeding it per step makes every step
                // depend only on (seed, step), so a resumed run draws what the original would have.
                self.device.seed(mix64(self.recipe.seed ^ mix64(self.global_step as u64)));
                // A panic inside burn (out of memory, a kernel error) must not lose the run: keep
                // the network from before the step (a cheap handle copy) and stop with a diagnostic.
                let before_step = network.clone();
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    self.step(network, &mut optimizer, images, labels, rates)
                }));
                let outcome = match outcome {
                    Ok(outcome) => outcome,
                    Err(panic) => {
                        progress.finish_and_clear();
                        let place = format!("stage `{}`, epoch {epoch}, step {}", stage.name, step_in_stage + 1);
                        return Err(StageFailure { network: before_step, stop: Stop::Failed(step_failure(&panic_text(&panic), &place, count)) });
                    }
                };
                match outcome {
                    Ok((next, loss)) => {
                        network = next;
                        loss_sum += loss * count as f64;
                        images_seen += count;
                    }
                    Err((last_good, loss)) => {
                        progress.finish_and_clear();
                        return Err(StageFailure {
                            network: last_good,
                            stop: Stop::Failed(Diagnostic::new(
                                Code::NonFiniteLoss,
                                format!(
                                    "the loss became {loss} in stage `{}`, epoch {epoch}, step {} (batch {} of the epoch)",
                                    stage.name,
                                    step_in_stage + 1,
                                    batch_index + 1
                                ),
                            )
                            .with_help("lower the stage's `lr` (try 10x smaller); the weights before this step are kept in the run folder")),
                        });
                    }
                }
                step_in_stage += 1;
                self.global_step += 1;
                progress.inc(1);
                let seconds = started.elapsed().as_secs_f64().max(1e-9);
                progress.set_message(format!("{:.0} img/s  loss {:.4}", images_seen as f64 / seconds, loss_sum / images_seen.max(1) as f64));
                if batch_index + 1 < batches_per_epoch {
                    let position = Position {
                        stage_index,
                        epoch,
                        next_batch: batch_index + 1,
                        step_in_stage,
                        global_step: self.global_step,
                        global_epoch: self.global_epoch,
                        rng_state: rng.state(),
                        loss_sum,
                        images_seen,
                    };
                    if let Err(stop) = hooks.after_step(&position, &network, &optimizer, &self.step_rates) {
                        progress.finish_and_clear();
                        return Err(StageFailure { network, stop });
                    }
                }
            }
            progress.finish_and_clear();
            let train_seconds = started.elapsed().as_secs_f64();
            let evaluation = self.evaluate(&network, size);
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
            };
            // Where the next epoch starts: past the last epoch means the stage is done.
            let next = Position {
                stage_index,
                epoch: epoch + 1,
                next_batch: 0,
                step_in_stage,
                global_step: self.global_step,
                global_epoch: self.global_epoch + 1,
                rng_state: 0,
                loss_sum: 0.0,
                images_seen: 0,
            };
            if let Err(stop) = hooks.after_epoch(&metrics, &next, &network, &optimizer, &self.step_rates) {
                return Err(StageFailure { network, stop });
            }
        }
        Ok(network)
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

    /// Loss, accuracy and confusion matrix on the valid split at `size`, in inference mode.
    pub fn evaluate(&mut self, network: &Network, size: u32) -> Evaluation {
        let classes = self.data.classes.len();
        let batch_size = self.recipe.data.batch;
        let inference = network.valid();
        let device = self.device.clone().without_autodiff();
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
        for chunk in indices.chunks(batch_size.max(1)) {
            fill_batch(valid_set, chunk, &no_augment, &mut rng, &mut images_buffer, &mut labels_buffer);
            let truth: Vec<i64> = labels_buffer.clone();
            let images = Tensor::<4>::from_data(
                TensorData::new(std::mem::take(&mut images_buffer), [chunk.len(), 3, size as usize, size as usize]),
                &device,
            );
            let labels = Tensor::<1, Int>::from_data(TensorData::new(std::mem::take(&mut labels_buffer), [chunk.len()]), &device);
            let logits = inference.forward(images);
            loss_sum += f64::from(loss_function.forward(logits.clone(), labels).into_scalar::<f32>()) * chunk.len() as f64;
            let predictions: Vec<i64> = logits.argmax(1).into_data().convert::<i64>().try_into_vec::<i64>().unwrap_or_default();
            for (truth, predicted) in truth.iter().zip(&predictions) {
                if let (Ok(truth), Ok(predicted)) = (usize::try_from(*truth), usize::try_from(*predicted)) {
                    if truth < classes && predicted < classes {
                        confusion[truth][predicted] += 1;
                    }
                }
            }
        }
        let correct: u32 = (0..classes).map(|class| confusion[class][class]).sum();
        Evaluation {
            loss: if count > 0 { loss_sum / count as f64 } else { f64::NAN },
            accuracy: if count > 0 { f64::from(correct) / count as f64 } else { f64::NAN },
            confusion,
        }
    }
}

fn progress_bar(length: usize, stage: &str, epoch: u32, epochs: u32, size: u32) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(length as u64);
    if let Ok(style) = indicatif::ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {msg}") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_prefix(format!("{stage} {epoch}/{epochs} @{size}px"));
    bar
}

/// Hooks that do nothing: training without checkpoints or output (tests, benchmarks).
pub struct NoHooks;

impl StageHooks for NoHooks {
    fn after_step(&mut self, _: &Position, _: &Network, _: &ModuleOptimizer, _: &[StepRates]) -> Result<(), Stop> {
        Ok(())
    }

    fn after_epoch(&mut self, _: &EpochMetrics, _: &Position, _: &Network, _: &ModuleOptimizer, _: &[StepRates]) -> Result<(), Stop> {
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
