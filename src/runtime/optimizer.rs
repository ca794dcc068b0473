//! A stage's optimizer: AdamW whose β₁ the one-cycle schedule moves every step (fastai's
//! `fit_one_cycle` cycles momentum against the rate), or SGD; weight decay spares BatchNorm
//! parameters and biases unless the recipe says `wd_bn_bias` (fastai's `wd_bn_bias=False`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::module::ParamGroup;
use burn::optim::decay::WeightDecayConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamWState, AdaptiveMomentumState, LearningRate, ModuleOptimizer, SgdConfig};
use burn::prelude::*;

use crate::check::recipe::{Optimizer, OptimizerKind};
use crate::runtime::fused_adamw;

/// Every BatchNorm parameter (`gamma`, `beta`) and every bias: what fastai's `wd_bn_bias=False`
/// and timm's `param_groups_weight_decay` keep out of weight decay.
pub const NO_DECAY_PATTERN: &str = r"\.(gamma|beta|bias)$";

/// The β₁ every AdamW of a stage reads at its next step; the trainer sets it from the schedule.
#[derive(Clone, Debug)]
pub struct Momentum(Arc<AtomicU64>);

impl Momentum {
    fn new(value: f64) -> Self {
        Momentum(Arc::new(AtomicU64::new(value.to_bits())))
    }

    pub fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Ordering::Relaxed);
    }

    pub fn get(&self) -> f64 {
        f64::from_bits(self.0.load(Ordering::Relaxed))
    }
}

/// The optimizer and the handle that moves its momentum.
pub struct StageOptimizer {
    pub optimizer: ModuleOptimizer,
    pub momentum: Momentum,
}

/// A fresh optimizer for a stage. Like fastai's `freeze_to`, which clears optimizer state, every
/// stage starts with no moments: statistics gathered while a group was frozen would be stale.
pub fn build(optimizer: &Optimizer) -> StageOptimizer {
    let momentum = Momentum::new(optimizer.beta1);
    let no_decay = ParamGroup::from_regex(NO_DECAY_PATTERN).expect("NO_DECAY_PATTERN is a valid regex");
    let optimizer = match optimizer.kind {
        OptimizerKind::Adamw => {
            let with_decay = |weight_decay: f64| CyclingAdamW {
                beta_1: momentum.clone(),
                beta_2: optimizer.beta2,
                epsilon: optimizer.epsilon,
                weight_decay,
            };
            let mut module = ModuleOptimizer::from(with_decay(optimizer.weight_decay));
            if !optimizer.decay_batchnorm_and_bias {
                module = module.with_group(no_decay, with_decay(0.0), None);
            }
            module
        }
        OptimizerKind::Sgd => {
            let sgd = |weight_decay: f64| {
                let momentum = (optimizer.momentum > 0.0)
                    .then(|| MomentumConfig::new().with_momentum(optimizer.momentum).with_dampening(0.0).with_nesterov(false));
                let decay = (weight_decay > 0.0).then(|| WeightDecayConfig::new(weight_decay as f32));
                SgdConfig::new().with_momentum(momentum).with_weight_decay(decay).build()
            };
            let mut module = ModuleOptimizer::from(sgd(optimizer.weight_decay));
            if !optimizer.decay_batchnorm_and_bias {
                module = module.with_group(no_decay, sgd(0.0), None);
            }
            module
        }
    };
    StageOptimizer { optimizer, momentum }
}

/// AdamW (Loshchilov & Hutter) exactly as PyTorch's `torch.optim.AdamW` and fastai's `Adam` with
/// decoupled weight decay compute it, reading β₁ at every step so that one-cycle can move it.
/// The bias correction uses the current β₁, as both do. State is burn's `AdamWState`, so
/// checkpoints store it like any burn optimizer's.
#[derive(Clone)]
struct CyclingAdamW {
    beta_1: Momentum,
    beta_2: f64,
    epsilon: f64,
    weight_decay: f64,
}

impl burn::optim::Optimizer for CyclingAdamW {
    type State<const D: usize> = AdamWState<D>;

    fn step<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        state: Option<Self::State<D>>,
    ) -> (Tensor<D>, Option<Self::State<D>>) {
        let previous = state.map(|AdamWState { momentum }| momentum);
        let fused = fused_adamw::applies(&tensor, &grad, previous.as_ref().map(|moments| (&moments.moment_1, &moments.moment_2)));
        if !fused {
            return self.step_with_tensor_ops(lr, tensor, grad, previous);
        }
        let time = previous.as_ref().map_or(1, |moments| moments.time + 1);
        let constants = fused_adamw::Constants {
            beta_1: self.beta_1.get(),
            beta_2: self.beta_2,
            epsilon: self.epsilon,
            time: time as i32,
            learning_rate: lr,
            weight_decay: self.weight_decay,
        };
        let (tensor, moment_1, moment_2) =
            fused_adamw::step(tensor, grad, previous.map(|moments| (moments.moment_1, moments.moment_2)), constants);
        (tensor, Some(AdamWState { momentum: AdaptiveMomentumState { time, moment_1, moment_2, max_moment_2: None } }))
    }

    fn to_device<const D: usize>(state: Self::State<D>, device: &Device) -> Self::State<D> {
        let AdamWState { momentum } = state;
        AdamWState {
            momentum: AdaptiveMomentumState {
                time: momentum.time,
                moment_1: momentum.moment_1.to_device(device),
                moment_2: momentum.moment_2.to_device(device),
                max_moment_2: momentum.max_moment_2.map(|moment| moment.to_device(device)),
            },
        }
    }
}

impl CyclingAdamW {
    /// The step as tensor operations: every backend the fused op does not cover (CUDA, f16), and
    /// the reference the fused op is tested against.
    fn step_with_tensor_ops<const D: usize>(
        &self,
        lr: LearningRate,
        tensor: Tensor<D>,
        grad: Tensor<D>,
        previous: Option<AdaptiveMomentumState<D>>,
    ) -> (Tensor<D>, Option<AdamWState<D>>) {
        let beta_1 = self.beta_1.get();
        let beta_2 = self.beta_2;
        let moments = match previous {
            Some(momentum) => AdaptiveMomentumState {
                time: momentum.time + 1,
                moment_1: momentum.moment_1.mul_scalar(beta_1).add(grad.clone().mul_scalar(1.0 - beta_1)),
                moment_2: momentum.moment_2.mul_scalar(beta_2).add(grad.square().mul_scalar(1.0 - beta_2)),
                max_moment_2: None,
            },
            None => AdaptiveMomentumState {
                time: 1,
                moment_1: grad.clone().mul_scalar(1.0 - beta_1),
                moment_2: grad.square().mul_scalar(1.0 - beta_2),
                max_moment_2: None,
            },
        };
        let time = moments.time as i32;
        let corrected_1 = moments.moment_1.clone().div_scalar(1.0 - beta_1.powi(time));
        let corrected_2 = moments.moment_2.clone().div_scalar(1.0 - beta_2.powi(time));
        let delta = corrected_1.div(corrected_2.sqrt().add_scalar(self.epsilon));
        let decay = lr * self.weight_decay;
        let decayed = if decay == 0.0 { tensor } else { tensor.mul_scalar(1.0 - decay) };
        (decayed - delta.mul_scalar(lr), Some(AdamWState { momentum: moments }))
    }
}

#[cfg(test)]
mod tests {
    use burn::optim::Optimizer as _;

    use super::*;

    fn values(tensor: Tensor<1>) -> Vec<f64> {
        tensor.into_data().convert::<f64>().try_into_vec::<f64>().unwrap()
    }

    /// Two steps of PyTorch's AdamW written out by hand, β₁ changing between them as one-cycle
    /// moves it: m ← β₁m + (1−β₁)g, v ← β₂v + (1−β₂)g², p ← p(1 − lr·wd) − lr·(m/(1−β₁ᵗ)) / (√(v/(1−β₂ᵗ)) + ε).
    #[test]
    fn two_steps_match_pytorch_adamw_with_a_moving_beta1() {
        let device = Device::flex();
        let momentum = Momentum::new(0.95);
        let optimizer = CyclingAdamW { beta_1: momentum.clone(), beta_2: 0.99, epsilon: 1e-5, weight_decay: 0.01 };
        let start = [0.5f64, -1.0, 2.0];
        let gradients = [[0.1f64, -0.2, 0.3], [0.05, 0.1, -0.4]];
        let tensor = |values: &[f64]| Tensor::<1>::from_data(TensorData::new(values.iter().map(|v| *v as f32).collect::<Vec<_>>(), [values.len()]), &device);
        let (lr, betas) = (0.01, [0.95, 0.85]);
        let (after_one, state) = optimizer.step(lr, tensor(&start), tensor(&gradients[0]), None);
        momentum.set(betas[1]);
        let (after_two, _) = optimizer.step(lr, after_one, tensor(&gradients[1]), state);

        let mut expected = start.to_vec();
        let (mut m, mut v) = ([0.0f64; 3], [0.0f64; 3]);
        for (time, (gradient, beta_1)) in gradients.iter().zip(betas).enumerate() {
            let t = time as i32 + 1;
            for i in 0..3 {
                m[i] = beta_1 * m[i] + (1.0 - beta_1) * gradient[i];
                v[i] = 0.99 * v[i] + 0.01 * gradient[i] * gradient[i];
                let m_hat = m[i] / (1.0 - beta_1.powi(t));
                let v_hat = v[i] / (1.0 - 0.99f64.powi(t));
                expected[i] = expected[i] * (1.0 - lr * 0.01) - lr * m_hat / (v_hat.sqrt() + 1e-5);
            }
        }
        for (got, want) in values(after_two).iter().zip(&expected) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }

    /// The fused flex op (what training runs on the CPU) against the tensor-op formula (what every
    /// other backend runs): three steps, β₁ moving, with and without decay, a tensor of several
    /// parallel chunks.
    #[test]
    fn the_fused_step_matches_the_tensor_op_step() {
        let device = Device::flex();
        let momentum = Momentum::new(0.95);
        for weight_decay in [0.0, 0.05] {
            let optimizer = CyclingAdamW { beta_1: momentum.clone(), beta_2: 0.99, epsilon: 1e-5, weight_decay };
            let shape = [64, 32, 3, 3];
            let parameter = crate::runtime::reference_inputs::pseudo_random(shape, 1, &device);
            assert!(fused_adamw::applies(&parameter, &parameter, None), "flex f32 takes the fused op");
            let (mut fused, mut fused_state) = (parameter.clone(), None);
            let (mut reference, mut reference_state) = (parameter, None);
            for (step, beta_1) in [0.95, 0.9, 0.85].into_iter().enumerate() {
                momentum.set(beta_1);
                let gradient = crate::runtime::reference_inputs::pseudo_random(shape, 10 + step as u64, &device);
                (fused, fused_state) = optimizer.step(0.01, fused, gradient.clone(), fused_state);
                let previous = reference_state.map(|AdamWState { momentum }| momentum);
                (reference, reference_state) = optimizer.step_with_tensor_ops(0.01, reference, gradient, previous);
            }
            let difference = (fused.clone() - reference.clone()).abs().max().into_scalar::<f32>();
            let moved = (reference - crate::runtime::reference_inputs::pseudo_random(shape, 1, &device)).abs().max().into_scalar::<f32>();
            assert!(difference <= 1e-6 && moved > 1e-3, "decay {weight_decay}: fused and tensor ops differ by {difference} (moved {moved})");
            let (fused_moments, reference_moments) = (fused_state.unwrap().momentum, reference_state.unwrap().momentum);
            assert_eq!(fused_moments.time, 3);
            assert_eq!(reference_moments.time, 3);
            for (a, b) in [(fused_moments.moment_1, reference_moments.moment_1), (fused_moments.moment_2, reference_moments.moment_2)] {
                let difference = (a - b).abs().max().into_scalar::<f32>();
                assert!(difference <= 1e-7, "decay {weight_decay}: moments differ by {difference}");
            }
        }
    }

    #[test]
    fn batchnorm_parameters_and_biases_are_the_no_decay_group() {
        let pattern = matcher(NO_DECAY_PATTERN);
        for path in ["backbone.bn1.gamma", "backbone.layer2.0.downsample.bn.beta", "head.norms.0.gamma", "head.linears.1.bias"] {
            assert!(pattern(path), "{path}");
        }
        for path in ["backbone.conv1.weight", "head.linears.0.weight", "backbone.bn1.running_mean"] {
            assert!(!pattern(path), "{path}");
        }
    }

    /// A matcher with the semantics burn gives the pattern (`ParamGroup::from_regex`).
    fn matcher(pattern: &str) -> impl Fn(&str) -> bool {
        let group = ParamGroup::from_regex(pattern).unwrap();
        move |path: &str| group.matches(&burn::module::ParamId::new(), Some(path))
    }
}
