//! Holding out a validation share of one folder, class by class.

use std::collections::BTreeMap;

use super::rng::SplitMix64;

/// Keeps splits independent of other streams (epoch orders, synthetic images) of the same seed.
const SPLIT_STREAM_SALT: u64 = 0x53_50_4C_49_54; // "SPLIT"

/// Split items `0..count` (labelled by `labels[i]`) into (train, valid), both sorted.
///
/// Stratified: each class gives `round(n * fraction)` images to valid, but at least one when it
/// has two or more images and at most `n - 1`, so every class is both trained and measured.
/// A class's choice depends only on `seed` and its label, not on the other classes.
/// `fraction <= 0` (or NaN) keeps everything in train. Items past `labels.len()` are ignored.
pub fn split_indices(count: usize, labels: &[usize], fraction: f64, seed: u64) -> (Vec<usize>, Vec<usize>) {
    let count = count.min(labels.len());
    let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
    let mut by_class: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for (index, &label) in labels[..count].iter().enumerate() {
        by_class.entry(label).or_default().push(index);
    }
    let mut train = Vec::with_capacity(count);
    let mut valid = Vec::new();
    for (label, mut members) in by_class {
        let held_out = crate::data_counts::held_out(members.len(), fraction);
        SplitMix64::for_stream(seed ^ SPLIT_STREAM_SALT, label as u64).shuffle(&mut members);
        valid.extend_from_slice(&members[..held_out]);
        train.extend_from_slice(&members[held_out..]);
    }
    train.sort_unstable();
    valid.sort_unstable();
    (train, valid)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<usize> {
        // Class 0: 10 images, class 1: 4, class 2: 1, class 3: 2, interleaved.
        let mut labels = vec![0; 10];
        labels.extend([1, 1, 1, 1, 2, 3, 3]);
        labels.rotate_left(3);
        labels
    }

    fn per_class(indices: &[usize], labels: &[usize]) -> Vec<usize> {
        let mut counts = vec![0; 4];
        for &index in indices {
            counts[labels[index]] += 1;
        }
        counts
    }

    #[test]
    fn stratifies_and_keeps_every_class_in_both() {
        let labels = labels();
        let (train, valid) = split_indices(labels.len(), &labels, 0.2, 5);
        // 10 * 0.2 = 2; 4 * 0.2 rounds to 1; a single image stays in train; 2 * 0.2 rounds up to 1.
        assert_eq!(per_class(&valid, &labels), vec![2, 1, 0, 1]);
        assert_eq!(per_class(&train, &labels), vec![8, 3, 1, 1]);
        let mut all: Vec<usize> = train.iter().chain(&valid).copied().collect();
        all.sort();
        assert_eq!(all, (0..labels.len()).collect::<Vec<_>>());
        assert!(train.windows(2).all(|pair| pair[0] < pair[1]));
    }

    #[test]
    fn large_fraction_still_leaves_one_to_train() {
        let labels = labels();
        let (train, valid) = split_indices(labels.len(), &labels, 1.0, 5);
        assert_eq!(per_class(&train, &labels), vec![1, 1, 1, 1]);
        assert_eq!(valid.len(), labels.len() - 4);
        let (train, valid) = split_indices(labels.len(), &labels, 0.0, 5);
        assert_eq!((train.len(), valid.len()), (labels.len(), 0));
    }

    #[test]
    fn deterministic_by_seed() {
        let labels: Vec<usize> = (0..200).map(|i| i % 3).collect();
        let first = split_indices(200, &labels, 0.25, 11);
        assert_eq!(first, split_indices(200, &labels, 0.25, 11));
        assert_ne!(first.1, split_indices(200, &labels, 0.25, 12).1);
        assert_eq!(first.1.len(), 17 + 17 + 17);
    }

    #[test]
    fn count_beyond_labels_is_ignored() {
        let (train, valid) = split_indices(10, &[0, 0], 0.5, 1);
        assert_eq!((train.len(), valid.len()), (1, 1));
        assert_eq!(split_indices(0, &[], 0.5, 1), (vec![], vec![]));
    }
}
