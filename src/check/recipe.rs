//! The checked recipe: every name resolved, every default filled in. The plan and the runtime read
//! only this, never the AST.

use serde::Serialize;

use crate::arch::{Architecture, Stats};
pub use crate::syntax::ast::{BatchNormMode, CorruptPolicy, Metric, OptimizerKind, Pool, ResizeMethod, ScheduleKind};

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recipe {
    pub name: String,
    pub seed: u64,
    pub backbone: Backbone,
    pub data: Data,
    /// How many of the architecture's layers survive the cut.
    pub kept_layers: usize,
    pub head: Vec<HeadLayer>,
    pub groups: Vec<Group>,
    pub stages: Vec<Stage>,
    /// `export "…"` lines, as written: one per format (`.onnx`, else safetensors).
    pub exports: Vec<String>,
    /// Zoo entry the trained model is published as.
    pub publish: Option<String>,
    /// Checkpoint every this many optimizer steps, besides the end of every epoch.
    pub checkpoint_every: Option<u32>,
    pub loss: Loss,
    /// Decay of an exponential moving average of the weights; the average is what is evaluated,
    /// exported and published.
    pub ema: Option<f64>,
    /// `regularise l2sp α β`: L2-SP's strengths.
    pub l2sp: Option<L2Sp>,
    /// `regularise bss η k`: Batch Spectral Shrinkage's strength and count.
    pub bss: Option<Bss>,
    /// `regularise lwf λ T`: Learning without Forgetting's strength and temperature.
    pub lwf: Option<Lwf>,
    /// The final evaluation averages each image's prediction with its mirror's.
    pub tta_flip: bool,
    /// `predict "input" into "output"`: after training, in order.
    pub predictions: Vec<Prediction>,
}

/// L2-SP (Li et al. 2018, "Explicit inductive bias for transfer learning"): the loss gains
/// `α/2 · ‖w − w₀‖²` over the backbone's parameters, `w₀` the weights it starts the run with (the
/// pretrained ones), and `β/2 · ‖w‖²` over the new head's, as TLlib's implementation adds them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct L2Sp {
    pub alpha: f64,
    pub beta: f64,
}

/// BSS (Chen et al. 2019, "Catastrophic forgetting meets negative transfer: Batch Spectral
/// Shrinkage for safe transfer learning"): the loss gains `η · Σ σ²` over the `k` smallest singular
/// values of each training batch's features (the backbone's pooled output, the head's input).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bss {
    pub eta: f64,
    pub k: usize,
}

/// LwF (Li and Hoiem 2016, "Learning without forgetting"): the loss gains
/// `λ · T² · KL(softmax(t/T) ‖ softmax(s/T))`, t the pretrained network's own classifier outputs
/// on the batch (the frozen starting network), s that classifier applied to the features the
/// network being trained computes. The classifier is kept frozen: see docs/language.md.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Lwf {
    pub lambda: f64,
    pub temperature: f64,
}

/// One `predict` step: a folder (or image) to apply the trained model to, and the CSV or JSON
/// lines file the predictions go to, both relative to the recipe.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Prediction {
    pub input: String,
    pub output: String,
}

/// Cross-entropy, as PyTorch's `CrossEntropyLoss(weight, label_smoothing)` computes it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Loss {
    /// Label smoothing ε: the target is (1 - ε) on the true class plus ε / classes everywhere.
    pub smoothing: f64,
    /// Weight each class by `images / (classes × images of the class)` (scikit-learn's "balanced").
    pub balanced_weights: bool,
}

impl Default for Loss {
    fn default() -> Self {
        Loss { smoothing: 0.0, balanced_weights: false }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backbone {
    #[serde(serialize_with = "architecture_name")]
    pub architecture: &'static Architecture,
    pub weights: Weights,
    /// What the weights were trained with: the zoo card, the recipe's override, or the architecture's.
    pub stats: Stats,
    /// What the zoo card says the weights were trained on, as data a run can load.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_data: Option<DataSource>,
    /// The pretraining's held-out images (of `source_data` when a split), for forgetting.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_valid: Option<Validation>,
}

fn architecture_name<S: serde::Serializer>(architecture: &&'static Architecture, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(architecture.name)
}

impl Backbone {
    pub fn is_pretrained(&self) -> bool {
        !matches!(self.weights, Weights::Random)
    }
}

impl Recipe {
    /// Channels the network's first convolution takes: the backbone's, or 1 under `channels 1 adapt`.
    pub fn input_channels(&self) -> u32 {
        if self.data.adapt_channels { 1 } else { self.backbone.stats.channels }
    }

    /// The side the network last trains at: the last stage's last size (or the data `size`).
    /// The images forgetting is measured on: the recipe's `source`, else the zoo card's.
    pub fn forgetting_source(&self) -> Option<&DataSource> {
        self.data.source.as_ref().or(self.backbone.source_data.as_ref())
    }

    /// The images the pretraining held out of the forgetting source, when the zoo card says
    /// (a recipe's own `source` names training images only).
    pub fn forgetting_holdout(&self) -> Option<&Validation> {
        if self.data.source.is_some() { None } else { self.backbone.source_valid.as_ref() }
    }

    /// The name of the last layer the cut keeps (`nothing` when it keeps none).
    pub fn cut_after(&self) -> &'static str {
        self.kept_layers.checked_sub(1).and_then(|index| self.backbone.architecture.layers.get(index)).map_or("nothing", |layer| layer.name)
    }

    pub fn last_size(&self) -> u32 {
        self.stages.last().and_then(|stage| stage.sizes.last().copied()).unwrap_or(self.data.size)
    }

    /// Whether images are made grey when decoded: grey data, or a network that takes one channel.
    pub fn grey_images(&self) -> bool {
        self.data.channels == 1 || self.input_channels() == 1
    }

    /// Mean and std for each input channel of the network. One channel fed by 3-channel
    /// statistics (an adapted colour backbone) takes their average, as the summed filters see
    /// one grey value where they saw three.
    pub fn input_normalisation(&self) -> (Vec<f64>, Vec<f64>) {
        let average = |values: &[f64]| vec![values.iter().sum::<f64>() / values.len().max(1) as f64];
        if self.input_channels() == 1 && self.data.mean.len() > 1 {
            (average(&self.data.mean), average(&self.data.std))
        } else {
            (self.data.mean.clone(), self.data.std.clone())
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "from", content = "name", rename_all = "lowercase")]
pub enum Weights {
    Zoo(String),
    File(String),
    Recipe(String),
    Random,
}

/// fastai's `aug_transforms` beyond flip and crop, on training images only: rotation, zoom and
/// corner warp as one resample (bilinear, reflected at the edges), each part with probability
/// 0.75 (fastai's `p_affine`); brightness and contrast in logit space, each with probability 0.75
/// (`p_lighting`). Zero (one for zoom) is off.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ImageAugment {
    /// Largest rotation either way, in degrees.
    pub rotate: f64,
    /// Largest zoom factor (fastai's `max_zoom`; `min_zoom` is 1).
    pub zoom: f64,
    /// Largest change of brightness and of contrast (fastai's `max_lighting`).
    pub lighting: f64,
    /// Largest move of each corner, as a fraction of half the side (fastai's `max_warp`).
    pub warp: f64,
    /// MixUp's and CutMix's α: whole batches mixed (`data::mix`). Zero is off.
    pub mixup: f64,
    pub cutmix: f64,
}

impl ImageAugment {
    pub const NONE: ImageAugment = ImageAugment { rotate: 0.0, zoom: 1.0, lighting: 0.0, warp: 0.0, mixup: 0.0, cutmix: 0.0 };
    /// fastai's defaults (`aug_transforms`, `MixUp`, `CutMix`), for an option written without
    /// its number.
    pub const FASTAI: ImageAugment = ImageAugment { rotate: 10.0, zoom: 1.1, lighting: 0.2, warp: 0.2, mixup: 0.4, cutmix: 1.0 };

    pub fn is_none(&self) -> bool {
        *self == ImageAugment::NONE
    }

    /// Whether whole batches are mixed (MixUp or CutMix).
    pub fn mixes(&self) -> bool {
        self.mixup > 0.0 || self.cutmix > 0.0
    }

    /// Whether the affine resample runs (rotation, zoom or warp).
    pub fn resamples(&self) -> bool {
        self.rotate > 0.0 || self.zoom > 1.0 || self.warp > 0.0
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Data {
    pub train: DataSource,
    pub valid: Validation,
    pub batch: usize,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub channels: u32,
    /// Image side for stages that do not resize.
    pub size: u32,
    pub flip: bool,
    pub crop_padding: u32,
    /// `augment rotate … zoom … lighting … warp …`: fastai's `aug_transforms`.
    pub augment: ImageAugment,
    pub corrupt: CorruptPolicy,
    /// Class folder names, when the checker could see the train folder.
    pub classes: Option<Vec<String>>,
    /// Training images after the valid split, when the checker could count them.
    pub train_images: Option<usize>,
    pub resize_method: ResizeMethod,
    /// `channels 1 adapt`: the network takes one channel; a colour backbone's first filters are
    /// summed over their RGB inputs (timm's `adapt_input_conv`).
    pub adapt_channels: bool,
    /// `source`: the images the backbone was trained on, measured after every stage (forgetting).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<DataSource>,
    /// `valid every …`: which epochs end with an evaluation (default: every one).
    #[serde(skip_serializing_if = "ValidEvery::is_every_epoch")]
    pub valid_every: ValidEvery,
    /// The recipe's `batch` was rejected (TL2007): `batch` holds the default, which no warning
    /// may quote as if the recipe had written it.
    #[serde(skip)]
    pub batch_rejected: bool,
}

/// Which epochs end with an evaluation of the valid images. The run's final evaluation always runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ValidEvery {
    /// Every N-th epoch of a stage, and its last.
    Epochs(u32),
    /// The last epoch of every stage.
    Stage,
    /// Only the run's last epoch.
    Last,
}

impl ValidEvery {
    pub fn is_every_epoch(&self) -> bool {
        *self == ValidEvery::Epochs(1)
    }

    /// Whether epoch `epoch` (1-based) of a stage of `stage_epochs` ends with an evaluation.
    pub fn due(&self, epoch: u32, stage_epochs: u32, last_stage: bool) -> bool {
        let stage_end = epoch >= stage_epochs;
        match self {
            ValidEvery::Epochs(every) => stage_end || epoch % (*every).max(1) == 0,
            ValidEvery::Stage => stage_end,
            ValidEvery::Last => stage_end && last_stage,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            ValidEvery::Epochs(1) => "every epoch".to_string(),
            ValidEvery::Epochs(every) => format!("every {every} epochs and at the end of each stage"),
            ValidEvery::Stage => "at the end of each stage".to_string(),
            ValidEvery::Last => "after the last epoch only".to_string(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Validation {
    /// Separate images: a folder or a synthetic set drawn with another seed.
    Source { source: DataSource },
    Split { fraction: f64, seed: u64 },
}

impl Validation {
    /// As a zoo card's `source_valid` writes it: a data source's card text, or `split:F:S`.
    pub fn card_text(&self) -> String {
        match self {
            Validation::Source { source } => source.card_text(),
            Validation::Split { fraction, seed } => format!("split:{fraction}:{seed}"),
        }
    }

    /// The inverse of [`Validation::card_text`]; `None` for an empty or unreadable text.
    pub fn from_card_text(text: &str) -> Option<Validation> {
        if let Some(rest) = text.strip_prefix("split:") {
            let (fraction, seed) = rest.split_once(':')?;
            return Some(Validation::Split { fraction: fraction.parse().ok()?, seed: seed.parse().ok()? });
        }
        DataSource::from_card_text(text).map(|source| Validation::Source { source })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HeadLayer {
    Pool { pool: Pool },
    Flatten,
    Dropout { probability: f64 },
    BatchNorm { features: u32 },
    Relu,
    Linear { in_features: u32, out_features: OutFeatures },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum DataSource {
    /// `<path>/<class>/<image>`, relative to the recipe file.
    Folder { path: String },
    /// A built-in procedural data set (`crate::builtin_data`).
    Synthetic { task: String, per_class: usize, seed: u64 },
}

impl DataSource {
    /// How a zoo card writes a data source: the folder (absolute, for a card), or
    /// `synthetic:TASK:PER_CLASS:SEED`. `from_card_text` reads it back.
    pub fn card_text(&self) -> String {
        match self {
            DataSource::Folder { path } => path.clone(),
            DataSource::Synthetic { task, per_class, seed } => format!("synthetic:{task}:{per_class}:{seed}"),
        }
    }

    /// The source a card's `source_data` names; `None` for an empty or malformed one.
    pub fn from_card_text(text: &str) -> Option<DataSource> {
        if let Some(rest) = text.strip_prefix("synthetic:") {
            let mut parts = rest.rsplitn(3, ':');
            let seed = parts.next()?.parse().ok()?;
            let per_class = parts.next()?.parse().ok()?;
            let task = parts.next()?.to_string();
            return Some(DataSource::Synthetic { task, per_class, seed });
        }
        (!text.is_empty()).then(|| DataSource::Folder { path: text.to_string() })
    }

    pub fn describe(&self) -> String {
        match self {
            DataSource::Folder { path } => path.clone(),
            DataSource::Synthetic { task, per_class, seed } => format!("synthetic {task} ({per_class}/class, seed {seed})"),
        }
    }
}

/// A head width: fixed, or the number of classes, known once the data is read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutFeatures {
    Fixed(u32),
    Classes,
}

impl OutFeatures {
    pub fn resolve(self, classes: usize) -> u32 {
        match self {
            OutFeatures::Fixed(width) => width,
            OutFeatures::Classes => classes as u32,
        }
    }
}

/// A named set of layers that freeze and take learning rates together. `head` holds the new head.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Group {
    pub name: String,
    pub layers: Vec<String>,
}

impl Group {
    pub fn is_head(&self) -> bool {
        self.layers.iter().any(|layer| layer == "head")
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stage {
    pub name: String,
    pub epochs: u32,
    pub base_lr: f64,
    /// Per group, in group order: does it train in this stage?
    pub trained: Vec<bool>,
    /// Per group: the factor on `base_lr`.
    pub multipliers: Vec<f64>,
    pub optimizer: Optimizer,
    pub schedule: ScheduleKind,
    /// The shape of `schedule onecycle` (ignored by the other schedules).
    pub onecycle: OneCycle,
    /// Image side for each epoch, in order.
    pub sizes: Vec<u32>,
    pub batchnorm: BatchNormMode,
    /// Batches per optimizer step (gradient accumulation); 1 is a step per batch.
    pub accumulate: usize,
    /// Restore the weights of the best epoch when the stage ends.
    pub keep_best: Option<Metric>,
    pub early_stop: Option<EarlyStop>,
}

/// fastai's `fit_one_cycle`: the rate warms up over `pct` of the steps from `lr / div` to `lr`,
/// then anneals to `lr / final_div`, both halves cosine; AdamW's β₁ (SGD's momentum) moves
/// the other way, `moms.0 → moms.1 → moms.2`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct OneCycle {
    pub pct: f64,
    pub div: f64,
    pub final_div: f64,
    pub moms: (f64, f64, f64),
}

impl Default for OneCycle {
    /// fastai's defaults: `pct_start=0.25, div=25, div_final=1e5, moms=(0.95, 0.85, 0.95)`.
    fn default() -> Self {
        OneCycle { pct: 0.25, div: 25.0, final_div: 1e5, moms: (0.95, 0.85, 0.95) }
    }
}

/// Stop a stage after `patience` epochs in which `metric` did not improve by more than `min_delta`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct EarlyStop {
    pub patience: u32,
    pub min_delta: f64,
    pub metric: Metric,
}

impl Stage {
    /// Group `group`'s learning rate before the schedule: base × multiplier.
    pub fn group_lr(&self, group: usize) -> f64 {
        self.rate(group, self.base_lr, 1.0)
    }

    /// Group `group`'s learning rate for base rate `base` at schedule factor `factor`: base ×
    /// multiplier × factor, in that order. The one place the formula lives: the optimizer's steps,
    /// the rates a run records, `plan`'s table and lr-find's sweep (which moves `base`) all ask it.
    pub fn rate(&self, group: usize, base: f64, factor: f64) -> f64 {
        base * self.multipliers[group] * factor
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Optimizer {
    pub kind: OptimizerKind,
    pub weight_decay: f64,
    pub momentum: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub epsilon: f64,
    /// Decay BatchNorm parameters and biases too (fastai's `wd_bn_bias`, off by default).
    pub decay_batchnorm_and_bias: bool,
}

impl Optimizer {
    /// AdamW takes fastai's defaults: betas (0.9, 0.99), eps 1e-5, wd 0.01. SGD takes the usual
    /// momentum 0.9 (fastai's SGD has none) and no weight decay.
    pub fn defaults(kind: OptimizerKind) -> Self {
        match kind {
            OptimizerKind::Adamw => {
                Optimizer { kind, weight_decay: 0.01, momentum: 0.0, beta1: 0.9, beta2: 0.99, epsilon: 1e-5, decay_batchnorm_and_bias: false }
            }
            OptimizerKind::Sgd => {
                Optimizer { kind, weight_decay: 0.0, momentum: 0.9, beta1: 0.9, beta2: 0.99, epsilon: 1e-5, decay_batchnorm_and_bias: false }
            }
        }
    }
}
