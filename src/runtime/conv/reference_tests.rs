//! tlrun's convolution against burn's reference op (burn's conv2d and its generic backward on
//! flex): forward, input gradient and weight gradient, to 1e-4 relative, on odd shapes and under
//! both thread plans (chunks in parallel, and one gemm on all threads).

use burn::nn::PaddingConfig2d;
use burn::nn::conv::Conv2dConfig;
use burn::prelude::*;
use burn::tensor::Distribution;
use burn::tensor::ops::ConvOptions;

use super::{conv2d, forward, gemm_conv_applies};
use crate::runtime::reference_inputs::{pseudo_random, relative_error};

struct Case {
    name: &'static str,
    /// [N, C, H, W]
    input: [usize; 4],
    /// [K, C, R, S]
    weight: [usize; 4],
    stride: [usize; 2],
    /// ((top, bottom), (left, right))
    padding: [(usize, usize); 2],
}

const CASES: &[Case] = &[
    Case { name: "3x3 pad 1", input: [4, 5, 9, 9], weight: [6, 5, 3, 3], stride: [1, 1], padding: [(1, 1), (1, 1)] },
    Case { name: "3x3 stride 2 pad 1, odd side", input: [3, 4, 11, 11], weight: [8, 4, 3, 3], stride: [2, 2], padding: [(1, 1), (1, 1)] },
    Case { name: "1x1", input: [5, 16, 6, 6], weight: [12, 16, 1, 1], stride: [1, 1], padding: [(0, 0), (0, 0)] },
    Case { name: "1x1 stride 2 (downsample)", input: [3, 8, 7, 7], weight: [16, 8, 1, 1], stride: [2, 2], padding: [(0, 0), (0, 0)] },
    Case { name: "7x7 stride 2 pad 3 (stem)", input: [2, 3, 20, 20], weight: [8, 3, 7, 7], stride: [2, 2], padding: [(3, 3), (3, 3)] },
    Case { name: "non-square input and kernel", input: [3, 3, 10, 6], weight: [5, 3, 3, 2], stride: [2, 1], padding: [(1, 1), (0, 0)] },
    Case { name: "asymmetric padding", input: [2, 4, 7, 8], weight: [3, 4, 3, 3], stride: [1, 2], padding: [(0, 2), (1, 0)] },
    Case { name: "asymmetric padding, stride 1", input: [3, 4, 6, 9], weight: [5, 4, 3, 3], stride: [1, 1], padding: [(0, 2), (1, 0)] },
    Case { name: "padding as wide as the kernel", input: [2, 3, 5, 5], weight: [4, 3, 2, 2], stride: [1, 1], padding: [(2, 2), (2, 2)] },
    Case { name: "3x3 pad 1, 32 from 16 channels on rows of 16 (the direct kernel, forward and input gradient)", input: [2, 16, 5, 16], weight: [32, 16, 3, 3], stride: [1, 1], padding: [(1, 1), (1, 1)] },
    Case { name: "3x3 pad 1, 16 from 3 channels (the direct kernel on a stem)", input: [3, 3, 4, 32], weight: [16, 3, 3, 3], stride: [1, 1], padding: [(1, 1), (1, 1)] },
    Case { name: "batch 1", input: [1, 6, 8, 8], weight: [7, 6, 3, 3], stride: [1, 1], padding: [(1, 1), (1, 1)] },
    Case { name: "1x1 map, 3x3 pad 1 (a late stage at small images)", input: [6, 32, 1, 1], weight: [16, 32, 3, 3], stride: [1, 1], padding: [(1, 1), (1, 1)] },
    Case { name: "2x2 to 1x1, 3x3 stride 2 pad 1 (the cropped kernel of a late stage)", input: [5, 16, 2, 2], weight: [8, 16, 3, 3], stride: [2, 2], padding: [(1, 1), (1, 1)] },
    Case { name: "many images of few pixels", input: [40, 8, 2, 2], weight: [8, 8, 3, 3], stride: [1, 1], padding: [(1, 1), (1, 1)] },
    Case { name: "kernel the size of the input", input: [2, 3, 4, 4], weight: [2, 3, 4, 4], stride: [1, 1], padding: [(0, 0), (0, 0)] },
];

struct Results {
    y: Tensor<4>,
    dx: Tensor<4>,
    dw: Tensor<4>,
}

/// y = conv(x, w), and the gradients of Σ y·r (r random, so every output has its own gradient).
fn run(case: &Case, reference: bool, seed: u64) -> Results {
    let device = Device::flex().autodiff();
    let x = pseudo_random(case.input, seed, &device).require_grad();
    let w = pseudo_random(case.weight, seed + 1000, &device).require_grad();
    let options = ConvOptions::new_with_padding(case.stride, case.padding, [1, 1], 1);
    assert!(gemm_conv_applies(&x, &w, &options), "{}: the gemm op should apply", case.name);
    let y = if reference {
        burn::tensor::module::conv2d(x.clone(), w.clone(), None, options)
    } else {
        conv2d(x.clone(), w.clone(), None, options)
    };
    let r = pseudo_random(y.dims(), seed + 2000, &device);
    let grads = (y.clone() * r).sum().backward();
    Results { dx: x.grad(&grads).expect("input gradient"), dw: w.grad(&grads).expect("weight gradient"), y: y.inner() }
}

fn check_all_cases() {
    for (index, case) in CASES.iter().enumerate() {
        let expected = run(case, true, index as u64);
        let got = run(case, false, index as u64);
        assert_eq!(got.y.dims(), expected.y.dims(), "{}: output shape", case.name);
        for (what, got, expected) in [("forward", got.y, expected.y), ("input gradient", got.dx, expected.dx), ("weight gradient", got.dw, expected.dw)] {
            let error = relative_error(got, expected);
            assert!(error <= 1e-4, "{}: {what} differs from burn's by {error:e} (relative)", case.name);
        }
    }
}

#[test]
fn matches_burns_conv_on_one_thread() {
    rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(check_all_cases);
}

#[test]
fn matches_burns_conv_with_chunks_in_parallel() {
    rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap().install(check_all_cases);
}

#[test]
fn only_the_gradients_asked_for_are_computed() {
    let case = &CASES[1];
    let device = Device::flex().autodiff();
    let options = ConvOptions::new_with_padding(case.stride, case.padding, [1, 1], 1);
    // A frozen weight: the input still gets its gradient, the weight none.
    let x = pseudo_random(case.input, 7, &device).require_grad();
    let w = pseudo_random(case.weight, 8, &device);
    let grads = conv2d(x.clone(), w.clone(), None, options.clone()).sum().backward();
    let reference = burn::tensor::module::conv2d(x.clone(), w.clone(), None, options.clone()).sum().backward();
    assert!(w.grad(&grads).is_none());
    assert!(relative_error(x.grad(&grads).unwrap(), x.grad(&reference).unwrap()) <= 1e-4);
    // The first layer: the input is data, only the weight learns.
    let x = pseudo_random(case.input, 7, &device);
    let w = w.require_grad();
    let grads = conv2d(x.clone(), w.clone(), None, options.clone()).sum().backward();
    let reference = burn::tensor::module::conv2d(x.clone(), w.clone(), None, options).sum().backward();
    assert!(x.grad(&grads).is_none());
    assert!(relative_error(w.grad(&grads).unwrap(), w.grad(&reference).unwrap()) <= 1e-4);
}

#[test]
fn a_conv_module_computes_what_burns_forward_computes() {
    let device = Device::flex();
    let x = Tensor::<4>::random([2, 3, 9, 7], Distribution::Normal(0.0, 1.0), &device);
    for padding in [PaddingConfig2d::Explicit(1, 0, 2, 1), PaddingConfig2d::Valid, PaddingConfig2d::Same] {
        let conv = Conv2dConfig::new([3, 4], [3, 3]).with_padding(padding.clone()).with_bias(true).init(&device);
        let error = relative_error(forward(&conv, x.clone()), conv.forward(x.clone()));
        assert!(error <= 1e-4, "{padding:?}: {error:e}");
    }
}

#[test]
fn other_convolutions_stay_with_burn() {
    let device = Device::flex();
    let x = Tensor::<4>::zeros([1, 4, 5, 5], &device);
    let w = Tensor::<4>::zeros([4, 2, 3, 3], &device);
    assert!(!gemm_conv_applies(&x, &w, &ConvOptions::new([1, 1], [1, 1], [1, 1], 2)), "grouped");
    let w = Tensor::<4>::zeros([4, 4, 3, 3], &device);
    assert!(!gemm_conv_applies(&x, &w, &ConvOptions::new([1, 1], [1, 1], [2, 2], 1)), "dilated");
    let x16 = x.clone().cast(burn::tensor::DType::F16);
    assert!(!gemm_conv_applies(&x16, &w, &ConvOptions::new([1, 1], [1, 1], [1, 1], 1)), "f16");
    assert!(gemm_conv_applies(&x, &w, &ConvOptions::new([1, 1], [1, 1], [1, 1], 1)));
}
