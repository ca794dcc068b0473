//! `tlrun run` on a recipe with a `sweep`: every variant is a normal run in its own folder
//! (`runs/<recipe>/sweep/<variant>/`, or under `--out`), skipped while its inputs' content hash is
//! unchanged, run `--jobs N` at a time (each a `tlrun run --variant` process with its share of
//! the cores, its output in `<variant>.log`), then summarised: summary.json, summary.html and
//! summary.png with each group's mean and spread over seeds.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use super::pipeline;
use super::run_args::RunArgs;
use crate::report::sweep_summary::{self, VARIANT_FILE, VariantRecord};
use crate::runtime::runner::{self, RunOptions};
use crate::sweep::Variant;
use super::workspace::Workspace;

/// The folder a recipe's sweep runs in.
pub fn sweep_folder(args: &RunArgs, recipe_name: &str) -> PathBuf {
    args.out.clone().unwrap_or_else(|| PathBuf::from("runs").join(recipe_name).join("sweep"))
}

fn checked(path: &Path, variant: &Variant, workspace: &Workspace) -> Option<crate::check::Runnable> {
    let checked = workspace.runnable_text(path, variant.source.clone());
    if checked.is_none() {
        eprintln!("variant {} does not check (above)", variant.name);
    }
    checked
}

/// The sweep's variants, and those that must run (not up to date, or `--force`) with their
/// content hashes. `Err` is the exit status after saying why.
pub fn plan_variants(path: &Path, source: &str, args: &RunArgs, folder: &Path, workspace: &Workspace) -> Result<(Vec<Variant>, Vec<StaleVariant>), u8> {
    let variants = crate::sweep::variants(source).map_err(|reason| super::output::usage_error(format!("{}: {reason} (`tlrun lint` says more)", path.display())))?;
    let mut stale = Vec::new();
    for variant in &variants {
        let Some((recipe, hash)) = prepare(path, variant, workspace) else { return Err(1) };
        let run_folder = folder.join(&variant.name);
        let recorded: Option<VariantRecord> = std::fs::read_to_string(run_folder.join(VARIANT_FILE)).ok().and_then(|text| serde_json::from_str(&text).ok());
        let current = recorded.is_some_and(|record| record.source_hash == hash) && run_folder.join(crate::run_files::SUMMARY).is_file();
        if current && !args.force {
            eprintln!("{}: up to date", variant.name);
        } else {
            stale.push(StaleVariant { variant: variant.clone(), recipe, hash });
        }
    }
    Ok((variants, stale))
}

/// A variant that must run: checked once, with the content hash its record will keep.
pub struct StaleVariant {
    pub variant: Variant,
    recipe: crate::check::Runnable,
    hash: String,
}

/// The variant checked as a recipe, and the content hash of its inputs.
fn prepare(path: &Path, variant: &Variant, workspace: &Workspace) -> Option<(crate::check::Runnable, String)> {
    let recipe = checked(path, variant, workspace)?;
    let hash = pipeline::source_hash(&recipe, path, &variant.source, workspace);
    Some((recipe, hash))
}

/// Run (or skip, when up to date) every variant of the sweep in `source`, then write the summary.
pub fn run_variants(path: &Path, source: &str, recipe_name: &str, args: &RunArgs, workspace: &Workspace) -> u8 {
    let folder = sweep_folder(args, recipe_name);
    let (variants, stale) = match plan_variants(path, source, args, &folder, workspace) {
        Ok(planned) => planned,
        Err(code) => return code,
    };
    if args.dry_run {
        for planned in &stale {
            println!("would run variant {}", planned.variant.name);
        }
        return 0;
    }
    let jobs = args.jobs.max(1).min(stale.len().max(1));
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let threads = args.threads.unwrap_or((cores / jobs).max(1));
    let mut failed = Vec::new();
    if jobs == 1 {
        for (index, planned) in stale.iter().enumerate() {
            let name = &planned.variant.name;
            eprintln!("[{}/{}] {name}", index + 1, stale.len());
            if let Err(code) = run_one(path, planned, &folder.join(name), args, workspace) {
                eprintln!("[{}/{}] {name} failed (exit {code})", index + 1, stale.len());
                failed.push(name.clone());
            }
        }
    } else {
        failed = run_parallel(path, &stale, &folder, jobs, threads, args);
    }
    let names: Vec<String> = variants.iter().map(|variant| variant.name.clone()).collect();
    match sweep_summary::summarize(&folder, recipe_name, &names).and_then(|summary| {
        let html = crate::report::sweep_report::write_summary(&folder, &summary)?;
        Ok((summary, html))
    }) {
        Ok((summary, html)) => {
            println!("{recipe_name}: {} variants", summary.variants.len());
            for group in &summary.groups {
                println!("  {:<40} {}", sweep_summary::describe(&group.values), sweep_summary::mean_and_spread(group));
            }
            println!("sweep summary: {}", html.display());
        }
        Err(diagnostic) => super::output::print_runtime_error(&diagnostic, path),
    }
    if failed.is_empty() {
        0
    } else {
        eprintln!("{} variant(s) failed: {}", failed.len(), failed.join(", "));
        1
    }
}

/// One variant in this process, into `run_folder` (emptied first: its inputs changed).
fn run_one(path: &Path, planned: &StaleVariant, run_folder: &Path, args: &RunArgs, workspace: &Workspace) -> Result<(), u8> {
    let StaleVariant { variant, recipe, hash } = planned;
    if run_folder.exists() {
        std::fs::remove_dir_all(run_folder).map_err(|error| super::output::usage_error(format!("cannot clear {}: {error}", run_folder.display())))?;
    }
    let options = RunOptions {
        device: args.device.clone(),
        out: Some(run_folder.to_path_buf()),
        zoo: workspace.zoo.clone(),
        runs_root: PathBuf::from("."),
        interrupt: super::output::interrupt_flag(),
    };
    let pretrained = workspace.pretrained_weights(recipe, path).map_err(|diagnostic| {
        super::output::print_runtime_error(&diagnostic, path);
        1u8
    })?;
    match runner::run(recipe, path, &variant.source, pretrained.as_deref(), &options) {
        Ok(outcome) => {
            eprintln!("{}: valid accuracy {:.1}%", variant.name, outcome.evaluation.accuracy * 100.0);
            let record = VariantRecord { name: variant.name.clone(), values: variant.values.clone(), source_hash: hash.to_string() };
            // A record of strings and numbers always encodes; `{}` would only mark it stale.
            let text = serde_json::to_string_pretty(&record).unwrap_or_else(|_| "{}".to_string());
            crate::atomic_file::write_atomic(&run_folder.join(VARIANT_FILE), text.as_bytes()).map_err(|diagnostic| {
                super::output::print_runtime_error(&diagnostic, path);
                1
            })
        }
        Err(failure) => Err(super::output::report_failure(&failure, path)),
    }
}

/// `tlrun run RECIPE --variant NAME`: one variant, as a child of a parallel sweep.
pub fn run_child(path: &Path, name: &str, args: &RunArgs, workspace: &Workspace) -> u8 {
    let source = match workspace.source(path) {
        Ok(source) => source.text.clone(),
        Err(reason) => return super::output::usage_error(format!("cannot read {}: {reason}", path.display())),
    };
    let variants = match crate::sweep::variants(&source) {
        Ok(variants) => variants,
        Err(reason) => return super::output::usage_error(reason),
    };
    let Some(variant) = variants.iter().find(|variant| variant.name == name) else {
        return super::output::usage_error(format!("{} has no variant `{name}`", path.display()));
    };
    let Some(out) = &args.out else { return super::output::usage_error("--variant needs --out") };
    let Some((recipe, hash)) = prepare(path, variant, workspace) else { return 1 };
    match run_one(path, &StaleVariant { variant: variant.clone(), recipe, hash }, out, args, workspace) {
        Ok(()) => 0,
        Err(code) => code,
    }
}

/// Up to `jobs` child processes at a time, one line as each starts and ends; the output of each
/// goes to `<folder>/<variant>.log`. Returns the variants that failed.
fn run_parallel(path: &Path, stale: &[StaleVariant], folder: &Path, jobs: usize, threads: usize, args: &RunArgs) -> Vec<String> {
    let executable = std::env::current_exe().unwrap_or_else(|_| PathBuf::from("tlrun"));
    let mut failed = Vec::new();
    let mut running: Vec<(String, Child, PathBuf, std::time::Instant)> = Vec::new();
    let mut queue = stale.iter().map(|planned| planned.variant.name.clone()).collect::<std::collections::VecDeque<_>>();
    let total = stale.len();
    let mut done = 0;
    if let Err(error) = std::fs::create_dir_all(folder) {
        eprintln!("error: cannot create {}: {error}", folder.display());
        return stale.iter().map(|planned| planned.variant.name.clone()).collect();
    }
    while !queue.is_empty() || !running.is_empty() {
        while running.len() < jobs {
            let Some(name) = queue.pop_front() else { break };
            let log = folder.join(format!("{name}.log"));
            let spawned = std::fs::File::create(&log).and_then(|file| {
                let errors = file.try_clone()?;
                Command::new(&executable)
                    .arg("run")
                    .arg(path)
                    .args(["--variant", &name, "--device", &args.device, "--threads", &threads.to_string()])
                    .arg("--out")
                    .arg(folder.join(&name))
                    .env("RAYON_NUM_THREADS", threads.to_string())
                    .stdin(Stdio::null())
                    .stdout(file)
                    .stderr(errors)
                    .spawn()
            });
            match spawned {
                Ok(child) => {
                    eprintln!("started {name} ({threads} thread(s)), log {}", log.display());
                    running.push((name, child, log, std::time::Instant::now()));
                }
                Err(error) => {
                    eprintln!("error: cannot start {name}: {error}");
                    failed.push(name);
                }
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
        let mut index = 0;
        while index < running.len() {
            let finished = running[index].1.try_wait().ok().flatten();
            match finished {
                Some(status) => {
                    let (name, _, log, started) = running.remove(index);
                    done += 1;
                    let summary: Option<crate::run_files::Summary> =
                        std::fs::read_to_string(folder.join(&name).join(crate::run_files::SUMMARY)).ok().and_then(|text| serde_json::from_str(&text).ok());
                    match (status.success(), summary) {
                        (true, Some(summary)) => eprintln!(
                            "[{done}/{total}] {name}: valid accuracy {:.1}% in {:.0} s",
                            summary.final_valid_accuracy * 100.0,
                            started.elapsed().as_secs_f64()
                        ),
                        _ => {
                            eprintln!("[{done}/{total}] {name} failed ({status}); log {}", log.display());
                            failed.push(name);
                        }
                    }
                }
                None => index += 1,
            }
        }
    }
    failed
}
