//! One epoch: its optimizer steps over the training images in the epoch's order (from the middle
//! when a checkpoint was written there), then the evaluation, the metrics and the `keep best` /
//! early-stopping verdict.

use std::time::Instant;

use super::stage::StageRun;
use super::{EpochMetrics, Position, StageFailure, StageHooks, Stop, Trainer, progress_bar};
use crate::data::{SplitMix64, epoch_order};
use crate::runtime::model::Network;
use crate::runtime::schedule;

/// The training half of an epoch, done.
pub(super) struct TrainedEpoch {
    pub network: Network,
    pub size: u32,
    pub loss_sum: f64,
    pub images_seen: usize,
    /// The schedule factor of the epoch's last step (the rates its metrics report).
    pub last_factor: f64,
    pub started: Instant,
    pub train_seconds: f64,
}

impl Trainer<'_> {
    /// Train epoch `epoch` of the stage: from its start, or from `resume_at` inside it. `hooks`
    /// hear of every step but the epoch's last (the epoch's end covers that one).
    pub(super) fn train_epoch(
        &mut self,
        network: Network,
        run: &mut StageRun<'_>,
        epoch: u32,
        resume_at: Option<Position>,
        hooks: &mut dyn StageHooks,
    ) -> Result<TrainedEpoch, StageFailure> {
        self.global_epoch += 1;
        let stage = run.stage;
        let size = stage.sizes[(epoch - 1) as usize];
        let started = Instant::now();
        let order = epoch_order(self.data.train.labels.len(), self.recipe.seed, u64::from(self.global_epoch));
        let (mut rng, first_batch, mut loss_sum, mut images_seen) = match resume_at {
            Some(position) if position.next_batch > 0 => {
                (SplitMix64::new(position.rng_state), position.next_batch, position.loss_sum, position.images_seen)
            }
            _ => (SplitMix64::for_stream(self.recipe.seed, u64::from(self.global_epoch)), 0, 0.0, 0),
        };
        let mut last_factor = schedule::factor(stage, run.step_in_stage.saturating_sub(1), run.total_steps);
        let progress = progress_bar(run.batches.len(), &format!("{} {epoch}/{} @{size}px", stage.name, stage.epochs));
        progress.set_position(first_batch as u64);
        let mut network = network;
        // Optimizer steps take `accumulate` batches each; a checkpoint always falls between steps.
        let mut group_start = first_batch;
        while group_start < run.batches.len() {
            let group_end = (group_start + run.accumulate).min(run.batches.len());
            last_factor = schedule::factor(stage, run.step_in_stage, run.total_steps);
            let step = self.optimizer_step(network, run, epoch, size, &order, group_start..group_end, &mut rng, last_factor);
            let step = step.inspect_err(|_| progress.finish_and_clear())?;
            network = step.network;
            loss_sum += step.loss_sum;
            images_seen += step.images;
            progress.inc((group_end - group_start) as u64);
            let seconds = started.elapsed().as_secs_f64().max(1e-9);
            progress.set_message(format!("{:.0} img/s  loss {:.4}", images_seen as f64 / seconds, loss_sum / images_seen.max(1) as f64));
            group_start = group_end;
            if group_start < run.batches.len() {
                let position = Position {
                    stage_index: run.index,
                    epoch,
                    next_batch: group_start,
                    step_in_stage: run.step_in_stage,
                    global_step: self.global_step,
                    global_epoch: self.global_epoch,
                    rng_state: rng.state(),
                    loss_sum,
                    images_seen,
                    best: run.best.clone(),
                };
                if let Err(stop) = hooks.after_step(&position, self.snapshot(&network, &run.optimizer, run.best_network.as_ref())) {
                    progress.finish_and_clear();
                    return Err(StageFailure { network, stop });
                }
            }
        }
        progress.finish_and_clear();
        let train_seconds = started.elapsed().as_secs_f64();
        Ok(TrainedEpoch { network, size, loss_sum, images_seen, last_factor, started, train_seconds })
    }

    /// The epoch's end: evaluate (the moving average under `ema`), let `keep best` and early
    /// stopping judge it, and hand the metrics and a checkpoint to `hooks`. `Ok(true)` when the
    /// stage stops early after this epoch.
    pub(super) fn finish_epoch(&mut self, trained: &TrainedEpoch, run: &mut StageRun<'_>, epoch: u32, hooks: &mut dyn StageHooks) -> Result<bool, Stop> {
        let stage = run.stage;
        let last_stage = run.index + 1 == self.recipe.stages.len();
        let due = self.recipe.data.valid_every.due(epoch, stage.epochs, last_stage);
        // `valid every …`: an epoch without an evaluation has no valid figures (NaN) and no verdict
        // (the checker keeps `keep best` and early stopping to runs that evaluate every epoch).
        let (evaluation, verdict) = if due {
            let evaluated = self.evaluated(&trained.network);
            let evaluation = self.evaluate(&evaluated, trained.size, false);
            let verdict = run.best.observe(stage, epoch, evaluation.accuracy, evaluation.loss);
            // The best weights are the evaluated ones: the moving average under `ema`.
            if verdict.improved && stage.keep_best.is_some() {
                run.best_network = Some(evaluated);
            }
            (evaluation, verdict)
        } else {
            (super::Evaluation { loss: f64::NAN, accuracy: f64::NAN, confusion: Vec::new() }, Default::default())
        };
        let metrics = EpochMetrics {
            stage: stage.name.clone(),
            stage_index: run.index,
            epoch,
            global_epoch: self.global_epoch,
            size: trained.size,
            learning_rates: self
                .recipe
                .groups
                .iter()
                .enumerate()
                .filter(|(index, _)| stage.trained[*index])
                .map(|(index, group)| (group.name.clone(), stage.rate(index, stage.base_lr, trained.last_factor)))
                .collect(),
            train_loss: trained.loss_sum / trained.images_seen.max(1) as f64,
            valid_loss: evaluation.loss,
            valid_accuracy: evaluation.accuracy,
            train_images_per_second: trained.images_seen as f64 / trained.train_seconds.max(1e-9),
            seconds: trained.started.elapsed().as_secs_f64(),
            restored: false,
            stopped_early: verdict.stop,
        };
        // Where the next epoch starts: past the last epoch (or an early stop) means the stage is done.
        let next = Position {
            stage_index: run.index,
            epoch: if verdict.stop { stage.epochs + 1 } else { epoch + 1 },
            next_batch: 0,
            step_in_stage: run.step_in_stage,
            global_step: self.global_step,
            global_epoch: self.global_epoch + 1,
            rng_state: 0,
            loss_sum: 0.0,
            images_seen: 0,
            best: run.best.clone(),
        };
        hooks.after_epoch(&metrics, &next, self.snapshot(&trained.network, &run.optimizer, run.best_network.as_ref()))?;
        Ok(verdict.stop)
    }
}
