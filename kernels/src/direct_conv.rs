//! The 3×3, stride 1, padding 1 convolution computed directly with AVX-512, without im2col: each
//! step loads 16 neighbouring pixels of one input row once and multiplies them into 16 output
//! channels held in registers (the scheme of oneDNN's direct convolutions). im2col × gemm writes
//! and reads back a patch matrix nine times the input's size, which on layers of few channels
//! costs as much as the multiplications. Forward of a batch of 64 on 2 cores, alternating the two
//! in one process (2026-11-30): 16 → 16 channels at 32 px 1.32–1.40 ms against im2col × gemm's
//! 1.92; 32 → 32 at 16 px 1.12–1.41 against 1.79–2.05; 64 → 64 at 16 px 4.96 against 5.97.
//!
//! It covers output channels in multiples of 16, rows of at least 16 pixels (the rest of a row in
//! a masked vector), up to 64 input channels, on CPUs with AVX-512F or with AVX2 and FMA (the
//! level `isa::current` allows; `x86_64/direct_conv_avx2.rs` holds the 8-lane version, which
//! gives the AVX-512 forward's bits); everything else takes im2col × gemm.

use crate::geometry::ConvGeometry;
use crate::epilogue::Epilogue;

/// Output channels per register block, and pixels per vector.
const BLOCK: usize = 16;

/// Lanes in use across a map's tiles below which im2col × gemm is the better choice (rows of 20
/// pixels would fill 20 of 32).
const MIN_LANE_USE: f64 = 0.75;

/// The weights of one block of 16 output channels (C · 9 · 16 floats) are read again for every
/// tile: from the L1 cache they keep up with the multiplications, from L2 they do not. They may
/// take five sixths of the L1d (the input rows need the rest): 40 KB of a 48 KB L1d, where up to
/// 64 input channels fit; above, im2col × gemm was faster on every map size measured (128 → 128
/// channels on 4, 8 and 28 px maps: 120–144 against 159–184 GFLOP/s on 2 cores).
fn l1_weight_bytes() -> usize {
    crate::cache::sizes().l1_data * 5 / 6
}

/// Whether the direct kernel computes this convolution on this CPU. Rows shorter than a vector
/// stay with im2col × gemm: packing two rows of 7 or 8 pixels into one vector (tried) took 1.26x
/// and 1.07x gemm's time.
pub(crate) fn applies(g: &ConvGeometry) -> bool {
    let shape = g.kernel_height == 3
        && g.kernel_width == 3
        && g.stride == [1, 1]
        && g.padding_begin == [1, 1]
        && g.padding_end == [1, 1]
        && g.out_channels.is_multiple_of(BLOCK)
        && g.in_width >= BLOCK;
    let weights_in_cache = g.in_channels * 9 * BLOCK * size_of::<f32>() <= l1_weight_bytes();
    shape && weights_in_cache && lane_use(&tiles(g.in_height, g.in_width)) >= MIN_LANE_USE && crate::isa::avx2()
}

/// The output pixels one vector computes: `lanes` (16, or the rest of a row) consecutive pixels of
/// row `row` from column `column`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Tile {
    row: usize,
    column: usize,
    lanes: usize,
}

/// An output map of `height` × `width` (at least 16) in tiles: each row in vectors of 16 and a
/// masked rest.
fn tiles(height: usize, width: usize) -> Vec<Tile> {
    (0..height)
        .flat_map(|row| (0..width).step_by(BLOCK).map(move |column| Tile { row, column, lanes: BLOCK.min(width - column) }))
        .collect()
}

/// The share of the tiles' lanes that hold an output pixel.
fn lane_use(tiles: &[Tile]) -> f64 {
    let used: usize = tiles.iter().map(|tile| tile.lanes).sum();
    used as f64 / (tiles.len().max(1) * BLOCK) as f64
}

/// `y = conv2d(x, w)` for a geometry [`applies`] accepted, each value through `epilogue`.
pub(crate) fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: Option<&Epilogue>) -> Vec<f32> {
    assert!(applies(g), "direct convolution called on a geometry it does not cover");
    assert!(epilogue.is_none_or(|epilogue| epilogue.fits(g.out_channels, g.output_len())), "direct convolution: epilogue of another shape");
    if crate::isa::avx512() { imp::forward(g, x, weight, epilogue) } else { avx2::forward(g, x, weight, epilogue) }
}

/// Whether [`weight_gradient`] computes this convolution's weight gradient: what [`applies`]
/// takes, with at most 32 output channels, on AVX-512 (at avx2 gemm was faster: see
/// `x86_64/direct_conv_avx2.rs`). Against im2col × gemm, batch 64, 2 threads (kernel
/// probe, best of 7, alternating, 2026-11-30): resnet_small's 16 → 16 channels at 32 px 0.55–0.61
/// of gemm's time, its 3 → 16 stem 0.49–0.58, 32 → 32 at 16 px 0.83–0.96; resnet18's 64 → 64 at
/// 16 px 1.08–1.10, where gemm's tiles are full.
pub(crate) fn weight_gradient_applies(g: &ConvGeometry) -> bool {
    applies(g) && g.out_channels <= MAX_GRADIENT_CHANNELS && crate::isa::avx512()
}

/// Output channels above which the weight gradient stays with im2col × gemm.
const MAX_GRADIENT_CHANNELS: usize = 32;

/// `dw[k, c, r, s] = Σ_n Σ_(p,q) dy[n, k, p, q] · x[n, c, p + r − 1, q + s − 1]`, `[K, C, 3, 3]`,
/// for a geometry [`weight_gradient_applies`] accepted: 16 output pixels of a row a vector, as the
/// forward. gemm computes this as dy [K, N·H·W] × patchesᵀ, whose K rows fill a quarter of its
/// tiles at 16 output channels (resnet_small's first stage: 89 GFLOP/s).
pub(crate) fn weight_gradient(g: &ConvGeometry, x: &[f32], dy: &[f32]) -> Vec<f32> {
    assert!(weight_gradient_applies(g), "direct weight gradient called on a geometry it does not cover");
    assert_eq!(x.len(), g.input_len(), "conv input length");
    assert_eq!(dy.len(), g.output_len(), "conv output gradient length");
    imp::weight_gradient(g, x, dy)
}

/// `[K, C, 3, 3]` → `[K / block, C, 3, 3, block]`: the `block` weights one input value meets are
/// adjacent (16 for AVX-512, 8 for AVX2).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn blocked_weight(g: &ConvGeometry, weight: &[f32], block: usize) -> Vec<f32> {
    let taps = g.in_channels * 9;
    let mut blocked = vec![0.0f32; weight.len()];
    for (k, filter) in weight.chunks_exact(taps).enumerate() {
        let (first, lane) = (k / block, k % block);
        for (tap, &value) in filter.iter().enumerate() {
            blocked[(first * taps + tap) * block + lane] = value;
        }
    }
    blocked
}

/// The image's channels into `padded`, one pixel in from every edge, with a border of zeros.
/// Every value is written (the buffer is reused unzeroed); rows go over in runs of 16, which
/// compile to vector moves instead of a `memcpy` call per row (inlined into each level's
/// target-feature wrapper).
#[inline(always)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn pad(g: &ConvGeometry, x: &[f32], padded: &mut [f32]) {
    let (height, width) = (g.in_height, g.in_width);
    let padded_width = width + 2;
    for (plane, padded_plane) in x.chunks_exact(height * width).zip(padded.chunks_exact_mut((height + 2) * padded_width)) {
        let (top, rest) = padded_plane.split_at_mut(padded_width);
        let (middle, bottom) = rest.split_at_mut(height * padded_width);
        top.fill(0.0);
        bottom.fill(0.0);
        for (row, padded_row) in plane.chunks_exact(width).zip(middle.chunks_exact_mut(padded_width)) {
            padded_row[0] = 0.0;
            padded_row[width + 1] = 0.0;
            let inside = &mut padded_row[1..=width];
            let mut runs = inside.chunks_exact_mut(BLOCK);
            let mut sources = row.chunks_exact(BLOCK);
            for (to, from) in (&mut runs).zip(&mut sources) {
                to.copy_from_slice(from);
            }
            runs.into_remainder().copy_from_slice(sources.remainder());
        }
    }
}

/// The lengths and tiles every access of an `image` function (either level) stays inside:
/// `padded` [C, H + 2, W + 2], the blocked weight, an output of `y_len` values, tiles inside the
/// map, and the epilogue's residual lanes of this image inside the residual.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
fn check_image(g: &ConvGeometry, tiles: &[Tile], padded: &[f32], weight: &[f32], y_len: usize, epilogue: Option<(&Epilogue, usize)>) {
    let (height, width) = (g.in_height, g.in_width);
    assert_eq!(padded.len(), g.in_channels * (height + 2) * (width + 2));
    assert_eq!(weight.len(), g.out_channels * g.in_channels * 9);
    assert_eq!(y_len, g.out_channels * height * width);
    assert!(g.out_channels.is_multiple_of(BLOCK));
    for tile in tiles {
        assert!(tile.row < height && tile.column + tile.lanes <= width && (1..=BLOCK).contains(&tile.lanes));
    }
    if let Some((epilogue, start)) = epilogue {
        assert!(epilogue.residual.is_none_or(|residual| start + y_len <= residual.len()), "epilogue residual length");
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod imp {
    pub(super) fn forward(_: &crate::geometry::ConvGeometry, _: &[f32], _: &[f32], _: Option<&crate::epilogue::Epilogue>) -> Vec<f32> {
        unreachable!("`applies` is false off x86_64")
    }

    pub(super) fn weight_gradient(_: &crate::geometry::ConvGeometry, _: &[f32], _: &[f32]) -> Vec<f32> {
        unreachable!("`applies` is false off x86_64")
    }
}

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/direct_conv.rs"]
mod imp;

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/direct_conv_avx2.rs"]
mod avx2;

#[cfg(not(target_arch = "x86_64"))]
use imp as avx2;

#[cfg(test)]
mod tests {
    use super::*;

    /// The AVX2 kernel against the AVX-512 one on a CPU that has both: the forward's bits (the
    /// same chains of fused multiply-adds), with and without the epilogue, on full and masked row
    /// tiles (28 = 16 + 12, and 20 = 16 + 4, whose second vector is empty in the rest).
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_avx2_kernel_gives_the_avx512_forwards_bits() {
        if crate::isa::detected() < crate::isa::Isa::Avx512 || !crate::isa::avx2() {
            eprintln!("not an AVX-512 CPU running at avx2 or above: nothing to compare");
            return;
        }
        for (batch, in_channels, out_channels, height, width) in [(3, 3, 16, 5, 32), (2, 20, 32, 7, 28), (9, 16, 16, 4, 20)] {
            let g = crate::conv::tests::same_size_3x3(batch, in_channels, out_channels, height, width);
            let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let w: Vec<f32> = (0..g.weight_len()).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
            let residual: Vec<f32> = (0..g.output_len()).map(|i| ((i * 31 % 83) as f32 - 41.0) / 20.0).collect();
            let scale: Vec<f32> = (0..out_channels).map(|k| 0.5 + k as f32 / 7.0).collect();
            let shift: Vec<f32> = (0..out_channels).map(|k| k as f32 / 3.0 - 1.0).collect();
            let epilogue = Epilogue { scale: &scale, shift: &shift, residual: Some(&residual), relu: true };
            for with in [None, Some(&epilogue)] {
                let (wide, narrow) = (imp::forward(&g, &x, &w, with), avx2::forward(&g, &x, &w, with));
                let same = wide.iter().zip(&narrow).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{g:?}, epilogue {}: the AVX2 forward differs", with.is_some());
            }
        }
    }

    #[test]
    fn tiles_cover_every_output_pixel_once() {
        for (height, width) in [(32, 32), (5, 28), (3, 16), (2, 56)] {
            let mut covered = vec![0; height * width];
            for tile in tiles(height, width) {
                for column in tile.column..tile.column + tile.lanes {
                    covered[tile.row * width + column] += 1;
                }
            }
            assert!(covered.iter().all(|&count| count == 1), "{height}x{width}: {covered:?}");
        }
    }

    #[test]
    fn rows_that_would_leave_lanes_empty_stay_with_gemm() {
        assert_eq!(lane_use(&tiles(4, 32)), 1.0);
        assert!((lane_use(&tiles(4, 28)) - 28.0 / 32.0).abs() < 1e-12);
        assert!(lane_use(&tiles(4, 20)) < MIN_LANE_USE, "rows of 20 fill 20 of 32 lanes");
    }
}
