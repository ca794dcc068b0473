//! `tlrun lr-find recipe.tl [--stage NAME] [--write]`: the LR range test on one stage, fastai's
//! suggestions, a plot, and optionally the suggestion written into the recipe.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::runtime::lr_finder::{self, SweepOptions};
use crate::syntax::edit;
use super::workspace::Workspace;

#[derive(Args)]
pub struct LrFindArgs {
    pub recipe: PathBuf,
    /// The stage to sweep (default: the first). Earlier stages run first, as in a run.
    #[arg(long)]
    pub stage: Option<String>,
    /// First learning rate of the sweep.
    #[arg(long, default_value_t = 1e-7)]
    pub start: f64,
    /// Last learning rate of the sweep.
    #[arg(long, default_value_t = 10.0)]
    pub end: f64,
    /// Batches in the sweep (fastai's num_it).
    #[arg(long, default_value_t = 100)]
    pub steps: usize,
    /// Where the plot goes.
    #[arg(long, default_value = "lr_find.png")]
    pub plot: PathBuf,
    /// Write this suggestion into the stage's `lr` (shown as a diff, then linted).
    #[arg(long, value_enum)]
    pub write: Option<Suggestion>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Suggestion {
    Valley,
    Steep,
}

pub fn run(args: &LrFindArgs, workspace: &Workspace) -> u8 {
    if !(args.start > 0.0 && args.end > args.start) {
        return super::output::usage_error(format!("the sweep needs 0 < --start < --end, not {} and {}", args.start, args.end));
    }
    let Some(super::workspace::LoadedRecipe { recipe, .. }) = workspace.load_checked(&args.recipe) else { return 1 };
    let stage_index = match &args.stage {
        None => 0,
        Some(name) => match recipe.stages.iter().position(|stage| &stage.name == name) {
            Some(index) => index,
            None => {
                let names: Vec<&str> = recipe.stages.iter().map(|stage| stage.name.as_str()).collect();
                return super::output::usage_error(format!("{} has no stage `{name}`; its stages: {}", args.recipe.display(), names.join(", ")));
            }
        },
    };
    let stage = &recipe.stages[stage_index];
    eprintln!("lr-find: stage `{}`, base rate {:.0e} → {:.0e} over {} batches", stage.name, args.start, args.end, args.steps);
    let options = SweepOptions { stage: stage_index, start: args.start, end: args.end, steps: args.steps, device: args.device.clone() };
    let sweep = match workspace.pretrained_weights(&recipe, &args.recipe).and_then(|pretrained| lr_finder::sweep(&recipe, &args.recipe, pretrained.as_deref(), workspace.zoo, &options)) {
        Ok(sweep) => sweep,
        Err(diagnostic) => {
            super::output::print_runtime_error(&diagnostic, &args.recipe);
            return 1;
        }
    };
    let ending = if sweep.diverged { "stopped when the loss diverged" } else { "ran to the last rate" };
    println!("swept {} rates, {ending}", sweep.rates.len());
    let mut marks = Vec::new();
    for (name, rate) in [("valley", sweep.valley), ("steep", sweep.steep)] {
        match rate {
            Some(rate) => {
                println!("{name:<7} {}", edit::format_rate(rate));
                marks.push((name, rate));
            }
            None => println!("{name:<7} -  (too few points before divergence: lower --start or add --steps)"),
        }
    }
    match crate::report::lr_find_png(&sweep.rates, &sweep.losses, &marks) {
        Ok(png) => match std::fs::write(&args.plot, &png.bytes) {
            Ok(()) => println!("plot: {}", args.plot.display()),
            Err(error) => eprintln!("warning: cannot write {}: {error}", args.plot.display()),
        },
        Err(error) => eprintln!("warning: no plot: {error}"),
    }
    let Some(choice) = args.write else { return 0 };
    let rate = match choice {
        Suggestion::Valley => sweep.valley,
        Suggestion::Steep => sweep.steep,
    };
    let Some(rate) = rate else {
        eprintln!("error: no suggestion to write");
        return 1;
    };
    write_rate(&args.recipe, &stage.name, rate, workspace)
}

/// Change the stage's `lr` in the recipe file, show the diff, and lint the result before saving.
fn write_rate(path: &Path, stage: &str, rate: f64, workspace: &Workspace) -> u8 {
    super::recipe_edit::save_linted_edit(path, &format!("lr {}", edit::format_rate(rate)), workspace, |source| edit::set_stage_lr(source, stage, rate))
}
