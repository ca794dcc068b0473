//! From the recipe's `data` block to decoded train and valid splits.

use std::path::{Path, PathBuf};

use crate::data::{ImageFolder, decode_all, generate, split_indices};
use super::trainer::{Split, TrainingData};
use crate::check::recipe::{CorruptPolicy, DataSource, Recipe, Validation};
use crate::diagnostics::{Code, Diagnostic};

/// Decoded data and the files left out under `corrupt skip`.
pub struct LoadedData {
    pub data: TrainingData,
    pub skipped: Vec<(PathBuf, String)>,
}

/// Images of one source with their classes.
struct SourceImages {
    classes: Vec<String>,
    split: Split,
    skipped: Vec<(PathBuf, String)>,
}

/// The largest side any epoch trains at: synthetic images are drawn at it, then resized down like
/// photos, so progressive resizing has real detail to gain.
fn render_size(recipe: &Recipe) -> u32 {
    recipe.stages.iter().flat_map(|stage| stage.sizes.iter().copied()).chain([recipe.data.size]).max().unwrap_or(32)
}

fn read_source(
    source: &DataSource,
    base: &Path,
    classes: Option<&[String]>,
    size: u32,
    corrupt: CorruptPolicy,
) -> Result<SourceImages, Diagnostic> {
    match source {
        DataSource::Folder { path } => {
            let root = base.join(path);
            let folder = match classes {
                Some(classes) => ImageFolder::scan_with_classes(&root, classes)?,
                None => ImageFolder::scan(&root)?,
            };
            let decoded = decode_all(&folder.items, corrupt)?;
            Ok(SourceImages {
                classes: folder.classes,
                split: Split { images: decoded.images, labels: decoded.labels },
                skipped: decoded.skipped,
            })
        }
        DataSource::Synthetic { task, per_class, seed } => {
            let (names, images, labels) = generate(task, *per_class, size, *seed)?;
            if let Some(expected) = classes {
                if expected != names.as_slice() {
                    return Err(Diagnostic::new(Code::ClassMissingFromValid, format!("the classes of `{task}` differ from train's"))
                        .with_help("validate on the same task as train"));
                }
            }
            Ok(SourceImages { classes: names, split: Split { images, labels }, skipped: Vec::new() })
        }
    }
}

/// Images of one source on their own (the forgetting measure's source task), at `size` when drawn.
pub fn load_source(source: &DataSource, base: &Path, size: u32, corrupt: CorruptPolicy) -> Result<(Vec<String>, Split), Diagnostic> {
    let images = read_source(source, base, None, size, corrupt)?;
    Ok((images.classes, images.split))
}

/// A pretraining's images split as the pretraining split them: its classes, training images and
/// held-out images (`holdout`: a separate source, or a split of `source`).
pub fn load_source_with_holdout(
    source: &DataSource,
    holdout: &Validation,
    base: &Path,
    size: u32,
    corrupt: CorruptPolicy,
) -> Result<(Vec<String>, Split, Split), Diagnostic> {
    let train = read_source(source, base, None, size, corrupt)?;
    match holdout {
        Validation::Source { source: valid } => {
            let valid = read_source(valid, base, Some(&train.classes), size, corrupt)?;
            Ok((train.classes, train.split, valid.split))
        }
        Validation::Split { fraction, seed } => {
            let (train_part, valid_part) = split(&train.split, *fraction, *seed);
            Ok((train.classes, train_part, valid_part))
        }
    }
}

/// `valid split FRACTION seed SEED` of `all`: the training part and the held-out part, as a run
/// makes it (so a zoo card's `split:F:S` names the same images).
fn split(all: &Split, fraction: f64, seed: u64) -> (Split, Split) {
    let (train_indices, valid_indices) = split_indices(all.labels.len(), &all.labels, fraction, seed);
    let pick = |indices: &[usize]| Split {
        images: indices.iter().map(|index| all.images[*index].clone()).collect(),
        labels: indices.iter().map(|index| all.labels[*index]).collect(),
    };
    (pick(&train_indices), pick(&valid_indices))
}

pub fn load(recipe: &Recipe, base: &Path) -> Result<LoadedData, Diagnostic> {
    let data = &recipe.data;
    let size = render_size(recipe);
    let train = read_source(&data.train, base, None, size, data.corrupt)?;
    let mut skipped = train.skipped;
    let classes = train.classes;
    let (train, valid) = match &data.valid {
        Validation::Source { source } => {
            let valid = read_source(source, base, Some(&classes), size, data.corrupt)?;
            skipped.extend(valid.skipped);
            (train.split, valid.split)
        }
        Validation::Split { fraction, seed } => split(&train.split, *fraction, *seed),
    };
    if train.labels.is_empty() {
        return Err(Diagnostic::new(Code::EmptyClass, format!("no training images left in {}", data.train.describe()))
            .with_help("every image was skipped or went to valid: add images or lower `valid split`"));
    }
    if valid.labels.is_empty() {
        return Err(Diagnostic::new(Code::EmptyClass, "the valid split holds no images")
            .with_help("add images, or raise `valid split` so every class gives at least one image"));
    }
    let (mut train, mut valid) = (train, valid);
    if recipe.grey_images() {
        for image in train.images.iter_mut().chain(valid.images.iter_mut()) {
            image.make_grey();
        }
    }
    Ok(LoadedData { data: TrainingData { classes, train, valid }, skipped })
}

#[cfg(test)]
mod tests {
    use crate::builtin_data::BUILTIN_DATASETS;
    use crate::data::SyntheticTask;

    #[test]
    fn the_front_end_catalogue_matches_what_the_runtime_draws() {
        for dataset in BUILTIN_DATASETS {
            let task = SyntheticTask::from_name(dataset.name).expect("the runtime draws every catalogued set");
            assert_eq!(task.class_names(), dataset.classes.iter().map(|c| c.to_string()).collect::<Vec<_>>());
        }
        assert_eq!(BUILTIN_DATASETS.len(), SyntheticTask::ALL.len());
    }
}
