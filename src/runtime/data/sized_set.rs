//! A whole data set resized to one square side and normalised, ready to slice into batches.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use rayon::prelude::*;

use super::decoded::DecodedImage;
use crate::diagnostics::{Code, Diagnostic};

/// Every image at `size` x `size`, as normalised f32 in CHW order, one after another.
/// Built once per training size (progressive resizing), then only read.
#[derive(Debug, Clone, PartialEq)]
pub struct SizedSet {
    pub size: u32,
    /// Always 3: decoding makes every image RGB.
    pub channels: u32,
    /// `len() * channels * size * size` values: image, channel, row, column.
    pub images: Vec<f32>,
    pub labels: Vec<i64>,
}

impl SizedSet {
    /// Resize every image (bilinear convolution, in parallel) and normalise each channel
    /// as `(x / 255 - mean) / std`. `mean` and `std` hold one value per RGB channel, or one
    /// value for all three (a `channels 1` recipe's statistics on grey images expanded to RGB).
    ///
    /// For inputs the checker and decoder have already vetted: recipe statistics, images from
    /// `decode_all` or `generate`. Panics, naming the problem, if they are inconsistent; use
    /// `try_build` where that is not guaranteed.
    pub fn build(images: &[DecodedImage], labels: &[usize], size: u32, mean: &[f64], std: &[f64]) -> SizedSet {
        SizedSet::try_build(images, labels, size, mean, std)
            .unwrap_or_else(|error| panic!("SizedSet::build on unchecked input: {}", error.message))
    }

    /// `build`, with inconsistent inputs reported as a diagnostic instead of a panic.
    pub fn try_build(
        images: &[DecodedImage],
        labels: &[usize],
        size: u32,
        mean: &[f64],
        std: &[f64],
    ) -> Result<SizedSet, Diagnostic> {
        let (scale, offset) = normalisation(mean, std)?;
        if size == 0 {
            return Err(Diagnostic::new(Code::ValueOutOfRange, "image size must be at least 1 pixel"));
        }
        if images.len() != labels.len() {
            return Err(Diagnostic::new(
                Code::ValueOutOfRange,
                format!("{} images but {} labels", images.len(), labels.len()),
            ));
        }
        // Checked up front so the parallel part cannot fail and errors stay deterministic.
        if let Some(index) = images.iter().position(|image| !image.is_consistent()) {
            let image = &images[index];
            return Err(Diagnostic::new(
                Code::CorruptImage,
                format!(
                    "image {index} is {}x{} with {} bytes of pixels, expected {}",
                    image.width,
                    image.height,
                    image.pixels.len(),
                    image.width as usize * image.height as usize * 3
                ),
            ));
        }
        let plane = size as usize * size as usize;
        let per_image = 3 * plane;
        let mut values = vec![0.0f32; images.len() * per_image];
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        values
            .par_chunks_mut(per_image)
            .zip(images.par_iter())
            .try_for_each_init(Resizer::new, |resizer, (out, image)| {
                let source = ImageRef::new(image.width, image.height, &image.pixels, PixelType::U8x3)
                    .map_err(|error| error.to_string())?;
                let mut resized = Image::new(size, size, PixelType::U8x3);
                resizer.resize(&source, &mut resized, &options).map_err(|error| error.to_string())?;
                // Interleaved HWC bytes to planar CHW floats.
                for (pixel, rgb) in resized.buffer().chunks_exact(3).enumerate() {
                    for channel in 0..3 {
                        out[channel * plane + pixel] =
                            f32::from(rgb[channel]) * scale[channel] - offset[channel];
                    }
                }
                Ok::<(), String>(())
            })
            .map_err(|reason| {
                Diagnostic::new(Code::CorruptImage, format!("an image could not be resized: {reason}"))
            })?;
        Ok(SizedSet {
            size,
            channels: 3,
            images: values,
            labels: labels.iter().map(|&label| label as i64).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values in one image: channels * size * size.
    pub fn image_len(&self) -> usize {
        self.channels as usize * self.size as usize * self.size as usize
    }

    /// One image's CHW values. Panics if `index >= len()`, like slice indexing.
    pub fn image(&self, index: usize) -> &[f32] {
        let len = self.image_len();
        &self.images[index * len..(index + 1) * len]
    }
}

/// Per-channel multiplier and offset so that `x * scale - offset == (x / 255 - mean) / std`.
fn normalisation(mean: &[f64], std: &[f64]) -> Result<([f32; 3], [f32; 3]), Diagnostic> {
    let per_channel = |values: &[f64]| match values.len() {
        1 => Some([values[0]; 3]),
        3 => Some([values[0], values[1], values[2]]),
        _ => None,
    };
    let (Some(mean), Some(std)) = (per_channel(mean), per_channel(std)) else {
        return Err(Diagnostic::new(
            Code::ValueOutOfRange,
            format!("normalisation needs 1 or 3 means and stds, got {} and {}", mean.len(), std.len()),
        ));
    };
    if let Some(bad) = std.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
        return Err(Diagnostic::new(Code::ValueOutOfRange, format!("std {bad} must be positive")));
    }
    if let Some(bad) = mean.iter().find(|m| !m.is_finite()) {
        return Err(Diagnostic::new(Code::ValueOutOfRange, format!("mean {bad} must be a finite number")));
    }
    let mut scale = [0.0f32; 3];
    let mut offset = [0.0f32; 3];
    for channel in 0..3 {
        scale[channel] = (1.0 / (255.0 * std[channel])) as f32;
        offset[channel] = (mean[channel] / std[channel]) as f32;
    }
    Ok((scale, offset))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn constant(width: u32, height: u32, rgb: [u8; 3]) -> DecodedImage {
        let pixels = rgb.iter().copied().cycle().take(width as usize * height as usize * 3).collect();
        DecodedImage { width, height, pixels }
    }

    #[test]
    fn resizes_and_normalises_constant_images() {
        let images = vec![constant(7, 5, [51, 102, 255]), constant(40, 33, [0, 255, 128])];
        let mean = [0.5, 0.5, 0.5];
        let std = [0.25, 0.5, 1.0];
        let set = SizedSet::build(&images, &[3, 1], 4, &mean, &std);
        assert_eq!(set.len(), 2);
        assert_eq!(set.images.len(), 2 * 3 * 4 * 4);
        assert_eq!(set.labels, vec![3, 1]);
        let expect = |image: usize, rgb: [u8; 3]| {
            let values = set.image(image);
            for channel in 0..3 {
                let want = ((f64::from(rgb[channel]) / 255.0 - mean[channel]) / std[channel]) as f32;
                for &value in &values[channel * 16..(channel + 1) * 16] {
                    assert!((value - want).abs() < 1e-5, "image {image} channel {channel}: {value} vs {want}");
                }
            }
        };
        // (0.2 - 0.5) / 0.25 = -1.2; (0.4 - 0.5) / 0.5 = -0.2; (1 - 0.5) / 1 = 0.5.
        expect(0, [51, 102, 255]);
        expect(1, [0, 255, 128]);
        assert!((set.image(0)[0] + 1.2).abs() < 1e-5);
    }

    #[test]
    fn single_channel_statistics_apply_to_all_three() {
        let set = SizedSet::build(&[constant(2, 2, [0, 51, 255])], &[0], 2, &[0.2], &[0.5]);
        let firsts: Vec<f32> = (0..3).map(|channel| set.image(0)[channel * 4]).collect();
        for (value, want) in firsts.iter().zip([-0.4f32, 0.0, 1.6]) {
            assert!((value - want).abs() < 1e-5, "{firsts:?}");
        }
    }

    #[test]
    fn keeps_layout_chw_and_left_right_order() {
        // Left half black, right half white, at the output size: no interpolation needed.
        let mut image = constant(2, 2, [0, 0, 0]);
        for row in 0..2 {
            image.pixels[(row * 2 + 1) * 3..(row * 2 + 2) * 3].copy_from_slice(&[255, 255, 255]);
        }
        let set = SizedSet::build(&[image], &[0], 2, &[0.0; 3], &[1.0; 3]);
        assert_eq!(set.image(0), &[0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn rejects_bad_inputs_without_panicking() {
        let good = constant(2, 2, [1, 2, 3]);
        assert!(SizedSet::try_build(&[good.clone()], &[0], 4, &[0.5; 2], &[0.2; 3]).is_err());
        assert!(SizedSet::try_build(&[good.clone()], &[0], 4, &[0.5; 3], &[0.0, 1.0, 1.0]).is_err());
        assert!(SizedSet::try_build(&[good.clone()], &[0], 0, &[0.5; 3], &[1.0; 3]).is_err());
        assert!(SizedSet::try_build(&[good.clone()], &[], 4, &[0.5; 3], &[1.0; 3]).is_err());
        let short = DecodedImage { width: 3, height: 3, pixels: vec![0; 5] };
        let error = SizedSet::try_build(&[good, short], &[0, 0], 4, &[0.5; 3], &[1.0; 3]).unwrap_err();
        assert_eq!(error.code, Code::CorruptImage);
        assert!(error.message.contains("image 1"), "{}", error.message);
    }
}
