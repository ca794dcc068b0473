//! `tlrun probe`: where to cut, before any training. The run's program up to its weights load,
//! with the cut moved as deep as the weights go; then one forward pass in inference mode over a
//! stratified sample of the recipe's training images, keeping globally average-pooled features
//! at every candidate cut (`features.rs`); then, per cut, LogME and a linear probe on those
//! features, with the shrinkage H-score and PARC beside them (crate::probe does the math). The same pass measures how far the images are from the
//! backbone's training data: per-channel statistics against the card's, and the Fréchet distance
//! to the card's feature statistics.

use std::cell::OnceCell;
use std::path::Path;
use std::time::Instant;

use burn::prelude::*;

use super::dataset;
use super::features::{InputSpec, candidates, card_statistics, domain_shift, pooled_features, sampled};
use super::device::parse_device;
use super::model::Backbone;
use super::interpreter::{self, Prepared};
use super::program;
use super::resume_point::Start;
use crate::check::Runnable;
use crate::check::recipe::Recipe;
use crate::diagnostics::Diagnostic;
use crate::plan::Step;
use crate::probe::{LinearProbe, hscore, logme, parc, stratified_split};
use crate::run_files::DomainShift;
use crate::zoo::Zoo;

pub struct ProbeOptions {
    /// At most this many training images (stratified).
    pub samples: usize,
    /// Also score every residual block, not only the cut points a recipe can name.
    pub fine: bool,
    pub device: String,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct CutScore {
    /// The layer (`layer3`) or block (`layer3.0`) after which the features are taken.
    pub after: String,
    /// Whether a recipe can say `cut after` it (blocks cannot).
    pub cut_point: bool,
    pub width: usize,
    pub logme: f64,
    /// The shrinkage H-score (`crate::probe::hscore`).
    pub hscore: f64,
    /// PARC (`crate::probe::parc`).
    pub parc: f64,
    pub probe_accuracy: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeReport {
    pub images: usize,
    /// Optimizer steps an epoch over all the recipe's training images at its batch (the advice
    /// sizes its fine-tune by them).
    pub steps_per_epoch: usize,
    pub classes: usize,
    pub size: u32,
    pub cuts: Vec<CutScore>,
    /// How far the sampled images are from the pretraining images.
    pub domain: DomainShift,
    /// The recipe's own cut.
    pub recipe_cut: String,
    pub notes: Vec<String>,
    pub forward_seconds: f64,
}

/// The pretrained backbone as deep as its weights go: every stage when the file holds them all,
/// else the deepest depth (down to the recipe's own cut) that loads.
fn deepest_backbone(recipe: &Recipe, zoo: &Zoo, base: &Path, pretrained: Option<&Path>, device: &Device, notes: &mut Vec<String>) -> Result<Backbone, Diagnostic> {
    let deepest = candidates(recipe).last().map_or(recipe.kept_layers, |last| last + 1);
    // The graph through its weights load (or its cut, from random weights), its cut moved deeper.
    let graph = crate::plan::build_graph(recipe);
    let loaded = graph.first(|step| matches!(step, Step::LoadWeights { .. })).or_else(|| graph.first(|step| matches!(step, Step::Cut { .. })));
    let loaded = loaded.ok_or_else(|| Diagnostic::new(crate::diagnostics::Code::StepFailed, "the recipe's graph has no cut"))?;
    let program = program::up_to(&program::compile(&graph, recipe, base, pretrained, &Start::Fresh), &graph, loaded, true);
    let mut last_error = None;
    for kept in (recipe.kept_layers.min(deepest)..=deepest).rev() {
        let unused = OnceCell::new();
        match interpreter::prepare(recipe, zoo, base.to_path_buf(), device.clone(), &program::with_cut(program.clone(), kept), &unused) {
            Ok(Prepared { backbone: Some(backbone), .. }) => {
                if kept < deepest {
                    notes.push(format!("the weights stop at layer `{}`: deeper cuts cannot be probed", recipe.backbone.architecture.layers[kept - 1].name));
                }
                return Ok(backbone);
            }
            Ok(_) => last_error = Some(Diagnostic::new(crate::diagnostics::Code::StepFailed, "the graph through the weights load built no backbone")),
            Err(error) => last_error = Some(error),
        }
    }
    Err(last_error.unwrap_or_else(|| Diagnostic::new(crate::diagnostics::Code::WeightsMismatch, "no depth of the backbone loads its weights")))
}

pub fn probe(recipe: &Runnable, recipe_path: &Path, pretrained: Option<&Path>, zoo: &Zoo, options: &ProbeOptions) -> Result<ProbeReport, Diagnostic> {
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let device = parse_device(&options.device)?;
    let mut notes = Vec::new();
    if !recipe.backbone.is_pretrained() {
        notes.push("the backbone starts from random weights (`from none`): the scores describe random features".to_string());
    }
    let loaded = dataset::load(recipe, &base)?;
    let data = loaded.data;
    let (images, labels) = sampled(&data.train, options.samples, recipe.seed);
    let backbone = deepest_backbone(recipe, zoo, &base, pretrained, &device, &mut notes)?;
    let taps: Vec<usize> = candidates(recipe).into_iter().filter(|index| *index < backbone.kept).collect();
    let size = recipe.stages.first().and_then(|stage| stage.sizes.first().copied()).unwrap_or(recipe.data.size);
    let started = Instant::now();
    let tapped = pooled_features(&InputSpec::of(recipe), &backbone, &images, &labels, size, &taps, options.fine, &device);
    let forward_seconds = started.elapsed().as_secs_f64();

    let (fit, held_out) = stratified_split(&labels, 4);
    let pick = |indices: &[usize]| indices.iter().map(|index| labels[*index]).collect::<Vec<_>>();
    let classes = data.classes.len();
    let mut cuts = Vec::new();
    for (after, features) in &tapped {
        let started = Instant::now();
        let evidence = logme(features, &labels, classes).evidence;
        let probe = LinearProbe::fit(&features.select(&fit), &pick(&fit), classes);
        let accuracy = probe.accuracy(&features.select(&held_out), &pick(&held_out));
        cuts.push(CutScore {
            after: after.clone(),
            cut_point: !after.contains('.'),
            width: features.width,
            logme: evidence,
            hscore: hscore(features, &labels, classes),
            parc: parc(features, &labels, classes),
            probe_accuracy: accuracy,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    let domain = domain_shift(recipe, card_statistics(recipe, zoo), &backbone, &images, &labels, &device, &mut notes);
    let recipe_cut = recipe.cut_after().to_string();
    Ok(ProbeReport {
        images: labels.len(),
        steps_per_epoch: crate::data_counts::steps_per_epoch(data.train.labels.len(), recipe.data.batch, 1),
        classes,
        size,
        cuts,
        domain,
        recipe_cut,
        notes,
        forward_seconds,
    })
}
