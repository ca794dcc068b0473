//! Convolution of narrow maps with the batch in the lanes: each vector holds one pixel of 16 images
//! (AVX-512) or 8 (AVX2), so a map of any width fills every lane (resnet18's 7×7, 4×4 and 2×2 maps
//! at 28 px, its 4×4 and 2×2 maps at 64 px). The input is first copied, padded, into
//! [C, H', W', lanes] per group of images (16×16 or 8×8 transposes); then each step loads one tap
//! of 3 output pixels (3 vectors) and multiplies it into 8 output channels (AVX-512; 4 at a time at
//! AVX2, which has 16 registers), the sums held in registers over every input channel and tap (an
//! assembly loop), and the sums go back to NCHW through transposes again: no patch matrix nine
//! times the input's size, as im2col × gemm writes and reads back. Output channels in multiples of
//! 8, any kernel, stride 1, any padding. Both levels sum each output in the same order with the
//! same fused multiply-adds, so the AVX2 kernel gives the AVX-512 kernel's bits.

use crate::geometry::ConvGeometry;
use crate::epilogue::Epilogue;

/// Images an AVX-512 vector holds (an AVX2 vector: 8).
const LANES: usize = 16;

/// Images a vector holds at the level in use.
fn lanes() -> usize {
    if crate::isa::avx512() { LANES } else { avx2::LANES }
}

/// Output channels a register block sums.
const CHANNELS: usize = 8;

/// Share of the lanes that must hold an image: batches of 12 or more at AVX-512, 6 at AVX2 (a
/// batch of 50 fills 50 of 64 lanes).
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
/// that stays in the L2 cache, a batch that fills the lanes, and AVX-512F or AVX2 + FMA. Against im2col × gemm,
/// batch 64, 2 threads, kernel probe (best of 7, alternating in one process, 2026-11-30): 3×3
/// stride 1 on resnet18's 7×7, 4×4 and 2×2 maps at 28 px took 0.57–0.73 of gemm's time, on its
/// 4×4 and 2×2 maps at 64 px 0.57–0.84, on 8×8 maps (resnet18 at 64 px, resnet_small) 0.66–0.81.
/// Stride 2 (tried with this loop, from 7×7, 4×4, 16×16 and 8×8 maps) took 0.77–1.25: copying
/// the larger input into lanes costs about what the product saves. A 1×1 kernel took 3x.
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    let lanes = lanes();
    let groups = g.batch.div_ceil(lanes);
    let lane_use = g.batch as f64 / (groups * lanes).max(1) as f64;
    let padded_pixels = (g.in_height + g.padding_begin[0] + g.padding_end[0]) * (g.in_width + g.padding_begin[1] + g.padding_end[1]);
    let group_bytes = g.in_channels * padded_pixels * lanes * size_of::<f32>();
    g.stride == [1, 1]
        && group_bytes <= max_group_bytes()
        && (9..=MAX_TAPS).contains(&(g.kernel_height * g.kernel_width))
        && g.out_width() < MAX_WIDTH
        && g.out_channels.is_multiple_of(CHANNELS)
        && lane_use >= MIN_LANE_USE
        && crate::isa::avx2()
}

/// `y = conv2d(x, w)` for a geometry [`applies`] accepted, each value through `epilogue`.
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: Option<&Epilogue>) -> Vec<f32> {
    assert!(applies(g), "batch-lanes convolution called on a geometry it does not cover");
    assert_eq!(x.len(), g.input_len(), "conv input length");
    assert_eq!(weight.len(), g.weight_len(), "conv weight length");
    assert!(epilogue.is_none_or(|epilogue| epilogue.fits(g.out_channels, g.output_len())), "batch-lanes convolution: epilogue of another shape");
    if crate::isa::avx512() { imp::forward(g, x, weight, epilogue) } else { avx2::forward(g, x, weight, epilogue) }
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
/// The input's size with its padding.
fn padded_size(g: &ConvGeometry) -> (usize, usize) {
    (g.in_height + g.padding_begin[0] + g.padding_end[0], g.in_width + g.padding_begin[1] + g.padding_end[1])
}

#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
/// The kernel offsets `[first, end)` along one axis that read inside the image for the outputs
/// `first_output ..= last_output` together: tap t of output o reads o·stride + t − padding.
fn live_taps(first_output: usize, last_output: usize, stride: usize, padding: usize, size: usize, kernel: usize) -> (usize, usize) {
    let first = padding.saturating_sub(last_output * stride).min(kernel);
    let end = (size + padding).saturating_sub(first_output * stride).min(kernel);
    (first, end.max(first))
}

/// The live taps of a block of `pixels` output pixels from (p, q), as (input offset, weight
/// offset) in bytes from the block's first window and the filters at a channel, for inputs held
/// `lanes` images a pixel; and how many there are. Taps that read only padding for every pixel of
/// the block are left out (on a 2×2 map, 5 of 9).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn tap_list(g: &ConvGeometry, p: usize, q: usize, pixels: usize, lanes: usize) -> ([[u64; 2]; MAX_TAPS], usize) {
    let (_, padded_width) = padded_size(g);
    let rows = live_taps(p, p, g.stride[0], g.padding_begin[0], g.in_height, g.kernel_height);
    let columns = live_taps(q, q + pixels - 1, g.stride[1], g.padding_begin[1], g.in_width, g.kernel_width);
    let mut list = [[0u64; 2]; MAX_TAPS];
    let mut count = 0;
    for r in rows.0..rows.1 {
        for s in columns.0..columns.1 {
            list[count] = [((r * padded_width + s) * lanes * 4) as u64, ((r * g.kernel_width + s) * 4) as u64];
            count += 1;
        }
    }
    (list, count)
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    pub(super) fn forward(_: &crate::geometry::ConvGeometry, _: &[f32], _: &[f32], _: Option<&crate::epilogue::Epilogue>) -> Vec<f32> {
        unreachable!("`applies` is false off x86_64")
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod avx2 {
    pub(super) const LANES: usize = 8;
    pub(super) use super::imp::forward;
}

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/batch_lanes_conv.rs"]
mod imp;

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/batch_lanes_conv_avx2.rs"]
mod avx2;

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;

    /// Same geometries as conv.rs's definition test (part-filled groups at 8 and 16 lanes, 2×2 to
    /// 7×7 maps, a 7×7 kernel, asymmetric padding, 40 output channels, runs that cross channels),
    /// with and without the epilogue: the AVX2 kernel's values are the AVX-512 kernel's, bit for bit.
    #[test]
    fn the_avx2_kernel_gives_the_avx512_kernels_bits() {
        if crate::isa::detected() < crate::isa::Isa::Avx512 || !crate::isa::avx2() {
            eprintln!("not an AVX-512 CPU running at avx2 or above: nothing to compare");
            return;
        }
        let cases = [
            (16, 5, 16, [2, 2], [3, 3], [1, 1], [1, 1]),
            (13, 20, 24, [3, 3], [3, 3], [1, 1], [1, 1]),
            (28, 3, 8, [7, 7], [3, 3], [1, 1], [1, 1]),
            (32, 3, 64, [7, 7], [7, 7], [3, 3], [3, 3]),
            (13, 4, 40, [5, 6], [3, 4], [0, 2], [1, 0]),
            (64, 2, 16, [4, 4], [3, 3], [1, 1], [1, 1]),
        ];
        for (batch, in_channels, out_channels, [in_height, in_width], [kernel_height, kernel_width], padding_begin, padding_end) in cases {
            let g = ConvGeometry { batch, in_channels, in_height, in_width, out_channels, kernel_height, kernel_width, stride: [1, 1], padding_begin, padding_end };
            let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let w: Vec<f32> = (0..g.weight_len()).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
            let residual: Vec<f32> = (0..g.output_len()).map(|i| ((i * 31 % 83) as f32 - 41.0) / 20.0).collect();
            let scale: Vec<f32> = (0..out_channels).map(|k| 0.5 + k as f32 / 7.0).collect();
            let shift: Vec<f32> = (0..out_channels).map(|k| k as f32 / 3.0 - 1.0).collect();
            let epilogue = Epilogue { scale: &scale, shift: &shift, residual: Some(&residual), relu: true };
            for with in [None, Some(&epilogue)] {
                let (wide, narrow) = (imp::forward(&g, &x, &w, with), avx2::forward(&g, &x, &w, with));
                assert_eq!(wide.len(), narrow.len());
                let same = wide.iter().zip(&narrow).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{g:?}, epilogue {}: the AVX2 kernel differs", with.is_some());
            }
        }
    }
}
