//! Tools that edit a recipe for the user (`lr-find --write`, `probe --write`) do it the same way:
//! the smallest text edit, linted before anything is saved, shown as a diff, written atomically.

use std::path::Path;

use crate::zoo::Zoo;

/// Read the recipe at `path`, apply `edit` to its text, and save the result only if it lints
/// without errors. `what` names the edit in messages (`cut after layer3`). Returns the exit code.
pub fn save_linted_edit(path: &Path, what: &str, zoo: &Zoo, edit: impl FnOnce(&str) -> Result<String, String>) -> u8 {
    let source = match crate::recipe_text::read_recipe_text(path) {
        Ok(source) => source,
        Err(reason) => return super::output::usage_error(format!("cannot read {}: {reason}", path.display())),
    };
    let edited = match edit(&source) {
        Ok(edited) => edited,
        Err(reason) => return super::output::usage_error(reason),
    };
    if edited == source {
        println!("{} already says {what}", path.display());
        return 0;
    }
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let world = super::disk_world::DiskWorld { base, zoo, strict: false, published: None };
    let stem = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    let (_, diagnostics) = crate::check::check_source(&edited, &stem, &world);
    let errors: Vec<&crate::diagnostics::Diagnostic> = diagnostics.iter().filter(|diagnostic| diagnostic.is_error()).collect();
    if !errors.is_empty() {
        eprintln!("error: with `{what}` the recipe would not lint; {} left unchanged:", path.display());
        for error in errors {
            eprintln!("  {}: {}", error.code.as_str(), error.message);
        }
        return 1;
    }
    print!("{}", crate::syntax::edit::line_diff(&source, &edited));
    match crate::atomic_file::write_atomic(path, edited.as_bytes()) {
        Ok(()) => {
            println!("wrote {}", path.display());
            0
        }
        Err(diagnostic) => {
            super::output::print_runtime_error(&diagnostic, path);
            1
        }
    }
}
