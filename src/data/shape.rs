//! Resolution-independent geometry for synthetic images: inside/outside tests in a unit frame.
//! Shapes know nothing about pixels, so one shape renders the same at every size.

/// A point in the shape's own frame, roughly within [-1, 1] on both axes (y points down).
pub type Point = (f32, f32);

#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    Disk { centre: Point, radius: f32 },
    Ring { centre: Point, radius: f32, thickness: f32 },
    /// Axis-aligned and centred on the origin.
    Square { half: f32 },
    SquareOutline { half: f32, thickness: f32 },
    /// Convex, corners in either winding order.
    Polygon { corners: Vec<Point> },
    /// A thick line with round caps.
    Segment { from: Point, to: Point, thickness: f32 },
    /// A regular star centred on the origin, first tip pointing along +x.
    Star { points: u32, outer: f32, inner: f32 },
    /// `count` equal bands with equal gaps between them, filling the square of side `2 * half`.
    Stripes { vertical: bool, count: u32, half: f32 },
    /// A `cells` x `cells` checkerboard filling the square of side `2 * half`.
    Checker { cells: u32, half: f32 },
    Union(Vec<Shape>),
}

impl Shape {
    pub fn contains(&self, (x, y): Point) -> bool {
        match self {
            Shape::Disk { centre, radius } => distance((x, y), *centre) <= *radius,
            Shape::Ring { centre, radius, thickness } => {
                (distance((x, y), *centre) - radius).abs() <= thickness / 2.0
            }
            Shape::Square { half } => x.abs().max(y.abs()) <= *half,
            Shape::SquareOutline { half, thickness } => {
                let reach = x.abs().max(y.abs());
                reach <= *half && reach >= half - thickness
            }
            Shape::Polygon { corners } => inside_convex((x, y), corners),
            Shape::Segment { from, to, thickness } => {
                distance_to_segment((x, y), *from, *to) <= thickness / 2.0
            }
            Shape::Star { points, outer, inner } => inside_star((x, y), *points, *outer, *inner),
            Shape::Stripes { vertical, count, half } => {
                let across = if *vertical { x } else { y };
                if x.abs() > *half || y.abs() > *half || *count == 0 {
                    return false;
                }
                let band_width = 2.0 * half / (2 * count - 1) as f32;
                ((across + half) / band_width).floor() as i64 % 2 == 0
            }
            Shape::Checker { cells, half } => {
                if x.abs() > *half || y.abs() > *half || *cells == 0 {
                    return false;
                }
                let cell = 2.0 * half / *cells as f32;
                let column = ((x + half) / cell).floor() as i64;
                let row = ((y + half) / cell).floor() as i64;
                (column + row) % 2 == 0
            }
            Shape::Union(parts) => parts.iter().any(|part| part.contains((x, y))),
        }
    }
}

fn distance(a: Point, b: Point) -> f32 {
    (a.0 - b.0).hypot(a.1 - b.1)
}

fn cross(origin: Point, a: Point, b: Point) -> f32 {
    (a.0 - origin.0) * (b.1 - origin.1) - (a.1 - origin.1) * (b.0 - origin.0)
}

fn inside_convex(point: Point, corners: &[Point]) -> bool {
    if corners.len() < 3 {
        return false;
    }
    let sides = corners.iter().zip(corners.iter().cycle().skip(1));
    let signs: Vec<f32> = sides.map(|(&a, &b)| cross(a, b, point)).collect();
    signs.iter().all(|&s| s >= 0.0) || signs.iter().all(|&s| s <= 0.0)
}

fn distance_to_segment(point: Point, from: Point, to: Point) -> f32 {
    let (dx, dy) = (to.0 - from.0, to.1 - from.1);
    let length_squared = dx * dx + dy * dy;
    let t = if length_squared > 0.0 {
        (((point.0 - from.0) * dx + (point.1 - from.1) * dy) / length_squared).clamp(0.0, 1.0)
    } else {
        0.0
    };
    distance(point, (from.0 + t * dx, from.1 + t * dy))
}

/// Fold the angle into the half-sector between a tip and the next valley, then test the point
/// against the straight edge joining them.
fn inside_star(point: Point, points: u32, outer: f32, inner: f32) -> bool {
    if points < 2 {
        return false;
    }
    let sector = std::f32::consts::TAU / points as f32;
    let radius = point.0.hypot(point.1);
    let mut angle = point.1.atan2(point.0).rem_euclid(sector);
    if angle > sector / 2.0 {
        angle = sector - angle;
    }
    let folded = (radius * angle.cos(), radius * angle.sin());
    let tip = (outer, 0.0);
    let valley = (inner * (sector / 2.0).cos(), inner * (sector / 2.0).sin());
    cross(tip, valley, folded) >= 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simple_shapes() {
        let disk = Shape::Disk { centre: (0.5, 0.0), radius: 0.25 };
        assert!(disk.contains((0.6, 0.1)) && !disk.contains((0.0, 0.0)));
        let ring = Shape::Ring { centre: (0.0, 0.0), radius: 0.5, thickness: 0.2 };
        assert!(ring.contains((0.55, 0.0)) && !ring.contains((0.0, 0.0)) && !ring.contains((0.7, 0.0)));
        let outline = Shape::SquareOutline { half: 0.5, thickness: 0.1 };
        assert!(outline.contains((0.45, 0.2)) && !outline.contains((0.2, 0.2)));
        let line = Shape::Segment { from: (-1.0, 0.0), to: (1.0, 0.0), thickness: 0.2 };
        assert!(line.contains((0.3, 0.09)) && !line.contains((0.3, 0.11)) && !line.contains((1.11, 0.0)));
    }

    #[test]
    fn polygons_accept_either_winding() {
        let clockwise = vec![(0.0, -1.0), (1.0, 1.0), (-1.0, 1.0)];
        let counter: Vec<Point> = clockwise.iter().rev().copied().collect();
        for corners in [clockwise, counter] {
            let triangle = Shape::Polygon { corners };
            assert!(triangle.contains((0.0, 0.5)));
            assert!(!triangle.contains((0.9, -0.5)));
        }
    }

    #[test]
    fn star_has_tips_and_valleys() {
        let star = Shape::Star { points: 5, outer: 1.0, inner: 0.4 };
        assert!(star.contains((0.95, 0.0)), "tip along +x");
        assert!(star.contains((0.0, 0.0)));
        // Halfway between two tips only the inner radius is filled.
        let valley = std::f32::consts::TAU / 10.0;
        assert!(star.contains((0.35 * valley.cos(), 0.35 * valley.sin())));
        assert!(!star.contains((0.6 * valley.cos(), 0.6 * valley.sin())));
    }

    #[test]
    fn stripes_and_checker_alternate() {
        let stripes = Shape::Stripes { vertical: false, count: 3, half: 1.0 };
        // Five bands of height 0.4 from -1: band, gap, band, gap, band.
        let rows: Vec<bool> = [-0.9, -0.5, 0.0, 0.5, 0.9].iter().map(|&y| stripes.contains((0.0, y))).collect();
        assert_eq!(rows, vec![true, false, true, false, true]);
        assert!(!stripes.contains((0.0, 1.1)));
        let vertical = Shape::Stripes { vertical: true, count: 3, half: 1.0 };
        assert!(vertical.contains((-0.9, 0.5)) && !vertical.contains((-0.5, 0.5)));
        let checker = Shape::Checker { cells: 2, half: 1.0 };
        assert!(checker.contains((-0.5, -0.5)) && checker.contains((0.5, 0.5)));
        assert!(!checker.contains((0.5, -0.5)) && !checker.contains((-0.5, 0.5)));
    }
}
