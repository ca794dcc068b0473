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
    // SAFETY: every index gemm reads or writes is below the lengths asserted above, and the
    // destination does not alias `lhs` or `rhs` (it is borrowed mutably).
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst_pointer,
            dst_layout.column_stride as isize,
            dst_layout.row_stride as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_layout.column_stride as isize,
            lhs_layout.row_stride as isize,
            rhs.as_ptr(),
            rhs_layout.column_stride as isize,
            rhs_layout.row_stride as isize,
            1.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        )
    }
}
