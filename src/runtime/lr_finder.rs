//! `tlrun lr-find`: fastai's LR range test (Smith 2015, fastai's `Learner.lr_find`). The stage's
//! model, data and frozen groups train for up to `steps` batches while the base rate grows
//! exponentially from `start` to `end` (each group keeps its multiplier); the loss is smoothed
//! as fastai's Recorder smooths it, the sweep stops when it diverges, and fastai's `valley` and
//! `steep` suggestions are read off the curve. Nothing is saved: the weights are thrown away.

use std::path::Path;

use std::cell::OnceCell;

use super::resume_point::Start;
use super::{device, interpreter, optimizer, program};
use crate::data::{SplitMix64, epoch_order};
use crate::check::Runnable;
use crate::diagnostics::{Code, Diagnostic};
use crate::zoo::Zoo;

pub struct SweepOptions {
    pub stage: usize,
    pub start: f64,
    pub end: f64,
    pub steps: usize,
    pub device: String,
}

/// The recorded sweep and what it suggests.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    pub rates: Vec<f64>,
    /// Smoothed, debiased losses (fastai's `smooth_loss`), one per rate.
    pub losses: Vec<f64>,
    pub diverged: bool,
    pub valley: Option<f64>,
    pub steep: Option<f64>,
}

/// fastai's Recorder: an exponential moving average with β 0.98, debiased.
const SMOOTHING: f64 = 0.98;
/// fastai stops when the smoothed loss exceeds four times the best one.
const DIVERGENCE: f64 = 4.0;

/// Run the graph up to the stage's node, as a run would (the earlier stages train, nothing is
/// written; `program::up_to`), so that the sweep sees the network that stage starts from; then
/// sweep.
pub fn sweep(recipe: &Runnable, recipe_path: &Path, pretrained: Option<&Path>, zoo: &Zoo, options: &SweepOptions) -> Result<Sweep, Diagnostic> {
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let device = device::parse_device(&options.device)?.autodiff();
    let graph = crate::plan::build_graph(recipe);
    let program = program::compile(&graph, recipe, &base, pretrained, &Start::Fresh);
    let stage_node = graph.stage_node(options.stage).ok_or_else(|| Diagnostic::new(Code::StepFailed, format!("the recipe has no stage {}", options.stage + 1)))?;
    let data = OnceCell::new();
    let prepared = interpreter::prepare(recipe, zoo, base, device.clone(), &program::up_to(&program, &graph, stage_node, false), &data)?;
    let (Some(network), Some(mut trainer)) = (prepared.network, prepared.trainer) else {
        return Err(Diagnostic::new(Code::StepFailed, "lr-find: the graph before the stage built no network"));
    };
    let data = trainer.data;
    let stage = &recipe.stages[options.stage];
    let mut network = trainer.configure(network, stage)?;
    let mut stage_optimizer = optimizer::build(&stage.optimizer);
    // fastai's lr_find keeps the optimizer's own momentum; no one-cycle.
    stage_optimizer.momentum.set(stage.optimizer.beta1);
    let size = stage.sizes.first().copied().unwrap_or(recipe.data.size);
    let count = data.train.labels.len();
    let batches = crate::data_counts::batch_ranges(count, recipe.data.batch);
    if batches.is_empty() {
        return Err(Diagnostic::new(Code::EmptyClass, "lr-find needs training images, and the train split is empty"));
    }
    let steps = options.steps.max(2);
    let (mut rates, mut losses) = (Vec::with_capacity(steps), Vec::with_capacity(steps));
    let (mut average, mut best) = (0.0, f64::INFINITY);
    let mut diverged = false;
    let mut rng = SplitMix64::for_stream(recipe.seed, 0x4C52_4649);
    let mut order = Vec::new();
    for step in 0..steps {
        let epoch = step / batches.len();
        if step % batches.len() == 0 {
            order = epoch_order(count, recipe.seed, 0x4C52_0000 + epoch as u64);
        }
        let rate = options.start * (options.end / options.start).powf(step as f64 / (steps - 1) as f64);
        let batch = trainer.training_batch(size, &order[batches[step % batches.len()].clone()], &mut rng);
        let rates_now = trainer.learning_rates_from(stage, rate, 1.0);
        device.seed(crate::data::mix64(recipe.seed ^ step as u64));
        let loss = match trainer.step(network, &mut stage_optimizer.optimizer, batch, rates_now) {
            Ok((next, loss)) => {
                network = next;
                loss
            }
            Err((last, _)) => {
                network = last;
                diverged = true;
                break;
            }
        };
        average = SMOOTHING * average + (1.0 - SMOOTHING) * loss;
        let smooth = average / (1.0 - SMOOTHING.powi(step as i32 + 1));
        rates.push(rate);
        losses.push(smooth);
        if smooth < best {
            best = smooth;
        }
        if smooth > DIVERGENCE * best || smooth.is_nan() {
            diverged = true;
            break;
        }
    }
    drop(network);
    let (valley, steep) = suggestions(&rates, &losses, steps);
    Ok(Sweep { rates, losses, diverged, valley, steep })
}

/// fastai reads its suggestions off the sweep without its first tenth and its last five points.
pub fn suggestions(rates: &[f64], losses: &[f64], planned_steps: usize) -> (Option<f64>, Option<f64>) {
    let start = planned_steps / 10;
    let end = rates.len().saturating_sub(5);
    if end <= start + 1 {
        return (None, None);
    }
    let (rates, losses) = (&rates[start..end], &losses[start..end]);
    (Some(valley(rates, losses)), Some(steep(rates, losses)))
}

/// fastai's `valley` (fastai/callback/schedule.py), line for line: the longest decreasing
/// subsequence of the losses, then the point `int(len/3) + int(len/6)` along it.
pub fn valley(rates: &[f64], losses: &[f64]) -> f64 {
    let n = losses.len();
    // Signed, as in Python: a run that starts at the first point gives max_start = -1.
    let (mut max_start, mut max_end) = (0isize, 0usize);
    let mut lengths = vec![1usize; n];
    for i in 1..n {
        for j in 0..i {
            if losses[i] < losses[j] && lengths[i] < lengths[j] + 1 {
                lengths[i] = lengths[j] + 1;
            }
            if lengths[max_end] < lengths[i] {
                max_end = i;
                max_start = max_end as isize - lengths[max_end] as isize;
            }
        }
    }
    let sections = (max_end as isize - max_start) as f64 / 3.0;
    let index = max_start + sections as isize + (sections / 2.0) as isize;
    rates[index.clamp(0, n as isize - 1) as usize]
}

/// fastai's `steep`: the rate where the loss falls fastest against log(rate).
pub fn steep(rates: &[f64], losses: &[f64]) -> f64 {
    let mut best = (f64::INFINITY, rates[0]);
    for i in 0..rates.len() - 1 {
        let slope = (losses[i + 1] - losses[i]) / (rates[i + 1].ln() - rates[i].ln());
        if slope < best.0 {
            best = (slope, rates[i]);
        }
    }
    best.1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected indices worked by hand through fastai's `valley` and `steep` code
    /// (fastai/callback/schedule.py); the steps are in the comments.
    #[test]
    fn valley_and_steep_match_fastai_on_a_typical_curve() {
        let rates: Vec<f64> = (0..20).map(|i| 1e-5 * 10f64.powf(i as f64 / 4.0)).collect();
        let losses = [2.3, 2.3, 2.29, 2.27, 2.2, 2.0, 1.7, 1.3, 1.0, 0.8, 0.7, 0.65, 0.66, 0.7, 0.9, 1.3, 2.0, 3.5, 6.0, 9.0];
        // Decreasing run 0..11 (12 points, lds 11 at index 11): max_start = 11 - 11 = 0, sections 11/3,
        // index 0 + 3 + 1 = 4.
        assert_eq!(valley(&rates, &losses), rates[4]);
        // Steepest fall per log step: 1.7 → 1.3 between indices 6 and 7.
        assert_eq!(steep(&rates, &losses), rates[6]);
    }

    #[test]
    fn suggestions_skip_the_ends_like_fastai() {
        let rates: Vec<f64> = (0..100).map(|i| 1e-7 * 1e8f64.powf(i as f64 / 99.0)).collect();
        let losses: Vec<f64> = (0..100).map(|i| if i < 60 { 2.0 - i as f64 * 0.02 } else { 0.8 + (i - 60) as f64 * 0.1 }).collect();
        let (valley, steep) = suggestions(&rates, &losses, 100);
        assert!(valley.is_some_and(|rate| rate > rates[10] && rate < rates[60]));
        assert!(steep.is_some());
        assert_eq!(suggestions(&rates[..12], &losses[..12], 100), (None, None));
    }
}
