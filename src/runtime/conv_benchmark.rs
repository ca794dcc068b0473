//! `tlrun bench --ops`: the convolutions of real networks one by one — forward, input gradient,
//! weight gradient — so a slow network can be traced to the op and shape that make it slow. The
//! same shapes go to `benches/ops/torch_conv.py`, which times them in PyTorch and prints ratios.

use std::time::Instant;

use burn::prelude::*;
use burn::tensor::ops::ConvOptions;
use serde::Serialize;

use crate::arch::{BlockKind, LayerKind};

/// One convolution of a network at an input size and batch.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConvShape {
    pub network: String,
    pub image_size: u32,
    pub layer: String,
    pub batch: usize,
    pub in_channels: usize,
    pub out_channels: usize,
    pub kernel: usize,
    pub stride: usize,
    pub padding: usize,
    /// Side of the (square) input feature map.
    pub side: usize,
}

impl ConvShape {
    pub fn out_side(&self) -> usize {
        (self.side + 2 * self.padding - self.kernel) / self.stride + 1
    }

    /// Multiply-adds of the forward pass, times two.
    pub fn forward_flops(&self) -> f64 {
        let out = self.out_side() as f64;
        2.0 * (self.batch * self.out_channels * self.in_channels * self.kernel * self.kernel) as f64 * out * out
    }
}

/// tlrun's convolution (what the networks run), and burn's reference op on the same shape.
#[derive(Debug, Clone, Serialize)]
pub struct ConvTiming {
    pub shape: ConvShape,
    pub forward_ms: f64,
    /// Backward to the input alone (the forward subtracted).
    pub input_grad_ms: f64,
    /// Backward to the weight alone (the forward subtracted).
    pub weight_grad_ms: f64,
    pub burn_forward_ms: f64,
    pub burn_input_grad_ms: f64,
    pub burn_weight_grad_ms: f64,
}

/// Which convolution to time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Tlrun,
    Burn,
}

impl Op {
    fn conv2d(self, x: Tensor<4>, w: Tensor<4>, options: ConvOptions<2>) -> Tensor<4> {
        match self {
            Op::Tlrun => crate::runtime::conv::conv2d(x, w, None, options),
            Op::Burn => burn::tensor::module::conv2d(x, w, None, options),
        }
    }
}

/// The distinct convolutions of `network` at `image_size`: the stem, and per stage the first
/// block's (strided) convolutions and downsample, and the later blocks' convolution.
pub fn conv_shapes(network: &str, image_size: u32, batch: usize) -> Vec<ConvShape> {
    let Some(architecture) = crate::arch::lookup(network) else { return Vec::new() };
    let mut shapes: Vec<ConvShape> = Vec::new();
    let mut side = image_size as usize;
    let mut push = |layer: String, side: usize, in_channels: u32, out_channels: u32, kernel: u32, stride: u32, padding: u32| {
        let shape = ConvShape {
            network: network.to_string(),
            image_size,
            layer,
            batch,
            in_channels: in_channels as usize,
            out_channels: out_channels as usize,
            kernel: kernel as usize,
            stride: stride as usize,
            padding: padding as usize,
            side,
        };
        let same = |known: &ConvShape| {
            (known.in_channels, known.out_channels, known.kernel, known.stride, known.padding, known.side)
                == (shape.in_channels, shape.out_channels, shape.kernel, shape.stride, shape.padding, shape.side)
        };
        if !shapes.iter().any(same) {
            shapes.push(shape);
        }
    };
    for layer in &architecture.layers {
        match &layer.kind {
            LayerKind::Conv { in_channels, out_channels, kernel, stride, padding } => {
                push(layer.name.to_string(), side, *in_channels, *out_channels, *kernel, *stride, *padding);
            }
            LayerKind::Stage { block: BlockKind::Basic, blocks, in_channels, width, stride } => {
                push(format!("{}.0.conv1", layer.name), side, *in_channels, *width, 3, *stride, 1);
                let after = (side + 2 - 3) / *stride as usize + 1;
                if *stride != 1 || in_channels != width {
                    push(format!("{}.0.downsample", layer.name), side, *in_channels, *width, 1, *stride, 0);
                }
                push(format!("{}.0.conv2", layer.name), after, *width, *width, 3, 1, 1);
                if *blocks > 1 {
                    push(format!("{}.1.conv1", layer.name), after, *width, *width, 3, 1, 1);
                }
            }
            // Bottleneck networks are not in the op benchmark (resnet50 is a GPU network here).
            _ => {}
        }
        side = layer.out_size(side as u32) as usize;
    }
    shapes
}

/// The shapes `tlrun bench --ops` times: resnet_small at 32 px and resnet18 at 28, 64 and 224 px.
pub fn benchmark_shapes() -> Vec<ConvShape> {
    [("resnet_small", 32, 64), ("resnet18", 28, 64), ("resnet18", 64, 64), ("resnet18", 224, 8)]
        .into_iter()
        .flat_map(|(network, size, batch)| conv_shapes(network, size, batch))
        .collect()
}

fn options(shape: &ConvShape) -> ConvOptions<2> {
    ConvOptions::new([shape.stride, shape.stride], [shape.padding, shape.padding], [1, 1], 1)
}

/// The best of `repeats` timings of `work`, in milliseconds, after one warm-up run.
fn best_ms(repeats: usize, mut work: impl FnMut()) -> f64 {
    work();
    (0..repeats.max(1))
        .map(|_| {
            let started = Instant::now();
            work();
            started.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

/// Forward, input gradient and weight gradient of one convolution on the CPU (flex), by tlrun's op
/// and by burn's.
pub fn time_conv(shape: &ConvShape, repeats: usize) -> ConvTiming {
    let [forward_ms, input_grad_ms, weight_grad_ms] = time_op(shape, repeats, Op::Tlrun);
    let [burn_forward_ms, burn_input_grad_ms, burn_weight_grad_ms] = time_op(shape, repeats, Op::Burn);
    ConvTiming { shape: shape.clone(), forward_ms, input_grad_ms, weight_grad_ms, burn_forward_ms, burn_input_grad_ms, burn_weight_grad_ms }
}

fn time_op(shape: &ConvShape, repeats: usize, op: Op) -> [f64; 3] {
    let plain = Device::flex();
    let autodiff = Device::flex().autodiff();
    let input_dims = [shape.batch, shape.in_channels, shape.side, shape.side];
    let weight_dims = [shape.out_channels, shape.in_channels, shape.kernel, shape.kernel];
    let normal = burn::tensor::Distribution::Normal(0.0, 1.0);
    let x = Tensor::<4>::random(input_dims, normal, &plain);
    let w = Tensor::<4>::random(weight_dims, normal, &plain);
    let forward_ms = best_ms(repeats, || {
        let out = op.conv2d(x.clone(), w.clone(), options(shape));
        let _ = out.sum().into_scalar::<f32>();
    });
    let x_data = x.into_data();
    let w_data = w.into_data();
    let backward_ms = |input_grad: bool| {
        best_ms(repeats, || {
            let mut x = Tensor::<4>::from_data(x_data.clone(), &autodiff);
            let mut w = Tensor::<4>::from_data(w_data.clone(), &autodiff);
            if input_grad { x = x.require_grad() } else { w = w.require_grad() }
            let out = op.conv2d(x.clone(), w.clone(), options(shape));
            let grads = out.sum().backward();
            let grad = if input_grad { x.grad(&grads) } else { w.grad(&grads) };
            if let Some(grad) = grad {
                let _ = grad.sum().into_scalar::<f32>();
            }
        })
    };
    let input_grad_ms = (backward_ms(true) - forward_ms).max(0.0);
    let weight_grad_ms = (backward_ms(false) - forward_ms).max(0.0);
    [forward_ms, input_grad_ms, weight_grad_ms]
}

#[cfg(test)]
mod tests {
    use super::conv_shapes;

    #[test]
    fn resnet18_shapes_follow_the_architecture() {
        let shapes = conv_shapes("resnet18", 64, 8);
        let stem = &shapes[0];
        assert_eq!((stem.in_channels, stem.out_channels, stem.kernel, stem.stride, stem.side, stem.out_side()), (3, 64, 7, 2, 64, 32));
        let layer2 = shapes.iter().find(|shape| shape.layer == "layer2.0.conv1").unwrap();
        assert_eq!((layer2.in_channels, layer2.out_channels, layer2.stride, layer2.side, layer2.out_side()), (64, 128, 2, 16, 8));
        assert!(shapes.iter().any(|shape| shape.layer == "layer4.0.downsample" && shape.kernel == 1));
    }
}
