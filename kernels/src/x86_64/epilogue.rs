//! The vector half of `epilogue.rs`: the epilogue applied to 16 lanes (AVX-512) or 8 (AVX2) in
//! registers.

use super::Epilogue;

impl Epilogue<'_> {
    /// [`value`](Self::value) on 16 lanes (`mask`: those that hold an output), `sum` the
    /// convolution's values of channel `k` at `at … at + 15` in the output.
    ///
    /// # Safety
    /// AVX-512F is present; with a residual, its lanes in `mask` lie inside it.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) unsafe fn vector(&self, sum: std::arch::x86_64::__m512, k: usize, at: usize, mask: u16) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::_mm512_set1_ps;
        // SAFETY: as this function's.
        unsafe { self.lanes(sum, _mm512_set1_ps(self.scale[k]), _mm512_set1_ps(self.shift[k]), at, mask) }
    }

    /// [`vector`](Self::vector) with each lane's coefficients given: lanes of several channels.
    ///
    /// # Safety
    /// As [`vector`](Self::vector)'s.
    #[target_feature(enable = "avx512f")]
    #[inline]
    pub(crate) unsafe fn lanes(
        &self,
        sum: std::arch::x86_64::__m512,
        scale: std::arch::x86_64::__m512,
        shift: std::arch::x86_64::__m512,
        at: usize,
        mask: u16,
    ) -> std::arch::x86_64::__m512 {
        use std::arch::x86_64::*;
        let normalized = _mm512_add_ps(_mm512_mul_ps(sum, scale), shift);
        let summed = match self.residual {
            // SAFETY: the caller keeps the lanes in `mask` inside the residual.
            Some(residual) => _mm512_add_ps(normalized, unsafe { _mm512_maskz_loadu_ps(mask, residual.as_ptr().add(at)) }),
            None => normalized,
        };
        if self.relu {
            // `activation::relu`: kept where above zero or NaN ("not less or equal, unordered"),
            // else +0 (−0 too).
            _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_NLE_UQ>(summed, _mm512_setzero_ps()), summed)
        } else {
            summed
        }
    }

    /// [`vector`](Self::vector) on 8 lanes, for the AVX2 kernels: `mask`'s lanes (top bit set)
    /// hold outputs. The same operations in the same order, so the same bits.
    ///
    /// # Safety
    /// AVX2 and FMA are present; with a residual, its lanes in `mask` lie inside it, and `at` is
    /// inside it.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) unsafe fn vector8(&self, sum: std::arch::x86_64::__m256, k: usize, at: usize, mask: std::arch::x86_64::__m256i) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::_mm256_set1_ps;
        // SAFETY: as this function's.
        unsafe { self.lanes8(sum, _mm256_set1_ps(self.scale[k]), _mm256_set1_ps(self.shift[k]), at, mask) }
    }

    /// [`vector8`](Self::vector8) with each lane's coefficients given: lanes of several channels.
    ///
    /// # Safety
    /// As [`vector8`](Self::vector8)'s.
    #[target_feature(enable = "avx2,fma")]
    #[inline]
    pub(crate) unsafe fn lanes8(
        &self,
        sum: std::arch::x86_64::__m256,
        scale: std::arch::x86_64::__m256,
        shift: std::arch::x86_64::__m256,
        at: usize,
        mask: std::arch::x86_64::__m256i,
    ) -> std::arch::x86_64::__m256 {
        use std::arch::x86_64::*;
        let normalized = _mm256_add_ps(_mm256_mul_ps(sum, scale), shift);
        let summed = match self.residual {
            // SAFETY: the caller keeps `at` and the lanes in `mask` inside the residual.
            Some(residual) => _mm256_add_ps(normalized, unsafe { _mm256_maskload_ps(residual.as_ptr().add(at), mask) }),
            None => normalized,
        };
        if self.relu {
            // As the 16-lane version: kept where above zero or NaN, else +0 (−0 too).
            _mm256_and_ps(_mm256_cmp_ps::<_CMP_NLE_UQ>(summed, _mm256_setzero_ps()), summed)
        } else {
            summed
        }
    }
}
