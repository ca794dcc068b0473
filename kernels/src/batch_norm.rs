//! Batch normalisation over contiguous f32 NCHW buffers in three passes a step: the channel
//! statistics, the normalisation, and one backward that gives the input, scale and shift
//! gradients together. burn's generic batch norm (which flex uses) builds the same from about
//! fifteen whole-tensor operations, two of them transposing copies.
//!
//! The variance is the biased one (divided by the number of values), as in burn's
//! `batch_norm_train` and PyTorch's normalisation; sums run in f64.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::activation;
use crate::buffer::filled;

/// `[batch, channels, pixels]` of an NCHW tensor (pixels = height × width).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NormShape {
    pub batch: usize,
    pub channels: usize,
    pub pixels: usize,
}

impl NormShape {
    pub fn len(&self) -> usize {
        self.batch * self.channels * self.pixels
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The planes of channel `c`: one run of `pixels` values per image.
    fn planes<'a>(&self, values: &'a [f32], c: usize) -> impl Iterator<Item = &'a [f32]> + 'a {
        let (channels, pixels) = (self.channels, self.pixels);
        (0..self.batch).map(move |n| &values[(n * channels + c) * pixels..][..pixels])
    }

    /// Channel `c`'s values as the runs its sums go over: each image's plane, or, on planes under
    /// [`LARGE_PLANE`] pixels, every image's plane copied into one run. Each run's 16 lanes are
    /// reduced to f64 in order at its end; on 2×2 and 4×4 planes that reduction cost more than
    /// the sums (batch norm's gradient sums were 4–5% of resnet18's training at 64 px by perf).
    fn channel_runs(&self, values: &[f32], c: usize) -> ChannelRuns {
        if self.pixels >= LARGE_PLANE {
            return ChannelRuns::Planes;
        }
        let mut run = Vec::with_capacity(self.batch * self.pixels);
        self.planes(values, c).for_each(|plane| run.extend_from_slice(plane));
        ChannelRuns::Gathered(run)
    }
}

/// What [`NormShape::channel_runs`] chose.
enum ChannelRuns {
    /// Each image's plane, where it lies.
    Planes,
    /// Every image's plane in one run.
    Gathered(Vec<f32>),
}

impl ChannelRuns {
    /// `Σ sum(run)` over channel `c`'s runs of `values` (the buffer `self` was made from).
    fn sum(&self, shape: &NormShape, values: &[f32], c: usize, sum: impl Fn(&[f32]) -> f64) -> f64 {
        match self {
            ChannelRuns::Planes => shape.planes(values, c).map(sum).sum(),
            ChannelRuns::Gathered(run) => sum(run),
        }
    }
}

/// Independent accumulators, so that the sums vectorise (one running f32 sum is a chain of
/// dependent additions); f64 across lanes and planes.
const LANES: usize = 16;

/// `Σ term(v)` over `values`.
#[inline(always)]
fn lane_sum(values: &[f32], term: impl Fn(f32) -> f32) -> f64 {
    let mut lanes = [0.0f32; LANES];
    let chunks = values.chunks_exact(LANES);
    let rest: f64 = chunks.remainder().iter().map(|&v| term(v) as f64).sum();
    for chunk in chunks {
        for (lane, &v) in lanes.iter_mut().zip(chunk) {
            *lane += term(v);
        }
    }
    lanes.iter().map(|&lane| lane as f64).sum::<f64>() + rest
}

multiversion! {
    /// `Σ v` over `values`.
    fn plane_sum(values: &[f32]) -> f64 {
        lane_sum(values, |v| v)
    }
}

multiversion! {
    /// `Σ (v − mean)²` over `values`.
    fn plane_squared_deviations(values: &[f32], mean: f32) -> f64 {
        lane_sum(values, |v| (v - mean) * (v - mean))
    }
}

multiversion! {
/// `(Σ g, Σ g·(v − mean))` over paired `values` and `grads`.
fn lane_sums_of_gradient(values: &[f32], grads: &[f32], mean: f32) -> (f64, f64) {
    let (mut plain, mut weighted) = ([0.0f32; LANES], [0.0f32; LANES]);
    let (value_chunks, grad_chunks) = (values.chunks_exact(LANES), grads.chunks_exact(LANES));
    let (mut rest_plain, mut rest_weighted) = (0.0f64, 0.0f64);
    for (&v, &g) in value_chunks.remainder().iter().zip(grad_chunks.remainder()) {
        rest_plain += g as f64;
        rest_weighted += (g * (v - mean)) as f64;
    }
    for (value_chunk, grad_chunk) in value_chunks.zip(grad_chunks) {
        for lane in 0..LANES {
            plain[lane] += grad_chunk[lane];
            weighted[lane] += grad_chunk[lane] * (value_chunk[lane] - mean);
        }
    }
    let total = |lanes: [f32; LANES]| lanes.iter().map(|&lane| lane as f64).sum::<f64>();
    (total(plain) + rest_plain, total(weighted) + rest_weighted)
}
}

/// Per channel: the mean and the biased variance, as `(means, variances)`.
pub fn statistics(shape: NormShape, x: &[f32]) -> (Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), shape.len(), "batch norm input length");
    let count = (shape.batch * shape.pixels).max(1) as f64;
    let per_channel: Vec<(f32, f32)> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let runs = shape.channel_runs(x, c);
            let mean = (runs.sum(&shape, x, c, plane_sum) / count) as f32;
            // Two passes: the variance of values far from zero keeps its precision.
            let squares = runs.sum(&shape, x, c, |run| plane_squared_deviations(run, mean));
            (mean, (squares / count) as f32)
        })
        .collect();
    per_channel.into_iter().unzip()
}

/// Per channel `y = (x − mean) / √(variance + ε) · γ + β`.
/// With `relu`, the ReLU of that ([`activation::relu`]), in the same pass.
#[allow(clippy::too_many_arguments)]
pub fn normalize(shape: NormShape, x: &[f32], mean: &[f32], variance: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64, relu: bool) -> Vec<f32> {
    assert_eq!(x.len(), shape.len(), "batch norm input length");
    assert_eq!(gamma.len(), shape.channels, "batch norm gamma length");
    let (scale, shift) = fixed_coefficients(mean, variance, gamma, beta, epsilon);
    let pixels = shape.pixels.max(1);
    // Every plane of the output is written.
    let fill = |y: &mut [MaybeUninit<f32>]| {
        if pixels < LARGE_PLANE {
            let image_len = shape.channels * pixels;
            let (scale, shift) = (per_value(&scale, pixels), per_value(&shift, pixels));
            y.par_chunks_mut(image_len).zip(x.par_chunks(image_len)).for_each(|(out, input)| normalize_values(out, input, &scale, &shift, relu));
        } else {
            y.par_chunks_mut(pixels).zip(x.par_chunks(pixels)).enumerate().for_each(|(plane, (out, input))| {
                let c = plane % shape.channels;
                normalize_plane(out, input, scale[c], shift[c], relu);
            });
        }
    };
    // SAFETY: every plane (or image) of `y` is one chunk of the parallel loop, whose per-value loop
    // writes it whole.
    unsafe { filled(x.len(), fill) }
}

/// Per channel `(scale, shift)` with `y = x·scale + shift` the batch norm of `x` under these
/// statistics: what [`normalize`] applies, and a convolution's `Epilogue` in evaluation.
pub fn fixed_coefficients(mean: &[f32], variance: &[f32], gamma: &[f32], beta: &[f32], epsilon: f64) -> (Vec<f32>, Vec<f32>) {
    let channels = gamma.len();
    assert!([mean.len(), variance.len(), beta.len()].iter().all(|&len| len == channels), "batch norm coefficient lengths");
    (0..channels)
        .map(|c| {
            let scale = gamma[c] as f64 / (variance[c] as f64 + epsilon).sqrt();
            (scale as f32, (beta[c] as f64 - mean[c] as f64 * scale) as f32)
        })
        .unzip()
}

/// Planes of at least this many pixels are a parallel task each; smaller ones go an image at a
/// time with per-value coefficients. A task per plane on resnet18's 1×1, 2×2 and 7×7 maps at
/// 28 px (32,768, 16,384 and 4,096 planes a batch) cost a division, a call and a rayon split
/// for every one to four values: 6% of inference (perf, 2026-11-30).
const LARGE_PLANE: usize = 256;

/// Each channel's coefficient repeated for each of its `pixels` values: `[C]` → `[C · pixels]`,
/// the layout of one image, so that an image is one vector loop.
pub(crate) fn per_value(per_channel: &[f32], pixels: usize) -> Vec<f32> {
    per_channel.iter().flat_map(|&value| std::iter::repeat_n(value, pixels)).collect()
}

multiversion! {
    /// `out = v·a + b` value by value (then its ReLU: `relu`), `a` and `b` per value.
    fn normalize_values(out: &mut [MaybeUninit<f32>], input: &[f32], a: &[f32], b: &[f32], relu: bool) {
        let values = out.iter_mut().zip(input).zip(a.iter().zip(b));
        if relu {
            values.for_each(|((out, &v), (&a, &b))| {
                out.write(activation::relu(v * a + b));
            });
        } else {
            values.for_each(|((out, &v), (&a, &b))| {
                out.write(v * a + b);
            });
        }
    }
}

multiversion! {
    /// `out = v·a + b`, then its ReLU (`relu`).
    fn normalize_plane(out: &mut [MaybeUninit<f32>], input: &[f32], a: f32, b: f32, relu: bool) {
        if relu {
            out.iter_mut().zip(input).for_each(|(out, &v)| {
                out.write(activation::relu(v * a + b));
            });
        } else {
            out.iter_mut().zip(input).for_each(|(out, &v)| {
                out.write(v * a + b);
            });
        }
    }
}

multiversion! {
    /// dx of one plane with the batch's statistics: `scale·(g − mean_dy − (v − mean)·slope)`.
    fn batch_gradient_plane(out: &mut [MaybeUninit<f32>], x: &[f32], dy: &[f32], scale: f32, mean_dy: f32, slope: f32, mean: f32) {
        for ((out, &v), &g) in out.iter_mut().zip(x).zip(dy) {
            out.write(scale * (g - mean_dy - (v - mean) * slope));
        }
    }
}

multiversion! {
    /// dx of one plane with fixed statistics: `g·scale`.
    fn fixed_gradient_plane(out: &mut [MaybeUninit<f32>], dy: &[f32], scale: f32) {
        for (out, &g) in out.iter_mut().zip(dy) {
            out.write(g * scale);
        }
    }
}

/// `1/√(var + ε)` per channel.
fn inverse_deviations(variance: &[f32], epsilon: f64) -> Vec<f64> {
    variance.iter().map(|&v| 1.0 / (v as f64 + epsilon).sqrt()).collect()
}

/// `(dβ, dγ)` per channel: `Σ dy` and `Σ dy·x̂`, with x̂ = (x − mean)·inv_std.
fn parameter_gradients(shape: NormShape, x: &[f32], dy: &[f32], mean: &[f32], inv_std: &[f64]) -> (Vec<f32>, Vec<f32>) {
    let sums: Vec<(f32, f32)> = (0..shape.channels)
        .into_par_iter()
        .map(|c| {
            let (plain, weighted) = match (shape.channel_runs(x, c), shape.channel_runs(dy, c)) {
                (ChannelRuns::Gathered(x_run), ChannelRuns::Gathered(dy_run)) => lane_sums_of_gradient(&x_run, &dy_run, mean[c]),
                _ => shape
                    .planes(x, c)
                    .zip(shape.planes(dy, c))
                    .map(|(x_plane, dy_plane)| lane_sums_of_gradient(x_plane, dy_plane, mean[c]))
                    .fold((0.0, 0.0), |(a, b), (p, w)| (a + p, b + w)),
            };
            (plain as f32, (weighted * inv_std[c]) as f32)
        })
        .collect();
    sums.into_iter().unzip()
}

/// Where the statistics a normalisation used came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistics {
    /// The batch's own (training): they depend on x, and so does the gradient.
    Batch,
    /// Fixed (running statistics: evaluation, frozen layers).
    Fixed,
}

/// The gradients of [`normalize`] given `dy`: `(dx, dγ, dβ)`. With x̂ the normalised input and M
/// the values per channel, `dβ = Σ dy`, `dγ = Σ dy·x̂`, and
/// `dx = γ/√(var + ε) · (dy − dβ/M − x̂·dγ/M)` with the batch's statistics,
/// `dx = dy·γ/√(var + ε)` with fixed ones.
#[allow(clippy::too_many_arguments)]
pub fn backward(
    shape: NormShape,
    x: &[f32],
    dy: &[f32],
    mean: &[f32],
    variance: &[f32],
    gamma: &[f32],
    epsilon: f64,
    statistics: Statistics,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    assert_eq!(x.len(), shape.len(), "batch norm input length");
    assert_eq!(dy.len(), shape.len(), "batch norm output gradient length");
    let inv_std = inverse_deviations(variance, epsilon);
    let (dbeta, dgamma) = parameter_gradients(shape, x, dy, mean, &inv_std);
    let count = (shape.batch * shape.pixels).max(1) as f64;
    let pixels = shape.pixels.max(1);
    // Per channel: dx = scale·(g − mean_dy − (v − mean)·slope) with the batch's statistics
    // (x̂·dγ/M = (x − mean)·inv_std·dγ/M), dx = g·scale with fixed ones.
    let scale: Vec<f32> = (0..shape.channels).map(|c| (gamma[c] as f64 * inv_std[c]) as f32).collect();
    let mean_dy: Vec<f32> = dbeta.iter().map(|&sum| (sum as f64 / count) as f32).collect();
    let slope: Vec<f32> = (0..shape.channels).map(|c| (inv_std[c] * dgamma[c] as f64 / count) as f32).collect();
    // Every plane of dx is written.
    let fill = |dx: &mut [MaybeUninit<f32>]| {
        if pixels < LARGE_PLANE {
            let image_len = shape.channels * pixels;
            let [scale, mean_dy, slope, mean] = [&scale, &mean_dy, &slope, mean].map(|values| per_value(values, pixels));
            let images = dx.par_chunks_mut(image_len).zip(x.par_chunks(image_len).zip(dy.par_chunks(image_len)));
            images.for_each(|(out, (x_image, dy_image))| match statistics {
                Statistics::Batch => batch_gradient_values(out, x_image, dy_image, &scale, &mean_dy, &slope, &mean),
                Statistics::Fixed => fixed_gradient_values(out, dy_image, &scale),
            });
        } else {
            let planes = dx.par_chunks_mut(pixels).zip(x.par_chunks(pixels).zip(dy.par_chunks(pixels)));
            planes.enumerate().for_each(|(plane, (out, (x_plane, dy_plane)))| {
                let c = plane % shape.channels;
                match statistics {
                    Statistics::Batch => batch_gradient_plane(out, x_plane, dy_plane, scale[c], mean_dy[c], slope[c], mean[c]),
                    Statistics::Fixed => fixed_gradient_plane(out, dy_plane, scale[c]),
                }
            });
        }
    };
    // SAFETY: every plane (or image) of `dx` is one chunk of the parallel loop, whose per-value
    // loop writes it whole.
    let dx = unsafe { filled(x.len(), fill) };
    (dx, dgamma, dbeta)
}

multiversion! {
    /// [`batch_gradient_plane`] with its coefficients per value.
    fn batch_gradient_values(out: &mut [MaybeUninit<f32>], x: &[f32], dy: &[f32], scale: &[f32], mean_dy: &[f32], slope: &[f32], mean: &[f32]) {
        let coefficients = scale.iter().zip(mean_dy).zip(slope.iter().zip(mean));
        for (((out, &v), &g), ((&scale, &mean_dy), (&slope, &mean))) in out.iter_mut().zip(x).zip(dy).zip(coefficients) {
            out.write(scale * (g - mean_dy - (v - mean) * slope));
        }
    }
}

multiversion! {
    /// [`fixed_gradient_plane`] with its scale per value.
    fn fixed_gradient_values(out: &mut [MaybeUninit<f32>], dy: &[f32], scale: &[f32]) {
        for ((out, &g), &scale) in out.iter_mut().zip(dy).zip(scale) {
            out.write(g * scale);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalised_output_has_the_shift_as_mean_and_the_scale_as_deviation() {
        let shape = NormShape { batch: 3, channels: 2, pixels: 5 };
        let x: Vec<f32> = (0..shape.len()).map(|i| (i * 7 % 11) as f32 + 100.0).collect();
        let (mean, variance) = statistics(shape, &x);
        let y = normalize(shape, &x, &mean, &variance, &[2.0, 0.5], &[1.0, -3.0], 0.0, false);
        let (y_mean, y_variance) = statistics(shape, &y);
        for (c, (expected_mean, expected_deviation)) in [(1.0f32, 2.0f32), (-3.0, 0.5)].into_iter().enumerate() {
            assert!((y_mean[c] - expected_mean).abs() < 1e-4, "{y_mean:?}");
            assert!((y_variance[c].sqrt() - expected_deviation).abs() < 1e-4, "{y_variance:?}");
        }
    }

    #[test]
    fn small_and_large_planes_give_the_formula_value_for_value() {
        // Planes under LARGE_PLANE pixels go an image at a time, larger ones a plane at a time:
        // both must compute each value as the formula does, to the bit.
        for pixels in [1, 3, LARGE_PLANE - 1, LARGE_PLANE + 5] {
            let shape = NormShape { batch: 3, channels: 5, pixels };
            let x: Vec<f32> = (0..shape.len()).map(|i| ((i * 7 % 23) as f32 - 11.0) * 0.37).collect();
            let dy: Vec<f32> = (0..shape.len()).map(|i| ((i * 5 % 17) as f32 - 8.0) * 0.21).collect();
            let (gamma, beta) = ([1.5f32, -0.5, 2.0, 0.25, 1.0], [0.2f32, 0.1, -1.0, 0.0, 3.0]);
            let (mean, variance) = statistics(shape, &x);
            let epsilon = 1e-5;
            let inv_std = inverse_deviations(&variance, epsilon);
            let y = normalize(shape, &x, &mean, &variance, &gamma, &beta, epsilon, true);
            let (dx, dgamma, dbeta) = backward(shape, &x, &dy, &mean, &variance, &gamma, epsilon, Statistics::Batch);
            let (fixed_dx, _, _) = backward(shape, &x, &dy, &mean, &variance, &gamma, epsilon, Statistics::Fixed);
            let count = (shape.batch * pixels) as f64;
            for (i, &v) in x.iter().enumerate() {
                let c = i / pixels % shape.channels;
                let a = gamma[c] as f64 / (variance[c] as f64 + epsilon).sqrt();
                let b = (beta[c] as f64 - mean[c] as f64 * a) as f32;
                assert_eq!(y[i].to_bits(), activation::relu(v * a as f32 + b).to_bits(), "y[{i}], {pixels} pixels");
                let scale = (gamma[c] as f64 * inv_std[c]) as f32;
                let (mean_dy, slope) = ((dbeta[c] as f64 / count) as f32, (inv_std[c] * dgamma[c] as f64 / count) as f32);
                assert_eq!(dx[i].to_bits(), (scale * (dy[i] - mean_dy - (v - mean[c]) * slope)).to_bits(), "dx[{i}], {pixels} pixels");
                assert_eq!(fixed_dx[i].to_bits(), (dy[i] * scale).to_bits(), "fixed dx[{i}], {pixels} pixels");
            }
        }
    }

    #[test]
    fn gradients_match_finite_differences() {
        let shape = NormShape { batch: 2, channels: 2, pixels: 3 };
        let x: Vec<f32> = (0..shape.len()).map(|i| ((i * 5 % 7) as f32 - 3.0) * 0.7).collect();
        let r: Vec<f32> = (0..shape.len()).map(|i| ((i * 3 % 5) as f32 - 2.0) * 0.3).collect();
        let gamma = [1.5f32, -0.5];
        let beta = [0.2f32, 0.1];
        let epsilon = 1e-5;
        // loss = Σ r·y, so dy = r.
        let loss = |x: &[f32], gamma: &[f32]| -> f64 {
            let (mean, variance) = statistics(shape, x);
            let y = normalize(shape, x, &mean, &variance, gamma, &beta, epsilon, false);
            y.iter().zip(&r).map(|(y, r)| (*y as f64) * (*r as f64)).sum()
        };
        let (mean, variance) = statistics(shape, &x);
        let (dx, dgamma, _) = backward(shape, &x, &r, &mean, &variance, &gamma, epsilon, Statistics::Batch);
        let h = 1e-2f32;
        for i in 0..x.len() {
            let (mut plus, mut minus) = (x.clone(), x.clone());
            plus[i] += h;
            minus[i] -= h;
            let numeric = (loss(&plus, &gamma) - loss(&minus, &gamma)) / (2.0 * h as f64);
            assert!((numeric - dx[i] as f64).abs() < 2e-3, "dx[{i}]: {numeric} vs {}", dx[i]);
        }
        for c in 0..2 {
            let (mut plus, mut minus) = (gamma, gamma);
            plus[c] += h;
            minus[c] -= h;
            let numeric = (loss(&x, &plus) - loss(&x, &minus)) / (2.0 * h as f64);
            assert!((numeric - dgamma[c] as f64).abs() < 2e-3, "dgamma[{c}]: {numeric} vs {}", dgamma[c]);
        }
    }
}
