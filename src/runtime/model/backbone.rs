use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{BatchNorm, Linear, LinearConfig, PaddingConfig2d};
use burn::prelude::*;
use burn::tensor::activation::relu;

use super::residual_block::{ResidualBlock, batch_norm, conv};
use crate::arch::{Architecture, LayerKind};
use crate::runtime::param_groups::{LayerParameters, parameter_ids};

/// One layer of the forward pass, decided once from the architecture's typed specs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackboneOp {
    Conv1,
    Bn1,
    Relu,
    MaxPool,
    /// `layer1` … `layer4`.
    Stage(u8),
    AvgPool,
    Fc,
}

/// The pretrained part. Fields carry torchvision's names; a layer the cut removed is `None`, so it
/// has no parameters at all. `ops` is the forward pass, one entry per kept layer.
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
    pub architecture: String,
    /// How many of the architecture's layers are kept.
    pub kept: usize,
    #[module(skip)]
    pub ops: Vec<BackboneOp>,
}

impl Backbone {
    /// The first `kept` layers of `architecture`, its first convolution taking `input_channels`.
    pub fn new(architecture: &Architecture, kept: usize, input_channels: u32, device: &Device) -> Self {
        let kept = kept.min(architecture.layers.len());
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
            ops: Vec::with_capacity(kept),
        };
        for layer in &architecture.layers[..kept] {
            let op = match &layer.kind {
                LayerKind::Conv { out_channels, kernel, stride, padding, .. } => {
                    backbone.conv1 = Some(conv(input_channels, *out_channels, *kernel, *stride, *padding, device));
                    BackboneOp::Conv1
                }
                LayerKind::BatchNorm { features } => {
                    backbone.bn1 = Some(batch_norm(*features, device));
                    BackboneOp::Bn1
                }
                LayerKind::Relu => BackboneOp::Relu,
                LayerKind::MaxPool { kernel, stride, padding } => {
                    let (kernel, stride, padding) = (*kernel as usize, *stride as usize, *padding as usize);
                    backbone.maxpool = Some(
                        MaxPool2dConfig::new([kernel, kernel])
                            .with_strides([stride, stride])
                            .with_padding(PaddingConfig2d::Explicit(padding, padding, padding, padding))
                            .init(),
                    );
                    BackboneOp::MaxPool
                }
                LayerKind::Stage { block, blocks, in_channels, width, stride } => {
                    let mut stage = Vec::with_capacity(*blocks as usize);
                    let mut channels = *in_channels;
                    for index in 0..*blocks {
                        let block_stride = if index == 0 { *stride } else { 1 };
                        stage.push(ResidualBlock::new(*block, channels, *width, block_stride, device));
                        channels = width * block.expansion();
                    }
                    // The arch specs number the stages layer1.. in order: the n-th stage is layer n.
                    let number = backbone.ops.iter().filter(|op| matches!(op, BackboneOp::Stage(_))).count() as u8 + 1;
                    *backbone.stage_mut(number) = Some(stage);
                    BackboneOp::Stage(number)
                }
                LayerKind::AdaptiveAvgPool => BackboneOp::AvgPool,
                LayerKind::Linear { in_features, out_features } => {
                    backbone.fc = Some(LinearConfig::new(*in_features as usize, *out_features as usize).init(device));
                    BackboneOp::Fc
                }
            };
            backbone.ops.push(op);
        }
        backbone
    }

    fn stage_mut(&mut self, number: u8) -> &mut Option<Vec<ResidualBlock>> {
        match number {
            1 => &mut self.layer1,
            2 => &mut self.layer2,
            3 => &mut self.layer3,
            _ => &mut self.layer4,
        }
    }

    /// timm's `adapt_input_conv` for one channel: each first-layer filter's RGB weights summed,
    /// so that a grey image gives what the colour network gave for that grey replicated.
    pub fn adapt_to_grey(mut self) -> Self {
        if let Some(mut conv1) = self.conv1.take() {
            // A fresh leaf: the sum of a tracked tensor is not one, and a stage that trains
            // conv1 could not track it (burn panics "Can't convert a non leaf tensor").
            conv1.weight = conv1.weight.map(|weight| {
                let trainable = weight.is_require_grad();
                let summed = weight.sum_dim(1).detach();
                if trainable { summed.require_grad() } else { summed }
            });
            self.conv1 = Some(conv1);
        }
        self
    }

    /// The parameters of the layer that runs as `op`, found through the typed fields that hold it.
    pub fn layer_parameters(&self, op: BackboneOp) -> LayerParameters {
        let batchnorm = |bn: &Option<BatchNorm>| {
            let ids = parameter_ids(bn);
            LayerParameters { all: ids.clone(), batchnorms: ids }
        };
        match op {
            BackboneOp::Conv1 => LayerParameters { all: parameter_ids(&self.conv1), batchnorms: Vec::new() },
            BackboneOp::Bn1 => batchnorm(&self.bn1),
            BackboneOp::Fc => LayerParameters { all: parameter_ids(&self.fc), batchnorms: Vec::new() },
            BackboneOp::Stage(number) => {
                let blocks = self.stage(number).as_deref().unwrap_or_default();
                let batchnorms = blocks
                    .iter()
                    .flat_map(|block| {
                        let mut ids = parameter_ids(&block.bn1);
                        ids.extend(parameter_ids(&block.bn2));
                        ids.extend(parameter_ids(&block.bn3));
                        ids.extend(block.downsample.as_ref().map(|downsample| parameter_ids(&downsample.bn)).unwrap_or_default());
                        ids
                    })
                    .collect();
                LayerParameters { all: parameter_ids(self.stage(number)), batchnorms }
            }
            BackboneOp::Relu | BackboneOp::MaxPool | BackboneOp::AvgPool => LayerParameters::default(),
        }
    }

    fn stage(&self, number: u8) -> &Option<Vec<ResidualBlock>> {
        match number {
            1 => &self.layer1,
            2 => &self.layer2,
            3 => &self.layer3,
            _ => &self.layer4,
        }
    }

    /// Keep the first `kept` layers: what comes after the cut point loses its parameters.
    pub fn cut(mut self, kept: usize) -> Self {
        let kept = kept.min(self.ops.len());
        for op in self.ops.split_off(kept) {
            match op {
                BackboneOp::Conv1 => self.conv1 = None,
                BackboneOp::Bn1 => self.bn1 = None,
                BackboneOp::MaxPool => self.maxpool = None,
                BackboneOp::Stage(number) => *self.stage_mut(number) = None,
                BackboneOp::Fc => self.fc = None,
                BackboneOp::Relu | BackboneOp::AvgPool => {}
            }
        }
        self.kept = kept;
        self
    }

    /// The forward pass over the kept layers, keeping the output after each layer in `taps`
    /// (indices of kept layers) and, with `blocks`, after every residual block but a stage's last,
    /// each globally average-pooled to `[N, C]`. A tap is named by the layer (`layer3`) or the
    /// block (`layer3.0`); `names` are the kept layers' names.
    pub fn pooled_taps(&self, input: Tensor<4>, names: &[&str], taps: &[usize], blocks: bool) -> Vec<(String, Tensor<2>)> {
        let pooled = |x: &Tensor<4>| {
            let [batch, channels, _, _] = x.dims();
            x.clone().mean_dim(3).mean_dim(2).reshape([batch, channels])
        };
        let mut found = Vec::new();
        let mut x = input;
        for (index, op) in self.ops.iter().enumerate() {
            if matches!(op, BackboneOp::AvgPool | BackboneOp::Fc) {
                break;
            }
            x = match op {
                BackboneOp::Stage(number) => {
                    let stage = self.stage(*number).as_deref().unwrap_or_default();
                    let mut y = x;
                    for (block_index, block) in stage.iter().enumerate() {
                        y = block.forward(y);
                        if blocks && block_index + 1 < stage.len() && taps.contains(&index) {
                            found.push((format!("{}.{block_index}", names.get(index).copied().unwrap_or("stage")), pooled(&y)));
                        }
                    }
                    y
                }
                _ => self.forward_op(*op, x),
            };
            if taps.contains(&index) {
                found.push((names.get(index).copied().unwrap_or("layer").to_string(), pooled(&x)));
            }
        }
        found
    }

    /// Runs the kept layers in order. Returns `[N, C, H, W]`, or `[N, C, 1, 1]` once pooled; a
    /// kept `fc` returns `[N, F, 1, 1]` so the head always receives rank 4.
    pub fn forward(&self, input: Tensor<4>) -> Tensor<4> {
        let mut x = input;
        let mut index = 0;
        while let Some(&op) = self.ops.get(index) {
            let (next, after) = (self.ops.get(index + 1).copied(), self.ops.get(index + 2).copied());
            x = match (op, next, &self.conv1, &self.bn1) {
                // The stem's convolution, batch norm and ReLU in one op in evaluation
                // (runtime/conv_norm), the separate ops in training.
                (BackboneOp::Conv1, Some(BackboneOp::Bn1), Some(conv1), Some(bn1)) => {
                    let relu = after == Some(BackboneOp::Relu);
                    index += if relu { 3 } else { 2 };
                    crate::runtime::conv_norm::forward(conv1, bn1, x, None, relu)
                }
                // The stem's batch norm and ReLU in one pass (runtime/batch_norm's `forward_relu`).
                (BackboneOp::Bn1, Some(BackboneOp::Relu), _, Some(bn1)) => {
                    index += 2;
                    crate::runtime::batch_norm::forward_relu(bn1, x)
                }
                _ => {
                    index += 1;
                    self.forward_op(op, x)
                }
            };
        }
        x
    }

    /// One kept layer of the forward pass.
    fn forward_op(&self, op: BackboneOp, x: Tensor<4>) -> Tensor<4> {
        match op {
            BackboneOp::Conv1 => self.conv1.as_ref().map_or(x.clone(), |conv1| crate::runtime::conv::forward(conv1, x)),
            BackboneOp::Bn1 => self.bn1.as_ref().map_or(x.clone(), |bn1| crate::runtime::batch_norm::forward(bn1, x)),
            BackboneOp::Relu => relu(x),
            BackboneOp::MaxPool => self.maxpool.as_ref().map_or(x.clone(), |maxpool| crate::runtime::max_pool::forward(maxpool, x)),
            BackboneOp::Stage(number) => match self.stage(number) {
                Some(blocks) => blocks.iter().fold(x, |x, block| block.forward(x)),
                None => x,
            },
            BackboneOp::AvgPool => x.mean_dim(3).mean_dim(2),
            BackboneOp::Fc => match &self.fc {
                Some(fc) => {
                    let [batch, features, _, _] = x.dims();
                    let out = fc.forward(x.reshape([batch, features]));
                    let width = out.dims()[1];
                    out.reshape([batch, width, 1, 1])
                }
                None => x,
            },
        }
    }
}
