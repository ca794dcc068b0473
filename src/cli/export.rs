//! `tlrun export MODEL --format onnx|safetensors`: a trained model (run folder, zoo entry or
//! exported weights) as a file for use outside tlrun, with its model card beside it.

use std::path::PathBuf;

use clap::{Args, ValueEnum};

use crate::runtime::predictor::Predictor;
use crate::zoo::Zoo;

#[derive(Args)]
pub struct ExportArgs {
    /// A run folder, a zoo entry (name or folder), or an exported .safetensors with its .model.json beside it.
    pub model: PathBuf,
    #[arg(long, value_enum, default_value_t = ExportFormat::Onnx)]
    pub format: ExportFormat,
    /// The file to write (default: model.onnx or model.safetensors inside MODEL when it is a folder).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// ONNX only: put the card's `(pixel / 255 - mean) / std` into the graph, so that it takes
    /// pixel values 0–255 (already resized).
    #[arg(long)]
    pub with_preprocessing: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Onnx,
    Safetensors,
}

pub fn run(args: &ExportArgs, zoo: &Zoo) -> u8 {
    let extension = match args.format {
        ExportFormat::Onnx => "onnx",
        ExportFormat::Safetensors => "safetensors",
    };
    let out = match &args.out {
        Some(out) => out.clone(),
        None if args.model.is_dir() => args.model.join(format!("model.{extension}")),
        None => args.model.with_extension(extension),
    };
    if out.extension().and_then(|found| found.to_str()) != Some(extension) {
        return super::output::usage_error(format!("--out {} must end in .{extension} for --format {extension}", out.display()));
    }
    let exported = super::predict::locate_model(&args.model, zoo)
        .and_then(|(card, weights)| Predictor::load(card, &weights, "cpu"))
        .and_then(|predictor| crate::runtime::export::export(&predictor.network, &predictor.card, &out, args.with_preprocessing));
    match exported {
        Ok(()) => {
            println!("{}", out.display());
            0
        }
        Err(diagnostic) => {
            super::output::print_runtime_error(&diagnostic, &args.model);
            2
        }
    }
}
