use serde::Serialize;

/// Normalisation and input facts that pretrained weights were made with (timm's pretrained_cfg).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stats {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub input_size: u32,
    pub channels: u32,
}

impl Stats {
    pub fn imagenet(input_size: u32) -> Stats {
        Stats { mean: vec![0.485, 0.456, 0.406], std: vec![0.229, 0.224, 0.225], input_size, channels: 3 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockKind {
    /// Two 3x3 convolutions (resnet18/34).
    Basic,
    /// 1x1, 3x3, 1x1 with 4x expansion (resnet50).
    Bottleneck,
}

impl BlockKind {
    pub fn expansion(self) -> u32 {
        match self {
            BlockKind::Basic => 1,
            BlockKind::Bottleneck => 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LayerKind {
    Conv { in_channels: u32, out_channels: u32, kernel: u32, stride: u32, padding: u32 },
    BatchNorm { features: u32 },
    Relu,
    MaxPool { kernel: u32, stride: u32, padding: u32 },
    /// A torchvision `layerN`: `blocks` residual blocks, the first with `stride` and a downsample.
    Stage { block: BlockKind, blocks: u32, in_channels: u32, width: u32, stride: u32 },
    AdaptiveAvgPool,
    Linear { in_features: u32, out_features: u32 },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LayerSpec {
    pub name: &'static str,
    pub kind: LayerKind,
}

impl LayerSpec {
    pub fn has_parameters(&self) -> bool {
        matches!(
            self.kind,
            LayerKind::Conv { .. } | LayerKind::BatchNorm { .. } | LayerKind::Stage { .. } | LayerKind::Linear { .. }
        )
    }

    /// Channels (or features) this layer outputs, given what came in.
    pub fn out_channels(&self, incoming: u32) -> u32 {
        match self.kind {
            LayerKind::Conv { out_channels, .. } => out_channels,
            LayerKind::Stage { block, width, .. } => width * block.expansion(),
            LayerKind::Linear { out_features, .. } => out_features,
            _ => incoming,
        }
    }

    /// Spatial size this layer outputs for a square input of side `size`.
    pub fn out_size(&self, size: u32) -> u32 {
        let conv = |size: u32, kernel: u32, stride: u32, padding: u32| {
            ((size + 2 * padding).saturating_sub(kernel)) / stride + 1
        };
        match self.kind {
            LayerKind::Conv { kernel, stride, padding, .. } => conv(size, kernel, stride, padding),
            LayerKind::MaxPool { kernel, stride, padding } => conv(size, kernel, stride, padding),
            LayerKind::Stage { stride, .. } => conv(size, 3, stride, 1),
            LayerKind::AdaptiveAvgPool | LayerKind::Linear { .. } => 1,
            _ => size,
        }
    }

    /// Whether the output still has height and width (a head then needs a pool).
    pub fn is_spatial_output(&self, input_was_spatial: bool) -> bool {
        match self.kind {
            LayerKind::AdaptiveAvgPool | LayerKind::Linear { .. } => false,
            _ => input_was_spatial,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Architecture {
    pub name: &'static str,
    pub summary: &'static str,
    pub layers: Vec<LayerSpec>,
    /// Input size and statistics its reference weights use (torchvision: ImageNet at 224).
    pub default_stats: Stats,
    /// The layer after which `cut` happens when a recipe names none: the last residual stage.
    pub default_cut_after: &'static str,
    /// Default layer groups (fastai's layer groups): stem, each stage, then `top` for kept pool/fc.
    pub default_groups: Vec<(&'static str, Vec<&'static str>)>,
}

impl Architecture {
    pub fn layer_index(&self, name: &str) -> Option<usize> {
        self.layers.iter().position(|layer| layer.name == name)
    }

    pub fn layer_names(&self) -> impl Iterator<Item = &'static str> + Clone + '_ {
        self.layers.iter().map(|layer| layer.name)
    }

    /// Channels coming out of the first `kept` layers, and whether they are still spatial.
    pub fn output_after(&self, kept: usize) -> (u32, bool) {
        let mut channels = self.default_stats.channels;
        let mut spatial = true;
        for layer in &self.layers[..kept.min(self.layers.len())] {
            channels = layer.out_channels(channels);
            spatial = layer.is_spatial_output(spatial);
        }
        (channels, spatial)
    }

    /// Spatial side after the first `kept` layers for an input of `size`.
    pub fn size_after(&self, kept: usize, size: u32) -> u32 {
        self.layers[..kept.min(self.layers.len())].iter().fold(size, |size, layer| layer.out_size(size))
    }
}

