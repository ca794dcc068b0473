//! `relu(a + b)` as a burn backend-extension op on flex, with its own backward: one pass forward
//! (burn: an addition, then a ReLU), one pass backward whose result is the gradient of both
//! inputs (burn: the ReLU's mask, then the addition's two copies).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use tlrun_kernels::activation;

use crate::runtime::conv::extension::flex_tensor;

#[backend_extension(Flex, Autodiff)]
pub trait AddReluBackend: Backend {
    /// `relu(a + b)` for two f32 tensors of one shape.
    fn fused_add_relu(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self>;
}

impl AddReluBackend for Flex {
    fn fused_add_relu(a: FlexTensor, b: FlexTensor) -> FlexTensor {
        let (a, b) = (a.to_contiguous(), b.to_contiguous());
        flex_tensor(activation::add_relu(a.storage::<f32>(), b.storage::<f32>()), a.layout().shape().clone())
    }
}

#[derive(Debug)]
struct AddReluBackward;

impl Backward<Flex, 2> for AddReluBackward {
    /// The output: where it is zero, the gradient is.
    type State = FlexTensor;

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [a_node, b_node] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let y = ops.state.to_contiguous();
        let dz = flex_tensor(activation::relu_gradient(dy.storage::<f32>(), y.storage::<f32>()), y.layout().shape().clone());
        // Both inputs get the same gradient; the copy shares its buffer.
        if let Some(node) = a_node {
            grads.register::<Flex>(node.id, dz.clone());
        }
        if let Some(node) = b_node {
            grads.register::<Flex>(node.id, dz);
        }
    }
}

impl<C: CheckpointStrategy> AddReluBackend for Autodiff<Flex, C> {
    fn fused_add_relu(a: FloatTensor<Self>, b: FloatTensor<Self>) -> FloatTensor<Self> {
        match AddReluBackward.prepare::<C>([a.node(), b.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let y = Flex::fused_add_relu(a.into_primitive(), b.into_primitive());
                // The output shares its buffer with the one handed on: no copy.
                prep.finish(y.clone(), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::fused_add_relu(a.into_primitive(), b.into_primitive())),
        }
    }
}
