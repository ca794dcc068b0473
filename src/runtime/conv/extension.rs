//! The gemm convolution as a burn backend extension: a custom op on flex, and on autodiff over
//! flex the same op with its own backward (burn's `backend_extension` does not derive one).

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::{Shape, TensorData};
use burn::tensor::ops::ConvOptions;

use tlrun_kernels::conv::{self as gemm_conv, ConvGeometry};

#[backend_extension(Flex, Autodiff)]
pub trait GemmConvBackend: Backend {
    /// `conv2d(x, weight)` without bias, dilation 1, one group; f32 only.
    fn gemm_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self>;
}

/// The geometry of a convolution of contiguous `x` [N, C, H, W] with `weight` [K, C, R, S].
pub fn geometry(x_shape: &[usize], weight_shape: &[usize], options: &ConvOptions<2>) -> Option<ConvGeometry> {
    let [batch, in_channels, in_height, in_width] = <[usize; 4]>::try_from(x_shape).ok()?;
    let [out_channels, weight_channels, kernel_height, kernel_width] = <[usize; 4]>::try_from(weight_shape).ok()?;
    if weight_channels != in_channels || options.groups != 1 || options.dilation != [1, 1] {
        return None;
    }
    ConvGeometry {
        batch,
        in_channels,
        in_height,
        in_width,
        out_channels,
        kernel_height,
        kernel_width,
        stride: options.stride,
        padding_begin: [options.padding[0].0, options.padding[1].0],
        padding_end: [options.padding[0].1, options.padding[1].1],
    }
    .checked()
}

pub(crate) fn flex_geometry(x: &FlexTensor, weight: &FlexTensor, options: &ConvOptions<2>) -> ConvGeometry {
    geometry(x.layout().shape(), weight.layout().shape(), options)
        .expect("gemm_conv2d is called only on shapes `gemm_conv_applies` accepted")
}

/// A contiguous flex tensor holding a kernel's output (batch norm's ops use it too).
pub(crate) fn flex_tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

impl GemmConvBackend for Flex {
    fn gemm_conv2d(x: FlexTensor, weight: FlexTensor, options: ConvOptions<2>) -> FlexTensor {
        let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
        let g = flex_geometry(&x, &weight, &options);
        let y = gemm_conv::forward(&g, x.storage::<f32>(), weight.storage::<f32>());
        flex_tensor(y, [g.batch, g.out_channels, g.out_height(), g.out_width()])
    }
}

#[derive(Debug)]
struct GemmConvBackward;

impl Backward<Flex, 2> for GemmConvBackward {
    type State = (NodeId, NodeId, ConvOptions<2>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [x_node, weight_node] = ops.parents;
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let (x_state, weight_state, options) = ops.state;
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state).to_contiguous();
        let weight = checkpointer.retrieve_node_output::<FlexTensor>(weight_state).to_contiguous();
        let g = flex_geometry(&x, &weight, &options);
        let (dx, dw) = gemm_conv::backward(
            &g,
            x.storage::<f32>(),
            weight.storage::<f32>(),
            dy.storage::<f32>(),
            x_node.is_some(),
            weight_node.is_some(),
        );
        if let (Some(node), Some(dx)) = (x_node, dx) {
            grads.register::<Flex>(node.id, flex_tensor(dx, [g.batch, g.in_channels, g.in_height, g.in_width]));
        }
        if let (Some(node), Some(dw)) = (weight_node, dw) {
            let shape = [g.out_channels, g.in_channels, g.kernel_height, g.kernel_width];
            grads.register::<Flex>(node.id, flex_tensor(dw, shape));
        }
    }
}

impl<C: CheckpointStrategy> GemmConvBackend for Autodiff<Flex, C> {
    fn gemm_conv2d(x: FloatTensor<Self>, weight: FloatTensor<Self>, options: ConvOptions<2>) -> FloatTensor<Self> {
        match GemmConvBackward.prepare::<C>([x.node(), weight.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let weight_state = prep.checkpoint(&weight);
                let y = Flex::gemm_conv2d(x.into_primitive(), weight.into_primitive(), options.clone());
                prep.finish((x_state, weight_state, options), y)
            }
            OpsKind::UnTracked(prep) => prep.finish(Flex::gemm_conv2d(x.into_primitive(), weight.into_primitive(), options)),
        }
    }
}
