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

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

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
        let steps = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15), _mm512_set1_epi32(stride as i32));
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
                        _mm512_mask_storeu_ps(out_row.add(run), lanes(0, width), values);
                    }
                }
            }
        }
    }
}
