//! Batch norm for the networks tlrun trains. On the CPU (flex, f32, [N, C, H, W]) it runs tlrun's
//! fused ops (three passes a training step instead of about fifteen); elsewhere burn's
//! `BatchNorm::forward`. Training behaviour, running statistics and freezing follow burn's
//! `BatchNorm` exactly: the batch's statistics when the device is a training device and the
//! layer is not frozen, the running statistics otherwise.

pub mod extension;

use burn::backend::{Dispatch, DispatchDevice};
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::DType;

use extension::FusedBatchNormBackend;

/// What `BatchNorm::forward` computes.
pub fn forward(norm: &BatchNorm, x: Tensor<4>) -> Tensor<4> {
    if !fused_applies(&x) {
        return norm.forward(x);
    }
    let device = x.device();
    let [_, channels, _, _] = x.dims();
    let (gamma, beta) = (norm.gamma.val(), norm.beta.val());
    if device.is_autodiff() && norm.training.is_enabled() {
        let statistics =
            Tensor::<2>::from_dispatch(<Dispatch as FusedBatchNormBackend>::fused_batch_norm_statistics(x.clone().into_dispatch()));
        update_running_statistics(norm, statistics.clone(), channels, &device);
        Tensor::from_dispatch(<Dispatch as FusedBatchNormBackend>::fused_batch_norm_train(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            statistics.into_dispatch(),
            norm.epsilon,
        ))
    } else {
        let running = Tensor::cat(vec![norm.running_mean.value(), norm.running_var.value()], 0).reshape([2, channels]).to_device(&device);
        Tensor::from_dispatch(<Dispatch as FusedBatchNormBackend>::fused_batch_norm(
            x.into_dispatch(),
            gamma.into_dispatch(),
            beta.into_dispatch(),
            running.into_dispatch(),
            norm.epsilon,
        ))
    }
}

/// burn's update: `running = running·(1 − momentum) + batch·momentum`.
fn update_running_statistics(norm: &BatchNorm, statistics: Tensor<2>, channels: usize, device: &Device) {
    let statistics = statistics.detach();
    let batch_mean = statistics.clone().slice([0..1, 0..channels]).reshape([channels]);
    let batch_variance = statistics.slice([1..2, 0..channels]).reshape([channels]);
    let momentum = norm.momentum;
    let running_mean = norm.running_mean.value_sync().to_device(device).mul_scalar(1.0 - momentum).add(batch_mean.mul_scalar(momentum));
    let running_var = norm.running_var.value_sync().to_device(device).mul_scalar(1.0 - momentum).add(batch_variance.mul_scalar(momentum));
    norm.running_mean.update(running_mean.detach());
    norm.running_var.update(running_var.detach());
}

/// flex (with or without autodiff) and f32.
pub fn fused_applies(x: &Tensor<4>) -> bool {
    let on_flex = match x.device().as_dispatch().clone().inner() {
        DispatchDevice::Flex(_) => true,
        #[allow(unreachable_patterns)]
        _ => false,
    };
    on_flex && x.dtype() == DType::F32
}

#[cfg(test)]
mod reference_tests;
