use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use super::output::{interrupt_flag, report_failure};
use super::pipeline::{self, RunRecord};
pub use super::run_args::{RunArgs, Scheduler};
use crate::runtime::runner::{self, RunOptions};
use crate::sha256::sha256_file;
use super::workspace::{LoadedRecipe, Workspace};

/// Continue the run in `folder`; `current` is the recipe file to compare against (default: where
/// the run's recipe came from).
pub fn resume_run(folder: &Path, current: Option<&Path>, device: &str, workspace: &Workspace) -> u8 {
    let (origin_path, saved_source) = match super::resume::original(folder) {
        Ok(found) => found,
        Err(diagnostic) => {
            super::output::print_runtime_error(&diagnostic, folder);
            return 2;
        }
    };
    let recipe_path = current.map(Path::to_path_buf).unwrap_or(origin_path);
    let Some(saved) = workspace.runnable_text(&recipe_path, saved_source.clone()) else {
        eprintln!("error: the recipe saved in {} no longer checks", folder.display());
        return 1;
    };
    if let Err(diagnostic) = super::resume::refuse_if_changed(folder, &saved, &saved_source, &recipe_path, workspace) {
        super::output::print_runtime_error(&diagnostic, &recipe_path);
        return 1;
    }
    let pretrained = match workspace.pretrained_weights(&saved, &recipe_path) {
        Ok(pretrained) => pretrained,
        Err(diagnostic) => {
            super::output::print_runtime_error(&diagnostic, &recipe_path);
            return 1;
        }
    };
    let options = RunOptions { device: device.to_string(), out: None, zoo: workspace.zoo.clone(), runs_root: PathBuf::from("."), interrupt: interrupt_flag() };
    match runner::resume(&saved, &recipe_path, &saved_source, pretrained.as_deref(), &options, folder) {
        Ok(outcome) => {
            println!("{}: valid accuracy {:.1}% (loss {:.4})", saved.name, outcome.evaluation.accuracy * 100.0, outcome.evaluation.loss);
            println!("run folder: {}", outcome.folder.display());
            0
        }
        Err(failure) => report_failure(&failure, &recipe_path),
    }
}

pub fn run(args: &RunArgs, workspace: &Workspace) -> u8 {
    with_threads(args.threads, || run_here(args, workspace))
}

/// Run `work` on `threads` CPU threads (all cores when `None`). The global pool can be
/// configured once; when it already exists (a library caller, a test harness), `work` runs in a
/// pool of its own, so `--threads` is honoured either way.
fn with_threads<T: Send>(threads: Option<usize>, work: impl FnOnce() -> T + Send) -> T {
    let Some(threads) = threads.map(|threads| threads.max(1)) else { return work() };
    if rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().is_ok() || rayon::current_num_threads() == threads {
        return work();
    }
    match rayon::ThreadPoolBuilder::new().num_threads(threads).build() {
        Ok(pool) => pool.install(work),
        Err(error) => {
            eprintln!("warning: --threads {threads} cannot be honoured ({error}); running on {} thread(s)", rayon::current_num_threads());
            work()
        }
    }
}

/// `tlrun run`: the recipes named, in dependency order; decide what runs and why, then hand the
/// stale ones to Slurm or run them here, then compare what ran.
fn run_here(args: &RunArgs, workspace: &Workspace) -> u8 {
    if let Some(name) = &args.variant {
        return super::sweep::run_child(&args.recipe, name, args, workspace);
    }
    let targets = match recipe_targets(&args.recipe) {
        Ok(targets) => targets,
        Err(message) => return super::output::usage_error(message),
    };
    if args.resume {
        return resume_latest(&targets, args, workspace);
    }
    let order = match pipeline::run_order(workspace, &targets) {
        Ok(order) => order,
        Err(message) => return super::output::usage_error(message),
    };
    // Decide first what runs, so that `--out` can be checked before anything trains.
    let planned = match decide(&order, args, workspace) {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    let stale: Vec<&PlannedRecipe> = planned.iter().filter(|plan| plan.reason.is_some()).collect();
    // A recipe whose dependencies are up to date runs like one recipe, `--out` included.
    if args.out.is_some() && stale.len() > 1 {
        let names: Vec<String> = stale.iter().map(|plan| relative(&plan.path)).collect();
        return super::output::usage_error(format!(
            "--out names one run folder, but {} recipes need to run: {}; run the others first, or drop --out",
            stale.len(),
            names.join(", ")
        ));
    }
    if args.on == Scheduler::Slurm {
        return super::slurm::submit(&planned.iter().map(PlannedRecipe::for_slurm).collect::<Vec<_>>(), args, workspace);
    }
    let several_run = stale.len() > 1;
    let interrupt = interrupt_flag();
    let mut outcomes = Vec::new();
    let mut swept: Vec<PathBuf> = Vec::new();
    for plan in planned {
        let outcome = match (plan.reason.clone(), plan.predict_reason.clone()) {
            (Some(reason), _) => plan.refreshed(several_run, args, workspace).and_then(|plan| train(plan, &reason, several_run, args, workspace, &interrupt, &mut swept)),
            (None, Some(predict_reason)) => predict_again(&plan, &predict_reason, args),
            (None, None) => Ok(Some(up_to_date(&plan))),
        };
        match outcome {
            Ok(Some(outcome)) => outcomes.push(outcome),
            Ok(None) => {}
            Err(code) => return code,
        }
    }
    print_comparison(&outcomes, &swept);
    0
}

/// The recipe files `tlrun run PATH` names: PATH itself, or every `.tl` file in the folder.
fn recipe_targets(path: &Path) -> Result<Vec<PathBuf>, String> {
    let targets: Vec<PathBuf> = if path.is_dir() {
        let mut recipes: Vec<PathBuf> = std::fs::read_dir(path)
            .map(|entries| entries.filter_map(Result::ok).map(|entry| entry.path()).filter(|p| p.extension().is_some_and(|e| e == "tl")).collect())
            .unwrap_or_default();
        recipes.sort();
        recipes
    } else {
        vec![path.to_path_buf()]
    };
    if targets.is_empty() || !targets.iter().all(|target| target.is_file()) {
        return Err(format!("no recipe at {}", path.display()));
    }
    Ok(targets)
}

/// `tlrun recipe.tl --resume`: the newest unfinished run of that recipe.
fn resume_latest(targets: &[PathBuf], args: &RunArgs, workspace: &Workspace) -> u8 {
    if targets.len() != 1 {
        return super::output::usage_error("--resume takes one recipe file");
    }
    let Some(LoadedRecipe { recipe, .. }) = workspace.load_checked(&targets[0]) else { return 1 };
    let Some(folder) = super::resume::latest_unfinished(Path::new("."), &recipe.name) else {
        return super::output::usage_error(format!("no unfinished run of `{}` with a checkpoint under runs/", recipe.name));
    };
    resume_run(&folder, Some(&targets[0]), &args.device, workspace)
}

/// One recipe of the run, read and checked once, with what is to be done about it.
struct PlannedRecipe {
    path: PathBuf,
    /// The recipes it starts from.
    needs: Vec<PathBuf>,
    recipe: crate::check::Runnable,
    source: String,
    hash: String,
    /// Why it trains (`None`: its outputs are up to date).
    reason: Option<String>,
    /// Training up to date, but its `predict` steps are stale (a folder changed): why.
    predict_reason: Option<String>,
    /// `.tlrun/<recipe>.json`, read once: what its last run produced.
    record: Option<RunRecord>,
}

impl PlannedRecipe {
    fn for_slurm(&self) -> super::slurm::SlurmRecipe {
        super::slurm::SlurmRecipe {
            path: self.path.clone(),
            name: self.recipe.name.clone(),
            source: self.source.clone(),
            needs: self.needs.clone(),
            stale: self.reason.is_some() || self.predict_reason.is_some(),
        }
    }

    /// Upstream recipes ran since the plan was made: checked again (a zoo card they published may
    /// say more now, e.g. its source data), and the new inputs hashed.
    fn refreshed(self, several_run: bool, args: &RunArgs, workspace: &Workspace) -> Result<PlannedRecipe, u8> {
        if !several_run {
            return Ok(self);
        }
        let recipe = if args.dry_run { self.recipe } else { workspace.load_checked(&self.path).ok_or(1u8)?.recipe };
        let hash = pipeline::source_hash(&recipe, &self.path, &self.source, workspace);
        Ok(PlannedRecipe { recipe, hash, ..self })
    }
}

/// Each recipe in `order` read and checked once (its diagnostics printed), and whether it runs:
/// `--force`, a recipe it needs runs first, or its inputs or outputs changed.
fn decide(order: &[(PathBuf, Vec<PathBuf>)], args: &RunArgs, workspace: &Workspace) -> Result<Vec<PlannedRecipe>, u8> {
    let mut planned: Vec<PlannedRecipe> = Vec::new();
    for (path, needs) in order {
        let LoadedRecipe { recipe, source } = workspace.load_checked(path).ok_or(1u8)?;
        let hash = pipeline::source_hash(&recipe, path, &source, workspace);
        let record = pipeline::read_record(path);
        let upstream = needs.iter().find(|need| planned.iter().any(|plan| plan.reason.is_some() && &plan.path == *need));
        let reason = if args.force {
            Some("--force".to_string())
        } else if let Some(upstream) = upstream {
            Some(format!("{} runs first", relative(upstream)))
        } else {
            pipeline::staleness(&recipe, path, &hash, record.as_ref(), workspace.zoo)
        };
        let predict_reason = if reason.is_none() { record.as_ref().and_then(|record| pipeline::prediction_staleness(&recipe, path, record)) } else { None };
        planned.push(PlannedRecipe { path: path.clone(), needs: needs.clone(), recipe, source, hash, reason, predict_reason, record });
    }
    Ok(planned)
}

/// What one recipe came to, for the table at the end.
struct Outcome {
    name: String,
    status: &'static str,
    accuracy: Option<f64>,
    folder: Option<PathBuf>,
}

fn up_to_date(plan: &PlannedRecipe) -> Outcome {
    eprintln!("{}: up to date", relative(&plan.path));
    let record = plan.record.as_ref();
    Outcome { name: plan.recipe.name.clone(), status: "up to date", accuracy: record.map(|r| r.valid_accuracy), folder: record.map(|r| r.run_folder.clone()) }
}

/// Training is up to date but a `predict` step is not: those steps alone, with the last run's model.
fn predict_again(plan: &PlannedRecipe, predict_reason: &str, args: &RunArgs) -> Result<Option<Outcome>, u8> {
    let display = relative(&plan.path);
    let Some(record) = plan.record.clone() else { return Ok(Some(up_to_date(plan))) };
    if args.dry_run {
        println!("would predict {display}: {predict_reason}");
        return Ok(None);
    }
    eprintln!("{display}: training up to date; predicting ({predict_reason})");
    let (recipe, path) = (&plan.recipe, &plan.path);
    let notes = runner::predict_only(recipe, path, &record.run_folder, &args.device).map_err(|diagnostic| {
        super::output::print_runtime_error(&diagnostic, path);
        1u8
    })?;
    for note in &notes {
        eprintln!("note: {note}");
    }
    let record = RunRecord {
        predictions_hash: pipeline::predictions_hash(recipe, path, &record.run_folder),
        predictions: pipeline::prediction_outputs(recipe, path),
        ..record
    };
    if let Err(diagnostic) = pipeline::write_record(path, &record) {
        super::output::print_runtime_error(&diagnostic, path);
    }
    Ok(Some(Outcome { name: recipe.name.clone(), status: "predicted", accuracy: Some(record.valid_accuracy), folder: Some(record.run_folder) }))
}

/// A stale recipe: its sweep's variants, or one run; then its record for the next up-to-date check.
#[allow(clippy::too_many_arguments)]
fn train(
    plan: PlannedRecipe,
    reason: &str,
    several_run: bool,
    args: &RunArgs,
    workspace: &Workspace,
    interrupt: &Option<Arc<AtomicBool>>,
    swept: &mut Vec<PathBuf>,
) -> Result<Option<Outcome>, u8> {
    let PlannedRecipe { path, recipe, source, hash, .. } = plan;
    let display = relative(&path);
    // A sweep runs its variants (each skipped while up to date) and summarises them.
    if crate::sweep::sweep_of(&crate::syntax::parse(&source).0).is_some() {
        let code = super::sweep::run_variants(&path, &source, &recipe.name, args, workspace);
        if code != 0 {
            return Err(code);
        }
        swept.push(super::sweep::sweep_folder(args, &recipe.name));
        return Ok(Some(Outcome { name: recipe.name.clone(), status: "swept", accuracy: None, folder: None }));
    }
    if args.dry_run {
        println!("would run {display}: {reason}");
        return Ok(None);
    }
    if several_run {
        eprintln!("running {display} ({reason})");
    } else {
        eprintln!("running {display}");
    }
    let options =
        RunOptions { device: args.device.clone(), out: args.out.clone(), zoo: workspace.zoo.clone(), runs_root: PathBuf::from("."), interrupt: interrupt.clone() };
    let pretrained = workspace.pretrained_weights(&recipe, &path).map_err(|diagnostic| {
        super::output::print_runtime_error(&diagnostic, &path);
        1u8
    })?;
    let outcome = runner::run(&recipe, &path, &source, pretrained.as_deref(), &options).map_err(|failure| report_failure(&failure, &path))?;
    for note in &outcome.notes {
        eprintln!("note: {note}");
    }
    println!(
        "{}: valid accuracy {:.1}% (loss {:.4}) over {} classes",
        recipe.name,
        outcome.evaluation.accuracy * 100.0,
        outcome.evaluation.loss,
        outcome.classes.len()
    );
    println!("run folder: {}", outcome.folder.display());
    for exported in &outcome.exported {
        println!("exported: {}", exported.display());
    }
    let outputs = pipeline::outputs(&recipe, &path, workspace.zoo).into_iter().filter_map(|output| sha256_file(&output).ok().map(|sha| (output, sha))).collect();
    let record = RunRecord {
        source_hash: hash,
        outputs,
        run_folder: outcome.folder.clone(),
        valid_accuracy: outcome.evaluation.accuracy,
        predictions_hash: pipeline::predictions_hash(&recipe, &path, &outcome.folder),
        predictions: pipeline::prediction_outputs(&recipe, &path),
    };
    if let Err(diagnostic) = pipeline::write_record(&path, &record) {
        super::output::print_runtime_error(&diagnostic, &path);
    }
    Ok(Some(Outcome { name: recipe.name.clone(), status: "ran", accuracy: Some(outcome.evaluation.accuracy), folder: Some(outcome.folder) }))
}

/// Several runs: `runs/compare.html`, sweeps' paired differences, and a table of every recipe.
fn print_comparison(outcomes: &[Outcome], swept: &[PathBuf]) {
    let compared: Vec<PathBuf> = outcomes.iter().filter_map(|outcome| outcome.folder.clone()).collect();
    if compared.len() > 1 {
        let runs: Vec<crate::report::RunData> = compared.iter().filter_map(|folder| crate::report::RunData::load(folder).ok()).collect();
        let out = PathBuf::from("runs").join("compare.html");
        if let Ok(html) = crate::report::compare_html(&runs) {
            if crate::atomic_file::write_atomic(&out, html.as_bytes()).is_ok() {
                println!("comparison: {}", out.display());
            }
        }
    }
    // Sweeps run together (transfer and scratch over the same seeds): the paired difference.
    super::report::print_sweep_pairs(swept);
    if outcomes.len() > 1 {
        println!("\n{:<12} {:<11} {:>14}  run folder", "recipe", "status", "valid accuracy");
        for outcome in outcomes {
            let accuracy = outcome.accuracy.map_or("-".to_string(), |a| format!("{:.1}%", a * 100.0));
            let folder = outcome.folder.as_ref().map_or(String::new(), |f| f.display().to_string());
            println!("{:<12} {:<11} {:>14}  {folder}", outcome.name, outcome.status, accuracy);
        }
    }
}

fn relative(path: &Path) -> String {
    let current = std::env::current_dir().ok().and_then(|dir| std::fs::canonicalize(dir).ok());
    match current.and_then(|dir| path.strip_prefix(&dir).ok().map(Path::to_path_buf)) {
        Some(relative) => relative.display().to_string(),
        None => path.display().to_string(),
    }
}

#[cfg(test)]
mod tests {
    /// Whether or not the global pool exists already (in a test process it may), the work runs
    /// on the threads asked for.
    #[test]
    fn threads_are_honoured_when_the_global_pool_exists() {
        let _ = rayon::ThreadPoolBuilder::new().num_threads(2).build_global();
        assert_eq!(super::with_threads(Some(3), rayon::current_num_threads), 3);
        assert_eq!(super::with_threads(Some(1), rayon::current_num_threads), 1);
        assert_eq!(super::with_threads(None, rayon::current_num_threads), rayon::current_num_threads());
    }
}
