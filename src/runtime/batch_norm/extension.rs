//! Batch norm as burn backend-extension ops on flex, with backwards of their own: the channel
//! statistics (not differentiated), normalisation with the batch's statistics (training) and
//! with fixed ones (running statistics: evaluation, frozen layers).

use burn::backend::autodiff::NodeId;
use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Flex, backend_extension};
use burn::tensor::TensorData;
use tlrun_kernels::batch_norm::{self as kernels, NormShape};

#[backend_extension(Flex, Autodiff)]
pub trait FusedBatchNormBackend: Backend {
    /// Per channel mean (row 0) and biased variance (row 1) of `x` [N, C, H, W]: [2, C]. Not
    /// differentiated: [`fused_batch_norm_train`](Self::fused_batch_norm_train) differentiates
    /// through the statistics itself.
    fn fused_batch_norm_statistics(x: FloatTensor<Self>) -> FloatTensor<Self>;

    /// `x` normalised with `statistics`, which must be `x`'s own, then scaled and shifted per
    /// channel; differentiated as batch norm in training.
    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;

    /// `x` normalised with fixed statistics (mean row 0, variance row 1 of `statistics`).
    fn fused_batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self>;
}

fn contiguous_f32(tensor: &FlexTensor) -> FlexTensor {
    tensor.to_contiguous()
}

fn norm_shape(x: &FlexTensor) -> NormShape {
    let dims = x.layout().shape();
    NormShape { batch: dims[0], channels: dims[1], pixels: dims[2..].iter().product() }
}

fn flex_tensor(values: Vec<f32>, shape: Vec<usize>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape))
}

/// (mean, variance) rows of a [2, C] statistics tensor.
fn rows(statistics: &FlexTensor) -> (Vec<f32>, Vec<f32>) {
    let values = contiguous_f32(statistics);
    let values = values.storage::<f32>();
    let channels = values.len() / 2;
    (values[..channels].to_vec(), values[channels..].to_vec())
}

fn normalize(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, statistics: &FlexTensor, epsilon: f64) -> FlexTensor {
    let x = contiguous_f32(&x);
    let (mean, variance) = rows(statistics);
    let shape = norm_shape(&x);
    let y = kernels::normalize(
        shape,
        x.storage::<f32>(),
        &mean,
        &variance,
        contiguous_f32(&gamma).storage::<f32>(),
        contiguous_f32(&beta).storage::<f32>(),
        epsilon,
    );
    flex_tensor(y, x.layout().shape().to_vec())
}

impl FusedBatchNormBackend for Flex {
    fn fused_batch_norm_statistics(x: FlexTensor) -> FlexTensor {
        let x = contiguous_f32(&x);
        let (mut mean, variance) = kernels::statistics(norm_shape(&x), x.storage::<f32>());
        let channels = mean.len();
        mean.extend(variance);
        flex_tensor(mean, vec![2, channels])
    }

    fn fused_batch_norm_train(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, statistics: FlexTensor, epsilon: f64) -> FlexTensor {
        normalize(x, gamma, beta, &statistics, epsilon)
    }

    fn fused_batch_norm(x: FlexTensor, gamma: FlexTensor, beta: FlexTensor, statistics: FlexTensor, epsilon: f64) -> FlexTensor {
        normalize(x, gamma, beta, &statistics, epsilon)
    }
}

/// The backward of both normalisations; `batch_statistics` says whether the statistics were the
/// batch's own (training: they depend on x) or fixed.
#[derive(Debug)]
struct BatchNormBackward {
    batch_statistics: bool,
}

impl Backward<Flex, 3> for BatchNormBackward {
    /// (x, γ, statistics, ε)
    type State = (NodeId, NodeId, FlexTensor, f64);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, checkpointer: &mut Checkpointer) {
        let [x_node, gamma_node, beta_node] = ops.parents;
        let dy = contiguous_f32(&grads.consume::<Flex>(&ops.node));
        let (x_state, gamma_state, statistics, epsilon) = ops.state;
        let x = contiguous_f32(&checkpointer.retrieve_node_output::<FlexTensor>(x_state));
        let gamma = contiguous_f32(&checkpointer.retrieve_node_output::<FlexTensor>(gamma_state));
        let (mean, variance) = rows(&statistics);
        let shape = norm_shape(&x);
        let gradients = if self.batch_statistics { kernels::backward } else { kernels::backward_with_fixed_statistics };
        let (dx, dgamma, dbeta) =
            gradients(shape, x.storage::<f32>(), dy.storage::<f32>(), &mean, &variance, gamma.storage::<f32>(), epsilon);
        if let Some(node) = x_node {
            grads.register::<Flex>(node.id, flex_tensor(dx, x.layout().shape().to_vec()));
        }
        if let Some(node) = gamma_node {
            grads.register::<Flex>(node.id, flex_tensor(dgamma, vec![shape.channels]));
        }
        if let Some(node) = beta_node {
            grads.register::<Flex>(node.id, flex_tensor(dbeta, vec![shape.channels]));
        }
    }
}

fn autodiff_normalize<C: CheckpointStrategy>(
    x: FloatTensor<Autodiff<Flex, C>>,
    gamma: FloatTensor<Autodiff<Flex, C>>,
    beta: FloatTensor<Autodiff<Flex, C>>,
    statistics: FloatTensor<Autodiff<Flex, C>>,
    epsilon: f64,
    batch_statistics: bool,
) -> FloatTensor<Autodiff<Flex, C>> {
    let statistics = statistics.into_primitive();
    let backward = BatchNormBackward { batch_statistics };
    match backward.prepare::<C>([x.node(), gamma.node(), beta.node()]).compute_bound().stateful() {
        OpsKind::Tracked(mut prep) => {
            let x_state = prep.checkpoint(&x);
            let gamma_state = prep.checkpoint(&gamma);
            let y = normalize(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), &statistics, epsilon);
            prep.finish((x_state, gamma_state, statistics, epsilon), y)
        }
        OpsKind::UnTracked(prep) => {
            prep.finish(normalize(x.into_primitive(), gamma.into_primitive(), beta.into_primitive(), &statistics, epsilon))
        }
    }
}

impl<C: CheckpointStrategy> FusedBatchNormBackend for Autodiff<Flex, C> {
    fn fused_batch_norm_statistics(x: FloatTensor<Self>) -> FloatTensor<Self> {
        FloatTensor::<Self>::new(Flex::fused_batch_norm_statistics(x.into_primitive()))
    }

    fn fused_batch_norm_train(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        autodiff_normalize::<C>(x, gamma, beta, statistics, epsilon, true)
    }

    fn fused_batch_norm(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        epsilon: f64,
    ) -> FloatTensor<Self> {
        autodiff_normalize::<C>(x, gamma, beta, statistics, epsilon, false)
    }
}
