//! `relu(a + b)`, the end of every residual block: on the CPU (flex, f32, one shape) one fused op
//! with its own backward; elsewhere burn's addition and ReLU.

pub mod extension;

use burn::backend::Dispatch;
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::runtime::kernel_choice::runs_tlrun_kernels;
use extension::AddReluBackend;

/// `relu(a + b)`, by the fused op where it applies.
pub fn add_relu(a: Tensor<4>, b: Tensor<4>) -> Tensor<4> {
    let fused = runs_tlrun_kernels(&a) && runs_tlrun_kernels(&b) && a.dims() == b.dims();
    if !fused {
        return relu(a + b);
    }
    Tensor::from_dispatch(<Dispatch as AddReluBackend>::fused_add_relu(a.into_dispatch(), b.into_dispatch()))
}

#[cfg(test)]
mod tests {
    use burn::prelude::*;

    use super::add_relu;
    use crate::runtime::reference_inputs::{pseudo_random, relative_error};

    /// Output and both input gradients against burn's `relu(a + b)`, with autodiff and without.
    #[test]
    fn matches_burns_addition_then_relu() {
        for device in [Device::flex().autodiff(), Device::flex()] {
            let run = |fused: bool| {
                let input = |seed| {
                    let x = pseudo_random([3, 4, 5, 6], seed, &device);
                    if device.is_autodiff() { x.require_grad() } else { x }
                };
                let (a, b) = (input(1), input(2));
                let y = if fused { add_relu(a.clone(), b.clone()) } else { burn::tensor::activation::relu(a.clone() + b.clone()) };
                if !device.is_autodiff() {
                    return (y, None);
                }
                let r = pseudo_random([3, 4, 5, 6], 3, &device);
                let grads = (y.clone() * r).sum().backward();
                (y.inner(), Some((a.grad(&grads).unwrap(), b.grad(&grads).unwrap())))
            };
            let ((y, grads), (expected_y, expected_grads)) = (run(true), run(false));
            let zeros = y.clone().equal_elem(0.0).int().sum().into_scalar::<i64>();
            assert!(zeros > 0 && zeros < 360, "the ReLU cuts some outputs and keeps others");
            assert!(relative_error(y, expected_y) <= 1e-6, "output");
            if let (Some((da, db)), Some((expected_da, expected_db))) = (grads, expected_grads) {
                assert!(relative_error(da, expected_da) <= 1e-6, "gradient of a");
                assert!(relative_error(db, expected_db) <= 1e-6, "gradient of b");
            }
        }
    }
}
