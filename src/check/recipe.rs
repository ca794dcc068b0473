//! The checked recipe: every name resolved, every default filled in. The plan and the runtime read
//! only this, never the AST.

use serde::Serialize;

use crate::arch::{Architecture, Stats};
pub use crate::syntax::ast::{BatchNormMode, CorruptPolicy, OptimizerKind, Pool, ScheduleKind};

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
    pub export: Option<String>,
    /// Zoo entry the trained model is published as.
    pub publish: Option<String>,
    /// Checkpoint every this many optimizer steps, besides the end of every epoch.
    pub checkpoint_every: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Backbone {
    #[serde(serialize_with = "architecture_name")]
    pub architecture: &'static Architecture,
    pub weights: Weights,
    /// What the weights were trained with: the zoo card, the recipe's override, or the architecture's.
    pub stats: Stats,
}

fn architecture_name<S: serde::Serializer>(architecture: &&'static Architecture, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(architecture.name)
}

impl Backbone {
    pub fn is_pretrained(&self) -> bool {
        !matches!(self.weights, Weights::Random)
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
    pub corrupt: CorruptPolicy,
    /// Class folder names, when the checker could see the train folder.
    pub classes: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Validation {
    /// Separate images: a folder or a synthetic set drawn with another seed.
    Source { source: DataSource },
    Split { fraction: f64, seed: u64 },
}

#[derive(Debug, Clone, PartialEq, Serialize)]
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
    pub fn describe(&self) -> String {
        match self {
            DataSource::Folder { path } => path.clone(),
            DataSource::Synthetic { task, per_class, seed } => format!("synthetic {task} ({per_class}/class, seed {seed})"),
        }
    }
}

/// A head width: fixed, or the number of classes, known once the data is read.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
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
    /// Image side for each epoch, in order.
    pub sizes: Vec<u32>,
    pub batchnorm: BatchNormMode,
}

impl Stage {
    pub fn group_lr(&self, group: usize) -> f64 {
        self.base_lr * self.multipliers[group]
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
}

impl Optimizer {
    /// AdamW takes fastai's defaults: betas (0.9, 0.99), eps 1e-5, wd 0.01. SGD takes the usual
    /// momentum 0.9 (fastai's SGD has none) and no weight decay.
    pub fn defaults(kind: OptimizerKind) -> Self {
        match kind {
            OptimizerKind::Adamw => {
                Optimizer { kind, weight_decay: 0.01, momentum: 0.0, beta1: 0.9, beta2: 0.99, epsilon: 1e-5 }
            }
            OptimizerKind::Sgd => {
                Optimizer { kind, weight_decay: 0.0, momentum: 0.9, beta1: 0.9, beta2: 0.99, epsilon: 1e-5 }
            }
        }
    }
}
