//! Runs one checked recipe end to end and fills its run folder.

use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

use super::dataset;
use super::device::parse_device;
use super::model::Network;
use super::param_snapshot::{relative_change, snapshot};
use super::run_folder::RunFolder;
use std::sync::atomic::{AtomicBool, Ordering};


use super::checkpoint;
use super::ema::WeightAverage;
use super::trainer::{EpochMetrics, Evaluation, Position, Snapshot, StageHooks, StageResume, Stop, Trainer};
use super::weights::{self, LoadScope};
use crate::arch::LayerKind;
use crate::check::recipe::{Recipe, Weights};
use crate::run_files::{self, Filters, Summary};
use crate::diagnostics::{Code, Diagnostic};
use crate::zoo::{WEIGHTS_FILE, Zoo};

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
    pub exported: Option<PathBuf>,
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

/// Parameters are created lazily on first use; touch them all in a fixed order right after the
/// seed so that the same seed always gives the same initial weights.
pub fn materialize(network: &Network) {
    struct Touch;
    impl ModuleVisitor for Touch {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            let _ = param.val();
        }
    }
    network.visit(&mut Touch);
}

/// The network a run starts from: seeded random weights, then the pretrained backbone when there
/// is one. Under `channels 1 adapt` the colour weights go into a 3-channel first convolution whose
/// filters are then summed to take one channel.
pub fn starting_network(
    recipe: &Recipe,
    classes: usize,
    device: &Device,
    pretrained: Option<&Path>,
) -> Result<(Network, Option<weights::LoadReport>), Diagnostic> {
    device.seed(recipe.seed);
    let colour_weights = recipe.data.adapt_channels && pretrained.is_some();
    let channels = if colour_weights { 3 } else { recipe.input_channels() };
    let mut network = Network::with_input_channels(recipe, classes, channels, device);
    materialize(&network);
    let report = match pretrained {
        Some(path) => Some(weights::load(&mut network, path, LoadScope::Backbone)?),
        None => None,
    };
    if colour_weights {
        network = network.adapt_to_grey();
    }
    Ok((network, report))
}

/// Path of the pretrained weights a recipe starts from, if any.
pub fn pretrained_weights(recipe: &Recipe, base: &Path, zoo: &Zoo) -> Result<Option<PathBuf>, Diagnostic> {
    Ok(match &recipe.backbone.weights {
        Weights::Random => None,
        Weights::File(path) => Some(base.join(path)),
        Weights::Zoo(name) => Some(zoo.entry_dir(name).join(WEIGHTS_FILE)),
        Weights::Recipe(path) => {
            let upstream_path = base.join(path);
            let source = std::fs::read_to_string(&upstream_path).map_err(|error| {
                Diagnostic::new(Code::MissingRecipeInput, format!("cannot read recipe {}: {error}", upstream_path.display()))
            })?;
            let stem = upstream_path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
            let (upstream, _) = crate::check::check_source(&source, &stem, &crate::check::NoWorld);
            let export = upstream.and_then(|upstream| upstream.export).ok_or_else(|| {
                Diagnostic::new(Code::MissingRecipeInput, format!("recipe {} exports nothing", upstream_path.display()))
                    .with_help("add `export \"path.safetensors\"` to that recipe")
            })?;
            let upstream_base = upstream_path.parent().map(Path::to_path_buf).unwrap_or_default();
            Some(upstream_base.join(export))
        }
    })
}

/// Where a run started from, so `tlrun resume RUN_DIR` finds the recipe's folder (data paths are
/// relative to it) and can tell whether the recipe changed since.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Origin {
    pub recipe_path: PathBuf,
}

pub const ORIGIN: &str = "origin.json";
const INITIAL_WEIGHTS: &str = "initial.safetensors";

/// Start a fresh run.
pub fn run(recipe: &Recipe, recipe_path: &Path, source: &str, options: &RunOptions) -> Result<RunOutcome, RunFailure> {
    let folder_path = options.out.clone().unwrap_or_else(|| RunFolder::default_path(&options.runs_root, &recipe.name));
    execute(recipe, recipe_path, source, options, folder_path, false)
}

/// Continue the run in `folder` from its newest checkpoint. The recipe must be the one it started
/// with; `recipe_path` is where that recipe lives (data paths are relative to it).
pub fn resume(recipe: &Recipe, recipe_path: &Path, source: &str, options: &RunOptions, folder: &Path) -> Result<RunOutcome, RunFailure> {
    execute(recipe, recipe_path, source, options, folder.to_path_buf(), true)
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
        eprintln!(
            "{} epoch {}/{} @{}px  train loss {:.4}  valid loss {:.4}  accuracy {:.1}%  {:.0} img/s",
            epoch.stage,
            epoch.epoch,
            self.recipe.stages[epoch.stage_index].epochs,
            epoch.size,
            epoch.train_loss,
            epoch.valid_loss,
            epoch.valid_accuracy * 100.0,
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

fn execute(recipe: &Recipe, recipe_path: &Path, source: &str, options: &RunOptions, folder_path: PathBuf, resuming: bool) -> Result<RunOutcome, RunFailure> {
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let device = parse_device(&options.device)?.autodiff();
    let mut notes = Vec::new();

    // Everything cheap to check is checked before the first step: weights, data, run folder.
    let pretrained = pretrained_weights(recipe, &base, &options.zoo)?;
    let loaded = dataset::load(recipe, &base)?;
    for (path, reason) in &loaded.skipped {
        notes.push(format!("skipped {}: {reason}", path.display()));
    }
    let data = loaded.data;
    let classes = data.classes.len();

    let folder = RunFolder::create(folder_path)?;
    let fail = |diagnostic: Diagnostic| RunFailure { diagnostic, folder: Some(folder.path.clone()) };
    if !resuming {
        folder.write("recipe.tl", source.as_bytes()).map_err(fail)?;
        let resolved = serde_json::to_string_pretty(recipe).unwrap_or_default();
        folder.write("resolved.json", resolved.as_bytes()).map_err(fail)?;
        folder.write("plan.txt", crate::plan::render_stage_tables(recipe).as_bytes()).map_err(fail)?;
        let origin = Origin { recipe_path: std::fs::canonicalize(recipe_path).unwrap_or_else(|_| recipe_path.to_path_buf()) };
        folder.write(ORIGIN, serde_json::to_string_pretty(&origin).unwrap_or_default().as_bytes()).map_err(fail)?;
    }

    let fresh_weights = if resuming { None } else { pretrained.as_deref() };
    let (mut network, report) = starting_network(recipe, classes, &device, fresh_weights).map_err(fail)?;
    if let (Some(report), Some(path)) = (report, &pretrained) {
        if !report.unused.is_empty() {
            notes.push(format!("{} key(s) of {} unused (layers the cut removed): {}", report.unused.len(), path.display(), preview(&report.unused)));
        }
    }
    let mut metrics: Vec<EpochMetrics> = Vec::new();
    let mut restored = None;
    if resuming {
        let Some(checkpoint_folder) = checkpoint::latest(&folder.path) else {
            return Err(fail(Diagnostic::new(Code::RunFolderUnreadable, format!("{} has no checkpoint to resume from", folder.path.display()))
                .with_help("checkpoints are written at the end of every epoch (and every N steps with `checkpoint every N steps`)")));
        };
        let initial = weights_of(recipe, classes, &device, &folder.file(INITIAL_WEIGHTS)).map_err(fail)?;
        network = initial;
        metrics = run_files::read_json_lines(&folder.file(run_files::METRICS));
        restored = Some(checkpoint_folder);
    }
    if !resuming {
        weights::save(&network, &folder.file(INITIAL_WEIGHTS)).map_err(fail)?;
    }
    let before = snapshot(&network);

    let started = std::time::Instant::now();
    let mut trainer = Trainer::new(recipe, device, &data);
    let mut first_stage = 0;
    let mut resume_point = None;
    if let Some(checkpoint_folder) = restored {
        let position_stage = checkpoint::position(&checkpoint_folder).map_err(fail)?.stage_index;
        let stage = &recipe.stages[position_stage.min(recipe.stages.len() - 1)];
        let mut stage_optimizer = super::optimizer::build(&stage.optimizer);
        let loaded = checkpoint::load(&checkpoint_folder, network.clone(), stage_optimizer.optimizer).map_err(fail)?;
        stage_optimizer.optimizer = loaded.optimizer;
        network = loaded.network;
        trainer.restore_rates(loaded.rates);
        if let (Some((average, updates)), Some(decay)) = (loaded.average, recipe.ema) {
            trainer.average = Some(WeightAverage::resume(average, decay, updates));
        }
        let position = loaded.position;
        eprintln!("resuming at stage `{}`, epoch {}, batch {}", stage.name, position.epoch, position.next_batch + 1);
        if position.epoch > stage.epochs {
            // The checkpoint closed its stage: carry on with the next one.
            trainer.global_step = position.global_step;
            trainer.global_epoch = position.global_epoch - 1;
            first_stage = position.stage_index + 1;
        } else {
            first_stage = position.stage_index;
            resume_point = Some(StageResume { position, optimizer: stage_optimizer, best: loaded.best });
        }
    }
    let mut hooks = RunHooks { recipe, folder: &folder, metrics, interrupt: options.interrupt.as_deref() };
    for stage_index in first_stage..recipe.stages.len() {
        let resume_here = resume_point.take();
        network = match trainer.run_stage(network, stage_index, resume_here, &mut hooks) {
            Ok(outcome) => {
                if let Some(epoch) = outcome.restored_epoch {
                    hooks.mark_restored(stage_index, epoch).map_err(fail)?;
                }
                outcome.network
            }
            Err(failure) => {
                // Keep the last good weights, and report what ran, before giving the error.
                let _ = weights::save(&failure.network, &folder.file("weights.safetensors"));
                write_report(&folder.path, &mut Vec::new());
                let diagnostic = match failure.stop {
                    Stop::Failed(diagnostic) => diagnostic,
                    Stop::Interrupted => Diagnostic::new(Code::Interrupted, "interrupted: a checkpoint was written after the last step")
                        .with_help(format!("resume with `tlrun resume {}`", folder.path.display())),
                };
                return Err(fail(diagnostic));
            }
        };
    }
    let metrics = hooks.metrics;

    let last_size = recipe.stages.last().and_then(|stage| stage.sizes.last().copied()).unwrap_or(recipe.data.size);
    // Under `ema` the averaged weights are what is evaluated, exported and published.
    let network = trainer.evaluated(&network);
    let evaluation = trainer.evaluate(&network, last_size, recipe.tta_flip);
    let after = snapshot(&network);
    let movement = relative_change(&before, &after);
    folder.write(run_files::LR_STEPS, run_files::json_lines(&trainer.step_rates).as_bytes()).map_err(fail)?;
    folder.write(run_files::MOVEMENT, serde_json::to_string_pretty(&movement).unwrap_or_default().as_bytes()).map_err(fail)?;
    folder.write(run_files::EVALUATION, serde_json::to_string_pretty(&evaluation).unwrap_or_default().as_bytes()).map_err(fail)?;
    weights::save(&network, &folder.file("weights.safetensors")).map_err(fail)?;
    if let (Some(before), Some(after)) = (before.get(FIRST_FILTERS), after.get(FIRST_FILTERS)) {
        let shape = first_filters_shape(recipe);
        let filters = Filters { shape, before: before.clone(), after: after.clone() };
        folder.write(run_files::FILTERS, serde_json::to_string(&filters).unwrap_or_default().as_bytes()).map_err(fail)?;
    }
    let summary = Summary {
        recipe: recipe.name.clone(),
        classes: data.classes.clone(),
        final_valid_accuracy: evaluation.accuracy,
        final_valid_loss: evaluation.loss,
        epochs: trainer.global_epoch,
        seconds: started.elapsed().as_secs_f64(),
    };
    folder.write(run_files::SUMMARY, serde_json::to_string_pretty(&summary).unwrap_or_default().as_bytes()).map_err(fail)?;

    if let Some(entry) = &recipe.publish {
        let card = super::publish::publish(&network, recipe, &data.classes, &options.zoo, entry).map_err(fail)?;
        notes.push(format!("published zoo entry `{}` ({} px, sha256 {})", card.name, card.input_size, &card.sha256[..12]));
    }
    write_report(&folder.path, &mut notes);
    let exported = match &recipe.export {
        Some(path) => {
            let target = base.join(path);
            weights::save(&network, &target).map_err(fail)?;
            Some(target)
        }
        None => None,
    };
    Ok(RunOutcome { folder: folder.path, classes: data.classes, metrics, evaluation, exported, notes })
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

fn write_metrics(folder: &RunFolder, metrics: &[EpochMetrics]) -> Result<(), Diagnostic> {
    folder.write(run_files::METRICS, run_files::json_lines(metrics).as_bytes())
}

fn preview(keys: &[String]) -> String {
    let shown: Vec<&str> = keys.iter().take(5).map(String::as_str).collect();
    if keys.len() > 5 { format!("{}, …", shown.join(", ")) } else { shown.join(", ") }
}
