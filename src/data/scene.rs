//! One synthetic picture: a shape placed on a textured background, rendered at any size.
//! Everything random is drawn up front in image units (0..1), so the same scene rendered at
//! 16 or 64 pixels shows the same picture, which is what progressive resizing relies on.

use super::decoded::DecodedImage;
use super::rng::SplitMix64;
use super::shape::{Point, Shape};

/// Which rotations keep a class recognisable: stripes turned 90 degrees are the other class.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Rotation {
    Free,
    /// One of `angles` (radians), plus or minus `jitter`.
    Near { angles: &'static [f32], jitter: f32 },
}

type Rgb = [f32; 3];

#[derive(Debug, Clone, PartialEq)]
pub struct Scene {
    pub shape: Shape,
    /// Where the shape's origin lands, in image units.
    pub centre: Point,
    /// Image units per shape unit.
    pub scale: f32,
    pub rotation: f32,
    pub foreground: Rgb,
    /// Linear gradient from `background[0]` to `background[1]` along `gradient_direction`.
    pub background: [Rgb; 2],
    pub gradient_direction: Point,
    /// Two faint sine waves on the background (frequency vector in cycles per image, phase).
    pub texture: [(Point, f32); 2],
    pub texture_amplitude: f32,
    /// Per-pixel noise, plus or minus this much (0..1 scale).
    pub noise: f32,
    pub noise_seed: u64,
}

impl Scene {
    /// Place `shape` at a random position, scale and rotation, with random colours, texture
    /// and noise strength. The foreground differs from the background in brightness.
    pub fn random(shape: Shape, rotation: Rotation, rng: &mut SplitMix64) -> Scene {
        let centre = (rng.range_f32(0.38, 0.62), rng.range_f32(0.38, 0.62));
        let scale = rng.range_f32(0.26, 0.38);
        let rotation = match rotation {
            Rotation::Free => rng.range_f32(0.0, std::f32::consts::TAU),
            Rotation::Near { angles, jitter } => {
                let base = angles.get(rng.below(angles.len())).copied().unwrap_or(0.0);
                base + rng.range_f32(-jitter, jitter)
            }
        };
        let background_start = random_colour(rng);
        let background_end = background_start.map(|c| (c + rng.range_f32(-0.2, 0.2)).clamp(0.0, 1.0));
        let foreground = contrasting_colour(luminance(background_start), rng);
        let gradient_angle = rng.range_f32(0.0, std::f32::consts::TAU);
        let mut wave = || {
            let angle = rng.range_f32(0.0, std::f32::consts::TAU);
            let cycles = rng.range_f32(1.0, 3.5);
            let phase = rng.range_f32(0.0, std::f32::consts::TAU);
            ((cycles * angle.cos(), cycles * angle.sin()), phase)
        };
        let texture = [wave(), wave()];
        Scene {
            shape,
            centre,
            scale,
            rotation,
            foreground,
            background: [background_start, background_end],
            gradient_direction: (gradient_angle.cos(), gradient_angle.sin()),
            texture,
            texture_amplitude: rng.range_f32(0.0, 0.07),
            noise: rng.range_f32(0.02, 0.08),
            noise_seed: rng.next_u64(),
        }
    }

    /// Render at `size` x `size`: shape coverage from a grid of samples per pixel (more for
    /// small sizes, where edges matter most), then background, texture and noise.
    pub fn render(&self, size: u32) -> DecodedImage {
        let side = size as usize;
        let samples = (96 / size.max(1)).clamp(2, 6) as usize;
        let (sin, cos) = (-self.rotation).sin_cos();
        let mut noise = SplitMix64::new(self.noise_seed);
        let mut pixels = Vec::with_capacity(side * side * 3);
        for row in 0..side {
            for column in 0..side {
                let mut inside = 0usize;
                for sub_row in 0..samples {
                    for sub_column in 0..samples {
                        let u = (column as f32 + (sub_column as f32 + 0.5) / samples as f32) / size as f32;
                        let v = (row as f32 + (sub_row as f32 + 0.5) / samples as f32) / size as f32;
                        inside += usize::from(self.shape.contains(self.to_shape_frame((u, v), sin, cos)));
                    }
                }
                let coverage = inside as f32 / (samples * samples) as f32;
                let centre = ((column as f32 + 0.5) / size as f32, (row as f32 + 0.5) / size as f32);
                let background = self.background_at(centre);
                for channel in 0..3 {
                    let mixed = background[channel] * (1.0 - coverage) + self.foreground[channel] * coverage;
                    // Triangular noise: the sum of two uniforms, centred on zero.
                    let jitter = self.noise * (noise.next_f32() + noise.next_f32() - 1.0);
                    pixels.push(((mixed + jitter).clamp(0.0, 1.0) * 255.0).round() as u8);
                }
            }
        }
        DecodedImage { width: size, height: size, pixels }
    }

    fn to_shape_frame(&self, (u, v): Point, sin: f32, cos: f32) -> Point {
        let (dx, dy) = (u - self.centre.0, v - self.centre.1);
        ((cos * dx - sin * dy) / self.scale, (sin * dx + cos * dy) / self.scale)
    }

    fn background_at(&self, (u, v): Point) -> Rgb {
        let along = ((u - 0.5) * self.gradient_direction.0 + (v - 0.5) * self.gradient_direction.1 + 0.5)
            .clamp(0.0, 1.0);
        let texture: f32 = self
            .texture
            .iter()
            .map(|((fx, fy), phase)| (std::f32::consts::TAU * (fx * u + fy * v) + phase).sin())
            .sum::<f32>()
            * self.texture_amplitude
            / 2.0;
        let [start, end] = self.background;
        std::array::from_fn(|c| start[c] + (end[c] - start[c]) * along + texture)
    }
}

fn random_colour(rng: &mut SplitMix64) -> Rgb {
    [rng.next_f32(), rng.next_f32(), rng.next_f32()]
}

fn luminance([r, g, b]: Rgb) -> f32 {
    0.299 * r + 0.587 * g + 0.114 * b
}

/// A colour at least 0.22 brighter or darker than `background`, so the shape is always visible
/// even to a colour-blind reader (and to a network that only sees one channel well).
/// Low enough that some pictures are hard, high enough that none is invisible.
const MIN_CONTRAST: f32 = 0.22;

fn contrasting_colour(background: f32, rng: &mut SplitMix64) -> Rgb {
    for _ in 0..32 {
        let colour = random_colour(rng);
        if (luminance(colour) - background).abs() >= MIN_CONTRAST {
            return colour;
        }
    }
    // Rare: fall back to a grey at the far end of the brightness range.
    let grey = if background > 0.5 { 0.1 } else { 0.9 };
    [grey; 3]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plain(shape: Shape) -> Scene {
        Scene {
            shape,
            centre: (0.5, 0.5),
            scale: 0.25,
            rotation: 0.0,
            foreground: [1.0, 1.0, 1.0],
            background: [[0.0; 3], [0.0; 3]],
            gradient_direction: (1.0, 0.0),
            texture: [((0.0, 0.0), 0.0); 2],
            texture_amplitude: 0.0,
            noise: 0.0,
            noise_seed: 0,
        }
    }

    #[test]
    fn renders_a_centred_square_at_any_size() {
        // Square of half 1 shape unit = a quarter of the image each side of the centre.
        let scene = plain(Shape::Square { half: 1.0 });
        for size in [8u32, 16, 32] {
            let image = scene.render(size);
            assert_eq!(image.pixels.len(), (size * size * 3) as usize);
            assert_eq!(image.pixel(size / 2, size / 2), Some([255; 3]));
            assert_eq!(image.pixel(0, 0), Some([0; 3]));
            assert_eq!(image.pixel(size / 4, size / 2), Some([255; 3]));
            assert_eq!(image.pixel(size / 4 - 1, size / 2), Some([0; 3]));
        }
    }

    #[test]
    fn edges_are_anti_aliased_and_rotation_turns_the_shape() {
        // A bar along x; turned a quarter, it runs along y.
        let mut scene = plain(Shape::Segment { from: (-1.8, 0.0), to: (1.8, 0.0), thickness: 0.5 });
        let flat = scene.render(16);
        scene.rotation = std::f32::consts::FRAC_PI_2;
        let turned = scene.render(16);
        assert_eq!(flat.pixel(2, 8), Some([255; 3]));
        assert_eq!(flat.pixel(8, 2), Some([0; 3]));
        assert_eq!(turned.pixel(8, 2), Some([255; 3]));
        assert_eq!(turned.pixel(2, 8), Some([0; 3]));
        // A circle's boundary pixels are partly covered.
        let disk = plain(Shape::Disk { centre: (0.0, 0.0), radius: 1.3 }).render(16);
        assert!(disk.pixels.iter().any(|&v| v > 20 && v < 235));
    }

    #[test]
    fn random_scenes_keep_contrast_and_limits() {
        let mut rng = SplitMix64::new(3);
        for _ in 0..200 {
            let scene = Scene::random(Shape::Square { half: 0.5 }, Rotation::Near { angles: &[0.0], jitter: 0.1 }, &mut rng);
            assert!((luminance(scene.foreground) - luminance(scene.background[0])).abs() >= MIN_CONTRAST);
            assert!(scene.rotation.abs() <= 0.1);
            assert!((0.26..0.38).contains(&scene.scale));
        }
    }
}
