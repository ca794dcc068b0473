//! A whole data set resized to one square side and normalised, ready to slice into batches.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};
use rayon::prelude::*;

use super::decoded::DecodedImage;
use crate::check::recipe::ResizeMethod;
use crate::diagnostics::{Code, Diagnostic};

/// How each image becomes `size` x `size` (fastai's `Resize(method=…)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// Each side scaled to the size; the aspect ratio is lost.
    Squash,
    /// The long side scaled to the size, the short one padded with black, centred.
    Pad,
    /// The short side scaled to the size and the centre square kept (validation under `crop`).
    CentreCrop,
    /// The short side scaled to the size, the whole strip kept: `fill_batch` cuts a square at a
    /// random place every time the image is drawn (training under `crop`).
    RandomCrop,
}

impl Fit {
    /// The fit of a `resize_method` for the training or the validation images.
    pub fn of(method: ResizeMethod, training: bool) -> Fit {
        match method {
            ResizeMethod::Squash => Fit::Squash,
            ResizeMethod::Pad => Fit::Pad,
            ResizeMethod::Crop if training => Fit::RandomCrop,
            ResizeMethod::Crop => Fit::CentreCrop,
        }
    }
}

/// Where one image lies in `SizedSet::images` and its stored size (`size` x `size`, except under
/// `Fit::RandomCrop`, where one side is longer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Frame {
    pub offset: usize,
    pub width: u32,
    pub height: u32,
}

/// Every image normalised as f32 in CHW order, one after another, square at `size` or (random
/// crop) with its short side at `size`. Built once per training size (progressive resizing),
/// then only read.
#[derive(Debug, Clone, PartialEq)]
pub struct SizedSet {
    pub size: u32,
    /// 3, or 1 for a network that takes grey images.
    pub channels: u32,
    /// Image by image, channel, row, column; `frames` says where each image starts.
    pub images: Vec<f32>,
    pub frames: Vec<Frame>,
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
        SizedSet::build_fitted(images, labels, size, mean, std, Fit::Squash, 3)
    }

    /// `build` with a choice of how non-square images become square, and of the channels kept:
    /// 3 (RGB), or 1 (the first channel: the grey value of images made grey when decoded).
    pub fn build_fitted(images: &[DecodedImage], labels: &[usize], size: u32, mean: &[f64], std: &[f64], fit: Fit, channels: u32) -> SizedSet {
        SizedSet::try_build(images, labels, size, mean, std, fit, channels)
            .unwrap_or_else(|error| panic!("SizedSet::build on unchecked input: {}", error.message))
    }

    /// `build_fitted`, with inconsistent inputs reported as a diagnostic instead of a panic.
    pub fn try_build(
        images: &[DecodedImage],
        labels: &[usize],
        size: u32,
        mean: &[f64],
        std: &[f64],
        fit: Fit,
        channels: u32,
    ) -> Result<SizedSet, Diagnostic> {
        let (scale, offset) = normalisation(mean, std)?;
        if channels != 1 && channels != 3 {
            return Err(Diagnostic::new(Code::ValueOutOfRange, format!("images have 1 or 3 channels, not {channels}")));
        }
        let kept = channels as usize;
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
        let mut frames = Vec::with_capacity(images.len());
        let mut total = 0usize;
        for image in images {
            let (width, height) = stored_size(image.width, image.height, size, fit);
            frames.push(Frame { offset: total, width, height });
            total += kept * width as usize * height as usize;
        }
        let mut values = vec![0.0f32; total];
        let mut chunks: Vec<&mut [f32]> = Vec::with_capacity(images.len());
        let mut rest = values.as_mut_slice();
        for frame in &frames {
            let (chunk, tail) = rest.split_at_mut(kept * frame.width as usize * frame.height as usize);
            chunks.push(chunk);
            rest = tail;
        }
        let options = ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear));
        chunks
            .into_par_iter()
            .zip(images.par_iter())
            .zip(frames.par_iter())
            .try_for_each_init(Resizer::new, |resizer, ((out, image), frame)| {
                let source = ImageRef::new(image.width, image.height, &image.pixels, PixelType::U8x3)
                    .map_err(|error| error.to_string())?;
                let (scaled_width, scaled_height) = scaled_size(image.width, image.height, size, fit);
                let mut scaled = Image::new(scaled_width, scaled_height, PixelType::U8x3);
                resizer.resize(&source, &mut scaled, &options).map_err(|error| error.to_string())?;
                // Where the scaled image lands in the stored frame: a centred window (centre crop)
                // or a centred paste (pad); both are the identity otherwise.
                let (frame_width, frame_height) = (frame.width as usize, frame.height as usize);
                let (scaled_width, scaled_height) = (scaled_width as usize, scaled_height as usize);
                let plane = frame_width * frame_height;
                let black = [-offset[0], -offset[1], -offset[2]];
                for channel in 0..kept {
                    out[channel * plane..(channel + 1) * plane].fill(black[channel]);
                }
                let buffer = scaled.buffer();
                for y in 0..frame_height {
                    for x in 0..frame_width {
                        // Source pixel for this frame pixel: shift by half the difference of sizes.
                        let source_x = x as isize + (scaled_width as isize - frame_width as isize) / 2;
                        let source_y = y as isize + (scaled_height as isize - frame_height as isize) / 2;
                        if source_x < 0 || source_y < 0 || source_x >= scaled_width as isize || source_y >= scaled_height as isize {
                            continue;
                        }
                        let pixel = (source_y as usize * scaled_width + source_x as usize) * 3;
                        for channel in 0..kept {
                            out[channel * plane + y * frame_width + x] = f32::from(buffer[pixel + channel]) * scale[channel] - offset[channel];
                        }
                    }
                }
                Ok::<(), String>(())
            })
            .map_err(|reason| {
                Diagnostic::new(Code::CorruptImage, format!("an image could not be resized: {reason}"))
            })?;
        Ok(SizedSet {
            size,
            channels,
            images: values,
            frames,
            labels: labels.iter().map(|&label| label as i64).collect(),
        })
    }

    pub fn len(&self) -> usize {
        self.labels.len()
    }

    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Values in one batch image: channels * size * size.
    pub fn image_len(&self) -> usize {
        self.channels as usize * self.size as usize * self.size as usize
    }

    /// One image's stored CHW values and their frame. Panics if `index >= len()`, like slice indexing.
    pub fn stored(&self, index: usize) -> (&[f32], Frame) {
        let frame = self.frames[index];
        let length = self.channels as usize * frame.width as usize * frame.height as usize;
        (&self.images[frame.offset..frame.offset + length], frame)
    }

    /// One square image's CHW values (every image but a random-crop strip is square).
    pub fn image(&self, index: usize) -> &[f32] {
        self.stored(index).0
    }
}

/// The size an image is scaled to before it is cut or padded into its frame.
fn scaled_size(width: u32, height: u32, size: u32, fit: Fit) -> (u32, u32) {
    // The other side when side `from` becomes `target`: the aspect ratio kept.
    let scale_to = |from: u32, other: u32, target: u32| -> u32 {
        ((f64::from(other) * f64::from(target) / f64::from(from)).round() as u32).max(1)
    };
    match fit {
        Fit::Squash => (size, size),
        Fit::CentreCrop | Fit::RandomCrop if width <= height => (size, scale_to(width, height, size)),
        Fit::CentreCrop | Fit::RandomCrop => (scale_to(height, width, size), size),
        Fit::Pad if width >= height => (size, scale_to(width, height, size)),
        Fit::Pad => (scale_to(height, width, size), size),
    }
}

/// The size an image is stored at: square, except a random-crop strip.
fn stored_size(width: u32, height: u32, size: u32, fit: Fit) -> (u32, u32) {
    match fit {
        Fit::RandomCrop => scaled_size(width, height, size, fit),
        Fit::Squash | Fit::Pad | Fit::CentreCrop => (size, size),
    }
}

/// Per-channel multiplier and offset so that `x * scale - offset == (x / 255 - mean) / std`.
pub fn normalisation(mean: &[f64], std: &[f64]) -> Result<([f32; 3], [f32; 3]), Diagnostic> {
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
        assert!(SizedSet::try_build(&[good.clone()], &[0], 4, &[0.5; 2], &[0.2; 3], Fit::Squash, 3).is_err());
        assert!(SizedSet::try_build(&[good.clone()], &[0], 4, &[0.5; 3], &[0.0, 1.0, 1.0], Fit::Squash, 3).is_err());
        assert!(SizedSet::try_build(&[good.clone()], &[0], 0, &[0.5; 3], &[1.0; 3], Fit::Squash, 3).is_err());
        assert!(SizedSet::try_build(&[good.clone()], &[], 4, &[0.5; 3], &[1.0; 3], Fit::Squash, 3).is_err());
        let short = DecodedImage { width: 3, height: 3, pixels: vec![0; 5] };
        let error = SizedSet::try_build(&[good, short], &[0, 0], 4, &[0.5; 3], &[1.0; 3], Fit::Squash, 3).unwrap_err();
        assert_eq!(error.code, Code::CorruptImage);
        assert!(error.message.contains("image 1"), "{}", error.message);
    }

    /// A 4x2 image: left half black, right half white.
    fn wide() -> DecodedImage {
        let mut image = constant(4, 2, [0, 0, 0]);
        for row in 0..2 {
            for column in 2..4 {
                image.pixels[(row * 4 + column) * 3..(row * 4 + column + 1) * 3].copy_from_slice(&[255, 255, 255]);
            }
        }
        image
    }

    fn first_channel(set: &SizedSet) -> Vec<f32> {
        let (values, frame) = set.stored(0);
        values[..(frame.width * frame.height) as usize].to_vec()
    }

    #[test]
    fn crop_keeps_the_aspect_ratio_and_cuts_the_centre_for_validation() {
        let set = SizedSet::build_fitted(&[wide()], &[0], 2, &[0.0; 3], &[1.0; 3], Fit::CentreCrop, 3);
        assert_eq!(set.frames[0], Frame { offset: 0, width: 2, height: 2 });
        // The centre two columns of the 4x2 image: one black, one white.
        assert_eq!(first_channel(&set), vec![0.0, 1.0, 0.0, 1.0]);
        let strip = SizedSet::build_fitted(&[wide()], &[0], 2, &[0.0; 3], &[1.0; 3], Fit::RandomCrop, 3);
        assert_eq!(strip.frames[0], Frame { offset: 0, width: 4, height: 2 }, "the whole strip, short side at the size");
    }

    #[test]
    fn pad_keeps_everything_and_fills_with_black() {
        let set = SizedSet::build_fitted(&[wide()], &[0], 4, &[0.5; 3], &[0.5; 3], Fit::Pad, 3);
        assert_eq!(set.frames[0], Frame { offset: 0, width: 4, height: 4 });
        // Rows 0 and 3 are padding (black: (0 - 0.5) / 0.5 = -1); rows 1 and 2 hold the image.
        let values = first_channel(&set);
        assert_eq!(&values[..4], &[-1.0; 4]);
        assert_eq!(&values[4..8], &[-1.0, -1.0, 1.0, 1.0]);
        assert_eq!(&values[12..], &[-1.0; 4]);
        let squashed = SizedSet::build_fitted(&[wide()], &[0], 4, &[0.5; 3], &[0.5; 3], Fit::Squash, 3);
        assert_eq!(&first_channel(&squashed)[..4], &[-1.0, -1.0, 1.0, 1.0], "squash stretches the image over every row");
    }
}
