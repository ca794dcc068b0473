//! LwF, Learning without Forgetting (Li and Hoiem 2016): the loss gains
//! `λ · T² · KL(softmax(t/T) ‖ softmax(s/T))`, averaged over the batch, where t is what the
//! pretrained network says about the batch in its own classes (the starting backbone, frozen, in
//! inference mode, then its classifier) and s is that same classifier applied to the features the
//! network being trained computes (the head's average-pooled input). The pretrained classifier
//! stays frozen: the paper also trains it (θ_o) on this term, which would add a third head to
//! every checkpoint and export; a frozen one makes the term pull only the backbone toward its
//! old outputs, which is what protects them (docs/language.md).

use std::path::Path;

use burn::prelude::*;
use burn::tensor::activation::{log_softmax, softmax};

use super::model::Backbone;
use crate::check::recipe::Lwf;
use crate::diagnostics::{Code, Diagnostic};

/// The pretrained classifier: `fc.weight` [K, D] and `fc.bias` [K] as the weights file holds them.
#[derive(Debug, Clone)]
pub struct Classifier {
    pub weight: TensorData,
    pub bias: TensorData,
}

impl Classifier {
    /// `fc.weight` and `fc.bias` from a safetensors file (torchvision's names; tlrun's own exports
    /// and zoo entries keep them).
    pub fn read(path: &Path) -> Result<Classifier, Diagnostic> {
        let unusable = |reason: String| {
            Diagnostic::new(Code::WeightsMismatch, format!("`regularise lwf` needs the pretrained classifier in {}: {reason}", path.display()))
                .with_help("LwF keeps the outputs of the network's own classifier (`fc.weight`, `fc.bias` in torchvision's names): use weights saved with it, or `regularise l2sp`/`bss`, which need none")
        };
        if path.extension().is_none_or(|extension| extension != "safetensors") {
            return Err(unusable("LwF reads the classifier from safetensors files".to_string()));
        }
        let bytes = std::fs::read(path).map_err(|error| unusable(error.to_string()))?;
        let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|error| unusable(error.to_string()))?;
        let tensor = |name: &str| -> Result<(Vec<f32>, Vec<usize>), Diagnostic> {
            let view = file.tensor(name).map_err(|_| unusable(format!("no tensor `{name}`")))?;
            if view.dtype() != safetensors::Dtype::F32 {
                return Err(unusable(format!("`{name}` is {:?}, not F32", view.dtype())));
            }
            let values = view.data().chunks_exact(4).map(|bytes| f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])).collect();
            Ok((values, view.shape().to_vec()))
        };
        let (weight, weight_shape) = tensor("fc.weight")?;
        let (bias, bias_shape) = tensor("fc.bias")?;
        if weight_shape.len() != 2 || bias_shape != [weight_shape[0]] {
            return Err(unusable(format!("`fc.weight` {weight_shape:?} and `fc.bias` {bias_shape:?} are not a linear layer")));
        }
        Ok(Classifier { weight: TensorData::new(weight, weight_shape), bias: TensorData::new(bias, bias_shape) })
    }
}

/// The frozen starting network and its classifier, on the device without autodiff.
pub struct Teacher {
    backbone: Backbone,
    weight: Tensor<2>,
    bias: Tensor<1>,
}

impl Teacher {
    /// `backbone` as it is now (the pretrained one, where training starts), copied without
    /// autodiff, with `classifier`; an error when the classifier does not read as many features
    /// as the backbone's kept layers give (their architecture says how many).
    pub fn new(backbone: &Backbone, classifier: &Classifier, device: &Device) -> Result<Teacher, Diagnostic> {
        let device = device.clone().without_autodiff();
        let weight = Tensor::<2>::from_data(classifier.weight.clone(), &device);
        let bias = Tensor::<1>::from_data(classifier.bias.clone(), &device);
        let architecture = crate::arch::lookup(&backbone.architecture)
            .ok_or_else(|| Diagnostic::new(Code::StepFailed, format!("no architecture `{}` for LwF's teacher", backbone.architecture)))?;
        let width = architecture.output_after(backbone.kept).0 as usize;
        let reads = weight.dims()[1];
        if width != reads {
            return Err(Diagnostic::new(
                Code::WeightsMismatch,
                format!("`regularise lwf`: the pretrained classifier reads {reads} features, the backbone gives {width}"),
            )
            .with_help("the weights file's `fc` belongs to another network: use the classifier saved with this backbone"));
        }
        Ok(Teacher { backbone: backbone.valid(), weight, bias })
    }

    /// `λ · T² · KL(softmax(t/T) ‖ softmax(s/T))` averaged over the batch, t the frozen network's
    /// scores for `images`, s the classifier on `features` [N, D] (in the autodiff graph).
    pub fn penalty(&self, images: Tensor<4>, features: Tensor<2>, lwf: &Lwf) -> Tensor<1> {
        let [batch, _] = features.dims();
        let pooled = self.backbone.forward(images.without_autodiff()).mean_dim(3).mean_dim(2);
        let [_, channels, _, _] = pooled.dims();
        let old = self.scores(pooled.reshape([batch, channels]));
        let new = self.scores(features);
        let temperature = lwf.temperature;
        let target = softmax(old.div_scalar(temperature), 1);
        let log_new = log_softmax(new.div_scalar(temperature), 1);
        let log_target = target.clone().clamp_min(1e-30).log();
        // Σ_c p (log p − log q), the batch's mean, times λ·T² (Hinton et al.'s scaling, which
        // keeps the gradient's size as T changes).
        let kl = target.mul(log_target.sub(log_new)).sum().div_scalar(batch as f64);
        kl.mul_scalar(lwf.lambda * temperature * temperature)
    }

    fn scores(&self, features: Tensor<2>) -> Tensor<2> {
        features.matmul(self.weight.clone().transpose()).add(self.bias.clone().unsqueeze_dim(0))
    }
}
