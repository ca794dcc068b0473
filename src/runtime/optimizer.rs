use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWConfig, ModuleOptimizer, SgdConfig};

use crate::check::recipe::{Optimizer, OptimizerKind};

/// A fresh optimizer for a stage. Like fastai's `freeze_to`, which clears optimizer state, every
/// stage starts with no moments: statistics gathered while a group was frozen would be stale.
pub fn build(optimizer: &Optimizer) -> ModuleOptimizer {
    match optimizer.kind {
        OptimizerKind::Adamw => AdamWConfig::new()
            .with_beta_1(optimizer.beta1 as f32)
            .with_beta_2(optimizer.beta2 as f32)
            .with_epsilon(optimizer.epsilon as f32)
            .with_weight_decay(optimizer.weight_decay as f32)
            .init(),
        OptimizerKind::Sgd => {
            let momentum = (optimizer.momentum > 0.0)
                .then(|| MomentumConfig::new().with_momentum(optimizer.momentum).with_dampening(0.0).with_nesterov(false));
            let decay = (optimizer.weight_decay > 0.0).then(|| WeightDecayConfig::new(optimizer.weight_decay as f32));
            SgdConfig::new().with_momentum(momentum).with_weight_decay(decay).init()
        }
    }
}
