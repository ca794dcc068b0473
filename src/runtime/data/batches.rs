//! Turning a sized data set into shuffled, augmented batches of plain buffers.

use super::augment::Augment;
use super::rng::SplitMix64;
use super::sized_set::SizedSet;

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
    for (&index, target) in indices.iter().zip(out_images.chunks_exact_mut(per_image.max(1))) {
        let image = set.image(index);
        if augment.is_none() {
            target.copy_from_slice(image);
        } else {
            augment.apply(image, set.size as usize, rng, target);
        }
        out_labels.push(set.labels[index]);
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
        SizedSet { size: 2, channels: 3, images, labels: vec![10, 11, 12] }
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
        let augment = Augment { flip: true, crop_padding: 1 };
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
}
