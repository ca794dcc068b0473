//! `export "PATH"`: the trained network as a file for use outside tlrun, chosen by extension —
//! `.onnx` for ONNX Runtime and any ONNX consumer, anything else as torchvision-named
//! safetensors for PyTorch's `load_state_dict`. Each export gets its model card beside it
//! (`out/digits.onnx` → `out/digits.model.json`), so `tlrun predict` can use it too.

use std::path::Path;

use super::model::Network;
use super::weights;
use crate::diagnostics::{Code, Diagnostic};
use crate::export_format::ExportFormat;
use crate::model_card::{ModelCard, card_beside};

/// Write `network` to `target` in the format its extension names, and its card beside it.
/// `with_preprocessing` bakes the card's normalisation into an ONNX graph (ignored for safetensors).
pub fn export(network: &Network, card: &ModelCard, target: &Path, with_preprocessing: bool) -> Result<(), Diagnostic> {
    if let Some(parent) = target.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|error| {
            Diagnostic::new(Code::RunFolderUnwritable, format!("cannot create {}: {error}", parent.display()))
                .with_help("check that the export path's folder can be created")
        })?;
    }
    match ExportFormat::of(target) {
        ExportFormat::Onnx => super::onnx::write(network, card, target, with_preprocessing)?,
        ExportFormat::Safetensors => weights::save(network, target)?,
    }
    crate::atomic_file::write_atomic(&card_beside(target), card.to_json()?.as_bytes())
}
