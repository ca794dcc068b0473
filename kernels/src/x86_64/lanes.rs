//! Vector helpers the kernels share: lane offsets, and 16×16 (AVX-512) and 8×8 (AVX) transposes in
//! registers.

/// `[0, step, 2·step, …, 15·step]`: each lane's offset for gathers, scatters and index arithmetic.
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) fn lane_multiples(step: i32) -> std::arch::x86_64::__m512i {
    use std::arch::x86_64::*;
    _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(step))
}

/// Transposes a 16×16 block held as 16 vectors: lane j of vector i moves to lane i of vector j.
/// Four rounds of shuffles (32-bit, 64-bit, then 128-bit lanes twice), 64 in all: a tenth of the
/// time of 16 gathers or scatters that touch 16 cache lines each.
#[target_feature(enable = "avx512f")]
#[inline]
pub(crate) fn transpose16(rows: &mut [std::arch::x86_64::__m512; 16]) {
    use std::arch::x86_64::*;
    let r = *rows;
    // t[2i] / t[2i+1]: rows 2i and 2i+1 interleaved value by value, within each 128-bit lane.
    let mut t = [_mm512_setzero_ps(); 16];
    for i in 0..8 {
        t[2 * i] = _mm512_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u: pairs of values from four rows, within each 128-bit lane.
    let mut u = [_mm512_setzero_ps(); 16];
    for i in 0..4 {
        for half in 0..2 {
            let (a, b) = (_mm512_castps_pd(t[4 * i + half]), _mm512_castps_pd(t[4 * i + 2 + half]));
            u[4 * i + 2 * half] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, b));
            u[4 * i + 2 * half + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, b));
        }
    }
    // v: 128-bit lanes 0, 2 (0x88) and 1, 3 (0xdd) of two groups of four rows.
    let mut v = [_mm512_setzero_ps(); 16];
    for i in 0..4 {
        v[i] = _mm512_shuffle_f32x4::<0x88>(u[i], u[4 + i]);
        v[4 + i] = _mm512_shuffle_f32x4::<0xdd>(u[i], u[4 + i]);
        v[8 + i] = _mm512_shuffle_f32x4::<0x88>(u[8 + i], u[12 + i]);
        v[12 + i] = _mm512_shuffle_f32x4::<0xdd>(u[8 + i], u[12 + i]);
    }
    for i in 0..4 {
        rows[i] = _mm512_shuffle_f32x4::<0x88>(v[i], v[8 + i]);
        rows[8 + i] = _mm512_shuffle_f32x4::<0xdd>(v[i], v[8 + i]);
        rows[4 + i] = _mm512_shuffle_f32x4::<0x88>(v[4 + i], v[12 + i]);
        rows[12 + i] = _mm512_shuffle_f32x4::<0xdd>(v[4 + i], v[12 + i]);
    }
}

/// Transposes an 8×8 block held as 8 AVX vectors: lane j of vector i moves to lane i of vector j.
/// Three rounds of shuffles (32-bit, 64-bit, then 128-bit halves), 24 in all.
#[target_feature(enable = "avx2,fma")]
#[inline]
pub(crate) fn transpose8(rows: &mut [std::arch::x86_64::__m256; 8]) {
    use std::arch::x86_64::*;
    let r = *rows;
    // t[2i] / t[2i+1]: rows 2i and 2i+1 interleaved value by value, within each 128-bit half.
    let mut t = [_mm256_setzero_ps(); 8];
    for i in 0..4 {
        t[2 * i] = _mm256_unpacklo_ps(r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm256_unpackhi_ps(r[2 * i], r[2 * i + 1]);
    }
    // u: four values of four rows a half: columns 0, 1 (0x44) and 2, 3 (0xee) of each half's
    // pairs.
    let mut u = [_mm256_setzero_ps(); 8];
    for i in 0..2 {
        u[4 * i] = _mm256_shuffle_ps::<0x44>(t[4 * i], t[4 * i + 2]);
        u[4 * i + 1] = _mm256_shuffle_ps::<0xee>(t[4 * i], t[4 * i + 2]);
        u[4 * i + 2] = _mm256_shuffle_ps::<0x44>(t[4 * i + 1], t[4 * i + 3]);
        u[4 * i + 3] = _mm256_shuffle_ps::<0xee>(t[4 * i + 1], t[4 * i + 3]);
    }
    for j in 0..4 {
        rows[j] = _mm256_permute2f128_ps::<0x20>(u[j], u[4 + j]);
        rows[4 + j] = _mm256_permute2f128_ps::<0x31>(u[j], u[4 + j]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn transpose8_moves_lane_j_of_row_i_to_lane_i_of_row_j() {
        use std::arch::x86_64::*;
        if crate::isa::detected() < crate::isa::Isa::Avx2 {
            eprintln!("skipped: this CPU has no AVX2");
            return;
        }
        let values: Vec<f32> = (0..64).map(|i| i as f32).collect();
        // SAFETY: AVX2 is present (checked above); loads and stores stay inside 64 values.
        unsafe {
            let mut rows: [__m256; 8] = std::array::from_fn(|i| _mm256_loadu_ps(values.as_ptr().add(8 * i)));
            super::transpose8(&mut rows);
            let mut out = vec![0.0f32; 64];
            for (i, row) in rows.iter().enumerate() {
                _mm256_storeu_ps(out.as_mut_ptr().add(8 * i), *row);
            }
            for i in 0..8 {
                for j in 0..8 {
                    assert_eq!(out[8 * j + i], values[8 * i + j], "row {i} lane {j}");
                }
            }
        }
    }

    #[test]
    fn transpose16_moves_lane_j_of_row_i_to_lane_i_of_row_j() {
        use std::arch::x86_64::*;
        // The CPU's level, not the cap: this tests the intrinsic itself.
        if crate::isa::detected() < crate::isa::Isa::Avx512 {
            eprintln!("skipped: this CPU has no AVX-512");
            return;
        }
        let values: Vec<f32> = (0..256).map(|i| i as f32).collect();
        // SAFETY: AVX-512F is present (checked above); loads and stores stay inside 256 values.
        unsafe {
            let mut rows: [__m512; 16] = std::array::from_fn(|i| _mm512_loadu_ps(values.as_ptr().add(16 * i)));
            super::transpose16(&mut rows);
            let mut out = vec![0.0f32; 256];
            for (i, row) in rows.iter().enumerate() {
                _mm512_storeu_ps(out.as_mut_ptr().add(16 * i), *row);
            }
            for i in 0..16 {
                for j in 0..16 {
                    assert_eq!(out[16 * j + i], values[16 * i + j], "row {i} lane {j}");
                }
            }
        }
    }
}
