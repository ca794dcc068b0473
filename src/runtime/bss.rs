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
use crate::probe::Features;
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
    // The smaller Gram matrix: F Fᵀ (left vectors) when N ≤ D, the Gram of Fᵀ's rows; else Fᵀ F
    // (right vectors), the Gram of F's.
    let left = rows <= columns;
    let side = rows.min(columns);
    let oriented = if left {
        let transposed = (0..columns).flat_map(|j| (0..rows).map(|i| values[i * columns + j]).collect::<Vec<_>>()).collect();
        Features::new(columns, rows, transposed)
    } else {
        Features::new(rows, columns, values)
    };
    let eigen = SymmetricEigen::new(&oriented.gram(), side);
    // The eigenvalues ascend: the first k vectors are the smallest singular values', one per row.
    let k = bss.k.min(side);
    let vectors: Vec<f32> = (0..k).flat_map(|e| eigen.vector(e).iter().map(|&x| x as f32)).collect();
    let vectors = Tensor::<2>::from_data(TensorData::new(vectors, [k, side]), &device);
    let projected = if left { vectors.matmul(features) } else { features.matmul(vectors.transpose()) };
    projected.powi_scalar(2).sum().mul_scalar(bss.eta)
}
