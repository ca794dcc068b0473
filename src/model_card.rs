//! model.json: everything needed to apply a trained network without its recipe — the
//! architecture as cut, the head, the class names and the preprocessing the run's final
//! evaluation used. A run folder, a zoo entry and an exported weights file each carry one, so
//! `tlrun predict` and `tlrun export` never ask the user to re-type a mean, a std or a size.
//! Plain serde data: no burn, no IO beyond reading and writing the file itself.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::recipe::{HeadLayer, Recipe, ResizeMethod};
use crate::diagnostics::{Code, Diagnostic};

/// The file name in a run folder and in a zoo entry.
pub const MODEL_CARD: &str = "model.json";

/// The version of the format below; a reader refuses a newer one by name.
pub const FORMAT: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelCard {
    pub format: u32,
    /// The recipe that trained it.
    pub recipe: String,
    /// `resnet18`, … (`crate::arch`).
    pub architecture: String,
    /// How many of the architecture's layers are kept (the cut), and the last one's name.
    pub kept_layers: usize,
    pub cut_after: String,
    /// Channels the first convolution takes (1 after `channels 1 adapt`).
    pub input_channels: u32,
    pub head: Vec<HeadLayer>,
    /// Class names, in the order of the network's outputs.
    pub classes: Vec<String>,
    pub preprocessing: Preprocessing,
    /// `tta flip`: each image's probabilities are the mean of its own and its mirror's.
    pub tta_flip: bool,
    /// The batch the final evaluation ran in (kernels may round differently per batch shape;
    /// the same batches give the evaluation's bits).
    pub batch: usize,
}

/// How a decoded RGB8 image becomes the network's input, as the run's final evaluation did it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessing {
    /// Side of the square input.
    pub size: u32,
    /// How a non-square image becomes square (validation's fit: `crop` keeps the centre).
    pub resize_method: ResizeMethod,
    /// Images are made grey (ITU-R 601 luma) after decoding.
    pub grey: bool,
    /// Per input channel, applied as `(pixel / 255 - mean) / std`.
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl ModelCard {
    /// The card of a network trained by `recipe` on `classes`.
    pub fn of(recipe: &Recipe, classes: &[String]) -> ModelCard {
        let architecture = recipe.backbone.architecture;
        let (mean, std) = recipe.input_normalisation();
        ModelCard {
            format: FORMAT,
            recipe: recipe.name.clone(),
            architecture: architecture.name.to_string(),
            kept_layers: recipe.kept_layers,
            cut_after: recipe.cut_after().to_string(),
            input_channels: recipe.input_channels(),
            head: recipe.head.clone(),
            classes: classes.to_vec(),
            preprocessing: Preprocessing {
                size: recipe.last_size(),
                resize_method: recipe.data.resize_method,
                grey: recipe.grey_images(),
                mean,
                std,
            },
            tta_flip: recipe.tta_flip,
            batch: recipe.data.batch.max(1) * 2,
        }
    }

    pub fn to_json(&self) -> Result<String, Diagnostic> {
        serde_json::to_string_pretty(self)
            .map_err(|error| Diagnostic::new(Code::RunFolderUnwritable, format!("cannot encode {MODEL_CARD}: {error}")))
    }

    /// Read and validate a card: a missing, malformed or inconsistent one is TL4014 naming the file.
    pub fn read(path: &Path) -> Result<ModelCard, Diagnostic> {
        let text = std::fs::read_to_string(path).map_err(|error| {
            unusable(path, &format!("cannot be read: {error}"))
        })?;
        let card: ModelCard = serde_json::from_str(&text).map_err(|error| unusable(path, &format!("is not a model card: {error}")))?;
        card.validate().map_err(|reason| unusable(path, &reason))?;
        Ok(card)
    }

    /// What a reader relies on: a known format and architecture, classes, one mean and std per channel.
    fn validate(&self) -> Result<(), String> {
        if self.format > FORMAT {
            return Err(format!("has format {}, newer than this tlrun reads ({FORMAT})", self.format));
        }
        let architecture = crate::arch::lookup(&self.architecture).ok_or_else(|| format!("names an unknown architecture `{}`", self.architecture))?;
        if self.kept_layers == 0 || self.kept_layers > architecture.layers.len() {
            return Err(format!("keeps {} layers of {}, which has {}", self.kept_layers, self.architecture, architecture.layers.len()));
        }
        if self.classes.is_empty() {
            return Err("lists no classes".to_string());
        }
        let preprocessing = &self.preprocessing;
        let channels = self.input_channels as usize;
        let fits = |values: &[f64]| values.len() == channels || values.len() == 1;
        if !(channels == 1 || channels == 3) || !fits(&preprocessing.mean) || !fits(&preprocessing.std) {
            return Err(format!(
                "has {} mean and {} std values for {} input channel(s)",
                preprocessing.mean.len(),
                preprocessing.std.len(),
                self.input_channels
            ));
        }
        if preprocessing.std.iter().any(|value| !(*value > 0.0)) || preprocessing.mean.iter().any(|value| !value.is_finite()) {
            return Err("has a std that is not positive or a mean that is not finite".to_string());
        }
        if preprocessing.size == 0 || preprocessing.size > crate::limits::MAX_IMAGE_SIDE {
            return Err(format!("has an input size of {} px", preprocessing.size));
        }
        Ok(())
    }
}

/// The card beside an exported weights file: `out/digits.safetensors` → `out/digits.model.json`.
pub fn card_beside(weights: &Path) -> PathBuf {
    let stem = weights.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    weights.with_file_name(format!("{stem}.model.json"))
}

fn unusable(path: &Path, reason: &str) -> Diagnostic {
    Diagnostic::new(Code::ModelCardUnusable, format!("model card {} {reason}", path.display()))
        .with_help("predict and export need the card a run writes beside its weights (model.json); re-run the recipe with this tlrun to write one")
}
