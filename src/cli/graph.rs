use std::path::Path;

use super::workspace::Workspace;

/// How `tlrun graph` draws the step graph.
#[derive(Clone, Copy, clap::ValueEnum)]
pub enum GraphFormat {
    Text,
    Dot,
    Mermaid,
    Json,
}

pub fn run(path: &Path, format: GraphFormat, workspace: &Workspace) -> u8 {
    let Some(super::workspace::LoadedRecipe { recipe, source }) = workspace.load_checked(path) else { return 1 };
    let graph = crate::plan::build_graph(&recipe);
    // A sweep's variants each run this graph with their values written in.
    // A recipe that checks has a sweep that expands (lint rejects the rest): none is no sweep.
    let variants: Vec<String> = crate::sweep::variants(&source).unwrap_or_default().into_iter().map(|variant| variant.name).collect();
    print!(
        "{}",
        match format {
            GraphFormat::Text if !variants.is_empty() => {
                format!("{}sweep: this graph runs once per variant, without its export, publish and predict steps ({}): {}\n", graph.to_text(), variants.len(), variants.join("; "))
            }
            GraphFormat::Text => graph.to_text(),
            GraphFormat::Dot => graph.to_dot(),
            GraphFormat::Mermaid => graph.to_mermaid(),
            GraphFormat::Json => {
                let mut value = as_json(&graph);
                value["variants"] = serde_json::json!(variants);
                format!("{}\n", serde_json::to_string_pretty(&value).unwrap_or_else(|_| "{}".to_string()))
            }
        }
    );
    0
}

/// The graph as data: every node with its id (a run's steps.jsonl uses the same ids), its typed
/// step and its label, in run order; and the edges.
fn as_json(graph: &crate::plan::PipelineGraph) -> serde_json::Value {
    use petgraph::visit::EdgeRef;
    let nodes: Vec<serde_json::Value> = graph
        .order()
        .into_iter()
        .map(|node| serde_json::json!({ "id": node.index(), "label": graph.graph[node].label(), "step": graph.graph[node] }))
        .collect();
    let edges: Vec<[usize; 2]> = graph.graph.edge_references().map(|edge| [edge.source().index(), edge.target().index()]).collect();
    serde_json::json!({ "nodes": nodes, "edges": edges })
}
