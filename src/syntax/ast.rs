//! The recipe as written: every name and value keeps its span. Nothing here is validated yet.

use crate::span::{Span, Spanned};

pub type Name = Spanned<String>;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ast {
    pub items: Vec<Item>,
}

/// A top-level statement; `keyword` spans the word that starts it, for "written twice" reports.
#[derive(Debug, Clone, PartialEq)]
pub struct Item {
    pub keyword: Span,
    pub span: Span,
    pub kind: ItemKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ItemKind {
    Recipe(Spanned<String>),
    Seed(Spanned<i64>),
    Backbone(BackboneDecl),
    Data(Vec<DataStatement>),
    Cut(CutDecl),
    Head(Vec<Spanned<HeadLayer>>),
    Groups(Vec<GroupDef>),
    Stage(StageDecl),
    Export(Spanned<String>),
    Publish(Spanned<String>),
    /// `checkpoint every N steps`.
    Checkpoint(Spanned<i64>),
    /// `loss cross_entropy [smoothing X] [weights balanced]`.
    Loss(Vec<Spanned<LossOption>>),
    /// `ema 0.999`: decay of the weights' moving average.
    Ema(Spanned<f64>),
    /// `tta flip`.
    TtaFlip,
    /// `regularise l2sp α β  bss [η] [k]  lwf [λ] [T]`: one or more terms of the loss.
    Regularise(Vec<Spanned<Regulariser>>),
    /// `predict "images" into "predictions.csv"`.
    Predict { input: Spanned<String>, output: Spanned<String> },
    /// `sweep { seed 0 1 2  lr finetune 1e-3 3e-3 }`: one axis per statement.
    Sweep(Vec<SweepAxis>),
}

/// One swept value of a recipe and the values it takes, each as written (spliced into the recipe
/// text to make a variant) with its span.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepAxis {
    pub span: Span,
    pub kind: SweepKind,
    pub values: Vec<Spanned<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum SweepKind {
    Seed,
    /// A stage's base learning rate.
    Lr(Name),
    /// A stage's epochs.
    Epochs(Name),
    Batch,
    /// `cut after LAYER`.
    Cut,
    /// A stage's `spread` (fastai's `slice(lr / spread, lr)`).
    Spread(Name),
    /// The zoo entry of `backbone … from zoo "…"`.
    Zoo,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LossOption {
    Smoothing(f64),
    BalancedWeights,
}

#[derive(Debug, Clone, PartialEq)]
pub struct BackboneDecl {
    pub architecture: Name,
    pub weights: Option<Spanned<WeightsSource>>,
    pub stats: Vec<Spanned<Stat>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum WeightsSource {
    Zoo(Spanned<String>),
    File(Spanned<String>),
    Recipe(Spanned<String>),
    None,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Stat {
    Mean(Vec<Spanned<f64>>),
    Std(Vec<Spanned<f64>>),
    Size(Spanned<i64>),
    Channels(Spanned<i64>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct DataStatement {
    pub keyword: Span,
    pub span: Span,
    pub kind: DataKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum DataKind {
    Train(DataSourceDecl),
    Valid(DataSourceDecl),
    /// `valid every N epochs`, `valid every stage`, `valid last`.
    ValidEvery(ValidSchedule),
    /// `source FOLDER`: the pretraining images, measured after every stage (forgetting).
    Source(DataSourceDecl),
    ValidSplit { fraction: Spanned<f64>, seed: Option<Spanned<i64>> },
    Batch(Spanned<i64>),
    Normalize(Normalization),
    /// `channels N [adapt]`.
    Channels(Spanned<i64>, bool),
    /// Image side for stages without `resize`.
    Size(Spanned<i64>),
    Augment(Vec<Spanned<Augmentation>>),
    Corrupt(CorruptPolicy),
    ResizeMethod(ResizeMethod),
}

/// How a non-square image becomes square, as fastai's `Resize(method=…)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMethod {
    /// Scale the short side to the size, then cut a square: at random for training, the centre for
    /// validation.
    Crop,
    /// Scale each side to the size, ignoring the aspect ratio.
    Squash,
    /// Scale the long side to the size, then pad the short side with black, centred.
    Pad,
}

/// Where images come from: an image folder, or a built-in synthetic data set.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSourceDecl {
    Folder(Spanned<String>),
    Synthetic { task: Spanned<String>, per_class: Spanned<i64>, seed: Option<Spanned<i64>> },
}

impl DataSourceDecl {
    pub fn span(&self) -> crate::span::Span {
        match self {
            DataSourceDecl::Folder(path) => path.span,
            DataSourceDecl::Synthetic { task, per_class, seed } => {
                let span = task.span.to(per_class.span);
                seed.as_ref().map_or(span, |seed| span.to(seed.span))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Normalization {
    Backbone,
    Imagenet,
    Explicit { mean: Vec<Spanned<f64>>, std: Vec<Spanned<f64>> },
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Augmentation {
    Flip,
    Crop(i64),
    /// fastai's `aug_transforms` options; `None`: the word alone (fastai's default).
    Rotate(Option<f64>),
    Zoom(Option<f64>),
    Lighting(Option<f64>),
    Warp(Option<f64>),
    /// MixUp's and CutMix's α.
    Mixup(Option<f64>),
    Cutmix(Option<f64>),
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CorruptPolicy {
    Fail,
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutSide {
    After,
    Before,
}

#[derive(Debug, Clone, PartialEq)]
pub struct CutDecl {
    pub side: CutSide,
    pub layer: Name,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pool {
    Avg,
    Max,
    /// Average and max side by side (fastai's AdaptiveConcatPool2d): twice the channels.
    Concat,
}

#[derive(Debug, Clone, PartialEq)]
pub enum HeadLayer {
    Pool(Pool),
    Dropout(Spanned<f64>),
    BatchNorm,
    Relu,
    Linear(LinearWidth),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum LinearWidth {
    Classes,
    Fixed(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub struct GroupDef {
    pub name: Name,
    pub members: Vec<Name>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageDecl {
    pub name: Name,
    pub statements: Vec<StageStatement>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct StageStatement {
    pub keyword: Span,
    pub span: Span,
    pub kind: StageKind,
}

#[derive(Debug, Clone, PartialEq)]
pub enum StageKind {
    Train(TrainTarget),
    Freeze(Vec<Name>),
    Epochs(Spanned<i64>),
    Lr { rate: Spanned<f64>, spread: Option<Spanned<f64>>, multipliers: Option<Vec<(Name, Spanned<f64>)>> },
    Spread(Spanned<f64>),
    Multipliers(Vec<(Name, Spanned<f64>)>),
    Optimizer { kind: OptimizerKind, params: Vec<Spanned<OptimizerParam>> },
    Schedule(ScheduleKind, Vec<Spanned<OneCycleParam>>),
    Resize { sizes: Vec<Spanned<i64>>, starts: Vec<Spanned<i64>> },
    BatchNorm(BatchNormMode),
    Accumulate(Spanned<i64>),
    KeepBest(Option<Metric>),
    StopAfter { patience: Spanned<i64>, min_delta: Option<Spanned<f64>> },
}

/// What `keep best` and early stopping watch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    ValidAccuracy,
    ValidLoss,
}

impl Metric {
    pub fn name(self) -> &'static str {
        match self {
            Metric::ValidAccuracy => "valid_accuracy",
            Metric::ValidLoss => "valid_loss",
        }
    }

    /// Whether `candidate` beats `best` by more than `min_delta`.
    pub fn improves(self, candidate: f64, best: f64, min_delta: f64) -> bool {
        match self {
            Metric::ValidAccuracy => candidate > best + min_delta,
            Metric::ValidLoss => candidate < best - min_delta,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum TrainTarget {
    All,
    /// fastai's `freeze_to`: this group and every later one train.
    From(Name),
    Groups(Vec<Name>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    Adamw,
    Sgd,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OptimizerParam {
    WeightDecay(f64),
    Momentum(f64),
    Betas(f64, f64),
    Eps(f64),
    /// Weight decay on BatchNorm parameters and biases too (fastai's `wd_bn_bias=True`).
    DecayBatchNormAndBias,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum OneCycleParam {
    Pct(f64),
    Div(f64),
    FinalDiv(f64),
    Moms(f64, f64, f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScheduleKind {
    Onecycle,
    Cosine,
    Constant,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BatchNormMode {
    /// BatchNorm layers in frozen groups keep their running statistics (Keras' advice for fine-tuning).
    Frozen,
    /// BatchNorm layers in frozen groups keep training: statistics and affine weights move (fastai's train_bn).
    Train,
}

/// How often a run evaluates the valid images (the final evaluation always runs).
#[derive(Debug, Clone, PartialEq)]
pub enum ValidSchedule {
    Epochs(Spanned<i64>),
    /// At the end of every stage.
    Stage,
    /// Only after the run's last epoch.
    Last,
}

/// One term of `regularise`.
#[derive(Debug, Clone, PartialEq)]
pub enum Regulariser {
    /// `l2sp α β`.
    L2Sp { alpha: Spanned<f64>, beta: Spanned<f64> },
    /// `bss [η] [k]`.
    Bss { eta: Option<Spanned<f64>>, k: Option<Spanned<f64>> },
    /// `lwf [λ] [T]`.
    Lwf { lambda: Option<Spanned<f64>>, temperature: Option<Spanned<f64>> },
}
