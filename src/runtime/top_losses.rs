//! The valid images the final evaluation got most wrong (fastai's `plot_top_losses`): the
//! highest losses, each with its true class, prediction, probability and a thumbnail, written
//! to the run folder for the report.

use std::path::Path;

use image::imageops::FilterType;

use super::class_scores::ScoredImage;
use crate::data::DecodedImage;
use super::run_folder::RunFolder;
use crate::diagnostics::{Code, Diagnostic};
use crate::run_files::{self, TopLoss};

/// fastai's `plot_top_losses(9)`.
pub const SHOWN: usize = 9;
/// Thumbnails fit this square: small images are scaled up (nearest, so pixels stay visible).
const THUMBNAIL: u32 = 96;

/// The `SHOWN` highest losses, highest first (ties by valid order).
pub fn highest(scored: &[ScoredImage]) -> Vec<ScoredImage> {
    let mut sorted = scored.to_vec();
    sorted.sort_by(|a, b| b.loss.total_cmp(&a.loss).then(a.index.cmp(&b.index)));
    sorted.truncate(SHOWN);
    sorted
}

/// Write top_losses.json and its thumbnails for `scored` (valid images in order), whose pixels
/// are `valid` and whose class names are `classes`.
pub fn write(folder: &RunFolder, scored: &[ScoredImage], valid: &[DecodedImage], classes: &[String]) -> Result<(), Diagnostic> {
    let images_folder = folder.file(run_files::TOP_LOSS_IMAGES);
    std::fs::create_dir_all(&images_folder).map_err(|error| {
        Diagnostic::new(Code::RunFolderUnwritable, format!("cannot create {}: {error}", images_folder.display()))
    })?;
    let mut entries = Vec::new();
    for (rank, image) in highest(scored).into_iter().enumerate() {
        let Some(pixels) = valid.get(image.index) else { continue };
        let name = format!("{}/{}.png", run_files::TOP_LOSS_IMAGES, rank + 1);
        write_thumbnail(pixels, &folder.file(&name))?;
        let class = |index: usize| classes.get(index).cloned().unwrap_or_else(|| index.to_string());
        entries.push(TopLoss {
            valid_index: image.index,
            truth: class(image.truth),
            predicted: class(image.predicted),
            probability: image.probability,
            loss: image.loss,
            thumbnail: name,
        });
    }
    let json = serde_json::to_string_pretty(&entries)
        .map_err(|error| Diagnostic::new(Code::RunFolderUnwritable, format!("cannot encode {}: {error}", run_files::TOP_LOSSES)))?;
    folder.write(run_files::TOP_LOSSES, json.as_bytes())
}

fn write_thumbnail(image: &DecodedImage, path: &Path) -> Result<(), Diagnostic> {
    let failed = |error: String| Diagnostic::new(Code::RunFolderUnwritable, format!("cannot write thumbnail {}: {error}", path.display()));
    let rgb = image::RgbImage::from_raw(image.width, image.height, image.pixels.clone()).ok_or_else(|| failed("inconsistent image".into()))?;
    let scale = f64::from(THUMBNAIL) / f64::from(image.width.max(image.height));
    let (width, height) = (((f64::from(image.width) * scale).round() as u32).max(1), ((f64::from(image.height) * scale).round() as u32).max(1));
    let filter = if scale >= 1.0 { FilterType::Nearest } else { FilterType::Triangle };
    let thumbnail = image::imageops::resize(&rgb, width, height, filter);
    let mut bytes = Vec::new();
    thumbnail.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).map_err(|error| failed(error.to_string()))?;
    super::run_folder::write_atomic(path, &bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scored(index: usize, loss: f64) -> ScoredImage {
        ScoredImage { index, truth: 0, predicted: 1, probability: 0.5, loss }
    }

    #[test]
    fn the_highest_losses_come_first_and_ties_keep_valid_order() {
        let all: Vec<ScoredImage> = (0..12).map(|index| scored(index, if index == 7 { 9.0 } else { (index % 3) as f64 })).collect();
        let top: Vec<usize> = highest(&all).iter().map(|image| image.index).collect();
        assert_eq!(top, vec![7, 2, 5, 8, 11, 1, 4, 10, 0]);
    }
}
