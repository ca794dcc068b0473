//! `tlrun probe`: where to cut, before any training. One forward pass in inference mode over a
//! stratified sample of the recipe's training images through the pretrained backbone (as deep as
//! its weights go), keeping globally average-pooled features at every candidate cut; then, per
//! cut, LogME and a linear probe on those features (crate::probe does the math). The same pass
//! measures how far the images are from the backbone's training data: per-channel statistics
//! against the card's, and the Fréchet distance to the card's feature statistics.

use std::cell::OnceCell;
use std::path::Path;
use std::time::Instant;

use burn::prelude::*;

use crate::data::{Augment, DecodedImage, Fit, SizedSet, SplitMix64, fill_batch};
use super::dataset;
use super::device::parse_device;
use super::model::Backbone;
use super::interpreter::{self, Prepared};
use super::program;
use super::resume_point::Start;
use crate::arch::LayerKind;
use crate::check::Runnable;
use crate::check::recipe::Recipe;
use crate::diagnostics::Diagnostic;
use crate::plan::Step;
use crate::probe::{FeatureStats, Features, LinearProbe, frechet_distance, logme, stratified_split};
use crate::run_files::{DomainShift, FeatureDistance};
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
    pub probe_accuracy: f64,
    pub seconds: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct ProbeReport {
    pub images: usize,
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

/// Names of the candidate cuts of `recipe`'s architecture: the end of the stem and every stage.
pub(crate) fn candidates(recipe: &Recipe) -> Vec<usize> {
    candidates_of(recipe.backbone.architecture)
}

/// The candidate cuts of an architecture: the end of the stem and every stage (layer indices).
pub(crate) fn candidates_of(architecture: &crate::arch::Architecture) -> Vec<usize> {
    let layers = &architecture.layers;
    let first_stage = layers.iter().position(|layer| matches!(layer.kind, LayerKind::Stage { .. }));
    let mut found: Vec<usize> = first_stage.and_then(|index| index.checked_sub(1)).into_iter().collect();
    found.extend(layers.iter().enumerate().filter(|(_, layer)| matches!(layer.kind, LayerKind::Stage { .. })).map(|(index, _)| index));
    found
}

/// Up to `count` indices of `labels`, each class in proportion, drawn with `seed`.
pub fn stratified_sample(labels: &[usize], count: usize, seed: u64) -> Vec<usize> {
    let classes = labels.iter().max().map_or(0, |max| max + 1);
    let mut rng = SplitMix64::for_stream(seed, 0x9e0b);
    let mut chosen = Vec::new();
    for class in 0..classes {
        let mut members: Vec<usize> = (0..labels.len()).filter(|index| labels[*index] == class).collect();
        rng.shuffle(&mut members);
        let share = (members.len() * count).div_ceil(labels.len().max(1)).min(members.len());
        chosen.extend(members.into_iter().take(share));
    }
    chosen.sort_unstable();
    chosen
}

/// Up to `count` images of `split` (`stratified_sample`), with their labels.
pub(crate) fn sampled(split: &super::trainer::Split, count: usize, seed: u64) -> (Vec<DecodedImage>, Vec<usize>) {
    let sample = stratified_sample(&split.labels, count, seed);
    (sample.iter().map(|index| split.images[*index].clone()).collect(), sample.iter().map(|index| split.labels[*index]).collect())
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

/// Per-channel mean and standard deviation of pixel values in [0, 1], for the first `channels`
/// channels (decoded images hold three; grey ones hold three equal ones).
pub(crate) fn pixel_stats(images: &[DecodedImage], channels: usize) -> (Vec<f64>, Vec<f64>) {
    let mut sum = [0.0f64; 3];
    let mut squares = [0.0f64; 3];
    let mut count = 0usize;
    for image in images {
        for pixel in image.pixels.chunks_exact(3) {
            for channel in 0..3 {
                let value = f64::from(pixel[channel]) / 255.0;
                sum[channel] += value;
                squares[channel] += value * value;
            }
            count += 1;
        }
    }
    let count = count.max(1) as f64;
    let channels = channels.clamp(1, 3);
    let mean: Vec<f64> = sum.iter().take(channels).map(|total| total / count).collect();
    let std = squares.iter().zip(&mean).map(|(total, mean)| (total / count - mean * mean).max(0.0).sqrt()).collect();
    (mean, std)
}

/// What a zoo card measured on its pretraining images, and the size it measured them at (its
/// input size): a recipe's images are compared with these at that size, like with like.
pub(crate) struct CardStatistics {
    size: u32,
    features: Option<(String, FeatureStats)>,
    pixels: Option<(Vec<f64>, Vec<f64>)>,
}

/// The card's measured statistics, when the backbone comes from a zoo entry.
fn card_statistics(recipe: &Recipe, zoo: &Zoo) -> Option<CardStatistics> {
    let crate::check::recipe::Weights::Zoo(name) = &recipe.backbone.weights else { return None };
    let card = zoo.card(name).ok()?;
    let pixels = (!card.source_pixel_mean.is_empty()).then(|| (card.source_pixel_mean.clone(), card.source_pixel_std.clone()));
    Some(CardStatistics { size: card.input_size, features: crate::zoo::read_feature_stats(&zoo.entry_dir(name)), pixels })
}

/// How far `images` are from what the backbone was trained on: their pixel statistics against
/// the pretraining images' measured ones (the normalisation constants when the card keeps none),
/// and the Fréchet distance of their features to the card's, both taken at the card's size.
pub(crate) fn domain_shift(
    recipe: &Recipe,
    card: Option<CardStatistics>,
    backbone: &Backbone,
    images: &[DecodedImage],
    labels: &[usize],
    device: &Device,
    notes: &mut Vec<String>,
) -> DomainShift {
    let channels = recipe.input_channels() as usize;
    let (pixel_mean, pixel_std) = pixel_stats(images, channels);
    let frechet = card.as_ref().and_then(|card| {
        let (layer, stats) = card.features.as_ref()?;
        match recipe.backbone.architecture.layer_index(layer).filter(|tap| *tap < backbone.kept) {
            Some(tap) => {
                let features = pooled_features(&InputSpec::of(recipe), backbone, images, labels, card.size, &[tap], false, device);
                let (_, features) = features.into_iter().next()?;
                frechet_distance(stats, &FeatureStats::of(&features))
                    .map(|distance| FeatureDistance { layer: layer.clone(), distance, relative: distance / stats.total_variance().max(1e-12), size: card.size })
            }
            None => {
                notes.push(format!("the zoo card's feature statistics are for `{layer}`, which the cut network does not reach"));
                None
            }
        }
    });
    let stats = &recipe.backbone.stats;
    let source_pixels = card.and_then(|card| card.pixels);
    DomainShift {
        pixel_mean,
        pixel_std,
        backbone_mean: stats.mean.clone(),
        backbone_std: stats.std.clone(),
        source_pixel_mean: source_pixels.as_ref().map(|(mean, _)| mean.clone()),
        source_pixel_std: source_pixels.map(|(_, std)| std),
        images: images.len(),
        frechet,
    }
}

/// How images become a backbone's input: normalisation, channels, how non-square images fit, and
/// the architecture whose layers name the taps.
pub(crate) struct InputSpec {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub channels: u32,
    pub fit: Fit,
    pub architecture: &'static crate::arch::Architecture,
}

impl InputSpec {
    /// As a run of `recipe` prepares its validation images.
    pub fn of(recipe: &Recipe) -> InputSpec {
        let (mean, std) = recipe.input_normalisation();
        InputSpec { mean, std, channels: recipe.input_channels(), fit: Fit::of(recipe.data.resize_method, false), architecture: recipe.backbone.architecture }
    }
}

/// Pooled features of `images` at `size`, at every tap, in tap order.
pub(crate) fn pooled_features(
    input: &InputSpec,
    backbone: &Backbone,
    images: &[crate::data::DecodedImage],
    labels: &[usize],
    size: u32,
    taps: &[usize],
    blocks: bool,
    device: &Device,
) -> Vec<(String, Features)> {
    let channels = input.channels;
    let set = SizedSet::build_fitted(images, labels, size, &input.mean, &input.std, input.fit, channels);
    let names: Vec<&str> = input.architecture.layers.iter().map(|layer| layer.name).collect();
    let no_augment = Augment { flip: false, crop_padding: 0 };
    let mut rng = SplitMix64::new(0);
    let order: Vec<usize> = (0..labels.len()).collect();
    let mut collected: Vec<(String, Vec<f64>, usize)> = Vec::new();
    let (mut pixels, mut batch_labels) = (Vec::new(), Vec::new());
    for chunk in order.chunks(64) {
        fill_batch(&set, chunk, &no_augment, &mut rng, &mut pixels, &mut batch_labels);
        let batch = Tensor::<4>::from_data(TensorData::new(std::mem::take(&mut pixels), [chunk.len(), channels as usize, size as usize, size as usize]), device);
        batch_labels.clear();
        for (position, (name, tensor)) in backbone.pooled_taps(batch, &names, taps, blocks).into_iter().enumerate() {
            let width = tensor.dims()[1];
            let count = tensor.shape().num_elements();
            // Unreadable features score NaN (shown as such), never an empty, shorter matrix.
            let values = tensor.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_else(|_| vec![f32::NAN; count]);
            if collected.len() <= position {
                collected.push((name, Vec::new(), width));
            }
            collected[position].1.extend(values.into_iter().map(f64::from));
        }
    }
    collected.into_iter().map(|(name, values, width)| (name, Features::new(values.len() / width.max(1), width, values))).collect()
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
            probe_accuracy: accuracy,
            seconds: started.elapsed().as_secs_f64(),
        });
    }

    let domain = domain_shift(recipe, card_statistics(recipe, zoo), &backbone, &images, &labels, &device, &mut notes);
    let recipe_cut = recipe.cut_after().to_string();
    Ok(ProbeReport {
        images: labels.len(),
        classes,
        size,
        cuts,
        domain,
        recipe_cut,
        notes,
        forward_seconds,
    })
}

/// Training images sampled at run start for the shift measure.
const SHIFT_SAMPLE: usize = 1000;

/// The `MeasureShift` step: the domain shift of the run's training images against the
/// pretrained `network` (before any stage), at the first stage's size.
pub(crate) fn run_start_shift(recipe: &Recipe, network: &super::model::Network, data: &super::trainer::TrainingData, zoo: &Zoo, device: &Device, notes: &mut Vec<String>) -> DomainShift {
    let (images, labels) = sampled(&data.train, SHIFT_SAMPLE, recipe.seed);
    let inference = network.valid();
    domain_shift(recipe, card_statistics(recipe, zoo), &inference.backbone, &images, &labels, &device.clone().without_autodiff(), notes)
}
