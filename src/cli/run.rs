use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use clap::Args;

use super::pipeline::{self, RunRecord};
use crate::runtime::runner::{self, RunOptions};
use crate::sha256::sha256_file;
use crate::zoo::Zoo;

#[derive(Args)]
pub struct RunArgs {
    /// A recipe, or a folder whose recipes all run (dependencies first).
    pub recipe: PathBuf,
    /// `cpu` (default) or `cuda`, `cuda:N` (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Run folder (default: runs/<recipe>/<timestamp>/ in the current folder). Single recipes only.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// CPU threads for training (default: all cores; also RAYON_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Say what would run and why, without running anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Run every recipe, even those whose outputs are up to date.
    #[arg(long)]
    pub force: bool,
    /// Continue the newest unfinished run of this recipe from its checkpoint.
    #[arg(long)]
    pub resume: bool,
    /// A recipe with a `sweep`: run this many variants at once, each with its share of the cores.
    #[arg(long, default_value_t = 1)]
    pub jobs: usize,
    /// Run one variant of the recipe's sweep (what `--jobs` starts in each child process).
    #[arg(long, hide = true)]
    pub variant: Option<String>,
    /// Where to run: here (`local`), or as `sbatch` jobs on a Slurm cluster (`slurm`), one per
    /// recipe after the recipes it starts from, a job array per sweep.
    #[arg(long, value_enum, default_value_t = Scheduler::Local)]
    pub on: Scheduler,
    /// Slurm partition (`sbatch --partition`).
    #[arg(long)]
    pub partition: Option<String>,
    /// Slurm generic resources, e.g. `gpu:1` (`sbatch --gres`).
    #[arg(long)]
    pub gres: Option<String>,
    /// Slurm time limit per job (`sbatch --time`).
    #[arg(long)]
    pub time: Option<String>,
    /// Any other `sbatch` option, given as is (repeatable).
    #[arg(long, allow_hyphen_values = true)]
    pub sbatch_arg: Vec<String>,
    /// With `--on slurm`: wait until the jobs end, and fail naming each failed job and its log.
    #[arg(long)]
    pub wait: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scheduler {
    Local,
    Slurm,
}

/// Ctrl-C sets this flag; the runner finishes its step, checkpoints and stops.
pub fn interrupt_flag() -> Option<Arc<AtomicBool>> {
    let flag = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, Arc::clone(&flag)).ok()?;
    Some(flag)
}

/// Exit status after Ctrl-C, as shells expect (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;

/// Print a failed run and choose its exit status.
pub fn report_failure(failure: &runner::RunFailure, path: &Path) -> u8 {
    super::output::print_runtime_error(&failure.diagnostic, path);
    if failure.diagnostic.code == crate::diagnostics::Code::Interrupted {
        return INTERRUPTED;
    }
    if let Some(folder) = &failure.folder {
        eprintln!("run folder (last good weights kept): {}", folder.display());
    }
    1
}

/// Continue the run in `folder`; `current` is the recipe file to compare against (default: where
/// the run's recipe came from).
pub fn resume_run(folder: &Path, current: Option<&Path>, device: &str, zoo: &Zoo) -> u8 {
    let (origin_path, saved_source) = match super::resume::original(folder) {
        Ok(found) => found,
        Err(diagnostic) => {
            super::output::print_runtime_error(&diagnostic, folder);
            return 2;
        }
    };
    let recipe_path = current.map(Path::to_path_buf).unwrap_or(origin_path);
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let world = super::DiskWorld { base, zoo, strict: false, published: None };
    let stem = recipe_path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    let (saved, diagnostics) = crate::check::check_source(&saved_source, &stem, &world);
    let Ok((saved, _)) = crate::check::Runnable::new(saved, diagnostics) else {
        eprintln!("error: the recipe saved in {} no longer checks", folder.display());
        return 1;
    };
    if let Err(diagnostic) = super::resume::refuse_if_changed(folder, &saved, &saved_source, &recipe_path, zoo) {
        super::output::print_runtime_error(&diagnostic, &recipe_path);
        return 1;
    }
    let options = RunOptions { device: device.to_string(), out: None, zoo: zoo.clone(), runs_root: PathBuf::from("."), interrupt: interrupt_flag() };
    match runner::resume(&saved, &recipe_path, &saved_source, &options, folder) {
        Ok(outcome) => {
            println!("{}: valid accuracy {:.1}% (loss {:.4})", saved.name, outcome.evaluation.accuracy * 100.0, outcome.evaluation.loss);
            println!("run folder: {}", outcome.folder.display());
            0
        }
        Err(failure) => report_failure(&failure, &recipe_path),
    }
}

struct Outcome {
    name: String,
    status: &'static str,
    accuracy: Option<f64>,
    folder: Option<PathBuf>,
}

pub fn run(args: &RunArgs, zoo: &Zoo) -> u8 {
    with_threads(args.threads, || run_here(args, zoo))
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

fn run_here(args: &RunArgs, zoo: &Zoo) -> u8 {
    if let Some(name) = &args.variant {
        return super::sweep::run_child(&args.recipe, name, args, zoo);
    }
    let targets: Vec<PathBuf> = if args.recipe.is_dir() {
        let mut recipes: Vec<PathBuf> = std::fs::read_dir(&args.recipe)
            .map(|entries| entries.filter_map(Result::ok).map(|entry| entry.path()).filter(|p| p.extension().is_some_and(|e| e == "tl")).collect())
            .unwrap_or_default();
        recipes.sort();
        recipes
    } else {
        vec![args.recipe.clone()]
    };
    if targets.is_empty() || !targets.iter().all(|target| target.is_file()) {
        return super::output::usage_error(format!("no recipe at {}", args.recipe.display()));
    }
    if args.resume {
        if targets.len() != 1 {
            return super::output::usage_error("--resume takes one recipe file");
        }
        let Some(recipe) = super::plan::load_checked(&targets[0], zoo) else { return 1 };
        let Some(folder) = super::resume::latest_unfinished(Path::new("."), &recipe.name) else {
            return super::output::usage_error(format!("no unfinished run of `{}` with a checkpoint under runs/", recipe.name));
        };
        return resume_run(&folder, Some(&targets[0]), &args.device, zoo);
    }
    let interrupt = interrupt_flag();
    let order = match pipeline::run_order(&targets) {
        Ok(order) => order,
        Err(message) => return super::output::usage_error(message),
    };
    // Decide first what runs, so that `--out` can be checked before anything trains.
    let mut planned = Vec::new();
    // Recipes that will run: whatever needs them is stale too.
    let mut rerun: Vec<PathBuf> = Vec::new();
    for (path, needs) in &order {
        let Some(recipe) = super::plan::load_checked(path, zoo) else { return 1 };
        let source = match crate::recipe_text::read_recipe_text(path) {
            Ok(source) => source,
            Err(reason) => return super::output::usage_error(format!("cannot read {}: {reason}", path.display())),
        };
        let hash = pipeline::source_hash(&recipe, path, &source, zoo);
        let upstream = needs.iter().find(|need| rerun.contains(need));
        let reason = if args.force {
            Some("--force".to_string())
        } else if let Some(upstream) = upstream {
            Some(format!("{} runs first", relative(upstream)))
        } else {
            pipeline::staleness(&recipe, path, &hash, zoo)
        };
        if reason.is_some() {
            rerun.push(path.clone());
        }
        // Training up to date: its `predict` steps may still be stale (a folder changed).
        let predict_reason = if reason.is_none() {
            pipeline::read_record(path).and_then(|record| pipeline::prediction_staleness(&recipe, path, &record))
        } else {
            None
        };
        planned.push((path, recipe, source, hash, reason, predict_reason));
    }
    // A recipe whose dependencies are up to date runs like one recipe, `--out` included.
    if args.out.is_some() && rerun.len() > 1 {
        let names: Vec<String> = rerun.iter().map(|path| relative(path)).collect();
        return super::output::usage_error(format!(
            "--out names one run folder, but {} recipes need to run: {}; run the others first, or drop --out",
            rerun.len(),
            names.join(", ")
        ));
    }
    if args.on == Scheduler::Slurm {
        let recipes: Vec<super::slurm::SlurmRecipe> = planned
            .iter()
            .zip(&order)
            .map(|((path, recipe, source, _, reason, predict_reason), (_, needs))| super::slurm::SlurmRecipe {
                path: (*path).clone(),
                name: recipe.name.clone(),
                source: source.clone(),
                needs: needs.clone(),
                stale: reason.is_some() || predict_reason.is_some(),
            })
            .collect();
        return super::slurm::submit(&recipes, args, zoo);
    }
    let mut outcomes = Vec::new();
    let mut swept: Vec<PathBuf> = Vec::new();
    for (path, recipe, source, planned_hash, reason, predict_reason) in planned {
        let display = relative(path);
        if let (None, Some(predict_reason), Some(record)) = (&reason, &predict_reason, pipeline::read_record(path)) {
            if args.dry_run {
                println!("would predict {display}: {predict_reason}");
                continue;
            }
            eprintln!("{display}: training up to date; predicting ({predict_reason})");
            match runner::predict_only(&recipe, path, &record.run_folder, &args.device) {
                Ok(notes) => {
                    for note in &notes {
                        eprintln!("note: {note}");
                    }
                    let record = RunRecord {
                        predictions_hash: pipeline::predictions_hash(&recipe, path, &record.run_folder),
                        predictions: pipeline::prediction_outputs(&recipe, path),
                        ..record
                    };
                    if let Err(diagnostic) = pipeline::write_record(path, &record) {
                        super::output::print_runtime_error(&diagnostic, path);
                    }
                    outcomes.push(Outcome { name: recipe.name.clone(), status: "predicted", accuracy: Some(record.valid_accuracy), folder: Some(record.run_folder) });
                }
                Err(diagnostic) => {
                    super::output::print_runtime_error(&diagnostic, path);
                    return 1;
                }
            }
            continue;
        }
        let Some(reason) = reason else {
            let record = pipeline::read_record(path);
            eprintln!("{display}: up to date");
            outcomes.push(Outcome {
                name: recipe.name.clone(),
                status: "up to date",
                accuracy: record.as_ref().map(|r| r.valid_accuracy),
                folder: record.map(|r| r.run_folder),
            });
            continue;
        };
        // Upstream recipes ran since the plan was made: check again (a zoo card they published
        // may say more now, e.g. its source data), and hash the new inputs.
        let recipe = if rerun.len() > 1 && !args.dry_run {
            match super::plan::load_checked(path, zoo) {
                Some(recipe) => recipe,
                None => return 1,
            }
        } else {
            recipe
        };
        let hash = if rerun.len() > 1 { pipeline::source_hash(&recipe, path, &source, zoo) } else { planned_hash };
        // A sweep runs its variants (each skipped while up to date) and summarises them.
        if crate::sweep::sweep_of(&crate::syntax::parse(&source).0).is_some() {
            let code = super::sweep::run_variants(path, &source, &recipe.name, args, zoo);
            if code != 0 {
                return code;
            }
            swept.push(super::sweep::sweep_folder(args, &recipe.name));
            outcomes.push(Outcome { name: recipe.name.clone(), status: "swept", accuracy: None, folder: None });
            continue;
        }
        if args.dry_run {
            println!("would run {display}: {reason}");
            continue;
        }
        if rerun.len() > 1 {
            eprintln!("running {display} ({reason})");
        } else {
            eprintln!("running {display}");
        }
        let options = RunOptions {
            device: args.device.clone(),
            out: args.out.clone(),
            zoo: zoo.clone(),
            runs_root: PathBuf::from("."),
            interrupt: interrupt.clone(),
        };
        match runner::run(&recipe, path, &source, &options) {
            Ok(outcome) => {
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
                let outputs = pipeline::outputs(&recipe, path, zoo)
                    .into_iter()
                    .filter_map(|output| sha256_file(&output).ok().map(|sha| (output, sha)))
                    .collect();
                let record = RunRecord {
                    source_hash: hash,
                    outputs,
                    run_folder: outcome.folder.clone(),
                    valid_accuracy: outcome.evaluation.accuracy,
                    predictions_hash: pipeline::predictions_hash(&recipe, path, &outcome.folder),
                    predictions: pipeline::prediction_outputs(&recipe, path),
                };
                if let Err(diagnostic) = pipeline::write_record(path, &record) {
                    super::output::print_runtime_error(&diagnostic, path);
                }
                outcomes.push(Outcome { name: recipe.name.clone(), status: "ran", accuracy: Some(outcome.evaluation.accuracy), folder: Some(outcome.folder) });
            }
            Err(failure) => return report_failure(&failure, path),
        }
    }
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
    super::report::print_sweep_pairs(&swept);
    if outcomes.len() > 1 {
        println!("\n{:<12} {:<11} {:>14}  run folder", "recipe", "status", "valid accuracy");
        for outcome in &outcomes {
            let accuracy = outcome.accuracy.map_or("-".to_string(), |a| format!("{:.1}%", a * 100.0));
            let folder = outcome.folder.as_ref().map_or(String::new(), |f| f.display().to_string());
            println!("{:<12} {:<11} {:>14}  {folder}", outcome.name, outcome.status, accuracy);
        }
    }
    0
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
