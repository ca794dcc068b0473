//! ReLU fused with what comes before it, so that it costs no pass of its own: after a residual
//! addition (`relu(a + b)`, the end of every residual block) here, after batch norm in
//! `batch_norm::normalize`. Its gradient needs only the output: `dy` where `y > 0`, else 0 (at
//! exactly 0 the gradient is 0, as PyTorch's `threshold_backward` gives). NaN passes through both,
//! as in PyTorch and burn-flex: a diverging run must show a NaN loss, not a finite one.

use std::mem::MaybeUninit;

use rayon::prelude::*;

use crate::buffer::filled;

/// Values per parallel task.
const CHUNK: usize = 1 << 14;

/// `max(x, 0)`, NaN kept.
#[inline(always)]
pub fn relu(x: f32) -> f32 {
    if x.is_nan() || x > 0.0 { x } else { 0.0 }
}

/// The gradient of [`relu`] at an output `y`.
#[inline(always)]
fn relu_slope(dy: f32, y: f32) -> f32 {
    if y.is_nan() || y > 0.0 { dy } else { 0.0 }
}

/// `relu(a + b)`.
pub fn add_relu(a: &[f32], b: &[f32]) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "add_relu: inputs of different lengths");
    let fill = |y: &mut [MaybeUninit<f32>]| {
        y.par_chunks_mut(CHUNK).zip(a.par_chunks(CHUNK).zip(b.par_chunks(CHUNK))).for_each(|(y, (a, b))| add_relu_chunk(y, a, b));
    };
    // SAFETY: the parallel chunks of `y` cover it, and each chunk's loop writes every value of its
    // chunk (the zip is as long as `a`, asserted equal).
    unsafe { filled(a.len(), fill) }
}

/// The gradient through a ReLU whose output was `y`: `dy` where `y > 0`, else 0.
pub fn relu_gradient(dy: &[f32], y: &[f32]) -> Vec<f32> {
    assert_eq!(dy.len(), y.len(), "relu_gradient: inputs of different lengths");
    let fill = |dx: &mut [MaybeUninit<f32>]| {
        dx.par_chunks_mut(CHUNK).zip(dy.par_chunks(CHUNK).zip(y.par_chunks(CHUNK))).for_each(|(dx, (dy, y))| relu_gradient_chunk(dx, dy, y));
    };
    // SAFETY: the parallel chunks of `dx` cover it, and each chunk's loop writes every value (the
    // zip is as long as `dy`, asserted equal).
    unsafe { filled(dy.len(), fill) }
}

multiversion! {
    fn add_relu_chunk(y: &mut [MaybeUninit<f32>], a: &[f32], b: &[f32]) {
        for (y, (&a, &b)) in y.iter_mut().zip(a.iter().zip(b)) {
            y.write(relu(a + b));
        }
    }
}

multiversion! {
    fn relu_gradient_chunk(dx: &mut [MaybeUninit<f32>], dy: &[f32], y: &[f32]) {
        for (dx, (&dy, &y)) in dx.iter_mut().zip(dy.iter().zip(y)) {
            dx.write(relu_slope(dy, y));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_relu_and_its_gradient_follow_the_definition() {
        let len = 2 * CHUNK + 5;
        let a: Vec<f32> = (0..len).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        let b: Vec<f32> = (0..len).map(|i| ((i * 53 % 97) as f32 - 48.0) / 30.0).collect();
        let y = add_relu(&a, &b);
        let dy: Vec<f32> = (0..len).map(|i| (i % 13) as f32 - 6.0).collect();
        let dx = relu_gradient(&dy, &y);
        for i in 0..len {
            let sum = a[i] + b[i];
            assert_eq!(y[i], if sum > 0.0 { sum } else { 0.0 });
            assert_eq!(dx[i], if sum > 0.0 { dy[i] } else { 0.0 });
        }
        assert!(y.iter().any(|&v| v == 0.0) && y.iter().any(|&v| v > 0.0), "both sides of the kink are tested");
    }

    #[test]
    fn nan_passes_through_forward_and_backward() {
        let y = add_relu(&[f32::NAN, -1.0], &[1.0, f32::NAN]);
        assert!(y.iter().all(|v| v.is_nan()));
        assert_eq!(relu_gradient(&[2.0, 3.0], &y), vec![2.0, 3.0]);
    }
}
