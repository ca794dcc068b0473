//! The AVX-512 half of `direct_conv.rs` (its `imp` module): intrinsics and assembly, x86-64 only.

use std::arch::x86_64::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{BLOCK, Tile, blocked_weight, tiles};
use crate::buffer::filled;
use crate::geometry::ConvGeometry;
use crate::epilogue::Epilogue;

thread_local! {
    /// One image's input with a border of zeros, reused from call to call.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

pub(super) fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: Option<&Epilogue>) -> Vec<f32> {
    assert_eq!(x.len(), g.input_len(), "conv input length");
    assert_eq!(weight.len(), g.weight_len(), "conv weight length");
    let weight = blocked_weight(g, weight, BLOCK);
    let tiles = tiles(g.in_height, g.in_width);
    let (height, width) = (g.in_height, g.in_width);
    let (image_in, image_out) = (g.in_channels * height * width, g.out_channels * height * width);
    let padded_len = g.in_channels * (height + 2) * (width + 2);
    let fill = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(image_out).zip(x.par_chunks(image_in)).enumerate().for_each(|(index, (y, x))| {
            PADDED.with(|cell| {
                let mut padded = cell.borrow_mut();
                padded.resize(padded_len, 0.0);
                // SAFETY: `applies` checked AVX-512F at run time; the lengths asserted in
                // `image` bound every access.
                unsafe {
                    pad(g, x, &mut padded[..padded_len]);
                    image(g, &tiles, &padded[..padded_len], &weight, y, epilogue.map(|epilogue| (epilogue, index * image_out)));
                }
            })
        });
    };
    // SAFETY: each image's chunk of `y` is written whole by `image`, which covers every tile of
    // every block of channels.
    unsafe { filled(g.output_len(), fill) }
}

/// Images a weight-gradient task sums: a split fixed by the batch, so the partial sums, added
/// in task order, give the same bits on any number of threads.
const GRADIENT_IMAGES: usize = 8;

/// Output channels a weight-gradient block sums for, each with its 9 taps: 18 sums in registers.
const GRADIENT_CHANNELS: usize = 2;

pub(super) fn weight_gradient(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    let (height, width) = (g.in_height, g.in_width);
    let (image_in, image_out) = (g.in_channels * height * width, g.out_channels * height * width);
    let padded_len = g.in_channels * (height + 2) * (width + 2);
    let tiles = tiles(height, width);
    let partial_sums: Vec<Vec<f32>> = x
        .par_chunks(GRADIENT_IMAGES * image_in)
        .zip(dy.par_chunks(GRADIENT_IMAGES * image_out))
        .map(|(x, dy)| {
            let images = x.len() / image_in;
            let mut padded = vec![0.0f32; images * padded_len];
            let mut dw = vec![0.0f32; g.weight_len()];
            // SAFETY: `applies` checked AVX-512F at run time; `pad` and `gradient_block`
            // assert the lengths that bound their accesses.
            unsafe {
                for (image, padded) in x.chunks_exact(image_in).zip(padded.chunks_exact_mut(padded_len)) {
                    pad(g, image, padded);
                }
                for first in (0..g.out_channels).step_by(GRADIENT_CHANNELS) {
                    for c in 0..g.in_channels {
                        let taps = gradient_block(g, &tiles, &padded, dy, first, c);
                        for (k, filter_taps) in taps.iter().enumerate() {
                            dw[((first + k) * g.in_channels + c) * 9..][..9].copy_from_slice(filter_taps);
                        }
                    }
                }
            }
            dw
        })
        .collect();
    let mut dw = vec![0.0f32; g.weight_len()];
    for partial in partial_sums {
        dw.iter_mut().zip(&partial).for_each(|(total, value)| *total += value);
    }
    dw
}

/// The 3×3 taps of filters `first`, `first + 1` at input channel `c`, summed over the images of
/// `padded` ([images, C, H + 2, W + 2]) and `dy` ([images, K, H, W]): each tile's two output
/// gradients times the 9 input vectors around it, 18 sums of 16 lanes, then each sum's lanes
/// added.
#[target_feature(enable = "avx512f")]
unsafe fn gradient_block(g: &ConvGeometry, tiles: &[Tile], padded: &[f32], dy: &[f32], first: usize, c: usize) -> [[f32; 9]; GRADIENT_CHANNELS] {
    let (height, width) = (g.in_height, g.in_width);
    let padded_width = width + 2;
    let padded_plane = (height + 2) * padded_width;
    let plane = height * width;
    let images = dy.len() / (g.out_channels * plane);
    assert!(padded.len() == images * g.in_channels * padded_plane && dy.len() == images * g.out_channels * plane);
    assert!(first + GRADIENT_CHANNELS <= g.out_channels && c < g.in_channels);
    for tile in tiles {
        assert!(tile.row < height && tile.column + tile.lanes <= width && (1..=BLOCK).contains(&tile.lanes));
    }
    let mut sums = [[_mm512_setzero_ps(); 9]; GRADIENT_CHANNELS];
    for image in 0..images {
        // SAFETY: a tile reads `lanes` values of output row `row` from `column` in the two dy
        // planes, and padded rows row + r ≤ H + 1, columns column + s … column + s + lanes − 1
        // ≤ W + 1 (a masked load reads its lanes only): inside the planes asserted above.
        unsafe {
            let input = padded.as_ptr().add((image * g.in_channels + c) * padded_plane);
            let gradients = dy.as_ptr().add((image * g.out_channels + first) * plane);
            for tile in tiles {
                let mask = crate::simd::first_lanes(tile.lanes);
                let at = tile.row * width + tile.column;
                let dy0 = _mm512_maskz_loadu_ps(mask, gradients.add(at));
                let dy1 = _mm512_maskz_loadu_ps(mask, gradients.add(plane + at));
                for r in 0..3 {
                    for s in 0..3 {
                        let value = _mm512_maskz_loadu_ps(mask, input.add((tile.row + r) * padded_width + tile.column + s));
                        sums[0][r * 3 + s] = _mm512_fmadd_ps(dy0, value, sums[0][r * 3 + s]);
                        sums[1][r * 3 + s] = _mm512_fmadd_ps(dy1, value, sums[1][r * 3 + s]);
                    }
                }
            }
        }
    }
    // A plain loop: `array::map` is not compiled for AVX-512 and took 800 ns a call here.
    let mut totals = [[0.0f32; 9]; GRADIENT_CHANNELS];
    for (total, sum) in totals.iter_mut().flatten().zip(sums.iter().flatten()) {
        *total = _mm512_reduce_add_ps(*sum);
    }
    totals
}

/// [`super::pad`] compiled for AVX-512: its runs of 16 become vector moves.
#[target_feature(enable = "avx512f")]
fn pad(g: &ConvGeometry, x: &[f32], padded: &mut [f32]) {
    super::pad(g, x, padded);
}

/// One image: `y` [K, H, W] from `padded` [C, H + 2, W + 2] and the blocked weight; each
/// value through the epilogue, if any, whose output starts this image at the offset given.
#[target_feature(enable = "avx512f")]
unsafe fn image(g: &ConvGeometry, tiles: &[Tile], padded: &[f32], weight: &[f32], y: &mut [MaybeUninit<f32>], epilogue: Option<(&Epilogue, usize)>) {
    let (channels, height, width) = (g.in_channels, g.in_height, g.in_width);
    let padded_width = width + 2;
    let padded_plane = (height + 2) * padded_width;
    super::check_image(g, tiles, padded, weight, y.len(), epilogue);
    let y = y.as_mut_ptr().cast::<f32>();
    // SAFETY: every access stays inside the buffers whose lengths are asserted above. A
    // tile's lanes read padded row `row + r` ≤ H + 1, columns `column + s …` up to
    // `column + lanes − 1 + 2` ≤ W + 1 of its W + 2 (a masked load reads its lanes only).
    // Taps index block · C · 9 · 16 + (c · 9 + tap) · 16 + k < K · C · 9; a tile's store
    // writes `lanes` values of output row `row` from `column`, and the epilogue reads the
    // residual's at the same place of the image.
    unsafe {
        for block in 0..g.out_channels / BLOCK {
            let block_weight = weight.as_ptr().add(block * channels * 9 * BLOCK);
            for tile in tiles {
                let offset = tile.row * padded_width + tile.column;
                // The 16 output channels' sums over every input channel and tap; `$load`
                // gives the tile's pixels for the tap at offset `$tap` = r·(W + 2) + s in the
                // padded plane `$plane`. A macro, not a closure: closures do not take on the
                // function's target features, and the intrinsics would not be inlined.
                macro_rules! tile_sums {
                    ($plane:ident, $tap:ident => $load:expr) => {{
                        let mut sums = [_mm512_setzero_ps(); BLOCK];
                        for c in 0..channels {
                            let $plane = padded.as_ptr().add(c * padded_plane);
                            for r in 0..3 {
                                for s in 0..3 {
                                    let $tap = r * padded_width + s;
                                    let pixels = $load;
                                    let taps = block_weight.add(((c * 3 + r) * 3 + s) * BLOCK);
                                    for (k, sum) in sums.iter_mut().enumerate() {
                                        *sum = _mm512_fmadd_ps(_mm512_set1_ps(*taps.add(k)), pixels, *sum);
                                    }
                                }
                            }
                        }
                        sums
                    }};
                }
                let sums = if tile.lanes == BLOCK {
                    tile_sums!(plane, tap => _mm512_loadu_ps(plane.add(offset + tap)))
                } else {
                    let mask = crate::simd::first_lanes(tile.lanes);
                    tile_sums!(plane, tap => _mm512_maskz_loadu_ps(mask, plane.add(offset + tap)))
                };
                let store = crate::simd::first_lanes(tile.lanes);
                for (k, sum) in sums.iter().enumerate() {
                    let channel = block * BLOCK + k;
                    let at = (channel * height + tile.row) * width + tile.column;
                    let value = match epilogue {
                        Some((epilogue, start)) => epilogue.vector(*sum, channel, start + at, store),
                        None => *sum,
                    };
                    _mm512_mask_storeu_ps(y.add(at), store, value);
                }
            }
        }
    }
}
