//! Max pool for the ResNet stem's 3×3, stride 2, padding 1 window on maps at most 32 pixels wide
//! (resnet18 at 28 and 64 px: 14 and 32): each input row loaded as two AVX-512 vectors, the
//! window's three columns picked by permutes. The general pool splits every row by column phase and
//! compares run by run, which on 14-pixel rows is a few values per loop: 6% of resnet18's inference
//! time at 28 px and 3.4% of its training time (`perf`, 2026-11-30). Without positions of the maxima
//! (evaluation) rows are compared first and columns after; with them (training), the nine taps are
//! compared in the general pool's order, row by row, so that the first maximum wins a tie there
//! too. A NaN in the window makes the output NaN, as in the general pool and PyTorch.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::buffer::filled;
use crate::geometry::PoolGeometry;

/// Planes per parallel task.
const PLANES_PER_TASK: usize = 16;

/// Whether this pool takes the narrow path on this CPU.
pub(crate) fn applies(g: &PoolGeometry) -> bool {
    g.kernel == [3, 3]
        && g.stride == [2, 2]
        && g.padding_begin == [1, 1]
        && g.width <= 32
        && g.out_width() <= 16
        && crate::isa::avx512()
}

/// The pooled planes and, when `with_indices`, each maximum's index in its plane (callers check
/// [`applies`] first).
pub(crate) fn forward(g: &PoolGeometry, x: &[f32], with_indices: bool) -> (Vec<f32>, Vec<u32>) {
    assert!(applies(g), "the narrow max pool does not apply to {g:?}");
    assert_eq!(x.len(), g.input_len(), "max pool input length");
    let (in_plane, out_plane) = (g.height * g.width, g.out_height() * g.out_width());
    let mut indices = if with_indices { vec![0u32; g.output_len()] } else { Vec::new() };
    let fill = |y: &mut [MaybeUninit<f32>]| {
        let tasks = y.par_chunks_mut(PLANES_PER_TASK * out_plane).zip(x.par_chunks(PLANES_PER_TASK * in_plane));
        if with_indices {
            tasks.zip(indices.par_chunks_mut(PLANES_PER_TASK * out_plane)).for_each(|((out, input), indices)| {
                // SAFETY: AVX-512F is present (`applies`); see `imp::pool` for the bounds.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    imp::pool_with_indices(g, input, out, indices)
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    let _ = (out, input, indices);
                    unreachable!("applies() is false off x86-64")
                }
            });
        } else {
            tasks.for_each(|(out, input)| {
                // SAFETY: as above.
                #[cfg(target_arch = "x86_64")]
                unsafe {
                    imp::pool(g, input, out)
                }
                #[cfg(not(target_arch = "x86_64"))]
                {
                    let _ = (out, input);
                    unreachable!("applies() is false off x86-64")
                }
            });
        }
    };
    // SAFETY: the chunks of PLANES_PER_TASK planes cover `y`, and each pool writes every output of
    // its planes.
    let values = unsafe { filled(g.output_len(), fill) };
    (values, indices)
}

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/narrow_max_pool.rs"]
mod imp;
