//! 2-D convolution on contiguous f32 NCHW buffers as im2col × gemm, with a backward of its own:
//! the input gradient as a convolution (stride 1) or one gemm and a col2im (strided), the weight
//! gradient as one gemm per chunk of images. burn's generic backward, which flex uses, computes the weight gradient as a
//! convolution whose kernel is the output gradient and the input gradient as a transposed
//! convolution; both are several times slower than these gemms (docs/performance.md).
//!
//! Images are processed in chunks: enough output pixels per chunk for gemm to reach its speed,
//! few enough that the patch matrix stays small. Chunks run in parallel with a single-threaded
//! gemm each; when there are fewer chunks than threads (a batch of one, a 1×1 feature map),
//! chunks run one after the other and gemm uses every thread. Patch buffers live per thread and
//! are reused from step to step.

use std::cell::RefCell;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::batch_lanes_conv;
use crate::buffer::{filled, transpose, write};
use crate::direct_conv;
use crate::epilogue::Epilogue;
use crate::live_taps::LiveTaps;
use crate::matmul::{Destination, Matrix, gemm_threads, matmul};
use crate::patch_rows;
use crate::single_pixel::SinglePixel;

pub use crate::geometry::ConvGeometry;

/// `w'[c, k, r, s] = w[k, c, R − 1 − r, S − 1 − s]`: the weight of the input gradient's convolution.
/// A transpose of [K, C] kernels: blocks of input channels in parallel, each reading a short
/// contiguous run of every filter (resnet18's 512-channel weights: 5.5–16 ms element by element on
/// one thread, against the 8 ms of the convolution itself).
fn flipped_weight(geometry: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
    const CHANNELS_PER_TASK: usize = 16;
    let g = geometry;
    let area = g.kernel_height * g.kernel_width;
    let fill = |flipped: &mut [MaybeUninit<f32>]| {
        flipped.par_chunks_mut(CHANNELS_PER_TASK * g.out_channels * area).enumerate().for_each(|(block, flipped)| {
            let first = block * CHANNELS_PER_TASK;
            let channels = flipped.len() / (g.out_channels * area);
            for k in 0..g.out_channels {
                let sources = weight[(k * g.in_channels + first) * area..][..channels * area].chunks_exact(area);
                for (c, kernel) in sources.enumerate() {
                    let target = &mut flipped[(c * g.out_channels + k) * area..][..area];
                    target.iter_mut().zip(kernel.iter().rev()).for_each(|(to, &from)| {
                        to.write(from);
                    });
                }
            }
        });
    };
    // SAFETY: the blocks of channels cover `flipped`, and each writes every tap of every (channel,
    // filter) pair in it.
    unsafe { filled(weight.len(), fill) }
}

/// How the batch is split and who gets the threads.
#[derive(Debug, Clone, Copy)]
struct Plan {
    images_per_chunk: usize,
    chunks: usize,
    /// Chunks in parallel (each gemm on one thread), or one after the other (gemm on all).
    parallel_chunks: bool,
}

/// Output pixels per gemm below which gemm loses speed to its packing.
const MIN_COLUMNS: usize = 256;
/// Output pixels per gemm that are enough.
const TARGET_COLUMNS: usize = 512;
/// The patch matrix of one chunk stays below this many floats (16 MB).
const MAX_PATCH_FLOATS: usize = 4 << 20;

/// Chunks a batch is split into at least, when each keeps enough columns. A constant, not the
/// thread count: the chunks decide the order of the weight gradient's sums, and a run must give
/// the same weights on any number of threads.
const PREFERRED_CHUNKS: usize = 8;
/// Weight-gradient partial sums: lane `l` adds chunks `l`, `l + LANES`, … in order, and the lanes
/// are added in order at the end, whichever threads ran them.
const GRADIENT_LANES: usize = 8;

fn plan(geometry: &ConvGeometry) -> Plan {
    let threads = rayon::current_num_threads().max(1);
    let pixels = geometry.out_pixels().max(1);
    let by_memory = (MAX_PATCH_FLOATS / (geometry.patch_len() * pixels)).max(1);
    let mut images = TARGET_COLUMNS.div_ceil(pixels).min(by_memory).clamp(1, geometry.batch);
    if geometry.batch.div_ceil(images) < PREFERRED_CHUNKS {
        let for_chunks = geometry.batch.div_ceil(PREFERRED_CHUNKS);
        images = images.min(for_chunks.max(MIN_COLUMNS.div_ceil(pixels))).clamp(1, geometry.batch);
    }
    let chunks = geometry.batch.div_ceil(images);
    // How the work is spread over threads changes no sum: gemm splits its output, not its depth.
    Plan { images_per_chunk: images, chunks, parallel_chunks: chunks >= threads && threads > 1 }
}

thread_local! {
    /// Patch matrix, and gathered output gradient, of the chunk this thread works on.
    static SCRATCH: RefCell<(Vec<f32>, Vec<f32>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Runs `work` with two scratch buffers of at least the given lengths (contents undefined). The
/// thread's buffers are reused; a nested call (rayon may run another chunk on a thread that waits
/// inside gemm) gets fresh ones.
fn with_scratch<R>(lengths: [usize; 2], work: impl FnOnce(&mut [f32], &mut [f32]) -> R) -> R {
    SCRATCH.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buffers) => {
            let (first, second) = &mut *buffers;
            if first.len() < lengths[0] {
                first.resize(lengths[0], 0.0);
            }
            if second.len() < lengths[1] {
                second.resize(lengths[1], 0.0);
            }
            work(&mut first[..lengths[0]], &mut second[..lengths[1]])
        }
        Err(_) => work(&mut vec![0.0; lengths[0]], &mut vec![0.0; lengths[1]]),
    })
}

/// The scratch a chunk of `images` needs: its patch matrix, and (for several images) its
/// outputs or output gradients as one [K, images·L] matrix.
fn chunk_scratch(geometry: &ConvGeometry, images: usize) -> [usize; 2] {
    let columns = images * geometry.out_pixels();
    [geometry.patch_len() * columns, if images > 1 { geometry.out_channels * columns } else { 0 }]
}

/// The output columns `lo..hi` whose input index `o * stride + k - pad` falls inside `0..size`.
fn valid_range(out_size: usize, size: usize, stride: usize, k: usize, pad: usize) -> (usize, usize) {
    let lo = if k >= pad { 0 } else { (pad - k).div_ceil(stride) };
    let hi = if size + pad <= k { 0 } else { ((size + pad - k - 1) / stride + 1).min(out_size) };
    (lo.min(hi), hi)
}

/// Output maps of at most this many pixels are gathered element by element (see `im2col`).
const SMALL_MAP_PIXELS: usize = 16;

/// `patches[(c, r, s), j·L + p·Q + q] = x[first + j, c, p·sh + r − pt, q·sw + s − pl]`, zero in the
/// padding, for the images `first..first + images` (L = P·Q output pixels).
fn im2col(geometry: &ConvGeometry, x: &[f32], first: usize, images: usize, patches: &mut [f32], parallel: bool) {
    let g = geometry;
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let pixels = out_height * out_width;
    let kernel_area = g.kernel_height * g.kernel_width;
    let fill_row = |row: usize, out: &mut [f32]| {
        let (c, r, s) = (row / kernel_area, (row % kernel_area) / g.kernel_width, row % g.kernel_width);
        let (q_lo, q_hi) = valid_range(out_width, g.in_width, g.stride[1], s, g.padding_begin[1]);
        let (p_lo, p_hi) = valid_range(out_height, g.in_height, g.stride[0], r, g.padding_begin[0]);
        // Input column of output column q: q·sw + s − pl, non-negative from q_lo on.
        let column = |q: usize| q * g.stride[1] + s - g.padding_begin[1];
        let row = |p: usize| (p * g.stride[0] + r - g.padding_begin[0]) * g.in_width;
        if pixels <= SMALL_MAP_PIXELS {
            // Maps of a few pixels (late stages at small image sizes): per image, the row and
            // block bookkeeping below would cost more than the copying. Gather element by element
            // from offsets worked out once.
            let mut sources = [None; SMALL_MAP_PIXELS];
            for p in p_lo..p_hi {
                for q in q_lo..q_hi {
                    sources[p * out_width + q] = Some(row(p) + column(q));
                }
            }
            let planes = &x[(first * g.in_channels + c) * g.in_pixels()..];
            if patch_rows::fill_small(planes, g.in_channels * g.in_pixels(), g.in_pixels(), out, &sources[..pixels]) {
                return;
            }
            for (j, image_out) in out.chunks_exact_mut(pixels).enumerate() {
                let plane = &x[((first + j) * g.in_channels + c) * g.in_pixels()..][..g.in_pixels()];
                for (value, source) in image_out.iter_mut().zip(&sources) {
                    *value = source.map_or(0.0, |index| plane[index]);
                }
            }
            return;
        }
        let planes = &x[(first * g.in_channels + c) * g.in_pixels()..];
        let shift = s as isize - g.padding_begin[1] as isize;
        let (image_stride, size) = (g.in_channels * g.in_pixels(), (out_height, out_width));
        if patch_rows::fill(planes, image_stride, g.in_pixels(), out, size, (p_lo, p_hi), (q_lo, q_hi), row, shift, g.stride[1]) {
            return;
        }
        for (j, image_out) in out.chunks_exact_mut(pixels).enumerate() {
            let plane = &x[((first + j) * g.in_channels + c) * g.in_pixels()..][..g.in_pixels()];
            image_out[..p_lo * out_width].fill(0.0);
            image_out[p_hi * out_width..].fill(0.0);
            if p_lo >= p_hi {
                continue;
            }
            if q_lo >= q_hi {
                image_out[p_lo * out_width..p_hi * out_width].fill(0.0);
            } else if g.stride == [1, 1] && out_width == g.in_width {
                // Output and input rows have the same length: the valid rows are one block of the
                // plane. Copy it at once, then zero the padding columns the copy ran over.
                let start = p_lo * out_width + q_lo;
                let end = (p_hi - 1) * out_width + q_hi;
                let from = row(p_lo) + column(q_lo);
                image_out[start..end].copy_from_slice(&plane[from..from + end - start]);
                // A column or two per row: plain stores, not a memset call each.
                for dst in image_out[p_lo * out_width..p_hi * out_width].chunks_exact_mut(out_width) {
                    for value in &mut dst[..q_lo] {
                        *value = 0.0;
                    }
                    for value in &mut dst[q_hi..] {
                        *value = 0.0;
                    }
                }
            } else {
                for p in p_lo..p_hi {
                    let dst = &mut image_out[p * out_width..][..out_width];
                    let src = &plane[row(p)..][..g.in_width];
                    dst[..q_lo].fill(0.0);
                    dst[q_hi..].fill(0.0);
                    if g.stride[1] == 1 {
                        dst[q_lo..q_hi].copy_from_slice(&src[column(q_lo)..column(q_lo) + q_hi - q_lo]);
                    } else {
                        for q in q_lo..q_hi {
                            dst[q] = src[column(q)];
                        }
                    }
                }
            }
        }
    };
    let row_len = images * pixels;
    let patches = &mut patches[..g.patch_len() * row_len];
    if parallel {
        patches.par_chunks_mut(row_len).with_min_len(8).enumerate().for_each(|(row, out)| fill_row(row, out));
    } else {
        patches.chunks_mut(row_len).enumerate().for_each(|(row, out)| fill_row(row, out));
    }
}

/// `dx[first + j, c, ·, ·] += Σ_(r,s) patch_grads[(c, r, s), j·L …]` scattered back to where
/// im2col took each element from; `dx` holds the images of this chunk only.
fn col2im(geometry: &ConvGeometry, patch_grads: &[f32], images: usize, dx: &mut [f32], parallel: bool) {
    let g = geometry;
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let pixels = out_height * out_width;
    let row_len = images * pixels;
    // With a horizontal stride, an output column's contributions land `stride` input columns
    // apart. They are summed in a copy of the plane whose rows are split by column phase
    // (columns φ, φ + stride, … side by side), where each run is contiguous, then interleaved back.
    let column_stride = g.stride[1];
    let phase_offsets: Vec<usize> = (0..column_stride)
        .scan(0, |offset, phase| {
            let start = *offset;
            *offset += g.in_width.saturating_sub(phase).div_ceil(column_stride);
            Some(start)
        })
        .collect();
    let add_plane = |plane_index: usize, plane: &mut [f32]| {
        let (j, c) = (plane_index / g.in_channels, plane_index % g.in_channels);
        let mut phases = if column_stride > 1 { vec![0.0f32; g.in_pixels()] } else { Vec::new() };
        let sums: &mut [f32] = if column_stride > 1 { &mut phases } else { plane };
        for r in 0..g.kernel_height {
            for s in 0..g.kernel_width {
                let row = (c * g.kernel_height + r) * g.kernel_width + s;
                let grads = &patch_grads[row * row_len + j * pixels..][..pixels];
                let (q_lo, q_hi) = valid_range(out_width, g.in_width, column_stride, s, g.padding_begin[1]);
                if q_lo >= q_hi {
                    continue;
                }
                let first_column = q_lo * column_stride + s - g.padding_begin[1];
                // Where this kernel column's run starts in a row of `sums`.
                let start = phase_offsets[first_column % column_stride] + first_column / column_stride;
                for (p, src) in grads.chunks_exact(out_width).enumerate() {
                    let ih = (p * g.stride[0] + r) as isize - g.padding_begin[0] as isize;
                    if ih < 0 || ih as usize >= g.in_height {
                        continue;
                    }
                    let dst = &mut sums[ih as usize * g.in_width + start..][..q_hi - q_lo];
                    for (d, v) in dst.iter_mut().zip(&src[q_lo..q_hi]) {
                        *d += v;
                    }
                }
            }
        }
        if column_stride > 1 {
            for (plane_row, phase_row) in plane.chunks_exact_mut(g.in_width).zip(phases.chunks_exact(g.in_width)) {
                // Whole groups of `stride` columns take one value from each phase.
                let groups = g.in_width / column_stride;
                for (k, group) in plane_row.chunks_exact_mut(column_stride).enumerate() {
                    for (phase, value) in group.iter_mut().enumerate() {
                        *value += phase_row[phase_offsets[phase] + k];
                    }
                }
                for column in groups * column_stride..g.in_width {
                    let phase = column % column_stride;
                    plane_row[column] += phase_row[phase_offsets[phase] + column / column_stride];
                }
            }
        }
    };
    let dx = &mut dx[..images * g.in_channels * g.in_pixels()];
    if parallel {
        dx.par_chunks_mut(g.in_pixels()).enumerate().for_each(|(index, plane)| add_plane(index, plane));
    } else {
        dx.chunks_mut(g.in_pixels()).enumerate().for_each(|(index, plane)| add_plane(index, plane));
    }
}

/// `y = conv2d(x, w)`: x is [N, C, H, W], w is [K, C, R, S], y is [N, K, P, Q], all contiguous.
/// A one-pixel output is a gemm per kernel tap ([`SinglePixel`]); elsewhere, kernel taps that only
/// ever read padding are skipped ([`LiveTaps`]).
pub fn forward(geometry: &ConvGeometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
    forward_then(geometry, x, weight, None)
}

/// [`forward`], each output value then through `epilogue` (batch norm with fixed statistics, a
/// residual, a ReLU) before it is stored: evaluation's conv → batch norm → add → ReLU in one pass
/// over the output instead of three, with the same bits.
pub fn forward_then(geometry: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: Option<&Epilogue>) -> Vec<f32> {
    assert_eq!(x.len(), geometry.input_len(), "conv input length");
    assert_eq!(weight.len(), geometry.weight_len(), "conv weight length");
    if let Some(epilogue) = epilogue {
        assert!(epilogue.fits(geometry.out_channels, geometry.output_len()), "conv epilogue: coefficients or residual of another shape");
    }
    if let Some(single_pixel) = SinglePixel::of(geometry) {
        let mut y = single_pixel.forward(geometry, x, weight);
        if let Some(epilogue) = epilogue {
            epilogue.apply_images(&mut y, 0, geometry.out_pixels());
        }
        return y;
    }
    match LiveTaps::of(geometry) {
        Some(taps) => convolve(&taps.cropped, x, &taps.crop(geometry, weight), epilogue),
        None => convolve(geometry, x, weight, epilogue),
    }
}

/// The convolution by the direct kernel where it applies (3×3, stride 1, padding 1, AVX-512),
/// else by im2col × gemm.
fn convolve(geometry: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: Option<&Epilogue>) -> Vec<f32> {
    if direct_conv::applies(geometry) {
        direct_conv::forward(geometry, x, weight, epilogue)
    } else if batch_lanes_conv::applies(geometry) {
        batch_lanes_conv::forward(geometry, x, weight, epilogue)
    } else {
        forward_whole_kernel(geometry, x, weight, epilogue)
    }
}

fn forward_whole_kernel(geometry: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: Option<&Epilogue>) -> Vec<f32> {
    let g = geometry;
    let plan = plan(g);
    let pixels = g.out_pixels();
    let chunk_out = plan.images_per_chunk * g.out_channels * pixels;
    let run_chunk = |chunk: usize, y_chunk: &mut [MaybeUninit<f32>]| {
        let first = chunk * plan.images_per_chunk;
        let images = y_chunk.len() / (g.out_channels * pixels);
        let columns = images * pixels;
        let threads = gemm_threads(plan.parallel_chunks, g.out_channels, columns, g.patch_len());
        with_scratch(chunk_scratch(g, images), |patches, gathered| {
            im2col(g, x, first, images, patches, !plan.parallel_chunks);
            let dims = [g.out_channels, columns, g.patch_len()];
            if images == 1 {
                matmul(Destination::Fresh(y_chunk), Matrix::rows(columns), weight, Matrix::rows(g.patch_len()), patches, Matrix::rows(columns), dims, threads);
            } else {
                // The gemm writes [K, images·L]; the tensor is [images, K, L].
                matmul(Destination::Overwrite(gathered), Matrix::rows(columns), weight, Matrix::rows(g.patch_len()), patches, Matrix::rows(columns), dims, threads);
                for (k, row) in gathered.chunks_exact(columns).enumerate() {
                    for (j, image_row) in row.chunks_exact(pixels).enumerate() {
                        write(&mut y_chunk[(j * g.out_channels + k) * pixels..][..pixels], image_row);
                    }
                }
            }
        });
        if let Some(epilogue) = epilogue {
            // SAFETY: the gemm or the loop above wrote every value of the chunk.
            let written = unsafe { &mut *(y_chunk as *mut [MaybeUninit<f32>] as *mut [f32]) };
            epilogue.apply_images(written, first, pixels);
        }
    };
    // Each chunk writes all K·L outputs of each of its images.
    let fill = |y: &mut [MaybeUninit<f32>]| {
        if plan.parallel_chunks {
            y.par_chunks_mut(chunk_out).enumerate().for_each(|(chunk, y_chunk)| run_chunk(chunk, y_chunk));
        } else {
            y.chunks_mut(chunk_out).enumerate().for_each(|(chunk, y_chunk)| run_chunk(chunk, y_chunk));
        }
    };
    // SAFETY: the chunks cover `y`, and each chunk's gemm (or loop) writes all of its outputs.
    unsafe { filled(g.output_len(), fill) }
}

/// The gradients of `y = conv2d(x, w)` given `dy`: `dx` when `input_grad`, `dw` when `weight_grad`.
/// Kernel taps that only ever read padding are skipped; their weight gradient is zero.
pub fn backward(
    geometry: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    input_grad: bool,
    weight_grad: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    assert_eq!(x.len(), geometry.input_len(), "conv input length");
    assert_eq!(weight.len(), geometry.weight_len(), "conv weight length");
    assert_eq!(dy.len(), geometry.output_len(), "conv output gradient length");
    if let Some(single_pixel) = SinglePixel::of(geometry) {
        return single_pixel.backward(geometry, x, weight, dy, input_grad, weight_grad);
    }
    match LiveTaps::of(geometry) {
        Some(taps) => {
            let (dx, dw) = backward_whole_kernel(&taps.cropped, x, &taps.crop(geometry, weight), dy, input_grad, weight_grad);
            (dx, dw.map(|cropped| taps.expand(geometry, &cropped)))
        }
        None => backward_whole_kernel(geometry, x, weight, dy, input_grad, weight_grad),
    }
}

fn backward_whole_kernel(
    geometry: &ConvGeometry,
    x: &[f32],
    weight: &[f32],
    dy: &[f32],
    input_grad: bool,
    weight_grad: bool,
) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
    let g = geometry;
    // Where the input gradient is a convolution, it costs what the forward costs; elsewhere
    // (strided convolutions) it is a gemm and a col2im below.
    let (mut dx, col2im_input_grad) = match g.input_gradient_as_convolution() {
        Some(transposed) if input_grad => (Some(convolve(&transposed, dy, &flipped_weight(g, weight), None)), false),
        _ => (input_grad.then(|| vec![0.0f32; g.input_len()]), input_grad),
    };
    if !weight_grad && !col2im_input_grad {
        return (dx, None);
    }
    if weight_grad && !col2im_input_grad && direct_conv::weight_gradient_applies(g) {
        return (dx, Some(direct_conv::weight_gradient(g, x, dy)));
    }
    let plan = plan(g);
    let pixels = g.out_pixels();
    let chunk_in = plan.images_per_chunk * g.in_channels * g.in_pixels();

    // One chunk: dw += dy_c · patchesᵀ, and dx_c = col2im(wᵀ · dy_c). `dx_chunk` is this chunk's
    // images of dx; `dw` this thread's partial sum.
    let run_chunk = |chunk: usize, dx_chunk: Option<&mut [f32]>, dw: Option<&mut Option<Vec<f32>>>| {
        let first = chunk * plan.images_per_chunk;
        let images = plan.images_per_chunk.min(g.batch - first);
        let columns = images * pixels;
        // Patches for the weight gradient; the same buffer then holds the patch gradients.
        with_scratch(chunk_scratch(g, images), |patches, gathered| {
            let dy_chunk = &dy[first * g.out_channels * pixels..][..images * g.out_channels * pixels];
            // dy of this chunk as one [K, images·L] matrix.
            let dy_matrix: &[f32] = if images == 1 {
                dy_chunk
            } else {
                for (j, image) in dy_chunk.chunks_exact(g.out_channels * pixels).enumerate() {
                    for (k, row) in image.chunks_exact(pixels).enumerate() {
                        gathered[k * columns + j * pixels..][..pixels].copy_from_slice(row);
                    }
                }
                gathered
            };
            if let Some(dw) = dw {
                im2col(g, x, first, images, patches, !plan.parallel_chunks);
                let threads = gemm_threads(plan.parallel_chunks, g.out_channels, g.patch_len(), columns);
                // dw is accumulated transposed, [CRS, K]: gemm then reads the patches along
                // their rows as they lie, and transposes only the smaller dy while packing.
                let product = |destination: Destination<'_>| {
                    matmul(
                        destination,
                        Matrix::rows(g.out_channels).transpose(),
                        dy_matrix,
                        Matrix::rows(columns),
                        patches,
                        Matrix::rows(columns).transpose(),
                        [g.out_channels, g.patch_len(), columns],
                        threads,
                    )
                };
                // A lane's first chunk writes its partial sum and the next ones add to it: no
                // zeroed buffer to fill and read back (resnet18's last stages at 64 px zeroed
                // about 100 MB a training step).
                match dw {
                    Some(sums) => product(Destination::Accumulate(sums)),
                    // SAFETY: gemm writes every value of a `Fresh` destination of m×n (asserted by
                    // `matmul`).
                    None => *dw = Some(unsafe { filled(g.weight_len(), |fresh| product(Destination::Fresh(fresh))) }),
                }
            }
            if let Some(dx_chunk) = dx_chunk {
                let threads = gemm_threads(plan.parallel_chunks, g.patch_len(), columns, g.out_channels);
                matmul(
                    Destination::Overwrite(patches),
                    Matrix::rows(columns),
                    weight,
                    Matrix::rows(g.patch_len()).transpose(),
                    dy_matrix,
                    Matrix::rows(columns),
                    [g.patch_len(), columns, g.out_channels],
                    threads,
                );
                col2im(g, patches, images, dx_chunk, !plan.parallel_chunks);
            }
        });
    };

    let chunk_dx: Vec<Option<&mut [f32]>> = match dx.as_mut() {
        Some(dx) if col2im_input_grad => dx.chunks_mut(chunk_in).map(Some).collect(),
        _ => (0..plan.chunks).map(|_| None).collect(),
    };
    let lanes = GRADIENT_LANES.min(plan.chunks);
    let mut lane_work: Vec<Vec<(usize, Option<&mut [f32]>)>> = (0..lanes).map(|_| Vec::new()).collect();
    for (chunk, dx_chunk) in chunk_dx.into_iter().enumerate() {
        lane_work[chunk % lanes].push((chunk, dx_chunk));
    }
    let run_lane = |work: Vec<(usize, Option<&mut [f32]>)>| {
        let mut dw = None;
        for (chunk, dx_chunk) in work {
            run_chunk(chunk, dx_chunk, weight_grad.then_some(&mut dw));
        }
        dw
    };
    let partial_sums: Vec<Option<Vec<f32>>> = if plan.parallel_chunks {
        lane_work.into_par_iter().map(run_lane).collect()
    } else {
        lane_work.into_iter().map(run_lane).collect()
    };
    let dw = partial_sums.into_iter().reduce(|total, lane| match (total, lane) {
        (Some(mut total), Some(lane)) => {
            total.iter_mut().zip(&lane).for_each(|(total, value)| *total += value);
            Some(total)
        }
        (total, lane) => total.or(lane),
    });
    let dw = dw.flatten();
    (dx, dw.map(|transposed| transpose(&transposed, g.patch_len(), g.out_channels)))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The definition, one multiply-add at a time.
    fn reference_forward(g: &ConvGeometry, x: &[f32], w: &[f32]) -> Vec<f32> {
        let (oh, ow) = (g.out_height(), g.out_width());
        let mut y = vec![0.0; g.output_len()];
        for n in 0..g.batch {
            for k in 0..g.out_channels {
                for p in 0..oh {
                    for q in 0..ow {
                        let mut sum = 0.0f64;
                        for c in 0..g.in_channels {
                            for r in 0..g.kernel_height {
                                for s in 0..g.kernel_width {
                                    let ih = (p * g.stride[0] + r) as isize - g.padding_begin[0] as isize;
                                    let iw = (q * g.stride[1] + s) as isize - g.padding_begin[1] as isize;
                                    if ih < 0 || iw < 0 || ih as usize >= g.in_height || iw as usize >= g.in_width {
                                        continue;
                                    }
                                    let xi = ((n * g.in_channels + c) * g.in_height + ih as usize) * g.in_width + iw as usize;
                                    let wi = ((k * g.in_channels + c) * g.kernel_height + r) * g.kernel_width + s;
                                    sum += x[xi] as f64 * w[wi] as f64;
                                }
                            }
                        }
                        y[((n * g.out_channels + k) * oh + p) * ow + q] = sum as f32;
                    }
                }
            }
        }
        y
    }

    #[test]
    fn the_same_bits_on_any_number_of_threads() {
        // Many chunks of small gemms, and a strided case for the col2im path; then two images
        // whose gemms are large enough to be split across threads.
        for (batch, channels, side, stride) in [(37, 5, 9, 1), (37, 5, 9, 2), (2, 64, 16, 1), (2, 64, 16, 2)] {
            let g = square(batch, channels, channels + 2, side, 3, stride, 1);
            let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let w: Vec<f32> = (0..g.weight_len()).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
            let dy: Vec<f32> = (0..g.output_len()).map(|i| ((i * 29 % 89) as f32 - 44.0) / 20.0).collect();
            let run = |threads: usize| {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                pool.install(|| (forward(&g, &x, &w), backward(&g, &x, &w, &dy, true, true)))
            };
            let one = run(1);
            for threads in [2, 3, 5] {
                assert!(run(threads) == one, "stride {stride}: {threads} threads gave other bits than one");
            }
        }
    }

    #[test]
    fn the_flipped_weight_swaps_channels_and_turns_each_kernel_around() {
        // 37 input channels: two whole blocks of 16 and a rest.
        let g = ConvGeometry { batch: 1, in_channels: 37, in_height: 4, in_width: 4, out_channels: 5, kernel_height: 2, kernel_width: 3, stride: [1, 1], padding_begin: [0, 0], padding_end: [0, 0] };
        let weight: Vec<f32> = (0..g.weight_len()).map(|i| i as f32).collect();
        let flipped = flipped_weight(&g, &weight);
        for k in 0..5 {
            for c in 0..37 {
                for r in 0..2 {
                    for s in 0..3 {
                        assert_eq!(flipped[((c * 5 + k) * 2 + r) * 3 + s], weight[((k * 37 + c) * 2 + 1 - r) * 3 + 2 - s]);
                    }
                }
            }
        }
    }

    #[test]
    fn transpose_swaps_rows_and_columns() {
        let values: Vec<f32> = (0..35 * 70).map(|i| i as f32).collect();
        let transposed = transpose(&values, 35, 70);
        for r in 0..35 {
            for c in 0..70 {
                assert_eq!(transposed[c * 35 + r], values[r * 70 + c]);
            }
        }
    }

    #[test]
    fn valid_range_keeps_input_columns_inside_the_image() {
        // 5 wide, pad 1, kernel column 0, stride 2: outputs 0..3 read columns -1, 1, 3.
        assert_eq!(valid_range(3, 5, 2, 0, 1), (1, 3));
        // Kernel column 2 reads 1, 3, 5: the last falls outside.
        assert_eq!(valid_range(3, 5, 2, 2, 1), (0, 2));
        // Padding wider than the image and kernel: nothing valid.
        assert_eq!(valid_range(2, 1, 1, 0, 3), (2, 2));
    }

    #[test]
    fn taps_that_read_only_padding_are_skipped_without_changing_a_result() {
        // A 3x3 kernel on 1x1 maps, resnet18's strided 2x2 → 1x1, 5x5 kernels cropped on both sides or on one.
        for (side, kernel, stride, padding) in [(1, 3, 1, 1), (2, 3, 2, 1), (1, 5, 1, 2), (2, 5, 1, 2)] {
            let g = ConvGeometry {
                batch: 3,
                in_channels: 4,
                in_height: side,
                in_width: side + 1,
                out_channels: 5,
                kernel_height: kernel,
                kernel_width: kernel,
                stride: [stride, stride],
                padding_begin: [padding, padding],
                padding_end: [padding, padding],
            };
            assert!(LiveTaps::of(&g).is_some(), "side {side}: some taps only read padding");
            let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let w: Vec<f32> = (0..g.weight_len()).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
            let dy: Vec<f32> = (0..g.output_len()).map(|i| ((i * 29 % 89) as f32 - 44.0) / 20.0).collect();
            let close = |got: &[f32], expected: &[f32], what: &str| {
                assert_eq!(got.len(), expected.len());
                for (a, b) in got.iter().zip(expected) {
                    assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "side {side}, {what}: {a} vs {b}");
                }
            };
            close(&forward(&g, &x, &w), &reference_forward(&g, &x, &w), "forward");
            let (dx, dw) = backward(&g, &x, &w, &dy, true, true);
            let (whole_dx, whole_dw) = backward_whole_kernel(&g, &x, &w, &dy, true, true);
            close(&dx.unwrap(), &whole_dx.unwrap(), "input gradient");
            close(&dw.unwrap(), &whole_dw.unwrap(), "weight gradient");
        }
    }

    /// A 3×3 kernel, stride 1, padding 1: the output the input's size (the direct kernel's shape).
    pub(crate) fn same_size_3x3(batch: usize, in_channels: usize, out_channels: usize, height: usize, width: usize) -> ConvGeometry {
        ConvGeometry {
            batch,
            in_channels,
            in_height: height,
            in_width: width,
            out_channels,
            kernel_height: 3,
            kernel_width: 3,
            stride: [1, 1],
            padding_begin: [1, 1],
            padding_end: [1, 1],
        }
    }

    /// A square input and kernel, the same stride and padding on both axes.
    fn square(batch: usize, in_channels: usize, out_channels: usize, side: usize, kernel: usize, stride: usize, padding: usize) -> ConvGeometry {
        ConvGeometry {
            batch,
            in_channels,
            in_height: side,
            in_width: side,
            out_channels,
            kernel_height: kernel,
            kernel_width: kernel,
            stride: [stride, stride],
            padding_begin: [padding; 2],
            padding_end: [padding; 2],
        }
    }

    #[test]
    fn the_direct_kernel_matches_the_definition_and_im2col_times_gemm() {
        // The stem of resnet_small (3 → 16), more channels than one block, a non-square image, and a
        // masked rest of a row (28 = 16 + 12).
        for (in_channels, out_channels, height, width) in [(3, 16, 5, 32), (20, 32, 7, 16), (16, 48, 16, 48), (8, 16, 3, 28)] {
            let g = same_size_3x3(3, in_channels, out_channels, height, width);
            if !direct_conv::applies(&g) {
                eprintln!("no AVX2 here: the direct kernel is not tested");
                return;
            }
            let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let w: Vec<f32> = (0..g.weight_len()).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
            let direct = direct_conv::forward(&g, &x, &w, None);
            for (expected, what) in [(reference_forward(&g, &x, &w), "definition"), (forward_whole_kernel(&g, &x, &w, None), "im2col × gemm")] {
                for (a, b) in direct.iter().zip(&expected) {
                    assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{in_channels} → {out_channels}, {what}: {a} vs {b}");
                }
            }
        }
    }

    #[test]
    fn the_direct_weight_gradient_matches_the_definition() {
        // Images in one task and in two (8 a task, the second part-filled), a masked rest of a row
        // (28 = 16 + 12), the stem's 3 input channels, and more than one block of output channels.
        for (batch, in_channels, out_channels, height, width) in [(3, 3, 16, 4, 16), (11, 20, 32, 3, 28), (9, 16, 16, 5, 32)] {
            let g = same_size_3x3(batch, in_channels, out_channels, height, width);
            if !direct_conv::weight_gradient_applies(&g) {
                eprintln!("no AVX2 here: the direct weight gradient is not tested");
                return;
            }
            let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let dy: Vec<f32> = (0..g.output_len()).map(|i| ((i * 29 % 89) as f32 - 44.0) / 40.0).collect();
            let got = direct_conv::weight_gradient(&g, &x, &dy);
            let (_, through_backward) = backward(&g, &x, &vec![0.0; g.weight_len()], &dy, false, true);
            assert_eq!(through_backward.as_deref(), Some(&got[..]), "backward takes the direct weight gradient");
            for k in 0..out_channels {
                for c in 0..in_channels {
                    for (r, s) in (0..3).flat_map(|r| (0..3).map(move |s| (r, s))) {
                        let mut expected = 0.0f64;
                        for n in 0..batch {
                            for (p, q) in (0..height).flat_map(|p| (0..width).map(move |q| (p, q))) {
                                let (h, w) = ((p + r) as isize - 1, (q + s) as isize - 1);
                                if h >= 0 && w >= 0 && (h as usize) < height && (w as usize) < width {
                                    let input = x[((n * in_channels + c) * height + h as usize) * width + w as usize] as f64;
                                    expected += dy[((n * out_channels + k) * height + p) * width + q] as f64 * input;
                                }
                            }
                        }
                        let value = got[((k * in_channels + c) * 3 + r) * 3 + s] as f64;
                        assert!((value - expected).abs() <= 1e-4 * expected.abs().max(1.0), "{g:?} dw[{k}, {c}, {r}, {s}]: {value} vs {expected}");
                    }
                }
            }
        }
    }

    #[test]
    fn forward_matches_the_definition_on_a_batch_split_in_chunks() {
        let g = ConvGeometry {
            batch: 5,
            in_channels: 3,
            in_height: 7,
            in_width: 4,
            out_channels: 6,
            kernel_height: 3,
            kernel_width: 2,
            stride: [2, 1],
            padding_begin: [1, 0],
            padding_end: [0, 1],
        };
        let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let w: Vec<f32> = (0..g.weight_len()).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
        let expected = reference_forward(&g, &x, &w);
        let got = forward(&g, &x, &w);
        for (a, b) in got.iter().zip(&expected) {
            assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{a} vs {b}");
        }
    }

    /// Strided patch rows of more than 16 output pixels (a full run and a part-filled one), with
    /// padding on either side: strides 2 and 3, each lane gathered (two loads and a permutation that
    /// keeps every other value measured 5-10% slower than the gather on stride 2).
    #[test]
    fn strided_patch_rows_match_the_definition() {
        // (input side, kernel, stride, padding): a 3×3 and resnet18's 7×7 stem at stride 2, a 1×1
        // stride-2 downsample, an odd side, and stride 3.
        for (side, kernel, stride, padding) in [(37, 3, 2, 1), (40, 7, 2, 3), (33, 1, 2, 0), (36, 3, 2, 1), (50, 3, 3, 1)] {
            let g = square(3, 2, 5, side, kernel, stride, padding);
            assert!(g.out_width() > 16 && g.out_height() * g.out_width() > SMALL_MAP_PIXELS, "{g:?}");
            let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let w: Vec<f32> = (0..g.weight_len()).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
            let expected = reference_forward(&g, &x, &w);
            for (index, (a, b)) in forward(&g, &x, &w).iter().zip(&expected).enumerate() {
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{g:?} [{index}]: {a} vs {b}");
            }
        }
    }

    #[test]
    fn small_maps_gathered_several_images_a_vector_match_the_definition() {
        // 2×2, 3×3 and 4×4 outputs (four, one and one image a vector), padding, stride 2, and
        // batches that leave a part-filled last vector.
        for (side, stride, padding, batch) in [(2, 1, 1, 7), (3, 1, 1, 5), (4, 1, 1, 3), (7, 2, 1, 6), (5, 1, 0, 9)] {
            let g = square(batch, 3, 4, side, 3, stride, padding);
            assert!(g.out_height() * g.out_width() <= SMALL_MAP_PIXELS && g.out_height() > 1);
            let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let w: Vec<f32> = (0..g.weight_len()).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
            let expected = reference_forward(&g, &x, &w);
            for (a, b) in forward_whole_kernel(&g, &x, &w, None).iter().zip(&expected) {
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "side {side} stride {stride}: {a} vs {b}");
            }
        }
    }

    #[test]
    fn the_batch_lanes_kernel_matches_the_definition() {
        if !crate::isa::avx2() {
            eprintln!("skipped: the vector kernels are off ({})", crate::isa::current().name());
            return;
        }
        // (batch, channels in → out, input h × w, kernel, stride, padding begin, end): a full and a
        // part-filled group, 2×2 and 7×7 maps with 3×3 kernels, a 7×7 kernel, a non-square kernel
        // with asymmetric padding, 40 output channels (a task block of 8), and 20 input channels
        // on a 3×3 map (copied into lanes 16 channels a task: a task of 4; runs of 16 values that
        // cross channels and end part-filled, in and out).
        let cases = [
            (16, 5, 16, [2, 2], [3, 3], [1, 1], [1, 1], [1, 1]),
            (24, 20, 24, [3, 3], [3, 3], [1, 1], [1, 1], [1, 1]),
            (28, 3, 8, [7, 7], [3, 3], [1, 1], [1, 1], [1, 1]),
            (32, 3, 64, [7, 7], [7, 7], [1, 1], [3, 3], [3, 3]),
            (13, 4, 40, [5, 6], [3, 4], [1, 1], [0, 2], [1, 0]),
            (64, 2, 16, [4, 4], [3, 3], [1, 1], [1, 1], [1, 1]),
        ];
        for (batch, in_channels, out_channels, [in_height, in_width], [kernel_height, kernel_width], stride, padding_begin, padding_end) in cases {
            let g = ConvGeometry { batch, in_channels, in_height, in_width, out_channels, kernel_height, kernel_width, stride, padding_begin, padding_end };
            assert!(batch_lanes_conv::applies(&g), "{g:?}");
            let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let w: Vec<f32> = (0..g.weight_len()).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
            let expected = reference_forward(&g, &x, &w);
            let got = batch_lanes_conv::forward(&g, &x, &w, None);
            assert_eq!(got.len(), expected.len());
            for (index, (a, b)) in got.iter().zip(&expected).enumerate() {
                assert!((a - b).abs() <= 1e-4 * b.abs().max(1.0), "{g:?} [{index}]: {a} vs {b}");
            }
        }
        let narrow = |batch, out_channels, width| ConvGeometry { batch, in_channels: 4, in_height: 7, in_width: width, out_channels, kernel_height: 3, kernel_width: 3, stride: [1, 1], padding_begin: [1, 1], padding_end: [1, 1] };
        let lanes = if crate::isa::avx512() { 16 } else { 8 };
        assert!(!batch_lanes_conv::applies(&narrow(lanes / 2, 16, 7)), "half the lanes empty");
        assert!(!batch_lanes_conv::applies(&narrow(64, 12, 7)), "output channels not a multiple of 8");
        assert!(batch_lanes_conv::applies(&narrow(64, 16, 8)), "rows of 8");
        assert!(!batch_lanes_conv::applies(&narrow(64, 16, 9)), "rows of 9");
        assert!(!batch_lanes_conv::applies(&ConvGeometry { stride: [2, 2], ..narrow(64, 16, 7) }), "stride 2");
        let wide_kernel = ConvGeometry { kernel_height: 9, kernel_width: 9, padding_begin: [4, 4], padding_end: [4, 4], ..narrow(64, 16, 7) };
        assert!(!batch_lanes_conv::applies(&wide_kernel), "81 taps: more than a block lists");
        let large = ConvGeometry { in_channels: 512, out_channels: 512, ..narrow(64, 16, 7) };
        assert!(crate::cache::sizes().l2 / 2 < 2_700_000 && !batch_lanes_conv::applies(&large), "2.7 MB a group: beyond half the L2 cache");
    }

    /// `forward_then` gives the bits of `forward` followed by the epilogue as a pass of its own
    /// (itself the bits of batch norm then `add_relu`: epilogue.rs), on every path a forward takes:
    /// the direct kernel (a full and a masked row tile), batch lanes (a part-filled group), im2col ×
    /// gemm (stride 2, chunks of several images and of one), a single output pixel, and cropped taps.
    #[test]
    fn the_epilogue_in_the_kernels_gives_the_bits_of_a_pass_after_them() {
        let cases = [
            (square(3, 5, 16, 28, 3, 1, 1), "direct"),
            (square(27, 6, 16, 5, 3, 1, 1), "batch lanes"),
            (square(9, 5, 7, 11, 3, 2, 1), "im2col x gemm"),
            (square(1, 4, 6, 40, 3, 2, 1), "im2col x gemm, one image"),
            (square(5, 8, 6, 3, 3, 1, 0), "a single output pixel"),
            (square(4, 3, 5, 2, 7, 1, 3), "cropped taps"),
        ];
        assert!(direct_conv::applies(&cases[0].0) == crate::isa::avx2() && batch_lanes_conv::applies(&cases[1].0) == crate::isa::avx2());
        assert!(SinglePixel::of(&cases[4].0).is_some() && LiveTaps::of(&cases[5].0).is_some());
        for (g, path) in cases {
            let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
            let w: Vec<f32> = (0..g.weight_len()).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
            let residual: Vec<f32> = (0..g.output_len()).map(|i| ((i * 29 % 89) as f32 - 44.0) / 20.0).collect();
            let scale: Vec<f32> = (0..g.out_channels).map(|k| 0.5 + k as f32 / 7.0).collect();
            let shift: Vec<f32> = (0..g.out_channels).map(|k| k as f32 / 3.0 - 1.0).collect();
            for (with_residual, relu) in [(false, true), (true, true), (true, false)] {
                let epilogue = Epilogue { scale: &scale, shift: &shift, residual: with_residual.then_some(&residual[..]), relu };
                let mut expected = forward(&g, &x, &w);
                epilogue.apply_images(&mut expected, 0, g.out_pixels());
                let got = forward_then(&g, &x, &w, Some(&epilogue));
                assert!(expected.contains(&0.0) == relu && expected.iter().any(|&v| v > 0.0), "{path}: a test that cuts and keeps");
                for (index, (a, b)) in got.iter().zip(&expected).enumerate() {
                    assert_eq!(a.to_bits(), b.to_bits(), "{path} [{index}], residual {with_residual}, relu {relu}: {a} vs {b}");
                }
            }
        }
    }
}
