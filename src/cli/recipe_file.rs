use std::path::{Path, PathBuf};

use crate::check::recipe::Recipe;
use crate::diagnostics::Diagnostic;
use crate::span::Spanned;

use super::disk_world::DiskWorld;
use super::disk_world::Published;

/// A recipe read from disk and checked, with its diagnostics.
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

use crate::recipe_text::read_recipe_text;

impl RecipeFile {
    pub fn load(path: &Path, zoo: &crate::zoo::Zoo, strict: bool, published: &Published) -> Result<RecipeFile, String> {
        Ok(RecipeFile::from_source(path, read_recipe_text(path)?, zoo, strict, published))
    }

    /// `source` checked as if it were the recipe at `path` (a sweep's variant).
    /// `published`: zoo entries other recipes will publish (see `DiskWorld::published`).
    pub fn from_source(path: &Path, source: String, zoo: &crate::zoo::Zoo, strict: bool, published: &Published) -> RecipeFile {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let world = DiskWorld { base: base.clone(), zoo, strict, published: Some(published) };
        let stem = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        let (ast, recipe, diagnostics) = crate::check::parse_and_check(&source, &stem, &world);
        let links = crate::plan::recipe_links(&ast);
        let references = links.recipes.into_iter().map(|reference| (world.resolve(&reference.value), reference)).collect();
        RecipeFile {
            path: path.to_path_buf(),
            display: path.display().to_string(),
            source,
            recipe,
            diagnostics,
            references,
            zoo_entries: links.zoo,
        }
    }

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
