//! The network a run starts from, step by step as the graph runs them (`BuildBackbone`,
//! `LoadWeights`, `AttachHead`: the interpreter's handlers, which lr-find and the probe reach by
//! running a prefix of the program) and as one call (`starting_network`, for tests). Where the
//! pretrained weights are is the CLI's to resolve (`cli::workspace`): the runtime reads no recipe.

use std::path::Path;

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

use super::model::{Backbone, Network};
use super::weights;
use crate::arch::Architecture;
use crate::check::recipe::Recipe;
use crate::diagnostics::Diagnostic;

/// Parameters are created lazily on first use; touch them all in a fixed order right after the
/// seed so that the same seed always gives the same initial weights.
pub fn materialize<M: Module>(network: &M) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    network.visit(&mut Touch);
}

/// The network a run starts from: seeded random weights, then the pretrained backbone when there
/// is one. Under `channels 1 adapt` the colour weights go into a 3-channel first convolution whose
/// filters are then summed to take one channel.
/// The same steps, in the same order, as a run's graph.
pub fn starting_network(
    recipe: &Recipe,
    classes: usize,
    device: &Device,
    pretrained: Option<&Path>,
) -> Result<(Network, Option<weights::LoadReport>), Diagnostic> {
    let backbone = build_backbone(recipe.backbone.architecture, first_channels(recipe), recipe.seed, device).cut(recipe.kept_layers);
    let (backbone, report) = load_pretrained(recipe, backbone, pretrained)?;
    Ok((attach_head(recipe, backbone, classes, device), report))
}

/// The `BuildBackbone` step: the whole architecture with seeded random weights, its first
/// convolution taking three channels when colour weights will be adapted to grey.
pub(crate) fn build_backbone(architecture: &Architecture, channels: u32, seed: u64, device: &Device) -> Backbone {
    device.seed(seed);
    let backbone = Backbone::new(architecture, architecture.layers.len(), channels, device);
    materialize(&backbone);
    backbone
}

/// The channels the first convolution is built with: three when colour weights will be adapted
/// to grey (`channels 1 adapt`), else the recipe's input channels.
pub(crate) fn first_channels(recipe: &Recipe) -> u32 {
    if recipe.data.adapt_channels && recipe.backbone.is_pretrained() { 3 } else { recipe.input_channels() }
}

/// The `LoadWeights` step: the pretrained file (if any) into the cut backbone, then `channels 1
/// adapt` sums the first filters.
pub(crate) fn load_pretrained(recipe: &Recipe, backbone: Backbone, pretrained: Option<&Path>) -> Result<(Backbone, Option<weights::LoadReport>), Diagnostic> {
    let (mut backbone, report) = match pretrained {
        Some(path) => {
            let (loaded, report) = weights::load_backbone(backbone, path)?;
            (loaded, Some(report))
        }
        None => (backbone, None),
    };
    if recipe.data.adapt_channels {
        backbone = backbone.adapt_to_grey();
    }
    Ok((backbone, report))
}

/// Where a new head on pretrained weights draws its initial weights: a stream of its own, not
/// the recipe seed's stream after the backbone. Drawn there, a transfer with the same seed,
/// architecture and cut as its pretraining replayed the pretraining's initial classifier, to
/// which the pretrained features are co-adapted: the "random" head started with loss 6.1 where
/// independent draws give 1.6–2.5 (few-shot digits, seed 1; docs/performance.md).
const NEW_HEAD_STREAM: u64 = 0x6e65_772d_6865_6164;

/// The `AttachHead` step: the recipe's new head, drawn right after the backbone (from a stream of
/// its own over pretrained weights).
pub(crate) fn attach_head(recipe: &Recipe, backbone: Backbone, classes: usize, device: &Device) -> Network {
    if recipe.backbone.is_pretrained() {
        device.seed(crate::data::mix64(recipe.seed ^ NEW_HEAD_STREAM));
    }
    let network = Network::with_backbone(recipe, backbone, classes, device);
    materialize(&network);
    network
}

