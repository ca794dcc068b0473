//! im2col's rows for feature maps at most 16 pixels wide with a horizontal stride of 1 (resnet18's
//! 7×7 and 8×8 stages at small image sizes). The general path makes a library call (`memcpy`,
//! `memset`) for every few values there: per patch row and image, a block copy and the zero rows
//! of the padding. Here every output row is one masked AVX-512 load, whose lanes outside the image
//! read as zeros, and one masked store.

/// One patch row for `images` images: `out[j·L + p·Q + q] = plane_j[row(p) + q + shift]` where
/// plane j starts `j · image_stride` into `planes`,
/// row p is in `rows` and column q in `columns`, zero elsewhere. `row(p)` is the offset of the input
/// row output row p reads, `shift` the kernel column minus the left padding. Returns false, doing
/// nothing, where this path does not apply (a wider map, or no AVX-512).
#[allow(clippy::too_many_arguments)]
pub(crate) fn fill(
    planes: &[f32],
    image_stride: usize,
    plane_len: usize,
    out: &mut [f32],
    out_height: usize,
    out_width: usize,
    rows: (usize, usize),
    columns: (usize, usize),
    row: impl Fn(usize) -> usize,
    shift: isize,
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if out_width <= 16 && std::is_x86_feature_detected!("avx512f") {
        let pixels = out_height * out_width;
        let images = out.len() / pixels.max(1);
        assert!(images == 0 || planes.len() >= (images - 1) * image_stride + plane_len);
        assert_eq!(out.len(), images * pixels);
        let offsets: Vec<Option<usize>> = (0..out_height).map(|p| (rows.0 <= p && p < rows.1 && columns.0 < columns.1).then(|| row(p))).collect();
        // Lanes q in `columns` read `row(p) + q + shift`, inside the plane (the ranges come from
        // im2col's `valid_range`); a row whose input is all padding is stored as zeros.
        for (&offset, p) in offsets.iter().zip(0..) {
            if let Some(offset) = offset {
                let first = offset as isize + columns.0 as isize + shift;
                let last = offset as isize + columns.1 as isize - 1 + shift;
                assert!(first >= 0 && (last as usize) < plane_len, "output row {p} reads outside its plane");
            }
        }
        // SAFETY: AVX-512F is present (checked above); loads read only the lanes in `columns`,
        // whose addresses were checked to lie in the plane, and stores write `out_width` values
        // of an output row inside `out`.
        unsafe { imp::fill(planes, image_stride, out, out_width, &offsets, columns, shift) };
        return true;
    }
    let _ = (planes, image_stride, plane_len, out, out_height, out_width, rows, columns, row, shift);
    false
}

#[cfg(target_arch = "x86_64")]
mod imp {
    use std::arch::x86_64::*;

    #[target_feature(enable = "avx512f")]
    pub(super) unsafe fn fill(
        planes: &[f32],
        image_stride: usize,
        out: &mut [f32],
        out_width: usize,
        offsets: &[Option<usize>],
        columns: (usize, usize),
        shift: isize,
    ) {
        let pixels = offsets.len() * out_width;
        let store = ((1u32 << out_width) - 1) as __mmask16;
        let load = ((((1u32 << columns.1) - 1) >> columns.0) << columns.0) as __mmask16;
        // SAFETY: see `narrow_rows::fill`, which checked the bounds these pointers stay in.
        unsafe {
            for (j, image_out) in out.chunks_exact_mut(pixels).enumerate() {
                let plane = planes.as_ptr().add(j * image_stride);
                for (p, offset) in offsets.iter().enumerate() {
                    let values = match offset {
                        Some(offset) => _mm512_maskz_loadu_ps(load, plane.wrapping_offset(*offset as isize + shift)),
                        None => _mm512_setzero_ps(),
                    };
                    _mm512_mask_storeu_ps(image_out.as_mut_ptr().add(p * out_width), store, values);
                }
            }
        }
    }
}
