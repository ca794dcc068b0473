//! From the recipe's `data` block to decoded train and valid splits.

use std::path::{Path, PathBuf};

use super::data::{ImageFolder, decode_all, split_indices};
use super::trainer::{Split, TrainingData};
use crate::check::recipe::{Data, Validation};
use crate::diagnostics::{Code, Diagnostic};

/// Decoded data and the files left out under `corrupt skip`.
pub struct LoadedData {
    pub data: TrainingData,
    pub skipped: Vec<(PathBuf, String)>,
}

pub fn load(data: &Data, base: &Path) -> Result<LoadedData, Diagnostic> {
    let train_root = base.join(&data.train);
    let train_folder = ImageFolder::scan(&train_root)?;
    let train = decode_all(&train_folder.items, data.corrupt)?;
    let mut skipped = train.skipped;
    let classes = train_folder.classes.clone();
    let (train, valid) = match &data.valid {
        Validation::Folder { path } => {
            let valid_folder = ImageFolder::scan_with_classes(&base.join(path), &classes)?;
            let valid = decode_all(&valid_folder.items, data.corrupt)?;
            skipped.extend(valid.skipped);
            (Split { images: train.images, labels: train.labels }, Split { images: valid.images, labels: valid.labels })
        }
        Validation::Split { fraction, seed } => {
            let (train_indices, valid_indices) = split_indices(train.labels.len(), &train.labels, *fraction, *seed);
            let pick = |indices: &[usize]| Split {
                images: indices.iter().map(|index| train.images[*index].clone()).collect(),
                labels: indices.iter().map(|index| train.labels[*index]).collect(),
            };
            (pick(&train_indices), pick(&valid_indices))
        }
    };
    if train.labels.is_empty() {
        return Err(Diagnostic::new(Code::EmptyClass, format!("no training images left in {}", train_root.display()))
            .with_help("every image was skipped or went to valid: add images or lower `valid split`"));
    }
    if valid.labels.is_empty() {
        return Err(Diagnostic::new(Code::EmptyClass, "the valid split holds no images")
            .with_help("add images, or raise `valid split` so every class gives at least one image"));
    }
    Ok(LoadedData { data: TrainingData { classes, train, valid }, skipped })
}
