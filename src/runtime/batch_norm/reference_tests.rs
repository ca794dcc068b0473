//! tlrun's fused batch norm against burn's `BatchNorm` on flex: outputs, the input, γ and β
//! gradients and the running mean, to 1e-4 relative, in training, frozen and evaluation; the
//! running variance against PyTorch's rule (the unbiased batch variance).

use burn::module::Module;
use burn::nn::{BatchNorm, BatchNormConfig};
use burn::prelude::*;

use super::{forward, forward_relu};
use crate::runtime::kernel_choice::runs_tlrun_kernels;
use crate::runtime::reference_inputs::{self, relative_error};

/// Far from zero (in [2, 8)), so the variance is computed from large values.
fn pseudo_random(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
    reference_inputs::pseudo_random(shape, seed, device).mul_scalar(3.0).add_scalar(5.0)
}

/// A layer with non-trivial γ, β and running statistics (one training step of burn's). A new one
/// for each run: clones of a layer share their running statistics.
fn layer(channels: usize, device: &Device) -> BatchNorm {
    let norm = BatchNormConfig::new(channels).init(device);
    let norm = BatchNorm {
        gamma: burn::module::Param::from_tensor(Tensor::arange(0..channels as i64, device).float().mul_scalar(0.3).add_scalar(0.5)),
        beta: burn::module::Param::from_tensor(Tensor::arange(0..channels as i64, device).float().mul_scalar(-0.2)),
        ..norm
    };
    let _ = norm.forward(pseudo_random([4, channels, 3, 3], 99, &device.clone().autodiff()));
    // burn's `value()` may lag one update behind; settle it, so every run starts from the same.
    let _ = (norm.running_mean.value_sync(), norm.running_var.value_sync());
    norm
}

struct Outcome {
    y: Tensor<4>,
    dx: Option<Tensor<4>>,
    dgamma: Option<Tensor<1>>,
    dbeta: Option<Tensor<1>>,
    running: (Tensor<1>, Tensor<1>),
}

/// `relu`: the batch norm followed by a ReLU (fused: `forward_relu`; burn: `relu(forward)`).
fn run_with(norm: &BatchNorm, fused: bool, autodiff: bool, relu: bool) -> Outcome {
    let device = if autodiff { Device::flex().autodiff() } else { Device::flex() };
    let norm = norm.clone().to_device(&device);
    let x = pseudo_random([3, 4, 5, 7], 1, &device);
    let x = if autodiff { x.require_grad() } else { x };
    assert!(runs_tlrun_kernels(&x));
    let y = match (fused, relu) {
        (true, false) => forward(&norm, x.clone()),
        (true, true) => forward_relu(&norm, x.clone()),
        (false, false) => norm.forward(x.clone()),
        (false, true) => burn::tensor::activation::relu(norm.forward(x.clone())),
    };
    let running = (norm.running_mean.value_sync().to_device(&Device::flex()), norm.running_var.value_sync().to_device(&Device::flex()));
    if !autodiff {
        return Outcome { y, dx: None, dgamma: None, dbeta: None, running };
    }
    let r = pseudo_random(y.dims(), 2, &device);
    let grads = (y.clone() * r).sum().backward();
    Outcome {
        dx: x.grad(&grads),
        dgamma: norm.gamma.val().grad(&grads),
        dbeta: norm.beta.val().grad(&grads),
        y: y.inner(),
        running,
    }
}

fn run(norm: &BatchNorm, fused: bool, autodiff: bool) -> Outcome {
    run_with(norm, fused, autodiff, false)
}

fn assert_same(got: Outcome, expected: Outcome, what: &str) {
    assert!(relative_error(got.y, expected.y) <= 1e-4, "{what}: output");
    match (got.dx, expected.dx) {
        (Some(a), Some(b)) => assert!(relative_error(a, b) <= 1e-4, "{what}: input gradient"),
        (a, b) => assert_eq!(a.is_some(), b.is_some(), "{what}: input gradient presence"),
    }
    match (got.dgamma, expected.dgamma) {
        (Some(a), Some(b)) => assert!(relative_error(a, b) <= 1e-4, "{what}: γ gradient"),
        (a, b) => assert_eq!(a.is_some(), b.is_some(), "{what}: γ gradient presence"),
    }
    match (got.dbeta, expected.dbeta) {
        (Some(a), Some(b)) => assert!(relative_error(a, b) <= 1e-4, "{what}: β gradient"),
        (a, b) => assert_eq!(a.is_some(), b.is_some(), "{what}: β gradient presence"),
    }
    assert!(relative_error(got.running.0.clone(), expected.running.0.clone()) <= 1e-4, "{what}: running mean {} vs {}", got.running.0, expected.running.0);
}

#[test]
fn training_matches_burn() {
    assert_same(run(&layer(4, &Device::flex()), true, true), run(&layer(4, &Device::flex()), false, true), "training");
}

#[test]
fn the_running_variance_takes_the_unbiased_batch_variance_like_pytorch() {
    for fused in [true, false] {
        let device = Device::flex().autodiff();
        let norm = BatchNormConfig::new(4).init(&device);
        let x = pseudo_random([3, 4, 5, 7], 1, &device);
        let _ = if fused { forward(&norm, x.clone()) } else { super::forward_with(&norm, x.clone(), false, false) };
        // Per channel over n = 3·5·7 values: Σ(x − mean)² / (n − 1).
        let values = x.inner().swap_dims(0, 1).reshape([4, 105]);
        let centered = values.clone() - values.mean_dim(1);
        let unbiased = (centered.clone() * centered).sum_dim(1).div_scalar(104.0).reshape([4]);
        let expected = unbiased.mul_scalar(0.1).add_scalar(0.9);
        let got = norm.running_var.value_sync().inner();
        assert!(relative_error(got.clone(), expected.clone()) <= 1e-5, "fused {fused}: {got} vs {expected}");
    }
}

#[test]
fn a_frozen_layer_matches_burn_and_keeps_its_running_statistics() {
    let norm = layer(4, &Device::flex()).freeze();
    let before = norm.running_mean.value_sync().into_data();
    let before_variance = norm.running_var.value_sync().into_data();
    let fused = run(&norm, true, true);
    assert_eq!(fused.running.0.clone().into_data(), before, "a frozen layer's running mean moved");
    assert_eq!(fused.running.1.clone().into_data(), before_variance, "a frozen layer's running variance moved");
    assert!(fused.dgamma.is_none() && fused.dbeta.is_none(), "a frozen layer got parameter gradients");
    assert_same(fused, run(&layer(4, &Device::flex()).freeze(), false, true), "frozen");
}

#[test]
fn evaluation_matches_burn() {
    assert_same(run(&layer(4, &Device::flex()), true, false), run(&layer(4, &Device::flex()), false, false), "evaluation");
}

#[test]
fn with_a_relu_it_matches_burns_batch_norm_then_relu() {
    let device = Device::flex();
    for (what, autodiff, frozen) in [("training", true, false), ("frozen", true, true), ("evaluation", false, false)] {
        // With the running statistics the outputs are all positive; β − 4 puts them on both sides.
        let make = || {
            let norm = layer(4, &device);
            if !autodiff || frozen {
                let shifted = BatchNorm { beta: burn::module::Param::from_tensor(norm.beta.val().sub_scalar(4.0)), ..norm };
                if frozen { shifted.freeze() } else { shifted }
            } else {
                norm
            }
        };
        let fused = run_with(&make(), true, autodiff, true);
        let zeros = fused.y.clone().equal_elem(0.0).int().sum().into_scalar::<i64>();
        assert!(zeros > 0 && zeros < fused.y.shape().num_elements() as i64, "{what}: the ReLU cuts some outputs and keeps others");
        assert_same(fused, run_with(&make(), false, autodiff, true), what);
    }
}
