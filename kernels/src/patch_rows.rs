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
    if crate::isa::avx512() {
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
    if crate::isa::avx512() {
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
#[path = "x86_64/patch_rows.rs"]
mod imp;
