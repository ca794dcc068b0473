use std::path::{Path, PathBuf};

use crate::check::recipe::Recipe;
use crate::diagnostics::Diagnostic;
use crate::span::Spanned;


/// A recipe read from disk and checked, with its diagnostics (made by `Workspace`).
pub struct RecipeFile {
    pub path: PathBuf,
    pub display: String,
    pub source: String,
    pub recipe: Option<Recipe>,
    pub diagnostics: Vec<Diagnostic>,
    /// `from recipe "…"` references: resolved path and where they are written.
    pub references: Vec<(PathBuf, Spanned<String>)>,
    /// `from zoo "…"` entries, as written.
    pub zoo_entries: Vec<Spanned<String>>,
}

impl RecipeFile {
    /// A file lint could not read: no source, one TL4013 saying why.
    pub fn unreadable(path: &Path, reason: &str) -> RecipeFile {
        let diagnostic = Diagnostic::new(crate::diagnostics::Code::UnreadableRecipe, format!("cannot read {}: {reason}", path.display()))
            .with_help("lint reads regular UTF-8 files of at most 10 MB; every other file is still checked");
        RecipeFile {
            path: path.to_path_buf(),
            display: path.display().to_string(),
            source: String::new(),
            recipe: None,
            diagnostics: vec![diagnostic],
            references: Vec::new(),
            zoo_entries: Vec::new(),
        }
    }

    /// In reading order, line by line; on one line an error before the warnings, which usually
    /// follow from it (cause before consequence).
    pub fn sort_diagnostics(&mut self) {
        crate::check::sort_in_reading_order(&self.source, &mut self.diagnostics);
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}
