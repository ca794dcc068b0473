//! The 3×3, stride 1, padding 1 convolution computed directly with AVX-512, without im2col: each
//! step loads 16 neighbouring pixels of one input row once and multiplies them into 16 output
//! channels held in registers (the scheme of oneDNN's direct convolutions). im2col × gemm writes
//! and reads back a patch matrix nine times the input's size, which on resnet_small's 16-channel
//! layers cost more than the multiplications; and gemm's 64-row tiles are a quarter used when a
//! layer has 16 output channels. Measured on one core: 164 GFLOP/s for 16 → 16 channels at 32 px,
//! against about 60 for im2col × gemm (`tlrun bench --ops`, docs/performance.md).
//!
//! It covers output channels in multiples of 16 and rows of a multiple of 16 pixels, on CPUs with
//! AVX-512F (checked at run time); everything else takes im2col × gemm.

use crate::conv::ConvGeometry;

/// Output channels per register block, and pixels per vector.
const BLOCK: usize = 16;

/// Whether the direct kernel computes this convolution on this CPU.
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    let shape = g.kernel_height == 3
        && g.kernel_width == 3
        && g.stride == [1, 1]
        && g.padding_begin == [1, 1]
        && g.padding_end == [1, 1]
        && g.out_channels.is_multiple_of(BLOCK)
        && g.in_width.is_multiple_of(BLOCK);
    shape && avx512()
}

#[cfg(target_arch = "x86_64")]
fn avx512() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

#[cfg(not(target_arch = "x86_64"))]
fn avx512() -> bool {
    false
}

/// `y = conv2d(x, w)` for a geometry [`applies`] accepted.
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    assert!(applies(g), "direct convolution called on a geometry it does not cover");
    imp::forward(g, x, weight)
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    pub(super) fn forward(_: &crate::conv::ConvGeometry, _: &[f32], _: &[f32]) -> Vec<f32> {
        unreachable!("`applies` is false off x86_64")
    }
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;
    use std::cell::RefCell;
    use std::mem::MaybeUninit;

    use rayon::prelude::*;

    use super::BLOCK;
    use crate::conv::{ConvGeometry, filled};

    thread_local! {
        /// One image's input with a border of zeros, reused from call to call.
        static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
    }

    /// `[K, C, 3, 3]` → `[K / 16, C, 3, 3, 16]`: the 16 weights one input value meets are adjacent.
    fn blocked_weight(g: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
        let taps = g.in_channels * 9;
        let mut blocked = vec![0.0f32; weight.len()];
        for (k, filter) in weight.chunks_exact(taps).enumerate() {
            let (block, lane) = (k / BLOCK, k % BLOCK);
            for (tap, &value) in filter.iter().enumerate() {
                blocked[(block * taps + tap) * BLOCK + lane] = value;
            }
        }
        blocked
    }

    pub(super) fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
        assert_eq!(x.len(), g.input_len(), "conv input length");
        assert_eq!(weight.len(), g.weight_len(), "conv weight length");
        let weight = blocked_weight(g, weight);
        let (height, width) = (g.in_height, g.in_width);
        let (image_in, image_out) = (g.in_channels * height * width, g.out_channels * height * width);
        let padded_len = g.in_channels * (height + 2) * (width + 2);
        filled(g.output_len(), |y| {
            y.par_chunks_mut(image_out).zip(x.par_chunks(image_in)).for_each(|(y, x)| {
                PADDED.with(|cell| {
                    let mut padded = cell.borrow_mut();
                    padded.clear();
                    padded.resize(padded_len, 0.0);
                    pad(g, x, &mut padded);
                    // SAFETY: `applies` checked AVX-512F at run time; the lengths asserted in
                    // `image` bound every access.
                    unsafe { image(g, &padded, &weight, y) };
                })
            });
        })
    }

    /// The image's channels into `padded` (zeros already), one pixel in from every edge.
    fn pad(g: &ConvGeometry, x: &[f32], padded: &mut [f32]) {
        let (height, width) = (g.in_height, g.in_width);
        let padded_width = width + 2;
        for (plane, padded_plane) in x.chunks_exact(height * width).zip(padded.chunks_exact_mut((height + 2) * padded_width)) {
            for (row, padded_row) in plane.chunks_exact(width).zip(padded_plane.chunks_exact_mut(padded_width).skip(1)) {
                padded_row[1..=width].copy_from_slice(row);
            }
        }
    }

    /// One image: `y` [K, H, W] from `padded` [C, H + 2, W + 2] and the blocked weight.
    #[target_feature(enable = "avx512f")]
    unsafe fn image(g: &ConvGeometry, padded: &[f32], weight: &[f32], y: &mut [MaybeUninit<f32>]) {
        let (channels, height, width) = (g.in_channels, g.in_height, g.in_width);
        let padded_width = width + 2;
        let padded_plane = (height + 2) * padded_width;
        assert_eq!(padded.len(), channels * padded_plane);
        assert_eq!(weight.len(), g.out_channels * channels * 9);
        assert_eq!(y.len(), g.out_channels * height * width);
        assert!(g.out_channels.is_multiple_of(BLOCK) && width.is_multiple_of(BLOCK));
        let y = y.as_mut_ptr().cast::<f32>();
        // SAFETY: the pointers stay inside the buffers whose lengths are asserted above: a load
        // reads padded row `row + r` ≤ H + 1 from column `column + s` ≤ W − 16 + 2 for 16 values,
        // within its W + 2; taps index block · C · 9 · 16 + (c · 9 + tap) · 16 + k < K · C · 9; a
        // store writes 16 values of output row `row` from `column` ≤ W − 16.
        unsafe {
            for block in 0..g.out_channels / BLOCK {
                let block_weight = weight.as_ptr().add(block * channels * 9 * BLOCK);
                for row in 0..height {
                    for column in (0..width).step_by(BLOCK) {
                        let mut sums = [_mm512_setzero_ps(); BLOCK];
                        for c in 0..channels {
                            for r in 0..3 {
                                // Row `row + r` of the padded plane, from column `column`: the input
                                // pixels `column − 1 + s …` for the kernel column s.
                                let input = padded.as_ptr().add(c * padded_plane + (row + r) * padded_width + column);
                                for s in 0..3 {
                                    let pixels = _mm512_loadu_ps(input.add(s));
                                    let taps = block_weight.add(((c * 3 + r) * 3 + s) * BLOCK);
                                    for (k, sum) in sums.iter_mut().enumerate() {
                                        *sum = _mm512_fmadd_ps(_mm512_set1_ps(*taps.add(k)), pixels, *sum);
                                    }
                                }
                            }
                        }
                        for (k, sum) in sums.iter().enumerate() {
                            _mm512_storeu_ps(y.add(((block * BLOCK + k) * height + row) * width + column), *sum);
                        }
                    }
                }
            }
        }
    }
}
