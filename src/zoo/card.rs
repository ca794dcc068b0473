use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::arch::Stats;

/// A zoo entry's card: how its weights were made (timm's pretrained_cfg, plus provenance).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Card {
    pub name: String,
    pub architecture: String,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub input_size: u32,
    pub channels: u32,
    #[serde(default)]
    pub classes: Vec<String>,
    #[serde(default)]
    pub trained_on: String,
    #[serde(default)]
    pub provenance: String,
    #[serde(default)]
    pub license: String,
    /// sha256 of weights.safetensors, lowercase hex.
    #[serde(default)]
    pub sha256: String,
    /// The images the weights were trained on (a folder, or `builtin:NAME`), so that a recipe
    /// starting from this entry can measure what fine-tuning forgets of them.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_data: String,
    /// sha256 of features.safetensors: the training images' feature statistics at the layer
    /// `feature_layer` (for the Fréchet distance of later recipes' images).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub features_sha256: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub feature_layer: String,
    /// The pretraining's held-out images: a data source as `source_data` writes it, or
    /// `split:FRACTION:SEED` (held out of `source_data`). Forgetting is scored on them, not on
    /// images the weights were trained on.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub source_valid: String,
    /// Per-channel pixel mean and standard deviation (pixels in [0, 1]) measured on the training
    /// images, which a later recipe's images are compared with (domain shift); the normalisation
    /// constants above are what the weights expect, not what the images were.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_pixel_mean: Vec<f64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub source_pixel_std: Vec<f64>,
}

impl Card {
    /// The card as TOML. A card that cannot be encoded (a float TOML cannot hold) is a
    /// diagnostic, never an empty card on disk.
    pub fn to_toml(&self) -> Result<String, crate::diagnostics::Diagnostic> {
        toml::to_string_pretty(self).map_err(|error| {
            crate::diagnostics::Diagnostic::new(crate::diagnostics::Code::RunFolderUnwritable, format!("cannot encode the card of `{}`: {error}", self.name))
        })
    }
}

#[derive(Debug)]
pub enum CardError {
    Read(PathBuf, std::io::Error),
    Parse(PathBuf, String),
}

impl std::fmt::Display for CardError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CardError::Read(path, error) => write!(f, "cannot read zoo card {}: {error}", path.display()),
            CardError::Parse(path, error) => write!(f, "zoo card {} is not valid: {error}", path.display()),
        }
    }
}

impl std::error::Error for CardError {}

impl Card {
    pub fn read(path: &Path) -> Result<Card, CardError> {
        let text = std::fs::read_to_string(path).map_err(|error| CardError::Read(path.to_path_buf(), error))?;
        toml::from_str(&text).map_err(|error| CardError::Parse(path.to_path_buf(), error.to_string()))
    }

    pub fn stats(&self) -> Stats {
        Stats { mean: self.mean.clone(), std: self.std.clone(), input_size: self.input_size, channels: self.channels }
    }
}
