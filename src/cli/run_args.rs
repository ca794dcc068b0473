//! What `tlrun run` accepts: its flags, read by the local runner, sweeps and the Slurm hand-off.

use std::path::PathBuf;

use clap::Args;

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
