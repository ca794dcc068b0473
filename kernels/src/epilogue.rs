//! What a convolution's output goes through before it is stored, in evaluation: batch norm with
//! fixed statistics (`y·scale + shift` per channel), then a residual added, then a ReLU. Each of
//! these is a pass of its own over the whole output otherwise (`batch_norm::normalize`,
//! `activation::add_relu`), reading and writing a batch's activations from memory; here the
//! kernel applies them to values it has just computed, in registers or in the cache.
//!
//! Each value is computed as those passes compute it, in the same order (a multiply, an add, the
//! residual's add, `activation::relu`; Rust never fuses a multiply and an add), so an evaluation
//! gives the same bits as the separate passes.

use crate::activation;
use crate::batch_norm::per_value;

#[cfg(target_arch = "x86_64")]
#[path = "x86_64/epilogue.rs"]
mod vectors;

/// Batch norm with fixed statistics, a residual and a ReLU after a convolution.
#[derive(Debug, Clone, Copy)]
pub struct Epilogue<'a> {
    /// Per output channel: `y·scale + shift` (`batch_norm::fixed_coefficients`).
    pub scale: &'a [f32],
    pub shift: &'a [f32],
    /// Added after the batch norm: a tensor of the output's shape.
    pub residual: Option<&'a [f32]>,
    /// The ReLU of the result.
    pub relu: bool,
}

impl Epilogue<'_> {
    /// Whether it fits an output of `channels` channels and `len` values.
    pub fn fits(&self, channels: usize, len: usize) -> bool {
        self.scale.len() == channels && self.shift.len() == channels && self.residual.is_none_or(|residual| residual.len() == len)
    }

    /// The epilogue of one value `v` of channel `k`, found at `at` in the output.
    #[inline(always)]
    pub(crate) fn value(&self, v: f32, k: usize, at: usize) -> f32 {
        finish(v, self.scale[k], self.shift[k], self.residual.map(|residual| residual[at]), self.relu)
    }

    /// In place on `values`, a run of channel `k` that starts at `at` in the output.
    pub(crate) fn apply_run(&self, values: &mut [f32], k: usize, at: usize) {
        assert!(k < self.scale.len() && self.residual.is_none_or(|residual| at + values.len() <= residual.len()));
        apply_run(self, values, k, at);
    }

    /// In place on whole images `[images, K, pixels]` that start at image `first` of the output.
    /// Planes under [`SMALL_PLANE`] pixels go an image at a time with the coefficients spread over
    /// its values, as batch norm's do: a call per plane would be a call per value on 1×1 maps.
    pub(crate) fn apply_images(&self, values: &mut [f32], first: usize, pixels: usize) {
        let channels = self.scale.len();
        let image_len = channels * pixels;
        if image_len == 0 {
            return;
        }
        if pixels < SMALL_PLANE {
            let (scale, shift) = self.per_value(0..channels, pixels);
            for (image, values) in values.chunks_exact_mut(image_len).enumerate() {
                let at = (first + image) * image_len;
                let residual = self.residual.map(|residual| &residual[at..at + image_len]);
                apply_values(values, &scale, &shift, residual, self.relu);
            }
            return;
        }
        for (image, values) in values.chunks_exact_mut(image_len).enumerate() {
            for (k, run) in values.chunks_exact_mut(pixels).enumerate() {
                self.apply_run(run, k, (first + image) * image_len + k * pixels);
            }
        }
    }

    /// The coefficients of channels `channels` each repeated `pixels` times: one per value of
    /// those channels' run in an image, for [`lanes`](Self::lanes).
    pub(crate) fn per_value(&self, channels: std::ops::Range<usize>, pixels: usize) -> (Vec<f32>, Vec<f32>) {
        (per_value(&self.scale[channels.clone()], pixels), per_value(&self.shift[channels], pixels))
    }
}

/// `relu?(v·scale + shift + residual?)` in the separate passes' order: batch norm's multiply and
/// add, then the residual's add, then `activation::relu`. The scalar paths all come here.
#[inline(always)]
fn finish(v: f32, scale: f32, shift: f32, residual: Option<f32>, relu: bool) -> f32 {
    let normalized = v * scale + shift;
    let summed = match residual {
        Some(residual) => normalized + residual,
        None => normalized,
    };
    if relu { activation::relu(summed) } else { summed }
}

/// Planes of fewer pixels go an image at a time ([`Epilogue::apply_images`]).
const SMALL_PLANE: usize = 64;

multiversion! {
    /// [`Epilogue::value`] with each value's coefficients (and residual) given.
    fn apply_values(values: &mut [f32], scale: &[f32], shift: &[f32], residual: Option<&[f32]>, relu: bool) {
        let coefficients = values.iter_mut().zip(scale.iter().zip(shift));
        // One loop each way, so that each compiles without a branch per value.
        match residual {
            Some(residual) => coefficients.zip(residual).for_each(|((value, (&a, &b)), &r)| *value = finish(*value, a, b, Some(r), relu)),
            None => coefficients.for_each(|(value, (&a, &b))| *value = finish(*value, a, b, None, relu)),
        }
    }
}

multiversion! {
    fn apply_run(epilogue: &Epilogue, values: &mut [f32], k: usize, at: usize) {
        for (offset, value) in values.iter_mut().enumerate() {
            *value = epilogue.value(*value, k, at + offset);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_norm::{NormShape, normalize};

    /// The separate passes' bits, value for value: batch norm (with its ReLU), then the residual's
    /// `add_relu`; −0, NaN and values at zero included.
    #[test]
    fn gives_the_bits_of_batch_norm_then_add_relu() {
        // Planes of 5 and 37 pixels (an image at a time) and of 70 (a run a plane).
        for pixels in [5, 37, 70] {
            gives_the_bits_on_planes_of(pixels);
        }
    }

    fn gives_the_bits_on_planes_of(pixels: usize) {
        let channels = 3;
        let shape = NormShape { batch: 2, channels, pixels };
        let mut x: Vec<f32> = (0..shape.len()).map(|i| ((i * 7919) % 101) as f32 / 17.0 - 3.0).collect();
        x[5] = f32::NAN;
        x[6] = -0.0;
        let residual: Vec<f32> = (0..shape.len()).map(|i| ((i * 104_729) % 53) as f32 / 11.0 - 2.4).collect();
        let (mean, variance, gamma, beta) = ([0.3, -0.2, 0.0], [1.7, 0.4, 2.0], [1.1, -0.9, 1.0], [0.2, 0.0, -0.1]);
        let (scale, shift) = crate::batch_norm::fixed_coefficients(&mean, &variance, &gamma, &beta, 1e-5);
        for (with_residual, relu) in [(false, false), (false, true), (true, false), (true, true)] {
            let epilogue = Epilogue { scale: &scale, shift: &shift, residual: with_residual.then_some(&residual[..]), relu };
            let normalized = normalize(shape, &x, &mean, &variance, &gamma, &beta, 1e-5, relu && !with_residual);
            let expected = if with_residual {
                if relu {
                    activation::add_relu(&normalized, &residual)
                } else {
                    normalized.iter().zip(&residual).map(|(a, b)| a + b).collect()
                }
            } else {
                normalized
            };
            let mut by_images = x.clone();
            epilogue.apply_images(&mut by_images, 0, pixels);
            let by_vectors = by_vectors(&epilogue, &x, channels, pixels);
            for (index, ((&got, &vector), &want)) in by_images.iter().zip(&by_vectors).zip(&expected).enumerate() {
                let case = format!("{pixels} pixels, value {index}, residual {with_residual}, relu {relu}");
                assert_eq!(got.to_bits(), want.to_bits(), "images: {case}");
                assert_eq!(vector.to_bits(), want.to_bits(), "vectors: {case}");
            }
        }
    }

    /// [`Epilogue::vector`] over every run in vectors of 16 and a masked rest; the runs' values
    /// where AVX-512 is missing.
    fn by_vectors(epilogue: &Epilogue, x: &[f32], channels: usize, pixels: usize) -> Vec<f32> {
        let mut out = x.to_vec();
        #[cfg(target_arch = "x86_64")]
        if crate::isa::avx512() {
            use std::arch::x86_64::*;
            for (run, values) in out.chunks_exact_mut(pixels).enumerate() {
                let k = run % channels;
                for from in (0..pixels).step_by(16) {
                    let mask = crate::simd::first_lanes(pixels - from);
                    // SAFETY: AVX-512F checked; the masked lanes lie inside the run and the
                    // residual (of the output's length).
                    unsafe {
                        let sum = _mm512_maskz_loadu_ps(mask, values.as_ptr().add(from));
                        let result = epilogue.vector(sum, k, run * pixels + from, mask);
                        _mm512_mask_storeu_ps(values.as_mut_ptr().add(from), mask, result);
                    }
                }
            }
            return out;
        }
        epilogue.apply_images(&mut out, 0, pixels);
        out
    }
}
