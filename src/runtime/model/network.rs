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
        let backbone = Backbone::new(recipe.backbone.architecture, recipe.kept_layers, recipe.input_channels(), device);
        Network::with_backbone(recipe, backbone, classes, device)
    }

    /// A built (and cut) backbone with the recipe's new head on top.
    pub fn with_backbone(recipe: &Recipe, backbone: Backbone, classes: usize, device: &Device) -> Self {
        Network { backbone, head: Head::new(&recipe.head, classes, device) }
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.backbone.forward(images))
    }
}
