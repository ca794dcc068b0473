//! The AVX2 + FMA half of `direct_conv.rs` (its `avx2` module), for CPUs without AVX-512 (Zen 2/3,
//! most laptops) and under `TLRUN_KERNELS_ISA=avx2`. The same tiles of 16 pixels and blocks of 16
//! output channels as the AVX-512 kernel, in 8-lane registers: a tile is two vectors, and a block's
//! channels go four at a time (8 sums, 2 pixel vectors and a broadcast: 11 of the 16 registers;
//! 16 channels at once would spill). Each output lane is the same chain of fused multiply-adds in
//! the same order (input channel, row, column of the kernel) as in the AVX-512 kernel, so the
//! forward gives its bits. There is no AVX2 weight gradient: one written like the AVX-512 one,
//! one filter at a time (two would need 18 registers), took 1.5–1.8x gemm's time on
//! resnet_small's 16- and 32-channel layers, so at avx2 the weight gradient stays with gemm.

use std::arch::x86_64::*;
use std::cell::RefCell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{BLOCK, Tile, blocked_weight, pad, tiles};
use crate::buffer::filled;
use crate::epilogue::Epilogue;
use crate::geometry::ConvGeometry;

/// Lanes of one vector.
const LANES: usize = 8;

/// A block's output channels summed at once. Tried instead: blocks of 8 channels over one vector
/// of 8 pixels (8 sums; weights of 18 KB instead of 37 KB), which took 1.25–1.4x this one's
/// time at 32 and 16 px and the same at 56 px (`tlrun bench --ops` at avx2, 2026-12-07).
const CHANNELS_AT_ONCE: usize = 4;

thread_local! {
    /// One image's input with a border of zeros, reused from call to call.
    static PADDED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// The integer masks of a tile's two vectors: lanes `0..lanes` of the 16 (a masked load reads,
/// and a masked store writes, only the lanes whose mask's top bit is set).
#[target_feature(enable = "avx2,fma")]
fn tile_masks(lanes: usize) -> [__m256i; 2] {
    let lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    let first = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes.min(LANES) as i32), lane);
    let second = _mm256_cmpgt_epi32(_mm256_set1_epi32(lanes.saturating_sub(LANES) as i32), lane);
    [first, second]
}

pub(super) fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: Option<&Epilogue>) -> Vec<f32> {
    assert_eq!(x.len(), g.input_len(), "conv input length");
    assert_eq!(weight.len(), g.weight_len(), "conv weight length");
    assert!(crate::isa::avx2(), "the AVX2 direct convolution on a CPU without AVX2 and FMA");
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
                // SAFETY: AVX2 and FMA are present (asserted above); the lengths asserted in
                // `image` bound every access.
                unsafe { pad_here(g, x, &mut padded[..padded_len]) };
                unsafe { image(g, &tiles, &padded[..padded_len], &weight, y, epilogue.map(|epilogue| (epilogue, index * image_out))) }
            })
        });
    };
    // SAFETY: each image's chunk of `y` is written whole by `image`, which covers every tile of
    // every block of channels.
    unsafe { filled(g.output_len(), fill) }
}

/// [`super::pad`] compiled for AVX2: its runs of 16 become vector moves.
#[target_feature(enable = "avx2,fma")]
fn pad_here(g: &ConvGeometry, x: &[f32], padded: &mut [f32]) {
    pad(g, x, padded);
}

/// One image, as the AVX-512 kernel's `image`: `y` [K, H, W] from `padded` [C, H + 2, W + 2].
#[target_feature(enable = "avx2,fma")]
unsafe fn image(g: &ConvGeometry, tiles: &[Tile], padded: &[f32], weight: &[f32], y: &mut [MaybeUninit<f32>], epilogue: Option<(&Epilogue, usize)>) {
    let (channels, height, width) = (g.in_channels, g.in_height, g.in_width);
    let padded_width = width + 2;
    let padded_plane = (height + 2) * padded_width;
    super::check_image(g, tiles, padded, weight, y.len(), epilogue);
    let y = y.as_mut_ptr().cast::<f32>();
    // SAFETY: as in the AVX-512 kernel: a tile's lanes read padded row `row + r` ≤ H + 1 and
    // columns up to `column + lanes − 1 + 2` ≤ W + 1 (a masked load reads its lanes only); taps
    // index inside the block's C · 9 · 16 weights; a store writes the tile's lanes of one row.
    unsafe {
        for block in 0..g.out_channels / BLOCK {
            let block_weight = weight.as_ptr().add(block * channels * 9 * BLOCK);
            for tile in tiles {
                let offset = tile.row * padded_width + tile.column;
                let masks = tile_masks(tile.lanes);
                // Where the second vector's lanes start; a tile of 8 lanes or fewer has none, and
                // its empty masked load stays at the first's address (inside the plane).
                let second = if tile.lanes > LANES { LANES } else { 0 };
                for group in (0..BLOCK).step_by(CHANNELS_AT_ONCE) {
                    // Sums of channels group … group + 3, each over the tile's two vectors. A
                    // macro, not a closure, so that the intrinsics are inlined (see the AVX-512
                    // kernel).
                    macro_rules! tile_sums {
                        ($load:ident) => {{
                            let mut sums = [[_mm256_setzero_ps(); 2]; CHANNELS_AT_ONCE];
                            for c in 0..channels {
                                let plane = padded.as_ptr().add(c * padded_plane + offset);
                                for r in 0..3 {
                                    for s in 0..3 {
                                        let tap = r * padded_width + s;
                                        let pixels = [$load(plane.add(tap), masks[0]), $load(plane.add(tap + second), masks[1])];
                                        let taps = block_weight.add(((c * 3 + r) * 3 + s) * BLOCK + group);
                                        for (k, sum) in sums.iter_mut().enumerate() {
                                            let tap_weight = _mm256_broadcast_ss(&*taps.add(k));
                                            sum[0] = _mm256_fmadd_ps(tap_weight, pixels[0], sum[0]);
                                            sum[1] = _mm256_fmadd_ps(tap_weight, pixels[1], sum[1]);
                                        }
                                    }
                                }
                            }
                            sums
                        }};
                    }
                    #[inline(always)]
                    unsafe fn whole(at: *const f32, _: __m256i) -> __m256 {
                        // SAFETY: the caller's (a full tile's lanes are inside the row).
                        unsafe { _mm256_loadu_ps(at) }
                    }
                    #[inline(always)]
                    unsafe fn masked(at: *const f32, mask: __m256i) -> __m256 {
                        // SAFETY: the caller's (only the mask's lanes are read).
                        unsafe { _mm256_maskload_ps(at, mask) }
                    }
                    let sums = if tile.lanes == BLOCK { tile_sums!(whole) } else { tile_sums!(masked) };
                    for (k, sum) in sums.iter().enumerate() {
                        let channel = block * BLOCK + group + k;
                        let at = (channel * height + tile.row) * width + tile.column;
                        for half in 0..1 + usize::from(tile.lanes > LANES) {
                            let lanes_at = at + half * LANES;
                            let value = match epilogue {
                                Some((epilogue, start)) => epilogue.vector8(sum[half], channel, start + lanes_at, masks[half]),
                                None => sum[half],
                            };
                            _mm256_maskstore_ps(y.add(lanes_at), masks[half], value);
                        }
                    }
                }
            }
        }
    }
}
