//! fastai's `Brightness` and `Contrast` (`aug_transforms(max_lighting=…)`), merged as fastai
//! merges them: each pixel value in [0, 1] goes to logit space, gets the brightness's logit added
//! and is multiplied by the contrast, then comes back through the sigmoid. Each is drawn with
//! probability 0.75 (`p_lighting`); the same draw for every channel of an image.

use super::rng::SplitMix64;

/// fastai's `p_lighting`.
const P_LIGHTING: f32 = 0.75;

/// fastai's `logit` clamps to this distance from 0 and 1.
const EPSILON: f64 = 1e-7;

/// One image's lighting change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Lighting {
    /// fastai's brightness `change`: 0.5 leaves the image as it is.
    pub brightness: f64,
    /// fastai's contrast `scale`: 1 leaves the image as it is.
    pub contrast: f64,
}

fn logit(value: f64) -> f64 {
    let value = value.clamp(EPSILON, 1.0 - EPSILON);
    -(1.0 / value - 1.0).ln()
}

fn sigmoid(value: f64) -> f64 {
    1.0 / (1.0 + (-value).exp())
}

impl Lighting {
    pub(crate) const NONE: Lighting = Lighting { brightness: 0.5, contrast: 1.0 };

    /// Draws, in order: brightness applied?, its change, contrast applied?, its scale. fastai's
    /// ranges: change uniform in 0.5 · (1 ± max), scale log-uniform in [1 − max, 1 / (1 − max)].
    pub(crate) fn draw(max: f64, rng: &mut SplitMix64) -> Lighting {
        let mut lighting = Lighting::NONE;
        if rng.next_f32() < P_LIGHTING {
            lighting.brightness = 0.5 * (1.0 - max) + max * f64::from(rng.next_f32());
        }
        if rng.next_f32() < P_LIGHTING {
            let bound = -(1.0 - max).ln();
            lighting.contrast = (-bound + 2.0 * bound * f64::from(rng.next_f32())).exp();
        }
        lighting
    }

    /// On a normalised CHW image (`(v − mean) / std` per channel): back to [0, 1], changed, and
    /// normalised again.
    pub(crate) fn apply(&self, image: &mut [f32], plane: usize, mean: &[f32], std: &[f32]) {
        if *self == Lighting::NONE || plane == 0 {
            return;
        }
        let shift = logit(self.brightness);
        for (channel, values) in image.chunks_exact_mut(plane).enumerate() {
            let (mean, std) = (f64::from(mean[channel.min(mean.len() - 1)]), f64::from(std[channel.min(std.len() - 1)]));
            for value in values {
                let pixel = f64::from(*value) * std + mean;
                let changed = sigmoid((logit(pixel) + shift) * self.contrast);
                *value = ((changed - mean) / std) as f32;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn brightness_of(lighting: Lighting, pixels: &[f32]) -> f64 {
        let mut image = pixels.to_vec();
        lighting.apply(&mut image, pixels.len(), &[0.0], &[1.0]);
        image.iter().map(|&v| f64::from(v)).sum::<f64>() / image.len() as f64
    }

    /// fastai's meaning: a change above 0.5 brightens, below darkens; a contrast above 1 spreads
    /// the values from the middle, below 1 pulls them in; 0.5 and 1 leave the image unchanged.
    #[test]
    fn brightness_and_contrast_move_the_pixels_as_fastai_does() {
        let pixels = [0.1f32, 0.3, 0.5, 0.7, 0.9];
        let mean = brightness_of(Lighting::NONE, &pixels);
        assert_eq!(mean, brightness_of(Lighting { brightness: 0.5, contrast: 1.0 }, &pixels));
        assert!(brightness_of(Lighting { brightness: 0.6, contrast: 1.0 }, &pixels) > mean + 0.05);
        assert!(brightness_of(Lighting { brightness: 0.4, contrast: 1.0 }, &pixels) < mean - 0.05);
        let spread = |lighting: Lighting| {
            let mut image = pixels.to_vec();
            lighting.apply(&mut image, pixels.len(), &[0.0], &[1.0]);
            image[4] - image[0]
        };
        assert!(spread(Lighting { brightness: 0.5, contrast: 1.5 }) > 0.8 + 0.05);
        assert!(spread(Lighting { brightness: 0.5, contrast: 0.7 }) < 0.8 - 0.05);
    }

    /// The draws stay in fastai's ranges, and about three in four images are changed.
    #[test]
    fn draws_stay_in_fastais_ranges() {
        let mut rng = SplitMix64::new(3);
        let max = 0.2;
        let draws: Vec<Lighting> = (0..2000).map(|_| Lighting::draw(max, &mut rng)).collect();
        assert!(draws.iter().all(|d| (0.4..=0.6).contains(&d.brightness) && (0.8..=1.25).contains(&d.contrast)));
        let brightened = draws.iter().filter(|d| d.brightness != 0.5).count() as f64 / 2000.0;
        assert!((0.72..0.78).contains(&brightened), "{brightened}");
    }
}
