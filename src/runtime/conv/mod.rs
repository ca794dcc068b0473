//! Convolutions for the networks tlrun trains. On the CPU (flex, f32, one group, dilation 1) they
//! run tlrun's im2col × gemm op with its own backward; everywhere else (CUDA, other dtypes,
//! grouped or dilated convolutions, `Same` padding) burn's `conv2d`.

pub mod extension;

use burn::backend::Dispatch;
use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2d;
use burn::prelude::*;
use burn::tensor::DType;
use burn::tensor::ops::ConvOptions;

use crate::runtime::kernel_choice::runs_tlrun_kernels;
use extension::GemmConvBackend;

/// What `Conv2d::forward` computes, through [`conv2d`].
pub fn forward(conv: &Conv2d, input: Tensor<4>) -> Tensor<4> {
    match options(conv) {
        Some(options) => conv2d(input, conv.weight.val(), conv.bias.as_ref().map(|bias| bias.val()), options),
        None => conv.forward(input),
    }
}

/// `conv`'s options for [`conv2d`]; `None` for `Same` padding, which burn's module computes.
pub fn options(conv: &Conv2d) -> Option<ConvOptions<2>> {
    let padding = match conv.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => [(top, bottom), (left, right)],
        PaddingConfig2d::Valid => [(0, 0), (0, 0)],
        PaddingConfig2d::Same => return None,
    };
    Some(ConvOptions::new_with_padding(conv.stride, padding, conv.dilation, conv.groups))
}

/// `burn::tensor::module::conv2d`, by tlrun's gemm op where it applies.
pub fn conv2d(x: Tensor<4>, weight: Tensor<4>, bias: Option<Tensor<1>>, options: ConvOptions<2>) -> Tensor<4> {
    if !gemm_conv_applies(&x, &weight, &options) {
        return burn::tensor::module::conv2d(x, weight, bias, options);
    }
    let y = Tensor::<4>::from_dispatch(<Dispatch as GemmConvBackend>::gemm_conv2d(
        x.into_dispatch(),
        weight.into_dispatch(),
        options,
    ));
    match bias {
        Some(bias) => {
            let channels = bias.dims()[0];
            y + bias.reshape([1, channels, 1, 1])
        }
        None => y,
    }
}

/// tlrun's kernels take `x` (flex, f32), the weight is f32 too, and the gemm op covers the shape.
pub fn gemm_conv_applies(x: &Tensor<4>, weight: &Tensor<4>, options: &ConvOptions<2>) -> bool {
    runs_tlrun_kernels(x) && weight.dtype() == DType::F32 && extension::geometry(&x.dims(), &weight.dims(), options).is_some()
}

#[cfg(test)]
mod reference_tests;
