use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::residual_block::{ResidualBlock, batch_norm, conv};
use crate::arch::{Architecture, LayerKind};

/// The pretrained part, cut after `kept` layers. Fields carry torchvision's names; a layer the cut
/// removed is `None`, so it has no parameters at all.
#[derive(Module, Debug)]
pub struct Backbone {
    pub conv1: Option<burn::nn::conv::Conv2d>,
    pub bn1: Option<BatchNorm>,
    pub maxpool: Option<MaxPool2d>,
    pub layer1: Option<Vec<ResidualBlock>>,
    pub layer2: Option<Vec<ResidualBlock>>,
    pub layer3: Option<Vec<ResidualBlock>>,
    pub layer4: Option<Vec<ResidualBlock>>,
    pub fc: Option<Linear>,
    /// Which architecture, and how many of its layers run, in order.
    pub architecture: String,
    pub kept: usize,
}

impl Backbone {
    /// The first `kept` layers of `architecture`, its first convolution taking `input_channels`.
    pub fn new(architecture: &Architecture, kept: usize, input_channels: u32, device: &Device) -> Self {
        let mut backbone = Backbone {
            conv1: None,
            bn1: None,
            maxpool: None,
            layer1: None,
            layer2: None,
            layer3: None,
            layer4: None,
            fc: None,
            architecture: architecture.name.to_string(),
            kept,
        };
        for layer in &architecture.layers[..kept] {
            match (&layer.kind, layer.name) {
                (LayerKind::Conv { out_channels, kernel, stride, padding, .. }, "conv1") => {
                    backbone.conv1 = Some(conv(input_channels, *out_channels, *kernel, *stride, *padding, device))
                }
                (LayerKind::BatchNorm { features }, "bn1") => backbone.bn1 = Some(batch_norm(*features, device)),
                (LayerKind::MaxPool { kernel, stride, padding }, "maxpool") => {
                    let (kernel, stride, padding) = (*kernel as usize, *stride as usize, *padding as usize);
                    backbone.maxpool = Some(
                        MaxPool2dConfig::new([kernel, kernel])
                            .with_strides([stride, stride])
                            .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
                            .init(),
                    )
                }
                (LayerKind::Stage { block, blocks, in_channels, width, stride }, name) => {
                    let mut stage = Vec::with_capacity(*blocks as usize);
                    let mut channels = *in_channels;
                    for index in 0..*blocks {
                        let block_stride = if index == 0 { *stride } else { 1 };
                        stage.push(ResidualBlock::new(*block, channels, *width, block_stride, device));
                        channels = width * block.expansion();
                    }
                    match name {
                        "layer1" => backbone.layer1 = Some(stage),
                        "layer2" => backbone.layer2 = Some(stage),
                        "layer3" => backbone.layer3 = Some(stage),
                        _ => backbone.layer4 = Some(stage),
                    }
                }
                (LayerKind::Linear { in_features, out_features }, "fc") => {
                    backbone.fc = Some(LinearConfig::new(*in_features as usize, *out_features as usize).init(device))
                }
                _ => {}
            }
        }
        backbone
    }

    /// Runs the kept layers in the architecture's order. Returns `[N, C, H, W]`, or `[N, C, 1, 1]`
    /// once pooled; a kept `fc` returns `[N, F, 1, 1]` so the head always receives rank 4.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let Some(architecture) = crate::arch::lookup(&self.architecture) else { return input };
        let stage = |blocks: &Option<Vec<ResidualBlock>>, x: Tensor<4>| match blocks {
            Some(blocks) => blocks.iter().fold(x, |x, block| block.forward(x)),
            None => x,
        };
        let mut x = input;
        for layer in &architecture.layers[..self.kept] {
            x = match layer.name {
                "conv1" => self.conv1.as_ref().map_or(x.clone(), |conv1| conv1.forward(x)),
                "bn1" => self.bn1.as_ref().map_or(x.clone(), |bn1| bn1.forward(x)),
                "relu" => relu(x),
                "maxpool" => self.maxpool.as_ref().map_or(x.clone(), |maxpool| maxpool.forward(x)),
                "layer1" => stage(&self.layer1, x),
                "layer2" => stage(&self.layer2, x),
                "layer3" => stage(&self.layer3, x),
                "layer4" => stage(&self.layer4, x),
                "avgpool" => x.mean_dim(3).mean_dim(2),
                "fc" => match &self.fc {
                    Some(fc) => {
                        let [batch, features, _, _] = x.dims();
                        let flat = x.reshape([batch, features]);
                        let out = fc.forward(flat);
                        let width = out.dims()[1];
                        out.reshape([batch, width, 1, 1])
                    }
                    None => x,
                },
                _ => x,
            };
        }
        x
    }
}
