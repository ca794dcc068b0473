//! Training-time augmentation of one normalised CHW image: random flip and padded random crop.

use super::rng::SplitMix64;
use crate::check::recipe::Data;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Augment {
    /// Mirror left-right with probability 1/2.
    pub flip: bool,
    /// Pad each side by this many pixels, then crop back to the original size at a random
    /// offset. Padding is 0.0, the data set's mean after normalisation.
    pub crop_padding: u32,
}

impl Augment {
    /// For validation and prediction.
    pub const NONE: Augment = Augment { flip: false, crop_padding: 0 };

    pub fn from_data(data: &Data) -> Augment {
        Augment { flip: data.flip, crop_padding: data.crop_padding }
    }

    pub fn is_none(&self) -> bool {
        !self.flip && self.crop_padding == 0
    }

    /// Write `image` (CHW, `size` x `size`) into `out` (same length), transformed.
    /// Draws from `rng` in a fixed order (flip, then x and y offsets) so a resumed run replays it.
    pub fn apply(&self, image: &[f32], size: usize, rng: &mut SplitMix64, out: &mut [f32]) {
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
        let flip = Augment { flip: true, crop_padding: 0 };
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
        let crop = Augment { flip: false, crop_padding: 1 };
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
        let both = Augment { flip: true, crop_padding: 1 };
        let seed = (0..1000)
            .find(|&seed| {
                let mut rng = SplitMix64::new(seed);
                rng.next_f32() < 0.5 && rng.below(3) == 2 && rng.below(3) == 1
            })
            .unwrap();
        // Flipped rows are [3 2 1]; shifting right by one reads columns 1, 2 and then padding.
        assert_eq!(run(both, seed), vec![2.0, 1.0, 0.0, 5.0, 4.0, 0.0, 8.0, 7.0, 0.0]);
    }
}
