//! What every command prints when it fails: the CLI's leaf, which its commands import and which
//! imports none of them.

/// Print an error about the command itself (not about a recipe) and return exit code 2.
pub fn usage_error(message: impl std::fmt::Display) -> u8 {
    eprintln!("error: {message}");
    2
}

/// A runtime diagnostic (no span) rendered like the others, on stderr.
pub fn print_runtime_error(diagnostic: &crate::diagnostics::Diagnostic, recipe: &std::path::Path) {
    use std::io::IsTerminal;
    let style = if std::io::stderr().is_terminal() { crate::render::HumanStyle::Colour } else { crate::render::HumanStyle::Plain };
    let path = recipe.display().to_string();
    let view = crate::render::FileDiagnostics { path: &path, source: "", diagnostics: std::slice::from_ref(diagnostic) };
    eprint!("{}", crate::render::human(&view, style));
}
