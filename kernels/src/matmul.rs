//! One gemm call over strided views, with its bounds checked: every product the kernels compute
//! with the `gemm` crate goes through [`matmul`].

use std::mem::MaybeUninit;

use gemm::Parallelism;

/// Multiply-adds below which splitting one gemm across threads costs more than it saves.
const PARALLEL_GEMM_WORK: usize = 1 << 20;

pub(crate) fn gemm_threads(parallel_chunks: bool, m: usize, n: usize, k: usize) -> Parallelism {
    if parallel_chunks || m * n * k < PARALLEL_GEMM_WORK || rayon::current_num_threads() < 2 {
        Parallelism::None
    } else {
        Parallelism::Rayon(0)
    }
}

/// A row-major or transposed view of a matrix for gemm: element (i, j) is at
/// `data[i * row_stride + j * column_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct Matrix {
    row_stride: usize,
    column_stride: usize,
}

impl Matrix {
    pub(crate) fn rows(row_stride: usize) -> Self {
        Matrix { row_stride, column_stride: 1 }
    }

    pub(crate) fn strided(row_stride: usize, column_stride: usize) -> Self {
        Matrix { row_stride, column_stride }
    }

    /// The same elements with rows and columns swapped.
    pub(crate) fn transpose(self) -> Self {
        Matrix { row_stride: self.column_stride, column_stride: self.row_stride }
    }
}

/// Where a gemm writes: over initialised values (optionally adding to them), or into memory
/// not yet initialised (the output of a fresh tensor, which then needs no zeroing).
pub(crate) enum Destination<'a> {
    Overwrite(&'a mut [f32]),
    Accumulate(&'a mut [f32]),
    Fresh(&'a mut [MaybeUninit<f32>]),
}

impl Destination<'_> {
    fn parts(&mut self) -> (*mut f32, usize, bool) {
        match self {
            Destination::Overwrite(values) => (values.as_mut_ptr(), values.len(), false),
            Destination::Accumulate(values) => (values.as_mut_ptr(), values.len(), true),
            // Writing f32s through a pointer into MaybeUninit<f32> memory is sound; gemm does not
            // read the destination when it does not accumulate.
            Destination::Fresh(values) => (values.as_mut_ptr().cast::<f32>(), values.len(), false),
        }
    }
}

/// `dst (m×n) = [dst +] lhs (m×k) · rhs (k×n)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    mut dst: Destination<'_>,
    dst_layout: Matrix,
    lhs: &[f32],
    lhs_layout: Matrix,
    rhs: &[f32],
    rhs_layout: Matrix,
    [m, n, k]: [usize; 3],
    parallelism: Parallelism,
) {
    let last = |layout: Matrix, rows: usize, columns: usize| {
        if rows == 0 || columns == 0 { 0 } else { (rows - 1) * layout.row_stride + (columns - 1) * layout.column_stride + 1 }
    };
    let (dst_pointer, dst_len, accumulate) = dst.parts();
    // The bounds gemm will touch, checked here so the unsafe call below stays in bounds.
    assert!(dst_len >= last(dst_layout, m, n), "gemm destination too small");
    assert!(lhs.len() >= last(lhs_layout, m, k), "gemm left operand too small");
    assert!(rhs.len() >= last(rhs_layout, k, n), "gemm right operand too small");
    let operands = Operands {
        dst: dst_pointer,
        dst_strides: [dst_layout.column_stride as isize, dst_layout.row_stride as isize],
        accumulate,
        lhs: lhs.as_ptr(),
        lhs_strides: [lhs_layout.column_stride as isize, lhs_layout.row_stride as isize],
        rhs: rhs.as_ptr(),
        rhs_strides: [rhs_layout.column_stride as isize, rhs_layout.row_stride as isize],
    };
    // SAFETY: every index gemm reads or writes is below the lengths asserted above, and the
    // destination does not alias `lhs` or `rhs` (it is borrowed mutably).
    unsafe {
        if crate::isa::held_below_the_cpu() {
            capped::gemm(crate::isa::current(), [m, n, k], operands, parallelism);
        } else {
            uncapped_gemm([m, n, k], operands, parallelism);
        }
    }
}

/// `gemm::gemm` with its own dispatch (the CPU's best microkernels).
///
/// # Safety
/// As `gemm::gemm`: the operands are valid for `[m, n, k]` at their strides.
unsafe fn uncapped_gemm([m, n, k]: [usize; 3], operands: Operands, parallelism: Parallelism) {
    let Operands { dst, dst_strides: [dst_cs, dst_rs], accumulate, lhs, lhs_strides: [lhs_cs, lhs_rs], rhs, rhs_strides: [rhs_cs, rhs_rs] } = operands;
    // SAFETY: as this function's.
    unsafe { gemm::gemm(m, n, k, dst, dst_cs, dst_rs, accumulate, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs, 1.0, 1.0, false, false, false, parallelism) }
}

/// One product's pointers and (column, row) strides, as gemm takes them.
#[derive(Clone, Copy)]
struct Operands {
    dst: *mut f32,
    dst_strides: [isize; 2],
    accumulate: bool,
    lhs: *const f32,
    lhs_strides: [isize; 2],
    rhs: *const f32,
    rhs_strides: [isize; 2],
}

/// gemm under `TLRUN_KERNELS_ISA`: the `gemm` crate picks its microkernels from the CPU's
/// features and cannot be told otherwise, so below the CPU's level the product calls the
/// microkernels of the capped level itself (AVX2 + FMA, or gemm's scalar ones for `portable`),
/// through the same driver `gemm::gemm` uses on a CPU without AVX-512. With no cap in force
/// (or a CPU whose best level is the cap) `gemm::gemm` runs as it is.
mod capped {
    use gemm::Parallelism;
    use gemm_common::simd::MixedSimd;

    use super::Operands;
    use crate::isa::Isa;

    /// # Safety
    /// As `gemm::gemm`: the operands are valid for `[m, n, k]` at their strides, and the CPU has
    /// the features of `isa` (a cap never raises the detected level).
    pub(super) unsafe fn gemm(isa: Isa, [m, n, k]: [usize; 3], operands: Operands, parallelism: Parallelism) {
        let Operands { dst, dst_strides: [dst_cs, dst_rs], accumulate, lhs, lhs_strides: [lhs_cs, lhs_rs], rhs, rhs_strides: [rhs_cs, rhs_rs] } = operands;
        // `gemm::gemm`'s own first step: make the destination's columns the contiguous side by
        // computing the transposed product (dstᵀ = rhsᵀ·lhsᵀ) when its rows are.
        let (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs) = if dst_cs.abs() < dst_rs.abs() {
            (n, m, dst_rs, dst_cs, rhs, rhs_rs, rhs_cs, lhs, lhs_rs, lhs_cs)
        } else {
            (m, n, dst_cs, dst_rs, lhs, lhs_cs, lhs_rs, rhs, rhs_cs, rhs_rs)
        };
        macro_rules! with_microkernels {
            ($simd:expr, $module:ident, $lanes:expr) => {{
                use gemm_f32::microkernel::$module::f32::{H_M, H_N, H_UKR, MR_DIV_N, NR, UKR};
                const N: usize = $lanes;
                // SAFETY: as this function's.
                unsafe {
                    gemm_common::gemm::gemm_basic_generic::<_, f32, N, { MR_DIV_N * N }, NR, MR_DIV_N, H_M, H_N>(
                        $simd,
                        m,
                        n,
                        k,
                        dst,
                        dst_cs,
                        dst_rs,
                        accumulate,
                        lhs,
                        lhs_cs,
                        lhs_rs,
                        rhs,
                        rhs_cs,
                        rhs_rs,
                        1.0,
                        1.0,
                        false,
                        false,
                        false,
                        |a, b, c| a * b + c,
                        &UKR,
                        &H_UKR,
                        false,
                        parallelism,
                    )
                }
            }};
        }
        #[cfg(target_arch = "x86_64")]
        if isa >= Isa::Avx2 {
            let simd = <gemm_common::simd::V3 as MixedSimd<f32, f32, f32, f32>>::try_new().expect("the CPU has AVX2 and FMA (the cap never raises the level)");
            return with_microkernels!(simd, fma, 8);
        }
        let _ = isa;
        let simd = <gemm_common::simd::Scalar as MixedSimd<f32, f32, f32, f32>>::try_new().expect("scalar code runs anywhere");
        with_microkernels!(simd, scalar, 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::isa::Isa;

    /// The capped products (AVX2 + FMA microkernels, gemm's scalar ones) against `gemm::gemm`, on a
    /// shape with edges in every dimension, row-major and transposed destinations, overwriting and
    /// accumulating: the levels' sums differ in order only (1e-5 relative).
    #[test]
    fn capped_levels_compute_gemms_product() {
        let [m, n, k] = [37, 29, 53];
        let lhs: Vec<f32> = (0..m * k).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let rhs: Vec<f32> = (0..k * n).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
        let start: Vec<f32> = (0..m * n).map(|i| ((i * 29 % 89) as f32 - 44.0) / 20.0).collect();
        let levels: Vec<Isa> = [Isa::Portable, Isa::Avx2].into_iter().filter(|level| *level <= crate::isa::detected()).collect();
        for dst_layout in [Matrix::rows(n), Matrix::rows(m).transpose()] {
            for accumulate in [false, true] {
                let mut expected = start.clone();
                let operands = |dst: &mut Vec<f32>| Operands {
                    dst: dst.as_mut_ptr(),
                    dst_strides: [dst_layout.column_stride as isize, dst_layout.row_stride as isize],
                    accumulate,
                    lhs: lhs.as_ptr(),
                    lhs_strides: [1, k as isize],
                    rhs: rhs.as_ptr(),
                    rhs_strides: [1, n as isize],
                };
                let reference = operands(&mut expected);
                // SAFETY: the buffers hold m×k, k×n and m×n values at these strides.
                unsafe { uncapped_gemm([m, n, k], reference, Parallelism::None) };
                for &level in &levels {
                    let mut got = start.clone();
                    let capped_operands = operands(&mut got);
                    // SAFETY: as above; `levels` holds only levels this CPU has.
                    unsafe { capped::gemm(level, [m, n, k], capped_operands, Parallelism::None) };
                    for (index, (a, b)) in got.iter().zip(&expected).enumerate() {
                        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{level:?}, accumulate {accumulate}, [{index}]: {a} vs {b}");
                    }
                }
            }
        }
    }
}
