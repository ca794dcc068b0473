//! Max pooling for the networks tlrun trains (resnet's stem pool). On the CPU (flex, f32,
//! explicit or no padding, dilation 1, floor mode) tlrun's kernel with its own backward; everywhere
//! else burn's `MaxPool2d::forward`.

pub mod extension;

use burn::backend::Dispatch;
use burn::nn::PaddingConfig2d;
use burn::nn::pool::MaxPool2d;
use burn::prelude::*;

use crate::runtime::kernel_choice::runs_tlrun_kernels;
use extension::MaxPoolBackend;

/// What `MaxPool2d::forward` computes, by tlrun's kernel where it [`applies`].
pub fn forward(pool: &MaxPool2d, x: Tensor<4>) -> Tensor<4> {
    match explicit_padding(pool) {
        Some(padding) if applies(pool, &x) => {
            Tensor::from_dispatch(<Dispatch as MaxPoolBackend>::tlrun_max_pool2d(x.into_dispatch(), pool.kernel_size, pool.stride, padding))
        }
        _ => pool.forward(x),
    }
}

/// ((top, bottom), (left, right)); `None` for `Same`, which burn works out per input size.
fn explicit_padding(pool: &MaxPool2d) -> Option<[(usize, usize); 2]> {
    match pool.padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => Some([(top, bottom), (left, right)]),
        PaddingConfig2d::Valid => Some([(0, 0), (0, 0)]),
        PaddingConfig2d::Same => None,
    }
}

/// tlrun's kernel takes `x` (flex, f32) and covers the pool (explicit or no padding, dilation 1,
/// floor mode, every window meeting the image).
pub fn applies(pool: &MaxPool2d, x: &Tensor<4>) -> bool {
    let Some(padding) = explicit_padding(pool) else { return false };
    pool.dilation == [1, 1]
        && !pool.ceil_mode
        && runs_tlrun_kernels(x)
        && extension::geometry(&x.dims(), pool.kernel_size, pool.stride, padding).is_some()
}

#[cfg(test)]
mod tests {
    use burn::nn::PaddingConfig2d;
    use burn::nn::pool::MaxPool2dConfig;
    use burn::prelude::*;

    use super::{applies, forward};
    use crate::runtime::reference_inputs::{pseudo_random, relative_error};

    /// Output and input gradient against burn's `MaxPool2d` (resnet's 3×3 stride 2 padding 1 stem
    /// pool on even and odd sides, 2×2 stride 2 without padding, a non-square window), with
    /// autodiff and without.
    #[test]
    fn matches_burns_max_pool() {
        let pools = [([3, 3], [2, 2], 1, [2, 5, 9, 9]), ([3, 3], [2, 2], 1, [2, 4, 8, 10]), ([2, 2], [2, 2], 0, [3, 2, 6, 6]), ([3, 2], [1, 2], 1, [1, 3, 5, 7])];
        for (kernel, stride, padding, shape) in pools {
            let pool = MaxPool2dConfig::new(kernel).with_strides(stride).with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding)).init();
            for device in [Device::flex().autodiff(), Device::flex()] {
                let run = |ours: bool| {
                    let x = pseudo_random(shape, 7, &device);
                    let x = if device.is_autodiff() { x.require_grad() } else { x };
                    assert!(applies(&pool, &x), "tlrun's kernel covers kernel {kernel:?} stride {stride:?} padding {padding}");
                    let y = if ours { forward(&pool, x.clone()) } else { pool.forward(x.clone()) };
                    if !device.is_autodiff() {
                        return (y, None);
                    }
                    let r = pseudo_random(y.dims(), 8, &device);
                    let grads = (y.clone() * r).sum().backward();
                    (y.inner(), x.grad(&grads))
                };
                let ((y, dx), (expected_y, expected_dx)) = (run(true), run(false));
                let what = format!("kernel {kernel:?} stride {stride:?} padding {padding} on {shape:?}");
                assert_eq!(y.dims(), expected_y.dims(), "{what}: output shape");
                assert!(relative_error(y, expected_y) <= 1e-6, "{what}: output");
                if let (Some(dx), Some(expected_dx)) = (dx, expected_dx) {
                    assert!(relative_error(dx, expected_dx) <= 1e-6, "{what}: input gradient");
                }
            }
        }
    }
}
