//! Built-in procedural data sets for the demo: no files, no downloads. Two related tasks share
//! the same drawing primitives, so features learned on the source transfer to the target.

use std::f32::consts::{FRAC_PI_4, TAU};

use rayon::prelude::*;

use super::decoded::{DecodedImage, MAX_IMAGE_SIDE};
use super::rng::{SplitMix64, mix64};
use super::scene::{Rotation, Scene};
use super::shape::Shape;
use crate::diagnostics::{Code, Diagnostic};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SyntheticTask {
    /// Ten single-primitive classes: the "pretraining" task.
    ShapesSource,
    /// Five classes composed from the same primitives: the "fine-tuning" task.
    ShapesTarget,
}

const TASK_NAMES: [&str; 2] = ["shapes-source", "shapes-target"];

/// Names accepted by `generate`, for help texts and `tlrun data export`.
pub fn task_names() -> &'static [&'static str] {
    &TASK_NAMES
}

impl SyntheticTask {
    pub const ALL: [SyntheticTask; 2] = [SyntheticTask::ShapesSource, SyntheticTask::ShapesTarget];

    pub fn name(self) -> &'static str {
        match self {
            SyntheticTask::ShapesSource => TASK_NAMES[0],
            SyntheticTask::ShapesTarget => TASK_NAMES[1],
        }
    }

    pub fn from_name(name: &str) -> Option<SyntheticTask> {
        SyntheticTask::ALL.into_iter().find(|task| task.name() == name)
    }

    pub fn classes(self) -> &'static [Motif] {
        match self {
            SyntheticTask::ShapesSource => &[
                Motif::Circle,
                Motif::Square,
                Motif::Triangle,
                Motif::Plus,
                Motif::Ring,
                Motif::Star,
                Motif::HorizontalStripes,
                Motif::VerticalStripes,
                Motif::DiagonalLine,
                Motif::TwoDots,
            ],
            SyntheticTask::ShapesTarget => &[
                Motif::CircleInSquare,
                Motif::TwoCircles,
                Motif::LShape,
                Motif::Checker,
                Motif::Arrow,
            ],
        }
    }

    pub fn class_names(self) -> Vec<String> {
        self.classes().iter().map(|motif| motif.name().to_string()).collect()
    }
}

/// What one class draws, with its own random proportions per image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Motif {
    Circle,
    Square,
    Triangle,
    Plus,
    Ring,
    Star,
    HorizontalStripes,
    VerticalStripes,
    DiagonalLine,
    TwoDots,
    CircleInSquare,
    TwoCircles,
    LShape,
    Checker,
    Arrow,
}

/// Turning these by a quarter makes another class (or the same picture), so keep them upright.
const UPRIGHT: Rotation = Rotation::Near { angles: &[0.0], jitter: 0.2 };

impl Motif {
    pub fn name(self) -> &'static str {
        match self {
            Motif::Circle => "circle",
            Motif::Square => "square",
            Motif::Triangle => "triangle",
            Motif::Plus => "plus",
            Motif::Ring => "ring",
            Motif::Star => "star",
            Motif::HorizontalStripes => "horizontal-stripes",
            Motif::VerticalStripes => "vertical-stripes",
            Motif::DiagonalLine => "diagonal-line",
            Motif::TwoDots => "two-dots",
            Motif::CircleInSquare => "circle-in-square",
            Motif::TwoCircles => "two-circles",
            Motif::LShape => "l-shape",
            Motif::Checker => "checker",
            Motif::Arrow => "arrow",
        }
    }

    /// The shape in its unit frame (about [-1, 1]) and the rotations it may take.
    pub fn draw(self, rng: &mut SplitMix64) -> (Shape, Rotation) {
        let thickness = rng.range_f32(0.18, 0.3);
        match self {
            Motif::Circle => (Shape::Disk { centre: (0.0, 0.0), radius: rng.range_f32(0.7, 1.0) }, Rotation::Free),
            Motif::Square => (Shape::Square { half: rng.range_f32(0.6, 0.85) }, Rotation::Free),
            Motif::Triangle => {
                let radius = rng.range_f32(0.8, 1.05);
                let corners = (0..3)
                    .map(|k| {
                        let angle = TAU * k as f32 / 3.0;
                        (radius * angle.cos(), radius * angle.sin())
                    })
                    .collect();
                (Shape::Polygon { corners }, Rotation::Free)
            }
            Motif::Plus => {
                let arm = rng.range_f32(0.75, 1.0);
                let bar = |from, to| Shape::Segment { from, to, thickness };
                (Shape::Union(vec![bar((-arm, 0.0), (arm, 0.0)), bar((0.0, -arm), (0.0, arm))]), UPRIGHT)
            }
            Motif::Ring => {
                let ring = Shape::Ring { centre: (0.0, 0.0), radius: rng.range_f32(0.65, 0.95), thickness };
                (ring, Rotation::Free)
            }
            Motif::Star => {
                let outer = rng.range_f32(0.85, 1.05);
                let inner = outer * rng.range_f32(0.38, 0.5);
                (Shape::Star { points: 5, outer, inner }, Rotation::Free)
            }
            Motif::HorizontalStripes | Motif::VerticalStripes => {
                let stripes = Shape::Stripes {
                    vertical: self == Motif::VerticalStripes,
                    count: 3 + rng.below(2) as u32,
                    half: rng.range_f32(0.7, 0.95),
                };
                (stripes, UPRIGHT)
            }
            Motif::DiagonalLine => {
                let half_length = rng.range_f32(0.8, 1.1);
                let line = Shape::Segment { from: (-half_length, 0.0), to: (half_length, 0.0), thickness };
                (line, Rotation::Near { angles: &[FRAC_PI_4, -FRAC_PI_4], jitter: 0.2 })
            }
            Motif::TwoDots => {
                let apart = rng.range_f32(0.45, 0.65);
                let radius = rng.range_f32(0.22, 0.32);
                let dot = |x| Shape::Disk { centre: (x, 0.0), radius };
                (Shape::Union(vec![dot(-apart), dot(apart)]), Rotation::Free)
            }
            Motif::CircleInSquare => {
                let frame = Shape::SquareOutline { half: rng.range_f32(0.75, 0.95), thickness };
                let disk = Shape::Disk { centre: (0.0, 0.0), radius: rng.range_f32(0.3, 0.45) };
                (Shape::Union(vec![frame, disk]), Rotation::Free)
            }
            Motif::TwoCircles => {
                let apart = rng.range_f32(0.45, 0.55);
                let radius = rng.range_f32(0.35, 0.45);
                let circle = |x| Shape::Ring { centre: (x, 0.0), radius, thickness: thickness * 0.7 };
                (Shape::Union(vec![circle(-apart), circle(apart)]), Rotation::Free)
            }
            Motif::LShape => {
                let (width, height) = (rng.range_f32(0.9, 1.3), rng.range_f32(1.2, 1.6));
                let (left, bottom) = (-width / 2.0, height / 2.0);
                let bar = |from, to| Shape::Segment { from, to, thickness };
                let stem = bar((left, -height / 2.0), (left, bottom));
                let foot = bar((left, bottom), (width / 2.0, bottom));
                (Shape::Union(vec![stem, foot]), Rotation::Free)
            }
            Motif::Checker => {
                let board = Shape::Checker { cells: 3 + rng.below(2) as u32, half: rng.range_f32(0.65, 0.9) };
                (board, Rotation::Free)
            }
            Motif::Arrow => {
                let head = rng.range_f32(0.4, 0.55);
                let shaft = Shape::Segment { from: (-0.9, 0.0), to: (0.2, 0.0), thickness };
                let tip = Shape::Polygon { corners: vec![(0.1, -head), (0.95, 0.0), (0.1, head)] };
                (Shape::Union(vec![shaft, tip]), Rotation::Free)
            }
        }
    }
}

/// Classes, images (class by class, `images_per_class` each) and labels for a built-in task.
/// Each image depends only on (task, seed, class, index), never on `size`: the same seed draws
/// the same scenes at every size, and images render in parallel without changing the result.
pub fn generate(
    task_name: &str,
    images_per_class: usize,
    size: u32,
    seed: u64,
) -> Result<(Vec<String>, Vec<DecodedImage>, Vec<usize>), Diagnostic> {
    let task = SyntheticTask::from_name(task_name).ok_or_else(|| {
        let known: Vec<String> = task_names().iter().map(|name| format!("`{name}`")).collect();
        Diagnostic::new(
            Code::DataFolderMissing,
            format!("there is no built-in data set `{task_name}` (built-in: {})", known.join(", ")),
        )
            .with_suggestion(task_name, task_names().iter().copied(), "built-in data sets")
    })?;
    if size == 0 || size > MAX_IMAGE_SIDE {
        return Err(Diagnostic::new(
            Code::ValueOutOfRange,
            format!("synthetic image size {size} must be between 1 and {MAX_IMAGE_SIDE}"),
        ));
    }
    if images_per_class == 0 {
        return Err(Diagnostic::new(
            Code::EmptyClass,
            format!("built-in data set `{task_name}` needs at least one image per class"),
        ));
    }
    let task_stream = mix64(task as u64 + 1);
    let motifs = task.classes();
    let jobs: Vec<(usize, usize)> =
        (0..motifs.len()).flat_map(|label| (0..images_per_class).map(move |index| (label, index))).collect();
    let images = jobs
        .par_iter()
        .map(|&(label, index)| {
            let stream = task_stream ^ ((label as u64) << 40) ^ index as u64;
            let mut rng = SplitMix64::for_stream(seed, stream);
            let (shape, rotation) = motifs[label].draw(&mut rng);
            Scene::random(shape, rotation, &mut rng).render(size)
        })
        .collect();
    let labels = jobs.iter().map(|&(label, _)| label).collect();
    Ok((task.class_names(), images, labels))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_and_class_counts() {
        assert_eq!(task_names(), &["shapes-source", "shapes-target"]);
        let (classes, images, labels) = generate("shapes-source", 2, 16, 1).unwrap();
        assert_eq!(classes.len(), 10);
        assert_eq!(images.len(), 20);
        assert_eq!(labels, (0..10).flat_map(|c| [c, c]).collect::<Vec<_>>());
        assert!(images.iter().all(|image| image.width == 16 && image.pixels.len() == 16 * 16 * 3));
        let (target, _, _) = generate("shapes-target", 1, 16, 1).unwrap();
        assert_eq!(target, vec!["circle-in-square", "two-circles", "l-shape", "checker", "arrow"]);
        assert!(target.iter().all(|class| !classes.contains(class)));
    }

    #[test]
    fn same_seed_same_pixels_and_different_seed_differs() {
        let first = generate("shapes-target", 3, 24, 42).unwrap();
        let again = generate("shapes-target", 3, 24, 42).unwrap();
        assert_eq!(first.1, again.1);
        let other = generate("shapes-target", 3, 24, 43).unwrap();
        assert_ne!(first.1, other.1);
        // Asking for more images keeps the earlier ones.
        let more = generate("shapes-target", 4, 24, 42).unwrap();
        assert_eq!(more.1[0], first.1[0]);
    }

    /// Mean absolute difference (0..255) between a large image shrunk by box filter and a small one.
    fn mismatch(large: &DecodedImage, small: &DecodedImage) -> f64 {
        let factor = (large.width / small.width) as usize;
        let mut total = 0.0;
        for y in 0..small.height as usize {
            for x in 0..small.width as usize {
                for c in 0..3 {
                    let mut sum = 0.0;
                    for dy in 0..factor {
                        for dx in 0..factor {
                            let (lx, ly) = (x * factor + dx, y * factor + dy);
                            sum += f64::from(large.pixels[(ly * large.width as usize + lx) * 3 + c]);
                        }
                    }
                    let small_value = f64::from(small.pixels[(y * small.width as usize + x) * 3 + c]);
                    total += (sum / (factor * factor) as f64 - small_value).abs();
                }
            }
        }
        total / (small.pixels.len() as f64)
    }

    #[test]
    fn sizes_render_the_same_scenes() {
        let (_, small, labels) = generate("shapes-source", 2, 16, 7).unwrap();
        let (_, large, large_labels) = generate("shapes-source", 2, 64, 7).unwrap();
        assert_eq!(labels, large_labels);
        for index in 0..small.len() {
            // Same scene: only noise and anti-aliasing differ. Another image is far off.
            let same = mismatch(&large[index], &small[index]);
            let other = mismatch(&large[(index + 3) % large.len()], &small[index]);
            assert!(same < 12.0, "image {index}: {same}");
            assert!(other > 2.0 * same, "image {index}: same {same}, other {other}");
        }
    }

    #[test]
    fn shapes_stand_out_from_the_background() {
        // Every image spans a clear brightness range: the shape is never lost in the background.
        let (_, images, _) = generate("shapes-source", 3, 32, 5).unwrap();
        for image in &images {
            let brightness = image.pixels.chunks(3).map(|p| {
                0.299 * f64::from(p[0]) + 0.587 * f64::from(p[1]) + 0.114 * f64::from(p[2])
            });
            let (low, high) = brightness.fold((255.0f64, 0.0f64), |(lo, hi), v| (lo.min(v), hi.max(v)));
            assert!(high - low > 40.0, "brightness range {}", high - low);
        }
    }

    #[test]
    fn unknown_task_and_bad_sizes_are_errors() {
        let error = generate("shapes", 1, 16, 0).unwrap_err();
        assert_eq!(error.code, Code::DataFolderMissing);
        assert!(error.message.contains("`shapes-source`, `shapes-target`"), "{}", error.message);
        assert!(generate("shapes-source", 1, 0, 0).is_err());
        assert!(generate("shapes-source", 0, 16, 0).is_err());
    }
}
