//! What a run reads and writes around its instructions: the options and outcome of a run, the
//! run folder made lazily with the recipe files first, the hooks that checkpoint and write
//! metrics between steps, a checkpoint restored, and the result files, report and forgetting
//! curve. Shared by the entry points (`runner.rs`) and the interpreter, and below both.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use burn::module::Module;
use burn::prelude::*;

use super::checkpoint;
use super::ema::WeightAverage;
use super::model::Network;
use super::param_snapshot::{relative_change, snapshot};
use super::predictor::Predictor;
use super::resume_point::ResumePoint;
use super::run_folder::RunFolder;
use super::trainer::{EpochMetrics, Evaluation, Position, Snapshot, StageHooks, StageResume, Stop, Trainer, TrainingData};
use super::weights::{self, LoadScope};
use crate::arch::LayerKind;
use crate::check::recipe::Recipe;
use crate::data::InputFiles;
use crate::diagnostics::{Code, Diagnostic};
use crate::model_card::{MODEL_CARD, ModelCard};
use crate::prediction_file::PredictionWriter;
use crate::run_files::{self, Filters, Summary};
use crate::zoo::Zoo;

pub struct RunOptions {
    pub device: String,
    /// Set by Ctrl-C: finish the step, checkpoint, stop.
    pub interrupt: Option<std::sync::Arc<AtomicBool>>,
    pub out: Option<PathBuf>,
    pub zoo: Zoo,
    /// Where `runs/` goes when `out` is not given.
    pub runs_root: PathBuf,
}

pub struct RunOutcome {
    pub folder: PathBuf,
    pub classes: Vec<String>,
    pub metrics: Vec<EpochMetrics>,
    pub evaluation: Evaluation,
    /// Every `export` written, in the recipe's order.
    pub exported: Vec<PathBuf>,
    /// Notes for the user: skipped images, unused weight keys.
    pub notes: Vec<String>,
}

/// A run that failed after its folder existed: the diagnostic, and where the last good weights are.
pub struct RunFailure {
    pub diagnostic: Diagnostic,
    pub folder: Option<PathBuf>,
}

impl From<Diagnostic> for RunFailure {
    fn from(diagnostic: Diagnostic) -> Self {
        RunFailure { diagnostic, folder: None }
    }
}

/// The first convolution: its filters show what transfer keeps (colour blobs, edges).
const FIRST_FILTERS: &str = "backbone.conv1.weight";

fn first_filters_shape(recipe: &Recipe) -> Vec<usize> {
    match recipe.backbone.architecture.layers.first().map(|layer| &layer.kind) {
        Some(LayerKind::Conv { out_channels, kernel, .. }) => {
            vec![*out_channels as usize, recipe.input_channels() as usize, *kernel as usize, *kernel as usize]
        }
        _ => Vec::new(),
    }
}

/// Where a run started from, so `tlrun resume RUN_DIR` finds the recipe's folder (data paths are
/// relative to it) and can tell whether the recipe changed since.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Origin {
    pub recipe_path: PathBuf,
}

pub use crate::run_files::ORIGIN;

/// Writes checkpoints and metrics between steps, and stops cleanly on Ctrl-C.
pub(super) struct RunHooks<'a> {
    pub(super) recipe: &'a Recipe,
    pub(super) folder: &'a RunFolder,
    pub(super) metrics: Vec<EpochMetrics>,
    pub(super) interrupt: Option<&'a AtomicBool>,
}

impl RunHooks<'_> {
    fn interrupted(&self) -> bool {
        self.interrupt.is_some_and(|flag| flag.load(Ordering::SeqCst))
    }
}

impl StageHooks for RunHooks<'_> {
    fn after_step(&mut self, position: &Position, snapshot: Snapshot<'_>) -> Result<(), Stop> {
        let due = self.recipe.checkpoint_every.is_some_and(|every| position.global_step % every as usize == 0);
        let interrupted = self.interrupted();
        if due || interrupted {
            checkpoint::write(&self.folder.path, position, snapshot).map_err(Stop::Failed)?;
        }
        if interrupted { Err(Stop::Interrupted) } else { Ok(()) }
    }

    fn after_epoch(&mut self, epoch: &EpochMetrics, next: &Position, snapshot: Snapshot<'_>) -> Result<(), Stop> {
        self.metrics.push(epoch.clone());
        let valid = if epoch.valid_loss.is_finite() {
            format!("valid loss {:.4}  accuracy {:.1}%", epoch.valid_loss, epoch.valid_accuracy * 100.0)
        } else {
            "not evaluated (valid every …)".to_string()
        };
        eprintln!(
            "{} epoch {}/{} @{}px  train loss {:.4}  {valid}  {:.0} img/s",
            epoch.stage,
            epoch.epoch,
            self.recipe.stages[epoch.stage_index].epochs,
            epoch.size,
            epoch.train_loss,
            epoch.train_images_per_second
        );
        // Metrics first, then the checkpoint that points past them: a crash in between re-runs
        // nothing and loses nothing.
        write_metrics(self.folder, &self.metrics).map_err(Stop::Failed)?;
        checkpoint::write(&self.folder.path, next, snapshot).map_err(Stop::Failed)?;
        if epoch.stopped_early {
            eprintln!("{} stopped early after epoch {}: no improvement", epoch.stage, epoch.epoch);
        }
        if self.interrupted() { Err(Stop::Interrupted) } else { Ok(()) }
    }
}

impl RunHooks<'_> {
    /// `keep best`: mark the epoch whose weights the stage ended with, and say so.
    pub(super) fn mark_restored(&mut self, stage_index: usize, epoch: u32) -> Result<(), Diagnostic> {
        if let Some(metrics) = self.metrics.iter_mut().find(|metrics| metrics.stage_index == stage_index && metrics.epoch == epoch) {
            metrics.restored = true;
            eprintln!(
                "{}: kept epoch {} (valid loss {:.4}, accuracy {:.1}%)",
                metrics.stage,
                epoch,
                metrics.valid_loss,
                metrics.valid_accuracy * 100.0
            );
        }
        write_metrics(self.folder, &self.metrics)
    }
}

/// The run folder, made when the first step that writes into it runs (so a missing data folder
/// leaves no empty run behind), with the recipe and its resolved form written first.
pub(super) struct LazyFolder<'a> {
    pub(super) path: PathBuf,
    pub(super) folder: Option<RunFolder>,
    recipe: &'a Recipe,
    recipe_path: &'a Path,
    source: &'a str,
    /// A fresh run writes the recipe files; a resumed one finds them there.
    pub(super) fresh: bool,
}

impl<'a> LazyFolder<'a> {
    /// Not made yet: the first step that writes into it makes it.
    pub(super) fn new(path: PathBuf, recipe: &'a Recipe, recipe_path: &'a Path, source: &'a str, fresh: bool) -> Self {
        LazyFolder { path, folder: None, recipe, recipe_path, source, fresh }
    }

    pub(super) fn get(&mut self) -> Result<&RunFolder, Diagnostic> {
        if self.folder.is_none() {
            let folder = RunFolder::create(self.path.clone())?;
            if self.fresh {
                folder.write(run_files::RECIPE, self.source.as_bytes())?;
                folder.write(run_files::RESOLVED, to_json(self.recipe, run_files::RESOLVED)?.as_bytes())?;
                folder.write(run_files::PLAN, crate::plan::render_stage_tables(self.recipe).as_bytes())?;
                let recipe_path = std::fs::canonicalize(self.recipe_path).unwrap_or_else(|_| self.recipe_path.to_path_buf());
                folder.write(ORIGIN, to_json(&Origin { recipe_path }, ORIGIN)?.as_bytes())?;
            }
            self.folder = Some(folder);
        }
        Ok(self.folder.as_ref().expect("made just above"))
    }
}

/// Pretty JSON of a run file; a value that cannot be written is a diagnostic, never an empty file.
pub(super) fn to_json<T: serde::Serialize>(value: &T, file: &str) -> Result<String, Diagnostic> {
    serde_json::to_string_pretty(value)
        .map_err(|error| Diagnostic::new(Code::RunFolderUnwritable, format!("cannot encode {file}: {error}")))
}

pub(super) fn internal(message: &str) -> Diagnostic {
    Diagnostic::new(Code::StepFailed, format!("internal error: {message}")).with_help("please report this with the recipe")
}

pub(super) fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// A `predict … into` step: the final network on the images under `input`, as `tlrun predict`
/// applies it, into `output`. Unreadable images are listed after every other prediction is
/// written; under `corrupt fail` (the default) they fail the step, naming every one.
pub(super) fn predict_step(recipe: &Recipe, network: &Network, classes: &[String], input: &Path, output: &Path, device: &Device) -> Result<String, Diagnostic> {
    let predictor = Predictor::new(ModelCard::of(recipe, classes), network.valid(), device.clone().without_autodiff());
    predict_with(recipe, &predictor, input, output)
}

pub(super) fn predict_with(recipe: &Recipe, predictor: &Predictor, input: &Path, output: &Path) -> Result<String, Diagnostic> {
    let classes = &predictor.card.classes;
    let inputs = InputFiles::gather(&[input.to_path_buf()], classes)?;
    let mut writer = PredictionWriter::open(Some(output), 1, inputs.truth.is_some())?;
    let summary = predictor.predict_all(&inputs, &mut writer, true)?;
    writer.finish()?;
    let accuracy = summary.correct_of().map_or(String::new(), |(correct, labelled)| {
        format!(", accuracy {:.2}% ({correct}/{labelled})", 100.0 * f64::from(correct) / f64::from(labelled.max(1)))
    });
    let note = format!("predicted {} image(s) of {} into {}{accuracy}", summary.predicted, input.display(), output.display());
    if summary.bad.is_empty() {
        return Ok(note);
    }
    let listed: Vec<String> = summary.bad.iter().map(|(path, reason)| format!("  {}: {reason}", path.display())).collect();
    if recipe.data.corrupt == crate::check::recipe::CorruptPolicy::Skip {
        return Ok(format!("{note}; {} image(s) could not be read:\n{}", summary.bad.len(), listed.join("\n")));
    }
    Err(Diagnostic::new(Code::CorruptImage, format!("{note}, but {} image(s) could not be read:\n{}", summary.bad.len(), listed.join("\n")))
        .with_help("every other prediction is written; delete or replace these files, or write `corrupt skip` in the data block"))
}

/// The network and trainer state the checkpoint at `point` holds, and, when it stopped inside a
/// stage, where (with that stage's optimizer state).
pub(super) fn restore_checkpoint(recipe: &Recipe, point: &ResumePoint, initial: Network, trainer: &mut Trainer<'_>) -> Result<(Network, Option<StageResume>), Diagnostic> {
    let stage = &recipe.stages[point.position.stage_index];
    let mut stage_optimizer = super::optimizer::build(&stage.optimizer);
    let loaded = checkpoint::load(&point.checkpoint, initial, stage_optimizer.optimizer)?;
    stage_optimizer.optimizer = loaded.optimizer;
    trainer.restore_rates(loaded.rates);
    if let (Some((average, updates)), Some(decay)) = (loaded.average, recipe.ema) {
        trainer.average = Some(WeightAverage::resume(average, decay, updates));
    }
    let position = loaded.position;
    eprintln!("resuming at stage `{}`, epoch {}, batch {}", stage.name, position.epoch, position.next_batch + 1);
    if point.within {
        Ok((loaded.network, Some(StageResume { position, optimizer: stage_optimizer, best: loaded.best })))
    } else {
        // The checkpoint closed its stage: the next one starts afresh.
        trainer.global_step = position.global_step;
        trainer.global_epoch = position.global_epoch - 1;
        Ok((loaded.network, None))
    }
}

/// The run folder's result files: rates, weight movement, evaluation, weights, first filters, summary.
#[allow(clippy::too_many_arguments)]
pub(super) fn write_results(
    recipe: &Recipe,
    folder: &RunFolder,
    before: &std::collections::BTreeMap<String, Vec<f32>>,
    network: &Network,
    evaluation: &Evaluation,
    trainer: &Trainer<'_>,
    data: &TrainingData,
    seconds: f64,
) -> Result<(), Diagnostic> {
    let after = snapshot(network);
    let movement = relative_change(before, &after);
    folder.write(run_files::LR_STEPS, run_files::json_lines(&trainer.step_rates).as_bytes())?;
    folder.write(run_files::MOVEMENT, to_json(&movement, run_files::MOVEMENT)?.as_bytes())?;
    folder.write(run_files::EVALUATION, to_json(evaluation, run_files::EVALUATION)?.as_bytes())?;
    weights::save(network, &folder.file(run_files::WEIGHTS))?;
    folder.write(MODEL_CARD, ModelCard::of(recipe, &data.classes).to_json()?.as_bytes())?;
    if let (Some(before), Some(after)) = (before.get(FIRST_FILTERS), after.get(FIRST_FILTERS)) {
        let filters = Filters { shape: first_filters_shape(recipe), before: before.clone(), after: after.clone() };
        let encoded = serde_json::to_string(&filters)
            .map_err(|error| Diagnostic::new(Code::RunFolderUnwritable, format!("cannot encode {}: {error}", run_files::FILTERS)))?;
        folder.write(run_files::FILTERS, encoded.as_bytes())?;
    }
    let summary = Summary {
        recipe: recipe.name.clone(),
        classes: data.classes.clone(),
        final_valid_accuracy: evaluation.accuracy,
        final_valid_loss: evaluation.loss,
        epochs: trainer.global_epoch,
        seconds,
        threads: rayon::current_num_threads(),
    };
    folder.write(run_files::SUMMARY, to_json(&summary, run_files::SUMMARY)?.as_bytes())
}

/// A network of this recipe holding the weights of a saved file (the run's initial weights).
pub(super) fn weights_of(recipe: &Recipe, classes: usize, device: &Device, path: &Path) -> Result<Network, Diagnostic> {
    let mut network = Network::new(recipe, classes, device);
    weights::load(&mut network, path, LoadScope::Network)?;
    Ok(network)
}

/// report.html and its plots; a report that cannot be drawn is a note, never a failed run.
pub(super) fn write_report(folder: &Path, notes: &mut Vec<String>) {
    let written = crate::report::RunData::load(folder).and_then(|run| crate::report::write_report(&run));
    if let Err(diagnostic) = written {
        notes.push(format!("no report: {}", diagnostic.message));
    }
}

pub(super) fn write_forgetting(folder: &RunFolder, points: &[run_files::ForgettingPoint]) -> Result<(), Diagnostic> {
    folder.write(run_files::FORGETTING, run_files::json_lines(points).as_bytes())
}

pub(super) fn write_metrics(folder: &RunFolder, metrics: &[EpochMetrics]) -> Result<(), Diagnostic> {
    folder.write(run_files::METRICS, run_files::json_lines(metrics).as_bytes())
}

pub(super) fn preview(keys: &[String]) -> String {
    let shown: Vec<&str> = keys.iter().take(5).map(String::as_str).collect();
    if keys.len() > 5 { format!("{}, …", shown.join(", ")) } else { shown.join(", ") }
}
