//! Where a resumed run picks up: a position in its step graph. The checkpoint says which stage
//! it was written in and where inside it; that maps onto the graph's stage nodes, so the
//! interpreter knows which nodes the checkpoint completed (their work is in its weights) and
//! which stage node continues from it.

use std::path::{Path, PathBuf};

use petgraph::graph::NodeIndex;

use super::checkpoint;
use super::trainer::Position;
use crate::diagnostics::{Code, Diagnostic};
use crate::plan::{PipelineGraph, Step};

/// How a run starts: from nothing, or from a point in its graph.
pub enum Start {
    Fresh,
    Resume(ResumePoint),
}

impl Start {
    pub fn is_resume(&self) -> bool {
        matches!(self, Start::Resume(_))
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResumePoint {
    /// The checkpoint folder the network, optimizer and rates come from.
    pub checkpoint: PathBuf,
    pub position: Position,
    /// Stage nodes the checkpoint closed, and their forgetting measures: they are not run again.
    pub completed: Vec<NodeIndex>,
    /// The stage node that continues from the checkpoint (from inside it when `within`), or
    /// `None` when every stage closed and the run goes on with its evaluation.
    pub next_stage: Option<NodeIndex>,
    /// Whether the checkpoint stopped inside `next_stage` (else that stage starts afresh).
    pub within: bool,
}

impl ResumePoint {
    /// The point `run_folder`'s newest checkpoint stands at in `graph`.
    pub fn find(run_folder: &Path, graph: &PipelineGraph) -> Result<ResumePoint, Diagnostic> {
        let Some(checkpoint) = checkpoint::latest(run_folder) else {
            return Err(Diagnostic::new(Code::RunFolderUnreadable, format!("{} has no checkpoint to resume from", run_folder.display()))
                .with_help("checkpoints are written at the end of every epoch (and every N steps with `checkpoint every N steps`)"));
        };
        let position = checkpoint::position(&checkpoint)?;
        Self::at(checkpoint, position, graph)
    }

    /// The point in `graph` that `position` stands at.
    pub fn at(checkpoint: PathBuf, position: Position, graph: &PipelineGraph) -> Result<ResumePoint, Diagnostic> {
        let stages: Vec<(NodeIndex, usize, u32)> = graph
            .order()
            .into_iter()
            .filter_map(|node| match &graph.graph[node] {
                Step::Stage { index, epochs, .. } => Some((node, *index, *epochs)),
                _ => None,
            })
            .collect();
        let Some(&(_, _, epochs)) = stages.iter().find(|(_, index, _)| *index == position.stage_index) else {
            return Err(Diagnostic::new(
                Code::RunFolderUnreadable,
                format!("checkpoint {} is in stage {} of a recipe with {} stage(s)", checkpoint.display(), position.stage_index + 1, stages.len()),
            )
            .with_help("the checkpoint belongs to another recipe; start the run again"));
        };
        // A checkpoint past its stage's last epoch closed that stage.
        let closed = position.epoch > epochs;
        let completed: Vec<NodeIndex> = stages
            .iter()
            .filter(|(_, index, _)| *index < position.stage_index || (closed && *index == position.stage_index))
            .map(|(node, _, _)| *node)
            .collect();
        // A stage's forgetting measure belongs to it: done when the stage is (its point is on disk).
        let mut completed: Vec<NodeIndex> = completed;
        for node in graph.order() {
            if let Step::MeasureForgetting { index, .. } = &graph.graph[node] {
                if *index < position.stage_index || (closed && *index == position.stage_index) {
                    completed.push(node);
                }
            }
        }
        let next_index = if closed { position.stage_index + 1 } else { position.stage_index };
        let next_stage = stages.iter().find(|(_, index, _)| *index == next_index).map(|(node, _, _)| *node);
        Ok(ResumePoint { checkpoint, position, completed, next_stage, within: !closed })
    }
}
