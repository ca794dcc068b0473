use super::backbone::{bounded_u32, channels_error, check_channel_values, image_side, size_error};
use super::missing::missing;
use super::recipe::{Backbone, CorruptPolicy, Data, DataSource, ImageAugment, ResizeMethod, ValidEvery, Validation};
use crate::builtin_data;
use super::world::{PathKind, World};
use crate::arch::Stats;
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;
use crate::syntax::ast::{Augmentation, DataKind, DataSourceDecl, DataStatement, Item, Normalization, ValidSchedule};

/// fastai's default validation share when a recipe gives neither a folder nor a split.
const DEFAULT_VALID_FRACTION: f64 = 0.2;
const DEFAULT_BATCH: usize = 64;

pub fn check(
    block: Option<(&Item, &[DataStatement])>,
    backbone: Option<&Backbone>,
    world: &dyn World,
    seed: u64,
    anchor: Span,
    diagnostics: &mut Vec<Diagnostic>,
) -> Data {
    let stats = backbone.map_or_else(|| Stats::imagenet(224), |backbone| backbone.stats.clone());
    let mut data = Data {
        train: DataSource::Folder { path: String::new() },
        valid: Validation::Split { fraction: DEFAULT_VALID_FRACTION, seed },
        batch: DEFAULT_BATCH,
        mean: stats.mean.clone(),
        std: stats.std.clone(),
        channels: stats.channels,
        size: stats.input_size,
        flip: false,
        crop_padding: 0,
        augment: ImageAugment::NONE,
        corrupt: CorruptPolicy::Fail,
        classes: None,
        train_images: None,
        resize_method: ResizeMethod::Crop,
        adapt_channels: false,
        source: None,
        valid_every: ValidEvery::Epochs(1),
        batch_rejected: false,
    };
    let mut split_rejected = false;
    let Some((item, statements)) = block else {
        diagnostics.push(missing(anchor, "the recipe has no `data` block", "add `data { train \"path/to/train\" }`"));
        return data;
    };

    let mut seen: Vec<(&'static str, Span)> = Vec::new();
    let mut train_span = None;
    let mut valid_source: Option<&DataSourceDecl> = None;
    let mut source_span = None;
    for statement in statements {
        let keyword = keyword_of(&statement.kind);
        if let Some((_, first)) = seen.iter().find(|(word, _)| *word == keyword) {
            diagnostics.push(super::items::duplicate(keyword, statement.keyword, *first));
            continue;
        }
        seen.push((keyword, statement.keyword));
        match &statement.kind {
            DataKind::Train(source) => {
                data.train = check_source(source, seed, diagnostics);
                train_span = Some(source.span());
            }
            DataKind::Valid(source) => {
                // A synthetic valid set defaults to another seed than train, so its images are new.
                data.valid = Validation::Source { source: check_source(source, seed.wrapping_add(VALID_SEED_OFFSET), diagnostics) };
                valid_source = Some(source);
            }
            DataKind::ValidEvery(schedule) => {
                data.valid_every = match schedule {
                    ValidSchedule::Stage => ValidEvery::Stage,
                    ValidSchedule::Last => ValidEvery::Last,
                    ValidSchedule::Epochs(every) => match u32::try_from(every.value).ok().filter(|every| (1..=crate::limits::MAX_EPOCHS).contains(every)) {
                        Some(every) => ValidEvery::Epochs(every),
                        None => {
                            diagnostics.push(
                                Diagnostic::new(Code::ValueOutOfRange, format!("evaluate every 1..{} epochs, not {}", crate::limits::MAX_EPOCHS, every.value))
                                    .at(every.span, "not an epoch count")
                                    .with_help("e.g. `valid every 2 epochs`, `valid every stage` or `valid last`"),
                            );
                            ValidEvery::Epochs(1)
                        }
                    },
                };
            }
            DataKind::Source(source) => {
                data.source = Some(check_source(source, seed, diagnostics));
                source_span = Some(source.span());
            }
            DataKind::ValidSplit { fraction, seed: split_seed } => {
                if !(fraction.value > 0.0 && fraction.value < 1.0) {
                    split_rejected = true;
                    diagnostics.push(
                        Diagnostic::new(Code::ValueOutOfRange, format!("a valid split is a fraction between 0 and 1, not {}", fraction.value))
                            .at(fraction.span, "not in (0, 1)")
                            .with_help("e.g. `valid split 0.2` keeps a fifth of the images for validation"),
                    );
                }
                let split_seed = seed_value(split_seed.as_ref(), seed, diagnostics);
                data.valid = Validation::Split { fraction: fraction.value, seed: split_seed };
            }
            DataKind::Batch(batch) => match bounded_u32(batch.value, crate::limits::MAX_BATCH) {
                Some(batch) => data.batch = batch as usize,
                None => {
                    data.batch_rejected = true;
                    diagnostics.push(
                        Diagnostic::new(Code::ValueOutOfRange, format!("a batch holds 1..{} images, not {}", crate::limits::MAX_BATCH, batch.value))
                            .at(batch.span, "not a batch size")
                            .with_help("e.g. `batch 64`"),
                    )
                }
            },
            DataKind::Channels(channels, adapt) => {
                if channels.value == 1 || channels.value == 3 {
                    data.channels = channels.value as u32;
                } else {
                    diagnostics.push(channels_error(channels));
                }
                if *adapt {
                    if channels.value == 1 && stats.channels == 3 {
                        data.adapt_channels = true;
                    } else {
                        diagnostics.push(
                            Diagnostic::new(Code::ValueOutOfRange, "`adapt` fits grey data (`channels 1`) to a colour backbone only")
                                .at(statement.span, "nothing to adapt")
                                .with_help(format!("the backbone takes {} channel(s) and the data has {}: drop `adapt`", stats.channels, channels.value)),
                        );
                    }
                }
            }
            DataKind::Size(size) => match image_side(size.value) {
                Some(size) => data.size = size,
                None => diagnostics.push(size_error(size)),
            },
            DataKind::Normalize(normalization) => match normalization {
                Normalization::Backbone => {}
                Normalization::Imagenet => {
                    let imagenet = Stats::imagenet(0);
                    data.mean = imagenet.mean;
                    data.std = imagenet.std;
                }
                Normalization::Explicit { mean, std } => {
                    // Normalisation happens after grayscale images become RGB, so it has the backbone's channels.
                    let channels = stats.channels;
                    if let Some(mean) = check_channel_values(mean, channels, "mean", statement.span, false, diagnostics) {
                        data.mean = mean;
                    }
                    if let Some(std) = check_channel_values(std, channels, "std", statement.span, true, diagnostics) {
                        data.std = std;
                    }
                }
            },
            DataKind::Augment(augmentations) => {
                for augmentation in augmentations {
                    match augmentation.value {
                        Augmentation::Flip => data.flip = true,
                        Augmentation::Crop(padding) if (0..=crate::limits::MAX_CROP_PADDING).contains(&padding) => data.crop_padding = padding as u32,
                        Augmentation::Crop(padding) => diagnostics.push(
                            Diagnostic::new(Code::ValueOutOfRange, format!("crop padding must be 0..{} pixels, not {padding}", crate::limits::MAX_CROP_PADDING))
                                .at(augmentation.span, "not a padding")
                                .with_help("`crop 4` pads by 4 pixels and crops back at a random place"),
                        ),
                        Augmentation::Rotate(amount) => {
                            data.augment.rotate = in_range(amount, ImageAugment::FASTAI.rotate, 0.0..=180.0, "rotate", "degrees", augmentation.span, diagnostics)
                        }
                        Augmentation::Zoom(amount) => {
                            data.augment.zoom = in_range(amount, ImageAugment::FASTAI.zoom, 1.0..=4.0, "zoom", "a factor", augmentation.span, diagnostics)
                        }
                        Augmentation::Lighting(amount) => {
                            data.augment.lighting =
                                in_range(amount, ImageAugment::FASTAI.lighting, 0.0..=0.9, "lighting", "a change", augmentation.span, diagnostics)
                        }
                        Augmentation::Warp(amount) => {
                            data.augment.warp = in_range(amount, ImageAugment::FASTAI.warp, 0.0..=0.5, "warp", "a corner move", augmentation.span, diagnostics)
                        }
                        Augmentation::Mixup(amount) => {
                            data.augment.mixup = in_range(amount, ImageAugment::FASTAI.mixup, 0.0..=10.0, "mixup", "an α", augmentation.span, diagnostics)
                        }
                        Augmentation::Cutmix(amount) => {
                            data.augment.cutmix = in_range(amount, ImageAugment::FASTAI.cutmix, 0.0..=10.0, "cutmix", "an α", augmentation.span, diagnostics)
                        }
                        Augmentation::None => {}
                    }
                }
            }
            DataKind::Corrupt(policy) => data.corrupt = *policy,
            DataKind::ResizeMethod(method) => data.resize_method = *method,
        }
    }

    if let (Some(DataSource::Folder { path }), Some(span)) = (&data.source, source_span) {
        diagnostics.extend(folder_problem(world, path, "source", span));
    }
    let Some(train_span) = train_span else {
        diagnostics.push(
            Diagnostic::new(Code::MissingStatement, "the `data` block names no train folder")
                .at(item.keyword, "no `train` in this block")
                .with_help("add `train \"path/to/train\"` (class folders inside, images inside those)"),
        );
        return data;
    };

    let train_classes = match &data.train {
        DataSource::Folder { path } => world.class_folders(path),
        DataSource::Synthetic { task, .. } => builtin_data::lookup(task).map(|dataset| owned(dataset.classes)),
    };
    if let (DataSource::Synthetic { task, seed: train_seed, .. }, Some(DataSourceDecl::Synthetic { seed: Some(seed_span), .. }), Validation::Source { source: DataSource::Synthetic { task: valid_task, seed: valid_seed, .. } }) =
        (&data.train, valid_source, &data.valid)
    {
        if task == valid_task && train_seed == valid_seed {
            diagnostics.push(
                Diagnostic::new(Code::ValueOutOfRange, "the valid images would repeat the train images")
                    .at(seed_span.span, "same task and seed as train")
                    .with_help("give valid another seed, or leave its seed out (it then differs from train's)"),
            );
        }
    }
    let train_display = data.train.describe();
    match train_classes {
        Some(classes) if classes.is_empty() => diagnostics.push(
            Diagnostic::new(Code::EmptyClass, format!("`{train_display}` holds no class folders"))
                .at(train_span, "no class folders here")
                .with_help("lay images out as <train>/<class>/<image>.png"),
        ),
        Some(classes) => {
            if let (Some(valid), Validation::Source { source }) = (valid_source, &data.valid) {
                let valid_classes = match source {
                    DataSource::Folder { path } => world.class_folders(path),
                    DataSource::Synthetic { task, .. } => builtin_data::lookup(task).map(|dataset| owned(dataset.classes)),
                };
                if valid_classes.is_none() {
                    diagnostics.extend(folder_problem(world, &source.describe(), "valid", valid.span()));
                }
                if let Some(valid_classes) = valid_classes {
                    for class in classes.iter().filter(|class| !valid_classes.contains(class)) {
                        diagnostics.push(
                            Diagnostic::new(Code::ClassMissingFromValid, format!("class `{class}` has no images in `{}`", source.describe()))
                                .at(valid.span(), format!("no `{class}` here"))
                                .with_related(train_span, "the class comes from here")
                                .with_help("accuracy on that class could not be measured: add images for it to valid"),
                        );
                    }
                }
            }
            // A rejected split would count images the run never sees: nothing is counted.
            data.train_images = if split_rejected { None } else { train_image_count(&data, world) };
            data.classes = Some(classes);
        }
        None => diagnostics.extend(folder_problem(world, &train_display, "train", train_span)),
    }
    data
}

/// TL4001 for a data folder that is a file (always: no run can read it) or that is missing
/// (under `--strict`; otherwise lint checks what it finds).
fn folder_problem(world: &dyn World, path: &str, role: &str, span: Span) -> Option<Diagnostic> {
    match world.path_kind(path) {
        PathKind::File => Some(
            Diagnostic::new(Code::DataFolderMissing, format!("{role} folder `{path}` is a file, not a folder"))
                .at(span, "a file")
                .with_help(format!("point `{role}` at a folder of class folders, laid out as <folder>/<class>/<image>")),
        ),
        PathKind::Folder => None,
        PathKind::Missing | PathKind::Unknown if world.strict() => Some(
            Diagnostic::new(Code::DataFolderMissing, format!("{role} folder `{path}` does not exist"))
                .at(span, "not found")
                .with_help(where_paths_point(path)),
        ),
        PathKind::Missing | PathKind::Unknown => None,
    }
}

/// Help for a path that is not there: an absolute path is taken as written, a relative one from
/// the recipe's folder.
pub fn where_paths_point(path: &str) -> &'static str {
    if std::path::Path::new(path).is_absolute() || path.starts_with('/') {
        "the path is absolute: check that it exists on this machine"
    } else {
        "relative paths are read from the recipe file's folder, not from where tlrun runs"
    }
}

/// Images that train after the valid split, when the world can count the train folder's classes.
fn train_image_count(data: &Data, world: &dyn World) -> Option<usize> {
    let per_class = match &data.train {
        DataSource::Folder { path } => world.class_image_counts(path)?,
        DataSource::Synthetic { task, per_class, .. } => vec![*per_class; builtin_data::lookup(task)?.classes.len()],
    };
    Some(match data.valid {
        Validation::Split { fraction, .. } => {
            per_class.iter().map(|&count| count - crate::data_counts::held_out(count, fraction)).sum()
        }
        Validation::Source { .. } => per_class.iter().sum(),
    })
}

/// Seed offset for a synthetic valid set that names no seed of its own.
const VALID_SEED_OFFSET: u64 = 1000;

/// A written seed, or `default` when none is written or it is negative (TL2007).
pub fn seed_value(seed: Option<&crate::span::Spanned<i64>>, default: u64, diagnostics: &mut Vec<Diagnostic>) -> u64 {
    match seed {
        Some(seed) if seed.value >= 0 => seed.value as u64,
        Some(seed) => {
            diagnostics.push(
                Diagnostic::new(Code::ValueOutOfRange, "a seed cannot be negative")
                    .at(seed.span, "negative seed")
                    .with_help("use a whole number from 0 up, e.g. `seed 42`"),
            );
            default
        }
        None => default,
    }
}

fn owned(names: &[&str]) -> Vec<String> {
    names.iter().map(|name| name.to_string()).collect()
}

fn check_source(source: &DataSourceDecl, default_seed: u64, diagnostics: &mut Vec<Diagnostic>) -> DataSource {
    match source {
        DataSourceDecl::Folder(path) => DataSource::Folder { path: path.value.clone() },
        DataSourceDecl::Synthetic { task, per_class, seed } => {
            if builtin_data::lookup(&task.value).is_none() {
                diagnostics.push(
                    Diagnostic::new(Code::UnknownDataset, format!("there is no built-in data set `{}`", task.value))
                        .at(task.span, "unknown data set")
                        .with_suggestion(&task.value, builtin_data::names(), "built-in data sets"),
                );
            }
            let limit = crate::limits::MAX_SYNTHETIC_PER_CLASS;
            let per_class = match usize::try_from(per_class.value).ok().filter(|count| (1..=limit).contains(count)) {
                Some(count) => count,
                None => {
                    diagnostics.push(
                        Diagnostic::new(Code::ValueOutOfRange, format!("images per class must be 1..{limit}, not {}", per_class.value))
                            .at(per_class.span, "not a count")
                            .with_help("e.g. `synthetic \"shapes-target\" 20 per class`"),
                    );
                    1
                }
            };
            let seed = seed_value(seed.as_ref(), default_seed, diagnostics);
            DataSource::Synthetic { task: task.value.clone(), per_class, seed }
        }
    }
}

fn keyword_of(kind: &DataKind) -> &'static str {
    match kind {
        DataKind::Train(_) => "train",
        DataKind::Source(_) => "source",
        DataKind::ValidEvery(_) => "valid every/last",
        DataKind::Valid(_) | DataKind::ValidSplit { .. } => "valid",
        DataKind::Batch(_) => "batch",
        DataKind::Normalize(_) => "normalize",
        DataKind::Channels(..) => "channels",
        DataKind::Size(_) => "size",
        DataKind::Augment(_) => "augment",
        DataKind::Corrupt(_) => "corrupt",
        DataKind::ResizeMethod(_) => "resize_method",
    }
}

/// An `augment` option's amount: fastai's default when left out, else the written value when it
/// lies in `range` (TL2007 otherwise, and the range's start: the option off).
fn in_range(
    amount: Option<f64>,
    default: f64,
    range: std::ops::RangeInclusive<f64>,
    option: &str,
    what: &str,
    span: Span,
    diagnostics: &mut Vec<Diagnostic>,
) -> f64 {
    let value = amount.unwrap_or(default);
    if range.contains(&value) {
        return value;
    }
    diagnostics.push(
        Diagnostic::new(Code::ValueOutOfRange, format!("`augment {option}` takes {} to {}, not {value}", range.start(), range.end()))
            .at(span, format!("not {what} in range"))
            .with_help(format!("fastai's default is `{option} {default}`; write `{option}` alone for it")),
    );
    *range.start()
}
