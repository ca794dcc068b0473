//! Convolution of narrow maps with the batch in the lanes: each AVX-512 vector holds one pixel of 16
//! images, so a map of any width fills every lane (resnet18's 7×7, 4×4 and 2×2 maps at 28 px, its
//! 4×4 and 2×2 maps at 64 px). The input is first copied, padded, into [C, H', W', 16] per
//! group of 16 images (16×16 transposes); then each step loads one tap of 3 output pixels (3
//! vectors) and multiplies it into 8 output channels (8 weights broadcast), 24 sums held in
//! registers over every input channel and tap (an assembly loop), and the sums go back to NCHW
//! through 16×16 transposes again: no patch matrix nine times the input's size, as im2col × gemm
//! writes and reads back. Output channels in multiples of 8, any kernel, stride 1, any padding;
//! AVX-512F checked at run time.

use crate::geometry::ConvGeometry;
use crate::epilogue::Epilogue;

/// Images a vector holds.
const LANES: usize = 16;

/// Output channels a register block sums.
const CHANNELS: usize = 8;

/// Share of the lanes that must hold an image: batches of 12 or more (a batch of 50 fills 50 of 64).
const MIN_LANE_USE: f64 = 0.75;

/// A group's padded input above which its reads leave the L2 cache and gemm wins: half the L2
/// (the weights and the outputs share it). With a 2 MB L2 (measured there): resnet18's 14×14 ×
/// 256 and 7×7 × 512 channels at 224 px (4.2 and 2.7 MB) took 1.2–1.6x gemm's time; everything
/// at 28 and 64 px is 0.26–0.82 MB, under the 1 MB this allows.
fn max_group_bytes() -> usize {
    crate::cache::sizes().l2 / 2
}

/// Most kernel taps a block lists (a 7×7 kernel has 49): larger kernels stay with im2col × gemm.
const MAX_TAPS: usize = 64;

/// Maps at least this wide take the direct kernel (16 and more) or im2col × gemm. On 8×8 maps the
/// first version of this kernel (intrinsics, gathers and scatters) was slower in the network than
/// gemm (resnet_small inference 2,108 against 2,424 img/s); the assembly loop and the transposes
/// turned that round: one binary each way, alternating (2026-11-30), resnet_small inferred at
/// 2,628 img/s against 2,405 (faster in 12 of 14 runs) and resnet18 at 64 px at 663 against 520
/// (8 of 8); training moved within the noise (553 against 540, 161 against 156).
const MAX_WIDTH: usize = 9;

/// Whether this kernel computes the convolution: stride 1 and kernels of 9 to 64 taps on maps
/// of 8 pixels or narrower (wider ones take the direct kernel or im2col × gemm), a group's input
/// that stays in the L2 cache, a batch that fills the lanes, and AVX-512F. Against im2col × gemm,
/// batch 64, 2 threads, kernel probe (best of 7, alternating in one process, 2026-11-30): 3×3
/// stride 1 on resnet18's 7×7, 4×4 and 2×2 maps at 28 px took 0.57–0.73 of gemm's time, on its
/// 4×4 and 2×2 maps at 64 px 0.57–0.84, on 8×8 maps (resnet18 at 64 px, resnet_small) 0.66–0.81.
/// Stride 2 (tried with this loop, from 7×7, 4×4, 16×16 and 8×8 maps) took 0.77–1.25: copying
/// the larger input into lanes costs about what the product saves. A 1×1 kernel took 3x.
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    let groups = g.batch.div_ceil(LANES);
    let lane_use = g.batch as f64 / (groups * LANES).max(1) as f64;
    let padded_pixels = (g.in_height + g.padding_begin[0] + g.padding_end[0]) * (g.in_width + g.padding_begin[1] + g.padding_end[1]);
    let group_bytes = g.in_channels * padded_pixels * LANES * size_of::<f32>();
    g.stride == [1, 1]
        && group_bytes <= max_group_bytes()
        && (9..=MAX_TAPS).contains(&(g.kernel_height * g.kernel_width))
        && g.out_width() < MAX_WIDTH
        && g.out_channels.is_multiple_of(CHANNELS)
        && lane_use >= MIN_LANE_USE
        && crate::isa::avx512()
}

/// `y = conv2d(x, w)` for a geometry [`applies`] accepted, each value through `epilogue`.
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: Option<&Epilogue>) -> Vec<f32> {
    assert!(applies(g), "batch-lanes convolution called on a geometry it does not cover");
    assert_eq!(x.len(), g.input_len(), "conv input length");
    assert_eq!(weight.len(), g.weight_len(), "conv weight length");
    assert!(epilogue.is_none_or(|epilogue| epilogue.fits(g.out_channels, g.output_len())), "batch-lanes convolution: epilogue of another shape");
    imp::forward(g, x, weight, epilogue)
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    pub(super) fn forward(_: &crate::geometry::ConvGeometry, _: &[f32], _: &[f32], _: Option<&crate::epilogue::Epilogue>) -> Vec<f32> {
        unreachable!("`applies` is false off x86_64")
    }
}

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/batch_lanes_conv.rs"]
mod imp;
