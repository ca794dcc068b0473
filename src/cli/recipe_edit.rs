//! Tools that edit a recipe for the user (`lr-find --write`, `probe --write`) do it the same way:
//! the smallest text edit, linted before anything is saved, shown as a diff, written atomically.

use std::path::Path;

use super::workspace::Workspace;

/// The recipe at `path` (the text the command checked), with `edit` applied, saved only if it
/// lints without errors. `what` names the edit in messages (`cut after layer3`). Returns the
/// exit code.
pub fn save_linted_edit(path: &Path, what: &str, workspace: &Workspace, edit: impl FnOnce(&str) -> Result<String, String>) -> u8 {
    let source = match workspace.source(path) {
        Ok(source) => source.text.clone(),
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
    let diagnostics = workspace.check_text(path, edited.clone(), false, None).diagnostics;
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
