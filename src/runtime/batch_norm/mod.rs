//! Batch norm for the networks tlrun trains. On the CPU (flex, f32, [N, C, H, W]) it runs tlrun's
//! fused ops (three passes a training step instead of about fifteen); elsewhere burn's
//! `BatchNorm::forward`. Training behaviour, running statistics and freezing follow burn's
//! `BatchNorm`: the batch's statistics when the device is a training device and the layer is not
//! frozen, the running statistics otherwise. One difference, on every backend: the running
//! variance takes the batch's unbiased variance, as in PyTorch.

pub mod extension;

use burn::backend::Dispatch;
use burn::nn::BatchNorm;
use burn::prelude::*;

use crate::runtime::kernel_choice::runs_tlrun_kernels;
use extension::FusedBatchNormBackend;

/// What `BatchNorm::forward` computes, except that the running variance is updated with the
/// batch's unbiased variance, as PyTorch does (burn uses the biased one; the normalisation itself
/// uses the biased variance in both).
pub fn forward(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let fused = runs_tlrun_kernels(&x);
    forward_with(norm, x, fused, false)
}

/// `relu(forward(norm, x))`, the ReLU in the same pass on flex (and its gradient in the same
/// backward).
pub fn forward_relu(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    let fused = runs_tlrun_kernels(&x);
    forward_with(norm, x, fused, true)
}

/// [`forward`] with tlrun's fused ops (`fused`: on flex only) or burn's, then a ReLU (`relu`).
fn forward_with(norm: &BatchNorm, x: Tensor<4>, fused: bool, relu: bool) -> Tensor<4> {
    let then_relu = |y: Tensor<4>| if relu { burn::tensor::activation::relu(y) } else { y };
    let device = x.device();
    let [batch, channels, height, width] = x.dims();
    let (gamma, beta) = (norm.gamma.val(), norm.beta.val());
    let training = device.is_autodiff() && norm.training.is_enabled();
    if !training {
        if !fused {
            return then_relu(norm.forward(x));
        }
        return Tensor::from_dispatch(<Dispatch as FusedBatchNormBackend>::fused_batch_norm(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            running_statistics(norm, &device).into_dispatch(),
            norm.epsilon,
            false,
            relu,
        ));
    }
    let (output, mean, variance) = if fused {
        let statistics =
            Tensor::<2>::from_dispatch(<Dispatch as FusedBatchNormBackend>::fused_batch_norm_statistics(x.clone().into_dispatch()));
        let mean = statistics.clone().slice([0..1, 0..channels]).reshape([channels]);
        let variance = statistics.clone().slice([1..2, 0..channels]).reshape([channels]);
        let output = Tensor::from_dispatch(<Dispatch as FusedBatchNormBackend>::fused_batch_norm(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            statistics.into_dispatch(),
            norm.epsilon,
            true,
            relu,
        ));
        (output, mean, variance)
    } else {
        let result = burn::tensor::module::batch_norm_train(x, gamma, beta, norm.epsilon);
        (then_relu(result.output), result.mean, result.variance)
    };
    update_running_statistics(norm, mean, variance, batch * height * width, &device);
    output
}

/// The running mean (row 0) and variance (row 1), [2, C], on `device`: the statistics of
/// evaluation and of frozen layers.
pub fn running_statistics(norm: &BatchNorm, device: &Device) -> Tensor<2> {
    let channels = norm.gamma.dims()[0];
    Tensor::cat(vec![norm.running_mean.value(), norm.running_var.value()], 0).reshape([2, channels]).to_device(device)
}

/// `running = running·(1 − momentum) + batch·momentum`, the variance unbiased (× n/(n − 1) over
/// the n values per channel), as PyTorch's BatchNorm does.
fn update_running_statistics(norm: &BatchNorm, mean: Tensor<1>, variance: Tensor<1>, values: usize, device: &Device) {
    let momentum = norm.momentum;
    let unbiased = if values > 1 { values as f64 / (values - 1) as f64 } else { 1.0 };
    let running_mean = norm.running_mean.value_sync().to_device(device).mul_scalar(1.0 - momentum).add(mean.detach().mul_scalar(momentum));
    let running_var = norm
        .running_var
        .value_sync()
        .to_device(device)
        .mul_scalar(1.0 - momentum)
        .add(variance.detach().mul_scalar(momentum * unbiased));
    norm.running_mean.update(running_mean.detach());
    norm.running_var.update(running_var.detach());
}

#[cfg(test)]
mod reference_tests;
