//! What format an `export` path names: ONNX by its `.onnx` extension, otherwise torchvision-named
//! safetensors (what `export` has always written). Lint, the plan and the runtime ask this one
//! place, so they never disagree about a file.

use std::path::Path;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    Safetensors,
    Onnx,
}

impl ExportFormat {
    pub fn of(path: &Path) -> ExportFormat {
        match path.extension().and_then(|extension| extension.to_str()) {
            Some(extension) if extension.eq_ignore_ascii_case("onnx") => ExportFormat::Onnx,
            _ => ExportFormat::Safetensors,
        }
    }

    pub fn of_text(path: &str) -> ExportFormat {
        ExportFormat::of(Path::new(path))
    }
}
