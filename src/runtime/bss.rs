//! BSS, Batch Spectral Shrinkage (Chen et al. 2019): the loss term `η · Σ σᵢ²` over the `k`
//! smallest singular values of a training batch's features F [N, D].
//!
//! The backward without an SVD in the autodiff graph: for a singular value σ of F with vectors u,
//! v (F v = σ u), the gradient of σ² is 2σ u vᵀ. With u held constant, ‖uᵀF‖² has the value σ²
//! and the gradient 2 u uᵀ F = 2σ u vᵀ: the same. So the term is `η · Σ ‖uᵢᵀ F‖²` with the uᵢ
//! taken from the detached features (eigenvectors of F Fᵀ, N × N, by Jacobi rotations in f64);
//! when D < N the smaller side is Fᵀ F and the term `η · Σ ‖F vᵢ‖²`. Exact for distinct singular
//! values, as the SVD's own backward is (test: finite differences of the value).

use burn::prelude::*;

use crate::check::recipe::Bss;

/// `η · Σ σ²` over the `k` smallest singular values of `features` [N, D], in its autodiff graph.
pub fn penalty(features: Tensor<2>, bss: &Bss) -> Tensor<1> {
    let [rows, columns] = features.dims();
    let device = features.device();
    let values: Vec<f64> = features
        .clone()
        .detach()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .unwrap_or_else(|_| vec![0.0; rows * columns])
        .into_iter()
        .map(f64::from)
        .collect();
    // The smaller Gram matrix: F Fᵀ (left vectors) when N ≤ D, else Fᵀ F (right vectors).
    let left = rows <= columns;
    let side = rows.min(columns);
    let at = |i: usize, j: usize| if left { values[i * columns + j] } else { values[j * columns + i] };
    let inner = rows.max(columns);
    let mut gram = vec![0.0f64; side * side];
    for i in 0..side {
        for j in 0..=i {
            let dot: f64 = (0..inner).map(|t| at(i, t) * at(j, t)).sum();
            gram[i * side + j] = dot;
            gram[j * side + i] = dot;
        }
    }
    let (eigenvalues, eigenvectors) = symmetric_eigen(gram, side);
    let mut order: Vec<usize> = (0..side).collect();
    order.sort_by(|&a, &b| eigenvalues[a].total_cmp(&eigenvalues[b]));
    let k = bss.k.min(side);
    // The k vectors, one per row: [k, side].
    let eigenvectors = &eigenvectors;
    let vectors: Vec<f32> = order[..k].iter().flat_map(|&e| (0..side).map(move |i| eigenvectors[i * side + e] as f32)).collect();
    let vectors = Tensor::<2>::from_data(TensorData::new(vectors, [k, side]), &device);
    let projected = if left { vectors.matmul(features) } else { features.matmul(vectors.transpose()) };
    projected.powi_scalar(2).sum().mul_scalar(bss.eta)
}

/// Eigenvalues and eigenvectors (column e of the row-major `side × side` result) of a symmetric
/// matrix, by cyclic Jacobi rotations until the off-diagonal is negligible.
pub fn symmetric_eigen(mut a: Vec<f64>, n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut v = vec![0.0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    let scale: f64 = a.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
    for _sweep in 0..60 {
        let off: f64 = (0..n).flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j))).map(|(i, j)| a[i * n + j].powi(2)).sum();
        if off.sqrt() <= 1e-15 * scale {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq == 0.0 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    ((0..n).map(|i| a[i * n + i]).collect(), v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jacobi_gives_eigenpairs_of_a_symmetric_matrix() {
        let n = 5;
        let a: Vec<f64> = (0..n * n).map(|index| {
            let (i, j) = (index / n, index % n);
            ((i + 1) * (j + 1)) as f64 / 7.0 + if i == j { i as f64 } else { 0.0 } + ((i * j) % 3) as f64 * 0.1
        }).collect();
        let (values, vectors) = symmetric_eigen(a.clone(), n);
        for e in 0..n {
            for i in 0..n {
                let av: f64 = (0..n).map(|j| a[i * n + j] * vectors[j * n + e]).sum();
                assert!((av - values[e] * vectors[i * n + e]).abs() < 1e-9, "A v = λ v for eigenpair {e}");
            }
        }
    }
}
