use std::io::IsTerminal;
use std::path::Path;

use super::recipe_file::RecipeFile;
use crate::check::Runnable;
use crate::render::{self, FileDiagnostics, HumanStyle};
use crate::zoo::Zoo;

pub fn run(path: &Path, zoo: &Zoo) -> u8 {
    let Some((recipe, source)) = load_checked_with_source(path, zoo) else { return 1 };
    print!("{}", crate::plan::render_stage_tables(&recipe));
    // A sweep: the runs it makes, each this plan with its values written in.
    if let Ok(variants) = crate::sweep::variants(&source) {
        if !variants.is_empty() {
            println!("\nsweep: {} runs, each the plan above with its values", variants.len());
            for variant in &variants {
                println!("  {}", variant.name);
            }
        }
    }
    0
}

/// Load and check one recipe; print its diagnostics to stderr; the recipe only when it has no errors.
pub fn load_checked(path: &Path, zoo: &Zoo) -> Option<Runnable> {
    load_checked_with_source(path, zoo).map(|(runnable, _)| runnable)
}

/// [`load_checked`], with the text it read (for a sweep's variants: one read, one text).
pub fn load_checked_with_source(path: &Path, zoo: &Zoo) -> Option<(Runnable, String)> {
    let file = match RecipeFile::load(path, zoo, false, &super::disk_world::Published::new()) {
        Ok(file) => file,
        Err(reason) => {
            super::output::usage_error(format!("cannot read {}: {reason}", path.display()));
            return None;
        }
    };
    let mut with_upstream = vec![file];
    super::lint::check_recipe_graph(&mut with_upstream, zoo, &super::disk_world::Published::new());
    let mut file = with_upstream.swap_remove(0);
    file.sort_diagnostics();
    if !file.diagnostics.is_empty() {
        let style = if std::io::stderr().is_terminal() { HumanStyle::Colour } else { HumanStyle::Plain };
        let view = FileDiagnostics { path: &file.display, source: &file.source, diagnostics: &file.diagnostics };
        eprint!("{}", render::human(&view, style));
    }
    let source = file.source;
    Runnable::new(file.recipe, file.diagnostics).ok().map(|(runnable, _)| (runnable, source))
}
