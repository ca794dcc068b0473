//! Evaluation's max pool for the ResNet stem's 3×3, stride 2, padding 1 window on maps at most 32
//! pixels wide (resnet18 at 28 and 64 px: 14 and 32): each output row from its input rows loaded as
//! two AVX-512 vectors, the window's three columns picked by permutes. The general pool splits
//! every row by column phase and compares run by run, which on 14-pixel rows is a few values per
//! loop: 6% of resnet18's inference time at 28 px (`perf`, 2026-11-30). Without positions of the
//! maxima (evaluation needs no backward) the order of comparisons does not matter, so rows can be
//! compared first and columns after. A NaN in the window makes the output NaN, as in the general
//! pool and PyTorch.

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

/// The pooled planes (callers check [`applies`] first).
pub(crate) fn forward(g: &PoolGeometry, x: &[f32]) -> Vec<f32> {
    assert!(applies(g), "the narrow max pool does not apply to {g:?}");
    assert_eq!(x.len(), g.input_len(), "max pool input length");
    let (in_plane, out_plane) = (g.height * g.width, g.out_height() * g.out_width());
    filled(g.output_len(), |y| {
        y.par_chunks_mut(PLANES_PER_TASK * out_plane).zip(x.par_chunks(PLANES_PER_TASK * in_plane)).for_each(|(out, input)| {
            // SAFETY: AVX-512F is present (`applies`); see `imp::pool` for the bounds.
            #[cfg(target_arch = "x86_64")]
            unsafe {
                imp::pool(g, input, out)
            }
            #[cfg(not(target_arch = "x86_64"))]
            {
                let _ = (out, input);
                unreachable!("applies() is false off x86-64")
            }
        })
    })
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;
    use std::mem::MaybeUninit;

    use crate::max_pool::PoolGeometry;

    /// Lanes `0..count` of a 16-lane mask.
    fn first_lanes(count: usize) -> __mmask16 {
        ((1u32 << count.min(16)) - 1) as __mmask16
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
        let (low, high, out_lanes) = (first_lanes(width), first_lanes(width.saturating_sub(16)), first_lanes(out_width));
        let even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
        let odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
        let previous = _mm512_setr_epi32(0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14);
        for (plane, out_plane) in input.chunks_exact(height * width).zip(out.chunks_exact_mut(out_height * out_width)) {
            for (p, out_row) in out_plane.chunks_exact_mut(out_width).enumerate() {
                let (first, end) = g.window(0, p, height);
                let (mut left, mut right) = (minus_infinity, minus_infinity);
                for row in plane[first * width..end * width].chunks_exact(width) {
                    // SAFETY: the masks keep both loads inside `row` (`width` values).
                    unsafe {
                        left = max_or_nan(left, _mm512_mask_loadu_ps(minus_infinity, low, row.as_ptr()));
                        right = max_or_nan(right, _mm512_mask_loadu_ps(minus_infinity, high, row.as_ptr().wrapping_add(16)));
                    }
                }
                let centre = _mm512_permutex2var_ps(left, even, right);
                let after = _mm512_permutex2var_ps(left, odd, right);
                // Lane q takes column 2q − 1, the odd column of lane q − 1; lane 0's is padding.
                let before = _mm512_mask_permutexvar_ps(minus_infinity, 0xFFFE, previous, after);
                let pooled = max_or_nan(max_or_nan(before, centre), after);
                // SAFETY: `out_lanes` covers the `out_width` values of `out_row`.
                unsafe { _mm512_mask_storeu_ps(out_row.as_mut_ptr().cast::<f32>(), out_lanes, pooled) };
            }
        }
    }
}
