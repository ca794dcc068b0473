//! `publish "name"`: the trained network goes into the zoo with a card of how it was trained.

use std::path::Path;

use burn::prelude::*;

use super::model::Network;
use super::trainer::TrainingData;
use super::weights;
use crate::check::recipe::{DataSource, Recipe, Validation};
use crate::diagnostics::{Code, Diagnostic};
use crate::probe::FeatureStats;
use crate::model_card::{MODEL_CARD, ModelCard};
use crate::zoo::{CARD_FILE, Card, FEATURES_FILE, WEIGHTS_FILE, Zoo};

/// Images of the training split whose feature statistics a card keeps.
const FEATURE_SAMPLE: usize = 2000;

/// Publish `network` (trained by `recipe` on `data`; data paths relative to `base`) as zoo entry
/// `entry`: its weights, the statistics of its deepest pooled features on the training images
/// (features.safetensors), and a card saying how it was made and where its images are.
pub fn publish(network: &Network, recipe: &Recipe, data: &TrainingData, base: &Path, device: &Device, zoo: &Zoo, entry: &str) -> Result<Card, Diagnostic> {
    let classes = &data.classes;
    let folder = zoo.entry_dir(entry);
    std::fs::create_dir_all(&folder).map_err(|error| {
        Diagnostic::new(Code::RunFolderUnwritable, format!("cannot create zoo entry {}: {error}", folder.display()))
            .with_help("check `--zoo` / TLRUN_ZOO points at a writable folder")
    })?;
    let weights_path = folder.join(WEIGHTS_FILE);
    weights::save(network, &weights_path)?;
    // What `tlrun predict ENTRY` needs to apply the whole network, head included.
    super::run_folder::write_atomic(&folder.join(MODEL_CARD), ModelCard::of(recipe, classes).to_json()?.as_bytes())?;
    let sha256 = crate::sha256::sha256_file(&weights_path).map_err(|error| {
        Diagnostic::new(Code::RunFolderUnwritable, format!("cannot read back {}: {error}", weights_path.display()))
    })?;
    let trained_size = recipe.last_size();
    let measured = write_feature_stats(network, recipe, data, trained_size, device, &folder.join(FEATURES_FILE))?;
    // A card outlives the recipe's folder: its source folder is written as an absolute path.
    let source_data = match &recipe.data.train {
        DataSource::Folder { path } => {
            let folder = std::fs::canonicalize(base.join(path)).unwrap_or_else(|_| base.join(path));
            DataSource::Folder { path: folder.display().to_string() }
        }
        synthetic => synthetic.clone(),
    }
    .card_text();
    // Where forgetting is scored later: the images this run held out, as paths that outlive it.
    let source_valid = match &recipe.data.valid {
        Validation::Source { source: DataSource::Folder { path } } => {
            let folder = std::fs::canonicalize(base.join(path)).unwrap_or_else(|_| base.join(path));
            Validation::Source { source: DataSource::Folder { path: folder.display().to_string() } }
        }
        other => other.clone(),
    }
    .card_text();
    let synthetic = matches!(recipe.data.train, DataSource::Synthetic { .. });
    let card = Card {
        name: entry.to_string(),
        architecture: recipe.backbone.architecture.name.to_string(),
        mean: recipe.input_normalisation().0,
        std: recipe.input_normalisation().1,
        input_size: trained_size,
        channels: recipe.input_channels(),
        classes: classes.to_vec(),
        trained_on: recipe.data.train.describe(),
        provenance: format!("trained by tlrun {} from recipe `{}` (seed {})", env!("CARGO_PKG_VERSION"), recipe.name, recipe.seed),
        license: if synthetic { "CC0-1.0 (synthetic data drawn by tlrun)".into() } else { "as the training data's license".into() },
        sha256,
        source_data,
        features_sha256: measured.features_sha256,
        feature_layer: measured.layer,
        source_valid,
        source_pixel_mean: measured.pixel_mean,
        source_pixel_std: measured.pixel_std,
    };
    super::run_folder::write_atomic(&folder.join(CARD_FILE), card.to_toml()?.as_bytes())?;
    Ok(card)
}

/// What a zoo entry measured on its training images, for later recipes' domain shift.
pub struct MeasuredSource {
    /// The tapped layer and features.safetensors' sha256 (empty when nothing was tapped).
    pub layer: String,
    pub features_sha256: String,
    /// Per-channel pixel mean and std of the sampled images, pixels in [0, 1].
    pub pixel_mean: Vec<f64>,
    pub pixel_std: Vec<f64>,
}

/// The training images' pooled features at the network's deepest kept stage (mean and
/// covariance into `path`), and their pixel statistics.
fn write_feature_stats(network: &Network, recipe: &Recipe, data: &TrainingData, size: u32, device: &Device, path: &Path) -> Result<MeasuredSource, Diagnostic> {
    let inference = network.valid();
    let plain = device.clone().without_autodiff();
    let (images, labels) = super::features::sampled(&data.train, FEATURE_SAMPLE, recipe.seed);
    let (pixel_mean, pixel_std) = super::features::pixel_stats(&images, recipe.input_channels() as usize);
    let tapped = match super::features::candidates(recipe).into_iter().filter(|index| *index < inference.backbone.kept).last() {
        Some(tap) => super::features::pooled_features(&super::features::InputSpec::of(recipe), &inference.backbone, &images, &labels, size, &[tap], false, &plain),
        None => Vec::new(),
    };
    let (layer, features_sha256) = write_features(tapped, path)?;
    Ok(MeasuredSource { layer, features_sha256, pixel_mean, pixel_std })
}

/// The statistics of the one tapped layer into `path`: the layer and the file's sha256 (empty
/// strings when nothing was tapped).
fn write_features(tapped: Vec<(String, crate::probe::Features)>, path: &Path) -> Result<(String, String), Diagnostic> {
    let Some((layer, features)) = tapped.into_iter().next() else { return Ok((String::new(), String::new())) };
    let bytes = crate::zoo::feature_stats::encode(&layer, &FeatureStats::of(&features))
        .map_err(|error| Diagnostic::new(Code::RunFolderUnwritable, format!("cannot encode {}: {error}", path.display())))?;
    super::run_folder::write_atomic(path, &bytes)?;
    let sha256 = crate::sha256::sha256_file(path).map_err(|error| Diagnostic::new(Code::RunFolderUnwritable, format!("cannot read back {}: {error}", path.display())))?;
    Ok((layer, sha256))
}

/// What `zoo import --source-data FOLDER` keeps of imported weights: the feature statistics of up
/// to 2,000 of the source images at the deepest stage the weights hold, written to
/// features.safetensors in `entry`. Returns the layer and the file's sha256.
pub fn import_feature_stats(card: &crate::zoo::Card, weights_path: &Path, source: &Path, entry: &Path) -> Result<MeasuredSource, Diagnostic> {
    let architecture = crate::arch::lookup(&card.architecture)
        .ok_or_else(|| Diagnostic::new(Code::WeightsMismatch, format!("unknown architecture `{}`", card.architecture)))?;
    let device = Device::flex();
    let kept = architecture.layer_index(architecture.default_cut_after).map_or(architecture.layers.len(), |index| index + 1);
    let (backbone, _) = weights::load_backbone(super::model::Backbone::new(architecture, kept, card.channels, &device), weights_path)?;
    let folder = DataSource::Folder { path: source.display().to_string() };
    let (_, split) = super::dataset::load_source(&folder, Path::new(""), card.input_size, crate::check::recipe::CorruptPolicy::Skip)?;
    let (images, labels) = super::features::sampled(&split, FEATURE_SAMPLE, 0);
    let (pixel_mean, pixel_std) = super::features::pixel_stats(&images, card.channels as usize);
    let tapped = match super::features::candidates_of(architecture).into_iter().filter(|index| *index < kept).last() {
        Some(tap) => {
            let input = super::features::InputSpec { mean: card.mean.clone(), std: card.std.clone(), channels: card.channels, fit: crate::data::Fit::CentreCrop, architecture };
            super::features::pooled_features(&input, &backbone, &images, &labels, card.input_size, &[tap], false, &device)
        }
        None => Vec::new(),
    };
    let (layer, features_sha256) = write_features(tapped, &entry.join(FEATURES_FILE))?;
    Ok(MeasuredSource { layer, features_sha256, pixel_mean, pixel_std })
}
