use std::time::Instant;
use tlrun_kernels::conv::{forward, ConvGeometry};
fn gemm_time(m: usize, n: usize, k: usize) -> f64 {
    let a = vec![0.5f32; m * k]; let b = vec![0.25f32; k * n]; let mut c = vec![0.0f32; m * n];
    let mut best = f64::MAX;
    for _ in 0..10 {
        let t = Instant::now();
        // dst^T (m×n col-major), lhs (m×k col-major: patches), rhs (k×n col-major: W^T)
        unsafe { gemm::gemm(m, n, k, c.as_mut_ptr(), m as isize, 1, false, a.as_ptr(), m as isize, 1, b.as_ptr(), k as isize, 1, 1.0, 1.0, false, false, false, gemm::Parallelism::Rayon(0)) };
        best = best.min(t.elapsed().as_secs_f64());
    }
    best
}
fn main() {
    for (c, side, batch) in [(512usize, 2usize, 64usize), (256, 4, 64), (128, 8, 64), (64, 16, 64)] {
        let g = ConvGeometry { batch, in_channels: c, in_height: side, in_width: side, out_channels: c, kernel_height: 3, kernel_width: 3, stride: [1, 1], padding_begin: [1, 1], padding_end: [1, 1] };
        let x = vec![0.5f32; g.input_len()];
        let w = vec![0.25f32; g.weight_len()];
        let mut f = f64::MAX;
        for _ in 0..10 { let t = Instant::now(); let y = forward(&g, &x, &w); f = f.min(t.elapsed().as_secs_f64()); drop(y); }
        let cols = batch * side * side;
        let gm = gemm_time(cols, c, 9 * c);
        println!("{c}ch {side}px: conv fwd {:.2} ms; one gemm m{cols} n{c} k{}: {:.2} ms ({:.0} GF/s)", f * 1e3, 9 * c, gm * 1e3, 2.0 * (cols * c * 9 * c) as f64 / gm / 1e9);
    }
}
