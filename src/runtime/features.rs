//! Pooled features of a backbone over a stratified sample of images, and what they measure
//! beside the probe: the candidate cuts of an architecture, per-channel pixel statistics, and the
//! domain shift of a run's images against its backbone's card (the `MeasureShift` step). Shared by
//! `tlrun probe`, the forgetting steps and `publish`; runs in inference mode and touches no
//! weight.

use burn::prelude::*;

use super::model::Backbone;
use crate::arch::LayerKind;
use crate::check::recipe::Recipe;
use crate::data::{Augment, DecodedImage, Fit, SizedSet, SplitMix64, fill_batch};
use crate::probe::{FeatureStats, Features, frechet_distance};
use crate::run_files::{DomainShift, FeatureDistance};
use crate::zoo::Zoo;

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
pub(crate) fn card_statistics(recipe: &Recipe, zoo: &Zoo) -> Option<CardStatistics> {
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
    let no_augment = Augment::NONE;
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

/// Training images sampled at run start for the shift measure.
const SHIFT_SAMPLE: usize = 1000;

/// The `MeasureShift` step: the domain shift of the run's training images against the
/// pretrained `network` (before any stage), at the first stage's size.
pub(crate) fn run_start_shift(recipe: &Recipe, network: &super::model::Network, data: &super::trainer::TrainingData, zoo: &Zoo, device: &Device, notes: &mut Vec<String>) -> DomainShift {
    let (images, labels) = sampled(&data.train, SHIFT_SAMPLE, recipe.seed);
    let inference = network.valid();
    domain_shift(recipe, card_statistics(recipe, zoo), &inference.backbone, &images, &labels, &device.clone().without_autodiff(), notes)
}
