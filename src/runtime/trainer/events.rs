//! What a stage tells the runner as it goes (burn-train's events): after every optimizer step and
//! every epoch, with a snapshot of what a checkpoint must hold. The runner writes checkpoints and
//! metrics and answers Ctrl-C here; tests and benchmarks pass `NoHooks`.

use burn::optim::ModuleOptimizer;

use super::{EpochMetrics, Position, StepRates};
use crate::diagnostics::Diagnostic;
use crate::runtime::ema::WeightAverage;
use crate::runtime::model::Network;

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

/// What the runner does between steps and epochs: checkpoints, Ctrl-C, metrics.
pub trait StageHooks {
    fn after_step(&mut self, position: &Position, snapshot: Snapshot<'_>) -> Result<(), Stop>;
    fn after_epoch(&mut self, metrics: &EpochMetrics, next: &Position, snapshot: Snapshot<'_>) -> Result<(), Stop>;
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
