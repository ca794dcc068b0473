use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;

use crate::check::recipe::{HeadLayer, Recipe, Validation, Weights};

/// One step of running a recipe. The runtime executes them in topological order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Another recipe whose exported model this one starts from.
    Recipe { path: String },
    LoadBackbone { architecture: String, weights: String },
    Cut { kept_layers: Vec<String> },
    Head { layers: Vec<String> },
    LoadData { train: String, valid: String },
    Resize { size: u32 },
    Stage { name: String, epochs: u32 },
    Evaluate,
    Export { path: String },
    Publish { entry: String },
}

impl Step {
    pub fn label(&self) -> String {
        match self {
            Step::Recipe { path } => format!("recipe {path}"),
            Step::LoadBackbone { architecture, weights } => format!("load {architecture} ({weights})"),
            Step::Cut { kept_layers } => format!("cut after {}", kept_layers.last().map_or("nothing", String::as_str)),
            Step::Head { layers } => format!("head: {}", layers.join(" → ")),
            Step::LoadData { train, valid } => format!("data {train} | valid {valid}"),
            Step::Resize { size } => format!("images at {size}px"),
            Step::Stage { name, epochs } => format!("stage {name} ({epochs} epoch{})", if *epochs == 1 { "" } else { "s" }),
            Step::Evaluate => "evaluate on valid".to_string(),
            Step::Export { path } => format!("export {path}"),
            Step::Publish { entry } => format!("publish to zoo as {entry}"),
        }
    }
}

pub struct PipelineGraph {
    pub graph: DiGraph<Step, ()>,
}

pub fn build(recipe: &Recipe) -> PipelineGraph {
    let mut graph = DiGraph::new();
    let architecture = recipe.backbone.architecture;
    let weights = match &recipe.backbone.weights {
        Weights::Zoo(name) => format!("zoo {name}"),
        Weights::File(path) => format!("file {path}"),
        Weights::Recipe(path) => format!("recipe {path}"),
        Weights::Random => "random init".to_string(),
    };
    let load = graph.add_node(Step::LoadBackbone { architecture: architecture.name.to_string(), weights });
    if let Weights::Recipe(path) = &recipe.backbone.weights {
        let upstream = graph.add_node(Step::Recipe { path: path.clone() });
        graph.add_edge(upstream, load, ());
    }
    let cut = graph.add_node(Step::Cut {
        kept_layers: architecture.layers[..recipe.kept_layers].iter().map(|layer| layer.name.to_string()).collect(),
    });
    graph.add_edge(load, cut, ());
    let head = graph.add_node(Step::Head { layers: recipe.head.iter().map(describe_head_layer).collect() });
    graph.add_edge(cut, head, ());
    let valid = match &recipe.data.valid {
        Validation::Source { source } => source.describe(),
        Validation::Split { fraction, seed } => format!("{:.0}% split (seed {seed})", fraction * 100.0),
    };
    let data = graph.add_node(Step::LoadData { train: recipe.data.train.describe(), valid });

    let mut sizes: Vec<(u32, NodeIndex)> = Vec::new();
    let mut previous = head;
    for stage in &recipe.stages {
        let node = graph.add_node(Step::Stage { name: stage.name.clone(), epochs: stage.epochs });
        graph.add_edge(previous, node, ());
        let mut stage_sizes = stage.sizes.clone();
        stage_sizes.dedup();
        for size in stage_sizes {
            let variant = match sizes.iter().find(|(known, _)| *known == size) {
                Some((_, variant)) => *variant,
                None => {
                    let variant = graph.add_node(Step::Resize { size });
                    graph.add_edge(data, variant, ());
                    sizes.push((size, variant));
                    variant
                }
            };
            if graph.find_edge(variant, node).is_none() {
                graph.add_edge(variant, node, ());
            }
        }
        previous = node;
    }
    let evaluate = graph.add_node(Step::Evaluate);
    graph.add_edge(previous, evaluate, ());
    if let Some(path) = &recipe.export {
        let export = graph.add_node(Step::Export { path: path.clone() });
        graph.add_edge(evaluate, export, ());
    }
    if let Some(entry) = &recipe.publish {
        let publish = graph.add_node(Step::Publish { entry: entry.clone() });
        graph.add_edge(evaluate, publish, ());
    }
    PipelineGraph { graph }
}

fn describe_head_layer(layer: &HeadLayer) -> String {
    match layer {
        HeadLayer::Pool { pool } => format!("{pool:?} pool").to_lowercase(),
        HeadLayer::Flatten => "flatten".to_string(),
        HeadLayer::Dropout { probability } => format!("dropout {probability}"),
        HeadLayer::BatchNorm { features } => format!("batchnorm {features}"),
        HeadLayer::Relu => "relu".to_string(),
        HeadLayer::Linear { in_features, out_features } => match out_features {
            crate::check::recipe::OutFeatures::Fixed(width) => format!("linear {in_features}→{width}"),
            crate::check::recipe::OutFeatures::Classes => format!("linear {in_features}→classes"),
        },
    }
}

impl PipelineGraph {
    /// Steps in an order that respects every edge.
    pub fn order(&self) -> Vec<NodeIndex> {
        petgraph::algo::toposort(&self.graph, None).unwrap_or_else(|_| self.graph.node_indices().collect())
    }

    pub fn to_dot(&self) -> String {
        let mut out = String::from("digraph recipe {\n  rankdir=TB;\n  node [shape=box, style=rounded];\n");
        for node in self.graph.node_indices() {
            out.push_str(&format!("  n{} [label=\"{}\"];\n", node.index(), self.graph[node].label().replace('"', "\\\"")));
        }
        for edge in self.graph.edge_references() {
            out.push_str(&format!("  n{} -> n{};\n", edge.source().index(), edge.target().index()));
        }
        out.push_str("}\n");
        out
    }

    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n");
        for node in self.graph.node_indices() {
            out.push_str(&format!("  n{}[\"{}\"]\n", node.index(), self.graph[node].label().replace('"', "#quot;")));
        }
        for edge in self.graph.edge_references() {
            out.push_str(&format!("  n{} --> n{}\n", edge.source().index(), edge.target().index()));
        }
        out
    }

    /// One line per step in run order, with what it waits for.
    pub fn to_text(&self) -> String {
        let order = self.order();
        let position = |node: NodeIndex| order.iter().position(|n| *n == node).unwrap_or(0) + 1;
        let mut out = String::new();
        for node in &order {
            let inputs: Vec<String> = self
                .graph
                .neighbors_directed(*node, petgraph::Direction::Incoming)
                .map(|input| position(input))
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .map(|input| format!("#{input}"))
                .collect();
            let after = if inputs.is_empty() { String::new() } else { format!("   ← {}", inputs.join(", ")) };
            out.push_str(&format!("#{:<2} {}{after}\n", position(*node), self.graph[*node].label()));
        }
        out
    }
}
