//! tlrun's CPU kernels: plain functions on contiguous f32 buffers, no burn, no tensors. The
//! runtime wraps them as burn backend-extension ops (src/runtime/conv). A crate of their own so
//! that every build profile compiles them with full optimisation (Cargo.toml's
//! `[profile.dev.package.tlrun-kernels]`): tests and `cargo run` train at release speed.

#[macro_use]
mod simd;

// The ground floor: shapes, buffers, the gemm call, the CPU's instruction set and caches.
mod buffer;
pub mod cache;
pub mod geometry;
pub mod isa;
mod matmul;

pub mod activation;
pub mod adamw;
mod batch_lanes_conv;
pub mod batch_norm;
pub mod conv;
mod direct_conv;
pub mod epilogue;
pub mod max_pool;
mod live_taps;
mod narrow_max_pool;
mod patch_rows;
mod single_pixel;
