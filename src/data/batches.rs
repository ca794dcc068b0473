//! Turning a sized data set into shuffled, augmented batches of plain buffers.

use super::augment::Augment;
use super::rng::SplitMix64;
use super::sized_set::{Frame, SizedSet};

/// Keeps epoch orders independent of other streams (splits, synthetic images) of the same seed.
const EPOCH_STREAM_SALT: u64 = 0x45_50_4F_43_48; // "EPOCH"

/// A permutation of `0..count`, the same for the same (seed, epoch) whatever ran before,
/// so a resumed run visits images in the order the interrupted one would have.
pub fn epoch_order(count: usize, seed: u64, epoch: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    SplitMix64::for_stream(seed ^ EPOCH_STREAM_SALT, epoch).shuffle(&mut order);
    order
}

/// Fill `out_images` with the images at `indices` as one contiguous NCHW buffer
/// (`indices.len() * 3 * size * size` values) and `out_labels` with their labels.
/// The buffers are cleared first and reused between batches to avoid reallocating.
/// Panics if an index is out of range, like slice indexing.
pub fn fill_batch(
    set: &SizedSet,
    indices: &[usize],
    augment: &Augment,
    rng: &mut SplitMix64,
    out_images: &mut Vec<f32>,
    out_labels: &mut Vec<i64>,
) {
    let per_image = set.image_len();
    out_images.clear();
    out_labels.clear();
    out_images.resize(indices.len() * per_image, 0.0);
    let mut window = Vec::new();
    for (&index, target) in indices.iter().zip(out_images.chunks_exact_mut(per_image.max(1))) {
        let (stored, frame) = set.stored(index);
        let image = if frame.width == set.size && frame.height == set.size {
            stored
        } else {
            // A random-crop strip: a square at a random place along its long side, as fastai's
            // `Resize(method='crop')` does for training. Only strips draw, so data sets of square
            // images keep their random stream.
            random_window(stored, frame, set.channels as usize, set.size as usize, rng, &mut window);
            &window
        };
        if augment.is_none() {
            target.copy_from_slice(image);
        } else {
            augment.apply(image, set.size as usize, rng, target);
        }
        out_labels.push(set.labels[index]);
    }
}

/// Copy a `size` x `size` window of a CHW strip at a random offset along its long side.
fn random_window(stored: &[f32], frame: Frame, channels: usize, size: usize, rng: &mut SplitMix64, out: &mut Vec<f32>) {
    let (width, height) = (frame.width as usize, frame.height as usize);
    let shift = rng.below(width.max(height) - size + 1);
    let (left, top) = if width > height { (shift, 0) } else { (0, shift) };
    out.clear();
    for channel in 0..channels {
        let plane = &stored[channel * width * height..(channel + 1) * width * height];
        for row in top..top + size {
            out.extend_from_slice(&plane[row * width + left..row * width + left + size]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three 2x2 images whose every value is the image's index (plus the channel / 10).
    fn set() -> SizedSet {
        let mut images = Vec::new();
        for image in 0..3 {
            for channel in 0..3 {
                images.extend([image as f32 + channel as f32 / 10.0; 4]);
            }
        }
        let frames = (0..3).map(|image| Frame { offset: image * 12, width: 2, height: 2 }).collect();
        SizedSet { size: 2, channels: 3, images, frames, labels: vec![10, 11, 12] }
    }

    #[test]
    fn epoch_order_is_a_deterministic_permutation_per_epoch() {
        let first = epoch_order(50, 3, 0);
        assert_eq!(first, epoch_order(50, 3, 0));
        assert_ne!(first, epoch_order(50, 3, 1));
        assert_ne!(first, epoch_order(50, 4, 0));
        let mut sorted = first.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert!(epoch_order(0, 3, 0).is_empty());
    }

    #[test]
    fn fills_contiguous_nchw_with_labels() {
        let set = set();
        let mut rng = SplitMix64::new(0);
        let (mut images, mut labels) = (vec![99.0; 5], vec![7]);
        fill_batch(&set, &[2, 0], &Augment::NONE, &mut rng, &mut images, &mut labels);
        assert_eq!(labels, vec![12, 10]);
        assert_eq!(images.len(), 2 * 12);
        assert_eq!(&images[..12], set.image(2));
        assert_eq!(&images[12..], set.image(0));
        assert_eq!(images[4], 2.1);
        // No augmentation draws nothing: validation does not disturb the training stream.
        assert_eq!(rng, SplitMix64::new(0));
    }

    #[test]
    fn augmented_batches_are_reproducible_and_pad_with_zero() {
        let set = set();
        let augment = Augment::flip_and_crop(true, 1);
        let run = |seed| {
            let (mut images, mut labels) = (Vec::new(), Vec::new());
            let mut rng = SplitMix64::new(seed);
            fill_batch(&set, &[1, 1, 1, 1], &augment, &mut rng, &mut images, &mut labels);
            images
        };
        assert_eq!(run(5), run(5));
        let images = run(5);
        // Constant images: every value is the original or padding.
        assert!(images.iter().all(|&v| v == 0.0 || [1.0, 1.1, 1.2].contains(&v)));
        assert!((0..8).any(|seed| run(seed).contains(&0.0)));
    }

    #[test]
    fn random_crop_strips_give_a_window_at_a_random_place() {
        // One 4x2 strip whose every column holds its index: windows of 2 start at 0, 1 or 2.
        let mut images = Vec::new();
        for _ in 0..3 {
            for _ in 0..2 {
                images.extend([0.0, 1.0, 2.0, 3.0]);
            }
        }
        let set = SizedSet { size: 2, channels: 3, images, frames: vec![Frame { offset: 0, width: 4, height: 2 }], labels: vec![0] };
        let mut rng = SplitMix64::new(9);
        let mut starts = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let (mut images, mut labels) = (Vec::new(), Vec::new());
            fill_batch(&set, &[0], &Augment::NONE, &mut rng, &mut images, &mut labels);
            assert_eq!(images.len(), 12);
            assert_eq!(images[1], images[0] + 1.0, "a contiguous window");
            starts.insert(images[0] as i32);
        }
        assert_eq!(starts.into_iter().collect::<Vec<_>>(), vec![0, 1, 2]);
    }
}
