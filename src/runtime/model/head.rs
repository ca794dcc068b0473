use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;

use crate::check::recipe::{HeadLayer, Pool};

/// One operation of the head, in order; parameterised ones index into the head's layer lists.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum HeadOp {
    Pool(Pool),
    Flatten,
    Dropout(usize),
    BatchNorm(usize),
    Relu,
    Linear(usize),
}

/// The new head, randomly initialised. Parameters live in typed lists (`head.linears.0.weight`);
/// `ops` says in which order they run.
#[derive(Module, Debug)]
pub struct Head {
    pub linears: Vec<Linear>,
    pub norms: Vec<BatchNorm>,
    pub dropouts: Vec<Dropout>,
    #[module(skip)]
    pub ops: Vec<HeadOp>,
}

impl Head {
    pub fn new(layers: &[HeadLayer], classes: usize, device: &Device) -> Self {
        let mut head = Head { linears: Vec::new(), norms: Vec::new(), dropouts: Vec::new(), ops: Vec::new() };
        for layer in layers {
            let op = match layer {
                HeadLayer::Pool { pool } => HeadOp::Pool(*pool),
                HeadLayer::Flatten => HeadOp::Flatten,
                HeadLayer::Dropout { probability } => {
                    head.dropouts.push(DropoutConfig::new(*probability).init());
                    HeadOp::Dropout(head.dropouts.len() - 1)
                }
                HeadLayer::BatchNorm { features } => {
                    head.norms.push(BatchNormConfig::new(*features as usize).init(device));
                    HeadOp::BatchNorm(head.norms.len() - 1)
                }
                HeadLayer::Relu => HeadOp::Relu,
                HeadLayer::Linear { in_features, out_features } => {
                    let out = out_features.resolve(classes) as usize;
                    head.linears.push(LinearConfig::new(*in_features as usize, out).init(device));
                    HeadOp::Linear(head.linears.len() - 1)
                }
            };
            head.ops.push(op);
        }
        head
    }

    /// `[N, C, H, W]` features to `[N, classes]` scores.
    pub fn forward(&self, features: Tensor<4>) -> Tensor<2> {
        self.forward_keeping(features, false).0
    }

    /// [`forward`](Self::forward), and with `keep` the flat features its first `flatten` made (the
    /// pooled backbone output: what BSS shrinks).
    pub fn forward_keeping(&self, features: Tensor<4>, keep: bool) -> (Tensor<2>, Option<Tensor<2>>) {
        let mut kept = None;
        let mut spatial = Some(features);
        let mut flat: Option<Tensor<2>> = None;
        for op in &self.ops {
            match *op {
                HeadOp::Pool(pool) => {
                    if let Some(x) = spatial.take() {
                        spatial = Some(match pool {
                            Pool::Avg => x.mean_dim(3).mean_dim(2),
                            Pool::Max => x.max_dim(3).max_dim(2),
                            // fastai's AdaptiveConcatPool2d: max first, then average.
                            Pool::Concat => Tensor::cat(vec![x.clone().max_dim(3).max_dim(2), x.mean_dim(3).mean_dim(2)], 1),
                        });
                    }
                }
                HeadOp::Flatten => {
                    if let Some(x) = spatial.take() {
                        let [batch, channels, height, width] = x.dims();
                        let x = x.reshape([batch, channels * height * width]);
                        if keep && kept.is_none() {
                            kept = Some(x.clone());
                        }
                        flat = Some(x);
                    }
                }
                HeadOp::Dropout(index) => {
                    if let Some(x) = flat.take() {
                        flat = Some(self.dropouts[index].forward(x));
                    } else if let Some(x) = spatial.take() {
                        spatial = Some(self.dropouts[index].forward(x));
                    }
                }
                HeadOp::BatchNorm(index) => flat = flat.map(|x| batch_norm_1d(&self.norms[index], x)),
                HeadOp::Relu => flat = flat.map(relu),
                HeadOp::Linear(index) => flat = flat.map(|x| self.linears[index].forward(x)),
            }
        }
        let scores = flat.unwrap_or_else(|| {
            let x = spatial.expect("the head holds either flat or spatial features");
            let [batch, channels, height, width] = x.dims();
            x.reshape([batch, channels * height * width])
        });
        (scores, kept)
    }
}

/// `BatchNorm1d` over [N, C] through the backbone's batch norm ([N, C, 1, 1]): one rule for the
/// running variance in the whole network, PyTorch's unbiased one (burn's own forward takes the
/// biased variance).
fn batch_norm_1d(norm: &BatchNorm, x: Tensor<2>) -> Tensor<2> {
    let [batch, channels] = x.dims();
    crate::runtime::batch_norm::forward(norm, x.reshape([batch, channels, 1, 1])).reshape([batch, channels])
}

#[cfg(test)]
mod tests {
    use burn::nn::BatchNormConfig;
    use burn::prelude::*;

    /// The head's BatchNorm1d updates its running variance with the unbiased batch variance, as
    /// the backbone's layers and PyTorch's `BatchNorm1d` do.
    #[test]
    fn the_heads_batchnorm_takes_the_unbiased_variance_like_the_backbones() {
        let device = Device::flex().autodiff();
        let norm = BatchNormConfig::new(3).init(&device);
        let values = [[1.0f32, 10.0, -2.0], [2.0, 14.0, 0.0], [4.0, 9.0, 5.0], [7.0, 11.0, 1.0]];
        let x = Tensor::<2>::from_data(values, &device);
        let _ = super::batch_norm_1d(&norm, x);
        let got = norm.running_var.value_sync().into_data().try_to_vec::<f32>().unwrap();
        for channel in 0..3 {
            let column: Vec<f64> = values.iter().map(|row| f64::from(row[channel])).collect();
            let mean = column.iter().sum::<f64>() / 4.0;
            let unbiased = column.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 3.0;
            let expected = 0.9 + 0.1 * unbiased;
            assert!((f64::from(got[channel]) - expected).abs() < 1e-4 * expected, "channel {channel}: {} vs {expected}", got[channel]);
        }
    }
}
