use burn::prelude::*;

use super::{Backbone, Head};
use crate::check::recipe::Recipe;

/// Backbone (cut) followed by the new head.
#[derive(Module, Debug)]
pub struct Network {
    pub backbone: Backbone,
    pub head: Head,
}

impl Network {
    pub fn new(recipe: &Recipe, classes: usize, device: &Device) -> Self {
        Network::with_input_channels(recipe, classes, recipe.input_channels(), device)
    }

    /// The recipe's network with a first convolution of `input_channels` (3 to receive a colour
    /// backbone's weights before `channels 1 adapt` sums them).
    pub fn with_input_channels(recipe: &Recipe, classes: usize, input_channels: u32, device: &Device) -> Self {
        Network {
            backbone: Backbone::new(recipe.backbone.architecture, recipe.kept_layers, input_channels, device),
            head: Head::new(&recipe.head, classes, device),
        }
    }

    /// A built (and cut) backbone with the recipe's new head on top.
    pub fn with_backbone(recipe: &Recipe, backbone: Backbone, classes: usize, device: &Device) -> Self {
        Network { backbone, head: Head::new(&recipe.head, classes, device) }
    }

    /// timm's `adapt_input_conv` for one channel: each first-layer filter's RGB weights summed,
    /// so that a grey image gives what the colour network gave for that grey replicated.
    pub fn adapt_to_grey(mut self) -> Self {
        self.backbone = self.backbone.adapt_to_grey();
        self
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.backbone.forward(images))
    }
}
