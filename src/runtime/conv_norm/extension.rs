//! Evaluation's convolution, batch norm, residual and ReLU as one burn backend-extension op on
//! flex. Inference only: there is no backward, and the op is listed for flex alone, so the
//! runtime calls it only on tensors without autodiff (`conv_norm::forward`).

use burn::backend::flex::FlexTensor;
use burn::backend::tensor::FloatTensor;
use burn::backend::{Backend, Flex, backend_extension};
use burn::tensor::ops::ConvOptions;
use tlrun_kernels::batch_norm::fixed_coefficients;
use tlrun_kernels::conv as gemm_conv;
use tlrun_kernels::epilogue::Epilogue;

use crate::runtime::batch_norm::extension::rows;
use crate::runtime::conv::extension::{flex_geometry, flex_tensor};

#[backend_extension(Flex)]
pub trait ConvNormBackend: Backend {
    /// `conv2d(x, weight)` (no bias, dilation 1, one group, f32), then batch norm with fixed
    /// `statistics` (mean row 0, variance row 1) and `gamma`, `beta`, then (`relu`) its ReLU: the
    /// bits of those ops one after the other.
    #[allow(clippy::too_many_arguments)]
    fn conv_norm(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        options: ConvOptions<2>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self>;

    /// [`conv_norm`](Self::conv_norm) with `residual` added before the ReLU. (An optional residual
    /// in one op does not pass burn's dispatch: `Option` arguments reach flex undispatched.)
    #[allow(clippy::too_many_arguments)]
    fn conv_norm_add(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        residual: FloatTensor<Self>,
        options: ConvOptions<2>,
        epsilon: f64,
        relu: bool,
    ) -> FloatTensor<Self>;
}

impl ConvNormBackend for Flex {
    fn conv_norm(x: FlexTensor, weight: FlexTensor, gamma: FlexTensor, beta: FlexTensor, statistics: FlexTensor, options: ConvOptions<2>, epsilon: f64, relu: bool) -> FlexTensor {
        convolve(x, weight, gamma, beta, statistics, None, options, epsilon, relu)
    }

    fn conv_norm_add(
        x: FlexTensor,
        weight: FlexTensor,
        gamma: FlexTensor,
        beta: FlexTensor,
        statistics: FlexTensor,
        residual: FlexTensor,
        options: ConvOptions<2>,
        epsilon: f64,
        relu: bool,
    ) -> FlexTensor {
        convolve(x, weight, gamma, beta, statistics, Some(residual), options, epsilon, relu)
    }
}

#[allow(clippy::too_many_arguments)]
fn convolve(
    x: FlexTensor,
    weight: FlexTensor,
    gamma: FlexTensor,
    beta: FlexTensor,
    statistics: FlexTensor,
    residual: Option<FlexTensor>,
    options: ConvOptions<2>,
    epsilon: f64,
    relu: bool,
) -> FlexTensor {
    let (x, weight) = (x.to_contiguous(), weight.to_contiguous());
    let g = flex_geometry(&x, &weight, &options);
    let (mean, variance) = rows(&statistics);
    let (scale, shift) = fixed_coefficients(&mean, &variance, gamma.to_contiguous().storage::<f32>(), beta.to_contiguous().storage::<f32>(), epsilon);
    let residual = residual.map(|residual| residual.to_contiguous());
    let epilogue = Epilogue { scale: &scale, shift: &shift, residual: residual.as_ref().map(|residual| residual.storage::<f32>()), relu };
    let y = gemm_conv::forward_then(&g, x.storage::<f32>(), weight.storage::<f32>(), Some(&epilogue));
    flex_tensor(y, [g.batch, g.out_channels, g.out_height(), g.out_width()])
}
