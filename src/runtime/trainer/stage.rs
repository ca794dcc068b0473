//! One stage: the recipe's freezing and groups applied, its epochs run (from a checkpoint inside
//! it when resuming), and under `keep best` the best epoch's weights restored at its end.

use std::ops::Range;

use burn::module::Module;

use super::{StageFailure, StageHooks, StageOutcome, StageResume, Stop, Trainer};
use crate::check::recipe::Stage;
use crate::diagnostics::{Code, Diagnostic};
use crate::runtime::best_epoch::BestEpoch;
use crate::runtime::ema::WeightAverage;
use crate::runtime::model::Network;
use crate::runtime::optimizer::{self, StageOptimizer};

/// A stage's state across its epochs: with the position, what a checkpoint inside it holds.
pub(super) struct StageRun<'s> {
    pub index: usize,
    pub stage: &'s Stage,
    /// Every image once per epoch: the partial last batch trains too (see data_counts).
    pub batches: Vec<Range<usize>>,
    /// Batches per optimizer step.
    pub accumulate: usize,
    pub total_steps: usize,
    pub optimizer: StageOptimizer,
    pub step_in_stage: usize,
    /// The best epoch so far (`keep best`, early stopping), and its weights under `keep best`.
    pub best: BestEpoch,
    pub best_network: Option<Network>,
}

impl Trainer<'_> {
    /// Run stage `stage_index`, resolved as `stage` (the program's operand), from its start, or from `resume` (a checkpoint inside it), calling `hooks`
    /// after every optimizer step and every epoch.
    pub fn run_stage(
        &mut self,
        network: Network,
        stage_index: usize,
        stage: &Stage,
        resume: Option<StageResume>,
        hooks: &mut dyn StageHooks,
    ) -> Result<StageOutcome, StageFailure> {
        if let Err(diagnostic) = self.select_groups(&network, stage) {
            return Err(StageFailure { network, stop: Stop::Failed(diagnostic) });
        }
        let mut network = self.freeze(network, stage);
        let images = self.data.train.labels.len();
        let batches = crate::data_counts::batch_ranges(images, self.recipe.data.batch);
        // TL2011 as lint gives it, on the batches this run forms (`corrupt skip` can leave one image).
        if batches.iter().any(|batch| batch.len() == 1) && self.recipe.stage_trains_batchnorm(stage) {
            let diagnostic = Diagnostic::new(
                Code::BatchOfOne,
                format!("stage `{}` would train BatchNorm on a batch of one image ({images} training image(s) at batch {})", stage.name, self.recipe.data.batch),
            )
            .with_help("BatchNorm normalises over the batch, so one image trains on its bias: use `batch 2` or more, or add training images");
            return Err(StageFailure { network, stop: Stop::Failed(diagnostic) });
        }
        let accumulate = stage.accumulate.max(1);
        let total_steps = batches.len().div_ceil(accumulate) * stage.epochs as usize;
        if let (Some(decay), None) = (self.recipe.ema, &self.average) {
            self.average = Some(WeightAverage::new(&network, decay));
        }
        let fresh = |optimizer, step_in_stage, best, best_network| StageRun {
            index: stage_index,
            stage,
            batches: batches.clone(),
            accumulate,
            total_steps,
            optimizer,
            step_in_stage,
            best,
            best_network,
        };
        let (mut run, first_epoch, mut resume_at) = match resume {
            Some(StageResume { position, optimizer, best: best_network }) => {
                self.global_step = position.global_step;
                self.global_epoch = position.global_epoch - 1;
                (fresh(optimizer, position.step_in_stage, position.best.clone(), best_network), position.epoch, Some(position))
            }
            None => (fresh(optimizer::build(&stage.optimizer), 0, BestEpoch::default(), None), 1, None),
        };

        let mut stopped_after = None;
        for epoch in first_epoch..=stage.epochs {
            let trained = self.train_epoch(network, &mut run, epoch, resume_at.take(), hooks)?;
            let stops = self.finish_epoch(&trained, &mut run, epoch, hooks);
            network = trained.network;
            match stops {
                Err(stop) => return Err(StageFailure { network, stop }),
                Ok(true) => {
                    stopped_after = Some(epoch);
                    break;
                }
                Ok(false) => {}
            }
        }
        let restored_epoch = match (stage.keep_best.is_some(), run.best_network.take(), run.best.epoch) {
            (true, Some(best_weights), Some(epoch)) => {
                network = self.restore_best(network, best_weights, stage)?;
                Some(epoch)
            }
            _ => None,
        };
        Ok(StageOutcome { network, restored_epoch, stopped_after })
    }

    /// `keep best`: the stage ends with its best epoch's weights, and the moving average restarts
    /// from them so that what is evaluated next is them.
    fn restore_best(&mut self, network: Network, best_weights: Network, stage: &Stage) -> Result<Network, StageFailure> {
        let last = network.clone();
        let network = network.try_load_record(best_weights.clone().into_record()).map_err(|error| StageFailure {
            network: last,
            stop: Stop::Failed(Diagnostic::new(Code::StepFailed, format!("cannot restore the best epoch of stage `{}`: {error:?}", stage.name))),
        })?;
        let updates = self.average.as_ref().map(|average| average.updates);
        if let (Some(updates), Some(decay)) = (updates, self.recipe.ema) {
            self.average = Some(WeightAverage::resume(best_weights, decay, updates));
        }
        Ok(network)
    }
}
