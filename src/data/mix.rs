//! MixUp and CutMix on a training batch, as timm's `Mixup` does them in its `batch` mode: each
//! image is mixed with the image at the mirrored place in the batch (timm's `x.flip(0)`), with one
//! weight λ ~ Beta(α, α) for the whole batch. MixUp blends the two images, `λ·x + (1 − λ)·x'`;
//! CutMix pastes a box of the partner, of area about (1 − λ) of the image, at a random centre
//! (timm's `rand_bbox`), and λ becomes the share of the image left whole. With both on, each
//! batch takes one of them with probability 1/2 (timm's `switch_prob`). The loss is then
//! `λ·loss(y) + (1 − λ)·loss(y')`, as fastai's MixUp and CutMix callbacks compute it.

use super::rng::SplitMix64;
use crate::check::recipe::ImageAugment;

/// What a mixed batch trains against: each image's partner (an index into the batch) and the
/// weight of the image's own label.
#[derive(Debug, Clone, PartialEq)]
pub struct Mixed {
    pub partners: Vec<usize>,
    pub lambda: f64,
}

/// Mixes `images` ([batch, channels, size, size], in place) when `augment` asks for MixUp or
/// CutMix. Draws, in order: which of the two (only when both are on), λ, and CutMix's box centre.
pub fn mix_batch(images: &mut [f32], count: usize, size: usize, augment: &ImageAugment, rng: &mut SplitMix64) -> Option<Mixed> {
    if (augment.mixup <= 0.0 && augment.cutmix <= 0.0) || count == 0 {
        return None;
    }
    let cutmix = match (augment.mixup > 0.0, augment.cutmix > 0.0) {
        (true, true) => rng.next_f32() < 0.5,
        (false, cutmix) => cutmix,
        (true, false) => false,
    };
    let alpha = if cutmix { augment.cutmix } else { augment.mixup };
    let mut lambda = beta(alpha, rng);
    let per_image = images.len() / count;
    let partners: Vec<usize> = (0..count).rev().collect();
    let original = images.to_vec();
    if cutmix {
        // timm's rand_bbox: a box of sides √(1 − λ) of the image's, centred anywhere, clipped.
        let cut = ((1.0 - lambda).sqrt() * size as f64) as usize;
        let (centre_y, centre_x) = (rng.below(size), rng.below(size));
        let (top, bottom) = (centre_y.saturating_sub(cut / 2), (centre_y + cut / 2).min(size));
        let (left, right) = (centre_x.saturating_sub(cut / 2), (centre_x + cut / 2).min(size));
        let plane = size * size;
        for (image, &partner) in images.chunks_exact_mut(per_image).zip(&partners) {
            let from = &original[partner * per_image..(partner + 1) * per_image];
            for (channel, to) in image.chunks_exact_mut(plane).enumerate() {
                for row in top..bottom {
                    let at = channel * plane + row * size;
                    to[row * size + left..row * size + right].copy_from_slice(&from[at + left..at + right]);
                }
            }
        }
        // timm's `correct_lam`: the weight of what is left of each image.
        lambda = 1.0 - ((bottom - top) * (right - left)) as f64 / plane.max(1) as f64;
    } else {
        let own = lambda as f32;
        for (image, &partner) in images.chunks_exact_mut(per_image).zip(&partners) {
            let from = &original[partner * per_image..(partner + 1) * per_image];
            for (value, &other) in image.iter_mut().zip(from) {
                *value = own * *value + (1.0 - own) * other;
            }
        }
    }
    Some(Mixed { partners, lambda })
}

/// Beta(α, α) as X / (X + Y) with X, Y ~ Gamma(α).
fn beta(alpha: f64, rng: &mut SplitMix64) -> f64 {
    let x = gamma(alpha, rng);
    let y = gamma(alpha, rng);
    if x + y > 0.0 { x / (x + y) } else { 0.5 }
}

/// Gamma(α, 1): Marsaglia and Tsang's method for α ≥ 1, and Gamma(α + 1) · U^(1/α) below it.
fn gamma(alpha: f64, rng: &mut SplitMix64) -> f64 {
    if alpha < 1.0 {
        return gamma(alpha + 1.0, rng) * open_unit(rng).powf(1.0 / alpha);
    }
    let d = alpha - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let normal = (-2.0 * open_unit(rng).ln()).sqrt() * (2.0 * std::f64::consts::PI * open_unit(rng)).cos();
        let v = (1.0 + c * normal).powi(3);
        if v <= 0.0 {
            continue;
        }
        let u = open_unit(rng);
        if u.ln() < 0.5 * normal * normal + d - d * v + d * v.ln() {
            return d * v;
        }
    }
}

/// Uniform in (0, 1]: never 0, so that its logarithm is finite.
fn open_unit(rng: &mut SplitMix64) -> f64 {
    ((rng.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn augment(mixup: f64, cutmix: f64) -> ImageAugment {
        ImageAugment { mixup, cutmix, ..ImageAugment::NONE }
    }

    /// Beta(α, α) has mean 1/2 and variance 1 / (4 (2α + 1)): checked on 20 000 draws for
    /// fastai's MixUp α 0.4 (variance 0.139) and CutMix α 1 (uniform: 0.0833).
    #[test]
    fn lambda_follows_beta_alpha_alpha() {
        for alpha in [0.4, 1.0] {
            let mut rng = SplitMix64::new(9);
            let draws: Vec<f64> = (0..20_000).map(|_| beta(alpha, &mut rng)).collect();
            let mean = draws.iter().sum::<f64>() / draws.len() as f64;
            let variance = draws.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / draws.len() as f64;
            let expected = 1.0 / (4.0 * (2.0 * alpha + 1.0));
            assert!((mean - 0.5).abs() < 0.01, "α {alpha}: mean {mean}");
            assert!((variance - expected).abs() < 0.01, "α {alpha}: variance {variance}, not {expected}");
            assert!(draws.iter().all(|d| (0.0..=1.0).contains(d)));
        }
    }

    /// MixUp: every value is λ times its own plus (1 − λ) times its mirror's in the batch.
    #[test]
    fn mixup_blends_each_image_with_its_mirror() {
        let (count, size) = (3, 2);
        let original: Vec<f32> = (0..count * size * size).map(|v| v as f32).collect();
        let mut images = original.clone();
        let mixed = mix_batch(&mut images, count, size, &augment(0.4, 0.0), &mut SplitMix64::new(4)).unwrap();
        assert_eq!(mixed.partners, vec![2, 1, 0]);
        let own = mixed.lambda as f32;
        for (index, value) in images.iter().enumerate() {
            let (image, at) = (index / 4, index % 4);
            let expected = own * original[index] + (1.0 - own) * original[(count - 1 - image) * 4 + at];
            assert_eq!(*value, expected);
        }
    }

    /// CutMix: each image keeps λ of its pixels and takes the rest, one box, from its mirror.
    #[test]
    fn cutmix_pastes_one_box_whose_share_is_one_minus_lambda() {
        let (count, size) = (2, 16);
        let mut rng = SplitMix64::new(2);
        for _ in 0..50 {
            let mut images: Vec<f32> = (0..count * size * size).map(|v| if v < size * size { 0.0 } else { 1.0 }).collect();
            let mixed = mix_batch(&mut images, count, size, &augment(0.0, 1.0), &mut rng).unwrap();
            let pasted = images[..size * size].iter().filter(|&&v| v == 1.0).count();
            assert!((pasted as f64 / (size * size) as f64 - (1.0 - mixed.lambda)).abs() < 1e-12);
            let kept = images[size * size..].iter().filter(|&&v| v == 1.0).count();
            assert_eq!(kept + pasted, size * size, "the second image took the same box from the first");
        }
    }

    /// With both on, about half the batches take each; with neither, nothing is drawn.
    #[test]
    fn both_on_switch_half_the_time_and_off_draws_nothing() {
        let mut rng = SplitMix64::new(1);
        let mut cut = 0;
        for _ in 0..400 {
            let mut images = vec![0.5f32; 2 * 16];
            images[16..].fill(1.5);
            mix_batch(&mut images, 2, 4, &augment(0.4, 1.0), &mut rng).unwrap();
            // CutMix leaves whole values; MixUp blends every one.
            cut += usize::from(images.iter().all(|&v| v == 0.5 || v == 1.5));
        }
        assert!((160..240).contains(&cut), "{cut} of 400");
        let mut untouched = SplitMix64::new(1);
        assert_eq!(mix_batch(&mut [0.0; 4], 1, 2, &ImageAugment::NONE, &mut untouched), None);
        assert_eq!(untouched, SplitMix64::new(1));
    }
}
