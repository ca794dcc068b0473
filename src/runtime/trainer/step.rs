//! One optimizer step: `accumulate` batches forward and backward, their gradients summed by
//! batch size, then the optimizer. A non-finite loss or a panic inside burn (out of memory, a
//! kernel error) stops the stage with a diagnostic naming the step, and the network from before
//! the step is what the run keeps.

use std::ops::Range;

use burn::optim::GradientsAccumulator;

use super::stage::StageRun;
use super::{StageFailure, Stop, Trainer};
use crate::diagnostics::{Code, Diagnostic};
use crate::data::{SplitMix64, mix64};
use crate::runtime::model::Network;
use crate::runtime::schedule;

/// What one step trained on: the summed loss (per image) and how many images.
pub(super) struct StepResult {
    pub network: Network,
    pub loss_sum: f64,
    pub images: usize,
}

impl Trainer<'_> {
    /// The optimizer step over `batches` (indices into the stage's batch ranges) of the epoch's
    /// `order`, at image side `size` and schedule factor `factor`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn optimizer_step(
        &mut self,
        network: Network,
        run: &mut StageRun<'_>,
        epoch: u32,
        size: u32,
        order: &[usize],
        batches: Range<usize>,
        rng: &mut SplitMix64,
        factor: f64,
    ) -> Result<StepResult, StageFailure> {
        let stage = run.stage;
        let group_images: usize = run.batches[batches.clone()].iter().map(|range| range.len()).sum();
        run.optimizer.momentum.set(schedule::momentum(stage, run.step_in_stage, run.total_steps));
        let rates = self.learning_rates(stage, factor);
        self.record_rates(stage, factor);
        // Dropout draws from the backend's generator: seeding it per step makes every step
        // depend only on (seed, step), so a resumed run draws what the original would have.
        self.device.seed(mix64(self.recipe.seed ^ mix64(self.global_step as u64)));
        let step_number = run.step_in_stage + 1;
        let place = |batch: usize| format!("stage `{}`, epoch {epoch}, step {step_number} (batch {} of the epoch)", stage.name, batch + 1);
        let mut accumulator = GradientsAccumulator::<Network>::new();
        let mut loss_sum = 0.0;
        for batch_index in batches.clone() {
            let indices = &order[run.batches[batch_index].clone()];
            let batch = self.training_batch(size, indices, rng);
            let weight = indices.len() as f64 / group_images as f64;
            let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.gradients(&network, batch, weight)));
            match outcome {
                Ok(Ok((gradients, loss))) => {
                    accumulator.accumulate(&network, gradients);
                    loss_sum += loss * indices.len() as f64;
                }
                Ok(Err(loss)) => {
                    let diagnostic = Diagnostic::new(Code::NonFiniteLoss, format!("the loss became {loss} in {}", place(batch_index)))
                        .with_help("lower the stage's `lr` (try 10x smaller); the weights before this step are kept in the run folder");
                    return Err(StageFailure { network, stop: Stop::Failed(diagnostic) });
                }
                Err(panic) => {
                    let failure = step_failure(&panic_text(&panic), &place(batch_index), indices.len());
                    return Err(StageFailure { network, stop: Stop::Failed(failure) });
                }
            }
        }
        let before_step = network.clone();
        let gradients = accumulator.grads();
        let stepped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run.optimizer.optimizer.step(rates, network, gradients)));
        let network = match stepped {
            Ok(next) => next,
            Err(panic) => {
                let failure = step_failure(&panic_text(&panic), &place(batches.end - 1), group_images);
                return Err(StageFailure { network: before_step, stop: Stop::Failed(failure) });
            }
        };
        if let Some(average) = &mut self.average {
            average.update(&network);
        }
        run.step_in_stage += 1;
        self.global_step += 1;
        Ok(StepResult { network, loss_sum, images: group_images })
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