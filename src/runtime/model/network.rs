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
        Network {
            backbone: Backbone::new(recipe.backbone.architecture, recipe.kept_layers, device),
            head: Head::new(&recipe.head, classes, device),
        }
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.backbone.forward(images))
    }
}
