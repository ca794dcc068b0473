//! Static metadata of the built-in architectures: layer names in order, what each layer is, and its
//! channels and strides. The checker validates names against it and the runtime builds burn modules
//! from it, so what lint accepts can never disagree with what runs.

mod architecture;
mod catalogue;
mod resnet;

pub use architecture::{Architecture, BlockKind, LayerKind, LayerSpec, Stats};
pub use catalogue::{lookup, names};
