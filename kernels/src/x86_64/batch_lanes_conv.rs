//! The AVX-512 half of `batch_lanes_conv.rs` (its `imp` module): intrinsics and assembly, x86-64 only.

use std::mem::MaybeUninit;
use std::arch::x86_64::*;

use rayon::prelude::*;

use super::{CHANNELS, LANES, padded_size, tap_list};
use crate::buffer::filled;
use crate::geometry::ConvGeometry;
use crate::epilogue::Epilogue;
use crate::simd::first_lanes;

/// Output pixels a register block computes.
const PIXELS: usize = 3;

/// Input channels a parallel task copies into lanes.
const INTERLEAVE_CHANNELS: usize = 16;

/// Output channels a parallel task covers (with one group of 16 images).
const TASK_CHANNELS: usize = 32;

/// The output, written by tasks at disjoint places (each its images' and channels' values).
#[derive(Clone, Copy)]
struct Output(*mut f32);
// SAFETY: tasks write disjoint elements (see `forward`), and the buffer outlives them.
unsafe impl Send for Output {}
unsafe impl Sync for Output {}

pub(super) fn forward(g: &ConvGeometry, x: &[f32], weight: &[f32], epilogue: Option<&Epilogue>) -> Vec<f32> {
    let groups = g.batch.div_ceil(LANES);
    let (padded_height, padded_width) = padded_size(g);
    let plane = padded_height * padded_width * LANES;
    let group_len = g.in_channels * plane;
    // [group, C, H', W', lane], zero in the padding and in lanes past the batch.
    let mut padded = vec![0.0f32; groups * group_len];
    padded.par_chunks_mut(group_len).enumerate().for_each(|(group, group_planes)| {
        group_planes.par_chunks_mut(INTERLEAVE_CHANNELS * plane).enumerate().for_each(|(chunk, planes)| {
            // SAFETY: AVX-512F is present (`applies`); `interleave` checks its bounds.
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
            // SAFETY: AVX-512F is present (`applies`). Task (group, block) writes only the
            // outputs of images 16·group … and channels `channels`: no two tasks share one,
            // and every output belongs to one task, so `filled` sees all written.
            unsafe { channel_blocks(g, input, weight, output, group, channels, epilogue) };
        });
    };
    // SAFETY: every output belongs to exactly one (group, block) task, which writes it (see
    // inside).
    unsafe { filled(g.output_len(), fill) }
}

/// Channels `first_channel..` of the group's images (as many as `planes` holds) into `planes`
/// [c, H', W', 16], inside the padding's border. Each image's values of these channels are one
/// run in NCHW; 16 of them at a time, loaded from the 16 images as rows, are transposed into
/// 16 vectors of one value of 16 images, stored at their channel and pixel. Gathering each
/// pixel from 16 images instead touched 16 cache lines a gather, and transposing a plane at a
/// time leaves most of the lanes empty on 2×2 and 1×1 maps.
#[target_feature(enable = "avx512f")]
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
        let mut rows = [_mm512_setzero_ps(); LANES];
        for (image, row) in rows.iter_mut().enumerate().take(images) {
            // SAFETY: lanes below `count` read values start.. of these channels of the image,
            // inside x (asserted above); masked-off lanes are not read.
            *row = unsafe { _mm512_maskz_loadu_ps(first_lanes(count), x.as_ptr().add(first + image * image_len + start)) };
        }
        crate::simd::transpose16(&mut rows);
        for (j, value) in rows.iter().enumerate().take(count) {
            let (c, pixel) = ((start + j) / pixels, (start + j) % pixels);
            let (h, w) = (pixel / g.in_width, pixel % g.in_width);
            let at = c * plane + ((h + g.padding_begin[0]) * padded_width + w + g.padding_begin[1]) * LANES;
            // SAFETY: channel c < the planes given, pixel (h, w) plus the padding inside its plane.
            unsafe { _mm512_storeu_ps(planes.as_mut_ptr().add(at), *value) };
        }
    }
}

/// Every output pixel of one group's images for the output channels `channels`, 8 at a time,
/// each value through `epilogue` (an `Epilogue::fits` the output) as it is stored.
#[target_feature(enable = "avx512f")]
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
    // The sums in lanes, [channel − channels.start, pixel, 16]: every value is written by one
    // block below before the transposition reads it (raw pointers only: nothing is read before
    // it is written).
    let mut sums: Vec<f32> = Vec::with_capacity(channels.len() * out_pixels * LANES);
    let local = sums.as_mut_ptr();
    for first_channel in channels.clone().step_by(CHANNELS) {
        // Blocks of up to 3 pixels within one output row: they share the kernel rows that meet
        // the image, and the union of their kernel columns is narrow; taps outside read only
        // padding for every pixel of the block and are skipped (on a 2×2 map, 5 of 9).
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
    // The task's channels of each image are one run in NCHW, [channel, pixel], the order of
    // the sums in lanes: 16 values at a time, transposed into 16 runs, one per image.
    let image_len = g.out_channels * out_pixels;
    let values = channels.len() * out_pixels;
    // The epilogue's coefficients for each value of the run, whose lanes cross channels.
    let coefficients = epilogue.map(|epilogue| (epilogue, epilogue.per_value(channels.clone(), out_pixels)));
    for start in (0..values).step_by(LANES) {
        let count = LANES.min(values - start);
        let mut rows = [_mm512_setzero_ps(); LANES];
        for (j, row) in rows.iter_mut().enumerate().take(count) {
            // SAFETY: value start + j < the task's channels × P·Q, and its block wrote it.
            *row = unsafe { _mm512_loadu_ps(local.add((start + j) * LANES)) };
        }
        crate::simd::transpose16(&mut rows);
        for (image, run) in rows.iter().enumerate().take(images) {
            // SAFETY: image 16·group + image < batch; channels.start·P·Q + start + count ≤
            // channels.end·P·Q: inside the image; this task alone writes these channels.
            // The epilogue reads its per-value coefficients at start … start + count − 1 < values,
            // and the residual (of the output's length) where this store writes.
            unsafe {
                let at = (group * LANES + image) * image_len + channels.start * out_pixels + start;
                let mask = first_lanes(count);
                let value = match &coefficients {
                    Some((epilogue, (scale, shift))) => {
                        let (scale, shift) = (_mm512_maskz_loadu_ps(mask, scale.as_ptr().add(start)), _mm512_maskz_loadu_ps(mask, shift.as_ptr().add(start)));
                        epilogue.lanes(*run, scale, shift, at, mask)
                    }
                    None => *run,
                };
                _mm512_mask_storeu_ps(output.0.add(at), mask, value);
            }
        }
    }
}

/// `P` output pixels from `first_pixel` (in one output row) and 8 output channels from
/// `first_channel`, for one group of 16 images: the sums over every input channel and
/// every live tap, in that order (channel outer, tap inner), stored in lanes in `sums_in_lanes`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "avx512f")]
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
    // The block's first window starts at padded (p, q), pixel i's at (p, q + i) (stride 1):
    // 16·i floats further. The last tap of the last window is at (p + R − 1, q + P − 1 + S − 1)
    // < (H', W') because the output size is H' − R + 1: every load stays inside its plane.
    assert!(g.stride == [1, 1] && P <= 3, "the block kernel is written for stride 1 and at most 3 pixels");
    assert!(first_channel + CHANNELS <= g.out_channels && q + P <= out_width && first_pixel < out_pixels);
    let window = (p * padded_width + q) * LANES;
    let last_tap = ((g.kernel_height - 1) * padded_width + g.kernel_width - 1 + P - 1) * LANES;
    assert!(window + last_tap + LANES <= plane, "a window reaches past its plane");
    let (list, count) = tap_list(g, p, q, P, LANES);
    let mut sums = [[_mm512_setzero_ps(); CHANNELS]; P];
    if count > 0 && g.in_channels > 0 {
        let params: [u64; 4] = [(plane * 4) as u64, (g.kernel_height * g.kernel_width * 4) as u64, (count * 16) as u64, sums.as_mut_ptr() as u64];
        // SAFETY: the loads read `input` at channel c < C, window + a live tap + 16·i floats,
        // inside the plane (asserted above); the broadcasts read filter first_channel + k < K
        // (k < 8) at tap (c, r, s) < C·R·S; the stores write `sums` (P · 8 vectors).
        unsafe {
            block_sums::<P>(input.as_ptr().add(window), weight.as_ptr().add(first_channel * taps), list.as_ptr(), g.in_channels, &params, taps * 4)
        };
    }
    // SAFETY: channel local_channel + k and pixel first_pixel + i lie inside the caller's
    // buffer of the task's channels × P·Q pixels × 16 lanes.
    unsafe {
        for (i, pixel_sums) in sums.iter().enumerate() {
            for (k, sum) in pixel_sums.iter().enumerate() {
                _mm512_storeu_ps(sums_in_lanes.add(((local_channel + k) * out_pixels + first_pixel + i) * LANES), *sum);
            }
        }
    }
}

/// The block's inner loops, in assembly because LLVM's register allocation of them (24 sums,
/// 3 inputs, 8 weights: more than 32 registers if all held at once) moved sums between
/// registers on every step: 82 instructions per 24 multiply-adds (objdump), and 107–139
/// GFLOP/s on 2 cores where oneDNN's direct kernels reach 205–275 on the same shapes
/// (benches/ops/torch_conv.py). Here each step is the 3 input loads, 8 weight broadcasts into
/// two alternating registers and the 24 multiply-adds, the sums in zmm0–23 throughout.
///
/// `x`: the block's first window at input channel 0; `filters`: filter `first_channel` at
/// tap 0; `list`: `count` live taps as (input, weight) byte offsets; `params`: the plane's
/// bytes (next input channel), a channel's kernel bytes (next weight), the list's bytes, and
/// the address of `[[__m512; 8]; P]` that receives the sums; `filter_bytes`: one filter's
/// bytes (C·R·S·4), the distance between the 8 filters.
#[target_feature(enable = "avx512f")]
unsafe fn block_sums<const P: usize>(x: *const f32, filters: *const f32, list: *const [u64; 2], channels: usize, params: &[u64; 4], filter_bytes: usize) {
    let (t, t3) = (filter_bytes, 3 * filter_bytes);
    let params = params.as_ptr();
    // SAFETY: the caller's (see `block`).
    unsafe {
        match P {
            1 => lanes_asm!(x, filters, list, channels, params, t, t3;
                zero!(0 1 2 3 4 5 6 7), load!(24 / 0),
                [0 * 24], [1 * 24], [2 * 24], [3 * 24], [4 * 24], [5 * 24], [6 * 24], [7 * 24];
                store!(0 1 2 3 4 5 6 7)),
            2 => lanes_asm!(x, filters, list, channels, params, t, t3;
                zero!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15), load!(24 / 0, 25 / 64),
                [0 * 24, 8 * 25], [1 * 24, 9 * 25], [2 * 24, 10 * 25], [3 * 24, 11 * 25],
                [4 * 24, 12 * 25], [5 * 24, 13 * 25], [6 * 24, 14 * 25], [7 * 24, 15 * 25];
                store!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15)),
            _ => lanes_asm!(x, filters, list, channels, params, t, t3;
                zero!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23), load!(24 / 0, 25 / 64, 26 / 128),
                [0 * 24, 8 * 25, 16 * 26], [1 * 24, 9 * 25, 17 * 26], [2 * 24, 10 * 25, 18 * 26], [3 * 24, 11 * 25, 19 * 26],
                [4 * 24, 12 * 25, 20 * 26], [5 * 24, 13 * 25, 21 * 26], [6 * 24, 14 * 25, 22 * 26], [7 * 24, 15 * 25, 23 * 26];
                store!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23)),
        }
    }
}

/// Zeroes the sums `zmm…`.
macro_rules! zero {
    ($($r:literal)*) => { concat!($("vpxord zmm", $r, ", zmm", $r, ", zmm", $r, "\n",)*) };
}

/// Stores the sums `zmm…` to consecutive vectors from `{a}`.
macro_rules! store {
    ($($r:literal)*) => { concat!($("vmovups zmmword ptr [{a} + 64*", $r, "], zmm", $r, "\n",)*) };
}

/// Loads the step's input vectors: register / byte offset from the tap's window.
macro_rules! load {
    ($($r:literal / $offset:literal),*) => { concat!($("vmovups zmm", $r, ", zmmword ptr [{x} + {a} + ", $offset, "]\n",)*) };
}

/// One output channel of a step: its weight broadcast into `zmm$b`, then `sum += input · weight`
/// for each pixel, as `sum * input` register pairs.
macro_rules! channel {
    ($b:literal, $address:literal, [$($sum:literal * $x:literal),*]) => {
        concat!("vbroadcastss zmm", $b, ", dword ptr ", $address, "\n", $("vfmadd231ps zmm", $sum, ", zmm", $x, ", zmm", $b, "\n",)*)
    };
}

/// The loop over input channels (outer) and the live taps (inner); filter k's weight is at
/// `{w} + k·{t}`, written from `{w}` and `{w4}` = `{w} + 4·{t}` with the scales x86 allows.
macro_rules! lanes_asm {
    ($x:ident, $filters:ident, $list:ident, $channels:ident, $params:ident, $t:ident, $t3:ident;
     $zero:expr, $load:expr, $c0:tt, $c1:tt, $c2:tt, $c3:tt, $c4:tt, $c5:tt, $c6:tt, $c7:tt; $store:expr) => {
        std::arch::asm!(
            $zero,
            "2:",
            "xor {i:e}, {i:e}",
            "3:",
            "mov {a}, qword ptr [{list} + {i}]",
            "mov {w}, qword ptr [{list} + {i} + 8]",
            $load,
            "add {w}, {filters}",
            "lea {w4}, [{w} + {t}*4]",
            channel!(27, "[{w}]", $c0),
            channel!(28, "[{w} + {t}]", $c1),
            channel!(27, "[{w} + {t}*2]", $c2),
            channel!(28, "[{w} + {t3}]", $c3),
            channel!(27, "[{w4}]", $c4),
            channel!(28, "[{w4} + {t}]", $c5),
            channel!(27, "[{w4} + {t}*2]", $c6),
            channel!(28, "[{w4} + {t3}]", $c7),
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
            w4 = out(reg) _,
            i = out(reg) _,
            out("zmm0") _, out("zmm1") _, out("zmm2") _, out("zmm3") _, out("zmm4") _, out("zmm5") _, out("zmm6") _, out("zmm7") _,
            out("zmm8") _, out("zmm9") _, out("zmm10") _, out("zmm11") _, out("zmm12") _, out("zmm13") _, out("zmm14") _, out("zmm15") _,
            out("zmm16") _, out("zmm17") _, out("zmm18") _, out("zmm19") _, out("zmm20") _, out("zmm21") _, out("zmm22") _, out("zmm23") _,
            out("zmm24") _, out("zmm25") _, out("zmm26") _, out("zmm27") _, out("zmm28") _,
            options(nostack),
        )
    };
}
use {channel, lanes_asm, load, store, zero};
