//! The AVX2 + FMA half of `batch_lanes_conv.rs` (its `avx2` module), for CPUs without AVX-512 and
//! under `TLRUN_KERNELS_ISA=avx2`: the AVX-512 kernel's scheme with 8 images a vector. A step
//! loads one tap of 3 output pixels (3 vectors), broadcasts 4 filters' weights and makes 12
//! multiply-adds: 12 sums, 3 inputs and a broadcast fill the 16 registers, so a block's 8 output
//! channels go in two passes of 4. Each output lane is the same chain of fused multiply-adds in the
//! same order (input channel outer, live tap inner) as in the AVX-512 kernel, and the epilogue does
//! the same operations, so it gives that kernel's bits.

use std::arch::x86_64::*;
use std::mem::MaybeUninit;

use rayon::prelude::*;

use super::{CHANNELS, padded_size, tap_list};
use crate::buffer::filled;
use crate::epilogue::Epilogue;
use crate::geometry::ConvGeometry;

/// Images a vector holds.
pub(super) const LANES: usize = 8;

/// Output pixels a register block computes.
const PIXELS: usize = 3;

/// Output channels one pass of the assembly loop sums.
const PASS_CHANNELS: usize = 4;

/// Input channels a parallel task copies into lanes.
const INTERLEAVE_CHANNELS: usize = 16;

/// Output channels a parallel task covers (with one group of 8 images).
const TASK_CHANNELS: usize = 32;

/// The output, written by tasks at disjoint places (each its images' and channels' values).
#[derive(Clone, Copy)]
struct Output(*mut f32);
// SAFETY: tasks write disjoint elements (see `forward`), and the buffer outlives them.
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

/// The integer mask of lanes `0..count` (a masked load reads, and a masked store writes, only the
/// lanes whose top bit is set).
#[target_feature(enable = "avx2,fma")]
fn first_lanes8(count: usize) -> __m256i {
    _mm256_cmpgt_epi32(_mm256_set1_epi32(count.min(LANES) as i32), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
}

pub(super) fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: Option<&Epilogue>) -> Vec<f32> {
    assert!(crate::isa::avx2(), "the AVX2 batch-lanes convolution on a CPU without AVX2 and FMA");
    let groups = g.batch.div_ceil(LANES);
    let (padded_height, padded_width) = padded_size(g);
    let plane = padded_height * padded_width * LANES;
    let group_len = g.in_channels * plane;
    // [group, C, H', W', lane], zero in the padding and in lanes past the batch.
    let mut padded = vec![0.0f32; groups * group_len];
    padded.par_chunks_mut(group_len).enumerate().for_each(|(group, group_planes)| {
        group_planes.par_chunks_mut(INTERLEAVE_CHANNELS * plane).enumerate().for_each(|(chunk, planes)| {
            // SAFETY: AVX2 and FMA are present (asserted above); `interleave` checks its bounds.
            unsafe { interleave(g, x, group, chunk * INTERLEAVE_CHANNELS, planes) };
        });
    });
    let task_blocks = g.out_channels.div_ceil(TASK_CHANNELS);
    let fill = |y: &mut [MaybeUninit<f32>]| {
        let output = Output(y.as_mut_ptr().cast::<f32>());
        (0..groups * task_blocks).into_par_iter().for_each(|task| {
            let (group, block) = (task / task_blocks, task % task_blocks);
            let channels = block * TASK_CHANNELS..((block + 1) * TASK_CHANNELS).min(g.out_channels);
            let input = &padded[group * group_len..][..group_len];
            // SAFETY: AVX2 and FMA are present. Task (group, block) writes only the outputs of
            // images 8·group … and channels `channels`: no two tasks share one, and every output
            // belongs to one task, so `filled` sees all written.
            unsafe { channel_blocks(g, input, weight, output, group, channels, epilogue) };
        });
    };
    // SAFETY: every output belongs to exactly one (group, block) task, which writes it.
    unsafe { filled(g.output_len(), fill) }
}

/// As the AVX-512 kernel's `interleave`, 8 images and 8×8 transposes: channels `first_channel..`
/// of the group's images into `planes` [c, H', W', 8], inside the padding's border.
#[target_feature(enable = "avx2,fma")]
unsafe fn interleave(g: &ConvGeometry, x: &[f32], group: usize, first_channel: usize, planes: &mut [f32]) {
    let (padded_height, padded_width) = padded_size(g);
    let plane = padded_height * padded_width * LANES;
    let pixels = g.in_height * g.in_width;
    let image_len = g.in_channels * pixels;
    let images = LANES.min(g.batch - group * LANES);
    let values = planes.len() / plane * pixels;
    assert!(planes.len().is_multiple_of(plane) && first_channel * pixels + values <= image_len);
    assert!(x.len() >= (group * LANES + images) * image_len);
    let first = (group * LANES * g.in_channels + first_channel) * pixels;
    for start in (0..values).step_by(LANES) {
        let count = LANES.min(values - start);
        let mask = first_lanes8(count);
        let mut rows = [_mm256_setzero_ps(); LANES];
        for (image, row) in rows.iter_mut().enumerate().take(images) {
            // SAFETY: lanes below `count` read values start.. of these channels of the image,
            // inside x (asserted above); masked-off lanes are not read.
            *row = unsafe { _mm256_maskload_ps(x.as_ptr().add(first + image * image_len + start), mask) };
        }
        crate::simd::transpose8(&mut rows);
        for (j, value) in rows.iter().enumerate().take(count) {
            let (c, pixel) = ((start + j) / pixels, (start + j) % pixels);
            let (h, w) = (pixel / g.in_width, pixel % g.in_width);
            let at = c * plane + ((h + g.padding_begin[0]) * padded_width + w + g.padding_begin[1]) * LANES;
            // SAFETY: channel c < the planes given, pixel (h, w) plus the padding inside its plane.
            unsafe { _mm256_storeu_ps(planes.as_mut_ptr().add(at), *value) };
        }
    }
}

/// As the AVX-512 kernel's `channel_blocks`: every output pixel of one group's images for the
/// output channels `channels`, 8 at a time, each value through `epilogue` as it is stored.
#[target_feature(enable = "avx2,fma")]
unsafe fn channel_blocks(
    g: &ConvGeometry,
    input: &[f32],
    weight: &[f32],
    output: Output,
    group: usize,
    channels: std::ops::Range<usize>,
    epilogue: Option<&Epilogue>,
) {
    let (padded_height, padded_width) = padded_size(g);
    assert_eq!(input.len(), g.in_channels * padded_height * padded_width * LANES);
    assert_eq!(weight.len(), g.weight_len());
    assert!(channels.end <= g.out_channels && channels.len().is_multiple_of(CHANNELS));
    let (out_height, out_width) = (g.out_height(), g.out_width());
    let out_pixels = out_height * out_width;
    let images = LANES.min(g.batch - group * LANES);
    // The sums in lanes, [channel − channels.start, pixel, 8]: every value is written by one
    // block below before the transposition reads it (raw pointers only).
    let mut sums: Vec<f32> = Vec::with_capacity(channels.len() * out_pixels * LANES);
    let local = sums.as_mut_ptr();
    for first_channel in channels.clone().step_by(PASS_CHANNELS) {
        for p in 0..out_height {
            for first_column in (0..out_width).step_by(PIXELS) {
                let first_pixel = p * out_width + first_column;
                // SAFETY: the assertions above and in `block` bound every access.
                unsafe {
                    match (out_width - first_column).min(PIXELS) {
                        3 => block::<3>(g, input, weight, local, first_channel - channels.start, first_channel, first_pixel),
                        2 => block::<2>(g, input, weight, local, first_channel - channels.start, first_channel, first_pixel),
                        _ => block::<1>(g, input, weight, local, first_channel - channels.start, first_channel, first_pixel),
                    }
                }
            }
        }
    }
    // The task's channels of each image are one run in NCHW, [channel, pixel], the order of the
    // sums in lanes: 8 values at a time, transposed into 8 runs, one per image.
    let image_len = g.out_channels * out_pixels;
    let values = channels.len() * out_pixels;
    let coefficients = epilogue.map(|epilogue| (epilogue, epilogue.per_value(channels.clone(), out_pixels)));
    for start in (0..values).step_by(LANES) {
        let count = LANES.min(values - start);
        let mut rows = [_mm256_setzero_ps(); LANES];
        for (j, row) in rows.iter_mut().enumerate().take(count) {
            // SAFETY: value start + j < the task's channels × P·Q, and its block wrote it.
            *row = unsafe { _mm256_loadu_ps(local.add((start + j) * LANES)) };
        }
        crate::simd::transpose8(&mut rows);
        let mask = first_lanes8(count);
        for (image, run) in rows.iter().enumerate().take(images) {
            // SAFETY: image 8·group + image < batch; channels.start·P·Q + start + count ≤
            // channels.end·P·Q: inside the image; this task alone writes these channels. The
            // epilogue reads its coefficients at start … start + count − 1 < values, and the
            // residual (of the output's length) where this store writes.
            unsafe {
                let at = (group * LANES + image) * image_len + channels.start * out_pixels + start;
                let value = match &coefficients {
                    Some((epilogue, (scale, shift))) => {
                        let (scale, shift) = (_mm256_maskload_ps(scale.as_ptr().add(start), mask), _mm256_maskload_ps(shift.as_ptr().add(start), mask));
                        epilogue.lanes8(*run, scale, shift, at, mask)
                    }
                    None => *run,
                };
                _mm256_maskstore_ps(output.0.add(at), mask, value);
            }
        }
    }
}

/// `P` output pixels from `first_pixel` (in one output row) and 4 output channels from
/// `first_channel`, for one group of 8 images: the sums over every input channel and every live
/// tap, in that order, stored in lanes in `sums_in_lanes`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx2,fma")]
unsafe fn block<const P: usize>(
    g: &ConvGeometry,
    input: &[f32],
    weight: &[f32],
    sums_in_lanes: *mut f32,
    local_channel: usize,
    first_channel: usize,
    first_pixel: usize,
) {
    let (padded_height, padded_width) = padded_size(g);
    let plane = padded_height * padded_width * LANES;
    let taps = g.in_channels * g.kernel_height * g.kernel_width;
    let out_width = g.out_width();
    let out_pixels = g.out_height() * out_width;
    let (p, q) = (first_pixel / out_width, first_pixel % out_width);
    // As in the AVX-512 kernel: pixel i's window is 8·i floats after the block's first, and the
    // last tap of the last window lies inside the plane because the output is H' − R + 1 tall.
    assert!(g.stride == [1, 1] && P <= 3, "the block kernel is written for stride 1 and at most 3 pixels");
    assert!(first_channel + PASS_CHANNELS <= g.out_channels && q + P <= out_width && first_pixel < out_pixels);
    let window = (p * padded_width + q) * LANES;
    let last_tap = ((g.kernel_height - 1) * padded_width + g.kernel_width - 1 + P - 1) * LANES;
    assert!(window + last_tap + LANES <= plane, "a window reaches past its plane");
    let (list, count) = tap_list(g, p, q, P, LANES);
    let mut sums = [[_mm256_setzero_ps(); PASS_CHANNELS]; P];
    if count > 0 && g.in_channels > 0 {
        let params: [u64; 4] = [(plane * 4) as u64, (g.kernel_height * g.kernel_width * 4) as u64, (count * 16) as u64, sums.as_mut_ptr() as u64];
        // SAFETY: the loads read `input` at channel c < C, window + a live tap + 8·i floats,
        // inside the plane (asserted above); the broadcasts read filter first_channel + k < K
        // (k < 4) at tap (c, r, s) < C·R·S; the stores write `sums` (P · 4 vectors).
        unsafe {
            block_sums::<P>(input.as_ptr().add(window), weight.as_ptr().add(first_channel * taps), list.as_ptr(), g.in_channels, &params, taps * 4)
        };
    }
    // SAFETY: channel local_channel + k and pixel first_pixel + i lie inside the caller's buffer
    // of the task's channels × P·Q pixels × 8 lanes.
    unsafe {
        for (i, pixel_sums) in sums.iter().enumerate() {
            for (k, sum) in pixel_sums.iter().enumerate() {
                _mm256_storeu_ps(sums_in_lanes.add(((local_channel + k) * out_pixels + first_pixel + i) * LANES), *sum);
            }
        }
    }
}

/// The block's inner loops in assembly, as the AVX-512 kernel's (see there why): each step is the
/// P input loads, 4 weight broadcasts into ymm15 and the 4·P multiply-adds, the sums in ymm0–11.
/// The arguments are the AVX-512 kernel's, `params[3]` receiving `[[__m256; 4]; P]`.
#[target_feature(enable = "avx2,fma")]
unsafe fn block_sums<const P: usize>(x: *const f32, filters: *const f32, list: *const [u64; 2], channels: usize, params: &[u64; 4], filter_bytes: usize) {
    let (t, t3) = (filter_bytes, 3 * filter_bytes);
    let params = params.as_ptr();
    // SAFETY: the caller's (see `block`).
    unsafe {
        match P {
            1 => lanes_asm8!(x, filters, list, channels, params, t, t3;
                zero8!(0 1 2 3), load8!(12 / 0),
                [0 * 12], [1 * 12], [2 * 12], [3 * 12];
                store8!(0 1 2 3)),
            2 => lanes_asm8!(x, filters, list, channels, params, t, t3;
                zero8!(0 1 2 3 4 5 6 7), load8!(12 / 0, 13 / 32),
                [0 * 12, 4 * 13], [1 * 12, 5 * 13], [2 * 12, 6 * 13], [3 * 12, 7 * 13];
                store8!(0 1 2 3 4 5 6 7)),
            _ => lanes_asm8!(x, filters, list, channels, params, t, t3;
                zero8!(0 1 2 3 4 5 6 7 8 9 10 11), load8!(12 / 0, 13 / 32, 14 / 64),
                [0 * 12, 4 * 13, 8 * 14], [1 * 12, 5 * 13, 9 * 14], [2 * 12, 6 * 13, 10 * 14], [3 * 12, 7 * 13, 11 * 14];
                store8!(0 1 2 3 4 5 6 7 8 9 10 11)),
        }
    }
}

/// Zeroes the sums `ymm…`.
macro_rules! zero8 {
    ($($r:literal)*) => { concat!($("vxorps ymm", $r, ", ymm", $r, ", ymm", $r, "\n",)*) };
}

/// Stores the sums `ymm…` to consecutive vectors from `{a}`.
macro_rules! store8 {
    ($($r:literal)*) => { concat!($("vmovups ymmword ptr [{a} + 32*", $r, "], ymm", $r, "\n",)*) };
}

/// Loads the step's input vectors: register / byte offset from the tap's window.
macro_rules! load8 {
    ($($r:literal / $offset:literal),*) => { concat!($("vmovups ymm", $r, ", ymmword ptr [{x} + {a} + ", $offset, "]\n",)*) };
}

/// One output channel of a step: its weight broadcast into ymm15, then `sum += input · weight` for
/// each pixel, as `sum * input` register pairs.
macro_rules! channel8 {
    ($address:literal, [$($sum:literal * $x:literal),*]) => {
        concat!("vbroadcastss ymm15, dword ptr ", $address, "\n", $("vfmadd231ps ymm", $sum, ", ymm", $x, ", ymm15\n",)*)
    };
}

/// The loop over input channels (outer) and the live taps (inner); filter k's weight is at
/// `{w} + k·{t}`.
macro_rules! lanes_asm8 {
    ($x:ident, $filters:ident, $list:ident, $channels:ident, $params:ident, $t:ident, $t3:ident;
     $zero:expr, $load:expr, $c0:tt, $c1:tt, $c2:tt, $c3:tt; $store:expr) => {
        std::arch::asm!(
            $zero,
            "2:",
            "xor {i:e}, {i:e}",
            "3:",
            "mov {a}, qword ptr [{list} + {i}]",
            "mov {w}, qword ptr [{list} + {i} + 8]",
            $load,
            "add {w}, {filters}",
            channel8!("[{w}]", $c0),
            channel8!("[{w} + {t}]", $c1),
            channel8!("[{w} + {t}*2]", $c2),
            channel8!("[{w} + {t3}]", $c3),
            "add {i}, 16",
            "cmp {i}, qword ptr [{params} + 16]",
            "jne 3b",
            "add {x}, qword ptr [{params}]",
            "add {filters}, qword ptr [{params} + 8]",
            "dec {channels}",
            "jnz 2b",
            "mov {a}, qword ptr [{params} + 24]",
            $store,
            x = inout(reg) $x => _,
            filters = inout(reg) $filters => _,
            list = in(reg) $list,
            channels = inout(reg) $channels => _,
            params = in(reg) $params,
            t = in(reg) $t,
            t3 = in(reg) $t3,
            a = out(reg) _,
            w = out(reg) _,
            i = out(reg) _,
            out("ymm0") _, out("ymm1") _, out("ymm2") _, out("ymm3") _, out("ymm4") _, out("ymm5") _, out("ymm6") _, out("ymm7") _,
            out("ymm8") _, out("ymm9") _, out("ymm10") _, out("ymm11") _, out("ymm12") _, out("ymm13") _, out("ymm14") _, out("ymm15") _,
            options(nostack),
        )
    };
}
use {channel8, lanes_asm8, load8, store8, zero8};
