use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::visit::EdgeRef;
use serde::Serialize;

use crate::check::recipe::{HeadLayer, Recipe, Validation, Weights};

/// One step of running a recipe: what `tlrun graph` draws and what the runtime's interpreter
/// dispatches on, one handler per kind, in the graph's topological order.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// Another recipe whose exported model this one starts from: its export must exist.
    Upstream { path: String },
    /// Decode the train and valid images (and split them).
    LoadData { train: String, valid: String },
    /// The whole architecture with seeded random weights.
    BuildBackbone { architecture: String },
    /// Keep the first `kept` layers; `last` names the last one kept.
    Cut { kept: usize, last: String },
    /// Pretrained weights into the kept layers (absent for `from none`).
    LoadWeights { weights: Weights },
    /// The new head on top of the cut backbone, as wide as there are classes.
    AttachHead { layers: Vec<String> },
    /// Every image resized once to this side (later epochs at this size read the cache).
    Resize { size: u32 },
    /// Stage `index` of the recipe.
    Stage { index: usize, name: String, epochs: u32 },
    /// How far the training images are from the pretraining images (pixel statistics, and the
    /// Fréchet distance of features when the zoo card keeps them): shift.json, a note when far.
    MeasureShift,
    /// Fit a linear probe on the pretrained features of the source images (the images the
    /// backbone was trained on) and score it: the start of the forgetting curve.
    SourceBaseline { source: String },
    /// The source images through the network after stage `index`, read by that frozen probe.
    MeasureForgetting { index: usize, name: String },
    /// The final evaluation on the valid images.
    Evaluate { size: u32, tta: bool },
    Export { path: String },
    Publish { entry: String },
    /// The final network applied to the images under `input`, predictions into `output`.
    Predict { input: String, output: String },
}

impl Step {
    pub fn label(&self) -> String {
        match self {
            Step::Upstream { path } => format!("recipe {path}"),
            Step::LoadData { train, valid } => format!("data {train} | valid {valid}"),
            Step::BuildBackbone { architecture } => format!("build {architecture}"),
            Step::LoadWeights { weights } => match weights {
                Weights::Zoo(name) => format!("load weights from zoo {name}"),
                Weights::File(path) => format!("load weights from file {path}"),
                Weights::Recipe(path) => format!("load weights exported by {path}"),
                Weights::Random => "random weights".to_string(),
            },
            Step::Cut { last, .. } => format!("cut after {last}"),
            Step::AttachHead { layers } => format!("head: {}", layers.join(" → ")),
            Step::Resize { size } => format!("images at {size}px"),
            Step::Stage { name, epochs, .. } => format!("stage {name} ({epochs} epoch{})", if *epochs == 1 { "" } else { "s" }),
            Step::MeasureShift => "domain shift against the pretraining images".to_string(),
            Step::SourceBaseline { source } => format!("source baseline: probe on {source}"),
            Step::MeasureForgetting { name, .. } => format!("forgetting after {name}"),
            Step::Evaluate { size, tta } => format!("evaluate on valid at {size}px{}", if *tta { " with flip TTA" } else { "" }),
            Step::Export { path } => format!("export {path}"),
            Step::Publish { entry } => format!("publish to zoo as {entry}"),
            Step::Predict { input, output } => format!("predict {input} into {output}"),
        }
    }
}

pub struct PipelineGraph {
    pub graph: DiGraph<Step, ()>,
}

/// The recipe's steps and what each waits for. Built once; the same graph is drawn and run.
pub fn build(recipe: &Recipe) -> PipelineGraph {
    let mut graph = DiGraph::new();
    let architecture = recipe.backbone.architecture;
    let valid = match &recipe.data.valid {
        Validation::Source { source } => source.describe(),
        Validation::Split { fraction, seed } => format!("{:.0}% split (seed {seed})", fraction * 100.0),
    };
    // Data first: a missing folder is found before any network is built.
    let data = graph.add_node(Step::LoadData { train: recipe.data.train.describe(), valid });
    let build = graph.add_node(Step::BuildBackbone { architecture: architecture.name.to_string() });
    // Cut before loading: the pretrained file must fit the layers that are kept, no more.
    let cut = graph.add_node(Step::Cut { kept: recipe.kept_layers, last: recipe.cut_after().to_string() });
    graph.add_edge(build, cut, ());
    let mut network = cut;
    if recipe.backbone.is_pretrained() {
        let load = graph.add_node(Step::LoadWeights { weights: recipe.backbone.weights.clone() });
        graph.add_edge(cut, load, ());
        if let Weights::Recipe(path) = &recipe.backbone.weights {
            let upstream = graph.add_node(Step::Upstream { path: path.clone() });
            graph.add_edge(upstream, load, ());
        }
        network = load;
    }
    let head = graph.add_node(Step::AttachHead { layers: recipe.head.iter().map(describe_head_layer).collect() });
    graph.add_edge(network, head, ());
    // The head is as wide as the data has classes.
    graph.add_edge(data, head, ());

    let mut sizes: Vec<(u32, NodeIndex)> = Vec::new();
    let mut size_node = |graph: &mut DiGraph<Step, ()>, size: u32| match sizes.iter().find(|(known, _)| *known == size) {
        Some((_, node)) => *node,
        None => {
            let node = graph.add_node(Step::Resize { size });
            graph.add_edge(data, node, ());
            sizes.push((size, node));
            node
        }
    };
    let mut previous = head;
    if recipe.backbone.is_pretrained() {
        let shift = graph.add_node(Step::MeasureShift);
        graph.add_edge(head, shift, ());
        previous = shift;
    }
    if let Some(source) = recipe.forgetting_source() {
        let baseline = graph.add_node(Step::SourceBaseline { source: source.describe() });
        graph.add_edge(previous, baseline, ());
        previous = baseline;
    }
    for (index, stage) in recipe.stages.iter().enumerate() {
        let node = graph.add_node(Step::Stage { index, name: stage.name.clone(), epochs: stage.epochs });
        graph.add_edge(previous, node, ());
        if recipe.forgetting_source().is_some() {
            // Measured before the next stage moves the weights again.
            let measure = graph.add_node(Step::MeasureForgetting { index, name: stage.name.clone() });
            graph.add_edge(node, measure, ());
            previous = measure;
        } else {
            previous = node;
        }
        let mut stage_sizes = stage.sizes.clone();
        stage_sizes.dedup();
        for size in stage_sizes {
            let resized = size_node(&mut graph, size);
            if graph.find_edge(resized, node).is_none() {
                graph.add_edge(resized, node, ());
            }
        }
    }
    let last_size = recipe.last_size();
    let evaluate = graph.add_node(Step::Evaluate { size: last_size, tta: recipe.tta_flip });
    graph.add_edge(previous, evaluate, ());
    let resized = size_node(&mut graph, last_size);
    graph.add_edge(resized, evaluate, ());
    for path in &recipe.exports {
        let export = graph.add_node(Step::Export { path: path.clone() });
        graph.add_edge(evaluate, export, ());
    }
    if let Some(entry) = &recipe.publish {
        let publish = graph.add_node(Step::Publish { entry: entry.clone() });
        graph.add_edge(evaluate, publish, ());
    }
    for prediction in &recipe.predictions {
        let predict = graph.add_node(Step::Predict { input: prediction.input.clone(), output: prediction.output.clone() });
        graph.add_edge(evaluate, predict, ());
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
    /// The node of stage `index`.
    pub fn stage_node(&self, index: usize) -> Option<NodeIndex> {
        self.graph.node_indices().find(|node| matches!(self.graph[*node], Step::Stage { index: at, .. } if at == index))
    }

    /// The first node whose step `is` matches, in run order.
    pub fn first(&self, is: impl Fn(&Step) -> bool) -> Option<NodeIndex> {
        self.order().into_iter().find(|node| is(&self.graph[*node]))
    }

    /// Every node `node` depends on, directly or not (not `node` itself).
    pub fn ancestors(&self, node: NodeIndex) -> std::collections::BTreeSet<NodeIndex> {
        let mut seen = std::collections::BTreeSet::new();
        let mut waiting = vec![node];
        while let Some(next) = waiting.pop() {
            for before in self.graph.neighbors_directed(next, petgraph::Direction::Incoming) {
                if seen.insert(before) {
                    waiting.push(before);
                }
            }
        }
        seen
    }

    /// Steps in an order that respects every edge: the order a run executes them in. Of the
    /// steps ready at any point the one built first goes first (Kahn's algorithm on the lowest
    /// node id), so data is read before any network is built and resizes come in stage order.
    pub fn order(&self) -> Vec<NodeIndex> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut waiting: Vec<usize> =
            self.graph.node_indices().map(|node| self.graph.neighbors_directed(node, petgraph::Direction::Incoming).count()).collect();
        let mut ready: BinaryHeap<Reverse<usize>> =
            waiting.iter().enumerate().filter(|(_, count)| **count == 0).map(|(node, _)| Reverse(node)).collect();
        let mut order = Vec::with_capacity(waiting.len());
        while let Some(Reverse(node)) = ready.pop() {
            let node = NodeIndex::new(node);
            order.push(node);
            for next in self.graph.neighbors_directed(node, petgraph::Direction::Outgoing) {
                waiting[next.index()] -= 1;
                if waiting[next.index()] == 0 {
                    ready.push(Reverse(next.index()));
                }
            }
        }
        order
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
