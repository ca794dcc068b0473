use std::path::Path;

use super::GraphFormat;
use crate::zoo::Zoo;

pub fn run(path: &Path, format: GraphFormat, zoo: &Zoo) -> u8 {
    let Some(recipe) = super::plan::load_checked(path, zoo) else { return 1 };
    let graph = crate::plan::build_graph(&recipe);
    print!(
        "{}",
        match format {
            GraphFormat::Text => graph.to_text(),
            GraphFormat::Dot => graph.to_dot(),
            GraphFormat::Mermaid => graph.to_mermaid(),
        }
    );
    0
}
