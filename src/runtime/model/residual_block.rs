use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Initializer, PaddingConfig2d};
use burn::prelude::*;

use crate::arch::BlockKind;
use crate::runtime::conv_norm::forward as conv_norm;

/// torchvision's kaiming_normal_(mode="fan_out", nonlinearity="relu") for convolutions.
pub fn conv(in_channels: u32, out_channels: u32, kernel: u32, stride: u32, padding: u32, device: &Device) -> Conv2d {
    let padding = padding as usize;
    Conv2dConfig::new([in_channels as usize, out_channels as usize], [kernel as usize, kernel as usize])
        .with_stride([stride as usize, stride as usize])
        .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
        .with_bias(false)
        .with_initializer(Initializer::KaimingNormal { gain: 2f64.sqrt(), fan_out_only: true })
        .init(device)
}

pub fn batch_norm(features: u32, device: &Device) -> BatchNorm {
    BatchNormConfig::new(features as usize).with_epsilon(1e-5).with_momentum(0.1).init(device)
}

/// torchvision's `downsample = Sequential(conv1x1, BatchNorm)`; exported as `downsample.0/.1`.
#[derive(Module, Debug)]
pub struct Downsample {
    pub conv: Conv2d,
    pub bn: BatchNorm,
}

/// One residual block: BasicBlock (conv1, conv2) or Bottleneck (conv1, conv2, conv3).
#[derive(Module, Debug)]
pub struct ResidualBlock {
    pub conv1: Conv2d,
    pub bn1: BatchNorm,
    pub conv2: Conv2d,
    pub bn2: BatchNorm,
    pub conv3: Option<Conv2d>,
    pub bn3: Option<BatchNorm>,
    pub downsample: Option<Downsample>,
}

impl ResidualBlock {
    pub fn new(block: BlockKind, in_channels: u32, width: u32, stride: u32, device: &Device) -> Self {
        let out_channels = width * block.expansion();
        let downsample = (stride != 1 || in_channels != out_channels).then(|| Downsample {
            conv: conv(in_channels, out_channels, 1, stride, 0, device),
            bn: batch_norm(out_channels, device),
        });
        match block {
            BlockKind::Basic => ResidualBlock {
                conv1: conv(in_channels, width, 3, stride, 1, device),
                bn1: batch_norm(width, device),
                conv2: conv(width, width, 3, 1, 1, device),
                bn2: batch_norm(width, device),
                conv3: None,
                bn3: None,
                downsample,
            },
            // torchvision v1.5: the stride sits on the 3x3 convolution.
            BlockKind::Bottleneck => ResidualBlock {
                conv1: conv(in_channels, width, 1, 1, 0, device),
                bn1: batch_norm(width, device),
                conv2: conv(width, width, 3, stride, 1, device),
                bn2: batch_norm(width, device),
                conv3: Some(conv(width, out_channels, 1, 1, 0, device)),
                bn3: Some(batch_norm(out_channels, device)),
                downsample,
            },
        }
    }

    /// Each convolution with its batch norm (and ReLU, and at the end the residual) through
    /// runtime/conv_norm: one op in evaluation, the separate ops in training.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let identity = match &self.downsample {
            Some(downsample) => conv_norm(&downsample.conv, &downsample.bn, input.clone(), None, false),
            None => input.clone(),
        };
        let out = conv_norm(&self.conv1, &self.bn1, input, None, true);
        match (&self.conv3, &self.bn3) {
            (Some(conv3), Some(bn3)) => {
                let out = conv_norm(&self.conv2, &self.bn2, out, None, true);
                conv_norm(conv3, bn3, out, Some(identity), true)
            }
            _ => conv_norm(&self.conv2, &self.bn2, out, Some(identity), true),
        }
    }
}
