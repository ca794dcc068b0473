//! `ema D`: an exponential moving average of every float tensor of the network (parameters and
//! BatchNorm running statistics, as timm's `ModelEmaV2`/`V3` average the whole state dict), updated
//! after every optimizer step. The average is what is evaluated, exported and published.
//!
//! The decay warms up as timm's `ModelEmaV3(use_warmup=True)` and TensorFlow's
//! `ExponentialMovingAverage(num_updates=…)` do: `min(D, (1 + n) / (10 + n))` at update `n`, so
//! that a few-shot run of a few dozen steps averages its training weights, not its random start.

use burn::module::{Module, ModuleMapper, ModuleVisitor, Param};
use burn::prelude::*;

use super::model::Network;

pub struct WeightAverage {
    decay: f64,
    /// The average, as an inference network (no autodiff).
    average: Network,
    /// Updates so far (drives the warm-up).
    pub updates: usize,
}

impl WeightAverage {
    /// Start the average at the network's current weights.
    pub fn new(network: &Network, decay: f64) -> Self {
        WeightAverage { decay, average: network.valid(), updates: 0 }
    }

    /// Continue an average saved in a checkpoint.
    pub fn resume(average: Network, decay: f64, updates: usize) -> Self {
        WeightAverage { decay, average: average.valid(), updates }
    }

    /// The decay of update `updates` (0-based).
    pub fn decay_at(&self, updates: usize) -> f64 {
        self.decay.min((1.0 + updates as f64) / (10.0 + updates as f64))
    }

    /// Fold the network's current weights into the average.
    pub fn update(&mut self, network: &Network) {
        let decay = self.decay_at(self.updates);
        let mut current = Flatten::default();
        network.valid().visit(&mut current);
        let mut mapper = Blend { decay, current: current.tensors.into_iter() };
        // `map` writes BatchNorm running statistics in place, into state that every `clone` of the
        // average shares: blend into a deep copy, so a kept copy (`keep best`) keeps its own.
        self.average = self.average.deep_copy().map(&mut mapper);
        self.updates += 1;
    }

    /// The averaged network (inference mode).
    pub fn network(&self) -> &Network {
        &self.average
    }

    /// A copy of the average that later updates cannot reach.
    pub fn snapshot(&self) -> Network {
        self.average.deep_copy()
    }
}

/// Every float tensor, flattened, in visiting order (the same order for two networks of one recipe).
#[derive(Default)]
struct Flatten {
    tensors: Vec<Tensor<1>>,
}

impl ModuleVisitor for Flatten {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.tensors.push(param.val().flatten::<1>(0, D - 1));
    }
}

struct Blend {
    decay: f64,
    current: std::vec::IntoIter<Tensor<1>>,
}

impl ModuleMapper for Blend {
    fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        let decay = self.decay;
        match self.current.next() {
            Some(current) => param.map(|average| {
                let shape = average.shape();
                average.mul_scalar(decay) + current.reshape(shape).mul_scalar(1.0 - decay)
            }),
            // Two networks of one recipe have the same tensors; nothing to blend means nothing changes.
            None => param,
        }
    }
}
