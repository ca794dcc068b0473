//! Convolutions whose output map is one pixel: resnet18's last stage at 28 px (3×3 kernels with
//! padding 1 on 1×1 maps, and the stride-2 convolution from 2×2 to 1×1). Each kernel tap that meets
//! the image then reads one input pixel of every image, so the convolution is a sum over those taps
//! of matrix products on strided views of x, w and y as they lie: no patch matrix, no cropped copy
//! of the weights, no reordering of the output. Through im2col, cropping the 3×3 kernels of a
//! 512-channel layer to their centre tap copied one value per library call, 2.4 million a layer,
//! and took 8% of resnet18's inference time at 28 px (`perf`, 2026-11-30).

use crate::buffer::transpose;
use crate::geometry::ConvGeometry;
use crate::matmul::{Destination, Matrix, gemm_threads, matmul};
use crate::live_taps::LiveTaps;

/// How a one-pixel output is computed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SinglePixel {
    /// A gemm per tap that meets the image, on strided views: (tap `r·S + s` in the kernel, the
    /// input pixel `ih·W + iw` it reads). Chosen for one tap (a 3×3 kernel on a 1×1 map), which it
    /// reads in place, and for taps that cover part of the input only.
    Taps(Vec<(usize, usize)>),
    /// The live taps cover the whole input (after cropping, when `crop` is some): each image is
    /// its own patch, and the convolution is one gemm of the weights and x as it lies. Each tap as
    /// a gemm of its own would read the whole weight once per tap (strided: every cache line).
    WholeImage { crop: Option<LiveTaps> },
}

impl SinglePixel {
    /// `None` unless the output map is 1×1 and some tap meets the image.
    pub(crate) fn of(geometry: &ConvGeometry) -> Option<SinglePixel> {
        let g = geometry;
        if g.out_height() != 1 || g.out_width() != 1 {
            return None;
        }
        let inside = |tap: usize, padding: usize, size: usize| (padding..padding + size).contains(&tap).then(|| tap - padding);
        let taps: Vec<(usize, usize)> = (0..g.kernel_height)
            .filter_map(|r| inside(r, g.padding_begin[0], g.in_height).map(|ih| (r, ih)))
            .flat_map(|(r, ih)| {
                (0..g.kernel_width)
                    .filter_map(move |s| inside(s, g.padding_begin[1], g.in_width).map(|iw| (r * g.kernel_width + s, ih * g.in_width + iw)))
            })
            .collect();
        if taps.is_empty() {
            return None;
        }
        let whole_image = |live: &ConvGeometry| {
            live.kernel_height == live.in_height && live.kernel_width == live.in_width && live.padding_begin == [0, 0]
        };
        if taps.len() > 1 {
            match LiveTaps::of(g) {
                None if whole_image(g) => return Some(SinglePixel::WholeImage { crop: None }),
                Some(crop) if whole_image(&crop.cropped) => return Some(SinglePixel::WholeImage { crop: Some(crop) }),
                _ => {}
            }
        }
        Some(SinglePixel::Taps(taps))
    }

    /// `y[n, k] = Σ_taps Σ_c w[k, c, tap] · x[n, c, pixel(tap)]`.
    pub(crate) fn forward(&self, geometry: &ConvGeometry, x: &[f32], weight: &[f32]) -> Vec<f32> {
        let g = geometry;
        let mut y = vec![0.0f32; g.output_len()];
        match self {
            SinglePixel::Taps(taps) => {
                for &(tap, pixel) in taps {
                    matmul(
                        Destination::Accumulate(&mut y),
                        output_view(g),
                        &weight[tap..],
                        weight_view(g),
                        &x[pixel..],
                        input_view(g),
                        [g.out_channels, g.batch, g.in_channels],
                        gemm_threads(false, g.out_channels, g.batch, g.in_channels),
                    );
                }
            }
            SinglePixel::WholeImage { crop } => {
                let (_, weight) = live_weight(g, crop, weight);
                let patch = g.input_len() / g.batch;
                // yᵀ (K×N) = w (K × CRS) · xᵀ with every operand row-major: gemm packs the large
                // weight as it lies and only the small x and y are transposed (measured: reading
                // w along its columns instead took 1.4–2.0 ms against 1.2–1.4 for resnet18's
                // layer4.0.conv1 at 28 px).
                let patches = transpose(x, g.batch, patch);
                let mut transposed_y = vec![0.0f32; g.output_len()];
                matmul(
                    Destination::Overwrite(&mut transposed_y),
                    Matrix::rows(g.batch),
                    &weight,
                    Matrix::rows(patch),
                    &patches,
                    Matrix::rows(g.batch),
                    [g.out_channels, g.batch, patch],
                    gemm_threads(false, g.out_channels, g.batch, patch),
                );
                y = transpose(&transposed_y, g.out_channels, g.batch);
            }
        }
        y
    }

    /// `dx[n, c, pixel(tap)] = Σ_k w[k, c, tap] · dy[n, k]` (zero where no tap reads) and
    /// `dw[k, c, tap] = Σ_n dy[n, k] · x[n, c, pixel(tap)]` (zero at dead taps).
    pub(crate) fn backward(
        &self,
        geometry: &ConvGeometry,
        x: &[f32],
        weight: &[f32],
        dy: &[f32],
        input_grad: bool,
        weight_grad: bool,
    ) -> (Option<Vec<f32>>, Option<Vec<f32>>) {
        let g = geometry;
        match self {
            SinglePixel::Taps(taps) => {
                // Each tap reads its own pixel: the input gradient's gemms write disjoint values.
                let dx = input_grad.then(|| {
                    let mut dx = vec![0.0f32; g.input_len()];
                    for &(tap, pixel) in taps {
                        matmul(
                            Destination::Overwrite(&mut dx[pixel..]),
                            input_view(g),
                            &weight[tap..],
                            weight_view(g).transpose(),
                            dy,
                            output_view(g),
                            [g.in_channels, g.batch, g.out_channels],
                            gemm_threads(false, g.in_channels, g.batch, g.out_channels),
                        );
                    }
                    dx
                });
                let dw = weight_grad.then(|| {
                    let mut dw = vec![0.0f32; g.weight_len()];
                    for &(tap, pixel) in taps {
                        matmul(
                            Destination::Overwrite(&mut dw[tap..]),
                            weight_view(g),
                            dy,
                            output_view(g),
                            &x[pixel..],
                            input_view(g).transpose(),
                            [g.out_channels, g.in_channels, g.batch],
                            gemm_threads(false, g.out_channels, g.in_channels, g.batch),
                        );
                    }
                    dw
                });
                (dx, dw)
            }
            SinglePixel::WholeImage { crop } => {
                let patch = g.input_len() / g.batch;
                let dx = input_grad.then(|| {
                    let (_, weight) = live_weight(g, crop, weight);
                    // dxᵀ (CRS × N) = wᵀ · dy.
                    let mut dx = vec![0.0f32; g.input_len()];
                    matmul(
                        Destination::Overwrite(&mut dx),
                        Matrix::rows(patch).transpose(),
                        &weight,
                        Matrix::rows(patch).transpose(),
                        dy,
                        output_view(g),
                        [patch, g.batch, g.out_channels],
                        gemm_threads(false, patch, g.batch, g.out_channels),
                    );
                    dx
                });
                let dw = weight_grad.then(|| {
                    // dw (K × CRS) = dy · x.
                    let mut live_dw = vec![0.0f32; g.out_channels * patch];
                    matmul(
                        Destination::Overwrite(&mut live_dw),
                        Matrix::rows(patch),
                        dy,
                        output_view(g),
                        x,
                        Matrix::rows(patch),
                        [g.out_channels, patch, g.batch],
                        gemm_threads(false, g.out_channels, patch, g.batch),
                    );
                    match crop {
                        Some(crop) => crop.expand(g, &live_dw),
                        None => live_dw,
                    }
                });
                (dx, dw)
            }
        }
    }
}

/// The geometry of the live kernel and its weights: cropped when some taps only read padding.
fn live_weight<'a>(g: &ConvGeometry, crop: &Option<LiveTaps>, weight: &'a [f32]) -> (ConvGeometry, std::borrow::Cow<'a, [f32]>) {
    match crop {
        Some(crop) => (crop.cropped, crop.crop(g, weight).into()),
        None => (*g, weight.into()),
    }
}

/// y (or dy) as a [K, N] matrix: y[n, k] is at n·K + k.
fn output_view(g: &ConvGeometry) -> Matrix {
    Matrix::rows(g.out_channels).transpose()
}

/// One tap of w as a [K, C] matrix, from that tap's offset: w[k, c, tap] is at (k·C + c)·R·S + tap.
fn weight_view(g: &ConvGeometry) -> Matrix {
    let area = g.kernel_height * g.kernel_width;
    Matrix::strided(g.in_channels * area, area)
}

/// One pixel of x (or dx) as a [C, N] matrix, from that pixel's offset: x[n, c, pixel] is at
/// (n·C + c)·H·W + pixel.
fn input_view(g: &ConvGeometry) -> Matrix {
    let plane = g.in_height * g.in_width;
    Matrix::strided(plane, g.in_channels * plane)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// y, dx and dw by their definitions, one multiply-add at a time.
    fn reference(g: &ConvGeometry, x: &[f32], w: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let (mut y, mut dx, mut dw) = (vec![0.0f64; g.output_len()], vec![0.0f64; g.input_len()], vec![0.0f64; g.weight_len()]);
        for n in 0..g.batch {
            for k in 0..g.out_channels {
                for c in 0..g.in_channels {
                    for r in 0..g.kernel_height {
                        for s in 0..g.kernel_width {
                            let ih = r as isize - g.padding_begin[0] as isize;
                            let iw = s as isize - g.padding_begin[1] as isize;
                            if ih < 0 || iw < 0 || ih as usize >= g.in_height || iw as usize >= g.in_width {
                                continue;
                            }
                            let xi = ((n * g.in_channels + c) * g.in_height + ih as usize) * g.in_width + iw as usize;
                            let wi = ((k * g.in_channels + c) * g.kernel_height + r) * g.kernel_width + s;
                            y[n * g.out_channels + k] += x[xi] as f64 * w[wi] as f64;
                            dx[xi] += w[wi] as f64 * dy[n * g.out_channels + k] as f64;
                            dw[wi] += dy[n * g.out_channels + k] as f64 * x[xi] as f64;
                        }
                    }
                }
            }
        }
        let single = |values: Vec<f64>| values.into_iter().map(|value| value as f32).collect();
        (single(y), single(dx), single(dw))
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len).map(|i| ((i * 7919 + seed * 104_729) % 1000) as f32 / 500.0 - 1.0).collect()
    }

    fn assert_close(name: &str, actual: &[f32], expected: &[f32]) {
        assert_eq!(actual.len(), expected.len(), "{name} length");
        for (index, (a, e)) in actual.iter().zip(expected).enumerate() {
            assert!((a - e).abs() <= 1e-4 * (1.0 + e.abs()), "{name}[{index}]: {a} against {e}");
        }
    }

    fn geometry(side: [usize; 2], kernel: [usize; 2], stride: usize, padding_begin: [usize; 2], padding_end: [usize; 2]) -> ConvGeometry {
        ConvGeometry {
            batch: 3,
            in_channels: 5,
            in_height: side[0],
            in_width: side[1],
            out_channels: 7,
            kernel_height: kernel[0],
            kernel_width: kernel[1],
            stride: [stride, stride],
            padding_begin,
            padding_end,
        }
    }

    #[test]
    fn one_pixel_outputs_match_the_definition_forward_and_for_both_gradients() {
        let cases = [
            // 3×3, padding 1, on a 1×1 map: the centre tap only.
            geometry([1, 1], [3, 3], 1, [1, 1], [1, 1]),
            // Stride 2 from 2×2: four taps, five dead.
            geometry([2, 2], [3, 3], 2, [1, 1], [1, 1]),
            // A kernel the size of its input, no padding: every tap.
            geometry([3, 3], [3, 3], 1, [0, 0], [0, 0]),
            // Non-square kernel and input, padding on one side only.
            geometry([2, 3], [3, 3], 1, [1, 0], [0, 0]),
            // Taps that read part of the input (stride 3 on 5×5).
            geometry([5, 5], [3, 3], 3, [0, 0], [0, 0]),
            // A 1×1 kernel on a 1×1 map.
            geometry([1, 1], [1, 1], 1, [0, 0], [0, 0]),
        ];
        for g in cases {
            assert_eq!((g.out_height(), g.out_width()), (1, 1), "{g:?}");
            let single_pixel = SinglePixel::of(&g).expect("a one-pixel output");
            let (x, w, dy) = (values(g.input_len(), 1), values(g.weight_len(), 2), values(g.output_len(), 3));
            let (y, dx, dw) = reference(&g, &x, &w, &dy);
            assert_close("y", &single_pixel.forward(&g, &x, &w), &y);
            let (actual_dx, actual_dw) = single_pixel.backward(&g, &x, &w, &dy, true, true);
            assert_close("dx", &actual_dx.unwrap(), &dx);
            assert_close("dw", &actual_dw.unwrap(), &dw);
            // And through the public entry points, which choose this path.
            assert_close("conv::forward", &crate::conv::forward(&g, &x, &w), &y);
        }
    }

    #[test]
    fn only_one_pixel_outputs_with_a_live_tap_take_this_path() {
        assert!(SinglePixel::of(&geometry([2, 2], [3, 3], 1, [1, 1], [1, 1])).is_none(), "2×2 output");
        // A 1×1 kernel on a 1×1 map with padding 1 on each side: the output is 3×3.
        assert!(SinglePixel::of(&geometry([1, 1], [1, 1], 1, [1, 1], [1, 1])).is_none());
        // Stride 3 from a 1×1 map padded by 2: the one output reads only padding.
        assert!(SinglePixel::of(&geometry([1, 1], [2, 2], 3, [2, 2], [0, 0])).is_none());
        let centre = SinglePixel::of(&geometry([1, 1], [3, 3], 1, [1, 1], [1, 1])).unwrap();
        assert_eq!(centre, SinglePixel::Taps(vec![(4, 0)]));
        // Stride 2 from 2×2 (resnet18's layer4.0.conv1 at 28 px): the lower right 2×2 taps cover
        // the whole input, cropped.
        assert!(matches!(SinglePixel::of(&geometry([2, 2], [3, 3], 2, [1, 1], [1, 1])), Some(SinglePixel::WholeImage { crop: Some(_) })));
        assert_eq!(SinglePixel::of(&geometry([3, 3], [3, 3], 1, [0, 0], [0, 0])), Some(SinglePixel::WholeImage { crop: None }));
        // Stride 3 on 5×5 without padding: the 3×3 taps read part of the input, each its own pixel.
        let part = SinglePixel::of(&geometry([5, 5], [3, 3], 3, [0, 0], [0, 0])).unwrap();
        assert!(matches!(&part, SinglePixel::Taps(taps) if taps.len() == 9 && taps[4] == (4, 6)), "{part:?}");
    }
}
