//! Runs one checked recipe end to end and fills its run folder: the entry points. A run is its
//! step graph compiled into a program (`program.rs`) and interpreted (`interpreter.rs`); what it
//! reads and writes around that is in `run_io.rs`.

use std::path::{Path, PathBuf};

use super::device::parse_device;
use super::predictor::Predictor;
use super::resume_point::{ResumePoint, Start};
use super::run_folder::RunFolder;
use super::run_io::{LazyFolder, predict_with};
pub use super::run_io::{ORIGIN, Origin, RunFailure, RunOptions, RunOutcome};
use crate::check::Runnable;
use crate::check::recipe::Recipe;
use crate::diagnostics::Diagnostic;
use crate::model_card::{MODEL_CARD, ModelCard};
use crate::run_files;

/// Start a fresh run. Only a recipe that checked without errors gets here (`Runnable`);
/// `pretrained`: the weights file it starts from, resolved by the caller (a `from recipe`
/// through that recipe's export).
pub fn run(recipe: &Runnable, recipe_path: &Path, source: &str, pretrained: Option<&Path>, options: &RunOptions) -> Result<RunOutcome, RunFailure> {
    let folder_path = options.out.clone().unwrap_or_else(|| RunFolder::default_path(&options.runs_root, &recipe.name));
    execute(recipe, recipe_path, source, pretrained, options, folder_path, Start::Fresh)
}

/// Continue the run in `folder` from its newest checkpoint. The recipe must be the one it started
/// with; `recipe_path` is where that recipe lives (data paths are relative to it).
pub fn resume(recipe: &Runnable, recipe_path: &Path, source: &str, pretrained: Option<&Path>, options: &RunOptions, folder: &Path) -> Result<RunOutcome, RunFailure> {
    let point = ResumePoint::find(folder, &crate::plan::build_graph(recipe))?;
    execute(recipe, recipe_path, source, pretrained, options, folder.to_path_buf(), Start::Resume(point))
}

/// Compiles the recipe's step graph into a program (`program.rs`: operands resolved, a resume
/// rewritten from its checkpoint) and runs it (`interpreter.rs`).
fn execute(recipe: &Recipe, recipe_path: &Path, source: &str, pretrained: Option<&Path>, options: &RunOptions, folder_path: PathBuf, start: Start) -> Result<RunOutcome, RunFailure> {
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let device = parse_device(&options.device)?.autodiff();
    let graph = crate::plan::build_graph(recipe);
    let program = super::program::compile(&graph, recipe, &base, pretrained, &start);
    let folder = LazyFolder::new(folder_path, recipe, recipe_path, source, !start.is_resume());
    super::interpreter::execute(recipe, options, base, device, folder, &program)
}

/// The `predict` steps alone, with the model a finished run left in `run_folder`: what `tlrun run`
/// does when the training is up to date but a folder to predict changed. One note per step.
pub fn predict_only(recipe: &Runnable, recipe_path: &Path, run_folder: &Path, device: &str) -> Result<Vec<String>, Diagnostic> {
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let card = ModelCard::read(&run_folder.join(MODEL_CARD))?;
    let predictor = Predictor::load(card, &run_folder.join(run_files::WEIGHTS), device)?;
    recipe.predictions.iter().map(|prediction| predict_with(recipe, &predictor, &base.join(&prediction.input), &base.join(&prediction.output))).collect()
}
