//! burn modules built from the architecture metadata in `crate::arch`, with torchvision's parameter
//! names (`backbone.layer1.0.conv1.weight`), so weights map one to one.

mod backbone;
pub mod head;
mod network;
pub(crate) mod residual_block;

pub use backbone::{Backbone, BackboneOp};
pub use head::Head;
pub use network::Network;
