//! Buffers the kernels fill: outputs written straight into uninitialised memory (no zeroing pass
//! over a tensor that is about to be overwritten), and the transpose several backward passes need.

use std::mem::MaybeUninit;

use rayon::prelude::*;

/// A vector of `len` values, every one written by `fill`.
///
/// # Safety
/// `fill` must write every one of the `len` elements it is given; the vector is returned as if it
/// had. Each caller says in its SAFETY comment why its loops cover the whole output (and the
/// tests against burn's reference ops check the values).
pub(crate) unsafe fn filled(len: usize, fill: impl FnOnce(&mut [MaybeUninit<f32>])) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    fill(&mut values.spare_capacity_mut()[..len]);
    // SAFETY: the caller promises `fill` wrote every one of the first `len` elements.
    unsafe { values.set_len(len) };
    values
}

/// `dst = src` into memory that may not be initialised yet.
pub(crate) fn write(dst: &mut [MaybeUninit<f32>], src: &[f32]) {
    assert_eq!(dst.len(), src.len());
    dst.iter_mut().zip(src).for_each(|(dst, &value)| {
        dst.write(value);
    });
}

/// `[rows, columns]` → `[columns, rows]`, in 16×16 tiles, bands of output rows in parallel. A
/// weight gradient of resnet18's last stage is 2.4 million values whose rows lie 18 KB apart: 32
/// such rows fall in two sets of the L1 cache and evict each other, so 32×32 tiles on one thread
/// took 12.5 ms where these take 3.5 (2 threads, 2026-11-30).
pub(crate) fn transpose(values: &[f32], rows: usize, columns: usize) -> Vec<f32> {
    const TILE: usize = 16;
    assert_eq!(values.len(), rows * columns, "transpose length");
    let fill = |out: &mut [MaybeUninit<f32>]| {
        if rows == 0 {
            return;
        }
        out.par_chunks_mut(TILE * rows).enumerate().for_each(|(band, out)| {
            let first_column = band * TILE;
            let band_columns = out.len() / rows;
            for row_start in (0..rows).step_by(TILE) {
                let row_end = (row_start + TILE).min(rows);
                for c in 0..band_columns {
                    let out_row = &mut out[c * rows..][row_start..row_end];
                    for (r, value) in (row_start..row_end).zip(out_row) {
                        value.write(values[r * columns + first_column + c]);
                    }
                }
            }
        });
    };
    // SAFETY: bands of TILE output rows cover `out`; each band writes every (column, row) of its
    // rows.
    unsafe { filled(values.len(), fill) }
}
