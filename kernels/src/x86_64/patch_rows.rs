//! The AVX-512 half of `patch_rows.rs` (its `imp` module): intrinsics and assembly, x86-64 only.

use std::arch::x86_64::*;

use crate::simd::{first_lanes, lane_multiples};

/// Lanes `from..to` of a 16-lane mask.
fn lanes(from: usize, to: usize) -> __mmask16 {
    if from >= to { 0 } else { ((((1u32 << (to - from)) - 1) << from) & 0xFFFF) as __mmask16 }
}

#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
pub(super) unsafe fn fill(
    planes: &[f32],
    image_stride: usize,
    out: &mut [f32],
    out_width: usize,
    offsets: &[Option<usize>],
    columns: (usize, usize),
    shift: isize,
    stride: usize,
) {
    let pixels = offsets.len() * out_width;
    // Lane i of a run starting at column q0 reads column q0 + i: i·stride further on.
    let steps = lane_multiples(stride as i32);
    // SAFETY: see `patch_rows::fill`, which checked the bounds these accesses stay in.
    unsafe {
        for (j, image_out) in out.chunks_exact_mut(pixels).enumerate() {
            let plane = planes.as_ptr().add(j * image_stride);
            for (p, offset) in offsets.iter().enumerate() {
                let out_row = image_out.as_mut_ptr().add(p * out_width);
                for run in (0..out_width).step_by(16) {
                    let width = 16.min(out_width - run);
                    let values = match offset {
                        Some(offset) => {
                            let load = lanes(columns.0.max(run) - run, columns.1.min(run + width).max(run) - run);
                            let first = plane.wrapping_offset(*offset as isize + (run * stride) as isize + shift);
                            if stride == 1 {
                                _mm512_maskz_loadu_ps(load, first)
                            } else {
                                _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), load, steps, first)
                            }
                        }
                        None => _mm512_setzero_ps(),
                    };
                    _mm512_mask_storeu_ps(out_row.add(run), first_lanes(width), values);
                }
            }
        }
    }
}

#[target_feature(enable = "avx512f")]
pub(super) unsafe fn fill_small(planes: &[f32], image_stride: usize, out: &mut [f32], sources: &[Option<usize>], per_vector: usize) {
    let pixels = sources.len();
    let images = out.len() / pixels;
    // Lane l: image l / L of the group, pixel l % L.
    let mut indices = [0i32; 16];
    let mut live: u32 = 0;
    for lane in 0..per_vector * pixels {
        if let Some(source) = sources[lane % pixels] {
            indices[lane] = ((lane / pixels) * image_stride + source) as i32;
            live |= 1 << lane;
        }
    }
    // Where every pixel reads `shift` values further on in its plane (stride 1 and rows as
    // wide as the output's: the 3×3 convolutions of resnet18's 2×2 and 4×4 maps), each image
    // is one masked load, cheaper than a gather's lane-by-lane loads.
    let first_live = sources.iter().enumerate().find_map(|(i, source)| source.map(|source| source as isize - i as isize));
    let uniform = first_live.filter(|&shift| sources.iter().enumerate().all(|(i, source)| source.is_none_or(|source| source as isize - i as isize == shift)));
    if let Some(shift) = uniform {
        // SAFETY: lane l of image k's load reads plane_k[l − k·L + shift] = plane_k[sources[l −
        // k·L]]
        // for the live lanes only; the others are masked and touch no memory.
        unsafe {
            for first in (0..images).step_by(per_vector) {
                let mut values = _mm512_setzero_ps();
                for k in 0..(images - first).min(per_vector) {
                    let plane = planes.as_ptr().wrapping_add((first + k) * image_stride);
                    let live_lanes = ((live & ((1 << pixels) - 1)) << (k * pixels)) as __mmask16;
                    values = _mm512_mask_loadu_ps(values, live_lanes, plane.wrapping_offset(shift - (k * pixels) as isize));
                }
                let used = first_lanes((images - first).min(per_vector) * pixels);
                _mm512_mask_storeu_ps(out.as_mut_ptr().add(first * pixels), used, values);
            }
        }
        return;
    }
    // SAFETY: see `patch_rows::fill_small`.
    unsafe {
        let indices = _mm512_loadu_si512(indices.as_ptr().cast());
        for first in (0..images).step_by(per_vector) {
            let used = first_lanes((images - first).min(per_vector) * pixels);
            let base = planes.as_ptr().wrapping_add(first * image_stride);
            let values = _mm512_mask_i32gather_ps::<4>(_mm512_setzero_ps(), (live as __mmask16) & used, indices, base);
            _mm512_mask_storeu_ps(out.as_mut_ptr().add(first * pixels), used, values);
        }
    }
}
