//! Max pool for the ResNet stem's 3×3, stride 2, padding 1 window on maps at most 32 pixels wide
//! (resnet18 at 28 and 64 px: 14 and 32): each input row loaded as two AVX-512 vectors, the
//! window's three columns picked by permutes. The general pool splits every row by column phase and
//! compares run by run, which on 14-pixel rows is a few values per loop: 6% of resnet18's inference
//! time at 28 px and 3.4% of its training time (`perf`, 2026-11-30). Without positions of the maxima
//! (evaluation) rows are compared first and columns after; with them (training), the nine taps are
//! compared in the general pool's order, row by row, so that the first maximum wins a tie there
//! too. A NaN in the window makes the output NaN, as in the general pool and PyTorch.

use rayon::prelude::*;

use crate::conv::filled;
use crate::max_pool::PoolGeometry;

/// Planes per parallel task.
const PLANES_PER_TASK: usize = 16;

/// Whether this pool takes the narrow path on this CPU.
pub(crate) fn applies(g: &PoolGeometry) -> bool {
    g.kernel == [3, 3]
        && g.stride == [2, 2]
        && g.padding_begin == [1, 1]
        && g.width <= 32
        && g.out_width() <= 16
        && crate::simd::avx512()
}

/// The pooled planes and, when `with_indices`, each maximum's index in its plane (callers check
/// [`applies`] first).
pub(crate) fn forward(g: &PoolGeometry, x: &[f32], with_indices: bool) -> (Vec<f32>, Vec<u32>) {
    assert!(applies(g), "the narrow max pool does not apply to {g:?}");
    assert_eq!(x.len(), g.input_len(), "max pool input length");
    let (in_plane, out_plane) = (g.height * g.width, g.out_height() * g.out_width());
    let mut indices = if with_indices { vec![0u32; g.output_len()] } else { Vec::new() };
    let values = filled(g.output_len(), |y| {
        let tasks = y.par_chunks_mut(PLANES_PER_TASK * out_plane).zip(x.par_chunks(PLANES_PER_TASK * in_plane));
        if with_indices {
            tasks.zip(indices.par_chunks_mut(PLANES_PER_TASK * out_plane)).for_each(|((out, input), indices)| {
                // SAFETY: AVX-512F is present (`applies`); see `imp::pool` for the bounds.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    imp::pool_with_indices(g, input, out, indices)
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    let _ = (out, input, indices);
                    unreachable!("applies() is false off x86-64")
                }
            });
        } else {
            tasks.for_each(|(out, input)| {
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    imp::pool(g, input, out)
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    let _ = (out, input);
                    unreachable!("applies() is false off x86-64")
                }
            });
        }
    });
    (values, indices)
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use crate::max_pool::PoolGeometry;
    use crate::simd::{first_lanes, lane_multiples};

    /// A row of at most 32 values as two vectors (columns 0–15 and 16–31), −∞ past its end.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn load_row(row: &[f32]) -> (__m512, __m512) {
        assert!(row.len() <= 32);
        let minus_infinity = _mm512_set1_ps(f32::NEG_INFINITY);
        let (low, high) = (first_lanes(row.len()), first_lanes(row.len().saturating_sub(16)));
        // SAFETY: the masks keep both loads inside `row`; masked lanes touch no memory.
        unsafe { (_mm512_mask_loadu_ps(minus_infinity, low, row.as_ptr()), _mm512_mask_loadu_ps(minus_infinity, high, row.as_ptr().wrapping_add(16))) }
    }

    /// Columns 2q − 1, 2q and 2q + 1 of lane q, from a row loaded by [`load_row`]; column −1 (lane
    /// 0's first) is padding, −∞.
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn window_columns(left: __m512, right: __m512) -> [__m512; 3] {
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let previous = _mm512_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);
        let centre = _mm512_permutex2var_ps(left, even, right);
        let after = _mm512_permutex2var_ps(left, odd, right);
        // Lane q's column 2q − 1 is the odd column of lane q − 1.
        let before = _mm512_mask_permutexvar_ps(_mm512_set1_ps(f32::NEG_INFINITY), 0xFFFE, previous, after);
        [before, centre, after]
    }

    /// max(a, b), NaN when either is NaN (`vmaxps` alone returns b when a is NaN).
    #[target_feature(enable = "avx512f")]
    fn max_or_nan(a: __m512, b: __m512) -> __m512 {
        _mm512_mask_mov_ps(_mm512_max_ps(a, b), _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(a, a), a)
    }

    /// Pools whole planes of `input` into `out`: rows `2p − 1 ..= 2p + 1` of output row p (those
    /// inside the image) are reduced lane by lane, then columns `2q − 1, 2q, 2q + 1` of lane q
    /// (padding and lanes past the row read −∞).
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pool(g: &PoolGeometry, input: &[f32], out: &mut [MaybeUninit<f32>]) {
        let (height, width) = (g.height, g.width);
        let (out_height, out_width) = (g.out_height(), g.out_width());
        assert!(width <= 32 && out_width <= 16);
        assert_eq!(input.len() / (height * width), out.len() / (out_height * out_width));
        let minus_infinity = _mm512_set1_ps(f32::NEG_INFINITY);
        let out_lanes = first_lanes(out_width);
        for (plane, out_plane) in input.chunks_exact(height * width).zip(out.chunks_exact_mut(out_height * out_width)) {
            for (p, out_row) in out_plane.chunks_exact_mut(out_width).enumerate() {
                let (first, end) = g.window(0, p, height);
                let (mut left, mut right) = (minus_infinity, minus_infinity);
                for row in plane[first * width..end * width].chunks_exact(width) {
                    let (row_left, row_right) = load_row(row);
                    left = max_or_nan(left, row_left);
                    right = max_or_nan(right, row_right);
                }
                let [before, centre, after] = window_columns(left, right);
                let pooled = max_or_nan(max_or_nan(before, centre), after);
                // SAFETY: `out_lanes` covers the `out_width` values of `out_row`.
                unsafe { _mm512_mask_storeu_ps(out_row.as_mut_ptr().cast::<f32>(), out_lanes, pooled) };
            }
        }
    }

    /// NaN-aware "value beats best": greater, or NaN over a number (the general pool's rule).
    #[target_feature(enable = "avx512f")]
    fn beats(value: __m512, best: __m512) -> __mmask16 {
        let greater = _mm512_cmp_ps_mask::<_CMP_GT_OQ>(value, best);
        let nan_over_number = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(value, value) & _mm512_cmp_ps_mask::<_CMP_ORD_Q>(best, best);
        greater | nan_over_number
    }

    /// [`pool`] with each maximum's index in its plane: taps (r, s) in row-major order, a tap
    /// replacing the best so far only when it [`beats`] it, so the first maximum wins. A window of
    /// −∞ keeps its first cell in the image, as in the general pool; padding lanes hold −∞ and never
    /// win.
    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn pool_with_indices(g: &PoolGeometry, input: &[f32], out: &mut [MaybeUninit<f32>], indices: &mut [u32]) {
        let (height, width) = (g.height, g.width);
        let (out_height, out_width) = (g.out_height(), g.out_width());
        assert!(width <= 32 && out_width <= 16 && height * width < i32::MAX as usize);
        let planes = input.len() / (height * width);
        assert_eq!(planes, out.len() / (out_height * out_width));
        assert_eq!(indices.len(), out.len());
        let minus_infinity = _mm512_set1_ps(f32::NEG_INFINITY);
        let out_lanes = first_lanes(out_width);
        // Column 2q − 1 + s of lane q; −1 (lane 0, s = 0) is padding, which never wins.
        let centre_columns = lane_multiples(2);
        let tap_columns = [_mm512_sub_epi32(centre_columns, _mm512_set1_epi32(1)), centre_columns, _mm512_add_epi32(centre_columns, _mm512_set1_epi32(1))];
        // A window's first column in the image: max(2q − 1, 0).
        let first_columns = _mm512_max_epi32(tap_columns[0], _mm512_setzero_si512());
        for ((plane, out_plane), plane_indices) in
            input.chunks_exact(height * width).zip(out.chunks_exact_mut(out_height * out_width)).zip(indices.chunks_exact_mut(out_height * out_width))
        {
            for (p, (out_row, index_row)) in out_plane.chunks_exact_mut(out_width).zip(plane_indices.chunks_exact_mut(out_width)).enumerate() {
                let (first, end) = g.window(0, p, height);
                let mut best = minus_infinity;
                let mut best_index = _mm512_add_epi32(first_columns, _mm512_set1_epi32((first * width) as i32));
                for row in first..end {
                    let (left, right) = load_row(&plane[row * width..][..width]);
                    let row_start = _mm512_set1_epi32((row * width) as i32);
                    for (tap, columns) in window_columns(left, right).into_iter().zip(tap_columns) {
                        let better = beats(tap, best);
                        best = _mm512_mask_mov_ps(best, better, tap);
                        best_index = _mm512_mask_mov_epi32(best_index, better, _mm512_add_epi32(row_start, columns));
                    }
                }
                // SAFETY: `out_lanes` covers the `out_width` values of each row.
                unsafe {
                    _mm512_mask_storeu_ps(out_row.as_mut_ptr().cast::<f32>(), out_lanes, best);
                    _mm512_mask_storeu_epi32(index_row.as_mut_ptr().cast(), out_lanes, best_index);
                }
            }
        }
    }
}
