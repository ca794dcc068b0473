//! A convolution followed by batch norm, and at the end of a residual block the residual's
//! addition and the ReLU. In evaluation on the CPU (flex, f32, no autodiff) they are one op: the
//! kernels apply batch norm (running statistics), the residual and the ReLU to each value as they
//! store it (kernels/src/epilogue.rs), one pass over the output instead of three, with the same
//! bits. In training, and on other backends, the separate ops.

pub mod extension;

use burn::backend::Dispatch;
use burn::nn::conv::Conv2d;
use burn::nn::BatchNorm;
use burn::prelude::*;
use burn::tensor::ops::ConvOptions;

use crate::runtime::add_relu::add_relu;
use crate::runtime::batch_norm::{self, running_statistics};
use crate::runtime::conv::{self, gemm_conv_applies};
use extension::ConvNormBackend;

/// `relu?(norm(conv(x)) + residual?)`: batch norm of the convolution, then the residual added if
/// any, then the ReLU if `relu`.
pub fn forward(conv: &Conv2d, norm: &BatchNorm, x: Tensor<4>, residual: Option<Tensor<4>>, relu: bool) -> Tensor<4> {
    match fused_options(conv, &x, residual.as_ref()) {
        Some(options) => {
            let device = x.device();
            let statistics = running_statistics(norm, &device).into_dispatch();
            let (x, weight, gamma, beta) = (x.into_dispatch(), conv.weight.val().into_dispatch(), norm.gamma.val().into_dispatch(), norm.beta.val().into_dispatch());
            Tensor::from_dispatch(match residual {
                Some(residual) => {
                    <Dispatch as ConvNormBackend>::conv_norm_add(x, weight, gamma, beta, statistics, residual.into_dispatch(), options, norm.epsilon, relu)
                }
                None => <Dispatch as ConvNormBackend>::conv_norm(x, weight, gamma, beta, statistics, options, norm.epsilon, relu),
            })
        }
        None => {
            let y = conv::forward(conv, x);
            match (residual, relu) {
                (None, false) => batch_norm::forward(norm, y),
                (None, true) => batch_norm::forward_relu(norm, y),
                (Some(residual), true) => add_relu(batch_norm::forward(norm, y), residual),
                (Some(residual), false) => batch_norm::forward(norm, y) + residual,
            }
        }
    }
}

/// The convolution's options when the fused op computes it: evaluation (no autodiff) on flex in
/// f32, a convolution tlrun's kernels cover, without bias, a residual of the output's shape.
fn fused_options(conv: &Conv2d, x: &Tensor<4>, residual: Option<&Tensor<4>>) -> Option<ConvOptions<2>> {
    if x.device().is_autodiff() || conv.bias.is_some() {
        return None;
    }
    let options = conv::options(conv)?;
    let weight = conv.weight.val();
    if !gemm_conv_applies(x, &weight, &options) {
        return None;
    }
    let geometry = conv::extension::geometry(&x.dims(), &weight.dims(), &options)?;
    let output = [geometry.batch, geometry.out_channels, geometry.out_height(), geometry.out_width()];
    let residual_fits = residual.is_none_or(|residual| residual.dims() == output && crate::runtime::kernel_choice::runs_tlrun_kernels(residual));
    residual_fits.then_some(options)
}

#[cfg(test)]
mod reference_tests;
