//! Element-wise loops compiled twice: for AVX-512 (16 lanes; chosen at run time where the CPU has
//! it) and for the baseline x86-64 the crate is built for (SSE2, 4 lanes), so that a binary that
//! runs anywhere still uses the wide registers where they exist. Both versions do the same
//! arithmetic in the same order, lane by lane (Rust never fuses a multiply and an add by itself),
//! so they give the same bits.

/// `multiversion! { fn name(args) -> ret { body } }`: `name` runs `body` compiled for AVX-512
/// when the CPU has it, else as built. Arguments are plain values and slices (no generics).
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            fn generic($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    generic($($arg),*)
                }
                if crate::simd::avx512() {
                    // SAFETY: the CPU has AVX-512F, checked just above.
                    return unsafe { avx512($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

/// The 16-lane mask of lanes `0..count` (every lane from 16 on): the rest of a row, the images of
/// a part-filled group.
pub(crate) fn first_lanes(count: usize) -> u16 {
    ((1u32 << count.min(16)) - 1) as u16
}

/// `[0, step, 2·step, …, 15·step]`: each lane's offset for gathers, scatters and index arithmetic.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) fn lane_multiples(step: i32) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(step))
}

/// Whether this CPU has AVX-512F: the one check every AVX-512 path asks (std caches the answer).
pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    false
}
