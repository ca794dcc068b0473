//! fastai's affine augmentations (`Warp`, `Rotate`, `Zoom` of `aug_transforms`) as one resample of
//! a square image, as fastai merges them (`setup_aug_tfms`): every output pixel's coordinates, in
//! [-1, 1] with the corners at ±1 (`align_corners=True`), go through the rotation times the zoom,
//! then the corner warp (a perspective transform), and the image is read there bilinearly,
//! reflected at its edges (fastai's `pad_mode='reflection'`). Each part is drawn with probability
//! 0.75 (`p_affine`), from the caller's generator, in a fixed order.

use super::rng::SplitMix64;
use crate::check::recipe::ImageAugment;

/// fastai's `p_affine`: each affine part applies to three images in four.
const P_AFFINE: f32 = 0.75;

/// Where each output pixel reads: a drawn rotation × zoom, and a drawn perspective warp.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SourceMap {
    /// Rows of the 2×3 affine matrix on (x, y, 1).
    affine: [[f64; 3]; 2],
    /// The warp's 8 coefficients (the ninth is 1), or none.
    warp: Option<[f64; 8]>,
}

impl SourceMap {
    pub(crate) const IDENTITY: SourceMap = SourceMap { affine: [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], warp: None };

    /// One image's transform. Draws, in order and only for the parts `augment` turns on: warp
    /// (applied?, x move, applied?, y move), rotation (applied?, angle), zoom (applied?, factor,
    /// column, row).
    pub(crate) fn draw(augment: &ImageAugment, rng: &mut SplitMix64) -> SourceMap {
        let applied = |rng: &mut SplitMix64| rng.next_f32() < P_AFFINE;
        let uniform = |rng: &mut SplitMix64, low: f64, high: f64| low + (high - low) * f64::from(rng.next_f32());
        let mut warp = None;
        if augment.warp > 0.0 {
            let x_move = if applied(rng) { uniform(rng, -augment.warp, augment.warp) } else { 0.0 };
            let y_move = if applied(rng) { uniform(rng, -augment.warp, augment.warp) } else { 0.0 };
            if x_move != 0.0 || y_move != 0.0 {
                warp = perspective(x_move, y_move);
            }
        }
        let mut angle = 0.0f64;
        if augment.rotate > 0.0 && applied(rng) {
            angle = uniform(rng, -augment.rotate, augment.rotate).to_radians();
        }
        let (mut scale, mut column, mut row) = (1.0, 0.0, 0.0);
        if augment.zoom > 1.0 && applied(rng) {
            scale = 1.0 / uniform(rng, 1.0, augment.zoom);
            // fastai's zoom_mat: the zoomed window sits anywhere inside the image.
            column = (1.0 - scale) * (2.0 * uniform(rng, 0.0, 1.0) - 1.0);
            row = (1.0 - scale) * (2.0 * uniform(rng, 0.0, 1.0) - 1.0);
        }
        // fastai's rotate_mat [[cos, sin], [−sin, cos]] times zoom_mat [[s, 0, c], [0, s, r]].
        let (sin, cos) = angle.sin_cos();
        let affine = [[cos * scale, sin * scale, cos * column + sin * row], [-sin * scale, cos * scale, -sin * column + cos * row]];
        SourceMap { affine, warp }
    }

    pub(crate) fn is_identity(&self) -> bool {
        *self == SourceMap::IDENTITY
    }

    /// Where output point (x, y) reads, both in [-1, 1] coordinates.
    pub(crate) fn source(&self, x: f64, y: f64) -> (f64, f64) {
        let [a, b] = self.affine;
        let (x, y) = (a[0] * x + a[1] * y + a[2], b[0] * x + b[1] * y + b[2]);
        match self.warp {
            None => (x, y),
            Some(h) => {
                let denominator = h[6] * x + h[7] * y + 1.0;
                // fastai's apply_perspective leaves the point where the division would fail.
                if denominator == 0.0 { (x, y) } else { ((h[0] * x + h[1] * y + h[2]) / denominator, (h[3] * x + h[4] * y + h[5]) / denominator) }
            }
        }
    }
}

/// fastai's `Warp`: the perspective transform that takes the moved corners back to the image's
/// corners (`find_coeffs(orig_pts, targ_pts)`), the corners moved by `x_move` and `y_move`.
fn perspective(x_move: f64, y_move: f64) -> Option<[f64; 8]> {
    let corners = [(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)];
    let moved = [(-1.0 - y_move, -1.0 - x_move), (-1.0 + y_move, 1.0 + x_move), (1.0 + y_move, -1.0 + x_move), (1.0 - y_move, 1.0 - x_move)];
    let mut system = [[0.0f64; 9]; 8];
    for (i, ((ox, oy), (tx, ty))) in corners.into_iter().zip(moved).enumerate() {
        system[2 * i] = [tx, ty, 1.0, 0.0, 0.0, 0.0, -ox * tx, -ox * ty, ox];
        system[2 * i + 1] = [0.0, 0.0, 0.0, tx, ty, 1.0, -oy * tx, -oy * ty, oy];
    }
    solve(system)
}

/// Gaussian elimination with partial pivoting on an 8×8 system (its 9th column the right-hand
/// side); none when it is singular.
fn solve(mut system: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    for column in 0..8 {
        let pivot = (column..8).max_by(|&a, &b| system[a][column].abs().total_cmp(&system[b][column].abs()))?;
        if system[pivot][column].abs() < 1e-12 {
            return None;
        }
        system.swap(column, pivot);
        for row in 0..8 {
            if row != column {
                let factor = system[row][column] / system[column][column];
                for k in column..9 {
                    system[row][k] -= factor * system[column][k];
                }
            }
        }
    }
    let mut solution = [0.0; 8];
    for (i, value) in solution.iter_mut().enumerate() {
        *value = system[i][8] / system[i][i];
    }
    Some(solution)
}

/// PyTorch's `grid_sample` reflection with `align_corners=True`: `position` (in pixels) mirrored
/// at 0 and `side − 1` until it lies between them.
fn reflect(position: f64, side: usize) -> f64 {
    if side <= 1 {
        return 0.0;
    }
    let span = (side - 1) as f64;
    let distance = position.abs();
    let flips = (distance / span).floor();
    let extra = distance - flips * span;
    let reflected = if flips as i64 % 2 == 0 { extra } else { span - extra };
    reflected.clamp(0.0, span)
}

/// `image` (CHW, square `size`) read through `map` into `out` (same length): bilinear between the
/// four pixels around each source point, after reflecting it into the image.
pub(crate) fn resample(image: &[f32], size: usize, map: &SourceMap, out: &mut [f32]) {
    let plane = size * size;
    if plane == 0 {
        return;
    }
    let to_unit = |pixel: usize| if size > 1 { -1.0 + 2.0 * pixel as f64 / (size - 1) as f64 } else { 0.0 };
    let to_pixel = |unit: f64| (unit + 1.0) / 2.0 * (size - 1) as f64;
    // Each output pixel's four source pixels and weights, shared by every channel.
    let mut taps = Vec::with_capacity(plane);
    for row in 0..size {
        for column in 0..size {
            let (x, y) = map.source(to_unit(column), to_unit(row));
            let (x, y) = (reflect(to_pixel(x), size), reflect(to_pixel(y), size));
            let (x0, y0) = (x.floor() as usize, y.floor() as usize);
            let (wx, wy) = ((x - x0 as f64) as f32, (y - y0 as f64) as f32);
            // At the last pixel the second neighbour has weight 0: read the first twice.
            let (x1, y1) = ((x0 + 1).min(size - 1), (y0 + 1).min(size - 1));
            taps.push(([y0 * size + x0, y0 * size + x1, y1 * size + x0, y1 * size + x1], [(1.0 - wx) * (1.0 - wy), wx * (1.0 - wy), (1.0 - wx) * wy, wx * wy]));
        }
    }
    for (source, target) in image.chunks_exact(plane).zip(out.chunks_exact_mut(plane)) {
        for ((indices, weights), value) in taps.iter().zip(target.iter_mut()) {
            *value = indices.iter().zip(weights).map(|(&index, &weight)| source[index] * weight).sum();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_warp_takes_the_moved_corners_back_to_the_corners() {
        let (x_move, y_move) = (0.15, -0.1);
        let map = SourceMap { affine: SourceMap::IDENTITY.affine, warp: perspective(x_move, y_move) };
        let moved = [(-1.0 - y_move, -1.0 - x_move), (-1.0 + y_move, 1.0 + x_move), (1.0 + y_move, -1.0 + x_move), (1.0 - y_move, 1.0 - x_move)];
        for ((tx, ty), (ox, oy)) in moved.into_iter().zip([(-1.0, -1.0), (-1.0, 1.0), (1.0, -1.0), (1.0, 1.0)]) {
            let (x, y) = map.source(tx, ty);
            assert!((x - ox).abs() < 1e-9 && (y - oy).abs() < 1e-9, "({tx}, {ty}) → ({x}, {y}), not ({ox}, {oy})");
        }
    }

    #[test]
    fn reflection_mirrors_at_both_edges() {
        assert_eq!(reflect(-1.0, 5), 1.0);
        assert_eq!(reflect(5.0, 5), 3.0);
        assert_eq!(reflect(2.5, 5), 2.5);
        assert_eq!(reflect(9.0, 5), 1.0);
    }

    /// A quarter turn of a 3×3 image moves each pixel exactly (the grid maps onto itself), and the
    /// identity copies.
    #[test]
    fn a_quarter_turn_moves_pixels_exactly() {
        let image: Vec<f32> = (1..=9).map(|v| v as f32).collect();
        let mut out = vec![0.0; 9];
        resample(&image, 3, &SourceMap::IDENTITY, &mut out);
        assert_eq!(out, image);
        let quarter = SourceMap { affine: [[0.0, 1.0, 0.0], [-1.0, 0.0, 0.0]], warp: None };
        resample(&image, 3, &quarter, &mut out);
        // Output (x, y) reads source (y, −x): the first output row is the source's first column, bottom up.
        let turned: Vec<f32> = out.iter().map(|v| v.round()).collect();
        assert_eq!(turned, vec![7.0, 4.0, 1.0, 8.0, 5.0, 2.0, 9.0, 6.0, 3.0]);
    }

    /// A zoom reads a window of the image: every output lies between the image's extremes, and
    /// the output's spread shrinks as the window does.
    #[test]
    fn a_zoom_reads_inside_the_image() {
        let size = 16;
        let image: Vec<f32> = (0..size * size).map(|i| (i % size) as f32).collect();
        let zoom = ImageAugment { zoom: 2.0, ..ImageAugment::NONE };
        let mut rng = SplitMix64::new(5);
        let mut zoomed_spread = Vec::new();
        for _ in 0..40 {
            let map = SourceMap::draw(&zoom, &mut rng);
            let mut out = vec![0.0; size * size];
            resample(&image, size, &map, &mut out);
            assert!(out.iter().all(|v| (0.0..=15.0).contains(v)));
            let (low, high) = out.iter().fold((f32::MAX, f32::MIN), |(l, h), &v| (l.min(v), h.max(v)));
            zoomed_spread.push(high - low);
        }
        assert!(zoomed_spread.iter().any(|&spread| spread < 14.0), "some draws zoom in: {zoomed_spread:?}");
        assert!(zoomed_spread.iter().all(|&spread| spread >= 15.0 / 2.0 - 1e-3), "never beyond 2x: {zoomed_spread:?}");
    }
}
