//! fastai's `show_batch` for a run that augments: its first training images as the first stage
//! will see them (flip, crop, the resample, lighting, MixUp or CutMix), drawn into augmented.png
//! before training starts, for the report. Drawn from a stream of their own: the run trains on
//! what it would have without this picture.

use image::imageops::FilterType;

use super::run_folder::RunFolder;
use super::trainer::Trainer;
use crate::check::recipe::Recipe;
use crate::diagnostics::{Code, Diagnostic};
use crate::report::{GalleryTile, batch_png};
use crate::run_files::AUGMENTED;

/// Images shown: fastai's `show_batch` default of 9, to a full grid of four columns.
const SHOWN: usize = 12;
/// Tiles are scaled to this side (nearest up, so pixels stay visible).
const TILE: u32 = 96;

/// Writes augmented.png when the recipe augments its training images; `size`: the first stage's.
pub(crate) fn write(folder: &RunFolder, recipe: &Recipe, trainer: &mut Trainer<'_>, classes: &[String], size: u32) -> Result<(), Diagnostic> {
    let augment = crate::data::Augment::from_data(&recipe.data);
    if augment.is_none() {
        return Ok(());
    }
    let (images, labels, mixed) = trainer.augmented_sample(size, SHOWN);
    let side = size as usize;
    let channels = images.len() / (labels.len().max(1) * side * side).max(1);
    let class = |label: usize| classes.get(label).cloned().unwrap_or_else(|| label.to_string());
    let mut tiles = Vec::new();
    for (index, (image, &label)) in images.chunks_exact((channels * side * side).max(1)).zip(&labels).enumerate() {
        let rgb = to_rgb(image, side, channels, &augment.mean, &augment.std);
        let picture = image::RgbImage::from_raw(size, size, rgb).ok_or_else(|| failed("an image of the wrong length".into()))?;
        let filter = if size <= TILE { FilterType::Nearest } else { FilterType::Triangle };
        let tile = image::imageops::resize(&picture, TILE, TILE, filter);
        let second = match &mixed {
            Some(mixed) => format!("λ {:.2} with {}", mixed.lambda, class(labels[mixed.partners[index]])),
            None => String::new(),
        };
        tiles.push(GalleryTile { width: TILE, height: TILE, pixels: tile.into_raw(), caption: [class(label), second] });
    }
    let png = batch_png(&tiles).map_err(failed)?;
    folder.write(AUGMENTED, &png.bytes)
}

/// Normalised CHW values back to RGB bytes (one channel shown as grey).
fn to_rgb(image: &[f32], side: usize, channels: usize, mean: &[f32; 3], std: &[f32; 3]) -> Vec<u8> {
    let plane = side * side;
    let mut rgb = Vec::with_capacity(plane * 3);
    for pixel in 0..plane {
        for colour in 0..3 {
            let channel = colour.min(channels.saturating_sub(1));
            let value = image[channel * plane + pixel] * std[channel] + mean[channel];
            rgb.push((value.clamp(0.0, 1.0) * 255.0).round() as u8);
        }
    }
    rgb
}

fn failed(error: String) -> Diagnostic {
    Diagnostic::new(Code::RunFolderUnwritable, format!("cannot draw {AUGMENTED}: {error}"))
}
