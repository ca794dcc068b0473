//! im2col's patch rows with AVX-512: every run of up to 16 output pixels of a row is one masked
//! load (a gather where the stride skips columns) and one masked store; lanes outside the image
//! read as zeros. The scalar path makes a library call (`memcpy`, `memset`) every few values on
//! narrow maps (resnet18's 7×7 stage at 28 px), and copies strided columns (the 7×7 stride-2 stem)
//! one bounds-checked value at a time.

/// One patch row for the images of a chunk: `out[j·L + p·Q + q] = plane_j[row(p) + q·stride +
/// shift]` for output rows p in `rows` and columns q in `columns`, zero elsewhere; plane j starts
/// `j · image_stride` into `planes`, `row(p)` is the offset of the input row that output row p
/// reads, `shift` the kernel column minus the left padding. Returns false, doing nothing, without
/// AVX-512.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fill(
    planes: &[f32],
    image_stride: usize,
    plane_len: usize,
    out: &mut [f32],
    out_size: (usize, usize),
    rows: (usize, usize),
    columns: (usize, usize),
    row: impl Fn(usize) -> usize,
    shift: isize,
    stride: usize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx512() {
        let (out_height, out_width) = out_size;
        let pixels = out_height * out_width;
        let images = out.len() / pixels.max(1);
        assert!(images == 0 || planes.len() >= (images - 1) * image_stride + plane_len);
        assert_eq!(out.len(), images * pixels);
        assert!(stride >= 1 && (plane_len as u64) < i32::MAX as u64 / 2, "gather indices are i32");
        let offsets: Vec<Option<usize>> =
            (0..out_height).map(|p| (rows.0 <= p && p < rows.1 && columns.0 < columns.1).then(|| row(p))).collect();
        // Columns q in `columns` read `row(p) + q·stride + shift`, inside the plane (the ranges
        // come from im2col's `valid_range`); check the first and last of every row.
        for (p, offset) in offsets.iter().enumerate() {
            if let Some(offset) = offset {
                let first = *offset as isize + (columns.0 * stride) as isize + shift;
                let last = *offset as isize + ((columns.1 - 1) * stride) as isize + shift;
                assert!(first >= 0 && (last as usize) < plane_len, "output row {p} reads outside its plane");
            }
        }
        // SAFETY: AVX-512F is present (checked above); loads read only lanes in `columns`, whose
        // addresses were checked to lie in the plane, and stores write `out_width` values of an
        // output row inside `out`.
        unsafe { imp::fill(planes, image_stride, out, out_width, &offsets, columns, shift, stride) };
        return true;
    }
    let _ = (planes, image_stride, plane_len, out, out_size, rows, columns, row, shift, stride);
    false
}

/// One patch row of maps of at most 16 output pixels: `out[j·L + i] = plane_j[sources[i]]`, zero
/// where `sources[i]` is `None` (padding); L = `sources.len()`. Several images share a vector
/// (16 / L of them: four 2×2 maps, one 4×4) and fill it with one gather. Returns false, doing
/// nothing, without AVX-512.
pub(crate) fn fill_small(planes: &[f32], image_stride: usize, plane_len: usize, out: &mut [f32], sources: &[Option<usize>]) -> bool {
    #[cfg(target_arch = "x86_64")]
    if crate::simd::avx512() {
        let pixels = sources.len();
        assert!((1..=16).contains(&pixels), "1 to 16 pixels a map");
        let images = out.len() / pixels;
        assert_eq!(out.len(), images * pixels);
        assert!(images == 0 || planes.len() >= (images - 1) * image_stride + plane_len);
        assert!(sources.iter().flatten().all(|&source| source < plane_len), "sources inside the plane");
        let per_vector = 16 / pixels;
        assert!((per_vector as u64) * (image_stride as u64) < i32::MAX as u64, "gather indices are i32");
        // SAFETY: AVX-512F is present; every gathered lane reads `sources[i] < plane_len` into the
        // plane of an image below `images` (masks stop at the last image), inside `planes` by the
        // assertions above; stores stay inside `out`.
        unsafe { imp::fill_small(planes, image_stride, out, sources, per_vector) };
        return true;
    }
    let _ = (planes, image_stride, plane_len, out, sources);
    false
}

#[cfg(target_arch = "x86_64")]
mod imp {
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
            // SAFETY: lane l of image k's load reads plane_k[l − k·L + shift] = plane_k[sources[l − k·L]]
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
}
