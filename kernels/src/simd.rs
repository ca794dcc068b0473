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

/// Whether this CPU has AVX-512F: the one check every AVX-512 path asks (std caches the answer).
pub(crate) fn avx512() -> bool {
    #[cfg(target_arch = "x86_64")]
    return std::is_x86_feature_detected!("avx512f");
    #[cfg(not(target_arch = "x86_64"))]
    false
}
