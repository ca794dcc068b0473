//! Runs one checked recipe end to end and fills its run folder.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::prelude::*;

use super::dataset;
use super::device::parse_device;
use super::model::Network;
use super::param_snapshot::{relative_change, snapshot};
use super::run_folder::RunFolder;
use std::sync::atomic::{AtomicBool, Ordering};


use super::checkpoint;
use super::resume_point::{ResumePoint, Start};
use super::ema::WeightAverage;
use super::model::Backbone;
use super::starting_network::{attach_head, build_backbone, load_pretrained, pretrained_weights};
use super::trainer::{EpochMetrics, Evaluation, Position, Snapshot, StageHooks, StageResume, Stop, Trainer, TrainingData};
use super::weights::{self, LoadScope};
use crate::arch::LayerKind;
use crate::check::Runnable;
use crate::check::recipe::Recipe;
use crate::plan::Step;
use crate::run_files::{self, Filters, StepRecord, Summary};
use crate::diagnostics::{Code, Diagnostic};
use crate::model_card::{MODEL_CARD, ModelCard};
use crate::prediction_file::PredictionWriter;
use crate::data::InputFiles;
use super::predictor::Predictor;
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
use crate::run_files::INITIAL_WEIGHTS;

/// Start a fresh run. Only a recipe that checked without errors gets here (`Runnable`).
pub fn run(recipe: &Runnable, recipe_path: &Path, source: &str, options: &RunOptions) -> Result<RunOutcome, RunFailure> {
    let folder_path = options.out.clone().unwrap_or_else(|| RunFolder::default_path(&options.runs_root, &recipe.name));
    execute(recipe, recipe_path, source, options, folder_path, Start::Fresh)
}

/// Continue the run in `folder` from its newest checkpoint. The recipe must be the one it started
/// with; `recipe_path` is where that recipe lives (data paths are relative to it).
pub fn resume(recipe: &Runnable, recipe_path: &Path, source: &str, options: &RunOptions, folder: &Path) -> Result<RunOutcome, RunFailure> {
    let point = ResumePoint::find(folder, &crate::plan::build_graph(recipe))?;
    execute(recipe, recipe_path, source, options, folder.to_path_buf(), Start::Resume(point))
}

/// Writes checkpoints and metrics between steps, and stops cleanly on Ctrl-C.
struct RunHooks<'a> {
    recipe: &'a Recipe,
    folder: &'a RunFolder,
    metrics: Vec<EpochMetrics>,
    interrupt: Option<&'a AtomicBool>,
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
    fn mark_restored(&mut self, stage_index: usize, epoch: u32) -> Result<(), Diagnostic> {
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
struct LazyFolder<'a> {
    path: PathBuf,
    folder: Option<RunFolder>,
    recipe: &'a Recipe,
    recipe_path: &'a Path,
    source: &'a str,
    /// A fresh run writes the recipe files; a resumed one finds them there.
    fresh: bool,
}

impl LazyFolder<'_> {
    fn get(&mut self) -> Result<&RunFolder, Diagnostic> {
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
fn to_json<T: serde::Serialize>(value: &T, file: &str) -> Result<String, Diagnostic> {
    serde_json::to_string_pretty(value)
        .map_err(|error| Diagnostic::new(Code::RunFolderUnwritable, format!("cannot encode {file}: {error}")))
}

fn internal(message: &str) -> Diagnostic {
    Diagnostic::new(Code::StepFailed, format!("internal error: {message}")).with_help("please report this with the recipe")
}

fn now() -> f64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// The interpreter: walks the recipe's step graph (`plan::build_graph`, the graph `tlrun graph`
/// draws) in topological order and runs one handler per kind of step. Each executed node is
/// appended to steps.jsonl with its graph id. A resumed run starts at its `ResumePoint`: it
/// re-runs the cheap steps (data, network), takes the run's initial weights instead of the
/// pretrained ones, restores the checkpoint once the head is attached, skips the stage nodes the
/// checkpoint completed and continues the next one from inside when the checkpoint was there.
fn execute(recipe: &Recipe, recipe_path: &Path, source: &str, options: &RunOptions, folder_path: PathBuf, start: Start) -> Result<RunOutcome, RunFailure> {
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let device = parse_device(&options.device)?.autodiff();
    let graph = crate::plan::build_graph(recipe);
    let mut folder = LazyFolder { path: folder_path, folder: None, recipe, recipe_path, source, fresh: !start.is_resume() };
    // Errors once the run folder exists point at it (the last good weights are there).
    let created = folder.path.clone();
    let fail = |diagnostic: Diagnostic| RunFailure { diagnostic, folder: Some(created.clone()) };
    let mut notes = Vec::new();
    let mut steps: Vec<StepRecord> =
        if start.is_resume() { run_files::read_json_lines_to_resume(&folder.path.join(run_files::STEPS)).map_err(fail)? } else { Vec::new() };
    let started = std::time::Instant::now();

    // What the steps build up, in the order the graph allows.
    let data: std::cell::OnceCell<TrainingData> = std::cell::OnceCell::new();
    let mut trainer: Option<Trainer<'_>> = None;
    let mut backbone: Option<Backbone> = None;
    let mut network: Option<Network> = None;
    let mut before = std::collections::BTreeMap::new();
    let mut hooks_metrics: Vec<EpochMetrics> = Vec::new();
    // Resuming: the checkpoint's place inside the stage that continues from it, once restored.
    let mut within_stage: Option<StageResume> = None;
    let mut evaluation: Option<Evaluation> = None;
    // Forgetting: the frozen probe on the source images, and the curve so far.
    let mut forgetting: Option<super::forgetting::ForgettingProbe> = None;
    let mut forgetting_points: Vec<run_files::ForgettingPoint> = Vec::new();
    // Resuming with a forgetting source: the run's initial network, which the probe is fitted on.
    let mut initial_network: Option<Network> = None;
    let mut exported = Vec::new();

    // Where the pretrained weights are, resolved once (for `from recipe` that reads the other recipe).
    let pretrained = pretrained_weights(recipe, &base, &options.zoo)?;
    for node in graph.order() {
        let step = &graph.graph[node];
        let step_started = now();
        let mut executed = true;
        match step {
            Step::Upstream { path } => {
                if let Some(file) = pretrained.as_ref().filter(|file| !file.is_file()) {
                    return Err(Diagnostic::new(Code::MissingRecipeInput, format!("{path} has not exported {} yet", file.display()))
                        .with_help(format!("run {path} first (`tlrun run` on the folder runs it first)"))
                        .into());
                }
            }
            Step::LoadData { .. } => {
                let loaded = dataset::load(recipe, &base)?;
                for (path, reason) in &loaded.skipped {
                    notes.push(format!("skipped {}: {reason}", path.display()));
                }
                data.set(loaded.data).map_err(|_| internal("the data was loaded twice"))?;
            }
            Step::BuildBackbone { .. } => backbone = Some(build_backbone(recipe, &device)),
            Step::LoadWeights { .. } => {
                let cut = backbone.take().ok_or_else(|| internal("weights before the backbone"))?;
                // Resuming: the run's own initial weights replace these once the head is attached.
                let path = if start.is_resume() { None } else { pretrained.clone() };
                executed = !start.is_resume();
                let (loaded, report) = load_pretrained(recipe, cut, path.as_deref())?;
                if let (Some(report), Some(path)) = (report, &path) {
                    if !report.unused.is_empty() {
                        notes.push(format!("{} key(s) of {} unused (layers the cut removed): {}", report.unused.len(), path.display(), preview(&report.unused)));
                    }
                }
                backbone = Some(loaded);
            }
            Step::Cut { kept, .. } => {
                let whole = backbone.take().ok_or_else(|| internal("a cut before the backbone"))?;
                backbone = Some(whole.cut(*kept));
            }
            Step::AttachHead { .. } => {
                let classes = data.get().ok_or_else(|| internal("a head before the data"))?.classes.len();
                let body = backbone.take().ok_or_else(|| internal("a head before the backbone"))?;
                let mut attached = attach_head(recipe, body, classes, &device);
                let run_folder = folder.get()?;
                match &start {
                    Start::Resume(_) => {
                        attached = weights_of(recipe, classes, &device, &run_folder.file(INITIAL_WEIGHTS)).map_err(fail)?;
                        hooks_metrics = run_files::read_json_lines_to_resume(&run_folder.file(run_files::METRICS)).map_err(fail)?;
                    }
                    Start::Fresh => weights::save(&attached, &run_folder.file(INITIAL_WEIGHTS)).map_err(fail)?,
                }
                if let Err(empty) = super::param_groups::ParameterGroups::select(&attached, recipe) {
                    return Err(fail(internal(&format!("group(s) {} select no parameter of the network", empty.join(", ")))));
                }
                before = snapshot(&attached);
                if let Start::Resume(point) = &start {
                    if recipe.forgetting_source().is_some() || recipe.backbone.is_pretrained() {
                        initial_network = Some(attached.clone());
                        forgetting_points = run_files::read_json_lines_to_resume(&run_folder.file(run_files::FORGETTING)).map_err(fail)?;
                    }
                    let loaded = data.get().ok_or_else(|| internal("a head before the data"))?;
                    let active = trainer.get_or_insert_with(|| Trainer::new(recipe, device.clone(), loaded));
                    let (restored, inside) = restore_checkpoint(recipe, point, attached, active).map_err(fail)?;
                    attached = restored;
                    within_stage = inside;
                }
                network = Some(attached);
            }
            Step::Resize { size } => {
                let loaded = data.get().ok_or_else(|| internal("resizing before the data"))?;
                trainer.get_or_insert_with(|| Trainer::new(recipe, device.clone(), loaded)).prepare_size(*size);
            }
            Step::Stage { index, .. } => {
                let loaded = data.get().ok_or_else(|| internal("a stage before the data"))?;
                let active = trainer.get_or_insert_with(|| Trainer::new(recipe, device.clone(), loaded));
                let current = network.take().ok_or_else(|| internal("a stage before the network"))?;
                let run_folder = folder.get()?;
                let resume_point = match &start {
                    Start::Resume(point) => Some(point),
                    Start::Fresh => None,
                };
                if resume_point.is_some_and(|point| point.completed.contains(&node)) {
                    // Closed by the checkpoint: its work is in the restored network.
                    network = Some(current);
                    executed = false;
                } else {
                    let resume_here = if resume_point.is_some_and(|point| point.next_stage == Some(node)) { within_stage.take() } else { None };
                    let mut hooks = RunHooks { recipe, folder: run_folder, metrics: std::mem::take(&mut hooks_metrics), interrupt: options.interrupt.as_deref() };
                    let outcome = active.run_stage(current, *index, resume_here, &mut hooks);
                    match outcome {
                        Ok(outcome) => {
                            if let Some(epoch) = outcome.restored_epoch {
                                hooks.mark_restored(*index, epoch).map_err(fail)?;
                            }
                            hooks_metrics = hooks.metrics;
                            network = Some(outcome.network);
                        }
                        Err(stage_failure) => {
                            // Keep the last good weights, and report what ran, before giving the error.
                            let saved = weights::save(&stage_failure.network, &run_folder.file(run_files::WEIGHTS));
                            write_report(&run_folder.path, &mut Vec::new());
                            let mut diagnostic = match stage_failure.stop {
                                Stop::Failed(diagnostic) => diagnostic,
                                Stop::Interrupted => Diagnostic::new(Code::Interrupted, "interrupted: a checkpoint was written after the last step")
                                    .with_help(format!("resume with `tlrun resume {}`", run_folder.path.display())),
                            };
                            // A failed save is said, never swallowed: the user must not look for weights that are not there.
                            if let Err(unsaved) = saved {
                                diagnostic.message = format!("{}; the last good weights could not be saved either: {}", diagnostic.message, unsaved.message);
                            }
                            return Err(fail(diagnostic));
                        }
                    }
                }
            }
            Step::MeasureShift => {
                let current = network.as_ref().ok_or_else(|| internal("measuring the shift before the network"))?;
                let loaded = data.get().ok_or_else(|| internal("measuring the shift before the data"))?;
                let pretrained_network = initial_network.as_ref().unwrap_or(current);
                let domain = super::probe::run_start_shift(recipe, pretrained_network, loaded, &options.zoo, &device, &mut notes);
                for line in domain.advice() {
                    eprintln!("note: {line}");
                    notes.push(line);
                }
                folder.get()?.write(run_files::SHIFT, to_json(&domain, run_files::SHIFT)?.as_bytes()).map_err(fail)?;
            }
            Step::SourceBaseline { .. } => {
                let current = network.as_ref().ok_or_else(|| internal("a source baseline before the network"))?;
                let pretrained_network = initial_network.clone().unwrap_or_else(|| current.clone());
                let (probe, point) = super::forgetting::ForgettingProbe::fit(recipe, &pretrained_network, &base, &device).map_err(fail)?;
                eprintln!("forgetting: source accuracy {:.1}% before training (linear probe on `{}`)", point.source_accuracy * 100.0, point.layer);
                forgetting_points.retain(|known| known.stage != point.stage);
                forgetting_points.insert(0, point);
                forgetting = Some(probe);
                write_forgetting(folder.get()?, &forgetting_points).map_err(fail)?;
            }
            Step::MeasureForgetting { index, name } => {
                if let Start::Resume(point) = &start {
                    if point.completed.contains(&node) {
                        continue;
                    }
                }
                let current = network.as_ref().ok_or_else(|| internal("measuring forgetting before the network"))?;
                let probe = forgetting.as_ref().ok_or_else(|| internal("measuring forgetting before the baseline"))?;
                let target = hooks_metrics.iter().rev().find(|metrics| metrics.stage_index == *index && metrics.valid_accuracy.is_finite()).map(|metrics| metrics.valid_accuracy);
                let point = probe.measure(recipe, current, name, target, &device);
                eprintln!("forgetting: source accuracy {:.1}% after stage `{name}`", point.source_accuracy * 100.0);
                forgetting_points.retain(|known| known.stage != point.stage);
                forgetting_points.push(point);
                write_forgetting(folder.get()?, &forgetting_points).map_err(fail)?;
            }
            Step::Evaluate { size, tta } => {
                let loaded = data.get().ok_or_else(|| internal("evaluating before the data"))?;
                let active = trainer.get_or_insert_with(|| Trainer::new(recipe, device.clone(), loaded));
                let trained = network.take().ok_or_else(|| internal("evaluating before the network"))?;
                // Under `ema` the averaged weights are what is evaluated, exported and published.
                let final_network = active.evaluated(&trained);
                let (result, scored) = active.evaluate_images(&final_network, *size, *tta);
                let run_folder = folder.get()?;
                write_results(recipe, run_folder, &before, &final_network, &result, active, loaded, started.elapsed().as_secs_f64())
                    .map_err(fail)?;
                super::top_losses::write(run_folder, &scored, &loaded.valid.images, &loaded.classes).map_err(fail)?;
                network = Some(final_network);
                evaluation = Some(result);
            }
            Step::Export { path } => {
                let trained = network.as_ref().ok_or_else(|| internal("exporting before the network"))?;
                let classes = &data.get().ok_or_else(|| internal("exporting before the data"))?.classes;
                let target = base.join(path);
                super::export::export(trained, &ModelCard::of(recipe, classes), &target, false).map_err(fail)?;
                exported.push(target);
            }
            Step::Publish { entry } => {
                let trained = network.as_ref().ok_or_else(|| internal("publishing before the network"))?;
                let loaded = data.get().ok_or_else(|| internal("publishing before the data"))?;
                let card = super::publish::publish(trained, recipe, loaded, &base, &device, &options.zoo, entry).map_err(fail)?;
                notes.push(format!("published zoo entry `{}` ({} px, sha256 {})", card.name, card.input_size, &card.sha256[..12]));
            }
            Step::Predict { input, output } => {
                let trained = network.as_ref().ok_or_else(|| internal("predicting before the network"))?;
                let classes = &data.get().ok_or_else(|| internal("predicting before the data"))?.classes;
                notes.push(predict_step(recipe, trained, classes, &base.join(input), &base.join(output), &device).map_err(fail)?);
            }
        }
        if executed {
            steps.push(StepRecord { node: node.index(), step: step.label(), started: step_started, seconds: now() - step_started });
            if let Some(run_folder) = &folder.folder {
                run_folder.write(run_files::STEPS, run_files::json_lines(&steps).as_bytes()).map_err(fail)?;
            }
        }
    }
    let run_folder = folder.get()?;
    run_folder.write(run_files::STEPS, run_files::json_lines(&steps).as_bytes()).map_err(fail)?;
    write_report(&run_folder.path, &mut notes);
    let evaluation = evaluation.ok_or_else(|| internal("the graph has no evaluation"))?;
    let classes = data.get().ok_or_else(|| internal("an evaluation without data"))?.classes.clone();
    Ok(RunOutcome { folder: run_folder.path.clone(), classes, metrics: hooks_metrics, evaluation, exported, notes })
}

/// A `predict … into` step: the final network on the images under `input`, as `tlrun predict`
/// applies it, into `output`. Unreadable images are listed after every other prediction is
/// written; under `corrupt fail` (the default) they fail the step, naming every one.
fn predict_step(recipe: &Recipe, network: &Network, classes: &[String], input: &Path, output: &Path, device: &Device) -> Result<String, Diagnostic> {
    let predictor = Predictor::new(ModelCard::of(recipe, classes), network.valid(), device.clone().without_autodiff());
    predict_with(recipe, &predictor, input, output)
}

/// The `predict` steps alone, with the model a finished run left in `run_folder`: what `tlrun run`
/// does when the training is up to date but a folder to predict changed. One note per step.
pub fn predict_only(recipe: &Runnable, recipe_path: &Path, run_folder: &Path, device: &str) -> Result<Vec<String>, Diagnostic> {
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let card = ModelCard::read(&run_folder.join(MODEL_CARD))?;
    let predictor = Predictor::load(card, &run_folder.join(run_files::WEIGHTS), device)?;
    recipe.predictions.iter().map(|prediction| predict_with(recipe, &predictor, &base.join(&prediction.input), &base.join(&prediction.output))).collect()
}

fn predict_with(recipe: &Recipe, predictor: &Predictor, input: &Path, output: &Path) -> Result<String, Diagnostic> {
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
fn restore_checkpoint(recipe: &Recipe, point: &ResumePoint, initial: Network, trainer: &mut Trainer<'_>) -> Result<(Network, Option<StageResume>), Diagnostic> {
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
fn write_results(
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
fn weights_of(recipe: &Recipe, classes: usize, device: &Device, path: &Path) -> Result<Network, Diagnostic> {
    let mut network = Network::new(recipe, classes, device);
    weights::load(&mut network, path, LoadScope::Network)?;
    Ok(network)
}

/// report.html and its plots; a report that cannot be drawn is a note, never a failed run.
fn write_report(folder: &Path, notes: &mut Vec<String>) {
    let written = crate::report::RunData::load(folder).and_then(|run| crate::report::write_report(&run));
    if let Err(diagnostic) = written {
        notes.push(format!("no report: {}", diagnostic.message));
    }
}

fn write_forgetting(folder: &RunFolder, points: &[run_files::ForgettingPoint]) -> Result<(), Diagnostic> {
    folder.write(run_files::FORGETTING, run_files::json_lines(points).as_bytes())
}

fn write_metrics(folder: &RunFolder, metrics: &[EpochMetrics]) -> Result<(), Diagnostic> {
    folder.write(run_files::METRICS, run_files::json_lines(metrics).as_bytes())
}

fn preview(keys: &[String]) -> String {
    let shown: Vec<&str> = keys.iter().take(5).map(String::as_str).collect();
    if keys.len() > 5 { format!("{}, …", shown.join(", ")) } else { shown.join(", ") }
}
