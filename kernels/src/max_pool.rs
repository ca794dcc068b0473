//! 2-D max pooling on contiguous f32 NCHW buffers, with the position of each maximum for the
//! backward. burn-flex's pool took 55 ms forward and another 20–30 ms backward for resnet18's
//! stem pool at 64 px (a [64, 64, 32, 32] input) on 2 cores, about an eighth of a training step.
//! Semantics are PyTorch's: padding is never chosen (as if −∞), the first maximum in the window
//! (row by row) wins a tie, and a NaN in the window makes the output NaN.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::buffer::filled;
pub use crate::geometry::PoolGeometry;
use crate::narrow_max_pool;

/// One kernel column's outputs `first..end` in a row: their input columns start at `column`, and at
/// `start` in the row split by column phase.
struct Tap {
    first: usize,
    end: usize,
    start: usize,
    column: usize,
}

/// Planes per parallel task: its scratch rows are allocated once for all of them.
const PLANES_PER_TASK: usize = 16;

/// What a plane's pooling needs besides its values.
struct Plan<'a> {
    g: PoolGeometry,
    out_height: usize,
    out_width: usize,
    phase_starts: &'a [usize],
    taps: &'a [Tap],
}

// One output row at a time, kernel tap by kernel tap in row-major order (the first maximum
// wins), each tap a compare-and-select across the row's outputs.
#[inline(always)]
fn pool_planes(plan: &Plan, inputs: &[f32], outs: &mut [std::mem::MaybeUninit<f32>], mut all_indices: Option<&mut [u32]>) {
    let Plan { g, out_height, out_width, phase_starts, taps } = *plan;
    let mut phased = vec![0.0f32; g.width];
    let mut best = vec![f32::NEG_INFINITY; out_width];
    let mut best_index = vec![0u32; out_width];
    let (in_plane, out_plane) = (g.height * g.width, out_height * out_width);
    for (plane, (input, out)) in inputs.chunks_exact(in_plane).zip(outs.chunks_exact_mut(out_plane)).enumerate() {
        let mut indices = all_indices.as_deref_mut().map(|indices| &mut indices[plane * out_plane..][..out_plane]);
        for p in 0..out_height {
            let (row_first, row_end) = g.window(0, p, g.height);
            best.fill(f32::NEG_INFINITY);
            if indices.is_some() {
                for (q, index) in best_index.iter_mut().enumerate() {
                    // Where no value beats −∞ (a window of −∞ only): its first cell in the image.
                    *index = (row_first * g.width + g.window(1, q, g.width).0) as u32;
                }
            }
            for row in row_first..row_end {
                let values = &input[row * g.width..][..g.width];
                for (phase, &start) in phase_starts.iter().enumerate() {
                    for (to, &from) in phased[start..].iter_mut().zip(values.iter().skip(phase).step_by(g.stride[1])) {
                        *to = from;
                    }
                }
                for tap in taps {
                    let run = &phased[tap.start..][..tap.end - tap.first];
                    let best = &mut best[tap.first..tap.end];
                    if indices.is_some() {
                        let first_index = (row * g.width + tap.column) as u32;
                        let step = g.stride[1] as u32;
                        let best_index = &mut best_index[tap.first..tap.end];
                        for (i, ((best, best_index), &value)) in best.iter_mut().zip(best_index.iter_mut()).zip(run).enumerate() {
                            let better = value > *best || (value.is_nan() && !best.is_nan());
                            *best = if better { value } else { *best };
                            *best_index = if better { first_index + i as u32 * step } else { *best_index };
                        }
                    } else {
                        for (best, &value) in best.iter_mut().zip(run) {
                            let better = value > *best || (value.is_nan() && !best.is_nan());
                            *best = if better { value } else { *best };
                        }
                    }
                }
            }
            for (out, &value) in out[p * out_width..][..out_width].iter_mut().zip(&best) {
                out.write(value);
            }
            if let Some(indices) = indices.as_deref_mut() {
                indices[p * out_width..][..out_width].copy_from_slice(&best_index);
            }
        }
    }
}

multiversion! {
    /// [`pool_planes`], compiled for AVX-512 (16 lanes) too and chosen at run time.
    fn pool_planes_fastest(plan: &Plan, input: &[f32], out: &mut [std::mem::MaybeUninit<f32>], indices: Option<&mut [u32]>) {
        pool_planes(plan, input, out, indices)
    }
}

/// The pooled planes and, when `with_indices`, the index within its plane of each output's
/// maximum (empty otherwise: evaluation needs no backward).
pub fn forward(geometry: &PoolGeometry, x: &[f32], with_indices: bool) -> (Vec<f32>, Vec<u32>) {
    assert_eq!(x.len(), geometry.input_len(), "max pool input length");
    if narrow_max_pool::applies(geometry) {
        return narrow_max_pool::forward(geometry, x, with_indices);
    }
    general_forward(geometry, x, with_indices)
}

/// [`forward`] for any geometry: rows split by column phase, compared run by run.
fn general_forward(geometry: &PoolGeometry, x: &[f32], with_indices: bool) -> (Vec<f32>, Vec<u32>) {
    let g = *geometry;
    assert_eq!(x.len(), g.input_len(), "max pool input length");
    assert!(g.height * g.width <= u32::MAX as usize, "max pool plane too large for u32 indices");
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let out_plane = out_height * out_width;
    let in_plane = g.height * g.width;
    // Per kernel column s: the output columns q whose window column q·stride + s − pad lies in the
    // image, and where that run of input columns starts in a row split by column phase (columns
    // φ, φ + stride, … side by side): there it is contiguous, and the loops below vectorise.
    let phase_starts: Vec<usize> = (0..g.stride[1])
        .scan(0, |offset, phase| {
            let start = *offset;
            *offset += g.width.saturating_sub(phase).div_ceil(g.stride[1]);
            Some(start)
        })
        .collect();
    let taps: Vec<Tap> = (0..g.kernel[1])
        .filter_map(|s| {
            let inside = |q: usize| {
                let column = (q * g.stride[1] + s) as isize - g.padding_begin[1] as isize;
                column >= 0 && (column as usize) < g.width
            };
            let first = (0..out_width).find(|&q| inside(q))?;
            let end = (first..out_width).find(|&q| !inside(q)).unwrap_or(out_width);
            let column = first * g.stride[1] + s - g.padding_begin[1];
            let (phase, rank) = (column % g.stride[1], column / g.stride[1]);
            Some(Tap { first, end, start: phase_starts[phase] + rank, column })
        })
        .collect();
    let plan = Plan { g, out_height, out_width, phase_starts: &phase_starts, taps: &taps };
    let mut indices = if with_indices { vec![0u32; g.output_len()] } else { Vec::new() };
    let fill = |y: &mut [MaybeUninit<f32>]| {
        if with_indices {
            y.par_chunks_mut(PLANES_PER_TASK * out_plane)
                .zip(x.par_chunks(PLANES_PER_TASK * in_plane))
                .zip(indices.par_chunks_mut(PLANES_PER_TASK * out_plane))
                .for_each(|((out, input), indices)| pool_planes_fastest(&plan, input, out, Some(indices)));
        } else {
            y.par_chunks_mut(PLANES_PER_TASK * out_plane)
                .zip(x.par_chunks(PLANES_PER_TASK * in_plane))
                .for_each(|(out, input)| pool_planes_fastest(&plan, input, out, None));
        }
    };
    // SAFETY: the chunks of PLANES_PER_TASK planes cover `y`, and `pool_planes_fastest` writes
    // every output of its planes.
    let y = unsafe { filled(g.output_len(), fill) };
    (y, indices)
}

/// The input gradient: each output's gradient added where its maximum was.
pub fn backward(geometry: &PoolGeometry, dy: &[f32], indices: &[u32]) -> Vec<f32> {
    let g = *geometry;
    assert_eq!(dy.len(), g.output_len(), "max pool output gradient length");
    assert_eq!(indices.len(), g.output_len(), "max pool indices length");
    let out_plane = g.out_height() * g.out_width();
    let mut dx = vec![0.0f32; g.input_len()];
    dx.par_chunks_mut(g.height * g.width).zip(dy.par_chunks(out_plane).zip(indices.par_chunks(out_plane))).for_each(|(dx, (dy, indices))| {
        for (&gradient, &index) in dy.iter().zip(indices) {
            dx[index as usize] += gradient;
        }
    });
    dx
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(height: usize, width: usize, kernel: usize, stride: usize, padding: usize) -> PoolGeometry {
        PoolGeometry {
            planes: 3,
            height,
            width,
            kernel: [kernel, kernel],
            stride: [stride, stride],
            padding_begin: [padding, padding],
            padding_end: [padding, padding],
        }
        .checked()
        .expect("a valid pool")
    }

    /// The definition, one window at a time.
    fn reference(g: &PoolGeometry, x: &[f32]) -> Vec<f32> {
        let mut y = Vec::new();
        for plane in x.chunks(g.height * g.width) {
            for p in 0..g.out_height() {
                for q in 0..g.out_width() {
                    let mut best = f32::NEG_INFINITY;
                    for r in 0..g.kernel[0] {
                        for s in 0..g.kernel[1] {
                            let (row, column) = (
                                (p * g.stride[0] + r) as isize - g.padding_begin[0] as isize,
                                (q * g.stride[1] + s) as isize - g.padding_begin[1] as isize,
                            );
                            if row >= 0 && column >= 0 && (row as usize) < g.height && (column as usize) < g.width {
                                best = best.max(plane[row as usize * g.width + column as usize]);
                            }
                        }
                    }
                    y.push(best);
                }
            }
        }
        y
    }

    #[test]
    fn forward_matches_the_definition_and_backward_routes_to_the_maximum() {
        for (height, width, kernel, stride, padding) in [(9, 7, 3, 2, 1), (8, 8, 2, 2, 0), (5, 6, 3, 1, 1), (1, 1, 3, 2, 1)] {
            let g = geometry(height, width, kernel, stride, padding);
            let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let (y, indices) = forward(&g, &x, true);
            assert_eq!(y, reference(&g, &x), "{height}x{width} k{kernel} s{stride} p{padding}");
            assert!(forward(&g, &x, false).1.is_empty());
            let dy: Vec<f32> = (0..g.output_len()).map(|i| i as f32 + 1.0).collect();
            let dx = backward(&g, &dy, &indices);
            // Every output's gradient lands on an input holding that output's value, in its plane.
            let (in_plane, out_plane) = (height * width, g.out_height() * g.out_width());
            for (o, &index) in indices.iter().enumerate() {
                let plane = o / out_plane;
                assert_eq!(x[plane * in_plane + index as usize], y[o]);
            }
            let total: f32 = dx.iter().sum();
            assert_eq!(total, dy.iter().sum::<f32>(), "the gradient is routed, not lost");
        }
    }

    #[test]
    fn ties_go_to_the_first_maximum_and_nan_wins() {
        let g = geometry(2, 2, 2, 2, 0);
        let g = PoolGeometry { planes: 1, ..g };
        let (y, indices) = forward(&g, &[1.0, 3.0, 3.0, 2.0], true);
        assert_eq!((y, indices), (vec![3.0], vec![1]));
        let (y, indices) = forward(&g, &[1.0, f32::NAN, 3.0, f32::NAN], true);
        assert!(y[0].is_nan());
        assert_eq!(indices, vec![1]);
    }

    #[test]
    fn narrow_maps_match_the_general_pool_values_and_positions() {
        // Widths around one and two vectors, odd and even, padded at the end or not; values on a
        // coarse grid (ties), −∞, and NaN.
        for (height, width, padding_end) in [(14, 14, 1), (32, 32, 1), (7, 15, 1), (5, 16, 0), (6, 17, 1), (9, 31, 0), (1, 1, 1), (3, 2, 0)] {
            let g = PoolGeometry { padding_end: [padding_end, padding_end], ..geometry(height, width, 3, 2, 1) }.checked().expect("a valid pool");
            assert!(narrow_max_pool::applies(&g) || !crate::isa::avx512());
            let mut x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) / 20) as f32 - 2.0).collect();
            let len = x.len();
            x[5 % len] = f32::NEG_INFINITY;
            for with_nan in [false, true] {
                if with_nan {
                    x[(width + 1).min(len - 1)] = f32::NAN;
                    x[len / 2] = f32::NAN;
                }
                let (values, indices) = forward(&g, &x, true);
                let (general_values, general_indices) = general_forward(&g, &x, true);
                let bits = |values: &[f32]| values.iter().map(|value| if value.is_nan() { u32::MAX } else { value.to_bits() }).collect::<Vec<_>>();
                assert_eq!(bits(&values), bits(&general_values), "{height}x{width} padding end {padding_end}");
                assert_eq!(indices, general_indices, "{height}x{width} padding end {padding_end}: positions");
                assert_eq!(bits(&forward(&g, &x, false).0), bits(&values), "evaluation's values");
                if !with_nan {
                    assert_eq!(values, reference(&g, &x));
                }
            }
        }
        assert!(!narrow_max_pool::applies(&geometry(33, 33, 3, 2, 1)), "rows of more than 32");
    }

    #[test]
    fn windows_that_could_hold_only_padding_are_refused() {
        let g = PoolGeometry { planes: 1, height: 4, width: 4, kernel: [2, 2], stride: [1, 1], padding_begin: [2, 2], padding_end: [2, 2] };
        assert_eq!(g.checked(), None);
    }
}
