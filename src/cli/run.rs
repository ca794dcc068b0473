use std::path::PathBuf;

use clap::Args;

use crate::runtime::runner::{self, RunOptions};
use crate::zoo::Zoo;

#[derive(Args)]
pub struct RunArgs {
    pub recipe: PathBuf,
    /// `cpu` (default) or `cuda`, `cuda:N` (needs a build with `--features cuda`).
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Run folder (default: runs/<recipe>/<timestamp>/ beside the recipe's working directory).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// CPU threads for training (default: all cores; also RAYON_NUM_THREADS).
    #[arg(long)]
    pub threads: Option<usize>,
}

pub fn run(args: &RunArgs, zoo: &Zoo) -> u8 {
    if let Some(threads) = args.threads {
        // Only the first call configures the global pool; later calls change nothing.
        let _ = rayon::ThreadPoolBuilder::new().num_threads(threads.max(1)).build_global();
    }
    let Some(recipe) = super::plan::load_checked(&args.recipe, zoo) else { return 1 };
    let source = std::fs::read_to_string(&args.recipe).unwrap_or_default();
    let options = RunOptions { device: args.device.clone(), out: args.out.clone(), zoo: zoo.clone(), runs_root: PathBuf::from(".") };
    eprintln!("running {} ({})", recipe.name, args.recipe.display());
    match runner::run(&recipe, &args.recipe, &source, &options) {
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
            if let Some(exported) = &outcome.exported {
                println!("exported: {}", exported.display());
            }
            0
        }
        Err(failure) => {
            super::print_runtime_error(&failure.diagnostic, &args.recipe);
            if let Some(folder) = failure.folder {
                eprintln!("run folder (last good weights kept): {}", folder.display());
            }
            1
        }
    }
}

