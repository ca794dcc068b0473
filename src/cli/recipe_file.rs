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

/// The most bytes a recipe file may hold; larger files are refused before they are read.
pub const MAX_RECIPE_BYTES: u64 = 10 * 1024 * 1024;

/// A recipe's text: only a regular file, at most `MAX_RECIPE_BYTES`, valid UTF-8. The error says
/// which of these failed, in words (`/dev/zero` is not read until memory runs out).
pub fn read_recipe_text(path: &Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".to_string(),
        _ => error.to_string(),
    })?;
    if metadata.is_dir() {
        return Err("it is a folder, not a recipe file".to_string());
    }
    if !metadata.is_file() {
        return Err("it is not a regular file (a device, pipe or socket)".to_string());
    }
    if metadata.len() > MAX_RECIPE_BYTES {
        return Err(format!("it holds {} bytes, more than the {MAX_RECIPE_BYTES}-byte limit for a recipe", metadata.len()));
    }
    let bytes = std::fs::read(path).map_err(|error| error.to_string())?;
    String::from_utf8(bytes).map_err(|error| {
        format!("it is not UTF-8 text (byte {} is not valid UTF-8: save the file as UTF-8)", error.utf8_error().valid_up_to())
    })
}

impl RecipeFile {
    pub fn load(path: &Path, zoo: &crate::zoo::Zoo, strict: bool) -> Result<RecipeFile, String> {
        let source = read_recipe_text(path)?;
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
        }
    }

    pub fn sort_diagnostics(&mut self) {
        self.diagnostics.sort_by_key(|diagnostic| (diagnostic.span.map_or(0, |span| span.start), diagnostic.code));
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}
