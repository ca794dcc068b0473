//! AdamW's step as one fused op on flex (`kernels/src/adamw.rs`): one pass over the parameter, its
//! gradient and its moments instead of a dozen whole-tensor operations. The optimizer
//! (`runtime/optimizer.rs`) calls [`step`] and keeps its tensor-op formula for every other backend.

use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, Backend, Dispatch, Flex, backend_extension};
use burn::prelude::*;
use burn::tensor::DType;
use tlrun_kernels::adamw::{self as kernels, AdamWStep};

use crate::runtime::kernel_choice::runs_tlrun_kernels;

#[backend_extension(Flex, Autodiff)]
pub trait FusedAdamWBackend: Backend {
    /// (parameter, first moment, second moment) after one AdamW step; f32 only.
    fn fused_adamw_step(
        parameter: FloatTensor<Self>,
        gradient: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        constants: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>);
}

/// A contiguous tensor that owns its buffer, so that the step writes it in place (a shared or
/// strided one is copied first, as flex's own in-place ops do).
fn owned_contiguous(tensor: FlexTensor) -> FlexTensor {
    let contiguous = tensor.to_contiguous();
    drop(tensor);
    contiguous
}

impl FusedAdamWBackend for Flex {
    fn fused_adamw_step(
        parameter: FlexTensor,
        gradient: FlexTensor,
        moment_1: FlexTensor,
        moment_2: FlexTensor,
        constants: AdamWStep,
    ) -> (FlexTensor, FlexTensor, FlexTensor) {
        let (mut parameter, mut moment_1, mut moment_2) =
            (owned_contiguous(parameter), owned_contiguous(moment_1), owned_contiguous(moment_2));
        let gradient = gradient.to_contiguous();
        kernels::step(
            parameter.storage_mut::<f32>(),
            gradient.storage::<f32>(),
            moment_1.storage_mut::<f32>(),
            moment_2.storage_mut::<f32>(),
            &constants,
        );
        (parameter, moment_1, moment_2)
    }
}

/// The optimizer's tensors carry no graph; on autodiff the step runs on the inner tensors.
impl<C: CheckpointStrategy> FusedAdamWBackend for Autodiff<Flex, C> {
    fn fused_adamw_step(
        parameter: FloatTensor<Self>,
        gradient: FloatTensor<Self>,
        moment_1: FloatTensor<Self>,
        moment_2: FloatTensor<Self>,
        constants: AdamWStep,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>) {
        let [parameter, gradient, moment_1, moment_2] = [parameter, gradient, moment_1, moment_2].map(|tensor| tensor.into_primitive());
        let (parameter, moment_1, moment_2) = Flex::fused_adamw_step(parameter, gradient, moment_1, moment_2, constants);
        (FloatTensor::<Self>::new(parameter), FloatTensor::<Self>::new(moment_1), FloatTensor::<Self>::new(moment_2))
    }
}

/// One AdamW step's inputs besides the tensors.
#[derive(Debug, Clone, Copy)]
pub struct Constants {
    pub beta_1: f64,
    pub beta_2: f64,
    pub epsilon: f64,
    /// This step's t (1 at the first step).
    pub time: i32,
    pub learning_rate: f64,
    pub weight_decay: f64,
}

impl Constants {
    /// As the kernel takes them: f32, like the scalars of burn's tensor ops, with the bias
    /// corrections 1 − βᵗ and the decay factor 1 − lr·weight decay worked out in f64 first.
    fn kernel_step(&self) -> AdamWStep {
        AdamWStep {
            beta_1: self.beta_1 as f32,
            beta_2: self.beta_2 as f32,
            epsilon: self.epsilon as f32,
            bias_correction: [(1.0 - self.beta_1.powi(self.time)) as f32, (1.0 - self.beta_2.powi(self.time)) as f32],
            learning_rate: self.learning_rate as f32,
            decay_factor: (1.0 - self.learning_rate * self.weight_decay) as f32,
        }
    }
}

/// The fused op takes these tensors: f32 on flex, and burn's kernels were not asked for
/// (`TLRUN_BURN_KERNELS=1`). Elsewhere the optimizer computes the step with tensor ops.
pub fn applies<const D: usize>(parameter: &Tensor<D>, gradient: &Tensor<D>, moments: Option<(&Tensor<D>, &Tensor<D>)>) -> bool {
    let mut tensors = vec![gradient];
    tensors.extend(moments.into_iter().flat_map(|(moment_1, moment_2)| [moment_1, moment_2]));
    runs_tlrun_kernels(parameter)
        && parameter.dtype() == DType::F32
        && tensors.iter().all(|tensor| tensor.dtype() == DType::F32 && tensor.dims() == parameter.dims())
}

/// (parameter, first moment, second moment) after the step, for tensors the op [`applies`] to.
/// Taking them by value lets the op write them in place.
pub fn step<const D: usize>(
    parameter: Tensor<D>,
    gradient: Tensor<D>,
    moments: Option<(Tensor<D>, Tensor<D>)>,
    constants: Constants,
) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let (moment_1, moment_2) = moments.unwrap_or_else(|| (parameter.zeros_like(), parameter.zeros_like()));
    let (parameter, moment_1, moment_2) = <Dispatch as FusedAdamWBackend>::fused_adamw_step(
        parameter.into_dispatch(),
        gradient.into_dispatch(),
        moment_1.into_dispatch(),
        moment_2.into_dispatch(),
        constants.kernel_step(),
    );
    (Tensor::from_dispatch(parameter), Tensor::from_dispatch(moment_1), Tensor::from_dispatch(moment_2))
}
