//! Element-wise loops compiled three times: for AVX-512 (16 lanes), for AVX2 + FMA (8 lanes), and
//! for the baseline the crate is built for (SSE2 on x86-64, 4 lanes; NEON on aarch64), chosen at
//! run time by [`crate::isa::current`], so that a binary that runs anywhere still uses the wide
//! registers where they exist. Every version does the same arithmetic in the same order, lane by
//! lane (Rust never fuses a multiply and an add by itself, even where FMA is enabled), so they
//! give the same bits; the kernels' tests run once per level in `.ci/run`.

/// `multiversion! { fn name(args) -> ret { body } }`: `name` runs `body` compiled for the level
/// [`crate::isa::current`] allows. Arguments are plain values and slices (no generics).
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
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    generic($($arg),*)
                }
                if crate::isa::avx512() {
                    // SAFETY: the CPU has AVX-512F (`isa` never raises the detected level).
                    return unsafe { avx512($($arg),*) };
                }
                if crate::isa::avx2() {
                    // SAFETY: the CPU has AVX2 and FMA (as above).
                    return unsafe { avx2($($arg),*) };
                }
            }
            generic($($arg),*)
        }
    };
}

/// The 16-lane mask of lanes `0..count` (every lane from 16 on): the rest of a row, the images of
/// a part-filled group. Only the AVX-512 kernels take masks of this kind.
#[cfg(target_arch = "x86_64")]
pub(crate) fn first_lanes(count: usize) -> u16 {
    ((1u32 << count.min(16)) - 1) as u16
}

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/lanes.rs"]
mod lanes;
#[cfg(target_arch = "x86_64")]
pub(crate) use lanes::{lane_multiples, transpose8, transpose16};
