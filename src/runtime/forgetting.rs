//! What fine-tuning forgot. Before the first stage, a linear probe is fitted on the pretrained
//! backbone's pooled features of the source images (the images it was trained on: the recipe's
//! `source`, or the zoo card's `source_data`) and then frozen; after every stage the source images
//! go through the fine-tuned backbone again and the same probe reads them. The drop in its
//! accuracy is the catastrophic forgetting the stage caused: the features the old task relied on
//! have moved. (A probe rather than the original classifier: the cut usually removes that.)

use std::path::Path;

use burn::prelude::*;

use crate::data::DecodedImage;
use super::dataset;
use super::model::Network;
use super::features::{candidates, pooled_features, sampled};
use crate::check::recipe::Recipe;
use crate::diagnostics::{Code, Diagnostic};
use crate::probe::{LinearProbe, stratified_split};
use crate::run_files::{ForgettingPoint, SCORED_ON_PRETRAINING_VALID, SCORED_ON_SOURCE_TRAIN};

/// Source images a probe is fitted and scored on, at most.
const SOURCE_SAMPLE: usize = 1000;

pub struct ForgettingProbe {
    probe: LinearProbe,
    images: Vec<DecodedImage>,
    labels: Vec<usize>,
    size: u32,
    tap: usize,
    layer: String,
    scored_on: &'static str,
}

impl ForgettingProbe {
    /// Fit the probe on `network` (the pretrained weights, before any stage) and score it: the
    /// curve's first point. Paths of the source are relative to `base`.
    pub fn fit(recipe: &Recipe, network: &Network, base: &Path, device: &Device) -> Result<(ForgettingProbe, ForgettingPoint), Diagnostic> {
        let source = recipe.forgetting_source().ok_or_else(|| Diagnostic::new(Code::StepFailed, "internal error: forgetting without a source"))?;
        // The source task is measured as it was trained: at the backbone's pretraining size.
        let size = recipe.backbone.stats.input_size;
        let named = |diagnostic: Diagnostic| Diagnostic { message: format!("source images: {}", diagnostic.message), ..diagnostic };
        let backbone_kept = network.backbone.kept;
        let Some(tap) = candidates(recipe).into_iter().filter(|index| *index < backbone_kept).last() else {
            return Err(Diagnostic::new(Code::StepFailed, "the cut keeps no stage whose features a forgetting probe could read")
                .with_help("remove `source` from the data block, or cut after the stem or a stage"));
        };
        let inference = network.valid();
        let plain = device.clone().without_autodiff();
        let features_of = |images: &[DecodedImage], labels: &[usize]| {
            pooled_features(&super::features::InputSpec::of(recipe), &inference.backbone, images, labels, size, &[tap], false, &plain).into_iter().next()
        };
        // Fitted on training images; scored on images the pretraining held out when the card
        // says which, else on training images held out from the fit (and the report says so).
        let (classes, fit_images, fit_labels, scored_images, scored_labels, scored_on) = match recipe.forgetting_holdout() {
            Some(holdout) => {
                let (classes, train, valid) = dataset::load_source_with_holdout(source, holdout, base, size, recipe.data.corrupt).map_err(named)?;
                let (fit_images, fit_labels) = sampled(&train, SOURCE_SAMPLE, recipe.seed);
                let (scored_images, scored_labels) = sampled(&valid, SOURCE_SAMPLE, recipe.seed);
                (classes, fit_images, fit_labels, scored_images, scored_labels, SCORED_ON_PRETRAINING_VALID)
            }
            None => {
                let (classes, split) = dataset::load_source(source, base, size, recipe.data.corrupt).map_err(named)?;
                let (images, labels) = sampled(&split, SOURCE_SAMPLE, recipe.seed);
                let (fit_rows, held_out) = stratified_split(&labels, 4);
                let pick_images = |indices: &[usize]| indices.iter().map(|index| images[*index].clone()).collect::<Vec<_>>();
                let pick = |indices: &[usize]| indices.iter().map(|index| labels[*index]).collect::<Vec<_>>();
                (classes, pick_images(&fit_rows), pick(&fit_rows), pick_images(&held_out), pick(&held_out), SCORED_ON_SOURCE_TRAIN)
            }
        };
        if scored_labels.is_empty() {
            return Err(Diagnostic::new(Code::StepFailed, "the source holds no images to score the forgetting probe on")
                .with_help("give the source more images per class, or remove `source` from the data block"));
        }
        let no_features = || Diagnostic::new(Code::StepFailed, "no features for the forgetting probe");
        let (layer, fit_features) = features_of(&fit_images, &fit_labels).ok_or_else(no_features)?;
        let (_, scored_features) = features_of(&scored_images, &scored_labels).ok_or_else(no_features)?;
        let probe = LinearProbe::fit(&fit_features, &fit_labels, classes.len());
        let accuracy = probe.accuracy(&scored_features, &scored_labels);
        let point = ForgettingPoint {
            stage: "pretrained".to_string(),
            source_accuracy: accuracy,
            target_accuracy: None,
            source_images: scored_labels.len(),
            layer: layer.clone(),
            scored_on: scored_on.to_string(),
        };
        Ok((ForgettingProbe { probe, images: scored_images, labels: scored_labels, size, tap, layer, scored_on }, point))
    }

    /// The held-out source images through `network` after stage `stage`, read by the frozen probe.
    pub fn measure(&self, recipe: &Recipe, network: &Network, stage: &str, target_accuracy: Option<f64>, device: &Device) -> ForgettingPoint {
        let inference = network.valid();
        let plain = device.clone().without_autodiff();
        let tapped = pooled_features(&super::features::InputSpec::of(recipe), &inference.backbone, &self.images, &self.labels, self.size, &[self.tap], false, &plain);
        let accuracy = tapped.first().map_or(f64::NAN, |(_, features)| self.probe.accuracy(features, &self.labels));
        ForgettingPoint {
            stage: stage.to_string(),
            source_accuracy: accuracy,
            target_accuracy,
            source_images: self.labels.len(),
            layer: self.layer.clone(),
            scored_on: self.scored_on.to_string(),
        }
    }
}
