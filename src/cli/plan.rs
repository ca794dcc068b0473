use std::path::Path;

use super::workspace::{LoadedRecipe, Workspace};

pub fn run(path: &Path, workspace: &Workspace) -> u8 {
    let Some(LoadedRecipe { recipe, source }) = workspace.load_checked(path) else { return 1 };
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
