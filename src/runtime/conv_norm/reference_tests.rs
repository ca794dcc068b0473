//! The fused evaluation op against the separate ops it replaces (convolution, batch norm with
//! running statistics, the residual's `add_relu`), bit for bit, on the kernels' paths; and that it
//! stays out of training.

use burn::module::{Param, RunningState};
use burn::nn::BatchNorm;
use burn::prelude::*;

use super::{forward, fused_options};
use crate::runtime::add_relu::add_relu;
use crate::runtime::model::residual_block::{batch_norm, conv};
use crate::runtime::reference_inputs::pseudo_random;
use crate::runtime::{batch_norm as norm, conv as convolution};

/// A batch norm with γ, β and running statistics away from their initial values.
fn layer(channels: u32, device: &Device) -> BatchNorm {
    let ramp = |scale: f32, offset: f32| Tensor::<1, Int>::arange(0..channels as i64, device).float().mul_scalar(scale).add_scalar(offset);
    let norm = batch_norm(channels, device);
    BatchNorm {
        gamma: Param::from_tensor(ramp(0.3, 0.5)),
        beta: Param::from_tensor(ramp(-0.2, 0.1)),
        running_mean: RunningState::new(ramp(0.05, -0.3)),
        running_var: RunningState::new(ramp(0.4, 0.6)),
        ..norm
    }
}

fn bits(tensor: Tensor<4>) -> Vec<u32> {
    tensor.into_data().try_to_vec::<f32>().unwrap().into_iter().map(f32::to_bits).collect()
}

#[test]
fn evaluation_gives_the_bits_of_the_separate_ops() {
    let device = Device::flex();
    // (in, out, kernel, stride, padding, input side): the direct kernel (16 px rows), batch lanes
    // (8 px), im2col × gemm (stride 2), a 1×1 downsample, a single output pixel.
    let cases = [(8, 16, 3, 1, 1, 16), (16, 16, 3, 1, 1, 8), (8, 16, 3, 2, 1, 9), (8, 16, 1, 2, 0, 8), (16, 32, 3, 1, 1, 1)];
    for (seed, (in_channels, out_channels, kernel, stride, padding, side)) in cases.into_iter().enumerate() {
        let conv = conv(in_channels, out_channels, kernel, stride, padding, &device);
        let norm = layer(out_channels, &device);
        let x = pseudo_random([16, in_channels as usize, side, side], seed as u64, &device);
        let y = convolution::forward(&conv, x.clone());
        let residual = pseudo_random(y.dims(), 100 + seed as u64, &device);
        assert!(fused_options(&conv, &x, Some(&residual)).is_some(), "case {seed}: the fused op applies");
        for (with_residual, relu) in [(false, false), (false, true), (true, true), (true, false)] {
            let got = forward(&conv, &norm, x.clone(), with_residual.then(|| residual.clone()), relu);
            let expected = match (with_residual, relu) {
                (false, false) => norm::forward(&norm, y.clone()),
                (false, true) => norm::forward_relu(&norm, y.clone()),
                (true, true) => add_relu(norm::forward(&norm, y.clone()), residual.clone()),
                (true, false) => norm::forward(&norm, y.clone()) + residual.clone(),
            };
            let (got, expected) = (bits(got), bits(expected));
            let zeros = expected.iter().filter(|&&bits| bits == 0).count();
            assert!(!relu || (zeros > 0 && zeros < expected.len()), "case {seed}: the ReLU cuts some values and keeps others");
            assert!(got == expected, "case {seed}, residual {with_residual}, relu {relu}: other bits than the separate ops");
        }
    }
}

#[test]
fn training_runs_the_separate_ops() {
    let device = Device::flex().autodiff();
    let conv = conv(4, 16, 3, 1, 1, &device);
    let x = pseudo_random([2, 4, 16, 16], 1, &device);
    assert!(fused_options(&conv, &x, None).is_none(), "no backward: never on autodiff");
    assert!(fused_options(&conv, &x.inner(), None).is_some());
}
