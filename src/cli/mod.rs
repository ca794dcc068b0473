//! The `tlrun` command line. Exit codes: 0 success, 1 findings or a failed run, 2 usage or IO errors.

mod backbone_ranking;
mod bench;
mod data;
mod disk_world;
mod explain;
mod export;
mod graph;
mod lint;
mod lr_find;
mod output;
mod pipeline;
mod plan;
mod predict;
mod probe;
mod recipe_edit;
mod recipe_file;
mod recipe_sources;
pub(crate) mod report;
mod resume;
mod run;
mod run_args;
mod slurm;
mod sweep;
mod workspace;
mod zoo;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

pub use disk_world::DiskWorld;
use graph::GraphFormat;
pub use recipe_file::RecipeFile;

#[derive(Parser)]
#[command(name = "tlrun", version, about = "Transfer learning as a checkable recipe", long_about = None)]
pub struct Cli {
    /// Zoo folder (default: $TLRUN_ZOO, else ./zoo).
    #[arg(long, global = true)]
    pub zoo: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Check recipes and report every problem (folders are searched for *.tl).
    Lint(lint::LintArgs),
    /// Print the documentation of a diagnostic code, e.g. `tlrun explain TL1002`.
    Explain { code: String },
    /// Print the recipe's step graph.
    Graph {
        recipe: PathBuf,
        #[arg(long, value_enum, default_value_t = GraphFormat::Text)]
        format: GraphFormat,
    },
    /// Show, per stage, what trains at which learning rate and image size, without running anything.
    Plan { recipe: PathBuf },
    /// Continue an interrupted run from its checkpoint.
    Resume {
        run: PathBuf,
        #[arg(long, default_value = "cpu")]
        device: String,
    },
    /// Rebuild a run's report.html and plots.
    Report { run: PathBuf },
    /// List the runs under runs/.
    Runs {
        #[arg(long, default_value = ".")]
        root: PathBuf,
    },
    /// Put runs side by side: a table, and compare.html with overlaid curves.
    Compare {
        #[arg(required = true, num_args = 2..)]
        runs: Vec<PathBuf>,
        #[arg(long, default_value = "compare.html")]
        out: PathBuf,
    },
    /// The model zoo: list, show, import, verify.
    #[command(subcommand)]
    Zoo(zoo::ZooCommand),
    /// Training and inference throughput (images/s), peak memory and lint latency.
    Bench(bench::BenchArgs),
    /// Data utilities: `tlrun data export shapes-target --out DIR`.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Run a recipe: train, evaluate, write the run folder, export (`tlrun recipe.tl` does the same).
    Run(run::RunArgs),
    /// The learning-rate range test on one stage: fastai's valley and steep suggestions and a plot.
    LrFind(lr_find::LrFindArgs),
    /// Where to cut: LogME and a linear probe at every candidate cut, domain shift, a recommendation.
    Probe(probe::ProbeArgs),
    /// Apply a trained model to images with its run's preprocessing: CSV/JSONL or a table;
    /// accuracy and a confusion matrix on a labelled folder.
    Predict(predict::PredictArgs),
    /// Write a trained model as ONNX (for ONNX Runtime) or torchvision-named safetensors.
    Export(export::ExportArgs),
    /// The Slurm jobs `tlrun run --on slurm` submitted from here, with their state now.
    Status,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    Human,
    Json,
    Github,
}

pub fn main() -> ExitCode {
    // Output into a closed pipe (`tlrun lint | head`) ends the process quietly, as it does for
    // other Unix tools; Rust's default (SIGPIPE ignored) made every `println!` after it panic.
    #[cfg(unix)]
    // SAFETY: restoring a signal's default disposition at start-up, before any thread exists.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let mut args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    // `tlrun recipe.tl` means `tlrun run recipe.tl`.
    if args.get(1).is_some_and(|arg| arg.to_string_lossy().ends_with(".tl")) {
        args.insert(1, "run".into());
    }
    let cli = Cli::parse_from(args);
    let zoo = crate::zoo::Zoo::locate(cli.zoo.as_deref());
    // Each command reads its recipes once, through one workspace.
    let workspace = workspace::Workspace::new(&zoo);
    let code = match cli.command {
        Command::Lint(args) => lint::run(&args, &workspace),
        Command::Explain { code } => explain::run(&code),
        Command::Graph { recipe, format } => graph::run(&recipe, format, &workspace),
        Command::Plan { recipe } => plan::run(&recipe, &workspace),
        Command::Run(args) => run::run(&args, &workspace),
        Command::LrFind(args) => lr_find::run(&args, &workspace),
        Command::Probe(args) => probe::run(&args, &workspace),
        Command::Predict(args) => predict::run(&args, &zoo),
        Command::Export(args) => export::run(&args, &zoo),
        Command::Status => slurm::status(),
        Command::Data(command) => data::run(&command),
        Command::Bench(args) => bench::run(&args),
        Command::Zoo(command) => zoo::run(&command, &zoo),
        Command::Report { run } => report::report(&run),
        Command::Resume { run, device } => run::resume_run(&run, None, &device, &workspace),
        Command::Runs { root } => report::runs(&root),
        Command::Compare { runs, out } => report::compare(&runs, &out),
    };
    ExitCode::from(code)
}
