//! Which stages train BatchNorm layers on batch statistics: the fact behind the batch-of-one
//! error (TL2011), shared by lint and by the runtime's check of the batches it actually forms.

use super::groups::HEAD;
use super::recipe::{BatchNormMode, Group, HeadLayer, Recipe, Stage};
use crate::arch::{Architecture, LayerKind};

impl Recipe {
    /// Whether stage `stage` normalises some BatchNorm layer with the statistics of its batch.
    pub fn stage_trains_batchnorm(&self, stage: &Stage) -> bool {
        stage_trains_batchnorm(self.backbone.architecture, &self.head, &self.groups, stage)
    }
}

/// A trained group that holds a BatchNorm layer trains it; under `batchnorm train` the frozen
/// groups' BatchNorm layers train too.
pub fn stage_trains_batchnorm(architecture: &Architecture, head: &[HeadLayer], groups: &[Group], stage: &Stage) -> bool {
    groups.iter().zip(&stage.trained).any(|(group, trained)| {
        (*trained || stage.batchnorm == BatchNormMode::Train) && group_holds_batchnorm(architecture, head, group)
    })
}

fn group_holds_batchnorm(architecture: &Architecture, head: &[HeadLayer], group: &Group) -> bool {
    group.layers.iter().any(|layer| {
        if layer == HEAD {
            head.iter().any(|head_layer| matches!(head_layer, HeadLayer::BatchNorm { .. }))
        } else {
            // A residual stage's blocks hold BatchNorm layers.
            architecture
                .layers
                .iter()
                .find(|spec| spec.name == layer)
                .is_some_and(|spec| matches!(spec.kind, LayerKind::BatchNorm { .. } | LayerKind::Stage { .. }))
        }
    })
}

#[cfg(test)]
mod tests {
    use crate::check::{NoWorld, check_source};

    fn trains(head: &str, stage: &str) -> bool {
        let source = format!("backbone resnet_small from none\ndata {{ train \"d\" }}\nhead {{ {head} }}\nstage s {{ {stage} epochs 1 }}\n");
        let (recipe, diagnostics) = check_source(&source, "bn", &NoWorld);
        assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:#?}");
        let recipe = recipe.unwrap();
        recipe.stage_trains_batchnorm(&recipe.stages[0])
    }

    #[test]
    fn batchnorm_trains_where_its_group_trains_or_batchnorm_train_says_so() {
        assert!(!trains("pool avg  linear classes", "train head"), "a frozen backbone's BatchNorm is in eval mode");
        assert!(trains("pool avg  batchnorm  linear classes", "train head"), "the head's own BatchNorm");
        assert!(trains("pool avg  linear classes", "train all"));
        assert!(trains("pool avg  linear classes", "train head  batchnorm train"), "frozen groups' BatchNorm trains");
    }
}
