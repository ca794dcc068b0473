//! `tlrun predict MODEL INPUT…`: apply a trained model to images with the run's own
//! preprocessing, stream the predictions to a CSV/JSONL file or a table, and on a labelled
//! folder print the accuracy and write the confusion matrix.

use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use crate::diagnostics::{Code, Diagnostic};
use crate::model_card::{MODEL_CARD, ModelCard, card_beside};
use crate::prediction_file::{PredictionWriter, confusion_csv};
use crate::data::InputFiles;
use crate::runtime::predictor::Predictor;
use crate::zoo::{WEIGHTS_FILE, Zoo};

#[derive(Args)]
pub struct PredictArgs {
    /// A run folder, a zoo entry (name or folder), or an exported .safetensors with its .model.json beside it.
    pub model: PathBuf,
    /// Image files and folders (searched recursively). One folder of class sub-folders is read
    /// as labelled: accuracy and a confusion matrix too.
    #[arg(required = true)]
    pub inputs: Vec<PathBuf>,
    /// Write the predictions to FILE.csv or FILE.jsonl (default: a table on stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Also list the K most probable classes with their probabilities.
    #[arg(long, default_value_t = 1)]
    pub top_k: usize,
    /// Test-time augmentation: `flip` averages each image with its mirror (default: the recipe's `tta`).
    #[arg(long, value_enum)]
    pub tta: Option<Tta>,
    /// Exit 0 even when some images could not be read (they are still listed).
    #[arg(long)]
    pub skip_bad: bool,
    /// Images per batch (default: the batch the run's final evaluation used).
    #[arg(long)]
    pub batch: Option<usize>,
    /// Where a labelled input's confusion matrix goes (default: beside --out as NAME.confusion.csv).
    #[arg(long)]
    pub confusion: Option<PathBuf>,
    #[arg(long, default_value = "cpu")]
    pub device: String,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Tta {
    Flip,
    None,
}

pub fn run(args: &PredictArgs, zoo: &Zoo) -> u8 {
    match predict(args, zoo) {
        Ok(code) => code,
        Err(diagnostic) => {
            super::output::print_runtime_error(&diagnostic, &args.model);
            2
        }
    }
}

/// The card and weights file `model` names: a folder holding both (run folder, zoo entry), an
/// exported weights file with its card beside it, or the name of a zoo entry.
pub fn locate_model(model: &Path, zoo: &Zoo) -> Result<(ModelCard, PathBuf), Diagnostic> {
    let folder = if model.is_dir() {
        Some(model.to_path_buf())
    } else if model.is_file() {
        None
    } else if zoo.entry_dir(&model.to_string_lossy()).is_dir() {
        Some(zoo.entry_dir(&model.to_string_lossy()))
    } else {
        let names = zoo.entry_names();
        let mut diagnostic = Diagnostic::new(
            Code::ModelCardUnusable,
            format!("{} is neither a run folder, a weights file nor an entry of the zoo {}", model.display(), zoo.root.display()),
        );
        diagnostic = match crate::diagnostics::did_you_mean(&model.to_string_lossy(), names.iter().map(String::as_str)) {
            Some(name) => diagnostic.with_help(format!("did you mean the zoo entry `{name}`?")),
            None => diagnostic.with_help("give a run folder (`tlrun runs` lists them), a zoo entry, or an exported .safetensors"),
        };
        return Err(diagnostic);
    };
    let (card_path, weights) = match folder {
        Some(folder) => (folder.join(MODEL_CARD), folder.join(WEIGHTS_FILE)),
        None if model.extension().is_some_and(|extension| extension.eq_ignore_ascii_case("onnx")) => {
            return Err(Diagnostic::new(Code::ModelCardUnusable, format!("{} is an ONNX file: predict reads tlrun's weights", model.display()))
                .with_help("give the run folder or the .safetensors export; run .onnx files with ONNX Runtime (docs/deploy.md)"));
        }
        None => (card_beside(model), model.to_path_buf()),
    };
    let card = ModelCard::read(&card_path)?;
    if !weights.is_file() {
        return Err(Diagnostic::new(Code::ModelCardUnusable, format!("{} has a card but no weights file {}", model.display(), weights.display()))
            .with_help("a run writes weights.safetensors at its end: was it interrupted? `tlrun resume` finishes it"));
    }
    Ok((card, weights))
}

fn predict(args: &PredictArgs, zoo: &Zoo) -> Result<u8, Diagnostic> {
    let (mut card, weights) = locate_model(&args.model, zoo)?;
    if let Some(tta) = args.tta {
        card.tta_flip = tta == Tta::Flip;
    }
    if let Some(batch) = args.batch {
        card.batch = batch.max(1);
    }
    let top_k = args.top_k.clamp(1, card.classes.len());
    let inputs = InputFiles::gather(&args.inputs, &card.classes)?;
    let predictor = Predictor::load(card, &weights, &args.device)?;
    let classes = &predictor.card.classes;
    let mut writer = PredictionWriter::open(args.out.as_deref(), top_k, inputs.truth.is_some())?;
    let summary = predictor.predict_all(&inputs, &mut writer, true)?;
    writer.finish()?;
    eprintln!(
        "{} image(s) predicted in {:.1} s ({:.0} img/s, decoding included)",
        summary.predicted,
        summary.seconds,
        summary.predicted as f64 / summary.seconds.max(1e-9)
    );
    if let Some(out) = &args.out {
        eprintln!("predictions: {}", out.display());
    }
    if let (Some(confusion), Some((correct, labelled))) = (&summary.confusion, summary.correct_of()) {
        println!("accuracy {:.2}% ({correct}/{labelled})", 100.0 * f64::from(correct) / f64::from(labelled.max(1)));
        let matrix = confusion_csv(classes, confusion);
        match args.confusion.clone().or_else(|| args.out.as_ref().map(|out| confusion_beside(out))) {
            Some(path) => {
                crate::atomic_file::write_atomic(&path, matrix.as_bytes())?;
                eprintln!("confusion matrix (rows: true class, columns: predicted): {}", path.display());
            }
            None => print!("confusion matrix (rows: true class, columns: predicted)\n{matrix}"),
        }
    }
    if summary.bad.is_empty() {
        return Ok(0);
    }
    eprintln!("{} image(s) could not be read; every other prediction was written:", summary.bad.len());
    for (path, reason) in &summary.bad {
        eprintln!("  {}: {reason}", path.display());
    }
    Ok(if args.skip_bad { 0 } else { 1 })
}

fn confusion_beside(out: &Path) -> PathBuf {
    let stem = out.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    out.with_file_name(format!("{stem}.confusion.csv"))
}
