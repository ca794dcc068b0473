//! BSS, Batch Spectral Shrinkage (Chen et al. 2019): the loss term `η · Σ σᵢ²` over the `k`
//! smallest singular values of a training batch's features F [N, D].
//!
//! The backward without an SVD in the autodiff graph: for a singular value σ of F with vectors u,
//! v (F v = σ u), the gradient of σ² is 2σ u vᵀ. With u held constant, ‖uᵀF‖² has the value σ²
//! and the gradient 2 u uᵀ F = 2σ u vᵀ: the same. So the term is `η · Σ ‖uᵢᵀ F‖²` with the uᵢ
//! taken from the detached features (eigenvectors of F Fᵀ, N × N, in f64: the probe's eigensolver);
//! when D < N the smaller side is Fᵀ F and the term `η · Σ ‖F vᵢ‖²`. Exact for distinct singular
//! values, as the SVD's own backward is (test: finite differences of the value).

use burn::prelude::*;

use crate::check::recipe::Bss;
use crate::probe::eigen::SymmetricEigen;

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
    let eigen = SymmetricEigen::new(&gram, side);
    // The eigenvalues ascend: the first k vectors are the smallest singular values', one per row.
    let k = bss.k.min(side);
    let vectors: Vec<f32> = (0..k).flat_map(|e| eigen.vector(e).iter().map(|&x| x as f32)).collect();
    let vectors = Tensor::<2>::from_data(TensorData::new(vectors, [k, side]), &device);
    let projected = if left { vectors.matmul(features) } else { features.matmul(vectors.transpose()) };
    projected.powi_scalar(2).sum().mul_scalar(bss.eta)
}
