//! What fine-tuning forgot. Before the first stage, a linear probe is fitted on the pretrained
//! backbone's pooled features of the source images (the images it was trained on: the recipe's
//! `source`, or the zoo card's `source_data`) and then frozen; after every stage the source images
//! go through the fine-tuned backbone again and the same probe reads them. The drop in its
//! accuracy is the catastrophic forgetting the stage caused: the features the old task relied on
//! have moved. (A probe rather than the original classifier: the cut usually removes that.)

use std::path::Path;

use burn::prelude::*;

use super::data::DecodedImage;
use super::dataset;
use super::model::Network;
use super::probe::{candidates, pooled_features, sampled};
use crate::check::recipe::Recipe;
use crate::diagnostics::{Code, Diagnostic};
use crate::probe::{LinearProbe, stratified_split};
use crate::run_files::ForgettingPoint;

/// Source images a probe is fitted and scored on, at most.
const SOURCE_SAMPLE: usize = 1000;

pub struct ForgettingProbe {
    probe: LinearProbe,
    images: Vec<DecodedImage>,
    labels: Vec<usize>,
    size: u32,
    tap: usize,
    layer: String,
}

impl ForgettingProbe {
    /// Fit the probe on `network` (the pretrained weights, before any stage) and score it: the
    /// curve's first point. Paths of the source are relative to `base`.
    pub fn fit(recipe: &Recipe, network: &Network, base: &Path, device: &Device) -> Result<(ForgettingProbe, ForgettingPoint), Diagnostic> {
        let source = recipe.forgetting_source().ok_or_else(|| Diagnostic::new(Code::StepFailed, "internal error: forgetting without a source"))?;
        // The source task is measured as it was trained: at the backbone's pretraining size.
        let size = recipe.backbone.stats.input_size;
        let (classes, split) = dataset::load_source(source, base, size, recipe.data.corrupt)
            .map_err(|diagnostic| Diagnostic { message: format!("source images: {}", diagnostic.message), ..diagnostic })?;
        let (images, labels) = sampled(&split, SOURCE_SAMPLE, recipe.seed);
        let backbone_kept = network.backbone.kept;
        let Some(tap) = candidates(recipe).into_iter().filter(|index| *index < backbone_kept).last() else {
            return Err(Diagnostic::new(Code::StepFailed, "the cut keeps no stage whose features a forgetting probe could read")
                .with_help("remove `source` from the data block, or cut after the stem or a stage"));
        };
        let (fit_rows, held_out) = stratified_split(&labels, 4);
        let inference = network.valid();
        let plain = device.clone().without_autodiff();
        let tapped = pooled_features(&super::probe::InputSpec::of(recipe), &inference.backbone, &images, &labels, size, &[tap], false, &plain);
        let Some((layer, features)) = tapped.into_iter().next() else {
            return Err(Diagnostic::new(Code::StepFailed, "no features for the forgetting probe"));
        };
        let pick = |indices: &[usize]| indices.iter().map(|index| labels[*index]).collect::<Vec<_>>();
        let probe = LinearProbe::fit(&features.select(&fit_rows), &pick(&fit_rows), classes.len());
        let accuracy = probe.accuracy(&features.select(&held_out), &pick(&held_out));
        let held_images: Vec<DecodedImage> = held_out.iter().map(|index| images[*index].clone()).collect();
        let held_labels = pick(&held_out);
        let point = ForgettingPoint { stage: "pretrained".to_string(), source_accuracy: accuracy, target_accuracy: None, source_images: held_labels.len(), layer: layer.clone() };
        Ok((ForgettingProbe { probe, images: held_images, labels: held_labels, size, tap, layer }, point))
    }

    /// The held-out source images through `network` after stage `stage`, read by the frozen probe.
    pub fn measure(&self, recipe: &Recipe, network: &Network, stage: &str, target_accuracy: Option<f64>, device: &Device) -> ForgettingPoint {
        let inference = network.valid();
        let plain = device.clone().without_autodiff();
        let tapped = pooled_features(&super::probe::InputSpec::of(recipe), &inference.backbone, &self.images, &self.labels, self.size, &[self.tap], false, &plain);
        let accuracy = tapped.first().map_or(f64::NAN, |(_, features)| self.probe.accuracy(features, &self.labels));
        ForgettingPoint { stage: stage.to_string(), source_accuracy: accuracy, target_accuracy, source_images: self.labels.len(), layer: self.layer.clone() }
    }
}
