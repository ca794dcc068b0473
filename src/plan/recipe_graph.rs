//! Recipes that start from other recipes' exported models form a graph; it must have no loop.

use petgraph::algo::tarjan_scc;
use petgraph::graph::{DiGraph, NodeIndex};

use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;

/// A recipe file and the recipes it names (`backbone … from recipe "…"`), paths already resolved.
#[derive(Debug, Clone)]
pub struct RecipeNode {
    pub path: String,
    pub dependencies: Vec<(String, Span)>,
}

pub struct RecipeGraph {
    nodes: Vec<RecipeNode>,
    graph: DiGraph<usize, Span>,
}

impl RecipeGraph {
    pub fn new(nodes: Vec<RecipeNode>) -> Self {
        let mut graph = DiGraph::new();
        let indices: Vec<NodeIndex> = (0..nodes.len()).map(|index| graph.add_node(index)).collect();
        for (index, node) in nodes.iter().enumerate() {
            for (dependency, span) in &node.dependencies {
                if let Some(target) = nodes.iter().position(|other| &other.path == dependency) {
                    graph.add_edge(indices[index], indices[target], *span);
                }
            }
        }
        RecipeGraph { nodes, graph }
    }

    /// One TL3001 per recipe in a loop, at its reference to the next recipe of the loop, showing the
    /// whole loop (`a.tl → b.tl → a.tl`). Keyed by the path of the file the diagnostic belongs to.
    pub fn cycle_diagnostics(&self) -> Vec<(String, Diagnostic)> {
        let mut found = Vec::new();
        for component in tarjan_scc(&self.graph) {
            let is_loop = component.len() > 1
                || component.iter().any(|node| self.graph.find_edge(*node, *node).is_some());
            if !is_loop {
                continue;
            }
            let start = *component.iter().min_by_key(|node| &self.nodes[self.graph[**node]].path).expect("non-empty");
            let cycle = self.walk_cycle(start, &component);
            let names: Vec<&str> = cycle
                .iter()
                .chain(std::iter::once(&cycle[0]))
                .map(|node| self.nodes[self.graph[*node]].path.as_str())
                .collect();
            let shown = names.join(" → ");
            for (position, node) in cycle.iter().enumerate() {
                let next = cycle[(position + 1) % cycle.len()];
                let Some(edge) = self.graph.find_edge(*node, next) else { continue };
                let path = self.nodes[self.graph[*node]].path.clone();
                let diagnostic = Diagnostic::new(Code::RecipeCycle, format!("recipes depend on each other in a loop: {shown}"))
                    .at(self.graph[edge], "this reference closes the loop")
                    .with_help("a recipe cannot start from its own output: break the loop at one reference");
                found.push((path, diagnostic));
            }
        }
        found
    }

    /// Follow edges inside the strongly connected component until a node repeats.
    fn walk_cycle(&self, start: NodeIndex, component: &[NodeIndex]) -> Vec<NodeIndex> {
        let mut path = vec![start];
        let mut current = start;
        loop {
            let mut next_nodes: Vec<NodeIndex> =
                self.graph.neighbors(current).filter(|node| component.contains(node)).collect();
            next_nodes.sort_by_key(|node| &self.nodes[self.graph[*node]].path);
            let Some(next) = next_nodes.first().copied() else { return path };
            if let Some(position) = path.iter().position(|node| *node == next) {
                return path.split_off(position);
            }
            path.push(next);
            current = next;
        }
    }

    /// Recipes in the order they must run: every dependency before what uses it. None on a loop.
    pub fn run_order(&self) -> Option<Vec<&str>> {
        let order = petgraph::algo::toposort(&self.graph, None).ok()?;
        Some(order.into_iter().rev().map(|node| self.nodes[self.graph[node]].path.as_str()).collect())
    }

    /// `targets` and every recipe they depend on, dependencies first (what `tlrun run` walks). On a
    /// loop, the loop in words (`a.tl → b.tl → a.tl`), as lint reports it.
    pub fn order_for(&self, targets: &[&str]) -> Result<Vec<&str>, String> {
        if let Some((_, diagnostic)) = self.cycle_diagnostics().into_iter().next() {
            return Err(diagnostic.message);
        }
        let mut needed = std::collections::BTreeSet::new();
        for target in targets {
            let Some(start) = self.graph.node_indices().find(|node| self.nodes[self.graph[*node]].path == *target) else { continue };
            let mut search = petgraph::visit::Dfs::new(&self.graph, start);
            while let Some(node) = search.next(&self.graph) {
                needed.insert(node);
            }
        }
        let order = self.run_order().ok_or_else(|| "recipes depend on each other in a loop".to_string())?;
        Ok(order.into_iter().filter(|path| needed.iter().any(|node| self.nodes[self.graph[*node]].path == *path)).collect())
    }

    /// The recipes `path` depends on directly.
    pub fn dependencies_of(&self, path: &str) -> Vec<&str> {
        self.nodes.iter().find(|node| node.path == path).map_or_else(Vec::new, |node| {
            node.dependencies.iter().filter(|(dependency, _)| self.nodes.iter().any(|known| &known.path == dependency)).map(|(dependency, _)| dependency.as_str()).collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(path: &str, dependencies: &[&str]) -> RecipeNode {
        RecipeNode {
            path: path.to_string(),
            dependencies: dependencies.iter().map(|dependency| (dependency.to_string(), Span::new(0, 1))).collect(),
        }
    }

    #[test]
    fn reports_the_whole_loop() {
        let graph = RecipeGraph::new(vec![node("a.tl", &["b.tl"]), node("b.tl", &["c.tl"]), node("c.tl", &["a.tl"])]);
        let found = graph.cycle_diagnostics();
        assert_eq!(found.len(), 3);
        assert!(found[0].1.message.ends_with("a.tl → b.tl → c.tl → a.tl"), "{}", found[0].1.message);
        assert!(graph.run_order().is_none());
    }

    #[test]
    fn orders_dependencies_first() {
        let graph = RecipeGraph::new(vec![node("transfer.tl", &["pretrain.tl"]), node("pretrain.tl", &[])]);
        assert!(graph.cycle_diagnostics().is_empty());
        assert_eq!(graph.run_order().unwrap(), vec!["pretrain.tl", "transfer.tl"]);
    }

    #[test]
    fn orders_only_what_the_targets_need() {
        let graph = RecipeGraph::new(vec![node("transfer.tl", &["pretrain.tl"]), node("pretrain.tl", &[]), node("other.tl", &[])]);
        assert_eq!(graph.order_for(&["transfer.tl"]).unwrap(), vec!["pretrain.tl", "transfer.tl"]);
        assert_eq!(graph.dependencies_of("transfer.tl"), vec!["pretrain.tl"]);
        let looped = RecipeGraph::new(vec![node("a.tl", &["b.tl"]), node("b.tl", &["a.tl"])]);
        assert!(looped.order_for(&["a.tl"]).unwrap_err().ends_with("a.tl → b.tl → a.tl"));
    }
}
