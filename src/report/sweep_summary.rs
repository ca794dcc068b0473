//! A sweep's summary: every variant's final and best valid accuracy, the variants grouped over
//! seeds (mean ± sample standard deviation, n), and a paired comparison of two sweeps over the
//! same seeds. Read from the variants' run folders; written as summary.json, summary.html and
//! summary.png. No burn.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::run_data::RunData;
use super::stats::{PairedDifference, mean_std, paired_difference};
use crate::diagnostics::{Code, Diagnostic};

/// variant.json, in each variant's run folder: which values it ran with, and the content hash
/// of its inputs (a variant whose hash is unchanged is up to date).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantRecord {
    pub name: String,
    /// (axis, value) as the sweep wrote them.
    pub values: Vec<(String, String)>,
    pub source_hash: String,
}

pub const VARIANT_FILE: &str = "variant.json";
pub const SUMMARY_FILE: &str = "summary.json";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VariantResult {
    pub name: String,
    pub values: BTreeMap<String, String>,
    pub folder: PathBuf,
    pub final_valid_accuracy: f64,
    pub best_valid_accuracy: f64,
    pub final_valid_loss: f64,
    pub seconds: f64,
}

/// Variants that differ only in their seed, taken together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SeedGroup {
    /// The group's values of every axis but `seed`.
    pub values: BTreeMap<String, String>,
    pub seeds: usize,
    pub mean: f64,
    /// Sample standard deviation over the seeds (NaN, `null` in JSON, for one seed).
    pub std: f64,
    pub min: f64,
    pub max: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepSummary {
    pub recipe: String,
    pub axes: Vec<String>,
    pub variants: Vec<VariantResult>,
    pub groups: Vec<SeedGroup>,
}

/// Read the variant runs named `names` under `folder` (each a run folder with variant.json and
/// summary.json); folders of variants the sweep no longer declares are left out.
pub fn summarize(folder: &Path, recipe: &str, names: &[String]) -> Result<SweepSummary, Diagnostic> {
    let mut variants = Vec::new();
    let mut axes: Vec<String> = Vec::new();
    let entries = std::fs::read_dir(folder)
        .map_err(|error| Diagnostic::new(Code::RunFolderUnreadable, format!("cannot read sweep folder {}: {error}", folder.display())))?;
    let mut folders: Vec<PathBuf> = entries.filter_map(Result::ok).map(|entry| entry.path()).filter(|path| path.join(VARIANT_FILE).is_file()).collect();
    folders.sort();
    for run_folder in folders {
        let record: VariantRecord = read_json(&run_folder.join(VARIANT_FILE))?;
        if !names.contains(&record.name) {
            continue;
        }
        let run = RunData::load(&run_folder)?;
        let Some(summary) = &run.summary else { continue };
        for (axis, _) in &record.values {
            if !axes.contains(axis) {
                axes.push(axis.clone());
            }
        }
        variants.push(VariantResult {
            name: record.name.clone(),
            values: record.values.iter().cloned().collect(),
            folder: run_folder.clone(),
            final_valid_accuracy: summary.final_valid_accuracy,
            best_valid_accuracy: run.best_accuracy().unwrap_or(summary.final_valid_accuracy),
            final_valid_loss: summary.final_valid_loss,
            seconds: summary.seconds,
        });
    }
    let mut grouped: BTreeMap<BTreeMap<String, String>, Vec<f64>> = BTreeMap::new();
    for variant in &variants {
        let key: BTreeMap<String, String> = variant.values.iter().filter(|(axis, _)| *axis != "seed").map(|(a, v)| (a.clone(), v.clone())).collect();
        grouped.entry(key).or_default().push(variant.final_valid_accuracy);
    }
    let groups = grouped
        .into_iter()
        .map(|(values, accuracies)| {
            let (mean, std, seeds) = mean_std(&accuracies);
            let min = accuracies.iter().copied().fold(f64::INFINITY, f64::min);
            let max = accuracies.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            SeedGroup { values, seeds, mean, std, min, max }
        })
        .collect();
    Ok(SweepSummary { recipe: recipe.to_string(), axes, variants, groups })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, Diagnostic> {
    let text = std::fs::read_to_string(path).map_err(|error| Diagnostic::new(Code::RunFolderUnreadable, format!("cannot read {}: {error}", path.display())))?;
    serde_json::from_str(&text).map_err(|error| Diagnostic::new(Code::RunFolderUnreadable, format!("{} is not valid: {error}", path.display())))
}

/// A group's values in words: `finetune.lr=1e-3, cut=layer3`, or `all seeds` with no other axis.
pub fn describe(values: &BTreeMap<String, String>) -> String {
    if values.is_empty() {
        return "all seeds".to_string();
    }
    values.iter().map(|(axis, value)| format!("{axis}={value}")).collect::<Vec<_>>().join(", ")
}

/// `72.3% ± 3.1 (n=5)`.
pub fn mean_and_spread(group: &SeedGroup) -> String {
    if group.seeds > 1 {
        format!("{:.1}% ± {:.1} (n={})", group.mean * 100.0, group.std * 100.0, group.seeds)
    } else {
        format!("{:.1}% (n=1)", group.mean * 100.0)
    }
}

/// A sweep folder's summary.json, when `folder` holds one.
pub fn read(folder: &Path) -> Option<SweepSummary> {
    serde_json::from_str(&std::fs::read_to_string(folder.join(SUMMARY_FILE)).ok()?).ok()
}

/// For sweeps run together (transfer and scratch over the same seeds): the first against each
/// other, one line each, or nothing when fewer than two sweeps share seeds.
pub fn paired_lines(sweeps: &[SweepSummary]) -> Vec<String> {
    let Some((first, others)) = sweeps.split_first() else { return Vec::new() };
    others
        .iter()
        .filter_map(|other| compare(first, other).map(|difference| describe_difference(&first.recipe, &other.recipe, &difference)))
        .collect()
}

/// Two sweeps' final accuracies paired by their values (the same seed, and the same values of
/// any axis both have): `a − b`'s mean and its 95% paired-t interval.
pub fn compare(a: &SweepSummary, b: &SweepSummary) -> Option<PairedDifference> {
    let shared: Vec<&String> = a.axes.iter().filter(|axis| b.axes.contains(axis)).collect();
    let key = |variant: &VariantResult| -> Vec<(String, String)> {
        shared.iter().map(|axis| ((*axis).clone(), variant.values.get(*axis).cloned().unwrap_or_default())).collect()
    };
    let (mut left, mut right) = (Vec::new(), Vec::new());
    for variant in &a.variants {
        if let Some(partner) = b.variants.iter().find(|other| key(other) == key(variant)) {
            left.push(variant.final_valid_accuracy);
            right.push(partner.final_valid_accuracy);
        }
    }
    (left.len() >= 2).then(|| paired_difference(&left, &right))
}

/// `transfer beats scratch by 5.3 points (95% CI 2.1 to 8.4, 5 paired seeds, paired t)`.
pub fn describe_difference(a: &str, b: &str, difference: &PairedDifference) -> String {
    let verb = if difference.mean >= 0.0 { "beats" } else { "trails" };
    let significance = if difference.low > 0.0 || difference.high < 0.0 { "" } else { "; the interval includes 0: no difference shown" };
    format!(
        "{a} {verb} {b} by {:.1} points (95% CI {:.1} to {:.1}, {} pairs, paired t){significance}",
        difference.mean.abs() * 100.0,
        difference.low * 100.0,
        difference.high * 100.0,
        difference.pairs
    )
}
