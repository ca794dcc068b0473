//! Training-time augmentation of one normalised CHW image: random flip and padded random crop
//! (pixel moves, no resampling), then fastai's rotation, zoom and warp as one resample
//! (`resample.rs`), then its brightness and contrast (`lighting.rs`). Validation and prediction
//! never come here (`Augment::NONE`).

use super::lighting::Lighting;
use super::resample::{SourceMap, resample};
use super::rng::SplitMix64;
use crate::check::recipe::{Data, ImageAugment};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Augment {
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
    /// Pad each side by this many pixels, then crop back to the original size at a random
    /// offset. Padding is 0.0, the data set's mean after normalisation.
    pub crop_padding: u32,
    /// fastai's `aug_transforms` amounts.
    pub image: ImageAugment,
    /// The normalisation the images carry, per channel: lighting works on pixels in [0, 1].
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Augment {
    /// For validation and prediction.
    pub const NONE: Augment = Augment { flip: false, crop_padding: 0, image: ImageAugment::NONE, mean: [0.0; 3], std: [1.0; 3] };

    /// Flip and crop only.
    pub fn flip_and_crop(flip: bool, crop_padding: u32) -> Augment {
        Augment { flip, crop_padding, ..Augment::NONE }
    }

    pub fn from_data(data: &Data) -> Augment {
        let per_channel = |values: &[f64], fallback: f32| std::array::from_fn(|channel| values.get(channel).or(values.last()).map_or(fallback, |&v| v as f32));
        Augment { flip: data.flip, crop_padding: data.crop_padding, image: data.augment, mean: per_channel(&data.mean, 0.0), std: per_channel(&data.std, 1.0) }
    }

    pub fn is_none(&self) -> bool {
        !self.flip && self.crop_padding == 0 && self.image.is_none()
    }

    /// Write `image` (CHW, `size` x `size`) into `out` (same length), transformed. Draws from
    /// `rng` in a fixed order (flip, the crop's x and y offsets, then the resample's and the
    /// lighting's draws, each only when its option is on) so a resumed run replays it, and a
    /// recipe without the newer options draws what it drew before them.
    pub fn apply(&self, image: &[f32], size: usize, rng: &mut SplitMix64, out: &mut [f32]) {
        self.flip_and_shift(image, size, rng, out);
        let plane = size * size;
        if self.image.resamples() {
            let map = SourceMap::draw(&self.image, rng);
            if !map.is_identity() {
                let moved = out.to_vec();
                resample(&moved, size, &map, out);
            }
        }
        if self.image.lighting > 0.0 {
            Lighting::draw(self.image.lighting, rng).apply(out, plane, &self.mean, &self.std);
        }
    }

    fn flip_and_shift(&self, image: &[f32], size: usize, rng: &mut SplitMix64, out: &mut [f32]) {
        let flipped = self.flip && rng.next_f32() < 0.5;
        let padding = self.crop_padding as usize;
        let (shift_x, shift_y) = if padding > 0 {
            let offsets = 2 * padding + 1;
            let dx = rng.below(offsets) as isize - padding as isize;
            let dy = rng.below(offsets) as isize - padding as isize;
            (dx, dy)
        } else {
            (0, 0)
        };
        let plane = size * size;
        if plane == 0 {
            return;
        }
        let side = size as isize;
        for (source, target) in image.chunks_exact(plane).zip(out.chunks_exact_mut(plane)) {
            for y in 0..side {
                let source_y = y + shift_y;
                for x in 0..side {
                    let source_x = x + shift_x;
                    let inside = (0..side).contains(&source_y) && (0..side).contains(&source_x);
                    let value = if inside {
                        let column = if flipped { side - 1 - source_x } else { source_x };
                        source[(source_y * side + column) as usize]
                    } else {
                        0.0
                    };
                    target[(y * side + x) as usize] = value;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One channel, 3x3, values 1..=9 row by row.
    fn tiny() -> Vec<f32> {
        (1..=9).map(|v| v as f32).collect()
    }

    fn run(augment: Augment, seed: u64) -> Vec<f32> {
        let mut out = vec![-1.0; 9];
        augment.apply(&tiny(), 3, &mut SplitMix64::new(seed), &mut out);
        out
    }

    #[test]
    fn none_copies() {
        assert_eq!(run(Augment::NONE, 0), tiny());
    }

    #[test]
    fn flip_mirrors_rows_about_half_the_time() {
        let mirrored = vec![3.0, 2.0, 1.0, 6.0, 5.0, 4.0, 9.0, 8.0, 7.0];
        let flip = Augment::flip_and_crop(true, 0);
        let mut flips = 0;
        for seed in 0..200 {
            let out = run(flip, seed);
            assert!(out == mirrored || out == tiny(), "{out:?}");
            flips += usize::from(out == mirrored);
        }
        assert!((70..130).contains(&flips), "{flips} flips in 200");
    }

    #[test]
    fn crop_shifts_in_zeros() {
        let crop = Augment::flip_and_crop(false, 1);
        let mut seen = std::collections::HashSet::new();
        for seed in 0..100 {
            let out = run(crop, seed);
            // Every output is the image shifted by (dx, dy) in -1..=1 with zeros shifted in.
            let shift = (-1..=1)
                .flat_map(|dy| (-1..=1).map(move |dx| (dx, dy)))
                .find(|&(dx, dy)| {
                    (0..3).all(|y: i32| {
                        (0..3).all(|x: i32| {
                            let (sx, sy) = (x + dx, y + dy);
                            let want = if (0..3).contains(&sx) && (0..3).contains(&sy) {
                                (sy * 3 + sx + 1) as f32
                            } else {
                                0.0
                            };
                            out[(y * 3 + x) as usize] == want
                        })
                    })
                });
            seen.insert(shift.expect("output is a shifted copy"));
        }
        assert_eq!(seen.len(), 9, "all nine offsets occur: {seen:?}");
    }

    #[test]
    fn known_shift_and_flip() {
        // Find a seed whose draws flip and shift by (+1, 0), then check the exact pixels.
        let both = Augment::flip_and_crop(true, 1);
        let seed = (0..1000)
            .find(|&seed| {
                let mut rng = SplitMix64::new(seed);
                rng.next_f32() < 0.5 && rng.below(3) == 2 && rng.below(3) == 1
            })
            .unwrap();
        // Flipped rows are [3 2 1]; shifting right by one reads columns 1, 2 and then padding.
        assert_eq!(run(both, seed), vec![2.0, 1.0, 0.0, 5.0, 4.0, 0.0, 8.0, 7.0, 0.0]);
    }

    /// A 32×32 image, 0 everywhere but a horizontal bar of 1s across its middle.
    fn bar() -> Vec<f32> {
        (0..32 * 32).map(|i| if (15..17).contains(&(i / 32)) && (4..28).contains(&(i % 32)) { 1.0 } else { 0.0 }).collect()
    }

    /// The bar's angle from the horizontal, in degrees, from its second moments.
    fn orientation(image: &[f32]) -> f64 {
        let total: f64 = image.iter().map(|&v| f64::from(v)).sum();
        let at = |i: usize| ((i % 32) as f64, (i / 32) as f64, f64::from(image[i]));
        let (mx, my) = (0..image.len()).map(at).fold((0.0, 0.0), |(x, y), (c, r, v)| (x + c * v / total, y + r * v / total));
        let (mut xx, mut yy, mut xy) = (0.0, 0.0, 0.0);
        for (c, r, v) in (0..image.len()).map(at) {
            xx += v * (c - mx) * (c - mx);
            yy += v * (r - my) * (r - my);
            xy += v * (c - mx) * (r - my);
        }
        (0.5 * (2.0 * xy).atan2(xx - yy)).to_degrees()
    }

    /// `rotate 20`: the bar comes out turned by at most 20°, about three images in four are
    /// turned (fastai's p_affine 0.75), the angles spread over the range, and the same seed gives
    /// the same bits.
    #[test]
    fn rotation_turns_images_within_the_limit_three_times_in_four() {
        let augment = Augment { image: ImageAugment { rotate: 20.0, ..ImageAugment::NONE }, ..Augment::NONE };
        let image = bar();
        let angles: Vec<f64> = (0..400)
            .map(|seed| {
                let mut out = vec![0.0; image.len()];
                augment.apply(&image, 32, &mut SplitMix64::new(seed), &mut out);
                orientation(&out)
            })
            .collect();
        assert!(angles.iter().all(|angle| angle.abs() <= 21.0), "{angles:?}");
        let turned = angles.iter().filter(|angle| angle.abs() > 0.5).count() as f64 / angles.len() as f64;
        assert!((0.68..0.82).contains(&turned), "{turned} of the images turned");
        assert!(angles.iter().any(|angle| angle.abs() > 15.0) && angles.iter().any(|angle| (0.5..5.0).contains(&angle.abs())));
        let twice = |seed| {
            let mut out = vec![0.0; image.len()];
            augment.apply(&image, 32, &mut SplitMix64::new(seed), &mut out);
            out
        };
        assert_eq!(twice(7), twice(7));
    }

    /// `lighting 0.4` on a grey image of 0.5 (logit 0): a pixel comes out as sigmoid(logit(b) · c)
    /// for fastai's brightness b in 0.5 · (1 ± 0.4) and contrast c in [0.6, 1/0.6], so within
    /// sigmoid(±logit(0.7) / 0.6) = 0.196–0.804; changed when the brightness applies, three times
    /// in four; the same change for every pixel and channel.
    #[test]
    fn lighting_moves_brightness_in_fastais_range() {
        let augment = Augment { image: ImageAugment { lighting: 0.4, ..ImageAugment::NONE }, mean: [0.25; 3], std: [0.5; 3], ..Augment::NONE };
        let grey = vec![0.5f32; 3 * 4 * 4]; // (0.5 − 0.25) / 0.5: a pixel value of 0.5
        let means: Vec<f64> = (0..400)
            .map(|seed| {
                let mut out = vec![0.0; grey.len()];
                augment.apply(&grey, 4, &mut SplitMix64::new(seed), &mut out);
                assert!(out.windows(2).all(|pair| pair[0] == pair[1]), "one change for every pixel and channel");
                f64::from(out[0]) * 0.5 + 0.25
            })
            .collect();
        assert!(means.iter().all(|mean| (0.195..=0.805).contains(mean)), "{means:?}");
        let changed = means.iter().filter(|mean| (**mean - 0.5).abs() > 1e-6).count() as f64 / means.len() as f64;
        assert!((0.68..0.82).contains(&changed), "{changed}");
        assert!(means.iter().any(|mean| *mean < 0.3) && means.iter().any(|mean| *mean > 0.7), "both ways, beyond brightness alone");
    }

    /// Options left off draw nothing: a recipe with flip and crop only draws what it drew before
    /// rotation, zoom, warp and lighting existed, so its runs keep their bits.
    #[test]
    fn options_left_off_draw_nothing() {
        let mut rng = SplitMix64::new(11);
        let mut out = vec![0.0; 9];
        Augment::flip_and_crop(true, 1).apply(&tiny(), 3, &mut rng, &mut out);
        let mut expected = SplitMix64::new(11);
        let _ = (expected.next_f32(), expected.below(3), expected.below(3));
        assert_eq!(rng.state(), expected.state());
    }
}
