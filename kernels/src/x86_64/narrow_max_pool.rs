//! The AVX-512 half of `narrow_max_pool.rs` (its `imp` module): intrinsics and assembly, x86-64 only.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use crate::geometry::PoolGeometry;
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
