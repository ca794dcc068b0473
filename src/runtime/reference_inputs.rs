//! Inputs and the error measure for the tests that hold tlrun's kernels to burn's ops.

use burn::prelude::*;

/// Values in [-1, 1) from a fixed sequence: tests run in parallel, so burn's seeded device RNG
/// would not give the reference and tlrun's op the same tensors.
pub fn pseudo_random(shape: [usize; 4], seed: u64, device: &Device) -> Tensor<4> {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let values: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    Tensor::from_data(burn::tensor::TensorData::new(values, shape), device)
}

/// max |got − expected| / max |expected|.
pub fn relative_error<const D: usize>(got: Tensor<D>, expected: Tensor<D>) -> f32 {
    let scale = expected.clone().abs().max().into_scalar::<f32>().max(1e-12);
    (got - expected).abs().max().into_scalar::<f32>() / scale
}
