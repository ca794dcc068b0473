use std::time::Instant;
use tlrun_kernels::max_pool::{backward, forward, PoolGeometry};
fn main() {
    for side in [32usize, 14] {
        let g = PoolGeometry { planes: 64 * 64, height: side, width: side, kernel: [3, 3], stride: [2, 2], padding_begin: [1, 1], padding_end: [1, 1] };
        let x: Vec<f32> = (0..g.input_len()).map(|i| ((i * 37 % 101) as f32 - 50.0) / 25.0).collect();
        for _ in 0..3 {
            let t = Instant::now();
            let (y, idx) = forward(&g, &x, true);
            let f = t.elapsed();
            let dx = backward(&g, &y, &idx);
            println!("side {side}: fwd {:?} fwd+bwd {:?} {}", f, t.elapsed(), dx.len());
        }
    }
}
