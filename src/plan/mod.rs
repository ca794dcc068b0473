//! Checked recipe to a DAG of steps, and the per-stage tables that `tlrun plan` prints. No IO, no burn.

mod pipeline_graph;
mod recipe_graph;
mod recipe_links;
mod stage_table;

pub use pipeline_graph::{PipelineGraph, Step, build as build_graph};
pub use recipe_graph::{RecipeGraph, RecipeNode};
pub use recipe_links::{RecipeLinks, links as recipe_links};
pub use stage_table::render as render_stage_tables;
