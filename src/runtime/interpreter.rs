//! The interpreter: runs a compiled program (`program.rs`) one instruction at a time over a typed
//! run state, one handler per kind of instruction, and appends every executed graph node to
//! steps.jsonl with its id. It never asks whether the run is fresh or resumed: the program says
//! what to do.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use burn::prelude::*;

use super::dataset;
use super::forgetting::ForgettingProbe;
use super::model::{Backbone, Network};
use super::param_snapshot::snapshot;
use super::program::{Instruction, Line};
use super::resume_point::ResumePoint;
use super::run_io::{
    LazyFolder, RunFailure, RunHooks, RunOptions, RunOutcome, internal, now, predict_step, preview, restore_checkpoint, to_json, weights_of,
    write_forgetting, write_report, write_results,
};
use super::starting_network::{attach_head, build_backbone, load_pretrained};
use super::run_folder::RunFolder;
use super::trainer::{EpochMetrics, Evaluation, NoHooks, StageResume, Stop, Trainer, TrainingData};
use super::weights;
use crate::check::recipe::{Recipe, Stage};
use crate::diagnostics::{Code, Diagnostic};
use crate::model_card::ModelCard;
use crate::run_files::{self, INITIAL_WEIGHTS, StepRecord};
use crate::zoo::Zoo;

/// What the instructions build up, in the order the program allows. `'d` is the data's lifetime:
/// the trainer borrows the loaded data, which lives in a cell outside the state.
struct RunState<'r: 'd, 'd> {
    recipe: &'r Recipe,
    /// The run folder's path, for errors that point at it (the last good weights are there).
    run_path: PathBuf,
    /// Set by Ctrl-C: finish the step, checkpoint, stop.
    interrupt: Option<&'r AtomicBool>,
    zoo: &'r Zoo,
    base: PathBuf,
    device: Device,
    /// None for a preparation (`prepare`), which writes nothing.
    folder: Option<LazyFolder<'r>>,
    started: Instant,
    notes: Vec<String>,
    steps: Vec<StepRecord>,
    data: &'d OnceCell<TrainingData>,
    trainer: Option<Trainer<'d>>,
    backbone: Option<Backbone>,
    network: Option<Network>,
    /// The weights training starts from, for weight movement.
    before: BTreeMap<String, Vec<f32>>,
    metrics: Vec<EpochMetrics>,
    /// A resumed run: where inside its stage the checkpoint stopped, for that stage to continue.
    within_stage: Option<StageResume>,
    evaluation: Option<Evaluation>,
    /// The frozen probe on the source images, and the forgetting curve so far.
    forgetting: Option<ForgettingProbe>,
    forgetting_points: Vec<run_files::ForgettingPoint>,
    /// A resumed run: its initial network, which the shift and the source probe are measured on.
    initial_network: Option<Network>,
    exported: Vec<PathBuf>,
    /// Held from `BuildBackbone` until the head is drawn (see `device::initial_draws`).
    drawing: Option<std::sync::MutexGuard<'static, ()>>,
    /// `regularise lwf`: the pretrained file's classifier.
    source_classifier: Option<super::lwf::Classifier>,
}

/// Runs `program` into the run folder `folder`.
pub(super) fn execute(recipe: &Recipe, options: &RunOptions, base: PathBuf, device: Device, folder: LazyFolder<'_>, program: &[Line]) -> Result<RunOutcome, RunFailure> {
    let data = OnceCell::new();
    let fresh = folder.fresh;
    let mut state = RunState::new(recipe, &options.zoo, base, device, Some(folder), &data);
    state.interrupt = options.interrupt.as_deref();
    if !fresh {
        state.steps = run_files::read_json_lines_to_resume(&state.run_path.join(run_files::STEPS)).map_err(failed(&state.run_path))?;
    }
    for line in program {
        let started = now();
        for instruction in &line.instructions {
            state.run(instruction)?;
        }
        if line.record {
            state.steps.push(StepRecord { node: line.node.index(), step: line.label.clone(), started, seconds: now() - started });
            if let Some(run_folder) = state.folder.as_ref().and_then(|folder| folder.folder.as_ref()) {
                run_folder.write(run_files::STEPS, run_files::json_lines(&state.steps).as_bytes()).map_err(failed(&state.run_path))?;
            }
        }
    }
    state.finish()
}

/// What a program's prefix (`program::up_to`) built: the backbone or network a step sees, and
/// the trainer with its data, for the tools that start there (lr-find, the probe).
pub(super) struct Prepared<'d> {
    pub backbone: Option<Backbone>,
    pub network: Option<Network>,
    pub trainer: Option<Trainer<'d>>,
}

/// Runs `program` (a prefix of a run's) with no run folder: the same handlers as a run, nothing
/// written. The data is loaded into `data`, which the trainer borrows.
pub(super) fn prepare<'r: 'd, 'd>(
    recipe: &'r Recipe,
    zoo: &'r Zoo,
    base: PathBuf,
    device: Device,
    program: &[Line],
    data: &'d OnceCell<TrainingData>,
) -> Result<Prepared<'d>, Diagnostic> {
    let mut state = RunState::new(recipe, zoo, base, device, None, data);
    for instruction in program.iter().flat_map(|line| &line.instructions) {
        state.run(instruction).map_err(|failure| failure.diagnostic)?;
    }
    if state.data.get().is_some() {
        state.trainer()?;
    }
    Ok(Prepared { backbone: state.backbone, network: state.network, trainer: state.trainer })
}

/// The run folder, made on first use. A preparation has none: its program holds no instruction
/// that writes (`program::up_to`), so asking is a bug. (A function of the field, so that the
/// trainer can be borrowed beside it.)
fn made<'f>(folder: &'f mut Option<LazyFolder<'_>>) -> Result<&'f RunFolder, Diagnostic> {
    folder.as_mut().ok_or_else(|| internal("a preparation writes no run folder"))?.get()
}

/// Errors once the run folder exists point at it (the last good weights are there).
fn failed(run_path: &Path) -> impl Fn(Diagnostic) -> RunFailure + '_ {
    move |diagnostic| RunFailure { diagnostic, folder: Some(run_path.to_path_buf()) }
}

impl<'r: 'd, 'd> RunState<'r, 'd> {
    fn new(recipe: &'r Recipe, zoo: &'r Zoo, base: PathBuf, device: Device, folder: Option<LazyFolder<'r>>, data: &'d OnceCell<TrainingData>) -> Self {
        RunState {
            recipe,
            run_path: folder.as_ref().map_or_else(|| base.clone(), |folder| folder.path.clone()),
            interrupt: None,
            zoo,
            base,
            device,
            folder,
            started: Instant::now(),
            notes: Vec::new(),
            steps: Vec::new(),
            data,
            trainer: None,
            backbone: None,
            network: None,
            before: BTreeMap::new(),
            metrics: Vec::new(),
            within_stage: None,
            evaluation: None,
            forgetting: None,
            forgetting_points: Vec::new(),
            initial_network: None,
            exported: Vec::new(),
            drawing: None,
            source_classifier: None,
        }
    }

    fn run(&mut self, instruction: &Instruction) -> Result<(), RunFailure> {
        match instruction {
            Instruction::RequireExport { recipe, export } => self.require_export(recipe, export),
            Instruction::LoadData => self.load_data(),
            Instruction::BuildBackbone { architecture, channels, seed } => {
                self.drawing = Some(super::device::initial_draws());
                self.backbone = Some(build_backbone(architecture, *channels, *seed, &self.device));
                Ok(())
            }
            Instruction::LoadWeights { file } => self.load_weights(file.as_deref()),
            Instruction::KeepSourceClassifier { file } => {
                self.source_classifier = Some(super::lwf::Classifier::read(file)?);
                Ok(())
            }
            Instruction::Cut { kept } => {
                let whole = self.backbone.take().ok_or_else(|| internal("a cut before the backbone"))?;
                self.backbone = Some(whole.cut(*kept));
                Ok(())
            }
            Instruction::AttachHead => self.attach_head(),
            Instruction::SaveInitialWeights => self.save_initial_weights(),
            Instruction::RestoreRun { point } => self.restore_run(point),
            Instruction::Resize { size } => {
                self.trainer()?.prepare_size(*size);
                Ok(())
            }
            Instruction::Stage { index, stage, continue_inside } => self.stage(*index, stage, *continue_inside),
            Instruction::MeasureShift => self.measure_shift(),
            Instruction::SourceBaseline => self.source_baseline(),
            Instruction::MeasureForgetting { index, name } => self.measure_forgetting(*index, name),
            Instruction::Evaluate { size, tta } => self.evaluate(*size, *tta),
            Instruction::Export { file } => self.export(file),
            Instruction::Publish { entry } => self.publish(entry),
            Instruction::Predict { input, output } => self.predict(input, output),
        }
    }

    fn loaded(&self, what: &str) -> Result<&'d TrainingData, Diagnostic> {
        self.data.get().ok_or_else(|| internal(&format!("{what} before the data")))
    }

    /// The trainer, made on first use (it needs the data).
    fn trainer(&mut self) -> Result<&mut Trainer<'d>, Diagnostic> {
        let loaded = self.loaded("training")?;
        Ok(self.trainer.get_or_insert_with(|| Trainer::new(self.recipe, self.device.clone(), loaded)))
    }

    fn network(&self, what: &str) -> Result<&Network, Diagnostic> {
        self.network.as_ref().ok_or_else(|| internal(&format!("{what} before the network")))
    }

    fn require_export(&self, recipe: &str, export: &Path) -> Result<(), RunFailure> {
        if export.is_file() {
            return Ok(());
        }
        Err(Diagnostic::new(Code::MissingRecipeInput, format!("{recipe} has not exported {} yet", export.display()))
            .with_help(format!("run {recipe} first (`tlrun run` on the folder runs it first)"))
            .into())
    }

    fn load_data(&mut self) -> Result<(), RunFailure> {
        let loaded = dataset::load(self.recipe, &self.base)?;
        for (path, reason) in &loaded.skipped {
            self.notes.push(format!("skipped {}: {reason}", path.display()));
        }
        self.data.set(loaded.data).map_err(|_| internal("the data was loaded twice"))?;
        Ok(())
    }

    fn load_weights(&mut self, file: Option<&Path>) -> Result<(), RunFailure> {
        let cut = self.backbone.take().ok_or_else(|| internal("weights before the backbone"))?;
        let (loaded, report) = load_pretrained(self.recipe, cut, file)?;
        if let (Some(report), Some(file)) = (report, file) {
            if !report.unused.is_empty() {
                self.notes.push(format!("{} key(s) of {} unused (layers the cut removed): {}", report.unused.len(), file.display(), preview(&report.unused)));
            }
        }
        self.backbone = Some(loaded);
        Ok(())
    }

    fn attach_head(&mut self) -> Result<(), RunFailure> {
        let classes = self.loaded("a head")?.classes.len();
        let body = self.backbone.take().ok_or_else(|| internal("a head before the backbone"))?;
        self.network = Some(attach_head(self.recipe, body, classes, &self.device));
        self.drawing = None;
        Ok(self.anchor_here()?)
    }

    fn save_initial_weights(&mut self) -> Result<(), RunFailure> {
        let attached = self.network.as_ref().ok_or_else(|| internal("saving the initial weights before the head"))?;
        let run_folder = made(&mut self.folder)?;
        weights::save(attached, &run_folder.file(INITIAL_WEIGHTS)).map_err(failed(&self.run_path))?;
        self.start_training_from_here()
    }

    /// The run's own initial weights (not the pretrained file), its metrics and forgetting curve
    /// so far, then the checkpoint.
    fn restore_run(&mut self, point: &ResumePoint) -> Result<(), RunFailure> {
        let classes = self.loaded("restoring a run")?.classes.len();
        let run_folder = made(&mut self.folder)?;
        let initial_file = run_folder.file(INITIAL_WEIGHTS);
        let metrics_file = run_folder.file(run_files::METRICS);
        let forgetting_file = run_folder.file(run_files::FORGETTING);
        let initial = weights_of(self.recipe, classes, &self.device, &initial_file).map_err(failed(&self.run_path))?;
        self.metrics = run_files::read_json_lines_to_resume(&metrics_file).map_err(failed(&self.run_path))?;
        self.network = Some(initial);
        self.start_training_from_here()?;
        self.anchor_here()?;
        let initial = self.network.take().ok_or_else(|| internal("restoring before the head"))?;
        if self.recipe.forgetting_source().is_some() || self.recipe.backbone.is_pretrained() {
            self.initial_network = Some(initial.clone());
            self.forgetting_points = run_files::read_json_lines_to_resume(&forgetting_file).map_err(failed(&self.run_path))?;
        }
        let recipe = self.recipe;
        let restored = restore_checkpoint(recipe, point, initial, self.trainer()?);
        let (restored, inside) = restored.map_err(failed(&self.run_path))?;
        self.network = Some(restored);
        self.within_stage = inside;
        Ok(())
    }

    /// Every group selects parameters, and the weights training starts from are noted.
    fn start_training_from_here(&mut self) -> Result<(), RunFailure> {
        let network = self.network.as_ref().ok_or_else(|| internal("training before the head"))?;
        if let Err(empty) = super::param_groups::ParameterGroups::select(network, self.recipe) {
            return Err(failed(&self.run_path)(internal(&format!("group(s) {} select no parameter of the network", empty.join(", ")))));
        }
        self.before = snapshot(network);
        Ok(())
    }

    /// `regularise l2sp`: the backbone as it is now is where training pulls it back to; `lwf`: the
    /// backbone as it is now, with the pretrained classifier, is the teacher (after the head is
    /// attached, and again when a resume restores the run's initial weights).
    fn anchor_here(&mut self) -> Result<(), Diagnostic> {
        if self.recipe.l2sp.is_some() {
            let anchor = super::l2sp::Anchor::of(self.network("anchoring L2-SP")?);
            self.trainer()?.anchor = Some(anchor);
        }
        if self.recipe.lwf.is_some() {
            let classifier = self.source_classifier.clone().ok_or_else(|| {
                Diagnostic::new(Code::LwfWithoutClassifier, "`regularise lwf` needs pretrained weights to read the classifier from")
            })?;
            let teacher = super::lwf::Teacher::new(&self.network("keeping LwF's teacher")?.backbone, &classifier, &self.device)?;
            self.trainer()?.teacher = Some(teacher);
        }
        Ok(())
    }

    fn stage(&mut self, index: usize, stage: &Stage, continue_inside: bool) -> Result<(), RunFailure> {
        let current = self.network.take().ok_or_else(|| internal("a stage before the network"))?;
        let resume_here = if continue_inside { self.within_stage.take() } else { None };
        if self.folder.is_none() {
            // A preparation: the stage trains as in a run, and nothing is checkpointed.
            let outcome = self.trainer()?.run_stage(current, index, stage, resume_here, &mut NoHooks).map_err(|failure| match failure.stop {
                Stop::Failed(diagnostic) => diagnostic,
                Stop::Interrupted => Diagnostic::new(Code::Interrupted, "interrupted"),
            })?;
            self.network = Some(outcome.network);
            return Ok(());
        }
        let metrics = std::mem::take(&mut self.metrics);
        let (recipe, interrupt) = (self.recipe, self.interrupt);
        let classes = &self.loaded("a stage")?.classes;
        self.trainer()?;
        let run_folder = made(&mut self.folder)?;
        let trainer = self.trainer.as_mut().expect("made just above");
        if index == 0 && !continue_inside {
            let size = stage.sizes.first().copied().unwrap_or(recipe.data.size);
            super::augmented_preview::write(run_folder, recipe, trainer, classes, size).map_err(failed(&self.run_path))?;
        }
        let mut hooks = RunHooks { recipe, folder: run_folder, metrics, interrupt };
        match trainer.run_stage(current, index, stage, resume_here, &mut hooks) {
            Ok(outcome) => {
                if let Some(epoch) = outcome.restored_epoch {
                    hooks.mark_restored(index, epoch).map_err(failed(&self.run_path))?;
                }
                self.metrics = hooks.metrics;
                self.network = Some(outcome.network);
                Ok(())
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
                Err(failed(&self.run_path)(diagnostic))
            }
        }
    }

    fn measure_shift(&mut self) -> Result<(), RunFailure> {
        let current = self.network("measuring the shift")?;
        let loaded = self.loaded("measuring the shift")?;
        let pretrained_network = self.initial_network.as_ref().unwrap_or(current);
        let mut notes = Vec::new();
        let domain = super::features::run_start_shift(self.recipe, pretrained_network, loaded, self.zoo, &self.device, &mut notes);
        for line in domain.advice() {
            eprintln!("note: {line}");
            notes.push(line);
        }
        self.notes.extend(notes);
        let encoded = to_json(&domain, run_files::SHIFT)?;
        let run_folder = made(&mut self.folder)?;
        run_folder.write(run_files::SHIFT, encoded.as_bytes()).map_err(failed(&self.run_path))
    }

    fn source_baseline(&mut self) -> Result<(), RunFailure> {
        let current = self.network("a source baseline")?;
        let pretrained_network = self.initial_network.as_ref().unwrap_or(current);
        let (probe, point) = ForgettingProbe::fit(self.recipe, pretrained_network, &self.base, &self.device).map_err(failed(&self.run_path))?;
        eprintln!("forgetting: source accuracy {:.1}% before training (linear probe on `{}`)", point.source_accuracy * 100.0, point.layer);
        self.forgetting_points.retain(|known| known.stage != point.stage);
        self.forgetting_points.insert(0, point);
        self.forgetting = Some(probe);
        self.write_forgetting()
    }

    fn measure_forgetting(&mut self, index: usize, name: &str) -> Result<(), RunFailure> {
        let current = self.network("measuring forgetting")?;
        let probe = self.forgetting.as_ref().ok_or_else(|| internal("measuring forgetting before the baseline"))?;
        let target = self.metrics.iter().rev().find(|metrics| metrics.stage_index == index && metrics.valid_accuracy.is_finite()).map(|metrics| metrics.valid_accuracy);
        let point = probe.measure(self.recipe, current, name, target, &self.device);
        eprintln!("forgetting: source accuracy {:.1}% after stage `{name}`", point.source_accuracy * 100.0);
        self.forgetting_points.retain(|known| known.stage != point.stage);
        self.forgetting_points.push(point);
        self.write_forgetting()
    }

    fn write_forgetting(&mut self) -> Result<(), RunFailure> {
        let run_folder = made(&mut self.folder)?;
        write_forgetting(run_folder, &self.forgetting_points).map_err(failed(&self.run_path))
    }

    fn evaluate(&mut self, size: u32, tta: bool) -> Result<(), RunFailure> {
        let loaded = self.loaded("evaluating")?;
        let trained = self.network.take().ok_or_else(|| internal("evaluating before the network"))?;
        let seconds_so_far = self.started.elapsed().as_secs_f64();
        let (recipe, before) = (self.recipe, std::mem::take(&mut self.before));
        made(&mut self.folder)?;
        let trainer = self.trainer()?;
        // Under `ema` the averaged weights are what is evaluated, exported and published.
        let final_network = trainer.evaluated(&trained);
        let (result, scored) = trainer.evaluate_images(&final_network, size, tta);
        let trainer = self.trainer.as_ref().expect("made just above");
        let run_folder = made(&mut self.folder)?;
        write_results(recipe, run_folder, &before, &final_network, &result, trainer, loaded, seconds_so_far).map_err(failed(&self.run_path))?;
        super::top_losses::write(run_folder, &scored, &loaded.valid.images, &loaded.classes).map_err(failed(&self.run_path))?;
        self.before = before;
        self.network = Some(final_network);
        self.evaluation = Some(result);
        Ok(())
    }

    fn export(&mut self, file: &Path) -> Result<(), RunFailure> {
        let trained = self.network("exporting")?;
        let classes = &self.loaded("exporting")?.classes;
        super::export::export(trained, &ModelCard::of(self.recipe, classes), file, false).map_err(failed(&self.run_path))?;
        self.exported.push(file.to_path_buf());
        Ok(())
    }

    fn publish(&mut self, entry: &str) -> Result<(), RunFailure> {
        let trained = self.network("publishing")?;
        let loaded = self.loaded("publishing")?;
        let card = super::publish::publish(trained, self.recipe, loaded, &self.base, &self.device, self.zoo, entry).map_err(failed(&self.run_path))?;
        self.notes.push(format!("published zoo entry `{}` ({} px, sha256 {})", card.name, card.input_size, &card.sha256[..12]));
        Ok(())
    }

    fn predict(&mut self, input: &Path, output: &Path) -> Result<(), RunFailure> {
        let trained = self.network("predicting")?;
        let classes = &self.loaded("predicting")?.classes;
        let note = predict_step(self.recipe, trained, classes, input, output, &self.device).map_err(failed(&self.run_path))?;
        self.notes.push(note);
        Ok(())
    }

    /// steps.jsonl complete, the report drawn, the outcome handed back.
    fn finish(mut self) -> Result<RunOutcome, RunFailure> {
        let run_folder = made(&mut self.folder)?;
        run_folder.write(run_files::STEPS, run_files::json_lines(&self.steps).as_bytes()).map_err(failed(&self.run_path))?;
        let folder = run_folder.path.clone();
        write_report(&folder, &mut self.notes);
        let evaluation = self.evaluation.take().ok_or_else(|| internal("the graph has no evaluation"))?;
        let classes = self.loaded("an evaluation")?.classes.clone();
        Ok(RunOutcome { folder, classes, metrics: self.metrics, evaluation, exported: self.exported, notes: self.notes })
    }
}
