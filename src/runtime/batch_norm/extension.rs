//! Batch norm as burn backend-extension ops on flex, with a backward of their own: the channel
//! statistics (not differentiated), and normalisation with the batch's statistics (training) or
//! with fixed ones (running statistics: evaluation, frozen layers).

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use tlrun_kernels::activation;
use tlrun_kernels::batch_norm::{self as kernels, NormShape, Statistics};

use crate::runtime::conv::extension::flex_tensor;

#[backend_extension(Flex, Autodiff)]
pub trait FusedBatchNormBackend: Backend {
    /// Per channel mean (row 0) and biased variance (row 1) of `x` [N, C, H, W]: [2, C]. Not
    /// differentiated: [`fused_batch_norm`](Self::fused_batch_norm) with `batch_statistics`
    /// differentiates through the statistics itself.
    fn fused_batch_norm_statistics(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x` normalised with `statistics` (mean row 0, variance row 1), then scaled and shifted per
    /// channel, then (`relu`) its ReLU. `batch_statistics`: they are `x`'s own and the op is
    /// differentiated as batch norm in training; otherwise they are fixed (running statistics).
    fn fused_batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        epsilon: f64,
        batch_statistics: bool,
        relu: bool,
    ) -> FloatTensor<Self>;
}

fn norm_shape(x: &FlexTensor) -> NormShape {
    let dims = x.layout().shape();
    NormShape { batch: dims[0], channels: dims[1], pixels: dims[2..].iter().product() }
}

/// (mean, variance) rows of a [2, C] statistics tensor.
pub(crate) fn rows(statistics: &FlexTensor) -> (Vec<f32>, Vec<f32>) {
    let values = statistics.to_contiguous();
    let values = values.storage::<f32>();
    let channels = values.len() / 2;
    (values[..channels].to_vec(), values[channels..].to_vec())
}

fn normalize(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, statistics: &FlexTensor, epsilon: f64, relu: bool) -> FlexTensor {
    let x = x.to_contiguous();
    let (mean, variance) = rows(statistics);
    let y = kernels::normalize(
        norm_shape(&x),
        x.storage::<f32>(),
        &mean,
        &variance,
        gamma.to_contiguous().storage::<f32>(),
        beta.to_contiguous().storage::<f32>(),
        epsilon,
        relu,
    );
    flex_tensor(y, x.layout().shape().clone())
}

impl FusedBatchNormBackend for Flex {
    fn fused_batch_norm_statistics(x: FlexTensor) -> FlexTensor {
        let x = x.to_contiguous();
        let (mut mean, variance) = kernels::statistics(norm_shape(&x), x.storage::<f32>());
        let channels = mean.len();
        mean.extend(variance);
        flex_tensor(mean, [2, channels])
    }

    fn fused_batch_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, statistics: FlexTensor, epsilon: f64, _: bool, relu: bool) -> FlexTensor {
        normalize(x, gamma, beta, &statistics, epsilon, relu)
    }
}

/// The backward of the normalisation, with the statistics it used.
#[derive(Debug)]
struct BatchNormBackward {
    statistics: Statistics,
}

impl Backward<Flex, 3> for BatchNormBackward {
    /// (x, γ, statistics, ε, the output when a ReLU followed: its zeros mask the gradient)
    type State = (NodeId, NodeId, FlexTensor, f64, Option<FlexTensor>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [x_node, gamma_node, beta_node] = ops.parents;
        let (x_state, gamma_state, statistics, epsilon, relu_output) = ops.state;
        let dy = grads.consume::<Flex>(&ops.node).to_contiguous();
        let dy = match relu_output {
            Some(y) => {
                let y = y.to_contiguous();
                flex_tensor(activation::relu_gradient(dy.storage::<f32>(), y.storage::<f32>()), y.layout().shape().clone())
            }
            None => dy,
        };
        let x = checkpointer.retrieve_node_output::<FlexTensor>(x_state).to_contiguous();
        let gamma = checkpointer.retrieve_node_output::<FlexTensor>(gamma_state).to_contiguous();
        let (mean, variance) = rows(&statistics);
        let shape = norm_shape(&x);
        let (dx, dgamma, dbeta) = kernels::backward(
            shape,
            x.storage::<f32>(),
            dy.storage::<f32>(),
            &mean,
            &variance,
            gamma.storage::<f32>(),
            epsilon,
            self.statistics,
        );
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, flex_tensor(dx, x.layout().shape().clone()));
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, flex_tensor(dgamma, [shape.channels]));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, flex_tensor(dbeta, [shape.channels]));
        }
    }
}

impl<C: CheckpointStrategy> FusedBatchNormBackend for Autodiff<Flex, C> {
    fn fused_batch_norm_statistics(x: FloatTensor<Self>) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(Flex::fused_batch_norm_statistics(x.into_primitive()))
    }

    fn fused_batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        epsilon: f64,
        batch_statistics: bool,
        relu: bool,
    ) -> FloatTensor<Self> {
        let statistics = statistics.into_primitive();
        let backward = BatchNormBackward { statistics: if batch_statistics { Statistics::Batch } else { Statistics::Fixed } };
        match backward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
            OpsKind::Tracked(mut prep) => {
                let x_state = prep.checkpoint(&x);
                let gamma_state = prep.checkpoint(&gamma);
                let y = normalize(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), &statistics, epsilon, relu);
                // The output shares its buffer with the one handed on: no copy.
                let relu_output = relu.then(|| y.clone());
                prep.finish((x_state, gamma_state, statistics, epsilon, relu_output), y)
            }
            OpsKind::UnTracked(prep) => {
                prep.finish(normalize(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), &statistics, epsilon, relu))
            }
        }
    }
}
