//! The formats of the files in a run folder, shared by the runtime (which writes them) and the
//! reports (which read them). Plain serde data: no burn.

use std::collections::BTreeMap;

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// One JSON object per line (metrics.jsonl, lr_steps.jsonl).
pub fn json_lines<T: Serialize>(items: &[T]) -> String {
    items.iter().filter_map(|item| serde_json::to_string(item).ok()).map(|line| line + "\n").collect()
}

/// Every line of a JSON-lines file that a run resumes from (steps.jsonl, metrics.jsonl, …);
/// none when the file is missing. A file that cannot be read, or a line that does not parse, is
/// an error naming the file and the line: resuming past it would lose that history silently.
pub fn read_json_lines_to_resume<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>, crate::diagnostics::Diagnostic> {
    let unreadable = |reason: String| {
        crate::diagnostics::Diagnostic::new(crate::diagnostics::Code::RunFolderUnreadable, format!("cannot resume from {}: {reason}", path.display()))
            .with_help("the run folder is damaged; start the run again with `--out` a new folder")
    };
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(error) => return Err(unreadable(error.to_string())),
    };
    text.lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| serde_json::from_str(line).map_err(|error| unreadable(format!("line {}: {error}", index + 1))))
        .collect()
}

/// The lines of a JSON-lines file that parse; none when the file is missing. For reports, which
/// draw what they can read (a run still in progress may be mid-write); resuming reads with
/// [`read_json_lines_to_resume`].
pub fn read_json_lines<T: DeserializeOwned>(path: &Path) -> Vec<T> {
    std::fs::read_to_string(path)
        .map(|text| text.lines().filter_map(|line| serde_json::from_str(line).ok()).collect())
        .unwrap_or_default()
}

/// A number, or NaN where the file holds `null` (JSON has no NaN: serde_json writes it as null).
fn number_or_nan<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<f64, D::Error> {
    Ok(Option::<f64>::deserialize(deserializer)?.unwrap_or(f64::NAN))
}

/// One line of metrics.jsonl.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EpochMetrics {
    pub stage: String,
    pub stage_index: usize,
    pub epoch: u32,
    pub global_epoch: u32,
    pub size: u32,
    /// Each trained group's learning rate at the epoch's last step.
    pub learning_rates: BTreeMap<String, f64>,
    pub train_loss: f64,
    /// NaN (`null` in the file) for an epoch that `valid every …` did not evaluate.
    #[serde(deserialize_with = "number_or_nan")]
    pub valid_loss: f64,
    #[serde(deserialize_with = "number_or_nan")]
    pub valid_accuracy: f64,
    pub train_images_per_second: f64,
    pub seconds: f64,
    /// `keep best`: the stage ended with this epoch's weights.
    #[serde(default)]
    pub restored: bool,
    /// Early stopping: the stage stopped after this epoch.
    #[serde(default)]
    pub stopped_early: bool,
}

/// One line of lr_steps.jsonl: every group's rate at one optimizer step (0 while frozen).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRates {
    pub step: usize,
    pub stage: String,
    pub rates: BTreeMap<String, f64>,
}

/// evaluation.json: validation results, with a confusion matrix (rows: true class, columns: predicted).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    pub loss: f64,
    pub accuracy: f64,
    pub confusion: Vec<Vec<u32>>,
}

/// One entry of top_losses.json: a valid image the final evaluation got most wrong (fastai's
/// `plot_top_losses`), with its thumbnail in the run folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TopLoss {
    /// Position in the valid split (class folders, then file names).
    pub valid_index: usize,
    pub truth: String,
    pub predicted: String,
    /// The predicted class's probability.
    pub probability: f64,
    /// The image's cross-entropy.
    pub loss: f64,
    /// The thumbnail's file, relative to the run folder (`top_losses/1.png`).
    pub thumbnail: String,
}

/// filters.json: the first convolution's weights before and after training, `[out, in, k, k]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Filters {
    pub shape: Vec<usize>,
    pub before: Vec<f32>,
    pub after: Vec<f32>,
}

/// summary.json.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub recipe: String,
    pub classes: Vec<String>,
    pub final_valid_accuracy: f64,
    pub final_valid_loss: f64,
    pub epochs: u32,
    pub seconds: f64,
    /// CPU threads the run computed on (`--threads`, else all cores); 0 in runs that predate it.
    #[serde(default)]
    pub threads: usize,
}

/// One line of steps.jsonl: a node of the recipe's graph (the id `tlrun graph --format json`
/// prints) that the run executed, in order, with when it started and how long it took.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StepRecord {
    pub node: usize,
    pub step: String,
    /// Seconds since the Unix epoch.
    pub started: f64,
    pub seconds: f64,
}

/// One line of forgetting.jsonl: the source task's accuracy (a linear probe fitted on the
/// pretrained features before any training, then frozen) beside the target's valid accuracy,
/// before the first stage (`stage` is `pretrained`) and after every stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForgettingPoint {
    pub stage: String,
    pub source_accuracy: f64,
    /// The target's valid accuracy at the end of that stage (none before training).
    pub target_accuracy: Option<f64>,
    /// Source images the probe is scored on (held out from its fitting).
    pub source_images: usize,
    /// The layer whose pooled features the probe reads.
    pub layer: String,
    /// Which source images the probe is scored on: `pretraining valid` (images the pretraining
    /// held out, so the accuracy is comparable with its valid accuracy) or `source train` (images
    /// held out from the probe's fit that the backbone itself trained on: a zoo card without
    /// `source_valid`, or a recipe's own `source`).
    #[serde(default)]
    pub scored_on: String,
}

/// `ForgettingPoint::scored_on` for the pretraining's held-out images.
pub const SCORED_ON_PRETRAINING_VALID: &str = "pretraining valid";
/// `ForgettingPoint::scored_on` for images the backbone trained on.
pub const SCORED_ON_SOURCE_TRAIN: &str = "source train";

/// shift.json, and `tlrun probe`'s domain section: how far the recipe's training images are from
/// the images the backbone was trained on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DomainShift {
    /// Per-channel pixel mean and standard deviation (pixels in [0, 1]) of the sampled images.
    pub pixel_mean: Vec<f64>,
    pub pixel_std: Vec<f64>,
    /// The statistics the backbone's weights were trained with (the zoo card's, or the recipe's):
    /// the normalisation constants.
    pub backbone_mean: Vec<f64>,
    pub backbone_std: Vec<f64>,
    /// The pixel statistics measured on the pretraining images, when the zoo card keeps them:
    /// what these images are compared with (else the normalisation constants above).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_pixel_mean: Option<Vec<f64>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_pixel_std: Option<Vec<f64>>,
    pub images: usize,
    /// The Fréchet distance to the pretraining images' features, when the zoo card keeps them.
    pub frechet: Option<FeatureDistance>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureDistance {
    pub layer: String,
    pub distance: f64,
    /// The distance over the trace of the pretraining features' covariance.
    pub relative: f64,
    /// The image side both sets of features were taken at (the card's input size).
    #[serde(default)]
    pub size: u32,
}

impl DomainShift {
    /// The shift in the terms advice uses.
    /// The pixel statistics these images are compared with: the pretraining images' measured
    /// ones, else the normalisation constants; and what they are, in words.
    pub fn reference_pixels(&self) -> (&[f64], &[f64], &'static str) {
        match (&self.source_pixel_mean, &self.source_pixel_std) {
            (Some(mean), Some(std)) => (mean, std, "the pretraining images'"),
            _ => (&self.backbone_mean, &self.backbone_std, "the backbone's normalisation constants"),
        }
    }

    pub fn shift(&self) -> crate::probe::Shift {
        let (reference_mean, reference_std, _) = self.reference_pixels();
        let channel_mean_gap = self.pixel_mean.iter().zip(reference_mean).map(|(a, b)| (a - b).abs()).fold(0.0, f64::max);
        let channel_std_ratio = self
            .pixel_std
            .iter()
            .zip(reference_std)
            .map(|(a, b)| if *a > 0.0 && *b > 0.0 { (a / b).max(b / a) } else { f64::INFINITY })
            .fold(1.0, f64::max);
        crate::probe::Shift { channel_mean_gap, channel_std_ratio, relative_frechet: self.frechet.as_ref().map(|distance| distance.relative) }
    }

    /// What the trade advises when the images are far, one line each (empty when they are near).
    pub fn advice(&self) -> Vec<String> {
        let shift = self.shift();
        let mut lines = Vec::new();
        if shift.pixels_far() {
            let (mean, std, whose) = self.reference_pixels();
            lines.push(format!(
                "the images' pixel statistics (mean {}, std {}) are far from {whose} (mean {}, std {})",
                list(&self.pixel_mean),
                list(&self.pixel_std),
                list(mean),
                list(std)
            ));
        }
        if let Some(distance) = self.frechet.as_ref().filter(|_| shift.features_far()) {
            lines.push(format!(
                "the images' features at `{}` are far from the pretraining images' (Fréchet distance {:.3}, {:.2}x their variance)",
                distance.layer, distance.distance, distance.relative
            ));
        }
        if !lines.is_empty() {
            lines.push("a large domain shift: consider cutting earlier (`tlrun probe`), unfreezing more of the backbone, and not resizing below the pretraining size".to_string());
        }
        lines
    }
}

fn list(values: &[f64]) -> String {
    values.iter().map(|value| format!("{value:.3}")).collect::<Vec<_>>().join(" ")
}

// Every file name of a run folder, here and nowhere else.
pub const RECIPE: &str = "recipe.tl";
pub const RESOLVED: &str = "resolved.json";
pub const PLAN: &str = "plan.txt";
/// Where the run's recipe came from (`tlrun resume` finds its data through it).
pub const ORIGIN: &str = "origin.json";
/// The weights before the first step: what a resumed run starts its weight-movement plot from.
pub const INITIAL_WEIGHTS: &str = "initial.safetensors";
/// The final (or last good) weights.
pub const WEIGHTS: &str = "weights.safetensors";
pub const STEPS: &str = "steps.jsonl";
pub const METRICS: &str = "metrics.jsonl";
pub const LR_STEPS: &str = "lr_steps.jsonl";
pub const EVALUATION: &str = "evaluation.json";
pub const MOVEMENT: &str = "movement.json";
pub const FILTERS: &str = "filters.json";
pub const FORGETTING: &str = "forgetting.jsonl";
pub const SHIFT: &str = "shift.json";
pub const SUMMARY: &str = "summary.json";
pub const TOP_LOSSES: &str = "top_losses.json";
/// The folder of top_losses.json's thumbnails.
pub const TOP_LOSS_IMAGES: &str = "top_losses";
pub const REPORT: &str = "report.html";
/// fastai's `show_batch`: the first training images as augmentation makes them (runs that augment).
pub const AUGMENTED: &str = "augmented.png";

#[cfg(test)]
mod tests {
    use super::{StepRecord, read_json_lines_to_resume};

    /// Resuming reads every line or says which one it cannot: a damaged steps.jsonl is never
    /// read as a shorter history.
    #[test]
    fn resuming_reads_every_line_or_names_the_bad_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("steps.jsonl");
        assert!(read_json_lines_to_resume::<StepRecord>(&path).unwrap().is_empty(), "missing: nothing ran yet");
        let good = r#"{"node":0,"step":"load data","started":1.0,"seconds":0.5}"#;
        std::fs::write(&path, format!("{good}\n{good}\n")).unwrap();
        assert_eq!(read_json_lines_to_resume::<StepRecord>(&path).unwrap().len(), 2);
        std::fs::write(&path, format!("{good}\n{{\"node\": tru\n{good}\n")).unwrap();
        let error = read_json_lines_to_resume::<StepRecord>(&path).unwrap_err();
        assert!(error.message.contains("steps.jsonl") && error.message.contains("line 2"), "{}", error.message);
    }
}
