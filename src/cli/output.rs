//! What every command prints when it fails, and how it stops on Ctrl-C: the CLI's leaf, which its commands import and which
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

/// Ctrl-C sets this flag; the runner finishes its step, checkpoints and stops.
pub fn interrupt_flag() -> Option<std::sync::Arc<std::sync::atomic::AtomicBool>> {
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGINT, std::sync::Arc::clone(&flag)).ok()?;
    Some(flag)
}

/// Exit status after Ctrl-C, as shells expect (128 + SIGINT).
pub const INTERRUPTED: u8 = 130;

/// Print a failed run and choose its exit status.
pub fn report_failure(failure: &crate::runtime::runner::RunFailure, path: &std::path::Path) -> u8 {
    print_runtime_error(&failure.diagnostic, path);
    if failure.diagnostic.code == crate::diagnostics::Code::Interrupted {
        return INTERRUPTED;
    }
    if let Some(folder) = &failure.folder {
        eprintln!("run folder (last good weights kept): {}", folder.display());
    }
    1
}
