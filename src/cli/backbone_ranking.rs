//! `tlrun probe recipe.tl --backbones ENTRY… | all`: which zoo entry to start from, before any
//! training. Each entry is probed on the recipe's data as the backbone of a recipe made from this
//! one (`edit::backbone_candidate`: the same data, normalised with the entry's statistics), and
//! ranked by each metric at its best cut: LogME, the shrinkage H-score and PARC.

use std::path::Path;

use serde::Serialize;

use super::probe::ProbeArgs;
use super::workspace::Workspace;
use crate::runtime::probe::{CutScore, ProbeOptions, ProbeReport, probe};
use crate::syntax::edit;

/// One candidate: each metric's best over the cuts a recipe can name.
#[derive(Debug, Clone, Serialize)]
pub struct BackboneScore {
    pub entry: String,
    pub architecture: String,
    pub trained_on: String,
    /// The cut LogME picks, and its scores there.
    pub logme_cut: String,
    pub logme: f64,
    pub hscore: f64,
    pub parc: f64,
    pub probe_accuracy: f64,
    pub notes: Vec<String>,
}

impl BackboneScore {
    fn of(entry: &str, architecture: &str, trained_on: &str, report: &ProbeReport) -> Option<BackboneScore> {
        let cuts: Vec<&CutScore> = report.cuts.iter().filter(|cut| cut.cut_point).collect();
        let best = |score: fn(&CutScore) -> f64| cuts.iter().map(|cut| score(cut)).filter(|value| value.is_finite()).fold(f64::NAN, f64::max);
        let chosen = cuts.iter().filter(|cut| cut.logme.is_finite()).max_by(|a, b| a.logme.total_cmp(&b.logme))?;
        Some(BackboneScore {
            entry: entry.to_string(),
            architecture: architecture.to_string(),
            trained_on: trained_on.to_string(),
            logme_cut: chosen.after.clone(),
            logme: chosen.logme,
            hscore: best(|cut| cut.hscore),
            parc: best(|cut| cut.parc),
            probe_accuracy: best(|cut| cut.probe_accuracy),
            notes: report.notes.clone(),
        })
    }
}

pub fn run(args: &ProbeArgs, workspace: &Workspace) -> u8 {
    let source = match workspace.source(&args.recipe) {
        Ok(source) => source,
        Err(reason) => return super::output::usage_error(format!("cannot read {}: {reason}", args.recipe.display())),
    };
    let entries = if args.backbones.iter().any(|name| name == "all") { workspace.zoo.entry_names() } else { args.backbones.clone() };
    if entries.is_empty() {
        return super::output::usage_error(format!("the zoo at {} has no entries to rank", workspace.zoo.root.display()));
    }
    let options = ProbeOptions { samples: args.samples, fine: false, device: args.device.clone() };
    let mut scores = Vec::new();
    for entry in &entries {
        match score(entry, &source.text, &args.recipe, workspace, &options) {
            Ok(score) => scores.push(score),
            Err(message) => {
                eprintln!("error: backbone `{entry}`: {message}");
                return 1;
            }
        }
    }
    scores.sort_by(|a, b| b.logme.total_cmp(&a.logme));
    if args.format == "json" {
        println!("{}", serde_json::to_string_pretty(&scores).unwrap_or_else(|error| format!("{{\"error\": \"{error}\"}}")));
    } else {
        print_table(&scores);
    }
    0
}

/// The probe of one entry as the recipe's backbone.
fn score(entry: &str, source: &str, recipe_path: &Path, workspace: &Workspace, options: &ProbeOptions) -> Result<BackboneScore, String> {
    let card = workspace.zoo.card(entry).map_err(|error| error.to_string())?;
    let text = edit::backbone_candidate(source, &card.architecture, entry)?;
    let recipe = workspace.runnable_text(recipe_path, text).ok_or_else(|| "the recipe with this backbone does not check (above)".to_string())?;
    let pretrained = workspace.pretrained_weights(&recipe, recipe_path).map_err(|diagnostic| diagnostic.message.clone())?;
    let report = probe(&recipe, recipe_path, pretrained.as_deref(), workspace.zoo, options).map_err(|diagnostic| diagnostic.message.clone())?;
    eprintln!("probed {entry}: {} images in {:.1} s", report.images, report.forward_seconds);
    BackboneScore::of(entry, &card.architecture, &card.trained_on, &report).ok_or_else(|| "no cut could be scored".to_string())
}

fn print_table(scores: &[BackboneScore]) {
    // Each metric's rank among the candidates, 1 the best.
    let rank = |value: f64, metric: fn(&BackboneScore) -> f64| 1 + scores.iter().filter(|other| metric(other) > value).count();
    println!("{:<22} {:<13} {:<10} {:>9} {:>9} {:>7} {:>10}  ranks (LogME H PARC)", "backbone", "architecture", "cut", "LogME", "H-score", "PARC", "probe acc");
    for score in scores {
        println!(
            "{:<22} {:<13} {:<10} {:>9.4} {:>9.3} {:>7.2} {:>9.1}%  {} {} {}",
            score.entry,
            score.architecture,
            score.logme_cut,
            score.logme,
            score.hscore,
            score.parc,
            score.probe_accuracy * 100.0,
            rank(score.logme, |s| s.logme),
            rank(score.hscore, |s| s.hscore),
            rank(score.parc, |s| s.parc),
        );
    }
    for score in scores {
        for note in &score.notes {
            println!("note ({}): {note}", score.entry);
        }
    }
}
