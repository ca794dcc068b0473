//! A run as a program: the recipe's step graph (`plan::build_graph`, what `tlrun graph` draws)
//! in its order, each node compiled into the instructions that carry its operands resolved
//! (paths joined to the recipe's folder, the upstream recipe's export found once), and, for a
//! resumed run, rewritten from its `ResumePoint`: the stages and forgetting measures the
//! checkpoint completed are skipped, the pretrained load gives way to the run's own initial
//! weights and the checkpoint's restore, and the stage the checkpoint stopped inside continues
//! from there. The interpreter (`interpreter.rs`) runs the instructions and never asks whether
//! it is resuming.

use std::path::{Path, PathBuf};

use petgraph::graph::NodeIndex;

use super::resume_point::{ResumePoint, Start};
use crate::arch::Architecture;
use crate::check::recipe::{Recipe, Stage};
use crate::plan::{PipelineGraph, Step};

/// One thing the interpreter does, with everything it needs resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Instruction {
    /// `from recipe`: that recipe's export must exist before anything runs.
    RequireExport { recipe: String, export: PathBuf },
    LoadData,
    /// The whole architecture with weights drawn from `seed`, its first convolution taking
    /// `channels` (three when colour weights will be adapted to grey).
    BuildBackbone { architecture: &'static Architecture, channels: u32, seed: u64 },
    /// The pretrained file into the backbone (none: random weights, or a resumed run, whose own
    /// initial weights come later); then `channels 1 adapt` sums the first filters.
    LoadWeights { file: Option<PathBuf> },
    /// `regularise lwf`: the pretrained file's classifier, kept for the teacher (fresh and
    /// resumed runs alike: a resume's own initial weights do not hold it).
    KeepSourceClassifier { file: PathBuf },
    Cut { kept: usize },
    AttachHead,
    /// A fresh run: the network it starts from, saved so a resume can start from the same bits.
    SaveInitialWeights,
    /// A resumed run: the run's initial weights, metrics and forgetting curve read back, then the
    /// checkpoint's network, optimizer, rates and average restored.
    RestoreRun { point: ResumePoint },
    /// Every image resized once to this side, ahead of the epochs that train at it.
    Resize { size: u32 },
    /// Stage `index` of the recipe, resolved: its groups' training flags and rates, its
    /// schedule, and each epoch's image size. `continue_inside`: from the restored checkpoint's
    /// position.
    Stage { index: usize, stage: Box<Stage>, continue_inside: bool },
    MeasureShift,
    SourceBaseline,
    MeasureForgetting { index: usize, name: String },
    Evaluate { size: u32, tta: bool },
    Export { file: PathBuf },
    Publish { entry: String },
    Predict { input: PathBuf, output: PathBuf },
}

/// A graph node and what runs for it. A node with no instructions was completed before (a
/// resumed run's closed stages); `record` says whether steps.jsonl lists it as executed.
#[derive(Debug, Clone, PartialEq)]
pub struct Line {
    pub node: NodeIndex,
    pub label: String,
    pub instructions: Vec<Instruction>,
    pub record: bool,
}

/// The instructions of one run, in the graph's order.
pub fn compile(graph: &PipelineGraph, recipe: &Recipe, base: &Path, pretrained: Option<&Path>, start: &Start) -> Vec<Line> {
    let point = match start {
        Start::Resume(point) => Some(point),
        Start::Fresh => None,
    };
    let completed = |node: NodeIndex| point.is_some_and(|point| point.completed.contains(&node));
    graph
        .order()
        .into_iter()
        .map(|node| {
            let step = &graph.graph[node];
            let mut record = true;
            let instructions = match step {
                Step::Upstream { path } => pretrained
                    .map(|export| Instruction::RequireExport { recipe: path.clone(), export: export.to_path_buf() })
                    .into_iter()
                    .collect(),
                Step::LoadData { .. } => vec![Instruction::LoadData],
                Step::BuildBackbone { .. } => vec![Instruction::BuildBackbone {
                    architecture: recipe.backbone.architecture,
                    channels: super::starting_network::first_channels(recipe),
                    seed: recipe.seed,
                }],
                Step::LoadWeights { .. } => {
                    // Resuming: the run's own initial weights replace these once the head is on.
                    record = point.is_none();
                    let mut instructions = vec![Instruction::LoadWeights { file: if point.is_some() { None } else { pretrained.map(Path::to_path_buf) } }];
                    if let (Some(_), Some(file)) = (recipe.lwf, pretrained) {
                        instructions.push(Instruction::KeepSourceClassifier { file: file.to_path_buf() });
                    }
                    instructions
                }
                Step::Cut { kept, .. } => vec![Instruction::Cut { kept: *kept }],
                Step::AttachHead { .. } => match point {
                    Some(point) => vec![Instruction::AttachHead, Instruction::RestoreRun { point: point.clone() }],
                    None => vec![Instruction::AttachHead, Instruction::SaveInitialWeights],
                },
                Step::Resize { size } => vec![Instruction::Resize { size: *size }],
                Step::Stage { .. } if completed(node) => {
                    record = false;
                    Vec::new()
                }
                Step::Stage { index, .. } => {
                    let continue_inside = point.is_some_and(|point| point.next_stage == Some(node) && point.within);
                    vec![Instruction::Stage { index: *index, stage: Box::new(recipe.stages[*index].clone()), continue_inside }]
                }
                Step::MeasureShift => vec![Instruction::MeasureShift],
                Step::SourceBaseline { .. } => vec![Instruction::SourceBaseline],
                Step::MeasureForgetting { .. } if completed(node) => {
                    record = false;
                    Vec::new()
                }
                Step::MeasureForgetting { index, name } => vec![Instruction::MeasureForgetting { index: *index, name: name.clone() }],
                Step::Evaluate { size, tta } => vec![Instruction::Evaluate { size: *size, tta: *tta }],
                Step::Export { path } => vec![Instruction::Export { file: base.join(path) }],
                Step::Publish { entry } => vec![Instruction::Publish { entry: entry.clone() }],
                Step::Predict { input, output } => vec![Instruction::Predict { input: base.join(input), output: base.join(output) }],
            };
            Line { node, label: step.label(), instructions, record }
        })
        .collect()
}

/// What a tool that needs the network some node sees runs first (lr-find: the network a stage
/// starts from; the probe: the loaded backbone): the lines of the nodes `node` depends on, and
/// `node` itself when `inclusive`, each without the instructions that only record or measure a
/// run (initial weights, shift, forgetting), which need a run folder and change no weight.
pub fn up_to(program: &[Line], graph: &PipelineGraph, node: NodeIndex, inclusive: bool) -> Vec<Line> {
    let needed = graph.ancestors(node);
    program
        .iter()
        .filter(|line| needed.contains(&line.node) || (inclusive && line.node == node))
        .map(|line| Line {
            instructions: line.instructions.iter().filter(|instruction| shapes_the_network(instruction)).cloned().collect(),
            record: false,
            ..line.clone()
        })
        .collect()
}

/// Whether running `instruction` changes what the next one sees (data, backbone, network, sizes).
fn shapes_the_network(instruction: &Instruction) -> bool {
    match instruction {
        Instruction::RequireExport { .. }
        | Instruction::LoadData
        | Instruction::BuildBackbone { .. }
        | Instruction::LoadWeights { .. }
        | Instruction::KeepSourceClassifier { .. }
        | Instruction::Cut { .. }
        | Instruction::AttachHead
        | Instruction::Resize { .. }
        | Instruction::Stage { .. } => true,
        Instruction::SaveInitialWeights
        | Instruction::RestoreRun { .. }
        | Instruction::MeasureShift
        | Instruction::SourceBaseline
        | Instruction::MeasureForgetting { .. }
        | Instruction::Evaluate { .. }
        | Instruction::Export { .. }
        | Instruction::Publish { .. }
        | Instruction::Predict { .. } => false,
    }
}

/// `program` with its cut moved to keep `kept` layers (the probe reads layers past the recipe's cut).
pub fn with_cut(program: Vec<Line>, kept: usize) -> Vec<Line> {
    program
        .into_iter()
        .map(|line| Line {
            instructions: line
                .instructions
                .into_iter()
                .map(|instruction| if let Instruction::Cut { .. } = instruction { Instruction::Cut { kept } } else { instruction })
                .collect(),
            ..line
        })
        .collect()
}
