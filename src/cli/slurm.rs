//! `tlrun run … --on slurm`: the recipes that must run become `sbatch` jobs on an existing Slurm
//! cluster, each `--dependency=afterok:` on the jobs of the recipes it starts from, so the
//! recipe graph is the job graph. A sweep is a job array (one task per variant that is not up to
//! date) followed by a job that writes its summary. Jobs run this same binary on the same paths
//! (a shared file system), so a job computes what a local run computes. Every submission is
//! appended to `runs/slurm/jobs.jsonl`, which `tlrun status` reads back.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::{Deserialize, Serialize};

use super::run_args::RunArgs;
use super::workspace::Workspace;

/// Where job logs and the job list go.
const SLURM_FOLDER: &str = "runs/slurm";
const JOBS_FILE: &str = "jobs.jsonl";

/// One recipe as the submitter sees it.
pub struct SlurmRecipe {
    pub path: PathBuf,
    pub name: String,
    pub source: String,
    /// Recipes it starts from (their jobs come first).
    pub needs: Vec<PathBuf>,
    /// Whether it must run (stale, or a sweep with stale variants).
    pub stale: bool,
}

/// One line of runs/slurm/jobs.jsonl.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SubmittedJob {
    pub job: String,
    pub recipe: String,
    /// `train`, `variants` (an array) or `summary`.
    pub kind: String,
    pub log: PathBuf,
    pub after: Vec<String>,
}

fn sbatch(args: &RunArgs, name: &str, log: &str, after: &[String], extra: &[String], command: &str) -> Result<String, String> {
    let mut sbatch = Command::new("sbatch");
    sbatch.arg("--parsable").arg(format!("--job-name=tlrun:{name}")).arg(format!("--output={log}"));
    if !after.is_empty() {
        sbatch.arg(format!("--dependency=afterok:{}", after.join(":"))).arg("--kill-on-invalid-dep=yes");
    }
    if let Some(partition) = &args.partition {
        sbatch.arg(format!("--partition={partition}"));
    }
    if let Some(gres) = &args.gres {
        sbatch.arg(format!("--gres={gres}"));
    }
    if let Some(time) = &args.time {
        sbatch.arg(format!("--time={time}"));
    }
    sbatch.args(&args.sbatch_arg).args(extra).arg(format!("--wrap={command}"));
    let output = sbatch.output().map_err(|error| format!("cannot run sbatch ({error}): is this a Slurm submit host?"))?;
    if !output.status.success() {
        return Err(format!("sbatch refused the job: {}", String::from_utf8_lossy(&output.stderr).trim()));
    }
    // `--parsable` prints `jobid` or `jobid;cluster`.
    let printed = String::from_utf8_lossy(&output.stdout);
    match printed.trim().split(';').next().map(str::trim).filter(|id| !id.is_empty()) {
        Some(id) => Ok(id.to_string()),
        None => Err(format!("sbatch accepted the job but printed no job id: {printed:?}")),
    }
}

fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Submit the stale recipes in `recipes` (dependencies first); with `--wait`, wait for them and
/// fail naming each failed job and its log.
pub fn submit(recipes: &[SlurmRecipe], args: &RunArgs, workspace: &Workspace) -> u8 {
    let executable = std::env::current_exe().and_then(std::fs::canonicalize).unwrap_or_else(|_| PathBuf::from("tlrun"));
    let exe = quoted(&executable.display().to_string());
    let logs = std::fs::canonicalize(".").unwrap_or_default().join(SLURM_FOLDER);
    if let Err(error) = std::fs::create_dir_all(&logs) {
        return super::output::usage_error(format!("cannot create {}: {error}", logs.display()));
    }
    let device = quoted(&args.device);
    let force = if args.force { " --force" } else { "" };
    let mut job_of: Vec<(PathBuf, String)> = Vec::new();
    let mut submitted: Vec<SubmittedJob> = Vec::new();
    for recipe in recipes {
        if !recipe.stale {
            eprintln!("{}: up to date", recipe.name);
            continue;
        }
        let after: Vec<String> = recipe.needs.iter().filter_map(|need| job_of.iter().find(|(path, _)| path == need).map(|(_, job)| job.clone())).collect();
        let path = quoted(&recipe.path.display().to_string());
        let is_sweep = crate::sweep::sweep_of(&crate::syntax::parse(&recipe.source).0).is_some();
        let result = if is_sweep {
            submit_sweep(recipe, args, workspace, &exe, &path, &device, &logs, &after, &mut submitted)
        } else {
            let log = logs.join(format!("{}-%j.log", recipe.name));
            sbatch(args, &recipe.name, &log.display().to_string(), &after, &[], &format!("exec {exe} run {path} --device {device}{force}")).map(|job| {
                submitted.push(SubmittedJob { job: job.clone(), recipe: recipe.name.clone(), kind: "train".into(), log: log.with_file_name(format!("{}-{job}.log", recipe.name)), after: after.clone() });
                Some(job)
            })
        };
        match result {
            Ok(Some(job)) => {
                println!("{}: submitted job {job}{}", recipe.name, if after.is_empty() { String::new() } else { format!(" after {}", after.join(", ")) });
                job_of.push((recipe.path.clone(), job));
            }
            Ok(None) => eprintln!("{}: every variant up to date", recipe.name),
            Err(message) => return super::output::usage_error(message),
        }
    }
    let lines: String = submitted.iter().filter_map(|job| serde_json::to_string(job).ok()).map(|line| line + "\n").collect();
    let jobs_file = logs.join(JOBS_FILE);
    let appended = std::fs::OpenOptions::new().create(true).append(true).open(&jobs_file).and_then(|mut file| std::io::Write::write_all(&mut file, lines.as_bytes()));
    if let Err(error) = appended {
        eprintln!("warning: cannot record the jobs in {}: {error}", jobs_file.display());
    }
    if !args.wait {
        println!("`tlrun status` shows their state; logs in {}", logs.display());
        return 0;
    }
    let code = wait_for(&submitted);
    // The sweeps' summaries are written by their last jobs: compare them now, as a local run does.
    let swept: Vec<PathBuf> = recipes
        .iter()
        .filter(|recipe| crate::sweep::sweep_of(&crate::syntax::parse(&recipe.source).0).is_some())
        .map(|recipe| super::sweep::sweep_folder(args, &recipe.name))
        .collect();
    super::report::print_sweep_pairs(&swept);
    code
}

/// A sweep: a job array over its stale variants, then one job (after the array) that finds them
/// all up to date and writes the summary. Returns the summary job, whose success means the sweep's.
#[allow(clippy::too_many_arguments)]
fn submit_sweep(
    recipe: &SlurmRecipe,
    args: &RunArgs,
    workspace: &Workspace,
    exe: &str,
    path: &str,
    device: &str,
    logs: &Path,
    after: &[String],
    submitted: &mut Vec<SubmittedJob>,
) -> Result<Option<String>, String> {
    let folder = std::fs::canonicalize(".").unwrap_or_default().join(super::sweep::sweep_folder(args, &recipe.name));
    let (_, stale) = super::sweep::plan_variants(&recipe.path, &recipe.source, args, &folder, workspace).map_err(|_| format!("{}: the sweep cannot be planned", recipe.name))?;
    let mut dependencies = after.to_vec();
    if !stale.is_empty() {
        std::fs::create_dir_all(&folder).map_err(|error| format!("cannot create {}: {error}", folder.display()))?;
        let list = folder.join("slurm-variants.txt");
        let names: String = stale.iter().map(|planned| format!("{}\n", planned.variant.name)).collect();
        crate::atomic_file::write_atomic(&list, names.as_bytes()).map_err(|diagnostic| diagnostic.message)?;
        let command = format!(
            "name=$(sed -n \"$((SLURM_ARRAY_TASK_ID + 1))p\" {}); exec {exe} run {path} --variant \"$name\" --device {device} --out {}/\"$name\"",
            quoted(&list.display().to_string()),
            quoted(&folder.display().to_string())
        );
        let log = logs.join(format!("{}-%A_%a.log", recipe.name));
        let array = sbatch(args, &recipe.name, &log.display().to_string(), after, &[format!("--array=0-{}", stale.len() - 1)], &command)?;
        println!("{}: submitted job array {array} ({} variants)", recipe.name, stale.len());
        let log = PathBuf::from(log.display().to_string().replace("%A", &array).replace("%a", "*"));
        submitted.push(SubmittedJob { job: array.clone(), recipe: recipe.name.clone(), kind: "variants".into(), log, after: after.to_vec() });
        dependencies = vec![array];
    }
    let log = logs.join(format!("{}-summary-%j.log", recipe.name));
    let out = quoted(&folder.display().to_string());
    let summary = sbatch(args, &format!("{}-summary", recipe.name), &log.display().to_string(), &dependencies, &[], &format!("exec {exe} run {path} --device {device} --out {out}"))?;
    let log = PathBuf::from(log.display().to_string().replace("%j", &summary));
    submitted.push(SubmittedJob { job: summary.clone(), recipe: recipe.name.clone(), kind: "summary".into(), log, after: dependencies });
    Ok(Some(summary))
}

/// A job's state from `scontrol show job` (every task of an array): PENDING, RUNNING,
/// COMPLETED, FAILED…; `None` when the controller no longer knows the job.
pub fn job_states(job: &str) -> Option<Vec<String>> {
    let output = Command::new("scontrol").args(["show", "job", "-o", job]).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let states: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().find_map(|field| field.strip_prefix("JobState=")).map(str::to_string))
        .collect();
    (!states.is_empty()).then_some(states)
}

fn wait_for(jobs: &[SubmittedJob]) -> u8 {
    let finished = |states: &[String]| states.iter().all(|state| !matches!(state.as_str(), "PENDING" | "RUNNING" | "CONFIGURING" | "COMPLETING" | "SUSPENDED"));
    loop {
        let all_done = jobs.iter().all(|job| job_states(&job.job).is_none_or(|states| finished(&states)));
        if all_done {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(500));
    }
    let mut failed = 0;
    for job in jobs {
        let states = job_states(&job.job).unwrap_or_else(|| vec!["UNKNOWN".to_string()]);
        if states.iter().all(|state| state == "COMPLETED") {
            println!("job {} ({} {}): completed", job.job, job.recipe, job.kind);
        } else {
            failed += 1;
            println!("job {} ({} {}): {}; log {}", job.job, job.recipe, job.kind, states.join(", "), job.log.display());
        }
    }
    if failed == 0 { 0 } else { 1 }
}

/// `tlrun status`: every job `tlrun run --on slurm` submitted from here, with its state now.
pub fn status() -> u8 {
    let path = Path::new(SLURM_FOLDER).join(JOBS_FILE);
    let jobs: Vec<SubmittedJob> = crate::run_files::read_json_lines(&path);
    if jobs.is_empty() {
        println!("no Slurm jobs submitted from here ({} is empty or missing)", path.display());
        return 0;
    }
    println!("{:<10} {:<20} {:<9} {:<22} log", "job", "recipe", "kind", "state");
    for job in &jobs {
        let state = job_states(&job.job).map_or("finished (purged by Slurm)".to_string(), |states| {
            let mut unique = states.clone();
            unique.dedup();
            unique.join(",")
        });
        println!("{:<10} {:<20} {:<9} {:<22} {}", job.job, job.recipe, job.kind, state, job.log.display());
    }
    0
}
