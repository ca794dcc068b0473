use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::diagnostics::{Code, Diagnostic};
use crate::run_files::{self, DomainShift, EpochMetrics, Evaluation, Filters, ForgettingPoint, StepRates, Summary, TopLoss};

/// Everything a run folder holds that reports use. Interrupted runs have metrics but no summary.
#[derive(Debug, Clone)]
pub struct RunData {
    pub folder: PathBuf,
    pub recipe: String,
    pub metrics: Vec<EpochMetrics>,
    pub steps: Vec<StepRates>,
    pub evaluation: Option<Evaluation>,
    pub movement: BTreeMap<String, f64>,
    pub filters: Option<Filters>,
    pub summary: Option<Summary>,
    /// Source accuracy beside target accuracy, stage by stage (runs with a `source`).
    pub forgetting: Vec<ForgettingPoint>,
    /// How far the training images were from the pretraining images (pretrained backbones).
    pub shift: Option<DomainShift>,
    /// The valid images with the highest loss, highest first (runs since top losses exist).
    pub top_losses: Vec<TopLoss>,
}

fn unreadable(folder: &Path, what: &str) -> Diagnostic {
    Diagnostic::new(Code::RunFolderUnreadable, format!("{} is not a run folder: {what}", folder.display()))
        .with_help("give a folder that `tlrun run` wrote, e.g. runs/<recipe>/<timestamp>")
}

fn json<T: DeserializeOwned>(folder: &Path, name: &str) -> Option<T> {
    serde_json::from_str(&std::fs::read_to_string(folder.join(name)).ok()?).ok()
}


impl RunData {
    pub fn load(folder: &Path) -> Result<RunData, Diagnostic> {
        if !folder.is_dir() {
            return Err(unreadable(folder, "it does not exist"));
        }
        if !folder.join(run_files::METRICS).is_file() {
            return Err(unreadable(folder, "it has no metrics.jsonl"));
        }
        let metrics: Vec<EpochMetrics> = run_files::read_json_lines(&folder.join(run_files::METRICS));
        let summary: Option<Summary> = json(folder, run_files::SUMMARY);
        let recipe = summary
            .as_ref()
            .map(|summary| summary.recipe.clone())
            .or_else(|| folder.parent().and_then(Path::file_name).map(|name| name.to_string_lossy().into_owned()))
            .unwrap_or_default();
        Ok(RunData {
            folder: folder.to_path_buf(),
            recipe,
            steps: run_files::read_json_lines(&folder.join(run_files::LR_STEPS)),
            evaluation: json(folder, run_files::EVALUATION),
            movement: json(folder, run_files::MOVEMENT).unwrap_or_default(),
            filters: json(folder, run_files::FILTERS),
            forgetting: run_files::read_json_lines(&folder.join(run_files::FORGETTING)),
            shift: json(folder, run_files::SHIFT),
            top_losses: json(folder, run_files::TOP_LOSSES).unwrap_or_default(),
            summary,
            metrics,
        })
    }

    pub fn best_accuracy(&self) -> Option<f64> {
        self.metrics.iter().map(|m| m.valid_accuracy).filter(|a| a.is_finite()).reduce(f64::max)
    }

    pub fn seconds(&self) -> f64 {
        self.summary.as_ref().map_or_else(|| self.metrics.iter().map(|m| m.seconds).sum(), |summary| summary.seconds)
    }

    /// Timestamp folder name (`20261129-090504`), the run's date.
    pub fn started(&self) -> String {
        self.folder.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default()
    }
}

/// Every run folder under `root` (`runs/<recipe>/<timestamp>`), oldest first.
pub fn find_runs(root: &Path) -> Vec<RunData> {
    let mut runs = Vec::new();
    let Ok(recipes) = std::fs::read_dir(root) else { return runs };
    for recipe in recipes.filter_map(Result::ok).map(|entry| entry.path()).filter(|path| path.is_dir()) {
        if let Ok(timestamps) = std::fs::read_dir(&recipe) {
            runs.extend(timestamps.filter_map(Result::ok).filter_map(|entry| RunData::load(&entry.path()).ok()));
        }
    }
    runs.sort_by(|a, b| a.started().cmp(&b.started()).then(a.recipe.cmp(&b.recipe)));
    runs
}
