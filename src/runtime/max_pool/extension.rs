//! Max pooling as a burn backend-extension op on flex, with its own backward: the forward keeps
//! where each maximum was, the backward adds each output's gradient there.

use std::sync::Arc;

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use tlrun_kernels::max_pool::{self as kernels, PoolGeometry};

use crate::runtime::conv::extension::flex_tensor;

#[backend_extension(Flex, Autodiff)]
pub trait MaxPoolBackend: Backend {
    /// 2-D max pooling of `x` [N, C, H, W], dilation 1, floor mode; f32 only. `padding` is
    /// ((top, bottom), (left, right)).
    fn tlrun_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2], padding: [(usize, usize); 2]) -> FloatTensor<Self>;
}

/// The pool's geometry for `x`'s shape; `None` where tlrun's kernel does not cover it.
pub fn geometry(x_shape: &[usize], kernel: [usize; 2], stride: [usize; 2], padding: [(usize, usize); 2]) -> Option<PoolGeometry> {
    let [batch, channels, height, width] = <[usize; 4]>::try_from(x_shape).ok()?;
    PoolGeometry {
        planes: batch * channels,
        height,
        width,
        kernel,
        stride,
        padding_begin: [padding[0].0, padding[1].0],
        padding_end: [padding[0].1, padding[1].1],
    }
    .checked()
}

fn pool(x: FlexTensor, kernel: [usize; 2], stride: [usize; 2], padding: [(usize, usize); 2], with_indices: bool) -> (FlexTensor, PoolGeometry, Vec<u32>) {
    let x = x.to_contiguous();
    let dims = x.layout().shape().clone();
    let g = geometry(&dims, kernel, stride, padding).expect("tlrun_max_pool2d is called only on pools `max_pool::applies` accepted");
    let (y, indices) = kernels::forward(&g, x.storage::<f32>(), with_indices);
    (flex_tensor(y, [dims[0], dims[1], g.out_height(), g.out_width()]), g, indices)
}

impl MaxPoolBackend for Flex {
    fn tlrun_max_pool2d(x: FlexTensor, kernel: [usize; 2], stride: [usize; 2], padding: [(usize, usize); 2]) -> FlexTensor {
        pool(x, kernel, stride, padding, false).0
    }
}

#[derive(Debug)]
struct MaxPoolBackward;

impl Backward<Flex, 1> for MaxPoolBackward {
    /// The geometry, the input's shape and, per output, where in its plane the maximum was.
    type State = (PoolGeometry, burn::tensor::Shape, Arc<Vec<u32>>);

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let [x_node] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (g, x_shape, indices) = ops.state;
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, flex_tensor(kernels::backward(&g, dy.storage::<f32>(), &indices), x_shape));
        }
    }
}

impl<C: CheckpointStrategy> MaxPoolBackend for Autodiff<Flex, C> {
    fn tlrun_max_pool2d(x: FloatTensor<Self>, kernel: [usize; 2], stride: [usize; 2], padding: [(usize, usize); 2]) -> FloatTensor<Self> {
        match MaxPoolBackward.prepare::<C>([x.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => {
                let x = x.into_primitive();
                let x_shape = x.layout().shape().clone();
                let (y, g, indices) = pool(x, kernel, stride, padding, true);
                prep.finish((g, x_shape, Arc::new(indices)), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::tlrun_max_pool2d(x.into_primitive(), kernel, stride, padding)),
        }
    }
}
