use std::path::{Path, PathBuf};

use crate::check::recipe::Recipe;
use crate::diagnostics::Diagnostic;
use crate::span::Spanned;
use crate::syntax::ast::{ItemKind, WeightsSource};

use super::DiskWorld;

/// A recipe read from disk and checked, with its diagnostics.
pub struct RecipeFile {
    pub path: PathBuf,
    pub display: String,
    pub source: String,
    pub recipe: Option<Recipe>,
    pub diagnostics: Vec<Diagnostic>,
    /// `from recipe "…"` references: resolved path and where they are written.
    pub references: Vec<(PathBuf, Spanned<String>)>,
}

impl RecipeFile {
    pub fn load(path: &Path, zoo: &crate::zoo::Zoo, strict: bool) -> std::io::Result<RecipeFile> {
        let source = std::fs::read_to_string(path)?;
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let world = DiskWorld { base: base.clone(), zoo, strict };
        let stem = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        let (ast, recipe, diagnostics) = crate::check::parse_and_check(&source, &stem, &world);
        let references = ast
            .items
            .iter()
            .filter_map(|item| match &item.kind {
                ItemKind::Backbone(backbone) => match backbone.weights.as_ref().map(|weights| &weights.value) {
                    Some(WeightsSource::Recipe(reference)) => Some((world.resolve(&reference.value), reference.clone())),
                    _ => None,
                },
                _ => None,
            })
            .collect();
        Ok(RecipeFile { path: path.to_path_buf(), display: path.display().to_string(), source, recipe, diagnostics, references })
    }

    pub fn sort_diagnostics(&mut self) {
        self.diagnostics.sort_by_key(|diagnostic| (diagnostic.span.map_or(0, |span| span.start), diagnostic.code));
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}
