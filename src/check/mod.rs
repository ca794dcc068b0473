//! AST to checked recipe. No IO (outside facts come through `World`), no burn, never panics; returns
//! the recipe it could build *and* every diagnostic, errors and warnings alike.

mod backbone;
mod checker;
mod data;
mod groups;
mod head;
mod items;
pub mod recipe;
mod stages;
mod traps;
mod world;

pub use checker::check;
pub use world::{NoWorld, World, ZooCard, ZooLookup};

use crate::diagnostics::Diagnostic;

/// Parse and check in one call: what `lint` does for a file.
pub fn check_source(source: &str, file_stem: &str, world: &dyn World) -> (Option<recipe::Recipe>, Vec<Diagnostic>) {
    let (ast, mut diagnostics) = crate::syntax::parse(source);
    let (recipe, mut more) = check(&ast, file_stem, world);
    diagnostics.append(&mut more);
    diagnostics.sort_by_key(|diagnostic| diagnostic.span.map_or(0, |span| span.start));
    (recipe, diagnostics)
}
