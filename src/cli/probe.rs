//! `tlrun probe recipe.tl [--fine] [--samples N] [--write]`: where to cut, before any training —
//! LogME, H-score, PARC and a linear probe at every candidate cut, how far the images are from the pretraining
//! images, a recommendation as recipe lines, and `probe.png`.

use std::path::{Path, PathBuf};

use clap::Args;

use crate::probe::{ScoredCut, advise};
use crate::runtime::probe::{ProbeOptions, ProbeReport, probe};
use crate::syntax::edit;
use super::workspace::Workspace;

#[derive(Args)]
pub struct ProbeArgs {
    pub recipe: PathBuf,
    /// At most this many training images, stratified by class.
    #[arg(long, default_value_t = 2000)]
    pub samples: usize,
    /// Also score every residual block (not cut points a recipe can name, but the curve between).
    #[arg(long)]
    pub fine: bool,
    /// Where the plot goes.
    #[arg(long, default_value = "probe.png")]
    pub plot: PathBuf,
    /// Write the recommended cut into the recipe (shown as a diff, linted first).
    #[arg(long)]
    pub write: bool,
    /// `json` prints the scores as one JSON object.
    #[arg(long, default_value = "text")]
    pub format: String,
    #[arg(long, default_value = "cpu")]
    pub device: String,
    /// Rank these zoo entries (`all`: every entry) as backbones for the recipe's data instead:
    /// LogME, H-score and PARC, each at its best cut.
    #[arg(long, num_args = 1..)]
    pub backbones: Vec<String>,
}

fn percent(value: f64) -> String {
    if value.is_finite() { format!("{:.1}%", value * 100.0) } else { "-".to_string() }
}

pub fn run(args: &ProbeArgs, workspace: &Workspace) -> u8 {
    if args.samples < 8 {
        return super::output::usage_error(format!("--samples {} is too few to score a cut; give 8 or more", args.samples));
    }
    if !args.backbones.is_empty() {
        return super::backbone_ranking::run(args, workspace);
    }
    let Some(super::workspace::LoadedRecipe { recipe, .. }) = workspace.load_checked(&args.recipe) else { return 1 };
    let options = ProbeOptions { samples: args.samples, fine: args.fine, device: args.device.clone() };
    let report = match workspace.pretrained_weights(&recipe, &args.recipe).and_then(|pretrained| probe(&recipe, &args.recipe, pretrained.as_deref(), workspace.zoo, &options)) {
        Ok(report) => report,
        Err(diagnostic) => {
            super::output::print_runtime_error(&diagnostic, &args.recipe);
            return 1;
        }
    };
    let scored: Vec<ScoredCut> = report
        .cuts
        .iter()
        .map(|cut| ScoredCut { after: cut.after.clone(), cut_point: cut.cut_point, logme: cut.logme, probe_accuracy: cut.probe_accuracy })
        .collect();
    let advice = advise(&scored, &report.recipe_cut, report.domain.shift(), report.steps_per_epoch);
    if args.format == "json" {
        let value = serde_json::json!({
            "report": report,
            "recommendation": advice.as_ref().map(|advice| serde_json::json!({"cut_after": advice.cut_after, "lines": advice.lines})),
        });
        println!("{}", serde_json::to_string_pretty(&value).unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}")));
    } else {
        print_table(&report, advice.as_ref().map(|advice| advice.cut_after.as_str()));
        if let Some(advice) = &advice {
            println!("\nrecommendation:");
            for line in &advice.lines {
                println!("  {line}");
            }
        }
    }
    let points: Vec<(String, f64, f64)> = report.cuts.iter().map(|cut| (cut.after.clone(), cut.logme, cut.probe_accuracy)).collect();
    match crate::report::probe_png(&points, advice.as_ref().map(|advice| advice.cut_after.as_str())) {
        Ok(png) => match crate::atomic_file::write_atomic(&args.plot, &png.bytes) {
            Ok(()) => eprintln!("plot: {}", args.plot.display()),
            Err(diagnostic) => eprintln!("warning: {}", diagnostic.message),
        },
        Err(error) => eprintln!("warning: no plot: {error}"),
    }
    match (args.write, advice) {
        (false, _) => 0,
        (true, None) => {
            eprintln!("error: nothing was scored, so there is no cut to write");
            1
        }
        (true, Some(advice)) => write_cut(&args.recipe, &advice.cut_after, workspace),
    }
}

fn print_table(report: &ProbeReport, recommended: Option<&str>) {
    println!(
        "probe: {} training images of {} classes at {}px; one forward pass in {:.1} s",
        report.images, report.classes, report.size, report.forward_seconds
    );
    println!("{:<12} {:>6} {:>9} {:>9} {:>7} {:>11} {:>8}", "cut after", "width", "LogME", "H-score", "PARC", "probe acc", "seconds");
    for cut in &report.cuts {
        let mut marks = Vec::new();
        if Some(cut.after.as_str()) == recommended {
            marks.push("best");
        }
        if cut.after == report.recipe_cut {
            marks.push("recipe");
        }
        if !cut.cut_point {
            marks.push("block");
        }
        let marks = if marks.is_empty() { String::new() } else { format!("  ← {}", marks.join(", ")) };
        println!(
            "{:<12} {:>6} {:>9.4} {:>9.3} {:>7.2} {:>11} {:>8.2}{marks}",
            cut.after,
            cut.width,
            cut.logme,
            cut.hscore,
            cut.parc,
            percent(cut.probe_accuracy),
            cut.seconds
        );
    }
    let domain = &report.domain;
    let shift = domain.shift();
    let list = |values: &[f64]| values.iter().map(|value| format!("{value:.3}")).collect::<Vec<_>>().join(" ");
    println!("\ndomain shift:");
    let (reference_mean, reference_std, whose) = domain.reference_pixels();
    println!(
        "  pixel mean  {} against {whose} {}{}",
        list(&domain.pixel_mean),
        list(reference_mean),
        if shift.pixels_far() { "  (far)" } else { "" }
    );
    println!("  pixel std   {} against {whose} {}", list(&domain.pixel_std), list(reference_std));
    match &domain.frechet {
        Some(distance) => println!(
            "  Fréchet distance at {}: {:.3} ({:.2}x the pretraining features' variance){}",
            distance.layer,
            distance.distance,
            distance.relative,
            if shift.features_far() { "  (far)" } else { "" }
        ),
        None => println!("  Fréchet distance: - (the zoo card keeps no feature statistics; `publish` writes them)"),
    }
    for note in &report.notes {
        println!("note: {note}");
    }
}

/// Set the recipe's cut, show the diff, and lint the result before saving.
fn write_cut(path: &Path, layer: &str, workspace: &Workspace) -> u8 {
    super::recipe_edit::save_linted_edit(path, &format!("cut after {layer}"), workspace, |source| edit::set_cut(source, layer))
}
