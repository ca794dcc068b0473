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

    /// A copy that shares nothing mutable with `self`. burn's `clone` shares BatchNorm running
    /// statistics (`RunningState` is an `Arc<Mutex<…>>` that `map` and training write in place);
    /// `valid` gives each its own state, and the weights are immutable values either way. On an
    /// autodiff network this detaches the copy from the graph, which is what a kept copy wants.
    pub fn deep_copy(&self) -> Self {
        self.valid()
    }

    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        self.head.forward(self.backbone.forward(images))
    }

    /// The scores and the head's flat input features ([`Head::forward_keeping`]), `None` for a
    /// head that never flattens.
    pub fn forward_with_features(&self, images: Tensor<4>) -> (Tensor<2>, Option<Tensor<2>>) {
        self.head.forward_keeping(self.backbone.forward(images), true)
    }

    /// The scores whose argmax is the predicted class and whose softmax is the probabilities:
    /// the logits, or under `tta` the log of the mean of each image's and its mirror's
    /// probabilities. The final evaluation and `tlrun predict` both call this, so they agree to
    /// the bit.
    pub fn class_scores(&self, images: Tensor<4>, tta: bool) -> Tensor<2> {
        if !tta {
            return self.forward(images);
        }
        let mirrored = self.forward(images.clone().flip([3]));
        let probabilities = burn::tensor::activation::softmax(self.forward(images), 1)
            .add(burn::tensor::activation::softmax(mirrored, 1))
            .div_scalar(2.0);
        // Log-probabilities are logits whose softmax is the averaged probabilities.
        probabilities.clamp_min(1e-12).log()
    }
}
