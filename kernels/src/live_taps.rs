//! Kernel taps that read nothing but padding. On a small feature map, part of a kernel never meets
//! the image: a 3×3 convolution with padding 1 on a 1×1 map (resnet18's last stage at 28 px) reads
//! only its centre tap, the other eight multiply the zeros of the padding. The convolution is then
//! the same as one with the kernel cropped to the taps that can meet the image, and the padding cut
//! by as much: 9x less work forward and for both gradients, and the cropped-away part of the weight
//! gradient is exactly zero.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::buffer::filled;
use crate::geometry::ConvGeometry;

/// The rows `[top, bottom)` and columns `[left, right)` of the kernel that some output reads inside
/// the image, when that is less than the whole kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LiveTaps {
    rows: [usize; 2],
    columns: [usize; 2],
    /// The convolution with the cropped kernel and padding: the same outputs.
    pub(crate) cropped: ConvGeometry,
}

/// Kernel offsets `[first, end)` along one axis that an output reads inside the image: tap `r` reads
/// `p·stride + r − padding_begin` for the outputs `p < out`, which can be inside `0..size` only when
/// `padding_begin − (out − 1)·stride ≤ r < size + padding_begin`. With a stride above one the
/// range may keep a tap that still reads only padding; it never drops one that does not.
fn live_range(out: usize, size: usize, stride: usize, kernel: usize, padding_begin: usize) -> [usize; 2] {
    let first = padding_begin.saturating_sub((out - 1) * stride);
    let end = (size + padding_begin).min(kernel);
    [first, end]
}

impl LiveTaps {
    /// `None` when every tap can meet the image (nothing to crop), or when none can (the output is
    /// all zeros; the full convolution computes that).
    pub(crate) fn of(geometry: &ConvGeometry) -> Option<LiveTaps> {
        let g = geometry;
        let rows = live_range(g.out_height(), g.in_height, g.stride[0], g.kernel_height, g.padding_begin[0]);
        let columns = live_range(g.out_width(), g.in_width, g.stride[1], g.kernel_width, g.padding_begin[1]);
        let whole = rows == [0, g.kernel_height] && columns == [0, g.kernel_width];
        if whole || rows[0] >= rows[1] || columns[0] >= columns[1] {
            return None;
        }
        // Output size (size + begin + end − kernel) / stride + 1 is unchanged: the kernel loses
        // `first` taps before and `kernel − end` after, and the padding as many on each side (the
        // padding after covers them: an output exists, so size + begin + end ≥ kernel).
        let cropped = ConvGeometry {
            kernel_height: rows[1] - rows[0],
            kernel_width: columns[1] - columns[0],
            padding_begin: [g.padding_begin[0] - rows[0], g.padding_begin[1] - columns[0]],
            padding_end: [g.padding_end[0] - (g.kernel_height - rows[1]), g.padding_end[1] - (g.kernel_width - columns[1])],
            ..*g
        };
        Some(LiveTaps { rows, columns, cropped })
    }

    /// `[K, C, R, S]` → `[K, C, R', S']`: the live taps of every filter. Memory-bound (the live taps
    /// are spread over the whole weight), so filters are gathered in parallel, one tap across all
    /// channels at a time: a copy per kernel row would be a library call for every one or two
    /// values.
    pub(crate) fn crop(&self, full: &ConvGeometry, weight: &[f32]) -> Vec<f32> {
        let (height, width) = (self.cropped.kernel_height, self.cropped.kernel_width);
        let full_area = full.kernel_height * full.kernel_width;
        let fill = |cropped: &mut [MaybeUninit<f32>]| {
            let filters = cropped.par_chunks_mut(full.in_channels * height * width).zip(weight.par_chunks(full.in_channels * full_area));
            filters.for_each(|(cropped, filter)| {
                for live_tap in 0..height * width {
                    let (r, s) = (self.rows[0] + live_tap / width, self.columns[0] + live_tap % width);
                    let taps = filter[r * full.kernel_width + s..].iter().step_by(full_area);
                    for (live, &value) in cropped[live_tap..].iter_mut().step_by(height * width).zip(taps) {
                        live.write(value);
                    }
                }
            });
        };
        // SAFETY: each filter's chunk is written at every live tap of every channel (`live_tap`
        // covers height·width, the step covers the channels).
        unsafe { filled(full.out_channels * full.in_channels * height * width, fill) }
    }

    /// `[K, C, R', S']` → `[K, C, R, S]`, zero at the taps that only read padding (their gradient).
    pub(crate) fn expand(&self, full: &ConvGeometry, cropped: &[f32]) -> Vec<f32> {
        let (height, width) = (self.cropped.kernel_height, self.cropped.kernel_width);
        let full_area = full.kernel_height * full.kernel_width;
        let live = |r: usize, s: usize| {
            (self.rows[0]..self.rows[1]).contains(&r) && (self.columns[0]..self.columns[1]).contains(&s)
        };
        let fill = |expanded: &mut [MaybeUninit<f32>]| {
            let filters = expanded.par_chunks_mut(full.in_channels * full_area).zip(cropped.par_chunks(full.in_channels * height * width));
            filters.for_each(|(expanded, filter)| {
                for (kernel, live_taps) in expanded.chunks_exact_mut(full_area).zip(filter.chunks_exact(height * width)) {
                    for (tap, value) in kernel.iter_mut().enumerate() {
                        let (r, s) = (tap / full.kernel_width, tap % full.kernel_width);
                        value.write(if live(r, s) { live_taps[(r - self.rows[0]) * width + s - self.columns[0]] } else { 0.0 });
                    }
                }
            });
        };
        // SAFETY: each filter's chunk is written tap by tap, every tap of every channel.
        unsafe { filled(full.weight_len(), fill) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geometry(side: usize, kernel: usize, stride: usize, padding: usize) -> ConvGeometry {
        ConvGeometry {
            batch: 2,
            in_channels: 3,
            in_height: side,
            in_width: side,
            out_channels: 4,
            kernel_height: kernel,
            kernel_width: kernel,
            stride: [stride, stride],
            padding_begin: [padding, padding],
            padding_end: [padding, padding],
        }
    }

    #[test]
    fn a_3x3_kernel_on_a_1x1_map_keeps_its_centre() {
        let taps = LiveTaps::of(&geometry(1, 3, 1, 1)).expect("a crop");
        assert_eq!((taps.rows, taps.columns), ([1, 2], [1, 2]));
        assert_eq!((taps.cropped.kernel_height, taps.cropped.padding_begin, taps.cropped.padding_end), (1, [0, 0], [0, 0]));
        assert_eq!((taps.cropped.out_height(), taps.cropped.out_width()), (1, 1));
    }

    #[test]
    fn a_strided_3x3_kernel_from_2x2_to_1x1_keeps_its_lower_right_taps() {
        // resnet18's layer4.0.conv1 at 28 px: the one output reads rows and columns −1, 0, 1.
        let taps = LiveTaps::of(&geometry(2, 3, 2, 1)).expect("a crop");
        assert_eq!((taps.rows, taps.columns), ([1, 3], [1, 3]));
        assert_eq!(taps.cropped.out_height(), 1);
    }

    #[test]
    fn kernels_that_meet_the_image_everywhere_are_left_whole() {
        for (side, kernel, stride, padding) in [(2, 3, 1, 1), (8, 3, 1, 1), (7, 7, 2, 3), (5, 1, 2, 0), (4, 4, 1, 0)] {
            assert_eq!(LiveTaps::of(&geometry(side, kernel, stride, padding)), None, "side {side} kernel {kernel}");
        }
    }

    #[test]
    fn crop_then_expand_keeps_the_live_taps_and_zeroes_the_rest() {
        let full = geometry(1, 3, 1, 1);
        let taps = LiveTaps::of(&full).expect("a crop");
        let weight: Vec<f32> = (0..full.weight_len()).map(|i| i as f32 + 1.0).collect();
        let cropped = taps.crop(&full, &weight);
        assert_eq!(cropped, (0..12).map(|kernel| (kernel * 9 + 4) as f32 + 1.0).collect::<Vec<_>>());
        let expanded = taps.expand(&full, &cropped);
        for (i, (&got, &original)) in expanded.iter().zip(&weight).enumerate() {
            assert_eq!(got, if i % 9 == 4 { original } else { 0.0 });
        }
    }
}
